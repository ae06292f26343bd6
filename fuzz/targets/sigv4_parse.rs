//! Fuzz target `sigv4_parse`: the SigV4 `Authorization` header parser, the request date parsers,
//! and the whole verifier (`keyplane_server::auth::Authenticator::verify`) on arbitrary headers.
//!
//! Input: a selector byte, then the header value. Whatever the bytes, nothing panics; a parsed
//! header's fields are substrings of the input in the documented places (the scope is exactly the
//! credential after the access key id, the signature present exactly when it is 64 hex digits); a
//! date that parses formats back to itself; and the verifier refuses every request (no one knows a
//! secret generated in this process) with one of the service's authentication error codes, status
//! 400, and a message that never exceeds a bound or carries control characters.
//!
//! Replayed on stable by the server's own `server/tests/fuzz_replay.rs` (not by the engine's,
//! which cannot depend on the server).

use std::sync::OnceLock;
use std::time::{Duration, UNIX_EPOCH};

use keyplane_server::auth::{sigv4, Authenticator, CredentialStore, SignedRequest};

/// The codes an authentication failure may carry.
const CODES: &[&str] = &[
    "MissingAuthenticationTokenException",
    "IncompleteSignatureException",
    "InvalidSignatureException",
    "UnrecognizedClientException",
];

fn authenticator() -> &'static (Authenticator, String) {
    static AUTH: OnceLock<(Authenticator, String)> = OnceLock::new();
    AUTH.get_or_init(|| {
        let store = CredentialStore::in_memory().with_lock_policy(keyplane::LockPolicy::Warn);
        let id = store
            .create("arn:aws:iam::111122223333:user/fuzz")
            .expect("a credential")
            .access_key_id;
        (Authenticator::new(store, "us-east-1"), id)
    })
}

/// Runs one input.
pub fn run(data: &[u8]) {
    let (selector, rest) = data.split_first().unwrap_or((&0, &[]));
    let text = String::from_utf8_lossy(rest);

    if let Ok(auth) = sigv4::parse_authorization(&text) {
        let credential = format!(
            "{}/{}/{}/{}/{}",
            auth.access_key_id, auth.date, auth.region, auth.service, auth.terminator
        );
        assert!(text.contains(&credential), "credential not from the input");
        assert!(
            credential.ends_with(auth.scope),
            "scope is not the credential's tail"
        );
        assert!(!auth.access_key_id.is_empty());
        assert!(!auth.signed_headers.is_empty());
        if let Some(sig) = auth.signature {
            let mut hex = String::new();
            sigv4::hex_into(&sig, &mut hex);
            assert!(
                text.to_ascii_lowercase().contains(&hex),
                "signature not from the input"
            );
        }
    }
    if let Some(t) = sigv4::parse_amz_date(&text) {
        assert_eq!(
            sigv4::format_amz_date(t),
            text,
            "amz date does not round-trip"
        );
    }
    let _ = sigv4::parse_http_date(&text);

    // The verifier, with the fuzzed value in the header the selector picks.
    let (auth, id) = authenticator();
    let now = UNIX_EPOCH + Duration::from_secs(1_440_938_160);
    let mut headers = http::HeaderMap::new();
    headers.insert(
        "host",
        http::HeaderValue::from_static("kms.us-east-1.amazonaws.com"),
    );
    headers.insert(
        "x-amz-date",
        http::HeaderValue::from_static("20150830T123600Z"),
    );
    let name = match selector % 4 {
        0 => "authorization",
        1 => "x-amz-date",
        2 => "x-amz-content-sha256",
        _ => "authorization",
    };
    let value = if selector % 4 == 3 {
        // A well-formed header for the real access key, with fuzzed signed headers and signature.
        format!(
            "AWS4-HMAC-SHA256 Credential={id}/20150830/us-east-1/kms/aws4_request, {}",
            text
        )
    } else {
        text.into_owned()
    };
    if let Ok(value) = http::HeaderValue::from_str(&value) {
        headers.insert(name, value);
        if name != "authorization" {
            headers.insert(
                "authorization",
                http::HeaderValue::from_static(
                    "AWS4-HMAC-SHA256 Credential=AKIAFUZZ/20150830/us-east-1/kms/aws4_request, \
                     SignedHeaders=host;x-amz-date, Signature=00",
                ),
            );
        }
    }
    let request = SignedRequest {
        method: "POST",
        path: "/",
        query: "",
        headers: &headers,
        body: rest,
    };
    let error = auth
        .verify(&request, now)
        .expect_err("a fuzzed request was accepted");
    assert!(
        CODES.contains(&error.code),
        "unexpected code {}",
        error.code
    );
    assert_eq!(error.status, 400);
    assert!(
        error.message.len() <= 512,
        "message of {} bytes",
        error.message.len()
    );
    assert!(
        !error.message.chars().any(char::is_control),
        "control character in message"
    );
}
