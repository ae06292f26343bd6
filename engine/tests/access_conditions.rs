//! Access control through the engine, beyond the role matrix: key policy conditions (encryption
//! context, caller account, request alias, algorithm, key spec and usage, via service), explicit
//! Deny against Allow and grants, grant constraints, retiring and revoking grants, grant
//! pagination, the lockout check, malformed policies, policy and grant changes reaching the very
//! next call, managed keys, quotas (keys per account, request rates) and GetKeyLastUsage.

#[path = "support/outcome.rs"]
mod outcome;
use outcome::{code, outcome};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use keyplane::audit::{generate_signing_key, AuditConfig};
use keyplane::key::{DataKeySpec, MessageType, SigningAlgorithm};
use keyplane::{
    Caller, CreateGrantRequest, CreateKeyRequest, DecryptRequest, EncryptRequest,
    EncryptionAlgorithm, EncryptionContext, Engine, EngineBuilder, GenerateDataKeyRequest,
    GrantConstraints, GrantOperation, KeyManager, KeySpec, KeyState, KeyUsage, ManualClock,
    RateQuotas, RotationType, SignRequest, Tag, VerifyRequest,
};
use keyplane_testkit::{ctx, decrypt, new_key};
use serde_json::{json, Value};

const ACCOUNT: &str = "111122223333";
const REGION: &str = "us-east-1";
const SETUP: &str = "arn:aws:iam::111122223333:role/setup";
const ADMIN: &str = "arn:aws:iam::111122223333:role/KeyAdmin";
const USER: &str = "arn:aws:iam::111122223333:role/app";
const GRANTEE: &str = "arn:aws:iam::111122223333:role/grantee";
const STRANGER: &str = "arn:aws:iam::111122223333:user/stranger";
const OTHER: &str = "arn:aws:iam::444455556666:user/eve";
const S3: &str = "s3.us-east-1.amazonaws.com";

// ---- helpers ------------------------------------------------------------------------------------

/// One engine and a handle per principal.
struct World {
    root: Engine,
    setup: Engine,
    admin: Engine,
    user: Engine,
    grantee: Engine,
    stranger: Engine,
    other: Engine,
}

fn world() -> World {
    world_on(Engine::builder())
}

fn world_on(builder: EngineBuilder) -> World {
    let root = builder.worker_threads(2).build().expect("engine starts");
    let as_ = |p: &str| root.for_caller(Caller::new(p).unwrap());
    World {
        setup: as_(SETUP),
        admin: as_(ADMIN),
        user: as_(USER),
        grantee: as_(GRANTEE),
        stranger: as_(STRANGER),
        other: as_(OTHER),
        root,
    }
}

/// A policy: `kms:*` for the setup role, then `statements`.
fn policy(statements: Vec<Value>) -> String {
    let mut all = vec![json!({
        "Sid": "Setup",
        "Effect": "Allow",
        "Principal": { "AWS": SETUP },
        "Action": "kms:*",
        "Resource": "*"
    })];
    all.extend(statements);
    json!({ "Version": "2012-10-17", "Statement": all }).to_string()
}

fn statement(effect: &str, principal: &str, actions: &[&str], condition: Value) -> Value {
    let mut s = json!({
        "Effect": effect,
        "Principal": { "AWS": principal },
        "Action": actions,
        "Resource": "*"
    });
    if !condition.is_null() {
        s["Condition"] = condition;
    }
    s
}

fn allow(principal: &str, actions: &[&str], condition: Value) -> Value {
    statement("Allow", principal, actions, condition)
}

fn deny(principal: &str, actions: &[&str], condition: Value) -> Value {
    statement("Deny", principal, actions, condition)
}

/// A key of `spec`/`usage` that the setup role creates with `statements` (after its own).
fn key_of(setup: &Engine, spec: KeySpec, usage: KeyUsage, statements: Vec<Value>) -> String {
    setup
        .create_key(CreateKeyRequest {
            key_spec: Some(spec),
            key_usage: Some(usage),
            policy: Some(policy(statements)),
            ..Default::default()
        })
        .unwrap_or_else(|e| panic!("setup creates a {spec} key: {e}"))
        .key_id
}

fn sym_key(setup: &Engine, statements: Vec<Value>) -> String {
    key_of(
        setup,
        KeySpec::SymmetricDefault,
        KeyUsage::EncryptDecrypt,
        statements,
    )
}

const DENIED: &str = "AccessDeniedException";

fn enc(
    engine: &Engine,
    key: &str,
    context: Option<&EncryptionContext>,
) -> keyplane::Result<Vec<u8>> {
    let mut request = EncryptRequest::new(key, b"conditional secret");
    request.encryption_context = context;
    engine.encrypt(&request).map(|r| r.ciphertext_blob)
}

fn grant(
    engine: &Engine,
    key: &str,
    grantee: &str,
    operations: &[GrantOperation],
    retiring: Option<&str>,
    constraints: Option<GrantConstraints>,
) -> keyplane::Result<keyplane::CreateGrantResponse> {
    engine.create_grant(CreateGrantRequest {
        key_id: key.to_owned(),
        grantee_principal: grantee.to_owned(),
        retiring_principal: retiring.map(str::to_owned),
        operations: operations.to_vec(),
        constraints,
        name: None,
    })
}

// ---- policy conditions --------------------------------------------------------------------------

#[test]
fn string_equals_on_an_encryption_context_pair_gates_each_request() {
    let w = world();
    let key = sym_key(
        &w.setup,
        vec![allow(
            USER,
            &["kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey"],
            json!({ "StringEquals": { "kms:EncryptionContext:tenant": "acme" } }),
        )],
    );
    let acme = ctx(&[("tenant", "acme")]);
    let acme_more = ctx(&[("tenant", "acme"), ("order", "7")]);
    let globex = ctx(&[("tenant", "globex")]);
    let other_key = ctx(&[("customer", "acme")]);
    assert_eq!(outcome(enc(&w.user, &key, Some(&acme))), "ok");
    assert_eq!(outcome(enc(&w.user, &key, Some(&acme_more))), "ok");
    assert_eq!(outcome(enc(&w.user, &key, Some(&globex))), DENIED);
    assert_eq!(outcome(enc(&w.user, &key, Some(&other_key))), DENIED);
    assert_eq!(outcome(enc(&w.user, &key, None)), DENIED);

    // Decrypt: the request's context is what the condition sees.
    let blob = enc(&w.user, &key, Some(&acme)).unwrap();
    assert_eq!(
        decrypt(&w.user, &blob, Some(&acme)).unwrap(),
        b"conditional secret"
    );
    assert_eq!(outcome(decrypt(&w.user, &blob, None)), DENIED);
    let foreign = enc(&w.setup, &key, Some(&globex)).unwrap();
    assert_eq!(outcome(decrypt(&w.user, &foreign, Some(&globex))), DENIED);
    // Authorised by the (wrong) context given, then refused by the cryptography.
    assert_eq!(
        outcome(decrypt(&w.user, &foreign, Some(&acme))),
        "InvalidCiphertextException"
    );

    // Data keys: the same condition; an action the statement does not name stays denied.
    let gdk = GenerateDataKeyRequest::new(&key, DataKeySpec::Aes256);
    assert_eq!(
        outcome(w.user.generate_data_key(&gdk.with_context(&acme))),
        "ok"
    );
    assert_eq!(outcome(w.user.generate_data_key(&gdk)), DENIED);
    assert_eq!(
        outcome(
            w.user
                .generate_data_key_without_plaintext(&gdk.with_context(&acme))
        ),
        DENIED
    );

    // A batch is authorised item by item.
    let requests = [
        EncryptRequest::new(&key, b"a").with_context(&acme),
        EncryptRequest::new(&key, b"b").with_context(&globex),
        EncryptRequest::new(&key, b"c").with_context(&acme_more),
        EncryptRequest::new(&key, b"d"),
    ];
    let codes: Vec<&str> = w
        .user
        .encrypt_batch(&requests)
        .into_iter()
        .map(outcome)
        .collect();
    assert_eq!(codes, ["ok", DENIED, "ok", DENIED]);
}

