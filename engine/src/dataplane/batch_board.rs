//! What the threads of a shared batch write while they run it, each in lines of its own that
//! outlive the batch: the homes' claim words ([`ClaimWords`]), each thread's record of the jobs
//! it finished, and one flag for a job that could not finish.
//!
//! The data plane's helper pool keeps one board for every batch it runs (a batch on rayon's pool,
//! when another holds the helpers, makes one of its own). So a helper's claim word and record
//! stay in its core's cache from one batch to the next, and the calling thread writes none of
//! them: in a slow spell of this machine, rewriting lines a helper wrote in the batch before was
//! 771 ns of a 10.5 µs batch of 64 MACs on the calling thread, and the helper's start another
//! 671 ns (docs/performance.md, "A two-thread batch of 64 MACs, step by step").
//!
//! Nobody reads a record while a batch succeeds: the calling thread learns that every job ran
//! from its own claims (it claims until every home is empty, so every job was claimed) and from
//! the flag and the pool's panic report (every claimed job then finished). Only a batch that fails
//! reads the records, to drop the results of the jobs that did finish.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

use crossbeam_utils::CachePadded;
use smallvec::SmallVec;

use crate::job_homes::{ClaimWords, Homes};

/// The board of one shared batch at a time: the claim words, one record per home, and the flag.
pub(crate) struct BatchBoard {
    words: ClaimWords,
    /// Home `h`'s record, written only by the thread working from home `h`.
    records: SmallVec<[CachePadded<Mutex<Record>>; 4]>,
    /// Set by a thread whose job ended with results missing (an engine bug): the batch fails.
    /// Written only then, so in a batch that succeeds every thread only reads it.
    short: CachePadded<AtomicBool>,
}

/// The jobs one thread finished in one run: their results are in their slots, which the batch
/// takes only if the whole batch succeeds, and otherwise drops through this list.
#[derive(Default)]
pub(crate) struct Record {
    run: u64,
    finished: SmallVec<[usize; 16]>,
}

impl BatchBoard {
    /// A board for batches of up to `homes` homes (more are added when a batch needs them).
    pub(crate) fn new(homes: usize) -> Self {
        BatchBoard {
            words: ClaimWords::new(homes),
            records: SmallVec::new(),
            short: CachePadded::new(AtomicBool::new(false)),
        }
    }

    /// Begins a run of `jobs` jobs in homes starting at `starts` (see [`ClaimWords::homes`]).
    pub(crate) fn begin(&mut self, starts: &[usize], jobs: usize) -> Run<'_> {
        // A flag that a failed or panicking run left set must not fail this one. Read first, so
        // that the line stays shared when it is clear (as it always is but after an engine bug).
        if *self.short.get_mut() {
            *self.short.get_mut() = false;
        }
        let homes = starts.len().max(1);
        if self.records.len() < homes {
            self.records
                .resize_with(homes, || CachePadded::new(Mutex::new(Record::default())));
        }
        let homes = self.words.homes(starts, jobs);
        let run = Run {
            homes,
            records: &self.records,
            short: &self.short,
        };
        if run.homes.run() == 1 {
            // The first run, or run numbers wrapped: no record may pass for this run's.
            for record in run.records {
                *lock(record) = Record::default();
            }
        }
        run
    }
}

/// One shared batch's view of the board.
pub(crate) struct Run<'b> {
    pub(crate) homes: Homes<'b>,
    records: &'b [CachePadded<Mutex<Record>>],
    short: &'b AtomicBool,
}

fn lock(record: &Mutex<Record>) -> MutexGuard<'_, Record> {
    record.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Run<'_> {
    /// Home `home`'s record for this run, emptied if it holds an earlier run's jobs; `None` past
    /// the board's records (one for each home of the largest run the board began).
    pub(crate) fn record(&self, home: usize) -> Option<MutexGuard<'_, Record>> {
        let mut record = lock(self.records.get(home)?);
        let run = self.homes.run();
        if record.run != run {
            record.run = run;
            record.finished.clear();
        }
        Some(record)
    }

    /// Notes that a job of this run ended with results missing.
    pub(crate) fn note_short(&self) {
        self.short.store(true, Ordering::Relaxed);
    }

    /// Whether a job of this run ended with results missing; clears the flag for the next run.
    /// Read after every thread left the run (their writes happened before).
    pub(crate) fn take_short(&self) -> bool {
        self.short.load(Ordering::Relaxed) && self.short.swap(false, Ordering::Relaxed)
    }

    /// Every job that some thread finished in this run, each once (to drop their results).
    /// Read after every thread left the run.
    pub(crate) fn finished(&self) -> Vec<usize> {
        let run = self.homes.run();
        let mut jobs = Vec::new();
        for record in self.records {
            let record = lock(record);
            if record.run == run {
                jobs.extend_from_slice(&record.finished);
            }
        }
        jobs
    }
}

impl Record {
    /// Notes that job `job` finished, its results in their slots.
    pub(crate) fn finish(&mut self, job: usize) {
        self.finished.push(job);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_hold_one_run_each_and_the_flag_clears_when_read() {
        let mut board = BatchBoard::new(2);
        let run = board.begin(&[0, 2, 4], 6);
        run.record(0).unwrap().finish(1);
        run.record(2).unwrap().finish(4);
        assert!(run.record(3).is_none(), "past the run's homes");
        let mut jobs = run.finished();
        jobs.sort_unstable();
        assert_eq!(jobs, vec![1, 4]);
        assert!(!run.take_short());
        run.note_short();
        assert!(run.take_short());
        assert!(!run.take_short(), "read once, for one run");
        // The next run sees none of them until its threads record their own.
        let run = board.begin(&[0, 2], 4);
        assert!(run.finished().is_empty());
        run.record(1).unwrap().finish(3);
        assert_eq!(run.finished(), vec![3]);
    }

    /// A run that fails before it reads the flag (its jobs were not all claimed, or a thread
    /// panicked) leaves it set; the next run on the board starts with it clear, or a batch
    /// whose every item ran would be refused.
    #[test]
    fn a_flag_left_set_does_not_fail_the_next_run() {
        let mut board = BatchBoard::new(1);
        board.begin(&[0], 2).note_short();
        let run = board.begin(&[0], 2);
        assert!(!run.take_short());
    }

    /// When the run numbers wrap, no record of a run long ago passes for the new run's (its
    /// jobs' slots would be dropped though never written).
    #[test]
    fn records_are_cleared_when_run_numbers_wrap() {
        let mut board = BatchBoard::new(1);
        let mut last = 0;
        // Run numbers from 1; a record left in run 2, then runs until the numbers come round.
        for _ in 0..2 {
            let run = board.begin(&[0], 1);
            last = run.homes.run();
        }
        assert_eq!(last, 2);
        board.begin(&[0], 1).record(0).unwrap().finish(0); // run 3
        board.words.skip_to_wrap();
        for expected in 1..=3 {
            let run = board.begin(&[0], 1);
            assert_eq!(run.homes.run(), expected);
            if expected == 3 {
                // Without the clear at run 1, run 3's old record would list job 0.
                assert!(run.finished().is_empty());
            }
        }
        let run = board.begin(&[0], 1);
        assert!(run.finished().is_empty());
    }
}
