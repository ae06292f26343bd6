//! The control plane's key records ([`KeyRecords`]): found by id with one hash probe, listed in
//! id order.
//!
//! Why not one `BTreeMap<Uuid, KeyRecord>`: at a million keys a lookup walked ~6 levels of nodes
//! of 11 records (3.5 KB each), every level a few cache misses and a page of its own, and
//! DescribeKey over 1,024 keys spread among a million took 2.4–3.5× its time among a thousand
//! (docs/performance.md, "A cold key among a million"). Lookups by id are what every control-plane
//! call makes; order is needed only to page ListKeys and for the few scans of every key. So the
//! records sit in a hash map, each in its own box (a map of 304-byte records would leave up to
//! half of a table of them empty after it doubles), and the ids alone in an ordered set.

use std::collections::{BTreeSet, HashMap};
use std::ops::Bound;

use uuid::Uuid;

use crate::key::KeyRecord;

/// Every key record, by id, with the ids in order.
#[derive(Default)]
pub(crate) struct KeyRecords {
    /// Each record by its id. Hashed with `std`'s keyed SipHash: ids come from the store, which
    /// a node sharing it does not control.
    by_id: HashMap<Uuid, Box<KeyRecord>>,
    /// Every id of `by_id`, in order.
    ordered: BTreeSet<Uuid>,
}

impl KeyRecords {
    /// The record of key `id`.
    pub(crate) fn get(&self, id: &Uuid) -> Option<&KeyRecord> {
        self.by_id.get(id).map(|record| &**record)
    }

    /// Inserts `record` under its id, or replaces the record there; answers the one replaced.
    pub(crate) fn insert(&mut self, record: KeyRecord) -> Option<KeyRecord> {
        let id = record.id;
        match self.by_id.insert(id, Box::new(record)) {
            Some(old) => Some(*old),
            None => {
                self.ordered.insert(id);
                None
            }
        }
    }

    /// Removes the record of key `id`; answers it.
    pub(crate) fn remove(&mut self, id: &Uuid) -> Option<KeyRecord> {
        let old = self.by_id.remove(id)?;
        self.ordered.remove(id);
        Some(*old)
    }

    /// How many keys there are.
    pub(crate) fn len(&self) -> usize {
        self.by_id.len()
    }

    /// Every record, in key id order.
    pub(crate) fn values(&self) -> impl Iterator<Item = &KeyRecord> + '_ {
        self.ordered.iter().filter_map(|id| self.get(id))
    }

    /// Every record, in no particular order: for a scan that needs none (the data plane's
    /// snapshot built from scratch), without a hash probe per key.
    pub(crate) fn unordered(&self) -> impl Iterator<Item = &KeyRecord> + '_ {
        self.by_id.values().map(|record| &**record)
    }

    /// The ids after `start` (every id with `Bound::Unbounded`), in order: a range of the set,
    /// not a walk from its start.
    pub(crate) fn ids_from(&self, start: Bound<Uuid>) -> impl Iterator<Item = &Uuid> + '_ {
        self.ordered.range((start, Bound::Unbounded))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A record as CreateKey makes it, under id `id`.
    fn record(id: u128, description: &str) -> KeyRecord {
        let engine = crate::Engine::builder().build().unwrap();
        let made = engine
            .create_key(crate::CreateKeyRequest::default())
            .unwrap();
        let state = engine.control().unwrap();
        let mut record = state
            .keys
            .get(&Uuid::parse_str(&made.key_id).unwrap())
            .unwrap()
            .clone();
        record.id = Uuid::from_u128(id);
        record.description = description.into();
        record
    }

    #[test]
    fn records_are_found_by_id_and_listed_in_id_order_through_changes() {
        let mut keys = KeyRecords::default();
        for id in [5u128, 1, 9, 3] {
            assert!(keys.insert(record(id, "first")).is_none());
        }
        let replaced = keys.insert(record(9, "second")).unwrap();
        assert_eq!(replaced.description, "first");
        assert_eq!(keys.get(&Uuid::from_u128(9)).unwrap().description, "second");
        assert_eq!(keys.len(), 4, "a replacement is not a second key");
        assert_eq!(keys.remove(&Uuid::from_u128(3)).unwrap().id.as_u128(), 3);
        assert!(keys.remove(&Uuid::from_u128(3)).is_none());
        assert!(keys.get(&Uuid::from_u128(3)).is_none());
        let order: Vec<u128> = keys.values().map(|r| r.id.as_u128()).collect();
        assert_eq!(order, [1, 5, 9]);
        let mut any_order: Vec<u128> = keys.unordered().map(|r| r.id.as_u128()).collect();
        any_order.sort_unstable();
        assert_eq!(any_order, order);
        let after: Vec<u128> = keys
            .ids_from(Bound::Excluded(Uuid::from_u128(1)))
            .map(|id| id.as_u128())
            .collect();
        assert_eq!(after, [5, 9]);
        let from_gap: Vec<u128> = keys
            .ids_from(Bound::Excluded(Uuid::from_u128(6)))
            .map(|id| id.as_u128())
            .collect();
        assert_eq!(from_gap, [9], "a marker between ids starts after it");
        assert_eq!(keys.ids_from(Bound::Unbounded).count(), keys.len());
    }
}
