//! The database schema, its version, and the checks that refuse a file that is not a keyplane
//! store of a version this build reads.
//!
//! The file identifies itself with SQLite's `application_id` (`0x4B504C53`, "KPLS") and carries its
//! schema version in `user_version`. A file of a newer schema is refused with a message that says
//! so; an older schema is migrated in place, in one transaction, when the store is opened with its
//! root key (the migrate module).
//!
//! Versions: 1, the first; 2 adds the two `secret_copy_*` tables (store secrets, such as the audit
//! signing key). A version-1 binary must not open a version-2 store: its root key rotation would
//! leave the secrets wrapped under the retired key. 3 adds the sealed contents digest (`store.
//! contents`) and the `secrets` table of store secret value MACs, which bind every record to the
//! authenticated generation (see the contents module); a version-2 binary would write changes
//! without updating the digest, so it must not open a version-3 store.
//!
//! 4 adds the `change_log` of what each commit touched (see the change_log module), which engines
//! sharing the store follow instead of reloading everything; a version-3 binary would commit
//! without logging (every follower would then load everything at each of its commits), so it
//! must not open a version-4 store.

use std::fs::File;
use std::io::Read;
use std::path::Path;
use std::time::Duration;

use keyplane::{Error, Result};
use rusqlite::{Connection, OpenFlags};

use crate::errors;
use crate::layout::with_suffix;

/// `PRAGMA application_id` of a keyplane store: "KPLS".
pub const APPLICATION_ID: i32 = 0x4B50_4C53;
/// The schema version this build writes and reads.
pub const SCHEMA_VERSION: i32 = 4;
/// The page size every store uses (a restore copies pages, which needs equal sizes).
const PAGE_SIZE: u32 = 4096;
/// The tables holding the independent copies of wrapped key material, one copy each.
pub(crate) const COPY_TABLES: [&str; 2] = ["material_copy_1", "material_copy_2"];
/// The tables holding the independent copies of each wrapped store secret, one copy each.
pub(crate) const SECRET_TABLES: [&str; 2] = ["secret_copy_1", "secret_copy_2"];

const CREATE: &str = "
CREATE TABLE store (
    singleton       INTEGER PRIMARY KEY CHECK (singleton = 1),
    store_id        BLOB    NOT NULL,
    created_ms      INTEGER NOT NULL,
    root_epoch      INTEGER NOT NULL,
    root_kind       TEXT    NOT NULL,
    root_params     TEXT    NOT NULL,
    root_check      BLOB    NOT NULL,
    generation      INTEGER NOT NULL,
    generation_seal BLOB    NOT NULL
);
CREATE TABLE keys (
    key_id BLOB PRIMARY KEY,
    record TEXT NOT NULL,
    seal   BLOB NOT NULL
) WITHOUT ROWID;
CREATE TABLE aliases (
    name   TEXT PRIMARY KEY,
    target BLOB NOT NULL,
    record TEXT NOT NULL,
    seal   BLOB NOT NULL
) WITHOUT ROWID;
CREATE INDEX aliases_by_target ON aliases (target);
CREATE TABLE material_copy_1 (
    key_id     BLOB    NOT NULL,
    version    INTEGER NOT NULL,
    root_epoch INTEGER NOT NULL,
    wrapped    BLOB    NOT NULL,
    checksum   BLOB    NOT NULL,
    PRIMARY KEY (key_id, version)
) WITHOUT ROWID;
CREATE TABLE material_copy_2 (
    key_id     BLOB    NOT NULL,
    version    INTEGER NOT NULL,
    root_epoch INTEGER NOT NULL,
    wrapped    BLOB    NOT NULL,
    checksum   BLOB    NOT NULL,
    PRIMARY KEY (key_id, version)
) WITHOUT ROWID;
CREATE TABLE events (
    seq     INTEGER PRIMARY KEY AUTOINCREMENT,
    at_ms   INTEGER NOT NULL,
    kind    TEXT    NOT NULL,
    key_id  TEXT,
    version INTEGER,
    detail  TEXT    NOT NULL
);
";

/// What version 2 adds to version 1.
pub(crate) const CREATE_V2: &str = "
CREATE TABLE secret_copy_1 (
    name       TEXT    PRIMARY KEY,
    root_epoch INTEGER NOT NULL,
    wrapped    BLOB    NOT NULL,
    checksum   BLOB    NOT NULL
) WITHOUT ROWID;
CREATE TABLE secret_copy_2 (
    name       TEXT    PRIMARY KEY,
    root_epoch INTEGER NOT NULL,
    wrapped    BLOB    NOT NULL,
    checksum   BLOB    NOT NULL
) WITHOUT ROWID;
";

