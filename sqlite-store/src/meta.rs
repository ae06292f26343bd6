//! The store's one-row `store` table: its id, its root key's kind, parameters and check value,
//! and the generation counter with its seal.

use std::path::Path;

use keyplane::{Error, Result};
use rusqlite::{params, Connection, OptionalExtension};

use crate::contents::{self, Digest};
use crate::errors;
use crate::sealing::StoreKeys;

/// The `store` row.
#[derive(Clone, Debug)]
pub(crate) struct StoreRow {
    pub store_id: [u8; 16],
    pub created_ms: i64,
    pub root_epoch: u64,
    pub root_kind: String,
    pub root_params: String,
    pub root_check: Vec<u8>,
    pub generation: u64,
    pub generation_seal: Vec<u8>,
    /// The sealed contents digest (see the contents module); `None` before schema 3.
    pub contents: Option<Vec<u8>>,
}

impl StoreRow {
    /// Whether `keys` (derived from a candidate root key) are this store's.
    pub(crate) fn root_accepts(&self, keys: &StoreKeys) -> bool {
        keys.root_check_matches(&self.store_id, &self.root_check)
    }

    /// Whether the generation counter is authentic.
    pub(crate) fn generation_is_authentic(&self, keys: &StoreKeys) -> bool {
        keys.generation_sealed(&self.store_id, self.generation, &self.generation_seal)
    }

    /// Refuses a counter the root key does not authenticate.
    pub(crate) fn check_generation(&self, keys: &StoreKeys, db: &Path) -> Result<()> {
        if self.generation_is_authentic(keys) {
            return Ok(());
        }
        Err(Error::Store(format!(
            "the generation counter of {} ({}) fails its root-key check: the store was edited \
             outside keyplane or is damaged; restore it from a backup",
            db.display(),
            self.generation
        )))
    }

    /// The contents digest this row seals (an error if missing or not authentic).
    pub(crate) fn digest(&self, keys: &StoreKeys, db: &Path) -> Result<Digest> {
        contents::open_sealed(
            keys,
            &self.store_id,
            self.generation,
            self.contents.as_deref(),
            db,
        )
    }

    /// Refuses a store whose rows do not add up to the digest this row seals.
    pub(crate) fn check_contents(
        &self,
        conn: &Connection,
        keys: &StoreKeys,
        db: &Path,
    ) -> Result<()> {
        contents::check(
            conn,
            keys,
            &self.store_id,
            self.generation,
            self.contents.as_deref(),
            db,
        )
    }
}

/// Reads the `store` row.
pub(crate) fn read(conn: &Connection, db: &Path) -> Result<StoreRow> {
    let contents_column = if crate::schema::has_contents(conn, db)? {
        "contents"
    } else {
        "NULL"
    };
    let row = conn
        .prepare_cached(&format!(
            "SELECT store_id, created_ms, root_epoch, root_kind, root_params, root_check, \
             generation, generation_seal, {contents_column} FROM store WHERE singleton = 1"
        ))
        .and_then(|mut stmt| {
            stmt.query_row([], |r| {
                Ok((
                    r.get::<_, Vec<u8>>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, String>(4)?,
                    r.get::<_, Vec<u8>>(5)?,
                    r.get::<_, i64>(6)?,
                    r.get::<_, Vec<u8>>(7)?,
                    r.get::<_, Option<Vec<u8>>>(8)?,
                ))
            })
            .optional()
        })
        .map_err(|e| errors::sql("read the store's settings", db, e))?;
    let damaged = || {
        Error::Store(format!(
            "the settings row of {} is missing or damaged; restore the store from a backup",
            db.display()
        ))
    };
    let (id, created_ms, epoch, kind, params, check, generation, seal, sealed_contents) =
        row.ok_or_else(damaged)?;
    Ok(StoreRow {
        store_id: id.try_into().map_err(|_| damaged())?,
        created_ms,
        root_epoch: u64::try_from(epoch).map_err(|_| damaged())?,
        root_kind: kind,
        root_params: params,
        root_check: check,
        generation: u64::try_from(generation).map_err(|_| damaged())?,
        generation_seal: seal,
        contents: sealed_contents,
    })
}

/// The generation alone: what every control-plane call asks for.
pub(crate) fn read_generation(conn: &Connection, db: &Path) -> Result<u64> {
    let generation: i64 = conn
        .prepare_cached("SELECT generation FROM store WHERE singleton = 1")
        .and_then(|mut stmt| stmt.query_row([], |r| r.get(0)))
        .map_err(|e| errors::sql("read the generation", db, e))?;
    u64::try_from(generation)
        .map_err(|_| Error::Store(format!("the generation of {} is negative", db.display())))
}

/// Writes a new `store` row (a new store).
pub(crate) fn insert(conn: &Connection, row: &StoreRow, db: &Path) -> Result<()> {
    conn.execute(
        "INSERT INTO store (singleton, store_id, created_ms, root_epoch, root_kind, root_params, \
         root_check, generation, generation_seal, contents) \
         VALUES (1, ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        params![
            &row.store_id[..],
            row.created_ms,
            row.root_epoch as i64,
            row.root_kind,
            row.root_params,
            row.root_check,
            row.generation as i64,
            row.generation_seal,
            row.contents
        ],
    )
    .map(|_| ())
    .map_err(|e| errors::sql("write the store's settings", db, e))
}

/// Sets the generation, its seal, and the contents digest sealed for it. (A repair, which changes
/// only the event log, keeps the generation and seals the new digest for it.)
pub(crate) fn set_generation(
    conn: &Connection,
    keys: &StoreKeys,
    store_id: &[u8; 16],
    generation: u64,
    digest: &Digest,
    db: &Path,
) -> Result<()> {
    let seal = keys.seal_generation(store_id, generation)?;
    let sealed = digest.seal(keys, store_id, generation)?;
    let generation = i64::try_from(generation)
        .map_err(|_| Error::Store("the generation counter overflowed".into()))?;
    conn.prepare_cached(
        "UPDATE store SET generation = ?1, generation_seal = ?2, contents = ?3 \
         WHERE singleton = 1",
    )
    .and_then(|mut stmt| stmt.execute(params![generation, seal, sealed]))
    .map(|_| ())
    .map_err(|e| errors::sql("advance the generation", db, e))
}

/// Sets a new root key's epoch, kind, parameters and check value.
pub(crate) fn set_root(conn: &Connection, row: &StoreRow, db: &Path) -> Result<()> {
    conn.execute(
        "UPDATE store SET root_epoch = ?1, root_kind = ?2, root_params = ?3, root_check = ?4 \
         WHERE singleton = 1",
        params![
            row.root_epoch as i64,
            row.root_kind,
            row.root_params,
            row.root_check
        ],
    )
    .map(|_| ())
    .map_err(|e| errors::sql("record the new root key", db, e))
}
