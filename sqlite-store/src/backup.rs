//! Online backup, restore, and adopting a store that was replaced by hand.
//!
//! A backup is SQLite's online backup of the live database, taken in one step (a consistent
//! snapshot; writers in other processes carry on), written to a temporary file, switched to a
//! self-contained rollback journal, fsynced and renamed into place. Its key material stays wrapped
//! under the root key in force when it was taken: keep that key with the backup.
//!
//! A restore checks the backup completely (structure, root key, every copy) before it writes
//! anything, prepares the restored database beside the live one with a generation above every
//! generation the data directory has seen (recording the restore in its event log), then copies
//! it into the live database in one write transaction (so processes that have the store open
//! see either the old store or the restored one, and reload), and finally updates the witness.

use std::fs::File;
use std::path::{Path, PathBuf};

use keyplane::{Error, Result};
use rusqlite::backup::{Backup, StepResult};
use rusqlite::{Connection, OpenFlags};
use serde::Serialize;

use crate::events;
use crate::handle::{SqliteKeyStore, StoreOptions};
use crate::layout::{with_suffix, StorePaths};
use crate::meta;
use crate::root_key::RootKeyProvider;
use crate::store::{read_snapshot, unlock};
use crate::witness::{self, Witness};
use crate::{errors, files, migrate, schema};

/// What a backup wrote.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct BackupReport {
    pub path: String,
    pub generation: u64,
    pub keys: usize,
    pub bytes: u64,
}

/// What a restore (or an adoption) did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct RestoreReport {
    pub from: String,
    pub store_id: String,
    /// The generation the backup was taken at.
    pub backup_generation: u64,
    /// The live store's generation before the restore, if it could be read.
    pub replaced_generation: Option<u64>,
    /// The highest generation the witness had recorded.
    pub witness_generation: Option<u64>,
    /// The generation the restored store now has (above all of the above).
    pub generation: u64,
    /// Generations of changes the restore undid (from the highest seen back to the backup's).
    pub generations_rolled_back: u64,
    pub keys: usize,
}

/// Copies all of `from` into `to` in one step.
fn copy_database(from: &Connection, to: &mut Connection, db: &Path) -> Result<()> {
    let backup = Backup::new(from, to).map_err(|e| errors::sql("start a backup", db, e))?;
    match backup.step(-1) {
        Ok(StepResult::Done) => Ok(()),
        Ok(StepResult::Busy) | Ok(StepResult::Locked) => Err(Error::Store(format!(
            "the store {} was locked throughout the copy; retry",
            db.display()
        ))),
        Ok(_) => Err(Error::Internal("backup stopped before the end".into())),
        Err(e) => Err(errors::sql("copy the database", db, e)),
    }
}

fn fsync(path: &Path) -> Result<()> {
    File::open(path)
        .and_then(|f| f.sync_all())
        .map_err(|e| errors::io("fsync", path, e))
}

impl SqliteKeyStore {
    /// Writes an online backup of the store to `to` (which must not exist).
    pub fn backup(&self, to: impl AsRef<Path>) -> Result<BackupReport> {
        let to = to.as_ref();
        if to.exists() {
            return Err(Error::AlreadyExists(format!(
                "{} already exists; choose a new backup file",
                to.display()
            )));
        }
        let tmp = with_suffix(to, &format!(".tmp.{}", std::process::id()));
        let result = self.write_backup(&tmp, to);
        if result.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        result
    }

