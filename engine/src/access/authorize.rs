//! Authorization: the key policy first (an explicit Deny wins), then grants (which only add
//! permission); decisions that cannot depend on the request are cached per key and caller.

use std::borrow::Cow;

use super::{Action, Caller};
use crate::context::EncryptionContext;
use crate::dataplane::session::SlotCache;
use crate::error::{Error, Result};
use crate::key::{GrantOperation, GrantRecord, KeySpec, KeyUsage};
use crate::policy::{ConditionValues, Decision, KeyPolicy, RequestContext};

/// What a request says about itself, for policy conditions and grant constraints.
#[derive(Clone, Copy, Default)]
pub(crate) struct RequestFacts<'a> {
    pub(crate) context: Option<&'a EncryptionContext>,
    /// The key identifier as the caller gave it (an alias name or ARN sets `kms:RequestAlias`).
    pub(crate) identifier: Option<&'a str>,
    pub(crate) encryption_algorithm: Option<&'a str>,
    pub(crate) grant_operations: Option<&'a [GrantOperation]>,
}

struct Conditions<'a> {
    caller: &'a Caller,
    spec: KeySpec,
    usage: KeyUsage,
    facts: &'a RequestFacts<'a>,
}

fn strip_prefix_ignore_case<'k>(key: &'k str, prefix: &str) -> Option<&'k str> {
    let head = key.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &key[prefix.len()..])
}

impl Conditions<'_> {
    /// Calls `visit` with each value of condition key `key` (until it returns false); false when
    /// the request has no such key. Allocation-free: policy evaluation calls this per condition.
    fn each(&self, key: &str, visit: &mut dyn FnMut(&str) -> bool) -> bool {
        let one = |value: Option<&str>, visit: &mut dyn FnMut(&str) -> bool| match value {
            Some(value) => {
                visit(value);
                true
            }
            None => false,
        };
        if let Some(name) = strip_prefix_ignore_case(key, "kms:EncryptionContext:") {
            return one(
                self.facts
                    .context
                    .and_then(|c| c.get(name))
                    .map(String::as_str),
                visit,
            );
        }
        let is = |name: &str| key.eq_ignore_ascii_case(name);
        if is("kms:EncryptionContextKeys") {
            for k in self.facts.context.into_iter().flat_map(|c| c.keys()) {
                if !visit(k) {
                    break;
                }
            }
            true
        } else if is("kms:CallerAccount") {
            one(Some(self.caller.account()), visit)
        } else if is("aws:PrincipalArn") {
            one(Some(self.caller.principal()), visit)
        } else if is("kms:KeySpec") {
            one(Some(self.spec.as_str()), visit)
        } else if is("kms:KeyUsage") {
            one(Some(self.usage.as_str()), visit)
        } else if is("kms:EncryptionAlgorithm") {
            one(self.facts.encryption_algorithm, visit)
        } else if is("kms:RequestAlias") {
            let alias = self.facts.identifier.and_then(|identifier| {
                let named = identifier.starts_with("alias/") || identifier.starts_with("arn:");
                identifier
                    .find("alias/")
                    .filter(|_| named)
                    .map(|at| &identifier[at..])
            });
            one(alias, visit)
        } else if is("kms:GrantOperations") {
            let Some(operations) = self.facts.grant_operations else {
                return false;
            };
            for op in operations {
                if !visit(op.as_str()) {
                    break;
                }
            }
            true
        } else if is("kms:ViaService") {
            one(
                self.caller
                    .attributes()
                    .get("kms:ViaService")
                    .map(String::as_str),
                visit,
            )
        } else {
            false
        }
    }
}

impl ConditionValues for Conditions<'_> {
    fn values(&self, key: &str) -> Option<Vec<Cow<'_, str>>> {
        let mut values = Vec::new();
        let present = self.each(key, &mut |v| {
            values.push(Cow::Owned(v.to_owned()));
            true
        });
        present.then_some(values)
    }

    fn visit_values(&self, key: &str, visit: &mut dyn FnMut(&str) -> bool) -> bool {
        self.each(key, visit)
    }
}

/// Whether a grant's encryption-context constraints hold for a request.
fn constraints_hold(grant: &GrantRecord, context: Option<&EncryptionContext>) -> bool {
    let Some(constraints) = &grant.constraints else {
        return true;
    };
    let empty = EncryptionContext::new();
    let context = context.unwrap_or(&empty);
    if let Some(equals) = &constraints.encryption_context_equals {
        if equals != context {
            return false;
        }
    }
    if let Some(subset) = &constraints.encryption_context_subset {
        if !subset.iter().all(|(k, v)| context.get(k) == Some(v)) {
            return false;
        }
    }
    true
}

/// A cached decision: caller id, action, allowed.
type CachedDecisions = Vec<(u64, Action, bool)>;
/// Decisions kept per thread slot and key before the oldest is dropped.
const CACHED_DECISIONS: usize = 32;

