//! The web console for key administrators: server-rendered HTML over the same service calls,
//! policies and audit as the API, served by `keyplane serve` on its own listener
//! (`--console-listen`; TLS when the server has TLS).
//!
//! One module per page family: [`session`] (sign-in, sessions, CSRF, the rate limit), [`keys`]
//! (the list and create), [`key`] (one key's page), [`actions`] (every change, with confirmation
//! pages for the destructive ones), [`policy`] (the policy editor), [`grants`] (grant forms),
//! [`audit`] (the audit view), [`metrics`] (throughput). [`template`] is the only way HTML is
//! made: every interpolated value is escaped.
//! Beneath the pages, leaves they share: `config` (settings and the names every answer uses),
//! `state` (the console and one request), `answer` (answers, links, dates, fields) and `signed` (a
//! request with a live session: its service calls and its pages' layout).
//!
//! No back door: every read and change is a service request ([`Signed::call`] runs
//! [`crate::protocol::Service::handle`], exactly as a SigV4 request does after its signature is
//! checked) as the signed-in principal's [`keyplane::Caller`], so the key policy, grants, quotas
//! and the audit apply unchanged. Its audit record's `userAgent` starts with `keyplane-console`
//! and carries the signing-in access key id and the browser's address, as a network call's does.
//! The console never calls an operation that returns plaintext or key material, so none can be
//! rendered.
//!
//! Every answer carries a strict Content-Security-Policy, `X-Content-Type-Options: nosniff`,
//! `Referrer-Policy: no-referrer`, `X-Frame-Options: DENY` and `Cache-Control: no-store`. A page
//! without a live session redirects to the sign-in page. A POST must come from this origin
//! (`Origin` equal to this console's, `Sec-Fetch-Site: same-origin` when the browser sends them)
//! and carry the session's CSRF token; else 403 and nothing is done.

pub mod actions;
mod answer;
pub mod audit;
mod config;
mod forms;
pub mod grants;
pub mod key;
pub mod keys;
pub mod metrics;
pub mod policy;
pub mod session;
mod signed;
mod state;
pub mod template;

use std::net::SocketAddr;

