//! Where the store is and where its root key comes from, from the global options; opening the
//! store and an engine on it.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use keyplane::{Engine, LockPolicy};
use keyplane_sqlite::root_key::{
    Argon2Cost, EnvVarProvider, KeyFileProvider, PassphraseProvider, RootKeyProvider,
    DEFAULT_ROOT_KEY_VAR,
};
use keyplane_sqlite::{SqliteKeyStore, StoreOptions, StorePaths};
use zeroize::Zeroizing;

use crate::args::{Argon2Args, GlobalArgs};
use crate::outcome::Failure;

/// The data directory when neither --data-dir nor KEYPLANE_HOME is given.
pub const DEFAULT_DATA_DIR: &str = "keyplane-data";

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

    pub fn engine_on(&self, store: Arc<SqliteKeyStore>) -> Result<Engine, Failure> {
        Ok(Engine::builder()
            .region(&self.global.region)
            .account_id(&self.global.account_id)
            .lock_policy(self.lock_policy())
            .store(store)
            .build()?)
    }

    pub fn engine(&self) -> Result<Engine, Failure> {
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
