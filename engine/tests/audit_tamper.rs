//! Every kind of tampering with an audit log is detected, named and placed.
//!
//! One log is written through the real writer (40 records, a digest every 10), then copies of its
//! lines are altered and verified.

#[path = "support/audit_log.rs"]
mod audit_log;

use std::path::Path;

use keyplane::audit::{
    chain_hash, generate_signing_key, verify, AuditConfig, AuditEvent, AuditLog, Digest,
    DigestSigner, ProblemKind, Verdict, VerifyReport,
};
use keyplane_testkit::hex;

struct Fixture {
    _dir: tempfile::TempDir,
    dir: std::path::PathBuf,
    lines: Vec<String>,
    public: Vec<u8>,
}

fn event(n: u64) -> AuditEvent {
    audit_log::alice_encrypt(serde_json::json!({
        "keyId": "alias/orders",
        "encryptionAlgorithm": "SYMMETRIC_DEFAULT",
        "encryptionContext": { "tenant": n.to_string() },
        "plaintextSize": 64
    }))
}

/// 40 records, digests after records 10, 20, 30 and 40: 44 lines. Line `i` (0-based) of record
/// `seq` is `seq - 1 + (seq - 1) / 10`.
fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.log");
    let key = generate_signing_key(keyplane::LockPolicy::default()).unwrap();
    let mut config = AuditConfig::new(&path);
    config.digest_every_records = 10;
    config.digest_every = std::time::Duration::ZERO;
    let log = AuditLog::open(config, &key).unwrap();
    for n in 0..40 {
        log.append(event(n)).unwrap().wait().unwrap();
    }
    let public = log.public_key_der();
    log.close().unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<String> = text.lines().map(str::to_string).collect();
    assert_eq!(lines.len(), 44);
    let report = verify(&path, &public).unwrap();
    assert_eq!(report.verdict(), Verdict::Intact, "{report}");
    assert_eq!((report.records, report.digests), (40, 4));
    Fixture {
        dir: dir.path().to_path_buf(),
        _dir: dir,
        lines,
        public,
    }
}

fn index_of(seq: usize) -> usize {
    seq - 1 + (seq - 1) / 10
}

impl Fixture {
    fn check(&self, lines: &[String]) -> VerifyReport {
        let path = self.dir.join("tampered.log");
        write_lines(&path, lines);
        verify(&path, &self.public).unwrap()
    }

    fn expect(&self, lines: &[String], kind: ProblemKind, line: u64, seq: Option<u64>) {
        let report = self.check(lines);
        let problem = report
            .problem
            .clone()
            .unwrap_or_else(|| panic!("no problem found: {report}"));
        assert_eq!(
            (problem.kind, problem.line, problem.seq),
            (kind, line, seq),
            "{report}"
        );
        assert_eq!(report.verdict(), Verdict::Tampered);
        assert!(report.to_string().starts_with("TAMPERED: "), "{report}");
        println!("{report}");
    }
}

fn write_lines(path: &Path, lines: &[String]) {
    let mut text = lines.join("\n");
    text.push('\n');
    std::fs::write(path, text).unwrap();
}

fn unhex32(hex: &str) -> [u8; 32] {
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap();
    }
    out
}

/// The canonical bytes of a record line: without `,"chain":"…"`, closed.
fn canonical(line: &str) -> String {
    let cut = line.rfind(",\"chain\":\"").unwrap();
    format!("{}}}", &line[..cut])
}

fn with_chain(line: &str, chain: &[u8; 32]) -> String {
    let cut = line.rfind(",\"chain\":\"").unwrap();
    format!("{},\"chain\":\"{}\"}}", &line[..cut], hex(chain))
}

fn stated_chain(line: &str) -> [u8; 32] {
    let cut = line.rfind(",\"chain\":\"").unwrap() + 10;
    unhex32(&line[cut..cut + 64])
}

#[test]
fn modified_byte_in_a_record() {
    let f = fixture();
    let mut lines = f.lines.clone();
    let i = index_of(15);
    lines[i] = lines[i].replacen("\"tenant\":\"14\"", "\"tenant\":\"15\"", 1);
    assert_ne!(lines[i], f.lines[i]);
    f.expect(&lines, ProblemKind::Modified, i as u64 + 1, Some(15));

    // A changed chain value is a modification too.
    let mut lines = f.lines.clone();
    lines[i] = with_chain(&lines[i], &[9; 32]);
    f.expect(&lines, ProblemKind::Modified, i as u64 + 1, Some(15));
}

#[test]
fn deleted_record() {
    let f = fixture();
    let mut lines = f.lines.clone();
    let i = index_of(15);
    lines.remove(i);
    f.expect(&lines, ProblemKind::Deleted, i as u64 + 1, Some(15));

    // Several at once.
    let mut lines = f.lines.clone();
    lines.drain(i..i + 3);
    f.expect(&lines, ProblemKind::Deleted, i as u64 + 1, Some(15));
}

