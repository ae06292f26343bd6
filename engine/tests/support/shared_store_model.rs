//! Model-based checks of several engines sharing one key store (issue 19): random control-plane
//! operations from every engine at once, on threads, then every engine's view must equal the
//! store's and a reference model's.
//!
//! Shared by `engine/tests/shared_store.rs` (engines on one `Arc<MemoryKeyStore>`) and
//! `sqlite-store/tests/shared_store.rs` (engines on one SQLite directory): one source.
//!
//! The reference model is the serial composition of per-thread models: each thread owns its
//! keys, its aliases (`alias/t<thread>-<n>`), its tags (`t<thread>-<n>`) and its grants (named
//! `t<thread>-g<n>`) on one key every thread changes at once (the contended record), so the
//! outcome of every operation is decided by its own thread's history whatever order the engines'
//! commits took, while every commit races every other one for the store's generation. An
//! operation that answers ConflictException (the retry limit) must have changed nothing; every
//! other must succeed.

#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use keyplane::store::KeyStore;
use keyplane::{
    CreateGrantRequest, CreateKeyRequest, EncryptRequest, Engine, ErrorKind, GrantOperation,
    KeyState, Tag,
};

/// What every engine must agree on at the end.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct View {
    /// Every key, with its state and description.
    pub keys: BTreeMap<String, (KeyState, String)>,
    /// Every customer alias, with its target key id.
    pub aliases: BTreeMap<String, String>,
    /// The tags of the contended key.
    pub shared_tags: BTreeMap<String, String>,
    /// The names of the grants on the contended key.
    pub shared_grants: BTreeSet<String>,
}

/// One thread's reference model of what it owns.
#[derive(Default)]
struct Own {
    /// Key id -> (state, description, rotations).
    keys: BTreeMap<String, (KeyState, String)>,
    aliases: BTreeMap<String, String>,
    tags: BTreeMap<String, String>,
    /// Grant name -> grant id.
    grants: BTreeMap<String, String>,
}

/// Counts printed by the tests.
#[derive(Debug, Default, Clone, Copy)]
pub struct Counts {
    pub operations: usize,
    pub conflicts: usize,
}

/// A small deterministic generator (xorshift), seeded per thread.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

const GRANTEE: &str = "arn:aws:iam::111122223333:role/model-grantee";

fn key_request(description: String) -> CreateKeyRequest {
    CreateKeyRequest {
        description: Some(description),
        ..CreateKeyRequest::default()
    }
}

