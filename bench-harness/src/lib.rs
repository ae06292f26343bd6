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
pub mod compare;
#[cfg(feature = "endpoint")]
pub mod endpoint;
pub mod many_keys;
pub mod measure;
pub mod plot;
pub mod raw;
pub mod report;
pub mod stream;
pub mod workload;

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use keyplane::store::{KeyStore, MemoryKeyStore};
use keyplane::{Engine, KeySpec, LockPolicy};

pub use args::{BenchArgs, CompareWith, RsaPadding, SweepArgs, WorkloadChoice};
use measure::{sample, Amount, Histogram, Stats};
pub use report::Report;
use report::{Baseline, Comparison, EngineInfo, Latency, Machine, Point, Settings};
use workload::{
    alias_for, bench_context, ensure_key, BatchFn, Inputs, KeyFamily, Workload,
    MAX_SIGN_OR_MAC_MESSAGE, REENCRYPT_DESTINATION_ALIAS,
};

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

/// The stand-alone program: opens the store `--data-dir` names (if any), runs the sweep and writes
/// every output asked for.
pub fn run(args: &BenchArgs) -> Result<Report, BenchError> {
    let lock_policy = if args.allow_unlocked_memory {
        LockPolicy::Warn
    } else {
        LockPolicy::Require
    };
    let store = match &args.data_dir {
        None => StoreChoice::Memory,
        Some(dir) => open_data_dir(dir, lock_policy)?,
    };
    run_sweep(
        &args.sweep,
        RunOptions {
            json: Destination::from_flag(&args.json),
            store,
            lock_policy,
        },
    )
}

/// The stand-alone program's `many-keys` workload: the store `--data-dir` names (if any), or a
/// fresh in-memory one.
pub fn run_many_keys(args: &BenchArgs) -> Result<many_keys::ManyKeysReport, BenchError> {
    let lock_policy = if args.allow_unlocked_memory {
        LockPolicy::Warn
    } else {
        LockPolicy::Require
    };
    let store = match &args.data_dir {
        None => StoreChoice::Memory,
        Some(dir) => open_data_dir(dir, lock_policy)?,
    };
    many_keys::run(
        &args.sweep,
        &RunOptions {
            json: Destination::from_flag(&args.json),
            store,
            lock_policy,
        },
    )
}

/// Opens (or creates) the SQLite store in `dir`, with its root key in the key file
/// `dir/root.key` (the CLI's default layout).
#[cfg(feature = "sqlite")]
pub fn open_data_dir(dir: &Path, lock_policy: LockPolicy) -> Result<StoreChoice, BenchError> {
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
    Ok(StoreChoice::Shared {
        store: Arc::new(store),
        label: format!("sqlite:{}", dir.display()),
    })
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
    let report = measure_sweep(args, &options)?;
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

/// One (workload, key spec, message size) of the sweep.
#[derive(Debug, Clone, Copy)]
struct Group {
    workload: Workload,
    spec: KeySpec,
    size: usize,
}

fn plan(args: &SweepArgs) -> Result<Vec<Group>, BenchError> {
    let mut groups = Vec::new();
    for workload in args.workload_list() {
        let specs: Vec<KeySpec> = match workload.family() {
            KeyFamily::Symmetric => vec![KeySpec::SymmetricDefault],
            KeyFamily::Signing => args.sign_spec.clone(),
            KeyFamily::Mac => args.mac_spec.clone(),
        };
        let sizes: Vec<usize> = if workload.uses_size() {
            args.size.clone()
        } else {
            vec![workload::DATA_KEY_BYTES]
        };
        for spec in dedup(specs) {
            for &size in &dedup(sizes.clone()) {
                if matches!(workload.family(), KeyFamily::Signing | KeyFamily::Mac)
                    && size > MAX_SIGN_OR_MAC_MESSAGE
                {
                    return Err(BenchError::Usage(format!(
                        "{workload} takes messages of at most {MAX_SIGN_OR_MAC_MESSAGE} bytes \
                         (the service's limit), not {size}; give smaller --size values or run \
                         it separately"
                    )));
                }
                if workload.size_is_plaintext() && size > keyplane::ciphertext::MAX_PLAINTEXT_LIMIT
                {
                    return Err(BenchError::Usage(format!(
                        "{workload}: {size} bytes is over the engine's largest plaintext limit \
                         ({} bytes)",
                        keyplane::ciphertext::MAX_PLAINTEXT_LIMIT
                    )));
                }
                groups.push(Group {
                    workload,
                    spec,
                    size,
                });
            }
        }
    }
    if groups.is_empty() {
        return Err(BenchError::Usage("no workload to run".into()));
    }
    Ok(groups)
}

pub(crate) fn dedup<T: PartialEq>(v: Vec<T>) -> Vec<T> {
    let mut out = Vec::with_capacity(v.len());
    for x in v {
        if !out.contains(&x) {
            out.push(x);
        }
    }
    out
}

fn algorithm_name(workload: Workload, spec: KeySpec, padding: RsaPadding) -> String {
    match workload.family() {
        KeyFamily::Symmetric => "AES-256-GCM".into(),
        KeyFamily::Signing => workload::signing_algorithm(spec, padding)
            .map(|a| a.as_str().to_owned())
            .unwrap_or_default(),
        KeyFamily::Mac => workload::mac_algorithm(spec)
            .map(|a| a.as_str().to_owned())
            .unwrap_or_default(),
    }
}

pub(crate) fn cpu_model() -> Option<String> {
    let info = std::fs::read_to_string("/proc/cpuinfo").ok()?;
    info.lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split(':').nth(1))
        .map(|s| s.trim().to_owned())
}

