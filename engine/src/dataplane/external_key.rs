//! A key version held in a custom key store: the store, its backing key, and the live
//! connection that derives with it.

use std::sync::Arc;

use crate::custom_key_store::backend::Connection;

/// A key version whose material stays in a custom key store.
pub(crate) struct ExternalKey {
    pub(crate) store_id: String,
    pub(crate) backing_key: String,
    pub(crate) connection: Arc<dyn Connection>,
}
