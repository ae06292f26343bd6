//! Migrating a store of an older schema in place, under its root key (the schema module says what
//! each version adds).

use std::path::Path;

use keyplane::Result;
use rusqlite::Connection;

use crate::schema::{CREATE_V2, CREATE_V3, CREATE_V4, SCHEMA_VERSION};
use crate::sealing::StoreKeys;
use crate::{contents, errors, meta, secrets};

/// Brings an open store of an older schema to [`SCHEMA_VERSION`], in one write transaction (which
/// re-reads the version, so two processes opening an old store at once migrate it once), under
/// the root key's store keys (version 3 records each secret's value MAC and seals the contents
/// digest of what the store holds now). Returns the version the store had.
pub(crate) fn migrate(conn: &mut Connection, keys: &StoreKeys, db: &Path) -> Result<i32> {
    let version: i32 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(|e| errors::sql("read the schema version", db, e))?;
    if version >= SCHEMA_VERSION {
        return Ok(version);
    }
    let tx = conn
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .map_err(|e| errors::sql("start the schema migration", db, e))?;
    let version: i32 = tx
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(|e| errors::sql("read the schema version", db, e))?;
    if version < 2 {
        tx.execute_batch(CREATE_V2)
            .map_err(|e| errors::sql("add the store secret tables (schema 1 to 2)", db, e))?;
    }
    if version < 3 {
        tx.execute_batch(CREATE_V3)
            .map_err(|e| errors::sql("add the contents digest (schema 2 to 3)", db, e))?;
        secrets::record_value_macs(&tx, keys, db)?;
        let row = meta::read(&tx, db)?;
        row.check_generation(keys, db)?;
        let digest = contents::compute(&tx, keys, db)?;
        meta::set_generation(&tx, keys, &row.store_id, row.generation, &digest, db)?;
    }
    if version < 4 {
        // Empty: a follower behind the migration's generation loads everything once.
        tx.execute_batch(CREATE_V4)
            .map_err(|e| errors::sql("add the change log (schema 3 to 4)", db, e))?;
    }
    tx.execute_batch(&format!("PRAGMA user_version = {SCHEMA_VERSION};"))
        .map_err(|e| errors::sql("set the schema version", db, e))?;
    tx.commit()
        .map_err(|e| errors::sql("commit the schema migration", db, e))?;
    Ok(version)
}
