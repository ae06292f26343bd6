//! Verifying an audit directory: every log in it, who wrote what, and the logs that are gone.
//!
//! [`verify_directory`] verifies each log of the directory with [`verify`] (the legacy
//! `audit.log` first, then the segments in name order), attributes each record to the writer
//! record before it, and checks the directory as a whole:
//!
//! | kind | what the directory shows |
//! |------|--------------------------|
//! | [`DirectoryProblemKind::LogMissing`] | a verified writer record names a log that is not there (deleted) |
//! | [`DirectoryProblemKind::LogMisnamed`] | a writer record names another segment than the file it stands in (renamed, or copied from elsewhere) |
//! | [`DirectoryProblemKind::NoWriterRecord`] | a segment whose first record is not a writer record (a log put there by hand) |
//!
//! A segment that a running process holds (its `flock`) is **live**: its last records may not be
//! signed yet and its last line may be half written, which is not reported as an incomplete tail.
//! A segment nobody holds is locked (shared) while it is read, so that no process takes it up
//! meanwhile.

use std::fmt;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use super::chain::parse_record_line;
use super::segments::{list_logs, try_flock, LogFile, WRITER_EVENT};
use super::verify::{verify, Verdict, VerifyReport};
use super::AuditError;

/// A process that wrote a segment, from its writer record.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Writer {
    /// The writer record's `seq`.
    pub seq: u64,
    /// When it took the segment (the record's `eventTime`).
    pub started: String,
    /// Its process id.
    pub pid: Option<u64>,
    /// Its host name.
    pub host: String,
    /// Its executable.
    pub binary: String,
    /// Its user id.
    pub uid: Option<u64>,
    /// The principal it names (an ARN), if any.
    pub principal: String,
    /// The records it wrote after its writer record (before the next writer's, or the end of what
    /// verified).
    pub records: u64,
}

/// What was found in one log of the directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SegmentReport {
    /// The log.
    pub log: LogFile,
    /// A running process holds it.
    pub live: bool,
    /// Its chain and digests.
    pub report: VerifyReport,
    /// Its writers, in order.
    pub writers: Vec<Writer>,
    /// Verified records that are not writer records (requests).
    pub requests: u64,
}

impl SegmentReport {
    /// Its result; a live segment's unsigned or half-written tail counts as intact.
    pub fn verdict(&self) -> Verdict {
        match self.report.verdict() {
            Verdict::Truncated | Verdict::UnsignedTail if self.live => Verdict::Intact,
            verdict => verdict,
        }
    }
}

/// What kind of problem the directory as a whole shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DirectoryProblemKind {
    /// A log named by a writer record is gone.
    LogMissing,
    /// A writer record names another segment than its own file.
    LogMisnamed,
    /// A segment does not start with a writer record.
    NoWriterRecord,
}

impl DirectoryProblemKind {
    /// A short name.
    pub fn as_str(self) -> &'static str {
        match self {
            DirectoryProblemKind::LogMissing => "deleted segment",
            DirectoryProblemKind::LogMisnamed => "renamed or copied segment",
            DirectoryProblemKind::NoWriterRecord => "segment without a writer record",
        }
    }
}

impl fmt::Display for DirectoryProblemKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A problem of the directory as a whole.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirectoryProblem {
    /// What kind.
    pub kind: DirectoryProblemKind,
    /// The log concerned (the missing one, the misnamed one...).
    pub log: String,
    /// What exactly, in words.
    pub detail: String,
}

/// What [`verify_directory`] found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirectoryReport {
    /// The audit directory.
    pub dir: PathBuf,
    /// Each log, in the order read.
    pub segments: Vec<SegmentReport>,
    /// Problems of the directory as a whole.
    pub problems: Vec<DirectoryProblem>,
}

impl DirectoryReport {
    /// The overall result: the most serious of the logs' (a live segment's tail does not count)
    /// and the directory's problems.
    pub fn verdict(&self) -> Verdict {
        let worst = self
            .segments
            .iter()
            .map(SegmentReport::verdict)
            .min_by_key(|v| *v as u8)
            .unwrap_or(Verdict::Intact);
        if self.problems.is_empty() {
            worst
        } else {
            Verdict::Tampered
        }
    }

    /// Verified records in all logs, writer records included.
    pub fn records(&self) -> u64 {
        self.segments.iter().map(|s| s.report.records).sum()
    }

    /// Verified request records (not writer records) in all logs.
    pub fn requests(&self) -> u64 {
        self.segments.iter().map(|s| s.requests).sum()
    }
}

impl fmt::Display for DirectoryReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for s in &self.segments {
            writeln!(
                f,
                "{}{}: {}",
                s.log.name,
                if s.live { " (live)" } else { "" },
                s.report
            )?;
        }
        for p in &self.problems {
            writeln!(f, "TAMPERED: {} {}: {}", p.kind, p.log, p.detail)?;
        }
        Ok(())
    }
}

