//! [`PostgresKeyStore`]: creating and opening a store in a PostgreSQL database, and the engine's
//! [`KeyStore`] operations on it.

use std::cell::RefCell;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use keyplane::key::KeyRecord;
use keyplane::store::{
    KeyStore, StoreChange, StoreContents, StoreDelta, StoredCustomKeyStore, StoredMaterial,
};
use keyplane::LockedBytes;
use keyplane::{Clock, Error, LockPolicy, Result, SystemClock};
use keyplane_sqlite::contents::Digest;
use keyplane_sqlite::root_key::{RootKey, RootKeyProvider};
use keyplane_sqlite::sealing::{MaterialSlot, StoreKeys};
use postgres::{GenericClient, IsolationLevel, Transaction};
use uuid::Uuid;

use crate::address::PgAddress;
use crate::changes::{self, Kind, Touched};
use crate::meta::{self, Meta};
use crate::notify::{Listener, CHANNEL};
use crate::pool::{Connector, Pool, Timeouts};
use crate::records::{self, AliasRow, KeyRow};
use crate::secrets::{self, SecretRow, CKS_PREFIX};
use crate::witness::NodeWitness;
use crate::{bulk, errors, material, schema};

/// Settings of an open store.
#[derive(Clone, Debug)]
pub struct PgOptions {
    /// Policy for the locked memory that unwrapped material and derived keys live in.
    pub lock_policy: LockPolicy,
    /// Connect and statement timeouts: the bound on how long a store call waits on the database
    /// before it answers [`Error::StoreUnreachable`].
    pub timeouts: Timeouts,
    /// Most connections the store opens at once (besides its listening one).
    pub pool_size: usize,
    /// This node's data directory, where its rollback witness is kept; `None` keeps it in
    /// memory (rollbacks during this process's life are still detected).
    pub witness_dir: Option<PathBuf>,
    /// Whether reading a damaged copy rewrites it from a good one (default: yes).
    pub repair_on_read: bool,
    /// How many generations of change log are kept (older ones are trimmed; a node further
    /// behind loads everything).
    pub change_log_retention: u64,
}

impl Default for PgOptions {
    fn default() -> Self {
        PgOptions {
            lock_policy: LockPolicy::Require,
            timeouts: Timeouts::default(),
            pool_size: 8,
            witness_dir: None,
            repair_on_read: true,
            change_log_retention: 100_000,
        }
    }
}

/// A key store shared by a fleet in one PostgreSQL database (see the crate documentation).
pub struct PostgresKeyStore {
    pool: Pool,
    keys: StoreKeys,
    store_id: [u8; 16],
    options: PgOptions,
    witness: NodeWitness,
    listener: Mutex<Option<Listener>>,
    repairs: AtomicU64,
}

impl std::fmt::Debug for PostgresKeyStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresKeyStore")
            .field("db", &self.db())
            .finish_non_exhaustive()
    }
}

/// Derives the store keys from whichever root key `provider` offers that opens `meta`'s store.
fn unlock(provider: &dyn RootKeyProvider, meta: &Meta, policy: LockPolicy) -> Result<StoreKeys> {
    if provider.kind() != meta.root_kind {
        return Err(Error::AccessDenied(format!(
            "this store needs a root key of kind '{}', but the root key given comes from {} ({})",
            meta.root_kind,
            provider.describe(),
            provider.kind()
        )));
    }
    let found: RefCell<Option<StoreKeys>> = RefCell::new(None);
    let accept = |root: &RootKey| -> bool {
        match StoreKeys::derive_postgres(root, &meta.store_id, policy) {
            Ok(keys) if meta.root_accepts(&keys) => {
                *found.borrow_mut() = Some(keys);
                true
            }
            _ => false,
        }
    };
    provider.open(&meta.root_params, &accept)?;
    found.into_inner().ok_or_else(|| {
        Error::AccessDenied(format!(
            "the root key from {} does not open this store",
            provider.describe()
        ))
    })
}

/// What a verification found.
#[derive(Debug, Default)]
pub struct VerifyReport {
    pub generation: u64,
    pub keys: usize,
    pub aliases: usize,
    pub secrets: usize,
    pub versions: usize,
    /// Copies found damaged (and repaired where asked and possible).
    pub damaged_copies: usize,
    pub repaired_copies: usize,
    /// Key versions with no good copy.
    pub lost_versions: usize,
    /// Everything wrong, in words.
    pub problems: Vec<String>,
}

