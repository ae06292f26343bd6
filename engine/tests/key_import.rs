//! Importing key material (BYOK): GetParametersForImport, ImportKeyMaterial and
//! DeleteImportedKeyMaterial through the engine API. Material is wrapped the way a user wraps it:
//! RSA-OAEP with RustCrypto's `rsa` (an implementation independent of the engine's AWS-LC), and
//! for the RSA_AES_KEY_WRAP algorithms an AES-256 key wrapped with OAEP followed by the material
//! wrapped with AES key wrap with padding (RFC 5649); the `openssl` command line does the same in
//! `openssl_recipe_*`. Results of imported keys are checked against RustCrypto using the same raw
//! key: HMAC values, ECDSA and RSA signatures, public keys.

#[path = "support/outcome.rs"]
mod outcome;
use outcome::code;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use keyplane::audit::{generate_signing_key, AuditConfig};
use keyplane::{
    Caller, CreateKeyRequest, DecryptRequest, EncryptRequest, Engine, ExpirationModel,
    GenerateMacRequest, ImportKeyMaterialRequest, ImportState, ImportType, KeyMaterialState,
    KeySpec, KeyState, KeyUsage, MacAlgorithm, ManualClock, MessageType, Origin, SignRequest,
    SigningAlgorithm, Timestamp, WrappingAlgorithm, WrappingKeySpec,
};
use keyplane_testkit::new_key;
use rsa::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey};

const DAY_MS: i64 = 24 * 60 * 60 * 1000;

const ALGORITHMS: [WrappingAlgorithm; 4] = [
    WrappingAlgorithm::RsaesOaepSha1,
    WrappingAlgorithm::RsaesOaepSha256,
    WrappingAlgorithm::RsaAesKeyWrapSha1,
    WrappingAlgorithm::RsaAesKeyWrapSha256,
];

fn random(n: usize) -> Vec<u8> {
    let mut out = vec![0u8; n];
    aws_lc_rs::rand::fill(&mut out).unwrap();
    out
}

/// RSA-OAEP with RustCrypto, as a user's tool would.
fn oaep_encrypt(public_der: &[u8], sha256: bool, plaintext: &[u8]) -> Vec<u8> {
    let key = rsa::RsaPublicKey::from_public_key_der(public_der).expect("SPKI RSA public key");
    let mut rng = rand_core::OsRng;
    if sha256 {
        key.encrypt(&mut rng, rsa::Oaep::new::<sha2::Sha256>(), plaintext)
    } else {
        key.encrypt(&mut rng, rsa::Oaep::new::<sha1::Sha1>(), plaintext)
    }
    .expect("OAEP encryption")
}

/// Wraps `material` for `public_der` under `algorithm`, as the service documents.
fn wrap(public_der: &[u8], algorithm: WrappingAlgorithm, material: &[u8]) -> Vec<u8> {
    use aws_lc_rs::key_wrap::{AesKek, KeyWrapPadded, AES_256};
    match algorithm {
        WrappingAlgorithm::RsaesOaepSha1 => oaep_encrypt(public_der, false, material),
        WrappingAlgorithm::RsaesOaepSha256 => oaep_encrypt(public_der, true, material),
        WrappingAlgorithm::RsaAesKeyWrapSha1 | WrappingAlgorithm::RsaAesKeyWrapSha256 => {
            let aes = random(32);
            let mut out = oaep_encrypt(
                public_der,
                algorithm == WrappingAlgorithm::RsaAesKeyWrapSha256,
                &aes,
            );
            let kek = AesKek::new(&AES_256, &aes).unwrap();
            let mut wrapped = vec![0u8; material.len() + 16];
            let n = kek.wrap_with_padding(material, &mut wrapped).unwrap().len();
            out.extend_from_slice(&wrapped[..n]);
            out
        }
        other => panic!("{other} is not a wrapping algorithm the tests use"),
    }
}

fn external_key(engine: &Engine, spec: KeySpec, usage: Option<KeyUsage>) -> String {
    engine
        .create_key(CreateKeyRequest {
            origin: Some(Origin::External),
            key_spec: Some(spec),
            key_usage: usage,
            ..Default::default()
        })
        .expect("create an EXTERNAL key")
        .key_id
}

/// Fetches parameters and imports `material` wrapped under `algorithm` with the given terms.
fn import_with(
    engine: &Engine,
    key_id: &str,
    algorithm: WrappingAlgorithm,
    material: &[u8],
    terms: ImportKeyMaterialRequest<'_>,
) -> keyplane::Result<keyplane::ImportKeyMaterialResponse> {
    let params = engine.get_parameters_for_import(key_id, algorithm, WrappingKeySpec::Rsa2048)?;
    let wrapped = wrap(&params.public_key, algorithm, material);
    engine.import_key_material(&ImportKeyMaterialRequest {
        key_id,
        import_token: &params.import_token,
        encrypted_key_material: &wrapped,
        ..terms
    })
}

fn never_expires() -> ImportKeyMaterialRequest<'static> {
    ImportKeyMaterialRequest {
        expiration_model: Some(ExpirationModel::KeyMaterialDoesNotExpire),
        ..Default::default()
    }
}

fn import(engine: &Engine, key_id: &str, material: &[u8]) -> String {
    import_with(
        engine,
        key_id,
        WrappingAlgorithm::RsaAesKeyWrapSha256,
        material,
        never_expires(),
    )
    .expect("import")
    .key_material_id
}

fn round_trip(engine: &Engine, key_id: &str) -> Vec<u8> {
    let sealed = engine
        .encrypt(&EncryptRequest::new(key_id, b"imported"))
        .expect("encrypt under imported material");
    let opened = engine
        .decrypt(&DecryptRequest::new(&sealed.ciphertext_blob))
        .unwrap();
    assert_eq!(opened.plaintext.expose(), b"imported");
    sealed.ciphertext_blob
}

