//! The `cold-decrypt` workload: Decrypt of blobs that each carry their own derived-key salt, as
//! data encrypted over months by many processes does, beside the same Decrypt of blobs that share
//! one salt (warm: the derived key is cached).
//!
//! The blobs are made by an engine whose derived keys encrypt one message each
//! (`messages_per_derived_key(1)`), so every blob has a salt of its own; there are far more of them
//! than the per-thread derived-key cache holds, so every cold Decrypt derives its key (HKDF-SHA256
//! and the AES key schedule) before it opens the blob. For each of --size, --batch and --threads:
//! ops/s cold and warm through `decrypt_batch_into`, and the cost of a derivation (the difference
//! per item, in CPU time). The target: cold 64 B on 1 thread >= 1 M ops/s.

use std::sync::Arc;
use std::time::{Duration, Instant};

use keyplane::store::MemoryKeyStore;
use keyplane::{CreateKeyRequest, DecryptRequest, EncryptRequest, Engine};

use crate::measure::process_cpu_time;
use crate::{write_to, BenchError, RunOptions, SweepArgs};

/// Distinct-salt blobs per point: 16 Ki times the per-thread cache, so nothing stays warm.
pub const BLOBS: usize = 16 * 1024;

/// One measured point.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ColdDecryptRow {
    pub size: usize,
    pub batch: usize,
    pub threads: u32,
    /// Decrypts per second (wall clock), every blob under its own salt.
    pub cold_ops_per_sec: f64,
    /// The same with every blob under one salt.
    pub warm_ops_per_sec: f64,
    /// CPU nanoseconds per item, cold and warm; their difference is the derivation's cost.
    pub cold_cpu_ns: f64,
    pub warm_cpu_ns: f64,
}

/// The whole workload's result.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ColdDecryptReport {
    pub optimized_build: bool,
    pub blobs: usize,
    pub rows: Vec<ColdDecryptRow>,
}

fn failed(what: &str, e: impl std::fmt::Display) -> BenchError {
    BenchError::Run(format!("cold-decrypt: {what}: {e}"))
}

/// `BLOBS` blobs of `size` bytes under `key` (each under its own salt when `engine`'s derived
/// keys encrypt once).
pub fn blobs(engine: &Engine, key: &str, size: usize) -> Result<Vec<Vec<u8>>, BenchError> {
    let messages: Vec<Vec<u8>> = (0..BLOBS)
        .map(|i| {
            let mut m = vec![(i % 251) as u8; size];
            m[..8.min(size)].copy_from_slice(&(i as u64).to_le_bytes()[..8.min(size)]);
            m
        })
        .collect();
    let requests: Vec<EncryptRequest<'_>> = messages
        .iter()
        .map(|m| EncryptRequest::new(key, m))
        .collect();
    engine
        .encrypt_batch(&requests)
        .into_iter()
        .map(|r| {
            r.map(|blob| blob.into_vec())
                .map_err(|e| failed("encrypt", e))
        })
        .collect()
}

/// Decrypts `blobs` in batches of `batch`, cycling, for `duration`: (ops/s, CPU ns per item).
fn measure(
    engine: &Engine,
    blobs: &[Vec<u8>],
    batch: usize,
    duration: Duration,
) -> Result<(f64, f64), BenchError> {
    let mut outputs: Vec<Vec<u8>> = (0..batch)
        .map(|i| vec![0u8; blobs[i % blobs.len()].len()])
        .collect();
    let (user, system) = process_cpu_time();
    let cpu_start = user + system;
    let started = Instant::now();
    let mut done = 0usize;
    let mut next = 0usize;
    while started.elapsed() < duration {
        let requests: Vec<DecryptRequest<'_>> = (0..batch)
            .map(|i| DecryptRequest::new(&blobs[(next + i) % blobs.len()]))
            .collect();
        let mut out: Vec<&mut [u8]> = outputs.iter_mut().map(|o| o.as_mut_slice()).collect();
        for result in engine.decrypt_batch_into(&requests, &mut out).iter() {
            result.map_err(|e| failed("decrypt", e))?;
        }
        next = (next + batch) % blobs.len();
        done += batch;
    }
    let wall = started.elapsed().as_secs_f64();
    let (user, system) = process_cpu_time();
    let cpu = (user + system).saturating_sub(cpu_start).as_secs_f64();
    Ok((done as f64 / wall, cpu * 1e9 / done as f64))
}

