//! The contents digest: what binds every record the store keeps to its authenticated generation,
//! so that a row put back from an earlier state (a backup, a WAL page, an earlier read), a dropped
//! row, an added or duplicated row, or rows swapped between ids are detected.
//!
//! Each record is an *element*: HMAC-SHA-256, under a key derived from the root key, of the
//! record's kind, its primary key and its full stored content. The digest is, for each kind (key
//! records, aliases, store secrets, events), the sum of its elements modulo 2^256. Summing makes
//! the digest independent of row order, and a change costs O(1): subtract the old row's element,
//! add the new one's, in the same transaction. The digest is kept in the `store` row encrypted and
//! authenticated (AES-256-GCM under the authentication key) with the store id and generation as
//! associated data; the elements are never stored. Someone without the root key therefore sees
//! neither the elements nor the sums, and cannot choose rows whose elements add up to the sealed
//! digest: every load, `verify`, restore check and adoption recomputes the sums from the rows and
//! refuses a store whose sums differ, naming the kinds of record that differ.
//!
//! Key material copies are not elements: a copy is bound to its key, version and key spec by its
//! wrapping, a version's material never changes, and which versions exist is part of the key
//! record. So a damaged or missing copy stays a repairable copy, never a replay. A store secret
//! is an element through its `secrets` row, which holds a MAC of its current value: a copy of an
//! older value is a damaged copy ([`Damage::Stale`](crate::sealing::Damage)), repaired from the
//! current one.

use std::path::Path;

use keyplane::sealing::constant_time_eq;
use keyplane::{Error, Result};
use rusqlite::Connection;
use zeroize::Zeroize;

use crate::errors;
use crate::sealing::{Purpose, StoreKeys, MAC_LEN};

/// The kinds of record the digest covers, each with its own sum.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Part {
    Keys = 0,
    Aliases = 1,
    Secrets = 2,
    Events = 3,
}

const PARTS: [Part; 4] = [Part::Keys, Part::Aliases, Part::Secrets, Part::Events];
const DIGEST_LEN: usize = PARTS.len() * MAC_LEN;

impl Part {
    fn label(self) -> &'static [u8] {
        match self {
            Part::Keys => b"keyplane-sqlite element key-record v1",
            Part::Aliases => b"keyplane-sqlite element alias v1",
            Part::Secrets => b"keyplane-sqlite element secret v1",
            Part::Events => b"keyplane-sqlite element event v1",
        }
    }

    /// What records of this kind are, in words.
    pub fn describe(self) -> &'static str {
        match self {
            Part::Keys => "key records (keys, their versions, policies, grants and tags)",
            Part::Aliases => "aliases",
            Part::Secrets => "store secrets",
            Part::Events => "event log",
        }
    }
}

/// The per-kind sums of the elements. Zeroed when dropped; not `Clone`.
#[derive(Default)]
pub struct Digest {
    sums: [[u64; 4]; PARTS.len()],
}

impl Drop for Digest {
    fn drop(&mut self) {
        self.sums.zeroize();
    }
}

impl std::fmt::Debug for Digest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Digest(..)")
    }
}

fn limbs(element: &[u8; MAC_LEN]) -> [u64; 4] {
    let mut out = [0u64; 4];
    for (i, limb) in out.iter_mut().enumerate() {
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(&element[i * 8..i * 8 + 8]);
        *limb = u64::from_le_bytes(bytes);
    }
    out
}

impl Digest {
    /// Adds the element of the record `parts` of kind `part`.
    pub fn add(&mut self, keys: &StoreKeys, part: Part, parts: &[&[u8]]) -> Result<()> {
        let e = limbs(&*keys.element(part.label(), parts)?);
        let sum = &mut self.sums[part as usize];
        let mut carry = false;
        for (s, x) in sum.iter_mut().zip(e) {
            let (v, c1) = s.overflowing_add(x);
            let (v, c2) = v.overflowing_add(u64::from(carry));
            *s = v;
            carry = c1 || c2;
        }
        Ok(())
    }

    /// Takes away the element of the record `parts` of kind `part` (one that is being replaced or
    /// deleted).
    pub fn remove(&mut self, keys: &StoreKeys, part: Part, parts: &[&[u8]]) -> Result<()> {
        let e = limbs(&*keys.element(part.label(), parts)?);
        let sum = &mut self.sums[part as usize];
        let mut borrow = false;
        for (s, x) in sum.iter_mut().zip(e) {
            let (v, b1) = s.overflowing_sub(x);
            let (v, b2) = v.overflowing_sub(u64::from(borrow));
            *s = v;
            borrow = b1 || b2;
        }
        Ok(())
    }

    fn to_bytes(&self) -> zeroize::Zeroizing<[u8; DIGEST_LEN]> {
        let mut out = zeroize::Zeroizing::new([0u8; DIGEST_LEN]);
        for (p, sum) in self.sums.iter().enumerate() {
            for (i, limb) in sum.iter().enumerate() {
                let at = p * MAC_LEN + i * 8;
                out[at..at + 8].copy_from_slice(&limb.to_le_bytes());
            }
        }
        out
    }

