//! The engine: configuration, start-up from a key store, and the data-plane entry points.
//! Control-plane operations live in [`crate::control`], one module per family.

use std::sync::{Arc, Weak};
use std::time::Duration;

use zeroize::Zeroize;

use crate::access::quota::Limiter;
use crate::access::{Action, Caller};
use crate::audit::{AuditConfig, AuditLog};
use crate::call::audit::Audit;
use crate::call::params;
use crate::clock::{Clock, SystemClock};
use crate::control::working_copy::ControlState;
use crate::dataplane;
use crate::dataplane::plane::DataPlane;
use crate::error::{Error, Result};
use crate::key::ArnScope;
use crate::locked_memory::LockPolicy;
use crate::locked_memory::LockedBytes;
use crate::secret::SecretBytes;
use crate::store::{KeyStore, MemoryKeyStore};
use crate::validation::{self, Validate};

/// Settings that are fixed for an engine's lifetime.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Region in key ARNs.
    pub region: String,
    /// 12-digit account id in key ARNs.
    pub account_id: String,
    /// Threads a batch call may use, the calling thread included; 0 means one per available core.
    pub worker_threads: usize,
    /// What to do when key memory cannot be locked.
    pub lock_policy: LockPolicy,
    /// Messages one derived data-plane key encrypts before a new one is derived (at most, and by
    /// default, 2^32; lower only to test the mechanism).
    pub messages_per_derived_key: u64,
    /// Most plaintext bytes Encrypt takes and Decrypt returns: 4096 by default, as the service;
    /// up to 1 MiB for bulk use (such ciphertexts do not fit the service's 6144-byte limit).
    pub max_plaintext_bytes: usize,
    /// Most keys the engine holds (the service's per-account quota analogue).
    pub max_keys: usize,
    /// Request-rate quotas per operation family (off by default).
    pub rate_quotas: crate::access::RateQuotas,
    /// If set, a background thread runs due deletions and rotations this often, and follows
    /// changes other engines made to a shared store (at once when the store pushes wake-ups).
    pub scheduler_interval: Option<Duration>,
    /// If set, the staleness bound (fail closed): once this node's last successful follow of the
    /// store is older than this, data-plane calls are refused (KeyUnavailableException) until
    /// the store answers again. Needs a `scheduler_interval` shorter than it. Off by default.
    pub max_staleness: Option<Duration>,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            region: "us-east-1".into(),
            account_id: "111122223333".into(),
            worker_threads: 0,
            lock_policy: LockPolicy::Require,
            messages_per_derived_key: dataplane::MAX_MESSAGES_PER_DERIVED_KEY,
            max_plaintext_bytes: dataplane::DEFAULT_MAX_PLAINTEXT,
            max_keys: 100_000,
            rate_quotas: crate::access::RateQuotas::off(),
            scheduler_interval: None,
            max_staleness: None,
        }
    }
}

/// Builds an [`Engine`].
pub struct EngineBuilder {
    config: EngineConfig,
    audit: Option<(AuditConfig, LockedBytes)>,
    store: Option<Arc<dyn KeyStore>>,
    region_stores: std::collections::BTreeMap<String, Arc<dyn KeyStore>>,
    clock: Option<Arc<dyn Clock>>,
    custom_key_store_backends: std::collections::BTreeMap<
        crate::custom_key_store::CustomKeyStoreType,
        Arc<dyn crate::custom_key_store::CustomKeyStoreBackend>,
    >,
}

