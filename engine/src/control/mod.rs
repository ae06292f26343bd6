//! The control plane: key lifecycle, aliases, tags, rotation and deletion, one module per family.
//!
//! Control-plane calls serialise on one mutex (they are rare next to data-plane calls). Each one
//! runs due deletions and rotations first, writes its change through the [`KeyStore`] before it
//! changes anything in memory, and then publishes a new key snapshot for the data plane.

mod aliases;
mod custom_keys;
mod deletion;
mod grants;
pub(crate) mod import;
mod keys;
mod managed;
mod multi_region;
pub(crate) mod page;
mod policies;
mod rotation;
mod tags;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, MutexGuard};

use uuid::Uuid;

pub use aliases::AliasListEntry;
pub use deletion::ScheduleKeyDeletionResponse;
pub use grants::{CreateGrantRequest, CreateGrantResponse, GrantListEntry};
pub use import::{
    DeleteImportedKeyMaterialResponse, GetParametersForImportResponse, ImportKeyMaterialRequest,
    ImportKeyMaterialResponse,
};
pub use keys::{CreateKeyRequest, KeyListEntry};
pub use managed::INTEGRATED_SERVICES;
pub use multi_region::{ReplicateKeyRequest, ReplicateKeyResponse};
pub use page::Page;
pub use rotation::{KeyRotationStatus, RotationListEntry};

use crate::access::authorize::{KeyAccess, RequestFacts};
use crate::access::Action;
use crate::clock::Timestamp;
use crate::dataplane::keyring::{KeyEntry, Keyring, VersionEntry};
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::key::identifier::KeyReference;
use crate::key::state::{self, KeyOperation};
use crate::key::{AliasRecord, KeyRecord, KeyState};
use crate::locked_memory::{LockPolicy, LockedBytes};
use crate::messages;
use crate::policy::{KeyPolicy, PolicyError};
use crate::store::{KeyStore, StoreChange};

/// The control plane's working copy of the store.
pub(crate) struct ControlState {
    pub(crate) keys: BTreeMap<Uuid, KeyRecord>,
    aliases: BTreeMap<String, AliasRecord>,
    /// Each key's material, by version (`[v - 1]`); absent when some version could not be read.
    versions: HashMap<Uuid, Vec<Arc<VersionEntry>>>,
    /// The earliest deletion or rotation date of any key, if any is scheduled.
    next_due: Option<Timestamp>,
    /// The store generation this state reflects.
    generation: u64,
    /// Custom key store definitions, by id.
    pub(crate) custom_key_stores: BTreeMap<String, crate::custom_key_store::CustomKeyStoreRecord>,
    /// Each custom key store's secret (PIN, proxy credential secret), by store id.
    pub(crate) custom_key_store_secrets: HashMap<String, LockedBytes>,
}

