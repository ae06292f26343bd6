//! Timing: run batch closures on caller threads for a duration or an operation count, with a
//! histogram of per-call latencies; medians and spread over repeats.

use std::sync::Barrier;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::workload::BatchFn;

/// How much one repeat runs.
#[derive(Debug, Clone, Copy)]
pub enum Amount {
    /// Until this much time has passed (at least one call).
    Time(Duration),
    /// At least this many operations over all callers (whole calls).
    Ops(u64),
}

/// Sub-buckets per power of two (about 4% resolution).
const SUB_BITS: u32 = 4;
const BUCKETS: usize = (64 << SUB_BITS) as usize;

/// Latencies in nanoseconds, log-linear buckets.
#[derive(Clone)]
pub struct Histogram {
    counts: Vec<u64>,
    total: u64,
    max: u64,
}

impl std::fmt::Debug for Histogram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Histogram")
            .field("total", &self.total)
            .field("max", &self.max)
            .finish()
    }
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            counts: vec![0; BUCKETS],
            total: 0,
            max: 0,
        }
    }
}

impl Histogram {
    fn bucket(ns: u64) -> usize {
        if ns < (1 << SUB_BITS) {
            return ns as usize;
        }
        let top = 63 - ns.leading_zeros();
        let sub = (ns >> (top - SUB_BITS)) & ((1 << SUB_BITS) - 1);
        (((top - SUB_BITS + 1) << SUB_BITS) as u64 + sub) as usize
    }

    /// The middle of a bucket's range.
    fn value(bucket: usize) -> f64 {
        let b = bucket as u64;
        if b < (1 << SUB_BITS) {
            return b as f64;
        }
        let top = (b >> SUB_BITS) + SUB_BITS as u64 - 1;
        let sub = b & ((1 << SUB_BITS) - 1);
        let low = (1u64 << top) + (sub << (top - SUB_BITS as u64));
        let width = 1u64 << (top - SUB_BITS as u64);
        low as f64 + width as f64 / 2.0
    }

    pub fn record(&mut self, ns: u64) {
        self.counts[Self::bucket(ns).min(BUCKETS - 1)] += 1;
        self.total += 1;
        self.max = self.max.max(ns);
    }

    pub fn merge(&mut self, other: &Histogram) {
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
        self.total += other.total;
        self.max = self.max.max(other.max);
    }

    /// The `p`-th percentile (0 to 100) in nanoseconds; 0 when empty.
    pub fn percentile(&self, p: f64) -> f64 {
        if self.total == 0 {
            return 0.0;
        }
        let rank = ((p / 100.0) * self.total as f64).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (i, &c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return Self::value(i).min(self.max as f64);
            }
        }
        self.max as f64
    }

    pub fn count(&self) -> u64 {
        self.total
    }

    pub fn max_ns(&self) -> u64 {
        self.max
    }
}

/// One repeat: operations, the callers' time, and per-call latencies.
#[derive(Debug, Clone)]
pub struct Sample {
    /// Operations over all callers.
    pub ops: u64,
    /// Operations per second, summed over callers (each caller's ops over its own time).
    pub rate: f64,
    /// Operations per CPU-second of this process (all its threads) while the callers ran:
    /// unlike `rate`, barely moved by other processes taking the CPUs.
    pub cpu_rate: f64,
    /// The share of that CPU time spent in the kernel (page faults, heap trimming, futexes).
    pub system_share: f64,
    pub latency: Histogram,
}

/// CPU time this process (all threads) has used: (user, system).
#[allow(unsafe_code)]
pub fn process_cpu_time() -> (Duration, Duration) {
    // SAFETY: an all-zero rusage is a valid value of this plain C struct.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `usage` is valid and writable; RUSAGE_SELF is a constant the kernel knows.
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) } != 0 {
        return (Duration::ZERO, Duration::ZERO);
    }
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    (tv(usage.ru_utime), tv(usage.ru_stime))
}

/// CPU time between two readings of [`process_cpu_time`]: (total, system).
pub(crate) fn cpu_between(
    start: (Duration, Duration),
    end: (Duration, Duration),
) -> (Duration, Duration) {
    let user = end.0.saturating_sub(start.0);
    let system = end.1.saturating_sub(start.1);
    (user + system, system)
}

/// One caller's run: operations, time, per-call latencies.
pub(crate) type CallerRun = (u64, Duration, Histogram);

