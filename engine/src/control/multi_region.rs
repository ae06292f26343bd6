//! Multi-Region keys: ReplicateKey and UpdatePrimaryRegion, and the write-through that keeps the
//! shared properties of a multi-Region key the same in every Region's store.
//!
//! A Region is an engine with its own `region` and its own store; an engine is given the stores
//! of its peer Regions ([`crate::EngineBuilder::region_store`]). A multi-Region key has the same
//! `Uuid` (shown as `mrk-...`) in every Region. Its shared properties (key material and every
//! version of it, key spec, key usage, origin, rotation settings and the list of Regions) are
//! written by the primary key's engine to every replica's store in the same call that changes
//! them; the replica's store seals the material under its own root key, as any store does. An
//! engine of the replica's Region, in this process or another, picks the change up through its
//! store's generation, as it picks up any change another engine makes. Independent properties
//! (aliases, policy, grants, tags, enabled state, description, deletion) stay with each Region.
//!
//! Everything happens within the call, so the service's transient states `Creating` (a new
//! replica) and `Updating` (a primary Region change) are never left on a key; the key state table
//! still gives them the service's rules.

use std::sync::Arc;

use uuid::Uuid;

use crate::access::authorize::KeyAccess;
use crate::access::request_facts::RequestFacts;
use crate::access::Action;
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::key::state::{self, KeyOperation};
use crate::key::{
    ArnScope, KeyMetadata, KeyRecord, KeyState, MultiRegionConfiguration, MultiRegionKey,
    MultiRegionKeyType, MultiRegionRecord, Origin, Tag,
};
use crate::locked_memory::LockedBytes;
use crate::messages;
use crate::store::{KeyStore, StoreChange};
use crate::validation::Value;

/// A ReplicateKey request.
#[derive(Debug, Clone, Default)]
pub struct ReplicateKeyRequest {
    /// The primary key: its key id or key ARN.
    pub key_id: String,
    /// The Region of the new replica key (one whose store the engine was given).
    pub replica_region: String,
    pub description: Option<String>,
    /// The replica's key policy; the default key policy when absent (as the service).
    pub policy: Option<String>,
    pub bypass_policy_lockout_safety_check: bool,
    /// The replica's tags (tags are not shared).
    pub tags: Vec<Tag>,
}

/// ReplicateKey's answer.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ReplicateKeyResponse {
    /// The new replica key, as DescribeKey in its Region shows it.
    pub replica_key_metadata: KeyMetadata,
    pub replica_policy: String,
    pub replica_tags: Vec<Tag>,
}

/// DescribeKey's `MultiRegionConfiguration` of key `id` as the engine of `region` holds it.
pub(crate) fn configuration(
    scope: &ArnScope,
    id: &Uuid,
    record: &MultiRegionRecord,
    region: &str,
) -> MultiRegionConfiguration {
    let key = |r: &str| MultiRegionKey {
        arn: scope.key_arn_in(r, id),
        region: r.to_owned(),
    };
    MultiRegionConfiguration {
        multi_region_key_type: if record.is_primary_in(region) {
            MultiRegionKeyType::Primary
        } else {
            MultiRegionKeyType::Replica
        },
        primary_key: key(&record.primary_region),
        replica_keys: record.replica_regions.iter().map(|r| key(r)).collect(),
    }
}

/// Whether the shared properties of two records of one key differ.
fn shared_differ(a: &KeyRecord, b: &KeyRecord) -> bool {
    let versions = |r: &KeyRecord| {
        r.versions
            .iter()
            .map(|v| (v.version, v.material_id.clone(), v.is_pending_rotation()))
            .collect::<Vec<_>>()
    };
    a.key_spec != b.key_spec
        || a.key_usage != b.key_usage
        || a.origin != b.origin
        || a.rotation != b.rotation
        || a.on_demand_rotations != b.on_demand_rotations
        || a.multi_region != b.multi_region
        || versions(a) != versions(b)
}

