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
mod last_usage;
mod managed;
mod multi_region;
pub(crate) mod page;
mod policies;
mod rotation;
mod tags;

#[cfg(test)]
mod scale_tests;

#[cfg(test)]
thread_local! {
    /// Data-plane key entries built on this thread ([`Engine::key_entry`]): a test hook that
    /// tells a change that rebuilds one entry from one that rebuilds every entry.
    static KEY_ENTRY_BUILDS: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
    /// Data-plane alias maps built from scratch on this thread ([`alias_map`]).
    static ALIAS_MAP_BUILDS: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
    /// Keys a follow of the store applied from a delta on this thread.
    static FOLLOWED_KEYS: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

use std::collections::{BTreeMap, BTreeSet, HashMap};
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
pub use last_usage::{GetKeyLastUsageResponse, KeyLastUsage};
pub use managed::INTEGRATED_SERVICES;
pub use multi_region::{ReplicateKeyRequest, ReplicateKeyResponse};
pub use page::Page;
pub use rotation::{KeyRotationStatus, RotationListEntry};

use crate::access::authorize::{KeyAccess, RequestFacts};
use crate::access::Action;
use crate::clock::Timestamp;
use crate::dataplane::keyring::{AliasMap, KeyEntry, Keyring, VersionEntry};
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::key::identifier::KeyReference;
use crate::key::state::{self, KeyOperation};
use crate::key::{AliasRecord, KeyRecord, KeyState};
use crate::locked_memory::{LockPolicy, LockedBytes};
use crate::messages;
use crate::policy::{KeyPolicy, PolicyError};
use crate::store::{KeyStore, StoreChange, StoreDelta};

/// The control plane's working copy of the store.
///
/// Every change to it costs O(log n) in the number of keys and aliases: keys and aliases change
/// through [`ControlState::put_key`], [`ControlState::remove_key`], [`ControlState::put_alias`]
/// and [`ControlState::remove_alias`], which keep the indexes below in step, so that nothing a
/// control-plane call does walks every key (docs/performance.md, "Many keys").
pub(crate) struct ControlState {
    pub(crate) keys: BTreeMap<Uuid, KeyRecord>,
    aliases: BTreeMap<String, AliasRecord>,
    /// Each alias, by the key it points to (for the deletion of a key).
    aliases_by_target: BTreeSet<(Uuid, String)>,
    /// Each key's material, by version (`[v - 1]`); absent when some version could not be read.
    versions: HashMap<Uuid, Vec<Arc<VersionEntry>>>,
    /// Every date on which something is due for a key ([`due_dates`]), with the key: the
    /// scheduler looks only at the entries whose date has come.
    due: BTreeSet<(Timestamp, Uuid)>,
    /// Parsed key policies by document, shared by every key with that document: most keys have
    /// the default policy, and a parsed policy per key was the largest part of the memory each
    /// key took (about 1.7 KB of 4.8 KB). Entries whose keys are all gone are dropped as the map
    /// grows.
    policies: std::cell::RefCell<PolicyCache>,
    /// The store generation this state reflects.
    pub(crate) generation: u64,
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
            aliases: BTreeMap::new(),
            aliases_by_target: BTreeSet::new(),
            versions: HashMap::new(),
            due: BTreeSet::new(),
            policies: std::cell::RefCell::new(PolicyCache::default()),
            generation: contents.generation,
            custom_key_stores: BTreeMap::new(),
            custom_key_store_secrets: HashMap::new(),
        };
        for alias in contents.aliases {
            state.put_alias(alias);
        }
        for stored in contents.custom_key_stores {
            let id = stored.record.id.clone();
            state
                .custom_key_store_secrets
                .insert(id.clone(), stored.secret);
            state.custom_key_stores.insert(id, stored.record);
        }
        for record in contents.keys {
            if let Some(loaded) =
                versions_for(&record, &mut materials, previous, policy, connections)
            {
                state.versions.insert(record.id, loaded);
            }
            state.put_key(record);
        }
        Ok(state)
    }

    /// Applies what changed in the store since this state's generation ([`KeyStore::changes_since`])
    /// and returns what the data plane must republish: the keys and aliases that changed, and
    /// whether any custom key store did. Costs O(changes · log n), not O(n): only the changed
    /// keys' material is read and parsed (unchanged versions keep their data-plane entries).
    pub(crate) fn apply_delta(
        &mut self,
        delta: StoreDelta,
        policy: LockPolicy,
        connections: &crate::custom_key_store::runtime::Runtime,
    ) -> Applied {
        let mut applied = Applied::default();
        if let Some(stores) = delta.custom_key_stores {
            self.custom_key_stores.clear();
            self.custom_key_store_secrets.clear();
            for stored in stores {
                let id = stored.record.id.clone();
                self.custom_key_store_secrets
                    .insert(id.clone(), stored.secret);
                self.custom_key_stores.insert(id, stored.record);
            }
            applied.custom_key_stores = true;
        }
        let mut materials: HashMap<(Uuid, u32), LockedBytes> = delta
            .materials
            .into_iter()
            .map(|m| ((m.key_id, m.version), m.material))
            .collect();
        for (id, record) in delta.keys {
            applied.keys.push(id);
            match record {
                Some(record) => {
                    match versions_for(&record, &mut materials, Some(self), policy, connections) {
                        Some(loaded) => {
                            self.versions.insert(id, loaded);
                        }
                        None => {
                            self.versions.remove(&id);
                        }
                    }
                    self.put_key(record);
                }
                None => {
                    applied.aliases.extend(self.remove_key(&id));
                }
            }
        }
        for (name, alias) in delta.aliases {
            match alias {
                Some(alias) => self.put_alias(alias),
                None => {
                    self.remove_alias(&name);
                }
            }
            applied.aliases.push(name);
        }
        self.generation = delta.generation;
        applied
    }

    /// The state callers see: a key whose material could not all be loaded is Unavailable.
    pub(crate) fn effective_state(&self, record: &KeyRecord) -> KeyState {
        let complete = record.versions.is_empty() || self.versions.contains_key(&record.id);
        match record.state {
            KeyState::Enabled | KeyState::Disabled if !complete => KeyState::Unavailable,
            state => state,
        }
    }

    /// Inserts or replaces a key's record, keeping the due-date index in step.
    pub(crate) fn put_key(&mut self, record: KeyRecord) {
        if let Some(old) = self.keys.get(&record.id) {
            for date in due_dates(old) {
                self.due.remove(&(date, old.id));
            }
        }
        for date in due_dates(&record) {
            self.due.insert((date, record.id));
        }
        self.keys.insert(record.id, record);
    }

    /// Removes a key's record, its material and every alias that points to it; returns the names
    /// of those aliases.
    pub(crate) fn remove_key(&mut self, id: &Uuid) -> Vec<String> {
        if let Some(old) = self.keys.remove(id) {
            for date in due_dates(&old) {
                self.due.remove(&(date, old.id));
            }
        }
        self.versions.remove(id);
        let names = self.aliases_of(id);
        for name in &names {
            self.remove_alias(name);
        }
        names
    }

    /// Inserts or replaces an alias.
    pub(crate) fn put_alias(&mut self, alias: AliasRecord) {
        if let Some(old) = self.aliases.get(&alias.name) {
            self.aliases_by_target
                .remove(&(old.target, old.name.clone()));
        }
        self.aliases_by_target
            .insert((alias.target, alias.name.clone()));
        self.aliases.insert(alias.name.clone(), alias);
    }

    /// Removes an alias.
    pub(crate) fn remove_alias(&mut self, name: &str) -> Option<AliasRecord> {
        let old = self.aliases.remove(name)?;
        self.aliases_by_target
            .remove(&(old.target, old.name.clone()));
        Some(old)
    }

    /// The names of the aliases that point to key `id`, in name order.
    pub(crate) fn aliases_of(&self, id: &Uuid) -> Vec<String> {
        self.aliases_by_target
            .range((*id, String::new())..)
            .take_while(|(target, _)| target == id)
            .map(|(_, name)| name.clone())
            .collect()
    }

    /// The key ids ListKeys pages through after `marker` (a hyphenated key id), in order: a range
    /// of the map, not a walk from its start. A marker that is not a hyphenated lower-case key id
    /// (one ListKeys did not hand out) starts at the first key; the page's own comparison of
    /// markers then applies as before.
    pub(crate) fn key_ids_after(&self, marker: Option<&str>) -> impl Iterator<Item = &Uuid> + '_ {
        use std::ops::Bound;
        let start = marker
            .and_then(|m| {
                Uuid::try_parse(m)
                    .ok()
                    .filter(|id| id.hyphenated().to_string() == m)
            })
            .map_or(Bound::Unbounded, Bound::Excluded);
        self.keys.range((start, Bound::Unbounded)).map(|(id, _)| id)
    }

    /// The keys with something due at or before `now`, in key id order.
    pub(crate) fn due_keys(&self, now: Timestamp) -> BTreeSet<Uuid> {
        self.due
            .range(..=(now, Uuid::max()))
            .map(|(_, id)| *id)
            .collect()
    }

    pub(crate) fn record(&self, id: &Uuid) -> Result<&KeyRecord> {
        self.keys
            .get(id)
            .ok_or_else(|| Error::NotFound(format!("key '{id}' does not exist")))
    }
}

