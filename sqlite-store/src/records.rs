//! Key and alias records: JSON of the engine's `KeyRecord` / `AliasRecord`, each row sealed under
//! the root key together with its primary key, so an edited or moved row is detected. Every write
//! also updates the contents digest (an old row's element out, the new row's in), so a row put
//! back from an earlier state, or dropped, is detected too.

use std::path::Path;

use keyplane::key::{AliasRecord, KeyRecord};
use keyplane::{Error, Result};
use rusqlite::{params, Connection, OptionalExtension};
use uuid::Uuid;

use crate::contents::{Digest, Part};
use crate::errors;
use crate::schema::COPY_TABLES;
use crate::sealing::{Purpose, StoreKeys};

/// Records read back, and the rows that could not be (each described).
#[derive(Debug, Default)]
pub(crate) struct Records {
    pub keys: Vec<KeyRecord>,
    pub aliases: Vec<AliasRecord>,
    pub problems: Vec<String>,
}

fn encode<T: serde::Serialize>(record: &T, what: &str) -> Result<String> {
    serde_json::to_string(record).map_err(|e| Error::Internal(format!("encoding {what}: {e}")))
}

/// The stored JSON of key `id`, as stored (for its digest element), if any.
fn stored_key(conn: &Connection, id: &[u8], db: &Path) -> Result<Option<String>> {
    conn.prepare_cached("SELECT record FROM keys WHERE key_id = ?1")
        .and_then(|mut stmt| stmt.query_row([id], |r| r.get(0)).optional())
        .map_err(|e| errors::sql("read a key record", db, e))
}

