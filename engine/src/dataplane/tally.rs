//! Which keys a batch used, for its audit record and GetKeyLastUsage.
//!
//! Each chunk counts, for every distinct key its items resolved (by identifier or from a
//! ciphertext), how many items used the key and how many of those succeeded. The counts live in
//! the chunk (a short vector, found by the last key used, then a scan, then an index once a chunk
//! sees many keys): no lock and no allocation per item. When the chunk ends they are merged into
//! the batch's [`KeyTally`] under its lock, once per chunk.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;

use uuid::Uuid;

/// Distinct keys a chunk scans before it builds an index.
const SCAN_KEYS: usize = 16;

/// How a batch used one key.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct KeyUse {
    /// Items that resolved the key (an item that used it twice counts once).
    pub(crate) items: u64,
    /// Of those, the items that succeeded.
    pub(crate) succeeded: u64,
}

/// The keys a whole batch used, filled by its chunks. An inactive tally (no audit log) records
/// no keys, and its chunks count none. A batch's tally, either kind, also counts the items its
/// chunks ran and notes whether any failed ([`KeyTally::all_succeeded`]).
pub(crate) struct KeyTally {
    keys: Option<Mutex<BTreeMap<Uuid, KeyUse>>>,
    outcomes: Option<Outcomes>,
}

/// Items the chunks of a batch ran, and whether any failed.
#[derive(Default)]
struct Outcomes {
    ran: AtomicUsize,
    failed: AtomicBool,
}

impl KeyTally {
    /// A tally that records.
    pub(crate) fn new() -> Self {
        KeyTally {
            keys: Some(Mutex::new(BTreeMap::new())),
            outcomes: Some(Outcomes::default()),
        }
    }

    /// A tally that records no keys, only the items' outcomes.
    pub(crate) fn inactive() -> Self {
        KeyTally {
            keys: None,
            outcomes: Some(Outcomes::default()),
        }
    }

    /// A tally that records nothing: a single call's, shared by every thread (so that no
    /// counter on it is written from every core).
    pub(crate) const fn none() -> Self {
        KeyTally {
            keys: None,
            outcomes: None,
        }
    }

    pub(crate) fn is_active(&self) -> bool {
        self.keys.is_some()
    }

    /// Whether the chunks that have ended ran `n` items and every one succeeded, so that a batch
    /// of `n` needs no pass over its results to look for a failure. False whenever unsure: for
    /// a tally that counts nothing, or items answered without a chunk.
    pub(crate) fn all_succeeded(&self, n: usize) -> bool {
        self.outcomes.as_ref().is_some_and(|o| {
            !o.failed.load(Ordering::Relaxed) && o.ran.load(Ordering::Relaxed) == n
        })
    }

    fn merge(&self, chunk: &[ChunkKey]) {
        let Some(keys) = &self.keys else { return };
        // A poisoned lock still holds counts merged by chunks that finished.
        let mut keys = keys.lock().unwrap_or_else(|e| e.into_inner());
        for key in chunk {
            let entry = keys.entry(key.id).or_default();
            entry.items += key.uses.items;
            entry.succeeded += key.uses.succeeded;
        }
    }

    /// The keys used, in key id order.
    pub(crate) fn into_keys(self) -> Vec<(Uuid, KeyUse)> {
        match self.keys {
            Some(keys) => keys
                .into_inner()
                .unwrap_or_else(|e| e.into_inner())
                .into_iter()
                .collect(),
            None => Vec::new(),
        }
    }
}

struct ChunkKey {
    id: Uuid,
    uses: KeyUse,
    /// The serial of the last item that used the key, so an item counts once.
    last_item: u64,
}

/// One chunk's counts; merged into its [`KeyTally`] on drop.
pub(crate) struct ChunkTally<'k> {
    tally: &'k KeyTally,
    /// `tally` when it records keys.
    sink: Option<&'k KeyTally>,
    /// Items this chunk ran, and whether any failed.
    ran: usize,
    failed: bool,
    keys: Vec<ChunkKey>,
    /// Key id to position in `keys`, once the chunk has seen more than [`SCAN_KEYS`] keys.
    index: HashMap<Uuid, usize>,
    last: usize,
    /// The serial of the item running now (from 1).
    item: u64,
    /// Positions in `keys` of the keys the running item used.
    item_keys: Vec<usize>,
}

impl<'k> ChunkTally<'k> {
    pub(crate) fn new(sink: &'k KeyTally) -> Self {
        ChunkTally {
            tally: sink,
            sink: sink.is_active().then_some(sink),
            ran: 0,
            failed: false,
            keys: Vec::new(),
            index: HashMap::new(),
            last: 0,
            item: 1,
            item_keys: Vec::new(),
        }
    }

    /// The running item used key `id`. Inlined into every item's path, which without an audit
    /// log ends here.
    #[inline(always)]
    pub(crate) fn used(&mut self, id: &Uuid) {
        if self.sink.is_some() {
            self.count_use(id);
        }
    }

