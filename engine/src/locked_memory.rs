//! Locked, non-dumpable memory for key material and expanded key schedules.
//!
//! Memory comes from `mmap` in regions of [`REGION_BYTES`], each `mlock`ed (kept out of swap) and
//! marked `MADV_DONTDUMP` (kept out of core dumps), then cut into fixed-size slots of a few size
//! classes. A slot is zeroed when it is released and goes back on its class's free list; regions are
//! kept for reuse and never unmapped, so `VmLck` grows with the number of live keys and sessions and
//! does not shrink. Allocation takes a mutex, but only the control plane and the first use of a key
//! on a thread allocate: the data plane's per-message path never does.
//!
//! When `mlock` fails (usually `RLIMIT_MEMLOCK`), the [`LockPolicy`] decides: `Require` (the
//! default) unmaps the region and returns [`Error::MemoryLock`]; `Warn` keeps the region unlocked,
//! prints one warning to stderr per region and counts it in [`LockedMemoryStats::unlocked_bytes`].
//!
//! A child of `fork` inherits the memory but not the locks (`mlock` is not inherited): the locked
//! regions are recorded, and the child locks them all again on its first data-plane call (see
//! [`crate::fork`]). If that fails the child counts them as unlocked, warns once, and every later
//! `Require` allocation fails with [`Error::MemoryLock`]. Nor does a child inherit the threads: a
//! free list or the region list that another thread held locked at the instant of the fork would
//! stay locked in the child for ever, so the thread that forks holds them all across the fork
//! (`pthread_atfork`, as glibc's allocator does its arenas).
#![allow(unsafe_code)] // reason: mmap/mlock/madvise system calls and typed access to raw locked slots.

use std::cell::RefCell;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, Once, OnceLock, PoisonError};

use zeroize::Zeroize;

use crate::error::{Error, Result};

/// Bytes mapped, locked and marked non-dumpable at a time.
pub const REGION_BYTES: usize = 64 * 1024;
/// Largest single allocation (a plaintext scratch buffer at the largest configurable plaintext).
pub const MAX_DEDICATED_BYTES: usize = 2 << 20;
/// Slot sizes; an allocation takes the smallest that fits.
const SIZE_CLASSES: [usize; 6] = [64, 256, 1024, 2048, 4096, 8192];

/// What to do when the operating system refuses to lock key memory.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LockPolicy {
    /// Fail the operation that needed the memory with [`Error::MemoryLock`].
    #[default]
    Require,
    /// Use the memory unlocked, warn on stderr, and count it in the statistics.
    Warn,
}

/// Counters for locked memory, process-wide.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LockedMemoryStats {
    /// Bytes mapped and successfully locked.
    pub locked_bytes: usize,
    /// Bytes mapped that could not be locked (only under [`LockPolicy::Warn`]).
    pub unlocked_bytes: usize,
    /// Slots currently handed out.
    pub slots_in_use: usize,
}

static LOCKED_BYTES: AtomicUsize = AtomicUsize::new(0);
static UNLOCKED_BYTES: AtomicUsize = AtomicUsize::new(0);
static SLOTS_IN_USE: AtomicUsize = AtomicUsize::new(0);
/// Set when a forked child could not lock the memory it inherited again.
static LOCK_LOST: AtomicBool = AtomicBool::new(false);

/// Address and length of every locked mapping, for a child of `fork` to lock again. A dedicated
/// mapping leaves the list before it is unmapped.
fn locked_regions() -> &'static Mutex<Vec<(usize, usize)>> {
    static REGIONS: Mutex<Vec<(usize, usize)>> = Mutex::new(Vec::new());
    hold_locks_across_fork();
    &REGIONS
}

