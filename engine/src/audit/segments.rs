//! An audit directory: one chained, digested segment per writing process at a time.
//!
//! Layout of an audit directory `DIR` (see `docs/audit-format.md`):
//!
//! - `DIR/segments/<start ms, 13 digits>-<pid>-<8 hex>.log`: segments. Each is a log of the usual
//!   format (its own `seq` from 1, its own chain and digests, the same signing key).
//! - `DIR/audit.log`: the single log of data directories written before segments, if any; read and
//!   verified, never appended to by a directory writer.
//!
//! A process that opens the directory takes a segment by an exclusive `flock` on it, held for as
//! long as it writes: the first segment (in name order) that no running process holds and that
//! recovers (torn tail cut, tail verified, unsigned records signed), else a new one. Segments are
//! thus reused one process after another, and there are only as many as processes ever wrote at
//! once. Appends take no cross-process lock: each process's writer owns its segment's chain, so
//! group commit is unchanged.
//!
//! Every time a process takes a segment, the first record it writes there is a **writer record**
//! (event name [`WRITER_EVENT`]): who writes from here on (pid, host, binary, uid, principal), the
//! segment's own name, and the names of every other log in the directory at that moment. Verifying
//! the directory attributes each record to the writer before it, and reports a log that a writer
//! record names but that is gone (a deleted segment) and a segment whose writer record names
//! another segment (renamed, or copied from elsewhere).
#![allow(unsafe_code)] // reason: flock, getuid and gethostname system calls through libc.

use std::fs::{File, OpenOptions};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use serde_json::json;

use super::digest::DigestVerifier;
use super::record::{now_millis, AuditEvent, UserIdentity};
use super::recover::{recover, TailState};
use super::AuditError;

/// The folder of segments inside an audit directory.
pub const SEGMENTS_DIR: &str = "segments";
/// The single log of an audit directory from before segments.
pub const LEGACY_LOG: &str = "audit.log";
/// The event name of a writer record.
pub const WRITER_EVENT: &str = "KeyplaneAuditWriter";

/// One log of an audit directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogFile {
    /// Its name relative to the audit directory: `segments/….log` or `audit.log`.
    pub name: String,
    /// Its path.
    pub path: PathBuf,
    /// The log from before segments (`audit.log`).
    pub legacy: bool,
}

/// The logs of the audit directory `dir`: `audit.log` if present, then the segments in name
/// (start time) order. A missing directory has none.
pub fn list_logs(dir: &Path) -> Result<Vec<LogFile>, AuditError> {
    let mut logs = Vec::new();
    let legacy = dir.join(LEGACY_LOG);
    if legacy.is_file() {
        logs.push(LogFile {
            name: LEGACY_LOG.into(),
            path: legacy,
            legacy: true,
        });
    }
    let segments = dir.join(SEGMENTS_DIR);
    let entries = match std::fs::read_dir(&segments) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(logs),
        Err(e) => return Err(AuditError::io("listing", &segments, &e)),
    };
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| AuditError::io("listing", &segments, &e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.ends_with(".log") && entry.path().is_file() {
            names.push(name);
        }
    }
    names.sort();
    logs.extend(names.into_iter().map(|name| LogFile {
        path: segments.join(&name),
        name: format!("{SEGMENTS_DIR}/{name}"),
        legacy: false,
    }));
    Ok(logs)
}

/// `flock` on `file` without waiting: true if taken, false if another open file holds it.
pub(crate) fn try_flock(file: &File, exclusive: bool) -> Result<bool, std::io::Error> {
    let operation = if exclusive {
        libc::LOCK_EX
    } else {
        libc::LOCK_SH
    } | libc::LOCK_NB;
    // SAFETY: the descriptor belongs to `file`, which is open for the whole call; flock has no
    // other memory effects.
    if unsafe { libc::flock(file.as_raw_fd(), operation) } == 0 {
        return Ok(true);
    }
    let error = std::io::Error::last_os_error();
    if error.raw_os_error() == Some(libc::EWOULDBLOCK) {
        Ok(false)
    } else {
        Err(error)
    }
}

/// A segment this process now holds (its exclusive `flock` lives as long as `file`).
pub(crate) struct Claimed {
    pub file: File,
    pub path: PathBuf,
    /// Its name relative to the audit directory.
    pub name: String,
    /// Where its log stands (torn tail already cut).
    pub state: TailState,
    /// Every other log of the directory when it was taken.
    pub others: Vec<String>,
}