    fn count_use(&mut self, id: &Uuid) {
        let position = self.position(id);
        let key = &mut self.keys[position];
        if key.last_item != self.item {
            key.last_item = self.item;
            key.uses.items += 1;
            self.item_keys.push(position);
        }
    }

    fn position(&mut self, id: &Uuid) -> usize {
        if self.keys.get(self.last).is_some_and(|k| k.id == *id) {
            return self.last;
        }
        let found = if self.keys.len() <= SCAN_KEYS {
            self.keys.iter().position(|k| k.id == *id)
        } else {
            self.index.get(id).copied()
        };
        let position = found.unwrap_or_else(|| {
            self.keys.push(ChunkKey {
                id: *id,
                uses: KeyUse::default(),
                last_item: 0,
            });
            let position = self.keys.len() - 1;
            if self.keys.len() > SCAN_KEYS {
                if self.index.is_empty() {
                    self.index
                        .extend(self.keys.iter().enumerate().map(|(i, k)| (k.id, i)));
                } else {
                    self.index.insert(*id, position);
                }
            }
            position
        });
        self.last = position;
        position
    }

    /// The running item is done; the next one starts.
    #[inline]
    pub(crate) fn item_done(&mut self, succeeded: bool) {
        self.ran += 1;
        self.failed |= !succeeded;
        if self.sink.is_none() {
            return;
        }
        if succeeded {
            for &position in &self.item_keys {
                self.keys[position].uses.succeeded += 1;
            }
        }
        self.item_keys.clear();
        self.item += 1;
    }
}

impl Drop for ChunkTally<'_> {
    fn drop(&mut self) {
        if let Some(outcomes) = &self.tally.outcomes {
            if self.ran > 0 {
                outcomes.ran.fetch_add(self.ran, Ordering::Relaxed);
            }
            if self.failed {
                outcomes.failed.store(true, Ordering::Relaxed);
            }
        }
        if let Some(sink) = self.sink {
            if !self.keys.is_empty() {
                sink.merge(&self.keys);
            }
        }
    }
}

/// Whether a batch item's result is a success.
pub(crate) trait ItemOutcome {
    fn succeeded(&self) -> bool;
    /// The outcome of an item refused before it ran.
    fn refused(error: crate::error::Error) -> Self;
}

impl<T> ItemOutcome for crate::error::Result<T> {
    fn succeeded(&self) -> bool {
        self.is_ok()
    }

    fn refused(error: crate::error::Error) -> Self {
        Err(error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_each_key_once_per_item_and_successes_per_key() {
        let tally = KeyTally::new();
        let ids: Vec<Uuid> = (0..40).map(|_| Uuid::new_v4()).collect();
        {
            let mut chunk = ChunkTally::new(&tally);
            // Item 1 uses key 0 twice and key 1; it succeeds.
            chunk.used(&ids[0]);
            chunk.used(&ids[0]);
            chunk.used(&ids[1]);
            chunk.item_done(true);
            // Item 2 uses key 1 and fails.
            chunk.used(&ids[1]);
            chunk.item_done(false);
            // Many keys: past the scan limit, the index takes over.
            for id in &ids {
                chunk.used(id);
                chunk.item_done(true);
            }
        }
        {
            let mut other = ChunkTally::new(&tally);
            other.used(&ids[0]);
            other.item_done(true);
        }
        let keys: BTreeMap<Uuid, KeyUse> = tally.into_keys().into_iter().collect();
        assert_eq!(keys.len(), ids.len());
        assert_eq!(
            keys[&ids[0]],
            KeyUse {
                items: 3,
                succeeded: 3
            }
        );
        assert_eq!(
            keys[&ids[1]],
            KeyUse {
                items: 3,
                succeeded: 2
            }
        );
        for id in &ids[2..] {
            assert_eq!(
                keys[id],
                KeyUse {
                    items: 1,
                    succeeded: 1
                }
            );
        }
    }

    #[test]
    fn an_inactive_tally_records_nothing() {
        let tally = KeyTally::inactive();
        {
            let mut chunk = ChunkTally::new(&tally);
            chunk.used(&Uuid::new_v4());
            chunk.item_done(true);
        }
        assert!(tally.into_keys().is_empty());
    }

    #[test]
    fn all_succeeded_only_when_every_item_ran_in_a_chunk_and_none_failed() {
        for tally in [KeyTally::new(), KeyTally::inactive()] {
            assert!(!tally.all_succeeded(3), "nothing ran yet");
            {
                let mut chunk = ChunkTally::new(&tally);
                chunk.item_done(true);
                assert!(!tally.all_succeeded(1), "counted when the chunk ends");
            }
            assert!(tally.all_succeeded(1));
            ChunkTally::new(&tally).item_done(true);
            assert!(tally.all_succeeded(2));
            assert!(!tally.all_succeeded(3), "an item answered without a chunk");
            ChunkTally::new(&tally).item_done(false);
            assert!(!tally.all_succeeded(3), "a failure");
        }
        // A single call's tally counts nothing, so it never vouches for a batch.
        let none = KeyTally::none();
        ChunkTally::new(&none).item_done(true);
        assert!(!none.all_succeeded(1));
    }
}
