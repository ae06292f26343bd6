//! The independent copies of each wrapped key version: writing them, reading and judging them, and
//! repairing a damaged copy from a good one.
//!
//! Each copy lives in its own table (so on its own B-tree pages), wrapped with its own nonce and
//! kept with its own checksum. A copy is good when its checksum matches and the root key
//! authenticates it for its key, version and key spec. A version is usable while one copy is good;
//! a damaged copy is then rewritten from the good one (fresh nonce) and the repair recorded in the
//! event log.

use std::collections::BTreeMap;
use std::path::Path;

use keyplane::key::KeyRecord;
use keyplane::store::StoredMaterial;
use keyplane::Result;
use rusqlite::{params, Connection, OptionalExtension};
use uuid::Uuid;

use crate::contents::Digest;
use crate::errors;
use crate::events;
use crate::schema::COPY_TABLES;
use crate::sealing::{DamagedCopy, MaterialSlot, StoreKeys};

/// Copies per key version.
pub(crate) const COPIES: usize = COPY_TABLES.len();

pub(crate) use crate::sealing::StoredCopy;

/// Every copy of every version, by (key id, version).
pub(crate) type CopyMap = BTreeMap<(Uuid, u32), [Option<StoredCopy>; COPIES]>;

/// A copy's row as read: key id, version, wrapped bytes, checksum.
type CopyRow = (Vec<u8>, i64, Vec<u8>, Vec<u8>);

/// Reads every copy. Rows whose key id or version cannot be read are counted in the second value.
pub(crate) fn read_all(conn: &Connection, db: &Path) -> Result<(CopyMap, usize)> {
    let mut map = CopyMap::new();
    let mut unreadable = 0;
    for (index, table) in COPY_TABLES.iter().enumerate() {
        let rows: Vec<CopyRow> = conn
            .prepare_cached(&format!(
                "SELECT key_id, version, wrapped, checksum FROM {table}"
            ))
            .and_then(|mut stmt| {
                stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
                    .collect()
            })
            .map_err(|e| errors::sql("read the key material", db, e))?;
        for (id, version, wrapped, checksum) in rows {
            let (Ok(id), Ok(version)) = (Uuid::from_slice(&id), u32::try_from(version)) else {
                unreadable += 1;
                continue;
            };
            map.entry((id, version)).or_default()[index] = Some(StoredCopy { wrapped, checksum });
        }
    }
    Ok((map, unreadable))
}

/// Reads every copy of key `key_id`'s versions (for a follower applying a change to it).
pub(crate) fn read_key(conn: &Connection, key_id: &Uuid, db: &Path) -> Result<CopyMap> {
    let mut map = CopyMap::new();
    for (index, table) in COPY_TABLES.iter().enumerate() {
        let rows: Vec<(i64, Vec<u8>, Vec<u8>)> = conn
            .prepare_cached(&format!(
                "SELECT version, wrapped, checksum FROM {table} WHERE key_id = ?1"
            ))
            .and_then(|mut stmt| {
                stmt.query_map([&key_id.as_bytes()[..]], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                })?
                .collect()
            })
            .map_err(|e| errors::sql("read a key's material", db, e))?;
        for (version, wrapped, checksum) in rows {
            let Ok(version) = u32::try_from(version) else {
                continue;
            };
            map.entry((*key_id, version)).or_default()[index] =
                Some(StoredCopy { wrapped, checksum });
        }
    }
    Ok(map)
}

/// Reads one copy.
fn read_one(
    conn: &Connection,
    index: usize,
    slot: &MaterialSlot,
    db: &Path,
) -> Result<Option<StoredCopy>> {
    conn.prepare_cached(&format!(
        "SELECT wrapped, checksum FROM {} WHERE key_id = ?1 AND version = ?2",
        COPY_TABLES[index]
    ))
    .and_then(|mut stmt| {
        stmt.query_row(params![&slot.key_id.as_bytes()[..], slot.version], |r| {
            Ok(StoredCopy {
                wrapped: r.get(0)?,
                checksum: r.get(1)?,
            })
        })
        .optional()
    })
    .map_err(|e| errors::sql("read a copy of key material", db, e))
}

