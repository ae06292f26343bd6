//! One module per command family.

pub mod access;
pub mod aliases;
pub mod asymmetric;
pub mod audit;
pub mod bench;
pub mod credentials;
pub mod crypto;
pub mod demo;
pub mod envelope;
pub mod key_stores;
pub mod keys;
pub mod serve;
pub mod store;
pub mod store_postgres;
pub mod xks;
