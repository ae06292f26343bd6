//! One module per command family.

pub mod aliases;
pub mod crypto;
pub mod demo;
pub mod keys;
pub mod store;
