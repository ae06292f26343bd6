//! CreateKey, DescribeKey, ListKeys, UpdateKeyDescription, EnableKey, DisableKey.

use uuid::Uuid;

use super::key_fields::{check_description, new_material_id};
use super::page::{self, Page};
use super::working_copy::ControlState;
use crate::access::Action;
use crate::dataplane::primitive::generate_material;
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::key::state::KeyOperation;
use crate::key::{
    KeyManager, KeyMetadata, KeyRecord, KeySpec, KeyState, KeyUsage, MultiRegionRecord, Origin,
    RotationConfig, Tag, VersionRecord,
};
use crate::messages;
use crate::validation::Value;

/// A CreateKey request; every field optional as in the service.
#[derive(Debug, Clone, Default)]
pub struct CreateKeyRequest {
    pub description: Option<String>,
    pub key_usage: Option<KeyUsage>,
    pub key_spec: Option<KeySpec>,
    pub origin: Option<Origin>,
    pub tags: Vec<Tag>,
    pub multi_region: Option<bool>,
    /// A key policy document; the default policy (the account root may do everything) when
    /// absent.
    pub policy: Option<String>,
    /// Create the key even if its policy would not let the creator change it (PutKeyPolicy).
    pub bypass_policy_lockout_safety_check: bool,
    /// The custom key store to create the key in (with origin AWS_CLOUDHSM or
    /// EXTERNAL_KEY_STORE).
    pub custom_key_store_id: Option<String>,
    /// EXTERNAL_KEY_STORE: the external key's id in the proxy.
    pub xks_key_id: Option<String>,
}

/// One entry of ListKeys.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct KeyListEntry {
    pub key_id: String,
    pub key_arn: String,
}

impl Engine {
    /// Creates a key. SYMMETRIC_DEFAULT keys are supported by this build; every other key spec
    /// is modelled and refused with UnsupportedOperation.
    pub fn create_key(&self, request: CreateKeyRequest) -> Result<KeyMetadata> {
        self.audited(Action::CreateKey, None, || {
            let r = &request;
            crate::validation::check_request(
                Action::CreateKey,
                &[
                    ("Description", r.description.as_deref().into()),
                    ("Policy", r.policy.as_deref().into()),
                    ("Tags", Value::Items(r.tags.len())),
                    ("CustomKeyStoreId", r.custom_key_store_id.as_deref().into()),
                    ("XksKeyId", r.xks_key_id.as_deref().into()),
                ],
            )?;
            let spec = request.key_spec.unwrap_or(KeySpec::SymmetricDefault);
            let usage = match request.key_usage {
                Some(usage) => usage,
                None if spec == KeySpec::SymmetricDefault => KeyUsage::EncryptDecrypt,
                None => return Err(messages::key_usage_required()),
            };
            if !spec.allowed_usages().contains(&usage) {
                return Err(messages::usage_incompatible_with_spec(usage, spec));
            }
            if !spec.is_supported() {
                return Err(Error::UnsupportedOperation(format!(
                    "key spec {spec} is not yet supported by this keyplane build (SM2 and ML-DSA are \
                     not available in AWS-LC's Rust binding as the service uses them)"
                )));
            }
            let origin = request.origin.unwrap_or(Origin::AwsKms);
            if origin == Origin::External && !super::import::importable(spec) {
                return Err(Error::UnsupportedOperation(format!(
                    "importing key material is supported for symmetric, HMAC, RSA and ECC (NIST and \
                     secp256k1) keys, not {spec}"
                )));
            }
            let multi_region = request.multi_region == Some(true);
            let in_custom_key_store = super::custom_keys::check_request(
                origin,
                spec,
                usage,
                multi_region,
                request.custom_key_store_id.as_deref(),
                request.xks_key_id.as_deref(),
            )?;
            let description = request.description.unwrap_or_default();
            check_description(&description)?;
            let policy = request
                .policy
                .unwrap_or_else(|| crate::policy::default_policy(&self.inner.config.account_id));
            let parsed_policy = self.parse_new_policy(&policy)?;
            let mut tags = Vec::new();
            super::tags::merge_tags(&mut tags, request.tags)?;

            self.authorize_account(Action::CreateKey)?;
            // One id for every try, so that a backing key made in a custom key store by a try
            // whose commit conflicted belongs to the key the next try commits.
            let key_id = if multi_region {
                crate::key::identifier::new_multi_region_id()?
            } else {
                Uuid::new_v4()
            };
            // The backing key (made in the HSM, or checked with the XKS proxy) before the commit,
            // with the control-plane lock released; the commit checks it still holds.
            let backing = match in_custom_key_store {
                Some(store_id) => Some(self.prepare_backing_key(
                    store_id,
                    origin,
                    &key_id,
                    request.xks_key_id.as_deref(),
                )?),
                None => None,
            };
            self.control_retrying(|state| {
                if state.keys.len() >= self.inner.config.max_keys {
                    return Err(Error::LimitExceeded(format!(
                        "this engine already holds its maximum of {} keys",
                        self.inner.config.max_keys
                    )));
                }
                let now = self.inner.clock.now();
                let id = key_id;
                let mut placement = None;
                let (key_state, material, versions) = if origin == Origin::External {
                    (KeyState::PendingImport, None, Vec::new())
                } else if let Some(prepared) = &backing {
                    // Made once, before the first try: every try (after a conflict) uses it.
                    placement = Some(self.use_backing_key(
                        state,
                        prepared,
                        origin,
                        request.xks_key_id.as_deref(),
                    )?);
                    let version = VersionRecord {
                        version: 1,
                        material_id: new_material_id()?,
                        created: now,
                        rotation_type: None,
                        import: None,
                    };
                    // An external key store's key also has keyplane-held material: the inner
                    // layer of the double encryption (docs/xks.md). An HSM key store's has none.
                    let material = (origin == Origin::ExternalKeyStore)
                        .then(|| generate_material(spec, usage, self.inner.config.lock_policy))
                        .transpose()?
                        .map(|m| (1, m));
                    (KeyState::Enabled, material, vec![version])
                } else {
                    let material = generate_material(spec, usage, self.inner.config.lock_policy)?;
                    let version = VersionRecord {
                        version: 1,
                        material_id: new_material_id()?,
                        created: now,
                        rotation_type: None,
                        import: None,
                    };
                    (KeyState::Enabled, Some((1, material)), vec![version])
                };
                let record = KeyRecord {
                    id,
                    created: now,
                    description: description.clone(),
                    key_spec: spec,
                    key_usage: usage,
                    origin,
                    key_manager: KeyManager::Customer,
                    state: key_state,
                    deletion_date: None,
                    pending_window_days: None,
                    tags: tags.clone(),
                    rotation: RotationConfig {
                        enabled: false,
                        period_days: super::rotation::DEFAULT_ROTATION_PERIOD_DAYS,
                        next_rotation: None,
                    },
                    versions,
                    on_demand_rotations: 0,
                    policy: policy.clone(),
                    grants: Vec::new(),
                    multi_region: multi_region.then(|| MultiRegionRecord {
                        primary_region: self.inner.config.region.clone(),
                        replica_regions: Vec::new(),
                    }),
                    custom_key_store: placement,
                };
                if !request.bypass_policy_lockout_safety_check {
                    self.check_lockout(&record, parsed_policy.clone())?;
                }
                let in_store = record.custom_key_store.is_some();
                self.save_key(state, record, material)?;
                if in_store {
                    // Its data-plane entry comes from the store's live connection.
                    self.reload(state)?;
                }
                self.metadata(state, &id)
            })
    })
    }

