//! The one status enum, and the mapping from the engine's errors.
//!
//! Codes come in numbered blocks; a code, once published, is never reused or renumbered. New
//! engine errors take the next free code of their family's block.
//!
//! The `kp_status` enum is written out because cbindgen reads it (it cannot see through macros);
//! everything else comes from the one table below (`statuses!`): each status's C name, the
//! engine [`kp::ErrorKind`] it reports (which also gives its exception name) and the mapping from
//! engine errors. The table generates an exhaustive `match` over `kp_status` (a status missing
//! from the table fails to compile) and `status_of` as an exhaustive `match` over
//! `ErrorKind` (an engine kind without a status fails to compile).

use std::ffi::{c_char, CStr};

use kp::ErrorKind;

/// What a call returned. `KP_STATUS_OK` (0) is success; every other value says why the call (or,
/// in a batch's `kp_out.status`, the item) failed, and `kp_last_error_message` says more.
///
/// Blocks (never reused): 0 success; 100-199 arguments the library refused before calling the
/// engine; 200-299 outcomes of the call itself; 1000-1999 the engine's errors, one code per
/// error, by family: 1000 resources, 1100 key state, 1200 cryptographic checks, 1300 names,
/// markers and tags, 1400 quotas, 1500 authorization, 1600 requests, 1700 key policies and
/// grants, 1800 the audit log, 1900 internal failures, 1950 custom key stores; 2000-2099 opening a durable store
/// (`kp_engine_new` with `kp_config_set_store`).
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
    /// `kp_ciphertext_len`, `kp_ciphertext_max_len`, `kp_plaintext_len` and
    /// `kp_blob_plaintext_len` give the sizes.
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
    /// A dry run (the engine's dry-run handle) whose real call would have succeeded; nothing was
    /// changed (DryRunOperationException).
    DryRunOperation = 1602,

    /// A key policy document is malformed, or would lock its author out of the key
    /// (MalformedPolicyDocumentException).
    MalformedPolicyDocument = 1700,
    /// A grant token is not one this engine issued (InvalidGrantTokenException).
    InvalidGrantToken = 1701,
    /// A grant id does not name a grant of the key (InvalidGrantIdException).
    InvalidGrantId = 1702,
    /// Imported key material is not the key's material, or does not fit its key spec
    /// (IncorrectKeyMaterialException).
    IncorrectKeyMaterial = 1703,
    /// An import token is malformed, altered, or was issued for another key
    /// (InvalidImportTokenException).
    InvalidImportToken = 1704,
    /// An import token's 24 hours are over (ExpiredImportTokenException).
    ExpiredImportToken = 1705,

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
    /// Reserved, kept so the code is never reused: an engine error the library had no code for.
    /// Every engine error kind now has its own status (the mapping is checked when the library is
    /// built), so no call returns it.
    UnknownEngineError = 1999,

    /// No custom key store has the id or name given (CustomKeyStoreNotFoundException).
    CustomKeyStoreNotFound = 1950,
    /// Another custom key store has the name given (CustomKeyStoreNameInUseException).
    CustomKeyStoreNameInUse = 1951,
    /// The custom key store's connection state does not allow the call
    /// (CustomKeyStoreInvalidStateException).
    CustomKeyStoreInvalidState = 1952,
    /// The custom key store still holds keys (CustomKeyStoreHasCMKsException).
    CustomKeyStoreHasCmks = 1953,
    /// No configured HSM has the cluster id given (CloudHsmClusterNotFoundException).
    CloudHsmClusterNotFound = 1954,
    /// Another custom key store uses the HSM given (CloudHsmClusterInUseException).
    CloudHsmClusterInUse = 1955,
    /// The HSM cannot be used as configured (CloudHsmClusterInvalidConfigurationException).
    CloudHsmClusterInvalidConfiguration = 1956,
    /// The trust anchor certificate does not match the HSM (IncorrectTrustAnchorException).
    IncorrectTrustAnchor = 1957,
    /// The shared key store changed under the call too often; nothing changed, retry
    /// (ConflictException).
    Conflict = 1958,
    /// The shared key store cannot be reached; retry (DependencyTimeoutException).
    StoreUnreachable = 1959,
    /// The XKS proxy cannot be reached (XksProxyUriUnreachableException).
    XksProxyUriUnreachable = 1960,
    /// The XKS proxy's answer breaks the XKS API (XksProxyInvalidResponseException).
    XksProxyInvalidResponse = 1961,
    /// The external key store's proxy settings do not work
    /// (XksProxyInvalidConfigurationException).
    XksProxyInvalidConfiguration = 1962,
    /// The XKS proxy rejected the credential
    /// (XksProxyIncorrectAuthenticationCredentialException).
    XksProxyIncorrectAuthenticationCredential = 1963,
    /// Another external key store uses the proxy URI (XksProxyUriInUseException).
    XksProxyUriInUse = 1964,
    /// The XKS proxy does not know the external key (XksKeyNotFoundException).
    XksKeyNotFound = 1965,
    /// The external key cannot be used (XksKeyInvalidConfigurationException).
    XksKeyInvalidConfiguration = 1966,
    /// Another key uses the external key (XksKeyAlreadyInUseException).
    XksKeyAlreadyInUse = 1967,

    /// The store address is malformed (`sqlite:` with no path, no scheme).
    StoreBadAddress = 2000,
    /// The store address has a scheme this library does not know (such as `postgres://`).
    StoreUnknownScheme = 2001,
    /// There is no store at the address, and the configuration says open only.
    StoreMissing = 2002,
    /// The data directory or its files cannot be written (permissions, a read-only mount).
    StoreReadOnly = 2003,
    /// The store was written by a newer keyplane (a newer schema version); use that version.
    StoreNewerSchema = 2004,
    /// No root key where the configuration points: a missing key file, an unset environment
    /// variable, a root-key callback that failed.
    StoreRootKeyMissing = 2005,
    /// The root key given does not open this store (a wrong key, or not a root key at all).
    StoreWrongRootKey = 2006,
    /// The root key file may be read by group or others (or is a link, or not a regular file).
    StoreRootKeyPermissions = 2007,
    /// The store is damaged, truncated, not a keyplane store, or was rolled back to an older copy.
    StoreDamaged = 2008,
}

