//! [`SqliteKeyStore`]: opening and creating a store, and the engine's [`KeyStore`] operations.
//!
//! Every commit is one SQLite write transaction (`BEGIN IMMEDIATE` … `COMMIT`) in WAL mode with
//! `synchronous = FULL`: `COMMIT` returns once the transaction's WAL frames are fsynced, and only
//! then does [`KeyStore::commit`] return. The transaction also advances the generation counter
//! and its root-key seal; after it, the generation witness is rewritten.

use std::cell::RefCell;
use std::fs::File;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::Duration;

use keyplane::store::{KeyStore, StoreChange, StoreContents, StoreDelta};
use keyplane::{Clock, Error, KeySpec, LockPolicy, Result, SystemClock};
use rusqlite::{Connection, OpenFlags, TransactionBehavior};
use uuid::Uuid;

use crate::contents::Digest;
use crate::copies::{self, Examination};
use crate::events::{self, StoreEvent};
use crate::handle::{Change, Connected, SqliteKeyStore, StoreOptions};
use crate::layout::{with_suffix, StorePaths};
use crate::meta::{self, StoreRow};
use crate::records::{self, Records};
use crate::root_key::{RootKey, RootKeyProvider, ARGON2ID_KIND, RAW_KIND};
use crate::sealing::{MaterialSlot, StoreKeys};
use crate::witness::{self, Witness};
use crate::{errors, files, migrate, schema};

/// Says which kind of root key a store needs, in the words of the command-line options.
fn kind_hint(kind: &str) -> String {
    match kind {
        RAW_KIND => "a raw 256-bit root key (a key file or an environment variable)".into(),
        k if k == ARGON2ID_KIND => {
            "a root key derived from a passphrase (argon2id): give the passphrase".into()
        }
        other => format!("a root key from a provider of kind '{other}'"),
    }
}

/// Derives the store keys from whichever root key `provider` offers that opens `row`'s store.
pub(crate) fn unlock(
    provider: &dyn RootKeyProvider,
    row: &StoreRow,
    policy: LockPolicy,
) -> Result<StoreKeys> {
    if provider.kind() != row.root_kind {
        return Err(Error::AccessDenied(format!(
            "this store needs {}, but the root key given comes from {} ({})",
            kind_hint(&row.root_kind),
            provider.describe(),
            provider.kind()
        )));
    }
    let found: RefCell<Option<StoreKeys>> = RefCell::new(None);
    let accept = |root: &RootKey| -> bool {
        match StoreKeys::derive(root, &row.store_id, policy) {
            Ok(keys) if row.root_accepts(&keys) => {
                *found.borrow_mut() = Some(keys);
                true
            }
            _ => false,
        }
    };
    provider.open(&row.root_params, &accept)?;
    found.into_inner().ok_or_else(|| {
        Error::AccessDenied(format!(
            "the root key from {} does not open this store",
            provider.describe()
        ))
    })
}

/// Refuses a store whose generation is behind its witness (rolled back), or whose witness is
/// missing or names another store.
pub(crate) fn check_rollback(
    paths: &StorePaths,
    row: &StoreRow,
    seen: Option<Witness>,
) -> Result<()> {
    let db = paths.db.display();
    let adopt = "if that is what you intended, accept the store as it is with `keyplane store \
                 restore --adopt`; otherwise put the current store file back";
    match seen {
        None => Err(Error::Store(format!(
            "the generation witness {} is missing, so a rollback of {db} cannot be ruled out; {adopt}",
            paths.witness.display()
        ))),
        Some(w) if w.store_id != row.store_id => Err(Error::Store(format!(
            "the generation witness {} belongs to another store than {db}: the store file was \
             replaced; {adopt}",
            paths.witness.display()
        ))),
        Some(w) if row.generation < w.generation => Err(Error::Store(format!(
            "rollback detected: {db} is at generation {} but this data directory has seen \
             generation {}: the store was replaced by an older copy (a backup?), which would \
             silently undo {} changes; restore backups with `keyplane store restore FILE`, which \
             records the rollback; {adopt}",
            row.generation,
            w.generation,
            w.generation - row.generation
        ))),
        Some(_) => Ok(()),
    }
}

