//! Coalescing: concurrent small data-plane requests of one principal joined into one engine batch
//! call within a short window, with a bounded number of items.
//!
//! The first request of a batch opens it; requests of the same operation from the same caller (the whole [`Caller`]: principal, tags and source address, so that no
//! policy condition is evaluated with another request's facts) join it until it holds
//! `max_items`, or until a yield of the async worker passes with nobody joining (so a lone request
//! runs at once and batching happens only under concurrency), or at the latest when the window
//! ends ([`Coalescer::close_when_idle`]). The batch then runs as one engine batch call (on a
//! blocking thread when the engine's calls may block, else on the worker), with each item's [`keyplane::RequestOrigin`] (`Engine::with_item_origins`), so the audit record lists
//! every request it answered; each waiter gets its own result, and an item that fails fails
//! alone. A batch of one runs as the plain single call. Requests of different callers never share
//! a batch. DryRun requests, and requests with options the batch call lacks, are not taken and run
//! alone ([`Coalescer::takes`]).
//!
//! Taken: Encrypt under SYMMETRIC_DEFAULT, Decrypt and GenerateDataKey (without `Recipient`),
//! through batch calls that answer each item as the single call would.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use keyplane::{Caller, EncryptionAlgorithm, EncryptionContext, Engine, RequestOrigin};
use tokio::sync::oneshot;

use crate::context::RequestContext;
use crate::metrics::Metrics;
use crate::protocol::dataplane;
use crate::protocol::dispatch::Operation;
use crate::protocol::json::{Input, Out};
use crate::protocol::reply::Fault;

/// Coalescing settings (`keyplane serve --coalesce-window-us N --coalesce-max-items N`).
#[derive(Clone, Debug)]
pub struct CoalesceConfig {
    /// Off: every request is its own engine call.
    pub enabled: bool,
    /// The longest the first request of a batch waits for others (it runs sooner as soon as a
    /// yield of the worker passes with nobody joining).
    pub window: Duration,
    /// Most requests in one batch.
    pub max_items: usize,
    /// Run a batch as soon as a yield of the worker passes with nobody joining it, so that a lone
    /// request is not delayed (the default). Off: a batch waits its whole window unless it fills
    /// up, which makes batch sizes deterministic (tests that fill batches on purpose).
    pub run_when_idle: bool,
}

