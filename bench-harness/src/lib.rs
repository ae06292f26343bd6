//! keyplane-bench: the throughput harness.
//!
//! Runs workloads (encrypt, decrypt, re-encrypt, generate-data-key, sign, verify, generate-mac,
//! verify-mac, and an envelope mix) through the engine's batch calls, sweeping engine threads,
//! batch sizes, message sizes and caller threads; each point gets a warm-up and several repeats
//! (median and spread), per-batch-call latency percentiles, and a plain aws-lc-rs loop on one
//! thread doing the same primitive on the same messages, measured in the same run, so results
//! read as ratios. `--compare c|python` runs the encrypt points through the C ABI and the
//! Python package too; `--recommend` picks the thread count and batch size with the best
//! throughput within a latency bound; `--plot DIR` draws charts. Nothing touches the network,
//! except [`endpoint`] (`--endpoint URL`): a load generator for `keyplane serve` and other servers
//! of the service's wire protocol.
//!
//! The stand-alone program is `keyplane-bench` ([`BenchArgs`], [`run`]). A host CLI flattens
//! [`SweepArgs`] into its own subcommand and calls [`run_sweep`] with the store and output it
//! chose:
//!
//! ```no_run
//! use clap::Parser;
//! #[derive(Parser)]
//! struct Cli {
//!     #[arg(long, global = true)]
//!     json: bool,
//!     #[command(subcommand)]
//!     command: Command,
//! }
//! #[derive(clap::Subcommand)]
//! enum Command {
//!     /// Measure throughput
//!     Bench(keyplane_bench::SweepArgs),
//! }
//! let cli = Cli::parse();
//! let Command::Bench(sweep) = cli.command;
//! let options = keyplane_bench::RunOptions {
//!     json: cli.json.then_some(keyplane_bench::Destination::Stdout),
//!     ..Default::default()
//! };
//! keyplane_bench::run_sweep(&sweep, options)?;
//! # Ok::<(), keyplane_bench::BenchError>(())
//! ```
#![deny(unsafe_code)]
#![warn(missing_debug_implementations)]

pub mod args;
pub mod cold_decrypt;
pub mod compare;
#[cfg(feature = "endpoint")]
pub mod endpoint;
#[cfg(feature = "postgres")]
pub mod fleet;
pub mod handoff;
pub mod kept_rooms;
pub mod many_keys;
pub mod measure;
pub mod plot;
pub mod raw;
pub mod report;
pub mod split;
pub mod stream;
mod sweep;
mod units;
pub mod workload;
mod write_behind;

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use keyplane::store::KeyStore;
use keyplane::LockPolicy;

pub use args::{BenchArgs, CompareWith, RsaPadding, SweepArgs, WorkloadChoice};
pub use report::Report;

/// Why a run failed.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// The options cannot be run as given.
    #[error("{0}")]
    Usage(String),
    /// The engine, the store or the keys could not be set up.
    #[error("{0}")]
    Setup(String),
    /// A measured call failed.
    #[error("{0}")]
    Run(String),
    /// A result could not be written.
    #[error("{0}")]
    Output(String),
}

impl BenchError {
    /// The process exit status: 2 for usage errors, 1 otherwise.
    pub fn exit_code(&self) -> i32 {
        match self {
            BenchError::Usage(_) => 2,
            _ => 1,
        }
    }
}

/// Where an output goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    Stdout,
    File(PathBuf),
}

impl Destination {
    /// `--json` / `--csv` without a file, or with `-`, mean standard output.
    fn from_flag(flag: &Option<Option<PathBuf>>) -> Option<Destination> {
        flag.as_ref().map(|f| match f {
            Some(path) if path.as_os_str() != "-" => Destination::File(path.clone()),
            _ => Destination::Stdout,
        })
    }
}

