//! CreateGrant, ListGrants, ListRetirableGrants, RetireGrant, RevokeGrant.
//!
//! A grant lets its grantee use a key for some operations, optionally only with a given
//! encryption context. Grants take effect at once (the engine is consistent), so a grant token is
//! never needed to use a new grant; RetireGrant accepts one to name the grant.

use super::page::{self, Page};
use crate::access::request_facts::RequestFacts;
use crate::access::{Action, Caller};
use crate::clock::Timestamp;
use crate::crypto::random;
use crate::engine::Engine;
use crate::error::{validation, Error, Result};
use crate::key::state::KeyOperation;
use crate::key::{GrantConstraints, GrantOperation, GrantRecord, KeyRecord, KeyUsage};
use crate::validation::Value;

/// Most grants on one key.
pub const MAX_GRANTS_PER_KEY: usize = 50_000;

/// A CreateGrant request.
#[derive(Debug, Clone)]
pub struct CreateGrantRequest {
    pub key_id: String,
    pub grantee_principal: String,
    pub retiring_principal: Option<String>,
    pub operations: Vec<GrantOperation>,
    pub constraints: Option<GrantConstraints>,
    pub name: Option<String>,
}

/// CreateGrant's answer.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct CreateGrantResponse {
    pub grant_token: String,
    pub grant_id: String,
}

/// One entry of ListGrants / ListRetirableGrants.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct GrantListEntry {
    pub key_id: String,
    pub grant_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub creation_date: Timestamp,
    pub grantee_principal: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retiring_principal: Option<String>,
    pub issuing_account: String,
    pub operations: Vec<GrantOperation>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub constraints: Option<GrantConstraints>,
}

fn random_hex(bytes: usize) -> Result<String> {
    let mut raw = vec![0u8; bytes];
    random::fill(&mut raw)?;
    Ok(raw.iter().map(|b| format!("{b:02x}")).collect())
}

fn entry(arn: &str, grant: &GrantRecord) -> GrantListEntry {
    GrantListEntry {
        key_id: arn.to_owned(),
        grant_id: grant.grant_id.clone(),
        name: grant.name.clone(),
        creation_date: grant.created,
        grantee_principal: grant.grantee_principal.clone(),
        retiring_principal: grant.retiring_principal.clone(),
        issuing_account: format!("arn:aws:iam::{}:root", grant.issuing_account),
        operations: grant.operations.clone(),
        constraints: grant.constraints.clone(),
    }
}

/// The grant a RetireGrant token names: `<key id>.<grant id>`.
fn parse_token(token: &str) -> Result<(&str, &str)> {
    token
        .split_once('.')
        .filter(|(key, grant)| key.len() == 36 && grant.len() == 64)
        .ok_or_else(|| {
            Error::InvalidGrantToken("the grant token is not one keyplane issued".into())
        })
}

