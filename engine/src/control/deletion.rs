//! ScheduleKeyDeletion and CancelKeyDeletion, and the deletion itself when its date comes.

use uuid::Uuid;

use super::working_copy::ControlState;
use crate::access::request_facts::RequestFacts;
use crate::access::Action;
use crate::clock::Timestamp;
use crate::engine::Engine;
use crate::error::{validation, Error, Result};
use crate::key::state::KeyOperation;
use crate::key::KeyState;
use crate::store::StoreChange;
use crate::validation::Value;

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
    /// Absent for a multi-Region primary key with replicas: its waiting period begins when its
    /// last replica is deleted (state PendingReplicaDeletion).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deletion_date: Option<Timestamp>,
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
        let members: &[(&str, Value)] = &[
            ("KeyId", key_id.into()),
            ("PendingWindowInDays", pending_window_in_days.into()),
        ];
        self.audited_request(Action::ScheduleKeyDeletion, Some(key_id), members, || {
            let window = pending_window_in_days.unwrap_or(DEFAULT_PENDING_WINDOW_DAYS);
            if !(MIN_PENDING_WINDOW_DAYS..=MAX_PENDING_WINDOW_DAYS).contains(&window) {
                return Err(validation!(
                    "PendingWindowInDays must be {MIN_PENDING_WINDOW_DAYS} to \
                     {MAX_PENDING_WINDOW_DAYS}, not {window}"
                ));
            }
            let window_text = window.to_string();
            let facts = RequestFacts {
                pending_window_in_days: Some(&window_text),
                ..RequestFacts::default()
            };
            let op = KeyOperation::ScheduleKeyDeletion;
            let action = Action::ScheduleKeyDeletion;
            self.change_key_request(key_id, op, action, facts, |state, mut record| {
                // A multi-Region primary key with replicas waits for their deletion first.
                let (key_state, deletion_date) = if self.has_replicas(&record) {
                    (KeyState::PendingReplicaDeletion, None)
                } else {
                    (
                        KeyState::PendingDeletion,
                        Some(self.inner.clock.now().plus_days(window)),
                    )
                };
                record.state = key_state;
                record.deletion_date = deletion_date;
                record.pending_window_days = Some(window);
                let arn = self.inner.scope.key_arn(&record.id);
                self.save_key(state, record, None)?;
                Ok(ScheduleKeyDeletionResponse {
                    key_id: arn,
                    deletion_date,
                    key_state,
                    pending_window_in_days: window,
                })
            })
        })
    }

    /// Cancels a scheduled deletion; the key returns Disabled, as in the service.
    pub fn cancel_key_deletion(&self, key_id: &str) -> Result<String> {
        self.audited(Action::CancelKeyDeletion, Some(key_id), || {
            crate::validation::key_id(Action::CancelKeyDeletion, key_id)?;
            let (op, action) = (KeyOperation::CancelKeyDeletion, Action::CancelKeyDeletion);
            self.change_key(key_id, op, action, |state, mut record| {
                // A key whose (imported) material is missing returns to PendingImport.
                record.state = if !record.has_all_material() {
                    KeyState::PendingImport
                } else {
                    KeyState::Disabled
                };
                record.deletion_date = None;
                record.pending_window_days = None;
                let arn = self.inner.scope.key_arn(&record.id);
                self.save_key(state, record, None)?;
                Ok(arn)
            })
        })
    }

    /// Deletes a key, its material and its aliases for good.
    pub(crate) fn delete_now(&self, state: &mut ControlState, id: Uuid) -> Result<()> {
        if let Some(record) = state.keys.get(&id) {
            // A multi-Region key leaves the other Regions' lists first. If a peer store cannot
            // be written now, the key stays pending and the deletion is tried again later.
            if let Err(e) = self.forget_deleted_replica(record) {
                eprintln!(
                    "keyplane: the deletion of multi-Region key {} waits: the other Regions' \
                     stores could not be updated ({e})",
                    self.inner.scope.key_arn(&id)
                );
                return Ok(());
            }
        }
        self.commit(state, &[StoreChange::DeleteKey(id)])?;
        let placement = state.keys.get(&id).and_then(|r| r.custom_key_store.clone());
        let aliases = state.remove_key(&id);
        self.publish(state, &[id], &aliases);
        if let Some(placement) = placement {
            self.delete_backing_key(&placement);
        }
        Ok(())
    }

    /// A deleted key in a custom key store: its backing key goes too, as a best effort (the
    /// service's), when the store is connected; otherwise it is left for the HSM's owner.
    fn delete_backing_key(&self, placement: &crate::key::CustomKeyStoreKey) {
        let deleted = match self.inner.custom_key_stores.connection(&placement.store_id) {
            Some(connection) => connection
                .get(&placement.store_id, Error::CustomKeyStoreInvalidState)
                .and_then(|c| c.delete_backing_key(&placement.backing_key_id)),
            None => Err(Error::CustomKeyStoreInvalidState(
                "the custom key store is not connected".into(),
            )),
        };
        if let Err(e) = deleted {
            eprintln!(
                "keyplane: the backing key {} in custom key store {} was left in place: {e}",
                placement.backing_key_id, placement.store_id
            );
        }
    }
}
