//! A control-plane change costs O(log n) in the number of keys, checked without timing: after a
//! change, the new data-plane snapshot shares every untouched entry with the previous one (an O(n)
//! copy would hold each entry twice while the previous snapshot lives), and the change builds the
//! data-plane entry of the key it changed and nothing else.

use std::sync::Arc;

use super::{
    CreateGrantRequest, CreateKeyRequest, ALIAS_MAP_BUILDS, FOLLOWED_KEYS, KEY_ENTRY_BUILDS,
};
use crate::dataplane::keyring::Keyring;
use crate::engine::Engine;
use crate::key::{GrantOperation, Tag};
use crate::locked_memory::LockPolicy;

/// Keys in the engine: far more than the entries one changed path of the trie holds.
const KEYS: usize = 1500;
/// Entries a change may copy: the nodes on the path to the changed entry (a 32-bit hash at 5 bits
/// a level: at most 7 nodes) of 32 slots each.
const PATH_ENTRIES: usize = 7 * 32;

fn engine_with_keys(n: usize) -> (Engine, Vec<String>) {
    let engine = Engine::builder()
        .lock_policy(LockPolicy::Warn)
        .max_keys(n + 10)
        .build()
        .unwrap();
    let ids = (0..n)
        .map(|_| {
            engine
                .create_key(CreateKeyRequest::default())
                .unwrap()
                .key_id
        })
        .collect();
    (engine, ids)
}

fn snapshot(engine: &Engine) -> Arc<Keyring> {
    engine.inner.data.keyring.load_full()
}

fn entry_builds() -> usize {
    KEY_ENTRY_BUILDS.with(std::cell::Cell::get)
}

fn alias_map_builds() -> usize {
    ALIAS_MAP_BUILDS.with(std::cell::Cell::get)
}

/// Runs `change` while the snapshot from before it is held, and checks that it rebuilt at most
/// `rebuilt` data-plane entries, rebuilt no alias map, and left every entry of `before` that it did
/// not touch shared (the same `Arc`, held once: by a trie node both snapshots share).
fn assert_shares_untouched(engine: &Engine, rebuilt: usize, change: impl FnOnce()) {
    let before = snapshot(engine);
    let (entries, alias_maps) = (entry_builds(), alias_map_builds());
    change();
    assert!(
        entry_builds() - entries <= rebuilt,
        "a change rebuilt {} data-plane entries",
        entry_builds() - entries
    );
    assert_eq!(
        alias_map_builds(),
        alias_maps,
        "a change rebuilt the alias map"
    );
    let after = snapshot(engine);
    assert!(
        !Arc::ptr_eq(&before, &after),
        "the change was not published"
    );
    let mut held_twice = 0;
    let mut untouched = 0;
    for (id, entry) in before.keys.iter() {
        let Some(now) = after.keys.get(id) else {
            continue;
        };
        if !Arc::ptr_eq(entry, now) {
            continue; // the changed key: a new entry
        }
        untouched += 1;
        if Arc::strong_count(entry) > 1 {
            held_twice += 1;
        }
    }
    assert!(untouched >= before.keys.len() - rebuilt);
    assert!(
        held_twice <= PATH_ENTRIES,
        "{held_twice} of {untouched} untouched entries are held by both snapshots: the change \
         copied the map instead of the path to its entry"
    );
}

#[test]
fn control_plane_changes_share_every_untouched_entry_of_the_snapshot() {
    let (engine, ids) = engine_with_keys(KEYS);
    assert_shares_untouched(&engine, 1, || {
        engine.create_key(CreateKeyRequest::default()).unwrap();
    });
    assert_shares_untouched(&engine, 1, || engine.disable_key(&ids[10]).unwrap());
    assert_shares_untouched(&engine, 1, || {
        engine
            .tag_resource(
                &ids[11],
                vec![Tag {
                    tag_key: "team".into(),
                    tag_value: "a".into(),
                }],
            )
            .unwrap();
    });
    assert_shares_untouched(&engine, 1, || {
        engine.schedule_key_deletion(&ids[12], Some(7)).unwrap();
    });
    assert_shares_untouched(&engine, 1, || {
        engine
            .create_grant(CreateGrantRequest {
                key_id: ids[13].clone(),
                grantee_principal: "arn:aws:iam::111122223333:role/app".into(),
                retiring_principal: None,
                operations: vec![GrantOperation::Encrypt],
                constraints: None,
                name: None,
            })
            .unwrap();
    });
    // The changed keys are published: the disabled key refuses, the others still encrypt.
    let live = snapshot(&engine);
    let disabled = live.keys.get(&ids[10].parse().unwrap()).unwrap();
    assert_eq!(disabled.state, crate::key::KeyState::Disabled);
    let pending = live.keys.get(&ids[12].parse().unwrap()).unwrap();
    assert_eq!(pending.state, crate::key::KeyState::PendingDeletion);
}

