//! The scale part (`--fleet-keys N`): the store filled to N keys, a node's cold start, and
//! propagation among N keys.
//!
//! - Fill: keys made by real engines (a fresh in-memory engine per batch creates the batch's keys
//!   with CreateKey; its store's contents, records and material, are what is loaded), written by
//!   the store's bulk path ([`PostgresKeyStore::bulk_insert_keys`]: one commit per batch, rows
//!   with `COPY`, sealed and logged as any commit). One thread makes batches while another
//!   writes the previous one.
//! - Cold start: a process of its own (this program again, with a hidden option) opens the store,
//!   builds a node (loading every key) and encrypts under one key; it reports the time to that
//!   working engine and its peak resident set (`VmHWM` in /proc/self/status).
//! - Propagation among N keys, LISTEN/NOTIFY, as among ten (the same measurement, the same run).

use std::fmt::Write as _;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use keyplane::store::{KeyStore, MemoryKeyStore, StoreContents};
use keyplane::{CreateKeyRequest, EncryptRequest, Engine, LockPolicy};

use super::nodes::{failed, node, pg_open};
use super::options::FleetArgs;
use super::propagation::{self, Mode, PropagationRow, NOTIFY_FALLBACK};
use crate::report::render;
use crate::BenchError;

/// A node's cold start, measured in a process of its own.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct ColdStart {
    /// Keys the node loaded.
    pub keys: usize,
    /// Opening the store (connections, schema and root key checks).
    pub open_ms: f64,
    /// Building the engine: loading every key, aliases and material, checked.
    pub build_ms: f64,
    /// From the start to the first Encrypt answered.
    pub total_ms: f64,
    /// The process's peak resident set (VmHWM).
    pub peak_rss_bytes: u64,
    /// Its resident set once started (VmRSS).
    pub rss_bytes: u64,
}

/// The scale part's results.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ScaleReport {
    /// Keys in the store after the fill.
    pub keys: usize,
    /// Keys the fill added, and how.
    pub filled: usize,
    pub batch: usize,
    pub fill_seconds: f64,
    pub fill_keys_per_sec: f64,
    /// `pg_database_size` after the fill.
    pub database_bytes: Option<u64>,
    pub cold_start: ColdStart,
    /// Propagation among `keys` keys (LISTEN/NOTIFY).
    pub propagation: PropagationRow,
}

fn status_bytes(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kib| kib.parse::<u64>().ok())
        .map_or(0, |kib| kib * 1024)
}

/// The cold-start child's work (see the module documentation).
pub fn cold_start_child(
    address: &str,
    root: &Path,
    lock_policy: LockPolicy,
    max_keys: usize,
) -> Result<ColdStart, BenchError> {
    let started = Instant::now();
    let store = pg_open(address, root, lock_policy)?;
    let opened = started.elapsed();
    let engine = node(store, lock_policy, Some(NOTIFY_FALLBACK), max_keys)?;
    let built = started.elapsed();
    let first = engine
        .list_keys(Some(1), None)
        .map_err(|e| failed("ListKeys", e))?
        .items
        .into_iter()
        .next()
        .ok_or_else(|| failed("cold start", "the store holds no keys"))?;
    engine
        .encrypt(&EncryptRequest::new(&first.key_id, b"cold start"))
        .map_err(|e| failed("Encrypt", e))?;
    let total = started.elapsed();
    let mut keys = 0;
    let mut marker: Option<String> = None;
    loop {
        let page = engine
            .list_keys(Some(1000), marker.as_deref())
            .map_err(|e| failed("ListKeys", e))?;
        keys += page.items.len();
        if !page.truncated {
            break;
        }
        marker = page.next_marker;
    }
    Ok(ColdStart {
        keys,
        open_ms: opened.as_secs_f64() * 1e3,
        build_ms: (built - opened).as_secs_f64() * 1e3,
        total_ms: total.as_secs_f64() * 1e3,
        peak_rss_bytes: status_bytes("VmHWM:"),
        rss_bytes: status_bytes("VmRSS:"),
    })
}

/// Runs the cold-start child and reads its answer.
fn cold_start(
    address: &str,
    root: &Path,
    args: &FleetArgs,
    lock_policy: LockPolicy,
) -> Result<ColdStart, BenchError> {
    let exe = std::env::current_exe().map_err(|e| failed("finding this program", e))?;
    let mut command = std::process::Command::new(exe);
    command
        .args(["--workload", "fleet", "--quiet", "--store", address])
        .arg("--fleet-cold-start")
        .arg(root)
        .args(["--fleet-keys", &args.fleet_keys.max(1).to_string()])
        .stderr(std::process::Stdio::inherit());
    if lock_policy != LockPolicy::Require {
        command.arg("--allow-unlocked-memory");
    }
    let output = command
        .output()
        .map_err(|e| failed("starting the cold-start process", e))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        return Err(failed(
            "the cold-start process",
            format!("{} ({stdout})", output.status),
        ));
    }
    let line = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(line).map_err(|e| failed("the cold-start process's answer", e))
}

