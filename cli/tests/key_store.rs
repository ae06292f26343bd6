//! `keyplane key-store ...` and HSM-backed keys from the command line, against a SoftHSMv2 token
//! initialised in the test's own directory (`SOFTHSM2_CONF`), on the durable store: each command
//! is a new process, so every one reconnects the store from what the SQLite store kept.

mod common;

use std::path::Path;
use std::process::Command;

use common::*;
use serde_json::Value;

const PIN: &str = "1234567890";
const CLUSTER: &str = "cluster-softhsmtoken";

/// Makes a token labelled `label` in `dir` with scripts/lib/softhsm.sh, the one definition of a
/// test token (the scripts, the C and Python tests and tests/serve use it too); returns what it
/// prints: SOFTHSM2_CONF and SOFTHSM_MODULE.
fn softhsm_token(dir: &Path, label: &str) -> std::collections::BTreeMap<String, String> {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/lib/softhsm.sh");
    let made = Command::new(script)
        .args(["token", dir.to_str().unwrap(), label, PIN])
        .output()
        .expect("scripts/lib/softhsm.sh runs");
    assert!(made.status.success(), "{made:?}");
    String::from_utf8(made.stdout)
        .unwrap()
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

/// The SoftHSMv2 module, as scripts/lib/softhsm.sh found it when it made a test's token.
static MODULE: std::sync::OnceLock<String> = std::sync::OnceLock::new();

fn module() -> &'static str {
    MODULE.get().expect("a token was made first")
}

/// Runs keyplane with the token configured and the PIN in HSM_PIN.
fn hsm(dir: &Path, args: &[&str]) -> std::process::Output {
    let conf = dir.join("softhsm2.conf");
    let token = format!("{CLUSTER}={}:keyplane", module());
    run_with(
        dir,
        args,
        b"",
        &[
            ("SOFTHSM2_CONF", conf.to_str().unwrap()),
            ("KEYPLANE_PKCS11_TOKENS", &token),
            ("HSM_PIN", PIN),
        ],
    )
}

fn hsm_ok(dir: &Path, args: &[&str]) -> Vec<u8> {
    let out = hsm(dir, args);
    assert!(
        out.status.success(),
        "keyplane {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn hsm_json(dir: &Path, args: &[&str]) -> Value {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    serde_json::from_slice(&hsm_ok(dir, &all)).unwrap()
}

fn setup() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let made = softhsm_token(dir.path(), "keyplane");
    assert_eq!(
        Path::new(&made["SOFTHSM2_CONF"]),
        dir.path().canonicalize().unwrap().join("softhsm2.conf")
    );
    let _ = MODULE.set(made["SOFTHSM_MODULE"].clone());
    std::fs::write(
        dir.path().join("anchor.pem"),
        "-----BEGIN CERTIFICATE-----\nc29mdGhzbQ==\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    store(dir.path());
    dir
}

#[test]
fn an_hsm_backed_key_is_made_and_used_from_the_command_line() {
    let dir = setup();
    let d = dir.path();
    let created = hsm_json(
        d,
        &[
            "key-store",
            "create",
            "--name",
            "softhsm",
            "--cloud-hsm-cluster-id",
            CLUSTER,
            "--trust-anchor-certificate",
            "anchor.pem",
            "--password-env",
            "HSM_PIN",
        ],
    );
    let store = created["CustomKeyStoreId"].as_str().unwrap().to_owned();
    let listed = hsm_json(d, &["key-store", "list"]);
    assert_eq!(
        listed["CustomKeyStores"][0]["ConnectionState"],
        "DISCONNECTED"
    );
    assert!(
        !listed.to_string().contains(PIN),
        "the PIN is never printed"
    );
    hsm_ok(d, &["key-store", "connect", &store]);
    let listed = hsm_json(d, &["key-store", "list", "--id", &store]);
    assert_eq!(listed["CustomKeyStores"][0]["ConnectionState"], "CONNECTED");

    let key = key_id(&hsm_json(
        d,
        &[
            "key",
            "create",
            "--origin",
            "AWS_CLOUDHSM",
            "--custom-key-store-id",
            &store,
        ],
    ));
    let described = hsm_json(d, &["key", "describe", &key]);
    assert_eq!(described["KeyMetadata"]["CustomKeyStoreId"], store.as_str());
    assert_eq!(described["KeyMetadata"]["CloudHsmClusterId"], CLUSTER);
    assert_eq!(described["KeyMetadata"]["Origin"], "AWS_CLOUDHSM");

    std::fs::write(d.join("pt"), b"hello HSM").unwrap();
    hsm_ok(
        d,
        &["encrypt", "--key-id", &key, "--in", "pt", "--out", "ct"],
    );
    assert_eq!(hsm_ok(d, &["decrypt", "--in", "ct"]), b"hello HSM");
    let random = hsm_json(
        d,
        &[
            "generate-random",
            "--number-of-bytes",
            "32",
            "--custom-key-store-id",
            &store,
        ],
    );
    assert_eq!(random["Plaintext"].as_str().unwrap().len(), 44);

    // Disconnected: the key is unavailable, in this process and the next.
    hsm_ok(d, &["key-store", "disconnect", &store]);
    let refused = hsm(d, &["decrypt", "--in", "ct"]);
    assert!(!refused.status.success());
    assert!(
        stderr(&refused).contains("KeyUnavailableException"),
        "{}",
        stderr(&refused)
    );
    let refused = hsm(d, &["key-store", "delete", &store]);
    assert!(
        stderr(&refused).contains("CustomKeyStoreHasCMKsException"),
        "{}",
        stderr(&refused)
    );
    hsm_ok(d, &["key-store", "connect", &store]);
    assert_eq!(hsm_ok(d, &["decrypt", "--in", "ct"]), b"hello HSM");

    // The store keeps no material for the key, and that is not damage.
    let verify = hsm(d, &["store", "verify"]);
    assert!(verify.status.success(), "{}", stderr(&verify));
}

#[test]
fn a_wrong_pin_fails_the_store_with_invalid_credentials() {
    let dir = setup();
    let d = dir.path();
    let out = run_with(
        d,
        &[
            "--json",
            "key-store",
            "create",
            "--name",
            "wrong",
            "--cloud-hsm-cluster-id",
            CLUSTER,
            "--trust-anchor-certificate",
            "anchor.pem",
            "--password-env",
            "WRONG_PIN",
        ],
        b"",
        &[
            (
                "KEYPLANE_PKCS11_TOKENS",
                &format!("{CLUSTER}={}:keyplane", module()),
            ),
            ("SOFTHSM2_CONF", d.join("softhsm2.conf").to_str().unwrap()),
            ("WRONG_PIN", "not-the-pin"),
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let store: Value = serde_json::from_slice(&out.stdout).unwrap();
    let store = store["CustomKeyStoreId"].as_str().unwrap().to_owned();
    hsm_ok(d, &["key-store", "connect", &store]);
    let listed = hsm_json(d, &["key-store", "list", "--id", &store]);
    assert_eq!(listed["CustomKeyStores"][0]["ConnectionState"], "FAILED");
    assert_eq!(
        listed["CustomKeyStores"][0]["ConnectionErrorCode"],
        "INVALID_CREDENTIALS"
    );
}
