//! Control plane: every operation, every key state transition, and the error each disallowed
//! operation gives, checked against the key management service's rules (exception names via
//! `Error::code`).

#[path = "support/outcome.rs"]
mod outcome;
use outcome::code;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use keyplane::clock::DAY_MS;
use keyplane::store::MemoryKeyStore;
use keyplane::{
    Clock, CreateKeyRequest, DataKeySpec, DecryptRequest, EncryptRequest, Engine,
    GenerateDataKeyRequest, KeyManager, KeySpec, KeyState, KeyUsage, LockPolicy, ManualClock,
    Origin, RotationType, Tag, Timestamp,
};
use keyplane_testkit::new_key;

// ---- helpers ------------------------------------------------------------------------------------

/// An engine on `store` whose time follows `clock`.
fn engine_on(clock: &Arc<ManualClock>, store: Arc<MemoryKeyStore>) -> Engine {
    Engine::builder()
        .clock(clock.clone())
        .store(store)
        .build()
        .unwrap()
}

fn clocked() -> (Engine, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::starting_now());
    let engine = Engine::builder()
        .clock(clock.clone())
        .build()
        .expect("engine starts");
    (engine, clock)
}

fn external_key(engine: &Engine) -> String {
    engine
        .create_key(CreateKeyRequest {
            origin: Some(Origin::External),
            ..Default::default()
        })
        .expect("create EXTERNAL key")
        .key_id
}

fn state_of(engine: &Engine, key: &str) -> KeyState {
    engine.describe_key(key).expect("describe").key_state
}

fn tag(k: &str, v: &str) -> Tag {
    Tag {
        tag_key: k.to_owned(),
        tag_value: v.to_owned(),
    }
}

fn tags_of(engine: &Engine, key: &str) -> Vec<(String, String)> {
    engine
        .list_resource_tags(key, None, None)
        .expect("list tags")
        .items
        .into_iter()
        .map(|t| (t.tag_key, t.tag_value))
        .collect()
}

fn encrypt(engine: &Engine, key: &str, plaintext: &[u8]) -> keyplane::Result<Vec<u8>> {
    engine
        .encrypt(&EncryptRequest::new(key, plaintext))
        .map(|r| r.ciphertext_blob)
}

fn decrypt(engine: &Engine, blob: &[u8]) -> keyplane::Result<Vec<u8>> {
    engine
        .decrypt(&DecryptRequest::new(blob))
        .map(|r| r.plaintext.expose().to_vec())
}

/// The aliases that name a key (ListAliases also shows the integrated services' predefined
/// aliases, which name none until first used).
fn alias_names(engine: &Engine, key: Option<&str>) -> Vec<String> {
    engine
        .list_aliases(key, Some(100), None)
        .expect("list aliases")
        .items
        .into_iter()
        .filter(|a| a.target_key_id.is_some())
        .map(|a| a.alias_name)
        .collect()
}

fn all_key_ids(engine: &Engine) -> BTreeSet<String> {
    engine
        .list_keys(Some(1000), None)
        .expect("list keys")
        .items
        .into_iter()
        .map(|k| k.key_id)
        .collect()
}

fn uuid_of(key: &str) -> uuid::Uuid {
    uuid::Uuid::parse_str(key).expect("key id is a UUID")
}

// ---- CreateKey ----------------------------------------------------------------------------------

/// The usages the service allows for each key spec (CreateKey's KeyUsage documentation).
fn service_usages(spec: KeySpec) -> &'static [KeyUsage] {
    use KeyUsage::*;
    match spec {
        KeySpec::SymmetricDefault => &[EncryptDecrypt],
        KeySpec::Rsa2048 | KeySpec::Rsa3072 | KeySpec::Rsa4096 => &[EncryptDecrypt, SignVerify],
        KeySpec::EccNistP256 | KeySpec::EccNistP384 | KeySpec::EccNistP521 => {
            &[SignVerify, KeyAgreement]
        }
        KeySpec::EccNistEdwards25519 | KeySpec::EccSecgP256k1 => &[SignVerify],
        KeySpec::Hmac224 | KeySpec::Hmac256 | KeySpec::Hmac384 | KeySpec::Hmac512 => {
            &[GenerateVerifyMac]
        }
        KeySpec::Sm2 => &[EncryptDecrypt, SignVerify, KeyAgreement],
        KeySpec::MlDsa44 | KeySpec::MlDsa65 | KeySpec::MlDsa87 => &[SignVerify],
    }
}

#[test]
fn create_key_default_is_an_enabled_symmetric_key_and_describe_shows_every_field() {
    let (engine, clock) = clocked();
    let created_at = clock.now();
    let meta = engine
        .create_key(CreateKeyRequest {
            description: Some("payments".into()),
            ..Default::default()
        })
        .unwrap();
    let id = uuid_of(&meta.key_id);
    assert_eq!(meta.key_id, id.hyphenated().to_string());
    assert_eq!(
        meta.arn,
        format!("arn:aws:kms:us-east-1:111122223333:key/{}", meta.key_id)
    );
    assert_eq!(meta.arn, engine.key_arn(&id));
    assert_eq!(meta.aws_account_id, "111122223333");
    assert_eq!(meta.creation_date, created_at);
    assert!(meta.enabled);
    assert_eq!(meta.description, "payments");
    assert_eq!(meta.key_usage, KeyUsage::EncryptDecrypt);
    assert_eq!(meta.key_state, KeyState::Enabled);
    assert_eq!(meta.deletion_date, None);
    assert_eq!(meta.origin, Origin::AwsKms);
    assert_eq!(meta.key_manager, KeyManager::Customer);
    assert_eq!(meta.key_spec, KeySpec::SymmetricDefault);
    assert_eq!(meta.customer_master_key_spec, KeySpec::SymmetricDefault);
    assert_eq!(
        meta.encryption_algorithms,
        vec![keyplane::EncryptionAlgorithm::SymmetricDefault]
    );
    assert!(meta.signing_algorithms.is_empty());
    assert!(meta.mac_algorithms.is_empty());
    assert!(meta.key_agreement_algorithms.is_empty());
    assert!(!meta.multi_region);
    assert_eq!(meta.pending_deletion_window_in_days, None);
    assert!(!meta.key_rotation_enabled);
    let material = meta.current_key_material_id.clone().expect("material id");
    assert_eq!(material.len(), 64);
    assert!(material
        .bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));

    // DescribeKey returns the same metadata, by every form of identifier.
    clock.advance_days(1);
    let described = engine.describe_key(&meta.key_id).unwrap();
    assert_eq!(described, meta);
    assert_eq!(engine.describe_key(&meta.arn).unwrap(), meta);

    // A second key gets its own id and material.
    let other = engine.create_key(CreateKeyRequest::default()).unwrap();
    assert_ne!(other.key_id, meta.key_id);
    assert_ne!(other.current_key_material_id, meta.current_key_material_id);
    assert_eq!(other.description, "");
    assert_eq!(other.creation_date, clock.now());
}

