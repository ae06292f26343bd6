//! Key and alias rows: the engine's records as JSON, each sealed under the root key together with
//! its id and the generation that wrote it, and each an element of the contents digest (the old
//! row's element out, the new one's in, in the commit's transaction). A row copied back from an
//! earlier generation keeps a valid seal, but no longer adds up to the digest (`load`, `verify`)
//! nor matches the change log's latest entry for it (`load_key`, `changes_since`).

use keyplane::key::{AliasRecord, KeyRecord};
use keyplane::{Error, Result};
use keyplane_sqlite::contents::{Digest, Part};
use keyplane_sqlite::sealing::{Purpose, StoreKeys};
use postgres::GenericClient;
use uuid::Uuid;

use crate::errors;
use crate::meta::{to_i64, to_u64};

fn encode<T: serde::Serialize>(record: &T, what: &str) -> Result<String> {
    serde_json::to_string(record).map_err(|e| Error::Internal(format!("encoding {what}: {e}")))
}

/// A key row as stored.
pub(crate) struct KeyRow {
    pub id: Vec<u8>,
    pub generation: u64,
    pub record: String,
    pub seal: Vec<u8>,
}

impl KeyRow {
    fn parts(&self) -> [Vec<u8>; 3] {
        [
            self.id.clone(),
            self.generation.to_be_bytes().to_vec(),
            self.record.clone().into_bytes(),
        ]
    }

    fn shown(&self) -> String {
        Uuid::from_slice(&self.id).map_or_else(|_| format!("{:02x?}", self.id), |u| u.to_string())
    }

    /// The row that stores `record` as written at `generation`, sealed under the store keys (the
    /// one way a key row is made: [`put_key`] and the bulk path).
    pub fn sealed(keys: &StoreKeys, record: &KeyRecord, generation: u64) -> Result<KeyRow> {
        let mut row = KeyRow {
            id: record.id.as_bytes().to_vec(),
            generation,
            record: encode(record, "a key record")?,
            seal: Vec::new(),
        };
        let parts = row.parts();
        let refs: Vec<&[u8]> = parts.iter().map(Vec::as_slice).collect();
        row.seal = keys.seal(Purpose::PgKeyRow, &refs)?;
        Ok(row)
    }

    /// The record, if the seal holds and it names this row's key.
    pub fn open(&self, keys: &StoreKeys) -> std::result::Result<KeyRecord, String> {
        let parts = self.parts();
        let refs: Vec<&[u8]> = parts.iter().map(Vec::as_slice).collect();
        if !keys.check(Purpose::PgKeyRow, &refs, &self.seal) {
            return Err(format!(
                "the row of key {} fails its root-key check (edited, or moved from another key \
                 or store)",
                self.shown()
            ));
        }
        match serde_json::from_str::<KeyRecord>(&self.record) {
            Ok(r) if r.id.as_bytes()[..] == self.id[..] => Ok(r),
            Ok(_) => Err(format!("the row of key {} names another key", self.shown())),
            Err(e) => Err(format!(
                "the row of key {} cannot be read: {e}",
                self.shown()
            )),
        }
    }

    pub fn add_to(&self, keys: &StoreKeys, digest: &mut Digest) -> Result<()> {
        let parts = self.parts();
        let refs: Vec<&[u8]> = parts.iter().map(Vec::as_slice).collect();
        digest.add(keys, Part::Keys, &refs)
    }

    fn remove_from(&self, keys: &StoreKeys, digest: &mut Digest) -> Result<()> {
        let parts = self.parts();
        let refs: Vec<&[u8]> = parts.iter().map(Vec::as_slice).collect();
        digest.remove(keys, Part::Keys, &refs)
    }
}

/// An alias row as stored.
pub(crate) struct AliasRow {
    pub name: String,
    pub target: Vec<u8>,
    pub generation: u64,
    pub record: String,
    pub seal: Vec<u8>,
}

impl AliasRow {
    fn parts(&self) -> [Vec<u8>; 4] {
        [
            self.name.clone().into_bytes(),
            self.target.clone(),
            self.generation.to_be_bytes().to_vec(),
            self.record.clone().into_bytes(),
        ]
    }

