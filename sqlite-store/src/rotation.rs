//! Root key rotation, online and atomic.
//!
//! In one write transaction: every version's material is unwrapped under the old root key (from
//! whichever copy is good) and every copy rewritten under the new one with a fresh nonce; so is
//! every store secret; every record is re-sealed; the new key's kind, parameters and check value replace the old; the
//! generation advances. The provider keeps the new key aside (`create_next`) until the transaction
//! has committed, then makes it the key it gives (`commit_next`), retiring the old one. Other
//! processes sharing the store notice the new root epoch on their next read or write and ask their
//! provider again (a key file provider then reads the new key from the file).

use std::sync::Arc;

use keyplane::{Error, Result};
use rusqlite::TransactionBehavior;
use serde::Serialize;

use crate::contents::{self, Digest};
use crate::copies::{self, COPIES};
use crate::errors;
use crate::events;
use crate::handle::{Connected, SqliteKeyStore};
use crate::meta::{self, StoreRow};
use crate::records;
use crate::root_key::RootKeyProvider;
use crate::sealing::{MaterialSlot, StoreKeys};
use crate::secrets;
use crate::store::read_snapshot;

/// What a root key rotation did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct RootKeyRotationReport {
    pub from: String,
    pub to: String,
    pub root_key_epoch: u64,
    pub versions_rewrapped: usize,
    pub copies_written: usize,
    /// Versions that had no good copy before the rotation and stay unreadable.
    pub versions_lost: usize,
    pub records_resealed: usize,
    /// Store secrets (such as the audit signing key) rewrapped under the new root key.
    pub secrets_rewrapped: usize,
    /// Store secrets that had no good copy before the rotation and stay unreadable.
    pub secrets_lost: usize,
    pub generation: u64,
}

impl SqliteKeyStore {
    /// Rotates the root key to the one `new` makes (`new` may be the current provider: a key
    /// file rotates in place). Returns once the store is committed under the new key and the
    /// provider has retired the old one.
    pub fn rotate_root_key(&self, new: Arc<dyn RootKeyProvider>) -> Result<RootKeyRotationReport> {
        let db = self.paths.db.clone();
        let old_provider = self.provider()?;
        let mut connected = self.lock_current()?;
        let row = meta::read(&connected.conn, &db)?;
        let next = new.create_next()?;
        let result = (|| {
            let new_keys =
                StoreKeys::derive(&next.key, &connected.store_id, self.options.lock_policy)?;
            if row.root_accepts(&new_keys) {
                return Err(Error::Validation(
                    "the new root key is the current one; give a different key".into(),
                ));
            }
            self.rewrap_all(&mut connected, new_keys, &next.params, new.as_ref())
        })();
        let report = match result {
            Ok(report) => report,
            Err(e) => {
                new.abandon_next();
                return Err(e);
            }
        };
        let store_id = connected.store_id;
        drop(connected);
        if let Ok(mut provider) = self.provider.write() {
            *provider = Arc::clone(&new);
        }
        self.note_generation(&store_id, report.generation);
        new.commit_next().map_err(|e| {
            Error::Store(format!(
                "the store is now under the new root key, but the provider could not retire the \
                 old one: {}; the next open finishes this (the new key is kept aside until then)",
                e.message()
            ))
        })?;
        Ok(RootKeyRotationReport {
            from: old_provider.describe(),
            ..report
        })
    }

    fn rewrap_all(
        &self,
        connected: &mut Connected,
        new_keys: StoreKeys,
        params: &str,
        new: &dyn RootKeyProvider,
    ) -> Result<RootKeyRotationReport> {
        let db = self.paths.db.clone();
        let Connected {
            conn,
            keys,
            store_id,
            root_epoch,
        } = connected;
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| errors::sql("start the root key rotation", &db, e))?;
        let snapshot = read_snapshot(&tx, keys, &db)?;
        if snapshot.row.root_epoch != *root_epoch {
            return Err(Error::Store(
                "another process rotated the root key meanwhile; retry".into(),
            ));
        }
        snapshot.row.check_generation(keys, &db)?;
        if let Some(problem) = snapshot.records.problems.first() {
            return Err(Error::Store(format!(
                "cannot re-seal a damaged record ({problem}); restore the store from a backup \
                 before rotating the root key"
            )));
        }
        let epoch = snapshot.row.root_epoch + 1;
        let mut copies_written = 0;
        for material in &snapshot.exam.materials {
            let key_spec = snapshot
                .records
                .keys
                .iter()
                .find(|r| r.id == material.key_id)
                .map(|r| r.key_spec)
                .ok_or_else(|| Error::Internal("material without its key record".into()))?;
            let slot = MaterialSlot {
                key_id: material.key_id,
                version: material.version,
                key_spec,
            };
            for index in 0..COPIES {
                copies::write(
                    &tx,
                    &new_keys,
                    index,
                    &slot,
                    epoch,
                    material.material.expose(keyplane::SecretAccess::granted()),
                    &db,
                )?;
                copies_written += 1;
            }
        }
        let secrets = secrets::examine(keys, &secrets::read_all(&tx, &db)?)?;
        // Every element is keyed by the root key: the digest is recomputed under the new one
        // below, once every row is written.
        let mut scratch = Digest::default();
        for (name, secret) in &secrets.good {
            secrets::write_all(
                &tx,
                &new_keys,
                &mut scratch,
                name,
                epoch,
                secret.expose(keyplane::SecretAccess::granted()),
                &db,
            )?;
            copies_written += secrets::SECRET_COPIES;
        }
        records::reseal_all(&tx, &new_keys, &snapshot.records, &db)?;
        let generation = snapshot.row.generation + 1;
        let new_row = StoreRow {
            root_epoch: epoch,
            root_kind: new.kind().to_owned(),
            root_params: params.to_owned(),
            root_check: new_keys.seal_root_check(store_id)?,
            ..snapshot.row.clone()
        };
        meta::set_root(&tx, &new_row, &db)?;
        events::record(
            &tx,
            &new_keys,
            &mut scratch,
            events::ROOT_KEY_ROTATED,
            None,
            &format!(
                "root key rotated to {} (epoch {epoch}): {} versions and {} store secrets \
                 rewrapped, {} unreadable left as they were",
                new.describe(),
                snapshot.exam.materials.len(),
                secrets.good.len(),
                snapshot.exam.lost.len() + secrets.lost.len()
            ),
            &db,
        )?;
        let digest = contents::compute(&tx, &new_keys, &db)?;
        meta::set_generation(&tx, &new_keys, store_id, generation, &digest, &db)?;
        tx.commit()
            .map_err(|e| errors::sql("commit the root key rotation", &db, e))?;
        *keys = new_keys;
        *root_epoch = epoch;
        Ok(RootKeyRotationReport {
            from: String::new(),
            to: new.describe(),
            root_key_epoch: epoch,
            versions_rewrapped: snapshot.exam.materials.len(),
            copies_written,
            versions_lost: snapshot.exam.lost.len(),
            records_resealed: snapshot.records.keys.len() + snapshot.records.aliases.len(),
            secrets_rewrapped: secrets.good.len(),
            secrets_lost: secrets.lost.len(),
            generation,
        })
    }
}
