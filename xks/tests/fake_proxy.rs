//! `XksClient` against a scripted proxy (plain HTTP on loopback, allowed for tests only): what it
//! sends (a signed POST whose body carries every requestMetadata field given), and how it judges
//! answers — the spec's own Encrypt response example accepted for the spec's request (its CDIV
//! matches), a wrong or missing CDIV, a short ciphertext, error answers with and without a JSON
//! `errorName`, and a chunked answer.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::mpsc;
use std::time::Duration;

use keyplane_xks::api::CryptoRequestMetadata;
use keyplane_xks::sigv4::{self, Credential, RequestParts};
use keyplane_xks::{KmsCallKind, KmsException, XksClient, XksClientConfig, XksErrorKind};

const ID: &str = "AKIAI2SFODNN7EXAMPLE";
const SECRET: &str = "FYtE5EFA5FT0mCc3DrGUe2sti527BitkQ0Zr9MO9fvE";

/// What the scripted proxy received: path, headers, body.
type Received = (String, Vec<(String, String)>, Vec<u8>);

/// A proxy that answers one request with `response` and hands back what it received.
fn scripted(response: &'static str) -> (String, mpsc::Receiver<Received>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let mut buffer = Vec::new();
        let mut chunk = [0u8; 4096];
        let (head_end, length) = loop {
            let n = stream.read(&mut chunk).unwrap();
            buffer.extend_from_slice(&chunk[..n]);
            if let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&buffer[..end]).to_string();
                let length = head
                    .lines()
                    .find_map(|l| l.strip_prefix("Content-Length: "))
                    .unwrap()
                    .parse::<usize>()
                    .unwrap();
                break (end + 4, length);
            }
        };
        while buffer.len() < head_end + length {
            let n = stream.read(&mut chunk).unwrap();
            buffer.extend_from_slice(&chunk[..n]);
        }
        let head = String::from_utf8_lossy(&buffer[..head_end - 4]).to_string();
        let mut lines = head.split("\r\n");
        let path = lines.next().unwrap().split(' ').nth(1).unwrap().to_owned();
        let headers = lines
            .map(|l| {
                let (n, v) = l.split_once(": ").unwrap();
                (n.to_owned(), v.to_owned())
            })
            .collect();
        stream.write_all(response.as_bytes()).unwrap();
        let _ = tx.send((path, headers, buffer[head_end..].to_vec()));
    });
    (endpoint, rx)
}

fn client(endpoint: &str) -> XksClient {
    XksClient::new(XksClientConfig {
        allow_plain_http_to_loopback: true,
        timeout: Duration::from_secs(10),
        ..XksClientConfig::new(
            endpoint,
            "/path/kms/xks/v1",
            Credential::new(ID, SECRET),
            "us-east-2",
        )
    })
    .unwrap()
}

fn metadata() -> CryptoRequestMetadata {
    CryptoRequestMetadata {
        aws_principal_arn: "arn:aws:iam::123456789012:user/Alice".into(),
        aws_source_vpc: Some("vpc-1".into()),
        aws_source_vpce: Some("vpce-1".into()),
        kms_key_arn: "arn:aws:kms:us-east-2:123456789012:/key/1234abcd-12ab-34cd-56ef-1234567890ab"
            .into(),
        kms_operation: "Encrypt".into(),
        kms_request_id: "4112f4d6-db54-4af4-ae30-c55a22a8dfae".into(),
        kms_via_service: Some("ebs".into()),
    }
}