impl Engine {
    /// Locks the control plane, catches up with the store and runs whatever deletions and
    /// rotations are due (retried, as any control-plane change, when the store moves on under
    /// them: [`Engine::control_retrying`]).
    pub(crate) fn control(&self) -> Result<MutexGuard<'_, ControlState>> {
        let mut tries = 0;
        loop {
            let mut state = self.lock_control()?;
            self.reload_if_changed(&mut state)?;
            match self.outside_request(|| self.run_due(&mut state)) {
                Ok(()) => return Ok(state),
                Err(Error::Conflict(_)) if tries + 1 < COMMIT_TRIES => {
                    drop(state);
                    tries += 1;
                    backoff(tries);
                }
                Err(Error::Conflict(_)) => return Err(messages::store_kept_changing(COMMIT_TRIES)),
                Err(e) => return Err(e),
            }
        }
    }

    fn lock_control(&self) -> Result<MutexGuard<'_, ControlState>> {
        self.inner
            .control
            .lock()
            .map_err(|_| Error::Internal("control-plane lock poisoned".into()))
    }

    /// Runs one control-plane change: `change` makes its checks against the state and writes
    /// through [`Engine::commit`], which commits only if the store is still at the generation the
    /// state reflects. When another engine sharing the store committed in between
    /// ([`Error::Conflict`]), this engine catches up and runs `change` again from its checks, up
    /// to [`COMMIT_TRIES`] times with a short jittered backoff; then the caller gets Conflict.
    /// `change` must therefore change nothing outside the store before its commit succeeds
    /// (in-memory state and data-plane publication come after it), or only things that it is
    /// harmless to do again.
    pub(crate) fn control_retrying<T>(
        &self,
        mut change: impl FnMut(&mut ControlState) -> Result<T>,
    ) -> Result<T> {
        let mut tries = 0;
        loop {
            let mut state = self.control()?;
            match change(&mut state) {
                Err(Error::Conflict(_)) if tries + 1 < COMMIT_TRIES => {
                    drop(state);
                    tries += 1;
                    backoff(tries);
                }
                Err(Error::Conflict(_)) => return Err(messages::store_kept_changing(COMMIT_TRIES)),
                other => return other,
            }
        }
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

    /// Follows the store if someone else committed since this engine last looked: applies what
    /// changed ([`KeyStore::changes_since`]) and republishes only that to the data plane, or
    /// reloads everything where the store cannot say what changed; then follows the custom key
    /// stores another engine connected or disconnected.
    pub(crate) fn reload_if_changed(&self, state: &mut ControlState) -> Result<()> {
        let store = self.inner.store.as_ref();
        // A store that cannot be reached answers StoreUnreachable (DependencyTimeoutException),
        // which the control-plane call returns; the view stays unconfirmed, so the data plane
        // serves it only until the staleness bound.
        let current = store.generation()?;
        if current == state.generation {
            self.store_answered();
            return Ok(());
        }
        let delta = store.changes_since(state.generation)?;
        let Some(delta) = delta else {
            let fresh = ControlState::load(
                store,
                Some(state),
                self.inner.config.lock_policy,
                &self.inner.custom_key_stores,
            )?;
            *state = fresh;
            self.publish_everything(state);
            self.store_answered();
            return self.follow_custom_key_stores(state);
        };
        let applied = state.apply_delta(
            delta,
            self.inner.config.lock_policy,
            &self.inner.custom_key_stores,
        );
        #[cfg(test)]
        FOLLOWED_KEYS.with(|c| c.set(c.get() + applied.keys.len()));
        self.publish(state, &applied.keys, &applied.aliases);
        // Confirmed only once everything that changed is applied and published: a follow that
        // fails (a replayed row refused, the store gone mid-way) leaves the view unconfirmed.
        self.store_answered();
        if applied.custom_key_stores {
            self.follow_custom_key_stores(state)?;
        }
        Ok(())
    }

    /// Conflict unless the store is still at the generation `state` reflects: for a change that
    /// must write something it cannot take back (another Region's store) before its own commit,
    /// so that a retry happens before that write rather than after it.
    pub(crate) fn ensure_current(&self, state: &ControlState) -> Result<()> {
        let current = self.inner.store.generation()?;
        if current != state.generation {
            return Err(messages::store_conflict(state.generation, current));
        }
        Ok(())
    }

    /// The store answered a follow: the data plane's view is confirmed as of now.
    fn store_answered(&self) {
        self.inner.data.freshness.confirmed();
    }

    /// Writes `changes` through the store, only if it is still at the generation `state`
    /// reflects (else [`Error::Conflict`], and nothing changed: see
    /// [`Engine::control_retrying`]). A store that does not check (the trait's default) may
    /// answer a generation that shows another engine committed in between: the state is then
    /// left marked stale, so the next control-plane call catches up (this change included).
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
        let generation = self.inner.store.commit_at(state.generation, changes)?;
        self.store_answered();
        if generation == state.generation + 1 {
            state.generation = generation;
        }
        Ok(())
    }

    fn run_due(&self, state: &mut ControlState) -> Result<()> {
        let now = self.inner.clock.now();
        match state.due.first() {
            Some((due, _)) if *due <= now => {}
            _ => return Ok(()),
        }
        // Only keys with a due date that has come can have anything to do (the index holds every
        // date `due_dates` gives), and they are taken in key id order, as a walk of every key
        // would take them.
        let due_deletions: Vec<Uuid> = state
            .due_keys(now)
            .iter()
            .filter_map(|id| state.keys.get(id))
            .filter(|r| {
                r.state == KeyState::PendingDeletion && r.deletion_date.is_some_and(|d| d <= now)
            })
            .map(|r| r.id)
            .collect();
        for id in due_deletions {
            self.delete_now(state, id)?;
        }
        let due_rotations: Vec<Uuid> = state
            .due_keys(now)
            .iter()
            .filter_map(|id| state.keys.get(id))
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
        // Keys that are due but cannot act now (a disabled key's rotation) stay due (in the
        // index) and are looked at again by the next control-plane call.
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
        self.checked_record(state, identifier, op, action, facts)
            .cloned()
    }

    /// [`Engine::key_for_request`] without the copy, for calls that only read the record
    /// (DescribeKey): the key is resolved and looked up once.
    pub(crate) fn checked_record<'s>(
        &self,
        state: &'s ControlState,
        identifier: &str,
        op: KeyOperation,
        action: Action,
        facts: RequestFacts<'_>,
    ) -> Result<&'s KeyRecord> {
        let id = self.resolve_id(state, identifier, action)?;
        let facts = RequestFacts {
            identifier: Some(identifier),
            ..facts
        };
        let record = state.record(&id)?;
        self.authorize_key(record, action, &facts)?;
        state::check(
            op,
            state.effective_state(record),
            &self.inner.scope.key_arn(&id),
        )?;
        Ok(record)
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

    /// A key's access rules for the data plane, sharing the parsed policy with every other key
    /// of the same document ([`ControlState`]'s policy cache).
    fn shared_key_access(&self, state: &ControlState, record: &KeyRecord) -> KeyAccess {
        let cached = state.policies.borrow_mut().get(&record.policy);
        match cached {
            Some(policy) => KeyAccess::new(policy, record, &self.inner.config.region),
            None => match self.parse_policy(&record.policy) {
                Ok(policy) => {
                    let policy = Arc::new(policy);
                    state.policies.borrow_mut().insert(&record.policy, &policy);
                    KeyAccess::new(policy, record, &self.inner.config.region)
                }
                Err(_) => self.key_access(record),
            },
        }
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
        state.put_key(record);
        self.publish::<&str>(state, &[id], &[]);
        Ok(())
    }

    /// Replaces the data plane's snapshot entries of the `changed` keys and `aliases` with what
    /// `state` holds for them (removing those it no longer holds). The new snapshot shares every
    /// other entry with the current one: this costs O(log n) per change, not O(n).
    pub(crate) fn publish<S: AsRef<str>>(
        &self,
        state: &ControlState,
        changed: &[Uuid],
        aliases: &[S],
    ) {
        let current = self.inner.data.keyring.load();
        // O(1): the persistent maps share their nodes until changed.
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
        for name in aliases {
            let name = name.as_ref();
            match state.aliases.get(name) {
                Some(alias) => {
                    next.aliases.insert(alias.name.clone(), alias.target);
                }
                None => {
                    next.aliases.remove(name);
                }
            }
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
        #[cfg(test)]
        KEY_ENTRY_BUILDS.with(|c| c.set(c.get() + 1));
        KeyEntry {
            id: record.id,
            arn: self.inner.scope.key_arn(&record.id),
            state: state.effective_state(record),
            spec: record.key_spec,
            usage: record.key_usage,
            versions: state.versions.get(&record.id).cloned().unwrap_or_default(),
            access: Arc::new(self.shared_key_access(state, record)),
        }
    }
}

