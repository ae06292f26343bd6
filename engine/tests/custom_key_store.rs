//! Custom key stores through the engine, with a software HSM behind the backend trait
//! (`support/soft_hsm.rs`): the six operations and their connection states and exceptions, keys
//! in a store (creation, use, Unavailable while disconnected or when the token goes away, never a
//! wrong answer), restart with the store reconnecting, GenerateRandom from the token, and the
//! data-plane key recomputed independently (RustCrypto HMAC + HKDF) from the token's key.
//! The same operations against a real PKCS#11 token are tested in `pkcs11-store/tests`.

#[path = "support/external_key.rs"]
mod external_key;
#[path = "support/soft_hsm.rs"]
mod soft_hsm;

use std::sync::Arc;

use keyplane::custom_key_store::{ConnectionErrorCode, ConnectionState, CustomKeyStoreType};
use keyplane::store::MemoryKeyStore;
use keyplane::{
    CreateCustomKeyStoreRequest, CreateKeyRequest, DataKeySpec, DecryptRequest, EncryptRequest,
    Engine, ErrorKind, GenerateDataKeyRequest, KeySpec, KeyState, KeyUsage, Origin,
    ReEncryptRequest, SecretBytes, UpdateCustomKeyStoreRequest,
};
use keyplane_testkit::new_key;
use soft_hsm::{engine_on, SoftHsm, ANCHOR, CLUSTER, OTHER_CLUSTER, PIN};

fn engine(hsm: &SoftHsm) -> Engine {
    engine_on(Arc::new(MemoryKeyStore::default()), hsm)
}

fn create_request(name: &str, cluster: &str, pin: &str) -> CreateCustomKeyStoreRequest {
    CreateCustomKeyStoreRequest {
        custom_key_store_name: name.into(),
        cloud_hsm_cluster_id: Some(cluster.into()),
        trust_anchor_certificate: Some(ANCHOR.into()),
        key_store_password: Some(SecretBytes::from_vec(pin.as_bytes().to_vec())),
        ..Default::default()
    }
}

fn state_of(engine: &Engine, id: &str) -> (ConnectionState, Option<ConnectionErrorCode>) {
    let page = engine
        .describe_custom_key_stores(Some(id), None, None, None)
        .unwrap();
    assert_eq!(page.items.len(), 1);
    (
        page.items[0].connection_state,
        page.items[0].connection_error_code,
    )
}

fn kind<T: std::fmt::Debug>(result: keyplane::Result<T>) -> ErrorKind {
    result.expect_err("the call must fail").kind()
}

fn hsm_key(engine: &Engine, store: &str) -> String {
    engine
        .create_key(CreateKeyRequest {
            origin: Some(Origin::AwsCloudhsm),
            custom_key_store_id: Some(store.into()),
            ..Default::default()
        })
        .unwrap()
        .key_id
}

/// A connected store and a key in it.
fn connected_key(engine: &Engine) -> (String, String) {
    let store = engine
        .create_custom_key_store(create_request("hsm", CLUSTER, PIN))
        .unwrap();
    engine.connect_custom_key_store(&store).unwrap();
    let key = hsm_key(engine, &store);
    (store, key)
}

