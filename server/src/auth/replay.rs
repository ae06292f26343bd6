//! Replay refusal, a keyplane addition to SigV4: a signature accepted once is refused again until
//! its request's date leaves the clock-skew window, after which the date check refuses it anyway.
//!
//! Only for requests whose signature covers a per-request nonce, the [`NONCE_HEADER`]
//! `amz-sdk-invocation-id` (a fresh UUID per SDK operation call). Without one, a repeat cannot be
//! told from a legitimate identical call: botocore (and so boto3 and the aws CLI) adds
//! `amz-sdk-invocation-id` after signing, so two identical calls within one second (the
//! resolution of `X-Amz-Date`), say two `GenerateDataKey` calls for one key, carry byte-identical
//! signatures; refusing the second would break those clients. Such requests are, as with the
//! service, replayable within the 5-minute window by whoever captured one: TLS (the default) is
//! what keeps them from being captured.
//!
//! Memory is bounded: entries expire with the window, and past [`ReplayGuard::capacity`] the
//! oldest are evicted first (a replay of an evicted signature is then no longer caught, which
//! needs more than `capacity` nonce-signed requests inside one window).

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

/// The header whose presence among the signed headers makes a request's signature unique.
pub const NONCE_HEADER: &str = "amz-sdk-invocation-id";

/// Shards, so concurrent verifications rarely wait on one another.
const SHARDS: usize = 16;

/// The signatures accepted within the window.
#[derive(Debug)]
pub struct ReplayGuard {
    shards: Vec<Mutex<Shard>>,
    per_shard: usize,
}

#[derive(Debug, Default)]
struct Shard {
    /// First 16 bytes of a signature (a collision needs 2^64 work) → when it expires.
    seen: HashMap<[u8; 16], i64>,
    /// Insertion order, for expiry and oldest-first eviction.
    order: VecDeque<([u8; 16], i64)>,
}

impl ReplayGuard {
    /// A guard remembering at most about `capacity` signatures (at least one per shard).
    pub fn new(capacity: usize) -> ReplayGuard {
        let per_shard = capacity.div_ceil(SHARDS).max(1);
        ReplayGuard {
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
            per_shard,
        }
    }

    /// How many signatures it can remember.
    pub fn capacity(&self) -> usize {
        self.per_shard * SHARDS
    }

    /// Records `signature`, accepted at `now` and refusable until `expires` (epoch seconds);
    /// false when it was already recorded and has not expired.
    pub fn first_use(&self, signature: &[u8; 32], now: i64, expires: i64) -> bool {
        let mut key = [0u8; 16];
        key.copy_from_slice(&signature[..16]);
        let mut shard = self.shards[usize::from(signature[16]) % SHARDS]
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        shard.expire(now);
        if let Some(&until) = shard.seen.get(&key) {
            if until >= now {
                return false;
            }
        }
        while shard.seen.len() >= self.per_shard {
            let Some((old, _)) = shard.order.pop_front() else {
                break;
            };
            shard.seen.remove(&old);
        }
        shard.seen.insert(key, expires);
        shard.order.push_back((key, expires));
        true
    }

    /// Signatures remembered now.
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().unwrap_or_else(|p| p.into_inner()).seen.len())
            .sum()
    }

    /// Whether none is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Shard {
    /// Drops expired entries from the front (entries arrive roughly in date order; a late one
    /// behind an earlier-expiring neighbour waits for it, or for eviction).
    fn expire(&mut self, now: i64) {
        while let Some(&(key, until)) = self.order.front() {
            if until >= now {
                break;
            }
            self.order.pop_front();
            if self.seen.get(&key) == Some(&until) {
                self.seen.remove(&key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_a_repeat_until_it_expires() {
        let guard = ReplayGuard::new(64);
        let sig = [7u8; 32];
        assert!(guard.first_use(&sig, 100, 400));
        assert!(!guard.first_use(&sig, 399, 700));
        assert!(guard.first_use(&sig, 401, 701));
    }

    #[test]
    fn memory_stays_bounded() {
        let guard = ReplayGuard::new(32);
        for i in 0..10_000u32 {
            let mut sig = [0u8; 32];
            sig[..4].copy_from_slice(&i.to_be_bytes());
            sig[16] = (i % 251) as u8;
            assert!(guard.first_use(&sig, 0, 1_000));
        }
        assert!(guard.len() <= guard.capacity());
    }
}
