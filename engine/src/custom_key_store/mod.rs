//! Custom key stores: keys whose material stays in an HSM (reached through PKCS#11, the
//! service's AWS_CLOUDHSM kind) or behind an XKS proxy (EXTERNAL_KEY_STORE), with the service's
//! six operations (Create, Connect, Disconnect, Delete, Update, DescribeCustomKeyStores).
//!
//! - [`definition`]: what a store is (id, name, type, members), its connection state and errors;
//! - [`backend`]: the traits an adapter crate implements (`keyplane_pkcs11` for PKCS#11);
//! - `runtime`: which stores are connected now;
//! - `operations`: the six operations and GenerateRandom from a store;
//! - [`xks`]: the external key store members' checks and uniqueness rule.
//!
//! The design and its security argument are in `docs/custom-key-stores.md`.

pub mod backend;
pub mod definition;
mod operations;
pub(crate) mod runtime;
pub mod xks;

pub use backend::{BackingKeyId, ConnectFailure, Connection, CustomKeyStoreBackend};
pub use definition::{
    ConnectionErrorCode, ConnectionState, CustomKeyStoreRecord, CustomKeyStoreType,
    CustomKeyStoresListEntry, XksProxyConfiguration, XksProxySettings,
};
pub use operations::{CreateCustomKeyStoreRequest, UpdateCustomKeyStoreRequest};
pub use xks::XksProxyCredential;
