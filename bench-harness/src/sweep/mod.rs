//! The throughput sweep: every (workload, key spec, size) × batch × threads × callers point of
//! the engine against the raw aws-lc-rs loop, with the optional C ABI (encrypt) and Python (encrypt,
//! decrypt) comparisons, in
//! named steps: decide the [`plan::Plan`], start the [`rig::Rig`] of engines, measure each
//! [`cell::Cell`], then write the notes and the report.

mod cell;
mod plan;
mod progress;
mod python;
mod rig;
mod round_robin;

use crate::args::SweepArgs;
use crate::report::{EngineInfo, Machine, Point, Report, Settings};
use crate::{BenchError, RunOptions};
use cell::{Cell, Results};
use plan::Plan;
use progress::Progress;
use rig::Rig;

/// Measures the sweep `args` describes on the store `options` names.
pub(crate) fn measure(args: &SweepArgs, options: &RunOptions) -> Result<Report, BenchError> {
    let plan = Plan::new(args)?;
    let progress = Progress::new(plan.progress_units(!args.no_baseline), args.quiet);
    progress.start("starting the engines");
    let rig = Rig::start(&plan, options, &args.python)?;
    let mut notes = Vec::new();
    if let (true, Err(e)) = (plan.compare_python, &rig.python) {
        notes.push(format!("--compare python skipped: {e}"));
    }
    // The hand-off between two cores, where points run on more than one thread.
    let hand_off_cpus = plan
        .threads
        .iter()
        .any(|&t| t > 1)
        .then(crate::handoff::two_cpus)
        .flatten();
    let hand_off_before = hand_off_cpus.and_then(crate::handoff::measure);
    let mut results = Results::default();
    for group in &plan.groups {
        for &batch in &plan.batches {
            let cell = Cell::new(group, batch, args);
            cell::measure_cell(args, &plan, &rig, &cell, &progress, &mut results)?;
            if plan::python_compared(group.workload) && plan.compare_python {
                python::compare_cell(args, &plan, &rig, &cell, &progress, &mut results)?;
            }
        }
    }
    progress.bar.finish_and_clear();
    let core_hand_off = match (hand_off_cpus, hand_off_before) {
        (Some(cpus), Some(before_ns)) => {
            crate::handoff::measure(cpus).map(|after_ns| crate::handoff::CoreHandOff {
                cpus,
                before_ns,
                after_ns,
            })
        }
        _ => None,
    };
    notes.extend(warnings(&results.points, &plan.threads));
    if let Some(h) = core_hand_off.filter(|h| !(0.5..=2.0).contains(&(h.after_ns / h.before_ns))) {
        notes.push(format!(
            "the cache-line hand-off between CPUs {} and {} went from {:.0} to {:.0} ns during the \
             run (a virtual machine whose CPUs moved between cores that share a cache and cores \
             that do not?): two-thread points measured in the two spells are not comparable",
            h.cpus[0], h.cpus[1], h.before_ns, h.after_ns
        ));
    }
    Ok(report(
        args,
        options,
        &plan,
        rig.store_label,
        results,
        notes,
        core_hand_off,
    ))
}

/// What a reader of the numbers should know: noisy points, points spent in the kernel, more
/// threads than CPUs, a debug build.
fn warnings(points: &[Point], threads: &[u32]) -> Vec<String> {
    let mut notes = Vec::new();
    let name = |p: &Point| {
        format!(
            "{} {} {} t{} b{}",
            p.workload,
            crate::report::short_alg(&p.algorithm, p.key_spec),
            crate::report::human_size(p.size),
            p.threads,
            p.batch
        )
    };
    let noisy: Vec<String> = points
        .iter()
        .filter(|p| p.ops_per_sec.spread_pct > 10.0 && p.ops_per_sec.samples.len() > 1)
        .map(name)
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
        .map(|p| format!("{} ({:.0}%)", name(p), p.system_cpu_share * 100.0))
        .collect();
    if !in_kernel.is_empty() {
        notes.push(format!(
            "{} point(s) spent over 15% of their CPU time in the kernel: {}. With large batches \
             of large results this is usually page faults: glibc returns the freed results to \
             the kernel between batches and the next batch faults them back in. The engine's \
             allocating calls keep their results' buffers (engine/src/recycled_buffers.rs); \
             the raw baseline's vectors and other allocating code do not (see \
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
    notes
}

fn report(
    args: &SweepArgs,
    options: &RunOptions,
    plan: &Plan,
    store_label: String,
    results: Results,
    notes: Vec<String>,
    core_hand_off: Option<crate::handoff::CoreHandOff>,
) -> Report {
    let mut report = Report {
        harness: format!("keyplane-bench {}", env!("CARGO_PKG_VERSION")),
        engine: EngineInfo {
            fips: keyplane::fips_mode(),
            store: store_label,
            lock_policy: format!("{:?}", options.lock_policy),
            max_plaintext_bytes: plan.max_plaintext,
        },
        machine: Machine::this(),
        settings: Settings {
            duration_ms: match plan.timing.amount {
                crate::measure::Amount::Time(d) => Some(d.as_secs_f64() * 1e3),
                crate::measure::Amount::Ops(_) => None,
            },
            ops: args.ops.map(|n| n as u64),
            warmup_ms: args.warmup.as_secs_f64() * 1e3,
            repeats: args.repeats,
            context: plan.context.is_some(),
            into: args.into,
            kept_outputs: args.kept_outputs,
            rsa_padding: format!("{:?}", args.rsa_padding),
            per_thread_divisor: "max(threads, callers)".into(),
        },
        baselines: results.baselines,
        points: results.points,
        compare: results.comparisons,
        recommendations: Vec::new(),
        targets: Vec::new(),
        notes,
        core_hand_off,
    };
    report.link_thread_scaling();
    report.check_targets();
    if args.recommend {
        report.recommend(args.latency_bound_ms);
    }
    report
}