#[test]
fn alias_changes_update_the_alias_map_in_place() {
    let (engine, ids) = engine_with_keys(300);
    for (i, id) in ids.iter().enumerate() {
        engine.create_alias(&format!("alias/k{i}"), id).unwrap();
    }
    let before = snapshot(&engine);
    let (entries, alias_maps) = (entry_builds(), alias_map_builds());
    engine.create_alias("alias/new", &ids[0]).unwrap();
    engine.update_alias("alias/k1", &ids[2]).unwrap();
    engine.delete_alias("alias/k3").unwrap();
    assert_eq!(
        alias_map_builds(),
        alias_maps,
        "an alias change rebuilt the alias map"
    );
    assert_eq!(
        entry_builds(),
        entries,
        "an alias change rebuilt key entries"
    );
    let after = snapshot(&engine);
    let id = |i: usize| ids[i].parse::<uuid::Uuid>().unwrap();
    assert_eq!(after.aliases.get("alias/new"), Some(&id(0)));
    assert_eq!(after.aliases.get("alias/k1"), Some(&id(2)));
    assert_eq!(after.aliases.get("alias/k3"), None);
    assert_eq!(after.aliases.get("alias/k4"), Some(&id(4)));
    assert_eq!(after.aliases.len(), 300);
    // The previous snapshot is unchanged: data-plane calls that loaded it see one state.
    assert_eq!(before.aliases.get("alias/new"), None);
    assert_eq!(before.aliases.get("alias/k1"), Some(&id(1)));
    assert_eq!(before.aliases.get("alias/k3"), Some(&id(3)));
}

fn followed_keys() -> usize {
    FOLLOWED_KEYS.with(std::cell::Cell::get)
}

/// Two engines on one store with `n` keys made on the first.
fn followers_with_keys(n: usize) -> (Engine, Engine, Vec<String>) {
    let store: Arc<dyn crate::store::KeyStore> =
        Arc::new(crate::store::MemoryKeyStore::new(LockPolicy::Warn));
    let build = || {
        Engine::builder()
            .lock_policy(LockPolicy::Warn)
            .max_keys(n + 10)
            .store(Arc::clone(&store))
            .build()
            .unwrap()
    };
    let (a, b) = (build(), build());
    let ids: Vec<String> = (0..n)
        .map(|_| a.create_key(CreateKeyRequest::default()).unwrap().key_id)
        .collect();
    b.run_due_tasks().unwrap();
    (a, b, ids)
}

/// What following one change made elsewhere cost engine `a`: keys applied from the delta,
/// data-plane entries rebuilt, alias maps rebuilt.
fn follow_cost(a: &Engine, b: &Engine, key: &str) -> (usize, usize, usize) {
    b.disable_key(key).unwrap();
    let (followed, entries, alias_maps) = (followed_keys(), entry_builds(), alias_map_builds());
    a.run_due_tasks().unwrap();
    (
        followed_keys() - followed,
        entry_builds() - entries,
        alias_map_builds() - alias_maps,
    )
}

#[test]
fn following_one_change_among_many_keys_costs_what_it_costs_among_ten() {
    let (small_a, small_b, small_ids) = followers_with_keys(10);
    let (big_a, big_b, big_ids) = followers_with_keys(KEYS);
    let small = follow_cost(&small_a, &small_b, &small_ids[3]);
    let big = follow_cost(&big_a, &big_b, &big_ids[3]);
    assert_eq!(
        small,
        (1, 1, 0),
        "10 keys: (keys followed, entries built, alias maps)"
    );
    assert_eq!(big, small, "{KEYS} keys cost more to follow than 10");
    // The change reached the follower's data plane, sharing every untouched entry.
    assert_shares_untouched(&big_a, 2, || {
        big_b.enable_key(&big_ids[3]).unwrap();
        big_a.run_due_tasks().unwrap();
    });
    let live = snapshot(&big_a);
    let entry = live.keys.get(&big_ids[3].parse().unwrap()).unwrap();
    assert_eq!(entry.state, crate::key::KeyState::Enabled);
    big_b.disable_key(&big_ids[4]).unwrap();
    big_a.run_due_tasks().unwrap();
    let live = snapshot(&big_a);
    let entry = live.keys.get(&big_ids[4].parse().unwrap()).unwrap();
    assert_eq!(entry.state, crate::key::KeyState::Disabled);
    // An alias made elsewhere is followed into the alias map in place.
    let maps = alias_map_builds();
    big_b.create_alias("alias/followed", &big_ids[5]).unwrap();
    big_a.run_due_tasks().unwrap();
    assert_eq!(
        alias_map_builds(),
        maps,
        "following an alias rebuilt the alias map"
    );
    assert_eq!(
        snapshot(&big_a).aliases.get("alias/followed"),
        Some(&big_ids[5].parse().unwrap())
    );
}
