//! The six custom key store operations, and GenerateRandom from a store's own generator.

use std::sync::Arc;

use super::backend::ConnectFailure;
use super::definition::{
    self, ConnectionState, CustomKeyStoreRecord, CustomKeyStoreType, CustomKeyStoresListEntry,
    XksProxyConfiguration, XksProxySettings,
};
use super::runtime::{Live, OwnedConnection};
use super::xks::XksProxyCredential;
use crate::access::Action;
use crate::control::page::Page;
use crate::control::working_copy::ControlState;
use crate::engine::Engine;
use crate::error::{validation, Error, Result};
use crate::locked_memory::LockedBytes;
use crate::secret::SecretBytes;
use crate::store::StoreChange;
use crate::validation::Value;
use crate::validation::{self};

/// Most custom key stores an engine holds (the service's per-account quota).
pub const MAX_CUSTOM_KEY_STORES: usize = 10;

/// A CreateCustomKeyStore request. The type is AWS_CLOUDHSM when absent, as the service's.
#[derive(Debug, Default)]
pub struct CreateCustomKeyStoreRequest {
    pub custom_key_store_name: String,
    pub custom_key_store_type: Option<CustomKeyStoreType>,
    /// AWS_CLOUDHSM: the configured HSM (PKCS#11 module and token) to use.
    pub cloud_hsm_cluster_id: Option<String>,
    /// AWS_CLOUDHSM: the trust anchor certificate (PEM).
    pub trust_anchor_certificate: Option<String>,
    /// AWS_CLOUDHSM: the crypto user's password (the token's user PIN).
    pub key_store_password: Option<SecretBytes>,
    /// EXTERNAL_KEY_STORE: `https://<host>[:<port>]` of the XKS proxy.
    pub xks_proxy_uri_endpoint: Option<String>,
    /// EXTERNAL_KEY_STORE: `[/<prefix>]/kms/xks/v1`.
    pub xks_proxy_uri_path: Option<String>,
    /// EXTERNAL_KEY_STORE: `PUBLIC_ENDPOINT` (`VPC_ENDPOINT_SERVICE` is refused: keyplane has no
    /// VPC to reach an endpoint service from).
    pub xks_proxy_connectivity: Option<String>,
    /// EXTERNAL_KEY_STORE with VPC_ENDPOINT_SERVICE connectivity: refused.
    pub xks_proxy_vpc_endpoint_service_name: Option<String>,
    /// EXTERNAL_KEY_STORE: the credential keyplane signs its proxy requests with.
    pub xks_proxy_authentication_credential: Option<XksProxyCredential>,
}

/// An UpdateCustomKeyStore request: every field but the id optional.
#[derive(Debug, Default)]
pub struct UpdateCustomKeyStoreRequest {
    pub custom_key_store_id: String,
    pub new_custom_key_store_name: Option<String>,
    pub key_store_password: Option<SecretBytes>,
    pub cloud_hsm_cluster_id: Option<String>,
    /// EXTERNAL_KEY_STORE: a new proxy endpoint, URI path, connectivity or credential (only
    /// while DISCONNECTED).
    pub xks_proxy_uri_endpoint: Option<String>,
    pub xks_proxy_uri_path: Option<String>,
    pub xks_proxy_connectivity: Option<String>,
    pub xks_proxy_vpc_endpoint_service_name: Option<String>,
    pub xks_proxy_authentication_credential: Option<XksProxyCredential>,
}

/// The live state a connection attempt leaves: CONNECTED with its connection, or FAILED with
/// the backend's code (and its message logged).
fn connection_outcome(
    record: &CustomKeyStoreRecord,
    result: std::result::Result<Arc<dyn super::Connection>, ConnectFailure>,
) -> Live {
    match result {
        Ok(connection) => Live {
            state: ConnectionState::Connected,
            error: None,
            connection: Some(OwnedConnection::new(connection)),
            attempt: 0,
        },
        Err(failure) => {
            eprintln!(
                "keyplane: custom key store {} failed to connect ({}): {}",
                record.id, failure.code, failure.message
            );
            Live {
                state: ConnectionState::Failed,
                error: Some(failure.code),
                connection: None,
                attempt: 0,
            }
        }
    }
}

