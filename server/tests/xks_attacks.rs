//! Named attacks on `keyplane xks-proxy` (the XKS proxy API over keyplane keys), one test each,
//! driven through `XksProxy::handle` with requests signed by the client's signer. Each prints
//! `assurance: attack <name>: tried N, rejected N` (summed by `scripts/test-assurance`).
//! The engine's `security_regression.rs` cannot reach the server crate (it would depend on its own
//! dependant), so the proxy's attacks live here, beside the proxy's other tests.

use std::time::{SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use serde_json::{json, Value};

use keyplane::{Engine, Tag};
use keyplane_server::xks::keys::{alias_for, create_external_key, MATERIAL_TAG};
use keyplane_server::xks::{ProxyRequest, XksProxy, XksProxyConfig};
use keyplane_testkit::Attack;
use keyplane_xks::sigv4::{sign, Credential};

const ID: &str = "AKIAI2SFODNN7EXAMPLE";
const SECRET: &str = "FYtE5EFA5FT0mCc3DrGUe2sti527BitkQ0Zr9MO9fvE";
const PATH: &str = "/kms/xks/v1";
const HOST: &str = "xks.example.com";

/// What only these attacks judge: the proxy's answer, which must be `status` with `error_name`.
trait Answered {
    fn answered(&mut self, answer: (u16, Value), status: u16, error_name: &str, what: &str);
}

impl Answered for Attack {
    #[track_caller]
    fn answered(&mut self, answer: (u16, Value), status: u16, error_name: &str, what: &str) {
        let name = answer.1["errorName"].as_str().unwrap_or("<none>");
        let verdict = match (answer.0, name) == (status, error_name) {
            true => Ok(()),
            false => Err(format!(
                "answered {} {name}, expected {status} {error_name}: {}",
                answer.0, answer.1
            )),
        };
        self.attempt(what, verdict);
    }
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

struct Fixture {
    engine: Engine,
    proxy: XksProxy,
}

impl Fixture {
    fn new() -> Fixture {
        let engine = Engine::in_memory().unwrap();
        for id in ["key-a", "key-b"] {
            create_external_key(&engine, id).unwrap();
        }
        let proxy = XksProxy::new(
            engine.clone(),
            XksProxyConfig {
                uri_path: PATH.into(),
                credentials: vec![Credential::new(ID, SECRET)],
                log_requests: false,
            },
        )
        .unwrap();
        Fixture { engine, proxy }
    }

    /// Sends `body` to `path` with `headers` as given.
    fn send(&self, path: &str, headers: &[(String, String)], body: &[u8]) -> (u16, Value) {
        let answer = self.proxy.handle(&ProxyRequest {
            method: "POST",
            path,
            headers,
            body,
            now: now(),
        });
        let value = serde_json::from_slice(&answer.body).unwrap_or(Value::Null);
        (answer.status, value)
    }

    fn signed_headers(&self, path: &str, body: &[u8], at: i64) -> Vec<(String, String)> {
        let s = sign(
            &Credential::new(ID, SECRET),
            "us-east-1",
            HOST,
            path,
            body,
            at,
        );
        vec![
            ("host".into(), HOST.into()),
            ("x-amz-date".into(), s.amz_date),
            ("authorization".into(), s.authorization),
        ]
    }

    fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        let body = body.to_string().into_bytes();
        let headers = self.signed_headers(path, &body, now());
        self.send(path, &headers, &body)
    }

    fn encrypt(&self, key: &str, aad: Option<&[u8]>) -> Value {
        let mut body = json!({
            "requestMetadata": metadata("Encrypt"),
            "plaintext": STANDARD.encode(b"a data key"),
            "encryptionAlgorithm": "AES_GCM",
        });
        if let Some(aad) = aad {
            body["additionalAuthenticatedData"] = json!(STANDARD.encode(aad));
        }
        let (status, answer) = self.post(&format!("{PATH}/keys/{key}/encrypt"), &body);
        assert_eq!(status, 200, "{answer}");
        answer
    }
}

fn metadata(operation: &str) -> Value {
    json!({
        "awsPrincipalArn": "arn:aws:iam::111122223333:user/alice",
        "kmsKeyArn": "arn:aws:kms:us-east-1:111122223333:key/k",
        "kmsOperation": operation,
        "kmsRequestId": "r-1",
    })
}

fn decrypt_body(encrypted: &Value, aad: Option<&[u8]>) -> Value {
    let mut body = json!({
        "requestMetadata": metadata("Decrypt"),
        "encryptionAlgorithm": "AES_GCM",
    });
    for member in [
        "ciphertext",
        "ciphertextMetadata",
        "initializationVector",
        "authenticationTag",
    ] {
        if !encrypted[member].is_null() {
            body[member] = encrypted[member].clone();
        }
    }
    if let Some(aad) = aad {
        body["additionalAuthenticatedData"] = json!(STANDARD.encode(aad));
    }
    body
}

#[test]
fn attack_xks_signed_request_tampering() {
    let f = Fixture::new();
    let mut attack = Attack::new("xks signed request tampering");
    let health = format!("{PATH}/health");
    let body = br#"{"requestMetadata":{"kmsRequestId":"r","kmsOperation":"KmsHealthCheck"}}"#;
    let headers = f.signed_headers(&health, body, now());
    assert_eq!(f.send(&health, &headers, body).0, 200);
    // The same signature over another body, path, host; a replay after five minutes; a signature
    // made for another service's scope; a stripped signature; an unknown access key id.
    let other_body = br#"{"requestMetadata":{"kmsRequestId":"s","kmsOperation":"KmsHealthCheck"}}"#;
    attack.answered(
        f.send(&health, &headers, other_body),
        401,
        "AuthenticationFailedException",
        "body swapped",
    );
    let other_path = format!("{PATH}/keys/key-a/metadata");
    attack.answered(
        f.send(&other_path, &headers, body),
        401,
        "AuthenticationFailedException",
        "path swapped",
    );
    let mut host = headers.clone();
    host[0].1 = "evil.example.com".into();
    attack.answered(
        f.send(&health, &host, body),
        401,
        "AuthenticationFailedException",
        "host swapped",
    );
    let stale = f.signed_headers(&health, body, now() - 301);
    attack.answered(
        f.send(&health, &stale, body),
        401,
        "AuthenticationFailedException",
        "replayed late",
    );
    let future = f.signed_headers(&health, body, now() + 301);
    attack.answered(
        f.send(&health, &future, body),
        401,
        "AuthenticationFailedException",
        "dated ahead",
    );
    let mut scope = headers.clone();
    scope[2].1 = scope[2].1.replace("/kms-xks-proxy/", "/kms/");
    attack.answered(
        f.send(&health, &scope, body),
        401,
        "AuthenticationFailedException",
        "another service",
    );
    attack.answered(
        f.send(&health, &headers[..1], body),
        401,
        "AuthenticationFailedException",
        "unsigned",
    );
    let mut unknown = headers.clone();
    unknown[2].1 = unknown[2].1.replace(ID, "AKIAOTHEROTHEROTHER2");
    attack.answered(
        f.send(&health, &unknown, body),
        401,
        "AuthenticationFailedException",
        "unknown key id",
    );
    let mut flipped = headers.clone();
    let sig = flipped[2].1.pop().unwrap();
    flipped[2].1.push(if sig == '0' { '1' } else { '0' });
    attack.answered(
        f.send(&health, &flipped, body),
        401,
        "AuthenticationFailedException",
        "signature bit",
    );
}

#[test]
fn attack_xks_ciphertext_moved_between_external_keys() {
    let f = Fixture::new();
    let mut attack = Attack::new("xks ciphertext moved between external keys");
    let sealed = f.encrypt("key-a", Some(b"ctx"));
    assert_eq!(
        f.post(
            &format!("{PATH}/keys/key-a/decrypt"),
            &decrypt_body(&sealed, Some(b"ctx"))
        )
        .0,
        200
    );
    attack.answered(
        f.post(
            &format!("{PATH}/keys/key-b/decrypt"),
            &decrypt_body(&sealed, Some(b"ctx")),
        ),
        400,
        "InvalidCiphertextException",
        "key-a's ciphertext under key-b",
    );
    // The alias re-pointed at key-b's keyplane key: key-a's name, material bound to key-b.
    let b = f.engine.describe_key(&alias_for("key-b")).unwrap();
    f.engine
        .update_alias(&alias_for("key-a"), &b.key_id)
        .unwrap();
    attack.answered(
        f.post(
            &format!("{PATH}/keys/key-a/decrypt"),
            &decrypt_body(&sealed, Some(b"ctx")),
        ),
        400,
        "InvalidStateException",
        "alias re-pointed",
    );
}

#[test]
fn attack_xks_wrapped_material_copied_to_another_key() {
    let f = Fixture::new();
    let mut attack = Attack::new("xks wrapped material copied to another key");
    let a = f.engine.describe_key(&alias_for("key-a")).unwrap();
    let b = f.engine.describe_key(&alias_for("key-b")).unwrap();
    let tags = f.engine.list_resource_tags(&a.key_id, None, None).unwrap();
    let material = tags
        .items
        .iter()
        .find(|t| t.tag_key == MATERIAL_TAG)
        .unwrap();
    // Someone allowed to tag copies key-a's wrapped material onto key-b: it is bound to key-a (and
    // to the external key id in its encryption context), so key-b cannot use it.
    f.engine
        .tag_resource(
            &b.key_id,
            vec![Tag {
                tag_key: MATERIAL_TAG.into(),
                tag_value: material.tag_value.clone(),
            }],
        )
        .unwrap();
    let body = json!({
        "requestMetadata": metadata("Encrypt"),
        "plaintext": STANDARD.encode(b"x"),
        "encryptionAlgorithm": "AES_GCM",
    });
    attack.answered(
        f.post(&format!("{PATH}/keys/key-b/encrypt"), &body),
        400,
        "InvalidStateException",
        "copied material",
    );
    // A keyplane key under an xks alias without material is not an external key.
    let bare = f.engine.create_key(Default::default()).unwrap();
    f.engine
        .create_alias(&alias_for("bare"), &bare.key_id)
        .unwrap();
    attack.answered(
        f.post(&format!("{PATH}/keys/bare/encrypt"), &body),
        404,
        "KeyNotFoundException",
        "no material",
    );
}

#[test]
fn attack_xks_ciphertext_metadata_and_aad_confusion() {
    let f = Fixture::new();
    let mut attack = Attack::new("xks ciphertext metadata and aad confusion");
    let path = format!("{PATH}/keys/key-a/decrypt");
    // The spec's NOTE under Encrypt: made without AAD, the metadata handed back as AAD.
    let bare = f.encrypt("key-a", None);
    let md = STANDARD
        .decode(bare["ciphertextMetadata"].as_str().unwrap())
        .unwrap();
    let mut moved = decrypt_body(&bare, Some(&md));
    moved.as_object_mut().unwrap().remove("ciphertextMetadata");
    attack.answered(
        f.post(&path, &moved),
        400,
        "InvalidCiphertextException",
        "metadata moved to AAD",
    );
    // AAD bytes shifted into the metadata.
    let with = f.encrypt("key-a", Some(b"ab"));
    let mut shifted = decrypt_body(&with, Some(b"a"));
    shifted["ciphertextMetadata"] = json!(STANDARD.encode(b"bkp1"));
    attack.answered(
        f.post(&path, &shifted),
        400,
        "InvalidCiphertextException",
        "AAD shifted",
    );
    // Truncated tags and a 16-byte IV are refused, never tried as a shorter tag.
    for len in [0usize, 4, 8, 12, 15] {
        let mut body = decrypt_body(&with, Some(b"ab"));
        let tag = STANDARD
            .decode(with["authenticationTag"].as_str().unwrap())
            .unwrap();
        body["authenticationTag"] = json!(STANDARD.encode(&tag[..len]));
        attack.answered(
            f.post(&path, &body),
            400,
            "ValidationException",
            "truncated tag",
        );
    }
    let mut long_iv = decrypt_body(&with, Some(b"ab"));
    long_iv["initializationVector"] = json!(STANDARD.encode([0u8; 16]));
    attack.answered(
        f.post(&path, &long_iv),
        400,
        "InvalidCiphertextException",
        "16-byte IV",
    );
}
