//! keyplane's external key stores (the service's EXTERNAL_KEY_STORE custom key stores): an
//! [`XksBackend`] to register with
//! `EngineBuilder::custom_key_store_backend(CustomKeyStoreType::ExternalKeyStore, ...)`.
//!
//! A store's connection is an [`XksClient`] for its proxy (endpoint, URI path, credential); it
//! connects by calling GetHealthStatus, checks an `XksKeyId` with GetKeyMetadata, and serves the
//! engine's double encryption (`docs/xks.md`) with the proxy's Encrypt and Decrypt. Every proxy
//! failure becomes the service's exception for the kind of call (spec table, [`crate::error`]),
//! or the connection error code DescribeCustomKeyStores reports.

use std::sync::Arc;
use std::time::Duration;

use keyplane::custom_key_store::{
    ConnectFailure, Connection, ConnectionErrorCode, CustomKeyStoreBackend, CustomKeyStoreRecord,
};
use keyplane::LockedBytes;
use keyplane::{Error, Result, SecretBytes};
use uuid::Uuid;

use crate::api::{self, CryptoRequestMetadata, HealthRequestMetadata, KeyMetadataRequestMetadata};
use crate::client::{TrustAnchors, XksCiphertext, XksClient, XksClientConfig, DEFAULT_TIMEOUT};
use crate::error::{KmsCallKind, KmsException, XksError, XksErrorKind};
use crate::sigv4::Credential;

/// How the engine reaches its external key stores' proxies.
#[derive(Clone, Debug)]
pub struct XksBackendConfig {
    /// The CA certificates a proxy's TLS certificate must chain to.
    pub trust: TrustAnchors,
    /// The Region in SigV4's scope (the engine's Region).
    pub region: String,
    /// The budget of one proxy call ([`DEFAULT_TIMEOUT`], the spec's 250 ms, unless set).
    pub timeout: Duration,
    /// The principal named in the `requestMetadata` of calls no caller makes (GetHealthStatus
    /// has none; GetKeyMetadata at CreateKey).
    pub service_principal: String,
}

impl XksBackendConfig {
    /// The platform's CA bundle, the spec's timeout.
    pub fn new(region: &str) -> Self {
        XksBackendConfig {
            trust: TrustAnchors::Platform,
            region: region.to_owned(),
            timeout: DEFAULT_TIMEOUT,
            service_principal: "arn:aws:iam::000000000000:root".into(),
        }
    }
}

/// The custom key store backend for XKS proxies.
#[derive(Debug)]
pub struct XksBackend {
    config: XksBackendConfig,
}

impl XksBackend {
    pub fn new(config: XksBackendConfig) -> Self {
        XksBackend { config }
    }

    fn client(&self, store: &CustomKeyStoreRecord, secret: &str) -> Result<XksClient> {
        let proxy = store.xks_proxy.as_ref().ok_or_else(|| {
            Error::Internal(format!(
                "external key store {} has no proxy settings",
                store.id
            ))
        })?;
        XksClient::new(XksClientConfig {
            trust: self.config.trust.clone(),
            timeout: self.config.timeout,
            ..XksClientConfig::new(
                &proxy.uri_endpoint,
                &proxy.uri_path,
                Credential::new(proxy.access_key_id.clone(), secret),
                &self.config.region,
            )
        })
        .map_err(|e| Error::XksProxyInvalidConfiguration(e.0))
    }
}

/// The connection error code a failed GetHealthStatus gives (the model's ConnectionErrorCodeType).
pub fn connection_error_code(kind: XksErrorKind) -> ConnectionErrorCode {
    use XksErrorKind::*;
    match kind {
        AuthenticationFailed => ConnectionErrorCode::InvalidCredentials,
        AccessDenied => ConnectionErrorCode::XksProxyAccessDenied,
        InvalidUriPath => ConnectionErrorCode::XksProxyInvalidConfiguration,
        TcpConnect => ConnectionErrorCode::XksProxyNotReachable,
        TlsConnect => ConnectionErrorCode::XksProxyInvalidTlsConfiguration,
        Timeout | DependencyTimeout | Throttling => ConnectionErrorCode::XksProxyTimedOut,
        Internal => ConnectionErrorCode::InternalError,
        Validation
        | InvalidState
        | InvalidCiphertext
        | InvalidKeyUsage
        | KeyNotFound
        | UnsupportedOperation
        | InvalidCiphertextReturned
        | MalformedResponse => ConnectionErrorCode::XksProxyInvalidResponse,
    }
}

