//! The data plane's state: the key snapshot, the engine settings every operation reads, and the
//! worker pool batches run on. The operations themselves are `impl DataPlane` blocks in the
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
    pub(super) pool: std::sync::Arc<rayon::ThreadPool>,
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
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(|i| format!("keyplane-{i}"))
            .build()
            .map_err(|e| Error::Internal(format!("could not start the worker pool: {e}")))?;
        Ok(DataPlane {
            keyring: ArcSwap::from_pointee(Keyring::default()),
            scope,
            lock_policy,
            messages_per_derived_key,
            max_plaintext,
            freshness: Freshness::new(max_staleness),
            pool: std::sync::Arc::new(pool),
        })
    }

    /// The worker pool, shared with the envelope streams that run on it.
    pub(crate) fn pool(&self) -> std::sync::Arc<rayon::ThreadPool> {
        self.pool.clone()
    }

    pub(crate) fn threads(&self) -> usize {
        self.pool.current_num_threads()
    }
}
