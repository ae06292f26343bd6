//! The store handle's types: [`SqliteKeyStore`] with its [`StoreOptions`], and the connection it
//! holds with what was derived from the root key ([`Connected`]). Its operations are
//! `impl SqliteKeyStore` blocks by concern: opening, creating and the engine's `KeyStore`
//! operations in the store module, and store secrets, root key rotation, backup and verification
//! in their own modules.

use std::path::Path;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use keyplane::{Error, LockPolicy, Result};
use rusqlite::{Connection, TransactionBehavior};

use crate::layout::StorePaths;
use crate::meta;
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

/// A write transaction on the store (`BEGIN IMMEDIATE`: the generation read in it cannot move
/// before it commits), with the store row read in it and checked, and the handle's keys beside it.
pub(crate) struct Change<'c> {
    pub tx: rusqlite::Transaction<'c>,
    pub row: meta::StoreRow,
    pub keys: &'c StoreKeys,
    pub store_id: &'c [u8; 16],
    pub root_epoch: u64,
}

impl Connected {
    /// Starts a [`Change`]: refused when another process rotated the root key since this handle
    /// loaded it (retry), or when the generation is not sealed under the handle's keys.
    /// `starting` names the step in an SQL error ("start a change").
    pub(crate) fn begin_change(&mut self, starting: &str, db: &Path) -> Result<Change<'_>> {
        let Connected {
            conn,
            keys,
            store_id,
            root_epoch,
        } = self;
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| crate::errors::sql(starting, db, e))?;
        let row = meta::read(&tx, db)?;
        if row.root_epoch != *root_epoch {
            return Err(Error::Store(
                "the root key was rotated by another process during this change; retry".into(),
            ));
        }
        row.check_generation(keys, db)?;
        Ok(Change {
            tx,
            row,
            keys,
            store_id,
            root_epoch: *root_epoch,
        })
    }
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
