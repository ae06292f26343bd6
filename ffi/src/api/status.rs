//! The one status enum, and the mapping from the engine's errors.
//!
//! Codes come in numbered blocks; a code, once published, is never reused or renumbered. New
//! engine errors take the next free code of their family's block.

use std::ffi::{c_char, CStr};

/// What a call returned. `KP_STATUS_OK` (0) is success; every other value says why the call (or,
/// in a batch's `kp_out.status`, the item) failed, and `kp_last_error_message` says more.
///
/// Blocks (never reused): 0 success; 100-199 arguments the library refused before calling the
/// engine; 200-299 outcomes of the call itself; 1000-1999 the engine's errors, one code per
/// error, by family: 1000 resources, 1100 key state, 1200 cryptographic checks, 1300 names,
/// markers and tags, 1400 quotas, 1500 authorization, 1600 requests, 1700 key policies and
/// grants, 1800 the audit log, 1900 internal failures.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum kp_status {
    /// Success.
    Ok = 0,

    /// A required pointer argument (or item field) was NULL.
    NullParameter = 100,
    /// A handle was not a live handle of the expected type: freed, of another type, or not one
    /// this library made. Detected on a best-effort basis; using a freed handle is undefined.
    InvalidHandle = 101,
    /// A length or count was zero where that is not allowed, or absurdly large
    /// (over `KP_MAX_LENGTH` or `KP_MAX_BATCH_ITEMS`).
    InvalidLength = 102,
    /// A string argument was not valid UTF-8.
    InvalidUtf8 = 103,
    /// An enumeration argument (or item field) held a value the enumeration does not have.
    InvalidEnumValue = 104,
    /// An output buffer is smaller than the output; nothing was written. The `*_sizes` calls,
    /// `kp_ciphertext_len` and `kp_plaintext_len` give the exact sizes.
    BufferTooSmall = 105,
    /// A pointer was misaligned for its type, or an argument was otherwise malformed.
    InvalidArgument = 106,
    /// An output buffer overlaps an input buffer (or another output) of the same call, such as
    /// encrypting in place (`plaintext == ciphertext`); nothing was read or written. The last
    /// error message names the arguments.
    OverlappingBuffers = 107,

    /// A batch ran, and at least one item failed: each item's `kp_out.status` says which and why
    /// (the last error message names the first failed item). Successful items' outputs are written.
    BatchItemsFailed = 200,
    /// The library caught a panic (a bug in keyplane; please report it). Nothing was written.
    Panic = 299,

    /// The key, alias or other named resource does not exist (NotFoundException).
    NotFound = 1000,
    /// The resource, usually an alias, already exists (AlreadyExistsException).
    AlreadyExists = 1001,

    /// The key is disabled (DisabledException).
    Disabled = 1100,
    /// The key's state does not allow the operation, e.g. pending deletion
    /// (KMSInvalidStateException).
    InvalidState = 1101,
    /// The key's material cannot be used right now (KeyUnavailableException).
    KeyUnavailable = 1102,

    /// The ciphertext is malformed or was tampered with, or the encryption context differs
    /// (InvalidCiphertextException).
    InvalidCiphertext = 1200,
    /// The ciphertext was not encrypted under the key named for decryption
    /// (IncorrectKeyException).
    IncorrectKey = 1201,
    /// The key's usage or spec does not allow the operation or algorithm
    /// (InvalidKeyUsageException).
    InvalidKeyUsage = 1202,
    /// A signature did not verify (KMSInvalidSignatureException).
    InvalidSignature = 1203,
    /// A MAC did not verify (KMSInvalidMacException).
    InvalidMac = 1204,

    /// The alias name is malformed or reserved (InvalidAliasNameException).
    InvalidAliasName = 1300,
    /// The ARN is malformed or names another region or account (InvalidArnException).
    InvalidArn = 1301,
    /// A pagination marker was not one this engine handed out (InvalidMarkerException).
    InvalidMarker = 1302,
    /// A tag is malformed or reserved, or there are too many (TagException).
    Tag = 1303,

    /// A quota was reached: number of keys, on-demand rotations (LimitExceededException).
    LimitExceeded = 1400,
    /// The request rate is over the configured quota (ThrottlingException).
    Throttling = 1401,

    /// The caller is not allowed to do this (AccessDeniedException).
    AccessDenied = 1500,
    /// The request names something reserved to the service, such as an `alias/aws/` alias name
    /// (NotAuthorizedException).
    NotAuthorized = 1501,

    /// A request parameter is missing, out of range or malformed (ValidationException).
    Validation = 1600,
    /// The operation or key spec is not supported by this build (UnsupportedOperationException).
    UnsupportedOperation = 1601,

    /// A key policy document is malformed, or would lock its author out of the key
    /// (MalformedPolicyDocumentException).
    MalformedPolicyDocument = 1700,
    /// A grant token is not one this engine issued (InvalidGrantTokenException).
    InvalidGrantToken = 1701,
    /// A grant id does not name a grant of the key (InvalidGrantIdException).
    InvalidGrantId = 1702,

    /// The audit log cannot be opened, read, written or synced; while it is failed the engine
    /// refuses every request, since none could be recorded (KMSInternalException).
    AuditUnavailable = 1800,
    /// The audit signing key, or a public key given to verify a log, cannot be used
    /// (KMSInternalException).
    AuditKey = 1801,

    /// Key memory could not be locked and the lock policy requires it (KMSInternalException).
    MemoryLock = 1900,
    /// The key store failed to read or write (KMSInternalException).
    Store = 1901,
    /// An internal invariant broke or the crypto library failed (KMSInternalException).
    Internal = 1902,
    /// An engine error this version of the library has no code for (a newer engine); the last
    /// error message names it.
    UnknownEngineError = 1999,
}

