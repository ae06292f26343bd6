//! Verifying a log: the chain, the digests, and what exactly is wrong when something is.
//!
//! [`verify`] reads a log front to back. Records must be numbered 1, 2, 3, ... and each must
//! follow the previous record's chain (see the chain module). Each digest must be signed by the
//! given key, stand right after the record it ends at, state that record's chain, start where the
//! previous digest ended and name the previous digest's hash.
//!
//! At the first line that breaks a rule, [`verify`] reads ahead (up to [`AHEAD_LINES`] lines or
//! [`AHEAD_BYTES`] bytes) to tell what happened, and stops:
//!
//! | kind | what the log shows |
//! |------|--------------------|
//! | [`ProblemKind::Modified`] | record N is in its place but its bytes (content, `seq` or `chain`) were changed |
//! | [`ProblemKind::Deleted`] | records are missing: a gap in `seq`, or records a digest covers are gone |
//! | [`ProblemKind::Reordered`] | a genuine record stands out of its place |
//! | [`ProblemKind::Inserted`] | a line that is no part of the chain (forged, or a copy of another record) |
//! | [`ProblemKind::Malformed`] | a line that is neither a record nor a digest, and no other kind explains it |
//! | [`ProblemKind::DigestWrongKey`] | a digest names another signing key |
//! | [`ProblemKind::DigestSignatureInvalid`] | a digest's signature does not verify (forged or altered digest) |
//! | [`ProblemKind::DigestMismatch`] | a validly signed digest does not match the chain (records rewritten and re-chained, or the digest moved) |
//! | [`ProblemKind::DigestMissing`] | a digest between two others was removed or replaced |
//!
//! Two findings are not tampering and are reported beside the problem: a last line without its
//! newline ([`VerifyReport::truncated`], a crash during a write: that line was never acknowledged)
//! and records after the last digest ([`VerifyReport::unsigned_tail`]: their chain verifies, but no
//! signature covers them yet).

use std::fmt;
use std::fs::File;
use std::io::{self, BufRead, BufReader};
use std::path::Path;

use super::chain::{parse_record_line, stated_chain, to_hex, RecordLine, GENESIS_CHAIN};
use super::digest::{digest_line_hash, parse_digest_line, DigestVerifier, DIGEST_PREFIX};
use super::AuditError;

/// Most lines read ahead to explain a problem.
pub const AHEAD_LINES: usize = 100_000;
/// Most bytes read ahead to explain a problem.
pub const AHEAD_BYTES: usize = 64 << 20;

/// What kind of tampering a problem shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ProblemKind {
    /// A record's bytes were changed: it no longer matches the chain.
    Modified,
    /// Records are missing (a gap in the sequence).
    Deleted,
    /// A genuine record stands out of its place.
    Reordered,
    /// A line that is not part of the chain was added.
    Inserted,
    /// A line that is neither a record nor a digest.
    Malformed,
    /// A digest's signature does not verify under the key: forged or altered.
    DigestSignatureInvalid,
    /// A digest names another signing key.
    DigestWrongKey,
    /// A validly signed digest does not match the records before it.
    DigestMismatch,
    /// A digest was removed or replaced: the next one does not continue from it.
    DigestMissing,
}

impl ProblemKind {
    /// A short name: `modified record`, `deleted record`, ...
    pub fn as_str(self) -> &'static str {
        match self {
            ProblemKind::Modified => "modified record",
            ProblemKind::Deleted => "deleted record",
            ProblemKind::Reordered => "reordered record",
            ProblemKind::Inserted => "inserted record",
            ProblemKind::Malformed => "malformed line",
            ProblemKind::DigestSignatureInvalid => "forged digest (invalid signature)",
            ProblemKind::DigestWrongKey => "digest signed by another key",
            ProblemKind::DigestMismatch => "digest does not match the chain",
            ProblemKind::DigestMissing => "missing digest",
        }
    }
}

impl fmt::Display for ProblemKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The first problem found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// What kind.
    pub kind: ProblemKind,
    /// The line (from 1) where it shows.
    pub line: u64,
    /// The record concerned: the modified one, the first missing one, the misplaced one...
    pub seq: Option<u64>,
    /// What exactly, in words.
    pub detail: String,
}

/// A last line cut short: a write that a crash interrupted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TruncatedTail {
    /// Its line number (from 1).
    pub line: u64,
    /// Its byte offset.
    pub offset: u64,
    /// How many bytes of it there are.
    pub bytes: u64,
}

