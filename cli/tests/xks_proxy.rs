//! `keyplane xks-proxy` as a process over a sqlite store: generated credentials (the console's
//! file format, mode 0600), an external key created at startup, keyplane's XKS client round trip
//! over TLS with the self-signed CA, SIGTERM (`stopped`), and a restart on the same store that
//! decrypts the first run's ciphertext (the external key is durable).

mod common;

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::Duration;

use common::serving::{find, startup};
use common::{ok, run};
use serde_json::Value;

use keyplane_xks::api::{CryptoRequestMetadata, HealthRequestMetadata};
use keyplane_xks::{Credential, TrustAnchors, XksClient, XksClientConfig, XksErrorKind};

struct Proxy {
    child: Child,
    lines: BufReader<ChildStdout>,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn spawn(dir: &Path, args: &[&str]) -> (Proxy, Vec<Value>) {
    spawn_with(dir, args, Stdio::inherit())
}

/// As [`spawn`], with the proxy's standard error (its request log) going to `stderr`.
fn spawn_with(dir: &Path, args: &[&str], stderr: Stdio) -> (Proxy, Vec<Value>) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_keyplane"));
    command
        .current_dir(dir)
        .args(["--json", "--data-dir", "data", "xks-proxy"])
        .args(args);
    for (var, _) in std::env::vars() {
        if var.starts_with("KEYPLANE_") {
            command.env_remove(var);
        }
    }
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap());
    let events = startup(&mut lines);
    (Proxy { child, lines }, events)
}

fn client_for(dir: &Path, events: &[Value]) -> XksClient {
    let creds: Value =
        serde_json::from_slice(&std::fs::read(dir.join("creds.json")).unwrap()).unwrap();
    let credential = &creds["XksProxyAuthenticationCredential"];
    let listening = find(events, "listening");
    XksClient::new(XksClientConfig {
        trust: TrustAnchors::CaBundle(
            dir.join(find(events, "tls")["certificate"].as_str().unwrap()),
        ),
        timeout: Duration::from_secs(10),
        ..XksClientConfig::new(
            listening["endpoint"].as_str().unwrap(),
            listening["uri_path"].as_str().unwrap(),
            Credential::new(
                credential["AccessKeyId"].as_str().unwrap(),
                credential["RawSecretAccessKey"].as_str().unwrap(),
            ),
            "us-east-1",
        )
    })
    .unwrap()
}

fn metadata(operation: &str) -> CryptoRequestMetadata {
    CryptoRequestMetadata {
        aws_principal_arn: "arn:aws:iam::111122223333:user/alice".into(),
        kms_key_arn: "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
            .into(),
        kms_operation: operation.into(),
        kms_request_id: "req-1".into(),
        ..Default::default()
    }
}

