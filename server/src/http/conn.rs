//! Accepting connections and serving each one: the connection cap, the TLS handshake timeout,
//! hyper's HTTP/1.1 + HTTP/2 server, and a watchdog per connection for the header and idle
//! timeouts and for shutdown.
//!
//! The watchdog sees the connection through [`Watched`], a wrapper over its byte stream that
//! notes when bytes last moved and when the first byte of a new HTTP/1.1 request arrived; the
//! request handler notes when a request is in flight. It sleeps until the earliest deadline those
//! give, so an idle connection costs one timer, its task and hyper's buffers.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};

use super::handler::{self, App, ConnInfo};
use super::limits::Limits;
use crate::metrics::Closed;

/// Which listener a connection came in on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Role {
    /// The service's API (SigV4, JSON 1.1) and `GET /health`.
    Api,
    /// `GET /metrics` and `GET /health`.
    Admin,
    /// The web console.
    Console,
}

/// Accepts on `listener` until shutdown, each connection holding one of `permits`.
pub(crate) async fn accept_loop(
    listener: TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    role: Role,
    app: Arc<App>,
    permits: Arc<Semaphore>,
    mut shutdown: watch::Receiver<bool>,
) {
    let builder = Arc::new(http_builder(&app.limits));
    loop {
        // At the cap, stop accepting: new connections wait in the kernel's backlog.
        let permit = tokio::select! {
            permit = Arc::clone(&permits).acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => return,
            },
            _ = shutdown.wait_for(|stopped| *stopped) => return,
        };
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = shutdown.wait_for(|stopped| *stopped) => return,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(_) => {
                // Out of file descriptors or a connection reset before accept: back off briefly
                // rather than spin.
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        tokio::spawn(connection(
            stream,
            peer,
            tls.clone(),
            role,
            Arc::clone(&app),
            Arc::clone(&builder),
            shutdown.clone(),
            permit,
        ));
    }
}

fn http_builder(limits: &Limits) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .keep_alive(true)
        .max_buf_size(limits.max_header_bytes)
        // The watchdog enforces the header and idle timeouts; hyper's (which counts from the end
        // of the previous request) is a backstop.
        .header_read_timeout(limits.header_timeout + limits.idle_timeout);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(limits.max_concurrent_streams)
        .max_header_list_size(u32::try_from(limits.max_header_bytes).unwrap_or(u32::MAX))
        .keep_alive_interval(None);
    builder
}

/// One connection, from TLS handshake to close.
#[allow(clippy::too_many_arguments)]
async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    tls: Option<tokio_rustls::TlsAcceptor>,
    role: Role,
    app: Arc<App>,
    builder: Arc<auto::Builder<TokioExecutor>>,
    shutdown: watch::Receiver<bool>,
    _permit: OwnedSemaphorePermit,
) {
    // Client connections only: the admin listener's scrapes are not counted.
    let _counted = (role == Role::Api).then(|| Counted::new(&app));
    match tls {
        None => {
            let info = ConnInfo {
                peer,
                tls_version: None,
                cipher_suite: None,
            };
            serve(stream, info, role, app, &builder, shutdown).await
        }
        Some(acceptor) => {
            let mut stop = shutdown.clone();
            let handshake = tokio::select! {
                done = tokio::time::timeout(app.limits.handshake_timeout, acceptor.accept(stream)) => done,
                _ = stop.wait_for(|stopped| *stopped) => return,
            };
            let Ok(Ok(stream)) = handshake else {
                app.metrics.tls_handshake_failure();
                return;
            };
            let session = stream.get_ref().1;
            let info = ConnInfo {
                peer,
                tls_version: session.protocol_version().map(tls_version_name),
                cipher_suite: session
                    .negotiated_cipher_suite()
                    .map(|s| cipher_suite_name(s.suite())),
            };
            serve(stream, info, role, app, &builder, shutdown).await
        }
    }
}

/// Counts a connection open, and closed when its task ends, however it ends.
struct Counted(Arc<App>);

impl Counted {
    fn new(app: &Arc<App>) -> Counted {
        app.metrics.connection(true);
        Counted(Arc::clone(app))
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.metrics.connection(false);
    }
}

async fn serve<IO>(
    io: IO,
    info: ConnInfo,
    role: Role,
    app: Arc<App>,
    builder: &auto::Builder<TokioExecutor>,
    mut shutdown: watch::Receiver<bool>,
) where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let activity = Arc::new(Activity::default());
    activity.touch();
    let limits = app.limits.clone();
    let metrics = Arc::clone(&app.metrics);
    let info = Arc::new(info);
    let svc_activity = Arc::clone(&activity);
    let service = service_fn(move |request| {
        let app = Arc::clone(&app);
        let info = Arc::clone(&info);
        let activity = Arc::clone(&svc_activity);
        async move {
            let _in_flight = activity.request_started(request.version() == http::Version::HTTP_2);
            Ok::<_, std::convert::Infallible>(match role {
                Role::Api => handler::api(&app, &info, request).await,
                Role::Admin => handler::admin(&app, request).await,
                Role::Console => match app.console.get() {
                    Some(console) => {
                        crate::console::handle(
                            console,
                            info.peer,
                            info.tls_version.clone(),
                            info.cipher_suite.clone(),
                            app.limits.max_body_bytes,
                            request,
                        )
                        .await
                    }
                    None => handler::admin(&app, request).await,
                },
            })
        }
    });
    let watched = Watched {
        io,
        activity: Arc::clone(&activity),
    };
    let conn = builder.serve_connection(TokioIo::new(watched), service);
    tokio::pin!(conn);
    let mut draining = false;
    loop {
        let deadline = activity.deadline(&limits);
        tokio::select! {
            _ = conn.as_mut() => return,
            _ = activity.earlier.notified(), if !draining => {}
            _ = tokio::time::sleep_until(deadline.into()), if !draining => {
                match activity.expired(&limits) {
                    Some(Closed::HeaderTimeout) => {
                        // A slow or stalled request head: close now (dropping the connection).
                        metrics.closed(Closed::HeaderTimeout);
                        return;
                    }
                    Some(why) => {
                        metrics.closed(why);
                        conn.as_mut().graceful_shutdown();
                        draining = true;
                    }
                    None => {}
                }
            }
            _ = shutdown.wait_for(|stopped| *stopped), if !draining => {
                conn.as_mut().graceful_shutdown();
                draining = true;
            }
        }
    }
}

