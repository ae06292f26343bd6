//! The envelope format's error messages, one place: kinds are the engine's (a malformed or
//! tampered message is `InvalidCiphertextException`, as in Decrypt), wording says what to fix and
//! never carries key bytes or plaintext.

use crate::error::Error;

pub(crate) fn malformed(what: impl std::fmt::Display) -> Error {
    Error::InvalidCiphertext(format!("the encrypted message is malformed: {what}"))
}

pub(crate) fn truncated() -> Error {
    Error::InvalidCiphertext(
        "the encrypted message is truncated: it ended before its final frame (or footer)".into(),
    )
}

pub(crate) fn trailing_bytes() -> Error {
    Error::InvalidCiphertext("the encrypted message has bytes after its end".into())
}

pub(crate) fn header_auth_failed() -> Error {
    Error::InvalidCiphertext(
        "the message header did not authenticate: it was altered, or the data key is wrong".into(),
    )
}

pub(crate) fn commitment_mismatch() -> Error {
    Error::InvalidCiphertext(
        "the message's key commitment does not match its data key: the message was altered".into(),
    )
}

pub(crate) fn frame_auth_failed(sequence: u32) -> Error {
    Error::InvalidCiphertext(format!(
        "frame {sequence} did not authenticate: the message was altered, truncated or reordered"
    ))
}

pub(crate) fn sequence(expected: u32, found: u32) -> Error {
    Error::InvalidCiphertext(format!(
        "frame sequence number {found} where {expected} was expected: frames were reordered, \
         dropped or duplicated"
    ))
}

pub(crate) fn signature_failed() -> Error {
    Error::InvalidSignature(
        "the message's ECDSA P-384 signature did not verify: the message was altered".into(),
    )
}

pub(crate) fn unsupported_suite(id: u16) -> Error {
    Error::InvalidCiphertext(format!(
        "algorithm suite 0x{id:04x} is not supported; supported: 0x0078, 0x0178, 0x0378, \
         0x0478, 0x0578"
    ))
}

pub(crate) fn too_many_edks(found: usize, max: usize) -> Error {
    Error::LimitExceeded(format!(
        "the message has {found} encrypted data keys, more than the configured maximum of {max}"
    ))
}

pub(crate) fn no_data_key(count: usize) -> Error {
    Error::IncorrectKey(format!(
        "none of the message's {count} encrypted data keys decrypts with the configured keyrings"
    ))
}

pub(crate) fn bad_data_key_length(len: usize) -> Error {
    Error::InvalidCiphertext(format!(
        "an unwrapped data key is {len} bytes; the suite needs 32"
    ))
}

pub(crate) fn reserved_context_key() -> Error {
    Error::Validation(
        "encryption context keys beginning with \"aws-crypto-\" are reserved to the message format"
            .into(),
    )
}

pub(crate) fn bad_frame_length(len: u32) -> Error {
    Error::Validation(format!(
        "frame length {len} is out of range: 1 to 2147483647 bytes"
    ))
}

pub(crate) fn over_limit(what: &str, limit: u64) -> Error {
    Error::LimitExceeded(format!(
        "{what} is over the configured limit of {limit} bytes"
    ))
}

pub(crate) fn io(err: std::io::Error) -> Error {
    Error::Validation(format!("I/O error in the envelope stream: {err}"))
}

/// An engine error carried through `std::io::Error` by the reader and writer adapters; recover it
/// with [`super::error_from_io`].
pub(crate) fn to_io(err: Error) -> std::io::Error {
    std::io::Error::other(err)
}
