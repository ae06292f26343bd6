//! A durable key store for keyplane on SQLite.
//!
//! [`SqliteKeyStore`] implements the engine's [`keyplane::store::KeyStore`]: keys, aliases and
//! every version of key material, in one SQLite database in a data directory, written in WAL mode
//! with full synchronous commits (a change is acknowledged only once it is on disk).
//!
//! - Key material never rests unencrypted: each version is wrapped with AES-256-GCM under a key
//!   derived from the store's *root key*, with the key id, version and key spec bound as associated
//!   data. Root keys come from a [`root_key::RootKeyProvider`]: a key file, an environment
//!   variable, a passphrase (argon2id), or anything else that implements the trait.
//! - Each wrapped version is kept in two independent copies, each with its own checksum and nonce.
//!   A damaged copy is repaired from the good one when read, and the repair recorded; a version
//!   with no good copy makes its key (and only its key) Unavailable.
//! - A generation counter, authenticated by the root key and mirrored in a witness file, detects a
//!   store rolled back to an older copy; a contents digest sealed with it (see the `contents`
//!   module) binds every key record, alias, store secret and event to it, so a single row put
//!   back from an earlier state, dropped or moved is detected too.
//! - Online [backup](SqliteKeyStore::backup), [restore](SqliteKeyStore::restore),
//!   [verify](SqliteKeyStore::verify) and [root key rotation](SqliteKeyStore::rotate_root_key).
//! - Store secrets ([`put_secret`](SqliteKeyStore::put_secret),
//!   [`get_or_create_secret`](SqliteKeyStore::get_or_create_secret)): small named secrets that
//!   belong with the store, such as the audit signing key, wrapped and kept like key material.
//! - Several processes may share a store; [`KeyStore::generation`](keyplane::store::KeyStore) is
//!   one indexed read, so engines notice each other's changes cheaply.
//!
//! `docs/store.md` describes the file layout, schema, wrapping format and write ordering.
//!
//! ```no_run
//! use std::sync::Arc;
//! use keyplane::{Engine, LockPolicy};
//! use keyplane_sqlite::root_key::KeyFileProvider;
//! use keyplane_sqlite::{SqliteKeyStore, StoreOptions};
//!
//! let provider = Arc::new(KeyFileProvider::new("keyplane-data/root.key", LockPolicy::Require));
//! let store = SqliteKeyStore::init("keyplane-data", provider, StoreOptions::default())?;
//! let engine = Engine::builder().store(Arc::new(store)).build()?;
//! # Ok::<(), keyplane::Error>(())
//! ```
#![deny(unsafe_code)]
#![warn(missing_debug_implementations)]

mod backup;
mod change_log;
pub mod contents;
mod copies;
pub mod custom_key_stores;
mod errors;
mod events;
mod files;
mod handle;
mod layout;
mod meta;
mod migrate;
mod records;
pub mod root_key;
mod rotation;
mod schema;
pub mod sealing;
mod secrets;
mod store;
mod verify;
pub mod witness;

pub use backup::{BackupReport, RestoreReport};
pub use events::StoreEvent;
pub use handle::{SqliteKeyStore, StoreOptions};
pub use layout::{StorePaths, DB_FILE, ROOT_KEY_FILE, WITNESS_FILE};
pub use rotation::RootKeyRotationReport;
pub use schema::{APPLICATION_ID, SCHEMA_VERSION};
pub use sealing::Damage;
pub use secrets::{check_name as check_secret_name, SecretCopyProblem, MAX_SECRET_NAME};
pub use verify::{CopyProblem, LostVersion, VerifyReport};
