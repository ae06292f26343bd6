//! The engine's live view of its custom key stores: the registered backends, and per store its
//! connection state, last error code and live connection. Held in memory only: what persists is
//! the definition and whether its owner asked for it to be connected.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

use super::backend::{Connection, CustomKeyStoreBackend};
use super::definition::{ConnectionErrorCode, ConnectionState, CustomKeyStoreType};
use crate::error::{Error, Result};

/// One store's live state.
pub(crate) struct Live {
    pub(crate) state: ConnectionState,
    pub(crate) error: Option<ConnectionErrorCode>,
    pub(crate) connection: Option<Arc<dyn Connection>>,
}

impl Default for Live {
    fn default() -> Self {
        Live {
            state: ConnectionState::Disconnected,
            error: None,
            connection: None,
        }
    }
}

/// Backends by store type, and live state by store id.
#[derive(Default)]
pub(crate) struct Runtime {
    backends: BTreeMap<CustomKeyStoreType, Arc<dyn CustomKeyStoreBackend>>,
    live: Mutex<HashMap<String, Live>>,
}

impl Runtime {
    pub(crate) fn new(
        backends: BTreeMap<CustomKeyStoreType, Arc<dyn CustomKeyStoreBackend>>,
    ) -> Self {
        Runtime {
            backends,
            live: Mutex::new(HashMap::new()),
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

    /// The live connection of a CONNECTED store.
    pub(crate) fn connection(&self, store_id: &str) -> Option<Arc<dyn Connection>> {
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
