//! Audit through the command line: on by default for a data directory, the signing key kept in the
//! store (never as a plaintext file) and its public key exported, `audit verify` with its exit
//! codes for an intact, tampered and incomplete log, `audit tail`, `key last-usage`, root key
//! rotation, a log signed by another key, and commands running at once.

mod common;

use std::path::Path;

use common::*;
use p256::pkcs8::DecodePublicKey;
use serde_json::Value;

const INTACT: i32 = 0;
const TAMPERED: i32 = 6;
const INCOMPLETE: i32 = 7;

fn verify_json(cwd: &Path, extra: &[&str]) -> (i32, Value) {
    let mut args = vec!["--json", "audit", "verify"];
    args.extend_from_slice(extra);
    let out = run(cwd, &args);
    let report: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|_| panic!("audit verify prints JSON: {}", stderr(&out)));
    (code(&out), report)
}

fn lines(cwd: &Path) -> Vec<String> {
    std::fs::read_to_string(audit_log(cwd))
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

fn write_lines(cwd: &Path, lines: &[String]) {
    std::fs::write(audit_log(cwd), lines.join("\n") + "\n").unwrap();
}

#[test]
fn every_request_is_audited_by_default_under_a_key_the_store_keeps() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let init = json(d, &["store", "init"], b"");
    let der_path = d.join("keyplane-data/audit/audit-signing-key.der");
    assert_eq!(
        init["AuditPublicKey"],
        "keyplane-data/audit/audit-signing-key.der"
    );
    let der = std::fs::read(&der_path).unwrap();
    p256::PublicKey::from_public_key_der(&der).expect("a P-256 SubjectPublicKeyInfo");
    // The signing key itself is nowhere in the data directory as a file: only the store holds it,
    // wrapped.
    let audit_files: Vec<String> = std::fs::read_dir(d.join("keyplane-data/audit"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        audit_files
            .iter()
            .all(|f| ["audit-signing-key.der", "segments"].contains(&f.as_str())),
        "{audit_files:?}"
    );
    let verify = json(d, &["store", "verify"], b"");
    assert_eq!(
        verify["Secrets"], 1,
        "the audit signing key is a store secret"
    );
    assert_eq!(verify["SecretCopiesGood"], 2);

    let key = create_key(d, &[]);
    ok(d, &["encrypt", "--key-id", &key], b"x");
    let denied = run(
        d,
        &["key", "describe", "0b5c6d7e-0000-4000-8000-000000000000"],
    );
    fails(&denied, 3, "unknown key");
    let records = audit_records(d);
    let names: Vec<&str> = records
        .iter()
        .map(|r| r["eventName"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["CreateKey", "Encrypt", "DescribeKey"],
        "one record per request"
    );
    assert_eq!(records[2]["errorCode"], "NotFoundException", "failures too");
    assert_eq!(
        records[0]["userIdentity"]["arn"],
        "arn:aws:iam::111122223333:root"
    );
    let text = std::fs::read_to_string(audit_log(d)).unwrap();
    assert!(
        text.contains("\"binary\":"),
        "writer records name the process"
    );
    assert!(
        !text.contains("eA=="),
        "never the plaintext (base64 of 'x')"
    );

    let (exit, report) = verify_json(d, &[]);
    assert_eq!(exit, INTACT, "{report}");
    assert_eq!(report["Verdict"], "INTACT");
    assert_eq!(report["Records"], 3);
    let segment = &report["Segments"][0];
    assert_eq!(segment["SignedThrough"], segment["LastSeq"], "{report}");
    assert_eq!(
        segment["Writers"].as_array().unwrap().len(),
        3,
        "one per command"
    );
    assert!(
        report["Digests"].as_u64().unwrap() >= 3,
        "a digest at each close"
    );
    assert_eq!(
        report["KeyFingerprint"].as_str().unwrap().len(),
        64,
        "{report}"
    );
    let human = String::from_utf8(ok(d, &["audit", "verify"], b"")).unwrap();
    assert!(human.contains("INTACT"), "{human}");

    // --no-audit records nothing.
    ok(d, &["--no-audit", "key", "list"], b"");
    assert_eq!(audit_records(d).len(), 3);
    // Queued durability still records.
    ok(
        d,
        &["--json", "--audit-durability", "queued", "key", "list"],
        b"",
    );
    assert_eq!(audit_records(d).len(), 4);
    assert_eq!(verify_json(d, &[]).0, INTACT);
}

#[test]
fn audit_verify_names_each_kind_of_tampering_with_its_own_exit_code() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    store(d);
    let key = create_key(d, &[]);
    for i in 0..4 {
        ok(
            d,
            &["encrypt", "--key-id", &key],
            format!("m{i}").as_bytes(),
        );
    }
    let original = lines(d);
    // Request records, not the writer record each command starts with.
    let record_lines: Vec<usize> = original
        .iter()
        .enumerate()
        .filter(|(_, l)| l.starts_with("{\"seq\":") && !l.contains("KeyplaneAuditWriter"))
        .map(|(i, _)| i)
        .collect();
    let seq_at = |i: usize| -> u64 {
        serde_json::from_str::<Value>(&original[record_lines[i]]).unwrap()["seq"]
            .as_u64()
            .unwrap()
    };
    let digest_lines: Vec<usize> = original
        .iter()
        .enumerate()
        .filter(|(_, l)| l.starts_with("{\"auditDigest\":"))
        .map(|(i, _)| i)
        .collect();
    let mut cases = Vec::new();

    // A modified record: its content changed, its chain not recomputed.
    let mut modified = original.clone();
    let at = record_lines[2];
    modified[at] = modified[at].replacen("\"Encrypt\"", "\"Decrypt\"", 1);
    cases.push(("Modified", modified, at + 1, Some(seq_at(2))));

    // A deleted record.
    let mut deleted = original.clone();
    deleted.remove(record_lines[1]);
    cases.push(("Deleted", deleted, record_lines[1] + 1, Some(seq_at(1))));

    // A forged digest: its signature altered.
    let mut forged = original.clone();
    let at = digest_lines[1];
    let sig = forged[at].rfind("\"signature\":\"").unwrap() + 20;
    let flipped = if &forged[at][sig..sig + 1] == "0" {
        "1"
    } else {
        "0"
    };
    forged[at].replace_range(sig..sig + 1, flipped);
    cases.push(("DigestSignatureInvalid", forged, at + 1, None));

    // An inserted record: a copy of another.
    let mut inserted = original.clone();
    inserted.insert(record_lines[3] + 1, original[record_lines[1]].clone());
    cases.push(("Inserted", inserted, record_lines[3] + 2, None));

    let mut kinds = Vec::new();
    for (kind, lines, line, seq) in cases {
        write_lines(d, &lines);
        let (exit, report) = verify_json(d, &[]);
        assert_eq!(exit, TAMPERED, "{kind}: {report}");
        assert_eq!(report["Verdict"], "TAMPERED");
        assert_eq!(report["Problem"]["Kind"], kind, "{report}");
        assert_eq!(report["Problem"]["Line"], line, "{kind}: {report}");
        if let Some(seq) = seq {
            assert_eq!(report["Problem"]["Seq"], seq, "{kind}: {report}");
        }
        let out = run(d, &["audit", "verify"]);
        let err = fails(&out, TAMPERED, kind);
        assert!(err.contains("AuditLogTampered"), "{err}");
        let human = String::from_utf8_lossy(&out.stdout);
        let at = human
            .lines()
            .find_map(|l| l.strip_prefix("at line"))
            .map(str::trim);
        assert_eq!(at, Some(line.to_string().as_str()), "{human}");
        kinds.push(kind);
    }

    // Verified elsewhere: a copy of the log and the exported key, outside any data directory.
    write_lines(d, &original);
    let elsewhere = tempfile::tempdir().unwrap();
    std::fs::copy(audit_log(d), elsewhere.path().join("copy.log")).unwrap();
    std::fs::copy(
        d.join("keyplane-data/audit/audit-signing-key.der"),
        elsewhere.path().join("key.der"),
    )
    .unwrap();
    let (exit, report) = verify_json(
        elsewhere.path(),
        &["--log", "copy.log", "--public-key", "key.der"],
    );
    assert_eq!(exit, INTACT, "{report}");

    // Under another store's key, every digest is someone else's.
    let other = tempfile::tempdir().unwrap();
    store(other.path());
    let other_key = other
        .path()
        .join("keyplane-data/audit/audit-signing-key.der");
    let (exit, foreign) = verify_json(d, &["--public-key", other_key.to_str().unwrap()]);
    assert_eq!(exit, TAMPERED);
    assert_eq!(foreign["Problem"]["Kind"], "DigestWrongKey");
    common::report(&format!(
        "audit verify through the CLI: {} kinds of tampering detected with exit {TAMPERED}, plus a \
         foreign key",
        kinds.len()
    ));
}

#[test]
fn a_crash_s_incomplete_tail_is_exit_7_and_the_next_command_signs_it() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    store(d);
    let key = create_key(d, &[]);
    ok(d, &["encrypt", "--key-id", &key], b"x");
    let original = lines(d);

    // Records after the last digest (the process died before its closing digest).
    let mut unsigned = original.clone();
    assert!(unsigned.pop().unwrap().starts_with("{\"auditDigest\":"));
    write_lines(d, &unsigned);
    let (exit, report) = verify_json(d, &[]);
    assert_eq!(exit, INCOMPLETE, "{report}");
    assert_eq!(report["Verdict"], "UNSIGNED_TAIL");
    assert_eq!(
        report["UnsignedTail"], 2,
        "the Encrypt and its command's writer record"
    );
    let err = fails(&run(d, &["audit", "verify"]), INCOMPLETE, "unsigned tail");
    assert!(err.contains("AuditLogIncomplete"), "{err}");

    // A last line cut short by a crash during a write.
    let mut text = original.join("\n");
    text.truncate(text.len() - 30);
    std::fs::write(audit_log(d), &text).unwrap();
    let (exit, report) = verify_json(d, &[]);
    assert_eq!(exit, INCOMPLETE, "{report}");
    assert_eq!(report["Verdict"], "TRUNCATED");
    assert!(report["Truncated"]["Line"].as_u64().is_some(), "{report}");

    // The next audited command cuts the torn line, signs what is unsigned, and goes on.
    ok(d, &["--json", "key", "list"], b"");
    let (exit, report) = verify_json(d, &[]);
    assert_eq!(exit, INTACT, "{report}");
    assert_eq!(report["Records"], 3);
}

