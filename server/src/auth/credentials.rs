//! Access keys: kept in the durable store, each secret sealed under the root key like key
//! material; in process memory for a `memory:` store.
//!
//! (Skeleton: the authentication helper fills this module. The interface below is fixed.)

use std::sync::Arc;

use keyplane::Result;
use keyplane_sqlite::SqliteKeyStore;

/// Where a server's credentials live.
#[derive(Debug, Clone)]
pub struct CredentialStore {
    #[allow(dead_code)]
    store: Option<Arc<SqliteKeyStore>>,
}

/// A credential just created: the only time its secret is shown.
#[derive(Debug)]
pub struct NewCredential {
    pub access_key_id: String,
    /// Shown once; the caller prints it and drops it.
    pub secret_access_key: zeroize::Zeroizing<String>,
    pub principal: String,
}

impl CredentialStore {
    /// Credentials kept in `store` (as store secrets, sealed under its root key).
    pub fn sqlite(store: Arc<SqliteKeyStore>) -> CredentialStore {
        CredentialStore { store: Some(store) }
    }

    /// Credentials kept in this process's memory (for a `memory:` store).
    pub fn in_memory() -> CredentialStore {
        CredentialStore { store: None }
    }

    /// A new active credential for `principal_arn`.
    pub fn create(&self, principal_arn: &str) -> Result<NewCredential> {
        let _ = principal_arn;
        Err(keyplane::Error::Internal("not built yet".into()))
    }
}
