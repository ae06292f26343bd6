//! Durable stores from Python: `Engine(store=..., home=..., root_key=...)` and
//! `keyplane.client("kms", home=...)` name, open and audit a store through the crate
//! `keyplane-store-address`, as the CLI and the C ABI do.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use keyplane::audit::Durability;
use keyplane::LockedBytes;
use keyplane::{EngineBuilder, LockPolicy};
use keyplane_sqlite::root_key::{CallbackProvider, RootKey};
use keyplane_store_address::audit::AuditLock;
use keyplane_store_address::{
    open, AuditOptions, OpenError, OpenOptions, RootKeySource, StoreAddress,
};
use pyo3::prelude::*;
use zeroize::Zeroizing;

use crate::errors::{validation, Failure, Result};

/// The operation named in exceptions raised while opening a store.
const OPEN: &str = "OpenStore";

fn open_failure(e: OpenError) -> Failure {
    Failure::Engine(e.into_error(), OPEN)
}

/// The address `store`, else the data directory `home`, else `KEYPLANE_STORE`, else
/// `KEYPLANE_HOME`; `None`: none of them (the in-memory store).
fn address(store: Option<&str>, home: Option<PathBuf>) -> Result<Option<StoreAddress>> {
    match (store, home) {
        (Some(_), Some(_)) => Err(validation(
            "give store= (an address) or home= (a data directory), not both",
        )),
        (Some(text), None) => Ok(Some(StoreAddress::parse(text).map_err(open_failure)?)),
        (None, Some(dir)) => Ok(Some(StoreAddress::data_dir(dir))),
        (None, None) => StoreAddress::from_env_opt().map_err(open_failure),
    }
}

/// The store address `keyplane.client` and `Engine` would open, as a string (`"memory:"` for the
/// in-memory store): `store`, else `home`, else `KEYPLANE_STORE`, else `KEYPLANE_HOME`.
#[pyfunction]
#[pyo3(signature = (store = None, home = None))]
pub(crate) fn resolve_store(store: Option<&str>, home: Option<PathBuf>) -> Result<String> {
    Ok(address(store, home)?
        .unwrap_or(StoreAddress::Memory)
        .to_string())
}

/// The store arguments of `Engine(...)`.
pub(crate) struct StoreArgs<'a> {
    pub(crate) store: Option<&'a str>,
    pub(crate) home: Option<PathBuf>,
    pub(crate) root_key_file: Option<PathBuf>,
    pub(crate) root_key_env: Option<String>,
    pub(crate) passphrase: Option<Zeroizing<Vec<u8>>>,
    pub(crate) root_key: Option<Py<PyAny>>,
    pub(crate) open_only: bool,
    pub(crate) audit: bool,
    pub(crate) audit_log: Option<PathBuf>,
    pub(crate) audit_durability: &'a str,
    pub(crate) audit_digest_interval_ms: u64,
    /// 0: the store's default (1 s).
    pub(crate) scheduler_interval_ms: u64,
    /// Other Regions' stores, by Region (multi-Region keys).
    pub(crate) region_stores: std::collections::BTreeMap<String, String>,
}

/// Asks a Python callable for the root key (32 bytes, `bytes` or `bytearray`).
fn callable_key(callable: &Py<PyAny>, policy: LockPolicy) -> keyplane::Result<RootKey> {
    let bytes = Python::attach(|py| -> PyResult<Zeroizing<Vec<u8>>> {
        Ok(Zeroizing::new(
            callable.bind(py).call0()?.extract::<Vec<u8>>()?,
        ))
    })
    .map_err(|e| {
        keyplane::Error::AccessDenied(format!(
            "the root_key callable is not set or failed to give the root key: {e}"
        ))
    })?;
    RootKey::from_locked(LockedBytes::copy_from(&bytes, policy)?)
}

impl StoreArgs<'_> {
    fn root_key(self_root: RootKeyArgs, policy: LockPolicy) -> Result<Option<RootKeySource>> {
        let RootKeyArgs {
            file,
            env,
            passphrase,
            callable,
        } = self_root;
        let given = [
            file.is_some(),
            env.is_some(),
            passphrase.is_some(),
            callable.is_some(),
        ];
        if given.iter().filter(|g| **g).count() > 1 {
            return Err(validation(
                "give at most one of root_key_file, root_key_env, passphrase and root_key",
            ));
        }
        Ok(if let Some(file) = file {
            Some(RootKeySource::KeyFile(file))
        } else if let Some(var) = env {
            Some(RootKeySource::EnvVar(var))
        } else if let Some(passphrase) = passphrase {
            Some(RootKeySource::Passphrase(passphrase))
        } else {
            callable.map(|callable| {
                let provider = CallbackProvider::new("the root_key callable", move || {
                    callable_key(&callable, policy)
                });
                RootKeySource::Provider(Arc::new(provider))
            })
        })
    }

    /// The engine `builder` makes, on the store these arguments name (or in memory), and the
    /// audit lock to keep while it lives.
    pub(crate) fn build(
        self,
        py: Python<'_>,
        builder: EngineBuilder,
        lock_policy: LockPolicy,
    ) -> Result<(keyplane::Engine, Option<AuditLock>)> {
        let durability = match self.audit_durability {
            "synced" => Durability::Synced,
            "queued" => Durability::Queued,
            other => {
                return Err(validation(format!(
                    "audit_durability must be 'synced' or 'queued', not '{other}'"
                )))
            }
        };
        let peers = (self.region_stores.iter())
            .map(|(region, address)| {
                keyplane_store_address::RegionStoreAddress::parse(&format!("{region}={address}"))
            })
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(open_failure)?;
        let options = keyplane_sqlite::StoreOptions {
            lock_policy,
            ..Default::default()
        };
        let builder = keyplane_store_address::with_region_stores(builder, &peers, &options)
            .map_err(open_failure)?;
        let address = address(self.store, self.home)?;
        let root_key = Self::root_key(
            RootKeyArgs {
                file: self.root_key_file,
                env: self.root_key_env,
                passphrase: self.passphrase,
                callable: self.root_key,
            },
            lock_policy,
        )?;
        let Some(address) = address.filter(StoreAddress::is_durable) else {
            return Ok((py.detach(|| builder.build())?, None));
        };
        let options = OpenOptions {
            root_key,
            open_only: self.open_only,
            store: keyplane_sqlite::StoreOptions {
                lock_policy,
                ..Default::default()
            },
            audit: if self.audit {
                AuditOptions {
                    log: self.audit_log,
                    durability,
                    digest_every: (self.audit_digest_interval_ms > 0)
                        .then(|| Duration::from_millis(self.audit_digest_interval_ms)),
                    ..AuditOptions::default()
                }
            } else {
                AuditOptions::off()
            },
            scheduler_interval: (self.scheduler_interval_ms > 0)
                .then(|| Duration::from_millis(self.scheduler_interval_ms)),
            ..OpenOptions::default()
        };
        let engine = py
            .detach(|| open(&address, options).and_then(|opened| opened.engine(builder)))
            .map_err(open_failure)?;
        Ok(engine.into_parts())
    }
}

struct RootKeyArgs {
    file: Option<PathBuf>,
    env: Option<String>,
    passphrase: Option<Zeroizing<Vec<u8>>>,
    callable: Option<Py<PyAny>>,
}
