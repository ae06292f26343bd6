//! Request validation from the service's API model, with the service's own messages.
//!
//! The constraints (required members, length and value ranges, enumerations, patterns) come from
//! one place: [`rules`], generated from the vendored model `engine/model/kms-service-2.json` by the
//! test `engine/tests/validation_rules.rs` (which also fails when the committed table is stale).
//! Every engine entry point lists its request's members as `(model member name, value)` and
//! calls [`check`] before anything else runs, so the C ABI, Python, the CLI and any network
//! endpoint report the same ValidationException.
//!
//! The service's wording, as its answers show it (captures of real responses, and the
//! service's examples):
//!
//! ```text
//! 1 validation error detected: Value at 'plaintext' failed to satisfy constraint: Member must have length greater than or equal to 1
//! 1 validation error detected: Value 'FOO' at 'keySpec' failed to satisfy constraint: Member must satisfy enum value set: [RSA_2048, ...]
//! 1 validation error detected: Value '0' at 'numberOfBytes' failed to satisfy constraint: Member must have value greater than or equal to 1
//! 1 validation error detected: Value null at 'keyId' failed to satisfy constraint: Member must not be null
//! 2 validation errors detected: Value '' at 'keyId' failed to satisfy constraint: ...; Value '' at 'keyId' failed to satisfy constraint: ...
//! ```
//!
//! - The member is named as the service writes it: the model's name with its first letter
//!   lowercased (`Plaintext` → `plaintext`, `NumberOfBytes` → `numberOfBytes`).
//! - The value: strings, enumerations and numbers are shown quoted (`Value 'X' at`, `Value '0'
//!   at`); a missing member is `Value null at`; blobs are never shown (`Value at 'signature'`);
//!   a member whose shape the model marks sensitive (`Plaintext`, and `Message`, whose shape is
//!   the plaintext's) shows nothing at all, not even `null` (`Value at 'plaintext' failed to
//!   satisfy constraint: Member must not be null`). Lists and maps are shown as blobs are (not
//!   verified against the service).
//! - Constraints per member, in this order: not null; length at least / at most (strings in
//!   UTF-16 code units, as the service's Java runtime counts them; blobs in bytes; lists and maps
//!   in items); value at least / at most; enum value set (unquoted, in the model's order);
//!   regular expression pattern (the model's text, matched against the whole value).
//! - Several failures are counted and joined with `; `, in the order the request lists its
//!   members.
//!
//! Where the engine's configuration deliberately differs from the model, the configured limit
//! wins and the message shows it: [`crate::EngineConfig::max_plaintext_bytes`] (up to 1 MiB for
//! bulk use) replaces the model's 4096 for Encrypt's `Plaintext`, and the blob that such a
//! plaintext makes replaces the model's 6144 for the `CiphertextBlob` of Decrypt and ReEncrypt.
//!
//! Known differences between the published model and the live service, kept as the model says
//! (the table is generated from the model and nothing else): captures of the live service list
//! some enumerations in another order (EncryptionAlgorithm as `[RSAES_OAEP_SHA_1,
//! RSAES_OAEP_SHA_256, SM2PKE, SYMMETRIC_DEFAULT]`), and show a `^\p{ASCII}+$` pattern on `KeyId`
//! that the published model does not have.

mod members;
mod pattern;
#[rustfmt::skip]
pub(crate) mod rules;
mod table;

use crate::error::{Error, Result};

pub use table::Kind;
pub(crate) use table::{Member, Operation};

/// A member's value in a request, as the check sees it.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Value<'a> {
    /// Not given.
    Null,
    Str(&'a str),
    Blob(&'a [u8]),
    Int(i64),
    /// A list or map, by its number of items.
    Items(usize),
}

impl Value<'_> {
    #[inline]
    fn length(&self) -> Option<i64> {
        let n = match self {
            Value::Str(s) => utf16_len(s),
            Value::Blob(b) => b.len(),
            Value::Items(n) => *n,
            Value::Null | Value::Int(_) => return None,
        };
        Some(i64::try_from(n).unwrap_or(i64::MAX))
    }
}

