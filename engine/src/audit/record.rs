//! The audit record: what the engine fills for each request, and its JSON form.
//!
//! [`AuditEvent`] has the members of a CloudTrail record of the key management service, in the
//! order CloudTrail writes them. The engine builds one per request (a batch call is one event with
//! [`AdditionalEventData`]) and hands it to [`AuditLog::append`](super::AuditLog::append), which
//! serializes it on the caller's thread with [`AuditEvent::to_json`]. The writer then adds `seq` in
//! front and `chain` at the end; see `docs/audit-format.md`.
//!
//! `requestParameters` and `responseElements` are whatever JSON the engine builds: key id,
//! algorithm, encryption context, sizes. They must never hold plaintext, key material or secret
//! outputs; this module cannot tell and does not look.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::access::RequestOrigin;
use serde::{Serialize, Serializer};
use serde_json::Value;

use super::AuditError;

/// The `eventVersion` written in every record (CloudTrail's current record version).
pub const EVENT_VERSION: &str = "1.08";
/// The `eventSource` of the key management service.
pub const EVENT_SOURCE: &str = "kms.amazonaws.com";
/// The `type` of a KMS key in `resources`.
pub const KMS_KEY_RESOURCE_TYPE: &str = "AWS::KMS::Key";

/// Who made the request (`userIdentity`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UserIdentity {
    /// The kind of principal (`type`): `Root`, `IAMUser`, `AssumedRole`, `AWSService`, ...
    #[serde(rename = "type")]
    pub identity_type: String,
    /// The principal's unique id.
    pub principal_id: String,
    /// The principal's ARN.
    pub arn: String,
    /// The account the principal belongs to.
    pub account_id: String,
    /// The access key id the request was signed with (`accessKeyId`), for network calls.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub access_key_id: Option<String>,
}

/// The TLS facts of a network call (`tlsDetails`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TlsDetails {
    /// `tlsVersion`: `TLSv1.3`, `TLSv1.2`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_version: Option<String>,
    /// `cipherSuite`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cipher_suite: Option<String>,
    /// `clientProvidedHostHeader`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_provided_host_header: Option<String>,
}

/// One request of a coalesced batch (an element of `additionalEventData.requests`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct BatchRequest {
    /// `requestID`: the id its client was answered with.
    #[serde(rename = "requestID", skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// `sourceIPAddress`.
    #[serde(rename = "sourceIPAddress", skip_serializing_if = "Option::is_none")]
    pub source_ip_address: Option<String>,
    /// `userAgent`.
    #[serde(rename = "userAgent", skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
    /// `accessKeyId`.
    #[serde(rename = "accessKeyId", skip_serializing_if = "Option::is_none")]
    pub access_key_id: Option<String>,
}

/// A resource the request touched (an element of `resources`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct AuditResource {
    /// The account that owns the resource (`accountId`).
    #[serde(rename = "accountId")]
    pub account_id: String,
    /// The resource type (`type`), `AWS::KMS::Key` for keys.
    #[serde(rename = "type")]
    pub resource_type: String,
    /// The resource's ARN (`ARN`).
    #[serde(rename = "ARN")]
    pub arn: String,
}

impl AuditResource {
    /// A KMS key, by account and key ARN.
    pub fn kms_key(account_id: impl Into<String>, key_arn: impl Into<String>) -> Self {
        AuditResource {
            account_id: account_id.into(),
            resource_type: KMS_KEY_RESOURCE_TYPE.to_string(),
            arn: key_arn.into(),
        }
    }
}

/// What a batch call adds (`additionalEventData`): how many items, how many failed with each
/// error code, and how many items used each key.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AdditionalEventData {
    /// Items in the batch (`itemCount`).
    pub item_count: u64,
    /// Failed items by error code (`errorCounts`), for example `{"NotFoundException": 2}`.
    pub error_counts: BTreeMap<String, u64>,
    /// Every key the batch's items used (`keys`), as in `resources`, with its item counts;
    /// omitted when empty.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub keys: Vec<BatchKey>,
    /// The origin of each item (`requests`), for a batch a network front end coalesced from
    /// separate requests; omitted when empty.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub requests: Vec<BatchRequest>,
}

