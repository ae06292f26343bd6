//! Keys: CreateKey, DescribeKey, ListKeys, UpdateKeyDescription, EnableKey, DisableKey,
//! ScheduleKeyDeletion, CancelKeyDeletion, GetKeyLastUsage, and the multi-Region ReplicateKey and
//! UpdatePrimaryRegion.

use keyplane::{CreateKeyRequest, Engine, KeyMetadata, KeySpec};

use super::json::{Input, Out};
use super::members::list_page;
use super::reply::Fault;

/// The deprecated `CustomerMasterKeySpec` value of a key spec: the service sets it only for specs
/// that its enumeration has.
pub(super) fn customer_master_key_spec(spec: KeySpec) -> Option<&'static str> {
    use KeySpec::*;
    match spec {
        EccNistEdwards25519 | MlDsa44 | MlDsa65 | MlDsa87 => None,
        other => Some(other.as_str()),
    }
}

/// `KeyMetadata`, every member the engine knows.
pub(super) fn key_metadata(out: &mut Out, m: &KeyMetadata) {
    out.str("AWSAccountId", &m.aws_account_id)
        .str("KeyId", &m.key_id)
        .str("Arn", &m.arn)
        .date("CreationDate", m.creation_date)
        .bool("Enabled", m.enabled)
        .str("Description", &m.description)
        .str("KeyUsage", m.key_usage.as_str())
        .str("KeyState", m.key_state.as_str())
        .date_opt("DeletionDate", m.deletion_date)
        .str("Origin", m.origin.as_str())
        .str("KeyManager", m.key_manager.as_str())
        .opt(
            "CustomerMasterKeySpec",
            customer_master_key_spec(m.customer_master_key_spec),
        )
        .str("KeySpec", m.key_spec.as_str())
        .names("EncryptionAlgorithms", &m.encryption_algorithms)
        .names("SigningAlgorithms", &m.signing_algorithms)
        .names("KeyAgreementAlgorithms", &m.key_agreement_algorithms)
        .bool("MultiRegion", m.multi_region)
        .opt("CustomKeyStoreId", m.custom_key_store_id.as_deref())
        .opt("CloudHsmClusterId", m.cloud_hsm_cluster_id.as_deref());
    if let Some(xks) = &m.xks_key_configuration {
        out.nested("XksKeyConfiguration", |o| {
            o.str("Id", &xks.id);
        });
    }
    if let Some(c) = &m.multi_region_configuration {
        out.nested("MultiRegionConfiguration", |o| {
            o.str("MultiRegionKeyType", c.multi_region_key_type.as_str())
                .nested("PrimaryKey", |p| {
                    p.str("Arn", &c.primary_key.arn)
                        .str("Region", &c.primary_key.region);
                })
                .objects("ReplicaKeys", &c.replica_keys, |r, k| {
                    r.str("Arn", &k.arn).str("Region", &k.region);
                });
        });
    }
    if let Some(days) = m.pending_deletion_window_in_days {
        out.int("PendingDeletionWindowInDays", i64::from(days));
    }
    out.names("MacAlgorithms", &m.mac_algorithms)
        .opt("CurrentKeyMaterialId", m.current_key_material_id.as_deref())
        .date_opt("ValidTo", m.valid_to)
        .opt("ExpirationModel", m.expiration_model.map(|e| e.as_str()));
}

fn described(m: &KeyMetadata) -> Out {
    let mut out = Out::new();
    out.nested("KeyMetadata", |o| key_metadata(o, m));
    out
}

pub(super) fn create_key(engine: &Engine, input: &Input) -> Result<Out, Fault> {
    if input.has("KeySpec") && input.has("CustomerMasterKeySpec") {
        return Err(keyplane::Error::Validation(
            "You cannot specify KeySpec and CustomerMasterKeySpec in the same request. \
             CustomerMasterKeySpec parameter is deprecated. Use KeySpec parameter instead."
                .into(),
        )
        .into());
    }
    let key_spec = match input.enum_value("KeySpec")? {
        Some(spec) => Some(spec),
        None => input.enum_value("CustomerMasterKeySpec")?,
    };
    let request = CreateKeyRequest {
        description: input.string("Description"),
        key_usage: input.enum_value("KeyUsage")?,
        key_spec,
        origin: input.enum_value("Origin")?,
        tags: input.tags("Tags")?,
        multi_region: input.bool("MultiRegion"),
        policy: input.string("Policy"),
        bypass_policy_lockout_safety_check: input
            .bool("BypassPolicyLockoutSafetyCheck")
            .unwrap_or(false),
        custom_key_store_id: input.string("CustomKeyStoreId"),
        xks_key_id: input.string("XksKeyId"),
    };
    Ok(described(&engine.create_key(request)?))
}

