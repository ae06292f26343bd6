//! Property tests: wildcard matching against a reference matcher, set operators against set
//! arithmetic, statement composition, and parsing arbitrary or damaged input without panicking.

use std::collections::{BTreeSet, HashMap};

use keyplane::policy::{Decision, KeyPolicy, RequestContext, KMS_ACTIONS};
use proptest::prelude::*;

const KEY: &str = "arn:aws:kms:us-east-1:111122223333:key/k";

/// The textbook recursive glob matcher, over characters.
fn reference_glob(pattern: &[char], text: &[char]) -> bool {
    match pattern.split_first() {
        None => text.is_empty(),
        Some(('*', rest)) => (0..=text.len()).any(|i| reference_glob(rest, &text[i..])),
        Some(('?', rest)) => !text.is_empty() && reference_glob(rest, &text[1..]),
        Some((c, rest)) => text.first() == Some(c) && reference_glob(rest, &text[1..]),
    }
}

fn map(pairs: &[(&str, Vec<String>)]) -> HashMap<String, Vec<String>> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect()
}

fn evaluate(
    policy: &KeyPolicy,
    principal: &str,
    action: &str,
    conditions: &HashMap<String, Vec<String>>,
) -> Decision {
    policy.evaluate(&RequestContext {
        action,
        principal,
        principal_account: principal.split(':').nth(4).unwrap_or(""),
        resource: KEY,
        conditions,
    })
}

/// An Allow-everything statement under one condition.
fn conditional(operator: &str, key: &str, values: &[String]) -> KeyPolicy {
    let values = serde_json::to_string(values).unwrap();
    let key = serde_json::to_string(key).unwrap();
    KeyPolicy::parse(&format!(
        r#"{{"Version": "2012-10-17", "Statement": {{"Effect": "Allow", "Principal": "*", "Action": "*", "Resource": "*",
            "Condition": {{"{operator}": {{{key}: {values}}}}}}}}}"#
    ))
    .unwrap()
}

fn allowed(policy: &KeyPolicy, key: &str, values: Option<&Vec<String>>) -> bool {
    let conditions = match values {
        Some(v) => map(&[(key, v.clone())]),
        None => HashMap::new(),
    };
    evaluate(
        policy,
        "arn:aws:iam::111122223333:user/a",
        "kms:Encrypt",
        &conditions,
    ) == Decision::Allow
}

