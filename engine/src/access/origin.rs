//! Where a request came from, as a network front end knows it.
//!
//! An embedding program has no network origin; `keyplane serve` does. It binds one
//! [`RequestOrigin`] per request with [`crate::Engine::with_origin`] (or one per item of a
//! coalesced batch with [`crate::Engine::with_item_origins`]), and the request's audit record
//! carries what the service's trail records carry for network calls: the request id the client
//! was answered with, the source address, the user agent, the access key id the request was signed
//! with, and the TLS version.

/// The network facts of one request. Every field is optional; absent ones are not recorded.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RequestOrigin {
    /// The id the client was answered with (`x-amzn-RequestId`), recorded as `requestID`.
    pub request_id: Option<String>,
    /// The client's address (`sourceIPAddress`).
    pub source_ip: Option<String>,
    /// The client's `User-Agent` (`userAgent`).
    pub user_agent: Option<String>,
    /// The access key id that signed the request (`userIdentity.accessKeyId`).
    pub access_key_id: Option<String>,
    /// The TLS version of the connection (`tlsDetails.tlsVersion`), `TLSv1.3` say.
    pub tls_version: Option<String>,
    /// The TLS cipher suite of the connection (`tlsDetails.cipherSuite`).
    pub cipher_suite: Option<String>,
    /// The `Host` header the client sent (`tlsDetails.clientProvidedHostHeader`).
    pub host: Option<String>,
}
