//! SigV4 parsing and canonicalization: the `Authorization` header, request dates, the canonical
//! request (hashed as it is written, without building it) and the string to sign.
//!
//! Pure functions over borrowed input, so the fuzz target `sigv4_parse` can drive them directly.
//! Checking the signature itself happens in [`super::credentials`], where the secret is.

use aws_lc_rs::digest;

use super::errors::{self, AuthError};

/// The only algorithm SigV4 over HTTP headers uses.
pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";
/// The credential scope's last element.
pub const TERMINATOR: &str = "aws4_request";

/// A parsed `Authorization: AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=...`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorization<'a> {
    pub access_key_id: &'a str,
    /// `YYYYMMDD` from the credential scope.
    pub date: &'a str,
    pub region: &'a str,
    pub service: &'a str,
    pub terminator: &'a str,
    /// `date/region/service/terminator`, as the string to sign carries it.
    pub scope: &'a str,
    /// The signed header names, `;`-separated, as sent.
    pub signed_headers: &'a str,
    /// The signature's 32 bytes; `None` when it is not 64 hex digits (it then matches nothing).
    pub signature: Option<[u8; 32]>,
}

impl<'a> Authorization<'a> {
    /// The signed header names in order.
    pub fn signed_header_names(&self) -> impl Iterator<Item = &'a str> {
        self.signed_headers.split(';')
    }

    /// Whether `name` (lower case) is among the signed headers.
    pub fn signs(&self, name: &str) -> bool {
        self.signed_header_names()
            .any(|signed| signed.eq_ignore_ascii_case(name))
    }
}

/// Parses an `Authorization` header value. Errors are `IncompleteSignatureException`s naming what
/// is missing or malformed, as the service words them.
pub fn parse_authorization(value: &str) -> Result<Authorization<'_>, AuthError> {
    let value = value.trim();
    let (algorithm, rest) = match value.split_once([' ', '\t']) {
        Some((algorithm, rest)) => (algorithm, rest.trim_start()),
        None => (value, ""),
    };
    if algorithm != ALGORITHM {
        return Err(errors::incomplete(format!(
            "Unsupported AWS 'algorithm': '{}'. Use '{ALGORITHM}'.",
            printable(algorithm, 32)
        )));
    }
    let (mut credential, mut signed_headers, mut signature) = (None, None, None);
    for part in rest.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let Some((key, val)) = part.split_once('=') else {
            return Err(errors::incomplete(format!(
                "'{}' not a valid key=value pair (missing equal-sign) in Authorization header.",
                printable(part, 128)
            )));
        };
        match key.trim() {
            "Credential" => credential = Some(val.trim()),
            "SignedHeaders" => signed_headers = Some(val.trim()),
            "Signature" => signature = Some(val.trim()),
            _ => {}
        }
    }
    let mut missing = String::new();
    for (name, present) in [
        ("Credential", credential.is_some()),
        ("Signature", signature.is_some()),
        ("SignedHeaders", signed_headers.is_some()),
    ] {
        if !present {
            missing.push_str(&format!(
                "Authorization header requires '{name}' parameter. "
            ));
        }
    }
    let (Some(credential), Some(signed_headers), Some(signature)) =
        (credential, signed_headers, signature)
    else {
        return Err(errors::incomplete(missing.trim_end().to_owned()));
    };
    let elements: Vec<&str> = credential.split('/').collect();
    let [access_key_id, date, region, service, terminator] = elements[..] else {
        return Err(errors::incomplete(format!(
            "Credential must have exactly 5 slash-delimited elements, e.g. \
             keyid/date/region/service/term, got '{}'",
            printable(credential, 160)
        )));
    };
    if access_key_id.is_empty() {
        return Err(errors::incomplete(
            "Authorization header requires a non-empty access key id in 'Credential'.".into(),
        ));
    }
    if signed_headers.is_empty() || signed_headers.split(';').any(str::is_empty) {
        return Err(errors::incomplete(format!(
            "'SignedHeaders' in the Authorization header is not a ';'-separated list of header \
             names: '{}'",
            printable(signed_headers, 160)
        )));
    }
    Ok(Authorization {
        access_key_id,
        date,
        region,
        service,
        terminator,
        scope: &credential[access_key_id.len() + 1..],
        signed_headers,
        signature: parse_hex32(signature),
    })
}

