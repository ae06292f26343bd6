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

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use cryptoki::context::{CInitializeArgs, Pkcs11};
use cryptoki::error::RvError;
use keyplane::custom_key_store::{
    ConnectFailure, Connection, ConnectionErrorCode, CustomKeyStoreBackend, CustomKeyStoreRecord,
};
use keyplane::fork::{Birthplace, ProcessLock};
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

/// A PKCS#11 module's context in this process: every store on the same module shares one,
/// initialised once per process and kept for the process's life.
struct Module {
    ctx: Pkcs11,
    /// The process that called `C_Initialize` for it.
    initialised_in: Birthplace,
}

/// The context of the module at `path`, initialised in this process.
///
/// A copy made by `fork` (a prefork server, Python's `multiprocessing`) inherits its parent's
/// contexts, but PKCS#11 (v2.40 base specification, 5.5.1) says a child must call `C_Initialize`
/// itself before it uses the module (its behaviour is undefined otherwise, and some modules
/// answer `CKR_CRYPTOKI_NOT_INITIALIZED`). So the first use in a copy initialises the module
/// again through a context of the copy's own. A module that kept its parent's initialisation
/// (SoftHSMv2 does) answers `CKR_CRYPTOKI_ALREADY_INITIALIZED`, and the copy goes on with that
/// state. The parent's context is never finalised in the copy: `C_Finalize` there could end
/// sessions or connections the two processes share.
fn module(path: &Path) -> std::result::Result<Pkcs11, ConnectFailure> {
    // A `ProcessLock`: a copy forked while another thread of its parent held the table is told
    // so at once, instead of waiting for ever (a `Mutex` taken then stays taken in the copy,
    // which has only the thread that forked). The table is held while a module initialises.
    static MODULES: ProcessLock<BTreeMap<PathBuf, Module>> = ProcessLock::new(BTreeMap::new());
    let mut modules = MODULES
        .lock()
        .map_err(|e| errors::held_at_fork("module table", e))?;
    if let Some(module) = modules.get(path) {
        if !module.initialised_in.is_elsewhere() {
            return Ok(module.ctx.clone());
        }
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
    let copy = modules.contains_key(path);
    if let Err(e) = ctx.initialize(CInitializeArgs::OsThreads) {
        let parents = matches!(
            e,
            cryptoki::error::Error::Pkcs11(RvError::CryptokiAlreadyInitialized, _)
        );
        // In a copy, a module that kept its parent's initialisation. Anywhere else, not ours to
        // finalise (another user of the module in this process, or no initialisation at all):
        // the context, dropped, would call C_Finalize.
        if !(copy && parents) {
            std::mem::forget(ctx);
            return Err(errors::connect_failure(e));
        }
    }
    let module = Module {
        ctx: ctx.clone(),
        initialised_in: Birthplace::here(),
    };
    if let Some(parents) = modules.insert(path.to_owned(), module) {
        // Dropping the last handle would call C_Finalize in this copy.
        std::mem::forget(parents.ctx);
    }
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
