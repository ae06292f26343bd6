//! What the transport and authentication layers know about one request, handed to the protocol.

use keyplane::{Caller, RequestOrigin};

/// One authenticated request's identity and origin.
#[derive(Clone, Debug)]
pub struct RequestContext {
    /// The id the client is answered with (`x-amzn-RequestId`) and the audit record carries.
    pub request_id: String,
    /// The principal the request runs as (from its credential).
    pub caller: Caller,
    /// Request id, source address, user agent, access key id, TLS details, for the audit record.
    pub origin: RequestOrigin,
}
