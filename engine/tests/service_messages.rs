//! The service's own ValidationException messages (issue 17, "Validation messages in the
//! service's format, generated from the model"): each test asserts the code and the exact
//! message, as the service words it, for a request that breaks one of the model's constraints.

use keyplane::{
    CreateKeyRequest, DataKeySpec, DecryptRequest, EncryptRequest, Engine, Error,
    GenerateDataKeyRequest, GenerateMacRequest, KeySpec, KeyUsage, MacAlgorithm, SignRequest,
    SigningAlgorithm, VerifyMacRequest, VerifyRequest,
};

fn engine() -> Engine {
    Engine::builder()
        .lock_policy(keyplane::LockPolicy::Warn)
        .build()
        .unwrap()
}

fn key(engine: &Engine, spec: KeySpec, usage: KeyUsage) -> String {
    engine
        .create_key(CreateKeyRequest {
            key_spec: Some(spec),
            key_usage: Some(usage),
            ..Default::default()
        })
        .unwrap()
        .arn
}

#[track_caller]
fn assert_validation<T: std::fmt::Debug>(result: Result<T, Error>, message: &str) {
    let e = result.expect_err("a ValidationException");
    assert_eq!(e.code(), "ValidationException", "{e}");
    assert_eq!(e.message(), message);
}

const PLAINTEXT_TOO_SHORT: &str = "1 validation error detected: Value at 'plaintext' failed to \
     satisfy constraint: Member must have length greater than or equal to 1";

#[test]
fn encrypt_with_an_empty_plaintext() {
    let engine = engine();
    let key = key(&engine, KeySpec::SymmetricDefault, KeyUsage::EncryptDecrypt);
    assert_validation(
        engine.encrypt(&EncryptRequest::new(&key, b"")),
        PLAINTEXT_TOO_SHORT,
    );
}

#[test]
fn encrypt_with_4097_bytes() {
    let engine = engine();
    let key = key(&engine, KeySpec::SymmetricDefault, KeyUsage::EncryptDecrypt);
    assert_validation(
        engine.encrypt(&EncryptRequest::new(&key, &[7u8; 4097])),
        "1 validation error detected: Value at 'plaintext' failed to satisfy constraint: Member \
         must have length less than or equal to 4096",
    );
    assert!(engine
        .encrypt(&EncryptRequest::new(&key, &[7u8; 4096]))
        .is_ok());
}

#[test]
fn the_configured_plaintext_limit_wins_and_is_the_one_shown() {
    let engine = Engine::builder()
        .lock_policy(keyplane::LockPolicy::Warn)
        .max_plaintext_bytes(1 << 20)
        .build()
        .unwrap();
    let key = key(&engine, KeySpec::SymmetricDefault, KeyUsage::EncryptDecrypt);
    let sealed = engine
        .encrypt(&EncryptRequest::new(&key, &[7u8; 4097]))
        .unwrap();
    // A ciphertext over the model's 6144 bytes decrypts when the engine makes such ciphertexts.
    let big = engine
        .encrypt(&EncryptRequest::new(&key, &vec![7u8; 8192]))
        .unwrap();
    assert!(big.ciphertext_blob.len() > 6144);
    assert!(engine
        .decrypt(&DecryptRequest::new(&big.ciphertext_blob))
        .is_ok());
    assert!(engine
        .decrypt(&DecryptRequest::new(&sealed.ciphertext_blob))
        .is_ok());
    assert_validation(
        engine.encrypt(&EncryptRequest::new(&key, &vec![7u8; (1 << 20) + 1])),
        "1 validation error detected: Value at 'plaintext' failed to satisfy constraint: Member \
         must have length less than or equal to 1048576",
    );
}

#[test]
fn decrypt_with_an_empty_or_oversized_ciphertext() {
    let engine = engine();
    assert_validation(
        engine.decrypt(&DecryptRequest::new(b"")),
        "1 validation error detected: Value at 'ciphertextBlob' failed to satisfy constraint: \
         Member must have length greater than or equal to 1",
    );
    assert_validation(
        engine.decrypt(&DecryptRequest::new(&[0u8; 6145])),
        "1 validation error detected: Value at 'ciphertextBlob' failed to satisfy constraint: \
         Member must have length less than or equal to 6144",
    );
}

#[test]
fn sign_and_verify_with_an_empty_message() {
    let engine = engine();
    let key = key(&engine, KeySpec::EccNistP256, KeyUsage::SignVerify);
    let expected = "1 validation error detected: Value at 'message' failed to satisfy \
                    constraint: Member must have length greater than or equal to 1";
    assert_validation(
        engine.sign(&SignRequest::new(&key, b"", SigningAlgorithm::EcdsaSha256)),
        expected,
    );
    let signature = engine
        .sign(&SignRequest::new(&key, b"m", SigningAlgorithm::EcdsaSha256))
        .unwrap()
        .signature;
    assert_validation(
        engine.verify(&VerifyRequest {
            key_id: &key,
            message: b"",
            message_type: keyplane::MessageType::Raw,
            signature: &signature,
            signing_algorithm: SigningAlgorithm::EcdsaSha256,
        }),
        expected,
    );
}

