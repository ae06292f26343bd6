//! The cryptography of importing key material (BYOK): RSA wrapping key pairs, unwrapping with
//! RSAES-OAEP and RSA-AES key wrap (RFC 5649 AES key wrap with padding), and the sealed import
//! token that carries a wrapping private key between GetParametersForImport and
//! ImportKeyMaterial.
//!
//! The token is the wrapping key pair's PKCS#8 private key and its terms (key, wrapping spec and
//! algorithm, expiry), sealed with AES-256-GCM under a key derived from the store's import secret
//! (a store secret sealed under the root key in a durable store). The engine therefore keeps no
//! table of outstanding parameters: a token it sealed opens after a restart, a token sealed by
//! another store, for another key, altered in any byte or past its expiry does not.

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::key_wrap::{AesKek, KeyWrapPadded, AES_256};
use aws_lc_rs::rsa::{
    KeySize, OaepAlgorithm, OaepPrivateDecryptingKey, PrivateDecryptingKey, OAEP_SHA1_MGF1SHA1,
    OAEP_SHA256_MGF1SHA256,
};
use uuid::Uuid;

use super::aes_gcm::{AesGcmKey, NONCE_LEN, TAG_LEN};
use super::hmac::{HmacKey, HmacWork};
use crate::clock::Timestamp;
use crate::error::{Error, Result};
use crate::key::{MacAlgorithm, WrappingAlgorithm, WrappingKeySpec};
use crate::locked_memory::{LockPolicy, LockedBytes};

/// Import tokens begin with these bytes (the format's version is the last).
const TOKEN_MAGIC: &[u8; 5] = b"KPIT\x01";
/// Bytes of a token's fixed fields before the sealed part: magic, nonce.
const TOKEN_HEADER: usize = TOKEN_MAGIC.len() + NONCE_LEN;
/// Bytes of the sealed terms before the private key: key id, expiry, spec, algorithm.
const TERMS_LEN: usize = 16 + 8 + 1 + 1;
/// Bytes of an AES key that RSA_AES_KEY_WRAP algorithms carry (AES-256).
const AES_KEY_BYTES: usize = 32;

/// The engine's secret for import tokens and imported-material ids: 64 bytes, the first half
/// keys token sealing, the second half keys material ids.
pub const IMPORT_SECRET_BYTES: usize = 64;

/// A new RSA wrapping key pair of `spec`: (PKCS#8 private key in locked memory, DER
/// SubjectPublicKeyInfo public key).
pub fn generate_wrapping_key(
    spec: WrappingKeySpec,
    policy: LockPolicy,
) -> Result<(LockedBytes, Vec<u8>)> {
    let size = match spec {
        WrappingKeySpec::Rsa2048 => KeySize::Rsa2048,
        WrappingKeySpec::Rsa3072 => KeySize::Rsa3072,
        WrappingKeySpec::Rsa4096 => KeySize::Rsa4096,
        WrappingKeySpec::Sm2 => return Err(sm2_refused()),
    };
    let failed = || Error::Internal(format!("{spec} wrapping key generation failed in aws-lc"));
    let key = PrivateDecryptingKey::generate(size).map_err(|_| failed())?;
    let der = key.as_der().map_err(|_| failed())?;
    let private = LockedBytes::copy_from(der.as_ref(), policy)?;
    let public = key.public_key().as_der().map_err(|_| failed())?;
    Ok((private, public.as_ref().to_vec()))
}

/// The refusal of the SM2 wrapping key spec and SM2PKE.
pub fn sm2_refused() -> Error {
    Error::UnsupportedOperation(
        "SM2 wrapping keys and the SM2PKE wrapping algorithm are available only in the \
         service's China Regions; keyplane does not support them"
            .into(),
    )
}

/// The refusal of RSAES_PKCS1_V1_5.
pub fn pkcs1_refused() -> Error {
    Error::UnsupportedOperation(
        "the RSAES_PKCS1_V1_5 wrapping algorithm is no longer supported for importing key \
         material; use RSAES_OAEP_SHA_256, RSAES_OAEP_SHA_1, RSA_AES_KEY_WRAP_SHA_256 or \
         RSA_AES_KEY_WRAP_SHA_1"
            .into(),
    )
}

/// Checks that keyplane can honour `algorithm` with a wrapping key of `spec`.
pub fn check_supported(algorithm: WrappingAlgorithm, spec: WrappingKeySpec) -> Result<()> {
    match algorithm {
        WrappingAlgorithm::Sm2pke => Err(sm2_refused()),
        WrappingAlgorithm::RsaesPkcs1V15 => Err(pkcs1_refused()),
        _ if spec == WrappingKeySpec::Sm2 => Err(sm2_refused()),
        _ => Ok(()),
    }
}

