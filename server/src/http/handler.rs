//! Answering one request: routes, the bounded body, SigV4, then the protocol layer.
//!
//! Every answer carries `x-amzn-RequestId` (a fresh UUID v4, the audit record's `requestID`) and,
//! with a JSON body, `Content-Type: application/x-amz-json-1.1`.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::{Instant, SystemTime};

use bytes::Bytes;
use http::{header, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;

use super::limits::Limits;
use crate::auth::{Authenticator, SignedRequest};
use crate::context::RequestContext;
use crate::metrics::{Closed, Metrics};
use crate::protocol::{Service, CONTENT_TYPE};

/// The header every answer carries.
pub const REQUEST_ID: &str = "x-amzn-RequestId";

/// What every connection's requests are answered with.
#[derive(Debug)]
pub(crate) struct App {
    pub(crate) service: Service,
    pub(crate) authenticator: Arc<Authenticator>,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) limits: Limits,
    callers: Callers,
    /// The web console, when the server serves one.
    pub(crate) console: std::sync::OnceLock<crate::console::Console>,
}

impl App {
    pub(crate) fn new(
        service: Service,
        authenticator: Authenticator,
        metrics: Arc<Metrics>,
        limits: Limits,
    ) -> App {
        App {
            service,
            authenticator: Arc::new(authenticator),
            metrics,
            limits,
            callers: Callers::default(),
            console: std::sync::OnceLock::new(),
        }
    }
}

/// Principals kept as [`keyplane::Caller`]s, so that each principal's requests reuse one: the
/// engine caches authorization decisions by the caller's process-unique id, and a new `Caller`
/// per request would never hit that cache. Bounded: emptied when it holds [`Callers::MAX`].
#[derive(Debug, Default)]
struct Callers {
    by_principal: RwLock<HashMap<String, keyplane::Caller>>,
}

impl Callers {
    /// Most principals kept at once.
    const MAX: usize = 1024;

    /// The caller for `principal`, made once and then reused.
    fn get(&self, principal: &str) -> keyplane::Result<keyplane::Caller> {
        let known = self
            .by_principal
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(principal)
            .cloned();
        if let Some(caller) = known {
            return Ok(caller);
        }
        let caller = keyplane::Caller::new(principal)?;
        let mut map = self.by_principal.write().unwrap_or_else(|e| e.into_inner());
        if map.len() >= Self::MAX {
            map.clear();
        }
        Ok(map.entry(principal.to_owned()).or_insert(caller).clone())
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.by_principal
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .len()
    }
}

/// What the connection knows of its client.
#[derive(Debug)]
pub(crate) struct ConnInfo {
    pub(crate) peer: SocketAddr,
    pub(crate) tls_version: Option<String>,
    pub(crate) cipher_suite: Option<String>,
}

type Answer = Response<Full<Bytes>>;

/// The API listener: `POST /` (the service), `GET /health`.
pub(crate) async fn api(app: &App, conn: &ConnInfo, request: Request<Incoming>) -> Answer {
    let started = Instant::now();
    let request_id = uuid::Uuid::new_v4().to_string();
    let (answer, operation, code) = api_inner(app, conn, request, &request_id).await;
    if code != Some("health") {
        app.metrics.request(operation, code, started.elapsed());
    }
    with_request_id(answer, &request_id)
}

