//! Damage at rest: bytes flipped in the database file, rows moved or edited, truncated and
//! foreign files. One damaged copy is repaired from the other and the repair recorded; a key
//! whose every copy is damaged becomes Unavailable alone; everything else is refused with a clear
//! error, never a panic.

mod common;

use std::path::Path;

use common::*;
use keyplane::store::KeyStore;
use keyplane::KeyState;
use keyplane_sqlite::{Damage, SqliteKeyStore, StoreOptions};
use rusqlite::Connection;

/// A store with `n` keys, each with a ciphertext; closed (so everything is in the database file).
fn store_with_keys(dir: &Path, n: usize) -> Vec<(String, Vec<u8>)> {
    let store = init(dir);
    let engine = engine(&store);
    (0..n)
        .map(|i| {
            let key = new_key(&engine);
            let blob = encrypt(&engine, &key, format!("secret {i}").as_bytes());
            (key, blob)
        })
        .collect()
}

/// The wrapped bytes of copy `copy` (1 or 2) of `key`'s version 1, as stored.
fn wrapped(dir: &Path, key: &str, copy: usize) -> Vec<u8> {
    let conn = Connection::open(db_path(dir)).unwrap();
    let id = uuid::Uuid::parse_str(key).unwrap();
    conn.query_row(
        &format!("SELECT wrapped FROM material_copy_{copy} WHERE key_id = ?1 AND version = 1"),
        [&id.as_bytes()[..]],
        |r| r.get(0),
    )
    .unwrap()
}

#[test]
fn one_damaged_copy_is_repaired_from_the_other_and_the_repair_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let keys = store_with_keys(dir.path(), 4);
    // Copy 1 of one key and copy 2 of another, damaged in the file itself.
    flip_on_disk(dir.path(), &wrapped(dir.path(), &keys[0].0, 1));
    flip_on_disk(dir.path(), &wrapped(dir.path(), &keys[1].0, 2));

    let store = open(dir.path());
    let before = store.verify(false).unwrap();
    assert_eq!(before.damaged_copies.len(), 2, "{before:#?}");
    assert!(before
        .damaged_copies
        .iter()
        .all(|c| c.damage == Damage::Checksum && !c.repaired));
    assert!(before.lost_versions.is_empty());

    // Reading (the engine's load) repairs.
    let engine = engine(&store);
    for (i, (_, blob)) in keys.iter().enumerate() {
        assert_eq!(
            decrypt(&engine, blob).unwrap(),
            format!("secret {i}").as_bytes()
        );
    }
    assert_eq!(store.repairs_made(), 2);
    let events = store.events(10).unwrap();
    let repairs: Vec<_> = events.iter().filter(|e| e.kind == "repair").collect();
    assert_eq!(repairs.len(), 2);
    assert!(repairs
        .iter()
        .any(|e| e.key_id.as_deref() == Some(keys[0].0.as_str()) && e.detail.contains("copy 1")));
    let after = store.verify(false).unwrap();
    assert!(after.is_pristine(), "{after:#?}");
    assert_eq!(after.repairs_recorded, 2);
    report(&format!(
        "corruption: 2 copies damaged on disk (checksum mismatch), {} repairs made on read and \
         recorded; verify afterwards: {} copies checked, {} good",
        store.repairs_made(),
        after.copies_checked,
        after.copies_good
    ));
}

#[test]
fn verify_with_repair_repairs_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let keys = store_with_keys(dir.path(), 2);
    flip_on_disk(dir.path(), &wrapped(dir.path(), &keys[1].0, 2));
    let store = SqliteKeyStore::open(
        dir.path(),
        key_file(dir.path()),
        StoreOptions {
            repair_on_read: false,
            ..StoreOptions::default()
        },
    )
    .unwrap();
    let report = store.verify(true).unwrap();
    assert_eq!(report.repaired, 1);
    assert!(report.damaged_copies[0].repaired);
    assert!(report.is_healthy() && !report.is_pristine());
    assert!(store.verify(false).unwrap().is_pristine());
}

