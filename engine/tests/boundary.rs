//! The boundary around key bytes, checked over the workspace's sources:
//!
//! - the engine's primitives (`crypto`, private) are reached from other crates' code only
//!   through the narrow `keyplane::sealing` API; `keyplane::less_safe` (raw nonces, raw keys) is
//!   for tests, benchmarks and fuzz targets only;
//! - every place outside the engine that reads secret bytes out of locked memory
//!   (`SecretAccess::granted()`) is listed here with its count, so a new one fails this test until
//!   someone has looked at it and added it with a reason.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Where library code outside the engine reads secret bytes, and why. (Test modules and test,
/// bench and fuzz files are not counted.)
const SECRET_READS: &[(&str, usize, &str)] = &[
    (
        "ffi/src/api/asymmetric.rs",
        1,
        "a derived shared secret into the caller's secret buffer",
    ),
    (
        "ffi/src/api/data.rs",
        3,
        "plaintexts into and out of the caller's locked arena",
    ),
    (
        "ffi/src/api/handles.rs",
        2,
        "a secret buffer handed to C; the audit key copied per engine",
    ),
    (
        "ffi/src/api/store_open.rs",
        1,
        "the root key filled by the caller's callback",
    ),
    (
        "pkcs11-store/src/lib.rs",
        1,
        "the crypto-user PIN handed to the token",
    ),
    (
        "postgres-store/src/bulk.rs",
        1,
        "key material wrapped for a bulk load",
    ),
    (
        "postgres-store/src/material.rs",
        1,
        "key material wrapped for a repaired copy",
    ),
    (
        "postgres-store/src/migrate.rs",
        2,
        "migrated secrets compared in constant time",
    ),
    (
        "postgres-store/src/secrets.rs",
        1,
        "a store secret wrapped and MACed",
    ),
    (
        "postgres-store/src/store.rs",
        3,
        "store secrets and key material wrapped on commit",
    ),
    (
        "server/src/auth/credentials.rs",
        10,
        "SigV4 secrets: created, stored, derived, shown once",
    ),
    (
        "sqlite-store/src/copies.rs",
        1,
        "key material wrapped for a repaired copy",
    ),
    (
        "sqlite-store/src/custom_key_stores.rs",
        2,
        "a custom key store's sealed definition",
    ),
    (
        "sqlite-store/src/root_key/mod.rs",
        1,
        "the root key written to its key file",
    ),
    (
        "sqlite-store/src/root_key/passphrase.rs",
        1,
        "Argon2id writes the root key",
    ),
    (
        "sqlite-store/src/rotation.rs",
        2,
        "material and secrets rewrapped under a new root key",
    ),
    (
        "sqlite-store/src/secrets.rs",
        4,
        "a store secret wrapped and MACed",
    ),
    (
        "sqlite-store/src/store.rs",
        1,
        "key material wrapped on commit",
    ),
    ("xks/src/backend.rs", 1, "the XKS proxy's SigV4 secret"),
];

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the engine sits in the workspace")
        .to_path_buf()
}

/// Library sources of every crate but the engine: `*/src/**/*.rs`, with `#[cfg(test)]` modules
/// cut off (they sit at the end of a file in this codebase).
fn library_sources() -> Vec<(String, String)> {
    let root = workspace();
    let mut out = Vec::new();
    for entry in std::fs::read_dir(&root).unwrap() {
        let dir = entry.unwrap().path();
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        if name == "engine" || name == "target" || name.starts_with('.') {
            continue;
        }
        let src = dir.join("src");
        if dir.join("Cargo.toml").is_file() && src.is_dir() && name != "fuzz" {
            walk(&root, &src, &mut out);
        }
    }
    assert!(out.len() > 50, "the workspace's sources were not found");
    out
}

fn walk(root: &Path, dir: &Path, out: &mut Vec<(String, String)>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            walk(root, &path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let text = std::fs::read_to_string(&path).unwrap();
            let body = match text.find("#[cfg(test)]") {
                Some(cut) => text[..cut].to_owned(),
                None => text,
            };
            let rel = path
                .strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            out.push((rel, body));
        }
    }
}

#[test]
fn no_library_outside_the_engine_uses_the_less_safe_primitives() {
    let offenders: Vec<_> = library_sources()
        .into_iter()
        .filter(|(_, body)| body.contains("less_safe"))
        .map(|(path, _)| path)
        .collect();
    assert!(
        offenders.is_empty(),
        "library code uses keyplane::less_safe (raw nonces, raw keys); build on keyplane::sealing: \
         {offenders:?}"
    );
}

#[test]
fn every_read_of_secret_bytes_outside_the_engine_is_a_listed_one() {
    let mut found = BTreeMap::new();
    for (path, body) in library_sources() {
        let n = body.matches("SecretAccess::granted()").count();
        if n > 0 {
            found.insert(path, n);
        }
    }
    let listed: BTreeMap<String, usize> = SECRET_READS
        .iter()
        .map(|(path, n, _)| ((*path).to_owned(), *n))
        .collect();
    assert_eq!(
        found, listed,
        "reads of secret bytes outside the engine changed: look at each new one (can it stay in \
         locked memory, or go through keyplane::sealing?) and update SECRET_READS with why"
    );
}

/// The check above sees what it claims to: the engine's own token is found where it is defined.
#[test]
fn the_scan_finds_the_token_where_it_is_defined() {
    let text = std::fs::read_to_string(workspace().join("engine/src/locked_memory.rs")).unwrap();
    assert!(text.contains("pub fn granted() -> Self"));
    assert!(text.contains("pub fn expose(&self, _access: SecretAccess)"));
}

/// "Everything that touches aws-lc lives under crypto/": no other engine file names aws-lc.
#[test]
fn only_the_crypto_module_of_the_engine_touches_aws_lc() {
    let root = workspace();
    let mut files = Vec::new();
    walk(&root, &root.join("engine/src"), &mut files);
    let offenders: Vec<_> = files
        .iter()
        .filter(|(path, _)| !path.starts_with("engine/src/crypto/"))
        .filter(|(_, body)| body.contains("aws_lc_rs") || body.contains("aws_lc_sys"))
        .map(|(path, _)| path.clone())
        .collect();
    assert!(files.len() > 50, "the engine's sources were not found");
    assert!(
        offenders.is_empty(),
        "engine files outside crypto/ use aws-lc directly: {offenders:?}"
    );
}
