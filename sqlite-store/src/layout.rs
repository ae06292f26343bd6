//! The files of a data directory.
//!
//! ```text
//! <data dir>/                     mode 0700
//!   keyplane.db                   the SQLite database (WAL mode)
//!   keyplane.db-wal, -shm         SQLite's write-ahead log and its shared-memory index
//!   keyplane.generation           the generation witness (highest generation committed)
//!   root.key                      the root key, when the default key file provider is used
//!   root.key.next, root.key.lock  a root key rotation's new key and lock, while it runs
//! ```

use std::path::{Path, PathBuf};

/// The database file's name in the data directory.
pub const DB_FILE: &str = "keyplane.db";
/// The generation witness's name in the data directory.
pub const WITNESS_FILE: &str = "keyplane.generation";
/// The default key file's name in the data directory.
pub const ROOT_KEY_FILE: &str = "root.key";

/// Where a store's files are.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StorePaths {
    pub dir: PathBuf,
    pub db: PathBuf,
    pub witness: PathBuf,
}

impl StorePaths {
    /// The files of the store in `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        let dir = dir.into();
        StorePaths {
            db: dir.join(DB_FILE),
            witness: dir.join(WITNESS_FILE),
            dir,
        }
    }

    /// The default key file of the store in `dir`.
    pub fn default_key_file(dir: &Path) -> PathBuf {
        dir.join(ROOT_KEY_FILE)
    }

    /// SQLite's write-ahead log of the database.
    pub fn wal(&self) -> PathBuf {
        with_suffix(&self.db, "-wal")
    }

    /// SQLite's shared-memory index of the write-ahead log.
    pub fn shm(&self) -> PathBuf {
        with_suffix(&self.db, "-shm")
    }
}

pub(crate) fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}
