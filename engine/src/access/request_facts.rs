//! What a request says about itself ([`RequestFacts`]), for policy conditions and grant
//! constraints.

use crate::context::EncryptionContext;
use crate::key::{GrantOperation, Tag};

/// What a request says about itself, for policy conditions and grant constraints.
#[derive(Clone, Copy, Default)]
pub(crate) struct RequestFacts<'a> {
    pub(crate) context: Option<&'a EncryptionContext>,
    /// The key identifier as the caller gave it (an alias name or ARN sets `kms:RequestAlias`).
    pub(crate) identifier: Option<&'a str>,
    pub(crate) encryption_algorithm: Option<&'a str>,
    pub(crate) signing_algorithm: Option<&'a str>,
    pub(crate) message_type: Option<&'a str>,
    pub(crate) mac_algorithm: Option<&'a str>,
    pub(crate) data_key_pair_spec: Option<&'a str>,
    pub(crate) key_agreement_algorithm: Option<&'a str>,
    pub(crate) grant_operations: Option<&'a [GrantOperation]>,
    pub(crate) grantee_principal: Option<&'a str>,
    pub(crate) retiring_principal: Option<&'a str>,
    /// CreateGrant: `EncryptionContextEquals` or `EncryptionContextSubset`, when constrained.
    pub(crate) grant_constraint_type: Option<&'a str>,
    pub(crate) bypass_policy_lockout_safety_check: Option<bool>,
    pub(crate) rotation_period_in_days: Option<&'a str>,
    pub(crate) pending_window_in_days: Option<&'a str>,
    /// TagResource's tags (`aws:RequestTag/*`, `aws:TagKeys`).
    pub(crate) request_tags: Option<&'a [Tag]>,
    /// UntagResource's tag keys (`aws:TagKeys`).
    pub(crate) tag_keys: Option<&'a [&'a str]>,
    /// GetParametersForImport: `kms:WrappingAlgorithm`, `kms:WrappingKeySpec`.
    pub(crate) wrapping_algorithm: Option<&'a str>,
    pub(crate) wrapping_key_spec: Option<&'a str>,
    /// ImportKeyMaterial: `kms:ExpirationModel`, `kms:ValidTo` (epoch seconds).
    pub(crate) expiration_model: Option<&'a str>,
    pub(crate) valid_to: Option<&'a str>,
    /// ReplicateKey: `kms:ReplicaRegion`.
    pub(crate) replica_region: Option<&'a str>,
    /// UpdatePrimaryRegion: `kms:PrimaryRegion`.
    pub(crate) primary_region: Option<&'a str>,
}
