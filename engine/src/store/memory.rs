//! A key store in process memory: everything is lost when the process ends.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Mutex;

use uuid::Uuid;

use super::{
    KeyStore, StoreChange, StoreContents, StoreDelta, StoredCustomKeyStore, StoredMaterial,
};
use crate::custom_key_store::CustomKeyStoreRecord;
use crate::error::{Error, Result};
use crate::key::{AliasRecord, KeyRecord};
use crate::locked_memory::{LockPolicy, LockedBytes};

/// Every change costs O(log n) in the number of keys: material is ordered by key so that a key's
/// versions are one range, and aliases are indexed by the key they point to.
#[derive(Default)]
struct Contents {
    keys: BTreeMap<Uuid, KeyRecord>,
    aliases: BTreeMap<String, AliasRecord>,
    aliases_by_target: BTreeSet<(Uuid, String)>,
    materials: BTreeMap<(Uuid, u32), LockedBytes>,
    secrets: HashMap<String, LockedBytes>,
    custom_key_stores: BTreeMap<String, (CustomKeyStoreRecord, LockedBytes)>,
    generation: u64,
    /// What each recent commit touched, oldest first, for [`KeyStore::changes_since`]; at most
    /// [`LOG_LIMIT`] entries (a reader further behind loads everything).
    log: std::collections::VecDeque<Touched>,
}

/// The most commits the change log remembers.
const LOG_LIMIT: usize = 4096;

/// What one commit touched.
#[derive(Default)]
struct Touched {
    generation: u64,
    keys: BTreeSet<Uuid>,
    aliases: BTreeSet<String>,
    custom_key_stores: bool,
}

impl Contents {
    fn remove_alias(&mut self, name: &str) {
        if let Some(old) = self.aliases.remove(name) {
            self.aliases_by_target.remove(&(old.target, old.name));
        }
    }

    /// Advances the generation, remembering what the commit touched.
    fn advance(&mut self, mut touched: Touched) -> u64 {
        self.generation += 1;
        touched.generation = self.generation;
        if self.log.len() >= LOG_LIMIT {
            self.log.pop_front();
        }
        self.log.push_back(touched);
        self.generation
    }
}

/// Keys, material (in locked memory) and aliases held in process memory.
pub struct MemoryKeyStore {
    contents: Mutex<Contents>,
    lock_policy: LockPolicy,
}

impl MemoryKeyStore {
    /// An empty store whose copies of key material follow `lock_policy`.
    pub fn new(lock_policy: LockPolicy) -> Self {
        MemoryKeyStore {
            contents: Mutex::new(Contents::default()),
            lock_policy,
        }
    }

    /// Removes one stored version of a key's material, as a damaged store would lose it. For tests
    /// of the Unavailable state.
    pub fn forget_material(&self, key_id: Uuid, version: u32) -> bool {
        self.lock()
            .map(|mut c| {
                let mut touched = Touched::default();
                touched.keys.insert(key_id);
                c.advance(touched);
                c.materials.remove(&(key_id, version)).is_some()
            })
            .unwrap_or(false)
    }

    fn copy(&self, bytes: &LockedBytes) -> Result<LockedBytes> {
        LockedBytes::copy_from(bytes.bytes(), self.lock_policy)
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, Contents>> {
        self.contents
            .lock()
            .map_err(|_| Error::Store("memory store lock poisoned".into()))
    }
}

impl Default for MemoryKeyStore {
    fn default() -> Self {
        Self::new(LockPolicy::default())
    }
}

impl std::fmt::Debug for MemoryKeyStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MemoryKeyStore")
    }
}

impl KeyStore for MemoryKeyStore {
    fn load(&self) -> Result<StoreContents> {
        let c = self.lock()?;
        let mut materials = Vec::with_capacity(c.materials.len());
        for ((key_id, version), material) in &c.materials {
            materials.push(StoredMaterial {
                key_id: *key_id,
                version: *version,
                material: LockedBytes::copy_from(material.bytes(), self.lock_policy)?,
            });
        }
        let mut custom_key_stores = Vec::with_capacity(c.custom_key_stores.len());
        for (record, secret) in c.custom_key_stores.values() {
            custom_key_stores.push(StoredCustomKeyStore {
                record: record.clone(),
                secret: LockedBytes::copy_from(secret.bytes(), self.lock_policy)?,
            });
        }
        Ok(StoreContents {
            keys: c.keys.values().cloned().collect(),
            aliases: c.aliases.values().cloned().collect(),
            materials,
            custom_key_stores,
            generation: c.generation,
        })
    }

    fn load_key(&self, id: &Uuid) -> Result<Option<KeyRecord>> {
        Ok(self.lock()?.keys.get(id).cloned())
    }

