//! Control-plane operations: keys, aliases, tags, rotation, deletion, policies, grants and
//! GetKeyLastUsage. Each returns the service's response dictionary (or None where the service's
//! response has no members) and runs with the GIL released.

use keyplane::{
    AliasListEntry, CreateGrantRequest, CreateKeyRequest, GrantConstraints, GrantListEntry,
    KeyListEntry, KeyMetadata, Page, RotationListEntry, Tag,
};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

use crate::convert::{customer_master_key_spec, parse, parse_opt, Out};
use crate::engine::Engine;
use crate::errors::{validation, Result};

fn tags(obj: Option<&Bound<'_, PyAny>>) -> Result<Vec<Tag>> {
    let Some(obj) = obj.filter(|o| !o.is_none()) else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for item in obj.try_iter()? {
        let item = item?;
        let tag = item.cast::<PyDict>().map_err(PyErr::from)?;
        let get = |name: &str| -> Result<String> {
            match tag.get_item(name)? {
                Some(v) => Ok(v.extract()?),
                None => Err(validation(format!("a tag needs {name}"))),
            }
        };
        out.push(Tag {
            tag_key: get("TagKey")?,
            tag_value: get("TagValue")?,
        });
    }
    Ok(out)
}

pub(crate) fn key_metadata<'py>(py: Python<'py>, m: &KeyMetadata) -> PyResult<Bound<'py, PyDict>> {
    Ok(Out::new(py)
        .set("AWSAccountId", &m.aws_account_id)?
        .set("KeyId", &m.key_id)?
        .set("Arn", &m.arn)?
        .date("CreationDate", m.creation_date)?
        .set("Enabled", m.enabled)?
        .set("Description", &m.description)?
        .set("KeyUsage", m.key_usage.as_str())?
        .set("KeyState", m.key_state.as_str())?
        .date_opt("DeletionDate", m.deletion_date)?
        .set("Origin", m.origin.as_str())?
        .set("KeyManager", m.key_manager.as_str())?
        .opt(
            "CustomerMasterKeySpec",
            customer_master_key_spec(m.customer_master_key_spec),
        )?
        .set("KeySpec", m.key_spec.as_str())?
        .names("EncryptionAlgorithms", &m.encryption_algorithms)?
        .names("SigningAlgorithms", &m.signing_algorithms)?
        .names("KeyAgreementAlgorithms", &m.key_agreement_algorithms)?
        .set("MultiRegion", m.multi_region)?
        .opt(
            "MultiRegionConfiguration",
            m.multi_region_configuration
                .as_ref()
                .map(|c| multi_region_configuration(py, c))
                .transpose()?,
        )?
        .opt(
            "PendingDeletionWindowInDays",
            m.pending_deletion_window_in_days,
        )?
        .names("MacAlgorithms", &m.mac_algorithms)?
        .opt("CurrentKeyMaterialId", m.current_key_material_id.as_deref())?
        .date_opt("ValidTo", m.valid_to)?
        .opt("ExpirationModel", m.expiration_model.map(|e| e.as_str()))?
        .opt("CustomKeyStoreId", m.custom_key_store_id.as_deref())?
        .opt("CloudHsmClusterId", m.cloud_hsm_cluster_id.as_deref())?
        .opt(
            "XksKeyConfiguration",
            m.xks_key_configuration
                .as_ref()
                .map(|x| Out::new(py).set("Id", &x.id).map(|o| o.done()))
                .transpose()?,
        )?
        .done())
}

fn multi_region_key<'py>(
    py: Python<'py>,
    k: &keyplane::MultiRegionKey,
) -> PyResult<Bound<'py, PyDict>> {
    Ok(Out::new(py)
        .set("Arn", &k.arn)?
        .set("Region", &k.region)?
        .done())
}