impl ControlState {
    /// Loads everything from the store. Versions whose material id is unchanged since `previous`
    /// keep their data-plane entries, and with them their derived-key caches.
    pub(crate) fn load(
        store: &dyn KeyStore,
        previous: Option<&ControlState>,
        policy: LockPolicy,
        connections: &crate::custom_key_store::runtime::Runtime,
    ) -> Result<Self> {
        let contents = store.load()?;
        let mut materials: HashMap<(Uuid, u32), LockedBytes> = contents
            .materials
            .into_iter()
            .map(|m| ((m.key_id, m.version), m.material))
            .collect();
        let mut state = ControlState {
            keys: BTreeMap::new(),
            aliases: contents
                .aliases
                .into_iter()
                .map(|a| (a.name.clone(), a))
                .collect(),
            versions: HashMap::new(),
            next_due: None,
            generation: contents.generation,
            custom_key_stores: BTreeMap::new(),
            custom_key_store_secrets: HashMap::new(),
        };
        for stored in contents.custom_key_stores {
            let id = stored.record.id.clone();
            state
                .custom_key_store_secrets
                .insert(id.clone(), stored.secret);
            state.custom_key_stores.insert(id, stored.record);
        }
        for record in contents.keys {
            if let Some(placement) = &record.custom_key_store {
                // Usable only while its store is connected: otherwise no entry, so Unavailable.
                if let Some(entries) =
                    external_versions(&record, placement, previous, policy, connections)
                {
                    state.versions.insert(record.id, entries);
                }
                state.note_due(&record);
                state.keys.insert(record.id, record);
                continue;
            }
            // Versions must be 1, 2, 3, ... in order (the data plane finds version v at v - 1);
            // a record that says otherwise is damaged and its key is Unavailable.
            // Imported material pending rotation is not the data plane's until RotateKeyOnDemand.
            let numbered = record
                .active_versions()
                .enumerate()
                .all(|(i, v)| usize::try_from(v.version).ok() == Some(i + 1));
            let loaded: Option<Vec<Arc<VersionEntry>>> = record
                .active_versions()
                .enumerate()
                .map(|(index, v)| {
                    if !numbered {
                        return None;
                    }
                    let material = materials.remove(&(record.id, v.version))?;
                    let kept = previous
                        .and_then(|p| p.versions.get(&record.id))
                        .and_then(|versions| versions.get(index))
                        .filter(|entry| {
                            entry.version == v.version && entry.material_id == v.material_id
                        });
                    match kept {
                        Some(entry) => Some(Arc::clone(entry)),
                        // Material that does not parse for its key spec counts as missing: the
                        // key becomes Unavailable, every other key keeps working.
                        None => VersionEntry::new(
                            record.key_spec,
                            record.key_usage,
                            v.version,
                            v.material_id.clone(),
                            material,
                            policy,
                        )
                        .ok()
                        .map(Arc::new),
                    }
                })
                .collect();
            if let Some(loaded) = loaded {
                state.versions.insert(record.id, loaded);
            }
            state.note_due(&record);
            state.keys.insert(record.id, record);
        }
        Ok(state)
    }

    /// The state callers see: a key whose material could not all be loaded is Unavailable.
    pub(crate) fn effective_state(&self, record: &KeyRecord) -> KeyState {
        let complete = record.versions.is_empty() || self.versions.contains_key(&record.id);
        match record.state {
            KeyState::Enabled | KeyState::Disabled if !complete => KeyState::Unavailable,
            state => state,
        }
    }

    fn note_due(&mut self, record: &KeyRecord) {
        for date in due_dates(record) {
            self.next_due = Some(self.next_due.map_or(date, |due| due.min(date)));
        }
    }

    pub(crate) fn record(&self, id: &Uuid) -> Result<&KeyRecord> {
        self.keys
            .get(id)
            .ok_or_else(|| Error::NotFound(format!("key '{id}' does not exist")))
    }
}