#[test]
fn a_store_moves_through_the_services_connection_states() {
    let hsm = SoftHsm::new();
    let engine = engine(&hsm);
    let id = engine
        .create_custom_key_store(create_request("first", CLUSTER, PIN))
        .unwrap();
    assert!(id.starts_with("cks-") && id.len() == 21, "{id}");
    assert_eq!(
        state_of(&engine, &id),
        (ConnectionState::Disconnected, None)
    );
    let by_name = engine
        .describe_custom_key_stores(None, Some("first"), None, None)
        .unwrap();
    assert_eq!(by_name.items[0].custom_key_store_id, id);
    assert_eq!(
        by_name.items[0].cloud_hsm_cluster_id.as_deref(),
        Some(CLUSTER)
    );
    assert_eq!(
        by_name.items[0].custom_key_store_type,
        CustomKeyStoreType::AwsCloudhsm
    );

    // Disconnecting a disconnected store, as the service: CustomKeyStoreInvalidStateException.
    assert_eq!(
        kind(engine.disconnect_custom_key_store(&id)),
        ErrorKind::CustomKeyStoreInvalidState
    );
    engine.connect_custom_key_store(&id).unwrap();
    assert_eq!(state_of(&engine, &id), (ConnectionState::Connected, None));
    // Connecting a connected store succeeds and changes nothing.
    engine.connect_custom_key_store(&id).unwrap();
    assert_eq!(state_of(&engine, &id).0, ConnectionState::Connected);

    // While connected: a new name may be set, nothing else; the store cannot be deleted.
    engine
        .update_custom_key_store(UpdateCustomKeyStoreRequest {
            custom_key_store_id: id.clone(),
            new_custom_key_store_name: Some("renamed".into()),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(
        kind(engine.update_custom_key_store(UpdateCustomKeyStoreRequest {
            custom_key_store_id: id.clone(),
            key_store_password: Some(SecretBytes::from_vec(b"another-pin".to_vec())),
            ..Default::default()
        })),
        ErrorKind::CustomKeyStoreInvalidState
    );
    assert_eq!(
        kind(engine.delete_custom_key_store(&id)),
        ErrorKind::CustomKeyStoreInvalidState
    );

    engine.disconnect_custom_key_store(&id).unwrap();
    assert_eq!(
        state_of(&engine, &id),
        (ConnectionState::Disconnected, None)
    );
    engine.delete_custom_key_store(&id).unwrap();
    assert_eq!(
        kind(engine.describe_custom_key_stores(Some(&id), None, None, None)),
        ErrorKind::CustomKeyStoreNotFound
    );
    assert_eq!(
        kind(engine.connect_custom_key_store(&id)),
        ErrorKind::CustomKeyStoreNotFound
    );
}

#[test]
fn create_refuses_what_the_service_refuses() {
    let hsm = SoftHsm::new();
    let engine = engine(&hsm);
    engine
        .create_custom_key_store(create_request("taken", CLUSTER, PIN))
        .unwrap();
    assert_eq!(
        kind(engine.create_custom_key_store(create_request("taken", OTHER_CLUSTER, PIN))),
        ErrorKind::CustomKeyStoreNameInUse
    );
    assert_eq!(
        kind(engine.create_custom_key_store(create_request("second", CLUSTER, PIN))),
        ErrorKind::CloudHsmClusterInUse
    );
    assert_eq!(
        kind(engine.create_custom_key_store(create_request("third", "cluster-nosuchclust", PIN))),
        ErrorKind::CloudHsmClusterNotFound
    );
    let mut bad_anchor = create_request("fourth", OTHER_CLUSTER, PIN);
    bad_anchor.trust_anchor_certificate = Some("not a certificate".into());
    assert_eq!(
        kind(engine.create_custom_key_store(bad_anchor)),
        ErrorKind::IncorrectTrustAnchor
    );
    // The model's constraints: the cluster id pattern, the password's 7 to 32 characters.
    assert_eq!(
        kind(engine.create_custom_key_store(create_request("fifth", "cluster-1", PIN))),
        ErrorKind::Validation
    );
    let short = engine
        .create_custom_key_store(create_request("sixth", OTHER_CLUSTER, "short"))
        .unwrap_err();
    assert_eq!(short.kind(), ErrorKind::Validation);
    assert!(
        !short.message().contains("short"),
        "{short}: a PIN is never echoed"
    );
    let mut no_pin = create_request("seventh", OTHER_CLUSTER, PIN);
    no_pin.key_store_password = None;
    assert_eq!(
        kind(engine.create_custom_key_store(no_pin)),
        ErrorKind::Validation
    );
    // External key stores need the XKS backend (keyplane_xks::XksBackend), which this engine
    // was built without.
    let xks = external_key::xks_store_request("xks");
    assert_eq!(
        kind(engine.create_custom_key_store(xks)),
        ErrorKind::UnsupportedOperation
    );
    // Without a backend, HSM key stores are unsupported, not half-made.
    let bare = Engine::in_memory().unwrap();
    assert_eq!(
        kind(bare.create_custom_key_store(create_request("x", CLUSTER, PIN))),
        ErrorKind::UnsupportedOperation
    );
}

#[test]
fn a_wrong_pin_fails_with_invalid_credentials_and_is_fixed_by_update() {
    let hsm = SoftHsm::new();
    let engine = engine(&hsm);
    let id = engine
        .create_custom_key_store(create_request("pin", CLUSTER, "wrong-pin"))
        .unwrap();
    engine.connect_custom_key_store(&id).unwrap();
    assert_eq!(
        state_of(&engine, &id),
        (
            ConnectionState::Failed,
            Some(ConnectionErrorCode::InvalidCredentials)
        )
    );
    // FAILED: connect again is refused until it is disconnected, as the service's.
    assert_eq!(
        kind(engine.connect_custom_key_store(&id)),
        ErrorKind::CustomKeyStoreInvalidState
    );
    engine.disconnect_custom_key_store(&id).unwrap();
    engine
        .update_custom_key_store(UpdateCustomKeyStoreRequest {
            custom_key_store_id: id.clone(),
            key_store_password: Some(SecretBytes::from_vec(PIN.as_bytes().to_vec())),
            ..Default::default()
        })
        .unwrap();
    engine.connect_custom_key_store(&id).unwrap();
    assert_eq!(state_of(&engine, &id), (ConnectionState::Connected, None));
}

#[test]
fn keys_in_a_store_encrypt_decrypt_and_describe_their_store() {
    let hsm = SoftHsm::new();
    let engine = engine(&hsm);
    let (store, key) = connected_key(&engine);
    let meta = engine.describe_key(&key).unwrap();
    assert_eq!(meta.origin, Origin::AwsCloudhsm);
    assert_eq!(meta.key_state, KeyState::Enabled);
    assert_eq!(meta.custom_key_store_id.as_deref(), Some(store.as_str()));
    assert_eq!(meta.cloud_hsm_cluster_id.as_deref(), Some(CLUSTER));
    assert!(meta.xks_key_configuration.is_none());

    let sealed = engine
        .encrypt(&EncryptRequest::new(&key, b"held by the HSM"))
        .unwrap();
    let opened = engine
        .decrypt(&DecryptRequest::new(&sealed.ciphertext_blob))
        .unwrap();
    assert_eq!(opened.plaintext.expose(), b"held by the HSM");

    let data_key = engine
        .generate_data_key(&GenerateDataKeyRequest::new(&key, DataKeySpec::Aes256))
        .unwrap();
    let reopened = engine
        .decrypt(&DecryptRequest::new(&data_key.ciphertext_blob))
        .unwrap();
    assert_eq!(reopened.plaintext.expose(), data_key.plaintext.expose());

    // ReEncrypt out of the HSM key into a keyplane-held key and back.
    let local = new_key(&engine);
    let moved = engine
        .re_encrypt(&ReEncryptRequest::new(&sealed.ciphertext_blob, &local))
        .unwrap();
    let back = engine
        .re_encrypt(&ReEncryptRequest::new(&moved.ciphertext_blob, &key))
        .unwrap();
    let final_open = engine
        .decrypt(&DecryptRequest::new(&back.ciphertext_blob))
        .unwrap();
    assert_eq!(final_open.plaintext.expose(), b"held by the HSM");

    // The store cannot go while it holds keys.
    engine.disconnect_custom_key_store(&store).unwrap();
    assert_eq!(
        kind(engine.delete_custom_key_store(&store)),
        ErrorKind::CustomKeyStoreHasCmks
    );
}

#[test]
fn the_token_is_called_once_per_salt_not_per_request() {
    let hsm = SoftHsm::new();
    let engine = engine(&hsm);
    let (_, key) = connected_key(&engine);
    let before = hsm.salt_calls(CLUSTER);
    let mut blobs = Vec::new();
    for i in 0..200u32 {
        let sealed = engine
            .encrypt(&EncryptRequest::new(&key, &i.to_be_bytes()))
            .unwrap();
        blobs.push(sealed.ciphertext_blob);
    }
    for (i, blob) in blobs.iter().enumerate() {
        let opened = engine.decrypt(&DecryptRequest::new(blob)).unwrap();
        assert_eq!(opened.plaintext.expose(), (i as u32).to_be_bytes());
    }
    let calls = hsm.salt_calls(CLUSTER) - before;
    assert!(
        (1..=4).contains(&calls),
        "400 calls on one thread reached the token {calls} times"
    );
}

#[test]
fn create_key_refuses_what_the_service_refuses() {
    let hsm = SoftHsm::new();
    let engine = engine(&hsm);
    let store = engine
        .create_custom_key_store(create_request("hsm", CLUSTER, PIN))
        .unwrap();
    let in_store = |spec: Option<KeySpec>, usage: Option<KeyUsage>, origin: Option<Origin>| {
        engine.create_key(CreateKeyRequest {
            origin,
            key_spec: spec,
            key_usage: usage,
            custom_key_store_id: Some(store.clone()),
            ..Default::default()
        })
    };
    // Not connected.
    assert_eq!(
        kind(in_store(None, None, Some(Origin::AwsCloudhsm))),
        ErrorKind::CustomKeyStoreInvalidState
    );
    engine.connect_custom_key_store(&store).unwrap();
    assert_eq!(
        kind(in_store(
            Some(KeySpec::Hmac256),
            Some(KeyUsage::GenerateVerifyMac),
            Some(Origin::AwsCloudhsm)
        )),
        ErrorKind::UnsupportedOperation
    );
    assert_eq!(
        kind(in_store(None, None, None)),
        ErrorKind::Validation,
        "a CustomKeyStoreId needs Origin AWS_CLOUDHSM"
    );
    assert_eq!(
        kind(engine.create_key(CreateKeyRequest {
            origin: Some(Origin::AwsCloudhsm),
            ..Default::default()
        })),
        ErrorKind::Validation,
        "Origin AWS_CLOUDHSM needs a CustomKeyStoreId"
    );
    assert_eq!(
        kind(engine.create_key(CreateKeyRequest {
            origin: Some(Origin::AwsCloudhsm),
            custom_key_store_id: Some("cks-00000000000000000".into()),
            ..Default::default()
        })),
        ErrorKind::CustomKeyStoreNotFound
    );
    assert_eq!(
        kind(engine.create_key(CreateKeyRequest {
            origin: Some(Origin::AwsCloudhsm),
            custom_key_store_id: Some(store.clone()),
            multi_region: Some(true),
            ..Default::default()
        })),
        ErrorKind::UnsupportedOperation
    );
    // Keys in custom key stores do not rotate, as the service's.
    let key = in_store(None, None, Some(Origin::AwsCloudhsm))
        .unwrap()
        .key_id;
    assert_eq!(
        kind(engine.enable_key_rotation(&key, None)),
        ErrorKind::UnsupportedOperation
    );
}

#[test]
fn a_disconnected_store_makes_its_keys_unavailable_and_reconnecting_restores_them() {
    let hsm = SoftHsm::new();
    let engine = engine(&hsm);
    let (store, key) = connected_key(&engine);
    let local = new_key(&engine);
    let sealed = engine
        .encrypt(&EncryptRequest::new(&key, b"before"))
        .unwrap()
        .ciphertext_blob;
    engine.disconnect_custom_key_store(&store).unwrap();
    assert_eq!(
        engine.describe_key(&key).unwrap().key_state,
        KeyState::Unavailable
    );
    assert_eq!(
        kind(engine.encrypt(&EncryptRequest::new(&key, b"x"))),
        ErrorKind::KeyUnavailable
    );
    assert_eq!(
        kind(engine.decrypt(&DecryptRequest::new(&sealed))),
        ErrorKind::KeyUnavailable
    );
    assert_eq!(
        kind(engine.create_key(CreateKeyRequest {
            origin: Some(Origin::AwsCloudhsm),
            custom_key_store_id: Some(store.clone()),
            ..Default::default()
        })),
        ErrorKind::CustomKeyStoreInvalidState
    );
    // Other keys are untouched.
    engine
        .encrypt(&EncryptRequest::new(&local, b"still fine"))
        .unwrap();

    engine.connect_custom_key_store(&store).unwrap();
    assert_eq!(
        engine.describe_key(&key).unwrap().key_state,
        KeyState::Enabled
    );
    let opened = engine.decrypt(&DecryptRequest::new(&sealed)).unwrap();
    assert_eq!(opened.plaintext.expose(), b"before");
}

#[test]
fn a_token_that_goes_away_fails_the_store_and_never_answers_wrongly() {
    let hsm = SoftHsm::new();
    let engine = engine(&hsm);
    let (store, key) = connected_key(&engine);
    let sealed: Vec<Vec<u8>> = (0..8u8)
        .map(|i| {
            engine
                .encrypt(&EncryptRequest::new(&key, &[i; 16]))
                .unwrap()
                .ciphertext_blob
        })
        .collect();
    hsm.set_present(CLUSTER, false);
    // Mid-batch: derived keys already cached may still open their own ciphertexts, but whatever
    // needs the token fails; no item ever decrypts to other bytes.
    let requests: Vec<DecryptRequest<'_>> = sealed.iter().map(|b| DecryptRequest::new(b)).collect();
    for (i, result) in engine.decrypt_batch(&requests).into_iter().enumerate() {
        if let Ok(plaintext) = result {
            assert_eq!(plaintext.expose(), [i as u8; 16]);
        }
    }
    // DescribeCustomKeyStores sees the token gone: FAILED, and the key is Unavailable.
    assert_eq!(
        state_of(&engine, &store),
        (
            ConnectionState::Failed,
            Some(ConnectionErrorCode::NetworkErrors)
        )
    );
    assert_eq!(
        engine.describe_key(&key).unwrap().key_state,
        KeyState::Unavailable
    );
    for blob in &sealed {
        assert_eq!(
            kind(engine.decrypt(&DecryptRequest::new(blob))),
            ErrorKind::KeyUnavailable
        );
    }
    // The token comes back: disconnect, connect, and everything opens again.
    hsm.set_present(CLUSTER, true);
    engine.disconnect_custom_key_store(&store).unwrap();
    engine.connect_custom_key_store(&store).unwrap();
    for (i, blob) in sealed.iter().enumerate() {
        let opened = engine.decrypt(&DecryptRequest::new(blob)).unwrap();
        assert_eq!(opened.plaintext.expose(), [i as u8; 16]);
    }
}

#[test]
fn a_destroyed_token_key_refuses_its_ciphertexts() {
    let hsm = SoftHsm::new();
    let engine = engine(&hsm);
    let (store, key) = connected_key(&engine);
    let sealed = engine
        .encrypt(&EncryptRequest::new(&key, b"gone with the key"))
        .unwrap()
        .ciphertext_blob;
    let backing = format!("{:016x}", 1);
    assert_eq!(
        hsm.label(CLUSTER, &backing).to_string(),
        key,
        "the token labels its key with the keyplane key id"
    );
    hsm.destroy_key(CLUSTER, &backing);
    // A reconnection drops every derived key cached from the token.
    engine.disconnect_custom_key_store(&store).unwrap();
    engine.connect_custom_key_store(&store).unwrap();
    let refused = engine.decrypt(&DecryptRequest::new(&sealed)).unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::KeyUnavailable, "{refused}");
    assert!(engine.encrypt(&EncryptRequest::new(&key, b"x")).is_err());
}

#[test]
fn a_restarted_engine_reconnects_its_stores() {
    let hsm = SoftHsm::new();
    let durable = Arc::new(MemoryKeyStore::default());
    let (store, key, sealed) = {
        let engine = engine_on(Arc::clone(&durable), &hsm);
        let (store, key) = connected_key(&engine);
        let sealed = engine
            .encrypt(&EncryptRequest::new(&key, b"across a restart"))
            .unwrap()
            .ciphertext_blob;
        (store, key, sealed)
    };
    let engine = engine_on(Arc::clone(&durable), &hsm);
    assert_eq!(state_of(&engine, &store).0, ConnectionState::Connected);
    let opened = engine.decrypt(&DecryptRequest::new(&sealed)).unwrap();
    assert_eq!(opened.plaintext.expose(), b"across a restart");
    assert_eq!(
        engine.describe_key(&key).unwrap().key_state,
        KeyState::Enabled
    );

    // A store disconnected before the restart stays disconnected.
    engine.disconnect_custom_key_store(&store).unwrap();
    drop(engine);
    let engine = engine_on(Arc::clone(&durable), &hsm);
    assert_eq!(state_of(&engine, &store).0, ConnectionState::Disconnected);
    assert_eq!(
        kind(engine.decrypt(&DecryptRequest::new(&sealed))),
        ErrorKind::KeyUnavailable
    );
}

#[test]
fn generate_random_draws_from_the_token() {
    let hsm = SoftHsm::new();
    let engine = engine(&hsm);
    let (store, _) = connected_key(&engine);
    let before = hsm.random_calls(CLUSTER);
    let bytes = engine
        .generate_random_from_custom_key_store(&store, 64)
        .unwrap();
    assert_eq!(bytes.len(), 64);
    assert_ne!(bytes, vec![0u8; 64]);
    assert_eq!(hsm.random_calls(CLUSTER), before + 1);
    assert_eq!(
        kind(engine.generate_random_from_custom_key_store(&store, 0)),
        ErrorKind::Validation
    );
    assert_eq!(
        kind(engine.generate_random_from_custom_key_store("cks-00000000000000000", 8)),
        ErrorKind::CustomKeyStoreNotFound
    );
    engine.disconnect_custom_key_store(&store).unwrap();
    assert_eq!(
        kind(engine.generate_random_from_custom_key_store(&store, 8)),
        ErrorKind::CustomKeyStoreInvalidState
    );
}

#[test]
fn describe_pages_with_limit_and_marker() {
    let hsm = SoftHsm::new();
    let engine = engine(&hsm);
    let a = engine
        .create_custom_key_store(create_request("a", CLUSTER, PIN))
        .unwrap();
    let b = engine
        .create_custom_key_store(create_request("b", OTHER_CLUSTER, PIN))
        .unwrap();
    let first = engine
        .describe_custom_key_stores(None, None, Some(1), None)
        .unwrap();
    assert!(first.truncated);
    let second = engine
        .describe_custom_key_stores(None, None, Some(1), first.next_marker.as_deref())
        .unwrap();
    assert!(!second.truncated);
    let mut seen = vec![
        first.items[0].custom_key_store_id.clone(),
        second.items[0].custom_key_store_id.clone(),
    ];
    seen.sort();
    let mut want = vec![a, b];
    want.sort();
    assert_eq!(seen, want);
    assert_eq!(
        kind(engine.describe_custom_key_stores(None, None, Some(1), Some("not-a-marker"))),
        ErrorKind::InvalidMarker
    );
    assert_eq!(
        kind(engine.describe_custom_key_stores(None, None, Some(0), None)),
        ErrorKind::Validation
    );
}

/// The data-plane key of an HSM key, recomputed outside the engine: HKDF-SHA256 (RustCrypto)
/// of the token's salt key, with the documented info, opens the engine's ciphertext.
#[test]
fn the_data_plane_key_is_hkdf_of_the_tokens_salt_key() {
    use hkdf::Hkdf;
    use keyplane::ciphertext;
    use keyplane::less_safe::aes_gcm::AesGcmKey;
    let hsm = SoftHsm::new();
    let engine = engine(&hsm);
    let (store, key) = connected_key(&engine);
    let blob = engine
        .encrypt(&EncryptRequest::new(&key, b"recomputed elsewhere"))
        .unwrap()
        .ciphertext_blob;
    let parsed = ciphertext::parse(&blob).unwrap();
    let backing = format!("{:016x}", 1);
    let ikm = soft_hsm::salt_key(&hsm.key_bytes(CLUSTER, &backing), parsed.salt);
    let mut info = b"keyplane v1 AES-256-GCM custom key store data key".to_vec();
    info.extend_from_slice(uuid::Uuid::parse_str(&key).unwrap().as_bytes());
    info.extend_from_slice(&parsed.key_version.to_be_bytes());
    for part in [store.as_bytes(), backing.as_bytes()] {
        info.extend_from_slice(&(part.len() as u16).to_be_bytes());
        info.extend_from_slice(part);
    }
    let mut okm = [0u8; 32];
    Hkdf::<sha2::Sha256>::new(Some(parsed.salt), &ikm)
        .expand(&info, &mut okm)
        .unwrap();
    let reference = AesGcmKey::new(&okm, keyplane::LockPolicy::Require).unwrap();
    // The associated data: the header, then the empty encryption context's encoding (0 pairs).
    let aad = [parsed.header, &[0u8, 0][..]].concat();
    let mut out = vec![0u8; parsed.body.len()];
    reference
        .open(parsed.nonce, &aad, parsed.body, parsed.tag, &mut out)
        .expect("the independently derived key opens the engine's ciphertext");
    assert_eq!(out, b"recomputed elsewhere");
    // The same with the other store's id in the info does not: the store is bound.
    let mut wrong_info = info.clone();
    let at = wrong_info.len() - backing.len() - 2 - store.len();
    wrong_info[at] ^= 1;
    Hkdf::<sha2::Sha256>::new(Some(parsed.salt), &ikm)
        .expand(&wrong_info, &mut okm)
        .unwrap();
    let wrong = AesGcmKey::new(&okm, keyplane::LockPolicy::Require).unwrap();
    assert!(wrong
        .open(parsed.nonce, &aad, parsed.body, parsed.tag, &mut out)
        .is_err());
}

#[test]
fn a_deleted_key_takes_its_backing_key_with_it_and_then_the_store_can_go() {
    let hsm = SoftHsm::new();
    let clock = Arc::new(keyplane::ManualClock::starting_now());
    let engine = Engine::builder()
        .clock(clock.clone())
        .custom_key_store_backend(CustomKeyStoreType::AwsCloudhsm, Arc::new(hsm.clone()))
        .build()
        .unwrap();
    let (store, key) = connected_key(&engine);
    let backing = format!("{:016x}", 1);
    assert!(hsm.has_key(CLUSTER, &backing));
    engine.schedule_key_deletion(&key, Some(7)).unwrap();
    assert!(
        hsm.has_key(CLUSTER, &backing),
        "kept while pending deletion"
    );
    clock.advance_days(8);
    engine.run_due_tasks().unwrap();
    assert_eq!(
        kind(engine.describe_key(&key)),
        ErrorKind::NotFound,
        "the key is deleted"
    );
    assert!(!hsm.has_key(CLUSTER, &backing), "and so is its backing key");
    engine.disconnect_custom_key_store(&store).unwrap();
    engine.delete_custom_key_store(&store).unwrap();
}

/// Two engines on one store (two processes on one data directory): what one connects,
/// disconnects or deletes, the other follows at its next control-plane call.
#[test]
fn an_engine_follows_the_stores_another_engine_connects_and_disconnects() {
    let hsm = SoftHsm::new();
    let shared = Arc::new(MemoryKeyStore::default());
    let a = engine_on(Arc::clone(&shared), &hsm);
    let b = engine_on(Arc::clone(&shared), &hsm);
    let (store, key) = connected_key(&a);
    let sealed = a
        .encrypt(&EncryptRequest::new(&key, b"shared"))
        .unwrap()
        .ciphertext_blob;
    assert_eq!(state_of(&b, &store).0, ConnectionState::Connected);
    assert_eq!(
        b.decrypt(&DecryptRequest::new(&sealed))
            .unwrap()
            .plaintext
            .expose(),
        b"shared"
    );
    a.disconnect_custom_key_store(&store).unwrap();
    assert_eq!(state_of(&b, &store).0, ConnectionState::Disconnected);
    assert_eq!(
        kind(b.decrypt(&DecryptRequest::new(&sealed))),
        ErrorKind::KeyUnavailable
    );
}
