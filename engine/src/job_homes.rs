//! Jobs split into homes: each thread taking part in a parallel run (a data-plane batch, an
//! envelope's window of frames) has a run of consecutive jobs it claims first, then steals from
//! the homes after it. From one run to the next each thread then writes about the same outputs,
//! which stay in its core's cache, instead of pulling them line by line from the core that wrote
//! them last (two threads sharing one batch from one counter ran each item ~25% slower than one
//! thread alone).
//!
//! Each home's claim word is on its own cache line and outlives the run ([`ClaimWords`]): it
//! carries the number of the run that last claimed from it, so a new run does not reset it. The
//! data plane's helpers keep one set of words for every batch, so home 1's word stays in the
//! cache of the helper that claims from it, batch after batch; the calling thread, which plans
//! each batch, writes none of it. (Words made afresh on the calling thread's stack for every
//! batch were taken from the helper's core before the batch and back again after: in a slow
//! spell of the machine, building a batch's jobs and homes was 771 ns of a 10.5 µs batch.)

use std::sync::atomic::{AtomicU64, Ordering};

use crossbeam_utils::CachePadded;
use smallvec::SmallVec;

/// The bits of a claim word that hold the next job's index; the run's number is above them.
const INDEX_BITS: u32 = 32;
const INDEX_MASK: u64 = (1 << INDEX_BITS) - 1;
/// Run numbers wrap below this; the words are cleared when they do (see [`ClaimWords::homes`]).
const RUNS: u64 = 1 << (64 - INDEX_BITS);

/// One claim word per home, each on its own cache line, kept from one run to the next. A word is
/// the number of the run that last claimed from the home (high bits) and the next job to claim
/// there (low bits); a word from an earlier run means that no job of the home has been claimed
/// in this one.
pub(crate) struct ClaimWords {
    /// Inline for up to four threads: no allocation per run for words made per run.
    words: SmallVec<[CachePadded<AtomicU64>; 4]>,
    /// The current run's number, from 1 (a fresh word holds run 0).
    run: u64,
}

impl ClaimWords {
    /// Words for up to `homes` homes (more are added when a run needs them).
    pub(crate) fn new(homes: usize) -> Self {
        let mut words = SmallVec::new();
        words.resize_with(homes.max(1), || CachePadded::new(AtomicU64::new(0)));
        ClaimWords { words, run: 0 }
    }

    /// A new run of `jobs` jobs in one home per entry of `starts`, home `h` from job `starts[h]`
    /// to the next home's start (the last to `jobs`). `starts` ascend from 0 (the first home
    /// starts at job 0 whatever its entry says); a home may be empty; no entries is one home of
    /// every job. Whatever `starts` hold, the homes never overlap (a start before the home
    /// before ends is moved up to that end), so no job is claimed twice, and together they hold
    /// every job. Taking `&mut self` makes it the only run on these words until it ends.
    pub(crate) fn homes(&mut self, starts: &[usize], jobs: usize) -> Homes<'_> {
        let count = starts.len().max(1);
        if self.words.len() < count {
            self.words
                .resize_with(count, || CachePadded::new(AtomicU64::new(0)));
        }
        self.run += 1;
        if self.run == RUNS {
            // A word left by the run 2^32 runs ago must not pass for this run's: start again
            // from words that name no run.
            for word in &mut self.words {
                *word.get_mut() = 0;
            }
            self.run = 1;
        }
        // A job past what a word's index holds (2^32 jobs) could not be claimed: the run is
        // then not complete, and never reports every job claimed.
        let complete = u64::try_from(jobs).is_ok_and(|jobs| jobs <= INDEX_MASK);
        let index = |job: usize| u64::try_from(job).unwrap_or(INDEX_MASK).min(INDEX_MASK);
        let all = index(jobs);
        let mut from = 0;
        let bounds = (0..count)
            .map(|h| {
                let start = if h == 0 {
                    0
                } else {
                    index(starts[h]).clamp(from, all)
                };
                let end = starts
                    .get(h + 1)
                    .map_or(all, |&next| index(next).clamp(start, all));
                from = end;
                (start, end)
            })
            .collect();
        Homes {
            words: &self.words[..count],
            run: self.run,
            bounds,
            complete,
        }
    }
}

