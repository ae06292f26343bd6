//! How the single calls that write into a caller's buffer ([`crate::Engine::encrypt_into`],
//! [`crate::Engine::decrypt_into`]) fail: the buffer was too short for the output, or the request
//! failed as the allocating call would have. A binding tells the two apart by type (the C ABI
//! answers the first with its own status), never by an error's text.

use std::fmt;

use super::{DecryptedInto, EncryptedInto};
use crate::error::Error;

/// An answer that says how many bytes of the caller's buffer its call wrote.
pub(crate) trait Written {
    fn written(&self) -> usize;
}

impl Written for EncryptedInto {
    fn written(&self) -> usize {
        self.len
    }
}

impl Written for DecryptedInto {
    fn written(&self) -> usize {
        self.len
    }
}

/// Why a call that writes into a caller's buffer failed.
#[derive(Clone, PartialEq, Eq)]
pub enum IntoError {
    /// The buffer is shorter than the output, which takes `needed` bytes; nothing was written.
    /// Known before any cryptographic work where the size is (a blob's plaintext, a symmetric
    /// key's blob), otherwise once the output was made (an RSA key's ciphertext or plaintext; the
    /// blob of a key in an external key store, whose length its proxy's answer decides).
    OutputTooSmall { needed: usize },
    /// The request failed, with the error the allocating call would have answered.
    Failed(Error),
}

impl From<Error> for IntoError {
    fn from(error: Error) -> Self {
        IntoError::Failed(error)
    }
}

/// A too-short buffer is a ValidationException: what the audit record says, and what a caller
/// that does not tell the two apart gets.
impl From<IntoError> for Error {
    fn from(error: IntoError) -> Self {
        match error {
            IntoError::OutputTooSmall { needed } => Error::Validation(format!(
                "the output buffer is too short: the output takes {needed} bytes"
            )),
            IntoError::Failed(error) => error,
        }
    }
}

impl fmt::Display for IntoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IntoError::Failed(error) => fmt::Display::fmt(error, f),
            too_small => fmt::Display::fmt(&Error::from(too_small.clone()), f),
        }
    }
}

impl fmt::Debug for IntoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl std::error::Error for IntoError {}
