//! EnableKeyRotation, DisableKeyRotation, GetKeyRotationStatus, RotateKeyOnDemand,
//! ListKeyRotations, and automatic rotation when due.
//!
//! A rotation adds a key version with new material; the newest version encrypts, and every older
//! version keeps decrypting what it encrypted. Rotation is for symmetric keys with engine-made
//! material only, as in the service.

use uuid::Uuid;

use super::key_fields::new_material_id;
use super::page::{self, Page};
use super::working_copy::ControlState;
use crate::access::request_facts::RequestFacts;
use crate::access::Action;
use crate::clock::Timestamp;
use crate::engine::Engine;
use crate::error::{validation, Error, Result};
use crate::key::state::KeyOperation;
use crate::key::{
    ExpirationModel, ImportState, KeyMaterialState, KeyRecord, KeySpec, Origin, RotationType,
    VersionRecord,
};
use crate::locked_memory::LockedBytes;
use crate::validation::Value;

/// Shortest, longest and default automatic rotation periods, in days.
pub const MIN_ROTATION_PERIOD_DAYS: u32 = 90;
pub const MAX_ROTATION_PERIOD_DAYS: u32 = 2560;
pub const DEFAULT_ROTATION_PERIOD_DAYS: u32 = 365;
/// Most on-demand rotations of one key.
pub const MAX_ON_DEMAND_ROTATIONS: u32 = 25;

/// GetKeyRotationStatus's answer.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct KeyRotationStatus {
    /// The key's ARN.
    pub key_id: String,
    pub key_rotation_enabled: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rotation_period_in_days: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_rotation_date: Option<Timestamp>,
}

/// One entry of ListKeyRotations.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct RotationListEntry {
    pub key_id: String,
    pub key_material_id: String,
    /// When the material became current by a rotation (absent for an EXTERNAL key's first
    /// material and for material pending rotation).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rotation_date: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rotation_type: Option<RotationType>,
    /// EXTERNAL symmetric keys: the importer's description of the material.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_material_description: Option<String>,
    /// EXTERNAL symmetric keys: whether the material is imported now.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub import_state: Option<ImportState>,
    /// EXTERNAL symmetric keys: CURRENT, NON_CURRENT or PENDING_ROTATION.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_material_state: Option<KeyMaterialState>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expiration_model: Option<ExpirationModel>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub valid_to: Option<Timestamp>,
}

fn check_rotatable(record: &KeyRecord) -> Result<()> {
    if record.key_spec != KeySpec::SymmetricDefault {
        return Err(Error::UnsupportedOperation(format!(
            "key {} has key spec {}; only symmetric encryption keys rotate",
            record.id, record.key_spec
        )));
    }
    if record.origin != Origin::AwsKms {
        return Err(Error::UnsupportedOperation(format!(
            "key {} has origin {}; only keys with engine-made material rotate",
            record.id, record.origin
        )));
    }
    Ok(())
}

impl Engine {
    /// Turns on automatic rotation every `rotation_period_in_days` (90–2560, default 365).
    pub fn enable_key_rotation(
        &self,
        key_id: &str,
        rotation_period_in_days: Option<u32>,
    ) -> Result<()> {
        let members: &[(&str, Value)] = &[
            ("KeyId", key_id.into()),
            ("RotationPeriodInDays", rotation_period_in_days.into()),
        ];
        self.audited_request(Action::EnableKeyRotation, Some(key_id), members, || {
            let period = rotation_period_in_days.unwrap_or(DEFAULT_ROTATION_PERIOD_DAYS);
            if !(MIN_ROTATION_PERIOD_DAYS..=MAX_ROTATION_PERIOD_DAYS).contains(&period) {
                return Err(validation!(
                    "RotationPeriodInDays must be {MIN_ROTATION_PERIOD_DAYS} to \
                     {MAX_ROTATION_PERIOD_DAYS}, not {period}"
                ));
            }
            let period_text = period.to_string();
            let facts = RequestFacts {
                rotation_period_in_days: Some(&period_text),
                ..RequestFacts::default()
            };
            let (op, action) = (KeyOperation::ConfigureRotation, Action::EnableKeyRotation);
            self.change_key_request(key_id, op, action, facts, |state, mut record| {
                self.refuse_on_replica(&record, "EnableKeyRotation")?;
                check_rotatable(&record)?;
                record.rotation.enabled = true;
                record.rotation.period_days = period;
                record.rotation.next_rotation = Some(self.inner.clock.now().plus_days(period));
                self.save_key(state, record, None)
            })
        })
    }