#[test]
fn audit_tail_shows_the_last_records_denied_ones_included() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    store(d);
    let key = create_key(d, &[]);
    ok(d, &["encrypt", "--key-id", &key], b"x");
    let eve = "arn:aws:iam::444455556666:user/eve";
    fails(
        &run_as(d, eve, &["encrypt", "--key-id", &key], b"x"),
        4,
        "another account",
    );
    let tail = json(d, &["audit", "tail", "-n", "2"], b"");
    let records = tail["Records"].as_array().unwrap();
    assert_eq!(records.len(), 2);
    assert_eq!(records[0]["eventName"], "Encrypt");
    assert_eq!(records[1]["eventName"], "Encrypt");
    assert_eq!(records[1]["errorCode"], "AccessDeniedException");
    assert_eq!(records[1]["userIdentity"]["arn"], eve);
    let with_digests = json(d, &["audit", "tail", "-n", "3", "--digests"], b"");
    assert!(with_digests["Records"][2]["auditDigest"].is_number());
    let table = String::from_utf8(ok(d, &["audit", "tail"], b"")).unwrap();
    assert!(
        table.contains("AccessDeniedException")
            && table.contains(eve)
            && table.contains("CreateKey"),
        "{table}"
    );
}

#[test]
fn key_last_usage_comes_from_the_audit_log() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    store(d);
    let key = create_key(d, &[]);
    let unused = json(d, &["key", "last-usage", &key], b"");
    assert_shape(
        &unused,
        "operations",
        "GetKeyLastUsage",
        &["KeyId", "KeyCreationDate", "TrackingStartDate"],
    );
    assert!(unused.get("KeyLastUsage").is_none(), "{unused}");
    ok(d, &["encrypt", "--key-id", &key], b"x");
    ok(d, &["generate-data-key", "--key-id", &key], b"");
    ok(d, &["key", "describe", &key], b"");
    let used = json(d, &["key", "last-usage", &key], b"");
    assert_shape(&used, "operations", "GetKeyLastUsage", &["KeyLastUsage"]);
    let usage = &used["KeyLastUsage"];
    assert_shape(
        usage,
        "structures",
        "KeyLastUsageData",
        &[
            "Operation",
            "Timestamp",
            "CloudTrailEventId",
            "KmsRequestId",
        ],
    );
    assert_eq!(
        usage["Operation"], "GenerateDataKey",
        "DescribeKey is no use"
    );
    assert!(usage["Timestamp"].is_f64());
    let record = audit_records(d)
        .into_iter()
        .find(|r| r["eventName"] == "GenerateDataKey")
        .unwrap();
    assert_eq!(usage["KmsRequestId"], record["requestID"]);
    assert_eq!(usage["CloudTrailEventId"], record["eventID"]);
    let human = String::from_utf8(ok(d, &["key", "last-usage", &key], b"")).unwrap();
    assert!(human.contains("(GenerateDataKey)"), "{human}");
}

