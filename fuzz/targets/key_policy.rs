//! Fuzz target `key_policy`: `keyplane::policy::KeyPolicy::parse` and `evaluate`.
//!
//! Half the inputs are taken as the document itself; the other half build a document from
//! statement parts chosen by the input (effects, principals, actions and resources with
//! wildcards, every condition operator family, policy variables), so that the fuzzer spends its
//! time past the JSON layer. A document either parses or is refused with a message; one that
//! parses keeps its text, evaluates the same way every time and the same way after a re-parse of
//! its text or of a re-serialisation of its JSON, and never panics whatever the request.

use std::collections::HashMap;

use keyplane::policy::{KeyPolicy, PolicyError, RequestContext, MAX_POLICY_BYTES};

use crate::common::Input;

const KEY: &str = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";

const EFFECTS: &[&str] = &["Allow", "Deny", "allow", "Audit", ""];
const PRINCIPALS: &[&str] = &[
    r#""*""#,
    r#"{"AWS": "*"}"#,
    r#"{"AWS": "111122223333"}"#,
    r#"{"AWS": "arn:aws:iam::111122223333:root"}"#,
    r#"{"AWS": ["arn:aws:iam::111122223333:user/alice", "444455556666"]}"#,
    r#"{"AWS": "arn:aws:iam::111122223333:role/R"}"#,
    r#"{"Service": "ec2.amazonaws.com"}"#,
    r#"{"AWS": "arn:aws:iam::111122223333:user/*"}"#,
    r#"{"AWS": []}"#,
    r#"{"Federated": "x"}"#,
];
const ACTIONS: &[&str] = &[
    r#""*""#,
    r#""kms:*""#,
    r#""kms:Encrypt""#,
    r#"["kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*"]"#,
    r#""kms:Create*""#,
    r#""kms:Encrpyt""#,
    r#""kms:?ncrypt""#,
    r#""s3:GetObject""#,
    r#""KMS:ENCRYPT""#,
    r#"[]"#,
];
const RESOURCES: &[&str] = &[
    r#""*""#,
    r#""arn:aws:kms:*:111122223333:key/*""#,
    r#""arn:aws:kms:us-east-1:111122223333:key/1234abcd-*""#,
    r#""arn:aws:kms:us-east-1:444455556666:key/*""#,
    r#""arn:aws:kms:us-east-1:111122223333:alias/*""#,
    r#""${aws:username}""#,
    r#""arn:aws:kms:us-east-1:111122223333:key/${*}""#,
];
const OPERATORS: &[&str] = &[
    "StringEquals",
    "StringNotEquals",
    "StringEqualsIgnoreCase",
    "StringLike",
    "StringNotLikeIfExists",
    "ArnLike",
    "ArnNotEquals",
    "Bool",
    "Null",
    "ForAllValues:StringEquals",
    "ForAnyValue:StringLike",
    "NumericEquals",
    "DateGreaterThan",
    "StringEqualz",
];
const CONDITION_KEYS: &[&str] = &[
    "kms:EncryptionContext:tenant",
    "kms:encryptioncontext:Tenant",
    "kms:EncryptionContextKeys",
    "kms:CallerAccount",
    "aws:PrincipalArn",
    "kms:ViaService",
    "kms:RequestAlias",
    "kms:GrantOperations",
    "kms:KeySpec",
    "kms:EncryptionAlgorithm",
    "aws:SecureTransport",
    "kms:NoSuchKey",
    "ec2:Region",
];