    fn write_backup(&self, tmp: &Path, to: &Path) -> Result<BackupReport> {
        let _ = std::fs::remove_file(tmp);
        let mut copy =
            Connection::open(tmp).map_err(|e| errors::sql("create the backup", tmp, e))?;
        {
            let connected = self.lock()?;
            copy_database(&connected.conn, &mut copy, &self.paths.db)?;
        }
        copy.query_row("PRAGMA journal_mode = DELETE", [], |_| Ok(()))
            .map_err(|e| errors::sql("make the backup self-contained", tmp, e))?;
        let row = meta::read(&copy, tmp)?;
        let keys: i64 = copy
            .query_row("SELECT count(*) FROM keys", [], |r| r.get(0))
            .map_err(|e| errors::sql("count the backup's keys", tmp, e))?;
        copy.close()
            .map_err(|(_, e)| errors::sql("close the backup", tmp, e))?;
        fsync(tmp)?;
        std::fs::rename(tmp, to).map_err(|e| errors::io("move the backup into place at", to, e))?;
        files::fsync_dir(files::parent_dir(to))?;
        let bytes = std::fs::metadata(to).map(|m| m.len()).unwrap_or(0);
        Ok(BackupReport {
            path: to.display().to_string(),
            generation: row.generation,
            keys: keys.max(0) as usize,
            bytes,
        })
    }

    /// Restores the store in `dir` from the backup `from`, checked first under the root key
    /// `provider` gives. `force` allows a backup of another store, or one with unrecoverable
    /// key versions. The data directory may hold no store at all (disaster recovery).
    pub fn restore(
        dir: impl AsRef<Path>,
        from: impl AsRef<Path>,
        provider: std::sync::Arc<dyn RootKeyProvider>,
        options: StoreOptions,
        force: bool,
    ) -> Result<RestoreReport> {
        let (dir, from) = (dir.as_ref(), from.as_ref());
        files::create_private_dir(dir)?;
        let paths = StorePaths::new(dir);
        if same_file(from, &paths.db) {
            return Err(Error::Validation(format!(
                "{} is the live store itself; to accept it as it is, use `keyplane store restore \
                 --adopt`",
                from.display()
            )));
        }

        // 1. Check the backup completely; nothing is written before this passes.
        schema::check_file(from)?;
        let source = schema::connect(
            from,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
            options.busy_timeout,
        )?;
        schema::check_connection(&source, from)?;
        let backup_row = meta::read(&source, from)?;
        let keys = unlock(provider.as_ref(), &backup_row, options.lock_policy)?;
        backup_row.check_generation(&keys, from)?;
        let integrity: Vec<String> = source
            .prepare("PRAGMA integrity_check")
            .and_then(|mut s| s.query_map([], |r| r.get::<_, String>(0))?.collect())
            .map_err(|e| errors::sql("check the backup's integrity", from, e))?;
        if integrity != ["ok"] {
            return Err(Error::Store(format!(
                "the backup {} is damaged (SQLite integrity check: {}); refusing to restore it",
                from.display(),
                integrity.join("; ")
            )));
        }
        let snapshot = read_snapshot(&source, &keys, from)?;
        if !snapshot.records.problems.is_empty() && !force {
            return Err(Error::Store(format!(
                "the backup {} has damaged records ({}); pass --force to restore it anyway",
                from.display(),
                snapshot.records.problems.join("; ")
            )));
        }
        if !snapshot.exam.lost.is_empty() && !force {
            return Err(Error::Store(format!(
                "the backup {} has {} key versions with no good copy (their keys would be \
                 Unavailable); pass --force to restore it anyway",
                from.display(),
                snapshot.exam.lost.len()
            )));
        }

        let secrets = crate::secrets::examine(&keys, &crate::secrets::read_all(&source, from)?)?;
        if !secrets.lost.is_empty() && !force {
            return Err(Error::Store(format!(
                "the backup {} has store secrets with no good copy ({}); pass --force to restore \
                 it anyway",
                from.display(),
                secrets.lost.join(", ")
            )));
        }

        // 2. What the data directory holds now.
        let live_row = if paths.db.exists() {
            read_row_without_key(&paths.db, &options)
        } else {
            None
        };
        if let Some(live) = &live_row {
            if live.store_id != backup_row.store_id && !force {
                return Err(Error::Validation(format!(
                    "the backup {} is of store {}, but {} holds store {}; pass --force to replace \
                     it",
                    from.display(),
                    witness::hex(&backup_row.store_id),
                    dir.display(),
                    witness::hex(&live.store_id)
                )));
            }
        }
        let seen = witness::read(&paths.witness)
            .ok()
            .flatten()
            .filter(|w| w.store_id == backup_row.store_id);
        let replaced = live_row
            .as_ref()
            .filter(|r| r.store_id == backup_row.store_id)
            .map(|r| r.generation);
        let highest = [
            Some(backup_row.generation),
            replaced,
            seen.map(|w| w.generation),
        ]
        .into_iter()
        .flatten()
        .max()
        .unwrap_or(0);
        let generation = highest + 1;

        // 3. The restored database, prepared beside the live one.
        let staged = with_suffix(&paths.db, &format!(".restore.{}", std::process::id()));
        for stale in [
            staged.clone(),
            with_suffix(&staged, "-wal"),
            with_suffix(&staged, "-shm"),
        ] {
            let _ = std::fs::remove_file(stale);
        }
        let report = RestoreReport {
            from: from.display().to_string(),
            store_id: witness::hex(&backup_row.store_id),
            backup_generation: backup_row.generation,
            replaced_generation: live_row.as_ref().map(|r| r.generation),
            witness_generation: seen.map(|w| w.generation),
            generation,
            generations_rolled_back: highest - backup_row.generation,
            keys: snapshot.records.keys.len(),
        };
        let result = stage_and_install(
            &source,
            &staged,
            &paths,
            &keys,
            &backup_row,
            &report,
            &options,
        );
        for file in [
            staged.clone(),
            with_suffix(&staged, "-wal"),
            with_suffix(&staged, "-shm"),
        ] {
            let _ = std::fs::remove_file(file);
        }
        result?;
        witness::write(
            &paths.witness,
            &Witness {
                store_id: backup_row.store_id,
                generation,
            },
        )?;
        Ok(report)
    }