/// Runs one repeat: `callers` threads each make their batch closure with `make` (untimed), wait
/// for each other, then call it back to back until `amount` is reached.
pub fn sample<'a>(
    make: &(dyn Fn() -> Result<BatchFn<'a>, String> + Sync),
    callers: u32,
    amount: Amount,
) -> Result<Sample, String> {
    let callers = callers.max(1) as usize;
    // The callers and the thread that reads the CPU clock once they are all set up.
    let barrier = Barrier::new(callers + 1);
    let per_caller = match amount {
        Amount::Time(t) => Amount::Time(t),
        Amount::Ops(n) => Amount::Ops(n.div_ceil(callers as u64).max(1)),
    };
    let run_one = || -> Result<CallerRun, String> {
        let made = make();
        // Every caller reaches the barrier, even one whose setup failed, so none waits forever.
        barrier.wait();
        run_made(made?, per_caller)
    };
    let (results, (cpu, system)): (Vec<Result<CallerRun, String>>, (Duration, Duration)) =
        if callers == 1 {
            // The closure is made before the CPU clock is read, so setup is not counted.
            let made = make()?;
            let cpu_start = process_cpu_time();
            let result = run_made(made, per_caller);
            (vec![result], cpu_between(cpu_start, process_cpu_time()))
        } else {
            std::thread::scope(|s| {
                let handles: Vec<_> = (0..callers).map(|_| s.spawn(run_one)).collect();
                barrier.wait();
                let cpu_start = process_cpu_time();
                let results = handles
                    .into_iter()
                    .map(|h| {
                        h.join()
                            .unwrap_or_else(|_| Err("a caller thread panicked".into()))
                    })
                    .collect();
                (results, cpu_between(cpu_start, process_cpu_time()))
            })
        };
    let mut total = Sample {
        ops: 0,
        rate: 0.0,
        cpu_rate: 0.0,
        system_share: 0.0,
        latency: Histogram::default(),
    };
    for r in results {
        let (ops, elapsed, hist) = r?;
        total.ops += ops;
        total.rate += ops as f64 / elapsed.as_secs_f64().max(1e-9);
        total.latency.merge(&hist);
    }
    total.cpu_rate = total.ops as f64 / cpu.as_secs_f64().max(1e-9);
    total.system_share = system.as_secs_f64() / cpu.as_secs_f64().max(1e-9);
    Ok(total)
}

/// Calls `f` back to back until `amount`: operations, time, per-call latencies.
pub(crate) fn run_made(mut f: BatchFn<'_>, amount: Amount) -> Result<CallerRun, String> {
    let mut hist = Histogram::default();
    let mut ops = 0u64;
    let start = Instant::now();
    let mut last = start;
    loop {
        ops += f()?;
        let now = Instant::now();
        hist.record((now - last).as_nanos().min(u64::MAX as u128) as u64);
        last = now;
        let done = match amount {
            Amount::Time(t) => now - start >= t,
            Amount::Ops(n) => ops >= n,
        };
        if done {
            return Ok((ops, now - start, hist));
        }
    }
}

/// Median, extremes and spread of a set of rates.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Stats {
    pub median: f64,
    pub min: f64,
    pub max: f64,
    /// (max − min) / median, in percent.
    pub spread_pct: f64,
    /// Every repeat's rate, in the order measured.
    pub samples: Vec<f64>,
}

impl Stats {
    pub fn of(samples: &[f64]) -> Stats {
        let mut sorted = samples.to_vec();
        sorted.sort_by(|a, b| a.total_cmp(b));
        let n = sorted.len();
        let median = if n == 0 {
            0.0
        } else if n % 2 == 1 {
            sorted[n / 2]
        } else {
            (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
        };
        let min = sorted.first().copied().unwrap_or(0.0);
        let max = sorted.last().copied().unwrap_or(0.0);
        Stats {
            median,
            min,
            max,
            spread_pct: if median > 0.0 {
                (max - min) / median * 100.0
            } else {
                0.0
            },
            samples: samples.to_vec(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_percentiles_are_close() {
        let mut h = Histogram::default();
        for ns in 1..=10_000u64 {
            h.record(ns * 100);
        }
        let p50 = h.percentile(50.0);
        let p99 = h.percentile(99.0);
        assert!((p50 / 500_000.0 - 1.0).abs() < 0.05, "p50 {p50}");
        assert!((p99 / 990_000.0 - 1.0).abs() < 0.05, "p99 {p99}");
        assert_eq!(h.count(), 10_000);
        assert!(h.percentile(100.0) <= 1_000_000.0);
    }

    #[test]
    fn small_values_and_stats() {
        let mut h = Histogram::default();
        h.record(3);
        assert_eq!(h.percentile(50.0), 3.0);
        let s = Stats::of(&[3.0, 1.0, 2.0, 10.0]);
        assert_eq!(s.median, 2.5);
        assert_eq!(s.min, 1.0);
        assert_eq!(s.max, 10.0);
    }
}