/// A document built from parts the input picks.
fn structured(input: &mut Input<'_>) -> String {
    let statements: Vec<String> = (0..=input.below(3))
        .map(|_| {
            let mut members = vec![format!(r#""Effect": "{}""#, input.choose(EFFECTS))];
            let principal = if input.byte() % 8 == 0 {
                "NotPrincipal"
            } else {
                "Principal"
            };
            members.push(format!(r#""{principal}": {}"#, input.choose(PRINCIPALS)));
            let action = if input.byte() % 8 == 0 {
                "NotAction"
            } else {
                "Action"
            };
            members.push(format!(r#""{action}": {}"#, input.choose(ACTIONS)));
            members.push(format!(r#""Resource": {}"#, input.choose(RESOURCES)));
            if input.flag() {
                let value = serde_json::to_string(&input.short_string()).unwrap_or_default();
                let values = if input.flag() {
                    format!("[{value}, \"42\"]")
                } else {
                    value
                };
                members.push(format!(
                    r#""Condition": {{"{}": {{"{}": {values}}}}}"#,
                    input.choose(OPERATORS),
                    input.choose(CONDITION_KEYS)
                ));
            }
            if input.byte() % 8 == 0 {
                members.push(format!(
                    r#""Sid": {}"#,
                    serde_json::to_string(&input.short_string()).unwrap_or_default()
                ));
            }
            format!("{{{}}}", members.join(", "))
        })
        .collect();
    let version = match input.byte() % 4 {
        0 => r#""Version": "2008-10-17", "#,
        1 => "",
        _ => r#""Version": "2012-10-17", "#,
    };
    format!(r#"{{{version}"Statement": [{}]}}"#, statements.join(", "))
}

/// The requests every parsed policy is evaluated against.
fn decisions(policy: &KeyPolicy) -> Vec<keyplane::policy::Decision> {
    let mut conditions: HashMap<String, Vec<String>> = HashMap::new();
    conditions.insert("kms:EncryptionContext:tenant".into(), vec!["42".into()]);
    conditions.insert(
        "kms:EncryptionContextKeys".into(),
        vec!["tenant".into(), "x".into()],
    );
    conditions.insert(
        "kms:ViaService".into(),
        vec!["s3.us-east-1.amazonaws.com".into()],
    );
    conditions.insert("kms:RequestAlias".into(), vec!["alias/app".into()]);
    let empty: HashMap<String, Vec<String>> = HashMap::new();
    let principals = [
        ("arn:aws:iam::111122223333:root", "111122223333"),
        ("arn:aws:iam::111122223333:user/alice", "111122223333"),
        (
            "arn:aws:sts::111122223333:assumed-role/R/session",
            "111122223333",
        ),
        ("arn:aws:iam::444455556666:root", "444455556666"),
        ("ec2.amazonaws.com", ""),
    ];
    let mut out = Vec::new();
    for action in [
        "kms:Encrypt",
        "kms:Decrypt",
        "kms:PutKeyPolicy",
        "kms:CreateGrant",
    ] {
        for (principal, account) in principals {
            for c in [&conditions, &empty] {
                out.push(policy.evaluate(&RequestContext {
                    action,
                    principal,
                    principal_account: account,
                    resource: KEY,
                    conditions: c,
                }));
            }
        }
        let _ = policy.is_unconditional_for(action);
    }
    out
}

fn has_number(value: &serde_json::Value) -> bool {
    match value {
        serde_json::Value::Number(_) => true,
        serde_json::Value::Array(items) => items.iter().any(has_number),
        serde_json::Value::Object(members) => members.values().any(has_number),
        _ => false,
    }
}

/// Runs one input.
pub fn run(data: &[u8]) {
    let mut input = Input::new(data);
    let document = if input.byte() % 2 == 0 {
        String::from_utf8_lossy(input.rest()).into_owned()
    } else {
        structured(&mut input)
    };
    match KeyPolicy::parse(&document) {
        Ok(policy) => {
            assert!(document.len() <= MAX_POLICY_BYTES);
            assert_eq!(policy.document(), document);
            let first = decisions(&policy);
            assert_eq!(first, decisions(&policy), "evaluation is not deterministic");
            let again = KeyPolicy::parse(policy.document()).expect("a parsed document re-parses");
            assert_eq!(first, decisions(&again));
            // The same JSON written another way means the same policy.
            // (Numbers are left out: a policy keeps their decimal text, which serde_json's
            // re-serialisation may normalise.)
            let value = serde_json::from_str::<serde_json::Value>(&document).ok();
            if let Some(value) = value.filter(|v| !has_number(v)) {
                let pretty = serde_json::to_string_pretty(&value).expect("serialise");
                if pretty.len() <= MAX_POLICY_BYTES {
                    if let Ok(reparsed) = KeyPolicy::parse(&pretty) {
                        assert_eq!(
                            first,
                            decisions(&reparsed),
                            "formatting changed the meaning"
                        );
                    }
                }
            }
        }
        Err(PolicyError::Malformed(message)) => assert!(!message.is_empty()),
    }
}
