//! Attacks by a database administrator without the root key (a superuser connection editing
//! rows), one test each, named after the attack, in the security regression suite's style: each
//! counts its attempts and prints `assurance: attack <name>: tried N, rejected N`.
//!
//! - a key row replayed: a disabled key's row replaced by its enabled past version;
//! - an alias row replayed (pointed back at its earlier key);
//! - a material row swapped between keys (one copy: repaired; both: the version unavailable);
//! - a change-log row deleted;
//! - the generation row decreased (and the whole meta row put back from earlier);
//! - the whole database restored from a `pg_dump` of an earlier generation.

mod common;

use std::process::Command;

use common::*;
use keyplane::store::{KeyStore, StoreChange};
use keyplane::KeyState;
use keyplane_testkit::{succeeded, Attack};

/// What only these attacks judge: a problem `verify` must report.
trait Reported {
    fn reported(&mut self, report: keyplane_postgres::VerifyReport, word: &str);
}

impl Reported for Attack {
    #[track_caller]
    fn reported(&mut self, report: keyplane_postgres::VerifyReport, word: &str) {
        let verdict = match report.problems.iter().any(|p| p.contains(word)) {
            true => Ok(()),
            false => Err(format!("not reported: {:?}", report.problems)),
        };
        self.attempt(&format!("verify reports '{word}'"), verdict);
    }
}

type KeyRowBytes = (i64, String, Vec<u8>);

fn key_row(admin: &mut postgres::Client, id: &uuid::Uuid) -> KeyRowBytes {
    let r = admin
        .query_one(
            "SELECT generation, record, seal FROM keyplane_keys WHERE key_id = $1",
            &[&&id.as_bytes()[..]],
        )
        .unwrap();
    (r.get(0), r.get(1), r.get(2))
}

fn put_key_row(admin: &mut postgres::Client, id: &uuid::Uuid, row: &KeyRowBytes) {
    admin
        .execute(
            "UPDATE keyplane_keys SET generation = $2, record = $3, seal = $4 WHERE key_id = $1",
            &[&&id.as_bytes()[..], &row.0, &row.1, &row.2],
        )
        .unwrap();
}

#[test]
fn a_disabled_key_s_row_replaced_by_its_enabled_past_version_is_detected() {
    let Some(db) = TestDb::new() else { return };
    let mut attack = Attack::new("replay a disabled key's enabled row");
    let store = db.init();
    let k = create_key(store.as_ref(), 1);
    let mut admin = db.admin();
    let enabled = key_row(&mut admin, &k.id);
    let before = store.generation().unwrap();
    store
        .commit(&[StoreChange::PutKey(&with_state(&k, KeyState::Disabled))])
        .unwrap();
    put_key_row(&mut admin, &k.id, &enabled);
    attack.refused_by_store(store.load(), &["replay detected", "key records"], "");
    attack.refused_by_store(
        store.load_key(&k.id),
        &["replay detected", &k.id.to_string()],
        "",
    );
    attack.refused_by_store(store.changes_since(before), &["replay detected"], "");
    attack.reported(store.verify(false).unwrap(), "replay detected");
    // A fresh node (no witness) is not fooled either.
    attack.refused_by_store(db.open().load(), &["replay detected"], "");
}

#[test]
fn an_alias_row_replayed_is_detected() {
    let Some(db) = TestDb::new() else { return };
    let mut attack = Attack::new("replay an alias row");
    let store = db.init();
    let (a, b) = (create_key(store.as_ref(), 1), create_key(store.as_ref(), 2));
    store
        .commit(&[StoreChange::PutAlias(&alias("alias/app", a.id))])
        .unwrap();
    let mut admin = db.admin();
    let old = admin
        .query_one(
            "SELECT target, generation, record, seal FROM keyplane_aliases",
            &[],
        )
        .unwrap();
    let before = store.generation().unwrap();
    store
        .commit(&[StoreChange::PutAlias(&alias("alias/app", b.id))])
        .unwrap();
    admin
        .execute(
            "UPDATE keyplane_aliases SET target = $1, generation = $2, record = $3, seal = $4",
            &[
                &old.get::<_, Vec<u8>>(0),
                &old.get::<_, i64>(1),
                &old.get::<_, String>(2),
                &old.get::<_, Vec<u8>>(3),
            ],
        )
        .unwrap();
    attack.refused_by_store(store.load(), &["replay detected", "aliases"], "");
    attack.refused_by_store(
        store.changes_since(before),
        &["replay detected", "alias/app"],
        "",
    );
}

