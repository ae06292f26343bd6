//! CreateCustomKeyStore, ConnectCustomKeyStore, DisconnectCustomKeyStore,
//! DeleteCustomKeyStore, UpdateCustomKeyStore, DescribeCustomKeyStores.

use keyplane::{
    CreateCustomKeyStoreRequest, Engine, SecretBytes, UpdateCustomKeyStoreRequest,
    XksProxyCredential,
};

use super::json::{Input, Out};
use super::members::{list_page, refuse_unsupported};
use super::reply::Fault;

/// `XksProxyAuthenticationCredential {AccessKeyId, RawSecretAccessKey}`, when given.
fn xks_credential(input: &Input) -> Option<XksProxyCredential> {
    let credential = input.object("XksProxyAuthenticationCredential")?;
    let member = |name: &str| {
        credential
            .get(name)
            .and_then(|v| v.as_str())
            .unwrap_or_default()
    };
    Some(XksProxyCredential {
        access_key_id: member("AccessKeyId").to_owned(),
        raw_secret_access_key: SecretBytes::from_vec(
            member("RawSecretAccessKey").as_bytes().to_vec(),
        ),
    })
}

fn password(input: &Input) -> Option<SecretBytes> {
    input
        .str("KeyStorePassword")
        .map(|p| SecretBytes::from_vec(p.as_bytes().to_vec()))
}

pub(super) fn create_custom_key_store(engine: &Engine, input: &Input) -> Result<Out, Fault> {
    let request = CreateCustomKeyStoreRequest {
        custom_key_store_name: input.req("CustomKeyStoreName").to_owned(),
        custom_key_store_type: input.enum_value("CustomKeyStoreType")?,
        cloud_hsm_cluster_id: input.string("CloudHsmClusterId"),
        trust_anchor_certificate: input.string("TrustAnchorCertificate"),
        key_store_password: password(input),
        xks_proxy_uri_endpoint: input.string("XksProxyUriEndpoint"),
        xks_proxy_uri_path: input.string("XksProxyUriPath"),
        xks_proxy_connectivity: input.string("XksProxyConnectivity"),
        xks_proxy_vpc_endpoint_service_name: input.string("XksProxyVpcEndpointServiceName"),
        xks_proxy_authentication_credential: xks_credential(input),
    };
    // keyplane reaches no VPC endpoint service, so it has no owner account to check either.
    refuse_unsupported(input, &["XksProxyVpcEndpointServiceOwner"])?;
    let id = engine.create_custom_key_store(request)?;
    let mut out = Out::new();
    out.str("CustomKeyStoreId", &id);
    Ok(out)
}

pub(super) fn connect_custom_key_store(engine: &Engine, input: &Input) -> Result<Out, Fault> {
    engine.connect_custom_key_store(input.req("CustomKeyStoreId"))?;
    Ok(Out::new())
}

pub(super) fn disconnect_custom_key_store(engine: &Engine, input: &Input) -> Result<Out, Fault> {
    engine.disconnect_custom_key_store(input.req("CustomKeyStoreId"))?;
    Ok(Out::new())
}

pub(super) fn delete_custom_key_store(engine: &Engine, input: &Input) -> Result<Out, Fault> {
    engine.delete_custom_key_store(input.req("CustomKeyStoreId"))?;
    Ok(Out::new())
}

pub(super) fn update_custom_key_store(engine: &Engine, input: &Input) -> Result<Out, Fault> {
    refuse_unsupported(input, &["XksProxyVpcEndpointServiceOwner"])?;
    engine.update_custom_key_store(UpdateCustomKeyStoreRequest {
        custom_key_store_id: input.req("CustomKeyStoreId").to_owned(),
        new_custom_key_store_name: input.string("NewCustomKeyStoreName"),
        key_store_password: password(input),
        cloud_hsm_cluster_id: input.string("CloudHsmClusterId"),
        xks_proxy_uri_endpoint: input.string("XksProxyUriEndpoint"),
        xks_proxy_uri_path: input.string("XksProxyUriPath"),
        xks_proxy_connectivity: input.string("XksProxyConnectivity"),
        xks_proxy_vpc_endpoint_service_name: input.string("XksProxyVpcEndpointServiceName"),
        xks_proxy_authentication_credential: xks_credential(input),
    })?;
    Ok(Out::new())
}

pub(super) fn describe_custom_key_stores(engine: &Engine, input: &Input) -> Result<Out, Fault> {
    let page = engine.describe_custom_key_stores(
        input.str("CustomKeyStoreId"),
        input.str("CustomKeyStoreName"),
        input.u32("Limit")?,
        input.str("Marker"),
    )?;
    Ok(list_page("CustomKeyStores", &page, |o, s| {
        o.str("CustomKeyStoreId", &s.custom_key_store_id)
            .str("CustomKeyStoreName", &s.custom_key_store_name)
            .str("CustomKeyStoreType", s.custom_key_store_type.as_str())
            .opt("CloudHsmClusterId", s.cloud_hsm_cluster_id.as_deref())
            .opt(
                "TrustAnchorCertificate",
                s.trust_anchor_certificate.as_deref(),
            )
            .str("ConnectionState", s.connection_state.as_str())
            .opt(
                "ConnectionErrorCode",
                s.connection_error_code.map(|c| c.as_str()),
            )
            .date("CreationDate", s.creation_date);
        if let Some(x) = &s.xks_proxy_configuration {
            o.nested("XksProxyConfiguration", |p| {
                p.str("Connectivity", &x.connectivity)
                    .str("AccessKeyId", &x.access_key_id)
                    .str("UriEndpoint", &x.uri_endpoint)
                    .str("UriPath", &x.uri_path);
            });
        }
    }))
}
