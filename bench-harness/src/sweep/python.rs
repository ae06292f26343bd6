//! `--compare python`: the Python package's batch encrypt and decrypt against the Rust point with
//! the same threads and batch, run in a child interpreter per thread count. With `--into` or
//! `--kept-outputs` the Python side is the package's zero-copy call (`encrypt_batch_into` /
//! `decrypt_batch_into` into one kept `bytearray`), else its allocating one (`bytes` per item).

use super::cell::{plural, Cell, Results};
use super::plan::Plan;
use super::progress::Progress;
use super::rig::Rig;
use crate::args::SweepArgs;
use crate::compare::{self, PythonOutcome};
use crate::measure::{Amount, Stats};
use crate::report::{self, Comparison};
use crate::BenchError;

/// Measures and records the Python comparison of one encrypt or decrypt cell, for every thread
/// count.
pub(super) fn compare_cell(
    args: &SweepArgs,
    plan: &Plan,
    rig: &Rig,
    cell: &Cell<'_>,
    progress: &Progress,
    results: &mut Results,
) -> Result<(), BenchError> {
    for &t in &plan.threads {
        let rust = results
            .points
            .iter()
            .rev()
            .find(|p| p.threads == t && p.callers == 1 && p.batch == cell.batch)
            .map(|p| p.ops_per_sec.clone());
        let mut entry = Comparison {
            binding: "python".into(),
            workload: cell.group.workload,
            size: cell.group.size,
            threads: t,
            batch: cell.batch,
            status: "skipped".into(),
            message: None,
            rust_api: format!(
                "{}_batch{}",
                cell.group.workload,
                if args.into {
                    "_into"
                } else if args.kept_outputs {
                    "_to"
                } else {
                    ""
                }
            ),
            rust_ops_per_sec: rust,
            binding_ops_per_sec: None,
            ratio: None,
            ratio_cpu: None,
        };
        match &rig.python {
            Err(_) => entry.message = Some("not installed (see the note)".into()),
            Ok(()) => run_one(args, plan, cell, t, progress, &mut entry)?,
        }
        progress.bar.inc(1);
        results.comparisons.push(entry);
    }
    Ok(())
}

fn run_one(
    args: &SweepArgs,
    plan: &Plan,
    cell: &Cell<'_>,
    t: u32,
    progress: &Progress,
    entry: &mut Comparison,
) -> Result<(), BenchError> {
    progress.start(&format!(
        "{}, batch {}: {t} threads: Python",
        cell.label, cell.batch
    ));
    let secs = match plan.timing.amount {
        Amount::Time(d) => d.as_secs_f64(),
        Amount::Ops(_) => args.duration.as_secs_f64(),
    };
    match compare::python_run(
        &args.python,
        cell.group.workload,
        args.into || args.kept_outputs,
        t,
        cell.batch,
        cell.group.size,
        secs,
        plan.timing.warmup.as_secs_f64(),
        plan.timing.repeats,
        plan.max_plaintext,
        plan.context.is_some(),
    )? {
        PythonOutcome::Rates(rates, api, system) if !rates.is_empty() => {
            entry.message = Some(match system {
                Some(share) => format!("{api}, sys {:.0}%", share * 100.0),
                None => api,
            });
            let s = Stats::of(&rates);
            entry.ratio = entry
                .rust_ops_per_sec
                .as_ref()
                .filter(|r| r.median > 0.0)
                .map(|r| s.median / r.median);
            progress.done(format!(
                "{}, batch {}, {t} thread{}: Python {} ops/s",
                cell.label,
                cell.batch,
                plural(t),
                report::human(s.median)
            ));
            entry.binding_ops_per_sec = Some(s);
            entry.status = "ok".into();
        }
        PythonOutcome::Rates(..) => {
            entry.status = "failed".into();
            entry.message = Some("the Python run measured nothing".into());
        }
        PythonOutcome::NotInstalled(m) => entry.message = Some(m),
        PythonOutcome::Failed(m) => {
            entry.status = "failed".into();
            entry.message = Some(m);
        }
    }
    Ok(())
}