/// Every lock of this allocator, taken by the thread that forks just before the fork and
/// released just after it, in the parent and in the child: the child then finds them free and
/// the lists whole, whatever the parent's other threads were doing at the fork.
struct HeldAcrossFork {
    _classes: [MutexGuard<'static, FreeLists>; SIZE_CLASSES.len()],
    _regions: MutexGuard<'static, Vec<(usize, usize)>>,
}

thread_local! {
    /// The locks the forking thread holds from [`before_fork`] to [`after_fork`].
    static HELD_ACROSS_FORK: RefCell<Option<HeldAcrossFork>> = const { RefCell::new(None) };
}

/// Registers [`before_fork`] and [`after_fork`] once, before the first of the locks is taken.
fn hold_locks_across_fork() {
    static REGISTERED: Once = Once::new();
    REGISTERED.call_once(|| {
        // SAFETY: registers two handlers that take no arguments and cannot unwind (neither
        // panics: poisoned locks are taken as they are, a thread-local that is gone or borrowed
        // is left alone).
        let status =
            unsafe { libc::pthread_atfork(Some(before_fork), Some(after_fork), Some(after_fork)) };
        if status != 0 {
            eprintln!(
                "keyplane: warning: pthread_atfork failed ({status}); a child of fork may wait for \
                 ever on key memory that another thread of its parent held at the fork"
            );
        }
    });
}

/// Takes every lock, in the order [`LockedSlot::new`] nests them (a free list, then the region
/// list), waiting for any another thread holds.
extern "C" fn before_fork() {
    let held = HeldAcrossFork {
        _classes: classes()
            .each_ref()
            .map(|class| class.free.lock().unwrap_or_else(PoisonError::into_inner)),
        _regions: locked_regions()
            .lock()
            .unwrap_or_else(PoisonError::into_inner),
    };
    let _ = HELD_ACROSS_FORK.try_with(|slot| {
        if let Ok(mut slot) = slot.try_borrow_mut() {
            *slot = Some(held);
        }
    });
}

/// Releases what [`before_fork`] took, in the parent and in the child.
extern "C" fn after_fork() {
    let _ = HELD_ACROSS_FORK.try_with(|slot| {
        if let Ok(mut slot) = slot.try_borrow_mut() {
            slot.take();
        }
    });
}

/// Locks every recorded region again: needed in a child of `fork`, which inherits the memory but
/// not its locks. Regions that cannot be locked are counted as unlocked and dropped from the
/// record; from then on `Require` allocations fail.
pub(crate) fn relock_after_fork() -> Result<()> {
    let mut regions = locked_regions()
        .lock()
        .map_err(|_| Error::Internal("key memory region list poisoned".into()))?;
    let mut failed = 0usize;
    let mut last_error = None;
    regions.retain(|&(address, len)| {
        // SAFETY: a live mapping of `len` bytes made by `map_region` (a dedicated mapping leaves
        // this list before it is unmapped); mlock does not touch its contents.
        let locked = unsafe { libc::mlock(address as *const libc::c_void, len) } == 0;
        if !locked {
            failed += len;
            last_error = Some(std::io::Error::last_os_error());
        }
        locked
    });
    drop(regions);
    if failed == 0 {
        return Ok(());
    }
    LOCKED_BYTES.fetch_sub(failed, Ordering::Relaxed);
    UNLOCKED_BYTES.fetch_add(failed, Ordering::Relaxed);
    LOCK_LOST.store(true, Ordering::Relaxed);
    let err = last_error.map_or_else(String::new, |e| e.to_string());
    eprintln!(
        "keyplane: warning: after fork, {failed} bytes of key memory could not be locked again \
         ({err}); LockPolicy::Require allocations now fail"
    );
    Err(Error::MemoryLock(format!(
        "after fork, {failed} bytes of inherited key memory could not be locked again ({err})"
    )))
}

/// Process-wide statistics of the locked-memory allocator.
pub fn stats() -> LockedMemoryStats {
    LockedMemoryStats {
        locked_bytes: LOCKED_BYTES.load(Ordering::Relaxed),
        unlocked_bytes: UNLOCKED_BYTES.load(Ordering::Relaxed),
        slots_in_use: SLOTS_IN_USE.load(Ordering::Relaxed),
    }
}

/// A free slot's address. Raw pointers are not `Send`; this one names memory owned by the
/// process-wide pool, which any thread may use once it holds the pool's mutex.
struct FreeSlot(NonNull<u8>);
// SAFETY: the pointer names pool memory that is only handed out under the pool's mutex.
unsafe impl Send for FreeSlot {}

/// Free slots of one size, kept apart by whether their region is locked: a `Require` caller
/// only ever gets locked ones, even after a `Warn` caller left unlocked regions in the pool.
#[derive(Default)]
struct FreeLists {
    locked: Vec<FreeSlot>,
    unlocked: Vec<FreeSlot>,
}

struct SizeClass {
    slot_bytes: usize,
    free: Mutex<FreeLists>,
}

fn classes() -> &'static [SizeClass; 6] {
    static CLASSES: OnceLock<[SizeClass; 6]> = OnceLock::new();
    CLASSES.get_or_init(|| {
        hold_locks_across_fork();
        SIZE_CLASSES.map(|slot_bytes| SizeClass {
            slot_bytes,
            free: Mutex::new(FreeLists::default()),
        })
    })
}