impl Engine {
    /// Locks the control plane and runs whatever deletions and rotations are due.
    pub(crate) fn control(&self) -> Result<MutexGuard<'_, ControlState>> {
        let mut state = self
            .inner
            .control
            .lock()
            .map_err(|_| Error::Internal("control-plane lock poisoned".into()))?;
        self.reload_if_changed(&mut state)?;
        self.outside_request(|| self.run_due(&mut state))?;
        Ok(state)
    }

    /// Picks up changes that other engines made to a shared store, then runs every deletion and
    /// automatic rotation whose date has come. Every control-plane call does this first; call it
    /// (or configure `scheduler_interval`) to have it happen without control-plane traffic.
    pub fn run_due_tasks(&self) -> Result<()> {
        self.control().map(|_| ())
    }

    /// Reloads everything from the store now (keeping the data-plane entries of unchanged
    /// versions) and publishes it: after a change that adds or removes material other than the
    /// newest version's.
    pub(crate) fn reload(&self, state: &mut ControlState) -> Result<()> {
        let fresh = ControlState::load(
            self.inner.store.as_ref(),
            Some(state),
            self.inner.config.lock_policy,
            &self.inner.custom_key_stores,
        )?;
        *state = fresh;
        self.publish_everything(state);
        Ok(())
    }

    /// Reloads from the store if someone else committed since this engine last looked, and
    /// follows the custom key stores another engine connected or disconnected.
    fn reload_if_changed(&self, state: &mut ControlState) -> Result<()> {
        if self.inner.store.generation()? == state.generation {
            return Ok(());
        }
        let fresh = ControlState::load(
            self.inner.store.as_ref(),
            Some(state),
            self.inner.config.lock_policy,
            &self.inner.custom_key_stores,
        )?;
        *state = fresh;
        self.publish_everything(state);
        self.follow_custom_key_stores(state)
    }

    /// Writes `changes` through the store. If the commit's generation shows that another engine
    /// committed in between, the state is left marked stale, so the next control-plane call
    /// reloads everything (this change included).
    pub(crate) fn commit(
        &self,
        state: &mut ControlState,
        changes: &[StoreChange<'_>],
    ) -> Result<()> {
        let changed: Vec<Uuid> = changes
            .iter()
            .filter_map(|change| match change {
                StoreChange::PutKey(record) => Some(record.id),
                StoreChange::DeleteKey(id) => Some(*id),
                StoreChange::DeleteMaterial { key_id, .. } => Some(*key_id),
                StoreChange::PutAlias(alias) => Some(alias.target),
                StoreChange::PutMaterial { .. }
                | StoreChange::DeleteAlias(_)
                | StoreChange::PutCustomKeyStore { .. }
                | StoreChange::DeleteCustomKeyStore(_) => None,
            })
            .collect();
        self.refuse_dry_run_commit()?;
        self.write_pending_record(&changed)?;
        let generation = self.inner.store.commit(changes)?;
        if generation == state.generation + 1 {
            state.generation = generation;
        }
        Ok(())
    }

    fn run_due(&self, state: &mut ControlState) -> Result<()> {
        let now = self.inner.clock.now();
        match state.next_due {
            Some(due) if due <= now => {}
            _ => return Ok(()),
        }
        let due_deletions: Vec<Uuid> = state
            .keys
            .values()
            .filter(|r| {
                r.state == KeyState::PendingDeletion && r.deletion_date.is_some_and(|d| d <= now)
            })
            .map(|r| r.id)
            .collect();
        for id in due_deletions {
            self.delete_now(state, id)?;
        }
        let due_rotations: Vec<Uuid> = state
            .keys
            .values()
            .filter(|r| {
                state.effective_state(r) == KeyState::Enabled
                    // A replica rotates when its primary key does, by the primary's write-through.
                    && !self.is_replica_here(r)
                    && r.rotation.enabled
                    && r.rotation.next_rotation.is_some_and(|d| d <= now)
            })
            .map(|r| r.id)
            .collect();
        for id in due_rotations {
            self.rotate_automatically(state, id, now)?;
        }
        self.expire_imported_material(state, now)?;
        // Keys that are due but cannot act now (a disabled key's rotation) stay due and are looked
        // at again by the next control-plane call.
        state.next_due = state.keys.values().flat_map(due_dates).min();
        Ok(())
    }

    /// Resolves the KeyId of `operation` against the control plane's aliases, under the
    /// operation's row of the identifier table ([`crate::key::identifier::key_id_form`]).
    pub(crate) fn resolve_id(
        &self,
        state: &ControlState,
        identifier: &str,
        operation: Action,
    ) -> Result<Uuid> {
        let scope = &self.inner.scope;
        let id = match scope.parse_for(identifier, operation)? {
            KeyReference::Key(id) => id,
            KeyReference::Alias(name) => {
                state
                    .aliases
                    .get(name)
                    .ok_or_else(|| messages::alias_not_found(&scope.alias_arn(name)))?
                    .target
            }
        };
        if !state.keys.contains_key(&id) {
            return Err(messages::key_does_not_exist(&scope.key_arn(&id)));
        }
        Ok(id)
    }

    /// Resolves a key, checks that the caller may perform `action` on it and that its state
    /// allows `op`; returns a copy of its record to change.
    pub(crate) fn key_for(
        &self,
        state: &ControlState,
        identifier: &str,
        op: KeyOperation,
        action: Action,
    ) -> Result<KeyRecord> {
        self.key_for_request(state, identifier, op, action, RequestFacts::default())
    }

    /// [`Engine::key_for`] for a request with more to say for policy conditions than the key
    /// identifier (which is filled in here).
    pub(crate) fn key_for_request(
        &self,
        state: &ControlState,
        identifier: &str,
        op: KeyOperation,
        action: Action,
        facts: RequestFacts<'_>,
    ) -> Result<KeyRecord> {
        let id = self.resolve_id(state, identifier, action)?;
        let facts = RequestFacts {
            identifier: Some(identifier),
            ..facts
        };
        self.authorize_key(state.record(&id)?, action, &facts)?;
        self.record_for(state, identifier, op, action)
    }

    /// Resolves the KeyId of `operation` and checks that its state allows `op`, without
    /// authorising the caller (for calls that authorise in their own way); returns a copy of its
    /// record to change.
    pub(crate) fn record_for(
        &self,
        state: &ControlState,
        identifier: &str,
        op: KeyOperation,
        operation: Action,
    ) -> Result<KeyRecord> {
        let id = self.resolve_id(state, identifier, operation)?;
        let record = state.record(&id)?;
        state::check(
            op,
            state.effective_state(record),
            &self.inner.scope.key_arn(&id),
        )?;
        Ok(record.clone())
    }

    /// Checks that the caller may perform `action` on a key, under the key's policy and grants as
    /// the data plane sees them.
    pub(crate) fn authorize_key(
        &self,
        record: &KeyRecord,
        action: Action,
        facts: &RequestFacts<'_>,
    ) -> Result<()> {
        let arn = self.inner.scope.key_arn(&record.id);
        let published = self.inner.data.keyring.load().keys.get(&record.id).cloned();
        let access = match published {
            Some(entry) => Arc::clone(&entry.access),
            None => Arc::new(self.key_access(record)),
        };
        access.check(
            &self.caller,
            action,
            &arn,
            record.key_spec,
            record.key_usage,
            facts,
        )
    }

    /// Checks an account-level action (CreateKey, ListKeys, ListAliases, ...): callers of the
    /// engine's account may; others may not.
    pub(crate) fn authorize_account(&self, action: Action) -> Result<()> {
        if self.caller.account() == self.inner.config.account_id {
            return Ok(());
        }
        Err(Error::AccessDenied(format!(
            "{} (account {}) is not authorized to perform {} in account {}",
            self.caller.principal(),
            self.caller.account(),
            action.as_str(),
            self.inner.config.account_id
        )))
    }

    /// Parses a key policy document.
    pub(crate) fn parse_policy(&self, document: &str) -> Result<KeyPolicy> {
        KeyPolicy::parse(document)
            .map_err(|PolicyError::Malformed(m)| Error::MalformedPolicyDocument(m))
    }

    /// Parses a key policy being written (PutKeyPolicy, CreateKey), refusing one that tests a
    /// condition key the engine has no value for: such a statement could never apply.
    pub(crate) fn parse_new_policy(&self, document: &str) -> Result<KeyPolicy> {
        let policy = self.parse_policy(document)?;
        crate::access::conditions::check_keys_are_supported(&policy)?;
        Ok(policy)
    }

    /// A key's access rules. A stored policy that no longer parses denies everything, and says so
    /// on stderr.
    fn key_access(&self, record: &KeyRecord) -> KeyAccess {
        let policy = self.parse_policy(&record.policy).unwrap_or_else(|e| {
            eprintln!(
                "keyplane: the stored policy of key {} does not parse ({e}); denying all access",
                record.id
            );
            KeyPolicy::deny_all()
        });
        KeyAccess::new(policy, record, &self.inner.config.region)
    }

    /// Writes a changed key record (and any new material) through the store, then applies it
    /// and publishes it to the data plane.
    pub(crate) fn save_key(
        &self,
        state: &mut ControlState,
        record: KeyRecord,
        new_material: Option<(u32, LockedBytes)>,
    ) -> Result<()> {
        self.write_shared_through(
            state.keys.get(&record.id),
            &record,
            new_material.as_ref().map(|(v, m)| (*v, m)),
        )?;
        let mut changes = vec![StoreChange::PutKey(&record)];
        if let Some((version, material)) = &new_material {
            changes.push(StoreChange::PutMaterial {
                key_id: record.id,
                version: *version,
                material,
            });
        }
        self.commit(state, &changes)?;
        drop(changes);
        if let Some((version, material)) = new_material {
            let material_id = record
                .versions
                .iter()
                .find(|v| v.version == version)
                .map(|v| v.material_id.clone())
                .ok_or_else(|| Error::Internal("new material has no version record".into()))?;
            let entry = VersionEntry::new(
                record.key_spec,
                record.key_usage,
                version,
                material_id,
                material,
                self.inner.config.lock_policy,
            )?;
            state
                .versions
                .entry(record.id)
                .or_default()
                .push(Arc::new(entry));
        }
        let id = record.id;
        state.note_due(&record);
        state.keys.insert(id, record);
        self.publish(state, &[id], false);
        Ok(())
    }

    /// Replaces the data plane's snapshot entries of `changed` keys (and its alias map).
    pub(crate) fn publish(&self, state: &ControlState, changed: &[Uuid], aliases_changed: bool) {
        let current = self.inner.data.keyring.load();
        let mut next: Keyring = (**current).clone();
        for id in changed {
            match state.keys.get(id) {
                Some(record) => {
                    next.keys
                        .insert(*id, Arc::new(self.key_entry(state, record)));
                }
                None => {
                    next.keys.remove(id);
                }
            }
        }
        if aliases_changed {
            next.aliases = alias_map(state);
        }
        self.inner.data.keyring.store(Arc::new(next));
    }

    /// Replaces the data plane's snapshot with one built from scratch.
    pub(crate) fn publish_everything(&self, state: &ControlState) {
        let keyring = Keyring {
            keys: state
                .keys
                .values()
                .map(|record| (record.id, Arc::new(self.key_entry(state, record))))
                .collect(),
            aliases: alias_map(state),
        };
        self.inner.data.keyring.store(Arc::new(keyring));
    }

    fn key_entry(&self, state: &ControlState, record: &KeyRecord) -> KeyEntry {
        KeyEntry {
            id: record.id,
            arn: self.inner.scope.key_arn(&record.id),
            state: state.effective_state(record),
            spec: record.key_spec,
            usage: record.key_usage,
            versions: state.versions.get(&record.id).cloned().unwrap_or_default(),
            access: Arc::new(self.key_access(record)),
        }
    }
}

