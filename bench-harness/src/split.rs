//! The bare split: what `threads` threads sharing one batch of the bare primitive reach on this
//! machine, with the least coordination a shared batch can have. It is the ceiling for the
//! engine's two-thread scaling at a batch size, where [`crate::raw`]'s loop is the ceiling for one
//! thread: a shared batch pays cross-core hand-offs that no engine can avoid, and on a virtual
//! machine they cost from ~30 to over 200 ns each ([`crate::handoff`]).
//!
//! Each call of the calling thread's closure is one batch:
//! - the calling thread posts it: one store to a word the helpers spin on (they stay awake, as
//!   the engine's helpers do in a stream of batches);
//! - each thread runs the bare loop over its own part of the batch (consecutive items, the same
//!   ones every batch, as the engine's homes), then writes a 4-byte result per item into one
//!   array, as the engine's `Written` counts; each helper then adds one to a done counter;
//! - the calling thread waits for every helper's count, then reads every item's result, as a
//!   caller reads its batch's results.
//!
//! Nothing else: no plan, no jobs, no stealing, no check of the items. So the engine's ratio of
//! two threads over one against this one's separates what the hardware charges a split from what
//! the engine adds to it.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Barrier, Mutex};

use crate::measure::{cpu_between, process_cpu_time, run_made, Amount, Sample};
use crate::workload::BatchFn;

/// A word on a cache line of its own, so that what one thread writes does not move what another
/// spins on.
#[repr(align(128))]
#[derive(Default)]
struct Line<T>(T);

/// The state the threads of a split share.
#[derive(Default)]
struct Team {
    /// The batch posted last (0: none yet); written by the calling thread.
    post: Line<AtomicU64>,
    /// Set with the last post: the helpers leave.
    stop: Line<AtomicBool>,
    /// Helpers' finished parts, over all batches.
    done: Line<AtomicU64>,
    /// A helper's failure, reported by the calling thread after the batch.
    failed: Mutex<Option<String>>,
}

/// The part of a batch of `batch` items that thread `i` of `threads` runs: consecutive items, the
/// parts of nearly equal length and covering the batch.
pub fn part(batch: usize, threads: usize, i: usize) -> std::ops::Range<usize> {
    let threads = threads.max(1);
    batch * i / threads..batch * (i + 1) / threads
}

/// One repeat of a batch of `batch` items shared by `threads` threads, until `amount`. `make(r)`
/// makes a thread's bare loop over the items `r` (each call runs each of them once).
pub fn sample_split<'a>(
    make: &(dyn Fn(std::ops::Range<usize>) -> Result<BatchFn<'a>, String> + Sync),
    threads: usize,
    batch: usize,
    amount: Amount,
) -> Result<Sample, String> {
    let threads = threads.max(1);
    if batch < threads {
        return Err(format!(
            "a batch of {batch} cannot be split over {threads} threads"
        ));
    }
    let team = Team::default();
    let results: Vec<AtomicU32> = (0..batch).map(|_| AtomicU32::new(0)).collect();
    // The helpers and the calling thread, once each has made its loop.
    let ready = Barrier::new(threads);
    std::thread::scope(|s| {
        for i in 1..threads {
            let (team, results, ready) = (&team, &results[..], &ready);
            let mine = part(batch, threads, i);
            s.spawn(move || {
                let made = unpanicked(|| make(mine.clone()), "making a helper's loop");
                helper(made, team, &results[mine], ready);
            });
        }
        let made = make(part(batch, threads, 0));
        ready.wait();
        let run = made.and_then(|own| {
            let caller = caller(own, &team, &results, threads);
            let cpu_start = process_cpu_time();
            let run = run_made(caller, amount);
            run.map(|run| (run, cpu_between(cpu_start, process_cpu_time())))
        });
        // Every helper leaves, whatever happened: one more post, with `stop` set.
        team.stop.0.store(true, Ordering::Relaxed);
        team.post.0.fetch_add(1, Ordering::Release);
        let ((ops, elapsed, latency), (cpu, system)) = run?;
        Ok(Sample {
            ops,
            rate: ops as f64 / elapsed.as_secs_f64().max(1e-9),
            cpu_rate: ops as f64 / cpu.as_secs_f64().max(1e-9),
            system_share: system.as_secs_f64() / cpu.as_secs_f64().max(1e-9),
            latency,
        })
    })
}

/// The calling thread's closure: post, run its own part, wait for the helpers, read every
/// result.
fn caller<'t>(
    mut own: BatchFn<'t>,
    team: &'t Team,
    results: &'t [AtomicU32],
    threads: usize,
) -> BatchFn<'t> {
    let helpers = (threads - 1) as u64;
    let batch = results.len();
    let mut posted = 0u64;
    Box::new(move || {
        posted += 1;
        team.post.0.store(posted, Ordering::Release);
        let ran = own()?;
        write_results(&results[part(batch, threads, 0)], ran, posted)?;
        while team.done.0.load(Ordering::Acquire) < posted * helpers {
            std::hint::spin_loop();
        }
        if let Some(e) = team.failed.lock().map_err(|_| "a helper panicked")?.take() {
            return Err(e);
        }
        let stale = results
            .iter()
            .filter(|r| r.load(Ordering::Relaxed) != stamp(posted))
            .count();
        if stale > 0 {
            return Err(format!(
                "the bare split read {stale} results of a batch of {batch} from an earlier batch"
            ));
        }
        Ok(batch as u64)
    })
}

