//! The console's one way to make HTML: templates with `{{name}}` holes, every value escaped.
//!
//! A hole is filled with a [`Value`]: [`Value::Text`] is HTML-escaped (`& < > " '` and control
//! characters), always, wherever the hole is (element text or a quoted attribute value);
//! [`Value::Html`] inserts an [`Html`] fragment, which only this module can make — from a template
//! rendered here, or from text escaped here. So user data (a key description, tag, alias, policy,
//! an error message) can reach a page only through [`escape`]. A hole the template names but the
//! caller did not give renders as nothing, and a value given but not used is ignored: a typo costs
//! a blank, never raw text. Templates are files under `templates/`, built into the binary.

use std::fmt::Write as _;

/// A fragment of HTML whose user-supplied parts were escaped. Made only by [`escape`],
/// [`render`], [`Html::join`] and [`Html::trusted_static`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Html(String);

impl Html {
    /// A fragment written in this crate's source (a constant, never user data).
    pub fn trusted_static(text: &'static str) -> Html {
        Html(text.to_owned())
    }

    /// The fragments one after another.
    pub fn join(parts: impl IntoIterator<Item = Html>) -> Html {
        let mut out = String::new();
        for part in parts {
            out.push_str(&part.0);
        }
        Html(out)
    }

    /// The page text.
    pub fn into_string(self) -> String {
        self.0
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// What fills a hole.
#[derive(Debug, Clone)]
pub enum Value {
    /// Text, escaped.
    Text(String),
    /// A fragment already made safe.
    Html(Html),
}

impl From<&str> for Value {
    fn from(s: &str) -> Value {
        Value::Text(s.to_owned())
    }
}

impl From<String> for Value {
    fn from(s: String) -> Value {
        Value::Text(s)
    }
}

impl From<&String> for Value {
    fn from(s: &String) -> Value {
        Value::Text(s.clone())
    }
}

impl From<Html> for Value {
    fn from(h: Html) -> Value {
        Value::Html(h)
    }
}

impl From<u64> for Value {
    fn from(n: u64) -> Value {
        Value::Text(n.to_string())
    }
}

/// `text` with `& < > " '` as character references and control characters (but tab and newline)
/// dropped.
pub fn escape(text: &str) -> Html {
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '\t' | '\n' => out.push(c),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    Html(out)
}

/// `template` with each `{{name}}` replaced by the value named so in `values`.
pub fn render(template: &'static str, values: &[(&str, Value)]) -> Html {
    let mut out = String::with_capacity(template.len() + 256);
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            out.push_str(&rest[start..]);
            rest = "";
            break;
        };
        let name = after[..end].trim();
        if let Some((_, value)) = values.iter().find(|(n, _)| *n == name) {
            match value {
                Value::Text(text) => out.push_str(&escape(text).0),
                Value::Html(html) => out.push_str(&html.0),
            }
        }
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    Html(out)
}

/// `<option>`s of `choices`, the one equal to `selected` selected.
pub fn options<'a>(choices: impl IntoIterator<Item = &'a str>, selected: &str) -> Html {
    let mut out = String::new();
    for choice in choices {
        let choice = escape(choice).0;
        let sel = if choice == escape(selected).0 {
            " selected"
        } else {
            ""
        };
        let _ = write!(out, "<option value=\"{choice}\"{sel}>{choice}</option>");
    }
    Html(out)
}

/// Escaped text wrapped in one element of this crate's choosing (`tag` is a constant).
pub fn element(tag: &'static str, text: &str) -> Html {
    Html(format!("<{tag}>{}</{tag}>", escape(text).0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped_everywhere_and_html_only_from_here() {
        let page = render(
            "<p title=\"{{a}}\">{{ a }}</p>{{b}}{{missing}}",
            &[
                ("a", "<script>alert('x\")</script>&".into()),
                ("b", escape("<b>").into()),
            ],
        );
        assert_eq!(
            page.as_str(),
            "<p title=\"&lt;script&gt;alert(&#39;x&quot;)&lt;/script&gt;&amp;\">\
             &lt;script&gt;alert(&#39;x&quot;)&lt;/script&gt;&amp;</p>&lt;b&gt;"
        );
        assert_eq!(escape("a\u{0}b\u{1b}c\nd").as_str(), "abc\nd");
        assert_eq!(
            options(["A", "<B>"], "<B>").as_str(),
            "<option value=\"A\">A</option><option value=\"&lt;B&gt;\" selected>&lt;B&gt;</option>"
        );
        // A value that itself looks like a hole is not expanded again.
        assert_eq!(
            render("{{a}}", &[("a", "{{b}}".into()), ("b", "x".into())]).as_str(),
            "{{b}}"
        );
    }
}
