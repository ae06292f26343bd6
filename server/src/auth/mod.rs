//! SigV4 verification and the credentials it checks against.
//!
//! [`Authenticator::verify`] checks, in order: an `Authorization` header is present
//! (`MissingAuthenticationTokenException`) and well formed (`IncompleteSignatureException`); the
//! request date (`X-Amz-Date`, or `Date`) is present and matches the credential scope's date; the
//! scope names this server's region, service `kms` and `aws4_request`; `host`, the date header and,
//! when sent, `X-Amz-Target`, `Content-Type` and `X-Amz-Content-SHA256` are signed; the date is within 5 minutes of the server's clock; `X-Amz-Content-SHA256`, when
//! sent, is the body's hash; the access key exists and is active (`UnrecognizedClientException`);
//! the signature matches ([`credentials`] computes and compares it, so the secret never leaves that
//! module); and, a keyplane addition, a request whose signature covers a per-request nonce
//! (`amz-sdk-invocation-id`) was not accepted before within the window ([`replay`]). The identity
//! comes from the credential store, never from the request.
//!
//! Session tokens: keyplane issues only long-term access keys, so a request carrying
//! `X-Amz-Security-Token` presents a token keyplane never issued and is refused with
//! `UnrecognizedClientException`, as the service refuses an unknown token.
//!
//! Presigned (query-string) authentication is not supported: the service's SDKs sign KMS requests
//! with the `Authorization` header only.
//!
//! The transport must put the request's authority in a `host` header (HTTP/2 carries it as
//! `:authority`): SDKs sign it as `host`.

pub mod credentials;
mod errors;
pub mod replay;
pub mod sigv4;

use std::time::{SystemTime, UNIX_EPOCH};

use aws_lc_rs::digest;
use subtle::ConstantTimeEq;

pub use credentials::{CheckError, CredentialInfo, CredentialStore, NewCredential, SignatureClaim};
pub use errors::AuthError;
pub use replay::ReplayGuard;

/// The service's allowed clock skew, in seconds.
pub const MAX_SKEW_SECS: i64 = 300;
/// Signatures remembered for replay refusal, by default.
pub const DEFAULT_REPLAY_CAPACITY: usize = 1 << 20;
/// The service name in a credential scope.
pub const SERVICE: &str = "kms";

/// Who signed a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    /// The credential's principal ARN, which the request runs as.
    pub principal: String,
    /// The access key id that signed it.
    pub access_key_id: String,
}

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
    credentials: CredentialStore,
    region: String,
    replay: ReplayGuard,
}

impl Authenticator {
    /// An authenticator for requests signed for `region` (and service `kms`).
    pub fn new(credentials: CredentialStore, region: &str) -> Authenticator {
        Authenticator {
            credentials,
            region: region.to_owned(),
            replay: ReplayGuard::new(DEFAULT_REPLAY_CAPACITY),
        }
    }

    /// The same authenticator remembering at most about `capacity` signatures for replay refusal.
    pub fn with_replay_capacity(mut self, capacity: usize) -> Authenticator {
        self.replay = ReplayGuard::new(capacity);
        self
    }

    /// The credentials it checks against.
    pub fn credentials(&self) -> &CredentialStore {
        &self.credentials
    }

    /// The replay guard (its size, for metrics and tests).
    pub fn replay_guard(&self) -> &ReplayGuard {
        &self.replay
    }

    /// Who signed `request`, or why it is refused. `now` is the server's clock. May read the
    /// credential store (a credential not in memory yet): call it where blocking is allowed.
    pub fn verify(
        &self,
        request: &SignedRequest<'_>,
        now: SystemTime,
    ) -> Result<Identity, AuthError> {
        let prepared = self.prepare(request, now)?;
        let checked = self.credentials.check_signature(&prepared.claim());
        self.finish(&prepared, checked)
    }

