//! `keyplane credentials`: create shows a secret once, list never does, the store keeps it sealed,
//! and a credential disabled or deleted from the command line is refused by a running server's
//! authenticator within a second.

mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aws_lc_rs::{digest, hmac};
use common::*;
use keyplane_server::auth::{sigv4, AuthError, Authenticator, CredentialStore, Identity};
use keyplane_sqlite::root_key::KeyFileProvider;
use keyplane_sqlite::{SqliteKeyStore, StoreOptions};

const APP: &str = "arn:aws:iam::111122223333:user/app";

fn base32_id(id: &str) -> bool {
    id.len() == 20
        && id.starts_with("AKIA")
        && id[4..]
            .bytes()
            .all(|b| b.is_ascii_uppercase() || (b'2'..=b'7').contains(&b))
}

/// Every file under `dir`, read in full.
fn all_bytes(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(all_bytes(&path));
        } else if let Ok(bytes) = std::fs::read(&path) {
            out.push((path.display().to_string(), bytes));
        }
    }
    out
}

#[test]
fn create_shows_the_secret_once_and_list_never_does() {
    let dir = tempfile::tempdir().unwrap();
    store(dir.path());
    let out = run_as(dir.path(), APP, &["credentials", "create"], b"");
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8(out.stdout.clone()).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    let id = lines[0]
        .strip_prefix("AccessKeyId ")
        .expect("AccessKeyId line");
    let secret = lines[1]
        .strip_prefix("SecretAccessKey ")
        .expect("SecretAccessKey line");
    assert!(base32_id(id), "{id}");
    assert_eq!(secret.len(), 40);
    assert!(!stderr(&out).contains(secret));

    let created = json(
        dir.path(),
        &["--principal", APP, "credentials", "create"],
        b"",
    );
    let id2 = created["AccessKeyId"].as_str().unwrap();
    let secret2 = created["SecretAccessKey"].as_str().unwrap();
    assert!(base32_id(id2));
    assert_eq!(secret2.len(), 40);
    assert_ne!(secret, secret2);
    assert_eq!(created["Principal"], APP);
    assert_eq!(created["Status"], "Active");
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(created["CreateDate"].as_u64().unwrap().abs_diff(now) < 60);

    let listed = json(dir.path(), &["credentials", "list"], b"");
    let rows = listed["Credentials"].as_array().unwrap();
    assert_eq!(rows.len(), 2);
    for row in rows {
        assert_eq!(row["Principal"], APP);
        assert_eq!(row["Status"], "Active");
        assert!(row.get("SecretAccessKey").is_none());
    }
    let plain = String::from_utf8(ok(dir.path(), &["credentials", "list"], b"")).unwrap();
    for shown in [listed.to_string(), plain.clone()] {
        assert!(
            !shown.contains(secret) && !shown.contains(secret2),
            "{shown}"
        );
    }
    assert!(plain.contains(id) && plain.contains(id2));
    // Sealed: no file of the data directory holds a secret in the clear.
    for (path, bytes) in all_bytes(dir.path()) {
        for s in [secret, secret2] {
            assert!(
                !bytes.windows(40).any(|w| w == s.as_bytes()),
                "{path} holds a secret in the clear"
            );
        }
    }
}

#[test]
fn bad_input_gets_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    store(dir.path());
    let out = run(dir.path(), &["credentials", "create"]);
    assert!(fails(&out, 2, "create without --principal").contains("--principal"));
    let out = run_as(dir.path(), "not-an-arn", &["credentials", "create"], b"");
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    let out = run(
        dir.path(),
        &["credentials", "disable", "AKIAAAAAAAAAAAAAAAAA"],
    );
    fails(&out, 3, "disable an unknown key");
    let out = run(dir.path(), &["credentials", "delete", "../../etc"]);
    fails(&out, 2, "a malformed access key id");
    let empty = json(dir.path(), &["credentials", "list"], b"");
    assert_eq!(empty["Credentials"].as_array().unwrap().len(), 0);
}

fn hmac_sha256(key: &[u8], data: &[u8]) -> Vec<u8> {
    hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, key), data)
        .as_ref()
        .to_vec()
}

