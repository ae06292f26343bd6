//! The policy language's public vocabulary: the request a policy decides ([`RequestContext`],
//! with its [`ConditionValues`]), the [`Decision`], and why a document is refused
//! ([`PolicyError`], with the size limit).

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::fmt;

/// The largest policy document accepted, in bytes (the service's 32 KiB limit).
pub const MAX_POLICY_BYTES: usize = 32 * 1024;

/// Why a policy document was refused. The message names the place (`Statement[2].Condition`, with
/// the statement's `Sid` when it has one) and the problem.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PolicyError {
    /// The document is not valid JSON, not a valid policy, too large, or uses something this
    /// engine does not support.
    Malformed(String),
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PolicyError::Malformed(message) => f.write_str(message),
        }
    }
}

impl std::error::Error for PolicyError {}

/// The outcome of evaluating a policy for one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Decision {
    /// At least one `Allow` statement applies and no `Deny` statement does.
    Allow,
    /// At least one `Deny` statement applies; nothing else can allow the request.
    ExplicitDeny,
    /// No statement applies; something else (a grant) may still allow the request.
    ImplicitDeny,
}

/// The values of condition keys for one request.
///
/// Key names reach [`values`](ConditionValues::values) in canonical spelling for the keys in
/// [`KNOWN_CONDITION_KEYS`](crate::policy::KNOWN_CONDITION_KEYS) (`kms:CallerAccount`, `aws:PrincipalArn`, ...) whatever the case used
/// in the policy (condition key names are case-insensitive), and as `kms:EncryptionContext:<k>`
/// with `<k>` exactly as written (encryption context keys are case-sensitive). Any other `kms:` or
/// `aws:` key arrives as the policy spelled it; an implementation that serves such keys should
/// compare names without regard to ASCII case.
///
/// `aws:PrincipalArn`, `aws:PrincipalAccount` and `kms:CallerAccount`, when absent here, are
/// taken from [`RequestContext::principal`] and [`RequestContext::principal_account`].
pub trait ConditionValues {
    /// The values of `key`, or `None` when the request does not have it. Multi-valued keys
    /// (`kms:EncryptionContextKeys`, `kms:GrantOperations`) return several; an empty list counts
    /// as absent.
    fn values(&self, key: &str) -> Option<Vec<Cow<'_, str>>>;

    /// Calls `visit` with each value of `key`, in order, until it returns `false`; returns whether
    /// the key is present. Evaluation uses this method. The default goes through
    /// [`values`](ConditionValues::values), which allocates a `Vec`; implement this one as well
    /// to keep evaluation allocation-free.
    fn visit_values(&self, key: &str, visit: &mut dyn FnMut(&str) -> bool) -> bool {
        match self.values(key) {
            None => false,
            Some(values) => {
                for value in &values {
                    if !visit(value) {
                        break;
                    }
                }
                true
            }
        }
    }
}

/// No condition keys at all.
impl ConditionValues for () {
    fn values(&self, _key: &str) -> Option<Vec<Cow<'_, str>>> {
        None
    }

    fn visit_values(&self, _key: &str, _visit: &mut dyn FnMut(&str) -> bool) -> bool {
        false
    }
}

/// Keys looked up by exact (canonical) name.
impl<S: std::hash::BuildHasher> ConditionValues for HashMap<String, Vec<String>, S> {
    fn values(&self, key: &str) -> Option<Vec<Cow<'_, str>>> {
        self.get(key)
            .map(|values| values.iter().map(|v| Cow::Borrowed(v.as_str())).collect())
    }

    fn visit_values(&self, key: &str, visit: &mut dyn FnMut(&str) -> bool) -> bool {
        visit_all(self.get(key), visit)
    }
}

/// Keys looked up by exact (canonical) name.
impl ConditionValues for BTreeMap<String, Vec<String>> {
    fn values(&self, key: &str) -> Option<Vec<Cow<'_, str>>> {
        self.get(key)
            .map(|values| values.iter().map(|v| Cow::Borrowed(v.as_str())).collect())
    }

    fn visit_values(&self, key: &str, visit: &mut dyn FnMut(&str) -> bool) -> bool {
        visit_all(self.get(key), visit)
    }
}

fn visit_all(values: Option<&Vec<String>>, visit: &mut dyn FnMut(&str) -> bool) -> bool {
    match values {
        None => false,
        Some(values) => {
            for value in values {
                if !visit(value) {
                    break;
                }
            }
            true
        }
    }
}

/// One request, as a policy sees it.
#[derive(Clone, Copy)]
pub struct RequestContext<'a> {
    /// The action: `kms:<Operation>`, e.g. `"kms:Encrypt"`.
    pub action: &'a str,
    /// The caller's ARN (`arn:aws:iam::111122223333:user/alice`,
    /// `arn:aws:iam::111122223333:root`, `arn:aws:sts::111122223333:assumed-role/R/session`), or a
    /// service principal name (`ec2.amazonaws.com`) for a call made by a service.
    pub principal: &'a str,
    /// The caller's account, e.g. `"111122223333"`.
    pub principal_account: &'a str,
    /// The ARN of the key the request is about.
    pub resource: &'a str,
    /// The values of condition keys.
    pub conditions: &'a dyn ConditionValues,
}

impl fmt::Debug for RequestContext<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequestContext")
            .field("action", &self.action)
            .field("principal", &self.principal)
            .field("principal_account", &self.principal_account)
            .field("resource", &self.resource)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_displays_its_message() {
        let err = PolicyError::Malformed("Statement[0].Effect: missing".into());
        assert_eq!(err.to_string(), "Statement[0].Effect: missing");
    }

    #[test]
    fn map_condition_values_visit_in_order_and_stop() {
        let mut map = HashMap::new();
        map.insert(
            "k".to_string(),
            vec!["a".to_string(), "b".to_string(), "c".to_string()],
        );
        let mut seen = Vec::new();
        assert!(map.visit_values("k", &mut |v| {
            seen.push(v.to_string());
            v != "b"
        }));
        assert_eq!(seen, ["a", "b"]);
        assert!(!map.visit_values("missing", &mut |_| true));
        assert_eq!(ConditionValues::values(&map, "k").unwrap().len(), 3);
    }

    #[test]
    fn default_visit_goes_through_values() {
        struct Only;
        impl ConditionValues for Only {
            fn values(&self, key: &str) -> Option<Vec<Cow<'_, str>>> {
                (key == "kms:CallerAccount").then(|| vec![Cow::Borrowed("1"), Cow::Borrowed("2")])
            }
        }
        let mut n = 0;
        assert!(Only.visit_values("kms:CallerAccount", &mut |_| {
            n += 1;
            true
        }));
        assert_eq!(n, 2);
        assert!(!Only.visit_values("kms:KeySpec", &mut |_| true));
    }
}
