//! `Action` and `NotAction`: which operations a statement is about.
//!
//! Actions are `service:name` patterns with `*` and `?`, matched without regard to case, as IAM
//! does. A `kms:` pattern must name or match at least one known KMS action ([`KMS_ACTIONS`]), so
//! that a misspelt action is refused when the policy is written rather than never matching.

use super::json::Json;
use super::syntax::{shown, string_list, suggestion, Scope};
use super::types::PolicyError;
use super::wildcard::{Case, Pattern};

/// Every KMS action a key policy may name, in canonical spelling. `kms:<Operation>` for each
/// operation, with ReEncrypt split into `kms:ReEncryptFrom` (on the source key) and
/// `kms:ReEncryptTo` (on the destination key) as in the service.
pub const KMS_ACTIONS: &[&str] = &[
    "kms:CancelKeyDeletion",
    "kms:ConnectCustomKeyStore",
    "kms:CreateAlias",
    "kms:CreateCustomKeyStore",
    "kms:CreateGrant",
    "kms:CreateKey",
    "kms:Decrypt",
    "kms:DeleteAlias",
    "kms:DeleteCustomKeyStore",
    "kms:DeleteImportedKeyMaterial",
    "kms:DeriveSharedSecret",
    "kms:DescribeCustomKeyStores",
    "kms:DescribeKey",
    "kms:DisableKey",
    "kms:DisableKeyRotation",
    "kms:DisconnectCustomKeyStore",
    "kms:EnableKey",
    "kms:EnableKeyRotation",
    "kms:Encrypt",
    "kms:GenerateDataKey",
    "kms:GenerateDataKeyPair",
    "kms:GenerateDataKeyPairWithoutPlaintext",
    "kms:GenerateDataKeyWithoutPlaintext",
    "kms:GenerateMac",
    "kms:GenerateRandom",
    "kms:GetKeyLastUsage",
    "kms:GetKeyPolicy",
    "kms:GetKeyRotationStatus",
    "kms:GetParametersForImport",
    "kms:GetPublicKey",
    "kms:ImportKeyMaterial",
    "kms:ListAliases",
    "kms:ListGrants",
    "kms:ListKeyPolicies",
    "kms:ListKeyRotations",
    "kms:ListKeys",
    "kms:ListResourceTags",
    "kms:ListRetirableGrants",
    "kms:PutKeyPolicy",
    "kms:ReEncryptFrom",
    "kms:ReEncryptTo",
    "kms:ReplicateKey",
    "kms:RetireGrant",
    "kms:RevokeGrant",
    "kms:RotateKeyOnDemand",
    "kms:ScheduleKeyDeletion",
    "kms:Sign",
    "kms:SynchronizeMultiRegionKey",
    "kms:TagResource",
    "kms:UntagResource",
    "kms:UpdateAlias",
    "kms:UpdateCustomKeyStore",
    "kms:UpdateKeyDescription",
    "kms:UpdatePrimaryRegion",
    "kms:Verify",
    "kms:VerifyMac",
];

/// The compiled action patterns of one statement.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Actions {
    any: bool,
    patterns: Vec<Pattern>,
}

impl Actions {
    /// Validates and compiles the element's value; `field` is `Action` or `NotAction`.
    pub(crate) fn parse(
        value: &Json,
        scope: &Scope<'_>,
        field: &str,
    ) -> Result<Actions, PolicyError> {
        let items = string_list(value, scope, field, false)?;
        let mut actions = Actions {
            any: false,
            patterns: Vec::new(),
        };
        for (i, item) in items.items.iter().enumerate() {
            match compile(item) {
                Ok(None) => actions.any = true,
                Ok(Some(pattern)) => actions.patterns.push(pattern),
                Err(message) => return Err(scope.error(&items.path(field, i), message)),
            }
        }
        if actions.any {
            actions.patterns.clear();
        }
        Ok(actions)
    }

    /// Whether `action` (`kms:Encrypt`) is one of these.
    pub(crate) fn matches(&self, action: &str) -> bool {
        self.any || self.patterns.iter().any(|p| p.matches(action))
    }
}

