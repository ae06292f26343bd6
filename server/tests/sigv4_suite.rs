//! keyplane's SigV4 canonicalization against the published SigV4 test suite (vendored in
//! `tests/data/sigv4-test-suite`): for every case, the canonical request, the string to sign and
//! the signature must be the suite's, byte for byte.

use std::path::{Path, PathBuf};

use aws_lc_rs::{digest, hmac};
use keyplane_server::auth::sigv4;

fn suite_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/sigv4-test-suite")
}

struct Parsed {
    method: String,
    path: String,
    query: String,
    headers: http::HeaderMap,
    body: Vec<u8>,
}

/// Parses a suite `request.txt`: request line, headers (a line starting with whitespace continues
/// the previous value), blank line, body.
fn parse_request(text: &str) -> Parsed {
    let (head, body) = text.split_once("\n\n").unwrap_or((text, ""));
    let mut lines = head.lines();
    let request_line = lines.next().expect("request line");
    let target = request_line
        .strip_prefix(request_line.split(' ').next().unwrap())
        .unwrap()
        .trim()
        .strip_suffix("HTTP/1.1")
        .expect("HTTP/1.1")
        .trim();
    let method = request_line.split(' ').next().unwrap().to_owned();
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let mut pairs: Vec<(String, String)> = Vec::new();
    for line in lines {
        if line.starts_with([' ', '\t']) {
            let last = pairs.last_mut().expect("continuation after a header");
            last.1.push(' ');
            last.1.push_str(line.trim());
        } else {
            let (name, value) = line.split_once(':').expect("name:value");
            pairs.push((name.to_owned(), value.to_owned()));
        }
    }
    let mut headers = http::HeaderMap::new();
    for (name, value) in pairs {
        headers.append(
            http::HeaderName::from_bytes(name.to_ascii_lowercase().as_bytes()).unwrap(),
            http::HeaderValue::from_str(&value).unwrap(),
        );
    }
    Parsed {
        method,
        path: path.to_owned(),
        query: query.to_owned(),
        headers,
        body: body.as_bytes().to_vec(),
    }
}

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, key), data)
        .as_ref()
        .to_vec()
}

#[test]
fn canonical_requests_strings_to_sign_and_signatures_match_the_published_suite() {
    let mut cases: Vec<PathBuf> = std::fs::read_dir(suite_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    cases.sort();
    assert!(cases.len() >= 25, "the vendored suite is missing cases");
    let mut checked = 0;
    for case in &cases {
        let name = case.file_name().unwrap().to_string_lossy().into_owned();
        let read = |file: &str| std::fs::read_to_string(case.join(file)).unwrap();
        let context: serde_json::Value = serde_json::from_str(&read("context.json")).unwrap();
        let expected_creq = read("header-canonical-request.txt");
        let expected_sts = read("header-string-to-sign.txt");
        let expected_sig = read("header-signature.txt").trim().to_owned();

        let mut request = parse_request(&read("request.txt"));
        // What the signer adds before canonicalizing: the date, the token, the body hash.
        request
            .headers
            .insert("x-amz-date", "20150830T123600Z".parse().unwrap());
        let credentials = &context["credentials"];
        if let Some(token) = credentials["token"].as_str() {
            if context["omit_session_token"].as_bool() != Some(true) {
                request
                    .headers
                    .insert("x-amz-security-token", token.parse().unwrap());
            }
        }
        let body_hash = sigv4::sha256_hex(&request.body);
        if context["sign_body"].as_bool() == Some(true) {
            request
                .headers
                .insert("x-amz-content-sha256", body_hash.parse().unwrap());
        }
        let creq_lines: Vec<&str> = expected_creq.lines().collect();
        let signed_headers = creq_lines[creq_lines.len() - 2];

        let mut creq = Vec::new();
        sigv4::canonical_request(
            &mut creq,
            &request.method,
            &request.path,
            &request.query,
            &request.headers,
            signed_headers,
            &body_hash,
        );
        assert_eq!(
            String::from_utf8(creq.clone()).unwrap(),
            expected_creq,
            "{name}: canonical request"
        );
        let mut hashed = digest::Context::new(&digest::SHA256);
        sigv4::canonical_request(
            &mut hashed,
            &request.method,
            &request.path,
            &request.query,
            &request.headers,
            signed_headers,
            &body_hash,
        );
        let hash = hashed.finish();
        assert_eq!(
            hash.as_ref(),
            digest::digest(&digest::SHA256, &creq).as_ref(),
            "{name}: streamed hash"
        );
        let region = context["region"].as_str().unwrap();
        let service = context["service"].as_str().unwrap();
        let scope = format!("20150830/{region}/{service}/aws4_request");
        let sts = sigv4::string_to_sign("20150830T123600Z", &scope, hash.as_ref());
        assert_eq!(sts, expected_sts, "{name}: string to sign");

        let secret = credentials["secret_access_key"].as_str().unwrap();
        let mut key = hmac(format!("AWS4{secret}").as_bytes(), b"20150830");
        for part in [region, service, "aws4_request"] {
            key = hmac(&key, part.as_bytes());
        }
        let mut signature = String::new();
        sigv4::hex_into(&hmac(&key, sts.as_bytes()), &mut signature);
        assert_eq!(signature, expected_sig, "{name}: signature");
        checked += 1;
    }
    println!("assurance: sigv4 suite: {checked} published cases matched");
}
