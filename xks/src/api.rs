//! The XKS proxy API's request and response bodies (spec sections "GetKeyMetadata", "Encrypt",
//! "Decrypt", "GetHealthStatus", "Error codes"), its URI layout, and the size limits the spec sets.
//!
//! Member names are the spec's (camelCase); binary members are standard Base64 (RFC 4648 section
//! 4, not URL-safe), as the spec requires. Unknown members are accepted and ignored: Appendix B
//! says KMS may add `requestMetadata` fields at any time.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use zeroize::Zeroizing;

/// The fixed tail of every proxy URI path (`XksProxyUriPath` ends with it).
pub const API_ROOT: &str = "/kms/xks/v1";
/// The one encryption algorithm of version 1.
pub const AES_GCM: &str = "AES_GCM";
/// The one CDIV algorithm of version 1.
pub const SHA_256: &str = "SHA_256";
/// The key spec a version 1 external key has.
pub const AES_256: &str = "AES_256";

/// Plaintext and ciphertext sizes every proxy must accept (spec: "up to 4300 bytes").
pub const MIN_SUPPORTED_DATA_BYTES: usize = 4300;
/// Additional authenticated data every proxy must accept (spec: "up to 8192 bytes").
pub const MAX_AAD_BYTES: usize = 8192;
/// `ciphertextMetadata` is at most 20 bytes before encoding.
pub const MAX_CIPHERTEXT_METADATA_BYTES: usize = 20;
/// The authentication tag is exactly 16 bytes.
pub const TAG_BYTES: usize = 16;
/// An external key id is at most 128 characters.
pub const MAX_KEY_ID_CHARS: usize = 128;
/// `XksProxyUriPath` is at most 128 characters.
pub const MAX_URI_PATH_CHARS: usize = 128;
/// `errorMessage` is shorter than 512 printable ASCII characters.
pub const MAX_ERROR_MESSAGE_CHARS: usize = 511;

/// Bytes carried as a standard Base64 string.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Base64Bytes(pub Vec<u8>);

impl Serialize for Base64Bytes {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&STANDARD.encode(&self.0))
    }
}

impl<'de> Deserialize<'de> for Base64Bytes {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        STANDARD
            .decode(text.as_bytes())
            .map(Base64Bytes)
            .map_err(|_| serde::de::Error::custom("not a standard Base64 string"))
    }
}

/// Secret bytes (a plaintext) carried as Base64: zeroed on drop, no `Clone`, `Debug` redacted.
#[derive(Default)]
pub struct SecretBase64(pub Zeroizing<Vec<u8>>);

impl SecretBase64 {
    /// Takes ownership of `bytes`.
    pub fn new(bytes: Vec<u8>) -> Self {
        SecretBase64(Zeroizing::new(bytes))
    }

    /// The secret bytes.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl std::fmt::Debug for SecretBase64 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SecretBase64({} bytes, redacted)", self.0.len())
    }
}

impl Serialize for SecretBase64 {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let encoded = Zeroizing::new(STANDARD.encode(&*self.0));
        s.serialize_str(&encoded)
    }
}

impl<'de> Deserialize<'de> for SecretBase64 {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = Zeroizing::new(String::deserialize(d)?);
        STANDARD
            .decode(text.as_bytes())
            .map(SecretBase64::new)
            .map_err(|_| serde::de::Error::custom("not a standard Base64 string"))
    }
}

/// `requestMetadata` of GetHealthStatus (spec: kmsRequestId and kmsOperation, both required).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HealthRequestMetadata {
    pub kms_request_id: String,
    pub kms_operation: String,
}

/// `requestMetadata` of GetKeyMetadata: awsPrincipalArn, kmsOperation, kmsRequestId required;
/// awsSourceVpc, awsSourceVpce optional; kmsKeyArn sent by some KMS versions (spec change log
/// 0.0.12), accepted when present.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KeyMetadataRequestMetadata {
    pub aws_principal_arn: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aws_source_vpc: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aws_source_vpce: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kms_key_arn: Option<String>,
    pub kms_operation: String,
    pub kms_request_id: String,
}

