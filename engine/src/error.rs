//! The engine's one error type.
//!
//! Variants are named after the key management service's exceptions so that every binding (C,
//! Python, the network endpoint) maps them once, by [`Error::code`]. Messages say what to fix and
//! never contain key material or plaintext.

use std::fmt;

/// Every failure the engine reports. `Clone` because batch calls return one per item; no variant
/// carries secret data.
#[derive(Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The key, alias, version or other named resource does not exist.
    #[error("NotFound: {0}")]
    NotFound(String),
    /// The key is disabled.
    #[error("Disabled: {0}")]
    Disabled(String),
    /// The key's state does not allow this operation (for example, pending deletion).
    #[error("InvalidState: {0}")]
    InvalidState(String),
    /// The key is unavailable: its material cannot be used right now.
    #[error("KeyUnavailable: {0}")]
    KeyUnavailable(String),
    /// The ciphertext is malformed, was tampered with, or the encryption context differs.
    #[error("InvalidCiphertext: {0}")]
    InvalidCiphertext(String),
    /// A key was named for decryption that is not the key the ciphertext was encrypted under.
    #[error("IncorrectKey: {0}")]
    IncorrectKey(String),
    /// The key's usage or key spec does not allow this operation or algorithm.
    #[error("InvalidKeyUsage: {0}")]
    InvalidKeyUsage(String),
    /// A signature did not verify.
    #[error("InvalidSignature: {0}")]
    InvalidSignature(String),
    /// A MAC did not verify.
    #[error("InvalidMac: {0}")]
    InvalidMac(String),
    /// The resource (an alias, usually) already exists.
    #[error("AlreadyExists: {0}")]
    AlreadyExists(String),
    /// The alias name is malformed or reserved.
    #[error("InvalidAliasName: {0}")]
    InvalidAliasName(String),
    /// The ARN is malformed or names another region or account.
    #[error("InvalidArn: {0}")]
    InvalidArn(String),
    /// A pagination marker was not one this engine handed out.
    #[error("InvalidMarker: {0}")]
    InvalidMarker(String),
    /// A tag is malformed, reserved, or there are too many.
    #[error("Tag: {0}")]
    Tag(String),
    /// A quota was reached (number of keys, on-demand rotations, ...).
    #[error("LimitExceeded: {0}")]
    LimitExceeded(String),
    /// The request rate is over the configured quota.
    #[error("Throttling: {0}")]
    Throttling(String),
    /// The caller is not allowed to do this.
    #[error("AccessDenied: {0}")]
    AccessDenied(String),
    /// The request names something reserved to the service itself (an `alias/aws/` alias).
    #[error("NotAuthorized: {0}")]
    NotAuthorized(String),
    /// A key policy document is malformed, or would lock its author out.
    #[error("MalformedPolicyDocument: {0}")]
    MalformedPolicyDocument(String),
    /// A grant token is not one this engine issued.
    #[error("InvalidGrantToken: {0}")]
    InvalidGrantToken(String),
    /// A grant id does not name a grant of the key.
    #[error("InvalidGrantId: {0}")]
    InvalidGrantId(String),
    /// A request parameter is missing, out of range or malformed.
    #[error("Validation: {0}")]
    Validation(String),
    /// The operation or key spec is modelled but not supported by this build yet.
    #[error("UnsupportedOperation: {0}")]
    UnsupportedOperation(String),
    /// A dry run ([`crate::Engine::dry_run`]) whose real call would have succeeded.
    #[error("DryRunOperation: {0}")]
    DryRunOperation(String),
    /// The audit log cannot record requests, so requests are refused (fail closed).
    #[error("AuditUnavailable: {0}")]
    AuditUnavailable(String),
    /// Key memory could not be locked and the lock policy says that is an error.
    #[error("MemoryLock: {0}")]
    MemoryLock(String),
    /// The key store failed to read or write.
    #[error("Store: {0}")]
    Store(String),
    /// An internal invariant broke or the crypto library failed unexpectedly. A bug; report it.
    #[error("Internal: {0}")]
    Internal(String),
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl Error {
    /// The service's exception name for this error, as its API and SDKs spell it
    /// (`NotFoundException`, `KMSInvalidStateException`, ...). Bindings map on this.
    pub fn code(&self) -> &'static str {
        match self {
            Error::NotFound(_) => "NotFoundException",
            Error::Disabled(_) => "DisabledException",
            Error::InvalidState(_) => "KMSInvalidStateException",
            Error::KeyUnavailable(_) => "KeyUnavailableException",
            Error::InvalidCiphertext(_) => "InvalidCiphertextException",
            Error::IncorrectKey(_) => "IncorrectKeyException",
            Error::InvalidKeyUsage(_) => "InvalidKeyUsageException",
            Error::InvalidSignature(_) => "KMSInvalidSignatureException",
            Error::InvalidMac(_) => "KMSInvalidMacException",
            Error::AlreadyExists(_) => "AlreadyExistsException",
            Error::InvalidAliasName(_) => "InvalidAliasNameException",
            Error::InvalidArn(_) => "InvalidArnException",
            Error::InvalidMarker(_) => "InvalidMarkerException",
            Error::Tag(_) => "TagException",
            Error::LimitExceeded(_) => "LimitExceededException",
            Error::Throttling(_) => "ThrottlingException",
            Error::AccessDenied(_) => "AccessDeniedException",
            Error::NotAuthorized(_) => "NotAuthorizedException",
            Error::MalformedPolicyDocument(_) => "MalformedPolicyDocumentException",
            Error::InvalidGrantToken(_) => "InvalidGrantTokenException",
            Error::InvalidGrantId(_) => "InvalidGrantIdException",
            Error::Validation(_) => "ValidationException",
            Error::UnsupportedOperation(_) => "UnsupportedOperationException",
            Error::DryRunOperation(_) => "DryRunOperationException",
            Error::AuditUnavailable(_) => "KMSInternalException",
            Error::MemoryLock(_) => "KMSInternalException",
            Error::Store(_) => "KMSInternalException",
            Error::Internal(_) => "KMSInternalException",
        }
    }

    /// The human-readable message, without the variant prefix.
    pub fn message(&self) -> &str {
        match self {
            Error::NotFound(m)
            | Error::Disabled(m)
            | Error::InvalidState(m)
            | Error::KeyUnavailable(m)
            | Error::InvalidCiphertext(m)
            | Error::IncorrectKey(m)
            | Error::InvalidKeyUsage(m)
            | Error::InvalidSignature(m)
            | Error::InvalidMac(m)
            | Error::AlreadyExists(m)
            | Error::InvalidAliasName(m)
            | Error::InvalidArn(m)
            | Error::InvalidMarker(m)
            | Error::Tag(m)
            | Error::LimitExceeded(m)
            | Error::Throttling(m)
            | Error::AccessDenied(m)
            | Error::NotAuthorized(m)
            | Error::MalformedPolicyDocument(m)
            | Error::InvalidGrantToken(m)
            | Error::InvalidGrantId(m)
            | Error::Validation(m)
            | Error::UnsupportedOperation(m)
            | Error::DryRunOperation(m)
            | Error::AuditUnavailable(m)
            | Error::MemoryLock(m)
            | Error::Store(m)
            | Error::Internal(m) => m,
        }
    }
}

/// The engine's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Shorthand for a validation error with a formatted message.
macro_rules! validation {
    ($($arg:tt)*) => { $crate::error::Error::Validation(format!($($arg)*)) };
}
pub(crate) use validation;