    /// Turns off automatic rotation.
    pub fn disable_key_rotation(&self, key_id: &str) -> Result<()> {
        self.audited(Action::DisableKeyRotation, Some(key_id), || {
            crate::validation::key_id(Action::DisableKeyRotation, key_id)?;
            let (op, action) = (KeyOperation::ConfigureRotation, Action::DisableKeyRotation);
            self.change_key(key_id, op, action, |state, mut record| {
                self.refuse_on_replica(&record, "DisableKeyRotation")?;
                check_rotatable(&record)?;
                record.rotation.enabled = false;
                record.rotation.next_rotation = None;
                self.save_key(state, record, None)
            })
        })
    }

    /// Whether automatic rotation is on, its period and the next date.
    pub fn get_key_rotation_status(&self, key_id: &str) -> Result<KeyRotationStatus> {
        self.audited(Action::GetKeyRotationStatus, Some(key_id), || {
            crate::validation::key_id(Action::GetKeyRotationStatus, key_id)?;
            let state = self.control()?;
            let record = self.key_for(
                &state,
                key_id,
                KeyOperation::Read,
                Action::GetKeyRotationStatus,
            )?;
            Ok(KeyRotationStatus {
                key_id: self.inner.scope.key_arn(&record.id),
                key_rotation_enabled: record.rotation.enabled,
                rotation_period_in_days: record
                    .rotation
                    .enabled
                    .then_some(record.rotation.period_days),
                next_rotation_date: record.rotation.next_rotation,
            })
        })
    }

    /// Rotates now (at most 25 times per key); returns the key's ARN.
    pub fn rotate_key_on_demand(&self, key_id: &str) -> Result<String> {
        self.audited(Action::RotateKeyOnDemand, Some(key_id), || {
            crate::validation::key_id(Action::RotateKeyOnDemand, key_id)?;
            let (op, action) = (KeyOperation::RotateKeyOnDemand, Action::RotateKeyOnDemand);
            self.change_key(key_id, op, action, |state, mut record| {
                self.refuse_on_replica(&record, "RotateKeyOnDemand")?;
                if record.origin == Origin::External && record.key_spec == KeySpec::SymmetricDefault {
                    return self.rotate_to_imported_material(state, record);
                }
                check_rotatable(&record)?;
                if record.on_demand_rotations >= MAX_ON_DEMAND_ROTATIONS {
                    return Err(Error::LimitExceeded(format!(
                        "key {} has already been rotated on demand {MAX_ON_DEMAND_ROTATIONS} times, the \
                         most allowed",
                        record.id
                    )));
                }
                record.on_demand_rotations += 1;
                let arn = self.inner.scope.key_arn(&record.id);
                let now = self.inner.clock.now();
                self.add_version(state, record, RotationType::OnDemand, now)?;
                Ok(arn)
            })
    })
    }