impl EngineBuilder {
    /// The adapter that backs custom key stores of `kind` (`keyplane_pkcs11` for AWS_CLOUDHSM).
    /// Without one, CreateCustomKeyStore of that kind is UnsupportedOperationException. At build,
    /// every store of that kind left connected is connected again.
    pub fn custom_key_store_backend(
        mut self,
        kind: crate::custom_key_store::CustomKeyStoreType,
        backend: Arc<dyn crate::custom_key_store::CustomKeyStoreBackend>,
    ) -> Self {
        self.custom_key_store_backends.insert(kind, backend);
        self
    }
    /// Region in key ARNs (default `us-east-1`).
    pub fn region(mut self, region: &str) -> Self {
        self.config.region = region.into();
        self
    }
    /// Account id in key ARNs (default `111122223333`).
    pub fn account_id(mut self, account: &str) -> Self {
        self.config.account_id = account.into();
        self
    }
    /// Threads a batch call may use, the calling thread included, and the size of the envelope
    /// streams' pool (0: one per core).
    pub fn worker_threads(mut self, threads: usize) -> Self {
        self.config.worker_threads = threads;
        self
    }
    /// Policy when key memory cannot be locked.
    pub fn lock_policy(mut self, policy: LockPolicy) -> Self {
        self.config.lock_policy = policy;
        self
    }
    /// Messages per derived key (capped at 2^32).
    pub fn messages_per_derived_key(mut self, limit: u64) -> Self {
        self.config.messages_per_derived_key = limit;
        self
    }
    /// Largest plaintext (4 KiB to 1 MiB; default 4096).
    pub fn max_plaintext_bytes(mut self, max: usize) -> Self {
        self.config.max_plaintext_bytes = max;
        self
    }
    /// Request-rate quotas (see [`crate::RateQuotas`]).
    pub fn rate_quotas(mut self, quotas: crate::access::RateQuotas) -> Self {
        self.config.rate_quotas = quotas;
        self
    }
    /// Key quota.
    pub fn max_keys(mut self, max: usize) -> Self {
        self.config.max_keys = max;
        self
    }
    /// Runs due deletions and rotations in the background at this interval.
    pub fn scheduler_interval(mut self, every: Duration) -> Self {
        self.config.scheduler_interval = Some(every);
        self
    }
    /// The staleness bound (fail closed) for a node sharing its store with others: the data
    /// plane keeps serving the keys it holds while the store cannot be reached, until the last
    /// successful follow is older than `bound`; then it refuses data-plane calls
    /// (KeyUnavailableException, naming the reason) until the store answers again. This bounds
    /// how long a key disabled or deleted elsewhere can still be used here. Needs a
    /// [`EngineBuilder::scheduler_interval`] shorter than `bound` (the scheduler is what
    /// follows the store without control-plane traffic). Off by default.
    pub fn max_staleness(mut self, bound: Duration) -> Self {
        self.config.max_staleness = Some(bound);
        self
    }
    /// The key store (default: a new [`MemoryKeyStore`]).
    pub fn store(mut self, store: Arc<dyn KeyStore>) -> Self {
        self.store = Some(store);
        self
    }
    /// The key store of another Region (`docs/multi-region.md`): where ReplicateKey creates
    /// replicas of this Region's multi-Region keys, and where changes to their shared properties
    /// (material and versions, spec, usage, origin, rotation) are written in the same call. Each
    /// Region has its own store, read by the engines of that Region; one for each peer Region.
    pub fn region_store(mut self, region: &str, store: Arc<dyn KeyStore>) -> Self {
        self.region_stores.insert(region.to_owned(), store);
        self
    }
    /// The clock (default: the system clock).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = Some(clock);
        self
    }
    /// Records every request in a tamper-evident audit log at `config.path`, with digests signed
    /// by `signing_key_pkcs8` (an ECDSA P-256 PKCS#8 key in locked memory;
    /// `keyplane::audit::generate_signing_key` makes one). Without this, requests are not audited.
    pub fn audit(mut self, config: AuditConfig, signing_key_pkcs8: LockedBytes) -> Self {
        self.audit = Some((config, signing_key_pkcs8));
        self
    }
    /// The configuration as set so far (e.g. its lock policy, for secrets made for the engine).
    pub fn current_config(&self) -> &EngineConfig {
        &self.config
    }
    /// Replaces the whole configuration.
    pub fn config(mut self, config: EngineConfig) -> Self {
        self.config = config;
        self
    }

    /// Loads the store and starts the engine.
    pub fn build(self) -> Result<Engine> {
        crate::crypto::init();
        let config = self.config;
        let scope = ArnScope::new(&config.region, &config.account_id)?;
        if config.messages_per_derived_key == 0 {
            return Err(Error::Validation(
                "messages_per_derived_key must be at least 1".into(),
            ));
        }
        let plaintext_range =
            dataplane::DEFAULT_MAX_PLAINTEXT..=crate::ciphertext::MAX_PLAINTEXT_LIMIT;
        if !plaintext_range.contains(&config.max_plaintext_bytes) {
            return Err(Error::Validation(format!(
                "max_plaintext_bytes must be {} to {} (data keys and data key pairs must decrypt)",
                plaintext_range.start(),
                plaintext_range.end()
            )));
        }
        if let Some(bound) = config.max_staleness {
            match config.scheduler_interval {
                Some(every) if every < bound && !bound.is_zero() => {}
                _ => {
                    return Err(Error::Validation(
                        "max_staleness needs a scheduler_interval shorter than it: the scheduler \
                         is what confirms this node's view with the store"
                            .into(),
                    ))
                }
            }
        }
        let threads = match config.worker_threads {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        };
        let store = self
            .store
            .unwrap_or_else(|| Arc::new(MemoryKeyStore::new(config.lock_policy)));
        let clock = self.clock.unwrap_or_else(|| Arc::new(SystemClock));
        let data = DataPlane::new(
            scope.clone(),
            config.lock_policy,
            config.messages_per_derived_key,
            config.max_plaintext_bytes,
            threads,
            config.max_staleness,
        )?;
        for region in self.region_stores.keys() {
            ArnScope::new(region, &config.account_id)?;
            if *region == config.region {
                return Err(Error::Validation(format!(
                    "the store of Region {region} is this engine's own store; region_store names \
                     the stores of other Regions"
                )));
            }
        }
        let custom_key_stores =
            crate::custom_key_store::runtime::Runtime::new(self.custom_key_store_backends);
        let state =
            ControlState::load(store.as_ref(), None, config.lock_policy, &custom_key_stores)?;
        data.freshness.confirmed();
        let root = Caller::account_root(&config.account_id)?;
        let audit = match self.audit {
            Some((mut audit_config, signing_key)) => {
                let unavailable = |e: crate::audit::AuditError| {
                    Error::AuditUnavailable(format!("the audit log could not be opened: {e}"))
                };
                if audit_config.principal.is_none() {
                    audit_config.principal = Some(crate::call::audit::identity(&root));
                }
                if audit_config.region.is_empty() {
                    audit_config.region = config.region.clone();
                }
                let dir = audit_config.directory.then(|| audit_config.path.clone());
                let log = AuditLog::open(audit_config, &signing_key).map_err(unavailable)?;
                Some(Audit::new(log, clock.now(), dir).map_err(unavailable)?)
            }
            None => None,
        };
        let inner = Arc::new(Inner {
            audit,
            limiter: Limiter::new(config.rate_quotas),
            data,
            control: crate::control::control_lock::ControlLock::new(state),
            store,
            region_stores: self.region_stores,
            custom_key_stores,
            clock,
            scope,
            config,
            built_in: crate::fork::Birthplace::here(),
        });
        let mut engine = Engine {
            handles: None,
            inner,
            caller: Arc::new(root),
            dry_run: false,
            origins: None,
        };
        {
            let state = engine.control()?;
            engine.publish_everything(&state);
        }
        engine.reconnect_custom_key_stores()?;
        if let Some(every) = engine.inner.config.scheduler_interval {
            let (wake, woken) = crossbeam_channel::bounded::<()>(1);
            let notify = wake.clone();
            let subscribed = engine.inner.store.subscribe(Arc::new(move || {
                // Full: a wake-up is already pending, which covers this one too.
                let _ = notify.try_send(());
            }));
            if let Err(e) = subscribed {
                eprintln!(
                    "keyplane: the key store {} could not push change notices ({e}); following \
                     it every {every:?}",
                    engine.inner.store.describe()
                );
            }
            let scheduler = start_scheduler(Arc::downgrade(&engine.inner), every, (wake, woken))?;
            // Set once, here, before any other handle exists.
            engine.handles = Some(Arc::new(Handles {
                _scheduler: scheduler,
            }));
        }
        Ok(engine)
    }
}

impl std::fmt::Debug for EngineBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EngineBuilder")
            .field("config", &self.config)
            .field("store", &self.store.as_ref().map(|s| s.describe()))
            .finish()
    }
}

