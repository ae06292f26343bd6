//! `XksClient`: the blocking client of one XKS proxy — HTTPS with certificate verification
//! (rustls on AWS-LC), SigV4 as Appendix A, the spec's 250 ms budget per call, answers checked
//! against the spec (sizes, CDIV) and every failure an [`XksError`].
//!
//! Each call opens its own connection and runs under its own deadline (connect, TLS handshake,
//! request and response together), so a slow or dead proxy holds only the callers that use it,
//! each for at most the timeout; callers of other proxies never wait on it. Name resolution is the
//! system resolver's and is not under the deadline: give the endpoint as an address, or a name
//! the host resolves locally, where that matters.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore};
use serde::de::DeserializeOwned;

use crate::api::{
    self, Base64Bytes, CryptoRequestMetadata, DecryptRequest, DecryptResponse, EncryptRequest,
    EncryptResponse, ErrorBody, HealthRequest, HealthRequestMetadata, HealthResponse,
    KeyMetadataRequest, KeyMetadataRequestMetadata, KeyMetadataResponse, Route, SecretBase64,
};
use crate::cdiv::cdiv_sha256;
use crate::error::{XksError, XksErrorKind};
use crate::sigv4::{self, Credential};

/// The spec's bound: KMS fails a call the proxy has not answered within 250 ms.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_millis(250);
/// The largest response read (the largest valid one, an Encrypt answer, is under 12 KiB).
const MAX_RESPONSE_BYTES: usize = 64 * 1024;

/// Where the client's trust anchors come from.
#[derive(Clone, Debug)]
pub enum TrustAnchors {
    /// A PEM bundle of CA certificates (a private CA, or the proxy's self-signed CA).
    CaBundle(PathBuf),
    /// The platform's bundle: `SSL_CERT_FILE`, else `/etc/ssl/certs/ca-certificates.crt`.
    Platform,
}

/// How to reach one proxy.
#[derive(Debug)]
pub struct XksClientConfig {
    /// `https://<server>[:<port>]` (the service's `XksProxyUriEndpoint`); `http://` only with
    /// `allow_plain_http_to_loopback` and a loopback address.
    pub endpoint: String,
    /// `[/<prefix>]/kms/xks/v1` (the service's `XksProxyUriPath`).
    pub uri_path: String,
    pub credential: Credential,
    /// The Region in the signature's scope (the Region KMS calls from).
    pub region: String,
    pub trust: TrustAnchors,
    /// The whole budget of one call; [`DEFAULT_TIMEOUT`] is the spec's.
    pub timeout: Duration,
    /// For tests: allow `http://` to a loopback address. Never to any other host.
    pub allow_plain_http_to_loopback: bool,
}

impl XksClientConfig {
    /// A configuration with the spec's timeout, platform trust anchors and HTTPS only.
    pub fn new(endpoint: &str, uri_path: &str, credential: Credential, region: &str) -> Self {
        XksClientConfig {
            endpoint: endpoint.to_owned(),
            uri_path: uri_path.to_owned(),
            credential,
            region: region.to_owned(),
            trust: TrustAnchors::Platform,
            timeout: DEFAULT_TIMEOUT,
            allow_plain_http_to_loopback: false,
        }
    }
}

/// A configuration the client cannot use.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

/// What the proxy's Encrypt returned, checked: everything the caller must keep to decrypt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct XksCiphertext {
    pub ciphertext: Vec<u8>,
    /// At most 20 bytes, when the proxy returns any.
    pub ciphertext_metadata: Option<Vec<u8>>,
    /// 12 or 16 bytes.
    pub initialization_vector: Vec<u8>,
    /// 16 bytes.
    pub authentication_tag: Vec<u8>,
}

