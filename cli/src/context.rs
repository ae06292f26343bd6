//! Where the store is and where its root key comes from, from the global options; opening the
//! store and an engine on it, acting as the chosen principal, with the audit log of the data
//! directory.
//!
//! Naming, opening and auditing a store is shared with the C ABI and Python: it lives in the crate
//! `keyplane-store-address` (its `audit` module describes the log, its signing key and the lock
//! that keeps writers apart). This module turns the command line into that crate's options.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use keyplane::{Caller, Engine, EngineBuilder, LockPolicy};
use keyplane_sqlite::root_key::{Argon2Cost, RootKeyProvider};
use keyplane_sqlite::{SqliteKeyStore, StoreOptions};
use keyplane_store_address::{
    open, AuditOptions, AuditPaths, OpenOptions, Opened, StoreAddress, StoreEngine,
    DEFAULT_DATA_DIR, STORE_VAR,
};

pub use keyplane_store_address::RootKeySource;

use crate::args::{Argon2Args, AuditDurability, GlobalArgs};
use crate::outcome::Failure;

/// An engine on the store, as the chosen principal, with the audit log open.
pub type CliEngine = StoreEngine;

pub struct Context {
    pub global: GlobalArgs,
    pub data_dir: PathBuf,
}

impl Context {
    pub fn new(global: GlobalArgs) -> Self {
        let data_dir = global
            .data_dir
            .clone()
            .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR));
        Context { global, data_dir }
    }

    pub fn lock_policy(&self) -> LockPolicy {
        if self.global.allow_unlocked_memory {
            LockPolicy::Warn
        } else {
            LockPolicy::Require
        }
    }

    pub fn store_options(&self) -> StoreOptions {
        StoreOptions {
            lock_policy: self.lock_policy(),
            ..StoreOptions::default()
        }
    }

    /// The root key source the global options name (at most one), else $KEYPLANE_ROOT_KEY if
    /// set, else the key file in the data directory.
    pub fn root_key_source(&self) -> Result<RootKeySource, Failure> {
        let g = &self.global;
        let given: Vec<RootKeySource> = [
            g.root_key_file.clone().map(RootKeySource::KeyFile),
            g.root_key_env.clone().map(RootKeySource::EnvVar),
            g.passphrase_file.clone().map(RootKeySource::PassphraseFile),
            g.passphrase_env.clone().map(RootKeySource::PassphraseEnv),
        ]
        .into_iter()
        .flatten()
        .collect();
        if given.len() > 1 {
            return Err(Failure::usage(
                "give at most one of --root-key-file, --root-key-env, --passphrase-file and \
                 --passphrase-env",
            ));
        }
        Ok(given
            .into_iter()
            .next()
            .unwrap_or_else(|| RootKeySource::default_for(&self.data_dir)))
    }

    /// The provider for `source`; `cost` applies to passphrase keys made from now on.
    pub fn provider(
        &self,
        source: RootKeySource,
        cost: &Argon2Args,
    ) -> Result<Arc<dyn RootKeyProvider>, Failure> {
        Ok(source.provider(argon2_cost(cost), self.lock_policy())?)
    }

    /// The provider the global options select.
    pub fn current_provider(&self) -> Result<Arc<dyn RootKeyProvider>, Failure> {
        self.provider(self.root_key_source()?, &default_cost())
    }

    /// The store, which must exist (`keyplane store init` creates it).
    pub fn open_store(&self) -> Result<Arc<SqliteKeyStore>, Failure> {
        let options = OpenOptions {
            root_key: Some(self.root_key_source()?),
            open_only: true,
            store: self.store_options(),
            passphrase_cost: argon2_cost(&default_cost()),
            audit: AuditOptions::off(),
            // Only the store is used: engines start through `Opened::from_store`, without one.
            scheduler_interval: None,
            node_dir: None,
        };
        let opened = open(&StoreAddress::data_dir(&self.data_dir), options)?;
        let store = opened.store().cloned();
        store.ok_or_else(|| Failure::usage("the data directory names no durable store"))
    }

    /// The caller the global options name: `--principal` (else the account root), through
    /// `--via-service` if given. `None`: the engine's own default, the account root.
    pub fn caller(&self) -> Result<Option<Caller>, Failure> {
        let g = &self.global;
        let caller = match (&g.principal, &g.via_service) {
            (None, None) => return Ok(None),
            (Some(arn), _) => Caller::new(arn)?,
            (None, Some(_)) => Caller::account_root(&g.account_id)?,
        };
        Ok(Some(match &g.via_service {
            Some(service) if service.contains('.') => caller.via_service(service),
            Some(service) => caller.via_service(&format!("{service}.{}.amazonaws.com", g.region)),
            None => caller,
        }))
    }

    pub fn audit_paths(&self) -> AuditPaths {
        AuditPaths::new(&self.data_dir)
    }

    /// How the engine audits: per `--no-audit` and `--audit-durability`; waiting for another
    /// command that writes the log.
    pub fn audit_options(&self) -> AuditOptions {
        if self.global.no_audit {
            return AuditOptions::off();
        }
        AuditOptions {
            durability: match self.global.audit_durability {
                AuditDurability::Synced => keyplane::audit::Durability::Synced,
                AuditDurability::Queued => keyplane::audit::Durability::Queued,
            },
            wait_for_writer: true,
            ..AuditOptions::default()
        }
    }

    /// `builder` given the stores of the other Regions that `--region-store` names.
    pub fn with_region_stores(&self, builder: EngineBuilder) -> Result<EngineBuilder, Failure> {
        let peers = (self.global.region_stores.iter())
            .map(|text| keyplane_store_address::RegionStoreAddress::parse(text))
            .collect::<Result<Vec<_>, _>>()?;
        let options = self.store_options();
        Ok(keyplane_store_address::with_region_stores(
            builder, &peers, &options,
        )?)
    }

    /// `builder` with the PKCS#11 backend of the tokens `--pkcs11-token` names, if any.
    pub fn with_pkcs11_tokens(&self, builder: EngineBuilder) -> Result<EngineBuilder, Failure> {
        if self.global.pkcs11_tokens.is_empty() {
            return Ok(builder);
        }
        let mut config = keyplane_pkcs11::Pkcs11Config::default();
        for text in &self.global.pkcs11_tokens {
            let parsed = text
                .split_once('=')
                .and_then(|(cluster, rest)| rest.split_once(':').map(|(m, l)| (cluster, m, l)))
                .filter(|(c, m, l)| !c.is_empty() && !m.is_empty() && !l.is_empty());
            let Some((cluster, module, label)) = parsed else {
                return Err(Failure::usage(format!(
                    "--pkcs11-token takes CLUSTER_ID=MODULE:TOKEN_LABEL, not '{text}'"
                )));
            };
            config = config.with_token(cluster, module, label);
        }
        Ok(builder.custom_key_store_backend(
            keyplane::CustomKeyStoreType::AwsCloudhsm,
            Arc::new(keyplane_pkcs11::Pkcs11Backend::new(config)),
        ))
    }

    /// `builder` with the external key store backend (XKS proxies reached over TLS with the
    /// `--xks-ca-bundle` CA certificates, or the platform's).
    pub fn with_xks(&self, builder: EngineBuilder) -> EngineBuilder {
        let mut config = keyplane_xks::XksBackendConfig::new(&self.global.region);
        if let Some(bundle) = &self.global.xks_ca_bundle {
            config.trust = keyplane_xks::TrustAnchors::CaBundle(bundle.clone());
        }
        if let Some(ms) = self.global.xks_timeout_ms {
            config.timeout = std::time::Duration::from_millis(ms.max(1));
        }
        builder.custom_key_store_backend(
            keyplane::CustomKeyStoreType::ExternalKeyStore,
            Arc::new(keyplane_xks::XksBackend::new(config)),
        )
    }

    /// The engine on `store`, as the chosen principal, audited unless `--no-audit`.
    pub fn engine_on(&self, store: Arc<SqliteKeyStore>) -> Result<CliEngine, Failure> {
        self.engine_of(&Opened::from_store(store, self.audit_options()))
    }

    /// An engine on `opened` with the global options' Region, account, backends and caller.
    fn engine_of(&self, opened: &Opened) -> Result<CliEngine, Failure> {
        let caller = self.caller()?;
        let builder = Engine::builder()
            .region(&self.global.region)
            .account_id(&self.global.account_id)
            .lock_policy(self.lock_policy());
        let builder = self.with_region_stores(builder)?;
        let builder = self.with_xks(self.with_pkcs11_tokens(builder)?);
        let engine = opened.engine(builder)?;
        Ok(match caller {
            Some(caller) => engine.map_engine(|root| root.for_caller(caller)),
            None => engine,
        })
    }

    /// The engine of the ordinary commands: on the PostgreSQL store that `KEYPLANE_STORE` names
    /// (a fleet's shared store; the data directory is then this node's directory: its root key
    /// file, rollback witness and audit log), else on the data directory's SQLite store.
    pub fn engine(&self) -> Result<CliEngine, Failure> {
        let address = store_address(self)?;
        if !matches!(address, StoreAddress::Postgres(_)) {
            return self.engine_on(self.open_store()?);
        }
        // A one-shot command follows the store before each control-plane call.
        let opened = self.open_existing(&address, None)?;
        self.engine_of(&opened)
    }

    /// Opens the store at `address`, which must exist (every command but `store init`), with the
    /// global options' root key, store and audit settings and the data directory as the node
    /// directory (a PostgreSQL store's root key file, rollback witness and audit log);
    /// `scheduler_interval` is how often the engine follows other processes' changes (`None`:
    /// it follows before each control-plane call).
    pub fn open_existing(
        &self,
        address: &StoreAddress,
        scheduler_interval: Option<std::time::Duration>,
    ) -> Result<Opened, Failure> {
        let options = OpenOptions {
            root_key: Some(self.root_key_source()?),
            open_only: true,
            store: self.store_options(),
            // Applies only to a root key made now, and none is (open only).
            passphrase_cost: argon2_cost(&default_cost()),
            audit: self.audit_options(),
            scheduler_interval,
            node_dir: Some(self.data_dir.clone()),
        };
        Ok(open(address, options)?)
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }
}

