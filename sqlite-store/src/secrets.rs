//! Store secrets: small named secrets that belong with a store but are no key's material, such as
//! the audit signing key of the engine that runs on it.
//!
//! A secret is kept like a key version: wrapped with AES-256-GCM under the store's wrapping key
//! (derived from the root key), with `"keyplane-sqlite secret v1" ‖ name` as associated data (so a
//! copy moved onto another name, or into another store, fails to unwrap), in two independent copies
//! (tables `secret_copy_1` and `secret_copy_2`), each with its own nonce and checksum. Reading a
//! secret with one damaged copy rewrites it from the good one and records the repair; root key
//! rotation rewraps every secret in the same transaction as the key material; `verify` judges every
//! copy. Writing or deleting a secret is a change like any other: it advances the generation.
//!
//! The `secrets` table holds one row per secret: a MAC of its current value under the root key
//! (schema 3). A copy is good only when it holds that value, so a copy of an older value put back
//! from an earlier state is a damaged copy ([`Damage::Stale`]), repaired from the current one;
//! the row itself is an element of the contents digest, so putting back all of an older secret,
//! or deleting one, is detected as a replay.

use std::collections::BTreeMap;
use std::path::Path;

use keyplane::LockedBytes;
use keyplane::{Error, Result};
use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;

use crate::contents::{Digest, Part};
use crate::copies::StoredCopy;
use crate::errors;
use crate::events;
use crate::handle::{Change, Connected, SqliteKeyStore};
use crate::meta;
use crate::schema::{self, SECRET_TABLES};
use crate::sealing::{self, Damage, StoreKeys};

/// Copies per secret.
pub(crate) const SECRET_COPIES: usize = SECRET_TABLES.len();
/// Longest secret name.
pub const MAX_SECRET_NAME: usize = 128;

/// What the store holds for one secret: the MAC of its value (schema 3) and its copies.
#[derive(Debug, Default)]
pub(crate) struct SecretRows {
    pub value_mac: Option<Vec<u8>>,
    pub copies: [Option<StoredCopy>; SECRET_COPIES],
    /// Whether the store records value MACs (schema 3): then a copy with no MAC to match is bad.
    pub macs_recorded: bool,
}

impl SecretRows {
    fn is_empty(&self) -> bool {
        self.value_mac.is_none() && self.copies.iter().all(Option::is_none)
    }
}

/// Every copy of every secret, by name.
pub(crate) type SecretCopies = BTreeMap<String, SecretRows>;

/// One damaged copy of a store secret.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct SecretCopyProblem {
    pub name: String,
    /// 1-based.
    pub copy: usize,
    pub damage: Damage,
    pub repaired: bool,
}

/// What judging every copy of every secret found.
pub(crate) struct SecretExam {
    /// The secrets with a good copy, unwrapped.
    pub good: BTreeMap<String, LockedBytes>,
    /// (name, copy index, damage) of every damaged copy.
    pub damaged: Vec<(String, usize, Damage)>,
    /// Secrets with no good copy.
    pub lost: Vec<String>,
    pub copies_checked: usize,
    pub copies_good: usize,
}

/// Refuses a name that is not 1 to 128 characters of `A-Z a-z 0-9 . _ -`.
/// Whether `name` can name a store secret (one rule for every durable store, so that a migration
/// between them never meets a name the other refuses).
pub fn check_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= MAX_SECRET_NAME
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(Error::Validation(format!(
            "'{name}' is not a store secret name: 1 to {MAX_SECRET_NAME} characters of A-Z, a-z, \
             0-9, '.', '_' and '-'"
        )))
    }
}

