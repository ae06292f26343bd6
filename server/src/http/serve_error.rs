//! Why the server could not start or run ([`ServeError`]).

use std::net::SocketAddr;

/// Why the server could not start or run.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("plain HTTP is allowed only on a loopback address (127.0.0.1, ::1), not {0}: use TLS (--tls-cert/--tls-key or --tls-self-signed) to listen there")]
    PlainHttpNotLoopback(SocketAddr),
    #[error("TLS: {0}")]
    Tls(String),
    #[error("cannot listen on {0}: {1}")]
    Bind(SocketAddr, std::io::Error),
    #[error("invalid limit: {0}")]
    Limit(String),
}