/// Copies the shared properties of `from` (the primary key's record) into `to` (a replica's).
/// Imported material is imported into each Region on its own, so a replica keeps its own import
/// state of every version it has, and gets the primary's new versions as not yet imported.
fn copy_shared(from: &KeyRecord, to: &mut KeyRecord) {
    to.key_spec = from.key_spec;
    to.key_usage = from.key_usage;
    to.origin = from.origin;
    to.key_manager = from.key_manager;
    to.rotation = from.rotation.clone();
    to.on_demand_rotations = from.on_demand_rotations;
    to.multi_region = from.multi_region.clone();
    to.versions = from
        .versions
        .iter()
        .map(|v| {
            let mut copy = v.clone();
            if let Some(import) = copy.import.as_mut() {
                let own = to
                    .versions
                    .iter()
                    .find(|mine| mine.material_id == v.material_id)
                    .and_then(|mine| mine.import.clone());
                match own {
                    Some(own) => *import = own,
                    None => import.imported = false,
                }
            }
            copy
        })
        .collect();
}

/// Key `id`'s record in `store`, if it holds the key.
fn stored_record(store: &dyn KeyStore, id: &Uuid) -> Result<Option<KeyRecord>> {
    store.load_key(id)
}

/// The store secret under which a multi-Region key's import tokens and imported-material ids
/// are made: one per key, copied to every Region's store, so that the same material has the same
/// KeyMaterialId in every Region and a replica can tell it from different material.
pub(crate) fn import_secret_name(id: &Uuid) -> String {
    format!("multi-region-import.{}", id.hyphenated())
}

impl Engine {
    /// The store of `region` (another Region's).
    fn region_store(&self, region: &str) -> Result<&Arc<dyn KeyStore>> {
        self.inner.region_stores.get(region).ok_or_else(|| {
            Error::UnsupportedOperation(format!(
                "this engine (Region {}) has no key store for Region {region}; give it one \
                 (EngineBuilder::region_store, the front ends' region store option)",
                self.inner.config.region
            ))
        })
    }

    /// Refuses `operation` on a multi-Region replica key: it changes a shared property, which
    /// only the primary key's Region may change.
    pub(crate) fn refuse_on_replica(&self, record: &KeyRecord, operation: &str) -> Result<()> {
        match &record.multi_region {
            Some(m) if !m.is_primary_in(&self.inner.config.region) => {
                Err(Error::UnsupportedOperation(format!(
                    "{} is a multi-Region replica key. {operation} changes a property that a \
                     multi-Region key shares; call it on the primary key in {}.",
                    self.inner.scope.key_arn(&record.id),
                    m.primary_region
                )))
            }
            _ => Ok(()),
        }
    }

    /// Before a change to `record` is committed in this Region: if it is a multi-Region primary
    /// key whose shared properties change, writes them (and `new_material`) to every replica's
    /// store. A failure fails the call before anything is committed here.
    pub(crate) fn write_shared_through(
        &self,
        before: Option<&KeyRecord>,
        record: &KeyRecord,
        new_material: Option<(u32, &LockedBytes)>,
    ) -> Result<()> {
        let Some(config) = &record.multi_region else {
            return Ok(());
        };
        if !config.is_primary_in(&self.inner.config.region)
            || before.is_some_and(|b| !shared_differ(b, record))
        {
            return Ok(());
        }
        for region in &config.replica_regions {
            let store = self.region_store(region)?;
            // A replica deleted there is skipped; its deletion takes it off the list.
            self.update_peer(store.as_ref(), &record.id, new_material, |replica| {
                copy_shared(record, replica);
                true
            })?;
        }
        Ok(())
    }

    /// Writes `config` into the records of key `id` in the stores of every Region of it except
    /// this one and `skip`.
    fn write_configuration(&self, id: &Uuid, config: &MultiRegionRecord, skip: &str) -> Result<()> {
        for region in config.regions() {
            if region == self.inner.config.region || region == skip {
                continue;
            }
            let store = self.region_store(region)?;
            self.update_peer(store.as_ref(), id, None, |peer| {
                peer.multi_region = Some(config.clone());
                true
            })?;
        }
        Ok(())
    }

    /// When a multi-Region key is deleted in this Region: takes this Region off the key's list in
    /// every other Region's store. A primary key that waited in PendingReplicaDeletion for its
    /// last replica begins its own waiting period.
    pub(crate) fn forget_deleted_replica(&self, record: &KeyRecord) -> Result<()> {
        let Some(config) = &record.multi_region else {
            return Ok(());
        };
        let own = self.inner.config.region.as_str();
        let now = self.inner.clock.now();
        for region in config.regions().filter(|r| *r != own) {
            let store = self.region_store(region)?;
            self.update_peer(store.as_ref(), &record.id, None, |peer| {
                let deletion_window = peer.pending_window_days;
                let state = peer.state;
                let Some(peer_config) = peer.multi_region.as_mut() else {
                    return false;
                };
                peer_config.replica_regions.retain(|r| r != own);
                if peer_config.is_primary_in(region)
                    && peer_config.replica_regions.is_empty()
                    && state == KeyState::PendingReplicaDeletion
                {
                    let window =
                        deletion_window.unwrap_or(super::deletion::DEFAULT_PENDING_WINDOW_DAYS);
                    peer.state = KeyState::PendingDeletion;
                    peer.deletion_date = Some(now.plus_days(window));
                }
                true
            })?;
        }
        Ok(())
    }