/// Reads every copy of every secret (nothing in a store of schema 1, which has no secrets).
pub(crate) fn read_all(conn: &Connection, db: &Path) -> Result<SecretCopies> {
    let mut map = SecretCopies::new();
    if !schema::has_secrets(conn, db)? {
        return Ok(map);
    }
    let macs_recorded = schema::has_contents(conn, db)?;
    if macs_recorded {
        let rows: Vec<(String, Vec<u8>)> = conn
            .prepare_cached("SELECT name, value_mac FROM secrets")
            .and_then(|mut stmt| {
                stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                    .collect()
            })
            .map_err(|e| errors::sql("read the store secrets", db, e))?;
        for (name, mac) in rows {
            map.entry(name).or_default().value_mac = Some(mac);
        }
    }
    for (index, table) in SECRET_TABLES.iter().enumerate() {
        let rows: Vec<(String, Vec<u8>, Vec<u8>)> = conn
            .prepare_cached(&format!("SELECT name, wrapped, checksum FROM {table}"))
            .and_then(|mut stmt| {
                stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                    .collect()
            })
            .map_err(|e| errors::sql("read the store secrets", db, e))?;
        for (name, wrapped, checksum) in rows {
            map.entry(name).or_default().copies[index] = Some(StoredCopy { wrapped, checksum });
        }
    }
    for rows in map.values_mut() {
        rows.macs_recorded = macs_recorded;
    }
    Ok(map)
}

/// The recorded value MAC of `name` (schema 3), if any.
fn read_mac(conn: &Connection, name: &str, db: &Path) -> Result<Option<Vec<u8>>> {
    conn.prepare_cached("SELECT value_mac FROM secrets WHERE name = ?1")
        .and_then(|mut stmt| stmt.query_row([name], |r| r.get(0)).optional())
        .map_err(|e| errors::sql("read a store secret", db, e))
}

/// Reads what the store holds for one secret.
fn read_named(conn: &Connection, name: &str, db: &Path) -> Result<SecretRows> {
    let mut rows = SecretRows::default();
    if !schema::has_secrets(conn, db)? {
        return Ok(rows);
    }
    rows.macs_recorded = schema::has_contents(conn, db)?;
    if rows.macs_recorded {
        rows.value_mac = read_mac(conn, name, db)?;
    }
    for (index, table) in SECRET_TABLES.iter().enumerate() {
        rows.copies[index] = conn
            .prepare_cached(&format!(
                "SELECT wrapped, checksum FROM {table} WHERE name = ?1"
            ))
            .and_then(|mut stmt| {
                stmt.query_row([name], |r| {
                    Ok(StoredCopy {
                        wrapped: r.get(0)?,
                        checksum: r.get(1)?,
                    })
                })
                .optional()
            })
            .map_err(|e| errors::sql("read a store secret", db, e))?;
    }
    Ok(rows)
}

/// What one copy's examination found.
fn judge(
    keys: &StoreKeys,
    name: &str,
    rows: &SecretRows,
    copy: Option<&StoredCopy>,
) -> Result<std::result::Result<LockedBytes, Damage>> {
    let unwrapped = match StoredCopy::intact(copy) {
        Ok(wrapped) => keys.unwrap_secret(name, wrapped)?,
        Err(damage) => Err(damage),
    };
    let value = match unwrapped {
        Ok(value) => value,
        Err(damage) => return Ok(Err(damage)),
    };
    let current = match &rows.value_mac {
        Some(mac) => {
            keys.secret_value_matches(name, value.expose(keyplane::SecretAccess::granted()), mac)?
        }
        None => !rows.macs_recorded,
    };
    Ok(if current {
        Ok(value)
    } else {
        Err(Damage::Stale)
    })
}

/// One secret's copies judged: its value if a copy is good, and the damaged copies.
struct Judged {
    value: Option<LockedBytes>,
    /// Index of the first good copy.
    good_copy: Option<usize>,
    damaged: Vec<(usize, Damage)>,
}

fn judge_all(keys: &StoreKeys, name: &str, rows: &SecretRows) -> Result<Judged> {
    let mut judged = Judged {
        value: None,
        good_copy: None,
        damaged: Vec::new(),
    };
    for (index, copy) in rows.copies.iter().enumerate() {
        match judge(keys, name, rows, copy.as_ref())? {
            Ok(value) => {
                if judged.value.is_none() {
                    judged.value = Some(value);
                    judged.good_copy = Some(index);
                }
            }
            Err(damage) => judged.damaged.push((index, damage)),
        }
    }
    Ok(judged)
}

