//! Whole policies evaluated for realistic requests: administrators versus users, encryption
//! context conditions, the `Not` elements, cross-account and service principals, explicit deny.

use keyplane::policy::{Decision, KeyPolicy, RequestContext};
use keyplane_testkit::Conditions;

const ACCOUNT: &str = "111122223333";
const KEY: &str = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";
const ROOT: &str = "arn:aws:iam::111122223333:root";
const ADMIN_ROLE: &str = "arn:aws:iam::111122223333:role/KeyAdmin";
const ADMIN_SESSION: &str = "arn:aws:sts::111122223333:assumed-role/KeyAdmin/ops-session";
const ALICE: &str = "arn:aws:iam::111122223333:user/alice";
const BOB: &str = "arn:aws:iam::111122223333:user/bob";
const EVE: &str = "arn:aws:iam::444455556666:user/eve";

fn account_of(principal: &str) -> &str {
    principal.split(':').nth(4).unwrap_or("")
}

fn decide(policy: &KeyPolicy, principal: &str, action: &str, context: &Conditions<'_>) -> Decision {
    policy.evaluate(&RequestContext {
        action,
        principal,
        principal_account: account_of(principal),
        resource: KEY,
        conditions: context,
    })
}

fn decide_plain(policy: &KeyPolicy, principal: &str, action: &str) -> Decision {
    decide(policy, principal, action, &Conditions::default())
}

/// The console's policy for a key with named administrators and users.
const ADMINS_AND_USERS: &str = r#"{
  "Version": "2012-10-17",
  "Id": "key-consolepolicy-3",
  "Statement": [
    {
      "Sid": "Allow access for Key Administrators",
      "Effect": "Allow",
      "Principal": {"AWS": "arn:aws:iam::111122223333:role/KeyAdmin"},
      "Action": [
        "kms:Create*", "kms:Describe*", "kms:Enable*", "kms:List*", "kms:Put*", "kms:Update*",
        "kms:Revoke*", "kms:Disable*", "kms:Get*", "kms:Delete*", "kms:TagResource",
        "kms:UntagResource", "kms:ScheduleKeyDeletion", "kms:CancelKeyDeletion",
        "kms:RotateKeyOnDemand"
      ],
      "Resource": "*"
    },
    {
      "Sid": "Allow use of the key",
      "Effect": "Allow",
      "Principal": {"AWS": ["arn:aws:iam::111122223333:user/alice"]},
      "Action": ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey"],
      "Resource": "*"
    },
    {
      "Sid": "Allow attachment of persistent resources",
      "Effect": "Allow",
      "Principal": {"AWS": "arn:aws:iam::111122223333:user/alice"},
      "Action": ["kms:CreateGrant", "kms:ListGrants", "kms:RevokeGrant"],
      "Resource": "*",
      "Condition": {"Bool": {"kms:GrantIsForAWSResource": "true"}}
    }
  ]
}"#;

const MANAGE: &[&str] = &[
    "kms:DescribeKey",
    "kms:EnableKey",
    "kms:DisableKey",
    "kms:EnableKeyRotation",
    "kms:RotateKeyOnDemand",
    "kms:ScheduleKeyDeletion",
    "kms:CancelKeyDeletion",
    "kms:PutKeyPolicy",
    "kms:GetKeyPolicy",
    "kms:TagResource",
];
const USE: &[&str] = &[
    "kms:Encrypt",
    "kms:Decrypt",
    "kms:ReEncryptFrom",
    "kms:ReEncryptTo",
    "kms:GenerateDataKey",
    "kms:GenerateDataKeyWithoutPlaintext",
];

#[test]
fn administrators_manage_but_do_not_use() {
    let policy = KeyPolicy::parse(ADMINS_AND_USERS).unwrap();
    for admin in [ADMIN_ROLE, ADMIN_SESSION] {
        for action in MANAGE {
            assert_eq!(
                decide_plain(&policy, admin, action),
                Decision::Allow,
                "{admin} {action}"
            );
        }
        for action in USE {
            assert_eq!(
                decide_plain(&policy, admin, action),
                Decision::ImplicitDeny,
                "{admin} {action}"
            );
        }
    }
}

