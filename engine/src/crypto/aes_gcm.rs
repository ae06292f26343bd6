//! AES-GCM with its expanded key schedule in locked memory, and HKDF-SHA256 key derivation.
//!
//! aws-lc-rs allocates its AEAD contexts on aws-lc's heap, out of our reach. Here the
//! `EVP_AEAD_CTX` (which holds the AES round keys and the GHASH table inline) is initialised in
//! place inside a [`LockedSlot`], so the expanded schedule is locked, excluded from core dumps and
//! zeroed on drop like the raw key.
#![allow(unsafe_code)] // reason: aws-lc EVP_AEAD_CTX initialised in place in locked memory via aws-lc-sys.

use super::sys;
use crate::error::{Error, Result};
use crate::locked_memory::{LockPolicy, LockedBytes, LockedSlot};

/// GCM nonce length: the 96 bits SP 800-38D recommends; the only length this layer accepts.
pub const NONCE_LEN: usize = 12;
/// GCM tag length: the full 128 bits; the only length this layer produces or accepts.
pub const TAG_LEN: usize = 16;

/// The tag did not verify: wrong key, nonce, associated data, ciphertext or tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenError;

/// An AES-GCM key (128, 192 or 256 bits) whose aws-lc context lives in locked memory.
pub struct AesGcmKey {
    ctx: LockedSlot,
    key_bits: usize,
}

// SAFETY: aws-lc's EVP_AEAD_CTX_seal/open take a const context and do not mutate it, so shared
// use from many threads is sound; the slot is exclusively owned memory.
unsafe impl Send for AesGcmKey {}
// SAFETY: as above: every operation through `&self` passes a const EVP_AEAD_CTX pointer.
unsafe impl Sync for AesGcmKey {}

impl AesGcmKey {
    /// Expands `key` (16, 24 or 32 bytes) into a context in locked memory.
    pub fn new(key: &[u8], policy: LockPolicy) -> Result<Self> {
        // SAFETY: the EVP_aead_* functions return pointers to static algorithm descriptions.
        let aead = unsafe {
            match key.len() {
                16 => sys::EVP_aead_aes_128_gcm(),
                24 => sys::EVP_aead_aes_192_gcm(),
                32 => sys::EVP_aead_aes_256_gcm(),
                n => {
                    return Err(Error::Validation(format!(
                        "an AES-GCM key is 16, 24 or 32 bytes, not {n}"
                    )))
                }
            }
        };
        let mut ctx = LockedSlot::new(std::mem::size_of::<sys::EVP_AEAD_CTX>(), policy)?;
        debug_assert_eq!(
            ctx.as_ptr() as usize % std::mem::align_of::<sys::EVP_AEAD_CTX>(),
            0
        );
        let ctx_ptr = ctx.as_mut_ptr().cast::<sys::EVP_AEAD_CTX>();
        // SAFETY: `ctx_ptr` points to a zeroed, suitably aligned, exclusively owned slot at least
        // size_of::<EVP_AEAD_CTX>() bytes long that never moves; `key` is valid for its length.
        let ok = unsafe {
            sys::EVP_AEAD_CTX_zero(ctx_ptr);
            sys::EVP_AEAD_CTX_init(
                ctx_ptr,
                aead,
                key.as_ptr(),
                key.len(),
                TAG_LEN,
                std::ptr::null_mut(),
            )
        };
        if ok != 1 {
            return Err(Error::Internal("AES-GCM key setup failed in aws-lc".into()));
        }
        Ok(AesGcmKey {
            ctx,
            key_bits: key.len() * 8,
        })
    }

