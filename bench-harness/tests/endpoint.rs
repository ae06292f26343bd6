//! The endpoint load generator against a small server in this test (TLS with a self-signed
//! certificate, HTTP/1.1 and HTTP/2): every request arrives signed with SigV4 for kms in the given
//! region, with its own amz-sdk-invocation-id, and its signature (made by the aws-sigv4 crate, as
//! the SDKs make them) passes keyplane serve's own verifier, replay refusal included; answers are
//! counted; the service's errors are counted by code and fail the run. Behaviour only: nothing here
//! asserts a speed.
#![cfg(feature = "endpoint")]

use std::collections::HashSet;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use clap::Parser;
use http_body_util::{BodyExt as _, Full};
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use keyplane::LockPolicy;
use keyplane_bench::endpoint::{run_endpoint, EndpointArgs, EndpointOptions};
use keyplane_bench::BenchError;
use keyplane_server::auth::credentials::CredentialStore;
use keyplane_server::auth::{Authenticator, SignedRequest};

/// What the server saw.
struct Seen {
    /// keyplane serve's SigV4 verifier, over one credential for the region eu-west-3.
    auth: Authenticator,
    access_key_id: String,
    secret: String,
    invocation_ids: Mutex<HashSet<String>>,
    requests: AtomicU64,
    bad: Mutex<Vec<String>>,
    /// Answer every Nth data-plane request with ThrottlingException (0: never).
    throttle_every: u64,
}

impl Seen {
    fn new(throttle_every: u64) -> Arc<Seen> {
        let credentials = CredentialStore::in_memory().with_lock_policy(LockPolicy::Warn);
        let created = credentials
            .create("arn:aws:iam::111122223333:user/bench")
            .expect("a credential");
        Arc::new(Seen {
            auth: Authenticator::new(credentials, "eu-west-3"),
            access_key_id: created.access_key_id.clone(),
            secret: created.secret_access_key.to_string(),
            invocation_ids: Mutex::default(),
            requests: AtomicU64::new(0),
            bad: Mutex::default(),
            throttle_every,
        })
    }
}

async fn answer(seen: Arc<Seen>, req: Request<hyper::body::Incoming>) -> Response<Full<Bytes>> {
    let n = seen.requests.fetch_add(1, Ordering::Relaxed) + 1;
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned()
    };
    let mut bad = Vec::new();
    let auth = header("authorization");
    if !auth.contains("amz-sdk-invocation-id") || !auth.contains("x-amz-target") {
        bad.push(format!("authorization signs too little: {auth}"));
    }
    if header("x-amz-date").len() != 16 {
        bad.push("no x-amz-date".into());
    }
    if header("content-type") != "application/x-amz-json-1.1" {
        bad.push("content type".into());
    }
    let id = header("amz-sdk-invocation-id");
    if id.is_empty() || !seen.invocation_ids.lock().unwrap().insert(id.clone()) {
        bad.push(format!("invocation id not unique: {id:?}"));
    }
    let target = header("x-amz-target");
    let (parts, body) = req.into_parts();
    let body = body.collect().await.unwrap().to_bytes();
    let mut headers = parts.headers.clone();
    if let Some(authority) = parts
        .uri
        .authority()
        .filter(|_| !headers.contains_key("host"))
    {
        // HTTP/2 carries the signed host as :authority.
        headers.insert("host", authority.as_str().parse().unwrap());
    }
    let signed = SignedRequest {
        method: parts.method.as_str(),
        path: parts.uri.path(),
        query: parts.uri.query().unwrap_or(""),
        headers: &headers,
        body: &body,
    };
    match seen.auth.verify(&signed, std::time::SystemTime::now()) {
        Ok(identity) if identity.access_key_id == seen.access_key_id => {}
        other => bad.push(format!("signature refused: {other:?}")),
    }
    let json: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    let ok = |v: serde_json::Value| {
        Response::builder()
            .status(200)
            .header("content-type", "application/x-amz-json-1.1")
            .body(Full::new(Bytes::from(v.to_string())))
            .unwrap()
    };
    if !bad.is_empty() {
        seen.bad.lock().unwrap().extend(bad);
    }
    let operation = target.strip_prefix("TrentService.").unwrap_or("");
    if operation != "CreateKey" && seen.throttle_every > 0 && n % seen.throttle_every == 0 {
        return Response::builder()
            .status(400)
            .body(Full::new(Bytes::from(
                r#"{"__type":"com.amazonaws.kms#ThrottlingException","message":"slow down"}"#,
            )))
            .unwrap();
    }
    match operation {
        "CreateKey" => ok(serde_json::json!({"KeyMetadata": {
            "KeyId": "1234abcd-12ab-34cd-56ef-1234567890ab",
            "KeySpec": json["KeySpec"],
        }})),
        "Encrypt" if json["Plaintext"].is_string() && json["KeyId"].is_string() => {
            ok(serde_json::json!({"CiphertextBlob": "AQID", "KeyId": json["KeyId"]}))
        }
        "Decrypt" if json["CiphertextBlob"] == "AQID" => {
            ok(serde_json::json!({"Plaintext": "AA=="}))
        }
        "GenerateDataKey" if json["KeySpec"] == "AES_256" => {
            ok(serde_json::json!({"CiphertextBlob": "AQID", "Plaintext": "AA=="}))
        }
        "Sign" if json["SigningAlgorithm"] == "ECDSA_SHA_256" => {
            ok(serde_json::json!({"Signature": "AQID"}))
        }
        _ => Response::builder()
            .status(400)
            .body(Full::new(Bytes::from(format!(
                r#"{{"__type":"UnknownOperationException","message":"{operation}"}}"#
            ))))
            .unwrap(),
    }
}