#[test]
fn users_use_but_do_not_manage() {
    let policy = KeyPolicy::parse(ADMINS_AND_USERS).unwrap();
    for action in USE {
        assert_eq!(
            decide_plain(&policy, ALICE, action),
            Decision::Allow,
            "{action}"
        );
    }
    for action in MANAGE.iter().filter(|a| **a != "kms:DescribeKey") {
        assert_eq!(
            decide_plain(&policy, ALICE, action),
            Decision::ImplicitDeny,
            "{action}"
        );
    }
}

#[test]
fn grants_for_aws_resources_only() {
    let policy = KeyPolicy::parse(ADMINS_AND_USERS).unwrap();
    let for_resource = Conditions::default().with("kms:GrantIsForAWSResource", &["true"]);
    let not_for_resource = Conditions::default().with("kms:GrantIsForAWSResource", &["false"]);
    assert_eq!(
        decide(&policy, ALICE, "kms:CreateGrant", &for_resource),
        Decision::Allow
    );
    assert_eq!(
        decide(&policy, ALICE, "kms:CreateGrant", &not_for_resource),
        Decision::ImplicitDeny
    );
    assert_eq!(
        decide_plain(&policy, ALICE, "kms:CreateGrant"),
        Decision::ImplicitDeny
    );
}

#[test]
fn strangers_and_other_accounts_get_nothing() {
    let policy = KeyPolicy::parse(ADMINS_AND_USERS).unwrap();
    for principal in [
        BOB,
        EVE,
        ROOT,
        "arn:aws:iam::444455556666:root",
        "ec2.amazonaws.com",
    ] {
        for action in MANAGE.iter().chain(USE) {
            assert_eq!(
                decide_plain(&policy, principal, action),
                Decision::ImplicitDeny,
                "{principal} {action}"
            );
        }
    }
}

#[test]
fn encryption_context_conditions() {
    let policy = KeyPolicy::parse(
        r#"{
      "Version": "2012-10-17",
      "Statement": [
        {
          "Sid": "Tenant 42 only",
          "Effect": "Allow",
          "Principal": {"AWS": "111122223333"},
          "Action": ["kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey*"],
          "Resource": "*",
          "Condition": {
            "StringEquals": {"kms:EncryptionContext:tenant": "42"},
            "ForAllValues:StringEquals": {"kms:EncryptionContextKeys": ["tenant", "order"]}
          }
        }
      ]
    }"#,
    )
    .unwrap();
    let good = Conditions::default()
        .with("kms:EncryptionContext:tenant", &["42"])
        .with("kms:EncryptionContextKeys", &["tenant"]);
    let with_order = Conditions::default()
        .with("kms:EncryptionContext:tenant", &["42"])
        .with("kms:EncryptionContext:order", &["7"])
        .with("kms:EncryptionContextKeys", &["order", "tenant"]);
    let extra_key = Conditions::default()
        .with("kms:EncryptionContext:tenant", &["42"])
        .with("kms:EncryptionContext:user", &["x"])
        .with("kms:EncryptionContextKeys", &["tenant", "user"]);
    let other_tenant = Conditions::default()
        .with("kms:EncryptionContext:tenant", &["43"])
        .with("kms:EncryptionContextKeys", &["tenant"]);
    let wrong_case = Conditions::default()
        .with("kms:EncryptionContext:Tenant", &["42"])
        .with("kms:EncryptionContextKeys", &["Tenant"]);
    assert_eq!(
        decide(&policy, ALICE, "kms:Decrypt", &good),
        Decision::Allow
    );
    assert_eq!(
        decide(&policy, ALICE, "kms:Encrypt", &with_order),
        Decision::Allow
    );
    assert_eq!(
        decide(&policy, ALICE, "kms:Decrypt", &extra_key),
        Decision::ImplicitDeny
    );
    assert_eq!(
        decide(&policy, ALICE, "kms:Decrypt", &other_tenant),
        Decision::ImplicitDeny
    );
    assert_eq!(
        decide(&policy, ALICE, "kms:Decrypt", &wrong_case),
        Decision::ImplicitDeny
    );
    assert_eq!(
        decide_plain(&policy, ALICE, "kms:Decrypt"),
        Decision::ImplicitDeny
    );
}

