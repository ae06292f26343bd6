//! RSA-OAEP encryption (SHA-1 and SHA-256, MGF1 with the same hash), on aws-lc-rs. The private
//! key's PKCS#8 form is in locked memory; the parsed key is on aws-lc's heap (see
//! `crypto::signature` for what that means).

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::{
    KeySize, OaepAlgorithm, OaepPrivateDecryptingKey, OaepPublicEncryptingKey,
    PrivateDecryptingKey, OAEP_SHA1_MGF1SHA1, OAEP_SHA256_MGF1SHA256,
};

use crate::error::{Error, Result};
use crate::key::{EncryptionAlgorithm, KeySpec};
use crate::locked_memory::{LockPolicy, LockedBytes};
use crate::secret::SecretBytes;

fn oaep(algorithm: EncryptionAlgorithm) -> Result<&'static OaepAlgorithm> {
    match algorithm {
        EncryptionAlgorithm::RsaesOaepSha1 => Ok(&OAEP_SHA1_MGF1SHA1),
        EncryptionAlgorithm::RsaesOaepSha256 => Ok(&OAEP_SHA256_MGF1SHA256),
        other => Err(Error::InvalidKeyUsage(format!(
            "encryption algorithm {other} is not valid for an RSA key; use RSAES_OAEP_SHA_1 or \
             RSAES_OAEP_SHA_256"
        ))),
    }
}

/// The largest plaintext `algorithm` encrypts under a key of `spec` (the service's limits:
/// modulus bytes − 2 × hash bytes − 2).
pub fn max_plaintext(spec: KeySpec, algorithm: EncryptionAlgorithm) -> Result<usize> {
    let modulus = match spec {
        KeySpec::Rsa2048 => 256,
        KeySpec::Rsa3072 => 384,
        KeySpec::Rsa4096 => 512,
        other => return Err(Error::Internal(format!("{other} is not an RSA key spec"))),
    };
    let hash = match algorithm {
        EncryptionAlgorithm::RsaesOaepSha1 => 20,
        _ => 32,
    };
    Ok(modulus - 2 * hash - 2)
}

/// A new RSA private key as PKCS#8 DER in locked memory.
pub fn generate(spec: KeySpec, policy: LockPolicy) -> Result<LockedBytes> {
    let size = match spec {
        KeySpec::Rsa2048 => KeySize::Rsa2048,
        KeySpec::Rsa3072 => KeySize::Rsa3072,
        KeySpec::Rsa4096 => KeySize::Rsa4096,
        other => return Err(Error::Internal(format!("{other} is not an RSA key spec"))),
    };
    let failed = || Error::Internal(format!("{spec} key generation failed in aws-lc"));
    let key = PrivateDecryptingKey::generate(size).map_err(|_| failed())?;
    let der = key.as_der().map_err(|_| failed())?;
    LockedBytes::copy_from(der.as_ref(), policy)
}

/// An RSA key for OAEP.
pub struct RsaOaepKey {
    spec: KeySpec,
    private: OaepPrivateDecryptingKey,
    public: OaepPublicEncryptingKey,
    public_der: Vec<u8>,
}

impl RsaOaepKey {
    /// Parses a PKCS#8 RSA private key.
    pub fn from_pkcs8(spec: KeySpec, pkcs8: &LockedBytes) -> Result<Self> {
        let rejected = || Error::Internal(format!("stored {spec} private key could not be parsed"));
        let key = PrivateDecryptingKey::from_pkcs8(pkcs8.bytes()).map_err(|_| rejected())?;
        let public_key = key.public_key();
        let public_der = public_key
            .as_der()
            .map_err(|_| rejected())?
            .as_ref()
            .to_vec();
        Ok(RsaOaepKey {
            spec,
            public: OaepPublicEncryptingKey::new(public_key).map_err(|_| rejected())?,
            private: OaepPrivateDecryptingKey::new(key).map_err(|_| rejected())?,
            public_der,
        })
    }

    /// The public key as DER SubjectPublicKeyInfo.
    pub fn public_key_der(&self) -> &[u8] {
        &self.public_der
    }

    /// Encrypts `plaintext` (within the service's limit for the key and algorithm).
    pub fn encrypt(&self, algorithm: EncryptionAlgorithm, plaintext: &[u8]) -> Result<Vec<u8>> {
        let oaep = oaep(algorithm)?;
        let max = max_plaintext(self.spec, algorithm)?;
        if plaintext.is_empty() || plaintext.len() > max {
            return Err(Error::Validation(format!(
                "{algorithm} under a {} key encrypts 1 to {max} bytes, not {}",
                self.spec,
                plaintext.len()
            )));
        }
        let mut out = vec![0u8; self.public.ciphertext_size()];
        let written = self
            .public
            .encrypt(oaep, plaintext, &mut out, None)
            .map_err(|_| Error::Internal(format!("{algorithm} encryption failed in aws-lc")))?
            .len();
        out.truncate(written);
        Ok(out)
    }

    /// Decrypts an OAEP ciphertext; any failure is InvalidCiphertext.
    pub fn decrypt(
        &self,
        algorithm: EncryptionAlgorithm,
        ciphertext: &[u8],
    ) -> Result<SecretBytes> {
        let mut out = SecretBytes::zeroed(self.decrypt_buffer_len());
        let written = self.decrypt_into(algorithm, ciphertext, out.expose_mut())?;
        let mut plaintext = SecretBytes::zeroed(written);
        plaintext
            .expose_mut()
            .copy_from_slice(&out.expose()[..written]);
        Ok(plaintext)
    }

    /// The buffer [`Self::decrypt_into`] needs (the modulus length), which bounds the plaintext.
    pub fn decrypt_buffer_len(&self) -> usize {
        self.private.min_output_size()
    }

    /// Decrypts into `out` (at least [`Self::decrypt_buffer_len`] bytes), for a caller that
    /// keeps plaintext in its own (locked) memory; returns the plaintext length. The bytes of
    /// `out` past that length may have been written too: zero all of `out`.
    pub fn decrypt_into(
        &self,
        algorithm: EncryptionAlgorithm,
        ciphertext: &[u8],
        out: &mut [u8],
    ) -> Result<usize> {
        let oaep = oaep(algorithm)?;
        let Some(out) = out.get_mut(..self.decrypt_buffer_len()) else {
            return Err(Error::Internal(
                "RSA decryption buffer is shorter than the modulus".into(),
            ));
        };
        let written = self
            .private
            .decrypt(oaep, ciphertext, out, None)
            .map_err(|_| {
                Error::InvalidCiphertext(format!(
                    "the ciphertext did not decrypt with {algorithm} under this {} key",
                    self.spec
                ))
            })?
            .len();
        Ok(written)
    }
}

impl std::fmt::Debug for RsaOaepKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RsaOaepKey {{ key_spec: {} }}", self.spec)
    }
}
