//! Helpers shared by the store's integration tests.
#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use keyplane::{CreateKeyRequest, DecryptRequest, EncryptRequest, Engine, LockPolicy};
use keyplane_sqlite::root_key::{KeyFileProvider, RootKeyProvider};
use keyplane_sqlite::{SqliteKeyStore, StoreOptions};

/// Writes a line straight to the test's stderr, past libtest's output capture, so the numbers a
/// test measured appear in every run's output.
pub fn report(line: &str) {
    let _ = writeln!(std::io::stderr(), "{line}");
}

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

pub fn new_key(engine: &Engine) -> String {
    engine
        .create_key(CreateKeyRequest::default())
        .expect("create key")
        .key_id
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
