//! A custom key store's definition (what CreateCustomKeyStore records and DescribeCustomKeyStores
//! answers), its connection state and connection error code, and its id.

use serde::{Deserialize, Serialize};

use crate::clock::Timestamp;
use crate::crypto::random;
use crate::error::{Error, Result};
use crate::key::spec::service_enum;

service_enum! {
    /// The kind of a custom key store.
    CustomKeyStoreType as "CustomKeyStoreType" at "CustomKeyStoreType" {
        /// An HSM key store: keyplane reaches the HSM through a PKCS#11 module.
        AwsCloudhsm = "AWS_CLOUDHSM",
        /// An external key store, reached through an XKS proxy.
        ExternalKeyStore = "EXTERNAL_KEY_STORE",
    }
}

service_enum! {
    /// Whether keyplane is connected to a custom key store's HSM or proxy.
    ConnectionState as "ConnectionStateType" at "ConnectionState" {
        Connected = "CONNECTED",
        Connecting = "CONNECTING",
        Failed = "FAILED",
        Disconnected = "DISCONNECTED",
        Disconnecting = "DISCONNECTING",
    }
}

service_enum! {
    /// Why a connection failed (DescribeCustomKeyStores' `ConnectionErrorCode`).
    ConnectionErrorCode as "ConnectionErrorCodeType" at "ConnectionErrorCode" {
        InvalidCredentials = "INVALID_CREDENTIALS",
        ClusterNotFound = "CLUSTER_NOT_FOUND",
        NetworkErrors = "NETWORK_ERRORS",
        InternalError = "INTERNAL_ERROR",
        InsufficientCloudhsmHsms = "INSUFFICIENT_CLOUDHSM_HSMS",
        UserLockedOut = "USER_LOCKED_OUT",
        UserNotFound = "USER_NOT_FOUND",
        UserLoggedIn = "USER_LOGGED_IN",
        SubnetNotFound = "SUBNET_NOT_FOUND",
        InsufficientFreeAddressesInSubnet = "INSUFFICIENT_FREE_ADDRESSES_IN_SUBNET",
        XksProxyAccessDenied = "XKS_PROXY_ACCESS_DENIED",
        XksProxyNotReachable = "XKS_PROXY_NOT_REACHABLE",
        XksVpcEndpointServiceNotFound = "XKS_VPC_ENDPOINT_SERVICE_NOT_FOUND",
        XksProxyInvalidResponse = "XKS_PROXY_INVALID_RESPONSE",
        XksProxyInvalidConfiguration = "XKS_PROXY_INVALID_CONFIGURATION",
        XksVpcEndpointServiceInvalidConfiguration = "XKS_VPC_ENDPOINT_SERVICE_INVALID_CONFIGURATION",
        XksProxyTimedOut = "XKS_PROXY_TIMED_OUT",
        XksProxyInvalidTlsConfiguration = "XKS_PROXY_INVALID_TLS_CONFIGURATION",
    }
}

/// Hex digits after `cks-` in a custom key store id (as the service's: `cks-1234567890abcdef0`).
pub const ID_HEX_DIGITS: usize = 17;

/// A new custom key store id: `cks-` and 17 random lowercase hex digits.
pub(crate) fn new_id() -> Result<String> {
    let mut bytes = [0u8; 9];
    random::fill(&mut bytes)?;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    Ok(format!("cks-{}", &hex[..ID_HEX_DIGITS]))
}

/// Whether `id` has the form of a custom key store id (so that a malformed one is not looked up).
pub fn is_id(id: &str) -> bool {
    id.strip_prefix("cks-")
        .is_some_and(|hex| hex.len() == ID_HEX_DIGITS && hex.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// An external key store's proxy settings (the XKS side fills these in; kept here so that the
/// definition has one shape for both kinds).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct XksProxySettings {
    pub uri_endpoint: String,
    pub uri_path: String,
    /// The access key id of the proxy credential (its secret is the store's sealed secret).
    pub access_key_id: String,
    /// `PUBLIC_ENDPOINT` or `VPC_ENDPOINT_SERVICE`.
    pub connectivity: String,
}

/// What keyplane persists about a custom key store, except its secret (the PIN or the proxy
/// credential's secret), which the key store keeps sealed beside it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomKeyStoreRecord {
    pub id: String,
    pub name: String,
    pub store_type: CustomKeyStoreType,
    /// AWS_CLOUDHSM: the configured HSM (a PKCS#11 module and token) the store uses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cloud_hsm_cluster_id: Option<String>,
    /// AWS_CLOUDHSM: the trust anchor certificate as given (PEM).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trust_anchor_certificate: Option<String>,
    /// EXTERNAL_KEY_STORE: the proxy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub xks_proxy: Option<XksProxySettings>,
    pub created: Timestamp,
    /// Whether the owner asked for the store to be connected (ConnectCustomKeyStore, until
    /// DisconnectCustomKeyStore): an engine that starts reconnects such stores.
    pub connect_requested: bool,
}

/// One entry of DescribeCustomKeyStores.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct CustomKeyStoresListEntry {
    pub custom_key_store_id: String,
    pub custom_key_store_name: String,
    pub custom_key_store_type: CustomKeyStoreType,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cloud_hsm_cluster_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trust_anchor_certificate: Option<String>,
    pub connection_state: ConnectionState,
    /// Present only when `connection_state` is FAILED.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connection_error_code: Option<ConnectionErrorCode>,
    pub creation_date: Timestamp,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub xks_proxy_configuration: Option<XksProxyConfiguration>,
}

/// DescribeCustomKeyStores' `XksProxyConfiguration` (never the credential's secret).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct XksProxyConfiguration {
    pub connectivity: String,
    pub access_key_id: String,
    pub uri_endpoint: String,
    pub uri_path: String,
}

/// The service's CustomKeyStoreNotFoundException for `what` (an id or a name).
pub(crate) fn not_found(what: &str) -> Error {
    Error::CustomKeyStoreNotFound(format!(
        "Custom key store '{what}' does not exist in this account and Region."
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_have_the_services_form_and_differ() {
        let a = new_id().unwrap();
        let b = new_id().unwrap();
        assert!(is_id(&a), "{a}");
        assert_eq!(a.len(), 4 + ID_HEX_DIGITS);
        assert_ne!(a, b);
        assert!(!is_id("cks-123"));
        assert!(!is_id("cks-1234567890abcdefg"));
        assert!(!is_id("key-1234567890abcdef0"));
    }
}