/// A fresh anonymous private read-write mapping of `len` bytes, placed where the kernel chooses
/// (zero-filled and page-aligned), or the error `mmap` set. The caller owns it and unmaps it.
pub(crate) fn map_anonymous(len: usize) -> std::io::Result<*mut libc::c_void> {
    // SAFETY: an anonymous private mapping with no address hint, so no existing memory is
    // touched; the result is checked below.
    let ptr = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if ptr == libc::MAP_FAILED {
        return Err(std::io::Error::last_os_error());
    }
    Ok(ptr)
}

/// Maps `len` bytes, excludes them from core dumps and locks them; tells whether locking worked.
fn map_region(len: usize, policy: LockPolicy) -> Result<(NonNull<u8>, bool)> {
    let ptr = map_anonymous(len).map_err(|err| {
        Error::MemoryLock(format!("mmap of {len} bytes for key memory failed: {err}"))
    })?;
    // SAFETY: `ptr` is the start of the len mapping made above.
    let dontdump = unsafe { libc::madvise(ptr, len, libc::MADV_DONTDUMP) };
    if dontdump != 0 {
        let err = std::io::Error::last_os_error();
        // SAFETY: unmapping the mapping made above, which nothing else references yet.
        unsafe { libc::munmap(ptr, len) };
        return Err(Error::MemoryLock(format!(
            "madvise(MADV_DONTDUMP) on key memory failed: {err}"
        )));
    }
    // SAFETY: `ptr` is the start of the len mapping made above.
    let locked = unsafe { libc::mlock(ptr, len) };
    let is_locked = locked == 0;
    if !is_locked {
        let err = std::io::Error::last_os_error();
        match policy {
            LockPolicy::Require => {
                // SAFETY: unmapping the mapping made above, which nothing else references yet.
                unsafe { libc::munmap(ptr, len) };
                return Err(Error::MemoryLock(format!(
                    "mlock of {len} bytes of key memory failed ({err}); raise \
                     RLIMIT_MEMLOCK (ulimit -l), grant CAP_IPC_LOCK, or configure LockPolicy::Warn"
                )));
            }
            LockPolicy::Warn => {
                eprintln!(
                    "keyplane: warning: mlock of {len} bytes of key memory failed ({err}); \
                     continuing with unlocked key memory because LockPolicy::Warn is configured"
                );
                UNLOCKED_BYTES.fetch_add(len, Ordering::Relaxed);
            }
        }
    } else {
        LOCKED_BYTES.fetch_add(len, Ordering::Relaxed);
        if let Ok(mut regions) = locked_regions().lock() {
            regions.push((ptr as usize, len));
        }
    }
    // `mmap` never returns null for a non-fixed mapping; MAP_FAILED was checked above.
    NonNull::new(ptr.cast::<u8>())
        .map(|p| (p, is_locked))
        .ok_or_else(|| Error::Internal("mmap returned null".into()))
}

/// One slot of locked memory, zeroed when dropped and returned to its size class.
pub(crate) struct LockedSlot {
    ptr: NonNull<u8>,
    /// Index into SIZE_CLASSES, or `None` for a mapping of its own.
    class: Option<usize>,
    /// Whether its memory is locked (only ever false under `LockPolicy::Warn`).
    locked: bool,
    capacity: usize,
}