#[test]
fn root_key_rotation_rewraps_the_audit_key_and_the_log_goes_on() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    store(d);
    create_key(d, &[]);
    let der = std::fs::read(d.join("keyplane-data/audit/audit-signing-key.der")).unwrap();
    let rotated = json(d, &["store", "rotate-root-key"], b"");
    assert_eq!(rotated["SecretsRewrapped"], 1);
    create_key(d, &[]);
    assert_eq!(
        std::fs::read(d.join("keyplane-data/audit/audit-signing-key.der")).unwrap(),
        der,
        "the same audit key, under the new root key"
    );
    let (exit, report) = verify_json(d, &[]);
    assert_eq!(exit, INTACT, "{report}");
    assert_eq!(report["Records"], 2);
}

#[test]
fn a_log_signed_by_another_key_is_not_continued() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    store(d);
    create_key(d, &[]);
    // Another store's public key where this one's is (as after re-creating the store by hand).
    let other = tempfile::tempdir().unwrap();
    store(other.path());
    std::fs::copy(
        other
            .path()
            .join("keyplane-data/audit/audit-signing-key.der"),
        d.join("keyplane-data/audit/audit-signing-key.der"),
    )
    .unwrap();
    let before = lines(d);
    let err = fails(&run(d, &["key", "list"]), 5, "mismatched audit key");
    assert!(
        err.contains("not the store's audit signing key") && err.contains("aside"),
        "{err}"
    );
    assert_eq!(lines(d), before, "nothing appended");
    ok(d, &["--no-audit", "key", "list"], b"");

    // A new store in a data directory that still holds an old log moves it aside.
    std::fs::remove_file(d.join("keyplane-data/keyplane.db")).unwrap();
    std::fs::remove_file(d.join("keyplane-data/keyplane.generation")).unwrap();
    let text = String::from_utf8(ok(d, &["store", "init"], b"")).unwrap();
    assert!(text.contains("moved to"), "{text}");
    create_key(d, &[]);
    assert_eq!(verify_json(d, &[]).0, INTACT);
}

