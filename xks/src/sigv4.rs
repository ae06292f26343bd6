//! SigV4 as the spec's Appendix A uses it: service `kms-xks-proxy`, the caller's Region, signed
//! headers `host;x-amz-date`, no query string, the SHA-256 of the JSON body. The signer is the
//! client's; the verifier is the proxy's (tasks 1 to 4 of the appendix, plus its five-minute
//! freshness rule).
//!
//! Paths here are made of `A-Z a-z 0-9 / - . _` only (the spec's alphabets for the URI path and
//! the key id), which SigV4's URI encoding leaves unchanged, so the canonical URI is the path.

use aws_lc_rs::{digest, hmac};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

/// The SigV4 service name of every XKS proxy request.
pub const SERVICE: &str = "kms-xks-proxy";
/// The only algorithm.
pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";
/// The headers KMS signs (HTTP/1.1).
pub const SIGNED_HEADERS: &str = "host;x-amz-date";
/// Requests further than this from the proxy's clock fail authentication (seconds).
pub const MAX_SKEW_SECONDS: i64 = 300;

/// An access key id and its secret access key. No `Clone`; `Debug` shows the id only; the secret
/// is zeroed on drop.
pub struct Credential {
    access_key_id: String,
    secret: Zeroizing<String>,
}

impl Credential {
    /// A credential. The spec's rules for the id (20 to 30 of `A-Z 2-7`) and the secret (43 to 64
    /// of `A-Z a-z 0-9 + / =`) are checked by [`Credential::check_spec_format`], not here, so
    /// tests may use other shapes.
    pub fn new(access_key_id: impl Into<String>, secret_access_key: impl Into<String>) -> Self {
        Credential {
            access_key_id: access_key_id.into(),
            secret: Zeroizing::new(secret_access_key.into()),
        }
    }

    /// The access key id.
    pub fn access_key_id(&self) -> &str {
        &self.access_key_id
    }

    /// Whether the id and secret have the shapes Appendix A and the console file format require;
    /// the reason when not.
    pub fn check_spec_format(&self) -> Result<(), &'static str> {
        let id = &self.access_key_id;
        if !(20..=30).contains(&id.len())
            || !id
                .bytes()
                .all(|b| b.is_ascii_uppercase() || (b'2'..=b'7').contains(&b))
        {
            return Err("the access key id must be 20 to 30 characters of A-Z and 2-7");
        }
        let secret = self.secret.as_bytes();
        if !(43..=64).contains(&secret.len())
            || !secret
                .iter()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'='))
        {
            return Err("the secret access key must be 43 to 64 characters of A-Z a-z 0-9 + / =");
        }
        Ok(())
    }

    fn signing_key(&self, date: &str, region: &str) -> hmac::Key {
        let mut k_secret = Zeroizing::new(String::with_capacity(4 + self.secret.len()));
        k_secret.push_str("AWS4");
        k_secret.push_str(&self.secret);
        let step = |key: &[u8], data: &str| {
            hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, key), data.as_bytes())
        };
        let k_date = step(k_secret.as_bytes(), date);
        let k_region = step(k_date.as_ref(), region);
        let k_service = step(k_region.as_ref(), SERVICE);
        let k_signing = step(k_service.as_ref(), "aws4_request");
        hmac::Key::new(hmac::HMAC_SHA256, k_signing.as_ref())
    }
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Credential({}, secret redacted)", self.access_key_id)
    }
}

/// Lowercase hex.
pub fn hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex(digest::digest(&digest::SHA256, bytes).as_ref())
}

/// `YYYYMMDD'T'HHMMSS'Z'` for seconds since the Unix epoch.
pub fn format_amz_date(epoch: i64) -> String {
    keyplane::clock::CivilTime::from_unix_seconds(epoch).amz_date()
}