#[test]
fn swapped_records() {
    let f = fixture();
    let mut lines = f.lines.clone();
    let i = index_of(15);
    lines.swap(i, i + 1);
    f.expect(&lines, ProblemKind::Reordered, i as u64 + 1, Some(16));
}

#[test]
fn inserted_forged_record() {
    let f = fixture();
    // A record that claims the next seq, with a made-up chain.
    let mut lines = f.lines.clone();
    let i = index_of(16);
    let forged = f.lines[i].replacen("\"tenant\":\"15\"", "\"tenant\":\"mallory\"", 1);
    lines.insert(i, forged);
    f.expect(&lines, ProblemKind::Inserted, i as u64 + 1, Some(16));

    // A forged record whose chain is computed right (it takes no key): still not the record 16
    // that follows.
    let mut lines = f.lines.clone();
    let previous = stated_chain(&f.lines[index_of(15)]);
    let forged = f.lines[i].replacen("\"tenant\":\"15\"", "\"tenant\":\"mallory\"", 1);
    let forged = with_chain(
        &forged,
        &chain_hash(&previous, canonical(&forged).as_bytes()),
    );
    lines.insert(i, forged);
    f.expect(&lines, ProblemKind::Inserted, i as u64 + 1, Some(16));

    // A copy of an earlier record.
    let mut lines = f.lines.clone();
    lines.insert(i, f.lines[index_of(3)].clone());
    f.expect(&lines, ProblemKind::Inserted, i as u64 + 1, Some(3));

    // A line that is not a record at all.
    let mut lines = f.lines.clone();
    lines.insert(i, "{\"eventName\":\"Decrypt\"}".into());
    f.expect(&lines, ProblemKind::Inserted, i as u64 + 1, None);
}

#[test]
fn truncated_tail_is_a_crash_not_tampering() {
    let f = fixture();
    // Cut the log in the middle of record 33: records 31 and 32 are chained but unsigned.
    let i = index_of(33);
    let mut text = f.lines[..i].join("\n");
    text.push('\n');
    text.push_str(&f.lines[i][..40]);
    let path = f.dir.join("cut.log");
    std::fs::write(&path, text).unwrap();
    let report = verify(&path, &f.public).unwrap();
    assert!(report.is_ok(), "{report}");
    assert_eq!(report.verdict(), Verdict::Truncated);
    assert_eq!(report.records, 32);
    assert_eq!(report.last_seq, Some(32));
    assert_eq!(report.signed_through, Some(30));
    assert_eq!(report.unsigned_tail, 2);
    let cut = report.truncated.unwrap();
    assert_eq!((cut.line, cut.bytes), (i as u64 + 1, 40));
    println!("{report}");

    // Cut at a line boundary after record 32: an unsigned tail, nothing truncated.
    let report = f.check(&f.lines[..i]);
    assert_eq!(report.verdict(), Verdict::UnsignedTail, "{report}");
    assert_eq!(report.unsigned_tail, 2);
}

#[test]
fn forged_digest() {
    let f = fixture();
    let d = index_of(20) + 1;
    assert!(f.lines[d].starts_with("{\"auditDigest\":"));
    // Claim a different range: the signature no longer matches.
    let mut lines = f.lines.clone();
    lines[d] = lines[d].replacen("\"seqFirst\":11,", "\"seqFirst\":12,", 1);
    f.expect(
        &lines,
        ProblemKind::DigestSignatureInvalid,
        d as u64 + 1,
        Some(20),
    );
    // Sign over a rewritten chain value: same.
    let mut lines = f.lines.clone();
    let at = lines[d].find("\"lastChain\":\"").unwrap() + 13;
    lines[d].replace_range(at..at + 64, &"ab".repeat(32));
    f.expect(
        &lines,
        ProblemKind::DigestSignatureInvalid,
        d as u64 + 1,
        Some(20),
    );
}

#[test]
fn replaced_digest_signature() {
    let f = fixture();
    let first = index_of(10) + 1;
    let second = index_of(20) + 1;
    let signature_of = |line: &str| line[line.rfind(",\"signature\":\"").unwrap()..].to_string();
    let mut lines = f.lines.clone();
    let own = signature_of(&lines[second]);
    lines[second] = lines[second].replace(&own, &signature_of(&f.lines[first]));
    f.expect(
        &lines,
        ProblemKind::DigestSignatureInvalid,
        second as u64 + 1,
        Some(20),
    );
}

