//! Issue 17 (identifiers, aliases, keys and algorithms): the engine behaves and speaks exactly as
//! the service does. One test per behaviour, each asserting the error code and the exact message;
//! the identifier table is checked against the KeyId documentation of the vendored service model
//! (`engine/model/kms-service-2.json`).

use keyplane::access::Action;
use keyplane::key::identifier::{key_id_form, KeyIdForm};
use keyplane::{
    CreateGrantRequest, CreateKeyRequest, DecryptRequest, EncryptRequest, Engine,
    GenerateMacRequest, GrantOperation, KeySpec, KeyUsage, MacAlgorithm, MessageType, SignRequest,
    SigningAlgorithm, Tag, VerifyMacRequest, VerifyRequest,
};
use keyplane_testkit::{new_key, new_key_of};

const ARN_PREFIX: &str = "arn:aws:kms:us-east-1:111122223333:";

fn engine() -> Engine {
    Engine::builder().worker_threads(1).build().unwrap()
}

fn symmetric(engine: &Engine) -> String {
    new_key(engine)
}

fn arn(engine: &Engine, key_id: &str) -> String {
    engine.describe_key(key_id).unwrap().arn
}

/// The error's code and message.
fn refused<T: std::fmt::Debug>(result: keyplane::Result<T>) -> (&'static str, String) {
    let e = result.unwrap_err();
    (e.code(), e.message().to_owned())
}

fn expect(code: &'static str, message: impl Into<String>) -> (&'static str, String) {
    (code, message.into())
}

// ---- the identifier table ------------------------------------------------------------------

/// The operation (as [`Action`]) whose input member `member` is a KeyIdType.
fn action_of(operation: &str, member: &str) -> Option<Action> {
    let name = match (operation, member) {
        ("ReEncrypt", "SourceKeyId") => "ReEncryptFrom",
        ("ReEncrypt", "DestinationKeyId") => "ReEncryptTo",
        (op, _) => op,
    };
    Action::ALL.iter().copied().find(|a| a.operation() == name)
}

#[test]
fn identifier_table_matches_the_models_key_id_documentation() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/model/kms-service-2.json"
    ))
    .unwrap();
    let model: serde_json::Value = serde_json::from_str(&text).unwrap();
    let shapes = &model["shapes"];
    let mut checked = 0;
    for (operation, spec) in model["operations"].as_object().unwrap() {
        let Some(input) = spec["input"]["shape"].as_str() else {
            continue;
        };
        let Some(members) = shapes[input]["members"].as_object() else {
            continue;
        };
        for (member, m) in members {
            if m["shape"] != "KeyIdType" {
                continue;
            }
            let Some(action) = action_of(operation, member) else {
                // Operations keyplane does not have (imports, replication, custom key stores).
                continue;
            };
            let doc = m["documentation"].as_str().unwrap_or_default();
            let accepts_aliases = doc.contains("alias name, or alias ARN");
            let expected = if accepts_aliases {
                KeyIdForm::KeyOrAlias
            } else if matches!(action, Action::CreateAlias | Action::UpdateAlias) {
                KeyIdForm::AliasTarget
            } else if matches!(action, Action::GenerateMac | Action::VerifyMac) {
                // Documents no identifier forms; a cryptographic operation, which takes aliases.
                assert!(!doc.contains("key ID or key ARN"), "{operation}: {doc}");
                KeyIdForm::KeyOrAlias
            } else {
                KeyIdForm::KeyOnly
            };
            assert_eq!(key_id_form(action), expected, "{operation}.{member}");
            checked += 1;
        }
    }
    // Every KeyId of the 40 operations keyplane implements that have one.
    assert!(checked >= 36, "checked {checked}");
}

