//! Signing keys: RSA (PSS and PKCS#1 v1.5), ECDSA (P-256, P-384, P-521, secp256k1) and Ed25519,
//! on aws-lc-rs.
//!
//! The private key's canonical form (PKCS#8 DER) lives in locked memory. The parsed aws-lc key
//! (an `EVP_PKEY` with its bignums and precomputation) lives on aws-lc's heap, which this crate
//! cannot lock: aws-lc zeroes it when it is freed (`OPENSSL_free` cleanses), but until then it
//! may be swapped or appear in a core dump. That is the one place key material leaves locked
//! memory; `README.md` says so.

use std::sync::OnceLock;

use aws_lc_rs::digest;
use aws_lc_rs::encoding::{AsDer, Pkcs8V1Der};
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{self as sig, KeyPair, ParsedPublicKey, UnparsedPublicKey};

use crate::error::{Error, Result};
use crate::key::{KeySpec, MessageType, SigningAlgorithm};
use crate::locked_memory::{LockPolicy, LockedBytes};
use crate::messages;

/// Largest RAW message Sign and Verify take.
pub const MAX_RAW_MESSAGE: usize = 4096;

enum Private {
    Rsa(sig::RsaKeyPair),
    Ecdsa(sig::EcdsaKeyPair),
    Ed25519(sig::Ed25519KeyPair),
}

/// A private signing key and its public key.
pub struct SigningKey {
    spec: KeySpec,
    private: Private,
    public_der: Vec<u8>,
    /// Parsed public keys, one per signing algorithm, made on first verification.
    verifiers: [OnceLock<Option<ParsedPublicKey>>; SigningAlgorithm::ALL.len()],
}

fn ecdsa_signing(spec: KeySpec) -> Option<&'static sig::EcdsaSigningAlgorithm> {
    Some(match spec {
        KeySpec::EccNistP256 => &sig::ECDSA_P256_SHA256_ASN1_SIGNING,
        KeySpec::EccNistP384 => &sig::ECDSA_P384_SHA384_ASN1_SIGNING,
        KeySpec::EccNistP521 => &sig::ECDSA_P521_SHA512_ASN1_SIGNING,
        KeySpec::EccSecgP256k1 => &sig::ECDSA_P256K1_SHA256_ASN1_SIGNING,
        _ => return None,
    })
}

/// The digest a signing algorithm hashes with.
pub fn digest_algorithm(algorithm: SigningAlgorithm) -> Option<&'static digest::Algorithm> {
    use SigningAlgorithm::*;
    Some(match algorithm {
        RsassaPssSha256 | RsassaPkcs1V15Sha256 | EcdsaSha256 => &digest::SHA256,
        RsassaPssSha384 | RsassaPkcs1V15Sha384 | EcdsaSha384 => &digest::SHA384,
        RsassaPssSha512 | RsassaPkcs1V15Sha512 | EcdsaSha512 | Ed25519Sha512 | Ed25519PhSha512 => {
            &digest::SHA512
        }
        Sm2Dsa | MlDsaShake256 => return None,
    })
}

fn rsa_encoding(algorithm: SigningAlgorithm) -> Option<&'static sig::RsaSignatureEncoding> {
    use SigningAlgorithm::*;
    Some(match algorithm {
        RsassaPssSha256 => &sig::RSA_PSS_SHA256,
        RsassaPssSha384 => &sig::RSA_PSS_SHA384,
        RsassaPssSha512 => &sig::RSA_PSS_SHA512,
        RsassaPkcs1V15Sha256 => &sig::RSA_PKCS1_SHA256,
        RsassaPkcs1V15Sha384 => &sig::RSA_PKCS1_SHA384,
        RsassaPkcs1V15Sha512 => &sig::RSA_PKCS1_SHA512,
        _ => return None,
    })
}

fn verification(
    spec: KeySpec,
    algorithm: SigningAlgorithm,
) -> Option<&'static dyn sig::VerificationAlgorithm> {
    use SigningAlgorithm::*;
    let rsa = matches!(spec, KeySpec::Rsa2048 | KeySpec::Rsa3072 | KeySpec::Rsa4096);
    Some(match (spec, algorithm) {
        (_, RsassaPssSha256) if rsa => &sig::RSA_PSS_2048_8192_SHA256,
        (_, RsassaPssSha384) if rsa => &sig::RSA_PSS_2048_8192_SHA384,
        (_, RsassaPssSha512) if rsa => &sig::RSA_PSS_2048_8192_SHA512,
        (_, RsassaPkcs1V15Sha256) if rsa => &sig::RSA_PKCS1_2048_8192_SHA256,
        (_, RsassaPkcs1V15Sha384) if rsa => &sig::RSA_PKCS1_2048_8192_SHA384,
        (_, RsassaPkcs1V15Sha512) if rsa => &sig::RSA_PKCS1_2048_8192_SHA512,
        (KeySpec::EccNistP256, EcdsaSha256) => &sig::ECDSA_P256_SHA256_ASN1,
        (KeySpec::EccSecgP256k1, EcdsaSha256) => &sig::ECDSA_P256K1_SHA256_ASN1,
        (KeySpec::EccNistP384, EcdsaSha384) => &sig::ECDSA_P384_SHA384_ASN1,
        (KeySpec::EccNistP521, EcdsaSha512) => &sig::ECDSA_P521_SHA512_ASN1,
        (KeySpec::EccNistEdwards25519, Ed25519Sha512) => &sig::ED25519,
        _ => return None,
    })
}

