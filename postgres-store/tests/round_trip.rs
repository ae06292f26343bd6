//! Everything a store holds survives a round trip through PostgreSQL; one key reads alone;
//! the schema is versioned; the root key and the store are checked on open.

mod common;

use common::*;
use keyplane::store::{KeyStore, StoreChange};
use keyplane::{Error, KeyState};
use keyplane_postgres::{schema, PostgresKeyStore};

#[test]
fn everything_stored_loads_back_on_another_node() {
    let Some(db) = TestDb::new() else { return };
    let a = db.init();
    let k1 = key_record();
    let mut k2 = key_record();
    k2.description = "second".into();
    k2.versions.push({
        let mut v = k2.versions[0].clone();
        v.version = 2;
        v
    });
    let (m1, m2a, m2b) = (material(1), material(2), material(3));
    let secret = material(9);
    let cks = custom_key_store("cks-1");
    let g = a
        .commit(&[
            StoreChange::PutKey(&k1),
            StoreChange::PutMaterial {
                key_id: k1.id,
                version: 1,
                material: &m1,
            },
            StoreChange::PutKey(&k2),
            StoreChange::PutMaterial {
                key_id: k2.id,
                version: 1,
                material: &m2a,
            },
            StoreChange::PutMaterial {
                key_id: k2.id,
                version: 2,
                material: &m2b,
            },
            StoreChange::PutAlias(&alias("alias/one", k1.id)),
            StoreChange::PutAlias(&alias("alias/two", k2.id)),
            StoreChange::PutCustomKeyStore {
                record: &cks,
                secret: &secret,
            },
        ])
        .unwrap();
    assert_eq!(g, 1);
    let s = a
        .get_or_create_secret("import", &mut || {
            keyplane::LockedBytes::copy_from(&[7; 48], Default::default())
        })
        .unwrap();
    assert_eq!(s.expose(keyplane::SecretAccess::granted()), &[7; 48]);

    let b = db.open();
    let c = b.load().unwrap();
    assert_eq!(c.generation, 2);
    let mut keys = c.keys.clone();
    keys.sort_by_key(|k| k.id);
    let mut expected = vec![k1.clone(), k2.clone()];
    expected.sort_by_key(|k| k.id);
    assert_eq!(keys, expected);
    let mut aliases: Vec<_> = c
        .aliases
        .iter()
        .map(|a| (a.name.clone(), a.target))
        .collect();
    aliases.sort();
    assert_eq!(
        aliases,
        vec![("alias/one".into(), k1.id), ("alias/two".into(), k2.id)]
    );
    let mut mats: Vec<_> = c
        .materials
        .iter()
        .map(|m| {
            (
                m.key_id,
                m.version,
                m.material
                    .expose(keyplane::SecretAccess::granted())
                    .to_vec(),
            )
        })
        .collect();
    mats.sort();
    let mut want = vec![
        (k1.id, 1, vec![1; 32]),
        (k2.id, 1, vec![2; 32]),
        (k2.id, 2, vec![3; 32]),
    ];
    want.sort();
    assert_eq!(mats, want);
    assert_eq!(c.custom_key_stores.len(), 1);
    assert_eq!(c.custom_key_stores[0].record, cks);
    assert_eq!(
        c.custom_key_stores[0]
            .secret
            .expose(keyplane::SecretAccess::granted()),
        &[9; 32]
    );
    // The secret another node made is the one this node gets, not a new one.
    let again = b
        .get_or_create_secret("import", &mut || panic!("must not create a second one"))
        .unwrap();
    assert_eq!(again.expose(keyplane::SecretAccess::granted()), &[7; 48]);

    assert_eq!(b.load_key(&k2.id).unwrap().unwrap(), k2);
    assert!(b.load_key(&uuid::Uuid::new_v4()).unwrap().is_none());

    // Deleting a key takes its aliases and material with it.
    b.commit(&[StoreChange::DeleteKey(k1.id)]).unwrap();
    let c = a.load().unwrap();
    assert_eq!(c.keys.len(), 1);
    assert_eq!(c.aliases.len(), 1);
    assert!(c.materials.iter().all(|m| m.key_id == k2.id));
    assert!(a.verify(false).unwrap().is_pristine());

    // Nothing is in clear in the database.
    let mut admin = db.admin();
    for row in admin
        .query("SELECT wrapped FROM keyplane_material", &[])
        .unwrap()
    {
        let wrapped: Vec<u8> = row.get(0);
        assert!(!wrapped.windows(32).any(|w| w == [2; 32] || w == [3; 32]));
    }
}

