//! The `fleet` workload (`keyplane-bench -w fleet --store postgres://...`): a fleet of nodes
//! sharing one key store on PostgreSQL, measured in one run against the same work on SQLite and in
//! memory:
//!
//! - [`control`]: control-plane calls per second (CreateKey, CreateAlias, UpdateAlias,
//!   DisableKey/EnableKey, TagResource, CreateGrant) on PostgreSQL and on SQLite, with 1 caller
//!   (one node) and 2 callers (two nodes on two store handles, writing at once);
//! - [`propagation`]: how long a change acknowledged on node A takes to reach node B's data plane
//!   (two engines on two store handles), with LISTEN/NOTIFY and with polling only;
//! - [`data_plane`]: Encrypt on a fleet node against an in-memory engine (the data plane never
//!   touches the store, so the ratio should be about 1);
//! - [`scale`] (`--fleet-keys N`): the store filled to N keys by the store's bulk path, a node's
//!   cold start in a process of its own (time to a working engine, peak resident set), and
//!   propagation again among N keys, against the same among ten.
//!
//! The database named by `--store` must hold no keyplane store: the run creates one under a root
//! key file of its own (in a temporary directory, removed at the end). [`report`] makes the table
//! and the JSON report.

pub mod control;
pub mod data_plane;
pub mod latency;
mod nodes;
pub(crate) mod options;
pub mod propagation;
pub mod report;
pub mod scale;

use std::path::PathBuf;
use std::sync::Arc;

use keyplane::store::KeyStore;
use keyplane::LockPolicy;
use keyplane_postgres::PostgresKeyStore;
use keyplane_sqlite::root_key::KeyFileProvider;

pub use options::FleetArgs;
pub use report::FleetReport;

use self::nodes::{failed, pg_open, pg_options};
use crate::{write_to, BenchError, Destination};

/// A directory removed when dropped.
struct WorkDir(PathBuf);

impl WorkDir {
    fn new() -> Result<WorkDir, BenchError> {
        let mut bytes = [0u8; 8];
        keyplane::sealing::fill_random(&mut bytes).map_err(|e| failed("a random name", e))?;
        let name: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        let dir = std::env::temp_dir().join(format!("keyplane-bench-fleet-{name}"));
        std::fs::create_dir(&dir).map_err(|e| failed(&format!("creating {}", dir.display()), e))?;
        Ok(WorkDir(dir))
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The key quota of every node: room for the filled store and the benchmark's own keys.
fn max_keys(args: &FleetArgs) -> usize {
    args.fleet_keys.saturating_mul(2).max(1_000_000)
}

/// Runs the whole workload and writes its outputs (the table unless quiet, JSON where asked).
pub fn run(
    args: &FleetArgs,
    quiet: bool,
    json: Option<Destination>,
    lock_policy: LockPolicy,
) -> Result<FleetReport, BenchError> {
    if let Some(root) = &args.fleet_cold_start {
        let address = args
            .store
            .as_deref()
            .ok_or_else(|| BenchError::Usage("--fleet-cold-start needs --store".into()))?;
        let result = scale::cold_start_child(address, root, lock_policy, max_keys(args))?;
        let line = serde_json::to_string(&result)
            .map_err(|e| BenchError::Output(format!("serialising the cold start: {e}")))?;
        println!("{line}");
        std::process::exit(0);
    }
    let address = args.store.clone().ok_or_else(|| {
        BenchError::Usage(
            "the fleet workload needs --store postgres://user@host:port/db (a database with no \
             keyplane store in it)"
                .into(),
        )
    })?;
    if !address.starts_with("postgres://") && !address.starts_with("postgresql://") {
        return Err(BenchError::Usage(format!(
            "--store {}: the fleet workload runs on PostgreSQL (postgres://...)",
            keyplane_postgres::redact(&address)
        )));
    }
    let work = WorkDir::new()?;
    let root = work.0.join("pg-root.key");
    let provider = Arc::new(KeyFileProvider::new(root.clone(), lock_policy));
    PostgresKeyStore::init(&address, provider, pg_options(lock_policy))
        .map_err(|e| failed("creating the store (the database must hold none)", e))?;
    let sqlite_dir = match &args.compare_sqlite {
        Some(dir) => dir.clone(),
        None => work.0.join("sqlite"),
    };
    std::fs::create_dir_all(&sqlite_dir)
        .map_err(|e| failed(&format!("creating {}", sqlite_dir.display()), e))?;
    let quota = max_keys(args);
    let progress = |line: &str| {
        if !quiet {
            eprintln!("fleet: {line}");
        }
    };

    let pg: &(dyn Fn() -> Result<Arc<dyn KeyStore>, BenchError> + Sync) =
        &|| pg_open(&address, &root, lock_policy).map(|s| s as Arc<dyn KeyStore>);
    let sqlite: &(dyn Fn() -> Result<Arc<dyn KeyStore>, BenchError> + Sync) =
        &|| crate::sqlite_store(&sqlite_dir, lock_policy);

    // Propagation first, while the store holds ten keys (the baseline of the scale part).
    progress("propagation among 10 keys (LISTEN/NOTIFY, then polling only)");
    let mut propagation = Vec::new();
    for mode in [propagation::Mode::Notify, propagation::Mode::Poll] {
        propagation.push(propagation::measure(
            pg,
            mode,
            args.fleet_poll,
            args.fleet_changes,
            None,
            lock_policy,
            quota,
        )?);
    }

    progress("control plane on PostgreSQL and SQLite, 1 and 2 callers");
    let mut control = control::measure("postgres", pg, args.fleet_ops, lock_policy, quota)?;
    control.extend(control::measure(
        "sqlite",
        sqlite,
        args.fleet_ops,
        lock_policy,
        quota,
    )?);

    progress("data plane on a fleet node and on an in-memory engine");
    let data_plane = data_plane::measure(pg, args.fleet_data_duration, lock_policy, quota)?;

    let scale = if args.fleet_keys > 0 {
        let s = scale::run(&address, &root, args, lock_policy, quota, &progress)?;
        propagation.push(s.propagation.clone());
        Some(s)
    } else {
        None
    };

    let report = FleetReport::new(
        keyplane_postgres::redact(&address),
        args,
        control,
        propagation,
        data_plane,
        scale,
    );
    if !quiet {
        if json == Some(Destination::Stdout) {
            eprint!("{}", report.to_table());
        } else {
            print!("{}", report.to_table());
        }
    }
    if let Some(dest) = &json {
        let text = serde_json::to_string_pretty(&report)
            .map_err(|e| BenchError::Output(format!("serialising the report: {e}")))?;
        write_to(dest, &(text + "\n"))?;
    }
    Ok(report)
}