/// The status for an engine error.
pub(crate) fn status_of(error: &kp::Error) -> kp_status {
    kp_status::of_kind(error.kind())
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

/// The status for a failure to name or open a store.
pub(crate) fn status_of_open(error: &keyplane_store_address::OpenError) -> kp_status {
    use keyplane_store_address::ErrorKind as K;
    match error.kind() {
        K::BadAddress => kp_status::StoreBadAddress,
        K::UnknownScheme => kp_status::StoreUnknownScheme,
        K::StoreMissing => kp_status::StoreMissing,
        K::ReadOnly => kp_status::StoreReadOnly,
        K::NewerSchema => kp_status::StoreNewerSchema,
        K::RootKeyMissing => kp_status::StoreRootKeyMissing,
        K::WrongRootKey => kp_status::StoreWrongRootKey,
        K::RootKeyPermissions => kp_status::StoreRootKeyPermissions,
        K::Damaged => kp_status::StoreDamaged,
        // The audit log's setup, and whatever else: as the engine error it carries.
        _ => status_of(error.error()),
    }
}

/// `exception_kind!()` is `None`; `exception_kind!(Kind)` is `Some(ErrorKind::Kind)`.
macro_rules! exception_kind {
    () => {
        None
    };
    ($kind:ident) => {
        Some(ErrorKind::$kind)
    };
}

/// The one table of statuses. Each row: the `kp_status` variant, its C name, and either
/// `from Kind` (the engine's errors of that kind get this status, and its exception name is the
/// kind's) or `named Kind` (not an engine error, but answered with that kind's exception name), or
/// neither (not an engine error: no exception name).
macro_rules! statuses {
    ($($variant:ident = $c_name:literal $(from $kind:ident)? $(named $like:ident)?,)+) => {
        impl kp_status {
            /// Every status, in declaration order.
            pub(crate) const ALL: &'static [kp_status] = &[$(kp_status::$variant),+];

            /// The status's C name (`KP_STATUS_NOT_FOUND`, ...).
            pub(crate) const fn c_name(self) -> &'static CStr {
                match self { $(kp_status::$variant => $c_name),+ }
            }

            /// The engine error kind whose exception name this status answers with, if any.
            pub(crate) const fn exception_kind(self) -> Option<ErrorKind> {
                match self { $(kp_status::$variant => exception_kind!($($kind)? $($like)?)),+ }
            }

            /// The status of every engine error of `kind`.
            pub(crate) const fn of_kind(kind: ErrorKind) -> kp_status {
                match kind { $($(ErrorKind::$kind => kp_status::$variant,)?)+ }
            }
        }
    };
}

