//! Propagation latency: node A (an engine on its own store handle) disables and enables one key
//! over and over; node B (another engine on another handle, following the store) is watched
//! through its data plane, which never asks the store: B's Encrypt under the key starts failing
//! (DisabledException) or working again only once B has applied the change. The latency of one
//! change is from A's call returning (the change is committed and acknowledged) to B's first call
//! that shows it; B is probed every [`PROBE`]. A change starts only once the previous one was seen.
//!
//! Two modes: `notify` (B is woken by the store's LISTEN/NOTIFY, and polls every second as the
//! fallback) and `poll` (B's store handle is wrapped so that it cannot subscribe: B only polls,
//! every `--fleet-poll`; each change is made after a random pause of up to that interval, so that
//! changes fall at random points of B's poll cycle).

use std::sync::Arc;
use std::time::{Duration, Instant};

use keyplane::store::{KeyStore, StoreChange, StoreContents, StoreDelta};
use keyplane::LockedBytes;
use keyplane::{CreateKeyRequest, EncryptRequest, Engine, ErrorKind, LockPolicy};

use super::latency::{latencies, Latencies};
use super::nodes::{failed, node, Opener};
use crate::BenchError;

/// How often node B is probed.
pub const PROBE: Duration = Duration::from_micros(100);
/// The fallback poll interval of a node woken by NOTIFY.
pub const NOTIFY_FALLBACK: Duration = Duration::from_secs(1);
/// Longest wait for one change before the run fails.
const GIVE_UP: Duration = Duration::from_secs(60);

/// How node B learns of changes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    Notify,
    Poll,
}

/// One propagation measurement.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PropagationRow {
    pub mode: Mode,
    /// Keys in the store.
    pub store_keys: usize,
    pub changes: usize,
    /// B's poll interval (for `notify`: the fallback's).
    pub poll_ms: f64,
    /// From A's acknowledgement to B's data plane showing the change.
    pub latency_ms: Latencies,
    /// A's DisableKey/EnableKey calls themselves.
    pub commit_ms: Latencies,
}

/// A store handle that does everything the store does except push notices: its node only polls.
struct PollOnly(Arc<dyn KeyStore>);