    /// Accepts the store in `dir` as it is now (after it was replaced by hand, or its witness
    /// lost): checks it under the root key, raises its generation above the witness's, records
    /// the adoption and rewrites the witness.
    pub fn adopt(
        dir: impl AsRef<Path>,
        provider: std::sync::Arc<dyn RootKeyProvider>,
        options: StoreOptions,
    ) -> Result<RestoreReport> {
        let dir = dir.as_ref();
        let store = SqliteKeyStore::open_checked(dir, provider, options, false)?;
        let paths = store.paths.clone();
        let seen = witness::read(&paths.witness).ok().flatten();
        let mut connected = store.lock()?;
        let crate::handle::Connected {
            conn,
            keys,
            store_id,
            ..
        } = &mut *connected;
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(|e| errors::sql("start adopting the store", &paths.db, e))?;
        let row = meta::read(&tx, &paths.db)?;
        // Adopting accepts a whole store put back by hand, never one whose rows were edited.
        row.check_generation(keys, &paths.db)?;
        row.check_contents(&tx, keys, &paths.db)?;
        let mut digest = row.digest(keys, &paths.db)?;
        let witnessed = seen
            .filter(|w| w.store_id == *store_id)
            .map(|w| w.generation);
        let highest = row.generation.max(witnessed.unwrap_or(0));
        let generation = highest + 1;
        events::record(
            &tx,
            keys,
            &mut digest,
            events::ADOPTED,
            None,
            &format!(
                "store accepted as it was at generation {} (witness: {})",
                row.generation,
                witnessed.map_or_else(|| "none".to_string(), |g| g.to_string())
            ),
            &paths.db,
        )?;
        meta::set_generation(&tx, keys, store_id, generation, &digest, &paths.db)?;
        let keys_count: i64 = tx
            .query_row("SELECT count(*) FROM keys", [], |r| r.get(0))
            .map_err(|e| errors::sql("count keys", &paths.db, e))?;
        tx.commit()
            .map_err(|e| errors::sql("commit the adoption", &paths.db, e))?;
        witness::write(
            &paths.witness,
            &Witness {
                store_id: *store_id,
                generation,
            },
        )?;
        Ok(RestoreReport {
            from: paths.db.display().to_string(),
            store_id: witness::hex(store_id),
            backup_generation: row.generation,
            replaced_generation: Some(row.generation),
            witness_generation: witnessed,
            generation,
            generations_rolled_back: highest - row.generation,
            keys: keys_count.max(0) as usize,
        })
    }
}

