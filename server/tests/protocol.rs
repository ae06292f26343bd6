//! The JSON 1.1 protocol layer, through `Service::handle` on an in-memory engine: the dispatch
//! table against the engine and the service model, every operation's response members, every
//! error path, and coalescing.

use std::collections::BTreeSet;
use std::future::Future;
use std::sync::Arc;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use keyplane::access::Action;
use keyplane::{Caller, Engine, RequestOrigin};
use keyplane_server::coalesce::CoalesceConfig;
use keyplane_server::protocol::{dispatch, errors, Reply, Service};
use keyplane_server::{Metrics, RequestContext};
use serde_json::{json, Value};

const ACCOUNT: &str = "111122223333";
const ALICE: &str = "arn:aws:iam::111122223333:user/alice";
const BOB: &str = "arn:aws:iam::111122223333:user/bob";
const MODEL: &str = include_str!("../../engine/model/kms-service-2.json");

fn service_with(engine: Engine, coalesce: CoalesceConfig) -> Service {
    Service::new(engine, coalesce, Arc::new(Metrics::default()))
}

fn no_coalescing() -> CoalesceConfig {
    CoalesceConfig {
        enabled: false,
        ..CoalesceConfig::default()
    }
}

#[path = "../../engine/tests/support/soft_hsm.rs"]
mod soft_hsm;

fn service() -> Service {
    service_with(Engine::in_memory().unwrap(), no_coalescing())
}

fn ctx_as(principal: &str, request_id: &str) -> RequestContext {
    let caller = if principal == "root" {
        Caller::account_root(ACCOUNT).unwrap()
    } else {
        Caller::new(principal).unwrap()
    };
    RequestContext {
        request_id: request_id.to_owned(),
        caller,
        origin: RequestOrigin {
            request_id: Some(request_id.to_owned()),
            ..RequestOrigin::default()
        },
    }
}

fn root() -> RequestContext {
    ctx_as("root", "00000000-0000-4000-8000-000000000000")
}

async fn raw(svc: &Service, ctx: &RequestContext, target: Option<&str>, body: &[u8]) -> Reply {
    svc.handle(ctx, target, body).await
}

/// Calls `op` with `body` as `ctx`; returns the status and the parsed body.
async fn call_as(svc: &Service, ctx: &RequestContext, op: &str, body: Value) -> (u16, Value) {
    let target = format!("TrentService.{op}");
    let reply = raw(svc, ctx, Some(&target), body.to_string().as_bytes()).await;
    let value: Value = serde_json::from_slice(&reply.body).expect("every answer is JSON");
    assert!(value.is_object(), "{op}: the answer is a JSON object");
    match reply.error_code {
        Some(code) => assert_eq!(value["__type"], code, "{op}: __type is the error code"),
        None => assert_eq!(reply.status, 200, "{op}: success is 200"),
    }
    (reply.status, value)
}

async fn call(svc: &Service, op: &str, body: Value) -> (u16, Value) {
    call_as(svc, &root(), op, body).await
}

/// Calls `op` and expects success, with an answer of the model's output shape.
async fn ok(svc: &Service, op: &str, body: Value) -> Value {
    let (status, value) = call(svc, op, body).await;
    assert_eq!(status, 200, "{op} failed: {value}");
    let model = model();
    match model["operations"][op]["output"]["shape"].as_str() {
        Some(output) => conforms(&model, output, &value, op),
        None => assert_eq!(value, json!({}), "{op} has no output members"),
    }
    value
}

/// Checks that `value` is of the model's shape `shape`: only the shape's members, each of its
/// type (blobs base64, timestamps numbers), recursively.
fn conforms(model: &Value, shape: &str, value: &Value, at: &str) {
    let s = &model["shapes"][shape];
    match s["type"].as_str().unwrap() {
        "structure" => {
            let members = s["members"].as_object().unwrap();
            for (name, v) in value
                .as_object()
                .unwrap_or_else(|| panic!("{at}: not an object"))
            {
                let member = members
                    .get(name)
                    .unwrap_or_else(|| panic!("{at}.{name} is not a member of {shape}"));
                conforms(
                    model,
                    member["shape"].as_str().unwrap(),
                    v,
                    &format!("{at}.{name}"),
                );
            }
        }
        "list" => {
            let item = s["member"]["shape"].as_str().unwrap();
            for v in value
                .as_array()
                .unwrap_or_else(|| panic!("{at}: not a list"))
            {
                conforms(model, item, v, &format!("{at}[]"));
            }
        }
        "map" => {
            let item = s["value"]["shape"].as_str().unwrap();
            for v in value
                .as_object()
                .unwrap_or_else(|| panic!("{at}: not a map"))
                .values()
            {
                conforms(model, item, v, &format!("{at}{{}}"));
            }
        }
        "blob" => {
            let text = value
                .as_str()
                .unwrap_or_else(|| panic!("{at}: not a string"));
            assert!(B64.decode(text).is_ok(), "{at}: not base64");
        }
        "timestamp" => assert!(value.is_number(), "{at}: not epoch seconds"),
        "string" => {
            let text = value
                .as_str()
                .unwrap_or_else(|| panic!("{at}: not a string"));
            if let Some(values) = s["enum"].as_array() {
                assert!(
                    values.iter().any(|v| v == text),
                    "{at}: {text} is not in {shape}"
                );
            }
        }
        "boolean" => assert!(value.is_boolean(), "{at}: not a boolean"),
        "integer" | "long" => assert!(value.is_i64(), "{at}: not an integer"),
        other => panic!("{at}: shape type {other}"),
    }
}

/// Calls `op` and expects the error `code` with HTTP `status`; returns the message.
async fn fails(svc: &Service, op: &str, body: Value, code: &str, status: u16) -> String {
    let (got, value) = call(svc, op, body).await;
    assert_eq!(value["__type"], code, "{op}: {value}");
    assert_eq!(got, status, "{op}: status of {code}");
    value["message"].as_str().unwrap_or_default().to_owned()
}

fn b64(bytes: &[u8]) -> String {
    B64.encode(bytes)
}

fn unb64(value: &Value) -> Vec<u8> {
    B64.decode(value.as_str().expect("a base64 string"))
        .unwrap()
}