/// Judges every copy of every secret.
pub(crate) fn examine(keys: &StoreKeys, all: &SecretCopies) -> Result<SecretExam> {
    let mut exam = SecretExam {
        good: BTreeMap::new(),
        damaged: Vec::new(),
        lost: Vec::new(),
        copies_checked: 0,
        copies_good: 0,
    };
    for (name, rows) in all {
        let judged = judge_all(keys, name, rows)?;
        exam.copies_checked += SECRET_COPIES;
        exam.copies_good += SECRET_COPIES - judged.damaged.len();
        exam.damaged.extend(
            judged
                .damaged
                .iter()
                .map(|(index, damage)| (name.clone(), *index, *damage)),
        );
        match judged.value {
            Some(value) => {
                exam.good.insert(name.clone(), value);
            }
            None => exam.lost.push(name.clone()),
        }
    }
    Ok(exam)
}

/// Wraps `secret` afresh into copy `index` of `name`.
pub(crate) fn write(
    conn: &Connection,
    keys: &StoreKeys,
    index: usize,
    name: &str,
    root_epoch: u64,
    secret: &[u8],
    db: &Path,
) -> Result<()> {
    let wrapped = keys.wrap_secret(name, secret)?;
    let checksum = sealing::checksum(&wrapped);
    conn.prepare_cached(&format!(
        "INSERT OR REPLACE INTO {} (name, root_epoch, wrapped, checksum) VALUES (?1, ?2, ?3, ?4)",
        SECRET_TABLES[index]
    ))
    .and_then(|mut stmt| stmt.execute(params![name, root_epoch as i64, wrapped, checksum]))
    .map(|_| ())
    .map_err(|e| errors::sql("write a store secret", db, e))
}

/// Writes every copy of `name` and records its value MAC, updating `digest`.
pub(crate) fn write_all(
    conn: &Connection,
    keys: &StoreKeys,
    digest: &mut Digest,
    name: &str,
    root_epoch: u64,
    secret: &[u8],
    db: &Path,
) -> Result<()> {
    (0..SECRET_COPIES)
        .try_for_each(|index| write(conn, keys, index, name, root_epoch, secret, db))?;
    if let Some(old) = read_mac(conn, name, db)? {
        digest.remove(keys, Part::Secrets, &[name.as_bytes(), &old])?;
    }
    let mac = keys.secret_value_mac(name, secret)?;
    digest.add(keys, Part::Secrets, &[name.as_bytes(), &mac])?;
    conn.prepare_cached("INSERT OR REPLACE INTO secrets (name, value_mac) VALUES (?1, ?2)")
        .and_then(|mut stmt| stmt.execute(params![name, mac]))
        .map(|_| ())
        .map_err(|e| errors::sql("write a store secret", db, e))
}

/// Records the value MAC of every secret that has a good copy (the migration to schema 3, whose
/// `secrets` table starts empty).
pub(crate) fn record_value_macs(conn: &Connection, keys: &StoreKeys, db: &Path) -> Result<()> {
    let mut all = read_all(conn, db)?;
    for rows in all.values_mut() {
        rows.macs_recorded = false;
    }
    for (name, value) in examine(keys, &all)?.good {
        let mac = keys.secret_value_mac(&name, value.expose(keyplane::SecretAccess::granted()))?;
        conn.prepare_cached("INSERT OR REPLACE INTO secrets (name, value_mac) VALUES (?1, ?2)")
            .and_then(|mut stmt| stmt.execute(params![name, mac]))
            .map_err(|e| errors::sql("record a store secret's value", db, e))?;
    }
    Ok(())
}

/// Deletes every copy of `name` and its value MAC, updating `digest`; whether there was any.
pub(crate) fn delete(
    conn: &Connection,
    keys: &StoreKeys,
    digest: &mut Digest,
    name: &str,
    db: &Path,
) -> Result<bool> {
    let mut deleted = 0;
    if let Some(old) = read_mac(conn, name, db)? {
        digest.remove(keys, Part::Secrets, &[name.as_bytes(), &old])?;
        deleted += conn
            .prepare_cached("DELETE FROM secrets WHERE name = ?1")
            .and_then(|mut stmt| stmt.execute([name]))
            .map_err(|e| errors::sql("delete a store secret", db, e))?;
    }
    for table in SECRET_TABLES {
        deleted += conn
            .prepare_cached(&format!("DELETE FROM {table} WHERE name = ?1"))
            .and_then(|mut stmt| stmt.execute([name]))
            .map_err(|e| errors::sql("delete a store secret", db, e))?;
    }
    Ok(deleted > 0)
}

