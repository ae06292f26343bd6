//! Helpers shared by the store's integration tests.
#![allow(dead_code)]

// Not every test file that includes this module reports a line.
#[allow(unused_imports)]
pub use keyplane_testkit::{new_key, report};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use keyplane::{DecryptRequest, EncryptRequest, Engine, LockPolicy};
use keyplane_sqlite::root_key::{KeyFileProvider, RootKeyProvider};
use keyplane_sqlite::{SqliteKeyStore, StoreOptions};

/// The key file provider of the store in `dir`.
pub fn key_file(dir: &Path) -> Arc<dyn RootKeyProvider> {
    Arc::new(KeyFileProvider::new(
        dir.join("root.key"),
        LockPolicy::Require,
    ))
}

pub fn init(dir: &Path) -> Arc<SqliteKeyStore> {
    Arc::new(SqliteKeyStore::init(dir, key_file(dir), StoreOptions::default()).expect("init"))
}

pub fn open(dir: &Path) -> Arc<SqliteKeyStore> {
    Arc::new(SqliteKeyStore::open(dir, key_file(dir), StoreOptions::default()).expect("open"))
}

pub fn engine(store: &Arc<SqliteKeyStore>) -> Engine {
    Engine::builder()
        .worker_threads(1)
        .store(store.clone())
        .build()
        .expect("engine on the store")
}

pub fn encrypt(engine: &Engine, key: &str, plaintext: &[u8]) -> Vec<u8> {
    engine
        .encrypt(&EncryptRequest::new(key, plaintext))
        .expect("encrypt")
        .ciphertext_blob
}

pub fn decrypt(engine: &Engine, blob: &[u8]) -> keyplane::Result<Vec<u8>> {
    engine
        .decrypt(&DecryptRequest::new(blob))
        .map(|r| r.plaintext.expose().to_vec())
}

/// Every file in `dir` with the SHA-256 of its bytes, to show that nothing was written.
pub fn files_in(dir: &Path) -> std::collections::BTreeMap<String, String> {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .filter(|e| e.file_type().map(|t| t.is_file()).unwrap_or(false))
        .map(|e| {
            (
                e.file_name().to_string_lossy().into_owned(),
                aws_lc_rs::digest::digest(
                    &aws_lc_rs::digest::SHA256,
                    &std::fs::read(e.path()).unwrap(),
                )
                .as_ref()
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect(),
            )
        })
        .collect()
}

pub fn db_path(dir: &Path) -> PathBuf {
    dir.join(keyplane_sqlite::DB_FILE)
}

/// A direct connection to the store's database file, as a hostile administrator has.
pub fn sql(dir: &Path) -> rusqlite::Connection {
    rusqlite::Connection::open(db_path(dir)).unwrap()
}

/// A key row as stored: (record JSON, seal).
pub fn key_row(dir: &Path, key: &str) -> (String, Vec<u8>) {
    let id = uuid::Uuid::parse_str(key).unwrap();
    sql(dir)
        .query_row(
            "SELECT record, seal FROM keys WHERE key_id = ?1",
            [&id.as_bytes()[..]],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap()
}

/// Puts a key row back as it was (a replay).
pub fn put_key_row(dir: &Path, key: &str, row: &(String, Vec<u8>)) {
    let id = uuid::Uuid::parse_str(key).unwrap();
    sql(dir)
        .execute(
            "INSERT OR REPLACE INTO keys (key_id, record, seal) VALUES (?1, ?2, ?3)",
            rusqlite::params![&id.as_bytes()[..], row.0, row.1],
        )
        .unwrap();
}

/// Flips one byte of `needle` where it sits in the database file.
pub fn flip_on_disk(dir: &Path, needle: &[u8]) {
    let path = db_path(dir);
    let mut bytes = std::fs::read(&path).unwrap();
    let at = bytes
        .windows(needle.len())
        .position(|w| w == needle)
        .expect("the wrapped copy is in the database file");
    bytes[at + needle.len() / 2] ^= 0x5a;
    std::fs::write(&path, bytes).unwrap();
}

/// A passphrase root key provider at the cheapest Argon2 cost (tests only).
pub fn passphrase(p: &str) -> Arc<dyn RootKeyProvider> {
    Arc::new(
        keyplane_sqlite::root_key::PassphraseProvider::with_cost(
            zeroize::Zeroizing::new(p.as_bytes().to_vec()),
            keyplane_sqlite::root_key::Argon2Cost {
                memory_kib: 256,
                iterations: 1,
                parallelism: 1,
            },
            LockPolicy::Require,
        )
        .unwrap(),
    )
}