#[test]
fn operations_taking_a_key_id_or_arn_refuse_aliases_with_not_found() {
    let engine = engine();
    let key = symmetric(&engine);
    engine.create_alias("alias/app", &key).unwrap();
    let policy = engine.get_key_policy(&key, None).unwrap();
    for alias in ["alias/app".to_owned(), format!("{ARN_PREFIX}alias/app")] {
        let not_found = expect("NotFoundException", format!("Invalid keyId '{alias}'"));
        let a = alias.as_str();
        let results = [
            (
                "EnableKeyRotation",
                refused(engine.enable_key_rotation(a, None)),
            ),
            (
                "DisableKeyRotation",
                refused(engine.disable_key_rotation(a)),
            ),
            (
                "GetKeyRotationStatus",
                refused(engine.get_key_rotation_status(a)),
            ),
            (
                "ListKeyRotations",
                refused(engine.list_key_rotations(a, None, None)),
            ),
            ("RotateKeyOnDemand", refused(engine.rotate_key_on_demand(a))),
            (
                "PutKeyPolicy",
                refused(engine.put_key_policy(a, &policy, None, false)),
            ),
            ("GetKeyPolicy", refused(engine.get_key_policy(a, None))),
            ("ListKeyPolicies", refused(engine.list_key_policies(a))),
            ("TagResource", refused(engine.tag_resource(a, vec![]))),
            ("UntagResource", refused(engine.untag_resource(a, &["x"]))),
            (
                "ListResourceTags",
                refused(engine.list_resource_tags(a, None, None)),
            ),
            (
                "ScheduleKeyDeletion",
                refused(engine.schedule_key_deletion(a, None)),
            ),
            ("CancelKeyDeletion", refused(engine.cancel_key_deletion(a))),
            ("EnableKey", refused(engine.enable_key(a))),
            ("DisableKey", refused(engine.disable_key(a))),
            (
                "UpdateKeyDescription",
                refused(engine.update_key_description(a, "d")),
            ),
            (
                "ListGrants",
                refused(engine.list_grants(a, None, None, None, None)),
            ),
            (
                "RevokeGrant",
                refused(engine.revoke_grant(a, &"0".repeat(64))),
            ),
            (
                "ListAliases",
                refused(engine.list_aliases(Some(a), None, None)),
            ),
            (
                "CreateGrant",
                refused(engine.create_grant(CreateGrantRequest {
                    key_id: alias.clone(),
                    grantee_principal: "arn:aws:iam::111122223333:role/app".into(),
                    retiring_principal: None,
                    operations: vec![GrantOperation::Encrypt],
                    constraints: None,
                    name: None,
                })),
            ),
        ];
        for (operation, got) in results {
            assert_eq!(got, not_found, "{operation} with {alias}");
        }
        // The cryptographic operations and DescribeKey keep accepting aliases.
        assert_eq!(engine.describe_key(a).unwrap().key_id, key);
        let sealed = engine.encrypt(&EncryptRequest::new(a, b"x")).unwrap();
        let opened = engine
            .decrypt(&DecryptRequest::new(&sealed.ciphertext_blob).with_key_id(a))
            .unwrap();
        assert_eq!(opened.plaintext.expose(), b"x");
    }
    // Nothing was changed through the alias.
    assert_eq!(
        engine.describe_key(&key).unwrap().key_state.as_str(),
        "Enabled"
    );
}

#[test]
fn a_malformed_key_id_is_invalid_key_id() {
    let engine = engine();
    assert_eq!(
        refused(engine.describe_key("unknown")),
        expect("NotFoundException", "Invalid keyId 'unknown'")
    );
    assert_eq!(
        refused(engine.encrypt(&EncryptRequest::new("arn:aws:kms", b"x"))),
        expect("NotFoundException", "Invalid keyId 'arn:aws:kms'")
    );
}

#[test]
fn a_missing_key_names_its_arn_and_another_regions_arn_is_invalid() {
    let engine = engine();
    let missing = "1234abcd-12ab-34cd-56ef-1234567890ab";
    let missing_arn = format!("{ARN_PREFIX}key/{missing}");
    let does_not_exist = expect(
        "NotFoundException",
        format!("Key '{missing_arn}' does not exist"),
    );
    assert_eq!(refused(engine.describe_key(missing)), does_not_exist);
    assert_eq!(refused(engine.describe_key(&missing_arn)), does_not_exist);
    assert_eq!(refused(engine.enable_key(missing)), does_not_exist);
    assert_eq!(
        refused(engine.encrypt(&EncryptRequest::new(missing, b"x"))),
        does_not_exist
    );
    let key = symmetric(&engine);
    let other_region = format!("arn:aws:kms:eu-west-1:111122223333:key/{key}");
    assert_eq!(
        refused(engine.describe_key(&other_region)),
        expect("NotFoundException", "Invalid arn eu-west-1")
    );
    assert_eq!(
        refused(engine.encrypt(&EncryptRequest::new(&other_region, b"x"))),
        expect("NotFoundException", "Invalid arn eu-west-1")
    );
}