/// Most attempts at taking a segment before giving up (each loses only to a concurrent taker).
const CLAIM_ATTEMPTS: usize = 32;

/// Takes a segment of the audit directory `dir` (created, with its `segments` folder, mode 0700,
/// if missing): a free one that recovers, else a new one.
pub(crate) fn claim(dir: &Path, verifier: &DigestVerifier) -> Result<Claimed, AuditError> {
    let segments = dir.join(SEGMENTS_DIR);
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&segments)
        .map_err(|e| AuditError::io("creating", &segments, &e))?;
    let mut refused = Vec::new();
    for _ in 0..CLAIM_ATTEMPTS {
        let logs = list_logs(dir)?;
        for log in &logs {
            if log.legacy || refused.contains(&log.name) {
                continue;
            }
            let Ok(file) = OpenOptions::new().read(true).append(true).open(&log.path) else {
                continue;
            };
            if !try_flock(&file, true).map_err(|e| AuditError::io("locking", &log.path, &e))? {
                continue;
            }
            match recover_segment(&file, &log.path, verifier) {
                Ok(state) => return Ok(claimed(file, log, state, &logs)),
                // A segment that does not verify (or was signed by another key) stays as it is
                // for `verify` to report; this process writes elsewhere.
                Err(AuditError::Tampered(_) | AuditError::Key(_)) => refused.push(log.name.clone()),
                Err(e) => return Err(e),
            }
        }
        let name = format!(
            "{:013}-{}-{}.log",
            now_millis(),
            std::process::id(),
            &super::record::new_request_id()[..8]
        );
        let path = segments.join(&name);
        let file = match OpenOptions::new()
            .read(true)
            .append(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
        {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(AuditError::io("creating", &path, &e)),
        };
        File::open(&segments)
            .and_then(|d| d.sync_all())
            .map_err(|e| AuditError::io("syncing the directory", &segments, &e))?;
        if try_flock(&file, true).map_err(|e| AuditError::io("locking", &path, &e))? {
            let log = LogFile {
                name: format!("{SEGMENTS_DIR}/{name}"),
                path,
                legacy: false,
            };
            // Another process may have taken and written it between our create and our lock.
            let state = recover_segment(&file, &log.path, verifier)?;
            let logs = list_logs(dir)?;
            return Ok(claimed(file, &log, state, &logs));
        }
    }
    Err(AuditError::Io(format!(
        "could not take a segment of the audit directory {} after {CLAIM_ATTEMPTS} attempts",
        dir.display()
    )))
}

fn claimed(file: File, log: &LogFile, state: TailState, logs: &[LogFile]) -> Claimed {
    Claimed {
        file,
        path: log.path.clone(),
        name: log.name.clone(),
        state,
        others: logs
            .iter()
            .filter(|l| l.name != log.name)
            .map(|l| l.name.clone())
            .collect(),
    }
}

/// Recovers a log open for appending: verifies its tail and cuts a torn last line.
pub(crate) fn recover_segment(
    file: &File,
    path: &Path,
    verifier: &DigestVerifier,
) -> Result<TailState, AuditError> {
    let metadata = file
        .metadata()
        .map_err(|e| AuditError::io("reading metadata of", path, &e))?;
    let state = if metadata.is_file() && metadata.len() > 0 {
        recover(file, metadata.len(), verifier)?
    } else {
        TailState::empty()
    };
    if metadata.is_file() && state.valid_len < metadata.len() {
        file.set_len(state.valid_len)
            .and_then(|()| file.sync_data())
            .map_err(|e| AuditError::io("cutting the torn last line of", path, &e))?;
    }
    Ok(state)
}

/// The writer record a process puts first in a segment it takes.
pub(crate) fn writer_event(
    segment: &str,
    others: &[String],
    principal: &UserIdentity,
    region: &str,
) -> AuditEvent {
    let binary = std::env::current_exe()
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    // SAFETY: getuid has no preconditions and cannot fail.
    let uid = unsafe { libc::getuid() };
    AuditEvent::new(WRITER_EVENT, region, principal.clone())
        .with_request_parameters(json!({
            "segment": segment,
            "pid": std::process::id(),
            "host": hostname(),
            "binary": binary,
            "uid": uid,
            "otherLogs": others,
        }))
        .read_only(true)
}

fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its whole length, which is what we pass.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return String::new();
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}
