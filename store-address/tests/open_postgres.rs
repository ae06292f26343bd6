//! A `postgres://` address opened as every front end opens one (`open` then `Opened::engine`):
//! created on first open with the node directory's root key, then two engines (two nodes) on
//! it share keys; open-only on an empty database is `StoreMissing`; a wrong root key is
//! `WrongRootKey`. Needs KEYPLANE_TEST_POSTGRES (scripts/test-postgres).

use std::path::Path;

use keyplane::{CreateKeyRequest, DecryptRequest, EncryptRequest, LockPolicy};
use keyplane_sqlite::StoreOptions;
use keyplane_store_address::{open, AuditOptions, ErrorKind, OpenOptions, StoreAddress};

fn database() -> Option<String> {
    database_named("open")
}

fn database_named(name: &str) -> Option<String> {
    let server = keyplane_testkit::postgres_server()?;
    let db = format!("kp_addr_{}_{name}", std::process::id());
    let mut admin = postgres::Client::connect(&server, postgres::NoTls).unwrap();
    admin
        .batch_execute(&format!("DROP DATABASE IF EXISTS {db}"))
        .unwrap();
    admin
        .batch_execute(&format!("CREATE DATABASE {db}"))
        .unwrap();
    Some(keyplane_testkit::database_url(&server, &db))
}

fn options(node: &Path, open_only: bool) -> OpenOptions {
    OpenOptions {
        open_only,
        node_dir: Some(node.to_path_buf()),
        store: StoreOptions {
            lock_policy: LockPolicy::Require,
            ..StoreOptions::default()
        },
        audit: AuditOptions::off(),
        ..OpenOptions::default()
    }
}

#[test]
fn two_nodes_open_one_postgres_address_and_share_keys() {
    let Some(url) = database() else { return };
    let address = StoreAddress::parse(&url).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let (node_a, node_b) = (tmp.path().join("a"), tmp.path().join("b"));

    let e = open(&address, options(&node_a, true)).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::StoreMissing, "{e}");

    let a = open(&address, options(&node_a, false)).unwrap();
    assert!(a.created() && a.postgres().is_some() && a.store().is_none());
    assert!(node_a.join("root.key").exists());
    let engine_a = a.engine(keyplane::Engine::builder()).unwrap();
    let key = engine_a
        .create_key(CreateKeyRequest::default())
        .unwrap()
        .key_id;
    let blob = engine_a
        .encrypt(&EncryptRequest::new(&key, b"shared"))
        .unwrap()
        .ciphertext_blob;

    // Node b has no key file of its own: without the root key it is refused, with it it opens.
    let e = open(&address, options(&node_b, true)).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::RootKeyMissing, "{e}");
    std::fs::create_dir_all(&node_b).unwrap();
    std::fs::copy(node_a.join("root.key"), node_b.join("root.key")).unwrap();
    let b = open(&address, options(&node_b, true)).unwrap();
    assert!(!b.created());
    let engine_b = b.engine(keyplane::Engine::builder()).unwrap();
    let plain = engine_b.decrypt(&DecryptRequest::new(&blob)).unwrap();
    assert_eq!(plain.plaintext.expose(), b"shared");

    let node_c = tmp.path().join("c");
    std::fs::create_dir_all(&node_c).unwrap();
    let wrong = tempfile::tempdir().unwrap();
    let other = open(
        &StoreAddress::data_dir(wrong.path()),
        OpenOptions {
            audit: AuditOptions::off(),
            ..OpenOptions::default()
        },
    )
    .unwrap();
    drop(other);
    std::fs::copy(wrong.path().join("root.key"), node_c.join("root.key")).unwrap();
    let e = open(&address, options(&node_c, true)).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::WrongRootKey, "{e}");
}

#[test]
fn each_node_audits_in_its_own_directory_under_the_fleet_s_signing_key() {
    let Some(url) = database_named("audit") else {
        return;
    };
    let address = StoreAddress::parse(&url).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let (node_a, node_b) = (tmp.path().join("a"), tmp.path().join("b"));
    let audited = |node: &Path| OpenOptions {
        audit: AuditOptions::default(),
        ..options(node, false)
    };
    let a = open(&address, audited(&node_a)).unwrap();
    let engine_a = a.engine(keyplane::Engine::builder()).unwrap();
    engine_a.create_key(CreateKeyRequest::default()).unwrap();
    std::fs::create_dir_all(&node_b).unwrap();
    std::fs::copy(node_a.join("root.key"), node_b.join("root.key")).unwrap();
    let b = open(&address, audited(&node_b)).unwrap();
    let engine_b = b.engine(keyplane::Engine::builder()).unwrap();
    engine_b.create_key(CreateKeyRequest::default()).unwrap();
    let log_a = engine_a.audit_log().expect("node a audits").to_path_buf();
    let log_b = engine_b.audit_log().expect("node b audits").to_path_buf();
    assert!(log_a.starts_with(&node_a) && log_b.starts_with(&node_b));
    let key = |node: &Path| std::fs::read(node.join("audit/audit-signing-key.der")).unwrap();
    assert_eq!(key(&node_a), key(&node_b), "one signing key for the fleet");
}
