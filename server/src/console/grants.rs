//! Grants: the key's grants (ListGrants) with retire and revoke (each confirmed first), and the
//! create-grant form (CreateGrant; the grant token is shown once, as the service returns it —
//! it is not key material).

use http::StatusCode;
use serde_json::json;

use super::answer::{date, query_string, text, Answer};
use super::forms::{confirm_button, hidden, key_id};
use super::signed::{ApiError, Signed};
use super::template::{element, render, Html};
use keyplane::key::GrantOperation;

pub(crate) async fn section(s: &Signed<'_>, id: &str) -> Result<Html, ApiError> {
    let r = s
        .call("ListGrants", json!({ "KeyId": id, "Limit": 100 }))
        .await?;
    let mut rows = Vec::new();
    for g in r["Grants"].as_array().into_iter().flatten() {
        let grant_id = text(&g["GrantId"]);
        let operations = g["Operations"]
            .as_array()
            .map(|o| o.iter().map(text).collect::<Vec<_>>().join(", "))
            .unwrap_or_default();
        rows.push(render(
            "<tr><td class=\"code\">{{gid}}</td><td>{{name}}</td><td>{{grantee}}</td><td>{{retiring}}</td>\
             <td>{{ops}}</td><td>{{created}}</td><td>{{retire}} {{revoke}}</td></tr>",
            &[
                ("gid", grant_id.as_str().into()),
                ("name", text(&g["Name"]).into()),
                ("grantee", text(&g["GranteePrincipal"]).into()),
                ("retiring", text(&g["RetiringPrincipal"]).into()),
                ("ops", operations.into()),
                ("created", date(&g["CreationDate"]).into()),
                (
                    "retire",
                    confirm_button(id, "grant-retire", &[("grant_id", &grant_id)], "Retire").into(),
                ),
                (
                    "revoke",
                    confirm_button(id, "grant-revoke", &[("grant_id", &grant_id)], "Revoke").into(),
                ),
            ],
        ));
    }
    let table = if rows.is_empty() {
        element("p", "No grants.")
    } else {
        render(
            "<div class=\"table-wrap\"><table><thead><tr><th scope=\"col\">Grant id</th><th scope=\"col\">Name</th>\
             <th scope=\"col\">Grantee</th><th scope=\"col\">Retiring principal</th><th scope=\"col\">Operations</th>\
             <th scope=\"col\">Created</th><th scope=\"col\">End</th></tr></thead><tbody>{{rows}}</tbody></table></div>",
            &[("rows", Html::join(rows).into())],
        )
    };
    Ok(Html::join([
        table,
        render(
            r#"<p><a href="/key/grants/new?{{q}}">Create a grant</a></p>"#,
            &[("q", query_string(&[("id", id)]).into())],
        ),
    ]))
}

pub(crate) fn new_form(s: &Signed<'_>, error: Option<&ApiError>) -> Answer {
    let id = key_id(s);
    let chosen = s.req.f_all("operations");
    let mut boxes = Vec::new();
    for (i, op) in GrantOperation::ALL.iter().enumerate() {
        let op = op.as_str();
        let box_id = format!("op-{i}");
        boxes.push(render(
            r#"<div class="check"><input type="checkbox" id="{{bid}}" name="operations" value="{{op}}"{{checked}}><label for="{{bid}}">{{op}}</label></div>"#,
            &[
                ("bid", box_id.into()),
                ("op", op.into()),
                (
                    "checked",
                    if chosen.contains(&op) {
                        Html::trusted_static(" checked")
                    } else {
                        Html::default()
                    }
                    .into(),
                ),
            ],
        ));
    }
    let main = render(
        include_str!("templates/grant.html"),
        &[
            ("id", id.as_str().into()),
            ("hidden_id", hidden("id", &id).into()),
            ("back", query_string(&[("id", &id)]).into()),
            ("csrf", s.csrf_field().into()),
            (
                "error",
                error.map(ApiError::html).unwrap_or_default().into(),
            ),
            ("grantee", s.req.f("grantee").into()),
            ("retiring", s.req.f("retiring").into()),
            ("name", s.req.f("name").into()),
            ("operations", Html::join(boxes).into()),
        ],
    );
    s.page(
        error.map_or(StatusCode::OK, ApiError::status),
        "Create a grant",
        main,
    )
}

pub(crate) async fn create(s: &Signed<'_>) -> Answer {
    let id = key_id(s);
    let operations: Vec<&str> = s.req.f_all("operations");
    let mut input = json!({
        "KeyId": id,
        "GranteePrincipal": s.req.f("grantee").trim(),
        "Operations": operations,
    });
    if !s.req.f("retiring").trim().is_empty() {
        input["RetiringPrincipal"] = s.req.f("retiring").trim().into();
    }
    if !s.req.f("name").trim().is_empty() {
        input["Name"] = s.req.f("name").trim().into();
    }
    match s.call("CreateGrant", input).await {
        Ok(r) => {
            let back = format!(
                "/key?{}",
                query_string(&[("id", &id), ("done", "grant-create")])
            );
            let main = render(
                include_str!("templates/grant_made.html"),
                &[
                    ("grant_id", text(&r["GrantId"]).into()),
                    ("token", text(&r["GrantToken"]).into()),
                    ("back", back.into()),
                ],
            );
            s.page(StatusCode::OK, "Grant created", main)
        }
        Err(e) => new_form(s, Some(&e)),
    }
}