/// What the watchdog knows of one connection. Times are milliseconds since [`epoch`]; 0 is none.
#[derive(Debug, Default)]
pub(crate) struct Activity {
    last_io: AtomicU64,
    head_started: AtomicU64,
    in_flight: AtomicUsize,
    http2: AtomicBool,
    /// Wakes the watchdog when a deadline earlier than the one it sleeps to appears.
    earlier: tokio::sync::Notify,
}

fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

fn now_ms() -> u64 {
    u64::try_from(epoch().elapsed().as_millis())
        .unwrap_or(u64::MAX)
        .max(1)
}

impl Activity {
    fn touch(&self) {
        self.last_io.store(now_ms(), Relaxed);
    }

    /// Bytes were written (on HTTP/1.1, an answer going out slowly is activity).
    fn wrote(&self) {
        if !self.http2.load(Relaxed) {
            self.touch();
        }
    }

    /// Bytes arrived. On HTTP/2 only requests count as activity: pings, window updates and
    /// dribbled header fragments do not keep a connection open past the idle timeout.
    fn read(&self) {
        if self.http2.load(Relaxed) {
            return;
        }
        let now = now_ms();
        self.last_io.store(now, Relaxed);
        // The first bytes while no request is in flight start an HTTP/1.1 request head. (HTTP/2
        // frames between requests, pings say, start nothing: hyper bounds its header lists.)
        if self.in_flight.load(Relaxed) == 0
            && !self.http2.load(Relaxed)
            && self.head_started.load(Relaxed) == 0
        {
            self.head_started.store(now, Relaxed);
            self.earlier.notify_one();
        }
    }

    /// A request's head was read; the guard marks it finished when dropped.
    pub(crate) fn request_started(self: &Arc<Self>, http2: bool) -> InFlight {
        if http2 {
            self.http2.store(true, Relaxed);
        }
        self.in_flight.fetch_add(1, Relaxed);
        self.head_started.store(0, Relaxed);
        InFlight(Arc::clone(self))
    }

    fn deadline(&self, limits: &Limits) -> Instant {
        let at = |ms: u64, after: Duration| epoch() + Duration::from_millis(ms) + after;
        let head = self.head_started.load(Relaxed);
        if head != 0 {
            return at(head, limits.header_timeout);
        }
        if self.in_flight.load(Relaxed) == 0 {
            return at(self.last_io.load(Relaxed), limits.idle_timeout);
        }
        // A request in flight (its own body timeout applies): look again later.
        Instant::now() + limits.idle_timeout
    }

    fn expired(&self, limits: &Limits) -> Option<Closed> {
        let now = now_ms();
        let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        let head = self.head_started.load(Relaxed);
        if head != 0 {
            return (now.saturating_sub(head) >= ms(limits.header_timeout))
                .then_some(Closed::HeaderTimeout);
        }
        let idle = self.in_flight.load(Relaxed) == 0
            && now.saturating_sub(self.last_io.load(Relaxed)) >= ms(limits.idle_timeout);
        idle.then_some(Closed::IdleTimeout)
    }
}

/// A request in flight on a connection.
pub(crate) struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.touch();
        self.0.in_flight.fetch_sub(1, Relaxed);
        // The watchdog may sleep towards a header deadline that no longer applies; the idle
        // deadline that does may be earlier.
        self.0.earlier.notify_one();
    }
}

/// A connection's byte stream, noting activity for the watchdog.
struct Watched<IO> {
    io: IO,
    activity: Arc<Activity>,
}

impl<IO: AsyncRead + Unpin> AsyncRead for Watched<IO> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.io).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.read();
        }
        polled
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for Watched<IO> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.io).poll_write(cx, buf);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.wrote();
        }
        polled
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.io).poll_write_vectored(cx, bufs);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.wrote();
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

/// `TLSv1.3`, as audit records name versions.
fn tls_version_name(version: rustls::ProtocolVersion) -> String {
    match version {
        rustls::ProtocolVersion::TLSv1_3 => "TLSv1.3".into(),
        rustls::ProtocolVersion::TLSv1_2 => "TLSv1.2".into(),
        other => format!("{other:?}"),
    }
}

/// The IANA name of a suite (`TLS_AES_128_GCM_SHA256`).
fn cipher_suite_name(suite: rustls::CipherSuite) -> String {
    let name = suite
        .as_str()
        .map(str::to_owned)
        .unwrap_or_else(|| format!("{suite:?}"));
    match name.strip_prefix("TLS13_") {
        Some(rest) => format!("TLS_{rest}"),
        None => name,
    }
}
