#![allow(dead_code)] // Each test crate that includes this helper uses part of it.
//! A key in an external key store, for the engine's tests whose engine has an external key store
//! backend standing for the proxy (`#[path = "support/external_key.rs"] mod external_key;`), and
//! [`ToyProxy`], such a backend.

use std::sync::{Arc, Mutex};

use keyplane::custom_key_store::{
    BackingKeyId, ConnectFailure, Connection, CustomKeyStoreBackend, CustomKeyStoreRecord,
    CustomKeyStoreType,
};
use keyplane::{
    CreateCustomKeyStoreRequest, CreateKeyRequest, Engine, LockedBytes, Origin, SecretBytes,
    XksProxyCredential,
};
use serde_json::Value;
use uuid::Uuid;

/// A well-formed request for an external key store named `name`, behind a made-up proxy.
pub fn xks_store_request(name: &str) -> CreateCustomKeyStoreRequest {
    CreateCustomKeyStoreRequest {
        custom_key_store_name: name.into(),
        custom_key_store_type: Some(CustomKeyStoreType::ExternalKeyStore),
        xks_proxy_uri_endpoint: Some("https://proxy.example".into()),
        xks_proxy_uri_path: Some("/kms/xks/v1".into()),
        xks_proxy_authentication_credential: Some(XksProxyCredential {
            access_key_id: "AKIAI2SFODNN7EXAMPLE".into(),
            raw_secret_access_key: SecretBytes::from_vec(
                b"FYtE5EFA5FT0mCc3DrGUe2sti527BitkQ0Zr9MO9fvE".to_vec(),
            ),
        }),
        ..Default::default()
    }
}

/// A key (XKS key id `external-1`) in a new, connected external key store named `store_name`; its
/// key id.
pub fn external_key(engine: &Engine, store_name: &str) -> String {
    let store = engine
        .create_custom_key_store(xks_store_request(store_name))
        .unwrap();
    engine.connect_custom_key_store(&store).unwrap();
    engine
        .create_key(CreateKeyRequest {
            origin: Some(Origin::ExternalKeyStore),
            custom_key_store_id: Some(store),
            xks_key_id: Some("external-1".into()),
            ..Default::default()
        })
        .unwrap()
        .key_id
}

/// Every `requestMetadata` a [`ToyProxy`] was sent, as JSON.
pub type Seen = Arc<Mutex<Vec<Value>>>;

/// An external key store backend standing for the proxy: it wraps with a reversible toy (each
/// byte XOR 0x5a, then `padding` zero bytes, as a real proxy's answer is longer than what it
/// wraps) and keeps the request metadata of each Encrypt and Decrypt it is asked in `seen`. The
/// double encryption's cryptography is tested against the real proxy in
/// `server/tests/xks_store.rs`.
#[derive(Default)]
pub struct ToyProxy {
    pub padding: usize,
    pub seen: Seen,
}

struct ToyConnection {
    padding: usize,
    seen: Seen,
}

impl CustomKeyStoreBackend for ToyProxy {
    fn check_definition(&self, _store: &CustomKeyStoreRecord) -> keyplane::Result<()> {
        Ok(())
    }

    fn connect(
        &self,
        _store: &CustomKeyStoreRecord,
        _secret: &LockedBytes,
    ) -> Result<Arc<dyn Connection>, ConnectFailure> {
        Ok(Arc::new(ToyConnection {
            padding: self.padding,
            seen: Arc::clone(&self.seen),
        }))
    }

    fn describe(&self) -> String {
        "toy XKS proxy".into()
    }
}

impl ToyConnection {
    fn note(&self, metadata: &str) {
        self.seen
            .lock()
            .unwrap()
            .push(serde_json::from_str(metadata).unwrap());
    }
}

impl Connection for ToyConnection {
    fn create_backing_key(&self, _key_id: &Uuid) -> keyplane::Result<BackingKeyId> {
        Err(keyplane::Error::UnsupportedOperation(
            "XKS keys are named".into(),
        ))
    }

    fn check_backing_key(&self, _backing_key: &str) -> keyplane::Result<()> {
        Ok(())
    }

    fn salt_key(&self, _backing_key: &str, _salt: &[u8; 32]) -> keyplane::Result<LockedBytes> {
        Err(keyplane::Error::UnsupportedOperation(
            "an XKS proxy has no salt keys".into(),
        ))
    }

    fn random(&self, _out: &mut [u8]) -> keyplane::Result<()> {
        Err(keyplane::Error::UnsupportedOperation("no random".into()))
    }

    fn health(&self) -> Result<(), ConnectFailure> {
        Ok(())
    }

    fn encrypts_blobs(&self) -> bool {
        true
    }

    fn external_encrypt(
        &self,
        _backing_key: &str,
        plaintext: &[u8],
        _aad: &[u8],
        request_metadata: &str,
    ) -> keyplane::Result<Vec<u8>> {
        self.note(request_metadata);
        let mut wrapped: Vec<u8> = plaintext.iter().map(|b| b ^ 0x5a).collect();
        wrapped.resize(plaintext.len() + self.padding, 0);
        Ok(wrapped)
    }

    fn external_decrypt(
        &self,
        _backing_key: &str,
        ciphertext: &[u8],
        _aad: &[u8],
        request_metadata: &str,
    ) -> keyplane::Result<SecretBytes> {
        self.note(request_metadata);
        let wrapped = ciphertext.len().checked_sub(self.padding).ok_or_else(|| {
            keyplane::Error::InvalidCiphertext("shorter than the toy's padding".into())
        })?;
        let secret = ciphertext[..wrapped].iter().map(|b| b ^ 0x5a);
        Ok(SecretBytes::from_vec(secret.collect()))
    }
}
