//! The table's own types: an operation, its members and their constraints, as
//! `rules.rs` (generated from the service model) spells them.

/// What kind of value a member holds, as the model types it (every type the model has; the
/// table uses those its operations need).
#[allow(dead_code)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    String,
    Blob,
    Integer,
    Long,
    Boolean,
    Timestamp,
    List,
    Map,
    Structure,
}

/// One input member of an operation, with its shape's constraints.
#[derive(Debug)]
pub(crate) struct Member {
    /// The model's spelling (`KeyId`).
    pub(crate) name: &'static str,
    pub(crate) kind: Kind,
    pub(crate) required: bool,
    /// The model marks the shape sensitive: its value is never shown.
    pub(crate) sensitive: bool,
    /// Least length (strings, blobs, lists, maps) or value (numbers).
    pub(crate) min: Option<i64>,
    /// Greatest length or value.
    pub(crate) max: Option<i64>,
    /// The allowed values, in the model's order; empty for no enumeration.
    pub(crate) enumeration: &'static [&'static str],
    /// The model's regular expression, matched against the whole value.
    pub(crate) pattern: Option<&'static str>,
}

/// An operation's input members.
#[derive(Debug)]
pub(crate) struct Operation {
    pub(crate) name: &'static str,
    pub(crate) members: &'static [Member],
}

impl Operation {
    /// The member named `name`. The glue names members with literals that the compiler
    /// usually merges with the table's, so the address is compared before the bytes.
    pub(super) fn member(&self, name: &str) -> Option<&'static Member> {
        self.members
            .iter()
            .find(|m| std::ptr::eq(m.name, name))
            .or_else(|| self.members.iter().find(|m| m.name == name))
    }
}
