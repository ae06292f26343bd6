//! AWS JSON 1.1: `X-Amz-Target: TrentService.<Operation>` dispatch, model-shaped JSON in and out,
//! errors as `{"__type": ..., "message": ...}` with the service's HTTP status.
//!
//! A request's path: the target names an operation of [`dispatch::OPERATIONS`] (else
//! UnknownOperationException, or UnsupportedOperationException for an operation of the model
//! keyplane does not serve); [`json::Input`] reads the body against the model (wrong JSON types
//! are SerializationException, missing required members the engine's ValidationException); the
//! operation's handler runs with an engine handle bound to the request's caller and origin — on
//! a blocking thread when the call may block (the control plane, or any call while the audit log
//! is `Synced`), else on the async worker ([`dispatch::Operation::runs_inline`]) — (so its audit record carries the request id the client sees), or joins a
//! coalesced batch ([`crate::coalesce`]); the answer is written by [`json::Out`].
//!
//! Where plaintext lives: a request's decoded blobs in [`json::Input`]'s zeroizing buffers (the
//! base64 text in the parsed JSON is zeroed once decoded); the engine's plaintext results in its
//! `SecretBytes` (zeroed on drop); the base64 of a plaintext answer only in [`Reply::body`],
//! written in place without reallocation, which the transport zeroes after sending. The request
//! body itself is the transport's buffer.

mod aliases;
mod asymmetric;
mod custom_key_stores;
pub(crate) mod dataplane;
pub mod dispatch;
pub mod errors;
mod grants;
mod import;
pub mod json;
mod keys;
mod mac;
mod members;
mod policies;
pub(crate) mod reply;
mod rotation;
mod tags;

use std::sync::Arc;

use keyplane::Engine;

use crate::coalesce::{CoalesceConfig, Coalescer};
use crate::context::RequestContext;
use crate::metrics::Metrics;
use json::Input;

pub use reply::{Fault, Reply};

/// The JSON 1.1 content type every answer carries.
pub const CONTENT_TYPE: &str = "application/x-amz-json-1.1";

/// The `X-Amz-Target` prefix of every operation.
pub const TARGET_PREFIX: &str = "TrentService.";

/// The served operation an `X-Amz-Target` header names; else the fault to answer (with the
/// operation's name for one of the model's operations that keyplane does not serve).
pub fn resolve(
    target: Option<&str>,
) -> Result<&'static dispatch::Operation, (Fault, Option<&'static str>)> {
    let Some(name) = target.and_then(|t| t.strip_prefix(TARGET_PREFIX)) else {
        return Err((Fault::UnknownOperation, None));
    };
    if let Some(operation) = dispatch::find(name) {
        return Ok(operation);
    }
    Err(match dispatch::not_served(name) {
        Some((name, why)) => (
            Fault::Engine(keyplane::Error::UnsupportedOperation(format!(
                "{name} is not supported by keyplane: {why}"
            ))),
            Some(name),
        ),
        None => (Fault::UnknownOperation, None),
    })
}

/// Answers requests against one engine.
#[derive(Debug, Clone)]
pub struct Service {
    engine: Engine,
    coalesce: Arc<CoalesceConfig>,
    metrics: Arc<Metrics>,
    coalescer: Arc<Coalescer>,
}

impl Service {
    /// A service over `engine` (the handle whose caller is replaced per request).
    pub fn new(engine: Engine, coalesce: CoalesceConfig, metrics: Arc<Metrics>) -> Service {
        let coalescer = Arc::new(Coalescer::new(coalesce.clone(), Arc::clone(&metrics)));
        Service {
            engine,
            coalesce: Arc::new(coalesce),
            metrics,
            coalescer,
        }
    }

    /// The engine this service answers with.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The coalescing settings.
    pub fn coalesce_config(&self) -> &CoalesceConfig {
        &self.coalesce
    }

    /// Engine batch calls the coalescer made, and the requests they answered, so far.
    pub fn coalesce_counts(&self) -> (u64, u64) {
        self.coalescer.counts()
    }

    /// The metrics this service reports coalesced batches to.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// Answers one request: `target` is the `X-Amz-Target` header (None when absent), `body` the
    /// request body, `ctx` the authenticated caller and origin.
    pub async fn handle(&self, ctx: &RequestContext, target: Option<&str>, body: &[u8]) -> Reply {
        let operation = match resolve(target) {
            Ok(operation) => operation,
            Err((fault, name)) => return fault.reply(name),
        };
        let input = match Input::parse(operation.name, body) {
            Ok(input) => input,
            Err(fault) => return fault.reply(Some(operation.name)),
        };
        let mut engine = self
            .engine
            .for_caller(ctx.caller.clone())
            .with_origin(ctx.origin.clone());
        let dry_run = input.bool("DryRun") == Some(true);
        if dry_run {
            engine = engine.dry_run();
        }
        let result = if !dry_run && self.coalescer.takes(&input) {
            self.coalescer
                .submit(self.engine.clone(), ctx, operation, input)
                .await
        } else if operation.runs_inline(&engine) {
            // CPU work only (no fsync wait): a hop to the blocking pool would cost more.
            (operation.handler)(&engine, &input)
        } else {
            let handler = operation.handler;
            match tokio::task::spawn_blocking(move || handler(&engine, &input)).await {
                Ok(result) => result,
                Err(_) => Err(Fault::Engine(keyplane::Error::Internal(
                    "the request's worker stopped".into(),
                ))),
            }
        };
        match result {
            Ok(out) => Reply {
                status: 200,
                body: out.finish(),
                operation: Some(operation.name),
                error_code: None,
            },
            Err(fault) => fault.reply(Some(operation.name)),
        }
    }
}
