//! The external key store (XKS) proxy API, version 1, as published in the "External Key Store
//! Proxy API Specification" (CC BY-SA 4.0; sections cited by name in each module).
//!
//! - [`api`]: the four operations' request and response bodies, the URI layout, the size limits.
//! - [`cdiv`]: the ciphertext data integrity value (Appendix C) and the AES-GCM associated data a
//!   proxy builds from `additionalAuthenticatedData` and `ciphertextMetadata`.
//! - [`sigv4`]: SigV4 for the `kms-xks-proxy` service (Appendix A): the client's signer and the
//!   proxy's verifier.
//! - [`error`]: every failure, and the service exception each becomes.
//! - [`client`]: [`XksClient`], the blocking HTTPS client of one proxy.
//! - [`backend`]: [`XksBackend`], the engine's custom key store backend for EXTERNAL_KEY_STORE.
//!
//! `keyplane xks-proxy` (the server side, over keyplane's own keys) lives in the server crate and
//! uses the same types.
#![deny(unsafe_code)]
#![warn(missing_debug_implementations)]

pub mod api;
pub mod backend;
pub mod cdiv;
pub mod client;
pub mod error;
pub mod sigv4;

pub use backend::{XksBackend, XksBackendConfig, XksConnection};
pub use client::{ConfigError, TrustAnchors, XksCiphertext, XksClient, XksClientConfig};
pub use error::{KmsCallKind, KmsException, XksError, XksErrorKind};
pub use sigv4::Credential;