/// Seconds since the epoch of a `YYYYMMDD'T'HHMMSS'Z'` date; `None` when malformed.
pub fn parse_amz_date(text: &str) -> Option<i64> {
    let b = text.as_bytes();
    if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let s = text.get(r)?;
        if !s.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        s.parse().ok()
    };
    let (y, mo, d) = (num(0..4)?, num(4..6)?, num(6..8)?);
    let (h, mi, s) = (num(9..11)?, num(11..13)?, num(13..15)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || s > 60 {
        return None;
    }
    let days = keyplane::clock::days_from_civil(y, mo, d);
    let epoch = days * 86_400 + h * 3600 + mi * 60 + s;
    (format_amz_date(epoch) == text).then_some(epoch)
}

/// A header value as SigV4 canonicalises it: trimmed, inner runs of spaces made one.
fn canonical_value(value: &str) -> String {
    value.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The canonical request of a POST without a query string.
fn canonical_request(
    method: &str,
    path: &str,
    headers: &[(String, String)],
    signed: &str,
    body: &[u8],
) -> String {
    let mut out = format!("{method}\n{path}\n\n");
    for (name, value) in headers {
        out.push_str(name);
        out.push(':');
        out.push_str(value);
        out.push('\n');
    }
    out.push('\n');
    out.push_str(signed);
    out.push('\n');
    out.push_str(&sha256_hex(body));
    out
}

fn string_to_sign(amz_date: &str, scope: &str, canonical: &str) -> String {
    format!(
        "{ALGORITHM}\n{amz_date}\n{scope}\n{}",
        sha256_hex(canonical.as_bytes())
    )
}

/// The two headers a signed request carries besides `Host`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Signature {
    pub authorization: String,
    pub amz_date: String,
}

/// Signs a POST of `body` to `path` on `host` (the `Host` header's value, `server[:port]`) at
/// `epoch` seconds, for `region`.
pub fn sign(
    credential: &Credential,
    region: &str,
    host: &str,
    path: &str,
    body: &[u8],
    epoch: i64,
) -> Signature {
    let amz_date = format_amz_date(epoch);
    let date = &amz_date[..8];
    let scope = format!("{date}/{region}/{SERVICE}/aws4_request");
    let headers = [
        ("host".to_owned(), canonical_value(host)),
        ("x-amz-date".to_owned(), amz_date.clone()),
    ];
    let canonical = canonical_request("POST", path, &headers, SIGNED_HEADERS, body);
    let to_sign = string_to_sign(&amz_date, &scope, &canonical);
    let signature = hmac::sign(&credential.signing_key(date, region), to_sign.as_bytes());
    Signature {
        authorization: format!(
            "{ALGORITHM} Credential={}/{scope}, SignedHeaders={SIGNED_HEADERS}, Signature={}",
            credential.access_key_id,
            hex(signature.as_ref())
        ),
        amz_date,
    }
}

/// Why a request failed authentication (all become AuthenticationFailedException, HTTP 401).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("the request has no Authorization header")]
    MissingAuthorization,
    #[error("the Authorization header is not AWS4-HMAC-SHA256 with Credential, SignedHeaders and Signature")]
    MalformedAuthorization,
    #[error("the credential scope is not <date>/<region>/kms-xks-proxy/aws4_request")]
    WrongScope,
    #[error("the signed headers must include host and x-amz-date, in order, and be present")]
    UnsignedHeaders,
    #[error("the X-Amz-Date header is missing or malformed, or disagrees with the scope's date")]
    BadDate,
    #[error("the request time is more than five minutes from the proxy's clock")]
    Stale,
    #[error("the access key id is not known to this proxy")]
    UnknownAccessKey,
    #[error("the signature does not match")]
    SignatureMismatch,
}

/// What the verifier needs of a request. Header names are compared case-insensitively; a header
/// present more than once has its values joined with `,` as SigV4 does.
#[derive(Debug)]
pub struct RequestParts<'a> {
    pub method: &'a str,
    pub path: &'a str,
    /// Every header of the request (name, value).
    pub headers: &'a [(String, String)],
    pub body: &'a [u8],
}

