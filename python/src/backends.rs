//! The custom key store backends an engine is built with: PKCS#11 tokens named as the CLI's
//! `--pkcs11-token CLUSTER=MODULE:LABEL`, and the XKS proxy client.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use keyplane::{CustomKeyStoreType, EngineBuilder};

use crate::errors::{validation, Result};

/// `builder` with the PKCS#11 backend of `tokens` (`{"cluster-...": "MODULE:LABEL"}`), if any,
/// and the XKS backend (proxies' CA bundle `xks_ca_bundle`, else the platform's).
pub(crate) fn with_backends(
    mut builder: EngineBuilder,
    region: &str,
    tokens: BTreeMap<String, String>,
    xks_ca_bundle: Option<PathBuf>,
    xks_timeout_ms: Option<u64>,
) -> Result<EngineBuilder> {
    if !tokens.is_empty() {
        let mut config = keyplane_pkcs11::Pkcs11Config::default();
        for (cluster, value) in &tokens {
            let Some((module, label)) = value
                .split_once(':')
                .filter(|(m, l)| !m.is_empty() && !l.is_empty())
            else {
                return Err(validation(format!(
                    "pkcs11_tokens maps a cluster id to 'MODULE:TOKEN_LABEL', not '{value}'"
                )));
            };
            config = config.with_token(cluster, module, label);
        }
        builder = builder.custom_key_store_backend(
            CustomKeyStoreType::AwsCloudhsm,
            Arc::new(keyplane_pkcs11::Pkcs11Backend::new(config)),
        );
    }
    let mut xks = keyplane_xks::XksBackendConfig::new(region);
    if let Some(bundle) = xks_ca_bundle {
        xks.trust = keyplane_xks::TrustAnchors::CaBundle(bundle);
    }
    if let Some(ms) = xks_timeout_ms {
        xks.timeout = std::time::Duration::from_millis(ms.max(1));
    }
    Ok(builder.custom_key_store_backend(
        CustomKeyStoreType::ExternalKeyStore,
        Arc::new(keyplane_xks::XksBackend::new(xks)),
    ))
}