/// Verifies every log of the audit directory `dir` under the audit public key (DER
/// SubjectPublicKeyInfo). `Ok` with the findings, tampering included; `Err` only when the key is
/// unusable or a log cannot be read.
pub fn verify_directory(
    dir: &Path,
    public_key_spki_der: &[u8],
) -> Result<DirectoryReport, AuditError> {
    let logs = list_logs(dir)?;
    let mut segments = Vec::with_capacity(logs.len());
    let mut problems = Vec::new();
    let mut named: Vec<(String, String, u64)> = Vec::new();
    for log in logs.iter().cloned() {
        let file = match File::open(&log.path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(AuditError::io("opening", &log.path, &e)),
        };
        // Held (shared) while it is read, so that no writer takes it up meanwhile.
        let live = !log.legacy
            && !try_flock(&file, false).map_err(|e| AuditError::io("locking", &log.path, &e))?;
        let report = verify(&log.path, public_key_spki_der)?;
        let (writers, requests, first_is_writer) = writers_of(&file, &log, &report)?;
        drop(file);
        for writer in &writers {
            for other in &writer.others {
                named.push((other.clone(), log.name.clone(), writer.writer.seq));
            }
            if writer.segment != log.name {
                problems.push(DirectoryProblem {
                    kind: DirectoryProblemKind::LogMisnamed,
                    log: log.name.clone(),
                    detail: format!(
                        "its writer record (seq {}) was written for {}: the file was renamed, or \
                         copied from another audit directory",
                        writer.writer.seq, writer.segment
                    ),
                });
            }
        }
        if !log.legacy && report.records > 0 && !first_is_writer {
            problems.push(DirectoryProblem {
                kind: DirectoryProblemKind::NoWriterRecord,
                log: log.name.clone(),
                detail: "its first record is not a writer record: no keyplane process started \
                         this segment"
                    .into(),
            });
        }
        segments.push(SegmentReport {
            log,
            live,
            report,
            writers: writers.into_iter().map(|w| w.writer).collect(),
            requests,
        });
    }
    let mut missing: Vec<String> = Vec::new();
    for (other, by, seq) in named {
        if missing.contains(&other) || logs.iter().any(|l| l.name == other) {
            continue;
        }
        problems.push(DirectoryProblem {
            kind: DirectoryProblemKind::LogMissing,
            log: other.clone(),
            detail: format!("named by the writer record at seq {seq} of {by}, but not there"),
        });
        missing.push(other);
    }
    Ok(DirectoryReport {
        dir: dir.to_owned(),
        segments,
        problems,
    })
}

/// A writer record as read, with what the directory check needs.
struct WriterRecord {
    writer: Writer,
    segment: String,
    others: Vec<String>,
}

/// The writer records among the verified records of `file`, the number of other records, and
/// whether record 1 is a writer record.
fn writers_of(
    file: &File,
    log: &LogFile,
    report: &VerifyReport,
) -> Result<(Vec<WriterRecord>, u64, bool), AuditError> {
    let last = report.last_seq.unwrap_or(0);
    let mut writers: Vec<WriterRecord> = Vec::new();
    let mut requests = 0;
    let mut first_is_writer = false;
    let mut expected = 1;
    let mut reader = BufReader::with_capacity(1 << 20, file);
    let mut line = Vec::new();
    while expected <= last {
        line.clear();
        let n = reader
            .read_until(b'\n', &mut line)
            .map_err(|e| AuditError::io("reading", &log.path, &e))?;
        if n == 0 || line.pop() != Some(b'\n') {
            break;
        }
        let Some(record) = parse_record_line(&line) else {
            continue;
        };
        if record.seq != expected {
            break;
        }
        expected += 1;
        match writer_record(&line) {
            Some(mut w) => {
                w.writer.seq = record.seq;
                first_is_writer |= record.seq == 1;
                writers.push(w);
            }
            None => {
                requests += 1;
                if let Some(w) = writers.last_mut() {
                    w.writer.records += 1;
                }
            }
        }
    }
    Ok((writers, requests, first_is_writer))
}

fn writer_record(line: &[u8]) -> Option<WriterRecord> {
    let marker = format!(",\"eventName\":\"{WRITER_EVENT}\"");
    if !line.windows(marker.len()).any(|w| w == marker.as_bytes()) {
        return None;
    }
    let value: serde_json::Value = serde_json::from_slice(line).ok()?;
    if value["eventName"] != WRITER_EVENT {
        return None;
    }
    let p = &value["requestParameters"];
    let text = |v: &serde_json::Value| v.as_str().unwrap_or_default().to_owned();
    Some(WriterRecord {
        writer: Writer {
            seq: 0,
            started: text(&value["eventTime"]),
            pid: p["pid"].as_u64(),
            host: text(&p["host"]),
            binary: text(&p["binary"]),
            uid: p["uid"].as_u64(),
            principal: text(&value["userIdentity"]["arn"]),
            records: 0,
        },
        segment: text(&p["segment"]),
        others: p["otherLogs"]
            .as_array()
            .map(|a| a.iter().map(text).collect())
            .unwrap_or_default(),
    })
}