// ---- aliases -------------------------------------------------------------------------------

#[test]
fn create_alias_checks_in_the_services_order_with_its_messages() {
    let engine = engine();
    let key = symmetric(&engine);
    assert_eq!(
        refused(engine.create_alias("app", &key)),
        expect(
            "ValidationException",
            "Alias must start with the prefix \"alias/\". Please see \
             https://docs.aws.amazon.com/kms/latest/developerguide/kms-alias.html"
        )
    );
    assert_eq!(
        refused(engine.create_alias("alias/aws/s3", &key)).0,
        "NotAuthorizedException"
    );
    engine.create_alias("alias/app", &key).unwrap();
    // A target that is an alias is refused before the duplicate name is noticed, so an alias can
    // never point to an alias.
    for target in ["alias/app".to_owned(), format!("{ARN_PREFIX}alias/app")] {
        let not_aliases = expect(
            "ValidationException",
            "Aliases must refer to keys. Not aliases",
        );
        assert_eq!(
            refused(engine.create_alias("alias/app", &target)),
            not_aliases
        );
        assert_eq!(
            refused(engine.create_alias("alias/new", &target)),
            not_aliases
        );
        assert_eq!(
            refused(engine.update_alias("alias/app", &target)),
            not_aliases
        );
    }
    assert_eq!(
        refused(engine.create_alias("alias/app", &key)),
        expect(
            "AlreadyExistsException",
            format!("An alias with the name {ARN_PREFIX}alias/app already exists")
        )
    );
    let names: Vec<String> = engine
        .list_aliases(None, Some(100), None)
        .unwrap()
        .items
        .into_iter()
        .filter(|a| a.target_key_id.is_some())
        .map(|a| a.alias_name)
        .collect();
    assert_eq!(names, ["alias/app"]);
}

#[test]
fn delete_alias_messages() {
    let engine = engine();
    assert_eq!(refused(engine.delete_alias("app")).0, "ValidationException");
    assert_eq!(
        refused(engine.delete_alias("alias/gone")),
        expect(
            "NotFoundException",
            format!("Alias {ARN_PREFIX}alias/gone is not found.")
        )
    );
    // A missing alias used as a KeyId says the same.
    assert_eq!(
        refused(engine.encrypt(&EncryptRequest::new("alias/gone", b"x"))),
        expect(
            "NotFoundException",
            format!("Alias {ARN_PREFIX}alias/gone is not found.")
        )
    );
}

// ---- keys and algorithms -------------------------------------------------------------------

#[test]
fn create_key_needs_a_key_usage_except_for_symmetric_keys() {
    let engine = engine();
    for spec in [KeySpec::Hmac256, KeySpec::Rsa2048, KeySpec::EccNistP256] {
        assert_eq!(
            refused(engine.create_key(CreateKeyRequest {
                key_spec: Some(spec),
                ..Default::default()
            })),
            expect(
                "ValidationException",
                "You must specify a KeyUsage value for all KMS keys except for symmetric \
                 encryption keys."
            ),
            "{spec}"
        );
    }
    assert_eq!(
        refused(engine.create_key(CreateKeyRequest {
            key_spec: Some(KeySpec::Rsa2048),
            key_usage: Some(KeyUsage::KeyAgreement),
            ..Default::default()
        })),
        expect(
            "ValidationException",
            "KeyUsage KEY_AGREEMENT is not compatible with KeySpec RSA_2048"
        )
    );
    assert!(engine.list_keys(None, None).unwrap().items.is_empty());
}

