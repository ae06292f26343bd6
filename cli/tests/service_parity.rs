//! Issue 17: the CLI's `--json` errors say what the engine says. For a missing key, an alias where
//! only key ids are allowed, an empty plaintext and a signing algorithm that does not fit the key
//! spec, stderr is `{"__type": <the service's code>, "message": <its exact message>}`: the same
//! code and text the engine gives (engine/tests/service_behaviour.rs, service_messages.rs), the C
//! ABI (tests/c/test_service_messages.c) and the Python client (python/tests/test_service_parity.py).

mod common;

use common::*;
use serde_json::{json, Value};

/// Runs with `--json`, requires a failure, and returns the error document from stderr.
fn json_error(d: &std::path::Path, args: &[&str], stdin: &[u8]) -> Value {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    let out = run_with(d, &all, stdin, &[]);
    assert!(!out.status.success(), "{args:?} succeeded");
    let text = stderr(&out);
    serde_json::from_str(text.trim()).unwrap_or_else(|e| panic!("{args:?}: {e}: {text}"))
}

#[test]
fn json_errors_carry_the_services_codes_and_messages() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    store(d);
    let created = json(d, &["key", "create"], b"");
    let key = key_id(&created);
    let arn = created["KeyMetadata"]["Arn"].as_str().unwrap().to_owned();
    let arn_prefix = &arn[..arn.find("key/").unwrap()];
    let ec_key = create_key(
        d,
        &["--key-spec", "ECC_NIST_P256", "--key-usage", "SIGN_VERIFY"],
    );

    let missing = "11111111-2222-3333-4444-555555555555";
    assert_eq!(
        json_error(d, &["key", "describe", missing], b""),
        json!({
            "__type": "NotFoundException",
            "message": format!("Key '{arn_prefix}key/{missing}' does not exist"),
        })
    );

    ok(d, &["alias", "create", "alias/app", &key], b"");
    assert_eq!(
        json_error(d, &["key", "enable", "alias/app"], b""),
        json!({"__type": "NotFoundException", "message": "Invalid keyId 'alias/app'"})
    );

    assert_eq!(
        json_error(d, &["encrypt", "--key-id", &key], b""),
        json!({
            "__type": "ValidationException",
            "message": "1 validation error detected: Value at 'plaintext' failed to satisfy \
                        constraint: Member must have length greater than or equal to 1",
        })
    );

    std::fs::write(d.join("msg"), b"hello").unwrap();
    assert_eq!(
        json_error(
            d,
            &[
                "sign",
                "--key-id",
                &ec_key,
                "--signing-algorithm",
                "ECDSA_SHA_384",
                "--in",
                "msg",
            ],
            b"",
        ),
        json!({
            "__type": "InvalidKeyUsageException",
            "message": "Algorithm ECDSA_SHA_384 is incompatible with key spec ECC_NIST_P256.",
        })
    );
}
