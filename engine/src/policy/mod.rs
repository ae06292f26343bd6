//! Key policies: the service's policy language, parsed, validated and evaluated.
//!
//! A key policy is a JSON document of statements, each allowing or denying some actions
//! (`kms:Encrypt`, `kms:Create*`) to some principals, optionally under conditions on the request
//! (`"StringEquals": {"kms:EncryptionContext:tenant": "42"}`). [`KeyPolicy::parse`] checks a
//! document when it is written and compiles it: wildcard patterns, principal sets and condition
//! keys are prepared once, so [`KeyPolicy::evaluate`] only compares strings in place and does not
//! allocate (condition values come through [`ConditionValues::visit_values`], which an engine can
//! implement without allocating too).
//!
//! ```
//! use keyplane::policy::{default_policy, Decision, KeyPolicy, RequestContext};
//!
//! let policy = KeyPolicy::parse(&default_policy("111122223333"))?;
//! let request = RequestContext {
//!     action: "kms:Encrypt",
//!     principal: "arn:aws:iam::111122223333:user/alice",
//!     principal_account: "111122223333",
//!     resource: "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab",
//!     conditions: &(),
//! };
//! assert_eq!(policy.evaluate(&request), Decision::Allow);
//! let stranger = RequestContext { principal: "arn:aws:iam::444455556666:root", principal_account: "444455556666", ..request };
//! assert_eq!(policy.evaluate(&stranger), Decision::ImplicitDeny);
//! # Ok::<(), keyplane::policy::PolicyError>(())
//! ```
//!
//! # The language
//!
//! - Top level: `Version` (`"2012-10-17"` or `"2008-10-17"`; absent means 2008-10-17), optional
//!   `Id`, and `Statement`: one statement object or a non-empty array of them.
//! - Statement: optional `Sid`; `Effect` (`Allow` | `Deny`, case-sensitive); exactly one of
//!   `Principal` / `NotPrincipal`; exactly one of `Action` / `NotAction`; exactly one of `Resource`
//!   / `NotResource`; optional `Condition`. Element names are case-sensitive.
//! - Principal: `"*"`, or an object with `AWS` (account ids, `arn:…:iam::<account>:root`, other IAM
//!   and STS ARNs, or `"*"`) and/or `Service` (service principal names such as
//!   `"ec2.amazonaws.com"`), each a string or an array. An account id or account root ARN means
//!   every principal of that account; a role ARN also covers that role's sessions
//!   (`arn:…:sts::<account>:assumed-role/<role>/<session>`). Wildcards are not allowed inside
//!   principal ARNs (use an `ArnLike` condition on `aws:PrincipalArn`).
//! - Action: `"*"` or `service:name` with `*` / `?` wildcards, matched without regard to case.
//!   `kms:` actions must name, or match, at least one action in [`KMS_ACTIONS`], so a typo is
//!   refused rather than silently never matching.
//! - Resource: `"*"` or ARNs with `*` / `?` wildcards, matched case-sensitively component by
//!   component (a wildcard does not span a `:`).
//! - Condition: `{ operator: { key: value-or-values } }`. Operators: `StringEquals`,
//!   `StringNotEquals`, `StringEqualsIgnoreCase`, `StringNotEqualsIgnoreCase`, `StringLike`,
//!   `StringNotLike`, `ArnEquals`, `ArnNotEquals`, `ArnLike`, `ArnNotLike`, `Bool`, each with an
//!   optional `IfExists` suffix and `ForAllValues:` / `ForAnyValue:` prefix; and `Null`. Operators
//!   of other families (`Numeric*`, `Date*`, `IpAddress`, `BinaryEquals`) are refused as
//!   unsupported. All operators of a block, and all keys of an operator, must hold (AND); the
//!   values listed for one key are alternatives (OR). See [`ConditionValues`] for key names.
//! - With `"Version": "2012-10-17"`, `${*}`, `${?}` and `${$}` in resources and condition values
//!   stand for a literal `*`, `?` and `$`. Other policy variables (`${aws:username}`) are refused:
//!   this engine does not substitute them, and taking them literally could quietly disable a
//!   `Deny`. Under 2008-10-17 `${` has no special meaning.
//!
//! # Evaluation
//!
//! A statement applies when its principal, action, resource and every condition match. Any
//! applying `Deny` gives [`Decision::ExplicitDeny`]; otherwise any applying `Allow` gives
//! [`Decision::Allow`]; otherwise [`Decision::ImplicitDeny`].

mod action;
mod condition;
mod document;
mod evaluate;
mod json;
mod principal;
mod resource;
mod syntax;
pub mod templates;
mod wildcard;

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::fmt;

pub use action::KMS_ACTIONS;
pub use condition::KNOWN_CONDITION_KEYS;

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
/// [`KNOWN_CONDITION_KEYS`] (`kms:CallerAccount`, `aws:PrincipalArn`, ...) whatever the case used
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

