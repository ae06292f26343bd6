//! The transport: TLS (self-signed, trusted by a rustls client), HTTP/1.1 and HTTP/2, the
//! limits under abuse (body size, slowloris, idle, connection cap, thousands of idle
//! connections), `/health`, the admin listener's metrics, and graceful shutdown.
//!
//! Each test starts a server in process on port 0 with an in-memory engine.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use keyplane_server::auth::{Authenticator, CredentialStore};
use keyplane_server::coalesce::CoalesceConfig;
use keyplane_server::http::{Limits, Server, ServerConfig, ShutdownHandle, TlsInfo, TlsMode};
use keyplane_server::protocol::Service;
use keyplane_server::Metrics;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

struct Running {
    addr: SocketAddr,
    admin: Option<SocketAddr>,
    tls: Option<TlsInfo>,
    shutdown: ShutdownHandle,
    task: tokio::task::JoinHandle<()>,
    metrics: Arc<Metrics>,
    /// A credential for the account root: (access key id, secret).
    credential: (String, String),
    _dir: tempfile::TempDir,
}

impl Running {
    /// A GET /health on a new plain connection answers 200.
    async fn assert_serves(&self) {
        let stream = TcpStream::connect(self.addr).await.unwrap();
        assert_eq!(
            send_h1(stream, get("/health")).await.status(),
            StatusCode::OK
        );
    }

    /// Shuts the server down and waits until it has stopped.
    async fn stop(self) {
        self.shutdown.shutdown();
        self.task.await.unwrap();
    }
}

async fn start(tls: bool, limits: Limits) -> Running {
    start_with(tls, limits, engine()).await
}

fn engine() -> keyplane::EngineBuilder {
    keyplane::Engine::builder().lock_policy(keyplane::LockPolicy::Warn)
}

const ROOT: &str = "arn:aws:iam::111122223333:root";

async fn start_with(tls: bool, limits: Limits, engine: keyplane::EngineBuilder) -> Running {
    let dir = tempfile::tempdir().unwrap();
    let mode = if tls {
        TlsMode::SelfSigned {
            dir: dir.path().join("tls"),
        }
    } else {
        TlsMode::Plain
    };
    let config = ServerConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        admin_listen: Some("127.0.0.1:0".parse().unwrap()),
        tls: mode,
        limits,
    };
    let credentials = CredentialStore::in_memory();
    let created = credentials.create(ROOT).unwrap();
    let credential = (
        created.access_key_id.clone(),
        created.secret_access_key.as_str().to_owned(),
    );
    let (server, metrics) = bind_with(config, engine.build().unwrap(), credentials)
        .await
        .expect("server starts");
    let running = Running {
        addr: server.local_addr(),
        admin: server.admin_addr(),
        tls: server.tls_info().cloned(),
        shutdown: server.shutdown_handle(),
        task: tokio::spawn(server.run()),
        metrics,
        credential,
        _dir: dir,
    };
    running
}

async fn bind(
    config: ServerConfig,
) -> Result<(Server, Arc<Metrics>), keyplane_server::http::ServeError> {
    bind_with(
        config,
        engine().build().unwrap(),
        CredentialStore::in_memory(),
    )
    .await
}

async fn bind_with(
    config: ServerConfig,
    engine: keyplane::Engine,
    credentials: CredentialStore,
) -> Result<(Server, Arc<Metrics>), keyplane_server::http::ServeError> {
    let metrics = Arc::new(Metrics::default());
    let service = Service::new(engine, CoalesceConfig::default(), Arc::clone(&metrics));
    let authenticator = Authenticator::new(credentials, "us-east-1");
    let server = Server::bind(config, service, authenticator, Arc::clone(&metrics)).await?;
    Ok((server, metrics))
}

fn quick_limits() -> Limits {
    Limits {
        idle_timeout: Duration::from_secs(30),
        header_timeout: Duration::from_secs(10),
        ..Limits::default()
    }
}

/// A TLS connection trusting only `ca`, offering `alpn`.
async fn tls_connect(
    addr: SocketAddr,
    ca: &Path,
    alpn: &[&[u8]],
) -> tokio_rustls::client::TlsStream<TcpStream> {
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls::pki_types::CertificateDer::pem_file_iter(ca).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = TcpStream::connect(addr).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    connector.connect(name, tcp).await.expect("TLS handshake")
}

type Answer = Response<Bytes>;

async fn collect(response: Response<hyper::body::Incoming>) -> Answer {
    let (parts, body) = response.into_parts();
    Response::from_parts(parts, body.collect().await.unwrap().to_bytes())
}

async fn send_h1<IO>(io: IO, request: Request<Full<Bytes>>) -> Answer
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io))
        .await
        .unwrap();
    tokio::spawn(conn);
    collect(sender.send_request(request).await.unwrap()).await
}

async fn send_h2<IO>(io: IO, request: Request<Full<Bytes>>) -> Answer
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        TokioIo::new(io),
    )
    .await
    .unwrap();
    tokio::spawn(conn);
    collect(sender.send_request(request).await.unwrap()).await
}

fn get(uri: &str) -> Request<Full<Bytes>> {
    Request::get(uri)
        .header("host", "localhost")
        .body(Full::new(Bytes::new()))
        .unwrap()
}

fn post(uri: &str, target: &str, body: &'static [u8]) -> Request<Full<Bytes>> {
    Request::post(uri)
        .header("host", "localhost")
        .header("x-amz-target", target)
        .header("content-type", "application/x-amz-json-1.1")
        .body(Full::new(Bytes::from_static(body)))
        .unwrap()
}

