//! Asymmetric keys, HMAC keys and key agreement through the `Engine` API: CreateKey and
//! DescribeKey for every supported spec and usage, GetPublicKey, Sign and Verify (RAW and DIGEST)
//! with every algorithm, GenerateMac and VerifyMac, RSA-OAEP Encrypt, Decrypt and ReEncrypt,
//! DeriveSharedSecret, GenerateDataKeyPair(WithoutPlaintext), key states, rotation, batches and
//! the Debug output of responses that carry secrets.
//!
//! Independent checks use RustCrypto (`rsa`, `p256`, `p384`, `p521`, `k256`, `ed25519-dalek`,
//! `hmac` + `sha2`) with the public key GetPublicKey returns, never the engine's own code.

#[path = "support/outcome.rs"]
mod outcome;
use outcome::code;
use std::collections::HashMap;
use std::sync::OnceLock;

use keyplane::key::{
    DataKeyPairSpec, KeyAgreementAlgorithm, MacAlgorithm, MessageType, SigningAlgorithm,
};
use keyplane::less_safe::hmac::{HmacKey, HmacWork, MAX_MAC_LEN};
use keyplane::{
    CreateKeyRequest, DecryptRequest, DeriveSharedSecretRequest, EncryptRequest,
    EncryptionAlgorithm, Engine, GenerateDataKeyPairRequest, GenerateDataKeyRequest,
    GenerateMacRequest, KeySpec, KeyState, KeyUsage, LockPolicy, Origin, ReEncryptRequest,
    SignRequest, VerifyMacRequest, VerifyRequest,
};
use keyplane_testkit::ctx;
use p256::ecdsa::signature::hazmat::PrehashVerifier;
use p256::ecdsa::signature::Verifier;
use sha2::{Digest, Sha224, Sha256, Sha384, Sha512};
use spki::{DecodePublicKey, EncodePublicKey, ObjectIdentifier, SubjectPublicKeyInfoRef};

// ---- helpers ------------------------------------------------------------------------------------

/// An engine with a four-thread pool, so batches of 64 items or more run on it.
fn pooled_engine() -> Engine {
    let engine = Engine::builder()
        .worker_threads(4)
        .build()
        .expect("engine starts");
    assert_eq!(engine.worker_threads(), 4);
    engine
}

fn create(engine: &Engine, spec: KeySpec, usage: KeyUsage) -> String {
    engine
        .create_key(CreateKeyRequest {
            key_spec: Some(spec),
            key_usage: Some(usage),
            ..Default::default()
        })
        .unwrap_or_else(|e| panic!("create {spec} {usage}: {e}"))
        .key_id
}

fn symmetric(engine: &Engine) -> String {
    engine
        .create_key(CreateKeyRequest::default())
        .expect("create symmetric key")
        .key_id
}

/// A distinct message of `len` bytes for item `i`.
fn message(i: usize, len: usize) -> Vec<u8> {
    let mut m = format!("message {i}:").into_bytes();
    m.resize(len.max(m.len()), (i % 251) as u8);
    m.truncate(len);
    m
}

/// Every supported (spec, usage) pair of the service, in the service's order.
const SUPPORTED: [(KeySpec, KeyUsage); 19] = [
    (KeySpec::SymmetricDefault, KeyUsage::EncryptDecrypt),
    (KeySpec::Rsa2048, KeyUsage::EncryptDecrypt),
    (KeySpec::Rsa2048, KeyUsage::SignVerify),
    (KeySpec::Rsa3072, KeyUsage::EncryptDecrypt),
    (KeySpec::Rsa3072, KeyUsage::SignVerify),
    (KeySpec::Rsa4096, KeyUsage::EncryptDecrypt),
    (KeySpec::Rsa4096, KeyUsage::SignVerify),
    (KeySpec::EccNistP256, KeyUsage::SignVerify),
    (KeySpec::EccNistP256, KeyUsage::KeyAgreement),
    (KeySpec::EccNistP384, KeyUsage::SignVerify),
    (KeySpec::EccNistP384, KeyUsage::KeyAgreement),
    (KeySpec::EccNistP521, KeyUsage::SignVerify),
    (KeySpec::EccNistP521, KeyUsage::KeyAgreement),
    (KeySpec::EccSecgP256k1, KeyUsage::SignVerify),
    (KeySpec::EccNistEdwards25519, KeyUsage::SignVerify),
    (KeySpec::Hmac224, KeyUsage::GenerateVerifyMac),
    (KeySpec::Hmac256, KeyUsage::GenerateVerifyMac),
    (KeySpec::Hmac384, KeyUsage::GenerateVerifyMac),
    (KeySpec::Hmac512, KeyUsage::GenerateVerifyMac),
];

const RSA_SPECS: [KeySpec; 3] = [KeySpec::Rsa2048, KeySpec::Rsa3072, KeySpec::Rsa4096];
const SIGNING_SPECS: [KeySpec; 8] = [
    KeySpec::Rsa2048,
    KeySpec::Rsa3072,
    KeySpec::Rsa4096,
    KeySpec::EccNistP256,
    KeySpec::EccNistP384,
    KeySpec::EccNistP521,
    KeySpec::EccSecgP256k1,
    KeySpec::EccNistEdwards25519,
];
const AGREEMENT_SPECS: [KeySpec; 3] = [
    KeySpec::EccNistP256,
    KeySpec::EccNistP384,
    KeySpec::EccNistP521,
];
const HMAC_SPECS: [KeySpec; 4] = [
    KeySpec::Hmac224,
    KeySpec::Hmac256,
    KeySpec::Hmac384,
    KeySpec::Hmac512,
];

/// The signing algorithms the service lists for a SIGN_VERIFY key of `spec`.
fn service_signing_algorithms(spec: KeySpec) -> Vec<SigningAlgorithm> {
    use SigningAlgorithm::*;
    match spec {
        KeySpec::Rsa2048 | KeySpec::Rsa3072 | KeySpec::Rsa4096 => vec![
            RsassaPssSha256,
            RsassaPssSha384,
            RsassaPssSha512,
            RsassaPkcs1V15Sha256,
            RsassaPkcs1V15Sha384,
            RsassaPkcs1V15Sha512,
        ],
        KeySpec::EccNistP256 | KeySpec::EccSecgP256k1 => vec![EcdsaSha256],
        KeySpec::EccNistP384 => vec![EcdsaSha384],
        KeySpec::EccNistP521 => vec![EcdsaSha512],
        KeySpec::EccNistEdwards25519 => vec![Ed25519Sha512, Ed25519PhSha512],
        other => panic!("{other} is not a signing spec"),
    }
}

fn mac_algorithm(spec: KeySpec) -> MacAlgorithm {
    match spec {
        KeySpec::Hmac224 => MacAlgorithm::HmacSha224,
        KeySpec::Hmac256 => MacAlgorithm::HmacSha256,
        KeySpec::Hmac384 => MacAlgorithm::HmacSha384,
        KeySpec::Hmac512 => MacAlgorithm::HmacSha512,
        other => panic!("{other} is not an HMAC spec"),
    }
}

fn mac_len(algorithm: MacAlgorithm) -> usize {
    match algorithm {
        MacAlgorithm::HmacSha224 => 28,
        MacAlgorithm::HmacSha256 => 32,
        MacAlgorithm::HmacSha384 => 48,
        MacAlgorithm::HmacSha512 => 64,
    }
}

/// The hash a signing algorithm uses, applied to `data`.
fn hash_for(algorithm: SigningAlgorithm, data: &[u8]) -> Vec<u8> {
    use SigningAlgorithm::*;
    match algorithm {
        RsassaPssSha256 | RsassaPkcs1V15Sha256 | EcdsaSha256 => Sha256::digest(data).to_vec(),
        RsassaPssSha384 | RsassaPkcs1V15Sha384 | EcdsaSha384 => Sha384::digest(data).to_vec(),
        RsassaPssSha512 | RsassaPkcs1V15Sha512 | EcdsaSha512 | Ed25519Sha512 | Ed25519PhSha512 => {
            Sha512::digest(data).to_vec()
        }
        other => panic!("no hash for {other}"),
    }
}

/// Every key of every supported spec and usage, on one engine (RSA key generation is slow, so the
/// read-only tests share them).
struct Fixture {
    engine: Engine,
    keys: HashMap<(KeySpec, KeyUsage), String>,
}

impl Fixture {
    fn key(&self, spec: KeySpec, usage: KeyUsage) -> &str {
        &self.keys[&(spec, usage)]
    }
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let engine = pooled_engine();
        let keys = SUPPORTED
            .iter()
            .map(|&(spec, usage)| ((spec, usage), create(&engine, spec, usage)))
            .collect();
        Fixture { engine, keys }
    })
}

// ---- independent verification (RustCrypto) -----------------------------------------------------

