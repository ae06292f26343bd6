//! `keyplane bench`: the throughput harness (crate `keyplane-bench`) as a subcommand. Its sweep
//! options are the harness's own; `--json` is the CLI's global switch (the report as JSON on
//! standard output instead of the table), and `--durable` runs against the data directory's store
//! (the same root key options as every other command) instead of a fresh in-memory one. The
//! engines the harness builds are not audited: they measure the data plane. With `--endpoint URL`
//! it is the harness's load generator against a server of the service's wire protocol instead
//! (`keyplane serve`, or moto's for comparison), signing for the global `--region`.

use std::sync::Arc;

use keyplane_bench::{Destination, RunOptions, StoreChoice};

use crate::args::BenchArgs;
use crate::context::Context;
use crate::outcome::{Failure, INTERNAL, USAGE};

pub fn run(ctx: &Context, args: BenchArgs) -> Result<(), Failure> {
    if args.endpoint.endpoint.is_some() {
        if args.durable {
            return Err(failure(keyplane_bench::BenchError::Usage(
                "--durable and --endpoint: the server at the endpoint has its own store".into(),
            )));
        }
        let options = keyplane_bench::endpoint::EndpointOptions::from_sweep(
            &args.sweep,
            ctx.global.json.then_some(Destination::Stdout),
            &ctx.global.region,
        );
        return keyplane_bench::endpoint::run_endpoint(&args.endpoint, &options)
            .map(|_| ())
            .map_err(failure);
    }
    if args.sweep.wants_stream() {
        keyplane_bench::stream::run(&args.sweep).map_err(failure)?;
        if !args.sweep.wants_sweep() && !args.sweep.wants_many_keys() {
            return Ok(());
        }
    }
    let store = if args.durable {
        let store = ctx.open_store()?;
        StoreChoice::Shared {
            label: keyplane::store::KeyStore::describe(store.as_ref()),
            store: Arc::clone(&store) as Arc<dyn keyplane::store::KeyStore>,
        }
    } else {
        StoreChoice::Memory
    };
    let options = RunOptions {
        json: ctx.global.json.then_some(Destination::Stdout),
        store,
        lock_policy: ctx.lock_policy(),
    };
    if args.sweep.wants_many_keys() {
        keyplane_bench::many_keys::run(&args.sweep, &options).map_err(failure)?;
        if !args.sweep.wants_sweep() {
            return Ok(());
        }
    }
    keyplane_bench::run_sweep(&args.sweep, options)
        .map(|_| ())
        .map_err(failure)
}

fn failure(e: keyplane_bench::BenchError) -> Failure {
    Failure {
        code: if e.exit_code() == 2 {
            "ValidationException".into()
        } else {
            "KMSInternalException".into()
        },
        message: e.to_string(),
        exit: if e.exit_code() == 2 { USAGE } else { INTERNAL },
    }
}
