//! The web console's security, against a server in process (plain HTTP on loopback, and TLS for
//! the cookie's `__Host-`/Secure form): no session → sign-in; a POST without the session's CSRF
//! token, or from another origin, is refused and changes nothing; a principal the key policy does
//! not allow sees the engine's AccessDeniedException and nothing changes; sessions expire and end
//! at sign-out; sign-in is rate limited per address and per access key id; the cookie's
//! attributes; the security headers; and user data (`<script>` in a description, tag, policy
//! text, search) is escaped on every page.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{header, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use keyplane::audit::AuditConfig;
use keyplane::Engine;
use keyplane_server::auth::{Authenticator, CredentialStore};
use keyplane_server::coalesce::CoalesceConfig;
use keyplane_server::console::{
    AuditPaths, ConsoleConfig, SignInLimit, Timeouts, COOKIE_PLAIN, COOKIE_TLS, CSP,
};
use keyplane_server::http::{Limits, Server, ServerConfig, ShutdownHandle, TlsMode};
use keyplane_server::protocol::Service;
use keyplane_server::Metrics;
use tokio::net::{TcpSocket, TcpStream};

const ROOT: &str = "arn:aws:iam::111122223333:root";
/// A principal of another account: the default key policy does not let it do anything.
const MALLORY: &str = "arn:aws:iam::444455556666:user/mallory";

struct Running {
    console: SocketAddr,
    engine: Engine,
    root: (String, String),
    mallory: (String, String),
    shutdown: ShutdownHandle,
    tls_ca: Option<std::path::PathBuf>,
    _dir: tempfile::TempDir,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.shutdown.shutdown();
    }
}

fn config(timeouts: Timeouts, limit: SignInLimit) -> ConsoleConfig {
    let mut c = ConsoleConfig::new("127.0.0.1:0".parse().unwrap());
    c.timeouts = timeouts;
    c.sign_in_limit = limit;
    c
}

async fn start(console: ConsoleConfig) -> Running {
    start_with(console, false).await
}

async fn start_with(mut console: ConsoleConfig, tls: bool) -> Running {
    let dir = tempfile::tempdir().unwrap();
    let (signing_key, public) = keyplane_testkit::audit_signing_key();
    let audit_dir = dir.path().join("audit");
    std::fs::create_dir_all(&audit_dir).unwrap();
    let public_key = dir.path().join("audit-public.der");
    std::fs::write(&public_key, &public).unwrap();
    let engine = Engine::builder()
        .lock_policy(keyplane::LockPolicy::Warn)
        .audit(AuditConfig::directory(&audit_dir), signing_key)
        .build()
        .unwrap();
    console.audit = Some(AuditPaths {
        dir: audit_dir,
        public_key,
    });
    let credentials = CredentialStore::in_memory();
    let r = credentials.create(ROOT).unwrap();
    let m = credentials.create(MALLORY).unwrap();
    let metrics = Arc::new(Metrics::default());
    let service = Service::new(
        engine.clone(),
        CoalesceConfig::default(),
        Arc::clone(&metrics),
    );
    let mode = if tls {
        TlsMode::SelfSigned {
            dir: dir.path().join("tls"),
        }
    } else {
        TlsMode::Plain
    };
    let server = Server::bind(
        ServerConfig {
            listen: "127.0.0.1:0".parse().unwrap(),
            admin_listen: None,
            tls: mode,
            limits: Limits::default(),
        },
        service,
        Authenticator::new(credentials, "us-east-1"),
        metrics,
    )
    .await
    .unwrap()
    .with_console(console)
    .unwrap();
    let running = Running {
        console: server.console_addr().unwrap(),
        engine,
        root: (
            r.access_key_id.clone(),
            r.secret_access_key.as_str().to_owned(),
        ),
        mallory: (
            m.access_key_id.clone(),
            m.secret_access_key.as_str().to_owned(),
        ),
        shutdown: server.shutdown_handle(),
        tls_ca: server.tls_info().map(|t| t.certificate.clone()),
        _dir: dir,
    };
    tokio::spawn(server.run());
    running
}

type Answer = Response<Bytes>;

fn body(a: &Answer) -> String {
    String::from_utf8_lossy(a.body()).into_owned()
}

/// One request on a fresh connection from `from` (a loopback address), plain HTTP.
async fn send_from(
    from: &str,
    to: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    form: &[(&str, &str)],
) -> Answer {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(format!("{from}:0").parse().unwrap()).unwrap();
    let tcp = socket.connect(to).await.unwrap();
    let body = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(form)
        .finish();
    let mut request = Request::builder()
        .method(method)
        .uri(path)
        .header(header::HOST, to.to_string());
    if method == "POST" {
        request = request.header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
    }
    for (n, v) in headers {
        request = request.header(*n, *v);
    }
    let request = request.body(Full::new(Bytes::from(body))).unwrap();
    h1(tcp, request).await
}