/// Serves on 127.0.0.1:0 over TLS (HTTP/1.1 or HTTP/2 by ALPN); returns the address and the
/// certificate's PEM file.
fn serve(seen: Arc<Seen>, dir: &std::path::Path) -> (SocketAddr, std::path::PathBuf) {
    let cert =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".into(), "localhost".into()]).unwrap();
    let pem = dir.join("cert.pem");
    std::fs::write(&pem, cert.cert.pem()).unwrap();
    let key = rustls::pki_types::PrivateKeyDer::try_from(cert.key_pair.serialize_der()).unwrap();
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(vec![cert.cert.der().clone()], key)
    .unwrap();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            loop {
                let (tcp, _) = listener.accept().await.unwrap();
                let (acceptor, seen) = (acceptor.clone(), Arc::clone(&seen));
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let service = hyper::service::service_fn(move |req| {
                        let seen = Arc::clone(&seen);
                        async move { Ok::<_, Infallible>(answer(seen, req).await) }
                    });
                    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(tls), service)
                        .await;
                });
            }
        });
    });
    (addr, pem)
}

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    args: EndpointArgs,
}

fn args(list: &[&str]) -> EndpointArgs {
    Cli::try_parse_from(std::iter::once("bench").chain(list.iter().copied()))
        .expect("the arguments parse")
        .args
}

fn options(json: &std::path::Path) -> EndpointOptions {
    EndpointOptions {
        json: Some(keyplane_bench::Destination::File(json.to_owned())),
        region: "eu-west-3".into(),
        duration: Duration::from_millis(300),
        warmup: Duration::from_millis(50),
        size: 64,
        plot: None,
        quiet: true,
    }
}

#[test]
fn every_operation_is_signed_counted_and_error_free() {
    let dir = tempfile::tempdir().unwrap();
    let seen = Seen::new(0);
    let (addr, pem) = serve(Arc::clone(&seen), dir.path());
    let url = format!("https://{addr}");
    let json = dir.path().join("report.json");
    let charts = dir.path().join("charts");
    let mut options = options(&json);
    options.plot = Some(charts.clone());
    // The "server" is this process: its CPU time per request is read from /proc.
    let pid = std::process::id().to_string();
    let report = run_endpoint(
        &args(&[
            "--endpoint",
            &url,
            "--ca-bundle",
            pem.to_str().unwrap(),
            "--access-key-id",
            &seen.access_key_id,
            "--secret-access-key",
            &seen.secret,
            "--operation",
            "encrypt,decrypt,generate-data-key,sign",
            "--connections",
            "1,3",
            "--client-threads",
            "2",
            "--server-pid",
            &pid,
        ]),
        &options,
    )
    .expect("a run without errors");
    let bad = seen.bad.lock().unwrap().clone();
    assert!(bad.is_empty(), "malformed requests: {bad:?}");
    assert_eq!(report.runs.len(), 8, "4 operations x 2 connection counts");
    let mut counted = 0;
    for run in &report.runs {
        assert!(run.requests > 0, "{run:?}");
        assert_eq!(run.error_count, 0, "{run:?}");
        assert!(run.tls && !run.http2);
        assert!(run.latency.p50_ms > 0.0 && run.latency.p50_ms <= run.latency.p99_ms);
        assert!(run.latency.p99_ms <= run.latency.max_ms);
        assert!(
            run.client_cpu_us_per_request.is_some_and(|v| v > 0.0),
            "{run:?}"
        );
        assert!(run.server_cpu_us_per_request.is_some(), "{run:?}");
        counted += run.requests;
    }
    // The server saw at least every counted request (plus setup and warm-up).
    assert!(seen.requests.load(Ordering::Relaxed) >= counted);
    let written: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(written["runs"].as_array().unwrap().len(), 8);
    // A sweep over connections draws a chart per operation.
    assert!(charts
        .join("endpoint-encrypt-64B-vs-connections.png")
        .exists());
}

