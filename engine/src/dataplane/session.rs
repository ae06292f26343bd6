//! Derived keys and their per-thread caches.
//!
//! # Key wear-out bound
//!
//! A key version's material never encrypts directly. Each *session* draws a random 256-bit salt
//! and derives an AES-256-GCM key with HKDF-SHA256 (`info` = label ‖ key id ‖ version), then
//! encrypts at most [`MAX_MESSAGES_PER_DERIVED_KEY`] messages with it, using a counter as the
//! nonce, before it draws a new salt. So:
//!
//! - nonces never repeat under one derived key (a counter, not randomness), and one derived key
//!   sees at most 2^32 invocations, the limit SP 800-38D §8.3 sets for an AES key;
//! - two sessions share a derived key only if their salts collide: after 2^64 sessions (2^96
//!   messages) that chance is below 2^-128, so a key version can encrypt without any practical
//!   limit and without forced rotation.
//!
//! A session belongs to one thread at a time ([`SlotCache`]), so its counter is never shared or
//! contended; a session is abandoned, not reused, if two threads race for one slot. A session
//! belongs to one process too: a copy of the process (after `fork`) drops the sessions it
//! inherited and draws new salts ([`crate::fork`]).
//!
//! [`SlotCache`]: super::slot_cache::SlotCache

use uuid::Uuid;

use super::external_key::ExternalKey;
use crate::ciphertext::SALT_LEN;
use crate::crypto::aes_gcm::{AesGcmKey, NONCE_LEN};
use crate::crypto::random;
use crate::error::Result;
use crate::locked_memory::{LockPolicy, LockedBytes};

/// Most messages one derived key encrypts (2^32, SP 800-38D's invocation limit).
pub const MAX_MESSAGES_PER_DERIVED_KEY: u64 = 1 << 32;

const DERIVATION_LABEL: &[u8] = b"keyplane v1 AES-256-GCM data key";
const DECRYPT_KEYS_PER_SLOT: usize = 8;

/// HKDF `info` for a key version: label ‖ key id ‖ version.
fn derivation_info(key_id: &Uuid, version: u32) -> [u8; DERIVATION_LABEL.len() + 20] {
    let mut info = [0u8; DERIVATION_LABEL.len() + 20];
    info[..DERIVATION_LABEL.len()].copy_from_slice(DERIVATION_LABEL);
    info[DERIVATION_LABEL.len()..DERIVATION_LABEL.len() + 16].copy_from_slice(key_id.as_bytes());
    info[DERIVATION_LABEL.len() + 16..].copy_from_slice(&version.to_be_bytes());
    info
}

/// Derives the key for `salt` under a key version's material.
pub(crate) fn derive_key(
    material: &LockedBytes,
    key_id: &Uuid,
    version: u32,
    salt: &[u8; SALT_LEN],
    policy: LockPolicy,
    reuse: Option<AesGcmKey>,
) -> Result<AesGcmKey> {
    let info = derivation_info(key_id, version);
    match reuse {
        Some(key) => key.rederive(material, salt, &info),
        None => AesGcmKey::derive(material, salt, &info, policy),
    }
}

const EXTERNAL_DERIVATION_LABEL: &[u8] = b"keyplane v1 AES-256-GCM custom key store data key";

