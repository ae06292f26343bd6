//! Access control through the command line: `--principal`, key policies (administrators apart from
//! users, the lockout check, malformed documents), grants (create, use with constraints, list,
//! retire, revoke), strangers and other accounts (exit code 4, audited), managed keys and
//! `--via-service`.

mod common;

use std::path::Path;

use common::*;
use serde_json::{json as j, Value};

const ROOT: &str = "arn:aws:iam::111122223333:root";
const ADMIN: &str = "arn:aws:iam::111122223333:role/KeyAdmin";
const USER: &str = "arn:aws:iam::111122223333:role/app";
const GRANTEE: &str = "arn:aws:iam::111122223333:role/grantee";
const RETIRER: &str = "arn:aws:iam::111122223333:role/retirer";
const STRANGER: &str = "arn:aws:iam::111122223333:user/stranger";
const OTHER_ACCOUNT: &str = "arn:aws:iam::444455556666:user/eve";
const ACCESS: i32 = 4;

/// Administrators manage, users use; nobody else (not even the account's root) is named.
fn separated_policy() -> Value {
    j!({
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "Key administrators",
                "Effect": "Allow",
                "Principal": {"AWS": ADMIN},
                "Action": [
                    "kms:Create*", "kms:Describe*", "kms:Enable*", "kms:List*", "kms:Put*",
                    "kms:Update*", "kms:Revoke*", "kms:Disable*", "kms:Get*", "kms:Delete*",
                    "kms:ScheduleKeyDeletion", "kms:CancelKeyDeletion"
                ],
                "Resource": "*"
            },
            {
                "Sid": "Key users",
                "Effect": "Allow",
                "Principal": {"AWS": USER},
                "Action": ["kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey*", "kms:DescribeKey"],
                "Resource": "*"
            }
        ]
    })
}

fn as_ok(d: &Path, principal: &str, args: &[&str], stdin: &[u8]) -> Vec<u8> {
    let out = run_as(d, principal, args, stdin);
    assert!(
        out.status.success(),
        "{principal} {args:?}: {}",
        stderr(&out)
    );
    out.stdout
}

fn as_denied(d: &Path, principal: &str, args: &[&str], stdin: &[u8]) {
    let err = fails(&run_as(d, principal, args, stdin), ACCESS, principal);
    assert!(err.contains("AccessDeniedException"), "{err}");
}

fn as_json(d: &Path, principal: &str, args: &[&str], stdin: &[u8]) -> Value {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    serde_json::from_slice(&as_ok(d, principal, &all, stdin)).unwrap()
}

#[test]
fn strangers_and_other_accounts_get_the_access_exit_code_and_are_audited() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    store(d);
    let key = create_key(d, &[]);
    // The default policy names the account's root: every principal of the account (through IAM,
    // which keyplane models as allowing), no principal of another account.
    as_ok(d, STRANGER, &["key", "describe", &key], b"");
    for args in [
        vec!["key", "describe", key.as_str()],
        vec!["encrypt", "--key-id", key.as_str()],
        vec!["key", "disable", key.as_str()],
        vec!["key", "policy", "get", key.as_str()],
        vec!["grant", "list", key.as_str()],
    ] {
        as_denied(d, OTHER_ACCOUNT, &args, b"x");
    }
    let err = fails(
        &run_as(d, "not-an-arn", &["key", "list"], b""),
        2,
        "a malformed principal",
    );
    assert!(err.contains("not a principal ARN"), "{err}");
    let denied: Vec<Value> = audit_records(d)
        .into_iter()
        .filter(|r| r["errorCode"] == "AccessDeniedException")
        .collect();
    assert_eq!(denied.len(), 5, "every denied call is recorded");
    assert!(denied.iter().all(
        |r| r["userIdentity"]["arn"] == OTHER_ACCOUNT && r["userIdentity"]["type"] == "IAMUser"
    ));
    // The principal also comes from KEYPLANE_PRINCIPAL.
    let out = run_with(
        d,
        &["key", "describe", &key],
        b"",
        &[("KEYPLANE_PRINCIPAL", OTHER_ACCOUNT)],
    );
    fails(&out, ACCESS, "KEYPLANE_PRINCIPAL");
}