fn state(engine: &Engine, key_id: &str) -> KeyState {
    engine.describe_key(key_id).unwrap().key_state
}

#[test]
fn symmetric_material_imports_with_every_wrapping_algorithm_and_wrapping_key_spec() {
    let engine = Engine::in_memory().unwrap();
    for spec in [
        WrappingKeySpec::Rsa2048,
        WrappingKeySpec::Rsa3072,
        WrappingKeySpec::Rsa4096,
    ] {
        for algorithm in ALGORITHMS {
            let key = external_key(&engine, KeySpec::SymmetricDefault, None);
            let params = engine
                .get_parameters_for_import(&key, algorithm, spec)
                .unwrap();
            let public = rsa::RsaPublicKey::from_public_key_der(&params.public_key).unwrap();
            let bits = match spec {
                WrappingKeySpec::Rsa2048 => 2048,
                WrappingKeySpec::Rsa3072 => 3072,
                _ => 4096,
            };
            assert_eq!(rsa::traits::PublicKeyParts::size(&public) * 8, bits);
            assert!(params.key_id.ends_with(&key));
            let material = random(32);
            let wrapped = wrap(&params.public_key, algorithm, &material);
            let answer = engine
                .import_key_material(&ImportKeyMaterialRequest {
                    key_id: &key,
                    import_token: &params.import_token,
                    encrypted_key_material: &wrapped,
                    ..never_expires()
                })
                .unwrap_or_else(|e| panic!("{algorithm} with {spec}: {e}"));
            let meta = engine.describe_key(&key).unwrap();
            assert_eq!(meta.key_state, KeyState::Enabled, "{algorithm} {spec}");
            assert_eq!(meta.origin, Origin::External);
            assert_eq!(
                meta.current_key_material_id.as_deref(),
                Some(answer.key_material_id.as_str())
            );
            assert_eq!(
                meta.expiration_model,
                Some(ExpirationModel::KeyMaterialDoesNotExpire)
            );
            assert_eq!(meta.valid_to, None);
            round_trip(&engine, &key);
        }
    }
}

#[test]
fn parameters_are_fresh_each_time_and_valid_for_24_hours() {
    let clock = Arc::new(ManualClock::new(Timestamp(1_700_000_000_000)));
    let engine = Engine::builder().clock(clock.clone()).build().unwrap();
    let key = external_key(&engine, KeySpec::SymmetricDefault, None);
    let a = engine
        .get_parameters_for_import(
            &key,
            WrappingAlgorithm::RsaesOaepSha256,
            WrappingKeySpec::Rsa2048,
        )
        .unwrap();
    let b = engine
        .get_parameters_for_import(
            &key,
            WrappingAlgorithm::RsaesOaepSha256,
            WrappingKeySpec::Rsa2048,
        )
        .unwrap();
    assert_ne!(a.public_key, b.public_key);
    assert_ne!(a.import_token, b.import_token);
    assert_eq!(a.parameters_valid_to, Timestamp(1_700_000_000_000 + DAY_MS));
    // The token and public key belong together: material for b's key with a's token fails.
    let material = random(32);
    let for_b = wrap(&b.public_key, WrappingAlgorithm::RsaesOaepSha256, &material);
    assert_eq!(
        code(engine.import_key_material(&ImportKeyMaterialRequest {
            key_id: &key,
            import_token: &a.import_token,
            encrypted_key_material: &for_b,
            ..never_expires()
        })),
        "InvalidCiphertextException"
    );
    // Just before the 24 hours end the token works; at the end it has expired.
    clock.advance(Duration::from_millis((DAY_MS - 1) as u64));
    let for_a = wrap(&a.public_key, WrappingAlgorithm::RsaesOaepSha256, &material);
    let request = ImportKeyMaterialRequest {
        key_id: &key,
        import_token: &a.import_token,
        encrypted_key_material: &for_a,
        ..never_expires()
    };
    engine.import_key_material(&request).unwrap();
    clock.advance(Duration::from_millis(1));
    assert_eq!(
        code(engine.import_key_material(&request)),
        "ExpiredImportTokenException"
    );
}

#[test]
fn refused_wrapping_choices_and_keys_say_why() {
    let engine = Engine::in_memory().unwrap();
    let key = external_key(&engine, KeySpec::SymmetricDefault, None);
    for (algorithm, spec) in [
        (WrappingAlgorithm::RsaesPkcs1V15, WrappingKeySpec::Rsa2048),
        (WrappingAlgorithm::Sm2pke, WrappingKeySpec::Sm2),
        (WrappingAlgorithm::RsaesOaepSha256, WrappingKeySpec::Sm2),
    ] {
        let e = engine
            .get_parameters_for_import(&key, algorithm, spec)
            .unwrap_err();
        assert_eq!(
            e.code(),
            "UnsupportedOperationException",
            "{algorithm} {spec}"
        );
        assert!(
            e.message().contains("RSAES_PKCS1_V1_5") || e.message().contains("SM2"),
            "{e}"
        );
    }
    // The enumerations refuse what the model does not have.
    assert_eq!(
        code("RSAES_OAEP_SHA_512".parse::<WrappingAlgorithm>()),
        "ValidationException"
    );
    // Keys with engine-made material take no imports.
    let own = new_key(&engine);
    for result in [
        engine
            .get_parameters_for_import(
                &own,
                WrappingAlgorithm::RsaesOaepSha256,
                WrappingKeySpec::Rsa2048,
            )
            .map(drop),
        engine.delete_imported_key_material(&own, None).map(drop),
    ] {
        assert_eq!(code(result), "UnsupportedOperationException");
    }
    // Unknown keys are NotFound; a key pending deletion is in the wrong state.
    assert_eq!(
        code(engine.get_parameters_for_import(
            "11111111-2222-3333-4444-555555555555",
            WrappingAlgorithm::RsaesOaepSha256,
            WrappingKeySpec::Rsa2048
        )),
        "NotFoundException"
    );
    engine.schedule_key_deletion(&key, Some(7)).unwrap();
    assert_eq!(
        code(engine.get_parameters_for_import(
            &key,
            WrappingAlgorithm::RsaesOaepSha256,
            WrappingKeySpec::Rsa2048
        )),
        "KMSInvalidStateException"
    );
}

