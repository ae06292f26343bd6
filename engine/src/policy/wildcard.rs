//! Wildcard patterns: `*` matches any run of characters (including none), `?` exactly one
//! character.
//!
//! Patterns are compiled once, when a policy is parsed: adjacent literal characters are merged,
//! runs of `*` collapse, and the two common shapes (`*` alone, and no wildcard at all) get their own
//! fast paths. Matching walks the text in place and never allocates.

use std::fmt;

/// How letters compare when matching.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Case {
    /// Byte for byte (resources, `StringLike`, `ArnLike`).
    Sensitive,
    /// ASCII letters compare without regard to case (action names).
    AsciiInsensitive,
}

/// One element of a pattern before compilation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Token {
    /// A character that matches only itself.
    Literal(char),
    /// `*`: any run of characters, including none.
    Star,
    /// `?`: exactly one character.
    One,
}

/// A piece of a star-free run.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Atom {
    Literal(Box<str>),
    One,
}

/// A non-empty run of atoms between stars. `chars` is the number of characters it always spans.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Group {
    atoms: Vec<Atom>,
    chars: usize,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Shape {
    /// `*`: matches every text.
    Anything,
    /// No wildcard at all.
    Exact(Box<str>),
    /// No star, but at least one `?`: one group that must span the whole text.
    Fixed(Group),
    /// At least one star. `prefix`/`suffix` are the groups anchored at the start and end (absent
    /// when the pattern starts or ends with a star); `middle` are the groups between stars.
    Starred {
        prefix: Option<Group>,
        middle: Vec<Group>,
        suffix: Option<Group>,
    },
}

/// A compiled wildcard pattern.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Pattern {
    shape: Shape,
    case: Case,
}

impl fmt::Debug for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Pattern({self})")
    }
}

impl fmt::Display for Pattern {
    /// Writes the pattern back in wildcard syntax (literal `*` and `?` are not escaped).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fn group(f: &mut fmt::Formatter<'_>, g: &Group) -> fmt::Result {
            for atom in &g.atoms {
                match atom {
                    Atom::Literal(s) => f.write_str(s)?,
                    Atom::One => f.write_str("?")?,
                }
            }
            Ok(())
        }
        match &self.shape {
            Shape::Anything => f.write_str("*"),
            Shape::Exact(s) => f.write_str(s),
            Shape::Fixed(g) => group(f, g),
            Shape::Starred {
                prefix,
                middle,
                suffix,
            } => {
                if let Some(g) = prefix {
                    group(f, g)?;
                }
                f.write_str("*")?;
                for g in middle {
                    group(f, g)?;
                    f.write_str("*")?;
                }
                if let Some(g) = suffix {
                    group(f, g)?;
                }
                Ok(())
            }
        }
    }
}

impl Pattern {
    /// Compiles a pattern in which every `*` and `?` is a wildcard (no escapes).
    pub(crate) fn new(pattern: &str, case: Case) -> Pattern {
        Pattern::from_tokens(
            pattern.chars().map(|c| match c {
                '*' => Token::Star,
                '?' => Token::One,
                c => Token::Literal(c),
            }),
            case,
        )
    }

