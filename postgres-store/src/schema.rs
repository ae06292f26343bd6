//! The database schema, created and migrated by keyplane: a `keyplane_schema` table holds the
//! version; each migration runs in one transaction (under an advisory lock, so two nodes starting
//! at once do not both apply it); a database of a newer schema than this build knows is refused.

use keyplane::{Error, Result};
use postgres::Client;

use crate::errors;

/// The schema version this build writes.
pub const SCHEMA_VERSION: i32 = 1;

/// The advisory lock key migrations hold (`pg_advisory_xact_lock`).
const MIGRATION_LOCK: i64 = 0x6b65_7970_6c61_6e65; // "keyplane"

/// Migration `n` brings the schema from version `n` to `n + 1`.
const MIGRATIONS: &[&str] = &[
    // 0 -> 1: the store.
    "CREATE TABLE keyplane_meta (
        id smallint PRIMARY KEY CHECK (id = 1),
        store_id bytea NOT NULL,
        created_ms bigint NOT NULL,
        root_kind text NOT NULL,
        root_params text NOT NULL,
        root_check bytea NOT NULL,
        generation bigint NOT NULL,
        generation_seal bytea NOT NULL,
        contents bytea NOT NULL,
        log_floor bigint NOT NULL DEFAULT 0
    );
    CREATE TABLE keyplane_keys (
        key_id bytea PRIMARY KEY,
        generation bigint NOT NULL,
        record text NOT NULL,
        seal bytea NOT NULL
    );
    CREATE TABLE keyplane_aliases (
        name text PRIMARY KEY,
        target bytea NOT NULL,
        generation bigint NOT NULL,
        record text NOT NULL,
        seal bytea NOT NULL
    );
    CREATE INDEX keyplane_aliases_target ON keyplane_aliases (target);
    CREATE TABLE keyplane_material (
        key_id bytea NOT NULL,
        version integer NOT NULL,
        copy smallint NOT NULL,
        wrapped bytea NOT NULL,
        checksum bytea NOT NULL,
        PRIMARY KEY (key_id, version, copy)
    );
    CREATE TABLE keyplane_secrets (
        name text PRIMARY KEY,
        generation bigint NOT NULL,
        value_mac bytea NOT NULL,
        seal bytea NOT NULL,
        copy0 bytea NOT NULL,
        copy1 bytea NOT NULL
    );
    CREATE TABLE keyplane_changes (
        generation bigint NOT NULL,
        kind text NOT NULL,
        name text NOT NULL,
        deleted boolean NOT NULL,
        count integer NOT NULL,
        seal bytea NOT NULL,
        PRIMARY KEY (generation, kind, name)
    );
    CREATE INDEX keyplane_changes_name ON keyplane_changes (kind, name, generation);",
];

/// The schema version of the database (0: no keyplane schema yet).
pub fn version(client: &mut Client, db: &str) -> Result<i32> {
    let exists: bool = client
        .query_one("SELECT to_regclass('keyplane_schema') IS NOT NULL", &[])
        .map_err(|e| errors::pg("read the schema version", db, e))?
        .get(0);
    if !exists {
        return Ok(0);
    }
    let row = client
        .query_opt("SELECT max(version) FROM keyplane_schema", &[])
        .map_err(|e| errors::pg("read the schema version", db, e))?;
    Ok(row.and_then(|r| r.get::<_, Option<i32>>(0)).unwrap_or(0))
}

fn newer(found: i32, db: &str) -> Error {
    Error::Store(format!(
        "the key store {db} has schema version {found}, newer than this keyplane reads \
         ({SCHEMA_VERSION}): upgrade keyplane on this node"
    ))
}

/// Brings the schema to [`SCHEMA_VERSION`], one transaction per migration.
pub fn migrate(client: &mut Client, db: &str) -> Result<()> {
    loop {
        let mut tx = client
            .transaction()
            .map_err(|e| errors::pg("migrate the schema", db, e))?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
            .map_err(|e| errors::pg("migrate the schema", db, e))?;
        tx.batch_execute("CREATE TABLE IF NOT EXISTS keyplane_schema (version integer NOT NULL)")
            .map_err(|e| errors::pg("create the schema table", db, e))?;
        let current: i32 = tx
            .query_one("SELECT coalesce(max(version), 0) FROM keyplane_schema", &[])
            .map_err(|e| errors::pg("read the schema version", db, e))?
            .get(0);
        if current > SCHEMA_VERSION {
            return Err(newer(current, db));
        }
        if current == SCHEMA_VERSION {
            tx.commit()
                .map_err(|e| errors::pg("migrate the schema", db, e))?;
            return Ok(());
        }
        tx.batch_execute(MIGRATIONS[current as usize])
            .map_err(|e| {
                errors::pg(
                    &format!("migrate the schema to version {}", current + 1),
                    db,
                    e,
                )
            })?;
        tx.execute(
            "INSERT INTO keyplane_schema (version) VALUES ($1)",
            &[&(current + 1)],
        )
        .map_err(|e| errors::pg("record the schema version", db, e))?;
        tx.commit()
            .map_err(|e| errors::pg("migrate the schema", db, e))?;
    }
}

/// Refuses a database whose schema is not the one this build writes.
pub fn check(client: &mut Client, db: &str) -> Result<()> {
    match version(client, db)? {
        SCHEMA_VERSION => Ok(()),
        0 => Err(Error::NotFound(format!(
            "{db} holds no keyplane store: create one with `keyplane store init --store {db}`"
        ))),
        v if v > SCHEMA_VERSION => Err(newer(v, db)),
        _ => Ok(()),
    }
}