/// A client of one XKS proxy. Cheap to share (`&self` calls from many threads).
#[derive(Debug)]
pub struct XksClient {
    host: String,
    port: u16,
    host_header: String,
    tls: Option<(Arc<ClientConfig>, ServerName<'static>)>,
    uri_path: String,
    credential: Credential,
    region: String,
    timeout: Duration,
}

fn err(kind: XksErrorKind, detail: impl Into<String>) -> XksError {
    XksError::new(kind, detail)
}

impl XksClient {
    /// A client for `config`. Checks the endpoint, the URI path and the trust anchors.
    pub fn new(config: XksClientConfig) -> Result<XksClient, ConfigError> {
        let bad = |m: String| ConfigError(m);
        let (https, rest) = if let Some(rest) = config.endpoint.strip_prefix("https://") {
            (true, rest)
        } else if let Some(rest) = config.endpoint.strip_prefix("http://") {
            (false, rest)
        } else {
            return Err(bad(format!(
                "the proxy endpoint must start with https:// (got {:?})",
                config.endpoint
            )));
        };
        let rest = rest.trim_end_matches('/');
        if rest.is_empty() || rest.contains(['/', '?', '#', '@']) {
            return Err(bad(
                "the proxy endpoint is https://<server>[:<port>], without a path (the path is \
                 the URI path)"
                    .into(),
            ));
        }
        let (host, port) = split_host_port(rest, if https { 443 } else { 80 })
            .ok_or_else(|| bad(format!("cannot read a host and port from {rest:?}")))?;
        if !api::valid_uri_path(&config.uri_path) {
            return Err(bad(format!(
                "the URI path must be at most 128 characters of a-z A-Z 0-9 / - _ and end in \
                 {} (got {:?})",
                api::API_ROOT,
                config.uri_path
            )));
        }
        let default_port = if https { 443 } else { 80 };
        let bracketed = if host.contains(':') {
            format!("[{host}]")
        } else {
            host.clone()
        };
        let host_header = if port == default_port {
            bracketed
        } else {
            format!("{bracketed}:{port}")
        };
        let tls = if https {
            let roots = load_roots(&config.trust)?;
            let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
            let mut tls = ClientConfig::builder_with_provider(provider)
                .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
                .map_err(|e| bad(e.to_string()))?
                .with_root_certificates(roots)
                .with_no_client_auth();
            tls.alpn_protocols = vec![b"http/1.1".to_vec()];
            let name = ServerName::try_from(host.clone())
                .map_err(|_| bad(format!("{host:?} is not a valid server name")))?;
            Some((Arc::new(tls), name))
        } else {
            if !config.allow_plain_http_to_loopback {
                return Err(bad(
                    "plain HTTP is refused: the XKS proxy API is HTTPS only".into(),
                ));
            }
            let addrs: Vec<SocketAddr> = (host.as_str(), port)
                .to_socket_addrs()
                .map_err(|e| bad(format!("cannot resolve {host}: {e}")))?
                .collect();
            if addrs.is_empty() || !addrs.iter().all(|a| a.ip().is_loopback()) {
                return Err(bad(format!(
                    "plain HTTP is allowed only to a loopback address, and {host} is not one"
                )));
            }
            None
        };
        Ok(XksClient {
            host,
            port,
            host_header,
            tls,
            uri_path: config.uri_path,
            credential: config.credential,
            region: config.region,
            timeout: config.timeout,
        })
    }

    /// GetHealthStatus. The answer is checked: a fleet size above zero, one to ten managers.
    pub fn health_status(
        &self,
        metadata: &HealthRequestMetadata,
    ) -> Result<HealthResponse, XksError> {
        let body = HealthRequest {
            request_metadata: metadata.clone(),
        };
        let answer: HealthResponse = self.call(&Route::Health, &body)?;
        if answer.xks_proxy_fleet_size == 0
            || answer.ekm_fleet_details.is_empty()
            || answer.ekm_fleet_details.len() > 10
        {
            return Err(err(
                XksErrorKind::MalformedResponse,
                "GetHealthStatus: a fleet size of zero, or not 1 to 10 ekmFleetDetails",
            ));
        }
        Ok(answer)
    }

    /// GetKeyMetadata of `key_id`. The answer is checked for shape (at most ten usages), not for
    /// usability: the caller decides what an AES_256 key without ENCRYPT means for it.
    pub fn key_metadata(
        &self,
        key_id: &str,
        metadata: &KeyMetadataRequestMetadata,
    ) -> Result<KeyMetadataResponse, XksError> {
        let route = Route::KeyMetadata(checked_key_id(key_id)?);
        let body = KeyMetadataRequest {
            request_metadata: metadata.clone(),
        };
        let answer: KeyMetadataResponse = self.call(&route, &body)?;
        if answer.key_usage.len() > 10 {
            return Err(err(
                XksErrorKind::MalformedResponse,
                "GetKeyMetadata: more than ten keyUsage values",
            ));
        }
        Ok(answer)
    }

