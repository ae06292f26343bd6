//! What the test suites of keyplane's crates share, so that each helper has one source: the
//! tally of an attack's attempts, hex for test fixtures, commands that must succeed, and the
//! small engine fixtures every suite starts from.
//!
//! A dev-dependency of the crates' integration tests only; nothing here runs in a build users get.
// Unsafe code only where a test must fork (`fork.rs`) or clean up at exit (`process_dir.rs`).
#![deny(unsafe_code)]

mod attack;
mod command;
mod fork;
pub mod fuzz;
mod process_dir;
pub mod sigv4;

pub use attack::Attack;
pub use command::{child_test, succeeded};
pub use fork::{fork_round, fork_verdicts};
pub use process_dir::process_dir;

use keyplane::{CreateKeyRequest, DecryptRequest, EncryptionContext, Engine, KeySpec, KeyUsage};

/// Writes a line straight to the test's stderr, past libtest's output capture, so the numbers a
/// test measured (and the `assurance:` lines the CI summary collects) appear in every run's output.
pub fn report(line: &str) {
    use std::io::Write;
    // One write of the line with its newline: stderr is unbuffered, and `writeln!` writes the
    // text and the newline apart, so libtest's "test … " of another thread could land between
    // them (seen: "…: tried 3, rejected 3test a_deny_on_… ok", which the CI summary then
    // counted as one more kind of attack).
    let mut whole = String::with_capacity(line.len() + 1);
    whole.push_str(line);
    whole.push('\n');
    let _ = std::io::stderr().write_all(whole.as_bytes());
}

/// Lowercase hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    hex::encode(bytes)
}

/// The bytes of a hex string a test wrote or read back; panics on anything else.
#[track_caller]
pub fn unhex(text: &str) -> Vec<u8> {
    hex::decode(text).unwrap_or_else(|e| panic!("not hex ({e}): {text:?}"))
}

/// An encryption context from `(key, value)` pairs.
pub fn ctx(pairs: &[(&str, &str)]) -> EncryptionContext {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// A new symmetric encryption key with the default policy; its key id.
#[track_caller]
pub fn new_key(engine: &Engine) -> String {
    engine
        .create_key(CreateKeyRequest::default())
        .expect("CreateKey")
        .key_id
}

/// A new key of `spec` for `usage` with the default policy; its key id.
#[track_caller]
pub fn new_key_of(engine: &Engine, spec: KeySpec, usage: KeyUsage) -> String {
    engine
        .create_key(CreateKeyRequest {
            key_spec: Some(spec),
            key_usage: Some(usage),
            ..Default::default()
        })
        .expect("CreateKey")
        .key_id
}

/// Decrypts `blob` as the account root, with `context` if given; the plaintext's bytes.
pub fn decrypt(
    engine: &Engine,
    blob: &[u8],
    context: Option<&EncryptionContext>,
) -> keyplane::Result<Vec<u8>> {
    let mut request = DecryptRequest::new(blob);
    request.encryption_context = context;
    engine
        .decrypt(&request)
        .map(|r| r.plaintext.expose().to_vec())
}

/// A policy's condition values for tests: each key with its values, served in place (visiting
/// them does not allocate).
#[derive(Debug, Default)]
pub struct Conditions<'a>(Vec<(&'a str, Vec<&'a str>)>);

impl<'a> Conditions<'a> {
    /// These conditions and `key` with `values`.
    pub fn with(mut self, key: &'a str, values: &[&'a str]) -> Self {
        self.0.push((key, values.to_vec()));
        self
    }

    fn find(&self, key: &str) -> Option<&[&'a str]> {
        self.0
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, vs)| vs.as_slice())
    }
}

impl keyplane::policy::ConditionValues for Conditions<'_> {
    fn values(&self, key: &str) -> Option<Vec<std::borrow::Cow<'_, str>>> {
        self.find(key)
            .map(|vs| vs.iter().map(|v| std::borrow::Cow::Borrowed(*v)).collect())
    }

    fn visit_values(&self, key: &str, visit: &mut dyn FnMut(&str) -> bool) -> bool {
        let Some(values) = self.find(key) else {
            return false;
        };
        for v in values {
            if !visit(v) {
                break;
            }
        }
        true
    }
}

/// `count` distinct messages of `len` bytes (benchmark inputs).
pub fn messages(count: usize, len: usize) -> Vec<Vec<u8>> {
    (0..count)
        .map(|i| {
            (0..len)
                .map(|j| (i.wrapping_mul(31) ^ j.wrapping_mul(7)) as u8)
                .collect()
        })
        .collect()
}

/// The superuser URL of the PostgreSQL server `scripts/test-postgres` started
/// (`KEYPLANE_TEST_POSTGRES`), or `None`, said on stderr, where there is none. Under `CI=true` its
/// absence fails the test: CI always runs the PostgreSQL tests.
pub fn postgres_server() -> Option<String> {
    match std::env::var("KEYPLANE_TEST_POSTGRES") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            let msg = "KEYPLANE_TEST_POSTGRES is not set: this test needs a PostgreSQL server; \
                       run it through scripts/test-postgres, which starts one";
            assert!(std::env::var("CI").map_or(true, |v| v != "true"), "{msg}");
            report(&format!("NOT RUN: {msg}"));
            None
        }
    }
}

/// The URL of database `name` on the server whose URL is `server`.
pub fn database_url(server: &str, name: &str) -> String {
    let base = server
        .rsplit_once('/')
        .expect("a database in the server's URL")
        .0;
    format!("{base}/{name}")
}

/// A fresh audit signing key and its public key (DER, as `keyplane::audit::verify` takes it).
pub fn audit_signing_key() -> (keyplane::LockedBytes, Vec<u8>) {
    let key = keyplane::audit::generate_signing_key(keyplane::LockPolicy::default()).unwrap();
    let public = keyplane::audit::DigestSigner::from_pkcs8(&key)
        .unwrap()
        .public_key_der()
        .to_vec();
    (key, public)
}

/// An engine on two worker threads that writes its audit log to `path` (a fresh signing key).
pub fn audited_engine(path: &std::path::Path) -> Engine {
    let (key, _) = audit_signing_key();
    Engine::builder()
        .worker_threads(2)
        .audit(keyplane::audit::AuditConfig::new(path), key)
        .build()
        .unwrap()
}
