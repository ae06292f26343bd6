//! Data-key caching with the Encryption SDK's limits: a cached data key encrypts messages until
//! it is `max_age` old, has encrypted `max_messages` messages or `max_bytes` bytes, whichever comes
//! first; decryption reuses an unwrapped data key for the same encrypted data keys and context
//! until `max_age`. Entries (the data key, and a signed suite's signing key) live in locked memory
//! (the ECDSA key on aws-lc's heap, as every signing key of the engine) and are zeroed when they
//! expire or are evicted.
//!
//! As in the SDK: a message whose length is not known up front (a stream without a length hint)
//! bypasses the cache on encrypt; the suite without key derivation (0x0078) is never cached,
//! because its frames would reuse (key, IV) pairs across messages; entries are partitioned by the
//! keyrings (by identity) and the suite and encryption context.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::crypto::ecdsa_p384::P384KeyPair;

use super::header::{serialize_context, EncryptedDataKey};
use super::keyring::Keyring;
use super::suite::AlgorithmSuite;
use crate::context::EncryptionContext;
use crate::error::{Error, Result};
use crate::locked_memory::LockedBytes;

/// The limits of a [`DataKeyCache`] (the SDK's caching CMM settings).
#[derive(Debug, Clone, Copy)]
pub struct CacheLimits {
    /// Most entries held; the oldest goes first when full.
    pub capacity: usize,
    /// Age after which an entry is not used again.
    pub max_age: Duration,
    /// Messages one cached data key encrypts (at most 2^32, the SDK's bound).
    pub max_messages: u64,
    /// Plaintext bytes one cached data key encrypts (at most 2^63 - 1).
    pub max_bytes: u64,
}

impl CacheLimits {
    /// Limits with `max_age` and the SDK's defaults for the rest (2^32 messages, 2^63 - 1
    /// bytes), 100 entries.
    pub fn with_max_age(max_age: Duration) -> CacheLimits {
        CacheLimits {
            capacity: 100,
            max_age,
            max_messages: 1 << 32,
            max_bytes: i64::MAX as u64,
        }
    }

    fn check(&self) -> Result<()> {
        if self.capacity == 0 || self.max_age.is_zero() {
            return Err(Error::Validation(
                "a data-key cache needs a capacity and a max age above zero".into(),
            ));
        }
        if self.max_messages == 0 || self.max_messages > 1 << 32 {
            return Err(Error::Validation(
                "max messages per cached data key is 1 to 2^32".into(),
            ));
        }
        if self.max_bytes == 0 || self.max_bytes > i64::MAX as u64 {
            return Err(Error::Validation(
                "max bytes per cached data key is 1 to 2^63 - 1".into(),
            ));
        }
        Ok(())
    }
}

/// Encryption materials as cached: the data key, its encrypted copies, and for signed suites the
/// signing key and its context value.
pub(crate) struct Materials {
    pub(crate) data_key: LockedBytes,
    pub(crate) edks: Vec<EncryptedDataKey>,
    pub(crate) signing: Option<(P384KeyPair, String)>,
}

struct EncryptEntry {
    materials: Arc<Materials>,
    created: Instant,
    messages: u64,
    bytes: u64,
}

struct DecryptEntry {
    data_key: Arc<LockedBytes>,
    created: Instant,
}

#[derive(Default)]
struct Entries {
    encrypt: HashMap<Vec<u8>, EncryptEntry>,
    decrypt: HashMap<Vec<u8>, DecryptEntry>,
}

/// Counters of a cache: how often it saved a keyring call.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Encryptions that reused a cached data key.
    pub encrypt_hits: u64,
    /// Encryptions that called the keyrings (and cached the result when allowed).
    pub encrypt_misses: u64,
    /// Decryptions that reused an unwrapped data key.
    pub decrypt_hits: u64,
    /// Decryptions that called the keyrings.
    pub decrypt_misses: u64,
}

/// A data-key cache shared by the messages of one or more [`super::EnvelopeConfig`]s.
pub struct DataKeyCache {
    limits: CacheLimits,
    entries: Mutex<Entries>,
    stats: Mutex<CacheStats>,
}

impl std::fmt::Debug for DataKeyCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DataKeyCache {{ limits: {:?} }}", self.limits)
    }
}

fn partition(keyrings: &[Arc<dyn Keyring>], suite: AlgorithmSuite, context: &[u8]) -> Vec<u8> {
    let mut key = Vec::with_capacity(16 + keyrings.len() * 8 + context.len());
    key.extend_from_slice(&suite.id().to_be_bytes());
    key.extend_from_slice(&(keyrings.len() as u64).to_be_bytes());
    for k in keyrings {
        key.extend_from_slice(&(Arc::as_ptr(k) as *const () as usize as u64).to_be_bytes());
    }
    key.extend_from_slice(&(context.len() as u64).to_be_bytes());
    key.extend_from_slice(context);
    key
}

impl DataKeyCache {
    /// A cache with `limits`.
    pub fn new(limits: CacheLimits) -> Result<DataKeyCache> {
        limits.check()?;
        Ok(DataKeyCache {
            limits,
            entries: Mutex::new(Entries::default()),
            stats: Mutex::new(CacheStats::default()),
        })
    }