    /// DescribeKey.
    pub fn describe_key(&self, key_id: &str) -> Result<KeyMetadata> {
        self.audited(Action::DescribeKey, Some(key_id), || {
            crate::validation::key_id(Action::DescribeKey, key_id)?;
            self.ensure_managed_keys(&[Some(key_id)])?;
            let state = self.control()?;
            let (record, arn) = self.checked_record_and_arn(
                &state,
                key_id,
                KeyOperation::Read,
                Action::DescribeKey,
                Default::default(),
            )?;
            // The engine's own Region, whose ARN the authorisation made.
            let mut metadata = self.describe_record_with_arn(
                record,
                state.effective_state(record),
                &self.inner.config.region,
                arn,
            );
            metadata.cloud_hsm_cluster_id = cloud_hsm_cluster_id(&state, record);
            Ok(metadata)
        })
    }

    pub(crate) fn metadata(&self, state: &ControlState, id: &Uuid) -> Result<KeyMetadata> {
        let record = state.record(id)?;
        let mut metadata = self.describe_record(
            record,
            state.effective_state(record),
            &self.inner.config.region,
        );
        metadata.cloud_hsm_cluster_id = cloud_hsm_cluster_id(state, record);
        Ok(metadata)
    }

    /// DescribeKey's answer for `record` as the engine of `region` holds it, in `key_state`.
    pub(crate) fn describe_record(
        &self,
        record: &KeyRecord,
        key_state: KeyState,
        region: &str,
    ) -> KeyMetadata {
        let arn = self.inner.scope.key_arn_in(region, &record.id);
        self.describe_record_with_arn(record, key_state, region, arn)
    }

