//! The audit view: the log as a searchable table (time, principal, operation, key, outcome,
//! source), one record's full JSON, and the chain's verification status as `keyplane audit
//! verify` reports it (the engine's [`keyplane::audit::verify_directory`]), any break named.
//!
//! Only the account's root principal may read it: the log records every principal's requests, and
//! no key policy governs it. Logs are read newest first, each from its end, at most
//! [`SCAN_LINES`] lines per page; a search shows up to [`PAGE`] matches and links to older ones.
//! Audit records never hold plaintext or key material (the engine writes names, algorithms and
//! sizes only), so showing one whole is safe.

use std::path::Path;

use http::StatusCode;
use serde_json::Value as Json;

use super::answer::{fields, query_string, text, Answer};
use super::config::AuditPaths;
use super::signed::Signed;
use super::template::{element, render, Html};
use keyplane::audit::{lines_backwards, Verdict};

/// Matches per page.
pub const PAGE: usize = 100;
/// Lines read per page at most.
pub const SCAN_LINES: usize = 200_000;

fn forbidden(s: &Signed<'_>) -> Option<Answer> {
    if s.is_account_root() {
        return None;
    }
    Some(s.page(
        StatusCode::FORBIDDEN,
        "Audit",
        Html::join([
            element("h1", "Audit"),
            element(
                "p",
                "Only the account's root principal may read the audit log: it records every \
                 principal's requests.",
            ),
        ]),
    ))
}

/// The audit log's paths, or the page that says this server keeps none.
fn paths(s: &Signed<'_>) -> Result<AuditPaths, Box<Answer>> {
    s.console.config.audit.clone().ok_or_else(|| {
        Box::new(s.page(
            StatusCode::NOT_FOUND,
            "Audit",
            Html::join([
                element("h1", "Audit"),
                element(
                    "p",
                    "This server keeps no audit log (it was started with audit off).",
                ),
            ]),
        ))
    })
}

/// One table row's fields.
struct Row {
    log: String,
    seq: String,
    time: String,
    principal: String,
    operation: String,
    key: String,
    outcome: String,
    source: String,
}

fn row(log: &str, v: &Json) -> Row {
    let key = v["resources"]
        .get(0)
        .map(|r| text(&r["ARN"]))
        .or_else(|| v["requestParameters"].get("keyId").map(text))
        .unwrap_or_default();
    let outcome = match v.get("errorCode") {
        Some(code) => text(code),
        None => "OK".into(),
    };
    Row {
        log: log.to_owned(),
        seq: text(&v["seq"]),
        time: text(&v["eventTime"]),
        principal: text(&v["userIdentity"]["arn"]),
        operation: text(&v["eventName"]),
        key,
        outcome,
        source: format!("{} {}", text(&v["sourceIPAddress"]), text(&v["userAgent"]))
            .trim()
            .to_owned(),
    }
}

fn matches(r: &Row, q: &str, op: &str, outcome: &str) -> bool {
    let lower = |s: &str| s.to_lowercase();
    (op.is_empty() || r.operation == op)
        && match outcome {
            "ok" => r.outcome == "OK",
            "error" => r.outcome != "OK",
            _ => true,
        }
        && (q.is_empty()
            || [
                &r.principal,
                &r.operation,
                &r.key,
                &r.outcome,
                &r.source,
                &r.time,
            ]
            .iter()
            .any(|f| lower(f).contains(&lower(q))))
}