    /// Encrypt `plaintext` under `key_id` with `aad`. Always asks for the CDIV and checks it (and
    /// the sizes of every member) before returning, as KMS does.
    pub fn encrypt(
        &self,
        key_id: &str,
        plaintext: &[u8],
        aad: Option<&[u8]>,
        metadata: &CryptoRequestMetadata,
    ) -> Result<XksCiphertext, XksError> {
        let route = Route::Encrypt(checked_key_id(key_id)?);
        let body = EncryptRequest {
            request_metadata: metadata.clone(),
            additional_authenticated_data: aad.map(|a| Base64Bytes(a.to_vec())),
            plaintext: SecretBase64::new(plaintext.to_vec()),
            encryption_algorithm: api::AES_GCM.into(),
            ciphertext_data_integrity_value_algorithm: Some(api::SHA_256.into()),
        };
        let answer: EncryptResponse = self.call(&route, &body)?;
        let invalid = |what: &str| err(XksErrorKind::InvalidCiphertextReturned, what.to_owned());
        let metadata_bytes = answer.ciphertext_metadata.as_ref().map(|m| &m.0[..]);
        if answer.ciphertext.0.len() != plaintext.len() {
            return Err(invalid("the ciphertext is not as long as the plaintext"));
        }
        if !matches!(answer.initialization_vector.0.len(), 12 | 16) {
            return Err(invalid("the initialization vector is not 12 or 16 bytes"));
        }
        if answer.authentication_tag.0.len() != api::TAG_BYTES {
            return Err(invalid("the authentication tag is not 16 bytes"));
        }
        if metadata_bytes.is_some_and(|m| m.len() > api::MAX_CIPHERTEXT_METADATA_BYTES) {
            return Err(invalid("the ciphertext metadata is longer than 20 bytes"));
        }
        let expected = cdiv_sha256(
            aad.unwrap_or_default(),
            metadata_bytes.unwrap_or_default(),
            &answer.initialization_vector.0,
            &answer.ciphertext.0,
            &answer.authentication_tag.0,
        );
        match &answer.ciphertext_data_integrity_value {
            Some(value) if value.0 == expected => {}
            Some(_) => {
                return Err(invalid(
                    "the ciphertext data integrity value does not match",
                ))
            }
            None => {
                return Err(invalid(
                    "the ciphertext data integrity value was asked for and is missing",
                ))
            }
        }
        Ok(XksCiphertext {
            ciphertext: answer.ciphertext.0,
            ciphertext_metadata: answer.ciphertext_metadata.map(|m| m.0),
            initialization_vector: answer.initialization_vector.0,
            authentication_tag: answer.authentication_tag.0,
        })
    }

    /// Decrypt `ciphertext` under `key_id` with `aad` (the same AAD given to encrypt). The
    /// plaintext must be as long as the ciphertext.
    pub fn decrypt(
        &self,
        key_id: &str,
        ciphertext: &XksCiphertext,
        aad: Option<&[u8]>,
        metadata: &CryptoRequestMetadata,
    ) -> Result<SecretBase64, XksError> {
        let route = Route::Decrypt(checked_key_id(key_id)?);
        let body = DecryptRequest {
            request_metadata: metadata.clone(),
            ciphertext: Base64Bytes(ciphertext.ciphertext.clone()),
            ciphertext_metadata: ciphertext.ciphertext_metadata.clone().map(Base64Bytes),
            encryption_algorithm: api::AES_GCM.into(),
            additional_authenticated_data: aad.map(|a| Base64Bytes(a.to_vec())),
            authentication_tag: Base64Bytes(ciphertext.authentication_tag.clone()),
            initialization_vector: Base64Bytes(ciphertext.initialization_vector.clone()),
        };
        let answer: DecryptResponse = self.call(&route, &body)?;
        if answer.plaintext.expose().len() != ciphertext.ciphertext.len() {
            return Err(err(
                XksErrorKind::MalformedResponse,
                "Decrypt: the plaintext is not as long as the ciphertext",
            ));
        }
        Ok(answer.plaintext)
    }

