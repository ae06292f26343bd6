//! One cell of a sweep: a group at one batch size. Its inputs are prepared once, then the raw
//! baseline, every (threads, callers) point and the `--compare c` pairs are measured round-robin
//! and recorded.

use super::plan::{algorithm_name, Group, Plan};
use super::progress::Progress;
use super::rig::Rig;
use super::round_robin::{
    calibrate, latency, measure_round_robin, Measured, Measures, Runner, SplitRunner,
};
use crate::args::SweepArgs;
use crate::kept_rooms::KeptRooms;
use crate::measure::Stats;
use crate::raw;
use crate::report::{self, Baseline, Comparison, Point};
use crate::workload::{Inputs, Outputs, Workload};
use crate::BenchError;

/// What a sweep has measured so far.
#[derive(Default)]
pub(super) struct Results {
    pub baselines: Vec<Baseline>,
    pub points: Vec<Point>,
    pub comparisons: Vec<Comparison>,
}

/// A group at one batch size, with the names its lines and records use.
pub(super) struct Cell<'a> {
    pub group: &'a Group,
    pub batch: usize,
    pub algorithm: String,
    /// "encrypt AES-GCM 4 KiB": the start of every progress line.
    pub label: String,
}

impl<'a> Cell<'a> {
    pub fn new(group: &'a Group, batch: usize, args: &SweepArgs) -> Cell<'a> {
        let algorithm = algorithm_name(group.workload, group.spec, args.rsa_padding);
        let label = format!(
            "{} {} {}",
            group.workload,
            report::short_alg(&algorithm, group.spec),
            report::human_size(group.size)
        );
        Cell {
            group,
            batch,
            algorithm,
            label,
        }
    }

    /// Bytes per second at `rate` operations per second, for workloads measured in bytes.
    fn bytes(&self, rate: f64) -> Option<f64> {
        self.group
            .workload
            .uses_size()
            .then_some(rate * self.group.size as f64)
    }
}

/// Measures one cell and records what it measured.
pub(super) fn measure_cell(
    args: &SweepArgs,
    plan: &Plan,
    rig: &Rig,
    cell: &Cell<'_>,
    progress: &Progress,
    results: &mut Results,
) -> Result<(), BenchError> {
    let g = cell.group;
    progress.start(&format!("{}, batch {}", cell.label, cell.batch));
    let inputs = Inputs::prepare(
        &rig.setup,
        g.workload,
        g.spec,
        g.size,
        cell.batch,
        plan.context.clone(),
        args.rsa_padding,
    )?;
    // One output buffer per caller of an `--into` point, cut into rooms once and kept from call
    // to call (`kept_rooms.rs`); the encrypt points' Rust side of `--compare c` leases them too.
    let into = args.outputs() == Outputs::Into
        || (g.workload == Workload::Encrypt && !rig.c_engines.is_empty());
    let callers = plan.callers.iter().copied().max().unwrap_or(1) as usize;
    let mut buffers: Vec<Vec<u8>> = match (into, g.workload) {
        (true, Workload::Encrypt | Workload::Decrypt) => {
            vec![vec![0u8; inputs.into_room() * cell.batch]; callers]
        }
        _ => Vec::new(),
    };
    let rooms = KeptRooms::new(&mut buffers, inputs.into_room());
    let raw_state = if args.no_baseline {
        None
    } else {
        let state = raw::RawState::new(&inputs, g.spec, args.outputs() != Outputs::Allocated)?;
        let chunk = calibrate(&state)?;
        Some((state, chunk))
    };
    // Runners, in the order their results are read back below: the raw baseline, its bare split
    // over each thread count above one, every (threads, callers) point, and for encrypt the Rust
    // `encrypt_batch_into` / C ABI pairs.
    let mut runners: Vec<Measures<'_>> = Vec::new();
    let mut split_threads = Vec::new();
    if let Some((state, chunk)) = &raw_state {
        runners.push(Measures::Callers(Runner {
            make: Box::new(move || Ok(state.batch_fn(*chunk))),
            callers: 1,
        }));
        // A batch of fewer items than threads cannot be shared by all of them.
        let shared_by = |t: u32| t > 1 && t as usize <= cell.batch;
        for &t in plan.threads.iter().filter(|&&t| shared_by(t)) {
            runners.push(Measures::Split(SplitRunner {
                make: Box::new(move |part| {
                    let len = part.len();
                    Ok(state.batch_fn_over(part, len))
                }),
                threads: t as usize,
                batch: cell.batch,
            }));
            split_threads.push(t);
        }
    }
    let rooms = &rooms;
    let mut point_keys = Vec::new();
    for &t in &plan.threads {
        let engine = &rig.engines[&t];
        for &c in &plan.callers {
            let inputs = &inputs;
            runners.push(Measures::Callers(Runner {
                make: Box::new(move || Ok(inputs.batch_fn(engine, args.outputs(), Some(rooms)))),
                callers: c,
            }));
            point_keys.push((t, c));
        }
    }
    let mut c_keys = Vec::new();
    if g.workload == Workload::Encrypt {
        for (&t, c_engine) in &rig.c_engines {
            let engine = &rig.engines[&t];
            let inputs = &inputs;
            runners.push(Measures::Callers(Runner {
                make: Box::new(move || Ok(inputs.batch_fn(engine, Outputs::Into, Some(rooms)))),
                callers: 1,
            }));
            runners.push(Measures::Callers(Runner {
                make: Box::new(move || Ok(c_engine.batch_fn(&inputs.messages))),
                callers: 1,
            }));
            c_keys.push(t);
        }
    }
    let mut measured = measure_round_robin(&runners, &plan.timing, progress)?.into_iter();
    let mut next = || measured.next().expect("a result per runner");
    let raw_rate = match raw_state {
        Some(_) => Some(record_baseline(
            cell,
            inputs.size,
            &next(),
            progress,
            results,
        )),
        None => None,
    };
    let splits: Vec<(u32, f64)> = split_threads
        .into_iter()
        .map(|t| (t, record_split(cell, t, raw_rate, &next(), progress)))
        .collect();
    for (t, c) in point_keys {
        let split = splits.iter().find(|s| s.0 == t && c == 1).map(|s| s.1);
        record_point(
            cell,
            inputs.size,
            (t, c),
            (raw_rate, split),
            &next(),
            progress,
            results,
        );
    }
    for t in c_keys {
        let (rust, c_abi) = (next(), next());
        record_c_comparison(cell, t, &rust, &c_abi, progress, results);
    }
    Ok(())
}

/// Records the raw aws-lc-rs loop; returns its (ops/s, ops per CPU-second) medians.
fn record_baseline(
    cell: &Cell<'_>,
    size: usize,
    m: &Measured,
    progress: &Progress,
    results: &mut Results,
) -> (f64, f64) {
    let stats = Stats::of(&m.rates);
    let cpu = Stats::of(&m.cpu_rates);
    let rate = (stats.median, cpu.median);
    progress.done(format!(
        "{}, batch {}: raw aws-lc-rs, 1 thread: {} ops/s (±{:.1}%)",
        cell.label,
        cell.batch,
        report::human(stats.median),
        stats.spread_pct
    ));
    results.baselines.push(Baseline {
        workload: cell.group.workload,
        key_spec: cell.group.spec,
        algorithm: cell.algorithm.clone(),
        size,
        batch: cell.batch,
        bytes_per_sec: cell.bytes(stats.median),
        ops_per_sec: stats,
        ops_per_cpu_sec: cpu,
        system_cpu_share: Stats::of(&m.system_shares).median,
    });
    rate
}

/// Reports the bare split over `t` threads; returns its median ops/s.
fn record_split(
    cell: &Cell<'_>,
    t: u32,
    raw_rate: Option<(f64, f64)>,
    m: &Measured,
    progress: &Progress,
) -> f64 {
    let stats = Stats::of(&m.rates);
    progress.done(format!(
        "{}, batch {}: raw aws-lc-rs, one batch split over {t} threads: {} ops/s (±{:.1}%){}",
        cell.label,
        cell.batch,
        report::human(stats.median),
        stats.spread_pct,
        raw_rate
            .filter(|r| r.0 > 0.0)
            .map(|r| format!(", {:.3}x one thread", stats.median / r.0))
            .unwrap_or_default()
    ));
    stats.median
}

/// Records one (threads, callers) point, against the raw loop and its bare split where they were
/// measured.
fn record_point(
    cell: &Cell<'_>,
    size: usize,
    (t, c): (u32, u32),
    (raw_rate, split_rate): (Option<(f64, f64)>, Option<f64>),
    m: &Measured,
    progress: &Progress,
    results: &mut Results,
) {
    let stats = Stats::of(&m.rates);
    let cpu = Stats::of(&m.cpu_rates);
    let workers = f64::from(t.max(c));
    let vs_raw = raw_rate.filter(|r| r.0 > 0.0).map(|r| stats.median / r.0);
    let vs_raw_cpu = raw_rate.filter(|r| r.1 > 0.0).map(|r| cpu.median / r.1);
    let point = Point {
        workload: cell.group.workload,
        key_spec: cell.group.spec,
        algorithm: cell.algorithm.clone(),
        size,
        threads: t,
        batch: cell.batch,
        callers: c,
        bytes_per_sec: cell.bytes(stats.median),
        batch_latency: latency(&m.latency),
        ops: m.ops,
        raw_ops_per_sec: raw_rate.map(|r| r.0),
        vs_raw,
        vs_raw_per_thread: vs_raw.map(|v| v / workers),
        vs_raw_cpu,
        vs_1_thread: None,
        bare_split_ops_per_sec: split_rate,
        bare_split_vs_1_thread: split_rate
            .zip(raw_rate)
            .filter(|(_, r)| r.0 > 0.0)
            .map(|(s, r)| s / r.0),
        ops_per_sec: stats,
        ops_per_cpu_sec: cpu,
        system_cpu_share: Stats::of(&m.system_shares).median,
    };
    progress.done(format!(
        "{}, batch {}, {t} thread{}{}: {} ops/s (±{:.1}%){}",
        cell.label,
        cell.batch,
        plural(t),
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
    results.points.push(point);
}

/// Records the C ABI against Rust's `encrypt_batch_into` on the same engine threads.
fn record_c_comparison(
    cell: &Cell<'_>,
    t: u32,
    rust: &Measured,
    c_abi: &Measured,
    progress: &Progress,
    results: &mut Results,
) {
    let (r, c) = (Stats::of(&rust.rates), Stats::of(&c_abi.rates));
    let (r_cpu, c_cpu) = (Stats::of(&rust.cpu_rates), Stats::of(&c_abi.cpu_rates));
    let ratio = (r.median > 0.0).then(|| c.median / r.median);
    let ratio_cpu = (r_cpu.median > 0.0).then(|| c_cpu.median / r_cpu.median);
    progress.done(format!(
        "{}, batch {}, {t} thread{}: C ABI {} ops/s vs Rust encrypt_batch_into {} ops/s ({:.3})",
        cell.label,
        cell.batch,
        plural(t),
        report::human(c.median),
        report::human(r.median),
        ratio.unwrap_or(0.0)
    ));
    results.comparisons.push(Comparison {
        binding: "c".into(),
        workload: cell.group.workload,
        size: cell.group.size,
        threads: t,
        batch: cell.batch,
        status: "ok".into(),
        message: None,
        rust_api: "encrypt_batch_into".into(),
        rust_ops_per_sec: Some(r),
        binding_ops_per_sec: Some(c),
        ratio,
        ratio_cpu,
    });
}

pub(super) fn plural(n: u32) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}
