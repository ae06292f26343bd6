//! How a data-plane batch is scheduled, and why: whether it is shared, by how many threads, and
//! how it is cut into jobs of similar estimated work ([`super::item_cost::ItemCost`]) that the
//! calling thread and up to `threads - 1` pool workers take in turn ([`super::shared_batch`]),
//! each with one chunk context.
//!
//! - A batch whose estimated work is under [`INLINE_BELOW_NS`] runs on the calling thread alone:
//!   sharing it costs more than it could gain. One under [`WAKE_FROM_NS`] is shared only with
//!   helpers already awake (after a batch they stay awake a while, see [`super::spin_pool`]):
//!   waking a parked one is a futex call on the calling thread (64 × 64 B encrypts are ~17 µs
//!   of work, 8 × 16 KiB ~28 µs), unless it comes in a stream of batches (the last one under
//!   200 µs ago), whose helpers, once woken, stay awake for the rest.
//! - Otherwise one thread takes part per [`WORK_PER_THREAD_NS`] of work, up to the pool's size,
//!   and the calling thread is one of them: it works on its own batch instead of sleeping until
//!   the pool is done, so a batch never waits for a wake-up before work starts.
//! - Each taking-part thread has a home, a run of consecutive items worth an equal share of the
//!   batch's estimated cost (the calling thread the first), cut into contiguous jobs that halve
//!   down to [`JOB_NS`] ([`plan`]). A thread claims its home's jobs in order, one
//!   compare-and-swap on its home's claim word each, then what is still unclaimed in the homes
//!   after it (by then their small jobs), so that threads end together even when one woke late
//!   or ran slow. So each thread writes about the same outputs from batch to batch, and they
//!   stay in its core's cache. A helper that wakes after every job was claimed finds nothing and
//!   returns.
//! - The calling thread only plans a shared batch: each thread takes the items, output buffers
//!   and result slots of the jobs it claims itself, and writes only lines of its own until it
//!   hands its results over ([`super::shared_batch`]).
//! - The helpers are [`super::spin_pool`]'s threads, which stay awake for a while after a batch,
//!   so back-to-back batches start on every thread at once, and the calling thread waits only for
//!   helpers inside a job, never for one still waking. While another batch holds them, a batch
//!   runs on rayon's pool instead.

use smallvec::{smallvec, SmallVec};

use super::item_cost::ItemWork;

/// Batches estimated below this run on the calling thread alone: even a helper already awake
/// costs more than it gains (its chunk context, the claims, the wait for its last job).
const INLINE_BELOW_NS: u64 = 12_000;
/// Batches estimated below this run on helpers only if some are awake: waking a parked helper is
/// a futex call on the calling thread, microseconds it would rather spend on its own items.
const WAKE_FROM_NS: u64 = 40_000;
/// Work that pays for one more thread.
const WORK_PER_THREAD_NS: u64 = 8_000;
/// The least work in one job: a claim is one compare-and-swap, and a job sets up its parts.
const JOB_NS: u64 = 2_500;

/// How a batch runs: the threads taking part (the calling thread included), where its jobs end
/// (item indices, ascending, the last one `n`) and where each thread's home of jobs starts.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Plan {
    pub(crate) threads: usize,
    /// Inline, as the homes below, so that planning allocates nothing (a batch of 1,000 MACs on
    /// two threads has 14 jobs).
    pub(crate) job_ends: SmallVec<[usize; 16]>,
    /// For each taking-part thread, the index of its home's first job (ascending from 0; a home
    /// may be empty when one item is worth more than a thread's share).
    pub(crate) home_starts: SmallVec<[usize; 4]>,
    /// Whether the batch is worth waking parked helpers for.
    pub(crate) wake: bool,
}

/// Plans a batch of items with these estimated costs for a pool of `pool_threads`.
///
/// Each taking-part thread's home is a run of consecutive items worth an equal share of the
/// batch, cut into jobs that halve: the first is half the home, each next one half of what is
/// left, down to [`JOB_NS`]. A thread that finishes its home early then takes the jobs still
/// unclaimed in the other homes, which by then are their small ones, so the threads end within
/// about one small job of each other, whatever the batch's size, in a few claims per thread.
/// (Jobs of one size, four per thread, left a thread waiting up to a quarter of its share at the
/// end: at 1,000 MACs on two threads, 1.71–1.83×.)
pub(crate) fn plan(costs: impl Iterator<Item = u64> + Clone, pool_threads: usize) -> Plan {
    plan_cut(costs, pool_threads, true)
}