/// The store address: `--data-dir` (or `KEYPLANE_HOME`) names a data directory; else
/// `KEYPLANE_STORE` a full address (`sqlite:PATH`, `memory:`, `postgres://...`); else
/// `./keyplane-data`.
pub fn store_address(ctx: &Context) -> Result<StoreAddress, Failure> {
    let home = std::env::var_os(keyplane_store_address::HOME_VAR).map(PathBuf::from);
    let from_option = ctx.global.data_dir.is_some() && ctx.global.data_dir != home;
    if !from_option {
        if let Some(text) = std::env::var_os(STORE_VAR).filter(|v| !v.is_empty()) {
            let text = text
                .into_string()
                .map_err(|_| Failure::usage(format!("{STORE_VAR} is not valid UTF-8")))?;
            return Ok(StoreAddress::parse(&text)?);
        }
    }
    Ok(StoreAddress::data_dir(ctx.data_dir()))
}

pub fn default_cost() -> Argon2Args {
    Argon2Args {
        argon2_memory_mib: 64,
        argon2_iterations: 3,
    }
}

fn argon2_cost(cost: &Argon2Args) -> Argon2Cost {
    Argon2Cost {
        memory_kib: cost.argon2_memory_mib.saturating_mul(1024),
        iterations: cost.argon2_iterations,
        parallelism: 1,
    }
}
