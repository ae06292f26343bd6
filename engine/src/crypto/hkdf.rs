//! HKDF (RFC 5869) with SHA-256, SHA-384 or SHA-512, writing the derived bytes straight into
//! locked memory. The Encryption SDK's message format derives its data and commitment keys so.
#![allow(unsafe_code)] // reason: aws-lc's one-shot HKDF via aws-lc-sys writes into locked memory.

use super::sys;
use crate::error::{Error, Result};
use crate::locked_memory::{LockPolicy, LockedBytes};

/// The hash HKDF runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HkdfHash {
    /// HKDF-SHA256.
    Sha256,
    /// HKDF-SHA384.
    Sha384,
    /// HKDF-SHA512.
    Sha512,
}

/// `len` bytes of HKDF output for `ikm`, `salt` (empty: the RFC's all-zero salt) and `info`, in
/// locked memory.
pub fn derive(
    hash: HkdfHash,
    ikm: &[u8],
    salt: &[u8],
    info: &[u8],
    len: usize,
    policy: LockPolicy,
) -> Result<LockedBytes> {
    let mut okm = LockedBytes::zeroed(len, policy)?;
    derive_into(okm.bytes_mut(), hash, ikm, salt, info)?;
    Ok(okm)
}

/// `out.len()` bytes of HKDF output for `ikm`, `salt` and `info`, into `out`.
pub(super) fn derive_into(
    out: &mut [u8],
    hash: HkdfHash,
    ikm: &[u8],
    salt: &[u8],
    info: &[u8],
) -> Result<()> {
    // SAFETY: the EVP_sha* functions return pointers to static digest descriptions; every buffer
    // pointer is valid for the length passed with it and `out` is exclusively borrowed.
    let ok = unsafe {
        let md = match hash {
            HkdfHash::Sha256 => sys::EVP_sha256(),
            HkdfHash::Sha384 => sys::EVP_sha384(),
            HkdfHash::Sha512 => sys::EVP_sha512(),
        };
        sys::HKDF(
            out.as_mut_ptr(),
            out.len(),
            md,
            ikm.as_ptr(),
            ikm.len(),
            salt.as_ptr(),
            salt.len(),
            info.as_ptr(),
            info.len(),
        )
    };
    if ok != 1 {
        return Err(Error::Internal(format!("HKDF-{hash:?} failed in aws-lc")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_rustcrypto_hkdf() {
        let ikm = [0x0bu8; 22];
        let salt = [1u8; 32];
        let ours = derive(
            HkdfHash::Sha512,
            &ikm,
            &salt,
            b"info",
            32,
            LockPolicy::Require,
        )
        .unwrap();
        let mut theirs = [0u8; 32];
        hkdf::Hkdf::<sha2::Sha512>::new(Some(&salt), &ikm)
            .expand(b"info", &mut theirs)
            .unwrap();
        assert_eq!(ours.bytes(), &theirs);
        // An empty salt is the RFC's all-zero salt of hash length.
        let ours = derive(HkdfHash::Sha256, &ikm, &[], b"x", 32, LockPolicy::Require).unwrap();
        hkdf::Hkdf::<sha2::Sha256>::new(None, &ikm)
            .expand(b"x", &mut theirs)
            .unwrap();
        assert_eq!(ours.bytes(), &theirs);
    }
}