fn multi_region_configuration<'py>(
    py: Python<'py>,
    c: &keyplane::MultiRegionConfiguration,
) -> PyResult<Bound<'py, PyDict>> {
    let replicas = c
        .replica_keys
        .iter()
        .map(|k| multi_region_key(py, k))
        .collect::<PyResult<Vec<_>>>()?;
    Ok(Out::new(py)
        .set("MultiRegionKeyType", c.multi_region_key_type.as_str())?
        .set("PrimaryKey", multi_region_key(py, &c.primary_key)?)?
        .set("ReplicaKeys", replicas)?
        .done())
}

fn described<'py>(py: Python<'py>, m: &KeyMetadata) -> PyResult<Bound<'py, PyDict>> {
    Ok(Out::new(py)
        .set("KeyMetadata", key_metadata(py, m)?)?
        .done())
}

/// A list response: `key` holds the entries; `NextMarker` when truncated; `Truncated`.
fn page<'py, T>(
    py: Python<'py>,
    key: &str,
    page: &Page<T>,
    entry: impl Fn(Python<'py>, &T) -> PyResult<Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyDict>> {
    let items = PyList::empty(py);
    for item in &page.items {
        items.append(entry(py, item)?)?;
    }
    Ok(Out::new(py)
        .set(key, items)?
        .opt("NextMarker", page.next_marker.as_deref())?
        .set("Truncated", page.truncated)?
        .done())
}

fn key_entry<'py>(py: Python<'py>, k: &KeyListEntry) -> PyResult<Bound<'py, PyAny>> {
    Ok(Out::new(py)
        .set("KeyId", &k.key_id)?
        .set("KeyArn", &k.key_arn)?
        .done()
        .into_any())
}

fn alias_entry<'py>(py: Python<'py>, a: &AliasListEntry) -> PyResult<Bound<'py, PyAny>> {
    Ok(Out::new(py)
        .set("AliasName", &a.alias_name)?
        .set("AliasArn", &a.alias_arn)?
        .opt("TargetKeyId", a.target_key_id.as_deref())?
        .date_opt("CreationDate", a.creation_date)?
        .date_opt("LastUpdatedDate", a.last_updated_date)?
        .done()
        .into_any())
}

fn tag_entry<'py>(py: Python<'py>, t: &Tag) -> PyResult<Bound<'py, PyAny>> {
    Ok(Out::new(py)
        .set("TagKey", &t.tag_key)?
        .set("TagValue", &t.tag_value)?
        .done()
        .into_any())
}

fn rotation_entry<'py>(py: Python<'py>, r: &RotationListEntry) -> PyResult<Bound<'py, PyAny>> {
    Ok(Out::new(py)
        .set("KeyId", &r.key_id)?
        .set("KeyMaterialId", &r.key_material_id)?
        .opt(
            "KeyMaterialDescription",
            r.key_material_description.as_deref(),
        )?
        .opt("ImportState", r.import_state.map(|s| s.as_str()))?
        .opt("KeyMaterialState", r.key_material_state.map(|s| s.as_str()))?
        .opt("ExpirationModel", r.expiration_model.map(|e| e.as_str()))?
        .date_opt("ValidTo", r.valid_to)?
        .date_opt("RotationDate", r.rotation_date)?
        .opt("RotationType", r.rotation_type.map(|t| t.as_str()))?
        .done()
        .into_any())
}

fn constraints<'py>(py: Python<'py>, c: &GrantConstraints) -> PyResult<Bound<'py, PyDict>> {
    Ok(Out::new(py)
        .opt(
            "EncryptionContextSubset",
            c.encryption_context_subset.clone(),
        )?
        .opt(
            "EncryptionContextEquals",
            c.encryption_context_equals.clone(),
        )?
        .done())
}

