//! The `many-keys` workload: an engine filled with symmetric keys up to each of `--key-counts`
//! (1k, 100k, 1M by default), measured at each size, in one engine that grows from the first size
//! to the last:
//!
//! - CreateKey: microseconds per key over the last 1000 keys created to reach the size (at the
//!   first size, from an empty engine: the baseline the "within 2x" compares with);
//! - DescribeKey and Encrypt (64 bytes): nanoseconds per call, cycling through up to 1024 keys
//!   spread over the whole engine (each used once before timing, so that the Encrypt times are the
//!   lookup and the seal, not the first use's key derivation); Encrypt cycling through as many
//!   keys created last (laid out in memory together, as every key is at the first size), and
//!   under one key;
//! - memory: the process's resident set and the engine's locked memory, per key, as the growth
//!   since the engine was built over the keys created since; and the resident set a key's first
//!   Encrypt adds (its data-plane caches and session), over the keys first used at that size;
//! - with a durable store (`--durable`, `--data-dir`): the time a new engine takes to load it;
//! - the ceiling for a cold key: a bare aws-lc-rs seal of 64 bytes, cycling through as many
//!   keys spread over as many bare keys as the engine holds (one `LessSafeKey` each, made
//!   after the engine's keys at each size), and under one. Its ratio from the first size to the
//!   last is what the memory hierarchy charges a cipher context out of cache, with none of the
//!   engine's work: the part of the lookup target no engine removes.
//!
//! Single calls on the caller's thread, no audit, each loop timed after an untimed pass. Times
//! are CPU time of the process per call (`getrusage`: the calls run on this thread alone), barely
//! moved by other processes on a shared machine; the JSON report also has the wall-clock times.
//! The targets: CreateKey at 1M keys within 2x of CreateKey into an empty engine, lookups
//! unchanged from 1k to 1M.

use std::sync::Arc;
use std::time::{Duration, Instant};

use keyplane::store::{KeyStore, MemoryKeyStore};
use keyplane::{CreateKeyRequest, EncryptRequest, Engine};

use crate::measure::process_cpu_time;
use crate::raw::ManyAeadKeys;
use crate::{write_to, BenchError, Destination, RunOptions, StoreChoice, SweepArgs};

/// CreateKey calls timed at each size (the last ones before it is reached).
const CREATE_PROBE: usize = 1000;
/// Keys the lookups cycle through.
const LOOKUP_KEYS: usize = 1024;
/// Calls timed per lookup measurement.
const LOOKUPS: usize = 20_000;

/// One measured size.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ManyKeysRow {
    pub keys: usize,
    /// CPU microseconds per CreateKey over the last `create_probe` keys created to reach `keys`.
    pub create_us_per_key: f64,
    pub create_us_per_key_wall: f64,
    pub create_probe: usize,
    /// CPU nanoseconds per DescribeKey.
    pub describe_ns: f64,
    pub describe_ns_wall: f64,
    /// CPU nanoseconds per DescribeKey in the untimed first pass: the first loop after the keys
    /// were created, so what the allocator does once after a million CreateKeys lands here.
    pub describe_first_pass_ns: f64,
    /// CPU nanoseconds per Encrypt of 64 bytes, cycling through `lookup_keys` keys spread over
    /// the engine.
    pub encrypt_ns: f64,
    pub encrypt_ns_wall: f64,
    /// CPU nanoseconds per Encrypt of 64 bytes, cycling through the `lookup_keys` keys created
    /// last: as many keys as the spread lookups, but laid out in memory together, as every key
    /// is at the first size. Against `encrypt_ns` it separates where the keys lie in memory from
    /// how many the engine holds.
    pub encrypt_newest_ns: f64,
    pub encrypt_newest_ns_wall: f64,
    /// Encrypt of 64 bytes under one key.
    pub encrypt_one_key_ns: f64,
    pub encrypt_one_key_ns_wall: f64,
    /// CPU nanoseconds per bare aws-lc-rs seal of 64 bytes, cycling through `lookup_keys` keys
    /// spread over as many bare keys as the engine holds: the ceiling for a cold key.
    pub bare_seal_ns: f64,
    /// The bare seal under one key.
    pub bare_seal_one_key_ns: f64,
    pub lookup_keys: usize,
    /// Resident set growth since the engine was built, per key created since.
    pub rss_bytes_per_key: f64,
    /// Locked (or, with unlocked memory allowed, key) memory growth per key.
    pub locked_bytes_per_key: f64,
    /// Resident set growth per key over the first Encrypt under keys not used before (up to
    /// twice `lookup_keys` at each size: the spread keys and the newest).
    pub rss_bytes_per_used_key: f64,
    pub keys_first_used: usize,
    /// Milliseconds a new engine takes to load the store (durable stores only).
    pub load_ms: Option<f64>,
}