/// `requestMetadata` of Encrypt and Decrypt: awsPrincipalArn, kmsKeyArn, kmsOperation,
/// kmsRequestId required; awsSourceVpc, awsSourceVpce, kmsViaService optional.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CryptoRequestMetadata {
    pub aws_principal_arn: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aws_source_vpc: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aws_source_vpce: Option<String>,
    pub kms_key_arn: String,
    pub kms_operation: String,
    pub kms_request_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kms_via_service: Option<String>,
}

/// GetHealthStatus request body.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HealthRequest {
    pub request_metadata: HealthRequestMetadata,
}

/// One external key manager of the GetHealthStatus response.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EkmFleetDetail {
    pub id: String,
    pub model: String,
    /// `ACTIVE`, `DEGRADED` or `UNAVAILABLE`.
    pub health_status: String,
}

/// GetHealthStatus response body.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HealthResponse {
    pub xks_proxy_fleet_size: u64,
    pub xks_proxy_vendor: String,
    pub xks_proxy_model: String,
    pub ekm_vendor: String,
    pub ekm_fleet_details: Vec<EkmFleetDetail>,
}

/// GetKeyMetadata request body.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KeyMetadataRequest {
    pub request_metadata: KeyMetadataRequestMetadata,
}

/// GetKeyMetadata response body.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KeyMetadataResponse {
    /// `AES_256` for every key version 1 can use.
    pub key_spec: String,
    /// At most ten values; `ENCRYPT` and `DECRYPT` for a usable key.
    pub key_usage: Vec<String>,
    /// `ENABLED` or `DISABLED`.
    pub key_status: String,
}

/// Encrypt request body.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EncryptRequest {
    pub request_metadata: CryptoRequestMetadata,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub additional_authenticated_data: Option<Base64Bytes>,
    pub plaintext: SecretBase64,
    pub encryption_algorithm: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ciphertext_data_integrity_value_algorithm: Option<String>,
}

/// Encrypt response body.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EncryptResponse {
    pub ciphertext: Base64Bytes,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ciphertext_metadata: Option<Base64Bytes>,
    pub initialization_vector: Base64Bytes,
    pub authentication_tag: Base64Bytes,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ciphertext_data_integrity_value: Option<Base64Bytes>,
}

/// Decrypt request body.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DecryptRequest {
    pub request_metadata: CryptoRequestMetadata,
    pub ciphertext: Base64Bytes,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ciphertext_metadata: Option<Base64Bytes>,
    pub encryption_algorithm: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub additional_authenticated_data: Option<Base64Bytes>,
    pub authentication_tag: Base64Bytes,
    pub initialization_vector: Base64Bytes,
}

/// Decrypt response body.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DecryptResponse {
    pub plaintext: SecretBase64,
}

/// An error response body: `errorName` required, `errorMessage` optional.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ErrorBody {
    pub error_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_message: Option<String>,
}

/// The operation a URI path names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Route {
    Health,
    KeyMetadata(String),
    Encrypt(String),
    Decrypt(String),
}

impl Route {
    /// The path below `<prefix>/kms/xks/v1`.
    pub fn suffix(&self) -> String {
        match self {
            Route::Health => "/health".into(),
            Route::KeyMetadata(id) => format!("/keys/{id}/metadata"),
            Route::Encrypt(id) => format!("/keys/{id}/encrypt"),
            Route::Decrypt(id) => format!("/keys/{id}/decrypt"),
        }
    }

    /// The full path for a proxy whose `XksProxyUriPath` is `uri_path`.
    pub fn path(&self, uri_path: &str) -> String {
        format!("{}{}", uri_path.trim_end_matches('/'), self.suffix())
    }