#[test]
fn explicit_symmetric_spec_and_usage_are_accepted() {
    let engine = Engine::in_memory().unwrap();
    let meta = engine
        .create_key(CreateKeyRequest {
            key_spec: Some(KeySpec::SymmetricDefault),
            key_usage: Some(KeyUsage::EncryptDecrypt),
            origin: Some(Origin::AwsKms),
            multi_region: Some(false),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(meta.key_state, KeyState::Enabled);
}

#[test]
fn every_unsupported_key_spec_is_unsupported_and_invalid_usages_are_validation_errors() {
    let engine = Engine::in_memory().unwrap();
    let mut checked = 0;
    let mut created = 0;
    for &spec in KeySpec::ALL {
        let allowed = service_usages(spec);
        // SM2 and ML-DSA are modelled but not available in this build; every other spec is.
        let unsupported = matches!(
            spec,
            KeySpec::Sm2 | KeySpec::MlDsa44 | KeySpec::MlDsa65 | KeySpec::MlDsa87
        );
        for &usage in KeyUsage::ALL {
            let result = engine.create_key(CreateKeyRequest {
                key_spec: Some(spec),
                key_usage: Some(usage),
                ..Default::default()
            });
            let expected = if !allowed.contains(&usage) {
                Some("ValidationException")
            } else if unsupported {
                Some("UnsupportedOperationException")
            } else {
                None
            };
            match (expected, result) {
                (None, Ok(meta)) => {
                    assert_eq!(meta.key_spec, spec);
                    assert_eq!(meta.key_usage, usage);
                    created += 1;
                }
                (Some(code), Err(e)) => assert_eq!(e.code(), code, "{spec} with {usage}: {e}"),
                (expected, Ok(_)) => panic!("{spec} with {usage} succeeded, expected {expected:?}"),
                (None, Err(e)) => panic!("{spec} with {usage} failed: {e}"),
            }
            checked += 1;
        }
        // Without a usage only a symmetric key is made (ENCRYPT_DECRYPT); every other spec needs
        // a KeyUsage, as in the service.
        let result = engine.create_key(CreateKeyRequest {
            key_spec: Some(spec),
            ..Default::default()
        });
        if spec == KeySpec::SymmetricDefault {
            let meta = result.unwrap_or_else(|e| panic!("{spec} without a usage failed: {e}"));
            assert_eq!(
                meta.key_usage,
                KeyUsage::EncryptDecrypt,
                "{spec}: default usage"
            );
            created += 1;
        } else {
            let e = result.unwrap_err();
            assert_eq!(
                (e.code(), e.message()),
                (
                    "ValidationException",
                    "You must specify a KeyUsage value for all KMS keys except for symmetric \
                     encryption keys."
                ),
                "{spec}"
            );
        }
    }
    assert_eq!(checked, 17 * 4);
    // Every supported (spec, usage) pair: symmetric 1 + RSA 3x2 + NIST P 3x2 + secp256k1 1 +
    // Ed25519 1 + HMAC 4 = 19, and the one symmetric key made without a usage.
    assert_eq!(created, 19 + 1);
    // No refused request left a key behind.
    assert_eq!(all_key_ids(&engine).len(), created);
}

#[test]
fn symmetric_key_with_a_non_encryption_usage_is_a_validation_error() {
    let engine = Engine::in_memory().unwrap();
    for usage in [
        KeyUsage::SignVerify,
        KeyUsage::GenerateVerifyMac,
        KeyUsage::KeyAgreement,
    ] {
        // No spec given: SYMMETRIC_DEFAULT is implied.
        let e = engine
            .create_key(CreateKeyRequest {
                key_usage: Some(usage),
                ..Default::default()
            })
            .unwrap_err();
        assert_eq!(e.code(), "ValidationException", "{usage}");
    }
    assert!(all_key_ids(&engine).is_empty());
}

#[test]
fn custom_key_store_origins_without_their_store_and_oversized_fields_are_refused() {
    let engine = Engine::in_memory().unwrap();
    // Keys of these origins live in a custom key store (engine/tests/custom_key_store.rs): the
    // request must name one, and one that exists.
    for origin in [Origin::AwsCloudhsm, Origin::ExternalKeyStore] {
        assert_eq!(
            code(engine.create_key(CreateKeyRequest {
                origin: Some(origin),
                ..Default::default()
            })),
            "ValidationException",
            "{origin}"
        );
    }
    assert_eq!(
        code(engine.create_key(CreateKeyRequest {
            origin: Some(Origin::AwsCloudhsm),
            custom_key_store_id: Some("cks-1234567890abcdef0".into()),
            ..Default::default()
        })),
        "CustomKeyStoreNotFoundException"
    );
    // (Multi-Region keys are supported: engine/tests/multi_region.rs.)
    assert_eq!(
        code(engine.create_key(CreateKeyRequest {
            description: Some("d".repeat(8193)),
            ..Default::default()
        })),
        "ValidationException"
    );
    assert_eq!(
        code(engine.create_key(CreateKeyRequest {
            policy: Some("p".repeat(32 * 1024 + 1)),
            ..Default::default()
        })),
        "MalformedPolicyDocumentException"
    );
    assert!(all_key_ids(&engine).is_empty());
    // The largest description is accepted.
    let meta = engine
        .create_key(CreateKeyRequest {
            description: Some("d".repeat(8192)),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(meta.description.len(), 8192);
}

#[test]
fn external_origin_key_waits_in_pending_import() {
    let engine = Engine::in_memory().unwrap();
    let meta = engine
        .create_key(CreateKeyRequest {
            origin: Some(Origin::External),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(meta.key_state, KeyState::PendingImport);
    assert_eq!(meta.origin, Origin::External);
    assert!(!meta.enabled);
    assert_eq!(meta.current_key_material_id, None);
    assert_eq!(state_of(&engine, &meta.key_id), KeyState::PendingImport);
    assert_eq!(
        code(encrypt(&engine, &meta.key_id, b"x")),
        "KMSInvalidStateException"
    );
}

#[test]
fn key_quota_is_enforced_and_freed_by_deletion() {
    let clock = Arc::new(ManualClock::starting_now());
    let engine = Engine::builder()
        .clock(clock.clone())
        .max_keys(3)
        .build()
        .unwrap();
    let keys: Vec<String> = (0..3).map(|_| new_key(&engine)).collect();
    assert_eq!(
        code(engine.create_key(CreateKeyRequest::default())),
        "LimitExceededException"
    );
    // EXTERNAL keys count against the same quota.
    assert_eq!(
        code(engine.create_key(CreateKeyRequest {
            origin: Some(Origin::External),
            ..Default::default()
        })),
        "LimitExceededException"
    );
    assert_eq!(all_key_ids(&engine).len(), 3);
    // A key pending deletion still counts.
    engine.schedule_key_deletion(&keys[0], Some(7)).unwrap();
    assert_eq!(
        code(engine.create_key(CreateKeyRequest::default())),
        "LimitExceededException"
    );
    // Once it is deleted, there is room for one more.
    clock.advance_days(8);
    let replacement = new_key(&engine);
    assert_eq!(all_key_ids(&engine).len(), 3);
    assert!(all_key_ids(&engine).contains(&replacement));
    assert_eq!(
        code(engine.create_key(CreateKeyRequest::default())),
        "LimitExceededException"
    );
}

// ---- identifiers and ARNs -----------------------------------------------------------------------

#[test]
fn keys_resolve_by_id_arn_alias_name_and_alias_arn_only_in_this_region_and_account() {
    let engine = Engine::builder()
        .region("eu-west-1")
        .account_id("444455556666")
        .build()
        .unwrap();
    let meta = engine.create_key(CreateKeyRequest::default()).unwrap();
    let id = &meta.key_id;
    assert_eq!(
        meta.arn,
        format!("arn:aws:kms:eu-west-1:444455556666:key/{id}")
    );
    engine.create_alias("alias/orders", id).unwrap();
    let alias_arn = "arn:aws:kms:eu-west-1:444455556666:alias/orders";
    for identifier in [id.as_str(), meta.arn.as_str(), "alias/orders", alias_arn] {
        assert_eq!(engine.describe_key(identifier).unwrap().key_id, *id);
        let sealed = engine
            .encrypt(&EncryptRequest::new(identifier, b"hello"))
            .unwrap();
        assert_eq!(sealed.key_id, meta.arn, "Encrypt answers with the key ARN");
    }
    let listed: Vec<_> = engine
        .list_aliases(None, None, None)
        .unwrap()
        .items
        .into_iter()
        .filter(|a| a.target_key_id.is_some())
        .collect();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].alias_arn, alias_arn);
    assert_eq!(listed[0].target_key_id.as_deref(), Some(id.as_str()));

    // The same key or alias named in another region or account does not exist here.
    let foreign = [
        format!("arn:aws:kms:us-east-1:444455556666:key/{id}"),
        format!("arn:aws:kms:eu-west-1:111122223333:key/{id}"),
        "arn:aws:kms:us-east-1:444455556666:alias/orders".to_owned(),
        "arn:aws:kms:eu-west-1:111122223333:alias/orders".to_owned(),
    ];
    for identifier in &foreign {
        assert_eq!(
            code(engine.describe_key(identifier)),
            "NotFoundException",
            "{identifier}"
        );
        assert_eq!(
            code(encrypt(&engine, identifier, b"x")),
            "NotFoundException",
            "{identifier}"
        );
        assert_eq!(
            code(engine.disable_key(identifier)),
            "NotFoundException",
            "{identifier}"
        );
    }
    // Unknown keys and aliases, malformed ids and ARNs.
    let unknown = uuid::Uuid::new_v4().to_string();
    assert_eq!(code(engine.describe_key(&unknown)), "NotFoundException");
    assert_eq!(
        code(engine.describe_key(&format!("arn:aws:kms:eu-west-1:444455556666:key/{unknown}"))),
        "NotFoundException"
    );
    assert_eq!(code(engine.describe_key("alias/nope")), "NotFoundException");
    assert_eq!(code(engine.describe_key("not-a-key")), "NotFoundException");
    // Malformed ARNs are malformed key ids to the service.
    assert_eq!(
        code(engine.describe_key("arn:aws:s3:::bucket/object")),
        "NotFoundException"
    );
    assert_eq!(
        code(engine.describe_key("arn:aws:kms:eu-west-1:444455556666:secret/x")),
        "NotFoundException"
    );
    assert_eq!(code(engine.describe_key("")), "ValidationException");
}

#[test]
fn invalid_region_account_and_derived_key_limit_are_refused_at_build() {
    assert_eq!(
        code(Engine::builder().region("EU West").build()),
        "ValidationException"
    );
    assert_eq!(
        code(Engine::builder().account_id("1234").build()),
        "ValidationException"
    );
    assert_eq!(
        code(Engine::builder().messages_per_derived_key(0).build()),
        "ValidationException"
    );
}

// ---- ListKeys -----------------------------------------------------------------------------------

#[test]
fn list_keys_pages_with_limit_and_marker() {
    let engine = Engine::in_memory().unwrap();
    let mut created: BTreeSet<String> = (0..23).map(|_| new_key(&engine)).collect();
    // An EXTERNAL key is listed as well.
    created.insert(external_key(&engine));
    assert_eq!(created.len(), 24);

    let mut seen = Vec::new();
    let mut marker: Option<String> = None;
    let mut pages = 0;
    loop {
        let page = engine.list_keys(Some(5), marker.as_deref()).unwrap();
        pages += 1;
        assert!(page.items.len() <= 5);
        for entry in &page.items {
            assert_eq!(
                entry.key_arn,
                format!("arn:aws:kms:us-east-1:111122223333:key/{}", entry.key_id)
            );
            seen.push(entry.key_id.clone());
        }
        if page.truncated {
            assert_eq!(page.items.len(), 5);
            marker = Some(page.next_marker.expect("a truncated page has a marker"));
        } else {
            assert_eq!(page.next_marker, None);
            break;
        }
        assert!(pages < 100, "pagination does not end");
    }
    assert_eq!(pages, 5, "24 keys in pages of 5");
    assert_eq!(seen.len(), 24, "no key listed twice");
    assert_eq!(seen.iter().cloned().collect::<BTreeSet<_>>(), created);

    // When the last page is exactly full, it is not truncated.
    let page = engine.list_keys(Some(24), None).unwrap();
    assert_eq!(page.items.len(), 24);
    assert!(!page.truncated);
    assert_eq!(page.next_marker, None);
    let page = engine.list_keys(Some(23), None).unwrap();
    assert!(page.truncated);
    let rest = engine
        .list_keys(Some(23), page.next_marker.as_deref())
        .unwrap();
    assert_eq!(rest.items.len(), 1);
    assert!(!rest.truncated);

    // Default limit 100 covers everything here.
    let all = engine.list_keys(None, None).unwrap();
    assert_eq!(all.items.len(), 24);
    assert!(!all.truncated);

    // Limit bounds and markers this call never handed out.
    assert_eq!(code(engine.list_keys(Some(0), None)), "ValidationException");
    assert_eq!(
        code(engine.list_keys(Some(1001), None)),
        "ValidationException"
    );
    assert!(engine.list_keys(Some(1000), None).is_ok());
    for bad in ["garbage", "alias/x", "0000000001"] {
        assert_eq!(
            code(engine.list_keys(Some(5), Some(bad))),
            "InvalidMarkerException",
            "{bad}"
        );
    }
}

#[test]
fn list_keys_of_an_empty_engine_is_empty() {
    let engine = Engine::in_memory().unwrap();
    let page = engine.list_keys(None, None).unwrap();
    assert!(page.items.is_empty());
    assert!(!page.truncated);
    assert_eq!(page.next_marker, None);
}

// ---- UpdateKeyDescription, EnableKey, DisableKey ------------------------------------------------

#[test]
fn update_key_description() {
    let engine = Engine::in_memory().unwrap();
    let key = new_key(&engine);
    engine.update_key_description(&key, "new words").unwrap();
    assert_eq!(engine.describe_key(&key).unwrap().description, "new words");
    engine.update_key_description(&key, "").unwrap();
    assert_eq!(engine.describe_key(&key).unwrap().description, "");
    assert_eq!(
        code(engine.update_key_description(&key, &"x".repeat(8193))),
        "ValidationException"
    );
    assert_eq!(engine.describe_key(&key).unwrap().description, "");
    let unknown = uuid::Uuid::new_v4().to_string();
    assert_eq!(
        code(engine.update_key_description(&unknown, "x")),
        "NotFoundException"
    );
}

#[test]
fn disable_and_enable_key() {
    let engine = Engine::in_memory().unwrap();
    let key = new_key(&engine);
    let blob = encrypt(&engine, &key, b"kept").unwrap();

    engine.disable_key(&key).unwrap();
    let meta = engine.describe_key(&key).unwrap();
    assert_eq!(meta.key_state, KeyState::Disabled);
    assert!(!meta.enabled);
    assert_eq!(code(encrypt(&engine, &key, b"x")), "DisabledException");
    assert_eq!(code(decrypt(&engine, &blob)), "DisabledException");
    // Disabling a disabled key is allowed and changes nothing.
    engine.disable_key(&key).unwrap();
    assert_eq!(state_of(&engine, &key), KeyState::Disabled);

    engine.enable_key(&key).unwrap();
    let meta = engine.describe_key(&key).unwrap();
    assert_eq!(meta.key_state, KeyState::Enabled);
    assert!(meta.enabled);
    assert_eq!(decrypt(&engine, &blob).unwrap(), b"kept");
    engine.enable_key(&key).unwrap();
    assert_eq!(state_of(&engine, &key), KeyState::Enabled);
}

// ---- ScheduleKeyDeletion, CancelKeyDeletion, deletion ---------------------------------------------

#[test]
fn schedule_key_deletion_window_is_7_to_30_days_default_30() {
    let (engine, clock) = clocked();
    for bad in [0, 1, 6, 31, 365] {
        let key = new_key(&engine);
        assert_eq!(
            code(engine.schedule_key_deletion(&key, Some(bad))),
            "ValidationException",
            "{bad} days"
        );
        assert_eq!(state_of(&engine, &key), KeyState::Enabled);
    }
    for (window, expected_days) in [(None, 30), (Some(7), 7), (Some(19), 19), (Some(30), 30)] {
        let key = new_key(&engine);
        let now = clock.now();
        let response = engine.schedule_key_deletion(&key, window).unwrap();
        let arn = engine.describe_key(&key).unwrap().arn;
        assert_eq!(response.key_id, arn);
        assert_eq!(response.key_state, KeyState::PendingDeletion);
        assert_eq!(response.pending_window_in_days, expected_days);
        assert_eq!(
            response.deletion_date,
            Some(Timestamp(now.0 + i64::from(expected_days) * DAY_MS))
        );
        let meta = engine.describe_key(&key).unwrap();
        assert_eq!(meta.key_state, KeyState::PendingDeletion);
        assert!(!meta.enabled);
        assert_eq!(meta.deletion_date, response.deletion_date);
        assert_eq!(meta.pending_deletion_window_in_days, Some(expected_days));
    }
}

#[test]
fn cancel_key_deletion_returns_the_key_disabled() {
    let engine = Engine::in_memory().unwrap();
    let key = new_key(&engine);
    let blob = encrypt(&engine, &key, b"survives").unwrap();
    engine.schedule_key_deletion(&key, None).unwrap();
    assert_eq!(
        code(decrypt(&engine, &blob)),
        "KMSInvalidStateException",
        "a key pending deletion cannot decrypt"
    );
    let arn = engine.cancel_key_deletion(&key).unwrap();
    assert_eq!(arn, engine.describe_key(&key).unwrap().arn);
    let meta = engine.describe_key(&key).unwrap();
    assert_eq!(meta.key_state, KeyState::Disabled);
    assert_eq!(meta.deletion_date, None);
    assert_eq!(meta.pending_deletion_window_in_days, None);
    assert_eq!(code(decrypt(&engine, &blob)), "DisabledException");
    engine.enable_key(&key).unwrap();
    assert_eq!(decrypt(&engine, &blob).unwrap(), b"survives");
    // Nothing to cancel now.
    assert_eq!(
        code(engine.cancel_key_deletion(&key)),
        "KMSInvalidStateException"
    );
}

#[test]
fn key_is_deleted_with_its_aliases_when_the_date_passes() {
    let (engine, clock) = clocked();
    let doomed = new_key(&engine);
    let kept = new_key(&engine);
    engine.create_alias("alias/doomed-1", &doomed).unwrap();
    engine.create_alias("alias/doomed-2", &doomed).unwrap();
    engine.create_alias("alias/kept", &kept).unwrap();
    let blob = encrypt(&engine, &doomed, b"gone soon").unwrap();
    let kept_blob = encrypt(&engine, &kept, b"stays").unwrap();
    engine.schedule_key_deletion(&doomed, Some(7)).unwrap();

    // One minute before the date: still pending, aliases still there.
    clock.advance(Duration::from_millis(7 * DAY_MS as u64 - 60_000));
    assert_eq!(state_of(&engine, &doomed), KeyState::PendingDeletion);
    assert_eq!(
        alias_names(&engine, None),
        ["alias/doomed-1", "alias/doomed-2", "alias/kept"]
    );

    // Past the date: gone.
    clock.advance(Duration::from_secs(120));
    assert_eq!(code(engine.describe_key(&doomed)), "NotFoundException");
    assert!(!all_key_ids(&engine).contains(&doomed));
    assert_eq!(alias_names(&engine, None), ["alias/kept"]);
    assert_eq!(
        code(engine.describe_key("alias/doomed-1")),
        "NotFoundException"
    );
    // The data plane no longer knows the key or its aliases.
    assert_eq!(code(encrypt(&engine, &doomed, b"x")), "NotFoundException");
    assert_eq!(
        code(encrypt(&engine, "alias/doomed-2", b"x")),
        "NotFoundException"
    );
    assert_eq!(code(decrypt(&engine, &blob)), "InvalidCiphertextException");
    // Every other operation on it says NotFound.
    assert_eq!(
        code(engine.cancel_key_deletion(&doomed)),
        "NotFoundException"
    );
    assert_eq!(code(engine.enable_key(&doomed)), "NotFoundException");
    assert_eq!(
        code(engine.list_resource_tags(&doomed, None, None)),
        "NotFoundException"
    );
    // The alias name is free again.
    engine.create_alias("alias/doomed-1", &kept).unwrap();
    // The other key is untouched.
    assert_eq!(decrypt(&engine, &kept_blob).unwrap(), b"stays");
    assert_eq!(
        engine.describe_key("alias/kept").unwrap().key_id,
        kept,
        "other aliases survive"
    );
}

#[test]
fn deletion_runs_through_run_due_tasks_and_is_kept_by_the_store() {
    let clock = Arc::new(ManualClock::starting_now());
    let store = Arc::new(MemoryKeyStore::new(LockPolicy::Require));
    let engine = engine_on(&clock, store.clone());
    let doomed = new_key(&engine);
    let kept = new_key(&engine);
    engine.create_alias("alias/doomed", &doomed).unwrap();
    engine.schedule_key_deletion(&doomed, Some(30)).unwrap();
    clock.advance_days(30);
    engine.run_due_tasks().unwrap();
    // The data plane learns of the deletion without another control-plane call.
    assert_eq!(code(encrypt(&engine, &doomed, b"x")), "NotFoundException");
    assert_eq!(
        code(encrypt(&engine, "alias/doomed", b"x")),
        "NotFoundException"
    );
    // A new engine on the same store does not bring it back.
    let reopened = engine_on(&clock, store);
    assert_eq!(all_key_ids(&reopened), BTreeSet::from([kept.clone()]));
    assert!(alias_names(&reopened, None).is_empty());
    assert_eq!(code(reopened.describe_key(&doomed)), "NotFoundException");
}

#[test]
fn a_store_reopened_after_the_deletion_date_deletes_at_start() {
    let clock = Arc::new(ManualClock::starting_now());
    let store = Arc::new(MemoryKeyStore::new(LockPolicy::Require));
    let engine = engine_on(&clock, store.clone());
    let doomed = new_key(&engine);
    engine.schedule_key_deletion(&doomed, Some(7)).unwrap();
    drop(engine);
    clock.advance_days(8);
    let reopened = engine_on(&clock, store);
    // Data plane first: the key must already be gone.
    assert_eq!(code(encrypt(&reopened, &doomed, b"x")), "NotFoundException");
    assert_eq!(code(reopened.describe_key(&doomed)), "NotFoundException");
}

// ---- aliases ------------------------------------------------------------------------------------

#[test]
fn create_update_delete_and_list_aliases() {
    let (engine, clock) = clocked();
    let a = new_key(&engine);
    let b = new_key(&engine);
    let created_at = clock.now();
    engine.create_alias("alias/app", &a).unwrap();
    engine.create_alias("alias/team/app_2-x", &a).unwrap();
    engine.create_alias("alias/other", &b).unwrap();
    assert_eq!(engine.describe_key("alias/app").unwrap().key_id, a);

    assert_eq!(
        code(engine.create_alias("alias/app", &b)),
        "AlreadyExistsException"
    );
    assert_eq!(engine.describe_key("alias/app").unwrap().key_id, a);

    let all = engine.list_aliases(None, Some(100), None).unwrap();
    assert_eq!(
        all.items
            .iter()
            .filter(|x| x.target_key_id.is_some())
            .map(|x| x.alias_name.as_str())
            .collect::<Vec<_>>(),
        ["alias/app", "alias/other", "alias/team/app_2-x"]
    );
    assert!(!all.truncated);
    assert_eq!(
        alias_names(&engine, Some(&a)),
        ["alias/app", "alias/team/app_2-x"]
    );
    // ListAliases takes a key id or key ARN only (issue 17: the identifier table).
    let e = engine
        .list_aliases(Some("alias/other"), None, None)
        .unwrap_err();
    assert_eq!(
        (e.code(), e.message()),
        ("NotFoundException", "Invalid keyId 'alias/other'")
    );
    assert_eq!(alias_names(&engine, Some(&b)), ["alias/other"]);
    let first = &all.items[0];
    assert_eq!(first.alias_name, "alias/app");
    assert_eq!(first.target_key_id.as_deref(), Some(a.as_str()));
    assert_eq!(first.creation_date, Some(created_at));
    assert_eq!(first.last_updated_date, Some(created_at));

    // UpdateAlias moves it; the data plane follows.
    clock.advance_days(1);
    engine.update_alias("alias/app", &b).unwrap();
    assert_eq!(engine.describe_key("alias/app").unwrap().key_id, b);
    let sealed = engine
        .encrypt(&EncryptRequest::new("alias/app", b"to b"))
        .unwrap();
    assert_eq!(sealed.key_id, engine.describe_key(&b).unwrap().arn);
    let entry = engine
        .list_aliases(Some(&b), None, None)
        .unwrap()
        .items
        .into_iter()
        .find(|x| x.alias_name == "alias/app")
        .unwrap();
    assert_eq!(entry.creation_date, Some(created_at));
    assert_eq!(entry.last_updated_date, Some(clock.now()));
    assert_eq!(alias_names(&engine, Some(&a)), ["alias/team/app_2-x"]);

    assert_eq!(
        code(engine.update_alias("alias/missing", &b)),
        "NotFoundException"
    );
    let unknown = uuid::Uuid::new_v4().to_string();
    assert_eq!(
        code(engine.update_alias("alias/app", &unknown)),
        "NotFoundException"
    );
    assert_eq!(
        code(engine.create_alias("alias/new", &unknown)),
        "NotFoundException"
    );

    // DeleteAlias removes only the alias.
    engine.delete_alias("alias/app").unwrap();
    assert_eq!(code(engine.describe_key("alias/app")), "NotFoundException");
    assert_eq!(
        code(encrypt(&engine, "alias/app", b"x")),
        "NotFoundException"
    );
    assert_eq!(state_of(&engine, &b), KeyState::Enabled);
    assert_eq!(decrypt(&engine, &sealed.ciphertext_blob).unwrap(), b"to b");
    assert_eq!(code(engine.delete_alias("alias/app")), "NotFoundException");
    assert_eq!(
        alias_names(&engine, None),
        ["alias/other", "alias/team/app_2-x"]
    );
}

#[test]
fn reserved_and_malformed_alias_names_are_refused() {
    let engine = Engine::in_memory().unwrap();
    let key = new_key(&engine);
    engine.create_alias("alias/ok", &key).unwrap();
    let too_long = format!("alias/{}", "a".repeat(251));
    let longest = format!("alias/{}", "a".repeat(250));
    let bad = [
        "app",
        "alias",
        "alias/",
        "aliases/app",
        "ALIAS/app",
        "alias/aws/s3",
        "alias/aws/",
    ];
    // The service: no `alias/` prefix is ValidationException; `alias/aws/` is
    // NotAuthorizedException; the model's pattern and length are the generated
    // ValidationException.
    for name in bad {
        let expected = if name.starts_with("alias/aws/") {
            "NotAuthorizedException"
        } else {
            "ValidationException"
        };
        assert_eq!(
            code(engine.create_alias(name, &key)),
            expected,
            "create {name:?}"
        );
        assert_eq!(
            code(engine.update_alias(name, &key)),
            expected,
            "update {name:?}"
        );
    }
    // Names that break the model's pattern or length: the service's ValidationException.
    let invalid = [
        (
            "alias/has space",
            "Member must satisfy regular expression pattern: ^[a-zA-Z0-9:/_-]+$",
        ),
        (
            "alias/star*",
            "Member must satisfy regular expression pattern: ^[a-zA-Z0-9:/_-]+$",
        ),
        (
            "alias/ü",
            "Member must satisfy regular expression pattern: ^[a-zA-Z0-9:/_-]+$",
        ),
        (
            too_long.as_str(),
            "Member must have length less than or equal to 256",
        ),
    ];
    for (name, constraint) in invalid {
        let expected = format!(
            "1 validation error detected: Value '{name}' at 'aliasName' failed to satisfy \
             constraint: {constraint}"
        );
        for result in [
            engine.create_alias(name, &key),
            engine.update_alias(name, &key),
        ] {
            let e = result.unwrap_err();
            assert_eq!(e.code(), "ValidationException", "{name:?}");
            assert_eq!(e.message(), expected);
        }
    }
    assert_eq!(alias_names(&engine, None), ["alias/ok"]);
    engine.create_alias(&longest, &key).unwrap();
    engine.create_alias("alias/awsome", &key).unwrap();
    assert_eq!(alias_names(&engine, None).len(), 3);
}

#[test]
fn list_aliases_pages_with_limit_and_marker() {
    let engine = Engine::in_memory().unwrap();
    let key = new_key(&engine);
    let names: Vec<String> = (0..12).map(|i| format!("alias/a{i:02}")).collect();
    for name in &names {
        engine.create_alias(name, &key).unwrap();
    }
    // The integrated services' predefined aliases page along with them, in name order.
    let mut expected: Vec<String> = names.clone();
    expected.extend(
        keyplane::INTEGRATED_SERVICES
            .iter()
            .map(|s| format!("alias/aws/{s}")),
    );
    expected.sort();
    let mut seen = Vec::new();
    let mut marker = None;
    for expected_len in expected.chunks(5).map(<[String]>::len) {
        let page = engine
            .list_aliases(None, Some(5), marker.as_deref())
            .unwrap();
        assert_eq!(page.items.len(), expected_len);
        seen.extend(page.items.into_iter().map(|a| a.alias_name));
        assert_eq!(page.truncated, page.next_marker.is_some());
        marker = page.next_marker;
    }
    assert_eq!(marker, None);
    assert_eq!(seen, expected);
    assert_eq!(
        code(engine.list_aliases(None, Some(0), None)),
        "ValidationException"
    );
    assert_eq!(
        code(engine.list_aliases(None, Some(101), None)),
        "ValidationException"
    );
    assert_eq!(
        code(engine.list_aliases(None, Some(5), Some("bogus"))),
        "InvalidMarkerException"
    );
    let unknown = uuid::Uuid::new_v4().to_string();
    assert_eq!(
        code(engine.list_aliases(Some(&unknown), None, None)),
        "NotFoundException"
    );
}

// ---- tags ---------------------------------------------------------------------------------------

#[test]
fn tag_untag_and_list_tags() {
    let engine = Engine::in_memory().unwrap();
    let meta = engine
        .create_key(CreateKeyRequest {
            tags: vec![tag("team", "payments"), tag("env", "prod")],
            ..Default::default()
        })
        .unwrap();
    let key = meta.key_id;
    assert_eq!(
        tags_of(&engine, &key),
        [
            ("env".to_owned(), "prod".to_owned()),
            ("team".to_owned(), "payments".to_owned())
        ]
    );
    // TagResource adds new tags and overwrites existing values.
    engine
        .tag_resource(&key, vec![tag("env", "staging"), tag("cost", "")])
        .unwrap();
    assert_eq!(
        tags_of(&engine, &key),
        [
            ("cost".to_owned(), String::new()),
            ("env".to_owned(), "staging".to_owned()),
            ("team".to_owned(), "payments".to_owned())
        ]
    );
    // UntagResource removes by key; unknown keys are ignored.
    engine.untag_resource(&key, &["env", "not-there"]).unwrap();
    assert_eq!(
        tags_of(&engine, &key),
        [
            ("cost".to_owned(), String::new()),
            ("team".to_owned(), "payments".to_owned())
        ]
    );
    // TagResource takes a key id or key ARN, not an alias (issue 17: the identifier table).
    engine.create_alias("alias/tagged", &key).unwrap();
    let e = engine
        .tag_resource("alias/tagged", vec![tag("via", "alias")])
        .unwrap_err();
    assert_eq!(
        (e.code(), e.message()),
        ("NotFoundException", "Invalid keyId 'alias/tagged'")
    );
    let arn = engine.describe_key(&key).unwrap().arn;
    engine.tag_resource(&arn, vec![tag("via", "arn")]).unwrap();
    assert_eq!(tags_of(&engine, &key).len(), 3);
}

#[test]
fn tag_limits_and_reserved_prefix() {
    let engine = Engine::in_memory().unwrap();
    let key = new_key(&engine);
    engine.tag_resource(&key, vec![tag("keep", "me")]).unwrap();
    let before = tags_of(&engine, &key);
    let bad_sets = [
        vec![tag("aws:owner", "x")],
        vec![tag("", "x")],
        vec![tag(&"k".repeat(129), "x")],
        vec![tag("k", &"v".repeat(257))],
        // One good, one bad: nothing is applied.
        vec![tag("fine", "x"), tag("aws:cloudformation:stack", "y")],
    ];
    for set in bad_sets {
        assert_eq!(code(engine.tag_resource(&key, set)), "TagException");
        assert_eq!(
            tags_of(&engine, &key),
            before,
            "a refused TagResource changes nothing"
        );
    }
    engine
        .tag_resource(&key, vec![tag(&"k".repeat(128), &"v".repeat(256))])
        .unwrap();
    // "aws" without the colon is not the reserved prefix.
    engine.tag_resource(&key, vec![tag("awsome", "1")]).unwrap();

    // CreateKey checks tags the same way, and creates nothing on failure.
    let keys_before = all_key_ids(&engine).len();
    assert_eq!(
        code(engine.create_key(CreateKeyRequest {
            tags: vec![tag("aws:x", "y")],
            ..Default::default()
        })),
        "TagException"
    );
    let fifty_one: Vec<Tag> = (0..51).map(|i| tag(&format!("t{i:02}"), "v")).collect();
    assert_eq!(
        code(engine.create_key(CreateKeyRequest {
            tags: fifty_one.clone(),
            ..Default::default()
        })),
        "TagException"
    );
    assert_eq!(all_key_ids(&engine).len(), keys_before);

    // Fifty tags is the most a key carries.
    let fifty = engine
        .create_key(CreateKeyRequest {
            tags: fifty_one[..50].to_vec(),
            ..Default::default()
        })
        .unwrap()
        .key_id;
    assert_eq!(tags_of(&engine, &fifty).len(), 50);
    assert_eq!(
        code(engine.tag_resource(&fifty, vec![tag("one-more", "v")])),
        "TagException"
    );
    // Overwriting an existing tag of a full key is fine.
    engine
        .tag_resource(&fifty, vec![tag("t00", "changed")])
        .unwrap();
    let listed = tags_of(&engine, &fifty);
    assert_eq!(listed.len(), 50);
    assert_eq!(listed[0], ("t00".to_owned(), "changed".to_owned()));
    // Tagging up to 50 in steps works; past it fails.
    let other = new_key(&engine);
    engine
        .tag_resource(&other, fifty_one[..30].to_vec())
        .unwrap();
    assert_eq!(
        code(engine.tag_resource(&other, fifty_one[30..].to_vec())),
        "TagException"
    );
    assert_eq!(tags_of(&engine, &other).len(), 30);
}

#[test]
fn list_resource_tags_pages() {
    let engine = Engine::in_memory().unwrap();
    let tags: Vec<Tag> = (0..23).map(|i| tag(&format!("k{i:02}"), "v")).collect();
    let key = engine
        .create_key(CreateKeyRequest {
            tags: tags.clone(),
            ..Default::default()
        })
        .unwrap()
        .key_id;
    let mut seen = Vec::new();
    let mut marker = None;
    loop {
        let page = engine
            .list_resource_tags(&key, Some(10), marker.as_deref())
            .unwrap();
        seen.extend(page.items);
        if !page.truncated {
            assert_eq!(page.next_marker, None);
            break;
        }
        marker = page.next_marker;
    }
    assert_eq!(seen, tags);
    assert_eq!(
        code(engine.list_resource_tags(&key, Some(0), None)),
        "ValidationException"
    );
    assert_eq!(
        code(engine.list_resource_tags(&key, Some(51), None)),
        "ValidationException"
    );
}

// ---- rotation -----------------------------------------------------------------------------------

#[test]
fn enable_key_rotation_period_is_90_to_2560_days_default_365() {
    let (engine, clock) = clocked();
    let key = new_key(&engine);
    let status = engine.get_key_rotation_status(&key).unwrap();
    assert!(!status.key_rotation_enabled);
    assert_eq!(status.rotation_period_in_days, None);
    assert_eq!(status.next_rotation_date, None);
    assert_eq!(status.key_id, engine.describe_key(&key).unwrap().arn);

    for bad in [0, 1, 89, 2561, 10_000] {
        assert_eq!(
            code(engine.enable_key_rotation(&key, Some(bad))),
            "ValidationException",
            "{bad}"
        );
    }
    assert!(
        !engine
            .get_key_rotation_status(&key)
            .unwrap()
            .key_rotation_enabled
    );

    for (period, expected) in [(None, 365), (Some(90), 90), (Some(2560), 2560)] {
        let now = clock.now();
        engine.enable_key_rotation(&key, period).unwrap();
        let status = engine.get_key_rotation_status(&key).unwrap();
        assert!(status.key_rotation_enabled);
        assert_eq!(status.rotation_period_in_days, Some(expected));
        assert_eq!(
            status.next_rotation_date,
            Some(Timestamp(now.0 + i64::from(expected) * DAY_MS))
        );
        assert!(engine.describe_key(&key).unwrap().key_rotation_enabled);
    }
    engine.disable_key_rotation(&key).unwrap();
    let status = engine.get_key_rotation_status(&key).unwrap();
    assert!(!status.key_rotation_enabled);
    assert_eq!(status.next_rotation_date, None);
    assert!(!engine.describe_key(&key).unwrap().key_rotation_enabled);
}

#[test]
fn automatic_rotation_happens_when_the_clock_passes_the_next_rotation_date() {
    let (engine, clock) = clocked();
    let key = new_key(&engine);
    let original = engine.describe_key(&key).unwrap().current_key_material_id;
    let old_blob = encrypt(&engine, &key, b"before").unwrap();
    engine.enable_key_rotation(&key, Some(90)).unwrap();
    let first_due = engine
        .get_key_rotation_status(&key)
        .unwrap()
        .next_rotation_date
        .unwrap();

    clock.advance_days(89);
    assert!(engine
        .list_key_rotations(&key, None, None)
        .unwrap()
        .items
        .is_empty());
    assert_eq!(
        engine.describe_key(&key).unwrap().current_key_material_id,
        original
    );

    clock.advance_days(1);
    let rotated_at = clock.now();
    assert_eq!(rotated_at, first_due);
    let rotations = engine.list_key_rotations(&key, None, None).unwrap().items;
    assert_eq!(rotations.len(), 1);
    assert_eq!(rotations[0].rotation_type, Some(RotationType::Automatic));
    assert_eq!(rotations[0].rotation_date, Some(rotated_at));
    assert_eq!(rotations[0].key_id, engine.describe_key(&key).unwrap().arn);
    let current = engine.describe_key(&key).unwrap().current_key_material_id;
    assert_ne!(current, original);
    assert_eq!(
        current.as_deref(),
        Some(rotations[0].key_material_id.as_str())
    );
    let status = engine.get_key_rotation_status(&key).unwrap();
    assert_eq!(
        status.next_rotation_date,
        Some(Timestamp(rotated_at.0 + 90 * DAY_MS))
    );

    // New data uses version 2; old data still decrypts.
    let new_blob = encrypt(&engine, &key, b"after").unwrap();
    assert_eq!(
        keyplane::ciphertext::parse(&new_blob).unwrap().key_version,
        2
    );
    assert_eq!(decrypt(&engine, &old_blob).unwrap(), b"before");
    let opened = engine.decrypt(&DecryptRequest::new(&old_blob)).unwrap();
    assert_eq!(Some(opened.key_material_id), original);

    // Another period: a second automatic rotation.
    clock.advance_days(90);
    engine.run_due_tasks().unwrap();
    let rotations = engine.list_key_rotations(&key, None, None).unwrap().items;
    assert_eq!(rotations.len(), 2);
    assert!(rotations
        .iter()
        .all(|r| r.rotation_type == Some(RotationType::Automatic)));
    assert_eq!(
        keyplane::ciphertext::parse(&encrypt(&engine, &key, b"x").unwrap())
            .unwrap()
            .key_version,
        3
    );
}

#[test]
fn disabled_key_does_not_rotate_until_enabled_again() {
    let (engine, clock) = clocked();
    let key = new_key(&engine);
    engine.enable_key_rotation(&key, Some(90)).unwrap();
    engine.disable_key(&key).unwrap();
    clock.advance_days(100);
    assert!(engine
        .list_key_rotations(&key, None, None)
        .unwrap()
        .items
        .is_empty());
    engine.enable_key(&key).unwrap();
    // The overdue rotation happens at the next control-plane call.
    assert_eq!(
        engine
            .list_key_rotations(&key, None, None)
            .unwrap()
            .items
            .len(),
        1
    );
}

#[test]
fn rotate_on_demand_is_limited_to_25_and_list_key_rotations_pages() {
    let (engine, clock) = clocked();
    let key = new_key(&engine);
    let arn = engine.describe_key(&key).unwrap().arn;
    let mut materials = vec![engine
        .describe_key(&key)
        .unwrap()
        .current_key_material_id
        .unwrap()];
    let mut blobs = vec![encrypt(&engine, &key, b"v1").unwrap()];
    for i in 0..25 {
        clock.advance(Duration::from_secs(60));
        assert_eq!(engine.rotate_key_on_demand(&key).unwrap(), arn);
        let material = engine
            .describe_key(&key)
            .unwrap()
            .current_key_material_id
            .unwrap();
        assert!(
            !materials.contains(&material),
            "rotation {i} made new material"
        );
        materials.push(material);
        blobs.push(encrypt(&engine, &key, format!("v{}", i + 2).as_bytes()).unwrap());
    }
    assert_eq!(
        code(engine.rotate_key_on_demand(&key)),
        "LimitExceededException"
    );
    assert_eq!(materials.len(), 26);

    // Every version still decrypts its own data.
    for (i, blob) in blobs.iter().enumerate() {
        assert_eq!(
            keyplane::ciphertext::parse(blob).unwrap().key_version,
            i as u32 + 1
        );
        assert_eq!(
            decrypt(&engine, blob).unwrap(),
            format!("v{}", i + 1).as_bytes()
        );
    }

    // ListKeyRotations: the 25 rotations, oldest first, in pages of 10.
    let mut listed = Vec::new();
    let mut marker = None;
    let mut pages = 0;
    loop {
        let page = engine
            .list_key_rotations(&key, Some(10), marker.as_deref())
            .unwrap();
        pages += 1;
        listed.extend(page.items);
        if !page.truncated {
            break;
        }
        marker = page.next_marker;
    }
    assert_eq!(pages, 3);
    assert_eq!(listed.len(), 25);
    for (i, entry) in listed.iter().enumerate() {
        assert_eq!(entry.rotation_type, Some(RotationType::OnDemand));
        assert_eq!(entry.key_id, arn);
        assert_eq!(entry.key_material_id, materials[i + 1]);
    }
    assert!(listed
        .windows(2)
        .all(|w| w[0].rotation_date < w[1].rotation_date));
    assert_eq!(
        code(engine.list_key_rotations(&key, Some(10), Some("nope"))),
        "InvalidMarkerException"
    );
    assert_eq!(
        code(engine.list_key_rotations(&key, Some(0), None)),
        "ValidationException"
    );
    assert_eq!(
        code(engine.list_key_rotations(&key, Some(1001), None)),
        "ValidationException"
    );

    // The on-demand limit does not stop automatic rotation.
    engine.enable_key_rotation(&key, Some(90)).unwrap();
    clock.advance_days(90);
    let all = engine.list_key_rotations(&key, Some(1000), None).unwrap();
    assert_eq!(all.items.len(), 26);
    assert_eq!(all.items[25].rotation_type, Some(RotationType::Automatic));
}

// ---- the key state table ------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Encrypt,
    Decrypt,
    GenerateDataKey,
    Describe,
    ListTags,
    GetRotationStatus,
    ListRotations,
    Enable,
    Disable,
    Schedule,
    Cancel,
    UpdateDescription,
    Tag,
    Untag,
    CreateAlias,
    UpdateAlias,
    EnableRotation,
    DisableRotation,
    RotateOnDemand,
}

const ALL_OPS: [Op; 19] = [
    Op::Encrypt,
    Op::Decrypt,
    Op::GenerateDataKey,
    Op::Describe,
    Op::ListTags,
    Op::GetRotationStatus,
    Op::ListRotations,
    Op::Enable,
    Op::Disable,
    Op::Schedule,
    Op::Cancel,
    Op::UpdateDescription,
    Op::Tag,
    Op::Untag,
    Op::CreateAlias,
    Op::UpdateAlias,
    Op::EnableRotation,
    Op::DisableRotation,
    Op::RotateOnDemand,
];

/// Runs `op` on `key`. `helper` is an Enabled key that UpdateAlias first points a new alias
/// `alias/helper-<n>` to; `blob` is a ciphertext made under `key` (when it ever had material).
fn run_op(
    engine: &Engine,
    op: Op,
    key: &str,
    blob: Option<&[u8]>,
    helper: &str,
    n: usize,
) -> keyplane::Result<()> {
    match op {
        Op::Encrypt => encrypt(engine, key, b"data").map(drop),
        Op::Decrypt => decrypt(engine, blob.expect("a key with material")).map(drop),
        Op::GenerateDataKey => engine
            .generate_data_key(&GenerateDataKeyRequest::new(key, DataKeySpec::Aes256))
            .map(drop),
        Op::Describe => engine.describe_key(key).map(drop),
        Op::ListTags => engine.list_resource_tags(key, None, None).map(drop),
        Op::GetRotationStatus => engine.get_key_rotation_status(key).map(drop),
        Op::ListRotations => engine.list_key_rotations(key, None, None).map(drop),
        Op::Enable => engine.enable_key(key),
        Op::Disable => engine.disable_key(key),
        Op::Schedule => engine.schedule_key_deletion(key, Some(7)).map(drop),
        Op::Cancel => engine.cancel_key_deletion(key).map(drop),
        Op::UpdateDescription => engine.update_key_description(key, "changed"),
        Op::Tag => engine.tag_resource(key, vec![tag("k", "v")]),
        Op::Untag => engine.untag_resource(key, &["k"]),
        Op::CreateAlias => engine.create_alias(&format!("alias/new-{n}"), key),
        Op::UpdateAlias => {
            let name = format!("alias/helper-{n}");
            engine.create_alias(&name, helper).unwrap();
            engine.update_alias(&name, key)
        }
        Op::EnableRotation => engine.enable_key_rotation(key, None),
        Op::DisableRotation => engine.disable_key_rotation(key),
        Op::RotateOnDemand => engine.rotate_key_on_demand(key).map(drop),
    }
}

/// The outcome the service's key state table gives: `Ok(state after)` or `Err(exception)`.
fn expected(state: KeyState, op: Op) -> Result<KeyState, &'static str> {
    use KeyState as S;
    let crypto_error = match state {
        S::Disabled => "DisabledException",
        S::Unavailable => "KeyUnavailableException",
        _ => "KMSInvalidStateException",
    };
    match op {
        Op::Describe | Op::ListTags | Op::GetRotationStatus | Op::ListRotations => Ok(state),
        Op::Encrypt | Op::Decrypt | Op::GenerateDataKey => match state {
            S::Enabled => Ok(state),
            _ => Err(crypto_error),
        },
        Op::Enable | Op::Disable => match state {
            S::Enabled | S::Disabled => Ok(if op == Op::Enable {
                S::Enabled
            } else {
                S::Disabled
            }),
            _ => Err(crypto_error),
        },
        Op::Schedule => match state {
            S::PendingDeletion => Err("KMSInvalidStateException"),
            _ => Ok(S::PendingDeletion),
        },
        Op::Cancel => Err("KMSInvalidStateException"), // never PendingDeletion in this table's start states
        Op::UpdateDescription | Op::Tag | Op::Untag | Op::CreateAlias | Op::UpdateAlias => {
            match state {
                S::PendingDeletion => Err("KMSInvalidStateException"),
                _ => Ok(state),
            }
        }
        Op::EnableRotation | Op::DisableRotation | Op::RotateOnDemand => match state {
            S::Enabled => Ok(state),
            _ => Err(crypto_error),
        },
    }
}

/// Creates a key in `state` (not Unavailable), with a ciphertext if it has material.
fn key_in_state(engine: &Engine, state: KeyState) -> (String, Option<Vec<u8>>) {
    match state {
        KeyState::PendingImport => (external_key(engine), None),
        _ => {
            let key = new_key(engine);
            let blob = encrypt(engine, &key, b"data").unwrap();
            match state {
                KeyState::Enabled => {}
                KeyState::Disabled => engine.disable_key(&key).unwrap(),
                KeyState::PendingDeletion => {
                    engine.schedule_key_deletion(&key, None).unwrap();
                }
                other => unreachable!("{other}"),
            }
            (key, Some(blob))
        }
    }
}

#[test]
fn every_operation_in_every_key_state_follows_the_state_table() {
    let engine = Engine::in_memory().unwrap();
    let helper = new_key(&engine);
    let mut n = 0;
    for state in [
        KeyState::Enabled,
        KeyState::Disabled,
        KeyState::PendingDeletion,
        KeyState::PendingImport,
    ] {
        for op in ALL_OPS {
            if op == Op::Decrypt && state == KeyState::PendingImport {
                continue; // a key that never had material has no ciphertext to decrypt
            }
            n += 1;
            let (key, blob) = key_in_state(&engine, state);
            assert_eq!(state_of(&engine, &key), state);
            let result = run_op(&engine, op, &key, blob.as_deref(), &helper, n);
            let want = if op == Op::Cancel && state == KeyState::PendingDeletion {
                Ok(KeyState::Disabled)
            } else {
                expected(state, op)
            };
            match (want, result) {
                (Ok(after), Ok(())) => {
                    assert_eq!(state_of(&engine, &key), after, "{op:?} on a {state} key")
                }
                (Err(code), Err(e)) => {
                    assert_eq!(e.code(), code, "{op:?} on a {state} key: {e}");
                    assert_eq!(
                        state_of(&engine, &key),
                        state,
                        "a refused {op:?} leaves a {state} key as it was"
                    );
                }
                (want, got) => panic!("{op:?} on a {state} key: expected {want:?}, got {got:?}"),
            }
        }
    }
}

#[test]
fn pending_import_key_cancelled_deletion_returns_to_pending_import() {
    let (engine, clock) = clocked();
    let key = external_key(&engine);
    engine.schedule_key_deletion(&key, Some(7)).unwrap();
    assert_eq!(state_of(&engine, &key), KeyState::PendingDeletion);
    engine.cancel_key_deletion(&key).unwrap();
    assert_eq!(state_of(&engine, &key), KeyState::PendingImport);
    engine.schedule_key_deletion(&key, Some(7)).unwrap();
    clock.advance_days(7);
    assert_eq!(code(engine.describe_key(&key)), "NotFoundException");
}

#[test]
fn disabled_key_deletion_can_be_scheduled_cancelled_and_the_key_reenabled() {
    let engine = Engine::in_memory().unwrap();
    let key = new_key(&engine);
    engine.disable_key(&key).unwrap();
    engine.schedule_key_deletion(&key, None).unwrap();
    assert_eq!(state_of(&engine, &key), KeyState::PendingDeletion);
    assert_eq!(
        code(engine.schedule_key_deletion(&key, None)),
        "KMSInvalidStateException"
    );
    engine.cancel_key_deletion(&key).unwrap();
    assert_eq!(state_of(&engine, &key), KeyState::Disabled);
    engine.enable_key(&key).unwrap();
    assert_eq!(state_of(&engine, &key), KeyState::Enabled);
    assert!(encrypt(&engine, &key, b"back").is_ok());
}

// ---- Unavailable --------------------------------------------------------------------------------

#[test]
fn key_whose_material_is_lost_is_unavailable_while_others_keep_working() {
    let store = Arc::new(MemoryKeyStore::new(LockPolicy::Require));
    let first = Engine::builder().store(store.clone()).build().unwrap();
    let lost = new_key(&first);
    let fine = new_key(&first);
    first.create_alias("alias/lost", &lost).unwrap();
    let lost_blob = encrypt(&first, &lost, b"lost data").unwrap();
    let fine_blob = encrypt(&first, &fine, b"fine data").unwrap();
    drop(first);

    assert!(store.forget_material(uuid_of(&lost), 1));
    assert!(!store.forget_material(uuid_of(&lost), 1), "already gone");
    let second = Engine::builder().store(store.clone()).build().unwrap();

    let meta = second.describe_key(&lost).unwrap();
    assert_eq!(meta.key_state, KeyState::Unavailable);
    assert!(!meta.enabled);
    assert_eq!(
        second.describe_key("alias/lost").unwrap().key_state,
        KeyState::Unavailable
    );
    assert_eq!(
        code(encrypt(&second, &lost, b"x")),
        "KeyUnavailableException"
    );
    assert_eq!(
        code(encrypt(&second, "alias/lost", b"x")),
        "KeyUnavailableException"
    );
    assert_eq!(
        code(decrypt(&second, &lost_blob)),
        "KeyUnavailableException"
    );
    assert_eq!(
        code(second.generate_data_key(&GenerateDataKeyRequest::new(&lost, DataKeySpec::Aes128))),
        "KeyUnavailableException"
    );

    // The other key, loaded from the same store, keeps working, old data included.
    assert_eq!(
        second.describe_key(&fine).unwrap().key_state,
        KeyState::Enabled
    );
    assert_eq!(decrypt(&second, &fine_blob).unwrap(), b"fine data");
    let new_blob = encrypt(&second, &fine, b"more").unwrap();
    assert_eq!(decrypt(&second, &new_blob).unwrap(), b"more");
}

#[test]
fn unavailable_key_follows_the_state_table() {
    let store = Arc::new(MemoryKeyStore::new(LockPolicy::Require));
    let clock = Arc::new(ManualClock::starting_now());
    let first = Engine::builder()
        .store(store.clone())
        .clock(clock.clone())
        .build()
        .unwrap();
    let keys: Vec<(String, Vec<u8>)> = ALL_OPS
        .iter()
        .map(|_| {
            let key = new_key(&first);
            let blob = encrypt(&first, &key, b"data").unwrap();
            (key, blob)
        })
        .collect();
    let helper = new_key(&first);
    drop(first);
    for (key, _) in &keys {
        assert!(store.forget_material(uuid_of(key), 1));
    }
    let engine = Engine::builder()
        .store(store)
        .clock(clock.clone())
        .build()
        .unwrap();
    for (n, (op, (key, blob))) in ALL_OPS.iter().zip(&keys).enumerate() {
        assert_eq!(state_of(&engine, key), KeyState::Unavailable);
        let result = run_op(&engine, *op, key, Some(blob), &helper, n);
        match (expected(KeyState::Unavailable, *op), result) {
            (Ok(after), Ok(())) => {
                assert_eq!(
                    state_of(&engine, key),
                    after,
                    "{op:?} on an Unavailable key"
                )
            }
            (Err(code), Err(e)) => assert_eq!(e.code(), code, "{op:?} on an Unavailable key: {e}"),
            (want, got) => {
                panic!("{op:?} on an Unavailable key: expected {want:?}, got {got:?}")
            }
        }
    }
    // Its deletion can be cancelled (it stays Unavailable) or carried out.
    let scheduled = &keys[ALL_OPS.iter().position(|o| *o == Op::Schedule).unwrap()].0;
    assert_eq!(state_of(&engine, scheduled), KeyState::PendingDeletion);
    engine.cancel_key_deletion(scheduled).unwrap();
    assert_eq!(state_of(&engine, scheduled), KeyState::Unavailable);
    engine.schedule_key_deletion(scheduled, Some(7)).unwrap();
    clock.advance_days(7);
    assert_eq!(code(engine.describe_key(scheduled)), "NotFoundException");
}

// ---- background scheduler -----------------------------------------------------------------------

#[test]
fn scheduler_runs_due_deletions_and_rotations_without_control_plane_calls() {
    let clock = Arc::new(ManualClock::starting_now());
    let engine = Engine::builder()
        .clock(clock.clone())
        .scheduler_interval(Duration::from_millis(5))
        .build()
        .unwrap();
    let doomed = new_key(&engine);
    let rotating = new_key(&engine);
    engine.enable_key_rotation(&rotating, Some(90)).unwrap();
    engine.schedule_key_deletion(&doomed, Some(7)).unwrap();
    assert_eq!(
        keyplane::ciphertext::parse(&encrypt(&engine, &rotating, b"x").unwrap())
            .unwrap()
            .key_version,
        1
    );
    clock.advance_days(91);
    // Only data-plane calls from here on: the scheduler must act on its own.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let gone = code_or_ok(encrypt(&engine, &doomed, b"x")) == Some("NotFoundException");
        let version = keyplane::ciphertext::parse(&encrypt(&engine, &rotating, b"x").unwrap())
            .unwrap()
            .key_version;
        if gone && version == 2 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the scheduler did not run the due deletion ({gone}) and rotation (version {version})"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn code_or_ok<T>(result: keyplane::Result<T>) -> Option<&'static str> {
    result.err().map(|e| e.code())
}

// ---- Two engines sharing one store ----------------------------------------------------------------

#[test]
fn a_change_made_by_one_engine_reaches_the_other_engines_data_plane() {
    let clock = Arc::new(ManualClock::starting_now());
    let store = Arc::new(MemoryKeyStore::new(LockPolicy::Require));
    let a = engine_on(&clock, store.clone());
    let b = engine_on(&clock, store.clone());
    let key = new_key(&a);
    // b has not looked at the store since a created the key: it follows the store before it
    // would answer NotFound (read-your-writes across engines, docs/store.md).
    let blob = encrypt(&b, &key, b"shared").unwrap();
    assert_eq!(decrypt(&a, &blob).unwrap(), b"shared");

    a.disable_key(&key).unwrap();
    assert_eq!(code(encrypt(&a, &key, b"x")), "DisabledException");
    b.run_due_tasks().unwrap();
    assert_eq!(code(encrypt(&b, &key, b"x")), "DisabledException");

    // Interleaved commits from both engines: each ends up seeing both changes.
    a.enable_key(&key).unwrap();
    let other = new_key(&b);
    a.run_due_tasks().unwrap();
    b.run_due_tasks().unwrap();
    for engine in [&a, &b] {
        assert_eq!(state_of(engine, &key), KeyState::Enabled);
        assert_eq!(state_of(engine, &other), KeyState::Enabled);
    }
    // Rotation on one engine: the other decrypts the new version after it refreshes.
    a.rotate_key_on_demand(&key).unwrap();
    let rotated = encrypt(&a, &key, b"v2").unwrap();
    b.run_due_tasks().unwrap();
    assert_eq!(decrypt(&b, &rotated).unwrap(), b"v2");
    assert_eq!(decrypt(&b, &blob).unwrap(), b"shared");
}

#[test]
fn the_background_scheduler_picks_up_another_engines_change_within_its_interval() {
    let store = Arc::new(MemoryKeyStore::new(LockPolicy::Require));
    let a = Engine::builder().store(store.clone()).build().unwrap();
    let b = Engine::builder()
        .store(store)
        .scheduler_interval(Duration::from_millis(20))
        .build()
        .unwrap();
    let key = new_key(&a);
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while encrypt(&b, &key, b"x").is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "b never saw the key created by a"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    a.disable_key(&key).unwrap();
    while encrypt(&b, &key, b"x").is_ok() {
        assert!(
            std::time::Instant::now() < deadline,
            "b never saw the key disabled by a"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(code(encrypt(&b, &key, b"x")), "DisabledException");
}