    pub fn open(&self, keys: &StoreKeys) -> std::result::Result<AliasRecord, String> {
        let parts = self.parts();
        let refs: Vec<&[u8]> = parts.iter().map(Vec::as_slice).collect();
        if !keys.check(Purpose::PgAliasRow, &refs, &self.seal) {
            return Err(format!(
                "alias {} fails its root-key check (edited or moved)",
                self.name
            ));
        }
        match serde_json::from_str::<AliasRecord>(&self.record) {
            Ok(a) if a.name == self.name && a.target.as_bytes()[..] == self.target[..] => Ok(a),
            Ok(_) => Err(format!(
                "alias {}'s row names another alias or key",
                self.name
            )),
            Err(e) => Err(format!("alias {} cannot be read: {e}", self.name)),
        }
    }

    pub fn add_to(&self, keys: &StoreKeys, digest: &mut Digest) -> Result<()> {
        let parts = self.parts();
        let refs: Vec<&[u8]> = parts.iter().map(Vec::as_slice).collect();
        digest.add(keys, Part::Aliases, &refs)
    }

    fn remove_from(&self, keys: &StoreKeys, digest: &mut Digest) -> Result<()> {
        let parts = self.parts();
        let refs: Vec<&[u8]> = parts.iter().map(Vec::as_slice).collect();
        digest.remove(keys, Part::Aliases, &refs)
    }
}

fn key_row(row: &postgres::Row) -> KeyRow {
    KeyRow {
        id: row.get(0),
        generation: to_u64(row.get(1)),
        record: row.get(2),
        seal: row.get(3),
    }
}

fn alias_row(row: &postgres::Row) -> AliasRow {
    AliasRow {
        name: row.get(0),
        target: row.get(1),
        generation: to_u64(row.get(2)),
        record: row.get(3),
        seal: row.get(4),
    }
}

/// The stored row of key `id`.
pub(crate) fn key(c: &mut impl GenericClient, id: &Uuid, db: &str) -> Result<Option<KeyRow>> {
    c.query_opt(
        "SELECT key_id, generation, record, seal FROM keyplane_keys WHERE key_id = $1",
        &[&&id.as_bytes()[..]],
    )
    .map(|r| r.as_ref().map(key_row))
    .map_err(|e| errors::pg("read a key record", db, e))
}

/// Every key row.
pub(crate) fn all_keys(c: &mut impl GenericClient, db: &str) -> Result<Vec<KeyRow>> {
    c.query(
        "SELECT key_id, generation, record, seal FROM keyplane_keys ORDER BY key_id",
        &[],
    )
    .map(|rows| rows.iter().map(key_row).collect())
    .map_err(|e| errors::pg("read the key records", db, e))
}

/// The stored row of alias `name`.
pub(crate) fn alias(c: &mut impl GenericClient, name: &str, db: &str) -> Result<Option<AliasRow>> {
    c.query_opt(
        "SELECT name, target, generation, record, seal FROM keyplane_aliases WHERE name = $1",
        &[&name],
    )
    .map(|r| r.as_ref().map(alias_row))
    .map_err(|e| errors::pg("read an alias", db, e))
}

/// Every alias row.
pub(crate) fn all_aliases(c: &mut impl GenericClient, db: &str) -> Result<Vec<AliasRow>> {
    c.query(
        "SELECT name, target, generation, record, seal FROM keyplane_aliases ORDER BY name",
        &[],
    )
    .map(|rows| rows.iter().map(alias_row).collect())
    .map_err(|e| errors::pg("read the aliases", db, e))
}