fn invalid_state(id: &str, state: ConnectionState, operation: &str) -> Error {
    Error::CustomKeyStoreInvalidState(format!(
        "Custom key store '{id}' is {state}; {operation} is not valid in this connection state."
    ))
}

fn password(secret: &Option<SecretBytes>) -> Result<Option<&str>> {
    secret
        .as_ref()
        .map(|s| {
            std::str::from_utf8(s.expose())
                .map_err(|_| validation!("keyStorePassword must be UTF-8 text"))
        })
        .transpose()
}

impl ControlState {
    /// The definition of store `id`, or the service's CustomKeyStoreNotFoundException.
    pub(crate) fn custom_key_store(&self, id: &str) -> Result<&CustomKeyStoreRecord> {
        self.custom_key_stores
            .get(id)
            .ok_or_else(|| definition::not_found(id))
    }

    /// How many keys the store holds (keys pending deletion included, as the service counts).
    pub(crate) fn keys_in_store(&self, id: &str) -> usize {
        self.keys
            .values()
            .filter(|r| {
                r.custom_key_store
                    .as_ref()
                    .is_some_and(|c| c.store_id == id)
            })
            .count()
    }

    fn check_name_free(&self, name: &str, except: Option<&str>) -> Result<()> {
        if self
            .custom_key_stores
            .values()
            .any(|s| s.name == name && Some(s.id.as_str()) != except)
        {
            return Err(Error::CustomKeyStoreNameInUse(format!(
                "A custom key store named '{name}' already exists in this account and Region."
            )));
        }
        Ok(())
    }

    fn check_cluster_free(&self, cluster: &str, except: Option<&str>) -> Result<()> {
        if let Some(other) = self.custom_key_stores.values().find(|s| {
            s.cloud_hsm_cluster_id.as_deref() == Some(cluster) && Some(s.id.as_str()) != except
        }) {
            return Err(Error::CloudHsmClusterInUse(format!(
                "The CloudHSM cluster '{cluster}' is already associated with custom key store \
                 '{}'.",
                other.id
            )));
        }
        Ok(())
    }
}

