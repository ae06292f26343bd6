//! Opening (or creating) the store an address names, and an engine on it with its audit log.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use keyplane::{Engine, EngineBuilder, Error};
use keyplane_postgres::{PgOptions, PostgresKeyStore};
use keyplane_sqlite::root_key::{Argon2Cost, RootKeyProvider};
use keyplane_sqlite::{SqliteKeyStore, StoreOptions, StorePaths};

use crate::audit::{self, AuditLock, AuditOptions, AuditPaths, LockMode};
use crate::error::{ErrorKind, OpenError};
use crate::{RootKeySource, StoreAddress};

/// How often, by default, an engine on a durable store looks for other processes' changes (and runs
/// due deletions and rotations): a rotation, disable or policy change made by another process
/// reaches this engine's data plane within this interval plus one reload.
pub const DEFAULT_SCHEDULER_INTERVAL: Duration = Duration::from_secs(1);

/// How to open a store.
#[derive(Debug, Default)]
pub struct OpenOptions {
    /// The root key; `None`: [`RootKeySource::from_env`] for the data directory.
    pub root_key: Option<RootKeySource>,
    /// Fail with [`ErrorKind::StoreMissing`] rather than create a store that does not exist.
    pub open_only: bool,
    /// The store's settings (lock policy, busy timeout).
    pub store: StoreOptions,
    /// The argon2id cost of a passphrase-derived root key made now (a new store).
    pub passphrase_cost: Argon2Cost,
    /// The audit log of engines on this store.
    pub audit: AuditOptions,
    /// How often engines on a durable store look for other processes' changes (the bound on how
    /// long a change made elsewhere takes to reach their data planes); `None`:
    /// [`DEFAULT_SCHEDULER_INTERVAL`]. It replaces the builder's `scheduler_interval`. Engines
    /// in memory (`memory:`) keep the builder's.
    pub scheduler_interval: Option<Duration>,
    /// A PostgreSQL store's node directory: where its default root key file (`root.key`) and
    /// this node's rollback witness are; `None`: `KEYPLANE_HOME`, else `./keyplane-data`.
    pub node_dir: Option<PathBuf>,
}

/// An open store (none for `memory:`), ready to start engines on.
#[derive(Debug)]
pub struct Opened {
    address: StoreAddress,
    backing: Backing,
    created: bool,
    audit: AuditOptions,
    /// Given to engines on the durable store; `None`: the builder's (the CLI's one-shot commands).
    scheduler_interval: Option<Duration>,
}

/// What an [`Opened`] store keeps its keys in.
#[derive(Debug)]
enum Backing {
    /// `memory:`: each engine its own in-memory store.
    Memory,
    Sqlite(Arc<SqliteKeyStore>),
    /// A PostgreSQL store, with this node's directory (its audit log and rollback witness).
    Postgres {
        store: Arc<PostgresKeyStore>,
        node_dir: PathBuf,
    },
}

/// Opens the store at `address`, creating it (a new root key from the source: a key file is
/// written with mode 0600) unless `options.open_only`. A new store also gets its audit signing key
/// and exported public key, as `keyplane store init` makes them, unless the audit log is off.
pub fn open(address: &StoreAddress, options: OpenOptions) -> Result<Opened, OpenError> {
    let dir = match address {
        StoreAddress::Memory => {
            return Ok(Opened {
                address: address.clone(),
                backing: Backing::Memory,
                created: false,
                audit: options.audit,
                scheduler_interval: None,
            })
        }
        StoreAddress::Postgres(url) => return open_postgres(address, url, options),
        StoreAddress::Sqlite(dir) => dir.clone(),
    };
    let source = options
        .root_key
        .unwrap_or_else(|| RootKeySource::from_env(&dir));
    let provider = source.provider(options.passphrase_cost, options.store.lock_policy)?;
    let (store, created) = open_or_create(&dir, provider, options.store, options.open_only)?;
    if created && options.audit.enabled && options.audit.log.is_none() {
        audit::init(&dir, &store)?;
    }
    Ok(Opened::durable(
        address,
        Backing::Sqlite(Arc::new(store)),
        created,
        options.audit,
        options.scheduler_interval,
    ))
}

/// The node directory of a PostgreSQL store (see [`OpenOptions::node_dir`]).
pub fn node_dir(options: &OpenOptions) -> PathBuf {
    options.node_dir.clone().unwrap_or_else(|| {
        std::env::var_os(crate::HOME_VAR)
            .filter(|v| !v.is_empty())
            .map_or_else(|| PathBuf::from(crate::DEFAULT_DATA_DIR), PathBuf::from)
    })
}