fn stop(mut proxy: Proxy) {
    let status = Command::new("kill")
        .args(["-TERM", &proxy.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let mut rest = String::new();
    loop {
        let mut line = String::new();
        if proxy.lines.read_line(&mut line).unwrap() == 0 {
            break;
        }
        rest.push_str(&line);
    }
    assert!(rest.contains(r#""event":"stopped""#), "{rest}");
    assert!(proxy.child.wait().unwrap().success());
}

#[test]
fn the_proxy_serves_generated_credentials_and_durable_external_keys_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(d, &["--data-dir", "data", "store", "init"], b"");
    let args = [
        "--listen",
        "127.0.0.1:0",
        "--tls-self-signed",
        "--uri-path-prefix",
        "tenant-a",
        "--credentials",
        "creds.json",
        "--generate-credentials",
        "--create-key",
        "ext.key-1",
    ];
    let (first, events) = spawn(d, &args);
    let mode = std::fs::metadata(d.join("creds.json"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let created = find(&events, "key")["key_id"].as_str().unwrap().to_owned();
    assert_eq!(
        find(&events, "listening")["uri_path"],
        "/tenant-a/kms/xks/v1"
    );
    let client = client_for(d, &events);
    let health = client
        .health_status(&HealthRequestMetadata {
            kms_request_id: "r".into(),
            kms_operation: "CreateCustomKeyStore".into(),
        })
        .unwrap();
    assert_eq!(health.ekm_fleet_details.len(), 1);
    let sealed = client
        .encrypt(
            "ext.key-1",
            b"a data key",
            Some(b"aad"),
            &metadata("Encrypt"),
        )
        .unwrap();
    assert_eq!(
        client
            .encrypt("ext.key-2", b"x", None, &metadata("Encrypt"))
            .unwrap_err()
            .kind,
        XksErrorKind::KeyNotFound
    );
    stop(first);

    // Again on the same store: the key is kept, not made twice, and opens the first run's data.
    let (second, events) = spawn(d, &args);
    assert_eq!(find(&events, "key")["key_id"].as_str().unwrap(), created);
    let client = client_for(d, &events);
    let opened = client
        .decrypt("ext.key-1", &sealed, Some(b"aad"), &metadata("Decrypt"))
        .unwrap();
    assert_eq!(opened.expose(), b"a data key");
    stop(second);
}

#[test]
fn the_proxy_refuses_bad_setups_before_serving() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(d, &["--data-dir", "data", "store", "init"], b"");
    // The proxy started with `args`, which it must refuse.
    let refused = |args: &[&str]| {
        let out = run(d, &[&["--data-dir", "data", "xks-proxy"], args].concat());
        assert!(!out.status.success(), "{args:?}");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let on_loopback = [
        "--listen",
        "127.0.0.1:0",
        "--tls-self-signed",
        "--credentials",
    ];
    // No such credentials file, and not asked to make one.
    refused(&[&on_loopback[..], &["none.json"]].concat());
    // Credentials for another URI path.
    std::fs::write(
        d.join("other.json"),
        r#"{"XksProxyUriPath": "/other/kms/xks/v1", "XksProxyAuthenticationCredential": {"AccessKeyId": "AKIAI2SFODNN7EXAMPLE", "RawSecretAccessKey": "FYtE5EFA5FT0mCc3DrGUe2sti527BitkQ0Zr9MO9fvE"}}"#,
    )
    .unwrap();
    let said = refused(&[&on_loopback[..], &["other.json"]].concat());
    assert!(said.contains("/other/kms/xks/v1"), "{said}");
    // A secret too short for the spec, and plain HTTP off loopback.
    std::fs::write(
        d.join("weak.json"),
        r#"{"XksProxyUriPath": "/kms/xks/v1", "XksProxyAuthenticationCredential": {"AccessKeyId": "AKIAI2SFODNN7EXAMPLE", "RawSecretAccessKey": "short"}}"#,
    )
    .unwrap();
    for args in [
        [&on_loopback[..], &["weak.json"]].concat(),
        vec![
            "--listen",
            "0.0.0.0:0",
            "--plain-http",
            "--credentials",
            "other.json",
            "--uri-path-prefix",
            "other",
        ],
    ] {
        let said = refused(&args);
        assert!(!said.contains("short\""), "the secret is never quoted");
    }
}

/// `keyplane key-store create --xks-proxy-uri-endpoint` against a `keyplane xks-proxy` process:
/// connect, a key with `--xks-key-id`, encrypt and decrypt in separate processes (each engine
/// start reconnects the store), the proxy stopped (decrypt fails, KMSInvalidStateException) and
/// started again (it decrypts), and the secret never printed.
#[test]
fn key_store_commands_make_and_use_an_external_key_store_through_the_proxy() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let ProxyForKms {
        proxy,
        endpoint,
        ca,
    } = proxy_for_kms(d, "ext-cli", &[], Stdio::inherit());
    let kms = |extra: &[&str]| -> Vec<String> {
        let mut all: Vec<String> = ["--json", "--data-dir", "kms", "--xks-ca-bundle", &ca]
            .iter()
            .map(|s| s.to_string())
            .collect();
        all.extend(extra.iter().map(|s| s.to_string()));
        all
    };
    let json = |extra: &[&str]| -> Value {
        let args = kms(extra);
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        serde_json::from_slice(&ok(d, &refs, b"")).unwrap()
    };
    let (store, key) = external_key(json, &endpoint, "ext-cli");
    let listed = json(&["key-store", "list", "--id", &store]);
    let entry = &listed["CustomKeyStores"][0];
    assert_eq!(entry["ConnectionState"], "CONNECTED", "{listed}");
    assert_eq!(
        entry["XksProxyConfiguration"]["UriEndpoint"],
        endpoint.as_str()
    );
    let creds: Value =
        serde_json::from_slice(&std::fs::read(d.join("creds.json")).unwrap()).unwrap();
    let secret = creds["XksProxyAuthenticationCredential"]["RawSecretAccessKey"]
        .as_str()
        .unwrap();
    assert!(
        !listed.to_string().contains(secret),
        "the secret is never printed"
    );

    let described = json(&["key", "describe", &key]);
    assert_eq!(
        described["KeyMetadata"]["XksKeyConfiguration"]["Id"], "ext-cli",
        "{described}"
    );
    std::fs::write(d.join("pt"), b"hello XKS").unwrap();
    let args = kms(&["encrypt", "--key-id", &key, "--in", "pt", "--out", "ct"]);
    ok(d, &args.iter().map(String::as_str).collect::<Vec<_>>(), b"");
    let decrypt = kms(&["decrypt", "--in", "ct", "--out", "back"]);
    let decrypt: Vec<&str> = decrypt.iter().map(String::as_str).collect();
    ok(d, &decrypt, b"");
    assert_eq!(std::fs::read(d.join("back")).unwrap(), b"hello XKS");
    // The key's keyplane-held material (the inner layer) is stored and checked as any key's.
    let verify = run(d, &["--data-dir", "kms", "store", "verify"]);
    assert!(
        verify.status.success(),
        "{}",
        String::from_utf8_lossy(&verify.stderr)
    );

    // The proxy gone: the ciphertext does not open; the proxy back: it does.
    stop(proxy);
    let refused = run(d, &decrypt);
    assert!(!refused.status.success());
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(said.contains("KeyUnavailableException"), "{said}");
    let restart = args_with_port(&args_list(), &endpoint);
    let (again, _) = spawn(d, &restart.iter().map(String::as_str).collect::<Vec<_>>());
    ok(d, &decrypt, b"");
    assert_eq!(std::fs::read(d.join("back")).unwrap(), b"hello XKS");
    stop(again);
}

/// A proxy for a KMS side on this machine: the data directories of both made (`data` for the
/// proxy, `kms` for the keyplane that calls it), the proxy started with fresh credentials in
/// creds.json and the external key `xks_key`, with `more` arguments and its standard error to
/// `stderr`.
struct ProxyForKms {
    proxy: Proxy,
    endpoint: String,
    /// The proxy's self-signed certificate (PEM file).
    ca: String,
}

fn proxy_for_kms(d: &Path, xks_key: &str, more: &[&str], stderr: Stdio) -> ProxyForKms {
    ok(d, &["--data-dir", "data", "store", "init"], b"");
    ok(d, &["--data-dir", "kms", "store", "init"], b"");
    let mut args = vec![
        "--listen",
        "127.0.0.1:0",
        "--tls-self-signed",
        "--credentials",
        "creds.json",
        "--generate-credentials",
        "--create-key",
        xks_key,
    ];
    args.extend_from_slice(more);
    let (proxy, events) = spawn_with(d, &args, stderr);
    let text = |event: &str, field: &str| find(&events, event)[field].as_str().unwrap().to_owned();
    ProxyForKms {
        proxy,
        endpoint: text("listening", "endpoint"),
        ca: text("tls", "certificate"),
    }
}

/// Through `kms` (the KMS side's command line, answering JSON): an external key store on the
/// proxy at `endpoint` with the credentials in creds.json, connected, and a key on the proxy's
/// key `xks_key`. Returns the store's id and the key's.
fn external_key(kms: impl Fn(&[&str]) -> Value, endpoint: &str, xks_key: &str) -> (String, String) {
    let store = kms(&[
        "key-store",
        "create",
        "--name",
        "xks",
        "--xks-proxy-uri-endpoint",
        endpoint,
        "--xks-proxy-config",
        "creds.json",
    ])["CustomKeyStoreId"]
        .as_str()
        .unwrap()
        .to_owned();
    kms(&["key-store", "connect", &store]);
    let key = kms(&[
        "key",
        "create",
        "--origin",
        "EXTERNAL_KEY_STORE",
        "--custom-key-store-id",
        &store,
        "--xks-key-id",
        xks_key,
    ])["KeyMetadata"]["KeyId"]
        .as_str()
        .unwrap()
        .to_owned();
    (store, key)
}

fn args_list() -> Vec<String> {
    [
        "--tls-self-signed",
        "--credentials",
        "creds.json",
        "--create-key",
        "ext-cli",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// The proxy's arguments listening on the port of `endpoint` again.
fn args_with_port(rest: &[String], endpoint: &str) -> Vec<String> {
    let port = endpoint.rsplit(':').next().unwrap();
    let mut all = vec!["--listen".to_owned(), format!("127.0.0.1:{port}")];
    all.extend(rest.iter().cloned());
    all
}

/// Every audit record under `dir` (each process of a store writes its own segment).
fn audit_records(dir: &Path) -> Vec<Value> {
    let mut records = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(path) = pending.pop() {
        if path.is_dir() {
            pending.extend(std::fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
        } else if let Ok(text) = std::fs::read_to_string(&path) {
            records.extend(
                text.lines()
                    .filter(|l| l.starts_with("{\"seq\":"))
                    .map(|l| serde_json::from_str::<Value>(l).unwrap()),
            );
        }
    }
    records
}

/// End to end across processes: the kmsRequestId that `keyplane xks-proxy --log-requests` logs
/// for each Encrypt and Decrypt is the requestID of the audit record that `keyplane encrypt` and
/// `keyplane decrypt` wrote in their store, for the same operation.
#[test]
fn the_proxy_logs_the_kms_request_id_of_the_audit_record_that_caused_each_request() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let log = std::fs::File::create(d.join("proxy.log")).unwrap();
    let ProxyForKms {
        proxy,
        endpoint,
        ca,
    } = proxy_for_kms(d, "ext-id", &["--log-requests"], Stdio::from(log));
    let kms = |extra: &[&str]| -> Value {
        let mut all = vec!["--json", "--data-dir", "kms", "--xks-ca-bundle", &ca];
        all.extend_from_slice(extra);
        let out = ok(d, &all, b"");
        serde_json::from_slice(&out).unwrap_or(Value::Null)
    };
    let (_, key) = external_key(kms, &endpoint, "ext-id");
    std::fs::write(d.join("pt"), b"traced").unwrap();
    kms(&["encrypt", "--key-id", &key, "--in", "pt", "--out", "ct"]);
    kms(&["decrypt", "--in", "ct", "--out", "back"]);
    stop(proxy);

    let logged: Vec<(String, String)> = std::fs::read_to_string(d.join("proxy.log"))
        .unwrap()
        .lines()
        .filter_map(|line| {
            let rest = line.strip_prefix("keyplane xks-proxy: ")?;
            let operation = rest.split(' ').next()?;
            let id = rest
                .split(' ')
                .find_map(|w| w.strip_prefix("kmsRequestId="))?;
            matches!(operation, "Encrypt" | "Decrypt")
                .then(|| (operation.to_owned(), id.to_owned()))
        })
        .collect();
    assert_eq!(logged.len(), 2, "one Encrypt and one Decrypt: {logged:?}");
    let records = audit_records(&d.join("kms"));
    for (operation, id) in &logged {
        let matching: Vec<&Value> = records
            .iter()
            .filter(|r| r["requestID"].as_str() == Some(id.as_str()))
            .collect();
        assert_eq!(
            matching.len(),
            1,
            "{operation} kmsRequestId={id}: {matching:?}"
        );
        assert_eq!(
            matching[0]["eventName"],
            operation.as_str(),
            "{}",
            matching[0]
        );
    }
}
