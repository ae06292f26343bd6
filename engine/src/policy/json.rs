//! A JSON tree that keeps object members in document order and rejects duplicate member names.
//!
//! `serde_json::Value` silently keeps the last of two members with the same name, which would let
//! `{"Effect": "Deny", "Effect": "Allow"}` through; a policy must say one thing. Parsing goes
//! through `serde_json`, so syntax errors, and duplicates, carry a line and column.

use std::collections::BTreeSet;
use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

/// A parsed JSON value.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Json {
    Null,
    Bool(bool),
    /// A number, kept in its decimal form (policies only ever compare it as a string).
    Number(String),
    String(String),
    Array(Vec<Json>),
    /// Members in document order; names are unique.
    Object(Vec<(String, Json)>),
}

impl Json {
    /// Parses a JSON text; errors read `"<problem> at line L column C"`.
    pub(crate) fn parse(text: &str) -> Result<Json, serde_json::Error> {
        serde_json::from_str(text)
    }

    /// "a string", "an object", ... for error messages.
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Json::Null => "null",
            Json::Bool(_) => "a boolean",
            Json::Number(_) => "a number",
            Json::String(_) => "a string",
            Json::Array(_) => "an array",
            Json::Object(_) => "an object",
        }
    }

    /// The member called `name` of an object.
    pub(crate) fn member<'a>(members: &'a [(String, Json)], name: &str) -> Option<&'a Json> {
        members.iter().find(|(n, _)| n == name).map(|(_, v)| v)
    }
}

impl<'de> Deserialize<'de> for Json {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Json, D::Error> {
        deserializer.deserialize_any(JsonVisitor)
    }
}

struct JsonVisitor;

impl<'de> Visitor<'de> for JsonVisitor {
    type Value = Json;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_unit<E>(self) -> Result<Json, E> {
        Ok(Json::Null)
    }

    fn visit_bool<E>(self, v: bool) -> Result<Json, E> {
        Ok(Json::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Json, E> {
        Ok(Json::Number(v.to_string()))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Json, E> {
        Ok(Json::Number(v.to_string()))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Json, E> {
        Ok(Json::Number(v.to_string()))
    }

    fn visit_str<E>(self, v: &str) -> Result<Json, E> {
        Ok(Json::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Json, E> {
        Ok(Json::String(v))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Json, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Json::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Json, A::Error> {
        let mut members: Vec<(String, Json)> = Vec::new();
        let mut seen = BTreeSet::new();
        while let Some(name) = map.next_key::<String>()? {
            if !seen.insert(name.clone()) {
                return Err(de::Error::custom(format_args!("duplicate field '{name}'")));
            }
            let value = map.next_value()?;
            members.push((name, value));
        }
        Ok(Json::Object(members))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_kind_in_order() {
        let json = Json::parse(r#"{"b": [1, -2, 1.5, true, null], "a": "x"}"#).unwrap();
        assert_eq!(
            json,
            Json::Object(vec![
                (
                    "b".into(),
                    Json::Array(vec![
                        Json::Number("1".into()),
                        Json::Number("-2".into()),
                        Json::Number("1.5".into()),
                        Json::Bool(true),
                        Json::Null,
                    ])
                ),
                ("a".into(), Json::String("x".into())),
            ])
        );
    }

    #[test]
    fn duplicate_members_are_rejected_with_position() {
        let err =
            Json::parse("{\n  \"Effect\": \"Deny\",\n  \"Effect\": \"Allow\"\n}").unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("duplicate field 'Effect'"), "{msg}");
        assert!(msg.contains("line 3"), "{msg}");
    }

    #[test]
    fn nested_duplicates_are_rejected() {
        assert!(Json::parse(r#"{"a": {"x": 1, "x": 2}}"#).is_err());
        assert!(Json::parse(r#"[{"x": 1}, {"x": 2}]"#).is_ok());
    }

    #[test]
    fn syntax_errors_carry_line_and_column() {
        let msg = Json::parse("{\n  \"a\": 1,\n}").unwrap_err().to_string();
        assert!(msg.contains("line 3 column 1"), "{msg}");
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_crash() {
        let deep = "[".repeat(10_000);
        assert!(Json::parse(&deep).is_err());
    }
}