fn small_set() -> impl Strategy<Value = BTreeSet<String>> {
    prop::collection::btree_set(
        prop::sample::select(vec!["a", "b", "c", "d"]).prop_map(String::from),
        0..4,
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn string_like_agrees_with_the_reference_glob(
        pattern in "[ab*?é]{0,8}",
        text in "[abé]{0,10}",
    ) {
        let policy = conditional("StringLike", "kms:EncryptionContext:k", std::slice::from_ref(&pattern));
        let expected = reference_glob(&pattern.chars().collect::<Vec<_>>(), &text.chars().collect::<Vec<_>>());
        prop_assert_eq!(allowed(&policy, "kms:EncryptionContext:k", Some(&vec![text.clone()])), expected);
        let negated = conditional("StringNotLike", "kms:EncryptionContext:k", &[pattern]);
        prop_assert_eq!(allowed(&negated, "kms:EncryptionContext:k", Some(&vec![text])), !expected);
    }

    #[test]
    fn action_patterns_agree_with_the_reference_glob(
        name in "[A-Za-z*?]{1,6}",
        action in prop::sample::select(KMS_ACTIONS),
    ) {
        let pattern = format!("kms:{name}");
        let document = format!(
            r#"{{"Statement": {{"Effect": "Allow", "Principal": "*", "Action": "{pattern}", "Resource": "*"}}}}"#
        );
        let lower = |s: &str| s.to_ascii_lowercase().chars().collect::<Vec<_>>();
        let expected = reference_glob(&lower(&pattern), &lower(action));
        match KeyPolicy::parse(&document) {
            Ok(policy) => {
                let decision = evaluate(&policy, "arn:aws:iam::111122223333:user/a", action, &HashMap::new());
                prop_assert_eq!(decision == Decision::Allow, expected);
            }
            // Refused only when the pattern matches no KMS action at all.
            Err(_) => prop_assert!(!KMS_ACTIONS.iter().any(|a| reference_glob(&lower(&pattern), &lower(a)))),
        }
    }

    #[test]
    fn set_operators_agree_with_set_arithmetic(
        listed in small_set().prop_filter("non-empty", |s| !s.is_empty()),
        present in any::<bool>(),
        request in small_set(),
    ) {
        let key = "kms:EncryptionContextKeys";
        let listed_vec: Vec<String> = listed.iter().cloned().collect();
        let request_vec: Vec<String> = request.iter().cloned().collect();
        let values = present.then_some(&request_vec);
        // Absent and empty are the same to every operator.
        let none = !present || request.is_empty();
        let subset = request.is_subset(&listed);
        let overlap = !request.is_disjoint(&listed);
        let outside = !request.difference(&listed).collect::<Vec<_>>().is_empty();

        let check = |operator: &str, expected: bool| -> Result<(), TestCaseError> {
            let policy = conditional(operator, key, &listed_vec);
            prop_assert_eq!(allowed(&policy, key, values), expected, "{}", operator);
            Ok(())
        };
        check("StringEquals", !none && overlap)?;
        check("StringNotEquals", none || !overlap)?;
        check("StringEqualsIfExists", none || overlap)?;
        check("ForAnyValue:StringEquals", !none && overlap)?;
        check("ForAnyValue:StringNotEquals", !none && outside)?;
        check("ForAllValues:StringEquals", none || subset)?;
        check("ForAllValues:StringNotEquals", none || !overlap)?;
        check("ForAnyValue:StringEqualsIfExists", none || overlap)?;
        check("ForAllValues:StringLike", none || subset)?;
        check("ForAnyValue:StringEqualsIgnoreCase", !none && overlap)?;
        let null = conditional("Null", key, &["true".to_string()]);
        prop_assert_eq!(allowed(&null, key, values), none);
    }

    #[test]
    fn null_agrees_with_presence(present in any::<bool>(), expect_absent in any::<bool>()) {
        let key = "kms:EncryptionContext:tenant";
        let policy = conditional("Null", key, &[expect_absent.to_string()]);
        let values = vec!["42".to_string()];
        prop_assert_eq!(allowed(&policy, key, present.then_some(&values)), expect_absent != present);
    }

    #[test]
    fn a_policy_decides_as_its_statements_combined(
        statements in prop::collection::vec(
            (
                any::<bool>(),
                prop::sample::select(vec!["kms:*", "kms:Encrypt", "kms:Decrypt", "kms:Create*", "kms:*Key*"]),
                prop::sample::select(vec![
                    r#""*""#,
                    r#"{"AWS": "111122223333"}"#,
                    r#"{"AWS": "arn:aws:iam::111122223333:user/alice"}"#,
                    r#"{"AWS": "444455556666"}"#,
                ]),
                any::<bool>(),
            ),
            1..6,
        ),
        principal in prop::sample::select(vec![
            "arn:aws:iam::111122223333:user/alice",
            "arn:aws:iam::111122223333:user/bob",
            "arn:aws:iam::444455556666:user/eve",
        ]),
        action in prop::sample::select(vec!["kms:Encrypt", "kms:Decrypt", "kms:CreateKey", "kms:DescribeKey", "kms:Sign"]),
        tenant in prop::option::of(prop::sample::select(vec!["42", "43"])),
    ) {
        let texts: Vec<String> = statements
            .iter()
            .map(|(deny, action, principal, conditional)| {
                let condition = if *conditional {
                    r#", "Condition": {"StringEquals": {"kms:EncryptionContext:tenant": "42"}}"#
                } else {
                    ""
                };
                format!(
                    r#"{{"Effect": "{}", "Principal": {principal}, "Action": "{action}", "Resource": "*"{condition}}}"#,
                    if *deny { "Deny" } else { "Allow" }
                )
            })
            .collect();
        let conditions = match tenant {
            Some(t) => map(&[("kms:EncryptionContext:tenant", vec![t.to_string()])]),
            None => HashMap::new(),
        };
        let whole = KeyPolicy::parse(&format!(r#"{{"Statement": [{}]}}"#, texts.join(","))).unwrap();
        let singles: Vec<Decision> = texts
            .iter()
            .map(|t| evaluate(&KeyPolicy::parse(&format!(r#"{{"Statement": [{t}]}}"#)).unwrap(), principal, action, &conditions))
            .collect();
        let expected = if singles.contains(&Decision::ExplicitDeny) {
            Decision::ExplicitDeny
        } else if singles.contains(&Decision::Allow) {
            Decision::Allow
        } else {
            Decision::ImplicitDeny
        };
        prop_assert_eq!(evaluate(&whole, principal, action, &conditions), expected);

        // Order does not matter.
        let mut reversed = texts.clone();
        reversed.reverse();
        let reversed = KeyPolicy::parse(&format!(r#"{{"Statement": [{}]}}"#, reversed.join(","))).unwrap();
        prop_assert_eq!(evaluate(&reversed, principal, action, &conditions), expected);
    }

    #[test]
    fn condition_key_names_ignore_case(flips in prop::collection::vec(any::<bool>(), 17)) {
        let name: String = "kms:CallerAccount"
            .chars()
            .zip(flips)
            .map(|(c, flip)| if flip { c.to_ascii_uppercase() } else { c.to_ascii_lowercase() })
            .collect();
        let policy = conditional("StringEquals", &name, &["111122223333".to_string()]);
        let values = vec!["111122223333".to_string()];
        prop_assert!(allowed(&policy, "kms:CallerAccount", Some(&values)));
        let other = vec!["444455556666".to_string()];
        prop_assert!(!allowed(&policy, "kms:CallerAccount", Some(&other)));
    }

    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,200}") {
        let _ = KeyPolicy::parse(&text);
    }

    #[test]
    fn damaged_policies_never_panic(
        edits in prop::collection::vec((any::<prop::sample::Index>(), prop::sample::select(vec!["", "*", "?", "\"", "{", "}", "[", "]", ",", ":", "${", "${*}", "é", "Not", "kms:"])), 1..6),
    ) {
        let mut text = RICH.to_string();
        for (at, insert) in edits {
            let mut i = at.index(text.len() + 1);
            while !text.is_char_boundary(i) {
                i -= 1;
            }
            // Replace one character (or none at the end) with the inserted text.
            let end = text[i..].chars().next().map_or(i, |c| i + c.len_utf8());
            text.replace_range(i..end, insert);
        }
        if let Ok(policy) = KeyPolicy::parse(&text) {
            for action in ["kms:Encrypt", "kms:Decrypt", "kms:PutKeyPolicy"] {
                let conditions = map(&[
                    ("kms:EncryptionContext:tenant", vec!["42".into()]),
                    ("kms:EncryptionContextKeys", vec!["tenant".into(), "x".into()]),
                ]);
                let _ = evaluate(&policy, "arn:aws:iam::111122223333:user/alice", action, &conditions);
            }
        }
    }
}

/// A policy that uses every element.
const RICH: &str = r#"{"Version": "2012-10-17", "Id": "rich", "Statement": [
 {"Sid": "A", "Effect": "Allow", "Principal": {"AWS": ["111122223333", "arn:aws:iam::111122223333:role/R"], "Service": "ec2.amazonaws.com"},
  "Action": ["kms:Encrypt", "kms:Create*"], "Resource": "*",
  "Condition": {"StringEquals": {"kms:EncryptionContext:tenant": ["42", "${*}"]}, "ForAllValues:StringLike": {"kms:EncryptionContextKeys": "t*"}}},
 {"Sid": "B", "Effect": "Deny", "NotPrincipal": {"AWS": "arn:aws:iam::111122223333:user/alice"}, "NotAction": "kms:Decrypt",
  "NotResource": "arn:aws:kms:*:111122223333:key/?", "Condition": {"Null": {"kms:RequestAlias": "true"}, "BoolIfExists": {"kms:GrantIsForAWSResource": false}}}
]}"#;

#[test]
fn the_rich_policy_parses() {
    KeyPolicy::parse(RICH).unwrap();
}