#[test]
fn for_all_values_and_for_any_value_over_encryption_context_keys() {
    let w = world();
    let all_of = sym_key(
        &w.setup,
        vec![allow(
            USER,
            &["kms:Encrypt"],
            json!({ "ForAllValues:StringEquals": { "kms:EncryptionContextKeys": ["tenant", "purpose"] } }),
        )],
    );
    let any_of = sym_key(
        &w.setup,
        vec![allow(
            USER,
            &["kms:Encrypt"],
            json!({ "ForAnyValue:StringEquals": { "kms:EncryptionContextKeys": "tenant" } }),
        )],
    );
    // ForAllValues holds for an absent key; a Null check makes a context mandatory.
    let all_of_required = sym_key(
        &w.setup,
        vec![allow(
            USER,
            &["kms:Encrypt"],
            json!({
                "ForAllValues:StringEquals": { "kms:EncryptionContextKeys": ["tenant", "purpose"] },
                "Null": { "kms:EncryptionContextKeys": "false" }
            }),
        )],
    );
    let tenant = ctx(&[("tenant", "acme")]);
    let both = ctx(&[("tenant", "acme"), ("purpose", "billing")]);
    let extra = ctx(&[("tenant", "acme"), ("secret", "x")]);
    let neither = ctx(&[("order", "7")]);
    let cases: [(Option<&EncryptionContext>, [&str; 3]); 5] = [
        // (context, [all_of, any_of, all_of_required])
        (Some(&tenant), ["ok", "ok", "ok"]),
        (Some(&both), ["ok", "ok", "ok"]),
        (Some(&extra), [DENIED, "ok", DENIED]),
        (Some(&neither), [DENIED, DENIED, DENIED]),
        (None, ["ok", DENIED, DENIED]),
    ];
    for (context, expected) in cases {
        let got = [&all_of, &any_of, &all_of_required].map(|k| outcome(enc(&w.user, k, context)));
        assert_eq!(got, expected, "context {context:?}");
    }
}

#[test]
fn caller_account_admits_the_account_and_no_one_else() {
    let w = world();
    let conditioned = sym_key(
        &w.setup,
        vec![allow(
            "*",
            &["kms:Encrypt", "kms:DescribeKey"],
            json!({ "StringEquals": { "kms:CallerAccount": ACCOUNT } }),
        )],
    );
    let open = sym_key(&w.setup, vec![allow("*", &["kms:Encrypt"], Value::Null)]);
    let other_root = w
        .root
        .for_caller(Caller::account_root("444455556666").unwrap());
    for engine in [&w.user, &w.stranger, &w.root] {
        assert_eq!(outcome(enc(engine, &conditioned, None)), "ok");
        assert_eq!(outcome(engine.describe_key(&conditioned)), "ok");
    }
    for engine in [&w.other, &other_root] {
        assert_eq!(outcome(enc(engine, &conditioned, None)), DENIED);
        assert_eq!(outcome(engine.describe_key(&conditioned)), DENIED);
        // Without the condition, a "*" principal admits everyone: the condition does the work.
        assert_eq!(outcome(enc(engine, &open, None)), "ok");
    }
}

#[test]
fn request_alias_follows_the_identifier_the_caller_used() {
    let w = world();
    let key = sym_key(
        &w.setup,
        vec![allow(
            USER,
            &["kms:Encrypt", "kms:DescribeKey"],
            json!({ "StringEquals": { "kms:RequestAlias": "alias/finance" } }),
        )],
    );
    w.setup.create_alias("alias/finance", &key).unwrap();
    w.setup.create_alias("alias/other", &key).unwrap();
    let arn = w.setup.describe_key(&key).unwrap().arn;
    let alias_arn = format!("arn:aws:kms:{REGION}:{ACCOUNT}:alias/finance");
    for (identifier, expected) in [
        ("alias/finance", "ok"),
        (alias_arn.as_str(), "ok"),
        ("alias/other", DENIED),
        (key.as_str(), DENIED),
        (arn.as_str(), DENIED),
    ] {
        assert_eq!(
            outcome(enc(&w.user, identifier, None)),
            expected,
            "{identifier}"
        );
        assert_eq!(
            outcome(w.user.describe_key(identifier)),
            expected,
            "describe {identifier}"
        );
    }
}

#[test]
fn encryption_algorithm_condition() {
    let w = world();
    let rsa = key_of(
        &w.setup,
        KeySpec::Rsa2048,
        KeyUsage::EncryptDecrypt,
        vec![allow(
            USER,
            &["kms:Encrypt", "kms:Decrypt"],
            json!({ "StringEquals": { "kms:EncryptionAlgorithm": "RSAES_OAEP_SHA_256" } }),
        )],
    );
    let rsa_enc = |engine: &Engine, algorithm| {
        engine
            .encrypt(&EncryptRequest {
                encryption_algorithm: algorithm,
                ..EncryptRequest::new(&rsa, b"oaep")
            })
            .map(|r| r.ciphertext_blob)
    };
    let rsa_dec = |engine: &Engine, blob: &[u8], algorithm| {
        engine.decrypt(&DecryptRequest {
            encryption_algorithm: Some(algorithm),
            ..DecryptRequest::new(blob).with_key_id(&rsa)
        })
    };
    let sha256 = EncryptionAlgorithm::RsaesOaepSha256;
    let sha1 = EncryptionAlgorithm::RsaesOaepSha1;
    let blob256 = rsa_enc(&w.user, sha256).unwrap();
    assert_eq!(outcome(rsa_enc(&w.user, sha1)), DENIED);
    assert_eq!(outcome(rsa_dec(&w.user, &blob256, sha256)), "ok");
    let blob1 = rsa_enc(&w.setup, sha1).unwrap();
    assert_eq!(outcome(rsa_dec(&w.user, &blob1, sha1)), DENIED);
    assert_eq!(outcome(rsa_dec(&w.setup, &blob1, sha1)), "ok");

    let sym = sym_key(
        &w.setup,
        vec![allow(
            USER,
            &["kms:Encrypt", "kms:Decrypt"],
            json!({ "StringEquals": { "kms:EncryptionAlgorithm": "SYMMETRIC_DEFAULT" } }),
        )],
    );
    let blob = enc(&w.user, &sym, None).unwrap();
    assert_eq!(outcome(decrypt(&w.user, &blob, None)), "ok");
}

#[test]
fn key_spec_and_key_usage_conditions() {
    let w = world();
    let only_symmetric = vec![allow(
        USER,
        &["kms:Encrypt", "kms:DescribeKey"],
        json!({ "StringEquals": { "kms:KeySpec": "SYMMETRIC_DEFAULT" } }),
    )];
    let sym = sym_key(&w.setup, only_symmetric.clone());
    let rsa = key_of(
        &w.setup,
        KeySpec::Rsa2048,
        KeyUsage::EncryptDecrypt,
        only_symmetric,
    );
    assert_eq!(outcome(enc(&w.user, &sym, None)), "ok");
    assert_eq!(outcome(w.user.describe_key(&sym)), "ok");
    let rsa_request = EncryptRequest {
        encryption_algorithm: EncryptionAlgorithm::RsaesOaepSha256,
        ..EncryptRequest::new(&rsa, b"x")
    };
    assert_eq!(outcome(w.user.encrypt(&rsa_request)), DENIED);
    assert_eq!(outcome(w.user.describe_key(&rsa)), DENIED);
    assert_eq!(outcome(w.setup.encrypt(&rsa_request)), "ok");

    let usage = |value: &str| {
        vec![allow(
            USER,
            &["kms:Sign"],
            json!({ "StringEquals": { "kms:KeyUsage": value } }),
        )]
    };
    let signer = key_of(
        &w.setup,
        KeySpec::EccNistP256,
        KeyUsage::SignVerify,
        usage("SIGN_VERIFY"),
    );
    let wrong = key_of(
        &w.setup,
        KeySpec::EccNistP256,
        KeyUsage::SignVerify,
        usage("ENCRYPT_DECRYPT"),
    );
    let sign = |key: &str| {
        w.user
            .sign(&SignRequest::new(key, b"m", SigningAlgorithm::EcdsaSha256))
    };
    assert_eq!(outcome(sign(&signer)), "ok");
    assert_eq!(outcome(sign(&wrong)), DENIED);
}

