//! The console of one server and one request to it.

use std::net::SocketAddr;
use std::sync::Arc;

use http::{header, HeaderMap, Method};

use super::config::{ConsoleConfig, COOKIE_PLAIN, COOKIE_TLS};
use super::session::{self, Sessions};
use crate::auth::CredentialStore;
use crate::metrics::Metrics;
use crate::protocol::Service;

/// The console of one server.
#[derive(Debug)]
pub(crate) struct Console {
    pub(crate) config: ConsoleConfig,
    pub(super) service: Service,
    pub(super) credentials: CredentialStore,
    pub(super) metrics: Arc<Metrics>,
    /// Served over TLS: the cookie is `__Host-` and Secure, the origin `https://`.
    pub(super) tls: bool,
    pub(super) sessions: Sessions,
    pub(super) limiter: session::Limiter,
}

impl Console {
    pub(crate) fn new(
        config: ConsoleConfig,
        service: Service,
        credentials: CredentialStore,
        metrics: Arc<Metrics>,
        tls: bool,
    ) -> Console {
        Console {
            sessions: Sessions::new(config.timeouts),
            limiter: session::Limiter::new(config.sign_in_limit),
            config,
            service,
            credentials,
            metrics,
            tls,
        }
    }

    pub(super) fn cookie_name(&self) -> &'static str {
        if self.tls {
            COOKIE_TLS
        } else {
            COOKIE_PLAIN
        }
    }

    /// The account's root principal, who may read the audit view.
    pub(super) fn account_root(&self) -> String {
        format!(
            "arn:aws:iam::{}:root",
            self.service.engine().config().account_id
        )
    }
}

/// One request to the console, its body read.
#[derive(Debug)]
pub(crate) struct Req {
    pub method: Method,
    pub path: String,
    pub query: Vec<(String, String)>,
    pub headers: HeaderMap,
    /// The `Host` header, or HTTP/2's `:authority`.
    pub host: Option<String>,
    pub form: Vec<(String, String)>,
    pub peer: SocketAddr,
    pub tls_version: Option<String>,
    pub cipher_suite: Option<String>,
}

impl Req {
    /// A query parameter ("" when absent).
    pub fn q(&self, name: &str) -> &str {
        first(&self.query, name)
    }

    /// A form field ("" when absent).
    pub fn f(&self, name: &str) -> &str {
        first(&self.form, name)
    }

    /// Every value of a repeated form field.
    pub fn f_all(&self, name: &str) -> Vec<&str> {
        self.form
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    pub(super) fn header(&self, name: impl header::AsHeaderName) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub(super) fn cookie(&self, name: &str) -> Option<&str> {
        self.headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|pair| pair.trim().split_once('='))
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v)
    }
}

fn first<'a>(pairs: &'a [(String, String)], name: &str) -> &'a str {
    pairs
        .iter()
        .find(|(n, _)| n == name)
        .map_or("", |(_, v)| v.as_str())
}
