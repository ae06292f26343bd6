//! A batch shared by the calling thread and helpers, in which each thread writes only memory it
//! owns until it hands its results over.
//!
//! The calling thread plans the batch ([`super::batch_plan::plan`]) and posts it; it writes
//! nothing a helper wrote in the batch before. Each thread then:
//! - claims jobs through the pool's claim words ([`super::batch_board`]), its own home's first;
//! - takes a claimed job's items, output buffers and result slots itself, from the batch's
//!   buffers cut at the plan's job ends ([`Outputs::job`],
//!   [`super::item_outputs::SliceJobs::job`]);
//! - writes the job's results into the slots, and notes the job in its own record.
//!
//! Before, the calling thread built one locked job per part of the batch, each of which the
//! helper that ran it rewrote (taken, then done with its results), and the homes and an arrival
//! count, which the helper claimed from and bumped. So every batch began with the calling thread
//! taking those lines back from the helper's core, and the helper then fetched them again: in a
//! slow spell of this machine, 771 ns to build the jobs and 671 ns for the helper to start, of a
//! 10.5 µs batch of 64 MACs (docs/performance.md).
//!
//! A batch succeeds when every home was claimed empty, no job ended short and no thread
//! panicked; the calling thread then takes every result in place. Otherwise the results of the
//! jobs that did finish are dropped, found through the threads' records, and the batch answers
//! an error (or raises the panic again): no result, and no secret in one, is left undropped.

#![allow(unsafe_code)] // reason: each thread takes the parts of the jobs it claimed; one `set_len`.

use std::marker::PhantomData;
use std::sync::Arc;

use smallvec::{smallvec, SmallVec};

use super::batch_board::{BatchBoard, Run};
use super::batch_plan::Plan;
use super::chunk::ChunkContext;
use super::item_outputs::{ItemOutput, JobEnds, Outputs};
use super::keyring::Keyring;
use super::plane::DataPlane;
use super::prefetch::Lines;
use super::result_slots::{JobSlots, SlotJobs};
use super::spin_pool::WARM_RANGES;
use super::tally::{ItemOutcome, KeyTally};
use super::written::not_run;
use crate::access::Caller;

/// What a shared batch runs each item with.
pub(super) struct Scene<'a> {
    pub(super) keyring: &'a Keyring,
    pub(super) caller: &'a Caller,
    pub(super) tally: &'a KeyTally,
    /// Read on the calling thread: the pool's threads do not carry it.
    pub(super) request_id: Option<Arc<str>>,
}