impl Engine {
    /// Creates a grant on a key.
    pub fn create_grant(&self, request: CreateGrantRequest) -> Result<CreateGrantResponse> {
        let members: &[(&str, Value)] = &[
            ("KeyId", request.key_id.as_str().into()),
            (
                "GranteePrincipal",
                request.grantee_principal.as_str().into(),
            ),
            (
                "RetiringPrincipal",
                request.retiring_principal.as_deref().into(),
            ),
            ("Operations", Value::Items(request.operations.len())),
            ("Name", request.name.as_deref().into()),
        ];
        self.audited_request(Action::CreateGrant, Some(&request.key_id), members, || {
            if request.operations.is_empty() {
                return Err(validation!("a grant needs at least one operation"));
            }
            Caller::new(&request.grantee_principal)?;
            if let Some(retiring) = &request.retiring_principal {
                Caller::new(retiring)?;
            }
            if let Some(name) = &request.name {
                if name.is_empty() || name.len() > 256 {
                    return Err(validation!("a grant name is 1 to 256 characters"));
                }
            }
            if request.constraints.as_ref().is_some_and(|c| {
                c.encryption_context_equals.is_some() && c.encryption_context_subset.is_some()
            }) {
                return Err(validation!(
                    "give EncryptionContextEquals or EncryptionContextSubset, not both"
                ));
            }
            self.control_retrying(|state| {
                let mut record = self.record_for(
                    state,
                    &request.key_id,
                    KeyOperation::UpdateMetadata,
                    Action::CreateGrant,
                )?;
                let constraints = request.constraints.as_ref();
                let facts = RequestFacts {
                    identifier: Some(&request.key_id),
                    grant_operations: Some(&request.operations),
                    grantee_principal: Some(&request.grantee_principal),
                    retiring_principal: request.retiring_principal.as_deref(),
                    grant_constraint_type: constraints.and_then(|c| {
                        if c.encryption_context_equals.is_some() {
                            Some("EncryptionContextEquals")
                        } else if c.encryption_context_subset.is_some() {
                            Some("EncryptionContextSubset")
                        } else {
                            None
                        }
                    }),
                    ..RequestFacts::default()
                };
                self.authorize_key(&record, Action::CreateGrant, &facts)?;
                self.check_grant_is_not_wider(&record, &request, &facts)?;
                check_operations_fit_key(&record, &request.operations)?;
                if let Some(existing) = same_named_grant(&record, &request) {
                    // The service's retry idempotence: the same Name and parameters answer the grant
                    // that the first request made.
                    return Ok(CreateGrantResponse {
                        grant_token: existing.grant_token.clone(),
                        grant_id: existing.grant_id.clone(),
                    });
                }
                if record.grants.len() >= MAX_GRANTS_PER_KEY {
                    return Err(Error::LimitExceeded(format!(
                        "key {} already has {MAX_GRANTS_PER_KEY} grants",
                        record.id
                    )));
                }
                let grant_id = random_hex(32)?;
                let grant_token = format!("{}.{}", record.id.hyphenated(), grant_id);
                record.grants.push(GrantRecord {
                    grant_id: grant_id.clone(),
                    grant_token: grant_token.clone(),
                    name: request.name.clone(),
                    grantee_principal: request.grantee_principal.clone(),
                    retiring_principal: request.retiring_principal.clone(),
                    operations: request.operations.clone(),
                    constraints: request.constraints.clone(),
                    issuing_account: self.caller.account().to_owned(),
                    created: self.inner.clock.now(),
                });
                self.save_key(state, record, None)?;
                Ok(CreateGrantResponse {
                    grant_token,
                    grant_id,
                })
            })
        })
    }

    /// Lists a key's grants, optionally only one grant id or one grantee.
    pub fn list_grants(
        &self,
        key_id: &str,
        grant_id: Option<&str>,
        grantee_principal: Option<&str>,
        limit: Option<u32>,
        marker: Option<&str>,
    ) -> Result<Page<GrantListEntry>> {
        let members: &[(&str, Value)] = &[
            ("Limit", limit.into()),
            ("Marker", marker.into()),
            ("KeyId", key_id.into()),
            ("GrantId", grant_id.into()),
            ("GranteePrincipal", grantee_principal.into()),
        ];
        self.audited_request(Action::ListGrants, Some(key_id), members, || {
            let limit = page::limit(limit, 50, 100)?;
            let state = self.control()?;
            let record = self.key_for(&state, key_id, KeyOperation::Read, Action::ListGrants)?;
            let arn = self.inner.scope.key_arn(&record.id);
            let mut grants: Vec<&GrantRecord> = record
                .grants
                .iter()
                .filter(|g| grant_id.is_none_or(|id| g.grant_id == id))
                .filter(|g| grantee_principal.is_none_or(|p| g.grantee_principal == p))
                .collect();
            grants.sort_by(|a, b| a.grant_id.cmp(&b.grant_id));
            page::paginate(
                grants
                    .into_iter()
                    .map(|g| (g.grant_id.clone(), entry(&arn, g))),
                marker,
                limit,
                |m| m.len() == 64,
            )
        })
    }

