//! `keyplane bench`: runs the throughput harness, the separate program `keyplane-bench`, so that
//! the admin tool does not link the harness, its charts and fonts, or the C ABI it compares
//! against. The harness's options pass through unchanged (`keyplane-bench --help` lists them);
//! the CLI's global `--json`, `--region` and `--allow-unlocked-memory` become the harness's own,
//! and `--durable` runs against the data directory's store (`--data-dir`, with the store's root
//! key file; other root key sources: run `keyplane-bench` as docs/performance.md shows).
//!
//! The program is looked up as `$KEYPLANE_BENCH_BIN`, else `keyplane-bench` beside this
//! executable (as `cargo build` and `cargo install` place them), else on `PATH`.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::Command;

use crate::args::BenchArgs;
use crate::context::{Context, RootKeySource};
use crate::outcome::{Failure, INTERNAL};

const PROGRAM: &str = "keyplane-bench";

pub fn run(ctx: &Context, args: BenchArgs) -> Result<(), Failure> {
    let mut durable = args.durable;
    let mut forwarded: Vec<OsString> = Vec::with_capacity(args.harness.len() + 6);
    for arg in args.harness {
        // `--durable` is the CLI's own, wherever it was given.
        if arg == "--durable" {
            durable = true;
        } else {
            forwarded.push(arg);
        }
    }
    if durable {
        forwarded.extend(durable_store(ctx)?);
    }
    forwarded.push("--region".into());
    forwarded.push(ctx.global.region.clone().into());
    if ctx.global.allow_unlocked_memory {
        forwarded.push("--allow-unlocked-memory".into());
    }
    if ctx.global.json {
        // Last, so that it cannot take a following option as its file.
        forwarded.push("--json".into());
    }
    let program = program();
    let status = Command::new(&program)
        .args(&forwarded)
        .status()
        .map_err(|e| {
            internal(format!(
                "keyplane bench runs the {PROGRAM} program, which could not be started ({}: {e}); \
                 build it with `cargo build --release -p keyplane-bench` (it is placed beside \
                 keyplane) or name it in KEYPLANE_BENCH_BIN",
                program.display()
            ))
        })?;
    match status.code() {
        Some(0) => Ok(()),
        // The harness has printed why; keep its exit status (2 for usage errors).
        Some(code) => Err(Failure {
            code: if code == 2 {
                "ValidationException".into()
            } else {
                "KMSInternalException".into()
            },
            message: format!("{PROGRAM} exited with status {code}"),
            exit: u8::try_from(code).unwrap_or(INTERNAL),
        }),
        None => Err(internal(format!("{PROGRAM} was killed by a signal"))),
    }
}

/// `--data-dir DIR` for the data directory's store, whose root key the harness reads from the
/// store's default key file.
fn durable_store(ctx: &Context) -> Result<[OsString; 2], Failure> {
    let default_file = keyplane_sqlite::StorePaths::default_key_file(ctx.data_dir());
    match ctx.root_key_source()? {
        RootKeySource::KeyFile(file) if file == default_file => {}
        _ => {
            return Err(Failure::usage(format!(
                "keyplane bench --durable reads the store's root key from {}; with another root \
                 key source, run keyplane-bench against a copy of the store (see \
                 docs/performance.md)",
                default_file.display()
            )))
        }
    }
    Ok(["--data-dir".into(), ctx.data_dir().as_os_str().to_owned()])
}

fn program() -> PathBuf {
    if let Some(given) = std::env::var_os("KEYPLANE_BENCH_BIN") {
        return PathBuf::from(given);
    }
    let beside = std::env::current_exe()
        .ok()
        .map(|exe| exe.with_file_name(PROGRAM))
        .filter(|p| p.is_file());
    beside.unwrap_or_else(|| PathBuf::from(PROGRAM))
}

fn internal(message: String) -> Failure {
    Failure {
        code: "KMSInternalException".into(),
        message,
        exit: INTERNAL,
    }
}