/// Which key store the measured engines use.
#[derive(Clone, Default)]
pub enum StoreChoice {
    /// A fresh in-memory store (the engine's default).
    #[default]
    Memory,
    /// A store the caller opened (e.g. the SQLite store of a data directory), with a label for
    /// the report. The harness creates its keys there under `alias/keyplane-bench/*`, or reuses
    /// them.
    Shared {
        store: Arc<dyn KeyStore>,
        label: String,
    },
}

impl std::fmt::Debug for StoreChoice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreChoice::Memory => f.write_str("Memory"),
            StoreChoice::Shared { label, .. } => write!(f, "Shared({label})"),
        }
    }
}

/// What a host decides for a run: JSON output, the store, the memory-lock policy.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Write the JSON report here (to standard output: instead of the table).
    pub json: Option<Destination>,
    pub store: StoreChoice,
    pub lock_policy: LockPolicy,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            json: None,
            store: StoreChoice::Memory,
            lock_policy: LockPolicy::Require,
        }
    }
}

/// The stand-alone program with `--endpoint`: the load generator against a server.
#[cfg(feature = "endpoint")]
pub fn run_endpoint(args: &BenchArgs) -> Result<endpoint::EndpointReport, BenchError> {
    let options = endpoint::EndpointOptions::from_sweep(
        &args.sweep,
        Destination::from_flag(&args.json),
        &args.region,
    );
    endpoint::run_endpoint(&args.endpoint, &options)
}

/// What `--allow-unlocked-memory` asks of key memory.
fn lock_policy(args: &BenchArgs) -> LockPolicy {
    if args.allow_unlocked_memory {
        LockPolicy::Warn
    } else {
        LockPolicy::Require
    }
}

/// The stand-alone program's options: the store `--data-dir` names (if any, else a fresh
/// in-memory one), `--json` and the lock policy.
fn run_options(args: &BenchArgs) -> Result<RunOptions, BenchError> {
    let lock_policy = lock_policy(args);
    let store = match &args.data_dir {
        None => StoreChoice::Memory,
        Some(dir) => open_data_dir(dir, lock_policy)?,
    };
    Ok(RunOptions {
        json: Destination::from_flag(&args.json),
        store,
        lock_policy,
    })
}

/// The stand-alone program: opens the store `--data-dir` names (if any), runs the sweep and writes
/// every output asked for.
pub fn run(args: &BenchArgs) -> Result<Report, BenchError> {
    run_sweep(&args.sweep, run_options(args)?)
}

/// The stand-alone program's `many-keys` workload: the store `--data-dir` names (if any), or a
/// fresh in-memory one.
pub fn run_many_keys(args: &BenchArgs) -> Result<many_keys::ManyKeysReport, BenchError> {
    many_keys::run(&args.sweep, &run_options(args)?)
}

/// The stand-alone program's `cold-decrypt` workload (see [`cold_decrypt`]).
pub fn run_cold_decrypt(args: &BenchArgs) -> Result<cold_decrypt::ColdDecryptReport, BenchError> {
    cold_decrypt::run(&args.sweep, &run_options(args)?)
}

/// The stand-alone program's `fleet` workload (see [`fleet`]).
#[cfg(feature = "postgres")]
pub fn run_fleet(args: &BenchArgs) -> Result<fleet::FleetReport, BenchError> {
    fleet::run(
        &args.fleet,
        args.sweep.quiet,
        Destination::from_flag(&args.json),
        lock_policy(args),
    )
}

/// Without the `postgres` feature there is no fleet to measure.
#[cfg(not(feature = "postgres"))]
pub fn run_fleet(_args: &BenchArgs) -> Result<(), BenchError> {
    Err(BenchError::Usage(
        "--workload fleet: this keyplane-bench was built without the `postgres` feature".into(),
    ))
}

/// Opens (or creates) the SQLite store in `dir`, with its root key in the key file
/// `dir/root.key` (the CLI's default layout).
#[cfg(feature = "sqlite")]
pub fn open_data_dir(dir: &Path, lock_policy: LockPolicy) -> Result<StoreChoice, BenchError> {
    Ok(StoreChoice::Shared {
        store: sqlite_store(dir, lock_policy)?,
        label: format!("sqlite:{}", dir.display()),
    })
}