#[test]
fn a_key_whose_every_copy_is_damaged_becomes_unavailable_alone() {
    let dir = tempfile::tempdir().unwrap();
    let keys = store_with_keys(dir.path(), 3);
    let victim = &keys[1].0;
    flip_on_disk(dir.path(), &wrapped(dir.path(), victim, 1));
    flip_on_disk(dir.path(), &wrapped(dir.path(), victim, 2));

    let store = open(dir.path());
    let engine = engine(&store);
    assert_eq!(
        engine.describe_key(victim).unwrap().key_state,
        KeyState::Unavailable
    );
    let err = engine
        .encrypt(&keyplane::EncryptRequest::new(victim, b"x"))
        .unwrap_err();
    assert_eq!(err.code(), "KeyUnavailableException", "{err}");
    assert_eq!(
        decrypt(&engine, &keys[1].1).unwrap_err().code(),
        "KeyUnavailableException"
    );
    for (i, (key, blob)) in keys.iter().enumerate().filter(|(i, _)| *i != 1) {
        assert_eq!(
            engine.describe_key(key).unwrap().key_state,
            KeyState::Enabled
        );
        assert_eq!(
            decrypt(&engine, blob).unwrap(),
            format!("secret {i}").as_bytes()
        );
        encrypt(&engine, key, b"still works");
    }
    let report = store.verify(true).unwrap();
    assert_eq!(report.lost_versions.len(), 1);
    assert_eq!(report.lost_versions[0].key_id, *victim);
    assert_eq!(report.repaired, 0, "nothing good to repair from");
    assert!(!report.is_healthy());
    // Other keys' control plane still works, and the store stays writable.
    new_key(&engine);
}

#[test]
fn a_copy_moved_onto_another_key_fails_authentication_and_is_repaired() {
    let dir = tempfile::tempdir().unwrap();
    let keys = store_with_keys(dir.path(), 2);
    {
        // Copy key 0's copy 2, with a matching checksum, onto key 1's copy 2.
        let conn = Connection::open(db_path(dir.path())).unwrap();
        let from = uuid::Uuid::parse_str(&keys[0].0).unwrap();
        let to = uuid::Uuid::parse_str(&keys[1].0).unwrap();
        conn.execute(
            "UPDATE material_copy_2 SET (wrapped, checksum) = \
             (SELECT wrapped, checksum FROM material_copy_2 WHERE key_id = ?1) WHERE key_id = ?2",
            [&from.as_bytes()[..], &to.as_bytes()[..]],
        )
        .unwrap();
    }
    let store = open(dir.path());
    let report = store.verify(false).unwrap();
    assert_eq!(report.damaged_copies.len(), 1);
    assert_eq!(report.damaged_copies[0].damage, Damage::Authentication);
    let engine = engine(&store);
    assert_eq!(decrypt(&engine, &keys[1].1).unwrap(), b"secret 1");
    assert_eq!(store.repairs_made(), 1);
    assert!(store.verify(false).unwrap().is_pristine());
}

#[test]
fn an_edited_record_or_generation_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let keys = store_with_keys(dir.path(), 1);
    let conn = Connection::open(db_path(dir.path())).unwrap();
    conn.execute(
        "UPDATE keys SET record = replace(record, '\"Enabled\"', '\"Disabled\"')",
        [],
    )
    .unwrap();
    drop(conn);
    let store = open(dir.path());
    let err = store.load().unwrap_err();
    assert_eq!(err.code(), "KMSInternalException");
    assert!(err.message().contains(&keys[0].0), "names the key: {err}");
    assert!(err.message().contains("root-key check"), "{err}");
    let damaged = store.verify(false).unwrap().damaged_records;
    assert_eq!(damaged.len(), 2, "{damaged:?}");
    assert!(damaged[0].contains(&keys[0].0), "{damaged:?}");
    assert!(damaged[1].contains("contents digest"), "{damaged:?}");
    drop(store);

    let dir = tempfile::tempdir().unwrap();
    store_with_keys(dir.path(), 1);
    let conn = Connection::open(db_path(dir.path())).unwrap();
    conn.execute("UPDATE store SET generation = generation + 100", [])
        .unwrap();
    drop(conn);
    let err = SqliteKeyStore::open(dir.path(), key_file(dir.path()), StoreOptions::default())
        .unwrap_err();
    assert!(err.message().contains("generation counter"), "{err}");
}

fn open_err(dir: &Path) -> keyplane::Error {
    SqliteKeyStore::open(dir, key_file(dir), StoreOptions::default())
        .expect_err("a damaged store must not open")
}

#[test]
fn truncated_files_are_refused_clearly() {
    let dir = tempfile::tempdir().unwrap();
    store_with_keys(dir.path(), 20);
    let path = db_path(dir.path());
    let whole = std::fs::read(&path).unwrap();
    assert!(whole.len() >= 4 * 4096, "a store of several pages");
    let mut refused = 0;
    for len in [
        0,
        1,
        50,
        99,
        100,
        4096,
        4097,
        whole.len() / 2,
        whole.len() - 4096,
        whole.len() - 1,
    ] {
        std::fs::write(&path, &whole[..len]).unwrap();
        let err = open_err(dir.path());
        assert_eq!(err.code(), "KMSInternalException", "{len} bytes: {err}");
        let message = err.message();
        assert!(
            message.contains("truncated")
                || message.contains("not a keyplane store")
                || message.contains("damaged"),
            "{len} bytes: {message}"
        );
        refused += 1;
    }
    report(&format!(
        "truncated store files: {refused} lengths refused with a clear error"
    ));
}