pub(crate) async fn list(s: &Signed<'_>) -> Answer {
    if let Some(refusal) = forbidden(s) {
        return refusal;
    }
    let paths = match paths(s) {
        Ok(p) => p,
        Err(a) => return *a,
    };
    let q = s.req.q("q").trim().to_owned();
    let op = s.req.q("op").trim().to_owned();
    let outcome = s.req.q("outcome").to_owned();
    // `before`: only records older than this (log index, seq), for the next page.
    let before = s.req.q("before").to_owned();
    let (q2, op2, outcome2, before2) = (q.clone(), op.clone(), outcome.clone(), before.clone());
    let found =
        tokio::task::spawn_blocking(move || search(&paths.dir, &q2, &op2, &outcome2, &before2))
            .await;
    let (rows, next) = match found {
        Ok(Ok(found)) => found,
        Ok(Err(e)) => {
            return s.page(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Audit",
                element("p", &format!("The audit log could not be read: {e}")),
            )
        }
        Err(_) => return s.page(StatusCode::INTERNAL_SERVER_ERROR, "Audit", Html::default()),
    };
    let body: Vec<Html> = rows
        .iter()
        .map(|r| {
            render(
                "<tr><td>{{time}}</td><td>{{principal}}</td><td>{{operation}}</td><td>{{key}}</td>\
                 <td>{{outcome}}</td><td>{{source}}</td><td><a href=\"/audit/record?{{q}}\">seq {{seq}}</a></td></tr>",
                &[
                    ("time", r.time.as_str().into()),
                    ("principal", r.principal.as_str().into()),
                    ("operation", r.operation.as_str().into()),
                    ("key", r.key.as_str().into()),
                    ("outcome", r.outcome.as_str().into()),
                    ("source", r.source.as_str().into()),
                    ("seq", r.seq.as_str().into()),
                    ("q", query_string(&[("log", &r.log), ("seq", &r.seq)]).into()),
                ],
            )
        })
        .collect();
    let next_link = next.map_or_else(Html::default, |b| {
        render(
            r#"<a href="/audit?{{q}}" rel="next">Older records</a>"#,
            &[(
                "q",
                query_string(&[
                    ("q", &q),
                    ("op", &op),
                    ("outcome", &outcome),
                    ("before", &b),
                ])
                .into(),
            )],
        )
    });
    let main = render(
        include_str!("templates/audit.html"),
        &[
            ("q", q.as_str().into()),
            ("op", op.as_str().into()),
            (
                "outcome_options",
                Html::join([
                    Html::trusted_static(r#"<option value="">any</option>"#),
                    super::template::options(["ok", "error"], &outcome),
                ])
                .into(),
            ),
            (
                "count",
                format!("{} records shown, newest first.", rows.len()).into(),
            ),
            ("rows", Html::join(body).into()),
            ("next", next_link.into()),
        ],
    );
    s.page(StatusCode::OK, "Audit", main)
}

/// Up to [`PAGE`] matching records, newest first, and the `before` of the next page.
fn search(
    dir: &Path,
    q: &str,
    op: &str,
    outcome: &str,
    before: &str,
) -> Result<(Vec<Row>, Option<String>), String> {
    let logs = keyplane::audit::list_logs(dir).map_err(|e| e.to_string())?;
    // Newest first: segments are named by start time, the legacy log is the oldest.
    let (before_log, before_seq) = before
        .split_once(':')
        .and_then(|(l, s)| Some((l.parse::<usize>().ok()?, s.parse::<u64>().ok()?)))
        .unwrap_or((usize::MAX, u64::MAX));
    let mut rows = Vec::new();
    let mut read = 0usize;
    let mut next = None;
    for (index, log) in logs.iter().enumerate().rev() {
        if index > before_log {
            continue;
        }
        let mut last_seen = None;
        let mut stop = false;
        lines_backwards(&log.path, |line| {
            read += 1;
            if !line.starts_with(b"{\"seq\":") {
                return true; // a digest line
            }
            let Ok(v) = serde_json::from_slice::<Json>(line) else {
                return true;
            };
            let seq = v["seq"].as_u64().unwrap_or(0);
            if index == before_log && seq >= before_seq {
                return true;
            }
            if v["eventName"] == keyplane::audit::WRITER_EVENT {
                return true;
            }
            last_seen = Some(seq);
            let r = row(&log.name, &v);
            if matches(&r, q, op, outcome) {
                rows.push(r);
            }
            if rows.len() >= PAGE || read >= SCAN_LINES {
                stop = true;
                return false;
            }
            true
        })
        .map_err(|e| format!("{}: {e}", log.name))?;
        if stop {
            next = last_seen.map(|seq| format!("{index}:{seq}"));
            break;
        }
    }
    Ok((rows, next))
}

pub(crate) async fn record(s: &Signed<'_>) -> Answer {
    if let Some(refusal) = forbidden(s) {
        return refusal;
    }
    let paths = match paths(s) {
        Ok(p) => p,
        Err(a) => return *a,
    };
    let name = s.req.q("log").to_owned();
    let Ok(seq) = s.req.q("seq").parse::<u64>() else {
        return s.page(
            StatusCode::BAD_REQUEST,
            "Audit record",
            element("p", "No such record."),
        );
    };
    let found = tokio::task::spawn_blocking(move || -> Result<Option<Json>, String> {
        // Only a log the directory lists: the name is never used as a path.
        let logs = keyplane::audit::list_logs(&paths.dir).map_err(|e| e.to_string())?;
        let Some(log) = logs.into_iter().find(|l| l.name == name) else {
            return Ok(None);
        };
        let mut found = None;
        lines_backwards(&log.path, |line| {
            if !line.starts_with(b"{\"seq\":") {
                return true;
            }
            match serde_json::from_slice::<Json>(line) {
                Ok(v) if v["seq"].as_u64() == Some(seq) => {
                    found = Some(v);
                    false
                }
                _ => true,
            }
        })
        .map_err(|e| e.to_string())?;
        Ok(found)
    })
    .await;
    match found {
        Ok(Ok(Some(v))) => {
            let pretty = serde_json::to_string_pretty(&v).unwrap_or_default();
            let main = render(
                include_str!("templates/audit_record.html"),
                &[
                    ("seq", seq.into()),
                    ("log", s.req.q("log").into()),
                    ("json", pretty.into()),
                ],
            );
            s.page(StatusCode::OK, "Audit record", main)
        }
        _ => s.page(
            StatusCode::NOT_FOUND,
            "Audit record",
            Html::join([
                element("h1", "Audit record"),
                element("p", "No such record."),
            ]),
        ),
    }
}

/// The verdict's name and sentence, as `keyplane audit verify` prints them.
fn verdict_text(verdict: Verdict) -> (&'static str, &'static str) {
    match verdict {
        Verdict::Intact => (
            "INTACT",
            "every record is chained and covered by a signed digest",
        ),
        Verdict::Tampered => ("TAMPERED", "the log was changed after it was written"),
        Verdict::Truncated => (
            "TRUNCATED",
            "no tampering; the last line was cut short by a crash",
        ),
        Verdict::UnsignedTail => (
            "UNSIGNED_TAIL",
            "no tampering; the last records are not yet signed",
        ),
    }
}

pub(crate) async fn verify(s: &Signed<'_>) -> Answer {
    if let Some(refusal) = forbidden(s) {
        return refusal;
    }
    let paths = match paths(s) {
        Ok(p) => p,
        Err(a) => return *a,
    };
    let report = tokio::task::spawn_blocking(move || -> Result<_, String> {
        let der = std::fs::read(&paths.public_key)
            .map_err(|e| format!("the audit public key {}: {e}", paths.public_key.display()))?;
        let report =
            keyplane::audit::verify_directory(&paths.dir, &der).map_err(|e| e.to_string())?;
        Ok((report, keyplane::audit::key_fingerprint(&der)))
    })
    .await;
    let (report, fingerprint) = match report {
        Ok(Ok(found)) => found,
        Ok(Err(e)) => {
            return s.page(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Audit verification",
                Html::join([element("h1", "Audit verification"), element("p", &e)]),
            )
        }
        Err(_) => return s.page(StatusCode::INTERNAL_SERVER_ERROR, "Audit", Html::default()),
    };
    let (name, sentence) = verdict_text(report.verdict());
    let mut problems = Vec::new();
    for seg in &report.segments {
        if let Some(p) = &seg.report.problem {
            problems.push(format!(
                "{}: {} at line {}{}: {}",
                seg.log.name,
                p.kind.as_str(),
                p.line,
                p.seq.map(|s| format!(" (seq {s})")).unwrap_or_default(),
                p.detail
            ));
        }
    }
    for p in &report.problems {
        problems.push(format!("{}: {}: {}", p.log, p.kind.as_str(), p.detail));
    }
    let mut segments = Vec::new();
    for seg in &report.segments {
        let (v, _) = verdict_text(seg.verdict());
        segments.push(render(
            "<tr><td>{{log}}</td><td>{{live}}</td><td>{{verdict}}</td><td>{{requests}}</td><td>{{digests}}</td><td>{{unsigned}}</td></tr>",
            &[
                ("log", seg.log.name.as_str().into()),
                ("live", if seg.live { "yes" } else { "no" }.into()),
                ("verdict", v.into()),
                ("requests", seg.requests.into()),
                ("digests", seg.report.digests.into()),
                ("unsigned", seg.report.unsigned_tail.into()),
            ],
        ));
    }
    let problems_html = if problems.is_empty() {
        element("p", "No break found.")
    } else {
        Html::join(
            std::iter::once(Html::trusted_static(
                "<ul class=\"alert\" id=\"audit-problems\">",
            ))
            .chain(problems.iter().map(|p| element("li", p)))
            .chain(std::iter::once(Html::trusted_static("</ul>"))),
        )
    };
    let main = Html::join([
        element("h1", "Audit verification"),
        render(
            r#"<p id="audit-verdict" role="status"><strong>{{name}}</strong>: {{sentence}}</p>"#,
            &[("name", name.into()), ("sentence", sentence.into())],
        ),
        fields(&[
            ("Requests verified", report.requests().into()),
            ("Records verified", report.records().into()),
            ("Public key fingerprint", fingerprint.into()),
        ]),
        problems_html,
        render(
            "<div class=\"table-wrap\"><table><thead><tr><th scope=\"col\">Log</th><th scope=\"col\">Live</th><th scope=\"col\">Verdict</th>\
             <th scope=\"col\">Requests</th><th scope=\"col\">Digests</th><th scope=\"col\">Unsigned tail</th></tr></thead><tbody>{{rows}}</tbody></table></div>",
            &[("rows", Html::join(segments).into())],
        ),
        Html::trusted_static(r#"<p><a href="/audit">Back to the audit log</a></p>"#),
    ]);
    s.page(StatusCode::OK, "Audit verification", main)
}
