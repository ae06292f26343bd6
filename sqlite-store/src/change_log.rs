//! The change log: what each commit touched, so that an engine sharing the store applies only
//! what changed since the generation it saw ([`KeyStore::changes_since`]) instead of reloading
//! everything.
//!
//! One row per generation, written in the commit's transaction: the key ids, alias names and
//! whether custom key stores changed, each key and alias with the MAC (under a key derived from
//! the root key) of its row's content as the commit left it, or none where the commit deleted it.
//! The row is sealed under the root key with the store id and its generation.
//!
//! Reading since generation `g` at generation `c` needs the rows `g + 1 ..= c`, every one
//! present and sealed; otherwise (trimmed, a generation advanced by something that does not log
//! such as a restore or root key rotation, a row deleted or edited) the answer is `None` and the
//! reader loads everything, which checks the whole contents digest. For each key and alias the
//! latest entry's MAC must match the row read now: a row put back from an earlier state (which
//! still passes its own seal) does not, and is refused as a replay: the guarantee the contents
//! digest gives a full load, kept for the incremental path at O(changes).
//!
//! The log keeps the last [`KEEP`] generations.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use keyplane::key::{AliasRecord, KeyRecord};
use keyplane::sealing::constant_time_eq;
use keyplane::store::StoreChange;
use keyplane::{Error, Result};
use rusqlite::{params, Connection, OptionalExtension};
use uuid::Uuid;

use crate::errors;
use crate::sealing::{Purpose, StoreKeys};

/// Generations the log keeps (a follower further behind loads everything).
pub(crate) const KEEP: u64 = 10_000;

/// What one commit (or a run of them) touched.
#[derive(Debug, Default)]
pub(crate) struct Touched {
    pub keys: BTreeSet<Uuid>,
    pub aliases: BTreeSet<String>,
    pub custom_key_stores: bool,
}