/// [`plan`], with the jobs of a batch of equal items cut by arithmetic (`by_arithmetic`) or, as
/// any other batch's, by a pass over the items: the tests check that both cut the same jobs.
fn plan_cut(
    costs: impl Iterator<Item = u64> + Clone,
    pool_threads: usize,
    by_arithmetic: bool,
) -> Plan {
    // One pass for the count, the total and whether every item costs the same (a batch of one
    // kind of request over one message size, the common case): then the jobs are cut by
    // arithmetic, not by a second pass over the requests.
    let (n, total, first, uniform) =
        costs
            .clone()
            .fold((0usize, 0u64, 0u64, true), |(n, t, first, same), c| {
                let first = if n == 0 { c } else { first };
                (n + 1, t.saturating_add(c), first, same && c == first)
            });
    let by_work = usize::try_from(total / WORK_PER_THREAD_NS).unwrap_or(usize::MAX);
    let threads = by_work.min(pool_threads).min(n).max(1);
    if threads == 1 || total < INLINE_BELOW_NS {
        return Plan {
            threads: 1,
            job_ends: smallvec![n],
            home_starts: smallvec![0],
            wake: false,
        };
    }
    let mut cuts = Cuts::new(threads, total);
    match (n as u64).checked_mul(first) {
        // Every item costs `first` (more than 0: the batch is not inline) and no sum overflows:
        // after `k` items the work done is `k * first`.
        Some(sum) if by_arithmetic && uniform && sum == total => {
            let mut start = 0usize;
            while start < n {
                let ceil = |ns: u64| usize::try_from(ns.div_ceil(first)).unwrap_or(usize::MAX);
                let end = start
                    .saturating_add(ceil(cuts.job))
                    .min(ceil(cuts.home_end))
                    .min(n)
                    .max(start + 1);
                cuts.end_job(end, end as u64 * first);
                start = end;
            }
        }
        _ => {
            let mut done = 0u64;
            for (i, cost) in costs.enumerate() {
                done = done.saturating_add(cost);
                if done - cuts.job_from < cuts.job && done < cuts.home_end && i + 1 < n {
                    continue;
                }
                cuts.end_job(i + 1, done);
            }
        }
    }
    let Cuts {
        mut home_starts,
        job_ends,
        ..
    } = cuts;
    // Zero-cost items can end the batch before the last shares were reached: empty homes.
    home_starts.resize(threads, job_ends.len());
    Plan {
        threads,
        job_ends,
        home_starts,
        wake: total >= WAKE_FROM_NS,
    }
}

/// [`plan`]'s jobs as they are cut, front to back: the home being cut, where its share of the
/// work ends and the next job's size, in estimated nanoseconds from the batch's start.
struct Cuts {
    threads: usize,
    total: u64,
    home: usize,
    home_end: u64,
    job: u64,
    job_from: u64,
    job_ends: SmallVec<[usize; 16]>,
    home_starts: SmallVec<[usize; 4]>,
}

impl Cuts {
    fn new(threads: usize, total: u64) -> Cuts {
        let mut cuts = Cuts {
            threads,
            total,
            home: 0,
            home_end: 0,
            job: 0,
            job_from: 0,
            job_ends: SmallVec::with_capacity(threads * 8),
            home_starts: smallvec![0],
        };
        cuts.home_end = cuts.share_end(0);
        cuts.job = next_job(cuts.home_end);
        cuts
    }

    /// Where home `h`'s share of the work ends (worked out once per home, not per item).
    fn share_end(&self, h: usize) -> u64 {
        let end = u128::from(self.total) * (h as u128 + 1) / self.threads as u128;
        u64::try_from(end).unwrap_or(u64::MAX)
    }

    /// Ends a job before item `end`, with `done` of the batch's work done by then.
    fn end_job(&mut self, end: usize, done: u64) {
        self.job_ends.push(end);
        self.job_from = done;
        while self.home + 1 < self.threads && done >= self.home_end {
            self.home += 1;
            self.home_end = self.share_end(self.home);
            self.home_starts.push(self.job_ends.len());
        }
        self.job = next_job(self.home_end.saturating_sub(done));
    }
}

/// The next job's size, given the work left in the current home: half of it, down to
/// [`JOB_NS`].
fn next_job(left: u64) -> u64 {
    if left < 2 * JOB_NS {
        left
    } else {
        (left / 2).max(JOB_NS)
    }
}

/// How the engine runs a batch, as [`batch_schedule`] predicts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchSchedule {
    /// Threads taking part, the calling thread included (1: the batch runs on the calling thread
    /// alone).
    pub threads: usize,
    /// Jobs the batch is cut into.
    pub jobs: usize,
    /// The batch's estimated work, in nanoseconds of one core.
    pub estimated_ns: u64,
    /// Whether the batch wakes parked helpers; a smaller shared batch uses only helpers still
    /// awake from a recent one.
    pub wakes_helpers: bool,
}