/// Runs `steps` random operations on each of `engines` at once (one thread per engine), all on
/// one store, against the contended key `shared` (made beforehand); returns the reference view
/// and the counts.
pub fn run(engines: &[Engine], shared: &str, steps: usize, seed: u64) -> (View, Counts) {
    let outcomes: Vec<(Own, Counts)> = std::thread::scope(|scope| {
        let handles: Vec<_> = engines
            .iter()
            .enumerate()
            .map(|(t, engine)| {
                scope.spawn(move || thread_run(engine, t, shared, steps, seed ^ (t as u64 + 1)))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut view = View::default();
    let mut counts = Counts::default();
    let first = engines[0].describe_key(shared).unwrap();
    view.keys
        .insert(first.key_id.clone(), (first.key_state, first.description));
    for (own, c) in outcomes {
        counts.operations += c.operations;
        counts.conflicts += c.conflicts;
        view.keys.extend(own.keys);
        view.aliases.extend(own.aliases);
        view.shared_tags.extend(own.tags);
        view.shared_grants.extend(own.grants.into_keys());
    }
    (view, counts)
}

/// Asserts `result` is Ok, or ConflictException (counted; the model is then left unchanged).
/// Returns whether it succeeded.
fn ok_or_conflict<T: std::fmt::Debug>(
    result: keyplane::Result<T>,
    counts: &mut Counts,
    what: &str,
) -> Option<T> {
    counts.operations += 1;
    match result {
        Ok(v) => Some(v),
        Err(e) if e.kind() == ErrorKind::Conflict => {
            counts.conflicts += 1;
            None
        }
        Err(e) => panic!("{what}: unexpected error {e:?}"),
    }
}

fn thread_run(engine: &Engine, t: usize, shared: &str, steps: usize, seed: u64) -> (Own, Counts) {
    let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let mut own = Own::default();
    let mut counts = Counts::default();
    let mut serial = 0usize;
    for _ in 0..steps {
        serial += 1;
        let live: Vec<String> = own
            .keys
            .iter()
            .filter(|(_, (s, _))| *s != KeyState::PendingDeletion)
            .map(|(k, _)| k.clone())
            .collect();
        let pick = |rng: &mut Rng| -> Option<String> {
            (!live.is_empty()).then(|| live[rng.below(live.len())].clone())
        };
        match rng.below(11) {
            0 => {
                if own.keys.len() < 4 {
                    let description = format!("t{t}-key{serial}");
                    if let Some(m) = ok_or_conflict(
                        engine.create_key(key_request(description.clone())),
                        &mut counts,
                        "CreateKey",
                    ) {
                        own.keys.insert(m.key_id, (KeyState::Enabled, description));
                    }
                }
            }
            1 | 2 => {
                if let Some(id) = pick(&mut rng) {
                    let (state, _) = own.keys[&id].clone();
                    let (result, to) = if state == KeyState::Enabled {
                        (engine.disable_key(&id), KeyState::Disabled)
                    } else {
                        (engine.enable_key(&id), KeyState::Enabled)
                    };
                    if ok_or_conflict(result, &mut counts, "Enable/DisableKey").is_some() {
                        own.keys.get_mut(&id).unwrap().0 = to;
                    }
                }
            }
            3 => {
                if let Some(id) = pick(&mut rng) {
                    let name = format!("alias/t{t}-{}", rng.below(3));
                    let result = if own.aliases.contains_key(&name) {
                        engine.update_alias(&name, &id)
                    } else {
                        engine.create_alias(&name, &id)
                    };
                    if ok_or_conflict(result, &mut counts, "Create/UpdateAlias").is_some() {
                        own.aliases.insert(name, id);
                    }
                }
            }
            4 => {
                if let Some(name) = own.aliases.keys().next().cloned() {
                    if ok_or_conflict(engine.delete_alias(&name), &mut counts, "DeleteAlias")
                        .is_some()
                    {
                        own.aliases.remove(&name);
                    }
                }
            }
            5 | 6 => {
                let key = format!("t{t}-{}", rng.below(4));
                if own.tags.contains_key(&key) && rng.below(2) == 0 {
                    if ok_or_conflict(
                        engine.untag_resource(shared, &[key.as_str()]),
                        &mut counts,
                        "UntagResource",
                    )
                    .is_some()
                    {
                        own.tags.remove(&key);
                    }
                } else {
                    let value = format!("v{serial}");
                    let tag = Tag {
                        tag_key: key.clone(),
                        tag_value: value.clone(),
                    };
                    if ok_or_conflict(
                        engine.tag_resource(shared, vec![tag]),
                        &mut counts,
                        "TagResource",
                    )
                    .is_some()
                    {
                        own.tags.insert(key, value);
                    }
                }
            }
            7 => {
                if own.grants.len() >= 2 {
                    let name = own.grants.keys().next().cloned().unwrap();
                    let id = own.grants[&name].clone();
                    if ok_or_conflict(engine.revoke_grant(shared, &id), &mut counts, "RevokeGrant")
                        .is_some()
                    {
                        own.grants.remove(&name);
                    }
                } else {
                    let name = format!("t{t}-g{serial}");
                    if let Some(made) = ok_or_conflict(
                        engine.create_grant(CreateGrantRequest {
                            key_id: shared.to_owned(),
                            grantee_principal: GRANTEE.to_owned(),
                            retiring_principal: None,
                            operations: vec![GrantOperation::Encrypt],
                            constraints: None,
                            name: Some(name.clone()),
                        }),
                        &mut counts,
                        "CreateGrant",
                    ) {
                        own.grants.insert(name, made.grant_id);
                    }
                }
            }
            8 => {
                if let Some(id) = pick(&mut rng) {
                    let description = format!("t{t}-described{serial}");
                    if ok_or_conflict(
                        engine.update_key_description(&id, &description),
                        &mut counts,
                        "UpdateKeyDescription",
                    )
                    .is_some()
                    {
                        own.keys.get_mut(&id).unwrap().1 = description;
                    }
                }
            }
            9 => {
                if let Some(id) = pick(&mut rng) {
                    if own.keys[&id].0 == KeyState::Enabled {
                        ok_or_conflict(
                            engine.rotate_key_on_demand(&id),
                            &mut counts,
                            "RotateKeyOnDemand",
                        );
                    } else {
                        let policy = engine.get_key_policy(&id, None).unwrap();
                        ok_or_conflict(
                            engine.put_key_policy(&id, &policy, None, false),
                            &mut counts,
                            "PutKeyPolicy",
                        );
                    }
                }
            }
            _ => {
                if live.len() >= 3 {
                    let id = pick(&mut rng).unwrap();
                    if ok_or_conflict(
                        engine.schedule_key_deletion(&id, Some(7)),
                        &mut counts,
                        "ScheduleKeyDeletion",
                    )
                    .is_some()
                    {
                        own.keys.get_mut(&id).unwrap().0 = KeyState::PendingDeletion;
                    }
                }
            }
        }
    }
    (own, counts)
}

/// What `engine` shows through ListKeys/DescribeKey/ListAliases/ListResourceTags/ListGrants.
pub fn engine_view(engine: &Engine, shared: &str) -> View {
    let mut view = View::default();
    let mut marker: Option<String> = None;
    loop {
        let page = engine.list_keys(Some(1000), marker.as_deref()).unwrap();
        for entry in page.items {
            let m = engine.describe_key(&entry.key_id).unwrap();
            view.keys.insert(m.key_id, (m.key_state, m.description));
        }
        if !page.truncated {
            break;
        }
        marker = page.next_marker;
    }
    let mut marker: Option<String> = None;
    loop {
        let page = engine
            .list_aliases(None, Some(100), marker.as_deref())
            .unwrap();
        for alias in page.items {
            if alias.alias_name.starts_with("alias/aws/") {
                continue;
            }
            if let Some(target) = alias.target_key_id {
                view.aliases.insert(alias.alias_name, target);
            }
        }
        if !page.truncated {
            break;
        }
        marker = page.next_marker;
    }
    let tags = engine.list_resource_tags(shared, Some(50), None).unwrap();
    assert!(!tags.truncated);
    view.shared_tags = tags
        .items
        .into_iter()
        .map(|t| (t.tag_key, t.tag_value))
        .collect();
    let grants = engine
        .list_grants(shared, None, None, Some(100), None)
        .unwrap();
    assert!(!grants.truncated);
    view.shared_grants = grants.items.into_iter().filter_map(|g| g.name).collect();
    view
}

/// What the store itself holds.
pub fn store_view(store: &dyn KeyStore, shared: &str) -> View {
    let contents = store.load().unwrap();
    let mut view = View::default();
    for record in &contents.keys {
        view.keys.insert(
            record.id.to_string(),
            (record.state, record.description.clone()),
        );
        if record.id.to_string() == shared {
            view.shared_tags = record
                .tags
                .iter()
                .map(|t| (t.tag_key.clone(), t.tag_value.clone()))
                .collect();
            view.shared_grants = record
                .grants
                .iter()
                .filter_map(|g| g.name.clone())
                .collect();
        }
    }
    for alias in &contents.aliases {
        if !alias.name.starts_with("alias/aws/") {
            view.aliases
                .insert(alias.name.clone(), alias.target.to_string());
        }
    }
    view
}

/// Runs the model on `engines` (all on `store`) and checks every view.
pub fn check(engines: &[Engine], store: &Arc<dyn KeyStore>, steps: usize, seed: u64) -> Counts {
    let shared = engines[0]
        .create_key(key_request("contended".into()))
        .unwrap()
        .key_id;
    let (model, counts) = run(engines, &shared, steps, seed);
    let stored = store_view(store.as_ref(), &shared);
    assert_eq!(stored, model, "the store differs from the reference model");
    for (i, engine) in engines.iter().enumerate() {
        engine.run_due_tasks().unwrap();
        let seen = engine_view(engine, &shared);
        assert_eq!(
            seen, model,
            "engine {i}'s view differs from the reference model"
        );
        // And its data plane agrees: every Enabled key encrypts, every other one is refused.
        for (id, (state, _)) in &model.keys {
            let result = engine.encrypt(&EncryptRequest::new(id, b"model"));
            assert_eq!(
                result.is_ok(),
                *state == KeyState::Enabled,
                "engine {i}, key {id} ({state:?}): {result:?}"
            );
        }
    }
    counts
}