pub(crate) struct Inner {
    pub(crate) audit: Option<Audit>,
    pub(crate) limiter: Limiter,
    pub(crate) data: DataPlane,
    pub(crate) control: crate::control::control_lock::ControlLock,
    pub(crate) store: Arc<dyn KeyStore>,
    /// The stores of the other Regions, by Region.
    pub(crate) region_stores: std::collections::BTreeMap<String, Arc<dyn KeyStore>>,
    /// Custom key store backends and live connections.
    pub(crate) custom_key_stores: crate::custom_key_store::runtime::Runtime,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) scope: ArnScope,
    pub(crate) config: EngineConfig,
    /// The process that built the engine: a copy made by `fork` uses no store that stays the
    /// parent's ([`crate::store::KeyStore::outlives_fork`]).
    pub(crate) built_in: crate::fork::Birthplace,
}

/// A key management engine. Cheap to clone (a handle); safe to share across threads.
#[derive(Clone)]
pub struct Engine {
    /// What the engine's handles share besides the engine: its background scheduler, when
    /// configured. The scheduler's own runs use a handle without it, so the last handle a caller
    /// drops stops and joins the scheduler, on the caller's thread. Declared first, so dropped
    /// first: once the scheduler has ended no run holds the engine, and the caller's handle, if it
    /// is the last, closes the engine (its audit log's last digest included) before the drop
    /// returns. Had a run held the engine then, the engine would have closed later on the
    /// scheduler's thread, racing a process that went on to exit (seen: SIGABRT in aws-lc, torn
    /// down by `exit` under the audit writer's final signature).
    handles: Option<Arc<Handles>>,
    pub(crate) inner: Arc<Inner>,
    /// Who calls through this handle.
    pub(crate) caller: Arc<Caller>,
    /// Whether calls through this handle are dry runs ([`Engine::dry_run`]).
    pub(crate) dry_run: bool,
    /// The network origin of the request(s) made through this handle: one for a single call, one
    /// per item for a batch ([`Engine::with_origin`], [`Engine::with_item_origins`]).
    pub(crate) origins: Option<Arc<[crate::access::RequestOrigin]>>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("caller", &self.caller.principal())
            .field("region", &self.inner.config.region)
            .field("account_id", &self.inner.config.account_id)
            .field("store", &self.inner.store.describe())
            .field("worker_threads", &self.inner.data.threads())
            .field("fips", &crate::fips_mode())
            .finish()
    }
}

/// What the handles of one engine share besides the engine (see [`Engine`]'s `handles`).
struct Handles {
    /// Stopped and joined when the last handle goes.
    _scheduler: Scheduler,
}

/// An engine's background scheduler thread. Dropping it (with the last handle) wakes the thread and
/// waits for it to end, so no thread outlives its engine: a process that frees its engine and
/// exits leaves nothing running or leaked.
struct Scheduler {
    /// Dropped to stop the thread: its receiver then sees the channel disconnected.
    stop: Option<crossbeam_channel::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
    /// The process the thread was started in (`crate::fork`): a forked child has no such
    /// thread, and must neither join nor detach it (a restored snapshot has it).
    started_in: crate::fork::Birthplace,
}

impl Drop for Scheduler {
    fn drop(&mut self) {
        if self.started_in.is_elsewhere() {
            // A copy of the process: the thread is not in it, and the channel is left connected
            // (disconnecting it takes its waker's mutex, which the thread may have held at the
            // fork).
            std::mem::forget(self.stop.take());
            std::mem::forget(self.thread.take());
            return;
        }
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            if thread.thread().id() != std::thread::current().id() {
                let _ = thread.join();
            }
            // Else this is the scheduler's own thread, which must not join itself. Not reached:
            // its runs hold handles without the scheduler (see `Engine`'s `handles`).
        }
    }
}

/// Starts the scheduler: every `every`, or at once when the store's push notice sends on
/// `wake`, it follows the store and runs due tasks.
fn start_scheduler(
    engine: Weak<Inner>,
    every: Duration,
    (wake, woken): (
        crossbeam_channel::Sender<()>,
        crossbeam_channel::Receiver<()>,
    ),
) -> Result<Scheduler> {
    let (stop, stopped) = crossbeam_channel::bounded::<()>(0);
    let thread = std::thread::Builder::new()
        .name("keyplane-scheduler".into())
        .spawn(move || {
            let mut failing = false;
            loop {
                // Held here so that `woken` never reports disconnection (which would spin).
                let _keep = &wake;
                crossbeam_channel::select! {
                    // Nothing is ever sent: the engine is gone (its sender dropped).
                    recv(stopped) -> _ => return,
                    recv(woken) -> _ => {}
                    default(every) => {}
                }
                let Some(inner) = engine.upgrade() else {
                    return;
                };
                let Ok(root) = Caller::account_root(&inner.config.account_id) else {
                    return;
                };
                // Without the handles: this run must not keep the scheduler alive.
                let engine = Engine {
                    handles: None,
                    inner,
                    caller: Arc::new(root),
                    dry_run: false,
                    origins: None,
                };
                // Said once when it starts failing and once when it recovers, not at every tick.
                match engine.run_due_tasks() {
                    Err(e) if !failing => {
                        failing = true;
                        eprintln!(
                            "keyplane: following the key store or a scheduled task failed: {e}"
                        );
                    }
                    Err(_) => {}
                    Ok(()) if failing => {
                        failing = false;
                        eprintln!("keyplane: the key store is followed again");
                    }
                    Ok(()) => {}
                }
            }
        })
        .map_err(|e| Error::Internal(format!("could not start the scheduler thread: {e}")))?;
    Ok(Scheduler {
        stop: Some(stop),
        thread: Some(thread),
        started_in: crate::fork::Birthplace::here(),
    })
}

impl Engine {
    /// An engine with default settings and an in-memory store.
    pub fn builder() -> EngineBuilder {
        EngineBuilder {
            config: EngineConfig::default(),
            audit: None,
            store: None,
            region_stores: std::collections::BTreeMap::new(),
            clock: None,
            custom_key_store_backends: std::collections::BTreeMap::new(),
        }
    }

