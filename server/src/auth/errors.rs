//! The service's authentication errors ([`AuthError`]), in its words.

use std::fmt;

/// Why a request's authentication failed, as the service answers it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthError {
    /// `MissingAuthenticationTokenException`, `UnrecognizedClientException`,
    /// `InvalidSignatureException`, `IncompleteSignature`, ...
    pub code: &'static str,
    /// The service's message.
    pub message: String,
    /// The HTTP status (400 or 403).
    pub status: u16,
}

impl fmt::Display for AuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for AuthError {}

pub(crate) const MISSING_TOKEN: &str = "MissingAuthenticationTokenException";
pub(crate) const INCOMPLETE: &str = "IncompleteSignatureException";
pub(crate) const UNRECOGNIZED: &str = "UnrecognizedClientException";
pub(crate) const INVALID_SIGNATURE: &str = "InvalidSignatureException";

/// No `Authorization` header.
pub(crate) fn missing_token() -> AuthError {
    error(MISSING_TOKEN, "Missing Authentication Token".into())
}

/// A malformed `Authorization` header or a missing date.
pub(crate) fn incomplete(message: String) -> AuthError {
    error(INCOMPLETE, message)
}

/// An unknown, disabled or deleted access key, or a session token keyplane never issued.
pub(crate) fn unrecognized() -> AuthError {
    error(
        UNRECOGNIZED,
        "The security token included in the request is invalid.".into(),
    )
}

/// The signature does not match.
pub(crate) fn mismatch() -> AuthError {
    invalid_signature(
        "The request signature we calculated does not match the signature you provided. Check \
         your AWS Secret Access Key and signing method. Consult the service documentation for \
         details."
            .into(),
    )
}

pub(crate) fn invalid_signature(message: String) -> AuthError {
    error(INVALID_SIGNATURE, message)
}

/// The credential store could not be read (the details go to the server's log, not the client).
pub(crate) fn internal() -> AuthError {
    AuthError {
        code: "KMSInternalException",
        message: "The request could not be authenticated because of an internal error.".into(),
        status: 500,
    }
}

fn error(code: &'static str, message: String) -> AuthError {
    AuthError {
        code,
        message,
        status: 400,
    }
}
