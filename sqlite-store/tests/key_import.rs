//! Imported key material on the durable store: import parameters fetched before a restart still
//! import after it (the import secret is a store secret, sealed under the root key); imported
//! material survives a restart; expiry and DeleteImportedKeyMaterial remove the material's copies
//! and leave a store that verifies; re-import after a restart.

mod common;

use std::sync::Arc;

use aws_lc_rs::rsa::{OaepPublicEncryptingKey, PublicEncryptingKey, OAEP_SHA256_MGF1SHA256};
use common::*;
use keyplane::{
    CreateKeyRequest, Engine, ExpirationModel, ImportKeyMaterialRequest, KeyState, ManualClock,
    Origin, Timestamp, WrappingAlgorithm, WrappingKeySpec,
};
use keyplane_sqlite::SqliteKeyStore;

const DAY_MS: i64 = 24 * 60 * 60 * 1000;

fn oaep_wrap(public_der: &[u8], material: &[u8]) -> Vec<u8> {
    let key =
        OaepPublicEncryptingKey::new(PublicEncryptingKey::from_der(public_der).unwrap()).unwrap();
    let mut out = vec![0u8; key.ciphertext_size()];
    let n = key
        .encrypt(&OAEP_SHA256_MGF1SHA256, material, &mut out, None)
        .unwrap()
        .len();
    out.truncate(n);
    out
}

fn engine_at(store: &Arc<SqliteKeyStore>, clock: &Arc<ManualClock>) -> Engine {
    Engine::builder()
        .worker_threads(1)
        .store(store.clone())
        .clock(clock.clone())
        .build()
        .unwrap()
}

#[test]
fn parameters_fetched_before_a_restart_import_after_it_and_the_material_survives() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(Timestamp(1_800_000_000_000)));
    let material = [0x5au8; 32];
    let (key, params) = {
        let store = init(dir.path());
        let engine = engine_at(&store, &clock);
        let key = engine
            .create_key(CreateKeyRequest {
                origin: Some(Origin::External),
                ..Default::default()
            })
            .unwrap()
            .key_id;
        let params = engine
            .get_parameters_for_import(
                &key,
                WrappingAlgorithm::RsaesOaepSha256,
                WrappingKeySpec::Rsa2048,
            )
            .unwrap();
        (key, params)
    };
    // The import secret is a store secret, not a process one.
    let names = open(dir.path()).secret_names().unwrap();
    assert!(names.iter().any(|n| n == "keyplane.import"), "{names:?}");
    let wrapped = oaep_wrap(&params.public_key, &material);
    let (blob, material_id) = {
        let store = open(dir.path());
        let engine = engine_at(&store, &clock);
        let imported = engine
            .import_key_material(&ImportKeyMaterialRequest {
                key_id: &key,
                import_token: &params.import_token,
                encrypted_key_material: &wrapped,
                valid_to: Some(Timestamp(1_800_000_000_000 + 10 * DAY_MS)),
                ..Default::default()
            })
            .expect("parameters from before the restart import after it");
        (encrypt(&engine, &key, b"durable"), imported.key_material_id)
    };
    {
        let store = open(dir.path());
        let engine = engine_at(&store, &clock);
        let meta = engine.describe_key(&key).unwrap();
        assert_eq!(meta.key_state, KeyState::Enabled);
        assert_eq!(meta.current_key_material_id.as_deref(), Some(&*material_id));
        assert_eq!(
            meta.expiration_model,
            Some(ExpirationModel::KeyMaterialExpires)
        );
        assert_eq!(decrypt(&engine, &blob).unwrap(), b"durable");
        assert!(store.verify(false).unwrap().is_pristine());
    }
    // The material expires while no engine runs; the next engine deletes it.
    clock.advance_days(11);
    {
        let store = open(dir.path());
        let engine = engine_at(&store, &clock);
        let meta = engine.describe_key(&key).unwrap();
        assert_eq!(meta.key_state, KeyState::PendingImport);
        assert_eq!(
            decrypt(&engine, &blob).unwrap_err().code(),
            "KMSInvalidStateException"
        );
        let report = store.verify(false).unwrap();
        assert!(report.is_pristine(), "{report:?}");
    }
    // After another restart: still PendingImport (the copies are gone, not just hidden), other
    // material is refused, the same material returns with fresh parameters.
    {
        let store = open(dir.path());
        let engine = engine_at(&store, &clock);
        assert_eq!(
            engine.describe_key(&key).unwrap().key_state,
            KeyState::PendingImport
        );
        let fresh = engine
            .get_parameters_for_import(
                &key,
                WrappingAlgorithm::RsaesOaepSha256,
                WrappingKeySpec::Rsa3072,
            )
            .unwrap();
        let request = |m: &[u8]| {
            let wrapped = oaep_wrap(&fresh.public_key, m);
            engine.import_key_material(&ImportKeyMaterialRequest {
                key_id: &key,
                import_token: &fresh.import_token,
                encrypted_key_material: &wrapped,
                expiration_model: Some(ExpirationModel::KeyMaterialDoesNotExpire),
                ..Default::default()
            })
        };
        assert_eq!(
            request(&[0x5b; 32]).unwrap_err().code(),
            "IncorrectKeyMaterialException"
        );
        assert_eq!(request(&material).unwrap().key_material_id, material_id);
    }
    let store = open(dir.path());
    let engine = engine_at(&store, &clock);
    assert_eq!(decrypt(&engine, &blob).unwrap(), b"durable");
    engine.delete_imported_key_material(&key, None).unwrap();
    drop(engine);
    let engine = engine_at(&open(dir.path()), &clock);
    assert_eq!(
        engine.describe_key(&key).unwrap().key_state,
        KeyState::PendingImport
    );
    assert!(store.verify(false).unwrap().is_pristine());
}

#[test]
fn a_token_of_another_store_is_refused() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::starting_now());
    let store_a = init(a.path());
    let store_b = init(b.path());
    let engine_a = engine_at(&store_a, &clock);
    let engine_b = engine_at(&store_b, &clock);
    let external = CreateKeyRequest {
        origin: Some(Origin::External),
        ..Default::default()
    };
    let key_a = engine_a.create_key(external.clone()).unwrap().key_id;
    let key_b = engine_b.create_key(external).unwrap().key_id;
    let params_b = engine_b
        .get_parameters_for_import(
            &key_b,
            WrappingAlgorithm::RsaesOaepSha256,
            WrappingKeySpec::Rsa2048,
        )
        .unwrap();
    let wrapped = oaep_wrap(&params_b.public_key, &[1; 32]);
    let e = engine_a
        .import_key_material(&ImportKeyMaterialRequest {
            key_id: &key_a,
            import_token: &params_b.import_token,
            encrypted_key_material: &wrapped,
            expiration_model: Some(ExpirationModel::KeyMaterialDoesNotExpire),
            ..Default::default()
        })
        .unwrap_err();
    assert_eq!(e.code(), "InvalidImportTokenException");
}
