//! AWS JSON 1.1: `X-Amz-Target: TrentService.<Operation>` dispatch, model-shaped JSON in and out,
//! errors as `{"__type": ..., "message": ...}` with the service's HTTP status.
//!
//! (Skeleton: the protocol helper fills this module. The interface below is fixed.)

use std::sync::Arc;

use keyplane::Engine;

use crate::coalesce::CoalesceConfig;
use crate::context::RequestContext;
use crate::metrics::Metrics;

/// The JSON 1.1 content type every answer carries.
pub const CONTENT_TYPE: &str = "application/x-amz-json-1.1";

/// One answer: HTTP status and JSON body, with what metrics need.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub body: Vec<u8>,
    /// The operation, when the target named a known one.
    pub operation: Option<&'static str>,
    /// The `__type` of an error answer.
    pub error_code: Option<&'static str>,
}

/// Answers requests against one engine.
#[derive(Debug, Clone)]
pub struct Service {
    engine: Engine,
    #[allow(dead_code)]
    coalesce: Arc<CoalesceConfig>,
    #[allow(dead_code)]
    metrics: Arc<Metrics>,
}

impl Service {
    /// A service over `engine` (the handle whose caller is replaced per request).
    pub fn new(engine: Engine, coalesce: CoalesceConfig, metrics: Arc<Metrics>) -> Service {
        Service {
            engine,
            coalesce: Arc::new(coalesce),
            metrics,
        }
    }

    /// The engine this service answers with.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Answers one request: `target` is the `X-Amz-Target` header (None when absent), `body` the
    /// request body, `ctx` the authenticated caller and origin.
    pub async fn handle(&self, ctx: &RequestContext, target: Option<&str>, body: &[u8]) -> Reply {
        let _ = (ctx, target, body);
        Reply {
            status: 400,
            body: br#"{"__type":"UnknownOperationException"}"#.to_vec(),
            operation: None,
            error_code: Some("UnknownOperationException"),
        }
    }
}