/// Opens (or creates) the PostgreSQL store at `url`: the root key from the same sources as for
/// SQLite, with the node directory in the data directory's place.
fn open_postgres(
    address: &StoreAddress,
    url: &str,
    options: OpenOptions,
) -> Result<Opened, OpenError> {
    let dir = node_dir(&options);
    if !dir.is_dir() {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .map_err(|e| {
                OpenError::new(
                    ErrorKind::ReadOnly,
                    format!("could not create the node directory {}: {e}", dir.display()),
                )
            })?;
    }
    let source = options
        .root_key
        .unwrap_or_else(|| RootKeySource::from_env(&dir));
    let provider = source.provider(options.passphrase_cost, options.store.lock_policy)?;
    let pg_options = PgOptions {
        lock_policy: options.store.lock_policy,
        witness_dir: Some(dir.clone()),
        ..PgOptions::default()
    };
    let classify = |e| OpenError::classify(e, None);
    let opened = PostgresKeyStore::open(url, Arc::clone(&provider), pg_options.clone());
    let (store, created) = match opened {
        Ok(store) => (store, false),
        Err(Error::NotFound(_)) if !options.open_only => {
            match PostgresKeyStore::init(url, Arc::clone(&provider), pg_options.clone()) {
                Ok(store) => (store, true),
                // Another node created it first: open theirs.
                Err(Error::AlreadyExists(_)) => (
                    PostgresKeyStore::open(url, provider, pg_options).map_err(classify)?,
                    false,
                ),
                Err(e) => return Err(classify(e)),
            }
        }
        Err(e) => return Err(classify(e)),
    };
    let backing = Backing::Postgres {
        store: Arc::new(store),
        node_dir: dir,
    };
    Ok(Opened::durable(
        address,
        backing,
        created,
        options.audit,
        options.scheduler_interval,
    ))
}

fn open_or_create(
    dir: &Path,
    provider: Arc<dyn RootKeyProvider>,
    options: StoreOptions,
    open_only: bool,
) -> Result<(SqliteKeyStore, bool), OpenError> {
    let classify = |e| OpenError::classify(e, Some(dir));
    if open_only || StorePaths::new(dir).db.exists() {
        return SqliteKeyStore::open(dir, provider, options)
            .map(|s| (s, false))
            .map_err(classify);
    }
    match SqliteKeyStore::init(dir, Arc::clone(&provider), options.clone()) {
        Ok(store) => Ok((store, true)),
        // Another process created it first: open theirs.
        Err(Error::AlreadyExists(_)) => SqliteKeyStore::open(dir, provider, options)
            .map(|s| (s, false))
            .map_err(classify),
        Err(e) => Err(classify(e)),
    }
}

impl Opened {
    /// A durable store just opened (or created), its engines following other processes' changes
    /// every `scheduler_interval` (`None`: the default).
    fn durable(
        address: &StoreAddress,
        backing: Backing,
        created: bool,
        audit: AuditOptions,
        scheduler_interval: Option<Duration>,
    ) -> Opened {
        Opened {
            address: address.clone(),
            backing,
            created,
            audit,
            scheduler_interval: Some(scheduler_interval.unwrap_or(DEFAULT_SCHEDULER_INTERVAL)),
        }
    }

    /// A store already open (the CLI's commands that need the store itself), with the audit
    /// settings of engines started on it. Their engines keep the builder's `scheduler_interval`
    /// (a one-shot command reloads before each control-plane call and needs no background
    /// thread).
    pub fn from_store(store: Arc<SqliteKeyStore>, audit: AuditOptions) -> Self {
        Opened {
            address: StoreAddress::Sqlite(store.paths().dir.clone()),
            backing: Backing::Sqlite(store),
            created: false,
            audit,
            scheduler_interval: None,
        }
    }

    /// The scheduler interval engines on this store get (`None`: the builder's).
    pub fn scheduler_interval(&self) -> Option<Duration> {
        self.scheduler_interval
    }

    /// The address opened.
    pub fn address(&self) -> &StoreAddress {
        &self.address
    }

    /// The SQLite store; `None` for `memory:` and PostgreSQL.
    pub fn store(&self) -> Option<&Arc<SqliteKeyStore>> {
        match &self.backing {
            Backing::Sqlite(store) => Some(store),
            _ => None,
        }
    }

    /// The PostgreSQL store; `None` for the others.
    pub fn postgres(&self) -> Option<&Arc<PostgresKeyStore>> {
        match &self.backing {
            Backing::Postgres { store, .. } => Some(store),
            _ => None,
        }
    }

    /// Whether [`open`] created the store just now.
    pub fn created(&self) -> bool {
        self.created
    }

