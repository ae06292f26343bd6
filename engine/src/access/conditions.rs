//! The condition keys the engine answers, and the refusal of policies that use any other.
//!
//! A key policy statement whose condition names a key the engine never supplies can never apply:
//! a `Deny` on it is silently inert, an `Allow` silently never matches. So the engine supplies
//! every key of the service for which it has the fact ([`SUPPORTED_KEYS`], [`SUPPORTED_PREFIXES`])
//! and refuses, when a policy is written (PutKeyPolicy, CreateKey), any other key, naming it.
//!
//! Lookups run per condition during policy evaluation and do not allocate.

use super::request_facts::RequestFacts;
use super::{Action, Caller};
use crate::error::{Error, Result};
use crate::key::{KeySpec, KeyUsage, MultiRegionKeyType, Origin, Tag};
use crate::policy::KeyPolicy;

/// Condition keys with a fixed name that the engine answers, in canonical spelling, with the
/// requests that carry them.
pub const SUPPORTED_KEYS: &[&str] = &[
    // Every request on a key.
    "kms:CallerAccount",
    "kms:CustomerMasterKeySpec",
    "kms:CustomerMasterKeyUsage",
    "kms:KeyOrigin",
    "kms:KeySpec",
    "kms:KeyUsage",
    "kms:MultiRegion",
    "kms:MultiRegionKeyType",
    "kms:RequestAlias",
    "kms:ViaService",
    "aws:PrincipalAccount",
    "aws:PrincipalArn",
    "aws:PrincipalType",
    "aws:RequestedRegion",
    "aws:ResourceAccount",
    "aws:SourceIp",
    "aws:username",
    "aws:ViaAWSService",
    // Cryptographic requests.
    "kms:DataKeyPairSpec",
    "kms:EncryptionAlgorithm",
    "kms:EncryptionContextKeys",
    "kms:KeyAgreementAlgorithm",
    "kms:MacAlgorithm",
    "kms:MessageType",
    "kms:SigningAlgorithm",
    // CreateGrant (and ListGrants, RevokeGrant for kms:GrantIsForAWSResource).
    "kms:GrantConstraintType",
    "kms:GrantIsForAWSResource",
    "kms:GrantOperations",
    "kms:GranteePrincipal",
    "kms:RetiringPrincipal",
    // Management requests.
    "kms:BypassPolicyLockoutSafetyCheck",
    "kms:RotationPeriodInDays",
    "kms:ScheduleKeyDeletionPendingWindowInDays",
    // ReplicateKey and UpdatePrimaryRegion.
    "kms:ReplicaRegion",
    "kms:PrimaryRegion",
    // GetParametersForImport and ImportKeyMaterial.
    "kms:WrappingAlgorithm",
    "kms:WrappingKeySpec",
    "kms:ExpirationModel",
    "kms:ValidTo",
    "aws:TagKeys",
];

/// Key families with a free-form suffix that the engine answers.
pub const SUPPORTED_PREFIXES: &[&str] = &[
    "kms:EncryptionContext:",
    "aws:PrincipalTag/",
    "aws:RequestTag/",
    "aws:ResourceTag/",
];

fn strip_prefix_ignore_case<'k>(key: &'k str, prefix: &str) -> Option<&'k str> {
    let head = key.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &key[prefix.len()..])
}

