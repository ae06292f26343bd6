//! Which keys a batch used, for its audit record and GetKeyLastUsage.
//!
//! Each chunk counts, for every distinct key its items resolved (by identifier or from a
//! ciphertext), how many items used the key and how many of those succeeded. The counts live in
//! the chunk (a short vector, found by the last key used, then a scan, then an index once a chunk
//! sees many keys): no lock and no allocation per item. When the chunk ends they are merged into
//! the batch's [`KeyTally`] under its lock, once per chunk.

use std::collections::{BTreeMap, HashMap};
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
/// nothing, and its chunks count nothing.
pub(crate) struct KeyTally {
    keys: Option<Mutex<BTreeMap<Uuid, KeyUse>>>,
}

impl KeyTally {
    /// A tally that records.
    pub(crate) fn new() -> Self {
        KeyTally {
            keys: Some(Mutex::new(BTreeMap::new())),
        }
    }

    /// A tally that records nothing.
    pub(crate) const fn inactive() -> Self {
        KeyTally { keys: None }
    }

    pub(crate) fn is_active(&self) -> bool {
        self.keys.is_some()
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
    sink: Option<&'k KeyTally>,
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
            sink: sink.is_active().then_some(sink),
            keys: Vec::new(),
            index: HashMap::new(),
            last: 0,
            item: 1,
            item_keys: Vec::new(),
        }
    }

    /// The running item used key `id`.
    #[inline]
    pub(crate) fn used(&mut self, id: &Uuid) {
        if self.sink.is_none() {
            return;
        }
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
}