fn grant_entry<'py>(py: Python<'py>, g: &GrantListEntry) -> PyResult<Bound<'py, PyAny>> {
    let operations: Vec<&str> = g.operations.iter().map(|o| o.as_str()).collect();
    Ok(Out::new(py)
        .set("KeyId", &g.key_id)?
        .set("GrantId", &g.grant_id)?
        .opt("Name", g.name.as_deref())?
        .date("CreationDate", g.creation_date)?
        .set("GranteePrincipal", &g.grantee_principal)?
        .opt("RetiringPrincipal", g.retiring_principal.as_deref())?
        .set("IssuingAccount", &g.issuing_account)?
        .set("Operations", operations)?
        .opt(
            "Constraints",
            g.constraints
                .as_ref()
                .map(|c| constraints(py, c))
                .transpose()?,
        )?
        .done()
        .into_any())
}

fn grant_constraints(obj: Option<&Bound<'_, PyAny>>) -> Result<Option<GrantConstraints>> {
    let Some(obj) = obj.filter(|o| !o.is_none()) else {
        return Ok(None);
    };
    let dict = obj.cast::<PyDict>().map_err(PyErr::from)?;
    let mut out = GrantConstraints::default();
    for (key, value) in dict.iter() {
        let key: String = key.extract()?;
        match key.as_str() {
            "EncryptionContextSubset" => out.encryption_context_subset = Some(value.extract()?),
            "EncryptionContextEquals" => out.encryption_context_equals = Some(value.extract()?),
            "SourceArn" => {
                return Err(keyplane::Error::UnsupportedOperation(
                    "grant constraint SourceArn is not supported by keyplane".into(),
                )
                .into())
            }
            other => return Err(validation(format!("unknown grant constraint '{other}'"))),
        }
    }
    Ok(Some(out))
}