async fn api_inner(
    app: &App,
    conn: &ConnInfo,
    request: Request<Incoming>,
    request_id: &str,
) -> (Answer, Option<&'static str>, Option<&'static str>) {
    let (mut parts, body) = request.into_parts();
    if !parts.headers.contains_key(header::HOST) {
        // HTTP/2 carries the host as `:authority`; clients sign it as `host`.
        if let Some(authority) = parts.uri.authority() {
            if let Ok(value) = HeaderValue::from_str(authority.as_str()) {
                parts.headers.insert(header::HOST, value);
            }
        }
    }
    match (parts.method.clone(), parts.uri.path()) {
        (Method::GET | Method::HEAD, "/health") => return (health(), None, Some("health")),
        (Method::POST, "/") => {}
        (_, "/") => {
            let mut answer = error(
                StatusCode::METHOD_NOT_ALLOWED,
                "UnknownOperationException",
                "the service answers POST / (AWS JSON 1.1) and GET /health",
            );
            answer
                .headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static("POST"));
            return (answer, None, Some("UnknownOperationException"));
        }
        _ => {
            let answer = error(
                StatusCode::NOT_FOUND,
                "UnknownOperationException",
                "no such resource: the service answers POST / (AWS JSON 1.1) and GET /health",
            );
            return (answer, None, Some("UnknownOperationException"));
        }
    }

    let body = match read_body(app, &parts.headers, body).await {
        Ok(body) => body,
        Err((answer, code)) => return (answer, None, Some(code)),
    };

    // A warm signature check (the credential in memory) is CPU only, a few microseconds: on the
    // worker. Only one that must read the credential store goes to the blocking pool.
    let cached = app
        .authenticator
        .verify_cached(&signed(&parts, &body), SystemTime::now());
    let (identity, parts, body) = match cached {
        Some(identity) => (identity, parts, body),
        None => {
            let authenticator = Arc::clone(&app.authenticator);
            let verified = tokio::task::spawn_blocking(move || {
                let identity = authenticator.verify(&signed(&parts, &body), SystemTime::now());
                (identity, parts, body)
            })
            .await;
            let Ok(verified) = verified else {
                return internal_error();
            };
            verified
        }
    };
    let identity = match identity {
        Ok(identity) => identity,
        Err(refused) => {
            let status = StatusCode::from_u16(refused.status).unwrap_or(StatusCode::FORBIDDEN);
            return (
                error(status, refused.code, &refused.message),
                None,
                Some(refused.code),
            );
        }
    };
    // The client's address answers `aws:SourceIp` in key policies. (Decisions the engine caches
    // are those of policies without conditions, so the reused caller's id stays valid.)
    let caller = match app.callers.get(&identity.principal) {
        Ok(caller) => caller.with_source_ip(conn.peer.ip().to_canonical()),
        Err(_) => {
            let answer = error(
                StatusCode::FORBIDDEN,
                "AccessDeniedException",
                "the credential's principal is not a valid principal ARN",
            );
            return (answer, None, Some("AccessDeniedException"));
        }
    };
    let text = |name: header::HeaderName| {
        parts
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let host = text(header::HOST).or_else(|| parts.uri.authority().map(|a| a.to_string()));
    let origin = keyplane::RequestOrigin {
        request_id: Some(request_id.to_owned()),
        source_ip: Some(conn.peer.ip().to_canonical().to_string()),
        user_agent: text(header::USER_AGENT),
        access_key_id: Some(identity.access_key_id.clone()),
        tls_version: conn.tls_version.clone(),
        cipher_suite: conn.cipher_suite.clone(),
        host,
    };
    let ctx = RequestContext {
        request_id: request_id.to_owned(),
        caller,
        origin,
    };
    let target = parts
        .headers
        .get("x-amz-target")
        .map(|v| v.to_str().unwrap_or(""));
    let reply = app.service.handle(&ctx, target, &body).await;
    let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (json(status, reply.body), reply.operation, reply.error_code)
}

/// The body, whole: refused with 413 unread when its declared length is over the limit, 413 as
/// soon as it grows past the limit, 408 when it comes slower than the body timeout.
async fn read_body(
    app: &App,
    headers: &http::HeaderMap,
    body: Incoming,
) -> Result<Bytes, (Answer, &'static str)> {
    let max = app.limits.max_body_bytes;
    let too_large = || {
        let mut answer = error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "RequestEntityTooLargeException",
            &format!("the request body is larger than this server's limit of {max} bytes"),
        );
        // The rest of the body is not read: this connection cannot carry another request.
        answer
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
        (answer, "RequestEntityTooLargeException")
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > max as u64) {
        return Err(too_large());
    }
    let collected =
        tokio::time::timeout(app.limits.body_timeout, Limited::new(body, max).collect()).await;
    match collected {
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
        Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => Err(too_large()),
        Ok(Err(_)) => Err((
            error(
                StatusCode::BAD_REQUEST,
                "SerializationException",
                "the request body could not be read",
            ),
            "SerializationException",
        )),
        Err(_) => {
            app.metrics.closed(Closed::BodyTimeout);
            let mut answer = error(
                StatusCode::REQUEST_TIMEOUT,
                "RequestTimeoutException",
                "the request body did not arrive in time",
            );
            answer
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
            Err((answer, "RequestTimeoutException"))
        }
    }
}

