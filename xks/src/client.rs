//! `XksClient`: the blocking client of one XKS proxy — HTTPS with certificate verification
//! (rustls on AWS-LC), SigV4 as Appendix A, the spec's 250 ms budget per call, answers checked
//! against the spec (sizes, CDIV) and every failure an [`XksError`].
//!
//! Each call runs under its own deadline (connect, TLS handshake, request and response together),
//! so a slow or dead proxy holds only the callers that use it, each for at most the timeout;
//! callers of other proxies never wait on it. Connections are kept alive and reused (HTTP/1.1),
//! each client with its own small pool, so that a call costs a round trip rather than a TCP and
//! TLS handshake; a pooled connection the proxy has closed meanwhile is replaced by a fresh one
//! within the same call and deadline. Name resolution is the
//! system resolver's and is not under the deadline: give the endpoint as an address, or a name
//! the host resolves locally, where that matters.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
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
    /// Idle kept-alive connections, most recently used last.
    idle: Mutex<Vec<Conn>>,
    /// Connections opened so far (for diagnostics and tests: a busy client opens about as many
    /// as it has concurrent callers).
    opened: AtomicU64,
}

/// The most idle connections a client keeps (more concurrent callers open more, and close the
/// surplus when they finish).
const MAX_IDLE: usize = 32;

/// One open connection to the proxy.
enum Conn {
    /// `http://` to loopback (tests only).
    Plain(TcpStream),
    Tls(Box<rustls::StreamOwned<ClientConnection, TcpStream>>),
}

impl std::fmt::Debug for Conn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Conn::Plain(_) => "Conn::Plain",
            Conn::Tls(_) => "Conn::Tls",
        })
    }
}

impl Conn {
    fn socket(&mut self) -> &mut TcpStream {
        match self {
            Conn::Plain(s) => s,
            Conn::Tls(s) => &mut s.sock,
        }
    }
}

impl Read for Conn {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Conn::Plain(s) => s.read(buf),
            Conn::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Conn {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Conn::Plain(s) => s.write(buf),
            Conn::Tls(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Conn::Plain(s) => s.flush(),
            Conn::Tls(s) => s.flush(),
        }
    }
}

/// A complete response as read from a connection.
#[derive(Debug, PartialEq, Eq)]
struct Response {
    status: u16,
    body: Vec<u8>,
    /// Whether the connection can carry another request: the response was delimited (a length or
    /// chunks, not the end of the stream), nothing followed it, and the proxy did not say
    /// `Connection: close`.
    reusable: bool,
}

/// Why an exchange failed, and whether it failed on a connection the proxy had already closed
/// (nothing of a response arrived), which a fresh connection may succeed on.
struct Failed {
    error: XksError,
    stale: bool,
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
            idle: Mutex::new(Vec::new()),
            opened: AtomicU64::new(0),
        })
    }

    /// How many connections this client has opened (each kept alive and reused while the proxy
    /// keeps it open).
    pub fn connections_opened(&self) -> u64 {
        self.opened.load(Ordering::Relaxed)
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
                 Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
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

    /// Sends `request` on a kept-alive connection (or a fresh one) and reads the response;
    /// returns status and body.
    fn exchange(&self, request: &[u8], deadline: Instant) -> Result<(u16, Vec<u8>), XksError> {
        let pooled = self.idle.lock().ok().and_then(|mut idle| idle.pop());
        if let Some(mut conn) = pooled {
            match exchange_on(&mut conn, request, deadline) {
                Ok(response) => return Ok(self.finish(conn, response)),
                // The proxy closed it while it was idle: try once more on a fresh one.
                Err(Failed { stale: true, .. }) => {}
                Err(Failed { error, .. }) => return Err(error),
            }
        }
        let mut conn = self.connect(deadline)?;
        match exchange_on(&mut conn, request, deadline) {
            Ok(response) => Ok(self.finish(conn, response)),
            Err(Failed { error, .. }) => Err(error),
        }
    }

    /// Keeps `conn` for the next call if it can carry one; the response's status and body.
    fn finish(&self, conn: Conn, response: Response) -> (u16, Vec<u8>) {
        if response.reusable {
            if let Ok(mut idle) = self.idle.lock() {
                if idle.len() < MAX_IDLE {
                    idle.push(conn);
                }
            }
        }
        (response.status, response.body)
    }

    /// A fresh connection: TCP, then the TLS handshake, within the deadline.
    fn connect(&self, deadline: Instant) -> Result<Conn, XksError> {
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
        self.opened.fetch_add(1, Ordering::Relaxed);
        let Some((config, name)) = &self.tls else {
            return Ok(Conn::Plain(socket));
        };
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
        Ok(Conn::Tls(Box::new(rustls::StreamOwned::new(tls, socket))))
    }
}

