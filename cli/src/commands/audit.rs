//! `keyplane audit ...`: verify the audit log (chain and signed digests) and show its last
//! records; and reading the log backwards, which `key last-usage` uses too.
//!
//! Verification needs no root key and no store: only the log and the audit public key (by default
//! the one the data directory exports). Exit codes: 0 intact; 6 tampered (the problem's kind, line
//! and sequence number are printed); 7 no tampering but an incomplete tail (a line cut short by a
//! crash, or records after the last digest, not yet signed; the next audited command signs them).

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use keyplane::audit::{Verdict, VerifyReport};
use serde_json::{json, Value};

use crate::args::AuditCommand;
use keyplane_store_address::audit::{lock, AuditLock, LockMode};

use crate::context::Context;
use crate::io::{der_from, read_input};
use crate::outcome::{Failure, AUDIT_INCOMPLETE, AUDIT_TAMPERED, INTERNAL, NOT_FOUND, USAGE};
use crate::output::{print_fields, print_json, Table};

pub fn run(ctx: &Context, command: AuditCommand) -> Result<(), Failure> {
    match command {
        AuditCommand::Verify { log, public_key } => verify(ctx, log, public_key),
        AuditCommand::Tail {
            lines,
            log,
            digests,
        } => tail(ctx, lines, log, digests),
    }
}

fn not_found(what: &str, path: &Path, hint: &str) -> Failure {
    Failure {
        code: "NotFoundException".into(),
        message: format!("no {what} at {}{hint}", path.display()),
        exit: NOT_FOUND,
    }
}

/// The log to read, and a shared lock on the data directory's audit lock when it is that log
/// (so that a writer's group is never read half written).
fn open_log(ctx: &Context, log: Option<PathBuf>) -> Result<(PathBuf, Option<AuditLock>), Failure> {
    let paths = ctx.audit_paths();
    let log = log.unwrap_or_else(|| paths.log.clone());
    if !log.is_file() {
        return Err(not_found(
            "audit log",
            &log,
            " (a store records requests there once a command runs on it with audit on)",
        ));
    }
    let lock = if log == paths.log {
        lock(&paths.lock, LockMode::Read)?
    } else {
        None
    };
    Ok((log, lock))
}

fn verdict_name(verdict: Verdict) -> &'static str {
    match verdict {
        Verdict::Tampered => "TAMPERED",
        Verdict::Truncated => "TRUNCATED",
        Verdict::UnsignedTail => "UNSIGNED_TAIL",
        Verdict::Intact => "INTACT",
    }
}

fn verify(ctx: &Context, log: Option<PathBuf>, public_key: Option<PathBuf>) -> Result<(), Failure> {
    let public_key = public_key.unwrap_or_else(|| ctx.audit_paths().public_key);
    if !public_key.is_file() {
        return Err(not_found(
            "audit public key",
            &public_key,
            " (give --public-key DER_FILE)",
        ));
    }
    let der = der_from(&read_input(Some(&public_key))?)?;
    let (log, _lock) = open_log(ctx, log)?;
    let report = keyplane::audit::verify(&log, &der).map_err(|e| match e {
        keyplane::audit::AuditError::Key(m) => Failure {
            code: "ValidationException".into(),
            message: format!("{}: not an audit public key: {m}", public_key.display()),
            exit: USAGE,
        },
        other => Failure {
            code: "KMSInternalException".into(),
            message: other.to_string(),
            exit: INTERNAL,
        },
    })?;
    let fingerprint = keyplane::audit::key_fingerprint(&der);
    if ctx.global.json {
        print_json(&report_json(&report, &log, &public_key, &fingerprint));
    } else {
        print_report(&report, &log, &public_key, &fingerprint);
    }
    match report.verdict() {
        Verdict::Intact => Ok(()),
        Verdict::Tampered => {
            let p = report
                .problem
                .as_ref()
                .expect("a tampered report has a problem");
            Err(Failure {
                code: "AuditLogTampered".into(),
                message: format!(
                    "the audit log {} was tampered with: {} at line {}{}",
                    log.display(),
                    p.kind,
                    p.line,
                    p.seq.map(|s| format!(" (seq {s})")).unwrap_or_default()
                ),
                exit: AUDIT_TAMPERED,
            })
        }
        Verdict::Truncated | Verdict::UnsignedTail => Err(Failure {
            code: "AuditLogIncomplete".into(),
            message: format!(
                "no tampering found, but the end of {} is not covered by a signed digest ({}): \
                 what a crash leaves; the next audited keyplane command on this data directory \
                 cuts a torn line and signs the records",
                log.display(),
                if report.truncated.is_some() {
                    "its last line was cut short"
                } else {
                    "records after the last digest"
                }
            ),
            exit: AUDIT_INCOMPLETE,
        }),
    }
}