#[test]
fn commands_running_at_once_write_their_own_segments() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().to_owned();
    store(&d);
    let key = create_key(&d, &[]);
    std::thread::scope(|s| {
        for i in 0..4 {
            let (d, key) = (&d, &key);
            s.spawn(move || {
                for j in 0..3 {
                    ok(
                        d,
                        &["encrypt", "--key-id", key],
                        format!("{i}.{j}").as_bytes(),
                    );
                }
            });
        }
    });
    let (exit, report) = verify_json(&d, &[]);
    assert_eq!(exit, INTACT, "{report}");
    assert_eq!(report["Records"], 13);
}

#[test]
fn a_segment_held_by_a_running_process_is_live_and_a_deleted_one_is_exit_6() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    store(d);
    create_key(d, &[]);
    let first = audit_log(d);
    // Another process holds the segment (as a running service's engine would): commands neither
    // wait nor break its chain; they write a segment of their own.
    let mut holder = std::process::Command::new("flock")
        .arg(&first)
        .args(["sleep", "30"])
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
    ok(d, &["key", "list"], b"");
    assert_eq!(audit_logs(d).len(), 2);
    let (exit, report) = verify_json(d, &[]);
    assert_eq!(exit, INTACT, "{report}");
    assert_eq!(report["Segments"][0]["Live"], true, "{report}");
    assert_eq!(report["Records"], audit_records(d).len(), "{report}");
    holder.kill().unwrap();
    holder.wait().unwrap();
    // The second segment's writer record named the first: deleting it is tampering.
    std::fs::remove_file(&first).unwrap();
    let (exit, report) = verify_json(d, &[]);
    assert_eq!(exit, TAMPERED, "{report}");
    assert_eq!(report["Problem"]["Kind"], "LogMissing", "{report}");
    let err = fails(&run(d, &["audit", "verify"]), TAMPERED, "deleted segment");
    assert!(err.contains("deleted segment"), "{err}");
}