impl DataPlane {
    /// Runs `f` over `items` and their `outputs` (as many) as `plan` says, cut into jobs at
    /// `ends` (the plan's), on the calling thread and the pool's helpers (waking parked ones
    /// with `wake`), or rayon's pool while another batch holds the helpers. The results come in
    /// item order. If the batch fails (or panics), every output buffer is cleared.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn run_shared<I, B, P, O>(
        &self,
        scene: &Scene<'_>,
        items: &[I],
        outputs: P,
        plan: &Plan,
        ends: JobEnds<'_>,
        wake: bool,
        f: &(impl Fn(&mut ChunkContext<'_>, &I, &mut B) -> O + Sync),
    ) -> Vec<O>
    where
        I: Sync,
        B: Send + ItemOutput,
        P: Outputs<B>,
        O: Send + ItemOutcome,
    {
        let n = items.len();
        if ends.len() != n || outputs.len() != n {
            // Jobs that do not cover exactly these items: nothing runs (the plan's always do).
            outputs.for_each(|out| out.clear());
            return (0..n).map(|_| O::refused(not_run())).collect();
        }
        // The slots are the results vector's own capacity ([`super::result_slots`]): the calling
        // thread makes no pass over them, before or after.
        let mut slots: Vec<O> = Vec::with_capacity(n);
        let succeeded = {
            let slot_jobs = SlotJobs::new(&mut slots.spare_capacity_mut()[..n], ends);
            let output_jobs = outputs.into_jobs(ends);
            // The pool's board if this batch holds it, else one of its own for rayon's pool.
            let (mut held, mut own_board) = (self.helpers.hold(), None);
            let (board, helpers) = match &mut held {
                Some(held) => {
                    let (board, helpers) = held.parts();
                    (board, Some(helpers))
                }
                None => (own_board.insert(BatchBoard::new(plan.threads)), None),
            };
            let run = board.begin(&plan.home_starts, ends.count());
            // Drops the finished jobs' results and clears every output buffer unless the batch
            // takes them, on every way out: an error below, or a panic raised again by the pool.
            let mut unfinished = Unfinished::<O, B, P> {
                run: &run,
                slots: &slot_jobs,
                outputs: &output_jobs,
                jobs: ends.count(),
                armed: true,
                buffers: PhantomData,
            };
            let work = |home: usize| {
                let Some(mut record) = run.record(home) else {
                    return;
                };
                let mut ctx = None;
                for k in run.homes.claims_from(home) {
                    // SAFETY: `claims_from` yields job `k` to this thread alone (each job is
                    // claimed once), so these are the only parts of job `k` taken while the
                    // batch runs (`Unfinished` takes parts again only once every thread left).
                    let (job_outputs, job_slots) =
                        unsafe { (P::job(&output_jobs, k), slot_jobs.job(k)) };
                    let job_items = items.get(ends.items(k)).unwrap_or_default();
                    let mut results = JobSlots::new(job_slots);
                    let ctx = ctx.get_or_insert_with(|| {
                        let Scene {
                            keyring,
                            caller,
                            tally,
                            request_id,
                        } = scene;
                        ChunkContext::new(self, keyring, caller, tally, request_id.clone())
                    });
                    let mut job_items = job_items.iter();
                    job_outputs.for_each(|out| {
                        if let Some(item) = job_items.next() {
                            results.push(f(ctx, item, out));
                        }
                    });
                    if results.is_full() {
                        record.finish(k);
                        results.hand_over();
                    } else {
                        // Dropped with `results`; the batch fails.
                        run.note_short();
                    }
                }
            };
            match helpers {
                Some(helpers) => {
                    // Helper `i` works from home `i + 1`, up to the plan's thread count.
                    let help = |helper: usize| {
                        if helper + 1 < plan.threads {
                            work(helper + 1);
                        }
                    };
                    // What a helper reads first, for it to ask for all at once when it sees the
                    // batch: its closures and what they read of this stack (the run, the cut
                    // buffers and slots, the job ends). It writes only its own lines.
                    let warm: SmallVec<[Lines; WARM_RANGES]> = smallvec![
                        Lines::read(&help),
                        Lines::read(&work),
                        Lines::read(&run),
                        Lines::read(&output_jobs),
                        Lines::read(&slot_jobs),
                        Lines::read(&plan.job_ends),
                    ];
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
            // Every thread has left `work`: each job was claimed (the calling thread claims
            // until every home is empty, which is checked again here, a read of words it just
            // read) and then finished, unless it ended short.
            let succeeded = run.homes.all_claimed() && !run.take_short();
            unfinished.armed = !succeeded;
            succeeded
        };
        if !succeeded {
            return (0..n).map(|_| O::refused(not_run())).collect();
        }
        // SAFETY: the first `n` slots are initialised and owned by `slots`. The jobs cut
        // `slots[..n]` into consecutive parts that cover it (`JobEnds` ascend to their length,
        // checked above to be `n`); every job was claimed, and its thread wrote each of its
        // slots once and handed them over without dropping them (none ended short, no thread
        // panicked). The writes happened before this read: every helper counted itself out of
        // the pool (`SpinPool` waits for `active` to be 0, `SeqCst`), or rayon's scope joined.
        unsafe { slots.set_len(n) };
        slots
    }
}

/// What a shared batch that does not take its results undoes (`armed`): the finished jobs'
/// results are dropped, and every output buffer is cleared, as a failed item's is (a job that
/// ran may have written plaintext into its rooms). Dropped only once every thread has left the
/// batch.
struct Unfinished<'u, 'b, 's, 'e, O, B: ItemOutput, P: Outputs<B> + 'e> {
    run: &'u Run<'b>,
    slots: &'u SlotJobs<'s, 'e, O>,
    outputs: &'u P::Jobs<'e>,
    jobs: usize,
    armed: bool,
    buffers: PhantomData<fn(&mut B)>,
}

impl<'e, O, B: ItemOutput, P: Outputs<B> + 'e> Drop for Unfinished<'_, '_, '_, 'e, O, B, P> {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        // Every thread has left the batch (the pool raises a panic again only once no helper is
        // inside its work; rayon's scope joins first), so no part of any job taken by a thread
        // is alive.
        for job in self.run.finished() {
            // SAFETY: no other part of job `job` is alive (above). It finished: its thread wrote
            // every slot and handed the results over, and each job is in one record once
            // (claimed once), so its slots are dropped once.
            drop(unsafe { JobSlots::finished(self.slots.job(job)) });
        }
        for job in 0..self.jobs {
            // SAFETY: no other part of job `job` is alive (above), and each is taken here once.
            unsafe { P::job(self.outputs, job) }.for_each(|out| out.clear());
        }
    }
}
