//! What an adapter crate implements to back custom key stores of one kind: a
//! [`CustomKeyStoreBackend`] that connects, and the [`Connection`] it returns.
//!
//! The engine never sees an HSM key: it asks the connection for a *salt key* (a pseudo-random
//! function of a 32-byte salt under the backing key, computed inside the HSM) and derives its
//! AES-256-GCM data-plane key from that with HKDF, exactly as it derives from its own material
//! (`docs/custom-key-stores.md`). An XKS proxy cannot compute such a function; its connection
//! answers [`Connection::salt_key`] with UnsupportedOperation and instead encrypts and decrypts
//! blobs ([`Connection::external_encrypt`], [`Connection::external_decrypt`]) for the service's
//! double encryption, which the engine will use once the XKS adapter exists.

use std::sync::Arc;

use uuid::Uuid;

use super::definition::{ConnectionErrorCode, CustomKeyStoreRecord};
use crate::error::{Error, Result};
use crate::locked_memory::LockedBytes;
use crate::secret::SecretBytes;

/// Why a connection attempt failed: the code DescribeCustomKeyStores reports, and a message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnectFailure {
    pub code: ConnectionErrorCode,
    pub message: String,
}

impl ConnectFailure {
    pub fn new(code: ConnectionErrorCode, message: impl Into<String>) -> Self {
        ConnectFailure {
            code,
            message: message.into(),
        }
    }
}

/// A backing key's identity in its store (PKCS#11: the key's `CKA_ID`, hex; XKS: the XksKeyId).
pub type BackingKeyId = String;

/// A custom key store kind's adapter, registered with
/// [`EngineBuilder::custom_key_store_backend`](crate::EngineBuilder::custom_key_store_backend).
pub trait CustomKeyStoreBackend: Send + Sync + 'static {
    /// Checks a definition before CreateCustomKeyStore (or UpdateCustomKeyStore) records it: the
    /// cluster id names a configured HSM (CloudHsmClusterNotFoundException), the trust anchor
    /// matches (IncorrectTrustAnchorException), ... Reaches nothing that needs the secret.
    fn check_definition(&self, store: &CustomKeyStoreRecord) -> Result<()>;

    /// Connects with the store's secret (the crypto user's PIN, the proxy credential's secret).
    fn connect(
        &self,
        store: &CustomKeyStoreRecord,
        secret: &LockedBytes,
    ) -> std::result::Result<Arc<dyn Connection>, ConnectFailure>;

    /// A short description for diagnostics ("pkcs11").
    fn describe(&self) -> String;
}

/// A live connection to one custom key store. Dropped (and with it every session and cached
/// secret it holds) when the store disconnects.
pub trait Connection: Send + Sync + 'static {
    /// Makes the backing key of keyplane key `key_id` (PKCS#11: an AES-256 secret key generated
    /// in the token, sensitive and not extractable, labelled with the key id).
    fn create_backing_key(&self, key_id: &Uuid) -> Result<BackingKeyId>;

    /// Checks that a backing key exists and may be used (XKS: GetKeyMetadata of an XksKeyId).
    fn check_backing_key(&self, backing_key: &str) -> Result<()>;

    /// 32 bytes that only the backing key can produce for `salt`: a PRF of the salt under the
    /// backing key, computed inside the HSM. The engine derives its data-plane key from it.
    /// A backing key that is gone is an error, never other bytes.
    fn salt_key(&self, backing_key: &str, salt: &[u8; 32]) -> Result<LockedBytes>;

    /// Destroys the backing key of a keyplane key that was deleted (its waiting period over): a
    /// best effort, as the service's for CloudHSM. The default keeps it: the service never
    /// deletes the keys of an external key manager.
    fn delete_backing_key(&self, backing_key: &str) -> Result<()> {
        let _ = backing_key;
        Ok(())
    }

    /// Random bytes from the store's own generator (GenerateRandom with CustomKeyStoreId).
    fn random(&self, out: &mut [u8]) -> Result<()>;

    /// Whether the store still answers (a token that went away, a proxy that stopped).
    fn health(&self) -> std::result::Result<(), ConnectFailure>;

    /// Whether this store's keys use the double encryption of external key stores (the
    /// connection answers [`Connection::external_encrypt`] and [`Connection::external_decrypt`])
    /// instead of salt keys. Only an XKS connection says yes.
    fn encrypts_blobs(&self) -> bool {
        false
    }

    /// XKS: encrypts `plaintext` with AAD under the external key, with the request metadata (JSON)
    /// the XKS API carries. Not used by HSM key stores.
    fn external_encrypt(
        &self,
        backing_key: &str,
        plaintext: &[u8],
        aad: &[u8],
        request_metadata: &str,
    ) -> Result<Vec<u8>> {
        let _ = (backing_key, plaintext, aad, request_metadata);
        Err(Error::UnsupportedOperation(
            "this custom key store does not encrypt blobs".into(),
        ))
    }

    /// XKS: the inverse of [`Connection::external_encrypt`].
    fn external_decrypt(
        &self,
        backing_key: &str,
        ciphertext: &[u8],
        aad: &[u8],
        request_metadata: &str,
    ) -> Result<SecretBytes> {
        let _ = (backing_key, ciphertext, aad, request_metadata);
        Err(Error::UnsupportedOperation(
            "this custom key store does not decrypt blobs".into(),
        ))
    }
}