/// A KMS request signed with SigV4 for `id`/`secret` at the current time.
fn signed(id: &str, secret: &str, n: usize) -> (http::HeaderMap, Vec<u8>) {
    let body = format!("{{\"KeyId\":\"alias/a\",\"N\":{n}}}").into_bytes();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let amz_date = sigv4::format_amz_date(now);
    let mut headers = http::HeaderMap::new();
    headers.insert("host", "127.0.0.1:4443".parse().unwrap());
    headers.insert("x-amz-date", amz_date.parse().unwrap());
    headers.insert("x-amz-target", "TrentService.Encrypt".parse().unwrap());
    let signed_headers = "host;x-amz-date;x-amz-target";
    let mut creq = digest::Context::new(&digest::SHA256);
    sigv4::canonical_request(
        &mut creq,
        "POST",
        "/",
        "",
        &headers,
        signed_headers,
        &sigv4::sha256_hex(&body),
    );
    let scope = format!("{}/us-east-1/kms/aws4_request", &amz_date[..8]);
    let sts = sigv4::string_to_sign(&amz_date, &scope, creq.finish().as_ref());
    let mut key = hmac_sha256(
        format!("AWS4{secret}").as_bytes(),
        &amz_date.as_bytes()[..8],
    );
    for part in ["us-east-1", "kms", "aws4_request"] {
        key = hmac_sha256(&key, part.as_bytes());
    }
    let mut signature = String::new();
    sigv4::hex_into(&hmac_sha256(&key, sts.as_bytes()), &mut signature);
    headers.insert(
        "authorization",
        format!(
            "AWS4-HMAC-SHA256 Credential={id}/{scope}, SignedHeaders={signed_headers}, \
             Signature={signature}"
        )
        .parse()
        .unwrap(),
    );
    (headers, body)
}

fn verify(auth: &Authenticator, id: &str, secret: &str, n: usize) -> Result<Identity, AuthError> {
    let (headers, body) = signed(id, secret, n);
    auth.verify(
        &keyplane_server::auth::SignedRequest {
            method: "POST",
            path: "/",
            query: "",
            headers: &headers,
            body: &body,
        },
        SystemTime::now(),
    )
}

/// How long until `condition` holds (polled every 20 ms, for at most 3 s).
fn within(mut condition: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    while !condition() {
        assert!(start.elapsed() < Duration::from_secs(3), "never happened");
        std::thread::sleep(Duration::from_millis(20));
    }
    start.elapsed()
}

#[test]
fn disabled_and_deleted_credentials_are_refused_by_a_running_authenticator() {
    let dir = tempfile::tempdir().unwrap();
    store(dir.path());
    let created = json(
        dir.path(),
        &["--principal", APP, "credentials", "create"],
        b"",
    );
    let id = created["AccessKeyId"].as_str().unwrap().to_owned();
    let secret = created["SecretAccessKey"].as_str().unwrap().to_owned();

    // The server's view: its own handle on the store.
    let data = dir.path().join("keyplane-data");
    let store = SqliteKeyStore::open(
        &data,
        Arc::new(KeyFileProvider::new(
            data.join("root.key"),
            keyplane::LockPolicy::Require,
        )),
        StoreOptions::default(),
    )
    .unwrap();
    let auth = Authenticator::new(CredentialStore::sqlite(Arc::new(store)), "us-east-1");
    let identity = verify(&auth, &id, &secret, 0).unwrap();
    assert_eq!(identity.principal, APP);
    assert_eq!(identity.access_key_id, id);

    let mut n = 1;
    let mut refused_with = |auth: &Authenticator| {
        n += 1;
        verify(auth, &id, &secret, n).err().map(|e| e.code)
    };
    ok(dir.path(), &["credentials", "disable", &id], b"");
    let took = within(|| refused_with(&auth) == Some("UnrecognizedClientException"));
    assert!(took < Duration::from_secs(1), "disable took {took:?}");
    let listed = json(dir.path(), &["credentials", "list"], b"");
    assert_eq!(listed["Credentials"][0]["Status"], "Inactive");

    ok(dir.path(), &["credentials", "enable", &id], b"");
    let took = within(|| refused_with(&auth).is_none());
    assert!(took < Duration::from_secs(1), "enable took {took:?}");

    ok(dir.path(), &["credentials", "delete", &id], b"");
    let took = within(|| refused_with(&auth) == Some("UnrecognizedClientException"));
    assert!(took < Duration::from_secs(1), "delete took {took:?}");
    let listed = json(dir.path(), &["credentials", "list"], b"");
    assert_eq!(listed["Credentials"].as_array().unwrap().len(), 0);
    fails(
        &run(dir.path(), &["credentials", "delete", &id]),
        3,
        "delete twice",
    );
    report(&format!(
        "assurance: credentials: disable, enable and delete took effect in a running \
         authenticator within {took:?}"
    ));
}
