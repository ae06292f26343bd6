//! What the engine knows about a key besides its material, as stored and as described.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::spec::*;
use crate::clock::Timestamp;

/// A key tag.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Tag {
    pub tag_key: String,
    pub tag_value: String,
}

/// Automatic rotation settings of a symmetric key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RotationConfig {
    pub enabled: bool,
    /// Days between automatic rotations (90–2560).
    pub period_days: u32,
    /// When the next automatic rotation is due (set while enabled).
    pub next_rotation: Option<Timestamp>,
}

/// One version of a key's material (the service's "key material" / backing key). The material
/// itself is held by the store and the data plane, never here.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionRecord {
    /// 1 for the original material, then one more per rotation.
    pub version: u32,
    /// 64 hex characters that name this material (the service's KeyMaterialId).
    pub material_id: String,
    pub created: Timestamp,
    /// None for the original material.
    pub rotation_type: Option<RotationType>,
    /// For material imported into an EXTERNAL key: its import terms and whether it is there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub import: Option<ImportedMaterial>,
}

impl VersionRecord {
    /// Whether this is imported material waiting for RotateKeyOnDemand to make it current.
    pub fn is_pending_rotation(&self) -> bool {
        self.import.as_ref().is_some_and(|i| i.pending_rotation)
    }

    /// Whether this version's material is held (engine-made material always is; imported material
    /// is not once it expired or was deleted, until it is imported again).
    pub fn has_material(&self) -> bool {
        self.import.as_ref().is_none_or(|i| i.imported)
    }
}

/// What the engine keeps about one imported key material (never the material itself).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportedMaterial {
    /// Whether the material is in the key now (false after it expired or was deleted).
    pub imported: bool,
    pub expiration_model: ExpirationModel,
    /// When the material expires (KEY_MATERIAL_EXPIRES only).
    pub valid_to: Option<Timestamp>,
    /// The importer's description of the material.
    pub description: Option<String>,
    /// Imported as NEW_KEY_MATERIAL into a key that had material: waits for RotateKeyOnDemand.
    pub pending_rotation: bool,
}

/// Everything the engine persists about a key, except its material.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyRecord {
    pub id: Uuid,
    pub created: Timestamp,
    pub description: String,
    pub key_spec: KeySpec,
    pub key_usage: KeyUsage,
    pub origin: Origin,
    pub key_manager: KeyManager,
    pub state: KeyState,
    pub deletion_date: Option<Timestamp>,
    pub pending_window_days: Option<u32>,
    pub tags: Vec<Tag>,
    pub rotation: RotationConfig,
    /// Oldest first; the last one that is not pending rotation encrypts. Imported material that
    /// waits for RotateKeyOnDemand comes last (at most one).
    pub versions: Vec<VersionRecord>,
    pub on_demand_rotations: u32,
    /// The key policy document (JSON).
    pub policy: String,
    /// Grants on this key.
    #[serde(default)]
    pub grants: Vec<GrantRecord>,
    /// A multi-Region key's Regions (primary and replicas); `None` for a single-Region key.
    /// Every Region's record of the key carries the same value (a shared property).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub multi_region: Option<MultiRegionRecord>,
    /// A key in a custom key store (origin AWS_CLOUDHSM or EXTERNAL_KEY_STORE): the store and the
    /// backing key that holds its material; `None` for every other key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom_key_store: Option<CustomKeyStoreKey>,
}

/// Where a key in a custom key store keeps its material.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomKeyStoreKey {
    /// The custom key store's id (`cks-...`).
    pub store_id: String,
    /// The backing key's id in the store (PKCS#11: its CKA_ID in hex; XKS: the XksKeyId).
    pub backing_key_id: String,
}

/// The Regions of a multi-Region key. A Region's own record is the primary key when
/// `primary_region` is that Region, a replica key otherwise.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MultiRegionRecord {
    pub primary_region: String,
    /// The replica keys' Regions, sorted, without the primary's.
    pub replica_regions: Vec<String>,
}

impl MultiRegionRecord {
    /// Whether the key in `region` is the primary key.
    pub fn is_primary_in(&self, region: &str) -> bool {
        self.primary_region == region
    }

    /// Every Region that holds the key, the primary's first.
    pub fn regions(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.primary_region.as_str())
            .chain(self.replica_regions.iter().map(String::as_str))
    }
}

