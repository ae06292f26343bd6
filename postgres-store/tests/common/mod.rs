//! Helpers of the PostgreSQL store's tests: a fresh database per test on the server that
//! `scripts/test-postgres` starts (KEYPLANE_TEST_POSTGRES, a superuser address), the root key,
//! and records to store.
#![allow(dead_code)]

// Not every test file that includes this module reports a line.
#[allow(unused_imports)]
pub use keyplane_testkit::report;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use keyplane::clock::Timestamp;
use keyplane::custom_key_store::CustomKeyStoreRecord;
use keyplane::key::{AliasRecord, KeyRecord};
use keyplane::store::{KeyStore, MemoryKeyStore};
use keyplane::LockedBytes;
use keyplane::{CreateKeyRequest, CustomKeyStoreType, Engine, KeyState, LockPolicy};
use keyplane_postgres::{PgOptions, PostgresKeyStore};
use keyplane_sqlite::root_key::{KeyFileProvider, RootKeyProvider};
use uuid::Uuid;

/// The server's superuser address, or `None` (with a clear message) where no server was given;
/// under `CI=true` its absence fails the test.
pub fn server() -> Option<String> {
    keyplane_testkit::postgres_server()
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A database of its own for one test (dropped at the end), with a root key file.
pub struct TestDb {
    pub server: String,
    pub name: String,
    pub url: String,
    pub dir: tempfile::TempDir,
}

impl TestDb {
    pub fn new() -> Option<Self> {
        let server = server()?;
        let name = format!(
            "kp_{}_{}_{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst),
            Uuid::new_v4().simple().to_string().get(..8).unwrap_or("x")
        );
        let mut admin = postgres::Client::connect(&server, postgres::NoTls).expect("connect");
        admin
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .expect("create database");
        Some(TestDb {
            url: keyplane_testkit::database_url(&server, &name),
            server,
            name,
            dir: tempfile::tempdir().unwrap(),
        })
    }

    /// A superuser connection to this test's database: what a hostile administrator has.
    pub fn admin(&self) -> postgres::Client {
        postgres::Client::connect(&self.url, postgres::NoTls).expect("admin connection")
    }

    pub fn provider(&self) -> Arc<dyn RootKeyProvider> {
        Arc::new(KeyFileProvider::new(
            self.dir.path().join("root.key"),
            LockPolicy::Require,
        ))
    }

    pub fn options(&self) -> PgOptions {
        PgOptions::default()
    }

    pub fn init(&self) -> Arc<PostgresKeyStore> {
        Arc::new(PostgresKeyStore::init(&self.url, self.provider(), self.options()).expect("init"))
    }

    pub fn open(&self) -> Arc<PostgresKeyStore> {
        Arc::new(PostgresKeyStore::open(&self.url, self.provider(), self.options()).expect("open"))
    }

    /// A store with its witness in `dir` (a node with a data directory).
    pub fn open_with_witness(&self, dir: PathBuf) -> Arc<PostgresKeyStore> {
        let options = PgOptions {
            witness_dir: Some(dir),
            ..self.options()
        };
        Arc::new(PostgresKeyStore::open(&self.url, self.provider(), options).expect("open"))
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Ok(mut admin) = postgres::Client::connect(&self.server, postgres::NoTls) {
            let _ = admin.batch_execute(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ));
        }
    }
}

/// A key record as the engine makes one (symmetric, enabled, one version), under a new id.
pub fn key_record() -> KeyRecord {
    thread_local! {
        static TEMPLATE: KeyRecord = {
            let store = Arc::new(MemoryKeyStore::new(LockPolicy::Require));
            let engine = Engine::builder().worker_threads(1).store(store.clone()).build().unwrap();
            engine.create_key(CreateKeyRequest::default()).unwrap();
            store.load().unwrap().keys.remove(0)
        };
    }
    let mut record = TEMPLATE.with(Clone::clone);
    record.id = Uuid::new_v4();
    record
}

pub fn with_state(record: &KeyRecord, state: KeyState) -> KeyRecord {
    let mut r = record.clone();
    r.state = state;
    r
}

pub fn alias(name: &str, target: Uuid) -> AliasRecord {
    AliasRecord {
        name: name.to_owned(),
        target,
        created: Timestamp(1),
        updated: Timestamp(2),
    }
}

pub fn material(byte: u8) -> LockedBytes {
    LockedBytes::copy_from(&[byte; 32], LockPolicy::Require).unwrap()
}

pub fn custom_key_store(id: &str) -> CustomKeyStoreRecord {
    CustomKeyStoreRecord {
        id: id.to_owned(),
        name: format!("name-{id}"),
        store_type: CustomKeyStoreType::AwsCloudhsm,
        cloud_hsm_cluster_id: Some(format!("cluster-{id}")),
        trust_anchor_certificate: None,
        xks_proxy: None,
        created: Timestamp(5),
        connect_requested: false,
    }
}

/// The error's text, for asserting on.
pub fn err_text<T: std::fmt::Debug>(r: keyplane::Result<T>) -> (keyplane::Error, String) {
    let e = r.expect_err("expected an error");
    let text = e.to_string();
    (e, text)
}

/// Stores a new key with its material (byte `b` repeated); returns it.
pub fn create_key(store: &dyn KeyStore, b: u8) -> KeyRecord {
    let k = key_record();
    put_key(store, &k, b);
    k
}

/// Stores `k` with its first material (byte `b` repeated).
pub fn put_key(store: &dyn KeyStore, k: &KeyRecord, b: u8) {
    let m = material(b);
    store
        .commit(&[
            keyplane::store::StoreChange::PutKey(k),
            keyplane::store::StoreChange::PutMaterial {
                key_id: k.id,
                version: 1,
                material: &m,
            },
        ])
        .expect("store a key");
}
