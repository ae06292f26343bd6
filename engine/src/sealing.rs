//! The narrow API the crates around the engine (the durable stores, the server's credentials and
//! XKS proxy, the console) build their own sealing on, instead of reaching into the engine's
//! primitives (`crypto` is private to the engine):
//!
//! - [`SealingKey`]: AES-256-GCM whose nonces are always drawn inside (a caller can open with a
//!   nonce it was given, never seal with one); its expanded schedule in locked memory.
//! - [`MacKey`]: HMAC-SHA-256 in locked memory, made from locked bytes or derived with HKDF.
//! - [`fill_random`] and [`constant_time_eq`].
//!
//! Raw-nonce sealing and the other primitives are in `keyplane::less_safe`, for known-answer tests
//! only. Secret bytes reach a caller only through [`LockedBytes::expose`] and its
//! [`SecretAccess`](crate::SecretAccess) token.

use std::cell::RefCell;

use zeroize::Zeroizing;

use crate::crypto::aes_gcm::AesGcmKey;
use crate::crypto::hmac::{HmacKey, HmacWork};
use crate::error::{Error, Result};
use crate::key::MacAlgorithm;
use crate::locked_memory::{LockPolicy, LockedBytes};

pub use crate::crypto::aes_gcm::{NONCE_LEN, TAG_LEN};
pub use crate::crypto::hmac::constant_time_eq;

/// Bytes [`SealingKey::seal`] adds to a plaintext: the nonce before it, the tag after it.
pub const SEALED_OVERHEAD: usize = NONCE_LEN + TAG_LEN;
/// Bytes of an authentication seal ([`SealingKey::authenticate`]): a nonce and a tag.
pub const SEAL_LEN: usize = NONCE_LEN + TAG_LEN;

/// Fills `out` from the system's cryptographic random generator (aws-lc's).
pub fn fill_random(out: &mut [u8]) -> Result<()> {
    crate::crypto::random::fill(out)
}

/// The tag did not verify: wrong key, nonce, associated data, ciphertext or tag.
pub use crate::crypto::aes_gcm::OpenError;

/// An AES-GCM key that seals only under nonces it draws itself.
pub struct SealingKey {
    key: AesGcmKey,
}

impl SealingKey {
    /// Expands `key` (16, 24 or 32 bytes) into a context in locked memory.
    pub fn new(key: &[u8], policy: LockPolicy) -> Result<Self> {
        Ok(SealingKey {
            key: AesGcmKey::new(key, policy)?,
        })
    }

    /// An AES-256-GCM key derived with HKDF-SHA256 (RFC 5869) from `ikm`, `salt` and `info`; the
    /// derived bytes exist only in locked memory.
    pub fn derive(ikm: &LockedBytes, salt: &[u8], info: &[u8], policy: LockPolicy) -> Result<Self> {
        Ok(SealingKey {
            key: AesGcmKey::derive(ikm, salt, info, policy)?,
        })
    }

    /// Encrypts `plaintext` under a fresh random nonce into `out`, exactly
    /// `plaintext.len() + SEALED_OVERHEAD` bytes: `nonce ‖ ciphertext ‖ tag`.
    pub fn seal_into(&self, aad: &[u8], plaintext: &[u8], out: &mut [u8]) -> Result<()> {
        if out.len() != plaintext.len() + SEALED_OVERHEAD {
            return Err(Error::Internal("sealing buffer of the wrong length".into()));
        }
        let (nonce_out, rest) = out.split_at_mut(NONCE_LEN);
        let (body, tag_out) = rest.split_at_mut(plaintext.len());
        let nonce = fresh_nonce()?;
        let mut tag = [0u8; TAG_LEN];
        self.key.seal(&nonce, aad, plaintext, body, &mut tag)?;
        nonce_out.copy_from_slice(&nonce);
        tag_out.copy_from_slice(&tag);
        Ok(())
    }

