//! The table's own types: an operation, its members, and the shapes that carry their
//! constraints, as `rules.rs` (generated from the service model) spells them.

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

/// A shape of the model (`KeyIdType`): the constraints of every member of that shape.
#[derive(Debug)]
pub(crate) struct Shape {
    pub(crate) kind: Kind,
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

/// The table states a shape as its kind and then each constraint the model gives it:
/// `Shape::of(Kind::String).min(1).max(2048)`.
impl Shape {
    /// A shape of `kind` without constraints.
    pub(crate) const fn of(kind: Kind) -> Shape {
        Shape {
            kind,
            sensitive: false,
            min: None,
            max: None,
            enumeration: &[],
            pattern: None,
        }
    }

    /// The same shape, marked sensitive.
    pub(crate) const fn sensitive(self) -> Shape {
        Shape {
            sensitive: true,
            ..self
        }
    }

    /// The same shape with least length or value `min`.
    pub(crate) const fn min(self, min: i64) -> Shape {
        Shape {
            min: Some(min),
            ..self
        }
    }

    /// The same shape with greatest length or value `max`.
    pub(crate) const fn max(self, max: i64) -> Shape {
        Shape {
            max: Some(max),
            ..self
        }
    }

    /// The same shape, allowing only `values`.
    pub(crate) const fn one_of(self, values: &'static [&'static str]) -> Shape {
        Shape {
            enumeration: values,
            ..self
        }
    }

    /// The same shape, whose whole value must match `pattern`.
    pub(crate) const fn matching(self, pattern: &'static str) -> Shape {
        Shape {
            pattern: Some(pattern),
            ..self
        }
    }
}

/// One input member of an operation, with its shape's constraints (copied from the shape's
/// constant by [`Member::of`], so the table states each shape once and a check reads the
/// constraints in place).
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

impl Member {
    /// Member `name` of shape `shape`.
    pub(crate) const fn of(name: &'static str, required: bool, shape: Shape) -> Member {
        Member {
            name,
            kind: shape.kind,
            required,
            sensitive: shape.sensitive,
            min: shape.min,
            max: shape.max,
            enumeration: shape.enumeration,
            pattern: shape.pattern,
        }
    }
}

/// An operation's input members.
#[derive(Debug)]
pub(crate) struct Operation {
    pub(crate) name: &'static str,
    pub(crate) members: &'static [Member],
}

impl Operation {
    /// The member named `name`, for a `const` in the glue (see `members.rs`'s `member!`): found
    /// when the crate is compiled, so a name the operation lacks fails the build, and a request's
    /// check looks nothing up.
    pub(crate) const fn member_named(&'static self, name: &str) -> &'static Member {
        let mut i = 0;
        while i < self.members.len() {
            if bytes_eq(self.members[i].name.as_bytes(), name.as_bytes()) {
                return &self.members[i];
            }
            i += 1;
        }
        panic!("the operation has no member of that name in the service's model")
    }

    /// The member named `name`. The glue names members with literals that the compiler
    /// usually merges with the table's, so the address is compared before the bytes.
    pub(super) fn member(&self, name: &str) -> Option<&'static Member> {
        self.members
            .iter()
            .find(|m| std::ptr::eq(m.name, name))
            .or_else(|| self.members.iter().find(|m| m.name == name))
    }
}

const fn bytes_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}