/// The length of `s` in UTF-16 code units (what the service's Java runtime counts), without
/// decoding it: every character has one leading byte, and those of four bytes (leading byte
/// 0xF0 and up) are two units. Every data-plane item's key id goes through this, so it stays a
/// word-at-a-time pass (`is_ascii`) for the usual ASCII id and a branch-free count otherwise.
fn utf16_len(s: &str) -> usize {
    if s.is_ascii() {
        return s.len();
    }
    s.bytes()
        .map(|b| usize::from(b & 0xC0 != 0x80) + usize::from(b >= 0xF0))
        .sum()
}

/// A limit the engine's configuration sets in place of the model's greatest length.
#[derive(Clone, Copy, Debug)]
pub(crate) struct MaxLength {
    pub(crate) member: &'static str,
    pub(crate) max: usize,
}

/// `Plaintext` → `plaintext`: the service's spelling of a member in its messages.
fn wire_name(name: &str) -> String {
    let mut chars = name.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

fn failure(member: &Member, value: &Value<'_>, constraint: &str) -> String {
    debug_assert!(
        matches!(
            (member.kind, value),
            (_, Value::Null)
                | (Kind::String, Value::Str(_))
                | (Kind::Blob, Value::Blob(_))
                | (Kind::Integer | Kind::Long, Value::Int(_))
                | (Kind::List | Kind::Map, Value::Items(_))
        ),
        "{}'s glue gives a {value:?} for a {:?}",
        member.name,
        member.kind
    );
    failure_at(member.name, member.sensitive, value, constraint)
}

fn failure_at(name: &str, sensitive: bool, value: &Value<'_>, constraint: &str) -> String {
    let shown = match value {
        _ if sensitive => String::new(),
        Value::Null => "null ".to_owned(),
        Value::Str(s) => format!("'{s}' "),
        Value::Int(n) => format!("'{n}' "),
        Value::Blob(_) | Value::Items(_) => String::new(),
    };
    format!(
        "Value {shown}at '{}' failed to satisfy constraint: {constraint}",
        wire_name(name)
    )
}

/// The failures of one member, appended to `out` (allocates only on failure).
#[inline]
fn check_member(
    member: &Member,
    value: &Value<'_>,
    max_length: Option<usize>,
    out: &mut Vec<String>,
) {
    if let Value::Null = value {
        if member.required {
            out.push(failure(member, value, "Member must not be null"));
        }
        return;
    }
    if let Some(length) = value.length() {
        let max = length_max(member, max_length);
        if let Some(min) = member.min.filter(|min| length < *min) {
            out.push(failure(
                member,
                value,
                &format!("Member must have length greater than or equal to {min}"),
            ));
        }
        if let Some(max) = max.filter(|max| length > *max) {
            out.push(failure(
                member,
                value,
                &format!("Member must have length less than or equal to {max}"),
            ));
        }
    }
    if let Value::Int(n) = value {
        if let Some(min) = member.min.filter(|min| n < min) {
            out.push(failure(
                member,
                value,
                &format!("Member must have value greater than or equal to {min}"),
            ));
        }
        if let Some(max) = member.max.filter(|max| n > max) {
            out.push(failure(
                member,
                value,
                &format!("Member must have value less than or equal to {max}"),
            ));
        }
    }
    if let Value::Str(s) = value {
        if !member.enumeration.is_empty() && !member.enumeration.contains(s) {
            out.push(failure(member, value, &enum_constraint(member.enumeration)));
        }
        if let Some(pattern) = member.pattern {
            if !pattern::matches(pattern, s) {
                out.push(failure(
                    member,
                    value,
                    &format!("Member must satisfy regular expression pattern: {pattern}"),
                ));
            }
        }
    }
}

fn enum_constraint(values: &[&str]) -> String {
    format!(
        "Member must satisfy enum value set: [{}]",
        values.join(", ")
    )
}

/// The ValidationException for these failures, counted as the service counts them.
fn report(failures: Vec<String>) -> Result<()> {
    match failures.len() {
        0 => Ok(()),
        1 => Err(Error::Validation(format!(
            "1 validation error detected: {}",
            failures[0]
        ))),
        n => Err(Error::Validation(format!(
            "{n} validation errors detected: {}",
            failures.join("; ")
        ))),
    }
}

/// Checks a control-plane request's members against the service model's rules for `action`'s
/// operation (found by its name, as the model spells it), with the model's own limits. An action
/// the model has no operation for is a bug in the caller's glue, reported as an internal error.
pub(crate) fn check_request(
    action: crate::access::Action,
    members: &[(&str, Value<'_>)],
) -> Result<()> {
    check(modelled(action.operation())?, members, &[])
}

/// Checks a request's members against `operation`'s rules; `limits` replaces the model's
/// greatest length where the engine's configuration says so. A member name the operation does
/// not have is a bug in the caller's glue, reported as an internal error.
pub(crate) fn check(
    operation: &Operation,
    members: &[(&str, Value<'_>)],
    limits: &[MaxLength],
) -> Result<()> {
    let mut failures = Vec::new();
    for (name, value) in members {
        let Some(member) = operation.member(name) else {
            return Err(Error::Internal(format!(
                "{} has no member {name} in the service's model",
                operation.name
            )));
        };
        check_with_limits(member, value, limits, &mut failures);
    }
    report(failures)
}

/// As [`check`], for members the glue found in the table when it was compiled
/// ([`Operation::member_named`]): the data plane's per-item checks, which look nothing up.
/// Every request that passes (nearly all) is decided by [`passes`], inlined into the request's
/// glue (where each member's kind of value is known), without the failure messages' machinery;
/// one that does not is checked again member by member for its message.
#[inline(always)]
pub(crate) fn check_members(
    members: &[(&'static Member, Value<'_>)],
    limits: &[MaxLength],
) -> Result<()> {
    for (member, value) in members {
        if !passes(member, value, max_length(member, limits)) {
            return refuse_members(members, limits);
        }
    }
    Ok(())
}

/// The ValidationException for members of which at least one fails its constraints.
#[cold]
#[inline(never)]
fn refuse_members(members: &[(&'static Member, Value<'_>)], limits: &[MaxLength]) -> Result<()> {
    let mut failures = Vec::new();
    for (member, value) in members {
        check_with_limits(member, value, limits, &mut failures);
    }
    report(failures)
}

/// The greatest length `member` may have: the engine's limit where it sets one, else the
/// model's.
#[inline(always)]
fn length_max(member: &Member, max_length: Option<usize>) -> Option<i64> {
    max_length
        .map(|m| i64::try_from(m).unwrap_or(i64::MAX))
        .or(member.max)
}

/// The engine's limit for `member`'s length, if it sets one.
#[inline(always)]
fn max_length(member: &Member, limits: &[MaxLength]) -> Option<usize> {
    limits
        .iter()
        .find(|l| std::ptr::eq(l.member, member.name) || l.member == member.name)
        .map(|l| l.max)
}

/// [`check_member`] with the engine's limit for the member, if it sets one.
#[inline]
fn check_with_limits(
    member: &Member,
    value: &Value<'_>,
    limits: &[MaxLength],
    failures: &mut Vec<String>,
) {
    check_member(member, value, max_length(member, limits), failures);
}

/// Whether [`check_member`] finds nothing wrong with `value`: the same constraints, answered
/// without building a message (the test `passes_agrees_with_check_member` holds them together
/// over every member of the table).
#[inline(always)]
fn passes(member: &Member, value: &Value<'_>, max_length: Option<usize>) -> bool {
    let within = |n: i64, max: Option<i64>| {
        member.min.is_none_or(|min| n >= min) && max.is_none_or(|max| n <= max)
    };
    match *value {
        Value::Null => !member.required,
        Value::Int(n) => within(n, member.max),
        Value::Blob(_) | Value::Items(_) | Value::Str(_) => {
            let max = length_max(member, max_length);
            let length = value.length().unwrap_or(i64::MAX);
            within(length, max)
                && match *value {
                    Value::Str(s) => {
                        (member.enumeration.is_empty() || member.enumeration.contains(&s))
                            && member.pattern.is_none_or(|p| pattern::matches(p, s))
                    }
                    _ => true,
                }
        }
    }
}

/// The ValidationException for a string that is not one of an enumeration's values, for the
/// service's enumeration shape `shape` (`KeySpec`, `SigningAlgorithmSpec`, ...) at member
/// `member` (the model's spelling). The bindings reach this through each enum's `FromStr`.
pub(crate) fn not_in_enum(shape: &str, member: &str, value: &str) -> Error {
    let values = rules::ENUMS
        .iter()
        .find(|(name, _)| *name == shape)
        .map_or(&[][..], |(_, values)| *values);
    if values.contains(&value) {
        return Error::UnsupportedOperation(format!(
            "{value} is a valid {shape} that this engine does not support"
        ));
    }
    enum_error(member, value, values)
}

/// The operation of the service's model named `name` (model spelling: `CreateKey`).
fn operation_named(name: &str) -> Option<&'static Operation> {
    rules::OPERATIONS.iter().copied().find(|op| op.name == name)
}

/// [`operation_named`], or an internal error: the caller names an operation the model must have.
fn modelled(name: &str) -> Result<&'static Operation> {
    operation_named(name)
        .ok_or_else(|| Error::Internal(format!("{name} is not in the service's model")))
}

/// Checks one integer member of `operation` (model spellings) against the table, for a binding
/// that takes a member the engine's API does not (Python's ListKeyPolicies `Limit`).
pub fn check_integer(operation: &str, member: &str, value: i64) -> Result<()> {
    let op = modelled(operation)?;
    let Some(known) = op.member(member) else {
        return Err(Error::Internal(format!(
            "{operation} has no member {member} in the service's model"
        )));
    };
    check(op, &[(known.name, Value::Int(value))], &[])
}

/// The input members of `operation` (model spellings) with the kind of value each holds, in the
/// model's order; None for an operation the table does not have. For a network endpoint that
/// must refuse a value of the wrong JSON type before the request reaches the engine.
pub fn member_kinds(operation: &str) -> Option<Vec<(&'static str, Kind)>> {
    let op = operation_named(operation)?;
    Some(op.members.iter().map(|m| (m.name, m.kind)).collect())
}

/// The ValidationException for the required members of `operation` that a request lacks
/// (`present(name)` is false), in the service's wording (`Value null at 'keyId' failed to satisfy
/// constraint: Member must not be null`), for a front end whose request arrives without members
/// the engine's typed API cannot leave out.
pub fn check_required(operation: &str, present: impl Fn(&str) -> bool) -> Result<()> {
    let op = modelled(operation)?;
    let mut failures = Vec::new();
    for member in op.members.iter().filter(|m| m.required && !present(m.name)) {
        check_member(member, &Value::Null, None, &mut failures);
    }
    report(failures)
}

fn enum_error(member: &str, value: &str, values: &[&str]) -> Error {
    let failure = failure_at(member, false, &Value::Str(value), &enum_constraint(values));
    Error::Validation(format!("1 validation error detected: {failure}"))
}

/// Parses an enumeration's value as it arrives at member `member` of `operation` (model
/// spellings); a bad value is the service's ValidationException for that member. Use this
/// where the member is not the enum's usual one (ReEncrypt's `DestinationEncryptionAlgorithm`,
/// CreateKey's `CustomerMasterKeySpec`); plain `str::parse` names the usual member.
pub fn parse_member<T>(operation: &str, member: &str, value: &str) -> Result<T>
where
    T: std::str::FromStr<Err = Error>,
{
    value.parse::<T>().map_err(|e| match e {
        Error::Validation(_) => {
            let shape = operation_named(operation)
                .and_then(|op| op.member(member))
                .map(|m| m.enumeration);
            match shape {
                Some(values) if !values.is_empty() => enum_error(member, value, values),
                _ => e,
            }
        }
        other => other,
    })
}

pub(crate) use members::{batch, generate_random, key_id, Limits, Validate};

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::utf16_len;

    /// Every action but the two halves of ReEncrypt (checked as ReEncrypt by the data plane)
    /// finds its operation, so no `check_request` ever answers "no operation".
    #[test]
    fn every_action_has_its_operation_in_the_model() {
        use crate::access::Action;
        for action in Action::ALL {
            if matches!(action, Action::ReEncryptFrom | Action::ReEncryptTo) {
                continue;
            }
            let found = super::operation_named(action.operation()).is_some();
            assert!(found, "{action:?}");
        }
    }

    #[test]
    fn utf16_length_counts_code_units() {
        for s in [
            "",
            "alias/orders",
            "défault",
            "€",
            "日本語",
            "😀",
            "a😀b\u{10FFFF}é",
        ] {
            assert_eq!(utf16_len(s), s.encode_utf16().count(), "{s:?}");
        }
    }

    proptest! {
        #[test]
        fn utf16_length_matches_the_standard_encoder(s in any::<String>()) {
            prop_assert_eq!(utf16_len(&s), s.encode_utf16().count());
        }
    }

    /// A sample value, owned: [`Sample::value`] lends it as the check sees it (a blob as the
    /// first bytes of a buffer the test keeps).
    enum Sample {
        Null,
        Str(String),
        Blob(usize),
        Int(i64),
        Items(usize),
    }

    impl Sample {
        fn value<'a>(&'a self, bytes: &'a [u8]) -> super::Value<'a> {
            use super::Value;
            match self {
                Sample::Null => Value::Null,
                Sample::Str(s) => Value::Str(s),
                Sample::Blob(n) => Value::Blob(&bytes[..*n]),
                Sample::Int(n) => Value::Int(*n),
                Sample::Items(n) => Value::Items(*n),
            }
        }
    }

    /// Values of `member`'s kind at and around each of its bounds (and of `max_length`), its
    /// enumeration's values and one outside it, non-ASCII text and nothing at all.
    fn samples(member: &super::Member, max_length: Option<usize>) -> Vec<Sample> {
        use super::Kind;
        let bound = |b: Option<i64>| b.and_then(|b| usize::try_from(b).ok());
        let mut lengths = vec![0usize, 1, 2, 36];
        for b in [bound(member.min), bound(member.max), max_length]
            .into_iter()
            .flatten()
        {
            lengths.extend([b.saturating_sub(1), b, b + 1]);
        }
        let mut values = vec![Sample::Null];
        match member.kind {
            Kind::String => {
                for n in &lengths {
                    values.push(Sample::Str("a".repeat(*n)));
                    values.push(Sample::Str("é".repeat(*n)));
                }
                let texts = member.enumeration.iter().copied();
                let texts = texts.chain(["NOT_IN_IT", "alias/x", "😀"]);
                values.extend(texts.map(|t| Sample::Str(t.to_owned())));
            }
            Kind::Blob => values.extend(lengths.iter().map(|n| Sample::Blob(*n))),
            Kind::Integer | Kind::Long => {
                let mut ints = vec![i64::MIN, -1, 0, 1, i64::MAX];
                for b in [member.min, member.max].into_iter().flatten() {
                    ints.extend([b.saturating_sub(1), b, b.saturating_add(1)]);
                }
                values.extend(ints.into_iter().map(Sample::Int));
            }
            Kind::List | Kind::Map => values.extend(lengths.iter().map(|n| Sample::Items(*n))),
            Kind::Boolean | Kind::Timestamp | Kind::Structure => {}
        }
        values
    }

    /// The fast answer of `check_members` is the full check's, for every member of the table,
    /// with and without an engine limit on its length: it neither lets through what the full
    /// check refuses nor refuses what it lets through.
    #[test]
    fn passes_agrees_with_check_member() {
        // Every blob sample's bytes: longer than any blob the model bounds.
        let bytes = vec![7u8; 1 << 20];
        let mut checked = 0;
        for operation in super::rules::OPERATIONS {
            for member in operation.members {
                for max_length in [None, Some(10), Some(4096)] {
                    for sample in samples(member, max_length) {
                        let value = sample.value(&bytes);
                        let mut failures = Vec::new();
                        super::check_member(member, &value, max_length, &mut failures);
                        assert_eq!(
                            super::passes(member, &value, max_length),
                            failures.is_empty(),
                            "{}.{} = {value:?} (limit {max_length:?}): {failures:?}",
                            operation.name,
                            member.name
                        );
                        checked += 1;
                    }
                }
            }
        }
        assert!(checked > 10_000, "{checked} values checked");
    }
}