#[pymethods]
impl Engine {
    /// CreateKey.
    #[pyo3(signature = (*, policy = None, description = None, key_usage = None, customer_master_key_spec = None, key_spec = None, origin = None, bypass_policy_lockout_safety_check = false, tags = None, multi_region = None, custom_key_store_id = None, xks_key_id = None))]
    fn create_key<'py>(
        &self,
        py: Python<'py>,
        policy: Option<String>,
        description: Option<String>,
        key_usage: Option<&str>,
        customer_master_key_spec: Option<&str>,
        key_spec: Option<&str>,
        origin: Option<&str>,
        bypass_policy_lockout_safety_check: bool,
        tags: Option<&Bound<'py, PyAny>>,
        multi_region: Option<bool>,
        custom_key_store_id: Option<String>,
        xks_key_id: Option<String>,
    ) -> Result<Bound<'py, PyDict>> {
        if key_spec.is_some() && customer_master_key_spec.is_some() {
            return Err(validation(
                "give KeySpec or CustomerMasterKeySpec (deprecated), not both",
            ));
        }
        let request = CreateKeyRequest {
            description,
            key_usage: parse_opt(key_usage)?,
            key_spec: parse_opt(key_spec.or(customer_master_key_spec))?,
            origin: parse_opt(origin)?,
            tags: self::tags(tags)?,
            multi_region,
            policy,
            bypass_policy_lockout_safety_check,
            custom_key_store_id,
            xks_key_id,
        };
        let metadata = self.call(py, "CreateKey", true, |e| e.create_key(request))?;
        Ok(described(py, &metadata)?)
    }

    /// DescribeKey.
    #[pyo3(signature = (*, key_id))]
    fn describe_key<'py>(&self, py: Python<'py>, key_id: &str) -> Result<Bound<'py, PyDict>> {
        let metadata = self.call(py, "DescribeKey", true, |e| e.describe_key(key_id))?;
        Ok(described(py, &metadata)?)
    }

    /// The key of an integrated service (`alias/aws/<service>`), created on first use.
    #[pyo3(signature = (*, service))]
    fn managed_key<'py>(&self, py: Python<'py>, service: &str) -> Result<Bound<'py, PyDict>> {
        let metadata = self.call(py, "CreateKey", true, |e| e.managed_key(service))?;
        Ok(described(py, &metadata)?)
    }

    /// ListKeys.
    #[pyo3(signature = (*, limit = None, marker = None))]
    fn list_keys<'py>(
        &self,
        py: Python<'py>,
        limit: Option<u32>,
        marker: Option<&str>,
    ) -> Result<Bound<'py, PyDict>> {
        let keys = self.call(py, "ListKeys", true, |e| e.list_keys(limit, marker))?;
        Ok(page(py, "Keys", &keys, key_entry)?)
    }

    /// UpdateKeyDescription.
    #[pyo3(signature = (*, key_id, description))]
    fn update_key_description(
        &self,
        py: Python<'_>,
        key_id: &str,
        description: &str,
    ) -> Result<()> {
        self.call(py, "UpdateKeyDescription", true, |e| {
            e.update_key_description(key_id, description)
        })
    }

    /// EnableKey.
    #[pyo3(signature = (*, key_id))]
    fn enable_key(&self, py: Python<'_>, key_id: &str) -> Result<()> {
        self.call(py, "EnableKey", true, |e| e.enable_key(key_id))
    }

    /// DisableKey.
    #[pyo3(signature = (*, key_id))]
    fn disable_key(&self, py: Python<'_>, key_id: &str) -> Result<()> {
        self.call(py, "DisableKey", true, |e| e.disable_key(key_id))
    }

    /// ScheduleKeyDeletion.
    #[pyo3(signature = (*, key_id, pending_window_in_days = None))]
    fn schedule_key_deletion<'py>(
        &self,
        py: Python<'py>,
        key_id: &str,
        pending_window_in_days: Option<u32>,
    ) -> Result<Bound<'py, PyDict>> {
        let r = self.call(py, "ScheduleKeyDeletion", true, |e| {
            e.schedule_key_deletion(key_id, pending_window_in_days)
        })?;
        Ok(Out::new(py)
            .set("KeyId", &r.key_id)?
            .date_opt("DeletionDate", r.deletion_date)?
            .set("KeyState", r.key_state.as_str())?
            .set("PendingWindowInDays", r.pending_window_in_days)?
            .done())
    }

    /// CancelKeyDeletion.
    #[pyo3(signature = (*, key_id))]
    fn cancel_key_deletion<'py>(
        &self,
        py: Python<'py>,
        key_id: &str,
    ) -> Result<Bound<'py, PyDict>> {
        let arn = self.call(py, "CancelKeyDeletion", true, |e| {
            e.cancel_key_deletion(key_id)
        })?;
        Ok(Out::new(py).set("KeyId", arn)?.done())
    }

    /// CreateAlias.
    #[pyo3(signature = (*, alias_name, target_key_id))]
    fn create_alias(&self, py: Python<'_>, alias_name: &str, target_key_id: &str) -> Result<()> {
        self.call(py, "CreateAlias", true, |e| {
            e.create_alias(alias_name, target_key_id)
        })
    }

    /// UpdateAlias.
    #[pyo3(signature = (*, alias_name, target_key_id))]
    fn update_alias(&self, py: Python<'_>, alias_name: &str, target_key_id: &str) -> Result<()> {
        self.call(py, "UpdateAlias", true, |e| {
            e.update_alias(alias_name, target_key_id)
        })
    }

    /// DeleteAlias.
    #[pyo3(signature = (*, alias_name))]
    fn delete_alias(&self, py: Python<'_>, alias_name: &str) -> Result<()> {
        self.call(py, "DeleteAlias", true, |e| e.delete_alias(alias_name))
    }

    /// ListAliases.
    #[pyo3(signature = (*, key_id = None, limit = None, marker = None))]
    fn list_aliases<'py>(
        &self,
        py: Python<'py>,
        key_id: Option<&str>,
        limit: Option<u32>,
        marker: Option<&str>,
    ) -> Result<Bound<'py, PyDict>> {
        let aliases = self.call(py, "ListAliases", true, |e| {
            e.list_aliases(key_id, limit, marker)
        })?;
        Ok(page(py, "Aliases", &aliases, alias_entry)?)
    }

    /// TagResource: `tags` is a list of `{"TagKey": ..., "TagValue": ...}`.
    #[pyo3(signature = (*, key_id, tags))]
    fn tag_resource(&self, py: Python<'_>, key_id: &str, tags: &Bound<'_, PyAny>) -> Result<()> {
        let tags = self::tags(Some(tags))?;
        self.call(py, "TagResource", true, |e| e.tag_resource(key_id, tags))
    }

    /// UntagResource.
    #[pyo3(signature = (*, key_id, tag_keys))]
    fn untag_resource(&self, py: Python<'_>, key_id: &str, tag_keys: Vec<String>) -> Result<()> {
        let keys: Vec<&str> = tag_keys.iter().map(String::as_str).collect();
        self.call(py, "UntagResource", true, |e| {
            e.untag_resource(key_id, &keys)
        })
    }

    /// ListResourceTags.
    #[pyo3(signature = (*, key_id, limit = None, marker = None))]
    fn list_resource_tags<'py>(
        &self,
        py: Python<'py>,
        key_id: &str,
        limit: Option<u32>,
        marker: Option<&str>,
    ) -> Result<Bound<'py, PyDict>> {
        let tags = self.call(py, "ListResourceTags", true, |e| {
            e.list_resource_tags(key_id, limit, marker)
        })?;
        Ok(page(py, "Tags", &tags, tag_entry)?)
    }

    /// EnableKeyRotation.
    #[pyo3(signature = (*, key_id, rotation_period_in_days = None))]
    fn enable_key_rotation(
        &self,
        py: Python<'_>,
        key_id: &str,
        rotation_period_in_days: Option<u32>,
    ) -> Result<()> {
        self.call(py, "EnableKeyRotation", true, |e| {
            e.enable_key_rotation(key_id, rotation_period_in_days)
        })
    }

    /// DisableKeyRotation.
    #[pyo3(signature = (*, key_id))]
    fn disable_key_rotation(&self, py: Python<'_>, key_id: &str) -> Result<()> {
        self.call(py, "DisableKeyRotation", true, |e| {
            e.disable_key_rotation(key_id)
        })
    }

    /// GetKeyRotationStatus.
    #[pyo3(signature = (*, key_id))]
    fn get_key_rotation_status<'py>(
        &self,
        py: Python<'py>,
        key_id: &str,
    ) -> Result<Bound<'py, PyDict>> {
        let s = self.call(py, "GetKeyRotationStatus", true, |e| {
            e.get_key_rotation_status(key_id)
        })?;
        Ok(Out::new(py)
            .set("KeyRotationEnabled", s.key_rotation_enabled)?
            .set("KeyId", &s.key_id)?
            .opt("RotationPeriodInDays", s.rotation_period_in_days)?
            .date_opt("NextRotationDate", s.next_rotation_date)?
            .done())
    }

    /// RotateKeyOnDemand.
    #[pyo3(signature = (*, key_id))]
    fn rotate_key_on_demand<'py>(
        &self,
        py: Python<'py>,
        key_id: &str,
    ) -> Result<Bound<'py, PyDict>> {
        let arn = self.call(py, "RotateKeyOnDemand", true, |e| {
            e.rotate_key_on_demand(key_id)
        })?;
        Ok(Out::new(py).set("KeyId", arn)?.done())
    }

    /// GetParametersForImport: a fresh RSA wrapping public key (DER) and an import token, valid
    /// for 24 hours, for a key with origin EXTERNAL.
    #[pyo3(signature = (*, key_id, wrapping_algorithm, wrapping_key_spec))]
    fn get_parameters_for_import<'py>(
        &self,
        py: Python<'py>,
        key_id: &str,
        wrapping_algorithm: &str,
        wrapping_key_spec: &str,
    ) -> Result<Bound<'py, PyDict>> {
        let algorithm = parse(wrapping_algorithm)?;
        let spec = parse(wrapping_key_spec)?;
        let r = self.call(py, "GetParametersForImport", true, |e| {
            e.get_parameters_for_import(key_id, algorithm, spec)
        })?;
        Ok(Out::new(py)
            .set("KeyId", &r.key_id)?
            .bytes("ImportToken", &r.import_token)?
            .bytes("PublicKey", &r.public_key)?
            .date("ParametersValidTo", r.parameters_valid_to)?
            .done())
    }

    /// ImportKeyMaterial. `valid_to` is a datetime (naive ones are UTC) or epoch seconds.
    #[pyo3(signature = (*, key_id, import_token, encrypted_key_material, valid_to = None,
                        expiration_model = None, import_type = None,
                        key_material_description = None, key_material_id = None))]
    #[allow(clippy::too_many_arguments)]
    fn import_key_material<'py>(
        &self,
        py: Python<'py>,
        key_id: &str,
        import_token: &Bound<'py, PyAny>,
        encrypted_key_material: &Bound<'py, PyAny>,
        valid_to: Option<&Bound<'py, PyAny>>,
        expiration_model: Option<&str>,
        import_type: Option<&str>,
        key_material_description: Option<&str>,
        key_material_id: Option<&str>,
    ) -> Result<Bound<'py, PyDict>> {
        let token = crate::convert::input(import_token, "import_token")?;
        let material = crate::convert::input(encrypted_key_material, "encrypted_key_material")?;
        let valid_to = valid_to
            .filter(|v| !v.is_none())
            .map(crate::convert::timestamp)
            .transpose()?;
        let request = keyplane::ImportKeyMaterialRequest {
            key_id,
            import_token: &token,
            encrypted_key_material: &material,
            valid_to,
            expiration_model: parse_opt(expiration_model)?,
            import_type: parse_opt(import_type)?,
            key_material_description,
            key_material_id,
        };
        let r = self.call(py, "ImportKeyMaterial", true, |e| {
            e.import_key_material(&request)
        })?;
        Ok(Out::new(py)
            .set("KeyId", &r.key_id)?
            .set("KeyMaterialId", &r.key_material_id)?
            .done())
    }

    /// ReplicateKey: a replica of a multi-Region primary key in another Region's store.
    #[pyo3(signature = (*, key_id, replica_region, policy = None, bypass_policy_lockout_safety_check = false, description = None, tags = None))]
    #[allow(clippy::too_many_arguments)]
    fn replicate_key<'py>(
        &self,
        py: Python<'py>,
        key_id: &str,
        replica_region: &str,
        policy: Option<String>,
        bypass_policy_lockout_safety_check: bool,
        description: Option<String>,
        tags: Option<&Bound<'py, PyAny>>,
    ) -> Result<Bound<'py, PyDict>> {
        let request = keyplane::ReplicateKeyRequest {
            key_id: key_id.to_owned(),
            replica_region: replica_region.to_owned(),
            description,
            policy,
            bypass_policy_lockout_safety_check,
            tags: self::tags(tags)?,
        };
        let r = self.call(py, "ReplicateKey", true, |e| e.replicate_key(request))?;
        let replica_tags = r
            .replica_tags
            .iter()
            .map(|t| {
                Ok(Out::new(py)
                    .set("TagKey", &t.tag_key)?
                    .set("TagValue", &t.tag_value)?
                    .done())
            })
            .collect::<PyResult<Vec<_>>>()?;
        Ok(Out::new(py)
            .set(
                "ReplicaKeyMetadata",
                key_metadata(py, &r.replica_key_metadata)?,
            )?
            .set("ReplicaPolicy", &r.replica_policy)?
            .set("ReplicaTags", replica_tags)?
            .done())
    }

    /// UpdatePrimaryRegion: the replica in `primary_region` becomes the primary key.
    #[pyo3(signature = (*, key_id, primary_region))]
    fn update_primary_region(
        &self,
        py: Python<'_>,
        key_id: &str,
        primary_region: &str,
    ) -> Result<()> {
        self.call(py, "UpdatePrimaryRegion", true, |e| {
            e.update_primary_region(key_id, primary_region)
        })
    }

    /// DeleteImportedKeyMaterial (the current material unless `key_material_id` names one).
    #[pyo3(signature = (*, key_id, key_material_id = None))]
    fn delete_imported_key_material<'py>(
        &self,
        py: Python<'py>,
        key_id: &str,
        key_material_id: Option<&str>,
    ) -> Result<Bound<'py, PyDict>> {
        let r = self.call(py, "DeleteImportedKeyMaterial", true, |e| {
            e.delete_imported_key_material(key_id, key_material_id)
        })?;
        Ok(Out::new(py)
            .set("KeyId", &r.key_id)?
            .set("KeyMaterialId", &r.key_material_id)?
            .done())
    }

    /// ListKeyRotations.
    #[pyo3(signature = (*, key_id, limit = None, marker = None))]
    fn list_key_rotations<'py>(
        &self,
        py: Python<'py>,
        key_id: &str,
        limit: Option<u32>,
        marker: Option<&str>,
    ) -> Result<Bound<'py, PyDict>> {
        let rotations = self.call(py, "ListKeyRotations", true, |e| {
            e.list_key_rotations(key_id, limit, marker)
        })?;
        Ok(page(py, "Rotations", &rotations, rotation_entry)?)
    }

    /// PutKeyPolicy.
    #[pyo3(signature = (*, key_id, policy, policy_name = None, bypass_policy_lockout_safety_check = false))]
    fn put_key_policy(
        &self,
        py: Python<'_>,
        key_id: &str,
        policy: &str,
        policy_name: Option<&str>,
        bypass_policy_lockout_safety_check: bool,
    ) -> Result<()> {
        self.call(py, "PutKeyPolicy", true, |e| {
            e.put_key_policy(
                key_id,
                policy,
                policy_name,
                bypass_policy_lockout_safety_check,
            )
        })
    }

    /// GetKeyPolicy.
    #[pyo3(signature = (*, key_id, policy_name = None))]
    fn get_key_policy<'py>(
        &self,
        py: Python<'py>,
        key_id: &str,
        policy_name: Option<&str>,
    ) -> Result<Bound<'py, PyDict>> {
        let policy = self.call(py, "GetKeyPolicy", true, |e| {
            e.get_key_policy(key_id, policy_name)
        })?;
        Ok(Out::new(py)
            .set("Policy", policy)?
            .set("PolicyName", policy_name.unwrap_or("default"))?
            .done())
    }

    /// ListKeyPolicies.
    #[pyo3(signature = (*, key_id, limit = None, marker = None))]
    fn list_key_policies<'py>(
        &self,
        py: Python<'py>,
        key_id: &str,
        limit: Option<u32>,
        marker: Option<&str>,
    ) -> Result<Bound<'py, PyDict>> {
        if let Some(limit) = limit {
            keyplane::validation::check_integer("ListKeyPolicies", "Limit", i64::from(limit))?;
        }
        if marker.is_some() {
            return Err(keyplane::Error::InvalidMarker(
                "ListKeyPolicies returns one page; there is no marker to continue from".into(),
            )
            .into());
        }
        let names = self.call(py, "ListKeyPolicies", true, |e| e.list_key_policies(key_id))?;
        Ok(page(py, "PolicyNames", &names, |py, name: &String| {
            Ok(name.into_pyobject(py)?.into_any())
        })?)
    }

    /// CreateGrant.
    #[pyo3(signature = (*, key_id, operations, grantee_principal = None, retiring_principal = None, constraints = None, name = None))]
    fn create_grant<'py>(
        &self,
        py: Python<'py>,
        key_id: String,
        operations: Vec<String>,
        grantee_principal: Option<String>,
        retiring_principal: Option<String>,
        constraints: Option<&Bound<'py, PyAny>>,
        name: Option<String>,
    ) -> Result<Bound<'py, PyDict>> {
        let grantee_principal =
            grantee_principal.ok_or_else(|| validation("CreateGrant needs a GranteePrincipal"))?;
        let request = CreateGrantRequest {
            key_id,
            grantee_principal,
            retiring_principal,
            operations: operations.iter().map(|o| parse(o)).collect::<Result<_>>()?,
            constraints: grant_constraints(constraints)?,
            name,
        };
        let r = self.call(py, "CreateGrant", true, |e| e.create_grant(request))?;
        Ok(Out::new(py)
            .set("GrantToken", &r.grant_token)?
            .set("GrantId", &r.grant_id)?
            .done())
    }

    /// ListGrants.
    #[pyo3(signature = (*, key_id, limit = None, marker = None, grant_id = None, grantee_principal = None))]
    fn list_grants<'py>(
        &self,
        py: Python<'py>,
        key_id: &str,
        limit: Option<u32>,
        marker: Option<&str>,
        grant_id: Option<&str>,
        grantee_principal: Option<&str>,
    ) -> Result<Bound<'py, PyDict>> {
        let grants = self.call(py, "ListGrants", true, |e| {
            e.list_grants(key_id, grant_id, grantee_principal, limit, marker)
        })?;
        Ok(page(py, "Grants", &grants, grant_entry)?)
    }

    /// ListRetirableGrants.
    #[pyo3(signature = (*, retiring_principal, limit = None, marker = None))]
    fn list_retirable_grants<'py>(
        &self,
        py: Python<'py>,
        retiring_principal: &str,
        limit: Option<u32>,
        marker: Option<&str>,
    ) -> Result<Bound<'py, PyDict>> {
        let grants = self.call(py, "ListRetirableGrants", true, |e| {
            e.list_retirable_grants(retiring_principal, limit, marker)
        })?;
        Ok(page(py, "Grants", &grants, grant_entry)?)
    }

    /// RetireGrant: by grant token, or by key id and grant id.
    #[pyo3(signature = (*, grant_token = None, key_id = None, grant_id = None))]
    fn retire_grant(
        &self,
        py: Python<'_>,
        grant_token: Option<&str>,
        key_id: Option<&str>,
        grant_id: Option<&str>,
    ) -> Result<()> {
        self.call(py, "RetireGrant", true, |e| {
            e.retire_grant(grant_token, key_id, grant_id)
        })
    }

    /// RevokeGrant.
    #[pyo3(signature = (*, key_id, grant_id))]
    fn revoke_grant(&self, py: Python<'_>, key_id: &str, grant_id: &str) -> Result<()> {
        self.call(py, "RevokeGrant", true, |e| {
            e.revoke_grant(key_id, grant_id)
        })
    }

    /// GetKeyLastUsage.
    #[pyo3(signature = (*, key_id))]
    fn get_key_last_usage<'py>(&self, py: Python<'py>, key_id: &str) -> Result<Bound<'py, PyDict>> {
        let r = self.call(py, "GetKeyLastUsage", true, |e| {
            e.get_key_last_usage(key_id)
        })?;
        let usage = match &r.key_last_usage {
            Some(u) => Some(
                Out::new(py)
                    .set("Operation", &u.operation)?
                    .date("Timestamp", u.timestamp)?
                    .set("CloudTrailEventId", &u.cloud_trail_event_id)?
                    .set("KmsRequestId", &u.kms_request_id)?
                    .done(),
            ),
            None => None,
        };
        Ok(Out::new(py)
            .set("KeyId", &r.key_id)?
            .opt("KeyLastUsage", usage)?
            .date_opt("TrackingStartDate", r.tracking_start_date)?
            .date("KeyCreationDate", r.key_creation_date)?
            .done())
    }
}