// SAFETY: a slot is exclusively owned memory; moving its owner between threads is sound.
unsafe impl Send for LockedSlot {}
// SAFETY: shared references only give out `&[u8]` / const pointers; mutation needs `&mut self`.
unsafe impl Sync for LockedSlot {}

impl LockedSlot {
    /// A zeroed slot of at least `len` bytes, aligned to 64 bytes.
    pub(crate) fn new(len: usize, policy: LockPolicy) -> Result<Self> {
        if policy == LockPolicy::Require && LOCK_LOST.load(Ordering::Relaxed) {
            return Err(Error::MemoryLock(
                "this process is a child of fork that could not lock its inherited key memory \
                 again, so no key memory is locked for certain; raise RLIMIT_MEMLOCK (ulimit -l) \
                 or configure LockPolicy::Warn"
                    .into(),
            ));
        }
        if len > MAX_DEDICATED_BYTES {
            return Err(Error::Internal(format!(
                "{len} bytes is too large for locked key memory"
            )));
        }
        let Some(class) = SIZE_CLASSES.iter().position(|&size| size >= len) else {
            let capacity = len.div_ceil(4096) * 4096;
            let (ptr, locked) = map_region(capacity, policy)?;
            SLOTS_IN_USE.fetch_add(1, Ordering::Relaxed);
            return Ok(LockedSlot {
                ptr,
                class: None,
                locked,
                capacity,
            });
        };
        let size_class = &classes()[class];
        let mut free = size_class
            .free
            .lock()
            .map_err(|_| Error::Internal("key memory pool lock poisoned".into()))?;
        let take = |free: &mut FreeLists| match policy {
            LockPolicy::Require => free.locked.pop().map(|slot| (slot, true)),
            LockPolicy::Warn => free
                .locked
                .pop()
                .map(|slot| (slot, true))
                .or_else(|| free.unlocked.pop().map(|slot| (slot, false))),
        };
        let (slot, locked) = match take(&mut free) {
            Some(found) => found,
            None => {
                let (region, locked) = map_region(REGION_BYTES, policy)?;
                let list = if locked {
                    &mut free.locked
                } else {
                    &mut free.unlocked
                };
                for offset in (0..REGION_BYTES).step_by(size_class.slot_bytes).rev() {
                    // SAFETY: `offset` < REGION_BYTES, so the pointer stays inside the region.
                    let slot = unsafe { region.as_ptr().add(offset) };
                    list.push(FreeSlot(
                        NonNull::new(slot)
                            .ok_or_else(|| Error::Internal("null slot pointer".into()))?,
                    ));
                }
                take(&mut free)
                    .ok_or_else(|| Error::Internal("empty key memory free list".into()))?
            }
        };
        SLOTS_IN_USE.fetch_add(1, Ordering::Relaxed);
        Ok(LockedSlot {
            ptr: slot.0,
            class: Some(class),
            locked,
            capacity: size_class.slot_bytes,
        })
    }

    pub(crate) fn capacity(&self) -> usize {
        self.capacity
    }

    pub(crate) fn as_ptr(&self) -> *const u8 {
        self.ptr.as_ptr()
    }

    pub(crate) fn as_mut_ptr(&mut self) -> *mut u8 {
        self.ptr.as_ptr()
    }

    pub(crate) fn bytes(&self) -> &[u8] {
        // SAFETY: the slot is `capacity()` initialised (zeroed at mapping) bytes owned by `self`.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.capacity()) }
    }

    pub(crate) fn bytes_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in `bytes`, and `&mut self` makes the access exclusive.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.capacity()) }
    }
}