fn oaep(algorithm: WrappingAlgorithm) -> Result<&'static OaepAlgorithm> {
    match algorithm {
        WrappingAlgorithm::RsaesOaepSha1 | WrappingAlgorithm::RsaAesKeyWrapSha1 => {
            Ok(&OAEP_SHA1_MGF1SHA1)
        }
        WrappingAlgorithm::RsaesOaepSha256 | WrappingAlgorithm::RsaAesKeyWrapSha256 => {
            Ok(&OAEP_SHA256_MGF1SHA256)
        }
        WrappingAlgorithm::RsaesPkcs1V15 => Err(pkcs1_refused()),
        WrappingAlgorithm::Sm2pke => Err(sm2_refused()),
    }
}

fn wrongly_wrapped() -> Error {
    Error::InvalidCiphertext(
        "the encrypted key material could not be decrypted with the wrapping key and algorithm of \
         the import token"
            .into(),
    )
}

/// Unwraps `encrypted` with the wrapping private key `private` under `algorithm`. Any failure
/// (wrong key, wrong algorithm, altered bytes, wrong length) is InvalidCiphertextException, with
/// one message whatever failed.
pub fn unwrap_material(
    private: &LockedBytes,
    algorithm: WrappingAlgorithm,
    encrypted: &[u8],
    policy: LockPolicy,
) -> Result<LockedBytes> {
    let oaep_algorithm = oaep(algorithm)?;
    let key = PrivateDecryptingKey::from_pkcs8(private.bytes())
        .map_err(|_| Error::Internal("the import token's wrapping key does not parse".into()))?;
    let modulus = key.key_size_bytes();
    let key = OaepPrivateDecryptingKey::new(key)
        .map_err(|_| Error::Internal("the import token's wrapping key is not an RSA key".into()))?;
    let rsa_decrypt = |ciphertext: &[u8]| -> Result<LockedBytes> {
        if ciphertext.len() != modulus {
            return Err(wrongly_wrapped());
        }
        let mut out = LockedBytes::zeroed(modulus, policy)?;
        let n = key
            .decrypt(oaep_algorithm, ciphertext, out.bytes_mut(), None)
            .map_err(|_| wrongly_wrapped())?
            .len();
        LockedBytes::copy_from(&out.bytes()[..n], policy)
    };
    match algorithm {
        WrappingAlgorithm::RsaesOaepSha1 | WrappingAlgorithm::RsaesOaepSha256 => {
            rsa_decrypt(encrypted)
        }
        _ => {
            // The RSA-wrapped AES key, then the material wrapped with AES key wrap with padding.
            if encrypted.len() <= modulus {
                return Err(wrongly_wrapped());
            }
            let (wrapped_key, wrapped_material) = encrypted.split_at(modulus);
            let aes_key = rsa_decrypt(wrapped_key)?;
            if aes_key.len() != AES_KEY_BYTES {
                return Err(wrongly_wrapped());
            }
            let kek = AesKek::new(&AES_256, aes_key.bytes()).map_err(|_| wrongly_wrapped())?;
            let mut out = LockedBytes::zeroed(wrapped_material.len(), policy)?;
            let n = kek
                .unwrap_with_padding(wrapped_material, out.bytes_mut())
                .map_err(|_| wrongly_wrapped())?
                .len();
            LockedBytes::copy_from(&out.bytes()[..n], policy)
        }
    }
}

/// What an import token promises.
pub struct TokenTerms {
    pub key_id: Uuid,
    pub valid_to: Timestamp,
    pub spec: WrappingKeySpec,
    pub algorithm: WrappingAlgorithm,
    /// The wrapping key pair's PKCS#8 private key.
    pub private_key: LockedBytes,
}

impl std::fmt::Debug for TokenTerms {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenTerms")
            .field("key_id", &self.key_id)
            .field("valid_to", &self.valid_to)
            .field("spec", &self.spec)
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}

fn index_of<T: PartialEq + Copy>(all: &[T], value: T) -> u8 {
    all.iter().position(|v| *v == value).unwrap_or(0) as u8
}

fn token_key(secret: &LockedBytes, policy: LockPolicy) -> Result<AesGcmKey> {
    if secret.len() != IMPORT_SECRET_BYTES {
        return Err(Error::Internal(
            "the import secret has the wrong length".into(),
        ));
    }
    AesGcmKey::new(&secret.bytes()[..32], policy)
}