#[test]
fn deny_without_context_beats_the_default_allow() {
    let policy = KeyPolicy::parse(
        r#"{
      "Version": "2012-10-17",
      "Statement": [
        {"Sid": "Root", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::111122223333:root"}, "Action": "kms:*", "Resource": "*"},
        {"Sid": "Require context", "Effect": "Deny", "Principal": "*", "Action": ["kms:Encrypt", "kms:Decrypt"], "Resource": "*",
         "Condition": {"Null": {"kms:EncryptionContext:tenant": "true"}}},
        {"Sid": "Only tenant 42", "Effect": "Deny", "Principal": "*", "Action": "kms:Decrypt", "Resource": "*",
         "Condition": {"StringNotEqualsIfExists": {"kms:EncryptionContext:tenant": "42"}}}
      ]
    }"#,
    )
    .unwrap();
    let tenant_42 = Conditions::default().with("kms:EncryptionContext:tenant", &["42"]);
    let tenant_43 = Conditions::default().with("kms:EncryptionContext:tenant", &["43"]);
    assert_eq!(
        decide_plain(&policy, ALICE, "kms:Encrypt"),
        Decision::ExplicitDeny
    );
    assert_eq!(
        decide(&policy, ALICE, "kms:Encrypt", &tenant_42),
        Decision::Allow
    );
    assert_eq!(
        decide(&policy, ALICE, "kms:Encrypt", &tenant_43),
        Decision::Allow
    );
    assert_eq!(
        decide(&policy, ALICE, "kms:Decrypt", &tenant_42),
        Decision::Allow
    );
    assert_eq!(
        decide(&policy, ALICE, "kms:Decrypt", &tenant_43),
        Decision::ExplicitDeny
    );
    assert_eq!(
        decide_plain(&policy, ALICE, "kms:DescribeKey"),
        Decision::Allow
    );
    // Deny applies to everyone, but an outsider was never allowed anyway.
    assert_eq!(
        decide(&policy, EVE, "kms:Encrypt", &tenant_42),
        Decision::ImplicitDeny
    );
    assert_eq!(
        decide_plain(&policy, EVE, "kms:Encrypt"),
        Decision::ExplicitDeny
    );
}

#[test]
fn not_action_denies_everything_else() {
    let policy = KeyPolicy::parse(
        r#"{"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": "111122223333"}, "Action": "kms:*", "Resource": "*"},
        {"Sid": "Alice only uses", "Effect": "Deny", "Principal": {"AWS": "arn:aws:iam::111122223333:user/alice"},
         "NotAction": ["kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey*"], "Resource": "*"}
    ]}"#,
    )
    .unwrap();
    assert_eq!(decide_plain(&policy, ALICE, "kms:Encrypt"), Decision::Allow);
    assert_eq!(
        decide_plain(&policy, ALICE, "kms:GenerateDataKeyPair"),
        Decision::Allow
    );
    assert_eq!(
        decide_plain(&policy, ALICE, "kms:DescribeKey"),
        Decision::ExplicitDeny
    );
    assert_eq!(
        decide_plain(&policy, ALICE, "kms:PutKeyPolicy"),
        Decision::ExplicitDeny
    );
    assert_eq!(
        decide_plain(&policy, BOB, "kms:PutKeyPolicy"),
        Decision::Allow
    );
}

#[test]
fn not_action_allow() {
    let policy = KeyPolicy::parse(
        r#"{"Statement": {"Effect": "Allow", "Principal": {"AWS": "111122223333"}, "NotAction": "kms:*Key*", "Resource": "*"}}"#,
    )
    .unwrap();
    assert_eq!(decide_plain(&policy, ALICE, "kms:Encrypt"), Decision::Allow);
    assert_eq!(
        decide_plain(&policy, ALICE, "kms:ScheduleKeyDeletion"),
        Decision::ImplicitDeny
    );
    assert_eq!(
        decide_plain(&policy, ALICE, "kms:GenerateDataKey"),
        Decision::ImplicitDeny
    );
}

