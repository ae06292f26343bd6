//! Where the store is and where its root key comes from, from the global options; opening the
//! store and an engine on it, acting as the chosen principal, with the audit log of the data
//! directory.
//!
//! Audit, unless `--no-audit`: the engine records every request in a segment of its own in
//! `<data dir>/audit/segments/` (`AuditConfig::directory`).
//! Its digests are signed with the store's audit signing key, an ECDSA P-256 key kept as the store
//! secret `audit-signing-key` (wrapped under the root key like key material, created at `store
//! init` or first use, rewrapped by root key rotation); its public key is exported to
//! `<data dir>/audit/audit-signing-key.der` for verifiers. Any number of processes write at once:
//! each engine holds its own segment (by `flock`) until it closes it with its final digest, so
//! concurrent `keyplane` commands (and long-running services) never wait for each other.

use std::fs::{File, OpenOptions};
use std::io::Read;
use std::ops::Deref;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use keyplane::audit::{AuditConfig, DigestSigner, Durability};
use keyplane::locked_memory::LockedBytes;
use keyplane::{Caller, Engine, Error, LockPolicy};
use keyplane_sqlite::root_key::{
    Argon2Cost, EnvVarProvider, KeyFileProvider, PassphraseProvider, RootKeyProvider,
    DEFAULT_ROOT_KEY_VAR,
};
use keyplane_sqlite::{SqliteKeyStore, StoreOptions, StorePaths};
use zeroize::Zeroizing;

use crate::args::{Argon2Args, AuditDurability, GlobalArgs};
use crate::outcome::{Failure, INTERNAL};

/// The data directory when neither --data-dir nor KEYPLANE_HOME is given.
pub const DEFAULT_DATA_DIR: &str = "keyplane-data";
/// The audit directory inside the data directory.
pub const AUDIT_DIR: &str = "audit";
/// The audit log's name in the audit directory.
pub const AUDIT_LOG: &str = "audit.log";
/// The exported audit public key (DER SubjectPublicKeyInfo) in the audit directory.
pub const AUDIT_PUBLIC_KEY: &str = "audit-signing-key.der";
/// The lock file that keeps writers of the audit log apart.
pub const AUDIT_LOCK: &str = "audit.lock";
/// The store secret holding the audit signing key (PKCS#8).
pub const AUDIT_KEY_SECRET: &str = "audit-signing-key";

/// The files of the audit log of a data directory.
#[derive(Clone, Debug)]
pub struct AuditPaths {
    pub dir: PathBuf,
    pub log: PathBuf,
    pub public_key: PathBuf,
    pub lock: PathBuf,
}

impl AuditPaths {
    pub fn new(data_dir: &Path) -> Self {
        let dir = data_dir.join(AUDIT_DIR);
        AuditPaths {
            log: dir.join(AUDIT_LOG),
            public_key: dir.join(AUDIT_PUBLIC_KEY),
            lock: dir.join(AUDIT_LOCK),
            dir,
        }
    }
}

/// An engine on the store, as the chosen principal, with its audit segment open. Dropping it
/// closes the segment (writing its final digest) and releases it.
pub struct CliEngine {
    engine: Engine,
    /// The audit directory, when requests are audited.
    pub audit_log: Option<PathBuf>,
}

impl Deref for CliEngine {
    type Target = Engine;
    fn deref(&self) -> &Engine {
        &self.engine
    }
}

/// A failure of the audit setup (exit code 5, as the engine's AuditUnavailable).
fn audit_failure(message: impl Into<String>) -> Failure {
    Failure {
        code: "KMSInternalException".into(),
        message: message.into(),
        exit: INTERNAL,
    }
}