/// A key's access rules, parsed once per snapshot.
pub(crate) struct KeyAccess {
    pub(crate) policy: KeyPolicy,
    pub(crate) grants: Vec<GrantRecord>,
    /// Per action: whether a decision can depend only on the caller (no conditions in the policy
    /// statements that name it, no grant constraints), and so may be cached.
    cacheable: Vec<bool>,
    decisions: SlotCache<CachedDecisions>,
}

impl KeyAccess {
    pub(crate) fn new(policy: KeyPolicy, grants: Vec<GrantRecord>) -> KeyAccess {
        let grants_unconstrained = grants.iter().all(|g| g.constraints.is_none());
        let cacheable = Action::ALL
            .iter()
            .map(|a| grants_unconstrained && policy.is_unconditional_for(a.as_str()))
            .collect();
        KeyAccess {
            policy,
            grants,
            cacheable,
            decisions: SlotCache::default(),
        }
    }

    /// Whether a decision for `action` depends only on the caller, so that it may be reused.
    pub(crate) fn is_cacheable(&self, action: Action) -> bool {
        self.cacheable[action.index()]
    }

    /// Allows the call or fails with AccessDenied, naming the caller, action and key.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn check(
        &self,
        caller: &Caller,
        action: Action,
        key_arn: &str,
        spec: KeySpec,
        usage: KeyUsage,
        facts: &RequestFacts<'_>,
    ) -> Result<()> {
        if !self.cacheable[action.index()] {
            let allowed = self.decide(caller, action, key_arn, spec, usage, facts);
            return self.outcome(allowed, caller, action, key_arn);
        }
        let mut cached = self.decisions.take().unwrap_or_default();
        let hit = cached
            .iter()
            .find(|(id, a, _)| *id == caller.id() && *a == action)
            .map(|(_, _, allowed)| *allowed);
        let allowed = match hit {
            Some(allowed) => allowed,
            None => {
                let allowed = self.decide(caller, action, key_arn, spec, usage, facts);
                if cached.len() >= CACHED_DECISIONS {
                    cached.remove(0);
                }
                cached.push((caller.id(), action, allowed));
                allowed
            }
        };
        self.decisions.put(cached);
        self.outcome(allowed, caller, action, key_arn)
    }

    fn outcome(&self, allowed: bool, caller: &Caller, action: Action, key_arn: &str) -> Result<()> {
        if allowed {
            return Ok(());
        }
        Err(Error::AccessDenied(format!(
            "{} is not authorized to perform {} on {key_arn}: no key policy statement or grant \
             allows it, or a statement denies it",
            caller.principal(),
            action.as_str()
        )))
    }

    /// Whether the key policy alone allows `action` (grants aside).
    pub(crate) fn policy_allows(
        &self,
        caller: &Caller,
        action: Action,
        key_arn: &str,
        spec: KeySpec,
        usage: KeyUsage,
        facts: &RequestFacts<'_>,
    ) -> bool {
        let conditions = Conditions {
            caller,
            spec,
            usage,
            facts,
        };
        let request = RequestContext {
            action: action.as_str(),
            principal: caller.principal(),
            principal_account: caller.account(),
            resource: key_arn,
            conditions: &conditions,
        };
        self.policy.evaluate(&request) == Decision::Allow
    }

    /// The operations of the caller's grants that allow CreateGrant: what a grant created
    /// through them may contain.
    pub(crate) fn grantable_operations(&self, caller: &Caller) -> Vec<GrantOperation> {
        let mut operations = Vec::new();
        for grant in self.grants.iter().filter(|g| {
            g.grantee_principal == caller.principal()
                && g.operations.contains(&GrantOperation::CreateGrant)
        }) {
            for op in &grant.operations {
                if !operations.contains(op) {
                    operations.push(*op);
                }
            }
        }
        operations
    }

    fn decide(
        &self,
        caller: &Caller,
        action: Action,
        key_arn: &str,
        spec: KeySpec,
        usage: KeyUsage,
        facts: &RequestFacts<'_>,
    ) -> bool {
        let conditions = Conditions {
            caller,
            spec,
            usage,
            facts,
        };
        let request = RequestContext {
            action: action.as_str(),
            principal: caller.principal(),
            principal_account: caller.account(),
            resource: key_arn,
            conditions: &conditions,
        };
        match self.policy.evaluate(&request) {
            Decision::Allow => true,
            Decision::ExplicitDeny => false,
            Decision::ImplicitDeny => action.grant_operation().is_some_and(|op| {
                self.grants.iter().any(|g| {
                    g.grantee_principal == caller.principal()
                        && g.operations.contains(&op)
                        && constraints_hold(g, facts.context)
                })
            }),
        }
    }
}
