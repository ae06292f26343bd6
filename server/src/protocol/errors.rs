//! Error answers: `{"__type": "<Code>", "message": "..."}` with the HTTP status the service gives
//! each code. The message is the engine's (the service's wording) or the protocol layer's own; it
//! never carries a request's values, so no plaintext or key material is echoed.

/// The HTTP status for an error code: one table, the service's statuses. Everything not listed
/// is a client fault, 400 (the service answers 400 for ThrottlingException and
/// AccessDeniedException too).
pub fn status(code: &str) -> u16 {
    match code {
        "KMSInternalException" | "KeyUnavailableException" => 500,
        "DependencyTimeoutException" => 503,
        "DryRunOperationException" => 412,
        _ => 400,
    }
}

/// The error body.
pub fn body(code: &str, message: &str) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({ "__type": code, "message": message }))
        .unwrap_or_else(|_| br#"{"__type":"KMSInternalException"}"#.to_vec())
}
