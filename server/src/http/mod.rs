//! Listeners, TLS, limits, health, metrics and shutdown.
//!
//! [`Server::bind`] opens the listeners (the API one, TLS unless plain HTTP on loopback was asked
//! for, and optionally the admin one); [`Server::run`] accepts until its [`ShutdownHandle`] fires,
//! then drains. Connections are served by hyper (HTTP/1.1 keep-alive and HTTP/2 on one port; ALPN
//! over TLS) on a multi-thread tokio runtime; each connection has a watchdog for its header and
//! idle timeouts ([`conn`]). Requests are answered by [`handler`]: bounded body, SigV4, then the
//! protocol layer, which runs engine calls on blocking threads.

mod conn;
mod handler;
mod limits;
mod serve_error;
pub mod tls;

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};

use crate::auth::Authenticator;
use crate::metrics::Metrics;
use crate::protocol::Service;

pub use limits::Limits;
pub use serve_error::ServeError;
pub use tls::{TlsInfo, TlsMode};

/// Where and how to listen.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// The API listener (`--listen`); port 0 picks a free one.
    pub listen: SocketAddr,
    /// The admin listener (`GET /metrics`, `GET /health`; plain HTTP), if any.
    pub admin_listen: Option<SocketAddr>,
    pub tls: TlsMode,
    pub limits: Limits,
}

/// Fires a server's graceful shutdown (from any thread; more than once is harmless).
#[derive(Clone, Debug)]
pub struct ShutdownHandle(Arc<watch::Sender<bool>>);

impl ShutdownHandle {
    /// Stop accepting, let in-flight requests finish (up to the drain timeout), then return from
    /// [`Server::run`].
    pub fn shutdown(&self) {
        self.0.send_replace(true);
    }
}

/// A bound server, not yet accepting.
pub struct Server {
    api: TcpListener,
    admin: Option<TcpListener>,
    console: Option<TcpListener>,
    app: Arc<handler::App>,
    tls: Option<(tokio_rustls::TlsAcceptor, TlsInfo)>,
    shutdown: Arc<watch::Sender<bool>>,
    fd_limit: Option<u64>,
}

impl Server {
    /// Opens the listeners (and TLS material) of `config`. Refuses plain HTTP on a non-loopback
    /// address. Raises the open-files soft limit to the hard limit (see [`Server::fd_limit`]).
    pub async fn bind(
        config: ServerConfig,
        service: Service,
        authenticator: Authenticator,
        metrics: Arc<Metrics>,
    ) -> Result<Server, ServeError> {
        let limits = config.limits;
        if limits.max_connections == 0 || limits.max_connections > Semaphore::MAX_PERMITS {
            return Err(ServeError::Limit(
                "max connections must be at least 1".into(),
            ));
        }
        if limits.max_header_bytes < 8192 {
            return Err(ServeError::Limit(
                "max header bytes must be at least 8192".into(),
            ));
        }
        let tls = match &config.tls {
            TlsMode::Plain if !config.listen.ip().is_loopback() => {
                return Err(ServeError::PlainHttpNotLoopback(config.listen))
            }
            TlsMode::Plain => None,
            mode => {
                let (server_config, info) = tls::server_config(mode)?;
                Some((tokio_rustls::TlsAcceptor::from(server_config), info))
            }
        };
        let fd_limit = raise_fd_limit();
        let api = listen(config.listen)?;
        let admin = config.admin_listen.map(listen).transpose()?;
        let app = Arc::new(handler::App::new(service, authenticator, metrics, limits));
        Ok(Server {
            api,
            admin,
            console: None,
            app,
            tls,
            shutdown: Arc::new(watch::channel(false).0),
            fd_limit,
        })
    }

    /// Adds the web console on its own listener (TLS when the API listener has TLS; plain HTTP
    /// only on a loopback address). Call once, before [`Server::run`].
    pub fn with_console(
        mut self,
        config: crate::console::ConsoleConfig,
    ) -> Result<Server, ServeError> {
        if self.tls.is_none() && !config.listen.ip().is_loopback() {
            return Err(ServeError::PlainHttpNotLoopback(config.listen));
        }
        let listener = listen(config.listen)?;
        let console = crate::console::Console::new(
            config,
            self.app.service.clone(),
            self.app.authenticator.credentials().clone(),
            Arc::clone(&self.app.metrics),
            self.tls.is_some(),
        );
        if self.app.console.set(console).is_err() {
            return Err(ServeError::Limit("the console was added twice".into()));
        }
        self.console = Some(listener);
        Ok(self)
    }

    /// The console listener's address, if any.
    pub fn console_addr(&self) -> Option<SocketAddr> {
        self.console.as_ref().and_then(|l| l.local_addr().ok())
    }

    /// `https://ADDR` or `http://ADDR` of the console, if any.
    pub fn console_url(&self) -> Option<String> {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        self.console_addr().map(|a| format!("{scheme}://{a}"))
    }