    /// One signed POST and its answer, within the timeout.
    fn call<B: serde::Serialize, R: DeserializeOwned>(
        &self,
        route: &Route,
        body: &B,
    ) -> Result<R, XksError> {
        let path = route.path(&self.uri_path);
        let body = zeroize::Zeroizing::new(
            serde_json::to_vec(body)
                .map_err(|e| err(XksErrorKind::Internal, format!("cannot encode: {e}")))?,
        );
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        let signature = sigv4::sign(
            &self.credential,
            &self.region,
            &self.host_header,
            &path,
            &body,
            now,
        );
        let mut request = zeroize::Zeroizing::new(Vec::with_capacity(body.len() + 512));
        request.extend_from_slice(
            format!(
                "POST {path} HTTP/1.1\r\nHost: {}\r\nX-Amz-Date: {}\r\nAuthorization: {}\r\n\
                 Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                self.host_header,
                signature.amz_date,
                signature.authorization,
                body.len()
            )
            .as_bytes(),
        );
        request.extend_from_slice(&body);
        let deadline = Instant::now() + self.timeout;
        let (status, response) = self.exchange(&request, deadline)?;
        let response = zeroize::Zeroizing::new(response);
        if status == 200 {
            return serde_json::from_slice(&response).map_err(|e| {
                err(
                    XksErrorKind::MalformedResponse,
                    format!("a 200 answer not of the operation's shape: {e}"),
                )
            });
        }
        let error: ErrorBody = serde_json::from_slice(&response).map_err(|_| {
            err(
                XksErrorKind::MalformedResponse,
                format!("HTTP {status} without a JSON errorName"),
            )
        })?;
        let kind = XksErrorKind::from_error_name(&error.error_name).ok_or_else(|| {
            err(
                XksErrorKind::MalformedResponse,
                format!(
                    "HTTP {status} with an unknown errorName {:?}",
                    api::clean_error_message(&error.error_name)
                ),
            )
        })?;
        let message = error
            .error_message
            .as_deref()
            .map(api::clean_error_message)
            .unwrap_or_default();
        Err(err(
            kind,
            format!("HTTP {status} {}: {message}", error.error_name),
        ))
    }

