//! Documents refused on write: every message names the place (statement index, Sid, field) and the
//! problem.

use keyplane::policy::{KeyPolicy, PolicyError, MAX_POLICY_BYTES};

/// Parses `document`, expecting a refusal; returns its message.
fn refused(document: &str) -> String {
    match KeyPolicy::parse(document) {
        Ok(_) => panic!("accepted: {document}"),
        Err(PolicyError::Malformed(message)) => message,
    }
}

/// A policy with the given statements (JSON objects, comma-joined).
fn policy(statements: &[&str]) -> String {
    format!(
        r#"{{"Version": "2012-10-17", "Statement": [{}]}}"#,
        statements.join(",")
    )
}

const GOOD: &str = r#"{"Sid": "Good", "Effect": "Allow", "Principal": {"AWS": "111122223333"}, "Action": "kms:*", "Resource": "*"}"#;

fn assert_refused(document: &str, expected: &str) {
    let message = refused(document);
    assert!(
        message.contains(expected),
        "expected {expected:?} in {message:?}\nfor {document}"
    );
}

#[test]
fn a_good_policy_parses() {
    KeyPolicy::parse(&policy(&[GOOD])).unwrap();
    // One statement as an object, no Version, an Id.
    KeyPolicy::parse(&format!(r#"{{"Id": "k", "Statement": {GOOD}}}"#)).unwrap();
    KeyPolicy::parse(&format!(
        r#"{{"Version": "2008-10-17", "Statement": [{GOOD}]}}"#
    ))
    .unwrap();
}

#[test]
fn malformed_json_has_line_and_column() {
    let document = "{\n  \"Version\": \"2012-10-17\",\n  \"Statement\": [\n    {\"Effect\": \"Allow\",}\n  ]\n}";
    let message = refused(document);
    assert!(message.starts_with("malformed JSON: "), "{message}");
    assert!(message.contains("line 4 column"), "{message}");

    assert_refused("{\"Statement\": [", "malformed JSON: EOF while parsing");
    assert_refused(
        "{} {}",
        "malformed JSON: trailing characters at line 1 column 4",
    );
    assert_refused(
        "{'Version': 1}",
        "malformed JSON: key must be a string at line 1 column 2",
    );
}

#[test]
fn duplicate_fields_are_malformed() {
    let document = "{\"Statement\": {\n \"Effect\": \"Deny\",\n \"Effect\": \"Allow\", \"Principal\": \"*\", \"Action\": \"*\", \"Resource\": \"*\"}}";
    assert_refused(
        document,
        "malformed JSON: duplicate field 'Effect' at line 3",
    );
}

#[test]
fn empty_and_non_object_documents() {
    assert_refused("", "policy document is empty");
    assert_refused("  \n ", "policy document is empty");
    assert_refused(
        "[]",
        "policy document must be a JSON object, found an array",
    );
    assert_refused(
        "\"*\"",
        "policy document must be a JSON object, found a string",
    );
}

#[test]
fn size_limit() {
    // Exactly at the limit is fine (padding with whitespace).
    let base = policy(&[GOOD]);
    let at_limit = format!("{base}{}", " ".repeat(MAX_POLICY_BYTES - base.len()));
    assert_eq!(at_limit.len(), MAX_POLICY_BYTES);
    KeyPolicy::parse(&at_limit).unwrap();
    let over = format!("{at_limit} ");
    assert_refused(
        &over,
        &format!(
            "policy document is {} bytes; the limit is 32768 bytes",
            MAX_POLICY_BYTES + 1
        ),
    );
}

#[test]
fn top_level_fields() {
    assert_refused(
        &format!(r#"{{"Version": "2012-10-17", "Statements": [{GOOD}]}}"#),
        "unknown top-level field 'Statements' (did you mean 'Statement'?)",
    );
    assert_refused(
        &format!(r#"{{"version": "2012-10-17", "Statement": [{GOOD}]}}"#),
        "unknown top-level field 'version' (did you mean 'Version'?)",
    );
    assert_refused(
        &format!(r#"{{"Version": "2012-10-18", "Statement": [{GOOD}]}}"#),
        "Version: unsupported version '2012-10-18'",
    );
    assert_refused(
        &format!(r#"{{"Version": 2012, "Statement": [{GOOD}]}}"#),
        "Version: must be a string, found a number",
    );
    assert_refused(
        &format!(r#"{{"Id": ["x"], "Statement": [{GOOD}]}}"#),
        "Id: must be a string, found an array",
    );
    assert_refused(r#"{"Version": "2012-10-17"}"#, "Statement: missing");
    assert_refused(
        r#"{"Statement": []}"#,
        "Statement: must contain at least one statement",
    );
    assert_refused(
        r#"{"Statement": "Allow"}"#,
        "Statement: must be an object or an array of objects, found a string",
    );
}

#[test]
fn statement_shape() {
    assert_refused(&policy(&[GOOD, "{}"]), "Statement[1]: empty statement");
    assert_refused(
        &policy(&[GOOD, "[]"]),
        "Statement[1]: must be an object, found an array",
    );
    assert_refused(r#"{"Statement": {}}"#, "Statement: empty statement");
    assert_refused(
        &policy(&[r#"{"Sid": 5, "Effect": "Allow"}"#]),
        "Statement[0].Sid: must be a string, found a number",
    );
}

#[test]
fn unknown_statement_fields_name_statement_and_sid() {
    assert_refused(
        &policy(&[
            GOOD,
            r#"{"Sid": "Users", "Effect": "Allow", "Principal": "*", "Actions": "kms:Encrypt", "Resource": "*"}"#,
        ]),
        "Statement[1]: unknown field 'Actions' (did you mean 'Action'?) (Sid \"Users\")",
    );
    assert_refused(
        &policy(&[
            r#"{"Effect": "Allow", "Principal": "*", "Action": "kms:Encrypt", "Resource": "*", "Comment": "x"}"#,
        ]),
        "Statement[0]: unknown field 'Comment'",
    );
}

#[test]
fn effect() {
    assert_refused(
        &policy(&[r#"{"Principal": "*", "Action": "*", "Resource": "*"}"#]),
        "Statement[0].Effect: missing",
    );
    assert_refused(
        &policy(&[
            GOOD,
            GOOD,
            r#"{"Sid": "S", "Effect": "allow", "Principal": "*", "Action": "*", "Resource": "*"}"#,
        ]),
        "Statement[2].Effect: must be \"Allow\" or \"Deny\", found 'allow' (Sid \"S\")",
    );
    assert_refused(
        &policy(&[r#"{"Effect": true, "Principal": "*", "Action": "*", "Resource": "*"}"#]),
        "Statement[0].Effect: must be \"Allow\" or \"Deny\", found a boolean",
    );
}

#[test]
fn exclusive_pairs_and_required_elements() {
    assert_refused(
        &policy(&[r#"{"Effect": "Allow", "Action": "*", "Resource": "*"}"#]),
        "Statement[0].Principal: missing",
    );
    assert_refused(
        &policy(&[
            r#"{"Effect": "Allow", "Principal": "*", "NotPrincipal": "*", "Action": "*", "Resource": "*"}"#,
        ]),
        "Statement[0].NotPrincipal: cannot be used together with Principal",
    );
    assert_refused(
        &policy(&[r#"{"Effect": "Allow", "Principal": "*", "Resource": "*"}"#]),
        "Statement[0].Action: missing (a statement needs Action or NotAction)",
    );
    assert_refused(
        &policy(&[
            GOOD,
            r#"{"Sid": "Both", "Effect": "Allow", "Principal": "*", "Action": "kms:Encrypt", "NotAction": "kms:Decrypt", "Resource": "*"}"#,
        ]),
        "Statement[1].NotAction: cannot be used together with Action; use one of them (Sid \"Both\")",
    );
    assert_refused(
        &policy(&[r#"{"Effect": "Allow", "Principal": "*", "Action": "*"}"#]),
        "Statement[0].Resource: missing (a statement needs Resource or NotResource; key policies use \"Resource\": \"*\")",
    );
    assert_refused(
        &policy(&[
            r#"{"Effect": "Allow", "Principal": "*", "Action": "*", "Resource": "*", "NotResource": "*"}"#,
        ]),
        "Statement[0].NotResource: cannot be used together with Resource",
    );
}

#[test]
fn element_errors_carry_the_path() {
    let cases = [
        (
            r#"{"Effect": "Allow", "Principal": {"AWS": ["111122223333", "bob"]}, "Action": "*", "Resource": "*"}"#,
            "Statement[0].Principal.AWS[1]: 'bob' is not an account id",
        ),
        (
            r#"{"Effect": "Deny", "NotPrincipal": {"AWS": "arn:aws:iam::111122223333:user/*"}, "Action": "*", "Resource": "*"}"#,
            "Statement[0].NotPrincipal.AWS: wildcards are not allowed",
        ),
        (
            r#"{"Effect": "Allow", "Principal": "*", "Action": ["kms:Encrypt", "kms:Decrpyt"], "Resource": "*"}"#,
            "Statement[0].Action[1]: unknown action 'kms:Decrpyt' (did you mean 'kms:Decrypt'?)",
        ),
        (
            r#"{"Effect": "Allow", "Principal": "*", "NotAction": "kms:Destroy*", "Resource": "*"}"#,
            "Statement[0].NotAction: 'kms:Destroy*' matches no KMS action",
        ),
        (
            r#"{"Effect": "Allow", "Principal": "*", "Action": "*", "NotResource": ["alias/x"]}"#,
            "Statement[0].NotResource[0]: 'alias/x' is not \"*\" or an ARN",
        ),
    ];
    for (statement, expected) in cases {
        assert_refused(&policy(&[statement]), expected);
    }
}

#[test]
fn condition_errors_carry_the_path() {
    let with = |condition: &str| {
        policy(&[
            GOOD,
            GOOD,
            &format!(
                r#"{{"Effect": "Allow", "Principal": "*", "Action": "kms:Decrypt", "Resource": "*", "Condition": {condition}}}"#
            ),
        ])
    };
    let cases = [
        (
            r#"{"StringEqualz": {"kms:EncryptionContext:tenant": "42"}}"#,
            "Statement[2].Condition: unknown operator 'StringEqualz'",
        ),
        (
            r#"{"NumericLessThan": {"kms:EncryptionContext:n": "1"}}"#,
            "Statement[2].Condition: operator 'NumericLessThan' is not supported",
        ),
        (
            r#"{"NullIfExists": {"kms:RequestAlias": "true"}}"#,
            "Statement[2].Condition: 'NullIfExists' is not valid",
        ),
        (
            r#"{"StringEquals": {"s3:prefix": "x"}}"#,
            "Statement[2].Condition.StringEquals: condition key 's3:prefix' is not supported",
        ),
        (
            r#"{"Bool": {"kms:GrantIsForAWSResource": "maybe"}}"#,
            "Statement[2].Condition.Bool.kms:GrantIsForAWSResource: must be \"true\" or \"false\"",
        ),
        (
            r#"{"StringLike": {"kms:EncryptionContext:user": ["a*", "${aws:username}"]}}"#,
            "Statement[2].Condition.StringLike.kms:EncryptionContext:user[1]: policy variable '${aws:username}' is not supported",
        ),
        ("{}", "Statement[2].Condition: must not be empty"),
        ("\"x\"", "Statement[2].Condition: must be an object"),
    ];
    for (condition, expected) in cases {
        assert_refused(&with(condition), expected);
    }
}

#[test]
fn the_first_problem_is_reported() {
    // Statement 0 is fine, statement 1 has two problems: the unknown field comes first.
    let message = refused(&policy(&[
        GOOD,
        r#"{"Effect": "Maybe", "Principal": "*", "Action": "*", "Resource": "*", "Extra": 1}"#,
    ]));
    assert_eq!(message, "Statement[1]: unknown field 'Extra'");
}

#[test]
fn policy_variables_are_literal_under_2008() {
    let document = r#"{"Version": "2008-10-17", "Statement": {"Effect": "Allow", "Principal": "*", "Action": "*", "Resource": "*",
        "Condition": {"StringEquals": {"kms:EncryptionContext:user": "${aws:username}"}}}}"#;
    KeyPolicy::parse(document).unwrap();
    let document = document.replace("2008-10-17", "2012-10-17");
    assert_refused(
        &document,
        "policy variable '${aws:username}' is not supported",
    );
}

#[test]
fn long_values_are_shortened_in_messages() {
    let long = "x".repeat(5000);
    let message = refused(&policy(&[&format!(
        r#"{{"Effect": "Allow", "Principal": "*", "Action": "kms:{long}", "Resource": "*"}}"#
    )]));
    assert!(message.len() < 300, "{}", message.len());
    assert!(message.contains('…'));
}