    /// An engine with default settings and an empty in-memory store.
    pub fn in_memory() -> Result<Engine> {
        Self::builder().build()
    }

    /// A handle to the same engine that calls as `caller`: every call through it is authorised
    /// against key policies and grants, and audited, as that principal.
    pub fn for_caller(&self, caller: Caller) -> Engine {
        Engine {
            handles: self.handles.clone(),
            inner: Arc::clone(&self.inner),
            caller: Arc::new(caller),
            dry_run: self.dry_run,
            origins: self.origins.clone(),
        }
    }

    /// A handle to the same engine, as the same caller, whose calls record `origin` (request id,
    /// source address, user agent, access key id, TLS details) in their audit records. A network
    /// front end binds one per request.
    pub fn with_origin(&self, origin: crate::access::RequestOrigin) -> Engine {
        Engine {
            handles: self.handles.clone(),
            inner: Arc::clone(&self.inner),
            caller: Arc::clone(&self.caller),
            dry_run: self.dry_run,
            origins: Some(Arc::from(vec![origin])),
        }
    }

    /// A handle for one batch call whose item `i` came from `origins[i]` (a front end that
    /// coalesces concurrent requests into one batch). The batch's audit record lists every item's
    /// origin under `additionalEventData.requests`, in order, so no request hides in a batch.
    pub fn with_item_origins(&self, origins: Vec<crate::access::RequestOrigin>) -> Engine {
        Engine {
            handles: self.handles.clone(),
            inner: Arc::clone(&self.inner),
            caller: Arc::clone(&self.caller),
            dry_run: self.dry_run,
            origins: Some(Arc::from(origins)),
        }
    }

    /// A handle to the same engine, as the same caller, whose calls are dry runs (the service's
    /// `DryRun`): each runs the authorization and parameter checks of the real call and answers
    /// DryRunOperationException ("The request would have succeeded, but the DryRun option is
    /// set.") where the real call would have succeeded, or the real call's error. Nothing
    /// changes: a control-plane call stops before its store commit, a data-plane call's result
    /// is dropped and no key's last usage moves. Each dry run is audited with its error code.
    pub fn dry_run(&self) -> Engine {
        Engine {
            handles: self.handles.clone(),
            inner: Arc::clone(&self.inner),
            caller: Arc::clone(&self.caller),
            dry_run: true,
            origins: self.origins.clone(),
        }
    }

    /// Whether a data-plane call (Encrypt, Decrypt, GenerateDataKey, Sign, ...) on a key already
    /// in memory may wait on I/O: true when the audit log's durability is
    /// [`Durability::Synced`](crate::audit::Durability::Synced), where each call waits for its
    /// record's fsync; false with `Queued` durability or no audit log, where such a call is CPU
    /// work only. An async front end runs calls that may block on a blocking thread and the
    /// others on its worker. Control-plane calls write the store and may always block; the first
    /// use of a key not yet in memory reads the store, and a full audit queue makes a call wait
    /// for the writer (back pressure), whatever this says.
    pub fn calls_may_block(&self) -> bool {
        self.inner
            .audit
            .as_ref()
            .is_some_and(|audit| audit.log.durability() == crate::audit::Durability::Synced)
    }

    /// Whether calls through this handle are dry runs.
    pub fn is_dry_run(&self) -> bool {
        self.dry_run
    }

    /// The principal this handle calls as (the account root for a handle fresh from the builder).
    pub fn caller(&self) -> &Caller {
        &self.caller
    }

    /// The configuration the engine runs with.
    pub fn config(&self) -> &EngineConfig {
        &self.inner.config
    }

    /// Threads a batch call may use, the calling thread included.
    pub fn worker_threads(&self) -> usize {
        self.inner.data.threads()
    }

    /// Whether the engine runs on the FIPS-validated AWS-LC module.
    pub fn fips_mode(&self) -> bool {
        crate::fips_mode()
    }

    /// The ARN of key `id`.
    pub fn key_arn(&self, id: &uuid::Uuid) -> String {
        self.inner.scope.key_arn(id)
    }

    /// The limits of this engine's configuration that replace the model's.
    fn limits(&self) -> validation::Limits {
        validation::Limits {
            max_plaintext: self.inner.config.max_plaintext_bytes,
        }
    }

    // ---- data plane -------------------------------------------------------------------------

    /// The engine's pool for envelope streams to seal and open their frames on, with
    /// `worker_threads` workers: `EnvelopeConfig { pool: Some(engine.worker_pool()), .. }`.
    /// (Batch calls run on a pool of one fewer, with the calling thread as the last worker.)
    pub fn worker_pool(&self) -> std::sync::Arc<rayon::ThreadPool> {
        self.inner.data.stream_pool()
    }

    /// Encrypts up to 4096 bytes under a symmetric key.
    pub fn encrypt(
        &self,
        request: &dataplane::EncryptRequest<'_>,
    ) -> Result<dataplane::EncryptResponse> {
        self.single(
            crate::operation::Operation::Encrypt,
            &[Some(request.key_id)],
            || params::encrypt(request),
            |caller| {
                request.validate(&self.limits())?;
                self.inner.data.encrypt(caller, request)
            },
        )
    }

    /// Encrypt into the caller's buffer `out`, which needs room for
    /// `ciphertext::blob_len(plaintext.len())` bytes under a key keyplane or an HSM key store
    /// holds (sealed in place: no allocation for the blob), `ciphertext::max_blob_len` under a
    /// key in an external key store, the modulus size under an RSA key. The same request, checks,
    /// errors, quota and audit record as [`Engine::encrypt`]; the answer says how many bytes were
    /// written. A too-short buffer is [`crate::IntoError::OutputTooSmall`] (nothing written);
    /// nothing is written on failure.
    pub fn encrypt_into(
        &self,
        request: &dataplane::EncryptRequest<'_>,
        out: &mut [u8],
    ) -> std::result::Result<dataplane::EncryptedInto, dataplane::IntoError> {
        self.single_into(
            crate::operation::Operation::Encrypt,
            &[Some(request.key_id)],
            || params::encrypt(request),
            out,
            |caller, out| {
                request.validate(&self.limits())?;
                self.inner.data.encrypt_into(caller, request, out)
            },
        )
    }