#[test]
fn via_service_admits_only_calls_through_that_service() {
    let w = world();
    let key = sym_key(
        &w.setup,
        vec![allow(
            USER,
            &["kms:Encrypt", "kms:Decrypt"],
            json!({ "StringEquals": { "kms:ViaService": S3 } }),
        )],
    );
    let base = Caller::new(USER).unwrap();
    let direct = w.root.for_caller(base.clone());
    let via_s3 = w.root.for_caller(base.clone().via_service(S3));
    let via_ec2 = w
        .root
        .for_caller(base.via_service("ec2.us-east-1.amazonaws.com"));
    // Interleaved, so that no decision about one handle is reused for another.
    for _ in 0..3 {
        assert_eq!(outcome(enc(&via_s3, &key, None)), "ok");
        assert_eq!(outcome(enc(&direct, &key, None)), DENIED);
        assert_eq!(outcome(enc(&via_ec2, &key, None)), DENIED);
    }
    let blob = enc(&via_s3, &key, None).unwrap();
    assert_eq!(outcome(decrypt(&via_s3, &blob, None)), "ok");
    assert_eq!(outcome(decrypt(&direct, &blob, None)), DENIED);
}

#[test]
fn explicit_deny_beats_allow_and_grants() {
    let w = world();
    let key = sym_key(
        &w.setup,
        vec![
            allow(USER, &["kms:*"], Value::Null),
            deny(USER, &["kms:Decrypt"], Value::Null),
            deny(GRANTEE, &["kms:Encrypt"], Value::Null),
            deny(
                "*",
                &["kms:Encrypt"],
                json!({ "StringEquals": { "kms:EncryptionContext:class": "secret" } }),
            ),
        ],
    );
    grant(
        &w.setup,
        &key,
        GRANTEE,
        &[GrantOperation::Encrypt, GrantOperation::Decrypt],
        None,
        None,
    )
    .unwrap();
    let blob = enc(&w.user, &key, None).unwrap();
    assert_eq!(outcome(decrypt(&w.user, &blob, None)), DENIED);
    assert_eq!(outcome(w.user.describe_key(&key)), "ok");
    // The grant gives Decrypt; the Deny takes Encrypt away despite the grant.
    assert_eq!(outcome(decrypt(&w.grantee, &blob, None)), "ok");
    assert_eq!(outcome(enc(&w.grantee, &key, None)), DENIED);
    // A conditional Deny applies only when its condition holds, and to everyone ("*").
    let secret = ctx(&[("class", "secret")]);
    let public = ctx(&[("class", "public")]);
    assert_eq!(outcome(enc(&w.user, &key, Some(&secret))), DENIED);
    assert_eq!(outcome(enc(&w.setup, &key, Some(&secret))), DENIED);
    assert_eq!(outcome(enc(&w.user, &key, Some(&public))), "ok");
}

// ---- grants -------------------------------------------------------------------------------------

#[test]
fn grant_constraints_encryption_context_equals_and_subset() {
    let w = world();
    let key = sym_key(&w.setup, vec![]);
    let equals_key = sym_key(&w.setup, vec![]);
    let ops = [
        GrantOperation::Encrypt,
        GrantOperation::Decrypt,
        GrantOperation::GenerateDataKey,
    ];
    let acme = ctx(&[("tenant", "acme")]);
    let acme_more = ctx(&[("tenant", "acme"), ("order", "7")]);
    let globex = ctx(&[("tenant", "globex")]);
    let order = ctx(&[("order", "7")]);
    grant(
        &w.setup,
        &equals_key,
        GRANTEE,
        &ops,
        None,
        Some(GrantConstraints {
            encryption_context_equals: Some(acme.clone()),
            encryption_context_subset: None,
        }),
    )
    .unwrap();
    grant(
        &w.setup,
        &key,
        GRANTEE,
        &ops,
        None,
        Some(GrantConstraints {
            encryption_context_equals: None,
            encryption_context_subset: Some(acme.clone()),
        }),
    )
    .unwrap();
    let cases: [(Option<&EncryptionContext>, &str, &str); 5] = [
        // (context, under EncryptionContextEquals, under EncryptionContextSubset)
        (Some(&acme), "ok", "ok"),
        (Some(&acme_more), DENIED, "ok"),
        (Some(&globex), DENIED, DENIED),
        (Some(&order), DENIED, DENIED),
        (None, DENIED, DENIED),
    ];
    for (context, equals, subset) in cases {
        assert_eq!(
            outcome(enc(&w.grantee, &equals_key, context)),
            equals,
            "{context:?}"
        );
        assert_eq!(
            outcome(enc(&w.grantee, &key, context)),
            subset,
            "{context:?}"
        );
        let mut gdk = GenerateDataKeyRequest::new(&key, DataKeySpec::Aes256);
        gdk.encryption_context = context;
        assert_eq!(
            outcome(w.grantee.generate_data_key(&gdk)),
            subset,
            "{context:?}"
        );
    }
    // Decrypt follows the same constraint, on the context the request gives.
    let blob = enc(&w.setup, &equals_key, Some(&acme)).unwrap();
    assert_eq!(outcome(decrypt(&w.grantee, &blob, Some(&acme))), "ok");
    let blob_more = enc(&w.setup, &key, Some(&acme_more)).unwrap();
    assert_eq!(
        outcome(decrypt(&w.grantee, &blob_more, Some(&acme_more))),
        "ok"
    );
    let blob_globex = enc(&w.setup, &key, Some(&globex)).unwrap();
    assert_eq!(
        outcome(decrypt(&w.grantee, &blob_globex, Some(&globex))),
        DENIED
    );
    // Not both kinds at once.
    assert_eq!(
        code(grant(
            &w.setup,
            &key,
            GRANTEE,
            &ops,
            None,
            Some(GrantConstraints {
                encryption_context_equals: Some(acme.clone()),
                encryption_context_subset: Some(acme),
            }),
        )),
        "ValidationException"
    );
}

#[test]
fn grant_operations_condition_limits_the_grants_a_principal_creates() {
    let w = world();
    let key = sym_key(
        &w.setup,
        vec![allow(
            USER,
            &["kms:CreateGrant"],
            json!({ "ForAllValues:StringEquals": { "kms:GrantOperations": ["Encrypt", "Decrypt"] } }),
        )],
    );
    use GrantOperation as G;
    for (ops, expected) in [
        (vec![G::Encrypt], "ok"),
        (vec![G::Encrypt, G::Decrypt], "ok"),
        (vec![G::Encrypt, G::ReEncryptFrom], DENIED),
        (vec![G::CreateGrant], DENIED),
    ] {
        assert_eq!(
            outcome(grant(&w.user, &key, GRANTEE, &ops, None, None)),
            expected,
            "{ops:?}"
        );
    }
}

#[test]
fn a_grant_that_allows_create_grant_cannot_be_used_to_widen_itself() {
    // The service: "Principals who get CreateGrant permission from a grant have more limited
    // grant permissions": the grants they create may carry only operations of their own grant.
    let w = world();
    let key = sym_key(&w.setup, vec![]);
    grant(
        &w.setup,
        &key,
        GRANTEE,
        &[GrantOperation::Encrypt, GrantOperation::CreateGrant],
        None,
        None,
    )
    .unwrap();
    assert_eq!(
        outcome(grant(
            &w.grantee,
            &key,
            STRANGER,
            &[GrantOperation::Encrypt],
            None,
            None
        )),
        "ok"
    );
    let blob = enc(&w.setup, &key, None).unwrap();
    assert_eq!(outcome(decrypt(&w.grantee, &blob, None)), DENIED);
    let escalation = grant(
        &w.grantee,
        &key,
        GRANTEE,
        &[GrantOperation::Decrypt],
        None,
        None,
    );
    let decrypts_now = decrypt(&w.grantee, &blob, None).is_ok();
    assert_eq!(
        outcome(escalation),
        DENIED,
        "a grantee holding [Encrypt, CreateGrant] granted itself Decrypt (and can now decrypt: \
         {decrypts_now})"
    );
}

