//! CreateAlias, UpdateAlias, DeleteAlias, ListAliases.

use std::ops::Bound;

use super::page::{self, Page};
use crate::access::request_facts::RequestFacts;
use crate::access::Action;
use crate::clock::Timestamp;
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::key::identifier::{validate_alias_name, KeyReference, ALIAS_PREFIX};
use crate::key::state::KeyOperation;
use crate::key::AliasRecord;
use crate::messages;
use crate::store::StoreChange;
use crate::validation::Value;

/// One entry of ListAliases. The predefined alias of an integrated service whose managed key
/// does not exist yet has no target and no dates, as in the service's answer.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct AliasListEntry {
    pub alias_name: String,
    pub alias_arn: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_key_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub creation_date: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_updated_date: Option<Timestamp>,
}

impl Engine {
    /// An alias given by name or by alias ARN, as its name; anything else lacks the `alias/`
    /// prefix (ValidationException).
    fn alias_name<'a>(&self, alias: &'a str) -> Result<&'a str> {
        if !alias.starts_with("arn:") {
            return Ok(alias);
        }
        match self.inner.scope.parse(alias) {
            Ok(KeyReference::Alias(name)) => Ok(name),
            Ok(KeyReference::Key(_)) => Err(messages::alias_prefix_missing()),
            Err(e) if e.code() == "NotFoundException" && alias.contains(":alias/") => Err(e),
            Err(_) => Err(messages::alias_prefix_missing()),
        }
    }

    /// Creates `alias_name` (`alias/...`, or its alias ARN) pointing to a key.
    pub fn create_alias(&self, alias_name: &str, target_key_id: &str) -> Result<()> {
        let members: &[(&str, Value)] = &[
            ("AliasName", alias_name.into()),
            ("TargetKeyId", target_key_id.into()),
        ];
        self.audited_request(Action::CreateAlias, Some(target_key_id), members, || {
            // The service's order: the name's prefix, the reserved prefix, (the model's pattern,
            // checked before the engine sees the request), a target that is an alias, then an
            // existing alias of that name.
            let alias_name = self.alias_name(alias_name)?;
            validate_alias_name(alias_name)?;
            self.inner
                .scope
                .parse_for(target_key_id, Action::CreateAlias)?;
            self.control_retrying(|state| {
                if state.aliases.contains_key(alias_name) {
                    return Err(messages::alias_exists(
                        &self.inner.scope.alias_arn(alias_name),
                    ));
                }
                let target = self.key_for(
                    state,
                    target_key_id,
                    KeyOperation::AliasTarget,
                    Action::CreateAlias,
                )?;
                let now = self.inner.clock.now();
                let alias = AliasRecord {
                    name: alias_name.to_owned(),
                    target: target.id,
                    created: now,
                    updated: now,
                };
                self.commit(state, &[StoreChange::PutAlias(&alias)])?;
                let name = alias.name.clone();
                state.put_alias(alias);
                self.publish(state, &[], &[name]);
                Ok(())
            })
        })
    }

    /// Points an existing alias at another key of the same type and usage.
    pub fn update_alias(&self, alias_name: &str, target_key_id: &str) -> Result<()> {
        let members: &[(&str, Value)] = &[
            ("AliasName", alias_name.into()),
            ("TargetKeyId", target_key_id.into()),
        ];
        self.audited_request(Action::UpdateAlias, Some(target_key_id), members, || {
            let alias_name = self.alias_name(alias_name)?;
            validate_alias_name(alias_name)?;
            self.control_retrying(|state| {
                let mut alias = state.aliases.get(alias_name).cloned().ok_or_else(|| {
                    messages::alias_not_found(&self.inner.scope.alias_arn(alias_name))
                })?;
                let target = self.key_for(
                    state,
                    target_key_id,
                    KeyOperation::AliasTarget,
                    Action::UpdateAlias,
                )?;
                let current = state.record(&alias.target)?;
                self.authorize_key(current, Action::UpdateAlias, &RequestFacts::default())?;
                if current.key_spec.family() != target.key_spec.family()
                    || current.key_usage != target.key_usage
                {
                    return Err(Error::Validation(format!(
                    "alias '{alias_name}' points to a {} {} key; its new key must be of the same \
                     type and usage, not a {} {} key",
                    current.key_spec.family(),
                    current.key_usage,
                    target.key_spec.family(),
                    target.key_usage
                )));
                }
                alias.target = target.id;
                alias.updated = self.inner.clock.now();
                self.commit(state, &[StoreChange::PutAlias(&alias)])?;
                let name = alias.name.clone();
                state.put_alias(alias);
                self.publish(state, &[], &[name]);
                Ok(())
            })
        })
    }

    /// Deletes an alias; the key it pointed to is unaffected.
    pub fn delete_alias(&self, alias_name: &str) -> Result<()> {
        let members: &[(&str, Value)] = &[("AliasName", alias_name.into())];
        self.audited_request(Action::DeleteAlias, Some(alias_name), members, || {
            let alias_name = self.alias_name(alias_name)?;
            if !alias_name.starts_with(ALIAS_PREFIX) {
                return Err(messages::alias_prefix_missing());
            }
            self.control_retrying(|state| {
                let Some(alias) = state.aliases.get(alias_name) else {
                    return Err(messages::alias_not_found(
                        &self.inner.scope.alias_arn(alias_name),
                    ));
                };
                self.authorize_key(
                    state.record(&alias.target)?,
                    Action::DeleteAlias,
                    &RequestFacts::default(),
                )?;
                self.commit(state, &[StoreChange::DeleteAlias(alias_name)])?;
                state.remove_alias(alias_name);
                self.publish(state, &[], &[alias_name]);
                Ok(())
            })
        })
    }

    /// ListAliases: every alias, or those of one key; `limit` 1–100 (default 50), by name.
    pub fn list_aliases(
        &self,
        key_id: Option<&str>,
        limit: Option<u32>,
        marker: Option<&str>,
    ) -> Result<Page<AliasListEntry>> {
        let members: &[(&str, Value)] = &[
            ("KeyId", key_id.into()),
            ("Limit", limit.into()),
            ("Marker", marker.into()),
        ];
        self.audited_request(Action::ListAliases, key_id, members, || {
            let limit = page::limit(limit, 50, 100)?;
            self.authorize_account(Action::ListAliases)?;
            let state = self.control()?;
            let only = key_id
                .map(|k| self.resolve_id(&state, k, Action::ListAliases))
                .transpose()?;
            // The page is decided by the first `limit + 1` names after the marker, so only that
            // many are taken from the alias map (a range, not a walk of every alias) or from the
            // key's own aliases (its index); the predefined names (a few dozen) are merged in.
            let after = |name: &str| marker.is_none_or(|m| name > m);
            let candidates: Vec<&AliasRecord> = match only {
                Some(id) => state
                    .aliases_of(&id)
                    .iter()
                    .filter(|name| after(name))
                    .filter_map(|name| state.aliases.get(name))
                    .take(limit + 1)
                    .collect(),
                None => {
                    let start = marker.map_or(Bound::Unbounded, Bound::Excluded);
                    state
                        .aliases
                        .range::<str, _>((start, Bound::Unbounded))
                        .map(|(_, alias)| alias)
                        .take(limit + 1)
                        .collect()
                }
            };
            let mut entries: std::collections::BTreeMap<String, AliasListEntry> = candidates
                .into_iter()
                .map(|a| {
                    let entry = AliasListEntry {
                        alias_name: a.name.clone(),
                        alias_arn: self.inner.scope.alias_arn(&a.name),
                        target_key_id: Some(crate::key::identifier::key_id_string(&a.target)),
                        creation_date: Some(a.created),
                        last_updated_date: Some(a.updated),
                    };
                    (a.name.clone(), entry)
                })
                .collect();
            if only.is_none() {
                for name in super::managed::predefined_aliases().filter(|n| after(n)) {
                    entries
                        .entry(name)
                        .or_insert_with_key(|name| AliasListEntry {
                            alias_name: name.clone(),
                            alias_arn: self.inner.scope.alias_arn(name),
                            target_key_id: None,
                            creation_date: None,
                            last_updated_date: None,
                        });
                }
            }
            page::paginate(entries.into_iter(), marker, limit, |m| {
                m.starts_with(ALIAS_PREFIX)
            })
        })
    }
}