#[test]
fn an_algorithm_the_key_spec_does_not_support_is_invalid_key_usage() {
    let engine = engine();
    let ecc = new_key_of(&engine, KeySpec::EccNistP256, KeyUsage::SignVerify);
    let incompatible = expect(
        "InvalidKeyUsageException",
        "Algorithm ECDSA_SHA_384 is incompatible with key spec ECC_NIST_P256.",
    );
    assert_eq!(
        refused(engine.sign(&SignRequest::new(&ecc, b"m", SigningAlgorithm::EcdsaSha384))),
        incompatible
    );
    assert_eq!(
        refused(engine.verify(&VerifyRequest {
            key_id: &ecc,
            message: b"m",
            message_type: MessageType::Raw,
            signature: &[0x30; 70],
            signing_algorithm: SigningAlgorithm::EcdsaSha384,
        })),
        incompatible
    );
    let hmac = new_key_of(&engine, KeySpec::Hmac256, KeyUsage::GenerateVerifyMac);
    let incompatible = expect(
        "InvalidKeyUsageException",
        "Algorithm HMAC_SHA_512 is incompatible with key spec HMAC_256.",
    );
    assert_eq!(
        refused(engine.generate_mac(&GenerateMacRequest {
            key_id: &hmac,
            message: b"m",
            mac_algorithm: MacAlgorithm::HmacSha512,
        })),
        incompatible
    );
    assert_eq!(
        refused(engine.verify_mac(&VerifyMacRequest {
            key_id: &hmac,
            message: b"m",
            mac: &[0; 64],
            mac_algorithm: MacAlgorithm::HmacSha512,
        })),
        incompatible
    );
}

#[test]
fn a_digest_of_the_wrong_length_is_a_validation_error() {
    let engine = engine();
    let ecc = new_key_of(&engine, KeySpec::EccNistP256, KeyUsage::SignVerify);
    assert_eq!(
        refused(engine.sign(&SignRequest {
            key_id: &ecc,
            message: &[7; 31],
            message_type: MessageType::Digest,
            signing_algorithm: SigningAlgorithm::EcdsaSha256,
        })),
        expect(
            "ValidationException",
            "Digest is invalid length for algorithm ECDSA_SHA_256."
        )
    );
}

#[test]
fn a_key_used_for_the_wrong_usage_says_its_usage_and_the_operation() {
    let engine = engine();
    let sym = symmetric(&engine);
    let sym_arn = arn(&engine, &sym);
    assert_eq!(
        refused(engine.sign(&SignRequest::new(&sym, b"m", SigningAlgorithm::EcdsaSha256))),
        expect(
            "InvalidKeyUsageException",
            format!("{sym_arn} key usage is ENCRYPT_DECRYPT which is not valid for Sign.")
        )
    );
    let ecc = new_key_of(&engine, KeySpec::EccNistP256, KeyUsage::SignVerify);
    let ecc_arn = arn(&engine, &ecc);
    assert_eq!(
        refused(engine.encrypt(&EncryptRequest::new(&ecc, b"m"))),
        expect(
            "InvalidKeyUsageException",
            format!("{ecc_arn} key usage is SIGN_VERIFY which is not valid for Encrypt.")
        )
    );
}

#[test]
fn decrypting_under_another_key_is_incorrect_key() {
    let engine = engine();
    let (a, b) = (symmetric(&engine), symmetric(&engine));
    let sealed = engine.encrypt(&EncryptRequest::new(&a, b"x")).unwrap();
    assert_eq!(
        refused(engine.decrypt(&DecryptRequest::new(&sealed.ciphertext_blob).with_key_id(&b))),
        expect(
            "IncorrectKeyException",
            "The key ID in the request does not identify a CMK that can perform this operation."
        )
    );
}

#[test]
fn an_invalid_signature_carries_no_message() {
    let engine = engine();
    let ecc = new_key_of(&engine, KeySpec::EccNistP256, KeyUsage::SignVerify);
    let good = engine
        .sign(&SignRequest::new(&ecc, b"m", SigningAlgorithm::EcdsaSha256))
        .unwrap()
        .signature;
    assert_eq!(
        refused(engine.verify(&VerifyRequest {
            key_id: &ecc,
            message: b"other",
            message_type: MessageType::Raw,
            signature: &good,
            signing_algorithm: SigningAlgorithm::EcdsaSha256,
        })),
        expect("KMSInvalidSignatureException", "")
    );
}

