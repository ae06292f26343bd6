//! The role matrix of issue 5: five principals against every operation of the engine, on an engine
//! with an audit log.
//!
//! The keys carry a policy in the service's recommended shape: a key-administrators statement
//! (Create*, Describe*, Enable*, List*, Put*, Update*, Revoke*, Disable*, Get*, Delete*,
//! TagResource, UntagResource, ScheduleKeyDeletion, CancelKeyDeletion, RotateKeyOnDemand, ...), a
//! key-users statement (Encrypt, Decrypt, ReEncrypt*, GenerateDataKey*, DescribeKey and the
//! asymmetric/HMAC/agreement uses), and a grants statement for the users conditioned on
//! `kms:GrantIsForAWSResource` (never true for a direct call). A `setup` role with `kms:*` builds
//! the fixtures; it is not one of the roles under test.
//!
//! Roles: the administrator, the key user, a grantee (no statement; grants for some operations),
//! a stranger (same account, not named), and another account's root. What each may do is worked
//! out by a small model of the policy above (wildcard actions, grants, account-level calls, the
//! grant retirement rules) that shares no code with the engine. Every call the model allows must
//! succeed, every other one must fail with AccessDeniedException; then the audit log must verify
//! and hold exactly one record per call, with its principal, operation and error code.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};

use keyplane::audit::{generate_signing_key, verify, AuditConfig, Verdict};
use keyplane::key::{KeyAgreementAlgorithm, MacAlgorithm, MessageType, SigningAlgorithm};
use keyplane::{
    Caller, CreateGrantRequest, CreateKeyRequest, DataKeyPairSpec, DataKeySpec, DecryptRequest,
    DeriveSharedSecretRequest, EncryptRequest, EncryptionAlgorithm, Engine, Error,
    GenerateDataKeyPairRequest, GenerateDataKeyRequest, GenerateMacRequest, GrantOperation,
    KeySpec, KeyUsage, ReEncryptRequest, SignRequest, Tag, VerifyMacRequest, VerifyRequest,
};
use serde_json::{json, Value};

const SETUP: &str = "arn:aws:iam::111122223333:role/setup";
const ADMIN: &str = "arn:aws:iam::111122223333:role/KeyAdmin";
const USER: &str = "arn:aws:iam::111122223333:role/app";
const GRANTEE: &str = "arn:aws:iam::111122223333:role/grantee";
const STRANGER: &str = "arn:aws:iam::111122223333:user/stranger";
const OTHER: &str = "arn:aws:iam::444455556666:root";
/// A principal that is given (and loses) grants in the fixtures; never calls.
const VICTIM: &str = "arn:aws:iam::111122223333:role/victim";

const ADMIN_ACTIONS: &[&str] = &[
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
    "kms:EnableKeyRotation",
    "kms:DisableKeyRotation",
];

const USER_ACTIONS: &[&str] = &[
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

fn matrix_policy() -> String {
    json!({
        "Version": "2012-10-17",
        "Id": "key-consolepolicy-matrix",
        "Statement": [
            {
                "Sid": "Fixture setup",
                "Effect": "Allow",
                "Principal": { "AWS": SETUP },
                "Action": "kms:*",
                "Resource": "*"
            },
            {
                "Sid": "Allow access for Key Administrators",
                "Effect": "Allow",
                "Principal": { "AWS": ADMIN },
                "Action": ADMIN_ACTIONS,
                "Resource": "*"
            },
            {
                "Sid": "Allow use of the key",
                "Effect": "Allow",
                "Principal": { "AWS": [USER] },
                "Action": USER_ACTIONS,
                "Resource": "*"
            },
            {
                "Sid": "Allow attachment of persistent resources",
                "Effect": "Allow",
                "Principal": { "AWS": USER },
                "Action": ["kms:CreateGrant", "kms:ListGrants", "kms:RevokeGrant"],
                "Resource": "*",
                "Condition": { "Bool": { "kms:GrantIsForAWSResource": "true" } }
            }
        ]
    })
    .to_string()
}

// ---- the model ----------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Role {
    Admin,
    User,
    Grantee,
    Stranger,
    Other,
}

const ROLES: [Role; 5] = [
    Role::Admin,
    Role::User,
    Role::Grantee,
    Role::Stranger,
    Role::Other,
];

impl Role {
    fn principal(self) -> &'static str {
        match self {
            Role::Admin => ADMIN,
            Role::User => USER,
            Role::Grantee => GRANTEE,
            Role::Stranger => STRANGER,
            Role::Other => OTHER,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::User => "user",
            Role::Grantee => "grantee",
            Role::Stranger => "stranger",
            Role::Other => "other-acct",
        }
    }

    fn same_account(self) -> bool {
        self != Role::Other
    }

    /// The unconditional actions the key policy gives this role.
    fn policy_actions(self) -> &'static [&'static str] {
        match self {
            Role::Admin => ADMIN_ACTIONS,
            Role::User => USER_ACTIONS,
            _ => &[],
        }
    }
}