/// Writes `request` on `conn` and reads one response. A failure before any byte of a response
/// arrived (a write refused, the stream at its end or reset) is `stale`: the proxy had closed the
/// connection.
fn exchange_on(conn: &mut Conn, request: &[u8], deadline: Instant) -> Result<Response, Failed> {
    let fatal = |error: XksError| Failed {
        error,
        stale: false,
    };
    set_timeouts(conn.socket(), deadline).map_err(fatal)?;
    if let Err(e) = conn.write_all(request).and_then(|()| conn.flush()) {
        let stale = !is_timeout(&e);
        return Err(Failed {
            error: io_failure(e, "sending"),
            stale,
        });
    }
    let mut buffer = Vec::with_capacity(4096);
    let mut chunk = [0u8; 8192];
    let cut_short = || {
        err(
            XksErrorKind::MalformedResponse,
            "the connection closed before a complete response",
        )
    };
    loop {
        if let Some(done) = parse_response(&buffer, false) {
            return done.map_err(fatal);
        }
        set_timeouts(conn.socket(), deadline).map_err(fatal)?;
        match conn.read(&mut chunk) {
            Ok(n) if n > 0 => {
                buffer.extend_from_slice(&chunk[..n]);
                if buffer.len() > MAX_RESPONSE_BYTES {
                    return Err(fatal(err(
                        XksErrorKind::MalformedResponse,
                        "the response is larger than any valid answer",
                    )));
                }
            }
            // The end of the stream (or a peer that closes without close_notify): what arrived is
            // what there is.
            Ok(_) => return end_of_stream(&buffer, cut_short),
            Err(e) if e.kind() == ErrorKind::UnexpectedEof => {
                return end_of_stream(&buffer, cut_short)
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => {
                let stale = buffer.is_empty()
                    && matches!(
                        e.kind(),
                        ErrorKind::ConnectionReset
                            | ErrorKind::ConnectionAborted
                            | ErrorKind::BrokenPipe
                    );
                return Err(Failed {
                    error: io_failure(e, "reading the response"),
                    stale,
                });
            }
        }
    }
}

/// The response at the end of the stream: stale if nothing of one arrived.
fn end_of_stream(buffer: &[u8], cut_short: impl Fn() -> XksError) -> Result<Response, Failed> {
    if buffer.is_empty() {
        return Err(Failed {
            error: cut_short(),
            stale: true,
        });
    }
    parse_response(buffer, true)
        .unwrap_or_else(|| Err(cut_short()))
        .map_err(|error| Failed {
            error,
            stale: false,
        })
}

/// `Some` once `buffer` holds a whole response (or, at `eof`, as much as there will be).
fn parse_response(buffer: &[u8], eof: bool) -> Option<Result<Response, XksError>> {
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
    // HTTP/1.1 keeps the connection unless told otherwise; HTTP/1.0 closes it.
    let mut keep_alive = version == "HTTP/1.1";
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
        } else if name.eq_ignore_ascii_case("connection") {
            keep_alive = keep_alive
                && !value
                    .split(',')
                    .any(|token| token.trim().eq_ignore_ascii_case("close"));
        }
    }
    let body = &buffer[end + 4..];
    if chunked {
        return match dechunk(body) {
            Some((body, used)) => Some(Ok(Response {
                status,
                body,
                reusable: keep_alive && used == buffer.len() - end - 4,
            })),
            None if eof => malformed("a chunked body cut short"),
            None => None,
        };
    }
    match length {
        Some(n) if body.len() >= n => Some(Ok(Response {
            status,
            body: body[..n].to_vec(),
            reusable: keep_alive && body.len() == n && !eof,
        })),
        Some(_) if eof => malformed("a body shorter than its Content-Length"),
        Some(_) => None,
        None if eof => Some(Ok(Response {
            status,
            body: body.to_vec(),
            reusable: false,
        })),
        None => None,
    }
}

