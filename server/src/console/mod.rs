//! The web console for key administrators: server-rendered HTML over the same service calls,
//! policies and audit as the API, served by `keyplane serve` on its own listener
//! (`--console-listen`; TLS when the server has TLS).
//!
//! One module per page family: [`session`] (sign-in, sessions, CSRF, the rate limit), [`keys`]
//! (the list and create), [`key`] (one key's page), [`actions`] (every change, with confirmation
//! pages for the destructive ones), [`policy`] (the policy editor), [`grants`] (grant forms),
//! [`audit`] (the audit view), [`metrics`] (throughput). [`template`] is the only way HTML is
//! made: every interpolated value is escaped.
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
pub mod audit;
mod forms;
pub mod grants;
pub mod key;
pub mod keys;
pub mod metrics;
pub mod policy;
pub mod session;
pub mod template;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http::{header, HeaderMap, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use serde_json::Value as Json;

use crate::auth::CredentialStore;
use crate::context::RequestContext;
use crate::metrics::Metrics;
use crate::protocol::{Service, TARGET_PREFIX};
use session::{Session, Sessions};
use template::{render, Html, Value};

pub use session::{SignInLimit, Timeouts};

/// The Content-Security-Policy of every answer.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
                       connect-src 'self'; form-action 'self'; frame-ancestors 'none'; \
                       base-uri 'none'";

/// The session cookie's name over TLS (`__Host-`: the browser keeps it only when it is Secure,
/// host-only and `Path=/`).
pub const COOKIE_TLS: &str = "__Host-kp_console";
/// The session cookie's name over plain HTTP on loopback (tests only: a `__Host-` cookie must be
/// Secure, and a Secure cookie is not sent over plain HTTP).
pub const COOKIE_PLAIN: &str = "kp_console";
/// What the console's audit records' `userAgent` begins with.
pub const USER_AGENT: &str = "keyplane-console";

/// Where the audit log the console shows lives.
#[derive(Clone, Debug)]
pub struct AuditPaths {
    /// The audit directory (segments and the legacy log).
    pub dir: PathBuf,
    /// The audit public key (DER SubjectPublicKeyInfo) that verifies the digests.
    pub public_key: PathBuf,
}

/// The console's settings.
#[derive(Clone, Debug)]
pub struct ConsoleConfig {
    /// The console listener (`--console-listen`).
    pub listen: SocketAddr,
    /// The audit log to show (none: the audit view says there is none).
    pub audit: Option<AuditPaths>,
    pub timeouts: Timeouts,
    pub sign_in_limit: SignInLimit,
    /// Keys per page of the keys list.
    pub page_size: u32,
    /// Keys a filtered search examines per page before it offers to continue.
    pub scan_budget: u32,
}

impl ConsoleConfig {
    /// Defaults for `listen`.
    pub fn new(listen: SocketAddr) -> ConsoleConfig {
        ConsoleConfig {
            listen,
            audit: None,
            timeouts: Timeouts::default(),
            sign_in_limit: SignInLimit::default(),
            page_size: 50,
            scan_budget: 200,
        }
    }
}

/// The console of one server.
#[derive(Debug)]
pub(crate) struct Console {
    pub(crate) config: ConsoleConfig,
    service: Service,
    credentials: CredentialStore,
    metrics: Arc<Metrics>,
    /// Served over TLS: the cookie is `__Host-` and Secure, the origin `https://`.
    tls: bool,
    sessions: Sessions,
    limiter: session::Limiter,
}

impl Console {
    pub(crate) fn new(
        config: ConsoleConfig,
        service: Service,
        credentials: CredentialStore,
        metrics: Arc<Metrics>,
        tls: bool,
    ) -> Console {
        Console {
            sessions: Sessions::new(config.timeouts),
            limiter: session::Limiter::new(config.sign_in_limit),
            config,
            service,
            credentials,
            metrics,
            tls,
        }
    }

    fn cookie_name(&self) -> &'static str {
        if self.tls {
            COOKIE_TLS
        } else {
            COOKIE_PLAIN
        }
    }

    /// The account's root principal, who may read the audit view.
    fn account_root(&self) -> String {
        format!(
            "arn:aws:iam::{}:root",
            self.service.engine().config().account_id
        )
    }
}

/// An answer.
pub(crate) type Answer = Response<Full<Bytes>>;

/// One request to the console, its body read.
#[derive(Debug)]
pub(crate) struct Req {
    pub method: Method,
    pub path: String,
    pub query: Vec<(String, String)>,
    pub headers: HeaderMap,
    /// The `Host` header, or HTTP/2's `:authority`.
    pub host: Option<String>,
    pub form: Vec<(String, String)>,
    pub peer: SocketAddr,
    pub tls_version: Option<String>,
    pub cipher_suite: Option<String>,
}

impl Req {
    /// A query parameter ("" when absent).
    pub fn q(&self, name: &str) -> &str {
        first(&self.query, name)
    }

    /// A form field ("" when absent).
    pub fn f(&self, name: &str) -> &str {
        first(&self.form, name)
    }