fn keygen_failed(spec: KeySpec) -> Error {
    Error::Internal(format!("{spec} key generation failed in aws-lc"))
}

/// Copies a PKCS#8 document into locked memory; aws-lc-rs's document types zero their own
/// buffers when dropped.
fn copy_pkcs8(der: &impl AsRef<[u8]>, policy: LockPolicy) -> Result<LockedBytes> {
    LockedBytes::copy_from(der.as_ref(), policy)
}

/// A new private key of `spec`, as PKCS#8 DER in locked memory.
pub fn generate(spec: KeySpec, policy: LockPolicy) -> Result<LockedBytes> {
    let failed = |_| keygen_failed(spec);
    match spec {
        KeySpec::Rsa2048 | KeySpec::Rsa3072 | KeySpec::Rsa4096 => {
            let size = match spec {
                KeySpec::Rsa2048 => KeySize::Rsa2048,
                KeySpec::Rsa3072 => KeySize::Rsa3072,
                _ => KeySize::Rsa4096,
            };
            let pair = sig::RsaKeyPair::generate(size).map_err(failed)?;
            let der: Pkcs8V1Der<'static> = pair.as_der().map_err(failed)?;
            copy_pkcs8(&der.as_ref(), policy)
        }
        KeySpec::EccNistEdwards25519 => {
            let pair = sig::Ed25519KeyPair::generate().map_err(failed)?;
            let der: Pkcs8V1Der<'static> = pair.as_der().map_err(failed)?;
            copy_pkcs8(&der.as_ref(), policy)
        }
        _ => {
            let alg = ecdsa_signing(spec).ok_or_else(|| keygen_failed(spec))?;
            let pair = sig::EcdsaKeyPair::generate(alg).map_err(failed)?;
            copy_pkcs8(&pair.to_pkcs8v1().map_err(failed)?, policy)
        }
    }
}

fn rejected(spec: KeySpec) -> Error {
    Error::Internal(format!("stored {spec} private key could not be parsed"))
}

impl SigningKey {
    /// Parses a PKCS#8 private key of `spec`.
    pub fn from_pkcs8(spec: KeySpec, pkcs8: &LockedBytes) -> Result<Self> {
        let der = pkcs8.bytes();
        let (private, public_der) = match spec {
            KeySpec::Rsa2048 | KeySpec::Rsa3072 | KeySpec::Rsa4096 => {
                let pair = sig::RsaKeyPair::from_pkcs8(der).map_err(|_| rejected(spec))?;
                let public = pair.public_key().as_der().map_err(|_| rejected(spec))?;
                let public = public.as_ref().to_vec();
                (Private::Rsa(pair), public)
            }
            KeySpec::EccNistEdwards25519 => {
                let pair = sig::Ed25519KeyPair::from_pkcs8(der).map_err(|_| rejected(spec))?;
                let public = pair.public_key().as_der().map_err(|_| rejected(spec))?;
                let public = public.as_ref().to_vec();
                (Private::Ed25519(pair), public)
            }
            _ => {
                let alg = ecdsa_signing(spec).ok_or_else(|| rejected(spec))?;
                let pair = sig::EcdsaKeyPair::from_pkcs8(alg, der).map_err(|_| rejected(spec))?;
                let public = pair.public_key().as_der().map_err(|_| rejected(spec))?;
                let public = public.as_ref().to_vec();
                (Private::Ecdsa(pair), public)
            }
        };
        Ok(SigningKey {
            spec,
            private,
            public_der,
            verifiers: std::array::from_fn(|_| OnceLock::new()),
        })
    }

    /// The public key as DER SubjectPublicKeyInfo.
    pub fn public_key_der(&self) -> &[u8] {
        &self.public_der
    }