#[test]
fn retire_grant_by_token_by_key_and_id_and_refused_for_others() {
    let w = world();
    let key = sym_key(&w.setup, vec![allow(ADMIN, &["kms:*"], Value::Null)]);
    let victim = "arn:aws:iam::111122223333:role/victim";
    // Retiring principal: the user.
    let by_retirer = grant(
        &w.setup,
        &key,
        victim,
        &[GrantOperation::Decrypt],
        Some(USER),
        None,
    )
    .unwrap();
    // The grantee itself, through RetireGrant in its grant.
    let by_grantee = grant(
        &w.setup,
        &key,
        GRANTEE,
        &[GrantOperation::Encrypt, GrantOperation::RetireGrant],
        None,
        None,
    )
    .unwrap();
    // Nobody but the retiring principal and the issuing account.
    let guarded = grant(
        &w.setup,
        &key,
        GRANTEE,
        &[GrantOperation::Decrypt],
        Some(USER),
        None,
    )
    .unwrap();

    assert_eq!(outcome(enc(&w.grantee, &key, None)), "ok");
    w.user
        .retire_grant(Some(&by_retirer.grant_token), None, None)
        .unwrap();
    assert!(matches!(
        code(
            w.user
                .retire_grant(Some(&by_retirer.grant_token), None, None)
        ),
        "InvalidGrantIdException" | "NotFoundException"
    ));
    w.grantee
        .retire_grant(None, Some(&key), Some(&by_grantee.grant_id))
        .unwrap();
    // The grant is gone for the very next call.
    assert_eq!(outcome(enc(&w.grantee, &key, None)), DENIED);

    for refused in [&w.grantee, &w.stranger, &w.other, &w.admin] {
        assert_eq!(
            code(refused.retire_grant(Some(&guarded.grant_token), None, None)),
            DENIED,
            "{:?}",
            refused.caller()
        );
    }
    let blob = enc(&w.setup, &key, None).unwrap();
    assert_eq!(outcome(decrypt(&w.grantee, &blob, None)), "ok");
    // The issuing account's root may retire any grant issued in the account.
    w.root
        .retire_grant(None, Some(&key), Some(&guarded.grant_id))
        .unwrap();
    assert_eq!(outcome(decrypt(&w.grantee, &blob, None)), DENIED);

    assert_eq!(
        code(w.user.retire_grant(Some("not-a-token"), None, None)),
        "InvalidGrantTokenException"
    );
    assert_eq!(
        code(w.user.retire_grant(None, Some(&key), None)),
        "ValidationException"
    );
    let remaining = w.admin.list_grants(&key, None, None, None, None).unwrap();
    assert!(remaining.items.is_empty(), "{remaining:?}");
}

#[test]
fn revoke_grant_takes_effect_on_the_next_call() {
    let w = world();
    let key = sym_key(
        &w.setup,
        vec![allow(
            ADMIN,
            &["kms:RevokeGrant", "kms:ListGrants", "kms:CreateGrant"],
            Value::Null,
        )],
    );
    let g = grant(
        &w.admin,
        &key,
        GRANTEE,
        &[GrantOperation::Encrypt],
        None,
        None,
    )
    .unwrap();
    for _ in 0..5 {
        assert_eq!(outcome(enc(&w.grantee, &key, None)), "ok");
    }
    assert_eq!(code(w.stranger.revoke_grant(&key, &g.grant_id)), DENIED);
    assert_eq!(code(w.grantee.revoke_grant(&key, &g.grant_id)), DENIED);
    w.admin.revoke_grant(&key, &g.grant_id).unwrap();
    assert_eq!(outcome(enc(&w.grantee, &key, None)), DENIED);
    assert_eq!(
        code(w.admin.revoke_grant(&key, &g.grant_id)),
        "InvalidGrantIdException"
    );
    let listed = w.admin.list_grants(&key, None, None, None, None).unwrap();
    assert!(listed.items.is_empty());
}

#[test]
fn list_grants_and_list_retirable_grants_paginate() {
    let w = world();
    let a = sym_key(&w.setup, vec![]);
    let b = sym_key(&w.setup, vec![]);
    let mut on_a = Vec::new();
    for i in 0..7 {
        let grantee = if i % 2 == 0 { GRANTEE } else { STRANGER };
        on_a.push(
            grant(
                &w.setup,
                &a,
                grantee,
                &[GrantOperation::Encrypt],
                Some(USER),
                None,
            )
            .unwrap()
            .grant_id,
        );
    }
    let mut tokens = Vec::new();
    for _ in 0..3 {
        tokens.push(
            grant(
                &w.setup,
                &b,
                GRANTEE,
                &[GrantOperation::Decrypt],
                Some(USER),
                None,
            )
            .unwrap()
            .grant_token,
        );
    }
    grant(
        &w.setup,
        &b,
        GRANTEE,
        &[GrantOperation::Decrypt],
        Some(ADMIN),
        None,
    )
    .unwrap();

    // ListGrants, 3 at a time.
    let mut seen = Vec::new();
    let mut sizes = Vec::new();
    let mut marker: Option<String> = None;
    loop {
        let page = w
            .setup
            .list_grants(&a, None, None, Some(3), marker.as_deref())
            .unwrap();
        sizes.push(page.items.len());
        assert_eq!(page.truncated, page.next_marker.is_some());
        seen.extend(page.items.into_iter().map(|g| g.grant_id));
        match page.next_marker {
            Some(next) => marker = Some(next),
            None => break,
        }
    }
    assert_eq!(sizes, [3, 3, 1]);
    let mut expected = on_a.clone();
    expected.sort();
    let mut sorted = seen.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted, expected);
    // By grantee, and by grant id.
    let grantee_only = w
        .setup
        .list_grants(&a, None, Some(GRANTEE), None, None)
        .unwrap();
    assert_eq!(grantee_only.items.len(), 4);
    assert!(grantee_only
        .items
        .iter()
        .all(|g| g.grantee_principal == GRANTEE));
    let one = w
        .setup
        .list_grants(&a, Some(&on_a[3]), None, None, None)
        .unwrap();
    assert_eq!(one.items.len(), 1);
    assert_eq!(one.items[0].grant_id, on_a[3]);
    assert_eq!(one.items[0].retiring_principal.as_deref(), Some(USER));

    // ListRetirableGrants across keys, 4 at a time.
    let mut retirable = Vec::new();
    let mut sizes = Vec::new();
    let mut marker: Option<String> = None;
    loop {
        let page = w
            .user
            .list_retirable_grants(USER, Some(4), marker.as_deref())
            .unwrap();
        sizes.push(page.items.len());
        retirable.extend(page.items);
        match page.next_marker {
            Some(next) => marker = Some(next),
            None => break,
        }
    }
    assert_eq!(sizes, [4, 4, 2]);
    assert!(retirable
        .iter()
        .all(|g| g.retiring_principal.as_deref() == Some(USER)));
    let ids: std::collections::BTreeSet<&str> =
        retirable.iter().map(|g| g.grant_id.as_str()).collect();
    assert_eq!(ids.len(), 10);
    for token in &tokens {
        let id = token.split_once('.').unwrap().1;
        assert!(ids.contains(id), "{token}");
    }
    assert_eq!(
        w.user
            .list_retirable_grants(ADMIN, None, None)
            .unwrap()
            .items
            .len(),
        1
    );

    assert_eq!(
        code(w.setup.list_grants(&a, None, None, Some(3), Some("bogus"))),
        "InvalidMarkerException"
    );
    assert_eq!(
        code(w.user.list_retirable_grants(USER, Some(0), None)),
        "ValidationException"
    );
    assert_eq!(
        code(w.other.list_retirable_grants(USER, None, None)),
        DENIED
    );
}

// ---- lockout and malformed policies -------------------------------------------------------------

