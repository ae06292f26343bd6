//! The engine's raw primitives, for known-answer tests against published vectors (Wycheproof, the
//! RFCs), cross-checks against other implementations and the memory-hygiene audits — named, as
//! aws-lc-rs names its raw-nonce `LessSafeKey`, so that every use says what it is.
//!
//! Here a caller can seal under a nonce of its choosing (`aes_gcm::AesGcmKey::seal`) and build
//! keys from plain byte slices. Nothing in keyplane's bindings, stores or server uses this module
//! (`engine/tests/boundary.rs` checks): they build on [`crate::sealing`], whose keys draw their
//! own nonces, and read secret bytes only through [`crate::SecretAccess`].

pub use crate::crypto::{
    aes_gcm, digest, ecdh, ecdsa_p384, hkdf, hmac, key_import, random, rsa_oaep, signature,
};