/// The body of a complete chunked encoding and the bytes it took; `None` while incomplete or
/// malformed. Trailers are not expected (the proxy API has none), so the last chunk must be
/// followed by the final empty line.
fn dechunk(data: &[u8]) -> Option<(Vec<u8>, usize)> {
    let mut out = Vec::new();
    let mut at = 0;
    loop {
        let rest = &data[at..];
        let line_end = rest.windows(2).position(|w| w == b"\r\n")?;
        let size_text = std::str::from_utf8(&rest[..line_end]).ok()?;
        let size_text = size_text.split(';').next()?.trim();
        let size = usize::from_str_radix(size_text, 16).ok()?;
        at += line_end + 2;
        if size == 0 {
            // The final CRLF after the last chunk (no trailers).
            if data.len() < at + 2 {
                return None;
            }
            return (&data[at..at + 2] == b"\r\n").then_some((out, at + 2));
        }
        if size > MAX_RESPONSE_BYTES || data.len() < at + size + 2 {
            return None;
        }
        out.extend_from_slice(&data[at..at + size]);
        at += size + 2;
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
        let answer = |status, body: &[u8], reusable| Response {
            status,
            body: body.to_vec(),
            reusable,
        };
        let full = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}";
        assert_eq!(
            parse_response(full, false).unwrap().unwrap(),
            answer(200, b"{}", true)
        );
        assert!(parse_response(&full[..full.len() - 1], false).is_none());
        assert!(parse_response(&full[..full.len() - 1], true)
            .unwrap()
            .is_err());
        let chunked = b"HTTP/1.1 400 Bad\r\ntransfer-encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n";
        assert_eq!(
            parse_response(chunked, false).unwrap().unwrap(),
            answer(400, b"{}", true)
        );
        assert!(parse_response(b"SSH-2.0\r\n\r\n", false).unwrap().is_err());
    }

    #[test]
    fn only_a_delimited_keep_alive_response_leaves_the_connection_reusable() {
        let reusable = |raw: &[u8], eof| parse_response(raw, eof).unwrap().unwrap().reusable;
        assert!(reusable(
            b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}",
            false
        ));
        // The proxy says it closes; HTTP/1.0; a body read to the end of the stream.
        assert!(!reusable(
            b"HTTP/1.1 200 OK\r\nConnection: close\r\ncontent-length: 2\r\n\r\n{}",
            false
        ));
        assert!(!reusable(
            b"HTTP/1.1 200 OK\r\nconnection: keep-alive, Close\r\ncontent-length: 2\r\n\r\n{}",
            false
        ));
        assert!(!reusable(
            b"HTTP/1.0 200 OK\r\ncontent-length: 2\r\n\r\n{}",
            false
        ));
        assert!(!reusable(b"HTTP/1.1 200 OK\r\n\r\n{}", true));
        // Bytes after the response: something is wrong with the stream, so it is not reused.
        assert!(!reusable(
            b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}HTTP/1.1 200 OK\r\n",
            false
        ));
        assert!(!reusable(
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\nX",
            false
        ));
        // A chunked body waits for its final empty line.
        assert!(parse_response(
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n",
            false
        )
        .is_none());
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