statuses! {
    Ok = c"KP_STATUS_OK",
    NullParameter = c"KP_STATUS_NULL_PARAMETER",
    InvalidHandle = c"KP_STATUS_INVALID_HANDLE",
    InvalidLength = c"KP_STATUS_INVALID_LENGTH",
    InvalidUtf8 = c"KP_STATUS_INVALID_UTF8",
    InvalidEnumValue = c"KP_STATUS_INVALID_ENUM_VALUE",
    BufferTooSmall = c"KP_STATUS_BUFFER_TOO_SMALL",
    InvalidArgument = c"KP_STATUS_INVALID_ARGUMENT",
    OverlappingBuffers = c"KP_STATUS_OVERLAPPING_BUFFERS",
    BatchItemsFailed = c"KP_STATUS_BATCH_ITEMS_FAILED",
    Panic = c"KP_STATUS_PANIC",
    NotFound = c"KP_STATUS_NOT_FOUND" from NotFound,
    AlreadyExists = c"KP_STATUS_ALREADY_EXISTS" from AlreadyExists,
    Disabled = c"KP_STATUS_DISABLED" from Disabled,
    InvalidState = c"KP_STATUS_INVALID_STATE" from InvalidState,
    KeyUnavailable = c"KP_STATUS_KEY_UNAVAILABLE" from KeyUnavailable,
    InvalidCiphertext = c"KP_STATUS_INVALID_CIPHERTEXT" from InvalidCiphertext,
    IncorrectKey = c"KP_STATUS_INCORRECT_KEY" from IncorrectKey,
    InvalidKeyUsage = c"KP_STATUS_INVALID_KEY_USAGE" from InvalidKeyUsage,
    InvalidSignature = c"KP_STATUS_INVALID_SIGNATURE" from InvalidSignature,
    InvalidMac = c"KP_STATUS_INVALID_MAC" from InvalidMac,
    InvalidAliasName = c"KP_STATUS_INVALID_ALIAS_NAME" from InvalidAliasName,
    InvalidArn = c"KP_STATUS_INVALID_ARN" from InvalidArn,
    InvalidMarker = c"KP_STATUS_INVALID_MARKER" from InvalidMarker,
    Tag = c"KP_STATUS_TAG" from Tag,
    LimitExceeded = c"KP_STATUS_LIMIT_EXCEEDED" from LimitExceeded,
    Throttling = c"KP_STATUS_THROTTLING" from Throttling,
    AccessDenied = c"KP_STATUS_ACCESS_DENIED" from AccessDenied,
    NotAuthorized = c"KP_STATUS_NOT_AUTHORIZED" from NotAuthorized,
    Validation = c"KP_STATUS_VALIDATION" from Validation,
    UnsupportedOperation = c"KP_STATUS_UNSUPPORTED_OPERATION" from UnsupportedOperation,
    DryRunOperation = c"KP_STATUS_DRY_RUN_OPERATION" from DryRunOperation,
    MalformedPolicyDocument = c"KP_STATUS_MALFORMED_POLICY_DOCUMENT" from MalformedPolicyDocument,
    InvalidGrantToken = c"KP_STATUS_INVALID_GRANT_TOKEN" from InvalidGrantToken,
    InvalidGrantId = c"KP_STATUS_INVALID_GRANT_ID" from InvalidGrantId,
    IncorrectKeyMaterial = c"KP_STATUS_INCORRECT_KEY_MATERIAL" from IncorrectKeyMaterial,
    InvalidImportToken = c"KP_STATUS_INVALID_IMPORT_TOKEN" from InvalidImportToken,
    ExpiredImportToken = c"KP_STATUS_EXPIRED_IMPORT_TOKEN" from ExpiredImportToken,
    AuditUnavailable = c"KP_STATUS_AUDIT_UNAVAILABLE" from AuditUnavailable,
    // The audit log's own key errors (`status_of_audit`), answered as the log's failures are.
    AuditKey = c"KP_STATUS_AUDIT_KEY" named AuditUnavailable,
    MemoryLock = c"KP_STATUS_MEMORY_LOCK" from MemoryLock,
    Store = c"KP_STATUS_STORE" from Store,
    Internal = c"KP_STATUS_INTERNAL" from Internal,
    // Kept for the ABI (codes are never reused): every engine kind of this build has its own
    // status, so no error gets this one any more.
    UnknownEngineError = c"KP_STATUS_UNKNOWN_ENGINE_ERROR" named Internal,
    CustomKeyStoreNotFound = c"KP_STATUS_CUSTOM_KEY_STORE_NOT_FOUND" from CustomKeyStoreNotFound,
    CustomKeyStoreNameInUse = c"KP_STATUS_CUSTOM_KEY_STORE_NAME_IN_USE" from CustomKeyStoreNameInUse,
    CustomKeyStoreInvalidState = c"KP_STATUS_CUSTOM_KEY_STORE_INVALID_STATE" from CustomKeyStoreInvalidState,
    CustomKeyStoreHasCmks = c"KP_STATUS_CUSTOM_KEY_STORE_HAS_CMKS" from CustomKeyStoreHasCmks,
    CloudHsmClusterNotFound = c"KP_STATUS_CLOUD_HSM_CLUSTER_NOT_FOUND" from CloudHsmClusterNotFound,
    CloudHsmClusterInUse = c"KP_STATUS_CLOUD_HSM_CLUSTER_IN_USE" from CloudHsmClusterInUse,
    CloudHsmClusterInvalidConfiguration = c"KP_STATUS_CLOUD_HSM_CLUSTER_INVALID_CONFIGURATION" from CloudHsmClusterInvalidConfiguration,
    IncorrectTrustAnchor = c"KP_STATUS_INCORRECT_TRUST_ANCHOR" from IncorrectTrustAnchor,
    Conflict = c"KP_STATUS_CONFLICT" from Conflict,
    StoreUnreachable = c"KP_STATUS_STORE_UNREACHABLE" from StoreUnreachable,
    XksProxyUriUnreachable = c"KP_STATUS_XKS_PROXY_URI_UNREACHABLE" from XksProxyUriUnreachable,
    XksProxyInvalidResponse = c"KP_STATUS_XKS_PROXY_INVALID_RESPONSE" from XksProxyInvalidResponse,
    XksProxyInvalidConfiguration = c"KP_STATUS_XKS_PROXY_INVALID_CONFIGURATION" from XksProxyInvalidConfiguration,
    XksProxyIncorrectAuthenticationCredential = c"KP_STATUS_XKS_PROXY_INCORRECT_AUTHENTICATION_CREDENTIAL" from XksProxyIncorrectAuthenticationCredential,
    XksProxyUriInUse = c"KP_STATUS_XKS_PROXY_URI_IN_USE" from XksProxyUriInUse,
    XksKeyNotFound = c"KP_STATUS_XKS_KEY_NOT_FOUND" from XksKeyNotFound,
    XksKeyInvalidConfiguration = c"KP_STATUS_XKS_KEY_INVALID_CONFIGURATION" from XksKeyInvalidConfiguration,
    XksKeyAlreadyInUse = c"KP_STATUS_XKS_KEY_ALREADY_IN_USE" from XksKeyAlreadyInUse,
    StoreBadAddress = c"KP_STATUS_STORE_BAD_ADDRESS",
    StoreUnknownScheme = c"KP_STATUS_STORE_UNKNOWN_SCHEME",
    StoreMissing = c"KP_STATUS_STORE_MISSING",
    StoreReadOnly = c"KP_STATUS_STORE_READ_ONLY",
    StoreNewerSchema = c"KP_STATUS_STORE_NEWER_SCHEMA",
    StoreRootKeyMissing = c"KP_STATUS_STORE_ROOT_KEY_MISSING",
    StoreWrongRootKey = c"KP_STATUS_STORE_WRONG_ROOT_KEY",
    StoreRootKeyPermissions = c"KP_STATUS_STORE_ROOT_KEY_PERMISSIONS",
    StoreDamaged = c"KP_STATUS_STORE_DAMAGED",
}

