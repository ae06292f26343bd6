//! PutKeyPolicy, GetKeyPolicy, ListKeyPolicies.

use super::page::Page;
use crate::access::authorize::KeyAccess;
use crate::access::request_facts::RequestFacts;
use crate::access::Action;
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::key::state::KeyOperation;
use crate::key::KeyManager;
use crate::messages;
use crate::policy::KeyPolicy;
use crate::validation::Value;

/// The one policy name a key has.
pub const DEFAULT_POLICY_NAME: &str = "default";

fn check_policy_name(name: Option<&str>) -> Result<()> {
    match name {
        None | Some(DEFAULT_POLICY_NAME) => Ok(()),
        Some(other) => Err(Error::NotFound(format!(
            "policy '{other}' does not exist; a key has one policy, named 'default'"
        ))),
    }
}

impl Engine {
    /// Replaces a key's policy. Refused if the new policy would not let the caller change it
    /// again (lockout), unless `bypass_policy_lockout_safety_check`.
    pub fn put_key_policy(
        &self,
        key_id: &str,
        policy: &str,
        policy_name: Option<&str>,
        bypass_policy_lockout_safety_check: bool,
    ) -> Result<()> {
        let members: &[(&str, Value)] = &[
            ("KeyId", key_id.into()),
            ("PolicyName", policy_name.into()),
            ("Policy", policy.into()),
        ];
        self.audited_request(Action::PutKeyPolicy, Some(key_id), members, || {
            check_policy_name(policy_name)?;
            let facts = RequestFacts {
                bypass_policy_lockout_safety_check: Some(bypass_policy_lockout_safety_check),
                ..RequestFacts::default()
            };
            // The key is found (NotFoundException) before its new policy is read, as the
            // service does.
            let (op, action) = (KeyOperation::UpdateMetadata, Action::PutKeyPolicy);
            self.change_key_request(key_id, op, action, facts, |state, mut record| {
                let parsed = self.parse_new_policy(policy)?;
                if record.key_manager == KeyManager::Aws {
                    return Err(Error::AccessDenied(format!(
                        "{} is managed by an integrated service; its policy cannot be changed",
                        record.id
                    )));
                }
                if !bypass_policy_lockout_safety_check {
                    self.check_lockout(&record, parsed)?;
                }
                record.policy = policy.to_owned();
                self.save_key(state, record, None)
            })
        })
    }

    /// Refuses a policy under which the caller could no longer call PutKeyPolicy.
    pub(crate) fn check_lockout(
        &self,
        record: &crate::key::KeyRecord,
        policy: KeyPolicy,
    ) -> Result<()> {
        let access = KeyAccess::new(policy, record, &self.inner.config.region);
        access
            .check(
                &self.caller,
                Action::PutKeyPolicy,
                &self.inner.scope.key_arn(&record.id),
                record.key_spec,
                record.key_usage,
                &RequestFacts::default(),
            )
            .map_err(|_| messages::policy_lockout())
    }

    /// A key's policy document.
    pub fn get_key_policy(&self, key_id: &str, policy_name: Option<&str>) -> Result<String> {
        let members: &[(&str, Value)] =
            &[("KeyId", key_id.into()), ("PolicyName", policy_name.into())];
        self.audited_request(Action::GetKeyPolicy, Some(key_id), members, || {
            check_policy_name(policy_name)?;
            let state = self.control()?;
            let record = self.key_for(&state, key_id, KeyOperation::Read, Action::GetKeyPolicy)?;
            Ok(record.policy)
        })
    }

    /// The names of a key's policies (always just `default`).
    pub fn list_key_policies(&self, key_id: &str) -> Result<Page<String>> {
        self.audited(Action::ListKeyPolicies, Some(key_id), || {
            crate::validation::key_id(Action::ListKeyPolicies, key_id)?;
            let state = self.control()?;
            self.key_for(&state, key_id, KeyOperation::Read, Action::ListKeyPolicies)?;
            Ok(Page {
                items: vec![DEFAULT_POLICY_NAME.to_owned()],
                next_marker: None,
                truncated: false,
            })
        })
    }
}
