//! Key policy templates.
//!
//! The service's default key policy ([`super::default_policy`]) gives `kms:*` to the account's
//! root principal, and so to every principal of the account: each of them administers and uses
//! every key. [`separated`] is the least-privilege shape the service's documentation recommends
//! instead: key administrators who manage the key but cannot use it, and key users who use it but
//! cannot manage it.

use crate::access::Caller;
use crate::error::{validation, Result};

/// What key administrators may do: manage the key, its policy, grants, tags, rotation and
/// deletion; not use it for cryptography.
pub const ADMIN_ACTIONS: &[&str] = &[
    "kms:Create*",
    "kms:Describe*",
    "kms:Enable*",
    "kms:List*",
    "kms:Put*",
    "kms:Update*",
    "kms:Revoke*",
    "kms:Disable*",
    "kms:Get*",
    "kms:Delete*",
    "kms:TagResource",
    "kms:UntagResource",
    "kms:ScheduleKeyDeletion",
    "kms:CancelKeyDeletion",
    "kms:RotateKeyOnDemand",
];

/// What key users may do: the cryptographic operations (of every key type) and DescribeKey.
pub const USER_ACTIONS: &[&str] = &[
    "kms:Encrypt",
    "kms:Decrypt",
    "kms:ReEncrypt*",
    "kms:GenerateDataKey*",
    "kms:DescribeKey",
    "kms:Sign",
    "kms:Verify",
    "kms:GetPublicKey",
    "kms:GenerateMac",
    "kms:VerifyMac",
    "kms:DeriveSharedSecret",
];

/// A key policy that separates key administrators (`admins`) from key users (`users`), as the
/// service's documentation describes: administrators get [`ADMIN_ACTIONS`], users get
/// [`USER_ACTIONS`], and users may create, list and revoke grants only for an integrated
/// service acting for them (`kms:GrantIsForAWSResource`). The account's root principal is not
/// named, so no one else may do anything with the key; an administrator creating the key (or
/// putting the policy) passes the lockout check.
///
/// Note that `kms:Create*` lets an administrator create a grant, and so give itself (or anyone)
/// the key's uses: administrators are trusted with the key, they just do not use it day to day.
///
/// Errors: no administrator (the key could never be managed), or an entry that is not a
/// principal ARN.
pub fn separated(admins: &[&str], users: &[&str]) -> Result<String> {
    if admins.is_empty() {
        return Err(validation!(
            "a key policy needs at least one key administrator, or no one could manage the key"
        ));
    }
    for principal in admins.iter().chain(users) {
        Caller::new(principal)?;
    }
    let mut statements = vec![serde_json::json!({
        "Sid": "Allow access for Key Administrators",
        "Effect": "Allow",
        "Principal": { "AWS": admins },
        "Action": ADMIN_ACTIONS,
        "Resource": "*"
    })];
    if !users.is_empty() {
        statements.push(serde_json::json!({
            "Sid": "Allow use of the key",
            "Effect": "Allow",
            "Principal": { "AWS": users },
            "Action": USER_ACTIONS,
            "Resource": "*"
        }));
        statements.push(serde_json::json!({
            "Sid": "Allow attachment of persistent resources",
            "Effect": "Allow",
            "Principal": { "AWS": users },
            "Action": ["kms:CreateGrant", "kms:ListGrants", "kms:RevokeGrant"],
            "Resource": "*",
            "Condition": { "Bool": { "kms:GrantIsForAWSResource": "true" } }
        }));
    }
    let document = serde_json::json!({
        "Version": "2012-10-17",
        "Id": "key-separated-1",
        "Statement": statements,
    });
    Ok(serde_json::to_string_pretty(&document).expect("a JSON value always serializes"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::KeyPolicy;

    #[test]
    fn the_template_parses_and_refuses_bad_principals() {
        let doc = separated(
            &["arn:aws:iam::111122223333:role/KeyAdmin"],
            &["arn:aws:iam::111122223333:role/app"],
        )
        .unwrap();
        KeyPolicy::parse(&doc).unwrap();
        KeyPolicy::parse(&separated(&["arn:aws:iam::111122223333:role/a"], &[]).unwrap()).unwrap();
        assert_eq!(
            separated(&[], &["arn:aws:iam::111122223333:role/app"])
                .unwrap_err()
                .code(),
            "ValidationException"
        );
        assert_eq!(
            separated(&["arn:aws:iam::111122223333:role/a"], &["bob"])
                .unwrap_err()
                .code(),
            "ValidationException"
        );
    }
}