/// The overall result, most serious first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// A problem was found: see [`VerifyReport::problem`].
    Tampered,
    /// No tampering; the last line was cut short by a crash.
    Truncated,
    /// No tampering; some records after the last digest are not yet signed.
    UnsignedTail,
    /// Every record is chained and covered by a valid digest.
    Intact,
}

/// What [`verify`] found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VerifyReport {
    /// Records whose chain verified (before the problem, if any).
    pub records: u64,
    /// Digests whose signature and position verified.
    pub digests: u64,
    /// The last record whose chain verified.
    pub last_seq: Option<u64>,
    /// The last record covered by a valid digest.
    pub signed_through: Option<u64>,
    /// Verified records after the last valid digest.
    pub unsigned_tail: u64,
    /// A last line cut short, if any.
    pub truncated: Option<TruncatedTail>,
    /// The first problem, if any.
    pub problem: Option<Problem>,
}

impl VerifyReport {
    /// True when no tampering was found (a truncated or unsigned tail may remain).
    pub fn is_ok(&self) -> bool {
        self.problem.is_none()
    }

    /// The overall result.
    pub fn verdict(&self) -> Verdict {
        if self.problem.is_some() {
            Verdict::Tampered
        } else if self.truncated.is_some() {
            Verdict::Truncated
        } else if self.unsigned_tail > 0 {
            Verdict::UnsignedTail
        } else {
            Verdict::Intact
        }
    }
}

impl fmt::Display for VerifyReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(problem) = &self.problem {
            write!(f, "TAMPERED: {} at line {}", problem.kind, problem.line)?;
            if let Some(seq) = problem.seq {
                write!(f, " (seq {seq})")?;
            }
            write!(f, ": {}; ", problem.detail)?;
        } else {
            f.write_str("OK: ")?;
        }
        write!(
            f,
            "{} records verified, {} digests",
            self.records, self.digests
        )?;
        match self.signed_through {
            Some(seq) => write!(f, ", signed through seq {seq}")?,
            None => f.write_str(", nothing signed")?,
        }
        if self.unsigned_tail > 0 {
            write!(
                f,
                "; unsigned tail: {} records after the last digest",
                self.unsigned_tail
            )?;
        }
        if let Some(cut) = &self.truncated {
            write!(
                f,
                "; truncated: line {} (byte {}) was cut after {} bytes by an interrupted write",
                cut.line, cut.offset, cut.bytes
            )?;
        }
        Ok(())
    }
}

/// Verifies the log at `path` against the audit public key (DER SubjectPublicKeyInfo). Errors are
/// for an unreadable file or an unusable key; everything the log itself shows is in the report.
pub fn verify(path: &Path, public_key_spki_der: &[u8]) -> Result<VerifyReport, AuditError> {
    let verifier = DigestVerifier::new(public_key_spki_der)?;
    let file = File::open(path).map_err(|e| AuditError::io("opening", path, &e))?;
    let mut source = Lines {
        reader: BufReader::with_capacity(1 << 20, file),
        line: 0,
        offset: 0,
    };
    Verifier {
        verifier: &verifier,
        report: VerifyReport::default(),
        expected: 1,
        chain: GENESIS_CHAIN,
        chain_before: GENESIS_CHAIN,
        last_line: 0,
        last_digest_seq: 0,
        last_digest_hash: None,
    }
    .run(&mut source)
    .map_err(|e| AuditError::io("reading", path, &e))
}

/// One line of the file.
struct Line {
    number: u64,
    offset: u64,
    bytes: Vec<u8>,
    /// Whether it ended with a newline.
    complete: bool,
}

struct Lines {
    reader: BufReader<File>,
    line: u64,
    offset: u64,
}

impl Lines {
    fn next_line(&mut self) -> io::Result<Option<Line>> {
        let mut bytes = Vec::new();
        let read = self.reader.read_until(b'\n', &mut bytes)?;
        if read == 0 {
            return Ok(None);
        }
        self.line += 1;
        let offset = self.offset;
        self.offset += read as u64;
        let complete = bytes.last() == Some(&b'\n');
        if complete {
            bytes.pop();
        }
        Ok(Some(Line {
            number: self.line,
            offset,
            bytes,
            complete,
        }))
    }

    /// Complete lines after the current one, within the read-ahead limits.
    fn read_ahead(&mut self) -> io::Result<Vec<Line>> {
        let mut lines = Vec::new();
        let mut bytes = 0;
        while lines.len() < AHEAD_LINES && bytes < AHEAD_BYTES {
            match self.next_line()? {
                Some(line) if line.complete => {
                    bytes += line.bytes.len();
                    lines.push(line);
                }
                _ => break,
            }
        }
        Ok(lines)
    }
}

