//! JSON 1.1 bodies: a request's members read and type-checked against the service's model, and
//! the response written straight into the reply's bytes.
//!
//! In: a body that is not a JSON object, or a member of the wrong JSON type for its model kind
//! (a string where the model says integer, a blob that is not standard base64, a map with values
//! that are not strings, ...), is a SerializationException naming the member. Members the model
//! does not have are ignored, as the service does; `null` is a missing member. Required members
//! that are missing get the engine's ValidationException (`Value null at 'keyId' ...`); every
//! other constraint is the engine's own validation.
//!
//! Plaintext: decoded blobs are kept in zeroizing buffers, and the base64 text they came from is
//! zeroed once decoded. Out: a response is written into one buffer that never reallocates
//! without zeroing the old allocation, so the base64 of a plaintext exists only in the reply's
//! body, which the transport zeroes after sending.

use std::collections::HashMap;
use std::fmt::Display;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use keyplane::validation::{self, Kind};
use keyplane::{EncryptionContext, Tag, Timestamp};
use serde_json::{Map, Value};
use zeroize::{Zeroize, Zeroizing};

use super::reply::Fault;

/// A request's members, checked against the operation's model.
#[derive(Debug)]
pub struct Input {
    operation: &'static str,
    members: Map<String, Value>,
    blobs: HashMap<&'static str, Zeroizing<Vec<u8>>>,
}

/// The JSON type a model kind arrives as, for messages.
fn expected(kind: Kind) -> &'static str {
    match kind {
        Kind::String => "a string",
        Kind::Blob => "a base64-encoded string",
        Kind::Integer | Kind::Long => "an integer",
        Kind::Boolean => "a boolean",
        Kind::Timestamp => "a number of epoch seconds",
        Kind::List => "a list",
        Kind::Map => "a map of strings to strings",
        Kind::Structure => "an object",
    }
}

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// A SerializationException for member `name` of the wrong type.
pub fn wrong_type(name: &str, wanted: &str, value: &Value) -> Fault {
    Fault::Serialization(format!("{name} must be {wanted}, not {}", json_type(value)))
}

fn kind_matches(kind: Kind, value: &Value) -> bool {
    match kind {
        Kind::String | Kind::Blob => value.is_string(),
        Kind::Integer | Kind::Long => value.is_i64() || value.is_u64(),
        Kind::Boolean => value.is_boolean(),
        Kind::Timestamp => value.is_number(),
        Kind::List => value.is_array(),
        Kind::Map => value
            .as_object()
            .is_some_and(|m| m.values().all(Value::is_string)),
        Kind::Structure => value.is_object(),
    }
}

impl Input {
    /// Parses `body` as `operation`'s request (an empty body is `{}`).
    pub fn parse(operation: &'static str, body: &[u8]) -> Result<Input, Fault> {
        let mut members = if body.iter().all(u8::is_ascii_whitespace) {
            Map::new()
        } else {
            match serde_json::from_slice::<Value>(body) {
                Ok(Value::Object(map)) => map,
                Ok(other) => {
                    return Err(Fault::Serialization(format!(
                        "the request body must be a JSON object, not {}",
                        json_type(&other)
                    )))
                }
                Err(e) => {
                    return Err(Fault::Serialization(format!(
                        "the request body is not valid JSON (line {}, column {})",
                        e.line(),
                        e.column()
                    )))
                }
            }
        };
        members.retain(|_, v| !v.is_null());
        let kinds = validation::member_kinds(operation).unwrap_or_default();
        let mut blobs = HashMap::new();
        for (name, kind) in kinds {
            let Some(value) = members.get_mut(name) else {
                continue;
            };
            if !kind_matches(kind, value) {
                return Err(wrong_type(name, expected(kind), value));
            }
            if kind == Kind::Blob {
                if let Value::String(text) = value {
                    let decoded = STANDARD.decode(text.as_bytes()).map(Zeroizing::new);
                    text.zeroize();
                    match decoded {
                        Ok(bytes) => blobs.insert(name, bytes),
                        Err(_) => {
                            return Err(Fault::Serialization(format!(
                                "{name} must be base64-encoded (standard alphabet, padded)"
                            )))
                        }
                    };
                }
            }
        }
        validation::check_required(operation, |name| members.contains_key(name))?;
        Ok(Input {
            operation,
            members,
            blobs,
        })
    }