/// Builds the restored database at `staged` and copies it into the live database (or moves it
/// into place when there is none).
fn stage_and_install(
    source: &Connection,
    staged: &Path,
    paths: &StorePaths,
    keys: &crate::sealing::StoreKeys,
    backup_row: &meta::StoreRow,
    report: &RestoreReport,
    options: &StoreOptions,
) -> Result<()> {
    let mut prepared = Connection::open(staged)
        .map_err(|e| errors::sql("create the restored database", staged, e))?;
    copy_database(source, &mut prepared, staged)?;
    prepared
        .query_row("PRAGMA journal_mode = WAL", [], |_| Ok(()))
        .map_err(|e| errors::sql("switch the restored database to WAL", staged, e))?;
    // A backup of an older schema is brought up to date (its contents digest sealed) first.
    migrate::migrate(&mut prepared, keys, staged)?;
    {
        let tx = prepared
            .transaction()
            .map_err(|e| errors::sql("prepare the restored database", staged, e))?;
        let mut digest = meta::read(&tx, staged)?.digest(keys, staged)?;
        events::record(
            &tx,
            keys,
            &mut digest,
            events::RESTORED,
            None,
            &format!(
                "restored from {} (backup generation {}, replaced generation {}, highest seen {}): \
                 {} generations of changes undone",
                report.from,
                report.backup_generation,
                report
                    .replaced_generation
                    .map_or_else(|| "none".to_string(), |g| g.to_string()),
                report.generation - 1,
                report.generations_rolled_back
            ),
            staged,
        )?;
        meta::set_generation(
            &tx,
            keys,
            &backup_row.store_id,
            report.generation,
            &digest,
            staged,
        )?;
        tx.commit()
            .map_err(|e| errors::sql("prepare the restored database", staged, e))?;
    }
    if paths.db.exists() {
        let mut live = schema::connect(
            &paths.db,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
            options.busy_timeout,
        )?;
        copy_database(&prepared, &mut live, &paths.db)?;
        drop(prepared);
        Ok(())
    } else {
        prepared
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
            .map_err(|e| errors::sql("checkpoint the restored database", staged, e))?;
        prepared
            .close()
            .map_err(|(_, e)| errors::sql("close the restored database", staged, e))?;
        fsync(staged)?;
        std::fs::rename(staged, &paths.db)
            .map_err(|e| errors::io("move the restored store into place at", &paths.db, e))?;
        files::fsync_dir(&paths.dir)
    }
}

/// The live store's settings row, read without its root key (for its id and generation only);
/// `None` if it cannot be read (damaged), which a restore is there to fix. (Read-write only so
/// that closing removes SQLite's index files again; nothing is written.)
fn read_row_without_key(db: &Path, options: &StoreOptions) -> Option<meta::StoreRow> {
    schema::check_file(db).ok()?;
    let conn = schema::connect(
        db,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        options.busy_timeout,
    )
    .ok()?;
    schema::check_connection(&conn, db).ok()?;
    meta::read(&conn, db).ok()
}

fn same_file(a: &Path, b: &Path) -> bool {
    let canonical = |p: &Path| -> Option<PathBuf> { p.canonicalize().ok() };
    matches!((canonical(a), canonical(b)), (Some(x), Some(y)) if x == y)
}
