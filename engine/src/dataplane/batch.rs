//! Running data-plane items: one on the calling thread, or a batch cut into jobs of similar
//! estimated work ([`ItemCost`]) that the calling thread and up to `threads - 1` pool workers take
//! in turn, each with one [`ChunkContext`].
//!
//! How a batch is scheduled, and why:
//! - A batch whose estimated work is under [`INLINE_BELOW_NS`] runs on the calling thread alone:
//!   sharing it costs more than it could gain. One under [`WAKE_FROM_NS`] is shared only with
//!   helpers already awake (after a batch they stay awake a while, see [`super::spin_pool`]):
//!   waking a parked one is a futex call on the calling thread, and 64 × 64 B encrypts are ~17 µs
//!   of work, 8 × 16 KiB ~28 µs), unless it comes in a stream of batches (the last one under
//!   200 µs ago), whose helpers, once woken, stay awake for the rest.
//! - Otherwise one thread takes part per [`WORK_PER_THREAD_NS`] of work, up to the pool's size,
//!   and the calling thread is one of them: it works on its own batch instead of sleeping until
//!   the pool is done, so a batch never waits for a wake-up before work starts.
//! - Each taking-part thread has a home, a run of consecutive items worth an equal share of the
//!   batch's estimated cost (the calling thread the first), cut into contiguous jobs that halve
//!   down to [`JOB_NS`] ([`plan`]). A thread claims its home's jobs in order with one atomic add
//!   each, then what is still unclaimed in the homes after it (by then their small jobs), so
//!   that threads end together even when one woke late or ran slow. So each thread writes about the same outputs
//!   from batch to batch, and they stay in its core's cache. A helper that wakes after every job
//!   was claimed finds nothing and returns.
//! - The helpers are [`super::spin_pool`]'s threads, which stay awake for a while after a batch,
//!   so back-to-back batches start on every thread at once, and the calling thread waits only for
//!   helpers inside a job, never for one still waking. While another batch holds them, a batch
//!   runs on rayon's pool instead.
//! - Results come back in item order, whichever thread ran which job. A batch into byte buffers
//!   has its threads record 4 bytes an item, not a `Result` ([`super::written`]), because the
//!   calling thread reads the helpers' results across cores.

#![allow(unsafe_code)] // reason: one `set_len` once every job's result slots are written (`result_slots`).

use std::mem::MaybeUninit;
use std::sync::{Mutex, PoisonError};

use smallvec::{smallvec, SmallVec};

use super::chunk::ChunkContext;
pub(crate) use super::item_cost::ItemCost;
use super::item_cost::ItemWork;
use super::item_outputs::{ItemOutput, Outputs};
use super::keyring::Keyring;
use super::plane::DataPlane;
use super::prefetch::Lines;
use super::result_slots::JobSlots;
use super::spin_pool::WARM_RANGES;
use super::tally::{ItemOutcome, KeyTally};
use super::written::{not_run, Failures, Written, WrittenItems};
use crate::access::Caller;
use crate::error::{validation, Result};
use crate::job_homes::ClaimWords;

