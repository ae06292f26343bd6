//! The model's regular expressions, matched as the service's Java runtime matches them: against
//! the whole value, with `\w`, `\d` and `\s` in their ASCII sense.

use std::collections::HashMap;
use std::sync::OnceLock;

use regex::Regex;

/// The model's pattern in the `regex` crate's dialect, anchored at both ends.
fn translate(pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len() + 16);
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('w') => out.push_str("[0-9A-Za-z_]"),
            Some('d') => out.push_str("[0-9]"),
            Some('s') => out.push_str("[ \\t\\n\\x0B\\f\\r]"),
            Some(other) => {
                out.push('\\');
                out.push(other);
            }
            None => out.push_str("\\\\"),
        }
    }
    format!("^(?:{out})$")
}

/// Every pattern of the table, compiled once.
fn compiled() -> &'static HashMap<&'static str, Option<Regex>> {
    static COMPILED: OnceLock<HashMap<&'static str, Option<Regex>>> = OnceLock::new();
    COMPILED.get_or_init(|| {
        super::rules::OPERATIONS
            .iter()
            .flat_map(|op| op.members.iter())
            .filter_map(|m| m.pattern)
            .map(|p| (p, Regex::new(&translate(p)).ok()))
            .collect()
    })
}

/// Whether `value` matches the whole of `pattern` (a pattern of the table). A pattern that does
/// not compile constrains nothing; the table's test compiles them all.
pub(crate) fn matches(pattern: &str, value: &str) -> bool {
    match compiled().get(pattern) {
        Some(Some(regex)) => regex.is_match(value),
        Some(None) => true,
        None => Regex::new(&translate(pattern)).map_or(true, |r| r.is_match(value)),
    }
}

/// Whether every pattern of the table compiles (for the table's test).
#[cfg(test)]
pub(crate) fn all_compile() -> Result<(), String> {
    for (pattern, regex) in compiled() {
        if regex.is_none() {
            return Err(format!("pattern {pattern} does not compile"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_match_whole_values_in_the_java_sense() {
        assert!(matches("^[a-zA-Z0-9:/_-]+$", "alias/orders"));
        assert!(!matches("^[a-zA-Z0-9:/_-]+$", "alias/my key"));
        assert!(matches("[\\w]+", "default"));
        assert!(!matches("[\\w]+", "défault"));
        assert!(!matches("[\\w]+", "default!"));
        assert!(matches("[\\u0020-\\u00FF]*", "marker 1"));
        assert!(!matches("[\\u0020-\\u00FF]*", "\u{0100}"));
        all_compile().unwrap();
    }
}
