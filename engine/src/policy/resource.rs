//! `Resource` and `NotResource`: which keys a statement is about.
//!
//! In a key policy the resource is usually `"*"` (the key the policy is attached to). ARNs may
//! carry `*` and `?`; they are matched case-sensitively, one colon-separated component at a time.

use super::json::Json;
use super::syntax::{shown, string_list, tokens, Scope, Version};
use super::types::PolicyError;
use super::wildcard::ArnPattern;

/// The compiled resource patterns of one statement.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Resources {
    any: bool,
    patterns: Vec<ArnPattern>,
}

impl Resources {
    /// Validates and compiles the element's value; `field` is `Resource` or `NotResource`.
    pub(crate) fn parse(
        value: &Json,
        scope: &Scope<'_>,
        field: &str,
        version: Version,
    ) -> Result<Resources, PolicyError> {
        let items = string_list(value, scope, field, false)?;
        let mut resources = Resources {
            any: false,
            patterns: Vec::new(),
        };
        for (i, item) in items.items.iter().enumerate() {
            let at = || items.path(field, i);
            if item == "*" {
                resources.any = true;
                continue;
            }
            let pattern = if item.starts_with("arn:") {
                let tokens = tokens(item, version, true).map_err(|m| scope.error(&at(), m))?;
                ArnPattern::from_tokens(&tokens)
            } else {
                None
            };
            match pattern {
                Some(pattern) => resources.patterns.push(pattern),
                None => {
                    return Err(scope.error(
                        &at(),
                        format_args!(
                            "'{}' is not \"*\" or an ARN (arn:partition:service:region:account:resource)",
                            shown(item)
                        ),
                    ))
                }
            }
        }
        if resources.any {
            resources.patterns.clear();
        }
        Ok(resources)
    }

    /// Whether `resource` (a key ARN) is one of these.
    pub(crate) fn matches(&self, resource: &str) -> bool {
        self.any || self.patterns.iter().any(|p| p.matches(resource))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";

    fn parse(json: &str, version: Version) -> Result<Resources, PolicyError> {
        let value = Json::parse(json).unwrap();
        Resources::parse(
            &value,
            &super::super::syntax::tests_scope("Statement[0]"),
            "Resource",
            version,
        )
    }

    #[test]
    fn star_is_every_resource() {
        let r = parse(r#""*""#, Version::V2012).unwrap();
        assert!(r.matches(KEY) && r.matches("") && r.matches("anything"));
    }

    #[test]
    fn exact_arn() {
        let r = parse(&format!("\"{KEY}\""), Version::V2012).unwrap();
        assert!(r.matches(KEY));
        assert!(!r.matches(&KEY.to_uppercase()));
        assert!(!r.matches("arn:aws:kms:us-east-1:111122223333:key/other"));
    }

    #[test]
    fn wildcards_stay_inside_their_component() {
        let r = parse(r#""arn:aws:kms:*:111122223333:key/*""#, Version::V2012).unwrap();
        assert!(r.matches(KEY));
        assert!(r.matches("arn:aws:kms:eu-west-1:111122223333:key/x"));
        assert!(!r.matches("arn:aws:kms:eu-west-1:444455556666:key/x"));
        assert!(!r.matches("arn:aws:kms:us-east-1:111122223333:alias/x"));
        // `*` in the region does not swallow the account.
        let r = parse(r#""arn:aws:kms:*:key/*""#, Version::V2012);
        assert!(r.is_err());
        let r = parse(r#""arn:aws:kms:us-east-?:111122223333:*""#, Version::V2012).unwrap();
        assert!(r.matches(KEY));
        assert!(!r.matches("arn:aws:kms:us-east-10:111122223333:key/x"));
        assert!(!r.matches("arn:aws:kms:us-east-1:111122223333"));
    }

    #[test]
    fn not_an_arn_is_refused() {
        for (json, expected) in [
            (
                r#""key/abc""#,
                "Statement[0].Resource: 'key/abc' is not \"*\" or an ARN",
            ),
            (
                r#"["*", "arn:aws:kms"]"#,
                "Statement[0].Resource[1]: 'arn:aws:kms' is not",
            ),
            (r#""""#, "is not \"*\" or an ARN"),
            (
                r#""arn:aws:kms:us-east-1:111122223333:key/${aws:username}""#,
                "policy variable '${aws:username}' is not supported",
            ),
        ] {
            let err = parse(json, Version::V2012).unwrap_err().to_string();
            assert!(err.contains(expected), "{json}: {err}");
        }
    }

    #[test]
    fn escapes_in_2012() {
        let r = parse(
            r#""arn:aws:kms:us-east-1:111122223333:key/${*}""#,
            Version::V2012,
        )
        .unwrap();
        assert!(r.matches("arn:aws:kms:us-east-1:111122223333:key/*"));
        assert!(!r.matches(KEY));
        let r = parse(
            r#""arn:aws:kms:us-east-1:111122223333:key/${*}""#,
            Version::V2008,
        )
        .unwrap();
        assert!(r.matches("arn:aws:kms:us-east-1:111122223333:key/${abc}"));
    }
}