    /// Lists the grants, on any key, that `retiring_principal` may retire.
    pub fn list_retirable_grants(
        &self,
        retiring_principal: &str,
        limit: Option<u32>,
        marker: Option<&str>,
    ) -> Result<Page<GrantListEntry>> {
        let members: &[(&str, Value)] = &[
            ("Limit", limit.into()),
            ("Marker", marker.into()),
            ("RetiringPrincipal", retiring_principal.into()),
        ];
        self.audited_request(Action::ListRetirableGrants, None, members, || {
            let limit = page::limit(limit, 50, 100)?;
            self.authorize_account(Action::ListRetirableGrants)?;
            let state = self.control()?;
            let mut found: Vec<(String, GrantListEntry)> = Vec::new();
            for record in state.keys.values() {
                let arn = self.inner.scope.key_arn(&record.id);
                for g in &record.grants {
                    if g.retiring_principal.as_deref() == Some(retiring_principal) {
                        found.push((g.grant_token.clone(), entry(&arn, g)));
                    }
                }
            }
            found.sort_by(|a, b| a.0.cmp(&b.0));
            page::paginate(found.into_iter(), marker, limit, |m| parse_token(m).is_ok())
        })
    }

    /// Retires a grant, named by its token or by key and grant id. The retiring principal, the
    /// grantee of a grant that allows RetireGrant, and the issuing account may retire it.
    pub fn retire_grant(
        &self,
        grant_token: Option<&str>,
        key_id: Option<&str>,
        grant_id: Option<&str>,
    ) -> Result<()> {
        let members: &[(&str, Value)] = &[
            ("GrantToken", grant_token.into()),
            ("KeyId", key_id.into()),
            ("GrantId", grant_id.into()),
        ];
        self.audited_request(Action::RetireGrant, key_id, members, || {
            let (key_id, grant_id) = match (grant_token, key_id, grant_id) {
                (Some(token), _, _) => parse_token(token)?,
                (None, Some(key), Some(grant)) => (key, grant),
                _ => return Err(validation!("give a GrantToken, or a KeyId and a GrantId")),
            };
            self.control_retrying(|state| {
                let mut record =
                    self.record_for(state, key_id, KeyOperation::Read, Action::RetireGrant)?;
                let grant = find_grant(&record, grant_id)?;
                let caller = self.caller.principal();
                let may_retire = grant.retiring_principal.as_deref() == Some(caller)
                    || (grant.grantee_principal == caller
                        && grant.operations.contains(&GrantOperation::RetireGrant))
                    || caller == format!("arn:aws:iam::{}:root", grant.issuing_account);
                if !may_retire {
                    return Err(Error::AccessDenied(format!(
                        "{caller} may not retire grant {grant_id}: it is neither its retiring \
                     principal, a grantee allowed to retire it, nor its issuing account"
                    )));
                }
                record.grants.retain(|g| g.grant_id != grant_id);
                self.save_key(state, record, None)
            })
        })
    }

    /// Revokes a grant (a key administrator's action).
    pub fn revoke_grant(&self, key_id: &str, grant_id: &str) -> Result<()> {
        let members: &[(&str, Value)] = &[("KeyId", key_id.into()), ("GrantId", grant_id.into())];
        self.audited_request(Action::RevokeGrant, Some(key_id), members, || {
            let (op, action) = (KeyOperation::Read, Action::RevokeGrant);
            self.change_key(key_id, op, action, |state, mut record| {
                find_grant(&record, grant_id)?;
                record.grants.retain(|g| g.grant_id != grant_id);
                self.save_key(state, record, None)
            })
        })
    }
}

