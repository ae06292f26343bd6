//! One way to name a keyplane store, and to open it, shared by the `keyplane` tool, the C ABI and
//! the Python binding (and later the network endpoint), so that every one of them reads the same
//! addresses and environment variables, finds the same root key and writes the same audit log.
//!
//! - [`StoreAddress`]: `sqlite:PATH` (a data directory, as the CLI's) or `memory:` (in-process,
//!   for tests); [`StoreAddress::from_env`] reads `KEYPLANE_STORE` (a full address), else
//!   `KEYPLANE_HOME` (a data directory), else `./keyplane-data`.
//! - [`RootKeySource`]: a key file (0600), an environment variable, an argon2id passphrase, or a
//!   caller's [`RootKeyProvider`]; [`RootKeySource::from_env`] picks one as the CLI does.
//! - [`open`]: opens the store, creating it (with a new root key file, mode 0600) unless
//!   [`OpenOptions::open_only`]; [`Opened::engine`] starts an engine on it with the audit log the
//!   CLI keeps (`<data dir>/audit/audit.log`, digests signed by the store's audit signing key),
//!   following other processes' changes every [`DEFAULT_SCHEDULER_INTERVAL`] (1 s) unless
//!   [`OpenOptions::scheduler_interval`] says otherwise.
//! - Every failure is an [`OpenError`] whose [`ErrorKind`] says which (a wrong root key, a missing
//!   store, a read-only directory, a newer schema, a damaged or rolled-back store, ...), with a
//!   message that names what was tried.
//!
//! ```no_run
//! use keyplane_store_address::{open, OpenOptions, StoreAddress};
//!
//! let address = StoreAddress::parse("sqlite:./keyplane-data")?;
//! let opened = open(&address, OpenOptions::default())?;
//! let engine = opened.engine(keyplane::Engine::builder())?;
//! # Ok::<(), keyplane_store_address::OpenError>(())
//! ```
#![deny(unsafe_code)]
#![warn(missing_debug_implementations)]

mod address;
pub mod audit;
mod error;
mod open;
mod region;
mod root_key;

pub use address::{StoreAddress, DEFAULT_DATA_DIR, HOME_VAR, STORE_VAR};
pub use audit::{AuditOptions, AuditPaths};
pub use error::{ErrorKind, OpenError};
pub use keyplane_sqlite::root_key::RootKeyProvider;
pub use open::{open, OpenOptions, Opened, StoreEngine, DEFAULT_SCHEDULER_INTERVAL};
pub use region::{with_region_stores, RegionStoreAddress};
pub use root_key::{read_passphrase_file, RootKeySource, ROOT_KEY_FILE_VAR};