    /// The operation this request is for.
    pub fn operation(&self) -> &'static str {
        self.operation
    }

    /// Whether the request names member `name`.
    pub fn has(&self, name: &str) -> bool {
        self.members.contains_key(name)
    }

    /// A string member.
    pub fn str(&self, name: &str) -> Option<&str> {
        self.members.get(name).and_then(Value::as_str)
    }

    /// A required string member (present: [`Input::parse`] checked required members).
    pub fn req(&self, name: &str) -> &str {
        self.str(name).unwrap_or_default()
    }

    /// An owned string member.
    pub fn string(&self, name: &str) -> Option<String> {
        self.str(name).map(str::to_owned)
    }

    /// A blob member, decoded.
    pub fn blob(&self, name: &str) -> Option<&[u8]> {
        self.blobs.get(name).map(|b| b.as_slice())
    }

    /// A required blob member (empty when absent; only for members the model requires).
    pub fn req_blob(&self, name: &str) -> &[u8] {
        self.blob(name).unwrap_or_default()
    }

    /// A timestamp member (epoch seconds, as AWS JSON 1.1 sends it; fractions kept to the
    /// millisecond).
    pub fn timestamp(&self, name: &str) -> Result<Option<keyplane::Timestamp>, Fault> {
        let Some(value) = self.members.get(name) else {
            return Ok(None);
        };
        let seconds = value
            .as_f64()
            .filter(|s| s.is_finite() && s.abs() < 1e15)
            .ok_or_else(|| wrong_type(name, "a timestamp (epoch seconds)", value))?;
        Ok(Some(keyplane::Timestamp((seconds * 1000.0).round() as i64)))
    }

    /// A boolean member.
    pub fn bool(&self, name: &str) -> Option<bool> {
        self.members.get(name).and_then(Value::as_bool)
    }

    /// An integer member, checked against the model's range (the engine's ValidationException).
    fn int(&self, name: &str) -> Result<Option<i64>, Fault> {
        let Some(value) = self.members.get(name) else {
            return Ok(None);
        };
        let n = value
            .as_i64()
            .ok_or_else(|| wrong_type(name, "an integer in range", value))?;
        validation::check_integer(self.operation, name, n)?;
        Ok(Some(n))
    }

    /// An integer member that the engine takes as `u32` (limits, days).
    pub fn u32(&self, name: &str) -> Result<Option<u32>, Fault> {
        self.int(name)?
            .map(|n| u32::try_from(n).map_err(|_| out_of_range(name)))
            .transpose()
    }

    /// An integer member that the engine takes as `usize` (byte counts).
    pub fn usize(&self, name: &str) -> Result<Option<usize>, Fault> {
        self.int(name)?
            .map(|n| usize::try_from(n).map_err(|_| out_of_range(name)))
            .transpose()
    }

    /// An enumeration member, parsed (an unknown value is the engine's ValidationException).
    pub fn enum_value<T>(&self, name: &str) -> Result<Option<T>, Fault>
    where
        T: std::str::FromStr<Err = keyplane::Error>,
    {
        self.str(name)
            .map(|v| validation::parse_member(self.operation, name, v).map_err(Fault::from))
            .transpose()
    }

    /// A required enumeration member, parsed (present: [`Input::parse`] checked required
    /// members).
    pub fn required_enum<T>(&self, name: &str) -> Result<T, Fault>
    where
        T: std::str::FromStr<Err = keyplane::Error>,
    {
        self.enum_value(name)?.ok_or_else(|| {
            Fault::Engine(keyplane::Error::Internal(format!(
                "{name} went missing after its check"
            )))
        })
    }

    /// A map member of strings (an encryption context).
    pub fn context(&self, name: &str) -> Option<EncryptionContext> {
        let map = self.members.get(name)?.as_object()?;
        Some(
            map.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
                .collect(),
        )
    }

    /// A list member of strings.
    pub fn strings(&self, name: &str) -> Result<Option<Vec<String>>, Fault> {
        let Some(Value::Array(items)) = self.members.get(name) else {
            return Ok(None);
        };
        items
            .iter()
            .map(|item| {
                item.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| wrong_type(&format!("{name} items"), "strings", item))
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some)
    }

    /// A structure member (checked to be an object).
    pub fn object(&self, name: &str) -> Option<&Map<String, Value>> {
        self.members.get(name).and_then(Value::as_object)
    }

    /// A list of `{"TagKey": ..., "TagValue": ...}`.
    pub fn tags(&self, name: &str) -> Result<Vec<Tag>, Fault> {
        let Some(Value::Array(items)) = self.members.get(name) else {
            return Ok(Vec::new());
        };
        let mut tags = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            let Some(tag) = item.as_object() else {
                return Err(wrong_type(&format!("{name} items"), "objects", item));
            };
            let field = |field: &str| -> Result<String, Fault> {
                match tag.get(field) {
                    Some(Value::String(s)) => Ok(s.clone()),
                    None | Some(Value::Null) => Err(keyplane::Error::Validation(format!(
                        "1 validation error detected: Value null at '{}.{}.member.{}' failed to \
                         satisfy constraint: Member must not be null",
                        lower_first(name),
                        i + 1,
                        lower_first(field)
                    ))
                    .into()),
                    Some(other) => Err(wrong_type(field, "a string", other)),
                }
            };
            tags.push(Tag {
                tag_key: field("TagKey")?,
                tag_value: field("TagValue")?,
            });
        }
        Ok(tags)
    }
}

