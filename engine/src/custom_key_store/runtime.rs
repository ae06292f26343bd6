//! The engine's live view of its custom key stores: the registered backends, and per store its
//! connection state, last error code and live connection. Held in memory only: what persists is
//! the definition and whether its owner asked for it to be connected.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use super::backend::{Connection, CustomKeyStoreBackend};
use super::definition::{ConnectionErrorCode, ConnectionState, CustomKeyStoreType};
use crate::error::{Error, Result};
use crate::fork::Birthplace;

/// A custom key store's live connection, and the process that made it. A PKCS#11 session or an
/// XKS proxy's TLS stream is its process's: a copy made by `fork` may neither send on it (PKCS#11
/// wants `C_Initialize` again in a child; two processes writing one TLS stream corrupt it) nor
/// close it (a logout, or a TLS close, would end the parent's session too). So in a copy
/// [`OwnedConnection::get`] refuses, and the last handle dropped there leaves the connection
/// alone (its memory is the copy's, and goes when the copy ends).
#[derive(Clone)]
pub(crate) struct OwnedConnection {
    connection: Arc<dyn Connection>,
    made_in: Birthplace,
}

impl OwnedConnection {
    /// A connection just made, in this process.
    pub(crate) fn new(connection: Arc<dyn Connection>) -> Self {
        OwnedConnection {
            connection,
            made_in: Birthplace::here(),
        }
    }

    /// The connection, unless this process is a copy of the one that made it: then `refuse`
    /// of a message that names store `store_id`, the parent and the fork.
    pub(crate) fn get(
        &self,
        store_id: &str,
        refuse: impl FnOnce(String) -> Error,
    ) -> Result<&dyn Connection> {
        if !self.made_in.is_elsewhere() {
            return Ok(&*self.connection);
        }
        Err(refuse(format!(
            "custom key store {store_id}'s connection is process {}'s, and this process is a \
             copy of it made by fork; start an engine in this process",
            self.made_in.pid()
        )))
    }

    /// Whether the two are the very same connection.
    pub(crate) fn same(&self, other: &OwnedConnection) -> bool {
        Arc::ptr_eq(&self.connection, &other.connection)
    }

    /// Whether the store's keys use the double encryption of external key stores: a property
    /// of the connection's kind, which asks nothing of the store.
    pub(crate) fn encrypts_blobs(&self) -> bool {
        self.connection.encrypts_blobs()
    }
}

impl Drop for OwnedConnection {
    fn drop(&mut self) {
        if self.made_in.is_elsewhere() {
            // A count never given back: in a copy no handle's drop closes the connection.
            std::mem::forget(Arc::clone(&self.connection));
        }
    }
}

/// One store's live state.
pub(crate) struct Live {
    pub(crate) state: ConnectionState,
    pub(crate) error: Option<ConnectionErrorCode>,
    pub(crate) connection: Option<OwnedConnection>,
    /// Which connection attempt set this state (0: none): a ConnectCustomKeyStore that reached
    /// the store with the control-plane lock released applies its outcome only while the store is
    /// still CONNECTING under its own attempt.
    pub(crate) attempt: u64,
}

impl Default for Live {
    fn default() -> Self {
        Live {
            state: ConnectionState::Disconnected,
            error: None,
            connection: None,
            attempt: 0,
        }
    }
}

/// Backends by store type, and live state by store id.
///
/// The live table is locked only by a thread that holds the control-plane lock
/// ([`crate::control::control_lock`]). A copy of the process made by `fork` is refused at that
/// lock when another process's thread held it, so it never waits for this one, which a thread it
/// does not have might have held at the fork.
#[derive(Default)]
pub(crate) struct Runtime {
    backends: BTreeMap<CustomKeyStoreType, Arc<dyn CustomKeyStoreBackend>>,
    live: Mutex<HashMap<String, Live>>,
    attempts: AtomicU64,
}

impl Runtime {
    pub(crate) fn new(
        backends: BTreeMap<CustomKeyStoreType, Arc<dyn CustomKeyStoreBackend>>,
    ) -> Self {
        Runtime {
            backends,
            live: Mutex::new(HashMap::new()),
            attempts: AtomicU64::new(0),
        }
    }

    /// The backend of `kind`, or the service's UnsupportedOperationException when this engine
    /// was built without one.
    pub(crate) fn backend(
        &self,
        kind: CustomKeyStoreType,
    ) -> Result<&Arc<dyn CustomKeyStoreBackend>> {
        self.backends.get(&kind).ok_or_else(|| {
            Error::UnsupportedOperation(match kind {
                CustomKeyStoreType::AwsCloudhsm => "custom key stores of type AWS_CLOUDHSM need a \
                     PKCS#11 backend, and this engine was built without one"
                    .to_owned(),
                CustomKeyStoreType::ExternalKeyStore => "custom key stores of type \
                     EXTERNAL_KEY_STORE need an XKS proxy client (keyplane_xks::XksBackend), and \
                     this engine was built without one"
                    .to_owned(),
            })
        })
    }

    pub(crate) fn lock(&self) -> Result<MutexGuard<'_, HashMap<String, Live>>> {
        self.live
            .lock()
            .map_err(|_| Error::Internal("custom key store table lock poisoned".into()))
    }

    /// The store's connection state and error code (DISCONNECTED when never connected).
    pub(crate) fn state(
        &self,
        store_id: &str,
    ) -> Result<(ConnectionState, Option<ConnectionErrorCode>)> {
        Ok(self
            .lock()?
            .get(store_id)
            .map_or((ConnectionState::Disconnected, None), |l| {
                (l.state, l.error)
            }))
    }

    /// Marks store `store_id` CONNECTING for a new connection attempt, whose number it returns.
    pub(crate) fn begin_connecting(&self, store_id: &str) -> Result<u64> {
        let attempt = self.attempts.fetch_add(1, Ordering::Relaxed) + 1;
        self.lock()?.insert(
            store_id.to_owned(),
            Live {
                state: ConnectionState::Connecting,
                error: None,
                connection: None,
                attempt,
            },
        );
        Ok(attempt)
    }

    /// Applies the outcome of connection attempt `attempt` if the store is still CONNECTING
    /// under it (not disconnected, deleted or connected by another attempt meanwhile). An outcome
    /// not applied is given back, for the caller to drop (a connection with it) with no lock held.
    pub(crate) fn finish_connecting(
        &self,
        store_id: &str,
        attempt: u64,
        mut outcome: Live,
    ) -> Result<std::result::Result<(), Live>> {
        let mut live = self.lock()?;
        let current = live
            .get(store_id)
            .is_some_and(|l| l.state == ConnectionState::Connecting && l.attempt == attempt);
        if !current {
            return Ok(Err(outcome));
        }
        outcome.attempt = attempt;
        live.insert(store_id.to_owned(), outcome);
        Ok(Ok(()))
    }

    /// The live connection of a CONNECTED store (in a copy of the process made by `fork`, its
    /// parent's, which [`OwnedConnection::get`] refuses).
    pub(crate) fn connection(&self, store_id: &str) -> Option<OwnedConnection> {
        let live = self.live.lock().ok()?;
        live.get(store_id)
            .filter(|l| l.state == ConnectionState::Connected)
            .and_then(|l| l.connection.clone())
    }
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("backends", &self.backends.keys().collect::<Vec<_>>())
            .finish()
    }
}