/// At most `max` characters of `text`, control characters replaced, for an error message.
pub(crate) fn printable(text: &str, max: usize) -> String {
    text.chars()
        .take(max)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

fn parse_hex32(text: &str) -> Option<[u8; 32]> {
    let bytes = text.as_bytes();
    if bytes.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, pair) in bytes.chunks_exact(2).enumerate() {
        out[i] = (hex_digit(pair[0])? << 4) | hex_digit(pair[1])?;
    }
    Some(out)
}

fn hex_digit(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Lower-case hex of `bytes` into `out`.
pub fn hex_into(bytes: &[u8], out: &mut String) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for b in bytes {
        out.push(DIGITS[(b >> 4) as usize] as char);
        out.push(DIGITS[(b & 15) as usize] as char);
    }
}

/// Seconds since the epoch of an ISO 8601 basic date-time, `YYYYMMDDTHHMMSSZ`.
pub fn parse_amz_date(text: &str) -> Option<i64> {
    let b = text.as_bytes();
    if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
        return None;
    }
    let num = |range: std::ops::Range<usize>| -> Option<i64> {
        let digits = &b[range];
        digits.iter().all(u8::is_ascii_digit).then(|| {
            digits
                .iter()
                .fold(0i64, |n, d| n * 10 + i64::from(d - b'0'))
        })
    };
    civil_to_epoch(
        num(0..4)?,
        num(4..6)?,
        num(6..8)?,
        num(9..11)?,
        num(11..13)?,
        num(13..15)?,
    )
}

/// Seconds since the epoch of an HTTP date (IMF-fixdate, `Sun, 06 Nov 1994 08:49:37 GMT`).
pub fn parse_http_date(text: &str) -> Option<i64> {
    let parts: Vec<&str> = text.split_ascii_whitespace().collect();
    let [_, day, month, year, time, "GMT"] = parts[..] else {
        return None;
    };
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let month = MONTHS.iter().position(|m| *m == month)? as i64 + 1;
    let hms: Vec<&str> = time.split(':').collect();
    let [h, m, s] = hms[..] else { return None };
    let n = |t: &str, len: usize| -> Option<i64> {
        (t.len() == len && t.bytes().all(|b| b.is_ascii_digit()))
            .then(|| t.parse().ok())
            .flatten()
    };
    civil_to_epoch(n(year, 4)?, month, n(day, 2)?, n(h, 2)?, n(m, 2)?, n(s, 2)?)
}

fn civil_to_epoch(y: i64, m: i64, d: i64, hh: i64, mm: i64, ss: i64) -> Option<i64> {
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let days_in_month = match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return None,
    };
    if !(1..=days_in_month).contains(&d) || hh > 23 || mm > 59 || ss > 59 {
        return None;
    }
    let days = keyplane::clock::days_from_civil(y, m, d);
    Some(days * 86_400 + hh * 3600 + mm * 60 + ss)
}

/// `YYYYMMDDTHHMMSSZ` of seconds since the epoch.
pub fn format_amz_date(epoch: i64) -> String {
    keyplane::clock::CivilTime::from_unix_seconds(epoch).amz_date()
}

/// Where canonical request bytes go: a running SHA-256, or a buffer (tests, diagnostics).
pub trait Sink {
    fn put(&mut self, bytes: &[u8]);
}

impl Sink for digest::Context {
    fn put(&mut self, bytes: &[u8]) {
        self.update(bytes);
    }
}

impl Sink for Vec<u8> {
    fn put(&mut self, bytes: &[u8]) {
        self.extend_from_slice(bytes);
    }
}

/// Writes the canonical request into `out`: method, canonical URI, canonical query, the signed
/// headers' canonical lines, the signed header list and `payload_hash` (lower-case hex).
pub fn canonical_request(
    out: &mut dyn Sink,
    method: &str,
    path: &str,
    query: &str,
    headers: &http::HeaderMap,
    signed_headers: &str,
    payload_hash: &str,
) {
    out.put(method.as_bytes());
    out.put(b"\n");
    canonical_uri(out, path);
    out.put(b"\n");
    canonical_query(out, query);
    out.put(b"\n");
    for name in signed_headers.split(';') {
        out.put(name.as_bytes());
        out.put(b":");
        for (i, value) in headers.get_all(name).iter().enumerate() {
            if i > 0 {
                out.put(b",");
            }
            canonical_header_value(out, value.as_bytes());
        }
        out.put(b"\n");
    }
    out.put(b"\n");
    out.put(signed_headers.as_bytes());
    out.put(b"\n");
    out.put(payload_hash.as_bytes());
}

