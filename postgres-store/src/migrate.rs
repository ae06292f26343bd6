//! Copying everything one store holds into another, empty one (`keyplane store migrate`, and a
//! PostgreSQL store's backup into an SQLite store): keys with their policies, grants, tags and
//! rotation history (all in the key records), every version of their material, aliases and
//! custom key stores, in one commit, then checked by loading the copy back.

use keyplane::sealing::constant_time_eq;
use keyplane::store::{KeyStore, StoreChange, StoreContents};
use keyplane::{Error, Result};
use keyplane::{LockedBytes, SecretAccess};

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
    // Secrets are compared where they lie (locked memory), in constant time, never copied out.
    if !same_secrets(&versions(a), &versions(b)) {
        return differs("key material");
    }
    if !same_secrets(&stores(a), &stores(b)) {
        return differs("custom key stores");
    }
    Ok(())
}

/// Whether two lists of named secrets (sorted by name) name the same secrets with equal bytes,
/// compared in constant time where they lie.
fn same_secrets<K: PartialEq>(a: &[(K, &LockedBytes)], b: &[(K, &LockedBytes)]) -> bool {
    a.len() == b.len()
        && a.iter().zip(b).all(|((ka, sa), (kb, sb))| {
            ka == kb
                && constant_time_eq(
                    sa.expose(SecretAccess::granted()),
                    sb.expose(SecretAccess::granted()),
                )
        })
}

/// Every key version's material, by (key, version).
fn versions(c: &StoreContents) -> Vec<((uuid::Uuid, u32), &LockedBytes)> {
    let mut v: Vec<_> = c
        .materials
        .iter()
        .map(|m| ((m.key_id, m.version), &m.material))
        .collect();
    v.sort_by_key(|x| x.0);
    v
}

/// Every custom key store's secret, by store id.
fn stores(c: &StoreContents) -> Vec<(String, &LockedBytes)> {
    let mut v: Vec<_> = c
        .custom_key_stores
        .iter()
        .map(|s| (s.record.id.clone(), &s.secret))
        .collect();
    v.sort_by(|x, y| x.0.cmp(&y.0)); // a String key: sort_by_key would clone each
    v
}