/// The records among lines read ahead, with their line numbers.
fn records_of(lines: &[Line]) -> Vec<(u64, RecordLine<'_>)> {
    lines
        .iter()
        .filter_map(|l| parse_record_line(&l.bytes).map(|r| (l.number, r)))
        .collect()
}

struct Verifier<'v> {
    verifier: &'v DigestVerifier,
    report: VerifyReport,
    /// The seq the next record must have.
    expected: u64,
    /// The chain value of the last verified record.
    chain: [u8; 32],
    /// The chain value before the last verified record, and that record's line.
    chain_before: [u8; 32],
    last_line: u64,
    last_digest_seq: u64,
    last_digest_hash: Option<[u8; 32]>,
}

impl Verifier<'_> {
    fn run(mut self, source: &mut Lines) -> io::Result<VerifyReport> {
        while let Some(line) = source.next_line()? {
            if !line.complete {
                self.report.truncated = Some(TruncatedTail {
                    line: line.number,
                    offset: line.offset,
                    bytes: line.bytes.len() as u64,
                });
                break;
            }
            let problem = if let Some(record) = parse_record_line(&line.bytes) {
                if record.seq == self.expected && record.follows(&self.chain) {
                    self.chain_before = self.chain;
                    self.chain = record.stated_chain;
                    self.last_line = line.number;
                    self.expected += 1;
                    self.report.records += 1;
                    self.report.last_seq = Some(record.seq);
                    self.report.unsigned_tail += 1;
                    continue;
                }
                let ahead = source.read_ahead()?;
                self.misplaced_record(line.number, &record, &records_of(&ahead))
            } else if line.bytes.starts_with(DIGEST_PREFIX) {
                match self.digest(source, &line)? {
                    None => continue,
                    Some(problem) => problem,
                }
            } else {
                let ahead = source.read_ahead()?;
                self.unreadable_line(&line, &records_of(&ahead))
            };
            self.report.problem = Some(problem);
            break;
        }
        Ok(self.report)
    }

    fn problem(&self, kind: ProblemKind, line: u64, seq: Option<u64>, detail: String) -> Problem {
        Problem {
            kind,
            line,
            seq,
            detail,
        }
    }

    /// A record line that is not the next record of the chain.
    fn misplaced_record(
        &mut self,
        line: u64,
        record: &RecordLine<'_>,
        ahead: &[(u64, RecordLine<'_>)],
    ) -> Problem {
        let expected = self.expected;
        let seq = record.seq;
        let next = ahead.first();
        if seq == expected {
            if let Some((next_line, next)) = next {
                if next.seq == expected && next.follows(&self.chain) {
                    return self.problem(
                        ProblemKind::Inserted,
                        line,
                        Some(seq),
                        format!(
                            "line {line} claims seq {seq} but is not part of the chain; the \
                             genuine record {seq} follows at line {next_line}"
                        ),
                    );
                }
            }
            return self.problem(
                ProblemKind::Modified,
                line,
                Some(seq),
                format!(
                    "chain mismatch at seq {seq}: the record's bytes do not hash to its chain \
                     value after record {}",
                    expected - 1
                ),
            );
        }
        if let Some((_, next)) = next {
            if next.seq == expected + 1 && next.follows(&record.stated_chain) {
                return self.problem(
                    ProblemKind::Modified,
                    line,
                    Some(expected),
                    format!("record {expected} states seq {seq}: its sequence number was changed"),
                );
            }
        }
        if self.report.records > 0
            && seq.checked_add(1) == Some(expected)
            && record.follows(&self.chain_before)
        {
            // Two lines claim `seq`, both chained after record seq - 1. The genuine one is the one
            // the log goes on from.
            let continues =
                next.is_some_and(|(_, n)| n.seq == expected && n.follows(&record.stated_chain));
            if continues {
                let forged = self.last_line;
                self.report.records -= 1;
                self.report.last_seq = seq.checked_sub(1).filter(|s| *s > 0);
                self.report.unsigned_tail = self.report.unsigned_tail.saturating_sub(1);
                return self.problem(
                    ProblemKind::Inserted,
                    forged,
                    Some(seq),
                    format!(
                        "lines {forged} and {line} both claim seq {seq} and both follow record {}; \
                         the log continues from line {line}, so line {forged} was inserted",
                        seq - 1
                    ),
                );
            }
        }
        if seq < expected {
            return self.problem(
                ProblemKind::Inserted,
                line,
                Some(seq),
                format!(
                    "line {line} repeats seq {seq}, which was already verified (a copied or \
                     forged record)"
                ),
            );
        }
        // seq > expected: record `expected` is missing here.
        let genuine = ahead
            .iter()
            .find(|(_, r)| r.seq == expected && r.follows(&self.chain));
        match genuine {
            Some((genuine_line, _)) => {
                let fits = ahead
                    .iter()
                    .any(|(_, r)| r.seq == seq - 1 && record.follows(&r.stated_chain));
                let repeated = ahead.iter().any(|(_, r)| r.seq == seq);
                if fits && !repeated {
                    self.problem(
                        ProblemKind::Reordered,
                        line,
                        Some(seq),
                        format!(
                            "record {seq} stands before record {expected}, which is at line \
                             {genuine_line}"
                        ),
                    )
                } else {
                    self.problem(
                        ProblemKind::Inserted,
                        line,
                        Some(seq),
                        format!(
                            "line {line} (seq {seq}) is not part of the chain; record \
                             {expected} follows at line {genuine_line}"
                        ),
                    )
                }
            }
            None => {
                let detail = if seq - expected == 1 {
                    format!(
                        "record {expected} is missing: seq jumps from {} to {seq}",
                        expected - 1
                    )
                } else {
                    format!(
                        "records {expected} to {} are missing: seq jumps from {} to {seq}",
                        seq - 1,
                        expected - 1
                    )
                };
                self.problem(ProblemKind::Deleted, line, Some(expected), detail)
            }
        }
    }

    /// A line that is neither a record nor a digest.
    fn unreadable_line(&self, line: &Line, ahead: &[(u64, RecordLine<'_>)]) -> Problem {
        let expected = self.expected;
        if let Some((next_line, next)) = ahead.first() {
            let stated = stated_chain(&line.bytes);
            if next.seq == expected + 1 && stated.is_some_and(|c| next.follows(&c)) {
                return self.problem(
                    ProblemKind::Modified,
                    line.number,
                    Some(expected),
                    format!("record {expected} was changed so that it no longer parses"),
                );
            }
            if next.seq == expected && next.follows(&self.chain) {
                return self.problem(
                    ProblemKind::Inserted,
                    line.number,
                    None,
                    format!(
                        "line {} is not a record; record {expected} follows at line {next_line}",
                        line.number
                    ),
                );
            }
        }
        self.problem(
            ProblemKind::Malformed,
            line.number,
            None,
            format!(
                "line {} is neither a record nor a digest (record {expected} was expected)",
                line.number
            ),
        )
    }

    /// Checks a digest line; `None` when it verifies.
    fn digest(&mut self, source: &mut Lines, line: &Line) -> io::Result<Option<Problem>> {
        let number = line.number;
        let parsed = match parse_digest_line(&line.bytes) {
            Ok(parsed) => parsed,
            Err(e) => {
                return Ok(Some(self.problem(
                    ProblemKind::Malformed,
                    number,
                    None,
                    format!("the digest at line {number} is malformed: {e}"),
                )))
            }
        };
        let digest = &parsed.digest;
        if self.last_digest_hash == Some(digest_line_hash(&line.bytes)) {
            return Ok(Some(self.problem(
                ProblemKind::Inserted,
                number,
                Some(digest.seq_last),
                format!("line {number} repeats the digest before it"),
            )));
        }
        if digest.key_fingerprint != self.verifier.fingerprint() {
            return Ok(Some(self.problem(
                ProblemKind::DigestWrongKey,
                number,
                Some(digest.seq_last),
                format!(
                    "the digest at line {number} names signing key {}, not the given key {}",
                    to_hex(&digest.key_fingerprint),
                    to_hex(&self.verifier.fingerprint())
                ),
            )));
        }
        if !self.verifier.signature_valid(&parsed) {
            return Ok(Some(self.problem(
                ProblemKind::DigestSignatureInvalid,
                number,
                Some(digest.seq_last),
                format!(
                    "the signature of the digest at line {number} does not verify: the digest \
                     was forged or altered"
                ),
            )));
        }
        let last = self.expected - 1;
        if digest.seq_last != last {
            let ahead = source.read_ahead()?;
            let ahead = records_of(&ahead);
            let covered_later = ahead
                .iter()
                .any(|(_, r)| r.seq > last && r.seq <= digest.seq_last);
            return Ok(Some(if digest.seq_last > last && !covered_later {
                let detail = format!(
                    "the digest at line {number} covers records through {} but the chain before \
                     it ends at record {last}: records {} to {} were deleted",
                    digest.seq_last,
                    last + 1,
                    digest.seq_last
                );
                self.problem(ProblemKind::Deleted, number, Some(last + 1), detail)
            } else {
                let detail = format!(
                    "the digest at line {number} covers records through {} but stands after \
                     record {last}",
                    digest.seq_last
                );
                self.problem(
                    ProblemKind::DigestMismatch,
                    number,
                    Some(digest.seq_last),
                    detail,
                )
            }));
        }
        if digest.last_chain != self.chain {
            return Ok(Some(self.problem(
                ProblemKind::DigestMismatch,
                number,
                Some(digest.seq_last),
                format!(
                    "the digest at line {number} signs chain {} for record {last}, but the records \
                     hash to {}: records up to {last} were rewritten",
                    to_hex(&digest.last_chain),
                    to_hex(&self.chain)
                ),
            )));
        }
        if digest.seq_first != self.last_digest_seq + 1
            || digest.previous_digest != self.last_digest_hash
        {
            return Ok(Some(self.problem(
                ProblemKind::DigestMissing,
                number,
                Some(digest.seq_first),
                format!(
                    "the digest at line {number} covers records {} to {} and does not continue \
                     the previous digest (through record {}): a digest was removed or replaced",
                    digest.seq_first, digest.seq_last, self.last_digest_seq
                ),
            )));
        }
        self.last_digest_seq = digest.seq_last;
        self.last_digest_hash = Some(digest_line_hash(&line.bytes));
        self.report.digests += 1;
        self.report.signed_through = Some(digest.seq_last);
        self.report.unsigned_tail = 0;
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::chain::append_record_line;
    use crate::audit::digest::{generate_signing_key, Digest, DigestSigner};
    use std::io::Write;

    /// A log of `records` records with a digest after every `every`, as lines (no newlines).
    fn build(signer: &DigestSigner, records: u64, every: u64) -> Vec<Vec<u8>> {
        let mut lines = Vec::new();
        let mut chain = GENESIS_CHAIN;
        let mut previous = None;
        let mut first = 1;
        for seq in 1..=records {
            let mut buf = Vec::new();
            let body = format!("{{\"eventName\":\"Encrypt\",\"n\":{seq}}}");
            chain = append_record_line(&mut buf, seq, body.as_bytes(), &chain);
            buf.pop();
            lines.push(buf);
            if seq % every == 0 {
                let line = signer
                    .sign_line(&Digest {
                        seq_first: first,
                        seq_last: seq,
                        last_chain: chain,
                        previous_digest: previous,
                        digest_time: "2024-05-01T12:00:00.000Z".into(),
                        key_fingerprint: signer.fingerprint(),
                    })
                    .unwrap();
                previous = Some(digest_line_hash(line.as_bytes()));
                first = seq + 1;
                lines.push(line.into_bytes());
            }
        }
        lines
    }

    fn check(signer: &DigestSigner, lines: &[Vec<u8>]) -> VerifyReport {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        for line in lines {
            file.write_all(line).unwrap();
            file.write_all(b"\n").unwrap();
        }
        file.flush().unwrap();
        verify(file.path(), signer.public_key_der()).unwrap()
    }

    fn signer() -> DigestSigner {
        DigestSigner::from_pkcs8(&generate_signing_key(crate::LockPolicy::default()).unwrap())
            .unwrap()
    }

    fn kind(report: &VerifyReport) -> Option<(ProblemKind, Option<u64>)> {
        report.problem.as_ref().map(|p| (p.kind, p.seq))
    }

    #[test]
    fn intact_log_and_unsigned_tail() {
        let signer = signer();
        let lines = build(&signer, 25, 10);
        let report = check(&signer, &lines);
        assert_eq!(report.records, 25);
        assert_eq!(report.digests, 2);
        assert_eq!(report.signed_through, Some(20));
        assert_eq!(report.unsigned_tail, 5);
        assert_eq!(report.verdict(), Verdict::UnsignedTail);
        assert!(report.to_string().starts_with("OK: 25 records verified"));
        let report = check(&signer, &lines[..lines.len() - 5]);
        assert_eq!(report.verdict(), Verdict::Intact);
        assert_eq!(check(&signer, &[]).verdict(), Verdict::Intact);
    }

    #[test]
    fn changed_seq_is_a_modification() {
        let signer = signer();
        let mut lines = build(&signer, 20, 10);
        // Record 4 is line index 3: claim seq 9 instead.
        let changed =
            String::from_utf8(lines[3].clone())
                .unwrap()
                .replacen("{\"seq\":4,", "{\"seq\":9,", 1);
        lines[3] = changed.into_bytes();
        assert_eq!(
            kind(&check(&signer, &lines)),
            Some((ProblemKind::Modified, Some(4)))
        );
    }

    #[test]
    fn record_moved_later_is_reordered() {
        let signer = signer();
        let mut lines = build(&signer, 20, 10);
        let moved = lines.remove(2); // record 3
        lines.insert(5, moved); // after record 6
        let report = check(&signer, &lines);
        assert_eq!(kind(&report), Some((ProblemKind::Reordered, Some(4))));
        assert_eq!(report.records, 2);
    }

    #[test]
    fn deleted_record_before_a_digest() {
        let signer = signer();
        let mut lines = build(&signer, 20, 10);
        lines.remove(9); // record 10, just before the first digest
        assert_eq!(
            kind(&check(&signer, &lines)),
            Some((ProblemKind::Deleted, Some(10)))
        );
    }

    #[test]
    fn digest_moved_or_removed() {
        let signer = signer();
        let lines = build(&signer, 30, 10);
        let mut moved = lines.clone();
        let digest = moved.remove(10);
        moved.insert(5, digest);
        assert_eq!(
            kind(&check(&signer, &moved)).map(|k| k.0),
            Some(ProblemKind::DigestMismatch)
        );
        let mut removed = lines.clone();
        removed.remove(10);
        let report = check(&signer, &removed);
        assert_eq!(kind(&report).map(|k| k.0), Some(ProblemKind::DigestMissing));
        assert_eq!(report.records, 20);
    }

    #[test]
    fn crafted_seq_zero_does_not_confuse() {
        let signer = signer();
        let mut lines = build(&signer, 5, 10);
        let mut zero = Vec::new();
        append_record_line(&mut zero, 0, b"{\"x\":1}", &GENESIS_CHAIN);
        zero.pop();
        lines.insert(0, zero);
        let report = check(&signer, &lines);
        assert_eq!(kind(&report), Some((ProblemKind::Inserted, Some(0))));
        assert_eq!(report.records, 0);
    }

    #[test]
    fn repeated_digest_is_inserted() {
        let signer = signer();
        let mut lines = build(&signer, 20, 10);
        let digest = lines[10].clone();
        lines.insert(11, digest);
        let report = check(&signer, &lines);
        assert_eq!(kind(&report), Some((ProblemKind::Inserted, Some(10))));
        assert_eq!(report.problem.unwrap().line, 12);
    }

    #[test]
    fn foreign_lines() {
        let signer = signer();
        let mut lines = build(&signer, 20, 10);
        lines.insert(4, b"hello".to_vec());
        let report = check(&signer, &lines);
        assert_eq!(kind(&report), Some((ProblemKind::Inserted, None)));
        assert_eq!(report.problem.unwrap().line, 5);
        let mut lines = build(&signer, 20, 10);
        lines.insert(4, b"hello".to_vec());
        lines.remove(5); // and record 5 with it
        assert_eq!(
            kind(&check(&signer, &lines)),
            Some((ProblemKind::Malformed, None))
        );
        let mut lines = build(&signer, 20, 10);
        lines[4][2] = b'S'; // record 5 no longer parses: `{"Seq":5,...`
        let report = check(&signer, &lines);
        assert_eq!(kind(&report), Some((ProblemKind::Modified, Some(5))));
        assert_eq!(report.problem.unwrap().line, 5);
    }

    #[test]
    fn truncated_last_line_is_not_tampering() {
        let signer = signer();
        let lines = build(&signer, 12, 10);
        let mut file = tempfile::NamedTempFile::new().unwrap();
        for line in &lines {
            file.write_all(line).unwrap();
            file.write_all(b"\n").unwrap();
        }
        file.write_all(b"{\"seq\":13,\"eventName\":\"Enc").unwrap();
        file.flush().unwrap();
        let report = verify(file.path(), signer.public_key_der()).unwrap();
        assert!(report.is_ok());
        assert_eq!(report.verdict(), Verdict::Truncated);
        assert_eq!(report.records, 12);
        assert_eq!(report.unsigned_tail, 2);
        assert_eq!(report.truncated.unwrap().line, 14);
        assert!(report.to_string().contains("truncated: line 14"));
    }
}
