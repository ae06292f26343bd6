//! A lock that a copy made by `fork` is never left waiting on for ever.
//!
//! A copy has only the thread that forked. A `std::sync::Mutex` that another of the parent's
//! threads held at that instant stays taken in the copy, and the copy's first `lock` never
//! returns. [`ProcessLock`]'s lock word is the [`process_mark`] of the process whose thread
//! holds it, set in the same atomic step that takes it, so a copy tells at once a lock its parent
//! held (an error) from one a thread of its own holds (waited for). It is for process-wide state
//! that a copy reaches on its own, such as a PKCS#11 module's table in `keyplane-pkcs11`, and is
//! rarely contended: a waiter spins, then yields, then sleeps, instead of parking on a futex. (The
//! control plane's lock, which concurrent calls contend for, blocks as a mutex does:
//! `control::control_lock`.)
#![allow(unsafe_code)] // reason: the value behind the lock word, reached only by its holder.

use std::cell::UnsafeCell;
use std::fmt;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use super::process_mark;

/// A value behind a lock whose holder's process is known (see the module's documentation). It
/// is not poisoned by a panic: a holder that panics lets go as it unwinds.
pub struct ProcessLock<T> {
    /// [`process_mark`] of the process whose thread holds the lock (never 0); 0 while it is free.
    holder: AtomicU64,
    value: UnsafeCell<T>,
}

// SAFETY: the value is reached only through a guard, and only one guard exists at a time (the
// lock word goes from 0 to a mark by one compare-exchange, and back to 0 when the guard drops),
// so sharing the lock between threads hands the value from one thread to another, which `T:
// Send` allows.
unsafe impl<T: Send> Sync for ProcessLock<T> {}

/// The lock was held, when this process was made by `fork`, by a thread of the process it was
/// copied from: that thread does not exist here, and the value may be half changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeldAtFork;

impl fmt::Display for HeldAtFork {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(
            "a thread of the process this one was forked from held the lock at the fork; \
             that thread does not exist in this process",
        )
    }
}

impl std::error::Error for HeldAtFork {}

/// The locked value; the lock is let go when it drops.
pub struct ProcessLockGuard<'a, T> {
    lock: &'a ProcessLock<T>,
    /// Shared between threads only where `T` is `Sync`, as `&mut T` is.
    _value: PhantomData<&'a mut T>,
}

impl<T> ProcessLock<T> {
    /// An unlocked lock holding `value` (usable in a `static`).
    pub const fn new(value: T) -> Self {
        ProcessLock {
            holder: AtomicU64::new(0),
            value: UnsafeCell::new(value),
        }
    }

    /// Takes the lock, waiting while a thread of this process holds it. In a copy made by `fork`
    /// whose parent's thread held it at the fork, answers [`HeldAtFork`] at once, never waits.
    pub fn lock(&self) -> Result<ProcessLockGuard<'_, T>, HeldAtFork> {
        let here = process_mark();
        let mut tries = 0u32;
        loop {
            match self
                .holder
                .compare_exchange_weak(0, here, Ordering::Acquire, Ordering::Relaxed)
            {
                Ok(_) => {
                    return Ok(ProcessLockGuard {
                        lock: self,
                        _value: PhantomData,
                    })
                }
                // A spurious failure of the weak exchange: try again.
                Err(0) => {}
                Err(holder) if holder == here => {
                    tries = tries.saturating_add(1);
                    if tries < 64 {
                        std::hint::spin_loop();
                    } else if tries < 128 {
                        std::thread::yield_now();
                    } else {
                        std::thread::sleep(Duration::from_micros(50));
                    }
                }
                Err(_) => return Err(HeldAtFork),
            }
        }
    }
}

/// Says whether the lock is held, never what it holds (a value behind it may be secret).
impl<T> fmt::Debug for ProcessLock<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProcessLock")
            .field("held", &(self.holder.load(Ordering::Relaxed) != 0))
            .finish_non_exhaustive()
    }
}

impl<T> fmt::Debug for ProcessLockGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProcessLockGuard").finish_non_exhaustive()
    }
}

impl<T> std::ops::Deref for ProcessLockGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: this guard's thread holds the lock, so no other reference to the value exists.
        unsafe { &*self.lock.value.get() }
    }
}

impl<T> std::ops::DerefMut for ProcessLockGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as in `deref`, and the guard is borrowed mutably.
        unsafe { &mut *self.lock.value.get() }
    }
}

impl<T> Drop for ProcessLockGuard<'_, T> {
    fn drop(&mut self) {
        self.lock.holder.store(0, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn threads_of_one_process_take_turns() {
        static COUNT: ProcessLock<u64> = ProcessLock::new(0);
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    for _ in 0..10_000 {
                        let mut count = COUNT.lock().unwrap();
                        // Read, yield now and then, write: a lost update if two held it at once.
                        let seen = *count;
                        if seen % 1_000 == 0 {
                            std::thread::yield_now();
                        }
                        *count = seen + 1;
                    }
                });
            }
        });
        assert_eq!(*COUNT.lock().unwrap(), 40_000);
    }

    #[test]
    fn a_panicking_holder_lets_go() {
        let lock = ProcessLock::new(1u8);
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let _held = lock.lock().unwrap();
            panic!("while holding");
        }));
        assert!(result.is_err());
        assert_eq!(*lock.lock().unwrap(), 1);
    }
}
