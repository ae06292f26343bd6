//! GetKeyLastUsage: the last successful cryptographic operation with a key, as this engine's
//! audit records saw it.

use uuid::Uuid;

use crate::access::Action;
use crate::call::audit::Audit;
use crate::clock::Timestamp;
use crate::engine::Engine;
use crate::error::Result;

/// The last successful cryptographic use of a key.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct KeyLastUsage {
    pub operation: String,
    pub timestamp: Timestamp,
    pub cloud_trail_event_id: String,
    pub kms_request_id: String,
}

/// GetKeyLastUsage's answer.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct GetKeyLastUsageResponse {
    pub key_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_last_usage: Option<KeyLastUsage>,
    /// When this engine began recording uses (its audit log opened); absent without audit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tracking_start_date: Option<Timestamp>,
    pub key_creation_date: Timestamp,
}

impl Audit {
    /// The last use of `key` known to this process, after reading what other processes appended
    /// (best effort: a log that cannot be read now leaves what is known).
    pub(crate) fn last_usage(&self, key: &Uuid) -> Option<KeyLastUsage> {
        let mut uses = self.last_usage.lock().ok()?;
        if let Some(dir) = &self.dir {
            let _ = uses.refresh(dir);
        }
        uses.get(key).map(|u| KeyLastUsage {
            operation: u.operation.clone(),
            timestamp: Timestamp(u.time_ms),
            cloud_trail_event_id: u.event_id.clone(),
            kms_request_id: u.request_id.clone(),
        })
    }
}

impl Engine {
    /// GetKeyLastUsage: the last successful cryptographic operation with a key, from this
    /// engine's audit records.
    pub fn get_key_last_usage(&self, key_id: &str) -> Result<GetKeyLastUsageResponse> {
        self.audited(Action::GetKeyLastUsage, Some(key_id), || {
            crate::validation::key_id(Action::GetKeyLastUsage, key_id)?;
            let state = self.control()?;
            let record = self.key_for(
                &state,
                key_id,
                crate::key::KeyOperation::Read,
                Action::GetKeyLastUsage,
            )?;
            Ok(GetKeyLastUsageResponse {
                key_id: self.inner.scope.key_arn(&record.id),
                key_last_usage: self
                    .inner
                    .audit
                    .as_ref()
                    .and_then(|a| a.last_usage(&record.id)),
                tracking_start_date: self.inner.audit.as_ref().map(|a| a.started),
                key_creation_date: record.created,
            })
        })
    }
}
