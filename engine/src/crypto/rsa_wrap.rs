//! RSA key wrapping as the AWS Encryption SDK's raw RSA keyring does it: PKCS#1 v1.5 or OAEP
//! (SHA-1/256/384/512 with MGF1 of the same) over a data key. The private key's PKCS#8 form is
//! kept in locked memory; the parsed key lives on aws-lc's heap, as every RSA key of the engine.

use aws_lc_rs::rsa::{
    OaepAlgorithm, OaepPrivateDecryptingKey, OaepPublicEncryptingKey, Pkcs1PrivateDecryptingKey,
    Pkcs1PublicEncryptingKey, PrivateDecryptingKey, PublicEncryptingKey, OAEP_SHA1_MGF1SHA1,
    OAEP_SHA256_MGF1SHA256, OAEP_SHA384_MGF1SHA384, OAEP_SHA512_MGF1SHA512,
};

use crate::error::{Error, Result};
use crate::locked_memory::{LockPolicy, LockedBytes};

/// The padding a raw RSA keyring wraps with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RsaPadding {
    /// PKCS#1 v1.5.
    Pkcs1,
    /// OAEP with SHA-1 and MGF1-SHA-1.
    OaepSha1,
    /// OAEP with SHA-256 and MGF1-SHA-256.
    OaepSha256,
    /// OAEP with SHA-384 and MGF1-SHA-384.
    OaepSha384,
    /// OAEP with SHA-512 and MGF1-SHA-512.
    OaepSha512,
}

impl RsaPadding {
    /// Every padding.
    pub const ALL: [RsaPadding; 5] = [
        RsaPadding::Pkcs1,
        RsaPadding::OaepSha1,
        RsaPadding::OaepSha256,
        RsaPadding::OaepSha384,
        RsaPadding::OaepSha512,
    ];

    /// The name the SDK's wrapping algorithms use (`RSA_OAEP_SHA256_MGF1`, `RSA_PKCS1`).
    pub const fn name(self) -> &'static str {
        match self {
            RsaPadding::Pkcs1 => "RSA_PKCS1",
            RsaPadding::OaepSha1 => "RSA_OAEP_SHA1_MGF1",
            RsaPadding::OaepSha256 => "RSA_OAEP_SHA256_MGF1",
            RsaPadding::OaepSha384 => "RSA_OAEP_SHA384_MGF1",
            RsaPadding::OaepSha512 => "RSA_OAEP_SHA512_MGF1",
        }
    }

    /// The padding named `name`.
    pub fn from_name(name: &str) -> Option<RsaPadding> {
        Self::ALL
            .into_iter()
            .find(|p| p.name().eq_ignore_ascii_case(name))
    }

    pub(crate) fn oaep(self) -> Option<&'static OaepAlgorithm> {
        Some(match self {
            RsaPadding::Pkcs1 => return None,
            RsaPadding::OaepSha1 => &OAEP_SHA1_MGF1SHA1,
            RsaPadding::OaepSha256 => &OAEP_SHA256_MGF1SHA256,
            RsaPadding::OaepSha384 => &OAEP_SHA384_MGF1SHA384,
            RsaPadding::OaepSha512 => &OAEP_SHA512_MGF1SHA512,
        })
    }
}

/// An RSA key that wraps with its public half and, given the private key, unwraps.
pub struct RsaWrappingKey {
    public: PublicEncryptingKey,
    /// The PKCS#8 form in locked memory and the parsed key.
    private: Option<(LockedBytes, PrivateDecryptingKey)>,
}

/// The key could not be parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rejected;

impl RsaWrappingKey {
    /// A key that wraps and unwraps, from its PKCS#8 DER (kept, in locked memory).
    pub fn from_pkcs8(pkcs8: LockedBytes) -> std::result::Result<Self, Rejected> {
        let private = PrivateDecryptingKey::from_pkcs8(pkcs8.bytes()).map_err(|_| Rejected)?;
        Ok(RsaWrappingKey {
            public: private.public_key(),
            private: Some((pkcs8, private)),
        })
    }

    /// A key that only wraps, from a DER SubjectPublicKeyInfo.
    pub fn from_public_der(spki: &[u8]) -> std::result::Result<Self, Rejected> {
        let public = PublicEncryptingKey::from_der(spki).map_err(|_| Rejected)?;
        Ok(RsaWrappingKey {
            public,
            private: None,
        })
    }

    /// Whether the private key is here.
    pub fn can_unwrap(&self) -> bool {
        self.private.is_some()
    }

    /// `data_key` encrypted under the public key with `padding`.
    pub fn wrap(&self, padding: RsaPadding, data_key: &LockedBytes) -> Result<Vec<u8>> {
        let failed = || Error::Internal(format!("{} wrapping failed", padding.name()));
        let mut out;
        let n = match padding.oaep() {
            Some(oaep) => {
                let public =
                    OaepPublicEncryptingKey::new(self.public.clone()).map_err(|_| failed())?;
                out = vec![0u8; public.ciphertext_size()];
                public
                    .encrypt(oaep, data_key.bytes(), &mut out, None)
                    .map_err(|_| failed())?
                    .len()
            }
            None => {
                let public =
                    Pkcs1PublicEncryptingKey::new(self.public.clone()).map_err(|_| failed())?;
                out = vec![0u8; public.ciphertext_size()];
                public
                    .encrypt(data_key.bytes(), &mut out)
                    .map_err(|_| failed())?
                    .len()
            }
        };
        out.truncate(n);
        Ok(out)
    }

    /// The data key of `expected_len` bytes in `ciphertext`, in locked memory; `None` when it
    /// does not decrypt with `padding` to that length (or there is no private key).
    pub fn unwrap(
        &self,
        padding: RsaPadding,
        ciphertext: &[u8],
        expected_len: usize,
    ) -> Result<Option<LockedBytes>> {
        let Some((_, private)) = &self.private else {
            return Ok(None);
        };
        let failed = || Error::Internal("RSA key setup failed".into());
        let mut out = LockedBytes::zeroed(private.key_size_bytes(), LockPolicy::default())?;
        let n = match padding.oaep() {
            Some(oaep) => {
                let key = OaepPrivateDecryptingKey::new(private.clone()).map_err(|_| failed())?;
                key.decrypt(oaep, ciphertext, out.bytes_mut(), None)
                    .map(|p| p.len())
            }
            None => {
                let key = Pkcs1PrivateDecryptingKey::new(private.clone()).map_err(|_| failed())?;
                key.decrypt(ciphertext, out.bytes_mut()).map(|p| p.len())
            }
        };
        match n {
            Ok(n) if n == expected_len => Ok(Some(LockedBytes::copy_from(
                &out.bytes()[..n],
                LockPolicy::default(),
            )?)),
            _ => Ok(None),
        }
    }
}

impl std::fmt::Debug for RsaWrappingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "RsaWrappingKey({} bits, {})",
            self.public.key_size_bits(),
            if self.private.is_some() {
                "private"
            } else {
                "public only"
            }
        )
    }
}
