//! HMAC (RFC 2104) with SHA-224/256/384/512, its keyed state in locked memory.
//!
//! aws-lc's `HMAC_CTX` holds the inner and outer hash states (the key, pre-hashed with the pads)
//! inline, so it is initialised in place in a [`LockedSlot`]. Each MAC copies that keyed state into
//! a working context, also in locked memory ([`HmacWork`]), so the keyed state is never mutated and
//! can be shared by every thread.
#![allow(unsafe_code)] // reason: aws-lc HMAC_CTX initialised and copied in place in locked memory via aws-lc-sys.

use super::sys;
use crate::error::{Error, Result};
use crate::key::MacAlgorithm;
use crate::locked_memory::{LockPolicy, LockedSlot};

/// Longest MAC (HMAC-SHA-512).
pub const MAX_MAC_LEN: usize = 64;

fn digest(algorithm: MacAlgorithm) -> *const sys::EVP_MD {
    // SAFETY: the EVP_sha* functions return pointers to static digest descriptions.
    unsafe {
        match algorithm {
            MacAlgorithm::HmacSha224 => sys::EVP_sha224(),
            MacAlgorithm::HmacSha256 => sys::EVP_sha256(),
            MacAlgorithm::HmacSha384 => sys::EVP_sha384(),
            MacAlgorithm::HmacSha512 => sys::EVP_sha512(),
        }
    }
}

/// Output length of `algorithm` in bytes.
pub fn mac_len(algorithm: MacAlgorithm) -> usize {
    match algorithm {
        MacAlgorithm::HmacSha224 => 28,
        MacAlgorithm::HmacSha256 => 32,
        MacAlgorithm::HmacSha384 => 48,
        MacAlgorithm::HmacSha512 => 64,
    }
}

/// A working `HMAC_CTX` in locked memory, reused from MAC to MAC.
pub struct HmacWork {
    ctx: LockedSlot,
}

impl HmacWork {
    /// A working context.
    pub fn new(policy: LockPolicy) -> Result<Self> {
        let mut ctx = LockedSlot::new(std::mem::size_of::<sys::HMAC_CTX>(), policy)?;
        // SAFETY: a zeroed, aligned, exclusively owned slot of at least sizeof(HMAC_CTX) bytes.
        unsafe { sys::HMAC_CTX_init(ctx.as_mut_ptr().cast()) };
        Ok(HmacWork { ctx })
    }
}

impl HmacWork {
    /// Wipes the context (the keyed state the last MAC copied in), so that it can wait, holding
    /// nothing secret, for the next MAC on this thread. The wiped context is a valid empty one:
    /// aws-lc's `HMAC_CTX_cleanup` (`aws-lc-sys` 0.47 and `aws-lc-fips-sys` 0.14, `hmac.c`)
    /// cleanses the whole struct to the zeroes that `HMAC_CTX_init` writes, so no init follows.
    pub fn clear(&mut self) {
        // SAFETY: initialised in `new` and only ever wiped back to that state; cleanup works in
        // place in the exclusively owned slot.
        unsafe { sys::HMAC_CTX_cleanup(self.ctx.as_mut_ptr().cast()) };
    }
}

#[cfg(test)]
impl HmacWork {
    /// Whether every byte of the context is zero (nothing of a key left in it).
    pub(crate) fn is_blank(&self) -> bool {
        self.ctx.bytes().iter().all(|&b| b == 0)
    }
}

impl Drop for HmacWork {
    fn drop(&mut self) {
        // SAFETY: initialised in `new`; the slot's drop zeroes what cleanup leaves.
        unsafe { sys::HMAC_CTX_cleanup(self.ctx.as_mut_ptr().cast()) };
    }
}

impl std::fmt::Debug for HmacWork {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HmacWork")
    }
}

/// An HMAC key: the keyed `HMAC_CTX`, in locked memory.
pub struct HmacKey {
    ctx: LockedSlot,
    algorithm: MacAlgorithm,
}

// SAFETY: after `new`, the keyed context is only read (HMAC_CTX_copy_ex takes a const source).
unsafe impl Send for HmacKey {}
// SAFETY: as above; concurrent readers of an immutable HMAC_CTX are sound.
unsafe impl Sync for HmacKey {}