impl VerifyReport {
    /// Whether nothing at all was found wrong.
    pub fn is_pristine(&self) -> bool {
        self.problems.is_empty() && self.damaged_copies == 0 && self.lost_versions == 0
    }
}

/// Rows read in one snapshot, checked against the sealed digest.
struct Snapshot {
    meta: Meta,
    keys: Vec<KeyRecord>,
    aliases: Vec<keyplane::key::AliasRecord>,
    secrets: Vec<SecretRow>,
    problems: Vec<String>,
}

/// A connector for `address`, the address as messages name it, and a first connection.
fn connect(address: &str, options: &PgOptions) -> Result<(Connector, String, postgres::Client)> {
    let address = PgAddress::parse(address)?;
    let connector = Connector::new(address, options.timeouts.clone())?;
    let db = connector.address.display().to_owned();
    let client = connector.connect()?;
    Ok((connector, db, client))
}

impl PostgresKeyStore {
    /// Creates a new store in the database at `address` (creating or migrating keyplane's
    /// schema) under the root key `provider` makes, and opens it.
    pub fn init(
        address: &str,
        provider: Arc<dyn RootKeyProvider>,
        options: PgOptions,
    ) -> Result<Self> {
        let (connector, db, mut client) = connect(address, &options)?;
        schema::migrate(&mut client, &db)?;
        let mut store_id = [0u8; 16];
        keyplane::sealing::fill_random(&mut store_id)?;
        let root = provider.create()?;
        let keys = StoreKeys::derive_postgres(&root.key, &store_id, options.lock_policy)?;
        drop(root.key);
        let root_check = keys.seal_root_check(&store_id)?;
        let generation_seal = keys.seal_generation(&store_id, 0)?;
        let contents = Digest::default().seal(&keys, &store_id, 0)?;
        let mut tx = client
            .transaction()
            .map_err(|e| errors::pg("create the store", &db, e))?;
        if meta::read(&mut tx, true, &db)?.is_some() {
            return Err(Error::AlreadyExists(format!(
                "a keyplane store already exists in {db}"
            )));
        }
        tx.execute(
            "INSERT INTO keyplane_meta (id, store_id, created_ms, root_kind, root_params, \
             root_check, generation, generation_seal, contents) \
             VALUES (1, $1, $2, $3, $4, $5, 0, $6, $7)",
            &[
                &&store_id[..],
                &SystemClock.now().0,
                &provider.kind(),
                &root.params,
                &root_check,
                &generation_seal,
                &contents,
            ],
        )
        .map_err(|e| errors::pg("create the store", &db, e))?;
        tx.commit()
            .map_err(|e| errors::pg("create the store", &db, e))?;
        Self::finish(connector, keys, store_id, options)
    }

    /// Opens the store in the database at `address` with the root key from `provider`.
    pub fn open(
        address: &str,
        provider: Arc<dyn RootKeyProvider>,
        options: PgOptions,
    ) -> Result<Self> {
        let (connector, db, mut client) = connect(address, &options)?;
        schema::check(&mut client, &db)?;
        schema::migrate(&mut client, &db)?;
        let meta = meta::read(&mut client, false, &db)?.ok_or_else(|| {
            Error::NotFound(format!(
                "{db} holds no keyplane store: create one with `keyplane store init`"
            ))
        })?;
        let keys = unlock(provider.as_ref(), &meta, options.lock_policy)?;
        meta.check_generation(&keys, &db)?;
        Self::finish(connector, keys, meta.store_id, options)
    }

    fn finish(
        connector: Connector,
        keys: StoreKeys,
        store_id: [u8; 16],
        options: PgOptions,
    ) -> Result<Self> {
        let witness = NodeWitness::open(store_id, options.witness_dir.clone())?;
        let store = PostgresKeyStore {
            pool: Pool::new(connector, options.pool_size),
            keys,
            store_id,
            options,
            witness,
            listener: Mutex::new(None),
            repairs: AtomicU64::new(0),
        };
        let mut conn = store.pool.get()?;
        let floor = store.witness.seen();
        let meta = store.read_meta(conn.client(), false, floor)?;
        drop(conn);
        drop(meta);
        Ok(store)
    }

