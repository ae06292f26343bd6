//! Store secrets: wrapped under the root key like key material, bound to their name, kept in two
//! copies and repaired, rewrapped by root key rotation, carried by backups, created once across
//! processes; and the schema-1 store migrated to make room for them.

mod common;

use std::path::Path;
use std::sync::Arc;

use common::*;
use keyplane_sqlite::root_key::{EnvVarProvider, RootKeyProvider};
use keyplane_sqlite::{Damage, SqliteKeyStore, StoreOptions, SCHEMA_VERSION};
use rusqlite::Connection;

const NAME: &str = "audit-signing-key";

fn secret_bytes(seed: u8, len: usize) -> Vec<u8> {
    (0..len).map(|i| seed.wrapping_add(i as u8)).collect()
}

/// The wrapped bytes of copy `copy` (1 or 2) of secret `name`, as stored.
fn wrapped(dir: &Path, name: &str, copy: usize) -> Vec<u8> {
    let conn = Connection::open(db_path(dir)).unwrap();
    conn.query_row(
        &format!("SELECT wrapped FROM secret_copy_{copy} WHERE name = ?1"),
        [name],
        |r| r.get(0),
    )
    .unwrap()
}

/// The secret `NAME` of `store`, which must be there.
fn secret_of(store: &SqliteKeyStore) -> Vec<u8> {
    store
        .get_secret(NAME)
        .unwrap()
        .expect("the secret is there")
        .expose(keyplane::SecretAccess::granted())
        .to_vec()
}

/// Restores `backup` into the data directory `data` (with the root key file there).
fn restore(data: &Path, backup: &Path) {
    SqliteKeyStore::restore(data, backup, key_file(data), StoreOptions::default(), false).unwrap();
}

fn generation(store: &SqliteKeyStore) -> u64 {
    keyplane::store::KeyStore::generation(store).unwrap()
}

#[test]
fn a_secret_round_trips_durably_wrapped_and_never_in_clear() {
    let dir = tempfile::tempdir().unwrap();
    let store = init(dir.path());
    let value = secret_bytes(0x41, 138);
    assert!(store.get_secret(NAME).unwrap().is_none());
    let before = generation(&store);
    store.put_secret(NAME, &value).unwrap();
    assert_eq!(generation(&store), before + 1, "a secret is a change");
    assert_eq!(secret_of(&store), value);
    store.put_secret("other", b"x").unwrap();
    assert_eq!(
        store.secret_names().unwrap(),
        ["audit-signing-key", "other"]
    );
    assert!(store.delete_secret("other").unwrap());
    assert!(!store.delete_secret("other").unwrap());
    assert_eq!(
        store.put_secret("no/slash", b"x").unwrap_err().code(),
        "ValidationException"
    );
    assert_eq!(
        store.put_secret("empty", b"").unwrap_err().code(),
        "ValidationException"
    );
    let events: Vec<String> = store
        .events(10)
        .unwrap()
        .into_iter()
        .map(|e| e.kind)
        .collect();
    assert!(events.contains(&"secret-stored".to_owned()), "{events:?}");
    assert!(events.contains(&"secret-deleted".to_owned()), "{events:?}");
    drop(store);

    let bytes = std::fs::read(db_path(dir.path())).unwrap();
    assert!(
        !bytes.windows(32).any(|w| w == &value[..32]),
        "the secret is not in the file in clear"
    );
    assert_ne!(wrapped(dir.path(), NAME, 1), wrapped(dir.path(), NAME, 2));
    let store = open(dir.path());
    assert_eq!(secret_of(&store), value);
    let report = store.verify(false).unwrap();
    assert_eq!(report.secrets, 1);
    assert_eq!(report.secret_copies_checked, 2);
    assert_eq!(report.secret_copies_good, 2);
    assert!(report.is_pristine());
}

