//! Measuring runners fairly on a shared machine: warm-up, then one repeat of each in turn.

use std::ops::Range;
use std::time::{Duration, Instant};

use super::plan::Timing;
use super::progress::Progress;
use crate::measure::{sample, Amount, Histogram};
use crate::raw;
use crate::report::Latency;
use crate::workload::BatchFn;
use crate::BenchError;

/// Something measured: how each caller makes its closure, and how many callers.
pub(super) struct Runner<'a> {
    pub make: Box<dyn Fn() -> Result<BatchFn<'a>, String> + Sync + 'a>,
    pub callers: u32,
}

/// The bare split ([`crate::split`]): how each thread makes its loop over its part of a batch,
/// the threads and the batch.
pub(super) struct SplitRunner<'a> {
    pub make: Box<dyn Fn(Range<usize>) -> Result<BatchFn<'a>, String> + Sync + 'a>,
    pub threads: usize,
    pub batch: usize,
}

/// What a round runs in turn: callers of their own closures, or a bare split.
pub(super) enum Measures<'a> {
    Callers(Runner<'a>),
    Split(SplitRunner<'a>),
}

impl Measures<'_> {
    fn sample(&self, amount: Amount) -> Result<crate::measure::Sample, String> {
        match self {
            Measures::Callers(r) => sample(&*r.make, r.callers, amount),
            Measures::Split(s) => crate::split::sample_split(&*s.make, s.threads, s.batch, amount),
        }
    }
}

/// What one runner measured: each repeat's rate, the merged latencies, the operations.
pub(super) struct Measured {
    pub rates: Vec<f64>,
    pub cpu_rates: Vec<f64>,
    pub system_shares: Vec<f64>,
    pub latency: Histogram,
    pub ops: u64,
}

/// Warms every runner up, then measures them round-robin, one repeat of each per round, so that
/// drift on a shared machine (other processes, frequency changes) hits the engine points and their
/// raw baseline alike and the ratios stay fair.
pub(super) fn measure_round_robin(
    runners: &[Measures<'_>],
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
            r.sample(Amount::Time(timing.warmup))
                .map_err(BenchError::Run)?;
        }
        progress.bar.inc(1);
    }
    for _ in 0..timing.repeats {
        for (r, m) in runners.iter().zip(&mut out) {
            let s = r.sample(timing.amount).map_err(BenchError::Run)?;
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
pub(super) fn calibrate(state: &raw::RawState<'_>) -> Result<usize, BenchError> {
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

pub(super) fn latency(h: &Histogram) -> Latency {
    Latency {
        p50_ms: h.percentile(50.0) / 1e6,
        p90_ms: h.percentile(90.0) / 1e6,
        p99_ms: h.percentile(99.0) / 1e6,
        max_ms: h.max_ns() as f64 / 1e6,
        calls: h.count(),
    }
}