/// Compiles one action; `None` for `*` (every action).
fn compile(item: &str) -> Result<Option<Pattern>, String> {
    if item == "*" {
        return Ok(None);
    }
    let Some((service, name)) = item.split_once(':') else {
        return Err(format!(
            "'{}' is not an action (service:Action, such as \"kms:Encrypt\", or \"*\")",
            shown(item)
        ));
    };
    if service.is_empty()
        || !service
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
    {
        return Err(format!(
            "'{}' does not start with a service prefix (such as \"kms:\")",
            shown(item)
        ));
    }
    if name.is_empty()
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'*' || b == b'?')
    {
        return Err(format!(
            "'{}' is not a valid action name (letters, digits, * and ?)",
            shown(item)
        ));
    }
    let pattern = Pattern::new(item, Case::AsciiInsensitive);
    if service.eq_ignore_ascii_case("kms") && !KMS_ACTIONS.iter().any(|a| pattern.matches(a)) {
        return Err(if name.contains(['*', '?']) {
            format!("'{}' matches no KMS action", shown(item))
        } else {
            format!(
                "unknown action '{}'{}",
                shown(item),
                suggestion(item, KMS_ACTIONS)
            )
        });
    }
    Ok(Some(pattern))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<Actions, PolicyError> {
        let value = Json::parse(json).unwrap();
        Actions::parse(
            &value,
            &super::super::syntax::tests_scope("Statement[3]"),
            "Action",
        )
    }

    #[test]
    fn exact_and_case_insensitive() {
        let a = parse(r#""kms:Encrypt""#).unwrap();
        assert!(a.matches("kms:Encrypt"));
        assert!(a.matches("KMS:encrypt"));
        assert!(!a.matches("kms:Decrypt"));
        assert!(!a.matches("kms:EncryptX"));
        let a = parse(r#""KMS:ENCRYPT""#).unwrap();
        assert!(a.matches("kms:Encrypt"));
    }

    #[test]
    fn wildcards() {
        let a = parse(r#""kms:*""#).unwrap();
        assert!(KMS_ACTIONS.iter().all(|x| a.matches(x)));
        assert!(!a.matches("iam:PassRole"));
        let a = parse(r#"["kms:Create*"]"#).unwrap();
        assert!(
            a.matches("kms:CreateKey")
                && a.matches("kms:CreateAlias")
                && a.matches("kms:CreateGrant")
        );
        assert!(!a.matches("kms:DescribeKey"));
        let a = parse(r#""kms:*Key*""#).unwrap();
        assert!(
            a.matches("kms:DescribeKey")
                && a.matches("kms:GetKeyPolicy")
                && a.matches("kms:ListKeys")
        );
        assert!(!a.matches("kms:Encrypt"));
        let a = parse(r#""kms:ReEncrypt*""#).unwrap();
        assert!(a.matches("kms:ReEncryptFrom") && a.matches("kms:ReEncryptTo"));
        let a = parse(r#""kms:Generate?ac""#).unwrap();
        assert!(a.matches("kms:GenerateMac"));
        let a = parse(r#""*""#).unwrap();
        assert!(a.matches("kms:Encrypt") && a.matches("anything"));
    }

    #[test]
    fn lists_are_alternatives() {
        let a = parse(r#"["kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey*"]"#).unwrap();
        for x in [
            "kms:Encrypt",
            "kms:Decrypt",
            "kms:GenerateDataKeyWithoutPlaintext",
        ] {
            assert!(a.matches(x), "{x}");
        }
        assert!(!a.matches("kms:Sign"));
    }

    #[test]
    fn other_services_are_accepted_but_never_match_kms() {
        let a = parse(r#""iam:PassRole""#).unwrap();
        assert!(!a.matches("kms:Encrypt"));
    }

    #[test]
    fn invalid_actions_are_refused_with_their_place() {
        let cases = [
            (
                r#""kms:Encrpyt""#,
                "Statement[3].Action: unknown action 'kms:Encrpyt' (did you mean 'kms:Encrypt'?)",
            ),
            (
                r#"["kms:Encrypt", "kms:Encrpt*"]"#,
                "Statement[3].Action[1]: 'kms:Encrpt*' matches no KMS action",
            ),
            (
                r#""Encrypt""#,
                "Statement[3].Action: 'Encrypt' is not an action",
            ),
            (r#""kms:""#, "is not a valid action name"),
            (r#""kms:Encrypt ""#, "is not a valid action name"),
            (r#"":Encrypt""#, "does not start with a service prefix"),
            (r#""k ms:Encrypt""#, "does not start with a service prefix"),
            (r#"[]"#, "Statement[3].Action: must not be an empty array"),
            (
                r#"{"kms": "Encrypt"}"#,
                "Statement[3].Action: must be a string or an array of strings, found an object",
            ),
            (
                r#"[null]"#,
                "Statement[3].Action[0]: must be a string, found null",
            ),
        ];
        for (json, expected) in cases {
            let err = parse(json).unwrap_err().to_string();
            assert!(err.contains(expected), "{json}: {err}");
        }
    }

    #[test]
    fn known_actions_are_unique_and_well_formed() {
        let mut sorted = KMS_ACTIONS.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), KMS_ACTIONS.len());
        for a in KMS_ACTIONS {
            assert!(compile(a).unwrap().is_some(), "{a}");
        }
    }
}