impl RequestParts<'_> {
    fn header(&self, name: &str) -> Option<String> {
        let values: Vec<&str> = self
            .headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect();
        (!values.is_empty()).then(|| {
            values
                .iter()
                .map(|v| canonical_value(v))
                .collect::<Vec<_>>()
                .join(",")
        })
    }
}

/// Verifies a request's SigV4 signature against the credential its access key id names (so two
/// or more credentials may be active at once, for rotation), at `now` seconds since the epoch.
/// Returns the access key id that signed it.
pub fn verify<'c>(
    request: &RequestParts<'_>,
    credentials: &'c [Credential],
    now: i64,
) -> Result<&'c str, VerifyError> {
    let value = request
        .header("authorization")
        .ok_or(VerifyError::MissingAuthorization)?;
    let rest = value
        .strip_prefix(ALGORITHM)
        .and_then(|r| r.strip_prefix(' '))
        .ok_or(VerifyError::MalformedAuthorization)?;
    let (mut credential, mut signed, mut signature) = (None, None, None);
    for part in rest.split(',').map(str::trim) {
        match part.split_once('=') {
            Some(("Credential", v)) if credential.is_none() => credential = Some(v),
            Some(("SignedHeaders", v)) if signed.is_none() => signed = Some(v),
            Some(("Signature", v)) if signature.is_none() => signature = Some(v),
            _ => return Err(VerifyError::MalformedAuthorization),
        }
    }
    let (Some(credential), Some(signed), Some(signature)) = (credential, signed, signature) else {
        return Err(VerifyError::MalformedAuthorization);
    };
    let [key_id, date, region, service, terminator] = credential.split('/').collect::<Vec<_>>()[..]
    else {
        return Err(VerifyError::WrongScope);
    };
    if service != SERVICE || terminator != "aws4_request" || region.is_empty() {
        return Err(VerifyError::WrongScope);
    }
    let names: Vec<&str> = signed.split(';').collect();
    let sorted = names.windows(2).all(|w| w[0] < w[1]);
    if !sorted
        || !names.contains(&"host")
        || !names.contains(&"x-amz-date")
        || names
            .iter()
            .any(|n| n.is_empty() || n.bytes().any(|b| b.is_ascii_uppercase()))
    {
        return Err(VerifyError::UnsignedHeaders);
    }
    let mut headers = Vec::with_capacity(names.len());
    for name in &names {
        let value = request.header(name).ok_or(VerifyError::UnsignedHeaders)?;
        headers.push(((*name).to_owned(), value));
    }
    let amz_date = request.header("x-amz-date").ok_or(VerifyError::BadDate)?;
    let when = parse_amz_date(&amz_date).ok_or(VerifyError::BadDate)?;
    if &amz_date[..8] != date {
        return Err(VerifyError::BadDate);
    }
    if (now - when).abs() > MAX_SKEW_SECONDS {
        return Err(VerifyError::Stale);
    }
    let found = credentials
        .iter()
        .find(|c| bool::from(c.access_key_id.as_bytes().ct_eq(key_id.as_bytes())))
        .ok_or(VerifyError::UnknownAccessKey)?;
    let canonical = canonical_request(request.method, request.path, &headers, signed, request.body);
    let scope = &credential[key_id.len() + 1..];
    let to_sign = string_to_sign(&amz_date, scope, &canonical);
    let expected = hmac::sign(&found.signing_key(date, region), to_sign.as_bytes());
    let expected = hex(expected.as_ref());
    if bool::from(expected.as_bytes().ct_eq(signature.as_bytes())) {
        Ok(found.access_key_id())
    } else {
        Err(VerifyError::SignatureMismatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_round_trip() {
        for epoch in [0, 951_782_400, 1_633_737_600, 4_102_444_799] {
            assert_eq!(parse_amz_date(&format_amz_date(epoch)), Some(epoch));
        }
        assert_eq!(format_amz_date(1_633_737_600), "20211009T000000Z");
        assert_eq!(parse_amz_date("20210230T000000Z"), None);
        assert_eq!(parse_amz_date("2021-10-09T0000Z"), None);
    }

    fn signed(body: &[u8], at: i64) -> Vec<(String, String)> {
        let credential = Credential::new("AKIDEXAMPLEAKIDEXAMPLE", "secret");
        let s = sign(
            &credential,
            "us-east-1",
            "proxy:443",
            "/kms/xks/v1/health",
            body,
            at,
        );
        vec![
            ("Host".into(), "proxy:443".into()),
            ("X-Amz-Date".into(), s.amz_date),
            ("Authorization".into(), s.authorization),
        ]
    }

    #[test]
    fn a_signed_request_verifies_and_every_change_fails() {
        let creds = [
            Credential::new("OLDKEYOLDKEYOLDKEYOLD", "old"),
            Credential::new("AKIDEXAMPLEAKIDEXAMPLE", "secret"),
        ];
        let at = 1_700_000_000;
        let headers = signed(b"{}", at);
        let parts = |path, body, headers| RequestParts {
            method: "POST",
            path,
            headers,
            body,
        };
        assert_eq!(
            verify(
                &parts("/kms/xks/v1/health", b"{}", &headers),
                &creds,
                at + 10
            ),
            Ok("AKIDEXAMPLEAKIDEXAMPLE")
        );
        assert_eq!(
            verify(&parts("/kms/xks/v1/health", b"{ }", &headers), &creds, at),
            Err(VerifyError::SignatureMismatch)
        );
        assert_eq!(
            verify(&parts("/x/kms/xks/v1/health", b"{}", &headers), &creds, at),
            Err(VerifyError::SignatureMismatch)
        );
        assert_eq!(
            verify(
                &parts("/kms/xks/v1/health", b"{}", &headers),
                &creds,
                at + 301
            ),
            Err(VerifyError::Stale)
        );
        assert_eq!(
            verify(
                &parts("/kms/xks/v1/health", b"{}", &headers),
                &creds[..1],
                at
            ),
            Err(VerifyError::UnknownAccessKey)
        );
        let mut other_host = headers.clone();
        other_host[0].1 = "evil:443".into();
        assert_eq!(
            verify(&parts("/kms/xks/v1/health", b"{}", &other_host), &creds, at),
            Err(VerifyError::SignatureMismatch)
        );
        let mut kms_service = headers.clone();
        kms_service[2].1 = kms_service[2].1.replace("kms-xks-proxy", "kms");
        assert_eq!(
            verify(
                &parts("/kms/xks/v1/health", b"{}", &kms_service),
                &creds,
                at
            ),
            Err(VerifyError::WrongScope)
        );
        let mut unsigned_date = headers.clone();
        unsigned_date[2].1 = unsigned_date[2].1.replace("host;x-amz-date", "host");
        assert_eq!(
            verify(
                &parts("/kms/xks/v1/health", b"{}", &unsigned_date),
                &creds,
                at
            ),
            Err(VerifyError::UnsignedHeaders)
        );
    }

    #[test]
    fn spec_shaped_credentials_are_checked() {
        assert!(Credential::new(
            "AKIAI2SFODNN7EXAMPLE",
            "FYtE5EFA5FT0mCc3DrGUe2sti527BitkQ0Zr9MO9fvE"
        )
        .check_spec_format()
        .is_ok());
        assert!(
            Credential::new("short", "FYtE5EFA5FT0mCc3DrGUe2sti527BitkQ0Zr9MO9fvE")
                .check_spec_format()
                .is_err()
        );
        assert!(Credential::new("AKIAI2SFODNN7EXAMPLE", "tooshort")
            .check_spec_format()
            .is_err());
    }
}
