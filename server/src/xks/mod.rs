//! `keyplane xks-proxy`: keyplane serving the external key store (XKS) proxy API, version 1, so a
//! deployment of the service could use keyplane as its external key manager.
//!
//! - [`XksProxy::handle`]: one request in, one answer out, without I/O — the URI layout, the
//!   405 for other methods, SigV4 (Appendix A), the four operations and the spec's error
//!   responses ("Error codes"). Tests drive it directly with the spec's own examples.
//! - [`XksProxyServer`]: the listener (TLS as `keyplane serve` sets it up, HTTP/1.1 and HTTP/2).
//! - [`keys`]: external keys as keyplane keys (`alias/xks/<id>`).
//!
//! AES-256-GCM runs with a fresh random 96-bit IV per Encrypt, the associated data built as the
//! spec's Encrypt section recommends (lengths of `additionalAuthenticatedData` and
//! `ciphertextMetadata` included), and `ciphertextMetadata` = `kp1`, naming that construction so a
//! later one can tell its ciphertexts apart. A CDIV, when asked for, is computed before the proxy
//! decrypts its own output to check it (Appendix C's order).

pub mod keys;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio::sync::watch;

use keyplane::sealing::{SealingKey, NONCE_LEN, TAG_LEN};
use keyplane::Engine;
use keyplane_xks::api::{
    self, Base64Bytes, DecryptRequest, DecryptResponse, EkmFleetDetail, EncryptRequest,
    EncryptResponse, ErrorBody, HealthRequest, HealthResponse, KeyMetadataRequest,
    KeyMetadataResponse, Route, SecretBase64,
};
use keyplane_xks::cdiv::{cdiv_sha256, gcm_associated_data};
use keyplane_xks::sigv4::{self, Credential, RequestParts};
use keyplane_xks::XksErrorKind;

use crate::http::{ServeError, TlsInfo, TlsMode};

/// The `ciphertextMetadata` of every ciphertext this proxy makes: the construction's version.
pub const CIPHERTEXT_METADATA: &[u8] = b"kp1";
/// Plaintexts and ciphertexts up to this size are served (the spec requires 4300 bytes); larger
/// ones are UnsupportedOperationException, as the spec allows.
pub const MAX_DATA_BYTES: usize = 32 * 1024;
/// The largest request body read (a maximal Encrypt or Decrypt is about 56 KiB).
pub const MAX_BODY_BYTES: usize = 128 * 1024;

/// What the proxy serves.
#[derive(Debug)]
pub struct XksProxyConfig {
    /// `[/<prefix>]/kms/xks/v1`.
    pub uri_path: String,
    /// Every credential accepted at once (two or more during a rotation).
    pub credentials: Vec<Credential>,
    /// Write one line per request to standard error (request id, operation, key, status, time;
    /// never plaintext).
    pub log_requests: bool,
}

/// A proxy configuration that cannot be served.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct XksConfigError(pub String);

/// A request as [`XksProxy::handle`] takes it.
#[derive(Debug)]
pub struct ProxyRequest<'a> {
    pub method: &'a str,
    pub path: &'a str,
    /// Every header, including `Host` (for HTTP/2, the request's authority as `host`).
    pub headers: &'a [(String, String)],
    pub body: &'a [u8],
    /// Seconds since the Unix epoch, for SigV4's freshness check.
    pub now: i64,
}

/// An answer: status and JSON body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyResponse {
    pub status: u16,
    pub body: Vec<u8>,
}

/// The XKS proxy over an engine.
pub struct XksProxy {
    engine: Engine,
    config: XksProxyConfig,
}

impl std::fmt::Debug for XksProxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("XksProxy")
            .field("uri_path", &self.config.uri_path)
            .finish_non_exhaustive()
    }
}

type Failure = (XksErrorKind, String);

fn fail<T>(kind: XksErrorKind, detail: impl Into<String>) -> Result<T, Failure> {
    Err((kind, detail.into()))
}