/// What `changes` touch, read before they are applied (a deleted key's aliases go with it).
pub(crate) fn touched(
    conn: &Connection,
    changes: &[StoreChange<'_>],
    db: &Path,
) -> Result<Touched> {
    let mut out = Touched::default();
    for change in changes {
        match change {
            StoreChange::PutKey(record) => {
                out.keys.insert(record.id);
            }
            StoreChange::PutMaterial { key_id, .. }
            | StoreChange::DeleteMaterial { key_id, .. } => {
                out.keys.insert(*key_id);
            }
            StoreChange::DeleteKey(id) => {
                out.keys.insert(*id);
                let names: Vec<String> = conn
                    .prepare_cached("SELECT name FROM aliases WHERE target = ?1")
                    .and_then(|mut stmt| {
                        stmt.query_map([&id.as_bytes()[..]], |r| r.get(0))?
                            .collect()
                    })
                    .map_err(|e| errors::sql("read a key's aliases", db, e))?;
                out.aliases.extend(names);
            }
            StoreChange::PutAlias(alias) => {
                out.aliases.insert(alias.name.clone());
            }
            StoreChange::DeleteAlias(name) => {
                out.aliases.insert((*name).to_owned());
            }
            StoreChange::PutCustomKeyStore { .. } | StoreChange::DeleteCustomKeyStore(_) => {
                out.custom_key_stores = true;
            }
        }
    }
    Ok(out)
}

/// One logged row's entries, as stored (JSON).
#[derive(serde::Serialize, serde::Deserialize, Default)]
struct Entries {
    /// Key id (hyphenated) and the MAC (hex) of its row, or none where deleted.
    k: Vec<(String, Option<String>)>,
    /// Alias name and the MAC (hex) of its row, or none where deleted.
    a: Vec<(String, Option<String>)>,
    /// Whether any custom key store changed.
    c: bool,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if text.len() % 2 != 0 {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

/// A key row's content MAC: its id and stored JSON.
fn key_mac(keys: &StoreKeys, id: &Uuid, json: &str) -> Result<Vec<u8>> {
    keys.row_mac(&[b"key", id.as_bytes(), json.as_bytes()])
}

/// An alias row's content MAC: its name, target and stored JSON.
fn alias_mac(keys: &StoreKeys, name: &str, target: &[u8], json: &str) -> Result<Vec<u8>> {
    keys.row_mac(&[b"alias", name.as_bytes(), target, json.as_bytes()])
}

/// A key row as stored: JSON and seal.
fn key_row(conn: &Connection, id: &Uuid, db: &Path) -> Result<Option<(String, Vec<u8>)>> {
    conn.prepare_cached("SELECT record, seal FROM keys WHERE key_id = ?1")
        .and_then(|mut stmt| {
            stmt.query_row([&id.as_bytes()[..]], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()
        })
        .map_err(|e| errors::sql("read a key record", db, e))
}

/// An alias row as stored: target, JSON and seal.
type AliasRow = (Vec<u8>, String, Vec<u8>);

/// An alias row as stored, if any.
fn alias_row(conn: &Connection, name: &str, db: &Path) -> Result<Option<AliasRow>> {
    conn.prepare_cached("SELECT target, record, seal FROM aliases WHERE name = ?1")
        .and_then(|mut stmt| {
            stmt.query_row([name], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .optional()
        })
        .map_err(|e| errors::sql("read an alias", db, e))
}

/// Logs what the commit of `generation` touched, as its transaction left it (call after applying
/// the changes, in the same transaction), and trims the log to [`KEEP`] generations.
pub(crate) fn record(
    conn: &Connection,
    keys: &StoreKeys,
    store_id: &[u8; 16],
    generation: u64,
    touched: &Touched,
    db: &Path,
) -> Result<()> {
    let mut entries = Entries {
        c: touched.custom_key_stores,
        ..Entries::default()
    };
    for id in &touched.keys {
        let mac = match key_row(conn, id, db)? {
            Some((json, _)) => Some(hex(&key_mac(keys, id, &json)?)),
            None => None,
        };
        entries.k.push((id.hyphenated().to_string(), mac));
    }
    for name in &touched.aliases {
        let mac = match alias_row(conn, name, db)? {
            Some((target, json, _)) => Some(hex(&alias_mac(keys, name, &target, &json)?)),
            None => None,
        };
        entries.a.push((name.clone(), mac));
    }
    let text = serde_json::to_string(&entries)
        .map_err(|e| Error::Internal(format!("encoding a change log row: {e}")))?;
    let seal = keys.seal(
        Purpose::ChangeLog,
        &[store_id, &generation.to_be_bytes(), text.as_bytes()],
    )?;
    let write = |e| errors::sql("write the change log", db, e);
    let generation_sql =
        i64::try_from(generation).map_err(|_| Error::Internal("generation out of range".into()))?;
    conn.prepare_cached(
        "INSERT OR REPLACE INTO change_log (generation, entries, seal) VALUES (?1, ?2, ?3)",
    )
    .and_then(|mut stmt| stmt.execute(params![generation_sql, text, seal]))
    .map_err(write)?;
    conn.prepare_cached("DELETE FROM change_log WHERE generation <= ?1")
        .and_then(|mut stmt| stmt.execute([generation_sql - KEEP as i64]))
        .map_err(write)?;
    Ok(())
}

/// What changed between two generations: each key and alias with its current record (`None`
/// where deleted), checked against the log.
#[derive(Debug, Default)]
pub(crate) struct Changed {
    pub keys: Vec<(Uuid, Option<KeyRecord>)>,
    pub aliases: Vec<(String, Option<AliasRecord>)>,
    pub custom_key_stores: bool,
}

/// Reads what changed after `from`, the store being at `current` (read in the same transaction);
/// `None` where the log does not cover every generation in between with a sealed row.
pub(crate) fn read_since(
    conn: &Connection,
    keys: &StoreKeys,
    store_id: &[u8; 16],
    from: u64,
    current: u64,
    db: &Path,
) -> Result<Option<Changed>> {
    let (Ok(from_sql), Ok(current_sql)) = (i64::try_from(from), i64::try_from(current)) else {
        return Ok(None);
    };
    let rows: Vec<(i64, String, Vec<u8>)> = conn
        .prepare_cached(
            "SELECT generation, entries, seal FROM change_log \
             WHERE generation > ?1 AND generation <= ?2 ORDER BY generation",
        )
        .and_then(|mut stmt| {
            stmt.query_map([from_sql, current_sql], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })?
            .collect()
        })
        .map_err(|e| errors::sql("read the change log", db, e))?;
    if rows.len() as u64 != current - from {
        return Ok(None);
    }
    // The latest MAC of each key and alias: later generations override earlier ones.
    let mut latest_keys: BTreeMap<Uuid, Option<Vec<u8>>> = BTreeMap::new();
    let mut latest_aliases: BTreeMap<String, Option<Vec<u8>>> = BTreeMap::new();
    let mut custom_key_stores = false;
    for (expected, (generation, text, seal)) in (from + 1..).zip(rows) {
        if u64::try_from(generation).ok() != Some(expected)
            || !keys.check(
                Purpose::ChangeLog,
                &[store_id, &expected.to_be_bytes(), text.as_bytes()],
                &seal,
            )
        {
            // Not this store's log for these generations (a gap, or a row sealed under a
            // retired root key): load everything, which checks everything.
            return Ok(None);
        }
        let Ok(entries) = serde_json::from_str::<Entries>(&text) else {
            return Ok(None);
        };
        for (id, mac) in entries.k {
            let Ok(id) = Uuid::try_parse(&id) else {
                return Ok(None);
            };
            latest_keys.insert(id, mac.and_then(|m| unhex(&m)));
        }
        for (name, mac) in entries.a {
            latest_aliases.insert(name, mac.and_then(|m| unhex(&m)));
        }
        custom_key_stores |= entries.c;
    }
    let replay = |what: String| {
        Error::Store(format!(
            "replay detected: {what} in {} does not match the change log's authenticated record \
             of its last change: a row was put back from an earlier state, dropped or added by \
             someone who could write the file but has no root key; run `keyplane store verify` \
             and restore the store from a backup",
            db.display()
        ))
    };
    let mut out = Changed {
        custom_key_stores,
        ..Changed::default()
    };
    for (id, logged) in latest_keys {
        let row = key_row(conn, &id, db)?;
        let record = match (row, logged) {
            (None, None) => None,
            (Some((json, seal)), Some(logged)) => {
                if !keys.check(Purpose::KeyRecord, &[id.as_bytes(), json.as_bytes()], &seal) {
                    return Err(Error::Store(format!(
                        "the record of key {id} fails its root-key check (edited or damaged)"
                    )));
                }
                if !constant_time_eq(&key_mac(keys, &id, &json)?, &logged) {
                    return Err(replay(format!("the record of key {id}")));
                }
                let record: KeyRecord = serde_json::from_str(&json).map_err(|e| {
                    Error::Store(format!("the record of key {id} cannot be read: {e}"))
                })?;
                if record.id != id {
                    return Err(Error::Store(format!(
                        "the record of key {id} names another key"
                    )));
                }
                Some(record)
            }
            _ => return Err(replay(format!("the record of key {id}"))),
        };
        out.keys.push((id, record));
    }
    for (name, logged) in latest_aliases {
        let row = alias_row(conn, &name, db)?;
        let alias = match (row, logged) {
            (None, None) => None,
            (Some((target, json, seal)), Some(logged)) => {
                if !keys.check(
                    Purpose::AliasRecord,
                    &[name.as_bytes(), json.as_bytes()],
                    &seal,
                ) {
                    return Err(Error::Store(format!(
                        "alias {name} fails its root-key check (edited or damaged)"
                    )));
                }
                if !constant_time_eq(&alias_mac(keys, &name, &target, &json)?, &logged) {
                    return Err(replay(format!("alias {name}")));
                }
                let alias: AliasRecord = serde_json::from_str(&json)
                    .map_err(|e| Error::Store(format!("alias {name} cannot be read: {e}")))?;
                if alias.name != name || alias.target.as_bytes()[..] != target[..] {
                    return Err(Error::Store(format!(
                        "alias {name}'s record names another alias"
                    )));
                }
                Some(alias)
            }
            _ => return Err(replay(format!("alias {name}"))),
        };
        out.aliases.push((name, alias));
    }
    Ok(Some(out))
}