/// Batches estimated below this run on the calling thread alone: even a helper already awake
/// costs more than it gains (its chunk context, the claims, the wait for its last job).
const INLINE_BELOW_NS: u64 = 12_000;
/// Batches estimated below this run on helpers only if some are awake: waking a parked helper is
/// a futex call on the calling thread, microseconds it would rather spend on its own items.
const WAKE_FROM_NS: u64 = 40_000;
/// Work that pays for one more thread.
const WORK_PER_THREAD_NS: u64 = 8_000;
/// The least work in one job: a claim is an atomic add and an uncontended lock, ~50 ns.
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
/// about one small job of each other, whatever the batch's size, in a few claims per thread. (Jobs of one size, four per thread, left a thread
/// waiting up to a quarter of its share at the end: at 1,000 MACs on two threads, 1.71–1.83×.)
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

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl DataPlane {
    /// Runs one item on the calling thread with a fresh chunk context.
    pub(crate) fn run_one<T>(
        &self,
        caller: &Caller,
        f: impl FnOnce(&mut ChunkContext<'_>) -> T,
    ) -> T {
        // A single call's record names its keys from the request; nothing to count.
        static NO_TALLY: KeyTally = KeyTally::none();
        let keyring = self.keyring.load();
        let request_id = crate::call::request_id::current_request_id();
        let mut ctx = ChunkContext::new(self, &keyring, caller, &NO_TALLY, request_id);
        f(&mut ctx)
    }

    /// Runs `f` over the `items` that pass `check` (the others fail with its error), in order, spread over the pool when the batch is worth it (see the
    /// module's documentation); the keys the items use are counted into `tally`.
    pub(crate) fn run_batch<I, O>(
        &self,
        caller: &Caller,
        tally: &KeyTally,
        items: &[I],
        check: impl Fn(&I) -> Result<()> + Sync,
        f: impl Fn(&mut ChunkContext<'_>, &I) -> O + Sync + Send,
    ) -> Vec<O>
    where
        I: Sync + ItemCost,
        O: Send + ItemOutcome,
    {
        // A vector of `()` never allocates.
        let mut nothing = vec![(); items.len()];
        self.run_batch_into(
            caller,
            tally,
            items,
            nothing.as_mut_slice(),
            check,
            |ctx, item, ()| f(ctx, item),
        )
    }

    /// Runs `f` over the `items` that pass `check` and their output buffers `outputs[i]`, in
    /// order, spread over the pool
    /// when the batch is worth it; the keys the items use are counted into `tally`. Items without an
    /// output buffer fail with a validation error.
    pub(crate) fn run_batch_into<I, B, O>(
        &self,
        caller: &Caller,
        tally: &KeyTally,
        items: &[I],
        outputs: impl Outputs<B>,
        check: impl Fn(&I) -> Result<()> + Sync,
        f: impl Fn(&mut ChunkContext<'_>, &I, &mut B) -> O + Sync + Send,
    ) -> Vec<O>
    where
        I: Sync + ItemCost,
        B: Send + ItemOutput,
        O: Send + ItemOutcome,
    {
        let keyring = self.keyring.load();
        self.run_batch_into_on(&keyring, caller, tally, items, outputs, check, f)
    }

    /// [`Self::run_batch_into`] into byte buffers (the caller's, or the rooms of a kept
    /// [`super::BatchOutputs`]), with `f` answering the bytes it wrote; the items beyond the last
    /// buffer fail, and so does an item that answers more bytes than its buffer holds (an engine
    /// bug; [`super::BatchOutputs`] relies on every count fitting its room).
    pub(crate) fn run_batch_into_buffers<'o, I>(
        &self,
        caller: &Caller,
        tally: &KeyTally,
        items: &[I],
        outputs: impl Outputs<&'o mut [u8]>,
        check: impl Fn(&I) -> Result<()> + Sync,
        f: impl Fn(&mut ChunkContext<'_>, &I, &mut [u8]) -> Result<usize> + Sync + Send,
    ) -> WrittenItems
    where
        I: Sync + ItemCost,
    {
        let keyring = self.keyring.load();
        self.run_batch_into_buffers_on(&keyring, caller, tally, items, outputs, check, f)
    }

    /// As [`Self::run_batch_into_buffers`], on the key snapshot `keyring`, which the caller
    /// loaded (and checked something against, once for the batch) before.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn run_batch_into_buffers_on<'o, I>(
        &self,
        keyring: &Keyring,
        caller: &Caller,
        tally: &KeyTally,
        items: &[I],
        outputs: impl Outputs<&'o mut [u8]>,
        check: impl Fn(&I) -> Result<()> + Sync,
        f: impl Fn(&mut ChunkContext<'_>, &I, &mut [u8]) -> Result<usize> + Sync + Send,
    ) -> WrittenItems
    where
        I: Sync + ItemCost,
    {
        // Each item's 4-byte count, not its `Result` ([`super::written`]); the check runs inside
        // the item so that a refusal's error is recorded under the item's index.
        let failures = Failures::default();
        let first = items.as_ptr() as usize;
        let index = |item: &I| (std::ptr::from_ref(item) as usize - first) / size_of::<I>().max(1);
        let written = self.run_batch_into_on(
            keyring,
            caller,
            tally,
            items,
            outputs,
            |_| Ok(()),
            |ctx, item, out| {
                let room = out.len();
                let result = check(item).and_then(|()| f(ctx, item, out));
                let result = result.and_then(|written| {
                    if written <= room {
                        Ok(written)
                    } else {
                        Err(crate::error::Error::Internal(format!(
                            "an item wrote {written} bytes into a buffer of {room}"
                        )))
                    }
                });
                let written = Written::record(result, index(item), &failures);
                if !written.succeeded() {
                    out.clear();
                }
                written
            },
        );
        let mut results = failures.finish(written);
        // The items beyond the last output buffer.
        while results.len() < items.len() {
            results.push_failed(validation!("item {} has no output buffer", results.len()));
        }
        results
    }

    /// As [`Self::run_batch_into`], on the key snapshot `keyring`, which the caller loaded (and
    /// checked something against, once for the batch) before.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn run_batch_into_on<I, B, O>(
        &self,
        keyring: &Keyring,
        caller: &Caller,
        tally: &KeyTally,
        items: &[I],
        outputs: impl Outputs<B>,
        check: impl Fn(&I) -> Result<()> + Sync,
        f: impl Fn(&mut ChunkContext<'_>, &I, &mut B) -> O + Sync + Send,
    ) -> Vec<O>
    where
        I: Sync + ItemCost,
        B: Send + ItemOutput,
        O: Send + ItemOutcome,
    {
        // Each item is checked where it runs, so the checks spread over the threads too; a
        // refused item's output buffer is zeroed, as a failed item's is.
        let f = |ctx: &mut ChunkContext<'_>, item: &I, out: &mut B| {
            let result = match check(item) {
                Ok(()) => f(ctx, item, out),
                Err(e) => {
                    out.clear();
                    O::refused(e)
                }
            };
            ctx.tally.item_done(result.succeeded());
            result
        };
        // Read on the calling thread: the pool's threads do not carry it.
        let request_id = crate::call::request_id::current_request_id();
        let n = items.len().min(outputs.len());
        let (items, outputs) = (&items[..n], outputs.split_at(n).0);
        let plan = plan(items.iter().map(ItemCost::cost_ns), self.threads());
        // A small batch in a stream of them wakes the helpers too: they stay awake for the rest.
        let wake = plan.threads > 1 && (self.helpers.streaming() || plan.wake);
        // In a child of `fork` no helper or rayon worker exists: waiting for one would never end.
        if plan.threads == 1 || (!wake && !self.helpers.any_awake()) || self.helpers.in_a_copy() {
            let mut ctx = ChunkContext::new(self, keyring, caller, tally, request_id);
            let mut results = Vec::with_capacity(n);
            let mut items = items.iter();
            outputs.for_each(|out| {
                if let Some(item) = items.next() {
                    results.push(f(&mut ctx, item, out));
                }
            });
            return results;
        }
        // Each job's items, output buffers and result slots, taken by exactly one thread, which
        // writes each item's result into its slot: no vector per job, no concatenation after.
        // The slots are the results vector's own capacity ([`super::result_slots`]), so the
        // calling thread makes no pass over them, before or after.
        let mut slots: Vec<O> = Vec::with_capacity(n);
        let all_written = {
            // Inline up to 16 jobs (a batch of 1,000 MACs on two threads has 14): no allocation.
            let mut jobs: SmallVec<[_; 16]> = SmallVec::with_capacity(plan.job_ends.len());
            let (mut rest_items, mut rest_outputs) = (items, outputs);
            let mut rest_slots: &mut [MaybeUninit<O>] = &mut slots.spare_capacity_mut()[..n];
            let mut start = 0;
            for &end in &plan.job_ends {
                let (job_items, more_items) = rest_items.split_at(end - start);
                let (job_outputs, more_outputs) = rest_outputs.split_at(end - start);
                let (job_slots, more_slots) = rest_slots.split_at_mut(end - start);
                jobs.push(Mutex::new(Job::Ready(job_items, job_outputs, job_slots)));
                (rest_items, rest_outputs, rest_slots, start) =
                    (more_items, more_outputs, more_slots, end);
            }
            // The pool's claim words if this batch holds it, else words of its own for rayon's
            // pool (another batch holds the helpers).
            let (mut held, mut own_words) = (self.helpers.hold(), None);
            let (words, helpers) = match &mut held {
                Some(held) => (&mut *held.words, Some(&held.helpers)),
                None => (own_words.insert(ClaimWords::new(plan.threads)), None),
            };
            // Each taking-part thread has a home: a run of consecutive jobs, the calling thread
            // the first. It takes its home's jobs in order, then those left in the homes after
            // it. So from one batch to the next each thread writes mostly the same outputs and
            // result slots, which stay in its core's cache, instead of pulling them line by line
            // from the core that wrote them last (two threads sharing one batch ran each item
            // ~25% slower than one thread alone, while two callers with a batch each did not).
            let homes = words.homes(&plan.home_starts, jobs.len());
            let work = |home: usize| {
                let mut ctx = None;
                for k in homes.claims_from(home) {
                    let (job_items, job_outputs, job_slots) = {
                        let mut job = lock(&jobs[k]);
                        match std::mem::replace(&mut *job, Job::Taken) {
                            Job::Ready(items, outputs, slots) => (items, outputs, slots),
                            other => {
                                *job = other;
                                continue;
                            }
                        }
                    };
                    let mut results = JobSlots::new(job_slots);
                    let ctx = ctx.get_or_insert_with(|| {
                        ChunkContext::new(self, keyring, caller, tally, request_id.clone())
                    });
                    let mut job_items = job_items.iter();
                    job_outputs.for_each(|out| {
                        if let Some(item) = job_items.next() {
                            results.push(f(ctx, item, out));
                        }
                    });
                    // Back under the job's lock, which this thread took last: the batch takes
                    // the results from there, or drops them with the job.
                    *lock(&jobs[k]) = Job::Done(results);
                }
            };
            match helpers {
                Some(helpers) => {
                    // Helper `i` takes home `i + 1` first, up to the plan's thread count.
                    let help = |helper: usize| {
                        if helper + 1 < plan.threads {
                            work(helper + 1);
                        }
                    };
                    // What a helper touches first, for it to ask for all at once when it sees
                    // the batch: its closures (on this stack), and with one helper, which takes
                    // home 1, that home's jobs, which it writes. (Its claim word is the pool's,
                    // which it wrote last batch.)
                    let mut warm: SmallVec<[Lines; WARM_RANGES]> =
                        smallvec![Lines::read(&help), Lines::read(&work), Lines::read(&homes)];
                    if plan.threads == 2 {
                        let helper_jobs = &jobs[plan.home_starts[1].min(jobs.len())..];
                        warm.push(Lines::write(helper_jobs));
                    }
                    helpers.run(&help, || work(0), wake, &warm);
                }
                None => self.pool.in_place_scope(|scope| {
                    for home in 1..plan.threads {
                        let work = &work;
                        scope.spawn(move |_| work(home));
                    }
                    work(0);
                }),
            }
            drop(homes);
            drop(held);
            // Every job was taken and ran to its end (a panic would have been raised again
            // above, and the jobs' drop would have dropped every result written). A job not
            // done would be a scheduling bug: its results and every other job's are dropped
            // with the jobs, and the batch answers an error, never an unwritten slot.
            // Read without locking: every thread has left `work`, so the jobs are this thread's
            // alone (a lock per job was an atomic on each line the helper wrote last, in turn).
            let all_written = jobs.iter_mut().all(|job| {
                matches!(
                    job.get_mut().unwrap_or_else(PoisonError::into_inner),
                    Job::Done(results) if results.is_full()
                )
            });
            if all_written {
                for job in jobs {
                    if let Job::Done(results) =
                        job.into_inner().unwrap_or_else(PoisonError::into_inner)
                    {
                        results.hand_over();
                    }
                }
            }
            all_written
        };
        if !all_written {
            return (0..n).map(|_| O::refused(not_run())).collect();
        }
        // SAFETY: the first `n` slots are initialised and owned by `slots`. The jobs cut
        // `slots[..n]` into consecutive parts that cover it (the plan's job ends ascend to `n`);
        // every job ended full, each of its slots written once, and handed its results over
        // without dropping them. The writes happened before the check that read them: every
        // helper had counted itself out of the pool (`SpinPool::run` waits for `active` to be
        // 0, `SeqCst`) or rayon's scope had joined before `Mutex::get_mut` read the jobs.
        unsafe { slots.set_len(n) };
        slots
    }
}

/// A job of a shared batch: its items, output buffers and result slots until a thread takes
/// it, then its results once that thread is done.
enum Job<'a, I, P, O> {
    Ready(&'a [I], P, &'a mut [MaybeUninit<O>]),
    Taken,
    Done(JobSlots<'a, O>),
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

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

    /// A data plane of two threads (the caller and one helper), and the account's root.
    fn two_thread_plane() -> (DataPlane, Caller) {
        let scope = crate::key::identifier::ArnScope::new("eu-west-1", "111122223333").unwrap();
        let plane = DataPlane::new(
            scope,
            crate::locked_memory::LockPolicy::Warn,
            1 << 20,
            4096,
            2,
            None,
        )
        .unwrap();
        (plane, Caller::account_root("111122223333").unwrap())
    }

    /// Runs `f` over `items` into the 4-byte `buffers` on a two-thread plane, items refused by
    /// `check` failing with its error.
    fn into_four_byte_buffers(
        items: &[&[u8]],
        buffers: &mut [[u8; 4]],
        check: impl Fn(&&[u8]) -> Result<()> + Sync,
        f: impl Fn(&[u8], &mut [u8]) -> Result<usize> + Sync + Send,
    ) -> WrittenItems {
        let (plane, caller) = two_thread_plane();
        let mut outputs: Vec<&mut [u8]> = buffers.iter_mut().map(|b| &mut b[..]).collect();
        plane.run_batch_into_buffers(
            &caller,
            &KeyTally::inactive(),
            items,
            outputs.as_mut_slice(),
            check,
            |_, item, out| f(item, out),
        )
    }

    /// A count longer than the buffer an item was handed is refused where the item ran, and
    /// the buffer is zeroed: kept outputs make each range from the count, so no count may reach
    /// past its room. Inline (8 items) and shared between threads (4,000 items, in jobs).
    #[test]
    fn an_item_that_answers_more_than_its_buffer_fails_with_its_buffer_zeroed() {
        for n in [8usize, 4000] {
            let messages: Vec<Vec<u8>> = (0..n).map(|i| vec![0u8; 200 + i % 7]).collect();
            let items: Vec<&[u8]> = messages.iter().map(Vec::as_slice).collect();
            let mut buffers = vec![[0u8; 4]; n];
            let results = into_four_byte_buffers(
                &items,
                &mut buffers,
                |_| Ok(()),
                |item, out| {
                    out.fill(7);
                    Ok(if item.len() % 7 == 3 { 5 } else { 4 })
                },
            )
            .into_results();
            assert_eq!(results.len(), n);
            for (i, (result, buffer)) in results.iter().zip(&buffers).enumerate() {
                if messages[i].len() % 7 == 3 {
                    assert!(
                        matches!(result, Err(crate::error::Error::Internal(_))),
                        "{n}: item {i}: {result:?}"
                    );
                    assert_eq!(buffer, &[0; 4], "{n}: item {i}'s buffer is zeroed");
                } else {
                    assert_eq!(result.as_ref().ok(), Some(&4), "{n}: item {i}");
                    assert_eq!(buffer, &[7; 4], "{n}: item {i}");
                }
            }
        }
    }

    /// The threads of a shared batch record counts and keep errors aside ([`super::super::written`]):
    /// each item still gets its own error, refused by the check or failed in its run, and its
    /// own count, in item order.
    #[test]
    fn each_item_of_a_shared_batch_gets_its_own_count_or_error() {
        let n = 4000;
        let messages: Vec<Vec<u8>> = (0..n).map(|i| vec![0u8; 200 + i]).collect();
        let items: Vec<&[u8]> = messages.iter().map(Vec::as_slice).collect();
        let index = |item: &[u8]| item.len() - 200;
        let mut buffers = vec![[9u8; 4]; n];
        let results = into_four_byte_buffers(
            &items,
            &mut buffers,
            |item| match index(item) % 5 {
                1 => Err(validation!("refused {}", index(item))),
                _ => Ok(()),
            },
            |item, out| {
                out.fill(7);
                match index(item) % 5 {
                    2 => Err(crate::error::Error::NotFound(format!(
                        "failed {}",
                        index(item)
                    ))),
                    _ => Ok(index(item) % 4),
                }
            },
        );
        assert_eq!(results.len(), n);
        // Read in place, as the public calls' callers do.
        for (i, (result, buffer)) in results.iter().zip(&buffers).enumerate() {
            match i % 5 {
                1 => {
                    let e = result.unwrap_err();
                    assert_eq!(e.message(), format!("refused {i}"));
                    assert_eq!(buffer, &[0; 4], "item {i}'s buffer is zeroed");
                }
                2 => {
                    let e = result.unwrap_err();
                    assert!(matches!(e, crate::error::Error::NotFound(_)), "{e:?}");
                    assert_eq!(e.message(), format!("failed {i}"));
                    assert_eq!(buffer, &[0; 4], "item {i}'s buffer is zeroed");
                }
                _ => assert_eq!(result.ok(), Some(i % 4), "item {i}"),
            }
        }
    }

    /// A panic in one item of a shared batch drops every result the threads had written, so
    /// none (a secret in one included) is leaked undropped, and the pool runs the next batch.
    /// Retried until a batch ran on both threads, which a loaded machine may delay.
    #[test]
    fn a_panic_in_a_shared_batch_drops_every_result_written() {
        static MADE: AtomicUsize = AtomicUsize::new(0);
        static DROPPED: AtomicUsize = AtomicUsize::new(0);
        struct Counted;
        impl Drop for Counted {
            fn drop(&mut self) {
                DROPPED.fetch_add(1, Ordering::SeqCst);
            }
        }
        let (plane, caller) = two_thread_plane();
        let tally = KeyTally::inactive();
        let n = 4000;
        // The last item alone is 199 bytes long.
        let messages: Vec<Vec<u8>> = (0..n)
            .map(|i| vec![0u8; if i == n - 1 { 199 } else { 200 + i % 7 }])
            .collect();
        let items: Vec<&[u8]> = messages.iter().map(Vec::as_slice).collect();
        let mut shared = false;
        for _ in 0..50 {
            let threads = Mutex::new(std::collections::HashSet::new());
            let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                plane.run_batch(
                    &caller,
                    &tally,
                    &items,
                    |_| Ok(()),
                    |_, item| {
                        lock(&threads).insert(std::thread::current().id());
                        assert!(item.len() != 199, "the batch's last item panics");
                        MADE.fetch_add(1, Ordering::SeqCst);
                        Ok(Counted)
                    },
                )
            }));
            assert!(
                outcome.is_err(),
                "the panic is raised again on the calling thread"
            );
            let made = MADE.load(Ordering::SeqCst);
            assert!(made > 0);
            assert_eq!(
                DROPPED.load(Ordering::SeqCst),
                made,
                "every written result dropped"
            );
            let after = plane.run_batch(
                &caller,
                &tally,
                &items,
                |_| Ok(()),
                |_, item| Ok::<usize, crate::error::Error>(item.len()),
            );
            assert!(after
                .iter()
                .enumerate()
                .all(|(i, r)| r.as_ref().ok() == Some(&items[i].len())));
            if lock(&threads).len() > 1 {
                shared = true;
                break;
            }
        }
        assert!(shared, "no batch of 50 ran on both threads");
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