/// A key in an external key store keeps keyplane-held material (the inner layer of its double
/// encryption); a key in an HSM key store has none here. Both load back, and only the external
/// key's material with them: dropping it made external keys Unavailable after a reload.
#[test]
fn an_external_key_store_key_keeps_its_material_and_an_hsm_key_has_none() {
    let Some(db) = TestDb::new() else { return };
    let store = db.init();
    let mut external = key_record();
    external.origin = keyplane::Origin::ExternalKeyStore;
    external.custom_key_store = Some(keyplane::key::CustomKeyStoreKey {
        store_id: "cks-xks".into(),
        backing_key_id: "external-key-1".into(),
    });
    let mut hsm = key_record();
    hsm.origin = keyplane::Origin::AwsCloudhsm;
    hsm.custom_key_store = Some(keyplane::key::CustomKeyStoreKey {
        store_id: "cks-hsm".into(),
        backing_key_id: "00112233445566778899aabbccddeeff".into(),
    });
    let inner = material(4);
    store
        .commit(&[
            StoreChange::PutKey(&external),
            StoreChange::PutMaterial {
                key_id: external.id,
                version: 1,
                material: &inner,
            },
            StoreChange::PutKey(&hsm),
        ])
        .unwrap();
    let loaded = db.open().load().unwrap();
    assert_eq!(loaded.keys.len(), 2);
    let materials: Vec<_> = loaded
        .materials
        .iter()
        .map(|m| {
            (
                m.key_id,
                m.version,
                m.material
                    .expose(keyplane::SecretAccess::granted())
                    .to_vec(),
            )
        })
        .collect();
    assert_eq!(materials, [(external.id, 1, vec![4; 32])]);
}

#[test]
fn a_disabled_key_reads_back_disabled_and_one_key_reads_alone() {
    let Some(db) = TestDb::new() else { return };
    let store = db.init();
    let k = key_record();
    store.commit(&[StoreChange::PutKey(&k)]).unwrap();
    let disabled = with_state(&k, KeyState::Disabled);
    store.commit(&[StoreChange::PutKey(&disabled)]).unwrap();
    assert_eq!(
        store.load_key(&k.id).unwrap().unwrap().state,
        KeyState::Disabled
    );
    assert_eq!(store.generation().unwrap(), 2);
}

#[test]
fn init_twice_a_wrong_root_key_and_a_newer_schema_are_refused() {
    let Some(db) = TestDb::new() else { return };
    let _store = db.init();
    let (e, text) = err_text(PostgresKeyStore::init(&db.url, db.provider(), db.options()));
    assert!(matches!(e, Error::AlreadyExists(_)), "{text}");

    let other = tempfile::tempdir().unwrap();
    let wrong: std::sync::Arc<dyn keyplane_sqlite::root_key::RootKeyProvider> =
        std::sync::Arc::new(keyplane_sqlite::root_key::KeyFileProvider::new(
            other.path().join("root.key"),
            keyplane::LockPolicy::Require,
        ));
    wrong.create().unwrap();
    let (e, text) = err_text(PostgresKeyStore::open(&db.url, wrong, db.options()));
    assert!(matches!(e, Error::AccessDenied(_)), "{text}");

    db.admin()
        .execute(
            "INSERT INTO keyplane_schema (version) VALUES ($1)",
            &[&(schema::SCHEMA_VERSION + 1)],
        )
        .unwrap();
    let (e, text) = err_text(PostgresKeyStore::open(&db.url, db.provider(), db.options()));
    assert!(matches!(e, Error::Store(_)), "{text}");
    assert!(text.contains("newer than this keyplane reads"), "{text}");
}

#[test]
fn a_database_without_a_store_is_named_as_such() {
    let Some(db) = TestDb::new() else { return };
    let (e, text) = err_text(PostgresKeyStore::open(&db.url, db.provider(), db.options()));
    assert!(matches!(e, Error::NotFound(_)), "{text}");
}