    /// Encrypts many plaintexts under one key with one context (SYMMETRIC_DEFAULT), each into
    /// its caller buffer (`outputs[i]`, as [`Engine::encrypt_batch_into`] sizes it); returns the
    /// bytes written per item. The key is resolved and the caller authorised once for the batch
    /// (not per item): a key that does not exist, is disabled or that the caller may not use
    /// fails every item with that error. Otherwise as `encrypt_batch_into` with every item naming
    /// `key_id` and `context`: one audit record (the key, the item count), items validated and
    /// failing on their own, large batches on the worker pool.
    pub fn encrypt_batch_one_key(
        &self,
        key_id: &str,
        context: Option<&crate::context::EncryptionContext>,
        plaintexts: &[&[u8]],
        outputs: &mut [&mut [u8]],
    ) -> dataplane::WrittenItems {
        self.batch_into(
            crate::operation::Operation::Encrypt,
            Some(key_id),
            plaintexts.len(),
            outputs,
            |caller, tally, outputs| {
                let limits = self.limits();
                let check = |plaintext: &&[u8]| {
                    dataplane::EncryptRequest::new(key_id, plaintext).validate(&limits)
                };
                self.inner.data.encrypt_batch_one_key(
                    caller, tally, key_id, context, plaintexts, outputs, check,
                )
            },
        )
    }

