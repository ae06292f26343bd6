//! Reopening a log: find where it ends, check its tail, and continue its chain.
//!
//! The file is read backwards from its end, so opening costs the tail, not the whole log:
//!
//! 1. Bytes after the last newline are a write cut short by a crash. They were never
//!    acknowledged (a group is acknowledged only after `fdatasync`), so they are cut off.
//! 2. Lines are read backwards up to the last digest line, then on to the digest before it: the
//!    last signed segment and the unsigned tail after it.
//! 3. The last digest must be signed by this log's key and continue the digest before it (its
//!    hash, and the next `seq`); the records it covers must chain from the previous digest's
//!    `lastChain` (or from record 1 and the genesis value) to its own `lastChain`; the records
//!    after it must follow, numbered one by one and chained. Without any digest, the whole file
//!    is the tail and must chain from record 1.
//!
//! Anything else refuses the open ([`AuditError::Tampered`]; a digest of another key gives
//! [`AuditError::Key`]): the engine does not append to a log that does not verify.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

use super::chain::{parse_record_line, GENESIS_CHAIN, RECORD_PREFIX};
use super::digest::{digest_line_hash, parse_digest_line, DigestVerifier, DIGEST_PREFIX};
use super::AuditError;

/// Bytes read from the file at a time, going backwards.
const CHUNK: u64 = 64 * 1024;

/// Where an existing log stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct TailState {
    /// The `seq` the next record gets.
    pub next_seq: u64,
    /// The chain value of the last record ([`GENESIS_CHAIN`] for an empty log).
    pub last_chain: [u8; 32],
    /// SHA-256 of the last digest line, if there is one.
    pub last_digest_hash: Option<[u8; 32]>,
    /// The last record the last digest covers (0 without a digest).
    pub last_digest_seq: u64,
    /// The file's length up to its last complete line.
    pub valid_len: u64,
}

impl TailState {
    /// The state of an empty log.
    pub fn empty() -> Self {
        TailState {
            next_seq: 1,
            last_chain: GENESIS_CHAIN,
            last_digest_hash: None,
            last_digest_seq: 0,
            valid_len: 0,
        }
    }

    /// Records after the last digest.
    pub fn unsigned(&self) -> u64 {
        self.next_seq - 1 - self.last_digest_seq
    }
}

/// Lines of a file, last first.
pub(crate) struct ReverseLines<'f> {
    file: &'f File,
    /// File bytes `[buf_start, end)`.
    buf: Vec<u8>,
    buf_start: u64,
    /// End of the part not yet returned; always just after a newline, or 0.
    end: u64,
}

impl<'f> ReverseLines<'f> {
    /// Lines of `file[..end]`, which must end with a newline (or be empty).
    pub fn new(file: &'f File, end: u64) -> Self {
        ReverseLines {
            file,
            buf: Vec::new(),
            buf_start: end,
            end,
        }
    }

    /// Reads up to [`CHUNK`] more bytes in front of the buffer; false at the start of the file.
    fn extend_back(&mut self) -> io::Result<bool> {
        if self.buf_start == 0 {
            return Ok(false);
        }
        let take = CHUNK.min(self.buf_start);
        let start = self.buf_start - take;
        let mut chunk = vec![0u8; take as usize];
        self.file.read_exact_at(&mut chunk, start)?;
        chunk.extend_from_slice(&self.buf);
        self.buf = chunk;
        self.buf_start = start;
        Ok(true)
    }

    /// The line before the ones already returned, without its newline, and its offset.
    pub fn prev_line(&mut self) -> io::Result<Option<(u64, Vec<u8>)>> {
        if self.end == 0 {
            return Ok(None);
        }
        if self.buf.is_empty() && !self.extend_back()? {
            return Ok(None);
        }
        loop {
            // The newline ending this line sits at `end - 1`.
            let terminator = (self.end - 1 - self.buf_start) as usize;
            if let Some(p) = self.buf[..terminator].iter().rposition(|&b| b == b'\n') {
                let line = self.buf[p + 1..terminator].to_vec();
                let offset = self.buf_start + p as u64 + 1;
                self.buf.truncate(p + 1);
                self.end = offset;
                return Ok(Some((offset, line)));
            }
            if !self.extend_back()? {
                let line = self.buf[..terminator].to_vec();
                self.buf.clear();
                self.end = 0;
                return Ok(Some((0, line)));
            }
        }
    }
}

/// The length of `file[..len]` up to and including its last newline (0 if it has none).
pub(crate) fn complete_len(file: &File, len: u64) -> io::Result<u64> {
    let mut end = len;
    while end > 0 {
        let take = CHUNK.min(end);
        let start = end - take;
        let mut chunk = vec![0u8; take as usize];
        file.read_exact_at(&mut chunk, start)?;
        if let Some(p) = chunk.iter().rposition(|&b| b == b'\n') {
            return Ok(start + p as u64 + 1);
        }
        end = start;
    }
    Ok(0)
}

