//! One keep-alive connection to a server of the service's wire protocol (AWS JSON 1.1 over HTTP/1.1
//! or HTTP/2, TLS or plain), and requests signed with SigV4 by the `aws-sigv4` crate, an
//! implementation independent of the server's.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::net::TcpStream;

/// The JSON 1.1 content type of every request.
const CONTENT_TYPE: &str = "application/x-amz-json-1.1";

/// How long one request may take before it counts as an error (`Timeout`).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Where and how to connect, shared by every connection of a run.
#[derive(Clone)]
pub struct Target {
    /// `host:port` to connect to.
    address: String,
    /// The `Host` header, and the name checked against the server's certificate.
    host: String,
    /// The URL that is signed (scheme, host, port, `/`).
    url: String,
    tls: Option<(tokio_rustls::TlsConnector, ServerName<'static>)>,
    http2: bool,
    signer: Arc<Signer>,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Target")
            .field("url", &self.url)
            .field("tls", &self.tls.is_some())
            .field("http2", &self.http2)
            .finish_non_exhaustive()
    }
}

/// Signs requests for the service `kms` in one region with one credential.
struct Signer {
    identity: Identity,
    region: String,
}

impl Target {
    /// Parses `url` (`https://host:port` or `http://host:port`, no path) and prepares TLS with the
    /// certificates of `ca_bundle` (PEM) as the only trust anchors.
    pub fn new(
        url: &str,
        ca_bundle: Option<&std::path::Path>,
        http2: bool,
        access_key_id: &str,
        secret_access_key: &str,
        region: &str,
    ) -> Result<Target, String> {
        let uri: http::Uri = url
            .parse()
            .map_err(|e| format!("--endpoint {url}: not a URL: {e}"))?;
        let tls = match uri.scheme_str() {
            Some("https") => true,
            Some("http") => false,
            _ => {
                return Err(format!(
                    "--endpoint {url}: give a URL starting https:// or http://"
                ))
            }
        };
        if uri.path() != "/" && !uri.path().is_empty() {
            return Err(format!(
                "--endpoint {url}: the service answers at /, give no path"
            ));
        }
        let authority = uri
            .authority()
            .ok_or_else(|| format!("--endpoint {url}: no host"))?;
        let port = authority.port_u16().unwrap_or(if tls { 443 } else { 80 });
        let hostname = authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']');
        let host = authority.as_str().to_owned();
        let address = if hostname.contains(':') {
            format!("[{hostname}]:{port}")
        } else {
            format!("{hostname}:{port}")
        };
        let tls = if tls {
            let bundle = ca_bundle.ok_or_else(|| {
                format!(
                    "--endpoint {url}: an https endpoint needs --ca-bundle PEM (the server's \
                     certificate or its CA; `keyplane serve --json` prints the path of its \
                     self-signed one)"
                )
            })?;
            let mut roots = rustls::RootCertStore::empty();
            let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(bundle)
                .and_then(|it| it.collect())
                .map_err(|e| format!("--ca-bundle {}: {e}", bundle.display()))?;
            if certs.is_empty() {
                return Err(format!(
                    "--ca-bundle {}: no PEM certificate in it",
                    bundle.display()
                ));
            }
            for cert in certs {
                roots
                    .add(cert)
                    .map_err(|e| format!("--ca-bundle {}: {e}", bundle.display()))?;
            }
            let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
            let mut config = rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .map_err(|e| format!("TLS configuration: {e}"))?
                .with_root_certificates(roots)
                .with_no_client_auth();
            config.alpn_protocols = vec![if http2 {
                b"h2".to_vec()
            } else {
                b"http/1.1".to_vec()
            }];
            let name = ServerName::try_from(hostname.to_owned())
                .map_err(|e| format!("--endpoint {url}: {e}"))?;
            Some((tokio_rustls::TlsConnector::from(Arc::new(config)), name))
        } else {
            None
        };
        let identity: Identity = Credentials::new(
            access_key_id,
            secret_access_key,
            None,
            None,
            "keyplane-bench",
        )
        .into();
        Ok(Target {
            url: format!("{}://{host}/", if tls.is_some() { "https" } else { "http" }),
            address,
            host,
            tls,
            http2,
            signer: Arc::new(Signer {
                identity,
                region: region.to_owned(),
            }),
        })
    }

    /// Whether requests go over TLS.
    pub fn tls(&self) -> bool {
        self.tls.is_some()
    }

    /// Whether requests go over HTTP/2.
    pub fn http2(&self) -> bool {
        self.http2
    }

    /// Opens one connection (TCP, TLS handshake, HTTP handshake).
    pub async fn connect(&self) -> Result<Connection, String> {
        let tcp = TcpStream::connect(&self.address)
            .await
            .map_err(|e| format!("connecting to {}: {e}", self.address))?;
        let _ = tcp.set_nodelay(true);
        let sender = match &self.tls {
            Some((connector, name)) => {
                let stream = connector
                    .connect(name.clone(), tcp)
                    .await
                    .map_err(|e| format!("TLS handshake with {}: {e}", self.address))?;
                self.handshake(TokioIo::new(stream)).await?
            }
            None => self.handshake(TokioIo::new(tcp)).await?,
        };
        Ok(Connection {
            sender: Some(sender),
            target: self.clone(),
            reconnects: 0,
        })
    }

    async fn handshake<I>(&self, io: I) -> Result<Sender, String>
    where
        I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    {
        let what = |e: hyper::Error| format!("HTTP handshake with {}: {e}", self.address);
        if self.http2 {
            let (sender, conn) = http2::handshake(TokioExecutor::new(), io)
                .await
                .map_err(what)?;
            tokio::spawn(conn);
            Ok(Sender::Http2(sender))
        } else {
            let (sender, conn) = http1::handshake(io).await.map_err(what)?;
            tokio::spawn(conn);
            Ok(Sender::Http1(sender))
        }
    }

    /// A signed `POST /` of `body` to `TrentService.<operation>`, with a fresh
    /// `amz-sdk-invocation-id` as every SDK sends.
    fn request(&self, operation: &str, body: Bytes) -> Result<http::Request<Full<Bytes>>, String> {
        let target = format!("TrentService.{operation}");
        let invocation = uuid::Uuid::new_v4().to_string();
        let mut request = http::Request::builder()
            .method("POST")
            .uri(if self.http2 { self.url.as_str() } else { "/" })
            .header("host", &self.host)
            .header("content-type", CONTENT_TYPE)
            .header("x-amz-target", &target)
            .header("amz-sdk-invocation-id", &invocation)
            .header("amz-sdk-request", "attempt=1; max=1")
            .header(
                "user-agent",
                concat!("keyplane-bench/", env!("CARGO_PKG_VERSION")),
            )
            .body(Full::new(body.clone()))
            .map_err(|e| format!("building a request: {e}"))?;
        if self.http2 {
            // HTTP/2 carries the authority in :authority, not in a Host header.
            request.headers_mut().remove("host");
        }
        let signed_headers = [
            ("host", self.host.as_str()),
            ("content-type", CONTENT_TYPE),
            ("x-amz-target", target.as_str()),
            ("amz-sdk-invocation-id", invocation.as_str()),
        ];
        let signable = SignableRequest::new(
            "POST",
            &self.url,
            signed_headers.into_iter(),
            SignableBody::Bytes(&body),
        )
        .map_err(|e| format!("signing: {e}"))?;
        let params = v4::SigningParams::builder()
            .identity(&self.signer.identity)
            .region(&self.signer.region)
            .name("kms")
            .time(SystemTime::now())
            .settings(SigningSettings::default())
            .build()
            .map_err(|e| format!("signing: {e}"))?
            .into();
        let (instructions, _signature) = sign(signable, &params)
            .map_err(|e| format!("signing: {e}"))?
            .into_parts();
        instructions.apply_to_request_http1x(&mut request);
        Ok(request)
    }
}