/// One key a batch used (an element of `additionalEventData.keys`). An item that uses two keys
/// (ReEncrypt: its source and destination) counts under both.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchKey {
    /// The key's ARN (`ARN`), as in `resources`.
    #[serde(rename = "ARN")]
    pub arn: String,
    /// Items that used the key (`itemCount`).
    pub item_count: u64,
    /// Of those, the items that failed (`errorCount`).
    pub error_count: u64,
}

/// One request, as the audit log records it. The engine fills the fields (or uses the `with_*`
/// builder methods) and appends it; member names in the JSON are CloudTrail's.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditEvent {
    /// `eventVersion`; [`EVENT_VERSION`] unless set.
    pub event_version: String,
    /// `userIdentity`: the caller.
    pub user_identity: UserIdentity,
    /// `eventTime`, in milliseconds since the Unix epoch; written as RFC 3339 UTC with
    /// milliseconds (`2024-05-01T12:00:00.123Z`).
    #[serde(rename = "eventTime", serialize_with = "serialize_event_time")]
    pub event_time_ms: i64,
    /// `eventSource`; [`EVENT_SOURCE`] unless set.
    pub event_source: String,
    /// `eventName`: the operation, `Encrypt`, `CreateKey`, ...
    pub event_name: String,
    /// `awsRegion`: the engine's region.
    pub aws_region: String,
    /// `sourceIPAddress`, when the engine knows one (omitted otherwise).
    #[serde(rename = "sourceIPAddress", skip_serializing_if = "Option::is_none")]
    pub source_ip_address: Option<String>,
    /// `userAgent`, when the engine knows one (omitted otherwise).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
    /// `tlsDetails`, for a call that came over TLS (omitted otherwise).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_details: Option<TlsDetails>,
    /// `requestParameters`: key id, algorithm, encryption context, sizes. Never secrets.
    pub request_parameters: Value,
    /// `responseElements`: `null` for most data-plane calls. Never secrets.
    pub response_elements: Value,
    /// `errorCode`: the service's exception name when the request failed (omitted on success).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_code: Option<String>,
    /// `errorMessage`: the failure's message (omitted on success).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_message: Option<String>,
    /// `additionalEventData`: item and error counts of a batch call (omitted otherwise).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub additional_event_data: Option<AdditionalEventData>,
    /// `requestID`: a UUID v4 string.
    #[serde(rename = "requestID")]
    pub request_id: String,
    /// `eventID`: a UUID v4 string, unique per record.
    #[serde(rename = "eventID")]
    pub event_id: String,
    /// `readOnly`: whether the operation changes nothing (Describe, List, Get).
    pub read_only: bool,
    /// `resources`: the keys the request touched.
    pub resources: Vec<AuditResource>,
    /// `eventType`: `AwsApiCall` unless set.
    pub event_type: String,
    /// `managementEvent`: true for every KMS call.
    pub management_event: bool,
    /// `recipientAccountId`: the account that owns the resources (the engine's account).
    pub recipient_account_id: String,
    /// `eventCategory`: `Management`.
    pub event_category: String,
}

fn serialize_event_time<S: Serializer>(ms: &i64, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&rfc3339_millis(*ms))
}