    /// Compiles a pattern from tokens (the policy document resolves escapes such as `${*}` into
    /// [`Token::Literal`] before this).
    pub(crate) fn from_tokens(tokens: impl IntoIterator<Item = Token>, case: Case) -> Pattern {
        let mut groups: Vec<Group> = Vec::new();
        let mut current: Vec<Atom> = Vec::new();
        let mut literal = String::new();
        let mut starts_with_star = false;
        let mut ends_with_star = false;
        let mut any_star = false;
        let mut any_one = false;
        let mut first = true;

        fn close_literal(literal: &mut String, current: &mut Vec<Atom>) {
            if !literal.is_empty() {
                current.push(Atom::Literal(std::mem::take(literal).into_boxed_str()));
            }
        }
        fn close_group(current: &mut Vec<Atom>, groups: &mut Vec<Group>) {
            if !current.is_empty() {
                let chars = current
                    .iter()
                    .map(|a| match a {
                        Atom::Literal(s) => s.chars().count(),
                        Atom::One => 1,
                    })
                    .sum();
                groups.push(Group {
                    atoms: std::mem::take(current),
                    chars,
                });
            }
        }

        for token in tokens {
            match token {
                Token::Literal(c) => {
                    literal.push(c);
                    ends_with_star = false;
                }
                Token::One => {
                    close_literal(&mut literal, &mut current);
                    current.push(Atom::One);
                    any_one = true;
                    ends_with_star = false;
                }
                Token::Star => {
                    close_literal(&mut literal, &mut current);
                    close_group(&mut current, &mut groups);
                    if first {
                        starts_with_star = true;
                    }
                    any_star = true;
                    ends_with_star = true;
                }
            }
            first = false;
        }
        close_literal(&mut literal, &mut current);
        close_group(&mut current, &mut groups);

        let shape = if !any_star {
            match groups.pop() {
                None => Shape::Exact("".into()),
                Some(group) if !any_one => match group.atoms.into_iter().next() {
                    Some(Atom::Literal(s)) => Shape::Exact(s),
                    _ => unreachable!("a star-free, ?-free group is one literal"),
                },
                Some(group) => Shape::Fixed(group),
            }
        } else if groups.is_empty() {
            Shape::Anything
        } else {
            let mut middle = groups;
            let prefix = if starts_with_star {
                None
            } else {
                Some(middle.remove(0))
            };
            let suffix = if ends_with_star { None } else { middle.pop() };
            Shape::Starred {
                prefix,
                middle,
                suffix,
            }
        };
        Pattern { shape, case }
    }

    /// Whether `text` matches the whole pattern.
    pub(crate) fn matches(&self, text: &str) -> bool {
        let case = self.case;
        match &self.shape {
            Shape::Anything => true,
            Shape::Exact(s) => equal(s.as_bytes(), text.as_bytes(), case),
            Shape::Fixed(group) => match_group_at(group, text, case) == Some(text.len()),
            Shape::Starred {
                prefix,
                middle,
                suffix,
            } => {
                let mut pos = 0;
                if let Some(group) = prefix {
                    match match_group_at(group, text, case) {
                        Some(n) => pos = n,
                        None => return false,
                    }
                }
                // Leftmost occurrence of each middle group: the star before it can absorb any
                // prefix, and taking the earliest leaves the most room for what follows.
                for group in middle {
                    match find_group(group, &text[pos..], case) {
                        Some(end) => pos += end,
                        None => return false,
                    }
                }
                match suffix {
                    None => true,
                    Some(group) => {
                        // The suffix spans a fixed number of characters, so it can only start at
                        // one place.
                        let Some(start) = start_of_last_chars(text, group.chars) else {
                            return false;
                        };
                        start >= pos
                            && match_group_at(group, &text[start..], case)
                                == Some(text.len() - start)
                    }
                }
            }
        }
    }
}

/// An ARN pattern, matched one colon-separated component at a time so that a wildcard never
/// spans a `:` (the sixth component, the resource, keeps any further colons).
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct ArnPattern {
    parts: Box<[Pattern]>,
}

impl fmt::Debug for ArnPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ArnPattern(")?;
        for (i, part) in self.parts.iter().enumerate() {
            if i > 0 {
                f.write_str(":")?;
            }
            write!(f, "{part}")?;
        }
        f.write_str(")")
    }
}

impl ArnPattern {
    /// The number of components of an ARN.
    const PARTS: usize = 6;

    /// Compiles an ARN pattern; `None` when it has fewer than six components.
    pub(crate) fn from_tokens(tokens: &[Token]) -> Option<ArnPattern> {
        let mut parts = Vec::with_capacity(Self::PARTS);
        let mut current = Vec::new();
        for &token in tokens {
            if token == Token::Literal(':') && parts.len() < Self::PARTS - 1 {
                parts.push(Pattern::from_tokens(
                    std::mem::take(&mut current),
                    Case::Sensitive,
                ));
            } else {
                current.push(token);
            }
        }
        parts.push(Pattern::from_tokens(current, Case::Sensitive));
        (parts.len() == Self::PARTS).then(|| ArnPattern {
            parts: parts.into_boxed_slice(),
        })
    }

