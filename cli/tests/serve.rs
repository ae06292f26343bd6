//! `keyplane serve` as a process: the TLS choice it insists on, its `--json` startup lines,
//! 10,000 idle connections, and SIGTERM (a request in flight completes; exit 0; `stopped`).

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use common::serving::{address, find, http_get, signed_headers, spawn_with, startup, Serving};
use common::{code, ok, run};
use serde_json::Value;

fn init(dir: &Path) {
    ok(dir, &["--data-dir", "data", "store", "init"], b"");
}

/// `keyplane --json --data-dir data serve ARGS` in `dir`, with its stdout lines.
fn spawn(dir: &Path, args: &[&str]) -> Serving {
    spawn_with(dir, &["--data-dir", "data"], args, &[])
}

fn sigterm(child: &Child) {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn serve_insists_on_a_tls_choice_and_plain_http_only_on_loopback() {
    let dir = tempfile::tempdir().unwrap();
    init(dir.path());
    let out = run(
        dir.path(),
        &["--data-dir", "data", "serve", "--listen", "127.0.0.1:0"],
    );
    assert_eq!(code(&out), 2);
    let err = String::from_utf8_lossy(&out.stderr);
    for choice in ["--tls-cert", "--tls-self-signed", "--plain-http"] {
        assert!(err.contains(choice), "{err}");
    }
    let out = run(
        dir.path(),
        &[
            "--data-dir",
            "data",
            "serve",
            "--listen",
            "0.0.0.0:0",
            "--plain-http",
        ],
    );
    assert_eq!(code(&out), 2);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("loopback"), "{err}");
    // A certificate file that is not there: named.
    let out = run(
        dir.path(),
        &[
            "--data-dir",
            "data",
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--tls-cert",
            "nope.pem",
            "--tls-key",
            "nope.key",
        ],
    );
    assert_eq!(code(&out), 2);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("nope.pem"), "{err}");
    // A port already taken: the environment's fault (exit 5), said plainly.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let out = run(
        dir.path(),
        &[
            "--data-dir",
            "data",
            "serve",
            "--listen",
            &addr,
            "--plain-http",
        ],
    );
    assert_eq!(code(&out), 5);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cannot listen on") && err.contains(&addr),
        "{err}"
    );
}