    /// Derives an AES-256-GCM key with HKDF-SHA256 (RFC 5869) from `ikm`, `salt` and `info`. The
    /// derived bytes exist only in locked memory and are zeroed once the context is expanded.
    pub fn derive(ikm: &LockedBytes, salt: &[u8], info: &[u8], policy: LockPolicy) -> Result<Self> {
        let mut okm = LockedBytes::zeroed(32, policy)?;
        let out = okm.bytes_mut();
        // SAFETY: every pointer is valid for the length passed with it; EVP_sha256 is static.
        let ok = unsafe {
            sys::HKDF(
                out.as_mut_ptr(),
                out.len(),
                sys::EVP_sha256(),
                ikm.bytes().as_ptr(),
                ikm.len(),
                salt.as_ptr(),
                salt.len(),
                info.as_ptr(),
                info.len(),
            )
        };
        if ok != 1 {
            return Err(Error::Internal("HKDF-SHA256 failed in aws-lc".into()));
        }
        Self::new(okm.bytes(), policy)
    }

    /// Key size in bits.
    pub fn key_bits(&self) -> usize {
        self.key_bits
    }

    fn ctx(&self) -> *const sys::EVP_AEAD_CTX {
        self.ctx.as_ptr().cast()
    }

    /// Encrypts `plaintext` into `ciphertext` (same length) and writes the tag. The caller must
    /// never use a nonce twice with one key.
    pub fn seal(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        plaintext: &[u8],
        ciphertext: &mut [u8],
        tag: &mut [u8; TAG_LEN],
    ) -> Result<()> {
        self.seal_uninit(nonce, aad, plaintext, as_uninit(ciphertext), tag)
    }

    /// Verifies `tag` and decrypts `ciphertext` into `plaintext` (same length). On failure the
    /// output is zeroed.
    pub fn open(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        ciphertext: &[u8],
        tag: &[u8],
        plaintext: &mut [u8],
    ) -> Result<(), OpenError> {
        self.open_uninit(nonce, aad, ciphertext, tag, as_uninit(plaintext))
    }

    /// As [`AesGcmKey::seal`], into memory not yet initialised (a vector's spare capacity): no
    /// zero-fill before the ciphertext overwrites it. On success every byte of `ciphertext` is
    /// initialised; on failure it is zeroed.
    pub fn seal_uninit(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        plaintext: &[u8],
        ciphertext: &mut [std::mem::MaybeUninit<u8>],
        tag: &mut [u8; TAG_LEN],
    ) -> Result<()> {
        if ciphertext.len() != plaintext.len() {
            return Err(Error::Internal("seal buffers differ in length".into()));
        }
        let mut tag_len = 0usize;
        // SAFETY: the context was initialised in `new`; every buffer is valid for the length
        // passed with it (aws-lc only writes `ciphertext`, never reads it, so its being
        // uninitialised is fine), and `ciphertext` (a `&mut`) cannot overlap `plaintext`.
        let ok = unsafe {
            sys::EVP_AEAD_CTX_seal_scatter(
                self.ctx(),
                ciphertext.as_mut_ptr().cast::<u8>(),
                tag.as_mut_ptr(),
                &mut tag_len,
                TAG_LEN,
                nonce.as_ptr(),
                NONCE_LEN,
                plaintext.as_ptr(),
                plaintext.len(),
                std::ptr::null(),
                0,
                aad.as_ptr(),
                aad.len(),
            )
        };
        if ok != 1 || tag_len != TAG_LEN {
            zeroize::Zeroize::zeroize(ciphertext);
            return Err(Error::Internal("AES-GCM seal failed in aws-lc".into()));
        }
        Ok(())
    }

