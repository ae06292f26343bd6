//! The keys list (search by id, alias, tag, description, state and spec; paginated with the
//! service's markers) and the create-key form.
//!
//! Sized for 100,000 keys: a page never loads every key. Without a filter, a page is one
//! `ListKeys` call of [`super::ConsoleConfig::page_size`] keys (and a `DescribeKey` and
//! `ListAliases` per key shown). With a filter, the page scans on from the marker, examining at
//! most [`super::ConsoleConfig::scan_budget`] keys (an alias search: aliases), shows what matched,
//! and links to continue from the last key examined. Every call is the signed-in principal's, so
//! a key the principal may not describe is listed with the refusal, never its metadata.

use http::StatusCode;
use serde_json::{json, Value as Json};

use super::answer::{date, key_link, query_string, redirect, text, Answer};
use super::signed::{ApiError, Signed};
use super::template::{options, render, Html};
use keyplane::key::{KeySpec, KeyState, KeyUsage};

/// What the search form asks for.
struct Search {
    q: String,
    by: String,
    state: String,
    spec: String,
    marker: String,
}

impl Search {
    fn filtered(&self) -> bool {
        !self.q.is_empty() || !self.state.is_empty() || !self.spec.is_empty()
    }

    fn link(&self, marker: &str) -> String {
        format!(
            "/keys?{}",
            query_string(&[
                ("q", &self.q),
                ("by", &self.by),
                ("state", &self.state),
                ("spec", &self.spec),
                ("marker", marker),
            ])
        )
    }
}

/// One listed key.
struct Row {
    key_id: String,
    metadata: Result<Json, ApiError>,
    aliases: Vec<String>,
}

