//! The report: every point, baseline and comparison of a run, the ratios, the targets
//! checked against them, recommendations; and its renderings (table, JSON, CSV).

use std::fmt::Write as _;

use keyplane::KeySpec;
use serde::{Deserialize, Serialize};

use crate::measure::Stats;
use crate::workload::Workload;

/// A whole run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Report {
    /// `keyplane-bench <version>`.
    pub harness: String,
    pub engine: EngineInfo,
    pub machine: Machine,
    pub settings: Settings,
    /// Raw aws-lc-rs loops, one thread, per workload, key spec, size and batch.
    pub baselines: Vec<Baseline>,
    pub points: Vec<Point>,
    /// `--compare` runs of the encrypt points through the C ABI and the Python package.
    pub compare: Vec<Comparison>,
    /// `--recommend` results, one per workload, key spec and size.
    pub recommendations: Vec<Recommendation>,
    /// The performance targets that this run's points measure.
    pub targets: Vec<TargetCheck>,
    /// Things to know when reading the numbers (skipped comparisons, noisy points, ...).
    pub notes: Vec<String>,
    /// How long a cache line took to pass between two CPUs, before and after the points (sweeps
    /// with points on more than one thread).
    #[serde(default)]
    pub core_hand_off: Option<crate::handoff::CoreHandOff>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EngineInfo {
    pub fips: bool,
    /// `memory`, or the store's description.
    pub store: String,
    pub lock_policy: String,
    /// Most plaintext bytes the engines were built to take.
    pub max_plaintext_bytes: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Machine {
    pub cpus: usize,
    pub cpu_model: Option<String>,
    pub os: String,
    /// Whether this harness was built with optimisations (a debug build's numbers mean little).
    pub optimized_build: bool,
}

impl Machine {
    /// The machine this harness runs on, and how it was built.
    pub fn this() -> Machine {
        Machine {
            cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
            cpu_model: crate::cpu_model(),
            os: std::env::consts::OS.into(),
            optimized_build: !cfg!(debug_assertions),
        }
    }

    /// `N CPUs (model)`, as every report's first line says it.
    pub fn cpus_text(&self) -> String {
        match &self.cpu_model {
            Some(model) => format!("{} CPUs ({model})", self.cpus),
            None => format!("{} CPUs", self.cpus),
        }
    }

    /// Nothing for an optimised build; otherwise a line that warns of a debug build's numbers.
    pub fn debug_build_warning(&self) -> &'static str {
        match self.optimized_build {
            true => "",
            false => "\nWARNING: a debug build: build with --release for meaningful numbers",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Settings {
    /// Measured time per repeat, when runs are timed.
    pub duration_ms: Option<f64>,
    /// Operations per repeat, when runs are counted.
    pub ops: Option<u64>,
    pub warmup_ms: f64,
    pub repeats: u32,
    /// Whether symmetric requests carry an encryption context.
    pub context: bool,
    /// Whether encrypt/decrypt use the `_into` (caller buffer) calls.
    pub into: bool,
    /// Whether encrypt/decrypt use one kept buffer (`encrypt_batch_to`, `decrypt_batch_to`).
    #[serde(default)]
    pub kept_outputs: bool,
    pub rsa_padding: String,
    /// What a point's per-thread ratio divides by: max(threads, callers).
    pub per_thread_divisor: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Baseline {
    pub workload: Workload,
    pub key_spec: KeySpec,
    pub algorithm: String,
    pub size: usize,
    /// Messages the loop cycles through (the point's batch: the same working set).
    pub batch: usize,
    /// Operations per second on one thread.
    pub ops_per_sec: Stats,
    /// Operations per CPU-second of the process (robust to other processes on the machine).
    pub ops_per_cpu_sec: Stats,
    /// Median share of the CPU time spent in the kernel.
    pub system_cpu_share: f64,
    pub bytes_per_sec: Option<f64>,
}

/// Per-batch-call latency, milliseconds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Latency {
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    /// Calls measured.
    pub calls: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Point {
    pub workload: Workload,
    pub key_spec: KeySpec,
    pub algorithm: String,
    /// Message bytes (32, the data key, for generate-data-key).
    pub size: usize,
    /// Engine worker threads.
    pub threads: u32,
    pub batch: usize,
    /// Application threads calling at once.
    pub callers: u32,
    /// Operations per second (wall clock), summed over callers.
    pub ops_per_sec: Stats,
    /// Operations per CPU-second of the process, all threads (robust to other processes taking
    /// the CPUs; counts the engine's idle-spinning workers against it).
    pub ops_per_cpu_sec: Stats,
    /// Median share of that CPU time spent in the kernel (page faults, heap trimming, futexes).
    pub system_cpu_share: f64,
    /// Median operations per second × message size (none for generate-data-key).
    pub bytes_per_sec: Option<f64>,
    pub batch_latency: Latency,
    /// Operations measured, all repeats.
    pub ops: u64,
    /// Median of the raw single-thread loop on the same primitive, size and messages.
    pub raw_ops_per_sec: Option<f64>,
    /// Engine rate / raw single-thread rate.
    pub vs_raw: Option<f64>,
    /// `vs_raw` / max(threads, callers): the share of a raw core each engine thread delivers.
    pub vs_raw_per_thread: Option<f64>,
    /// Engine ops per CPU-second / raw ops per CPU-second: the efficiency of each core used,
    /// whatever else runs on the machine.
    pub vs_raw_cpu: Option<f64>,
    /// Engine rate / the same point's rate on 1 thread (when the sweep has it).
    pub vs_1_thread: Option<f64>,
    /// The raw loop's batch shared by this point's threads with the least coordination a split
    /// can have ([`crate::split`]; points of one caller on more than one thread).
    #[serde(default)]
    pub bare_split_ops_per_sec: Option<f64>,
    /// `bare_split_ops_per_sec` / the raw single-thread rate: what this many threads sharing one
    /// batch of the bare primitive reach here, the ceiling for `vs_1_thread`.
    #[serde(default)]
    pub bare_split_vs_1_thread: Option<f64>,
}

impl Point {
    /// max(threads, callers): the threads doing the work.
    pub fn workers(&self) -> u32 {
        self.threads.max(self.callers)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Comparison {
    /// `c` or `python`.
    pub binding: String,
    pub workload: Workload,
    pub size: usize,
    pub threads: u32,
    pub batch: usize,
    /// `ok`, `skipped` or `failed`.
    pub status: String,
    pub message: Option<String>,
    /// What the binding was compared with (`encrypt_batch_into` for C; for Python the Rust call
    /// of the run: `encrypt_batch`, `decrypt_batch`, or with `--into` / `--kept-outputs` the
    /// `_into` / `_to` one).
    pub rust_api: String,
    pub rust_ops_per_sec: Option<Stats>,
    pub binding_ops_per_sec: Option<Stats>,
    /// Binding rate / Rust rate (medians).
    pub ratio: Option<f64>,
    /// The same in operations per CPU-second (C only: Python runs in another process).
    pub ratio_cpu: Option<f64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Recommendation {
    pub workload: Workload,
    pub key_spec: KeySpec,
    pub size: usize,
    pub latency_bound_ms: Option<f64>,
    /// Whether a point met the bound.
    pub found: bool,
    pub threads: Option<u32>,
    pub batch: Option<usize>,
    pub callers: Option<u32>,
    pub ops_per_sec: Option<f64>,
    pub p99_batch_latency_ms: Option<f64>,
    /// Threads the engine's scheduler gives the recommended batch (`keyplane::batch_schedule`):
    /// fewer than `threads` when the batch is too small to pay for more.
    pub engine_threads: Option<usize>,
    /// The smallest batch the scheduler spreads over all of `threads`, where that is more than
    /// the recommended batch.
    pub batch_for_all_threads: Option<usize>,
    pub message: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TargetCheck {
    /// The target as the issue states it.
    pub target: String,
    /// Which point: workload, spec, size, threads, batch.
    pub point: String,
    /// What is compared: `vs_raw`, `vs_raw_per_thread`, `ops_per_sec_per_thread` or `ratio`.
    pub metric: String,
    pub measured: f64,
    /// The same ratio in operations per CPU-second, where it applies (per-thread targets): what
    /// the engine costs per core used, whatever else runs on the machine.
    pub measured_cpu: Option<f64>,
    pub required: f64,
    pub met: bool,
}

/// Human-readable count: 8.12M, 912k, 1.52k, 250.
pub fn human(n: f64) -> String {
    let a = n.abs();
    if a >= 1e9 {
        format!("{:.2}G", n / 1e9)
    } else if a >= 1e6 {
        format!("{:.2}M", n / 1e6)
    } else if a >= 1e3 {
        format!("{:.1}k", n / 1e3)
    } else if a >= 10.0 {
        format!("{n:.0}")
    } else {
        format!("{n:.2}")
    }
}

/// Bytes per second, decimal units (GB/s = 10^9 bytes per second).
pub fn human_bytes_per_sec(n: f64) -> String {
    if n >= 1e9 {
        format!("{:.2} GB/s", n / 1e9)
    } else if n >= 1e6 {
        format!("{:.1} MB/s", n / 1e6)
    } else {
        format!("{:.1} kB/s", n / 1e3)
    }
}

/// A size as given on the command line: 64 B, 1 KiB, 16 KiB, 1 MiB.
pub fn human_size(n: usize) -> String {
    if n >= 1 << 20 && n % (1 << 20) == 0 {
        format!("{} MiB", n >> 20)
    } else if n >= 1024 && n % 1024 == 0 {
        format!("{} KiB", n >> 10)
    } else {
        format!("{n} B")
    }
}

pub(crate) fn ms(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}

fn opt_ratio(r: Option<f64>) -> String {
    r.map_or_else(|| "-".into(), |r| format!("{r:.3}"))
}

/// A table with right-aligned columns (the first two, and the last if `left_last`, left-aligned).
pub(crate) fn render(header: &[&str], rows: &[Vec<String>], left_last: bool) -> String {
    for row in rows {
        assert_eq!(
            row.len(),
            header.len(),
            "a table row has as many cells as the header"
        );
    }
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        let mut s = String::new();
        for (i, (cell, w)) in cells.iter().zip(&widths).enumerate() {
            if i > 0 {
                s.push_str("  ");
            }
            if i < 2 || (left_last && i + 1 == cells.len()) {
                let _ = write!(s, "{cell:<w$}");
            } else {
                let _ = write!(s, "{cell:>w$}");
            }
        }
        s.trim_end().to_owned() + "\n"
    };
    let mut out = line(header.iter().map(|h| h.to_string()).collect());
    out.push_str(&line(widths.iter().map(|w| "-".repeat(*w)).collect()));
    for row in rows {
        out.push_str(&line(row.clone()));
    }
    out
}

impl Report {
    /// The human-readable table: points, baselines, comparisons, targets, recommendations.
    pub fn to_table(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "keyplane-bench: {}, store {}, {} repeats of {} after {:.0} ms warm-up{}{}",
            self.machine.cpus_text(),
            self.engine.store,
            self.settings.repeats,
            match (self.settings.duration_ms, self.settings.ops) {
                (_, Some(n)) => format!("{n} ops"),
                (Some(d), None) => format!("{d:.0} ms"),
                _ => "?".into(),
            },
            self.settings.warmup_ms,
            if self.settings.context {
                ""
            } else {
                ", no encryption context"
            },
            self.machine.debug_build_warning(),
        );
        if let Some(hand_off) = &self.core_hand_off {
            let _ = writeln!(out, "{}", hand_off.text());
        }
        out.push('\n');
        let has_callers = self.points.iter().any(|p| p.callers > 1);
        let mut header = vec!["workload", "key/alg", "size", "threads", "batch"];
        if has_callers {
            header.push("callers");
        }
        header.extend([
            "ops/s",
            "±%",
            "throughput",
            "p50 ms",
            "p99 ms",
            "sys%",
            "raw 1-thr",
            "vs raw",
            "/thread",
            "cpu-eff",
            "vs 1 thr",
            "bare split",
        ]);
        let rows: Vec<Vec<String>> = self
            .points
            .iter()
            .map(|p| {
                let mut row = vec![
                    p.workload.name().to_owned(),
                    short_alg(&p.algorithm, p.key_spec),
                    human_size(p.size),
                    p.threads.to_string(),
                    p.batch.to_string(),
                ];
                if has_callers {
                    row.push(p.callers.to_string());
                }
                row.extend([
                    human(p.ops_per_sec.median),
                    format!("{:.1}", p.ops_per_sec.spread_pct),
                    p.bytes_per_sec
                        .map(human_bytes_per_sec)
                        .unwrap_or_else(|| "-".into()),
                    ms(p.batch_latency.p50_ms),
                    ms(p.batch_latency.p99_ms),
                    format!("{:.0}", p.system_cpu_share * 100.0),
                    p.raw_ops_per_sec.map(human).unwrap_or_else(|| "-".into()),
                    opt_ratio(p.vs_raw),
                    opt_ratio(p.vs_raw_per_thread),
                    opt_ratio(p.vs_raw_cpu),
                    opt_ratio(p.vs_1_thread),
                    opt_ratio(p.bare_split_vs_1_thread),
                ]);
                row
            })
            .collect();
        out.push_str(&render(&header, &rows, false));
        out.push_str(
            "\nops/s: median over repeats (±%: max−min over median); p50/p99: per batch call; \
             sys%: share of CPU time in the kernel;\nraw 1-thr: plain aws-lc-rs loop, one \
             thread; vs raw: engine/raw; /thread: vs raw ÷ max(threads, callers);\ncpu-eff: \
             engine/raw in ops per CPU-second (per core used, whatever else runs); vs 1 thr: \
             engine/(same point on 1 thread);\nbare split: the raw loop's batch shared by the \
             point's threads (one post, one done count, a 4-byte result per item), over raw 1-thr: \
             the ceiling for vs 1 thr\n",
        );

        if !self.compare.is_empty() {
            out.push_str(
                "\nBindings (the same workload, batch and threads; vs Rust: the Rust call):\n",
            );
            let rows: Vec<Vec<String>> = self
                .compare
                .iter()
                .map(|c| {
                    vec![
                        c.binding.clone(),
                        c.rust_api.clone(),
                        human_size(c.size),
                        c.threads.to_string(),
                        c.batch.to_string(),
                        c.rust_ops_per_sec
                            .as_ref()
                            .map(|s| human(s.median))
                            .unwrap_or_else(|| "-".into()),
                        c.binding_ops_per_sec
                            .as_ref()
                            .map(|s| human(s.median))
                            .unwrap_or_else(|| "-".into()),
                        opt_ratio(c.ratio),
                        opt_ratio(c.ratio_cpu),
                        c.message.clone().unwrap_or_default(),
                    ]
                })
                .collect();
            out.push_str(&render(
                &[
                    "binding",
                    "vs Rust",
                    "size",
                    "threads",
                    "batch",
                    "Rust ops/s",
                    "ops/s",
                    "ratio",
                    "cpu ratio",
                    "",
                ],
                &rows,
                true,
            ));
        }

        if !self.targets.is_empty() {
            out.push_str("\nTargets (issue 8):\n");
            let rows: Vec<Vec<String>> = self
                .targets
                .iter()
                .map(|t| {
                    let fmt = |v: f64| {
                        if t.metric == "ops_per_sec_per_thread" {
                            human(v)
                        } else {
                            format!("{v:.3}")
                        }
                    };
                    vec![
                        if t.met { "met" } else { "MISSED" }.to_owned(),
                        t.target.clone(),
                        t.point.clone(),
                        t.metric.clone(),
                        fmt(t.measured),
                        t.measured_cpu.map(fmt).unwrap_or_else(|| "-".into()),
                        format!(">= {}", fmt(t.required)),
                    ]
                })
                .collect();
            out.push_str(&render(
                &[
                    "", "target", "point", "metric", "measured", "cpu-time", "required",
                ],
                &rows,
                false,
            ));
        }

        if !self.recommendations.is_empty() {
            out.push_str("\nRecommendations:\n");
            for r in &self.recommendations {
                let _ = writeln!(out, "  {}", r.message);
            }
        }
        for note in &self.notes {
            let _ = writeln!(out, "\nnote: {note}");
        }
        out
    }

    /// One CSV row per point (RFC 4180 quoting where needed).
    pub fn to_csv(&self) -> String {
        let mut out = String::from(
            "workload,key_spec,algorithm,size,threads,batch,callers,ops_per_sec_median,\
             ops_per_sec_min,ops_per_sec_max,spread_pct,bytes_per_sec,latency_p50_ms,\
             latency_p90_ms,latency_p99_ms,latency_max_ms,raw_ops_per_sec,vs_raw,\
             vs_raw_per_thread,vs_raw_cpu,vs_1_thread,ops_per_cpu_sec_median,repeats,\
             bare_split_ops_per_sec,bare_split_vs_1_thread\n",
        );
        let opt = |v: Option<f64>| v.map(|v| format!("{v}")).unwrap_or_default();
        for p in &self.points {
            let _ = writeln!(
                out,
                "{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}",
                p.workload.name(),
                p.key_spec.as_str(),
                csv_field(&p.algorithm),
                p.size,
                p.threads,
                p.batch,
                p.callers,
                p.ops_per_sec.median,
                p.ops_per_sec.min,
                p.ops_per_sec.max,
                p.ops_per_sec.spread_pct,
                opt(p.bytes_per_sec),
                p.batch_latency.p50_ms,
                p.batch_latency.p90_ms,
                p.batch_latency.p99_ms,
                p.batch_latency.max_ms,
                opt(p.raw_ops_per_sec),
                opt(p.vs_raw),
                opt(p.vs_raw_per_thread),
                opt(p.vs_raw_cpu),
                opt(p.vs_1_thread),
                p.ops_per_cpu_sec.median,
                p.ops_per_sec.samples.len(),
                opt(p.bare_split_ops_per_sec),
                opt(p.bare_split_vs_1_thread),
            );
        }
        out
    }

    /// Fills in each point's `vs_1_thread` from the sweep's 1-thread points.
    pub fn link_thread_scaling(&mut self) {
        let singles: Vec<(Workload, KeySpec, usize, usize, u32, f64)> = self
            .points
            .iter()
            .filter(|p| p.threads == 1)
            .map(|p| {
                (
                    p.workload,
                    p.key_spec,
                    p.size,
                    p.batch,
                    p.callers,
                    p.ops_per_sec.median,
                )
            })
            .collect();
        for p in &mut self.points {
            p.vs_1_thread = singles
                .iter()
                .find(|s| {
                    (s.0, s.1, s.2, s.3, s.4)
                        == (p.workload, p.key_spec, p.size, p.batch, p.callers)
                })
                .filter(|s| s.5 > 0.0)
                .map(|s| p.ops_per_sec.median / s.5);
        }
    }

    /// The targets, for every point of this run that measures one.
    pub fn check_targets(&mut self) {
        let mut checks = Vec::new();
        for p in self.points.iter().filter(|p| p.callers == 1) {
            let at = format!(
                "{} {} {}, {} thread{}, batch {}",
                p.workload,
                short_alg(&p.algorithm, p.key_spec),
                human_size(p.size),
                p.threads,
                if p.threads == 1 { "" } else { "s" },
                p.batch
            );
            let cpu = p.vs_raw_cpu;
            let mut check = |target: &str, metric: &str, measured: Option<f64>, required: f64| {
                if let Some(measured) = measured {
                    let measured_cpu = match metric {
                        "vs_raw_per_thread" => cpu,
                        "ops_per_sec_per_thread" => Some(p.ops_per_cpu_sec.median),
                        _ => None,
                    };
                    checks.push(TargetCheck {
                        target: target.into(),
                        point: at.clone(),
                        metric: metric.into(),
                        measured,
                        measured_cpu,
                        required,
                        met: measured >= required,
                    });
                }
            };
            match p.workload {
                Workload::Encrypt if p.size == 16 * 1024 && p.threads == 1 => check(
                    "AES-GCM 16 KiB: >= 95% of raw on 1 thread",
                    "vs_raw",
                    p.vs_raw,
                    0.95,
                ),
                Workload::Encrypt if p.size == 16 * 1024 && p.threads == 2 => check(
                    "AES-GCM 16 KiB: >= 1.9x raw on 2 threads",
                    "vs_raw",
                    p.vs_raw,
                    1.9,
                ),
                Workload::Encrypt if p.size == 64 && p.batch == 1000 && self.settings.context => {
                    check(
                        "64 B, batches of 1000, with context: >= 60% of raw per thread",
                        "vs_raw_per_thread",
                        p.vs_raw_per_thread,
                        0.60,
                    )
                }
                Workload::GenerateDataKey if p.batch >= 100 => check(
                    "GenerateDataKey batches: >= 3M/s per core",
                    "ops_per_sec_per_thread",
                    Some(p.ops_per_sec.median / f64::from(p.workers())),
                    3e6,
                ),
                Workload::Sign
                    if matches!(
                        p.key_spec,
                        KeySpec::EccNistP256 | KeySpec::EccNistEdwards25519 | KeySpec::Rsa2048
                    ) =>
                {
                    check(
                        "Sign (P-256, Ed25519, RSA-2048): >= 95% of raw per thread",
                        "vs_raw_per_thread",
                        p.vs_raw_per_thread,
                        0.95,
                    )
                }
                Workload::GenerateMac => check(
                    "GenerateMac: >= 95% of raw per thread",
                    "vs_raw_per_thread",
                    p.vs_raw_per_thread,
                    0.95,
                ),
                _ => {}
            }
        }
        for c in self.compare.iter().filter(|c| c.status == "ok") {
            let at = format!(
                "{} {}, {} thread{}, batch {}",
                c.workload,
                human_size(c.size),
                c.threads,
                if c.threads == 1 { "" } else { "s" },
                c.batch
            );
            // Issue 14: Python batch encrypt/decrypt at 64 B against the Rust allocating call, and
            // at 16 KiB against the Rust `*_batch_into` path.
            let into = c.rust_api.ends_with("_into");
            let (target, required) = match c.binding.as_str() {
                "c" => ("C ABI batches: within 3% of the Rust API", 0.97),
                "python" if c.size == 64 && !into && c.rust_api.ends_with("_batch") => (
                    "Python batches, 64 B items: >= 0.9 of the Rust allocating call",
                    0.90,
                ),
                "python" if c.size == 16 * 1024 && into => (
                    "Python batches, 16 KiB items: >= 0.8 of the Rust --into path",
                    0.80,
                ),
                "python" if c.size == 16 * 1024 => {
                    ("Python batches, 16 KiB items: within 10% of Rust", 0.90)
                }
                _ => continue,
            };
            if let Some(ratio) = c.ratio {
                checks.push(TargetCheck {
                    target: target.into(),
                    point: at,
                    metric: "ratio".into(),
                    measured: ratio,
                    measured_cpu: c.ratio_cpu,
                    required,
                    met: ratio >= required,
                });
            }
        }
        self.targets = checks;
    }

    /// For each workload, key spec and size: the point with the best throughput whose p99
    /// per-batch latency is within `bound_ms` (any point without a bound).
    pub fn recommend(&mut self, bound_ms: Option<f64>) {
        let groups = crate::dedup(self.points.iter().map(|p| (p.workload, p.key_spec, p.size)));
        let multi_callers = self.points.iter().any(|p| p.callers > 1);
        self.recommendations = groups
            .into_iter()
            .map(|(workload, key_spec, size)| {
                let in_group: Vec<&Point> = self
                    .points
                    .iter()
                    .filter(|p| (p.workload, p.key_spec, p.size) == (workload, key_spec, size))
                    .collect();
                let label = format!(
                    "{workload} {} {}",
                    short_alg(&in_group[0].algorithm, key_spec),
                    human_size(size)
                );
                let best = in_group
                    .iter()
                    .filter(|p| bound_ms.is_none_or(|b| p.batch_latency.p99_ms <= b))
                    .max_by(|a, b| a.ops_per_sec.median.total_cmp(&b.ops_per_sec.median));
                let bound_text = bound_ms
                    .map(|b| format!(" within a p99 batch latency of {b} ms"))
                    .unwrap_or_default();
                match best {
                    Some(p) => {
                        let schedule = Schedule::of(p);
                        Recommendation {
                            workload,
                            key_spec,
                            size,
                            latency_bound_ms: bound_ms,
                            found: true,
                            threads: Some(p.threads),
                            batch: Some(p.batch),
                            callers: Some(p.callers),
                            ops_per_sec: Some(p.ops_per_sec.median),
                            p99_batch_latency_ms: Some(p.batch_latency.p99_ms),
                            engine_threads: schedule.map(|s| s.threads),
                            batch_for_all_threads: schedule.and_then(|s| s.batch_for_all),
                            message: format!(
                                "{label}: {} thread{}, batch {}{}: {} ops/s, p99 batch latency \
                                 {} ms (best{bound_text}){}",
                                p.threads,
                                if p.threads == 1 { "" } else { "s" },
                                p.batch,
                                if multi_callers {
                                    format!(", {} callers", p.callers)
                                } else {
                                    String::new()
                                },
                                human(p.ops_per_sec.median),
                                ms(p.batch_latency.p99_ms),
                                schedule.map(|s| s.describe(p)).unwrap_or_default(),
                            ),
                        }
                    }
                    None => {
                        let fastest = in_group
                            .iter()
                            .min_by(|a, b| {
                                a.batch_latency.p99_ms.total_cmp(&b.batch_latency.p99_ms)
                            })
                            .expect("a group has points");
                        Recommendation {
                            workload,
                            key_spec,
                            size,
                            latency_bound_ms: bound_ms,
                            found: false,
                            threads: None,
                            batch: None,
                            callers: None,
                            ops_per_sec: None,
                            p99_batch_latency_ms: None,
                            engine_threads: None,
                            batch_for_all_threads: None,
                            message: format!(
                                "{label}: no point{bound_text}; the lowest p99 was {} ms ({} \
                                 threads, batch {}): try smaller batches",
                                ms(fastest.batch_latency.p99_ms),
                                fastest.threads,
                                fastest.batch
                            ),
                        }
                    }
                }
            })
            .collect();
    }
}

/// How the engine's scheduler runs a recommended point's batch (`keyplane::batch_schedule`), so
/// that a recommendation says when a batch is too small for the threads it was given.
#[derive(Debug, Clone, Copy)]
struct Schedule {
    threads: usize,
    jobs: usize,
    /// Whether the batch wakes parked helpers, or is shared only with helpers still awake.
    wakes: bool,
    /// The smallest batch spread over all the point's threads, when the point's batch is not.
    batch_for_all: Option<usize>,
}

impl Schedule {
    /// The largest batch searched for one that uses every thread.
    const MAX_BATCH: usize = 1 << 24;

    /// The schedule of `p`'s batch, for the workloads the batch scheduler runs.
    fn of(p: &Point) -> Option<Schedule> {
        let work = item_work(p.workload, p.key_spec)?;
        let threads = usize::try_from(p.threads).unwrap_or(usize::MAX);
        Some(Self::for_batch(work, p.size, p.batch, threads))
    }

    /// The schedule of `batch` items of `work` over `size` bytes on an engine of `threads`.
    fn for_batch(work: keyplane::ItemWork, size: usize, batch: usize, threads: usize) -> Schedule {
        let at = |batch| keyplane::batch_schedule(work, size, batch, threads);
        let now = at(batch);
        let batch_for_all =
            (now.threads < threads && at(Self::MAX_BATCH).threads == threads).then(|| {
                // The threads a batch gets grow with its size: the least batch that gets them
                // all, by bisection.
                let (mut lo, mut hi) = (batch, Self::MAX_BATCH);
                while hi - lo > 1 {
                    let mid = lo + (hi - lo) / 2;
                    if at(mid).threads == threads {
                        hi = mid;
                    } else {
                        lo = mid;
                    }
                }
                hi
            });
        Schedule {
            threads: now.threads,
            jobs: now.jobs,
            wakes: now.wakes_helpers,
            batch_for_all,
        }
    }

    /// The recommendation's tail: where the batch runs, and what batch would use every thread.
    fn describe(self, p: &Point) -> String {
        let on = if self.threads == 1 {
            "; the engine runs this batch on the calling thread alone".to_string()
        } else if self.wakes {
            format!(
                "; the engine shares this batch among {} threads in {} jobs",
                self.threads, self.jobs
            )
        } else {
            format!(
                "; the engine shares this batch among {} threads in {} jobs while its helpers \
                 are awake from a recent batch, and runs it alone after a pause",
                self.threads, self.jobs
            )
        };
        match self.batch_for_all {
            Some(b) => format!("{on} (batches of {b} or more use all {})", p.threads),
            None => on,
        }
    }
}

/// The kind of item the scheduler counts for a workload and key, or `None` for a workload that
/// does not run as one batch of like items (envelope: several calls per item).
fn item_work(workload: Workload, key_spec: KeySpec) -> Option<keyplane::ItemWork> {
    use keyplane::ItemWork;
    match workload {
        Workload::Sign | Workload::Verify => Some(ItemWork::Asymmetric),
        Workload::GenerateMac | Workload::VerifyMac => Some(ItemWork::Mac),
        Workload::Encrypt | Workload::Decrypt | Workload::ReEncrypt
            if key_spec != KeySpec::SymmetricDefault =>
        {
            Some(ItemWork::Asymmetric)
        }
        Workload::Encrypt | Workload::Decrypt | Workload::ReEncrypt | Workload::GenerateDataKey => {
            Some(ItemWork::Aead)
        }
        Workload::Envelope => None,
    }
}

/// A short name for a point's key or algorithm: AES-GCM, P-256, Ed25519, RSA-2048, HMAC-256.
pub fn short_alg(algorithm: &str, spec: KeySpec) -> String {
    match spec {
        KeySpec::SymmetricDefault => "AES-GCM".into(),
        KeySpec::EccNistP256 => "P-256".into(),
        KeySpec::EccNistP384 => "P-384".into(),
        KeySpec::EccNistP521 => "P-521".into(),
        KeySpec::EccSecgP256k1 => "secp256k1".into(),
        KeySpec::EccNistEdwards25519 => "Ed25519".into(),
        KeySpec::Rsa2048 | KeySpec::Rsa3072 | KeySpec::Rsa4096 => {
            let bits = &spec.as_str()[4..];
            if algorithm.contains("PKCS1") {
                format!("RSA-{bits}-PKCS1")
            } else {
                format!("RSA-{bits}")
            }
        }
        KeySpec::Hmac224 | KeySpec::Hmac256 | KeySpec::Hmac384 | KeySpec::Hmac512 => {
            format!("HMAC-{}", &spec.as_str()[5..])
        }
        _ => algorithm.to_owned(),
    }
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use keyplane::{batch_schedule, ItemWork};

    #[test]
    fn a_recommended_batch_says_how_the_engine_runs_it() {
        // 8 × 64 B on 2 threads: too small to share; the least batch that uses both is the
        // first the scheduler gives two threads.
        let small = Schedule::for_batch(ItemWork::Aead, 64, 8, 2);
        assert_eq!(small.threads, 1);
        let all = small
            .batch_for_all
            .expect("a larger batch uses both threads");
        assert_eq!(batch_schedule(ItemWork::Aead, 64, all, 2).threads, 2);
        assert_eq!(batch_schedule(ItemWork::Aead, 64, all - 1, 2).threads, 1);
        // 1000 × 64 B: both threads already, nothing to suggest.
        let large = Schedule::for_batch(ItemWork::Aead, 64, 1000, 2);
        assert_eq!((large.threads, large.batch_for_all), (2, None));
        assert!(large.jobs >= 2);
        // One thread: nothing to spread.
        let one = Schedule::for_batch(ItemWork::Mac, 64, 8, 1);
        assert_eq!((one.threads, one.batch_for_all), (1, None));
        // An asymmetric item pays for another thread at once.
        assert_eq!(
            Schedule::for_batch(ItemWork::Asymmetric, 0, 2, 2).threads,
            2
        );
    }

    #[test]
    fn workloads_map_to_the_items_the_scheduler_counts() {
        assert_eq!(
            item_work(Workload::Encrypt, KeySpec::SymmetricDefault),
            Some(ItemWork::Aead)
        );
        assert_eq!(
            item_work(Workload::Encrypt, KeySpec::Rsa2048),
            Some(ItemWork::Asymmetric)
        );
        assert_eq!(
            item_work(Workload::GenerateMac, KeySpec::Hmac256),
            Some(ItemWork::Mac)
        );
        assert_eq!(
            item_work(Workload::Envelope, KeySpec::SymmetricDefault),
            None
        );
    }
}