    /// Every value of a repeated form field.
    pub fn f_all(&self, name: &str) -> Vec<&str> {
        self.form
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    fn header(&self, name: impl header::AsHeaderName) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    fn cookie(&self, name: &str) -> Option<&str> {
        self.headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|pair| pair.trim().split_once('='))
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v)
    }
}

fn first<'a>(pairs: &'a [(String, String)], name: &str) -> &'a str {
    pairs
        .iter()
        .find(|(n, _)| n == name)
        .map_or("", |(_, v)| v.as_str())
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

/// An error the service answered with: its code and message, shown as they are.
#[derive(Debug, Clone)]
pub(crate) struct ApiError {
    pub code: String,
    pub message: String,
}

impl ApiError {
    /// `code: message`, escaped, in an alert box.
    pub fn html(&self) -> Html {
        render(
            include_str!("templates/error_box.html"),
            &[
                ("code", self.code.as_str().into()),
                ("message", self.message.as_str().into()),
            ],
        )
    }

    pub(crate) fn status(&self) -> StatusCode {
        match self.code.as_str() {
            "AccessDeniedException" => StatusCode::FORBIDDEN,
            "NotFoundException" => StatusCode::NOT_FOUND,
            code => StatusCode::from_u16(crate::protocol::errors::status(code))
                .unwrap_or(StatusCode::BAD_REQUEST),
        }
    }
}

/// A request with a live session.
pub(crate) struct Signed<'a> {
    pub console: &'a Console,
    pub session: Session,
    pub req: &'a Req,
}

impl Signed<'_> {
    /// Runs service operation `operation` with `input` as the signed-in principal, exactly as a
    /// SigV4 request for it would run (policies, grants, quotas, audit); its answer's JSON.
    pub async fn call(&self, operation: &str, input: Json) -> Result<Json, ApiError> {
        let started = Instant::now();
        let request_id = uuid::Uuid::new_v4().to_string();
        let ip = self.req.peer.ip().to_canonical();
        let caller = keyplane::Caller::new(&self.session.principal)
            .map_err(|e| ApiError {
                code: "AccessDeniedException".into(),
                message: format!("the credential's principal is not valid: {}", e.message()),
            })?
            .with_source_ip(ip);
        let browser = self.req.header(header::USER_AGENT).unwrap_or("");
        let browser: String = browser.chars().take(200).collect();
        let origin = keyplane::RequestOrigin {
            request_id: Some(request_id.clone()),
            source_ip: Some(ip.to_string()),
            user_agent: Some(format!(
                "{USER_AGENT}/{} ({browser})",
                env!("CARGO_PKG_VERSION")
            )),
            access_key_id: Some(self.session.access_key_id.clone()),
            tls_version: self.req.tls_version.clone(),
            cipher_suite: self.req.cipher_suite.clone(),
            host: self.req.host.clone(),
        };
        let ctx = RequestContext {
            request_id,
            caller,
            origin,
        };
        let body = serde_json::to_vec(&input).unwrap_or_default();
        let target = format!("{TARGET_PREFIX}{operation}");
        let reply = self
            .console
            .service
            .handle(&ctx, Some(&target), &body)
            .await;
        self.console
            .metrics
            .request(reply.operation, reply.error_code, started.elapsed());
        let answer: Json = serde_json::from_slice(&reply.body).unwrap_or(Json::Null);
        if reply.status == 200 {
            Ok(answer)
        } else {
            Err(ApiError {
                code: answer["__type"]
                    .as_str()
                    .unwrap_or("KMSInternalException")
                    .to_owned(),
                message: answer["message"].as_str().unwrap_or("").to_owned(),
            })
        }
    }

    /// `page` inside the layout, for this session.
    pub fn page(&self, status: StatusCode, title: &str, main: Html) -> Answer {
        let nav_audit = if self.is_account_root() {
            Html::trusted_static(r#"<li><a href="/audit">Audit</a></li>"#)
        } else {
            Html::default()
        };
        let body = render(
            include_str!("templates/layout.html"),
            &[
                ("title", title.into()),
                ("principal", self.session.principal.as_str().into()),
                ("csrf", self.session.csrf().into()),
                ("nav_audit", nav_audit.into()),
                ("main", main.into()),
            ],
        );
        html(status, body)
    }

    /// The service's error, as a page.
    pub fn error_page(&self, error: &ApiError, back: Option<(&str, &str)>) -> Answer {
        let back = back.map_or_else(Html::default, |(href, text)| {
            render(
                r#"<p><a href="{{href}}">{{text}}</a></p>"#,
                &[("href", href.into()), ("text", text.into())],
            )
        });
        let main = Html::join([
            template::element("h1", "The request was refused"),
            error.html(),
            back,
        ]);
        self.page(error.status(), "Refused", main)
    }

    /// The hidden CSRF field for this session's forms.
    pub fn csrf_field(&self) -> Html {
        render(
            r#"<input type="hidden" name="csrf" value="{{csrf}}">"#,
            &[("csrf", self.session.csrf().into())],
        )
    }

    pub(crate) fn is_account_root(&self) -> bool {
        self.session.principal == self.console.account_root()
    }
}

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