async fn h1<IO>(io: IO, request: Request<Full<Bytes>>) -> Answer
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io))
        .await
        .unwrap();
    tokio::spawn(conn);
    let response = sender.send_request(request).await.unwrap();
    let (parts, body) = response.into_parts();
    Response::from_parts(parts, body.collect().await.unwrap().to_bytes())
}

async fn send(
    to: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    form: &[(&str, &str)],
) -> Answer {
    send_from("127.0.0.1", to, method, path, headers, form).await
}

/// A signed-in browser: its cookie and CSRF token.
struct Browser {
    to: SocketAddr,
    cookie: String,
    csrf: String,
}

impl Browser {
    async fn sign_in(r: &Running, who: &(String, String)) -> Browser {
        let a = send(
            r.console,
            "POST",
            "/sign-in",
            &[],
            &[("access_key_id", &who.0), ("secret_access_key", &who.1)],
        )
        .await;
        assert_eq!(a.status(), StatusCode::SEE_OTHER, "{}", body(&a));
        let set = a.headers()[header::SET_COOKIE].to_str().unwrap().to_owned();
        let cookie = set.split(';').next().unwrap().to_owned();
        let mut b = Browser {
            to: r.console,
            cookie,
            csrf: String::new(),
        };
        // A page that makes no service call: any principal may see it.
        let page = b.get("/keys/new").await;
        assert_eq!(page.status(), StatusCode::OK);
        b.csrf = csrf_of(&body(&page));
        b
    }

    async fn get(&self, path: &str) -> Answer {
        send(self.to, "GET", path, &[("cookie", &self.cookie)], &[]).await
    }

    async fn post(&self, path: &str, extra: &[(&str, &str)], form: &[(&str, &str)]) -> Answer {
        let origin = format!("http://{}", self.to);
        let mut headers = vec![
            ("cookie", self.cookie.as_str()),
            ("origin", origin.as_str()),
        ];
        headers.extend_from_slice(extra);
        let mut fields = vec![("csrf", self.csrf.as_str())];
        fields.extend_from_slice(form);
        send(self.to, "POST", path, &headers, &fields).await
    }
}

fn csrf_of(page: &str) -> String {
    let at = page.find("name=\"csrf\" value=\"").expect("a CSRF field") + 19;
    page[at..at + 64].to_owned()
}

/// The assurance suite's line for a named attack (`scripts/test-assurance` sums them), printed
/// after the test's assertions passed: every attempt counted was refused.
fn attack(name: &str, tried: usize) {
    println!("assurance: attack console {name}: tried {tried}, rejected {tried}");
}

fn state(engine: &Engine, key: &str) -> String {
    engine
        .describe_key(key)
        .unwrap()
        .key_state
        .as_str()
        .to_owned()
}

fn quick() -> ConsoleConfig {
    config(Timeouts::default(), SignInLimit::default())
}

#[tokio::test]
async fn without_a_session_pages_redirect_to_sign_in_and_posts_are_refused() {
    let r = start(quick()).await;
    let key = r.engine.create_key(Default::default()).unwrap().key_id;
    for path in [
        "/",
        "/keys",
        "/key?id=x",
        "/audit",
        "/metrics",
        "/metrics.json",
        "/keys/new",
    ] {
        let a = send(r.console, "GET", path, &[], &[]).await;
        assert_eq!(a.status(), StatusCode::SEE_OTHER, "{path}");
        assert_eq!(a.headers()[header::LOCATION], "/sign-in", "{path}");
    }
    // A made-up session id is no session.
    let forged = format!("{COOKIE_PLAIN}={}", "ab".repeat(32));
    let a = send(r.console, "GET", "/keys", &[("cookie", &forged)], &[]).await;
    assert_eq!(a.status(), StatusCode::SEE_OTHER);
    let a = send(
        r.console,
        "POST",
        "/key/action",
        &[("cookie", &forged)],
        &[("id", &key), ("action", "disable"), ("confirm", "yes")],
    )
    .await;
    assert_eq!(a.status(), StatusCode::FORBIDDEN);
    assert_eq!(state(&r.engine, &key), "Enabled");
    // The sign-in page and the assets need none.
    assert_eq!(
        send(r.console, "GET", "/sign-in", &[], &[]).await.status(),
        StatusCode::OK
    );
    assert_eq!(
        send(r.console, "GET", "/static/console.css", &[], &[])
            .await
            .status(),
        StatusCode::OK
    );
    attack("no_session_or_a_forged_session_id", 7 + 2);
}