#[test]
fn verify_with_an_empty_signature_is_a_validation_error_not_an_invalid_signature() {
    let engine = engine();
    let key = key(&engine, KeySpec::EccNistP256, KeyUsage::SignVerify);
    assert_validation(
        engine.verify(&VerifyRequest {
            key_id: &key,
            message: b"m",
            message_type: keyplane::MessageType::Raw,
            signature: b"",
            signing_algorithm: SigningAlgorithm::EcdsaSha256,
        }),
        "1 validation error detected: Value at 'signature' failed to satisfy constraint: Member \
         must have length greater than or equal to 1",
    );
}

#[test]
fn two_errors_at_once_are_counted_and_joined() {
    let engine = engine();
    let key = key(&engine, KeySpec::EccNistP256, KeyUsage::SignVerify);
    assert_validation(
        engine.verify(&VerifyRequest {
            key_id: &key,
            message: b"",
            message_type: keyplane::MessageType::Raw,
            signature: b"",
            signing_algorithm: SigningAlgorithm::EcdsaSha256,
        }),
        "2 validation errors detected: Value at 'message' failed to satisfy constraint: Member \
         must have length greater than or equal to 1; Value at 'signature' failed to satisfy \
         constraint: Member must have length greater than or equal to 1",
    );
    assert_validation(
        engine.describe_key(""),
        "1 validation error detected: Value '' at 'keyId' failed to satisfy constraint: Member \
         must have length greater than or equal to 1",
    );
}

#[test]
fn create_key_with_an_unknown_key_spec() {
    // Enumerations arrive as strings in the bindings (C, Python, CLI) and are parsed there.
    assert_validation(
        "RSA_1024".parse::<KeySpec>(),
        "1 validation error detected: Value 'RSA_1024' at 'keySpec' failed to satisfy \
         constraint: Member must satisfy enum value set: [RSA_2048, RSA_3072, RSA_4096, \
         ECC_NIST_P256, ECC_NIST_P384, ECC_NIST_P521, ECC_SECG_P256K1, SYMMETRIC_DEFAULT, \
         HMAC_224, HMAC_256, HMAC_384, HMAC_512, SM2, ML_DSA_44, ML_DSA_65, ML_DSA_87, \
         ECC_NIST_EDWARDS25519]",
    );
    assert_validation(
        "SIGN".parse::<KeyUsage>(),
        "1 validation error detected: Value 'SIGN' at 'keyUsage' failed to satisfy constraint: \
         Member must satisfy enum value set: [SIGN_VERIFY, ENCRYPT_DECRYPT, \
         GENERATE_VERIFY_MAC, KEY_AGREEMENT]",
    );
}

#[test]
fn sign_with_an_unknown_signing_algorithm() {
    assert_validation(
        "RSASSA_PSS_SHA_1".parse::<SigningAlgorithm>(),
        "1 validation error detected: Value 'RSASSA_PSS_SHA_1' at 'signingAlgorithm' failed to \
         satisfy constraint: Member must satisfy enum value set: [RSASSA_PSS_SHA_256, \
         RSASSA_PSS_SHA_384, RSASSA_PSS_SHA_512, RSASSA_PKCS1_V1_5_SHA_256, \
         RSASSA_PKCS1_V1_5_SHA_384, RSASSA_PKCS1_V1_5_SHA_512, ECDSA_SHA_256, ECDSA_SHA_384, \
         ECDSA_SHA_512, SM2DSA, ML_DSA_SHAKE_256, ED25519_SHA_512, ED25519_PH_SHA_512]",
    );
    assert_validation(
        "HMAC_SHA_1".parse::<MacAlgorithm>(),
        "1 validation error detected: Value 'HMAC_SHA_1' at 'macAlgorithm' failed to satisfy \
         constraint: Member must satisfy enum value set: [HMAC_SHA_224, HMAC_SHA_256, \
         HMAC_SHA_384, HMAC_SHA_512]",
    );
}

#[test]
fn an_enumeration_at_another_member_is_named_by_that_member() {
    assert_validation(
        keyplane::validation::parse_member::<keyplane::EncryptionAlgorithm>(
            "ReEncrypt",
            "DestinationEncryptionAlgorithm",
            "AES",
        ),
        "1 validation error detected: Value 'AES' at 'destinationEncryptionAlgorithm' failed to \
         satisfy constraint: Member must satisfy enum value set: [SYMMETRIC_DEFAULT, \
         RSAES_OAEP_SHA_1, RSAES_OAEP_SHA_256, SM2PKE]",
    );
}

