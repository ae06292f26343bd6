//! The helper threads of batch calls, which stay awake for a while after each batch so that the
//! next one needs no wake-up.
//!
//! A batch of 256 × 64 B encrypts is ~70 µs of work. Through rayon's scope, the calling thread
//! waits at the end for every helper it spawned, and a helper asleep in a futex takes tens of
//! microseconds to run at all: the 16-core sweep showed such batches at 1.3–1.8× one thread. Here
//! the calling thread posts its batch's `work` (which claims jobs until none is left, see
//! [`super::shared_batch`]) and runs it too; helpers already spinning take jobs within a few
//! hundred nanoseconds, and the caller waits only for helpers that are inside `work`, never for
//! one that has not woken yet.
//!
//! The protocol that lets a helper call a closure on the caller's stack:
//! - the caller stores a pointer to it in `posted`, bumps `epoch` and wakes parked helpers;
//! - a helper that sees a new epoch counts itself in `active`, *then* loads `posted`, runs it if
//!   it is not null, and counts itself out;
//! - the caller, once its own `work` returns, stores null in `posted`, *then* waits for `active`
//!   to be 0 before it returns (and the closure goes out of scope).
//!
//! All four steps are `SeqCst`: a helper's count-in either precedes the caller's wait for zero
//! (so the caller waits for it) or follows the null store (so it loads null, or the pointer of a
//! later batch whose caller waits for it in turn). One batch holds the pool at a time
//! ([`SpinPool::hold`]), and with it the pool's [`BatchBoard`], whose lines stay in the cache of
//! the thread that writes them; a second caller meanwhile (and a copy of the
//! process after `fork`, whose helpers do not exist) is told so and runs its batch another way.
//! Helper `i` always works on the batch's home `i + 1` first (the calling thread's is home 0):
//! no arrival count for the calling thread to reset and each helper to bump.

#![allow(unsafe_code)] // reason: helpers call a closure on the caller's stack (protocol above).

use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError, TryLockError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_utils::CachePadded;

use super::batch_board::BatchBoard;
use super::prefetch::{Lines, PostedLines};
use crate::error::{Error, Result};

/// How long a helper stays awake for the next batch after its last one, before it parks.
const STAY_AWAKE: Duration = Duration::from_micros(200);
/// How long of that it spins without yielding its CPU.
const SPIN: Duration = Duration::from_micros(20);

/// A batch's work, as posted to the helpers: each calls it with its own index.
struct Posted<'a> {
    work: &'a (dyn Fn(usize) + Sync),
}

/// The pool's state, in three cache lines by who writes them: a helper spinning for the next
/// batch keeps re-reading `epoch`, so every other word the caller writes in that line (the
/// batch's claim on the pool, its end) took the line back from the helper's core, a
/// cross-core round trip each, on the caller's path at the start and end of every batch.
struct Shared {
    /// What the caller posts and waiting helpers poll: written once per batch.
    post: CachePadded<Post>,
    /// Helpers between their count-in and count-out of a batch: written by helpers, polled by
    /// the caller at the end of its batch.
    active: CachePadded<AtomicUsize>,
    /// Written by the caller (and by a helper that parks or panics), read by the caller.
    pool: CachePadded<PoolState>,
    lock: Mutex<()>,
    wake: Condvar,
    /// The board of the batch that holds the pool: holding it is holding the pool.
    board: Mutex<BatchBoard>,
}

struct Post {
    posted: AtomicPtr<Posted<'static>>,
    epoch: AtomicU64,
    shutdown: AtomicBool,
    /// Memory a helper reads and writes first in the batch's `work` (its closures, its home's
    /// claim word and jobs, on the caller's stack): a helper asks for all of it as soon as it
    /// sees the epoch, so that the lines cross from the caller's core together instead of one
    /// dependent miss after another.
    warm: PostedLines<WARM_RANGES>,
}

/// Ranges of memory a batch posts for its helpers to ask for ([`Post::warm`]).
pub(crate) const WARM_RANGES: usize = 6;
/// The most lines a helper asks for per range.
const WARM_LINES: usize = 16;

struct PoolState {
    /// Helpers parked (or about to park) on `wake`.
    sleepers: AtomicUsize,
    /// Whether a helper's `work` panicked during the current batch.
    panicked: AtomicBool,
}