/// The digest after record 20, as another key signs it.
fn digest_by(signer: &DigestSigner, fixture: &Fixture, fingerprint: [u8; 32]) -> String {
    let d = index_of(20) + 1;
    let stated: serde_json::Value = serde_json::from_str(&fixture.lines[d]).unwrap();
    let text = |name: &str| stated[name].as_str().unwrap().to_string();
    signer
        .sign_line(&Digest {
            seq_first: 11,
            seq_last: 20,
            last_chain: unhex32(&text("lastChain")),
            previous_digest: Some(unhex32(&text("previousDigest"))),
            digest_time: text("digestTime"),
            key_fingerprint: fingerprint,
        })
        .unwrap()
}

#[test]
fn digest_of_another_key() {
    let f = fixture();
    let d = index_of(20) + 1;
    let other =
        DigestSigner::from_pkcs8(&generate_signing_key(keyplane::LockPolicy::default()).unwrap())
            .unwrap();
    // Signed by another key, naming it.
    let mut lines = f.lines.clone();
    lines[d] = digest_by(&other, &f, other.fingerprint());
    f.expect(&lines, ProblemKind::DigestWrongKey, d as u64 + 1, Some(20));
    // Signed by another key, naming the log's key.
    let ours: serde_json::Value = serde_json::from_str(&f.lines[d]).unwrap();
    let fingerprint = unhex32(ours["keyFingerprint"].as_str().unwrap());
    let mut lines = f.lines.clone();
    lines[d] = digest_by(&other, &f, fingerprint);
    f.expect(
        &lines,
        ProblemKind::DigestSignatureInvalid,
        d as u64 + 1,
        Some(20),
    );
    // The whole log checked against another public key.
    let path = f.dir.join("whole.log");
    write_lines(&path, &f.lines);
    let report = verify(&path, other.public_key_der()).unwrap();
    assert_eq!(
        report.problem.map(|p| (p.kind, p.line)),
        Some((ProblemKind::DigestWrongKey, 11))
    );
}

#[test]
fn rechained_records_do_not_match_the_digest() {
    let f = fixture();
    // Change record 15 and recompute every chain after it (no key needed): the chain verifies,
    // the digest after record 20 does not.
    let mut lines = f.lines.clone();
    let i = index_of(15);
    lines[i] = lines[i].replacen("\"tenant\":\"14\"", "\"tenant\":\"mallory\"", 1);
    let mut chain = stated_chain(&lines[i - 1]);
    for line in lines.iter_mut().skip(i) {
        if !line.starts_with("{\"seq\":") {
            break;
        }
        chain = chain_hash(&chain, canonical(line).as_bytes());
        *line = with_chain(line, &chain);
    }
    let d = index_of(20) + 1;
    f.expect(&lines, ProblemKind::DigestMismatch, d as u64 + 1, Some(20));
}

#[test]
fn removed_digest() {
    let f = fixture();
    let mut lines = f.lines.clone();
    let d = index_of(20) + 1;
    lines.remove(d);
    // The next digest (after record 30) no longer continues from the previous one.
    let report = f.check(&lines);
    let problem = report.problem.clone().unwrap();
    assert_eq!(problem.kind, ProblemKind::DigestMissing, "{report}");
    assert_eq!(problem.line, index_of(30) as u64 + 1);
    assert_eq!(report.records, 30);
    assert_eq!(report.signed_through, Some(10));

    // Removing the last digest leaves an unsigned tail: indistinguishable from a crash before it
    // was written, which is why `AuditLog::last_digest` is there to be kept elsewhere.
    let mut lines = f.lines.clone();
    lines.pop();
    let report = f.check(&lines);
    assert_eq!(report.verdict(), Verdict::UnsignedTail, "{report}");
    assert_eq!(report.unsigned_tail, 10);
}

#[test]
fn deleted_first_record() {
    let f = fixture();
    let mut lines = f.lines.clone();
    lines.remove(0);
    f.expect(&lines, ProblemKind::Deleted, 1, Some(1));
}

#[test]
fn every_single_byte_change_is_noticed() {
    let f = fixture();
    let mut original = f.lines.join("\n").into_bytes();
    original.push(b'\n');
    let path = f.dir.join("flipped.log");
    // A fixed xorshift sequence: positions and replacement bytes.
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for _ in 0..400 {
        let at = (next() % original.len() as u64) as usize;
        let mut bytes = original.clone();
        let replacement = (next() % 256) as u8;
        bytes[at] = if replacement == bytes[at] {
            replacement.wrapping_add(1)
        } else {
            replacement
        };
        std::fs::write(&path, &bytes).unwrap();
        let report = verify(&path, &f.public).unwrap();
        assert_ne!(
            report.verdict(),
            Verdict::Intact,
            "byte {at} changed unnoticed: {report}"
        );
    }
}
