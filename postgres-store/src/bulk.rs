//! The bulk path: many new keys, each with the material of every version it keeps, in ONE commit
//! (one generation, one transaction) whose rows go in with `COPY` instead of an `INSERT` each.
//! Every row is made by the same functions as a single commit's ([`KeyRow::sealed`],
//! [`StoredCopy::sealed`], the change log's rows), so it is sealed, counted in the contents digest and
//! logged exactly as the store seals, counts and logs any key: what a bulk load wrote loads,
//! verifies and propagates like anything else. It is for filling a store (migrations, the fleet
//! benchmark's million keys); keys that exist already are refused, never replaced.

use std::collections::{BTreeMap, BTreeSet};

use keyplane::key::KeyRecord;
use keyplane::store::StoredMaterial;
use keyplane::{Error, Result};
use keyplane_sqlite::contents::Digest;
use keyplane_sqlite::sealing::{MaterialSlot, StoreKeys};
use postgres::binary_copy::BinaryCopyInWriter;
use postgres::types::Type;
use postgres::GenericClient;
use uuid::Uuid;

use crate::changes::{Kind, Touched};
use crate::errors;
use crate::material::{self, StoredCopy};
use crate::meta::to_i64;
use crate::records::KeyRow;

/// Most keys one bulk commit takes (bounds the commit's memory and transaction size).
pub const MAX_BULK_KEYS: usize = 100_000;

/// Checks the batch: at least one key and at most [`MAX_BULK_KEYS`], no id twice, and exactly the
/// material the records say they keep (every version with material of every key that keeps
/// material, and nothing else). Returns the material by key and version.
fn check<'a>(
    records: &[KeyRecord],
    materials: &'a [StoredMaterial],
) -> Result<BTreeMap<(Uuid, u32), &'a StoredMaterial>> {
    if records.is_empty() || records.len() > MAX_BULK_KEYS {
        return Err(Error::Validation(format!(
            "a bulk load takes 1 to {MAX_BULK_KEYS} keys, not {}",
            records.len()
        )));
    }
    let mut ids = BTreeSet::new();
    let mut wanted = BTreeSet::new();
    for record in records {
        if !ids.insert(record.id) {
            return Err(Error::Validation(format!(
                "key {} appears twice in one bulk load",
                record.id
            )));
        }
        if record.keeps_material() {
            for version in record.versions.iter().filter(|v| v.has_material()) {
                wanted.insert((record.id, version.version));
            }
        }
    }
    let mut by_slot = BTreeMap::new();
    for m in materials {
        if !wanted.contains(&(m.key_id, m.version)) {
            return Err(Error::Validation(format!(
                "material for version {} of key {}, which no record of this bulk load keeps",
                m.version, m.key_id
            )));
        }
        if by_slot.insert((m.key_id, m.version), m).is_some() {
            return Err(Error::Validation(format!(
                "version {} of key {} has material twice in one bulk load",
                m.version, m.key_id
            )));
        }
    }
    if let Some((id, version)) = wanted.iter().find(|s| !by_slot.contains_key(s)) {
        return Err(Error::Validation(format!(
            "version {version} of key {id} has no material in this bulk load"
        )));
    }
    Ok(by_slot)
}

/// Writes `records` and `materials` as new keys in the commit that produces `generation`:
/// sealed rows and two copies of each version, both counted in `digest`, each key's record and
/// material noted in `touched` for the change log.
#[allow(clippy::too_many_arguments)]
pub(crate) fn insert_keys(
    c: &mut impl GenericClient,
    keys: &StoreKeys,
    generation: u64,
    digest: &mut Digest,
    touched: &mut Touched,
    records: &[KeyRecord],
    materials: &[StoredMaterial],
    db: &str,
) -> Result<()> {
    let by_slot = check(records, materials)?;
    let failed = |what: &'static str| move |e| errors::pg(what, db, e);
    let ids: Vec<Vec<u8>> = records.iter().map(|r| r.id.as_bytes().to_vec()).collect();
    let existing: i64 = c
        .query_one(
            "SELECT count(*) FROM keyplane_keys WHERE key_id = ANY($1)",
            &[&ids],
        )
        .map_err(failed("check a bulk load's keys"))?
        .get(0);
    if existing > 0 {
        return Err(Error::AlreadyExists(format!(
            "{existing} of the {} keys of this bulk load are in the key store {db} already; a \
             bulk load only adds new keys",
            records.len()
        )));
    }

    let generation_i64 = to_i64(generation);
    let sink = c
        .copy_in("COPY keyplane_keys (key_id, generation, record, seal) FROM STDIN BINARY")
        .map_err(failed("bulk-load key records"))?;
    let mut writer =
        BinaryCopyInWriter::new(sink, &[Type::BYTEA, Type::INT8, Type::TEXT, Type::BYTEA]);
    for record in records {
        let row = KeyRow::sealed(keys, record, generation)?;
        row.add_to(keys, digest)?;
        writer
            .write(&[&row.id, &generation_i64, &row.record, &row.seal])
            .map_err(failed("bulk-load key records"))?;
        touched.note(Kind::Key, record.id.to_string(), false);
    }
    writer.finish().map_err(failed("bulk-load key records"))?;

    let sink = c
        .copy_in(
            "COPY keyplane_material (key_id, version, copy, wrapped, checksum) FROM STDIN BINARY",
        )
        .map_err(failed("bulk-load key material"))?;
    let mut writer = BinaryCopyInWriter::new(
        sink,
        &[
            Type::BYTEA,
            Type::INT4,
            Type::INT2,
            Type::BYTEA,
            Type::BYTEA,
        ],
    );
    let spec: BTreeMap<Uuid, keyplane::KeySpec> =
        records.iter().map(|r| (r.id, r.key_spec)).collect();
    for ((key_id, version), m) in &by_slot {
        let slot = MaterialSlot {
            key_id: *key_id,
            version: *version,
            key_spec: spec[key_id],
        };
        let id = key_id.as_bytes().to_vec();
        let version_i32 = *version as i32;
        for copy in 0..material::COPIES {
            let sealed = StoredCopy::sealed(
                keys,
                &slot,
                m.material.expose(keyplane::SecretAccess::granted()),
            )?;
            writer
                .write(&[
                    &id,
                    &version_i32,
                    &(copy as i16),
                    &sealed.wrapped,
                    &sealed.checksum,
                ])
                .map_err(failed("bulk-load key material"))?;
        }
        touched.note(Kind::Material, key_id.to_string(), false);
    }
    writer.finish().map_err(failed("bulk-load key material"))?;
    Ok(())
}
