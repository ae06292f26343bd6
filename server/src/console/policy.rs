//! The key policy editor: the policy as the service returns it, saved with PutKeyPolicy; a
//! refusal (malformed JSON, a bad principal, the lockout check, AccessDenied) is shown beside the
//! text, which is kept as typed.

use http::StatusCode;
use serde_json::json;

use super::answer::{query_string, redirect, text, Answer};
use super::forms::key_id;
use super::key::pretty;
use super::signed::{ApiError, Signed};
use super::template::render;

fn form(s: &Signed<'_>, id: &str, policy: &str, error: Option<&ApiError>) -> Answer {
    let main = render(
        include_str!("templates/policy.html"),
        &[
            ("id", id.into()),
            ("back", query_string(&[("id", id)]).into()),
            ("csrf", s.csrf_field().into()),
            ("policy", policy.into()),
            (
                "error",
                error.map(ApiError::html).unwrap_or_default().into(),
            ),
        ],
    );
    let status = error.map_or(StatusCode::OK, ApiError::status);
    s.page(status, "Key policy", main)
}

pub(crate) async fn editor(s: &Signed<'_>) -> Answer {
    let id = key_id(s);
    match s
        .call(
            "GetKeyPolicy",
            json!({ "KeyId": id, "PolicyName": "default" }),
        )
        .await
    {
        Ok(r) => form(s, &id, &pretty(&text(&r["Policy"])), None),
        Err(e) => s.error_page(&e, Some(("/keys", "Back to the keys list"))),
    }
}

pub(crate) async fn save(s: &Signed<'_>) -> Answer {
    let id = key_id(s);
    let policy = s.req.f("policy");
    let input = json!({
        "KeyId": id,
        "PolicyName": "default",
        "Policy": policy,
        "BypassPolicyLockoutSafetyCheck": s.req.f("bypass") == "yes",
    });
    match s.call("PutKeyPolicy", input).await {
        Ok(_) => redirect(&format!(
            "/key?{}",
            query_string(&[("id", &id), ("done", "policy")])
        )),
        Err(e) => form(s, &id, policy, Some(&e)),
    }
}
