//! Why a store could not be named or opened: one kind per cause, each with the engine error that
//! carries the message (so the CLI keeps its codes and exit statuses).

use std::fmt;
use std::path::Path;

use keyplane::Error;

/// What went wrong opening a store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The address is malformed (`sqlite:` with no path, no scheme at all).
    BadAddress,
    /// The address has a scheme this build does not know (`postgres://...`).
    UnknownScheme,
    /// No store at the address, and the caller asked to open only.
    StoreMissing,
    /// The data directory or its files cannot be written (permissions, a read-only mount).
    ReadOnly,
    /// The store was written by a newer keyplane (a newer schema version).
    NewerSchema,
    /// No root key where the source points (a key file or environment variable that is missing).
    RootKeyMissing,
    /// The root key given does not open this store (or is not a root key at all).
    WrongRootKey,
    /// The root key file may be read by group or others, or is a link or not a regular file.
    RootKeyPermissions,
    /// The store is damaged, truncated, not a keyplane store, or rolled back behind its witness.
    Damaged,
    /// The audit log cannot be set up (its directory, signing key, public key or lock).
    Audit,
    /// Anything else (the message says what).
    Other,
}

/// A failure naming or opening a store.
pub struct OpenError {
    kind: ErrorKind,
    error: Error,
}

impl OpenError {
    /// A failure of `kind`, with the engine error that fits it.
    pub(crate) fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        let message = message.into();
        let error = match kind {
            ErrorKind::BadAddress | ErrorKind::UnknownScheme => Error::Validation(message),
            ErrorKind::StoreMissing => Error::NotFound(message),
            ErrorKind::RootKeyMissing | ErrorKind::WrongRootKey | ErrorKind::RootKeyPermissions => {
                Error::AccessDenied(message)
            }
            ErrorKind::Audit => Error::AuditUnavailable(message),
            ErrorKind::ReadOnly
            | ErrorKind::NewerSchema
            | ErrorKind::Damaged
            | ErrorKind::Other => Error::Store(message),
        };
        OpenError { kind, error }
    }

    /// Which failure this is.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// What happened, naming the files, variables and sources tried (never key material).
    pub fn message(&self) -> &str {
        self.error.message()
    }

    /// The engine error (code and message) this failure is reported as.
    pub fn error(&self) -> &Error {
        &self.error
    }

    /// The engine error, for callers that report engine errors.
    pub fn into_error(self) -> Error {
        self.error
    }

    /// Classifies an error of the store or a root-key provider while opening `dir`. The store
    /// reports these as engine errors with messages; this is the one place that tells them apart.
    pub(crate) fn classify(error: Error, dir: Option<&Path>) -> Self {
        let kind = Self::kind_of(&error, dir);
        OpenError { kind, error }
    }

    fn kind_of(error: &Error, dir: Option<&Path>) -> ErrorKind {
        let text = error.message();
        let has = |needles: &[&str]| needles.iter().any(|n| text.contains(n));
        match error {
            Error::NotFound(_) if has(&["no keyplane store"]) => ErrorKind::StoreMissing,
            Error::AccessDenied(_) if has(&["has mode", "symbolic link", "not a regular file"]) => {
                ErrorKind::RootKeyPermissions
            }
            Error::AccessDenied(_)
                if has(&[
                    "is not set",
                    "no root key file",
                    "could not read the passphrase",
                ]) =>
            {
                ErrorKind::RootKeyMissing
            }
            Error::AccessDenied(_)
                if has(&[
                    "does not open this store",
                    "does not hold a root key",
                    "this store needs",
                ]) =>
            {
                ErrorKind::WrongRootKey
            }
            Error::AccessDenied(_) if dir.is_some_and(|d| !writable(d)) => ErrorKind::ReadOnly,
            Error::AccessDenied(_) if has(&["permission denied"]) => ErrorKind::ReadOnly,
            Error::Store(_) if has(&["newer than this keyplane reads"]) => ErrorKind::NewerSchema,
            Error::Store(_)
                if has(&[
                    "rollback",
                    "generation witness",
                    "damaged",
                    "truncated",
                    "not a keyplane store",
                    "lacks its table",
                    "fails its root-key check",
                    "settings row",
                ]) =>
            {
                ErrorKind::Damaged
            }
            Error::Store(_) if has(&["cannot be written"]) => ErrorKind::ReadOnly,
            Error::Store(_) | Error::NotFound(_) if dir.is_some_and(|d| !writable(d)) => {
                ErrorKind::ReadOnly
            }
            Error::AuditUnavailable(_) => ErrorKind::Audit,
            _ => ErrorKind::Other,
        }
    }
}

/// Whether this process may create files in `dir`, or (when `dir` does not exist yet) in the
/// nearest directory above it that does (with its effective ids, as `open` checks).
pub(crate) fn writable(dir: &Path) -> bool {
    use rustix::fs::{accessat, Access, AtFlags, CWD};
    let existing = dir
        .ancestors()
        .find(|d| d.as_os_str().is_empty() || d.exists())
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    accessat(CWD, existing, Access::WRITE_OK, AtFlags::EACCESS).is_ok()
}

impl fmt::Debug for OpenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenError")
            .field("kind", &self.kind)
            .field("message", &self.error.message())
            .finish()
    }
}

impl fmt::Display for OpenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.error.message())
    }
}

impl std::error::Error for OpenError {}

impl From<OpenError> for Error {
    fn from(e: OpenError) -> Self {
        e.error
    }
}