/// Each bad import fails with the service's error and leaves the key as it was.
#[test]
fn bad_tokens_and_bad_material_are_refused_and_nothing_is_stored() {
    let clock = Arc::new(ManualClock::starting_now());
    let engine = Engine::builder().clock(clock.clone()).build().unwrap();
    let key = external_key(&engine, KeySpec::SymmetricDefault, None);
    let other = external_key(&engine, KeySpec::SymmetricDefault, None);
    let algorithm = WrappingAlgorithm::RsaAesKeyWrapSha256;
    let params = engine
        .get_parameters_for_import(&key, algorithm, WrappingKeySpec::Rsa2048)
        .unwrap();
    let other_params = engine
        .get_parameters_for_import(&other, algorithm, WrappingKeySpec::Rsa2048)
        .unwrap();
    // Another engine (another store, another import secret) issued this one for the same id.
    let stranger = Engine::in_memory().unwrap();
    let stranger_key = external_key(&stranger, KeySpec::SymmetricDefault, None);
    let stranger_params = stranger
        .get_parameters_for_import(&stranger_key, algorithm, WrappingKeySpec::Rsa2048)
        .unwrap();
    let material = random(32);
    let good = wrap(&params.public_key, algorithm, &material);
    let mut tampered_token = params.import_token.clone();
    let middle = tampered_token.len() / 2;
    tampered_token[middle] ^= 0x40;
    let mut tampered_material = good.clone();
    let last = tampered_material.len() - 1;
    tampered_material[last] ^= 1;
    let mut tampered_key = good.clone();
    tampered_key[3] ^= 1;
    let oaep_for_rsa_aes = wrap(
        &params.public_key,
        WrappingAlgorithm::RsaesOaepSha256,
        &material,
    );
    let short = wrap(&params.public_key, algorithm, &material[..31]);
    let long = wrap(&params.public_key, algorithm, &random(33));
    let for_other = wrap(&other_params.public_key, algorithm, &material);
    let cases: Vec<(&str, Vec<u8>, Vec<u8>, &str)> = vec![
        (
            "random bytes as a token",
            random(600),
            good.clone(),
            "InvalidImportTokenException",
        ),
        (
            "an altered token",
            tampered_token,
            good.clone(),
            "InvalidImportTokenException",
        ),
        (
            "another key's token",
            other_params.import_token.clone(),
            for_other,
            "InvalidImportTokenException",
        ),
        (
            "another store's token",
            stranger_params.import_token.clone(),
            wrap(&stranger_params.public_key, algorithm, &material),
            "InvalidImportTokenException",
        ),
        (
            "altered wrapped material",
            params.import_token.clone(),
            tampered_material,
            "InvalidCiphertextException",
        ),
        (
            "an altered wrapped AES key",
            params.import_token.clone(),
            tampered_key,
            "InvalidCiphertextException",
        ),
        (
            "material wrapped with another algorithm",
            params.import_token.clone(),
            oaep_for_rsa_aes,
            "InvalidCiphertextException",
        ),
        (
            "material wrapped under another public key",
            params.import_token.clone(),
            wrap(&other_params.public_key, algorithm, &material),
            "InvalidCiphertextException",
        ),
        (
            "31-byte symmetric material",
            params.import_token.clone(),
            short,
            "IncorrectKeyMaterialException",
        ),
        (
            "33-byte symmetric material",
            params.import_token.clone(),
            long,
            "IncorrectKeyMaterialException",
        ),
    ];
    for (what, token, wrapped, expected) in &cases {
        let result = engine.import_key_material(&ImportKeyMaterialRequest {
            key_id: &key,
            import_token: token,
            encrypted_key_material: wrapped,
            ..never_expires()
        });
        assert_eq!(code(result), *expected, "{what}");
        let meta = engine.describe_key(&key).unwrap();
        assert_eq!(meta.key_state, KeyState::PendingImport, "{what}");
        assert_eq!(meta.current_key_material_id, None, "{what}");
        assert!(engine
            .list_key_rotations(&key, None, None)
            .unwrap()
            .items
            .is_empty());
    }
    // Bad terms are ValidationException before anything is opened.
    let terms_cases = [
        (None, None, "KEY_MATERIAL_EXPIRES without ValidTo"),
        (
            Some(ExpirationModel::KeyMaterialDoesNotExpire),
            Some(clock.now_plus_days(1)),
            "ValidTo with KEY_MATERIAL_DOES_NOT_EXPIRE",
        ),
        (
            Some(ExpirationModel::KeyMaterialExpires),
            Some(Timestamp(clock.now_ms() - 1)),
            "ValidTo in the past",
        ),
        (
            Some(ExpirationModel::KeyMaterialExpires),
            Some(clock.now_plus_days(366)),
            "ValidTo over 365 days away",
        ),
    ];
    for (model, valid_to, what) in terms_cases {
        let result = engine.import_key_material(&ImportKeyMaterialRequest {
            key_id: &key,
            import_token: &params.import_token,
            encrypted_key_material: &good,
            expiration_model: model,
            valid_to,
            ..Default::default()
        });
        assert_eq!(code(result), "ValidationException", "{what}");
    }
    // An expired token, even with good material.
    clock.advance_days(2);
    assert_eq!(
        code(engine.import_key_material(&ImportKeyMaterialRequest {
            key_id: &key,
            import_token: &params.import_token,
            encrypted_key_material: &good,
            ..never_expires()
        })),
        "ExpiredImportTokenException"
    );
    assert_eq!(state(&engine, &key), KeyState::PendingImport);
}

