//! `keyplane audit ...`: verify the audit logs (chain and signed digests) and show their last
//! records.
//!
//! A data directory's audit directory holds one segment per writing process at a time
//! (`audit/segments/*.log`) and, in data directories from before segments, `audit/audit.log`. By
//! default both commands read every log there: `verify` verifies each, says which process wrote
//! what and checks that no log a writer record names is gone; `tail` merges the logs by time.
//! `--log FILE` reads one log file only.
//!
//! Verification needs no root key and no store: only the logs and the audit public key (by default
//! the one the data directory exports). Exit codes: 0 intact; 6 tampered (the problem's kind, log,
//! line and sequence number are printed); 7 no tampering but an incomplete tail in a log no running
//! process holds (a line cut short by a crash, or records after the last digest, not yet signed;
//! the next audited command takes that segment up and signs them). A segment a running process
//! holds is `live`: its unsigned tail is expected and does not count.

use std::path::{Path, PathBuf};

use keyplane::audit::{lines_backwards, DirectoryReport, SegmentReport, Verdict, VerifyReport};
use serde_json::{json, Value};

use crate::args::AuditCommand;
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

/// The single log file given with `--log`.
fn open_log(log: PathBuf) -> Result<PathBuf, Failure> {
    if !log.is_file() {
        return Err(not_found("audit log", &log, ""));
    }
    Ok(log)
}

/// Every log of the data directory's audit directory (none is an error).
fn directory_logs(ctx: &Context) -> Result<Vec<keyplane::audit::LogFile>, Failure> {
    let dir = ctx.audit_paths().dir;
    let logs = keyplane::audit::list_logs(&dir).map_err(internal)?;
    if logs.is_empty() {
        return Err(not_found(
            "audit log",
            &dir,
            " (a store records requests there once a command runs on it with audit on)",
        ));
    }
    Ok(logs)
}

fn internal(e: impl std::fmt::Display) -> Failure {
    Failure {
        code: "KMSInternalException".into(),
        message: e.to_string(),
        exit: INTERNAL,
    }
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
    let key_error = |e: keyplane::audit::AuditError| match e {
        keyplane::audit::AuditError::Key(m) => Failure {
            code: "ValidationException".into(),
            message: format!("{}: not an audit public key: {m}", public_key.display()),
            exit: USAGE,
        },
        other => internal(other),
    };
    let Some(log) = log else {
        directory_logs(ctx)?;
        let dir = ctx.audit_paths().dir;
        let report = keyplane::audit::verify_directory(&dir, &der).map_err(key_error)?;
        return verify_directory(ctx, &report, &public_key, &der);
    };
    let log = open_log(log)?;
    let report = keyplane::audit::verify(&log, &der).map_err(key_error)?;
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
        Verdict::Truncated | Verdict::UnsignedTail => {
            Err(incomplete_failure(&log, report.truncated.is_some()))
        }
    }
}

