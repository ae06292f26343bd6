//! Authorization: the key policy first (an explicit Deny wins), then grants (which only add
//! permission); decisions that cannot depend on the request are cached per key and caller.

use std::sync::Arc;

use smallvec::SmallVec;

use super::conditions::{Conditions, KeyFacts};
use super::request_facts::RequestFacts;
use super::{Action, Caller};
use crate::context::EncryptionContext;
use crate::dataplane::slot_cache::SlotCache;
use crate::error::{Error, Result};
use crate::key::{GrantConstraints, GrantOperation, GrantRecord, KeyRecord, KeySpec, KeyUsage};
use crate::policy::{Decision, KeyPolicy, RequestContext};

/// Whether a grant's encryption-context constraints let it allow `op` in a request with
/// `context`. As the service documents, they bind the operations that take an encryption context,
/// not DescribeKey or RetireGrant; on CreateGrant they bind the grant being made instead (see
/// [`KeyAccess::ungrantable_operation`]).
fn constraints_hold(
    grant: &GrantRecord,
    op: GrantOperation,
    context: Option<&EncryptionContext>,
) -> bool {
    let Some(constraints) = &grant.constraints else {
        return true;
    };
    if matches!(
        op,
        GrantOperation::CreateGrant | GrantOperation::DescribeKey | GrantOperation::RetireGrant
    ) {
        return true;
    }
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

/// Whether constraints `derived` are at least as strict as `parent`: an EncryptionContextEquals
/// must be kept as it is; the pairs of an EncryptionContextSubset must all be in the derived
/// constraint (a subset that includes them, or an exact context that does).
pub(crate) fn at_least_as_strict(
    parent: Option<&GrantConstraints>,
    derived: Option<&GrantConstraints>,
) -> bool {
    let Some(parent) = parent else {
        return true;
    };
    let derived_equals = derived.and_then(|d| d.encryption_context_equals.as_ref());
    let derived_subset = derived.and_then(|d| d.encryption_context_subset.as_ref());
    if let Some(equals) = &parent.encryption_context_equals {
        if derived_equals != Some(equals) {
            return false;
        }
    }
    if let Some(subset) = &parent.encryption_context_subset {
        let Some(pairs) = derived_equals.or(derived_subset) else {
            return false;
        };
        if !subset.iter().all(|(k, v)| pairs.get(k) == Some(v)) {
            return false;
        }
    }
    true
}

/// A thread's cached decisions on one key: caller id, action, allowed. The first two inline, in
/// the slot's one allocation (most keys have one caller): a cold key's check reads the slot's
/// box, not a box and then a vector's buffer.
type CachedDecisions = SmallVec<[(u64, Action, bool); 2]>;
/// Decisions kept per thread slot and key before the oldest is dropped.
const CACHED_DECISIONS: usize = 32;

/// A key's access rules, parsed once per snapshot.
pub(crate) struct KeyAccess {
    pub(crate) policy: Arc<KeyPolicy>,
    pub(crate) grants: Vec<GrantRecord>,
    key: KeyFacts,
    /// Bit [`Action::index`] set: whether a decision on that action can depend only on the
    /// caller (no conditions in the policy statements that name it, no grant constraints), and
    /// so may be cached. Inline, where a vector's buffer was one more cache miss for a cold key.
    cacheable: u64,
    decisions: SlotCache<CachedDecisions>,
}

impl KeyAccess {
    /// The access rules of `record` as the engine of `region` holds it. The parsed policy may be
    /// shared with other keys that have the same document (it is immutable).
    pub(crate) fn new(
        policy: impl Into<Arc<KeyPolicy>>,
        record: &KeyRecord,
        region: &str,
    ) -> KeyAccess {
        let policy = policy.into();
        let grants = record.grants.clone();
        let grants_unconstrained = grants.iter().all(|g| g.constraints.is_none());
        const _: () = assert!(Action::ALL.len() <= 64, "one bit per action in `cacheable`");
        let cacheable = Action::ALL
            .iter()
            .filter(|a| grants_unconstrained && policy.is_unconditional_for(a.as_str()))
            .fold(0u64, |bits, a| bits | 1 << a.index());
        KeyAccess {
            policy,
            grants,
            key: KeyFacts {
                origin: record.origin,
                tags: record.tags.clone(),
                multi_region: record.multi_region.as_ref().map(|m| {
                    if m.is_primary_in(region) {
                        crate::key::MultiRegionKeyType::Primary
                    } else {
                        crate::key::MultiRegionKeyType::Replica
                    }
                }),
            },
            cacheable,
            decisions: SlotCache::default(),
        }
    }

    /// Whether a decision for `action` depends only on the caller, so that it may be reused.
    pub(crate) fn is_cacheable(&self, action: Action) -> bool {
        self.cacheable & 1 << action.index() != 0
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
        if !self.is_cacheable(action) {
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
        self.policy_decision(caller, action, key_arn, spec, usage, facts) == Decision::Allow
    }

    /// What the key policy alone decides for `action` by `caller` on the key, in these facts.
    fn policy_decision(
        &self,
        caller: &Caller,
        action: Action,
        key_arn: &str,
        spec: KeySpec,
        usage: KeyUsage,
        facts: &RequestFacts<'_>,
    ) -> Decision {
        let conditions = Conditions {
            action,
            caller,
            key_arn,
            spec,
            usage,
            key: &self.key,
            facts,
        };
        let request = RequestContext {
            action: action.as_str(),
            principal: caller.principal(),
            principal_account: caller.account(),
            resource: key_arn,
            conditions: &conditions,
        };
        self.policy.evaluate(&request)
    }

    /// The first of `operations` that the caller may not pass on, through its own grants, in a
    /// grant with `constraints`. Each operation needs one grant of the caller that allows both
    /// CreateGrant and it, and whose constraints `constraints` are at least as strict as.
    pub(crate) fn ungrantable_operation(
        &self,
        caller: &Caller,
        operations: &[GrantOperation],
        constraints: Option<&GrantConstraints>,
    ) -> Option<GrantOperation> {
        operations.iter().copied().find(|op| {
            !self.grants.iter().any(|g| {
                g.grantee_principal == caller.principal()
                    && g.operations.contains(&GrantOperation::CreateGrant)
                    && g.operations.contains(op)
                    && at_least_as_strict(g.constraints.as_ref(), constraints)
            })
        })
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
        match self.policy_decision(caller, action, key_arn, spec, usage, facts) {
            Decision::Allow => true,
            Decision::ExplicitDeny => false,
            Decision::ImplicitDeny => action.grant_operation().is_some_and(|op| {
                self.grants.iter().any(|g| {
                    g.grantee_principal == caller.principal()
                        && g.operations.contains(&op)
                        && constraints_hold(g, op, facts.context)
                })
            }),
        }
    }
}