impl Engine {
    /// CreateCustomKeyStore: records a store (DISCONNECTED) and returns its id.
    pub fn create_custom_key_store(&self, request: CreateCustomKeyStoreRequest) -> Result<String> {
        self.audited(Action::CreateCustomKeyStore, None, || {
            let password = password(&request.key_store_password)?;
            let r = &request;
            validation::check_request(
                Action::CreateCustomKeyStore,
                &[
                    (
                        "CustomKeyStoreName",
                        r.custom_key_store_name.as_str().into(),
                    ),
                    (
                        "CloudHsmClusterId",
                        r.cloud_hsm_cluster_id.as_deref().into(),
                    ),
                    (
                        "TrustAnchorCertificate",
                        r.trust_anchor_certificate.as_deref().into(),
                    ),
                    ("KeyStorePassword", password.into()),
                    // XksProxyUriEndpoint: checked by `xks::check_endpoint` (the model's pattern
                    // and an optional port).
                    ("XksProxyUriPath", r.xks_proxy_uri_path.as_deref().into()),
                    (
                        "XksProxyVpcEndpointServiceName",
                        r.xks_proxy_vpc_endpoint_service_name.as_deref().into(),
                    ),
                ],
            )?;
            let kind = request
                .custom_key_store_type
                .unwrap_or(CustomKeyStoreType::AwsCloudhsm);
            let missing = |member: &str| {
                validation!("{member} is required for a custom key store of type {kind}")
            };
            let (cluster, anchor, xks, secret) = match kind {
                CustomKeyStoreType::AwsCloudhsm => {
                    if request.xks_proxy_uri_endpoint.is_some()
                        || request.xks_proxy_uri_path.is_some()
                        || request.xks_proxy_connectivity.is_some()
                        || request.xks_proxy_vpc_endpoint_service_name.is_some()
                        || request.xks_proxy_authentication_credential.is_some()
                    {
                        return Err(validation!(
                            "the XksProxy* members apply only to custom key stores of type \
                             EXTERNAL_KEY_STORE"
                        ));
                    }
                    (
                        Some(
                            request
                                .cloud_hsm_cluster_id
                                .clone()
                                .ok_or_else(|| missing("CloudHsmClusterId"))?,
                        ),
                        Some(
                            request
                                .trust_anchor_certificate
                                .clone()
                                .ok_or_else(|| missing("TrustAnchorCertificate"))?,
                        ),
                        None,
                        password.ok_or_else(|| missing("KeyStorePassword"))?,
                    )
                }
                CustomKeyStoreType::ExternalKeyStore => {
                    if request.cloud_hsm_cluster_id.is_some()
                        || request.trust_anchor_certificate.is_some()
                        || request.key_store_password.is_some()
                    {
                        return Err(validation!(
                            "CloudHsmClusterId, TrustAnchorCertificate and KeyStorePassword apply \
                             only to custom key stores of type AWS_CLOUDHSM"
                        ));
                    }
                    let connectivity = request
                        .xks_proxy_connectivity
                        .clone()
                        .unwrap_or_else(|| super::xks::PUBLIC_ENDPOINT.to_owned());
                    super::xks::check_connectivity(
                        &connectivity,
                        request.xks_proxy_vpc_endpoint_service_name.as_deref(),
                    )?;
                    let endpoint = request
                        .xks_proxy_uri_endpoint
                        .clone()
                        .ok_or_else(|| missing("XksProxyUriEndpoint"))?;
                    super::xks::check_endpoint(&endpoint)?;
                    let credential = request
                        .xks_proxy_authentication_credential
                        .as_ref()
                        .ok_or_else(|| missing("XksProxyAuthenticationCredential"))?;
                    let secret = super::xks::check_credential(credential)?;
                    let settings = XksProxySettings {
                        uri_endpoint: endpoint,
                        uri_path: request
                            .xks_proxy_uri_path
                            .clone()
                            .ok_or_else(|| missing("XksProxyUriPath"))?,
                        access_key_id: credential.access_key_id.clone(),
                        connectivity,
                    };
                    (None, None, Some(settings), secret)
                }
            };
            self.authorize_account(Action::CreateCustomKeyStore)?;
            let backend = Arc::clone(self.inner.custom_key_stores.backend(kind)?);
            self.control_retrying(|state| {
                state.check_name_free(&request.custom_key_store_name, None)?;
                if let Some(cluster) = &cluster {
                    state.check_cluster_free(cluster, None)?;
                }
                if let Some(proxy) = &xks {
                    state.check_xks_uri_free(proxy, None)?;
                }
                if state.custom_key_stores.len() >= MAX_CUSTOM_KEY_STORES {
                    return Err(Error::LimitExceeded(format!(
                    "this engine already holds its maximum of {MAX_CUSTOM_KEY_STORES} custom key \
                     stores"
                )));
                }
                let record = CustomKeyStoreRecord {
                    id: definition::new_id()?,
                    name: request.custom_key_store_name.clone(),
                    store_type: kind,
                    cloud_hsm_cluster_id: cluster.clone(),
                    trust_anchor_certificate: anchor.clone(),
                    xks_proxy: xks.clone(),
                    created: self.inner.clock.now(),
                    connect_requested: false,
                };
                backend.check_definition(&record)?;
                let secret =
                    LockedBytes::copy_from(secret.as_bytes(), self.inner.config.lock_policy)?;
                self.put_custom_key_store(state, record.clone(), secret)?;
                Ok(record.id)
            })
        })
    }

    /// Writes a store's definition and secret through the store, then into the working state.
    fn put_custom_key_store(
        &self,
        state: &mut ControlState,
        record: CustomKeyStoreRecord,
        secret: LockedBytes,
    ) -> Result<()> {
        self.commit(
            state,
            &[StoreChange::PutCustomKeyStore {
                record: &record,
                secret: &secret,
            }],
        )?;
        state
            .custom_key_store_secrets
            .insert(record.id.clone(), secret);
        state.custom_key_stores.insert(record.id.clone(), record);
        Ok(())
    }