/// Refuses a policy that names a condition key the engine cannot evaluate.
pub(crate) fn check_keys_are_supported(policy: &KeyPolicy) -> Result<()> {
    for (statement, key) in policy.condition_keys() {
        let supported = SUPPORTED_KEYS.iter().any(|k| k.eq_ignore_ascii_case(key))
            || SUPPORTED_PREFIXES
                .iter()
                .any(|p| strip_prefix_ignore_case(key, p).is_some_and(|rest| !rest.is_empty()));
        if !supported {
            return Err(Error::MalformedPolicyDocument(format!(
                "Statement[{statement}].Condition: condition key '{key}' is not supported by this \
                 engine: it has no value for it, so the statement could never apply (supported: \
                 {}, and the families {})",
                SUPPORTED_KEYS.join(", "),
                SUPPORTED_PREFIXES
                    .iter()
                    .map(|p| format!("{p}*"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
    }
    Ok(())
}

/// What the engine knows of a key itself, beyond its spec and usage.
#[derive(Clone, Debug)]
pub(crate) struct KeyFacts {
    pub(crate) origin: Origin,
    pub(crate) tags: Vec<Tag>,
    /// A multi-Region key's type in this engine's Region; `None` for a single-Region key.
    pub(crate) multi_region: Option<MultiRegionKeyType>,
}

/// The condition keys of one request.
pub(crate) struct Conditions<'a> {
    pub(crate) action: Action,
    pub(crate) caller: &'a Caller,
    pub(crate) key_arn: &'a str,
    pub(crate) spec: KeySpec,
    pub(crate) usage: KeyUsage,
    pub(crate) key: &'a KeyFacts,
    pub(crate) facts: &'a RequestFacts<'a>,
}

fn bool_str(b: bool) -> &'static str {
    if b {
        "true"
    } else {
        "false"
    }
}

impl Conditions<'_> {
    /// Calls `visit` with each value of condition key `key` (until it returns false); false when
    /// the request has no such key. Allocation-free: policy evaluation calls this per condition.
    pub(crate) fn each(&self, key: &str, visit: &mut dyn FnMut(&str) -> bool) -> bool {
        let one = |value: Option<&str>, visit: &mut dyn FnMut(&str) -> bool| match value {
            Some(value) => {
                visit(value);
                true
            }
            None => false,
        };
        let facts = self.facts;
        if let Some(name) = strip_prefix_ignore_case(key, "kms:EncryptionContext:") {
            return one(
                facts.context.and_then(|c| c.get(name)).map(String::as_str),
                visit,
            );
        }
        if strip_prefix_ignore_case(key, "aws:PrincipalTag/").is_some() {
            // Principal tags are caller attributes named by their condition key; tag keys
            // compare without regard to case.
            return one(self.caller.attribute(key), visit);
        }
        if let Some(tag) = strip_prefix_ignore_case(key, "aws:ResourceTag/") {
            let value = self
                .key
                .tags
                .iter()
                .find(|t| t.tag_key.eq_ignore_ascii_case(tag));
            return one(value.map(|t| t.tag_value.as_str()), visit);
        }
        if let Some(tag) = strip_prefix_ignore_case(key, "aws:RequestTag/") {
            let value = facts
                .request_tags
                .into_iter()
                .flatten()
                .find(|t| t.tag_key.eq_ignore_ascii_case(tag));
            return one(value.map(|t| t.tag_value.as_str()), visit);
        }
        let is = |name: &str| key.eq_ignore_ascii_case(name);
        let arn_field = |n: usize| self.key_arn.split(':').nth(n).filter(|f| !f.is_empty());
        if is("kms:EncryptionContextKeys") {
            for k in facts.context.into_iter().flat_map(|c| c.keys()) {
                if !visit(k) {
                    break;
                }
            }
            true
        } else if is("kms:CallerAccount") || is("aws:PrincipalAccount") {
            one(Some(self.caller.account()), visit)
        } else if is("aws:PrincipalArn") {
            one(Some(self.caller.principal()), visit)
        } else if is("kms:KeySpec") || is("kms:CustomerMasterKeySpec") {
            one(Some(self.spec.as_str()), visit)
        } else if is("kms:KeyUsage") || is("kms:CustomerMasterKeyUsage") {
            one(Some(self.usage.as_str()), visit)
        } else if is("kms:KeyOrigin") {
            one(Some(self.key.origin.as_str()), visit)
        } else if is("kms:MultiRegion") {
            one(Some(bool_str(self.key.multi_region.is_some())), visit)
        } else if is("kms:MultiRegionKeyType") {
            one(self.key.multi_region.map(MultiRegionKeyType::as_str), visit)
        } else if is("kms:ReplicaRegion") {
            one(facts.replica_region, visit)
        } else if is("kms:PrimaryRegion") {
            one(facts.primary_region, visit)
        } else if is("kms:EncryptionAlgorithm") {
            one(facts.encryption_algorithm, visit)
        } else if is("kms:SigningAlgorithm") {
            one(facts.signing_algorithm, visit)
        } else if is("kms:MessageType") {
            one(facts.message_type, visit)
        } else if is("kms:MacAlgorithm") {
            one(facts.mac_algorithm, visit)
        } else if is("kms:DataKeyPairSpec") {
            one(facts.data_key_pair_spec, visit)
        } else if is("kms:KeyAgreementAlgorithm") {
            one(facts.key_agreement_algorithm, visit)
        } else if is("kms:RequestAlias") {
            let alias = facts.identifier.and_then(|identifier| {
                let named = identifier.starts_with("alias/") || identifier.starts_with("arn:");
                identifier
                    .find("alias/")
                    .filter(|_| named)
                    .map(|at| &identifier[at..])
            });
            one(alias, visit)
        } else if is("kms:GrantOperations") {
            let Some(operations) = facts.grant_operations else {
                return false;
            };
            for op in operations {
                if !visit(op.as_str()) {
                    break;
                }
            }
            true
        } else if is("kms:GranteePrincipal") {
            one(facts.grantee_principal, visit)
        } else if is("kms:RetiringPrincipal") {
            one(facts.retiring_principal, visit)
        } else if is("kms:GrantConstraintType") {
            one(facts.grant_constraint_type, visit)
        } else if is("kms:GrantIsForAWSResource") {
            let grant_call = matches!(
                self.action,
                Action::CreateGrant | Action::ListGrants | Action::RevokeGrant
            );
            let via_service = self.caller.attribute("kms:ViaService").is_some();
            one(grant_call.then_some(bool_str(via_service)), visit)
        } else if is("kms:ViaService") || is("aws:SourceIp") {
            one(self.caller.attribute(key), visit)
        } else if is("aws:ViaAWSService") {
            let via_service = self.caller.attribute("kms:ViaService").is_some();
            one(Some(bool_str(via_service)), visit)
        } else if is("aws:PrincipalType") {
            one(self.caller.principal_type(), visit)
        } else if is("aws:username") {
            one(self.caller.user_name(), visit)
        } else if is("aws:ResourceAccount") {
            one(arn_field(4), visit)
        } else if is("aws:RequestedRegion") {
            one(arn_field(3), visit)
        } else if is("kms:BypassPolicyLockoutSafetyCheck") {
            one(
                facts.bypass_policy_lockout_safety_check.map(bool_str),
                visit,
            )
        } else if is("kms:RotationPeriodInDays") {
            one(facts.rotation_period_in_days, visit)
        } else if is("kms:ScheduleKeyDeletionPendingWindowInDays") {
            one(facts.pending_window_in_days, visit)
        } else if is("kms:WrappingAlgorithm") {
            one(facts.wrapping_algorithm, visit)
        } else if is("kms:WrappingKeySpec") {
            one(facts.wrapping_key_spec, visit)
        } else if is("kms:ExpirationModel") {
            one(facts.expiration_model, visit)
        } else if is("kms:ValidTo") {
            one(facts.valid_to, visit)
        } else if is("aws:TagKeys") {
            if let Some(tags) = facts.request_tags {
                for t in tags {
                    if !visit(&t.tag_key) {
                        break;
                    }
                }
                true
            } else if let Some(keys) = facts.tag_keys {
                for k in keys {
                    if !visit(k) {
                        break;
                    }
                }
                true
            } else {
                false
            }
        } else {
            false
        }
    }
}

impl crate::policy::ConditionValues for Conditions<'_> {
    fn values(&self, key: &str) -> Option<Vec<std::borrow::Cow<'_, str>>> {
        let mut values = Vec::new();
        let present = self.each(key, &mut |v| {
            values.push(std::borrow::Cow::Owned(v.to_owned()));
            true
        });
        present.then_some(values)
    }

    fn visit_values(&self, key: &str, visit: &mut dyn FnMut(&str) -> bool) -> bool {
        self.each(key, visit)
    }
}