/// Rewrites the damaged copies of `names` from a good copy, each as it is now (re-read in this
/// write transaction); records each repair. Returns (name, copy index) of the copies rewritten.
pub(crate) fn repair(
    conn: &Connection,
    keys: &StoreKeys,
    digest: &mut Digest,
    root_epoch: u64,
    names: &[&str],
    db: &Path,
) -> Result<Vec<(String, usize)>> {
    let mut repaired = Vec::new();
    for name in names {
        let rows = read_named(conn, name, db)?;
        let judged = judge_all(keys, name, &rows)?;
        let (Some(value), Some(good)) = (judged.value, judged.good_copy) else {
            continue;
        };
        for (index, damage) in judged.damaged {
            write(
                conn,
                keys,
                index,
                name,
                root_epoch,
                value.expose(keyplane::SecretAccess::granted()),
                db,
            )?;
            events::record(
                conn,
                keys,
                digest,
                events::REPAIR,
                None,
                &format!(
                    "store secret '{name}' copy {}: {damage}; rewritten from copy {}",
                    index + 1,
                    good + 1
                ),
                db,
            )?;
            repaired.push(((*name).to_owned(), index));
        }
    }
    Ok(repaired)
}

impl SqliteKeyStore {
    /// Stores `secret` (1 byte to 64 KiB) under `name` (1 to 128 characters of `A-Z a-z 0-9 .
    /// _ -`), wrapped under the root key in two copies, replacing any secret of that name.
    /// Durable when this returns; advances the generation and records a `secret-stored` event.
    pub fn put_secret(&self, name: &str, secret: &[u8]) -> Result<()> {
        check_name(name)?;
        self.secret_change("store a secret", |tx, keys, digest, epoch, db| {
            write_all(tx, keys, digest, name, epoch, secret, db)?;
            events::record(
                tx,
                keys,
                digest,
                events::SECRET_STORED,
                None,
                &format!("store secret '{name}' stored ({} bytes)", secret.len()),
                db,
            )?;
            Ok(((), true))
        })
    }

    /// The secret stored under `name`, unwrapped into locked memory; `None` if there is none. A
    /// damaged copy is repaired from the good one (when repair on read is on). When no copy is
    /// good the answer is an error, never `None`.
    pub fn get_secret(&self, name: &str) -> Result<Option<LockedBytes>> {
        check_name(name)?;
        let db = self.paths.db.clone();
        let mut connected = self.lock_current()?;
        let rows = {
            let tx = connected
                .conn
                .transaction()
                .map_err(|e| errors::sql("start reading", &db, e))?;
            let rows = read_named(&tx, name, &db)?;
            tx.finish()
                .map_err(|e| errors::sql("finish reading", &db, e))?;
            rows
        };
        if rows.is_empty() {
            return Ok(None);
        }
        let judged = judge_all(&connected.keys, name, &rows)?;
        let Some(value) = judged.value else {
            return Err(lost(name, &db));
        };
        if !judged.damaged.is_empty() && self.options.repair_on_read {
            self.repair_secrets(&mut connected, &[name]);
        }
        Ok(Some(value))
    }

    /// The secret stored under `name`; if there is none, the one `create` makes, stored first.
    /// Atomic across processes: of two creating the same secret at once, one stores it and both
    /// get that one. A secret that exists but has no good copy is an error (never replaced).
    pub fn get_or_create_secret<F>(&self, name: &str, create: F) -> Result<LockedBytes>
    where
        F: FnOnce() -> Result<LockedBytes>,
    {
        if let Some(existing) = self.get_secret(name)? {
            return Ok(existing);
        }
        self.secret_change("store a new secret", |tx, keys, digest, epoch, db| {
            let rows = read_named(tx, name, db)?;
            if !rows.is_empty() {
                // Another process stored it meanwhile.
                let judged = judge_all(keys, name, &rows)?;
                return match judged.value {
                    Some(value) => Ok((value, false)),
                    None => Err(lost(name, db)),
                };
            }
            let secret = create()?;
            write_all(
                tx,
                keys,
                digest,
                name,
                epoch,
                secret.expose(keyplane::SecretAccess::granted()),
                db,
            )?;
            events::record(
                tx,
                keys,
                digest,
                events::SECRET_STORED,
                None,
                &format!("store secret '{name}' created ({} bytes)", secret.len()),
                db,
            )?;
            Ok((secret, true))
        })
    }