/// How many times a control-plane change is tried against a shared store that keeps moving on.
pub(crate) const COMMIT_TRIES: u32 = 8;

/// A short, jittered pause before try `tries + 1`: up to 2, 4, 8, ... ms (at most 64), so that
/// engines that conflicted do not meet again in step.
pub(crate) fn backoff(tries: u32) {
    let ceiling_us = 1000u64 << tries.min(6);
    let mut byte = [0u8; 2];
    let jitter = match getrandom_fill(&mut byte) {
        Ok(()) => u64::from(u16::from_le_bytes(byte)) % ceiling_us,
        Err(()) => ceiling_us / 2,
    };
    std::thread::sleep(std::time::Duration::from_micros(jitter + 100));
}

fn getrandom_fill(buf: &mut [u8]) -> std::result::Result<(), ()> {
    crate::crypto::random::fill(buf).map_err(|_| ())
}

/// Parsed policies by document text, held weakly: a policy lives as long as a key's access rules
/// hold it.
#[derive(Default)]
pub(crate) struct PolicyCache {
    parsed: HashMap<String, std::sync::Weak<KeyPolicy>>,
    /// The size at which dead entries are next swept out (amortised O(1) per insert).
    sweep_at: usize,
}

impl PolicyCache {
    fn get(&self, document: &str) -> Option<Arc<KeyPolicy>> {
        self.parsed.get(document)?.upgrade()
    }