    /// A read-modify-write of key `id`'s record (with `material`, if given) in another Region's
    /// store, which other engines may share: compare-and-commit on that store's generation read
    /// before the record, tried again from the read when it moved on ([`super::COMMIT_TRIES`]
    /// times), so that a change made there meanwhile is never overwritten. `change` answers
    /// whether there is anything to write; a key no longer stored there is left alone.
    fn update_peer(
        &self,
        store: &dyn KeyStore,
        id: &Uuid,
        material: Option<(u32, &LockedBytes)>,
        mut change: impl FnMut(&mut KeyRecord) -> bool,
    ) -> Result<()> {
        let mut tries = 0;
        loop {
            let generation = store.generation()?;
            let Some(mut peer) = stored_record(store, id)? else {
                return Ok(());
            };
            if !change(&mut peer) {
                return Ok(());
            }
            let mut changes = vec![StoreChange::PutKey(&peer)];
            if let Some((version, material)) = material {
                changes.push(StoreChange::PutMaterial {
                    key_id: *id,
                    version,
                    material,
                });
            }
            self.refuse_dry_run_commit()?;
            match store.commit_at(generation, &changes) {
                Err(Error::Conflict(_)) if tries + 1 < super::COMMIT_TRIES => {
                    tries += 1;
                    super::backoff(tries);
                }
                Err(Error::Conflict(_)) => {
                    return Err(messages::store_kept_changing(super::COMMIT_TRIES))
                }
                other => return other.map(|_| ()),
            }
        }
    }

    /// Checks that the caller may perform `action` on `record` as the engine of `region` holds
    /// it (a replica's own key policy and grants).
    fn authorize_in_region(
        &self,
        record: &KeyRecord,
        region: &str,
        action: Action,
        facts: &RequestFacts<'_>,
    ) -> Result<()> {
        let policy = self
            .parse_policy(&record.policy)
            .unwrap_or_else(|_| crate::policy::KeyPolicy::deny_all());
        KeyAccess::new(policy, record, region).check(
            &self.caller,
            action,
            &self.inner.scope.key_arn_in(region, &record.id),
            record.key_spec,
            record.key_usage,
            facts,
        )
    }

