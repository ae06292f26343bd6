//! A fleet key store for keyplane on PostgreSQL.
//!
//! [`PostgresKeyStore`] implements the engine's [`keyplane::store::KeyStore`] in one PostgreSQL
//! database that many nodes share: keys, aliases, every version of key material and custom key
//! stores, sealed under the root key exactly as in the SQLite store (whose sealing, contents
//! digest, root key sources and witness format it shares, with keys derived in a PostgreSQL
//! domain so that no row moves between the two kinds of store).
//!
//! - Commits are transactions serialised on the meta row (`SELECT ... FOR UPDATE`): each produces
//!   the next generation, and [`commit_at`](keyplane::store::KeyStore::commit_at) refuses with
//!   [`keyplane::Error::Conflict`] when the store moved on, so no node loses another's update.
//! - A change log names what each generation touched: [`changes_since`]
//!   (keyplane::store::KeyStore::changes_since) gives a node only what changed, and `NOTIFY` in
//!   every commit wakes the subscribed nodes at once.
//! - Every row is sealed with its id, the generation that wrote it and its contents; the contents
//!   digest is sealed with the generation; the change log's rows are sealed with their generation
//!   and its size; a per-node witness remembers the highest generation seen. A database user
//!   without the root key cannot replay, drop or move a row, or roll the database back,
//!   undetected.
//! - The database out of reach answers [`keyplane::Error::StoreUnreachable`] within the connect
//!   and statement timeouts.
//!
//! `docs/store.md` ("Fleet mode on PostgreSQL") describes the design.
#![deny(unsafe_code)]
#![warn(missing_debug_implementations)]

mod address;
mod bulk;
mod changes;
mod errors;
mod material;
mod meta;
mod migrate;
mod notify;
mod pool;
mod records;
pub mod schema;
mod secrets;
mod store;
mod tls;
mod witness;

pub use address::{redact, PgAddress, SslMode};
pub use bulk::MAX_BULK_KEYS;
pub use migrate::{copy_store, CopyReport};
pub use notify::CHANNEL;
pub use pool::Timeouts;
pub use secrets::MAX_SECRET_NAME;
pub use store::{PgOptions, PostgresKeyStore, VerifyReport};
