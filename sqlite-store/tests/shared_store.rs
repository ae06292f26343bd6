// ---- Issue 19: engines sharing one SQLite store follow it incrementally, losing no update ------
//
//! Several engines, each with its own handle on one SQLite directory (as separate processes
//! would have): the model-based run of `engine/tests/support/shared_store_model.rs` (one source
//! with the memory store's); compare-and-commit; `changes_since` checked against a reference
//! model of random commits; a row replayed from the past refused on the incremental path as on a
//! full load; a schema 3 store migrated to the change log.

mod common;

#[path = "../../engine/tests/support/shared_store_model.rs"]
mod shared_store_model;

use std::collections::BTreeMap;
use std::sync::Arc;

use common::*;
use keyplane::key::Tag;
use keyplane::store::{KeyStore, StoreChange};
use keyplane::{Engine, ErrorKind, KeyState};

fn engine_on(store: Arc<SqliteKeyStoreHandle>) -> Engine {
    Engine::builder()
        .worker_threads(1)
        .store(store as Arc<dyn KeyStore>)
        .build()
        .unwrap()
}

type SqliteKeyStoreHandle = keyplane_sqlite::SqliteKeyStore;

fn steps() -> usize {
    std::env::var("KEYPLANE_SHARED_STEPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(40)
}

#[test]
fn three_engines_on_one_sqlite_directory_agree_with_the_model() {
    let dir = tempfile::tempdir().unwrap();
    let first = init(dir.path());
    let handles = [first, open(dir.path()), open(dir.path())];
    let engines: Vec<Engine> = handles.iter().map(|h| engine_on(Arc::clone(h))).collect();
    let store: Arc<dyn KeyStore> = open(dir.path());
    let counts = shared_store_model::check(&engines, &store, steps(), 0x5e1f);
    report(&format!(
        "assurance: 3 engines on one SQLite store, {} operations, {} ended in ConflictException",
        counts.operations, counts.conflicts
    ));
    // Everything the engines followed incrementally is what a full load finds.
    let fresh = engine_on(open(dir.path()));
    let shared = engines[0].list_keys(None, None).unwrap();
    assert_eq!(fresh.list_keys(None, None).unwrap(), shared);
}

#[test]
fn compare_and_commit_refuses_a_stale_generation_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let a = init(dir.path());
    let b = open(dir.path());
    let engine = engine_on(Arc::clone(&a));
    let key = new_key(&engine);
    let at = b.generation().unwrap();
    let mut record = b.load_key(&key.parse().unwrap()).unwrap().unwrap();
    // A commits first.
    engine.disable_key(&key).unwrap();
    record.description = "blind write".into();
    let e = b
        .commit_at(at, &[StoreChange::PutKey(&record)])
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Conflict, "{e}");
    let stored = a.load_key(&key.parse().unwrap()).unwrap().unwrap();
    assert_eq!(stored.state, KeyState::Disabled, "the disable was lost");
    assert_eq!(stored.description, "");
    // At the current generation it goes through.
    let now = b.generation().unwrap();
    let mut record = stored;
    record.description = "checked".into();
    assert_eq!(
        b.commit_at(now, &[StoreChange::PutKey(&record)]).unwrap(),
        now + 1
    );
}

#[test]
fn changes_since_matches_a_model_of_random_commits() {
    let dir = tempfile::tempdir().unwrap();
    let store = init(dir.path());
    let engine = engine_on(Arc::clone(&store));
    let reader = open(dir.path());
    let mut seen = reader.load().unwrap();
    let mut view_keys: BTreeMap<uuid::Uuid, keyplane::key::KeyRecord> =
        seen.keys.drain(..).map(|r| (r.id, r)).collect();
    let mut view_aliases: BTreeMap<String, uuid::Uuid> = seen
        .aliases
        .drain(..)
        .map(|a| (a.name.clone(), a.target))
        .collect();
    let mut view_materials: BTreeMap<(uuid::Uuid, u32), Vec<u8>> = BTreeMap::new();
    let mut generation = seen.generation;
    let mut keys: Vec<String> = Vec::new();
    let mut rng = 0x2545_f491_4f6c_dd1du64;
    let mut below = |n: usize| {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        (rng % n as u64) as usize
    };
    let mut deltas = 0;
    for step in 0..60 {
        match below(6) {
            0 | 1 if keys.len() < 6 => keys.push(new_key(&engine)),
            2 if !keys.is_empty() => {
                let key = &keys[below(keys.len())];
                let _ = engine.disable_key(key);
            }
            3 if !keys.is_empty() => {
                let key = &keys[below(keys.len())];
                let _ = engine.rotate_key_on_demand(key);
            }
            4 if !keys.is_empty() => {
                let key = &keys[below(keys.len())];
                let _ = engine
                    .update_alias(&format!("alias/m{}", below(3)), key)
                    .or_else(|_| engine.create_alias(&format!("alias/m{}", below(3)), key));
            }
            5 if keys.len() > 2 => {
                let key = keys.remove(below(keys.len()));
                engine.schedule_key_deletion(&key, Some(7)).unwrap();
            }
            _ => {
                if let Some(key) = keys.first() {
                    engine
                        .tag_resource(
                            key,
                            vec![Tag {
                                tag_key: format!("s{step}"),
                                tag_value: "v".into(),
                            }],
                        )
                        .unwrap();
                }
            }
        }
        // Follow every few steps, so deltas span several commits.
        if below(3) != 0 {
            continue;
        }
        let delta = reader
            .changes_since(generation)
            .unwrap()
            .expect("the log reaches back");
        deltas += 1;
        for (id, record) in delta.keys {
            view_materials.retain(|(k, _), _| *k != id);
            match record {
                Some(record) => {
                    view_keys.insert(id, record);
                }
                None => {
                    view_keys.remove(&id);
                }
            }
        }
        for m in delta.materials {
            view_materials.insert(
                (m.key_id, m.version),
                m.material
                    .expose(keyplane::SecretAccess::granted())
                    .to_vec(),
            );
        }
        for (name, alias) in delta.aliases {
            match alias {
                Some(alias) => view_aliases.insert(name, alias.target),
                None => view_aliases.remove(&name),
            };
        }
        generation = delta.generation;
        // The model: a full load at that generation.
        let full = reader.load().unwrap();
        assert_eq!(full.generation, generation);
        let full_keys: BTreeMap<_, _> = full.keys.into_iter().map(|r| (r.id, r)).collect();
        assert_eq!(
            serde_json::to_string(&view_keys).unwrap(),
            serde_json::to_string(&full_keys).unwrap(),
            "keys after step {step}"
        );
        let full_aliases: BTreeMap<_, _> = full
            .aliases
            .into_iter()
            .map(|a| (a.name, a.target))
            .collect();
        assert_eq!(view_aliases, full_aliases, "aliases after step {step}");
        let full_materials: BTreeMap<_, _> = full
            .materials
            .into_iter()
            .map(|m| {
                (
                    (m.key_id, m.version),
                    m.material
                        .expose(keyplane::SecretAccess::granted())
                        .to_vec(),
                )
            })
            .collect();
        assert!(
            view_materials == full_materials,
            "material after step {step}"
        );
    }
    assert!(deltas > 5);
    generation = reader
        .changes_since(generation)
        .unwrap()
        .unwrap()
        .generation;
    // Up to date: an empty delta; ahead of the store: None.
    let now = reader.changes_since(generation).unwrap().unwrap();
    assert!(now.keys.is_empty() && now.aliases.is_empty() && now.generation == generation);
    assert!(reader.changes_since(generation + 5).unwrap().is_none());
}

