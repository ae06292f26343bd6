//! AES-GCM with its expanded key schedule in locked memory, and HKDF-SHA256 key derivation.
//!
//! aws-lc-rs allocates its AEAD contexts on aws-lc's heap, out of our reach. Here the
//! `EVP_AEAD_CTX` (which holds the AES round keys and the GHASH table inline) is initialised in
//! place inside a [`LockedSlot`], so the expanded schedule is locked, excluded from core dumps and
//! zeroed on drop like the raw key. A derived key is computed in the same slot (see
//! [`super::hkdf_sha256`]), so its bytes never leave locked memory either.
#![allow(unsafe_code)] // reason: aws-lc EVP_AEAD_CTX initialised in place in locked memory via aws-lc-sys.

use super::{hkdf_sha256, sys};
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

/// Where a key's derivation scratch starts in its slot: after the context, on a cache line of
/// its own. The scratch is zero except during [`AesGcmKey::rederive`].
const SCRATCH_OFFSET: usize = std::mem::size_of::<sys::EVP_AEAD_CTX>().next_multiple_of(64);
/// A key's slot: its context, then its derivation scratch.
const SLOT_LEN: usize = SCRATCH_OFFSET + std::mem::size_of::<hkdf_sha256::Scratch>();

impl AesGcmKey {
    /// Expands `key` (16, 24 or 32 bytes) into a context in locked memory.
    pub fn new(key: &[u8], policy: LockPolicy) -> Result<Self> {
        let mut this = AesGcmKey {
            ctx: LockedSlot::new(SLOT_LEN, policy)?,
            key_bits: 0,
        };
        let ctx_ptr = this.ctx_mut();
        // SAFETY: `ctx_ptr` is this key's own zeroed context (the slot is zeroed when handed
        // out), never initialised before; `key` is valid for its length and outside the slot.
        unsafe { init(ctx_ptr, key.as_ptr(), key.len()) }?;
        this.key_bits = key.len() * 8;
        Ok(this)
    }

    /// Derives an AES-256-GCM key with HKDF-SHA256 (RFC 5869) from `ikm`, `salt` and `info`. The
    /// derived bytes exist only in locked memory (the key's own slot) and are zeroed once the
    /// context is expanded.
    pub fn derive(ikm: &LockedBytes, salt: &[u8], info: &[u8], policy: LockPolicy) -> Result<Self> {
        AesGcmKey {
            ctx: LockedSlot::new(SLOT_LEN, policy)?,
            key_bits: 0,
        }
        .rederive(ikm, salt, info)
    }

    /// As [`AesGcmKey::derive`], in this key's slot instead of a new one: a cache that evicts
    /// one derived key for another reuses its locked memory. This key is gone either way: on
    /// failure the slot is dropped (zeroed), never left holding a half-made context.
    pub fn rederive(mut self, ikm: &LockedBytes, salt: &[u8], info: &[u8]) -> Result<Self> {
        let ctx_ptr = self.ctx_mut();
        // SAFETY: the context is this key's own, either initialised (by `new` or an earlier
        // derivation) or zeroed: cleanup of a zeroed context does nothing (its `aead` is NULL).
        unsafe { sys::EVP_AEAD_CTX_cleanup(ctx_ptr) };
        self.key_bits = 0;
        // SAFETY: the scratch lies inside the slot, past the context (SLOT_LEN covers it), is
        // aligned (the slot is 64-byte aligned, the offset a multiple of 64), is plain bytes and
        // integers for which any bit pattern is valid, and is borrowed only here.
        let scratch = unsafe {
            &mut *self
                .ctx
                .as_mut_ptr()
                .add(SCRATCH_OFFSET)
                .cast::<hkdf_sha256::Scratch>()
        };
        let derived = hkdf_sha256::derive(scratch, ikm.bytes(), salt, info).and_then(|()| {
            let okm = scratch.okm();
            // SAFETY: `ctx_ptr` is this key's context, cleaned up above; `okm` is 32 bytes in
            // the scratch, which does not overlap the context.
            unsafe { init(ctx_ptr, okm.as_ptr(), okm.len()) }
        });
        zeroize::Zeroize::zeroize(&mut self.ctx.bytes_mut()[SCRATCH_OFFSET..]);
        derived?;
        self.key_bits = 256;
        Ok(self)
    }

    fn ctx_mut(&mut self) -> *mut sys::EVP_AEAD_CTX {
        debug_assert_eq!(
            self.ctx.as_ptr() as usize % std::mem::align_of::<sys::EVP_AEAD_CTX>(),
            0
        );
        self.ctx.as_mut_ptr().cast()
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

/// Initialises the context at `ctx` for the AES-GCM key of `key_len` bytes at `key`. On failure
/// the context is left zeroed (aws-lc clears it), so its cleanup does nothing.
///
/// # Safety
/// `ctx` points to a zeroed or cleaned-up, aligned, exclusively owned `EVP_AEAD_CTX` that never
/// moves; `key` is valid for `key_len` bytes.
unsafe fn init(ctx: *mut sys::EVP_AEAD_CTX, key: *const u8, key_len: usize) -> Result<()> {
    // SAFETY: the EVP_aead_* functions return pointers to static algorithm descriptions.
    let aead = unsafe {
        match key_len {
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
    // SAFETY: as this function's contract says of `ctx` and `key`.
    let ok = unsafe {
        sys::EVP_AEAD_CTX_zero(ctx);
        sys::EVP_AEAD_CTX_init(ctx, aead, key, key_len, TAG_LEN, std::ptr::null_mut())
    };
    if ok != 1 {
        return Err(Error::Internal("AES-GCM key setup failed in aws-lc".into()));
    }
    Ok(())
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

    /// A derived key, fresh or derived into an evicted key's slot, is AES-GCM under the HKDF
    /// output RustCrypto computes, and the slot's scratch is zero afterwards.
    #[test]
    fn derived_and_rederived_keys_are_the_hkdf_output() {
        let ikm = LockedBytes::copy_from(&[9u8; 32], LockPolicy::Require).unwrap();
        let seal_with = |key: &AesGcmKey| {
            let mut ct = [0u8; 20];
            let mut tag = [0u8; TAG_LEN];
            key.seal(&[3; NONCE_LEN], b"ad", &[0x42; 20], &mut ct, &mut tag)
                .unwrap();
            (ct, tag)
        };
        for salt in [[1u8; 32], [2u8; 32]] {
            let mut okm = [0u8; 32];
            hkdf::Hkdf::<sha2::Sha256>::new(Some(&salt), &[9u8; 32])
                .expand(b"info", &mut okm)
                .unwrap();
            let expect = seal_with(&AesGcmKey::new(&okm, LockPolicy::Require).unwrap());
            let fresh = AesGcmKey::derive(&ikm, &salt, b"info", LockPolicy::Require).unwrap();
            let reused = AesGcmKey::new(&[7u8; 16], LockPolicy::Require)
                .unwrap()
                .rederive(&ikm, &[5u8; 32], b"other")
                .unwrap()
                .rederive(&ikm, &salt, b"info")
                .unwrap();
            assert_eq!(seal_with(&fresh), expect);
            assert_eq!(seal_with(&reused), expect);
            assert_eq!(reused.key_bits(), 256);
            for key in [&fresh, &reused] {
                assert!(key.ctx.bytes()[SCRATCH_OFFSET..].iter().all(|&b| b == 0));
            }
        }
    }

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