/// The engine error for a proxy failure during `call`: the service exception of the spec's table,
/// with the service's message (never the proxy's own words, which go to the log).
pub fn engine_error(error: &XksError, call: KmsCallKind) -> Error {
    let message = error.kind.kms_message().to_owned();
    match error.exception(call) {
        KmsException::XksProxyUriUnreachableException => Error::XksProxyUriUnreachable(message),
        KmsException::XksProxyInvalidResponseException => Error::XksProxyInvalidResponse(message),
        KmsException::XksProxyInvalidConfigurationException => {
            Error::XksProxyInvalidConfiguration(message)
        }
        KmsException::XksProxyIncorrectAuthenticationCredentialException => {
            Error::XksProxyIncorrectAuthenticationCredential(message)
        }
        KmsException::XksKeyNotFoundException => Error::XksKeyNotFound(message),
        KmsException::XksKeyInvalidConfigurationException => {
            Error::XksKeyInvalidConfiguration(message)
        }
        KmsException::CustomKeyStoreInvalidStateException => {
            Error::CustomKeyStoreInvalidState(message)
        }
        KmsException::KMSInvalidStateException => Error::InvalidState(message),
    }
}

fn request_id() -> String {
    Uuid::new_v4().to_string()
}

impl CustomKeyStoreBackend for XksBackend {
    fn check_definition(&self, store: &CustomKeyStoreRecord) -> Result<()> {
        // The endpoint and path make a client (and the trust anchors load); no secret needed.
        self.client(store, "").map(|_| ())
    }

    fn connect(
        &self,
        store: &CustomKeyStoreRecord,
        secret: &LockedBytes,
    ) -> std::result::Result<Arc<dyn Connection>, ConnectFailure> {
        let secret = std::str::from_utf8(secret.expose(keyplane::SecretAccess::granted()))
            .map_err(|_| {
                ConnectFailure::new(
                    ConnectionErrorCode::InvalidCredentials,
                    "the proxy credential's secret is not UTF-8",
                )
            })?;
        let client = self.client(store, secret).map_err(|e| {
            ConnectFailure::new(
                ConnectionErrorCode::XksProxyInvalidConfiguration,
                e.message(),
            )
        })?;
        let connection = XksConnection {
            client,
            store_id: store.id.clone(),
            service_principal: self.config.service_principal.clone(),
        };
        connection.health()?;
        Ok(Arc::new(connection))
    }

    fn describe(&self) -> String {
        format!("xks (Region {})", self.config.region)
    }
}

/// A connected external key store: the client of its proxy.
#[derive(Debug)]
pub struct XksConnection {
    client: XksClient,
    store_id: String,
    service_principal: String,
}

/// `ciphertext ‖ iv ‖ tag ‖ metadata`, each but the tag length-prefixed with one byte: how the
/// proxy's answer is kept in a keyplane blob.
fn encode_wrapping(c: &XksCiphertext) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(c.ciphertext.len() + 60);
    for part in [
        &c.ciphertext[..],
        &c.initialization_vector[..],
        c.ciphertext_metadata.as_deref().unwrap_or_default(),
    ] {
        out.push(u8::try_from(part.len()).map_err(|_| {
            Error::XksProxyInvalidResponse("the proxy's answer is too long to keep".into())
        })?);
        out.extend_from_slice(part);
    }
    out.extend_from_slice(&c.authentication_tag);
    Ok(out)
}

fn decode_wrapping(bytes: &[u8]) -> Option<XksCiphertext> {
    let mut rest = bytes;
    let mut take = || -> Option<Vec<u8>> {
        let (&len, tail) = rest.split_first()?;
        let len = usize::from(len);
        let part = tail.get(..len)?.to_vec();
        rest = &tail[len..];
        Some(part)
    };
    let ciphertext = take()?;
    let initialization_vector = take()?;
    let metadata = take()?;
    if rest.len() != api::TAG_BYTES || ciphertext.is_empty() {
        return None;
    }
    Some(XksCiphertext {
        ciphertext,
        ciphertext_metadata: (!metadata.is_empty()).then_some(metadata),
        initialization_vector,
        authentication_tag: rest.to_vec(),
    })
}

fn crypto_metadata(json: &str) -> Result<CryptoRequestMetadata> {
    serde_json::from_str(json)
        .map_err(|e| Error::Internal(format!("the XKS request metadata does not parse: {e}")))
}

impl Connection for XksConnection {
    fn create_backing_key(&self, _key_id: &Uuid) -> Result<String> {
        Err(Error::UnsupportedOperation(
            "an external key store never creates keys: give the XksKeyId of an existing external \
             key"
            .into(),
        ))
    }

    fn check_backing_key(&self, backing_key: &str) -> Result<()> {
        let answer = self
            .client
            .key_metadata(
                backing_key,
                &KeyMetadataRequestMetadata {
                    aws_principal_arn: self.service_principal.clone(),
                    kms_operation: "CreateKey".into(),
                    kms_request_id: request_id(),
                    ..Default::default()
                },
            )
            .map_err(|e| {
                eprintln!(
                    "keyplane: GetKeyMetadata of {backing_key} in {} failed: {e}",
                    self.store_id
                );
                engine_error(&e, KmsCallKind::CreateKey)
            })?;
        let usable = answer.key_spec == api::AES_256
            && answer.key_usage.iter().any(|u| u == "ENCRYPT")
            && answer.key_usage.iter().any(|u| u == "DECRYPT")
            && answer.key_status == "ENABLED";
        if !usable {
            return Err(Error::XksKeyInvalidConfiguration(format!(
                "The external key '{backing_key}' is not an enabled AES_256 key that can ENCRYPT \
                 and DECRYPT (it is {} {} for {:?}).",
                api::clean_error_message(&answer.key_status),
                api::clean_error_message(&answer.key_spec),
                answer
                    .key_usage
                    .iter()
                    .map(|u| api::clean_error_message(u))
                    .collect::<Vec<_>>()
            )));
        }
        Ok(())
    }

