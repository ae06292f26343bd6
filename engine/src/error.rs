//! The engine's one error type: a kind ([`ErrorKind`]) and a message.
//!
//! Kinds are named after the key management service's exceptions so that every binding (C,
//! Python, the network endpoint) maps them once, by [`ErrorKind`] (matched exhaustively, so a new
//! kind fails to compile until each binding maps it) or by [`Error::code`]. Messages say what to
//! fix and never contain key material or plaintext.
//!
//! The list of kinds below is the one table: it generates [`Error`] (one `Variant(String)` per
//! kind, so `Error::NotFound(format!(..))` builds one and `matches!(e, Error::NotFound(_))` tests
//! for one), [`ErrorKind`], [`ErrorKind::ALL`] and the exception names.

use std::ffi::CStr;
use std::fmt;

macro_rules! errors {
    ($( $(#[doc = $doc:literal])+ $variant:ident => $code:literal, )+) => {
        /// Every failure the engine reports: one variant per [`ErrorKind`], each holding its
        /// message. `Clone` because batch calls return one per item; no variant carries secret
        /// data.
        #[derive(Clone, PartialEq, Eq)]
        #[non_exhaustive]
        pub enum Error {
            $( $(#[doc = $doc])+ $variant(String), )+
        }

        /// What kind of failure an [`Error`] is, without its message. Exhaustive on purpose: a
        /// binding's `match kind { .. }` has no wildcard, so a new kind is a compile error in
        /// every binding until it is mapped.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum ErrorKind {
            $( $(#[doc = $doc])+ $variant, )+
        }

        impl ErrorKind {
            /// Every kind, in declaration order.
            pub const ALL: &'static [ErrorKind] = &[$(ErrorKind::$variant),+];

            /// The kind's name, as [`Error`]'s `Display` prefixes the message with
            /// (`NotFound`, `InvalidState`, ...).
            pub const fn name(self) -> &'static str {
                match self { $(ErrorKind::$variant => stringify!($variant)),+ }
            }

            /// The service's exception name for this kind, as its API and SDKs spell it
            /// (`NotFoundException`, `KMSInvalidStateException`, ...). Bindings map on this.
            pub const fn code(self) -> &'static str {
                match self { $(ErrorKind::$variant => $code),+ }
            }

            /// [`ErrorKind::code`] as a NUL-terminated string, for C callers (the same text,
            /// not a second copy of the names).
            pub const fn code_c_str(self) -> &'static CStr {
                match self { $(ErrorKind::$variant => nul_terminated(concat!($code, "\0"))),+ }
            }
        }

        impl Error {
            /// An error of `kind` with `message`.
            pub fn new(kind: ErrorKind, message: impl Into<String>) -> Error {
                let message = message.into();
                match kind { $(ErrorKind::$variant => Error::$variant(message)),+ }
            }

            /// The error's kind.
            pub fn kind(&self) -> ErrorKind {
                match self { $(Error::$variant(_) => ErrorKind::$variant),+ }
            }

            /// The human-readable message, without the kind's prefix.
            pub fn message(&self) -> &str {
                match self { $(Error::$variant(message) => message),+ }
            }
        }
    };
}

/// `text` (which must end in its only NUL) as a `CStr`, checked at compile time.
const fn nul_terminated(text: &'static str) -> &'static CStr {
    match CStr::from_bytes_with_nul(text.as_bytes()) {
        Ok(c) => c,
        Err(_) => panic!("an exception name contains a NUL byte"),
    }
}

errors! {
    /// The key, alias, version or other named resource does not exist.
    NotFound => "NotFoundException",
    /// The key is disabled.
    Disabled => "DisabledException",
    /// The key's state does not allow this operation (for example, pending deletion).
    InvalidState => "KMSInvalidStateException",
    /// The key is unavailable: its material cannot be used right now.
    KeyUnavailable => "KeyUnavailableException",
    /// The ciphertext is malformed, was tampered with, or the encryption context differs.
    InvalidCiphertext => "InvalidCiphertextException",
    /// A key was named for decryption that is not the key the ciphertext was encrypted under.
    IncorrectKey => "IncorrectKeyException",
    /// The key's usage or key spec does not allow this operation or algorithm.
    InvalidKeyUsage => "InvalidKeyUsageException",
    /// A signature did not verify.
    InvalidSignature => "KMSInvalidSignatureException",
    /// A MAC did not verify.
    InvalidMac => "KMSInvalidMacException",
    /// The resource (an alias, usually) already exists.
    AlreadyExists => "AlreadyExistsException",
    /// The alias name is malformed or reserved.
    InvalidAliasName => "InvalidAliasNameException",
    /// The ARN is malformed or names another region or account.
    InvalidArn => "InvalidArnException",
    /// A pagination marker was not one this engine handed out.
    InvalidMarker => "InvalidMarkerException",
    /// A tag is malformed, reserved, or there are too many.
    Tag => "TagException",
    /// A quota was reached (number of keys, on-demand rotations, ...).
    LimitExceeded => "LimitExceededException",
    /// The request rate is over the configured quota.
    Throttling => "ThrottlingException",
    /// The caller is not allowed to do this.
    AccessDenied => "AccessDeniedException",
    /// The request names something reserved to the service itself (an `alias/aws/` alias).
    NotAuthorized => "NotAuthorizedException",
    /// A key policy document is malformed, or would lock its author out.
    MalformedPolicyDocument => "MalformedPolicyDocumentException",
    /// A grant token is not one this engine issued.
    InvalidGrantToken => "InvalidGrantTokenException",
    /// A grant id does not name a grant of the key.
    InvalidGrantId => "InvalidGrantIdException",
    /// Imported key material is not the material the key had, or does not fit its key spec.
    IncorrectKeyMaterial => "IncorrectKeyMaterialException",
    /// An import token is malformed, altered, or was issued for another key.
    InvalidImportToken => "InvalidImportTokenException",
    /// An import token's 24 hours are over.
    ExpiredImportToken => "ExpiredImportTokenException",
    /// A request parameter is missing, out of range or malformed.
    Validation => "ValidationException",
    /// The operation or key spec is modelled but not supported by this build yet.
    UnsupportedOperation => "UnsupportedOperationException",
    /// No custom key store has the id or name given.
    CustomKeyStoreNotFound => "CustomKeyStoreNotFoundException",
    /// Another custom key store of the account has the name given.
    CustomKeyStoreNameInUse => "CustomKeyStoreNameInUseException",
    /// The custom key store's connection state does not allow the operation (or it is not
    /// connected, for a key in it).
    CustomKeyStoreInvalidState => "CustomKeyStoreInvalidStateException",
    /// The custom key store still holds keys, so it cannot be deleted.
    CustomKeyStoreHasCmks => "CustomKeyStoreHasCMKsException",
    /// No configured HSM (PKCS#11 module and token) has the `CloudHsmClusterId` given.
    CloudHsmClusterNotFound => "CloudHsmClusterNotFoundException",
    /// Another custom key store already uses the HSM (`CloudHsmClusterId`) given.
    CloudHsmClusterInUse => "CloudHsmClusterInUseException",
    /// The HSM cannot be used as configured (its token or module is missing or refuses us).
    CloudHsmClusterInvalidConfiguration => "CloudHsmClusterInvalidConfigurationException",
    /// The trust anchor certificate does not match the HSM, or cannot be checked.
    IncorrectTrustAnchor => "IncorrectTrustAnchorException",
    /// The XKS proxy cannot be reached (connection refused, TLS failure, no answer in time).
    XksProxyUriUnreachable => "XksProxyUriUnreachableException",
    /// The XKS proxy answered something the XKS proxy API does not allow.
    XksProxyInvalidResponse => "XksProxyInvalidResponseException",
    /// The external key store's proxy settings do not work (its URI path, its connectivity).
    XksProxyInvalidConfiguration => "XksProxyInvalidConfigurationException",
    /// The XKS proxy rejected the external key store's authentication credential.
    XksProxyIncorrectAuthenticationCredential => "XksProxyIncorrectAuthenticationCredentialException",
    /// Another external key store uses the same proxy endpoint and URI path.
    XksProxyUriInUse => "XksProxyUriInUseException",
    /// The XKS proxy does not know the `XksKeyId` given.
    XksKeyNotFound => "XksKeyNotFoundException",
    /// The external key is not an enabled AES-256 key that encrypts and decrypts.
    XksKeyInvalidConfiguration => "XksKeyInvalidConfigurationException",
    /// Another key of the external key store already uses the `XksKeyId` given.
    XksKeyAlreadyInUse => "XksKeyAlreadyInUseException",
    /// A dry run ([`crate::Engine::dry_run`]) whose real call would have succeeded.
    DryRunOperation => "DryRunOperationException",
    /// The shared key store changed under a control-plane change more often than the engine
    /// retries it (another node kept changing it at the same time); nothing was changed. Retry.
    Conflict => "ConflictException",
    /// The shared key store cannot be reached (or did not answer in time), so control-plane
    /// calls are refused; a node keeps serving the keys it holds until its staleness bound.
    StoreUnreachable => "DependencyTimeoutException",
    /// The audit log cannot record requests, so requests are refused (fail closed).
    AuditUnavailable => "KMSInternalException",
    /// Key memory could not be locked and the lock policy says that is an error.
    MemoryLock => "KMSInternalException",
    /// The key store failed to read or write.
    Store => "KMSInternalException",
    /// An internal invariant broke or the crypto library failed unexpectedly. A bug; report it.
    Internal => "KMSInternalException",
}

impl Error {
    /// The service's exception name for this error, as its API and SDKs spell it
    /// (`NotFoundException`, `KMSInvalidStateException`, ...): [`ErrorKind::code`] of its kind.
    pub fn code(&self) -> &'static str {
        self.kind().code()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind().name(), self.message())
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl std::error::Error for Error {}

/// The engine's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Shorthand for a validation error with a formatted message.
macro_rules! validation {
    ($($arg:tt)*) => { $crate::error::Error::Validation(format!($($arg)*)) };
}
pub(crate) use validation;

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn every_kind_builds_its_own_variant_and_keeps_its_message() {
        let mut names = HashSet::new();
        for &kind in ErrorKind::ALL {
            let error = Error::new(kind, format!("about {kind:?}"));
            assert_eq!(error.kind(), kind);
            assert_eq!(error.message(), format!("about {kind:?}"));
            assert_eq!(error.code(), kind.code());
            assert_eq!(
                error.to_string(),
                format!("{}: about {kind:?}", kind.name())
            );
            assert_eq!(format!("{error:?}"), error.to_string());
            assert_eq!(format!("{kind:?}"), kind.name());
            assert!(names.insert(kind.name()), "{kind:?} listed twice");
        }
        assert_eq!(names.len(), ErrorKind::ALL.len());
    }

    #[test]
    fn display_is_the_kind_then_the_message() {
        assert_eq!(
            Error::NotFound("no key".into()).to_string(),
            "NotFound: no key"
        );
        assert_eq!(
            Error::InvalidState("pending deletion".into()).to_string(),
            "InvalidState: pending deletion"
        );
        assert_eq!(
            Error::Internal(String::new()).code(),
            "KMSInternalException"
        );
        assert!(matches!(
            Error::new(ErrorKind::DryRunOperation, "x"),
            Error::DryRunOperation(m) if m == "x"
        ));
    }

    #[test]
    fn c_exception_names_are_the_codes() {
        for &kind in ErrorKind::ALL {
            assert_eq!(kind.code_c_str().to_str(), Ok(kind.code()), "{kind:?}");
        }
    }

    /// Every code is an exception of the vendored service model, or one of the few the service
    /// answers without modelling them (common errors every AWS service shares, and the
    /// `alias/aws/` refusal).
    #[test]
    fn codes_are_the_service_models_exceptions() {
        let model: serde_json::Value = serde_json::from_str(include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/model/kms-service-2.json"
        )))
        .expect("the vendored service model parses");
        let shapes = model["shapes"].as_object().expect("shapes");
        let unmodelled = [
            "AccessDeniedException",
            "NotAuthorizedException",
            "ThrottlingException",
            "ValidationException",
        ];
        for &kind in ErrorKind::ALL {
            let code = kind.code();
            let modelled = shapes
                .get(code)
                .is_some_and(|shape| shape["exception"].as_bool() == Some(true));
            assert!(
                modelled || unmodelled.contains(&code),
                "{kind:?}: {code} is no exception of the service"
            );
        }
    }
}
