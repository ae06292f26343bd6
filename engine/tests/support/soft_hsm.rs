#![allow(dead_code)] // Each test crate that includes this helper uses part of it.
//! A software HSM behind the custom key store backend trait, for the engine's tests: tokens by
//! cluster id, each with a user PIN and AES-256 keys that never leave it. Its salt key is
//! HMAC-SHA256(backing key, salt), computed with RustCrypto `hmac`, so that a test can recompute
//! the engine's data-plane key independently. Tests can pull a token out (as a dead HSM), destroy
//! or replace a backing key, and count the calls that reach the token.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use hmac::{Hmac, Mac};
use keyplane::custom_key_store::CustomKeyStoreType;
use keyplane::custom_key_store::{
    ConnectFailure, Connection, ConnectionErrorCode, CustomKeyStoreBackend, CustomKeyStoreRecord,
};
use keyplane::store::MemoryKeyStore;
use keyplane::{Engine, LockedBytes};
use keyplane::{Error, LockPolicy, Result};
use rand_core::{OsRng, RngCore};
use sha2::Sha256;
use uuid::Uuid;

pub const CLUSTER: &str = "cluster-abcdefghijk";
pub const OTHER_CLUSTER: &str = "cluster-zyxwvutsrqp";
pub const PIN: &str = "crypto-user:secret";
pub const ANCHOR: &str = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";

#[derive(Default)]
pub struct Token {
    pin: String,
    present: bool,
    keys: HashMap<String, [u8; 32]>,
    labels: HashMap<String, Uuid>,
    next_id: u64,
    pub salt_calls: usize,
    pub random_calls: usize,
    /// Every call through a connection to the token, and every connection closed.
    pub touched: usize,
}

/// The backend; cheap to clone (shares its tokens).
/// An engine on `store` whose CloudHSM key stores are tokens of `hsm`.
pub fn engine_on(store: Arc<MemoryKeyStore>, hsm: &SoftHsm) -> Engine {
    Engine::builder()
        .store(store)
        .custom_key_store_backend(CustomKeyStoreType::AwsCloudhsm, Arc::new(hsm.clone()))
        .build()
        .unwrap()
}

#[derive(Clone, Default)]
pub struct SoftHsm {
    tokens: Arc<Mutex<HashMap<String, Token>>>,
}

impl SoftHsm {
    /// An HSM with tokens for [`CLUSTER`] and [`OTHER_CLUSTER`], both with user PIN [`PIN`].
    pub fn new() -> Self {
        let hsm = SoftHsm::default();
        for cluster in [CLUSTER, OTHER_CLUSTER] {
            hsm.tokens.lock().unwrap().insert(
                cluster.to_owned(),
                Token {
                    pin: PIN.to_owned(),
                    present: true,
                    ..Token::default()
                },
            );
        }
        hsm
    }

    pub fn with_token<T>(&self, cluster: &str, f: impl FnOnce(&mut Token) -> T) -> T {
        f(self
            .tokens
            .lock()
            .unwrap()
            .get_mut(cluster)
            .expect("a token"))
    }

    /// Pulls the token out (or puts it back): every call to it fails until then.
    pub fn set_present(&self, cluster: &str, present: bool) {
        self.with_token(cluster, |t| t.present = present);
    }

    pub fn destroy_key(&self, cluster: &str, backing: &str) {
        self.with_token(cluster, |t| t.keys.remove(backing));
    }

    /// Replaces a backing key's bytes with new random ones (an attacker with HSM access).
    pub fn replace_key(&self, cluster: &str, backing: &str) {
        self.with_token(cluster, |t| {
            let mut k = [0u8; 32];
            OsRng.fill_bytes(&mut k);
            t.keys.insert(backing.to_owned(), k);
        });
    }

    /// A backing key's bytes, for the independent recomputation of the data-plane key.
    pub fn key_bytes(&self, cluster: &str, backing: &str) -> [u8; 32] {
        self.with_token(cluster, |t| t.keys[backing])
    }

    pub fn has_key(&self, cluster: &str, backing: &str) -> bool {
        self.with_token(cluster, |t| t.keys.contains_key(backing))
    }

    pub fn label(&self, cluster: &str, backing: &str) -> Uuid {
        self.with_token(cluster, |t| t.labels[backing])
    }

    pub fn salt_calls(&self, cluster: &str) -> usize {
        self.with_token(cluster, |t| t.salt_calls)
    }

    pub fn random_calls(&self, cluster: &str) -> usize {
        self.with_token(cluster, |t| t.random_calls)
    }

    /// Calls through connections to the token, and connections closed, so far.
    pub fn touched(&self, cluster: &str) -> usize {
        self.with_token(cluster, |t| t.touched)
    }
}

