//! The store handle's types: [`SqliteKeyStore`] with its [`StoreOptions`], and the connection it
//! holds with what was derived from the root key ([`Connected`]). Its operations are
//! `impl SqliteKeyStore` blocks by concern: opening, creating and the engine's `KeyStore`
//! operations in the store module, and store secrets, root key rotation, backup and verification
//! in their own modules.

use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use keyplane::LockPolicy;
use rusqlite::Connection;

use crate::layout::StorePaths;
use crate::root_key::RootKeyProvider;
use crate::sealing::StoreKeys;

/// Settings of an open store.
#[derive(Clone, Debug)]
pub struct StoreOptions {
    /// Policy for the locked memory that unwrapped material and derived keys live in.
    pub lock_policy: LockPolicy,
    /// How long a write waits for another process's write lock before failing.
    pub busy_timeout: Duration,
    /// Whether reading a damaged copy rewrites it from a good one (default: yes).
    pub repair_on_read: bool,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            lock_policy: LockPolicy::Require,
            busy_timeout: Duration::from_secs(10),
            repair_on_read: true,
        }
    }
}

/// The connection and what was derived from the root key, behind one mutex.
pub(crate) struct Connected {
    pub conn: Connection,
    pub keys: StoreKeys,
    pub store_id: [u8; 16],
    pub root_epoch: u64,
}

/// A durable key store in an SQLite database (see the crate documentation).
pub struct SqliteKeyStore {
    pub(crate) paths: StorePaths,
    pub(crate) options: StoreOptions,
    pub(crate) provider: RwLock<Arc<dyn RootKeyProvider>>,
    pub(crate) connected: Mutex<Connected>,
    pub(crate) repairs: AtomicU64,
}

impl std::fmt::Debug for SqliteKeyStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteKeyStore")
            .field("db", &self.paths.db)
            .finish_non_exhaustive()
    }
}