/// The whole workload's result.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ManyKeysReport {
    pub store: String,
    pub optimized_build: bool,
    pub rows: Vec<ManyKeysRow>,
    /// CreateKey at the largest size over CreateKey at the first (target: at most 2).
    pub create_ratio: Option<f64>,
    /// Encrypt (spread keys) at the largest size over the first (target: about 1).
    pub encrypt_ratio: Option<f64>,
    pub describe_ratio: Option<f64>,
    /// The bare seal under a spread key at the largest size over the first: what the hardware
    /// alone adds to a cold key.
    pub bare_seal_ratio: Option<f64>,
    /// Milliseconds (wall) the engine, holding the largest size's keys, took to drop: what a
    /// service that replaces its engine pays on the thread that lets the old one go.
    pub drop_ms: f64,
}

fn failed(what: &str, e: impl std::fmt::Display) -> BenchError {
    BenchError::Run(format!("many-keys: {what}: {e}"))
}

/// The process's resident set in bytes (Linux `/proc/self/status`), if known.
pub fn resident_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// A key id as CreateKey returned it (a hyphenated UUID) from its 16 bytes.
fn key_id(id: u128) -> String {
    let hex = format!("{id:032x}");
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

fn key_memory() -> usize {
    let stats = keyplane::locked_memory_stats();
    stats.locked_bytes + stats.unlocked_bytes
}

/// A start of measurement: wall clock and the process's CPU time.
struct Started(Instant, Duration);

impl Started {
    fn now() -> Started {
        let (user, system) = process_cpu_time();
        Started(Instant::now(), user + system)
    }

    /// Nanoseconds per call since the start, over `calls` calls: (CPU, wall).
    fn per_call_ns(&self, calls: usize) -> (f64, f64) {
        let (user, system) = process_cpu_time();
        let cpu = (user + system).saturating_sub(self.1);
        let calls = calls as f64;
        (
            cpu.as_secs_f64() * 1e9 / calls,
            self.0.elapsed().as_secs_f64() * 1e9 / calls,
        )
    }
}

/// Nanoseconds per call of `run` over `calls` calls, timed after one pass over the same calls
/// (whose CPU time per call is kept beside). The untimed pass takes what happens once rather
/// than per call: after a million CreateKeys glibc's allocator holds a backlog of freed chunks,
/// which it sorts on the first allocations its per-thread cache cannot serve (tens of
/// milliseconds, charged to whichever loop came first: DescribeKey at 1M keys read 1.6 or
/// 3.6 µs from run to run, and moved with the allocation sizes of the key's first Encrypt;
/// docs/performance.md).
fn per_call_ns(
    calls: usize,
    run: impl FnMut(usize) -> Result<(), BenchError>,
) -> Result<Timed, BenchError> {
    let mut run = run;
    let first = Started::now();
    for i in 0..calls {
        run(i)?;
    }
    let (first_pass, _) = first.per_call_ns(calls);
    let started = Started::now();
    for i in 0..calls {
        run(i)?;
    }
    let (cpu, wall) = started.per_call_ns(calls);
    Ok(Timed {
        cpu,
        wall,
        first_pass,
    })
}

/// A timed loop: CPU and wall nanoseconds per call, and CPU per call of its first pass.
struct Timed {
    cpu: f64,
    wall: f64,
    first_pass: f64,
}

fn count_keys(engine: &Engine) -> Result<usize, BenchError> {
    let mut count = 0;
    let mut marker: Option<String> = None;
    loop {
        let page = engine
            .list_keys(Some(1000), marker.as_deref())
            .map_err(|e| failed("ListKeys", e))?;
        count += page.items.len();
        if !page.truncated {
            return Ok(count);
        }
        marker = page.next_marker;
    }
}

/// Runs the workload over `sweep.key_counts` and prints its table (or writes its JSON report where
/// `options.json` says).
pub fn run(sweep: &SweepArgs, options: &RunOptions) -> Result<ManyKeysReport, BenchError> {
    let mut sizes = sweep.key_counts.clone();
    sizes.sort_unstable();
    sizes.dedup();
    let largest = *sizes
        .last()
        .ok_or_else(|| BenchError::Usage("many-keys: no --key-counts".into()))?;
    let (store, label, durable): (Arc<dyn KeyStore>, String, bool) = match &options.store {
        StoreChoice::Memory => (
            Arc::new(MemoryKeyStore::new(options.lock_policy)),
            "memory".into(),
            false,
        ),
        StoreChoice::Shared { store, label } => (Arc::clone(store), label.clone(), true),
    };
    let build = || {
        Engine::builder()
            .store(Arc::clone(&store))
            .lock_policy(options.lock_policy)
            .worker_threads(1)
            .max_keys(largest.saturating_add(CREATE_PROBE))
            .build()
    };
    let engine = build().map_err(|e| failed("engine", e))?;
    let mut held = count_keys(&engine)?;
    let rss_base = resident_bytes().unwrap_or(0);
    let key_memory_base = key_memory();
    let held_base = held;
    // Every key created, as 16 bytes (its id parsed), for the lookups to pick keys spread over
    // the whole engine at each size. Reserved up front (its pages are touched as it fills) and
    // left out of the memory per key.
    let mut ids: Vec<u128> = Vec::with_capacity(largest.saturating_sub(held));
    let create = |held: &mut usize, ids: &mut Vec<u128>| -> Result<(), BenchError> {
        let key = engine
            .create_key(CreateKeyRequest::default())
            .map_err(|e| failed("CreateKey", e))?;
        let id = u128::from_str_radix(&key.key_id.replace('-', ""), 16)
            .map_err(|e| failed("CreateKey's key id", e))?;
        ids.push(id);
        *held += 1;
        Ok(())
    };
    let plaintext = [0x5au8; 64];
    // The bare keys, one per engine key, and the resident memory they added (left out of the
    // engine's memory per key).
    let mut bare = ManyAeadKeys::new();
    let mut bare_rss = 0u64;
    let mut sealed = [0u8; 64 + 16];
    // Keys an Encrypt has used, for the memory a key's first use adds.
    let mut used = std::collections::HashSet::new();
    let mut rows = Vec::new();
    for &size in &sizes {
        if size <= held {
            continue;
        }
        let probe = CREATE_PROBE.min(size - held);
        while held < size - probe {
            create(&mut held, &mut ids)?;
        }
        let started = Started::now();
        while held < size {
            create(&mut held, &mut ids)?;
        }
        let (create_cpu, create_wall) = started.per_call_ns(probe);
        let rss = resident_bytes().unwrap_or(0).saturating_sub(bare_rss);
        let locked = key_memory();
        let grown = (held - held_base).max(1) as f64;
        let before_bare = resident_bytes().unwrap_or(0);
        bare.grow_to(held)?;
        bare_rss += resident_bytes().unwrap_or(0).saturating_sub(before_bare);

        // LOOKUP_KEYS keys evenly spread over every key created so far.
        let count = LOOKUP_KEYS.min(ids.len());
        let lookup: Vec<String> = (0..count)
            .map(|i| key_id(ids[i * ids.len() / count]))
            .collect();
        let lookup: Vec<&str> = lookup.iter().map(String::as_str).collect();
        let newest: Vec<String> = ids[ids.len() - count..]
            .iter()
            .map(|&id| key_id(id))
            .collect();
        let newest: Vec<&str> = newest.iter().map(String::as_str).collect();
        let first_used = lookup
            .iter()
            .chain(&newest)
            .filter(|key| used.insert(key.to_string()))
            .count();
        let rss_before_use = resident_bytes().unwrap_or(0);
        for key in lookup.iter().chain(&newest) {
            engine
                .encrypt(&EncryptRequest::new(key, &plaintext))
                .map_err(|e| failed("Encrypt", e))?;
        }
        let rss_bytes_per_used_key = resident_bytes().unwrap_or(0).saturating_sub(rss_before_use)
            as f64
            / first_used.max(1) as f64;
        let describe = per_call_ns(LOOKUPS, |i| {
            engine
                .describe_key(lookup[i % lookup.len()])
                .map(|_| ())
                .map_err(|e| failed("DescribeKey", e))
        })?;
        // Encrypt of 64 bytes cycling through `keys`.
        let encrypt_cycling = |keys: &[&str]| {
            per_call_ns(LOOKUPS, |i| {
                engine
                    .encrypt(&EncryptRequest::new(keys[i % keys.len()], &plaintext))
                    .map(|_| ())
                    .map_err(|e| failed("Encrypt", e))
            })
        };
        let encrypt = encrypt_cycling(&lookup)?;
        let encrypt_newest = encrypt_cycling(&newest)?;
        let encrypt_one_key = encrypt_cycling(&lookup[..1])?;
        // The same spread positions among the bare keys, and one key.
        let spread: Vec<usize> = (0..count).map(|i| i * bare.len() / count).collect();
        let mut bare_cycling = |keys: &[usize]| {
            per_call_ns(LOOKUPS, |i| {
                bare.seal_into(keys[i % keys.len()], &plaintext, &mut sealed)
            })
        };
        let bare_seal = bare_cycling(&spread)?;
        let bare_seal_one_key = bare_cycling(&spread[..1])?;
        let load_ms = if durable {
            let started = Instant::now();
            let loaded = build().map_err(|e| failed("loading the store", e))?;
            let ms = started.elapsed().as_secs_f64() * 1e3;
            drop(loaded);
            Some(ms)
        } else {
            None
        };
        let row = ManyKeysRow {
            keys: held,
            create_us_per_key: create_cpu / 1e3,
            create_us_per_key_wall: create_wall / 1e3,
            create_probe: probe,
            describe_ns: describe.cpu,
            describe_ns_wall: describe.wall,
            describe_first_pass_ns: describe.first_pass,
            encrypt_ns: encrypt.cpu,
            encrypt_ns_wall: encrypt.wall,
            encrypt_newest_ns: encrypt_newest.cpu,
            encrypt_newest_ns_wall: encrypt_newest.wall,
            encrypt_one_key_ns: encrypt_one_key.cpu,
            encrypt_one_key_ns_wall: encrypt_one_key.wall,
            bare_seal_ns: bare_seal.cpu,
            bare_seal_one_key_ns: bare_seal_one_key.cpu,
            lookup_keys: lookup.len(),
            rss_bytes_per_key: rss
                .saturating_sub(rss_base + (ids.len() * std::mem::size_of::<u128>()) as u64)
                as f64
                / grown,
            locked_bytes_per_key: locked.saturating_sub(key_memory_base) as f64 / grown,
            rss_bytes_per_used_key,
            keys_first_used: first_used,
            load_ms,
        };
        if !sweep.quiet {
            eprintln!(
                "many-keys: {} keys: CreateKey {:.1} us/key, Encrypt {:.0} ns/op",
                row.keys, row.create_us_per_key, row.encrypt_ns
            );
        }
        rows.push(row);
    }
    let dropping = Instant::now();
    drop(engine);
    let drop_ms = dropping.elapsed().as_secs_f64() * 1e3;
    let ratio = |f: fn(&ManyKeysRow) -> f64| match (rows.first(), rows.last()) {
        (Some(a), Some(b)) if rows.len() > 1 => Some(f(b) / f(a)),
        _ => None,
    };
    let report = ManyKeysReport {
        store: label,
        optimized_build: !cfg!(debug_assertions),
        create_ratio: ratio(|r| r.create_us_per_key),
        encrypt_ratio: ratio(|r| r.encrypt_ns),
        describe_ratio: ratio(|r| r.describe_ns),
        bare_seal_ratio: ratio(|r| r.bare_seal_ns),
        drop_ms,
        rows,
    };
    // As the sweep does: the table unless quiet, on standard error when the JSON takes standard
    // output.
    if !sweep.quiet {
        if options.json == Some(Destination::Stdout) {
            eprint!("{}", report.to_table());
        } else {
            print!("{}", report.to_table());
        }
    }
    if let Some(dest) = &options.json {
        let text = serde_json::to_string_pretty(&report)
            .map_err(|e| BenchError::Output(format!("serialising the report: {e}")))?;
        write_to(dest, &(text + "\n"))?;
    }
    Ok(report)
}

impl ManyKeysReport {
    /// The report as a text table, with the targets' ratios below it.
    pub fn to_table(&self) -> String {
        let mut out = format!(
            "many-keys ({} store, {} build; CPU time per call; lookups cycle through up to \
             {LOOKUP_KEYS} keys spread over the engine)\n",
            self.store,
            if self.optimized_build {
                "release"
            } else {
                "debug"
            }
        );
        out.push_str(&format!(
            "{:>9} {:>14} {:>12} {:>12} {:>13} {:>14} {:>9} {:>11} {:>10} {:>13} {:>10} {:>9}\n",
            "keys",
            "CreateKey us",
            "Describe ns",
            "Encrypt ns",
            "Enc newest ns",
            "Enc 1 key ns",
            "Bare ns",
            "Bare 1 key",
            "RSS B/key",
            "locked B/key",
            "RSS B/used",
            "load ms"
        ));
        for r in &self.rows {
            out.push_str(&format!(
                "{:>9} {:>14.1} {:>12.0} {:>12.0} {:>13.0} {:>14.0} {:>9.0} {:>11.0} {:>10.0} {:>13.0} {:>10.0} {:>9}\n",
                r.keys,
                r.create_us_per_key,
                r.describe_ns,
                r.encrypt_ns,
                r.encrypt_newest_ns,
                r.encrypt_one_key_ns,
                r.bare_seal_ns,
                r.bare_seal_one_key_ns,
                r.rss_bytes_per_key,
                r.locked_bytes_per_key,
                r.rss_bytes_per_used_key,
                r.load_ms.map_or("-".into(), |ms| format!("{ms:.0}"))
            ));
        }
        if let (Some(c), Some(e), Some(d), Some(b)) = (
            self.create_ratio,
            self.encrypt_ratio,
            self.describe_ratio,
            self.bare_seal_ratio,
        ) {
            out.push_str(&format!(
                "largest / first size: CreateKey {c:.2}x (target <= 2), Encrypt {e:.2}x, \
                 DescribeKey {d:.2}x (target: about 1); a bare seal under a spread key {b:.2}x \
                 (the hardware's share)\n"
            ));
        }
        out.push_str(&format!(
            "dropping the engine ({} keys): {:.0} ms\n",
            self.rows.last().map_or(0, |r| r.keys),
            self.drop_ms
        ));
        out
    }
}