#[test]
fn http2_and_append_compare_with_a_baseline() {
    let dir = tempfile::tempdir().unwrap();
    let seen = Seen::new(0);
    let (addr, pem) = serve(Arc::clone(&seen), dir.path());
    let url = format!("https://{addr}");
    let appended = dir.path().join("all.json");
    let json = dir.path().join("report.json");
    for (label, http2) in [("base", false), ("h2", true)] {
        let mut list = vec![
            "--endpoint",
            &url,
            "--ca-bundle",
            pem.to_str().unwrap(),
            "--access-key-id",
            &seen.access_key_id,
            "--secret-access-key",
            &seen.secret,
            "--connections",
            "2",
            "--label",
            label,
            "--baseline",
            "base",
            "--append",
            appended.to_str().unwrap(),
        ];
        if http2 {
            list.push("--http2");
        }
        run_endpoint(&args(&list), &options(&json)).expect("a run without errors");
    }
    let report = keyplane_bench::endpoint::EndpointReport::read(&appended).unwrap();
    assert_eq!(report.runs.len(), 2);
    assert!(report.runs[1].http2 && report.runs[1].requests > 0);
    assert_eq!(
        report.runs[0].vs_baseline, None,
        "the baseline has no ratio to itself"
    );
    let ratio = report.runs[1].vs_baseline.expect("a ratio to the baseline");
    assert!(ratio > 0.0);
    assert!(seen.bad.lock().unwrap().is_empty());
}

#[test]
fn service_errors_are_counted_by_code_and_fail_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let seen = Seen::new(5);
    let (addr, pem) = serve(Arc::clone(&seen), dir.path());
    let json = dir.path().join("report.json");
    let err = run_endpoint(
        &args(&[
            "--endpoint",
            &format!("https://{addr}"),
            "--ca-bundle",
            pem.to_str().unwrap(),
            "--access-key-id",
            &seen.access_key_id,
            "--secret-access-key",
            &seen.secret,
            "--connections",
            "2",
        ]),
        &options(&json),
    )
    .expect_err("a run with errors fails");
    assert!(matches!(err, BenchError::Run(_)), "{err}");
    let written: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let run = &written["runs"][0];
    let throttled = run["errors"]["ThrottlingException"].as_u64().unwrap_or(0);
    assert!(throttled > 0, "errors by code: {}", run["errors"]);
    assert_eq!(run["error_count"].as_u64(), Some(throttled));
    assert_eq!(run["error_messages"]["ThrottlingException"], "slow down");
    assert!(written["notes"][0].as_str().unwrap().starts_with("ERRORS:"));
}

#[test]
fn a_clean_run_appended_after_a_failed_one_succeeds() {
    let dir = tempfile::tempdir().unwrap();
    let all = dir.path().join("all.json");
    for (every, label) in [(3, "throttled"), (0, "clean")] {
        let seen = Seen::new(every);
        let (addr, pem) = serve(Arc::clone(&seen), dir.path());
        let result = run_endpoint(
            &args(&[
                "--endpoint",
                &format!("https://{addr}"),
                "--ca-bundle",
                pem.to_str().unwrap(),
                "--access-key-id",
                &seen.access_key_id,
                "--secret-access-key",
                &seen.secret,
                "--connections",
                "1,1,2",
                "--operation",
                "encrypt,encrypt",
                "--label",
                label,
                "--append",
                all.to_str().unwrap(),
            ]),
            &options(&dir.path().join("r.json")),
        );
        assert_eq!(result.is_ok(), every == 0, "{label}: {result:?}");
    }
    let report = keyplane_bench::endpoint::EndpointReport::read(&all).unwrap();
    // Duplicates dropped: one operation at 1 and 2 connections, for each server.
    assert_eq!(report.runs.len(), 4);
    assert!(report.runs[..2].iter().all(|r| r.error_count > 0));
    assert!(report.runs[2..].iter().all(|r| r.error_count == 0));
}