/// Progress: a bar on a terminal; otherwise (unless quiet) one line per finished point.
struct Progress {
    bar: ProgressBar,
    lines: bool,
}

impl Progress {
    fn new(total: u64, quiet: bool) -> Progress {
        let target = if quiet {
            ProgressDrawTarget::hidden()
        } else {
            ProgressDrawTarget::stderr()
        };
        let bar = ProgressBar::with_draw_target(Some(total), target);
        bar.set_style(
            ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {bar:32.cyan/blue} {pos}/{len} (eta {eta}) {msg}",
            )
            .expect("a valid template")
            .progress_chars("=> "),
        );
        let lines = !quiet && bar.is_hidden();
        Progress { bar, lines }
    }

    fn start(&self, what: &str) {
        self.bar.set_message(what.to_owned());
    }

    fn done(&self, line: String) {
        if self.lines {
            eprintln!("  {line}");
        } else {
            self.bar.println(format!("  {line}"));
        }
    }
}

/// Everything one measurement needs to know about timing.
struct Timing {
    amount: Amount,
    warmup: Duration,
    repeats: u32,
}

/// Something measured: how each caller makes its closure, and how many callers.
struct Runner<'a> {
    make: Box<dyn Fn() -> Result<BatchFn<'a>, String> + Sync + 'a>,
    callers: u32,
}

/// What one runner measured: each repeat's rate, the merged latencies, the operations.
struct Measured {
    rates: Vec<f64>,
    cpu_rates: Vec<f64>,
    system_shares: Vec<f64>,
    latency: Histogram,
    ops: u64,
}