    fn insert(&mut self, document: &str, policy: &Arc<KeyPolicy>) {
        if self.parsed.len() >= self.sweep_at {
            self.parsed.retain(|_, p| p.strong_count() > 0);
            self.sweep_at = (self.parsed.len() * 2).max(64);
        }
        self.parsed
            .insert(document.to_owned(), Arc::downgrade(policy));
    }
}

/// What [`ControlState::apply_delta`] changed, for the data plane to republish.
#[derive(Default)]
pub(crate) struct Applied {
    pub(crate) keys: Vec<Uuid>,
    pub(crate) aliases: Vec<String>,
    pub(crate) custom_key_stores: bool,
}

/// The data-plane entries of `record`'s versions, taking its material out of `materials`;
/// `None` (the key is Unavailable) when some version is missing or does not parse. Versions
/// whose material id is unchanged in `previous` keep their entries (and derived-key caches).
/// The one place where stored material becomes data-plane entries, for the full load and for a
/// delta alike.
fn versions_for(
    record: &KeyRecord,
    materials: &mut HashMap<(Uuid, u32), LockedBytes>,
    previous: Option<&ControlState>,
    policy: LockPolicy,
    connections: &crate::custom_key_store::runtime::Runtime,
) -> Option<Vec<Arc<VersionEntry>>> {
    if let Some(placement) = &record.custom_key_store {
        // Usable only while its store is connected: otherwise no entry, so Unavailable.
        return external_versions(record, placement, materials, previous, policy, connections);
    }
    // Versions must be 1, 2, 3, ... in order (the data plane finds version v at v - 1); a record
    // that says otherwise is damaged and its key is Unavailable. Imported material pending
    // rotation is not the data plane's until RotateKeyOnDemand.
    let numbered = record
        .active_versions()
        .enumerate()
        .all(|(i, v)| usize::try_from(v.version).ok() == Some(i + 1));
    if !numbered {
        return None;
    }
    record
        .active_versions()
        .enumerate()
        .map(|(index, v)| {
            let material = materials.remove(&(record.id, v.version))?;
            let kept = previous
                .and_then(|p| p.versions.get(&record.id))
                .and_then(|versions| versions.get(index))
                .filter(|entry| entry.version == v.version && entry.material_id == v.material_id);
            match kept {
                Some(entry) => Some(Arc::clone(entry)),
                // Material that does not parse for its key spec counts as missing: the key
                // becomes Unavailable, every other key keeps working.
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
        .collect()
}

/// The data-plane entries of a key in a custom key store, while its store is connected: kept from
/// `previous` when they were made with the same connection (so their derived-key caches stay),
/// made afresh otherwise.
fn external_versions(
    record: &KeyRecord,
    placement: &crate::key::CustomKeyStoreKey,
    materials: &mut HashMap<(Uuid, u32), LockedBytes>,
    previous: Option<&ControlState>,
    policy: LockPolicy,
    connections: &crate::custom_key_store::runtime::Runtime,
) -> Option<Vec<Arc<VersionEntry>>> {
    // An external key store's key versions also have keyplane-held material (the inner layer of
    // the double encryption); an HSM key store's have none.
    let needs_material = record.keeps_material();
    let connection = connections.connection(&placement.store_id)?;
    record
        .active_versions()
        .enumerate()
        .map(|(index, v)| {
            if usize::try_from(v.version).ok() != Some(index + 1) {
                return None;
            }
            let material = materials.remove(&(record.id, v.version));
            if needs_material && material.is_none() {
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
                    material,
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
fn alias_map(state: &ControlState) -> AliasMap {
    #[cfg(test)]
    ALIAS_MAP_BUILDS.with(|c| c.set(c.get() + 1));
    state
        .aliases
        .values()
        .map(|a| (a.name.clone(), a.target))
        .collect()
}
