//! Coalescing: concurrent small data-plane requests of one principal joined into one engine batch
//! call within a short window, with a bounded number of items.
//!
//! The first request of a batch opens it and starts the window; requests of the same operation
//! from the same caller (the whole [`Caller`]: principal, tags and source address, so that no
//! policy condition is evaluated with another request's facts) join it until the window ends or
//! it holds `max_items`. The batch then runs as one engine batch call on a blocking thread, with
//! each item's [`keyplane::RequestOrigin`] (`Engine::with_item_origins`), so the audit record lists
//! every request it answered; each waiter gets its own result, and an item that fails fails
//! alone. A batch of one runs as the plain single call. Requests of different callers never share
//! a batch. DryRun requests, and requests with options the batch call lacks, are not taken and run
//! alone ([`Coalescer::takes`]).
//!
//! Taken today: Encrypt under SYMMETRIC_DEFAULT.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use keyplane::{Caller, EncryptionAlgorithm, Engine, RequestOrigin};
use tokio::sync::oneshot;

use crate::context::RequestContext;
use crate::metrics::Metrics;
use crate::protocol::dataplane;
use crate::protocol::dispatch::Operation;
use crate::protocol::json::{Input, Out};
use crate::protocol::Fault;

/// Coalescing settings (`keyplane serve --coalesce-window-us N --coalesce-max-items N`).
#[derive(Clone, Debug)]
pub struct CoalesceConfig {
    /// Off: every request is its own engine call.
    pub enabled: bool,
    /// How long the first request of a batch waits for others.
    pub window: Duration,
    /// Most requests in one batch.
    pub max_items: usize,
}

impl Default for CoalesceConfig {
    fn default() -> Self {
        CoalesceConfig {
            enabled: true,
            window: Duration::from_micros(200),
            max_items: 64,
        }
    }
}

type Answer = Result<Out, Fault>;

struct Item {
    input: Input,
    origin: RequestOrigin,
    reply: oneshot::Sender<Answer>,
}

/// A batch being filled.
struct Open {
    id: u64,
    operation: &'static Operation,
    caller: Caller,
    engine: Engine,
    items: Vec<Item>,
}

/// Joins concurrent requests into engine batch calls.
pub struct Coalescer {
    config: CoalesceConfig,
    metrics: Arc<Metrics>,
    open: Mutex<Vec<Open>>,
    next_id: AtomicU64,
    engine_calls: AtomicU64,
    items: AtomicU64,
}