    /// Parses `path` (no query) below `uri_path` (`[/<prefix>]/kms/xks/v1`). `None` for any other
    /// path, including a key id that breaks the spec's rules (InvalidUriPathException).
    pub fn parse(uri_path: &str, path: &str) -> Option<Route> {
        let rest = path.strip_prefix(uri_path.trim_end_matches('/'))?;
        if rest == "/health" {
            return Some(Route::Health);
        }
        let rest = rest.strip_prefix("/keys/")?;
        let (id, op) = rest.rsplit_once('/')?;
        if !valid_key_id(id) {
            return None;
        }
        let id = id.to_owned();
        match op {
            "metadata" => Some(Route::KeyMetadata(id)),
            "encrypt" => Some(Route::Encrypt(id)),
            "decrypt" => Some(Route::Decrypt(id)),
            _ => None,
        }
    }
}

/// An external key id: 1 to 128 of `A-Z a-z 0-9 - . _` (spec section "API operations").
pub fn valid_key_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_KEY_ID_CHARS
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'))
}

/// An `XksProxyUriPath`: at most 128 of `a-z A-Z 0-9 / - _`, starting with `/` and ending in
/// `/kms/xks/v1`.
pub fn valid_uri_path(path: &str) -> bool {
    path.len() <= MAX_URI_PATH_CHARS
        && path.starts_with('/')
        && path.ends_with(API_ROOT)
        && !path.contains("//")
        && path
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'/' | b'-' | b'_'))
}

/// The `XksProxyUriPath` for an optional path prefix (`""`, `"tenant-a"` or `"/tenant-a"`).
pub fn uri_path_for_prefix(prefix: &str) -> String {
    let prefix = prefix.trim_matches('/');
    if prefix.is_empty() {
        API_ROOT.to_owned()
    } else {
        format!("/{prefix}{API_ROOT}")
    }
}

/// An `errorMessage` as the spec allows it: printable ASCII only, under 512 characters.
pub fn clean_error_message(message: &str) -> String {
    message
        .chars()
        .map(|c| if (' '..='~').contains(&c) { c } else { '?' })
        .take(MAX_ERROR_MESSAGE_CHARS)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_parse_under_a_prefix_and_round_trip() {
        let root = uri_path_for_prefix("tenant-a");
        assert_eq!(root, "/tenant-a/kms/xks/v1");
        assert!(valid_uri_path(&root));
        for route in [
            Route::Health,
            Route::KeyMetadata("k.1_a-B".into()),
            Route::Encrypt("x".into()),
            Route::Decrypt("x".into()),
        ] {
            assert_eq!(Route::parse(&root, &route.path(&root)), Some(route));
        }
        assert_eq!(Route::parse(&root, "/kms/xks/v1/health"), None);
        assert_eq!(
            Route::parse(&root, "/tenant-a/kms/xks/v1/keys/a/b/encrypt"),
            None
        );
        assert_eq!(
            Route::parse(&root, "/tenant-a/kms/xks/v1/keys//encrypt"),
            None
        );
        assert_eq!(
            Route::parse(&root, "/tenant-a/kms/xks/v1/keys/a%2F/encrypt"),
            None
        );
        assert_eq!(
            Route::parse(&root, "/tenant-a/kms/xks/v1/keys/a/sign"),
            None
        );
        let long = "a".repeat(129);
        assert_eq!(
            Route::parse(&root, &format!("{root}/keys/{long}/encrypt")),
            None
        );
    }

    #[test]
    fn uri_paths_follow_the_spec_alphabet() {
        assert!(valid_uri_path("/kms/xks/v1"));
        assert!(!valid_uri_path("kms/xks/v1"));
        assert!(!valid_uri_path("/a.b/kms/xks/v1"));
        assert!(!valid_uri_path(&format!("/{}/kms/xks/v1", "a".repeat(120))));
    }

    #[test]
    fn base64_is_standard_not_url_safe() {
        let parsed: Base64Bytes = serde_json::from_str("\"+/8=\"").unwrap();
        assert_eq!(parsed.0, vec![0xfb, 0xff]);
        assert!(serde_json::from_str::<Base64Bytes>("\"-_8=\"").is_err());
    }

    #[test]
    fn error_messages_are_printable_ascii_and_short() {
        let cleaned = clean_error_message(&format!("é\n{}", "x".repeat(600)));
        assert!(cleaned.starts_with("??"));
        assert_eq!(cleaned.len(), MAX_ERROR_MESSAGE_CHARS);
    }
}