    /// The cache's counters.
    pub fn stats(&self) -> CacheStats {
        *self.stats.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn count(&self, f: impl FnOnce(&mut CacheStats)) {
        f(&mut self.stats.lock().unwrap_or_else(|e| e.into_inner()));
    }

    /// Whether messages in `suite` of `length` bytes may use the cache.
    fn cacheable(suite: AlgorithmSuite, length: Option<u64>) -> bool {
        suite != AlgorithmSuite::Aes256GcmNoKdf && length.is_some()
    }

    /// Encryption materials for a message of `length` bytes: a cached entry within its limits,
    /// or new ones from `make` (cached when the message may be).
    pub(crate) fn encryption_materials(
        &self,
        keyrings: &[Arc<dyn Keyring>],
        suite: AlgorithmSuite,
        context: &EncryptionContext,
        length: Option<u64>,
        make: impl FnOnce() -> Result<Materials>,
    ) -> Result<Arc<Materials>> {
        if !Self::cacheable(suite, length) {
            self.count(|s| s.encrypt_misses += 1);
            return make().map(Arc::new);
        }
        let length = length.unwrap_or(0);
        let key = partition(keyrings, suite, &serialize_context(context)?);
        let limits = self.limits;
        {
            let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(entry) = entries.encrypt.get_mut(&key) {
                let fresh = entry.created.elapsed() < limits.max_age;
                let room = entry.messages < limits.max_messages
                    && entry.bytes.saturating_add(length) <= limits.max_bytes;
                if fresh && room {
                    entry.messages += 1;
                    entry.bytes += length;
                    let materials = entry.materials.clone();
                    if entry.messages >= limits.max_messages || entry.bytes >= limits.max_bytes {
                        entries.encrypt.remove(&key);
                    }
                    drop(entries);
                    self.count(|s| s.encrypt_hits += 1);
                    return Ok(materials);
                }
                entries.encrypt.remove(&key);
            }
        }
        self.count(|s| s.encrypt_misses += 1);
        let materials = Arc::new(make()?);
        if length <= limits.max_bytes && limits.max_messages > 1 {
            let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
            Self::make_room(&mut entries, limits);
            entries.encrypt.insert(
                key,
                EncryptEntry {
                    materials: materials.clone(),
                    created: Instant::now(),
                    messages: 1,
                    bytes: length,
                },
            );
        }
        Ok(materials)
    }

    /// The data key for a message with `edks` and `context`: cached, or from `unwrap`.
    pub(crate) fn decryption_key(
        &self,
        keyrings: &[Arc<dyn Keyring>],
        suite: AlgorithmSuite,
        context: &EncryptionContext,
        edks: &[EncryptedDataKey],
        unwrap: impl FnOnce() -> Result<LockedBytes>,
    ) -> Result<Arc<LockedBytes>> {
        if suite == AlgorithmSuite::Aes256GcmNoKdf {
            self.count(|s| s.decrypt_misses += 1);
            return unwrap().map(Arc::new);
        }
        let mut material = serialize_context(context)?;
        for edk in edks {
            for field in [
                edk.provider_id.as_bytes(),
                &edk.provider_info,
                &edk.ciphertext,
            ] {
                material.extend_from_slice(&(field.len() as u64).to_be_bytes());
                material.extend_from_slice(field);
            }
        }
        let key = partition(keyrings, suite, &material);
        {
            let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(entry) = entries.decrypt.get(&key) {
                if entry.created.elapsed() < self.limits.max_age {
                    let data_key = entry.data_key.clone();
                    drop(entries);
                    self.count(|s| s.decrypt_hits += 1);
                    return Ok(data_key);
                }
                entries.decrypt.remove(&key);
            }
        }
        self.count(|s| s.decrypt_misses += 1);
        let data_key = Arc::new(unwrap()?);
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        Self::make_room(&mut entries, self.limits);
        entries.decrypt.insert(
            key,
            DecryptEntry {
                data_key: data_key.clone(),
                created: Instant::now(),
            },
        );
        Ok(data_key)
    }

    fn make_room(entries: &mut Entries, limits: CacheLimits) {
        entries
            .encrypt
            .retain(|_, e| e.created.elapsed() < limits.max_age);
        entries
            .decrypt
            .retain(|_, e| e.created.elapsed() < limits.max_age);
        while entries.encrypt.len() + entries.decrypt.len() >= limits.capacity {
            let oldest_e = entries
                .encrypt
                .iter()
                .min_by_key(|(_, e)| e.created)
                .map(|(k, e)| (k.clone(), e.created));
            let oldest_d = entries
                .decrypt
                .iter()
                .min_by_key(|(_, e)| e.created)
                .map(|(k, e)| (k.clone(), e.created));
            match (oldest_e, oldest_d) {
                (Some((k, a)), Some((_, b))) if a <= b => {
                    entries.encrypt.remove(&k);
                }
                (_, Some((k, _))) => {
                    entries.decrypt.remove(&k);
                }
                (Some((k, _)), None) => {
                    entries.encrypt.remove(&k);
                }
                (None, None) => break,
            }
        }
    }

    /// Drops every entry (their keys are zeroed as the last users let go of them).
    pub fn clear(&self) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries.encrypt.clear();
        entries.decrypt.clear();
    }
}
