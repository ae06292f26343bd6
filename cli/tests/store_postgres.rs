//! `keyplane store init|verify|backup|migrate` against PostgreSQL (the server that
//! `scripts/test-postgres` starts, KEYPLANE_TEST_POSTGRES): an SQLite store migrated with its
//! keys, material, aliases and rotation history, verified, backed up into an SQLite store that
//! still decrypts what the original encrypted.

mod common;

use std::path::Path;

use common::*;

/// A fresh database on the test server; `None` (saying why) where there is none, a failure
/// under CI=true.
fn database(name: &str) -> Option<String> {
    let server = match std::env::var("KEYPLANE_TEST_POSTGRES") {
        Ok(url) if !url.is_empty() => url,
        _ => {
            let msg = "KEYPLANE_TEST_POSTGRES is not set: this test needs a PostgreSQL server; \
                       run it through scripts/test-postgres, which starts one";
            assert!(std::env::var("CI").map_or(true, |v| v != "true"), "{msg}");
            report(&format!("NOT RUN: {msg}"));
            return None;
        }
    };
    let db = format!("kp_cli_{}_{name}", std::process::id());
    let mut admin = postgres::Client::connect(&server, postgres::NoTls).unwrap();
    for sql in [
        format!("DROP DATABASE IF EXISTS {db}"),
        format!("CREATE DATABASE {db}"),
    ] {
        admin.batch_execute(&sql).unwrap();
    }
    Some(format!("{}/{db}", server.rsplit_once('/').unwrap().0))
}

fn fails_with(d: &Path, args: &[&str], needle: &str) {
    let out = run(d, args);
    assert!(!out.status.success(), "{args:?} succeeded");
    let err = stderr(&out);
    assert!(err.contains(needle), "{args:?}: {err}");
}

#[test]
fn postgres_an_sqlite_store_migrates_verifies_and_backs_up() {
    let Some(url) = database("migrate") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    store(d);
    let key = create_key(d, &[]);
    ok(d, &["alias", "create", "alias/orders", &key], b"");
    let blob_v1 = ok(d, &["encrypt", "--key-id", &key], b"before rotation");
    ok(d, &["key", "rotate", &key], b"");
    let blob_v2 = ok(
        d,
        &["encrypt", "--key-id", "alias/orders"],
        b"after rotation",
    );
    let described = json(d, &["key", "describe", &key], b"");

    let migrated = json(
        d,
        &[
            "store",
            "migrate",
            "--from",
            "sqlite:keyplane-data",
            "--to",
            &url,
        ],
        b"",
    );
    assert_eq!(migrated["Keys"], 1);
    assert_eq!(migrated["Versions"], 2, "both versions: {migrated}");
    assert_eq!(migrated["Aliases"], 1);
    // Into a store that holds keys already: refused.
    fails_with(
        d,
        &[
            "store",
            "migrate",
            "--from",
            "sqlite:keyplane-data",
            "--to",
            &url,
        ],
        "empty store",
    );

    let verified = json(d, &["store", "verify", "--store", &url], b"");
    assert_eq!(verified["Keys"], 1);
    assert_eq!(verified["Versions"], 2);
    assert_eq!(
        verified["Problems"].as_array().unwrap().len(),
        0,
        "{verified}"
    );

    // The backup: an SQLite store under the same root key, which decrypts both versions' blobs.
    let backed = json(d, &["store", "backup", "--store", &url, "pg-backup"], b"");
    assert_eq!(backed["Keys"], 1);
    let in_backup = [
        "--data-dir",
        "pg-backup",
        "--root-key-file",
        "keyplane-data/root.key",
    ];
    fn with<'a>(base: &[&'a str], rest: &[&'a str]) -> Vec<&'a str> {
        [base, rest].concat()
    }
    assert_eq!(
        ok(d, &with(&in_backup, &["decrypt"]), &blob_v1),
        b"before rotation"
    );
    assert_eq!(
        ok(d, &with(&in_backup, &["decrypt"]), &blob_v2),
        b"after rotation"
    );
    let again = json(
        d,
        &with(&in_backup, &["key", "describe", "alias/orders"]),
        b"",
    );
    assert_eq!(again["KeyMetadata"], described["KeyMetadata"]);

    // And back again into a second database: the round trip keeps everything.
    let Some(url2) = database("back") else { return };
    let back = json(
        d,
        &with(
            &in_backup,
            &[
                "store",
                "migrate",
                "--from",
                "sqlite:pg-backup",
                "--to",
                &url2,
            ],
        ),
        b"",
    );
    assert_eq!(back["Versions"], 2);
}

#[test]
fn postgres_store_init_and_verify_and_their_refusals() {
    let Some(url) = database("init") else { return };
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let made = json(
        d,
        &["--data-dir", "node-a", "store", "init", "--store", &url],
        b"",
    );
    assert!(made["Store"].as_str().unwrap().starts_with("postgres://"));
    assert!(
        d.join("node-a/root.key").exists(),
        "the node's root key file"
    );
    fails_with(
        d,
        &["--data-dir", "node-a", "store", "init", "--store", &url],
        "already exists",
    );
    // Another node with the same root key verifies it; one with another key is refused.
    let root = d.join("node-a/root.key");
    let root = root.to_str().unwrap();
    ok(
        d,
        &[
            "--data-dir",
            "node-b",
            "--root-key-file",
            root,
            "store",
            "verify",
            "--store",
            &url,
        ],
        b"",
    );
    ok(d, &["--data-dir", "node-c", "store", "init"], b"");
    fails_with(
        d,
        &["--data-dir", "node-c", "store", "verify", "--store", &url],
        "does not open this store",
    );
    fails_with(
        d,
        &["store", "verify", "--store", "sqlite:elsewhere"],
        "PostgreSQL address",
    );
    fails_with(
        d,
        &[
            "store",
            "verify",
            "--store",
            "postgres://nobody@127.0.0.1:1/none",
        ],
        "cannot be reached",
    );
}
