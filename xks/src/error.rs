//! Every failure of an XKS proxy call (spec section "Error codes": the proxy's error names and
//! HTTP statuses, and the table under "KMS Considerations" of what each becomes in the service),
//! as one enum of failure kinds and one enum of the service exceptions they turn into.

/// What the service call that needed the proxy was, which decides the exception (the spec's
/// table lists a different exception per kind of call for most failures).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KmsCallKind {
    /// CreateCustomKeyStore, UpdateCustomKeyStore, ConnectCustomKeyStore (GetHealthStatus).
    KeyStore,
    /// CreateKey in an external key store (GetKeyMetadata).
    CreateKey,
    /// Encrypt, Decrypt, ReEncrypt, GenerateDataKey* and DescribeKey.
    Cryptographic,
}

/// The service exceptions an XKS failure becomes (names as in the service model).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[allow(clippy::enum_variant_names)]
pub enum KmsException {
    XksProxyUriUnreachableException,
    XksProxyInvalidResponseException,
    XksProxyInvalidConfigurationException,
    XksProxyIncorrectAuthenticationCredentialException,
    XksKeyNotFoundException,
    XksKeyInvalidConfigurationException,
    CustomKeyStoreInvalidStateException,
    KMSInvalidStateException,
}

impl KmsException {
    /// The exception's name on the wire.
    pub fn name(self) -> &'static str {
        match self {
            KmsException::XksProxyUriUnreachableException => "XksProxyUriUnreachableException",
            KmsException::XksProxyInvalidResponseException => "XksProxyInvalidResponseException",
            KmsException::XksProxyInvalidConfigurationException => {
                "XksProxyInvalidConfigurationException"
            }
            KmsException::XksProxyIncorrectAuthenticationCredentialException => {
                "XksProxyIncorrectAuthenticationCredentialException"
            }
            KmsException::XksKeyNotFoundException => "XksKeyNotFoundException",
            KmsException::XksKeyInvalidConfigurationException => {
                "XksKeyInvalidConfigurationException"
            }
            KmsException::CustomKeyStoreInvalidStateException => {
                "CustomKeyStoreInvalidStateException"
            }
            KmsException::KMSInvalidStateException => "KMSInvalidStateException",
        }
    }
}

/// Why an XKS call failed: one variant per row of the spec's KMS table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum XksErrorKind {
    /// The proxy answered `ValidationException` (400).
    Validation,
    /// `InvalidStateException` (400): the external key or key store is disabled.
    InvalidState,
    /// `InvalidCiphertextException` (400): wrong AAD, IV, tag or ciphertext.
    InvalidCiphertext,
    /// `InvalidKeyUsageException` (400).
    InvalidKeyUsage,
    /// `AuthenticationFailedException` (401): the proxy rejected our SigV4 signature.
    AuthenticationFailed,
    /// `AccessDeniedException` (403): the proxy's secondary authorization said no.
    AccessDenied,
    /// `KeyNotFoundException` (404).
    KeyNotFound,
    /// `InvalidUriPathException` (404).
    InvalidUriPath,
    /// `ThrottlingException` (429).
    Throttling,
    /// `UnsupportedOperationException` (501).
    UnsupportedOperation,
    /// `DependencyTimeoutException` (503).
    DependencyTimeout,
    /// `InternalException` (500).
    Internal,
    /// The proxy's Encrypt answer cannot be right: a CDIV that does not match, a ciphertext of
    /// another length than the plaintext, a tag or IV of a size the spec forbids.
    InvalidCiphertextReturned,
    /// No TCP connection (refused, unroutable, name not resolved).
    TcpConnect,
    /// No TLS session (certificate not trusted, wrong name, handshake failed).
    TlsConnect,
    /// No complete answer within the timeout.
    Timeout,
    /// An answer that is not the spec's: not HTTP, an error status without a JSON `errorName`, an
    /// unknown error name, a body not of the operation's shape.
    MalformedResponse,
}

impl XksErrorKind {
    /// The kind for an `errorName` the proxy sent; `None` for a name the spec does not define.
    pub fn from_error_name(name: &str) -> Option<XksErrorKind> {
        Some(match name {
            "ValidationException" => XksErrorKind::Validation,
            "InvalidStateException" => XksErrorKind::InvalidState,
            "InvalidCiphertextException" => XksErrorKind::InvalidCiphertext,
            "InvalidKeyUsageException" => XksErrorKind::InvalidKeyUsage,
            "AuthenticationFailedException" => XksErrorKind::AuthenticationFailed,
            "AccessDeniedException" => XksErrorKind::AccessDenied,
            "KeyNotFoundException" => XksErrorKind::KeyNotFound,
            "InvalidUriPathException" => XksErrorKind::InvalidUriPath,
            "ThrottlingException" => XksErrorKind::Throttling,
            "UnsupportedOperationException" => XksErrorKind::UnsupportedOperation,
            "DependencyTimeoutException" => XksErrorKind::DependencyTimeout,
            "InternalException" => XksErrorKind::Internal,
            _ => return None,
        })
    }

