//! Copying everything one store holds into another, empty one (`keyplane store migrate`, and a
//! PostgreSQL store's backup into an SQLite store): keys with their policies, grants, tags and
//! rotation history (all in the key records), every version of their material, aliases and
//! custom key stores, in one commit, then checked by loading the copy back.

use keyplane::store::{KeyStore, StoreChange, StoreContents};
use keyplane::{Error, Result};

/// What a copy moved.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct CopyReport {
    pub keys: usize,
    pub versions: usize,
    pub aliases: usize,
    pub custom_key_stores: usize,
    /// The target's generation after the copy.
    pub generation: u64,
}

/// Copies everything `from` holds into `to`, which must hold nothing yet, in one commit, and
/// checks that `to` then loads the same.
pub fn copy_store(from: &dyn KeyStore, to: &dyn KeyStore) -> Result<CopyReport> {
    let source = from.load()?;
    let target = to.load()?;
    if !target.keys.is_empty() || !target.aliases.is_empty() || !target.custom_key_stores.is_empty()
    {
        return Err(Error::AlreadyExists(format!(
            "the target store {} already holds {} keys and {} aliases: migrate only into an \
             empty store",
            to.describe(),
            target.keys.len(),
            target.aliases.len()
        )));
    }
    let mut changes = Vec::new();
    for key in &source.keys {
        changes.push(StoreChange::PutKey(key));
    }
    for m in &source.materials {
        changes.push(StoreChange::PutMaterial {
            key_id: m.key_id,
            version: m.version,
            material: &m.material,
        });
    }
    for alias in &source.aliases {
        changes.push(StoreChange::PutAlias(alias));
    }
    for cks in &source.custom_key_stores {
        changes.push(StoreChange::PutCustomKeyStore {
            record: &cks.record,
            secret: &cks.secret,
        });
    }
    let generation = to.commit(&changes)?;
    let copy = to.load()?;
    check_same(&source, &copy, to)?;
    Ok(CopyReport {
        keys: copy.keys.len(),
        versions: copy.materials.len(),
        aliases: copy.aliases.len(),
        custom_key_stores: copy.custom_key_stores.len(),
        generation,
    })
}

/// Refuses a copy that does not load what the source holds.
fn check_same(a: &StoreContents, b: &StoreContents, to: &dyn KeyStore) -> Result<()> {
    let differs = |what: &str| {
        Err(Error::Store(format!(
            "the copy in {} does not load back as the source: its {what} differ",
            to.describe()
        )))
    };
    let mut ak = a.keys.clone();
    let mut bk = b.keys.clone();
    ak.sort_by_key(|k| k.id);
    bk.sort_by_key(|k| k.id);
    if ak != bk {
        return differs("key records");
    }
    let aliases = |c: &StoreContents| {
        let mut v: Vec<_> = c
            .aliases
            .iter()
            .map(|x| (x.name.clone(), x.target))
            .collect();
        v.sort();
        v
    };
    if aliases(a) != aliases(b) {
        return differs("aliases");
    }
    let versions = |c: &StoreContents| {
        let mut v: Vec<_> = c
            .materials
            .iter()
            .map(|m| (m.key_id, m.version, m.material.expose().to_vec()))
            .collect();
        v.sort();
        v
    };
    if versions(a) != versions(b) {
        return differs("key material");
    }
    let stores = |c: &StoreContents| {
        let mut v: Vec<_> = c
            .custom_key_stores
            .iter()
            .map(|s| (s.record.id.clone(), s.secret.expose().to_vec()))
            .collect();
        v.sort();
        v
    };
    if stores(a) != stores(b) || a.custom_key_stores.len() != b.custom_key_stores.len() {
        return differs("custom key stores");
    }
    Ok(())
}