/// Reads the tail of the log in `file` (of `len` bytes) and checks it, as the module describes.
pub(crate) fn recover(
    file: &File,
    len: u64,
    verifier: &DigestVerifier,
) -> Result<TailState, AuditError> {
    let valid_len = complete_len(file, len).map_err(io_err)?;
    let mut lines = ReverseLines::new(file, valid_len);
    // Records after the last digest, and that digest.
    let (tail, last_digest) = records_back_to_digest(&mut lines)?;
    let mut state = TailState {
        valid_len,
        ..TailState::empty()
    };
    if let Some((offset, line)) = last_digest {
        let parsed = parse_digest_line(&line)
            .map_err(|e| AuditError::Tampered(format!("the digest at byte {offset}: {e}")))?;
        if parsed.digest.key_fingerprint != verifier.fingerprint() {
            return Err(AuditError::Key(
                "the log's last digest was signed by another key; a log keeps one signing key \
                 (start a new log for a new key)"
                    .into(),
            ));
        }
        if !verifier.signature_valid(&parsed) {
            return Err(AuditError::Tampered(format!(
                "the digest at byte {offset} has an invalid signature"
            )));
        }
        // The records it covers, back to the digest before it (or the start of the file).
        let (covered, previous) = records_back_to_digest(&mut lines)?;
        let (start_seq, start_chain, previous_hash) = match previous {
            Some((at, previous)) => {
                let before = parse_digest_line(&previous)
                    .map_err(|e| AuditError::Tampered(format!("the digest at byte {at}: {e}")))?;
                (
                    before.digest.seq_last.saturating_add(1),
                    before.digest.last_chain,
                    Some(digest_line_hash(&previous)),
                )
            }
            None => (1, GENESIS_CHAIN, None),
        };
        if parsed.digest.previous_digest != previous_hash || parsed.digest.seq_first != start_seq {
            return Err(AuditError::Tampered(format!(
                "the digest at byte {offset} does not continue the digest before it"
            )));
        }
        let (next_seq, chain) = check_records(&covered, start_seq, start_chain)?;
        if next_seq != parsed.digest.seq_last.saturating_add(1) || chain != parsed.digest.last_chain
        {
            return Err(AuditError::Tampered(format!(
                "the digest at byte {offset} does not match the records before it"
            )));
        }
        state.last_digest_hash = Some(digest_line_hash(&line));
        state.last_digest_seq = parsed.digest.seq_last;
        (state.next_seq, state.last_chain) = (next_seq, chain);
    }
    (state.next_seq, state.last_chain) = check_records(&tail, state.next_seq, state.last_chain)?;
    Ok(state)
}

fn io_err(e: io::Error) -> AuditError {
    AuditError::Io(format!("reading the audit log's tail: {e}"))
}

/// A line and its byte offset.
type OffsetLine = (u64, Vec<u8>);

/// Reads lines backwards up to a digest line: the record lines before it (in file order) and the
/// digest line, if there is one.
fn records_back_to_digest(
    lines: &mut ReverseLines<'_>,
) -> Result<(Vec<OffsetLine>, Option<OffsetLine>), AuditError> {
    let mut records = Vec::new();
    let mut digest = None;
    while let Some((offset, line)) = lines.prev_line().map_err(io_err)? {
        if line.starts_with(DIGEST_PREFIX) {
            digest = Some((offset, line));
            break;
        }
        if !line.starts_with(RECORD_PREFIX) {
            return Err(AuditError::Tampered(format!(
                "the line at byte {offset} is neither a record nor a digest"
            )));
        }
        records.push((offset, line));
    }
    records.reverse();
    Ok((records, digest))
}

/// Checks that `records` are numbered from `seq` and chained from `chain`; returns the next seq
/// and the last chain value.
fn check_records(
    records: &[OffsetLine],
    mut seq: u64,
    mut chain: [u8; 32],
) -> Result<(u64, [u8; 32]), AuditError> {
    for (offset, line) in records {
        let record = parse_record_line(line).ok_or_else(|| {
            AuditError::Tampered(format!("the record at byte {offset} is malformed"))
        })?;
        if record.seq != seq {
            return Err(AuditError::Tampered(format!(
                "the record at byte {offset} has seq {} where {seq} was expected",
                record.seq
            )));
        }
        if !record.follows(&chain) {
            return Err(AuditError::Tampered(format!(
                "the record at byte {offset} (seq {seq}) does not match the chain"
            )));
        }
        chain = record.stated_chain;
        seq = seq.saturating_add(1);
    }
    Ok((seq, chain))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn file_with(bytes: &[u8]) -> File {
        let mut file = tempfile::tempfile().unwrap();
        file.write_all(bytes).unwrap();
        file
    }

    #[test]
    fn reverse_lines_across_chunks() {
        let mut text = Vec::new();
        let lines: Vec<String> = (0..5000)
            .map(|i| format!("line {i} {}", "x".repeat(i % 97)))
            .collect();
        for line in &lines {
            text.extend_from_slice(line.as_bytes());
            text.push(b'\n');
        }
        let file = file_with(&text);
        let mut reader = ReverseLines::new(&file, text.len() as u64);
        let mut back = Vec::new();
        while let Some((offset, line)) = reader.prev_line().unwrap() {
            assert_eq!(
                &text[offset as usize..offset as usize + line.len()],
                &line[..]
            );
            back.push(String::from_utf8(line).unwrap());
        }
        back.reverse();
        assert_eq!(back, lines);
    }

    #[test]
    fn empty_lines_and_complete_length() {
        let file = file_with(b"a\n\nb\npartial");
        assert_eq!(complete_len(&file, 12).unwrap(), 5);
        let mut reader = ReverseLines::new(&file, 5);
        assert_eq!(reader.prev_line().unwrap(), Some((3, b"b".to_vec())));
        assert_eq!(reader.prev_line().unwrap(), Some((2, Vec::new())));
        assert_eq!(reader.prev_line().unwrap(), Some((0, b"a".to_vec())));
        assert_eq!(reader.prev_line().unwrap(), None);
        let none = file_with(b"no newline");
        assert_eq!(complete_len(&none, 10).unwrap(), 0);
    }
}