/// Associated data of a token: binds it to the format and to the key it is for.
fn token_aad(key_id: &Uuid) -> Vec<u8> {
    let mut aad = b"keyplane import token v1".to_vec();
    aad.extend_from_slice(key_id.as_bytes());
    aad
}

/// Seals `terms` into an import token under `secret`.
pub fn seal_token(secret: &LockedBytes, terms: &TokenTerms, policy: LockPolicy) -> Result<Vec<u8>> {
    let key = token_key(secret, policy)?;
    let private = terms.private_key.bytes();
    let mut plain = LockedBytes::zeroed(TERMS_LEN + private.len(), policy)?;
    {
        let p = plain.bytes_mut();
        p[..16].copy_from_slice(terms.key_id.as_bytes());
        p[16..24].copy_from_slice(&terms.valid_to.0.to_be_bytes());
        p[24] = index_of(WrappingKeySpec::ALL, terms.spec);
        p[25] = index_of(WrappingAlgorithm::ALL, terms.algorithm);
        p[TERMS_LEN..].copy_from_slice(private);
    }
    let mut nonce = [0u8; NONCE_LEN];
    super::random::fill(&mut nonce)?;
    let mut token = vec![0u8; TOKEN_HEADER + plain.len() + TAG_LEN];
    token[..TOKEN_MAGIC.len()].copy_from_slice(TOKEN_MAGIC);
    token[TOKEN_MAGIC.len()..TOKEN_HEADER].copy_from_slice(&nonce);
    let (body, tag) = token[TOKEN_HEADER..].split_at_mut(plain.len());
    let mut tag_bytes = [0u8; TAG_LEN];
    key.seal(
        &nonce,
        &token_aad(&terms.key_id),
        plain.bytes(),
        body,
        &mut tag_bytes,
    )?;
    tag.copy_from_slice(&tag_bytes);
    Ok(token)
}

fn invalid_token() -> Error {
    Error::InvalidImportToken(
        "the import token is not valid for this KMS key: use the import token and public key \
         from the same GetParametersForImport response for this key"
            .into(),
    )
}

/// Opens an import token sealed for key `key_id` under `secret`. A token that is malformed, was
/// sealed for another key or by another store, or was altered is InvalidImportTokenException;
/// expiry is the caller's to check (the terms say when).
pub fn open_token(
    secret: &LockedBytes,
    key_id: &Uuid,
    token: &[u8],
    policy: LockPolicy,
) -> Result<TokenTerms> {
    if token.len() < TOKEN_HEADER + TERMS_LEN + TAG_LEN || !token.starts_with(TOKEN_MAGIC) {
        return Err(invalid_token());
    }
    let key = token_key(secret, policy)?;
    let mut nonce = [0u8; NONCE_LEN];
    nonce.copy_from_slice(&token[TOKEN_MAGIC.len()..TOKEN_HEADER]);
    let (body, tag) = token[TOKEN_HEADER..].split_at(token.len() - TOKEN_HEADER - TAG_LEN);
    let mut plain = LockedBytes::zeroed(body.len(), policy)?;
    key.open(&nonce, &token_aad(key_id), body, tag, plain.bytes_mut())
        .map_err(|_| invalid_token())?;
    let p = plain.bytes();
    if p[..16] != key_id.as_bytes()[..] {
        return Err(invalid_token());
    }
    let mut expiry = [0u8; 8];
    expiry.copy_from_slice(&p[16..24]);
    let spec = *WrappingKeySpec::ALL
        .get(usize::from(p[24]))
        .ok_or_else(invalid_token)?;
    let algorithm = *WrappingAlgorithm::ALL
        .get(usize::from(p[25]))
        .ok_or_else(invalid_token)?;
    Ok(TokenTerms {
        key_id: *key_id,
        valid_to: Timestamp(i64::from_be_bytes(expiry)),
        spec,
        algorithm,
        private_key: LockedBytes::copy_from(&p[TERMS_LEN..], policy)?,
    })
}