fn lock(m: &Mutex<()>) -> MutexGuard<'_, ()> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Helper threads that run the work a batch posts (see the module's protocol).
pub(crate) struct SpinPool {
    shared: Arc<Shared>,
    /// When the pool was made, and when a batch last asked for helpers ([`SpinPool::streaming`]),
    /// in nanoseconds since then.
    born: Instant,
    last_ask: AtomicU64,
    helpers: Vec<JoinHandle<()>>,
    /// The process that started the helpers: a copy made by `fork` has none of them. Not the
    /// generation, which a snapshot restore also changes while the helpers still run.
    started_in: crate::fork::Birthplace,
}

impl SpinPool {
    /// `helpers` threads named `{name}-{i}`.
    pub(crate) fn new(helpers: usize, name: &str) -> Result<Self> {
        let shared = Arc::new(Shared {
            post: CachePadded::new(Post {
                posted: AtomicPtr::new(std::ptr::null_mut()),
                epoch: AtomicU64::new(0),
                shutdown: AtomicBool::new(false),
                warm: PostedLines::default(),
            }),
            active: CachePadded::new(AtomicUsize::new(0)),
            pool: CachePadded::new(PoolState {
                sleepers: AtomicUsize::new(0),
                panicked: AtomicBool::new(false),
            }),
            lock: Mutex::new(()),
            wake: Condvar::new(),
            board: Mutex::new(BatchBoard::new(helpers + 1)),
        });
        let mut pool = SpinPool {
            shared,
            born: Instant::now(),
            last_ask: AtomicU64::new(0),
            helpers: Vec::with_capacity(helpers),
            started_in: crate::fork::Birthplace::here(),
        };
        for i in 0..helpers {
            let shared = pool.shared.clone();
            let handle = std::thread::Builder::new()
                .name(format!("{name}-{i}"))
                .spawn(move || help(&shared, i))
                .map_err(|e| Error::Internal(format!("could not start a batch helper: {e}")))?;
            pool.helpers.push(handle);
        }
        Ok(pool)
    }

    /// Whether batches come in a stream: the last one that asked was under [`STAY_AWAKE`] ago.
    /// Then even a batch too small to pay for a wake-up on its own wakes parked helpers, which
    /// stay awake for the ones that follow. Notes this batch's ask.
    pub(crate) fn streaming(&self) -> bool {
        let now = u64::try_from(self.born.elapsed().as_nanos()).unwrap_or(u64::MAX);
        let last = self.last_ask.swap(now, SeqCst);
        last != 0 && now.saturating_sub(last) < STAY_AWAKE.as_nanos() as u64
    }

    /// Whether this is a copy of the process made by `fork` after the helpers started: they do
    /// not exist here (nor do rayon's workers), so a batch must run on the calling thread.
    pub(crate) fn in_a_copy(&self) -> bool {
        self.started_in.is_elsewhere()
    }

    /// Whether some helper is awake (not parked), so that a batch too small to wake one may still
    /// be shared. A hint: a helper may park or wake just after.
    pub(crate) fn any_awake(&self) -> bool {
        self.shared.pool.sleepers.load(SeqCst) < self.helpers.len()
    }

    /// Holds the pool for one batch, with its board; none when another batch holds it, there are
    /// no helpers, or this is a copy of the process after `fork`.
    pub(crate) fn hold(&self) -> Option<Held<'_>> {
        if self.helpers.is_empty() || self.started_in.is_elsewhere() {
            return None;
        }
        let board = match self.shared.board.try_lock() {
            Ok(board) => board,
            // A batch that panicked left the board with its claims and records: the next run's
            // number tells them apart.
            Err(TryLockError::Poisoned(poisoned)) => poisoned.into_inner(),
            Err(TryLockError::WouldBlock) => return None,
        };
        Some(Held {
            board,
            helpers: Helpers {
                shared: &self.shared,
            },
        })
    }
}

/// The pool, held by one batch ([`SpinPool::hold`]) until this is dropped: its board, for the
/// batch's homes and records, and its helpers, to run the batch on. The two are lent out
/// together ([`Held::parts`]), so the helpers cannot run a batch once the hold is let go.
pub(crate) struct Held<'p> {
    board: MutexGuard<'p, BatchBoard>,
    helpers: Helpers<'p>,
}