/// The status for an engine error.
pub(crate) fn status_of(error: &kp::Error) -> kp_status {
    use kp::Error as E;
    match error {
        E::NotFound(_) => kp_status::NotFound,
        E::AlreadyExists(_) => kp_status::AlreadyExists,
        E::Disabled(_) => kp_status::Disabled,
        E::InvalidState(_) => kp_status::InvalidState,
        E::KeyUnavailable(_) => kp_status::KeyUnavailable,
        E::InvalidCiphertext(_) => kp_status::InvalidCiphertext,
        E::IncorrectKey(_) => kp_status::IncorrectKey,
        E::InvalidKeyUsage(_) => kp_status::InvalidKeyUsage,
        E::InvalidSignature(_) => kp_status::InvalidSignature,
        E::InvalidMac(_) => kp_status::InvalidMac,
        E::InvalidAliasName(_) => kp_status::InvalidAliasName,
        E::InvalidArn(_) => kp_status::InvalidArn,
        E::InvalidMarker(_) => kp_status::InvalidMarker,
        E::Tag(_) => kp_status::Tag,
        E::LimitExceeded(_) => kp_status::LimitExceeded,
        E::Throttling(_) => kp_status::Throttling,
        E::AccessDenied(_) => kp_status::AccessDenied,
        E::NotAuthorized(_) => kp_status::NotAuthorized,
        E::Validation(_) => kp_status::Validation,
        E::UnsupportedOperation(_) => kp_status::UnsupportedOperation,
        E::MalformedPolicyDocument(_) => kp_status::MalformedPolicyDocument,
        E::InvalidGrantToken(_) => kp_status::InvalidGrantToken,
        E::InvalidGrantId(_) => kp_status::InvalidGrantId,
        E::AuditUnavailable(_) => kp_status::AuditUnavailable,
        E::MemoryLock(_) => kp_status::MemoryLock,
        E::Store(_) => kp_status::Store,
        E::Internal(_) => kp_status::Internal,
        #[allow(unreachable_patterns)] // `kp::Error` is non_exhaustive: newer engines add errors.
        _ => kp_status::UnknownEngineError,
    }
}

/// The status for an error of the audit log (`keyplane::audit::AuditError`), from the calls that
/// reach the log directly (verification, flushing, key generation).
pub(crate) fn status_of_audit(error: &kp::audit::AuditError) -> kp_status {
    match error {
        kp::audit::AuditError::Key(_) => kp_status::AuditKey,
        // Io, Closed, Tampered, Serialize, Config, and whatever a newer engine adds.
        _ => kp_status::AuditUnavailable,
    }
}