impl HmacKey {
    /// Keys `algorithm` with `key`.
    pub fn new(algorithm: MacAlgorithm, key: &[u8], policy: LockPolicy) -> Result<Self> {
        let mut ctx = LockedSlot::new(std::mem::size_of::<sys::HMAC_CTX>(), policy)?;
        let ptr = ctx.as_mut_ptr().cast::<sys::HMAC_CTX>();
        // SAFETY: a zeroed, aligned, exclusively owned slot that never moves; `key` is valid for
        // its length; the digest is static.
        let ok = unsafe {
            sys::HMAC_CTX_init(ptr);
            sys::HMAC_Init_ex(
                ptr,
                key.as_ptr().cast(),
                key.len(),
                digest(algorithm),
                std::ptr::null_mut(),
            )
        };
        if ok != 1 {
            return Err(Error::Internal("HMAC key setup failed in aws-lc".into()));
        }
        Ok(HmacKey { ctx, algorithm })
    }

    /// The algorithm this key computes.
    pub fn algorithm(&self) -> MacAlgorithm {
        self.algorithm
    }

    /// Computes the MAC of `message` into `out` (at least [`mac_len`] bytes); returns its length.
    pub fn compute(&self, work: &mut HmacWork, message: &[u8], out: &mut [u8]) -> Result<usize> {
        let len = mac_len(self.algorithm);
        if out.len() < len {
            return Err(Error::Internal("MAC buffer too short".into()));
        }
        let work_ptr = work.ctx.as_mut_ptr().cast::<sys::HMAC_CTX>();
        let mut written: std::os::raw::c_uint = 0;
        // SAFETY: both contexts are initialised HMAC_CTXs in locked slots; `message` and `out`
        // are valid for their lengths and `out` holds at least the digest length.
        let ok = unsafe {
            sys::HMAC_CTX_copy_ex(work_ptr, self.ctx.as_ptr().cast())
                & sys::HMAC_Update(work_ptr, message.as_ptr(), message.len())
                & sys::HMAC_Final(work_ptr, out.as_mut_ptr(), &mut written)
        };
        if ok != 1 || written as usize != len {
            return Err(Error::Internal("HMAC computation failed in aws-lc".into()));
        }
        Ok(len)
    }

    /// Whether `mac` is the MAC of `message`, compared in constant time.
    pub fn verify(&self, work: &mut HmacWork, message: &[u8], mac: &[u8]) -> Result<bool> {
        let mut expected = [0u8; MAX_MAC_LEN];
        let len = self.compute(work, message, &mut expected)?;
        let equal = mac.len() == len && constant_time_eq(&expected[..len], mac);
        zeroize::Zeroize::zeroize(&mut expected);
        Ok(equal)
    }
}

/// Constant-time equality of two equally long byte strings (aws-lc's `CRYPTO_memcmp`).
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    // SAFETY: both slices are valid for `a.len()` bytes.
    unsafe { sys::CRYPTO_memcmp(a.as_ptr().cast(), b.as_ptr().cast(), a.len()) == 0 }
}

impl Drop for HmacKey {
    fn drop(&mut self) {
        // SAFETY: initialised in `new`; the slot's drop zeroes what cleanup leaves.
        unsafe { sys::HMAC_CTX_cleanup(self.ctx.as_mut_ptr().cast()) };
    }
}

impl std::fmt::Debug for HmacKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "HmacKey {{ algorithm: {} }}", self.algorithm)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 4231 test case 2 ("Jefe").
    #[test]
    fn rfc_4231_case_2() {
        let key = HmacKey::new(MacAlgorithm::HmacSha256, b"Jefe", LockPolicy::Require).unwrap();
        let mut work = HmacWork::new(LockPolicy::Require).unwrap();
        let mut out = [0u8; MAX_MAC_LEN];
        let n = key
            .compute(&mut work, b"what do ya want for nothing?", &mut out)
            .unwrap();
        let hex: String = out[..n].iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            hex,
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert!(key
            .verify(&mut work, b"what do ya want for nothing?", &out[..n])
            .unwrap());
        out[0] ^= 1;
        assert!(!key
            .verify(&mut work, b"what do ya want for nothing?", &out[..n])
            .unwrap());
        assert!(!key
            .verify(&mut work, b"what do ya want for nothing?", &out[..n - 1])
            .unwrap());
    }

    #[test]
    fn debug_shows_algorithm_only() {
        let key = HmacKey::new(MacAlgorithm::HmacSha384, &[0x42; 48], LockPolicy::Require).unwrap();
        assert_eq!(format!("{key:?}"), "HmacKey { algorithm: HMAC_SHA_384 }");
    }
}