#[test]
fn a_row_replayed_from_the_past_is_refused_on_the_incremental_path() {
    let dir = tempfile::tempdir().unwrap();
    let store = init(dir.path());
    let writer = engine_on(Arc::clone(&store));
    let follower_store = open(dir.path());
    let follower = engine_on(Arc::clone(&follower_store));
    let key = new_key(&writer);
    follower.run_due_tasks().unwrap();
    let enabled = key_row(dir.path(), &key);
    let at = follower_store.generation().unwrap();
    writer.disable_key(&key).unwrap();
    // The administrator puts the Enabled row back (its own seal still holds).
    put_key_row(dir.path(), &key, &enabled);
    let e = follower_store.changes_since(at).unwrap_err();
    assert!(e.message().contains("replay detected"), "{e}");
    assert!(e.message().contains(&format!("key {key}")), "{e}");
    // The follower refuses to follow it: its control plane reports the store's error, and its
    // view keeps the key as it last confirmed it.
    let e = follower.describe_key(&key).unwrap_err();
    assert!(e.message().contains("replay detected"), "{e}");
    // The same row is refused by a full load too.
    let e = follower_store.load().unwrap_err();
    assert!(e.message().contains("replay detected"), "{e}");
}

#[test]
fn a_store_without_a_change_log_is_migrated_and_then_followed() {
    let dir = tempfile::tempdir().unwrap();
    let store = init(dir.path());
    let engine = engine_on(Arc::clone(&store));
    let key = new_key(&engine);
    drop((engine, store));
    // What a schema-3 binary made: no change log.
    sql(dir.path())
        .execute_batch("DROP TABLE change_log; PRAGMA user_version = 3;")
        .unwrap();
    let store = open(dir.path());
    assert_eq!(
        store.verify(false).unwrap().schema_version,
        keyplane_sqlite::SCHEMA_VERSION
    );
    let before = store.generation().unwrap();
    // Nothing logged before the migration: a reader from then loads everything...
    assert!(store.changes_since(before - 1).unwrap().is_none());
    let engine = engine_on(Arc::clone(&store));
    engine.disable_key(&key).unwrap();
    // ... and from the migration on, follows.
    let delta = store.changes_since(before).unwrap().unwrap();
    assert_eq!(delta.keys.len(), 1);
    assert_eq!(delta.keys[0].1.as_ref().unwrap().state, KeyState::Disabled);
}

#[test]
fn a_trimmed_or_tampered_log_falls_back_to_a_full_load() {
    let dir = tempfile::tempdir().unwrap();
    let store = init(dir.path());
    let engine = engine_on(Arc::clone(&store));
    let key = new_key(&engine);
    let at = store.generation().unwrap();
    engine.disable_key(&key).unwrap();
    engine.enable_key(&key).unwrap();
    assert!(store.changes_since(at).unwrap().is_some());
    // An edited log row: not this store's log, so the reader loads everything (which checks
    // everything) instead of trusting it.
    sql(dir.path())
        .execute(
            "UPDATE change_log SET entries = replace(entries, '\"c\":false', '\"c\":true') \
             WHERE generation = ?1",
            [at as i64 + 1],
        )
        .unwrap();
    assert!(store.changes_since(at).unwrap().is_none());
    // A deleted row (a gap): the same.
    sql(dir.path())
        .execute(
            "DELETE FROM change_log WHERE generation = ?1",
            [at as i64 + 2],
        )
        .unwrap();
    assert!(store.changes_since(at + 1).unwrap().is_none());
    // The whole store is still sound.
    assert_eq!(store.load().unwrap().keys.len(), 1);
}