impl KeyStore for PollOnly {
    fn load(&self) -> keyplane::Result<StoreContents> {
        self.0.load()
    }
    fn load_key(&self, id: &uuid::Uuid) -> keyplane::Result<Option<keyplane::key::KeyRecord>> {
        self.0.load_key(id)
    }
    fn commit(&self, changes: &[StoreChange<'_>]) -> keyplane::Result<u64> {
        self.0.commit(changes)
    }
    fn commit_at(&self, expected: u64, changes: &[StoreChange<'_>]) -> keyplane::Result<u64> {
        self.0.commit_at(expected, changes)
    }
    fn changes_since(&self, generation: u64) -> keyplane::Result<Option<StoreDelta>> {
        self.0.changes_since(generation)
    }
    fn generation(&self) -> keyplane::Result<u64> {
        self.0.generation()
    }
    fn describe(&self) -> String {
        format!("{} (polling only)", self.0.describe())
    }
    fn get_or_create_secret(
        &self,
        name: &str,
        create: &mut dyn FnMut() -> keyplane::Result<keyplane::LockedBytes>,
    ) -> keyplane::Result<LockedBytes> {
        self.0.get_or_create_secret(name, create)
    }
}

/// Whether B's data plane shows the key enabled (Encrypt works) or disabled
/// (DisabledException); any other answer fails the run.
fn shows_enabled(b: &Engine, key: &str) -> Result<bool, BenchError> {
    match b.encrypt(&EncryptRequest::new(key, &[0x5a; 64])) {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == ErrorKind::Disabled => Ok(false),
        Err(e) => Err(failed("Encrypt on the follower", e)),
    }
}

fn wait_for(b: &Engine, key: &str, enabled: bool) -> Result<(), BenchError> {
    let started = Instant::now();
    while shows_enabled(b, key)? != enabled {
        if started.elapsed() > GIVE_UP {
            return Err(BenchError::Run(format!(
                "fleet: the follower did not see a change within {GIVE_UP:?}"
            )));
        }
        std::thread::sleep(PROBE);
    }
    Ok(())
}

/// A random pause of up to `poll`.
fn jitter(poll: Duration) -> Result<Duration, BenchError> {
    let mut bytes = [0u8; 4];
    keyplane::sealing::fill_random(&mut bytes).map_err(|e| failed("a random pause", e))?;
    Ok(poll.mul_f64(f64::from(u32::from_be_bytes(bytes)) / f64::from(u32::MAX)))
}

/// Builds node A (no following: it writes) and node B (following), each on its own handle.
pub fn nodes(
    open: Opener<'_>,
    mode: Mode,
    poll: Duration,
    lock_policy: LockPolicy,
    max_keys: usize,
) -> Result<(Engine, Engine), BenchError> {
    let a = node(open()?, lock_policy, None, max_keys)?;
    let (b_store, every): (Arc<dyn KeyStore>, Duration) = match mode {
        Mode::Notify => (open()?, NOTIFY_FALLBACK),
        Mode::Poll => (Arc::new(PollOnly(open()?)), poll),
    };
    let b = node(b_store, lock_policy, Some(every), max_keys)?;
    Ok((a, b))
}

/// Times `changes` changes from A to B. With `known_keys` the store holds that many keys (the
/// scale part); without, it holds a few and is topped up to ten first.
pub fn measure(
    open: Opener<'_>,
    mode: Mode,
    poll: Duration,
    changes: usize,
    known_keys: Option<usize>,
    lock_policy: LockPolicy,
    max_keys: usize,
) -> Result<PropagationRow, BenchError> {
    let (a, b) = nodes(open, mode, poll, lock_policy, max_keys)?;
    let mut store_keys = match known_keys {
        Some(n) => n,
        None => {
            let page = a
                .list_keys(Some(1000), None)
                .map_err(|e| failed("ListKeys", e))?;
            if page.truncated {
                return Err(BenchError::Setup(
                    "fleet: the store holds over 1000 keys before the run; give it a database \
                     of its own"
                        .into(),
                ));
            }
            page.items.len()
        }
    };
    while store_keys < 9 {
        a.create_key(CreateKeyRequest::default())
            .map_err(|e| failed("CreateKey", e))?;
        store_keys += 1;
    }
    let key = a
        .create_key(CreateKeyRequest::default())
        .map_err(|e| failed("CreateKey", e))?
        .key_id;
    store_keys += 1;
    // B learns of the new key (NotFound until then).
    let started = Instant::now();
    while b.encrypt(&EncryptRequest::new(&key, &[0x5a; 64])).is_err() {
        if started.elapsed() > GIVE_UP {
            return Err(BenchError::Run(format!(
                "fleet: the follower did not see a new key within {GIVE_UP:?}"
            )));
        }
        std::thread::sleep(PROBE);
    }
    let mut seen = Vec::with_capacity(changes);
    let mut commits = Vec::with_capacity(changes);
    let mut enabled = true;
    for _ in 0..changes {
        if mode == Mode::Poll {
            // B saw the last change just after one of its polls; without a random pause, every
            // change would be made at the same phase of B's poll cycle.
            std::thread::sleep(jitter(poll)?);
        }
        let t = Instant::now();
        if enabled {
            a.disable_key(&key)
        } else {
            a.enable_key(&key)
        }
        .map_err(|e| failed("DisableKey/EnableKey", e))?;
        let acknowledged = Instant::now();
        commits.push((acknowledged - t).as_secs_f64() * 1e3);
        enabled = !enabled;
        wait_for(&b, &key, enabled)?;
        seen.push(acknowledged.elapsed().as_secs_f64() * 1e3);
    }
    Ok(PropagationRow {
        mode,
        store_keys,
        changes,
        poll_ms: match mode {
            Mode::Notify => NOTIFY_FALLBACK,
            Mode::Poll => poll,
        }
        .as_secs_f64()
            * 1e3,
        latency_ms: latencies(&mut seen),
        commit_ms: latencies(&mut commits),
    })
}