trait ClockExt {
    fn now_ms(&self) -> i64;
    fn now_plus_days(&self, days: i64) -> Timestamp;
}

impl ClockExt for ManualClock {
    fn now_ms(&self) -> i64 {
        keyplane::Clock::now(self).0
    }
    fn now_plus_days(&self, days: i64) -> Timestamp {
        Timestamp(self.now_ms() + days * DAY_MS)
    }
}

#[test]
fn expired_material_is_deleted_and_the_same_material_reimports() {
    let clock = Arc::new(ManualClock::starting_now());
    let engine = Engine::builder().clock(clock.clone()).build().unwrap();
    let key = external_key(&engine, KeySpec::SymmetricDefault, None);
    let material = random(32);
    let valid_to = clock.now_plus_days(3);
    let first = import_with(
        &engine,
        &key,
        WrappingAlgorithm::RsaesOaepSha1,
        &material,
        ImportKeyMaterialRequest {
            valid_to: Some(valid_to),
            ..Default::default()
        },
    )
    .unwrap();
    let meta = engine.describe_key(&key).unwrap();
    assert_eq!(meta.valid_to, Some(valid_to));
    assert_eq!(
        meta.expiration_model,
        Some(ExpirationModel::KeyMaterialExpires)
    );
    let sealed = round_trip(&engine, &key);
    clock.advance_days(2);
    assert_eq!(state(&engine, &key), KeyState::Enabled);
    clock.advance_days(1);
    // The control plane notices the expiry at its next call.
    let meta = engine.describe_key(&key).unwrap();
    assert_eq!(meta.key_state, KeyState::PendingImport);
    assert_eq!(meta.valid_to, None);
    assert_eq!(
        code(engine.decrypt(&DecryptRequest::new(&sealed))),
        "KMSInvalidStateException"
    );
    let rotations = engine.list_key_rotations(&key, None, None).unwrap().items;
    assert_eq!(rotations.len(), 1);
    assert_eq!(rotations[0].import_state, Some(ImportState::PendingImport));
    // Different material is refused; the same material comes back, with new terms.
    assert_eq!(
        code(import_with(
            &engine,
            &key,
            WrappingAlgorithm::RsaesOaepSha256,
            &random(32),
            never_expires()
        )),
        "IncorrectKeyMaterialException"
    );
    assert_eq!(state(&engine, &key), KeyState::PendingImport);
    let again = import_with(
        &engine,
        &key,
        WrappingAlgorithm::RsaesOaepSha256,
        &material,
        never_expires(),
    )
    .unwrap();
    assert_eq!(again.key_material_id, first.key_material_id);
    let meta = engine.describe_key(&key).unwrap();
    assert_eq!(meta.key_state, KeyState::Enabled);
    assert_eq!(meta.valid_to, None);
    let opened = engine.decrypt(&DecryptRequest::new(&sealed)).unwrap();
    assert_eq!(opened.plaintext.expose(), b"imported");
    // Without expiry, nothing happens a year on.
    clock.advance_days(400);
    assert_eq!(state(&engine, &key), KeyState::Enabled);
}

#[test]
fn deleted_material_makes_the_key_pending_import_until_the_same_material_returns() {
    let engine = Engine::in_memory().unwrap();
    let key = external_key(&engine, KeySpec::SymmetricDefault, None);
    let material = random(32);
    let id = import(&engine, &key, &material);
    let sealed = round_trip(&engine, &key);
    engine.disable_key(&key).unwrap();
    let deleted = engine.delete_imported_key_material(&key, None).unwrap();
    assert_eq!(deleted.key_material_id, id);
    assert!(deleted.key_id.ends_with(&key));
    assert_eq!(state(&engine, &key), KeyState::PendingImport);
    assert_eq!(
        code(engine.encrypt(&EncryptRequest::new(&key, b"x"))),
        "KMSInvalidStateException"
    );
    // Unknown material ids are NotFound; malformed ones fail validation.
    assert_eq!(
        code(engine.delete_imported_key_material(&key, Some(&"a".repeat(64)))),
        "NotFoundException"
    );
    assert_eq!(
        code(engine.delete_imported_key_material(&key, Some("xyz"))),
        "ValidationException"
    );
    // A re-import naming the material id must match it.
    let other_id = "b".repeat(64);
    assert_eq!(
        code(import_with(
            &engine,
            &key,
            WrappingAlgorithm::RsaAesKeyWrapSha1,
            &material,
            ImportKeyMaterialRequest {
                key_material_id: Some(&other_id),
                ..never_expires()
            }
        )),
        "IncorrectKeyMaterialException"
    );
    import_with(
        &engine,
        &key,
        WrappingAlgorithm::RsaAesKeyWrapSha1,
        &material,
        ImportKeyMaterialRequest {
            key_material_id: Some(&id),
            import_type: Some(ImportType::ExistingKeyMaterial),
            ..never_expires()
        },
    )
    .unwrap();
    assert_eq!(state(&engine, &key), KeyState::Enabled);
    let opened = engine.decrypt(&DecryptRequest::new(&sealed)).unwrap();
    assert_eq!(opened.plaintext.expose(), b"imported");
    // Deleting material of a key pending deletion keeps it pending deletion.
    engine.schedule_key_deletion(&key, Some(7)).unwrap();
    engine.delete_imported_key_material(&key, None).unwrap();
    assert_eq!(state(&engine, &key), KeyState::PendingDeletion);
    // And cancelling the deletion brings it back to PendingImport, not Disabled.
    engine.cancel_key_deletion(&key).unwrap();
    assert_eq!(state(&engine, &key), KeyState::PendingImport);
}