    fn salt_key(&self, _backing_key: &str, _salt: &[u8; 32]) -> Result<LockedBytes> {
        Err(Error::UnsupportedOperation(
            "an XKS proxy computes no salt keys; its keys use double encryption".into(),
        ))
    }

    fn random(&self, _out: &mut [u8]) -> Result<()> {
        Err(Error::UnsupportedOperation(
            "GenerateRandom does not take an external key store".into(),
        ))
    }

    fn health(&self) -> std::result::Result<(), ConnectFailure> {
        self.client
            .health_status(&HealthRequestMetadata {
                kms_request_id: request_id(),
                kms_operation: "KmsHealthCheck".into(),
            })
            .map(|_| ())
            .map_err(|e| ConnectFailure::new(connection_error_code(e.kind), e.to_string()))
    }

    fn encrypts_blobs(&self) -> bool {
        true
    }

    fn external_encrypt(
        &self,
        backing_key: &str,
        plaintext: &[u8],
        aad: &[u8],
        request_metadata: &str,
    ) -> Result<Vec<u8>> {
        let metadata = crypto_metadata(request_metadata)?;
        let answer = self
            .client
            .encrypt(backing_key, plaintext, Some(aad), &metadata)
            .map_err(|e| {
                eprintln!(
                    "keyplane: XKS Encrypt with {backing_key} in {} failed: {e}",
                    self.store_id
                );
                engine_error(&e, KmsCallKind::Cryptographic)
            })?;
        encode_wrapping(&answer)
    }

    fn external_decrypt(
        &self,
        backing_key: &str,
        ciphertext: &[u8],
        aad: &[u8],
        request_metadata: &str,
    ) -> Result<SecretBytes> {
        let wrapped = decode_wrapping(ciphertext).ok_or_else(|| {
            Error::InvalidCiphertext(
                "the ciphertext blob is not valid: its external key wrapping is malformed".into(),
            )
        })?;
        let metadata = crypto_metadata(request_metadata)?;
        let mut answer = self
            .client
            .decrypt(backing_key, &wrapped, Some(aad), &metadata)
            .map_err(|e| {
                eprintln!(
                    "keyplane: XKS Decrypt with {backing_key} in {} failed: {e}",
                    self.store_id
                );
                engine_error(&e, KmsCallKind::Cryptographic)
            })?;
        Ok(SecretBytes::from_vec(std::mem::take(&mut *answer.0)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrappings_round_trip_and_malformed_ones_are_refused() {
        let c = XksCiphertext {
            ciphertext: vec![1; 32],
            ciphertext_metadata: Some(b"kp1".to_vec()),
            initialization_vector: vec![2; 12],
            authentication_tag: vec![3; 16],
        };
        let bytes = encode_wrapping(&c).unwrap();
        assert_eq!(decode_wrapping(&bytes), Some(c.clone()));
        let bare = XksCiphertext {
            ciphertext_metadata: None,
            ..c
        };
        assert_eq!(
            decode_wrapping(&encode_wrapping(&bare).unwrap()),
            Some(bare)
        );
        for cut in 0..bytes.len() {
            assert_eq!(decode_wrapping(&bytes[..cut]), None, "{cut}");
        }
        let mut long = bytes.clone();
        long.push(0);
        assert_eq!(decode_wrapping(&long), None);
    }

    #[test]
    fn every_failure_has_a_connection_error_code() {
        assert_eq!(
            connection_error_code(XksErrorKind::AuthenticationFailed),
            ConnectionErrorCode::InvalidCredentials
        );
        assert_eq!(
            connection_error_code(XksErrorKind::TcpConnect),
            ConnectionErrorCode::XksProxyNotReachable
        );
        assert_eq!(
            connection_error_code(XksErrorKind::Timeout),
            ConnectionErrorCode::XksProxyTimedOut
        );
        assert_eq!(
            connection_error_code(XksErrorKind::MalformedResponse),
            ConnectionErrorCode::XksProxyInvalidResponse
        );
    }

    #[test]
    fn cryptographic_failures_are_invalid_state_with_the_services_words() {
        let e = engine_error(
            &XksError::new(XksErrorKind::KeyNotFound, "proxy said: gone"),
            KmsCallKind::Cryptographic,
        );
        assert_eq!(e.code(), "KMSInvalidStateException");
        assert!(!e.message().contains("proxy said"));
        let e = engine_error(
            &XksError::new(XksErrorKind::KeyNotFound, "x"),
            KmsCallKind::CreateKey,
        );
        assert_eq!(e.code(), "XksKeyNotFoundException");
    }
}