#[test]
fn get_or_create_makes_one_secret_even_when_handles_race() {
    let dir = tempfile::tempdir().unwrap();
    let first = init(dir.path());
    let handles: Vec<Arc<SqliteKeyStore>> = (0..4).map(|_| open(dir.path())).collect();
    let made = std::sync::atomic::AtomicUsize::new(0);
    let values: Vec<Vec<u8>> = std::thread::scope(|s| {
        let threads: Vec<_> = handles
            .iter()
            .enumerate()
            .map(|(i, h)| {
                let made = &made;
                s.spawn(move || {
                    h.get_or_create_secret(NAME, || {
                        made.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        keyplane::LockedBytes::copy_from(
                            &secret_bytes(i as u8, 64),
                            Default::default(),
                        )
                    })
                    .unwrap()
                    .expose(keyplane::SecretAccess::granted())
                    .to_vec()
                })
            })
            .collect();
        threads.into_iter().map(|t| t.join().unwrap()).collect()
    });
    assert!(values.windows(2).all(|w| w[0] == w[1]), "one value for all");
    assert_eq!(
        made.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "created inside the write transaction, so only once"
    );
    let again = first
        .get_or_create_secret(NAME, || panic!("must not create again"))
        .unwrap();
    assert_eq!(again.expose(keyplane::SecretAccess::granted()), &values[0]);
    report(&format!(
        "store secrets: 4 handles raced get_or_create, {} created a value, one was stored",
        made.load(std::sync::atomic::Ordering::SeqCst)
    ));
}

#[test]
fn a_damaged_copy_is_repaired_and_a_secret_with_no_good_copy_is_an_error_not_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let value = secret_bytes(7, 100);
    init(dir.path()).put_secret(NAME, &value).unwrap();
    flip_on_disk(dir.path(), &wrapped(dir.path(), NAME, 2));

    let store = open(dir.path());
    let report = store.verify(false).unwrap();
    assert_eq!(report.damaged_secret_copies.len(), 1);
    assert_eq!(report.damaged_secret_copies[0].copy, 2);
    assert_eq!(report.damaged_secret_copies[0].damage, Damage::Checksum);
    assert!(!report.is_healthy(), "unrepaired damage");
    assert_eq!(secret_of(&store), value);
    let report = store.verify(false).unwrap();
    assert!(report.is_pristine(), "repaired on read: {report:?}");
    assert!(store
        .events(10)
        .unwrap()
        .iter()
        .any(|e| e.kind == "repair" && e.detail.contains(NAME)));
    drop(store);

    // Both copies damaged: an error, never None, and get_or_create does not replace it.
    flip_on_disk(dir.path(), &wrapped(dir.path(), NAME, 1));
    flip_on_disk(dir.path(), &wrapped(dir.path(), NAME, 2));
    let store = open(dir.path());
    let err = store.get_secret(NAME).unwrap_err();
    assert!(err.message().contains("every copy"), "{err}");
    assert!(store
        .get_or_create_secret(NAME, || panic!("must not replace a damaged secret"))
        .is_err());
    let report = store.verify(true).unwrap();
    assert_eq!(report.lost_secrets, [NAME]);
    assert!(!report.is_healthy());
}

#[test]
fn a_copy_moved_onto_another_name_fails_to_unwrap() {
    let dir = tempfile::tempdir().unwrap();
    let store = init(dir.path());
    store.put_secret("a", &secret_bytes(1, 40)).unwrap();
    store.put_secret("b", &secret_bytes(2, 40)).unwrap();
    drop(store);
    let conn = Connection::open(db_path(dir.path())).unwrap();
    for copy in [1, 2] {
        conn.execute(
            &format!(
                "UPDATE secret_copy_{copy} SET wrapped = (SELECT wrapped FROM secret_copy_{copy} \
                 WHERE name = 'a'), checksum = (SELECT checksum FROM secret_copy_{copy} WHERE \
                 name = 'a') WHERE name = 'b'"
            ),
            [],
        )
        .unwrap();
    }
    drop(conn);
    let store = open(dir.path());
    assert!(
        store.get_secret("b").is_err(),
        "a's secret does not open as b's"
    );
    let report = store.verify(false).unwrap();
    assert_eq!(report.lost_secrets, ["b"]);
    assert!(report
        .damaged_secret_copies
        .iter()
        .all(|c| c.damage == Damage::Authentication));
}

