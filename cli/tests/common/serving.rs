//! `keyplane serve` as a child process for the command-line tests: starting it, reading its
//! `--json` startup lines, and talking to it with SigV4-signed KMS requests (serve.rs,
//! serve_fleet.rs).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, ChildStdout, Command, Stdio};

use serde_json::Value;

/// A running `keyplane serve`, killed if a test fails before stopping it.
pub struct Serving {
    pub child: Child,
    pub lines: BufReader<ChildStdout>,
}

impl Drop for Serving {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

pub fn spawn_with(dir: &Path, global: &[&str], args: &[&str], env: &[(&str, &str)]) -> Serving {
    let mut command = Command::new(env!("CARGO_BIN_EXE_keyplane"));
    command
        .current_dir(dir)
        .arg("--json")
        .args(global)
        .arg("serve")
        .args(args);
    for (var, _) in std::env::vars() {
        if var.starts_with("KEYPLANE_") {
            command.env_remove(var);
        }
    }
    command.envs(env.iter().copied());
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let lines = BufReader::new(child.stdout.take().unwrap());
    Serving { child, lines }
}

/// The startup lines up to `ready`, by event name.
pub fn startup(lines: &mut BufReader<ChildStdout>) -> Vec<Value> {
    let mut events = Vec::new();
    loop {
        let mut line = String::new();
        assert!(
            lines.read_line(&mut line).unwrap() > 0,
            "exited before ready: {events:?}"
        );
        assert!(
            line.starts_with(r#"{"event":""#),
            "the event name first: {line}"
        );
        let event: Value =
            serde_json::from_str(&line).unwrap_or_else(|_| panic!("not JSON: {line}"));
        let done = event["event"] == "ready";
        events.push(event);
        if done {
            return events;
        }
    }
}

pub fn find<'a>(events: &'a [Value], name: &str) -> &'a Value {
    events
        .iter()
        .find(|e| e["event"] == name)
        .unwrap_or_else(|| panic!("no {name} event in {events:?}"))
}

pub fn http_get(addr: SocketAddr, path: &str) -> String {
    let mut tcp = TcpStream::connect(addr).unwrap();
    write!(
        tcp,
        "GET {path} HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    tcp.read_to_string(&mut answer).unwrap();
    answer
}

pub fn address(events: &[Value], name: &str) -> SocketAddr {
    find(events, name)["address"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap()
}

/// The headers of a KMS request signed by the aws-sigv4 crate.
pub fn signed_headers(id: &str, secret: &str, host: &str, target: &str, body: &[u8]) -> String {
    let base = [
        ("host", host),
        ("content-type", "application/x-amz-json-1.1"),
        ("x-amz-target", target),
    ];
    let signer = keyplane_testkit::sigv4::AwsSigner {
        access_key_id: id,
        secret,
        region: "us-east-1",
        service: "kms",
        time: std::time::SystemTime::now(),
        content_sha256: false,
    };
    let mut head = String::new();
    for (name, value) in signer.signed_headers("POST", &format!("https://{host}/"), &base, body) {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head
}

/// A SigV4-signed KMS request (`TrentService.<operation>`) to `addr`: the status and the JSON
/// answer.
pub fn kms_call(
    addr: SocketAddr,
    id: &str,
    secret: &str,
    operation: &str,
    body: &Value,
) -> (u16, Value) {
    let body = body.to_string();
    let host = addr.to_string();
    let target = format!("TrentService.{operation}");
    let head = signed_headers(id, secret, &host, &target, body.as_bytes());
    let mut tcp = TcpStream::connect(addr).unwrap();
    write!(
        tcp,
        "POST / HTTP/1.1\r\ncontent-length: {}\r\nconnection: close\r\n{head}\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut answer = String::new();
    tcp.read_to_string(&mut answer).unwrap();
    let status = answer
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP answer: {answer}"));
    let json = answer
        .split_once("\r\n\r\n")
        .map(|(_, body)| body)
        .unwrap_or("");
    let json = if json.trim().is_empty() {
        Value::Null
    } else {
        serde_json::from_str(json).unwrap_or_else(|_| panic!("not JSON: {answer}"))
    };
    (status, json)
}