#[tokio::test]
async fn sign_in_sets_a_strict_cookie_and_every_answer_has_the_security_headers() {
    let r = start(quick()).await;
    let a = send(
        r.console,
        "POST",
        "/sign-in",
        &[],
        &[
            ("access_key_id", &r.root.0),
            ("secret_access_key", &r.root.1),
        ],
    )
    .await;
    assert_eq!(a.status(), StatusCode::SEE_OTHER);
    assert_eq!(a.headers()[header::LOCATION], "/keys");
    let cookie = a.headers()[header::SET_COOKIE].to_str().unwrap();
    let (pair, attributes) = cookie.split_once(';').unwrap();
    let (name, id) = pair.split_once('=').unwrap();
    assert_eq!(name, COOKIE_PLAIN);
    assert_eq!(id.len(), 64, "256 random bits, hex");
    assert!(id.bytes().all(|b| b.is_ascii_hexdigit()));
    assert_eq!(attributes.trim(), "HttpOnly; SameSite=Strict; Path=/");
    let browser = Browser::sign_in(&r, &r.root).await;
    assert_ne!(browser.cookie, pair, "each sign-in makes a new session");
    for answer in [
        a,
        send(r.console, "GET", "/sign-in", &[], &[]).await,
        browser.get("/keys").await,
        browser.get("/metrics.json").await,
        browser.get("/static/console.js").await,
        browser.get("/no-such-page").await,
    ] {
        let h = answer.headers();
        assert_eq!(h["content-security-policy"], CSP);
        assert!(CSP.contains("default-src 'none'") && CSP.contains("frame-ancestors 'none'"));
        assert_eq!(h["x-content-type-options"], "nosniff");
        assert_eq!(h["referrer-policy"], "no-referrer");
        assert_eq!(h["x-frame-options"], "DENY");
    }
    // A wrong secret: no cookie, the sign-in page again.
    let a = send(
        r.console,
        "POST",
        "/sign-in",
        &[],
        &[
            ("access_key_id", &r.root.0),
            ("secret_access_key", &r.mallory.1),
        ],
    )
    .await;
    assert_eq!(a.status(), StatusCode::UNAUTHORIZED);
    assert!(a.headers().get(header::SET_COOKIE).is_none());
}

#[tokio::test]
async fn over_tls_the_cookie_is_host_prefixed_and_secure() {
    let r = start_with(quick(), true).await;
    let ca = r.tls_ca.clone().unwrap();
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls::pki_types::CertificateDer::pem_file_iter(&ca).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = TcpStream::connect(r.console).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let tls = connector.connect(name, tcp).await.expect("TLS handshake");
    let form = form_urlencoded::Serializer::new(String::new())
        .extend_pairs([
            ("access_key_id", &r.root.0),
            ("secret_access_key", &r.root.1),
        ])
        .finish();
    let request = Request::builder()
        .method("POST")
        .uri("/sign-in")
        .header(header::HOST, format!("localhost:{}", r.console.port()))
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(
            header::ORIGIN,
            format!("https://localhost:{}", r.console.port()),
        )
        .body(Full::new(Bytes::from(form)))
        .unwrap();
    let a = h1(tls, request).await;
    assert_eq!(a.status(), StatusCode::SEE_OTHER, "{}", body(&a));
    let cookie = a.headers()[header::SET_COOKIE].to_str().unwrap();
    assert!(cookie.starts_with(&format!("{COOKIE_TLS}=")), "{cookie}");
    assert!(
        cookie.ends_with("; HttpOnly; Secure; SameSite=Strict; Path=/"),
        "{cookie}"
    );
}