impl KeyRecord {
    /// The version that encrypts new data, if the key has material.
    pub fn current_version(&self) -> Option<&VersionRecord> {
        self.versions
            .iter()
            .rev()
            .find(|v| !v.is_pending_rotation())
    }

    /// Whether keyplane stores this key's material (sealed in its key store): every key but one
    /// in an HSM key store, whose material never leaves the HSM. A key in an external key store
    /// has keyplane-held material too, the inner layer of its double encryption (`docs/xks.md`).
    /// The one rule the engine and every durable store follow.
    pub fn keeps_material(&self) -> bool {
        self.custom_key_store.is_none() || self.origin == Origin::ExternalKeyStore
    }

    /// Whether the key has material and holds every version of it that decrypts (an EXTERNAL key
    /// whose imported material expired or was deleted does not, until it is imported again).
    pub fn has_all_material(&self) -> bool {
        !self.versions.is_empty() && self.active_versions().all(|v| v.has_material())
    }

    /// The versions the data plane holds: every one but imported material pending rotation.
    pub fn active_versions(&self) -> impl Iterator<Item = &VersionRecord> {
        self.versions.iter().filter(|v| !v.is_pending_rotation())
    }
}

/// Encryption-context constraints of a grant: the request's context must equal, or contain, the
/// given pairs.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct GrantConstraints {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encryption_context_equals: Option<std::collections::BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encryption_context_subset: Option<std::collections::BTreeMap<String, String>>,
}

/// A grant: permission for a grantee principal to use a key for some operations.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GrantRecord {
    /// 64 hex characters.
    pub grant_id: String,
    /// The grant token handed to the creator (usable at once: grants take effect immediately).
    pub grant_token: String,
    pub name: Option<String>,
    pub grantee_principal: String,
    pub retiring_principal: Option<String>,
    pub operations: Vec<GrantOperation>,
    pub constraints: Option<GrantConstraints>,
    pub issuing_account: String,
    pub created: Timestamp,
}

/// An alias and the key it points to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AliasRecord {
    pub name: String,
    pub target: Uuid,
    pub created: Timestamp,
    pub updated: Timestamp,
}

/// DescribeKey's answer, with the service's field names when serialised.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct KeyMetadata {
    #[serde(rename = "AWSAccountId")]
    pub aws_account_id: String,
    pub key_id: String,
    pub arn: String,
    pub creation_date: Timestamp,
    pub enabled: bool,
    pub description: String,
    pub key_usage: KeyUsage,
    pub key_state: KeyState,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deletion_date: Option<Timestamp>,
    pub origin: Origin,
    pub key_manager: KeyManager,
    pub customer_master_key_spec: KeySpec,
    pub key_spec: KeySpec,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub encryption_algorithms: Vec<EncryptionAlgorithm>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub signing_algorithms: Vec<SigningAlgorithm>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub mac_algorithms: Vec<MacAlgorithm>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub key_agreement_algorithms: Vec<KeyAgreementAlgorithm>,
    pub multi_region: bool,
    /// Multi-Region keys: the key's type in this Region, its primary and its replicas.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub multi_region_configuration: Option<MultiRegionConfiguration>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pending_deletion_window_in_days: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current_key_material_id: Option<String>,
    /// EXTERNAL keys with material: when the current material expires.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub valid_to: Option<Timestamp>,
    /// EXTERNAL keys with material: whether the current material expires.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expiration_model: Option<ExpirationModel>,
    /// Keys in a custom key store: the store's id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub custom_key_store_id: Option<String>,
    /// Keys in an AWS_CLOUDHSM key store: the store's configured HSM.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cloud_hsm_cluster_id: Option<String>,
    /// Keys in an external key store: the external key's id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub xks_key_configuration: Option<XksKeyConfiguration>,
    /// Not a DescribeKey field in the service (it is GetKeyRotationStatus's); carried here so a
    /// describe shows the whole lifecycle.
    pub key_rotation_enabled: bool,
}

/// DescribeKey's `XksKeyConfiguration`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct XksKeyConfiguration {
    pub id: String,
}

/// DescribeKey's `MultiRegionConfiguration`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct MultiRegionConfiguration {
    pub multi_region_key_type: MultiRegionKeyType,
    pub primary_key: MultiRegionKey,
    pub replica_keys: Vec<MultiRegionKey>,
}

/// One key of a multi-Region key: its ARN and Region.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct MultiRegionKey {
    pub arn: String,
    pub region: String,
}
