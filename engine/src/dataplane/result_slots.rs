//! The result slots of a shared batch: the results vector's spare capacity, cut into one part per
//! job, each written by the thread that runs the job.
//!
//! The calling thread writes nothing into the slots, before or after: a placeholder it wrote
//! first took each helper's slot lines to the caller's core and back again. A job's part is a
//! [`JobSlots`], which counts what it holds and drops it if the batch never takes it (a panic in
//! another job, a job never run), so no result, and no secret in one, is ever leaked undropped.

#![allow(unsafe_code)] // reason: results written into and dropped from uninitialised slots.

use std::mem::MaybeUninit;

use super::item_outputs::SliceJobs;

/// A batch's result slots cut into jobs, as output buffers are ([`SliceJobs`]): the thread that
/// claims a job takes that job's slots ([`SliceJobs::job`]); the calling thread writes nothing
/// into them.
pub(crate) type SlotJobs<'s, 'e, O> = SliceJobs<'s, 'e, MaybeUninit<O>>;

/// One job's result slots and how many of them, from the first, hold a result.
pub(crate) struct JobSlots<'s, O> {
    slots: &'s mut [MaybeUninit<O>],
    written: usize,
}

impl<'s, O> JobSlots<'s, O> {
    /// A job's slots, none written yet; their cache lines are asked for with intent to write
    /// ([`prefetch_for_write`]).
    pub(crate) fn new(slots: &'s mut [MaybeUninit<O>]) -> Self {
        prefetch_for_write(slots);
        JobSlots { slots, written: 0 }
    }

    /// A finished job's slots, to drop its results (a batch that failed after the job ended).
    ///
    /// # Safety
    /// Every one of `slots` holds a result that nothing else owns or drops.
    pub(crate) unsafe fn finished(slots: &'s mut [MaybeUninit<O>]) -> Self {
        JobSlots {
            written: slots.len(),
            slots,
        }
    }

    /// Writes the next slot's result (a result past the last slot is dropped: the batch runner
    /// hands a job exactly one item per slot).
    pub(crate) fn push(&mut self, result: O) {
        if let Some(slot) = self.slots.get_mut(self.written) {
            slot.write(result);
            self.written += 1;
        }
    }

    /// Whether every slot holds a result.
    pub(crate) fn is_full(&self) -> bool {
        self.written == self.slots.len()
    }

    /// Leaves the results in their slots for the vector that owns the memory to take (with
    /// `set_len`, once every job's slots are full): they are no longer this job's to drop.
    pub(crate) fn hand_over(self) {
        std::mem::forget(self);
    }
}

impl<O> Drop for JobSlots<'_, O> {
    fn drop(&mut self) {
        for slot in &mut self.slots[..self.written] {
            // SAFETY: the first `written` slots were written by `push` and not handed over
            // (`hand_over` forgets `self`, so this never runs after it): each is dropped once.
            unsafe { slot.assume_init_drop() };
        }
    }
}

/// Asks for the cache lines of a job's result slots with intent to write, all at once, before
/// the job's first item. The calling thread read them last (they held an earlier batch's
/// results), so each first write by a helper waited for the line to be taken from the other
/// core; spread between items those waits filled the store buffer in the middle of the work
/// (2% of all samples at 256 MACs on two threads, on the helper alone).
fn prefetch_for_write<T>(slots: &[MaybeUninit<T>]) {
    super::prefetch::Lines::write(slots).ask(usize::MAX);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataplane::item_outputs::JobEnds;
    use std::sync::atomic::{AtomicUsize, Ordering};

    static DROPPED: AtomicUsize = AtomicUsize::new(0);

    struct Counted(#[allow(dead_code)] u64);
    impl Drop for Counted {
        fn drop(&mut self) {
            DROPPED.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// Jobs take their own slots; a finished job's results are dropped through
    /// `JobSlots::finished`, once each.
    #[test]
    fn jobs_take_their_own_slots_and_finished_ones_drop_their_results() {
        static GONE: AtomicUsize = AtomicUsize::new(0);
        struct Noted(#[allow(dead_code)] u64);
        impl Drop for Noted {
            fn drop(&mut self) {
                GONE.fetch_add(1, Ordering::SeqCst);
            }
        }
        let mut memory: Vec<Noted> = Vec::with_capacity(5);
        let ends = [2, 2, 5];
        let jobs = SlotJobs::new(
            &mut memory.spare_capacity_mut()[..5],
            JobEnds::checked(&ends, 5).unwrap(),
        );
        // SAFETY: each job is taken once here, and once more below only after its part is gone.
        let (first, empty, last) = unsafe { (jobs.job(0), jobs.job(1), jobs.job(2)) };
        assert_eq!((first.len(), empty.len(), last.len()), (2, 0, 3));
        let mut first = JobSlots::new(first);
        first.push(Noted(1));
        first.push(Noted(2));
        first.hand_over();
        let mut last = JobSlots::new(last);
        for i in 0..3 {
            last.push(Noted(3 + i));
        }
        last.hand_over();
        assert_eq!(GONE.load(Ordering::SeqCst), 0);
        // The batch failed: both finished jobs' results are dropped, each once.
        for k in [0, 2] {
            // SAFETY: no part of job `k` is alive; its slots hold results nothing else owns.
            drop(unsafe { JobSlots::finished(jobs.job(k)) });
        }
        assert_eq!(GONE.load(Ordering::SeqCst), 5);
    }

    #[test]
    fn written_results_are_dropped_once_unless_handed_over() {
        let mut memory: Vec<Counted> = Vec::with_capacity(4);
        let spare = &mut memory.spare_capacity_mut()[..4];
        let (first, second) = spare.split_at_mut(2);
        // A job that wrote one of its two results and was never taken drops that one.
        let mut partial = JobSlots::new(first);
        partial.push(Counted(1));
        assert!(!partial.is_full());
        drop(partial);
        assert_eq!(DROPPED.load(Ordering::SeqCst), 1);
        // A full job handed over drops nothing: the vector owns its results.
        let mut full = JobSlots::new(second);
        full.push(Counted(2));
        full.push(Counted(3));
        full.push(Counted(4)); // past the last slot: dropped at once, not written
        assert_eq!(DROPPED.load(Ordering::SeqCst), 2);
        assert!(full.is_full());
        full.hand_over();
        assert_eq!(DROPPED.load(Ordering::SeqCst), 2);
        // SAFETY: slots 2 and 3 hold the two handed-over results; 0 and 1 are dropped or
        // unwritten, so only the second half is taken, through a vector of its own.
        let kept: Vec<Counted> = memory.spare_capacity_mut()[2..4]
            .iter_mut()
            .map(|slot| unsafe { slot.assume_init_read() })
            .collect();
        drop(kept);
        assert_eq!(DROPPED.load(Ordering::SeqCst), 4);
    }
}
