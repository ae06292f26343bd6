//! Secret bytes handed to the caller: plaintexts and plaintext data keys.

use zeroize::Zeroize;

/// Plaintext or a plaintext data key returned to the caller. Zeroed when dropped; no `Clone`,
/// `Copy`, `PartialEq` or revealing `Debug`.
pub struct SecretBytes(Vec<u8>);

impl SecretBytes {
    /// `len` zero bytes.
    pub fn zeroed(len: usize) -> Self {
        SecretBytes(vec![0u8; len])
    }

    /// Takes ownership of `bytes`; they are zeroed when this value drops.
    pub fn from_vec(bytes: Vec<u8>) -> Self {
        SecretBytes(bytes)
    }

    /// The secret bytes.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    /// The secret bytes, writable.
    pub fn expose_mut(&mut self) -> &mut [u8] {
        &mut self.0
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are no bytes.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Hands the bytes over in a wrapper that still zeroes them on drop.
    pub fn into_zeroizing(mut self) -> zeroize::Zeroizing<Vec<u8>> {
        zeroize::Zeroizing::new(std::mem::take(&mut self.0))
    }
}

impl Drop for SecretBytes {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl std::fmt::Debug for SecretBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SecretBytes({} bytes, redacted)", self.0.len())
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