#[tokio::test]
async fn a_post_without_the_sessions_csrf_token_or_from_another_origin_changes_nothing() {
    let r = start(quick()).await;
    let key = r.engine.create_key(Default::default()).unwrap().key_id;
    let b = Browser::sign_in(&r, &r.root).await;
    let disable = [
        ("id", key.as_str()),
        ("action", "disable"),
        ("confirm", "yes"),
    ];
    let origin = format!("http://{}", r.console);
    // No token.
    let a = send(
        r.console,
        "POST",
        "/key/action",
        &[("cookie", &b.cookie), ("origin", &origin)],
        &disable,
    )
    .await;
    assert_eq!(a.status(), StatusCode::FORBIDDEN);
    assert!(body(&a).contains("CSRF"));
    // A wrong token, and another session's token.
    let other = Browser::sign_in(&r, &r.root).await;
    for wrong in ["0".repeat(64), other.csrf.clone(), String::new()] {
        let mut form = vec![("csrf", wrong.as_str())];
        form.extend_from_slice(&disable);
        let a = send(
            r.console,
            "POST",
            "/key/action",
            &[("cookie", &b.cookie), ("origin", &origin)],
            &form,
        )
        .await;
        assert_eq!(a.status(), StatusCode::FORBIDDEN, "token {wrong:?}");
    }
    // The right token from another origin (a stolen cookie replayed by another site's page).
    for headers in [
        vec![("origin", "http://evil.example")],
        vec![("origin", "null")],
        vec![("sec-fetch-site", "cross-site")],
        vec![("sec-fetch-site", "same-site")],
    ] {
        let mut all = vec![("cookie", b.cookie.as_str())];
        all.extend(headers.iter().copied());
        let mut form = vec![("csrf", b.csrf.as_str())];
        form.extend_from_slice(&disable);
        let a = send(r.console, "POST", "/key/action", &all, &form).await;
        assert_eq!(a.status(), StatusCode::FORBIDDEN, "{headers:?}");
    }
    // The sign-in form too refuses another origin.
    let a = send(
        r.console,
        "POST",
        "/sign-in",
        &[("origin", "http://evil.example")],
        &[
            ("access_key_id", &r.root.0),
            ("secret_access_key", &r.root.1),
        ],
    )
    .await;
    assert_eq!(a.status(), StatusCode::FORBIDDEN);
    assert!(a.headers().get(header::SET_COOKIE).is_none());
    assert_eq!(state(&r.engine, &key), "Enabled", "nothing changed");
    // A destructive action without its confirmation changes nothing either.
    let a = b
        .post("/key/action", &[], &[("id", &key), ("action", "disable")])
        .await;
    assert_eq!(a.status(), StatusCode::BAD_REQUEST);
    assert_eq!(state(&r.engine, &key), "Enabled");
    // `Origin: null` (what Chromium sends for a form of a page with `Referrer-Policy:
    // no-referrer`) passes only when the browser vouches `Sec-Fetch-Site: same-origin`.
    let mut form = vec![("csrf", b.csrf.as_str())];
    form.extend_from_slice(&disable);
    for site in ["cross-site", "same-site", "none"] {
        let a = send(
            r.console,
            "POST",
            "/key/action",
            &[
                ("cookie", &b.cookie),
                ("origin", "null"),
                ("sec-fetch-site", site),
            ],
            &form,
        )
        .await;
        assert_eq!(a.status(), StatusCode::FORBIDDEN, "{site}");
    }
    // Nor does a vouched-for POST with the wrong origin pass.
    let a = send(
        r.console,
        "POST",
        "/key/action",
        &[
            ("cookie", &b.cookie),
            ("origin", "http://evil.example"),
            ("sec-fetch-site", "same-origin"),
        ],
        &form,
    )
    .await;
    assert_eq!(a.status(), StatusCode::FORBIDDEN);
    assert_eq!(state(&r.engine, &key), "Enabled");
    // With everything right, it is done: as Chromium sends it.
    let a = send(
        r.console,
        "POST",
        "/key/action",
        &[
            ("cookie", &b.cookie),
            ("origin", "null"),
            ("sec-fetch-site", "same-origin"),
        ],
        &form,
    )
    .await;
    assert_eq!(a.status(), StatusCode::SEE_OTHER, "{}", body(&a));
    assert_eq!(state(&r.engine, &key), "Disabled");
    attack("csrf_token_missing_wrong_or_another_sessions", 1 + 3);
    attack("cross_origin_post_with_a_stolen_cookie", 4 + 1 + 3 + 1);
    attack("destructive_action_without_confirmation", 1);
}

#[tokio::test]
async fn a_principal_the_key_policy_does_not_allow_gets_access_denied_and_nothing_changes() {
    let r = start(quick()).await;
    let key = r.engine.create_key(Default::default()).unwrap().key_id;
    let m = Browser::sign_in(&r, &r.mallory).await;
    for (action, extra) in [
        ("disable", vec![("confirm", "yes")]),
        ("schedule-deletion", vec![("confirm", "yes"), ("days", "7")]),
        ("description", vec![("description", "mallory was here")]),
        (
            "tag-add",
            vec![("tag_key", "owner"), ("tag_value", "mallory")],
        ),
    ] {
        let mut form = vec![("id", key.as_str()), ("action", action)];
        form.extend(extra);
        let a = m.post("/key/action", &[], &form).await;
        assert_eq!(a.status(), StatusCode::FORBIDDEN, "{action}");
        let page = body(&a);
        assert!(page.contains("AccessDeniedException"), "{action}: {page}");
        assert!(page.contains("Nothing was changed"));
    }
    let a = m
        .post(
            "/key/policy",
            &[],
            &[("id", &key), ("policy", r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"kms:*","Resource":"*"}]}"#)],
        )
        .await;
    assert_eq!(a.status(), StatusCode::FORBIDDEN);
    assert!(body(&a).contains("AccessDeniedException"));
    let a = m.get(&format!("/key?id={key}")).await;
    assert_eq!(a.status(), StatusCode::FORBIDDEN);
    assert!(!body(&a).contains("Enabled"), "no metadata shown");
    assert_eq!(m.get("/keys").await.status(), StatusCode::FORBIDDEN);
    assert!(body(&a).contains("AccessDeniedException"));
    // Mallory is not the account root: no audit view.
    assert_eq!(m.get("/audit").await.status(), StatusCode::FORBIDDEN);
    let d = r.engine.describe_key(&key).unwrap();
    assert_eq!(d.key_state.as_str(), "Enabled");
    assert_eq!(d.description, "");
    assert!(r
        .engine
        .list_resource_tags(&key, None, None)
        .unwrap()
        .items
        .is_empty());
    let policy = r.engine.get_key_policy(&key, None).unwrap();
    assert!(!policy.contains("\"Principal\":\"*\""), "{policy}");
    attack("principal_outside_the_key_policy", 4 + 1 + 1 + 1 + 1);
}