#[test]
fn key_policies_separate_administrators_from_users() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    store(d);
    let file = policy_file(d, "policy.json", &separated_policy());
    // Created by the root with a policy that does not name it: refused unless the lockout check
    // is bypassed.
    let out = run(d, &["key", "create", "--policy", &file]);
    let err = fails(&out, 2, "lockout");
    assert!(err.contains("MalformedPolicyDocumentException"), "{err}");
    let key = create_key(
        d,
        &["--policy", &file, "--bypass-policy-lockout-safety-check"],
    );

    // The administrator manages the key but cannot use it.
    as_ok(d, ADMIN, &["key", "describe", &key], b"");
    as_ok(d, ADMIN, &["key", "disable", &key], b"");
    as_ok(d, ADMIN, &["key", "enable", &key], b"");
    let got = as_json(d, ADMIN, &["key", "policy", "get", &key], b"");
    assert_shape(
        &got,
        "operations",
        "GetKeyPolicy",
        &["Policy", "PolicyName"],
    );
    assert_eq!(got["PolicyName"], "default");
    let document: Value = serde_json::from_str(got["Policy"].as_str().unwrap()).unwrap();
    assert_eq!(document, separated_policy());
    let listed = as_json(d, ADMIN, &["key", "policy", "list", &key], b"");
    assert_shape(
        &listed,
        "operations",
        "ListKeyPolicies",
        &["PolicyNames", "Truncated"],
    );
    assert_eq!(listed["PolicyNames"], j!(["default"]));
    as_denied(d, ADMIN, &["encrypt", "--key-id", &key], b"x");

    // The user uses it but cannot manage it.
    let blob = as_ok(d, USER, &["encrypt", "--key-id", &key], b"secret");
    assert_eq!(as_ok(d, USER, &["decrypt"], &blob), b"secret");
    as_denied(d, USER, &["key", "disable", &key], b"");
    as_denied(d, USER, &["key", "policy", "get", &key], b"");

    // Neither the stranger nor the root, whom the policy does not name.
    as_denied(d, STRANGER, &["encrypt", "--key-id", &key], b"x");
    as_denied(d, STRANGER, &["key", "describe", &key], b"");
    as_denied(d, ROOT, &["key", "describe", &key], b"");

    // PutKeyPolicy: a malformed document is pointed at; a policy locking the administrator out
    // needs the bypass; the administrator hands the user administration too.
    let bad = policy_file(
        d,
        "bad.json",
        &j!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": ADMIN}, "Action": "kms:*", "Resource": "*", "Conditon": {}}]}),
    );
    let err = fails(
        &run_as(d, ADMIN, &["key", "policy", "put", &key, &bad], b""),
        2,
        "malformed",
    );
    assert!(
        err.contains("MalformedPolicyDocumentException") && err.contains("Conditon"),
        "{err}"
    );
    let users_only = policy_file(
        d,
        "users-only.json",
        &j!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": USER}, "Action": "kms:*", "Resource": "*"}]}),
    );
    fails(
        &run_as(d, ADMIN, &["key", "policy", "put", &key, &users_only], b""),
        2,
        "lockout",
    );
    let put = as_json(
        d,
        ADMIN,
        &[
            "key",
            "policy",
            "put",
            &key,
            &users_only,
            "--bypass-policy-lockout-safety-check",
        ],
        b"",
    );
    assert_eq!(put, j!({}));
    as_ok(d, USER, &["key", "disable", &key], b"");
    as_denied(d, ADMIN, &["key", "describe", &key], b"");
}

