//! The signed suites' ECDSA P-384 signature: SHA-384 over the header, its authentication and the
//! body; the public key travels in the encryption context as `aws-crypto-public-key`, the
//! base64 of its compressed point. The ephemeral private key lives on aws-lc's heap (as every
//! parsed signing key of the engine) and is freed, cleansed, when the message is finished.

use std::sync::Arc;

use aws_lc_rs::digest;
use aws_lc_rs::encoding::{AsBigEndian, EcPublicKeyCompressedBin};
use aws_lc_rs::signature::{
    EcdsaKeyPair, KeyPair, UnparsedPublicKey, ECDSA_P384_SHA384_ASN1,
    ECDSA_P384_SHA384_ASN1_SIGNING,
};
use base64::Engine as _;

use super::errors;
use crate::error::{Error, Result};

/// Length of a compressed P-384 point.
const COMPRESSED_LEN: usize = 49;

/// A new ephemeral signing key and the context value of its public key.
pub(crate) fn generate_key() -> Result<(Arc<EcdsaKeyPair>, String)> {
    let failed = || Error::Internal("ECDSA P-384 key generation failed in aws-lc".into());
    let key = EcdsaKeyPair::generate(&ECDSA_P384_SHA384_ASN1_SIGNING).map_err(|_| failed())?;
    let compressed: EcPublicKeyCompressedBin<'static> =
        key.public_key().as_be_bytes().map_err(|_| failed())?;
    let encoded = base64::engine::general_purpose::STANDARD.encode(compressed.as_ref());
    Ok((Arc::new(key), encoded))
}

/// Signs a message as it is written.
pub(crate) struct Signer {
    key: Arc<EcdsaKeyPair>,
    digest: digest::Context,
}

impl Signer {
    /// A signer with `key` (new per message, or cached with the message's data key).
    pub(crate) fn new(key: Arc<EcdsaKeyPair>) -> Signer {
        Signer {
            key,
            digest: digest::Context::new(&digest::SHA384),
        }
    }

    pub(crate) fn update(&mut self, bytes: &[u8]) {
        self.digest.update(bytes);
    }

    /// The DER signature over everything passed to [`Signer::update`].
    pub(crate) fn finish(self) -> Result<Vec<u8>> {
        let digest = self.digest.finish();
        let sig = self
            .key
            .sign_digest(&digest)
            .map_err(|_| Error::Internal("ECDSA P-384 signing failed in aws-lc".into()))?;
        Ok(sig.as_ref().to_vec())
    }
}

/// Verifies a message's signature as it is read.
pub(crate) struct Verifier {
    public: Vec<u8>,
    digest: digest::Context,
}

impl Verifier {
    /// A verifier for the context value `encoded` (base64 of a compressed P-384 point).
    pub(crate) fn new(encoded: &str) -> Result<Verifier> {
        let public = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .ok()
            .filter(|p| p.len() == COMPRESSED_LEN && matches!(p[0], 2 | 3))
            .ok_or_else(|| {
                errors::malformed("aws-crypto-public-key is not a base64 compressed P-384 point")
            })?;
        Ok(Verifier {
            public,
            digest: digest::Context::new(&digest::SHA384),
        })
    }

    pub(crate) fn update(&mut self, bytes: &[u8]) {
        self.digest.update(bytes);
    }

    pub(crate) fn verify(self, signature: &[u8]) -> Result<()> {
        let digest = self.digest.finish();
        UnparsedPublicKey::new(&ECDSA_P384_SHA384_ASN1, &self.public)
            .verify_digest(&digest, signature)
            .map_err(|_| errors::signature_failed())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signs_and_verifies_and_p384_crate_agrees() {
        use p384::ecdsa::signature::hazmat::PrehashVerifier;
        let (key, public) = generate_key().unwrap();
        let mut signer = Signer::new(key);
        signer.update(b"header");
        signer.update(b"body");
        let sig = signer.finish().unwrap();
        let mut v = Verifier::new(&public).unwrap();
        v.update(b"headerbody");
        v.verify(&sig).unwrap();
        let mut v = Verifier::new(&public).unwrap();
        v.update(b"headerbodY");
        assert!(matches!(v.verify(&sig), Err(Error::InvalidSignature(_))));
        // RustCrypto reads the same compressed point and accepts the same prehashed signature.
        let point = base64::engine::general_purpose::STANDARD
            .decode(&public)
            .unwrap();
        let vk = p384::ecdsa::VerifyingKey::from_sec1_bytes(&point).unwrap();
        let parsed = p384::ecdsa::Signature::from_der(&sig).unwrap();
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA384, b"headerbody");
        vk.verify_prehash(digest.as_ref(), &parsed).unwrap();
    }
}