/// Wraps `material` afresh into copy `index` of `slot`.
pub(crate) fn write(
    conn: &Connection,
    keys: &StoreKeys,
    index: usize,
    slot: &MaterialSlot,
    root_epoch: u64,
    material: &[u8],
    db: &Path,
) -> Result<()> {
    let StoredCopy { wrapped, checksum } = StoredCopy::sealed(keys, slot, material)?;
    conn.prepare_cached(&format!(
        "INSERT OR REPLACE INTO {} (key_id, version, root_epoch, wrapped, checksum) \
         VALUES (?1, ?2, ?3, ?4, ?5)",
        COPY_TABLES[index]
    ))
    .and_then(|mut stmt| {
        stmt.execute(params![
            &slot.key_id.as_bytes()[..],
            slot.version,
            root_epoch as i64,
            wrapped,
            checksum
        ])
    })
    .map(|_| ())
    .map_err(|e| errors::sql("write key material", db, e))
}

/// Removes every copy of one version's material (imported material that expired or was deleted).
pub(crate) fn delete_version(
    conn: &Connection,
    key_id: &Uuid,
    version: u32,
    db: &Path,
) -> Result<()> {
    for table in COPY_TABLES {
        conn.prepare_cached(&format!(
            "DELETE FROM {table} WHERE key_id = ?1 AND version = ?2"
        ))
        .and_then(|mut stmt| stmt.execute(params![&key_id.as_bytes()[..], version]))
        .map_err(|e| errors::sql("delete key material", db, e))?;
    }
    Ok(())
}

/// Writes every copy of a new key version.
pub(crate) fn write_all(
    conn: &Connection,
    keys: &StoreKeys,
    slot: &MaterialSlot,
    root_epoch: u64,
    material: &[u8],
    db: &Path,
) -> Result<()> {
    (0..COPIES).try_for_each(|index| write(conn, keys, index, slot, root_epoch, material, db))
}

/// The result of examining every version of every key.
#[derive(Debug, Default)]
pub(crate) struct Examination {
    /// One good material per usable version.
    pub materials: Vec<StoredMaterial>,
    pub versions: usize,
    pub copies_checked: usize,
    pub copies_good: usize,
    pub damaged: Vec<DamagedCopy>,
    /// Versions with no good copy: their keys become Unavailable.
    pub lost: Vec<MaterialSlot>,
    /// Copies of versions that no key record names.
    pub orphans: usize,
}

/// Judges every copy of every version `records` name.
pub(crate) fn examine(
    keys: &StoreKeys,
    records: &[KeyRecord],
    copies: &CopyMap,
) -> Result<Examination> {
    let mut out = Examination::default();
    let none: [Option<StoredCopy>; COPIES] = Default::default();
    let mut named = 0usize;
    for slot in MaterialSlot::stored_by(records) {
        let set = copies.get(&(slot.key_id, slot.version));
        if set.is_some() {
            named += 1;
        }
        let set = set.unwrap_or(&none);
        out.versions += 1;
        out.copies_checked += set.len();
        let judged = keys.judge_version(slot, set)?;
        out.copies_good += set.len() - judged.damaged.len();
        out.damaged.extend(judged.damaged);
        match judged.material {
            Some(material) => out.materials.push(material),
            None => out.lost.push(slot),
        }
    }
    out.orphans = copies.len() - named;
    Ok(out)
}

/// Rewrites each damaged copy whose version still has a good one, if the copy is still as it was
/// read (another process may have changed it since). Records each repair. Returns the copies
/// repaired as (key id, version, copy index). Runs inside the caller's write transaction.
pub(crate) fn repair(
    conn: &Connection,
    keys: &StoreKeys,
    digest: &mut Digest,
    root_epoch: u64,
    exam: &Examination,
    db: &Path,
) -> Result<Vec<(Uuid, u32, usize)>> {
    let mut repaired = Vec::new();
    for damaged in &exam.damaged {
        let Some(good) = exam
            .materials
            .iter()
            .find(|m| m.key_id == damaged.slot.key_id && m.version == damaged.slot.version)
        else {
            continue;
        };
        if read_one(conn, damaged.copy, &damaged.slot, db)? != damaged.seen {
            continue;
        }
        write(
            conn,
            keys,
            damaged.copy,
            &damaged.slot,
            root_epoch,
            good.material.expose(keyplane::SecretAccess::granted()),
            db,
        )?;
        events::record(
            conn,
            keys,
            digest,
            events::REPAIR,
            Some((&damaged.slot.key_id, damaged.slot.version)),
            &format!(
                "copy {} of version {} was {}; rewritten from a good copy",
                damaged.copy + 1,
                damaged.slot.version,
                damaged.damage
            ),
            db,
        )?;
        repaired.push((damaged.slot.key_id, damaged.slot.version, damaged.copy));
    }
    Ok(repaired)
}
