#![allow(dead_code)] // Each test crate that includes this helper uses part of it.
//! An engine's audit log in the engine's tests: a builder that writes one, and its records read
//! back (`#[path = "support/audit_log.rs"] mod audit_log;`).

use std::path::Path;

use keyplane::audit::{generate_signing_key, AuditConfig};
use keyplane::{EngineBuilder, LockPolicy};
use serde_json::Value;

/// `builder` writing its audit log to `path`, signed with a fresh signing key.
pub fn audited(builder: EngineBuilder, path: &Path) -> EngineBuilder {
    let signing_key = generate_signing_key(LockPolicy::default()).unwrap();
    builder.audit(AuditConfig::new(path), signing_key)
}

/// The records of the log at `path`, parsed, in file order (the lines that start `{"seq":`).
pub fn records(path: &Path) -> Vec<Value> {
    parsed(&std::fs::read_to_string(path).unwrap())
}

/// As [`records`], for a log whose writer was killed: a last line without its newline is a record
/// cut by the interrupted write (the verifier reports it as such), not a record, and is left out.
/// Every other line must still parse.
pub fn records_of_a_killed_writer(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap();
    let whole_lines = text.rfind('\n').map_or("", |end| &text[..=end]);
    parsed(whole_lines)
}

fn parsed(text: &str) -> Vec<Value> {
    text.lines()
        .filter(|l| l.starts_with("{\"seq\":"))
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// An Encrypt by Alice (an IAM user of account 111122223333) under the example key, with
/// `request_parameters`: the record the writer and tamper tests write many of.
pub fn alice_encrypt(request_parameters: Value) -> keyplane::audit::AuditEvent {
    keyplane::audit::AuditEvent::new(
        "Encrypt",
        "eu-west-1",
        keyplane::audit::UserIdentity {
            identity_type: "IAMUser".into(),
            principal_id: "AIDAEXAMPLE".into(),
            arn: "arn:aws:iam::111122223333:user/alice".into(),
            account_id: "111122223333".into(),
            access_key_id: None,
        },
    )
    .with_key(
        "111122223333",
        "arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab",
    )
    .with_request_parameters(request_parameters)
}