fn members(value: &Value) -> BTreeSet<String> {
    value.as_object().unwrap().keys().cloned().collect()
}

fn has(value: &Value, names: &[&str]) {
    for name in names {
        assert!(
            value.get(*name).is_some(),
            "{name} missing from {}",
            members(value).into_iter().collect::<Vec<_>>().join(",")
        );
    }
}

// ---- the dispatch table -----------------------------------------------------------------------

fn model() -> Value {
    serde_json::from_str(MODEL).unwrap()
}

#[test]
fn every_engine_action_has_an_endpoint_operation() {
    for action in Action::ALL {
        let name = match action {
            Action::ReEncryptFrom | Action::ReEncryptTo => "ReEncrypt",
            other => other.operation(),
        };
        assert!(
            dispatch::find(name).is_some(),
            "the engine's {} has no endpoint operation {name}",
            action.as_str()
        );
    }
}

#[test]
fn every_dispatch_entry_is_an_operation_of_the_model_and_every_model_operation_is_accounted_for() {
    let model = model();
    let operations = model["operations"].as_object().unwrap();
    assert_eq!(model["metadata"]["targetPrefix"], "TrentService");
    let mut seen = BTreeSet::new();
    for op in dispatch::OPERATIONS {
        assert!(
            operations.contains_key(op.name),
            "{} is not an operation of the service model",
            op.name
        );
        assert!(seen.insert(op.name), "{} is in the table twice", op.name);
    }
    for (name, why) in dispatch::NOT_SERVED {
        assert!(operations.contains_key(*name), "{name} is not in the model");
        assert!(dispatch::find(name).is_none(), "{name} is served and not");
        assert!(!why.is_empty(), "{name} is not served without a reason");
    }
    for name in operations.keys() {
        assert!(
            dispatch::find(name).is_some() || dispatch::not_served(name).is_some(),
            "the model's {name} is neither served nor listed as not served"
        );
    }
}

#[test]
fn error_codes_have_the_services_http_status() {
    for (code, status) in [
        ("KMSInternalException", 500),
        ("KeyUnavailableException", 500),
        ("DependencyTimeoutException", 503),
        ("DryRunOperationException", 412),
        ("ThrottlingException", 400),
        ("AccessDeniedException", 400),
        ("NotFoundException", 400),
        ("DisabledException", 400),
        ("KMSInvalidStateException", 400),
        ("ValidationException", 400),
        ("SerializationException", 400),
        ("UnknownOperationException", 400),
        ("LimitExceededException", 400),
        ("UnsupportedOperationException", 400),
    ] {
        assert_eq!(errors::status(code), status, "{code}");
    }
    // Every error shape of the model is a 4xx or 5xx.
    let model = model();
    for (name, shape) in model["shapes"].as_object().unwrap() {
        if shape.get("exception").is_some() {
            let status = errors::status(name);
            assert!((400..600).contains(&status), "{name}: {status}");
        }
    }
}

// ---- every operation --------------------------------------------------------------------------