#[test]
fn lockout_check_on_put_key_policy_and_create_key() {
    let w = world();
    let admin_policy = policy(vec![allow(ADMIN, &["kms:*"], Value::Null)]);
    let key = w
        .admin
        .create_key(CreateKeyRequest {
            policy: Some(admin_policy.clone()),
            ..Default::default()
        })
        .unwrap()
        .key_id;
    // Not naming the admin any more: refused.
    let users_only = json!({
        "Version": "2012-10-17",
        "Statement": [allow(USER, &["kms:Encrypt", "kms:Decrypt"], Value::Null)]
    })
    .to_string();
    let err = w
        .admin
        .put_key_policy(&key, &users_only, None, false)
        .unwrap_err();
    assert_eq!(err.code(), "MalformedPolicyDocumentException", "{err}");
    assert_eq!(
        err.message(),
        "The new key policy will not allow you to update the key policy in the future.",
        "{err}"
    );
    assert_eq!(w.admin.get_key_policy(&key, None).unwrap(), admin_policy);
    // Naming it, but denying it PutKeyPolicy: refused too.
    let denied_put = policy(vec![
        allow(ADMIN, &["kms:*"], Value::Null),
        deny(ADMIN, &["kms:PutKeyPolicy"], Value::Null),
    ]);
    assert_eq!(
        code(w.admin.put_key_policy(&key, &denied_put, None, false)),
        "MalformedPolicyDocumentException"
    );
    // Keeping PutKeyPolicy through a wildcard: accepted.
    let keeps_put = json!({
        "Version": "2012-10-17",
        "Statement": [
            allow(ADMIN, &["kms:Put*", "kms:Get*"], Value::Null),
            allow(USER, &["kms:Encrypt"], Value::Null)
        ]
    })
    .to_string();
    w.admin
        .put_key_policy(&key, &keeps_put, None, false)
        .unwrap();
    assert_eq!(w.admin.get_key_policy(&key, None).unwrap(), keeps_put);
    // With the bypass, the lockout is applied, and takes effect at once.
    w.admin
        .put_key_policy(&key, &users_only, None, true)
        .unwrap();
    assert_eq!(code(w.admin.get_key_policy(&key, None)), DENIED);
    assert_eq!(
        code(w.admin.put_key_policy(&key, &admin_policy, None, true)),
        DENIED
    );
    assert_eq!(outcome(enc(&w.user, &key, None)), "ok");

    // CreateKey with a policy that does not let its creator change it.
    let err = w
        .user
        .create_key(CreateKeyRequest {
            policy: Some(admin_policy.clone()),
            ..Default::default()
        })
        .unwrap_err();
    assert_eq!(err.code(), "MalformedPolicyDocumentException", "{err}");
    assert_eq!(
        err.message(),
        "The new key policy will not allow you to update the key policy in the future.",
        "{err}"
    );
    let created = w
        .user
        .create_key(CreateKeyRequest {
            policy: Some(admin_policy),
            bypass_policy_lockout_safety_check: true,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(code(w.user.describe_key(&created.key_id)), DENIED);
    assert_eq!(outcome(w.admin.describe_key(&created.key_id)), "ok");
    // The default policy names the account, and so its creator.
    assert_eq!(
        outcome(w.user.create_key(CreateKeyRequest::default())),
        "ok"
    );
}

#[test]
fn malformed_policies_are_refused_on_write_with_a_pointer_to_the_problem() {
    let w = world();
    let key = sym_key(&w.setup, vec![]);
    let original = w.setup.get_key_policy(&key, None).unwrap();
    let setup_stmt = json!({
        "Sid": "Setup", "Effect": "Allow", "Principal": { "AWS": SETUP },
        "Action": "kms:*", "Resource": "*"
    });
    let with = |second: Value| {
        json!({ "Version": "2012-10-17", "Statement": [setup_stmt.clone(), second] }).to_string()
    };
    let good = json!({
        "Sid": "Users", "Effect": "Allow", "Principal": { "AWS": USER },
        "Action": "kms:Encrypt", "Resource": "*"
    });
    let changed = |field: &str, value: Value| {
        let mut s = good.clone();
        s[field] = value;
        with(s)
    };
    let mut oversized_statements = vec![setup_stmt.clone()];
    for i in 0..400 {
        oversized_statements.push(json!({
            "Sid": format!("Padding{i:04}"), "Effect": "Allow", "Principal": { "AWS": USER },
            "Action": "kms:Encrypt", "Resource": "*"
        }));
    }
    let oversized =
        json!({ "Version": "2012-10-17", "Statement": oversized_statements }).to_string();
    assert!(oversized.len() > 32 * 1024);
    let cases: Vec<(&str, String, Vec<&str>)> = vec![
        (
            "truncated JSON",
            r#"{"Version":"2012-10-17","Statement":["#.to_string(),
            vec![],
        ),
        (
            "unknown top-level field",
            json!({ "Version": "2012-10-17", "Statment": [setup_stmt.clone()] }).to_string(),
            vec!["Statment"],
        ),
        (
            "unknown statement field",
            {
                let mut s = good.clone();
                s["Effects"] = json!("Allow");
                with(s)
            },
            vec!["Statement[1]", "Effects", "Users"],
        ),
        (
            "lower-case effect",
            changed("Effect", json!("allow")),
            vec!["Statement[1]", "Effect"],
        ),
        (
            "unknown operator",
            changed(
                "Condition",
                json!({ "StringEqualz": { "kms:EncryptionContext:tenant": "a" } }),
            ),
            vec!["Statement[1]", "StringEqualz"],
        ),
        (
            "unsupported operator",
            changed(
                "Condition",
                json!({ "NumericLessThan": { "kms:EncryptionContext:n": "3" } }),
            ),
            vec!["Statement[1]", "NumericLessThan"],
        ),
        (
            "misspelt action",
            changed("Action", json!(["kms:Decrypt", "kms:Encrpyt"])),
            vec!["Statement[1]", "kms:Encrpyt"],
        ),
        (
            "missing principal",
            {
                let mut s = good.clone();
                s.as_object_mut().unwrap().remove("Principal");
                with(s)
            },
            vec!["Statement[1]", "Principal"],
        ),
        ("over 32 KiB", oversized, vec!["32"]),
    ];
    for (what, document, pointers) in &cases {
        let err = w
            .setup
            .put_key_policy(&key, document, None, false)
            .unwrap_err();
        println!("{what}: {err}");
        assert_eq!(
            err.code(),
            "MalformedPolicyDocumentException",
            "{what}: {err}"
        );
        assert!(!err.message().is_empty(), "{what}");
        for pointer in pointers {
            assert!(
                err.message().contains(pointer),
                "{what}: the message should name {pointer:?}: {err}"
            );
        }
        let created = w.setup.create_key(CreateKeyRequest {
            policy: Some(document.clone()),
            ..Default::default()
        });
        assert_eq!(
            code(created),
            "MalformedPolicyDocumentException",
            "CreateKey, {what}"
        );
    }
    assert_eq!(w.setup.get_key_policy(&key, None).unwrap(), original);
    // A policy name other than "default" is not a policy of the key.
    assert_eq!(
        code(
            w.setup
                .put_key_policy(&key, &original, Some("other"), false)
        ),
        "NotFoundException"
    );
}

// ---- changes reach the next call ----------------------------------------------------------------

#[test]
fn policy_and_grant_changes_take_effect_on_the_very_next_call() {
    let w = world();
    let users = policy(vec![allow(
        USER,
        &["kms:Encrypt", "kms:DescribeKey"],
        Value::Null,
    )]);
    let nobody = policy(vec![]);
    let key = w
        .setup
        .create_key(CreateKeyRequest {
            policy: Some(users.clone()),
            ..Default::default()
        })
        .unwrap()
        .key_id;
    let batch: Vec<EncryptRequest<'_>> = (0..200)
        .map(|_| EncryptRequest::new(&key, b"warm"))
        .collect();
    let all_are = |engine: &Engine, expected: &str| {
        engine
            .encrypt_batch(&batch)
            .into_iter()
            .all(|r| outcome(r) == expected)
    };

    // Warm every cache the engine has: single calls, batches on the pool, other threads.
    const THREADS: usize = 4;
    let barrier = Arc::new(Barrier::new(THREADS + 1));
    std::thread::scope(|s| {
        for _ in 0..THREADS {
            let (user, key, barrier) = (&w.user, &key, Arc::clone(&barrier));
            s.spawn(move || {
                for _ in 0..50 {
                    assert_eq!(outcome(enc(user, key, None)), "ok");
                }
                barrier.wait(); // warmed
                barrier.wait(); // policy removed
                assert_eq!(outcome(enc(user, key, None)), DENIED);
                barrier.wait(); // checked
                barrier.wait(); // policy restored
                assert_eq!(outcome(enc(user, key, None)), "ok");
            });
        }
        for _ in 0..20 {
            assert_eq!(outcome(enc(&w.user, &key, None)), "ok");
            assert_eq!(outcome(w.user.describe_key(&key)), "ok");
        }
        assert!(all_are(&w.user, "ok"));
        barrier.wait();
        w.setup.put_key_policy(&key, &nobody, None, false).unwrap();
        assert_eq!(outcome(enc(&w.user, &key, None)), DENIED);
        assert_eq!(outcome(w.user.describe_key(&key)), DENIED);
        assert!(all_are(&w.user, DENIED));
        barrier.wait();
        barrier.wait();
        w.setup.put_key_policy(&key, &users, None, false).unwrap();
        assert_eq!(outcome(enc(&w.user, &key, None)), "ok");
        assert!(all_are(&w.user, "ok"));
        barrier.wait();
    });

    // An added Deny, likewise.
    w.setup
        .put_key_policy(
            &key,
            &policy(vec![
                allow(USER, &["kms:Encrypt", "kms:DescribeKey"], Value::Null),
                deny(USER, &["kms:Encrypt"], Value::Null),
            ]),
            None,
            false,
        )
        .unwrap();
    assert_eq!(outcome(enc(&w.user, &key, None)), DENIED);
    assert_eq!(outcome(w.user.describe_key(&key)), "ok");

    // Grants: a cached denial ends with the grant, a cached allowance with its revocation.
    for _ in 0..20 {
        assert_eq!(outcome(enc(&w.grantee, &key, None)), DENIED);
    }
    assert!(all_are(&w.grantee, DENIED));
    let g = grant(
        &w.setup,
        &key,
        GRANTEE,
        &[GrantOperation::Encrypt],
        None,
        None,
    )
    .unwrap();
    assert_eq!(outcome(enc(&w.grantee, &key, None)), "ok");
    assert!(all_are(&w.grantee, "ok"));
    for _ in 0..20 {
        assert_eq!(outcome(enc(&w.grantee, &key, None)), "ok");
    }
    w.setup.revoke_grant(&key, &g.grant_id).unwrap();
    assert_eq!(outcome(enc(&w.grantee, &key, None)), DENIED);
    assert!(all_are(&w.grantee, DENIED));
}

// ---- managed keys -------------------------------------------------------------------------------

#[test]
fn managed_keys_are_usable_through_their_service_only_and_not_customer_changeable() {
    let w = world();
    let managed = w.root.managed_key("s3").unwrap();
    assert_eq!(managed.key_manager, KeyManager::Aws);
    assert_eq!(managed.key_state, KeyState::Enabled);
    assert!(managed.key_rotation_enabled);
    assert_eq!(managed.key_spec, KeySpec::SymmetricDefault);
    let id = managed.key_id.clone();
    // Created once; the same key after that, for any principal of the account.
    assert_eq!(w.root.managed_key("s3").unwrap().key_id, id);
    assert_eq!(w.stranger.managed_key("s3").unwrap().key_id, id);
    assert_ne!(w.root.managed_key("ebs").unwrap().key_id, id);
    assert_eq!(code(w.other.managed_key("s3")), DENIED);
    assert_eq!(code(w.root.managed_key("S3!")), "ValidationException");
    let aliases = w.root.list_aliases(Some(&id), None, None).unwrap();
    let names: Vec<&str> = aliases
        .items
        .iter()
        .map(|a| a.alias_name.as_str())
        .collect();
    assert_eq!(names, ["alias/aws/s3"]);
    let described = w.root.describe_key("alias/aws/s3").unwrap();
    assert_eq!(described.key_id, id);
    assert_eq!(described.key_manager, KeyManager::Aws);
    let customer = w.root.create_key(CreateKeyRequest::default()).unwrap();
    assert_eq!(customer.key_manager, KeyManager::Customer);

    // Rotated every 365 days.
    let rotation = w.root.get_key_rotation_status(&id).unwrap();
    assert!(rotation.key_rotation_enabled);
    assert_eq!(rotation.rotation_period_in_days, Some(365));
    assert_eq!(
        rotation.next_rotation_date,
        Some(managed.creation_date.plus_days(365))
    );

    // Usable through the service, by principals of the account.
    let through = |principal: &str, endpoint: &str| {
        w.root
            .for_caller(Caller::new(principal).unwrap().via_service(endpoint))
    };
    let s3_root = w
        .root
        .for_caller(Caller::account_root(ACCOUNT).unwrap().via_service(S3));
    let s3_user = through(USER, S3);
    let ec2_user = through(USER, "ec2.us-east-1.amazonaws.com");
    let s3_other = through(OTHER, S3);
    let context = ctx(&[("aws:s3:arn", "arn:aws:s3:::bucket/object")]);
    let blob = enc(&s3_user, "alias/aws/s3", Some(&context)).unwrap();
    assert_eq!(
        decrypt(&s3_root, &blob, Some(&context)).unwrap(),
        b"conditional secret"
    );
    assert_eq!(outcome(enc(&s3_root, &id, None)), "ok");
    assert_eq!(
        outcome(s3_user.generate_data_key(&GenerateDataKeyRequest::new(
            "alias/aws/s3",
            DataKeySpec::Aes256
        ))),
        "ok"
    );
    assert_eq!(outcome(s3_user.describe_key("alias/aws/s3")), "ok");
    // Not through another service, not from another account, not directly.
    assert_eq!(outcome(enc(&ec2_user, "alias/aws/s3", None)), DENIED);
    assert_eq!(outcome(enc(&s3_other, "alias/aws/s3", None)), DENIED);
    assert_eq!(outcome(enc(&w.root, "alias/aws/s3", None)), DENIED);
    assert_eq!(outcome(enc(&w.user, "alias/aws/s3", None)), DENIED);
    assert_eq!(outcome(decrypt(&w.root, &blob, Some(&context))), DENIED);

    // Not changeable, disableable, deletable or taggable by the account (nor through s3).
    for engine in [&w.root, &s3_root] {
        let refusals: Vec<(&str, &str)> = vec![
            (
                "PutKeyPolicy",
                outcome(engine.put_key_policy(
                    &id,
                    &keyplane::policy::default_policy(ACCOUNT),
                    None,
                    true,
                )),
            ),
            ("DisableKey", outcome(engine.disable_key(&id))),
            (
                "ScheduleKeyDeletion",
                outcome(engine.schedule_key_deletion(&id, Some(7))),
            ),
            (
                "TagResource",
                outcome(engine.tag_resource(
                    &id,
                    vec![Tag {
                        tag_key: "k".into(),
                        tag_value: "v".into(),
                    }],
                )),
            ),
            ("UntagResource", outcome(engine.untag_resource(&id, &["k"]))),
            (
                "UpdateKeyDescription",
                outcome(engine.update_key_description(&id, "mine now")),
            ),
            (
                "DisableKeyRotation",
                outcome(engine.disable_key_rotation(&id)),
            ),
            (
                "EnableKeyRotation",
                outcome(engine.enable_key_rotation(&id, Some(90))),
            ),
            (
                "RotateKeyOnDemand",
                outcome(engine.rotate_key_on_demand(&id)),
            ),
            ("DeleteAlias", outcome(engine.delete_alias("alias/aws/s3"))),
        ];
        for (operation, result) in refusals {
            assert_eq!(
                result,
                DENIED,
                "{operation} on the managed key by {:?}",
                engine.caller()
            );
        }
    }
    assert!(matches!(
        code(w.root.update_alias("alias/aws/s3", &customer.key_id)),
        "NotAuthorizedException" | DENIED
    ));
    // A grant only through the service.
    assert_eq!(
        code(grant(
            &w.root,
            &id,
            USER,
            &[GrantOperation::Decrypt],
            None,
            None
        )),
        DENIED
    );
    assert_eq!(
        outcome(grant(
            &s3_root,
            &id,
            USER,
            &[GrantOperation::Decrypt],
            None,
            None
        )),
        "ok"
    );
    // Nothing changed.
    let after = w.root.describe_key(&id).unwrap();
    assert_eq!(after.key_state, KeyState::Enabled);
    assert_eq!(after.description, managed.description);
    assert!(after.key_rotation_enabled);
    assert_eq!(
        w.root.list_resource_tags(&id, None, None).unwrap().items,
        vec![]
    );
    assert_eq!(
        w.root
            .list_aliases(Some(&id), None, None)
            .unwrap()
            .items
            .len(),
        1
    );

    // Customers cannot take a reserved alias name.
    for name in ["alias/aws/mine", "alias/aws/s3", "alias/aws/ebs"] {
        assert_eq!(
            code(w.root.create_alias(name, &customer.key_id)),
            "NotAuthorizedException",
            "{name}"
        );
    }
    assert_eq!(
        code(w.root.create_alias("alias/aws/mine", &id)),
        "NotAuthorizedException"
    );
}

#[test]
fn managed_keys_rotate_automatically_every_year() {
    let clock = Arc::new(ManualClock::starting_now());
    let w = world_on(Engine::builder().clock(clock.clone()));
    let managed = w.root.managed_key("s3").unwrap();
    let s3 = w
        .root
        .for_caller(Caller::account_root(ACCOUNT).unwrap().via_service(S3));
    let data_key = |engine: &Engine| {
        engine
            .generate_data_key(&GenerateDataKeyRequest::new(
                "alias/aws/s3",
                DataKeySpec::Aes256,
            ))
            .unwrap()
    };
    let before = data_key(&s3);
    let old_blob = enc(&s3, "alias/aws/s3", None).unwrap();
    clock.advance_days(364);
    w.root.run_due_tasks().unwrap();
    assert!(w
        .root
        .list_key_rotations(&managed.key_id, None, None)
        .unwrap()
        .items
        .is_empty());
    clock.advance_days(2);
    w.root.run_due_tasks().unwrap();
    let rotations = w
        .root
        .list_key_rotations(&managed.key_id, None, None)
        .unwrap()
        .items;
    assert_eq!(rotations.len(), 1, "{rotations:?}");
    assert_eq!(rotations[0].rotation_type, Some(RotationType::Automatic));
    let after = data_key(&s3);
    assert_ne!(after.key_material_id, before.key_material_id);
    assert_eq!(
        decrypt(&s3, &old_blob, None).unwrap(),
        b"conditional secret"
    );
    let status = w.root.get_key_rotation_status(&managed.key_id).unwrap();
    assert_eq!(status.rotation_period_in_days, Some(365));
    assert_eq!(
        status.next_rotation_date,
        rotations[0].rotation_date.map(|d| d.plus_days(365))
    );
}

// ---- quotas -------------------------------------------------------------------------------------

#[test]
fn keys_per_account_quota_is_limit_exceeded() {
    let w = world_on(Engine::builder().max_keys(3));
    for _ in 0..3 {
        w.user.create_key(CreateKeyRequest::default()).unwrap();
    }
    let err = w.user.create_key(CreateKeyRequest::default()).unwrap_err();
    assert_eq!(err.code(), "LimitExceededException", "{err}");
    assert!(err.message().contains('3'), "{err}");
    assert_eq!(w.root.list_keys(None, None).unwrap().items.len(), 3);
}

fn rate_limited(quotas: RateQuotas) -> (World, String) {
    let w = world_on(Engine::builder().rate_quotas(quotas));
    let key = w
        .root
        .create_key(CreateKeyRequest::default())
        .unwrap()
        .key_id;
    (w, key)
}

/// The retry hint of a Throttling error, in milliseconds.
fn retry_hint_ms(err: &keyplane::Error) -> u64 {
    assert_eq!(err.code(), "ThrottlingException", "{err}");
    let message = err.message();
    let rest = message
        .split("retry after ")
        .nth(1)
        .unwrap_or_else(|| panic!("no retry hint in {message:?}"));
    rest.split_whitespace().next().unwrap().parse().unwrap()
}

#[test]
fn symmetric_rate_quota_throttles_with_a_retry_hint() {
    let (w, key) = rate_limited(RateQuotas {
        symmetric_crypto: Some(10),
        ..RateQuotas::off()
    });
    let start = Instant::now();
    let mut allowed = 0u64;
    let throttled = loop {
        match enc(&w.root, &key, None) {
            Ok(_) => allowed += 1,
            Err(e) => break e,
        }
        assert!(allowed <= 200, "never throttled");
    };
    let elapsed_ms = start.elapsed().as_millis() as u64;
    println!("10/s: {allowed} allowed in {elapsed_ms} ms, then {throttled}");
    assert!(allowed >= 10, "a second's burst is allowed: {allowed}");
    assert!(
        allowed <= 10 + elapsed_ms / 100 + 1,
        "{allowed} in {elapsed_ms} ms"
    );
    let hint = retry_hint_ms(&throttled);
    assert!((1..=1000).contains(&hint), "{hint} ms");
    // The same family (GenerateRandom is symmetric crypto) is throttled too; others are not.
    assert_eq!(code(w.root.generate_random(8)), "ThrottlingException");
    let signer = w
        .root
        .create_key(CreateKeyRequest {
            key_spec: Some(KeySpec::EccNistP256),
            key_usage: Some(KeyUsage::SignVerify),
            ..Default::default()
        })
        .unwrap()
        .key_id;
    let signature = w
        .root
        .sign(&SignRequest::new(
            &signer,
            b"m",
            SigningAlgorithm::EcdsaSha256,
        ))
        .unwrap()
        .signature;
    w.root
        .verify(&VerifyRequest {
            key_id: &signer,
            message: b"m",
            message_type: MessageType::Raw,
            signature: &signature,
            signing_algorithm: SigningAlgorithm::EcdsaSha256,
        })
        .unwrap();
    w.root.describe_key(&key).unwrap();
    // After the hint, the call goes through.
    let again = enc(&w.root, &key, None).unwrap_err();
    std::thread::sleep(Duration::from_millis(retry_hint_ms(&again) + 5));
    enc(&w.root, &key, None).unwrap();
}

#[test]
fn a_batch_of_n_counts_as_n_requests() {
    let (w, key) = rate_limited(RateQuotas {
        symmetric_crypto: Some(10),
        ..RateQuotas::off()
    });
    let requests = |n: usize| -> Vec<EncryptRequest<'_>> {
        (0..n).map(|_| EncryptRequest::new(&key, b"item")).collect()
    };
    let start = Instant::now();
    let first = w.root.encrypt_batch(&requests(8));
    let second = w.root.encrypt_batch(&requests(5));
    let single = enc(&w.root, &key, None);
    let elapsed = start.elapsed();
    assert!(first.iter().all(Result::is_ok));
    if elapsed < Duration::from_millis(90) {
        // 8 + 5 > 10: the whole batch is refused (no refill yet); 8 + 1 fits.
        let codes: Vec<&str> = second.into_iter().map(outcome).collect();
        assert_eq!(codes, ["ThrottlingException"; 5]);
        assert_eq!(outcome(single), "ok");
        assert_eq!(outcome(enc(&w.root, &key, None)), "ok");
        assert_eq!(outcome(enc(&w.root, &key, None)), "ThrottlingException");
    } else {
        println!("skipped the exact count: the batches took {elapsed:?}");
    }
    // Once the bucket has refilled, a batch of the whole rate fits, and the next one does not.
    std::thread::sleep(Duration::from_millis(1100));
    assert!(w
        .root
        .encrypt_batch(&requests(10))
        .iter()
        .all(Result::is_ok));
    let over = w.root.encrypt_batch(&requests(3));
    assert!(over
        .iter()
        .all(|r| outcome(r.clone()) == "ThrottlingException"));
}

#[test]
fn rate_quotas_off_are_unlimited() {
    let (w, key) = rate_limited(RateQuotas::off());
    for _ in 0..2000 {
        enc(&w.root, &key, None).unwrap();
    }
    let requests: Vec<EncryptRequest<'_>> =
        (0..5000).map(|_| EncryptRequest::new(&key, b"x")).collect();
    assert!(w.root.encrypt_batch(&requests).iter().all(Result::is_ok));
    for _ in 0..300 {
        w.root.describe_key(&key).unwrap();
    }
    assert_eq!(
        Engine::in_memory().unwrap().config().rate_quotas,
        RateQuotas::off()
    );
}

#[test]
fn control_plane_family_is_throttled_on_its_own() {
    let (w, key) = rate_limited(RateQuotas {
        control_plane: Some(5),
        ..RateQuotas::off()
    });
    let mut allowed = 0;
    let start = Instant::now();
    let throttled = loop {
        match w.user.describe_key(&key) {
            Ok(_) => allowed += 1,
            Err(e) => break e,
        }
        assert!(allowed <= 100, "never throttled");
    };
    let elapsed_ms = start.elapsed().as_millis() as u64;
    // CreateKey took one unit of the five.
    assert!(allowed >= 4, "{allowed}");
    assert!(
        allowed <= 4 + elapsed_ms / 200 + 1,
        "{allowed} in {elapsed_ms} ms"
    );
    assert!(retry_hint_ms(&throttled) >= 1);
    for operation in [
        outcome(w.user.list_keys(None, None)),
        outcome(w.user.create_key(CreateKeyRequest::default())),
        outcome(w.user.get_key_policy(&key, None)),
    ] {
        assert_eq!(operation, "ThrottlingException");
    }
    // The data plane is not charged to the control plane.
    for _ in 0..100 {
        enc(&w.user, &key, None).unwrap();
    }
}

// ---- GetKeyLastUsage ----------------------------------------------------------------------------

/// The (requestID, eventID) of the last successful `event` record about `arn`.
fn last_record(path: &std::path::Path, event: &str, arn: &str) -> (String, String) {
    let text = std::fs::read_to_string(path).unwrap();
    let record = text
        .lines()
        .filter(|l| l.starts_with("{\"seq\":"))
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .rfind(|r| {
            r["eventName"] == event
                && r.get("errorCode").is_none()
                && r["resources"]
                    .as_array()
                    .is_some_and(|rs| rs.iter().any(|x| x["ARN"] == arn))
        })
        .unwrap_or_else(|| panic!("no {event} record for {arn}"));
    (
        record["requestID"].as_str().unwrap().to_owned(),
        record["eventID"].as_str().unwrap().to_owned(),
    )
}

#[test]
fn get_key_last_usage_reports_the_last_successful_cryptographic_use() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.log");
    let signing_key = generate_signing_key(keyplane::LockPolicy::default()).unwrap();
    let w = world_on(Engine::builder().audit(AuditConfig::new(&path), signing_key));
    let key = sym_key(&w.setup, vec![allow(USER, &["kms:Encrypt"], Value::Null)]);
    let metadata = w.setup.describe_key(&key).unwrap();
    let arn = metadata.arn.clone();

    let fresh = w.setup.get_key_last_usage(&key).unwrap();
    assert_eq!(fresh.key_id, arn);
    assert_eq!(fresh.key_last_usage, None);
    assert!(fresh.tracking_start_date.is_some());
    assert_eq!(fresh.key_creation_date, metadata.creation_date);

    let check = |operation: &str| {
        let usage = w
            .setup
            .get_key_last_usage(&key)
            .unwrap()
            .key_last_usage
            .unwrap_or_else(|| panic!("no last usage after {operation}"));
        let (request_id, event_id) = last_record(&path, operation, &arn);
        assert_eq!(usage.operation, operation);
        assert_eq!(usage.kms_request_id, request_id);
        assert_eq!(usage.cloud_trail_event_id, event_id);
        usage
    };
    enc(&w.user, &key, None).unwrap();
    let first = check("Encrypt");

    // Failures, denials and non-cryptographic calls change nothing.
    let garbage = DecryptRequest::new(b"not a ciphertext at all").with_key_id(&key);
    assert!(w.setup.decrypt(&garbage).is_err());
    assert_eq!(
        code(decrypt(&w.user, &enc(&w.setup, &key, None).unwrap(), None)),
        DENIED
    );
    assert_eq!(code(enc(&w.stranger, &key, None)), DENIED);
    w.setup.describe_key(&key).unwrap();
    w.setup.disable_key(&key).unwrap();
    assert_eq!(code(enc(&w.user, &key, None)), "DisabledException");
    w.setup.enable_key(&key).unwrap();
    let setup_encrypt = last_record(&path, "Encrypt", &arn);
    let usage = w
        .setup
        .get_key_last_usage(&key)
        .unwrap()
        .key_last_usage
        .unwrap();
    // The setup's own encrypt (for the denied decrypt above) was the last success.
    assert_eq!(usage.kms_request_id, setup_encrypt.0);
    assert_ne!(usage.kms_request_id, first.kms_request_id);

    w.setup
        .generate_data_key(&GenerateDataKeyRequest::new(&key, DataKeySpec::Aes128))
        .unwrap();
    check("GenerateDataKey");
    let batch: Vec<EncryptRequest<'_>> = (0..3).map(|_| EncryptRequest::new(&key, b"b")).collect();
    assert!(w.user.encrypt_batch(&batch).iter().all(Result::is_ok));
    check("Encrypt");
    // Another key's use is another key's.
    let other = sym_key(&w.setup, vec![]);
    enc(&w.setup, &other, None).unwrap();
    check("Encrypt");

    // Decrypt naming the key counts.
    let blob = enc(&w.setup, &key, None).unwrap();
    dec_named(&w.setup, &blob, &key).unwrap();
    check("Decrypt");

    // Without an audit log there is nothing to report.
    let plain = Engine::in_memory().unwrap();
    let k = new_key(&plain);
    enc(&plain, &k, None).unwrap();
    let report = plain.get_key_last_usage(&k).unwrap();
    assert_eq!(report.key_last_usage, None);
    assert_eq!(report.tracking_start_date, None);
}

