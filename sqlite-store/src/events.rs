//! The store's event log: repairs, restores, adoptions, root key rotations and store secrets
//! stored or deleted, kept in the store
//! itself (and so in its backups).

use std::path::Path;

use keyplane::{Clock, Result, SystemClock};
use rusqlite::{params, Connection};
use uuid::Uuid;

use crate::contents::{self, Digest, EventColumns};
use crate::errors;
use crate::sealing::StoreKeys;

/// Event kinds.
pub const REPAIR: &str = "repair";
pub const CREATED: &str = "created";
pub const RESTORED: &str = "restored";
pub const ADOPTED: &str = "adopted";
pub const ROOT_KEY_ROTATED: &str = "root-key-rotated";
pub const SECRET_STORED: &str = "secret-stored";
pub const SECRET_DELETED: &str = "secret-deleted";

/// One recorded event.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct StoreEvent {
    pub seq: i64,
    /// Milliseconds since the Unix epoch.
    pub at_ms: i64,
    pub kind: String,
    pub key_id: Option<String>,
    pub version: Option<u32>,
    pub detail: String,
}

/// Appends an event, and adds it to `digest` (the contents digest the caller seals in the same
/// transaction).
pub(crate) fn record(
    conn: &Connection,
    keys: &StoreKeys,
    digest: &mut Digest,
    kind: &str,
    key: Option<(&Uuid, u32)>,
    detail: &str,
    db: &Path,
) -> Result<()> {
    let at_ms = SystemClock.now().0;
    let key_id = key.map(|(id, _)| id.hyphenated().to_string());
    let version = key.map(|(_, v)| v);
    conn.prepare_cached(
        "INSERT INTO events (at_ms, kind, key_id, version, detail) VALUES (?1, ?2, ?3, ?4, ?5)",
    )
    .and_then(|mut stmt| stmt.execute(params![at_ms, kind, key_id, version, detail]))
    .map_err(|e| errors::sql("record an event", db, e))?;
    contents::add_event(
        digest,
        keys,
        &EventColumns {
            seq: conn.last_insert_rowid(),
            at_ms,
            kind,
            key_id: key_id.as_deref(),
            version: version.map(i64::from),
            detail,
        },
    )
}

/// The latest `limit` events, oldest first.
pub(crate) fn list(conn: &Connection, limit: usize, db: &Path) -> Result<Vec<StoreEvent>> {
    let mut events: Vec<StoreEvent> = conn
        .prepare_cached(
            "SELECT seq, at_ms, kind, key_id, version, detail FROM events ORDER BY seq DESC LIMIT ?1",
        )
        .and_then(|mut stmt| {
            stmt.query_map([limit as i64], |r| {
                Ok(StoreEvent {
                    seq: r.get(0)?,
                    at_ms: r.get(1)?,
                    kind: r.get(2)?,
                    key_id: r.get(3)?,
                    version: r.get(4)?,
                    detail: r.get(5)?,
                })
            })?
            .collect()
        })
        .map_err(|e| errors::sql("read the event log", db, e))?;
    events.reverse();
    Ok(events)
}

/// How many events of `kind` the log holds.
pub(crate) fn count(conn: &Connection, kind: &str, db: &Path) -> Result<u64> {
    conn.prepare_cached("SELECT count(*) FROM events WHERE kind = ?1")
        .and_then(|mut stmt| stmt.query_row([kind], |r| r.get::<_, i64>(0)))
        .map(|n| n.max(0) as u64)
        .map_err(|e| errors::sql("count events", db, e))
}