#[tokio::test]
async fn sessions_expire_when_idle_and_at_their_absolute_limit() {
    let r = start(config(
        Timeouts {
            idle: Duration::from_millis(600),
            absolute: Duration::from_millis(1500),
        },
        SignInLimit::default(),
    ))
    .await;
    let b = Browser::sign_in(&r, &r.root).await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    let a = b.get("/keys").await;
    assert_eq!(a.status(), StatusCode::SEE_OTHER, "idle past 600 ms");
    assert_eq!(a.headers()[header::LOCATION], "/sign-in");
    let b = Browser::sign_in(&r, &r.root).await;
    for _ in 0..4 {
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(
            b.get("/keys").await.status(),
            StatusCode::OK,
            "kept alive by use"
        );
    }
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(
        b.get("/keys").await.status(),
        StatusCode::SEE_OTHER,
        "absolute limit"
    );
    attack("expired_session_reused", 2);
}

#[tokio::test]
async fn sign_out_destroys_the_session() {
    let r = start(quick()).await;
    let b = Browser::sign_in(&r, &r.root).await;
    // Sign-out is a POST with the token, like every change.
    let a = send(
        r.console,
        "POST",
        "/sign-out",
        &[("cookie", &b.cookie)],
        &[],
    )
    .await;
    assert_eq!(a.status(), StatusCode::FORBIDDEN);
    assert_eq!(b.get("/keys").await.status(), StatusCode::OK);
    let a = b.post("/sign-out", &[], &[]).await;
    assert_eq!(a.status(), StatusCode::SEE_OTHER);
    assert_eq!(a.headers()[header::LOCATION], "/sign-in");
    let cleared = a.headers()[header::SET_COOKIE].to_str().unwrap();
    assert!(cleared.starts_with(&format!("{COOKIE_PLAIN}=;")) && cleared.contains("Max-Age=0"));
    // The old cookie (kept by an attacker, say) no longer works.
    assert_eq!(b.get("/keys").await.status(), StatusCode::SEE_OTHER);
    let key = r.engine.create_key(Default::default()).unwrap().key_id;
    let a = b
        .post(
            "/key/action",
            &[],
            &[("id", &key), ("action", "disable"), ("confirm", "yes")],
        )
        .await;
    assert_eq!(a.status(), StatusCode::FORBIDDEN);
    assert_eq!(state(&r.engine, &key), "Enabled");
    attack("session_cookie_reused_after_sign_out", 1 + 2);
}

#[tokio::test]
async fn sign_in_is_rate_limited_per_address_and_per_access_key_id() {
    let r = start(config(
        Timeouts::default(),
        SignInLimit {
            attempts: 3,
            window: Duration::from_secs(60),
        },
    ))
    .await;
    let attempt = |from: &'static str, id: String, secret: String| {
        let to = r.console;
        async move {
            send_from(
                from,
                to,
                "POST",
                "/sign-in",
                &[],
                &[("access_key_id", &id), ("secret_access_key", &secret)],
            )
            .await
        }
    };
    for _ in 0..3 {
        let a = attempt("127.0.0.1", r.root.0.clone(), "wrong".into()).await;
        assert_eq!(a.status(), StatusCode::UNAUTHORIZED);
    }
    // The right secret is refused now, from this address...
    let a = attempt("127.0.0.1", r.root.0.clone(), r.root.1.clone()).await;
    assert_eq!(a.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(a.headers().get(header::SET_COOKIE).is_none());
    // ...for another key from this address...
    let a = attempt("127.0.0.1", r.mallory.0.clone(), r.mallory.1.clone()).await;
    assert_eq!(a.status(), StatusCode::TOO_MANY_REQUESTS);
    // ...and for this key from another address.
    let a = attempt("127.0.0.2", r.root.0.clone(), r.root.1.clone()).await;
    assert_eq!(a.status(), StatusCode::TOO_MANY_REQUESTS);
    // Another key from another address is not held back.
    let a = attempt("127.0.0.3", r.mallory.0.clone(), r.mallory.1.clone()).await;
    assert_eq!(a.status(), StatusCode::SEE_OTHER);
    attack("sign_in_brute_force_past_the_limit", 3);
}

