//! `keyplane xks-proxy` answering the XKS proxy API specification's own examples (every example
//! with a concrete body: the four operations' request and response payload examples, the error
//! example, the requests of Appendix D), and its error responses and HTTP statuses ("Error
//! codes"). Requests are signed by the aws-sigv4 crate (AWS's SigV4 implementation, not ours) for
//! the service `kms-xks-proxy`, and answered by `XksProxy::handle`, the server's request path
//! without the socket.

use std::time::{SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use serde_json::{json, Value};

use keyplane::{CreateKeyRequest, Engine, KeySpec, KeyUsage};
use keyplane_server::xks::keys::create_external_key;
use keyplane_server::xks::{ProxyRequest, XksProxy, XksProxyConfig};
use keyplane_testkit::sigv4::AwsSigner;
use keyplane_xks::cdiv::cdiv_sha256;
use keyplane_xks::Credential;

/// Appendix D's credentials and key id, and its URI path.
const ACCESS_KEY_ID: &str = "HGIE2BUAFNDMBCMSQVWLGCEXAMPLE";
const SECRET: &str = "VU6W2byoiBrhDqNGbx703oL0syCAmhlQgwNUT123456";
const KEY_ID: &str = "b42c7fbf-de61-441c-ae24-123456789012";
const URI_PATH: &str = "/path/kms/xks/v1";
const HOST: &str = "xks.example.com";

// Request and response payload examples, verbatim from the spec's sections.
const METADATA_REQUEST: &str = r#"{
    "requestMetadata": {
        "awsPrincipalArn": "arn:aws:iam::123456789012:user/Alice",
        "kmsOperation": "CreateKey",
        "kmsRequestId": "4112f4d6-db54-4af4-ae30-c55a22a8dfae"
    }
}"#;
const METADATA_RESPONSE: &str = r#"{
    "keySpec": "AES_256",
    "keyUsage": ["ENCRYPT", "DECRYPT"],
    "keyStatus": "ENABLED"
}"#;
const ENCRYPT_REQUEST: &str = r#"{
    "requestMetadata": {
        "awsPrincipalArn": "arn:aws:iam::123456789012:user/Alice",
        "kmsKeyArn": "arn:aws:kms:us-east-2:123456789012:/key/1234abcd-12ab-34cd-56ef-1234567890ab",
        "kmsOperation": "Encrypt",
        "kmsRequestId": "4112f4d6-db54-4af4-ae30-c55a22a8dfae",
        "kmsViaService": "ebs"
    }, 
    "additionalAuthenticatedData": "cHJvamVjdD1uaWxlLGRlcGFydG1lbnQ9bWFya2V0aW5n",
    "plaintext": "SGVsbG8gV29ybGQh",
    "encryptionAlgorithm": "AES_GCM",
    "ciphertextDataIntegrityValueAlgorithm": "SHA_256"
}"#;
const ENCRYPT_RESPONSE: &str = r#"{
    "authenticationTag": "vBxN2ncH1oEkR8WVXpmyYQ==",
    "ciphertext": "ghxkK1txeDNn3q8Y",
    "ciphertextDataIntegrityValue": "qHA/ImC9h5HsLRXqCyPmWgYx7tzyoTplzILbP0fPXsc=",
    "ciphertextMetadata": "a2V5X3ZlcnNpb249MQ==",
    "initializationVector": "HMrlRw85cAJUd5Ax"
}"#;
const DECRYPT_REQUEST: &str = r#"{
    "requestMetadata": { 
        "awsPrincipalArn": "arn:aws:iam::123456789012:user/Alice",
        "kmsKeyArn": "arn:aws:kms:us-east-2:123456789012:/key/1234abcd-12ab-34cd-56ef-1234567890ab",
        "kmsOperation": "Decrypt",
        "kmsRequestId": "5112f4d6-db54-4af4-ae30-c55a22a8dfae",
        "kmsViaService": "ebs"
    },
    "additionalAuthenticatedData": "cHJvamVjdD1uaWxlLGRlcGFydG1lbnQ9bWFya2V0aW5n",
    "encryptionAlgorithm": "AES_GCM",
    "ciphertext": "ghxkK1txeDNn3q8Y",
    "ciphertextMetadata": "a2V5X3ZlcnNpb249MQ==",
    "initializationVector": "HMrlRw85cAJUd5Ax",
    "authenticationTag": "vBxN2ncH1oEkR8WVXpmyYQ=="
}"#;
const DECRYPT_RESPONSE: &str = r#"{
    "plaintext": "SGVsbG8gV29ybGQh"
}"#;
const HEALTH_REQUEST: &str = r#"{
    "requestMetadata": {
        "kmsRequestId": "4112f4d6-db54-4af4-ae30-c55a22a8dfae",
        "kmsOperation": "CreateCustomKeyStore"
    }
}"#;
const HEALTH_RESPONSE: &str = r#"{
    "xksProxyFleetSize": 2,
    "xksProxyVendor": "Acme Corp",
    "xksProxyModel": "Acme XKS Proxy 1.0",
    "ekmVendor": "Thales Group",
    "ekmFleetDetails": [
        {
            "id": "hsm-id-1",
            "model": "Luna 5.0",
            "healthStatus": "DEGRADED"
        },
        {
            "id": "hsm-id-2",
            "model": "Luna 5.1",
            "healthStatus": "ACTIVE"
        }
    ]
}"#;
const ERROR_RESPONSE: &str = r#"{
    "errorName": "InvalidCiphertextException",
    "errorMessage": "The request was rejected because the specified ciphertext, or additional authenticated data is corrupted, missing, or otherwise invalid."
}"#;
// Appendix D.
const CURL_ENCRYPT_REQUEST: &str = r#"{
    "requestMetadata": {
        "awsPrincipalArn": "arn:aws:iam::123456789012:user/Alice",
        "kmsKeyArn": "arn:aws:kms:us-east-2:123456789012:/key/1234abcd-12ab-34cd-56ef-1234567890ab",
        "kmsOperation": "GenerateDataKey",
        "kmsRequestId": "4112f4d6-db54-4af4-ae30-c55a22a8dfae"
    },
    "plaintext": "SGVsbG8gV29ybGQh",
    "encryptionAlgorithm": "AES_GCM"
}"#;
const CURL_ENCRYPT_RESPONSE: &str = r#"{"ciphertext":"yhvo7e8vvg3UoCLP","initializationVector":"BejmaUXJA08WzxJZ",
"authenticationTag":"2wsU/8i0OvB7JJkDJeiWSQ=="}"#;
const CURL_HEALTH_REQUEST: &str = r#"{
    "requestMetadata": {
        "kmsOperation": "KmsHealthCheck",
        "kmsRequestId": "1124f4d6-db54-4af4-ae30-c55a22a8abcd"
    }
}"#;
const CURL_HEALTH_RESPONSE: &str = r#"{"xksProxyFleetSize":1,"xksProxyVendor":"Acme","xksProxyModel":"Acme AWS XKS Proxy 1.0","ekmVendor":"Acme","ekmFleetDetails":[{"id":"Id-1","model":"Acme HSM 1.0","healthStatus":"ACTIVE"}]}"#;