fn out_of_range(name: &str) -> Fault {
    Fault::Serialization(format!("{name} is out of range"))
}

fn lower_first(name: &str) -> String {
    let mut chars = name.chars();
    chars
        .next()
        .map(|c| c.to_lowercase().chain(chars).collect())
        .unwrap_or_default()
}

/// A JSON object written straight into a reply body. Growth copies into a new allocation and
/// zeroes the old one, so secret members leave no copies behind.
#[derive(Debug)]
pub struct Out {
    buf: Vec<u8>,
    /// Per open object: whether it has a member yet.
    open: Vec<bool>,
}

impl Default for Out {
    fn default() -> Self {
        Out::new()
    }
}

impl Out {
    /// An empty object.
    pub fn new() -> Out {
        Out::with_capacity(256)
    }

    /// An empty object with room for `capacity` bytes.
    pub fn with_capacity(capacity: usize) -> Out {
        let mut out = Out {
            buf: Vec::with_capacity(capacity),
            open: Vec::new(),
        };
        out.raw(b"{");
        out.open.push(false);
        out
    }

    /// Room for `extra` more bytes; growing moves into a new allocation and zeroes the old one.
    fn reserve(&mut self, extra: usize) {
        if self.buf.capacity() - self.buf.len() < extra {
            let wanted = (self.buf.len() + extra).max(self.buf.capacity() * 2);
            let mut grown = Vec::with_capacity(wanted);
            grown.extend_from_slice(&self.buf);
            let mut old = std::mem::replace(&mut self.buf, grown);
            old.zeroize();
        }
    }

    fn raw(&mut self, bytes: &[u8]) {
        self.reserve(bytes.len());
        self.buf.extend_from_slice(bytes);
    }

    fn string_literal(&mut self, s: &str) {
        // serde_json escapes a &str without failing.
        let quoted = serde_json::to_vec(s).unwrap_or_else(|_| b"\"\"".to_vec());
        self.raw(&quoted);
    }

    fn key(&mut self, key: &str) {
        let had_member = self
            .open
            .last_mut()
            .is_some_and(|has| std::mem::replace(has, true));
        if had_member {
            self.raw(b",");
        }
        self.string_literal(key);
        self.raw(b":");
    }