/// What version 3 adds to version 2. (`contents` is filled in by the migration, under the root
/// key.)
pub(crate) const CREATE_V3: &str = "
ALTER TABLE store ADD COLUMN contents BLOB;
CREATE TABLE secrets (
    name      TEXT PRIMARY KEY,
    value_mac BLOB NOT NULL
) WITHOUT ROWID;
";

/// What version 4 adds to version 3: per generation, what its commit touched, sealed under the
/// root key with the store id and generation.
pub(crate) const CREATE_V4: &str = "
CREATE TABLE change_log (
    generation INTEGER PRIMARY KEY,
    entries    TEXT NOT NULL,
    seal       BLOB NOT NULL
);
";

/// The tables of a version-1 store.
const TABLES_V1: [&str; 6] = [
    "store",
    "keys",
    "aliases",
    "material_copy_1",
    "material_copy_2",
    "events",
];

/// Creates the schema in a new, empty database.
pub(crate) fn create(conn: &Connection, db: &Path) -> Result<()> {
    conn.execute_batch(&format!(
        "PRAGMA page_size = {PAGE_SIZE};
         PRAGMA application_id = {APPLICATION_ID};
         PRAGMA user_version = {SCHEMA_VERSION};"
    ))
    .map_err(|e| errors::sql("set the store's identity", db, e))?;
    conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get::<_, String>(0))
        .map_err(|e| errors::sql("switch to write-ahead logging", db, e))?;
    conn.execute_batch(&format!(
        "BEGIN; {CREATE} {CREATE_V2} {CREATE_V3} {CREATE_V4} COMMIT;"
    ))
    .map_err(|e| errors::sql("create the schema", db, e))
}

/// Whether the connection's store has the contents digest and the `secrets` table (schema 3 and
/// later).
pub(crate) fn has_contents(conn: &Connection, db: &Path) -> Result<bool> {
    let version: i32 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(|e| errors::sql("read the schema version", db, e))?;
    Ok(version >= 3)
}

/// Whether the connection's store has the store secret tables (schema 2 and later).
pub(crate) fn has_secrets(conn: &Connection, db: &Path) -> Result<bool> {
    let version: i32 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(|e| errors::sql("read the schema version", db, e))?;
    Ok(version >= 2)
}

/// Opens a connection with the settings every store connection uses: WAL with full synchronous
/// commits (a commit returns once its WAL frames are fsynced), a busy timeout for other processes'
/// write locks, and zeroing of deleted content.
pub(crate) fn connect(db: &Path, flags: OpenFlags, busy: Duration) -> Result<Connection> {
    let conn =
        Connection::open_with_flags(db, flags).map_err(|e| errors::sql("open the store", db, e))?;
    conn.busy_timeout(busy)
        .map_err(|e| errors::sql("set the busy timeout", db, e))?;
    conn.execute_batch(
        "PRAGMA synchronous = FULL;
         PRAGMA secure_delete = ON;
         PRAGMA foreign_keys = OFF;
         PRAGMA trusted_schema = OFF;",
    )
    .map_err(|e| errors::sql("configure the connection", db, e))?;
    Ok(conn)
}

