//! The server's [`Limits`]: what holds whatever clients do.

use std::time::Duration;

/// Limits that hold whatever clients do.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Largest request body; a larger one is answered 413 without being read.
    pub max_body_bytes: usize,
    /// Most client connections open at once; past it the server stops accepting until one closes.
    pub max_connections: usize,
    /// An idle connection (no request in flight, no bytes) is closed after this.
    pub idle_timeout: Duration,
    /// HTTP/1.1: a request's headers must arrive within this from their first byte.
    pub header_timeout: Duration,
    /// A request's body must arrive within this.
    pub body_timeout: Duration,
    /// A TLS handshake must finish within this.
    pub handshake_timeout: Duration,
    /// Largest request head (HTTP/1.1 read buffer; HTTP/2 header list).
    pub max_header_bytes: usize,
    /// HTTP/2 streams in flight per connection.
    pub max_concurrent_streams: u32,
    /// At shutdown, how long in-flight requests get to finish.
    pub drain_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_body_bytes: 1 << 20,
            max_connections: 20_000,
            idle_timeout: Duration::from_secs(60),
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
            handshake_timeout: Duration::from_secs(10),
            max_header_bytes: 64 << 10,
            max_concurrent_streams: 128,
            drain_timeout: Duration::from_secs(30),
        }
    }
}
