//! A request with a live session: service calls as its principal, and its pages.

use std::time::Instant;

use http::{header, StatusCode};
use serde_json::Value as Json;

use super::answer::{html, Answer};
use super::config::USER_AGENT;
use super::session::Session;
use super::state::{Console, Req};
use super::template::{self, render, Html};
use crate::context::RequestContext;
use crate::protocol::TARGET_PREFIX;

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