pub(crate) async fn list(s: &Signed<'_>) -> Answer {
    let search = Search {
        q: s.req.q("q").trim().to_owned(),
        by: match s.req.q("by") {
            "alias" | "tag" | "description" => s.req.q("by").to_owned(),
            _ => "id".to_owned(),
        },
        state: s.req.q("state").to_owned(),
        spec: s.req.q("spec").to_owned(),
        marker: s.req.q("marker").to_owned(),
    };
    let page_size = s.console.config.page_size.clamp(1, 1000);
    let budget = s.console.config.scan_budget.max(page_size);
    let scanned = if search.by == "alias" && !search.q.is_empty() {
        scan_aliases(s, &search, page_size, budget).await
    } else if search.filtered() {
        scan_keys(s, &search, page_size, budget).await
    } else {
        plain_page(s, &search, page_size).await
    };
    let (rows, next, examined) = match scanned {
        Ok(found) => found,
        Err(e) => return s.error_page(&e, Some(("/keys", "Back to the keys list"))),
    };
    let mut body = Vec::new();
    for row in &rows {
        body.push(row_html(row));
    }
    let table = if rows.is_empty() {
        Html::trusted_static("<p>No keys on this page match.</p>")
    } else {
        render(
            include_str!("templates/keys_table.html"),
            &[("rows", Html::join(body).into())],
        )
    };
    let status_line = if search.filtered() {
        format!(
            "{} matching on this page; {examined} examined{}.",
            rows.len(),
            if next.is_some() {
                " (the search continues on the next page)"
            } else {
                ", to the end of the list"
            }
        )
    } else {
        format!("{} keys on this page.", rows.len())
    };
    let pager = Html::join([
        if search.marker.is_empty() {
            Html::default()
        } else {
            render(
                r#"<a href="{{href}}">First page</a>"#,
                &[("href", search.link("").into())],
            )
        },
        match &next {
            Some(marker) => render(
                r#"<a href="{{href}}" rel="next">Next page</a>"#,
                &[("href", search.link(marker).into())],
            ),
            None => Html::default(),
        },
    ]);
    let main = render(
        include_str!("templates/keys.html"),
        &[
            ("q", search.q.as_str().into()),
            (
                "by_options",
                options(["id", "alias", "tag", "description"], &search.by).into(),
            ),
            (
                "state_options",
                Html::join([
                    Html::trusted_static(r#"<option value="">any</option>"#),
                    options(KeyState::ALL.iter().map(|s| s.as_str()), &search.state),
                ])
                .into(),
            ),
            (
                "spec_options",
                Html::join([
                    Html::trusted_static(r#"<option value="">any</option>"#),
                    options(KeySpec::ALL.iter().map(|s| s.as_str()), &search.spec),
                ])
                .into(),
            ),
            ("status", status_line.into()),
            ("table", table.into()),
            ("pager", pager.into()),
            ("done", done_banner(s.req.q("done")).into()),
        ],
    );
    s.page(StatusCode::OK, "Keys", main)
}

/// A fixed message for a finished action (never text from the request).
pub(crate) fn done_banner(done: &str) -> Html {
    let message = match done {
        "created" => "The key was created.",
        "enable" => "The key was enabled.",
        "disable" => "The key was disabled.",
        "rotate" => "The key material was rotated.",
        "enable-rotation" => "Automatic rotation was enabled.",
        "disable-rotation" => "Automatic rotation was disabled.",
        "schedule-deletion" => "The key is scheduled for deletion.",
        "cancel-deletion" => "The deletion was cancelled; the key is Disabled.",
        "description" => "The description was updated.",
        "tag-add" => "The tag was set.",
        "tag-remove" => "The tag was removed.",
        "alias-create" => "The alias was created.",
        "alias-delete" => "The alias was deleted.",
        "policy" => "The key policy was saved.",
        "grant-create" => "The grant was created.",
        "grant-retire" => "The grant was retired.",
        "grant-revoke" => "The grant was revoked.",
        _ => return Html::default(),
    };
    render(
        r#"<p class="done" role="status">{{m}}</p>"#,
        &[("m", message.into())],
    )
}

fn row_html(row: &Row) -> Html {
    let (state, spec, usage, description, created) = match &row.metadata {
        Ok(m) => (
            text(&m["KeyState"]),
            text(&m["KeySpec"]),
            text(&m["KeyUsage"]),
            text(&m["Description"]),
            date(&m["CreationDate"]),
        ),
        Err(e) => (
            e.code.clone(),
            String::new(),
            String::new(),
            e.message.clone(),
            String::new(),
        ),
    };
    render(
        "<tr><td>{{link}}</td><td>{{aliases}}</td><td>{{state}}</td><td>{{spec}}</td>\
         <td>{{usage}}</td><td>{{description}}</td><td>{{created}}</td></tr>",
        &[
            ("link", key_link(&row.key_id).into()),
            ("aliases", row.aliases.join(", ").into()),
            ("state", state.into()),
            ("spec", spec.into()),
            ("usage", usage.into()),
            ("description", description.into()),
            ("created", created.into()),
        ],
    )
}

async fn describe(s: &Signed<'_>, key_id: &str) -> Result<Json, ApiError> {
    s.call("DescribeKey", json!({ "KeyId": key_id }))
        .await
        .map(|r| r["KeyMetadata"].clone())
}

async fn aliases_of(s: &Signed<'_>, key_id: &str) -> Vec<String> {
    match s
        .call("ListAliases", json!({ "KeyId": key_id, "Limit": 100 }))
        .await
    {
        Ok(r) => r["Aliases"]
            .as_array()
            .map(|a| a.iter().map(|x| text(&x["AliasName"])).collect())
            .unwrap_or_default(),
        Err(_) => Vec::new(),
    }
}

type Scanned = Result<(Vec<Row>, Option<String>, u32), ApiError>;

/// One `ListKeys` page, every key on it shown.
async fn plain_page(s: &Signed<'_>, search: &Search, page_size: u32) -> Scanned {
    let mut input = json!({ "Limit": page_size });
    if !search.marker.is_empty() {
        input["Marker"] = search.marker.clone().into();
    }
    let page = s.call("ListKeys", input).await?;
    let mut rows = Vec::new();
    for k in page["Keys"].as_array().into_iter().flatten() {
        let key_id = text(&k["KeyId"]);
        rows.push(Row {
            metadata: describe(s, &key_id).await,
            aliases: aliases_of(s, &key_id).await,
            key_id,
        });
    }
    let next = page["NextMarker"].as_str().map(str::to_owned);
    let n = rows.len() as u32;
    Ok((rows, next, n))
}

fn contains(haystack: &str, needle: &str) -> bool {
    haystack.to_lowercase().contains(&needle.to_lowercase())
}

/// Whether a described key passes the state and spec filters.
fn passes(search: &Search, metadata: &Result<Json, ApiError>) -> bool {
    let Ok(m) = metadata else {
        // A key the principal may not describe matches only an unfiltered id search.
        return search.state.is_empty() && search.spec.is_empty() && search.by == "id";
    };
    (search.state.is_empty() || m["KeyState"] == search.state.as_str())
        && (search.spec.is_empty() || m["KeySpec"] == search.spec.as_str())
        && (search.by != "description"
            || search.q.is_empty()
            || contains(&text(&m["Description"]), &search.q))
}

/// Scans `ListKeys` from the marker, at most `budget` keys, for up to `page_size` matches.
async fn scan_keys(s: &Signed<'_>, search: &Search, page_size: u32, budget: u32) -> Scanned {
    let mut rows = Vec::new();
    let mut examined = 0u32;
    let mut marker = search.marker.clone();
    loop {
        let mut input = json!({ "Limit": (budget - examined).min(100) });
        if !marker.is_empty() {
            input["Marker"] = marker.clone().into();
        }
        let page = s.call("ListKeys", input).await?;
        let keys: Vec<String> = page["Keys"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|k| text(&k["KeyId"]))
            .collect();
        let more = page["Truncated"].as_bool().unwrap_or(false);
        for key_id in &keys {
            if rows.len() as u32 >= page_size || examined >= budget {
                // Stopped before this key: the next page continues after the last one examined.
                return Ok((rows, Some(marker).filter(|m| !m.is_empty()), examined));
            }
            examined += 1;
            marker = key_id.clone();
            if search.by == "id" && !search.q.is_empty() && !contains(key_id, &search.q) {
                continue;
            }
            let metadata = describe(s, key_id).await;
            if !passes(search, &metadata) {
                continue;
            }
            if search.by == "tag" && !search.q.is_empty() {
                let tags = s
                    .call("ListResourceTags", json!({ "KeyId": key_id, "Limit": 50 }))
                    .await
                    .map(|r| r["Tags"].clone())
                    .unwrap_or(Json::Null);
                let hit = tags.as_array().into_iter().flatten().any(|t| {
                    let pair = format!("{}={}", text(&t["TagKey"]), text(&t["TagValue"]));
                    contains(&pair, &search.q)
                });
                if !hit {
                    continue;
                }
            }
            rows.push(Row {
                aliases: aliases_of(s, key_id).await,
                key_id: key_id.clone(),
                metadata,
            });
        }
        if !more {
            return Ok((rows, None, examined));
        }
        if rows.len() as u32 >= page_size || examined >= budget {
            return Ok((rows, Some(marker), examined));
        }
    }
}

/// Scans `ListAliases` from the marker, at most `budget` aliases, for names containing the
/// search text.
async fn scan_aliases(s: &Signed<'_>, search: &Search, page_size: u32, budget: u32) -> Scanned {
    let mut rows: Vec<Row> = Vec::new();
    let mut examined = 0u32;
    let mut marker = search.marker.clone();
    loop {
        let mut input = json!({ "Limit": (budget - examined).clamp(1, 100) });
        if !marker.is_empty() {
            input["Marker"] = marker.clone().into();
        }
        let page = s.call("ListAliases", input).await?;
        let aliases = page["Aliases"].as_array().cloned().unwrap_or_default();
        examined += aliases.len() as u32;
        for a in &aliases {
            let name = text(&a["AliasName"]);
            let target = text(&a["TargetKeyId"]);
            if target.is_empty() || !contains(&name, &search.q) {
                continue;
            }
            if let Some(row) = rows.iter_mut().find(|r| r.key_id == target) {
                row.aliases.push(name);
                continue;
            }
            let metadata = describe(s, &target).await;
            if passes(search, &metadata) {
                rows.push(Row {
                    key_id: target,
                    metadata,
                    aliases: vec![name],
                });
            }
        }
        let next = page["NextMarker"].as_str().map(str::to_owned);
        match next {
            Some(m) if (rows.len() as u32) < page_size && examined < budget => marker = m,
            next => return Ok((rows, next, examined)),
        }
    }
}

/// The create-key form, with the service's refusal when a try failed.
pub(crate) fn new_form(s: &Signed<'_>, error: Option<&ApiError>, form: &[(&str, &str)]) -> Answer {
    let get = |name: &str| {
        form.iter()
            .find(|(n, _)| *n == name)
            .map_or("", |(_, v)| *v)
    };
    let spec = if get("spec").is_empty() {
        "SYMMETRIC_DEFAULT"
    } else {
        get("spec")
    };
    let usage = if get("usage").is_empty() {
        "ENCRYPT_DECRYPT"
    } else {
        get("usage")
    };
    let origin = if get("origin").is_empty() {
        "AWS_KMS"
    } else {
        get("origin")
    };
    let main = render(
        include_str!("templates/create.html"),
        &[
            ("csrf", s.csrf_field().into()),
            (
                "error",
                error.map(ApiError::html).unwrap_or_default().into(),
            ),
            (
                "spec_options",
                options(KeySpec::ALL.iter().map(|s| s.as_str()), spec).into(),
            ),
            (
                "usage_options",
                options(KeyUsage::ALL.iter().map(|s| s.as_str()), usage).into(),
            ),
            (
                "origin_options",
                options(["AWS_KMS", "EXTERNAL"], origin).into(),
            ),
            ("description", get("description").into()),
            ("alias", get("alias").into()),
            ("tag_key", get("tag_key").into()),
            ("tag_value", get("tag_value").into()),
        ],
    );
    let status = error.map_or(StatusCode::OK, |e| e.status());
    s.page(status, "Create a key", main)
}

/// CreateKey (and CreateAlias when an alias is given) as the signed-in principal.
pub(crate) async fn create(s: &Signed<'_>) -> Answer {
    let r = s.req;
    let form: Vec<(&str, &str)> = [
        "spec",
        "usage",
        "origin",
        "description",
        "alias",
        "tag_key",
        "tag_value",
    ]
    .iter()
    .map(|n| (*n, r.f(n)))
    .collect();
    let mut input = json!({
        "KeySpec": r.f("spec"),
        "KeyUsage": r.f("usage"),
        "Origin": if r.f("origin").is_empty() { "AWS_KMS" } else { r.f("origin") },
    });
    if !r.f("description").is_empty() {
        input["Description"] = r.f("description").into();
    }
    if !r.f("tag_key").is_empty() {
        input["Tags"] = json!([{ "TagKey": r.f("tag_key"), "TagValue": r.f("tag_value") }]);
    }
    let created = match s.call("CreateKey", input).await {
        Ok(created) => created,
        Err(e) => return new_form(s, Some(&e), &form),
    };
    let key_id = text(&created["KeyMetadata"]["KeyId"]);
    let alias = r.f("alias").trim();
    if !alias.is_empty() {
        let alias = if alias.starts_with("alias/") {
            alias.to_owned()
        } else {
            format!("alias/{alias}")
        };
        if let Err(e) = s
            .call(
                "CreateAlias",
                json!({ "AliasName": alias, "TargetKeyId": key_id }),
            )
            .await
        {
            // The key exists: say so, with the alias's refusal.
            let main = Html::join([
                super::template::element("h1", "The key was created; the alias was refused"),
                e.html(),
                render(
                    "<p>The new key: {{link}}</p>",
                    &[("link", key_link(&key_id).into())],
                ),
            ]);
            return s.page(e.status(), "Alias refused", main);
        }
    }
    redirect(&format!(
        "/key?{}",
        query_string(&[("id", &key_id), ("done", "created")])
    ))
}