/// The id of imported material: HMAC-SHA256 under the import secret's second half of the key id
/// and the material, in hex. The same material imported into the same key always has the same
/// id, which is how a re-import is recognised, without keeping any plain digest of the material.
/// The HMAC key and the message (which holds the material) stay in locked memory.
pub fn material_id(
    secret: &LockedBytes,
    key_id: &Uuid,
    material: &LockedBytes,
    policy: LockPolicy,
) -> Result<String> {
    if secret.len() != IMPORT_SECRET_BYTES {
        return Err(Error::Internal(
            "the import secret has the wrong length".into(),
        ));
    }
    const LABEL: &[u8] = b"keyplane imported material id v1";
    let key = HmacKey::new(MacAlgorithm::HmacSha256, &secret.bytes()[32..], policy)?;
    let mut work = HmacWork::new(policy)?;
    let mut message = LockedBytes::zeroed(LABEL.len() + 16 + material.len(), policy)?;
    {
        let m = message.bytes_mut();
        m[..LABEL.len()].copy_from_slice(LABEL);
        m[LABEL.len()..LABEL.len() + 16].copy_from_slice(key_id.as_bytes());
        m[LABEL.len() + 16..].copy_from_slice(material.bytes());
    }
    let mut tag = [0u8; 32];
    let n = key.compute(&mut work, message.bytes(), &mut tag)?;
    Ok(tag[..n].iter().map(|b| format!("{b:02x}")).collect())
}

/// The modulus size in bits of a PKCS#8 RSA private key, if `pkcs8` is one.
pub fn rsa_private_key_bits(pkcs8: &LockedBytes) -> Option<usize> {
    PrivateDecryptingKey::from_pkcs8(pkcs8.bytes())
        .ok()
        .map(|key| key.key_size_bits())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret() -> LockedBytes {
        LockedBytes::random(IMPORT_SECRET_BYTES, LockPolicy::Require).unwrap()
    }

    #[test]
    fn a_token_opens_only_for_its_key_under_its_secret_and_unaltered() {
        let policy = LockPolicy::Require;
        let s = secret();
        let key_id = Uuid::new_v4();
        let (private, _) = generate_wrapping_key(WrappingKeySpec::Rsa2048, policy).unwrap();
        let terms = TokenTerms {
            key_id,
            valid_to: Timestamp(1_234_567),
            spec: WrappingKeySpec::Rsa2048,
            algorithm: WrappingAlgorithm::RsaAesKeyWrapSha256,
            private_key: private,
        };
        let token = seal_token(&s, &terms, policy).unwrap();
        let opened = open_token(&s, &key_id, &token, policy).unwrap();
        assert_eq!(opened.valid_to, Timestamp(1_234_567));
        assert_eq!(opened.algorithm, WrappingAlgorithm::RsaAesKeyWrapSha256);
        assert_eq!(opened.private_key.bytes(), terms.private_key.bytes());
        let code = |r: Result<TokenTerms>| r.unwrap_err().code();
        assert_eq!(
            code(open_token(&s, &Uuid::new_v4(), &token, policy)),
            "InvalidImportTokenException"
        );
        assert_eq!(
            code(open_token(&secret(), &key_id, &token, policy)),
            "InvalidImportTokenException"
        );
        for i in [0, 6, TOKEN_HEADER + 3, token.len() - 1] {
            let mut bad = token.clone();
            bad[i] ^= 1;
            assert_eq!(
                code(open_token(&s, &key_id, &bad, policy)),
                "InvalidImportTokenException"
            );
        }
        assert_eq!(
            code(open_token(&s, &key_id, &token[..40], policy)),
            "InvalidImportTokenException"
        );
    }

    #[test]
    fn material_ids_are_per_key_and_per_material() {
        let s = secret();
        let k = Uuid::new_v4();
        let m1 = LockedBytes::copy_from(&[1; 32], LockPolicy::Require).unwrap();
        let m2 = LockedBytes::copy_from(&[2; 32], LockPolicy::Require).unwrap();
        let p = LockPolicy::Require;
        let id = material_id(&s, &k, &m1, p).unwrap();
        assert_eq!(id.len(), 64);
        assert_eq!(id, material_id(&s, &k, &m1, p).unwrap());
        assert_ne!(id, material_id(&s, &k, &m2, p).unwrap());
        assert_ne!(id, material_id(&s, &Uuid::new_v4(), &m1, p).unwrap());
        // HMAC-SHA256 as RFC 2104 defines it, by aws-lc-rs's own HMAC.
        let hmac_key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, &s.bytes()[32..]);
        let mut message = b"keyplane imported material id v1".to_vec();
        message.extend_from_slice(k.as_bytes());
        message.extend_from_slice(m1.bytes());
        let expected: String = aws_lc_rs::hmac::sign(&hmac_key, &message)
            .as_ref()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(id, expected);
    }
}