enum Sender {
    Http1(http1::SendRequest<Full<Bytes>>),
    Http2(http2::SendRequest<Full<Bytes>>),
}

impl Sender {
    fn is_closed(&self) -> bool {
        match self {
            Sender::Http1(s) => s.is_closed(),
            Sender::Http2(s) => s.is_closed(),
        }
    }
}

/// One keep-alive connection; opened again, as SDKs do, when the server closes it.
pub struct Connection {
    sender: Option<Sender>,
    target: Target,
    /// How often it was opened again.
    pub reconnects: u64,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("target", &self.target)
            .finish_non_exhaustive()
    }
}

/// How one request ended.
#[derive(Debug)]
pub enum Outcome {
    /// HTTP 200 with this body.
    Ok(Bytes),
    /// The service's error (its `__type`, without any namespace) or, for an answer that is not
    /// one, `HTTP <status>`.
    ServiceError { code: String, message: String },
    /// No answer: the connection failed or the request timed out (the connection is then
    /// unusable: reconnect).
    Transport(String),
}

impl Connection {
    /// Sends one signed request and reads the whole answer; first opens the connection again if
    /// the server closed it (a server that answers `Connection: close` pays a handshake per
    /// request, inside the request's latency, as its clients would).
    pub async fn call(&mut self, operation: &str, body: Bytes) -> Outcome {
        let mut sender = match self.sender.take() {
            Some(s) if !s.is_closed() => s,
            _ => match self.target.connect().await {
                Ok(c) => {
                    self.reconnects += 1;
                    c.sender.expect("a new connection has a sender")
                }
                Err(e) => return Outcome::Transport(e),
            },
        };
        let request = match self.target.request(operation, body) {
            Ok(r) => r,
            Err(e) => return Outcome::Transport(e),
        };
        let exchange = async {
            let response = match &mut sender {
                Sender::Http1(s) => {
                    s.ready().await?;
                    s.send_request(request).await?
                }
                Sender::Http2(s) => {
                    s.ready().await?;
                    s.send_request(request).await?
                }
            };
            let keep_alive = response.version() != http::Version::HTTP_10
                && !response
                    .headers()
                    .get_all(http::header::CONNECTION)
                    .iter()
                    .any(|v| v.as_bytes().eq_ignore_ascii_case(b"close"));
            let status = response.status();
            let body = response.into_body().collect().await?.to_bytes();
            Ok::<_, hyper::Error>((status, body, keep_alive))
        };
        match tokio::time::timeout(REQUEST_TIMEOUT, exchange).await {
            Err(_) => Outcome::Transport("Timeout".into()),
            Ok(Err(e)) => Outcome::Transport(format!("connection: {e}")),
            Ok(Ok((status, body, keep_alive))) => {
                if keep_alive {
                    self.sender = Some(sender);
                }
                if status == http::StatusCode::OK {
                    Outcome::Ok(body)
                } else {
                    service_error(status, &body)
                }
            }
        }
    }
}

/// The code and message of an error answer: `{"__type": "[namespace#]Code", "message": ...}`.
pub fn service_error(status: http::StatusCode, body: &[u8]) -> Outcome {
    let parsed: Option<serde_json::Value> = serde_json::from_slice(body).ok();
    let field = |name: &str| {
        parsed
            .as_ref()
            .and_then(|v| v.get(name))
            .and_then(|v| v.as_str())
            .map(str::to_owned)
    };
    let code = field("__type")
        .map(|t| t.rsplit('#').next().unwrap_or_default().to_owned())
        .filter(|c| !c.is_empty())
        .unwrap_or_else(|| format!("HTTP {}", status.as_u16()));
    let message = field("message")
        .or_else(|| field("Message"))
        .unwrap_or_else(|| String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned());
    Outcome::ServiceError { code, message }
}