    /// As [`AesGcmKey::open`], into memory not yet initialised (a vector's spare capacity): no
    /// zero-fill before the plaintext overwrites it. On success every byte of `plaintext` is
    /// initialised; on failure it is zeroed (aws-lc never leaves partial output).
    pub fn open_uninit(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        ciphertext: &[u8],
        tag: &[u8],
        plaintext: &mut [std::mem::MaybeUninit<u8>],
    ) -> Result<(), OpenError> {
        if plaintext.len() != ciphertext.len() || tag.len() != TAG_LEN {
            zeroize::Zeroize::zeroize(plaintext);
            return Err(OpenError);
        }
        // SAFETY: the context was initialised in `new`; every buffer is valid for the length
        // passed with it (aws-lc only writes `plaintext`, never reads it), and `plaintext` (a
        // `&mut`) cannot overlap `ciphertext`.
        let ok = unsafe {
            sys::EVP_AEAD_CTX_open_gather(
                self.ctx(),
                plaintext.as_mut_ptr().cast::<u8>(),
                nonce.as_ptr(),
                NONCE_LEN,
                ciphertext.as_ptr(),
                ciphertext.len(),
                tag.as_ptr(),
                tag.len(),
                aad.as_ptr(),
                aad.len(),
            )
        };
        if ok != 1 {
            zeroize::Zeroize::zeroize(plaintext);
            return Err(OpenError);
        }
        Ok(())
    }

    /// Verifies `tag` and decrypts `buffer` in place (ciphertext in, plaintext out). On failure
    /// the buffer is zeroed.
    pub fn open_in_place(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        buffer: &mut [u8],
        tag: &[u8],
    ) -> Result<(), OpenError> {
        if tag.len() != TAG_LEN {
            zeroize::Zeroize::zeroize(buffer);
            return Err(OpenError);
        }
        let ptr = buffer.as_mut_ptr();
        // SAFETY: the context was initialised in `new`; `buffer` is valid for its length, and
        // aws-lc allows input and output to alias when they are the same pointer (aead.h: "If
        // |in| and |out| alias then |out| must be == |in|"), as here.
        let ok = unsafe {
            sys::EVP_AEAD_CTX_open_gather(
                self.ctx(),
                ptr,
                nonce.as_ptr(),
                NONCE_LEN,
                ptr.cast_const(),
                buffer.len(),
                tag.as_ptr(),
                tag.len(),
                aad.as_ptr(),
                aad.len(),
            )
        };
        if ok != 1 {
            zeroize::Zeroize::zeroize(buffer);
            return Err(OpenError);
        }
        Ok(())
    }
}

impl Drop for AesGcmKey {
    fn drop(&mut self) {
        // SAFETY: the context was initialised in `new` and is not used after this; the slot's own
        // drop then zeroes the whole schedule.
        unsafe { sys::EVP_AEAD_CTX_cleanup(self.ctx.as_mut_ptr().cast()) };
    }
}

impl std::fmt::Debug for AesGcmKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AesGcmKey {{ algorithm: AES-{}-GCM }}", self.key_bits)
    }
}

