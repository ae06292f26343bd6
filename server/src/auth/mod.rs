//! SigV4 verification and the credentials it checks against.
//!
//! (Skeleton: the authentication helper fills this module. The interface below is fixed.)

pub mod credentials;

use std::fmt;
use std::time::SystemTime;

pub use credentials::CredentialStore;

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

/// The parts of an HTTP request a signature covers (the body read in full).
#[derive(Debug)]
pub struct SignedRequest<'a> {
    pub method: &'a str,
    /// The path, as sent (`/`).
    pub path: &'a str,
    /// The raw query string, without `?` (empty when none).
    pub query: &'a str,
    pub headers: &'a http::HeaderMap,
    pub body: &'a [u8],
}

/// Verifies SigV4 signatures against a [`CredentialStore`] for one region and service `kms`.
#[derive(Debug)]
pub struct Authenticator {
    #[allow(dead_code)]
    credentials: CredentialStore,
    #[allow(dead_code)]
    region: String,
}

impl Authenticator {
    /// An authenticator for requests signed for `region` (and service `kms`).
    pub fn new(credentials: CredentialStore, region: &str) -> Authenticator {
        Authenticator {
            credentials,
            region: region.to_owned(),
        }
    }

    /// The credentials it checks against.
    pub fn credentials(&self) -> &CredentialStore {
        &self.credentials
    }

    /// Who signed `request`, or why it is refused. `now` is the server's clock.
    pub fn verify(
        &self,
        request: &SignedRequest<'_>,
        now: SystemTime,
    ) -> Result<Identity, AuthError> {
        let _ = (request, now);
        Err(AuthError {
            code: "MissingAuthenticationTokenException",
            message: "Missing Authentication Token".into(),
            status: 400,
        })
    }
}