impl Default for CoalesceConfig {
    fn default() -> Self {
        CoalesceConfig {
            enabled: true,
            window: Duration::from_micros(200),
            max_items: 64,
            run_when_idle: true,
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

/// Whether two callers are the same principal with the same attributes (principal tags, source
/// address, ...), so that every policy condition sees the same facts for both. (`Caller`'s own
/// equality also compares a per-instance id, which differs between requests.)
fn same_caller(a: &Caller, b: &Caller) -> bool {
    a.principal() == b.principal() && a.attributes() == b.attributes()
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
            "Decrypt" | "GenerateDataKey" => !input.has("Recipient"),
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
            tokio::spawn(async move { this.close_when_idle(id).await });
        }
        answer.await.unwrap_or_else(|_| {
            Err(Fault::Engine(keyplane::Error::Internal(
                "the request's batch stopped".into(),
            )))
        })
    }

    /// Runs the batch `id` once no more requests are joining it: after each yield of this task
    /// (which lets the worker run every other ready task and poll the network once), the batch
    /// runs if nobody joined since the last look, or when the window has passed since it opened.
    /// So a lone request runs at once, never sleeping on a timer (tokio's has 1 ms resolution),
    /// and requests are batched only while others are arriving; `window` bounds the wait.
    async fn close_when_idle(&self, id: u64) {
        let deadline = Instant::now() + self.config.window;
        let mut seen = 1;
        loop {
            tokio::task::yield_now().await;
            if !self.config.run_when_idle {
                tokio::time::sleep_until(deadline.into()).await;
                break;
            }
            match self.size(id) {
                // Filled up and ran already.
                None => return,
                Some(n) if n > seen && Instant::now() < deadline => seen = n,
                Some(_) => break,
            }
        }
        if let Some(batch) = self.take(id) {
            self.run(batch);
        }
    }

    /// How many requests the open batch `id` holds (`None`: it is no longer open).
    fn size(&self, id: u64) -> Option<usize> {
        let open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        open.iter().find(|b| b.id == id).map(|b| b.items.len())
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
        let found = open.iter().position(|b| {
            std::ptr::eq(b.operation, operation) && same_caller(&b.caller, &ctx.caller)
        });
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

    /// Runs a batch and answers each of its waiters: on a blocking thread when the call may
    /// block (a `Synced` audit log), else here on the worker.
    fn run(&self, batch: Open) {
        self.engine_calls.fetch_add(1, Ordering::Relaxed);
        self.items
            .fetch_add(batch.items.len() as u64, Ordering::Relaxed);
        self.metrics.batch(batch.operation.name, batch.items.len());
        if batch.operation.runs_inline(&batch.engine) {
            run_batch(batch);
        } else {
            tokio::task::spawn_blocking(move || run_batch(batch));
        }
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
    let contexts: Vec<Option<EncryptionContext>> = batch
        .items
        .iter()
        .map(|i| i.input.context("EncryptionContext"))
        .collect();
    let answers = match batch.operation.name {
        "Encrypt" => coalesced(
            &batch.items,
            &contexts,
            dataplane::encrypt_request,
            |requests, origins| engine.with_item_origins(origins).encrypt_batch(requests),
            |blob| {
                let id = keyplane::ciphertext::key_id_of(&blob)?;
                Ok(dataplane::encrypted(
                    &blob,
                    &engine.key_arn(&id),
                    EncryptionAlgorithm::SymmetricDefault,
                ))
            },
        ),
        "Decrypt" => coalesced(
            &batch.items,
            &contexts,
            dataplane::decrypt_request,
            |requests, origins| {
                engine
                    .with_item_origins(origins)
                    .decrypt_batch_responses(requests)
            },
            |r| Ok(dataplane::decrypted(&r)),
        ),
        "GenerateDataKey" => coalesced(
            &batch.items,
            &contexts,
            dataplane::data_key_request,
            |requests, origins| {
                engine
                    .with_item_origins(origins)
                    .generate_data_key_batch_responses(requests)
            },
            |r| Ok(dataplane::data_key(&r)),
        ),
        _ => batch
            .items
            .iter()
            .map(|item| {
                (batch.operation.handler)(&engine.with_origin(item.origin.clone()), &item.input)
            })
            .collect(),
    };
    for (item, answer) in batch.items.into_iter().zip(answers) {
        let _ = item.reply.send(answer);
    }
}

/// Runs `items` (with their encryption contexts) as one batch call: `build` makes each item's engine request (an item whose
/// request cannot be built answers its own error), `run` makes the call with the items' origins,
/// and `answer` writes each success. One answer per item, in order.
fn coalesced<'a, R, T>(
    items: &'a [Item],
    contexts: &'a [Option<EncryptionContext>],
    build: impl Fn(&'a Input, Option<&'a EncryptionContext>) -> Result<R, Fault>,
    run: impl FnOnce(&[R], Vec<RequestOrigin>) -> Vec<keyplane::Result<T>>,
    answer: impl Fn(T) -> keyplane::Result<Out>,
) -> Vec<Answer> {
    let mut answers: Vec<Option<Answer>> = Vec::with_capacity(items.len());
    let mut requests = Vec::with_capacity(items.len());
    let mut origins = Vec::with_capacity(items.len());
    let mut in_batch = Vec::with_capacity(items.len());
    for (i, (item, context)) in items.iter().zip(contexts).enumerate() {
        match build(&item.input, context.as_ref()) {
            Ok(request) => {
                requests.push(request);
                origins.push(item.origin.clone());
                in_batch.push(i);
                answers.push(None);
            }
            Err(fault) => answers.push(Some(Err(fault))),
        }
    }
    let results = if requests.is_empty() {
        Vec::new()
    } else {
        run(&requests, origins)
    };
    for (i, result) in in_batch.into_iter().zip(results) {
        answers[i] = Some(result.and_then(&answer).map_err(Fault::from));
    }
    answers
        .into_iter()
        .map(|a| {
            a.unwrap_or_else(|| {
                Err(Fault::Engine(keyplane::Error::Internal(
                    "the batch gave no result for this request".into(),
                )))
            })
        })
        .collect()
}
