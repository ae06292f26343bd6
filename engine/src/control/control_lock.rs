//! The control-plane lock, and which process's thread holds it.
//!
//! Control-plane calls serialise on one mutex. A copy of the process made by `fork` has only the
//! thread that forked, so a lock that another of the parent's threads held at that instant (the
//! scheduler's run, another thread's CreateKey) stays taken in the copy for ever. A copy whose
//! control plane is its own (an engine on the in-memory store) is told so, at once or within
//! [`UNKNOWN_HOLDER_WAIT`], instead of waiting for ever; a lock held by one of its own threads is
//! waited for as usual. The process that built the engine locks as a plain mutex does.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, TryLockError};
use std::time::{Duration, Instant};

use super::working_copy::ControlState;
use crate::error::{Error, Result};
use crate::messages;

/// How long a copy waits for a lock whose holder has not said which process it is of (it
/// says so a few instructions after it takes the lock, and is cleared a few before it lets go).
const UNKNOWN_HOLDER_WAIT: Duration = Duration::from_secs(2);

pub(crate) struct ControlLock {
    state: Mutex<ControlState>,
    /// [`crate::fork::process_mark`] of the process whose thread holds the lock; 0 while it is
    /// free, and just after it is taken or just before it is let go.
    held_by: AtomicU64,
}

/// The locked control-plane state.
pub(crate) struct ControlGuard<'a> {
    state: MutexGuard<'a, ControlState>,
    held_by: &'a AtomicU64,
}

impl ControlLock {
    pub(crate) fn new(state: ControlState) -> Self {
        ControlLock {
            state: Mutex::new(state),
            held_by: AtomicU64::new(0),
        }
    }

    /// Takes the lock. `in_a_copy`: whether this process is a copy made by `fork` of the one
    /// that built the engine; then a lock held by a thread of another process is an error
    /// naming `built_by` (the builder's process id), never a wait.
    pub(crate) fn lock(&self, in_a_copy: bool, built_by: u32) -> Result<ControlGuard<'_>> {
        let here = crate::fork::process_mark();
        let state = if in_a_copy {
            self.lock_in_a_copy(here, built_by)?
        } else {
            self.state.lock().map_err(|_| poisoned())?
        };
        self.held_by.store(here, Ordering::Release);
        Ok(ControlGuard {
            state,
            held_by: &self.held_by,
        })
    }

    fn lock_in_a_copy(&self, here: u64, built_by: u32) -> Result<MutexGuard<'_, ControlState>> {
        let mut unknown_since = None;
        loop {
            match self.state.try_lock() {
                Ok(state) => return Ok(state),
                Err(TryLockError::Poisoned(_)) => return Err(poisoned()),
                Err(TryLockError::WouldBlock) => {}
            }
            match self.held_by.load(Ordering::Acquire) {
                // One of this process's threads: it lets go in its own time.
                holder if holder == here => return self.state.lock().map_err(|_| poisoned()),
                // Taken or let go just now, by a thread of this process or (at the fork) of
                // the parent: waited for a while.
                0 => {
                    let since = *unknown_since.get_or_insert_with(Instant::now);
                    if since.elapsed() > UNKNOWN_HOLDER_WAIT {
                        return Err(messages::control_lock_of_another_process(built_by));
                    }
                    std::thread::sleep(Duration::from_micros(100));
                }
                _ => return Err(messages::control_lock_of_another_process(built_by)),
            }
        }
    }
}

fn poisoned() -> Error {
    Error::Internal("control-plane lock poisoned".into())
}

impl std::ops::Deref for ControlGuard<'_> {
    type Target = ControlState;
    fn deref(&self) -> &ControlState {
        &self.state
    }
}

impl std::ops::DerefMut for ControlGuard<'_> {
    fn deref_mut(&mut self) -> &mut ControlState {
        &mut self.state
    }
}

impl Drop for ControlGuard<'_> {
    /// Cleared before the mutex is let go (the field drops after this).
    fn drop(&mut self) {
        self.held_by.store(0, Ordering::Release);
    }
}