fn error_response(kind: XksErrorKind, detail: &str) -> ProxyResponse {
    let (name, status) = kind.proxy_error().unwrap_or(("InternalException", 500));
    let body = ErrorBody {
        error_name: name.into(),
        error_message: Some(api::clean_error_message(detail)),
    };
    ProxyResponse {
        status,
        body: serde_json::to_vec(&body).unwrap_or_default(),
    }
}

fn ok<T: serde::Serialize>(value: &T) -> Result<ProxyResponse, Failure> {
    serde_json::to_vec(value)
        .map(|body| ProxyResponse { status: 200, body })
        .map_err(|e| {
            (
                XksErrorKind::Internal,
                format!("cannot encode the answer: {e}"),
            )
        })
}

fn parse<'a, T: serde::Deserialize<'a>>(body: &'a [u8]) -> Result<T, Failure> {
    serde_json::from_slice(body).map_err(|e| {
        // serde's message names the member, never its value.
        (
            XksErrorKind::Validation,
            format!("the request body is not valid for this operation: {e}"),
        )
    })
}

impl XksProxy {
    /// A proxy serving `config` over `engine` (whose caller is the principal every external key
    /// operation runs as).
    pub fn new(engine: Engine, config: XksProxyConfig) -> Result<XksProxy, XksConfigError> {
        if !api::valid_uri_path(&config.uri_path) {
            return Err(XksConfigError(format!(
                "the URI path {:?} is not [/<prefix>]/kms/xks/v1 of at most 128 characters of \
                 a-z A-Z 0-9 / - _",
                config.uri_path
            )));
        }
        if config.credentials.is_empty() {
            return Err(XksConfigError(
                "the XKS proxy needs at least one credential".into(),
            ));
        }
        Ok(XksProxy { engine, config })
    }

    /// The URI path served.
    pub fn uri_path(&self) -> &str {
        &self.config.uri_path
    }

    /// Answers one request. Never panics on any input.
    pub fn handle(&self, request: &ProxyRequest<'_>) -> ProxyResponse {
        let started = Instant::now();
        let (response, label, request_id) = self.answer(request);
        if self.config.log_requests {
            eprintln!(
                "keyplane xks-proxy: {} {} kmsRequestId={} status={} {:.1}ms",
                label,
                api::clean_error_message(request.path),
                api::clean_error_message(&request_id),
                response.status,
                started.elapsed().as_secs_f64() * 1000.0
            );
        }
        response
    }

    fn answer(&self, request: &ProxyRequest<'_>) -> (ProxyResponse, &'static str, String) {
        // A load balancer's health check: a plain GET, no signature (spec section "Load
        // balancer health checks").
        if request.method == "GET" && request.path == "/ping" {
            return (
                ProxyResponse {
                    status: 200,
                    body: b"{\"status\":\"ok\"}".to_vec(),
                },
                "Ping",
                String::new(),
            );
        }
        let Some(route) = Route::parse(&self.config.uri_path, request.path) else {
            return (
                error_response(
                    XksErrorKind::InvalidUriPath,
                    "the request was rejected because the specified URI path is not valid",
                ),
                "InvalidUriPath",
                String::new(),
            );
        };
        let label = match route {
            Route::Health => "GetHealthStatus",
            Route::KeyMetadata(_) => "GetKeyMetadata",
            Route::Encrypt(_) => "Encrypt",
            Route::Decrypt(_) => "Decrypt",
        };
        if request.method != "POST" {
            return (
                ProxyResponse {
                    status: 405,
                    body: Vec::new(),
                },
                label,
                String::new(),
            );
        }
        let parts = RequestParts {
            method: "POST",
            path: request.path,
            headers: request.headers,
            body: request.body,
        };
        if let Err(e) = sigv4::verify(&parts, &self.config.credentials, request.now) {
            return (
                error_response(XksErrorKind::AuthenticationFailed, &e.to_string()),
                label,
                String::new(),
            );
        }
        let request_id = serde_json::from_slice::<serde_json::Value>(request.body)
            .ok()
            .and_then(|v| {
                v.get("requestMetadata")?
                    .get("kmsRequestId")?
                    .as_str()
                    .map(str::to_owned)
            })
            .unwrap_or_default();
        let result = match &route {
            Route::Health => self.health(request.body),
            Route::KeyMetadata(id) => self.key_metadata(id, request.body),
            Route::Encrypt(id) => self.encrypt(id, request.body),
            Route::Decrypt(id) => self.decrypt(id, request.body),
        };
        let response = result.unwrap_or_else(|(kind, detail)| error_response(kind, &detail));
        (response, label, request_id)
    }