#[test]
fn serve_prints_its_startup_lines_and_keeps_its_self_signed_certificate() {
    let dir = tempfile::tempdir().unwrap();
    init(dir.path());
    let args = [
        "--listen",
        "127.0.0.1:0",
        "--admin-listen",
        "127.0.0.1:0",
        "--tls-self-signed",
    ];
    let mut serving = spawn(dir.path(), &args);
    let events = startup(&mut serving.lines);
    let names: Vec<&str> = events
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["tls", "listening", "admin", "ready"], "{events:?}");
    let tls = find(&events, "tls");
    let certificate = tls["certificate"].as_str().unwrap();
    assert!(
        certificate.ends_with("data/tls/self-signed.pem"),
        "{certificate}"
    );
    let pem = std::fs::read_to_string(dir.path().join(certificate))
        .unwrap_or_else(|_| std::fs::read_to_string(certificate).unwrap());
    assert!(pem.starts_with("-----BEGIN CERTIFICATE-----"));
    let fingerprint = tls["fingerprint_sha256"].as_str().unwrap().to_owned();
    assert_eq!(fingerprint.len(), 64);
    let listening = find(&events, "listening");
    let address: SocketAddr = listening["address"].as_str().unwrap().parse().unwrap();
    assert_ne!(address.port(), 0);
    assert_eq!(listening["url"], format!("https://{address}"));
    let admin: SocketAddr = find(&events, "admin")["address"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let metrics = http_get(admin, "/metrics");
    assert!(metrics.starts_with("HTTP/1.1 200"), "{metrics}");
    assert!(
        metrics.contains("# TYPE keyplane_requests_total counter"),
        "{metrics}"
    );
    let health = http_get(admin, "/health");
    assert!(health.ends_with(r#"{"status":"ok"}"#), "{health}");
    stop(serving);

    // The next start serves the same certificate.
    let mut serving = spawn(dir.path(), &args);
    let events = startup(&mut serving.lines);
    assert_eq!(
        find(&events, "tls")["fingerprint_sha256"],
        fingerprint.as_str()
    );
    stop(serving);
}

/// SIGTERM, then `stopped` and exit 0.
fn stop(mut serving: Serving) {
    sigterm(&serving.child);
    finish(&mut serving);
}

/// Reads to the end of stdout: `stopped`, and exit 0.
fn finish(serving: &mut Serving) {
    let mut rest = String::new();
    serving.lines.read_to_string(&mut rest).unwrap();
    assert_eq!(rest.trim(), r#"{"event":"stopped"}"#);
    let status = serving.child.wait().unwrap();
    assert!(status.success(), "{status}");
}

fn plain_server(dir: &Path, extra: &[&str]) -> (Serving, Vec<Value>) {
    let mut args = vec!["--listen", "127.0.0.1:0", "--plain-http"];
    args.extend_from_slice(extra);
    let mut serving = spawn(dir, &args);
    let events = startup(&mut serving.lines);
    assert!(events.iter().all(|e| e["event"] != "tls"));
    let listening = find(&events, "listening");
    let address: SocketAddr = listening["address"].as_str().unwrap().parse().unwrap();
    assert_eq!(listening["url"], format!("http://{address}"));
    (serving, events)
}

#[test]
fn sigterm_lets_a_signed_request_in_flight_finish_flushes_its_audit_record_and_exits_0() {
    let dir = tempfile::tempdir().unwrap();
    init(dir.path());
    let credential = common::json(
        dir.path(),
        &[
            "--data-dir",
            "data",
            "credentials",
            "create",
            "--principal",
            "arn:aws:iam::111122223333:root",
        ],
        b"",
    );
    let (id, secret) = (
        credential["AccessKeyId"].as_str().unwrap(),
        credential["SecretAccessKey"].as_str().unwrap(),
    );
    let (mut serving, events) = plain_server(dir.path(), &[]);
    let address = address(&events, "listening");
    // Half a signed CreateKey: in flight when SIGTERM comes.
    let host = address.to_string();
    let head = signed_headers(id, secret, &host, "TrentService.CreateKey", b"{}");
    let mut tcp = TcpStream::connect(address).unwrap();
    write!(tcp, "POST / HTTP/1.1\r\ncontent-length: 2\r\n{head}\r\n{{").unwrap();
    std::thread::sleep(Duration::from_millis(200));
    sigterm(&serving.child);
    std::thread::sleep(Duration::from_millis(300));
    tcp.write_all(b"}").unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut answer = String::new();
    tcp.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let request_id = answer
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("x-amzn-requestid: ")
                .map(str::to_owned)
        })
        .expect("x-amzn-RequestId");
    assert!(answer.contains("\"KeyMetadata\""), "{answer}");
    finish(&mut serving);
    // Its record is in the audit log, which is whole and signed.
    ok(dir.path(), &["--data-dir", "data", "audit", "verify"], b"");
    let mut files = vec![];
    let mut dirs = vec![dir.path().join("data/audit")];
    while let Some(d) = dirs.pop() {
        for entry in std::fs::read_dir(d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else {
                files.push(path);
            }
        }
    }
    let found = files.iter().any(|f| {
        let text = std::fs::read(f).unwrap();
        text.windows(request_id.len())
            .any(|w| w == request_id.as_bytes())
    });
    assert!(
        found,
        "no audit record with requestID {request_id} in {files:?}"
    );
}

#[test]
fn ten_thousand_idle_connections_do_not_stop_a_request_from_being_answered() {
    let dir = tempfile::tempdir().unwrap();
    init(dir.path());
    let (serving, events) = plain_server(dir.path(), &["--admin-listen", "127.0.0.1:0"]);
    let (admin, address) = (address(&events, "admin"), address(&events, "listening"));
    let rss = || {
        std::fs::read_to_string(format!("/proc/{}/status", serving.child.id()))
            .ok()
            .and_then(|s| {
                let line = s.lines().find(|l| l.starts_with("VmRSS:"))?.to_owned();
                line.split_whitespace().nth(1)?.parse::<u64>().ok()
            })
            .unwrap_or(0)
    };
    let before = rss();
    let count: u64 = 10_000;
    let started = Instant::now();
    let held = |admin| -> i64 {
        http_get(admin, "/metrics")
            .lines()
            .find_map(|l| l.strip_prefix("keyplane_open_connections "))
            .expect("the open connections gauge")
            .parse()
            .unwrap()
    };
    // Opened in steps the server keeps up with: a burst past the listen backlog is dropped by
    // the kernel (the clients never learn, as they send nothing), not held by the server.
    let mut idle = Vec::with_capacity(count as usize);
    let deadline = Instant::now() + Duration::from_secs(60);
    while idle.len() < count as usize {
        for _ in 0..500 {
            let i = idle.len();
            idle.push(
                TcpStream::connect(address).unwrap_or_else(|e| panic!("connection {i}: {e}")),
            );
        }
        while held(admin) < idle.len() as i64 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    let opened = started.elapsed();
    let held = held(admin);
    assert_eq!(held, count as i64);
    let started = Instant::now();
    let mut tcp = TcpStream::connect(address).unwrap();
    tcp.write_all(b"POST / HTTP/1.1\r\nhost: localhost\r\nx-amz-target: TrentService.ListKeys\r\nconnection: close\r\ncontent-length: 2\r\n\r\n{}")
        .unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut answer = String::new();
    tcp.read_to_string(&mut answer).unwrap();
    let took = started.elapsed();
    assert!(answer.starts_with("HTTP/1.1 4"), "{answer}");
    assert!(answer.contains("__type"), "{answer}");
    let grown = rss().saturating_sub(before);
    println!(
        "assurance: {count} idle connections to `keyplane serve` (opened in {opened:?}): a request \
         answered in {took:?}; the server's resident memory grew {grown} KiB, {:.1} KiB per connection",
        grown as f64 / count as f64
    );
    assert!(took < Duration::from_secs(2), "{took:?}");
    assert!(
        grown / count < 64,
        "{grown} KiB for {count} idle connections"
    );
    drop(idle);
    stop(serving);
}

#[test]
fn a_memory_store_gets_one_bootstrap_credential_for_the_account_root() {
    let dir = tempfile::tempdir().unwrap();
    let mut serving = spawn_with(
        dir.path(),
        &[],
        &["--listen", "127.0.0.1:0", "--plain-http"],
        &[("KEYPLANE_STORE", "memory:")],
    );
    let events = startup(&mut serving.lines);
    let names: Vec<&str> = events
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["credential", "listening", "ready"], "{events:?}");
    let credential = find(&events, "credential");
    let id = credential["access_key_id"].as_str().unwrap();
    assert!(
        id.len() == 20
            && id.starts_with("AKIA")
            && id
                .chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit()),
        "{id}"
    );
    assert_eq!(credential["secret_access_key"].as_str().unwrap().len(), 40);
    assert_eq!(credential["principal"], "arn:aws:iam::111122223333:root");
    // Nothing was written for it: no data directory.
    assert!(!dir.path().join("keyplane-data").exists());
    stop(serving);
}