#[test]
fn a_material_row_swapped_between_keys_is_detected() {
    let Some(db) = TestDb::new() else { return };
    let mut attack = Attack::new("swap material rows between keys");
    let store = db.init();
    let (a, b) = (create_key(store.as_ref(), 1), create_key(store.as_ref(), 2));
    let mut admin = db.admin();
    let swap = |admin: &mut postgres::Client, copy: i16| {
        let b_copy: Vec<u8> = admin
            .query_one(
                "SELECT wrapped FROM keyplane_material WHERE key_id = $1 AND copy = $2",
                &[&&b.id.as_bytes()[..], &copy],
            )
            .unwrap()
            .get(0);
        let sum =
            aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &b_copy).as_ref()[..16].to_vec();
        admin
            .execute(
                "UPDATE keyplane_material SET wrapped = $3, checksum = $4 \
                 WHERE key_id = $1 AND copy = $2",
                &[&&a.id.as_bytes()[..], &copy, &b_copy, &sum],
            )
            .unwrap();
    };
    // One copy moved: it fails authentication under a's slot, and is repaired from the other.
    swap(&mut admin, 0);
    let report = store.verify(false).unwrap();
    attack.reported(report, "fails authentication");
    let c = store.load().unwrap();
    let m = c.materials.iter().find(|m| m.key_id == a.id).unwrap();
    assert_eq!(
        m.material.expose(keyplane::SecretAccess::granted()),
        &[1; 32],
        "a's own material, not b's"
    );
    assert!(store.repairs() >= 1);
    assert!(store.verify(false).unwrap().is_pristine(), "repaired");
    // Both copies moved: a's version has no good copy, and b's material is never taken for a's.
    swap(&mut admin, 0);
    swap(&mut admin, 1);
    let c = store.load().unwrap();
    assert!(!c.materials.iter().any(|m| m.key_id == a.id));
    attack.reported(store.verify(false).unwrap(), "has no good copy");
}

#[test]
fn a_deleted_change_log_row_is_detected() {
    let Some(db) = TestDb::new() else { return };
    let mut attack = Attack::new("delete a change-log row");
    let store = db.init();
    let before = store.generation().unwrap();
    let k = create_key(store.as_ref(), 1);
    store
        .commit(&[StoreChange::PutKey(&with_state(&k, KeyState::Disabled))])
        .unwrap();
    let mut admin = db.admin();
    // The disable's log row: without it a follower would never hear of the disable.
    admin
        .execute(
            "DELETE FROM keyplane_changes WHERE generation = $1",
            &[&((before + 2) as i64)],
        )
        .unwrap();
    attack.refused_by_store(
        store.changes_since(before),
        &["change log", "generation 2"],
        "",
    );
    attack.refused_by_store(store.changes_since(before + 1), &["change log"], "");
    attack.reported(store.verify(false).unwrap(), "change log");
    // One row of a generation with two (the key's record and its material): counted.
    admin
        .execute(
            "DELETE FROM keyplane_changes WHERE generation = $1 AND kind = 'm'",
            &[&((before + 1) as i64)],
        )
        .unwrap();
    attack.refused_by_store(
        store.changes_since(before),
        &["change log", "1 of generation 1's 2 rows"],
        "",
    );
}