fn report_json(report: &VerifyReport, log: &Path, public_key: &Path, fingerprint: &str) -> Value {
    json!({
        "Log": log.display().to_string(),
        "PublicKey": public_key.display().to_string(),
        "KeyFingerprint": fingerprint,
        "Verdict": verdict_name(report.verdict()),
        "Records": report.records,
        "Digests": report.digests,
        "LastSeq": report.last_seq,
        "SignedThrough": report.signed_through,
        "UnsignedTail": report.unsigned_tail,
        "Truncated": report.truncated.map(|t| json!({
            "Line": t.line,
            "Offset": t.offset,
            "Bytes": t.bytes,
        })),
        "Problem": report.problem.as_ref().map(|p| json!({
            "Kind": format!("{:?}", p.kind),
            "Description": p.kind.as_str(),
            "Line": p.line,
            "Seq": p.seq,
            "Detail": p.detail,
        })),
    })
}

fn print_report(report: &VerifyReport, log: &Path, public_key: &Path, fingerprint: &str) {
    let or_none = |v: Option<u64>| v.map_or_else(|| "-".to_owned(), |v| v.to_string());
    let mut fields = vec![
        ("log", log.display().to_string()),
        (
            "public key",
            format!("{} (fingerprint {fingerprint})", public_key.display()),
        ),
        ("records verified", report.records.to_string()),
        ("digests verified", report.digests.to_string()),
        ("last seq", or_none(report.last_seq)),
        ("signed through seq", or_none(report.signed_through)),
        ("unsigned tail", format!("{} records", report.unsigned_tail)),
        (
            "truncated",
            report.truncated.map_or_else(
                || "no".to_owned(),
                |t| {
                    format!(
                        "line {} (byte {}) was cut after {} bytes",
                        t.line, t.offset, t.bytes
                    )
                },
            ),
        ),
    ];
    if let Some(p) = &report.problem {
        fields.push(("problem", p.kind.as_str().to_owned()));
        fields.push(("at line", p.line.to_string()));
        fields.push(("seq", or_none(p.seq)));
        fields.push(("detail", p.detail.clone()));
    }
    let verdict = verdict_name(report.verdict());
    fields.push((
        "verdict",
        match report.verdict() {
            Verdict::Intact => {
                format!("{verdict}: every record is chained and covered by a signed digest")
            }
            Verdict::Tampered => format!("{verdict}: the log was changed after it was written"),
            Verdict::Truncated => {
                format!("{verdict}: no tampering; the last line was cut short by a crash")
            }
            Verdict::UnsignedTail => {
                format!("{verdict}: no tampering; the last records are not yet signed")
            }
        },
    ));
    print_fields(&fields);
}

