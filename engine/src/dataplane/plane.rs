//! The data plane's state: the key snapshot, the engine settings every operation reads, and the
//! worker pools batches and envelope streams run on. The operations themselves are `impl DataPlane` blocks in the
//! sibling modules, one per operation; the batch runner is in [`super::batch`].

use arc_swap::ArcSwap;

use super::freshness::Freshness;
use super::keyring::Keyring;
use crate::error::{Error, Result};
use crate::key::ArnScope;
use crate::locked_memory::LockPolicy;

pub(crate) struct DataPlane {
    pub(crate) keyring: ArcSwap<Keyring>,
    pub(crate) scope: ArnScope,
    pub(crate) lock_policy: LockPolicy,
    pub(crate) messages_per_derived_key: u64,
    pub(crate) max_plaintext: usize,
    /// The staleness bound on this node's view of the store.
    pub(crate) freshness: Freshness,
    /// The helpers of batch calls: `threads - 1` workers, because the calling thread works on
    /// its own batch (see [`super::batch_plan`]). A pool as large as `threads` leaves one worker
    /// spinning for work while every core is busy: on 16 cores that halved 16 KiB batches.
    pub(super) pool: rayon::ThreadPool,
    /// The same number of helpers, which stay awake between back-to-back batches (see
    /// [`super::spin_pool`]); a batch takes rayon's pool only while another holds these.
    pub(super) helpers: super::spin_pool::SpinPool,
    /// The configured thread count, the calling thread included.
    threads: usize,
    /// The pool envelope streams run their frames on, `threads` workers: a stream's batch of
    /// frames runs on `threads` threads, its calling thread one of them (see
    /// `envelope::parallel`), so one worker stays asleep.
    stream_pool: std::sync::Arc<rayon::ThreadPool>,
    /// Each thread's working HMAC context, kept (cleared) from one chunk to the next.
    pub(crate) hmac_works: super::thread_hmac::ThreadHmacWorks,
}

fn build_pool(threads: usize, name: &'static str) -> Result<rayon::ThreadPool> {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(move |i| format!("{name}-{i}"))
        .build()
        .map_err(|e| Error::Internal(format!("could not start the worker pool: {e}")))
}

impl DataPlane {
    pub(crate) fn new(
        scope: ArnScope,
        lock_policy: LockPolicy,
        messages_per_derived_key: u64,
        max_plaintext: usize,
        threads: usize,
        max_staleness: Option<std::time::Duration>,
    ) -> Result<Self> {
        let threads = threads.max(1);
        let pool = build_pool((threads - 1).max(1), "keyplane")?;
        Ok(DataPlane {
            keyring: ArcSwap::from_pointee(Keyring::default()),
            scope,
            lock_policy,
            messages_per_derived_key,
            max_plaintext,
            freshness: Freshness::new(max_staleness),
            pool,
            helpers: super::spin_pool::SpinPool::new(threads - 1, "keyplane-batch")?,
            threads,
            stream_pool: std::sync::Arc::new(build_pool(threads, "keyplane-stream")?),
            hmac_works: super::thread_hmac::ThreadHmacWorks::default(),
        })
    }

    /// The pool of `threads` workers for envelope streams.
    pub(crate) fn stream_pool(&self) -> std::sync::Arc<rayon::ThreadPool> {
        self.stream_pool.clone()
    }

    /// The configured thread count: the calling thread and the batch pool's workers.
    pub(crate) fn threads(&self) -> usize {
        self.threads
    }
}
