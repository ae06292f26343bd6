//! `Principal` and `NotPrincipal`: who a statement is about.
//!
//! Accepted forms: `"*"`; `{"AWS": ...}` with `"*"`, 12-digit account ids, account root ARNs
//! (`arn:aws:iam::111122223333:root`), and other IAM or STS ARNs; `{"Service": ...}` with service
//! principal names. An account id or root ARN stands for every principal of that account; a role ARN
//! also stands for the role's sessions. Everything is split up at parse time so that matching is
//! string comparison only.

use super::json::Json;
use super::syntax::{shown, string_list, Scope};
use super::types::{PolicyError, RequestContext};

/// A role named by ARN, kept in parts to recognise its sessions
/// (`arn:<partition>:sts::<account>:assumed-role/<name>/<session>`).
#[derive(Clone, Debug, PartialEq, Eq)]
struct Role {
    partition: Box<str>,
    account: Box<str>,
    name: Box<str>,
}

/// The principals a `Principal` or `NotPrincipal` element names.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Principals {
    everyone: bool,
    accounts: Vec<Box<str>>,
    arns: Vec<Box<str>>,
    roles: Vec<Role>,
    services: Vec<Box<str>>,
}

const EXAMPLE: &str = "{\"AWS\": \"arn:aws:iam::111122223333:root\"}";

impl Principals {
    /// Validates and compiles the element's value; `field` is `Principal` or `NotPrincipal`.
    pub(crate) fn parse(
        value: &Json,
        scope: &Scope<'_>,
        field: &str,
    ) -> Result<Principals, PolicyError> {
        let mut principals = Principals::default();
        match value {
            Json::String(s) if s == "*" => principals.everyone = true,
            Json::String(s) => {
                return Err(scope.error(
                    field,
                    format_args!(
                        "must be \"*\" or an object such as {EXAMPLE}, found '{}'",
                        shown(s)
                    ),
                ))
            }
            Json::Object(types) => {
                if types.is_empty() {
                    return Err(scope.error(field, "must name at least one principal"));
                }
                for (kind, list) in types {
                    let path = format!("{field}.{kind}");
                    match kind.as_str() {
                        "AWS" => {
                            let items = string_list(list, scope, &path, false)?;
                            for (i, item) in items.items.iter().enumerate() {
                                principals
                                    .add_aws(item)
                                    .map_err(|m| scope.error(&items.path(&path, i), m))?;
                            }
                        }
                        "Service" => {
                            let items = string_list(list, scope, &path, false)?;
                            for (i, item) in items.items.iter().enumerate() {
                                principals
                                    .add_service(item)
                                    .map_err(|m| scope.error(&items.path(&path, i), m))?;
                            }
                        }
                        "Federated" | "CanonicalUser" => {
                            return Err(scope.error(
                                field,
                                format_args!(
                                    "principal type '{kind}' is not supported (use AWS or Service)"
                                ),
                            ))
                        }
                        _ => {
                            return Err(scope.error(
                                field,
                                format_args!(
                                    "unknown principal type '{}'{} (expected AWS or Service)",
                                    shown(kind),
                                    super::syntax::suggestion(kind, &["AWS", "Service"])
                                ),
                            ))
                        }
                    }
                }
            }
            other => {
                return Err(scope.error(
                    field,
                    format_args!(
                        "must be \"*\" or an object such as {EXAMPLE}, found {}",
                        other.kind()
                    ),
                ))
            }
        }
        Ok(principals)
    }

    fn add_aws(&mut self, item: &str) -> Result<(), String> {
        if item == "*" {
            self.everyone = true;
            return Ok(());
        }
        if is_account_id(item) {
            self.accounts.push(item.into());
            return Ok(());
        }
        if !item.starts_with("arn:") {
            return Err(format!(
                "'{}' is not an account id (12 digits), an IAM or STS ARN, or \"*\"",
                shown(item)
            ));
        }
        if item.contains(['*', '?']) {
            return Err(format!(
                "wildcards are not allowed in principal '{}'; use \"*\" or an ArnLike condition on aws:PrincipalArn",
                shown(item)
            ));
        }
        let parts: Vec<&str> = item.splitn(6, ':').collect();
        let &[_, partition, service, region, account, resource] = parts.as_slice() else {
            return Err(format!(
                "'{}' is not a complete ARN (arn:partition:iam::account:resource)",
                shown(item)
            ));
        };
        let valid = !partition.is_empty()
            && partition
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && matches!(service, "iam" | "sts")
            && region.is_empty()
            && is_account_id(account)
            && !resource.is_empty();
        if !valid {
            return Err(format!(
                "'{}' is not an IAM or STS principal ARN (arn:partition:iam::account:resource)",
                shown(item)
            ));
        }
        if service == "iam" && resource == "root" {
            self.accounts.push(account.into());
            return Ok(());
        }
        if service == "iam" {
            if let Some(path_and_name) = resource.strip_prefix("role/") {
                let name = path_and_name.rsplit('/').next().unwrap_or(path_and_name);
                if name.is_empty() {
                    return Err(format!("role ARN '{}' has no role name", shown(item)));
                }
                self.roles.push(Role {
                    partition: partition.into(),
                    account: account.into(),
                    name: name.into(),
                });
            }
        }
        self.arns.push(item.into());
        Ok(())
    }

