//! `keyplane serve`: the service's own wire protocol over the engine, so every AWS SDK, the aws CLI
//! and the AWS Encryption SDK use keyplane unchanged.
//!
//! A thin adapter: nothing here decides what a key may do. The layers, each its own module:
//!
//! - [`http`]: listeners (TLS by default with rustls on AWS-LC; plain HTTP only on loopback and only
//!   when asked), HTTP/1.1 keep-alive and HTTP/2, limits, `GET /health`, the admin listener with
//!   Prometheus metrics, graceful shutdown.
//! - [`auth`]: SigV4 verification of every request against credentials kept in the store, sealed
//!   under the root key; a request runs as its credential's principal.
//! - [`protocol`]: AWS JSON 1.1 — `X-Amz-Target: TrentService.<Operation>`, one dispatch table
//!   checked against the service model, model-shaped JSON in and out, the service's errors.
//! - [`console`]: the web console for key administrators (its own listener, sessions, CSRF,
//!   server-rendered pages over the same service calls as the API).
//! - [`xks`]: `keyplane xks-proxy`, the external key store proxy API over keyplane's own keys
//!   (its own listener; see docs/xks.md).
//! - [`coalesce`]: concurrent small data-plane requests of one principal joined into the engine's
//!   batch calls within a short window.
//!
//! A request's path: [`http`] reads a bounded body, [`auth`] turns its signature into an
//! [`auth::Identity`], and [`protocol::Service::handle`] answers it with a [`protocol::Reply`] as
//! that identity's [`keyplane::Caller`] with the request's [`keyplane::RequestOrigin`].
#![deny(unsafe_code)]
#![warn(missing_debug_implementations)]

pub mod auth;
pub mod coalesce;
pub mod console;
pub mod context;
pub mod http;
pub mod metrics;
pub mod protocol;
pub mod xks;

pub use context::RequestContext;
pub use metrics::Metrics;