fn tail(ctx: &Context, n: usize, log: Option<PathBuf>, digests: bool) -> Result<(), Failure> {
    let (log, _lock) = open_log(ctx, log)?;
    let mut lines: Vec<Value> = Vec::new();
    lines_backwards(&log, |line| {
        if lines.len() >= n {
            return false;
        }
        let is_record = line.starts_with(b"{\"seq\":");
        if is_record || digests {
            lines.push(
                serde_json::from_slice(line)
                    .unwrap_or_else(|_| json!({ "unparsed": String::from_utf8_lossy(line) })),
            );
        }
        true
    })
    .map_err(|e| Failure {
        code: "KMSInternalException".into(),
        message: format!("could not read {}: {e}", log.display()),
        exit: INTERNAL,
    })?;
    lines.reverse();
    if ctx.global.json {
        print_json(&json!({ "Records": lines }));
        return Ok(());
    }
    let mut table = Table::new(&["SEQ", "TIME", "EVENT", "PRINCIPAL", "KEY", "RESULT"]);
    for v in &lines {
        if v.get("auditDigest").is_some() {
            table.row(vec![
                "-".into(),
                text(&v["digestTime"]),
                "(digest)".into(),
                String::new(),
                String::new(),
                format!(
                    "signs seq {}..{}",
                    text(&v["seqFirst"]),
                    text(&v["seqLast"])
                ),
            ]);
            continue;
        }
        let mut key = v["resources"]
            .get(0)
            .map(|r| text(&r["ARN"]))
            .map(|arn| arn.rsplit('/').next().unwrap_or_default().to_owned())
            .unwrap_or_default();
        // A batch over several keys names them all; the table shows the first and how many more.
        if let Some(more) = v["resources"]
            .as_array()
            .and_then(|r| r.len().checked_sub(1))
            .filter(|&n| n > 0)
        {
            key.push_str(&format!(" (+{more})"));
        }
        let result = match v.get("errorCode") {
            Some(code) => text(code),
            None => "ok".into(),
        };
        let result = match v.get("additionalEventData") {
            Some(extra) => format!("{result} ({} items)", text(&extra["itemCount"])),
            None => result,
        };
        table.row(vec![
            text(&v["seq"]),
            text(&v["eventTime"]),
            text(&v["eventName"]),
            text(&v["userIdentity"]["arn"]),
            key,
            result,
        ]);
    }
    table.print();
    Ok(())
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// Calls `visit` with each complete line of the file (without its newline), last first, until it
/// returns false. A last line without its newline (a torn write) is skipped.
pub fn lines_backwards(path: &Path, mut visit: impl FnMut(&[u8]) -> bool) -> std::io::Result<()> {
    const CHUNK: u64 = 1 << 16;
    let mut file = File::open(path)?;
    let mut pos = file.metadata()?.len();
    let mut leftover: Vec<u8> = Vec::new();
    let mut tail_dropped = false;
    while pos > 0 {
        let start = pos.saturating_sub(CHUNK);
        let mut buf = vec![0u8; (pos - start) as usize];
        file.seek(SeekFrom::Start(start))?;
        file.read_exact(&mut buf)?;
        buf.extend_from_slice(&leftover);
        pos = start;
        let mut end = buf.len();
        while let Some(newline) = buf[..end].iter().rposition(|&b| b == b'\n') {
            if !tail_dropped {
                // After the file's last newline: nothing, or a torn line.
                tail_dropped = true;
            } else if !visit(&buf[newline + 1..end]) {
                return Ok(());
            }
            end = newline;
        }
        leftover = buf[..end].to_vec();
    }
    if tail_dropped {
        visit(&leftover);
    }
    Ok(())
}

/// The operations whose successes GetKeyLastUsage reports (as the engine counts them).
const CRYPTOGRAPHIC: [&str; 12] = [
    "Encrypt",
    "Decrypt",
    "ReEncrypt",
    "GenerateDataKey",
    "GenerateDataKeyWithoutPlaintext",
    "GenerateDataKeyPair",
    "GenerateDataKeyPairWithoutPlaintext",
    "Sign",
    "Verify",
    "GenerateMac",
    "VerifyMac",
    "DeriveSharedSecret",
];

/// The last successful cryptographic use of the key `key_arn` recorded in `log`, in the service's
/// `KeyLastUsage` shape (milliseconds in `Timestamp`).
pub fn last_use(log: &Path, key_arn: &str) -> std::io::Result<Option<Value>> {
    let mut found = None;
    lines_backwards(log, |line| {
        if !line.starts_with(b"{\"seq\":") {
            return true;
        }
        // Cheap filter before parsing: the key's ARN must be in the line.
        if !contains(line, key_arn.as_bytes()) {
            return true;
        }
        let Ok(record) = serde_json::from_slice::<Value>(line) else {
            return true;
        };
        let name = record["eventName"].as_str().unwrap_or_default();
        let about_key = record["resources"]
            .as_array()
            .is_some_and(|r| r.iter().any(|r| r["ARN"] == key_arn));
        if !CRYPTOGRAPHIC.contains(&name) || record.get("errorCode").is_some() || !about_key {
            return true;
        }
        // A batch counts per key: a key whose every item failed was not used.
        let failed_for_key = record["additionalEventData"]["keys"]
            .as_array()
            .and_then(|keys| keys.iter().find(|k| k["ARN"] == key_arn))
            .is_some_and(|k| k["errorCount"].as_u64() >= k["itemCount"].as_u64());
        if failed_for_key {
            return true;
        }
        found = Some(json!({
            "Operation": name,
            "Timestamp": record["eventTime"].as_str().and_then(parse_rfc3339_ms),
            "CloudTrailEventId": record["eventID"],
            "KmsRequestId": record["requestID"],
        }));
        false
    })?;
    Ok(found)
}

/// When `log` began: its first record's time, in milliseconds.
pub fn first_record_ms(log: &Path) -> Option<i64> {
    let mut first = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(File::open(log).ok()?),
        &mut first,
    )
    .ok()?;
    let record: Value = serde_json::from_str(&first).ok()?;
    record["eventTime"].as_str().and_then(parse_rfc3339_ms)
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

/// `YYYY-MM-DDTHH:MM:SS[.mmm]Z` as milliseconds since the epoch.
pub fn parse_rfc3339_ms(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || !s.ends_with('Z') {
        return None;
    }
    let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let millis = match s.get(19..s.len() - 1)? {
        "" => 0,
        frac => {
            let digits = frac.strip_prefix('.')?;
            let padded = format!("{digits:0<3}");
            padded.get(..3)?.parse::<i64>().ok()?
        }
    };
    // Days from civil (H. Hinnant).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(((days * 86_400 + hour * 3600 + minute * 60 + second) * 1000) + millis)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::date;

    #[test]
    fn rfc3339_times_parse_back_to_milliseconds() {
        for ms in [0_i64, 951_782_400_000, 1_700_000_000_123, 4_102_444_799_999] {
            let text = keyplane::audit::rfc3339_millis(ms);
            assert_eq!(parse_rfc3339_ms(&text), Some(ms), "{text}");
            assert_eq!(date(ms), format!("{}Z", &text[..19]));
        }
        assert_eq!(
            parse_rfc3339_ms("2024-05-01T12:00:00Z"),
            Some(1_714_564_800_000)
        );
        assert_eq!(parse_rfc3339_ms("yesterday"), None);
    }

    #[test]
    fn lines_are_read_backwards_across_chunks_and_a_torn_tail_is_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        let lines: Vec<String> = (0..5000)
            .map(|i| format!("line {i} {}", "x".repeat(i % 97)))
            .collect();
        for torn in ["", "torn without newline"] {
            std::fs::write(&path, format!("{}\n{torn}", lines.join("\n"))).unwrap();
            let mut seen = Vec::new();
            lines_backwards(&path, |l| {
                seen.push(String::from_utf8(l.to_vec()).unwrap());
                true
            })
            .unwrap();
            seen.reverse();
            assert_eq!(seen, lines);
        }
        let mut last_two = Vec::new();
        lines_backwards(&path, |l| {
            last_two.push(l.to_vec());
            last_two.len() < 2
        })
        .unwrap();
        assert_eq!(last_two.len(), 2);
        std::fs::write(&path, "only a torn line").unwrap();
        let mut count = 0;
        lines_backwards(&path, |_| {
            count += 1;
            true
        })
        .unwrap();
        assert_eq!(count, 0);
    }
}