#[test]
fn root_key_rotation_rewraps_secrets_and_the_old_key_no_longer_opens_them() {
    let dir = tempfile::tempdir().unwrap();
    let store = init(dir.path());
    let value = secret_bytes(9, 121);
    store.put_secret(NAME, &value).unwrap();
    let before = (wrapped(dir.path(), NAME, 1), wrapped(dir.path(), NAME, 2));

    let report = store.rotate_root_key(key_file(dir.path())).unwrap();
    assert_eq!(report.secrets_rewrapped, 1);
    assert_eq!(report.secrets_lost, 0);
    assert_eq!(secret_of(&store), value);
    drop(store);
    let after = (wrapped(dir.path(), NAME, 1), wrapped(dir.path(), NAME, 2));
    assert_ne!(before.0, after.0);
    assert_ne!(before.1, after.1);
    let store = open(dir.path());
    assert_eq!(secret_of(&store), value);
    assert!(store.verify(false).unwrap().is_pristine());

    // Onto another provider (an environment variable), and back readable there.
    let var = "KEYPLANE_TEST_SECRETS_ROTATION_KEY";
    std::env::set_var(var, base64_of(&secret_bytes(0x30, 32)));
    let env: Arc<dyn RootKeyProvider> =
        Arc::new(EnvVarProvider::new(var, keyplane::LockPolicy::Require));
    let report = store.rotate_root_key(env.clone()).unwrap();
    assert_eq!(report.secrets_rewrapped, 1);
    drop(store);
    let store = SqliteKeyStore::open(dir.path(), env, StoreOptions::default()).unwrap();
    assert_eq!(secret_of(&store), value);
}

fn base64_of(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[test]
fn backups_carry_secrets_and_restore_brings_them_back() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let store = init(&data);
    let value = secret_bytes(3, 50);
    store.put_secret(NAME, &value).unwrap();
    let backup = dir.path().join("b.db");
    store.backup(&backup).unwrap();
    store.delete_secret(NAME).unwrap();
    drop(store);
    restore(&data, &backup);
    assert_eq!(secret_of(&open(&data)), value);
}

/// Turns a fresh store into what a schema-1 binary made: no secret tables, user_version 1.
fn make_schema_1(dir: &Path) {
    drop(init(dir));
    let conn = Connection::open(db_path(dir)).unwrap();
    conn.execute_batch(
        "DROP TABLE change_log; DROP TABLE secret_copy_1; DROP TABLE secret_copy_2; \
         DROP TABLE secrets; \
         ALTER TABLE store DROP COLUMN contents; PRAGMA user_version = 1;",
    )
    .unwrap();
}

fn user_version(dir: &Path) -> i32 {
    Connection::open(db_path(dir))
        .unwrap()
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap()
}

#[test]
fn a_schema_1_store_is_migrated_when_its_root_key_opens_it() {
    let dir = tempfile::tempdir().unwrap();
    make_schema_1(dir.path());
    assert_eq!(user_version(dir.path()), 1);

    // A wrong root key migrates nothing.
    std::fs::rename(
        dir.path().join("root.key"),
        dir.path().join("root.key.real"),
    )
    .unwrap();
    std::fs::write(dir.path().join("root.key"), base64_of(&[9u8; 32])).unwrap();
    std::fs::set_permissions(
        dir.path().join("root.key"),
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    let files = files_in(dir.path());
    let err = SqliteKeyStore::open(dir.path(), key_file(dir.path()), StoreOptions::default())
        .unwrap_err();
    assert_eq!(err.code(), "AccessDeniedException");
    assert_eq!(files_in(dir.path()), files, "nothing written");
    assert_eq!(user_version(dir.path()), 1);
    std::fs::rename(
        dir.path().join("root.key.real"),
        dir.path().join("root.key"),
    )
    .unwrap();

    let store = open(dir.path());
    assert_eq!(user_version(dir.path()), SCHEMA_VERSION);
    assert!(store.get_secret(NAME).unwrap().is_none());
    store.put_secret(NAME, b"now there is room").unwrap();
    assert_eq!(store.verify(false).unwrap().schema_version, SCHEMA_VERSION);
    drop(store);
    assert_eq!(secret_of(&open(dir.path())), b"now there is room");
}

#[test]
fn a_schema_1_backup_restores_and_is_migrated() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    make_schema_1(&data);
    let backup = dir.path().join("v1.db");
    open_v1_backup(&data, &backup);
    restore(&data, &backup);
    let store = open(&data);
    store.put_secret(NAME, b"after restore").unwrap();
    assert!(store.verify(false).unwrap().is_pristine());
}

/// A backup of the schema-1 store in `data`, made as `SqliteKeyStore::backup` makes one but
/// without opening the store with this binary (which would migrate it).
fn open_v1_backup(data: &Path, to: &Path) {
    std::fs::copy(db_path(data), to).unwrap();
    let conn = Connection::open(to).unwrap();
    conn.query_row("PRAGMA journal_mode = DELETE", [], |_| Ok(()))
        .unwrap();
    assert_eq!(
        conn.query_row("PRAGMA user_version", [], |r| r.get::<_, i32>(0))
            .unwrap(),
        1
    );
}