pub fn run(sweep: &SweepArgs, options: &RunOptions) -> Result<ColdDecryptReport, BenchError> {
    let mut rows = Vec::new();
    for &threads in &sweep.threads {
        let store = Arc::new(MemoryKeyStore::new(options.lock_policy));
        let engine = Engine::builder()
            .store(store.clone())
            .lock_policy(options.lock_policy)
            .worker_threads(threads as usize)
            .build()
            .map_err(|e| failed("engine", e))?;
        // Blobs each under their own salt come from an engine whose derived keys encrypt once,
        // on the same store, so the measured engine holds the key.
        let one_per_key = Engine::builder()
            .store(store)
            .lock_policy(options.lock_policy)
            .worker_threads(1)
            .messages_per_derived_key(1)
            .build()
            .map_err(|e| failed("engine", e))?;
        let key = engine
            .create_key(CreateKeyRequest::default())
            .map_err(|e| failed("create key", e))?
            .key_id;
        for &size in &sweep.size {
            let cold = blobs(&one_per_key, &key, size)?;
            let warm = blobs(&engine, &key, size)?;
            for &batch in &sweep.batch {
                // Once each, untimed: the warm blobs' key gets cached, the cold ones stay cold.
                measure(&engine, &warm, batch, sweep.warmup)?;
                measure(&engine, &cold, batch, sweep.warmup)?;
                let mut cold_runs = Vec::new();
                let mut warm_runs = Vec::new();
                for _ in 0..sweep.repeats {
                    cold_runs.push(measure(&engine, &cold, batch, sweep.duration)?);
                    warm_runs.push(measure(&engine, &warm, batch, sweep.duration)?);
                }
                let (cold_ops, cold_cpu) = median(&mut cold_runs);
                let (warm_ops, warm_cpu) = median(&mut warm_runs);
                rows.push(ColdDecryptRow {
                    size,
                    batch,
                    threads,
                    cold_ops_per_sec: cold_ops,
                    warm_ops_per_sec: warm_ops,
                    cold_cpu_ns: cold_cpu,
                    warm_cpu_ns: warm_cpu,
                });
            }
        }
    }
    let report = ColdDecryptReport {
        optimized_build: !cfg!(debug_assertions),
        blobs: BLOBS,
        rows,
    };
    match &options.json {
        Some(dest) => write_to(
            dest,
            &serde_json::to_string_pretty(&report).map_err(|e| failed("json", e))?,
        )?,
        None if !sweep.quiet => print!("{}", table(&report)),
        None => {}
    }
    Ok(report)
}

/// The run with the median ops/s.
fn median(runs: &mut [(f64, f64)]) -> (f64, f64) {
    runs.sort_by(|a, b| a.0.total_cmp(&b.0));
    runs[runs.len() / 2]
}

fn table(report: &ColdDecryptReport) -> String {
    let mut out = format!(
        "cold-decrypt: {} blobs each under its own derived-key salt, against the same under one salt\n\
         size  batch  threads  cold ops/s  warm ops/s  cold/warm  cold CPU ns  warm CPU ns  derivation ns\n",
        report.blobs
    );
    for r in &report.rows {
        out.push_str(&format!(
            "{:>4}  {:>5}  {:>7}  {:>10}  {:>10}  {:>9.2}  {:>11.0}  {:>11.0}  {:>13.0}\n",
            r.size,
            r.batch,
            r.threads,
            crate::report::human(r.cold_ops_per_sec),
            crate::report::human(r.warm_ops_per_sec),
            r.cold_ops_per_sec / r.warm_ops_per_sec,
            r.cold_cpu_ns,
            r.warm_cpu_ns,
            r.cold_cpu_ns - r.warm_cpu_ns,
        ));
    }
    if !report.optimized_build {
        out.push_str("note: a debug build; build with --release for numbers that mean anything\n");
    }
    out
}
