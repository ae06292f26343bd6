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
mod types;
mod wildcard;

pub use action::KMS_ACTIONS;
pub use condition::KNOWN_CONDITION_KEYS;
pub use types::{ConditionValues, Decision, PolicyError, RequestContext, MAX_POLICY_BYTES};

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
}