    /// As [`Authenticator::verify`] when the credential's answer is in memory; `None` when it
    /// needs a read of the credential store (which may block), and nothing was changed (the
    /// replay guard was not touched): call [`Authenticator::verify`] on a blocking thread then.
    /// Never blocks, so a server runs it on its async worker (a warm check is one HMAC and a
    /// SHA-256 of the body, a few microseconds).
    pub fn verify_cached(
        &self,
        request: &SignedRequest<'_>,
        now: SystemTime,
    ) -> Option<Result<Identity, AuthError>> {
        let prepared = match self.prepare(request, now) {
            Ok(prepared) => prepared,
            Err(refused) => return Some(Err(refused)),
        };
        let checked = self.credentials.check_signature_cached(&prepared.claim())?;
        Some(self.finish(&prepared, checked))
    }

    /// Every check before the credential's: the header's form, the date, the scope, the signed
    /// headers, the clock skew, the payload hash; then the string to sign.
    fn prepare<'a>(
        &self,
        request: &'a SignedRequest<'_>,
        now: SystemTime,
    ) -> Result<Prepared<'a>, AuthError> {
        let headers = request.headers;
        let mut values = headers.get_all(http::header::AUTHORIZATION).iter();
        let Some(value) = values.next() else {
            return Err(errors::missing_token());
        };
        if values.next().is_some() {
            return Err(errors::incomplete(
                "The request has more than one Authorization header.".into(),
            ));
        }
        let value = value.to_str().map_err(|_| {
            errors::incomplete("The Authorization header is not printable ASCII.".into())
        })?;
        let auth = sigv4::parse_authorization(value)?;

        let (date_header, date_text) = request_date(headers)?;
        let request_time = match date_header {
            "x-amz-date" => sigv4::parse_amz_date(date_text),
            _ => sigv4::parse_amz_date(date_text).or_else(|| sigv4::parse_http_date(date_text)),
        }
        .ok_or_else(|| {
            errors::incomplete(format!(
                "Date must be in ISO-8601 'basic format'. Got '{}'. See \
                 http://en.wikipedia.org/wiki/ISO_8601",
                short(date_text)
            ))
        })?;
        let amz_date = sigv4::format_amz_date(request_time);

        if auth.terminator != sigv4::TERMINATOR {
            return Err(errors::invalid_signature(format!(
                "Credential should be scoped with a valid terminator: 'aws4_request', not '{}'.",
                short(auth.terminator)
            )));
        }
        if auth.service != SERVICE {
            return Err(errors::invalid_signature(format!(
                "Credential should be scoped to correct service: '{SERVICE}'."
            )));
        }
        if auth.region != self.region {
            return Err(errors::invalid_signature(format!(
                "Credential should be scoped to a valid region, not '{}'.",
                short(auth.region)
            )));
        }
        if auth.date != &amz_date[..8] {
            return Err(errors::invalid_signature(format!(
                "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date \
                 from HTTP: '{}' != '{}', from '{}'.",
                short(auth.date),
                &amz_date[..8],
                amz_date
            )));
        }
        // Host and date always; the headers the protocol acts on whenever they are sent, so no
        // one can change what a signed request does (SDKs sign every one of them).
        for (name, shown) in [
            ("host", "Host"),
            ("x-amz-date", "X-Amz-Date"),
            ("date", "Date"),
            ("x-amz-target", "X-Amz-Target"),
            ("content-type", "Content-Type"),
            ("x-amz-content-sha256", "X-Amz-Content-SHA256"),
        ] {
            let required = name == "host" || name == date_header || headers.contains_key(name);
            let exempt = name == "date" && date_header == "x-amz-date";
            if required && !exempt && !auth.signs(name) {
                return Err(errors::invalid_signature(format!(
                    "'{shown}' must be a 'SignedHeader' in the AWS Authorization."
                )));
            }
        }

        let now = now
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        if request_time < now - MAX_SKEW_SECS {
            return Err(errors::invalid_signature(format!(
                "Signature expired: {amz_date} is now earlier than {} ({} - 5 min.)",
                sigv4::format_amz_date(now - MAX_SKEW_SECS),
                sigv4::format_amz_date(now)
            )));
        }
        if request_time > now + MAX_SKEW_SECS {
            return Err(errors::invalid_signature(format!(
                "Signature not yet current: {amz_date} is still later than {} ({} + 5 min.)",
                sigv4::format_amz_date(now + MAX_SKEW_SECS),
                sigv4::format_amz_date(now)
            )));
        }

        if headers.contains_key("x-amz-security-token") {
            return Err(errors::unrecognized());
        }

        let body_hash = sigv4::sha256_hex(request.body);
        if let Some(claimed) = headers.get("x-amz-content-sha256") {
            if !bool::from(claimed.as_bytes().ct_eq(body_hash.as_bytes())) {
                return Err(errors::invalid_signature(
                    "The provided 'x-amz-content-sha256' header does not match what was computed."
                        .into(),
                ));
            }
        }

        let mut hasher = digest::Context::new(&digest::SHA256);
        sigv4::canonical_request(
            &mut hasher,
            request.method,
            request.path,
            request.query,
            headers,
            auth.signed_headers,
            &body_hash,
        );
        let string_to_sign = sigv4::string_to_sign(&amz_date, auth.scope, hasher.finish().as_ref());
        Ok(Prepared {
            auth,
            string_to_sign,
            request_time,
            now,
        })
    }

    /// The credential's answer, then the replay check.
    fn finish(
        &self,
        prepared: &Prepared<'_>,
        checked: Result<String, CheckError>,
    ) -> Result<Identity, AuthError> {
        let Prepared {
            auth,
            request_time,
            now,
            ..
        } = prepared;
        let (request_time, now) = (*request_time, *now);
        let signature = prepared.claim().signature;
        let principal = match checked {
            Ok(principal) if auth.signature.is_some() => principal,
            Ok(_) | Err(CheckError::Mismatch) => return Err(errors::mismatch()),
            Err(CheckError::Unrecognized) => return Err(errors::unrecognized()),
            Err(CheckError::Store(_)) => return Err(errors::internal()),
        };
        if auth.signs(replay::NONCE_HEADER)
            && !self
                .replay
                .first_use(&signature, now, request_time + MAX_SKEW_SECS)
        {
            return Err(errors::invalid_signature(
                "Signature already used: keyplane refuses a request whose exact signature it \
                 accepted within the last 5 minutes (a replay). Sign each request anew."
                    .into(),
            ));
        }
        Ok(Identity {
            principal,
            access_key_id: auth.access_key_id.to_owned(),
        })
    }
}