/// The stored target and JSON of alias `name`, if any.
fn stored_alias(conn: &Connection, name: &str, db: &Path) -> Result<Option<(Vec<u8>, String)>> {
    conn.prepare_cached("SELECT target, record FROM aliases WHERE name = ?1")
        .and_then(|mut stmt| {
            stmt.query_row([name], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()
        })
        .map_err(|e| errors::sql("read an alias", db, e))
}

/// Inserts or replaces a key record.
pub(crate) fn put_key(
    conn: &Connection,
    keys: &StoreKeys,
    digest: &mut Digest,
    record: &KeyRecord,
    db: &Path,
) -> Result<()> {
    let id = &record.id.as_bytes()[..];
    if let Some(old) = stored_key(conn, id, db)? {
        digest.remove(keys, Part::Keys, &[id, old.as_bytes()])?;
    }
    let json = encode(record, "a key record")?;
    digest.add(keys, Part::Keys, &[id, json.as_bytes()])?;
    let seal = keys.seal(Purpose::KeyRecord, &[record.id.as_bytes(), json.as_bytes()])?;
    conn.prepare_cached("INSERT OR REPLACE INTO keys (key_id, record, seal) VALUES (?1, ?2, ?3)")
        .and_then(|mut stmt| stmt.execute(params![&record.id.as_bytes()[..], json, seal]))
        .map(|_| ())
        .map_err(|e| errors::sql("write a key record", db, e))
}

/// Removes a key, every copy of its material and its aliases.
pub(crate) fn delete_key(
    conn: &Connection,
    keys: &StoreKeys,
    digest: &mut Digest,
    id: &Uuid,
    db: &Path,
) -> Result<()> {
    let id = &id.as_bytes()[..];
    if let Some(old) = stored_key(conn, id, db)? {
        digest.remove(keys, Part::Keys, &[id, old.as_bytes()])?;
    }
    let aliases: Vec<(String, Vec<u8>, String)> = conn
        .prepare_cached("SELECT name, target, record FROM aliases WHERE target = ?1")
        .and_then(|mut stmt| {
            stmt.query_map([id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                .collect()
        })
        .map_err(|e| errors::sql("read a key's aliases", db, e))?;
    for (name, target, json) in aliases {
        digest.remove(
            keys,
            Part::Aliases,
            &[name.as_bytes(), &target, json.as_bytes()],
        )?;
    }
    let mut statements = vec![
        "DELETE FROM keys WHERE key_id = ?1".to_string(),
        "DELETE FROM aliases WHERE target = ?1".to_string(),
    ];
    statements.extend(
        COPY_TABLES
            .iter()
            .map(|t| format!("DELETE FROM {t} WHERE key_id = ?1")),
    );
    for sql in statements {
        conn.prepare_cached(&sql)
            .and_then(|mut stmt| stmt.execute([id]))
            .map_err(|e| errors::sql("delete a key", db, e))?;
    }
    Ok(())
}

/// Inserts or replaces an alias.
pub(crate) fn put_alias(
    conn: &Connection,
    keys: &StoreKeys,
    digest: &mut Digest,
    alias: &AliasRecord,
    db: &Path,
) -> Result<()> {
    if let Some((target, old)) = stored_alias(conn, &alias.name, db)? {
        digest.remove(
            keys,
            Part::Aliases,
            &[alias.name.as_bytes(), &target, old.as_bytes()],
        )?;
    }
    let json = encode(alias, "an alias")?;
    digest.add(
        keys,
        Part::Aliases,
        &[
            alias.name.as_bytes(),
            alias.target.as_bytes(),
            json.as_bytes(),
        ],
    )?;
    let seal = keys.seal(
        Purpose::AliasRecord,
        &[alias.name.as_bytes(), json.as_bytes()],
    )?;
    conn.prepare_cached(
        "INSERT OR REPLACE INTO aliases (name, target, record, seal) VALUES (?1, ?2, ?3, ?4)",
    )
    .and_then(|mut stmt| {
        stmt.execute(params![
            alias.name,
            &alias.target.as_bytes()[..],
            json,
            seal
        ])
    })
    .map(|_| ())
    .map_err(|e| errors::sql("write an alias", db, e))
}

/// Removes an alias.
pub(crate) fn delete_alias(
    conn: &Connection,
    keys: &StoreKeys,
    digest: &mut Digest,
    name: &str,
    db: &Path,
) -> Result<()> {
    if let Some((target, old)) = stored_alias(conn, name, db)? {
        digest.remove(
            keys,
            Part::Aliases,
            &[name.as_bytes(), &target, old.as_bytes()],
        )?;
    }
    conn.prepare_cached("DELETE FROM aliases WHERE name = ?1")
        .and_then(|mut stmt| stmt.execute([name]))
        .map(|_| ())
        .map_err(|e| errors::sql("delete an alias", db, e))
}

/// Re-seals every record under `keys` (a root key rotation, which then recomputes the contents
/// digest under the new key).
pub(crate) fn reseal_all(
    conn: &Connection,
    keys: &StoreKeys,
    records: &Records,
    db: &Path,
) -> Result<()> {
    let mut scratch = Digest::default();
    for record in &records.keys {
        put_key(conn, keys, &mut scratch, record, db)?;
    }
    for alias in &records.aliases {
        put_alias(conn, keys, &mut scratch, alias, db)?;
    }
    Ok(())
}

/// Reads one key record, checking its seal; `None` if there is no such key.
pub(crate) fn read_key(
    conn: &Connection,
    keys: &StoreKeys,
    id: &Uuid,
    db: &Path,
) -> Result<Option<KeyRecord>> {
    let row: Option<(String, Vec<u8>)> = conn
        .prepare_cached("SELECT record, seal FROM keys WHERE key_id = ?1")
        .and_then(|mut stmt| {
            stmt.query_row([&id.as_bytes()[..]], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()
        })
        .map_err(|e| errors::sql("read a key record", db, e))?;
    let Some((json, seal)) = row else {
        return Ok(None);
    };
    if !keys.check(Purpose::KeyRecord, &[id.as_bytes(), json.as_bytes()], &seal) {
        return Err(Error::Store(format!(
            "the record of key {id} fails its root-key check (edited or damaged)"
        )));
    }
    serde_json::from_str(&json)
        .map(Some)
        .map_err(|e| Error::Store(format!("the record of key {id} cannot be read: {e}")))
}

/// Reads every key and alias record, checking each seal.
pub(crate) fn read_all(conn: &Connection, keys: &StoreKeys, db: &Path) -> Result<Records> {
    let mut out = Records::default();
    let rows: Vec<(Vec<u8>, String, Vec<u8>)> = conn
        .prepare_cached("SELECT key_id, record, seal FROM keys ORDER BY key_id")
        .and_then(|mut stmt| {
            stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                .collect()
        })
        .map_err(|e| errors::sql("read the key records", db, e))?;
    for (id, json, seal) in rows {
        let shown = Uuid::from_slice(&id).map_or_else(|_| format!("{id:02x?}"), |u| u.to_string());
        if !keys.check(Purpose::KeyRecord, &[&id, json.as_bytes()], &seal) {
            out.problems.push(format!(
                "the record of key {shown} fails its root-key check (edited or damaged)"
            ));
            continue;
        }
        match serde_json::from_str::<KeyRecord>(&json) {
            Ok(record) if record.id.as_bytes()[..] == id[..] => out.keys.push(record),
            Ok(_) => out
                .problems
                .push(format!("the record of key {shown} names another key")),
            Err(e) => out
                .problems
                .push(format!("the record of key {shown} cannot be read: {e}")),
        }
    }
    let rows: Vec<(String, String, Vec<u8>)> = conn
        .prepare_cached("SELECT name, record, seal FROM aliases ORDER BY name")
        .and_then(|mut stmt| {
            stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                .collect()
        })
        .map_err(|e| errors::sql("read the aliases", db, e))?;
    for (name, json, seal) in rows {
        if !keys.check(
            Purpose::AliasRecord,
            &[name.as_bytes(), json.as_bytes()],
            &seal,
        ) {
            out.problems.push(format!(
                "alias {name} fails its root-key check (edited or damaged)"
            ));
            continue;
        }
        match serde_json::from_str::<AliasRecord>(&json) {
            Ok(alias) if alias.name == name => out.aliases.push(alias),
            Ok(_) => out
                .problems
                .push(format!("alias {name}'s record names another alias")),
            Err(e) => out
                .problems
                .push(format!("alias {name} cannot be read: {e}")),
        }
    }
    Ok(out)
}