    fn from_bytes(bytes: &[u8; DIGEST_LEN]) -> Self {
        let mut digest = Digest::default();
        for (p, sum) in digest.sums.iter_mut().enumerate() {
            let mut element = [0u8; MAC_LEN];
            element.copy_from_slice(&bytes[p * MAC_LEN..(p + 1) * MAC_LEN]);
            *sum = limbs(&element);
            element.zeroize();
        }
        digest
    }

    /// The kinds whose sums differ from `other`'s (compared in constant time).
    pub fn differing(&self, other: &Digest) -> Vec<Part> {
        let (a, b) = (self.to_bytes(), other.to_bytes());
        PARTS
            .into_iter()
            .filter(|p| {
                let range = *p as usize * MAC_LEN..(*p as usize + 1) * MAC_LEN;
                !constant_time_eq(&a[range.clone()], &b[range])
            })
            .collect()
    }

    /// The digest sealed for store `store_id` at `generation`: `nonce ‖ ciphertext ‖ tag`.
    pub fn seal(&self, keys: &StoreKeys, store_id: &[u8; 16], generation: u64) -> Result<Vec<u8>> {
        keys.seal_secret(
            Purpose::Contents,
            &[store_id, &generation.to_be_bytes()],
            self.to_bytes().as_slice(),
        )
    }

    /// Opens a sealed digest; `None` unless the root key authenticates it for this store and
    /// generation.
    pub fn open(
        keys: &StoreKeys,
        store_id: &[u8; 16],
        generation: u64,
        sealed: &[u8],
    ) -> Option<Self> {
        let mut bytes = zeroize::Zeroizing::new([0u8; DIGEST_LEN]);
        keys.open_secret(
            Purpose::Contents,
            &[store_id, &generation.to_be_bytes()],
            sealed,
            bytes.as_mut_slice(),
        )
        .then(|| Digest::from_bytes(&bytes))
    }
}

/// The parts of an event's element: every column.
pub(crate) fn add_event(
    digest: &mut Digest,
    keys: &StoreKeys,
    event: &EventColumns<'_>,
) -> Result<()> {
    let flagged = |v: Option<&[u8]>| -> Vec<u8> {
        match v {
            None => vec![0],
            Some(bytes) => [&[1u8][..], bytes].concat(),
        }
    };
    let version = event.version.map(i64::to_be_bytes);
    digest.add(
        keys,
        Part::Events,
        &[
            &event.seq.to_be_bytes(),
            &event.at_ms.to_be_bytes(),
            event.kind.as_bytes(),
            &flagged(event.key_id.map(str::as_bytes)),
            &flagged(version.as_ref().map(|v| &v[..])),
            event.detail.as_bytes(),
        ],
    )
}

/// An event row's columns.
pub(crate) struct EventColumns<'a> {
    pub seq: i64,
    pub at_ms: i64,
    pub kind: &'a str,
    pub key_id: Option<&'a str>,
    pub version: Option<i64>,
    pub detail: &'a str,
}

/// Recomputes the digest from every row of the store (schema 3).
pub(crate) fn compute(conn: &Connection, keys: &StoreKeys, db: &Path) -> Result<Digest> {
    let read = |e| errors::sql("read the store's records for their digest", db, e);
    let mut digest = Digest::default();
    let mut stmt = conn
        .prepare_cached("SELECT key_id, record FROM keys")
        .map_err(read)?;
    let mut rows = stmt.query([]).map_err(read)?;
    while let Some(row) = rows.next().map_err(read)? {
        let (id, record): (Vec<u8>, String) =
            (row.get(0).map_err(read)?, row.get(1).map_err(read)?);
        digest.add(keys, Part::Keys, &[&id, record.as_bytes()])?;
    }
    let mut stmt = conn
        .prepare_cached("SELECT name, target, record FROM aliases")
        .map_err(read)?;
    let mut rows = stmt.query([]).map_err(read)?;
    while let Some(row) = rows.next().map_err(read)? {
        let (name, target, record): (String, Vec<u8>, String) = (
            row.get(0).map_err(read)?,
            row.get(1).map_err(read)?,
            row.get(2).map_err(read)?,
        );
        digest.add(
            keys,
            Part::Aliases,
            &[name.as_bytes(), &target, record.as_bytes()],
        )?;
    }
    let mut stmt = conn
        .prepare_cached("SELECT name, value_mac FROM secrets")
        .map_err(read)?;
    let mut rows = stmt.query([]).map_err(read)?;
    while let Some(row) = rows.next().map_err(read)? {
        let (name, mac): (String, Vec<u8>) = (row.get(0).map_err(read)?, row.get(1).map_err(read)?);
        digest.add(keys, Part::Secrets, &[name.as_bytes(), &mac])?;
    }
    let mut stmt = conn
        .prepare_cached("SELECT seq, at_ms, kind, key_id, version, detail FROM events")
        .map_err(read)?;
    let mut rows = stmt.query([]).map_err(read)?;
    while let Some(row) = rows.next().map_err(read)? {
        let (seq, at_ms, kind, key_id, version, detail): (
            i64,
            i64,
            String,
            Option<String>,
            Option<i64>,
            String,
        ) = (
            row.get(0).map_err(read)?,
            row.get(1).map_err(read)?,
            row.get(2).map_err(read)?,
            row.get(3).map_err(read)?,
            row.get(4).map_err(read)?,
            row.get(5).map_err(read)?,
        );
        add_event(
            &mut digest,
            keys,
            &EventColumns {
                seq,
                at_ms,
                kind: &kind,
                key_id: key_id.as_deref(),
                version,
                detail: &detail,
            },
        )?;
    }
    Ok(digest)
}