/// A request that passed every check but the credential's and the replay guard's.
struct Prepared<'a> {
    auth: sigv4::Authorization<'a>,
    string_to_sign: String,
    /// The request's date and the server's clock, epoch seconds.
    request_time: i64,
    now: i64,
}

impl Prepared<'_> {
    /// What the credential store checks: the signature (zeros when the header had none: then no
    /// credential matches) of the string to sign, by the access key id, for the scope.
    fn claim(&self) -> SignatureClaim<'_> {
        SignatureClaim {
            access_key_id: self.auth.access_key_id,
            date: self.auth.date,
            region: self.auth.region,
            service: self.auth.service,
            string_to_sign: self.string_to_sign.as_bytes(),
            signature: self.auth.signature.unwrap_or([0u8; 32]),
        }
    }
}

/// The date header a request is dated by (`x-amz-date`, else `date`) and its value.
fn request_date(headers: &http::HeaderMap) -> Result<(&'static str, &str), AuthError> {
    for name in ["x-amz-date", "date"] {
        if let Some(value) = headers.get(name) {
            let text = value.to_str().map_err(|_| {
                errors::incomplete(format!("The '{name}' header is not printable ASCII."))
            })?;
            return Ok((name, text.trim()));
        }
    }
    Err(errors::incomplete(
        "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header."
            .into(),
    ))
}

/// At most 64 characters of client text for a message, control characters replaced.
fn short(text: &str) -> String {
    sigv4::printable(text, 64)
}