    /// ReplicateKey: creates a replica of a multi-Region primary key in another Region, with the
    /// same key id, material and shared properties, in that Region's store. Needs kms:ReplicateKey
    /// on the primary key, and kms:CreateKey (and kms:TagResource with tags) in the replica
    /// Region, an account-level permission as for CreateKey.
    pub fn replicate_key(&self, request: ReplicateKeyRequest) -> Result<ReplicateKeyResponse> {
        let members: &[(&str, Value)] = &[
            ("KeyId", request.key_id.as_str().into()),
            ("ReplicaRegion", request.replica_region.as_str().into()),
            ("Policy", request.policy.as_deref().into()),
            ("Description", request.description.as_deref().into()),
            ("Tags", Value::Items(request.tags.len())),
        ];
        self.audited_request(Action::ReplicateKey, Some(&request.key_id), members, || {
            let region = request.replica_region.as_str();
            let description = request.description.clone().unwrap_or_default();
            super::key_fields::check_description(&description)?;
            let policy = request
                .policy
                .clone()
                .unwrap_or_else(|| crate::policy::default_policy(&self.inner.config.account_id));
            let parsed_policy = self.parse_new_policy(&policy)?;
            let mut tags = Vec::new();
            super::tags::merge_tags(&mut tags, request.tags.clone())?;

            let facts = RequestFacts {
                replica_region: Some(region),
                bypass_policy_lockout_safety_check: Some(
                    request.bypass_policy_lockout_safety_check,
                ),
                ..RequestFacts::default()
            };
            let (op, action) = (KeyOperation::ReplicateKey, Action::ReplicateKey);
            self.change_key_request(&request.key_id, op, action, facts, |state, mut primary| {
                let arn = self.inner.scope.key_arn(&primary.id);
                let own = self.inner.config.region.as_str();
                let Some(mut config) = primary.multi_region.clone() else {
                    return Err(Error::UnsupportedOperation(format!(
                        "{arn} is not a multi-Region key. Only a multi-Region primary key can be \
                     replicated."
                    )));
                };
                if !config.is_primary_in(own) {
                    return Err(Error::UnsupportedOperation(format!(
                        "{arn} is a multi-Region replica key. Only the primary key (in {}) can be \
                     replicated.",
                        config.primary_region
                    )));
                }
                let replica_arn = self.inner.scope.key_arn_in(region, &primary.id);
                if region == own || config.replica_regions.iter().any(|r| r == region) {
                    return Err(Error::AlreadyExists(format!(
                        "{replica_arn} already exists: Region {region} already has a key of the \
                     multi-Region key {arn}."
                    )));
                }
                // kms:CreateKey (and kms:TagResource for tags) in the replica Region.
                self.authorize_account(Action::CreateKey)?;
                if !tags.is_empty() {
                    self.authorize_account(Action::TagResource)?;
                }
                let store = Arc::clone(self.region_store(region)?);
                // The replica is created only if that Region's store is still as read here, where
                // it held no key of this id (else the whole call runs again): two engines
                // replicating one key there at once create one replica, not one over the other.
                let replica_generation = store.generation()?;
                if stored_record(store.as_ref(), &primary.id)?.is_some() {
                    return Err(Error::AlreadyExists(format!(
                        "{replica_arn} already exists: Region {region} already has a key of the \
                     multi-Region key {arn}."
                    )));
                }
                config.replica_regions.push(region.to_owned());
                config.replica_regions.sort();
                primary.multi_region = Some(config);

                let now = self.inner.clock.now();
                let mut replica = primary.clone();
                replica.versions.clear();
                copy_shared(&primary, &mut replica);
                replica.created = now;
                replica.description = description.clone();
                replica.deletion_date = None;
                replica.pending_window_days = None;
                replica.tags = tags.clone();
                replica.policy = policy.clone();
                replica.grants = Vec::new();
                replica.state = if replica.has_all_material() {
                    KeyState::Enabled
                } else {
                    KeyState::PendingImport
                };
                if !request.bypass_policy_lockout_safety_check {
                    self.check_lockout(&replica, parsed_policy.clone())?;
                }

                let mut changes = vec![StoreChange::PutKey(&replica)];
                if primary.origin != Origin::External {
                    let entries = state
                        .versions
                        .get(&primary.id)
                        .ok_or_else(|| messages::key_state(&arn, KeyState::Unavailable))?;
                    for entry in entries {
                        changes.push(StoreChange::PutMaterial {
                            key_id: primary.id,
                            version: entry.version,
                            material: &entry.material,
                        });
                    }
                }
                self.refuse_dry_run_commit()?;
                if primary.origin == Origin::External {
                    self.copy_import_secret(&primary.id, store.as_ref())?;
                }
                // The replica is written before this Region's commit and cannot be taken back:
                // if this Region's store moved on (the import secret just made, another engine),
                // try again from the checks now, before writing it.
                self.ensure_current(state)?;
                store.commit_at(replica_generation, &changes)?;
                drop(changes);
                // The new list of Regions reaches this Region's store and every other replica's.
                self.save_key(state, primary, None)?;
                let replica_state = replica.state;
                Ok(ReplicateKeyResponse {
                    replica_key_metadata: self.describe_record(&replica, replica_state, region),
                    replica_policy: policy.clone(),
                    replica_tags: tags.clone(),
                })
            })
        })
    }

    /// Copies a multi-Region key's import secret into another Region's store.
    fn copy_import_secret(&self, id: &Uuid, store: &dyn KeyStore) -> Result<()> {
        let secret = self.multi_region_import_secret(id, self.inner.store.as_ref())?;
        let copied = store.get_or_create_secret(&import_secret_name(id), &mut || {
            LockedBytes::copy_from(secret.bytes(), self.inner.config.lock_policy)
        })?;
        if !crate::crypto::hmac::constant_time_eq(copied.bytes(), secret.bytes()) {
            return Err(Error::Internal(format!(
                "the store of the replica Region already holds another import secret for key {id}"
            )));
        }
        Ok(())
    }