#[test]
fn key_state_errors_use_the_services_messages() {
    let engine = engine();
    let key = symmetric(&engine);
    let key_arn = arn(&engine, &key);
    assert_eq!(
        refused(engine.cancel_key_deletion(&key)),
        expect(
            "KMSInvalidStateException",
            format!("{key_arn} is not pending deletion.")
        )
    );
    engine.disable_key(&key).unwrap();
    assert_eq!(
        refused(engine.encrypt(&EncryptRequest::new(&key, b"x"))),
        expect("DisabledException", format!("{key_arn} is disabled."))
    );
    engine.schedule_key_deletion(&key, Some(7)).unwrap();
    let pending = expect(
        "KMSInvalidStateException",
        format!("{key_arn} is pending deletion."),
    );
    assert_eq!(
        refused(engine.encrypt(&EncryptRequest::new(&key, b"x"))),
        pending
    );
    assert_eq!(refused(engine.enable_key(&key)), pending);
}

#[test]
fn reserved_tags_are_refused_with_the_services_message() {
    let engine = engine();
    let key = symmetric(&engine);
    let reserved = vec![Tag {
        tag_key: "aws:owner".into(),
        tag_value: "me".into(),
    }];
    assert_eq!(
        refused(engine.tag_resource(&key, reserved.clone())),
        expect("TagException", "Tags beginning with aws: are reserved")
    );
    assert_eq!(
        refused(engine.create_key(CreateKeyRequest {
            tags: reserved,
            ..Default::default()
        })),
        expect("TagException", "Tags beginning with aws: are reserved")
    );
}

#[test]
fn a_policy_that_locks_its_author_out_is_refused_with_the_services_message() {
    let engine = engine();
    let key = symmetric(&engine);
    let nobody = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:role/other"},"Action":"kms:Encrypt","Resource":"*"}]}"#;
    assert_eq!(
        refused(engine.put_key_policy(&key, nobody, None, false)),
        expect(
            "MalformedPolicyDocumentException",
            "The new key policy will not allow you to update the key policy in the future."
        )
    );
}

#[test]
fn put_key_policy_on_a_missing_key_is_not_found_before_the_policy_is_read() {
    let engine = engine();
    let missing = "1234abcd-12ab-34cd-56ef-1234567890ab";
    assert_eq!(
        refused(engine.put_key_policy(missing, "this is not a policy", None, false)),
        expect(
            "NotFoundException",
            format!("Key '{ARN_PREFIX}key/{missing}' does not exist")
        )
    );
}

#[test]
fn create_grant_with_the_same_name_and_parameters_returns_the_existing_grant() {
    let engine = engine();
    let key = symmetric(&engine);
    let request = |name: &str, operations: Vec<GrantOperation>| CreateGrantRequest {
        key_id: key.clone(),
        grantee_principal: "arn:aws:iam::111122223333:role/app".into(),
        retiring_principal: None,
        operations,
        constraints: None,
        name: Some(name.into()),
    };
    use GrantOperation::{Decrypt, Encrypt};
    let first = engine
        .create_grant(request("retry", vec![Encrypt, Decrypt]))
        .unwrap();
    let again = engine
        .create_grant(request("retry", vec![Decrypt, Encrypt]))
        .unwrap();
    assert_eq!(again, first);
    // Different parameters, or another name, make a new grant.
    let wider = engine
        .create_grant(request("retry", vec![Encrypt]))
        .unwrap();
    assert_ne!(wider.grant_id, first.grant_id);
    let other = engine
        .create_grant(request("other", vec![Encrypt, Decrypt]))
        .unwrap();
    assert_ne!(other.grant_id, first.grant_id);
    let grants = engine.list_grants(&key, None, None, None, None).unwrap();
    assert_eq!(grants.items.len(), 3);
}

// ==== fin17: AWS managed keys on first use, and dry runs (issue 17, the part left) ===========

/// The predefined aliases of the integrated services, with no key until first used.
fn predefined(engine: &Engine) -> Vec<keyplane::AliasListEntry> {
    engine
        .list_aliases(None, Some(100), None)
        .unwrap()
        .items
        .into_iter()
        .filter(|a| a.alias_name.starts_with("alias/aws/"))
        .collect()
}

