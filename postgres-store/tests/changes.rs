//! `changes_since` gives exactly what changed: a reader that applies deltas keeps the same view
//! as a full load and as a reference model, over random change sequences; a log trimmed past the
//! reader's generation answers `None`.

mod common;

use std::collections::BTreeMap;

use common::*;
use keyplane::key::KeyRecord;
use keyplane::store::{KeyStore, StoreChange, StoreContents, StoreDelta};
use keyplane::KeyState;
use proptest::prelude::*;
use uuid::Uuid;

/// What a store holds, comparably.
#[derive(Debug, Default, Clone, PartialEq)]
struct View {
    keys: BTreeMap<Uuid, KeyRecord>,
    materials: BTreeMap<(Uuid, u32), Vec<u8>>,
    aliases: BTreeMap<String, Uuid>,
    custom_key_stores: BTreeMap<String, Vec<u8>>,
}

impl View {
    fn from_contents(c: &StoreContents) -> Self {
        View {
            keys: c.keys.iter().map(|k| (k.id, k.clone())).collect(),
            materials: c
                .materials
                .iter()
                .map(|m| {
                    (
                        (m.key_id, m.version),
                        m.material
                            .expose(keyplane::SecretAccess::granted())
                            .to_vec(),
                    )
                })
                .collect(),
            aliases: c
                .aliases
                .iter()
                .map(|a| (a.name.clone(), a.target))
                .collect(),
            custom_key_stores: c
                .custom_key_stores
                .iter()
                .map(|s| {
                    (
                        s.record.id.clone(),
                        s.secret.expose(keyplane::SecretAccess::granted()).to_vec(),
                    )
                })
                .collect(),
        }
    }

    fn apply(&mut self, d: &StoreDelta) {
        for (id, record) in &d.keys {
            self.materials.retain(|(k, _), _| k != id);
            match record {
                Some(r) => {
                    self.keys.insert(*id, r.clone());
                }
                None => {
                    self.keys.remove(id);
                }
            }
        }
        for m in &d.materials {
            self.materials.insert(
                (m.key_id, m.version),
                m.material
                    .expose(keyplane::SecretAccess::granted())
                    .to_vec(),
            );
        }
        for (name, a) in &d.aliases {
            match a {
                Some(a) => {
                    self.aliases.insert(name.clone(), a.target);
                }
                None => {
                    self.aliases.remove(name);
                }
            }
        }
        if let Some(all) = &d.custom_key_stores {
            self.custom_key_stores = all
                .iter()
                .map(|s| {
                    (
                        s.record.id.clone(),
                        s.secret.expose(keyplane::SecretAccess::granted()).to_vec(),
                    )
                })
                .collect();
        }
    }
}

#[derive(Debug, Clone)]
enum Op {
    Create(u8),
    Describe(usize, String),
    Disable(usize),
    Rotate(usize, u8),
    Delete(usize),
    Alias(u8, usize),
    Unalias(u8),
    PutCks(u8, u8),
    DeleteCks(u8),
    Nothing,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => any::<u8>().prop_map(Op::Create),
        1 => (any::<usize>(), "[a-z]{0,6}").prop_map(|(i, s)| Op::Describe(i, s)),
        1 => any::<usize>().prop_map(Op::Disable),
        1 => (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Op::Rotate(i, b)),
        1 => any::<usize>().prop_map(Op::Delete),
        2 => (0u8..4, any::<usize>()).prop_map(|(n, i)| Op::Alias(n, i)),
        1 => (0u8..4).prop_map(Op::Unalias),
        1 => (0u8..3, any::<u8>()).prop_map(|(n, b)| Op::PutCks(n, b)),
        1 => (0u8..3).prop_map(Op::DeleteCks),
        1 => Just(Op::Nothing),
    ]
}

