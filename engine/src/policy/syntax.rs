//! What every element reader of a policy document shares: the language version, the statement an
//! error belongs to, lists of strings, wildcard tokens and the 2012-10-17 escapes, and how values
//! are quoted and near misses suggested in error messages.

use std::borrow::Cow;
use std::fmt::{self, Write as _};

use super::json::Json;
use super::types::PolicyError;
use super::wildcard::Token;

/// The policy language version, which decides whether `${...}` is special.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Version {
    /// `2008-10-17`, or no `Version`: `${` is ordinary text.
    V2008,
    /// `2012-10-17`: `${...}` is a policy variable.
    V2012,
}

/// The statement an element belongs to, for error messages.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Scope<'a> {
    /// `Statement[2]`, or `Statement` when the document has a single statement object.
    pub(super) label: &'a str,
    pub(super) sid: Option<&'a str>,
}

impl Scope<'_> {
    /// An error at `path` inside the statement (`""` for the statement itself).
    pub(crate) fn error(&self, path: &str, message: impl fmt::Display) -> PolicyError {
        let mut text = String::from(self.label);
        if !path.is_empty() {
            text.push('.');
            text.push_str(path);
        }
        let _ = write!(text, ": {message}");
        if let Some(sid) = self.sid {
            let _ = write!(text, " (Sid {:?})", shown(sid).to_string());
        }
        PolicyError::Malformed(text)
    }
}

/// A list of strings from a value that may be one string or an array of them.
#[derive(Debug)]
pub(crate) struct Strings<'j> {
    pub(crate) items: Vec<Cow<'j, str>>,
    array: bool,
}

impl Strings<'_> {
    /// The path of item `index`: `Action[2]` for an array, `Action` for a single string.
    pub(crate) fn path(&self, base: &str, index: usize) -> String {
        if self.array {
            format!("{base}[{index}]")
        } else {
            base.to_owned()
        }
    }
}

/// Reads a string or a non-empty array of strings at `path`. With `scalars`, booleans and numbers
/// are taken as their text too (condition values may be written `true` or `42`).
pub(crate) fn string_list<'j>(
    value: &'j Json,
    scope: &Scope<'_>,
    path: &str,
    scalars: bool,
) -> Result<Strings<'j>, PolicyError> {
    let one = |value: &'j Json| -> Option<Cow<'j, str>> {
        match value {
            Json::String(s) => Some(Cow::Borrowed(s.as_str())),
            Json::Bool(b) if scalars => Some(Cow::Borrowed(if *b { "true" } else { "false" })),
            Json::Number(n) if scalars => Some(Cow::Borrowed(n.as_str())),
            _ => None,
        }
    };
    match value {
        Json::Array(items) => {
            if items.is_empty() {
                return Err(scope.error(path, "must not be an empty array"));
            }
            let items = items
                .iter()
                .enumerate()
                .map(|(i, item)| {
                    one(item).ok_or_else(|| {
                        scope.error(
                            &format!("{path}[{i}]"),
                            format_args!("must be a string, found {}", item.kind()),
                        )
                    })
                })
                .collect::<Result<_, _>>()?;
            Ok(Strings { items, array: true })
        }
        single => match one(single) {
            Some(item) => Ok(Strings {
                items: vec![item],
                array: false,
            }),
            None => Err(scope.error(
                path,
                format_args!(
                    "must be a string or an array of strings, found {}",
                    single.kind()
                ),
            )),
        },
    }
}

/// Splits `text` into wildcard tokens. Under 2012-10-17, `${*}`, `${?}` and `${$}` are a literal
/// `*`, `?` and `$`, and any other `${...}` is refused. Without `wildcards`, `*` and `?` are
/// literal too.
pub(crate) fn tokens(text: &str, version: Version, wildcards: bool) -> Result<Vec<Token>, String> {
    let mut out = Vec::with_capacity(text.len());
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        if version == Version::V2012 && rest.starts_with("${") {
            let Some(end) = rest.find('}') else {
                return Err(format!(
                    "unterminated policy variable in '{}' (write ${{$}} for a literal '$')",
                    shown(text)
                ));
            };
            match &rest[2..end] {
                "*" => out.push(Token::Literal('*')),
                "?" => out.push(Token::Literal('?')),
                "$" => out.push(Token::Literal('$')),
                variable => {
                    return Err(format!(
                        "policy variable '${{{}}}' is not supported (only ${{*}}, ${{?}} and ${{$}}, which stand for literal characters)",
                        shown(variable)
                    ))
                }
            }
            rest = &rest[end + 1..];
            continue;
        }
        out.push(match c {
            '*' if wildcards => Token::Star,
            '?' if wildcards => Token::One,
            c => Token::Literal(c),
        });
        rest = &rest[c.len_utf8()..];
    }
    Ok(out)
}

