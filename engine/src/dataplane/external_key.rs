//! A key version held in a custom key store: the store, its backing key, and the live
//! connection that derives with it.

use std::sync::Arc;

use crate::custom_key_store::backend::Connection;
use crate::error::{Error, Result};

/// A key version whose material stays in a custom key store.
pub(crate) struct ExternalKey {
    pub(crate) store_id: String,
    pub(crate) backing_key: String,
    /// Compared by identity only; calls go through [`ExternalKey::live`].
    pub(crate) connection: Arc<dyn Connection>,
    /// The process the connection was made in.
    made_in: crate::fork::Birthplace,
}

impl ExternalKey {
    /// The version of `backing_key` in store `store_id`, through `connection`, made in this
    /// process.
    pub(crate) fn new(
        store_id: String,
        backing_key: String,
        connection: Arc<dyn Connection>,
    ) -> Self {
        ExternalKey {
            store_id,
            backing_key,
            connection,
            made_in: crate::fork::Birthplace::here(),
        }
    }

    /// The connection, unless this is a copy of the process made by `fork`: a PKCS#11 session
    /// or an XKS proxy's TLS connection is the parent's (PKCS#11 wants `C_Initialize` again in
    /// a child; two processes on one TLS stream corrupt it).
    pub(crate) fn live(&self, key: impl std::fmt::Display) -> Result<&Arc<dyn Connection>> {
        if !self.made_in.is_elsewhere() {
            return Ok(&self.connection);
        }
        let pid = self.made_in.pid();
        Err(Error::KeyUnavailable(format!(
            "{key} is unavailable in this process: its custom key store {}'s connection is \
             process {pid}'s, and this process is a copy of it made by fork; start an engine in \
             this process",
            self.store_id
        )))
    }
}