fn s(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// Verifies a signature made by the engine with RustCrypto, from the public key alone. `message`
/// is the RAW message or the DIGEST, as signed.
fn verify_independently(
    spec: KeySpec,
    algorithm: SigningAlgorithm,
    spki: &[u8],
    message_type: MessageType,
    message: &[u8],
    signature: &[u8],
) -> Result<(), String> {
    use SigningAlgorithm::*;
    let raw = message_type == MessageType::Raw;
    let digest = if raw {
        hash_for(algorithm, message)
    } else {
        message.to_vec()
    };
    match spec {
        KeySpec::Rsa2048 | KeySpec::Rsa3072 | KeySpec::Rsa4096 => {
            let key = rsa::RsaPublicKey::from_public_key_der(spki).map_err(s)?;
            // `Pss::new` expects a salt as long as the hash, as the service uses.
            match algorithm {
                RsassaPssSha256 => key.verify(rsa::Pss::new::<Sha256>(), &digest, signature),
                RsassaPssSha384 => key.verify(rsa::Pss::new::<Sha384>(), &digest, signature),
                RsassaPssSha512 => key.verify(rsa::Pss::new::<Sha512>(), &digest, signature),
                RsassaPkcs1V15Sha256 => {
                    key.verify(rsa::Pkcs1v15Sign::new::<Sha256>(), &digest, signature)
                }
                RsassaPkcs1V15Sha384 => {
                    key.verify(rsa::Pkcs1v15Sign::new::<Sha384>(), &digest, signature)
                }
                RsassaPkcs1V15Sha512 => {
                    key.verify(rsa::Pkcs1v15Sign::new::<Sha512>(), &digest, signature)
                }
                other => return Err(format!("{other} is not an RSA algorithm")),
            }
            .map_err(s)
        }
        KeySpec::EccNistP256 => {
            let key = p256::ecdsa::VerifyingKey::from_public_key_der(spki).map_err(s)?;
            let sig = p256::ecdsa::Signature::from_der(signature).map_err(s)?;
            key.verify_prehash(&digest, &sig).map_err(s)?;
            if raw {
                key.verify(message, &sig).map_err(s)?;
            }
            Ok(())
        }
        KeySpec::EccNistP384 => {
            let key = p384::ecdsa::VerifyingKey::from_public_key_der(spki).map_err(s)?;
            let sig = p384::ecdsa::Signature::from_der(signature).map_err(s)?;
            key.verify_prehash(&digest, &sig).map_err(s)?;
            if raw {
                key.verify(message, &sig).map_err(s)?;
            }
            Ok(())
        }
        KeySpec::EccNistP521 => {
            let public = p521::PublicKey::from_public_key_der(spki).map_err(s)?;
            let key = p521::ecdsa::VerifyingKey::from_affine(*public.as_affine()).map_err(s)?;
            let sig = p521::ecdsa::Signature::from_der(signature).map_err(s)?;
            key.verify_prehash(&digest, &sig).map_err(s)?;
            if raw {
                key.verify(message, &sig).map_err(s)?;
            }
            Ok(())
        }
        KeySpec::EccSecgP256k1 => {
            let key = k256::ecdsa::VerifyingKey::from_public_key_der(spki).map_err(s)?;
            let sig = k256::ecdsa::Signature::from_der(signature).map_err(s)?;
            // `k256` accepts only low-S signatures (Bitcoin's rule); ECDSA, aws-lc and the
            // service do not normalise S, and (r, n - s) is the same signature.
            let sig = sig.normalize_s().unwrap_or(sig);
            key.verify_prehash(&digest, &sig).map_err(s)?;
            if raw {
                key.verify(message, &sig).map_err(s)?;
            }
            Ok(())
        }
        KeySpec::EccNistEdwards25519 => {
            let key = ed25519_dalek::VerifyingKey::from_public_key_der(spki).map_err(s)?;
            let sig = ed25519_dalek::Signature::from_slice(signature).map_err(s)?;
            match (algorithm, message_type) {
                (Ed25519Sha512, MessageType::Raw) => key.verify_strict(message, &sig).map_err(s),
                (Ed25519PhSha512, MessageType::Raw) => key
                    .verify_prehashed_strict(Sha512::new().chain_update(message), None, &sig)
                    .map_err(s),
                // HashEdDSA over a caller's digest: ed25519-dalek takes the hash state, not its
                // output, so only the engine's own Verify checks these.
                (Ed25519PhSha512, MessageType::Digest) => Ok(()),
                other => Err(format!("{other:?} is not an Ed25519 signature")),
            }
        }
        other => Err(format!("{other} is not a signing spec")),
    }
}

// ---- SubjectPublicKeyInfo ------------------------------------------------------------------------

const RSA_ENCRYPTION: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
const EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
const ED25519: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.112");

fn curve_oid(spec: KeySpec) -> ObjectIdentifier {
    match spec {
        KeySpec::EccNistP256 => ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7"),
        KeySpec::EccNistP384 => ObjectIdentifier::new_unwrap("1.3.132.0.34"),
        KeySpec::EccNistP521 => ObjectIdentifier::new_unwrap("1.3.132.0.35"),
        KeySpec::EccSecgP256k1 => ObjectIdentifier::new_unwrap("1.3.132.0.10"),
        other => panic!("{other} is not an EC spec"),
    }
}

/// Checks that `der` is a DER SubjectPublicKeyInfo of a key of `spec`.
#[track_caller]
fn assert_spki_of(spec: KeySpec, der: &[u8]) {
    let info = SubjectPublicKeyInfoRef::try_from(der)
        .unwrap_or_else(|e| panic!("{spec}: not a SubjectPublicKeyInfo: {e}"));
    match spec {
        KeySpec::Rsa2048 | KeySpec::Rsa3072 | KeySpec::Rsa4096 => {
            assert_eq!(info.algorithm.oid, RSA_ENCRYPTION, "{spec}");
            let key = rsa::RsaPublicKey::from_public_key_der(der).expect("RSA public key");
            let bytes = match spec {
                KeySpec::Rsa2048 => 256,
                KeySpec::Rsa3072 => 384,
                _ => 512,
            };
            assert_eq!(rsa::traits::PublicKeyParts::size(&key), bytes, "{spec}");
            assert_eq!(
                rsa::traits::PublicKeyParts::e(&key),
                &rsa::BigUint::from(65537u32),
                "{spec}: public exponent"
            );
        }
        KeySpec::EccNistEdwards25519 => {
            assert_eq!(info.algorithm.oid, ED25519, "{spec}");
            assert!(info.algorithm.parameters.is_none(), "{spec}: no parameters");
            ed25519_dalek::VerifyingKey::from_public_key_der(der).expect("Ed25519 public key");
        }
        _ => {
            assert_eq!(info.algorithm.oid, EC_PUBLIC_KEY, "{spec}");
            let curve: ObjectIdentifier = info
                .algorithm
                .parameters_oid()
                .unwrap_or_else(|e| panic!("{spec}: named curve: {e}"));
            assert_eq!(curve, curve_oid(spec), "{spec}: curve");
        }
    }
}

// ---- CreateKey, DescribeKey, GetPublicKey -------------------------------------------------------

#[test]
fn every_supported_spec_and_usage_creates_and_describes_its_algorithms() {
    let f = fixture();
    for &(spec, usage) in &SUPPORTED {
        let key = f.key(spec, usage);
        let meta = f.engine.describe_key(key).unwrap();
        assert_eq!(meta.key_spec, spec);
        assert_eq!(meta.customer_master_key_spec, spec);
        assert_eq!(meta.key_usage, usage);
        assert_eq!(meta.key_state, KeyState::Enabled);
        assert_eq!(meta.origin, Origin::AwsKms);
        assert!(meta.current_key_material_id.is_some(), "{spec}");

        let encryption = match (spec, usage) {
            (KeySpec::SymmetricDefault, _) => vec![EncryptionAlgorithm::SymmetricDefault],
            (_, KeyUsage::EncryptDecrypt) => vec![
                EncryptionAlgorithm::RsaesOaepSha1,
                EncryptionAlgorithm::RsaesOaepSha256,
            ],
            _ => vec![],
        };
        let signing = if usage == KeyUsage::SignVerify {
            service_signing_algorithms(spec)
        } else {
            vec![]
        };
        let mac = if usage == KeyUsage::GenerateVerifyMac {
            vec![mac_algorithm(spec)]
        } else {
            vec![]
        };
        let agreement = if usage == KeyUsage::KeyAgreement {
            vec![KeyAgreementAlgorithm::Ecdh]
        } else {
            vec![]
        };
        assert_eq!(meta.encryption_algorithms, encryption, "{spec} {usage}");
        assert_eq!(meta.signing_algorithms, signing, "{spec} {usage}");
        assert_eq!(meta.mac_algorithms, mac, "{spec} {usage}");
        assert_eq!(meta.key_agreement_algorithms, agreement, "{spec} {usage}");
        // The service's JSON leaves empty lists out.
        let json = serde_json::to_value(&meta).unwrap();
        assert_eq!(
            json.get("SigningAlgorithms").is_some(),
            !signing.is_empty(),
            "{spec} {usage}"
        );

        // GetPublicKey: the public key of asymmetric keys, with the same lists.
        let public = f.engine.get_public_key(key);
        if matches!(spec.family(), "symmetric" | "HMAC") {
            assert_eq!(code(public), "UnsupportedOperationException", "{spec}");
            continue;
        }
        let public = public.unwrap_or_else(|e| panic!("GetPublicKey {spec} {usage}: {e}"));
        assert_eq!(public.key_id, meta.arn);
        assert_eq!(public.key_spec, spec);
        assert_eq!(public.key_usage, usage);
        assert_eq!(public.encryption_algorithms, encryption, "{spec} {usage}");
        assert_eq!(public.signing_algorithms, signing, "{spec} {usage}");
        assert_eq!(public.key_agreement_algorithms, agreement, "{spec} {usage}");
        assert_spki_of(spec, &public.public_key);
        // Stable across calls, and the same through the ARN.
        let again = f.engine.get_public_key(&meta.arn).unwrap();
        assert_eq!(again.public_key, public.public_key);
    }
    // Every key has its own key pair.
    let mut publics: Vec<Vec<u8>> = SUPPORTED
        .iter()
        .filter(|(spec, _)| spec.family() == "asymmetric")
        .map(|&(spec, usage)| {
            f.engine
                .get_public_key(f.key(spec, usage))
                .unwrap()
                .public_key
        })
        .collect();
    let n = publics.len();
    publics.sort();
    publics.dedup();
    assert_eq!(publics.len(), n);
}

#[test]
fn sm2_and_ml_dsa_are_unsupported_operations() {
    let engine = Engine::in_memory().unwrap();
    for spec in [KeySpec::Sm2] {
        for usage in [
            KeyUsage::EncryptDecrypt,
            KeyUsage::SignVerify,
            KeyUsage::KeyAgreement,
        ] {
            let result = engine.create_key(CreateKeyRequest {
                key_spec: Some(spec),
                key_usage: Some(usage),
                ..Default::default()
            });
            assert_eq!(
                code(result),
                "UnsupportedOperationException",
                "{spec} {usage}"
            );
        }
    }
    for spec in [KeySpec::MlDsa44, KeySpec::MlDsa65, KeySpec::MlDsa87] {
        let result = engine.create_key(CreateKeyRequest {
            key_spec: Some(spec),
            key_usage: Some(KeyUsage::SignVerify),
            ..Default::default()
        });
        assert_eq!(code(result), "UnsupportedOperationException", "{spec}");
    }
    let wrapping = symmetric(&engine);
    let pair = engine.generate_data_key_pair(&GenerateDataKeyPairRequest {
        key_id: &wrapping,
        encryption_context: None,
        key_pair_spec: DataKeyPairSpec::Sm2,
    });
    assert_eq!(code(pair), "UnsupportedOperationException");
    // Only the symmetric key exists.
    assert_eq!(engine.list_keys(None, None).unwrap().items.len(), 1);
}

// ---- Sign and Verify ----------------------------------------------------------------------------

/// Whether the engine signs with `algorithm` under a key of `spec` at all (ED25519_PH_SHA_512 may
/// be listed but refused with UnsupportedOperation in this build).
fn engine_signs(f: &Fixture, spec: KeySpec, algorithm: SigningAlgorithm) -> bool {
    let key = f.key(spec, KeyUsage::SignVerify);
    // Which error it gives instead is checked by
    // `ed25519_ph_is_either_supported_or_an_unsupported_operation`.
    f.engine
        .sign(&SignRequest::new(key, b"probe", algorithm))
        .is_ok()
}

#[test]
fn sign_and_verify_every_algorithm_raw_and_digest_and_verify_independently() {
    let f = fixture();
    let mut checked = 0;
    for spec in SIGNING_SPECS {
        let key = f.key(spec, KeyUsage::SignVerify);
        let arn = f.engine.describe_key(key).unwrap().arn;
        let spki = f.engine.get_public_key(key).unwrap().public_key;
        for algorithm in service_signing_algorithms(spec) {
            if algorithm == SigningAlgorithm::Ed25519PhSha512 && !engine_signs(f, spec, algorithm) {
                println!("{spec}: {algorithm} is refused with UnsupportedOperation in this build");
                continue;
            }
            for len in [1usize, 32, 1000, 4096] {
                let msg = message(len, len);
                // RAW.
                let signed = f
                    .engine
                    .sign(&SignRequest::new(key, &msg, algorithm))
                    .unwrap_or_else(|e| panic!("{spec} {algorithm} RAW {len}: {e}"));
                assert_eq!(signed.key_id, arn);
                assert_eq!(signed.signing_algorithm, algorithm);
                verify_independently(
                    spec,
                    algorithm,
                    &spki,
                    MessageType::Raw,
                    &msg,
                    &signed.signature,
                )
                .unwrap_or_else(|e| panic!("{spec} {algorithm} RAW {len}: RustCrypto: {e}"));
                let verified = f
                    .engine
                    .verify(&VerifyRequest {
                        key_id: key,
                        message: &msg,
                        message_type: MessageType::Raw,
                        signature: &signed.signature,
                        signing_algorithm: algorithm,
                    })
                    .unwrap_or_else(|e| panic!("{spec} {algorithm} RAW verify: {e}"));
                assert!(verified.signature_valid);
                assert_eq!(verified.key_id, arn);
                assert_eq!(verified.signing_algorithm, algorithm);
                checked += 1;

                if algorithm == SigningAlgorithm::Ed25519Sha512 {
                    // PureEdDSA signs the message itself: there is no DIGEST form.
                    let digest = hash_for(algorithm, &msg);
                    let e = f
                        .engine
                        .sign(&SignRequest {
                            key_id: key,
                            message: &digest,
                            message_type: MessageType::Digest,
                            signing_algorithm: algorithm,
                        })
                        .unwrap_err();
                    assert!(
                        matches!(
                            e.code(),
                            "ValidationException" | "UnsupportedOperationException"
                        ),
                        "{spec} {algorithm} DIGEST: {e}"
                    );
                    continue;
                }

                // DIGEST: the hash of the same message.
                let digest = hash_for(algorithm, &msg);
                let signed_digest = f
                    .engine
                    .sign(&SignRequest {
                        key_id: key,
                        message: &digest,
                        message_type: MessageType::Digest,
                        signing_algorithm: algorithm,
                    })
                    .unwrap_or_else(|e| panic!("{spec} {algorithm} DIGEST: {e}"));
                verify_independently(
                    spec,
                    algorithm,
                    &spki,
                    MessageType::Digest,
                    &digest,
                    &signed_digest.signature,
                )
                .unwrap_or_else(|e| panic!("{spec} {algorithm} DIGEST: RustCrypto: {e}"));
                // A signature over the digest verifies as a signature over the message, and the
                // other way round.
                for (sig, what) in [
                    (&signed_digest.signature, "digest-signed"),
                    (&signed.signature, "raw-signed"),
                ] {
                    f.engine
                        .verify(&VerifyRequest {
                            key_id: key,
                            message: &msg,
                            message_type: MessageType::Raw,
                            signature: sig,
                            signing_algorithm: algorithm,
                        })
                        .unwrap_or_else(|e| panic!("{spec} {algorithm} {what} as RAW: {e}"));
                    f.engine
                        .verify(&VerifyRequest {
                            key_id: key,
                            message: &digest,
                            message_type: MessageType::Digest,
                            signature: sig,
                            signing_algorithm: algorithm,
                        })
                        .unwrap_or_else(|e| panic!("{spec} {algorithm} {what} as DIGEST: {e}"));
                }
                checked += 1;
            }
        }
    }
    // 3 RSA keys x 6 algorithms + 4 ECDSA keys + Ed25519, 4 lengths, RAW and DIGEST.
    assert!(checked >= (3 * 6 + 4) * 4 * 2 + 4, "checked {checked}");
}

#[test]
fn message_and_digest_lengths_are_validated() {
    let f = fixture();
    let big = vec![7u8; 4097];
    for spec in SIGNING_SPECS {
        let key = f.key(spec, KeyUsage::SignVerify);
        for algorithm in service_signing_algorithms(spec) {
            if algorithm == SigningAlgorithm::Ed25519PhSha512 && !engine_signs(f, spec, algorithm) {
                continue;
            }
            let good = f
                .engine
                .sign(&SignRequest::new(key, b"hello", algorithm))
                .unwrap()
                .signature;
            // RAW: 1 to 4096 bytes.
            for msg in [&big[..], &[][..]] {
                assert_eq!(
                    code(f.engine.sign(&SignRequest::new(key, msg, algorithm))),
                    "ValidationException",
                    "{spec} {algorithm} RAW of {} bytes",
                    msg.len()
                );
                assert_eq!(
                    code(f.engine.verify(&VerifyRequest {
                        key_id: key,
                        message: msg,
                        message_type: MessageType::Raw,
                        signature: &good,
                        signing_algorithm: algorithm,
                    })),
                    "ValidationException",
                    "{spec} {algorithm} verify RAW of {} bytes",
                    msg.len()
                );
            }
            if algorithm == SigningAlgorithm::Ed25519Sha512 {
                continue;
            }
            // DIGEST: exactly the hash's length.
            let right = hash_for(algorithm, b"hello").len();
            for len in [0, 1, 20, 28, 32, 48, 64, 65, right - 1, right + 1] {
                if len == right {
                    continue;
                }
                let digest = vec![0x5a; len];
                let sign = f.engine.sign(&SignRequest {
                    key_id: key,
                    message: &digest,
                    message_type: MessageType::Digest,
                    signing_algorithm: algorithm,
                });
                assert_eq!(
                    code(sign),
                    "ValidationException",
                    "{spec} {algorithm} DIGEST of {len} bytes"
                );
                let verify = f.engine.verify(&VerifyRequest {
                    key_id: key,
                    message: &digest,
                    message_type: MessageType::Digest,
                    signature: &good,
                    signing_algorithm: algorithm,
                });
                assert_eq!(
                    code(verify),
                    "ValidationException",
                    "{spec} {algorithm} verify DIGEST of {len} bytes"
                );
            }
            // EXTERNAL_MU is for ML-DSA only.
            let mu = f.engine.sign(&SignRequest {
                key_id: key,
                message: &[0u8; 64],
                message_type: MessageType::ExternalMu,
                signing_algorithm: algorithm,
            });
            assert!(
                matches!(
                    code(mu),
                    "ValidationException" | "UnsupportedOperationException"
                ),
                "{spec} {algorithm} EXTERNAL_MU"
            );
        }
    }
}

/// A valid signature over `msg` by `key`, for each algorithm the engine signs with.
fn signatures_of(f: &Fixture, spec: KeySpec, msg: &[u8]) -> Vec<(SigningAlgorithm, Vec<u8>)> {
    let key = f.key(spec, KeyUsage::SignVerify);
    service_signing_algorithms(spec)
        .into_iter()
        .filter(|&a| a != SigningAlgorithm::Ed25519PhSha512 || engine_signs(f, spec, a))
        .map(|a| {
            let sig = f
                .engine
                .sign(&SignRequest::new(key, msg, a))
                .unwrap_or_else(|e| panic!("{spec} {a}: {e}"))
                .signature;
            (a, sig)
        })
        .collect()
}

#[test]
fn every_flipped_bit_of_a_signature_is_rejected() {
    let f = fixture();
    let msg = b"every bit counts".to_vec();
    let mut rejected = 0usize;
    for spec in SIGNING_SPECS {
        let key = f.key(spec, KeyUsage::SignVerify);
        for (algorithm, sig) in signatures_of(f, spec, &msg) {
            let mut forged: Vec<Vec<u8>> = (0..sig.len() * 8)
                .map(|bit| {
                    let mut s = sig.clone();
                    s[bit / 8] ^= 1 << (bit % 8);
                    s
                })
                .collect();
            // Truncated, extended and empty signatures too.
            forged.push(sig[..sig.len() - 1].to_vec());
            forged.push([sig.as_slice(), &[0]].concat());
            forged.push(Vec::new());
            let requests: Vec<VerifyRequest<'_>> = forged
                .iter()
                .map(|s| VerifyRequest {
                    key_id: key,
                    message: &msg,
                    message_type: MessageType::Raw,
                    signature: s,
                    signing_algorithm: algorithm,
                })
                .collect();
            for (i, result) in f.engine.verify_batch(&requests).into_iter().enumerate() {
                // An empty signature breaks the model's length constraint: ValidationException,
                // as the service answers, not KMSInvalidSignatureException.
                let expected = if forged[i].is_empty() {
                    "ValidationException"
                } else {
                    "KMSInvalidSignatureException"
                };
                assert_eq!(code(result), expected, "{spec} {algorithm}: forgery {i}");
                rejected += 1;
            }
            // The original still verifies; a changed message does not.
            f.engine
                .verify(&VerifyRequest {
                    key_id: key,
                    message: &msg,
                    message_type: MessageType::Raw,
                    signature: &sig,
                    signing_algorithm: algorithm,
                })
                .unwrap();
            assert_eq!(
                code(f.engine.verify(&VerifyRequest {
                    key_id: key,
                    message: b"every bit count",
                    message_type: MessageType::Raw,
                    signature: &sig,
                    signing_algorithm: algorithm,
                })),
                "KMSInvalidSignatureException",
                "{spec} {algorithm}: other message"
            );
        }
    }
    println!("rejected {rejected} forged signatures");
    // RSA: (2048 + 3072 + 4096) bits x 6 algorithms alone.
    assert!(rejected > 9216 * 6, "rejected {rejected}");
}

#[test]
fn a_signature_by_one_key_fails_under_another() {
    let f = fixture();
    let engine = &f.engine;
    let msg = b"who signed this?".to_vec();
    for spec in SIGNING_SPECS {
        let other = create(engine, spec, KeyUsage::SignVerify);
        for (algorithm, sig) in signatures_of(f, spec, &msg) {
            let verify = engine.verify(&VerifyRequest {
                key_id: &other,
                message: &msg,
                message_type: MessageType::Raw,
                signature: &sig,
                signing_algorithm: algorithm,
            });
            assert_eq!(
                code(verify),
                "KMSInvalidSignatureException",
                "{spec} {algorithm}"
            );
            // Nor does RustCrypto accept it under the other public key.
            let other_spki = engine.get_public_key(&other).unwrap().public_key;
            assert!(
                verify_independently(spec, algorithm, &other_spki, MessageType::Raw, &msg, &sig)
                    .is_err(),
                "{spec} {algorithm}: RustCrypto accepted another key's signature"
            );
        }
    }
    // Across specs of the same signature shape: a P-256 signature under a secp256k1 key.
    let p256_sig = signatures_of(f, KeySpec::EccNistP256, &msg).remove(0).1;
    let verify = engine.verify(&VerifyRequest {
        key_id: f.key(KeySpec::EccSecgP256k1, KeyUsage::SignVerify),
        message: &msg,
        message_type: MessageType::Raw,
        signature: &p256_sig,
        signing_algorithm: SigningAlgorithm::EcdsaSha256,
    });
    assert_eq!(code(verify), "KMSInvalidSignatureException");
    // An RSA-2048 signature under an RSA-3072 key.
    let rsa_sig = signatures_of(f, KeySpec::Rsa2048, &msg).remove(0);
    let verify = engine.verify(&VerifyRequest {
        key_id: f.key(KeySpec::Rsa3072, KeyUsage::SignVerify),
        message: &msg,
        message_type: MessageType::Raw,
        signature: &rsa_sig.1,
        signing_algorithm: rsa_sig.0,
    });
    assert_eq!(code(verify), "KMSInvalidSignatureException");
    // A PSS signature verified as PKCS#1 v1.5 (same key, same hash).
    let rsa_key = f.key(KeySpec::Rsa2048, KeyUsage::SignVerify);
    let pss = engine
        .sign(&SignRequest::new(
            rsa_key,
            &msg,
            SigningAlgorithm::RsassaPssSha256,
        ))
        .unwrap()
        .signature;
    let verify = engine.verify(&VerifyRequest {
        key_id: rsa_key,
        message: &msg,
        message_type: MessageType::Raw,
        signature: &pss,
        signing_algorithm: SigningAlgorithm::RsassaPkcs1V15Sha256,
    });
    assert_eq!(code(verify), "KMSInvalidSignatureException");
}

#[test]
fn pss_and_ecdsa_signatures_are_randomised_pkcs1_and_ed25519_are_deterministic() {
    let f = fixture();
    let sign = |spec, algorithm| {
        let key = f.key(spec, KeyUsage::SignVerify);
        f.engine
            .sign(&SignRequest::new(key, b"same message", algorithm))
            .unwrap()
            .signature
    };
    for (spec, algorithm, deterministic) in [
        (KeySpec::Rsa2048, SigningAlgorithm::RsassaPssSha256, false),
        (
            KeySpec::Rsa2048,
            SigningAlgorithm::RsassaPkcs1V15Sha256,
            true,
        ),
        (KeySpec::EccNistP256, SigningAlgorithm::EcdsaSha256, false),
        (
            KeySpec::EccNistEdwards25519,
            SigningAlgorithm::Ed25519Sha512,
            true,
        ),
    ] {
        let (a, b) = (sign(spec, algorithm), sign(spec, algorithm));
        assert_eq!(a == b, deterministic, "{spec} {algorithm}");
    }
}

#[test]
fn ed25519_ph_is_either_supported_or_an_unsupported_operation() {
    // DescribeKey lists ED25519_PH_SHA_512 for ECC_NIST_EDWARDS25519 keys, as the service does.
    // If this build does not implement it, Sign and Verify must say so (UnsupportedOperation);
    // saying the listed algorithm is "not valid" for the key (ValidationException) contradicts
    // DescribeKey.
    let f = fixture();
    let key = f.key(KeySpec::EccNistEdwards25519, KeyUsage::SignVerify);
    let listed = f.engine.describe_key(key).unwrap().signing_algorithms;
    assert!(listed.contains(&SigningAlgorithm::Ed25519PhSha512));
    let spki = f.engine.get_public_key(key).unwrap().public_key;
    let algorithm = SigningAlgorithm::Ed25519PhSha512;
    let digest = Sha512::digest(b"prehashed").to_vec();
    for (message_type, msg) in [
        (MessageType::Raw, b"prehashed".to_vec()),
        (MessageType::Digest, digest),
    ] {
        let request = SignRequest {
            key_id: key,
            message: &msg,
            message_type,
            signing_algorithm: algorithm,
        };
        match f.engine.sign(&request) {
            Ok(signed) => {
                verify_independently(
                    KeySpec::EccNistEdwards25519,
                    algorithm,
                    &spki,
                    message_type,
                    &msg,
                    &signed.signature,
                )
                .unwrap();
                f.engine
                    .verify(&VerifyRequest {
                        key_id: key,
                        message: &msg,
                        message_type,
                        signature: &signed.signature,
                        signing_algorithm: algorithm,
                    })
                    .unwrap();
            }
            Err(e) => assert_eq!(
                e.code(),
                "UnsupportedOperationException",
                "{algorithm} {message_type}: {e}"
            ),
        }
        let verify = f.engine.verify(&VerifyRequest {
            key_id: key,
            message: &msg,
            message_type,
            signature: &[0u8; 64],
            signing_algorithm: algorithm,
        });
        assert!(
            matches!(
                code(verify),
                "KMSInvalidSignatureException" | "UnsupportedOperationException"
            ),
            "verify {algorithm} {message_type}"
        );
    }
}

#[test]
fn signing_algorithms_the_key_spec_does_not_allow_are_invalid_key_usage() {
    let f = fixture();
    let mut wrong = Vec::new();
    for spec in SIGNING_SPECS {
        let key = f.key(spec, KeyUsage::SignVerify);
        let allowed = service_signing_algorithms(spec);
        let (good_alg, good_sig) = signatures_of(f, spec, b"msg").remove(0);
        assert!(allowed.contains(&good_alg));
        for &algorithm in SigningAlgorithm::ALL {
            if allowed.contains(&algorithm) {
                continue;
            }
            // The service: InvalidKeyUsageException, `Algorithm <alg> is incompatible with key
            // spec <spec>.`
            let incompatible =
                format!("Algorithm {algorithm} is incompatible with key spec {spec}.");
            let sign = f.engine.sign(&SignRequest::new(key, b"msg", algorithm));
            match sign {
                Err(e) if e.code() == "InvalidKeyUsageException" && e.message() == incompatible => {
                }
                Err(e) => wrong.push(format!("Sign {spec} with {algorithm}: {}", e.code())),
                Ok(r) => wrong.push(format!(
                    "Sign {spec} with {algorithm}: succeeded ({}-byte signature)",
                    r.signature.len()
                )),
            }
            let verify = f.engine.verify(&VerifyRequest {
                key_id: key,
                message: b"msg",
                message_type: MessageType::Raw,
                signature: &good_sig,
                signing_algorithm: algorithm,
            });
            match verify {
                Err(e) if e.code() == "InvalidKeyUsageException" && e.message() == incompatible => {
                }
                Err(e) => wrong.push(format!("Verify {spec} with {algorithm}: {e}")),
                Ok(_) => wrong.push(format!("Verify {spec} with {algorithm}: succeeded")),
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "{} calls with an algorithm the key spec does not allow were not InvalidKeyUsageException:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
}

// ---- wrong usage --------------------------------------------------------------------------------

#[test]
fn operations_on_keys_of_the_wrong_usage_are_invalid_key_usage() {
    let f = fixture();
    let engine = &f.engine;
    let k = |spec, usage| f.key(spec, usage);
    let sym = k(KeySpec::SymmetricDefault, KeyUsage::EncryptDecrypt);
    let rsa_enc = k(KeySpec::Rsa2048, KeyUsage::EncryptDecrypt);
    let rsa_sign = k(KeySpec::Rsa2048, KeyUsage::SignVerify);
    let p256_sign = k(KeySpec::EccNistP256, KeyUsage::SignVerify);
    let p256_agree = k(KeySpec::EccNistP256, KeyUsage::KeyAgreement);
    let ed = k(KeySpec::EccNistEdwards25519, KeyUsage::SignVerify);
    let hmac = k(KeySpec::Hmac256, KeyUsage::GenerateVerifyMac);
    let peer = engine.get_public_key(p256_agree).unwrap().public_key;
    let mut checked = 0;
    let mut expect = |result: &'static str, what: String| {
        assert_eq!(result, "InvalidKeyUsageException", "{what}");
        checked += 1;
    };

    // Sign and Verify need SIGN_VERIFY.
    for key in [sym, rsa_enc, p256_agree, hmac] {
        for algorithm in [
            SigningAlgorithm::RsassaPssSha256,
            SigningAlgorithm::EcdsaSha256,
        ] {
            expect(
                code(engine.sign(&SignRequest::new(key, b"m", algorithm))),
                format!("sign with {key} ({algorithm})"),
            );
            expect(
                code(engine.verify(&VerifyRequest {
                    key_id: key,
                    message: b"m",
                    message_type: MessageType::Raw,
                    signature: &[1; 64],
                    signing_algorithm: algorithm,
                })),
                format!("verify with {key}"),
            );
        }
    }
    // Encrypt needs ENCRYPT_DECRYPT.
    for key in [rsa_sign, p256_sign, p256_agree, ed, hmac] {
        for algorithm in [
            EncryptionAlgorithm::SymmetricDefault,
            EncryptionAlgorithm::RsaesOaepSha256,
        ] {
            let mut request = EncryptRequest::new(key, b"secret");
            request.encryption_algorithm = algorithm;
            expect(
                code(engine.encrypt(&request)),
                format!("encrypt with {key} ({algorithm})"),
            );
        }
        let mut re = ReEncryptRequest::new(b"whatever", key);
        re.destination_encryption_algorithm = EncryptionAlgorithm::RsaesOaepSha256;
        expect(code(engine.re_encrypt(&re)), format!("re-encrypt to {key}"));
    }
    // Decrypt naming a key that is not an encryption key, with an RSA algorithm.
    let rsa_ciphertext = {
        let mut request = EncryptRequest::new(rsa_enc, b"secret");
        request.encryption_algorithm = EncryptionAlgorithm::RsaesOaepSha256;
        engine.encrypt(&request).unwrap().ciphertext_blob
    };
    for key in [rsa_sign, p256_agree, hmac] {
        let mut request = DecryptRequest::new(&rsa_ciphertext).with_key_id(key);
        request.encryption_algorithm = Some(EncryptionAlgorithm::RsaesOaepSha256);
        expect(
            code(engine.decrypt(&request)),
            format!("decrypt with {key}"),
        );
    }
    // GenerateMac and VerifyMac need GENERATE_VERIFY_MAC.
    for key in [sym, rsa_sign, rsa_enc, p256_sign, p256_agree] {
        for algorithm in [MacAlgorithm::HmacSha256, MacAlgorithm::HmacSha512] {
            expect(
                code(engine.generate_mac(&GenerateMacRequest {
                    key_id: key,
                    message: b"m",
                    mac_algorithm: algorithm,
                })),
                format!("mac with {key}"),
            );
            expect(
                code(engine.verify_mac(&VerifyMacRequest {
                    key_id: key,
                    message: b"m",
                    mac: &[0; 32],
                    mac_algorithm: algorithm,
                })),
                format!("verify mac with {key}"),
            );
        }
    }
    // DeriveSharedSecret needs KEY_AGREEMENT.
    for key in [sym, rsa_enc, rsa_sign, p256_sign, hmac] {
        expect(
            code(engine.derive_shared_secret(&DeriveSharedSecretRequest {
                key_id: key,
                key_agreement_algorithm: KeyAgreementAlgorithm::Ecdh,
                public_key: &peer,
            })),
            format!("derive with {key}"),
        );
    }
    // GenerateDataKey(Pair) wrap under symmetric encryption keys only.
    for key in [rsa_enc, rsa_sign, p256_agree, hmac] {
        expect(
            code(engine.generate_data_key(&GenerateDataKeyRequest::new(
                key,
                keyplane::DataKeySpec::Aes256,
            ))),
            format!("data key under {key}"),
        );
        expect(
            code(engine.generate_data_key_pair(&GenerateDataKeyPairRequest {
                key_id: key,
                encryption_context: None,
                key_pair_spec: DataKeyPairSpec::EccNistP256,
            })),
            format!("data key pair under {key}"),
        );
    }
    assert!(checked > 60, "checked {checked}");
}

#[test]
fn decrypt_naming_a_key_that_is_not_an_encryption_key_is_invalid_key_usage() {
    // Decrypt with a KeyId that names a SIGN_VERIFY, KEY_AGREEMENT or GENERATE_VERIFY_MAC key is
    // the wrong usage for the operation, whatever the ciphertext is (here an RSA-OAEP ciphertext,
    // which needs its key named), with or without an RSA algorithm.
    let f = fixture();
    let engine = &f.engine;
    let rsa_enc = f.key(KeySpec::Rsa2048, KeyUsage::EncryptDecrypt);
    let ct = rsa_encrypt(
        engine,
        rsa_enc,
        EncryptionAlgorithm::RsaesOaepSha256,
        b"secret",
    );
    let mut wrong = Vec::new();
    for (spec, usage) in [
        (KeySpec::Rsa2048, KeyUsage::SignVerify),
        (KeySpec::EccNistP256, KeyUsage::KeyAgreement),
        (KeySpec::Hmac256, KeyUsage::GenerateVerifyMac),
    ] {
        let key = f.key(spec, usage);
        for algorithm in [None, Some(EncryptionAlgorithm::RsaesOaepSha256)] {
            let mut request = DecryptRequest::new(&ct).with_key_id(key);
            request.encryption_algorithm = algorithm;
            match engine.decrypt(&request) {
                Err(e) if e.code() == "InvalidKeyUsageException" => {}
                Err(e) => wrong.push(format!("{spec} {usage} with {algorithm:?}: {e}")),
                Ok(_) => wrong.push(format!("{spec} {usage} with {algorithm:?}: decrypted")),
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "Decrypt naming a non-encryption key was not InvalidKeyUsage:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn mac_algorithms_the_key_spec_does_not_allow_are_invalid_key_usage() {
    let f = fixture();
    for spec in HMAC_SPECS {
        let key = f.key(spec, KeyUsage::GenerateVerifyMac);
        for &algorithm in MacAlgorithm::ALL {
            if algorithm == mac_algorithm(spec) {
                continue;
            }
            let generate = f.engine.generate_mac(&GenerateMacRequest {
                key_id: key,
                message: b"m",
                mac_algorithm: algorithm,
            });
            let incompatible =
                format!("Algorithm {algorithm} is incompatible with key spec {spec}.");
            let generate = generate.unwrap_err();
            assert_eq!(
                (generate.code(), generate.message()),
                ("InvalidKeyUsageException", incompatible.as_str()),
                "{spec} {algorithm}"
            );
            let verify = f.engine.verify_mac(&VerifyMacRequest {
                key_id: key,
                message: b"m",
                mac: &[0; 64][..mac_len(algorithm)],
                mac_algorithm: algorithm,
            });
            let verify = verify.unwrap_err();
            assert_eq!(
                (verify.code(), verify.message()),
                ("InvalidKeyUsageException", incompatible.as_str()),
                "{spec} {algorithm}"
            );
        }
    }
}

#[test]
fn encryption_algorithms_an_rsa_key_does_not_allow_are_invalid_key_usage() {
    // As for symmetric keys (and the service): an encryption algorithm the key's spec does not
    // offer is InvalidKeyUsage.
    let f = fixture();
    for spec in RSA_SPECS {
        let key = f.key(spec, KeyUsage::EncryptDecrypt);
        let ciphertext = {
            let mut request = EncryptRequest::new(key, b"secret");
            request.encryption_algorithm = EncryptionAlgorithm::RsaesOaepSha1;
            f.engine.encrypt(&request).unwrap().ciphertext_blob
        };
        for algorithm in [
            EncryptionAlgorithm::SymmetricDefault,
            EncryptionAlgorithm::Sm2Pke,
        ] {
            let mut request = EncryptRequest::new(key, b"secret");
            request.encryption_algorithm = algorithm;
            assert_eq!(
                code(f.engine.encrypt(&request)),
                "InvalidKeyUsageException",
                "{spec} {algorithm}"
            );
            let mut request = DecryptRequest::new(&ciphertext).with_key_id(key);
            request.encryption_algorithm = Some(algorithm);
            assert_eq!(
                code(f.engine.decrypt(&request)),
                "InvalidKeyUsageException",
                "{spec} {algorithm}"
            );
        }
    }
}

// ---- RSA-OAEP -----------------------------------------------------------------------------------

fn oaep_limit(spec: KeySpec, algorithm: EncryptionAlgorithm) -> usize {
    match (spec, algorithm) {
        (KeySpec::Rsa2048, EncryptionAlgorithm::RsaesOaepSha1) => 214,
        (KeySpec::Rsa2048, EncryptionAlgorithm::RsaesOaepSha256) => 190,
        (KeySpec::Rsa3072, EncryptionAlgorithm::RsaesOaepSha1) => 342,
        (KeySpec::Rsa3072, EncryptionAlgorithm::RsaesOaepSha256) => 318,
        (KeySpec::Rsa4096, EncryptionAlgorithm::RsaesOaepSha1) => 470,
        (KeySpec::Rsa4096, EncryptionAlgorithm::RsaesOaepSha256) => 446,
        other => panic!("no OAEP limit for {other:?}"),
    }
}

const OAEP: [EncryptionAlgorithm; 2] = [
    EncryptionAlgorithm::RsaesOaepSha1,
    EncryptionAlgorithm::RsaesOaepSha256,
];

fn rsa_encrypt(engine: &Engine, key: &str, alg: EncryptionAlgorithm, pt: &[u8]) -> Vec<u8> {
    let mut request = EncryptRequest::new(key, pt);
    request.encryption_algorithm = alg;
    engine
        .encrypt(&request)
        .unwrap_or_else(|e| panic!("encrypt {} bytes with {alg}: {e}", pt.len()))
        .ciphertext_blob
}

fn rsa_decrypt(
    engine: &Engine,
    key: &str,
    alg: EncryptionAlgorithm,
    ct: &[u8],
) -> keyplane::Result<Vec<u8>> {
    let mut request = DecryptRequest::new(ct).with_key_id(key);
    request.encryption_algorithm = Some(alg);
    engine
        .decrypt(&request)
        .map(|r| r.plaintext.expose().to_vec())
}

#[test]
fn rsa_oaep_encrypts_and_decrypts_up_to_the_service_limits() {
    let f = fixture();
    let engine = &f.engine;
    for spec in RSA_SPECS {
        let key = f.key(spec, KeyUsage::EncryptDecrypt);
        let meta = engine.describe_key(key).unwrap();
        let modulus = match spec {
            KeySpec::Rsa2048 => 256,
            KeySpec::Rsa3072 => 384,
            _ => 512,
        };
        for algorithm in OAEP {
            let max = oaep_limit(spec, algorithm);
            for len in [1, 16, max - 1, max] {
                let pt = message(len, len);
                let mut request = EncryptRequest::new(key, &pt);
                request.encryption_algorithm = algorithm;
                let sealed = engine.encrypt(&request).unwrap();
                assert_eq!(sealed.key_id, meta.arn);
                assert_eq!(sealed.encryption_algorithm, algorithm);
                assert_eq!(sealed.ciphertext_blob.len(), modulus, "{spec} {algorithm}");
                let mut request = DecryptRequest::new(&sealed.ciphertext_blob).with_key_id(key);
                request.encryption_algorithm = Some(algorithm);
                let opened = engine.decrypt(&request).unwrap();
                assert_eq!(opened.plaintext.expose(), pt.as_slice());
                assert_eq!(opened.key_id, meta.arn);
                assert_eq!(opened.encryption_algorithm, algorithm);
                assert_eq!(
                    Some(opened.key_material_id),
                    meta.current_key_material_id.clone()
                );
                // OAEP is randomised.
                assert_ne!(
                    rsa_encrypt(engine, key, algorithm, &pt),
                    sealed.ciphertext_blob
                );
            }
            for len in [0, max + 1, 4096] {
                let pt = vec![1u8; len];
                let mut request = EncryptRequest::new(key, &pt);
                request.encryption_algorithm = algorithm;
                assert_eq!(
                    code(engine.encrypt(&request)),
                    "ValidationException",
                    "{spec} {algorithm} {len} bytes"
                );
            }
        }
    }
}

#[test]
fn rsa_ciphertexts_need_the_key_and_the_right_algorithm() {
    let f = fixture();
    let engine = &f.engine;
    let key = f.key(KeySpec::Rsa2048, KeyUsage::EncryptDecrypt);
    let other = f.key(KeySpec::Rsa3072, KeyUsage::EncryptDecrypt);
    let sym = f.key(KeySpec::SymmetricDefault, KeyUsage::EncryptDecrypt);
    for algorithm in OAEP {
        let ct = rsa_encrypt(engine, key, algorithm, b"attack at dawn");
        // Without a KeyId the engine cannot know the key: it fails.
        let mut request = DecryptRequest::new(&ct);
        request.encryption_algorithm = Some(algorithm);
        assert!(
            engine.decrypt(&request).is_err(),
            "{algorithm} without a key"
        );
        assert!(
            engine.decrypt(&DecryptRequest::new(&ct)).is_err(),
            "{algorithm} without a key or algorithm"
        );
        // With the key but no algorithm.
        let request = DecryptRequest::new(&ct).with_key_id(key);
        assert_eq!(code(engine.decrypt(&request)), "ValidationException");
        // The other OAEP hash.
        let wrong = if algorithm == OAEP[0] {
            OAEP[1]
        } else {
            OAEP[0]
        };
        assert_eq!(
            code(rsa_decrypt(engine, key, wrong, &ct)),
            "InvalidCiphertextException",
            "{algorithm} decrypted as {wrong}"
        );
        // Another RSA key.
        assert_eq!(
            code(rsa_decrypt(engine, other, algorithm, &ct)),
            "InvalidCiphertextException"
        );
        // A symmetric key named for it.
        assert!(engine
            .decrypt(&DecryptRequest::new(&ct).with_key_id(sym))
            .is_err());
        // Tampering anywhere.
        for i in [0, 1, 100, ct.len() - 1] {
            let mut bad = ct.clone();
            bad[i] ^= 0x01;
            assert_eq!(
                code(rsa_decrypt(engine, key, algorithm, &bad)),
                "InvalidCiphertextException",
                "{algorithm} byte {i}"
            );
        }
        assert_eq!(
            code(rsa_decrypt(engine, key, algorithm, &ct[1..])),
            "InvalidCiphertextException"
        );
        // Empty: the model's length constraint, as the service answers.
        assert_eq!(
            code(rsa_decrypt(engine, key, algorithm, &[])),
            "ValidationException"
        );
        assert_eq!(
            rsa_decrypt(engine, key, algorithm, &ct).unwrap(),
            b"attack at dawn"
        );
    }
}

#[test]
fn rustcrypto_oaep_ciphertexts_decrypt_through_the_engine() {
    let f = fixture();
    let mut rng = rand_core::OsRng;
    for spec in RSA_SPECS {
        let key = f.key(spec, KeyUsage::EncryptDecrypt);
        let spki = f.engine.get_public_key(key).unwrap().public_key;
        let public = rsa::RsaPublicKey::from_public_key_der(&spki).unwrap();
        for algorithm in OAEP {
            let max = oaep_limit(spec, algorithm);
            for len in [1, 77, max] {
                let pt = message(len, len);
                let ct = match algorithm {
                    EncryptionAlgorithm::RsaesOaepSha1 => {
                        public.encrypt(&mut rng, rsa::Oaep::new::<sha1::Sha1>(), &pt)
                    }
                    _ => public.encrypt(&mut rng, rsa::Oaep::new::<Sha256>(), &pt),
                }
                .unwrap();
                assert_eq!(
                    rsa_decrypt(&f.engine, key, algorithm, &ct).unwrap(),
                    pt,
                    "{spec} {algorithm} {len}"
                );
            }
            // RustCrypto can encrypt one byte more with SHA-1 than SHA-256; the engine's limit
            // is the service's, for encrypting. Decrypting is limited only by OAEP itself.
        }
        // OAEP with a label is not what the service does: it does not decrypt.
        let ct = public
            .encrypt(
                &mut rng,
                rsa::Oaep::new_with_label::<Sha256, _>("label"),
                b"labelled",
            )
            .unwrap();
        assert_eq!(
            code(rsa_decrypt(
                &f.engine,
                key,
                EncryptionAlgorithm::RsaesOaepSha256,
                &ct
            )),
            "InvalidCiphertextException"
        );
        // Nor does PKCS#1 v1.5 encryption.
        let ct = public
            .encrypt(&mut rng, rsa::Pkcs1v15Encrypt, b"v1.5")
            .unwrap();
        for algorithm in OAEP {
            assert_eq!(
                code(rsa_decrypt(&f.engine, key, algorithm, &ct)),
                "InvalidCiphertextException"
            );
        }
    }
}

#[test]
fn re_encrypt_between_rsa_and_symmetric_keys() {
    let f = fixture();
    let engine = &f.engine;
    let sym = f.key(KeySpec::SymmetricDefault, KeyUsage::EncryptDecrypt);
    let rsa2048 = f.key(KeySpec::Rsa2048, KeyUsage::EncryptDecrypt);
    let rsa4096 = f.key(KeySpec::Rsa4096, KeyUsage::EncryptDecrypt);
    let sym_arn = engine.describe_key(sym).unwrap().arn;
    let rsa_arn = engine.describe_key(rsa2048).unwrap().arn;
    let context = ctx(&[("purpose", "re-encrypt")]);
    let pt = message(3, 150);

    // Symmetric (with a context) -> RSA.
    let sealed = engine
        .encrypt(&EncryptRequest::new(sym, &pt).with_context(&context))
        .unwrap()
        .ciphertext_blob;
    let mut request = ReEncryptRequest::new(&sealed, rsa2048);
    request.source_encryption_context = Some(&context);
    request.destination_encryption_algorithm = EncryptionAlgorithm::RsaesOaepSha256;
    let to_rsa = engine.re_encrypt(&request).unwrap();
    assert_eq!(to_rsa.source_key_id, sym_arn);
    assert_eq!(to_rsa.key_id, rsa_arn);
    assert_eq!(
        to_rsa.source_encryption_algorithm,
        EncryptionAlgorithm::SymmetricDefault
    );
    assert_eq!(
        to_rsa.destination_encryption_algorithm,
        EncryptionAlgorithm::RsaesOaepSha256
    );
    assert_eq!(to_rsa.ciphertext_blob.len(), 256);
    assert_eq!(
        rsa_decrypt(
            engine,
            rsa2048,
            EncryptionAlgorithm::RsaesOaepSha256,
            &to_rsa.ciphertext_blob
        )
        .unwrap(),
        pt
    );

    // RSA -> RSA (another key, the other hash).
    let mut request = ReEncryptRequest::new(&to_rsa.ciphertext_blob, rsa4096);
    request.source_key_id = Some(rsa2048);
    request.source_encryption_algorithm = Some(EncryptionAlgorithm::RsaesOaepSha256);
    request.destination_encryption_algorithm = EncryptionAlgorithm::RsaesOaepSha1;
    let rsa_to_rsa = engine.re_encrypt(&request).unwrap();
    assert_eq!(rsa_to_rsa.ciphertext_blob.len(), 512);
    assert_eq!(
        rsa_decrypt(
            engine,
            rsa4096,
            EncryptionAlgorithm::RsaesOaepSha1,
            &rsa_to_rsa.ciphertext_blob
        )
        .unwrap(),
        pt
    );

    // RSA -> symmetric (with a new context).
    let new_context = ctx(&[("purpose", "back")]);
    let mut request = ReEncryptRequest::new(&rsa_to_rsa.ciphertext_blob, sym);
    request.source_key_id = Some(rsa4096);
    request.source_encryption_algorithm = Some(EncryptionAlgorithm::RsaesOaepSha1);
    request.destination_encryption_context = Some(&new_context);
    let back = engine.re_encrypt(&request).unwrap();
    assert_eq!(
        back.source_encryption_algorithm,
        EncryptionAlgorithm::RsaesOaepSha1
    );
    assert_eq!(back.key_id, sym_arn);
    let opened = engine
        .decrypt(&DecryptRequest::new(&back.ciphertext_blob).with_context(&new_context))
        .unwrap();
    assert_eq!(opened.plaintext.expose(), pt.as_slice());

    // The source needs its key and algorithm; the wrong algorithm does not decrypt.
    let request = ReEncryptRequest::new(&to_rsa.ciphertext_blob, sym);
    assert!(engine.re_encrypt(&request).is_err());
    let mut request = ReEncryptRequest::new(&to_rsa.ciphertext_blob, sym);
    request.source_key_id = Some(rsa2048);
    request.source_encryption_algorithm = Some(EncryptionAlgorithm::RsaesOaepSha1);
    assert_eq!(
        code(engine.re_encrypt(&request)),
        "InvalidCiphertextException"
    );

    // A plaintext too long for the destination's OAEP limit is refused.
    let long = message(9, 300);
    let sealed = engine
        .encrypt(&EncryptRequest::new(sym, &long))
        .unwrap()
        .ciphertext_blob;
    let mut request = ReEncryptRequest::new(&sealed, rsa2048);
    request.destination_encryption_algorithm = EncryptionAlgorithm::RsaesOaepSha256;
    assert_eq!(code(engine.re_encrypt(&request)), "ValidationException");
    // ... but fits under RSA-4096 with SHA-1 (470 bytes).
    let mut request = ReEncryptRequest::new(&sealed, rsa4096);
    request.destination_encryption_algorithm = EncryptionAlgorithm::RsaesOaepSha1;
    let fits = engine.re_encrypt(&request).unwrap();
    assert_eq!(
        rsa_decrypt(
            engine,
            rsa4096,
            EncryptionAlgorithm::RsaesOaepSha1,
            &fits.ciphertext_blob
        )
        .unwrap(),
        long
    );
    // To an RSA key, the destination algorithm must be OAEP.
    let request = ReEncryptRequest::new(&sealed, rsa4096);
    assert_eq!(
        code(engine.re_encrypt(&request)),
        "InvalidKeyUsageException"
    );
}

// ---- DeriveSharedSecret -------------------------------------------------------------------------

/// A peer key pair made by RustCrypto: its SPKI, and the shared secret with `engine_spki`.
fn rustcrypto_peer(spec: KeySpec, engine_spki: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let mut rng = rand_core::OsRng;
    match spec {
        KeySpec::EccNistP256 => {
            let secret = p256::SecretKey::random(&mut rng);
            let theirs = p256::PublicKey::from_public_key_der(engine_spki).unwrap();
            let shared = p256::ecdh::diffie_hellman(secret.to_nonzero_scalar(), theirs.as_affine());
            (
                secret.public_key().to_public_key_der().unwrap().into_vec(),
                shared.raw_secret_bytes().to_vec(),
            )
        }
        KeySpec::EccNistP384 => {
            let secret = p384::SecretKey::random(&mut rng);
            let theirs = p384::PublicKey::from_public_key_der(engine_spki).unwrap();
            let shared = p384::ecdh::diffie_hellman(secret.to_nonzero_scalar(), theirs.as_affine());
            (
                secret.public_key().to_public_key_der().unwrap().into_vec(),
                shared.raw_secret_bytes().to_vec(),
            )
        }
        KeySpec::EccNistP521 => {
            let secret = p521::SecretKey::random(&mut rng);
            let theirs = p521::PublicKey::from_public_key_der(engine_spki).unwrap();
            let shared = p521::ecdh::diffie_hellman(secret.to_nonzero_scalar(), theirs.as_affine());
            (
                secret.public_key().to_public_key_der().unwrap().into_vec(),
                shared.raw_secret_bytes().to_vec(),
            )
        }
        other => panic!("{other} is not an agreement spec"),
    }
}

fn aws_lc_curve(spec: KeySpec) -> &'static aws_lc_rs::agreement::Algorithm {
    match spec {
        KeySpec::EccNistP256 => &aws_lc_rs::agreement::ECDH_P256,
        KeySpec::EccNistP384 => &aws_lc_rs::agreement::ECDH_P384,
        KeySpec::EccNistP521 => &aws_lc_rs::agreement::ECDH_P521,
        other => panic!("{other} is not an agreement spec"),
    }
}

fn derive(engine: &Engine, key: &str, peer: &[u8]) -> keyplane::Result<Vec<u8>> {
    engine
        .derive_shared_secret(&DeriveSharedSecretRequest {
            key_id: key,
            key_agreement_algorithm: KeyAgreementAlgorithm::Ecdh,
            public_key: peer,
        })
        .map(|r| r.shared_secret.expose().to_vec())
}

#[test]
fn derive_shared_secret_agrees_with_rustcrypto_and_aws_lc_peers() {
    use aws_lc_rs::agreement;
    use aws_lc_rs::encoding::AsDer;
    let f = fixture();
    for spec in AGREEMENT_SPECS {
        let key = f.key(spec, KeyUsage::KeyAgreement);
        let arn = f.engine.describe_key(key).unwrap().arn;
        let spki = f.engine.get_public_key(key).unwrap().public_key;
        let field = match spec {
            KeySpec::EccNistP256 => 32,
            KeySpec::EccNistP384 => 48,
            _ => 66,
        };
        for _ in 0..3 {
            // RustCrypto peer.
            let (peer_spki, expected) = rustcrypto_peer(spec, &spki);
            let response = f
                .engine
                .derive_shared_secret(&DeriveSharedSecretRequest {
                    key_id: key,
                    key_agreement_algorithm: KeyAgreementAlgorithm::Ecdh,
                    public_key: &peer_spki,
                })
                .unwrap();
            assert_eq!(
                response.shared_secret.expose(),
                expected.as_slice(),
                "{spec}"
            );
            assert_eq!(response.shared_secret.len(), field, "{spec}");
            assert_eq!(response.key_id, arn);
            assert_eq!(
                response.key_agreement_algorithm,
                KeyAgreementAlgorithm::Ecdh
            );
            assert_eq!(response.key_origin, Origin::AwsKms);

            // aws-lc-rs peer.
            let peer = agreement::PrivateKey::generate(aws_lc_curve(spec)).unwrap();
            let peer_spki = peer.compute_public_key().unwrap().as_der().unwrap();
            let theirs = agreement::agree(
                &peer,
                agreement::UnparsedPublicKey::new(aws_lc_curve(spec), &spki),
                aws_lc_rs::error::Unspecified,
                |secret| Ok(secret.to_vec()),
            )
            .unwrap();
            assert_eq!(
                derive(&f.engine, key, peer_spki.as_ref()).unwrap(),
                theirs,
                "{spec}"
            );
        }
    }
}

/// `spki` with its last byte (the low byte of y) changed: a point off the curve.
fn off_curve(spki: &[u8]) -> Vec<u8> {
    let mut bad = spki.to_vec();
    *bad.last_mut().unwrap() ^= 0x01;
    bad
}

#[test]
fn derive_shared_secret_validates_the_peer_key() {
    let f = fixture();
    let spki_of = |spec, usage| {
        f.engine
            .get_public_key(f.key(spec, usage))
            .unwrap()
            .public_key
    };
    let rsa = spki_of(KeySpec::Rsa2048, KeyUsage::SignVerify);
    let ed = spki_of(KeySpec::EccNistEdwards25519, KeyUsage::SignVerify);
    let k1 = spki_of(KeySpec::EccSecgP256k1, KeyUsage::SignVerify);
    let mut checked = 0;
    for spec in AGREEMENT_SPECS {
        let key = f.key(spec, KeyUsage::KeyAgreement);
        let own = spki_of(spec, KeyUsage::KeyAgreement);
        let (peer, _) = rustcrypto_peer(spec, &own);
        assert!(derive(&f.engine, key, &peer).is_ok());
        // The raw point inside the SPKI (the last 1 + 2 x field bytes).
        let field = match spec {
            KeySpec::EccNistP256 => 32,
            KeySpec::EccNistP384 => 48,
            _ => 66,
        };
        let point = peer[peer.len() - (1 + 2 * field)..].to_vec();
        assert_eq!(point[0], 0x04);
        let compressed = {
            let mut c = vec![0x02 | (point[point.len() - 1] & 1)];
            c.extend_from_slice(&point[1..=field]);
            c
        };
        let mut bad: Vec<(String, Vec<u8>)> = vec![
            ("a raw uncompressed point".into(), point.clone()),
            ("a raw compressed point".into(), compressed),
            ("a point off the curve".into(), off_curve(&peer)),
            ("an empty key".into(), vec![]),
            ("a truncated SPKI".into(), peer[..peer.len() - 1].to_vec()),
            ("a lone SEQUENCE tag".into(), vec![0x30]),
            ("garbage".into(), vec![0x30, 0x03, 0x02, 0x01, 0x00]),
            ("an RSA key".into(), rsa.clone()),
            ("an Ed25519 key".into(), ed.clone()),
            ("a secp256k1 key".into(), k1.clone()),
        ];
        for other in AGREEMENT_SPECS {
            if other != spec {
                bad.push((
                    format!("a {other} key"),
                    spki_of(other, KeyUsage::KeyAgreement),
                ));
            }
        }
        for (what, peer) in &bad {
            let e = match derive(&f.engine, key, peer) {
                Err(e) => e,
                Ok(secret) => panic!(
                    "{spec} key with {what} as the peer: accepted, derived {} bytes",
                    secret.len()
                ),
            };
            assert_eq!(
                e.code(),
                "ValidationException",
                "{spec} key with {what} as the peer: {e}"
            );
            checked += 1;
        }
    }
    assert_eq!(checked, 3 * 12);
}

#[test]
fn derive_shared_secret_rejects_bytes_after_the_peer_spki() {
    // The peer key is one DER SubjectPublicKeyInfo: trailing bytes make it malformed DER, as a
    // truncated one is. (aws-lc's `EVP_parse_public_key` reads one SPKI from the front of its
    // input and aws-lc-rs does not check that nothing follows it.)
    let f = fixture();
    for spec in AGREEMENT_SPECS {
        let key = f.key(spec, KeyUsage::KeyAgreement);
        let own = f.engine.get_public_key(key).unwrap().public_key;
        let (peer, _) = rustcrypto_peer(spec, &own);
        for trailer in [&[0u8][..], &[0x30, 0x00], b"garbage"] {
            let padded = [&peer[..], trailer].concat();
            match derive(&f.engine, key, &padded) {
                Err(e) => assert_eq!(e.code(), "ValidationException", "{spec}: {e}"),
                Ok(_) => panic!(
                    "{spec}: a peer SPKI followed by {} more bytes was accepted",
                    trailer.len()
                ),
            }
        }
    }
}

// ---- GenerateDataKeyPair ------------------------------------------------------------------------

const PAIR_SPECS: [DataKeyPairSpec; 8] = [
    DataKeyPairSpec::Rsa2048,
    DataKeyPairSpec::Rsa3072,
    DataKeyPairSpec::Rsa4096,
    DataKeyPairSpec::EccNistP256,
    DataKeyPairSpec::EccNistP384,
    DataKeyPairSpec::EccNistP521,
    DataKeyPairSpec::EccSecgP256k1,
    DataKeyPairSpec::EccNistEdwards25519,
];

/// Parses `pkcs8` with RustCrypto, checks that its public key is `public` (DER SPKI), signs a
/// message with the private key through aws-lc-rs and verifies it with RustCrypto under `public`.
fn check_key_pair(spec: DataKeyPairSpec, pkcs8: &[u8], public: &[u8]) {
    use aws_lc_rs::rand::SystemRandom;
    use aws_lc_rs::signature::{self as sig, KeyPair};
    use p256::pkcs8::DecodePrivateKey;
    let msg = b"a data key pair signs";
    let rng = SystemRandom::new();
    let key_spec = spec.key_spec();
    match spec {
        DataKeyPairSpec::Rsa2048 | DataKeyPairSpec::Rsa3072 | DataKeyPairSpec::Rsa4096 => {
            let private = rsa::RsaPrivateKey::from_pkcs8_der(pkcs8).expect("RSA PKCS#8");
            private.validate().expect("a consistent RSA key");
            let derived = private.to_public_key().to_public_key_der().unwrap();
            assert_eq!(
                rsa::RsaPublicKey::from_public_key_der(derived.as_bytes()).unwrap(),
                rsa::RsaPublicKey::from_public_key_der(public).unwrap(),
                "{spec}"
            );
            let pair = sig::RsaKeyPair::from_pkcs8(pkcs8).expect("aws-lc parses it");
            let mut signature = vec![0; pair.public_modulus_len()];
            pair.sign(&sig::RSA_PSS_SHA256, &rng, msg, &mut signature)
                .unwrap();
            verify_independently(
                key_spec,
                SigningAlgorithm::RsassaPssSha256,
                public,
                MessageType::Raw,
                msg,
                &signature,
            )
            .unwrap();
        }
        DataKeyPairSpec::EccNistEdwards25519 => {
            let private = ed25519_dalek::SigningKey::from_pkcs8_der(pkcs8).expect("Ed25519 PKCS#8");
            assert_eq!(
                private
                    .verifying_key()
                    .to_public_key_der()
                    .unwrap()
                    .as_bytes(),
                public,
                "{spec}"
            );
            let pair = sig::Ed25519KeyPair::from_pkcs8(pkcs8).expect("aws-lc parses it");
            let signature = pair.sign(msg);
            verify_independently(
                key_spec,
                SigningAlgorithm::Ed25519Sha512,
                public,
                MessageType::Raw,
                msg,
                signature.as_ref(),
            )
            .unwrap();
        }
        _ => {
            let (derived, alg, algorithm): (Vec<u8>, &'static sig::EcdsaSigningAlgorithm, _) =
                match spec {
                    DataKeyPairSpec::EccNistP256 => (
                        p256::SecretKey::from_pkcs8_der(pkcs8)
                            .expect("P-256 PKCS#8")
                            .public_key()
                            .to_public_key_der()
                            .unwrap()
                            .into_vec(),
                        &sig::ECDSA_P256_SHA256_ASN1_SIGNING,
                        SigningAlgorithm::EcdsaSha256,
                    ),
                    DataKeyPairSpec::EccNistP384 => (
                        p384::SecretKey::from_pkcs8_der(pkcs8)
                            .expect("P-384 PKCS#8")
                            .public_key()
                            .to_public_key_der()
                            .unwrap()
                            .into_vec(),
                        &sig::ECDSA_P384_SHA384_ASN1_SIGNING,
                        SigningAlgorithm::EcdsaSha384,
                    ),
                    DataKeyPairSpec::EccNistP521 => (
                        p521::SecretKey::from_pkcs8_der(pkcs8)
                            .expect("P-521 PKCS#8")
                            .public_key()
                            .to_public_key_der()
                            .unwrap()
                            .into_vec(),
                        &sig::ECDSA_P521_SHA512_ASN1_SIGNING,
                        SigningAlgorithm::EcdsaSha512,
                    ),
                    DataKeyPairSpec::EccSecgP256k1 => (
                        k256::SecretKey::from_pkcs8_der(pkcs8)
                            .expect("secp256k1 PKCS#8")
                            .public_key()
                            .to_public_key_der()
                            .unwrap()
                            .into_vec(),
                        &sig::ECDSA_P256K1_SHA256_ASN1_SIGNING,
                        SigningAlgorithm::EcdsaSha256,
                    ),
                    other => panic!("{other}"),
                };
            assert_eq!(derived, public, "{spec}: public key");
            let pair = sig::EcdsaKeyPair::from_pkcs8(alg, pkcs8).expect("aws-lc parses it");
            // aws-lc's view of the public key is the same point.
            assert!(public.ends_with(pair.public_key().as_ref()), "{spec}");
            let signature = pair.sign(&rng, msg).unwrap();
            verify_independently(
                key_spec,
                algorithm,
                public,
                MessageType::Raw,
                msg,
                signature.as_ref(),
            )
            .unwrap();
        }
    }
}

#[test]
fn generate_data_key_pair_for_every_supported_spec() {
    let f = fixture();
    let engine = &f.engine;
    let wrapping = f.key(KeySpec::SymmetricDefault, KeyUsage::EncryptDecrypt);
    let meta = engine.describe_key(wrapping).unwrap();
    let context = ctx(&[("owner", "data-key-pair")]);
    for spec in PAIR_SPECS {
        for with_plaintext in [true, false] {
            let request = GenerateDataKeyPairRequest {
                key_id: wrapping,
                encryption_context: Some(&context),
                key_pair_spec: spec,
            };
            let pair = if with_plaintext {
                engine.generate_data_key_pair(&request)
            } else {
                engine.generate_data_key_pair_without_plaintext(&request)
            }
            .unwrap_or_else(|e| panic!("{spec}: {e}"));
            assert_eq!(pair.key_id, meta.arn);
            assert_eq!(pair.key_pair_spec, spec);
            assert_eq!(
                Some(&pair.key_material_id),
                meta.current_key_material_id.as_ref()
            );
            assert_spki_of(spec.key_spec(), &pair.public_key);
            assert_eq!(
                pair.private_key_plaintext.is_some(),
                with_plaintext,
                "{spec}"
            );

            // The private key decrypts from its blob (under the same context) to PKCS#8.
            let opened = engine
                .decrypt(
                    &DecryptRequest::new(&pair.private_key_ciphertext_blob).with_context(&context),
                )
                .unwrap_or_else(|e| panic!("{spec}: the private key does not decrypt: {e}"));
            assert_eq!(opened.key_id, meta.arn);
            let pkcs8 = opened.plaintext.expose();
            if let Some(plaintext) = &pair.private_key_plaintext {
                assert_eq!(
                    plaintext.expose(),
                    pkcs8,
                    "{spec}: blob and plaintext differ"
                );
            }
            check_key_pair(spec, pkcs8, &pair.public_key);
            // The context is bound.
            assert_eq!(
                code(engine.decrypt(&DecryptRequest::new(&pair.private_key_ciphertext_blob))),
                "InvalidCiphertextException"
            );
        }
        // Two calls, two key pairs.
        let request = GenerateDataKeyPairRequest {
            key_id: wrapping,
            encryption_context: None,
            key_pair_spec: spec,
        };
        let a = engine.generate_data_key_pair(&request).unwrap();
        let b = engine.generate_data_key_pair(&request).unwrap();
        assert_ne!(a.public_key, b.public_key, "{spec}");
    }
}

#[test]
fn generate_data_key_pair_needs_an_enabled_symmetric_key() {
    let engine = Engine::in_memory().unwrap();
    let wrapping = symmetric(&engine);
    let request = GenerateDataKeyPairRequest {
        key_id: &wrapping,
        encryption_context: None,
        key_pair_spec: DataKeyPairSpec::EccNistP256,
    };
    engine.disable_key(&wrapping).unwrap();
    assert_eq!(
        code(engine.generate_data_key_pair(&request)),
        "DisabledException"
    );
    assert_eq!(
        code(engine.generate_data_key_pair_without_plaintext(&request)),
        "DisabledException"
    );
    engine.enable_key(&wrapping).unwrap();
    assert!(engine.generate_data_key_pair(&request).is_ok());
    let missing = GenerateDataKeyPairRequest {
        key_id: "alias/missing",
        ..request
    };
    assert_eq!(
        code(engine.generate_data_key_pair(&missing)),
        "NotFoundException"
    );
}

// ---- GenerateMac and VerifyMac ------------------------------------------------------------------

#[test]
fn generate_and_verify_mac_for_every_hmac_spec() {
    let f = fixture();
    for spec in HMAC_SPECS {
        let key = f.key(spec, KeyUsage::GenerateVerifyMac);
        let arn = f.engine.describe_key(key).unwrap().arn;
        let algorithm = mac_algorithm(spec);
        for len in [1usize, 64, 1000, 4096] {
            let msg = message(len, len);
            let made = f
                .engine
                .generate_mac(&GenerateMacRequest {
                    key_id: key,
                    message: &msg,
                    mac_algorithm: algorithm,
                })
                .unwrap();
            assert_eq!(made.key_id, arn);
            assert_eq!(made.mac_algorithm, algorithm);
            assert_eq!(made.mac.len(), mac_len(algorithm), "{spec}");
            // HMAC is deterministic.
            let again = f
                .engine
                .generate_mac(&GenerateMacRequest {
                    key_id: key,
                    message: &msg,
                    mac_algorithm: algorithm,
                })
                .unwrap();
            assert_eq!(again.mac, made.mac);
            let verified = f
                .engine
                .verify_mac(&VerifyMacRequest {
                    key_id: key,
                    message: &msg,
                    mac: &made.mac,
                    mac_algorithm: algorithm,
                })
                .unwrap();
            assert!(verified.mac_valid);
            assert_eq!(verified.key_id, arn);
            assert_eq!(verified.mac_algorithm, algorithm);
        }
        // 1 to 4096 bytes.
        for len in [0usize, 4097] {
            let msg = vec![0u8; len];
            assert_eq!(
                code(f.engine.generate_mac(&GenerateMacRequest {
                    key_id: key,
                    message: &msg,
                    mac_algorithm: algorithm,
                })),
                "ValidationException",
                "{spec} {len}"
            );
            assert_eq!(
                code(f.engine.verify_mac(&VerifyMacRequest {
                    key_id: key,
                    message: &msg,
                    mac: &[0; 64][..mac_len(algorithm)],
                    mac_algorithm: algorithm,
                })),
                "ValidationException",
                "{spec} {len}"
            );
        }
    }
    // Two keys of the same spec: different MACs, and one's MAC fails under the other.
    let other = create(&f.engine, KeySpec::Hmac256, KeyUsage::GenerateVerifyMac);
    let key = f.key(KeySpec::Hmac256, KeyUsage::GenerateVerifyMac);
    let request = |key_id| GenerateMacRequest {
        key_id,
        message: b"m",
        mac_algorithm: MacAlgorithm::HmacSha256,
    };
    let a = f.engine.generate_mac(&request(key)).unwrap().mac;
    let b = f.engine.generate_mac(&request(&other)).unwrap().mac;
    assert_ne!(a, b);
    assert_eq!(
        code(f.engine.verify_mac(&VerifyMacRequest {
            key_id: &other,
            message: b"m",
            mac: &a,
            mac_algorithm: MacAlgorithm::HmacSha256,
        })),
        "KMSInvalidMacException"
    );
}

#[test]
fn every_flipped_bit_of_a_mac_is_rejected() {
    let f = fixture();
    let mut rejected = 0;
    for spec in HMAC_SPECS {
        let key = f.key(spec, KeyUsage::GenerateVerifyMac);
        let algorithm = mac_algorithm(spec);
        let msg = b"authenticate me".to_vec();
        let mac = f
            .engine
            .generate_mac(&GenerateMacRequest {
                key_id: key,
                message: &msg,
                mac_algorithm: algorithm,
            })
            .unwrap()
            .mac;
        let mut forged: Vec<Vec<u8>> = (0..mac.len() * 8)
            .map(|bit| {
                let mut m = mac.clone();
                m[bit / 8] ^= 1 << (bit % 8);
                m
            })
            .collect();
        // Truncations (any length short of the full MAC), an extension, nothing.
        for len in [0, 1, 16, mac.len() / 2, mac.len() - 1] {
            forged.push(mac[..len].to_vec());
        }
        forged.push([&mac[..], &[0]].concat());
        let requests: Vec<VerifyMacRequest<'_>> = forged
            .iter()
            .map(|m| VerifyMacRequest {
                key_id: key,
                message: &msg,
                mac: m,
                mac_algorithm: algorithm,
            })
            .collect();
        for (i, result) in f.engine.verify_mac_batch(&requests).into_iter().enumerate() {
            // An empty MAC breaks the model's length constraint: ValidationException, as the
            // service answers, before any MAC is computed.
            let expected = if forged[i].is_empty() {
                "ValidationException"
            } else {
                "KMSInvalidMacException"
            };
            assert_eq!(code(result), expected, "{spec}: forgery {i}");
            rejected += 1;
        }
        // The MAC of another message.
        assert_eq!(
            code(f.engine.verify_mac(&VerifyMacRequest {
                key_id: key,
                message: b"authenticate mE",
                mac: &mac,
                mac_algorithm: algorithm,
            })),
            "KMSInvalidMacException"
        );
    }
    assert_eq!(rejected, (28 + 32 + 48 + 64) * 8 + 4 * 6);
}

/// HMAC-`H` of `message` under `key`, by RustCrypto.
fn rustcrypto_hmac(algorithm: MacAlgorithm, key: &[u8], message: &[u8]) -> Vec<u8> {
    use hmac::{Hmac, Mac};
    fn run<M: Mac + hmac::digest::KeyInit>(key: &[u8], message: &[u8]) -> Vec<u8> {
        let mut mac = <M as hmac::digest::KeyInit>::new_from_slice(key).unwrap();
        mac.update(message);
        mac.finalize().into_bytes().to_vec()
    }
    match algorithm {
        MacAlgorithm::HmacSha224 => run::<Hmac<Sha224>>(key, message),
        MacAlgorithm::HmacSha256 => run::<Hmac<Sha256>>(key, message),
        MacAlgorithm::HmacSha384 => run::<Hmac<Sha384>>(key, message),
        MacAlgorithm::HmacSha512 => run::<Hmac<Sha512>>(key, message),
    }
}

#[test]
fn the_engine_hmac_primitive_matches_rustcrypto() {
    // HMAC key material never leaves the engine, so the cross-check is on the primitive the
    // engine keys (`crypto::hmac::HmacKey`) with known keys.
    let mut work = HmacWork::new(LockPolicy::Require).unwrap();
    let mut compared = 0;
    for &algorithm in MacAlgorithm::ALL {
        // Key lengths around the hash's output and block sizes (64 or 128 bytes); keys longer
        // than a block are hashed first.
        for key_len in [0usize, 1, 16, 28, 32, 48, 63, 64, 65, 127, 128, 129, 200] {
            let key_bytes: Vec<u8> = (0..key_len).map(|i| (i * 7 + key_len) as u8).collect();
            let key = HmacKey::new(algorithm, &key_bytes, LockPolicy::Require).unwrap();
            assert_eq!(key.algorithm(), algorithm);
            for msg_len in [0usize, 1, 55, 56, 64, 111, 112, 128, 1000, 4096] {
                let msg = message(msg_len + key_len, msg_len);
                let expected = rustcrypto_hmac(algorithm, &key_bytes, &msg);
                let mut out = [0u8; MAX_MAC_LEN];
                let n = key.compute(&mut work, &msg, &mut out).unwrap();
                assert_eq!(
                    hex::encode(&out[..n]),
                    hex::encode(&expected),
                    "{algorithm} key {key_len} message {msg_len}"
                );
                assert!(key.verify(&mut work, &msg, &expected).unwrap());
                let mut wrong = expected.clone();
                wrong[n / 2] ^= 0x80;
                assert!(!key.verify(&mut work, &msg, &wrong).unwrap());
                assert!(!key.verify(&mut work, &msg, &expected[..n - 1]).unwrap());
                compared += 1;
            }
        }
        // A too-short output buffer is an error, not a truncated MAC.
        let key = HmacKey::new(algorithm, b"k", LockPolicy::Require).unwrap();
        let mut short = vec![0u8; mac_len(algorithm) - 1];
        assert!(key.compute(&mut work, b"m", &mut short).is_err());
    }
    assert_eq!(compared, 4 * 13 * 10);
}

// ---- key states and rotation --------------------------------------------------------------------

#[test]
fn disabled_and_pending_deletion_keys_refuse_every_operation() {
    let engine = Engine::in_memory().unwrap();
    let sign = create(&engine, KeySpec::EccNistP256, KeyUsage::SignVerify);
    let mac = create(&engine, KeySpec::Hmac256, KeyUsage::GenerateVerifyMac);
    let agree = create(&engine, KeySpec::EccNistP256, KeyUsage::KeyAgreement);
    let rsa = create(&engine, KeySpec::Rsa2048, KeyUsage::EncryptDecrypt);
    let peer = engine.get_public_key(&agree).unwrap().public_key;
    let signature = engine
        .sign(&SignRequest::new(
            &sign,
            b"m",
            SigningAlgorithm::EcdsaSha256,
        ))
        .unwrap()
        .signature;
    let tag = engine
        .generate_mac(&GenerateMacRequest {
            key_id: &mac,
            message: b"m",
            mac_algorithm: MacAlgorithm::HmacSha256,
        })
        .unwrap()
        .mac;
    let oaep = rsa_encrypt(&engine, &rsa, EncryptionAlgorithm::RsaesOaepSha256, b"m");

    let all = |expected: &str| {
        let sign_request = SignRequest::new(&sign, b"m", SigningAlgorithm::EcdsaSha256);
        let verify_request = VerifyRequest {
            key_id: &sign,
            message: b"m",
            message_type: MessageType::Raw,
            signature: &signature,
            signing_algorithm: SigningAlgorithm::EcdsaSha256,
        };
        let mac_request = GenerateMacRequest {
            key_id: &mac,
            message: b"m",
            mac_algorithm: MacAlgorithm::HmacSha256,
        };
        let verify_mac_request = VerifyMacRequest {
            key_id: &mac,
            message: b"m",
            mac: &tag,
            mac_algorithm: MacAlgorithm::HmacSha256,
        };
        let outcomes: Vec<(&str, Result<(), &'static str>)> = vec![
            (
                "Sign",
                engine.sign(&sign_request).map(|_| ()).map_err(|e| e.code()),
            ),
            (
                "Verify",
                engine
                    .verify(&verify_request)
                    .map(|_| ())
                    .map_err(|e| e.code()),
            ),
            (
                "SignBatch",
                engine.sign_batch(&[sign_request])[0]
                    .as_ref()
                    .map(|_| ())
                    .map_err(|e| e.code()),
            ),
            (
                "VerifyBatch",
                engine.verify_batch(&[verify_request])[0]
                    .as_ref()
                    .map(|_| ())
                    .map_err(|e| e.code()),
            ),
            (
                "GetPublicKey",
                engine
                    .get_public_key(&sign)
                    .map(|_| ())
                    .map_err(|e| e.code()),
            ),
            (
                "GenerateMac",
                engine
                    .generate_mac(&mac_request)
                    .map(|_| ())
                    .map_err(|e| e.code()),
            ),
            (
                "VerifyMac",
                engine
                    .verify_mac(&verify_mac_request)
                    .map(|_| ())
                    .map_err(|e| e.code()),
            ),
            (
                "GenerateMacBatch",
                engine.generate_mac_batch(&[mac_request])[0]
                    .as_ref()
                    .map(|_| ())
                    .map_err(|e| e.code()),
            ),
            (
                "DeriveSharedSecret",
                derive(&engine, &agree, &peer)
                    .map(|_| ())
                    .map_err(|e| e.code()),
            ),
            ("Encrypt", {
                let mut request = EncryptRequest::new(&rsa, b"m");
                request.encryption_algorithm = EncryptionAlgorithm::RsaesOaepSha256;
                engine.encrypt(&request).map(|_| ()).map_err(|e| e.code())
            }),
            (
                "Decrypt",
                rsa_decrypt(&engine, &rsa, EncryptionAlgorithm::RsaesOaepSha256, &oaep)
                    .map(|_| ())
                    .map_err(|e| e.code()),
            ),
        ];
        for (op, outcome) in outcomes {
            match expected {
                "ok" => assert_eq!(outcome, Ok(()), "{op}"),
                code => assert_eq!(outcome, Err(code), "{op}"),
            }
        }
    };

    all("ok");
    for key in [&sign, &mac, &agree, &rsa] {
        engine.disable_key(key).unwrap();
    }
    all("DisabledException");
    for key in [&sign, &mac, &agree, &rsa] {
        engine.enable_key(key).unwrap();
    }
    all("ok");
    for key in [&sign, &mac, &agree, &rsa] {
        engine.schedule_key_deletion(key, Some(7)).unwrap();
    }
    all("KMSInvalidStateException");
    for key in [&sign, &mac, &agree, &rsa] {
        engine.cancel_key_deletion(key).unwrap();
        engine.enable_key(key).unwrap();
    }
    all("ok");
}

#[test]
fn asymmetric_and_hmac_keys_do_not_rotate() {
    let engine = Engine::in_memory().unwrap();
    for (spec, usage) in [
        (KeySpec::Rsa2048, KeyUsage::EncryptDecrypt),
        (KeySpec::Rsa2048, KeyUsage::SignVerify),
        (KeySpec::EccNistP256, KeyUsage::SignVerify),
        (KeySpec::EccNistP256, KeyUsage::KeyAgreement),
        (KeySpec::EccSecgP256k1, KeyUsage::SignVerify),
        (KeySpec::EccNistEdwards25519, KeyUsage::SignVerify),
        (KeySpec::Hmac224, KeyUsage::GenerateVerifyMac),
        (KeySpec::Hmac512, KeyUsage::GenerateVerifyMac),
    ] {
        let key = create(&engine, spec, usage);
        let material = engine.describe_key(&key).unwrap().current_key_material_id;
        assert_eq!(
            code(engine.enable_key_rotation(&key, None)),
            "UnsupportedOperationException",
            "{spec} {usage}"
        );
        assert_eq!(
            code(engine.enable_key_rotation(&key, Some(365))),
            "UnsupportedOperationException",
            "{spec} {usage}"
        );
        assert_eq!(
            code(engine.disable_key_rotation(&key)),
            "UnsupportedOperationException",
            "{spec} {usage}"
        );
        assert_eq!(
            code(engine.rotate_key_on_demand(&key)),
            "UnsupportedOperationException",
            "{spec} {usage}"
        );
        let meta = engine.describe_key(&key).unwrap();
        assert!(!meta.key_rotation_enabled);
        assert_eq!(
            meta.current_key_material_id, material,
            "{spec}: no new material"
        );
    }
}

// ---- batches ------------------------------------------------------------------------------------

#[test]
fn batch_sign_and_verify_mix_good_and_bad_items_in_order() {
    let f = fixture();
    let engine = &f.engine;
    let specs = [
        KeySpec::EccNistP256,
        KeySpec::EccNistP384,
        KeySpec::EccNistEdwards25519,
        KeySpec::Rsa2048,
        KeySpec::EccSecgP256k1,
    ];
    let n = 250;
    let msgs: Vec<Vec<u8>> = (0..n).map(|i| message(i, 20 + i % 50)).collect();
    let oversize = vec![0u8; 4097];
    // Item i: a good request, except every 7th (an algorithm the key does not allow), every 11th
    // (a key that does not exist), every 13th (an encryption key) and every 17th (too long).
    let expected_error = |i: usize| -> Option<&'static str> {
        if i % 7 == 3 {
            Some("InvalidKeyUsageException")
        } else if i % 11 == 5 {
            Some("NotFoundException")
        } else if i % 13 == 6 {
            Some("InvalidKeyUsageException")
        } else if i % 17 == 8 {
            Some("ValidationException")
        } else {
            None
        }
    };
    let missing = "alias/does-not-exist";
    let rsa_enc = f.key(KeySpec::Rsa2048, KeyUsage::EncryptDecrypt);
    let plan: Vec<(KeySpec, &str, SigningAlgorithm, &[u8])> = (0..n)
        .map(|i| {
            let spec = specs[i % specs.len()];
            let algorithms = service_signing_algorithms(spec);
            let algorithm = if spec == KeySpec::EccNistEdwards25519 {
                SigningAlgorithm::Ed25519Sha512
            } else {
                algorithms[(i / specs.len()) % algorithms.len()]
            };
            let key = f.key(spec, KeyUsage::SignVerify);
            let wrong_algorithm = if spec == KeySpec::EccNistP384 {
                SigningAlgorithm::EcdsaSha256
            } else {
                SigningAlgorithm::EcdsaSha384
            };
            if i % 7 == 3 {
                (spec, key, wrong_algorithm, &msgs[i][..])
            } else if i % 11 == 5 {
                (spec, missing, algorithm, &msgs[i][..])
            } else if i % 13 == 6 {
                (spec, rsa_enc, algorithm, &msgs[i][..])
            } else if i % 17 == 8 {
                (spec, key, algorithm, &oversize[..])
            } else {
                (spec, key, algorithm, &msgs[i][..])
            }
        })
        .collect();
    let requests: Vec<SignRequest<'_>> = plan
        .iter()
        .map(|&(_, key, algorithm, msg)| SignRequest::new(key, msg, algorithm))
        .collect();
    let signed = engine.sign_batch(&requests);
    assert_eq!(signed.len(), n);
    let mut good = 0;
    for (i, result) in signed.iter().enumerate() {
        let (spec, key, algorithm, msg) = plan[i];
        match (expected_error(i), result) {
            (None, Ok(sig)) => {
                let spki = engine.get_public_key(key).unwrap().public_key;
                verify_independently(spec, algorithm, &spki, MessageType::Raw, msg, sig)
                    .unwrap_or_else(|e| panic!("item {i} ({spec} {algorithm}): {e}"));
                good += 1;
            }
            (Some(expected), Err(e)) => assert_eq!(e.code(), expected, "item {i}: {e}"),
            (expected, result) => panic!("item {i}: expected {expected:?}, got {result:?}"),
        }
    }
    assert!(good > n / 2, "good {good}");

    // Verify the good signatures, each third one tampered with, and the failed items with an
    // empty signature.
    let empty = Vec::new();
    let tampered: Vec<Vec<u8>> = signed
        .iter()
        .enumerate()
        .map(|(i, r)| match r {
            Ok(sig) if i % 3 == 0 => {
                let mut s = sig.clone();
                let last = s.len() - 1;
                s[last / 2] ^= 0x04;
                s
            }
            Ok(sig) => sig.clone(),
            Err(_) => empty.clone(),
        })
        .collect();
    let verify_requests: Vec<VerifyRequest<'_>> = plan
        .iter()
        .zip(&tampered)
        .map(|(&(_, key, algorithm, msg), sig)| VerifyRequest {
            key_id: key,
            message: msg,
            message_type: MessageType::Raw,
            signature: sig,
            signing_algorithm: algorithm,
        })
        .collect();
    let verified = engine.verify_batch(&verify_requests);
    assert_eq!(verified.len(), n);
    for (i, result) in verified.iter().enumerate() {
        // The items that failed to sign are verified with an empty signature, which the model's
        // length constraint refuses before the key is looked up.
        let expected = match expected_error(i) {
            Some(_) => Some("ValidationException"),
            None if i % 3 == 0 => Some("KMSInvalidSignatureException"),
            None => None,
        };
        match (expected, result) {
            (None, Ok(())) => {}
            (Some(expected), Err(e)) => assert_eq!(e.code(), expected, "verify item {i}: {e}"),
            (expected, result) => panic!("verify item {i}: expected {expected:?}, got {result:?}"),
        }
    }
}

#[test]
fn batch_generate_and_verify_mac_mix_good_and_bad_items_in_order() {
    let f = fixture();
    let engine = &f.engine;
    let n = 300;
    let msgs: Vec<Vec<u8>> = (0..n).map(|i| message(i, 1 + i % 100)).collect();
    let sym = f.key(KeySpec::SymmetricDefault, KeyUsage::EncryptDecrypt);
    let plan: Vec<(&str, MacAlgorithm, &[u8], Option<&'static str>)> = (0..n)
        .map(|i| {
            let spec = HMAC_SPECS[i % 4];
            let key = f.key(spec, KeyUsage::GenerateVerifyMac);
            let algorithm = mac_algorithm(spec);
            let other_algorithm = mac_algorithm(HMAC_SPECS[(i + 1) % 4]);
            if i % 9 == 4 {
                (
                    key,
                    other_algorithm,
                    &msgs[i][..],
                    Some("InvalidKeyUsageException"),
                )
            } else if i % 10 == 7 {
                (
                    sym,
                    algorithm,
                    &msgs[i][..],
                    Some("InvalidKeyUsageException"),
                )
            } else if i % 23 == 11 {
                (key, algorithm, &[][..], Some("ValidationException"))
            } else if i % 29 == 13 {
                (
                    "alias/nope",
                    algorithm,
                    &msgs[i][..],
                    Some("NotFoundException"),
                )
            } else {
                (key, algorithm, &msgs[i][..], None)
            }
        })
        .collect();
    let requests: Vec<GenerateMacRequest<'_>> = plan
        .iter()
        .map(|&(key_id, mac_algorithm, message, _)| GenerateMacRequest {
            key_id,
            message,
            mac_algorithm,
        })
        .collect();
    let macs = engine.generate_mac_batch(&requests);
    assert_eq!(macs.len(), n);
    for (i, result) in macs.iter().enumerate() {
        match (plan[i].3, result) {
            (None, Ok(mac)) => {
                // The same MAC as a single call.
                let single = engine.generate_mac(&requests[i]).unwrap().mac;
                assert_eq!(mac[..], single[..], "item {i}");
                assert_eq!(mac.len(), mac_len(plan[i].1));
            }
            (Some(expected), Err(e)) => assert_eq!(e.code(), expected, "item {i}: {e}"),
            (expected, result) => panic!("item {i}: expected {expected:?}, got {result:?}"),
        }
    }
    // VerifyMac: each fifth good MAC gets a flipped bit.
    let tags: Vec<Vec<u8>> = macs
        .iter()
        .enumerate()
        .map(|(i, r)| match r {
            Ok(mac) if i % 5 == 0 => {
                let mut m = mac.to_vec();
                let at = i % m.len();
                m[at] ^= 1 << (i % 8);
                m
            }
            Ok(mac) => mac.to_vec(),
            Err(_) => vec![0; 32],
        })
        .collect();
    let verify_requests: Vec<VerifyMacRequest<'_>> = plan
        .iter()
        .zip(&tags)
        .map(
            |(&(key_id, mac_algorithm, message, _), mac)| VerifyMacRequest {
                key_id,
                message,
                mac,
                mac_algorithm,
            },
        )
        .collect();
    let verified = engine.verify_mac_batch(&verify_requests);
    assert_eq!(verified.len(), n);
    for (i, result) in verified.iter().enumerate() {
        let expected = match plan[i].3 {
            Some(e) => Some(e),
            None if i % 5 == 0 => Some("KMSInvalidMacException"),
            None => None,
        };
        match (expected, result) {
            (None, Ok(())) => {}
            (Some(expected), Err(e)) => assert_eq!(e.code(), expected, "verify item {i}: {e}"),
            (expected, result) => panic!("verify item {i}: expected {expected:?}, got {result:?}"),
        }
    }
}

// ---- Debug output -------------------------------------------------------------------------------

/// The ways `bytes` could appear in a Debug string: as Rust prints a byte slice, in hex.
fn renderings(bytes: &[u8]) -> Vec<String> {
    let prefix = &bytes[..bytes.len().min(12)];
    vec![
        prefix
            .iter()
            .map(|b| b.to_string())
            .collect::<Vec<_>>()
            .join(", "),
        hex::encode(prefix),
        hex::encode_upper(prefix),
    ]
}

#[test]
fn debug_of_responses_with_secrets_hides_them() {
    let f = fixture();
    let engine = &f.engine;
    let key = f.key(KeySpec::EccNistP256, KeyUsage::KeyAgreement);
    let spki = engine.get_public_key(key).unwrap().public_key;
    let (peer, secret) = rustcrypto_peer(KeySpec::EccNistP256, &spki);
    let response = engine
        .derive_shared_secret(&DeriveSharedSecretRequest {
            key_id: key,
            key_agreement_algorithm: KeyAgreementAlgorithm::Ecdh,
            public_key: &peer,
        })
        .unwrap();
    assert_eq!(response.shared_secret.expose(), secret.as_slice());
    let shown = format!("{response:?}");
    let pretty = format!("{response:#?}");
    for rendering in renderings(&secret) {
        assert!(!shown.contains(&rendering), "{shown}");
        assert!(!pretty.contains(&rendering), "{pretty}");
    }
    assert!(shown.contains("redacted"), "{shown}");

    let wrapping = f.key(KeySpec::SymmetricDefault, KeyUsage::EncryptDecrypt);
    for spec in [
        DataKeyPairSpec::EccNistP256,
        DataKeyPairSpec::EccNistEdwards25519,
    ] {
        let pair = engine
            .generate_data_key_pair(&GenerateDataKeyPairRequest {
                key_id: wrapping,
                encryption_context: None,
                key_pair_spec: spec,
            })
            .unwrap();
        let private = pair
            .private_key_plaintext
            .as_ref()
            .unwrap()
            .expose()
            .to_vec();
        let shown = format!("{pair:?}");
        let pretty = format!("{pair:#?}");
        // The whole PKCS#8 document, and the secret inside it: the Ed25519 seed (the document's
        // last 32 bytes) or the EC private scalar.
        let secret: Vec<u8> = match spec {
            DataKeyPairSpec::EccNistEdwards25519 => private[private.len() - 32..].to_vec(),
            _ => {
                use p256::pkcs8::DecodePrivateKey;
                p256::SecretKey::from_pkcs8_der(&private)
                    .unwrap()
                    .to_bytes()
                    .to_vec()
            }
        };
        for part in [&private, &secret] {
            for rendering in renderings(part) {
                assert!(!shown.contains(&rendering), "{spec}: {shown}");
                assert!(!pretty.contains(&rendering), "{spec}: {pretty}");
            }
        }
        assert!(shown.contains("redacted"), "{shown}");
    }
}

#[test]
fn an_encryption_context_is_refused_with_rsa_keys_rather_than_silently_ignored() {
    let f = fixture();
    let key = f.key(KeySpec::Rsa2048, KeyUsage::EncryptDecrypt);
    let context: keyplane::EncryptionContext = [("tenant".to_string(), "a".to_string())].into();
    let mut request = EncryptRequest::new(key, b"secret").with_context(&context);
    request.encryption_algorithm = EncryptionAlgorithm::RsaesOaepSha256;
    let refused = f.engine.encrypt(&request).unwrap_err();
    assert_eq!(refused.code(), "ValidationException");
    assert!(
        refused.message().contains("encryption context"),
        "{refused}"
    );

    request.encryption_context = None;
    let ciphertext = f.engine.encrypt(&request).unwrap().ciphertext_blob;
    let mut decrypt = DecryptRequest::new(&ciphertext)
        .with_key_id(key)
        .with_context(&context);
    decrypt.encryption_algorithm = Some(EncryptionAlgorithm::RsaesOaepSha256);
    assert_eq!(
        f.engine.decrypt(&decrypt).unwrap_err().code(),
        "ValidationException"
    );
    decrypt.encryption_context = None;
    assert_eq!(
        f.engine.decrypt(&decrypt).unwrap().plaintext.expose(),
        b"secret"
    );
}