    /// ConnectCustomKeyStore: connects a DISCONNECTED store (a CONNECTED or CONNECTING one is left
    /// as it is). Like the service's, the call succeeds whether or not the connection does:
    /// DescribeCustomKeyStores then says CONNECTED, or FAILED with its ConnectionErrorCode.
    pub fn connect_custom_key_store(&self, custom_key_store_id: &str) -> Result<()> {
        let members: &[(&str, Value)] = &[("CustomKeyStoreId", custom_key_store_id.into())];
        self.audited_request(Action::ConnectCustomKeyStore, None, members, || {
            self.authorize_account(Action::ConnectCustomKeyStore)?;
            let runtime = &self.inner.custom_key_stores;
            // Under the control-plane lock: the state check, the persisted request, CONNECTING.
            let attempt = self.control_retrying(|state| {
                let mut record = state.custom_key_store(custom_key_store_id)?.clone();
                let (current, _) = runtime.state(&record.id)?;
                match current {
                    ConnectionState::Connected | ConnectionState::Connecting => return Ok(None),
                    ConnectionState::Failed | ConnectionState::Disconnecting => {
                        return Err(invalid_state(&record.id, current, "ConnectCustomKeyStore"))
                    }
                    ConnectionState::Disconnected => {}
                }
                let backend = Arc::clone(runtime.backend(record.store_type)?);
                record.connect_requested = true;
                let stored = self.stored_secret(state, &record.id)?;
                self.put_custom_key_store(state, record.clone(), stored)?;
                let secret = self.stored_secret(state, &record.id)?;
                let attempt = runtime.begin_connecting(&record.id)?;
                Ok(Some((record, secret, backend, attempt)))
            })?;
            let Some((record, secret, backend, attempt)) = attempt else {
                return Ok(());
            };
            // With the lock released: the HSM's login or the proxy's GetHealthStatus, which may
            // take as long as the backend's timeouts while every other call goes on.
            let outcome = connection_outcome(&record, backend.connect(&record, &secret));
            drop(secret);
            // Applied under the control-plane lock, as every change of the live table (a copy made
            // by `fork` is refused there), and only if the store is still CONNECTING under this
            // attempt; then the store's keys are published.
            let mut outcome = Some(outcome);
            let mut unapplied = None;
            let published = self.control_retrying(|state| {
                if let Some(outcome) = outcome.take() {
                    unapplied = runtime
                        .finish_connecting(&record.id, attempt, outcome)?
                        .err();
                }
                match unapplied {
                    None => self.reload(state),
                    Some(_) => Ok(()),
                }
            });
            // The control plane refused before the outcome was applied (its store failing):
            // applied all the same, so that the store does not stay CONNECTING. Not in a copy
            // made by `fork`, refused because a thread it does not have held the lock: that thread
            // may have held the live table too.
            if let Some(outcome) = outcome.filter(|_| !self.inner.built_in.is_elsewhere()) {
                unapplied = runtime
                    .finish_connecting(&record.id, attempt, outcome)?
                    .err();
            }
            drop(unapplied);
            published
        })
    }

    fn stored_secret(&self, state: &ControlState, id: &str) -> Result<LockedBytes> {
        let secret = state
            .custom_key_store_secrets
            .get(id)
            .ok_or_else(|| Error::Internal(format!("custom key store {id} has no secret")))?;
        LockedBytes::copy_from(secret.bytes(), self.inner.config.lock_policy)
    }

    /// Connects `record` now and publishes its keys, usable again when it connected. The backend
    /// is called with the control plane locked: this is for an engine's start and for following
    /// another engine's connection through a shared store; ConnectCustomKeyStore itself connects
    /// with the lock released.
    pub(crate) fn connect_now(
        &self,
        state: &mut ControlState,
        record: &CustomKeyStoreRecord,
    ) -> Result<()> {
        let runtime = &self.inner.custom_key_stores;
        let backend = Arc::clone(runtime.backend(record.store_type)?);
        runtime.lock()?.insert(
            record.id.clone(),
            Live {
                state: ConnectionState::Connecting,
                error: None,
                connection: None,
                attempt: 0,
            },
        );
        let live = {
            let secret = state
                .custom_key_store_secrets
                .get(&record.id)
                .ok_or_else(|| Error::Internal("custom key store without secret".into()))?;
            connection_outcome(record, backend.connect(record, secret))
        };
        runtime.lock()?.insert(record.id.clone(), live);
        self.reload(state)
    }