/// An initialised buffer as output space for [`AesGcmKey::seal_uninit`] and
/// [`AesGcmKey::open_uninit`], which only ever write initialised bytes into it (the result, or
/// zeros on failure), so it stays initialised.
fn as_uninit(buffer: &mut [u8]) -> &mut [std::mem::MaybeUninit<u8>] {
    // SAFETY: `MaybeUninit<u8>` has the layout of `u8`; the only callers pass the slice to the two
    // functions above, which write initialised bytes only, so no uninitialised byte can appear in
    // `buffer` through it.
    unsafe { &mut *(buffer as *mut [u8] as *mut [std::mem::MaybeUninit<u8>]) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_tamper() {
        let key = AesGcmKey::new(&[7u8; 32], LockPolicy::Require).unwrap();
        let nonce = [1u8; NONCE_LEN];
        let pt = b"attack at dawn";
        let mut ct = [0u8; 14];
        let mut tag = [0u8; TAG_LEN];
        key.seal(&nonce, b"aad", pt, &mut ct, &mut tag).unwrap();
        let mut out = [0u8; 14];
        key.open(&nonce, b"aad", &ct, &tag, &mut out).unwrap();
        assert_eq!(&out, pt);
        assert_eq!(
            key.open(&nonce, b"aaD", &ct, &tag, &mut out),
            Err(OpenError)
        );
        assert_eq!(out, [0u8; 14], "failed open leaves no partial plaintext");
    }

    #[test]
    fn uninit_and_in_place_agree_with_aws_lc_rs_and_zero_on_failure() {
        use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM};
        use std::mem::MaybeUninit;
        let raw = [5u8; 32];
        let ours = AesGcmKey::new(&raw, LockPolicy::Require).unwrap();
        let theirs = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &raw).unwrap());
        let nonce = [4u8; NONCE_LEN];
        for len in [0usize, 1, 15, 16, 17, 4096, 5000] {
            let pt: Vec<u8> = (0..len).map(|i| (i * 7) as u8).collect();
            let mut expect = pt.clone();
            let expect_tag = theirs
                .seal_in_place_separate_tag(
                    Nonce::assume_unique_for_key(nonce),
                    Aad::from(b"ad"),
                    &mut expect,
                )
                .unwrap();
            let mut ct = Vec::<u8>::with_capacity(len);
            let mut tag = [0u8; TAG_LEN];
            ours.seal_uninit(
                &nonce,
                b"ad",
                &pt,
                &mut ct.spare_capacity_mut()[..len],
                &mut tag,
            )
            .unwrap();
            // SAFETY: seal_uninit succeeded, so the first `len` spare bytes are initialised.
            unsafe { ct.set_len(len) };
            assert_eq!(ct, expect);
            assert_eq!(&tag[..], expect_tag.as_ref());
            let mut opened = Vec::<u8>::with_capacity(len);
            ours.open_uninit(
                &nonce,
                b"ad",
                &ct,
                &tag,
                &mut opened.spare_capacity_mut()[..len],
            )
            .unwrap();
            // SAFETY: open_uninit succeeded, so the first `len` spare bytes are initialised.
            unsafe { opened.set_len(len) };
            assert_eq!(opened, pt);
            let mut buf = ct.clone();
            ours.open_in_place(&nonce, b"ad", &mut buf, &tag).unwrap();
            assert_eq!(buf, pt);
            if len > 0 {
                let mut buf = ct.clone();
                buf[len / 2] ^= 1;
                assert_eq!(
                    ours.open_in_place(&nonce, b"ad", &mut buf, &tag),
                    Err(OpenError)
                );
                assert!(
                    buf.iter().all(|&b| b == 0),
                    "failed in-place open is zeroed"
                );
                let mut out = vec![MaybeUninit::new(0xAAu8); len];
                assert_eq!(
                    ours.open_uninit(&nonce, b"aD", &ct, &tag, &mut out),
                    Err(OpenError)
                );
                // SAFETY: every element was initialised above (and zeroed by the failure).
                assert!(out.iter().all(|b| unsafe { b.assume_init() } == 0));
            }
        }
    }

    #[test]
    fn matches_aws_lc_rs() {
        use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM};
        let raw = [9u8; 32];
        let ours = AesGcmKey::new(&raw, LockPolicy::Require).unwrap();
        let theirs = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &raw).unwrap());
        let nonce = [3u8; NONCE_LEN];
        let mut buf = b"the same bytes either way".to_vec();
        let tag_theirs = theirs
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(b"ctx"),
                &mut buf,
            )
            .unwrap();
        let mut ct = vec![0u8; buf.len()];
        let mut tag = [0u8; TAG_LEN];
        ours.seal(
            &nonce,
            b"ctx",
            b"the same bytes either way",
            &mut ct,
            &mut tag,
        )
        .unwrap();
        assert_eq!(ct, buf);
        assert_eq!(&tag, tag_theirs.as_ref());
    }

    #[test]
    fn debug_shows_algorithm_only() {
        let key = AesGcmKey::new(&[0x5a; 16], LockPolicy::Require).unwrap();
        assert_eq!(format!("{key:?}"), "AesGcmKey { algorithm: AES-128-GCM }");
    }
}
