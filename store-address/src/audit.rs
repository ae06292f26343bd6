//! The audit log of a data directory, set up the same way for every binding.
//!
//! Unless turned off, an engine on a durable store records every request in a segment of its own
//! in `<data dir>/audit/segments/` (`keyplane::audit::AuditConfig::directory`): any number of
//! processes, of any binding, write one data directory's audit log at once, and
//! `keyplane audit verify` checks every segment. Its digests are signed with the store's audit
//! signing key, an ECDSA P-256 key kept as the store secret `audit-signing-key` (wrapped under the
//! root key like key material, created at store creation or first use, rewrapped by root key
//! rotation); its public key is exported to `<data dir>/audit/audit-signing-key.der` for
//! verifiers.
//!
//! A log file of the caller's choosing ([`AuditOptions::log`]) takes one writer at a time through
//! [`lock`] (an exclusive `flock` on `<data dir>/audit/audit.lock`, held for an engine's
//! lifetime).

use std::fs::{File, OpenOptions};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use keyplane::audit::{AuditConfig, DigestSigner, Durability};
use keyplane::store::KeyStore;
use keyplane::Error;
use keyplane::LockedBytes;
use keyplane_sqlite::SqliteKeyStore;

use crate::error::{ErrorKind, OpenError};

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
    /// The audit files of the data directory `data_dir`.
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

/// How an engine on a durable store audits (the CLI's defaults: on, the data directory's log,
/// synced, a digest every 4096 records or every second).
#[derive(Clone, Debug)]
pub struct AuditOptions {
    /// Record requests at all.
    pub enabled: bool,
    /// The log file; `None`: `<data dir>/audit/audit.log` (the public key and lock stay in the
    /// data directory's audit directory either way).
    pub log: Option<PathBuf>,
    /// When requests are answered relative to their record.
    pub durability: Durability,
    /// A digest when records have waited this long; `None`: the engine's default (one second).
    pub digest_every: Option<Duration>,
    /// When another process writes the log: wait for it (the CLI, whose commands are short) or
    /// fail at once with [`ErrorKind::Audit`] (long-lived services).
    pub wait_for_writer: bool,
}

impl Default for AuditOptions {
    fn default() -> Self {
        AuditOptions {
            enabled: true,
            log: None,
            durability: Durability::Synced,
            digest_every: None,
            wait_for_writer: false,
        }
    }
}

impl AuditOptions {
    /// No audit log.
    pub fn off() -> Self {
        AuditOptions {
            enabled: false,
            ..Self::default()
        }
    }

    /// The engine's log settings for the log file `log`.
    pub(crate) fn config(&self, log: &Path) -> AuditConfig {
        self.tuned(AuditConfig::new(log))
    }

    /// The engine's log settings for the audit directory `dir` (one segment per process).
    pub(crate) fn directory_config(&self, dir: &Path) -> AuditConfig {
        self.tuned(AuditConfig::directory(dir))
    }

    fn tuned(&self, mut config: AuditConfig) -> AuditConfig {
        config.durability = self.durability;
        if let Some(every) = self.digest_every {
            config.digest_every = every;
        }
        config
    }
}

fn failure(message: impl Into<String>) -> OpenError {
    OpenError::new(ErrorKind::Audit, message)
}

/// The store's audit signing key (created now if it has none) and its public key, DER.
pub fn signing_key(
    store: &dyn KeyStore,
    dir: &Path,
    policy: keyplane::LockPolicy,
) -> Result<(LockedBytes, Vec<u8>), OpenError> {
    let key = store
        .get_or_create_secret(AUDIT_KEY_SECRET, &mut || {
            keyplane::audit::generate_signing_key(policy).map_err(|e| {
                Error::Internal(format!("could not generate the audit signing key: {e}"))
            })
        })
        .map_err(|e| OpenError::classify(e, Some(dir)))?;
    let signer = DigestSigner::from_pkcs8(&key).map_err(|e| {
        failure(format!(
            "the store's audit signing key (store secret '{AUDIT_KEY_SECRET}') is unusable: {e}"
        ))
    })?;
    let public_der = signer.public_key_der().to_vec();
    Ok((key, public_der))
}