    /// DisconnectCustomKeyStore: drops the connection (and every derived key cached with it); the
    /// store's keys are Unavailable until it connects again.
    pub fn disconnect_custom_key_store(&self, custom_key_store_id: &str) -> Result<()> {
        let members: &[(&str, Value)] = &[("CustomKeyStoreId", custom_key_store_id.into())];
        self.audited_request(Action::DisconnectCustomKeyStore, None, members, || {
            self.authorize_account(Action::DisconnectCustomKeyStore)?;
            self.control_retrying(|state| {
                let mut record = state.custom_key_store(custom_key_store_id)?.clone();
                let (current, _) = self.inner.custom_key_stores.state(&record.id)?;
                if matches!(
                    current,
                    ConnectionState::Disconnected | ConnectionState::Disconnecting
                ) {
                    return Err(invalid_state(
                        &record.id,
                        current,
                        "DisconnectCustomKeyStore",
                    ));
                }
                record.connect_requested = false;
                let secret = self.stored_secret(state, &record.id)?;
                self.put_custom_key_store(state, record.clone(), secret)?;
                self.drop_connection(state, &record.id, None)
            })
        })
    }

    /// Forgets a store's connection: DISCONNECTED, or FAILED with `failure`; republishes.
    fn drop_connection(
        &self,
        state: &mut ControlState,
        id: &str,
        failure: Option<super::ConnectionErrorCode>,
    ) -> Result<()> {
        let old = self.inner.custom_key_stores.lock()?.insert(
            id.to_owned(),
            Live {
                state: if failure.is_some() {
                    ConnectionState::Failed
                } else {
                    ConnectionState::Disconnected
                },
                error: failure,
                connection: None,
                attempt: 0,
            },
        );
        self.reload(state)?;
        // The data plane no longer refers to it: the last references (and sessions) go here.
        drop(old);
        Ok(())
    }

    /// DeleteCustomKeyStore: only a DISCONNECTED store that holds no keys.
    pub fn delete_custom_key_store(&self, custom_key_store_id: &str) -> Result<()> {
        let members: &[(&str, Value)] = &[("CustomKeyStoreId", custom_key_store_id.into())];
        self.audited_request(Action::DeleteCustomKeyStore, None, members, || {
            self.authorize_account(Action::DeleteCustomKeyStore)?;
            self.control_retrying(|state| {
                let id = state.custom_key_store(custom_key_store_id)?.id.clone();
                let (current, _) = self.inner.custom_key_stores.state(&id)?;
                if current != ConnectionState::Disconnected {
                    return Err(invalid_state(&id, current, "DeleteCustomKeyStore"));
                }
                let keys = state.keys_in_store(&id);
                if keys > 0 {
                    return Err(Error::CustomKeyStoreHasCmks(format!(
                    "Custom key store '{id}' contains {keys} KMS key(s); schedule their deletion \
                     and wait for it before deleting the custom key store."
                )));
                }
                self.commit(state, &[StoreChange::DeleteCustomKeyStore(&id)])?;
                state.custom_key_stores.remove(&id);
                state.custom_key_store_secrets.remove(&id);
                self.inner.custom_key_stores.lock()?.remove(&id);
                Ok(())
            })
        })
    }