/// A helper: waits for each post, runs its part, writes its results, counts itself done.
fn helper(made: Result<BatchFn<'_>, String>, team: &Team, mine: &[AtomicU32], ready: &Barrier) {
    ready.wait();
    let mut own = match made {
        Ok(f) => Some(f),
        Err(e) => {
            fail(team, e);
            None
        }
    };
    let mut seen = 0u64;
    loop {
        let mut spins = 0u32;
        let posted = loop {
            let p = team.post.0.load(Ordering::Acquire);
            if p != seen {
                break p;
            }
            spins = spins.wrapping_add(1);
            if spins % 4096 == 0 {
                // Let another thread of this CPU run while the calling thread is away longer
                // than a batch (between its calls only the harness's clock runs).
                std::thread::yield_now();
            } else {
                std::hint::spin_loop();
            }
        };
        seen = posted;
        if team.stop.0.load(Ordering::Relaxed) {
            return;
        }
        if let Some(f) = own.as_mut() {
            let ran = unpanicked(f, "a helper's part");
            if let Err(e) = ran.and_then(|ran| write_results(mine, ran, posted)) {
                fail(team, e);
                own = None;
            }
        }
        team.done.0.fetch_add(1, Ordering::Release);
    }
}

/// `f`'s result, or an error naming `what` if it panicked: a helper that unwound would never
/// count itself done, and the calling thread would wait for it for ever.
fn unpanicked<T>(f: impl FnOnce() -> Result<T, String>, what: &str) -> Result<T, String> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f))
        .unwrap_or_else(|_| Err(format!("{what} panicked")))
}

fn fail(team: &Team, e: String) {
    if let Ok(mut failed) = team.failed.lock() {
        failed.get_or_insert(e);
    }
}

/// What each item's result holds after batch `posted`: the calling thread finds every one of
/// them only if every part ran this batch.
fn stamp(posted: u64) -> u32 {
    posted as u32
}

/// Writes each item's result of a part that ran `ran` operations in batch `posted`.
fn write_results(part: &[AtomicU32], ran: u64, posted: u64) -> Result<(), String> {
    if ran != part.len() as u64 {
        return Err(format!(
            "a part of {} items ran {ran} operations",
            part.len()
        ));
    }
    for r in part {
        r.store(stamp(posted), Ordering::Relaxed);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    #[test]
    fn parts_cover_the_batch_in_order() {
        for batch in [1, 2, 7, 64, 1000] {
            for threads in 1..=batch.min(16) {
                let parts: Vec<_> = (0..threads).map(|i| part(batch, threads, i)).collect();
                assert_eq!(parts[0].start, 0);
                assert_eq!(parts[threads - 1].end, batch);
                for w in parts.windows(2) {
                    assert_eq!(w[0].end, w[1].start, "{batch} over {threads}");
                }
                assert!(
                    parts.iter().all(|p| !p.is_empty()),
                    "{batch} over {threads}"
                );
            }
        }
    }

    /// Every thread runs its own part once per batch, and a call counts the whole batch.
    #[test]
    fn each_batch_runs_every_part_once() {
        let items: Vec<AtomicUsize> = (0..61).map(|_| AtomicUsize::new(0)).collect();
        let make = |r: std::ops::Range<usize>| -> Result<BatchFn<'_>, String> {
            let items = &items;
            Ok(Box::new(move || {
                for i in r.clone() {
                    items[i].fetch_add(1, Ordering::Relaxed);
                }
                Ok(r.len() as u64)
            }))
        };
        let s = sample_split(&make, 3, 61, Amount::Ops(6100)).expect("runs");
        assert_eq!(s.ops, 6100, "whole batches, each counted once");
        assert!(s.rate > 0.0 && s.latency.count() == 100);
        for (i, n) in items.iter().enumerate() {
            assert_eq!(n.load(Ordering::Relaxed), 100, "item {i} ran once a batch");
        }
    }

    /// A helper whose part fails, or whose loop cannot be made, fails the call: the calling
    /// thread neither waits for ever nor counts a batch some part did not run.
    #[test]
    fn a_failing_part_fails_the_run_and_nobody_hangs() {
        let failing = |r: std::ops::Range<usize>| -> Result<BatchFn<'static>, String> {
            let mut calls = 0;
            Ok(Box::new(move || {
                calls += 1;
                if r.start > 0 && calls == 3 {
                    return Err("the helper's part failed".into());
                }
                Ok(r.len() as u64)
            }))
        };
        let e = sample_split(&failing, 2, 8, Amount::Ops(1 << 20)).unwrap_err();
        assert!(e.contains("the helper's part failed"), "{e}");

        let panicking = |r: std::ops::Range<usize>| -> Result<BatchFn<'static>, String> {
            Ok(Box::new(move || {
                assert!(r.start == 0, "the helper's part panicked");
                Ok(r.len() as u64)
            }))
        };
        let e = sample_split(&panicking, 2, 1, Amount::Ops(8)).unwrap_err();
        assert!(e.contains("cannot be split"), "{e}");
        let e = sample_split(&panicking, 2, 8, Amount::Ops(1 << 20)).unwrap_err();
        assert!(e.contains("a helper's part panicked"), "{e}");

        let short = |r: std::ops::Range<usize>| -> Result<BatchFn<'static>, String> {
            let skip = r.start > 0;
            Ok(Box::new(move || Ok(r.len() as u64 - u64::from(skip))))
        };
        let e = sample_split(&short, 2, 8, Amount::Ops(1 << 20)).unwrap_err();
        assert!(e.contains("ran 3 operations"), "{e}");

        for failing_thread in [0, 1] {
            let unmade = |r: std::ops::Range<usize>| -> Result<BatchFn<'static>, String> {
                if (r.start > 0) == (failing_thread == 1) {
                    return Err("no loop".into());
                }
                Ok(Box::new(move || Ok(r.len() as u64)))
            };
            let e = sample_split(&unmade, 2, 8, Amount::Ops(64)).unwrap_err();
            assert!(e.contains("no loop"), "thread {failing_thread}: {e}");
        }
    }
}