/// Warms every runner up, then measures them round-robin, one repeat of each per round, so that
/// drift on a shared machine (other processes, frequency changes) hits the engine points and their
/// raw baseline alike and the ratios stay fair.
fn measure_round_robin(
    runners: &[Runner<'_>],
    timing: &Timing,
    progress: &Progress,
) -> Result<Vec<Measured>, BenchError> {
    let mut out: Vec<Measured> = runners
        .iter()
        .map(|_| Measured {
            rates: Vec::new(),
            cpu_rates: Vec::new(),
            system_shares: Vec::new(),
            latency: Histogram::default(),
            ops: 0,
        })
        .collect();
    for r in runners {
        if !timing.warmup.is_zero() {
            sample(&*r.make, r.callers, Amount::Time(timing.warmup)).map_err(BenchError::Run)?;
        }
        progress.bar.inc(1);
    }
    for _ in 0..timing.repeats {
        for (r, m) in runners.iter().zip(&mut out) {
            let s = sample(&*r.make, r.callers, timing.amount).map_err(BenchError::Run)?;
            m.rates.push(s.rate);
            m.cpu_rates.push(s.cpu_rate);
            m.system_shares.push(s.system_share);
            m.latency.merge(&s.latency);
            m.ops += s.ops;
            progress.bar.inc(1);
        }
    }
    Ok(out)
}

/// Operations per raw-loop call such that a call lasts about 50 µs (the clock is read once per
/// call).
fn calibrate(state: &raw::RawState<'_>) -> Result<usize, BenchError> {
    let mut f = state.batch_fn(1);
    let start = Instant::now();
    let mut n = 0u32;
    while n < 200 && start.elapsed() < Duration::from_millis(20) {
        f().map_err(BenchError::Run)?;
        n += 1;
    }
    let per_op = start.elapsed().as_secs_f64() / f64::from(n.max(1));
    Ok(((50e-6 / per_op.max(1e-9)) as usize).clamp(1, 4096))
}

fn latency(h: &Histogram) -> Latency {
    Latency {
        p50_ms: h.percentile(50.0) / 1e6,
        p90_ms: h.percentile(90.0) / 1e6,
        p99_ms: h.percentile(99.0) / 1e6,
        max_ms: h.max_ns() as f64 / 1e6,
        calls: h.count(),
    }
}

fn measure_sweep(args: &SweepArgs, options: &RunOptions) -> Result<Report, BenchError> {
    let groups = plan(args)?;
    let threads = dedup(args.threads.clone());
    let batches = dedup(args.batch.clone());
    let callers = dedup(args.callers.clone());
    let context = (!args.no_context).then(bench_context);
    let compare_c = args.compare.contains(&CompareWith::C);
    let compare_python = args.compare.contains(&CompareWith::Python);
    let timing = Timing {
        amount: match args.ops {
            Some(n) => Amount::Ops(n as u64),
            None => Amount::Time(args.duration),
        },
        warmup: args.warmup,
        repeats: args.repeats,
    };
    let max_plaintext = groups
        .iter()
        .filter(|g| g.workload.size_is_plaintext())
        .map(|g| g.size)
        .max()
        .unwrap_or(0)
        .max(keyplane::dataplane::DEFAULT_MAX_PLAINTEXT);

    // Progress units: per measured thing, one for warm-up and one per repeat.
    let per = u64::from(args.repeats) + 1;
    let mut total = 0u64;
    for g in &groups {
        for _ in &batches {
            if !args.no_baseline {
                total += per;
            }
            total += per * (threads.len() * callers.len()) as u64;
            if g.workload == Workload::Encrypt {
                if compare_c {
                    total += 2 * per * threads.len() as u64;
                }
                if compare_python {
                    total += threads.len() as u64;
                }
            }
        }
    }
    let progress = Progress::new(total, args.quiet);
    progress.start("starting the engines");

    // One store for every engine: the setup engine makes (or finds) the keys first, then the
    // measured engines load them when they start.
    let (store, store_label): (Arc<dyn KeyStore>, String) = match &options.store {
        StoreChoice::Memory => (
            Arc::new(MemoryKeyStore::new(options.lock_policy)),
            "memory".into(),
        ),
        StoreChoice::Shared { store, label } => (Arc::clone(store), label.clone()),
    };
    let build = |threads: u32| {
        Engine::builder()
            .store(Arc::clone(&store))
            .worker_threads(threads as usize)
            .max_plaintext_bytes(max_plaintext)
            .lock_policy(options.lock_policy)
            .build()
            .map_err(|e| {
                BenchError::Setup(format!(
                    "starting an engine with {threads} worker threads: {e}{}",
                    if matches!(e, keyplane::Error::MemoryLock(_)) {
                        " (raise RLIMIT_MEMLOCK, or pass --allow-unlocked-memory)"
                    } else {
                        ""
                    }
                ))
            })
    };
    let setup = build(1)?;
    let mut specs: Vec<KeySpec> = groups.iter().map(|g| g.spec).collect();
    if groups
        .iter()
        .any(|g| g.workload.family() == KeyFamily::Symmetric)
    {
        specs.push(KeySpec::SymmetricDefault);
    }
    for spec in dedup(specs) {
        ensure_key(&setup, &alias_for(spec), spec)?;
    }
    if groups.iter().any(|g| g.workload == Workload::ReEncrypt) {
        ensure_key(
            &setup,
            REENCRYPT_DESTINATION_ALIAS,
            KeySpec::SymmetricDefault,
        )?;
    }
    let mut engines: BTreeMap<u32, Engine> = BTreeMap::new();
    for &t in &threads {
        engines.insert(t, build(t)?);
    }

    let mut notes = Vec::new();
    let mut c_engines: BTreeMap<u32, compare::CEngine> = BTreeMap::new();
    if compare_c && groups.iter().any(|g| g.workload == Workload::Encrypt) {
        for &t in &threads {
            let engine = compare::CEngine::new(
                t as usize,
                max_plaintext,
                options.lock_policy == LockPolicy::Warn,
                context.is_some(),
            )
            .map_err(|e| BenchError::Setup(format!("C ABI: {e}")))?;
            c_engines.insert(t, engine);
        }
    }
    let python = if compare_python {
        compare::python_available(&args.python)
    } else {
        Ok(())
    };
    if let (true, Err(e)) = (compare_python, &python) {
        notes.push(format!("--compare python skipped: {e}"));
    }

    let mut baselines = Vec::new();
    let mut points = Vec::new();
    let mut comparisons = Vec::new();
    for g in &groups {
        let algorithm = algorithm_name(g.workload, g.spec, args.rsa_padding);
        let label = format!(
            "{} {} {}",
            g.workload,
            report::short_alg(&algorithm, g.spec),
            report::human_size(g.size)
        );
        let bytes = |rate: f64| g.workload.uses_size().then_some(rate * g.size as f64);
        for &batch in &batches {
            progress.start(&format!("{label}, batch {batch}"));
            let inputs = Inputs::prepare(
                &setup,
                g.workload,
                g.spec,
                g.size,
                batch,
                context.clone(),
                args.rsa_padding,
            )?;
            let raw_state = if args.no_baseline {
                None
            } else {
                let state = raw::RawState::new(&inputs, g.spec, args.into)?;
                let chunk = calibrate(&state)?;
                Some((state, chunk))
            };
            // Runners: the raw baseline, every (threads, callers) point, and for encrypt the
            // Rust `encrypt_batch_into` / C ABI pairs of --compare c.
            let mut runners: Vec<Runner<'_>> = Vec::new();
            if let Some((state, chunk)) = &raw_state {
                runners.push(Runner {
                    make: Box::new(move || Ok(state.batch_fn(*chunk))),
                    callers: 1,
                });
            }
            let mut point_keys = Vec::new();
            for &t in &threads {
                let engine = &engines[&t];
                for &c in &callers {
                    let inputs = &inputs;
                    runners.push(Runner {
                        make: Box::new(move || Ok(inputs.batch_fn(engine, args.into))),
                        callers: c,
                    });
                    point_keys.push((t, c));
                }
            }
            let mut c_keys = Vec::new();
            if g.workload == Workload::Encrypt {
                for (&t, c_engine) in &c_engines {
                    let engine = &engines[&t];
                    let inputs = &inputs;
                    runners.push(Runner {
                        make: Box::new(move || Ok(inputs.batch_fn(engine, true))),
                        callers: 1,
                    });
                    runners.push(Runner {
                        make: Box::new(move || Ok(c_engine.batch_fn(&inputs.messages))),
                        callers: 1,
                    });
                    c_keys.push(t);
                }
            }
            let measured = measure_round_robin(&runners, &timing, &progress)?;
            let mut measured = measured.into_iter();

            let raw_rate = if raw_state.is_some() {
                let m = measured.next().expect("a result per runner");
                let stats = Stats::of(&m.rates);
                let cpu = Stats::of(&m.cpu_rates);
                let median = stats.median;
                let cpu_median = cpu.median;
                progress.done(format!(
                    "{label}, batch {batch}: raw aws-lc-rs, 1 thread: {} ops/s (±{:.1}%)",
                    report::human(median),
                    stats.spread_pct
                ));
                baselines.push(Baseline {
                    workload: g.workload,
                    key_spec: g.spec,
                    algorithm: algorithm.clone(),
                    size: inputs.size,
                    batch,
                    bytes_per_sec: bytes(median),
                    ops_per_sec: stats,
                    ops_per_cpu_sec: cpu,
                    system_cpu_share: Stats::of(&m.system_shares).median,
                });
                Some((median, cpu_median))
            } else {
                None
            };
            for (t, c) in point_keys {
                let m = measured.next().expect("a result per runner");
                let stats = Stats::of(&m.rates);
                let cpu = Stats::of(&m.cpu_rates);
                let workers = f64::from(t.max(c));
                let vs_raw = raw_rate.filter(|r| r.0 > 0.0).map(|r| stats.median / r.0);
                let vs_raw_cpu = raw_rate.filter(|r| r.1 > 0.0).map(|r| cpu.median / r.1);
                let point = Point {
                    workload: g.workload,
                    key_spec: g.spec,
                    algorithm: algorithm.clone(),
                    size: inputs.size,
                    threads: t,
                    batch,
                    callers: c,
                    bytes_per_sec: bytes(stats.median),
                    batch_latency: latency(&m.latency),
                    ops: m.ops,
                    raw_ops_per_sec: raw_rate.map(|r| r.0),
                    vs_raw,
                    vs_raw_per_thread: vs_raw.map(|v| v / workers),
                    vs_raw_cpu,
                    vs_1_thread: None,
                    ops_per_sec: stats,
                    ops_per_cpu_sec: cpu,
                    system_cpu_share: Stats::of(&m.system_shares).median,
                };
                progress.done(format!(
                    "{label}, batch {batch}, {t} thread{}{}: {} ops/s (±{:.1}%){}",
                    if t == 1 { "" } else { "s" },
                    if c > 1 {
                        format!(", {c} callers")
                    } else {
                        String::new()
                    },
                    report::human(point.ops_per_sec.median),
                    point.ops_per_sec.spread_pct,
                    point
                        .vs_raw
                        .map(|v| format!(", {v:.3} of raw"))
                        .unwrap_or_default()
                ));
                points.push(point);
            }
            for t in c_keys {
                let rust = measured.next().expect("a result per runner");
                let c_abi = measured.next().expect("a result per runner");
                let (r, c) = (Stats::of(&rust.rates), Stats::of(&c_abi.rates));
                let (r_cpu, c_cpu) = (Stats::of(&rust.cpu_rates), Stats::of(&c_abi.cpu_rates));
                let ratio = (r.median > 0.0).then(|| c.median / r.median);
                let ratio_cpu = (r_cpu.median > 0.0).then(|| c_cpu.median / r_cpu.median);
                progress.done(format!(
                    "{label}, batch {batch}, {t} thread{}: C ABI {} ops/s vs Rust \
                     encrypt_batch_into {} ops/s ({:.3})",
                    if t == 1 { "" } else { "s" },
                    report::human(c.median),
                    report::human(r.median),
                    ratio.unwrap_or(0.0)
                ));
                comparisons.push(Comparison {
                    binding: "c".into(),
                    workload: g.workload,
                    size: g.size,
                    threads: t,
                    batch,
                    status: "ok".into(),
                    message: None,
                    rust_api: "encrypt_batch_into".into(),
                    rust_ops_per_sec: Some(r),
                    binding_ops_per_sec: Some(c),
                    ratio,
                    ratio_cpu,
                });
            }

            if g.workload == Workload::Encrypt && compare_python {
                for &t in &threads {
                    let rust = points
                        .iter()
                        .rev()
                        .find(|p| p.threads == t && p.callers == 1 && p.batch == batch)
                        .map(|p| p.ops_per_sec.clone());
                    let mut entry = Comparison {
                        binding: "python".into(),
                        workload: g.workload,
                        size: g.size,
                        threads: t,
                        batch,
                        status: "skipped".into(),
                        message: None,
                        rust_api: if args.into {
                            "encrypt_batch_into".into()
                        } else {
                            "encrypt_batch".into()
                        },
                        rust_ops_per_sec: rust,
                        binding_ops_per_sec: None,
                        ratio: None,
                        ratio_cpu: None,
                    };
                    match &python {
                        Err(_) => entry.message = Some("not installed (see the note)".into()),
                        Ok(()) => {
                            progress.start(&format!("{label}, batch {batch}: {t} threads: Python"));
                            let secs = match timing.amount {
                                Amount::Time(d) => d.as_secs_f64(),
                                Amount::Ops(_) => args.duration.as_secs_f64(),
                            };
                            match compare::python_run(
                                &args.python,
                                t,
                                batch,
                                g.size,
                                secs,
                                timing.warmup.as_secs_f64(),
                                timing.repeats,
                                max_plaintext,
                                context.is_some(),
                            )? {
                                compare::PythonOutcome::Rates(rates, api) if !rates.is_empty() => {
                                    entry.message = Some(api);
                                    let s = Stats::of(&rates);
                                    entry.ratio = entry
                                        .rust_ops_per_sec
                                        .as_ref()
                                        .filter(|r| r.median > 0.0)
                                        .map(|r| s.median / r.median);
                                    progress.done(format!(
                                        "{label}, batch {batch}, {t} thread{}: Python {} ops/s",
                                        if t == 1 { "" } else { "s" },
                                        report::human(s.median)
                                    ));
                                    entry.binding_ops_per_sec = Some(s);
                                    entry.status = "ok".into();
                                }
                                compare::PythonOutcome::Rates(..) => {
                                    entry.status = "failed".into();
                                    entry.message = Some("the Python run measured nothing".into());
                                }
                                compare::PythonOutcome::NotInstalled(m) => {
                                    entry.message = Some(m);
                                }
                                compare::PythonOutcome::Failed(m) => {
                                    entry.status = "failed".into();
                                    entry.message = Some(m);
                                }
                            }
                        }
                    }
                    progress.bar.inc(1);
                    comparisons.push(entry);
                }
            }
        }
    }
    progress.bar.finish_and_clear();

    let noisy: Vec<String> = points
        .iter()
        .filter(|p| p.ops_per_sec.spread_pct > 10.0 && p.ops_per_sec.samples.len() > 1)
        .map(|p| {
            format!(
                "{} {} {} t{} b{}",
                p.workload,
                report::short_alg(&p.algorithm, p.key_spec),
                report::human_size(p.size),
                p.threads,
                p.batch
            )
        })
        .collect();
    if !noisy.is_empty() {
        notes.push(format!(
            "{} point(s) spread over 10% between repeats (a busy machine?): {}; use more \
             --repeats or a longer --duration",
            noisy.len(),
            noisy.join("; ")
        ));
    }
    let in_kernel: Vec<String> = points
        .iter()
        .filter(|p| p.system_cpu_share > 0.15)
        .map(|p| {
            format!(
                "{} {} {} t{} b{} ({:.0}%)",
                p.workload,
                report::short_alg(&p.algorithm, p.key_spec),
                report::human_size(p.size),
                p.threads,
                p.batch,
                p.system_cpu_share * 100.0
            )
        })
        .collect();
    if !in_kernel.is_empty() {
        notes.push(format!(
            "{} point(s) spent over 15% of their CPU time in the kernel: {}. With large batches \
             of large results this is usually page faults: glibc returns the freed results to \
             the kernel between batches and the next batch faults them back in (see \
             docs/performance.md: GLIBC_TUNABLES=glibc.malloc.trim_threshold, --into)",
            in_kernel.len(),
            in_kernel.join("; ")
        ));
    }
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    if threads.iter().any(|&t| t as usize > cpus) {
        notes.push(format!(
            "some points use more engine threads than this machine's {cpus} CPUs"
        ));
    }
    if cfg!(debug_assertions) {
        notes.push(
            "this is a debug build of the harness and engine: the numbers are not meaningful; \
             build with --release"
                .into(),
        );
    }

    let mut report = Report {
        harness: format!("keyplane-bench {}", env!("CARGO_PKG_VERSION")),
        engine: EngineInfo {
            fips: keyplane::fips_mode(),
            store: store_label,
            lock_policy: format!("{:?}", options.lock_policy),
            max_plaintext_bytes: max_plaintext,
        },
        machine: Machine {
            cpus,
            cpu_model: cpu_model(),
            os: std::env::consts::OS.into(),
            optimized_build: !cfg!(debug_assertions),
        },
        settings: Settings {
            duration_ms: match timing.amount {
                Amount::Time(d) => Some(d.as_secs_f64() * 1e3),
                Amount::Ops(_) => None,
            },
            ops: args.ops.map(|n| n as u64),
            warmup_ms: args.warmup.as_secs_f64() * 1e3,
            repeats: args.repeats,
            context: context.is_some(),
            into: args.into,
            rsa_padding: format!("{:?}", args.rsa_padding),
            per_thread_divisor: "max(threads, callers)".into(),
        },
        baselines,
        points,
        compare: comparisons,
        recommendations: Vec::new(),
        targets: Vec::new(),
        notes,
    };
    report.link_thread_scaling();
    report.check_targets();
    if args.recommend {
        report.recommend(args.latency_bound_ms);
    }
    Ok(report)
}