impl SqliteKeyStore {
    /// Creates a new store in `dir` (created with mode 0700 if missing) under the root key
    /// `provider` makes (a key file provider creates its file now), and opens it.
    pub fn init(
        dir: impl AsRef<Path>,
        provider: Arc<dyn RootKeyProvider>,
        options: StoreOptions,
    ) -> Result<Self> {
        let dir = dir.as_ref();
        files::create_private_dir(dir)?;
        let paths = StorePaths::new(dir);
        if paths.db.exists() {
            return Err(Error::AlreadyExists(format!(
                "a keyplane store already exists in {}",
                dir.display()
            )));
        }
        // Without a database, a log or index beside it belongs to nothing (a store deleted by
        // hand): it must not be replayed into the new one.
        for leftover in [paths.wal(), paths.shm()] {
            remove_if_present(&leftover)?;
        }
        let mut store_id = [0u8; 16];
        keyplane::sealing::fill_random(&mut store_id)?;
        let root = provider.create()?;
        let keys = StoreKeys::derive(&root.key, &store_id, options.lock_policy)?;
        let generation = 0;
        let row = StoreRow {
            store_id,
            created_ms: SystemClock.now().0,
            root_epoch: 1,
            root_kind: provider.kind().to_owned(),
            root_params: root.params,
            root_check: keys.seal_root_check(&store_id)?,
            generation,
            generation_seal: keys.seal_generation(&store_id, generation)?,
            contents: Some(Digest::default().seal(&keys, &store_id, generation)?),
        };
        drop(root.key);

        let building = with_suffix(&paths.db, &format!(".init.{}", std::process::id()));
        for stale in [
            building.clone(),
            with_suffix(&building, "-wal"),
            with_suffix(&building, "-shm"),
        ] {
            remove_if_present(&stale)?;
        }
        let built = build_new_database(&building, &row, &keys, &provider, options.busy_timeout);
        if let Err(e) = built {
            let _ = std::fs::remove_file(&building);
            return Err(e);
        }
        witness::write(
            &paths.witness,
            &Witness {
                store_id,
                generation,
            },
        )?;
        std::fs::rename(&building, &paths.db)
            .map_err(|e| errors::io("move the new store into place at", &paths.db, e))?;
        files::fsync_dir(dir)?;
        Self::open(dir, provider, options)
    }

    /// Opens the store in `dir`. Refused, before anything is written: a missing, foreign,
    /// truncated or newer-schema file; a root key that does not open it; a generation counter the
    /// root key does not authenticate; a store rolled back behind its witness.
    pub fn open(
        dir: impl AsRef<Path>,
        provider: Arc<dyn RootKeyProvider>,
        options: StoreOptions,
    ) -> Result<Self> {
        Self::open_checked(dir.as_ref(), provider, options, true)
    }

    pub(crate) fn open_checked(
        dir: &Path,
        provider: Arc<dyn RootKeyProvider>,
        options: StoreOptions,
        check_witness: bool,
    ) -> Result<Self> {
        let paths = StorePaths::new(dir);
        if !paths.db.exists() {
            return Err(Error::NotFound(format!(
                "no keyplane store in {}: create one with `keyplane store init` (or give \
                 --data-dir / KEYPLANE_HOME)",
                dir.display()
            )));
        }
        schema::check_file(&paths.db)?;
        // The witness is read before the database, so that every commit it reflects is visible.
        let seen = witness::read(&paths.witness);
        let mut conn = schema::connect(
            &paths.db,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
            options.busy_timeout,
        )?;
        schema::check_connection(&conn, &paths.db)?;
        let row = meta::read(&conn, &paths.db)?;
        let keys = unlock(provider.as_ref(), &row, options.lock_policy)?;
        row.check_generation(&keys, &paths.db)?;
        if check_witness {
            let seen = seen?;
            check_rollback(&paths, &row, seen)?;
            if seen.is_some_and(|w| w.generation < row.generation) {
                // A commit whose process died before it rewrote the witness.
                record_witness(&paths, &row.store_id, row.generation);
            }
            witness::remove_stale_temporaries(&paths.witness);
        }
        // An older schema is brought up to date only now that the root key has opened the store:
        // a wrong key changes nothing.
        migrate::migrate(&mut conn, &keys, &paths.db)?;
        Ok(SqliteKeyStore {
            paths,
            options,
            provider: RwLock::new(provider),
            connected: Mutex::new(Connected {
                conn,
                keys,
                store_id: row.store_id,
                root_epoch: row.root_epoch,
            }),
            repairs: AtomicU64::new(0),
        })
    }

    /// Where the store's files are.
    pub fn paths(&self) -> &StorePaths {
        &self.paths
    }