#[tokio::test]
async fn every_page_escapes_user_data() {
    let r = start(quick()).await;
    let evil = "<script>alert(1)</script>";
    let b = Browser::sign_in(&r, &r.root).await;
    // Made through the console itself, so the audit records carry the text too.
    let a = b
        .post(
            "/keys/new",
            &[],
            &[
                ("spec", "SYMMETRIC_DEFAULT"),
                ("usage", "ENCRYPT_DECRYPT"),
                ("description", evil),
                ("alias", "alias/evil"),
                ("tag_key", evil),
                ("tag_value", evil),
            ],
        )
        .await;
    assert_eq!(a.status(), StatusCode::SEE_OTHER, "{}", body(&a));
    let location = a.headers()[header::LOCATION].to_str().unwrap().to_owned();
    let key = r.engine.list_keys(None, None).unwrap().items[0]
        .key_id
        .clone();
    assert!(location.contains(&key));
    // A policy whose text the engine refuses is shown back escaped, beside the engine's message.
    let a = b
        .post(
            "/key/policy",
            &[],
            &[("id", &key), ("policy", &format!("{{\"x\": \"{evil}\""))],
        )
        .await;
    assert_eq!(a.status(), StatusCode::BAD_REQUEST);
    let page = body(&a);
    assert!(page.contains("MalformedPolicyDocumentException"), "{page}");
    assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(!page.contains(evil));
    let q = |s: &str| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    let pages = [
        "/keys".to_owned(),
        format!("/keys?by=description&q={}", q("script")),
        format!("/keys?by=id&q={}", q(evil)),
        format!("/keys?by=tag&q={}", q("script")),
        "/keys?by=alias&q=evil".to_owned(),
        format!("/key?id={key}"),
        format!("/key?id={}", q(evil)),
        format!("/key/policy?id={key}"),
        format!(
            "/key/confirm?id={key}&action=tag-remove&tag_key={}",
            q(evil)
        ),
        format!("/key/grants/new?id={key}"),
        "/audit".to_owned(),
        format!("/audit?q={}", q(evil)),
    ];
    let mut with_description = 0;
    for path in &pages {
        let a = b.get(path).await;
        let page = body(&a);
        assert!(
            !page.contains("<script>"),
            "{path}: raw <script> in\n{page}"
        );
        if page.contains("&lt;script&gt;alert(1)&lt;/script&gt;") {
            with_description += 1;
        }
    }
    assert!(
        with_description >= 6,
        "the escaped text is shown, not dropped"
    );
    // The audit record of the CreateKey, whole.
    let audit = body(&b.get("/audit?op=CreateKey").await);
    let at = audit.find("/audit/record?").expect("a CreateKey record");
    let link = &audit[at..at + audit[at..].find('"').unwrap()];
    let record = body(&b.get(&link.replace("&amp;", "&")).await);
    assert!(record.contains("CreateKey"), "{record}");
    assert!(!record.contains("<script>"));
    attack("stored_and_reflected_script_injection", pages.len() + 1);
}

#[tokio::test]
async fn console_actions_are_audited_as_the_signed_in_principal_from_the_console() {
    let r = start(quick()).await;
    let b = Browser::sign_in(&r, &r.root).await;
    let key = r.engine.create_key(Default::default()).unwrap().key_id;
    let a = b
        .post(
            "/key/action",
            &[("user-agent", "TestBrowser/1.0")],
            &[("id", &key), ("action", "disable"), ("confirm", "yes")],
        )
        .await;
    assert_eq!(a.status(), StatusCode::SEE_OTHER);
    let page = body(&b.get("/audit?op=DisableKey").await);
    assert!(page.contains(ROOT), "{page}");
    assert!(page.contains("keyplane-console/"), "{page}");
    assert!(page.contains("127.0.0.1"));
    let verify = body(&b.get("/audit/verify").await);
    assert!(verify.contains("id=\"audit-verdict\""), "{verify}");
    assert!(!verify.contains("TAMPERED"), "{verify}");
}

/// The key ids a keys-list page links to, and its next-page link.
fn listed(page: &str) -> (Vec<String>, Option<String>) {
    let mut ids = Vec::new();
    let mut rest = page;
    while let Some(at) = rest.find("<a href=\"/key?id=") {
        let tail = &rest[at + 17..];
        let end = tail.find('"').unwrap();
        ids.push(tail[..end].to_owned());
        rest = &tail[end..];
    }
    let next = page.find("\" rel=\"next\"").map(|end| {
        let start = page[..end].rfind("href=\"").unwrap() + 6;
        page[start..end].replace("&amp;", "&")
    });
    (ids, next)
}