/// Derives the key for `salt` of a version held in a custom key store: the store computes a salt
/// key (a PRF of the salt under the backing key, inside the HSM), and HKDF-SHA256 of it, with
/// `info` = label ‖ key id ‖ version ‖ store id ‖ backing key id, is the data-plane key. So a
/// ciphertext opens only under the same backing key of the same store, for the same key version.
pub(crate) fn derive_external_key(
    external: &ExternalKey,
    key_id: &Uuid,
    version: u32,
    salt: &[u8; SALT_LEN],
    policy: LockPolicy,
    reuse: Option<AesGcmKey>,
) -> Result<AesGcmKey> {
    let salt_key = external
        .live(key_id)?
        .salt_key(&external.backing_key, salt)?;
    let mut info = Vec::with_capacity(
        EXTERNAL_DERIVATION_LABEL.len() + 24 + external.store_id.len() + external.backing_key.len(),
    );
    info.extend_from_slice(EXTERNAL_DERIVATION_LABEL);
    info.extend_from_slice(key_id.as_bytes());
    info.extend_from_slice(&version.to_be_bytes());
    for part in [
        external.store_id.as_bytes(),
        external.backing_key.as_bytes(),
    ] {
        // Length-prefixed, so that no two (store, backing key) pairs give the same info.
        info.extend_from_slice(&u16::try_from(part.len()).unwrap_or(u16::MAX).to_be_bytes());
        info.extend_from_slice(part);
    }
    match reuse {
        Some(key) => key.rederive(&salt_key, salt, &info),
        None => AesGcmKey::derive(&salt_key, salt, &info, policy),
    }
}

/// A derived key being used for encryption, with its nonce counter.
pub(crate) struct EncryptSession {
    pub(crate) salt: [u8; SALT_LEN],
    pub(crate) key: AesGcmKey,
    used: u64,
    limit: u64,
    /// The [`crate::fork::generation`] the session was made in. A copy of the process (a child
    /// of `fork`, whatever its PID) inherits the cached sessions; it must not continue their
    /// nonce sequences, so a session from another generation is dropped, never used.
    generation: u64,
}

impl EncryptSession {
    /// A fresh session of `generation`: a new random salt and its derived key.
    #[cfg(test)]
    pub(crate) fn new(
        material: &LockedBytes,
        key_id: &Uuid,
        version: u32,
        limit: u64,
        policy: LockPolicy,
        generation: u64,
    ) -> Result<Self> {
        let mut salt = [0u8; SALT_LEN];
        random::fill(&mut salt)?;
        let key = derive_key(material, key_id, version, &salt, policy, None)?;
        Ok(EncryptSession {
            salt,
            key,
            used: 0,
            limit: limit.clamp(1, MAX_MESSAGES_PER_DERIVED_KEY),
            generation,
        })
    }

    /// A fresh session of `generation` for a key version: a new random salt and the key `derive`
    /// makes of it (the version's derivation: from its own material, or its custom key store's
    /// backing key).
    pub(crate) fn for_version(
        derive: impl FnOnce(&[u8; SALT_LEN]) -> Result<AesGcmKey>,
        limit: u64,
        generation: u64,
    ) -> Result<Self> {
        let mut salt = [0u8; SALT_LEN];
        random::fill(&mut salt)?;
        let key = derive(&salt)?;
        Ok(EncryptSession {
            salt,
            key,
            used: 0,
            limit: limit.clamp(1, MAX_MESSAGES_PER_DERIVED_KEY),
            generation,
        })
    }

    /// Whether the session was made in `generation` (false in a child after `fork`).
    pub(crate) fn is_of(&self, generation: u64) -> bool {
        self.generation == generation
    }

    /// The next nonce, or `None` once the derived key has encrypted its limit.
    pub(crate) fn next_nonce(&mut self) -> Option<[u8; NONCE_LEN]> {
        if self.used >= self.limit {
            return None;
        }
        // Four zero bytes, then the count big-endian, written as the 8 + 4 bytes its readers
        // load: a load spanning two narrower stores just made waits for both to reach the cache.
        let mut nonce = [0u8; NONCE_LEN];
        nonce[..8].copy_from_slice(&(self.used >> 32).to_be_bytes());
        nonce[8..].copy_from_slice(&(self.used as u32).to_be_bytes());
        self.used += 1;
        Some(nonce)
    }

    /// Messages encrypted so far.
    #[cfg(test)]
    pub(crate) fn used(&self) -> u64 {
        self.used
    }
}

/// A few derived keys kept for decryption, found by salt.
#[derive(Default)]
pub(crate) struct DecryptKeys {
    entries: Vec<([u8; SALT_LEN], AesGcmKey)>,
    next_evict: usize,
    /// The entry found last, tried first: blobs of one process's run share a salt.
    last_found: usize,
}

