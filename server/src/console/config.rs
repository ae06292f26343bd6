//! The console's settings and the names every answer and record uses.

use std::net::SocketAddr;
use std::path::PathBuf;

use super::session::{SignInLimit, Timeouts};

/// The Content-Security-Policy of every answer.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
                       connect-src 'self'; form-action 'self'; frame-ancestors 'none'; \
                       base-uri 'none'";

/// The session cookie's name over TLS (`__Host-`: the browser keeps it only when it is Secure,
/// host-only and `Path=/`).
pub const COOKIE_TLS: &str = "__Host-kp_console";
/// The session cookie's name over plain HTTP on loopback (tests only: a `__Host-` cookie must be
/// Secure, and a Secure cookie is not sent over plain HTTP).
pub const COOKIE_PLAIN: &str = "kp_console";
/// What the console's audit records' `userAgent` begins with.
pub const USER_AGENT: &str = "keyplane-console";

/// Where the audit log the console shows lives.
#[derive(Clone, Debug)]
pub struct AuditPaths {
    /// The audit directory (segments and the legacy log).
    pub dir: PathBuf,
    /// The audit public key (DER SubjectPublicKeyInfo) that verifies the digests.
    pub public_key: PathBuf,
}

/// The console's settings.
#[derive(Clone, Debug)]
pub struct ConsoleConfig {
    /// The console listener (`--console-listen`).
    pub listen: SocketAddr,
    /// The audit log to show (none: the audit view says there is none).
    pub audit: Option<AuditPaths>,
    pub timeouts: Timeouts,
    pub sign_in_limit: SignInLimit,
    /// Keys per page of the keys list.
    pub page_size: u32,
    /// Keys a filtered search examines per page before it offers to continue.
    pub scan_budget: u32,
}

impl ConsoleConfig {
    /// Defaults for `listen`.
    pub fn new(listen: SocketAddr) -> ConsoleConfig {
        ConsoleConfig {
            listen,
            audit: None,
            timeouts: Timeouts::default(),
            sign_in_limit: SignInLimit::default(),
            page_size: 50,
            scan_budget: 200,
        }
    }
}