/// Applies `op` to the store and the model.
fn run(store: &dyn KeyStore, model: &mut View, op: &Op) {
    let ids: Vec<Uuid> = model.keys.keys().copied().collect();
    let pick = |i: usize| (!ids.is_empty()).then(|| ids[i % ids.len()]);
    match op {
        Op::Create(b) => {
            let k = create_key(store, *b);
            model.materials.insert((k.id, 1), vec![*b; 32]);
            model.keys.insert(k.id, k);
        }
        Op::Describe(i, s) => {
            let Some(id) = pick(*i) else { return };
            let mut k = model.keys[&id].clone();
            k.description = s.clone();
            store.commit(&[StoreChange::PutKey(&k)]).unwrap();
            model.keys.insert(id, k);
        }
        Op::Disable(i) => {
            let Some(id) = pick(*i) else { return };
            let k = with_state(&model.keys[&id], KeyState::Disabled);
            store.commit(&[StoreChange::PutKey(&k)]).unwrap();
            model.keys.insert(id, k);
        }
        Op::Rotate(i, b) => {
            let Some(id) = pick(*i) else { return };
            let mut k = model.keys[&id].clone();
            let mut v = k.versions[0].clone();
            v.version = k.versions.len() as u32 + 1;
            let version = v.version;
            k.versions.push(v);
            let m = material(*b);
            store
                .commit(&[
                    StoreChange::PutKey(&k),
                    StoreChange::PutMaterial {
                        key_id: id,
                        version,
                        material: &m,
                    },
                ])
                .unwrap();
            model.materials.insert((id, version), vec![*b; 32]);
            model.keys.insert(id, k);
        }
        Op::Delete(i) => {
            let Some(id) = pick(*i) else { return };
            store.commit(&[StoreChange::DeleteKey(id)]).unwrap();
            model.keys.remove(&id);
            model.materials.retain(|(k, _), _| *k != id);
            model.aliases.retain(|_, t| *t != id);
        }
        Op::Alias(n, i) => {
            let Some(id) = pick(*i) else { return };
            let name = format!("alias/a{n}");
            store
                .commit(&[StoreChange::PutAlias(&alias(&name, id))])
                .unwrap();
            model.aliases.insert(name, id);
        }
        Op::Unalias(n) => {
            let name = format!("alias/a{n}");
            store.commit(&[StoreChange::DeleteAlias(&name)]).unwrap();
            model.aliases.remove(&name);
        }
        Op::PutCks(n, b) => {
            let id = format!("cks-{n}");
            let secret = material(*b);
            store
                .commit(&[StoreChange::PutCustomKeyStore {
                    record: &custom_key_store(&id),
                    secret: &secret,
                }])
                .unwrap();
            model.custom_key_stores.insert(id, vec![*b; 32]);
        }
        Op::DeleteCks(n) => {
            let id = format!("cks-{n}");
            store
                .commit(&[StoreChange::DeleteCustomKeyStore(&id)])
                .unwrap();
            model.custom_key_stores.remove(&id);
        }
        Op::Nothing => {
            store.commit(&[]).unwrap();
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

    #[test]
    fn a_reader_following_deltas_sees_what_a_full_load_and_the_model_see(
        ops in proptest::collection::vec(op(), 1..30),
        read_every in 1usize..4,
    ) {
        let Some(db) = TestDb::new() else { return Ok(()) };
        let writer = db.init();
        let reader = db.open();
        let mut model = View::default();
        let mut view = View::from_contents(&reader.load().unwrap());
        let mut seen = 0u64;
        for (n, op) in ops.iter().enumerate() {
            run(writer.as_ref(), &mut model, op);
            if n % read_every == 0 || n + 1 == ops.len() {
                let delta = reader.changes_since(seen).unwrap().expect("the log reaches back");
                prop_assert_eq!(delta.generation, writer.generation().unwrap());
                view.apply(&delta);
                seen = delta.generation;
                prop_assert_eq!(&view, &model);
            }
        }
        prop_assert_eq!(&View::from_contents(&reader.load().unwrap()), &model);
        // Only what changed comes back: nothing, after catching up.
        let empty = reader.changes_since(seen).unwrap().unwrap();
        prop_assert!(empty.keys.is_empty() && empty.aliases.is_empty());
        prop_assert!(empty.custom_key_stores.is_none());
        prop_assert!(reader.verify(false).unwrap().is_pristine());
    }
}

#[test]
fn one_change_among_many_comes_back_alone() {
    let Some(db) = TestDb::new() else { return };
    let store = db.init();
    let keys: Vec<KeyRecord> = (0..50).map(|_| key_record()).collect();
    let puts: Vec<StoreChange> = keys.iter().map(StoreChange::PutKey).collect();
    let g = store.commit(&puts).unwrap();
    let changed = with_state(&keys[17], KeyState::Disabled);
    store.commit(&[StoreChange::PutKey(&changed)]).unwrap();
    let delta = store.changes_since(g).unwrap().unwrap();
    assert_eq!(delta.keys.len(), 1);
    assert_eq!(delta.keys[0].0, changed.id);
    assert_eq!(delta.keys[0].1.as_ref().unwrap().state, KeyState::Disabled);
    assert!(delta.aliases.is_empty());
}

#[test]
fn a_log_trimmed_past_the_reader_answers_none_and_ahead_too() {
    let Some(db) = TestDb::new() else { return };
    let store = db.init();
    for b in 0..5 {
        create_key(store.as_ref(), b);
    }
    store.trim_change_log(3).unwrap();
    assert!(store.changes_since(2).unwrap().is_none(), "trimmed past 2");
    assert!(store.changes_since(0).unwrap().is_none());
    let d = store.changes_since(3).unwrap().expect("3 is still covered");
    assert_eq!((d.generation, d.keys.len()), (5, 2));
    assert!(
        store.changes_since(6).unwrap().is_none(),
        "ahead of the store"
    );
    // A key written before the trim still reads alone; the full load is whole.
    assert_eq!(store.load().unwrap().keys.len(), 5);
    assert!(store.verify(false).unwrap().is_pristine());
}