    /// Checks the message against its type and the algorithm; returns the digest for DIGEST.
    fn prepare(
        &self,
        algorithm: SigningAlgorithm,
        message_type: MessageType,
        message: &[u8],
    ) -> Result<Option<digest::Digest>> {
        if algorithm == SigningAlgorithm::Ed25519PhSha512
            && self.spec == KeySpec::EccNistEdwards25519
        {
            return Err(Error::UnsupportedOperation(
                "ED25519_PH_SHA_512 (pre-hashed Ed25519) is not yet supported by this keyplane \
                 build; use ED25519_SHA_512 with a RAW message"
                    .into(),
            ));
        }
        if verification(self.spec, algorithm).is_none() {
            return Err(messages::algorithm_incompatible(
                algorithm.as_str(),
                self.spec,
            ));
        }
        match message_type {
            MessageType::Raw => {
                if message.is_empty() || message.len() > MAX_RAW_MESSAGE {
                    return Err(Error::Validation(format!(
                        "a RAW message is 1 to {MAX_RAW_MESSAGE} bytes, not {}",
                        message.len()
                    )));
                }
                Ok(None)
            }
            MessageType::Digest => {
                if self.spec == KeySpec::EccNistEdwards25519 {
                    return Err(Error::UnsupportedOperation(
                        "Ed25519 signs RAW messages only in this keyplane build \
                         (ED25519_PH_SHA_512 over a DIGEST is not yet supported)"
                            .into(),
                    ));
                }
                let alg = digest_algorithm(algorithm)
                    .ok_or_else(|| Error::Internal("no digest for algorithm".into()))?;
                digest::Digest::import_less_safe(message, alg)
                    .map(Some)
                    .map_err(|_| messages::digest_length(algorithm.as_str()))
            }
            MessageType::ExternalMu => Err(Error::UnsupportedOperation(
                "MessageType EXTERNAL_MU is for ML-DSA keys, which keyplane does not support yet"
                    .into(),
            )),
        }
    }

    /// Signs `message` (or the digest it is) with `algorithm`.
    pub fn sign(
        &self,
        algorithm: SigningAlgorithm,
        message_type: MessageType,
        message: &[u8],
    ) -> Result<Vec<u8>> {
        let digest = self.prepare(algorithm, message_type, message)?;
        let failed = || Error::Internal(format!("{algorithm} signing failed in aws-lc"));
        match &self.private {
            Private::Rsa(pair) => {
                let encoding = rsa_encoding(algorithm).ok_or_else(failed)?;
                let mut signature = vec![0u8; pair.public_modulus_len()];
                match &digest {
                    Some(d) => pair.sign_digest(encoding, d, &mut signature),
                    None => pair.sign(encoding, &SystemRandom::new(), message, &mut signature),
                }
                .map_err(|_| failed())?;
                Ok(signature)
            }
            Private::Ecdsa(pair) => {
                let signature = match &digest {
                    Some(d) => pair.sign_digest(d),
                    None => pair.sign(&SystemRandom::new(), message),
                }
                .map_err(|_| failed())?;
                Ok(signature.as_ref().to_vec())
            }
            Private::Ed25519(pair) => Ok(pair.sign(message).as_ref().to_vec()),
        }
    }

    /// Whether `signature` is valid for `message` (or the digest it is) under `algorithm`.
    pub fn verify(
        &self,
        algorithm: SigningAlgorithm,
        message_type: MessageType,
        message: &[u8],
        signature: &[u8],
    ) -> Result<bool> {
        let digest = self.prepare(algorithm, message_type, message)?;
        let index = SigningAlgorithm::ALL
            .iter()
            .position(|a| *a == algorithm)
            .ok_or_else(|| Error::Internal("unknown signing algorithm".into()))?;
        let parsed = self.verifiers[index].get_or_init(|| {
            let alg = verification(self.spec, algorithm)?;
            UnparsedPublicKey::new(alg, &self.public_der).parse().ok()
        });
        let parsed = parsed.as_ref().ok_or_else(|| {
            Error::Internal(format!("the {} public key could not be parsed", self.spec))
        })?;
        Ok(match &digest {
            Some(d) => parsed.verify_digest_sig(d, signature),
            None => parsed.verify_sig(message, signature),
        }
        .is_ok())
    }
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SigningKey {{ key_spec: {} }}", self.spec)
    }
}

/// An ECDSA P-256 public key checking ASN.1 DER signatures over SHA-256 of a message: the audit
/// log's digest signatures.
#[derive(Debug)]
pub struct P256Verifier(ParsedPublicKey);

impl P256Verifier {
    /// The key given as DER SubjectPublicKeyInfo.
    pub fn new(public_key_spki_der: &[u8]) -> Result<Self> {
        UnparsedPublicKey::new(&sig::ECDSA_P256_SHA256_ASN1, public_key_spki_der)
            .parse()
            .map(P256Verifier)
            .map_err(|e| Error::Validation(format!("not an ECDSA P-256 public key: {e}")))
    }

    /// Whether `signature` is valid for `message`.
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        self.0.verify_sig(message, signature).is_ok()
    }
}
