//! The data plane on a fleet node against an in-memory engine: Encrypt of 64 bytes and 4 KiB
//! with 1 and 2 caller threads, single calls, for a fixed time each, the two engines measured
//! alternately (three repeats each, the median kept). The fleet node follows its PostgreSQL store
//! in the background (LISTEN/NOTIFY and polling) while it is measured; its data plane never asks
//! the store, so the ratio should be about 1.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use keyplane::{CreateKeyRequest, EncryptRequest, Engine, LockPolicy};

use super::nodes::{failed, node, Opener};
use super::propagation::NOTIFY_FALLBACK;
use crate::BenchError;

const SIZES: [usize; 2] = [64, 4096];
const THREADS: [u32; 2] = [1, 2];
const REPEATS: usize = 3;

/// One size and thread count.
#[derive(Debug, Clone, serde::Serialize)]
pub struct DataPlaneRow {
    pub size: usize,
    pub threads: u32,
    /// Encrypt calls per second on the in-memory engine (median of the repeats).
    pub memory_ops_per_sec: f64,
    /// The same on the fleet node.
    pub fleet_ops_per_sec: f64,
    /// fleet / memory.
    pub ratio: f64,
}

/// Encrypt calls per second by `threads` threads for `duration`.
fn rate(
    engine: &Engine,
    key: &str,
    size: usize,
    threads: u32,
    duration: Duration,
) -> Result<f64, BenchError> {
    let plaintext = vec![0x5au8; size];
    let stop = AtomicBool::new(false);
    let calls = AtomicU64::new(0);
    let started = Instant::now();
    let outcome: Result<(), BenchError> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| -> Result<(), BenchError> {
                    let mut n = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        engine
                            .encrypt(&EncryptRequest::new(key, &plaintext))
                            .map_err(|e| failed("Encrypt", e))?;
                        n += 1;
                    }
                    calls.fetch_add(n, Ordering::Relaxed);
                    Ok(())
                })
            })
            .collect();
        std::thread::sleep(duration);
        stop.store(true, Ordering::Relaxed);
        workers.into_iter().try_for_each(|w| {
            w.join()
                .unwrap_or_else(|_| Err(failed("Encrypt", "panicked")))
        })
    });
    outcome?;
    Ok(calls.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64())
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Measures every size and thread count on a fleet node (on the store `open` gives) and on an
/// in-memory engine.
pub fn measure(
    open: Opener<'_>,
    duration: Duration,
    lock_policy: LockPolicy,
    max_keys: usize,
) -> Result<Vec<DataPlaneRow>, BenchError> {
    let fleet = node(open()?, lock_policy, Some(NOTIFY_FALLBACK), max_keys)?;
    let memory = Engine::builder()
        .lock_policy(lock_policy)
        .worker_threads(1)
        .build()
        .map_err(|e| failed("the in-memory engine", e))?;
    let key = |e: &Engine| {
        e.create_key(CreateKeyRequest::default())
            .map(|m| m.key_id)
            .map_err(|e| failed("CreateKey", e))
    };
    let (fleet_key, memory_key) = (key(&fleet)?, key(&memory)?);
    let mut rows = Vec::new();
    for size in SIZES {
        for threads in THREADS {
            // Warm-up (first use of each key derives its data key).
            rate(&memory, &memory_key, size, threads, duration / 4)?;
            rate(&fleet, &fleet_key, size, threads, duration / 4)?;
            let (mut m, mut f) = (Vec::new(), Vec::new());
            for _ in 0..REPEATS {
                m.push(rate(&memory, &memory_key, size, threads, duration)?);
                f.push(rate(&fleet, &fleet_key, size, threads, duration)?);
            }
            let (m, f) = (median(m), median(f));
            rows.push(DataPlaneRow {
                size,
                threads,
                memory_ops_per_sec: m,
                fleet_ops_per_sec: f,
                ratio: f / m,
            });
        }
    }
    Ok(rows)
}
