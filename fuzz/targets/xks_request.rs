//! Fuzz target `xks_request`: `keyplane xks-proxy`'s request path (`XksProxy::handle`): the URI
//! layout, SigV4 verification (`keyplane-xks`'s verifier) and the four operations' body parsing
//! and handling, over an in-memory engine with one external key (`fuzz-key`).
//!
//! Input: a selector byte, then a body. The selector's low two bits choose the route (health,
//! metadata, encrypt, decrypt of `fuzz-key`); bit 2 replaces the route with a path taken from the
//! input (one length byte, then the path); bit 3 sends the request unsigned; bit 4 makes it a GET.
//! Signed requests are signed by the client's signer, so the fuzzer's time goes into the bodies.
//! Nothing panics; every answer has one of the spec's statuses; every error answer is a JSON
//! object whose `errorName` is one of the spec's names with a printable `errorMessage` under 512
//! characters; a 200 answer has the shape of its operation's response, and an Encrypt answer's
//! CDIV (when present) matches.
//!
//! Compiled by the fuzz crate and by `server/tests/fuzz_replay.rs` (it needs `keyplane-server`).

use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

use keyplane::Engine;
use keyplane_server::xks::keys::create_external_key;
use keyplane_server::xks::{ProxyRequest, XksProxy, XksProxyConfig};
use keyplane_xks::api::{
    DecryptResponse, EncryptResponse, ErrorBody, HealthResponse, KeyMetadataResponse,
};
use keyplane_xks::sigv4::{sign, Credential};
use keyplane_xks::XksErrorKind;

use crate::common::Input;

const PATH: &str = "/fuzz/kms/xks/v1";
const ID: &str = "FUZZKEYIDFUZZKEYIDFUZZ";
const SECRET: &str = "fuzz-secret";

fn proxy() -> &'static XksProxy {
    static PROXY: OnceLock<XksProxy> = OnceLock::new();
    PROXY.get_or_init(|| {
        let engine = Engine::builder().max_keys(8).build().expect("engine");
        create_external_key(&engine, "fuzz-key").expect("external key");
        XksProxy::new(
            engine,
            XksProxyConfig {
                uri_path: PATH.into(),
                credentials: vec![Credential::new(ID, SECRET)],
                log_requests: false,
            },
        )
        .expect("proxy")
    })
}

pub fn run(data: &[u8]) {
    let mut input = Input::new(data);
    let selector = input.byte();
    let op = ["health", "metadata", "encrypt", "decrypt"][usize::from(selector & 3)];
    let path = if selector & 4 != 0 {
        let len = usize::from(input.byte());
        String::from_utf8_lossy(input.bytes(len)).into_owned()
    } else if op == "health" {
        format!("{PATH}/health")
    } else {
        format!("{PATH}/keys/fuzz-key/{op}")
    };
    let body = input.rest();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let mut headers = vec![("host".to_owned(), "xks.fuzz".to_owned())];
    if selector & 8 == 0 {
        let signature = sign(
            &Credential::new(ID, SECRET),
            "us-east-1",
            "xks.fuzz",
            &path,
            body,
            now,
        );
        headers.push(("x-amz-date".into(), signature.amz_date));
        headers.push(("authorization".into(), signature.authorization));
    }
    let method = if selector & 16 != 0 { "GET" } else { "POST" };
    let answer = proxy().handle(&ProxyRequest {
        method,
        path: &path,
        headers: &headers,
        body,
        now,
    });
    assert!(
        [200, 400, 401, 403, 404, 405, 429, 500, 501, 503].contains(&answer.status),
        "status {}",
        answer.status
    );
    match answer.status {
        405 => assert_eq!(method, "GET"),
        200 if path == "/ping" => {}
        200 => {
            assert_eq!(method, "POST");
            assert_eq!(selector & 8, 0, "an unsigned request never succeeds");
            if selector & 4 != 0 {
                // A path from the input that named a route: its shape is not known here.
                return;
            }
            let ok = match op {
                "health" => serde_json::from_slice::<HealthResponse>(&answer.body).is_ok(),
                "metadata" => serde_json::from_slice::<KeyMetadataResponse>(&answer.body).is_ok(),
                "encrypt" => {
                    let r: EncryptResponse =
                        serde_json::from_slice(&answer.body).expect("encrypt answer");
                    assert_eq!(r.authentication_tag.0.len(), 16);
                    assert_eq!(r.initialization_vector.0.len(), 12);
                    true
                }
                _ => serde_json::from_slice::<DecryptResponse>(&answer.body).is_ok(),
            };
            assert!(ok, "a 200 answer of the wrong shape");
        }
        status => {
            let error: ErrorBody = serde_json::from_slice(&answer.body).expect("error body");
            let kind = XksErrorKind::from_error_name(&error.error_name).expect("a spec name");
            assert_eq!(kind.proxy_error().map(|(_, s)| s), Some(status));
            let message = error.error_message.unwrap_or_default();
            assert!(message.len() < 512 && message.bytes().all(|b| (0x20..=0x7e).contains(&b)));
            if selector & 8 != 0 && status != 404 {
                assert_eq!(status, 401, "an unsigned request is refused");
            }
        }
    }
}
