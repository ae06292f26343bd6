//! Keys, material and aliases survive closing and reopening; handles on one store see each
//! other's changes; backups, restores, rollback detection and root key rotation.

mod common;

use common::*;
use keyplane::store::KeyStore;
use keyplane::KeyState;

#[test]
fn keys_aliases_and_every_version_survive_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let (key, blob_v1, blob_v2);
    {
        let store = init(dir.path());
        let engine = engine(&store);
        key = new_key(&engine);
        engine.create_alias("alias/app", &key).unwrap();
        blob_v1 = encrypt(&engine, "alias/app", b"first");
        engine.rotate_key_on_demand(&key).unwrap();
        blob_v2 = encrypt(&engine, &key, b"second");
        engine.disable_key(&key).unwrap();
        engine.enable_key(&key).unwrap();
    }
    let store = open(dir.path());
    let engine = engine(&store);
    assert_eq!(decrypt(&engine, &blob_v1).unwrap(), b"first");
    assert_eq!(decrypt(&engine, &blob_v2).unwrap(), b"second");
    let meta = engine.describe_key("alias/app").unwrap();
    assert_eq!(meta.key_id, key);
    assert_eq!(meta.key_state, KeyState::Enabled);
    assert!(store.verify(false).unwrap().is_pristine());
}

#[test]
fn handles_on_one_store_see_each_other_s_commits_one_generation_each() {
    let dir = tempfile::tempdir().unwrap();
    let a = init(dir.path());
    let b = open(dir.path());
    let (ea, eb) = (engine(&a), engine(&b));
    let g0 = b.generation().unwrap();
    let key = new_key(&ea);
    assert_eq!(b.generation().unwrap(), g0 + 1, "b sees a's commit at once");
    ea.rotate_key_on_demand(&key).unwrap();
    assert_eq!(a.generation().unwrap(), g0 + 2);
    eb.run_due_tasks().unwrap();
    let blob = encrypt(&ea, &key, b"v2");
    assert_eq!(decrypt(&eb, &blob).unwrap(), b"v2");
}

#[test]
fn a_backup_restores_with_the_rollback_reported_and_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let backups = tempfile::tempdir().unwrap();
    let backup_file = backups.path().join("store.backup");
    let store = init(dir.path());
    let engine = engine(&store);
    let kept = new_key(&engine);
    let kept_blob = encrypt(&engine, &kept, b"kept");
    let report = store.backup(&backup_file).unwrap();
    assert_eq!(report.keys, 1);
    assert!(
        store.backup(&backup_file).is_err(),
        "a backup never overwrites"
    );
    let later = new_key(&engine);
    engine.rotate_key_on_demand(&kept).unwrap();
    let live_generation = store.generation().unwrap();

    let restored = keyplane_sqlite::SqliteKeyStore::restore(
        dir.path(),
        &backup_file,
        key_file(dir.path()),
        keyplane_sqlite::StoreOptions::default(),
        false,
    )
    .unwrap();
    assert_eq!(restored.backup_generation, report.generation);
    assert_eq!(restored.replaced_generation, Some(live_generation));
    assert_eq!(
        restored.generations_rolled_back,
        live_generation - report.generation
    );
    assert!(
        restored.generation > live_generation,
        "the generation only grows"
    );

    // The engine that was open on the store reloads the restored contents.
    engine.run_due_tasks().unwrap();
    assert_eq!(
        engine.describe_key(&later).unwrap_err().code(),
        "NotFoundException"
    );
    assert_eq!(decrypt(&engine, &kept_blob).unwrap(), b"kept");
    assert_eq!(
        engine
            .list_key_rotations(&kept, None, None)
            .unwrap()
            .items
            .len(),
        0
    );
    // A fresh open agrees, and the restore is in the event log.
    drop(engine);
    drop(store);
    let store = open(dir.path());
    assert!(store.verify(false).unwrap().is_pristine());
    assert!(store
        .events(10)
        .unwrap()
        .iter()
        .any(|e| e.kind == "restored" && e.detail.contains("store.backup")));
}