#[test]
fn serve_console_listen_announces_the_console_and_plain_http_only_on_loopback() {
    let dir = tempfile::tempdir().unwrap();
    init(dir.path());
    let out = run(
        dir.path(),
        &[
            "--data-dir",
            "data",
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--plain-http",
            "--console-listen",
            "0.0.0.0:0",
        ],
    );
    assert_eq!(code(&out), 2);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("loopback") && err.contains("0.0.0.0"), "{err}");
    let (serving, events) = plain_server(dir.path(), &["--console-listen", "127.0.0.1:0"]);
    let console = address(&events, "console");
    assert_eq!(find(&events, "console")["url"], format!("http://{console}"));
    let names: Vec<&str> = events.iter().filter_map(|e| e["event"].as_str()).collect();
    let at = |n: &str| names.iter().position(|e| *e == n).unwrap();
    assert!(
        at("listening") < at("console") && at("console") < at("ready"),
        "{names:?}"
    );
    // The console answers on its own listener: the sign-in page, and a redirect without a session.
    let page = http_get(console, "/sign-in");
    assert!(page.starts_with("HTTP/1.1 200"), "{page}");
    assert!(page.contains("Sign in") && page.contains("content-security-policy"));
    let keys = http_get(console, "/keys");
    assert!(keys.starts_with("HTTP/1.1 303"), "{keys}");
    assert!(keys.to_lowercase().contains("location: /sign-in"), "{keys}");
    stop(serving);
}

#[test]
fn serve_takes_a_staleness_bound_and_refuses_one_too_short_to_follow_within() {
    let dir = tempfile::tempdir().unwrap();
    init(dir.path());
    let out = run(
        dir.path(),
        &[
            "--data-dir",
            "data",
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--plain-http",
            "--max-staleness",
            "3",
        ],
    );
    assert_eq!(code(&out), 2);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--max-staleness"), "{err}");
    // A bound it can follow within: it starts, on the durable store and in memory.
    let (serving, _) = plain_server(dir.path(), &["--max-staleness", "2000"]);
    stop(serving);
    let mut serving = spawn_with(
        dir.path(),
        &[],
        &[
            "--listen",
            "127.0.0.1:0",
            "--plain-http",
            "--max-staleness",
            "2000",
        ],
        &[("KEYPLANE_STORE", "memory:")],
    );
    startup(&mut serving.lines);
    stop(serving);
}
