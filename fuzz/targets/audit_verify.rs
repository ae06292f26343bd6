//! Fuzz target `audit_verify`: `keyplane::audit::verify` on arbitrary and tampered log files.
//!
//! A genuine log (12 records, a digest every 5 and one at close) is written once through the real
//! writer. Each input either is the whole file, or edits the genuine log byte-wise (overwrite,
//! insert, delete) or line-wise (swap, drop, duplicate, replace). `verify` must never panic or
//! fail on content (only an unreadable file or unusable key is an `Err`), and it may call a log
//! intact only if its lines are a prefix, on a digest boundary, of the genuine log's lines: the
//! documented limit is that a log cut right after a digest looks complete. Under another key a
//! log with a digest is never intact.

use std::sync::OnceLock;

use keyplane::audit::{
    generate_signing_key, verify, AuditConfig, AuditEvent, AuditLog, DigestSigner, UserIdentity,
    Verdict,
};

use crate::common::Input;

struct Fixture {
    genuine: Vec<u8>,
    public_key: Vec<u8>,
    other_public_key: Vec<u8>,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("genuine.log");
        let key = generate_signing_key(keyplane::LockPolicy::default()).expect("signing key");
        let mut config = AuditConfig::new(&path);
        config.digest_every_records = 5;
        config.digest_every = std::time::Duration::ZERO;
        let log = AuditLog::open(config, &key).expect("open log");
        for n in 0..12u64 {
            let event = AuditEvent::new(
                if n % 3 == 0 { "Decrypt" } else { "Encrypt" },
                "us-east-1",
                UserIdentity {
                    identity_type: "IAMUser".into(),
                    principal_id: "alice".into(),
                    arn: "arn:aws:iam::111122223333:user/alice".into(),
                    account_id: "111122223333".into(),
                    access_key_id: None,
                },
            )
            .at(1_700_000_000_000 + n as i64)
            .with_request_parameters(serde_json::json!({
                "keyId": "alias/app",
                "encryptionContext": {"tenant": n.to_string()},
            }));
            log.append(event).expect("append").wait().expect("durable");
        }
        let public_key = log.public_key_der();
        log.close().expect("close");
        let other = generate_signing_key(keyplane::LockPolicy::default()).expect("signing key");
        let other_public_key = DigestSigner::from_pkcs8(&other)
            .expect("signer")
            .public_key_der()
            .to_vec();
        Fixture {
            // The directory goes when this returns; the log lives on in memory.
            genuine: std::fs::read(&path).expect("read log"),
            public_key,
            other_public_key,
        }
    })
}

fn lines(bytes: &[u8]) -> Vec<&[u8]> {
    bytes
        .split(|&b| b == b'\n')
        .filter(|line| !line.is_empty())
        .collect()
}

/// The file an input describes.
fn file(input: &mut Input<'_>, genuine: &[u8]) -> Vec<u8> {
    match input.byte() % 3 {
        0 => input.rest().to_vec(),
        1 => {
            let mut bytes = genuine.to_vec();
            for _ in 0..=input.below(3) {
                let at = input.below(bytes.len() + 1);
                match input.byte() % 3 {
                    0 if at < bytes.len() => bytes[at] ^= input.byte() | 1,
                    1 => {
                        let insert = input.short_bytes().to_vec();
                        bytes.splice(at..at, insert);
                    }
                    _ => {
                        let end = (at + input.below(80)).min(bytes.len());
                        bytes.drain(at..end);
                    }
                }
            }
            bytes
        }
        _ => {
            let mut lines: Vec<Vec<u8>> = lines(genuine).into_iter().map(<[u8]>::to_vec).collect();
            for _ in 0..=input.below(3) {
                let n = lines.len();
                let (i, j) = (input.below(n), input.below(n));
                match input.byte() % 4 {
                    0 => lines.swap(i, j),
                    1 if n > 0 => {
                        lines.remove(i);
                    }
                    2 if n > 0 => {
                        let copy = lines[i].clone();
                        lines.insert(j, copy);
                    }
                    _ if n > 0 => lines[i] = input.short_bytes().to_vec(),
                    _ => {}
                }
            }
            let mut out = lines.join(&b'\n');
            out.push(b'\n');
            out
        }
    }
}

/// Runs one input.
pub fn run(data: &[u8]) {
    let f = fixture();
    let mut input = Input::new(data);
    let bytes = file(&mut input, &f.genuine);
    // A file of its own, removed when this input is done.
    let mut file = tempfile::NamedTempFile::new().expect("temp file");
    std::io::Write::write_all(&mut file, &bytes).expect("write input");
    let path = file.path();

    let report = verify(path, &f.public_key).expect("verify reads any file");
    if report.verdict() == Verdict::Intact {
        let genuine = lines(&f.genuine);
        let got = lines(&bytes);
        assert!(
            got.len() <= genuine.len() && got[..] == genuine[..got.len()],
            "a log that is not a prefix of the genuine one verified intact: {report}"
        );
        assert!(
            got.last()
                .is_none_or(|l| l.starts_with(b"{\"auditDigest\"")),
            "an intact log ends with a digest"
        );
    }
    if report.is_ok() {
        assert!(report.problem.is_none());
    } else {
        let problem = report.problem.as_ref().expect("a problem");
        assert!(problem.line >= 1);
        assert!(!report.to_string().is_empty());
    }

    let other = verify(path, &f.other_public_key).expect("verify reads any file");
    if other.verdict() == Verdict::Intact {
        assert_eq!(other.digests, 0, "a digest verified under another key");
    }
    // An unusable key is an error, not a panic.
    let _ = verify(path, input.short_bytes());
}