impl AuditEvent {
    /// An event for `event_name` made by `user_identity` in `aws_region`, now, with fresh request
    /// and event ids, `readOnly` false, no parameters, no resources and success. The recipient
    /// account is the caller's until [`with_recipient_account`](Self::with_recipient_account).
    pub fn new(
        event_name: impl Into<String>,
        aws_region: impl Into<String>,
        user_identity: UserIdentity,
    ) -> Self {
        let recipient_account_id = user_identity.account_id.clone();
        AuditEvent {
            event_version: EVENT_VERSION.to_string(),
            user_identity,
            event_time_ms: now_millis(),
            event_source: EVENT_SOURCE.to_string(),
            event_name: event_name.into(),
            aws_region: aws_region.into(),
            source_ip_address: None,
            user_agent: None,
            tls_details: None,
            request_parameters: Value::Null,
            response_elements: Value::Null,
            error_code: None,
            error_message: None,
            additional_event_data: None,
            request_id: new_request_id(),
            event_id: new_request_id(),
            read_only: false,
            resources: Vec::new(),
            event_type: "AwsApiCall".to_string(),
            management_event: true,
            recipient_account_id,
            event_category: "Management".to_string(),
        }
    }

    /// Sets `eventTime` (milliseconds since the Unix epoch, from the engine's clock).
    pub fn at(mut self, event_time_ms: i64) -> Self {
        self.event_time_ms = event_time_ms;
        self
    }

    /// Sets `requestID` (the engine's id for the request, a UUID v4 string).
    pub fn with_request_id(mut self, request_id: impl Into<String>) -> Self {
        self.request_id = request_id.into();
        self
    }

    /// Sets `requestParameters`.
    pub fn with_request_parameters(mut self, parameters: Value) -> Self {
        self.request_parameters = parameters;
        self
    }

    /// Sets `responseElements`.
    pub fn with_response_elements(mut self, elements: Value) -> Self {
        self.response_elements = elements;
        self
    }

    /// Marks the request failed with the service's `code` (`AccessDeniedException`, ...) and
    /// `message`.
    pub fn with_error(mut self, code: impl Into<String>, message: impl Into<String>) -> Self {
        self.error_code = Some(code.into());
        self.error_message = Some(message.into());
        self
    }

    /// Adds a KMS key to `resources`.
    pub fn with_key(mut self, account_id: impl Into<String>, key_arn: impl Into<String>) -> Self {
        self.resources
            .push(AuditResource::kms_key(account_id, key_arn));
        self
    }

    /// Records a batch call: `item_count` items, failures counted by error code.
    pub fn with_batch(mut self, item_count: u64, error_counts: BTreeMap<String, u64>) -> Self {
        self.additional_event_data = Some(AdditionalEventData {
            item_count,
            error_counts,
            keys: Vec::new(),
            requests: Vec::new(),
        });
        self
    }

    /// Records where the request came from (a network front end's [`RequestOrigin`]): its
    /// request id, source address, user agent, signing access key id and TLS details.
    pub fn with_origin(mut self, origin: &RequestOrigin) -> Self {
        if let Some(id) = &origin.request_id {
            self.request_id = id.clone();
        }
        self.source_ip_address = origin.source_ip.clone().or(self.source_ip_address);
        self.user_agent = origin.user_agent.clone().or(self.user_agent);
        if origin.access_key_id.is_some() {
            self.user_identity.access_key_id = origin.access_key_id.clone();
        }
        if origin.tls_version.is_some() || origin.cipher_suite.is_some() || origin.host.is_some() {
            self.tls_details = Some(TlsDetails {
                tls_version: origin.tls_version.clone(),
                cipher_suite: origin.cipher_suite.clone(),
                client_provided_host_header: origin.host.clone(),
            });
        }
        self
    }

    /// Records the origin of each item of a coalesced batch (after
    /// [`with_batch`](Self::with_batch)), under `additionalEventData.requests`.
    pub fn with_batch_origins(mut self, origins: &[RequestOrigin]) -> Self {
        if let Some(data) = self.additional_event_data.as_mut() {
            data.requests = origins
                .iter()
                .map(|o| BatchRequest {
                    request_id: o.request_id.clone(),
                    source_ip_address: o.source_ip.clone(),
                    user_agent: o.user_agent.clone(),
                    access_key_id: o.access_key_id.clone(),
                })
                .collect();
        }
        self
    }

