//! `verify`: SQLite's own integrity check, then every record, every copy of every key version and
//! every copy of every store secret judged under the root key, with what was found (and, if
//! asked, repaired).

use std::path::Path;

use keyplane::Result;
use rusqlite::TransactionBehavior;
use serde::Serialize;

use crate::errors;
use crate::events;
use crate::handle::{Connected, SqliteKeyStore};
use crate::sealing::Damage;
use crate::secrets::{self, SecretCopyProblem};
use crate::store::read_snapshot;
use crate::witness;

/// One damaged copy.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct CopyProblem {
    pub key_id: String,
    pub version: u32,
    /// 1-based.
    pub copy: usize,
    pub damage: Damage,
    pub repaired: bool,
}

/// A key version with no good copy: its key is Unavailable.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct LostVersion {
    pub key_id: String,
    pub version: u32,
}

/// What `verify` found.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct VerifyReport {
    pub store: String,
    pub store_id: String,
    pub schema_version: i32,
    pub generation: u64,
    pub witness_generation: Option<u64>,
    pub root_key_epoch: u64,
    pub root_key_kind: String,
    /// SQLite's `PRAGMA integrity_check`: `["ok"]` when the file's structure is sound.
    pub integrity_check: Vec<String>,
    pub keys: usize,
    pub aliases: usize,
    pub versions: usize,
    pub copies_checked: usize,
    pub copies_good: usize,
    pub damaged_copies: Vec<CopyProblem>,
    pub lost_versions: Vec<LostVersion>,
    /// Key or alias rows that fail their root-key check or cannot be read.
    pub damaged_records: Vec<String>,
    /// Aliases whose key is not in the store.
    pub dangling_aliases: Vec<String>,
    /// Copies of versions no key names (left behind; harmless).
    pub orphan_copies: usize,
    /// Copies repaired by this run.
    pub repaired: usize,
    /// Repairs recorded in the event log over the store's life.
    pub repairs_recorded: u64,
    /// Store secrets (such as the audit signing key), and their copies.
    pub secrets: usize,
    pub secret_copies_checked: usize,
    pub secret_copies_good: usize,
    pub damaged_secret_copies: Vec<SecretCopyProblem>,
    /// Store secrets with no good copy.
    pub lost_secrets: Vec<String>,
}

impl VerifyReport {
    /// Whether everything is sound now: the file's structure, every record, and at least one
    /// good copy of every version with every damaged copy repaired.
    pub fn is_healthy(&self) -> bool {
        self.integrity_check == ["ok"]
            && self.lost_versions.is_empty()
            && self.damaged_records.is_empty()
            && self.dangling_aliases.is_empty()
            && self.damaged_copies.iter().all(|c| c.repaired)
            && self.lost_secrets.is_empty()
            && self.damaged_secret_copies.iter().all(|c| c.repaired)
    }

    /// Whether nothing at all was found wrong (not even something repaired).
    pub fn is_pristine(&self) -> bool {
        self.is_healthy() && self.damaged_copies.is_empty() && self.damaged_secret_copies.is_empty()
    }
}

impl SqliteKeyStore {
    /// Checks the whole store; with `repair`, rewrites every damaged copy whose version has a
    /// good one (recording each repair).
    pub fn verify(&self, repair: bool) -> Result<VerifyReport> {
        let db = self.paths.db.clone();
        let seen = witness::read(&self.paths.witness)?;
        let mut connected = self.lock()?;
        let integrity = integrity_check(&connected, &db)?;
        let row = crate::meta::read(&connected.conn, &db)?;
        self.follow_root_rotation(&mut connected, &row)?;
        let (snapshot, secrets) = {
            let Connected { conn, keys, .. } = &mut *connected;
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Deferred)
                .map_err(|e| errors::sql("start reading", &db, e))?;
            let snapshot = read_snapshot(&tx, keys, &db)?;
            let secrets = secrets::examine(keys, &secrets::read_all(&tx, &db)?)?;
            tx.finish()
                .map_err(|e| errors::sql("finish reading", &db, e))?;
            (snapshot, secrets)
        };
        snapshot.row.check_generation(&connected.keys, &db)?;
        crate::store::check_rollback(&self.paths, &snapshot.row, seen)?;
        let repaired = if repair {
            self.repair_damage(&mut connected, &snapshot.exam)
        } else {
            Vec::new()
        };
        let secrets_repaired = if repair && !secrets.damaged.is_empty() {
            let names: Vec<&str> = secrets.damaged.iter().map(|(n, _, _)| n.as_str()).collect();
            self.repair_secrets(&mut connected, &names)
        } else {
            Vec::new()
        };
        let repairs_recorded = events::count(&connected.conn, events::REPAIR, &db)?;
        let schema_version: i32 = connected
            .conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(|e| errors::sql("read the schema version", &db, e))?;
        let key_ids: std::collections::HashSet<_> =
            snapshot.records.keys.iter().map(|k| k.id).collect();
        Ok(VerifyReport {
            store: db.display().to_string(),
            store_id: witness::hex(&snapshot.row.store_id),
            schema_version,
            generation: snapshot.row.generation,
            witness_generation: seen.map(|w| w.generation),
            root_key_epoch: snapshot.row.root_epoch,
            root_key_kind: snapshot.row.root_kind.clone(),
            integrity_check: integrity,
            keys: snapshot.records.keys.len(),
            aliases: snapshot.records.aliases.len(),
            versions: snapshot.exam.versions,
            copies_checked: snapshot.exam.copies_checked,
            copies_good: snapshot.exam.copies_good,
            damaged_copies: snapshot
                .exam
                .damaged
                .iter()
                .map(|d| CopyProblem {
                    key_id: d.slot.key_id.to_string(),
                    version: d.slot.version,
                    copy: d.copy + 1,
                    damage: d.damage,
                    repaired: repaired.contains(&(d.slot.key_id, d.slot.version, d.copy)),
                })
                .collect(),
            lost_versions: snapshot
                .exam
                .lost
                .iter()
                .map(|s| LostVersion {
                    key_id: s.key_id.to_string(),
                    version: s.version,
                })
                .collect(),
            damaged_records: snapshot.records.problems.clone(),
            dangling_aliases: snapshot
                .records
                .aliases
                .iter()
                .filter(|a| !key_ids.contains(&a.target))
                .map(|a| a.name.clone())
                .collect(),
            orphan_copies: snapshot.exam.orphans + snapshot.unreadable_copies,
            repaired: repaired.len() + secrets_repaired.len(),
            repairs_recorded,
            secrets: secrets.good.len() + secrets.lost.len(),
            secret_copies_checked: secrets.copies_checked,
            secret_copies_good: secrets.copies_good,
            damaged_secret_copies: secrets
                .damaged
                .iter()
                .map(|(name, copy, damage)| SecretCopyProblem {
                    name: name.clone(),
                    copy: copy + 1,
                    damage: *damage,
                    repaired: secrets_repaired.contains(&(name.clone(), *copy)),
                })
                .collect(),
            lost_secrets: secrets.lost.clone(),
        })
    }
}

/// `PRAGMA integrity_check`, whose rows are `ok` or the problems found.
fn integrity_check(connected: &Connected, db: &Path) -> Result<Vec<String>> {
    connected
        .conn
        .prepare("PRAGMA integrity_check")
        .and_then(|mut stmt| stmt.query_map([], |r| r.get::<_, String>(0))?.collect())
        .map_err(|e| errors::sql("run SQLite's integrity check", db, e))
}