pub(super) fn replicate_key(engine: &Engine, input: &Input) -> Result<Out, Fault> {
    let request = keyplane::ReplicateKeyRequest {
        key_id: input.req("KeyId").to_owned(),
        replica_region: input.req("ReplicaRegion").to_owned(),
        description: input.string("Description"),
        policy: input.string("Policy"),
        bypass_policy_lockout_safety_check: input
            .bool("BypassPolicyLockoutSafetyCheck")
            .unwrap_or(false),
        tags: input.tags("Tags")?,
    };
    let r = engine.replicate_key(request)?;
    let mut out = Out::new();
    out.nested("ReplicaKeyMetadata", |o| {
        key_metadata(o, &r.replica_key_metadata)
    })
    .str("ReplicaPolicy", &r.replica_policy)
    .objects("ReplicaTags", &r.replica_tags, |o, t| {
        o.str("TagKey", &t.tag_key).str("TagValue", &t.tag_value);
    });
    Ok(out)
}

pub(super) fn update_primary_region(engine: &Engine, input: &Input) -> Result<Out, Fault> {
    engine.update_primary_region(input.req("KeyId"), input.req("PrimaryRegion"))?;
    Ok(Out::new())
}

pub(super) fn describe_key(engine: &Engine, input: &Input) -> Result<Out, Fault> {
    Ok(described(&engine.describe_key(input.req("KeyId"))?))
}

pub(super) fn list_keys(engine: &Engine, input: &Input) -> Result<Out, Fault> {
    let page = engine.list_keys(input.u32("Limit")?, input.str("Marker"))?;
    Ok(list_page("Keys", &page, |o, k| {
        o.str("KeyId", &k.key_id).str("KeyArn", &k.key_arn);
    }))
}

pub(super) fn update_key_description(engine: &Engine, input: &Input) -> Result<Out, Fault> {
    engine.update_key_description(input.req("KeyId"), input.req("Description"))?;
    Ok(Out::new())
}

pub(super) fn enable_key(engine: &Engine, input: &Input) -> Result<Out, Fault> {
    engine.enable_key(input.req("KeyId"))?;
    Ok(Out::new())
}

pub(super) fn disable_key(engine: &Engine, input: &Input) -> Result<Out, Fault> {
    engine.disable_key(input.req("KeyId"))?;
    Ok(Out::new())
}

pub(super) fn schedule_key_deletion(engine: &Engine, input: &Input) -> Result<Out, Fault> {
    let r = engine.schedule_key_deletion(input.req("KeyId"), input.u32("PendingWindowInDays")?)?;
    let mut out = Out::new();
    out.str("KeyId", &r.key_id)
        .date_opt("DeletionDate", r.deletion_date)
        .str("KeyState", r.key_state.as_str())
        .int("PendingWindowInDays", i64::from(r.pending_window_in_days));
    Ok(out)
}

pub(super) fn cancel_key_deletion(engine: &Engine, input: &Input) -> Result<Out, Fault> {
    let arn = engine.cancel_key_deletion(input.req("KeyId"))?;
    let mut out = Out::new();
    out.str("KeyId", &arn);
    Ok(out)
}

pub(super) fn get_key_last_usage(engine: &Engine, input: &Input) -> Result<Out, Fault> {
    let r = engine.get_key_last_usage(input.req("KeyId"))?;
    let mut out = Out::new();
    out.str("KeyId", &r.key_id);
    if let Some(u) = &r.key_last_usage {
        out.nested("KeyLastUsage", |o| {
            o.str("Operation", &u.operation)
                .date("Timestamp", u.timestamp)
                .str("CloudTrailEventId", &u.cloud_trail_event_id)
                .str("KmsRequestId", &u.kms_request_id);
        });
    }
    out.date_opt("TrackingStartDate", r.tracking_start_date)
        .date("KeyCreationDate", r.key_creation_date);
    Ok(out)
}
