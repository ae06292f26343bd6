//! What a key version's material is used through: chosen by key spec and usage, built once when
//! the version enters the data plane.

use crate::crypto::ecdh::{self, AgreementKey};
use crate::crypto::hmac::HmacKey;
use crate::crypto::rsa_oaep::{self, RsaOaepKey};
use crate::crypto::signature::{self, SigningKey};
use crate::error::{Error, Result};
use crate::key::{KeySpec, KeyUsage};
use crate::locked_memory::{LockPolicy, LockedBytes};

/// Bytes of material of a SYMMETRIC_DEFAULT key version.
const SYMMETRIC_KEY_BYTES: usize = 32;

/// A key version's primitive.
pub(crate) enum KeyPrimitive {
    /// AES-256-GCM through derived keys (the material itself is the HKDF input).
    Symmetric,
    Hmac(HmacKey),
    Signing(Box<SigningKey>),
    RsaOaep(RsaOaepKey),
    Agreement(AgreementKey),
}

fn unsupported(spec: KeySpec, usage: KeyUsage) -> Error {
    Error::UnsupportedOperation(format!(
        "key spec {spec} with key usage {usage} is not yet supported by this keyplane build"
    ))
}

/// New key material for a key of `spec` and `usage`: 32 random bytes for a symmetric key, the
/// spec's length of random bytes for an HMAC key, a PKCS#8 private key otherwise.
pub(crate) fn generate_material(
    spec: KeySpec,
    usage: KeyUsage,
    policy: LockPolicy,
) -> Result<LockedBytes> {
    if !spec.allowed_usages().contains(&usage) || !spec.is_supported() {
        return Err(unsupported(spec, usage));
    }
    match (spec, usage) {
        (KeySpec::SymmetricDefault, _) => LockedBytes::random(SYMMETRIC_KEY_BYTES, policy),
        (KeySpec::Hmac224, _) => LockedBytes::random(28, policy),
        (KeySpec::Hmac256, _) => LockedBytes::random(32, policy),
        (KeySpec::Hmac384, _) => LockedBytes::random(48, policy),
        (KeySpec::Hmac512, _) => LockedBytes::random(64, policy),
        (_, KeyUsage::SignVerify) => signature::generate(spec, policy),
        (_, KeyUsage::EncryptDecrypt) => rsa_oaep::generate(spec, policy),
        (_, KeyUsage::KeyAgreement) => ecdh::generate(spec, policy),
        _ => Err(unsupported(spec, usage)),
    }
}

impl KeyPrimitive {
    /// Builds the primitive for stored material.
    pub(crate) fn new(
        spec: KeySpec,
        usage: KeyUsage,
        material: &LockedBytes,
        policy: LockPolicy,
    ) -> Result<Self> {
        if let Some(algorithm) = spec.mac_algorithm() {
            return Ok(KeyPrimitive::Hmac(HmacKey::new(
                algorithm,
                material.bytes(),
                policy,
            )?));
        }
        match (spec, usage) {
            (KeySpec::SymmetricDefault, _) => {
                if material.len() != SYMMETRIC_KEY_BYTES {
                    return Err(Error::Internal(
                        "stored symmetric key material has the wrong length".into(),
                    ));
                }
                Ok(KeyPrimitive::Symmetric)
            }
            _ if !spec.is_supported() => Err(unsupported(spec, usage)),
            (_, KeyUsage::SignVerify) => Ok(KeyPrimitive::Signing(Box::new(
                SigningKey::from_pkcs8(spec, material)?,
            ))),
            (_, KeyUsage::EncryptDecrypt) => Ok(KeyPrimitive::RsaOaep(RsaOaepKey::from_pkcs8(
                spec, material,
            )?)),
            (_, KeyUsage::KeyAgreement) => Ok(KeyPrimitive::Agreement(AgreementKey::from_pkcs8(
                spec, material,
            )?)),
            _ => Err(unsupported(spec, usage)),
        }
    }

    /// The public key (DER SubjectPublicKeyInfo) of an asymmetric key.
    pub(crate) fn public_key_der(&self) -> Option<&[u8]> {
        match self {
            KeyPrimitive::Signing(k) => Some(k.public_key_der()),
            KeyPrimitive::RsaOaep(k) => Some(k.public_key_der()),
            KeyPrimitive::Agreement(k) => Some(k.public_key_der()),
            KeyPrimitive::Symmetric | KeyPrimitive::Hmac(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::{EncryptionAlgorithm, MessageType};

    #[test]
    fn every_supported_spec_and_usage_makes_a_working_primitive() {
        let policy = LockPolicy::Require;
        for spec in KeySpec::ALL {
            for usage in spec.allowed_usages() {
                let made = generate_material(*spec, *usage, policy);
                if !spec.is_supported() {
                    assert_eq!(made.unwrap_err().code(), "UnsupportedOperationException");
                    continue;
                }
                let material = made.unwrap();
                let primitive = KeyPrimitive::new(*spec, *usage, &material, policy).unwrap();
                match &primitive {
                    KeyPrimitive::Signing(key) => {
                        for algorithm in spec.signing_algorithms(*usage) {
                            if algorithm == crate::key::SigningAlgorithm::Ed25519PhSha512 {
                                continue;
                            }
                            let sig = key.sign(algorithm, MessageType::Raw, b"msg").unwrap();
                            assert!(key
                                .verify(algorithm, MessageType::Raw, b"msg", &sig)
                                .unwrap());
                            assert!(!key
                                .verify(algorithm, MessageType::Raw, b"msh", &sig)
                                .unwrap());
                        }
                    }
                    KeyPrimitive::RsaOaep(key) => {
                        for algorithm in spec.encryption_algorithms(*usage) {
                            let ct = key.encrypt(algorithm, b"secret").unwrap();
                            assert_eq!(key.decrypt(algorithm, &ct).unwrap().expose(), b"secret");
                        }
                        assert_eq!(
                            key.encrypt(EncryptionAlgorithm::SymmetricDefault, b"x")
                                .unwrap_err()
                                .code(),
                            "InvalidKeyUsageException"
                        );
                    }
                    KeyPrimitive::Agreement(key) => {
                        let peer_material = generate_material(*spec, *usage, policy).unwrap();
                        let KeyPrimitive::Agreement(peer) =
                            KeyPrimitive::new(*spec, *usage, &peer_material, policy).unwrap()
                        else {
                            panic!("peer is not an agreement key");
                        };
                        let ours = key.derive(peer.public_key_der()).unwrap();
                        let theirs = peer.derive(key.public_key_der()).unwrap();
                        assert_eq!(ours.expose(), theirs.expose());
                    }
                    KeyPrimitive::Hmac(key) => {
                        assert_eq!(Some(key.algorithm()), spec.mac_algorithm())
                    }
                    KeyPrimitive::Symmetric => assert_eq!(*spec, KeySpec::SymmetricDefault),
                }
                assert_eq!(
                    primitive.public_key_der().is_some(),
                    !matches!(spec.family(), "symmetric" | "HMAC"),
                    "{spec}"
                );
            }
        }
    }
}
