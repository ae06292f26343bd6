//! Fuzz target `request_parse`: the endpoint's JSON 1.1 request decoding and every operation's
//! handler (`keyplane-server`'s `protocol`).
//!
//! Input: a selector byte, then the target and the body. Selector below 200: the target is
//! `TrentService.<operation>` for operation `selector % (served + not served)`, so the fuzzer
//! spends its time in the bodies; otherwise the target is a short string from the input, raw
//! (missing when empty). The rest of the input is the body. A target either names an operation or
//! is refused with UnknownOperationException / UnsupportedOperationException; a body is parsed
//! against the model or refused with a SerializationException or the engine's ValidationException;
//! a parsed request runs its handler on an in-memory engine with one symmetric key
//! (`alias/fuzz`). Nothing panics, every answer is a JSON object, and every error answer has a
//! `__type` equal to its code, a `message`, and a 4xx or 5xx status.
//!
//! Replayed on stable by the server's own `server/tests/fuzz_replay.rs` (it needs
//! `keyplane-server`, which the engine's replay test cannot depend on).

use std::sync::OnceLock;

use keyplane::{CreateKeyRequest, Engine};
use keyplane_server::protocol::dispatch::{NOT_SERVED, OPERATIONS};
use keyplane_server::protocol::json::Input as Request;
use keyplane_server::protocol::{resolve, Fault};

use crate::common::Input;

fn engine() -> &'static Engine {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    ENGINE.get_or_init(|| {
        let engine = Engine::builder().max_keys(64).build().expect("engine");
        let key = engine.create_key(CreateKeyRequest::default()).expect("key");
        engine
            .create_alias("alias/fuzz", &key.key_id)
            .expect("alias");
        engine
    })
}

fn check_error(fault: &Fault) {
    let reply = fault.reply(None);
    assert!(
        (400..600).contains(&reply.status),
        "status {}",
        reply.status
    );
    let body: serde_json::Value = serde_json::from_slice(&reply.body).expect("error body is JSON");
    assert_eq!(body["__type"], fault.code());
    assert!(body["message"].is_string(), "an error has a message");
}

pub fn run(data: &[u8]) {
    let mut input = Input::new(data);
    let selector = input.byte();
    let named;
    let target = if selector < 200 {
        let all = OPERATIONS.len() + NOT_SERVED.len();
        let i = usize::from(selector) % all;
        let name = match OPERATIONS.get(i) {
            Some(op) => op.name,
            None => NOT_SERVED[i - OPERATIONS.len()].0,
        };
        named = format!("TrentService.{name}");
        Some(named.as_str())
    } else {
        let raw = input.short_bytes();
        named = String::from_utf8_lossy(raw).into_owned();
        (!raw.is_empty()).then_some(named.as_str())
    };
    let body = input.rest();
    let operation = match resolve(target) {
        Ok(operation) => operation,
        Err((fault, _)) => return check_error(&fault),
    };
    let request = match Request::parse(operation.name, body) {
        Ok(request) => request,
        Err(fault) => return check_error(&fault),
    };
    match (operation.handler)(engine(), &request) {
        Ok(out) => {
            let body: serde_json::Value =
                serde_json::from_slice(&out.finish()).expect("an answer is JSON");
            assert!(body.is_object(), "an answer is a JSON object");
        }
        Err(fault) => check_error(&fault),
    }
}
