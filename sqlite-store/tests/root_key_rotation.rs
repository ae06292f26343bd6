//! Root key rotation: online, atomic, the old key retired; across providers; followed by other
//! handles on the store.

mod common;

use std::sync::Arc;

use common::*;
use keyplane::store::KeyStore;
use keyplane::LockPolicy;
use keyplane_sqlite::root_key::{EnvVarProvider, KeyFileProvider, RootKeyProvider};
use keyplane_sqlite::{SqliteKeyStore, StoreOptions};

#[test]
fn an_in_place_key_file_rotation_rewraps_everything_and_retires_the_old_key() {
    let dir = tempfile::tempdir().unwrap();
    let store = init(dir.path());
    let engine = engine(&store);
    let mut blobs = Vec::new();
    for i in 0..5 {
        let key = new_key(&engine);
        engine.rotate_key_on_demand(&key).unwrap();
        blobs.push((encrypt(&engine, &key, &[i]), i));
    }
    let old_key = std::fs::read(dir.path().join("root.key")).unwrap();
    let other_handle = open(dir.path());
    let other_engine = common::engine(&other_handle);

    let report = store.rotate_root_key(key_file(dir.path())).unwrap();
    assert_eq!(report.versions_rewrapped, 10);
    assert_eq!(report.copies_written, 20);
    assert_eq!(report.root_key_epoch, 2);
    let new_key_bytes = std::fs::read(dir.path().join("root.key")).unwrap();
    assert_ne!(new_key_bytes, old_key);
    assert!(!dir.path().join("root.key.next").exists());

    // Online: this engine and another handle keep working (the other re-reads the key file).
    for (blob, i) in &blobs {
        assert_eq!(decrypt(&engine, blob).unwrap(), [*i]);
    }
    let created_elsewhere = new_key(&other_engine);
    other_engine
        .rotate_key_on_demand(&created_elsewhere)
        .unwrap();
    assert!(store.verify(false).unwrap().is_pristine());
    drop((engine, other_engine, store, other_handle));

    // Reopened under the new key; the old key no longer opens it.
    let store = open(dir.path());
    assert_eq!(store.load().unwrap().keys.len(), 6);
    std::fs::write(dir.path().join("root.key"), &old_key).unwrap();
    let err = SqliteKeyStore::open(dir.path(), key_file(dir.path()), StoreOptions::default())
        .unwrap_err();
    assert_eq!(err.code(), "AccessDeniedException", "{err}");
    report_rotation(&report);
}

fn report_rotation(r: &keyplane_sqlite::RootKeyRotationReport) {
    report(&format!(
        "root key rotation: {} versions rewrapped ({} copies written), {} records re-sealed, \
         epoch {}",
        r.versions_rewrapped, r.copies_written, r.records_resealed, r.root_key_epoch
    ));
}

#[test]
fn rotation_moves_between_providers_key_file_passphrase_and_environment() {
    let dir = tempfile::tempdir().unwrap();
    let store = init(dir.path());
    let engine = engine(&store);
    let key = new_key(&engine);
    let blob = encrypt(&engine, &key, b"through every provider");

    store
        .rotate_root_key(passphrase("first passphrase"))
        .unwrap();
    drop((engine, store));
    let store = Arc::new(
        SqliteKeyStore::open(
            dir.path(),
            passphrase("first passphrase"),
            StoreOptions::default(),
        )
        .unwrap(),
    );
    let err = SqliteKeyStore::open(dir.path(), key_file(dir.path()), StoreOptions::default())
        .unwrap_err();
    assert!(err.message().contains("passphrase"), "{err}");

    let var = "KEYPLANE_TEST_ROTATION_ROOT_KEY";
    std::env::set_var(var, "MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTIzNDU2Nzg5MDE=");
    let env: Arc<dyn RootKeyProvider> = Arc::new(EnvVarProvider::new(var, LockPolicy::Require));
    store.rotate_root_key(env.clone()).unwrap();
    drop(store);
    let store =
        Arc::new(SqliteKeyStore::open(dir.path(), env.clone(), StoreOptions::default()).unwrap());
    // Rotating to the key in force is refused.
    let err = store.rotate_root_key(env).unwrap_err();
    assert!(err.message().contains("current one"), "{err}");

    let elsewhere = dir.path().join("moved.key");
    let file: Arc<dyn RootKeyProvider> =
        Arc::new(KeyFileProvider::new(&elsewhere, LockPolicy::Require));
    store.rotate_root_key(file.clone()).unwrap();
    drop(store);
    std::env::remove_var(var);
    let store = Arc::new(SqliteKeyStore::open(dir.path(), file, StoreOptions::default()).unwrap());
    assert_eq!(
        decrypt(&common::engine(&store), &blob).unwrap(),
        b"through every provider"
    );
    let rotations = store
        .events(20)
        .unwrap()
        .iter()
        .filter(|e| e.kind == "root-key-rotated")
        .count();
    assert_eq!(rotations, 3);
    assert!(store.verify(false).unwrap().is_pristine());
}

#[test]
fn a_rotation_interrupted_after_its_commit_is_finished_by_the_next_open() {
    let dir = tempfile::tempdir().unwrap();
    let store = init(dir.path());
    let engine = engine(&store);
    let key = new_key(&engine);
    let blob = encrypt(&engine, &key, b"x");
    let old_key = std::fs::read(dir.path().join("root.key")).unwrap();
    store.rotate_root_key(key_file(dir.path())).unwrap();
    drop((engine, store));
    // As if the process died after the commit and before moving the new key into place.
    let new_key_bytes = std::fs::read(dir.path().join("root.key")).unwrap();
    std::fs::write(dir.path().join("root.key.next"), &new_key_bytes).unwrap();
    std::fs::set_permissions(
        dir.path().join("root.key.next"),
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    std::fs::write(dir.path().join("root.key"), &old_key).unwrap();

    let store = open(dir.path());
    assert_eq!(decrypt(&common::engine(&store), &blob).unwrap(), b"x");
    assert_eq!(
        std::fs::read(dir.path().join("root.key")).unwrap(),
        new_key_bytes
    );
    assert!(!dir.path().join("root.key.next").exists());
}
