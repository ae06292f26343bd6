//! CreateKey in a custom key store: the request's rules (as the service's) and the backing key.

use uuid::Uuid;

use super::working_copy::ControlState;
use crate::custom_key_store::runtime::OwnedConnection;
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

/// A backing key made or checked with the control-plane lock released, and the connection that
/// did it: the commit uses it only while the store still holds that very connection.
pub(crate) struct PreparedBackingKey {
    pub(crate) key: crate::key::CustomKeyStoreKey,
    connection: OwnedConnection,
}

impl Engine {
    /// The store a new key goes in, checked under the control-plane lock (`state`): it must be
    /// CONNECTED and of the origin's type, and an XksKeyId not yet in use there. Returns the
    /// store's id, its type and its live connection.
    fn backing_store(
        &self,
        state: &ControlState,
        store_id: &str,
        origin: Origin,
        xks_key_id: Option<&str>,
    ) -> Result<(String, CustomKeyStoreType, OwnedConnection)> {
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
        }
        Ok((store.id.clone(), wanted, connection))
    }

    /// Makes (PKCS#11) or checks (XKS: GetKeyMetadata) the backing key of new key `key_id` in
    /// store `store_id`: the store is checked under the control-plane lock, the HSM or proxy is
    /// called with it released (a slow or dead one blocks no other call), and the commit then
    /// takes the result through [`Engine::use_backing_key`].
    pub(crate) fn prepare_backing_key(
        &self,
        store_id: &str,
        origin: Origin,
        key_id: &Uuid,
        xks_key_id: Option<&str>,
    ) -> Result<PreparedBackingKey> {
        let (store, kind, connection) = {
            let state = self.control()?;
            self.backing_store(&state, store_id, origin, xks_key_id)?
        };
        let live = connection.get(&store, Error::CustomKeyStoreInvalidState)?;
        let backing_key_id = if kind == CustomKeyStoreType::ExternalKeyStore {
            let xks_key_id = xks_key_id.unwrap_or_default();
            // GetKeyMetadata: the proxy knows the key, and it is an enabled AES-256 key that
            // encrypts and decrypts (the backend maps each failure to the service's exception).
            live.check_backing_key(xks_key_id)?;
            xks_key_id.to_owned()
        } else {
            live.create_backing_key(key_id).map_err(|e| match e {
                Error::CustomKeyStoreInvalidState(_)
                | Error::CloudHsmClusterInvalidConfiguration(_) => e,
                other => Error::CloudHsmClusterInvalidConfiguration(format!(
                    "the HSM of custom key store '{store}' could not create the key: {}",
                    other.message()
                )),
            })?
        };
        Ok(PreparedBackingKey {
            key: crate::key::CustomKeyStoreKey {
                store_id: store,
                backing_key_id,
            },
            connection,
        })
    }

    /// Under the control-plane lock, at the commit: the prepared backing key, if its store is
    /// still CONNECTED through the connection that made it (and, for XKS, the external key still
    /// unused): the store's checks again, in the state the key is committed to.
    pub(crate) fn use_backing_key(
        &self,
        state: &ControlState,
        prepared: &PreparedBackingKey,
        origin: Origin,
        xks_key_id: Option<&str>,
    ) -> Result<crate::key::CustomKeyStoreKey> {
        let (_, _, connection) =
            self.backing_store(state, &prepared.key.store_id, origin, xks_key_id)?;
        if !connection.same(&prepared.connection) {
            return Err(Error::CustomKeyStoreInvalidState(format!(
                "Custom key store '{}' reconnected while the key was being created; try again.",
                prepared.key.store_id
            )));
        }
        Ok(prepared.key.clone())
    }
}