/// Reports on every log of the audit directory and exits as the worst of them says.
fn verify_directory(
    ctx: &Context,
    report: &DirectoryReport,
    public_key: &Path,
    der: &[u8],
) -> Result<(), Failure> {
    let fingerprint = keyplane::audit::key_fingerprint(der);
    // The first problem: a log's, else the directory's.
    let log_problem = report
        .segments
        .iter()
        .find_map(|s| s.report.problem.as_ref().map(|p| (s, p)));
    let incomplete = report
        .segments
        .iter()
        .find(|s| matches!(s.verdict(), Verdict::Truncated | Verdict::UnsignedTail));
    if ctx.global.json {
        let segments: Vec<Value> = report
            .segments
            .iter()
            .map(|s| {
                let mut value = report_json(&s.report, &s.log.path, public_key, &fingerprint);
                value["Log"] = json!(s.log.name);
                value["Live"] = json!(s.live);
                value["Legacy"] = json!(s.log.legacy);
                value["Verdict"] = json!(verdict_name(s.verdict()));
                value["Records"] = json!(s.requests);
                value["Writers"] = json!(s
                    .writers
                    .iter()
                    .map(|w| json!({
                        "Seq": w.seq,
                        "Started": w.started,
                        "Pid": w.pid,
                        "Host": w.host,
                        "Binary": w.binary,
                        "Uid": w.uid,
                        "Principal": w.principal,
                        "Records": w.records,
                    }))
                    .collect::<Vec<_>>());
                value
            })
            .collect();
        let problem = match (log_problem, report.problems.first()) {
            (Some((s, p)), _) => json!({
                "Kind": format!("{:?}", p.kind),
                "Description": p.kind.as_str(),
                "Log": s.log.name,
                "Line": p.line,
                "Seq": p.seq,
                "Detail": p.detail,
            }),
            (None, Some(p)) => json!({
                "Kind": format!("{:?}", p.kind),
                "Description": p.kind.as_str(),
                "Log": p.log,
                "Detail": p.detail,
            }),
            (None, None) => Value::Null,
        };
        print_json(&json!({
            "Directory": report.dir.display().to_string(),
            "PublicKey": public_key.display().to_string(),
            "KeyFingerprint": fingerprint,
            "Verdict": verdict_name(report.verdict()),
            "Records": report.requests(),
            "WriterRecords": report.records() - report.requests(),
            "Digests": report.segments.iter().map(|s| s.report.digests).sum::<u64>(),
            "UnsignedTail": report.segments.iter().filter(|s| !s.live).map(|s| s.report.unsigned_tail).sum::<u64>(),
            "Truncated": incomplete.and_then(|s| s.report.truncated).map(|t| json!({
                "Line": t.line,
                "Offset": t.offset,
                "Bytes": t.bytes,
            })),
            "Problem": problem,
            "Segments": segments,
        }));
    } else {
        print_fields(&[
            ("audit directory", report.dir.display().to_string()),
            (
                "public key",
                format!("{} (fingerprint {fingerprint})", public_key.display()),
            ),
            ("logs", report.segments.len().to_string()),
            ("requests verified", report.requests().to_string()),
        ]);
        for s in &report.segments {
            print_segment(s);
        }
        let mut fields = Vec::new();
        if let Some((s, p)) = log_problem {
            fields.push(("problem", p.kind.as_str().to_owned()));
            fields.push(("in log", s.log.name.clone()));
            fields.push(("at line", p.line.to_string()));
            fields.push(("seq", p.seq.map_or_else(|| "-".into(), |s| s.to_string())));
            fields.push(("detail", p.detail.clone()));
        }
        for p in &report.problems {
            fields.push(("problem", format!("{}: {}: {}", p.kind, p.log, p.detail)));
        }
        fields.push(("verdict", verdict_line(report.verdict())));
        println!();
        print_fields(&fields);
    }
    match report.verdict() {
        Verdict::Intact => Ok(()),
        Verdict::Tampered => {
            let message = match (log_problem, report.problems.first()) {
                (Some((s, p)), _) => format!(
                    "the audit log {} was tampered with: {} at line {}{}",
                    s.log.path.display(),
                    p.kind,
                    p.line,
                    p.seq.map(|s| format!(" (seq {s})")).unwrap_or_default()
                ),
                (None, Some(p)) => format!(
                    "the audit directory {} was tampered with: {} {}: {}",
                    report.dir.display(),
                    p.kind,
                    p.log,
                    p.detail
                ),
                (None, None) => "the audit directory was tampered with".into(),
            };
            Err(Failure {
                code: "AuditLogTampered".into(),
                message,
                exit: AUDIT_TAMPERED,
            })
        }
        Verdict::Truncated | Verdict::UnsignedTail => Err(incomplete_failure(
            &incomplete.map_or_else(|| report.dir.clone(), |s| s.log.path.clone()),
            incomplete.is_some_and(|s| s.report.truncated.is_some()),
        )),
    }
}

fn print_segment(s: &SegmentReport) {
    println!();
    let mut fields = vec![
        (
            "log",
            format!(
                "{}{}{}",
                s.log.name,
                if s.live {
                    " (live: a running process writes it)"
                } else {
                    ""
                },
                if s.log.legacy {
                    " (from before segments)"
                } else {
                    ""
                }
            ),
        ),
        ("verdict", verdict_name(s.verdict()).to_owned()),
        ("requests", s.requests.to_string()),
        ("digests", s.report.digests.to_string()),
        (
            "unsigned tail",
            format!("{} records", s.report.unsigned_tail),
        ),
    ];
    if let Some(t) = s.report.truncated {
        fields.push((
            "truncated",
            format!(
                "line {} (byte {}) was cut after {} bytes",
                t.line, t.offset, t.bytes
            ),
        ));
    }
    for w in &s.writers {
        fields.push((
            "writer",
            format!(
                "seq {}: pid {} on {} ({}), uid {}, as {}, from {}: {} records",
                w.seq,
                w.pid.map_or_else(|| "?".into(), |p| p.to_string()),
                w.host,
                w.binary,
                w.uid.map_or_else(|| "?".into(), |u| u.to_string()),
                w.principal,
                w.started,
                w.records
            ),
        ));
    }
    print_fields(&fields);
}