    /// The proxy's `errorName` and HTTP status for this kind; `None` for the client-side kinds.
    pub fn proxy_error(self) -> Option<(&'static str, u16)> {
        Some(match self {
            XksErrorKind::Validation => ("ValidationException", 400),
            XksErrorKind::InvalidState => ("InvalidStateException", 400),
            XksErrorKind::InvalidCiphertext => ("InvalidCiphertextException", 400),
            XksErrorKind::InvalidKeyUsage => ("InvalidKeyUsageException", 400),
            XksErrorKind::AuthenticationFailed => ("AuthenticationFailedException", 401),
            XksErrorKind::AccessDenied => ("AccessDeniedException", 403),
            XksErrorKind::KeyNotFound => ("KeyNotFoundException", 404),
            XksErrorKind::InvalidUriPath => ("InvalidUriPathException", 404),
            XksErrorKind::Throttling => ("ThrottlingException", 429),
            XksErrorKind::UnsupportedOperation => ("UnsupportedOperationException", 501),
            XksErrorKind::DependencyTimeout => ("DependencyTimeoutException", 503),
            XksErrorKind::Internal => ("InternalException", 500),
            _ => return None,
        })
    }

    /// The service exception this failure becomes during `call`, per the spec's table. Where the
    /// table has no entry for a kind of call: XksProxyInvalidResponseException for the key store
    /// operations, CustomKeyStoreInvalidStateException for CreateKey, KMSInvalidStateException
    /// for cryptographic operations. The table's "XksKeyInvalidResponseException" (for
    /// UnsupportedOperationException during CreateKey) is not in the service model; it becomes
    /// XksProxyInvalidResponseException.
    pub fn exception(self, call: KmsCallKind) -> KmsException {
        use KmsCallKind::*;
        use KmsException::*;
        use XksErrorKind::*;
        match (self, call) {
            (_, Cryptographic) => KMSInvalidStateException,
            (InvalidState | InvalidKeyUsage, CreateKey) => XksKeyInvalidConfigurationException,
            (KeyNotFound, CreateKey) => XksKeyNotFoundException,
            (AccessDenied | InvalidCiphertext | InvalidCiphertextReturned, CreateKey) => {
                KMSInvalidStateException
            }
            (UnsupportedOperation, CreateKey) => XksProxyInvalidResponseException,
            (_, CreateKey) => CustomKeyStoreInvalidStateException,
            (AuthenticationFailed, KeyStore) => XksProxyIncorrectAuthenticationCredentialException,
            (InvalidUriPath, KeyStore) => XksProxyInvalidConfigurationException,
            (DependencyTimeout | Throttling | TcpConnect | TlsConnect | Timeout, KeyStore) => {
                XksProxyUriUnreachableException
            }
            (_, KeyStore) => XksProxyInvalidResponseException,
        }
    }

    /// The message the service gives its caller for this failure (the spec's table; the proxy's
    /// own `errorMessage` is never passed on).
    pub fn kms_message(self) -> &'static str {
        match self {
            XksErrorKind::Validation | XksErrorKind::MalformedResponse => {
                "AWS KMS cannot interpret the response from the external key store proxy. If you \
                 see this error repeatedly, report it to your external key store proxy \
                 administrator."
            }
            XksErrorKind::InvalidState => {
                "The external key associated with this KMS key in an external key store is not \
                 enabled in the external key manager. Enable the external key in the external \
                 key manager and retry the request."
            }
            XksErrorKind::InvalidCiphertext => {
                "The external key store proxy rejected the request because the specified \
                 ciphertext or encryption context is corrupted, missing, or otherwise invalid."
            }
            XksErrorKind::InvalidCiphertextReturned => {
                "The ciphertext that the external key store proxy submitted for decryption, or \
                 the encryption context, is corrupted, missing, or otherwise invalid."
            }
            XksErrorKind::InvalidKeyUsage => {
                "The external key associated with this KMS key in an external key store does not \
                 support the requested operation. Enable the operation on the key in your \
                 external key manager, and try the request again."
            }
            XksErrorKind::AuthenticationFailed => {
                "The external key store proxy rejected the request because it could not \
                 authenticate AWS KMS. Verify the XKS proxy authentication credentials for your \
                 external key store and update if necessary."
            }
            XksErrorKind::AccessDenied => {
                "The external key store proxy denied access to the operation. Verify that the \
                 user and the external key are both authorized for this operation, and try the \
                 request again."
            }
            XksErrorKind::KeyNotFound => {
                "The external key associated with this KMS key in an external key store was not \
                 found in its external key manager. If the external key ID associated with this \
                 KMS key is incorrect, create a new KMS key with the correct external key ID."
            }
            XksErrorKind::InvalidUriPath => {
                "The external key store proxy rejected the request because of an invalid URI \
                 path. Verify the URI path for your external key store and update if necessary."
            }
            XksErrorKind::UnsupportedOperation => {
                "The external key store proxy rejected the request because it does not support \
                 the requested operation. If you see this error repeatedly, report it to your \
                 external key store proxy administrator."
            }
            XksErrorKind::DependencyTimeout => {
                "The external key store proxy did not respond to the request in the time \
                 allotted. Retry the request. If you see this error repeatedly, report it to \
                 your external key store proxy administrator."
            }
            XksErrorKind::Throttling => {
                "The external key store proxy rejected the request due to a very high request \
                 rate. Reduce the frequency of your calls using KMS keys in this external key \
                 store."
            }
            XksErrorKind::Internal => {
                "The external key store proxy rejected the request because it cannot \
                 communicate with the external key manager. Verify that the external key store \
                 proxy configuration is correct and that the external key manager is available."
            }
            XksErrorKind::TcpConnect => {
                "AWS KMS cannot communicate with the external key store proxy. This might be a \
                 transient network issue. If you see this error repeatedly, verify that your \
                 external key store proxy is active and is connected to the network, and that \
                 its endpoint URI is correct in your external keystore."
            }
            XksErrorKind::TlsConnect => {
                "AWS KMS cannot establish a TLS connection to the external key store proxy. \
                 Verify the TLS configuration, including its certificate."
            }
            XksErrorKind::Timeout => {
                "AWS KMS rejected the request because the external key store proxy did not \
                 respond in time. Retry the request. If you see this error repeatedly, report it \
                 to your external key store proxy administrator."
            }
        }
    }
}

