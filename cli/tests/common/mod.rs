//! Helpers shared by the command-line tests: running `keyplane`, reading its JSON, and checking
//! it against the service's shapes.
#![allow(dead_code)]

// Not every test file that includes this module reports a line.
#[allow(unused_imports)]
pub use keyplane_testkit::report;
use std::collections::BTreeSet;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use serde_json::Value;

pub mod serving;

/// Runs `keyplane` in `cwd` with `args`, `stdin` and extra environment; no KEYPLANE_* variable
/// from the test's own environment leaks in.
pub fn run_with(cwd: &Path, args: &[&str], stdin: &[u8], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_keyplane"));
    command.current_dir(cwd).args(args);
    for (var, _) in std::env::vars() {
        if var.starts_with("KEYPLANE_") {
            command.env_remove(var);
        }
    }
    command.envs(env.iter().copied());
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    child.wait_with_output().unwrap()
}

pub fn run(cwd: &Path, args: &[&str]) -> Output {
    run_with(cwd, args, b"", &[])
}

/// Runs and requires success; returns stdout.
#[track_caller]
pub fn ok(cwd: &Path, args: &[&str], stdin: &[u8]) -> Vec<u8> {
    stdout_of(run_with(cwd, args, stdin, &[]))
}

/// The stdout of a run that must have succeeded (its stderr in the failure).
#[track_caller]
pub fn stdout_of(out: Output) -> Vec<u8> {
    assert!(
        out.status.success(),
        "keyplane failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

pub fn json(cwd: &Path, args: &[&str], stdin: &[u8]) -> Value {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    serde_json::from_slice(&ok(cwd, &all, stdin)).expect("--json prints JSON")
}

pub fn code(out: &Output) -> i32 {
    out.status.code().expect("exited")
}

/// The service model's member names (extracted into tests/data/service-shapes.json).
pub fn shapes() -> Value {
    serde_json::from_str(include_str!("../data/service-shapes.json")).unwrap()
}

/// Every field of `value` is a member of the service's `shape` (an operation's output or a
/// structure), and `required` are present.
pub fn assert_shape(value: &Value, kind: &str, shape: &str, required: &[&str]) {
    let members: BTreeSet<String> = shapes()[kind][shape]
        .as_array()
        .unwrap_or_else(|| panic!("no shape {kind}/{shape}"))
        .iter()
        .map(|m| m.as_str().unwrap().to_owned())
        .collect();
    let object = value
        .as_object()
        .unwrap_or_else(|| panic!("{shape}: not an object: {value}"));
    for field in object.keys() {
        assert!(
            members.contains(field),
            "{shape} has no field {field} in the service: {value}"
        );
    }
    for field in required {
        assert!(
            object.contains_key(*field),
            "{shape} lacks {field}: {value}"
        );
    }
}

pub fn store(dir: &Path) {
    ok(dir, &["store", "init"], b"");
}

/// The key id in a CreateKey/DescribeKey response.
pub fn key_id(response: &Value) -> String {
    response["KeyMetadata"]["KeyId"]
        .as_str()
        .expect("KeyMetadata.KeyId")
        .to_owned()
}

/// Creates a key with `args` (as the account root); returns its id.
pub fn create_key(cwd: &Path, args: &[&str]) -> String {
    let mut all = vec!["key", "create"];
    all.extend_from_slice(args);
    key_id(&json(cwd, &all, b""))
}

/// Runs as `principal`.
pub fn run_as(cwd: &Path, principal: &str, args: &[&str], stdin: &[u8]) -> Output {
    let mut all = vec!["--principal", principal];
    all.extend_from_slice(args);
    run_with(cwd, &all, stdin, &[])
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Requires exit code `expected`; returns stderr.
pub fn fails(out: &Output, expected: i32, what: &str) -> String {
    assert_eq!(
        code(out),
        expected,
        "{what}: stdout {} stderr {}",
        String::from_utf8_lossy(&out.stdout),
        stderr(out)
    );
    stderr(out)
}

/// The audit log of the data directory `./keyplane-data` under `cwd`: its first segment (commands
/// run one after another all write the one segment, each taking it up in turn).
pub fn audit_log(cwd: &Path) -> std::path::PathBuf {
    audit_logs(cwd)
        .into_iter()
        .next()
        .expect("the data directory has an audit segment")
}

/// Every segment of the audit directory of `./keyplane-data` under `cwd`, in name order.
pub fn audit_logs(cwd: &Path) -> Vec<std::path::PathBuf> {
    let mut logs: Vec<_> = std::fs::read_dir(cwd.join("keyplane-data/audit/segments"))
        .map(|d| d.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default();
    logs.sort();
    logs
}

/// Every request record (not digest, not a segment's writer record) of the audit directory,
/// parsed, in time order.
pub fn audit_records(cwd: &Path) -> Vec<Value> {
    let mut records: Vec<Value> = audit_logs(cwd)
        .iter()
        .flat_map(|log| {
            std::fs::read_to_string(log)
                .unwrap_or_default()
                .lines()
                .filter(|l| l.starts_with("{\"seq\":"))
                .map(|l| serde_json::from_str::<Value>(l).unwrap())
                .collect::<Vec<_>>()
        })
        .filter(|r| r["eventName"] != "KeyplaneAuditWriter")
        .collect();
    records.sort_by(|a, b| a["eventTime"].as_str().cmp(&b["eventTime"].as_str()));
    records
}

/// A policy document in a file under `cwd`; returns the file name.
pub fn policy_file(cwd: &Path, name: &str, policy: &Value) -> String {
    std::fs::write(cwd.join(name), serde_json::to_vec_pretty(policy).unwrap()).unwrap();
    name.to_owned()
}

/// Builds the `keyplane-bench` program beside the `keyplane` under test (once per test binary),
/// as `keyplane bench` runs it from there: `cargo test --workspace` builds it anyway, this covers
/// `cargo test -p keyplane-cli` alone.
#[allow(dead_code)]
pub fn build_bench_program() {
    static BUILT: std::sync::OnceLock<()> = std::sync::OnceLock::new();
    BUILT.get_or_init(|| {
        let keyplane = std::path::Path::new(env!("CARGO_BIN_EXE_keyplane"));
        if keyplane.with_file_name("keyplane-bench").is_file() {
            return;
        }
        let release = keyplane
            .parent()
            .and_then(|d| d.file_name())
            .is_some_and(|n| n == "release");
        let mut cargo = Command::new(env!("CARGO"));
        cargo.args([
            "build",
            "-q",
            "-p",
            "keyplane-bench",
            "--bin",
            "keyplane-bench",
        ]);
        if release {
            cargo.arg("--release");
        }
        let status = cargo.status().expect("run cargo build -p keyplane-bench");
        assert!(status.success(), "cargo build -p keyplane-bench failed");
        assert!(
            keyplane.with_file_name("keyplane-bench").is_file(),
            "keyplane-bench was not built beside {}",
            keyplane.display()
        );
    });
}

/// A fresh database `name` on the PostgreSQL server scripts/test-postgres starts; `None` (saying why) where there is none, a failure
/// under CI=true.
pub fn postgres_database(name: &str) -> Option<String> {
    let server = keyplane_testkit::postgres_server()?;
    let db = format!("kp_cli_{}_{name}", std::process::id());
    let mut admin = postgres::Client::connect(&server, postgres::NoTls).unwrap();
    for sql in [
        format!("DROP DATABASE IF EXISTS {db}"),
        format!("CREATE DATABASE {db}"),
    ] {
        admin.batch_execute(&sql).unwrap();
    }
    Some(keyplane_testkit::database_url(&server, &db))
}