/// Runs every served operation at least once and checks its response members; fails when an
/// operation of the table is not exercised.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_operation_answers_with_the_services_members() {
    let svc = service();
    let mut done = BTreeSet::new();
    macro_rules! op {
        ($name:literal, $body:expr) => {{
            done.insert($name);
            ok(&svc, $name, $body).await
        }};
    }

    // Keys.
    let created = op!(
        "CreateKey",
        json!({"Description": "orders", "Tags": [{"TagKey": "team", "TagValue": "a"}]})
    );
    let m = &created["KeyMetadata"];
    has(
        m,
        &[
            "AWSAccountId",
            "KeyId",
            "Arn",
            "CreationDate",
            "Enabled",
            "Description",
            "KeyUsage",
            "KeyState",
            "Origin",
            "KeyManager",
            "CustomerMasterKeySpec",
            "KeySpec",
            "EncryptionAlgorithms",
            "MultiRegion",
        ],
    );
    assert!(
        m["CreationDate"].is_number(),
        "timestamps are epoch seconds"
    );
    assert_eq!(m["KeyState"], "Enabled");
    assert_eq!(m["EncryptionAlgorithms"], json!(["SYMMETRIC_DEFAULT"]));
    let key = m["KeyId"].as_str().unwrap().to_owned();
    let arn = m["Arn"].as_str().unwrap().to_owned();
    let d = op!("DescribeKey", json!({"KeyId": key}));
    assert_eq!(d["KeyMetadata"]["Arn"], arn);
    let l = op!("ListKeys", json!({"Limit": 1}));
    has(&l, &["Keys", "Truncated"]);
    has(&l["Keys"][0], &["KeyId", "KeyArn"]);
    let all = ok(&svc, "ListKeys", json!({})).await;
    assert_eq!(all["Truncated"], false);
    assert!(all.get("NextMarker").is_none());
    assert_eq!(
        members(&op!(
            "UpdateKeyDescription",
            json!({"KeyId": key, "Description": "d2"})
        )),
        BTreeSet::new()
    );

    // Aliases.
    op!(
        "CreateAlias",
        json!({"AliasName": "alias/orders", "TargetKeyId": key})
    );
    let aliases = op!("ListAliases", json!({"KeyId": key}));
    has(&aliases, &["Aliases", "Truncated"]);
    has(
        &aliases["Aliases"][0],
        &["AliasName", "AliasArn", "TargetKeyId"],
    );

    // Symmetric data plane.
    let context = json!({"tenant": "42"});
    let e = op!(
        "Encrypt",
        json!({"KeyId": "alias/orders", "Plaintext": b64(b"card 4111"), "EncryptionContext": context})
    );
    assert_eq!(
        members(&e),
        ["CiphertextBlob", "EncryptionAlgorithm", "KeyId"]
            .map(String::from)
            .into()
    );
    assert_eq!(e["KeyId"], arn, "Encrypt answers the key's ARN");
    assert_eq!(e["EncryptionAlgorithm"], "SYMMETRIC_DEFAULT");
    let blob = e["CiphertextBlob"].clone();
    let dec = op!(
        "Decrypt",
        json!({"CiphertextBlob": blob, "EncryptionContext": context})
    );
    has(
        &dec,
        &["KeyId", "Plaintext", "EncryptionAlgorithm", "KeyMaterialId"],
    );
    assert_eq!(unb64(&dec["Plaintext"]), b"card 4111");
    assert_eq!(dec["KeyId"], arn);
    let key2 = ok(&svc, "CreateKey", json!({})).await["KeyMetadata"]["KeyId"]
        .as_str()
        .unwrap()
        .to_owned();
    op!(
        "UpdateAlias",
        json!({"AliasName": "alias/orders", "TargetKeyId": key2})
    );
    let re = op!(
        "ReEncrypt",
        json!({"CiphertextBlob": blob, "SourceEncryptionContext": context, "DestinationKeyId": "alias/orders"})
    );
    has(
        &re,
        &[
            "CiphertextBlob",
            "SourceKeyId",
            "KeyId",
            "SourceEncryptionAlgorithm",
            "DestinationEncryptionAlgorithm",
        ],
    );
    assert_eq!(re["SourceKeyId"], arn);
    let dk = op!(
        "GenerateDataKey",
        json!({"KeyId": key, "KeySpec": "AES_256"})
    );
    has(
        &dk,
        &["CiphertextBlob", "Plaintext", "KeyId", "KeyMaterialId"],
    );
    assert_eq!(unb64(&dk["Plaintext"]).len(), 32);
    let dk2 = op!(
        "GenerateDataKeyWithoutPlaintext",
        json!({"KeyId": key, "NumberOfBytes": 16})
    );
    has(&dk2, &["CiphertextBlob", "KeyId"]);
    assert!(dk2.get("Plaintext").is_none());
    let opened = ok(
        &svc,
        "Decrypt",
        json!({"CiphertextBlob": dk2["CiphertextBlob"]}),
    )
    .await;
    assert_eq!(unb64(&opened["Plaintext"]).len(), 16);
    let r = op!("GenerateRandom", json!({"NumberOfBytes": 24}));
    assert_eq!(unb64(&r["Plaintext"]).len(), 24);

    // Tags.
    op!(
        "TagResource",
        json!({"KeyId": key, "Tags": [{"TagKey": "env", "TagValue": "prod"}]})
    );
    let t = op!("ListResourceTags", json!({"KeyId": key}));
    has(&t, &["Tags", "Truncated"]);
    assert_eq!(t["Tags"].as_array().unwrap().len(), 2);
    op!("UntagResource", json!({"KeyId": key, "TagKeys": ["env"]}));

    // Rotation.
    op!(
        "EnableKeyRotation",
        json!({"KeyId": key, "RotationPeriodInDays": 90})
    );
    let s = op!("GetKeyRotationStatus", json!({"KeyId": key}));
    assert_eq!(s["KeyRotationEnabled"], true);
    assert_eq!(s["RotationPeriodInDays"], 90);
    has(&s, &["KeyId", "NextRotationDate"]);
    let rot = op!("RotateKeyOnDemand", json!({"KeyId": key}));
    assert_eq!(rot["KeyId"], arn);
    let rots = op!("ListKeyRotations", json!({"KeyId": key}));
    has(
        &rots["Rotations"][0],
        &["KeyId", "KeyMaterialId", "RotationDate", "RotationType"],
    );
    op!("DisableKeyRotation", json!({"KeyId": key}));

    // Policies.
    let p = op!("GetKeyPolicy", json!({"KeyId": key}));
    assert_eq!(p["PolicyName"], "default");
    let policy = p["Policy"].as_str().unwrap().to_owned();
    op!(
        "PutKeyPolicy",
        json!({"KeyId": key, "Policy": policy, "PolicyName": "default"})
    );
    let names = op!("ListKeyPolicies", json!({"KeyId": key}));
    assert_eq!(names["PolicyNames"], json!(["default"]));
    assert_eq!(names["Truncated"], false);

    // Grants.
    let g = op!(
        "CreateGrant",
        json!({"KeyId": key, "GranteePrincipal": ALICE, "RetiringPrincipal": BOB,
               "Operations": ["Encrypt", "Decrypt"],
               "Constraints": {"EncryptionContextSubset": {"tenant": "42"}}, "Name": "g1"})
    );
    has(&g, &["GrantToken", "GrantId"]);
    let grants = op!("ListGrants", json!({"KeyId": key}));
    let entry = &grants["Grants"][0];
    has(
        entry,
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
    assert_eq!(
        entry["Constraints"]["EncryptionContextSubset"],
        json!({"tenant": "42"})
    );
    let retirable = op!("ListRetirableGrants", json!({"RetiringPrincipal": BOB}));
    assert_eq!(retirable["Grants"].as_array().unwrap().len(), 1);
    op!("RetireGrant", json!({"GrantToken": g["GrantToken"]}));
    let g2 = ok(
        &svc,
        "CreateGrant",
        json!({"KeyId": key, "GranteePrincipal": ALICE, "Operations": ["Decrypt"]}),
    )
    .await;
    op!(
        "RevokeGrant",
        json!({"KeyId": key, "GrantId": g2["GrantId"]})
    );

    // Lifecycle.
    op!("DisableKey", json!({"KeyId": key}));
    op!("EnableKey", json!({"KeyId": key}));
    let del = op!(
        "ScheduleKeyDeletion",
        json!({"KeyId": key2, "PendingWindowInDays": 7})
    );
    has(
        &del,
        &["KeyId", "DeletionDate", "KeyState", "PendingWindowInDays"],
    );
    assert_eq!(del["KeyState"], "PendingDeletion");
    assert!(del["DeletionDate"].is_number());
    let c = op!("CancelKeyDeletion", json!({"KeyId": key2}));
    has(&c, &["KeyId"]);
    let usage = op!("GetKeyLastUsage", json!({"KeyId": key}));
    has(&usage, &["KeyId", "KeyCreationDate"]);
    op!("DeleteAlias", json!({"AliasName": "alias/orders"}));

    // Asymmetric: signing.
    let signer = ok(
        &svc,
        "CreateKey",
        json!({"KeySpec": "ECC_NIST_P256", "KeyUsage": "SIGN_VERIFY"}),
    )
    .await["KeyMetadata"]["KeyId"]
        .as_str()
        .unwrap()
        .to_owned();
    let sig = op!(
        "Sign",
        json!({"KeyId": signer, "Message": b64(b"hello"), "SigningAlgorithm": "ECDSA_SHA_256"})
    );
    has(&sig, &["KeyId", "Signature", "SigningAlgorithm"]);
    let v = op!(
        "Verify",
        json!({"KeyId": signer, "Message": b64(b"hello"), "Signature": sig["Signature"],
               "SigningAlgorithm": "ECDSA_SHA_256", "MessageType": "RAW"})
    );
    assert_eq!(v["SignatureValid"], true);
    let pk = op!("GetPublicKey", json!({"KeyId": signer}));
    has(
        &pk,
        &[
            "KeyId",
            "PublicKey",
            "KeySpec",
            "KeyUsage",
            "SigningAlgorithms",
        ],
    );
    assert_eq!(pk["KeySpec"], "ECC_NIST_P256");

    // Data key pairs and key agreement.
    let pair = op!(
        "GenerateDataKeyPair",
        json!({"KeyId": key, "KeyPairSpec": "ECC_NIST_P256"})
    );
    has(
        &pair,
        &[
            "PrivateKeyCiphertextBlob",
            "PrivateKeyPlaintext",
            "PublicKey",
            "KeyId",
            "KeyPairSpec",
        ],
    );
    let pair2 = op!(
        "GenerateDataKeyPairWithoutPlaintext",
        json!({"KeyId": key, "KeyPairSpec": "ECC_NIST_P256"})
    );
    assert!(pair2.get("PrivateKeyPlaintext").is_none());
    let agreer = ok(
        &svc,
        "CreateKey",
        json!({"KeySpec": "ECC_NIST_P256", "KeyUsage": "KEY_AGREEMENT"}),
    )
    .await["KeyMetadata"]["KeyId"]
        .as_str()
        .unwrap()
        .to_owned();
    let shared = op!(
        "DeriveSharedSecret",
        json!({"KeyId": agreer, "KeyAgreementAlgorithm": "ECDH", "PublicKey": pair["PublicKey"]})
    );
    has(
        &shared,
        &[
            "KeyId",
            "SharedSecret",
            "KeyAgreementAlgorithm",
            "KeyOrigin",
        ],
    );

    // HMAC.
    let hmac = ok(
        &svc,
        "CreateKey",
        json!({"KeySpec": "HMAC_256", "KeyUsage": "GENERATE_VERIFY_MAC"}),
    )
    .await["KeyMetadata"]["KeyId"]
        .as_str()
        .unwrap()
        .to_owned();
    let mac = op!(
        "GenerateMac",
        json!({"KeyId": hmac, "Message": b64(b"m"), "MacAlgorithm": "HMAC_SHA_256"})
    );
    has(&mac, &["Mac", "MacAlgorithm", "KeyId"]);
    let vm = op!(
        "VerifyMac",
        json!({"KeyId": hmac, "Message": b64(b"m"), "Mac": mac["Mac"], "MacAlgorithm": "HMAC_SHA_256"})
    );
    assert_eq!(vm["MacValid"], true);

    // Importing key material.
    let external = ok(&svc, "CreateKey", json!({"Origin": "EXTERNAL"})).await["KeyMetadata"]
        ["KeyId"]
        .as_str()
        .unwrap()
        .to_owned();
    let params = op!(
        "GetParametersForImport",
        json!({"KeyId": external, "WrappingAlgorithm": "RSAES_OAEP_SHA_256",
               "WrappingKeySpec": "RSA_2048"})
    );
    has(
        &params,
        &["KeyId", "ImportToken", "PublicKey", "ParametersValidTo"],
    );
    let wrapped = oaep_sha256(&unb64(&params["PublicKey"]), &[0x42; 32]);
    let valid_to = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 30 * 86_400;
    let imported = op!(
        "ImportKeyMaterial",
        json!({"KeyId": external, "ImportToken": params["ImportToken"],
               "EncryptedKeyMaterial": b64(&wrapped), "ValidTo": valid_to})
    );
    has(&imported, &["KeyId", "KeyMaterialId"]);
    let described = ok(&svc, "DescribeKey", json!({"KeyId": external})).await;
    assert_eq!(described["KeyMetadata"]["KeyState"], "Enabled");
    assert_eq!(
        described["KeyMetadata"]["ExpirationModel"],
        "KEY_MATERIAL_EXPIRES"
    );
    assert_eq!(
        described["KeyMetadata"]["ValidTo"].as_f64(),
        Some(valid_to as f64)
    );
    let all = ok(
        &svc,
        "ListKeyRotations",
        json!({"KeyId": external, "IncludeKeyMaterial": "ALL_KEY_MATERIAL"}),
    )
    .await;
    assert_eq!(all["Rotations"][0]["ImportState"], "IMPORTED");
    assert_eq!(all["Rotations"][0]["KeyMaterialState"], "CURRENT");
    let rotations_only = ok(&svc, "ListKeyRotations", json!({"KeyId": external})).await;
    assert_eq!(rotations_only["Rotations"], json!([]));
    let deleted = op!("DeleteImportedKeyMaterial", json!({"KeyId": external}));
    assert_eq!(deleted["KeyMaterialId"], imported["KeyMaterialId"]);
    // The token of another key, and different material, are the service's errors.
    let other = ok(&svc, "CreateKey", json!({"Origin": "EXTERNAL"})).await["KeyMetadata"]["KeyId"]
        .as_str()
        .unwrap()
        .to_owned();
    fails(
        &svc,
        "ImportKeyMaterial",
        json!({"KeyId": other, "ImportToken": params["ImportToken"],
               "EncryptedKeyMaterial": b64(&wrapped), "ExpirationModel": "KEY_MATERIAL_DOES_NOT_EXPIRE"}),
        "InvalidImportTokenException",
        400,
    )
    .await;
    fails(
        &svc,
        "ImportKeyMaterial",
        json!({"KeyId": external, "ImportToken": params["ImportToken"],
               "EncryptedKeyMaterial": b64(&oaep_sha256(&unb64(&params["PublicKey"]), &[0x43; 32])),
               "ExpirationModel": "KEY_MATERIAL_DOES_NOT_EXPIRE"}),
        "IncorrectKeyMaterialException",
        400,
    )
    .await;

    // Multi-Region keys, on an engine given a second Region's store.
    let west: Arc<dyn keyplane::store::KeyStore> = Arc::new(keyplane::store::MemoryKeyStore::new(
        keyplane::LockPolicy::Require,
    ));
    let regions = service_with(
        Engine::builder()
            .region_store("eu-west-1", west)
            .build()
            .unwrap(),
        no_coalescing(),
    );
    let created = ok(&regions, "CreateKey", json!({"MultiRegion": true})).await;
    let mrk = created["KeyMetadata"]["KeyId"].as_str().unwrap().to_owned();
    assert!(mrk.starts_with("mrk-"), "{mrk}");
    assert_eq!(
        created["KeyMetadata"]["MultiRegionConfiguration"]["MultiRegionKeyType"],
        "PRIMARY"
    );
    done.insert("ReplicateKey");
    let replicated = ok(
        &regions,
        "ReplicateKey",
        json!({"KeyId": mrk, "ReplicaRegion": "eu-west-1",
               "Tags": [{"TagKey": "team", "TagValue": "west"}]}),
    )
    .await;
    has(
        &replicated,
        &["ReplicaKeyMetadata", "ReplicaPolicy", "ReplicaTags"],
    );
    let replica = &replicated["ReplicaKeyMetadata"];
    assert_eq!(
        replica["Arn"],
        format!("arn:aws:kms:eu-west-1:{ACCOUNT}:key/{mrk}")
    );
    assert_eq!(
        replica["MultiRegionConfiguration"]["ReplicaKeys"][0]["Region"],
        "eu-west-1"
    );
    fails(
        &regions,
        "ReplicateKey",
        json!({"KeyId": mrk, "ReplicaRegion": "eu-west-1"}),
        "AlreadyExistsException",
        400,
    )
    .await;
    done.insert("UpdatePrimaryRegion");
    assert_eq!(
        members(
            &ok(
                &regions,
                "UpdatePrimaryRegion",
                json!({"KeyId": mrk, "PrimaryRegion": "eu-west-1"})
            )
            .await
        ),
        BTreeSet::new()
    );
    let described = ok(&regions, "DescribeKey", json!({"KeyId": mrk})).await;
    let config = &described["KeyMetadata"]["MultiRegionConfiguration"];
    assert_eq!(config["MultiRegionKeyType"], "REPLICA");
    assert_eq!(config["PrimaryKey"]["Region"], "eu-west-1");

    // Custom key stores, on an engine with a (software) HSM backend.
    let hsm = soft_hsm::SoftHsm::new();
    let stores = service_with(
        Engine::builder()
            .custom_key_store_backend(
                keyplane::CustomKeyStoreType::AwsCloudhsm,
                std::sync::Arc::new(hsm.clone()),
            )
            .build()
            .unwrap(),
        no_coalescing(),
    );
    done.insert("CreateCustomKeyStore");
    let created = ok(
        &stores,
        "CreateCustomKeyStore",
        json!({
            "CustomKeyStoreName": "hsm",
            "CloudHsmClusterId": soft_hsm::CLUSTER,
            "TrustAnchorCertificate": soft_hsm::ANCHOR,
            "KeyStorePassword": soft_hsm::PIN,
        }),
    )
    .await;
    assert_eq!(
        members(&created),
        BTreeSet::from(["CustomKeyStoreId".to_owned()])
    );
    let store = created["CustomKeyStoreId"].as_str().unwrap().to_owned();
    done.insert("ConnectCustomKeyStore");
    let connected = ok(
        &stores,
        "ConnectCustomKeyStore",
        json!({"CustomKeyStoreId": store}),
    )
    .await;
    assert_eq!(members(&connected), BTreeSet::new());
    done.insert("DescribeCustomKeyStores");
    let described = ok(&stores, "DescribeCustomKeyStores", json!({})).await;
    let entry = &described["CustomKeyStores"][0];
    has(
        entry,
        &[
            "CustomKeyStoreId",
            "CustomKeyStoreName",
            "CustomKeyStoreType",
            "CloudHsmClusterId",
            "TrustAnchorCertificate",
            "ConnectionState",
            "CreationDate",
        ],
    );
    assert_eq!(entry["ConnectionState"], "CONNECTED");
    assert!(
        entry.get("KeyStorePassword").is_none(),
        "the PIN is never answered"
    );
    let key = ok(
        &stores,
        "CreateKey",
        json!({"Origin": "AWS_CLOUDHSM", "CustomKeyStoreId": store}),
    )
    .await;
    assert_eq!(key["KeyMetadata"]["CustomKeyStoreId"], json!(store));
    assert_eq!(key["KeyMetadata"]["CloudHsmClusterId"], soft_hsm::CLUSTER);
    let key_id = key["KeyMetadata"]["KeyId"].as_str().unwrap().to_owned();
    let sealed = ok(
        &stores,
        "Encrypt",
        json!({"KeyId": key_id, "Plaintext": "aGVsbG8="}),
    )
    .await;
    let opened = ok(
        &stores,
        "Decrypt",
        json!({"CiphertextBlob": sealed["CiphertextBlob"]}),
    )
    .await;
    assert_eq!(opened["Plaintext"], "aGVsbG8=");
    let random = ok(
        &stores,
        "GenerateRandom",
        json!({"NumberOfBytes": 16, "CustomKeyStoreId": store}),
    )
    .await;
    assert_eq!(random["Plaintext"].as_str().unwrap().len(), 24);
    done.insert("UpdateCustomKeyStore");
    let updated = ok(
        &stores,
        "UpdateCustomKeyStore",
        json!({"CustomKeyStoreId": store, "NewCustomKeyStoreName": "renamed"}),
    )
    .await;
    assert_eq!(members(&updated), BTreeSet::new());
    done.insert("DisconnectCustomKeyStore");
    ok(
        &stores,
        "DisconnectCustomKeyStore",
        json!({"CustomKeyStoreId": store}),
    )
    .await;
    fails(
        &stores,
        "DeleteCustomKeyStore",
        json!({"CustomKeyStoreId": store}),
        "CustomKeyStoreHasCMKsException",
        400,
    )
    .await;
    let other = ok(
        &stores,
        "CreateCustomKeyStore",
        json!({
            "CustomKeyStoreName": "empty",
            "CloudHsmClusterId": soft_hsm::OTHER_CLUSTER,
            "TrustAnchorCertificate": soft_hsm::ANCHOR,
            "KeyStorePassword": soft_hsm::PIN,
        }),
    )
    .await;
    done.insert("DeleteCustomKeyStore");
    let deleted = ok(
        &stores,
        "DeleteCustomKeyStore",
        json!({"CustomKeyStoreId": other["CustomKeyStoreId"]}),
    )
    .await;
    assert_eq!(members(&deleted), BTreeSet::new());

    let missing: Vec<_> = dispatch::OPERATIONS
        .iter()
        .map(|op| op.name)
        .filter(|name| !done.contains(name))
        .collect();
    assert!(missing.is_empty(), "not exercised: {missing:?}");
}