#[test]
fn grants_add_permission_with_constraints_and_are_retired_and_revoked() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    store(d);
    let file = policy_file(d, "policy.json", &separated_policy());
    let key = create_key(
        d,
        &["--policy", &file, "--bypass-policy-lockout-safety-check"],
    );
    as_denied(
        d,
        GRANTEE,
        &["encrypt", "--key-id", &key, "--context", "tenant=42"],
        b"x",
    );

    let grant = as_json(
        d,
        ADMIN,
        &[
            "grant",
            "create",
            "--key-id",
            &key,
            "--grantee-principal",
            GRANTEE,
            "--operations",
            "Encrypt,Decrypt",
            "--retiring-principal",
            RETIRER,
            "--context-subset",
            "tenant=42",
            "--name",
            "tenant-42",
        ],
        b"",
    );
    assert_shape(
        &grant,
        "operations",
        "CreateGrant",
        &["GrantToken", "GrantId"],
    );
    let grant_id = grant["GrantId"].as_str().unwrap().to_owned();
    let token = grant["GrantToken"].as_str().unwrap().to_owned();

    // Used at once, within its constraint only; and only for its operations.
    let blob = as_ok(
        d,
        GRANTEE,
        &[
            "encrypt",
            "--key-id",
            &key,
            "--context",
            "tenant=42",
            "--context",
            "x=1",
        ],
        b"granted",
    );
    assert_eq!(
        as_ok(
            d,
            GRANTEE,
            &["decrypt", "--context", "tenant=42", "--context", "x=1"],
            &blob
        ),
        b"granted"
    );
    as_denied(d, GRANTEE, &["encrypt", "--key-id", &key], b"x");
    as_denied(
        d,
        GRANTEE,
        &["encrypt", "--key-id", &key, "--context", "tenant=43"],
        b"x",
    );
    as_denied(
        d,
        GRANTEE,
        &[
            "generate-data-key",
            "--key-id",
            &key,
            "--context",
            "tenant=42",
        ],
        b"",
    );

    // Listed in the service's shapes.
    let listed = as_json(d, ADMIN, &["grant", "list", &key], b"");
    assert_shape(
        &listed,
        "operations",
        "ListGrants",
        &["Grants", "Truncated"],
    );
    let entry = &listed["Grants"][0];
    assert_shape(
        entry,
        "structures",
        "GrantListEntry",
        &[
            "KeyId",
            "GrantId",
            "Name",
            "CreationDate",
            "GranteePrincipal",
            "RetiringPrincipal",
            "IssuingAccount",
            "Operations",
            "Constraints",
        ],
    );
    assert_shape(
        &entry["Constraints"],
        "structures",
        "GrantConstraints",
        &["EncryptionContextSubset"],
    );
    assert_eq!(entry["GrantId"], grant_id.as_str());
    assert_eq!(entry["Operations"], j!(["Encrypt", "Decrypt"]));
    assert!(entry["CreationDate"].is_f64());
    let retirable = json(d, &["grant", "list-retirable", RETIRER], b"");
    assert_shape(
        &retirable,
        "operations",
        "ListRetirableGrants",
        &["Grants", "Truncated"],
    );
    assert_eq!(retirable["Grants"][0]["GrantId"], grant_id.as_str());
    let table = String::from_utf8(as_ok(d, ADMIN, &["grant", "list", &key], b"")).unwrap();
    assert!(
        table.contains(&grant_id) && table.contains(GRANTEE),
        "{table}"
    );

    // Retired by its retiring principal, with the token; the grantee loses access.
    as_denied(
        d,
        STRANGER,
        &["grant", "retire", "--grant-token", &token],
        b"",
    );
    assert_eq!(
        as_json(
            d,
            RETIRER,
            &["grant", "retire", "--grant-token", &token],
            b""
        ),
        j!({})
    );
    as_denied(
        d,
        GRANTEE,
        &["encrypt", "--key-id", &key, "--context", "tenant=42"],
        b"x",
    );

    // Another grant, revoked by the administrator.
    let second = as_json(
        d,
        ADMIN,
        &[
            "grant",
            "create",
            "--key-id",
            &key,
            "--grantee-principal",
            GRANTEE,
            "--operations",
            "GenerateDataKey",
        ],
        b"",
    );
    let second_id = second["GrantId"].as_str().unwrap();
    as_ok(d, GRANTEE, &["generate-data-key", "--key-id", &key], b"");
    as_denied(d, USER, &["grant", "revoke", &key, second_id], b"");
    as_ok(d, ADMIN, &["grant", "revoke", &key, second_id], b"");
    as_denied(d, GRANTEE, &["generate-data-key", "--key-id", &key], b"");
    let missing = run_as(d, ADMIN, &["grant", "revoke", &key, second_id], b"");
    assert!(fails(&missing, 3, "a revoked grant").contains("InvalidGrantIdException"));
    let bad_operation = run_as(
        d,
        ADMIN,
        &[
            "grant",
            "create",
            "--key-id",
            &key,
            "--grantee-principal",
            GRANTEE,
            "--operations",
            "Frobnicate",
        ],
        b"",
    );
    fails(&bad_operation, 2, "unknown operation");
    assert!(
        audit_records(d)
            .iter()
            .any(|r| r["eventName"] == "RetireGrant" && r["userIdentity"]["arn"] == RETIRER),
        "grant calls are audited"
    );
}