/// The sealed digest of a `store` row, opened; an error naming the store when it is missing or
/// the root key does not authenticate it for this generation.
pub(crate) fn open_sealed(
    keys: &StoreKeys,
    store_id: &[u8; 16],
    generation: u64,
    sealed: Option<&[u8]>,
    db: &Path,
) -> Result<Digest> {
    sealed
        .and_then(|s| Digest::open(keys, store_id, generation, s))
        .ok_or_else(|| {
            Error::Store(format!(
                "the contents digest of {} is missing or fails its root-key check for generation \
                 {generation}: the store was edited outside keyplane or is damaged; restore it \
                 from a backup",
                db.display()
            ))
        })
}

/// Refuses a store whose rows do not add up to its sealed digest, naming the kinds of record that
/// differ.
pub(crate) fn check(
    conn: &Connection,
    keys: &StoreKeys,
    store_id: &[u8; 16],
    generation: u64,
    sealed: Option<&[u8]>,
    db: &Path,
) -> Result<()> {
    let expected = open_sealed(keys, store_id, generation, sealed, db)?;
    let actual = compute(conn, keys, db)?;
    let differing = expected.differing(&actual);
    if differing.is_empty() {
        return Ok(());
    }
    let what: Vec<&str> = differing.iter().map(|p| p.describe()).collect();
    Err(Error::Store(format!(
        "replay detected: the {} in {} do not match the store's authenticated contents digest at \
         generation {generation}: a row was put back from an earlier state, dropped, added, \
         duplicated or moved to another id by someone who could write the file but has no root \
         key; run `keyplane store verify` and restore the store from a backup",
        what.join(" and the "),
        db.display()
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::root_key::RootKey;
    use keyplane::LockPolicy;
    use keyplane::LockedBytes;

    fn keys() -> StoreKeys {
        let root =
            RootKey::from_locked(LockedBytes::copy_from(&[3u8; 32], LockPolicy::Require).unwrap())
                .unwrap();
        StoreKeys::derive(&root, b"store", LockPolicy::Require).unwrap()
    }

    #[test]
    fn sums_ignore_order_and_see_every_addition_removal_and_duplicate() {
        let keys = keys();
        let (a, b) = (&[b"a".as_slice(), b"1"][..], &[b"b".as_slice(), b"2"][..]);
        let mut ab = Digest::default();
        ab.add(&keys, Part::Keys, a).unwrap();
        ab.add(&keys, Part::Keys, b).unwrap();
        let mut ba = Digest::default();
        ba.add(&keys, Part::Keys, b).unwrap();
        ba.add(&keys, Part::Keys, a).unwrap();
        assert!(ab.differing(&ba).is_empty());
        ba.remove(&keys, Part::Keys, b).unwrap();
        assert_eq!(ab.differing(&ba), [Part::Keys]);
        ba.add(&keys, Part::Keys, b).unwrap();
        ba.add(&keys, Part::Keys, b).unwrap();
        ba.add(&keys, Part::Keys, b).unwrap();
        assert_eq!(
            ab.differing(&ba),
            [Part::Keys],
            "a duplicate does not cancel"
        );
        let mut swapped = Digest::default();
        swapped.add(&keys, Part::Keys, &[b"a", b"2"]).unwrap();
        swapped.add(&keys, Part::Keys, &[b"b", b"1"]).unwrap();
        assert_eq!(ab.differing(&swapped), [Part::Keys]);
        let mut aliased = Digest::default();
        aliased.add(&keys, Part::Aliases, a).unwrap();
        aliased.add(&keys, Part::Aliases, b).unwrap();
        assert_eq!(ab.differing(&aliased), [Part::Keys, Part::Aliases]);
    }

    #[test]
    fn the_sealed_digest_is_bound_to_its_store_and_generation() {
        let keys = keys();
        let mut d = Digest::default();
        d.add(&keys, Part::Events, &[b"x"]).unwrap();
        let sealed = d.seal(&keys, &[1; 16], 7).unwrap();
        assert!(Digest::open(&keys, &[1; 16], 7, &sealed)
            .unwrap()
            .differing(&d)
            .is_empty());
        assert!(Digest::open(&keys, &[1; 16], 8, &sealed).is_none());
        assert!(Digest::open(&keys, &[2; 16], 7, &sealed).is_none());
        let mut bad = sealed.clone();
        bad[20] ^= 1;
        assert!(Digest::open(&keys, &[1; 16], 7, &bad).is_none());
    }
}