#[test]
fn foreign_files_are_refused_clearly() {
    let dir = tempfile::tempdir().unwrap();
    store_with_keys(dir.path(), 1);
    let path = db_path(dir.path());
    let mut noise = vec![0u8; 8192];
    keyplane::sealing::fill_random(&mut noise).unwrap();
    std::fs::write(&path, &noise).unwrap();
    assert!(open_err(dir.path())
        .message()
        .contains("not an SQLite database"));
    std::fs::write(&path, "just some text\n".repeat(100)).unwrap();
    assert!(open_err(dir.path())
        .message()
        .contains("not a keyplane store"));
    std::fs::remove_file(&path).unwrap();
    let other = Connection::open(&path).unwrap();
    other.execute_batch("CREATE TABLE notes (t TEXT);").unwrap();
    drop(other);
    assert!(open_err(dir.path())
        .message()
        .contains("another application"));
    // A keyplane header on a database without the store's tables.
    std::fs::remove_file(&path).unwrap();
    let other = Connection::open(&path).unwrap();
    other
        .execute_batch(&format!(
            "PRAGMA application_id = {}; PRAGMA user_version = 1; CREATE TABLE t (x);",
            keyplane_sqlite::APPLICATION_ID
        ))
        .unwrap();
    drop(other);
    let err = open_err(dir.path());
    assert!(err.message().contains("lacks its table"), "{err}");
}

#[test]
fn a_store_of_a_newer_schema_is_refused_naming_the_versions() {
    let dir = tempfile::tempdir().unwrap();
    store_with_keys(dir.path(), 1);
    let conn = Connection::open(db_path(dir.path())).unwrap();
    conn.execute_batch(&format!(
        "PRAGMA user_version = {}",
        keyplane_sqlite::SCHEMA_VERSION + 1
    ))
    .unwrap();
    drop(conn);
    let err = open_err(dir.path());
    assert!(err.message().contains("newer"), "{err}");
    let newer = format!("schema version {}", keyplane_sqlite::SCHEMA_VERSION + 1);
    assert!(err.message().contains(&newer), "{err}");
    let ours = format!("(version {})", keyplane_sqlite::SCHEMA_VERSION);
    assert!(err.message().contains(&ours), "{err}");
}

#[test]
fn a_wrong_root_key_is_refused_before_anything_is_written() {
    let dir = tempfile::tempdir().unwrap();
    store_with_keys(dir.path(), 2);
    let key_file_path = dir.path().join("root.key");
    let right = std::fs::read(&key_file_path).unwrap();
    // Another valid key in the key file.
    let wrong = {
        let other = tempfile::tempdir().unwrap();
        drop(init(other.path()));
        std::fs::read(other.path().join("root.key")).unwrap()
    };
    std::fs::write(&key_file_path, &wrong).unwrap();
    let before = files_in(dir.path());
    let err = open_err(dir.path());
    assert_eq!(err.code(), "AccessDeniedException", "{err}");
    assert!(err.message().contains("does not open this store"), "{err}");
    assert_eq!(files_in(dir.path()), before, "nothing was written");

    // A passphrase store opened with the wrong passphrase, and with a key file.
    std::fs::write(&key_file_path, &right).unwrap();
    let pdir = tempfile::tempdir().unwrap();
    drop(
        SqliteKeyStore::init(
            pdir.path(),
            passphrase("right one"),
            StoreOptions::default(),
        )
        .unwrap(),
    );
    let before = files_in(pdir.path());
    let err = SqliteKeyStore::open(
        pdir.path(),
        passphrase("wrong one"),
        StoreOptions::default(),
    )
    .unwrap_err();
    assert_eq!(err.code(), "AccessDeniedException");
    assert!(err.message().contains("wrong passphrase"), "{err}");
    let err = SqliteKeyStore::open(pdir.path(), key_file(pdir.path()), StoreOptions::default())
        .unwrap_err();
    assert!(
        err.message().contains("passphrase"),
        "the kind is named: {err}"
    );
    assert!(
        !pdir.path().join("root.key").exists(),
        "no key file was created"
    );
    assert_eq!(files_in(pdir.path()), before, "nothing was written");
    SqliteKeyStore::open(
        pdir.path(),
        passphrase("right one"),
        StoreOptions::default(),
    )
    .unwrap();
}