#[test]
fn new_imported_material_rotates_on_demand_and_old_ciphertexts_still_decrypt() {
    let engine = Engine::in_memory().unwrap();
    let key = external_key(&engine, KeySpec::SymmetricDefault, None);
    let a = random(32);
    let b = random(32);
    let id_a = import(&engine, &key, &a);
    let under_a = round_trip(&engine, &key);
    // Nothing to rotate to yet.
    assert_eq!(
        code(engine.rotate_key_on_demand(&key)),
        "KMSInvalidStateException"
    );
    // The same material as NEW_KEY_MATERIAL is refused; new material waits for rotation.
    assert_eq!(
        code(import_with(
            &engine,
            &key,
            WrappingAlgorithm::RsaesOaepSha256,
            &a,
            ImportKeyMaterialRequest {
                import_type: Some(ImportType::NewKeyMaterial),
                ..never_expires()
            }
        )),
        "IncorrectKeyMaterialException"
    );
    let description = "from the HSM 2026";
    let id_b = import_with(
        &engine,
        &key,
        WrappingAlgorithm::RsaesOaepSha256,
        &b,
        ImportKeyMaterialRequest {
            import_type: Some(ImportType::NewKeyMaterial),
            key_material_description: Some(description),
            ..never_expires()
        },
    )
    .unwrap()
    .key_material_id;
    assert_ne!(id_a, id_b);
    let listed = engine.list_key_rotations(&key, None, None).unwrap().items;
    let states: Vec<_> = listed
        .iter()
        .map(|r| (r.key_material_id.clone(), r.key_material_state))
        .collect();
    assert_eq!(
        states,
        vec![
            (id_a.clone(), Some(KeyMaterialState::Current)),
            (id_b.clone(), Some(KeyMaterialState::PendingRotation)),
        ]
    );
    assert_eq!(
        listed[1].key_material_description.as_deref(),
        Some(description)
    );
    assert_eq!(listed[1].rotation_date, None);
    // A still encrypts until the rotation.
    let material_of = |key: &str| {
        let sealed = engine.encrypt(&EncryptRequest::new(key, b"x")).unwrap();
        engine
            .decrypt(&DecryptRequest::new(&sealed.ciphertext_blob))
            .unwrap()
            .key_material_id
    };
    assert_eq!(material_of(&key), id_a);
    engine.rotate_key_on_demand(&key).unwrap();
    let meta = engine.describe_key(&key).unwrap();
    assert_eq!(meta.current_key_material_id.as_deref(), Some(id_b.as_str()));
    assert_eq!(material_of(&key), id_b);
    let opened = engine.decrypt(&DecryptRequest::new(&under_a)).unwrap();
    assert_eq!(opened.plaintext.expose(), b"imported");
    let listed = engine.list_key_rotations(&key, None, None).unwrap().items;
    assert_eq!(
        listed[0].key_material_state,
        Some(KeyMaterialState::NonCurrent)
    );
    assert_eq!(
        listed[1].key_material_state,
        Some(KeyMaterialState::Current)
    );
    assert!(listed[1].rotation_date.is_some());
    // Deleting the old material makes the key unusable until it is imported again.
    engine
        .delete_imported_key_material(&key, Some(&id_a))
        .unwrap();
    assert_eq!(state(&engine, &key), KeyState::PendingImport);
    import(&engine, &key, &a);
    assert_eq!(state(&engine, &key), KeyState::Enabled);
    assert_eq!(
        engine.describe_key(&key).unwrap().current_key_material_id,
        Some(id_b)
    );
    let opened = engine.decrypt(&DecryptRequest::new(&under_a)).unwrap();
    assert_eq!(opened.plaintext.expose(), b"imported");
}

#[test]
fn hmac_material_imports_and_macs_agree_with_rustcrypto() {
    use hmac::Mac;
    let engine = Engine::in_memory().unwrap();
    for (spec, algorithm, min, max) in [
        (KeySpec::Hmac224, MacAlgorithm::HmacSha224, 28, 64),
        (KeySpec::Hmac256, MacAlgorithm::HmacSha256, 32, 64),
        (KeySpec::Hmac384, MacAlgorithm::HmacSha384, 48, 128),
        (KeySpec::Hmac512, MacAlgorithm::HmacSha512, 64, 128),
    ] {
        let key = external_key(&engine, spec, Some(KeyUsage::GenerateVerifyMac));
        for bad in [min - 1, max + 1] {
            assert_eq!(
                code(import_with(
                    &engine,
                    &key,
                    WrappingAlgorithm::RsaesOaepSha256,
                    &random(bad),
                    never_expires()
                )),
                "IncorrectKeyMaterialException",
                "{spec} with {bad} bytes"
            );
        }
        let material = random(max);
        import(&engine, &key, &material);
        let message = b"the message";
        let mac = engine
            .generate_mac(&GenerateMacRequest {
                key_id: &key,
                mac_algorithm: algorithm,
                message,
            })
            .unwrap()
            .mac;
        let expected = match spec {
            KeySpec::Hmac224 => {
                let mut m = hmac::Hmac::<sha2::Sha224>::new_from_slice(&material).unwrap();
                m.update(message);
                m.finalize().into_bytes().to_vec()
            }
            KeySpec::Hmac256 => {
                let mut m = hmac::Hmac::<sha2::Sha256>::new_from_slice(&material).unwrap();
                m.update(message);
                m.finalize().into_bytes().to_vec()
            }
            KeySpec::Hmac384 => {
                let mut m = hmac::Hmac::<sha2::Sha384>::new_from_slice(&material).unwrap();
                m.update(message);
                m.finalize().into_bytes().to_vec()
            }
            _ => {
                let mut m = hmac::Hmac::<sha2::Sha512>::new_from_slice(&material).unwrap();
                m.update(message);
                m.finalize().into_bytes().to_vec()
            }
        };
        assert_eq!(mac, expected, "{spec}");
        // HMAC keys take no new material after the first import.
        assert_eq!(
            code(import_with(
                &engine,
                &key,
                WrappingAlgorithm::RsaAesKeyWrapSha256,
                &random(max),
                ImportKeyMaterialRequest {
                    import_type: Some(ImportType::NewKeyMaterial),
                    ..never_expires()
                }
            )),
            "UnsupportedOperationException"
        );
    }
}

