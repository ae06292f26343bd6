//! Answers and the small pieces pages are made of: links, dates, labeled fields.

use bytes::Bytes;
use http::{header, HeaderValue, Response, StatusCode};
use http_body_util::Full;
use serde_json::Value as Json;

use super::template::{render, Html, Value};

/// An answer.
pub(crate) type Answer = Response<Full<Bytes>>;

/// An HTML page.
pub(crate) fn html(status: StatusCode, body: Html) -> Answer {
    let mut answer = Response::new(Full::new(Bytes::from(body.into_string())));
    *answer.status_mut() = status;
    answer.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    answer
}

/// A 303 to `location` (a path of this console).
pub(crate) fn redirect(location: &str) -> Answer {
    let mut answer = Response::new(Full::new(Bytes::new()));
    *answer.status_mut() = StatusCode::SEE_OTHER;
    if let Ok(value) = HeaderValue::from_str(location) {
        answer.headers_mut().insert(header::LOCATION, value);
    }
    answer
}

/// `name=value&...`, percent-encoded, for links.
pub(crate) fn query_string(pairs: &[(&str, &str)]) -> String {
    let mut out = form_urlencoded::Serializer::new(String::new());
    for (n, v) in pairs {
        if !v.is_empty() {
            out.append_pair(n, v);
        }
    }
    out.finish()
}

/// A JSON value's text ("" for null; numbers and booleans as written).
pub(crate) fn text(v: &Json) -> String {
    match v {
        Json::Null => String::new(),
        Json::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// An epoch-seconds date of the service's JSON as RFC 3339 (UTC).
pub(crate) fn date(v: &Json) -> String {
    match v.as_f64() {
        Some(secs) => keyplane::audit::rfc3339_millis((secs * 1000.0) as i64),
        None => text(v),
    }
}

/// A link to a key's page, its id shown.
pub(crate) fn key_link(key_id: &str) -> Html {
    render(
        r#"<a href="/key?{{q}}">{{id}}</a>"#,
        &[
            ("q", query_string(&[("id", key_id)]).into()),
            ("id", key_id.into()),
        ],
    )
}

/// Labeled values as a description list.
pub(crate) fn fields(rows: &[(&str, Value)]) -> Html {
    let mut parts = vec![Html::trusted_static("<dl class=\"fields\">")];
    for (name, value) in rows {
        parts.push(render(
            "<dt>{{n}}</dt><dd>{{v}}</dd>",
            &[("n", (*name).into()), ("v", value.clone())],
        ));
    }
    parts.push(Html::trusted_static("</dl>"));
    Html::join(parts)
}
