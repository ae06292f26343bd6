//! ScheduleKeyDeletion and CancelKeyDeletion, and the deletion itself when its date comes.

use uuid::Uuid;

use super::ControlState;
use crate::access::authorize::RequestFacts;
use crate::access::Action;
use crate::clock::Timestamp;
use crate::engine::Engine;
use crate::error::{validation, Result};
use crate::key::state::KeyOperation;
use crate::key::KeyState;
use crate::store::StoreChange;

/// Shortest and longest waiting period, and the default, in days.
pub const MIN_PENDING_WINDOW_DAYS: u32 = 7;
pub const MAX_PENDING_WINDOW_DAYS: u32 = 30;
pub const DEFAULT_PENDING_WINDOW_DAYS: u32 = 30;

/// ScheduleKeyDeletion's answer.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ScheduleKeyDeletionResponse {
    /// The key's ARN.
    pub key_id: String,
    pub deletion_date: Timestamp,
    pub key_state: KeyState,
    pub pending_window_in_days: u32,
}

impl Engine {
    /// Schedules a key's deletion after a waiting period of 7–30 days (default 30). Until then
    /// the key is PendingDeletion: it cannot be used, and the deletion can be cancelled.
    pub fn schedule_key_deletion(
        &self,
        key_id: &str,
        pending_window_in_days: Option<u32>,
    ) -> Result<ScheduleKeyDeletionResponse> {
        self.audited(Action::ScheduleKeyDeletion, Some(key_id), || {
            crate::validation::check(
                &crate::validation::rules::SCHEDULE_KEY_DELETION,
                &[
                    ("KeyId", key_id.into()),
                    ("PendingWindowInDays", pending_window_in_days.into()),
                ],
                &[],
            )?;
            let window = pending_window_in_days.unwrap_or(DEFAULT_PENDING_WINDOW_DAYS);
            if !(MIN_PENDING_WINDOW_DAYS..=MAX_PENDING_WINDOW_DAYS).contains(&window) {
                return Err(validation!(
                    "PendingWindowInDays must be {MIN_PENDING_WINDOW_DAYS} to \
                     {MAX_PENDING_WINDOW_DAYS}, not {window}"
                ));
            }
            let mut state = self.control()?;
            let window_text = window.to_string();
            let facts = RequestFacts {
                pending_window_in_days: Some(&window_text),
                ..RequestFacts::default()
            };
            let mut record = self.key_for_request(
                &state,
                key_id,
                KeyOperation::ScheduleKeyDeletion,
                Action::ScheduleKeyDeletion,
                facts,
            )?;
            let deletion_date = self.inner.clock.now().plus_days(window);
            record.state = KeyState::PendingDeletion;
            record.deletion_date = Some(deletion_date);
            record.pending_window_days = Some(window);
            let arn = self.inner.scope.key_arn(&record.id);
            self.save_key(&mut state, record, None)?;
            Ok(ScheduleKeyDeletionResponse {
                key_id: arn,
                deletion_date,
                key_state: KeyState::PendingDeletion,
                pending_window_in_days: window,
            })
        })
    }

    /// Cancels a scheduled deletion; the key returns Disabled, as in the service.
    pub fn cancel_key_deletion(&self, key_id: &str) -> Result<String> {
        self.audited(Action::CancelKeyDeletion, Some(key_id), || {
            crate::validation::check(
                &crate::validation::rules::CANCEL_KEY_DELETION,
                &[("KeyId", key_id.into())],
                &[],
            )?;
            let mut state = self.control()?;
            let mut record = self.key_for(
                &state,
                key_id,
                KeyOperation::CancelKeyDeletion,
                Action::CancelKeyDeletion,
            )?;
            // A key whose (imported) material is missing returns to PendingImport.
            record.state = if !record.has_all_material() {
                KeyState::PendingImport
            } else {
                KeyState::Disabled
            };
            record.deletion_date = None;
            record.pending_window_days = None;
            let arn = self.inner.scope.key_arn(&record.id);
            self.save_key(&mut state, record, None)?;
            Ok(arn)
        })
    }

    /// Deletes a key, its material and its aliases for good.
    pub(crate) fn delete_now(&self, state: &mut ControlState, id: Uuid) -> Result<()> {
        self.commit(state, &[StoreChange::DeleteKey(id)])?;
        state.keys.remove(&id);
        state.versions.remove(&id);
        state.aliases.retain(|_, alias| alias.target != id);
        self.publish(state, &[id], true);
        Ok(())
    }
}