#[test]
fn managed_keys_are_used_through_their_service_only() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    store(d);
    let managed = json(d, &["managed-key", "s3"], b"");
    assert_shape(&managed, "operations", "DescribeKey", &["KeyMetadata"]);
    assert_eq!(managed["KeyMetadata"]["KeyManager"], "AWS");
    let key = key_id(&managed);
    assert_eq!(
        key_id(&json(d, &["managed-key", "s3"], b"")),
        key,
        "created once"
    );
    let aliases = json(d, &["alias", "list", "--key", &key], b"");
    assert_eq!(aliases["Aliases"][0]["AliasName"], "alias/aws/s3");

    // Not directly, not even by the account's root; through the service, yes.
    // (With a plaintext: an empty one breaks the model's constraint before access is checked.)
    fails(
        &run_with(d, &["encrypt", "--key-id", "alias/aws/s3"], b"object", &[]),
        ACCESS,
        "direct",
    );
    let blob = ok(
        d,
        &["--via-service", "s3", "encrypt", "--key-id", "alias/aws/s3"],
        b"object",
    );
    assert_eq!(ok(d, &["--via-service", "s3", "decrypt"], &blob), b"object");
    let out = run_with(
        d,
        &[
            "--via-service",
            "ebs",
            "encrypt",
            "--key-id",
            "alias/aws/s3",
        ],
        b"object",
        &[],
    );
    fails(&out, ACCESS, "another service");
    // Customers cannot manage it.
    assert_ne!(code(&run(d, &["key", "disable", &key])), 0);
    assert_ne!(code(&run(d, &["key", "schedule-deletion", &key])), 0);
    let policy = policy_file(d, "p.json", &separated_policy());
    assert_ne!(
        code(&run(
            d,
            &[
                "key",
                "policy",
                "put",
                &key,
                &policy,
                "--bypass-policy-lockout-safety-check"
            ]
        )),
        0
    );
    fails(&run(d, &["managed-key", "S3!"]), 2, "a bad service name");
}

#[test]
fn help_lists_the_new_commands_and_options() {
    let tmp = tempfile::tempdir().unwrap();
    let help = String::from_utf8(ok(tmp.path(), &["--help"], b"")).unwrap();
    for word in [
        "sign",
        "verify",
        "get-public-key",
        "generate-mac",
        "verify-mac",
        "derive-shared-secret",
        "generate-data-key-pair",
        "generate-data-key-pair-without-plaintext",
        "grant",
        "managed-key",
        "audit",
        "--principal",
        "--no-audit",
        "--audit-durability",
        "6 tampered",
    ] {
        assert!(help.contains(word), "--help lacks {word}");
    }
    assert!(help.contains("bench"), "--help lacks bench");
    let key_help = String::from_utf8(ok(tmp.path(), &["key", "--help"], b"")).unwrap();
    assert!(key_help.contains("policy") && key_help.contains("last-usage"));
    let grant_help = String::from_utf8(ok(tmp.path(), &["grant", "--help"], b"")).unwrap();
    for word in ["create", "list", "list-retirable", "retire", "revoke"] {
        assert!(grant_help.contains(word), "grant --help lacks {word}");
    }
}

#[test]
fn the_policy_template_separates_administrators_from_users() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    store(d);
    let template: Value = serde_json::from_slice(&ok(
        d,
        &[
            "key", "policy", "template", "--admin", ADMIN, "--user", USER,
        ],
        b"",
    ))
    .unwrap();
    let file = policy_file(d, "separated.json", &template);
    // An administrator creating the key passes the lockout check.
    let created = as_json(d, ADMIN, &["key", "create", "--policy", &file], b"");
    let key = key_id(&created);
    as_ok(d, USER, &["encrypt", "--key-id", &key], b"data");
    as_denied(d, ADMIN, &["encrypt", "--key-id", &key], b"data");
    as_denied(d, USER, &["key", "disable", &key], b"");
    as_denied(d, ROOT, &["key", "describe", &key], b"");
    as_ok(d, ADMIN, &["key", "disable", &key], b"");
    // No administrator: a usage error.
    fails(
        &run(d, &["key", "policy", "template", "--user", USER]),
        2,
        "a template without an administrator",
    );
}
