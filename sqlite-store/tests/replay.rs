// ---- Issue 15, findings 2 and 8b: replayed rows and root key file handling ---------------------
//
//! A hostile database administrator: someone who can edit the SQLite file (or put back pages from
//! a backup or the WAL) but has no root key. Each test keeps an older, authentic row (or set of
//! rows), lets keyplane move on, puts the old rows back under the newer generation, and shows
//! that the engine's open (its load) and `verify` refuse the store with an error naming what was
//! tampered with. Then the root key file: a symbolic link is refused, and `root.key.next` is
//! never written through a link planted there.

mod common;

use std::path::Path;
use std::sync::Arc;

use common::*;
use keyplane::{CreateGrantRequest, Engine, GrantOperation, KeyState, LockPolicy};
use keyplane_sqlite::root_key::{KeyFileProvider, RootKeyProvider};
use keyplane_sqlite::{SqliteKeyStore, StoreOptions};
use keyplane_testkit::Attack;

/// Opening the store the way the engine does (open, then load everything) and `verify` both
/// refuse it, naming `what`.
fn assert_refused(attack: &mut Attack, dir: &Path, what: &str) {
    let store = open(dir);
    let built = Engine::builder()
        .worker_threads(1)
        .store(store.clone())
        .build();
    attack.refused_by_store(built, &["replay detected", what], "opening the engine");
    attack.refused_by_store(
        store.verify(false),
        &["replay detected", what],
        "keyplane store verify",
    );
}

const KEY_RECORDS: &str = "key records";

#[test]
fn replaying_an_older_enabled_row_of_a_disabled_key_is_detected() {
    let mut attack = Attack::new("replay an older key row (re-enable a disabled key)");
    let dir = tempfile::tempdir().unwrap();
    let store = init(dir.path());
    let engine = engine(&store);
    let key = new_key(&engine);
    let enabled = key_row(dir.path(), &key);
    engine.disable_key(&key).unwrap();
    drop((engine, store));
    let disabled = key_row(dir.path(), &key);

    put_key_row(dir.path(), &key, &enabled);
    assert_refused(&mut attack, dir.path(), KEY_RECORDS);

    // Put the current row back: the store is whole again and the key still Disabled.
    put_key_row(dir.path(), &key, &disabled);
    let store = open(dir.path());
    assert!(store.verify(false).unwrap().is_pristine());
    let engine = common::engine(&store);
    assert_eq!(
        engine.describe_key(&key).unwrap().key_state,
        KeyState::Disabled
    );
}

#[test]
fn replaying_a_revoked_grant_is_detected() {
    let mut attack = Attack::new("replay a key row that still holds a revoked grant");
    let dir = tempfile::tempdir().unwrap();
    let store = init(dir.path());
    let engine = engine(&store);
    let key = new_key(&engine);
    let grant = engine
        .create_grant(CreateGrantRequest {
            key_id: key.clone(),
            grantee_principal: "arn:aws:iam::111122223333:user/mallory".into(),
            retiring_principal: None,
            operations: vec![GrantOperation::Decrypt],
            constraints: None,
            name: None,
        })
        .unwrap();
    let granted = key_row(dir.path(), &key);
    engine.revoke_grant(&key, &grant.grant_id).unwrap();
    assert!(!key_row(dir.path(), &key).0.contains(&grant.grant_id));
    drop((engine, store));

    put_key_row(dir.path(), &key, &granted);
    assert_refused(&mut attack, dir.path(), KEY_RECORDS);
}

#[test]
fn dropping_an_alias_row_is_detected() {
    let mut attack = Attack::new("drop an alias row");
    let dir = tempfile::tempdir().unwrap();
    let store = init(dir.path());
    let engine = engine(&store);
    let key = new_key(&engine);
    engine.create_alias("alias/payroll", &key).unwrap();
    engine.create_alias("alias/other", &key).unwrap();
    drop((engine, store));

    sql(dir.path())
        .execute("DELETE FROM aliases WHERE name = 'alias/payroll'", [])
        .unwrap();
    assert_refused(&mut attack, dir.path(), "aliases");
}