    /// Encrypts every request; one result per request, in order. Each blob's buffer comes from,
    /// and when dropped goes back to, the engine's pool ([`crate::recycled_buffers`]): batch
    /// after batch of large results reuses memory already mapped instead of faulting it in.
    pub fn encrypt_batch(
        &self,
        requests: &[dataplane::EncryptRequest<'_>],
    ) -> Vec<Result<dataplane::CiphertextBlob>> {
        self.batch(
            crate::operation::Operation::Encrypt,
            requests.first().map(|r| r.key_id),
            requests.len(),
            |caller, tally| {
                let limits = self.limits();
                self.inner
                    .data
                    .encrypt_batch(caller, tally, requests, |r| r.validate(&limits))
            },
        )
    }

    /// Encrypts every request into its caller buffer (`outputs[i]`, at least
    /// `ciphertext::blob_len(plaintext.len())` bytes for a symmetric key); returns bytes written
    /// per item. No allocation per item for symmetric keys.
    pub fn encrypt_batch_into(
        &self,
        requests: &[dataplane::EncryptRequest<'_>],
        outputs: &mut [&mut [u8]],
    ) -> dataplane::WrittenItems {
        self.batch_into(
            crate::operation::Operation::Encrypt,
            requests.first().map(|r| r.key_id),
            requests.len(),
            outputs,
            |caller, tally, outputs| {
                let limits = self.limits();
                self.inner
                    .data
                    .encrypt_batch_into(caller, tally, requests, outputs, |r| r.validate(&limits))
            },
        )
    }

    /// Decrypts every request into its caller buffer (at least the plaintext length); returns
    /// bytes written per item. The caller owns, and should zero, the plaintext.
    pub fn decrypt_batch_into(
        &self,
        requests: &[dataplane::DecryptRequest<'_>],
        outputs: &mut [&mut [u8]],
    ) -> dataplane::WrittenItems {
        self.batch_into(
            crate::operation::Operation::Decrypt,
            requests.first().and_then(|r| r.key_id),
            requests.len(),
            outputs,
            |caller, tally, outputs| {
                let limits = self.limits();
                self.inner
                    .data
                    .decrypt_batch_into(caller, tally, requests, outputs, |r| r.validate(&limits))
            },
        )
    }

    /// Encrypts every request into `out`, one buffer the caller keeps for the next call
    /// ([`dataplane::BatchOutputs`]): as [`Engine::encrypt_batch`], but a batch allocates nothing
    /// per item, and once `out` has held a batch of this size none at all, so large batches of
    /// large results do not fault fresh pages in on every call.
    pub fn encrypt_batch_to(
        &self,
        requests: &[dataplane::EncryptRequest<'_>],
        out: &mut dataplane::BatchOutputs,
    ) {
        let limits = self.limits();
        self.batch_to(
            crate::operation::Operation::Encrypt,
            requests.first().map(|r| r.key_id),
            requests.len(),
            out,
            |data| data.encrypt_rooms(requests),
            |data, caller, tally, rooms| {
                data.encrypt_batch_into(caller, tally, requests, rooms, |r| r.validate(&limits))
            },
        );
    }

    /// Decrypts every request into `out`, as [`Engine::encrypt_batch_to`] encrypts: the
    /// plaintexts lie in one buffer the caller keeps, zeroed when it is dropped or cleared; a
    /// failed item's room is zeroed.
    pub fn decrypt_batch_to(
        &self,
        requests: &[dataplane::DecryptRequest<'_>],
        out: &mut dataplane::BatchOutputs,
    ) {
        let limits = self.limits();
        self.batch_to(
            crate::operation::Operation::Decrypt,
            requests.first().and_then(|r| r.key_id),
            requests.len(),
            out,
            |data| data.decrypt_rooms(requests),
            |data, caller, tally, rooms| {
                data.decrypt_batch_into(caller, tally, requests, rooms, |r| r.validate(&limits))
            },
        );
    }

    /// A batch whose outputs go into `out`: `rooms` sizes each item's room (on every run, so a
    /// re-run after catching up with the store sizes them for the keys it now knows), `run`
    /// fills them and answers the bytes written per item. One audit record, quota and re-run
    /// as [`Engine::batch`]; a batch none of whose items succeeded leaves the buffer zeroed, as
    /// [`Engine::batch_into`] leaves the caller's.
    fn batch_to<R: IntoIterator<Item = usize>>(
        &self,
        operation: crate::operation::Operation,
        key_id: Option<&str>,
        n: usize,
        out: &mut dataplane::BatchOutputs,
        rooms: impl Fn(&DataPlane) -> R,
        run: impl Fn(
            &DataPlane,
            &Caller,
            &dataplane::tally::KeyTally,
            dataplane::item_outputs::Rooms<'_>,
        ) -> dataplane::WrittenItems,
    ) {
        let results = self.batch(operation, key_id, n, |caller, tally| {
            let data = &self.inner.data;
            run(data, caller, tally, out.rooms(rooms(data)))
        });
        if results.none_succeeded() {
            out.zero_bytes();
        }
        out.finish(results);
    }

    /// A batch into the caller's `outputs`, as [`Engine::batch`]. When no item succeeded — a dry
    /// run, a record that could not be written, a batch refused whole — every output is zeroed:
    /// the items may have run and written before the answer was decided, and bytes the answer
    /// does not hand out (a plaintext above all) must not reach the caller, whose call the audit
    /// log records as a failure or a dry run. [`Engine::single_into`] does the same for one
    /// output. A failed item of a batch that succeeded in part was zeroed where it ran.
    fn batch_into(
        &self,
        event_name: crate::operation::Operation,
        key_id: Option<&str>,
        n: usize,
        outputs: &mut [&mut [u8]],
        mut run: impl FnMut(
            &Caller,
            &dataplane::tally::KeyTally,
            &mut [&mut [u8]],
        ) -> dataplane::WrittenItems,
    ) -> dataplane::WrittenItems {
        let results = self.batch(event_name, key_id, n, |caller, tally| {
            run(caller, tally, &mut *outputs)
        });
        if results.none_succeeded() {
            outputs.iter_mut().for_each(|out| out.zeroize());
        }
        results
    }

    /// The dry run of Decrypt or ReEncrypt with the `IGNORE_CIPHERTEXT` modifier: only the
    /// authorization checks, without a ciphertext. `keys` pairs each named key (Decrypt's KeyId;
    /// ReEncrypt's SourceKeyId with [`Action::ReEncryptFrom`] and DestinationKeyId with
    /// [`Action::ReEncryptTo`]) with the permission it needs. Answers DryRunOperationException
    /// when every check passes, whatever the handle; no key material is touched. The service
    /// needs a key to authorize against, so a call naming none is a ValidationException.
    pub fn dry_run_authorization(
        &self,
        event_name: crate::operation::Operation,
        keys: &[(Action, &str)],
    ) -> Result<()> {
        if !self.dry_run {
            return self.dry_run().dry_run_authorization(event_name, keys);
        }
        let named: Vec<Option<&str>> = keys.iter().map(|(_, k)| Some(*k)).collect();
        self.single(
            event_name,
            &named,
            || serde_json::json!({ "keys": named, "dryRunModifiers": ["IGNORE_CIPHERTEXT"] }),
            |caller| {
                if keys.is_empty() {
                    return Err(crate::error::validation!(
                        "a dry run with IGNORE_CIPHERTEXT needs the KeyId of the key to authorize"
                    ));
                }
                let keyring = self.inner.data.keyring.load();
                for (action, identifier) in keys {
                    let key = keyring.resolve(&self.inner.scope, identifier, *action)?;
                    let facts = crate::access::request_facts::RequestFacts {
                        identifier: Some(identifier),
                        ..Default::default()
                    };
                    key.access
                        .check(caller, *action, &key.arn, key.spec, key.usage, &facts)?;
                }
                Ok(())
            },
        )
    }

    /// Decrypts a ciphertext blob.
    pub fn decrypt(
        &self,
        request: &dataplane::DecryptRequest<'_>,
    ) -> Result<dataplane::DecryptResponse> {
        self.single(
            crate::operation::Operation::Decrypt,
            &[self
                .blob_key(request.key_id, request.ciphertext_blob)
                .as_deref()],
            || params::decrypt(request),
            |caller| {
                request.validate(&self.limits())?;
                self.inner.data.decrypt(caller, request)
            },
        )
    }

    /// Decrypt into the caller's buffer `out`, which needs room for the plaintext (a keyplane
    /// blob's length less `ciphertext::OVERHEAD` always suffices for a key keyplane or an HSM key
    /// store holds; `ciphertext::plaintext_len_of` reads it from any blob's framing). A keyplane
    /// blob is opened in place: the plaintext exists nowhere else, and the caller owns (and should
    /// zero) it. The same request, checks, errors, quota and audit record as [`Engine::decrypt`];
    /// the answer says how many bytes were written. A too-short buffer is
    /// [`crate::IntoError::OutputTooSmall`] (nothing written). On failure `out` holds no
    /// plaintext: the bytes the plaintext was to take are zeroed once opening began.
    pub fn decrypt_into(
        &self,
        request: &dataplane::DecryptRequest<'_>,
        out: &mut [u8],
    ) -> std::result::Result<dataplane::DecryptedInto, dataplane::IntoError> {
        self.single_into(
            crate::operation::Operation::Decrypt,
            &[self
                .blob_key(request.key_id, request.ciphertext_blob)
                .as_deref()],
            || params::decrypt(request),
            out,
            |caller, out| {
                request.validate(&self.limits())?;
                self.inner.data.decrypt_into(caller, request, out)
            },
        )
    }

    /// Decrypts every request; one result per request, in order.
    pub fn decrypt_batch(
        &self,
        requests: &[dataplane::DecryptRequest<'_>],
    ) -> Vec<Result<SecretBytes>> {
        self.batch(
            crate::operation::Operation::Decrypt,
            requests.first().and_then(|r| r.key_id),
            requests.len(),
            |caller, tally| {
                let limits = self.limits();
                self.inner
                    .data
                    .decrypt_batch(caller, tally, requests, |r| r.validate(&limits))
            },
        )
    }

    /// Decrypts every request, answering each as [`Engine::decrypt`] would (key ARN, algorithm
    /// and key material id with the plaintext): for a front end that joins concurrent single
    /// calls into one batch.
    pub fn decrypt_batch_responses(
        &self,
        requests: &[dataplane::DecryptRequest<'_>],
    ) -> Vec<Result<dataplane::DecryptResponse>> {
        self.batch(
            crate::operation::Operation::Decrypt,
            requests.first().and_then(|r| r.key_id),
            requests.len(),
            |caller, tally| {
                let limits = self.limits();
                self.inner
                    .data
                    .decrypt_batch_responses(caller, tally, requests, |r| r.validate(&limits))
            },
        )
    }

    /// Decrypts and re-encrypts under another key (or context) inside the engine.
    pub fn re_encrypt(
        &self,
        request: &dataplane::ReEncryptRequest<'_>,
    ) -> Result<dataplane::ReEncryptResponse> {
        self.single(
            crate::operation::Operation::ReEncrypt,
            &[
                self.blob_key(request.source_key_id, request.ciphertext_blob)
                    .as_deref(),
                Some(request.destination_key_id),
            ],
            || params::re_encrypt(request),
            |caller| {
                request.validate(&self.limits())?;
                self.inner.data.re_encrypt(caller, request)
            },
        )
    }

    /// Re-encrypts every request; one result per request, in order.
    pub fn re_encrypt_batch(
        &self,
        requests: &[dataplane::ReEncryptRequest<'_>],
    ) -> Vec<Result<Vec<u8>>> {
        self.batch(
            crate::operation::Operation::ReEncrypt,
            requests.first().map(|r| r.destination_key_id),
            requests.len(),
            |caller, tally| {
                let limits = self.limits();
                self.inner
                    .data
                    .re_encrypt_batch(caller, tally, requests, |r| r.validate(&limits))
            },
        )
    }

    /// A new data key, in plaintext and encrypted.
    pub fn generate_data_key(
        &self,
        request: &dataplane::GenerateDataKeyRequest<'_>,
    ) -> Result<dataplane::GenerateDataKeyResponse> {
        self.single(
            crate::operation::Operation::GenerateDataKey,
            &[Some(request.key_id)],
            || params::data_key(request),
            |caller| {
                request.validate_as(false)?;
                self.inner.data.generate_data_key(caller, request)
            },
        )
    }

    /// A new data key, encrypted only.
    pub fn generate_data_key_without_plaintext(
        &self,
        request: &dataplane::GenerateDataKeyRequest<'_>,
    ) -> Result<dataplane::GenerateDataKeyWithoutPlaintextResponse> {
        self.single(
            crate::operation::Operation::GenerateDataKeyWithoutPlaintext,
            &[Some(request.key_id)],
            || params::data_key(request),
            |caller| {
                request.validate_as(true)?;
                self.inner
                    .data
                    .generate_data_key_without_plaintext(caller, request)
            },
        )
    }

    /// Many data keys; randomness is drawn in bulk.
    pub fn generate_data_key_batch(
        &self,
        requests: &[dataplane::GenerateDataKeyRequest<'_>],
    ) -> Vec<Result<dataplane::GeneratedDataKey>> {
        self.batch(
            crate::operation::Operation::GenerateDataKey,
            requests.first().map(|r| r.key_id),
            requests.len(),
            |caller, tally| {
                self.inner
                    .data
                    .generate_data_key_batch(caller, tally, requests, |r| r.validate_as(false))
            },
        )
    }

    /// Many data keys, each answered as [`Engine::generate_data_key`] would (key ARN and key
    /// material id with the data key): for a front end that joins concurrent single calls into
    /// one batch.
    pub fn generate_data_key_batch_responses(
        &self,
        requests: &[dataplane::GenerateDataKeyRequest<'_>],
    ) -> Vec<Result<dataplane::GenerateDataKeyResponse>> {
        self.batch(
            crate::operation::Operation::GenerateDataKey,
            requests.first().map(|r| r.key_id),
            requests.len(),
            |caller, tally| {
                self.inner
                    .data
                    .generate_data_key_batch_responses(caller, tally, requests, |r| {
                        r.validate_as(false)
                    })
            },
        )
    }

    /// Many encrypted-only data keys.
    pub fn generate_data_key_without_plaintext_batch(
        &self,
        requests: &[dataplane::GenerateDataKeyRequest<'_>],
    ) -> Vec<Result<Vec<u8>>> {
        self.batch(
            crate::operation::Operation::GenerateDataKeyWithoutPlaintext,
            requests.first().map(|r| r.key_id),
            requests.len(),
            |caller, tally| {
                self.inner.data.generate_data_key_without_plaintext_batch(
                    caller,
                    tally,
                    requests,
                    |r| r.validate_as(true),
                )
            },
        )
    }

    /// Signs a message or digest with an asymmetric SIGN_VERIFY key.
    pub fn sign(&self, request: &dataplane::SignRequest<'_>) -> Result<dataplane::SignResponse> {
        self.single(
            crate::operation::Operation::Sign,
            &[Some(request.key_id)],
            || {
                params::sign(
                    request.key_id,
                    request.signing_algorithm,
                    request.message_type,
                    request.message.len(),
                )
            },
            |caller| {
                request.validate(&self.limits())?;
                self.inner.data.sign(caller, request)
            },
        )
    }

    /// Signs every request; one signature or error per request, in order.
    pub fn sign_batch(&self, requests: &[dataplane::SignRequest<'_>]) -> Vec<Result<Vec<u8>>> {
        self.batch(
            crate::operation::Operation::Sign,
            requests.first().map(|r| r.key_id),
            requests.len(),
            |caller, tally| {
                let limits = self.limits();
                self.inner
                    .data
                    .sign_batch(caller, tally, requests, |r| r.validate(&limits))
            },
        )
    }

    /// Verifies a signature; an invalid one is `Error::InvalidSignature`.
    pub fn verify(
        &self,
        request: &dataplane::VerifyRequest<'_>,
    ) -> Result<dataplane::VerifyResponse> {
        self.single(
            crate::operation::Operation::Verify,
            &[Some(request.key_id)],
            || {
                params::sign(
                    request.key_id,
                    request.signing_algorithm,
                    request.message_type,
                    request.message.len(),
                )
            },
            |caller| {
                request.validate(&self.limits())?;
                self.inner.data.verify(caller, request)
            },
        )
    }

    /// Verifies every request; `Ok(())` or the error per request, in order.
    pub fn verify_batch(&self, requests: &[dataplane::VerifyRequest<'_>]) -> Vec<Result<()>> {
        self.batch(
            crate::operation::Operation::Verify,
            requests.first().map(|r| r.key_id),
            requests.len(),
            |caller, tally| {
                let limits = self.limits();
                self.inner
                    .data
                    .verify_batch(caller, tally, requests, |r| r.validate(&limits))
            },
        )
    }

    /// The public key of an asymmetric key, DER SubjectPublicKeyInfo.
    pub fn get_public_key(&self, key_id: &str) -> Result<dataplane::GetPublicKeyResponse> {
        self.single(
            crate::operation::Operation::GetPublicKey,
            &[Some(key_id)],
            || params::key(key_id),
            |caller| {
                validation::key_id(Action::GetPublicKey, key_id)?;
                self.inner.data.get_public_key(caller, key_id)
            },
        )
    }

    /// An HMAC of a message under an HMAC key.
    pub fn generate_mac(
        &self,
        request: &dataplane::GenerateMacRequest<'_>,
    ) -> Result<dataplane::GenerateMacResponse> {
        self.single(
            crate::operation::Operation::GenerateMac,
            &[Some(request.key_id)],
            || params::mac(request.key_id, request.mac_algorithm, request.message.len()),
            |caller| {
                request.validate(&self.limits())?;
                self.inner.data.generate_mac(caller, request)
            },
        )
    }

    /// HMACs for every request, in order, each held inline ([`dataplane::Mac`]): no allocation
    /// per MAC.
    pub fn generate_mac_batch(
        &self,
        requests: &[dataplane::GenerateMacRequest<'_>],
    ) -> Vec<Result<dataplane::Mac>> {
        self.batch(
            crate::operation::Operation::GenerateMac,
            requests.first().map(|r| r.key_id),
            requests.len(),
            |caller, tally| {
                let limits = self.limits();
                self.inner
                    .data
                    .generate_mac_batch(caller, tally, requests, |r| r.validate(&limits))
            },
        )
    }

    /// GenerateMac of every request into `out`, one buffer the caller keeps for the next call
    /// (as [`Engine::encrypt_batch_to`]): no allocation per MAC.
    pub fn generate_mac_batch_to(
        &self,
        requests: &[dataplane::GenerateMacRequest<'_>],
        out: &mut dataplane::BatchOutputs,
    ) {
        let limits = self.limits();
        self.batch_to(
            crate::operation::Operation::GenerateMac,
            requests.first().map(|r| r.key_id),
            requests.len(),
            out,
            |_| DataPlane::mac_rooms(requests),
            |data, caller, tally, rooms| {
                data.generate_mac_batch_into(caller, tally, requests, rooms, |r| {
                    r.validate(&limits)
                })
            },
        );
    }

    /// Verifies an HMAC in constant time; a mismatch is `Error::InvalidMac`.
    pub fn verify_mac(
        &self,
        request: &dataplane::VerifyMacRequest<'_>,
    ) -> Result<dataplane::VerifyMacResponse> {
        self.single(
            crate::operation::Operation::VerifyMac,
            &[Some(request.key_id)],
            || params::mac(request.key_id, request.mac_algorithm, request.message.len()),
            |caller| {
                request.validate(&self.limits())?;
                self.inner.data.verify_mac(caller, request)
            },
        )
    }

    /// Verifies every request's HMAC; `Ok(())` or the error per request, in order.
    pub fn verify_mac_batch(
        &self,
        requests: &[dataplane::VerifyMacRequest<'_>],
    ) -> Vec<Result<()>> {
        self.batch(
            crate::operation::Operation::VerifyMac,
            requests.first().map(|r| r.key_id),
            requests.len(),
            |caller, tally| {
                let limits = self.limits();
                self.inner
                    .data
                    .verify_mac_batch(caller, tally, requests, |r| r.validate(&limits))
            },
        )
    }

    /// ECDH between a KEY_AGREEMENT key and a peer public key (DER SubjectPublicKeyInfo).
    pub fn derive_shared_secret(
        &self,
        request: &dataplane::DeriveSharedSecretRequest<'_>,
    ) -> Result<dataplane::DeriveSharedSecretResponse> {
        self.single(
            crate::operation::Operation::DeriveSharedSecret,
            &[Some(request.key_id)],
            || params::key(request.key_id),
            |caller| {
                request.validate(&self.limits())?;
                self.inner.data.derive_shared_secret(caller, request)
            },
        )
    }

    /// A new key pair: public key, private key in plaintext and encrypted under a symmetric key.
    pub fn generate_data_key_pair(
        &self,
        request: &dataplane::GenerateDataKeyPairRequest<'_>,
    ) -> Result<dataplane::GenerateDataKeyPairResponse> {
        self.single(
            crate::operation::Operation::GenerateDataKeyPair,
            &[Some(request.key_id)],
            || params::data_key_pair(request),
            |caller| {
                request.validate_as(false)?;
                self.inner
                    .data
                    .generate_data_key_pair(caller, request, true)
            },
        )
    }

    /// A new key pair: public key and encrypted private key only.
    pub fn generate_data_key_pair_without_plaintext(
        &self,
        request: &dataplane::GenerateDataKeyPairRequest<'_>,
    ) -> Result<dataplane::GenerateDataKeyPairResponse> {
        self.single(
            crate::operation::Operation::GenerateDataKeyPairWithoutPlaintext,
            &[Some(request.key_id)],
            || params::data_key_pair(request),
            |caller| {
                request.validate_as(true)?;
                self.inner
                    .data
                    .generate_data_key_pair(caller, request, false)
            },
        )
    }

    /// 1 to 1024 random bytes.
    pub fn generate_random(&self, number_of_bytes: usize) -> Result<Vec<u8>> {
        self.single(
            crate::operation::Operation::GenerateRandom,
            &[None],
            || serde_json::json!({"numberOfBytes": number_of_bytes}),
            |caller| {
                validation::generate_random(number_of_bytes)?;
                self.inner.data.generate_random(caller, number_of_bytes)
            },
        )
    }

    /// Random byte strings of the given sizes (each 1 to 1024), drawn in one generator call.
    pub fn generate_random_batch(&self, sizes: &[usize]) -> Vec<Result<Vec<u8>>> {
        self.batch(
            crate::operation::Operation::GenerateRandom,
            None,
            sizes.len(),
            |caller, _| {
                validation::batch(
                    sizes,
                    |n| validation::generate_random(*n),
                    || self.inner.data.generate_random_batch(caller, sizes),
                )
            },
        )
    }
}