/// RSA-OAEP-SHA256 of `plaintext` to a DER SubjectPublicKeyInfo, as an importer wraps material.
fn oaep_sha256(public_der: &[u8], plaintext: &[u8]) -> Vec<u8> {
    use aws_lc_rs::rsa::{OaepPublicEncryptingKey, PublicEncryptingKey, OAEP_SHA256_MGF1SHA256};
    let key =
        OaepPublicEncryptingKey::new(PublicEncryptingKey::from_der(public_der).unwrap()).unwrap();
    let mut out = vec![0u8; key.ciphertext_size()];
    let n = key
        .encrypt(&OAEP_SHA256_MGF1SHA256, plaintext, &mut out, None)
        .unwrap()
        .len();
    out.truncate(n);
    out
}

// ---- errors -----------------------------------------------------------------------------------

async fn new_key(svc: &Service) -> String {
    ok(svc, "CreateKey", json!({})).await["KeyMetadata"]["KeyId"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn a_missing_or_unknown_target_is_unknown_operation() {
    let svc = service();
    for target in [
        None,
        Some(""),
        Some("Encrypt"),
        Some("TrentService."),
        Some("TrentService.Nope"),
        Some("trentservice.Encrypt"),
        Some("OtherService.Encrypt"),
        Some("TrentService.Encrypt "),
    ] {
        let reply = raw(&svc, &root(), target, b"{}").await;
        assert_eq!(reply.status, 400, "{target:?}");
        assert_eq!(reply.error_code, Some("UnknownOperationException"));
        let body: Value = serde_json::from_slice(&reply.body).unwrap();
        assert_eq!(body["__type"], "UnknownOperationException");
        assert_eq!(reply.operation, None);
    }
}

#[tokio::test]
async fn custom_key_stores_without_a_pkcs11_backend_say_why() {
    let svc = service();
    let message = fails(
        &svc,
        "CreateCustomKeyStore",
        json!({
            "CustomKeyStoreName": "x",
            "CloudHsmClusterId": "cluster-abcdefghijk",
            "TrustAnchorCertificate": "-----BEGIN CERTIFICATE-----",
            "KeyStorePassword": "crypto-user-pin",
        }),
        "UnsupportedOperationException",
        400,
    )
    .await;
    assert!(message.contains("PKCS#11 backend"), "{message}");
    // The store that does not exist is the service's exception, not an unknown operation.
    fails(
        &svc,
        "DescribeCustomKeyStores",
        json!({"CustomKeyStoreId": "cks-1234567890abcdef0"}),
        "CustomKeyStoreNotFoundException",
        400,
    )
    .await;
}

#[tokio::test]
async fn a_body_that_is_not_a_json_object_is_a_serialization_error() {
    let svc = service();
    for body in [
        &b"{"[..],
        b"not json",
        b"[]",
        b"\"KeyId\"",
        b"42",
        b"null",
        b"{\"KeyId\": \"a\"} trailing",
        &[0xff, 0xfe, 0x00],
    ] {
        let reply = raw(&svc, &root(), Some("TrentService.DescribeKey"), body).await;
        assert_eq!(reply.status, 400);
        assert_eq!(reply.error_code, Some("SerializationException"), "{body:?}");
        assert_eq!(reply.operation, Some("DescribeKey"));
    }
    // An empty body is {}: ListKeys needs nothing.
    let reply = raw(&svc, &root(), Some("TrentService.ListKeys"), b"").await;
    assert_eq!(reply.status, 200);
}

#[tokio::test]
async fn a_member_of_the_wrong_type_is_a_serialization_error_naming_it() {
    let svc = service();
    let key = new_key(&svc).await;
    for (op, body, member) in [
        ("DescribeKey", json!({"KeyId": 7}), "KeyId"),
        (
            "Encrypt",
            json!({"KeyId": key, "Plaintext": 5}),
            "Plaintext",
        ),
        (
            "Encrypt",
            json!({"KeyId": key, "Plaintext": "not base64!"}),
            "Plaintext",
        ),
        (
            "Encrypt",
            json!({"KeyId": key, "Plaintext": "YQ"}),
            "Plaintext",
        ),
        (
            "Encrypt",
            json!({"KeyId": key, "Plaintext": "YQ==", "EncryptionContext": {"a": 1}}),
            "EncryptionContext",
        ),
        (
            "Encrypt",
            json!({"KeyId": key, "Plaintext": "YQ==", "EncryptionContext": ["a"]}),
            "EncryptionContext",
        ),
        (
            "GenerateRandom",
            json!({"NumberOfBytes": "16"}),
            "NumberOfBytes",
        ),
        (
            "GenerateRandom",
            json!({"NumberOfBytes": 1.5}),
            "NumberOfBytes",
        ),
        ("ListKeys", json!({"Limit": true}), "Limit"),
        ("CreateKey", json!({"MultiRegion": "false"}), "MultiRegion"),
        ("CreateKey", json!({"Tags": {"TagKey": "a"}}), "Tags"),
        ("CreateKey", json!({"Tags": ["a"]}), "Tags"),
        (
            "UntagResource",
            json!({"KeyId": key, "TagKeys": [1]}),
            "TagKeys",
        ),
        (
            "CreateGrant",
            json!({"KeyId": key, "GranteePrincipal": ALICE, "Operations": ["Decrypt"], "Constraints": []}),
            "Constraints",
        ),
        (
            "CreateGrant",
            json!({"KeyId": key, "GranteePrincipal": ALICE, "Operations": ["Decrypt"],
                   "Constraints": {"EncryptionContextEquals": {"a": 2}}}),
            "EncryptionContextEquals",
        ),
    ] {
        let message = fails(&svc, op, body.clone(), "SerializationException", 400).await;
        assert!(message.contains(member), "{op} {body}: {message}");
    }
}

#[tokio::test]
async fn unknown_members_are_ignored_and_null_is_missing() {
    let svc = service();
    let key = new_key(&svc).await;
    let d = ok(
        &svc,
        "DescribeKey",
        json!({"KeyId": key, "Whatever": {"x": [1]}, "GrantTokens": null}),
    )
    .await;
    assert_eq!(d["KeyMetadata"]["KeyId"], key);
    let message = fails(
        &svc,
        "DescribeKey",
        json!({"KeyId": null}),
        "ValidationException",
        400,
    )
    .await;
    assert_eq!(
        message,
        "1 validation error detected: Value null at 'keyId' failed to satisfy constraint: Member must not be null"
    );
}

#[tokio::test]
async fn validation_errors_are_the_engines_own() {
    let svc = service();
    let engine = svc.engine().clone();
    let key = new_key(&svc).await;
    // Missing members reach the engine's wording as missing, not as a serialization error; a
    // sensitive member shows nothing, not even null.
    let message = fails(&svc, "Encrypt", json!({}), "ValidationException", 400).await;
    assert_eq!(
        message,
        "2 validation errors detected: Value null at 'keyId' failed to satisfy constraint: \
         Member must not be null; Value at 'plaintext' failed to satisfy constraint: Member must \
         not be null"
    );
    // Lengths, ranges, enums: the engine's message, word for word.
    let empty = engine
        .encrypt(&keyplane::EncryptRequest::new(&key, b""))
        .unwrap_err();
    let message = fails(
        &svc,
        "Encrypt",
        json!({"KeyId": key, "Plaintext": ""}),
        "ValidationException",
        400,
    )
    .await;
    assert_eq!(message, empty.message());
    let zero = engine.generate_random(0).unwrap_err();
    let message = fails(
        &svc,
        "GenerateRandom",
        json!({"NumberOfBytes": 0}),
        "ValidationException",
        400,
    )
    .await;
    assert_eq!(message, zero.message());
    let message = fails(
        &svc,
        "ListKeys",
        json!({"Limit": -1}),
        "ValidationException",
        400,
    )
    .await;
    assert!(
        message.starts_with("1 validation error detected: Value '-1' at 'limit'"),
        "{message}"
    );
    let message = fails(
        &svc,
        "CreateKey",
        json!({"KeySpec": "FOO"}),
        "ValidationException",
        400,
    )
    .await;
    assert!(
        message.starts_with("1 validation error detected: Value 'FOO' at 'keySpec' failed to satisfy constraint: Member must satisfy enum value set: ["),
        "{message}"
    );
}

#[tokio::test]
async fn engine_errors_keep_their_code_message_and_status() {
    let svc = service();
    let key = new_key(&svc).await;
    fails(
        &svc,
        "DescribeKey",
        json!({"KeyId": "11111111-2222-3333-4444-555555555555"}),
        "NotFoundException",
        400,
    )
    .await;
    ok(&svc, "DisableKey", json!({"KeyId": key})).await;
    let message = fails(
        &svc,
        "Encrypt",
        json!({"KeyId": key, "Plaintext": b64(b"x")}),
        "DisabledException",
        400,
    )
    .await;
    assert!(!message.is_empty());
    ok(&svc, "EnableKey", json!({"KeyId": key})).await;
    fails(
        &svc,
        "Decrypt",
        json!({"CiphertextBlob": b64(&[1u8; 80])}),
        "InvalidCiphertextException",
        400,
    )
    .await;
    let message = fails(
        &svc,
        "Encrypt",
        json!({"KeyId": key, "Plaintext": b64(b"x"), "DryRun": true}),
        "DryRunOperationException",
        412,
    )
    .await;
    assert!(message.contains("DryRun"), "{message}");
    fails(
        &svc,
        "Decrypt",
        json!({"CiphertextBlob": b64(b"x"), "Recipient": {"AttestationDocument": "YQ=="}}),
        "UnsupportedOperationException",
        400,
    )
    .await;
}

#[tokio::test]
async fn a_principal_the_key_policy_does_not_name_is_denied() {
    const ADMIN: &str = "arn:aws:iam::111122223333:role/KeyAdmin";
    const USER: &str = "arn:aws:iam::111122223333:role/app";
    let svc = service();
    let policy = keyplane::policy::templates::separated(&[ADMIN], &[USER]).unwrap();
    let admin = ctx_as(ADMIN, "10000000-0000-4000-8000-000000000001");
    let user = ctx_as(USER, "10000000-0000-4000-8000-000000000002");
    let other = ctx_as(ALICE, "10000000-0000-4000-8000-000000000003");
    let (status, created) = call_as(&svc, &admin, "CreateKey", json!({"Policy": policy})).await;
    assert_eq!(status, 200, "{created}");
    let key = created["KeyMetadata"]["KeyId"].as_str().unwrap();
    let body = json!({"KeyId": key, "Plaintext": b64(b"secret")});
    let (status, _) = call_as(&svc, &user, "Encrypt", body.clone()).await;
    assert_eq!(status, 200);
    for (ctx, what) in [
        (&admin, "an administrator"),
        (&other, "a principal not named"),
    ] {
        let (status, denied) = call_as(&svc, ctx, "Encrypt", body.clone()).await;
        assert_eq!(status, 400, "{what}");
        assert_eq!(
            denied["__type"], "AccessDeniedException",
            "{what}: {denied}"
        );
    }
    let (_, denied) = call_as(&svc, &user, "DisableKey", json!({"KeyId": key})).await;
    assert_eq!(denied["__type"], "AccessDeniedException");
}

#[tokio::test]
async fn errors_never_echo_plaintext_or_member_values() {
    let svc = service();
    let key = new_key(&svc).await;
    let secret = "TOPSECRET-4111-1111-1111-1111";
    let long = secret.repeat(200);
    for (op, body) in [
        (
            "Encrypt",
            json!({"KeyId": key, "Plaintext": b64(long.as_bytes())}),
        ),
        (
            "Encrypt",
            json!({"KeyId": key, "Plaintext": format!("{secret}!!")}),
        ),
        (
            "Encrypt",
            json!({"KeyId": key, "Plaintext": b64(secret.as_bytes()), "EncryptionContext": {"k": 1}}),
        ),
        ("Decrypt", json!({"CiphertextBlob": b64(secret.as_bytes())})),
        (
            "GenerateMac",
            json!({"KeyId": key, "Message": b64(secret.as_bytes()), "MacAlgorithm": "HMAC_SHA_256"}),
        ),
    ] {
        let target = format!("TrentService.{op}");
        let reply = raw(&svc, &root(), Some(&target), body.to_string().as_bytes()).await;
        assert_ne!(reply.status, 200, "{op}");
        let answer = String::from_utf8_lossy(&reply.body).into_owned();
        assert!(!answer.contains(secret), "{op}: {answer}");
        assert!(!answer.contains(&b64(secret.as_bytes())), "{op}: {answer}");
    }
    // A body that is not JSON is not quoted back either.
    let reply = raw(
        &svc,
        &root(),
        Some("TrentService.Encrypt"),
        format!("{{\"Plaintext\": {secret}").as_bytes(),
    )
    .await;
    assert!(!String::from_utf8_lossy(&reply.body).contains(secret));
}

// ---------------------------------------------------------------------------------------------
// perf (issue 13): where a call runs. A data-plane call on an engine whose calls do not block
// (audit log `Queued`, or none) runs on the async worker: its `handle` future is ready at its
// first poll. With a `Synced` audit log, and for the control plane always, it goes to the
// blocking pool: the first poll is pending. (On the old code every call was pending.)
// ---------------------------------------------------------------------------------------------

/// Polls `handle` once: `Some(reply)` when it answered without waiting on another thread.
fn first_poll(svc: &Service, ctx: &RequestContext, op: &str, body: &Value) -> Option<Reply> {
    let target = format!("TrentService.{op}");
    let body = body.to_string();
    let mut future = std::pin::pin!(svc.handle(ctx, Some(&target), body.as_bytes()));
    struct Noop;
    impl std::task::Wake for Noop {
        fn wake(self: Arc<Self>) {}
    }
    let waker = std::task::Waker::from(Arc::new(Noop));
    let mut cx = std::task::Context::from_waker(&waker);
    match future.as_mut().poll(&mut cx) {
        std::task::Poll::Ready(reply) => Some(reply),
        std::task::Poll::Pending => None,
    }
}

/// Holds the runtime's only blocking thread until dropped, so that work sent to the blocking pool
/// cannot finish before `first_poll` looks: pending then means "went to the pool", never "lost a
/// race with a fast pool thread" (the test failed that way on a loaded machine).
struct BlockingPoolHeld(Option<std::sync::mpsc::Sender<()>>);

impl BlockingPoolHeld {
    async fn hold() -> Self {
        let (started_tx, started_rx) = tokio::sync::oneshot::channel();
        let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
        tokio::task::spawn_blocking(move || {
            let _ = started_tx.send(());
            let _ = release_rx.recv();
        });
        started_rx.await.expect("the blocking thread started");
        Self(Some(release_tx))
    }
}

impl Drop for BlockingPoolHeld {
    fn drop(&mut self) {
        self.0.take();
    }
}

#[test]
fn data_plane_calls_run_on_the_worker_only_when_the_engine_says_they_cannot_block() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .max_blocking_threads(1)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(where_calls_run());
}

async fn where_calls_run() {
    use keyplane::audit::{generate_signing_key, AuditConfig, Durability};
    let dir = tempfile::tempdir().unwrap();
    for (name, durability) in [
        ("none", None),
        ("queued.log", Some(Durability::Queued)),
        ("synced.log", Some(Durability::Synced)),
    ] {
        let mut builder = Engine::builder();
        if let Some(durability) = durability {
            let mut config = AuditConfig::new(dir.path().join(name));
            config.durability = durability;
            let signing_key = generate_signing_key(keyplane::LockPolicy::default()).unwrap();
            builder = builder.audit(config, signing_key);
        }
        let engine = builder.build().unwrap();
        let blocks = durability == Some(Durability::Synced);
        assert_eq!(engine.calls_may_block(), blocks, "{name}");
        let key = engine.create_key(Default::default()).unwrap();
        let svc = service_with(engine, no_coalescing());
        let encrypt = json!({"KeyId": key.key_id, "Plaintext": B64.encode(b"inline")});
        let ctx = root();
        let held = BlockingPoolHeld::hold().await;
        match first_poll(&svc, &ctx, "Encrypt", &encrypt) {
            Some(reply) => {
                assert!(
                    !blocks,
                    "{name}: Encrypt ran on the worker with a synced audit log"
                );
                assert_eq!(
                    reply.status,
                    200,
                    "{}",
                    String::from_utf8_lossy(&reply.body)
                );
            }
            None => assert!(blocks, "{name}: Encrypt went to the blocking pool"),
        }
        // The control plane writes the store: always on the blocking pool.
        assert!(
            first_poll(&svc, &ctx, "CreateKey", &json!({})).is_none(),
            "{name}: CreateKey ran on the worker"
        );
        drop(held);
        // The answer is the same either way.
        let reply = raw(
            &svc,
            &ctx,
            Some("TrentService.Encrypt"),
            encrypt.to_string().as_bytes(),
        )
        .await;
        assert_eq!(reply.status, 200, "{name}");
    }
}
