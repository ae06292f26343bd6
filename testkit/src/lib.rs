//! What the test suites of keyplane's crates share, so that each helper has one source: the
//! tally of an attack's attempts, hex for test fixtures, commands that must succeed, and the
//! small engine fixtures every suite starts from.
//!
//! A dev-dependency of the crates' integration tests only; nothing here runs in a build users get.
#![forbid(unsafe_code)]

mod attack;
mod command;
#[cfg(feature = "sigv4")]
pub mod sigv4;

pub use attack::Attack;
pub use command::{child_test, succeeded};

use keyplane::{CreateKeyRequest, DecryptRequest, EncryptionContext, Engine, KeySpec, KeyUsage};

/// Writes a line straight to the test's stderr, past libtest's output capture, so the numbers a
/// test measured (and the `assurance:` lines the CI summary collects) appear in every run's output.
pub fn report(line: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "{line}");
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
