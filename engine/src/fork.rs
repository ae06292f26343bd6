//! Clone detection: a process-wide *generation* that no copy of this process shares with the
//! process it was copied from.
//!
//! Everything that must stay unique to one process (the derived-key sessions and their nonce
//! counters) records the generation it was made in and is dropped, never continued, once the
//! generation differs. The generation lives on one page mapped with `MADV_WIPEONFORK`: the kernel
//! hands every child of `fork` (or of any `clone` without `CLONE_VM`, whatever its PID, in any PID
//! namespace) a zeroed copy of that page, and no parent ever holds zero. The first reader in the
//! child picks a generation above every one its parent handed out, and locks the key memory again
//! (`mlock` is not inherited across fork).
//!
//! The hot path is one relaxed atomic load per chunk of work (a single call is a chunk of one);
//! the sessions compare it with an integer compare.
//!
//! Not detected: a restore of a memory snapshot (CRIU, a VM snapshot, a function snapshot restored
//! many times) copies the page with its contents. Such a process must call
//! [`after_snapshot_restore`] before it encrypts (see `docs/ciphertext-format.md`). Where the
//! kernel refuses `MADV_WIPEONFORK` (before Linux 4.14), nothing can be detected and every chunk
//! gets a new generation: sessions then never outlive one call or one batch chunk, which is safe
//! and costs a salt and a key derivation per chunk.
#![allow(unsafe_code)] // reason: mmap and madvise of the wipe-on-fork page, and atomic access to it.

use std::sync::atomic::{AtomicPtr, AtomicU64, Ordering};

mod process_lock;

pub use process_lock::{HeldAtFork, ProcessLock, ProcessLockGuard};

/// The highest generation handed out. Ordinary memory: a child inherits it, so a generation it
/// picks is above every one its parent used.
static LAST: AtomicU64 = AtomicU64::new(0);

/// The current generation, on the wipe-on-fork page; `None` where the page could not be made.
///
/// Not a `OnceLock`: a copy forked while another thread was making the page would wait for that
/// thread, which does not exist in the copy, at its first read, for ever. Threads that find no
/// page each make one; the first published is kept and the others are unmapped.
fn marker() -> Option<&'static AtomicU64> {
    /// Null until the page is made; [`unavailable`] where the kernel refused it.
    static MARKER: AtomicPtr<AtomicU64> = AtomicPtr::new(std::ptr::null_mut());
    let page = MARKER.load(Ordering::Acquire);
    if page.is_null() {
        return make_marker(&MARKER);
    }
    published(page)
}

/// What [`marker`] holds where no wipe-on-fork page could be made: never a page's address (the
/// pages are page-aligned, and not at address 8).
fn unavailable() -> *mut AtomicU64 {
    std::ptr::NonNull::dangling().as_ptr()
}

/// The marker `page` names, as [`marker`] holds it.
fn published(page: *mut AtomicU64) -> Option<&'static AtomicU64> {
    if page == unavailable() {
        return None;
    }
    // SAFETY: a page made by `make_marker` and published in `MARKER`: zero-filled then
    // written, page-aligned (so aligned for `AtomicU64`), readable and writable, and never
    // unmapped once published, so a `'static` shared reference to an atomic on it is sound; all
    // access goes through the atomic.
    Some(unsafe { &*page })
}

#[cold]
fn make_marker(slot: &AtomicPtr<AtomicU64>) -> Option<&'static AtomicU64> {
    let len = page_size();
    let made = match crate::locked_memory::map_anonymous(len) {
        // SAFETY: `ptr` is the start of the `len`-byte mapping just made.
        Ok(ptr) if unsafe { libc::madvise(ptr, len, libc::MADV_WIPEONFORK) } == 0 => {
            let page = ptr.cast::<AtomicU64>();
            // SAFETY: the start of the zero-filled, page-aligned mapping just made, which only
            // this thread knows of yet.
            unsafe { &*page }.store(LAST.fetch_add(1, Ordering::Relaxed) + 1, Ordering::Relaxed);
            page
        }
        Ok(ptr) => {
            // SAFETY: unmapping the mapping just made, which nothing references.
            unsafe { libc::munmap(ptr, len) };
            unavailable()
        }
        Err(_) => unavailable(),
    };
    match slot.compare_exchange(
        std::ptr::null_mut(),
        made,
        Ordering::AcqRel,
        Ordering::Acquire,
    ) {
        Ok(_) => published(made),
        Err(first) => {
            if made != unavailable() {
                // SAFETY: the mapping this thread made above, never published, so nothing
                // references it.
                unsafe { libc::munmap(made.cast(), len) };
            }
            published(first)
        }
    }
}

fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    usize::try_from(size).unwrap_or(4096).max(4096)
}

/// This process's generation: equal between two reads only if no fork happened in between (and
/// [`after_snapshot_restore`] was not called).
#[inline]
pub(crate) fn generation() -> u64 {
    match marker() {
        Some(marker) => match marker.load(Ordering::Relaxed) {
            0 => renew(marker),
            current => current,
        },
        None => LAST.fetch_add(1, Ordering::Relaxed) + 1,
    }
}

/// In a copy of the process: a generation no earlier process used, and key memory locked again.
#[cold]
fn renew(marker: &AtomicU64) -> u64 {
    // Counted before the new generation is published, so that no thread of this copy sees the
    // generation without the count (two threads renewing at once count twice: only a change
    // of the count matters).
    COPIES.fetch_add(1, Ordering::AcqRel);
    let next = LAST.fetch_add(1, Ordering::Relaxed) + 1;
    match marker.compare_exchange(0, next, Ordering::AcqRel, Ordering::Acquire) {
        Ok(_) => {
            // A failure is already reported: counted as unlocked, warned about, and every
            // `LockPolicy::Require` allocation from now on fails with `MemoryLock`.
            let _ = crate::locked_memory::relock_after_fork();
            next
        }
        // Another thread of this child renewed it first.
        Err(current) => current,
    }
}

/// How many copies made by fork lie between this process and the first. Ordinary memory: a
/// child inherits its parent's count and adds to it when it first reads its generation. Unlike
/// the generation, a snapshot restore leaves it alone: a restored process has its threads and
/// connections, a child of fork has neither.
static COPIES: AtomicU64 = AtomicU64::new(0);

/// The process a process-bound resource belongs to (an audit log's writer thread, a store's
/// connection, a PKCS#11 module's initialisation in `keyplane-pkcs11`): recorded where it is
/// made, and compared where it is used.
#[derive(Clone, Copy, Debug)]
pub struct Birthplace {
    mark: u64,
    pid: u32,
}

impl Birthplace {
    /// This process.
    pub fn here() -> Birthplace {
        Birthplace {
            mark: process_mark(),
            pid: std::process::id(),
        }
    }

    /// Whether this process is a copy made by `fork` of the one the resource was made in (see
    /// [`process_mark`]: where the kernel gives no wipe-on-fork page, before Linux 4.14, copies
    /// cannot be counted, and a differing process id is taken instead, which a child in a new
    /// PID namespace can share).
    pub fn is_elsewhere(&self) -> bool {
        process_mark() != self.mark
    }

    /// The process id of the process the resource was made in.
    pub(crate) fn pid(&self) -> u32 {
        self.pid
    }
}

/// A number that tells this process from the one it was copied from by `fork` (and from its
/// other ancestors): the copies counted since the first process, plus one; the process id where
/// copies cannot be counted. Never 0.
pub(crate) fn process_mark() -> u64 {
    match marker() {
        Some(_) => {
            let _ = generation(); // a child that has not read it yet counts itself now
            COPIES.load(Ordering::Acquire) + 1
        }
        None => u64::from(std::process::id()),
    }
}

/// Tells the engine that this process was restored from a memory snapshot (CRIU, a VM snapshot,
/// a function snapshot), which it cannot detect by itself: every derived-key session made before
/// is dropped, and the next encryption draws a new salt. Call it in every restored copy before
/// it encrypts; calling it when nothing was restored only costs each session a new salt and key
/// derivation. It also locks key memory again, for restorers that do not restore `mlock`.
pub fn after_snapshot_restore() {
    let next = LAST.fetch_add(1, Ordering::Relaxed) + 1;
    if let Some(marker) = marker() {
        marker.store(next, Ordering::Release);
    }
    let _ = crate::locked_memory::relock_after_fork();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_restore_is_not_a_copy() {
        let here = Birthplace::here();
        after_snapshot_restore();
        assert!(
            !here.is_elsewhere(),
            "a restored process keeps its threads and connections"
        );
        assert_eq!(here.pid(), std::process::id());
    }

    #[test]
    fn generation_is_stable_until_a_restore_is_announced() {
        let before = generation();
        assert_ne!(before, 0);
        assert_eq!(generation(), before, "no fork, no change");
        after_snapshot_restore();
        let after = generation();
        assert_ne!(after, before);
        assert_eq!(generation(), after);
    }
}