fn sign(engine: &Engine, key: &str, algorithm: SigningAlgorithm, message: &[u8]) -> Vec<u8> {
    engine
        .sign(&SignRequest {
            key_id: key,
            message,
            message_type: MessageType::Raw,
            signing_algorithm: algorithm,
        })
        .expect("sign with imported key")
        .signature
}

#[test]
fn ecc_private_keys_import_as_pkcs8_and_signatures_verify_with_rustcrypto() {
    use p256::ecdsa::signature::Verifier;
    let engine = Engine::in_memory().unwrap();
    let secret = p256::SecretKey::random(&mut rand_core::OsRng);
    let pkcs8 = secret.to_pkcs8_der().unwrap();
    let key = external_key(&engine, KeySpec::EccNistP256, Some(KeyUsage::SignVerify));
    // Wrong curve and non-keys are IncorrectKeyMaterial.
    let p384 = p384::SecretKey::random(&mut rand_core::OsRng)
        .to_pkcs8_der()
        .unwrap();
    for (what, bad) in [
        ("a P-384 key", p384.as_bytes().to_vec()),
        ("random bytes", random(138)),
    ] {
        assert_eq!(
            code(import_with(
                &engine,
                &key,
                WrappingAlgorithm::RsaAesKeyWrapSha256,
                &bad,
                never_expires()
            )),
            "IncorrectKeyMaterialException",
            "{what}"
        );
    }
    import(&engine, &key, pkcs8.as_bytes());
    let expected_public = secret.public_key().to_public_key_der().unwrap();
    assert_eq!(
        engine.get_public_key(&key).unwrap().public_key,
        expected_public.as_bytes()
    );
    let signature = sign(&engine, &key, SigningAlgorithm::EcdsaSha256, b"signed");
    let signature = p256::ecdsa::DerSignature::try_from(signature.as_slice()).unwrap();
    let verifying = p256::ecdsa::VerifyingKey::from(secret.public_key());
    verifying.verify(b"signed", &signature).unwrap();
    // Asymmetric keys take no new material either.
    assert_eq!(
        code(import_with(
            &engine,
            &key,
            WrappingAlgorithm::RsaAesKeyWrapSha256,
            p256::SecretKey::random(&mut rand_core::OsRng)
                .to_pkcs8_der()
                .unwrap()
                .as_bytes(),
            ImportKeyMaterialRequest {
                import_type: Some(ImportType::NewKeyMaterial),
                ..never_expires()
            }
        )),
        "UnsupportedOperationException"
    );
    // secp256k1 too.
    let k1 = k256::SecretKey::random(&mut rand_core::OsRng);
    let k1_key = external_key(&engine, KeySpec::EccSecgP256k1, Some(KeyUsage::SignVerify));
    import(&engine, &k1_key, k1.to_pkcs8_der().unwrap().as_bytes());
    let signature = sign(&engine, &k1_key, SigningAlgorithm::EcdsaSha256, b"k1");
    // k256 verifies low-S signatures only; normalising does not change what was signed.
    let signature = k256::ecdsa::Signature::from_der(&signature).unwrap();
    let signature = signature.normalize_s().unwrap_or(signature);
    k256::ecdsa::VerifyingKey::from(k1.public_key())
        .verify(b"k1", &signature)
        .unwrap();
}