#[test]
fn swapping_two_keys_rows_is_detected() {
    let mut attack = Attack::new("swap two keys' rows");
    let dir = tempfile::tempdir().unwrap();
    let store = init(dir.path());
    let engine = engine(&store);
    let (a, b) = (new_key(&engine), new_key(&engine));
    engine.disable_key(&b).unwrap();
    drop((engine, store));

    let (row_a, row_b) = (key_row(dir.path(), &a), key_row(dir.path(), &b));
    put_key_row(dir.path(), &a, &row_b);
    put_key_row(dir.path(), &b, &row_a);
    // Each row's own seal names its key, so the rows are reported, and so is the digest.
    let store = open(dir.path());
    let report = store.verify(false).unwrap();
    assert!(!report.is_healthy());
    assert!(report.damaged_records.iter().any(|p| p.contains(&a)));
    assert!(report.damaged_records.iter().any(|p| p.contains(&b)));
    assert!(report
        .damaged_records
        .iter()
        .any(|p| p.contains("replay detected")));
    attack.judged(true, "verify reports both rows");
    let built = Engine::builder().store(store.clone()).build();
    attack.refused_by_store(built, &["fails its root-key check"], "opening the engine");
}

#[test]
fn putting_back_a_deleted_key_is_detected() {
    let mut attack = Attack::new("put back every row of a deleted key");
    let dir = tempfile::tempdir().unwrap();
    let store = init(dir.path());
    let engine = engine(&store);
    let (keep, doomed) = (new_key(&engine), new_key(&engine));
    let _ = keep;
    drop((engine, store));
    let backup = dir.path().join("before-delete.db");
    std::fs::copy(db_path(dir.path()), &backup).unwrap();

    let store = open(dir.path());
    store
        .commit(&[keyplane::store::StoreChange::DeleteKey(
            uuid::Uuid::parse_str(&doomed).unwrap(),
        )])
        .unwrap();
    drop(store);

    let conn = sql(dir.path());
    conn.execute("ATTACH DATABASE ?1 AS old", [backup.to_str().unwrap()])
        .unwrap();
    let id = uuid::Uuid::parse_str(&doomed).unwrap();
    for table in ["keys", "material_copy_1", "material_copy_2"] {
        conn.execute(
            &format!("INSERT INTO main.{table} SELECT * FROM old.{table} WHERE key_id = ?1"),
            [&id.as_bytes()[..]],
        )
        .unwrap();
    }
    drop(conn);
    assert_refused(&mut attack, dir.path(), KEY_RECORDS);
}

use keyplane::store::KeyStore as _;

#[test]
fn replaying_every_row_from_a_backup_under_the_newer_generation_is_detected() {
    let mut attack = Attack::new("replay all rows of a backup under the newer generation");
    let dir = tempfile::tempdir().unwrap();
    let store = init(dir.path());
    let engine = engine(&store);
    let key = new_key(&engine);
    engine.create_alias("alias/a", &key).unwrap();
    store.put_secret("app-secret", b"first value").unwrap();
    let backup = dir.path().join("backup.db");
    store.backup(&backup).unwrap();
    engine.disable_key(&key).unwrap();
    engine.delete_alias("alias/a").unwrap();
    new_key(&engine);
    store.put_secret("app-secret", b"second value").unwrap();
    let newer = store.generation().unwrap();
    drop((engine, store));

    // Every table but the settings row (which keeps the newer, authentic generation) is put
    // back as the backup had it.
    let conn = sql(dir.path());
    conn.execute("ATTACH DATABASE ?1 AS old", [backup.to_str().unwrap()])
        .unwrap();
    for table in [
        "keys",
        "aliases",
        "material_copy_1",
        "material_copy_2",
        "secret_copy_1",
        "secret_copy_2",
        "secrets",
        "events",
    ] {
        conn.execute_batch(&format!(
            "DELETE FROM main.{table}; INSERT INTO main.{table} SELECT * FROM old.{table};"
        ))
        .unwrap();
    }
    drop(conn);
    let store = open(dir.path());
    assert_eq!(
        store.generation().unwrap(),
        newer,
        "the generation is the newer one"
    );
    drop(store);
    assert_refused(&mut attack, dir.path(), KEY_RECORDS);
    let store = open(dir.path());
    let err = store.verify(false).unwrap_err();
    for part in ["aliases", "store secrets", "event log"] {
        assert!(err.message().contains(part), "names the {part}: {err}");
    }
}

