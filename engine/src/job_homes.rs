//! Jobs split into homes: each thread taking part in a parallel run (a data-plane batch, an
//! envelope's window of frames) has a run of consecutive jobs it claims first, then steals from
//! the homes after it. From one run to the next each thread then writes about the same outputs,
//! which stay in its core's cache, instead of pulling them line by line from the core that wrote
//! them last (two threads sharing one batch from one counter ran each item ~25% slower than one
//! thread alone).

use std::sync::atomic::{AtomicUsize, Ordering};

use crossbeam_utils::CachePadded;

/// The jobs of a batch split into one home per taking-part thread (consecutive jobs, in
/// order), each with a cursor on its own cache line: a thread claims the next job of a home with
/// one atomic add on that home's cursor, so every job is claimed once. Home `h` holds jobs
/// `start(h) .. start(h + 1)`.
pub(crate) struct Homes {
    jobs: usize,
    cursors: Vec<CachePadded<AtomicUsize>>,
}

impl Homes {
    /// `jobs` jobs in `threads` homes of (nearly) equal length.
    pub(crate) fn new(jobs: usize, threads: usize) -> Self {
        let threads = threads.max(1);
        let cursors = (0..threads)
            .map(|h| CachePadded::new(AtomicUsize::new(h * jobs / threads)))
            .collect();
        Homes { jobs, cursors }
    }

    /// Where home `h`'s jobs start (`h` up to the number of homes: the last is `jobs`).
    pub(crate) fn start(&self, h: usize) -> usize {
        h * self.jobs / self.cursors.len()
    }

    /// The jobs a thread of home `home` claims: its own home's, then each later home's (wrapping
    /// round) while jobs are left there. Each job index is yielded to exactly one thread.
    pub(crate) fn claims_from(&self, home: usize) -> impl Iterator<Item = usize> + '_ {
        let homes = self.cursors.len();
        (0..homes)
            .map(move |step| (home + step) % homes)
            .flat_map(move |h| {
                let end = self.start(h + 1);
                std::iter::from_fn(move || {
                    let k = self.cursors[h].fetch_add(1, Ordering::Relaxed);
                    (k < end).then_some(k)
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
                assert_eq!((homes.start(0), homes.start(threads)), (0, jobs));
                // A thread alone takes its own home's jobs first, in order, then the rest.
                let first: Vec<usize> = homes.claims_from(threads - 1).collect();
                let own = homes.start(threads - 1)..jobs;
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
}