/// A parsed and validated key policy, ready to evaluate.
#[derive(Clone, Debug)]
pub struct KeyPolicy {
    document: Box<str>,
    statements: Vec<evaluate::Statement>,
}

impl KeyPolicy {
    /// Parses and validates a policy document (max 32 KiB). Errors point at the problem:
    /// `"Statement[2].Condition: unknown operator 'StringEqualz'"`.
    pub fn parse(document: &str) -> Result<KeyPolicy, PolicyError> {
        let statements = document::parse(document)?;
        Ok(KeyPolicy {
            document: document.into(),
            statements,
        })
    }

    /// A policy with no statements: it allows nothing.
    pub fn deny_all() -> KeyPolicy {
        KeyPolicy {
            document: r#"{"Version":"2012-10-17","Statement":[]}"#.into(),
            statements: Vec::new(),
        }
    }

    /// Whether every statement about `action` is free of conditions, so that a decision for it
    /// depends only on the principal and the key, and may be cached.
    pub fn is_unconditional_for(&self, action: &str) -> bool {
        self.statements
            .iter()
            .filter(|s| s.actions.matches(action) != s.not_action)
            .all(|s| s.conditions.is_empty())
    }

    /// The condition keys the policy's statements test, with the index of each statement, in
    /// canonical spelling for the keys of [`KNOWN_CONDITION_KEYS`] and as written otherwise.
    pub fn condition_keys(&self) -> impl Iterator<Item = (usize, &str)> + '_ {
        self.statements
            .iter()
            .enumerate()
            .flat_map(|(i, s)| s.conditions.iter().map(move |c| (i, c.key_name())))
    }

    /// Decides `request`: an applying `Deny` wins, then an applying `Allow`, otherwise
    /// [`Decision::ImplicitDeny`].
    pub fn evaluate(&self, request: &RequestContext<'_>) -> Decision {
        evaluate::decide(&self.statements, request)
    }

    /// The document exactly as it was parsed (what GetKeyPolicy returns).
    pub fn document(&self) -> &str {
        &self.document
    }
}

/// The service's default key policy: the account's root principal (and so, through IAM, the
/// account's administrators) gets `kms:*` on the key.
pub fn default_policy(account: &str) -> String {
    let document = serde_json::json!({
        "Version": "2012-10-17",
        "Id": "key-default-1",
        "Statement": [{
            "Sid": "Enable IAM User Permissions",
            "Effect": "Allow",
            "Principal": { "AWS": format!("arn:aws:iam::{account}:root") },
            "Action": "kms:*",
            "Resource": "*"
        }]
    });
    serde_json::to_string_pretty(&document).expect("a JSON value always serializes")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request<'a>(principal: &'a str, account: &'a str, action: &'a str) -> RequestContext<'a> {
        RequestContext {
            action,
            principal,
            principal_account: account,
            resource: "arn:aws:kms:us-east-1:111122223333:key/k1",
            conditions: &(),
        }
    }

    #[test]
    fn default_policy_allows_the_account_and_no_one_else() {
        let text = default_policy("111122223333");
        let policy = KeyPolicy::parse(&text).unwrap();
        assert_eq!(policy.document(), text);
        for action in ["kms:Encrypt", "kms:PutKeyPolicy", "kms:ScheduleKeyDeletion"] {
            assert_eq!(
                policy.evaluate(&request(
                    "arn:aws:iam::111122223333:user/alice",
                    "111122223333",
                    action
                )),
                Decision::Allow
            );
            assert_eq!(
                policy.evaluate(&request(
                    "arn:aws:iam::111122223333:root",
                    "111122223333",
                    action
                )),
                Decision::Allow
            );
            assert_eq!(
                policy.evaluate(&request(
                    "arn:aws:iam::444455556666:root",
                    "444455556666",
                    action
                )),
                Decision::ImplicitDeny
            );
        }
        assert_eq!(
            policy.evaluate(&request(
                "arn:aws:iam::111122223333:root",
                "111122223333",
                "iam:PassRole"
            )),
            Decision::ImplicitDeny
        );
    }

    #[test]
    fn default_policy_is_the_service_shape() {
        let value: serde_json::Value =
            serde_json::from_str(&default_policy("123456789012")).unwrap();
        assert_eq!(value["Version"], "2012-10-17");
        assert_eq!(
            value["Statement"][0]["Principal"]["AWS"],
            "arn:aws:iam::123456789012:root"
        );
        assert_eq!(value["Statement"][0]["Action"], "kms:*");
        assert_eq!(value["Statement"][0]["Resource"], "*");
    }

    #[test]
    fn policies_are_send_and_sync() {
        fn check<T: Send + Sync + 'static>() {}
        check::<KeyPolicy>();
        check::<PolicyError>();
        check::<Decision>();
    }

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