impl kp_status {
    /// The status whose value is `value`, if any.
    pub(crate) fn from_u32(value: u32) -> Option<kp_status> {
        kp_status::ALL.iter().copied().find(|s| *s as u32 == value)
    }
}

/// The name of a status, e.g. "KP_STATUS_NOT_FOUND", or "KP_STATUS_UNKNOWN" for a value that is
/// no status of this library.
///
/// Ownership: the string is static; do not free it. Thread safety: callable from any thread.
#[no_mangle]
pub extern "C" fn kp_status_name(status: u32) -> *const c_char {
    kp_status::from_u32(status)
        .map_or(c"KP_STATUS_UNKNOWN", kp_status::c_name)
        .as_ptr()
}

/// The service's exception name for a status from the engine block (1000-1999), e.g.
/// "NotFoundException", as `keyplane::Error::code()` spells it; NULL for other statuses and for
/// values that are no status of this library.
///
/// Ownership: the string is static; do not free it. Thread safety: callable from any thread.
#[no_mangle]
pub extern "C" fn kp_status_exception_name(status: u32) -> *const c_char {
    kp_status::from_u32(status)
        .and_then(kp_status::exception_kind)
        .map_or(std::ptr::null(), |kind| kind.code_c_str().as_ptr())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn exception_name(status: u32) -> Option<&'static str> {
        let name = kp_status_exception_name(status);
        // SAFETY: kp_status_exception_name returns NULL or a static NUL-terminated string.
        (!name.is_null()).then(|| unsafe { CStr::from_ptr(name) }.to_str().unwrap())
    }

    /// `InvalidUtf8` -> `KP_STATUS_INVALID_UTF8`, as cbindgen renames the variants.
    fn screaming_snake(variant: &str) -> String {
        let mut out = String::from("KP_STATUS");
        for c in variant.chars() {
            if c.is_ascii_uppercase() {
                out.push('_');
            }
            out.push(c.to_ascii_uppercase());
        }
        out
    }

    #[test]
    fn every_engine_error_kind_has_its_own_status_and_exception_name() {
        let mut seen = HashSet::new();
        for &kind in ErrorKind::ALL {
            let error = kp::Error::new(kind, "m");
            let status = status_of(&error);
            assert_ne!(status, kp_status::UnknownEngineError, "{kind:?}");
            assert!((1000..1999).contains(&(status as u32)), "{kind:?}");
            assert!(seen.insert(status as u32), "{kind:?} shares a status");
            assert_eq!(status.exception_kind(), Some(kind), "{kind:?}");
            assert_eq!(exception_name(status as u32), Some(kind.code()), "{kind:?}");
        }
        assert_eq!(
            status_of(&kp::Error::DryRunOperation("m".into())),
            kp_status::DryRunOperation
        );
        assert_eq!(kp_status::DryRunOperation as u32, 1602);
    }

    #[test]
    fn every_status_has_its_c_name_and_an_exception_name_only_in_the_engine_block() {
        let mut values = HashSet::new();
        for &status in kp_status::ALL {
            let value = status as u32;
            assert!(values.insert(value), "{status:?} listed twice");
            assert_eq!(kp_status::from_u32(value), Some(status));
            // SAFETY: kp_status_name returns a static NUL-terminated string.
            let name = unsafe { CStr::from_ptr(kp_status_name(value)) };
            assert_eq!(name, status.c_name());
            assert_eq!(
                name.to_str().unwrap(),
                screaming_snake(&format!("{status:?}"))
            );
            let engine_block = (1000..2000).contains(&value);
            assert_eq!(exception_name(value).is_some(), engine_block, "{status:?}");
        }
        // SAFETY: as above.
        let unknown = unsafe { CStr::from_ptr(kp_status_name(7)) };
        assert_eq!(unknown, c"KP_STATUS_UNKNOWN");
        assert_eq!(
            exception_name(kp_status::AuditKey as u32),
            Some("KMSInternalException")
        );
    }

    #[test]
    fn unassigned_values_have_no_name_and_no_exception_name() {
        let assigned: HashSet<u32> = kp_status::ALL.iter().map(|s| *s as u32).collect();
        for value in (0..3000).chain([u32::MAX, 1 << 31]) {
            if assigned.contains(&value) {
                continue;
            }
            assert_eq!(exception_name(value), None, "{value}");
            // SAFETY: kp_status_name returns a static NUL-terminated string.
            let name = unsafe { CStr::from_ptr(kp_status_name(value)) };
            assert_eq!(name, c"KP_STATUS_UNKNOWN", "{value}");
        }
    }

    #[test]
    fn the_header_declares_every_status() {
        let header = include_str!("../../../include/keyplane.h");
        for &status in kp_status::ALL {
            let line = format!(
                "  {} = {},\n",
                status.c_name().to_str().unwrap(),
                status as u32
            );
            assert!(
                header.contains(&line),
                "include/keyplane.h lacks {line:?}: run scripts/test-c --update-header"
            );
        }
    }
}