    fn health(&self, body: &[u8]) -> Result<ProxyResponse, Failure> {
        let _request: HealthRequest = parse(body)?;
        // A deep check (spec section "GetHealthStatus"): a test key from the engine's random
        // source, one AES-GCM seal and open in locked memory. Never a key behind a KMS key.
        let status = match self.deep_check() {
            Ok(()) => "ACTIVE",
            Err(_) => "UNAVAILABLE",
        };
        let config = self.engine.config();
        let module = if self.engine.fips_mode() {
            "AWS-LC FIPS"
        } else {
            "AWS-LC"
        };
        ok(&HealthResponse {
            xks_proxy_fleet_size: 1,
            xks_proxy_vendor: "keyplane".into(),
            xks_proxy_model: format!("keyplane xks-proxy {}", env!("CARGO_PKG_VERSION")),
            ekm_vendor: "keyplane".into(),
            ekm_fleet_details: vec![EkmFleetDetail {
                id: format!("keyplane-{}-{}", config.region, config.account_id),
                model: format!("keyplane engine {} ({module})", env!("CARGO_PKG_VERSION")),
                health_status: status.into(),
            }],
        })
    }

    fn deep_check(&self) -> keyplane::Result<()> {
        let material = zeroize::Zeroizing::new(self.engine.generate_random(32)?);
        let key = SealingKey::new(&material, self.engine.config().lock_policy)?;
        let mut ciphertext = [0u8; 16];
        let mut tag = [0u8; TAG_LEN];
        let nonce = key.seal_detached(
            b"health",
            b"keyplane health",
            &mut ciphertext[..15],
            &mut tag,
        )?;
        let mut plaintext = [0u8; 15];
        key.open_detached(&nonce, b"health", &ciphertext[..15], &tag, &mut plaintext)
            .map_err(|_| keyplane::Error::Internal("the health check's AES-GCM failed".into()))?;
        if &plaintext != b"keyplane health" {
            return Err(keyplane::Error::Internal(
                "the health check round trip differs".into(),
            ));
        }
        Ok(())
    }

    fn key_metadata(&self, id: &str, body: &[u8]) -> Result<ProxyResponse, Failure> {
        let _request: KeyMetadataRequest = parse(body)?;
        let key = keys::find(&self.engine, id)?;
        let (spec, usage) = if key.is_aes_256() {
            (
                api::AES_256.to_owned(),
                vec!["ENCRYPT".into(), "DECRYPT".into()],
            )
        } else {
            // Not a key version 1 can use: say what it is, so KMS refuses it.
            (
                key.metadata.key_spec.as_str().to_owned(),
                vec![key.metadata.key_usage.as_str().to_owned()],
            )
        };
        ok(&KeyMetadataResponse {
            key_spec: spec,
            key_usage: usage,
            key_status: if key.enabled() { "ENABLED" } else { "DISABLED" }.into(),
        })
    }

    /// The key for a cryptographic operation: found, AES-256, enabled, material unwrapped.
    fn usable_key(&self, id: &str) -> Result<SealingKey, Failure> {
        let key = keys::find(&self.engine, id)?;
        if !key.is_aes_256() {
            return fail(
                XksErrorKind::InvalidKeyUsage,
                "the external key is not an AES-256 encryption key",
            );
        }
        if !key.enabled() {
            return fail(
                XksErrorKind::InvalidState,
                format!("the external key {id} is not enabled"),
            );
        }
        keys::material(&self.engine, id, &key)
    }