/// How an engine of `worker_threads` runs a batch of `items` items of `work` over `item_bytes`
/// bytes each: the plan its batch calls make, without running anything. For tools that choose
/// batch sizes (`keyplane-bench --recommend`): a batch too small to pay for another thread runs
/// on the calling thread alone, however many threads the engine has.
pub fn batch_schedule(
    work: ItemWork,
    item_bytes: usize,
    items: usize,
    worker_threads: usize,
) -> BatchSchedule {
    let cost = work.cost_ns(item_bytes);
    let plan = plan(std::iter::repeat_n(cost, items), worker_threads.max(1));
    BatchSchedule {
        threads: plan.threads,
        jobs: plan.job_ends.len(),
        estimated_ns: cost.saturating_mul(items as u64),
        wakes_helpers: plan.wake,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job_homes::ClaimWords;

    #[test]
    fn the_public_schedule_is_the_plan() {
        // 32 × 64 B encrypts run inline; 1000 use both threads of a 2-thread engine, in jobs.
        let small = batch_schedule(ItemWork::Aead, 64, 32, 2);
        assert_eq!(
            (small.threads, small.jobs, small.wakes_helpers),
            (1, 1, false)
        );
        let large = batch_schedule(ItemWork::Aead, 64, 1000, 2);
        let cost = ItemWork::Aead.cost_ns(64);
        let p = plan(std::iter::repeat_n(cost, 1000), 2);
        assert_eq!(large.threads, 2);
        assert_eq!(large.jobs, p.job_ends.len());
        assert_eq!(large.estimated_ns, 1000 * cost);
        assert!(large.wakes_helpers);
        // No items, no threads to spare: one thread, one (empty) job.
        assert_eq!(batch_schedule(ItemWork::Mac, 64, 0, 4).threads, 1);
        assert_eq!(batch_schedule(ItemWork::Asymmetric, 0, 64, 0).threads, 1);
    }

    #[test]
    fn small_batches_run_on_the_calling_thread() {
        // 32 × 64 B encrypts, 3 × 16 KiB, one large item: under the inline bound whatever the
        // pool, or one item.
        for (n, cost) in [(32, 263), (3, 3_500), (1, 1_000_000)] {
            let p = plan(std::iter::repeat_n(cost, n), 16);
            assert_eq!(
                p,
                Plan {
                    threads: 1,
                    job_ends: smallvec![n],
                    home_starts: smallvec![0],
                    wake: false,
                },
                "{n} × {cost} ns"
            );
        }
        let p = plan(std::iter::repeat_n(100_000, 100), 1);
        assert_eq!(p.threads, 1);
    }

    #[test]
    fn only_batches_worth_a_wake_up_wake_parked_helpers() {
        // 64 × 64 B (~17 µs): shared with helpers already awake, never worth waking one.
        let p = plan(std::iter::repeat_n(263, 64), 16);
        assert_eq!((p.threads, p.wake), (2, false));
        // 8 × 16 KiB (~28 µs) likewise; 256 × 64 B (~67 µs) wakes them.
        assert!(!plan(std::iter::repeat_n(3_500, 8), 16).wake);
        let p = plan(std::iter::repeat_n(263, 256), 16);
        assert_eq!((p.threads, p.wake), (8, true));
    }

    #[test]
    fn threads_follow_the_work_and_jobs_cover_the_batch_in_order() {
        // 1000 × 64 B (~263 µs): every thread of a 2-pool and of a 16-pool.
        let p = plan(std::iter::repeat_n(263, 1000), 2);
        assert_eq!(p.threads, 2);
        let p16 = plan(std::iter::repeat_n(263, 1000), 16);
        assert_eq!(p16.threads, 16);
        for p in [p, p16] {
            assert_eq!(p.job_ends.last(), Some(&1000));
            assert!(p.job_ends.windows(2).all(|w| w[0] < w[1]));
            assert!(p.job_ends.len() >= p.threads);
        }
        // 64 signatures (~1.3 ms) on 16 threads: a home of 4 each, as jobs of 2, 1 and 1.
        let p = plan(std::iter::repeat_n(20_000, 64), 16);
        assert_eq!(p.threads, 16);
        assert_eq!(
            p.home_starts.to_vec(),
            (0..16).map(|h| 3 * h).collect::<Vec<_>>()
        );
        let sizes: Vec<usize> = job_sizes(&p);
        assert!(sizes.chunks(3).all(|home| home == [2, 1, 1]), "{sizes:?}");
    }

    fn job_sizes(p: &Plan) -> Vec<usize> {
        std::iter::once(0)
            .chain(p.job_ends.iter().copied())
            .collect::<Vec<_>>()
            .windows(2)
            .map(|w| w[1] - w[0])
            .collect()
    }

    #[test]
    fn homes_are_equal_shares_in_halving_jobs() {
        // 1000 MACs of 64 B on two threads: 500 items each; jobs of 250, 125, 62, ... down to
        // about JOB_NS, so the last job a thread can wait for is a few microseconds.
        let cost = ItemWork::Mac.cost_ns(64);
        let p = plan(std::iter::repeat_n(cost, 1000), 2);
        assert_eq!(p.home_starts.len(), 2);
        let sizes = job_sizes(&p);
        let home = |h: usize| {
            let end = p.home_starts.get(h + 1).copied().unwrap_or(sizes.len());
            &sizes[p.home_starts[h]..end]
        };
        for h in 0..2 {
            let jobs = home(h);
            assert_eq!(jobs.iter().sum::<usize>(), 500, "{sizes:?}");
            assert_eq!(jobs[0], 250, "{sizes:?}");
            assert!(jobs.windows(2).all(|w| w[1] <= w[0]), "{sizes:?}");
            let last = *jobs.last().unwrap() as u64 * cost;
            assert!(last < 2 * JOB_NS, "the last job is {last} ns: {sizes:?}");
            assert!(jobs.len() <= 10, "{sizes:?}");
        }
    }

    #[test]
    fn every_plan_covers_its_batch_with_one_home_per_thread() {
        let shapes: Vec<Vec<u64>> = vec![
            vec![263; 256],
            vec![3_500; 32],
            vec![0; 100],
            (0..300)
                .map(|i| if i % 7 == 0 { 90_000 } else { 300 })
                .collect(),
            std::iter::repeat_n(0, 50)
                .chain([1_000_000])
                .chain(std::iter::repeat_n(0, 50))
                .collect(),
            vec![1_000_000, 1, 1, 1],
            vec![u64::MAX / 2; 5],
        ];
        for costs in &shapes {
            for pool in [1, 2, 3, 4, 16] {
                let p = plan(costs.iter().copied(), pool);
                let n = costs.len();
                assert_eq!(p.job_ends.last(), Some(&n));
                assert!(p.job_ends.windows(2).all(|w| w[0] < w[1]), "{p:?}");
                assert_eq!(p.home_starts.len(), p.threads, "{p:?}");
                assert_eq!(p.home_starts[0], 0);
                assert!(p.home_starts.windows(2).all(|w| w[0] <= w[1]), "{p:?}");
                assert!(
                    p.home_starts.iter().all(|&s| s <= p.job_ends.len()),
                    "{p:?}"
                );
                // Every job claimed once, whichever thread starts.
                let mut words = ClaimWords::new(p.threads);
                let homes = words.homes(&p.home_starts, p.job_ends.len());
                let mut claimed: Vec<usize> = homes.claims_from(p.threads - 1).collect();
                claimed.sort_unstable();
                assert_eq!(claimed, (0..p.job_ends.len()).collect::<Vec<_>>());
            }
        }
    }

    #[test]
    fn equal_items_are_cut_by_arithmetic_as_a_pass_over_them_cuts_them() {
        let mut compared = 0;
        for cost in [
            1,
            7,
            263,
            399,
            2_499,
            2_500,
            3_500,
            20_000,
            1 << 40,
            u64::MAX / 3,
        ] {
            for n in (1..=70).chain([127, 128, 129, 255, 256, 257, 999, 1000, 1001, 4096]) {
                for pool in [1, 2, 3, 4, 5, 8, 16, 64] {
                    let costs = std::iter::repeat_n(cost, n);
                    let cut = plan_cut(costs.clone(), pool, true);
                    assert_eq!(
                        cut,
                        plan_cut(costs, pool, false),
                        "{n} × {cost} ns, pool {pool}"
                    );
                    compared += usize::from(cut.threads > 1);
                }
            }
        }
        // Most of those shapes are shared batches, whose jobs the arithmetic cut.
        assert!(compared > 1_000, "{compared}");
    }

    #[test]
    fn jobs_are_cut_by_cost_not_count() {
        // One large item then many small ones: the large one is a job of its own.
        let costs: Vec<u64> = std::iter::once(200_000)
            .chain(std::iter::repeat_n(250, 2000))
            .collect();
        let p = plan(costs.iter().copied(), 4);
        assert_eq!(p.job_ends[0], 1);
        assert_eq!(p.job_ends.last(), Some(&2001));
    }
}