/// Every status with its C name, in declaration order.
pub(crate) const STATUS_NAMES: &[(kp_status, &CStr)] = &[
    (kp_status::Ok, c"KP_STATUS_OK"),
    (kp_status::NullParameter, c"KP_STATUS_NULL_PARAMETER"),
    (kp_status::InvalidHandle, c"KP_STATUS_INVALID_HANDLE"),
    (kp_status::InvalidLength, c"KP_STATUS_INVALID_LENGTH"),
    (kp_status::InvalidUtf8, c"KP_STATUS_INVALID_UTF8"),
    (kp_status::InvalidEnumValue, c"KP_STATUS_INVALID_ENUM_VALUE"),
    (kp_status::BufferTooSmall, c"KP_STATUS_BUFFER_TOO_SMALL"),
    (kp_status::InvalidArgument, c"KP_STATUS_INVALID_ARGUMENT"),
    (
        kp_status::OverlappingBuffers,
        c"KP_STATUS_OVERLAPPING_BUFFERS",
    ),
    (kp_status::BatchItemsFailed, c"KP_STATUS_BATCH_ITEMS_FAILED"),
    (kp_status::Panic, c"KP_STATUS_PANIC"),
    (kp_status::NotFound, c"KP_STATUS_NOT_FOUND"),
    (kp_status::AlreadyExists, c"KP_STATUS_ALREADY_EXISTS"),
    (kp_status::Disabled, c"KP_STATUS_DISABLED"),
    (kp_status::InvalidState, c"KP_STATUS_INVALID_STATE"),
    (kp_status::KeyUnavailable, c"KP_STATUS_KEY_UNAVAILABLE"),
    (
        kp_status::InvalidCiphertext,
        c"KP_STATUS_INVALID_CIPHERTEXT",
    ),
    (kp_status::IncorrectKey, c"KP_STATUS_INCORRECT_KEY"),
    (kp_status::InvalidKeyUsage, c"KP_STATUS_INVALID_KEY_USAGE"),
    (kp_status::InvalidSignature, c"KP_STATUS_INVALID_SIGNATURE"),
    (kp_status::InvalidMac, c"KP_STATUS_INVALID_MAC"),
    (kp_status::InvalidAliasName, c"KP_STATUS_INVALID_ALIAS_NAME"),
    (kp_status::InvalidArn, c"KP_STATUS_INVALID_ARN"),
    (kp_status::InvalidMarker, c"KP_STATUS_INVALID_MARKER"),
    (kp_status::Tag, c"KP_STATUS_TAG"),
    (kp_status::LimitExceeded, c"KP_STATUS_LIMIT_EXCEEDED"),
    (kp_status::Throttling, c"KP_STATUS_THROTTLING"),
    (kp_status::AccessDenied, c"KP_STATUS_ACCESS_DENIED"),
    (kp_status::NotAuthorized, c"KP_STATUS_NOT_AUTHORIZED"),
    (kp_status::Validation, c"KP_STATUS_VALIDATION"),
    (
        kp_status::UnsupportedOperation,
        c"KP_STATUS_UNSUPPORTED_OPERATION",
    ),
    (
        kp_status::MalformedPolicyDocument,
        c"KP_STATUS_MALFORMED_POLICY_DOCUMENT",
    ),
    (
        kp_status::InvalidGrantToken,
        c"KP_STATUS_INVALID_GRANT_TOKEN",
    ),
    (kp_status::InvalidGrantId, c"KP_STATUS_INVALID_GRANT_ID"),
    (kp_status::AuditUnavailable, c"KP_STATUS_AUDIT_UNAVAILABLE"),
    (kp_status::AuditKey, c"KP_STATUS_AUDIT_KEY"),
    (kp_status::MemoryLock, c"KP_STATUS_MEMORY_LOCK"),
    (kp_status::Store, c"KP_STATUS_STORE"),
    (kp_status::Internal, c"KP_STATUS_INTERNAL"),
    (
        kp_status::UnknownEngineError,
        c"KP_STATUS_UNKNOWN_ENGINE_ERROR",
    ),
];

/// The name of a status, e.g. "KP_STATUS_NOT_FOUND", or "KP_STATUS_UNKNOWN" for a value that is
/// no status of this library.
///
/// Ownership: the string is static; do not free it. Thread safety: callable from any thread.
#[no_mangle]
pub extern "C" fn kp_status_name(status: u32) -> *const c_char {
    STATUS_NAMES
        .iter()
        .find(|(s, _)| *s as u32 == status)
        .map_or(c"KP_STATUS_UNKNOWN", |(_, name)| name)
        .as_ptr()
}

