//! HKDF-SHA256 (RFC 5869) of one 32-byte key, computed in caller-provided scratch memory: the
//! data plane derives a key per ciphertext salt, and cold decryption (every blob under its own
//! salt) derives one per item.
//!
//! aws-lc's one-shot `HKDF` builds an `HMAC_CTX` twice per call (method lookup, key set-up,
//! context copies), about a quarter of a derivation's cost. Here the two HMACs run straight on
//! `SHA256_Init`/`Update`/`Final` with their pads and intermediate values in [`Scratch`], which
//! [`super::aes_gcm::AesGcmKey`] keeps in its own locked slot: eight SHA-256 compressions, the
//! least HKDF-SHA256 of a 32-byte key with a 32-byte salt can do, and no allocation. The FIPS
//! build keeps the module's own `HKDF` (the KDF must be the validated module's service).
#![allow(unsafe_code)] // reason: SHA-256 of aws-lc via aws-lc-sys, into locked scratch.

use super::sys;
use crate::error::Result;

/// SHA-256's block size: the HMAC pads' length.
const BLOCK: usize = 64;
/// SHA-256's output size, and the derived key's.
pub(crate) const OUT: usize = 32;

/// Everything secret a derivation writes: the hash state, the padded HMAC key, the inner hash,
/// the pseudorandom key and the output. Lives in locked memory; zeroed by the owner after use.
#[repr(C)]
#[cfg_attr(feature = "fips", allow(dead_code))] // reason: the FIPS build writes only `okm`.
pub(crate) struct Scratch {
    sha: sys::SHA256_CTX,
    pad: [u8; BLOCK],
    inner: [u8; OUT],
    prk: [u8; OUT],
    okm: [u8; OUT],
}

impl Scratch {
    /// The derived key of the last successful [`derive`].
    pub(crate) fn okm(&self) -> &[u8; OUT] {
        &self.okm
    }
}

/// HMAC-SHA256 of `parts` (concatenated) under the 32-byte `key` field (zero-padded to a block,
/// as HMAC pads a short key), into the `out` field. Fields are named, not borrowed, so that key,
/// pads, state and output all stay in `s`.
#[cfg(not(feature = "fips"))]
fn hmac(s: &mut Scratch, key: Field, parts: &[&[u8]], out: Field) -> Result<()> {
    let sha: *mut sys::SHA256_CTX = &mut s.sha;
    for pad_byte in [0x36u8, 0x5c] {
        s.pad = [pad_byte; BLOCK];
        for i in 0..OUT {
            let k = s.field(key)[i];
            s.pad[i] ^= k;
        }
        // SAFETY: `sha` points to the scratch's own hash state, which nothing else borrows during
        // these calls; every data pointer is valid for the length passed with it; `SHA256_Final`
        // writes exactly 32 bytes, into a 32-byte field.
        let ok = unsafe {
            let ok = sys::SHA256_Init(sha) & sys::SHA256_Update(sha, s.pad.as_ptr().cast(), BLOCK);
            if pad_byte == 0x36 {
                let ok = parts.iter().fold(ok, |ok, part| {
                    ok & sys::SHA256_Update(sha, part.as_ptr().cast(), part.len())
                });
                ok & sys::SHA256_Final(s.inner.as_mut_ptr(), sha)
            } else {
                let ok = ok & sys::SHA256_Update(sha, s.inner.as_ptr().cast(), OUT);
                ok & sys::SHA256_Final(s.field_mut(out).as_mut_ptr(), sha)
            }
        };
        if ok != 1 {
            return Err(crate::error::Error::Internal(
                "SHA-256 failed in aws-lc".into(),
            ));
        }
    }
    Ok(())
}

/// The scratch fields an HMAC key or output can be.
#[cfg(not(feature = "fips"))]
#[derive(Clone, Copy)]
enum Field {
    Prk,
    Okm,
}

#[cfg(not(feature = "fips"))]
impl Scratch {
    fn field(&self, f: Field) -> &[u8; OUT] {
        match f {
            Field::Prk => &self.prk,
            Field::Okm => &self.okm,
        }
    }

    fn field_mut(&mut self, f: Field) -> &mut [u8; OUT] {
        match f {
            Field::Prk => &mut self.prk,
            Field::Okm => &mut self.okm,
        }
    }
}

/// HKDF-SHA256 of `ikm` with `salt` and `info`, 32 bytes, into `s.okm()`. Everything it writes
/// stays in `s`; the caller zeroes `s` once the key is used.
pub(crate) fn derive(s: &mut Scratch, ikm: &[u8], salt: &[u8], info: &[u8]) -> Result<()> {
    #[cfg(not(feature = "fips"))]
    if salt.len() <= OUT {
        // Extract: PRK = HMAC(salt, IKM), the salt as the key (zero-padded as HMAC pads it, so
        // an empty salt is RFC 5869's all-zero one). Expand to one block: HMAC(PRK, info ‖ 1).
        s.okm = [0; OUT];
        s.okm[..salt.len()].copy_from_slice(salt);
        hmac(s, Field::Okm, &[ikm], Field::Prk)?;
        return hmac(s, Field::Prk, &[info, &[1u8]], Field::Okm);
    }
    super::hkdf::derive_into(&mut s.okm, super::hkdf::HkdfHash::Sha256, ikm, salt, info)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch() -> Box<Scratch> {
        // SAFETY: `Scratch` is plain bytes and integers (repr(C)); all zeros is a valid value.
        Box::new(unsafe { std::mem::zeroed() })
    }

    fn unhex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// RFC 5869 appendix A.1 (SHA-256, 13-byte salt), truncated to our 32 bytes, and A.3 (no salt).
    #[test]
    fn matches_rfc_5869() {
        let mut s = scratch();
        derive(
            &mut s,
            &[0x0b; 22],
            &unhex("000102030405060708090a0b0c"),
            &unhex("f0f1f2f3f4f5f6f7f8f9"),
        )
        .unwrap();
        assert_eq!(
            s.okm().to_vec(),
            unhex("3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf")
        );
        derive(&mut s, &[0x0b; 22], &[], &[]).unwrap();
        assert_eq!(
            s.okm().to_vec(),
            unhex("8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d")
        );
    }

    /// Against RustCrypto's HKDF, for every salt and info length around the block boundaries
    /// (a salt longer than 32 bytes takes aws-lc's HKDF).
    #[test]
    fn matches_rustcrypto_for_every_length() {
        let mut s = scratch();
        for salt_len in [0usize, 1, 31, 32, 33, 64, 65, 100] {
            for info_len in [0usize, 1, 52, 54, 55, 56, 63, 64, 65, 120] {
                let ikm: Vec<u8> = (0..32).map(|i| (i * 3 + salt_len) as u8).collect();
                let salt: Vec<u8> = (0..salt_len).map(|i| (i * 5 + 1) as u8).collect();
                let info: Vec<u8> = (0..info_len).map(|i| (i * 7 + 2) as u8).collect();
                derive(&mut s, &ikm, &salt, &info).unwrap();
                let mut expect = [0u8; 32];
                hkdf::Hkdf::<sha2::Sha256>::new(Some(&salt), &ikm)
                    .expand(&info, &mut expect)
                    .unwrap();
                assert_eq!(s.okm(), &expect, "salt {salt_len} info {info_len}");
            }
        }
    }
}