    /// RotateKeyOnDemand of an EXTERNAL symmetric key: the imported material pending rotation
    /// becomes current (its material is in the store already).
    fn rotate_to_imported_material(
        &self,
        state: &mut ControlState,
        mut record: KeyRecord,
    ) -> Result<String> {
        let arn = self.inner.scope.key_arn(&record.id);
        let Some(pending) = record
            .versions
            .last_mut()
            .filter(|v| v.is_pending_rotation())
        else {
            return Err(Error::InvalidState(format!(
                "{arn} has no imported key material pending rotation: import new key material \
                 (ImportType NEW_KEY_MATERIAL) first."
            )));
        };
        if !pending.has_material() {
            return Err(Error::InvalidState(format!(
                "the key material pending rotation of {arn} was deleted; import it again first."
            )));
        }
        if record.on_demand_rotations >= MAX_ON_DEMAND_ROTATIONS {
            return Err(Error::LimitExceeded(format!(
                "key {} has already been rotated on demand {MAX_ON_DEMAND_ROTATIONS} times, the \
                 most allowed",
                record.id
            )));
        }
        pending.created = self.inner.clock.now();
        pending.rotation_type = Some(RotationType::OnDemand);
        if let Some(import) = pending.import.as_mut() {
            import.pending_rotation = false;
        }
        record.on_demand_rotations += 1;
        self.commit(state, &[crate::store::StoreChange::PutKey(&record)])?;
        self.reload(state)?;
        Ok(arn)
    }

    /// Rotates a key whose automatic rotation is due.
    pub(crate) fn rotate_automatically(
        &self,
        state: &mut ControlState,
        id: Uuid,
        now: Timestamp,
    ) -> Result<()> {
        let mut record = state.record(&id)?.clone();
        record.rotation.next_rotation = Some(now.plus_days(record.rotation.period_days));
        self.add_version(state, record, RotationType::Automatic, now)
    }

    fn add_version(
        &self,
        state: &mut ControlState,
        mut record: KeyRecord,
        rotation_type: RotationType,
        now: Timestamp,
    ) -> Result<()> {
        let version = record.versions.last().map_or(1, |v| v.version + 1);
        let material = LockedBytes::random(32, self.inner.config.lock_policy)?;
        record.versions.push(VersionRecord {
            version,
            material_id: new_material_id()?,
            created: now,
            rotation_type: Some(rotation_type),
            import: None,
        });
        self.save_key(state, record, Some((version, material)))
    }

    /// ListKeyRotations: the rotations of a key, oldest first; `limit` 1–1000 (default 100).
    pub fn list_key_rotations(
        &self,
        key_id: &str,
        limit: Option<u32>,
        marker: Option<&str>,
    ) -> Result<Page<RotationListEntry>> {
        let members: &[(&str, Value)] = &[
            ("KeyId", key_id.into()),
            ("Limit", limit.into()),
            ("Marker", marker.into()),
        ];
        self.audited_request(Action::ListKeyRotations, Some(key_id), members, || {
            let limit = page::limit(limit, 100, 1000)?;
            let state = self.control()?;
            let record =
                self.key_for(&state, key_id, KeyOperation::Read, Action::ListKeyRotations)?;
            let arn = self.inner.scope.key_arn(&record.id);
            let external = record.origin == Origin::External;
            let current = record.current_version().map(|v| v.version);
            page::paginate(
                record.versions.into_iter().filter_map(|v| {
                    if !external && v.rotation_type.is_none() {
                        return None;
                    }
                    let import = v.import.as_ref();
                    let material_state = if v.is_pending_rotation() {
                        KeyMaterialState::PendingRotation
                    } else if Some(v.version) == current {
                        KeyMaterialState::Current
                    } else {
                        KeyMaterialState::NonCurrent
                    };
                    let entry = RotationListEntry {
                        key_id: arn.clone(),
                        key_material_id: v.material_id.clone(),
                        rotation_date: v.rotation_type.map(|_| v.created),
                        rotation_type: v.rotation_type,
                        key_material_description: import.and_then(|i| i.description.clone()),
                        import_state: import.map(|i| {
                            if i.imported {
                                ImportState::Imported
                            } else {
                                ImportState::PendingImport
                            }
                        }),
                        key_material_state: external.then_some(material_state),
                        expiration_model: import.map(|i| i.expiration_model),
                        valid_to: import.and_then(|i| i.valid_to),
                    };
                    Some((format!("{:010}", v.version), entry))
                }),
                marker,
                limit,
                |m| m.len() == 10 && m.bytes().all(|b| b.is_ascii_digit()),
            )
        })
    }
}