/// A header value trimmed, with each run of inner spaces and tabs made one space.
fn canonical_header_value(out: &mut dyn Sink, value: &[u8]) {
    let is_space = |b: &u8| *b == b' ' || *b == b'\t';
    let start = value
        .iter()
        .position(|b| !is_space(b))
        .unwrap_or(value.len());
    let end = value
        .iter()
        .rposition(|b| !is_space(b))
        .map_or(start, |i| i + 1);
    let mut run_start = start;
    let mut in_space = false;
    for i in start..end {
        let space = is_space(&value[i]);
        if space && !in_space {
            out.put(&value[run_start..i]);
            out.put(b" ");
        } else if !space && in_space {
            run_start = i;
        }
        in_space = space;
    }
    if run_start < end {
        out.put(&value[run_start..end]);
    }
}

fn unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

fn encode_into(out: &mut dyn Sink, bytes: &[u8], keep_slash: bool) {
    const DIGITS: &[u8; 16] = b"0123456789ABCDEF";
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        if unreserved(b) || (keep_slash && b == b'/') {
            continue;
        }
        out.put(&bytes[start..i]);
        out.put(&[b'%', DIGITS[(b >> 4) as usize], DIGITS[(b & 15) as usize]]);
        start = i + 1;
    }
    out.put(&bytes[start..]);
}

/// The path with empty and dot segments removed, each segment percent-decoded and URI-encoded the
/// SigV4 way (as the SigV4 test suite's normalized cases do; the service's path is always `/`).
fn canonical_uri(out: &mut dyn Sink, path: &str) {
    if path.is_empty() || path == "/" {
        out.put(b"/");
        return;
    }
    let mut segments: Vec<&str> = Vec::new();
    for segment in path.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            s => segments.push(s),
        }
    }
    for segment in &segments {
        out.put(b"/");
        encode_into(out, &percent_decode(segment), false);
    }
    if segments.is_empty() || path.ends_with('/') {
        out.put(b"/");
    }
}

fn percent_decode(text: &str) -> Vec<u8> {
    let b = text.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let (Some(h), Some(l)) = (hex_digit(b[i + 1]), hex_digit(b[i + 2])) {
                out.push((h << 4) | l);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    out
}

/// Query parameters decoded, re-encoded the SigV4 way and sorted by encoded name, then value.
fn canonical_query(out: &mut dyn Sink, query: &str) {
    if query.is_empty() {
        return;
    }
    let encoded = |text: &str| {
        let mut buf = Vec::with_capacity(text.len());
        encode_into(&mut buf, &percent_decode(text), false);
        buf
    };
    let mut pairs: Vec<(Vec<u8>, Vec<u8>)> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (encoded(k), encoded(v))
        })
        .collect();
    pairs.sort();
    for (i, (k, v)) in pairs.iter().enumerate() {
        if i > 0 {
            out.put(b"&");
        }
        out.put(k);
        out.put(b"=");
        out.put(v);
    }
}

/// Lower-case hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(64);
    hex_into(digest::digest(&digest::SHA256, bytes).as_ref(), &mut out);
    out
}

/// The string to sign: algorithm, request date-time, scope, hex hash of the canonical request.
pub fn string_to_sign(amz_date: &str, scope: &str, canonical_request_hash: &[u8]) -> String {
    let mut out = String::with_capacity(ALGORITHM.len() + amz_date.len() + scope.len() + 67);
    out.push_str(ALGORITHM);
    out.push('\n');
    out.push_str(amz_date);
    out.push('\n');
    out.push_str(scope);
    out.push('\n');
    hex_into(canonical_request_hash, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_round_trip() {
        let t = parse_amz_date("20150830T123600Z").unwrap();
        assert_eq!(t, 1_440_938_160);
        assert_eq!(format_amz_date(t), "20150830T123600Z");
        assert_eq!(parse_http_date("Sun, 30 Aug 2015 12:36:00 GMT"), Some(t));
        assert_eq!(parse_amz_date("20150230T123600Z"), None);
        assert_eq!(parse_amz_date("2015-08-30T12:36:00Z"), None);
    }

    #[test]
    fn header_values_are_trimmed_and_collapsed() {
        let mut out = Vec::new();
        canonical_header_value(&mut out, b"  a   b \t c  ");
        assert_eq!(out, b"a b c");
    }
}
