//! The ciphertext an allocating batch call answers with: bytes the caller owns, whose buffer
//! goes back to the engine's pool ([`crate::recycled_buffers`]) when dropped, so the next
//! batch of like size writes into memory already mapped instead of faulting fresh pages in.

use std::ops::{Deref, DerefMut};

use crate::recycled_buffers::Home;

/// One item's ciphertext blob from [`crate::Engine::encrypt_batch`]. Reads as a byte slice
/// (`&blob[..]`, `blob.len()`); [`CiphertextBlob::into_vec`] takes the bytes out of the pool's
/// keeping. A ciphertext is public, so the buffer is not zeroed on the way back; the next
/// result to use it overwrites every byte it exposes.
pub struct CiphertextBlob {
    bytes: Vec<u8>,
    /// Where the buffer goes back to: the thread that wrote it.
    home: Home,
}

impl CiphertextBlob {
    /// Wraps a buffer written on this thread.
    pub(crate) fn new(bytes: Vec<u8>) -> Self {
        let home = crate::recycled_buffers::home_for(&bytes);
        CiphertextBlob { bytes, home }
    }

    /// The bytes, as a vector that is the caller's alone: its buffer never returns to the pool.
    pub fn into_vec(mut self) -> Vec<u8> {
        std::mem::take(&mut self.bytes)
    }
}

impl Drop for CiphertextBlob {
    fn drop(&mut self) {
        crate::recycled_buffers::give_back(self.home, std::mem::take(&mut self.bytes));
    }
}

impl Clone for CiphertextBlob {
    /// A copy in a buffer of its own (not one the pool keeps).
    fn clone(&self) -> Self {
        CiphertextBlob {
            bytes: self.bytes.clone(),
            home: self.home,
        }
    }
}

impl PartialEq for CiphertextBlob {
    fn eq(&self, other: &Self) -> bool {
        self.bytes == other.bytes
    }
}

impl Eq for CiphertextBlob {}

impl std::hash::Hash for CiphertextBlob {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.bytes.hash(state);
    }
}

impl Deref for CiphertextBlob {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.bytes
    }
}

impl DerefMut for CiphertextBlob {
    fn deref_mut(&mut self) -> &mut [u8] {
        &mut self.bytes
    }
}

impl AsRef<[u8]> for CiphertextBlob {
    fn as_ref(&self) -> &[u8] {
        &self.bytes
    }
}

impl std::borrow::Borrow<[u8]> for CiphertextBlob {
    fn borrow(&self) -> &[u8] {
        &self.bytes
    }
}

impl From<CiphertextBlob> for Vec<u8> {
    fn from(blob: CiphertextBlob) -> Vec<u8> {
        blob.into_vec()
    }
}

impl PartialEq<[u8]> for CiphertextBlob {
    fn eq(&self, other: &[u8]) -> bool {
        self.bytes == other
    }
}

impl PartialEq<Vec<u8>> for CiphertextBlob {
    fn eq(&self, other: &Vec<u8>) -> bool {
        &self.bytes == other
    }
}

impl std::fmt::Debug for CiphertextBlob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CiphertextBlob({} bytes)", self.bytes.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_blob_reads_as_its_bytes_and_leaves_whole() {
        let mut bytes = crate::recycled_buffers::take_zeroed(40_000);
        bytes[0] = 7;
        let blob = CiphertextBlob::new(bytes);
        assert_eq!(blob.len(), 40_000);
        assert_eq!(blob[0], 7);
        assert_eq!(format!("{blob:?}"), "CiphertextBlob(40000 bytes)");
        let copy = blob.clone();
        assert_eq!(copy, blob);
        let bytes = blob.into_vec();
        assert_eq!(copy, bytes);
    }
}