fn json(answer: &Answer) -> serde_json::Value {
    serde_json::from_slice(answer.body())
        .unwrap_or_else(|_| panic!("not JSON: {:?}", answer.body()))
}

fn assert_service_headers(answer: &Answer) {
    let id = answer.headers()["x-amzn-requestid"].to_str().unwrap();
    assert!(uuid::Uuid::parse_str(id).is_ok(), "request id {id}");
    assert_eq!(
        answer.headers()["content-type"],
        "application/x-amz-json-1.1"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_answers_over_tls_on_http1_and_http2_trusting_the_self_signed_ca() {
    let server = start(true, quick_limits()).await;
    let tls = server.tls.clone().expect("TLS by default");
    assert!(tls.certificate.ends_with("self-signed.pem"));
    assert_eq!(tls.fingerprint_sha256.len(), 64);

    let h2 = tls_connect(server.addr, &tls.certificate, &[b"h2", b"http/1.1"]).await;
    assert_eq!(h2.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let answer = send_h2(
        h2,
        get(&format!("https://localhost:{}/health", server.addr.port())),
    )
    .await;
    assert_eq!(answer.status(), StatusCode::OK);
    assert_eq!(answer.version(), http::Version::HTTP_2);
    assert_eq!(json(&answer), serde_json::json!({"status": "ok"}));
    assert_service_headers(&answer);

    let h1 = tls_connect(server.addr, &tls.certificate, &[b"http/1.1"]).await;
    assert_eq!(h1.get_ref().1.alpn_protocol(), Some(&b"http/1.1"[..]));
    let (version, suite) = {
        let session = h1.get_ref().1;
        (
            session.protocol_version(),
            session.negotiated_cipher_suite(),
        )
    };
    assert_eq!(version, Some(rustls::ProtocolVersion::TLSv1_3));
    assert!(suite.is_some());
    let answer = send_h1(h1, get("/health")).await;
    assert_eq!(answer.status(), StatusCode::OK);
    assert_eq!(answer.version(), http::Version::HTTP_11);
    assert_service_headers(&answer);
    assert_eq!(json(&answer), serde_json::json!({"status": "ok"}));

    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_self_signed_certificate_is_kept_and_reused_and_its_key_is_private() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let config = || ServerConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        admin_listen: None,
        tls: TlsMode::SelfSigned {
            dir: dir.path().join("tls"),
        },
        limits: Limits::default(),
    };
    let (first, _) = bind(config()).await.unwrap();
    let first = first.tls_info().unwrap().clone();
    let mode = std::fs::metadata(dir.path().join("tls/server.key"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let (second, _) = bind(config()).await.unwrap();
    assert_eq!(
        second.tls_info().unwrap().fingerprint_sha256,
        first.fingerprint_sha256
    );
    // A damaged one is replaced, not served.
    std::fs::write(dir.path().join("tls/server.pem"), "garbage").unwrap();
    let (third, _) = bind(config()).await.unwrap();
    assert_ne!(
        third.tls_info().unwrap().fingerprint_sha256,
        first.fingerprint_sha256
    );
    // The fingerprint is the SHA-256 of the certificate clients trust.
    use rustls::pki_types::pem::PemObject;
    let ca =
        rustls::pki_types::CertificateDer::from_pem_file(dir.path().join("tls/self-signed.pem"))
            .unwrap();
    assert_eq!(
        third.tls_info().unwrap().fingerprint_sha256,
        keyplane_server::http::tls::fingerprint(&ca)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificate_and_key_files_are_served_and_a_mismatched_pair_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    // Make a setup, then serve its files as given files.
    let tls_dir = dir.path().join("tls");
    let (made, _) = bind(ServerConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        admin_listen: None,
        tls: TlsMode::SelfSigned {
            dir: tls_dir.clone(),
        },
        limits: Limits::default(),
    })
    .await
    .unwrap();
    let ca = made.tls_info().unwrap().certificate.clone();
    drop(made);
    let files = |key: &str| ServerConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        admin_listen: None,
        tls: TlsMode::Files {
            cert: tls_dir.join("server.pem"),
            key: tls_dir.join(key),
        },
        limits: Limits::default(),
    };
    let (server, _) = bind(files("server.key")).await.unwrap();
    let addr = server.local_addr();
    let shutdown = server.shutdown_handle();
    let task = tokio::spawn(server.run());
    let stream = tls_connect(addr, &ca, &[b"http/1.1"]).await;
    assert_eq!(
        send_h1(stream, get("/health")).await.status(),
        StatusCode::OK
    );
    shutdown.shutdown();
    task.await.unwrap();

    let other = tempfile::tempdir().unwrap();
    let (_, _) = bind(ServerConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        admin_listen: None,
        tls: TlsMode::SelfSigned {
            dir: other.path().to_owned(),
        },
        limits: Limits::default(),
    })
    .await
    .unwrap();
    std::fs::copy(other.path().join("server.key"), tls_dir.join("other.key")).unwrap();
    let refused = bind(files("other.key"))
        .await
        .expect_err("mismatched key refused");
    assert!(refused.to_string().contains("TLS"), "{refused}");
    let missing = bind(files("missing.key"))
        .await
        .expect_err("missing key refused");
    assert!(missing.to_string().contains("missing.key"), "{missing}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_http_is_refused_on_a_non_loopback_address() {
    for listen in ["0.0.0.0:0", "[::]:0", "192.0.2.1:0"] {
        let refused = bind(ServerConfig {
            listen: listen.parse().unwrap(),
            admin_listen: None,
            tls: TlsMode::Plain,
            limits: Limits::default(),
        })
        .await
        .err()
        .unwrap_or_else(|| panic!("plain HTTP on {listen} refused"));
        let text = refused.to_string();
        assert!(
            text.contains("loopback") && text.contains("--tls-self-signed"),
            "{text}"
        );
    }
    for listen in ["127.0.0.1:0", "[::1]:0"] {
        let config = ServerConfig {
            listen: listen.parse().unwrap(),
            admin_listen: None,
            tls: TlsMode::Plain,
            limits: Limits::default(),
        };
        if let Err(e) = bind(config).await {
            // ::1 may be absent in a container; 127.0.0.1 never is.
            assert!(listen.contains("::1"), "plain HTTP on {listen}: {e}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsigned_requests_and_unknown_routes_get_the_services_json_errors_with_request_ids() {
    let server = start(false, quick_limits()).await;
    let tcp = || TcpStream::connect(server.addr);
    let answer = send_h1(
        tcp().await.unwrap(),
        post("/", "TrentService.ListKeys", b"{}"),
    )
    .await;
    assert_eq!(answer.status(), StatusCode::BAD_REQUEST);
    assert_service_headers(&answer);
    assert_eq!(
        json(&answer)["__type"],
        "MissingAuthenticationTokenException"
    );

    let other = send_h1(
        tcp().await.unwrap(),
        post("/", "TrentService.ListKeys", b"{}"),
    )
    .await;
    assert_ne!(
        other.headers()["x-amzn-requestid"],
        answer.headers()["x-amzn-requestid"]
    );

    let answer = send_h1(tcp().await.unwrap(), get("/")).await;
    assert_eq!(answer.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_service_headers(&answer);
    assert_eq!(json(&answer)["__type"], "UnknownOperationException");
    let answer = send_h1(tcp().await.unwrap(), get("/some/where")).await;
    assert_eq!(answer.status(), StatusCode::NOT_FOUND);
    assert_service_headers(&answer);
    assert!(json(&answer)["message"]
        .as_str()
        .unwrap()
        .contains("POST /"));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_over_the_limit_is_answered_413_without_reading_it() {
    let limits = Limits {
        max_body_bytes: 1024,
        ..quick_limits()
    };
    let server = start(false, limits).await;
    // Declared too large: answered before the body is sent at all.
    let mut tcp = TcpStream::connect(server.addr).await.unwrap();
    tcp.write_all(
        b"POST / HTTP/1.1\r\nhost: localhost\r\nx-amz-target: TrentService.Encrypt\r\ncontent-length: 1000000000\r\n\r\n",
    )
    .await
    .unwrap();
    let mut head = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(5), tcp.read(&mut head))
        .await
        .expect("answered without the body")
        .unwrap();
    let text = String::from_utf8_lossy(&head[..n]).to_string();
    assert!(text.starts_with("HTTP/1.1 413"), "{text}");
    assert!(text.contains("RequestEntityTooLargeException"), "{text}");
    assert!(
        text.to_ascii_lowercase().contains("x-amzn-requestid"),
        "{text}"
    );

    // No length declared (HTTP/2 streams it): cut off once past the limit.
    let h2 = TcpStream::connect(server.addr).await.unwrap();
    let big: &'static [u8] = Box::leak(vec![b'x'; 4096].into_boxed_slice());
    let (mut sender, conn) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        TokioIo::new(h2),
    )
    .await
    .unwrap();
    tokio::spawn(conn);
    let (tx, body) = channel_body();
    let request = Request::post("http://localhost/")
        .header("x-amz-target", "TrentService.Encrypt")
        .body(body)
        .unwrap();
    let pending =
        tokio::spawn(async move { collect(sender.send_request(request).await.unwrap()).await });
    for _ in 0..2 {
        tx.send(Ok(hyper::body::Frame::data(Bytes::from_static(big))))
            .await
            .unwrap();
    }
    // The answer comes although the body never ends.
    let answer = tokio::time::timeout(Duration::from_secs(5), pending)
        .await
        .expect("answered at the limit")
        .unwrap();
    assert_eq!(answer.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_service_headers(&answer);
    drop(tx);
    server.stop().await;
}

type Frame = Result<hyper::body::Frame<Bytes>, std::convert::Infallible>;

/// A request body fed from a channel, for as long as the test likes.
fn channel_body() -> (tokio::sync::mpsc::Sender<Frame>, ChannelBody) {
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    (tx, ChannelBody(rx))
}

struct ChannelBody(tokio::sync::mpsc::Receiver<Frame>);

impl hyper::body::Body for ChannelBody {
    type Data = Bytes;
    type Error = std::convert::Infallible;
    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, Self::Error>>> {
        self.0.poll_recv(cx)
    }
}

/// Reads until the peer closes (Ok(elapsed)) or `within` passes (Err).
async fn closed_within(tcp: &mut TcpStream, within: Duration) -> Result<Duration, ()> {
    let started = Instant::now();
    let mut buf = [0u8; 1024];
    loop {
        match tokio::time::timeout(within.saturating_sub(started.elapsed()), tcp.read(&mut buf))
            .await
        {
            Err(_) => return Err(()),
            Ok(Ok(0)) | Ok(Err(_)) => return Ok(started.elapsed()),
            Ok(Ok(_)) => continue,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slowloris_dribbling_headers_is_cut_off_by_the_header_timeout() {
    let limits = Limits {
        header_timeout: Duration::from_millis(400),
        idle_timeout: Duration::from_secs(30),
        ..Limits::default()
    };
    let server = start(false, limits).await;
    let mut tcp = TcpStream::connect(server.addr).await.unwrap();
    let started = Instant::now();
    tcp.write_all(b"POST / HTTP/1.1\r\nhost: localhost\r\n")
        .await
        .unwrap();
    // One header byte every 50 ms: always active, never done.
    let (mut read, mut write) = tcp.into_split();
    let dribble = tokio::spawn(async move {
        for _ in 0..200 {
            if write.write_all(b"x").await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
    let mut buf = [0u8; 64];
    let read = tokio::time::timeout(Duration::from_secs(5), read.read(&mut buf))
        .await
        .expect("the server closed the connection");
    assert!(
        matches!(read, Ok(0) | Err(_)),
        "no answer to a head never finished"
    );
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(350) && took < Duration::from_secs(3),
        "{took:?}"
    );
    dribble.abort();
    assert!(server
        .metrics
        .render()
        .contains("keyplane_header_timeouts_total 1\n"));
    // Others are served meanwhile and after.
    server.assert_serves().await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_are_closed_after_the_idle_timeout_and_not_before() {
    let limits = Limits {
        header_timeout: Duration::from_secs(10),
        idle_timeout: Duration::from_millis(500),
        ..Limits::default()
    };
    let server = start(false, limits).await;
    // After a request on a keep-alive connection (sent once the connection's watchdog sleeps).
    let mut tcp = TcpStream::connect(server.addr).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    tcp.write_all(b"GET /health HTTP/1.1\r\nhost: localhost\r\n\r\n")
        .await
        .unwrap();
    let mut buf = vec![0u8; 1024];
    let n = tcp.read(&mut buf).await.unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    let took = closed_within(&mut tcp, Duration::from_secs(5))
        .await
        .expect("closed when idle");
    assert!(
        took >= Duration::from_millis(400),
        "closed after {took:?}, before the idle timeout"
    );
    // A connection that never sent anything.
    let mut silent = TcpStream::connect(server.addr).await.unwrap();
    let took = closed_within(&mut silent, Duration::from_secs(5))
        .await
        .expect("closed when idle");
    assert!(took >= Duration::from_millis(400), "{took:?}");
    assert!(server
        .metrics
        .render()
        .contains("keyplane_idle_timeouts_total 2\n"));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_connection_cap_new_connections_wait_until_one_closes() {
    let limits = Limits {
        max_connections: 2,
        ..quick_limits()
    };
    let server = start(false, limits).await;
    let first = TcpStream::connect(server.addr).await.unwrap();
    let _second = TcpStream::connect(server.addr).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(server.metrics.open_connections(), 2);
    let third = TcpStream::connect(server.addr).await.unwrap();
    let waiting = tokio::spawn(send_h1(third, get("/health")));
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        !waiting.is_finished(),
        "a third connection was served past a cap of 2"
    );
    assert_eq!(server.metrics.open_connections(), 2);
    drop(first);
    let answer = tokio::time::timeout(Duration::from_secs(5), waiting)
        .await
        .expect("served once a connection closed")
        .unwrap();
    assert_eq!(answer.status(), StatusCode::OK);
    server.stop().await;
}

/// A minimal check of the Prometheus text format (0.0.4): every line is a `# HELP`/`# TYPE`
/// comment or `name{label="value",...} number`; every sample's family was declared; histogram
/// buckets are cumulative and end with `+Inf` equal to `_count`.
/// One sample: name, labels, value.
type Sample = (String, Vec<(String, String)>, f64);

fn parse_prometheus(text: &str) -> Vec<Sample> {
    let mut declared = std::collections::HashMap::new();
    let mut samples = Vec::new();
    let name_ok = |n: &str| {
        !n.is_empty()
            && n.chars().enumerate().all(|(i, c)| {
                c.is_ascii_alphabetic() || c == '_' || c == ':' || (i > 0 && c.is_ascii_digit())
            })
    };
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# ") {
            let mut words = rest.splitn(3, ' ');
            let kind = words.next().unwrap();
            let name = words.next().unwrap();
            assert!(name_ok(name), "{line}");
            if kind == "TYPE" {
                let t = words.next().unwrap();
                assert!(
                    ["counter", "gauge", "histogram", "summary", "untyped"].contains(&t),
                    "{line}"
                );
                assert!(
                    declared.insert(name.to_owned(), t.to_owned()).is_none(),
                    "declared twice: {line}"
                );
            } else {
                assert_eq!(kind, "HELP", "{line}");
            }
            continue;
        }
        let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("{line}"));
        let value: f64 = match value {
            "+Inf" => f64::INFINITY,
            v => v.parse().unwrap_or_else(|_| panic!("value in {line}")),
        };
        let (name, labels) = match series.split_once('{') {
            None => (series, vec![]),
            Some((name, rest)) => {
                let rest = rest.strip_suffix('}').unwrap_or_else(|| panic!("{line}"));
                let mut labels = vec![];
                let mut chars = rest.chars().peekable();
                while chars.peek().is_some() {
                    let label: String = chars.by_ref().take_while(|c| *c != '=').collect();
                    assert!(name_ok(&label), "{line}");
                    assert_eq!(chars.next(), Some('"'), "{line}");
                    let mut value = String::new();
                    loop {
                        match chars.next().unwrap_or_else(|| panic!("{line}")) {
                            '\\' => match chars.next() {
                                Some('n') => value.push('\n'),
                                Some(c @ ('\\' | '"')) => value.push(c),
                                _ => panic!("bad escape in {line}"),
                            },
                            '"' => break,
                            c => value.push(c),
                        }
                    }
                    labels.push((label, value));
                    if chars.peek() == Some(&',') {
                        chars.next();
                    }
                }
                (name, labels)
            }
        };
        assert!(name_ok(name), "{line}");
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| {
                name.strip_suffix(s)
                    .filter(|f| declared.get(*f).map(String::as_str) == Some("histogram"))
            })
            .unwrap_or(name);
        assert!(declared.contains_key(family), "undeclared {name}");
        samples.push((name.to_owned(), labels, value));
    }
    // Histograms: cumulative, +Inf last and equal to _count.
    let mut buckets: std::collections::BTreeMap<(String, String), Vec<f64>> = Default::default();
    for (name, labels, value) in &samples {
        if let Some(family) = name.strip_suffix("_bucket") {
            let key: Vec<_> = labels
                .iter()
                .filter(|(l, _)| l != "le")
                .map(|(l, v)| format!("{l}={v}"))
                .collect();
            buckets
                .entry((family.to_owned(), key.join(",")))
                .or_default()
                .push(*value);
            assert!(labels.last().unwrap().0 == "le");
        }
    }
    for ((family, key), values) in &buckets {
        assert!(
            values.windows(2).all(|w| w[0] <= w[1]),
            "{family} {key} not cumulative"
        );
        let count = samples
            .iter()
            .find(|(n, l, _)| {
                n == &format!("{family}_count")
                    && l.iter()
                        .map(|(l, v)| format!("{l}={v}"))
                        .collect::<Vec<_>>()
                        .join(",")
                        == *key
            })
            .unwrap_or_else(|| panic!("{family}_count {key}"));
        assert_eq!(values.last(), Some(&count.2), "{family} {key}");
    }
    samples
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_listener_serves_metrics_in_the_prometheus_text_format_and_health() {
    let server = start(true, quick_limits()).await;
    let admin = server.admin.unwrap();
    let ca = server.tls.clone().unwrap().certificate;
    for _ in 0..3 {
        let stream = tls_connect(server.addr, &ca, &[b"h2"]).await;
        send_h2(
            stream,
            post("https://localhost/", "TrentService.Encrypt", b"{}"),
        )
        .await;
    }
    // A handshake that fails: a client trusting another server's CA.
    let other = tempfile::tempdir().unwrap();
    let (unrelated, _) = bind(ServerConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        admin_listen: None,
        tls: TlsMode::SelfSigned {
            dir: other.path().to_owned(),
        },
        limits: Limits::default(),
    })
    .await
    .unwrap();
    drop(unrelated);
    {
        use rustls::pki_types::pem::PemObject;
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(
                rustls::pki_types::CertificateDer::from_pem_file(
                    other.path().join("self-signed.pem"),
                )
                .unwrap(),
            )
            .unwrap();
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
        let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
        let tcp = TcpStream::connect(server.addr).await.unwrap();
        let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
        assert!(
            connector.connect(name, tcp).await.is_err(),
            "an untrusted certificate was accepted"
        );
    }
    tokio::time::sleep(Duration::from_millis(100)).await;

    let answer = send_h1(TcpStream::connect(admin).await.unwrap(), get("/metrics")).await;
    assert_eq!(answer.status(), StatusCode::OK);
    assert!(answer.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain; version=0.0.4"));
    let text = String::from_utf8(answer.body().to_vec()).unwrap();
    let samples = parse_prometheus(&text);
    let value = |name: &str, labels: &[(&str, &str)]| {
        samples
            .iter()
            .find(|(n, l, _)| {
                n == name
                    && labels
                        .iter()
                        .all(|(k, v)| l.iter().any(|(a, b)| a == k && b == v))
            })
            .map(|s| s.2)
    };
    assert_eq!(
        value(
            "keyplane_requests_total",
            &[
                ("operation", "none"),
                ("code", "MissingAuthenticationTokenException")
            ]
        ),
        Some(3.0),
        "{text}"
    );
    assert_eq!(
        value(
            "keyplane_request_duration_seconds_count",
            &[("operation", "none")]
        ),
        Some(3.0)
    );
    assert!(value("keyplane_connections_total", &[]).unwrap() >= 4.0);
    assert!(
        value("keyplane_tls_handshake_failures_total", &[]).unwrap() >= 1.0,
        "{text}"
    );
    assert!(value("keyplane_open_connections", &[]).is_some());

    let answer = send_h1(TcpStream::connect(admin).await.unwrap(), get("/health")).await;
    assert_eq!(answer.status(), StatusCode::OK);
    assert_eq!(json(&answer), serde_json::json!({"status": "ok"}));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_shutdown_a_request_in_flight_completes_and_new_connections_are_refused() {
    let server = start(false, quick_limits()).await;
    // A request whose body is half sent: in flight.
    let mut tcp = TcpStream::connect(server.addr).await.unwrap();
    tcp.write_all(
        b"POST / HTTP/1.1\r\nhost: localhost\r\nx-amz-target: TrentService.ListKeys\r\ncontent-length: 4\r\n\r\n{}",
    )
    .await
    .unwrap();
    // An idle keep-alive connection.
    let mut idle = TcpStream::connect(server.addr).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    server.shutdown.shutdown();
    tokio::time::sleep(Duration::from_millis(200)).await;
    // The idle one is closed at once; the server is still draining the other.
    closed_within(&mut idle, Duration::from_secs(2))
        .await
        .expect("idle closed at shutdown");
    assert!(
        !server.task.is_finished(),
        "stopped before the request in flight finished"
    );
    tcp.write_all(b"  ").await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), tcp.read_to_end(&mut answer))
        .await
        .expect("answered, then closed")
        .unwrap();
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 400"), "{text}");
    assert!(
        text.contains("MissingAuthenticationTokenException"),
        "{text}"
    );
    tokio::time::timeout(Duration::from_secs(5), server.task)
        .await
        .expect("run returns once drained")
        .unwrap();
    assert!(
        TcpStream::connect(server.addr).await.is_err(),
        "still accepting after shutdown"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousands_of_idle_connections_are_held_cheaply_while_a_request_is_served() {
    let server = start(false, quick_limits()).await;
    // The server raised the soft limit to the hard one; this process holds both ends.
    let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile)
        .current
        .unwrap_or(1 << 20);
    let wanted = 10_000usize;
    let count = wanted.min((limit as usize).saturating_sub(400) / 2);
    let rss = || {
        std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("VmRSS:"))
                    .map(|l| l.split_whitespace().nth(1).unwrap().parse::<u64>().unwrap())
            })
            .unwrap_or(0)
    };
    let before = rss();
    let mut idle = Vec::with_capacity(count);
    for _ in 0..count {
        idle.push(TcpStream::connect(server.addr).await.unwrap());
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while server.metrics.open_connections() < count as i64 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(server.metrics.open_connections(), count as i64);
    let started = Instant::now();
    let answer = send_h1(
        TcpStream::connect(server.addr).await.unwrap(),
        signed(&server, false, "TrentService.ListKeys", b"{}"),
    )
    .await;
    let took = started.elapsed();
    assert_eq!(answer.status(), StatusCode::OK, "{:?}", answer.body());
    assert!(json(&answer)["Keys"].is_array());
    let grown_kib = rss().saturating_sub(before);
    println!(
        "assurance: {count} idle connections held (wanted {wanted}; open-files limit {limit}, both ends in this process): \
         a signed request answered in {took:?}; resident memory grew {grown_kib} KiB for both ends, {:.1} KiB per connection",
        grown_kib as f64 / count as f64
    );
    assert!(took < Duration::from_secs(2), "{took:?}");
    assert!(
        grown_kib / (count as u64) < 64,
        "{grown_kib} KiB for {count} idle connections"
    );
    drop(idle);
    server.stop().await;
}

// ---- Signed requests (SigV4 by the `aws-sigv4` crate, an independent implementation) ----

/// The headers of a request for `target` with `body`, signed for `host` by the aws-sigv4 crate.
fn signed_headers(
    credential: &(String, String),
    host: &str,
    target: &str,
    body: &[u8],
) -> Vec<(String, String)> {
    let base = [
        ("host", host),
        ("content-type", "application/x-amz-json-1.1"),
        ("x-amz-target", target),
        ("user-agent", "transport-test/1.0"),
    ];
    let signer = keyplane_testkit::sigv4::AwsSigner {
        access_key_id: &credential.0,
        secret: &credential.1,
        region: "us-east-1",
        service: "kms",
        time: std::time::SystemTime::now(),
        content_sha256: false,
    };
    signer.signed_headers("POST", &format!("https://{host}/"), &base, body)
}

/// A signed request; over HTTP/2 the host travels as `:authority` only.
fn signed(
    server: &Running,
    http2: bool,
    target: &str,
    body: &'static [u8],
) -> Request<Full<Bytes>> {
    let host = format!("localhost:{}", server.addr.port());
    let mut request = Request::post(format!("https://{host}/"));
    for (name, value) in signed_headers(&server.credential, &host, target, body) {
        if !(http2 && name == "host") {
            request = request.header(name, value);
        }
    }
    request.body(Full::new(Bytes::from_static(body))).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_requests_are_answered_over_http1_and_http2_with_their_origin_in_the_audit_record() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.log");
    let key = keyplane::audit::generate_signing_key(keyplane::LockPolicy::default()).unwrap();
    let builder = engine().audit(keyplane::audit::AuditConfig::new(&log), key);
    let server = start_with(true, quick_limits(), builder).await;
    let ca = server.tls.clone().unwrap().certificate;

    let h2 = tls_connect(server.addr, &ca, &[b"h2"]).await;
    let created = send_h2(h2, signed(&server, true, "TrentService.CreateKey", b"{}")).await;
    assert_eq!(created.status(), StatusCode::OK, "{:?}", created.body());
    assert_eq!(created.version(), http::Version::HTTP_2);
    assert_service_headers(&created);
    let key_id = json(&created)["KeyMetadata"]["KeyId"]
        .as_str()
        .expect("a KeyId")
        .to_owned();

    let h1 = tls_connect(server.addr, &ca, &[b"http/1.1"]).await;
    let listed = send_h1(h1, signed(&server, false, "TrentService.ListKeys", b"{}")).await;
    assert_eq!(listed.status(), StatusCode::OK, "{:?}", listed.body());
    assert_service_headers(&listed);
    assert!(listed
        .body()
        .windows(key_id.len())
        .any(|w| w == key_id.as_bytes()));

    // A wrong signature is refused with the service's code, over the wire.
    let mut forged = signed(&server, false, "TrentService.ListKeys", b"{}");
    *forged.body_mut() = Full::new(Bytes::from_static(b"{ }"));
    let h1 = tls_connect(server.addr, &ca, &[b"http/1.1"]).await;
    let refused = send_h1(h1, forged).await;
    assert_eq!(refused.status().as_u16() / 100, 4);
    assert_eq!(json(&refused)["__type"], "InvalidSignatureException");
    assert_service_headers(&refused);

    let request_ids: Vec<String> = [&created, &listed]
        .iter()
        .map(|a| a.headers()["x-amzn-requestid"].to_str().unwrap().to_owned())
        .collect();
    let text = server.metrics.render();
    assert!(
        text.contains("keyplane_requests_total{operation=\"CreateKey\",code=\"OK\"} 1\n"),
        "{text}"
    );
    let (access_key_id, port) = (server.credential.0.clone(), server.addr.port());
    server.stop().await;

    // Each answer's request id is its audit record's, with where the request came from.
    let records: Vec<serde_json::Value> = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    for (request_id, operation) in request_ids.iter().zip(["CreateKey", "ListKeys"]) {
        let record = records
            .iter()
            .find(|r| r["requestID"] == request_id.as_str())
            .unwrap_or_else(|| panic!("no audit record for {request_id}: {records:?}"));
        assert_eq!(record["eventName"], operation);
        assert_eq!(record["sourceIPAddress"], "127.0.0.1");
        assert_eq!(record["userAgent"], "transport-test/1.0");
        assert_eq!(
            record["userIdentity"]["accessKeyId"],
            access_key_id.as_str()
        );
        assert_eq!(record["userIdentity"]["arn"], ROOT);
        let tls = &record["tlsDetails"];
        assert_eq!(tls["tlsVersion"], "TLSv1.3", "{record}");
        assert!(
            tls["cipherSuite"].as_str().unwrap().starts_with("TLS_AES_"),
            "{record}"
        );
        assert_eq!(tls["clientProvidedHostHeader"], format!("localhost:{port}"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_request_in_flight_at_shutdown_is_answered_in_full() {
    let server = start(false, quick_limits()).await;
    let host = format!("localhost:{}", server.addr.port());
    let mut head = String::from("POST / HTTP/1.1\r\ncontent-length: 2\r\n");
    for (name, value) in signed_headers(&server.credential, &host, "TrentService.ListKeys", b"{}") {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n{");
    let mut tcp = TcpStream::connect(server.addr).await.unwrap();
    tcp.write_all(head.as_bytes()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    server.shutdown.shutdown();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!server.task.is_finished());
    tcp.write_all(b"}").await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), tcp.read_to_end(&mut answer))
        .await
        .expect("answered, then closed")
        .unwrap();
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(text.contains("\"Keys\""), "{text}");
    tokio::time::timeout(Duration::from_secs(5), server.task)
        .await
        .expect("drained")
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_slower_than_the_body_timeout_is_answered_408_and_the_connection_closed() {
    let limits = Limits {
        body_timeout: Duration::from_millis(300),
        ..quick_limits()
    };
    let server = start(false, limits).await;
    let mut tcp = TcpStream::connect(server.addr).await.unwrap();
    tcp.write_all(b"POST / HTTP/1.1\r\nhost: localhost\r\ncontent-length: 10\r\n\r\n{")
        .await
        .unwrap();
    let started = Instant::now();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), tcp.read_to_end(&mut answer))
        .await
        .expect("answered and closed")
        .unwrap();
    let took = started.elapsed();
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(text.contains("RequestTimeoutException"), "{text}");
    assert!(took >= Duration::from_millis(250), "{took:?}");
    assert!(server
        .metrics
        .render()
        .contains("keyplane_body_timeouts_total 1\n"));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_signed_requests_share_one_http2_connection_concurrently() {
    let server = start(true, quick_limits()).await;
    let ca = server.tls.clone().unwrap().certificate;
    let stream = tls_connect(server.addr, &ca, &[b"h2"]).await;
    let (sender, conn) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        TokioIo::new(stream),
    )
    .await
    .unwrap();
    tokio::spawn(conn);
    let body: &'static [u8] = br#"{"NumberOfBytes":32}"#;
    let calls: Vec<_> = (0..64)
        .map(|_| {
            let mut sender = sender.clone();
            let request = signed(&server, true, "TrentService.GenerateRandom", body);
            tokio::spawn(async move { collect(sender.send_request(request).await.unwrap()).await })
        })
        .collect();
    let mut ids = std::collections::HashSet::new();
    for call in calls {
        let answer = call.await.unwrap();
        assert_eq!(answer.status(), StatusCode::OK, "{:?}", answer.body());
        assert!(json(&answer)["Plaintext"].is_string());
        ids.insert(answer.headers()["x-amzn-requestid"].clone());
    }
    assert_eq!(ids.len(), 64, "request ids are not unique");
    assert_eq!(server.metrics.open_connections(), 1);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_client_is_dropped_by_the_tls_handshake_timeout() {
    let limits = Limits {
        handshake_timeout: Duration::from_millis(300),
        ..quick_limits()
    };
    let server = start(true, limits).await;
    let mut silent = TcpStream::connect(server.addr).await.unwrap();
    let took = closed_within(&mut silent, Duration::from_secs(5))
        .await
        .expect("dropped by the handshake timeout");
    assert!(took >= Duration::from_millis(250), "{took:?}");
    assert!(server
        .metrics
        .render()
        .contains("keyplane_tls_handshake_failures_total 1\n"));
    assert_eq!(server.metrics.open_connections(), 0);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_head_over_the_header_size_limit_is_refused_and_the_connection_closed() {
    let server = start(false, quick_limits()).await;
    let mut tcp = TcpStream::connect(server.addr).await.unwrap();
    let huge = "a".repeat(200 << 10);
    let head = format!("GET /health HTTP/1.1\r\nhost: localhost\r\nx-filler: {huge}\r\n\r\n");
    // The server may close while this is still being written.
    let _ = tcp.write_all(head.as_bytes()).await;
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), tcp.read_to_end(&mut answer))
        .await
        .expect("closed");
    let text = String::from_utf8_lossy(&answer);
    assert!(
        text.is_empty() || text.starts_with("HTTP/1.1 431"),
        "a 200 KiB head was served: {text}"
    );
    // The server is fine.
    server.assert_serves().await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http2_connection_kept_busy_with_pings_but_no_requests_is_closed_when_idle() {
    let limits = Limits {
        idle_timeout: Duration::from_millis(500),
        ..quick_limits()
    };
    let server = start(true, limits).await;
    let ca = server.tls.clone().unwrap().certificate;
    let stream = tls_connect(server.addr, &ca, &[b"h2"]).await;
    let (mut sender, conn) =
        hyper::client::conn::http2::Builder::new(hyper_util::rt::TokioExecutor::new())
            .timer(hyper_util::rt::TokioTimer::new())
            .keep_alive_interval(Duration::from_millis(50))
            .keep_alive_while_idle(true)
            .handshake(TokioIo::new(stream))
            .await
            .unwrap();
    let conn = tokio::spawn(conn);
    let answer = collect(
        sender
            .send_request(get("https://localhost/health"))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(answer.status(), StatusCode::OK);
    let started = Instant::now();
    // Pings every 50 ms flow both ways; the connection still ends at the idle timeout.
    let _ = tokio::time::timeout(Duration::from_secs(5), conn)
        .await
        .expect("closed although pinged");
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(400), "{took:?}");
    assert!(server
        .metrics
        .render()
        .contains("keyplane_idle_timeouts_total 1\n"));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_that_never_finishes_holds_shutdown_only_for_the_drain_timeout() {
    let limits = Limits {
        drain_timeout: Duration::from_millis(300),
        ..quick_limits()
    };
    let server = start(false, limits).await;
    let mut stuck = TcpStream::connect(server.addr).await.unwrap();
    stuck
        .write_all(b"POST / HTTP/1.1\r\nhost: localhost\r\ncontent-length: 100\r\n\r\n{")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let started = Instant::now();
    server.shutdown.shutdown();
    tokio::time::timeout(Duration::from_secs(5), server.task)
        .await
        .expect("run returns after the drain timeout")
        .unwrap();
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(250) && took < Duration::from_secs(3),
        "{took:?}"
    );
}

// ---- aws:SourceIp over the network (lead, issue 13) --------------------------------------------

/// A key policy's `aws:SourceIp` condition sees the client's real address: a Deny for Encrypt from
/// 127.0.0.1 (`StringEquals`; the engine has no `IpAddress` operator) refuses the same signed request that an Allow-only policy answers. (Without the
/// address on the caller, the condition never matched and the Deny was silently inert.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attack_a_key_policy_source_ip_condition_cannot_be_escaped_over_the_network() {
    let server = start_with(true, quick_limits(), engine()).await;
    let ca = server.tls.clone().unwrap().certificate;
    let leak = |text: String| -> &'static [u8] { Box::leak(text.into_bytes().into_boxed_slice()) };

    let h1 = tls_connect(server.addr, &ca, &[b"http/1.1"]).await;
    let created = send_h1(h1, signed(&server, false, "TrentService.CreateKey", b"{}")).await;
    let key_id = json(&created)["KeyMetadata"]["KeyId"]
        .as_str()
        .unwrap()
        .to_owned();
    let encrypt = leak(format!(r#"{{"KeyId":"{key_id}","Plaintext":"aGVsbG8="}}"#));
    let policy = |address: &str| {
        let document = serde_json::json!({
            "Version": "2012-10-17",
            "Statement": [
                {"Sid": "root", "Effect": "Allow",
                 "Principal": {"AWS": "arn:aws:iam::111122223333:root"},
                 "Action": "kms:*", "Resource": "*"},
                {"Sid": "no-encrypt-from", "Effect": "Deny",
                 "Principal": {"AWS": "arn:aws:iam::111122223333:root"},
                 "Action": "kms:Encrypt", "Resource": "*",
                 "Condition": {"StringEquals": {"aws:SourceIp": address}}}
            ]
        });
        leak(
            serde_json::json!({"KeyId": key_id, "PolicyName": "default",
                               "Policy": document.to_string()})
            .to_string(),
        )
    };

    let mut tried = 0;
    for (address, denied) in [("10.1.2.3", false), ("127.0.0.1", true)] {
        let h1 = tls_connect(server.addr, &ca, &[b"http/1.1"]).await;
        let put = send_h1(
            h1,
            signed(&server, false, "TrentService.PutKeyPolicy", policy(address)),
        )
        .await;
        assert_eq!(put.status(), StatusCode::OK, "{:?}", put.body());
        let h1 = tls_connect(server.addr, &ca, &[b"http/1.1"]).await;
        let answer = send_h1(h1, signed(&server, false, "TrentService.Encrypt", encrypt)).await;
        if denied {
            tried += 1;
            assert_eq!(answer.status().as_u16(), 400, "{:?}", answer.body());
            assert_eq!(json(&answer)["__type"], "AccessDeniedException");
        } else {
            assert_eq!(answer.status(), StatusCode::OK, "{:?}", answer.body());
        }
    }
    println!(
        "assurance: attack source-ip-condition-over-the-network: tried {tried}, rejected {tried}"
    );
    server.stop().await;
}