#[cfg(test)]
impl ClaimWords {
    /// Makes the next run the one whose number wraps.
    pub(crate) fn skip_to_wrap(&mut self) {
        self.run = RUNS - 1;
    }
}

/// The jobs of one run split into homes, each claimed through its word in [`ClaimWords`]: a
/// thread claims the next job of a home with one compare-and-swap on that home's word, so every
/// job is claimed once.
pub(crate) struct Homes<'w> {
    words: &'w [CachePadded<AtomicU64>],
    run: u64,
    /// Each home's first job and end, inline for up to eight homes: written once by the
    /// thread that plans the run, only read by the others.
    bounds: SmallVec<[(u64, u64); 8]>,
    /// Whether every job's index fits a claim word.
    complete: bool,
}

impl Homes<'_> {
    /// The run's number: different from every other run on the same words since they were
    /// last cleared.
    pub(crate) fn run(&self) -> u64 {
        self.run
    }

    /// The next job to claim in a home that starts at `start`, by its word `seen`: a word of
    /// an earlier run means that none of the home's jobs has been claimed in this one.
    fn next_job(&self, seen: u64, start: u64) -> u64 {
        if seen >> INDEX_BITS == self.run {
            seen & INDEX_MASK
        } else {
            start
        }
    }

    /// Claims home `h`'s next job, if it has one left in this run.
    fn claim(&self, h: usize) -> Option<usize> {
        let (start, end) = self.bounds[h];
        let word = &self.words[h];
        let mut seen = word.load(Ordering::Relaxed);
        loop {
            let next = self.next_job(seen, start);
            if next >= end {
                return None;
            }
            let claimed = (self.run << INDEX_BITS) | (next + 1);
            // Relaxed: the claim only has to be unique (one order of changes per word, and a
            // compare-and-swap reads its latest value). What a job holds is published apart:
            // to a helper by the post it loaded (`SeqCst`) or rayon's spawn, and back by the
            // helper's count-out (`SeqCst`) or rayon's join; an envelope job by its own lock.
            match word.compare_exchange_weak(seen, claimed, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => return usize::try_from(next).ok(),
                Err(now) => seen = now,
            }
        }
    }

    /// Whether every job of the run has been claimed: every home's word says so, or the home
    /// is empty.
    pub(crate) fn all_claimed(&self) -> bool {
        self.complete
            && self
                .bounds
                .iter()
                .zip(self.words)
                .all(|(&(start, end), word)| {
                    self.next_job(word.load(Ordering::Relaxed), start) >= end
                })
    }

    /// The jobs a thread of home `home` claims: its own home's, then each later home's (wrapping
    /// round) while jobs are left there. Each job index is yielded to exactly one thread.
    pub(crate) fn claims_from(&self, home: usize) -> impl Iterator<Item = usize> + '_ {
        let count = self.bounds.len();
        (0..count)
            .map(move |step| (home + step) % count)
            .flat_map(move |h| std::iter::from_fn(move || self.claim(h)))
    }
}

