//! Every change to a key, as one service call of the signed-in principal; the destructive ones
//! only after a confirmation page (`confirm=yes`, which only that page's form sends).
//!
//! `POST /key/action` takes `action` and its fields; on success it redirects to the key's page
//! with a fixed message, on refusal it shows the service's error code and message (and nothing
//! changed: the engine refused before changing anything).

use http::StatusCode;
use serde_json::{json, Value as Json};

use super::answer::{fields, query_string, redirect, Answer};
use super::forms::{hidden, key_id};
use super::signed::{ApiError, Signed};
use super::template::{element, render, Html};

/// Actions that ask for confirmation first.
const DESTRUCTIVE: &[&str] = &[
    "disable",
    "schedule-deletion",
    "disable-rotation",
    "tag-remove",
    "alias-delete",
    "grant-retire",
    "grant-revoke",
];

/// Fields a destructive action carries through its confirmation page.
const CARRIED: &[&str] = &["days", "alias", "tag_key", "grant_id"];

pub(crate) async fn confirm(s: &Signed<'_>) -> Answer {
    let id = key_id(s);
    let action = s.req.q("action");
    let (title, warning, button) = match action {
        "disable" => (
            "Disable this key?",
            "A disabled key cannot be used in any cryptographic operation until it is enabled again.",
            "Disable key",
        ),
        "schedule-deletion" => (
            "Schedule this key for deletion?",
            "After the waiting period the key and all of its key material are deleted for good, and \
             everything encrypted under it can never be decrypted again. Until then the key cannot be \
             used and the deletion can be cancelled.",
            "Schedule deletion",
        ),
        "disable-rotation" => (
            "Disable automatic rotation?",
            "The key material will no longer be rotated on schedule.",
            "Disable automatic rotation",
        ),
        "tag-remove" => ("Remove this tag?", "Policies that test this tag will see it gone.", "Remove tag"),
        "alias-delete" => (
            "Delete this alias?",
            "Applications that name the key by this alias will fail to find it.",
            "Delete alias",
        ),
        "grant-retire" => (
            "Retire this grant?",
            "The grantee loses the permissions the grant gave.",
            "Retire grant",
        ),
        "grant-revoke" => (
            "Revoke this grant?",
            "The grantee loses the permissions the grant gave, at once.",
            "Revoke grant",
        ),
        _ => {
            return s.page(
                StatusCode::BAD_REQUEST,
                "Unknown action",
                element("p", "There is no such action."),
            )
        }
    };
    let mut carried = vec![hidden("id", &id), hidden("action", action)];
    let mut detail_rows = vec![("Key", id.as_str().into())];
    for name in CARRIED {
        let value = s.req.q(name);
        if !value.is_empty() {
            carried.push(render(
                r#"<input type="hidden" name="{{n}}" value="{{v}}">"#,
                &[("n", (*name).into()), ("v", value.into())],
            ));
            detail_rows.push((*name, value.into()));
        }
    }
    let main = render(
        include_str!("templates/confirm.html"),
        &[
            ("title", title.into()),
            ("warning", warning.into()),
            ("details", fields(&detail_rows).into()),
            ("csrf", s.csrf_field().into()),
            ("hidden", Html::join(carried).into()),
            ("button", button.into()),
            ("back", query_string(&[("id", &id)]).into()),
        ],
    );
    s.page(StatusCode::OK, title, main)
}

/// The service call an action makes.
fn request(action: &str, id: &str, f: &dyn Fn(&str) -> String) -> Option<(&'static str, Json)> {
    Some(match action {
        "enable" => ("EnableKey", json!({ "KeyId": id })),
        "disable" => ("DisableKey", json!({ "KeyId": id })),
        "rotate" => ("RotateKeyOnDemand", json!({ "KeyId": id })),
        "enable-rotation" => {
            let mut input = json!({ "KeyId": id });
            let period = f("period");
            if !period.is_empty() {
                // A number the service checks (90–2560); text that is no number goes as text and
                // is refused by the service's own validation.
                input["RotationPeriodInDays"] = period
                    .parse::<i64>()
                    .map(Json::from)
                    .unwrap_or(Json::String(period));
            }
            ("EnableKeyRotation", input)
        }
        "disable-rotation" => ("DisableKeyRotation", json!({ "KeyId": id })),
        "schedule-deletion" => {
            let mut input = json!({ "KeyId": id });
            let days = f("days");
            if !days.is_empty() {
                input["PendingWindowInDays"] = days
                    .parse::<i64>()
                    .map(Json::from)
                    .unwrap_or(Json::String(days));
            }
            ("ScheduleKeyDeletion", input)
        }
        "cancel-deletion" => ("CancelKeyDeletion", json!({ "KeyId": id })),
        "description" => (
            "UpdateKeyDescription",
            json!({ "KeyId": id, "Description": f("description") }),
        ),
        "tag-add" => (
            "TagResource",
            json!({ "KeyId": id, "Tags": [{ "TagKey": f("tag_key"), "TagValue": f("tag_value") }] }),
        ),
        "tag-remove" => (
            "UntagResource",
            json!({ "KeyId": id, "TagKeys": [f("tag_key")] }),
        ),
        "alias-create" => {
            let alias = f("alias").trim().to_owned();
            let alias = if alias.starts_with("alias/") {
                alias
            } else {
                format!("alias/{alias}")
            };
            (
                "CreateAlias",
                json!({ "AliasName": alias, "TargetKeyId": id }),
            )
        }
        "alias-delete" => ("DeleteAlias", json!({ "AliasName": f("alias") })),
        "grant-retire" => (
            "RetireGrant",
            json!({ "KeyId": id, "GrantId": f("grant_id") }),
        ),
        "grant-revoke" => (
            "RevokeGrant",
            json!({ "KeyId": id, "GrantId": f("grant_id") }),
        ),
        _ => return None,
    })
}

pub(crate) async fn act(s: &Signed<'_>) -> Answer {
    let id = key_id(s);
    let action = s.req.f("action");
    if DESTRUCTIVE.contains(&action) && s.req.f("confirm") != "yes" {
        let back = format!("/key?{}", query_string(&[("id", &id)]));
        return s.page(
            StatusCode::BAD_REQUEST,
            "Confirm first",
            Html::join([
                element("h1", "Confirm first"),
                element(
                    "p",
                    "This action asks for confirmation: nothing was changed.",
                ),
                render(
                    r#"<p><a href="{{b}}">Back to the key</a></p>"#,
                    &[("b", back.into())],
                ),
            ]),
        );
    }
    let form = |name: &str| s.req.f(name).to_owned();
    let Some((operation, input)) = request(action, &id, &form) else {
        return s.page(
            StatusCode::BAD_REQUEST,
            "Unknown action",
            element("p", "There is no such action."),
        );
    };
    match s.call(operation, input).await {
        Ok(_) => redirect(&format!(
            "/key?{}",
            query_string(&[("id", &id), ("done", action)])
        )),
        Err(e) => refused(s, &id, operation, &e),
    }
}

/// The service's refusal of `operation` on key `id`.
pub(crate) fn refused(s: &Signed<'_>, id: &str, operation: &str, e: &ApiError) -> Answer {
    let back = format!("/key?{}", query_string(&[("id", id)]));
    let main = Html::join([
        element("h1", &format!("{operation} was refused")),
        e.html(),
        element("p", "Nothing was changed."),
        render(
            r#"<p><a href="{{b}}">Back to the key</a></p>"#,
            &[("b", back.into())],
        ),
    ]);
    s.page(e.status(), "Refused", main)
}