    /// Records the keys a batch call used, with their item counts (after
    /// [`with_batch`](Self::with_batch); the keys also belong in `resources`).
    pub fn with_batch_keys(mut self, keys: Vec<BatchKey>) -> Self {
        self.additional_event_data
            .get_or_insert_with(AdditionalEventData::default)
            .keys = keys;
        self
    }

    /// Sets `readOnly`.
    pub fn read_only(mut self, read_only: bool) -> Self {
        self.read_only = read_only;
        self
    }

    /// Sets `recipientAccountId`.
    pub fn with_recipient_account(mut self, account_id: impl Into<String>) -> Self {
        self.recipient_account_id = account_id.into();
        self
    }

    /// Sets `userAgent`.
    pub fn with_user_agent(mut self, user_agent: impl Into<String>) -> Self {
        self.user_agent = Some(user_agent.into());
        self
    }

    /// Sets `sourceIPAddress`.
    pub fn with_source_ip(mut self, address: impl Into<String>) -> Self {
        self.source_ip_address = Some(address.into());
        self
    }

    /// The record's JSON as the log stores it before numbering: one compact object, no newline,
    /// members in declaration order. The writer turns `{…}` into `{"seq":N,…,"chain":"…"}`.
    pub fn to_json(&self) -> Result<String, AuditError> {
        let mut out = Vec::new();
        self.write_json(&mut out)?;
        String::from_utf8(out).map_err(|e| AuditError::Serialize(e.to_string()))
    }

    /// [`to_json`](Self::to_json) into `out` (cleared first), reusing its allocation.
    pub(crate) fn write_json(&self, out: &mut Vec<u8>) -> Result<(), AuditError> {
        out.clear();
        serde_json::to_writer(&mut *out, self).map_err(|e| AuditError::Serialize(e.to_string()))?;
        // serde_json writes an object for a struct; the writer relies on it.
        if out.len() < 2 || out.first() != Some(&b'{') || out.last() != Some(&b'}') {
            return Err(AuditError::Serialize("event is not a JSON object".into()));
        }
        Ok(())
    }
}

/// Milliseconds since the Unix epoch, from the system clock.
pub(crate) fn now_millis() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// `ms` (milliseconds since the Unix epoch) as RFC 3339 UTC with milliseconds:
/// `YYYY-MM-DDTHH:MM:SS.mmmZ`.
pub fn rfc3339_millis(ms: i64) -> String {
    let time = crate::clock::CivilTime::from_unix_seconds(ms.div_euclid(1000));
    format!("{}.{:03}Z", time.extended(), ms.rem_euclid(1000))
}