#[tokio::test]
async fn the_keys_list_pages_with_the_services_markers_and_bounds_every_search() {
    let mut c = quick();
    c.page_size = 10;
    c.scan_budget = 25;
    let r = start(c).await;
    let mut all = Vec::new();
    let mut tagged = Vec::new();
    for n in 0..57 {
        let key = r.engine.create_key(Default::default()).unwrap().key_id;
        if n % 7 == 3 {
            r.engine
                .tag_resource(
                    &key,
                    vec![keyplane::Tag {
                        tag_key: "team".into(),
                        tag_value: "payments".into(),
                    }],
                )
                .unwrap();
            tagged.push(key.clone());
        }
        all.push(key);
    }
    all.sort();
    tagged.sort();
    let b = Browser::sign_in(&r, &r.root).await;
    // Unfiltered: pages of 10, following the markers to the end, every key once.
    let mut seen = Vec::new();
    let mut path = Some("/keys".to_owned());
    let mut pages = 0;
    while let Some(p) = path {
        let page = body(&b.get(&p).await);
        let (ids, next) = listed(&page);
        assert!(ids.len() <= 10, "{p}: {} keys", ids.len());
        seen.extend(ids);
        path = next;
        pages += 1;
        assert!(pages <= 6, "pagination does not end");
    }
    assert_eq!(pages, 6);
    assert_eq!(seen, all, "every key once, in key id order");
    // A tag search examines at most 25 keys a page, and following it finds exactly the tagged.
    let mut found = Vec::new();
    let mut path = Some("/keys?by=tag&q=payments".to_owned());
    let mut pages = 0;
    while let Some(p) = path {
        let page = body(&b.get(&p).await);
        let status = &page[page.find("id=\"list-status\">").expect("a status line")..];
        let examined: u32 = status
            .split("; ")
            .nth(1)
            .and_then(|t| t.split(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no count on {p}"));
        assert!(examined <= 25, "{p}: examined {examined}");
        let (ids, next) = listed(&page);
        found.extend(ids);
        path = next;
        pages += 1;
        assert!(pages <= 10);
    }
    assert!(
        pages >= 3,
        "57 keys at 25 a page take 3 pages, took {pages}"
    );
    found.sort();
    assert_eq!(found, tagged);
    // State and id filters.
    r.engine.disable_key(&all[5]).unwrap();
    let page = body(&b.get("/keys?state=Disabled").await);
    let (ids, _) = listed(&page);
    assert_eq!(ids, vec![all[5].clone()]);
    // The key sorted 41st is past the first page's budget of 25: found by continuing.
    let prefix = &all[40][..8];
    let mut path = Some(format!("/keys?by=id&q={prefix}"));
    let mut found = Vec::new();
    let mut pages = 0;
    while let Some(p) = path {
        let (ids, next) = listed(&body(&b.get(&p).await));
        found.extend(ids);
        path = next;
        pages += 1;
    }
    assert!(found.contains(&all[40]), "{found:?}");
    assert!(found.iter().all(|id| id.starts_with(prefix)));
    assert_eq!(pages, 3, "25 + 25 + 7 keys examined");
}

#[tokio::test]
async fn every_action_makes_its_service_call_and_shows_its_result() {
    let r = start(quick()).await;
    let b = Browser::sign_in(&r, &r.root).await;
    let key = r.engine.create_key(Default::default()).unwrap().key_id;
    let e = &r.engine;
    let act = |action: &'static str, fields: Vec<(&'static str, String)>| {
        let key = key.clone();
        let b = &b;
        async move {
            let mut form: Vec<(&str, &str)> = vec![("id", &key), ("action", action)];
            for (n, v) in &fields {
                form.push((n, v));
            }
            let a = b.post("/key/action", &[], &form).await;
            assert_eq!(a.status(), StatusCode::SEE_OTHER, "{action}: {}", body(&a));
            let location = a.headers()[header::LOCATION].to_str().unwrap().to_owned();
            assert!(location.ends_with(&format!("done={action}")), "{location}");
            // The key page says what was done.
            let page = body(&b.get(&location).await);
            assert!(page.contains("class=\"done\""), "{action}");
        }
    };
    let yes = || ("confirm", "yes".to_owned());
    act("description", vec![("description", "payments".into())]).await;
    assert_eq!(e.describe_key(&key).unwrap().description, "payments");
    act(
        "tag-add",
        vec![("tag_key", "team".into()), ("tag_value", "a".into())],
    )
    .await;
    assert_eq!(
        e.list_resource_tags(&key, None, None).unwrap().items.len(),
        1
    );
    act("tag-remove", vec![("tag_key", "team".into()), yes()]).await;
    assert!(e
        .list_resource_tags(&key, None, None)
        .unwrap()
        .items
        .is_empty());
    act("alias-create", vec![("alias", "billing".into())]).await;
    let aliases = e.list_aliases(Some(&key), None, None).unwrap().items;
    assert_eq!(aliases[0].alias_name, "alias/billing");
    act(
        "alias-delete",
        vec![("alias", "alias/billing".into()), yes()],
    )
    .await;
    assert!(e
        .list_aliases(Some(&key), None, None)
        .unwrap()
        .items
        .is_empty());
    act("enable-rotation", vec![("period", "180".into())]).await;
    let status = e.get_key_rotation_status(&key).unwrap();
    assert!(status.key_rotation_enabled);
    assert_eq!(status.rotation_period_in_days, Some(180));
    act("disable-rotation", vec![yes()]).await;
    assert!(
        !e.get_key_rotation_status(&key)
            .unwrap()
            .key_rotation_enabled
    );
    act("rotate", vec![]).await;
    assert_eq!(
        e.list_key_rotations(&key, None, None).unwrap().items.len(),
        1
    );
    act("disable", vec![yes()]).await;
    act("enable", vec![]).await;
    assert_eq!(state(e, &key), "Enabled");
    act("schedule-deletion", vec![("days", "7".into()), yes()]).await;
    let d = e.describe_key(&key).unwrap();
    assert_eq!(d.key_state.as_str(), "PendingDeletion");
    assert_eq!(d.pending_deletion_window_in_days, Some(7));
    act("cancel-deletion", vec![]).await;
    assert_eq!(state(e, &key), "Disabled");
    act("enable", vec![]).await;

    // Grants: create (the form), then retire and revoke (confirmed).
    for _ in 0..2 {
        let a = b
            .post(
                "/key/grants/new",
                &[],
                &[
                    ("id", &key),
                    ("grantee", "arn:aws:iam::111122223333:role/app"),
                    ("retiring", ROOT),
                    ("operations", "Encrypt"),
                    ("operations", "Decrypt"),
                ],
            )
            .await;
        assert_eq!(a.status(), StatusCode::OK, "{}", body(&a));
        assert!(body(&a).contains("Grant created"));
    }
    let grants = e.list_grants(&key, None, None, None, None).unwrap().items;
    assert_eq!(grants.len(), 2);
    assert_eq!(grants[0].operations.len(), 2);
    let page = body(&b.get(&format!("/key?id={key}")).await);
    assert!(page.contains(&grants[0].grant_id) && page.contains("role/app"));
    act(
        "grant-retire",
        vec![("grant_id", grants[0].grant_id.clone()), yes()],
    )
    .await;
    act(
        "grant-revoke",
        vec![("grant_id", grants[1].grant_id.clone()), yes()],
    )
    .await;
    assert!(e
        .list_grants(&key, None, None, None, None)
        .unwrap()
        .items
        .is_empty());

    // A grant without operations: the engine's refusal, shown on the form, nothing made.
    let a = b
        .post(
            "/key/grants/new",
            &[],
            &[
                ("id", &key),
                ("grantee", "arn:aws:iam::111122223333:role/app"),
            ],
        )
        .await;
    assert_eq!(a.status(), StatusCode::BAD_REQUEST);
    assert!(body(&a).contains("ValidationException"), "{}", body(&a));
    // An out-of-range rotation period and deletion window: the service's own validation.
    let a = b
        .post(
            "/key/action",
            &[],
            &[("id", &key), ("action", "enable-rotation"), ("period", "5")],
        )
        .await;
    assert_eq!(a.status(), StatusCode::BAD_REQUEST);
    assert!(body(&a).contains("ValidationException"));
    let a = b
        .post(
            "/key/action",
            &[],
            &[
                ("id", &key),
                ("action", "schedule-deletion"),
                ("days", "3"),
                ("confirm", "yes"),
            ],
        )
        .await;
    assert_eq!(a.status(), StatusCode::BAD_REQUEST);
    assert_eq!(state(e, &key), "Enabled");

    // Create keys of other specs and usages through the form.
    for (spec, usage) in [
        ("RSA_2048", "SIGN_VERIFY"),
        ("ECC_NIST_P256", "SIGN_VERIFY"),
        ("HMAC_256", "GENERATE_VERIFY_MAC"),
        ("ECC_NIST_P384", "KEY_AGREEMENT"),
    ] {
        let a = b
            .post(
                "/keys/new",
                &[],
                &[("spec", spec), ("usage", usage), ("origin", "AWS_KMS")],
            )
            .await;
        assert_eq!(a.status(), StatusCode::SEE_OTHER, "{spec}: {}", body(&a));
        let page = body(&b.get(a.headers()[header::LOCATION].to_str().unwrap()).await);
        assert!(page.contains(spec) && page.contains(usage), "{spec}");
    }
    // A spec with a usage it cannot have: the engine's message on the form.
    let a = b
        .post(
            "/keys/new",
            &[],
            &[("spec", "HMAC_256"), ("usage", "ENCRYPT_DECRYPT")],
        )
        .await;
    assert_eq!(a.status(), StatusCode::BAD_REQUEST);
    assert!(body(&a).contains("ValidationException"));
}

#[tokio::test]
async fn the_audit_view_names_a_break_in_the_chain() {
    let r = start(quick()).await;
    let b = Browser::sign_in(&r, &r.root).await;
    let key = r.engine.create_key(Default::default()).unwrap().key_id;
    let a = b
        .post(
            "/key/action",
            &[],
            &[("id", &key), ("action", "disable"), ("confirm", "yes")],
        )
        .await;
    assert_eq!(a.status(), StatusCode::SEE_OTHER);
    let verify = body(&b.get("/audit/verify").await);
    assert!(!verify.contains("TAMPERED"), "{verify}");
    assert!(!verify.contains("id=\"audit-problems\""));
    // Someone with write access to the log rewrites who disabled the key.
    let segments = r._dir.path().join("audit").join("segments");
    let log = std::fs::read_dir(&segments)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|x| x == "log"))
        .expect("a segment");
    let text = std::fs::read_to_string(&log).unwrap();
    let forged = text.replacen(
        "\"eventName\":\"DisableKey\"",
        "\"eventName\":\"EnableKey\"",
        1,
    );
    assert_ne!(forged, text);
    std::fs::write(&log, forged).unwrap();
    let verify = body(&b.get("/audit/verify").await);
    assert!(verify.contains("<strong>TAMPERED</strong>"), "{verify}");
    let problems = &verify[verify
        .find("id=\"audit-problems\"")
        .expect("the break is named")..];
    let name = log.file_name().unwrap().to_str().unwrap();
    assert!(problems.contains(name), "{problems}");
    assert!(problems.contains("at line"), "{problems}");
    attack("audit_record_rewritten", 1);
}