    /// [`Self::describe_record`] with the key's ARN in `region`, made already.
    fn describe_record_with_arn(
        &self,
        record: &KeyRecord,
        key_state: KeyState,
        region: &str,
        arn: String,
    ) -> KeyMetadata {
        let scope = &self.inner.scope;
        KeyMetadata {
            aws_account_id: self.inner.config.account_id.clone(),
            key_id: crate::key::identifier::key_id_string(&record.id),
            arn,
            creation_date: record.created,
            enabled: key_state == KeyState::Enabled,
            description: record.description.clone(),
            key_usage: record.key_usage,
            key_state,
            deletion_date: record.deletion_date,
            origin: record.origin,
            key_manager: record.key_manager,
            customer_master_key_spec: record.key_spec,
            key_spec: record.key_spec,
            encryption_algorithms: record.key_spec.encryption_algorithms(record.key_usage),
            signing_algorithms: record.key_spec.signing_algorithms(record.key_usage),
            mac_algorithms: record.key_spec.mac_algorithm().into_iter().collect(),
            key_agreement_algorithms: record.key_spec.key_agreement_algorithms(record.key_usage),
            multi_region: record.multi_region.is_some(),
            multi_region_configuration: record
                .multi_region
                .as_ref()
                .map(|m| super::multi_region::configuration(scope, &record.id, m, region)),
            pending_deletion_window_in_days: record.pending_window_days,
            current_key_material_id: record.current_version().map(|v| v.material_id.clone()),
            valid_to: record
                .current_version()
                .and_then(|v| v.import.as_ref())
                .filter(|i| i.imported)
                .and_then(|i| i.valid_to),
            expiration_model: record
                .current_version()
                .and_then(|v| v.import.as_ref())
                .filter(|i| i.imported)
                .map(|i| i.expiration_model),
            custom_key_store_id: record.custom_key_store.as_ref().map(|c| c.store_id.clone()),
            // Filled in by `metadata`, which has the store definitions.
            cloud_hsm_cluster_id: None,
            xks_key_configuration: (record.origin == Origin::ExternalKeyStore)
                .then_some(record.custom_key_store.as_ref())
                .flatten()
                .map(|c| crate::key::XksKeyConfiguration {
                    id: c.backing_key_id.clone(),
                }),
            key_rotation_enabled: record.rotation.enabled,
        }
    }

    /// ListKeys: every key, in key id order, `limit` (1–1000, default 100) at a time.
    pub fn list_keys(
        &self,
        limit: Option<u32>,
        marker: Option<&str>,
    ) -> Result<Page<KeyListEntry>> {
        let members: &[(&str, Value)] = &[("Limit", limit.into()), ("Marker", marker.into())];
        self.audited_request(Action::ListKeys, None, members, || {
            let limit = page::limit(limit, 100, 1000)?;
            self.authorize_account(Action::ListKeys)?;
            let state = self.control()?;
            page::paginate(
                state.key_ids_after(marker).map(|id| {
                    // The marker is the hyphenated UUID, which sorts as the keys do (an `mrk-` id
                    // would not).
                    (
                        id.hyphenated().to_string(),
                        KeyListEntry {
                            key_id: crate::key::identifier::key_id_string(id),
                            key_arn: self.inner.scope.key_arn(id),
                        },
                    )
                }),
                marker,
                limit,
                |m| Uuid::try_parse(m).is_ok(),
            )
        })
    }

    /// UpdateKeyDescription.
    pub fn update_key_description(&self, key_id: &str, description: &str) -> Result<()> {
        let members: &[(&str, Value)] = &[
            ("KeyId", key_id.into()),
            ("Description", description.into()),
        ];
        self.audited_request(Action::UpdateKeyDescription, Some(key_id), members, || {
            check_description(description)?;
            let (op, action) = (KeyOperation::UpdateMetadata, Action::UpdateKeyDescription);
            self.change_key(key_id, op, action, |state, mut record| {
                record.description = description.to_owned();
                self.save_key(state, record, None)
            })
        })
    }

    /// EnableKey: a Disabled key becomes Enabled (an Enabled one stays so).
    pub fn enable_key(&self, key_id: &str) -> Result<()> {
        self.audited(Action::EnableKey, Some(key_id), || {
            crate::validation::key_id(Action::EnableKey, key_id)?;
            self.set_enabled(
                key_id,
                KeyOperation::EnableKey,
                Action::EnableKey,
                KeyState::Enabled,
            )
        })
    }

    /// DisableKey: an Enabled key becomes Disabled; data-plane calls then fail with Disabled.
    pub fn disable_key(&self, key_id: &str) -> Result<()> {
        self.audited(Action::DisableKey, Some(key_id), || {
            crate::validation::key_id(Action::DisableKey, key_id)?;
            self.set_enabled(
                key_id,
                KeyOperation::DisableKey,
                Action::DisableKey,
                KeyState::Disabled,
            )
        })
    }

    fn set_enabled(
        &self,
        key_id: &str,
        op: KeyOperation,
        action: Action,
        to: KeyState,
    ) -> Result<()> {
        self.change_key(key_id, op, action, |state, mut record| {
            if record.state == to {
                return Ok(());
            }
            record.state = to;
            self.save_key(state, record, None)
        })
    }
}

/// The cluster of the HSM key store that holds `record`'s key, as DescribeKey reports it.
fn cloud_hsm_cluster_id(state: &ControlState, record: &KeyRecord) -> Option<String> {
    if record.origin != Origin::AwsCloudhsm {
        return None;
    }
    record
        .custom_key_store
        .as_ref()
        .and_then(|c| state.custom_key_stores.get(&c.store_id))
        .and_then(|s| s.cloud_hsm_cluster_id.clone())
}