/// `text` with the 2012-10-17 escapes resolved and no wildcards.
pub(crate) fn literal(text: &str, version: Version) -> Result<String, String> {
    Ok(tokens(text, version, false)?
        .into_iter()
        .map(|t| match t {
            Token::Literal(c) => c,
            Token::Star => '*',
            Token::One => '?',
        })
        .collect())
}

/// A value quoted in an error message, cut short when long.
pub(crate) fn shown(text: &str) -> impl fmt::Display + '_ {
    struct Shown<'a>(&'a str);
    impl fmt::Display for Shown<'_> {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            const LIMIT: usize = 80;
            match self.0.char_indices().nth(LIMIT) {
                None => f.write_str(self.0),
                Some((cut, _)) => write!(f, "{}…", &self.0[..cut]),
            }
        }
    }
    Shown(text)
}

/// ` (did you mean 'X'?)` when `word` is a near miss of one of `candidates`, else nothing.
pub(crate) fn suggestion(word: &str, candidates: &[&str]) -> String {
    if word.chars().count() > 64 {
        return String::new();
    }
    let best = candidates
        .iter()
        .map(|c| {
            let distance = if c.eq_ignore_ascii_case(word) {
                0
            } else {
                edit_distance(word, c)
            };
            (distance, *c)
        })
        .min_by_key(|(d, _)| *d);
    match best {
        Some((d, c)) if d <= 2.max(word.chars().count() / 5) && d < word.chars().count() => {
            format!(" (did you mean '{c}'?)")
        }
        _ => String::new(),
    }
}

/// Levenshtein distance over characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut previous = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous + usize::from(ca != *cb);
            previous = row[j + 1];
            row[j + 1] = substitution.min(row[j] + 1).min(row[j + 1] + 1);
        }
    }
    row[b.len()]
}

/// A scope without a Sid, for the element modules' tests.
#[cfg(test)]
pub(crate) fn tests_scope(label: &'static str) -> Scope<'static> {
    Scope { label, sid: None }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scope() -> Scope<'static> {
        Scope {
            label: "Statement[1]",
            sid: Some("Users"),
        }
    }

    #[test]
    fn scope_errors_name_statement_field_and_sid() {
        let err = scope().error("Condition", "unknown operator 'X'");
        assert_eq!(
            err,
            PolicyError::Malformed(
                "Statement[1].Condition: unknown operator 'X' (Sid \"Users\")".into()
            )
        );
        let err = Scope {
            label: "Statement[0]",
            sid: None,
        }
        .error("", "empty statement");
        assert_eq!(err.to_string(), "Statement[0]: empty statement");
    }

    #[test]
    fn tokens_resolve_escapes_only_in_2012() {
        let t = tokens("a${*}b*${?}?${$}", Version::V2012, true).unwrap();
        assert_eq!(
            t,
            [
                Token::Literal('a'),
                Token::Literal('*'),
                Token::Literal('b'),
                Token::Star,
                Token::Literal('?'),
                Token::One,
                Token::Literal('$'),
            ]
        );
        let t = tokens("${*}", Version::V2008, true).unwrap();
        assert_eq!(
            t,
            [
                Token::Literal('$'),
                Token::Literal('{'),
                Token::Star,
                Token::Literal('}')
            ]
        );
        assert_eq!(literal("a*?${*}", Version::V2012).unwrap(), "a*?*");
        assert_eq!(literal("$x", Version::V2012).unwrap(), "$x");
    }

    #[test]
    fn unsupported_policy_variables_are_refused() {
        let err = tokens("${aws:username}", Version::V2012, true).unwrap_err();
        assert!(err.contains("'${aws:username}' is not supported"), "{err}");
        let err = tokens("x${aws", Version::V2012, true).unwrap_err();
        assert!(err.contains("unterminated"), "{err}");
        assert!(tokens("${aws:username}", Version::V2008, true).is_ok());
    }

    #[test]
    fn long_values_are_cut_in_messages() {
        let long = "x".repeat(500);
        let s = shown(&long).to_string();
        assert_eq!(s.chars().count(), 81);
        assert!(s.ends_with('…'));
        assert_eq!(shown("short").to_string(), "short");
    }

    #[test]
    fn edit_distance_counts_edits() {
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("abc", "abc"), 0);
    }
}