/// The SQLite store in `dir` (created when there is none), its root key in `dir/root.key`.
#[cfg(feature = "sqlite")]
pub(crate) fn sqlite_store(
    dir: &Path,
    lock_policy: LockPolicy,
) -> Result<Arc<dyn KeyStore>, BenchError> {
    use keyplane_sqlite::root_key::KeyFileProvider;
    use keyplane_sqlite::{SqliteKeyStore, StoreOptions, StorePaths};
    let provider = Arc::new(KeyFileProvider::new(
        StorePaths::default_key_file(dir),
        lock_policy,
    ));
    let options = StoreOptions {
        lock_policy,
        ..StoreOptions::default()
    };
    let exists = StorePaths::new(dir).db.exists();
    let store = if exists {
        SqliteKeyStore::open(dir, provider, options)
    } else {
        SqliteKeyStore::init(dir, provider, options)
    }
    .map_err(|e| {
        BenchError::Setup(format!(
            "{} the SQLite store in {}: {e}",
            if exists { "opening" } else { "creating" },
            dir.display()
        ))
    })?;
    Ok(Arc::new(store))
}

/// Without the `sqlite` feature there is no durable store to run against.
#[cfg(not(feature = "sqlite"))]
pub fn open_data_dir(dir: &Path, _lock_policy: LockPolicy) -> Result<StoreChoice, BenchError> {
    Err(BenchError::Usage(format!(
        "--data-dir {}: this keyplane-bench was built without the `sqlite` feature",
        dir.display()
    )))
}

/// Runs the sweep and writes every output asked for (table unless quiet or JSON goes to standard
/// output, `--csv`, `--plot`, the JSON report); returns the report.
pub fn run_sweep(args: &SweepArgs, options: RunOptions) -> Result<Report, BenchError> {
    let report = sweep::measure(args, &options)?;
    let json_to_stdout = options.json == Some(Destination::Stdout);
    let csv = Destination::from_flag(&args.csv);
    let csv_to_stdout = csv == Some(Destination::Stdout);
    if let Some(dir) = &args.plot {
        let files = plot::write_charts(&report, dir)?;
        if !args.quiet {
            eprintln!(
                "keyplane-bench: wrote {} chart files to {}",
                files.len(),
                dir.display()
            );
        }
    }
    if !args.quiet {
        let table = report.to_table();
        if json_to_stdout || csv_to_stdout {
            eprint!("{table}");
        } else {
            print!("{table}");
        }
    }
    if let Some(dest) = &options.json {
        let text = serde_json::to_string_pretty(&report)
            .map_err(|e| BenchError::Output(format!("serialising the report: {e}")))?;
        write_to(dest, &(text + "\n"))?;
    }
    if let Some(dest) = &csv {
        write_to(dest, &report.to_csv())?;
    }
    Ok(report)
}

pub(crate) fn write_to(dest: &Destination, text: &str) -> Result<(), BenchError> {
    match dest {
        Destination::Stdout => {
            let mut out = std::io::stdout().lock();
            out.write_all(text.as_bytes())
                .and_then(|()| out.flush())
                .map_err(|e| BenchError::Output(format!("writing to standard output: {e}")))
        }
        Destination::File(path) => std::fs::write(path, text)
            .map_err(|e| BenchError::Output(format!("writing {}: {e}", path.display()))),
    }
}

/// Each distinct item of `items` once, in the order each first appears (the lists it is used on
/// are short: sweep axes, chart groups).
pub(crate) fn dedup<T: PartialEq>(items: impl IntoIterator<Item = T>) -> Vec<T> {
    let mut out = Vec::new();
    for x in items {
        if !out.contains(&x) {
            out.push(x);
        }
    }
    out
}

pub(crate) fn cpu_model() -> Option<String> {
    let info = std::fs::read_to_string("/proc/cpuinfo").ok()?;
    info.lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split(':').nth(1))
        .map(|s| s.trim().to_owned())
}