    /// Connects, writes `request`, reads the response; returns status and body.
    fn exchange(&self, request: &[u8], deadline: Instant) -> Result<(u16, Vec<u8>), XksError> {
        let addrs: Vec<SocketAddr> = (self.host.as_str(), self.port)
            .to_socket_addrs()
            .map_err(|e| err(XksErrorKind::TcpConnect, format!("cannot resolve: {e}")))?
            .collect();
        let mut last = err(XksErrorKind::TcpConnect, "the name resolved to no address");
        let mut socket = None;
        for addr in addrs {
            let left = remaining(deadline)?;
            match TcpStream::connect_timeout(&addr, left) {
                Ok(s) => {
                    socket = Some(s);
                    break;
                }
                Err(e) if is_timeout(&e) => return Err(timeout("connecting")),
                Err(e) => last = err(XksErrorKind::TcpConnect, format!("connect {addr}: {e}")),
            }
        }
        let mut socket = socket.ok_or(last)?;
        let _ = socket.set_nodelay(true);
        match &self.tls {
            None => exchange_on(&mut socket, request, deadline, |s| s, |s| s),
            Some((config, name)) => {
                let mut tls = ClientConnection::new(Arc::clone(config), name.clone())
                    .map_err(|e| err(XksErrorKind::TlsConnect, e.to_string()))?;
                while tls.is_handshaking() {
                    set_timeouts(&socket, deadline)?;
                    if let Err(e) = tls.complete_io(&mut socket) {
                        return Err(if is_timeout(&e) {
                            timeout("in the TLS handshake")
                        } else {
                            err(XksErrorKind::TlsConnect, format!("TLS handshake: {e}"))
                        });
                    }
                }
                let mut stream = rustls::StreamOwned::new(tls, socket);
                exchange_on(
                    &mut stream,
                    request,
                    deadline,
                    |s| &mut s.sock,
                    |s| &mut s.sock,
                )
            }
        }
    }
}

fn exchange_on<S: Read + Write>(
    stream: &mut S,
    request: &[u8],
    deadline: Instant,
    socket_of: impl Fn(&mut S) -> &mut TcpStream,
    socket_again: impl Fn(&mut S) -> &mut TcpStream,
) -> Result<(u16, Vec<u8>), XksError> {
    set_timeouts(socket_of(stream), deadline)?;
    stream
        .write_all(request)
        .map_err(|e| io_failure(e, "sending"))?;
    stream.flush().map_err(|e| io_failure(e, "sending"))?;
    let mut buffer = Vec::with_capacity(4096);
    let mut chunk = [0u8; 8192];
    loop {
        if let Some(done) = parse_response(&buffer, false) {
            return done;
        }
        set_timeouts(socket_again(stream), deadline)?;
        match stream.read(&mut chunk) {
            Ok(0) => {
                return parse_response(&buffer, true).unwrap_or_else(|| {
                    Err(err(
                        XksErrorKind::MalformedResponse,
                        "the connection closed before a complete response",
                    ))
                })
            }
            Ok(n) => {
                buffer.extend_from_slice(&chunk[..n]);
                if buffer.len() > MAX_RESPONSE_BYTES {
                    return Err(err(
                        XksErrorKind::MalformedResponse,
                        "the response is larger than any valid answer",
                    ));
                }
            }
            // A peer that closes without close_notify: what arrived is what there is.
            Err(e) if e.kind() == ErrorKind::UnexpectedEof => {
                return parse_response(&buffer, true).unwrap_or_else(|| {
                    Err(err(
                        XksErrorKind::MalformedResponse,
                        "the connection closed before a complete response",
                    ))
                })
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(io_failure(e, "reading the response")),
        }
    }
}

/// `Some` once `buffer` holds a whole response (or, at `eof`, as much as there will be).
fn parse_response(buffer: &[u8], eof: bool) -> Option<Result<(u16, Vec<u8>), XksError>> {
    let malformed = |d: &str| Some(Err(err(XksErrorKind::MalformedResponse, d.to_owned())));
    let end = buffer.windows(4).position(|w| w == b"\r\n\r\n");
    let Some(end) = end else {
        return eof.then(|| Err(err(XksErrorKind::MalformedResponse, "not an HTTP response")));
    };
    let Ok(head) = std::str::from_utf8(&buffer[..end]) else {
        return malformed("response headers are not UTF-8");
    };
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let mut parts = status_line.splitn(3, ' ');
    let (Some(version), Some(code)) = (parts.next(), parts.next()) else {
        return malformed("no status line");
    };
    let Some(status) = version
        .starts_with("HTTP/1.")
        .then(|| code.parse::<u16>().ok())
        .flatten()
    else {
        return malformed("not an HTTP/1.x status line");
    };
    let (mut length, mut chunked) = (None, false);
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            return malformed("a header line without a colon");
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            match value.parse::<usize>() {
                Ok(n) if n <= MAX_RESPONSE_BYTES => length = Some(n),
                _ => return malformed("a bad Content-Length"),
            }
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = value.eq_ignore_ascii_case("chunked");
        }
    }
    let body = &buffer[end + 4..];
    if chunked {
        return match dechunk(body) {
            Some(body) => Some(Ok((status, body))),
            None if eof => malformed("a chunked body cut short"),
            None => None,
        };
    }
    match length {
        Some(n) if body.len() >= n => Some(Ok((status, body[..n].to_vec()))),
        Some(_) if eof => malformed("a body shorter than its Content-Length"),
        Some(_) => None,
        None if eof => Some(Ok((status, body.to_vec()))),
        None => None,
    }
}

/// The body of a complete chunked encoding; `None` while incomplete or malformed.
fn dechunk(mut data: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = data.windows(2).position(|w| w == b"\r\n")?;
        let size_text = std::str::from_utf8(&data[..line_end]).ok()?;
        let size_text = size_text.split(';').next()?.trim();
        let size = usize::from_str_radix(size_text, 16).ok()?;
        data = &data[line_end + 2..];
        if size == 0 {
            return Some(out);
        }
        if data.len() < size + 2 || size > MAX_RESPONSE_BYTES {
            return None;
        }
        out.extend_from_slice(&data[..size]);
        data = &data[size + 2..];
    }
}

fn checked_key_id(key_id: &str) -> Result<String, XksError> {
    if api::valid_key_id(key_id) {
        Ok(key_id.to_owned())
    } else {
        Err(err(
            XksErrorKind::Validation,
            "an external key id is 1 to 128 characters of A-Z a-z 0-9 - . _",
        ))
    }
}

