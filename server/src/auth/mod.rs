//! SigV4 verification and the credentials it checks against.
//!
//! (Skeleton: the authentication helper fills this module. The interface below is fixed.)

use std::fmt;

/// Who signed a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    /// The credential's principal ARN, which the request runs as.
    pub principal: String,
    /// The access key id that signed it.
    pub access_key_id: String,
}

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