/// An RSA private key made by the `openssl` command line, as PKCS#8 DER, and the same key as
/// PKCS#1 DER (what `openssl genpkey -outform DER` writes for RSA), which is not what the service
/// takes.
fn openssl_rsa_pkcs8(bits: u32, dir: &Path) -> (Vec<u8>, Vec<u8>) {
    let pem = dir.join(format!("rsa{bits}.pem"));
    let pkcs8 = dir.join(format!("rsa{bits}.p8.der"));
    let pkcs1 = dir.join(format!("rsa{bits}.p1.der"));
    // Its output is kept and shown only on failure: inherited, genpkey's progress dots landed
    // in the middle of the test harness's lines.
    let run = |args: &[&std::ffi::OsStr]| {
        let out = Command::new("openssl")
            .args(args)
            .output()
            .expect("the openssl command line (Debian's openssl package) is installed");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let os = |s: &str| std::ffi::OsString::from(s);
    run(&[
        &os("genpkey"),
        &os("-algorithm"),
        &os("RSA"),
        &os("-pkeyopt"),
        &os(&format!("rsa_keygen_bits:{bits}")),
        &os("-out"),
        pem.as_os_str(),
    ]);
    run(&[
        &os("pkcs8"),
        &os("-topk8"),
        &os("-nocrypt"),
        &os("-in"),
        pem.as_os_str(),
        &os("-outform"),
        &os("DER"),
        &os("-out"),
        pkcs8.as_os_str(),
    ]);
    run(&[
        &os("rsa"),
        &os("-in"),
        pem.as_os_str(),
        &os("-traditional"),
        &os("-outform"),
        &os("DER"),
        &os("-out"),
        pkcs1.as_os_str(),
    ]);
    (std::fs::read(pkcs8).unwrap(), std::fs::read(pkcs1).unwrap())
}

#[test]
fn rsa_private_keys_import_and_signatures_verify_with_rustcrypto() {
    use rsa::signature::Verifier;
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::in_memory().unwrap();
    let (pkcs8, pkcs1) = openssl_rsa_pkcs8(2048, dir.path());
    let key = external_key(&engine, KeySpec::Rsa2048, Some(KeyUsage::SignVerify));
    // PKCS#1 is not PKCS#8.
    assert_eq!(
        code(import_with(
            &engine,
            &key,
            WrappingAlgorithm::RsaAesKeyWrapSha256,
            &pkcs1,
            never_expires()
        )),
        "IncorrectKeyMaterialException"
    );
    // A 3072-bit key does not fit an RSA_2048 key.
    assert_eq!(
        code(import_with(
            &engine,
            &key,
            WrappingAlgorithm::RsaAesKeyWrapSha1,
            &openssl_rsa_pkcs8(3072, dir.path()).0,
            never_expires()
        )),
        "IncorrectKeyMaterialException"
    );
    import(&engine, &key, &pkcs8);
    let private = rsa::RsaPrivateKey::from_pkcs8_der(&pkcs8).unwrap();
    let public = private.to_public_key();
    assert_eq!(
        engine.get_public_key(&key).unwrap().public_key,
        public.to_public_key_der().unwrap().as_bytes()
    );
    let signature = sign(&engine, &key, SigningAlgorithm::RsassaPssSha256, b"pss");
    rsa::pss::VerifyingKey::<sha2::Sha256>::new(public.clone())
        .verify(
            b"pss",
            &rsa::pss::Signature::try_from(signature.as_slice()).unwrap(),
        )
        .unwrap();
    let signature = sign(
        &engine,
        &key,
        SigningAlgorithm::RsassaPkcs1V15Sha256,
        b"pkcs1",
    );
    rsa::pkcs1v15::VerifyingKey::<sha2::Sha256>::new(public)
        .verify(
            b"pkcs1",
            &rsa::pkcs1v15::Signature::try_from(signature.as_slice()).unwrap(),
        )
        .unwrap();
    // An RSA encryption key imports too, and its ciphertexts open with the private key.
    let enc_key = external_key(&engine, KeySpec::Rsa2048, Some(KeyUsage::EncryptDecrypt));
    import(&engine, &enc_key, &pkcs8);
    let public_der = engine.get_public_key(&enc_key).unwrap().public_key;
    let ciphertext = oaep_encrypt(&public_der, true, b"to the imported key");
    let opened = engine
        .decrypt(&DecryptRequest {
            key_id: Some(&enc_key),
            encryption_algorithm: Some(keyplane::EncryptionAlgorithm::RsaesOaepSha256),
            ..DecryptRequest::new(&ciphertext)
        })
        .unwrap();
    assert_eq!(opened.plaintext.expose(), b"to the imported key");
}

/// The user's recipe with the `openssl` command line, as the README shows it: OAEP-SHA256 of the
/// raw key for RSAES_OAEP_SHA_256, and `enc -id-aes256-wrap-pad` plus OAEP of the AES key for
/// RSA_AES_KEY_WRAP_SHA_256.
#[test]
fn openssl_recipe_wraps_material_that_imports() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let engine = Engine::in_memory().unwrap();
    let run = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(d)
            .output()
            .expect("openssl is installed");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    for algorithm in [
        WrappingAlgorithm::RsaesOaepSha256,
        WrappingAlgorithm::RsaesOaepSha1,
        WrappingAlgorithm::RsaAesKeyWrapSha256,
        WrappingAlgorithm::RsaAesKeyWrapSha1,
    ] {
        let md = if matches!(
            algorithm,
            WrappingAlgorithm::RsaesOaepSha1 | WrappingAlgorithm::RsaAesKeyWrapSha1
        ) {
            "sha1"
        } else {
            "sha256"
        };
        let key = external_key(&engine, KeySpec::SymmetricDefault, None);
        let params = engine
            .get_parameters_for_import(&key, algorithm, WrappingKeySpec::Rsa3072)
            .unwrap();
        std::fs::write(d.join("wrapping.der"), &params.public_key).unwrap();
        run(&["rand", "-out", "material.bin", "32"]);
        let oaep = |input: &str, output: &str| {
            run(&[
                "pkeyutl",
                "-encrypt",
                "-pubin",
                "-inkey",
                "wrapping.der",
                "-keyform",
                "DER",
                "-in",
                input,
                "-out",
                output,
                "-pkeyopt",
                "rsa_padding_mode:oaep",
                "-pkeyopt",
                &format!("rsa_oaep_md:{md}"),
                "-pkeyopt",
                &format!("rsa_mgf1_md:{md}"),
            ])
        };
        let wrapped = if matches!(
            algorithm,
            WrappingAlgorithm::RsaesOaepSha256 | WrappingAlgorithm::RsaesOaepSha1
        ) {
            oaep("material.bin", "wrapped.bin");
            std::fs::read(d.join("wrapped.bin")).unwrap()
        } else {
            run(&["rand", "-out", "aes.bin", "32"]);
            let aes_hex: String = std::fs::read(d.join("aes.bin"))
                .unwrap()
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            run(&[
                "enc",
                "-id-aes256-wrap-pad",
                "-K",
                &aes_hex,
                "-iv",
                "A65959A6",
                "-in",
                "material.bin",
                "-out",
                "material.wrapped",
            ]);
            oaep("aes.bin", "aes.wrapped");
            let mut all = std::fs::read(d.join("aes.wrapped")).unwrap();
            all.extend(std::fs::read(d.join("material.wrapped")).unwrap());
            all
        };
        engine
            .import_key_material(&ImportKeyMaterialRequest {
                key_id: &key,
                import_token: &params.import_token,
                encrypted_key_material: &wrapped,
                ..never_expires()
            })
            .unwrap_or_else(|e| panic!("openssl-wrapped {algorithm}: {e}"));
        round_trip(&engine, &key);
    }
}

