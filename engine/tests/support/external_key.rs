#![allow(dead_code)] // Each test crate that includes this helper uses part of it.
//! A key in an external key store, for the engine's tests whose engine has an external key store
//! backend standing for the proxy (`#[path = "support/external_key.rs"] mod external_key;`).

use keyplane::custom_key_store::CustomKeyStoreType;
use keyplane::{
    CreateCustomKeyStoreRequest, CreateKeyRequest, Engine, Origin, SecretBytes, XksProxyCredential,
};

/// A well-formed request for an external key store named `name`, behind a made-up proxy.
pub fn xks_store_request(name: &str) -> CreateCustomKeyStoreRequest {
    CreateCustomKeyStoreRequest {
        custom_key_store_name: name.into(),
        custom_key_store_type: Some(CustomKeyStoreType::ExternalKeyStore),
        xks_proxy_uri_endpoint: Some("https://proxy.example".into()),
        xks_proxy_uri_path: Some("/kms/xks/v1".into()),
        xks_proxy_authentication_credential: Some(XksProxyCredential {
            access_key_id: "AKIAI2SFODNN7EXAMPLE".into(),
            raw_secret_access_key: SecretBytes::from_vec(
                b"FYtE5EFA5FT0mCc3DrGUe2sti527BitkQ0Zr9MO9fvE".to_vec(),
            ),
        }),
        ..Default::default()
    }
}

/// A key (XKS key id `external-1`) in a new, connected external key store named `store_name`; its
/// key id.
pub fn external_key(engine: &Engine, store_name: &str) -> String {
    let store = engine
        .create_custom_key_store(xks_store_request(store_name))
        .unwrap();
    engine.connect_custom_key_store(&store).unwrap();
    engine
        .create_key(CreateKeyRequest {
            origin: Some(Origin::ExternalKeyStore),
            custom_key_store_id: Some(store),
            xks_key_id: Some("external-1".into()),
            ..Default::default()
        })
        .unwrap()
        .key_id
}