/// The two copies and the value row of store secret `name`, as stored.
fn secret_rows(dir: &Path, name: &str) -> Vec<(String, Vec<Vec<u8>>)> {
    let conn = sql(dir);
    ["secret_copy_1", "secret_copy_2"]
        .iter()
        .map(|t| {
            let row: (Vec<u8>, Vec<u8>) = conn
                .query_row(
                    &format!("SELECT wrapped, checksum FROM {t} WHERE name = ?1"),
                    [name],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .unwrap();
            (t.to_string(), vec![row.0, row.1])
        })
        .collect()
}

fn put_secret_copy(dir: &Path, name: &str, copy: &(String, Vec<Vec<u8>>)) {
    sql(dir)
        .execute(
            &format!(
                "UPDATE {} SET wrapped = ?1, checksum = ?2 WHERE name = ?3",
                copy.0
            ),
            rusqlite::params![copy.1[0], copy.1[1], name],
        )
        .unwrap();
}

#[test]
fn replaying_an_older_store_secret_is_detected_or_repaired_never_served() {
    let mut attack = Attack::new("replay an older value of a store secret");
    let dir = tempfile::tempdir().unwrap();
    let store = init(dir.path());
    store.put_secret("app-secret", b"old value").unwrap();
    let old_copies = secret_rows(dir.path(), "app-secret");
    let old_mac: Vec<u8> = sql(dir.path())
        .query_row(
            "SELECT value_mac FROM secrets WHERE name = 'app-secret'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    store.put_secret("app-secret", b"new value").unwrap();
    drop(store);

    // One copy put back: it is a stale copy, repaired from the current one.
    put_secret_copy(dir.path(), "app-secret", &old_copies[0]);
    let store = open(dir.path());
    let report = store.verify(false).unwrap();
    assert_eq!(report.damaged_secret_copies.len(), 1);
    assert_eq!(
        format!("{:?}", report.damaged_secret_copies[0].damage),
        "Stale"
    );
    assert_eq!(
        store
            .get_secret("app-secret")
            .unwrap()
            .unwrap()
            .expose(keyplane::SecretAccess::granted()),
        b"new value"
    );
    assert!(store.verify(false).unwrap().is_pristine(), "repaired");
    drop(store);

    // Both copies put back: no copy holds the current value; an error, never the old value.
    for copy in &old_copies {
        put_secret_copy(dir.path(), "app-secret", copy);
    }
    let store = open(dir.path());
    attack.refused_by_store(
        store.get_secret("app-secret"),
        &["every copy of the store secret 'app-secret'"],
        "reading a secret whose copies are both an older value",
    );
    drop(store);

    // Both copies and the value row put back: the digest says so.
    sql(dir.path())
        .execute(
            "UPDATE secrets SET value_mac = ?1 WHERE name = 'app-secret'",
            [&old_mac],
        )
        .unwrap();
    let store = open(dir.path());
    attack.refused_by_store(
        store.verify(false),
        &["replay detected", "store secrets"],
        "keyplane store verify",
    );
    attack.refused_by_store(
        Engine::builder().store(store.clone()).build(),
        &["replay detected", "store secrets"],
        "opening the engine",
    );
}

#[test]
fn a_damaged_copy_is_still_repaired_not_taken_for_a_replay() {
    let dir = tempfile::tempdir().unwrap();
    let store = init(dir.path());
    let engine = engine(&store);
    let key = new_key(&engine);
    store.put_secret("app-secret", b"value").unwrap();
    drop((engine, store));
    let conn = sql(dir.path());
    conn.execute("DELETE FROM material_copy_1", []).unwrap();
    conn.execute("DELETE FROM secret_copy_2", []).unwrap();
    drop(conn);
    let store = open(dir.path());
    let report = store.verify(true).unwrap();
    assert_eq!(report.damaged_copies.len(), 1);
    assert_eq!(report.damaged_secret_copies.len(), 1);
    assert!(report.is_healthy(), "repaired: {report:?}");
    // The repairs are recorded in the event log, which the digest covers: still whole.
    let engine = common::engine(&store);
    assert_eq!(
        engine.describe_key(&key).unwrap().key_state,
        KeyState::Enabled
    );
    assert!(store.verify(false).unwrap().is_pristine());
    drop((engine, store));
    assert!(open(dir.path()).verify(false).unwrap().is_pristine());
}

#[test]
fn a_schema_2_store_is_migrated_and_then_protected() {
    let dir = tempfile::tempdir().unwrap();
    let store = init(dir.path());
    let engine = engine(&store);
    let key = new_key(&engine);
    store.put_secret("app-secret", b"kept").unwrap();
    drop((engine, store));
    // What a schema-2 binary made: no digest, no value MACs.
    sql(dir.path())
        .execute_batch(
            "DROP TABLE change_log; DROP TABLE secrets; ALTER TABLE store DROP COLUMN contents; \
             PRAGMA user_version = 2;",
        )
        .unwrap();
    let enabled = key_row(dir.path(), &key);

    let store = open(dir.path());
    let report = store.verify(false).unwrap();
    assert_eq!(report.schema_version, keyplane_sqlite::SCHEMA_VERSION);
    assert!(report.is_pristine(), "{report:?}");
    assert_eq!(
        store
            .get_secret("app-secret")
            .unwrap()
            .unwrap()
            .expose(keyplane::SecretAccess::granted()),
        b"kept"
    );
    let engine = common::engine(&store);
    engine.disable_key(&key).unwrap();
    drop((engine, store));

    let mut attack = Attack::new("replay a key row after the schema 3 migration");
    put_key_row(dir.path(), &key, &enabled);
    assert_refused(&mut attack, dir.path(), KEY_RECORDS);
}

#[test]
fn a_root_key_rotation_keeps_the_digest_whole() {
    let dir = tempfile::tempdir().unwrap();
    let store = init(dir.path());
    let engine = engine(&store);
    let key = new_key(&engine);
    engine.create_alias("alias/r", &key).unwrap();
    store.put_secret("app-secret", b"v").unwrap();
    let before = key_row(dir.path(), &key);
    store.rotate_root_key(key_file(dir.path())).unwrap();
    assert!(store.verify(false).unwrap().is_pristine());
    engine.disable_key(&key).unwrap();
    drop((engine, store));
    assert!(open(dir.path()).verify(false).unwrap().is_pristine());
    // A row from before the rotation fails its seal under the new root key.
    put_key_row(dir.path(), &key, &before);
    assert!(!open(dir.path()).verify(false).unwrap().is_healthy());
}

// ---- 8b: the root key file --------------------------------------------------------------------

#[test]
fn a_root_key_file_that_is_a_symbolic_link_is_refused() {
    let mut attack = Attack::new("root.key as a symbolic link");
    let dir = tempfile::tempdir().unwrap();
    drop(init(dir.path()));
    let real = dir.path().join("elsewhere.key");
    std::fs::rename(dir.path().join("root.key"), &real).unwrap();
    std::os::unix::fs::symlink(&real, dir.path().join("root.key")).unwrap();
    let provider: Arc<dyn RootKeyProvider> = key_file(dir.path());
    let err = SqliteKeyStore::open(dir.path(), provider, StoreOptions::default()).unwrap_err();
    assert_eq!(err.code(), "AccessDeniedException", "{err}");
    assert!(err.message().contains("symbolic link"), "{err}");
    attack.judged(true, "opening through the link");
    // The file itself, named directly, opens the store.
    let direct: Arc<dyn RootKeyProvider> =
        Arc::new(KeyFileProvider::new(&real, LockPolicy::Require));
    SqliteKeyStore::open(dir.path(), direct, StoreOptions::default()).unwrap();
}

#[test]
fn root_key_next_is_never_written_through_a_planted_symbolic_link() {
    let mut attack = Attack::new("root.key.next planted as a symbolic link");
    let dir = tempfile::tempdir().unwrap();
    let store = init(dir.path());
    let victim = dir.path().join("victim");
    std::fs::write(&victim, b"precious").unwrap();
    std::os::unix::fs::symlink(&victim, dir.path().join("root.key.next")).unwrap();
    let err = store.rotate_root_key(key_file(dir.path())).unwrap_err();
    assert_eq!(err.code(), "AccessDeniedException", "{err}");
    assert!(err.message().contains("symbolic link"), "{err}");
    assert_eq!(std::fs::read(&victim).unwrap(), b"precious", "not followed");
    attack.judged(true, "rotating through the link");

    // A stale regular file left by an abandoned rotation is replaced by a new file (O_EXCL,
    // mode 0600), not written through.
    std::fs::remove_file(dir.path().join("root.key.next")).unwrap();
    std::fs::write(dir.path().join("root.key.next"), b"stale").unwrap();
    let stale_link = dir.path().join("stale-hardlink");
    std::fs::hard_link(dir.path().join("root.key.next"), &stale_link).unwrap();
    store.rotate_root_key(key_file(dir.path())).unwrap();
    assert_eq!(
        std::fs::read(&stale_link).unwrap(),
        b"stale",
        "the old inode was not opened for writing"
    );
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(dir.path().join("root.key"))
            .unwrap()
            .permissions(),
    ) & 0o777;
    assert_eq!(mode, 0o600);
    assert!(store.verify(false).unwrap().is_pristine());
}

#[test]
fn replaying_an_older_key_row_is_detected_on_the_incremental_path() {
    // Issue 19: an engine sharing the store follows it through `changes_since`, reading only the
    // rows that changed; a replayed row must be refused there as a full load refuses it.
    let mut attack = Attack::new("replay a key row on the incremental path (follow a re-enable)");
    let dir = tempfile::tempdir().unwrap();
    let store = init(dir.path());
    let writer = engine(&store);
    let follower_store = open(dir.path());
    let follower = common::engine(&follower_store);
    for _ in 0..4 {
        let key = new_key(&writer);
        follower.run_due_tasks().unwrap();
        let enabled = key_row(dir.path(), &key);
        let at = keyplane::store::KeyStore::generation(follower_store.as_ref()).unwrap();
        writer.disable_key(&key).unwrap();
        let disabled = key_row(dir.path(), &key);
        put_key_row(dir.path(), &key, &enabled);
        attack.refused_by_store(
            keyplane::store::KeyStore::changes_since(follower_store.as_ref(), at),
            &["replay detected", "record of key"],
            "following the replayed row",
        );
        attack.refused_by_store(
            follower.describe_key(&key),
            &["replay detected"],
            "a control-plane call on the follower",
        );
        // Put the current row back: the follower follows the disable.
        put_key_row(dir.path(), &key, &disabled);
        follower.run_due_tasks().unwrap();
        assert_eq!(
            follower.describe_key(&key).unwrap().key_state,
            KeyState::Disabled
        );
    }
}