impl<'p> Held<'p> {
    /// The board and the helpers, for as long as the hold is kept.
    pub(crate) fn parts(&mut self) -> (&mut BatchBoard, &Helpers<'p>) {
        (&mut self.board, &self.helpers)
    }
}

/// The helpers of a held pool.
pub(crate) struct Helpers<'p> {
    shared: &'p Shared,
}

impl Helpers<'_> {
    /// Runs `work` on every helper awake, or woken (with `wake`), each with its index, while
    /// the calling thread runs `own`; returns once every helper that entered `work` has left
    /// it. The two divide the batch themselves (each claims jobs until none is left). A panic
    /// in either, on any thread, is raised again here once no helper is inside `work`.
    /// `warm` names the memory a helper reads and writes first in `work`, which it asks for as
    /// soon as it sees the batch (the first [`WARM_RANGES`]; a hint only).
    pub(crate) fn run(
        &self,
        work: &(dyn Fn(usize) + Sync),
        own: impl FnOnce(),
        wake: bool,
        warm: &[Lines],
    ) {
        let s = self.shared;
        let posted = Posted { work };
        // The lifetime is erased for the store only: the pointer is withdrawn, and every helper
        // that may have loaded it has left `work`, before this function returns.
        let ptr = (&posted as *const Posted<'_>)
            .cast_mut()
            .cast::<Posted<'static>>();
        s.post.warm.post(warm);
        s.post.posted.store(ptr, SeqCst);
        s.post.epoch.fetch_add(1, SeqCst);
        if wake && s.pool.sleepers.load(SeqCst) > 0 {
            let _guard = lock(&s.lock);
            s.wake.notify_all();
        }
        let outcome = catch_unwind(AssertUnwindSafe(own));
        s.post.posted.store(std::ptr::null_mut(), SeqCst);
        let mut spins = 0u32;
        while s.active.load(SeqCst) != 0 {
            spins = spins.wrapping_add(1);
            if spins % 1024 == 0 {
                std::thread::yield_now();
            } else {
                std::hint::spin_loop();
            }
        }
        let helper_panicked = s.pool.panicked.swap(false, SeqCst);
        if let Err(panic) = outcome {
            resume_unwind(panic);
        }
        if helper_panicked {
            panic!("a batch helper thread panicked");
        }
    }
}

/// The life of helper `index`: wait for a batch, run its work, repeat until shutdown. It starts
/// from the pool's first epoch, not the one it finds: a batch posted, or a shutdown begun, before
/// the thread got to run is seen, not waited past.
fn help(s: &Shared, index: usize) {
    let mut seen = 0;
    loop {
        seen = wait_for_batch(s, seen);
        if s.post.shutdown.load(SeqCst) {
            return;
        }
        s.post.warm.ask(WARM_LINES);
        s.active.fetch_add(1, SeqCst);
        let ptr = s.post.posted.load(SeqCst);
        if !ptr.is_null() {
            // SAFETY: the pointer was loaded after this helper counted itself in `active`, and
            // the caller that posted it withdraws it and then waits for `active` to be 0 before
            // its `Posted` and closure go out of scope (module docs), so both are alive until
            // the count-out below.
            let work = unsafe { (*ptr).work };
            if let Err(payload) = catch_unwind(AssertUnwindSafe(|| work(index))) {
                s.pool.panicked.store(true, SeqCst);
                drop_quietly(payload);
            }
        }
        s.active.fetch_sub(1, SeqCst);
    }
}

/// Drops a panic's payload without unwinding: a payload whose own `drop` panics must not take
/// the helper past its count-out, or the calling thread would wait for it for ever. The payload
/// of that second panic is dropped the same way, a few deep; one still panicking is leaked.
fn drop_quietly(mut payload: Box<dyn std::any::Any + Send>) {
    for _ in 0..4 {
        match catch_unwind(AssertUnwindSafe(move || drop(payload))) {
            Ok(()) => return,
            Err(again) => payload = again,
        }
    }
    std::mem::forget(payload);
}