impl DecryptKeys {
    /// Whether the key for `salt` is cached.
    #[cfg(test)]
    pub(crate) fn has(&mut self, salt: &[u8; SALT_LEN]) -> bool {
        self.find(salt).is_some()
    }

    /// The key of entry `i`, as [`DecryptKeys::find`] found it.
    #[inline]
    pub(crate) fn key(&self, i: usize) -> &AesGcmKey {
        &self.entries[i].1
    }

    /// The entry of the cached key for `salt` ([`DecryptKeys::key`]), trying the one found last
    /// first.
    #[inline]
    pub(crate) fn find(&mut self, salt: &[u8; SALT_LEN]) -> Option<usize> {
        if self
            .entries
            .get(self.last_found)
            .is_some_and(|(s, _)| s == salt)
        {
            return Some(self.last_found);
        }
        let i = self.entries.iter().position(|(s, _)| s == salt)?;
        self.last_found = i;
        Some(i)
    }

    /// The derived key for `salt`, deriving (and caching) it on a miss. `derive` gets the key it
    /// may derive into instead of allocating ([`AesGcmKey::rederive`]): the one evicted, once the
    /// cache is full.
    pub(crate) fn get_or_derive(
        &mut self,
        salt: &[u8; SALT_LEN],
        derive: impl FnOnce(Option<AesGcmKey>) -> Result<AesGcmKey>,
    ) -> Result<&AesGcmKey> {
        if let Some(i) = self.find(salt) {
            return Ok(&self.entries[i].1);
        }
        if self.entries.len() < DECRYPT_KEYS_PER_SLOT {
            let key = derive(None)?;
            self.entries.push((*salt, key));
            return Ok(&self.entries[self.entries.len() - 1].1);
        }
        let i = self.next_evict;
        self.next_evict = (i + 1) % DECRYPT_KEYS_PER_SLOT;
        // The evicted entry leaves the cache before its key is derived into; the last entry
        // takes its place, and the new one goes back to position `i` once derived, so every
        // other entry keeps its position in the eviction order. A failed derivation leaves
        // the cache one entry short.
        let (_, evicted) = self.entries.swap_remove(i);
        let key = derive(Some(evicted))?;
        self.entries.push((*salt, key));
        let last = self.entries.len() - 1;
        self.entries.swap(i, last);
        Ok(&self.entries[i].1)
    }
}

#[cfg(test)]
mod tests {
    use crossbeam_utils::atomic::AtomicCell;

    use super::*;

    #[test]
    fn slot_cells_are_lock_free() {
        assert!(AtomicCell::<Option<Box<EncryptSession>>>::is_lock_free());
        assert!(AtomicCell::<Option<Box<DecryptKeys>>>::is_lock_free());
    }

    #[test]
    fn session_stops_at_its_limit_and_counters_never_repeat() {
        let material = LockedBytes::random(32, LockPolicy::Require).unwrap();
        let id = Uuid::new_v4();
        let mut s = EncryptSession::new(&material, &id, 1, 3, LockPolicy::Require, 1).unwrap();
        let nonces: Vec<_> = std::iter::from_fn(|| s.next_nonce()).collect();
        assert_eq!(nonces.len(), 3);
        assert_eq!(s.used(), 3);
        assert_ne!(nonces[0], nonces[1]);
        assert_ne!(nonces[1], nonces[2]);
        // The message count, big-endian, in the nonce's last bytes.
        assert_eq!(nonces[0], [0; NONCE_LEN]);
        assert_eq!(nonces[2], [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]);
        let mut late =
            EncryptSession::new(&material, &id, 1, u64::MAX, LockPolicy::Require, 1).unwrap();
        late.used = 0xFFFF_FFFE;
        assert_eq!(
            late.next_nonce(),
            Some([0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0xFE])
        );
        assert_eq!(late.next_nonce().map(|n| n[8..] == [0xFF; 4]), Some(true));
        assert_eq!(
            late.next_nonce(),
            None,
            "2^32 messages, then a new derived key"
        );
        let limit = EncryptSession::new(&material, &id, 1, u64::MAX, LockPolicy::Require, 1)
            .unwrap()
            .limit;
        assert_eq!(
            limit, MAX_MESSAGES_PER_DERIVED_KEY,
            "the limit is capped at 2^32"
        );
    }

