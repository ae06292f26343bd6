//! The key store behind the control plane.
//!
//! The engine keeps its working state in memory and writes every control-plane change through a
//! [`KeyStore`] before it acknowledges it; at start it loads everything back. The data plane never
//! touches the store. [`MemoryKeyStore`] keeps everything in process memory (key material in locked
//! memory); the durable stores implement the same trait.
//!
//! Several engines (in one process or several) may share a store: each commit advances the store's
//! generation; every control-plane change is written with [`KeyStore::commit_at`] at the generation
//! the engine's view reflects, and run again from its checks when another engine committed first
//! (no lost updates); an engine that sees a generation it did not produce applies
//! [`KeyStore::changes_since`] (or reloads everything where the store cannot say) before its next
//! control-plane call, and in the background every `scheduler_interval` or at once on the store's
//! push notice ([`KeyStore::subscribe`]). `docs/store.md`, "Sharing a store", has the whole design,
//! with the staleness bound (fail closed).

mod memory;

pub use memory::MemoryKeyStore;
use uuid::Uuid;

use crate::custom_key_store::CustomKeyStoreRecord;
use crate::error::Result;
use crate::key::{AliasRecord, KeyRecord};
use crate::locked_memory::LockedBytes;

/// One change in an atomic [`KeyStore::commit`].
#[derive(Debug)]
pub enum StoreChange<'a> {
    /// Insert or replace a key's record.
    PutKey(&'a KeyRecord),
    /// Store one version of a key's material.
    PutMaterial {
        key_id: Uuid,
        version: u32,
        material: &'a LockedBytes,
    },
    /// Remove one version of a key's material, keeping the key (imported material that expired or
    /// was deleted). Nothing to remove is not an error.
    DeleteMaterial { key_id: Uuid, version: u32 },
    /// Remove a key, its material and every alias that points to it.
    DeleteKey(Uuid),
    /// Insert or replace an alias.
    PutAlias(&'a AliasRecord),
    /// Remove an alias.
    DeleteAlias(&'a str),
    /// Insert or replace a custom key store's definition with its secret (the crypto user's PIN,
    /// the proxy credential's secret), which a durable store keeps sealed under its root key.
    PutCustomKeyStore {
        record: &'a CustomKeyStoreRecord,
        secret: &'a LockedBytes,
    },
    /// Remove a custom key store's definition and secret.
    DeleteCustomKeyStore(&'a str),
}

/// A stored custom key store: its definition and its secret.
#[derive(Debug)]
pub struct StoredCustomKeyStore {
    pub record: CustomKeyStoreRecord,
    pub secret: LockedBytes,
}

/// A stored version of key material.
#[derive(Debug)]
pub struct StoredMaterial {
    pub key_id: Uuid,
    pub version: u32,
    pub material: LockedBytes,
}

/// Everything a store holds, as loaded at start.
#[derive(Debug, Default)]
pub struct StoreContents {
    pub keys: Vec<KeyRecord>,
    pub aliases: Vec<AliasRecord>,
    /// Every version of every key's material that could be read. A key with a version missing
    /// here is marked Unavailable.
    pub materials: Vec<StoredMaterial>,
    /// Every custom key store's definition and secret.
    pub custom_key_stores: Vec<StoredCustomKeyStore>,
    /// The store's generation these contents reflect (see [`KeyStore::generation`]).
    pub generation: u64,
}

/// What changed in a store after a generation a reader saw, with the current contents of
/// everything that changed: applying it to a view at that generation gives the view at
/// [`StoreDelta::generation`] without reading anything else.
#[derive(Debug, Default)]
pub struct StoreDelta {
    /// The generation this delta brings a reader to.
    pub generation: u64,
    /// Every key whose record or material changed: its current record, or `None` where it was
    /// deleted.
    pub keys: Vec<(Uuid, Option<KeyRecord>)>,
    /// Every stored version of the material of each key in `keys` that still exists: the whole
    /// set for that key, replacing what the reader held.
    pub materials: Vec<StoredMaterial>,
    /// Every alias that changed: its current record, or `None` where it was deleted.
    pub aliases: Vec<(String, Option<AliasRecord>)>,
    /// Where any custom key store changed: all of them, as [`KeyStore::load`] gives them.
    pub custom_key_stores: Option<Vec<StoredCustomKeyStore>>,
}

/// Persistence for keys, their material and aliases.
pub trait KeyStore: Send + Sync + 'static {
    /// Everything stored.
    fn load(&self) -> Result<StoreContents>;
    /// The record of one key, if stored (without its material). The default loads everything and
    /// picks it out; a store that can look one key up should, as the engine reads a peer Region's
    /// record this way on every change to a multi-Region key.
    fn load_key(&self, id: &Uuid) -> Result<Option<KeyRecord>> {
        Ok(self.load()?.keys.into_iter().find(|r| r.id == *id))
    }
    /// Applies `changes` atomically: all of them, durably, or none. Returns only once they are as
    /// durable as the store promises, with the generation the commit produced.
    fn commit(&self, changes: &[StoreChange<'_>]) -> Result<u64>;
    /// Like [`KeyStore::commit`], but only if the store is still at generation `expected` (the one
    /// the caller's view reflects): otherwise nothing changes and the answer is
    /// [`crate::Error::Conflict`], and the caller catches up and decides again. This is what keeps
    /// two engines sharing a store from losing each other's updates. The default does not check,
    /// which is right only for a store no one else writes.
    fn commit_at(&self, expected: u64, changes: &[StoreChange<'_>]) -> Result<u64> {
        let _ = expected;
        self.commit(changes)
    }
    /// What changed after `generation`, or `None` where the store cannot say (it keeps no change
    /// log, or its log no longer reaches back that far, or `generation` is ahead of it): the
    /// reader then loads everything.
    fn changes_since(&self, generation: u64) -> Result<Option<StoreDelta>> {
        let _ = generation;
        Ok(None)
    }
    /// A number that grows with every commit by anyone (this process or another sharing the
    /// store). The engine reloads when it differs from the generation it last saw.
    fn generation(&self) -> Result<u64>;
    /// Asks the store to call `wake` soon after anyone commits (PostgreSQL's LISTEN/NOTIFY, for
    /// one), so that an engine follows a change made elsewhere at once instead of at its next
    /// poll. Returns whether it will; a store that cannot (the default) is only polled. `wake`
    /// must be cheap and must not block: it only signals. It may be called after the engine that
    /// subscribed is gone (it then does nothing).
    fn subscribe(&self, wake: std::sync::Arc<dyn Fn() + Send + Sync>) -> Result<bool> {
        let _ = wake;
        Ok(false)
    }
    /// A short description for diagnostics ("memory", "sqlite:/path").
    fn describe(&self) -> String;
    /// Whether a copy of the process made by `fork` may go on using this store: true for a store
    /// in the process's own memory, false (the default) for any that holds connections, file
    /// descriptors or file locks, which stay the parent's (SQLite's rule: do not carry a
    /// connection across fork). An engine in such a copy refuses its control plane.
    fn outlives_fork(&self) -> bool {
        false
    }
    /// The store's secret named `name`; if there is none, the one `create` makes, stored first
    /// (atomically: two engines creating it at once get the same one). A durable store keeps it
    /// sealed under its root key. The engine keeps its import secret here (import tokens and
    /// imported-material ids), so that an import works across a restart. A store that keeps no
    /// secrets answers UnsupportedOperation, and key material cannot be imported into its keys.
    fn get_or_create_secret(
        &self,
        name: &str,
        create: &mut dyn FnMut() -> Result<LockedBytes>,
    ) -> Result<LockedBytes> {
        let _ = (name, create);
        Err(crate::error::Error::UnsupportedOperation(format!(
            "the key store {} keeps no secrets, so key material cannot be imported into its keys",
            self.describe()
        )))
    }
}