/// Where a root key comes from.
pub enum RootKeySource {
    KeyFile(PathBuf),
    EnvVar(String),
    PassphraseFile(PathBuf),
    PassphraseEnv(String),
}

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
        Ok(match given.into_iter().next() {
            Some(source) => source,
            None if std::env::var_os(DEFAULT_ROOT_KEY_VAR).is_some() => {
                RootKeySource::EnvVar(DEFAULT_ROOT_KEY_VAR.into())
            }
            None => RootKeySource::KeyFile(StorePaths::default_key_file(&self.data_dir)),
        })
    }

    /// The provider for `source`; `cost` applies to passphrase keys made from now on.
    pub fn provider(
        &self,
        source: RootKeySource,
        cost: &Argon2Args,
    ) -> Result<Arc<dyn RootKeyProvider>, Failure> {
        let policy = self.lock_policy();
        Ok(match source {
            RootKeySource::KeyFile(path) => Arc::new(KeyFileProvider::new(path, policy)),
            RootKeySource::EnvVar(var) => Arc::new(EnvVarProvider::new(var, policy)),
            RootKeySource::PassphraseFile(path) => {
                passphrase_provider(read_passphrase_file(&path)?, cost, policy)?
            }
            RootKeySource::PassphraseEnv(var) => {
                let value = std::env::var_os(&var).ok_or_else(|| {
                    Failure::from(keyplane::Error::AccessDenied(format!(
                        "environment variable {var} (the passphrase) is not set"
                    )))
                })?;
                let bytes = Zeroizing::new(std::os::unix::ffi::OsStringExt::into_vec(value));
                passphrase_provider(bytes, cost, policy)?
            }
        })
    }

    /// The provider the global options select.
    pub fn current_provider(&self) -> Result<Arc<dyn RootKeyProvider>, Failure> {
        self.provider(self.root_key_source()?, &default_cost())
    }

    pub fn open_store(&self) -> Result<Arc<SqliteKeyStore>, Failure> {
        let store = SqliteKeyStore::open(
            &self.data_dir,
            self.current_provider()?,
            self.store_options(),
        )?;
        Ok(Arc::new(store))
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

    /// The engine on `store`, as the chosen principal, audited unless `--no-audit`.
    pub fn engine_on(&self, store: Arc<SqliteKeyStore>) -> Result<CliEngine, Failure> {
        let caller = self.caller()?;
        let mut builder = Engine::builder()
            .region(&self.global.region)
            .account_id(&self.global.account_id)
            .lock_policy(self.lock_policy())
            .store(store.clone() as Arc<dyn keyplane::store::KeyStore>);
        let mut audit_log = None;
        let mut export = None;
        if !self.global.no_audit {
            let paths = self.audit_paths();
            let (key, public_der) = audit_signing_key(&store)?;
            create_audit_dir(&paths.dir)?;
            if !paths.public_key.exists() {
                export = Some(public_der);
            } else {
                check_public_key_file(&paths, &public_der)?;
            }
            let mut config = AuditConfig::directory(&paths.dir);
            config.durability = match self.global.audit_durability {
                AuditDurability::Synced => Durability::Synced,
                AuditDurability::Queued => Durability::Queued,
            };
            builder = builder.audit(config, key.expose());
            audit_log = Some(paths.dir);
        }
        let root = builder.build()?;
        if let Some(public_der) = export {
            // Only now that the log opened under this key (a log signed by another key does not).
            write_public_key(&self.audit_paths(), &public_der)?;
        }
        let engine = match caller {
            Some(caller) => root.for_caller(caller),
            None => root,
        };
        Ok(CliEngine { engine, audit_log })
    }

    pub fn engine(&self) -> Result<CliEngine, Failure> {
        self.engine_on(self.open_store()?)
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }
}

pub fn default_cost() -> Argon2Args {
    Argon2Args {
        argon2_memory_mib: 64,
        argon2_iterations: 3,
    }
}

fn passphrase_provider(
    passphrase: Zeroizing<Vec<u8>>,
    cost: &Argon2Args,
    policy: LockPolicy,
) -> Result<Arc<dyn RootKeyProvider>, Failure> {
    let cost = Argon2Cost {
        memory_kib: cost.argon2_memory_mib.saturating_mul(1024),
        iterations: cost.argon2_iterations,
        parallelism: 1,
    };
    Ok(Arc::new(PassphraseProvider::with_cost(
        passphrase, cost, policy,
    )?))
}

/// The first line of a passphrase file, without its line ending.
fn read_passphrase_file(path: &Path) -> Result<Zeroizing<Vec<u8>>, Failure> {
    let mut text = Zeroizing::new(Vec::new());
    std::fs::File::open(path)
        .and_then(|f| f.take(64 * 1024).read_to_end(&mut text))
        .map_err(|e| {
            Failure::from(keyplane::Error::AccessDenied(format!(
                "could not read the passphrase file {}: {e}",
                path.display()
            )))
        })?;
    let end = text
        .iter()
        .position(|&b| b == b'\n' || b == b'\r')
        .unwrap_or(text.len());
    Ok(Zeroizing::new(text[..end].to_vec()))
}