/// Inserts or replaces a key record, written at `generation`.
pub(crate) fn put_key(
    c: &mut impl GenericClient,
    keys: &StoreKeys,
    digest: &mut Digest,
    record: &KeyRecord,
    generation: u64,
    db: &str,
) -> Result<()> {
    if let Some(old) = key(c, &record.id, db)? {
        old.remove_from(keys, digest)?;
    }
    let row = KeyRow::sealed(keys, record, generation)?;
    row.add_to(keys, digest)?;
    c.execute(
        "INSERT INTO keyplane_keys (key_id, generation, record, seal) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (key_id) DO UPDATE SET generation = EXCLUDED.generation, \
         record = EXCLUDED.record, seal = EXCLUDED.seal",
        &[&row.id, &to_i64(generation), &row.record, &row.seal],
    )
    .map(|_| ())
    .map_err(|e| errors::pg("write a key record", db, e))
}

/// Removes a key and its material; returns the names of the aliases that pointed to it, which it
/// removes too.
pub(crate) fn delete_key(
    c: &mut impl GenericClient,
    keys: &StoreKeys,
    digest: &mut Digest,
    id: &Uuid,
    db: &str,
) -> Result<Vec<String>> {
    if let Some(old) = key(c, id, db)? {
        old.remove_from(keys, digest)?;
    }
    let target = &id.as_bytes()[..];
    let aliases: Vec<AliasRow> = c
        .query(
            "SELECT name, target, generation, record, seal FROM keyplane_aliases \
             WHERE target = $1",
            &[&target],
        )
        .map(|rows| rows.iter().map(alias_row).collect())
        .map_err(|e| errors::pg("read a key's aliases", db, e))?;
    for a in &aliases {
        a.remove_from(keys, digest)?;
    }
    for sql in [
        "DELETE FROM keyplane_keys WHERE key_id = $1",
        "DELETE FROM keyplane_aliases WHERE target = $1",
        "DELETE FROM keyplane_material WHERE key_id = $1",
    ] {
        c.execute(sql, &[&target])
            .map_err(|e| errors::pg("delete a key", db, e))?;
    }
    Ok(aliases.into_iter().map(|a| a.name).collect())
}

/// Inserts or replaces an alias, written at `generation`. Its target must exist (after the
/// commit's earlier changes): an alias never points at a deleted key.
pub(crate) fn put_alias(
    c: &mut impl GenericClient,
    keys: &StoreKeys,
    digest: &mut Digest,
    alias_record: &AliasRecord,
    generation: u64,
    db: &str,
) -> Result<()> {
    if key(c, &alias_record.target, db)?.is_none() {
        return Err(Error::Conflict(format!(
            "alias {} cannot point at key {}: the key is no longer in the key store (another \
             node deleted it); retry",
            alias_record.name, alias_record.target
        )));
    }
    if let Some(old) = alias(c, &alias_record.name, db)? {
        old.remove_from(keys, digest)?;
    }
    let mut row = AliasRow {
        name: alias_record.name.clone(),
        target: alias_record.target.as_bytes().to_vec(),
        generation,
        record: encode(alias_record, "an alias")?,
        seal: Vec::new(),
    };
    let parts = row.parts();
    let refs: Vec<&[u8]> = parts.iter().map(Vec::as_slice).collect();
    row.seal = keys.seal(Purpose::PgAliasRow, &refs)?;
    row.add_to(keys, digest)?;
    c.execute(
        "INSERT INTO keyplane_aliases (name, target, generation, record, seal) \
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (name) DO UPDATE SET \
         target = EXCLUDED.target, generation = EXCLUDED.generation, \
         record = EXCLUDED.record, seal = EXCLUDED.seal",
        &[
            &row.name,
            &row.target,
            &to_i64(generation),
            &row.record,
            &row.seal,
        ],
    )
    .map(|_| ())
    .map_err(|e| errors::pg("write an alias", db, e))
}

/// Removes an alias.
pub(crate) fn delete_alias(
    c: &mut impl GenericClient,
    keys: &StoreKeys,
    digest: &mut Digest,
    name: &str,
    db: &str,
) -> Result<()> {
    if let Some(old) = alias(c, name, db)? {
        old.remove_from(keys, digest)?;
    }
    c.execute("DELETE FROM keyplane_aliases WHERE name = $1", &[&name])
        .map(|_| ())
        .map_err(|e| errors::pg("delete an alias", db, e))
}