#[test]
fn list_aliases_shows_the_integrated_services_aliases_before_their_keys_exist() {
    let engine = engine();
    let listed = predefined(&engine);
    let names: Vec<&str> = listed.iter().map(|a| a.alias_name.as_str()).collect();
    let expected: Vec<String> = keyplane::INTEGRATED_SERVICES
        .iter()
        .map(|s| format!("alias/aws/{s}"))
        .collect();
    assert_eq!(names, expected);
    for a in &listed {
        assert_eq!(a.alias_arn, format!("{ARN_PREFIX}{}", a.alias_name));
        assert_eq!(
            (
                a.target_key_id.as_deref(),
                a.creation_date,
                a.last_updated_date
            ),
            (None, None, None),
            "{a:?}"
        );
        // As the service's answer: no TargetKeyId, no dates.
        let json = serde_json::to_value(a).unwrap();
        assert_eq!(
            json.as_object().unwrap().keys().collect::<Vec<_>>(),
            ["AliasArn", "AliasName"]
        );
    }
    assert!(engine.list_keys(None, None).unwrap().items.is_empty());
    // A key's own aliases do not include them.
    let k = symmetric(&engine);
    assert!(engine
        .list_aliases(Some(&k), None, None)
        .unwrap()
        .items
        .is_empty());
}

#[test]
fn naming_an_integrated_services_alias_creates_its_managed_key_once() {
    let engine = engine();
    // DescribeKey by alias name creates it.
    let described = engine.describe_key("alias/aws/s3").unwrap();
    assert_eq!(described.key_manager, keyplane::key::KeyManager::Aws);
    assert_eq!(
        described.description,
        "Default key that protects my s3 data when no other key is defined"
    );
    let s3 = predefined(&engine)
        .into_iter()
        .find(|a| a.alias_name == "alias/aws/s3")
        .unwrap();
    assert_eq!(s3.target_key_id.as_deref(), Some(described.key_id.as_str()));
    assert!(s3.creation_date.is_some() && s3.last_updated_date.is_some());
    // The same alias again, by name or ARN, is the same key: no second one.
    let again = engine
        .describe_key(&format!("{ARN_PREFIX}alias/aws/s3"))
        .unwrap();
    assert_eq!(again.key_id, described.key_id);
    assert_eq!(engine.list_keys(None, None).unwrap().items.len(), 1);

    // Encrypt and GenerateDataKey create theirs too; used directly (not through the service),
    // the managed key's policy refuses them, as the service's does.
    let e = engine
        .encrypt(&EncryptRequest::new("alias/aws/ebs", b"x"))
        .unwrap_err();
    assert_eq!(e.code(), "AccessDeniedException");
    let e = engine
        .generate_data_key(&keyplane::GenerateDataKeyRequest::new(
            "alias/aws/rds",
            keyplane::DataKeySpec::Aes256,
        ))
        .unwrap_err();
    assert_eq!(e.code(), "AccessDeniedException");
    for alias in ["alias/aws/ebs", "alias/aws/rds"] {
        assert_eq!(
            engine.describe_key(alias).unwrap().key_manager,
            keyplane::key::KeyManager::Aws
        );
    }
    assert_eq!(engine.list_keys(None, None).unwrap().items.len(), 3);

    // An alias under aws/ of no integrated service is still not found, and creates nothing.
    assert_eq!(
        refused(engine.describe_key("alias/aws/not-a-service")),
        expect(
            "NotFoundException",
            format!("Alias {ARN_PREFIX}alias/aws/not-a-service is not found.")
        )
    );
    assert_eq!(engine.list_keys(None, None).unwrap().items.len(), 3);
}

const DRY_RUN: (&str, &str) = (
    "DryRunOperationException",
    "The request would have succeeded, but the DryRun option is set.",
);

fn grant_request(key_id: &str) -> CreateGrantRequest {
    CreateGrantRequest {
        key_id: key_id.to_owned(),
        grantee_principal: "arn:aws:iam::111122223333:user/alice".into(),
        retiring_principal: None,
        operations: vec![GrantOperation::Decrypt],
        constraints: None,
        name: None,
    }
}