    /// UpdateCustomKeyStore: a new name at any time but FAILED/CONNECTING/DISCONNECTING; every
    /// other property only while DISCONNECTED, as the service's.
    pub fn update_custom_key_store(&self, request: UpdateCustomKeyStoreRequest) -> Result<()> {
        self.audited(Action::UpdateCustomKeyStore, None, || {
            let password = password(&request.key_store_password)?;
            let r = &request;
            validation::check_request(
                Action::UpdateCustomKeyStore,
                &[
                    ("CustomKeyStoreId", r.custom_key_store_id.as_str().into()),
                    (
                        "NewCustomKeyStoreName",
                        r.new_custom_key_store_name.as_deref().into(),
                    ),
                    ("KeyStorePassword", password.into()),
                    (
                        "CloudHsmClusterId",
                        r.cloud_hsm_cluster_id.as_deref().into(),
                    ),
                    ("XksProxyUriPath", r.xks_proxy_uri_path.as_deref().into()),
                    (
                        "XksProxyVpcEndpointServiceName",
                        r.xks_proxy_vpc_endpoint_service_name.as_deref().into(),
                    ),
                ],
            )?;
            self.authorize_account(Action::UpdateCustomKeyStore)?;
            self.control_retrying(|state| {
                let mut record = state
                    .custom_key_store(&request.custom_key_store_id)?
                    .clone();
                let (current, _) = self.inner.custom_key_stores.state(&record.id)?;
                let xks_change = request.xks_proxy_uri_endpoint.is_some()
                    || request.xks_proxy_uri_path.is_some()
                    || request.xks_proxy_connectivity.is_some()
                    || request.xks_proxy_vpc_endpoint_service_name.is_some()
                    || request.xks_proxy_authentication_credential.is_some();
                let only_name =
                    password.is_none() && request.cloud_hsm_cluster_id.is_none() && !xks_change;
                let allowed = current == ConnectionState::Disconnected
                    || (current == ConnectionState::Connected && only_name);
                if !allowed {
                    return Err(invalid_state(&record.id, current, "UpdateCustomKeyStore"));
                }
                if let Some(name) = &request.new_custom_key_store_name {
                    state.check_name_free(name, Some(&record.id))?;
                    record.name = name.clone();
                }
                if let Some(cluster) = &request.cloud_hsm_cluster_id {
                    if record.store_type != CustomKeyStoreType::AwsCloudhsm {
                        return Err(validation!(
                        "CloudHsmClusterId applies only to custom key stores of type AWS_CLOUDHSM"
                    ));
                    }
                    state.check_cluster_free(cluster, Some(&record.id))?;
                    record.cloud_hsm_cluster_id = Some(cluster.clone());
                    self.inner
                        .custom_key_stores
                        .backend(record.store_type)?
                        .check_definition(&record)?;
                }
                let mut new_secret = password;
                if record.store_type == CustomKeyStoreType::ExternalKeyStore {
                    if password.is_some() {
                        return Err(validation!(
                        "KeyStorePassword applies only to custom key stores of type AWS_CLOUDHSM"
                    ));
                    }
                    if xks_change {
                        new_secret = self.update_xks_settings(state, &mut record, &request)?;
                    }
                } else if xks_change {
                    return Err(validation!(
                        "the XksProxy* members apply only to custom key stores of type \
                     EXTERNAL_KEY_STORE"
                    ));
                }
                let secret = match new_secret {
                    Some(p) => LockedBytes::copy_from(p.as_bytes(), self.inner.config.lock_policy)?,
                    None => self.stored_secret(state, &record.id)?,
                };
                self.put_custom_key_store(state, record, secret)
            })
        })
    }

