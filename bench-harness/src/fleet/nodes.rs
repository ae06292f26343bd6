//! Fleet nodes and their store handles: opening the shared PostgreSQL store, building an engine
//! (a node) on a handle, and the error a failed step of the workload gives.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use keyplane::store::KeyStore;
use keyplane::{Engine, LockPolicy};
use keyplane_postgres::{PgOptions, PostgresKeyStore, Timeouts};
use keyplane_sqlite::root_key::KeyFileProvider;

use crate::BenchError;

pub(crate) fn failed(what: &str, e: impl std::fmt::Display) -> BenchError {
    BenchError::Run(format!("fleet: {what}: {e}"))
}

/// Opens store handles: each call is one more node's own connection pool (and listener).
pub(crate) type Opener<'a> = &'a (dyn Fn() -> Result<Arc<dyn KeyStore>, BenchError> + Sync);

/// Statement timeout of the fleet nodes: the bulk fill's commits of 10,000 keys may take longer
/// than the store's default (10 s) on a small, busy machine. (A cold load has its own
/// `Timeouts::load`.)
const STATEMENT_TIMEOUT: Duration = Duration::from_secs(600);

pub(crate) fn pg_options(lock_policy: LockPolicy) -> PgOptions {
    PgOptions {
        lock_policy,
        timeouts: Timeouts {
            statement: STATEMENT_TIMEOUT,
            ..Timeouts::default()
        },
        ..PgOptions::default()
    }
}

pub(crate) fn pg_open(
    address: &str,
    root: &Path,
    lock_policy: LockPolicy,
) -> Result<Arc<PostgresKeyStore>, BenchError> {
    let provider = Arc::new(KeyFileProvider::new(root.to_path_buf(), lock_policy));
    PostgresKeyStore::open(address, provider, pg_options(lock_policy))
        .map(Arc::new)
        .map_err(|e| failed("opening the PostgreSQL store", e))
}

/// A node: an engine on `store`, following it every `follow` (and on the store's push notices)
/// where given.
pub(crate) fn node(
    store: Arc<dyn KeyStore>,
    lock_policy: LockPolicy,
    follow: Option<Duration>,
    max_keys: usize,
) -> Result<Engine, BenchError> {
    let mut builder = Engine::builder()
        .store(store)
        .lock_policy(lock_policy)
        .worker_threads(1)
        .max_keys(max_keys);
    if let Some(every) = follow {
        builder = builder.scheduler_interval(every);
    }
    builder.build().map_err(|e| failed("building a node", e))
}
