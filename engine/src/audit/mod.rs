//! The tamper-evident audit log: one JSON line per request, hash-chained, with signed digests.
//!
//! Every request the engine serves is described by an [`AuditEvent`] (shaped like a CloudTrail
//! record of the key management service) and appended with [`AuditLog::append`]. Callers serialize
//! their own event on their own thread, then hand the line to one writer thread through a lock-free
//! queue (crossbeam); the writer numbers the records, chains them, writes every queued line and
//! calls `fdatasync` once per group (group commit), and only then marks their [`Ticket`]s durable.
//!
//! Tamper evidence, in short (the exact byte-level rules are in `docs/audit-format.md`):
//!
//! - each record carries `seq` (1, 2, 3, ...) and `chain` = hex SHA-256(previous chain, 32 raw
//!   bytes ‖ this record's canonical bytes), the canonical bytes being the line as written with its
//!   trailing `,"chain":"…"` member removed; the chain before record 1 is 32 zero bytes;
//! - every N records and/or T milliseconds, and at close, the writer appends a digest line that
//!   states the range of records since the previous digest, the chain after the last of them, the
//!   hash of the previous digest line and the time, signed with ECDSA P-256 (SHA-256) by the audit
//!   signing key;
//! - [`verify()`] reads a log and names the first problem: a modified, deleted, reordered or inserted
//!   record, a malformed line, a forged digest, a digest signed by another key, a digest that does
//!   not match the chain, or a missing digest; a tail cut mid-line (a crash during a write) and
//!   records after the last digest (not yet signed) are reported separately, as they are not
//!   evidence of tampering.
//!
//! Fail closed: when a write or `fdatasync` fails, every ticket not yet durable gets the error, and
//! every later append fails at once with it. Nothing is acknowledged that is not on disk.
//!
//! What a chain and digests cannot show: someone who can write the file can cut it after any
//! digest, or rewrite records after the last digest (recomputing their chain, which takes no key).
//! Both look like a crash before the next digest. [`AuditLog::last_digest`] gives the latest digest
//! line so that it can be kept elsewhere; a copy kept elsewhere closes that gap.

mod chain;
mod digest;
mod lines;
mod record;
mod recover;
mod segments;
mod usage;
mod verify;
mod verify_dir;
mod writer;

pub use chain::{chain_hash, GENESIS_CHAIN};
pub use digest::{generate_signing_key, key_fingerprint, Digest, DigestSigner, DIGEST_VERSION};
pub use lines::lines_backwards;
pub use record::{
    new_request_id, rfc3339_millis, AdditionalEventData, AuditEvent, AuditResource, BatchKey,
    BatchRequest, TlsDetails, UserIdentity, EVENT_SOURCE, EVENT_VERSION, KMS_KEY_RESOURCE_TYPE,
};
pub use segments::{list_logs, LogFile, LEGACY_LOG, SEGMENTS_DIR, WRITER_EVENT};
pub use usage::{parse_rfc3339_millis, LastUses, RecordedUse};
pub use verify::{
    verify, Problem, ProblemKind, TruncatedTail, Verdict, VerifyReport, AHEAD_BYTES, AHEAD_LINES,
};
pub use verify_dir::{
    verify_directory, DirectoryProblem, DirectoryProblemKind, DirectoryReport, SegmentReport,
    Writer,
};
pub use writer::{AuditConfig, AuditLog, Durability, Ticket};

/// Everything that can go wrong with the audit log. `Clone` because one write failure is handed to
/// every waiting caller.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuditError {
    /// Reading, writing or syncing the log file failed (disk full, I/O error, permissions).
    #[error("audit log I/O failed: {0}")]
    Io(String),
    /// The log has been closed, or its writer thread has stopped.
    #[error("audit log is closed")]
    Closed,
    /// The log on disk does not verify; it was not opened for appending.
    #[error("audit log does not verify: {0}")]
    Tampered(String),
    /// The audit signing key (or a public key given to verify) could not be used.
    #[error("audit signing key: {0}")]
    Key(String),
    /// An event could not be serialized.
    #[error("audit record could not be serialized: {0}")]
    Serialize(String),
    /// The configuration is not usable.
    #[error("audit configuration: {0}")]
    Config(String),
    /// This process is a copy, made by `fork`, of the process that opened the log: the writer
    /// thread did not come with the copy, and two writers would split the log's chain.
    #[error("audit log belongs to another process: {0}")]
    OtherProcess(String),
}

impl AuditError {
    /// An I/O error, with what was being done.
    pub(crate) fn io(doing: &str, path: &std::path::Path, err: &std::io::Error) -> Self {
        AuditError::Io(format!("{doing} {}: {err}", path.display()))
    }
}
