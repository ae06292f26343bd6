//! SigV4 verification throughput: requests signed in advance (each with its own
//! `amz-sdk-invocation-id`, signed, so the replay guard records every one) verified on 1 and 2
//! threads against an in-memory credential store.
//!
//!     cargo run --release -p keyplane-server --example verify_throughput [-- REQUESTS]

use std::sync::Arc;
use std::time::{Instant, SystemTime};

use keyplane_server::auth::{Authenticator, CredentialStore, SignedRequest};
use keyplane_testkit::sigv4::AwsSigner;

const HOST: &str = "kms.us-east-1.amazonaws.com";

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(200_000);
    let store = CredentialStore::in_memory();
    let new = store
        .create("arn:aws:iam::111122223333:user/bench")
        .unwrap();
    let now = SystemTime::now();
    let signer = AwsSigner {
        access_key_id: new.access_key_id.as_str(),
        secret: new.secret_access_key.as_str(),
        region: "us-east-1",
        service: "kms",
        time: now,
        content_sha256: false,
    };
    let body = br#"{"KeyId":"alias/bench","Plaintext":"aGVsbG8gd29ybGQ="}"#;
    let started = Instant::now();
    let requests: Vec<http::HeaderMap> = (0..n)
        .map(|i| {
            let invocation = format!("00000000-0000-4000-8000-{i:012}");
            let base = [
                ("host", HOST),
                ("content-type", "application/x-amz-json-1.1"),
                ("x-amz-target", "TrentService.Encrypt"),
                ("amz-sdk-invocation-id", invocation.as_str()),
            ];
            let mut headers = http::HeaderMap::new();
            for (name, value) in
                signer.signed_headers("POST", &format!("https://{HOST}/"), &base, body)
            {
                headers.insert(
                    http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                    value.parse().unwrap(),
                );
            }
            headers
        })
        .collect();
    eprintln!("signed {n} requests in {:?}", started.elapsed());

    for threads in [1usize, 2] {
        let auth = Arc::new(Authenticator::new(store.clone(), "us-east-1"));
        let started = Instant::now();
        std::thread::scope(|scope| {
            for chunk in requests.chunks(n.div_ceil(threads)) {
                let auth = auth.clone();
                scope.spawn(move || {
                    for headers in chunk {
                        let request = SignedRequest {
                            method: "POST",
                            path: "/",
                            query: "",
                            headers,
                            body,
                        };
                        auth.verify(&request, now).expect("verifies");
                    }
                });
            }
        });
        let took = started.elapsed().as_secs_f64();
        println!(
            "sigv4 verify, {threads} thread(s): {n} requests in {took:.3} s = {:.0} requests/s \
             ({:.2} us each per thread)",
            n as f64 / took,
            took * 1e6 * threads as f64 / n as f64
        );
    }
}