    fn encrypt(&self, id: &str, body: &[u8]) -> Result<ProxyResponse, Failure> {
        let request: EncryptRequest = parse(body)?;
        if request.encryption_algorithm != api::AES_GCM {
            return fail(
                XksErrorKind::Validation,
                "encryptionAlgorithm must be AES_GCM",
            );
        }
        let want_cdiv = match request.ciphertext_data_integrity_value_algorithm.as_deref() {
            None => false,
            Some(api::SHA_256) => true,
            Some(_) => {
                return fail(
                    XksErrorKind::Validation,
                    "ciphertextDataIntegrityValueAlgorithm must be SHA_256",
                )
            }
        };
        let plaintext = request.plaintext.expose();
        let aad = request
            .additional_authenticated_data
            .as_ref()
            .map(|a| &a.0[..])
            .unwrap_or_default();
        check_sizes(plaintext.len(), aad.len())?;
        let key = self.usable_key(id)?;
        let associated = gcm_associated_data(aad, CIPHERTEXT_METADATA).ok_or((
            XksErrorKind::UnsupportedOperation,
            "AAD too long".to_owned(),
        ))?;
        let mut ciphertext = vec![0u8; plaintext.len()];
        let mut tag = [0u8; TAG_LEN];
        let nonce = key
            .seal_detached(&associated, plaintext, &mut ciphertext, &mut tag)
            .map_err(|e| keys::engine_failure(&e))?;
        // Appendix C: the CDIV first, then the check that the output decrypts.
        let cdiv = want_cdiv
            .then(|| cdiv_sha256(aad, CIPHERTEXT_METADATA, &nonce, &ciphertext, &tag).to_vec());
        let mut check = zeroize::Zeroizing::new(vec![0u8; ciphertext.len()]);
        if key
            .open_detached(&nonce, &associated, &ciphertext, &tag, &mut check)
            .is_err()
            || check.as_slice() != plaintext
        {
            return fail(
                XksErrorKind::Internal,
                "the encryption did not decrypt back: nothing returned",
            );
        }
        ok(&EncryptResponse {
            ciphertext: Base64Bytes(ciphertext),
            ciphertext_metadata: Some(Base64Bytes(CIPHERTEXT_METADATA.to_vec())),
            initialization_vector: Base64Bytes(nonce.to_vec()),
            authentication_tag: Base64Bytes(tag.to_vec()),
            ciphertext_data_integrity_value: cdiv.map(Base64Bytes),
        })
    }

    fn decrypt(&self, id: &str, body: &[u8]) -> Result<ProxyResponse, Failure> {
        let request: DecryptRequest = parse(body)?;
        if request.encryption_algorithm != api::AES_GCM {
            return fail(
                XksErrorKind::Validation,
                "encryptionAlgorithm must be AES_GCM",
            );
        }
        let aad = request
            .additional_authenticated_data
            .as_ref()
            .map(|a| &a.0[..])
            .unwrap_or_default();
        check_sizes(request.ciphertext.0.len(), aad.len())?;
        let metadata = request
            .ciphertext_metadata
            .as_ref()
            .map(|m| &m.0[..])
            .unwrap_or_default();
        let iv = &request.initialization_vector.0;
        let tag = &request.authentication_tag.0;
        if metadata.len() > api::MAX_CIPHERTEXT_METADATA_BYTES
            || !matches!(iv.len(), 12 | 16)
            || tag.len() != api::TAG_BYTES
        {
            return fail(
                XksErrorKind::Validation,
                "ciphertextMetadata is at most 20 bytes, initializationVector 12 or 16 bytes, \
                 authenticationTag 16 bytes",
            );
        }
        let key = self.usable_key(id)?;
        let invalid = || {
            (
                XksErrorKind::InvalidCiphertext,
                "the ciphertext, initialization vector, additional authenticated data or \
                 authentication tag is corrupted, missing, or otherwise invalid"
                    .to_owned(),
            )
        };
        // Only this proxy's construction decrypts; anything else is not its ciphertext.
        let nonce: [u8; NONCE_LEN] = iv.as_slice().try_into().map_err(|_| invalid())?;
        if metadata != CIPHERTEXT_METADATA {
            return Err(invalid());
        }
        let associated = gcm_associated_data(aad, metadata).ok_or_else(invalid)?;
        let mut plaintext = zeroize::Zeroizing::new(vec![0u8; request.ciphertext.0.len()]);
        key.open_detached(
            &nonce,
            &associated,
            &request.ciphertext.0,
            tag,
            &mut plaintext,
        )
        .map_err(|_| invalid())?;
        ok(&DecryptResponse {
            plaintext: SecretBase64(plaintext),
        })
    }
}

