//! Secret bytes handed to the caller: plaintexts and plaintext data keys.

/// Plaintext or a plaintext data key returned to the caller. Zeroed when dropped; no `Clone`,
/// `Copy`, `PartialEq` or revealing `Debug`.
pub struct SecretBytes {
    bytes: Vec<u8>,
    /// Where the buffer goes back to when dropped ([`crate::recycled_buffers`]).
    home: crate::recycled_buffers::Home,
}

impl SecretBytes {
    /// `len` zero bytes, in a buffer from the engine's pool ([`crate::recycled_buffers`]) where
    /// `len` is one of the sizes it keeps.
    pub fn zeroed(len: usize) -> Self {
        Self::from_vec(crate::recycled_buffers::take_zeroed(len))
    }

    /// `len` bytes to be overwritten: zeros or an earlier, public ciphertext, from the engine's
    /// pool. For a caller that writes every byte before anyone reads them.
    pub(crate) fn to_overwrite(len: usize) -> Self {
        Self::from_vec(crate::recycled_buffers::take_to_overwrite(len))
    }

    /// Takes ownership of `bytes`; they are zeroed when this value drops.
    pub fn from_vec(bytes: Vec<u8>) -> Self {
        let home = crate::recycled_buffers::home_for(&bytes);
        SecretBytes { bytes, home }
    }

    /// The secret bytes.
    pub fn expose(&self) -> &[u8] {
        &self.bytes
    }

    /// The secret bytes, writable.
    pub fn expose_mut(&mut self) -> &mut [u8] {
        &mut self.bytes
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// Whether there are no bytes.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// Hands the bytes over in a wrapper that still zeroes them on drop.
    pub fn into_zeroizing(mut self) -> zeroize::Zeroizing<Vec<u8>> {
        zeroize::Zeroizing::new(std::mem::take(&mut self.bytes))
    }
}

impl Drop for SecretBytes {
    /// Zeroes the whole buffer, its spare capacity too, and gives it to the engine's pool if it
    /// is one of the sizes kept ([`crate::recycled_buffers::give_back_secret`]); frees it
    /// otherwise.
    fn drop(&mut self) {
        crate::recycled_buffers::give_back_secret(self.home, std::mem::take(&mut self.bytes));
    }
}

impl std::fmt::Debug for SecretBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SecretBytes({} bytes, redacted)", self.bytes.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_is_redacted() {
        let s = SecretBytes::from_vec(b"hunter2".to_vec());
        let shown = format!("{s:?}");
        assert!(!shown.contains("hunter2") && !shown.contains("104"));
        assert_eq!(shown, "SecretBytes(7 bytes, redacted)");
    }
}