impl Drop for LockedSlot {
    fn drop(&mut self) {
        self.bytes_mut().zeroize();
        SLOTS_IN_USE.fetch_sub(1, Ordering::Relaxed);
        match self.class {
            Some(class) => {
                if let Ok(mut free) = classes()[class].free.lock() {
                    let list = if self.locked {
                        &mut free.locked
                    } else {
                        &mut free.unlocked
                    };
                    list.push(FreeSlot(self.ptr));
                }
                // A poisoned pool lock leaks the (already zeroed) slot rather than panicking.
            }
            None => {
                // Leave the record first, so a relock never touches an unmapped address. A region
                // a child could not lock again is no longer recorded and is counted as unlocked.
                let mut recorded = false;
                if let Ok(mut regions) = locked_regions().lock() {
                    let address = self.ptr.as_ptr() as usize;
                    if let Some(i) = regions.iter().position(|&(a, _)| a == address) {
                        regions.swap_remove(i);
                        recorded = true;
                    }
                }
                // SAFETY: a dedicated mapping of `capacity` bytes made in `new`, used by nothing
                // else; unmapping also unlocks it.
                let unmapped = unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.capacity) };
                if unmapped == 0 {
                    let counter = if recorded {
                        &LOCKED_BYTES
                    } else {
                        &UNLOCKED_BYTES
                    };
                    counter.fetch_sub(self.capacity, Ordering::Relaxed);
                }
            }
        }
    }
}

/// The token that every read of secret bytes outside the engine carries (Tink's
/// `InsecureSecretKeyAccess`): [`LockedBytes::expose`] takes one, so each place that reads key
/// material, a PIN or a credential's secret says so in a way a reviewer can search for
/// (`SecretAccess::granted()`), and nothing reads them by accident.
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub struct SecretAccess;

impl SecretAccess {
    /// Grants one read of secret bytes: call it only where the bytes must leave locked memory's
    /// owner (to a token, a KDF, a file the user asked for).
    pub fn granted() -> Self {
        SecretAccess
    }
}

/// Secret bytes of a fixed length in locked memory: key material. No `Clone`, `Copy` or
/// revealing `Debug`; zeroed when dropped.
pub struct LockedBytes {
    slot: LockedSlot,
    len: usize,
}

impl LockedBytes {
    /// `len` zero bytes of locked memory, to be filled through [`LockedBytes::expose_mut`].
    pub fn zeroed(len: usize, policy: LockPolicy) -> Result<Self> {
        Ok(LockedBytes {
            slot: LockedSlot::new(len, policy)?,
            len,
        })
    }

    /// A locked copy of `bytes`. The caller remains responsible for zeroing its own copy.
    pub fn copy_from(bytes: &[u8], policy: LockPolicy) -> Result<Self> {
        let mut locked = Self::zeroed(bytes.len(), policy)?;
        locked.bytes_mut().copy_from_slice(bytes);
        Ok(locked)
    }

    /// `len` bytes from the system's cryptographic random generator, written straight into locked
    /// memory.
    pub fn random(len: usize, policy: LockPolicy) -> Result<Self> {
        let mut locked = Self::zeroed(len, policy)?;
        crate::crypto::random::fill(locked.bytes_mut())?;
        Ok(locked)
    }

    /// The secret bytes, for code outside the engine that must hand them on (a PIN to a token,
    /// a credential's secret to SigV4): the [`SecretAccess`] token names each such place. Keep the
    /// borrow short and never copy them out of locked memory.
    pub fn expose(&self, _access: SecretAccess) -> &[u8] {
        self.bytes()
    }

    /// The secret bytes, writable (filled from a file or a callback), under [`SecretAccess`].
    pub fn expose_mut(&mut self, _access: SecretAccess) -> &mut [u8] {
        self.bytes_mut()
    }

    /// The secret bytes, inside the engine.
    pub(crate) fn bytes(&self) -> &[u8] {
        &self.slot.bytes()[..self.len]
    }

    /// The secret bytes, writable, inside the engine.
    pub(crate) fn bytes_mut(&mut self) -> &mut [u8] {
        let len = self.len;
        &mut self.slot.bytes_mut()[..len]
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the buffer is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl std::fmt::Debug for LockedBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "LockedBytes({} bytes, redacted)", self.len)
    }
}