fn check_sizes(data: usize, aad: usize) -> Result<(), Failure> {
    if data > MAX_DATA_BYTES {
        return fail(
            XksErrorKind::UnsupportedOperation,
            format!("this proxy serves at most {MAX_DATA_BYTES} bytes of plaintext or ciphertext"),
        );
    }
    if aad > api::MAX_AAD_BYTES {
        return fail(
            XksErrorKind::UnsupportedOperation,
            format!(
                "this proxy serves at most {} bytes of additional authenticated data",
                api::MAX_AAD_BYTES
            ),
        );
    }
    Ok(())
}

/// The listener of `keyplane xks-proxy`.
pub struct XksProxyServer {
    listener: TcpListener,
    tls: Option<(tokio_rustls::TlsAcceptor, TlsInfo)>,
    proxy: Arc<XksProxy>,
    shutdown: watch::Sender<bool>,
}

impl std::fmt::Debug for XksProxyServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("XksProxyServer")
            .field("listen", &self.listener.local_addr().ok())
            .field("tls", &self.tls.as_ref().map(|(_, info)| info))
            .finish_non_exhaustive()
    }
}

/// Stops a running [`XksProxyServer`]: no new connections; open ones are cut.
#[derive(Debug, Clone)]
pub struct XksShutdown(Arc<watch::Sender<bool>>);

impl XksShutdown {
    pub fn shutdown(&self) {
        let _ = self.0.send(true);
    }
}

/// A TLS handshake must finish within this.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// A request's head must arrive within this (HTTP/1.1; counted from the end of the previous
/// request, so it also closes idle connections); its body within [`BODY_TIMEOUT`].
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
const BODY_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest request head.
const MAX_HEADER_BYTES: usize = 16 * 1024;
/// Most connections open at once; past it the proxy stops accepting until one closes.
pub const MAX_CONNECTIONS: usize = 4096;

impl XksProxyServer {
    /// Binds `listen` with `tls` (`TlsMode::Plain` only on a loopback address).
    pub async fn bind(
        listen: SocketAddr,
        tls: TlsMode,
        proxy: XksProxy,
    ) -> Result<XksProxyServer, ServeError> {
        let tls = match &tls {
            TlsMode::Plain => {
                if !listen.ip().is_loopback() {
                    return Err(ServeError::PlainHttpNotLoopback(listen));
                }
                None
            }
            mode => {
                let (config, info) = crate::http::tls::server_config(mode)?;
                Some((tokio_rustls::TlsAcceptor::from(config), info))
            }
        };
        let listener = TcpListener::bind(listen)
            .await
            .map_err(|e| ServeError::Bind(listen, e))?;
        let (shutdown, _) = watch::channel(false);
        Ok(XksProxyServer {
            listener,
            tls,
            proxy: Arc::new(proxy),
            shutdown,
        })
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    /// The endpoint (`https://127.0.0.1:PORT`), the service's `XksProxyUriEndpoint`.
    pub fn endpoint(&self) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://{}", self.local_addr())
    }

    /// What clients trust (None for plain HTTP).
    pub fn tls_info(&self) -> Option<&TlsInfo> {
        self.tls.as_ref().map(|(_, info)| info)
    }

    /// A handle that stops the server.
    pub fn shutdown_handle(&self) -> XksShutdown {
        XksShutdown(Arc::new(self.shutdown.clone()))
    }