/// Refuses a file that is not a keyplane store of a schema this build reads, before anything else
/// reads it: empty, foreign, truncated, or of a newer schema.
pub(crate) fn check_file(db: &Path) -> Result<()> {
    let mut header = [0u8; 100];
    let mut file = File::open(db).map_err(|e| errors::io("open the store file", db, e))?;
    let len = file
        .metadata()
        .map_err(|e| errors::io("read the size of", db, e))?
        .len();
    if len == 0 {
        return Err(not_a_store(db, "the file is empty"));
    }
    if len < header.len() as u64 {
        return Err(not_a_store(
            db,
            "the file is too short to be an SQLite database",
        ));
    }
    file.read_exact(&mut header)
        .map_err(|e| errors::io("read the header of", db, e))?;
    if &header[..16] != b"SQLite format 3\0" {
        return Err(not_a_store(db, "the file is not an SQLite database"));
    }
    let page_size = match u16::from_be_bytes([header[16], header[17]]) {
        1 => 65536,
        n => u64::from(n),
    };
    let pages = u64::from(u32::from_be_bytes([
        header[28], header[29], header[30], header[31],
    ]));
    let application_id = i32::from_be_bytes([header[68], header[69], header[70], header[71]]);
    let user_version = i32::from_be_bytes([header[60], header[61], header[62], header[63]]);
    if application_id != APPLICATION_ID {
        return Err(not_a_store(
            db,
            &format!("it is an SQLite database of another application (application id {application_id:#x})"),
        ));
    }
    check_version(db, user_version)?;
    // With no write-ahead log to replay, the file must hold every page its header counts. (With
    // a log, pages may legitimately still live only there until the next checkpoint.)
    let wal = with_suffix(db, "-wal");
    let wal_len = std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0);
    if wal_len == 0 && page_size >= 512 && len < pages.saturating_mul(page_size) {
        return Err(Error::Store(format!(
            "the store file {} is truncated: its header counts {pages} pages of {page_size} bytes \
             ({} bytes) but the file has {len} bytes; restore it from a backup (`keyplane store \
             restore FILE`)",
            db.display(),
            pages * page_size
        )));
    }
    Ok(())
}

fn check_version(db: &Path, version: i32) -> Result<()> {
    if version > SCHEMA_VERSION {
        return Err(Error::Store(format!(
            "the store {} has schema version {version}, newer than this keyplane reads (version \
             {SCHEMA_VERSION}): it was written by a newer keyplane; use that version or newer",
            db.display()
        )));
    }
    if version < 1 {
        return Err(not_a_store(
            db,
            "it has no keyplane schema (schema version 0)",
        ));
    }
    Ok(())
}

fn not_a_store(db: &Path, why: &str) -> Error {
    Error::Store(format!(
        "{} is not a keyplane store: {why}; give the data directory of a store created with \
         `keyplane store init`",
        db.display()
    ))
}

/// Checks an open connection's identity, version and tables (the header check again, as SQLite
/// sees it, plus the tables a store must have).
pub(crate) fn check_connection(conn: &Connection, db: &Path) -> Result<()> {
    let application_id: i32 = conn
        .query_row("PRAGMA application_id", [], |r| r.get(0))
        .map_err(|e| errors::sql("read the store's identity", db, e))?;
    if application_id != APPLICATION_ID {
        return Err(not_a_store(db, "its application id is not keyplane's"));
    }
    let version: i32 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(|e| errors::sql("read the schema version", db, e))?;
    check_version(db, version)?;
    let mut stmt = conn
        .prepare("SELECT name FROM sqlite_schema WHERE type = 'table'")
        .map_err(|e| errors::sql("read the schema", db, e))?;
    let names: Vec<String> = stmt
        .query_map([], |r| r.get(0))
        .and_then(|rows| rows.collect())
        .map_err(|e| errors::sql("read the schema", db, e))?;
    let v2: &[&str] = if version >= 2 { &SECRET_TABLES } else { &[] };
    let v3: &[&str] = if version >= 3 { &["secrets"] } else { &[] };
    for table in TABLES_V1.iter().chain(v2).chain(v3) {
        if !names.iter().any(|n| n == table) {
            return Err(Error::Store(format!(
                "the store {} lacks its table '{table}': it is damaged or not a keyplane store",
                db.display()
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn foreign_empty_and_short_files_are_refused_clearly() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.db");
        for (bytes, expect) in [
            (&b""[..], "empty"),
            (b"hello", "too short"),
            (&[0x5a; 4096][..], "not an SQLite database"),
        ] {
            std::fs::write(&path, bytes).unwrap();
            let err = check_file(&path).unwrap_err();
            assert!(err.message().contains(expect), "{err}");
            assert!(err.message().contains("not a keyplane store"), "{err}");
        }
        std::fs::remove_file(&path).unwrap();
        let other = Connection::open(&path).unwrap();
        other
            .execute_batch("CREATE TABLE t (x); INSERT INTO t VALUES (1);")
            .unwrap();
        drop(other);
        let err = check_file(&path).unwrap_err();
        assert!(err.message().contains("another application"), "{err}");
    }

    #[test]
    fn a_newer_schema_version_names_both_versions() {
        let err = check_version(Path::new("/s/keyplane.db"), SCHEMA_VERSION + 1).unwrap_err();
        assert!(err.message().contains("newer"), "{err}");
        assert!(err
            .message()
            .contains(&format!("version {}", SCHEMA_VERSION + 1)));
    }
}