/// The fixture keys an operation touches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum K {
    Sym,
    Sym2,
    Pending,
    Rsa,
    Sign,
    Hmac,
    Agree,
}

/// The grants the grantee holds, per key (`GrantOperation` names).
fn grantee_grants(key: K) -> &'static [&'static str] {
    match key {
        K::Sym => &[
            "Encrypt",
            "Decrypt",
            "GenerateDataKey",
            "DescribeKey",
            "ReEncryptFrom",
        ],
        K::Rsa => &["Encrypt"],
        K::Sign => &["Sign", "GetPublicKey"],
        K::Hmac => &["GenerateMac"],
        K::Agree => &["DeriveSharedSecret"],
        K::Sym2 | K::Pending => &[],
    }
}

/// `kms:Foo*` matches actions starting with `kms:Foo`; anything else matches itself.
fn action_matches(pattern: &str, action: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => action.starts_with(prefix),
        None => pattern == action,
    }
}

/// What an operation needs.
enum Need {
    /// An account-level call: any principal of the engine's account.
    Account,
    /// These actions on these keys.
    Key(&'static [(K, &'static str)]),
    /// RetireGrant of a grant whose retiring principal is the grantee role.
    RetiringPrincipal,
}

fn model_allows(role: Role, need: &Need) -> bool {
    match need {
        Need::Account => role.same_account(),
        Need::RetiringPrincipal => role == Role::Grantee,
        Need::Key(needs) => needs.iter().all(|(key, action)| {
            let by_policy = role
                .policy_actions()
                .iter()
                .any(|p| action_matches(p, action));
            let by_grant = role == Role::Grantee
                && grantee_grants(*key)
                    .iter()
                    .any(|op| format!("kms:{op}") == *action);
            by_policy || by_grant
        }),
    }
}

// ---- fixtures -----------------------------------------------------------------------------------

/// Keys and artefacts an operation works on. Operations that change what others rely on get a
/// fresh copy of the symmetric part; the asymmetric keys are shared.
#[derive(Clone)]
struct Keys {
    sym: String,
    sym2: String,
    alias: String,
    pending: String,
    blob: Vec<u8>,
    revoke_grant: String,
    retire_token: String,
    rsa: String,
    rsa_blob: Vec<u8>,
    sign: String,
    signature: Vec<u8>,
    hmac: String,
    mac: Vec<u8>,
    agree: String,
    peer: Vec<u8>,
}

fn create(setup: &Engine, spec: KeySpec, usage: KeyUsage) -> String {
    setup
        .create_key(CreateKeyRequest {
            key_spec: Some(spec),
            key_usage: Some(usage),
            policy: Some(matrix_policy()),
            description: Some(format!("matrix {spec} {usage}")),
            ..Default::default()
        })
        .unwrap_or_else(|e| panic!("setup creates a {spec} key: {e}"))
        .key_id
}

fn grant(setup: &Engine, key: &str, grantee: &str, ops: &[GrantOperation], retiring: Option<&str>) {
    setup
        .create_grant(CreateGrantRequest {
            key_id: key.to_owned(),
            grantee_principal: grantee.to_owned(),
            retiring_principal: retiring.map(str::to_owned),
            operations: ops.to_vec(),
            constraints: None,
            name: None,
        })
        .unwrap();
}

fn ops_of(names: &[&str]) -> Vec<GrantOperation> {
    names.iter().map(|n| n.parse().unwrap()).collect()
}

static UNIQUE: AtomicUsize = AtomicUsize::new(0);

fn unique() -> usize {
    UNIQUE.fetch_add(1, Ordering::Relaxed)
}