/// The store's audit signing key (created now if it has none) and its public key, DER.
pub fn audit_signing_key(store: &SqliteKeyStore) -> Result<(LockedBytes, Vec<u8>), Failure> {
    let key = store.get_or_create_secret(AUDIT_KEY_SECRET, || {
        keyplane::audit::generate_signing_key()
            .map_err(|e| Error::Internal(format!("could not generate the audit signing key: {e}")))
    })?;
    let signer = DigestSigner::from_pkcs8(key.expose()).map_err(|e| {
        audit_failure(format!(
            "the store's audit signing key (store secret '{AUDIT_KEY_SECRET}') is unusable: {e}"
        ))
    })?;
    let public_der = signer.public_key_der().to_vec();
    Ok((key, public_der))
}

/// Creates the audit directory (mode 0700) if missing.
pub fn create_audit_dir(dir: &Path) -> Result<(), Failure> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| audit_failure(format!("could not create {}: {e}", dir.display())))
}

/// Refuses to append to a log whose exported public key is not the store's audit key.
fn check_public_key_file(paths: &AuditPaths, public_der: &[u8]) -> Result<(), Failure> {
    let on_disk = std::fs::read(&paths.public_key).map_err(|e| {
        audit_failure(format!(
            "could not read {}: {e}",
            paths.public_key.display()
        ))
    })?;
    if on_disk == public_der {
        return Ok(());
    }
    Err(audit_failure(format!(
        "the audit public key {} (fingerprint {}) is not the store's audit signing key \
         (fingerprint {}): the audit log there was written under another key (a store re-created, \
         or restored from a backup older than its audit key). Move {} and {} aside (keep them: \
         `keyplane audit verify --log OLD_LOG --public-key OLD_KEY` still checks the old log) and \
         run again to start a new log; or give --no-audit",
        paths.public_key.display(),
        keyplane::audit::key_fingerprint(&on_disk),
        keyplane::audit::key_fingerprint(public_der),
        paths.log.display(),
        paths.public_key.display(),
    )))
}

/// Writes the audit public key file (mode 0644, via a temporary file renamed into place).
pub fn write_public_key(paths: &AuditPaths, public_der: &[u8]) -> Result<(), Failure> {
    let tmp = paths
        .dir
        .join(format!("{AUDIT_PUBLIC_KEY}.tmp.{}", std::process::id()));
    let written = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o644)
        .open(&tmp)
        .and_then(|mut f| {
            std::io::Write::write_all(&mut f, public_der)?;
            f.sync_all()
        })
        .and_then(|()| std::fs::rename(&tmp, &paths.public_key))
        .and_then(|()| File::open(&paths.dir)?.sync_all());
    written.map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        audit_failure(format!(
            "could not write the audit public key {}: {e}",
            paths.public_key.display()
        ))
    })
}

/// An `flock` on `path`: exclusive (creating the file) or shared (`None` if the file does not
/// exist). Says so on stderr when it has to wait for another process.
pub fn lock_file(path: &Path, exclusive: bool) -> Result<Option<File>, Failure> {
    use rustix::fs::{flock, FlockOperation};
    let opened = if exclusive {
        OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(path)
    } else {
        File::open(path)
    };
    let file = match opened {
        Ok(file) => file,
        Err(e) if !exclusive && e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(audit_failure(format!(
                "could not open {}: {e}",
                path.display()
            )))
        }
    };
    let (now, wait) = if exclusive {
        (
            FlockOperation::NonBlockingLockExclusive,
            FlockOperation::LockExclusive,
        )
    } else {
        (
            FlockOperation::NonBlockingLockShared,
            FlockOperation::LockShared,
        )
    };
    let locked = match flock(&file, now) {
        Err(rustix::io::Errno::WOULDBLOCK) => {
            eprintln!(
                "keyplane: waiting for another keyplane process to finish with the audit log ({})",
                path.display()
            );
            flock(&file, wait)
        }
        other => other,
    };
    locked.map_err(|e| audit_failure(format!("could not lock {}: {e}", path.display())))?;
    Ok(Some(file))
}