/// A batch of `n` new keys made by a fresh in-memory engine: its store's contents.
fn make_batch(n: usize, lock_policy: LockPolicy) -> Result<StoreContents, BenchError> {
    let store = Arc::new(MemoryKeyStore::new(lock_policy));
    let engine = Engine::builder()
        .store(Arc::clone(&store) as Arc<dyn KeyStore>)
        .lock_policy(lock_policy)
        .worker_threads(1)
        .max_keys(n + 1)
        .build()
        .map_err(|e| failed("an in-memory engine", e))?;
    for _ in 0..n {
        engine
            .create_key(CreateKeyRequest::default())
            .map_err(|e| failed("CreateKey (fill)", e))?;
    }
    drop(engine);
    store.load().map_err(|e| failed("the batch's keys", e))
}

/// Fills the store to `target` keys; returns the keys added and the time taken.
fn fill(
    address: &str,
    root: &Path,
    target: usize,
    batch: usize,
    lock_policy: LockPolicy,
    progress: &dyn Fn(&str),
) -> Result<(usize, usize, Duration), BenchError> {
    let store = pg_open(address, root, lock_policy)?;
    let existing = store
        .load()
        .map_err(|e| failed("counting the keys", e))?
        .keys
        .len();
    let wanted = target.saturating_sub(existing);
    let batch = batch.clamp(1, keyplane_postgres::MAX_BULK_KEYS);
    let started = Instant::now();
    let (send, receive) = std::sync::mpsc::sync_channel::<Result<StoreContents, BenchError>>(1);
    let mut added = 0;
    std::thread::scope(|s| -> Result<(), BenchError> {
        s.spawn(move || {
            let mut made = 0;
            while made < wanted {
                let n = batch.min(wanted - made);
                let next = make_batch(n, lock_policy);
                let stop = next.is_err();
                if send.send(next).is_err() || stop {
                    return;
                }
                made += n;
            }
        });
        let mut next_report = 100_000;
        for contents in receive {
            let contents = contents?;
            store
                .bulk_insert_keys(&contents.keys, &contents.materials)
                .map_err(|e| failed("the bulk load", e))?;
            added += contents.keys.len();
            if added >= next_report {
                progress(&format!(
                    "filled {added} of {wanted} keys ({:.0} keys/s)",
                    added as f64 / started.elapsed().as_secs_f64()
                ));
                next_report += 100_000;
            }
        }
        Ok(())
    })?;
    Ok((existing + added, added, started.elapsed()))
}

fn database_bytes(address: &str) -> Option<u64> {
    let mut client = postgres::Client::connect(address, postgres::NoTls).ok()?;
    let row = client
        .query_one("SELECT pg_database_size(current_database())", &[])
        .ok()?;
    u64::try_from(row.get::<_, i64>(0)).ok()
}

/// The scale part.
pub fn run(
    address: &str,
    root: &Path,
    args: &FleetArgs,
    lock_policy: LockPolicy,
    max_keys: usize,
    progress: &dyn Fn(&str),
) -> Result<ScaleReport, BenchError> {
    progress(&format!(
        "filling the store to {} keys ({} per transaction)",
        args.fleet_keys, args.fleet_batch
    ));
    let (keys, filled, took) = fill(
        address,
        root,
        args.fleet_keys,
        args.fleet_batch,
        lock_policy,
        progress,
    )?;
    let database_bytes = database_bytes(address);
    progress(&format!("cold start of a node on {keys} keys"));
    let cold_start = cold_start(address, root, args, lock_policy)?;
    progress(&format!("propagation among {keys} keys (LISTEN/NOTIFY)"));
    let open = || pg_open(address, root, lock_policy).map(|s| s as Arc<dyn KeyStore>);
    let propagation = propagation::measure(
        &open,
        Mode::Notify,
        args.fleet_poll,
        args.fleet_changes,
        Some(keys),
        lock_policy,
        max_keys,
    )?;
    Ok(ScaleReport {
        keys,
        filled,
        batch: args.fleet_batch,
        fill_seconds: took.as_secs_f64(),
        fill_keys_per_sec: filled as f64 / took.as_secs_f64().max(1e-9),
        database_bytes,
        cold_start,
        propagation,
    })
}

impl ScaleReport {
    /// The scale part as text.
    pub fn to_table(&self) -> String {
        let mut out = String::new();
        let mb = |b: u64| format!("{:.0} MiB", b as f64 / (1024.0 * 1024.0));
        let _ = writeln!(
            out,
            "\nscale: {} keys; fill added {} in {:.1} s ({:.0} keys/s, {} per transaction); \
             database {}",
            self.keys,
            self.filled,
            self.fill_seconds,
            self.fill_keys_per_sec,
            self.batch,
            self.database_bytes.map_or("-".into(), mb)
        );
        let c = &self.cold_start;
        out.push_str(&render(
            &[
                "cold start",
                "keys",
                "open ms",
                "load+build ms",
                "to first Encrypt ms",
                "peak RSS",
                "RSS",
            ],
            &[vec![
                "new process".into(),
                c.keys.to_string(),
                format!("{:.0}", c.open_ms),
                format!("{:.0}", c.build_ms),
                format!("{:.0}", c.total_ms),
                mb(c.peak_rss_bytes),
                mb(c.rss_bytes),
            ]],
            false,
        ));
        out
    }
}