    /// Whether `arn` matches, component by component.
    pub(crate) fn matches(&self, arn: &str) -> bool {
        let mut components = arn.splitn(Self::PARTS, ':');
        self.parts
            .iter()
            .all(|part| components.next().is_some_and(|c| part.matches(c)))
    }
}

/// Byte comparison under `case`. ASCII case folding leaves non-ASCII bytes alone, so equal byte
/// strings end on the same character boundary.
fn equal(a: &[u8], b: &[u8], case: Case) -> bool {
    match case {
        Case::Sensitive => a == b,
        Case::AsciiInsensitive => a.eq_ignore_ascii_case(b),
    }
}

/// Matches `group` at the start of `text`; returns the number of bytes it spans.
fn match_group_at(group: &Group, text: &str, case: Case) -> Option<usize> {
    let mut pos = 0;
    for atom in &group.atoms {
        match atom {
            Atom::Literal(literal) => {
                let rest = &text.as_bytes()[pos..];
                if rest.len() < literal.len()
                    || !equal(&rest[..literal.len()], literal.as_bytes(), case)
                {
                    return None;
                }
                pos += literal.len();
            }
            Atom::One => pos += text[pos..].chars().next()?.len_utf8(),
        }
    }
    Some(pos)
}

/// Finds the leftmost occurrence of `group` in `text`; returns the byte offset just past it.
fn find_group(group: &Group, text: &str, case: Case) -> Option<usize> {
    let mut start = 0;
    loop {
        if let Some(n) = match_group_at(group, &text[start..], case) {
            return Some(start + n);
        }
        start += text[start..].chars().next()?.len_utf8();
    }
}