    /// A string member.
    pub fn str(&mut self, key: &str, value: &str) -> &mut Out {
        self.key(key);
        self.string_literal(value);
        self
    }

    /// A string member, when present.
    pub fn opt(&mut self, key: &str, value: Option<&str>) -> &mut Out {
        if let Some(v) = value {
            self.str(key, v);
        }
        self
    }

    /// A boolean member.
    pub fn bool(&mut self, key: &str, value: bool) -> &mut Out {
        self.key(key);
        self.raw(if value { b"true" } else { b"false" });
        self
    }

    /// An integer member.
    pub fn int(&mut self, key: &str, value: i64) -> &mut Out {
        self.key(key);
        self.raw(value.to_string().as_bytes());
        self
    }

    /// A timestamp member, as epoch seconds.
    pub fn date(&mut self, key: &str, value: Timestamp) -> &mut Out {
        self.key(key);
        let seconds = serde_json::Number::from_f64(value.0 as f64 / 1000.0)
            .map_or_else(|| "0".to_owned(), |n| n.to_string());
        self.raw(seconds.as_bytes());
        self
    }

    /// A timestamp member, when present.
    pub fn date_opt(&mut self, key: &str, value: Option<Timestamp>) -> &mut Out {
        if let Some(v) = value {
            self.date(key, v);
        }
        self
    }

    /// A blob member, base64 (also for plaintext: encoded straight into the body).
    pub fn blob(&mut self, key: &str, value: &[u8]) -> &mut Out {
        self.key(key);
        let len = base64::encoded_len(value.len(), true).unwrap_or(0);
        self.raw(b"\"");
        // Room first, so the encoding happens in place, in this buffer only.
        self.reserve(len + 1);
        let start = self.buf.len();
        self.buf.resize(start + len, 0);
        let written = STANDARD
            .encode_slice(value, &mut self.buf[start..])
            .unwrap_or(0);
        self.buf.truncate(start + written);
        self.raw(b"\"");
        self
    }

    /// A list of the service's names for enumeration values, left out when empty (as the
    /// service omits empty algorithm lists).
    pub fn names<T: Display>(&mut self, key: &str, values: &[T]) -> &mut Out {
        if values.is_empty() {
            return self;
        }
        self.list(key, values, |out, v| out.value_str(&v.to_string()))
    }

    /// A list of strings (written even when empty).
    pub fn strings<S: AsRef<str>>(&mut self, key: &str, values: &[S]) -> &mut Out {
        self.list(key, values, |out, v| out.value_str(v.as_ref()))
    }

    fn value_str(&mut self, value: &str) {
        self.string_literal(value);
    }

    /// A list whose items `item` writes (each with [`Out::value_str`] or [`Out::object`]).
    fn list<T>(&mut self, key: &str, values: &[T], item: impl Fn(&mut Out, &T)) -> &mut Out {
        self.key(key);
        self.raw(b"[");
        for (i, v) in values.iter().enumerate() {
            if i > 0 {
                self.raw(b",");
            }
            item(self, v);
        }
        self.raw(b"]");
        self
    }

    /// A list of objects, each written by `item`.
    pub fn objects<T>(&mut self, key: &str, values: &[T], item: impl Fn(&mut Out, &T)) -> &mut Out {
        self.list(key, values, |out, v| out.object(|o| item(o, v)))
    }

    fn object(&mut self, body: impl FnOnce(&mut Out)) {
        self.raw(b"{");
        self.open.push(false);
        body(self);
        self.open.pop();
        self.raw(b"}");
    }

    /// A structure member written by `body`.
    pub fn nested(&mut self, key: &str, body: impl FnOnce(&mut Out)) -> &mut Out {
        self.key(key);
        self.object(body);
        self
    }

    /// A map of strings to strings.
    pub fn map(&mut self, key: &str, value: &EncryptionContext) -> &mut Out {
        self.nested(key, |o| {
            for (k, v) in value {
                o.str(k, v);
            }
        })
    }

    /// The finished body.
    pub fn finish(mut self) -> Vec<u8> {
        self.raw(b"}");
        std::mem::take(&mut self.buf)
    }
}