    /// `nonce ‖ ciphertext ‖ tag` of `plaintext` under a fresh random nonce.
    pub fn seal(&self, aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>> {
        let mut out = vec![0u8; plaintext.len() + SEALED_OVERHEAD];
        self.seal_into(aad, plaintext, &mut out)?;
        Ok(out)
    }

    /// As [`seal`](Self::seal) with the parts apart, as protocols that carry them in separate
    /// fields want them: `ciphertext` as long as `plaintext`; returns the nonce it drew.
    pub fn seal_detached(
        &self,
        aad: &[u8],
        plaintext: &[u8],
        ciphertext: &mut [u8],
        tag: &mut [u8; TAG_LEN],
    ) -> Result<[u8; NONCE_LEN]> {
        let nonce = fresh_nonce()?;
        self.key.seal(&nonce, aad, plaintext, ciphertext, tag)?;
        Ok(nonce)
    }

    /// Opens what [`seal_into`](Self::seal_into) made into `out` (exactly as long as the
    /// plaintext); whether it was authentic. On failure `out` is zeroed.
    pub fn open_into(&self, aad: &[u8], sealed: &[u8], out: &mut [u8]) -> bool {
        if sealed.len() != out.len() + SEALED_OVERHEAD {
            return false;
        }
        let (nonce, rest) = sealed.split_at(NONCE_LEN);
        let (body, tag) = rest.split_at(out.len());
        let nonce: &[u8; NONCE_LEN] = nonce.try_into().expect("split at NONCE_LEN");
        self.key.open(nonce, aad, body, tag, out).is_ok()
    }

    /// Opens what [`seal`](Self::seal) made into locked memory: `Ok(None)` when it is not
    /// authentic (or too short), `Err` only when locked memory cannot be had.
    pub fn open_locked(
        &self,
        aad: &[u8],
        sealed: &[u8],
        policy: LockPolicy,
    ) -> Result<Option<LockedBytes>> {
        let Some(len) = sealed.len().checked_sub(SEALED_OVERHEAD) else {
            return Ok(None);
        };
        let mut out = LockedBytes::zeroed(len, policy)?;
        Ok(self.open_into(aad, sealed, out.bytes_mut()).then_some(out))
    }

    /// Opens a ciphertext whose nonce and tag came separately (opening under a nonce a caller
    /// supplies is safe; only sealing under one is not). On failure `plaintext` is zeroed.
    pub fn open_detached(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        ciphertext: &[u8],
        tag: &[u8],
        plaintext: &mut [u8],
    ) -> std::result::Result<(), OpenError> {
        self.key.open(nonce, aad, ciphertext, tag, plaintext)
    }

    /// A seal over `aad` alone (AES-GCM over no plaintext): `nonce ‖ tag`.
    pub fn authenticate(&self, aad: &[u8]) -> Result<[u8; SEAL_LEN]> {
        let mut out = [0u8; SEAL_LEN];
        self.seal_into(aad, &[], &mut out)?;
        Ok(out)
    }

    /// Whether `seal` is an authentication seal of `aad` under this key.
    pub fn verify(&self, aad: &[u8], seal: &[u8]) -> bool {
        seal.len() == SEAL_LEN && self.open_into(aad, seal, &mut [])
    }
}

impl std::fmt::Debug for SealingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SealingKey(..)")
    }
}

fn fresh_nonce() -> Result<[u8; NONCE_LEN]> {
    let mut nonce = [0u8; NONCE_LEN];
    fill_random(&mut nonce)?;
    Ok(nonce)
}

/// Bytes of an HMAC-SHA-256 output.
pub const MAC_LEN: usize = 32;

/// An HMAC-SHA-256 key in locked memory. Each thread computes in a working context of its own
/// (also in locked memory), so many threads use one key without a lock.
pub struct MacKey {
    key: HmacKey,
    policy: LockPolicy,
}

thread_local! {
    /// This thread's HMAC working context and the lock policy it was made under.
    static WORK: RefCell<Option<(LockPolicy, HmacWork)>> = const { RefCell::new(None) };
}

impl MacKey {
    /// Keys HMAC-SHA-256 with `key`.
    pub fn new(key: &LockedBytes, policy: LockPolicy) -> Result<Self> {
        Ok(MacKey {
            key: HmacKey::new(MacAlgorithm::HmacSha256, key.bytes(), policy)?,
            policy,
        })
    }

    /// The key of one HKDF-SHA256 (RFC 5869) output block from `ikm`, `salt` and `info`, every
    /// intermediate in locked memory.
    pub fn derive(ikm: &LockedBytes, salt: &[u8], info: &[u8], policy: LockPolicy) -> Result<Self> {
        // RFC 5869: no salt is a salt of HashLen zero bytes (which HMAC pads to the same key).
        let salt = if salt.is_empty() {
            &[0u8; MAC_LEN][..]
        } else {
            salt
        };
        let salt_key = MacKey::new(&LockedBytes::copy_from(salt, policy)?, policy)?;
        let prk = salt_key.mac_locked(ikm.bytes())?;
        let mut block = Vec::with_capacity(info.len() + 1);
        block.extend_from_slice(info);
        block.push(1);
        let okm = MacKey::new(&prk, policy)?.mac_locked(&block)?;
        MacKey::new(&okm, policy)
    }

    /// The MAC of `message`.
    pub fn mac(&self, message: &[u8]) -> Result<Zeroizing<[u8; MAC_LEN]>> {
        let mut out = Zeroizing::new([0u8; MAC_LEN]);
        self.compute(message, out.as_mut_slice())?;
        Ok(out)
    }

    /// The MAC of `message` in locked memory: a key of a derivation chain (SigV4's signing key).
    pub fn mac_locked(&self, message: &[u8]) -> Result<LockedBytes> {
        let mut out = LockedBytes::zeroed(MAC_LEN, self.policy)?;
        self.compute(message, out.bytes_mut())?;
        Ok(out)
    }