#[test]
fn dry_run_grant_calls_check_everything_and_change_nothing() {
    let engine = engine();
    let k = symmetric(&engine);
    let dry = engine.dry_run();
    let (code, message) = refused(dry.create_grant(grant_request(&k)));
    assert_eq!((code, message.as_str()), DRY_RUN);
    assert!(engine
        .list_grants(&k, None, None, None, None)
        .unwrap()
        .items
        .is_empty());
    // The real call's checks run: an alias where only key ids are allowed, a missing key.
    assert_eq!(
        refused(dry.create_grant(grant_request("alias/app"))),
        expect("NotFoundException", "Invalid keyId 'alias/app'")
    );
    let missing = "11111111-2222-3333-4444-555555555555";
    assert_eq!(
        refused(dry.create_grant(grant_request(missing))),
        expect(
            "NotFoundException",
            format!("Key '{ARN_PREFIX}key/{missing}' does not exist")
        )
    );
    // Authorization: a principal the key policy does not allow is refused, not told "would
    // have succeeded".
    let mallory = keyplane::Caller::new("arn:aws:iam::444455556666:user/mallory").unwrap();
    let e = engine
        .for_caller(mallory)
        .dry_run()
        .create_grant(grant_request(&k))
        .unwrap_err();
    assert_eq!(e.code(), "AccessDeniedException");

    // RevokeGrant and RetireGrant of a real grant: checked, answered, the grant stays.
    let grant = engine.create_grant(grant_request(&k)).unwrap();
    let (code, message) = refused(dry.revoke_grant(&k, &grant.grant_id));
    assert_eq!((code, message.as_str()), DRY_RUN);
    let (code, message) = refused(dry.retire_grant(None, Some(&k), Some(&grant.grant_id)));
    assert_eq!((code, message.as_str()), DRY_RUN);
    assert_eq!(
        engine
            .list_grants(&k, None, None, None, None)
            .unwrap()
            .items
            .len(),
        1
    );
    assert_eq!(
        refused(dry.revoke_grant(
            &k,
            "0000000000000000000000000000000000000000000000000000000000000000"
        ))
        .0,
        "InvalidGrantIdException"
    );
}

#[test]
fn dry_run_data_plane_calls_answer_as_the_real_call_would_and_leave_no_usage() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.log");
    let signing_key =
        keyplane::audit::generate_signing_key(keyplane::LockPolicy::default()).unwrap();
    let engine = Engine::builder()
        .worker_threads(1)
        .audit(keyplane::audit::AuditConfig::new(&path), signing_key)
        .build()
        .unwrap();
    let k = symmetric(&engine);
    let dry = engine.dry_run();
    let (code, message) = refused(dry.encrypt(&EncryptRequest::new(&k, b"hello")));
    assert_eq!((code, message.as_str()), DRY_RUN);
    // Parameter checks of the real call: an empty plaintext is the validation error.
    assert_eq!(
        refused(dry.encrypt(&EncryptRequest::new(&k, b""))).0,
        "ValidationException"
    );
    // A dry run is no use of the key.
    assert!(engine
        .get_key_last_usage(&k)
        .unwrap()
        .key_last_usage
        .is_none());

    // IGNORE_CIPHERTEXT: authorization only, no ciphertext.
    let (code, message) = refused(dry.dry_run_authorization(
        keyplane::operation::Operation::Decrypt,
        &[(Action::Decrypt, &k)],
    ));
    assert_eq!((code, message.as_str()), DRY_RUN);
    let mallory = keyplane::Caller::new("arn:aws:iam::444455556666:user/mallory").unwrap();
    let e = engine
        .for_caller(mallory)
        .dry_run_authorization(
            keyplane::operation::Operation::Decrypt,
            &[(Action::Decrypt, &k)],
        )
        .unwrap_err();
    assert_eq!(e.code(), "AccessDeniedException");

    // The audit log records each dry run with its error code.
    let text = std::fs::read_to_string(&path).unwrap();
    let dry_runs = text
        .lines()
        .filter(|l| l.contains("\"errorCode\":\"DryRunOperationException\""))
        .count();
    assert_eq!(dry_runs, 2, "{text}");
}
