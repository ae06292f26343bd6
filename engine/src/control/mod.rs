//! The control plane: key lifecycle, aliases, tags, rotation and deletion, one module per family.
//!
//! Control-plane calls serialise on one mutex (they are rare next to data-plane calls). Each one
//! runs due deletions and rotations first, writes its change through the [`KeyStore`] before it
//! changes anything in memory, and then publishes a new key snapshot for the data plane.
//!
//! [`KeyStore`]: crate::store::KeyStore

mod aliases;
pub(crate) mod control_lock;
mod custom_keys;
mod deletion;
mod grants;
pub(crate) mod import;
mod key_fields;
mod key_records;
mod keys;
mod last_usage;
mod managed;
mod multi_region;
pub(crate) mod page;
mod policies;
mod rotation;
mod tags;
pub(crate) mod working_copy;

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

use std::sync::Arc;

use control_lock::ControlGuard;

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

use crate::access::authorize::KeyAccess;
use crate::access::request_facts::RequestFacts;
use crate::access::Action;
use crate::dataplane::keyring::{AliasMap, KeyEntry, Keyring, VersionEntry};
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::key::identifier::KeyReference;
use crate::key::state::{self, KeyOperation};
use crate::key::{KeyRecord, KeyState};
use crate::locked_memory::LockedBytes;
use crate::messages;
use crate::policy::{KeyPolicy, PolicyError};
use crate::store::StoreChange;

use self::working_copy::ControlState;

impl Engine {
    /// Locks the control plane, catches up with the store and runs whatever deletions and
    /// rotations are due (retried, as any control-plane change, when the store moves on under
    /// them: [`Engine::control_retrying`]).
    pub(crate) fn control(&self) -> Result<ControlGuard<'_>> {
        self.store_usable_here()?;
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

    /// Refuses a copy of the process made by `fork` whose store stays the parent's: its
    /// connections and file locks are the parent's, and the control lock may be held for ever by
    /// a thread the copy does not have (the scheduler's). Checked before that lock is taken.
    pub(crate) fn store_usable_here(&self) -> Result<()> {
        let built_in = self.inner.built_in;
        if !built_in.is_elsewhere() || self.inner.store.outlives_fork() {
            return Ok(());
        }
        Err(messages::store_of_another_process(
            &self.inner.store.describe(),
            built_in.pid(),
        ))
    }

    /// The control-plane lock, without a follow of the store or the due tasks
    /// ([`Engine::control`] runs both). In a copy of the process made by `fork`, a lock one of
    /// the parent's threads held at the fork is an error, not a wait for ever.
    pub(crate) fn lock_control(&self) -> Result<ControlGuard<'_>> {
        let built_in = self.inner.built_in;
        self.inner
            .control
            .lock(built_in.is_elsewhere(), built_in.pid())
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
    /// changed ([`crate::store::KeyStore::changes_since`]) and republishes only that to the data plane, or
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
        self.resolve_record(state, identifier, operation)
            .map(|record| record.id)
    }

    /// As [`Engine::resolve_id`], answering the key's record from the one lookup that found it
    /// (at a million keys a walk of the key map is ~6 levels of cache misses; the callers that
    /// went on to read the record walked it twice).
    pub(crate) fn resolve_record<'s>(
        &self,
        state: &'s ControlState,
        identifier: &str,
        operation: Action,
    ) -> Result<&'s KeyRecord> {
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
        state
            .keys
            .get(&id)
            .ok_or_else(|| messages::key_does_not_exist(&scope.key_arn(&id)))
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

    /// Runs one control-plane change to the key `identifier` names ([`Engine::control_retrying`]):
    /// on every try, `change` gets the state and a copy of the key's record, resolved and checked
    /// for `op` and `action` as [`Engine::key_for`] does.
    pub(crate) fn change_key<T>(
        &self,
        identifier: &str,
        op: KeyOperation,
        action: Action,
        change: impl FnMut(&mut ControlState, KeyRecord) -> Result<T>,
    ) -> Result<T> {
        self.change_key_request(identifier, op, action, RequestFacts::default(), change)
    }

    /// [`Engine::change_key`] for a request with more to say for policy conditions than the key
    /// identifier (as [`Engine::key_for_request`]).
    pub(crate) fn change_key_request<T>(
        &self,
        identifier: &str,
        op: KeyOperation,
        action: Action,
        facts: RequestFacts<'_>,
        mut change: impl FnMut(&mut ControlState, KeyRecord) -> Result<T>,
    ) -> Result<T> {
        self.control_retrying(|state| {
            let record = self.key_for_request(state, identifier, op, action, facts)?;
            change(state, record)
        })
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
        self.checked_record_and_arn(state, identifier, op, action, facts)
            .map(|(record, _)| record.clone())
    }

    /// [`Engine::key_for_request`] without the copy, for calls that only read the record, with
    /// the key's ARN it formatted to authorise the call (DescribeKey answers with it): the key is
    /// resolved and looked up once, and its ARN made once.
    pub(crate) fn checked_record_and_arn<'s>(
        &self,
        state: &'s ControlState,
        identifier: &str,
        op: KeyOperation,
        action: Action,
        facts: RequestFacts<'_>,
    ) -> Result<(&'s KeyRecord, String)> {
        let record = self.resolve_record(state, identifier, action)?;
        let facts = RequestFacts {
            identifier: Some(identifier),
            ..facts
        };
        let arn = self.inner.scope.key_arn(&record.id);
        self.authorize_key_named(record, &arn, action, &facts)?;
        state::check(op, state.effective_state(record), &arn)?;
        Ok((record, arn))
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
        let record = self.resolve_record(state, identifier, operation)?;
        state::check_naming(op, state.effective_state(record), || {
            self.inner.scope.key_arn(&record.id)
        })?;
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
        self.authorize_key_named(record, &self.inner.scope.key_arn(&record.id), action, facts)
    }

    /// [`Self::authorize_key`] for a key whose ARN (`arn`, in the engine's Region) the caller
    /// has made already.
    fn authorize_key_named(
        &self,
        record: &KeyRecord,
        arn: &str,
        action: Action,
        facts: &RequestFacts<'_>,
    ) -> Result<()> {
        // Borrowed from the snapshot, not cloned out of it: two reference counts fewer to write
        // on a cold key's lines.
        let keyring = self.inner.data.keyring.load();
        let unpublished;
        let access = match keyring.keys.get(&record.id) {
            Some(entry) => &entry.access,
            None => {
                unpublished = self.key_access(record);
                &unpublished
            }
        };
        access.check(
            &self.caller,
            action,
            arn,
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
                .unordered()
                .map(|record| (record.id, Arc::new(self.key_entry(state, record))))
                .collect(),
            aliases: alias_map(state),
        };
        self.inner.data.keyring.store(Arc::new(keyring));
    }

    fn key_entry(&self, state: &ControlState, record: &KeyRecord) -> KeyEntry {
        #[cfg(test)]
        KEY_ENTRY_BUILDS.with(|c| c.set(c.get() + 1));
        KeyEntry::new(
            record.id,
            self.inner.scope.key_arn(&record.id),
            state.effective_state(record),
            record.key_spec,
            record.key_usage,
            state.versions.get(&record.id).cloned().unwrap_or_default(),
            self.shared_key_access(state, record),
        )
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