    /// The store's id (32 hex digits).
    pub fn store_id(&self) -> Result<String> {
        Ok(witness::hex(&self.lock()?.store_id))
    }

    /// Damaged copies this handle has repaired since it opened.
    pub fn repairs_made(&self) -> u64 {
        self.repairs.load(Ordering::Relaxed)
    }

    /// The latest `limit` events of the store's log (repairs, restores, root key rotations).
    pub fn events(&self, limit: usize) -> Result<Vec<StoreEvent>> {
        let connected = self.lock()?;
        events::list(&connected.conn, limit, &self.paths.db)
    }

    /// Where the root key comes from.
    pub fn root_key_source(&self) -> String {
        self.provider()
            .map_or_else(|_| "?".into(), |p| p.describe())
    }

    pub(crate) fn provider(&self) -> Result<Arc<dyn RootKeyProvider>> {
        self.provider
            .read()
            .map(|p| Arc::clone(&p))
            .map_err(|_| Error::Internal("root key provider lock poisoned".into()))
    }

    pub(crate) fn lock(&self) -> Result<MutexGuard<'_, Connected>> {
        self.connected
            .lock()
            .map_err(|_| Error::Internal("store connection lock poisoned".into()))
    }

    /// The store's connection, locked, with the store keys re-derived if another process
    /// rotated the root key since this handle last looked.
    pub(crate) fn lock_current(&self) -> Result<MutexGuard<'_, Connected>> {
        let mut connected = self.lock()?;
        let row = meta::read(&connected.conn, &self.paths.db)?;
        self.follow_root_rotation(&mut connected, &row)?;
        Ok(connected)
    }

    /// Re-derives the store keys if another process rotated the root key since this handle last
    /// looked (a key file provider then finds the new key in its file).
    pub(crate) fn follow_root_rotation(
        &self,
        connected: &mut Connected,
        row: &StoreRow,
    ) -> Result<()> {
        if row.root_epoch == connected.root_epoch {
            return Ok(());
        }
        let provider = self.provider()?;
        connected.keys = unlock(provider.as_ref(), row, self.options.lock_policy).map_err(|e| {
            Error::AccessDenied(format!(
                "the store's root key was rotated by another process and {} does not give the \
                 new one: {}",
                provider.describe(),
                e.message()
            ))
        })?;
        connected.root_epoch = row.root_epoch;
        Ok(())
    }

    /// Records a successful commit's generation in the witness. The commit is already durable, so
    /// a failure here only makes the witness lag (detection of rollbacks to the last few
    /// generations is lost until the next commit); it is reported, not returned.
    pub(crate) fn note_generation(&self, store_id: &[u8; 16], generation: u64) {
        record_witness(&self.paths, store_id, generation);
    }
}

fn record_witness(paths: &StorePaths, store_id: &[u8; 16], generation: u64) {
    let w = Witness {
        store_id: *store_id,
        generation,
    };
    if let Ok(Some(current)) = witness::read(&paths.witness) {
        if current.store_id == w.store_id && current.generation >= generation {
            return;
        }
    }
    if let Err(e) = witness::write(&paths.witness, &w) {
        eprintln!("keyplane-sqlite: warning: the generation witness was not updated: {e}");
    }
}

fn remove_if_present(path: &Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(errors::io("remove the stale file", path, e)),
    }
}

/// Writes a new database with the schema and `row` at `path`, checkpointed and closed.
fn build_new_database(
    path: &Path,
    row: &StoreRow,
    keys: &StoreKeys,
    provider: &Arc<dyn RootKeyProvider>,
    busy: Duration,
) -> Result<()> {
    let conn = schema::connect(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE,
        busy,
    )?;
    schema::create(&conn, path)?;
    meta::insert(&conn, row, path)?;
    let mut digest = Digest::default();
    events::record(
        &conn,
        keys,
        &mut digest,
        events::CREATED,
        None,
        &format!("store created; root key from {}", provider.describe()),
        path,
    )?;
    meta::set_generation(&conn, keys, &row.store_id, row.generation, &digest, path)?;
    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
        .map_err(|e| errors::sql("checkpoint the new store", path, e))?;
    conn.close()
        .map_err(|(_, e)| errors::sql("close the new store", path, e))?;
    // SQLite gives its log and index the database file's mode.
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| errors::io("set mode 0600 on", path, e))?;
    File::open(path)
        .and_then(|f| f.sync_all())
        .map_err(|e| errors::io("fsync", path, e))
}