#[test]
fn generate_random_with_0_and_1025_bytes() {
    let engine = engine();
    assert_validation(
        engine.generate_random(0),
        "1 validation error detected: Value '0' at 'numberOfBytes' failed to satisfy \
         constraint: Member must have value greater than or equal to 1",
    );
    assert_validation(
        engine.generate_random(1025),
        "1 validation error detected: Value '1025' at 'numberOfBytes' failed to satisfy \
         constraint: Member must have value less than or equal to 1024",
    );
    assert_eq!(engine.generate_random(1024).unwrap().len(), 1024);
}

#[test]
fn generate_data_key_with_0_bytes() {
    let engine = engine();
    let key = key(&engine, KeySpec::SymmetricDefault, KeyUsage::EncryptDecrypt);
    let mut request = GenerateDataKeyRequest::new(&key, DataKeySpec::Aes256);
    request.key_spec = None;
    request.number_of_bytes = Some(0);
    assert_validation(
        engine.generate_data_key(&request),
        "1 validation error detected: Value '0' at 'numberOfBytes' failed to satisfy \
         constraint: Member must have value greater than or equal to 1",
    );
}

#[test]
fn mac_members_have_the_models_lengths() {
    let engine = engine();
    let key = key(&engine, KeySpec::Hmac256, KeyUsage::GenerateVerifyMac);
    assert_validation(
        engine.generate_mac(&GenerateMacRequest {
            key_id: &key,
            message: &[1u8; 4097],
            mac_algorithm: MacAlgorithm::HmacSha256,
        }),
        "1 validation error detected: Value at 'message' failed to satisfy constraint: Member \
         must have length less than or equal to 4096",
    );
    assert_validation(
        engine.verify_mac(&VerifyMacRequest {
            key_id: &key,
            message: b"m",
            mac: b"",
            mac_algorithm: MacAlgorithm::HmacSha256,
        }),
        "1 validation error detected: Value at 'mac' failed to satisfy constraint: Member must \
         have length greater than or equal to 1",
    );
}

#[test]
fn control_plane_members_are_checked_against_the_model() {
    let engine = engine();
    let key = key(&engine, KeySpec::SymmetricDefault, KeyUsage::EncryptDecrypt);
    assert_validation(
        engine.create_alias("alias/my key", &key),
        "1 validation error detected: Value 'alias/my key' at 'aliasName' failed to satisfy \
         constraint: Member must satisfy regular expression pattern: ^[a-zA-Z0-9:/_-]+$",
    );
    assert_validation(
        engine.list_keys(Some(0), None),
        "1 validation error detected: Value '0' at 'limit' failed to satisfy constraint: Member \
         must have value greater than or equal to 1",
    );
    assert_validation(
        engine.list_aliases(None, Some(1001), None),
        "1 validation error detected: Value '1001' at 'limit' failed to satisfy constraint: \
         Member must have value less than or equal to 1000",
    );
    assert_validation(
        engine.get_key_policy(&key, Some("not-default")),
        "1 validation error detected: Value 'not-default' at 'policyName' failed to satisfy \
         constraint: Member must satisfy regular expression pattern: [\\w]+",
    );
    assert_validation(
        engine.enable_key_rotation(&key, Some(89)),
        "1 validation error detected: Value '89' at 'rotationPeriodInDays' failed to satisfy \
         constraint: Member must have value greater than or equal to 90",
    );
}

#[test]
fn batch_items_fail_on_their_own_with_the_same_message() {
    let engine = engine();
    let key = key(&engine, KeySpec::SymmetricDefault, KeyUsage::EncryptDecrypt);
    let requests = [
        EncryptRequest::new(&key, b"one"),
        EncryptRequest::new(&key, b""),
        EncryptRequest::new(&key, b"three"),
    ];
    let results = engine.encrypt_batch(&requests);
    assert!(results[0].is_ok() && results[2].is_ok());
    assert_validation(results[1].clone(), PLAINTEXT_TOO_SHORT);

    let mut buffers = vec![vec![0xAAu8; 256]; 3];
    let mut outputs: Vec<&mut [u8]> = buffers.iter_mut().map(|b| b.as_mut_slice()).collect();
    let results = engine
        .encrypt_batch_into(&requests, &mut outputs)
        .into_results();
    assert!(results[0].is_ok() && results[2].is_ok());
    assert_validation(results[1].clone(), PLAINTEXT_TOO_SHORT);
    assert!(
        buffers[1].iter().all(|b| *b == 0),
        "a refused item leaves nothing behind"
    );

    let results = engine.generate_random_batch(&[16, 0]);
    assert!(results[0].is_ok());
    assert_validation(
        results[1].clone(),
        "1 validation error detected: Value '0' at 'numberOfBytes' failed to satisfy \
         constraint: Member must have value greater than or equal to 1",
    );
}