    /// Applies an UpdateCustomKeyStore's XksProxy* members to `record` (checked as at create,
    /// and against the other stores' URIs); the new credential secret, when one is given.
    fn update_xks_settings<'r>(
        &self,
        state: &ControlState,
        record: &mut CustomKeyStoreRecord,
        request: &'r UpdateCustomKeyStoreRequest,
    ) -> Result<Option<&'r str>> {
        let mut proxy = record
            .xks_proxy
            .clone()
            .ok_or_else(|| Error::Internal("external key store without proxy settings".into()))?;
        if let Some(endpoint) = &request.xks_proxy_uri_endpoint {
            super::xks::check_endpoint(endpoint)?;
            proxy.uri_endpoint = endpoint.clone();
        }
        if let Some(path) = &request.xks_proxy_uri_path {
            proxy.uri_path = path.clone();
        }
        if let Some(connectivity) = &request.xks_proxy_connectivity {
            proxy.connectivity = connectivity.clone();
        }
        super::xks::check_connectivity(
            &proxy.connectivity,
            request.xks_proxy_vpc_endpoint_service_name.as_deref(),
        )?;
        let secret = match &request.xks_proxy_authentication_credential {
            Some(credential) => {
                let secret = super::xks::check_credential(credential)?;
                proxy.access_key_id = credential.access_key_id.clone();
                Some(secret)
            }
            None => None,
        };
        state.check_xks_uri_free(&proxy, Some(&record.id))?;
        record.xks_proxy = Some(proxy);
        self.inner
            .custom_key_stores
            .backend(record.store_type)?
            .check_definition(record)?;
        Ok(secret)
    }

    /// DescribeCustomKeyStores: one store (by id or by name, not both) or all, in id order,
    /// `limit` (1–1000, default 100) at a time. Checks the health of each connected store it
    /// lists: a store whose HSM went away is FAILED from then on, and its keys Unavailable.
    pub fn describe_custom_key_stores(
        &self,
        custom_key_store_id: Option<&str>,
        custom_key_store_name: Option<&str>,
        limit: Option<u32>,
        marker: Option<&str>,
    ) -> Result<Page<CustomKeyStoresListEntry>> {
        let members: &[(&str, Value)] = &[
            ("CustomKeyStoreId", custom_key_store_id.into()),
            ("CustomKeyStoreName", custom_key_store_name.into()),
            ("Limit", limit.into()),
            ("Marker", marker.into()),
        ];
        self.audited_request(Action::DescribeCustomKeyStores, None, members, || {
            if custom_key_store_id.is_some() && custom_key_store_name.is_some() {
                return Err(validation!(
                    "give either CustomKeyStoreId or CustomKeyStoreName, not both"
                ));
            }
            let limit = crate::control::page::limit(limit, 100, 1000)?;
            self.authorize_account(Action::DescribeCustomKeyStores)?;
            let select = |state: &ControlState| -> Result<Vec<CustomKeyStoreRecord>> {
                let selected: Vec<CustomKeyStoreRecord> = state
                    .custom_key_stores
                    .values()
                    .filter(|s| custom_key_store_id.is_none_or(|id| s.id == id))
                    .filter(|s| custom_key_store_name.is_none_or(|name| s.name == name))
                    .cloned()
                    .collect();
                if selected.is_empty() {
                    if let Some(what) = custom_key_store_id.or(custom_key_store_name) {
                        return Err(definition::not_found(what));
                    }
                }
                Ok(selected)
            };
            // The health checks reach the HSM or the XKS proxy, which may be slow or never
            // answer: the stores' live connections are taken under the control-plane lock, asked
            // with it released (so that other keys' control-plane and data-plane calls go on),
            // and a failure applied under the lock again only if the store still has the very
            // connection that failed (one reconnected or dropped meanwhile is left as it is).
            let checks: Vec<(String, OwnedConnection)> = self.control_retrying(|state| {
                Ok(select(state)?
                    .into_iter()
                    .filter_map(|record| {
                        let connection = self.inner.custom_key_stores.connection(&record.id)?;
                        Some((record.id, connection))
                    })
                    .collect())
            })?;
            let failures: Vec<(String, OwnedConnection, ConnectFailure)> = checks
                .into_iter()
                .filter_map(|(id, connection)| {
                    // In a copy of the process made by `fork` the connection is the parent's:
                    // not asked.
                    let health = connection.get(&id, Error::Internal).ok()?.health();
                    health.err().map(|failure| (id, connection, failure))
                })
                .collect();
            self.control_retrying(|state| {
                for (id, checked, failure) in &failures {
                    self.apply_health_failure(state, id, checked, failure)?;
                }
                let selected = select(state)?;
                let mut entries = Vec::with_capacity(selected.len());
                for record in selected {
                    let (connection_state, error) =
                        self.inner.custom_key_stores.state(&record.id)?;
                    entries.push((
                        record.id.clone(),
                        CustomKeyStoresListEntry {
                            custom_key_store_id: record.id,
                            custom_key_store_name: record.name,
                            custom_key_store_type: record.store_type,
                            cloud_hsm_cluster_id: record.cloud_hsm_cluster_id,
                            trust_anchor_certificate: record.trust_anchor_certificate,
                            connection_state,
                            connection_error_code: error
                                .filter(|_| connection_state == ConnectionState::Failed),
                            creation_date: record.created,
                            xks_proxy_configuration: record.xks_proxy.map(|x| {
                                XksProxyConfiguration {
                                    connectivity: x.connectivity,
                                    access_key_id: x.access_key_id,
                                    uri_endpoint: x.uri_endpoint,
                                    uri_path: x.uri_path,
                                }
                            }),
                        },
                    ));
                }
                crate::control::page::paginate(
                    entries.into_iter(),
                    marker,
                    limit,
                    definition::is_id,
                )
            })
        })
    }

    /// A store whose health check failed (asked outside the control-plane lock) becomes FAILED,
    /// unless its connection changed since it was asked: `checked` is the connection that failed,
    /// and only while the store still holds that very connection is it dropped.
    fn apply_health_failure(
        &self,
        state: &mut ControlState,
        id: &str,
        checked: &OwnedConnection,
        failure: &ConnectFailure,
    ) -> Result<()> {
        let current = self.inner.custom_key_stores.connection(id);
        let same = current.as_ref().is_some_and(|c| c.same(checked));
        drop(current);
        if !same {
            return Ok(());
        }
        eprintln!(
            "keyplane: custom key store {id} stopped answering ({}): {}",
            failure.code, failure.message
        );
        self.drop_connection(state, id, Some(failure.code))
    }

    /// After a reload: connects the stores another engine connected (that this one has not tried
    /// yet), drops the connections of stores another engine disconnected or deleted.
    pub(crate) fn follow_custom_key_stores(&self, state: &mut ControlState) -> Result<()> {
        let runtime = &self.inner.custom_key_stores;
        let gone: Vec<String> = runtime
            .lock()?
            .keys()
            .filter(|id| !state.custom_key_stores.contains_key(*id))
            .cloned()
            .collect();
        let mut changed = false;
        for id in gone {
            changed |= runtime.lock()?.remove(&id).is_some();
        }
        let records: Vec<CustomKeyStoreRecord> =
            state.custom_key_stores.values().cloned().collect();
        for record in records {
            let (current, _) = runtime.state(&record.id)?;
            if record.connect_requested
                && current == ConnectionState::Disconnected
                && runtime.backend(record.store_type).is_ok()
            {
                self.connect_now(state, &record)?;
            } else if !record.connect_requested && current != ConnectionState::Disconnected {
                self.drop_connection(state, &record.id, None)?;
            }
        }
        if changed {
            self.reload(state)?;
        }
        Ok(())
    }

    /// Reconnects, at start, every store whose owner left it connected.
    pub(crate) fn reconnect_custom_key_stores(&self) -> Result<()> {
        self.control_retrying(|state| {
            let wanted: Vec<CustomKeyStoreRecord> = state
                .custom_key_stores
                .values()
                .filter(|s| s.connect_requested)
                .cloned()
                .collect();
            for record in wanted {
                if self
                    .inner
                    .custom_key_stores
                    .backend(record.store_type)
                    .is_ok()
                {
                    self.connect_now(state, &record)?;
                }
            }
            Ok(())
        })
    }

    /// GenerateRandom with CustomKeyStoreId: 1 to 1024 bytes from the store's own generator (the
    /// HSM's), which must be connected.
    pub fn generate_random_from_custom_key_store(
        &self,
        custom_key_store_id: &str,
        number_of_bytes: usize,
    ) -> Result<Vec<u8>> {
        self.single(
            crate::operation::Operation::GenerateRandom,
            &[None],
            || {
                serde_json::json!({
                    "numberOfBytes": number_of_bytes,
                    "customKeyStoreId": custom_key_store_id,
                })
            },
            |caller| {
                validation::generate_random(number_of_bytes)?;
                validation::check_request(
                    Action::GenerateRandom,
                    &[("CustomKeyStoreId", custom_key_store_id.into())],
                )?;
                // Without a reload (which an HSM's random bytes do not need), but, like every
                // control-plane lock, never in a copy whose store is its parent's.
                self.store_usable_here()?;
                let connection = {
                    let state = self.lock_control()?;
                    let store = state.custom_key_store(custom_key_store_id)?;
                    if store.store_type == CustomKeyStoreType::ExternalKeyStore {
                        return Err(Error::UnsupportedOperation(format!(
                            "GenerateRandom does not take an external key store: '{}' is of \
                             type EXTERNAL_KEY_STORE",
                            store.id
                        )));
                    }
                    let id = &store.id;
                    let (current, _) = self.inner.custom_key_stores.state(id)?;
                    self.inner
                        .custom_key_stores
                        .connection(id)
                        .ok_or_else(|| invalid_state(id, current, "GenerateRandom"))?
                };
                let connection =
                    connection.get(custom_key_store_id, Error::CustomKeyStoreInvalidState)?;
                self.inner
                    .data
                    .generate_random_with(caller, number_of_bytes, |out| connection.random(out))
            },
        )
    }
}
