//! After a crash, the log verifies up to the last durable record, and reopening continues it.
//!
//! A child process (this test binary, running `crash_child_writer`) appends records from four
//! threads and prints each request id once its record is durable; the parent kills it with
//! SIGKILL in the middle of writing, then verifies and reopens the log.

use std::collections::HashSet;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use keyplane::audit::{
    generate_signing_key, verify, AuditConfig, AuditEvent, AuditLog, DigestSigner, UserIdentity,
    Verdict,
};
use keyplane_testkit::{child_test, hex, unhex};
use serde_json::Value;

const CHILD_LOG: &str = "KEYPLANE_AUDIT_CRASH_LOG";
const CHILD_KEY: &str = "KEYPLANE_AUDIT_CRASH_KEY";

fn event(thread: u64, n: u64) -> AuditEvent {
    AuditEvent::new(
        "GenerateDataKey",
        "eu-west-1",
        UserIdentity {
            identity_type: "AssumedRole".into(),
            principal_id: "AROAEXAMPLE:worker".into(),
            arn: "arn:aws:sts::111122223333:assumed-role/worker/w1".into(),
            account_id: "111122223333".into(),
            access_key_id: None,
        },
    )
    .with_key(
        "111122223333",
        "arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab",
    )
    .with_request_parameters(serde_json::json!({
        "keyId": "alias/orders", "keySpec": "AES_256", "thread": thread, "n": n
    }))
}

fn request_ids(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .filter(|l| l.starts_with("{\"seq\":"))
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .map(|r| r["requestID"].as_str().unwrap().to_string())
        .collect()
}

#[test]
#[ignore = "the child process of crash_mid_write_then_reopen; does nothing on its own"]
fn crash_child_writer() {
    let (Ok(path), Ok(key)) = (std::env::var(CHILD_LOG), std::env::var(CHILD_KEY)) else {
        return;
    };
    let mut config = AuditConfig::new(path);
    config.digest_every_records = 64;
    config.digest_every = Duration::from_millis(20);
    let log = Arc::new(
        AuditLog::open(
            config,
            &keyplane::LockedBytes::copy_from(&unhex(&key), Default::default()).unwrap(),
        )
        .unwrap(),
    );
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let log = Arc::clone(&log);
            std::thread::spawn(move || {
                for n in 0.. {
                    let event = event(t, n);
                    let id = event.request_id.clone();
                    log.record(event).unwrap();
                    let mut out = std::io::stdout().lock();
                    writeln!(out, "durable {id}").unwrap();
                    out.flush().unwrap();
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
}

#[test]
fn crash_mid_write_then_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.log");
    let key = generate_signing_key(keyplane::LockPolicy::default()).unwrap();
    let mut child = child_test("crash_child_writer")
        .env(CHILD_LOG, &path)
        .env(
            CHILD_KEY,
            hex(key.expose(keyplane::SecretAccess::granted())),
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut acknowledged = Vec::new();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    for line in lines.by_ref() {
        if let Some(id) = line.unwrap().strip_prefix("durable ") {
            acknowledged.push(id.to_string());
            if acknowledged.len() == 2000 {
                child.kill().unwrap();
                break;
            }
        }
    }
    child.wait().unwrap();
    // What the child printed before it died was acknowledged too.
    for line in lines {
        match line {
            Ok(line) => {
                if let Some(id) = line.strip_prefix("durable ") {
                    acknowledged.push(id.to_string());
                }
            }
            Err(_) => break,
        }
    }
    assert!(acknowledged.len() >= 2000);

    // The chain verifies, and every acknowledged record is in it.
    let public = DigestSigner::from_pkcs8(&key)
        .unwrap()
        .public_key_der()
        .to_vec();
    let report = verify(&path, &public).unwrap();
    println!("after the crash: {report}");
    assert!(report.is_ok(), "{report}");
    let in_log: HashSet<String> = request_ids(&path).into_iter().collect();
    assert!(report.records >= acknowledged.len() as u64);
    for id in &acknowledged {
        assert!(in_log.contains(id), "acknowledged {id} is missing");
    }

    // A copy cut in the middle of its last line: what a crash mid-write leaves on some systems.
    let cut = dir.path().join("cut.log");
    std::fs::copy(&path, &cut).unwrap();
    let text = std::fs::read(&cut).unwrap();
    let last_start = text[..text.len() - 1]
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |p| p + 1);
    let keep = last_start + (text.len() - last_start) / 2;
    std::fs::OpenOptions::new()
        .write(true)
        .open(&cut)
        .unwrap()
        .set_len(keep as u64)
        .unwrap();
    let cut_report = verify(&cut, &public).unwrap();
    println!("cut mid-line: {cut_report}");
    assert_eq!(cut_report.verdict(), Verdict::Truncated, "{cut_report}");
    // The cut line counted as a record only if it was whole: the kill itself may have torn it
    // already (the report then says truncated), and cutting a torn line again loses nothing.
    let cut_line_was_record =
        report.truncated.is_none() && text[last_start..].starts_with(b"{\"seq\":");
    let expected = report.records - u64::from(cut_line_was_record);
    assert_eq!(cut_report.records, expected);

    // Reopening continues both: the torn line is cut off, the unsigned tail is signed.
    for (log_path, records) in [(&path, report.records), (&cut, expected)] {
        let log = AuditLog::open(AuditConfig::new(log_path), &key).unwrap();
        for n in 0..3 {
            log.record(event(9, n)).unwrap();
        }
        log.close().unwrap();
        let after = verify(log_path, &public).unwrap();
        println!("reopened: {after}");
        assert_eq!(after.verdict(), Verdict::Intact, "{after}");
        assert_eq!(after.records, records + 3);
    }
}
