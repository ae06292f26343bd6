//! botocore's own KMS client (boto3's and the aws CLI's engine) signs requests that keyplane
//! accepts as the credential's principal: the requests are built and signed by botocore in a
//! Python process (`tests/data/botocore_capture.py`) and verified here.
//!
//! Needs a Python with botocore (`KEYPLANE_PYTHON`, default `python3`), so it is ignored in a plain
//! `cargo test`; `scripts/test-serve` runs it with `--ignored` and `KEYPLANE_REQUIRE_BOTOCORE=1`
//! after installing botocore, where a missing botocore fails it instead of skipping it.

use std::path::Path;
use std::process::Command;
use std::time::SystemTime;

use base64::Engine as _;
use keyplane_server::auth::{Authenticator, CredentialStore, SignedRequest};
use keyplane_testkit::succeeded;

const ALICE: &str = "arn:aws:iam::111122223333:user/alice";

fn python() -> Option<String> {
    let python = std::env::var("KEYPLANE_PYTHON").unwrap_or_else(|_| "python3".into());
    let ok = Command::new(&python)
        .args(["-c", "import botocore"])
        .output()
        .is_ok_and(|o| o.status.success());
    if ok {
        return Some(python);
    }
    assert!(
        std::env::var("KEYPLANE_REQUIRE_BOTOCORE").as_deref() != Ok("1"),
        "KEYPLANE_REQUIRE_BOTOCORE=1 but {python} cannot import botocore"
    );
    println!("SKIPPED (not a pass): {python} cannot import botocore; nothing was checked");
    None
}

#[test]
#[ignore = "needs a Python with botocore: scripts/test-serve runs it with --ignored and KEYPLANE_REQUIRE_BOTOCORE=1"]
fn requests_signed_by_botocores_kms_client_are_accepted() {
    let Some(python) = python() else { return };
    let store = CredentialStore::in_memory();
    let new = store.create(ALICE).unwrap();
    let auth = Authenticator::new(store, "eu-central-1");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/botocore_capture.py");
    let out = succeeded(Command::new(&python).arg(&script).args([
        new.access_key_id.as_str(),
        new.secret_access_key.as_str(),
        "eu-central-1",
        "https://127.0.0.1:4443",
        "3",
    ]));
    let captured: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(captured.len(), 3);
    let mut signatures = Vec::new();
    for request in &captured {
        let mut headers = http::HeaderMap::new();
        // The transport sees the Host header urllib3 adds from the URL.
        headers.insert("host", "127.0.0.1:4443".parse().unwrap());
        for pair in request["headers"].as_array().unwrap() {
            headers.append(
                http::HeaderName::from_bytes(pair[0].as_str().unwrap().as_bytes()).unwrap(),
                pair[1].as_str().unwrap().parse().unwrap(),
            );
        }
        let body = base64::engine::general_purpose::STANDARD
            .decode(request["body"].as_str().unwrap())
            .unwrap();
        let signed = SignedRequest {
            method: request["method"].as_str().unwrap(),
            path: "/",
            query: "",
            headers: &headers,
            body: &body,
        };
        let identity = auth.verify(&signed, SystemTime::now()).unwrap();
        assert_eq!(identity.principal, ALICE);
        assert_eq!(identity.access_key_id, new.access_key_id);
        let authorization = headers["authorization"].to_str().unwrap().to_owned();
        signatures.push(authorization.rsplit('=').next().unwrap().to_owned());
        // Tampering with what botocore signed is refused.
        let mut tampered = body.clone();
        tampered.push(b' ');
        let refused = auth.verify(
            &SignedRequest {
                body: &tampered,
                ..signed
            },
            SystemTime::now(),
        );
        assert_eq!(refused.unwrap_err().code, "InvalidSignatureException");
    }
    println!(
        "botocore: {} identical Encrypt calls, {} distinct signatures (botocore adds \
         amz-sdk-invocation-id after signing); all accepted",
        captured.len(),
        signatures
            .iter()
            .collect::<std::collections::BTreeSet<_>>()
            .len()
    );
}
