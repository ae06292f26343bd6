//! TagResource, UntagResource, ListResourceTags.

use super::page::{self, Page};
use crate::access::request_facts::RequestFacts;
use crate::access::Action;
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::key::state::KeyOperation;
use crate::key::Tag;
use crate::messages;
use crate::validation::Value;

/// Most tags a key carries.
pub const MAX_TAGS: usize = 50;

fn check_tag(tag: &Tag) -> Result<()> {
    let key_len = tag.tag_key.chars().count();
    if !(1..=128).contains(&key_len) {
        return Err(Error::Tag(format!(
            "tag key '{}' must be 1 to 128 characters",
            tag.tag_key
        )));
    }
    if tag.tag_value.chars().count() > 256 {
        return Err(Error::Tag(format!(
            "the value of tag '{}' must be at most 256 characters",
            tag.tag_key
        )));
    }
    if tag.tag_key.starts_with("aws:") {
        return Err(messages::reserved_tag());
    }
    Ok(())
}

/// Adds or overwrites `new` tags in `tags`, checking each and the total.
pub(crate) fn merge_tags(tags: &mut Vec<Tag>, new: Vec<Tag>) -> Result<()> {
    for tag in new {
        check_tag(&tag)?;
        match tags.iter_mut().find(|t| t.tag_key == tag.tag_key) {
            Some(existing) => existing.tag_value = tag.tag_value,
            None => tags.push(tag),
        }
    }
    if tags.len() > MAX_TAGS {
        return Err(Error::Tag(format!("a key carries at most {MAX_TAGS} tags")));
    }
    tags.sort_by(|a, b| a.tag_key.cmp(&b.tag_key));
    Ok(())
}

impl Engine {
    /// Adds tags to a key, or overwrites the values of tags it has.
    pub fn tag_resource(&self, key_id: &str, tags: Vec<Tag>) -> Result<()> {
        let members: &[(&str, Value)] =
            &[("KeyId", key_id.into()), ("Tags", Value::Items(tags.len()))];
        self.audited_request(Action::TagResource, Some(key_id), members, || {
            let facts = RequestFacts {
                request_tags: Some(&tags),
                ..RequestFacts::default()
            };
            let (op, action) = (KeyOperation::UpdateMetadata, Action::TagResource);
            self.change_key_request(key_id, op, action, facts, |state, mut record| {
                merge_tags(&mut record.tags, tags.clone())?;
                self.save_key(state, record, None)
            })
        })
    }

    /// Removes tags (by key) from a key; keys it does not carry are ignored.
    pub fn untag_resource(&self, key_id: &str, tag_keys: &[&str]) -> Result<()> {
        let members: &[(&str, Value)] = &[
            ("KeyId", key_id.into()),
            ("TagKeys", Value::Items(tag_keys.len())),
        ];
        self.audited_request(Action::UntagResource, Some(key_id), members, || {
            let facts = RequestFacts {
                tag_keys: Some(tag_keys),
                ..RequestFacts::default()
            };
            let (op, action) = (KeyOperation::UpdateMetadata, Action::UntagResource);
            self.change_key_request(key_id, op, action, facts, |state, mut record| {
                record
                    .tags
                    .retain(|t| !tag_keys.contains(&t.tag_key.as_str()));
                self.save_key(state, record, None)
            })
        })
    }

    /// ListResourceTags: `limit` 1–50 (default 50), in tag key order.
    pub fn list_resource_tags(
        &self,
        key_id: &str,
        limit: Option<u32>,
        marker: Option<&str>,
    ) -> Result<Page<Tag>> {
        let members: &[(&str, Value)] = &[
            ("KeyId", key_id.into()),
            ("Limit", limit.into()),
            ("Marker", marker.into()),
        ];
        self.audited_request(Action::ListResourceTags, Some(key_id), members, || {
            let limit = page::limit(limit, 50, 50)?;
            let state = self.control()?;
            let record =
                self.key_for(&state, key_id, KeyOperation::Read, Action::ListResourceTags)?;
            page::paginate(
                record.tags.into_iter().map(|t| (t.tag_key.clone(), t)),
                marker,
                limit,
                |m| (1..=128).contains(&m.chars().count()),
            )
        })
    }
}
