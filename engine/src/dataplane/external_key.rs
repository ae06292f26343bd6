//! A key version held in a custom key store: the store, its backing key, and the live
//! connection that derives with it.

use crate::custom_key_store::backend::Connection;
use crate::custom_key_store::runtime::OwnedConnection;
use crate::error::{Error, Result};

/// A key version whose material stays in a custom key store.
pub(crate) struct ExternalKey {
    pub(crate) store_id: String,
    pub(crate) backing_key: String,
    /// Compared by identity ([`OwnedConnection::same`]); calls go through [`ExternalKey::live`].
    pub(crate) connection: OwnedConnection,
}

impl ExternalKey {
    /// The version of `backing_key` in store `store_id`, through `connection`.
    pub(crate) fn new(store_id: String, backing_key: String, connection: OwnedConnection) -> Self {
        ExternalKey {
            store_id,
            backing_key,
            connection,
        }
    }

    /// The connection, unless this is a copy of the process that made it (made by `fork`):
    /// then KeyUnavailable, naming key `key` (see [`OwnedConnection`]).
    pub(crate) fn live(&self, key: impl std::fmt::Display) -> Result<&dyn Connection> {
        self.connection.get(&self.store_id, |why| {
            Error::KeyUnavailable(format!("{key} is unavailable in this process: {why}"))
        })
    }
}