#[test]
fn a_decreased_or_earlier_generation_row_is_detected() {
    let Some(db) = TestDb::new() else { return };
    let mut attack = Attack::new("set the generation back");
    let store = db.init();
    create_key(store.as_ref(), 1);
    let mut admin = db.admin();
    let old_meta = admin
        .query_one(
            "SELECT generation, generation_seal, contents FROM keyplane_meta",
            &[],
        )
        .unwrap();
    create_key(store.as_ref(), 2);
    admin
        .execute("UPDATE keyplane_meta SET generation = generation - 1", &[])
        .unwrap();
    attack.refused_by_store(
        store.load(),
        &["generation counter", "fails its root-key check"],
        "",
    );
    attack.refused_by_store(store.generation(), &["generation counter"], "");
    let fresh = keyplane_postgres::PostgresKeyStore::open(&db.url, db.provider(), db.options());
    attack.refused_by_store(fresh, &["generation counter"], "");
    // The whole meta row of the earlier generation put back: authentic, but older than this node
    // has seen, and its digest does not cover the later key.
    admin
        .execute(
            "UPDATE keyplane_meta SET generation = $1, generation_seal = $2, contents = $3",
            &[
                &old_meta.get::<_, i64>(0),
                &old_meta.get::<_, Vec<u8>>(1),
                &old_meta.get::<_, Vec<u8>>(2),
            ],
        )
        .unwrap();
    attack.refused_by_store(store.load(), &["rollback detected"], "");
    let fresh = db.open();
    attack.refused_by_store(fresh.load(), &["replay detected"], "");
}

fn pg_tool(name: &str) -> String {
    let bin = std::env::var("KEYPLANE_TEST_PG_BIN")
        .unwrap_or_else(|_| "/usr/lib/postgresql/15/bin".into());
    format!("{bin}/{name}")
}

#[test]
fn a_database_restored_from_an_earlier_dump_is_detected_by_the_witness() {
    let Some(db) = TestDb::new() else { return };
    let mut attack = Attack::new("restore the database from an earlier pg_dump");
    let node_dir = tempfile::tempdir().unwrap();
    let first = db.init();
    drop(first);
    let store = db.open_with_witness(node_dir.path().to_path_buf());
    let k = create_key(store.as_ref(), 1);
    let dump = node_dir.path().join("earlier.sql");
    succeeded(
        Command::new(pg_tool("pg_dump"))
            .args(["--clean", "--if-exists", "-f"])
            .arg(&dump)
            .arg(&db.url),
    );
    store
        .commit(&[StoreChange::PutKey(&with_state(&k, KeyState::Disabled))])
        .unwrap();
    let seen = store.generation().unwrap();
    succeeded(
        Command::new(pg_tool("psql"))
            .args(["-q", "-v", "ON_ERROR_STOP=1", "-f"])
            .arg(&dump)
            .arg(&db.url),
    );
    let rolled = format!("this node has seen generation {seen}");
    attack.refused_by_store(store.load(), &["rollback detected", &rolled], "");
    attack.refused_by_store(store.load_key(&k.id), &["rollback detected"], "");
    attack.refused_by_store(store.commit(&[]), &["rollback detected"], "");
    drop(store);
    // The node restarted: its witness file remembers.
    let restarted = keyplane_postgres::PostgresKeyStore::open(
        &db.url,
        db.provider(),
        keyplane_postgres::PgOptions {
            witness_dir: Some(node_dir.path().to_path_buf()),
            ..db.options()
        },
    );
    attack.refused_by_store(restarted.map(|_| ()), &["rollback detected"], "");
}

/// An engine on its own store of the test's database, with its own witness (a node), which
/// follows the store only when asked (no scheduler): what it has applied is exactly what it
/// followed.
fn follower(db: &TestDb, witness: &tempfile::TempDir) -> keyplane::Engine {
    keyplane::Engine::builder()
        .worker_threads(1)
        .store(db.open_with_witness(witness.path().to_path_buf()))
        .build()
        .unwrap()
}

fn encrypt_code(engine: &keyplane::Engine, key: &str) -> &'static str {
    match engine.encrypt(&keyplane::EncryptRequest::new(key, b"x")) {
        Ok(_) => "ok",
        Err(e) => e.code(),
    }
}