impl Keys {
    /// The shared asymmetric keys, with their grants and artefacts, and a first symmetric part.
    fn new(setup: &Engine) -> Keys {
        let rsa = create(setup, KeySpec::Rsa2048, KeyUsage::EncryptDecrypt);
        let sign = create(setup, KeySpec::EccNistP256, KeyUsage::SignVerify);
        let hmac = create(setup, KeySpec::Hmac256, KeyUsage::GenerateVerifyMac);
        let agree = create(setup, KeySpec::EccNistP256, KeyUsage::KeyAgreement);
        let peer_key = create(setup, KeySpec::EccNistP256, KeyUsage::KeyAgreement);
        for (id, kind) in [
            (&rsa, K::Rsa),
            (&sign, K::Sign),
            (&hmac, K::Hmac),
            (&agree, K::Agree),
        ] {
            grant(setup, id, GRANTEE, &ops_of(grantee_grants(kind)), None);
        }
        let rsa_blob = setup
            .encrypt(&EncryptRequest {
                encryption_algorithm: EncryptionAlgorithm::RsaesOaepSha256,
                ..EncryptRequest::new(&rsa, b"rsa secret")
            })
            .unwrap()
            .ciphertext_blob;
        let signature = setup
            .sign(&SignRequest::new(
                &sign,
                b"matrix message",
                SigningAlgorithm::EcdsaSha256,
            ))
            .unwrap()
            .signature;
        let mac = setup
            .generate_mac(&GenerateMacRequest {
                key_id: &hmac,
                message: b"matrix message",
                mac_algorithm: MacAlgorithm::HmacSha256,
            })
            .unwrap()
            .mac;
        let peer = setup.get_public_key(&peer_key).unwrap().public_key;
        let mut keys = Keys {
            sym: String::new(),
            sym2: String::new(),
            alias: String::new(),
            pending: String::new(),
            blob: Vec::new(),
            revoke_grant: String::new(),
            retire_token: String::new(),
            rsa,
            rsa_blob,
            sign,
            signature,
            hmac,
            mac,
            agree,
            peer,
        };
        keys.refresh_symmetric(setup);
        keys
    }

    /// A copy with a new symmetric part.
    fn fresh(&self, setup: &Engine) -> Keys {
        let mut keys = self.clone();
        keys.refresh_symmetric(setup);
        keys
    }

    fn refresh_symmetric(&mut self, setup: &Engine) {
        let n = unique();
        self.sym = create(setup, KeySpec::SymmetricDefault, KeyUsage::EncryptDecrypt);
        self.sym2 = create(setup, KeySpec::SymmetricDefault, KeyUsage::EncryptDecrypt);
        self.alias = format!("alias/matrix-{n}");
        setup.create_alias(&self.alias, &self.sym).unwrap();
        grant(
            setup,
            &self.sym,
            GRANTEE,
            &ops_of(grantee_grants(K::Sym)),
            None,
        );
        self.revoke_grant = setup
            .create_grant(CreateGrantRequest {
                key_id: self.sym.clone(),
                grantee_principal: VICTIM.into(),
                retiring_principal: None,
                operations: vec![GrantOperation::Encrypt],
                constraints: None,
                name: Some("to-revoke".into()),
            })
            .unwrap()
            .grant_id;
        self.retire_token = setup
            .create_grant(CreateGrantRequest {
                key_id: self.sym.clone(),
                grantee_principal: VICTIM.into(),
                retiring_principal: Some(GRANTEE.into()),
                operations: vec![GrantOperation::Decrypt],
                constraints: None,
                name: Some("to-retire".into()),
            })
            .unwrap()
            .grant_token;
        self.pending = create(setup, KeySpec::SymmetricDefault, KeyUsage::EncryptDecrypt);
        setup.schedule_key_deletion(&self.pending, Some(7)).unwrap();
        self.blob = setup
            .encrypt(&EncryptRequest::new(&self.sym, b"matrix secret"))
            .unwrap()
            .ciphertext_blob;
    }
}

// ---- operations ---------------------------------------------------------------------------------

type Run = fn(&Engine, &Keys) -> Result<(), Error>;

struct Op {
    label: &'static str,
    /// The operation name its audit record carries.
    event: &'static str,
    need: Need,
    /// Whether the call changes what other calls rely on (it gets fresh symmetric keys).
    fresh: bool,
    run: Run,
}

/// A batch as one outcome: all items succeeded, or all failed with one error code.
fn all<T>(results: Vec<Result<T, Error>>) -> Result<(), Error> {
    assert!(!results.is_empty());
    let errors: Vec<Error> = results.into_iter().filter_map(Result::err).collect();
    match errors.first() {
        None => Ok(()),
        Some(first) if errors.iter().all(|e| e.code() == first.code()) => Err(first.clone()),
        Some(_) => Err(Error::Internal(format!(
            "a batch failed with mixed errors: {errors:?}"
        ))),
    }
}

fn tag(k: &str, v: &str) -> Tag {
    Tag {
        tag_key: k.into(),
        tag_value: v.into(),
    }
}