/// A failed XKS call: its kind, and a detail for logs (the proxy's `errorMessage`, the socket
/// error); the detail never holds plaintext or secrets.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{kind:?}: {detail}")]
pub struct XksError {
    pub kind: XksErrorKind,
    pub detail: String,
}

impl XksError {
    pub fn new(kind: XksErrorKind, detail: impl Into<String>) -> Self {
        XksError {
            kind,
            detail: detail.into(),
        }
    }

    /// The service exception for this failure during `call`.
    pub fn exception(&self, call: KmsCallKind) -> KmsException {
        self.kind.exception(call)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_proxy_error_name_round_trips() {
        for kind in [
            XksErrorKind::Validation,
            XksErrorKind::InvalidState,
            XksErrorKind::InvalidCiphertext,
            XksErrorKind::InvalidKeyUsage,
            XksErrorKind::AuthenticationFailed,
            XksErrorKind::AccessDenied,
            XksErrorKind::KeyNotFound,
            XksErrorKind::InvalidUriPath,
            XksErrorKind::Throttling,
            XksErrorKind::UnsupportedOperation,
            XksErrorKind::DependencyTimeout,
            XksErrorKind::Internal,
        ] {
            let (name, _) = kind.proxy_error().unwrap();
            assert_eq!(XksErrorKind::from_error_name(name), Some(kind));
        }
        assert_eq!(XksErrorKind::from_error_name("Nope"), None);
    }

    #[test]
    fn the_spec_table_rows() {
        use KmsCallKind::*;
        use KmsException::*;
        let e = |k: XksErrorKind, c| k.exception(c);
        assert_eq!(
            e(XksErrorKind::Validation, KeyStore),
            XksProxyInvalidResponseException
        );
        assert_eq!(
            e(XksErrorKind::Validation, CreateKey),
            CustomKeyStoreInvalidStateException
        );
        assert_eq!(
            e(XksErrorKind::InvalidState, CreateKey),
            XksKeyInvalidConfigurationException
        );
        assert_eq!(
            e(XksErrorKind::InvalidKeyUsage, CreateKey),
            XksKeyInvalidConfigurationException
        );
        assert_eq!(
            e(XksErrorKind::AuthenticationFailed, KeyStore),
            XksProxyIncorrectAuthenticationCredentialException
        );
        assert_eq!(
            e(XksErrorKind::AccessDenied, CreateKey),
            KMSInvalidStateException
        );
        assert_eq!(
            e(XksErrorKind::KeyNotFound, CreateKey),
            XksKeyNotFoundException
        );
        assert_eq!(
            e(XksErrorKind::InvalidUriPath, KeyStore),
            XksProxyInvalidConfigurationException
        );
        for k in [
            XksErrorKind::DependencyTimeout,
            XksErrorKind::Throttling,
            XksErrorKind::TcpConnect,
            XksErrorKind::TlsConnect,
            XksErrorKind::Timeout,
        ] {
            assert_eq!(e(k, KeyStore), XksProxyUriUnreachableException);
            assert_eq!(e(k, CreateKey), CustomKeyStoreInvalidStateException);
            assert_eq!(e(k, Cryptographic), KMSInvalidStateException);
        }
        assert_eq!(
            e(XksErrorKind::Internal, KeyStore),
            XksProxyInvalidResponseException
        );
        assert_eq!(
            e(XksErrorKind::MalformedResponse, KeyStore),
            XksProxyInvalidResponseException
        );
        assert_eq!(
            e(XksErrorKind::InvalidCiphertext, Cryptographic),
            KMSInvalidStateException
        );
    }
}