/// HMAC-SHA256(key, salt): the soft HSM's salt key.
pub fn salt_key(key: &[u8; 32], salt: &[u8]) -> [u8; 32] {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap();
    mac.update(salt);
    mac.finalize().into_bytes().into()
}

impl CustomKeyStoreBackend for SoftHsm {
    fn check_definition(&self, store: &CustomKeyStoreRecord) -> Result<()> {
        let cluster = store.cloud_hsm_cluster_id.as_deref().unwrap_or_default();
        if !self.tokens.lock().unwrap().contains_key(cluster) {
            return Err(Error::CloudHsmClusterNotFound(format!(
                "no configured HSM is named {cluster}"
            )));
        }
        if !store
            .trust_anchor_certificate
            .as_deref()
            .is_some_and(|a| a.starts_with("-----BEGIN CERTIFICATE-----"))
        {
            return Err(Error::IncorrectTrustAnchor("not a certificate".into()));
        }
        Ok(())
    }

    fn connect(
        &self,
        store: &CustomKeyStoreRecord,
        secret: &LockedBytes,
    ) -> std::result::Result<Arc<dyn Connection>, ConnectFailure> {
        let cluster = store.cloud_hsm_cluster_id.clone().unwrap_or_default();
        let tokens = self.tokens.lock().unwrap();
        let token = tokens.get(&cluster).ok_or_else(|| {
            ConnectFailure::new(ConnectionErrorCode::ClusterNotFound, "no such token")
        })?;
        if !token.present {
            return Err(ConnectFailure::new(
                ConnectionErrorCode::NetworkErrors,
                "the token does not answer",
            ));
        }
        if token.pin.as_bytes() != secret.expose(keyplane::SecretAccess::granted()) {
            return Err(ConnectFailure::new(
                ConnectionErrorCode::InvalidCredentials,
                "wrong PIN",
            ));
        }
        Ok(Arc::new(SoftConnection {
            hsm: self.clone(),
            cluster,
        }))
    }

    fn describe(&self) -> String {
        "soft-hsm".into()
    }
}

struct SoftConnection {
    hsm: SoftHsm,
    cluster: String,
}

impl SoftConnection {
    /// The token, with this call counted.
    fn token<T>(&self, f: impl FnOnce(&mut Token) -> T) -> T {
        self.hsm.with_token(&self.cluster, |t| {
            t.touched += 1;
            f(t)
        })
    }
}

/// A closed connection counts as touched (a logout would end a session the parent still uses).
impl Drop for SoftConnection {
    fn drop(&mut self) {
        if let Ok(mut tokens) = self.hsm.tokens.lock() {
            if let Some(token) = tokens.get_mut(&self.cluster) {
                token.touched += 1;
            }
        }
    }
}

fn gone() -> Error {
    Error::CustomKeyStoreInvalidState("the token does not answer".into())
}

impl Connection for SoftConnection {
    fn create_backing_key(&self, key_id: &Uuid) -> Result<String> {
        self.token(|t| {
            if !t.present {
                return Err(gone());
            }
            t.next_id += 1;
            let id = format!("{:016x}", t.next_id);
            let mut k = [0u8; 32];
            OsRng.fill_bytes(&mut k);
            t.keys.insert(id.clone(), k);
            t.labels.insert(id.clone(), *key_id);
            Ok(id)
        })
    }

    fn check_backing_key(&self, backing_key: &str) -> Result<()> {
        self.token(|t| {
            if t.keys.contains_key(backing_key) {
                Ok(())
            } else {
                Err(Error::KeyUnavailable("no such key in the token".into()))
            }
        })
    }

    fn delete_backing_key(&self, backing_key: &str) -> Result<()> {
        self.token(|t| {
            t.keys.remove(backing_key);
            Ok(())
        })
    }

    fn salt_key(&self, backing_key: &str, salt: &[u8; 32]) -> Result<LockedBytes> {
        self.token(|t| {
            if !t.present {
                return Err(gone());
            }
            t.salt_calls += 1;
            let key = t
                .keys
                .get(backing_key)
                .ok_or_else(|| Error::KeyUnavailable("the backing key is gone".into()))?;
            LockedBytes::copy_from(&salt_key(key, salt), LockPolicy::Warn)
        })
    }

    fn random(&self, out: &mut [u8]) -> Result<()> {
        self.token(|t| {
            if !t.present {
                return Err(gone());
            }
            t.random_calls += 1;
            OsRng.fill_bytes(out);
            Ok(())
        })
    }

    fn health(&self) -> std::result::Result<(), ConnectFailure> {
        if self.token(|t| t.present) {
            Ok(())
        } else {
            Err(ConnectFailure::new(
                ConnectionErrorCode::NetworkErrors,
                "the token does not answer",
            ))
        }
    }
}