/// What one read of the whole store found.
pub(crate) struct Snapshot {
    pub row: StoreRow,
    pub records: Records,
    pub exam: Examination,
    pub unreadable_copies: usize,
}

/// Reads and judges everything, in one read transaction of `conn` (the caller opens it). Refuses
/// a store whose records do not add up to its sealed contents digest (a replayed, dropped, added
/// or moved row); a store of schema 2 or older (a backup being restored, migrated after) has none.
/// When some record already fails its own seal, that (more precise) problem is reported and the
/// digest's mismatch is added to the problems instead.
pub(crate) fn read_snapshot(conn: &Connection, keys: &StoreKeys, db: &Path) -> Result<Snapshot> {
    let row = meta::read(conn, db)?;
    let mut records = records::read_all(conn, keys, db)?;
    if schema::has_contents(conn, db)? {
        row.check_generation(keys, db)?;
        match row.check_contents(conn, keys, db) {
            Err(e) if !records.problems.is_empty() => records.problems.push(e.message().into()),
            other => other?,
        }
    }
    let (copies, unreadable_copies) = copies::read_all(conn, db)?;
    let exam = copies::examine(keys, &records.keys, &copies)?;
    Ok(Snapshot {
        row,
        records,
        exam,
        unreadable_copies,
    })
}

impl SqliteKeyStore {
    /// Repairs what `exam` found damaged, in its own write transaction; returns the copies
    /// repaired. A failure (a full disk) leaves the damage for the next read and is reported on
    /// stderr.
    pub(crate) fn repair_damage(
        &self,
        connected: &mut Connected,
        exam: &Examination,
    ) -> Vec<(Uuid, u32, usize)> {
        if exam.damaged.is_empty() {
            return Vec::new();
        }
        let repaired =
            self.repair_in_transaction(connected, "key material", |tx, keys, digest, epoch| {
                copies::repair(tx, keys, digest, epoch, exam, &self.paths.db)
            });
        self.repairs
            .fetch_add(repaired.len() as u64, Ordering::Relaxed);
        repaired
    }

    /// Runs `repair` (given the transaction, the store's keys, its digest to update and the root
    /// key's epoch) in its own write transaction, which keeps the store's generation: repair
    /// events change the event log, not the generation. Returns what it repaired, reported on
    /// stderr as copies of `what`. A failure (a full disk) leaves the damage for the next read and
    /// is reported on stderr.
    pub(crate) fn repair_in_transaction<T>(
        &self,
        connected: &mut Connected,
        what: &str,
        repair: impl FnOnce(&rusqlite::Transaction<'_>, &StoreKeys, &mut Digest, u64) -> Result<Vec<T>>,
    ) -> Vec<T> {
        let db = &self.paths.db;
        let Connected {
            conn,
            keys,
            root_epoch,
            ..
        } = connected;
        let result = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| errors::sql("start a repair", db, e))
            .and_then(|tx| {
                let row = meta::read(&tx, db)?;
                row.check_generation(keys, db)?;
                let mut digest = row.digest(keys, db)?;
                let repaired = repair(&tx, keys, &mut digest, *root_epoch)?;
                meta::set_generation(&tx, keys, &row.store_id, row.generation, &digest, db)?;
                tx.commit()
                    .map_err(|e| errors::sql("commit a repair", db, e))?;
                Ok(repaired)
            });
        match result {
            Ok(repaired) => {
                if !repaired.is_empty() {
                    eprintln!(
                        "keyplane-sqlite: repaired {} damaged cop{} of {what} from good copies \
                         (recorded in the store's event log)",
                        repaired.len(),
                        if repaired.len() == 1 { "y" } else { "ies" }
                    );
                }
                repaired
            }
            Err(e) => {
                eprintln!(
                    "keyplane-sqlite: warning: damaged copies of {what} were not repaired: {e}"
                );
                Vec::new()
            }
        }
    }
}