    /// The import secret of multi-Region key `id` in `store`, made there on first use.
    pub(crate) fn multi_region_import_secret(
        &self,
        id: &Uuid,
        store: &dyn KeyStore,
    ) -> Result<LockedBytes> {
        store.get_or_create_secret(&import_secret_name(id), &mut || {
            LockedBytes::random(
                crate::crypto::key_import::IMPORT_SECRET_BYTES,
                self.inner.config.lock_policy,
            )
        })
    }

    /// UpdatePrimaryRegion: makes the replica in `primary_region` the primary key and this
    /// Region's primary key a replica. Needs kms:UpdatePrimaryRegion on both keys (each under its
    /// own key policy).
    pub fn update_primary_region(&self, key_id: &str, primary_region: &str) -> Result<()> {
        let members: &[(&str, Value)] = &[
            ("KeyId", key_id.into()),
            ("PrimaryRegion", primary_region.into()),
        ];
        self.audited_request(Action::UpdatePrimaryRegion, Some(key_id), members, || {
            let facts = RequestFacts {
                primary_region: Some(primary_region),
                ..RequestFacts::default()
            };
            let op = KeyOperation::UpdatePrimaryRegion;
            let action = Action::UpdatePrimaryRegion;
            self.change_key_request(key_id, op, action, facts, |state, mut record| {
                let arn = self.inner.scope.key_arn(&record.id);
                let own = self.inner.config.region.clone();
                let Some(config) = record.multi_region.clone() else {
                    return Err(Error::UnsupportedOperation(format!(
                        "{arn} is not a multi-Region key."
                    )));
                };
                if !config.is_primary_in(&own) {
                    return Err(Error::UnsupportedOperation(format!(
                    "{arn} is a multi-Region replica key. Call UpdatePrimaryRegion on the primary \
                     key, in {}.",
                    config.primary_region
                )));
                }
                if primary_region == own {
                    return Err(Error::UnsupportedOperation(format!(
                        "{arn} is already the primary key: its Region is {own}."
                    )));
                }
                let replica_arn = self.inner.scope.key_arn_in(primary_region, &record.id);
                if !config.replica_regions.iter().any(|r| r == primary_region) {
                    return Err(messages::key_does_not_exist(&replica_arn));
                }
                let store = Arc::clone(self.region_store(primary_region)?);
                // The replica's record is decided on as read at this generation of its store,
                // and written back only if that store is still there (else the whole call runs
                // again, reading it afresh).
                let replica_generation = store.generation()?;
                let mut replica = stored_record(store.as_ref(), &record.id)?
                    .ok_or_else(|| messages::key_does_not_exist(&replica_arn))?;
                state::check(
                    KeyOperation::UpdatePrimaryRegion,
                    replica.state,
                    &replica_arn,
                )?;
                self.authorize_in_region(
                    &replica,
                    primary_region,
                    Action::UpdatePrimaryRegion,
                    &facts,
                )?;
                let mut replica_regions: Vec<String> = config
                    .replica_regions
                    .iter()
                    .filter(|r| *r != primary_region)
                    .cloned()
                    .chain(std::iter::once(own.clone()))
                    .collect();
                replica_regions.sort();
                let updated = MultiRegionRecord {
                    primary_region: primary_region.to_owned(),
                    replica_regions,
                };
                self.refuse_dry_run_commit()?;
                replica.multi_region = Some(updated.clone());
                self.ensure_current(state)?;
                store.commit_at(replica_generation, &[StoreChange::PutKey(&replica)])?;
                self.write_configuration(&record.id, &updated, primary_region)?;
                record.multi_region = Some(updated);
                self.save_key(state, record, None)
            })
        })
    }

    /// Whether `record` is a multi-Region replica key in this engine's Region.
    pub(crate) fn is_replica_here(&self, record: &KeyRecord) -> bool {
        record
            .multi_region
            .as_ref()
            .is_some_and(|m| !m.is_primary_in(&self.inner.config.region))
    }

    /// A multi-Region primary key that still has replicas (ScheduleKeyDeletion makes it wait).
    pub(crate) fn has_replicas(&self, record: &KeyRecord) -> bool {
        record.multi_region.as_ref().is_some_and(|m| {
            m.is_primary_in(&self.inner.config.region) && !m.replica_regions.is_empty()
        })
    }
}