/// The admin listener: `GET /metrics`, `GET /health`.
pub(crate) async fn admin(app: &App, request: Request<Incoming>) -> Answer {
    let request_id = uuid::Uuid::new_v4().to_string();
    let answer = match (request.method(), request.uri().path()) {
        (&Method::GET, "/metrics") => {
            let mut answer = Response::new(Full::new(Bytes::from(app.metrics.render())));
            answer.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
            );
            answer
        }
        (&Method::GET | &Method::HEAD, "/health") => health(),
        _ => error(
            StatusCode::NOT_FOUND,
            "NotFound",
            "the admin listener answers GET /metrics and GET /health",
        ),
    };
    with_request_id(answer, &request_id)
}

fn health() -> Answer {
    json(StatusCode::OK, br#"{"status":"ok"}"#.to_vec())
}

fn internal_error() -> (Answer, Option<&'static str>, Option<&'static str>) {
    let answer = error(
        StatusCode::INTERNAL_SERVER_ERROR,
        "KMSInternalException",
        "the request could not be processed",
    );
    (answer, None, Some("KMSInternalException"))
}

/// `{"__type": code, "message": message}` with `status`.
fn error(status: StatusCode, code: &str, message: &str) -> Answer {
    let body = serde_json::json!({ "__type": code, "message": message });
    json(status, body.to_string().into_bytes())
}

fn json(status: StatusCode, body: Vec<u8>) -> Answer {
    let mut answer = Response::new(Full::new(Bytes::from(body)));
    *answer.status_mut() = status;
    answer
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
    answer
}

fn with_request_id(mut answer: Answer, request_id: &str) -> Answer {
    if let Ok(value) = HeaderValue::from_str(request_id) {
        answer.headers_mut().insert(REQUEST_ID, value);
    }
    answer
}

/// What SigV4 signed of a request: its method, path, query, headers and body.
fn signed<'a>(parts: &'a http::request::Parts, body: &'a [u8]) -> SignedRequest<'a> {
    SignedRequest {
        method: parts.method.as_str(),
        path: parts.uri.path(),
        query: parts.uri.query().unwrap_or(""),
        headers: &parts.headers,
        body,
    }
}

#[cfg(test)]
mod tests {
    use super::Callers;

    #[test]
    fn a_principals_requests_reuse_one_caller_and_the_cache_stays_bounded() {
        let callers = Callers::default();
        let alice = "arn:aws:iam::111122223333:user/alice";
        let bob = "arn:aws:iam::111122223333:user/bob";
        // `Caller` equality includes its process-unique id, which the engine's decision cache
        // keys on: equal only when it is the same caller reused.
        assert_eq!(callers.get(alice).unwrap(), callers.get(alice).unwrap());
        assert_ne!(callers.get(alice).unwrap(), callers.get(bob).unwrap());
        assert_ne!(
            callers.get(alice).unwrap(),
            keyplane::Caller::new(alice).unwrap()
        );
        assert_eq!(
            callers.get("not an arn").unwrap_err().code(),
            "ValidationException"
        );
        assert_eq!(callers.len(), 2);
        for n in 0..(Callers::MAX * 2) {
            callers
                .get(&format!("arn:aws:iam::111122223333:user/u{n}"))
                .unwrap();
            assert!(callers.len() <= Callers::MAX);
        }
    }
}
