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
pub mod propagation;
pub mod report;
pub mod scale;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use keyplane::store::KeyStore;
use keyplane::{Engine, LockPolicy};
use keyplane_postgres::{PgOptions, PostgresKeyStore, Timeouts};
use keyplane_sqlite::root_key::KeyFileProvider;
use keyplane_sqlite::{SqliteKeyStore, StoreOptions, StorePaths};

pub use report::FleetReport;

use crate::units::{parse_count, parse_duration};
use crate::{write_to, BenchError, Destination};

/// The `fleet` workload's options.
#[derive(Debug, Clone, Args)]
pub struct FleetArgs {
    /// `fleet`: the PostgreSQL database the fleet nodes share (postgres://user@host:port/db). It
    /// must hold no keyplane store: the run creates one
    #[arg(long = "store", value_name = "ADDRESS")]
    pub store: Option<String>,

    /// `fleet`: the directory of the SQLite store the control plane is compared with (created
    /// there; default: a temporary directory)
    #[arg(long, value_name = "DIR")]
    pub compare_sqlite: Option<PathBuf>,

    /// `fleet`: control-plane calls timed per operation, store and caller
    #[arg(long, value_name = "N", default_value = "200", value_parser = parse_count)]
    pub fleet_ops: usize,

    /// `fleet`: changes whose propagation is timed per mode and store size
    #[arg(long, value_name = "N", default_value = "500", value_parser = parse_count)]
    pub fleet_changes: usize,

    /// `fleet`: how often the polling-only follower asks the store for changes
    #[arg(long, value_name = "TIME", default_value = "100ms", value_parser = parse_duration)]
    pub fleet_poll: Duration,

    /// `fleet`: measured time per data-plane point and repeat
    #[arg(long, value_name = "TIME", default_value = "1s", value_parser = parse_duration)]
    pub fleet_data_duration: Duration,

    /// `fleet`: fill the store to this many keys with the bulk path (e.g. 1M), then time a
    /// node's cold start and propagation among them; 0 (the default) skips this part
    #[arg(long, value_name = "N", default_value = "0", value_parser = parse_count_or_zero)]
    pub fleet_keys: usize,

    /// `fleet`: keys per bulk-load transaction
    #[arg(long, value_name = "N", default_value = "10k", value_parser = parse_count)]
    pub fleet_batch: usize,

    /// (internal) the cold-start child: opens --store with this root key file, builds a node,
    /// prints one JSON line
    #[arg(long, value_name = "FILE", hide = true)]
    pub fleet_cold_start: Option<PathBuf>,
}

fn parse_count_or_zero(s: &str) -> Result<usize, String> {
    if s.trim() == "0" {
        return Ok(0);
    }
    parse_count(s)
}

pub(crate) fn failed(what: &str, e: impl std::fmt::Display) -> BenchError {
    BenchError::Run(format!("fleet: {what}: {e}"))
}

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

/// Opens store handles: each call is one more node's own connection pool (and listener).
pub(crate) type Opener<'a> = &'a (dyn Fn() -> Result<Arc<dyn KeyStore>, BenchError> + Sync);

/// Statement timeout of the fleet nodes: the bulk fill's commits of 10,000 keys may take longer
/// than the store's default (10 s) on a small, busy machine. (A cold load has its own
/// `Timeouts::load`.)
const STATEMENT_TIMEOUT: Duration = Duration::from_secs(600);

pub(crate) fn pg_options(lock_policy: LockPolicy) -> PgOptions {
    PgOptions {
        lock_policy,
        timeouts: Timeouts {
            statement: STATEMENT_TIMEOUT,
            ..Timeouts::default()
        },
        ..PgOptions::default()
    }
}

pub(crate) fn pg_open(
    address: &str,
    root: &Path,
    lock_policy: LockPolicy,
) -> Result<Arc<PostgresKeyStore>, BenchError> {
    let provider = Arc::new(KeyFileProvider::new(root.to_path_buf(), lock_policy));
    PostgresKeyStore::open(address, provider, pg_options(lock_policy))
        .map(Arc::new)
        .map_err(|e| failed("opening the PostgreSQL store", e))
}

fn sqlite_open(dir: &Path, lock_policy: LockPolicy) -> Result<Arc<dyn KeyStore>, BenchError> {
    let provider = Arc::new(KeyFileProvider::new(
        StorePaths::default_key_file(dir),
        lock_policy,
    ));
    let options = StoreOptions {
        lock_policy,
        ..StoreOptions::default()
    };
    let store = if StorePaths::new(dir).db.exists() {
        SqliteKeyStore::open(dir, provider, options)
    } else {
        SqliteKeyStore::init(dir, provider, options)
    }
    .map_err(|e| failed(&format!("the SQLite store in {}", dir.display()), e))?;
    Ok(Arc::new(store))
}

/// A node: an engine on `store`, following it every `follow` (and on the store's push notices)
/// where given.
pub(crate) fn node(
    store: Arc<dyn KeyStore>,
    lock_policy: LockPolicy,
    follow: Option<Duration>,
    max_keys: usize,
) -> Result<Engine, BenchError> {
    let mut builder = Engine::builder()
        .store(store)
        .lock_policy(lock_policy)
        .worker_threads(1)
        .max_keys(max_keys);
    if let Some(every) = follow {
        builder = builder.scheduler_interval(every);
    }
    builder.build().map_err(|e| failed("building a node", e))
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
        &|| sqlite_open(&sqlite_dir, lock_policy);

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
