//! keyplane's HSM key stores (the service's AWS_CLOUDHSM custom key stores) on any PKCS#11 v2.40
//! token, through the maintained `cryptoki` crate: register a [`Pkcs11Backend`] with
//! `EngineBuilder::custom_key_store_backend(CustomKeyStoreType::AwsCloudhsm, ...)`.
//!
//! - [`config`]: which module and token each `CloudHsmClusterId` names, and its trust anchor;
//! - `errors`: PKCS#11 return values as the service's connection error codes and exceptions;
//! - `connection`: a logged-in pool of sessions, the backing keys, the salt keys, random bytes.
//!
//! The design and its security argument: `docs/custom-key-stores.md`.

pub mod config;
mod connection;
mod errors;
mod logins;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use cryptoki::context::{CInitializeArgs, Pkcs11};
use keyplane::custom_key_store::{
    ConnectFailure, Connection, ConnectionErrorCode, CustomKeyStoreBackend, CustomKeyStoreRecord,
};
use keyplane::LockedBytes;
use keyplane::{Error, Result};

pub use config::{ClusterConfig, Pkcs11Config};
pub use connection::{KeyProtection, Pkcs11Connection};

/// The custom key store backend for PKCS#11 tokens.
#[derive(Debug)]
pub struct Pkcs11Backend {
    config: Pkcs11Config,
}

impl Pkcs11Backend {
    pub fn new(config: Pkcs11Config) -> Self {
        Pkcs11Backend { config }
    }

    fn cluster(&self, store: &CustomKeyStoreRecord) -> Result<&ClusterConfig> {
        let id = store.cloud_hsm_cluster_id.as_deref().unwrap_or_default();
        self.config.clusters.get(id).ok_or_else(|| {
            Error::CloudHsmClusterNotFound(format!(
                "no PKCS#11 token is configured as cluster '{id}'"
            ))
        })
    }
}

/// A PKCS#11 module may be initialised once per process: every store on the same module shares
/// one context, kept for the process's life.
fn module(path: &Path) -> std::result::Result<Pkcs11, ConnectFailure> {
    static MODULES: OnceLock<Mutex<HashMap<PathBuf, Pkcs11>>> = OnceLock::new();
    let mut modules = MODULES
        .get_or_init(Default::default)
        .lock()
        .map_err(|_| ConnectFailure::new(ConnectionErrorCode::InternalError, "lock poisoned"))?;
    if let Some(ctx) = modules.get(path) {
        return Ok(ctx.clone());
    }
    let ctx = Pkcs11::new(path).map_err(|e| {
        ConnectFailure::new(
            ConnectionErrorCode::ClusterNotFound,
            format!(
                "the PKCS#11 module {} could not be loaded: {e}",
                path.display()
            ),
        )
    })?;
    ctx.initialize(CInitializeArgs::OsThreads)
        .map_err(errors::connect_failure)?;
    modules.insert(path.to_owned(), ctx.clone());
    Ok(ctx)
}

impl Pkcs11Backend {
    /// A connection of its own to the token configured as `cluster_id`, logged in with `pin`:
    /// for administration (checking a backing key's attributes, destroying one) beside the
    /// engine's connection.
    pub fn open_connection(
        &self,
        cluster_id: &str,
        pin: &str,
    ) -> std::result::Result<Pkcs11Connection, ConnectFailure> {
        let cluster = self.config.clusters.get(cluster_id).ok_or_else(|| {
            ConnectFailure::new(
                ConnectionErrorCode::ClusterNotFound,
                format!("no PKCS#11 token is configured as cluster '{cluster_id}'"),
            )
        })?;
        Pkcs11Connection::open(module(&cluster.module)?, cluster, pin)
    }
}

impl CustomKeyStoreBackend for Pkcs11Backend {
    fn check_definition(&self, store: &CustomKeyStoreRecord) -> Result<()> {
        let cluster = self.cluster(store)?;
        config::check_trust_anchor(cluster, store.trust_anchor_certificate.as_deref())
    }

    fn connect(
        &self,
        store: &CustomKeyStoreRecord,
        secret: &LockedBytes,
    ) -> std::result::Result<Arc<dyn Connection>, ConnectFailure> {
        let cluster = self
            .cluster(store)
            .map_err(|e| ConnectFailure::new(ConnectionErrorCode::ClusterNotFound, e.message()))?;
        let ctx = module(&cluster.module)?;
        let pin = std::str::from_utf8(secret.expose(keyplane::SecretAccess::granted())).map_err(
            |_| {
                ConnectFailure::new(
                    ConnectionErrorCode::InvalidCredentials,
                    "the key store password is not UTF-8",
                )
            },
        )?;
        let connection = Pkcs11Connection::open(ctx, cluster, pin)?;
        Ok(Arc::new(connection))
    }

    fn describe(&self) -> String {
        format!("pkcs11 ({} configured tokens)", self.config.clusters.len())
    }
}
