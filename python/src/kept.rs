//! Batch output buffers kept from call to call ([`keyplane::BatchOutputs`]), so that
//! `encrypt_batch` and `decrypt_batch` allocate nothing per item on the Rust side and, once a
//! batch of a given shape has run, touch no fresh page: 1000 × 16 KiB results in one vector per
//! item were 16 MB freed together, which glibc handed back to the kernel, and the next batch
//! faulted every page in again (most of its time in the kernel).
//!
//! A pool, not one buffer behind a lock: Python threads calling batches on one engine at once each
//! take a buffer of their own (a new one when the pool is empty) and put it back after the call.
//! What the pool keeps is bounded ([`KEPT_BYTES`]); a buffer that would exceed the bound is
//! dropped (and zeroed, as `BatchOutputs` is on drop).

use std::sync::Mutex;

use keyplane::BatchOutputs;

/// Most bytes of buffer one pool keeps between calls (a batch of 1000 × 16 KiB takes 16 MiB).
pub(crate) const KEPT_BYTES: usize = 64 << 20;

/// Kept buffers for one kind of output.
#[derive(Default)]
pub(crate) struct Pool {
    kept: Mutex<Vec<BatchOutputs>>,
}

impl Pool {
    /// A kept buffer, or a new one when none is free.
    pub(crate) fn take(&self) -> BatchOutputs {
        self.kept
            .lock()
            .ok()
            .and_then(|mut kept| kept.pop())
            .unwrap_or_default()
    }

    /// Puts `out` back for the next call, unless the pool would then hold more than
    /// [`KEPT_BYTES`]; then it is dropped (zeroed and freed).
    pub(crate) fn give(&self, out: BatchOutputs) {
        let Ok(mut kept) = self.kept.lock() else {
            return;
        };
        let held: usize = kept.iter().map(BatchOutputs::capacity).sum();
        if held.saturating_add(out.capacity()) <= KEPT_BYTES {
            kept.push(out);
        }
    }
}

/// The kept buffers of one engine handle: ciphertexts and plaintexts apart, so that a buffer that
/// held plaintext is only ever reused for plaintext.
#[derive(Default)]
pub(crate) struct Kept {
    pub(crate) ciphertexts: Pool,
    pub(crate) plaintexts: Pool,
}