    /// Whether `mac` is the MAC of `message`, compared in constant time.
    pub fn verify(&self, message: &[u8], mac: &[u8]) -> Result<bool> {
        let expected = self.mac(message)?;
        Ok(constant_time_eq(expected.as_slice(), mac))
    }

    fn compute(&self, message: &[u8], out: &mut [u8]) -> Result<()> {
        WORK.with(|cell| {
            let mut work = cell.borrow_mut();
            if !matches!(&*work, Some((policy, _)) if *policy == self.policy) {
                *work = Some((self.policy, HmacWork::new(self.policy)?));
            }
            let (_, work) = work.as_mut().expect("set above");
            self.key.compute(work, message, out)?;
            Ok(())
        })
    }
}

impl std::fmt::Debug for MacKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MacKey(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> SealingKey {
        SealingKey::new(&[7u8; 32], LockPolicy::Warn).unwrap()
    }

    #[test]
    fn sealed_bytes_open_and_every_bit_is_authenticated() {
        let k = key();
        let sealed = k.seal(b"aad", b"secret bytes").unwrap();
        assert_eq!(sealed.len(), 12 + SEALED_OVERHEAD);
        let opened = k
            .open_locked(b"aad", &sealed, LockPolicy::Warn)
            .unwrap()
            .expect("authentic");
        assert_eq!(opened.bytes(), b"secret bytes");
        for bit in 0..sealed.len() * 8 {
            let mut bad = sealed.clone();
            bad[bit / 8] ^= 1 << (bit % 8);
            assert!(k
                .open_locked(b"aad", &bad, LockPolicy::Warn)
                .unwrap()
                .is_none());
        }
        assert!(k
            .open_locked(b"aaD", &sealed, LockPolicy::Warn)
            .unwrap()
            .is_none());
        assert!(k
            .open_locked(b"aad", &sealed[..5], LockPolicy::Warn)
            .unwrap()
            .is_none());
    }

    #[test]
    fn two_seals_of_one_plaintext_draw_two_nonces() {
        let k = key();
        let a = k.seal(b"", b"same").unwrap();
        let b = k.seal(b"", b"same").unwrap();
        assert_ne!(a[..NONCE_LEN], b[..NONCE_LEN]);
        let s1 = k.authenticate(b"parts").unwrap();
        let s2 = k.authenticate(b"parts").unwrap();
        assert_ne!(s1, s2);
        assert!(k.verify(b"parts", &s1) && k.verify(b"parts", &s2));
        assert!(!k.verify(b"part", &s1));
        assert!(!k.verify(b"parts", &s1[..SEAL_LEN - 1]));
    }

    #[test]
    fn detached_parts_open_with_the_nonce_returned() {
        let k = key();
        let mut ct = [0u8; 5];
        let mut tag = [0u8; TAG_LEN];
        let nonce = k.seal_detached(b"a", b"hello", &mut ct, &mut tag).unwrap();
        let mut pt = [0u8; 5];
        k.open_detached(&nonce, b"a", &ct, &tag, &mut pt).unwrap();
        assert_eq!(&pt, b"hello");
        let mut wrong = nonce;
        wrong[0] ^= 1;
        assert!(k.open_detached(&wrong, b"a", &ct, &tag, &mut pt).is_err());
        assert_eq!(pt, [0u8; 5], "zeroed on failure");
    }

    /// RFC 4231 test case 2 (HMAC-SHA-256, key "Jefe"), and RFC 5869 test case 1 (HKDF-SHA256):
    /// the OKM's first 32 bytes key the derived MacKey, so its MAC equals HMAC(OKM, m) computed
    /// from the RFC's OKM.
    #[test]
    fn hmac_and_hkdf_match_the_rfcs() {
        let policy = LockPolicy::Warn;
        let jefe = MacKey::new(&LockedBytes::copy_from(b"Jefe", policy).unwrap(), policy).unwrap();
        assert_eq!(
            hex(jefe
                .mac(b"what do ya want for nothing?")
                .unwrap()
                .as_slice()),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        let ikm = LockedBytes::copy_from(&[0x0b; 22], policy).unwrap();
        let salt: Vec<u8> = (0x00..=0x0c).collect();
        let info: Vec<u8> = (0xf0..=0xf9).collect();
        let derived = MacKey::derive(&ikm, &salt, &info, policy).unwrap();
        let okm = unhex("3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf");
        let expected = MacKey::new(&LockedBytes::copy_from(&okm, policy).unwrap(), policy).unwrap();
        assert_eq!(
            derived.mac(b"m").unwrap().as_slice(),
            expected.mac(b"m").unwrap().as_slice()
        );
        assert!(derived
            .verify(b"m", expected.mac(b"m").unwrap().as_slice())
            .unwrap());
        assert!(!derived
            .verify(b"n", expected.mac(b"m").unwrap().as_slice())
            .unwrap());
    }

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    fn unhex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }
}