struct Fixture {
    engine: Engine,
    proxy: XksProxy,
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

impl Fixture {
    fn new() -> Fixture {
        let engine = Engine::in_memory().unwrap();
        create_external_key(&engine, KEY_ID).unwrap();
        let proxy = XksProxy::new(
            engine.clone(),
            XksProxyConfig {
                uri_path: URI_PATH.into(),
                credentials: vec![Credential::new(ACCESS_KEY_ID, SECRET)],
                log_requests: false,
            },
        )
        .unwrap();
        Fixture { engine, proxy }
    }

    /// POSTs `body` to `path`, signed by the aws-sigv4 crate with `secret`.
    fn post_with(&self, path: &str, body: &str, secret: &str, method: &str) -> (u16, Value) {
        let signer = AwsSigner {
            access_key_id: ACCESS_KEY_ID,
            secret,
            region: "us-east-1",
            service: "kms-xks-proxy",
            time: SystemTime::now(),
            content_sha256: false,
        };
        let base = [("host", HOST), ("content-type", "application/json")];
        let url = format!("https://{HOST}{path}");
        let headers = signer.signed_headers(method, &url, &base, body.as_bytes());
        let answer = self.proxy.handle(&ProxyRequest {
            method,
            path,
            headers: &headers,
            body: body.as_bytes(),
            now: now(),
        });
        let value = if answer.body.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&answer.body).unwrap()
        };
        (answer.status, value)
    }

    fn post(&self, path: &str, body: &str) -> (u16, Value) {
        self.post_with(path, body, SECRET, "POST")
    }
}

fn key_path(op: &str) -> String {
    format!("{URI_PATH}/keys/{KEY_ID}/{op}")
}

fn members(value: &Value) -> Vec<String> {
    let mut names: Vec<String> = value.as_object().unwrap().keys().cloned().collect();
    names.sort();
    names
}

fn b64(value: &Value) -> Vec<u8> {
    STANDARD.decode(value.as_str().unwrap()).unwrap()
}