#[test]
fn a_follower_fed_a_replayed_key_row_or_change_row_applies_neither() {
    let Some(db) = TestDb::new() else { return };
    let mut attack = Attack::new("replay a row or a change-log row to a follower");
    drop(db.init());
    let (wa, wb) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = follower(&db, &wa);
    let b = follower(&db, &wb);
    let key = a
        .create_key(keyplane::CreateKeyRequest::default())
        .unwrap()
        .key_id;
    let id: uuid::Uuid = key.parse().unwrap();
    b.run_due_tasks().unwrap();
    assert_eq!(encrypt_code(&b, &key), "ok");
    let mut admin = db.admin();
    let enabled = key_row(&mut admin, &id);
    let enabled_change: Vec<u8> = admin
        .query_one(
            "SELECT seal FROM keyplane_changes WHERE kind = 'k' AND name = $1 \
             ORDER BY generation DESC LIMIT 1",
            &[&key],
        )
        .unwrap()
        .get(0);
    a.disable_key(&key).unwrap();
    let disabled = key_row(&mut admin, &id);

    // 1. The key's row put back to its enabled past: B's follow refuses it.
    put_key_row(&mut admin, &id, &enabled);
    let e = b.run_due_tasks().expect_err("a replayed key row applied");
    assert!(e.message().contains("replay detected"), "{e}");
    attack.judged(true, "B's follow refuses the replayed key row");
    // 2. And the disable's change-log entry replaced by the enable's, so that the replayed row
    // matches the log: the entry's seal names its own generation.
    let disabled_change: Vec<u8> = admin
        .query_one(
            "SELECT seal FROM keyplane_changes WHERE kind = 'k' AND name = $1 AND generation = $2",
            &[&key, &disabled.0],
        )
        .unwrap()
        .get(0);
    admin
        .execute(
            "UPDATE keyplane_changes SET seal = $3 WHERE kind = 'k' AND name = $1 \
             AND generation = $2",
            &[&key, &disabled.0, &enabled_change],
        )
        .unwrap();
    let e = b
        .run_due_tasks()
        .expect_err("a replayed change-log row applied");
    assert!(e.message().contains("change log"), "{e}");
    attack.judged(true, "B's follow refuses the replayed change-log row");
    // Neither was half-applied: B's control plane answers the store's refusal, never the
    // replayed Enabled state, and B never committed anything on top of it.
    assert!(b.enable_key(&key).is_err() && b.describe_key(&key).is_err());
    attack.judged(true, "nothing half-applied");

    // The genuine rows back: B follows the disable, as every node must.
    put_key_row(&mut admin, &id, &disabled);
    admin
        .execute(
            "UPDATE keyplane_changes SET seal = $3 WHERE kind = 'k' AND name = $1 \
             AND generation = $2",
            &[&key, &disabled.0, &disabled_change],
        )
        .unwrap();
    b.run_due_tasks().unwrap();
    assert_eq!(encrypt_code(&b, &key), "DisabledException");
}

#[test]
fn a_follower_told_a_stale_generation_keeps_the_disable_it_saw() {
    let Some(db) = TestDb::new() else { return };
    let mut attack = Attack::new("tell a follower a stale generation");
    drop(db.init());
    let (wa, wb) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = follower(&db, &wa);
    let b = follower(&db, &wb);
    let key = a
        .create_key(keyplane::CreateKeyRequest::default())
        .unwrap()
        .key_id;
    let id: uuid::Uuid = key.parse().unwrap();
    let mut admin = db.admin();
    let enabled = key_row(&mut admin, &id);
    let old_meta = admin
        .query_one(
            "SELECT generation, generation_seal, contents FROM keyplane_meta",
            &[],
        )
        .unwrap();
    a.disable_key(&key).unwrap();
    b.run_due_tasks().unwrap();
    assert_eq!(encrypt_code(&b, &key), "DisabledException");

    // The administrator puts the store back to the generation before the disable: the meta row
    // and the key's row, both authentic, as they were.
    admin
        .execute(
            "UPDATE keyplane_meta SET generation = $1, generation_seal = $2, contents = $3",
            &[
                &old_meta.get::<_, i64>(0),
                &old_meta.get::<_, Vec<u8>>(1),
                &old_meta.get::<_, Vec<u8>>(2),
            ],
        )
        .unwrap();
    put_key_row(&mut admin, &id, &enabled);
    for node in [&b, &a] {
        let e = node
            .run_due_tasks()
            .expect_err("a stale generation accepted");
        assert!(e.message().contains("rollback detected"), "{e}");
        // The key it saw disabled stays refused; nothing is written on the stale store.
        assert_eq!(encrypt_code(node, &key), "DisabledException");
        assert!(node.enable_key(&key).is_err());
        attack.judged(true, "a stale generation refused by every node");
    }
    assert_eq!(
        admin
            .query_one("SELECT generation FROM keyplane_meta", &[])
            .unwrap()
            .get::<_, i64>(0),
        old_meta.get::<_, i64>(0),
        "a node committed on top of the stale generation"
    );
}
