//! Where a store's root key comes from, as the CLI has it, plus a caller's own provider.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use keyplane::{Error, LockPolicy};
use keyplane_sqlite::root_key::{
    Argon2Cost, EnvVarProvider, KeyFileProvider, PassphraseProvider, RootKeyProvider,
    DEFAULT_ROOT_KEY_VAR,
};
use keyplane_sqlite::StorePaths;
use zeroize::Zeroizing;

use crate::error::{ErrorKind, OpenError};

/// The environment variable naming a root key file (the CLI's `--root-key-file`).
pub const ROOT_KEY_FILE_VAR: &str = "KEYPLANE_ROOT_KEY_FILE";

/// Where a root key comes from. No `Clone`; `Debug` shows no passphrase.
pub enum RootKeySource {
    /// A key file: base64 of 32 bytes, mode 0600 (created with a new key when a store is made).
    KeyFile(PathBuf),
    /// An environment variable holding base64 of 32 bytes.
    EnvVar(String),
    /// The first line of this file is a passphrase (argon2id).
    PassphraseFile(PathBuf),
    /// This environment variable holds a passphrase (argon2id).
    PassphraseEnv(String),
    /// A passphrase given directly (argon2id); zeroed when dropped.
    Passphrase(Zeroizing<Vec<u8>>),
    /// The caller's own provider (a secret manager, an HSM, a callback from C).
    Provider(Arc<dyn RootKeyProvider>),
}

impl std::fmt::Debug for RootKeySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RootKeySource::KeyFile(p) => write!(f, "KeyFile({})", p.display()),
            RootKeySource::EnvVar(v) => write!(f, "EnvVar({v})"),
            RootKeySource::PassphraseFile(p) => write!(f, "PassphraseFile({})", p.display()),
            RootKeySource::PassphraseEnv(v) => write!(f, "PassphraseEnv({v})"),
            RootKeySource::Passphrase(_) => f.write_str("Passphrase(redacted)"),
            RootKeySource::Provider(p) => write!(f, "Provider({})", p.describe()),
        }
    }
}

impl RootKeySource {
    /// The source the environment names, as the CLI reads it without options:
    /// `KEYPLANE_ROOT_KEY_FILE` (a key file), else `KEYPLANE_ROOT_KEY` if set (the key itself),
    /// else the key file `root.key` in the data directory `dir`.
    pub fn from_env(dir: &Path) -> Self {
        if let Some(file) = std::env::var_os(ROOT_KEY_FILE_VAR).filter(|v| !v.is_empty()) {
            return RootKeySource::KeyFile(PathBuf::from(file));
        }
        Self::default_for(dir)
    }

    /// `KEYPLANE_ROOT_KEY` if set, else the key file `root.key` in `dir`.
    pub fn default_for(dir: &Path) -> Self {
        if std::env::var_os(DEFAULT_ROOT_KEY_VAR).is_some() {
            RootKeySource::EnvVar(DEFAULT_ROOT_KEY_VAR.into())
        } else {
            RootKeySource::KeyFile(StorePaths::default_key_file(dir))
        }
    }

    /// The provider for this source; `cost` applies to passphrase keys made from now on.
    pub fn provider(
        self,
        cost: Argon2Cost,
        policy: LockPolicy,
    ) -> Result<Arc<dyn RootKeyProvider>, OpenError> {
        let passphrase = |bytes| -> Result<Arc<dyn RootKeyProvider>, OpenError> {
            PassphraseProvider::with_cost(bytes, cost, policy)
                .map(|p| Arc::new(p) as Arc<dyn RootKeyProvider>)
                .map_err(|e| OpenError::classify(e, None))
        };
        Ok(match self {
            RootKeySource::KeyFile(path) => Arc::new(KeyFileProvider::new(path, policy)),
            RootKeySource::EnvVar(var) => Arc::new(EnvVarProvider::new(var, policy)),
            RootKeySource::PassphraseFile(path) => passphrase(read_passphrase_file(&path)?)?,
            RootKeySource::PassphraseEnv(var) => {
                let value = std::env::var_os(&var).ok_or_else(|| {
                    OpenError::new(
                        ErrorKind::RootKeyMissing,
                        format!("environment variable {var} (the passphrase) is not set"),
                    )
                })?;
                passphrase(Zeroizing::new(std::os::unix::ffi::OsStringExt::into_vec(
                    value,
                )))?
            }
            RootKeySource::Passphrase(bytes) => passphrase(bytes)?,
            RootKeySource::Provider(provider) => provider,
        })
    }
}

/// The first line of a passphrase file, without its line ending (at most 64 KiB are read).
pub fn read_passphrase_file(path: &Path) -> Result<Zeroizing<Vec<u8>>, OpenError> {
    let mut text = Zeroizing::new(Vec::new());
    std::fs::File::open(path)
        .and_then(|f| f.take(64 * 1024).read_to_end(&mut text))
        .map_err(|e| {
            OpenError::classify(
                Error::AccessDenied(format!(
                    "could not read the passphrase file {}: {e}",
                    path.display()
                )),
                None,
            )
        })?;
    let end = text
        .iter()
        .position(|&b| b == b'\n' || b == b'\r')
        .unwrap_or(text.len());
    Ok(Zeroizing::new(text[..end].to_vec()))
}
