//! The pieces of the key pages' forms: the key a request names, hidden inputs, and the buttons
//! that post an action or ask for its confirmation first.

use super::signed::Signed;
use super::template::{render, Html};

/// The key the request names (`id`), trimmed.
pub(crate) fn key_id(s: &Signed<'_>) -> String {
    let id = if s.req.method == http::Method::POST {
        s.req.f("id")
    } else {
        s.req.q("id")
    };
    id.trim().chars().take(2048).collect()
}

/// A form that asks for confirmation first (GET to the confirmation page).
pub(crate) fn confirm_button(id: &str, action: &str, extra: &[(&str, &str)], label: &str) -> Html {
    let mut hidden = vec![hidden("id", id), hidden("action", action)];
    for (n, v) in extra {
        hidden.push(hidden_owned(n, v));
    }
    render(
        r#"<form method="get" action="/key/confirm" class="inline-form">{{hidden}}<button type="submit" class="danger">{{label}}</button></form>"#,
        &[
            ("hidden", Html::join(hidden).into()),
            ("label", label.into()),
        ],
    )
}

/// A form that posts an action at once.
pub(crate) fn post_button(s: &Signed<'_>, id: &str, action: &str, label: &str) -> Html {
    render(
        r#"<form method="post" action="/key/action" class="inline-form">{{csrf}}{{id}}{{action}}<button type="submit">{{label}}</button></form>"#,
        &[
            ("csrf", s.csrf_field().into()),
            ("id", hidden("id", id).into()),
            ("action", hidden("action", action).into()),
            ("label", label.into()),
        ],
    )
}

pub(crate) fn hidden(name: &'static str, value: &str) -> Html {
    render(
        r#"<input type="hidden" name="{{n}}" value="{{v}}">"#,
        &[("n", name.into()), ("v", value.into())],
    )
}

fn hidden_owned(name: &str, value: &str) -> Html {
    render(
        r#"<input type="hidden" name="{{n}}" value="{{v}}">"#,
        &[("n", name.into()), ("v", value.into())],
    )
}