#[test]
fn not_principal_deny_protects_deletion() {
    let policy = KeyPolicy::parse(
        r#"{"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::111122223333:root"}, "Action": "kms:*", "Resource": "*"},
        {"Sid": "Only the admin role deletes", "Effect": "Deny",
         "NotPrincipal": {"AWS": ["arn:aws:iam::111122223333:role/KeyAdmin", "arn:aws:iam::111122223333:root"]},
         "Action": ["kms:ScheduleKeyDeletion", "kms:PutKeyPolicy"], "Resource": "*"}
    ]}"#,
    )
    .unwrap();
    // The root principal in NotPrincipal covers the whole account: nobody in it is denied.
    assert_eq!(
        decide_plain(&policy, ALICE, "kms:ScheduleKeyDeletion"),
        Decision::Allow
    );

    let policy = KeyPolicy::parse(
        r#"{"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::111122223333:root"}, "Action": "kms:*", "Resource": "*"},
        {"Sid": "Only the admin role deletes", "Effect": "Deny",
         "NotPrincipal": {"AWS": "arn:aws:iam::111122223333:role/KeyAdmin"},
         "Action": ["kms:ScheduleKeyDeletion", "kms:PutKeyPolicy"], "Resource": "*"}
    ]}"#,
    )
    .unwrap();
    assert_eq!(
        decide_plain(&policy, ALICE, "kms:ScheduleKeyDeletion"),
        Decision::ExplicitDeny
    );
    assert_eq!(
        decide_plain(&policy, ROOT, "kms:PutKeyPolicy"),
        Decision::ExplicitDeny
    );
    assert_eq!(
        decide_plain(&policy, ADMIN_ROLE, "kms:ScheduleKeyDeletion"),
        Decision::Allow
    );
    assert_eq!(
        decide_plain(&policy, ADMIN_SESSION, "kms:ScheduleKeyDeletion"),
        Decision::Allow
    );
    assert_eq!(decide_plain(&policy, ALICE, "kms:Encrypt"), Decision::Allow);
}

#[test]
fn not_principal_allow_excludes() {
    let policy = KeyPolicy::parse(
        r#"{"Statement": {"Effect": "Allow", "NotPrincipal": {"AWS": "arn:aws:iam::111122223333:user/bob"}, "Action": "kms:Encrypt", "Resource": "*"}}"#,
    )
    .unwrap();
    assert_eq!(decide_plain(&policy, ALICE, "kms:Encrypt"), Decision::Allow);
    assert_eq!(decide_plain(&policy, EVE, "kms:Encrypt"), Decision::Allow);
    assert_eq!(
        decide_plain(&policy, BOB, "kms:Encrypt"),
        Decision::ImplicitDeny
    );
}

#[test]
fn resources_and_not_resources() {
    let policy = KeyPolicy::parse(&format!(
        r#"{{"Statement": [{{"Effect": "Allow", "Principal": "*", "Action": "kms:Encrypt", "Resource": "{KEY}"}},
            {{"Effect": "Allow", "Principal": "*", "Action": "kms:Decrypt", "NotResource": "arn:aws:kms:*:111122223333:key/*"}}]}}"#
    ))
    .unwrap();
    let request = |action, resource| {
        policy.evaluate(&RequestContext {
            action,
            principal: ALICE,
            principal_account: ACCOUNT,
            resource,
            conditions: &(),
        })
    };
    assert_eq!(request("kms:Encrypt", KEY), Decision::Allow);
    assert_eq!(
        request(
            "kms:Encrypt",
            "arn:aws:kms:us-east-1:111122223333:key/other"
        ),
        Decision::ImplicitDeny
    );
    assert_eq!(request("kms:Decrypt", KEY), Decision::ImplicitDeny);
    assert_eq!(
        request("kms:Decrypt", "arn:aws:kms:us-east-1:444455556666:key/x"),
        Decision::Allow
    );
}

#[test]
fn cross_account_access() {
    let policy = KeyPolicy::parse(
        r#"{"Statement": [
        {"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::111122223333:root"}, "Action": "kms:*", "Resource": "*"},
        {"Sid": "Partner", "Effect": "Allow", "Principal": {"AWS": ["444455556666"]}, "Action": ["kms:Encrypt", "kms:DescribeKey"], "Resource": "*"}
    ]}"#,
    )
    .unwrap();
    assert_eq!(decide_plain(&policy, EVE, "kms:Encrypt"), Decision::Allow);
    assert_eq!(
        decide_plain(&policy, EVE, "kms:Decrypt"),
        Decision::ImplicitDeny
    );
    assert_eq!(
        decide_plain(&policy, "arn:aws:iam::444455556666:root", "kms:DescribeKey"),
        Decision::Allow
    );
    assert_eq!(decide_plain(&policy, ALICE, "kms:Decrypt"), Decision::Allow);
    assert_eq!(
        decide_plain(&policy, "arn:aws:iam::777788889999:user/x", "kms:Encrypt"),
        Decision::ImplicitDeny
    );
}

