//! Reading a policy document: size and JSON checks, the top level and each statement's shape.
//!
//! Each element is compiled by its own module ([`super::principal`], [`super::action`],
//! [`super::resource`], [`super::condition`]), with the pieces they share in [`super::syntax`];
//! this module walks the document, enforces which fields may appear, and gives every error its
//! place: `Statement[2].Condition: ...`, followed by `(Sid "...")` when the statement has one.

use super::action::Actions;
use super::condition::Condition;
use super::evaluate::{Effect, Statement};
use super::json::Json;
use super::principal::Principals;
use super::resource::Resources;
use super::syntax::{shown, suggestion, Scope, Version};
use super::types::{PolicyError, MAX_POLICY_BYTES};

const TOP_LEVEL_FIELDS: &[&str] = &["Version", "Id", "Statement"];
const STATEMENT_FIELDS: &[&str] = &[
    "Sid",
    "Effect",
    "Principal",
    "NotPrincipal",
    "Action",
    "NotAction",
    "Resource",
    "NotResource",
    "Condition",
];

fn malformed(message: impl Into<String>) -> PolicyError {
    PolicyError::Malformed(message.into())
}

/// Parses and validates a whole document into compiled statements.
pub(crate) fn parse(document: &str) -> Result<Vec<Statement>, PolicyError> {
    if document.len() > MAX_POLICY_BYTES {
        return Err(malformed(format!(
            "policy document is {} bytes; the limit is {MAX_POLICY_BYTES} bytes (32 KiB)",
            document.len()
        )));
    }
    if document.trim().is_empty() {
        return Err(malformed("policy document is empty"));
    }
    let json = Json::parse(document).map_err(|e| malformed(format!("malformed JSON: {e}")))?;
    let Json::Object(members) = &json else {
        return Err(malformed(format!(
            "policy document must be a JSON object, found {}",
            json.kind()
        )));
    };
    for (name, _) in members {
        if !TOP_LEVEL_FIELDS.contains(&name.as_str()) {
            return Err(malformed(format!(
                "unknown top-level field '{}'{} (expected Version, Id and Statement)",
                shown(name),
                suggestion(name, TOP_LEVEL_FIELDS)
            )));
        }
    }
    let version = match Json::member(members, "Version") {
        None => Version::V2008,
        Some(Json::String(v)) if v == "2012-10-17" => Version::V2012,
        Some(Json::String(v)) if v == "2008-10-17" => Version::V2008,
        Some(Json::String(v)) => {
            return Err(malformed(format!(
                "Version: unsupported version '{}' (expected \"2012-10-17\" or \"2008-10-17\")",
                shown(v)
            )))
        }
        Some(other) => {
            return Err(malformed(format!(
                "Version: must be a string, found {}",
                other.kind()
            )))
        }
    };
    if let Some(id) = Json::member(members, "Id") {
        if !matches!(id, Json::String(_)) {
            return Err(malformed(format!(
                "Id: must be a string, found {}",
                id.kind()
            )));
        }
    }
    match Json::member(members, "Statement") {
        None => Err(malformed(
            "Statement: missing (a policy needs at least one statement)",
        )),
        Some(statement @ Json::Object(_)) => {
            Ok(vec![parse_statement(statement, "Statement", version)?])
        }
        Some(Json::Array(statements)) => {
            if statements.is_empty() {
                return Err(malformed("Statement: must contain at least one statement"));
            }
            statements
                .iter()
                .enumerate()
                .map(|(i, s)| parse_statement(s, &format!("Statement[{i}]"), version))
                .collect()
        }
        Some(other) => Err(malformed(format!(
            "Statement: must be an object or an array of objects, found {}",
            other.kind()
        ))),
    }
}