/// The data-plane entries of a key in a custom key store, while its store is connected: kept from
/// `previous` when they were made with the same connection (so their derived-key caches stay),
/// made afresh otherwise.
fn external_versions(
    record: &KeyRecord,
    placement: &crate::key::CustomKeyStoreKey,
    previous: Option<&ControlState>,
    policy: LockPolicy,
    connections: &crate::custom_key_store::runtime::Runtime,
) -> Option<Vec<Arc<VersionEntry>>> {
    let connection = connections.connection(&placement.store_id)?;
    record
        .active_versions()
        .enumerate()
        .map(|(index, v)| {
            if usize::try_from(v.version).ok() != Some(index + 1) {
                return None;
            }
            let kept = previous
                .and_then(|p| p.versions.get(&record.id))
                .and_then(|versions| versions.get(index))
                .filter(|entry| {
                    entry.version == v.version
                        && entry.material_id == v.material_id
                        && entry.external.as_ref().is_some_and(|e| {
                            Arc::ptr_eq(&e.connection, &connection)
                                && e.backing_key == placement.backing_key_id
                        })
                });
            match kept {
                Some(entry) => Some(Arc::clone(entry)),
                None => VersionEntry::external(
                    v.version,
                    v.material_id.clone(),
                    crate::dataplane::keyring::ExternalKey {
                        store_id: placement.store_id.clone(),
                        backing_key: placement.backing_key_id.clone(),
                        connection: Arc::clone(&connection),
                    },
                    policy,
                )
                .ok()
                .map(Arc::new),
            }
        })
        .collect()
}

/// The dates on which something is due for a key: its deletion, its automatic rotation, the
/// expiry of each imported material it holds.
pub(crate) fn due_dates(record: &KeyRecord) -> impl Iterator<Item = Timestamp> + '_ {
    [record.deletion_date, record.rotation.next_rotation]
        .into_iter()
        .flatten()
        .chain(record.versions.iter().filter_map(|v| {
            v.import
                .as_ref()
                .filter(|i| i.imported)
                .and_then(|i| i.valid_to)
        }))
}

/// The data plane's alias lookup table.
fn alias_map(state: &ControlState) -> HashMap<String, Uuid> {
    state
        .aliases
        .values()
        .map(|a| (a.name.clone(), a.target))
        .collect()
}
