//! Support for the overlap tests of every export family: [`Refusals`] collects the calls that
//! were not refused as overlapping, [`Arena`] holds the buffers they point into.

use super::data::kp_out;
use super::status::kp_status;

/// For the exports' tests: collects the calls that were not refused as overlapping (or whose
/// message does not name both arguments), so that one run lists them all.
#[derive(Default)]
pub(crate) struct Refusals {
    missed: Vec<String>,
}

impl Refusals {
    /// `status` of `call` must be `KP_STATUS_OVERLAPPING_BUFFERS`, its message naming `names`.
    pub(crate) fn check(&mut self, call: &str, status: kp_status, names: &[&str]) {
        if status != kp_status::OverlappingBuffers {
            self.missed.push(format!("{call}: {status:?}"));
            return;
        }
        let mut buf = [0 as std::ffi::c_char; 512];
        // SAFETY: a writable buffer of its length; the length out-pointer is optional.
        let read = unsafe {
            super::ffi::kp_last_error_message(buf.as_mut_ptr(), buf.len(), std::ptr::null_mut())
        };
        assert_eq!(read, kp_status::Ok);
        // SAFETY: NUL-terminated by the call.
        let message = unsafe { std::ffi::CStr::from_ptr(buf.as_ptr()) }.to_string_lossy();
        for name in names {
            if !message.contains(name) {
                self.missed
                    .push(format!("{call}: {message:?} does not name {name}"));
            }
        }
    }

    pub(crate) fn finish(self) {
        assert!(self.missed.is_empty(), "not refused: {:#?}", self.missed);
    }
}

/// 1024 aligned bytes holding a known pattern, for the overlap tests of every export family:
/// each test's buffers lie in it, and a refused call must leave it unchanged.
pub(crate) struct Arena {
    words: Vec<u64>,
    snapshot: Vec<u64>,
    base: *mut u8,
}

impl Arena {
    pub(crate) fn new() -> Self {
        let mut words = vec![0u64; 128];
        let base = words.as_mut_ptr().cast::<u8>();
        // SAFETY: the 1024 bytes of `words`.
        unsafe { std::slice::from_raw_parts_mut(base, 1024) }
            .iter_mut()
            .enumerate()
            .for_each(|(i, b)| *b = i as u8);
        let snapshot = words.clone();
        Arena {
            words,
            snapshot,
            base,
        }
    }

    /// The arena's byte at `offset` (not checked: tests point past it on purpose).
    pub(crate) fn at(&self, offset: usize) -> *mut u8 {
        self.base.wrapping_add(offset)
    }

    /// An output of `capacity` bytes at `offset`, not yet written.
    pub(crate) fn out(&self, offset: usize, capacity: usize) -> kp_out {
        kp_out {
            data: self.at(offset),
            capacity,
            len: 0,
            status: u32::MAX,
        }
    }

    pub(crate) fn assert_unchanged(&self) {
        assert!(
            self.words == self.snapshot,
            "a refused call wrote into the arena"
        );
    }
}