    /// Serves until shut down.
    pub async fn run(self) {
        let mut stop = self.shutdown.subscribe();
        let mut builder = auto::Builder::new(TokioExecutor::new());
        builder
            .http1()
            .timer(TokioTimer::new())
            .max_buf_size(MAX_HEADER_BYTES)
            .header_read_timeout(HEADER_TIMEOUT);
        builder
            .http2()
            .timer(TokioTimer::new())
            .max_concurrent_streams(64)
            .max_header_list_size(MAX_HEADER_BYTES as u32);
        let builder = Arc::new(builder);
        let permits = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
        let mut connections = tokio::task::JoinSet::new();
        loop {
            let Ok(permit) = Arc::clone(&permits).acquire_owned().await else {
                break;
            };
            tokio::select! {
                _ = stop.changed() => break,
                accepted = self.listener.accept() => {
                    let Ok((stream, _)) = accepted else { continue };
                    let _ = stream.set_nodelay(true);
                    let proxy = Arc::clone(&self.proxy);
                    let builder = Arc::clone(&builder);
                    let acceptor = self.tls.as_ref().map(|(a, _)| a.clone());
                    connections.spawn(async move {
                        serve_connection(stream, acceptor, proxy, builder).await;
                        drop(permit);
                    });
                }
            }
            while connections.try_join_next().is_some() {}
        }
        connections.shutdown().await;
    }
}

async fn serve_connection(
    stream: tokio::net::TcpStream,
    acceptor: Option<tokio_rustls::TlsAcceptor>,
    proxy: Arc<XksProxy>,
    builder: Arc<auto::Builder<TokioExecutor>>,
) {
    let service = hyper::service::service_fn(move |request: Request<Incoming>| {
        let proxy = Arc::clone(&proxy);
        async move { Ok::<_, std::convert::Infallible>(respond(proxy, request).await) }
    });
    match acceptor {
        Some(acceptor) => {
            let Ok(Ok(tls)) =
                tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await
            else {
                return;
            };
            let _ = builder.serve_connection(TokioIo::new(tls), service).await;
        }
        None => {
            let _ = builder
                .serve_connection(TokioIo::new(stream), service)
                .await;
        }
    }
}

async fn respond(proxy: Arc<XksProxy>, request: Request<Incoming>) -> Response<Full<Bytes>> {
    let (parts, body) = request.into_parts();
    let body = match tokio::time::timeout(
        BODY_TIMEOUT,
        Limited::new(body, MAX_BODY_BYTES).collect(),
    )
    .await
    {
        Ok(Ok(collected)) => collected.to_bytes(),
        Ok(Err(_)) | Err(_) => {
            return to_http(error_response(
                XksErrorKind::UnsupportedOperation,
                "the request body is larger than this proxy serves, or did not arrive in time",
            ))
        }
    };
    let mut headers: Vec<(String, String)> = parts
        .headers
        .iter()
        .filter_map(|(name, value)| {
            Some((name.as_str().to_owned(), value.to_str().ok()?.to_owned()))
        })
        .collect();
    if !headers.iter().any(|(n, _)| n == "host") {
        // HTTP/2: the authority stands for Host (Appendix A, task 1).
        if let Some(authority) = parts.uri.authority() {
            headers.push(("host".into(), authority.as_str().to_owned()));
        }
    }
    let path = parts.uri.path().to_owned();
    let method = parts.method.clone();
    let has_query = parts.uri.query().is_some();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let answered = tokio::task::spawn_blocking(move || {
        if has_query {
            return error_response(
                XksErrorKind::InvalidUriPath,
                "the XKS proxy API takes no query string",
            );
        }
        proxy.handle(&ProxyRequest {
            method: method.as_str(),
            path: &path,
            headers: &headers,
            body: &body,
            now,
        })
    })
    .await
    .unwrap_or_else(|_| error_response(XksErrorKind::Internal, "the request failed"));
    let allow_post = answered.status == 405;
    let mut response = to_http(answered);
    if allow_post {
        response
            .headers_mut()
            .insert(http::header::ALLOW, http::HeaderValue::from_static("POST"));
    }
    response
}

fn to_http(answer: ProxyResponse) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(answer.body)));
    *response.status_mut() =
        StatusCode::from_u16(answer.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    response
}