/// The key spec of a key a change set stores material for: from the change set's PutKey, else
/// from the stored record (checked under the root key).
fn spec_of(
    conn: &Connection,
    keys: &StoreKeys,
    changes: &[StoreChange<'_>],
    key_id: &Uuid,
    db: &Path,
) -> Result<KeySpec> {
    let in_changes = changes.iter().find_map(|c| match c {
        StoreChange::PutKey(record) if record.id == *key_id => Some(record.key_spec),
        _ => None,
    });
    if let Some(spec) = in_changes {
        return Ok(spec);
    }
    records::read_key(conn, keys, key_id, db)?
        .map(|record| record.key_spec)
        .ok_or_else(|| {
            Error::Internal(format!(
                "material for key {key_id}, which the store does not hold"
            ))
        })
}

impl SqliteKeyStore {
    /// The lock policy of the store's copies of secrets.
    pub fn lock_policy(&self) -> LockPolicy {
        self.options.lock_policy
    }
}

impl KeyStore for SqliteKeyStore {
    fn load(&self) -> Result<StoreContents> {
        let db = &self.paths.db;
        let seen = witness::read(&self.paths.witness)?;
        let mut connected = self.lock_current()?;
        let snapshot = {
            let Connected { conn, keys, .. } = &mut *connected;
            let tx = conn
                .transaction()
                .map_err(|e| errors::sql("start reading", db, e))?;
            let snapshot = read_snapshot(&tx, keys, db)?;
            tx.finish()
                .map_err(|e| errors::sql("finish reading", db, e))?;
            snapshot
        };
        if snapshot.row.root_epoch != connected.root_epoch {
            // Rotated between the two reads: read again under the new key.
            drop(connected);
            return self.load();
        }
        snapshot.row.check_generation(&connected.keys, db)?;
        check_rollback(&self.paths, &snapshot.row, seen)?;
        if let Some(problem) = snapshot.records.problems.first() {
            return Err(Error::Store(format!(
                "{problem} in {}; run `keyplane store verify` and restore from a backup",
                db.display()
            )));
        }
        if self.options.repair_on_read {
            self.repair_damage(&mut connected, &snapshot.exam);
        }
        for lost in &snapshot.exam.lost {
            eprintln!(
                "keyplane-sqlite: every copy of version {} of key {} is damaged: the key is \
                 Unavailable (run `keyplane store verify`; restore from a backup)",
                lost.version, lost.key_id
            );
        }
        let Snapshot {
            row, records, exam, ..
        } = snapshot;
        drop(connected);
        // Kept as store secrets (definition and PIN sealed together): read after the snapshot,
        // so a change in between shows as a newer generation and the engine reloads again.
        let custom_key_stores = crate::custom_key_stores::load(self)?;
        Ok(StoreContents {
            keys: records.keys,
            aliases: records.aliases,
            materials: exam.materials,
            custom_key_stores,
            generation: row.generation,
        })
    }

    fn commit(&self, changes: &[StoreChange<'_>]) -> Result<u64> {
        self.commit_checked(None, changes)
    }

    fn commit_at(&self, expected: u64, changes: &[StoreChange<'_>]) -> Result<u64> {
        self.commit_checked(Some(expected), changes)
    }

    fn changes_since(&self, generation: u64) -> Result<Option<StoreDelta>> {
        self.read_changes_since(generation)
    }

    fn generation(&self) -> Result<u64> {
        meta::read_generation(&self.lock()?.conn, &self.paths.db)
    }

    fn describe(&self) -> String {
        format!("sqlite:{}", self.paths.db.display())
    }

    fn get_or_create_secret(
        &self,
        name: &str,
        create: &mut dyn FnMut() -> Result<keyplane::LockedBytes>,
    ) -> Result<keyplane::LockedBytes> {
        SqliteKeyStore::get_or_create_secret(self, name, create)
    }
}

impl SqliteKeyStore {
    /// A commit: one write transaction (`BEGIN IMMEDIATE`, so the generation read in it cannot
    /// move before it commits); with `expected`, only if the store is still at that generation
    /// (else Conflict, nothing written). Logs what it touched in the change log.
    fn commit_checked(&self, expected: Option<u64>, changes: &[StoreChange<'_>]) -> Result<u64> {
        let db = &self.paths.db;
        let mut connected = self.lock_current()?;
        let Change {
            tx,
            row,
            keys,
            store_id,
            root_epoch,
        } = connected.begin_change("start a change", db)?;
        if let Some(expected) = expected {
            if row.generation != expected {
                return Err(keyplane::messages::store_conflict(expected, row.generation));
            }
        }
        let touched = crate::change_log::touched(&tx, changes, db)?;
        let mut digest = row.digest(keys, db)?;
        for change in changes {
            match change {
                StoreChange::PutKey(record) => {
                    records::put_key(&tx, keys, &mut digest, record, db)?
                }
                StoreChange::PutMaterial {
                    key_id,
                    version,
                    material,
                } => {
                    let slot = MaterialSlot {
                        key_id: *key_id,
                        version: *version,
                        key_spec: spec_of(&tx, keys, changes, key_id, db)?,
                    };
                    copies::write_all(
                        &tx,
                        keys,
                        &slot,
                        root_epoch,
                        material.expose(keyplane::SecretAccess::granted()),
                        db,
                    )?;
                }
                StoreChange::DeleteKey(id) => records::delete_key(&tx, keys, &mut digest, id, db)?,
                StoreChange::DeleteMaterial { key_id, version } => {
                    copies::delete_version(&tx, key_id, *version, db)?
                }
                StoreChange::PutAlias(alias) => {
                    records::put_alias(&tx, keys, &mut digest, alias, db)?
                }
                StoreChange::DeleteAlias(name) => {
                    records::delete_alias(&tx, keys, &mut digest, name, db)?
                }
                StoreChange::PutCustomKeyStore { record, secret } => crate::custom_key_stores::put(
                    &tx,
                    keys,
                    &mut digest,
                    root_epoch,
                    record,
                    secret,
                    db,
                )?,
                StoreChange::DeleteCustomKeyStore(id) => {
                    crate::custom_key_stores::delete(&tx, keys, &mut digest, id, db)?
                }
            }
        }
        let generation = row.generation + 1;
        crate::change_log::record(&tx, keys, store_id, generation, &touched, db)?;
        meta::set_generation(&tx, keys, store_id, generation, &digest, db)?;
        tx.commit()
            .map_err(|e| errors::sql("commit a change", db, e))?;
        let store_id = *store_id;
        drop(connected);
        self.note_generation(&store_id, generation);
        Ok(generation)
    }

    /// [`KeyStore::changes_since`]: in one read transaction, the generation (checked under the
    /// root key and against the witness), the change log after `generation` and the current rows
    /// of what it names, each checked against the log (a replayed row is refused); the material of
    /// each changed key judged copy by copy as a full load judges it (damaged copies repaired
    /// after). `None` where the log does not reach back to `generation`.
    fn read_changes_since(&self, generation: u64) -> Result<Option<StoreDelta>> {
        let db = &self.paths.db;
        let seen = witness::read(&self.paths.witness)?;
        let mut connected = self.lock_current()?;
        let Connected {
            conn,
            keys,
            store_id,
            root_epoch,
        } = &mut *connected;
        let tx = conn
            .transaction()
            .map_err(|e| errors::sql("start reading", db, e))?;
        let row = meta::read(&tx, db)?;
        if row.root_epoch != *root_epoch {
            // Rotated between the two reads: the log of the old key no longer opens.
            return Ok(None);
        }
        row.check_generation(keys, db)?;
        check_rollback(&self.paths, &row, seen)?;
        if generation > row.generation {
            return Ok(None);
        }
        let Some(changed) =
            crate::change_log::read_since(&tx, keys, store_id, generation, row.generation, db)?
        else {
            return Ok(None);
        };
        let records: Vec<keyplane::key::KeyRecord> = changed
            .keys
            .iter()
            .filter_map(|(_, record)| record.clone())
            .collect();
        let mut exam = copies::Examination::default();
        for record in &records {
            let found = copies::read_key(&tx, &record.id, db)?;
            let one = copies::examine(keys, std::slice::from_ref(record), &found)?;
            exam.materials.extend(one.materials);
            exam.damaged.extend(one.damaged);
            exam.lost.extend(one.lost);
        }
        tx.finish()
            .map_err(|e| errors::sql("finish reading", db, e))?;
        if self.options.repair_on_read {
            self.repair_damage(&mut connected, &exam);
        }
        for lost in &exam.lost {
            eprintln!(
                "keyplane-sqlite: every copy of version {} of key {} is damaged: the key is \
                 Unavailable (run `keyplane store verify`; restore from a backup)",
                lost.version, lost.key_id
            );
        }
        drop(connected);
        let custom_key_stores = if changed.custom_key_stores {
            Some(crate::custom_key_stores::load(self)?)
        } else {
            None
        };
        Ok(Some(StoreDelta {
            generation: row.generation,
            keys: changed.keys,
            materials: exam.materials,
            aliases: changed.aliases,
            custom_key_stores,
        }))
    }
}
