//! How SQLite and file-system failures become the engine's typed errors.
//!
//! Every failure leaves the store with a [`keyplane::Error`] whose message says what happened and
//! what to do: a full disk, a damaged or foreign file, a busy store. Messages name files and keys,
//! never key material.

use std::io;
use std::path::Path;

use keyplane::Error;
use rusqlite::ErrorCode;

/// A failed SQLite call while doing `what` on the store at `db`.
pub(crate) fn sql(what: &str, db: &Path, err: rusqlite::Error) -> Error {
    let db = db.display();
    match sqlite_code(&err) {
        Some(ErrorCode::DiskFull) => Error::Store(format!(
            "disk full: could not {what} in {db} (SQLITE_FULL); nothing was changed: free space \
             and retry"
        )),
        Some(ErrorCode::DatabaseCorrupt) => Error::Store(format!(
            "the store file {db} is damaged ({err}) while trying to {what}; run `keyplane store \
             verify` and restore it from a backup (`keyplane store restore FILE`)"
        )),
        Some(ErrorCode::NotADatabase) => Error::Store(format!(
            "{db} is not a keyplane store (not an SQLite database, or an encrypted or damaged \
             one): could not {what}"
        )),
        Some(ErrorCode::DatabaseBusy) | Some(ErrorCode::DatabaseLocked) => Error::Store(format!(
            "the store {db} stayed locked by another process past the busy timeout: could not \
             {what}; retry"
        )),
        Some(ErrorCode::ReadOnly) | Some(ErrorCode::PermissionDenied) => Error::Store(format!(
            "the store {db} cannot be written ({err}): could not {what}; check the permissions \
             of the data directory and its files"
        )),
        Some(ErrorCode::CannotOpen) => Error::Store(format!(
            "could not open the store file {db} ({err}) to {what}"
        )),
        _ if is_no_space_message(&err.to_string()) => Error::Store(format!(
            "disk full: could not {what} in {db} ({err}); nothing was changed: free space and \
             retry"
        )),
        _ => Error::Store(format!("could not {what} in {db}: {err}")),
    }
}

/// The SQLite result code of `err`, if it came from SQLite.
pub(crate) fn sqlite_code(err: &rusqlite::Error) -> Option<ErrorCode> {
    match err {
        rusqlite::Error::SqliteFailure(e, _) => Some(e.code),
        _ => None,
    }
}

fn is_no_space_message(message: &str) -> bool {
    let lower = message.to_ascii_lowercase();
    lower.contains("no space") || lower.contains("disk is full") || lower.contains("enospc")
}

/// A failed file-system call while doing `what` on `path`.
pub(crate) fn io(what: &str, path: &Path, err: io::Error) -> Error {
    let shown = path.display();
    if is_no_space(&err) {
        return Error::Store(format!(
            "disk full: could not {what} {shown} ({err}); free space and retry"
        ));
    }
    match err.kind() {
        io::ErrorKind::PermissionDenied => Error::AccessDenied(format!(
            "permission denied: could not {what} {shown} ({err})"
        )),
        io::ErrorKind::NotFound => Error::NotFound(format!("could not {what} {shown}: {err}")),
        _ => Error::Store(format!("could not {what} {shown}: {err}")),
    }
}

/// Whether an I/O error is "no space left on device" (or a quota).
pub(crate) fn is_no_space(err: &io::Error) -> bool {
    const ENOSPC: i32 = 28;
    const EDQUOT: i32 = 122;
    matches!(err.raw_os_error(), Some(ENOSPC) | Some(EDQUOT))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disk_full_says_so_and_that_nothing_changed() {
        let err = rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_FULL),
            None,
        );
        let mapped = sql("commit a change", Path::new("/d/keyplane.db"), err);
        assert!(matches!(mapped, Error::Store(_)));
        assert!(mapped.message().starts_with("disk full"), "{mapped}");
        assert!(mapped.message().contains("nothing was changed"));
    }

    #[test]
    fn enospc_from_the_file_system_is_disk_full() {
        let err = io::Error::from_raw_os_error(28);
        let mapped = io("write", Path::new("/d/f"), err);
        assert!(mapped.message().starts_with("disk full"), "{mapped}");
    }

    #[test]
    fn a_foreign_file_is_named_as_not_a_store() {
        let err = rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_NOTADB),
            None,
        );
        let mapped = sql("read", Path::new("/x"), err);
        assert!(
            mapped.message().contains("not a keyplane store"),
            "{mapped}"
        );
    }
}