impl std::fmt::Debug for Coalescer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Coalescer")
            .field("config", &self.config)
            .field("engine_calls", &self.engine_calls.load(Ordering::Relaxed))
            .field("items", &self.items.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl Coalescer {
    /// A coalescer with these settings, reporting batch sizes to `metrics`.
    pub fn new(config: CoalesceConfig, metrics: Arc<Metrics>) -> Coalescer {
        Coalescer {
            config,
            metrics,
            open: Mutex::new(Vec::new()),
            next_id: AtomicU64::new(0),
            engine_calls: AtomicU64::new(0),
            items: AtomicU64::new(0),
        }
    }

    /// Engine calls made and requests answered through this coalescer so far.
    pub fn counts(&self) -> (u64, u64) {
        (
            self.engine_calls.load(Ordering::Relaxed),
            self.items.load(Ordering::Relaxed),
        )
    }

    /// Whether this request may join a batch: coalescing is on, and the batch call can answer
    /// it exactly as the single call would (the caller checks DryRun).
    pub fn takes(&self, input: &Input) -> bool {
        if !self.config.enabled || self.config.max_items < 2 {
            return false;
        }
        match input.operation() {
            "Encrypt" => input
                .str("EncryptionAlgorithm")
                .is_none_or(|a| a == EncryptionAlgorithm::SymmetricDefault.as_str()),
            _ => false,
        }
    }

    /// Answers `input` as part of a batch of `ctx.caller`'s concurrent requests for `operation`,
    /// on `engine` (the service's base handle; the caller and origins are bound per batch).
    pub async fn submit(
        self: &Arc<Self>,
        engine: Engine,
        ctx: &RequestContext,
        operation: &'static Operation,
        input: Input,
    ) -> Answer {
        let (reply, answer) = oneshot::channel();
        let item = Item {
            input,
            origin: ctx.origin.clone(),
            reply,
        };
        let (full, opened) = self.join(engine, ctx, operation, item);
        if let Some(batch) = full {
            self.run(batch);
        }
        if let Some(id) = opened {
            let this = Arc::clone(self);
            tokio::spawn(async move {
                tokio::time::sleep(this.config.window).await;
                if let Some(batch) = this.take(id) {
                    this.run(batch);
                }
            });
        }
        answer.await.unwrap_or_else(|_| {
            Err(Fault::Engine(keyplane::Error::Internal(
                "the request's batch stopped".into(),
            )))
        })
    }

    /// Adds `item` to its open batch, or opens one. Returns a batch that is now full, and the id
    /// of a batch just opened (whose window the caller starts).
    fn join(
        &self,
        engine: Engine,
        ctx: &RequestContext,
        operation: &'static Operation,
        item: Item,
    ) -> (Option<Open>, Option<u64>) {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let found = open
            .iter()
            .position(|b| std::ptr::eq(b.operation, operation) && b.caller == ctx.caller);
        match found {
            Some(i) => {
                open[i].items.push(item);
                if open[i].items.len() >= self.config.max_items {
                    (Some(open.swap_remove(i)), None)
                } else {
                    (None, None)
                }
            }
            None => {
                let id = self.next_id.fetch_add(1, Ordering::Relaxed);
                open.push(Open {
                    id,
                    operation,
                    caller: ctx.caller.clone(),
                    engine,
                    items: vec![item],
                });
                (None, Some(id))
            }
        }
    }

    /// Takes the batch `id` when its window ends (unless it filled up and ran already).
    fn take(&self, id: u64) -> Option<Open> {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let i = open.iter().position(|b| b.id == id)?;
        Some(open.swap_remove(i))
    }

    /// Runs a batch on a blocking thread and answers each of its waiters.
    fn run(&self, batch: Open) {
        self.engine_calls.fetch_add(1, Ordering::Relaxed);
        self.items
            .fetch_add(batch.items.len() as u64, Ordering::Relaxed);
        self.metrics.batch(batch.operation.name, batch.items.len());
        tokio::task::spawn_blocking(move || run_batch(batch));
    }
}

fn run_batch(mut batch: Open) {
    let engine = batch.engine.for_caller(batch.caller.clone());
    if batch.items.len() == 1 {
        if let Some(item) = batch.items.pop() {
            let engine = engine.with_origin(item.origin);
            let answer = (batch.operation.handler)(&engine, &item.input);
            let _ = item.reply.send(answer);
        }
        return;
    }
    match batch.operation.name {
        "Encrypt" => encrypt_batch(&engine, batch.items),
        _ => {
            for item in batch.items {
                let engine = engine.with_origin(item.origin);
                let answer = (batch.operation.handler)(&engine, &item.input);
                let _ = item.reply.send(answer);
            }
        }
    }
}

/// Encrypt as one batch call; items whose request cannot be built answer alone.
fn encrypt_batch(engine: &Engine, items: Vec<Item>) {
    let contexts: Vec<_> = items
        .iter()
        .map(|i| i.input.context("EncryptionContext"))
        .collect();
    let mut requests = Vec::with_capacity(items.len());
    let mut origins = Vec::with_capacity(items.len());
    let mut answers: Vec<Option<Answer>> = Vec::with_capacity(items.len());
    let mut in_batch = Vec::with_capacity(items.len());
    for (i, (item, context)) in items.iter().zip(&contexts).enumerate() {
        match dataplane::encrypt_request(&item.input, context.as_ref()) {
            Ok(request) => {
                requests.push(request);
                origins.push(item.origin.clone());
                in_batch.push(i);
                answers.push(None);
            }
            Err(fault) => answers.push(Some(Err(fault))),
        }
    }
    let results = engine.with_item_origins(origins).encrypt_batch(&requests);
    drop(requests);
    for (i, result) in in_batch.into_iter().zip(results) {
        answers[i] = Some(match result {
            Ok(blob) => keyplane::ciphertext::key_id_of(&blob)
                .map(|id| {
                    dataplane::encrypted(
                        &blob,
                        &engine.key_arn(&id),
                        EncryptionAlgorithm::SymmetricDefault,
                    )
                })
                .map_err(Fault::from),
            Err(e) => Err(Fault::from(e)),
        });
    }
    for (item, answer) in items.into_iter().zip(answers) {
        let answer = answer.unwrap_or_else(|| {
            Err(Fault::Engine(keyplane::Error::Internal(
                "the batch gave no result for this request".into(),
            )))
        });
        let _ = item.reply.send(answer);
    }
}
