//! The six custom key store operations (CreateCustomKeyStore, ConnectCustomKeyStore,
//! DisconnectCustomKeyStore, DeleteCustomKeyStore, UpdateCustomKeyStore,
//! DescribeCustomKeyStores); the backends an engine is built with are in the backends module.

use keyplane::{
    CreateCustomKeyStoreRequest, CustomKeyStoresListEntry, SecretBytes,
    UpdateCustomKeyStoreRequest, XksProxyCredential,
};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

use crate::convert::{parse_opt, Out};
use crate::engine::Engine;
use crate::errors::{validation, Result};

fn secret(text: Option<String>) -> Option<SecretBytes> {
    text.map(|t| SecretBytes::from_vec(t.into_bytes()))
}

/// `XksProxyAuthenticationCredential` (`{"AccessKeyId": ..., "RawSecretAccessKey": ...}`).
fn credential(obj: Option<&Bound<'_, PyAny>>) -> Result<Option<XksProxyCredential>> {
    let Some(obj) = obj else { return Ok(None) };
    let dict = obj
        .cast::<PyDict>()
        .map_err(|_| validation("XksProxyAuthenticationCredential must be a dict"))?;
    let member = |name: &str| -> Result<String> {
        dict.get_item(name)
            .ok()
            .flatten()
            .and_then(|v| v.extract::<String>().ok())
            .ok_or_else(|| {
                validation(format!(
                    "XksProxyAuthenticationCredential needs {name} (a string)"
                ))
            })
    };
    Ok(Some(XksProxyCredential {
        access_key_id: member("AccessKeyId")?,
        raw_secret_access_key: SecretBytes::from_vec(member("RawSecretAccessKey")?.into_bytes()),
    }))
}

fn store_entry<'py>(py: Python<'py>, s: &CustomKeyStoresListEntry) -> PyResult<Bound<'py, PyAny>> {
    let proxy = s
        .xks_proxy_configuration
        .as_ref()
        .map(|x| -> PyResult<Bound<'py, PyDict>> {
            Ok(Out::new(py)
                .set("Connectivity", &x.connectivity)?
                .set("AccessKeyId", &x.access_key_id)?
                .set("UriEndpoint", &x.uri_endpoint)?
                .set("UriPath", &x.uri_path)?
                .done())
        })
        .transpose()?;
    Ok(Out::new(py)
        .set("CustomKeyStoreId", &s.custom_key_store_id)?
        .set("CustomKeyStoreName", &s.custom_key_store_name)?
        .set("CustomKeyStoreType", s.custom_key_store_type.as_str())?
        .opt("CloudHsmClusterId", s.cloud_hsm_cluster_id.as_deref())?
        .opt(
            "TrustAnchorCertificate",
            s.trust_anchor_certificate.as_deref(),
        )?
        .set("ConnectionState", s.connection_state.as_str())?
        .opt(
            "ConnectionErrorCode",
            s.connection_error_code.map(|c| c.as_str()),
        )?
        .date("CreationDate", s.creation_date)?
        .opt("XksProxyConfiguration", proxy)?
        .done()
        .into_any())
}

