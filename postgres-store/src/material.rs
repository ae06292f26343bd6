//! Key material: each version wrapped under the root key (bound to its key id, version and key
//! spec) in two independent copies, each with its own nonce and checksum, as in the SQLite store.
//! A damaged copy is repaired from the good one when read; a version with no good copy makes its
//! key (and only its key) Unavailable.

use std::collections::BTreeMap;

use keyplane::key::KeyRecord;
use keyplane::store::StoredMaterial;
use keyplane::Result;
use keyplane_sqlite::sealing::{DamagedCopy, MaterialSlot, StoreKeys};
use postgres::GenericClient;
use uuid::Uuid;

use crate::errors;

/// Copies kept of every version.
pub(crate) const COPIES: usize = 2;

pub(crate) use keyplane_sqlite::sealing::StoredCopy;

type CopyMap = BTreeMap<(Uuid, u32), [Option<StoredCopy>; COPIES]>;

fn collect(rows: Vec<postgres::Row>) -> CopyMap {
    let mut map = CopyMap::new();
    for row in rows {
        let id: Vec<u8> = row.get(0);
        let (Ok(id), Ok(version), Ok(copy)) = (
            Uuid::from_slice(&id),
            u32::try_from(row.get::<_, i32>(1)),
            usize::try_from(row.get::<_, i16>(2)),
        ) else {
            continue;
        };
        if copy >= COPIES {
            continue;
        }
        map.entry((id, version)).or_default()[copy] = Some(StoredCopy {
            wrapped: row.get(3),
            checksum: row.get(4),
        });
    }
    map
}

/// Every copy of every key's material.
pub(crate) fn read_all(c: &mut impl GenericClient, db: &str) -> Result<CopyMap> {
    c.query(
        "SELECT key_id, version, copy, wrapped, checksum FROM keyplane_material",
        &[],
    )
    .map(collect)
    .map_err(|e| errors::pg("read key material", db, e))
}

/// Every copy of the material of the keys `ids`.
pub(crate) fn read_keys(c: &mut impl GenericClient, ids: &[Uuid], db: &str) -> Result<CopyMap> {
    let ids: Vec<Vec<u8>> = ids.iter().map(|i| i.as_bytes().to_vec()).collect();
    c.query(
        "SELECT key_id, version, copy, wrapped, checksum FROM keyplane_material \
         WHERE key_id = ANY($1)",
        &[&ids],
    )
    .map(collect)
    .map_err(|e| errors::pg("read key material", db, e))
}

/// Writes both copies of one version (each with a fresh nonce).
pub(crate) fn put(
    c: &mut impl GenericClient,
    keys: &StoreKeys,
    slot: &MaterialSlot,
    material: &[u8],
    db: &str,
) -> Result<()> {
    for copy in 0..COPIES {
        write_copy(c, keys, slot, copy, material, db)?;
    }
    Ok(())
}

fn write_copy(
    c: &mut impl GenericClient,
    keys: &StoreKeys,
    slot: &MaterialSlot,
    copy: usize,
    material: &[u8],
    db: &str,
) -> Result<()> {
    let StoredCopy {
        wrapped,
        checksum: sum,
    } = StoredCopy::sealed(keys, slot, material)?;
    c.execute(
        "INSERT INTO keyplane_material (key_id, version, copy, wrapped, checksum) \
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (key_id, version, copy) DO UPDATE SET \
         wrapped = EXCLUDED.wrapped, checksum = EXCLUDED.checksum",
        &[
            &&slot.key_id.as_bytes()[..],
            &(slot.version as i32),
            &(copy as i16),
            &wrapped,
            &sum,
        ],
    )
    .map(|_| ())
    .map_err(|e| errors::pg("write key material", db, e))
}

/// Removes both copies of one version.
pub(crate) fn delete_version(
    c: &mut impl GenericClient,
    key_id: &Uuid,
    version: u32,
    db: &str,
) -> Result<()> {
    c.execute(
        "DELETE FROM keyplane_material WHERE key_id = $1 AND version = $2",
        &[&&key_id.as_bytes()[..], &(version as i32)],
    )
    .map(|_| ())
    .map_err(|e| errors::pg("delete key material", db, e))
}

/// What reading the material found.
#[derive(Default)]
pub(crate) struct Examination {
    pub materials: Vec<StoredMaterial>,
    pub damaged: Vec<DamagedCopy>,
    pub lost: Vec<MaterialSlot>,
}

/// Judges every copy of every version `records` name.
pub(crate) fn examine(
    keys: &StoreKeys,
    records: &[&KeyRecord],
    copies: &CopyMap,
) -> Result<Examination> {
    let mut out = Examination::default();
    let none: [Option<StoredCopy>; COPIES] = Default::default();
    for slot in MaterialSlot::stored_by(records.iter().copied()) {
        let set = copies.get(&(slot.key_id, slot.version)).unwrap_or(&none);
        let judged = keys.judge_version(slot, set)?;
        out.damaged.extend(judged.damaged);
        match judged.material {
            Some(material) => out.materials.push(material),
            None => out.lost.push(slot),
        }
    }
    Ok(out)
}

/// Rewrites each damaged copy whose version has a good one, if the copy is still as it was read.
/// Returns how many were repaired.
pub(crate) fn repair(
    c: &mut impl GenericClient,
    keys: &StoreKeys,
    exam: &Examination,
    db: &str,
) -> Result<usize> {
    let mut repaired = 0;
    for damaged in &exam.damaged {
        let Some(good) = exam
            .materials
            .iter()
            .find(|m| m.key_id == damaged.slot.key_id && m.version == damaged.slot.version)
        else {
            continue;
        };
        let now = read_keys(c, &[damaged.slot.key_id], db)?
            .remove(&(damaged.slot.key_id, damaged.slot.version))
            .and_then(|set| set[damaged.copy].clone());
        if now != damaged.seen {
            continue;
        }
        write_copy(
            c,
            keys,
            &damaged.slot,
            damaged.copy,
            good.material.expose(keyplane::SecretAccess::granted()),
            db,
        )?;
        repaired += 1;
    }
    Ok(repaired)
}