fn remaining(deadline: Instant) -> Result<Duration, XksError> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        Err(timeout("before an answer"))
    } else {
        Ok(left)
    }
}

fn set_timeouts(socket: &TcpStream, deadline: Instant) -> Result<(), XksError> {
    let left = remaining(deadline)?;
    socket
        .set_read_timeout(Some(left))
        .and_then(|()| socket.set_write_timeout(Some(left)))
        .map_err(|e| err(XksErrorKind::TcpConnect, e.to_string()))
}

fn timeout(during: &str) -> XksError {
    err(
        XksErrorKind::Timeout,
        format!("no answer within the timeout ({during})"),
    )
}

fn is_timeout(e: &std::io::Error) -> bool {
    matches!(e.kind(), ErrorKind::TimedOut | ErrorKind::WouldBlock)
}

fn io_failure(e: std::io::Error, during: &str) -> XksError {
    if is_timeout(&e) {
        timeout(during)
    } else {
        err(XksErrorKind::TcpConnect, format!("{during}: {e}"))
    }
}

fn split_host_port(text: &str, default_port: u16) -> Option<(String, u16)> {
    if let Some(rest) = text.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        let port = match after.strip_prefix(':') {
            Some(p) => p.parse().ok()?,
            None if after.is_empty() => default_port,
            None => return None,
        };
        return Some((host.to_owned(), port));
    }
    match text.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') => Some((host.to_owned(), port.parse().ok()?)),
        Some(_) => None,
        None => Some((text.to_owned(), default_port)),
    }
}

fn load_roots(trust: &TrustAnchors) -> Result<RootCertStore, ConfigError> {
    let path = match trust {
        TrustAnchors::CaBundle(path) => path.clone(),
        TrustAnchors::Platform => std::env::var_os("SSL_CERT_FILE")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("/etc/ssl/certs/ca-certificates.crt")),
    };
    let unreadable = |e: &dyn std::fmt::Display| {
        ConfigError(format!("cannot read the CA bundle {}: {e}", path.display()))
    };
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(&path).map_err(|e| unreadable(&e))? {
        let cert = cert.map_err(|e| unreadable(&e))?;
        roots.add(cert).map_err(|e| unreadable(&e))?;
    }
    if roots.is_empty() {
        return Err(unreadable(&"no CA certificate in it"));
    }
    Ok(roots)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn responses_parse_whole_or_wait() {
        let full = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}";
        assert_eq!(
            parse_response(full, false).unwrap().unwrap(),
            (200, b"{}".to_vec())
        );
        assert!(parse_response(&full[..full.len() - 1], false).is_none());
        assert!(parse_response(&full[..full.len() - 1], true)
            .unwrap()
            .is_err());
        let chunked = b"HTTP/1.1 400 Bad\r\ntransfer-encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n";
        assert_eq!(
            parse_response(chunked, false).unwrap().unwrap(),
            (400, b"{}".to_vec())
        );
        assert!(parse_response(b"SSH-2.0\r\n\r\n", false).unwrap().is_err());
    }

    #[test]
    fn endpoints_split_into_host_and_port() {
        assert_eq!(
            split_host_port("xks.example.com", 443),
            Some(("xks.example.com".into(), 443))
        );
        assert_eq!(
            split_host_port("127.0.0.1:8443", 443),
            Some(("127.0.0.1".into(), 8443))
        );
        assert_eq!(split_host_port("[::1]:9", 443), Some(("::1".into(), 9)));
        assert_eq!(split_host_port("a:b", 443), None);
    }

    #[test]
    fn plain_http_is_refused_unless_asked_for_and_loopback() {
        let config = |endpoint: &str, allow| XksClientConfig {
            allow_plain_http_to_loopback: allow,
            ..XksClientConfig::new(
                endpoint,
                "/kms/xks/v1",
                Credential::new("A", "B"),
                "us-east-1",
            )
        };
        assert!(XksClient::new(config("http://127.0.0.1:1", false)).is_err());
        assert!(XksClient::new(config("http://127.0.0.1:1", true)).is_ok());
        assert!(XksClient::new(config("http://192.0.2.1:1", true)).is_err());
        assert!(XksClient::new(config("ftp://127.0.0.1:1", true)).is_err());
        assert!(XksClient::new(config("https://127.0.0.1:1/path", true)).is_err());
    }
}