    #[test]
    fn derivation_binds_key_id_and_version() {
        let material = LockedBytes::random(32, LockPolicy::Require).unwrap();
        let id = Uuid::new_v4();
        let salt = [9u8; SALT_LEN];
        let seal = |key: &AesGcmKey| {
            let mut ct = [0u8; 4];
            let mut tag = [0u8; 16];
            key.seal(&[0; NONCE_LEN], b"", b"abcd", &mut ct, &mut tag)
                .unwrap();
            tag
        };
        let base = seal(&derive_key(&material, &id, 1, &salt, LockPolicy::Require, None).unwrap());
        let other_version =
            seal(&derive_key(&material, &id, 2, &salt, LockPolicy::Require, None).unwrap());
        let other_id = seal(
            &derive_key(
                &material,
                &Uuid::new_v4(),
                1,
                &salt,
                LockPolicy::Require,
                None,
            )
            .unwrap(),
        );
        let other_salt = seal(
            &derive_key(&material, &id, 1, &[8; SALT_LEN], LockPolicy::Require, None).unwrap(),
        );
        assert_ne!(base, other_version);
        assert_ne!(base, other_id);
        assert_ne!(base, other_salt);
    }

    /// Cycling through more salts than the cache holds: every answer is the key of the salt
    /// asked for, whether cached, derived fresh or derived into an evicted key; a failed
    /// derivation into an evicted key leaves the cache one short and still right.
    #[test]
    fn the_decrypt_cache_answers_each_salt_with_its_own_key_through_evictions() {
        let material = LockedBytes::random(32, LockPolicy::Require).unwrap();
        let id = Uuid::new_v4();
        let tag_of = |key: &AesGcmKey| {
            let mut ct = [0u8; 4];
            let mut tag = [0u8; 16];
            key.seal(&[0; NONCE_LEN], b"", b"abcd", &mut ct, &mut tag)
                .unwrap();
            tag
        };
        let salt = |i: u8| [i; SALT_LEN];
        let expect: Vec<_> = (0..20u8)
            .map(|i| {
                tag_of(&derive_key(&material, &id, 1, &salt(i), LockPolicy::Require, None).unwrap())
            })
            .collect();
        let mut cache = DecryptKeys::default();
        let mut reused = 0;
        for round in 0..3 {
            for i in (0..20u8).chain([19, 18, 3, 3]) {
                let key = cache
                    .get_or_derive(&salt(i), |reuse| {
                        reused += usize::from(reuse.is_some());
                        derive_key(&material, &id, 1, &salt(i), LockPolicy::Require, reuse)
                    })
                    .unwrap();
                assert_eq!(
                    tag_of(key),
                    expect[usize::from(i)],
                    "round {round} salt {i}"
                );
                assert!(cache.has(&salt(i)));
            }
        }
        assert!(reused > 40, "evicted keys are derived into: {reused}");
        assert_eq!(cache.entries.len(), DECRYPT_KEYS_PER_SLOT);
        let failed = cache.get_or_derive(&salt(200), |_reuse| {
            Err(crate::error::Error::Internal("the store went away".into()))
        });
        assert!(failed.is_err());
        assert_eq!(cache.entries.len(), DECRYPT_KEYS_PER_SLOT - 1);
        assert!(!cache.has(&salt(200)));
        for i in 0..20u8 {
            let key = cache
                .get_or_derive(&salt(i), |reuse| {
                    derive_key(&material, &id, 1, &salt(i), LockPolicy::Require, reuse)
                })
                .unwrap();
            assert_eq!(tag_of(key), expect[usize::from(i)]);
        }
    }
}