fn error_name(answer: &(u16, Value)) -> (u16, &str) {
    (answer.0, answer.1["errorName"].as_str().unwrap_or("<none>"))
}

#[test]
fn get_key_metadata_answers_the_spec_example_with_the_spec_example() {
    let f = Fixture::new();
    let (status, body) = f.post(&key_path("metadata"), METADATA_REQUEST);
    assert_eq!(status, 200);
    let expected: Value = serde_json::from_str(METADATA_RESPONSE).unwrap();
    assert_eq!(body, expected);
}

#[test]
fn encrypt_answers_the_spec_example_in_the_example_responses_shape_with_a_valid_cdiv() {
    let f = Fixture::new();
    let (status, body) = f.post(&key_path("encrypt"), ENCRYPT_REQUEST);
    assert_eq!(status, 200, "{body}");
    let example: Value = serde_json::from_str(ENCRYPT_RESPONSE).unwrap();
    assert_eq!(members(&body), members(&example));
    let (ct, md, iv, tag) = (
        b64(&body["ciphertext"]),
        b64(&body["ciphertextMetadata"]),
        b64(&body["initializationVector"]),
        b64(&body["authenticationTag"]),
    );
    assert_eq!(ct.len(), b"Hello World!".len());
    assert_eq!(iv.len(), 12);
    assert_eq!(tag.len(), 16);
    assert!(md.len() <= 20);
    let cdiv = cdiv_sha256(b"project=nile,department=marketing", &md, &iv, &ct, &tag);
    assert_eq!(b64(&body["ciphertextDataIntegrityValue"]), cdiv);
    // Two encryptions of one plaintext differ (fresh IV each time).
    let (_, again) = f.post(&key_path("encrypt"), ENCRYPT_REQUEST);
    assert_ne!(again["initializationVector"], body["initializationVector"]);
    assert_ne!(again["ciphertext"], body["ciphertext"]);
}

#[test]
fn decrypt_of_our_encryption_answers_the_spec_decrypt_response_example() {
    let f = Fixture::new();
    let (_, encrypted) = f.post(&key_path("encrypt"), ENCRYPT_REQUEST);
    // The spec's Decrypt example with this proxy's ciphertext in place of the example's.
    let mut request: Value = serde_json::from_str(DECRYPT_REQUEST).unwrap();
    for member in [
        "ciphertext",
        "ciphertextMetadata",
        "initializationVector",
        "authenticationTag",
    ] {
        request[member] = encrypted[member].clone();
    }
    let (status, body) = f.post(&key_path("decrypt"), &request.to_string());
    assert_eq!(status, 200, "{body}");
    let expected: Value = serde_json::from_str(DECRYPT_RESPONSE).unwrap();
    assert_eq!(body, expected);
}

#[test]
fn decrypt_of_the_spec_examples_foreign_ciphertext_is_the_spec_error_example() {
    let f = Fixture::new();
    let answer = f.post(&key_path("decrypt"), DECRYPT_REQUEST);
    let example: Value = serde_json::from_str(ERROR_RESPONSE).unwrap();
    assert_eq!(answer.0, 400);
    assert_eq!(answer.1["errorName"], example["errorName"]);
    let message = answer.1["errorMessage"].as_str().unwrap();
    assert!(message.len() < 512 && message.bytes().all(|b| (0x20..=0x7e).contains(&b)));
}

#[test]
fn get_health_status_answers_the_spec_example_in_its_shape() {
    let f = Fixture::new();
    for request in [HEALTH_REQUEST, CURL_HEALTH_REQUEST] {
        let (status, body) = f.post(&format!("{URI_PATH}/health"), request);
        assert_eq!(status, 200);
        for example in [HEALTH_RESPONSE, CURL_HEALTH_RESPONSE] {
            let example: Value = serde_json::from_str(example).unwrap();
            assert_eq!(members(&body), members(&example));
            assert_eq!(
                members(&body["ekmFleetDetails"][0]),
                members(&example["ekmFleetDetails"][0])
            );
        }
        assert!(body["xksProxyFleetSize"].as_u64().unwrap() > 0);
        let details = body["ekmFleetDetails"].as_array().unwrap();
        assert!((1..=10).contains(&details.len()));
        assert_eq!(details[0]["healthStatus"], "ACTIVE");
    }
}