use bytes::Bytes;
use http::{header, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;

use template::{render, Html};

pub use config::{AuditPaths, ConsoleConfig, COOKIE_PLAIN, COOKIE_TLS, CSP, USER_AGENT};
pub use session::{SignInLimit, Timeouts};
pub(crate) use state::Console;

use answer::{html, redirect, Answer};
use signed::Signed;
use state::Req;

/// A bare page (no session): sign-in, refusals.
fn bare_page(status: StatusCode, title: &str, main: Html) -> Answer {
    let body = render(
        include_str!("templates/bare.html"),
        &[("title", title.into()), ("main", main.into())],
    );
    html(status, body)
}

fn refused(status: StatusCode, why: &str) -> Answer {
    bare_page(
        status,
        "Refused",
        Html::join([
            template::element("h1", "Refused"),
            template::element("p", why),
            Html::trusted_static(r#"<p><a href="/keys">Back to the console</a></p>"#),
        ]),
    )
}

/// Headers every answer carries.
fn secure(mut answer: Answer) -> Answer {
    let h = answer.headers_mut();
    h.insert("content-security-policy", HeaderValue::from_static(CSP));
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    h.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    h.insert("x-frame-options", HeaderValue::from_static("DENY"));
    h.insert(
        "cross-origin-opener-policy",
        HeaderValue::from_static("same-origin"),
    );
    h.insert(
        "cross-origin-resource-policy",
        HeaderValue::from_static("same-origin"),
    );
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    answer
}

/// Answers one request on the console listener.
pub(crate) async fn handle(
    console: &Console,
    peer: SocketAddr,
    tls_version: Option<String>,
    cipher_suite: Option<String>,
    max_body: usize,
    request: Request<Incoming>,
) -> Answer {
    let (parts, body) = request.into_parts();
    let form = if parts.method == Method::POST {
        let declared = parts
            .headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<usize>().ok());
        if declared.is_some_and(|n| n > max_body) {
            return secure(refused(
                StatusCode::PAYLOAD_TOO_LARGE,
                "The form is too large.",
            ));
        }
        use http_body_util::BodyExt;
        let collected = tokio::time::timeout(
            std::time::Duration::from_secs(30),
            http_body_util::Limited::new(body, max_body).collect(),
        )
        .await;
        match collected {
            Ok(Ok(c)) => form_urlencoded::parse(&c.to_bytes())
                .map(|(n, v)| (n.into_owned(), v.into_owned()))
                .collect(),
            _ => {
                return secure(refused(
                    StatusCode::BAD_REQUEST,
                    "The form could not be read.",
                ))
            }
        }
    } else {
        Vec::new()
    };
    let host = parts
        .headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .or_else(|| parts.uri.authority().map(|a| a.to_string()));
    let req = Req {
        host,
        method: parts.method,
        path: parts.uri.path().to_owned(),
        query: parts
            .uri
            .query()
            .map(|q| {
                form_urlencoded::parse(q.as_bytes())
                    .map(|(n, v)| (n.into_owned(), v.into_owned()))
                    .collect()
            })
            .unwrap_or_default(),
        headers: parts.headers,
        form,
        peer,
        tls_version,
        cipher_suite,
    };
    secure(route(console, &req).await)
}

async fn route(console: &Console, req: &Req) -> Answer {
    let path = req.path.as_str();
    match (&req.method, path) {
        (&Method::GET, "/static/console.css") => {
            return asset(
                include_str!("static/console.css"),
                "text/css; charset=utf-8",
            )
        }
        (&Method::GET, "/static/console.js") => {
            return asset(
                include_str!("static/console.js"),
                "text/javascript; charset=utf-8",
            )
        }
        (&Method::GET, "/sign-in") => return session_pages::sign_in_form(req, None),
        (&Method::POST, "/sign-in") => {
            if let Err(why) = same_origin(console, req) {
                return refused(StatusCode::FORBIDDEN, why);
            }
            return session_pages::sign_in(console, req).await;
        }
        (&Method::GET | &Method::POST, _) => {}
        _ => {
            return refused(
                StatusCode::METHOD_NOT_ALLOWED,
                "Only GET and POST are served.",
            )
        }
    }
    // Everything else needs a session.
    let session = req
        .cookie(console.cookie_name())
        .and_then(|id| console.sessions.get(id));
    let Some(session) = session else {
        if req.method == Method::GET {
            return redirect("/sign-in");
        }
        return refused(
            StatusCode::FORBIDDEN,
            "There is no session: sign in again. Nothing was changed.",
        );
    };
    let signed = Signed {
        console,
        session,
        req,
    };
    if req.method == Method::POST {
        if let Err(why) = same_origin(console, req) {
            return refused(StatusCode::FORBIDDEN, why);
        }
        if !signed.session.csrf_matches(req.f("csrf")) {
            return refused(
                StatusCode::FORBIDDEN,
                "The form's CSRF token is missing or wrong. Nothing was changed.",
            );
        }
    }
    match (&req.method, path) {
        (&Method::GET, "/") => redirect("/keys"),
        (&Method::POST, "/sign-out") => session_pages::sign_out(console, req),
        (&Method::GET, "/keys") => keys::list(&signed).await,
        (&Method::GET, "/keys/new") => keys::new_form(&signed, None, &[]),
        (&Method::POST, "/keys/new") => keys::create(&signed).await,
        (&Method::GET, "/key") => key::page(&signed).await,
        (&Method::GET, "/key/confirm") => actions::confirm(&signed).await,
        (&Method::POST, "/key/action") => actions::act(&signed).await,
        (&Method::GET, "/key/policy") => policy::editor(&signed).await,
        (&Method::POST, "/key/policy") => policy::save(&signed).await,
        (&Method::GET, "/key/grants/new") => grants::new_form(&signed, None),
        (&Method::POST, "/key/grants/new") => grants::create(&signed).await,
        (&Method::GET, "/audit") => audit::list(&signed).await,
        (&Method::GET, "/audit/record") => audit::record(&signed).await,
        (&Method::GET, "/audit/verify") => audit::verify(&signed).await,
        (&Method::GET, "/metrics") => metrics::page(&signed),
        (&Method::GET, "/metrics.json") => metrics::json(&signed),
        _ => signed.page(
            StatusCode::NOT_FOUND,
            "Not found",
            Html::join([
                template::element("h1", "Not found"),
                template::element("p", "The console has no such page."),
            ]),
        ),
    }
}

/// Refuses a POST another origin made. `Sec-Fetch-Site`, which browsers set and pages cannot,
/// must be `same-origin` when sent; `Origin`, when sent, must be this console's own
/// (`scheme://Host`) — except that a browser that vouched `Sec-Fetch-Site: same-origin` sends
/// `Origin: null` for a form on a page with `Referrer-Policy: no-referrer`, as the console's are.
/// Without `Sec-Fetch-Site` (an older browser, a script), `null` is refused.
fn same_origin(console: &Console, req: &Req) -> Result<(), &'static str> {
    let vouched = match req.header("sec-fetch-site") {
        Some("same-origin") => true,
        Some(_) => {
            return Err("The form came from another site (Sec-Fetch-Site). Nothing was changed.")
        }
        None => false,
    };
    if let Some(origin) = req.header(header::ORIGIN) {
        let scheme = if console.tls { "https" } else { "http" };
        let host = req.host.as_deref().unwrap_or("");
        let own = !host.is_empty() && origin == format!("{scheme}://{host}");
        if !(own || (vouched && origin == "null")) {
            return Err("The form came from another origin. Nothing was changed.");
        }
    }
    Ok(())
}

