//! A directory that lives as long as the test process, for what a suite makes once and its tests
//! share (a SoftHSMv2 token directory, which the module reads once per process). Held in a
//! `static`, a `tempfile::TempDir` is never dropped, so every run left one behind in /tmp (token
//! files with their keys among them); this one is removed when the process exits.
#![allow(unsafe_code)] // reason: atexit, to remove the directories at the process's exit.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, Once, PoisonError};

/// The process that made the directories, and the directories to remove when it exits.
static MADE: Mutex<(u32, Vec<PathBuf>)> = Mutex::new((0, Vec::new()));

/// Makes a fresh directory `prefix-PID-N` under the system's temporary directory, removed with
/// everything in it when this process exits normally (the end of a test binary's run). A forked
/// child leaves it to its parent; a process killed by a signal leaves it behind.
pub fn process_dir(prefix: &str) -> &'static Path {
    static REGISTER: Once = Once::new();
    REGISTER.call_once(|| {
        MADE.lock().unwrap_or_else(PoisonError::into_inner).0 = std::process::id();
        // SAFETY: registers a function that takes no arguments and does not unwind.
        let registered = unsafe { libc::atexit(remove_made) };
        assert_eq!(registered, 0, "atexit failed");
    });
    let mut made = MADE.lock().unwrap_or_else(PoisonError::into_inner);
    // A name no directory has: a dead process of the same PID may have left one.
    let dir = (made.1.len()..)
        .map(|n| std::env::temp_dir().join(format!("{prefix}-{}-{n}", std::process::id())))
        .find(|dir| match std::fs::create_dir(dir) {
            Ok(()) => true,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => false,
            Err(e) => panic!("{}: {e}", dir.display()),
        })
        .expect("a free name");
    made.1.push(dir.clone());
    Box::leak(dir.into_boxed_path())
}

/// Removes the directories, in the process that made them only: a forked child that exits
/// normally must not take them from its parent.
extern "C" fn remove_made() {
    let mut made = MADE.lock().unwrap_or_else(PoisonError::into_inner);
    if made.0 != std::process::id() {
        return;
    }
    for dir in made.1.drain(..) {
        let _ = std::fs::remove_dir_all(dir);
    }
}
