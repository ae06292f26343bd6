//! `keyplane store init|verify|backup|migrate` against PostgreSQL (the server that
//! `scripts/test-postgres` starts, KEYPLANE_TEST_POSTGRES): an SQLite store migrated with its
//! keys, material, aliases and rotation history, verified, backed up into an SQLite store that
//! still decrypts what the original encrypted.

mod common;

use std::path::Path;

use common::*;

fn fails_with(d: &Path, args: &[&str], needle: &str) {
    let out = run(d, args);
    assert!(!out.status.success(), "{args:?} succeeded");
    let err = stderr(&out);
    assert!(err.contains(needle), "{args:?}: {err}");
}

#[test]
fn postgres_an_sqlite_store_migrates_verifies_and_backs_up() {
    let Some(url) = postgres_database("migrate") else {
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
    let Some(url2) = postgres_database("back") else {
        return;
    };
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
    let Some(url) = postgres_database("init") else {
        return;
    };
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

/// Runs `keyplane` as a node of the fleet on `url`: `KEYPLANE_STORE` names the shared store,
/// `KEYPLANE_HOME` the node's own directory (its audit log and rollback witness), with the root
/// key of the node that made the store.
fn on_node(d: &Path, node: &str, url: &str, args: &[&str], stdin: &[u8]) -> std::process::Output {
    let root = d.join("node-a/root.key");
    run_with(
        d,
        args,
        stdin,
        &[
            ("KEYPLANE_STORE", url),
            ("KEYPLANE_HOME", node),
            ("KEYPLANE_ROOT_KEY_FILE", root.to_str().unwrap()),
        ],
    )
}

#[track_caller]
fn node_ok(d: &Path, node: &str, url: &str, args: &[&str], stdin: &[u8]) -> Vec<u8> {
    let out = on_node(d, node, url, args, stdin);
    assert!(
        out.status.success(),
        "{node}: keyplane {args:?} failed ({}): {}",
        out.status,
        stderr(&out)
    );
    out.stdout
}

#[track_caller]
fn node_json(d: &Path, node: &str, url: &str, args: &[&str]) -> serde_json::Value {
    let all = [&["--json"], args].concat();
    serde_json::from_slice(&node_ok(d, node, url, &all, b"")).expect("--json prints JSON")
}

#[test]
fn postgres_ordinary_commands_of_two_processes_share_one_store() {
    let Some(url) = postgres_database("ordinary") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    ok(
        d,
        &["--data-dir", "node-a", "store", "init", "--store", &url],
        b"",
    );
    let (a, b) = ("node-a", "node-b");

    // A key made by one process is listed, described and used by the other.
    let key = key_id(&node_json(d, a, &url, &["key", "create"]));
    let listed = node_json(d, b, &url, &["key", "list"]);
    assert!(
        listed["Keys"]
            .as_array()
            .unwrap()
            .iter()
            .any(|k| k["KeyId"] == key.as_str()),
        "{listed}"
    );
    let described = node_json(d, b, &url, &["key", "describe", &key]);
    assert_eq!(described["KeyMetadata"]["KeyState"], "Enabled");
    let blob = node_ok(d, b, &url, &["encrypt", "--key-id", &key], b"shared secret");
    assert_eq!(
        node_ok(d, a, &url, &["decrypt"], &blob),
        b"shared secret",
        "what B encrypted, A decrypts"
    );

    // An alias made on B is used on A; a grant made on A is listed and revoked on B; tags too.
    // (CreateGrant takes a key id or ARN, as in the service: not an alias.)
    node_ok(d, b, &url, &["alias", "create", "alias/shared", &key], b"");
    let via_alias = node_ok(
        d,
        a,
        &url,
        &["encrypt", "--key-id", "alias/shared"],
        b"by alias",
    );
    assert_eq!(node_ok(d, b, &url, &["decrypt"], &via_alias), b"by alias");
    let aliases = node_json(d, a, &url, &["alias", "list", "--key", &key]);
    assert_eq!(
        aliases["Aliases"][0]["AliasName"], "alias/shared",
        "{aliases}"
    );
    let grant = node_json(
        d,
        a,
        &url,
        &[
            "grant",
            "create",
            "--key-id",
            &key,
            "--grantee-principal",
            "arn:aws:iam::111122223333:role/worker",
            "--operations",
            "Encrypt,Decrypt",
        ],
    );
    let grant_id = grant["GrantId"].as_str().unwrap().to_owned();
    let grants = node_json(d, b, &url, &["grant", "list", &key]);
    assert_eq!(
        grants["Grants"][0]["GrantId"],
        grant_id.as_str(),
        "{grants}"
    );
    node_ok(d, b, &url, &["grant", "revoke", &key, &grant_id], b"");
    let grants = node_json(d, a, &url, &["grant", "list", &key]);
    assert_eq!(grants["Grants"].as_array().unwrap().len(), 0, "{grants}");
    node_ok(d, b, &url, &["tag", "add", &key, "team=fleet"], b"");
    let tags = node_json(d, a, &url, &["tag", "list", &key]);
    assert_eq!(tags["Tags"][0]["TagValue"], "fleet", "{tags}");

    // A disable by A is refused on B, encrypt and decrypt; enabled by B, A uses it again.
    node_ok(d, a, &url, &["key", "disable", &key], b"");
    for (args, input) in [
        (&["encrypt", "--key-id", key.as_str()][..], &b"after"[..]),
        (&["decrypt"][..], &blob[..]),
    ] {
        let out = on_node(d, b, &url, args, input);
        assert!(!out.status.success(), "{args:?} on a disabled key");
        assert!(
            stderr(&out).contains("DisabledException"),
            "{}",
            stderr(&out)
        );
    }
    node_ok(d, b, &url, &["key", "enable", &key], b"");
    node_ok(d, a, &url, &["encrypt", "--key-id", &key], b"enabled again");

    // Two processes creating keys at the same time lose none.
    let before = node_json(d, a, &url, &["key", "list"])["Keys"]
        .as_array()
        .unwrap()
        .len();
    let made: Vec<String> = std::thread::scope(|s| {
        let runs: Vec<_> = [a, b]
            .into_iter()
            .map(|node| {
                let url = &url;
                s.spawn(move || {
                    (0..4)
                        .map(|_| key_id(&node_json(d, node, url, &["key", "create"])))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        runs.into_iter().flat_map(|r| r.join().unwrap()).collect()
    });
    let listed = node_json(d, b, &url, &["key", "list"]);
    let listed: Vec<&str> = listed["Keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["KeyId"].as_str().unwrap())
        .collect();
    assert_eq!(listed.len(), before + made.len());
    for k in &made {
        assert!(listed.contains(&k.as_str()), "{k} lost");
    }

    // The keys are in PostgreSQL, not in a data directory: without KEYPLANE_STORE node A's
    // directory holds no store. Each node audits into its own directory.
    fails_with(d, &["--data-dir", "node-a", "key", "list"], "store init");
    assert!(d.join("node-a/audit").is_dir() && d.join("node-b/audit").is_dir());

    // An address nothing answers: the typed error, not a panic.
    let out = on_node(
        d,
        a,
        "postgres://nobody@127.0.0.1:1/none",
        &["key", "list"],
        b"",
    );
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("cannot be reached"),
        "{}",
        stderr(&out)
    );
}
