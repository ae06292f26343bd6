//! How a command ends: the exit code for each kind of failure, and how the failure is printed.

use std::process::ExitCode;

use keyplane::Error;

/// Exit codes (also in `--help`).
pub const REFUSED: u8 = 1;
pub const USAGE: u8 = 2;
pub const NOT_FOUND: u8 = 3;
pub const ACCESS: u8 = 4;
pub const INTERNAL: u8 = 5;
/// `audit verify`: the log was tampered with.
pub const AUDIT_TAMPERED: u8 = 6;
/// `audit verify`: no tampering, but the last line was cut short by a crash or records after the
/// last digest are not yet signed.
pub const AUDIT_INCOMPLETE: u8 = 7;

/// A failed command: the service's error name, a message, and the exit code.
#[derive(Debug)]
pub struct Failure {
    pub code: String,
    pub message: String,
    pub exit: u8,
}

impl Failure {
    /// A usage error found by the tool itself (bad argument syntax).
    pub fn usage(message: impl Into<String>) -> Self {
        Failure {
            code: "ValidationException".into(),
            message: message.into(),
            exit: USAGE,
        }
    }

    /// The operation ran and its answer is no (for example, `store verify` found damage).
    pub fn refused(code: &str, message: impl Into<String>) -> Self {
        Failure {
            code: code.into(),
            message: message.into(),
            exit: REFUSED,
        }
    }

    /// Prints the failure on stderr: `{"__type": ..., "message": ...}` with `--json`.
    pub fn print(&self, json: bool) -> ExitCode {
        if json {
            let body = serde_json::json!({ "__type": self.code, "message": self.message });
            eprintln!("{body}");
        } else {
            eprintln!("keyplane: {}: {}", self.code, self.message);
        }
        ExitCode::from(self.exit)
    }
}

/// The exit code for an engine or store error.
pub fn exit_code(error: &Error) -> u8 {
    match error {
        Error::NotFound(_) | Error::InvalidGrantId(_) => NOT_FOUND,
        Error::AccessDenied(_) | Error::NotAuthorized(_) => ACCESS,
        Error::Validation(_)
        | Error::InvalidAliasName(_)
        | Error::InvalidArn(_)
        | Error::InvalidMarker(_)
        | Error::Tag(_)
        | Error::MalformedPolicyDocument(_)
        | Error::InvalidGrantToken(_)
        | Error::InvalidImportToken(_)
        | Error::UnsupportedOperation(_) => USAGE,
        Error::Store(_)
        | Error::Internal(_)
        | Error::MemoryLock(_)
        | Error::AuditUnavailable(_) => INTERNAL,
        _ => REFUSED,
    }
}

impl From<keyplane_store_address::OpenError> for Failure {
    fn from(error: keyplane_store_address::OpenError) -> Self {
        Failure::from(error.into_error())
    }
}

impl From<Error> for Failure {
    fn from(error: Error) -> Self {
        let mut message = error.message().to_owned();
        if matches!(error, Error::MemoryLock(_)) {
            message.push_str(" (from the command line: --allow-unlocked-memory)");
        }
        Failure {
            code: error.code().to_owned(),
            message,
            exit: exit_code(&error),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_of_failure_has_its_own_exit_code() {
        assert_eq!(exit_code(&Error::NotFound("x".into())), NOT_FOUND);
        assert_eq!(exit_code(&Error::AccessDenied("x".into())), ACCESS);
        assert_eq!(exit_code(&Error::Validation("x".into())), USAGE);
        assert_eq!(exit_code(&Error::Store("x".into())), INTERNAL);
        assert_eq!(exit_code(&Error::Disabled("x".into())), REFUSED);
        assert_eq!(exit_code(&Error::InvalidSignature("x".into())), REFUSED);
        assert_eq!(
            exit_code(&Error::MalformedPolicyDocument("x".into())),
            USAGE
        );
        assert_eq!(exit_code(&Error::InvalidGrantId("x".into())), NOT_FOUND);
        assert_eq!(exit_code(&Error::AuditUnavailable("x".into())), INTERNAL);
        let codes = [
            REFUSED,
            USAGE,
            NOT_FOUND,
            ACCESS,
            INTERNAL,
            AUDIT_TAMPERED,
            AUDIT_INCOMPLETE,
        ];
        let distinct: std::collections::BTreeSet<_> = codes.iter().collect();
        assert_eq!(distinct.len(), codes.len());
        assert!(!codes.contains(&0));
    }
}
