//! A root key from any function: the seam for providers that live elsewhere (an HSM over
//! PKCS#11, an external key manager, a callback from C through the FFI crate).

use keyplane::{Error, Result};

use super::{NewRootKey, RootKey, RootKeyProvider, RAW_KIND};

type KeyFn = dyn Fn() -> Result<RootKey> + Send + Sync;

/// A provider that asks a function for the raw 256-bit root key each time it is needed.
pub struct CallbackProvider {
    name: String,
    key: Box<KeyFn>,
}

impl CallbackProvider {
    /// A provider called `name` (for messages) that gets the key from `key`.
    pub fn new(
        name: impl Into<String>,
        key: impl Fn() -> Result<RootKey> + Send + Sync + 'static,
    ) -> Self {
        CallbackProvider {
            name: name.into(),
            key: Box::new(key),
        }
    }
}

impl std::fmt::Debug for CallbackProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallbackProvider")
            .field("name", &self.name)
            .finish()
    }
}

impl RootKeyProvider for CallbackProvider {
    fn kind(&self) -> &str {
        RAW_KIND
    }

    fn describe(&self) -> String {
        self.name.clone()
    }

    fn create(&self) -> Result<NewRootKey> {
        Ok(NewRootKey {
            key: (self.key)()?,
            params: String::new(),
        })
    }

    fn open(&self, _params: &str, accept: &dyn Fn(&RootKey) -> bool) -> Result<RootKey> {
        let key = (self.key)()?;
        if accept(&key) {
            Ok(key)
        } else {
            Err(Error::AccessDenied(format!(
                "the root key from {} does not open this store",
                self.name
            )))
        }
    }
}