#[test]
fn an_https_endpoint_without_a_ca_bundle_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let err = run_endpoint(
        &args(&[
            "--endpoint",
            "https://127.0.0.1:9",
            "--access-key-id",
            "AKIAIOSFODNN7EXAMPLE",
            "--secret-access-key",
            "x",
        ]),
        &options(&dir.path().join("r.json")),
    )
    .expect_err("refused");
    assert!(
        matches!(err, BenchError::Usage(ref m) if m.contains("--ca-bundle")),
        "{err}"
    );
}

/// keyplane serve's own stack (TLS, SigV4, the JSON 1.1 protocol, coalescing) on an in-memory
/// engine, started in this test; returns its URL, its CA bundle and a credential.
fn keyplane_server(
    dir: &std::path::Path,
    coalesce: bool,
) -> (String, std::path::PathBuf, String, String) {
    use keyplane_server::coalesce::CoalesceConfig;
    use keyplane_server::http::{Limits, Server, ServerConfig, TlsMode};
    use keyplane_server::protocol::Service;
    let engine = keyplane::Engine::builder()
        .lock_policy(LockPolicy::Warn)
        .build()
        .expect("an engine");
    let credentials = CredentialStore::in_memory().with_lock_policy(LockPolicy::Warn);
    let created = credentials
        .create("arn:aws:iam::111122223333:root")
        .expect("a credential");
    let metrics = Arc::new(keyplane_server::Metrics::default());
    let service = Service::new(
        engine,
        CoalesceConfig {
            enabled: coalesce,
            ..CoalesceConfig::default()
        },
        Arc::clone(&metrics),
    );
    let config = ServerConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        admin_listen: None,
        tls: TlsMode::SelfSigned {
            dir: dir.join("tls"),
        },
        limits: Limits::default(),
    };
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let server = Server::bind(
                config,
                service,
                Authenticator::new(credentials, "eu-west-3"),
                metrics,
            )
            .await
            .expect("the server binds");
            let ca = server.tls_info().expect("TLS").certificate.clone();
            tx.send((server.url(), ca)).unwrap();
            server.run().await;
        });
    });
    let (url, ca) = rx.recv().expect("the server started");
    (
        url,
        ca,
        created.access_key_id.clone(),
        created.secret_access_key.to_string(),
    )
}

fn against_keyplane(coalesce: bool, extra: &[&str]) -> keyplane_bench::endpoint::EndpointReport {
    let dir = tempfile::tempdir().unwrap();
    let (url, ca, id, secret) = keyplane_server(dir.path(), coalesce);
    let mut list = vec![
        "--endpoint",
        &url,
        "--ca-bundle",
        ca.to_str().unwrap(),
        "--access-key-id",
        &id,
        "--secret-access-key",
        &secret,
        "--operation",
        "encrypt,decrypt,generate-data-key,sign",
        "--connections",
        "4",
    ];
    list.extend_from_slice(extra);
    let report = run_endpoint(&args(&list), &options(&dir.path().join("report.json")))
        .expect("a run against keyplane serve without errors");
    assert_eq!(report.runs.len(), 4);
    for run in &report.runs {
        assert!(run.requests > 0, "{run:?}");
        assert_eq!(run.error_count, 0, "{run:?}");
    }
    report
}

#[test]
fn against_keyplane_serve_every_operation_is_answered() {
    against_keyplane(true, &[]);
    against_keyplane(false, &[]);
}

/// HTTP/2 clients send the authority as `:authority`, not as a `host` header, and sign it as
/// `host`: keyplane serve's transport gives the verifier that `host` (before it did, every HTTP/2
/// request failed with InvalidSignatureException; this test found it).
#[test]
fn against_keyplane_serve_over_http2() {
    let report = against_keyplane(true, &["--http2"]);
    assert!(report.runs.iter().all(|r| r.http2));
}
