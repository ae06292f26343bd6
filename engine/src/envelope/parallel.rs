//! Running a window of frames on several threads, the calling thread one of them.
//!
//! A window's frames are cut into jobs of consecutive frames. The calling thread works on the
//! first home of jobs (see [`crate::job_homes`]) and `threads - 1` tasks spawned on the pool work
//! on the others, each stealing what is left after its own. So a one-thread pool runs every
//! frame on the calling thread, with no hand-off at all (through `ThreadPool::install` the
//! caller slept while a worker ran the window, and woke at the end: two context switches per
//! window, 15% of a one-thread profile), and a larger pool starts work at once on the calling
//! thread while its workers wake.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};

use crate::error::{Error, Result};
use crate::job_homes::{even_starts, ClaimWords};

/// The least plaintext in one job: a claim is a compare-and-swap and an uncontended lock, ~50 ns,
/// against ~6 µs for 64 KiB of AES-GCM.
const JOB_BYTES: usize = 64 << 10;

/// Frames of `frame_length` bytes in one job.
pub(super) fn frames_per_job(frame_length: usize) -> usize {
    (JOB_BYTES / frame_length.max(1)).max(1)
}

/// Threads a window of `jobs` jobs runs on: the pool's size (rayon's global pool without
/// one), at most one per job.
fn threads_for(pool: Option<&rayon::ThreadPool>, jobs: usize) -> usize {
    let size = pool.map_or_else(rayon::current_num_threads, |p| p.current_num_threads());
    size.min(jobs).max(1)
}

/// Runs `f` on every job, on the calling thread and up to `pool size - 1` tasks of `pool`
/// (rayon's global pool without one). Every job runs unless one fails: then the jobs not yet
/// started are skipped, and of the jobs that failed the error of the earliest (in job order) is
/// returned.
pub(super) fn run_jobs<J: Send>(
    pool: Option<&rayon::ThreadPool>,
    jobs: Vec<J>,
    f: impl Fn(J) -> Result<()> + Sync,
) -> Result<()> {
    let threads = threads_for(pool, jobs.len());
    if threads == 1 {
        return jobs.into_iter().try_for_each(f);
    }
    let mut words = ClaimWords::new(threads);
    let homes = words.homes(&even_starts(jobs.len(), threads), jobs.len());
    let jobs: Vec<Mutex<Option<J>>> = jobs.into_iter().map(|j| Mutex::new(Some(j))).collect();
    let failed = AtomicBool::new(false);
    let first_error: Mutex<Option<(usize, Error)>> = Mutex::new(None);
    let work = |home: usize| {
        for k in homes.claims_from(home) {
            if failed.load(Ordering::Relaxed) {
                return;
            }
            let taken = jobs[k]
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take();
            let Some(job) = taken else {
                continue;
            };
            if let Err(e) = f(job) {
                failed.store(true, Ordering::Relaxed);
                let mut first = first_error.lock().unwrap_or_else(PoisonError::into_inner);
                if first.as_ref().is_none_or(|(at, _)| k < *at) {
                    *first = Some((k, e));
                }
            }
        }
    };
    match pool {
        Some(pool) => pool.in_place_scope(|scope| spawn_and_work(scope, threads, &work)),
        None => rayon::in_place_scope(|scope| spawn_and_work(scope, threads, &work)),
    }
    match first_error
        .into_inner()
        .unwrap_or_else(PoisonError::into_inner)
    {
        Some((_, e)) => Err(e),
        // Every thread claims until every home is empty, so this is only a guard: a window of
        // more jobs than a claim word counts would leave some unclaimed, never done twice.
        None if !homes.all_claimed() => Err(Error::Internal(
            "a window's frames were not all written".into(),
        )),
        None => Ok(()),
    }
}

/// Spawns `work` for homes `1..threads` on the scope's pool, and works on home 0 meanwhile.
fn spawn_and_work<'scope>(
    scope: &rayon::Scope<'scope>,
    threads: usize,
    work: &'scope (dyn Fn(usize) + Sync),
) {
    for home in 1..threads {
        scope.spawn(move |_| work(home));
    }
    work(0);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    fn pool(threads: usize) -> rayon::ThreadPool {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap()
    }

    #[test]
    fn every_job_runs_once_on_any_pool() {
        for threads in [1, 2, 4] {
            let pool = pool(threads);
            for n in [0, 1, 2, 3, 17, 100] {
                let runs: Vec<AtomicUsize> = (0..n).map(|_| AtomicUsize::new(0)).collect();
                run_jobs(Some(&pool), (0..n).collect(), |k: usize| {
                    runs[k].fetch_add(1, Ordering::Relaxed);
                    Ok(())
                })
                .unwrap();
                assert!(runs.iter().all(|r| r.load(Ordering::Relaxed) == 1));
            }
        }
    }

    #[test]
    fn a_one_thread_pool_runs_on_the_calling_thread() {
        let pool = pool(1);
        let me = std::thread::current().id();
        run_jobs(Some(&pool), vec![(); 8], |()| {
            assert_eq!(std::thread::current().id(), me);
            Ok(())
        })
        .unwrap();
    }

    #[test]
    fn the_first_failed_job_in_order_is_reported() {
        for threads in [1, 2, 4] {
            let pool = pool(threads);
            let e = run_jobs(Some(&pool), (0..64).collect(), |k: usize| {
                if k % 10 == 7 {
                    Err(Error::InvalidCiphertext(format!("job {k}")))
                } else {
                    Ok(())
                }
            })
            .unwrap_err();
            // On one thread job 7 fails first and stops the rest; on more, a later job may fail
            // first on another thread and stop job 7 from starting.
            let message = e.message().to_string();
            assert!(
                message.starts_with("job ") && message.ends_with('7'),
                "{message}"
            );
            if threads == 1 {
                assert_eq!(message, "job 7");
            }
        }
    }
}