    /// Starts an engine with `builder`'s settings on this store, auditing as the options say
    /// (`memory:` has no data directory: its engines audit only to an explicit
    /// [`AuditOptions::log`]; a PostgreSQL store's engines audit in the node directory).
    pub fn engine(&self, builder: EngineBuilder) -> Result<StoreEngine, OpenError> {
        // The durable store, and the directory of this process's audit log: a SQLite store's
        // data directory, or a PostgreSQL store's node directory (each node audits to its own
        // log, signed by the fleet's key, kept in the store).
        let (store, dir): (Arc<dyn keyplane::store::KeyStore>, PathBuf) = match &self.backing {
            Backing::Sqlite(store) => (Arc::clone(store) as _, store.paths().dir.clone()),
            Backing::Postgres { store, node_dir } => (Arc::clone(store) as _, node_dir.clone()),
            Backing::Memory => {
                let mut builder = builder;
                let mut audit_log = None;
                if let (true, Some(log)) = (self.audit.enabled, &self.audit.log) {
                    // No store to keep a signing key: a new one per engine (verify with the
                    // public key the engine exports).
                    let policy = builder.current_config().lock_policy;
                    let key = keyplane::audit::generate_signing_key(policy)
                        .map_err(|e| OpenError::new(ErrorKind::Audit, e.to_string()))?;
                    builder = builder.audit(self.audit.config(log), key);
                    audit_log = Some(log.clone());
                }
                let engine = builder.build().map_err(|e| OpenError::classify(e, None))?;
                return Ok(StoreEngine {
                    engine,
                    audit_log,
                    lock: None,
                });
            }
        };
        let mut builder = builder.store(Arc::clone(&store));
        if let Some(every) = self.scheduler_interval {
            // Follow other processes' changes without waiting for a control-plane call.
            builder = builder.scheduler_interval(every);
        }
        let mut lock = None;
        let mut audit_log = None;
        let mut export = None;
        let paths = AuditPaths::new(&dir);
        if self.audit.enabled {
            let policy = builder.current_config().lock_policy;
            let (key, public_der) = audit::signing_key(store.as_ref(), &dir, policy)?;
            audit::create_dir(&paths.dir)?;
            if !paths.public_key.exists() {
                export = Some(public_der);
            } else {
                audit::check_public_key_file(&paths, &public_der)?;
            }
            let config = match &self.audit.log {
                // The data directory's audit directory: a segment of this process's own, so any
                // number of processes write at once (see keyplane::audit's segments).
                None => self.audit.directory_config(&paths.dir),
                // A log file of the caller's choosing takes one writer at a time.
                Some(log) => {
                    let mode = if self.audit.wait_for_writer {
                        LockMode::WriteWait
                    } else {
                        LockMode::WriteNow
                    };
                    lock = audit::lock(&paths.lock, mode)?;
                    self.audit.config(log)
                }
            };
            audit_log = Some(config.path.clone());
            builder = builder.audit(config, key);
        }
        let engine = builder
            .build()
            .map_err(|e| OpenError::classify(e, Some(&dir)))?;
        if let Some(public_der) = export {
            // Only now that the log opened under this key (a log signed by another key does not).
            audit::write_public_key(&paths, &public_der)?;
        }
        Ok(StoreEngine {
            engine,
            audit_log,
            lock,
        })
    }
}

/// An engine on a store, with its audit log open (and, while the log takes one writer at a time,
/// its lock held). Dropping it closes the log (writing its final digest), then releases the lock.
#[derive(Debug)]
pub struct StoreEngine {
    // Field order is drop order: the engine (and its log) first, the lock last.
    engine: Engine,
    audit_log: Option<PathBuf>,
    lock: Option<AuditLock>,
}

impl StoreEngine {
    /// The engine.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The audit log requests are recorded in, if any.
    pub fn audit_log(&self) -> Option<&Path> {
        self.audit_log.as_deref()
    }

    /// Replaces the engine (a handle for another caller: `engine.for_caller(...)`), keeping the
    /// log and its lock.
    pub fn map_engine(self, f: impl FnOnce(Engine) -> Engine) -> Self {
        StoreEngine {
            engine: f(self.engine),
            audit_log: self.audit_log,
            lock: self.lock,
        }
    }

    /// The engine and what must live exactly as long as its last handle (the audit lock).
    pub fn into_parts(self) -> (Engine, Option<AuditLock>) {
        (self.engine, self.lock)
    }
}

impl std::ops::Deref for StoreEngine {
    type Target = Engine;
    fn deref(&self) -> &Engine {
        &self.engine
    }
}
