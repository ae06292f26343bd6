//! ECDSA P-384 over SHA-384, signing and verifying data as it streams: the AWS Encryption SDK's
//! signed suites (`envelope::signature` adds the message format's encoding and errors). The
//! ephemeral private key lives on aws-lc's heap (as every parsed signing key of the engine) and
//! is freed, cleansed, when the last reference drops.

use std::sync::Arc;

use aws_lc_rs::digest;
use aws_lc_rs::encoding::{AsBigEndian, EcPublicKeyCompressedBin};
use aws_lc_rs::signature::{
    EcdsaKeyPair, KeyPair, UnparsedPublicKey, ECDSA_P384_SHA384_ASN1,
    ECDSA_P384_SHA384_ASN1_SIGNING,
};

use crate::error::{Error, Result};

/// Length of a compressed P-384 point.
pub const COMPRESSED_LEN: usize = 49;

/// An ECDSA P-384 private key, shared between the messages that use it.
pub type P384KeyPair = Arc<EcdsaKeyPair>;

/// A new private key and its public key as a compressed point.
pub fn generate() -> Result<(P384KeyPair, Vec<u8>)> {
    let failed = || Error::Internal("ECDSA P-384 key generation failed in aws-lc".into());
    let key = EcdsaKeyPair::generate(&ECDSA_P384_SHA384_ASN1_SIGNING).map_err(|_| failed())?;
    let compressed: EcPublicKeyCompressedBin<'static> =
        key.public_key().as_be_bytes().map_err(|_| failed())?;
    let compressed = compressed.as_ref().to_vec();
    Ok((Arc::new(key), compressed))
}

/// Signs data as it is written.
pub struct Signer {
    key: P384KeyPair,
    digest: digest::Context,
}

impl Signer {
    /// A signer with `key`.
    pub fn new(key: P384KeyPair) -> Signer {
        Signer {
            key,
            digest: digest::Context::new(&digest::SHA384),
        }
    }

    /// Adds `bytes` to what is signed.
    pub fn update(&mut self, bytes: &[u8]) {
        self.digest.update(bytes);
    }

    /// The ASN.1 DER signature over everything passed to [`Signer::update`].
    pub fn finish(self) -> Result<Vec<u8>> {
        let digest = self.digest.finish();
        let sig = self
            .key
            .sign_digest(&digest)
            .map_err(|_| Error::Internal("ECDSA P-384 signing failed in aws-lc".into()))?;
        Ok(sig.as_ref().to_vec())
    }
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Signer(ECDSA P-384, ..)")
    }
}

/// Verifies a signature over data as it is read.
pub struct Verifier {
    public: Vec<u8>,
    digest: digest::Context,
}

impl Verifier {
    /// A verifier for the public key `compressed` (a compressed P-384 point, not yet checked to
    /// be on the curve: a point that is not fails every verification).
    pub fn new(compressed: Vec<u8>) -> Verifier {
        Verifier {
            public: compressed,
            digest: digest::Context::new(&digest::SHA384),
        }
    }

    /// Adds `bytes` to what was signed.
    pub fn update(&mut self, bytes: &[u8]) {
        self.digest.update(bytes);
    }

    /// Whether `signature` (ASN.1 DER) is valid over everything passed to [`Verifier::update`].
    pub fn verify(self, signature: &[u8]) -> bool {
        let digest = self.digest.finish();
        UnparsedPublicKey::new(&ECDSA_P384_SHA384_ASN1, &self.public)
            .verify_digest(&digest, signature)
            .is_ok()
    }
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Verifier(ECDSA P-384, ..)")
    }
}