/// Creates the audit directory (mode 0700) if missing.
pub fn create_dir(dir: &Path) -> Result<(), OpenError> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| failure(format!("could not create {}: {e}", dir.display())))
}

/// Refuses to append to a log whose exported public key is not the store's audit key.
pub(crate) fn check_public_key_file(
    paths: &AuditPaths,
    public_der: &[u8],
) -> Result<(), OpenError> {
    let on_disk = std::fs::read(&paths.public_key).map_err(|e| {
        failure(format!(
            "could not read {}: {e}",
            paths.public_key.display()
        ))
    })?;
    if on_disk == public_der {
        return Ok(());
    }
    Err(failure(format!(
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
pub fn write_public_key(paths: &AuditPaths, public_der: &[u8]) -> Result<(), OpenError> {
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
        failure(format!(
            "could not write the audit public key {}: {e}",
            paths.public_key.display()
        ))
    })
}

/// How [`lock`] takes the audit lock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LockMode {
    /// A writer, waiting for another writer to finish (saying so on stderr).
    WriteWait,
    /// A writer, failing at once when another process writes.
    WriteNow,
    /// A reader (no file: no lock, `None`).
    Read,
}

/// A held audit lock: released when dropped.
#[derive(Debug)]
pub struct AuditLock {
    _file: File,
}

/// The one place writers (and readers) of a data directory's audit log are kept apart: an `flock`
/// on `path`, exclusive for writers (creating the file) or shared for readers (`None` if the file
/// does not exist). Replace this function when the log itself takes care of several writers.
pub fn lock(path: &Path, mode: LockMode) -> Result<Option<AuditLock>, OpenError> {
    use rustix::fs::{flock, FlockOperation};
    let exclusive = mode != LockMode::Read;
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
        Err(e) => return Err(failure(format!("could not open {}: {e}", path.display()))),
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
        Err(rustix::io::Errno::WOULDBLOCK) if mode == LockMode::WriteNow => {
            return Err(failure(format!(
                "another process is writing the audit log (it holds {}); one process at a time \
                 may write a data directory's audit log: stop it, or turn the audit log off or \
                 point it elsewhere in this one",
                path.display()
            )))
        }
        Err(rustix::io::Errno::WOULDBLOCK) => {
            eprintln!(
                "keyplane: waiting for another keyplane process to finish with the audit log ({})",
                path.display()
            );
            flock(&file, wait)
        }
        other => other,
    };
    locked.map_err(|e| failure(format!("could not lock {}: {e}", path.display())))?;
    Ok(Some(AuditLock { _file: file }))
}

/// What [`init`] did: the public key's path, its fingerprint, and where an earlier store's log
/// was moved.
#[derive(Debug)]
pub struct AuditInit {
    pub public_key: PathBuf,
    pub fingerprint: String,
    pub archived: Option<PathBuf>,
}

/// At store creation: moves an earlier store's audit log aside, creates the audit signing key (a
/// store secret) and exports its public key.
pub fn init(data_dir: &Path, store: &SqliteKeyStore) -> Result<AuditInit, OpenError> {
    let paths = AuditPaths::new(data_dir);
    create_dir(&paths.dir)?;
    let mut archived = None;
    let segments = paths.dir.join(keyplane::audit::SEGMENTS_DIR);
    if paths.log.exists() || paths.public_key.exists() || segments.exists() {
        let _lock = lock(&paths.lock, LockMode::WriteWait)?;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or_default();
        let to = paths.dir.join(format!("earlier-{now}"));
        create_dir(&to)?;
        for file in [&paths.log, &paths.public_key, &segments] {
            if let Some(name) = file.file_name().filter(|_| file.exists()) {
                std::fs::rename(file, to.join(name)).map_err(|e| {
                    failure(format!("could not move {} aside: {e}", file.display()))
                })?;
            }
        }
        archived = Some(to);
    }
    let (_, public_der) = signing_key(store, data_dir, store.lock_policy())?;
    write_public_key(&paths, &public_der)?;
    Ok(AuditInit {
        public_key: paths.public_key,
        fingerprint: keyplane::audit::key_fingerprint(&public_der),
        archived,
    })
}