/// The operations a grant may name for a key of this usage: its own kind of cryptography, and
/// CreateGrant, RetireGrant and DescribeKey.
fn check_operations_fit_key(record: &KeyRecord, operations: &[GrantOperation]) -> Result<()> {
    use GrantOperation as G;
    for op in operations {
        let fits = match op {
            G::CreateGrant | G::RetireGrant | G::DescribeKey => true,
            G::Encrypt | G::Decrypt | G::ReEncryptFrom | G::ReEncryptTo => {
                record.key_usage == KeyUsage::EncryptDecrypt
            }
            G::GenerateDataKey
            | G::GenerateDataKeyWithoutPlaintext
            | G::GenerateDataKeyPair
            | G::GenerateDataKeyPairWithoutPlaintext => {
                record.key_usage == KeyUsage::EncryptDecrypt
                    && record.key_spec == crate::key::KeySpec::SymmetricDefault
            }
            G::Sign | G::Verify => record.key_usage == KeyUsage::SignVerify,
            G::GetPublicKey => record.key_spec.family() == "asymmetric",
            G::GenerateMac | G::VerifyMac => record.key_usage == KeyUsage::GenerateVerifyMac,
            G::DeriveSharedSecret => record.key_usage == KeyUsage::KeyAgreement,
        };
        if !fits {
            return Err(validation!(
                "grant operation {op} is not valid for key {}, a {} {} key",
                record.id,
                record.key_spec,
                record.key_usage
            ));
        }
    }
    Ok(())
}

impl Engine {
    /// A caller allowed to create grants only by a grant of its own may not create a grant wider
    /// than that grant: each operation must be allowed, with CreateGrant, by one grant of the
    /// caller whose encryption-context constraints the new grant keeps or narrows.
    fn check_grant_is_not_wider(
        &self,
        record: &KeyRecord,
        request: &CreateGrantRequest,
        facts: &RequestFacts<'_>,
    ) -> Result<()> {
        let keyring = self.inner.data.keyring.load();
        let Some(entry) = keyring.keys.get(&record.id) else {
            return Ok(());
        };
        let arn = self.inner.scope.key_arn(&record.id);
        let access = &entry.access;
        if access.policy_allows(
            &self.caller,
            Action::CreateGrant,
            &arn,
            record.key_spec,
            record.key_usage,
            facts,
        ) {
            return Ok(());
        }
        let ungrantable = access.ungrantable_operation(
            &self.caller,
            &request.operations,
            request.constraints.as_ref(),
        );
        if let Some(wider) = ungrantable {
            return Err(Error::AccessDenied(format!(
                "{} may create grants on {arn} only through its grants, and none of them that \
                 allows CreateGrant allows {wider} with constraints the new grant keeps; a grant \
                 made through a grant can allow no more than it, and must keep its encryption \
                 context constraints (EncryptionContextEquals as it is, EncryptionContextSubset's \
                 pairs included)",
                self.caller.principal()
            )));
        }
        Ok(())
    }
}

/// A grant of the key with the request's Name and the same grantee, retiring principal,
/// operations (in any order) and constraints, if the request has a Name.
fn same_named_grant<'r>(
    record: &'r KeyRecord,
    request: &CreateGrantRequest,
) -> Option<&'r GrantRecord> {
    let name = request.name.as_ref()?;
    let mut wanted = request.operations.clone();
    wanted.sort();
    wanted.dedup();
    record.grants.iter().find(|g| {
        let mut operations = g.operations.clone();
        operations.sort();
        operations.dedup();
        g.name.as_ref() == Some(name)
            && g.grantee_principal == request.grantee_principal
            && g.retiring_principal == request.retiring_principal
            && operations == wanted
            && g.constraints == request.constraints
    })
}

fn find_grant<'r>(record: &'r KeyRecord, grant_id: &str) -> Result<&'r GrantRecord> {
    record
        .grants
        .iter()
        .find(|g| g.grant_id == grant_id)
        .ok_or_else(|| {
            Error::InvalidGrantId(format!(
                "grant '{grant_id}' does not exist on key {}",
                record.id
            ))
        })
}