fn verdict_line(verdict: Verdict) -> String {
    let name = verdict_name(verdict);
    match verdict {
        Verdict::Intact => {
            format!("{name}: every record is chained and covered by a signed digest")
        }
        Verdict::Tampered => format!("{name}: the log was changed after it was written"),
        Verdict::Truncated => {
            format!("{name}: no tampering; the last line was cut short by a crash")
        }
        Verdict::UnsignedTail => {
            format!("{name}: no tampering; the last records are not yet signed")
        }
    }
}

fn incomplete_failure(log: &Path, truncated: bool) -> Failure {
    Failure {
        code: "AuditLogIncomplete".into(),
        message: format!(
            "no tampering found, but the end of {} is not covered by a signed digest ({}): \
             what a crash leaves; the next audited keyplane command on this data directory \
             cuts a torn line and signs the records",
            log.display(),
            if truncated {
                "its last line was cut short"
            } else {
                "records after the last digest"
            }
        ),
        exit: AUDIT_INCOMPLETE,
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
    fields.push(("verdict", verdict_line(report.verdict())));
    print_fields(&fields);
}

fn tail(ctx: &Context, n: usize, log: Option<PathBuf>, digests: bool) -> Result<(), Failure> {
    let paths: Vec<PathBuf> = match log {
        Some(log) => vec![open_log(log)?],
        None => directory_logs(ctx)?.into_iter().map(|l| l.path).collect(),
    };
    // The last `n` of each log, newest first, then merged by time (records by `eventTime`,
    // digests by `digestTime`; ties keep each log's order).
    let mut lines: Vec<(String, usize, usize, Value)> = Vec::new();
    for (file, log) in paths.iter().enumerate() {
        let mut taken = 0;
        lines_backwards(log, |line| {
            if taken >= n {
                return false;
            }
            let is_record = line.starts_with(b"{\"seq\":");
            if (is_record && !is_writer_record(line)) || (!is_record && digests) {
                let value: Value = serde_json::from_slice(line)
                    .unwrap_or_else(|_| json!({ "unparsed": String::from_utf8_lossy(line) }));
                let time = text(&value["eventTime"]) + &text(&value["digestTime"]);
                lines.push((time, file, usize::MAX - taken, value));
                taken += 1;
            }
            true
        })
        .map_err(|e| internal(format!("could not read {}: {e}", log.display())))?;
    }
    lines.sort_by(|a, b| (&a.0, a.1, a.2).cmp(&(&b.0, b.1, b.2)));
    let skip = lines.len().saturating_sub(n);
    let lines: Vec<Value> = lines.into_iter().skip(skip).map(|l| l.3).collect();
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

/// A segment's writer record (who writes from there on), not a request.
fn is_writer_record(line: &[u8]) -> bool {
    let marker = format!(",\"eventName\":\"{}\"", keyplane::audit::WRITER_EVENT);
    line.windows(marker.len()).any(|w| w == marker.as_bytes())
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use crate::output::date;

    #[test]
    fn rfc3339_times_parse_back_to_milliseconds() {
        for ms in [0_i64, 951_782_400_000, 1_700_000_000_123, 4_102_444_799_999] {
            let text = keyplane::audit::rfc3339_millis(ms);
            assert_eq!(
                keyplane::audit::parse_rfc3339_millis(&text),
                Some(ms),
                "{text}"
            );
            assert_eq!(date(ms), format!("{}Z", &text[..19]));
        }
        assert_eq!(
            keyplane::audit::parse_rfc3339_millis("2024-05-01T12:00:00Z"),
            Some(1_714_564_800_000)
        );
        assert_eq!(keyplane::audit::parse_rfc3339_millis("yesterday"), None);
    }
}