/// The byte offset where the last `count` characters of `text` begin, if it has that many.
fn start_of_last_chars(text: &str, count: usize) -> Option<usize> {
    if count == 0 {
        return Some(text.len());
    }
    text.char_indices().rev().nth(count - 1).map(|(i, _)| i)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(pattern: &str, text: &str) -> bool {
        Pattern::new(pattern, Case::Sensitive).matches(text)
    }

    #[test]
    fn star_alone_matches_everything() {
        assert!(m("*", ""));
        assert!(m("*", "anything at all"));
        assert!(m("***", "x"));
        assert_eq!(Pattern::new("**", Case::Sensitive).shape, Shape::Anything);
    }

    #[test]
    fn exact_patterns() {
        assert!(m("kms:Encrypt", "kms:Encrypt"));
        assert!(!m("kms:Encrypt", "kms:encrypt"));
        assert!(!m("kms:Encrypt", "kms:EncryptX"));
        assert!(m("", ""));
        assert!(!m("", "a"));
    }

    #[test]
    fn prefix_suffix_and_infix_stars() {
        assert!(m("kms:Create*", "kms:CreateKey"));
        assert!(m("kms:Create*", "kms:Create"));
        assert!(!m("kms:Create*", "kms:DescribeKey"));
        assert!(m("*Key", "kms:DescribeKey"));
        assert!(!m("*Key", "kms:DescribeKeys"));
        assert!(m("kms:*Key*", "kms:DescribeKey"));
        assert!(m("kms:*Key*", "kms:GetKeyPolicy"));
        assert!(!m("kms:*Key*", "kms:Encrypt"));
        assert!(m("a*a", "aa"));
        assert!(!m("a*a", "a"));
        assert!(m("a*b*c", "abc"));
        assert!(m("a*b*c", "axxbyyc"));
        assert!(!m("a*b*c", "axxcyyb"));
        assert!(m("*ab*ab*", "xxabyyabzz"));
        assert!(!m("*ab*ab*", "xxabyy"));
    }

    #[test]
    fn question_mark_is_one_character() {
        assert!(m("a?c", "abc"));
        assert!(!m("a?c", "ac"));
        assert!(!m("a?c", "abbc"));
        assert!(m("a?c", "aéc"));
        assert!(m("??", "éé"));
        assert!(!m("???", "éé"));
        assert!(m("*?", "x"));
        assert!(!m("*?", ""));
        assert!(m("?*?", "ab"));
        assert!(!m("?*?", "a"));
        assert!(m("*a?", "xxab"));
        assert!(!m("*a?", "xxa"));
    }

    #[test]
    fn suffix_cannot_overlap_prefix() {
        assert!(!m("ab*ba", "aba"));
        assert!(m("ab*ba", "abba"));
        assert!(!m("abc*c?", "abcd"));
    }

    #[test]
    fn multibyte_text_and_patterns() {
        assert!(m("ключ*", "ключ-1"));
        assert!(m("*€", "100€"));
        assert!(!m("*€", "100$"));
        assert!(m("?€?", "1€2"));
    }

    #[test]
    fn ascii_case_insensitive() {
        let p = Pattern::new("kms:create*", Case::AsciiInsensitive);
        assert!(p.matches("KMS:CreateKey"));
        assert!(p.matches("kms:CREATEALIAS"));
        assert!(!p.matches("kms:DescribeKey"));
        let p = Pattern::new("kms:Encrypt", Case::AsciiInsensitive);
        assert!(p.matches("kms:encrypt"));
        let p = Pattern::new("kms:*KEY*", Case::AsciiInsensitive);
        assert!(p.matches("kms:DescribeKey"));
    }

    #[test]
    fn literal_tokens_escape_wildcards() {
        let p = Pattern::from_tokens(
            [Token::Literal('a'), Token::Literal('*'), Token::Star],
            Case::Sensitive,
        );
        assert!(p.matches("a*"));
        assert!(p.matches("a*bc"));
        assert!(!p.matches("abc"));
        let p = Pattern::from_tokens([Token::Literal('?')], Case::Sensitive);
        assert!(p.matches("?"));
        assert!(!p.matches("x"));
    }

    fn arn(pattern: &str) -> ArnPattern {
        let tokens: Vec<Token> = pattern
            .chars()
            .map(|c| match c {
                '*' => Token::Star,
                '?' => Token::One,
                c => Token::Literal(c),
            })
            .collect();
        ArnPattern::from_tokens(&tokens).unwrap()
    }

    #[test]
    fn arn_patterns_match_component_by_component() {
        let p = arn("arn:aws:iam::*:role/Admin*");
        assert!(p.matches("arn:aws:iam::111122223333:role/Admin"));
        assert!(p.matches("arn:aws:iam::111122223333:role/AdminOps"));
        assert!(!p.matches("arn:aws:iam::111122223333:user/Admin"));
        // The account wildcard cannot swallow a colon.
        assert!(!p.matches("arn:aws:iam::1:2:role/Admin"));
        let p = arn("arn:aws:kms:*:*:*");
        assert!(p.matches("arn:aws:kms:us-east-1:111122223333:key/k"));
        assert!(p.matches("arn:aws:kms:::"));
        assert!(!p.matches("arn:aws:kms:us-east-1:111122223333"));
        // The resource component keeps its own colons.
        let p = arn("arn:aws:logs:*:*:log-group:*");
        assert!(p.matches("arn:aws:logs:us-east-1:111122223333:log-group:x:y"));
        assert!(ArnPattern::from_tokens(&[Token::Literal('a'), Token::Literal(':')]).is_none());
        assert_eq!(format!("{p:?}"), "ArnPattern(arn:aws:logs:*:*:log-group:*)");
    }

    #[test]
    fn display_round_trips() {
        for p in ["*", "abc", "a?c", "a*", "*a", "a*b?c*d", "*a*", "?"] {
            assert_eq!(Pattern::new(p, Case::Sensitive).to_string(), p);
        }
    }
}