/// The service's exception name for a status from the engine block (1000-1999), e.g.
/// "NotFoundException", as `keyplane::Error::code()` spells it; NULL for other statuses.
///
/// Ownership: the string is static; do not free it. Thread safety: callable from any thread.
#[no_mangle]
pub extern "C" fn kp_status_exception_name(status: u32) -> *const c_char {
    let name: Option<&CStr> = match status {
        1000 => Some(c"NotFoundException"),
        1001 => Some(c"AlreadyExistsException"),
        1100 => Some(c"DisabledException"),
        1101 => Some(c"KMSInvalidStateException"),
        1102 => Some(c"KeyUnavailableException"),
        1200 => Some(c"InvalidCiphertextException"),
        1201 => Some(c"IncorrectKeyException"),
        1202 => Some(c"InvalidKeyUsageException"),
        1203 => Some(c"KMSInvalidSignatureException"),
        1204 => Some(c"KMSInvalidMacException"),
        1300 => Some(c"InvalidAliasNameException"),
        1301 => Some(c"InvalidArnException"),
        1302 => Some(c"InvalidMarkerException"),
        1303 => Some(c"TagException"),
        1400 => Some(c"LimitExceededException"),
        1401 => Some(c"ThrottlingException"),
        1500 => Some(c"AccessDeniedException"),
        1501 => Some(c"NotAuthorizedException"),
        1600 => Some(c"ValidationException"),
        1601 => Some(c"UnsupportedOperationException"),
        1700 => Some(c"MalformedPolicyDocumentException"),
        1701 => Some(c"InvalidGrantTokenException"),
        1702 => Some(c"InvalidGrantIdException"),
        1800 | 1801 => Some(c"KMSInternalException"),
        1900..=1999 => Some(c"KMSInternalException"),
        _ => None,
    };
    name.map_or(std::ptr::null(), CStr::as_ptr)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kp::Error as E;

    fn every_error() -> Vec<kp::Error> {
        let m = || "m".to_string();
        vec![
            E::NotFound(m()),
            E::Disabled(m()),
            E::InvalidState(m()),
            E::KeyUnavailable(m()),
            E::InvalidCiphertext(m()),
            E::IncorrectKey(m()),
            E::InvalidKeyUsage(m()),
            E::InvalidSignature(m()),
            E::InvalidMac(m()),
            E::AlreadyExists(m()),
            E::InvalidAliasName(m()),
            E::InvalidArn(m()),
            E::InvalidMarker(m()),
            E::Tag(m()),
            E::LimitExceeded(m()),
            E::Throttling(m()),
            E::AccessDenied(m()),
            E::NotAuthorized(m()),
            E::Validation(m()),
            E::UnsupportedOperation(m()),
            E::MalformedPolicyDocument(m()),
            E::InvalidGrantToken(m()),
            E::InvalidGrantId(m()),
            E::AuditUnavailable(m()),
            E::MemoryLock(m()),
            E::Store(m()),
            E::Internal(m()),
        ]
    }

    #[test]
    fn every_engine_error_has_its_own_code_and_exception_name() {
        let mut seen = std::collections::HashSet::new();
        for error in every_error() {
            let status = status_of(&error);
            assert_ne!(status, kp_status::UnknownEngineError, "{error:?}");
            assert!((1000..1999).contains(&(status as u32)), "{error:?}");
            assert!(seen.insert(status as u32), "{error:?} shares a code");
            // SAFETY: kp_status_exception_name returns a static NUL-terminated string here.
            let name = unsafe { CStr::from_ptr(kp_status_exception_name(status as u32)) };
            assert_eq!(name.to_str().unwrap(), error.code(), "{error:?}");
        }
    }

    #[test]
    fn names_are_unique_and_cover_every_status() {
        let mut codes = std::collections::HashSet::new();
        for (status, name) in STATUS_NAMES {
            assert!(codes.insert(*status as u32));
            // SAFETY: kp_status_name returns a static NUL-terminated string.
            let got = unsafe { CStr::from_ptr(kp_status_name(*status as u32)) };
            assert_eq!(got, *name);
        }
        assert_eq!(codes.len(), 40);
        // SAFETY: as above.
        let unknown = unsafe { CStr::from_ptr(kp_status_name(7)) };
        assert_eq!(unknown, c"KP_STATUS_UNKNOWN");
        assert!(kp_status_exception_name(0).is_null());
    }
}
