//! Which PKCS#11 module and token each `CloudHsmClusterId` names.
//!
//! The service's CloudHSM key store names a cluster; keyplane names a configured token instead:
//! `CloudHsmClusterId` (the model's pattern `cluster-[2-7a-zA-Z]{11,16}`) is a key of
//! [`Pkcs11Config::clusters`], whose value gives the module (the `.so` of SoftHSMv2, CloudHSM,
//! Luna, YubiHSM, nShield...) and the token's label. `TrustAnchorCertificate` is checked against
//! the certificate configured for that token, when one is: a store whose owner gives another
//! certificate is refused with IncorrectTrustAnchorException. A token with no configured
//! certificate (SoftHSMv2 has none) takes any well-formed PEM certificate, recorded as given.

use std::collections::BTreeMap;
use std::path::PathBuf;

use keyplane::{Error, Result};

/// One configured token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterConfig {
    /// The PKCS#11 module (shared library) path.
    pub module: PathBuf,
    /// The token's label (CKA_LABEL of the token, as `softhsm2-util --init-token --label` sets).
    pub token_label: String,
    /// The HSM's trust anchor certificate (PEM), if it has one to check against.
    pub trust_anchor: Option<String>,
    /// Most sessions the pool opens (0: one per core).
    pub max_sessions: usize,
}

/// Every configured token, by the `CloudHsmClusterId` that names it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Pkcs11Config {
    pub clusters: BTreeMap<String, ClusterConfig>,
}

impl Pkcs11Config {
    /// Adds token `token_label` of `module` as cluster `cluster_id`.
    pub fn with_token(
        mut self,
        cluster_id: &str,
        module: impl Into<PathBuf>,
        token_label: &str,
    ) -> Self {
        self.clusters.insert(
            cluster_id.to_owned(),
            ClusterConfig {
                module: module.into(),
                token_label: token_label.to_owned(),
                trust_anchor: None,
                max_sessions: 0,
            },
        );
        self
    }
}

const PEM_BEGIN: &str = "-----BEGIN CERTIFICATE-----";
const PEM_END: &str = "-----END CERTIFICATE-----";

/// The certificate's PEM body, without armour or whitespace.
fn pem_body(pem: &str) -> Option<String> {
    let start = pem.find(PEM_BEGIN)? + PEM_BEGIN.len();
    let end = pem[start..].find(PEM_END)? + start;
    let body: String = pem[start..end].split_whitespace().collect();
    (!body.is_empty()).then_some(body)
}

/// Checks a store's TrustAnchorCertificate against the token's configuration.
pub(crate) fn check_trust_anchor(cluster: &ClusterConfig, given: Option<&str>) -> Result<()> {
    let given = given.and_then(pem_body).ok_or_else(|| {
        Error::IncorrectTrustAnchor(
            "TrustAnchorCertificate must be a PEM certificate (-----BEGIN CERTIFICATE-----)".into(),
        )
    })?;
    match cluster.trust_anchor.as_deref().map(pem_body) {
        None => Ok(()),
        Some(Some(expected)) if expected == given => Ok(()),
        Some(_) => Err(Error::IncorrectTrustAnchor(format!(
            "the trust anchor certificate is not the one configured for token '{}'",
            cluster.token_label
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trust_anchors_are_compared_by_their_certificate_not_their_layout() {
        let mut cluster = Pkcs11Config::default()
            .with_token("cluster-abcdefghijk", "/x.so", "t")
            .clusters
            .remove("cluster-abcdefghijk")
            .unwrap();
        let pem = "-----BEGIN CERTIFICATE-----\nMIIBAAAA\nBBBB\n-----END CERTIFICATE-----\n";
        assert!(check_trust_anchor(&cluster, Some(pem)).is_ok());
        assert!(check_trust_anchor(&cluster, Some("MIIBAAAA")).is_err());
        assert!(check_trust_anchor(&cluster, None).is_err());
        cluster.trust_anchor = Some(pem.replace('\n', "\r\n"));
        assert!(check_trust_anchor(&cluster, Some(pem)).is_ok());
        let other = "-----BEGIN CERTIFICATE-----\nMIIBAAAB\n-----END CERTIFICATE-----";
        let refused = check_trust_anchor(&cluster, Some(other)).unwrap_err();
        assert_eq!(refused.code(), "IncorrectTrustAnchorException");
    }
}
