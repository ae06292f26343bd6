//! The control plane's working copy of the store ([`ControlState`]): key records, aliases and
//! custom key stores with the indexes kept in step with them, and the data-plane entries of each
//! key's versions, loaded in full or from a delta of the store.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use uuid::Uuid;

use crate::clock::Timestamp;
use crate::dataplane::keyring::VersionEntry;
use crate::error::{Error, Result};
use crate::key::{AliasRecord, KeyRecord, KeyState};
use crate::locked_memory::{LockPolicy, LockedBytes};
use crate::policy::KeyPolicy;
use crate::store::{KeyStore, StoreDelta};

use super::key_records::KeyRecords;

/// The control plane's working copy of the store.
///
/// Every change to it costs O(log n) in the number of keys and aliases: keys and aliases change
/// through [`ControlState::put_key`], [`ControlState::remove_key`], [`ControlState::put_alias`]
/// and [`ControlState::remove_alias`], which keep the indexes below in step, so that nothing a
/// control-plane call does walks every key (docs/performance.md, "Many keys").
pub(crate) struct ControlState {
    pub(crate) keys: KeyRecords,
    pub(super) aliases: BTreeMap<String, AliasRecord>,
    /// Each alias, by the key it points to (for the deletion of a key).
    pub(super) aliases_by_target: BTreeSet<(Uuid, String)>,
    /// Each key's material, by version (`[v - 1]`); absent when some version could not be read.
    pub(super) versions: HashMap<Uuid, Vec<Arc<VersionEntry>>>,
    /// Every date on which something is due for a key ([`due_dates`]), with the key: the
    /// scheduler looks only at the entries whose date has come.
    pub(super) due: BTreeSet<(Timestamp, Uuid)>,
    /// Parsed key policies by document, shared by every key with that document: most keys have
    /// the default policy, and a parsed policy per key was the largest part of the memory each
    /// key took (about 1.7 KB of 4.8 KB). Entries whose keys are all gone are dropped as the map
    /// grows.
    pub(super) policies: std::cell::RefCell<PolicyCache>,
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
            keys: KeyRecords::default(),
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
        self.keys.insert(record);
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
        self.keys.ids_from(start)
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

/// Parsed policies by document text, held weakly: a policy lives as long as a key's access rules
/// hold it.
#[derive(Default)]
pub(crate) struct PolicyCache {
    parsed: HashMap<String, std::sync::Weak<KeyPolicy>>,
    /// The size at which dead entries are next swept out (amortised O(1) per insert).
    sweep_at: usize,
}

impl PolicyCache {
    pub(super) fn get(&self, document: &str) -> Option<Arc<KeyPolicy>> {
        self.parsed.get(document)?.upgrade()
    }

    pub(super) fn insert(&mut self, document: &str, policy: &Arc<KeyPolicy>) {
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
                            e.connection.same(&connection)
                                && e.backing_key == placement.backing_key_id
                        })
                });
            match kept {
                Some(entry) => Some(Arc::clone(entry)),
                None => VersionEntry::external(
                    v.version,
                    v.material_id.clone(),
                    material,
                    crate::dataplane::external_key::ExternalKey::new(
                        placement.store_id.clone(),
                        placement.backing_key_id.clone(),
                        connection.clone(),
                    ),
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