/// A fresh UUID v4 string (`xxxxxxxx-xxxx-4xxx-Nxxx-xxxxxxxxxxxx`), from AWS-LC's random
/// generator.
pub fn new_request_id() -> String {
    let mut bytes = [0u8; 16];
    if crate::crypto::random::fill(&mut bytes).is_err() {
        // AWS-LC's generator does not fail in practice; if it ever does, an id that is unique in
        // this process (not secret) still serves: a counter and the time, hashed.
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let mut context = crate::crypto::digest::Sha256::new();
        context.update(&COUNTER.fetch_add(1, Ordering::Relaxed).to_le_bytes());
        context.update(&now_millis().to_le_bytes());
        bytes.copy_from_slice(&context.finish()[..16]);
    }
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex = super::chain::to_hex(&bytes);
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

/// The IAM user the audit module's unit tests act as.
#[cfg(test)]
pub(crate) fn example_identity() -> UserIdentity {
    UserIdentity {
        identity_type: "IAMUser".into(),
        principal_id: "AIDAEXAMPLE".into(),
        arn: "arn:aws:iam::111122223333:user/alice".into(),
        account_id: "111122223333".into(),
        access_key_id: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn identity() -> UserIdentity {
        example_identity()
    }

    #[test]
    fn rfc3339_formats_known_instants() {
        assert_eq!(rfc3339_millis(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339_millis(951_782_400_123), "2000-02-29T00:00:00.123Z");
        assert_eq!(
            rfc3339_millis(1_714_564_800_007),
            "2024-05-01T12:00:00.007Z"
        );
        assert_eq!(rfc3339_millis(-1), "1969-12-31T23:59:59.999Z");
        assert_eq!(
            rfc3339_millis(4_102_444_799_999),
            "2099-12-31T23:59:59.999Z"
        );
    }

    #[test]
    fn request_ids_are_uuid_v4() {
        let id = new_request_id();
        assert_eq!(id.len(), 36);
        let parts: Vec<&str> = id.split('-').collect();
        assert_eq!(
            parts.iter().map(|p| p.len()).collect::<Vec<_>>(),
            [8, 4, 4, 4, 12]
        );
        assert!(parts[2].starts_with('4'));
        assert!(matches!(&parts[3][..1], "8" | "9" | "a" | "b"));
        assert_ne!(new_request_id(), id);
    }

    #[test]
    fn event_serializes_with_cloudtrail_names_in_order() {
        let event = AuditEvent::new("Encrypt", "eu-west-1", identity())
            .at(1_714_564_800_007)
            .with_request_id("11111111-2222-4333-8444-555555555555")
            .with_request_parameters(json!({
                "keyId": "alias/orders",
                "encryptionAlgorithm": "SYMMETRIC_DEFAULT",
                "encryptionContext": {"tenant": "42"}
            }))
            .with_key(
                "111122223333",
                "arn:aws:kms:eu-west-1:111122223333:key/1234abcd",
            );
        let json = event.to_json().unwrap();
        let value: Value = serde_json::from_str(&json).unwrap();
        assert_eq!(value["eventTime"], "2024-05-01T12:00:00.007Z");
        assert_eq!(value["eventSource"], "kms.amazonaws.com");
        assert_eq!(value["eventName"], "Encrypt");
        assert_eq!(value["awsRegion"], "eu-west-1");
        assert_eq!(value["userIdentity"]["type"], "IAMUser");
        assert_eq!(value["userIdentity"]["accountId"], "111122223333");
        assert_eq!(value["requestID"], "11111111-2222-4333-8444-555555555555");
        assert_eq!(value["resources"][0]["type"], "AWS::KMS::Key");
        assert_eq!(
            value["resources"][0]["ARN"],
            "arn:aws:kms:eu-west-1:111122223333:key/1234abcd"
        );
        assert_eq!(value["responseElements"], Value::Null);
        assert_eq!(value["eventType"], "AwsApiCall");
        assert_eq!(value["recipientAccountId"], "111122223333");
        assert!(value.get("errorCode").is_none());
        assert!(value.get("additionalEventData").is_none());
        assert!(json.starts_with(r#"{"eventVersion":"1.08","userIdentity":{"type":"IAMUser""#));
        assert!(!json.contains('\n'));
    }

    #[test]
    fn batch_and_error_members() {
        let mut counts = BTreeMap::new();
        counts.insert("NotFoundException".to_string(), 2);
        let event = AuditEvent::new("Encrypt", "us-east-1", identity())
            .with_batch(10, counts)
            .with_error("AccessDeniedException", "not allowed");
        let value: Value = serde_json::from_str(&event.to_json().unwrap()).unwrap();
        assert_eq!(value["additionalEventData"]["itemCount"], 10);
        assert_eq!(
            value["additionalEventData"]["errorCounts"]["NotFoundException"],
            2
        );
        assert_eq!(value["errorCode"], "AccessDeniedException");
        assert_eq!(value["errorMessage"], "not allowed");
    }

    #[test]
    fn newlines_in_values_stay_escaped() {
        let event = AuditEvent::new("Encrypt", "us-east-1", identity())
            .with_error("ValidationException", "line one\nline two\r\n");
        assert!(!event.to_json().unwrap().contains('\n'));
    }
}