fn operations() -> Vec<Op> {
    use Need::*;
    use K::*;
    fn op(label: &'static str, event: &'static str, need: Need, run: Run) -> Op {
        Op {
            label,
            event,
            need,
            fresh: false,
            run,
        }
    }
    fn fresh(label: &'static str, event: &'static str, need: Need, run: Run) -> Op {
        Op {
            fresh: true,
            ..op(label, event, need, run)
        }
    }
    vec![
        // Account-level calls.
        op("CreateKey", "CreateKey", Account, |e, _| {
            e.create_key(CreateKeyRequest::default()).map(drop)
        }),
        op("ManagedKey(s3)", "CreateKey", Account, |e, _| {
            e.managed_key("s3").map(drop)
        }),
        op("ListKeys", "ListKeys", Account, |e, _| {
            e.list_keys(None, None).map(drop)
        }),
        op("ListAliases", "ListAliases", Account, |e, _| {
            e.list_aliases(None, None, None).map(drop)
        }),
        op(
            "ListRetirableGrants",
            "ListRetirableGrants",
            Account,
            |e, _| e.list_retirable_grants(GRANTEE, None, None).map(drop),
        ),
        op("GenerateRandom", "GenerateRandom", Account, |e, _| {
            e.generate_random(32).map(drop)
        }),
        op(
            "GenerateRandom[batch]",
            "GenerateRandom",
            Account,
            |e, _| all(e.generate_random_batch(&[16, 32, 8])),
        ),
        // Key administration.
        op(
            "DescribeKey",
            "DescribeKey",
            Key(&[(Sym, "kms:DescribeKey")]),
            |e, k| e.describe_key(&k.sym).map(drop),
        ),
        op(
            "DescribeKey(alias)",
            "DescribeKey",
            Key(&[(Sym, "kms:DescribeKey")]),
            |e, k| e.describe_key(&k.alias).map(drop),
        ),
        op(
            "UpdateKeyDescription",
            "UpdateKeyDescription",
            Key(&[(Sym, "kms:UpdateKeyDescription")]),
            |e, k| e.update_key_description(&k.sym, "changed"),
        ),
        op(
            "EnableKey",
            "EnableKey",
            Key(&[(Sym, "kms:EnableKey")]),
            |e, k| e.enable_key(&k.sym),
        ),
        fresh(
            "DisableKey",
            "DisableKey",
            Key(&[(Sym, "kms:DisableKey")]),
            |e, k| e.disable_key(&k.sym),
        ),
        op(
            "TagResource",
            "TagResource",
            Key(&[(Sym, "kms:TagResource")]),
            |e, k| e.tag_resource(&k.sym, vec![tag("team", "matrix")]),
        ),
        op(
            "UntagResource",
            "UntagResource",
            Key(&[(Sym, "kms:UntagResource")]),
            |e, k| e.untag_resource(&k.sym, &["team"]),
        ),
        op(
            "ListResourceTags",
            "ListResourceTags",
            Key(&[(Sym, "kms:ListResourceTags")]),
            |e, k| e.list_resource_tags(&k.sym, None, None).map(drop),
        ),
        op(
            "CreateAlias",
            "CreateAlias",
            Key(&[(Sym, "kms:CreateAlias")]),
            |e, k| e.create_alias(&format!("alias/created-{}", unique()), &k.sym),
        ),
        fresh(
            "UpdateAlias",
            "UpdateAlias",
            Key(&[(Sym, "kms:UpdateAlias"), (Sym2, "kms:UpdateAlias")]),
            |e, k| e.update_alias(&k.alias, &k.sym2),
        ),
        fresh(
            "DeleteAlias",
            "DeleteAlias",
            Key(&[(Sym, "kms:DeleteAlias")]),
            |e, k| e.delete_alias(&k.alias),
        ),
        fresh(
            "ScheduleKeyDeletion",
            "ScheduleKeyDeletion",
            Key(&[(Sym, "kms:ScheduleKeyDeletion")]),
            |e, k| e.schedule_key_deletion(&k.sym, Some(7)).map(drop),
        ),
        fresh(
            "CancelKeyDeletion",
            "CancelKeyDeletion",
            Key(&[(Pending, "kms:CancelKeyDeletion")]),
            |e, k| e.cancel_key_deletion(&k.pending).map(drop),
        ),
        op(
            "EnableKeyRotation",
            "EnableKeyRotation",
            Key(&[(Sym, "kms:EnableKeyRotation")]),
            |e, k| e.enable_key_rotation(&k.sym, Some(180)),
        ),
        op(
            "DisableKeyRotation",
            "DisableKeyRotation",
            Key(&[(Sym, "kms:DisableKeyRotation")]),
            |e, k| e.disable_key_rotation(&k.sym),
        ),
        op(
            "GetKeyRotationStatus",
            "GetKeyRotationStatus",
            Key(&[(Sym, "kms:GetKeyRotationStatus")]),
            |e, k| e.get_key_rotation_status(&k.sym).map(drop),
        ),
        fresh(
            "RotateKeyOnDemand",
            "RotateKeyOnDemand",
            Key(&[(Sym, "kms:RotateKeyOnDemand")]),
            |e, k| e.rotate_key_on_demand(&k.sym).map(drop),
        ),
        op(
            "ListKeyRotations",
            "ListKeyRotations",
            Key(&[(Sym, "kms:ListKeyRotations")]),
            |e, k| e.list_key_rotations(&k.sym, None, None).map(drop),
        ),
        op(
            "GetKeyPolicy",
            "GetKeyPolicy",
            Key(&[(Sym, "kms:GetKeyPolicy")]),
            |e, k| e.get_key_policy(&k.sym, None).map(drop),
        ),
        fresh(
            "PutKeyPolicy",
            "PutKeyPolicy",
            Key(&[(Sym, "kms:PutKeyPolicy")]),
            |e, k| e.put_key_policy(&k.sym, &matrix_policy(), None, false),
        ),
        op(
            "ListKeyPolicies",
            "ListKeyPolicies",
            Key(&[(Sym, "kms:ListKeyPolicies")]),
            |e, k| e.list_key_policies(&k.sym).map(drop),
        ),
        op(
            "GetKeyLastUsage",
            "GetKeyLastUsage",
            Key(&[(Sym, "kms:GetKeyLastUsage")]),
            |e, k| e.get_key_last_usage(&k.sym).map(drop),
        ),
        // Grants.
        op(
            "CreateGrant",
            "CreateGrant",
            Key(&[(Sym, "kms:CreateGrant")]),
            |e, k| {
                e.create_grant(CreateGrantRequest {
                    key_id: k.sym.clone(),
                    grantee_principal: VICTIM.into(),
                    retiring_principal: None,
                    operations: vec![GrantOperation::Encrypt],
                    constraints: None,
                    name: None,
                })
                .map(drop)
            },
        ),
        op(
            "ListGrants",
            "ListGrants",
            Key(&[(Sym, "kms:ListGrants")]),
            |e, k| e.list_grants(&k.sym, None, None, None, None).map(drop),
        ),
        fresh(
            "RevokeGrant",
            "RevokeGrant",
            Key(&[(Sym, "kms:RevokeGrant")]),
            |e, k| e.revoke_grant(&k.sym, &k.revoke_grant),
        ),
        fresh("RetireGrant", "RetireGrant", RetiringPrincipal, |e, k| {
            e.retire_grant(Some(&k.retire_token), None, None)
        }),
        // Symmetric data plane.
        op(
            "Encrypt",
            "Encrypt",
            Key(&[(Sym, "kms:Encrypt")]),
            |e, k| e.encrypt(&EncryptRequest::new(&k.sym, b"hello")).map(drop),
        ),
        op(
            "Encrypt(alias)",
            "Encrypt",
            Key(&[(Sym, "kms:Encrypt")]),
            |e, k| {
                e.encrypt(&EncryptRequest::new(&k.alias, b"hello"))
                    .map(drop)
            },
        ),
        op(
            "Encrypt[batch]",
            "Encrypt",
            Key(&[(Sym, "kms:Encrypt")]),
            |e, k| {
                let requests: Vec<_> = (0..3)
                    .map(|_| EncryptRequest::new(&k.sym, b"batch item"))
                    .collect();
                all(e.encrypt_batch(&requests))
            },
        ),
        op(
            "Encrypt[batch-into]",
            "Encrypt",
            Key(&[(Sym, "kms:Encrypt")]),
            |e, k| {
                let requests: Vec<_> = (0..2)
                    .map(|_| EncryptRequest::new(&k.sym, b"batch item"))
                    .collect();
                let mut buffers = vec![vec![0u8; 256]; 2];
                let mut outputs: Vec<&mut [u8]> =
                    buffers.iter_mut().map(|b| b.as_mut_slice()).collect();
                all(e.encrypt_batch_into(&requests, &mut outputs).into_results())
            },
        ),
        op(
            "Decrypt",
            "Decrypt",
            Key(&[(Sym, "kms:Decrypt")]),
            |e, k| e.decrypt(&DecryptRequest::new(&k.blob)).map(drop),
        ),
        op(
            "Decrypt[batch]",
            "Decrypt",
            Key(&[(Sym, "kms:Decrypt")]),
            |e, k| {
                let requests = vec![DecryptRequest::new(&k.blob); 3];
                all(e.decrypt_batch(&requests))
            },
        ),
        op(
            "Decrypt[batch-into]",
            "Decrypt",
            Key(&[(Sym, "kms:Decrypt")]),
            |e, k| {
                let requests = vec![DecryptRequest::new(&k.blob).with_key_id(&k.sym); 2];
                let mut buffers = vec![vec![0u8; 64]; 2];
                let mut outputs: Vec<&mut [u8]> =
                    buffers.iter_mut().map(|b| b.as_mut_slice()).collect();
                all(e.decrypt_batch_into(&requests, &mut outputs).into_results())
            },
        ),
        op(
            "ReEncrypt",
            "ReEncrypt",
            Key(&[(Sym, "kms:ReEncryptFrom"), (Sym2, "kms:ReEncryptTo")]),
            |e, k| {
                e.re_encrypt(&ReEncryptRequest::new(&k.blob, &k.sym2))
                    .map(drop)
            },
        ),
        op(
            "ReEncrypt[batch]",
            "ReEncrypt",
            Key(&[(Sym, "kms:ReEncryptFrom"), (Sym2, "kms:ReEncryptTo")]),
            |e, k| {
                let requests = vec![ReEncryptRequest::new(&k.blob, &k.sym2); 2];
                all(e.re_encrypt_batch(&requests))
            },
        ),
        op(
            "GenerateDataKey",
            "GenerateDataKey",
            Key(&[(Sym, "kms:GenerateDataKey")]),
            |e, k| {
                e.generate_data_key(&GenerateDataKeyRequest::new(&k.sym, DataKeySpec::Aes256))
                    .map(drop)
            },
        ),
        op(
            "GenerateDataKey[batch]",
            "GenerateDataKey",
            Key(&[(Sym, "kms:GenerateDataKey")]),
            |e, k| {
                let requests = vec![GenerateDataKeyRequest::new(&k.sym, DataKeySpec::Aes128); 3];
                all(e.generate_data_key_batch(&requests))
            },
        ),
        op(
            "GenerateDataKeyWithoutPlaintext",
            "GenerateDataKeyWithoutPlaintext",
            Key(&[(Sym, "kms:GenerateDataKeyWithoutPlaintext")]),
            |e, k| {
                e.generate_data_key_without_plaintext(&GenerateDataKeyRequest::new(
                    &k.sym,
                    DataKeySpec::Aes256,
                ))
                .map(drop)
            },
        ),
        op(
            "GenerateDataKeyWithoutPlaintext[batch]",
            "GenerateDataKeyWithoutPlaintext",
            Key(&[(Sym, "kms:GenerateDataKeyWithoutPlaintext")]),
            |e, k| {
                let requests = vec![GenerateDataKeyRequest::new(&k.sym, DataKeySpec::Aes256); 2];
                all(e.generate_data_key_without_plaintext_batch(&requests))
            },
        ),
        op(
            "GenerateDataKeyPair",
            "GenerateDataKeyPair",
            Key(&[(Sym, "kms:GenerateDataKeyPair")]),
            |e, k| {
                e.generate_data_key_pair(&GenerateDataKeyPairRequest {
                    key_id: &k.sym,
                    encryption_context: None,
                    key_pair_spec: DataKeyPairSpec::EccNistP256,
                })
                .map(drop)
            },
        ),
        op(
            "GenerateDataKeyPairWithoutPlaintext",
            "GenerateDataKeyPairWithoutPlaintext",
            Key(&[(Sym, "kms:GenerateDataKeyPairWithoutPlaintext")]),
            |e, k| {
                e.generate_data_key_pair_without_plaintext(&GenerateDataKeyPairRequest {
                    key_id: &k.sym,
                    encryption_context: None,
                    key_pair_spec: DataKeyPairSpec::EccNistP256,
                })
                .map(drop)
            },
        ),
        // Asymmetric, HMAC and key agreement keys.
        op(
            "Encrypt(RSA)",
            "Encrypt",
            Key(&[(Rsa, "kms:Encrypt")]),
            |e, k| {
                e.encrypt(&EncryptRequest {
                    encryption_algorithm: EncryptionAlgorithm::RsaesOaepSha256,
                    ..EncryptRequest::new(&k.rsa, b"rsa")
                })
                .map(drop)
            },
        ),
        op(
            "Decrypt(RSA)",
            "Decrypt",
            Key(&[(Rsa, "kms:Decrypt")]),
            |e, k| {
                e.decrypt(&DecryptRequest {
                    encryption_algorithm: Some(EncryptionAlgorithm::RsaesOaepSha256),
                    ..DecryptRequest::new(&k.rsa_blob).with_key_id(&k.rsa)
                })
                .map(drop)
            },
        ),
        op("Sign", "Sign", Key(&[(Sign, "kms:Sign")]), |e, k| {
            e.sign(&SignRequest::new(
                &k.sign,
                b"matrix message",
                SigningAlgorithm::EcdsaSha256,
            ))
            .map(drop)
        }),
        op("Sign[batch]", "Sign", Key(&[(Sign, "kms:Sign")]), |e, k| {
            let requests = vec![SignRequest::new(&k.sign, b"m", SigningAlgorithm::EcdsaSha256); 2];
            all(e.sign_batch(&requests))
        }),
        op("Verify", "Verify", Key(&[(Sign, "kms:Verify")]), |e, k| {
            e.verify(&verify_request(k)).map(drop)
        }),
        op(
            "Verify[batch]",
            "Verify",
            Key(&[(Sign, "kms:Verify")]),
            |e, k| all(e.verify_batch(&[verify_request(k), verify_request(k)])),
        ),
        op(
            "GetPublicKey",
            "GetPublicKey",
            Key(&[(Sign, "kms:GetPublicKey")]),
            |e, k| e.get_public_key(&k.sign).map(drop),
        ),
        op(
            "GenerateMac",
            "GenerateMac",
            Key(&[(Hmac, "kms:GenerateMac")]),
            |e, k| {
                e.generate_mac(&GenerateMacRequest {
                    key_id: &k.hmac,
                    message: b"matrix message",
                    mac_algorithm: MacAlgorithm::HmacSha256,
                })
                .map(drop)
            },
        ),
        op(
            "GenerateMac[batch]",
            "GenerateMac",
            Key(&[(Hmac, "kms:GenerateMac")]),
            |e, k| {
                let request = GenerateMacRequest {
                    key_id: &k.hmac,
                    message: b"m",
                    mac_algorithm: MacAlgorithm::HmacSha256,
                };
                all(e.generate_mac_batch(&[request, request]))
            },
        ),
        op(
            "VerifyMac",
            "VerifyMac",
            Key(&[(Hmac, "kms:VerifyMac")]),
            |e, k| e.verify_mac(&verify_mac_request(k)).map(drop),
        ),
        op(
            "VerifyMac[batch]",
            "VerifyMac",
            Key(&[(Hmac, "kms:VerifyMac")]),
            |e, k| all(e.verify_mac_batch(&[verify_mac_request(k), verify_mac_request(k)])),
        ),
        op(
            "DeriveSharedSecret",
            "DeriveSharedSecret",
            Key(&[(Agree, "kms:DeriveSharedSecret")]),
            |e, k| {
                e.derive_shared_secret(&DeriveSharedSecretRequest {
                    key_id: &k.agree,
                    key_agreement_algorithm: KeyAgreementAlgorithm::Ecdh,
                    public_key: &k.peer,
                })
                .map(drop)
            },
        ),
    ]
}