/// Validates and compiles one statement.
fn parse_statement(value: &Json, label: &str, version: Version) -> Result<Statement, PolicyError> {
    let Json::Object(members) = value else {
        return Err(malformed(format!(
            "{label}: must be an object, found {}",
            value.kind()
        )));
    };
    if members.is_empty() {
        return Err(malformed(format!("{label}: empty statement")));
    }
    let sid = match Json::member(members, "Sid") {
        None => None,
        Some(Json::String(sid)) => Some(sid.as_str()),
        Some(other) => {
            return Err(malformed(format!(
                "{label}.Sid: must be a string, found {}",
                other.kind()
            )))
        }
    };
    let scope = Scope { label, sid };

    for (name, _) in members {
        if !STATEMENT_FIELDS.contains(&name.as_str()) {
            return Err(scope.error(
                "",
                format_args!(
                    "unknown field '{}'{}",
                    shown(name),
                    suggestion(name, STATEMENT_FIELDS)
                ),
            ));
        }
    }

    let effect = match Json::member(members, "Effect") {
        None => return Err(scope.error("Effect", "missing (must be \"Allow\" or \"Deny\")")),
        Some(Json::String(e)) if e == "Allow" => Effect::Allow,
        Some(Json::String(e)) if e == "Deny" => Effect::Deny,
        Some(Json::String(e)) => {
            return Err(scope.error(
                "Effect",
                format_args!("must be \"Allow\" or \"Deny\", found '{}'", shown(e)),
            ))
        }
        Some(other) => {
            return Err(scope.error(
                "Effect",
                format_args!("must be \"Allow\" or \"Deny\", found {}", other.kind()),
            ))
        }
    };

    let (principal, not_principal) = one_of(members, &scope, "Principal", "NotPrincipal")?;
    let principals = Principals::parse(
        principal,
        &scope,
        if not_principal {
            "NotPrincipal"
        } else {
            "Principal"
        },
    )?;

    let (action, not_action) = one_of(members, &scope, "Action", "NotAction")?;
    let actions = Actions::parse(
        action,
        &scope,
        if not_action { "NotAction" } else { "Action" },
    )?;

    let (resource, not_resource) = one_of(members, &scope, "Resource", "NotResource")?;
    let resources = Resources::parse(
        resource,
        &scope,
        if not_resource {
            "NotResource"
        } else {
            "Resource"
        },
        version,
    )?;

    let conditions = match Json::member(members, "Condition") {
        None => Vec::new(),
        Some(block) => Condition::parse_block(block, &scope, version)?,
    };

    Ok(Statement {
        effect,
        principals,
        not_principal,
        actions,
        not_action,
        resources,
        not_resource,
        conditions,
    })
}

/// Exactly one of the element and its `Not` form; returns it and whether it was the `Not` form.
fn one_of<'j>(
    members: &'j [(String, Json)],
    scope: &Scope<'_>,
    positive: &str,
    negative: &str,
) -> Result<(&'j Json, bool), PolicyError> {
    match (
        Json::member(members, positive),
        Json::member(members, negative),
    ) {
        (Some(value), None) => Ok((value, false)),
        (None, Some(value)) => Ok((value, true)),
        (Some(_), Some(_)) => Err(scope.error(
            negative,
            format_args!("cannot be used together with {positive}; use one of them"),
        )),
        (None, None) => Err(scope.error(
            positive,
            format_args!(
                "missing (a statement needs {positive} or {negative}{})",
                match positive {
                    "Resource" => "; key policies use \"Resource\": \"*\"",
                    _ => "",
                }
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions_catch_near_misses_only() {
        assert_eq!(
            suggestion("effect", STATEMENT_FIELDS),
            " (did you mean 'Effect'?)"
        );
        assert_eq!(
            suggestion("Actions", STATEMENT_FIELDS),
            " (did you mean 'Action'?)"
        );
        assert_eq!(
            suggestion("Prinicpal", STATEMENT_FIELDS),
            " (did you mean 'Principal'?)"
        );
        assert_eq!(suggestion("Banana", STATEMENT_FIELDS), "");
        assert_eq!(suggestion("", STATEMENT_FIELDS), "");
    }
}