fn ok(body: &str) -> String {
    format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

/// The spec's Encrypt response example (section "Encrypt").
const SPEC_ENCRYPT_RESPONSE: &str = r#"{"authenticationTag":"vBxN2ncH1oEkR8WVXpmyYQ==","ciphertext":"ghxkK1txeDNn3q8Y","ciphertextDataIntegrityValue":"qHA/ImC9h5HsLRXqCyPmWgYx7tzyoTplzILbP0fPXsc=","ciphertextMetadata":"a2V5X3ZlcnNpb249MQ==","initializationVector":"HMrlRw85cAJUd5Ax"}"#;

fn status(line: &str, body: &str) -> String {
    format!(
        "HTTP/1.1 {line}\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

fn leak(s: String) -> &'static str {
    Box::leak(s.into_boxed_str())
}

#[test]
fn the_spec_encrypt_example_is_accepted_and_the_request_is_signed_and_complete() {
    let (endpoint, rx) = scripted(leak(ok(SPEC_ENCRYPT_RESPONSE)));
    let sealed = client(&endpoint)
        .encrypt(
            "b42c7fbf-de61-441c-ae24-123456789012",
            b"Hello World!",
            Some(b"project=nile,department=marketing"),
            &metadata(),
        )
        .unwrap();
    assert_eq!(
        sealed.ciphertext_metadata.as_deref(),
        Some(&b"key_version=1"[..])
    );
    let (path, headers, body) = rx.recv().unwrap();
    assert_eq!(
        path,
        "/path/kms/xks/v1/keys/b42c7fbf-de61-441c-ae24-123456789012/encrypt"
    );
    let now =
        sigv4::parse_amz_date(&headers.iter().find(|(n, _)| n == "X-Amz-Date").unwrap().1).unwrap();
    let creds = [Credential::new(ID, SECRET)];
    let parts = RequestParts {
        method: "POST",
        path: &path,
        headers: &headers,
        body: &body,
    };
    assert_eq!(sigv4::verify(&parts, &creds, now), Ok(ID));
    let auth = &headers
        .iter()
        .find(|(n, _)| n == "Authorization")
        .unwrap()
        .1;
    assert!(auth.contains("/us-east-2/kms-xks-proxy/aws4_request, SignedHeaders=host;x-amz-date,"));
    let sent: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let expected = serde_json::json!({
        "requestMetadata": {
            "awsPrincipalArn": "arn:aws:iam::123456789012:user/Alice",
            "awsSourceVpc": "vpc-1",
            "awsSourceVpce": "vpce-1",
            "kmsKeyArn": "arn:aws:kms:us-east-2:123456789012:/key/1234abcd-12ab-34cd-56ef-1234567890ab",
            "kmsOperation": "Encrypt",
            "kmsRequestId": "4112f4d6-db54-4af4-ae30-c55a22a8dfae",
            "kmsViaService": "ebs"
        },
        "additionalAuthenticatedData": "cHJvamVjdD1uaWxlLGRlcGFydG1lbnQ9bWFya2V0aW5n",
        "plaintext": "SGVsbG8gV29ybGQh",
        "encryptionAlgorithm": "AES_GCM",
        "ciphertextDataIntegrityValueAlgorithm": "SHA_256"
    });
    assert_eq!(sent, expected);
}

fn encrypt_against(response: String) -> keyplane_xks::XksError {
    let (endpoint, _rx) = scripted(leak(response));
    client(&endpoint)
        .encrypt(
            "k",
            b"Hello World!",
            Some(b"project=nile,department=marketing"),
            &metadata(),
        )
        .unwrap_err()
}

#[test]
fn answers_that_cannot_be_right_are_refused() {
    // The spec's example with one bit of the CDIV changed, without it, with another AAD's CDIV
    // (the example's CDIV covers the AAD), and with a ciphertext one byte short.
    let wrong_cdiv = SPEC_ENCRYPT_RESPONSE.replace("qHA/", "qHA+");
    let no_cdiv = SPEC_ENCRYPT_RESPONSE.replace(
        r#""ciphertextDataIntegrityValue":"qHA/ImC9h5HsLRXqCyPmWgYx7tzyoTplzILbP0fPXsc=","#,
        "",
    );
    let short = SPEC_ENCRYPT_RESPONSE.replace("ghxkK1txeDNn3q8Y", "ghxkK1txeDNn3q8=");
    let long_md =
        SPEC_ENCRYPT_RESPONSE.replace("a2V5X3ZlcnNpb249MQ==", "AAAAAAAAAAAAAAAAAAAAAAAAAAAA");
    for body in [wrong_cdiv, no_cdiv, short, long_md] {
        let error = encrypt_against(ok(&body));
        assert_eq!(
            error.kind,
            XksErrorKind::InvalidCiphertextReturned,
            "{body}: {error}"
        );
        assert_eq!(
            error.exception(KmsCallKind::Cryptographic),
            KmsException::KMSInvalidStateException
        );
    }
    let (endpoint, _rx) = scripted(leak(ok(SPEC_ENCRYPT_RESPONSE)));
    let error = client(&endpoint)
        .encrypt("k", b"Hello World!", Some(b"other aad"), &metadata())
        .unwrap_err();
    assert_eq!(error.kind, XksErrorKind::InvalidCiphertextReturned);
}

#[test]
fn error_answers_map_by_error_name_and_anything_else_is_malformed() {
    let cases = [
        (
            leak(status(
                "429 Too Many Requests",
                r#"{"errorName":"ThrottlingException","errorMessage":"slow down"}"#,
            )),
            XksErrorKind::Throttling,
            KmsException::XksProxyUriUnreachableException,
        ),
        (
            "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 9\r\n\r\nnot json!",
            XksErrorKind::MalformedResponse,
            KmsException::XksProxyInvalidResponseException,
        ),
        (
            "HTTP/1.1 400 Bad Request\r\nContent-Length: 26\r\n\r\n{\"errorName\":\"NoSuchName\"}",
            XksErrorKind::MalformedResponse,
            KmsException::XksProxyInvalidResponseException,
        ),
        (
            "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}",
            XksErrorKind::MalformedResponse,
            KmsException::XksProxyInvalidResponseException,
        ),
        (
            "HTTP/1.1 503 Service Unavailable\r\nTransfer-Encoding: chunked\r\n\r\n28\r\n{\"errorName\":\"DependencyTimeoutException\r\n2\r\n\"}\r\n0\r\n\r\n",
            XksErrorKind::DependencyTimeout,
            KmsException::XksProxyUriUnreachableException,
        ),
    ];
    for (response, kind, exception) in cases {
        let (endpoint, _rx) = scripted(response);
        let error = client(&endpoint)
            .health_status(&keyplane_xks::api::HealthRequestMetadata {
                kms_request_id: "r".into(),
                kms_operation: "KmsHealthCheck".into(),
            })
            .unwrap_err();
        assert_eq!(error.kind, kind, "{response}: {error}");
        assert_eq!(error.exception(KmsCallKind::KeyStore), exception);
    }
}