#[test]
fn appendix_d_encrypt_without_aad_or_cdiv_answers_in_the_appendix_shape() {
    let f = Fixture::new();
    let (status, body) = f.post(&key_path("encrypt"), CURL_ENCRYPT_REQUEST);
    assert_eq!(status, 200);
    let example: Value = serde_json::from_str(CURL_ENCRYPT_RESPONSE).unwrap();
    // The appendix's proxy returns no ciphertextMetadata; this one always names its format.
    let mut ours = members(&body);
    ours.retain(|m| m != "ciphertextMetadata");
    assert_eq!(ours, members(&example));
    assert!(body.get("ciphertextDataIntegrityValue").is_none());
}

#[test]
fn the_spec_error_example_parses_as_the_error_body() {
    let body: keyplane_xks::api::ErrorBody = serde_json::from_str(ERROR_RESPONSE).unwrap();
    assert_eq!(
        keyplane_xks::XksErrorKind::from_error_name(&body.error_name),
        Some(keyplane_xks::XksErrorKind::InvalidCiphertext)
    );
}

#[test]
fn errors_have_the_spec_names_and_statuses() {
    let f = Fixture::new();
    // GET on an operation's URI: 405.
    assert_eq!(
        f.post_with(&key_path("encrypt"), ENCRYPT_REQUEST, SECRET, "GET")
            .0,
        405
    );
    // A path outside the API, another prefix, an operation that does not exist: 404.
    for path in [
        "/kms/xks/v1/health".to_owned(),
        "/other/kms/xks/v1/health".to_owned(),
        format!("{URI_PATH}/keys/{KEY_ID}/sign"),
        format!("{URI_PATH}/keys/a%20b/encrypt"),
    ] {
        assert_eq!(
            error_name(&f.post(&path, HEALTH_REQUEST)),
            (404, "InvalidUriPathException"),
            "{path}"
        );
    }
    // Signed with another secret: 401.
    assert_eq!(
        error_name(&f.post_with(&key_path("metadata"), METADATA_REQUEST, "wrong", "POST")),
        (401, "AuthenticationFailedException")
    );
    // A key the proxy does not have: 404.
    assert_eq!(
        error_name(&f.post(&format!("{URI_PATH}/keys/nope/metadata"), METADATA_REQUEST)),
        (404, "KeyNotFoundException")
    );
    assert_eq!(
        error_name(&f.post(&format!("{URI_PATH}/keys/nope/encrypt"), ENCRYPT_REQUEST)),
        (404, "KeyNotFoundException")
    );
    // Missing required members, a wrong algorithm, bad Base64: 400 ValidationException.
    let mut wrong_algorithm: Value = serde_json::from_str(ENCRYPT_REQUEST).unwrap();
    wrong_algorithm["encryptionAlgorithm"] = json!("AES_CBC");
    let mut url_safe: Value = serde_json::from_str(ENCRYPT_REQUEST).unwrap();
    url_safe["plaintext"] = json!("-_-_");
    for body in [
        "{}".to_owned(),
        "not json".to_owned(),
        json!({"requestMetadata": {"kmsOperation": "Encrypt"}, "plaintext": "AA==", "encryptionAlgorithm": "AES_GCM"}).to_string(),
        wrong_algorithm.to_string(),
        url_safe.to_string(),
    ] {
        assert_eq!(
            error_name(&f.post(&key_path("encrypt"), &body)),
            (400, "ValidationException"),
            "{body}"
        );
    }
    // Past this proxy's size limit: 501.
    let mut big: Value = serde_json::from_str(ENCRYPT_REQUEST).unwrap();
    big["plaintext"] = json!(STANDARD.encode(vec![0u8; 40_000]));
    assert_eq!(
        error_name(&f.post(&key_path("encrypt"), &big.to_string())),
        (501, "UnsupportedOperationException")
    );
    // The sizes the spec requires a proxy to accept are accepted: 4300 bytes, 8192 bytes of AAD.
    let mut max: Value = serde_json::from_str(ENCRYPT_REQUEST).unwrap();
    max["plaintext"] = json!(STANDARD.encode(vec![7u8; 4300]));
    max["additionalAuthenticatedData"] = json!(STANDARD.encode(vec![9u8; 8192]));
    assert_eq!(f.post(&key_path("encrypt"), &max.to_string()).0, 200);
}

#[test]
fn unknown_kms_operations_and_new_metadata_fields_are_accepted() {
    let f = Fixture::new();
    let mut request: Value = serde_json::from_str(ENCRYPT_REQUEST).unwrap();
    request["requestMetadata"]["kmsOperation"] = json!("BulkEncrypt");
    request["requestMetadata"]["kmsRecipientAttestationImageSha384"] = json!("abc");
    request["requestMetadata"]["awsSourceVpc"] = json!("vpc-1");
    request["requestMetadata"]["awsSourceVpce"] = json!("vpce-1");
    assert_eq!(f.post(&key_path("encrypt"), &request.to_string()).0, 200);
}