fn dec_named(engine: &Engine, blob: &[u8], key: &str) -> keyplane::Result<Vec<u8>> {
    engine
        .decrypt(&DecryptRequest::new(blob).with_key_id(key))
        .map(|r| r.plaintext.expose().to_vec())
}

#[test]
fn get_key_last_usage_counts_a_decrypt_that_does_not_name_its_key() {
    // A symmetric ciphertext names its key, so Decrypt needs no KeyId (the usual call). The use
    // is still a use of that key: its audit record names the key (resources), and GetKeyLastUsage
    // reports it.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.log");
    let signing_key = generate_signing_key(keyplane::LockPolicy::default()).unwrap();
    let engine = Engine::builder()
        .audit(AuditConfig::new(&path), signing_key)
        .build()
        .unwrap();
    let key = engine.create_key(CreateKeyRequest::default()).unwrap();
    let blob = enc(&engine, &key.key_id, None).unwrap();
    decrypt(&engine, &blob, None).unwrap();
    let usage = engine
        .get_key_last_usage(&key.key_id)
        .unwrap()
        .key_last_usage
        .unwrap();
    assert_eq!(
        usage.operation, "Decrypt",
        "the last use of {} was a Decrypt (without KeyId), but GetKeyLastUsage reports {usage:?}",
        key.arn
    );
    let (request_id, _) = last_record(&path, "Decrypt", &key.arn);
    assert_eq!(usage.kms_request_id, request_id);
}
