//! The external key store (EXTERNAL_KEY_STORE) members of CreateCustomKeyStore and
//! UpdateCustomKeyStore: the proxy credential, the members' checks (the model's constraints, and
//! keyplane's one extension: an optional `:port` on `XksProxyUriEndpoint`), and the service's
//! uniqueness rule.

use super::definition::XksProxySettings;
use crate::control::working_copy::ControlState;
use crate::error::{validation, Error, Result};
use crate::secret::SecretBytes;

/// `XksProxyAuthenticationCredential`: an access key id and its secret (sealed in the store as a
/// PKCS#11 PIN is; never shown again).
pub struct XksProxyCredential {
    pub access_key_id: String,
    pub raw_secret_access_key: SecretBytes,
}

impl std::fmt::Debug for XksProxyCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("XksProxyCredential")
            .field("access_key_id", &"<redacted>")
            .field("raw_secret_access_key", &"<redacted>")
            .finish()
    }
}

/// `PUBLIC_ENDPOINT`: the only connectivity keyplane offers.
pub const PUBLIC_ENDPOINT: &str = "PUBLIC_ENDPOINT";
/// `VPC_ENDPOINT_SERVICE`: refused (keyplane runs in no VPC).
pub const VPC_ENDPOINT_SERVICE: &str = "VPC_ENDPOINT_SERVICE";

/// `XksProxyUriEndpoint`: `https://` and a host of `a-z A-Z 0-9 . -` (the model's pattern), with
/// an optional `:port` (1–65535) keyplane accepts beyond the service, which always uses 443.
pub fn check_endpoint(endpoint: &str) -> Result<()> {
    let bad = || {
        validation!(
            "XksProxyUriEndpoint must be https:// followed by a host name of letters, digits, '.' \
             and '-' (and, in keyplane, an optional :port), 10 to 128 characters"
        )
    };
    if !(10..=128).contains(&endpoint.len()) {
        return Err(bad());
    }
    let rest = endpoint.strip_prefix("https://").ok_or_else(bad)?;
    let (host, port) = match rest.split_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (rest, None),
    };
    if host.is_empty()
        || !host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-'))
    {
        return Err(bad());
    }
    if let Some(port) = port {
        let ok = !port.is_empty()
            && port.len() <= 5
            && port.bytes().all(|b| b.is_ascii_digit())
            && port.parse::<u16>().is_ok_and(|p| p > 0);
        if !ok {
            return Err(bad());
        }
    }
    Ok(())
}

/// `XksProxyConnectivity`: PUBLIC_ENDPOINT; VPC_ENDPOINT_SERVICE refused clearly.
pub fn check_connectivity(connectivity: &str, vpc_service: Option<&str>) -> Result<()> {
    match connectivity {
        PUBLIC_ENDPOINT if vpc_service.is_none() => Ok(()),
        PUBLIC_ENDPOINT => Err(validation!(
            "XksProxyVpcEndpointServiceName is valid only with XksProxyConnectivity \
             VPC_ENDPOINT_SERVICE"
        )),
        VPC_ENDPOINT_SERVICE => Err(Error::UnsupportedOperation(
            "XksProxyConnectivity VPC_ENDPOINT_SERVICE is not supported by keyplane, which runs in \
             no VPC; use PUBLIC_ENDPOINT with an https:// endpoint the engine can reach"
                .into(),
        )),
        other => Err(validation!(
            "XksProxyConnectivity must be PUBLIC_ENDPOINT or VPC_ENDPOINT_SERVICE, not {other:?}"
        )),
    }
}

/// `XksProxyAuthenticationCredential`: AccessKeyId 20–30 of `A-Z 2-7`, RawSecretAccessKey 43–64
/// of `a-z A-Z 0-9 / + =` (the model's shapes). Returns the secret's text.
pub fn check_credential(credential: &XksProxyCredential) -> Result<&str> {
    let id = &credential.access_key_id;
    if !(20..=30).contains(&id.len())
        || !id
            .bytes()
            .all(|b| b.is_ascii_uppercase() || (b'2'..=b'7').contains(&b))
    {
        return Err(validation!(
            "XksProxyAuthenticationCredential.AccessKeyId must be 20 to 30 characters of A-Z and \
             2-7"
        ));
    }
    let secret = std::str::from_utf8(credential.raw_secret_access_key.expose()).ok();
    match secret {
        Some(s)
            if (43..=64).contains(&s.len())
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'/' | b'+' | b'=')) =>
        {
            Ok(s)
        }
        _ => Err(validation!(
            "XksProxyAuthenticationCredential.RawSecretAccessKey must be 43 to 64 characters of \
             a-z, A-Z, 0-9, /, + and ="
        )),
    }
}

impl ControlState {
    /// The service's rule for PUBLIC_ENDPOINT stores: no two external key stores share the
    /// same endpoint and URI path (XksProxyUriInUseException).
    pub(crate) fn check_xks_uri_free(
        &self,
        proxy: &XksProxySettings,
        except: Option<&str>,
    ) -> Result<()> {
        if let Some(other) = self.custom_key_stores.values().find(|s| {
            Some(s.id.as_str()) != except
                && s.xks_proxy.as_ref().is_some_and(|x| {
                    x.uri_endpoint.eq_ignore_ascii_case(&proxy.uri_endpoint)
                        && x.uri_path == proxy.uri_path
                })
        }) {
            return Err(Error::XksProxyUriInUse(format!(
                "The XKS proxy URI {}{} is already associated with external key store '{}'.",
                proxy.uri_endpoint, proxy.uri_path, other.id
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::SecretBytes;

    #[test]
    fn endpoints_follow_the_model_with_an_optional_port() {
        assert!(check_endpoint("https://xks.example.com").is_ok());
        assert!(check_endpoint("https://127.0.0.1:8443").is_ok());
        for bad in [
            "http://xks.example.com",
            "https://xks.example.com/path",
            "https://user@xks.example",
            "https://xks.example:0",
            "https://xks.example:99999",
            "https://xks.example:",
            "https://",
            "https://a_b.example",
        ] {
            assert!(check_endpoint(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn credentials_follow_the_model() {
        let c = |id: &str, secret: &str| XksProxyCredential {
            access_key_id: id.into(),
            raw_secret_access_key: SecretBytes::from_vec(secret.as_bytes().to_vec()),
        };
        let secret = "FYtE5EFA5FT0mCc3DrGUe2sti527BitkQ0Zr9MO9fvE";
        assert!(check_credential(&c("AKIAI2SFODNN7EXAMPLE", secret)).is_ok());
        assert!(check_credential(&c("akiai2sfodnn7example", secret)).is_err());
        assert!(check_credential(&c("AKIAI2SFODNN7EXAMPL1", secret)).is_err());
        assert!(check_credential(&c("AKIAI2SFODNN7EXAMPLE", "short")).is_err());
        assert!(check_credential(&c("AKIAI2SFODNN7EXAMPLE", &format!("{secret}!"))).is_err());
    }

    #[test]
    fn vpc_connectivity_is_refused_clearly() {
        assert!(check_connectivity(PUBLIC_ENDPOINT, None).is_ok());
        let e = check_connectivity(VPC_ENDPOINT_SERVICE, None).unwrap_err();
        assert_eq!(e.code(), "UnsupportedOperationException");
        assert!(check_connectivity("OTHER", None).is_err());
    }
}