#[test]
fn a_disabled_key_reads_disabled_and_refuses_cryptography() {
    let f = Fixture::new();
    let key = f
        .engine
        .describe_key(&keyplane_server::xks::keys::alias_for(KEY_ID))
        .unwrap();
    let (_, encrypted) = f.post(&key_path("encrypt"), ENCRYPT_REQUEST);
    f.engine.disable_key(&key.key_id).unwrap();
    let (status, body) = f.post(&key_path("metadata"), METADATA_REQUEST);
    assert_eq!(
        (status, body["keyStatus"].as_str()),
        (200, Some("DISABLED"))
    );
    assert_eq!(
        error_name(&f.post(&key_path("encrypt"), ENCRYPT_REQUEST)),
        (400, "InvalidStateException")
    );
    let mut request: Value = serde_json::from_str(DECRYPT_REQUEST).unwrap();
    for member in [
        "ciphertext",
        "initializationVector",
        "authenticationTag",
        "ciphertextMetadata",
    ] {
        request[member] = encrypted[member].clone();
    }
    assert_eq!(
        error_name(&f.post(&key_path("decrypt"), &request.to_string())),
        (400, "InvalidStateException")
    );
    f.engine.enable_key(&key.key_id).unwrap();
    assert_eq!(f.post(&key_path("decrypt"), &request.to_string()).0, 200);
}

#[test]
fn a_key_that_is_not_aes_256_is_reported_as_such_and_refuses_encryption() {
    let f = Fixture::new();
    let hmac = f
        .engine
        .create_key(CreateKeyRequest {
            key_spec: Some(KeySpec::Hmac256),
            key_usage: Some(KeyUsage::GenerateVerifyMac),
            ..CreateKeyRequest::default()
        })
        .unwrap();
    f.engine
        .create_alias(
            &keyplane_server::xks::keys::alias_for("mac-key"),
            &hmac.key_id,
        )
        .unwrap();
    let (status, body) = f.post(
        &format!("{URI_PATH}/keys/mac-key/metadata"),
        METADATA_REQUEST,
    );
    assert_eq!(status, 200);
    assert_ne!(body["keySpec"], "AES_256");
    assert_eq!(
        error_name(&f.post(&format!("{URI_PATH}/keys/mac-key/encrypt"), ENCRYPT_REQUEST)),
        (400, "InvalidKeyUsageException")
    );
}

#[test]
fn external_key_ids_with_periods_map_to_distinct_keys() {
    let f = Fixture::new();
    create_external_key(&f.engine, "a.b").unwrap();
    create_external_key(&f.engine, "a_b").unwrap();
    assert!(create_external_key(&f.engine, "a.b").is_err());
    assert!(create_external_key(&f.engine, "bad/id").is_err());
    let (_, one) = f.post(&format!("{URI_PATH}/keys/a.b/encrypt"), ENCRYPT_REQUEST);
    let mut request: Value = serde_json::from_str(DECRYPT_REQUEST).unwrap();
    for member in [
        "ciphertext",
        "initializationVector",
        "authenticationTag",
        "ciphertextMetadata",
    ] {
        request[member] = one[member].clone();
    }
    assert_eq!(
        f.post(
            &format!("{URI_PATH}/keys/a.b/decrypt"),
            &request.to_string()
        )
        .0,
        200
    );
    assert_eq!(
        error_name(&f.post(
            &format!("{URI_PATH}/keys/a_b/decrypt"),
            &request.to_string()
        )),
        (400, "InvalidCiphertextException")
    );
}

#[test]
fn requests_older_than_five_minutes_fail_authentication() {
    let f = Fixture::new();
    let credential = Credential::new(ACCESS_KEY_ID, SECRET);
    let path = format!("{URI_PATH}/health");
    for (offset, status) in [(0i64, 200u16), (-290, 200), (-310, 401), (310, 401)] {
        let at = now() + offset;
        let s = keyplane_xks::sigv4::sign(
            &credential,
            "eu-west-1",
            HOST,
            &path,
            HEALTH_REQUEST.as_bytes(),
            at,
        );
        let headers = vec![
            ("host".to_owned(), HOST.to_owned()),
            ("x-amz-date".to_owned(), s.amz_date),
            ("authorization".to_owned(), s.authorization),
        ];
        let answer = f.proxy.handle(&ProxyRequest {
            method: "POST",
            path: &path,
            headers: &headers,
            body: HEALTH_REQUEST.as_bytes(),
            now: now(),
        });
        assert_eq!(answer.status, status, "offset {offset}");
    }
}