#[test]
fn via_service_and_caller_account_like_a_managed_key() {
    let policy = KeyPolicy::parse(
        r#"{"Version": "2012-10-17", "Id": "auto-ebs-2", "Statement": [
        {"Sid": "Allow access through EBS for all principals in the account that are authorized to use EBS",
         "Effect": "Allow", "Principal": {"AWS": "*"},
         "Action": ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:CreateGrant", "kms:DescribeKey"],
         "Resource": "*",
         "Condition": {"StringEquals": {"kms:CallerAccount": "111122223333", "kms:ViaService": "ec2.us-east-1.amazonaws.com"}}},
        {"Sid": "Allow direct access to key metadata to the account", "Effect": "Allow",
         "Principal": {"AWS": "arn:aws:iam::111122223333:root"},
         "Action": ["kms:Describe*", "kms:Get*", "kms:List*", "kms:RevokeGrant"], "Resource": "*"}
    ]}"#,
    )
    .unwrap();
    let via_ec2 = Conditions::default().with("kms:ViaService", &["ec2.us-east-1.amazonaws.com"]);
    let via_s3 = Conditions::default().with("kms:ViaService", &["s3.us-east-1.amazonaws.com"]);
    assert_eq!(
        decide(&policy, ALICE, "kms:Decrypt", &via_ec2),
        Decision::Allow
    );
    assert_eq!(
        decide(&policy, ALICE, "kms:Decrypt", &via_s3),
        Decision::ImplicitDeny
    );
    assert_eq!(
        decide_plain(&policy, ALICE, "kms:Decrypt"),
        Decision::ImplicitDeny
    );
    // kms:CallerAccount comes from the request when the context does not supply it.
    assert_eq!(
        decide(&policy, EVE, "kms:Decrypt", &via_ec2),
        Decision::ImplicitDeny
    );
    assert_eq!(
        decide_plain(&policy, ALICE, "kms:GetKeyPolicy"),
        Decision::Allow
    );
}

#[test]
fn service_principals() {
    let policy = KeyPolicy::parse(
        r#"{"Statement": {"Effect": "Allow", "Principal": {"Service": "logs.us-east-1.amazonaws.com"},
        "Action": ["kms:Encrypt*", "kms:Decrypt*", "kms:GenerateDataKey*"], "Resource": "*",
        "Condition": {"ArnLike": {"kms:EncryptionContext:aws:logs:arn": "arn:aws:logs:us-east-1:111122223333:log-group:*"}}}}"#,
    )
    .unwrap();
    let group = Conditions::default().with(
        "kms:EncryptionContext:aws:logs:arn",
        &["arn:aws:logs:us-east-1:111122223333:log-group:app"],
    );
    let other = Conditions::default().with(
        "kms:EncryptionContext:aws:logs:arn",
        &["arn:aws:logs:us-east-1:444455556666:log-group:app"],
    );
    let logs = "logs.us-east-1.amazonaws.com";
    let request = |principal, context: &Conditions<'_>| {
        policy.evaluate(&RequestContext {
            action: "kms:GenerateDataKey",
            principal,
            principal_account: "",
            resource: KEY,
            conditions: context,
        })
    };
    assert_eq!(request(logs, &group), Decision::Allow);
    assert_eq!(request(logs, &other), Decision::ImplicitDeny);
    assert_eq!(request("ec2.amazonaws.com", &group), Decision::ImplicitDeny);
    assert_eq!(request(ALICE, &group), Decision::ImplicitDeny);
}

