//! Jobs split into homes: each thread taking part in a parallel run (a data-plane batch, an
//! envelope's window of frames) has a run of consecutive jobs it claims first, then steals from
//! the homes after it. From one run to the next each thread then writes about the same outputs,
//! which stay in its core's cache, instead of pulling them line by line from the core that wrote
//! them last (two threads sharing one batch from one counter ran each item ~25% slower than one
//! thread alone).

use std::sync::atomic::{AtomicUsize, Ordering};

use crossbeam_utils::CachePadded;
use smallvec::SmallVec;

/// The jobs of a run split into one home per taking-part thread (consecutive jobs, in order),
/// each with a cursor on its own cache line: a thread claims the next job of a home with one
/// atomic add on that home's cursor, so every job is claimed once.
pub(crate) struct Homes {
    /// Inline for up to four threads: no allocation per run.
    homes: SmallVec<[CachePadded<Home>; 4]>,
}

/// One home: the next job to claim, and where the home's jobs end.
struct Home {
    next: AtomicUsize,
    end: usize,
}

impl Homes {
    /// `jobs` jobs in `threads` homes of (nearly) equal length.
    pub(crate) fn new(jobs: usize, threads: usize) -> Self {
        let threads = threads.max(1);
        Self::starting_at(
            &(0..threads).map(|h| h * jobs / threads).collect::<Vec<_>>(),
            jobs,
        )
    }

    /// `jobs` jobs in one home per entry of `starts`, home `h` from job `starts[h]` to the next
    /// home's start (the last to `jobs`). `starts` ascend from 0; a home may be empty. No
    /// entries is one home of every job.
    pub(crate) fn starting_at(starts: &[usize], jobs: usize) -> Self {
        let ends = starts.iter().skip(1).copied().chain(std::iter::once(jobs));
        let homes = std::iter::once(0)
            .chain(starts.iter().skip(1).copied())
            .zip(ends)
            .map(|(start, end)| {
                let end = end.min(jobs);
                CachePadded::new(Home {
                    next: AtomicUsize::new(start.min(end)),
                    end,
                })
            })
            .collect();
        Homes { homes }
    }

    /// Home `home`'s claim word (none past the last home), for a thread about to claim from it
    /// to ask for its line early.
    pub(crate) fn claim_word(&self, home: usize) -> Option<&AtomicUsize> {
        self.homes.get(home).map(|h| &h.next)
    }

    /// The jobs a thread of home `home` claims: its own home's, then each later home's (wrapping
    /// round) while jobs are left there. Each job index is yielded to exactly one thread.
    pub(crate) fn claims_from(&self, home: usize) -> impl Iterator<Item = usize> + '_ {
        let count = self.homes.len();
        (0..count)
            .map(move |step| &*self.homes[(home + step) % count])
            .flat_map(|h| {
                std::iter::from_fn(move || {
                    let k = h.next.fetch_add(1, Ordering::Relaxed);
                    (k < h.end).then_some(k)
                })
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_thread_starts_at_home_and_every_job_is_claimed_once() {
        for jobs in [0, 1, 5, 16, 17, 64] {
            for threads in [1, 2, 3, 8] {
                let homes = Homes::new(jobs, threads);
                // A thread alone takes its own home's jobs first, in order, then the rest.
                let first: Vec<usize> = homes.claims_from(threads - 1).collect();
                let own = (threads - 1) * jobs / threads..jobs;
                assert_eq!(first[..own.len()], own.clone().collect::<Vec<_>>()[..]);
                assert_eq!(first.len(), jobs, "{jobs} jobs, {threads} threads");
                assert_eq!(homes.claims_from(0).count(), 0, "nothing is claimed twice");
            }
        }
        // Threads claiming at once: every job exactly once between them.
        let homes = Homes::new(1000, 4);
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
        let homes = Homes::starting_at(&[0, 3, 3, 4], 6);
        assert_eq!(homes.claims_from(1).take(2).collect::<Vec<_>>(), vec![3, 4]);
        // Home 0's thread: its own, then what is left after it.
        assert_eq!(homes.claims_from(0).collect::<Vec<_>>(), vec![0, 1, 2, 5]);
        assert_eq!(homes.claims_from(3).count(), 0);
        // No starts: one home of every job; starts past the end: empty homes.
        assert_eq!(Homes::starting_at(&[], 3).claims_from(0).count(), 3);
        let past = Homes::starting_at(&[0, 9], 2);
        assert_eq!(past.claims_from(1).collect::<Vec<_>>(), vec![0, 1]);
    }
}