#[test]
fn key_policies_govern_import_with_the_wrapping_and_expiration_conditions() {
    const ACCOUNT_ROOT: &str = "arn:aws:iam::111122223333:root";
    const APP: &str = "arn:aws:iam::111122223333:role/app";
    let policy = serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"AWS": ACCOUNT_ROOT}, "Action": "kms:*", "Resource": "*"},
            {"Effect": "Allow", "Principal": {"AWS": APP},
             "Action": ["kms:GetParametersForImport", "kms:ImportKeyMaterial", "kms:DescribeKey"],
             "Resource": "*"},
            {"Effect": "Deny", "Principal": {"AWS": APP}, "Action": "kms:GetParametersForImport",
             "Resource": "*", "Condition": {"StringEquals": {"kms:WrappingKeySpec": "RSA_2048"}}},
            {"Effect": "Deny", "Principal": {"AWS": APP}, "Action": "kms:GetParametersForImport",
             "Resource": "*",
             "Condition": {"StringEquals": {"kms:WrappingAlgorithm": "RSAES_OAEP_SHA_1"}}},
            {"Effect": "Deny", "Principal": {"AWS": APP}, "Action": "kms:ImportKeyMaterial",
             "Resource": "*",
             "Condition": {"StringEquals": {"kms:ExpirationModel": "KEY_MATERIAL_DOES_NOT_EXPIRE"}}},
            {"Effect": "Deny", "Principal": {"AWS": APP}, "Action": "kms:ImportKeyMaterial",
             "Resource": "*",
             "Condition": {"StringEquals": {"kms:ValidTo": "1800432000"}}}
        ]
    })
    .to_string();
    let clock = Arc::new(ManualClock::new(Timestamp(1_800_000_000_000)));
    let root = Engine::builder().clock(clock.clone()).build().unwrap();
    let key = root
        .create_key(CreateKeyRequest {
            origin: Some(Origin::External),
            policy: Some(policy),
            ..Default::default()
        })
        .unwrap()
        .key_id;
    let app = root.for_caller(Caller::new(APP).unwrap());
    assert_eq!(
        code(app.get_parameters_for_import(
            &key,
            WrappingAlgorithm::RsaesOaepSha256,
            WrappingKeySpec::Rsa2048
        )),
        "AccessDeniedException"
    );
    assert_eq!(
        code(app.get_parameters_for_import(
            &key,
            WrappingAlgorithm::RsaesOaepSha1,
            WrappingKeySpec::Rsa3072
        )),
        "AccessDeniedException"
    );
    let params = app
        .get_parameters_for_import(
            &key,
            WrappingAlgorithm::RsaesOaepSha256,
            WrappingKeySpec::Rsa3072,
        )
        .unwrap();
    let material = random(32);
    let wrapped = wrap(
        &params.public_key,
        WrappingAlgorithm::RsaesOaepSha256,
        &material,
    );
    let request = ImportKeyMaterialRequest {
        key_id: &key,
        import_token: &params.import_token,
        encrypted_key_material: &wrapped,
        ..Default::default()
    };
    assert_eq!(
        code(app.import_key_material(&ImportKeyMaterialRequest {
            expiration_model: Some(ExpirationModel::KeyMaterialDoesNotExpire),
            ..request
        })),
        "AccessDeniedException"
    );
    // kms:ValidTo is the epoch second of ValidTo (the engine's policies compare it as a string:
    // numeric operators are not supported yet).
    assert_eq!(
        code(app.import_key_material(&ImportKeyMaterialRequest {
            valid_to: Some(Timestamp(1_800_432_000_000)),
            ..request
        })),
        "AccessDeniedException"
    );
    assert_eq!(
        app.describe_key(&key).unwrap().key_state,
        KeyState::PendingImport
    );
    app.import_key_material(&ImportKeyMaterialRequest {
        valid_to: Some(Timestamp(1_800_000_000_000 + 10 * DAY_MS)),
        ..request
    })
    .unwrap();
    assert_eq!(app.describe_key(&key).unwrap().key_state, KeyState::Enabled);
    let _ = clock;
}

#[test]
fn expiry_and_deletion_of_imported_material_are_audited() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.log");
    let clock = Arc::new(ManualClock::starting_now());
    let engine = Engine::builder()
        .clock(clock.clone())
        .audit(
            AuditConfig::new(&log),
            generate_signing_key(keyplane::LockPolicy::default()).unwrap(),
        )
        .build()
        .unwrap();
    let key = external_key(&engine, KeySpec::SymmetricDefault, None);
    let material = random(32);
    let id = import_with(
        &engine,
        &key,
        WrappingAlgorithm::RsaesOaepSha256,
        &material,
        ImportKeyMaterialRequest {
            valid_to: Some(clock.now_plus_days(1)),
            ..Default::default()
        },
    )
    .unwrap()
    .key_material_id;
    clock.advance_days(2);
    engine.run_due_tasks().unwrap();
    import(&engine, &key, &material);
    engine.delete_imported_key_material(&key, None).unwrap();
    let text = std::fs::read_to_string(&log).unwrap();
    let events: Vec<serde_json::Value> = text
        .lines()
        .filter(|l| l.starts_with("{\"seq\":"))
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let names: Vec<&str> = events
        .iter()
        .filter_map(|e| e["eventName"].as_str())
        .collect();
    for expected in [
        "GetParametersForImport",
        "ImportKeyMaterial",
        "DeleteExpiredKeyMaterial",
        "DeleteImportedKeyMaterial",
    ] {
        assert!(names.contains(&expected), "{expected} not in {names:?}");
    }
    let expiry = events
        .iter()
        .find(|e| e["eventName"] == "DeleteExpiredKeyMaterial")
        .unwrap();
    assert!(expiry.to_string().contains(&id), "{expiry}");
    assert!(expiry.to_string().contains(&key), "{expiry}");
    // No record holds the material or the token's private key in any plain form.
    let hex: String = material.iter().map(|b| format!("{b:02x}")).collect();
    assert!(!text.contains(&hex));
}