    fn commit(&self, changes: &[StoreChange<'_>]) -> Result<u64> {
        self.commit_checked(None, changes)
    }

    fn commit_at(&self, expected: u64, changes: &[StoreChange<'_>]) -> Result<u64> {
        self.commit_checked(Some(expected), changes)
    }

    fn changes_since(&self, generation: u64) -> Result<Option<StoreDelta>> {
        let c = self.lock()?;
        if generation > c.generation {
            return Ok(None);
        }
        let mut delta = StoreDelta {
            generation: c.generation,
            ..StoreDelta::default()
        };
        if generation == c.generation {
            return Ok(Some(delta));
        }
        // The log must hold every commit after `generation`.
        match c.log.front() {
            Some(first) if first.generation <= generation + 1 => {}
            _ => return Ok(None),
        }
        let mut keys = BTreeSet::new();
        let mut aliases = BTreeSet::new();
        let mut custom_key_stores = false;
        for touched in c.log.iter().filter(|t| t.generation > generation) {
            keys.extend(touched.keys.iter().copied());
            aliases.extend(touched.aliases.iter().cloned());
            custom_key_stores |= touched.custom_key_stores;
        }
        for id in keys {
            let record = c.keys.get(&id).cloned();
            if record.is_some() {
                for ((key_id, version), material) in c.materials.range((id, 0)..=(id, u32::MAX)) {
                    delta.materials.push(StoredMaterial {
                        key_id: *key_id,
                        version: *version,
                        material: self.copy(material)?,
                    });
                }
            }
            delta.keys.push((id, record));
        }
        for name in aliases {
            let record = c.aliases.get(&name).cloned();
            delta.aliases.push((name, record));
        }
        if custom_key_stores {
            let mut all = Vec::with_capacity(c.custom_key_stores.len());
            for (record, secret) in c.custom_key_stores.values() {
                all.push(StoredCustomKeyStore {
                    record: record.clone(),
                    secret: self.copy(secret)?,
                });
            }
            delta.custom_key_stores = Some(all);
        }
        Ok(Some(delta))
    }

    fn generation(&self) -> Result<u64> {
        Ok(self.lock()?.generation)
    }

    fn describe(&self) -> String {
        "memory".into()
    }

    /// A copy of the process has a copy of the store: its changes stay in the copy.
    fn outlives_fork(&self) -> bool {
        true
    }

    fn get_or_create_secret(
        &self,
        name: &str,
        create: &mut dyn FnMut() -> Result<LockedBytes>,
    ) -> Result<LockedBytes> {
        let mut c = self.lock()?;
        if let Some(secret) = c.secrets.get(name) {
            return LockedBytes::copy_from(secret.bytes(), self.lock_policy);
        }
        let secret = create()?;
        let copy = LockedBytes::copy_from(secret.bytes(), self.lock_policy)?;
        c.secrets.insert(name.to_owned(), secret);
        Ok(copy)
    }
}

impl MemoryKeyStore {
    fn commit_checked(&self, expected: Option<u64>, changes: &[StoreChange<'_>]) -> Result<u64> {
        // Copy material first so that a locking failure leaves the store unchanged.
        let mut copies = Vec::new();
        for change in changes {
            match change {
                StoreChange::PutMaterial { material, .. } => {
                    copies.push(LockedBytes::copy_from(material.bytes(), self.lock_policy)?);
                }
                StoreChange::PutCustomKeyStore { secret, .. } => {
                    copies.push(LockedBytes::copy_from(secret.bytes(), self.lock_policy)?);
                }
                _ => {}
            }
        }
        let mut copies = copies.into_iter();
        let mut c = self.lock()?;
        if let Some(expected) = expected {
            if c.generation != expected {
                return Err(crate::messages::store_conflict(expected, c.generation));
            }
        }
        let mut touched = Touched::default();
        for change in changes {
            match change {
                StoreChange::PutKey(record) => {
                    touched.keys.insert(record.id);
                    c.keys.insert(record.id, (*record).clone());
                }
                StoreChange::PutMaterial {
                    key_id, version, ..
                } => {
                    let copy = copies
                        .next()
                        .ok_or_else(|| Error::Internal("material copy missing".into()))?;
                    touched.keys.insert(*key_id);
                    c.materials.insert((*key_id, *version), copy);
                }
                StoreChange::DeleteMaterial { key_id, version } => {
                    touched.keys.insert(*key_id);
                    c.materials.remove(&(*key_id, *version));
                }
                StoreChange::DeleteKey(id) => {
                    touched.keys.insert(*id);
                    c.keys.remove(id);
                    let versions: Vec<(Uuid, u32)> = c
                        .materials
                        .range((*id, 0)..=(*id, u32::MAX))
                        .map(|(k, _)| *k)
                        .collect();
                    for version in versions {
                        c.materials.remove(&version);
                    }
                    let names: Vec<String> = c
                        .aliases_by_target
                        .range((*id, String::new())..)
                        .take_while(|(target, _)| target == id)
                        .map(|(_, name)| name.clone())
                        .collect();
                    for name in names {
                        c.remove_alias(&name);
                        touched.aliases.insert(name);
                    }
                }
                StoreChange::PutAlias(alias) => {
                    touched.aliases.insert(alias.name.clone());
                    c.remove_alias(&alias.name);
                    c.aliases_by_target
                        .insert((alias.target, alias.name.clone()));
                    c.aliases.insert(alias.name.clone(), (*alias).clone());
                }
                StoreChange::DeleteAlias(name) => {
                    touched.aliases.insert((*name).to_owned());
                    c.remove_alias(name);
                }
                StoreChange::PutCustomKeyStore { record, .. } => {
                    let copy = copies
                        .next()
                        .ok_or_else(|| Error::Internal("secret copy missing".into()))?;
                    touched.custom_key_stores = true;
                    c.custom_key_stores
                        .insert(record.id.clone(), ((*record).clone(), copy));
                }
                StoreChange::DeleteCustomKeyStore(id) => {
                    touched.custom_key_stores = true;
                    c.custom_key_stores.remove(*id);
                }
            }
        }
        Ok(c.advance(touched))
    }
}