    /// Deletes the secret `name`; whether there was one.
    pub fn delete_secret(&self, name: &str) -> Result<bool> {
        check_name(name)?;
        self.secret_change("delete a secret", |tx, keys, digest, _, db| {
            let deleted = delete(tx, keys, digest, name, db)?;
            if deleted {
                events::record(
                    tx,
                    keys,
                    digest,
                    events::SECRET_DELETED,
                    None,
                    &format!("store secret '{name}' deleted"),
                    db,
                )?;
            }
            Ok((deleted, deleted))
        })
    }

    /// The names of the stored secrets, sorted.
    pub fn secret_names(&self) -> Result<Vec<String>> {
        let db = self.paths.db.clone();
        let mut connected = self.lock()?;
        let tx = connected
            .conn
            .transaction()
            .map_err(|e| errors::sql("start reading", &db, e))?;
        let names = read_all(&tx, &db)?.into_keys().collect();
        tx.finish()
            .map_err(|e| errors::sql("finish reading", &db, e))?;
        Ok(names)
    }

    /// Runs `change` in one write transaction under the current root key; when it says it
    /// changed something, advances the generation (sealed) before committing.
    fn secret_change<T>(
        &self,
        what: &str,
        change: impl FnOnce(&Connection, &StoreKeys, &mut Digest, u64, &Path) -> Result<(T, bool)>,
    ) -> Result<T> {
        let db = self.paths.db.clone();
        let mut connected = self.lock_current()?;
        let Change {
            tx,
            row,
            keys,
            store_id,
            root_epoch,
        } = connected.begin_change(&format!("start to {what}"), &db)?;
        if !schema::has_secrets(&tx, &db)? {
            return Err(Error::Store(format!(
                "the store {} has no place for secrets (schema 1): reopen it to migrate it",
                db.display()
            )));
        }
        let mut digest = row.digest(keys, &db)?;
        let (out, changed) = change(&tx, keys, &mut digest, root_epoch, &db)?;
        let generation = row.generation + 1;
        if changed {
            meta::set_generation(&tx, keys, store_id, generation, &digest, &db)?;
        }
        tx.commit()
            .map_err(|e| errors::sql(&format!("commit ({what})"), &db, e))?;
        let store_id = *store_id;
        drop(connected);
        if changed {
            self.note_generation(&store_id, generation);
        }
        Ok(out)
    }

    /// Repairs the damaged copies of `names` in their own write transaction; a failure (a full
    /// disk) leaves the damage for the next read and is reported on stderr.
    pub(crate) fn repair_secrets(
        &self,
        connected: &mut Connected,
        names: &[&str],
    ) -> Vec<(String, usize)> {
        self.repair_in_transaction(connected, "store secrets", |tx, keys, digest, epoch| {
            repair(tx, keys, digest, epoch, names, &self.paths.db)
        })
    }
}

fn lost(name: &str, db: &Path) -> Error {
    Error::Store(format!(
        "every copy of the store secret '{name}' in {} is damaged; run `keyplane store verify` \
         and restore the store from a backup",
        db.display()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_names_are_short_and_plain() {
        for ok in [
            "audit-signing-key",
            "a",
            "A.b_c-9",
            &"x".repeat(MAX_SECRET_NAME),
        ] {
            check_name(ok).unwrap();
        }
        for bad in ["", "a b", "a/b", "é", &"x".repeat(MAX_SECRET_NAME + 1)] {
            assert_eq!(check_name(bad).unwrap_err().code(), "ValidationException");
        }
    }
}
