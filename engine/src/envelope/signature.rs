//! The signed suites' ECDSA P-384 signature: SHA-384 over the header, its authentication and the
//! body; the public key travels in the encryption context as `aws-crypto-public-key`, the
//! base64 of its compressed point. The primitive is `crypto::ecdsa_p384`; this module adds the
//! message format's encoding and errors.

use base64::Engine as _;

use super::errors;
use crate::crypto::ecdsa_p384::{self, P384KeyPair, COMPRESSED_LEN};
use crate::error::Result;

/// A new ephemeral signing key and the context value of its public key.
pub(crate) fn generate_key() -> Result<(P384KeyPair, String)> {
    let (key, compressed) = ecdsa_p384::generate()?;
    Ok((
        key,
        base64::engine::general_purpose::STANDARD.encode(compressed),
    ))
}

/// Signs a message as it is written.
pub(crate) type Signer = ecdsa_p384::Signer;

/// Verifies a message's signature as it is read.
pub(crate) struct Verifier(ecdsa_p384::Verifier);

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
        Ok(Verifier(ecdsa_p384::Verifier::new(public)))
    }

    pub(crate) fn update(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }

    pub(crate) fn verify(self, signature: &[u8]) -> Result<()> {
        if self.0.verify(signature) {
            Ok(())
        } else {
            Err(errors::signature_failed())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;

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
        let digest = crate::crypto::digest::sha384(b"headerbody");
        vk.verify_prehash(&digest, &parsed).unwrap();
    }
}