    /// The API listener's address (its port when bound to port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.api
            .local_addr()
            .expect("a bound listener has an address")
    }

    /// `https://ADDR` or `http://ADDR`.
    pub fn url(&self) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://{}", self.local_addr())
    }

    /// The admin listener's address, if any.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin.as_ref().and_then(|l| l.local_addr().ok())
    }

    /// What clients trust (None for plain HTTP).
    pub fn tls_info(&self) -> Option<&TlsInfo> {
        self.tls.as_ref().map(|(_, info)| info)
    }

    /// The open-files limit in force (after raising the soft limit to the hard one), if known.
    pub fn fd_limit(&self) -> Option<u64> {
        self.fd_limit
    }

    /// A handle that stops [`Server::run`].
    pub fn shutdown_handle(&self) -> ShutdownHandle {
        ShutdownHandle(Arc::clone(&self.shutdown))
    }

    /// Accepts and serves until shut down, then drains: no new connections; in-flight requests
    /// finish (idle connections close at once) for up to the drain timeout. Returns once every
    /// connection is closed or the drain timeout passed; the service (and its engine) is released
    /// when the last connection task ends.
    pub async fn run(self) {
        let limits = self.app.limits.clone();
        let permits = Arc::new(Semaphore::new(limits.max_connections));
        const CONSOLE_CONNECTIONS: usize = 256;
        let console_permits = Arc::new(Semaphore::new(CONSOLE_CONNECTIONS));
        let tls = self.tls.map(|(acceptor, _)| acceptor);
        let console = self.console.map(|listener| {
            tokio::spawn(conn::accept_loop(
                listener,
                tls.clone(),
                conn::Role::Console,
                Arc::clone(&self.app),
                Arc::clone(&console_permits),
                self.shutdown.subscribe(),
            ))
        });
        let api = tokio::spawn(conn::accept_loop(
            self.api,
            tls,
            conn::Role::Api,
            Arc::clone(&self.app),
            Arc::clone(&permits),
            self.shutdown.subscribe(),
        ));
        const ADMIN_CONNECTIONS: usize = 64;
        let admin_permits = Arc::new(Semaphore::new(ADMIN_CONNECTIONS));
        let admin = self.admin.map(|listener| {
            tokio::spawn(conn::accept_loop(
                listener,
                None,
                conn::Role::Admin,
                Arc::clone(&self.app),
                Arc::clone(&admin_permits),
                self.shutdown.subscribe(),
            ))
        });
        drop(self.app);
        let mut stop = self.shutdown.subscribe();
        let _ = stop.wait_for(|stopped| *stopped).await;
        let _ = api.await;
        if let Some(admin) = admin {
            let _ = admin.await;
        }
        if let Some(console) = console {
            let _ = console.await;
        }
        // Every connection holds a permit until its task ends: all of them back means drained.
        let all = u32::try_from(limits.max_connections).unwrap_or(u32::MAX);
        let drained = async {
            let _api = permits.acquire_many(all).await;
            let _admin = admin_permits.acquire_many(ADMIN_CONNECTIONS as u32).await;
            let _console = console_permits
                .acquire_many(CONSOLE_CONNECTIONS as u32)
                .await;
        };
        let _ = tokio::time::timeout(limits.drain_timeout, drained).await;
    }

    /// From now on, SIGTERM or SIGINT shuts the server down (instead of ending the process):
    /// call before telling anyone the server is ready.
    pub fn shutdown_on_signals(&self) -> std::io::Result<()> {
        use tokio::signal::unix::{signal, SignalKind};
        // The handlers are installed here, synchronously; the task only waits.
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        let handle = self.shutdown_handle();
        tokio::spawn(async move {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
            handle.shutdown();
        });
        Ok(())
    }

    /// [`Server::run`] until SIGTERM or SIGINT.
    pub async fn run_until_signal(self) -> std::io::Result<()> {
        self.shutdown_on_signals()?;
        self.run().await;
        Ok(())
    }
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("api", &self.api)
            .field("admin", &self.admin)
            .field("console", &self.console)
            .field("tls", &self.tls.as_ref().map(|(_, info)| info))
            .finish_non_exhaustive()
    }
}

/// Connections the kernel completes before the server accepts them. A burst of connections past
/// it (the kernel caps it at `net.core.somaxconn`) is dropped by the kernel, not the server.
const BACKLOG: u32 = 4096;

fn listen(addr: SocketAddr) -> Result<TcpListener, ServeError> {
    let socket = match addr {
        SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4(),
        SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6(),
    };
    let bound = socket.and_then(|socket| {
        socket.set_reuseaddr(true)?;
        socket.bind(addr)?;
        socket.listen(BACKLOG)
    });
    bound.map_err(|e| ServeError::Bind(addr, e))
}

/// Raises the open-files soft limit to the hard limit; the limit now in force.
fn raise_fd_limit() -> Option<u64> {
    use rustix::process::{getrlimit, setrlimit, Resource};
    let mut limit = getrlimit(Resource::Nofile);
    if limit.current != limit.maximum {
        let raised = rustix::process::Rlimit {
            current: limit.maximum,
            maximum: limit.maximum,
        };
        if setrlimit(Resource::Nofile, raised).is_ok() {
            limit = raised;
        }
    }
    limit.current
}