    fn add_service(&mut self, item: &str) -> Result<(), String> {
        if item.is_empty()
            || item.contains(['*', '?'])
            || item.chars().any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(format!(
                "'{}' is not a service principal name (such as \"ec2.amazonaws.com\")",
                shown(item)
            ));
        }
        self.services.push(item.into());
        Ok(())
    }

    /// Whether the request's caller is one of these principals.
    pub(crate) fn matches(&self, request: &RequestContext<'_>) -> bool {
        if self.everyone {
            return true;
        }
        let principal = request.principal;
        let account = request.principal_account;
        (!account.is_empty() && self.accounts.iter().any(|a| **a == *account))
            || self.arns.iter().any(|a| **a == *principal)
            || self.services.iter().any(|s| **s == *principal)
            || (!self.roles.is_empty()
                && session_role(principal).is_some_and(|(partition, account, name)| {
                    self.roles.iter().any(|r| {
                        *r.name == *name && *r.account == *account && *r.partition == *partition
                    })
                }))
    }
}

/// Twelve ASCII digits.
fn is_account_id(text: &str) -> bool {
    text.len() == 12 && text.bytes().all(|b| b.is_ascii_digit())
}

/// `(partition, account, role name)` of an assumed-role session ARN.
fn session_role(principal: &str) -> Option<(&str, &str, &str)> {
    let mut parts = principal.splitn(6, ':');
    if parts.next()? != "arn" {
        return None;
    }
    let partition = parts.next()?;
    if parts.next()? != "sts" || !parts.next()?.is_empty() {
        return None;
    }
    let account = parts.next()?;
    let (role, _session) = parts
        .next()?
        .strip_prefix("assumed-role/")?
        .split_once('/')?;
    Some((partition, account, role))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<Principals, PolicyError> {
        let value = Json::parse(json).unwrap();
        let scope_label = "Statement[0]";
        let scope = super::super::syntax::tests_scope(scope_label);
        Principals::parse(&value, &scope, "Principal")
    }

    fn caller<'a>(principal: &'a str, account: &'a str) -> RequestContext<'a> {
        RequestContext {
            action: "kms:Encrypt",
            principal,
            principal_account: account,
            resource: "arn:aws:kms:us-east-1:111122223333:key/k",
            conditions: &(),
        }
    }

    const ALICE: &str = "arn:aws:iam::111122223333:user/alice";
    const BOB: &str = "arn:aws:iam::111122223333:user/bob";
    const OTHER: &str = "arn:aws:iam::444455556666:user/eve";

    #[test]
    fn star_is_everyone() {
        for json in [
            r#""*""#,
            r#"{"AWS": "*"}"#,
            r#"{"AWS": ["111122223333", "*"]}"#,
        ] {
            let p = parse(json).unwrap();
            assert!(p.matches(&caller(OTHER, "444455556666")), "{json}");
            assert!(p.matches(&caller("ec2.amazonaws.com", "")), "{json}");
        }
    }

    #[test]
    fn account_id_and_root_arn_cover_the_whole_account() {
        for json in [
            r#"{"AWS": "111122223333"}"#,
            r#"{"AWS": "arn:aws:iam::111122223333:root"}"#,
        ] {
            let p = parse(json).unwrap();
            assert!(p.matches(&caller(ALICE, "111122223333")), "{json}");
            assert!(p.matches(&caller("arn:aws:iam::111122223333:root", "111122223333")));
            assert!(!p.matches(&caller(OTHER, "444455556666")), "{json}");
        }
    }

    #[test]
    fn user_arn_is_that_user_only() {
        let p = parse(&format!(r#"{{"AWS": ["{ALICE}"]}}"#)).unwrap();
        assert!(p.matches(&caller(ALICE, "111122223333")));
        assert!(!p.matches(&caller(BOB, "111122223333")));
        assert!(!p.matches(&caller("arn:aws:iam::111122223333:root", "111122223333")));
        assert!(!p.matches(&caller(
            "arn:aws:iam::111122223333:user/Alice",
            "111122223333"
        )));
    }

    #[test]
    fn role_arn_covers_its_sessions() {
        let p = parse(r#"{"AWS": "arn:aws:iam::111122223333:role/ops/KeyAdmin"}"#).unwrap();
        assert!(p.matches(&caller(
            "arn:aws:iam::111122223333:role/ops/KeyAdmin",
            "111122223333"
        )));
        assert!(p.matches(&caller(
            "arn:aws:sts::111122223333:assumed-role/KeyAdmin/session-1",
            "111122223333"
        )));
        assert!(!p.matches(&caller(
            "arn:aws:sts::111122223333:assumed-role/KeyAdmin2/session-1",
            "111122223333"
        )));
        assert!(!p.matches(&caller(
            "arn:aws:sts::444455556666:assumed-role/KeyAdmin/session-1",
            "444455556666"
        )));
        assert!(!p.matches(&caller(
            "arn:aws-cn:sts::111122223333:assumed-role/KeyAdmin/s",
            "111122223333"
        )));
    }

    #[test]
    fn session_arn_names_one_session() {
        let s = "arn:aws:sts::111122223333:assumed-role/R/s1";
        let p = parse(&format!(r#"{{"AWS": "{s}"}}"#)).unwrap();
        assert!(p.matches(&caller(s, "111122223333")));
        assert!(!p.matches(&caller(
            "arn:aws:sts::111122223333:assumed-role/R/s2",
            "111122223333"
        )));
    }

    #[test]
    fn service_principals_match_by_name() {
        let p = parse(r#"{"Service": ["ec2.amazonaws.com", "s3.amazonaws.com"]}"#).unwrap();
        assert!(p.matches(&caller("ec2.amazonaws.com", "")));
        assert!(!p.matches(&caller("lambda.amazonaws.com", "")));
        assert!(!p.matches(&caller(ALICE, "111122223333")));
        let p = parse(r#"{"AWS": "111122223333", "Service": "ec2.amazonaws.com"}"#).unwrap();
        assert!(p.matches(&caller("ec2.amazonaws.com", "")));
        assert!(p.matches(&caller(ALICE, "111122223333")));
    }

    #[test]
    fn empty_account_never_matches_accounts() {
        let p = parse(r#"{"AWS": "111122223333"}"#).unwrap();
        assert!(!p.matches(&caller("", "")));
    }

    #[test]
    fn invalid_forms_are_refused_with_their_place() {
        let cases = [
            (r#""arn:aws:iam::111122223333:root""#, "Statement[0].Principal: must be \"*\" or an object"),
            (r#"["*"]"#, "Statement[0].Principal: must be \"*\" or an object"),
            (r#"{}"#, "Statement[0].Principal: must name at least one principal"),
            (r#"{"AWS": []}"#, "Statement[0].Principal.AWS: must not be an empty array"),
            (r#"{"AWS": 111122223333}"#, "Statement[0].Principal.AWS: must be a string or an array of strings, found a number"),
            (r#"{"AWS": ["111122223333", 5]}"#, "Statement[0].Principal.AWS[1]: must be a string, found a number"),
            (r#"{"AWS": "alice"}"#, "Statement[0].Principal.AWS: 'alice' is not an account id"),
            (r#"{"AWS": "11112222333"}"#, "is not an account id"),
            (r#"{"AWS": "arn:aws:iam::111122223333:user/*"}"#, "Statement[0].Principal.AWS: wildcards are not allowed"),
            (r#"{"AWS": ["111122223333", "arn:aws:iam::*:root"]}"#, "Statement[0].Principal.AWS[1]: wildcards are not allowed"),
            (r#"{"AWS": "arn:aws:iam::111122223333"}"#, "is not a complete ARN"),
            (r#"{"AWS": "arn:aws:s3:::bucket"}"#, "is not an IAM or STS principal ARN"),
            (r#"{"AWS": "arn:aws:s3::111122223333:x"}"#, "is not an IAM or STS principal ARN"),
            (r#"{"AWS": "arn:aws:iam:us-east-1:111122223333:root"}"#, "is not an IAM or STS principal ARN"),
            (r#"{"AWS": "arn:aws:iam::1111:root"}"#, "is not an IAM or STS principal ARN"),
            (r#"{"AWS": "arn:aws:iam::111122223333:"}"#, "is not an IAM or STS principal ARN"),
            (r#"{"AWS": "arn:aws:iam::111122223333:role/"}"#, "has no role name"),
            (r#"{"Service": "*"}"#, "Statement[0].Principal.Service: '*' is not a service principal name"),
            (r#"{"Service": "ec2 amazonaws"}"#, "is not a service principal name"),
            (r#"{"Federated": "cognito-identity.amazonaws.com"}"#, "principal type 'Federated' is not supported"),
            (r#"{"Aws": "*"}"#, "unknown principal type 'Aws' (did you mean 'AWS'?)"),
        ];
        for (json, expected) in cases {
            let err = parse(json).unwrap_err().to_string();
            assert!(err.contains(expected), "{json}: {err}");
        }
    }

    #[test]
    fn session_role_parses_only_sessions() {
        assert_eq!(
            session_role("arn:aws:sts::111122223333:assumed-role/R/s"),
            Some(("aws", "111122223333", "R"))
        );
        assert_eq!(session_role("arn:aws:iam::111122223333:role/R"), None);
        assert_eq!(
            session_role("arn:aws:sts::111122223333:assumed-role/R"),
            None
        );
        assert_eq!(
            session_role("arn:aws:sts:r:111122223333:assumed-role/R/s"),
            None
        );
        assert_eq!(session_role("ec2.amazonaws.com"), None);
    }
}
