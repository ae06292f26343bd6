//! Latency summaries of the fleet workload's samples: nearest-rank percentiles, in milliseconds.

/// A latency distribution, in milliseconds.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Latencies {
    pub count: usize,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
    pub mean: f64,
}

/// The distribution of `samples` (sorted in place): nearest-rank percentiles.
pub fn latencies(samples: &mut [f64]) -> Latencies {
    if samples.is_empty() {
        return Latencies::default();
    }
    samples.sort_by(f64::total_cmp);
    let n = samples.len();
    let rank = |p: f64| samples[((p * n as f64).ceil() as usize).clamp(1, n) - 1];
    Latencies {
        count: n,
        p50: rank(0.50),
        p90: rank(0.90),
        p99: rank(0.99),
        max: samples[n - 1],
        mean: samples.iter().sum::<f64>() / n as f64,
    }
}