    fn db(&self) -> &str {
        self.pool.connector.address.display()
    }

    /// The lock policy of this store's locked memory.
    pub fn lock_policy(&self) -> LockPolicy {
        self.options.lock_policy
    }

    /// Copies repaired on read since this store was opened.
    pub fn repairs(&self) -> u64 {
        self.repairs.load(Ordering::Relaxed)
    }

    /// The highest generation this node has seen (its rollback witness).
    pub fn witnessed_generation(&self) -> u64 {
        self.witness.seen()
    }

    /// Reads the meta row, checks its seal and the witness.
    fn read_meta(&self, c: &mut impl GenericClient, lock: bool, floor: u64) -> Result<Meta> {
        let meta = meta::read_existing(c, lock, self.db())?;
        if meta.store_id != self.store_id {
            return Err(Error::Store(format!(
                "the key store {} was replaced by another store (its id changed)",
                self.db()
            )));
        }
        meta.check_generation(&self.keys, self.db())?;
        self.witness.observe(meta.generation, floor, self.db())?;
        Ok(meta)
    }

    /// Runs `body` in a read-only snapshot (repeatable read) on a pooled connection, once more
    /// on a fresh connection when the first was found dead.
    fn read<T>(&self, body: impl Fn(&mut Transaction<'_>, u64) -> Result<T>) -> Result<T> {
        let mut last = None;
        for _ in 0..2 {
            // The witness as it stands before the snapshot: every generation recorded in it
            // was committed before the snapshot starts, so the snapshot must see at least it
            // (a generation recorded by another thread after our snapshot began is no rollback).
            let floor = self.witness.seen();
            let mut conn = self.pool.get()?;
            let outcome = (|| {
                let mut tx = conn
                    .client()
                    .build_transaction()
                    .isolation_level(IsolationLevel::RepeatableRead)
                    .read_only(true)
                    .start()
                    .map_err(|e| errors::pg("start a read", self.db(), e))?;
                let value = body(&mut tx, floor)?;
                tx.commit()
                    .map_err(|e| errors::pg("finish a read", self.db(), e))?;
                Ok(value)
            })();
            match outcome {
                Ok(v) => return Ok(v),
                Err(Error::StoreUnreachable(m)) => {
                    conn.discard();
                    last = Some(Error::StoreUnreachable(m));
                }
                Err(e) => return Err(e),
            }
        }
        Err(last.unwrap_or_else(|| Error::Internal("no read attempted".into())))
    }

    /// One snapshot of every record, checked against the sealed contents digest.
    fn snapshot(&self, tx: &mut Transaction<'_>, floor: u64) -> Result<Snapshot> {
        let db = self.db();
        let meta = self.read_meta(tx, false, floor)?;
        let sealed = meta.digest(&self.keys, db)?;
        let mut actual = Digest::default();
        let mut problems = Vec::new();
        let mut keys = Vec::new();
        let late = |what: String, generation: u64| {
            if generation > meta.generation {
                Some(format!(
                    "{what} claims generation {generation}, past the store's {}",
                    meta.generation
                ))
            } else {
                None
            }
        };
        for row in records::all_keys(tx, db)? {
            row.add_to(&self.keys, &mut actual)?;
            problems.extend(late(format!("key row {:02x?}", &row.id), row.generation));
            match row.open(&self.keys) {
                Ok(r) => keys.push(r),
                Err(p) => problems.push(p),
            }
        }
        let mut aliases = Vec::new();
        for row in records::all_aliases(tx, db)? {
            row.add_to(&self.keys, &mut actual)?;
            problems.extend(late(format!("alias {}", row.name), row.generation));
            match row.open(&self.keys) {
                Ok(a) => aliases.push(a),
                Err(p) => problems.push(p),
            }
        }
        let secrets = secrets::all(tx, db)?;
        for row in &secrets {
            row.add_to(&self.keys, &mut actual)?;
        }
        let differing = sealed.differing(&actual);
        if !differing.is_empty() {
            let what: Vec<&str> = differing.iter().map(|p| p.describe()).collect();
            problems.insert(
                0,
                format!(
                    "replay detected: the {} in {db} do not match the store's authenticated \
                     contents digest at generation {}: a row was put back from an earlier \
                     generation, dropped, added or moved to another id by someone who could \
                     write the database but has no root key",
                    what.join(" and the "),
                    meta.generation
                ),
            );
        }
        Ok(Snapshot {
            meta,
            keys,
            aliases,
            secrets,
            problems,
        })
    }

    fn refuse(&self, problems: &[String]) -> Result<()> {
        if problems.is_empty() {
            return Ok(());
        }
        Err(Error::Store(format!(
            "the key store {} was edited outside keyplane: {}; run `keyplane store verify` and \
             restore the database from a backup",
            self.db(),
            problems.join("; ")
        )))
    }

    fn custom_key_stores(&self, rows: &[SecretRow]) -> Result<Vec<StoredCustomKeyStore>> {
        let mut out = Vec::new();
        for row in rows.iter().filter(|r| r.name.starts_with(CKS_PREFIX)) {
            let (value, bad) = row.open(&self.keys)?;
            self.repair_secret(row, &value, &bad);
            out.push(keyplane_sqlite::custom_key_stores::from_secret(
                &row.name,
                &value,
                self.options.lock_policy,
            )?);
        }
        Ok(out)
    }

    fn repair_secret(&self, row: &SecretRow, value: &LockedBytes, bad: &[usize]) {
        if bad.is_empty() || !self.options.repair_on_read {
            return;
        }
        if let Ok(mut conn) = self.pool.get() {
            if secrets::repair(
                conn.client(),
                &self.keys,
                row,
                value.expose(keyplane::SecretAccess::granted()),
                bad,
                self.db(),
            )
            .is_ok()
            {
                self.repairs.fetch_add(bad.len() as u64, Ordering::Relaxed);
            }
        }
    }

    fn materials(
        &self,
        records: &[&KeyRecord],
        copies: &std::collections::BTreeMap<
            (Uuid, u32),
            [Option<material::StoredCopy>; material::COPIES],
        >,
    ) -> Result<(Vec<StoredMaterial>, material::Examination)> {
        let mut exam = material::examine(&self.keys, records, copies)?;
        if self.options.repair_on_read && !exam.damaged.is_empty() {
            if let Ok(mut conn) = self.pool.get() {
                if let Ok(n) = material::repair(conn.client(), &self.keys, &exam, self.db()) {
                    self.repairs.fetch_add(n as u64, Ordering::Relaxed);
                }
            }
        }
        let materials = std::mem::take(&mut exam.materials);
        Ok((materials, exam))
    }

    /// Checks every row, copy and change-log row; with `repair`, rewrites damaged copies.
    pub fn verify(&self, repair: bool) -> Result<VerifyReport> {
        let (snap, copies, log_problem) = self.read(|tx, floor| {
            let snap = self.snapshot(tx, floor)?;
            let copies = material::read_all(tx, self.db())?;
            let log = changes::read(
                tx,
                &self.keys,
                snap.meta.log_floor,
                snap.meta.generation,
                self.db(),
            )
            .err()
            .map(|e| e.to_string());
            Ok((snap, copies, log))
        })?;
        let mut report = VerifyReport {
            generation: snap.meta.generation,
            keys: snap.keys.len(),
            aliases: snap.aliases.len(),
            secrets: snap.secrets.len(),
            problems: snap.problems,
            ..VerifyReport::default()
        };
        report.problems.extend(log_problem);
        let records: Vec<&KeyRecord> = snap.keys.iter().collect();
        let exam = material::examine(&self.keys, &records, &copies)?;
        report.versions = exam.materials.len() + exam.lost.len();
        report.damaged_copies = exam.damaged.len();
        for damaged in &exam.damaged {
            report.problems.push(format!(
                "copy {} of version {} of key {} is {}",
                damaged.copy + 1,
                damaged.slot.version,
                damaged.slot.key_id,
                damaged.damage
            ));
        }
        report.lost_versions = exam.lost.len();
        for lost in &exam.lost {
            report.problems.push(format!(
                "version {} of key {} has no good copy (damaged, or moved from another key)",
                lost.version, lost.key_id
            ));
        }
        if repair && !exam.damaged.is_empty() {
            let mut conn = self.pool.get()?;
            report.repaired_copies = material::repair(conn.client(), &self.keys, &exam, self.db())?;
        }
        for row in &snap.secrets {
            if let Err(e) = row.open(&self.keys) {
                report.problems.push(e.to_string());
            }
        }
        Ok(report)
    }

    /// Adds many new keys, each with the material of every version it keeps, in one commit (one
    /// generation, rows written with `COPY`), sealed, counted and logged exactly as single
    /// commits do (see the `bulk` module): for filling a store fast. At most
    /// [`crate::MAX_BULK_KEYS`] keys; a key already in the store refuses the whole load
    /// (AlreadyExists), and so does material that does not match the records (Validation).
    /// Returns the generation the load produced; subscribed nodes are notified as for any commit.
    pub fn bulk_insert_keys(
        &self,
        records: &[KeyRecord],
        materials: &[StoredMaterial],
    ) -> Result<u64> {
        let db = self.db();
        self.write(None, &mut |tx, generation, digest, touched| {
            bulk::insert_keys(
                tx, &self.keys, generation, digest, touched, records, materials, db,
            )
        })
    }

    /// Drops change-log rows of generations up to `floor`: a node behind it loads everything.
    pub fn trim_change_log(&self, floor: u64) -> Result<()> {
        let mut conn = self.pool.get()?;
        let mut tx = conn
            .client()
            .transaction()
            .map_err(|e| errors::pg("trim the change log", self.db(), e))?;
        changes::trim(&mut tx, floor, self.db())?;
        tx.commit()
            .map_err(|e| errors::pg("trim the change log", self.db(), e))
    }

    /// Runs a commit's body in a transaction that holds the meta row (`FOR UPDATE`): the
    /// generation it produces is the next one, in one serial order across every node. A
    /// connection found dead before anything was sent is replaced once; a failure at `COMMIT`
    /// itself is answered as unreachable (whether it committed is then unknown, and the
    /// engine's next read finds out).
    fn write(
        &self,
        expected: Option<u64>,
        body: &mut dyn FnMut(&mut Transaction<'_>, u64, &mut Digest, &mut Touched) -> Result<()>,
    ) -> Result<u64> {
        let db = self.db();
        let mut attempt = 0;
        loop {
            attempt += 1;
            let floor = self.witness.seen();
            let mut conn = self.pool.get()?;
            // Err(Ok(e)): failed before anything was sent that could commit (retry once on a
            // fresh connection when unreachable); Err(Err(e)): failed for good.
            let outcome: std::result::Result<u64, std::result::Result<Error, Error>> = (|| {
                let mut tx = conn
                    .client()
                    .transaction()
                    .map_err(|e| Ok(errors::pg("start a commit", db, e)))?;
                let meta = self.read_meta(&mut tx, true, floor).map_err(Ok)?;
                if let Some(expected) = expected {
                    if meta.generation != expected {
                        return Err(Err(Error::Conflict(format!(
                            "the key store {db} moved on to generation {} while this node's \
                             view was of generation {expected}: another node changed it; catch \
                             up and retry",
                            meta.generation
                        ))));
                    }
                }
                let mut digest = meta.digest(&self.keys, db).map_err(Err)?;
                let generation = meta.generation + 1;
                let mut touched = Touched::default();
                body(&mut tx, generation, &mut digest, &mut touched).map_err(Err)?;
                changes::write(&mut tx, &self.keys, generation, touched, db).map_err(Err)?;
                meta::advance(&mut tx, &self.keys, &self.store_id, generation, &digest, db)
                    .map_err(Err)?;
                tx.execute(
                    &format!("SELECT pg_notify('{CHANNEL}', $1)"),
                    &[&generation.to_string()],
                )
                .map_err(|e| Err(errors::pg("notify the fleet", db, e)))?;
                tx.commit().map_err(|e| Err(errors::pg("commit", db, e)))?;
                Ok(generation)
            })(
            );
            let generation = match outcome {
                Ok(generation) => generation,
                Err(Ok(Error::StoreUnreachable(m))) if attempt < 2 => {
                    conn.discard();
                    let _ = m;
                    continue;
                }
                Err(Ok(e)) | Err(Err(e)) => {
                    if matches!(e, Error::StoreUnreachable(_)) {
                        conn.discard();
                    }
                    return Err(e);
                }
            };
            drop(conn);
            self.witness.observe(generation, generation, db)?;
            let retention = self.options.change_log_retention.max(1);
            if generation % 1024 == 0 && generation > retention {
                let _ = self.trim_change_log(generation - retention);
            }
            return Ok(generation);
        }
    }

    fn apply(
        &self,
        tx: &mut Transaction<'_>,
        generation: u64,
        digest: &mut Digest,
        touched: &mut Touched,
        changes: &[StoreChange<'_>],
    ) -> Result<()> {
        let db = self.db();
        for change in changes {
            match change {
                StoreChange::PutKey(record) => {
                    records::put_key(tx, &self.keys, digest, record, generation, db)?;
                    touched.note(Kind::Key, record.id.to_string(), false);
                }
                StoreChange::PutMaterial {
                    key_id,
                    version,
                    material: bytes,
                } => {
                    let row = records::key(tx, key_id, db)?.ok_or_else(|| {
                        Error::Conflict(format!(
                            "material for key {key_id}, which is not in the key store (another \
                             node deleted it); retry"
                        ))
                    })?;
                    let record = row.open(&self.keys).map_err(Error::Store)?;
                    let slot = MaterialSlot {
                        key_id: *key_id,
                        version: *version,
                        key_spec: record.key_spec,
                    };
                    material::put(
                        tx,
                        &self.keys,
                        &slot,
                        bytes.expose(keyplane::SecretAccess::granted()),
                        db,
                    )?;
                    touched.note(Kind::Material, key_id.to_string(), false);
                }
                StoreChange::DeleteMaterial { key_id, version } => {
                    material::delete_version(tx, key_id, *version, db)?;
                    touched.note(Kind::Material, key_id.to_string(), false);
                }
                StoreChange::DeleteKey(id) => {
                    for alias in records::delete_key(tx, &self.keys, digest, id, db)? {
                        touched.note(Kind::Alias, alias, true);
                    }
                    touched.note(Kind::Key, id.to_string(), true);
                    touched.note(Kind::Material, id.to_string(), true);
                }
                StoreChange::PutAlias(alias) => {
                    records::put_alias(tx, &self.keys, digest, alias, generation, db)?;
                    touched.note(Kind::Alias, alias.name.clone(), false);
                }
                StoreChange::DeleteAlias(name) => {
                    records::delete_alias(tx, &self.keys, digest, name, db)?;
                    touched.note(Kind::Alias, *name, true);
                }
                StoreChange::PutCustomKeyStore { record, secret } => {
                    let name = keyplane_sqlite::custom_key_stores::name(&record.id)?;
                    let payload = keyplane_sqlite::custom_key_stores::payload(record, secret)?;
                    secrets::put(tx, &self.keys, digest, &name, &payload, generation, db)?;
                    touched.note(Kind::Secret, name, false);
                }
                StoreChange::DeleteCustomKeyStore(id) => {
                    let name = keyplane_sqlite::custom_key_stores::name(id)?;
                    secrets::delete(tx, &self.keys, digest, &name, db)?;
                    touched.note(Kind::Secret, name, true);
                }
            }
        }
        Ok(())
    }

    /// The current row of key `id`, checked against the change log's latest entry for it.
    fn checked_key(
        &self,
        tx: &mut Transaction<'_>,
        meta: &Meta,
        id: &Uuid,
    ) -> Result<Option<KeyRecord>> {
        let db = self.db();
        let row = records::key(tx, id, db)?;
        let entry = changes::latest_key_entry(tx, &self.keys, &id.to_string(), db)?;
        check_against_log(row.as_ref(), entry, meta, id, db)?;
        row.map(|r| r.open(&self.keys).map_err(|p| self.store_error(p)))
            .transpose()
    }

    fn store_error(&self, problem: String) -> Error {
        Error::Store(format!(
            "the key store {} was edited outside keyplane: {problem}; restore the database from \
             a backup",
            self.db()
        ))
    }

    fn delta(
        &self,
        tx: &mut Transaction<'_>,
        since: u64,
        floor: u64,
    ) -> Result<Option<StoreDelta>> {
        let db = self.db();
        let meta = self.read_meta(tx, false, floor)?;
        if since > meta.generation || since < meta.log_floor {
            return Ok(None);
        }
        let mut delta = StoreDelta {
            generation: meta.generation,
            ..StoreDelta::default()
        };
        if since == meta.generation {
            return Ok(Some(delta));
        }
        let log = changes::read(tx, &self.keys, since, meta.generation, db)?;
        let mut ids: Vec<Uuid> = Vec::new();
        for name in log.names(Kind::Key).union(&log.names(Kind::Material)) {
            let id = Uuid::parse_str(name)
                .map_err(|_| self.store_error(format!("the change log names key '{name}'")))?;
            ids.push(id);
        }
        let mut live = Vec::new();
        for id in &ids {
            let row = records::key(tx, id, db)?;
            let entry = log.latest.get(&(Kind::Key, id.to_string())).copied();
            match entry {
                Some(_) => check_against_log(row.as_ref(), entry, &meta, id, db)?,
                None if row.as_ref().is_some_and(|r| r.generation > since) => {
                    return Err(replayed(
                        db,
                        &format!("key {id}"),
                        row.map(|r| r.generation),
                        None,
                    ))
                }
                None => {}
            }
            let record = row
                .map(|r| r.open(&self.keys).map_err(|p| self.store_error(p)))
                .transpose()?;
            if let Some(r) = &record {
                live.push(r.clone());
            }
            delta.keys.push((*id, record));
        }
        let live_ids: Vec<Uuid> = live.iter().map(|r| r.id).collect();
        let copies = material::read_keys(tx, &live_ids, db)?;
        let refs: Vec<&KeyRecord> = live.iter().collect();
        delta.materials = self.materials(&refs, &copies)?.0;
        for name in log.names(Kind::Alias) {
            let row = records::alias(tx, name, db)?;
            let (generation, deleted) = log.latest[&(Kind::Alias, name.to_owned())];
            match (&row, deleted) {
                (None, true) => delta.aliases.push((name.to_owned(), None)),
                (Some(r), false) if r.generation == generation => {
                    let alias = r.open(&self.keys).map_err(|p| self.store_error(p))?;
                    delta.aliases.push((name.to_owned(), Some(alias)));
                }
                _ => {
                    return Err(replayed(
                        db,
                        &format!("alias {name}"),
                        row.as_ref().map(|r: &AliasRow| r.generation),
                        Some((generation, deleted)),
                    ))
                }
            }
        }
        let cks_changed = log
            .names(Kind::Secret)
            .iter()
            .any(|n| n.starts_with(CKS_PREFIX));
        if cks_changed {
            let rows = secrets::all(tx, db)?;
            delta.custom_key_stores = Some(self.custom_key_stores(&rows)?);
        }
        Ok(Some(delta))
    }
}

fn replayed(db: &str, what: &str, row: Option<u64>, entry: Option<(u64, bool)>) -> Error {
    let found = match row {
        Some(g) => format!("a row written at generation {g}"),
        None => "no row".to_owned(),
    };
    let logged = match entry {
        Some((g, true)) => format!("deleted at generation {g}"),
        Some((g, false)) => format!("written at generation {g}"),
        None => "unchanged since".to_owned(),
    };
    Error::Store(format!(
        "replay detected: {db} holds {found} for {what}, but the change log says it was \
         {logged}: a row was put back from an earlier state, or dropped, by someone who could \
         write the database but has no root key; run `keyplane store verify` and restore the \
         database from a backup"
    ))
}

/// Refuses a key row that is not the one the log's latest entry for it says.
fn check_against_log(
    row: Option<&KeyRow>,
    entry: Option<(u64, bool)>,
    meta: &Meta,
    id: &Uuid,
    db: &str,
) -> Result<()> {
    let what = format!("key {id}");
    let ok = match (row, entry) {
        (Some(r), Some((g, false))) => r.generation == g,
        (None, Some((_, true))) => true,
        (None, None) => true,
        // No log entry: the row must predate the log's reach.
        (Some(r), None) => r.generation <= meta.log_floor,
        _ => false,
    };
    if ok && row.is_none_or(|r| r.generation <= meta.generation) {
        Ok(())
    } else {
        Err(replayed(db, &what, row.map(|r| r.generation), entry))
    }
}

impl KeyStore for PostgresKeyStore {
    fn load(&self) -> Result<StoreContents> {
        let load_ms = self.pool.connector.timeouts.load.as_millis();
        let (snap, copies) = self.read(|tx, floor| {
            // This transaction's statements read the whole store (see Timeouts::load).
            tx.batch_execute(&format!("SET LOCAL statement_timeout = {load_ms}"))
                .map_err(|e| errors::pg("set the cold load's timeout", self.db(), e))?;
            let snap = self.snapshot(tx, floor)?;
            let copies = material::read_all(tx, self.db())?;
            Ok((snap, copies))
        })?;
        self.refuse(&snap.problems)?;
        let refs: Vec<&KeyRecord> = snap.keys.iter().collect();
        let (materials, _) = self.materials(&refs, &copies)?;
        let custom_key_stores = self.custom_key_stores(&snap.secrets)?;
        Ok(StoreContents {
            keys: snap.keys,
            aliases: snap.aliases,
            materials,
            custom_key_stores,
            generation: snap.meta.generation,
        })
    }

    fn load_key(&self, id: &Uuid) -> Result<Option<KeyRecord>> {
        self.read(|tx, floor| {
            let meta = self.read_meta(tx, false, floor)?;
            self.checked_key(tx, &meta, id)
        })
    }

    fn commit(&self, changes: &[StoreChange<'_>]) -> Result<u64> {
        self.write(None, &mut |tx, g, d, t| self.apply(tx, g, d, t, changes))
    }

    fn commit_at(&self, expected: u64, changes: &[StoreChange<'_>]) -> Result<u64> {
        self.write(Some(expected), &mut |tx, g, d, t| {
            self.apply(tx, g, d, t, changes)
        })
    }

    fn changes_since(&self, generation: u64) -> Result<Option<StoreDelta>> {
        self.read(|tx, floor| self.delta(tx, generation, floor))
    }

    fn generation(&self) -> Result<u64> {
        self.read(|tx, floor| Ok(self.read_meta(tx, false, floor)?.generation))
    }

    fn subscribe(&self, wake: Arc<dyn Fn() + Send + Sync>) -> Result<bool> {
        let mut listener = self.listener.lock().unwrap_or_else(|p| p.into_inner());
        if listener.is_none() {
            *listener = Some(
                Listener::start(self.pool.connector.clone())
                    .map_err(|e| Error::Internal(format!("starting the listener: {e}")))?,
            );
        }
        if let Some(l) = listener.as_ref() {
            l.add(wake);
        }
        Ok(true)
    }

    fn describe(&self) -> String {
        self.db().to_owned()
    }

    fn get_or_create_secret(
        &self,
        name: &str,
        create: &mut dyn FnMut() -> Result<LockedBytes>,
    ) -> Result<LockedBytes> {
        secrets::check_name(name)?;
        let existing = |store: &Self| -> Result<Option<LockedBytes>> {
            let row = store.read(|tx, floor| {
                store.read_meta(tx, false, floor)?;
                secrets::read(tx, name, store.db())
            })?;
            match row {
                None => Ok(None),
                Some(row) => {
                    let (value, bad) = row.open(&store.keys)?;
                    store.repair_secret(&row, &value, &bad);
                    Ok(Some(value))
                }
            }
        };
        if let Some(value) = existing(self)? {
            return Ok(value);
        }
        let value = create()?;
        self.write(None, &mut |tx, generation, digest, touched| {
            // Under the meta row's lock: a secret another node created meanwhile wins.
            if secrets::read(tx, name, self.db())?.is_none() {
                let bytes = value.expose(keyplane::SecretAccess::granted());
                secrets::put(tx, &self.keys, digest, name, bytes, generation, self.db())?;
                touched.note(Kind::Secret, name, false);
            }
            Ok(())
        })?;
        existing(self)?.ok_or_else(|| {
            Error::Store(format!(
                "the store secret '{name}' vanished as it was created"
            ))
        })
    }
}

impl Drop for PostgresKeyStore {
    fn drop(&mut self) {
        let listener = self
            .listener
            .get_mut()
            .map(Option::take)
            .unwrap_or_else(|p| p.into_inner().take());
        drop(listener);
    }
}
