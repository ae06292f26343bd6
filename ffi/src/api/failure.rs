//! Why a call failed: a status and a message, the error type of every conversion and check (a
//! leaf: the modules that check arguments, [`super::ffi`] and [`super::overlap`] among them,
//! all return it).

use super::status::{kp_status, status_of};

/// Why a call failed: a status and a message for `kp_last_error_message`.
#[derive(Debug)]
pub(crate) struct Failure {
    pub(crate) status: kp_status,
    pub(crate) message: String,
}

impl Failure {
    pub(crate) fn new(status: kp_status, message: impl Into<String>) -> Self {
        Failure {
            status,
            message: message.into(),
        }
    }
    pub(crate) fn null(what: &str) -> Self {
        Self::new(kp_status::NullParameter, format!("{what} is NULL"))
    }
}

impl From<kp::Error> for Failure {
    fn from(error: kp::Error) -> Self {
        Failure::from(&error)
    }
}

impl From<&kp::Error> for Failure {
    fn from(error: &kp::Error) -> Self {
        Failure {
            status: status_of(error),
            message: error.to_string(),
        }
    }
}

pub(crate) type Outcome<T> = Result<T, Failure>;