fn verify_request(k: &Keys) -> VerifyRequest<'_> {
    VerifyRequest {
        key_id: &k.sign,
        message: b"matrix message",
        message_type: MessageType::Raw,
        signature: &k.signature,
        signing_algorithm: SigningAlgorithm::EcdsaSha256,
    }
}

fn verify_mac_request(k: &Keys) -> VerifyMacRequest<'_> {
    VerifyMacRequest {
        key_id: &k.hmac,
        message: b"matrix message",
        mac: &k.mac,
        mac_algorithm: MacAlgorithm::HmacSha256,
    }
}

// ---- the test -----------------------------------------------------------------------------------

/// (principal, eventName, errorCode) → number of records.
type Tally = BTreeMap<(String, String, Option<String>), u64>;

#[test]
fn every_role_against_every_operation_with_every_call_audited() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.log");
    let signing_key = generate_signing_key(keyplane::LockPolicy::default()).unwrap();
    let root = Engine::builder()
        .worker_threads(2)
        .audit(AuditConfig::new(&path), signing_key)
        .build()
        .unwrap();
    let public_key = root.audit_log().unwrap().public_key_der();
    let setup = root.for_caller(Caller::new(SETUP).unwrap());
    let handles: Vec<(Role, Engine)> = ROLES
        .iter()
        .map(|&role| {
            (
                role,
                root.for_caller(Caller::new(role.principal()).unwrap()),
            )
        })
        .collect();

    let shared = Keys::new(&setup);
    let operations = operations();
    let mut expected_records = Tally::new();
    let mut allowed_ok = BTreeMap::<Role, u64>::new();
    let mut denied_ok = BTreeMap::<Role, u64>::new();
    let mut mismatches = Vec::new();
    let mut unauthorized_successes = 0u64;
    let mut table = Vec::new();
    for op in &operations {
        let mut row = Vec::new();
        for (role, engine) in &handles {
            let keys = if op.fresh {
                shared.fresh(&setup)
            } else {
                shared.clone()
            };
            let allowed = model_allows(*role, &op.need);
            let outcome = (op.run)(engine, &keys);
            let code = outcome.as_ref().err().map(|e| e.code().to_owned());
            match (&outcome, allowed) {
                (Ok(()), true) => *allowed_ok.entry(*role).or_default() += 1,
                (Err(e), false) if e.code() == "AccessDeniedException" => {
                    assert!(
                        e.message().contains(role.principal()),
                        "{} {}: the denial names the caller: {e}",
                        role.name(),
                        op.label
                    );
                    *denied_ok.entry(*role).or_default() += 1;
                }
                (Ok(()), false) => {
                    unauthorized_successes += 1;
                    mismatches.push(format!(
                        "{} {}: succeeded, but the policy does not allow it",
                        role.name(),
                        op.label
                    ));
                }
                (Err(e), true) => mismatches.push(format!(
                    "{} {}: allowed, but failed with {e}",
                    role.name(),
                    op.label
                )),
                (Err(e), false) => mismatches.push(format!(
                    "{} {}: denied as expected, but with {e} instead of AccessDeniedException",
                    role.name(),
                    op.label
                )),
            }
            *expected_records
                .entry((role.principal().to_owned(), op.event.to_owned(), code))
                .or_default() += 1;
            row.push(match (&outcome, allowed) {
                (Ok(()), true) => "ok",
                (Err(_), false) => "denied",
                _ => "WRONG",
            });
        }
        table.push((op.label, row));
    }

    println!(
        "{:<40}{}",
        "operation",
        ROLES.map(|r| format!("{:>11}", r.name())).concat()
    );
    for (label, row) in &table {
        println!(
            "{label:<40}{}",
            row.iter().map(|c| format!("{c:>11}")).collect::<String>()
        );
    }
    let calls = (operations.len() * ROLES.len()) as u64;
    let allowed_total: u64 = allowed_ok.values().sum();
    let denied_total: u64 = denied_ok.values().sum();
    println!(
        "matrix: {} operations x {} roles = {calls} calls; {allowed_total} allowed and succeeded, \
         {denied_total} denied with AccessDeniedException, {unauthorized_successes} unauthorized \
         successes, {} mismatches",
        operations.len(),
        ROLES.len(),
        mismatches.len()
    );
    for role in ROLES {
        println!(
            "  {:<11} allowed {:>3}  denied {:>3}",
            role.name(),
            allowed_ok.get(&role).copied().unwrap_or(0),
            denied_ok.get(&role).copied().unwrap_or(0)
        );
    }
    assert!(
        mismatches.is_empty(),
        "mismatches:\n{}",
        mismatches.join("\n")
    );
    assert_eq!(unauthorized_successes, 0);
    assert_eq!(allowed_total + denied_total, calls);
    // The model gives every role something and denies every role something, except that the
    // other account is allowed nothing.
    for role in ROLES {
        assert!(denied_ok.get(&role).copied().unwrap_or(0) > 0, "{role:?}");
        let allowed = allowed_ok.get(&role).copied().unwrap_or(0);
        assert_eq!(
            allowed == 0,
            role == Role::Other,
            "{role:?} allowed {allowed}"
        );
    }

    // The log: sign what is there, verify the chain, and find every call in it.
    let log = root.audit_log().unwrap();
    log.write_digest().unwrap();
    let report = verify(&path, &public_key).unwrap();
    println!("audit log: {report}");
    assert_eq!(report.verdict(), Verdict::Intact, "{report}");
    let text = std::fs::read_to_string(&path).unwrap();
    let records: Vec<Value> = text
        .lines()
        .filter(|l| l.starts_with("{\"seq\":"))
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(report.records, records.len() as u64);
    let principals: Vec<&str> = ROLES.iter().map(|r| r.principal()).collect();
    let mut found = Tally::new();
    let mut setup_records = 0;
    for record in &records {
        let arn = record["userIdentity"]["arn"].as_str().unwrap();
        if arn == SETUP {
            setup_records += 1;
            assert!(
                record.get("errorCode").is_none(),
                "setup call failed: {record}"
            );
            continue;
        }
        assert!(
            principals.contains(&arn),
            "record of an unknown caller: {record}"
        );
        let event = record["eventName"].as_str().unwrap().to_owned();
        let code = record
            .get("errorCode")
            .and_then(Value::as_str)
            .map(str::to_owned);
        if code.as_deref() == Some("AccessDeniedException") {
            let message = record["errorMessage"].as_str().unwrap();
            assert!(message.contains(arn), "{record}");
        }
        let account = record["userIdentity"]["accountId"].as_str().unwrap();
        assert_eq!(account, &arn[13..25], "{record}");
        *found.entry((arn.to_owned(), event, code)).or_default() += 1;
    }
    let matrix_records: u64 = found.values().sum();
    println!(
        "audit records: {} in all, {matrix_records} from the matrix roles, {setup_records} from setup",
        records.len()
    );
    for (key, n) in &expected_records {
        let got = found.get(key).copied().unwrap_or(0);
        assert_eq!(got, *n, "records of {key:?}");
    }
    assert_eq!(found, expected_records);
    assert_eq!(matrix_records, calls);
}