/// The starts of `threads` homes of (nearly) equal length over `jobs` jobs.
pub(crate) fn even_starts(jobs: usize, threads: usize) -> SmallVec<[usize; 8]> {
    let threads = threads.max(1);
    (0..threads).map(|h| h * jobs / threads).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_thread_starts_at_home_and_every_job_is_claimed_once() {
        for jobs in [0, 1, 5, 16, 17, 64] {
            for threads in [1, 2, 3, 8] {
                let mut words = ClaimWords::new(threads);
                let homes = words.homes(&even_starts(jobs, threads), jobs);
                // A thread alone takes its own home's jobs first, in order, then the rest.
                let first: Vec<usize> = homes.claims_from(threads - 1).collect();
                let own = (threads - 1) * jobs / threads..jobs;
                assert_eq!(first[..own.len()], own.clone().collect::<Vec<_>>()[..]);
                assert_eq!(first.len(), jobs, "{jobs} jobs, {threads} threads");
                assert_eq!(homes.claims_from(0).count(), 0, "nothing is claimed twice");
            }
        }
        // Threads claiming at once: every job exactly once between them.
        let mut words = ClaimWords::new(4);
        let homes = words.homes(&even_starts(1000, 4), 1000);
        let claimed: Vec<Vec<usize>> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..4)
                .map(|home| {
                    let homes = &homes;
                    s.spawn(move || homes.claims_from(home).collect::<Vec<_>>())
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let mut all: Vec<usize> = claimed.concat();
        all.sort_unstable();
        assert_eq!(all, (0..1000).collect::<Vec<_>>());
    }

    #[test]
    fn homes_of_any_length_empty_ones_included() {
        // Homes of 3, 0, 1 and 2 jobs: home 1 is empty, so its thread starts on home 2's.
        let mut words = ClaimWords::new(4);
        let homes = words.homes(&[0, 3, 3, 4], 6);
        assert_eq!(homes.claims_from(1).take(2).collect::<Vec<_>>(), vec![3, 4]);
        // Home 0's thread: its own, then what is left after it.
        assert_eq!(homes.claims_from(0).collect::<Vec<_>>(), vec![0, 1, 2, 5]);
        assert_eq!(homes.claims_from(3).count(), 0);
        // No starts: one home of every job; starts past the end: empty homes.
        assert_eq!(ClaimWords::new(1).homes(&[], 3).claims_from(0).count(), 3);
        let mut words = ClaimWords::new(1);
        let past = words.homes(&[0, 9], 2);
        assert_eq!(past.claims_from(1).collect::<Vec<_>>(), vec![0, 1]);
    }

    /// Starts that do not ascend still make homes that never overlap: every job is claimed
    /// once (a job claimed twice would be run by two threads at once).
    #[test]
    fn homes_never_overlap_whatever_the_starts() {
        for starts in [vec![0, 5, 3], vec![4, 2, 7, 1], vec![0, 9, 9, 2], vec![3]] {
            let mut words = ClaimWords::new(starts.len());
            let homes = words.homes(&starts, 8);
            assert!(!homes.all_claimed());
            let mut claimed: Vec<usize> = (0..starts.len())
                .flat_map(|h| homes.claims_from(h).collect::<Vec<_>>())
                .collect();
            assert!(homes.all_claimed(), "{starts:?}");
            claimed.sort_unstable();
            assert_eq!(claimed, (0..8).collect::<Vec<_>>(), "{starts:?}");
        }
    }

    /// Words kept from one run to the next are never reset, yet each run claims every one of
    /// its jobs once: a word left by an earlier run counts as unclaimed.
    #[test]
    fn kept_words_serve_run_after_run() {
        let mut words = ClaimWords::new(2);
        // A run left half done (a thread claimed two of home 1's jobs and stopped) ...
        let first = words.homes(&[0, 4], 8);
        assert_eq!(first.claims_from(1).take(2).collect::<Vec<_>>(), vec![4, 5]);
        // ... and runs of other shapes after it, more homes than words among them.
        for (starts, jobs) in [(vec![0, 1], 3), (vec![0, 2, 2], 5), (vec![0, 4], 8)] {
            let homes = words.homes(&starts, jobs);
            let last = starts.len() - 1;
            let mut claimed: Vec<usize> = homes.claims_from(last).collect();
            assert_eq!(
                claimed[0],
                starts[last].min(jobs.saturating_sub(1)),
                "own home first"
            );
            claimed.sort_unstable();
            assert_eq!(claimed, (0..jobs).collect::<Vec<_>>(), "{starts:?}");
            assert_eq!(homes.claims_from(0).count(), 0);
        }
    }

    /// When run numbers wrap, the words are cleared: a word left by the run whose number comes
    /// round again does not pass for the new run's.
    #[test]
    fn a_run_number_that_comes_round_again_does_not_reuse_old_claims() {
        let mut words = ClaimWords::new(1);
        let run_one = words.homes(&[0], 5);
        assert_eq!(run_one.claims_from(0).take(3).count(), 3);
        assert_eq!(words.run, 1);
        words.run = RUNS - 1;
        let homes = words.homes(&[0], 5);
        assert_eq!(homes.run, 1, "the number wrapped");
        let homes_claims: Vec<usize> = homes.claims_from(0).collect();
        assert_eq!(homes_claims, vec![0, 1, 2, 3, 4]);
    }
}