/// Reads `VmLck` (kB of locked memory) from `/proc/self/status`, where the platform has it.
pub fn process_locked_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmLck:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_zeroed_when_reused() {
        let mut a = LockedBytes::zeroed(32, LockPolicy::Require).unwrap();
        a.bytes_mut().fill(0xA5);
        let addr = a.bytes().as_ptr() as usize;
        drop(a);
        // The free list is LIFO, so the next allocation of this class usually reuses the slot; in
        // every case the new slot must be all zeroes.
        let b = LockedBytes::zeroed(32, LockPolicy::Require).unwrap();
        assert!(b.bytes().iter().all(|&x| x == 0));
        let _ = addr;
    }

    #[test]
    fn debug_never_shows_bytes() {
        let k = LockedBytes::copy_from(&[0x41; 32], LockPolicy::Require).unwrap();
        let shown = format!("{k:?}");
        assert_eq!(shown, "LockedBytes(32 bytes, redacted)");
        assert!(!shown.contains("41") && !shown.contains('A'));
    }

    #[test]
    fn oversized_request_is_an_error_not_a_panic() {
        assert!(matches!(
            LockedBytes::zeroed(MAX_DEDICATED_BYTES + 1, LockPolicy::Require),
            Err(Error::Internal(_))
        ));
    }

    /// Forks while another thread holds `lock` (taken by `hold`), and tells how the child fared
    /// taking and giving back a slot of `len` bytes: "clean", "failed" or "hung".
    fn fork_while_held<T: 'static>(
        hold: impl FnOnce() -> MutexGuard<'static, T> + Send + 'static,
        len: usize,
    ) -> &'static str {
        let (held, at_fork) = std::sync::mpsc::channel();
        let holder = std::thread::spawn(move || {
            let guard = hold();
            held.send(()).unwrap();
            std::thread::sleep(std::time::Duration::from_millis(300));
            drop(guard);
        });
        at_fork.recv().unwrap();
        // SAFETY: fork of this test process while `holder` holds the lock; the child only takes
        // and drops a slot (no allocation by this test's code besides the engine's own) and
        // `_exit`s without unwinding; this process only waits for it.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork failed");
        if pid == 0 {
            let code = match LockedBytes::zeroed(len, LockPolicy::Warn) {
                Ok(slot) => {
                    drop(slot);
                    0
                }
                Err(_) => 1,
            };
            // SAFETY: ends the forked process at once, as a child of fork must.
            unsafe { libc::_exit(code) };
        }
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        let mut status = 0;
        let verdict = loop {
            // SAFETY: polls the child forked above.
            match unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) } {
                0 if std::time::Instant::now() < deadline => {
                    std::thread::sleep(std::time::Duration::from_millis(5));
                }
                0 => {
                    // SAFETY: ends and reaps the child forked above, which did not finish.
                    unsafe {
                        libc::kill(pid, libc::SIGKILL);
                        libc::waitpid(pid, &mut status, 0);
                    }
                    break "hung";
                }
                _ if libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0 => break "clean",
                _ => break "failed",
            }
        };
        holder.join().unwrap();
        verdict
    }

    #[test]
    fn a_child_of_fork_takes_key_memory_that_another_thread_held_at_the_fork() {
        // A free list (of the 64-byte class) and the region list (a dedicated mapping records
        // itself there), each held by another thread at the instant of the fork. Before the
        // locks were held across the fork, the child waited for ever on either.
        let class = || classes()[0].free.lock().unwrap();
        assert_eq!(fork_while_held(class, 32), "clean", "a free list");
        let regions = || locked_regions().lock().unwrap();
        assert_eq!(
            fork_while_held(regions, 100_000),
            "clean",
            "the region list"
        );
    }

    #[test]
    fn large_requests_get_their_own_mapping() {
        let mut big = LockedBytes::zeroed(100_000, LockPolicy::Require).unwrap();
        assert_eq!(big.len(), 100_000);
        big.bytes_mut().fill(7);
        assert!(big.bytes().iter().all(|&b| b == 7));
        assert!(stats().locked_bytes >= 100_000);
    }
}