#[test]
fn a_store_file_replaced_by_an_older_copy_is_detected_and_can_be_adopted() {
    let dir = tempfile::tempdir().unwrap();
    let old_copy = tempfile::tempdir().unwrap();
    let store = init(dir.path());
    let engine = engine(&store);
    new_key(&engine);
    store.backup(old_copy.path().join("old.db")).unwrap();
    for _ in 0..3 {
        new_key(&engine);
    }
    drop(engine);
    drop(store);
    // An operator copies the old file over the live one by hand.
    std::fs::copy(old_copy.path().join("old.db"), db_path(dir.path())).unwrap();
    let err = keyplane_sqlite::SqliteKeyStore::open(
        dir.path(),
        key_file(dir.path()),
        keyplane_sqlite::StoreOptions::default(),
    )
    .unwrap_err();
    assert!(err.message().starts_with("rollback detected"), "{err}");
    assert!(err.message().contains("undo 3 changes"), "{err}");

    let adopted = keyplane_sqlite::SqliteKeyStore::adopt(
        dir.path(),
        key_file(dir.path()),
        keyplane_sqlite::StoreOptions::default(),
    )
    .unwrap();
    assert_eq!(adopted.generations_rolled_back, 3);
    let store = open(dir.path());
    assert_eq!(store.load().unwrap().keys.len(), 1);
    assert!(store.events(5).unwrap().iter().any(|e| e.kind == "adopted"));

    // A missing witness is refused the same way.
    drop(store);
    std::fs::remove_file(dir.path().join(keyplane_sqlite::WITNESS_FILE)).unwrap();
    let err = keyplane_sqlite::SqliteKeyStore::open(
        dir.path(),
        key_file(dir.path()),
        keyplane_sqlite::StoreOptions::default(),
    )
    .unwrap_err();
    assert!(err.message().contains("witness"), "{err}");
}

#[test]
fn restore_refuses_a_wrong_root_key_a_damaged_backup_and_another_store_s_backup() {
    let dir = tempfile::tempdir().unwrap();
    let other = tempfile::tempdir().unwrap();
    let files = tempfile::tempdir().unwrap();
    let store = init(dir.path());
    new_key(&engine(&store));
    store.backup(files.path().join("mine.db")).unwrap();
    let other_store = init(other.path());
    other_store.backup(files.path().join("other.db")).unwrap();
    drop(store);
    let before = files_in(dir.path());
    let restore = |from: &str, provider_dir: &std::path::Path, force: bool| {
        keyplane_sqlite::SqliteKeyStore::restore(
            dir.path(),
            files.path().join(from),
            key_file(provider_dir),
            keyplane_sqlite::StoreOptions::default(),
            force,
        )
    };
    // Another store's backup, under its own (right) key, without --force.
    let err = restore("other.db", other.path(), false).unwrap_err();
    assert!(err.message().contains("--force"), "{err}");
    // This store's backup under another store's root key.
    let err = restore("mine.db", other.path(), false).unwrap_err();
    assert_eq!(err.code(), "AccessDeniedException", "{err}");
    // A truncated backup.
    let whole = std::fs::read(files.path().join("mine.db")).unwrap();
    std::fs::write(files.path().join("cut.db"), &whole[..whole.len() / 2]).unwrap();
    let err = restore("cut.db", dir.path(), false).unwrap_err();
    assert!(err.message().contains("truncated"), "{err}");
    assert_eq!(
        files_in(dir.path()),
        before,
        "no refused restore wrote anything"
    );
    // Into an empty data directory (the store is lost): works.
    let fresh = tempfile::tempdir().unwrap();
    let report = keyplane_sqlite::SqliteKeyStore::restore(
        fresh.path(),
        files.path().join("mine.db"),
        key_file(dir.path()),
        keyplane_sqlite::StoreOptions::default(),
        false,
    )
    .unwrap();
    assert_eq!(report.keys, 1);
    let restored = keyplane_sqlite::SqliteKeyStore::open(
        fresh.path(),
        key_file(dir.path()),
        keyplane_sqlite::StoreOptions::default(),
    )
    .unwrap();
    assert!(restored.verify(false).unwrap().is_pristine());
}