#[test]
fn request_alias_key_spec_usage_algorithm_and_grant_operations() {
    let policy = KeyPolicy::parse(
        r#"{"Version": "2012-10-17", "Statement": [
        {"Sid": "Via alias", "Effect": "Allow", "Principal": {"AWS": "111122223333"}, "Action": "kms:Encrypt", "Resource": "*",
         "Condition": {"StringLike": {"kms:RequestAlias": "alias/app-*"}, "StringEquals": {"kms:KeySpec": "SYMMETRIC_DEFAULT", "kms:KeyUsage": "ENCRYPT_DECRYPT"}}},
        {"Sid": "No RSA PKCS1", "Effect": "Deny", "Principal": "*", "Action": "kms:Decrypt", "Resource": "*",
         "Condition": {"StringNotEquals": {"kms:EncryptionAlgorithm": ["SYMMETRIC_DEFAULT", "RSAES_OAEP_SHA_256"]}}},
        {"Sid": "Grants for decrypt only", "Effect": "Allow", "Principal": {"AWS": "111122223333"}, "Action": ["kms:CreateGrant", "kms:Decrypt"], "Resource": "*",
         "Condition": {"ForAllValues:StringEquals": {"kms:GrantOperations": ["Decrypt", "RetireGrant"]}}}
    ]}"#,
    )
    .unwrap();
    let alias = Conditions::default()
        .with("kms:RequestAlias", &["alias/app-orders"])
        .with("kms:KeySpec", &["SYMMETRIC_DEFAULT"])
        .with("kms:KeyUsage", &["ENCRYPT_DECRYPT"]);
    let no_alias = Conditions::default()
        .with("kms:KeySpec", &["SYMMETRIC_DEFAULT"])
        .with("kms:KeyUsage", &["ENCRYPT_DECRYPT"]);
    assert_eq!(
        decide(&policy, ALICE, "kms:Encrypt", &alias),
        Decision::Allow
    );
    assert_eq!(
        decide(&policy, ALICE, "kms:Encrypt", &no_alias),
        Decision::ImplicitDeny
    );

    let decrypt_ok = Conditions::default().with("kms:EncryptionAlgorithm", &["SYMMETRIC_DEFAULT"]);
    let decrypt_bad = Conditions::default().with("kms:EncryptionAlgorithm", &["RSAES_OAEP_SHA_1"]);
    // ForAllValues over an absent kms:GrantOperations is true: Decrypt itself is allowed.
    assert_eq!(
        decide(&policy, ALICE, "kms:Decrypt", &decrypt_ok),
        Decision::Allow
    );
    assert_eq!(
        decide(&policy, ALICE, "kms:Decrypt", &decrypt_bad),
        Decision::ExplicitDeny
    );
    // And a Decrypt without the key is denied: StringNotEquals holds for an absent key.
    assert_eq!(
        decide_plain(&policy, ALICE, "kms:Decrypt"),
        Decision::ExplicitDeny
    );

    let grant_ok = Conditions::default().with("kms:GrantOperations", &["Decrypt", "RetireGrant"]);
    let grant_bad = Conditions::default().with("kms:GrantOperations", &["Decrypt", "Encrypt"]);
    assert_eq!(
        decide(&policy, ALICE, "kms:CreateGrant", &grant_ok),
        Decision::Allow
    );
    assert_eq!(
        decide(&policy, ALICE, "kms:CreateGrant", &grant_bad),
        Decision::ImplicitDeny
    );
}

#[test]
fn action_names_match_without_regard_to_case() {
    let policy = KeyPolicy::parse(
        r#"{"Statement": {"Effect": "Allow", "Principal": "*", "Action": "KMS:generatedatakey*", "Resource": "*"}}"#,
    )
    .unwrap();
    assert_eq!(
        decide_plain(&policy, ALICE, "kms:GenerateDataKeyPair"),
        Decision::Allow
    );
    assert_eq!(
        decide_plain(&policy, ALICE, "kms:generatedatakey"),
        Decision::Allow
    );
    assert_eq!(
        decide_plain(&policy, ALICE, "kms:Encrypt"),
        Decision::ImplicitDeny
    );
}

#[test]
fn principal_arn_conditions_use_the_caller() {
    let policy = KeyPolicy::parse(
        r#"{"Statement": {"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "kms:Decrypt", "Resource": "*",
        "Condition": {"ArnLike": {"aws:PrincipalArn": "arn:aws:iam::111122223333:role/App*"}}}}"#,
    )
    .unwrap();
    assert_eq!(
        decide_plain(
            &policy,
            "arn:aws:iam::111122223333:role/AppReader",
            "kms:Decrypt"
        ),
        Decision::Allow
    );
    assert_eq!(
        decide_plain(&policy, ALICE, "kms:Decrypt"),
        Decision::ImplicitDeny
    );
}

#[test]
fn the_document_is_kept_verbatim() {
    let policy = KeyPolicy::parse(ADMINS_AND_USERS).unwrap();
    assert_eq!(policy.document(), ADMINS_AND_USERS);
    let copy = policy.clone();
    assert_eq!(decide_plain(&copy, ALICE, "kms:Encrypt"), Decision::Allow);
    assert!(format!(
        "{:?}",
        RequestContext {
            action: "kms:Encrypt",
            principal: ALICE,
            principal_account: ACCOUNT,
            resource: KEY,
            conditions: &(),
        }
    )
    .contains("kms:Encrypt"));
}