#[pymethods]
impl Engine {
    /// CreateCustomKeyStore.
    #[pyo3(signature = (*, custom_key_store_name, cloud_hsm_cluster_id = None, trust_anchor_certificate = None, key_store_password = None, custom_key_store_type = None, xks_proxy_uri_endpoint = None, xks_proxy_uri_path = None, xks_proxy_vpc_endpoint_service_name = None, xks_proxy_vpc_endpoint_service_owner = None, xks_proxy_authentication_credential = None, xks_proxy_connectivity = None))]
    #[allow(clippy::too_many_arguments)]
    fn create_custom_key_store<'py>(
        &self,
        py: Python<'py>,
        custom_key_store_name: String,
        cloud_hsm_cluster_id: Option<String>,
        trust_anchor_certificate: Option<String>,
        key_store_password: Option<String>,
        custom_key_store_type: Option<&str>,
        xks_proxy_uri_endpoint: Option<String>,
        xks_proxy_uri_path: Option<String>,
        xks_proxy_vpc_endpoint_service_name: Option<String>,
        xks_proxy_vpc_endpoint_service_owner: Option<String>,
        xks_proxy_authentication_credential: Option<&Bound<'py, PyAny>>,
        xks_proxy_connectivity: Option<String>,
    ) -> Result<Bound<'py, PyDict>> {
        if xks_proxy_vpc_endpoint_service_owner.is_some() {
            return Err(crate::errors::Failure::Engine(
                keyplane::Error::UnsupportedOperation(
                    "XksProxyVpcEndpointServiceOwner: keyplane reaches no VPC endpoint service"
                        .into(),
                ),
                "CreateCustomKeyStore",
            ));
        }
        let request = CreateCustomKeyStoreRequest {
            custom_key_store_name,
            custom_key_store_type: parse_opt(custom_key_store_type)?,
            cloud_hsm_cluster_id,
            trust_anchor_certificate,
            key_store_password: secret(key_store_password),
            xks_proxy_uri_endpoint,
            xks_proxy_uri_path,
            xks_proxy_connectivity,
            xks_proxy_vpc_endpoint_service_name,
            xks_proxy_authentication_credential: credential(xks_proxy_authentication_credential)?,
        };
        let id = self.call(py, "CreateCustomKeyStore", true, |e| {
            e.create_custom_key_store(request)
        })?;
        Ok(Out::new(py).set("CustomKeyStoreId", id)?.done())
    }

    /// ConnectCustomKeyStore.
    #[pyo3(signature = (*, custom_key_store_id))]
    fn connect_custom_key_store<'py>(
        &self,
        py: Python<'py>,
        custom_key_store_id: &str,
    ) -> Result<Bound<'py, PyDict>> {
        self.call(py, "ConnectCustomKeyStore", true, |e| {
            e.connect_custom_key_store(custom_key_store_id)
        })?;
        Ok(PyDict::new(py))
    }

    /// DisconnectCustomKeyStore.
    #[pyo3(signature = (*, custom_key_store_id))]
    fn disconnect_custom_key_store<'py>(
        &self,
        py: Python<'py>,
        custom_key_store_id: &str,
    ) -> Result<Bound<'py, PyDict>> {
        self.call(py, "DisconnectCustomKeyStore", true, |e| {
            e.disconnect_custom_key_store(custom_key_store_id)
        })?;
        Ok(PyDict::new(py))
    }

    /// DeleteCustomKeyStore.
    #[pyo3(signature = (*, custom_key_store_id))]
    fn delete_custom_key_store<'py>(
        &self,
        py: Python<'py>,
        custom_key_store_id: &str,
    ) -> Result<Bound<'py, PyDict>> {
        self.call(py, "DeleteCustomKeyStore", true, |e| {
            e.delete_custom_key_store(custom_key_store_id)
        })?;
        Ok(PyDict::new(py))
    }

    /// UpdateCustomKeyStore.
    #[pyo3(signature = (*, custom_key_store_id, new_custom_key_store_name = None, key_store_password = None, cloud_hsm_cluster_id = None, xks_proxy_uri_endpoint = None, xks_proxy_uri_path = None, xks_proxy_vpc_endpoint_service_name = None, xks_proxy_vpc_endpoint_service_owner = None, xks_proxy_authentication_credential = None, xks_proxy_connectivity = None))]
    #[allow(clippy::too_many_arguments)]
    fn update_custom_key_store<'py>(
        &self,
        py: Python<'py>,
        custom_key_store_id: String,
        new_custom_key_store_name: Option<String>,
        key_store_password: Option<String>,
        cloud_hsm_cluster_id: Option<String>,
        xks_proxy_uri_endpoint: Option<String>,
        xks_proxy_uri_path: Option<String>,
        xks_proxy_vpc_endpoint_service_name: Option<String>,
        xks_proxy_vpc_endpoint_service_owner: Option<String>,
        xks_proxy_authentication_credential: Option<&Bound<'py, PyAny>>,
        xks_proxy_connectivity: Option<String>,
    ) -> Result<Bound<'py, PyDict>> {
        if xks_proxy_vpc_endpoint_service_owner.is_some() {
            return Err(crate::errors::Failure::Engine(
                keyplane::Error::UnsupportedOperation(
                    "XksProxyVpcEndpointServiceOwner: keyplane reaches no VPC endpoint service"
                        .into(),
                ),
                "UpdateCustomKeyStore",
            ));
        }
        let request = UpdateCustomKeyStoreRequest {
            custom_key_store_id,
            new_custom_key_store_name,
            key_store_password: secret(key_store_password),
            cloud_hsm_cluster_id,
            xks_proxy_uri_endpoint,
            xks_proxy_uri_path,
            xks_proxy_connectivity,
            xks_proxy_vpc_endpoint_service_name,
            xks_proxy_authentication_credential: credential(xks_proxy_authentication_credential)?,
        };
        self.call(py, "UpdateCustomKeyStore", true, |e| {
            e.update_custom_key_store(request)
        })?;
        Ok(PyDict::new(py))
    }

    /// DescribeCustomKeyStores.
    #[pyo3(signature = (*, custom_key_store_id = None, custom_key_store_name = None, limit = None, marker = None))]
    fn describe_custom_key_stores<'py>(
        &self,
        py: Python<'py>,
        custom_key_store_id: Option<&str>,
        custom_key_store_name: Option<&str>,
        limit: Option<u32>,
        marker: Option<&str>,
    ) -> Result<Bound<'py, PyDict>> {
        let page = self.call(py, "DescribeCustomKeyStores", true, |e| {
            e.describe_custom_key_stores(custom_key_store_id, custom_key_store_name, limit, marker)
        })?;
        let items = PyList::empty(py);
        for item in &page.items {
            items.append(store_entry(py, item)?)?;
        }
        Ok(Out::new(py)
            .set("CustomKeyStores", items)?
            .opt("NextMarker", page.next_marker.as_deref())?
            .set("Truncated", page.truncated)?
            .done())
    }
}
