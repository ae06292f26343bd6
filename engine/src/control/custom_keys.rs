//! CreateKey in a custom key store: the request's rules (as the service's) and the backing key.

use uuid::Uuid;

use super::ControlState;
use crate::custom_key_store::{ConnectionState, CustomKeyStoreType};
use crate::engine::Engine;
use crate::error::{validation, Error, Result};
use crate::key::{KeySpec, KeyUsage, Origin};

/// Checks the custom key store members of a CreateKey request; the store id when the key is to
/// be created in a custom key store.
pub(crate) fn check_request<'a>(
    origin: Origin,
    spec: KeySpec,
    usage: KeyUsage,
    multi_region: bool,
    custom_key_store_id: Option<&'a str>,
    xks_key_id: Option<&str>,
) -> Result<Option<&'a str>> {
    let in_store = matches!(origin, Origin::AwsCloudhsm | Origin::ExternalKeyStore);
    match (in_store, custom_key_store_id) {
        (false, None) => {
            if xks_key_id.is_some() {
                return Err(validation!(
                    "XksKeyId is valid only with Origin EXTERNAL_KEY_STORE and a CustomKeyStoreId"
                ));
            }
            return Ok(None);
        }
        (false, Some(_)) => {
            return Err(validation!(
                "CustomKeyStoreId needs Origin AWS_CLOUDHSM or EXTERNAL_KEY_STORE, not {origin}"
            ))
        }
        (true, None) => {
            return Err(validation!(
                "Origin {origin} needs a CustomKeyStoreId: the custom key store to create the key \
                 in"
            ))
        }
        (true, Some(_)) => {}
    }
    if spec != KeySpec::SymmetricDefault || usage != KeyUsage::EncryptDecrypt {
        return Err(Error::UnsupportedOperation(format!(
            "keys in a custom key store are SYMMETRIC_DEFAULT keys for ENCRYPT_DECRYPT only, not \
             {spec} for {usage}"
        )));
    }
    if multi_region {
        return Err(Error::UnsupportedOperation(
            "multi-Region keys cannot be created in a custom key store".into(),
        ));
    }
    match (origin, xks_key_id) {
        (Origin::ExternalKeyStore, None) => Err(validation!(
            "Origin EXTERNAL_KEY_STORE needs an XksKeyId: the external key to use"
        )),
        (Origin::AwsCloudhsm, Some(_)) => Err(validation!(
            "XksKeyId is valid only with Origin EXTERNAL_KEY_STORE"
        )),
        _ => Ok(custom_key_store_id),
    }
}

impl Engine {
    /// Makes (PKCS#11) or checks (XKS) the backing key of new key `key_id` in store `store_id`,
    /// which must be CONNECTED and of the origin's type; returns the store's id and the backing
    /// key's id.
    pub(crate) fn create_backing_key(
        &self,
        state: &ControlState,
        store_id: &str,
        origin: Origin,
        key_id: &Uuid,
        xks_key_id: Option<&str>,
    ) -> Result<(String, String)> {
        let store = state.custom_key_store(store_id)?;
        let wanted = match origin {
            Origin::ExternalKeyStore => CustomKeyStoreType::ExternalKeyStore,
            _ => CustomKeyStoreType::AwsCloudhsm,
        };
        if store.store_type != wanted {
            return Err(Error::UnsupportedOperation(format!(
                "custom key store '{}' is of type {}; keys with origin {origin} need one of type \
                 {wanted}",
                store.id, store.store_type
            )));
        }
        let runtime = &self.inner.custom_key_stores;
        runtime.backend(wanted)?;
        let (current, _) = runtime.state(&store.id)?;
        let connection = runtime
            .connection(&store.id)
            .filter(|_| current == ConnectionState::Connected)
            .ok_or_else(|| {
                Error::CustomKeyStoreInvalidState(format!(
                    "Custom key store '{}' is {current}; keys can be created in it only while it \
                     is CONNECTED.",
                    store.id
                ))
            })?;
        if wanted == CustomKeyStoreType::ExternalKeyStore {
            let xks_key_id = xks_key_id.ok_or_else(|| {
                validation!("Origin EXTERNAL_KEY_STORE needs an XksKeyId: the external key to use")
            })?;
            if let Some(other) = state.keys.values().find(|r| {
                r.custom_key_store
                    .as_ref()
                    .is_some_and(|c| c.store_id == store.id && c.backing_key_id == xks_key_id)
            }) {
                return Err(Error::XksKeyAlreadyInUse(format!(
                    "The external key '{xks_key_id}' is already associated with KMS key '{}' in \
                     external key store '{}'.",
                    other.id, store.id
                )));
            }
            // GetKeyMetadata: the proxy knows the key, and it is an enabled AES-256 key that
            // encrypts and decrypts (the backend maps each failure to the service's exception).
            connection.check_backing_key(xks_key_id)?;
            return Ok((store.id.clone(), xks_key_id.to_owned()));
        }
        let backing = connection.create_backing_key(key_id).map_err(|e| match e {
            Error::CustomKeyStoreInvalidState(_)
            | Error::CloudHsmClusterInvalidConfiguration(_) => e,
            other => Error::CloudHsmClusterInvalidConfiguration(format!(
                "the HSM of custom key store '{}' could not create the key: {}",
                store.id,
                other.message()
            )),
        })?;
        Ok((store.id.clone(), backing))
    }
}