/// Waits for an epoch other than `seen`: spinning, then yielding, for [`STAY_AWAKE`], then parked
/// until a caller wakes the pool.
fn wait_for_batch(s: &Shared, seen: u64) -> u64 {
    let start = Instant::now();
    let mut spins = 0u32;
    loop {
        let now = s.post.epoch.load(SeqCst);
        if now != seen {
            return now;
        }
        spins = spins.wrapping_add(1);
        if spins % 64 != 0 {
            std::hint::spin_loop();
            continue;
        }
        let waited = start.elapsed();
        if waited > STAY_AWAKE {
            break;
        }
        if waited > SPIN {
            std::thread::yield_now();
        }
    }
    // Counted as a sleeper before the epoch is read again under the lock: a caller that bumps
    // the epoch after that read sees the count and notifies under the same lock.
    s.pool.sleepers.fetch_add(1, SeqCst);
    let mut guard = lock(&s.lock);
    loop {
        let now = s.post.epoch.load(SeqCst);
        if now != seen {
            s.pool.sleepers.fetch_sub(1, SeqCst);
            return now;
        }
        guard = s.wake.wait(guard).unwrap_or_else(PoisonError::into_inner);
    }
}

impl Drop for SpinPool {
    fn drop(&mut self) {
        let s = &*self.shared;
        s.post.shutdown.store(true, SeqCst);
        s.post.epoch.fetch_add(1, SeqCst);
        {
            let _guard = lock(&s.lock);
            s.wake.notify_all();
        }
        // In a copy of the process after `fork` the helpers do not exist: nothing to join.
        if !self.started_in.is_elsewhere() {
            for helper in self.helpers.drain(..) {
                let _ = helper.join();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs `work` on the pool's helpers and `own` on this thread, as a batch does; false when
    /// the pool is held by another batch.
    fn run(pool: &SpinPool, work: &(dyn Fn(usize) + Sync), own: impl FnOnce()) -> bool {
        let Some(mut held) = pool.hold() else {
            return false;
        };
        held.parts().1.run(work, own, true, &[]);
        true
    }

    /// Jobs claimed by an atomic add, as `batch` does: every job runs exactly once, whichever
    /// thread takes it, over many back-to-back batches and with helpers parked in between.
    #[test]
    fn every_job_runs_once_per_batch() {
        let pool = SpinPool::new(3, "test-helper").unwrap();
        for round in 0..2000 {
            let jobs: Vec<AtomicUsize> = (0..37).map(|_| AtomicUsize::new(0)).collect();
            let next = AtomicUsize::new(0);
            let work = || loop {
                let k = next.fetch_add(1, SeqCst);
                let Some(job) = jobs.get(k) else { break };
                job.fetch_add(1, SeqCst);
            };
            assert!(run(&pool, &|_| work(), work));
            assert!(jobs.iter().all(|j| j.load(SeqCst) == 1), "round {round}");
            if round % 500 == 0 {
                std::thread::sleep(Duration::from_millis(2));
            }
        }
    }

    /// Runs 200 jobs that wait a little on `pool` (helpers woken); whether it took them, and how
    /// many threads ran them.
    fn threads_taking_jobs(pool: &SpinPool) -> (bool, usize) {
        let threads = Mutex::new(std::collections::HashSet::new());
        let next = AtomicUsize::new(0);
        let work = || {
            while next.fetch_add(1, SeqCst) < 200 {
                threads.lock().unwrap().insert(std::thread::current().id());
                std::thread::sleep(Duration::from_micros(200));
            }
        };
        let ran = run(pool, &|_| work(), work);
        let threads = threads.lock().unwrap().len();
        (ran, threads)
    }

    /// Helpers do take part: with jobs that wait a little, more than one thread runs them.
    #[test]
    fn helpers_take_jobs() {
        let pool = SpinPool::new(2, "test-helper").unwrap();
        let (ran, threads) = threads_taking_jobs(&pool);
        assert!(ran);
        assert!(threads > 1);
    }

    /// A restored snapshot keeps its threads: the helpers still take part after
    /// [`crate::fork::after_snapshot_restore`] (which changes the generation, not the process).
    #[test]
    fn helpers_still_take_jobs_after_a_snapshot_restore() {
        let pool = SpinPool::new(2, "test-helper").unwrap();
        crate::fork::after_snapshot_restore();
        assert!(!pool.in_a_copy());
        let (ran, threads) = threads_taking_jobs(&pool);
        assert!(ran, "the pool ran inline after a restore");
        assert!(threads > 1);
    }

    /// Each helper works with its own index, the one its thread was started with, so that it
    /// takes the same home of every batch.
    #[test]
    fn each_helper_works_with_its_own_index() {
        let pool = SpinPool::new(3, "test-helper").unwrap();
        let seen = Mutex::new(Vec::new());
        for _ in 0..200 {
            let work = |index: usize| {
                let name = std::thread::current().name().map(str::to_owned);
                seen.lock().unwrap().push((index, name));
                std::thread::sleep(Duration::from_micros(50));
            };
            assert!(run(&pool, &work, || std::thread::sleep(
                Duration::from_micros(200)
            )));
        }
        let seen = seen.into_inner().unwrap();
        assert!(!seen.is_empty(), "no helper took part in 200 batches");
        for (index, name) in seen {
            assert_eq!(
                name.as_deref(),
                Some(format!("test-helper-{index}").as_str())
            );
        }
    }

    /// A second caller while a batch holds the pool is told so and runs nothing.
    #[test]
    fn a_busy_pool_refuses_a_second_batch() {
        let pool = SpinPool::new(1, "test-helper").unwrap();
        let inner_ran = AtomicBool::new(false);
        let outer = || {
            let inner = || inner_ran.store(true, SeqCst);
            let refused = !run(&pool, &|_| inner(), inner);
            assert!(refused);
        };
        assert!(run(&pool, &|_| (), outer));
        assert!(!inner_ran.load(SeqCst));
        assert!(run(&pool, &|_| (), || ()), "the pool is free again");
    }

    /// A panic in a helper's or the caller's share of the work reaches the caller, and the pool
    /// still works afterwards.
    #[test]
    fn panics_reach_the_caller_and_the_pool_survives() {
        let pool = SpinPool::new(2, "test-helper").unwrap();
        let result = catch_unwind(AssertUnwindSafe(|| {
            run(&pool, &|_| (), || panic!("caller's share"))
        }));
        assert!(result.is_err());
        let next = AtomicUsize::new(0);
        let helper = |_| {
            if next.fetch_add(1, SeqCst) < 1000 {
                panic!("helper's share");
            }
        };
        let own = || {
            while next.fetch_add(1, SeqCst) < 1000 {
                std::thread::sleep(Duration::from_micros(10));
            }
        };
        // A helper may or may not get a job before the caller has taken them all.
        let _ = catch_unwind(AssertUnwindSafe(|| run(&pool, &helper, own)));
        let ran = AtomicUsize::new(0);
        assert!(run(&pool, &|_| (), || {
            ran.fetch_add(1, SeqCst);
        }));
        assert!(ran.load(SeqCst) >= 1);
    }

    /// A helper's panic whose payload panics again when dropped still counts the helper out:
    /// the batch returns (with the panic) instead of waiting for it for ever, and the pool
    /// runs the next batch. Run on a thread of its own, so that a regression fails the test
    /// instead of hanging it.
    #[test]
    fn a_payload_that_panics_when_dropped_does_not_strand_the_batch() {
        struct Bomb;
        impl Drop for Bomb {
            fn drop(&mut self) {
                panic!("the payload's drop");
            }
        }
        let (done, finished) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let pool = SpinPool::new(1, "test-helper").unwrap();
            let entered = AtomicBool::new(false);
            let helper = |_| {
                entered.store(true, SeqCst);
                std::panic::panic_any(Bomb);
            };
            // The calling thread waits (a while at most) for the helper to take its share.
            let own = || {
                let start = Instant::now();
                while !entered.load(SeqCst) && start.elapsed() < Duration::from_secs(10) {
                    std::thread::sleep(Duration::from_micros(50));
                }
            };
            let outcome = catch_unwind(AssertUnwindSafe(|| run(&pool, &helper, own)));
            let next = run(&pool, &|_| (), || ());
            let _ = done.send((entered.load(SeqCst), outcome.is_err(), next));
        });
        let (entered, raised, next) = finished
            .recv_timeout(Duration::from_secs(60))
            .expect("the batch returned");
        assert!(entered, "the helper took its share");
        assert!(raised, "the helper's panic reached the caller");
        assert!(next, "the pool ran the next batch");
    }

    #[test]
    fn dropping_the_pool_stops_its_helpers() {
        for _ in 0..20 {
            let pool = SpinPool::new(4, "test-helper").unwrap();
            assert!(run(&pool, &|_| (), || ()));
            drop(pool);
        }
    }
}
