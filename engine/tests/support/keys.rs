//! Creating a key of a given spec and usage, for the test files that need several kinds.

use keyplane::{CreateKeyRequest, Engine, KeySpec, KeyUsage};

/// A new key of `spec` and `usage`; its key id.
pub fn key(engine: &Engine, spec: KeySpec, usage: KeyUsage) -> String {
    engine
        .create_key(CreateKeyRequest {
            key_spec: Some(spec),
            key_usage: Some(usage),
            ..Default::default()
        })
        .unwrap()
        .key_id
}