fn asset(text: &'static str, content_type: &'static str) -> Answer {
    let mut answer = Response::new(Full::new(Bytes::from_static(text.as_bytes())));
    answer
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    answer
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    answer
}

/// Sign-in and sign-out pages.
mod session_pages {
    use super::*;

    pub(super) fn sign_in_form(req: &Req, error: Option<&str>) -> Answer {
        let error_html = error.map_or_else(Html::default, |e| {
            render(
                r#"<p class="alert" role="alert" id="sign-in-error">{{e}}</p>"#,
                &[("e", e.into())],
            )
        });
        let status = match error {
            Some(e) if e.starts_with("Too many") => StatusCode::TOO_MANY_REQUESTS,
            Some(_) => StatusCode::UNAUTHORIZED,
            None => StatusCode::OK,
        };
        bare_page(
            status,
            "Sign in",
            render(
                include_str!("templates/sign_in.html"),
                &[
                    ("error", error_html.into()),
                    ("access_key_id", req.f("access_key_id").into()),
                ],
            ),
        )
    }

    pub(super) async fn sign_in(console: &Console, req: &Req) -> Answer {
        let ip = req.peer.ip().to_canonical();
        let access_key_id = req.f("access_key_id").trim().to_owned();
        let secret = zeroize::Zeroizing::new(req.f("secret_access_key").to_owned());
        if !console.limiter.allowed(ip, &access_key_id) {
            return sign_in_form(
                req,
                Some("Too many failed sign-ins: wait a few minutes and try again."),
            );
        }
        let credentials = console.credentials.clone();
        let id = access_key_id.clone();
        let checked =
            tokio::task::spawn_blocking(move || credentials.check_secret(&id, secret.as_bytes()))
                .await;
        let principal = match checked {
            Ok(Ok(principal)) => principal,
            Ok(Err(crate::auth::CheckError::Store(_))) | Err(_) => {
                return sign_in_form(req, Some("The credential store could not be read."))
            }
            Ok(Err(_)) => {
                console.limiter.failed(ip, &access_key_id);
                return sign_in_form(
                    req,
                    Some(
                        "The access key id or secret access key is wrong, or the key is inactive.",
                    ),
                );
            }
        };
        let Ok((id, _)) = console.sessions.create(&principal, &access_key_id) else {
            return sign_in_form(req, Some("A session could not be made."));
        };
        let mut answer = redirect("/keys");
        let cookie = if console.tls {
            format!("{COOKIE_TLS}={id}; HttpOnly; Secure; SameSite=Strict; Path=/")
        } else {
            format!("{COOKIE_PLAIN}={id}; HttpOnly; SameSite=Strict; Path=/")
        };
        if let Ok(value) = HeaderValue::from_str(&cookie) {
            answer.headers_mut().insert(header::SET_COOKIE, value);
        }
        answer
    }

    pub(super) fn sign_out(console: &Console, req: &Req) -> Answer {
        if let Some(id) = req.cookie(console.cookie_name()) {
            console.sessions.destroy(id);
        }
        let mut answer = redirect("/sign-in");
        let cleared = if console.tls {
            format!("{COOKIE_TLS}=; HttpOnly; Secure; SameSite=Strict; Path=/; Max-Age=0")
        } else {
            format!("{COOKIE_PLAIN}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0")
        };
        if let Ok(value) = HeaderValue::from_str(&cleared) {
            answer.headers_mut().insert(header::SET_COOKIE, value);
        }
        answer
    }
}
