//! A request's answer ([`Reply`]), and why a request failed ([`Fault`]), which answers as the
//! service's error JSON.

use super::errors;

/// One answer: HTTP status and JSON body, with what metrics need.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub body: Vec<u8>,
    /// The operation, when the target named a known one.
    pub operation: Option<&'static str>,
    /// The `__type` of an error answer.
    pub error_code: Option<&'static str>,
}

/// Why a request failed.
#[derive(Debug)]
pub enum Fault {
    /// The engine's error: its code and message are the service's.
    Engine(keyplane::Error),
    /// The body is not JSON of the right shape.
    Serialization(String),
    /// The target names no operation.
    UnknownOperation,
}

impl From<keyplane::Error> for Fault {
    fn from(e: keyplane::Error) -> Self {
        Fault::Engine(e)
    }
}

impl Fault {
    /// The service's error code (`__type`).
    pub fn code(&self) -> &'static str {
        match self {
            Fault::Engine(e) => e.code(),
            Fault::Serialization(_) => "SerializationException",
            Fault::UnknownOperation => "UnknownOperationException",
        }
    }

    fn message(&self) -> &str {
        match self {
            Fault::Engine(e) => e.message(),
            Fault::Serialization(m) => m,
            Fault::UnknownOperation => "",
        }
    }

    /// The error answer.
    pub fn reply(&self, operation: Option<&'static str>) -> Reply {
        let code = self.code();
        Reply {
            status: errors::status(code),
            body: errors::body(code, self.message()),
            operation,
            error_code: Some(code),
        }
    }
}
