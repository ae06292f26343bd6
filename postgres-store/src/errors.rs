//! PostgreSQL errors in the engine's terms: the database out of reach (a refused or dropped
//! connection, a timeout, the server shutting down or terminating the session) is
//! [`Error::StoreUnreachable`]; anything else the database answers is [`Error::Store`].

use keyplane::Error;
use postgres::error::SqlState;

/// Whether `e` means the database could not be reached or did not answer in time.
pub(crate) fn is_unreachable(e: &postgres::Error) -> bool {
    if e.is_closed() {
        return true;
    }
    match e.code() {
        None => true,
        Some(code) => {
            *code == SqlState::QUERY_CANCELED
                || *code == SqlState::ADMIN_SHUTDOWN
                || *code == SqlState::CRASH_SHUTDOWN
                || *code == SqlState::CANNOT_CONNECT_NOW
                || *code == SqlState::CONNECTION_FAILURE
                || *code == SqlState::CONNECTION_EXCEPTION
                || *code == SqlState::LOCK_NOT_AVAILABLE
                || code.code().starts_with("08")
        }
    }
}

/// `e`, met while trying to `what` on the database `db`.
pub(crate) fn pg(what: &str, db: &str, e: postgres::Error) -> Error {
    let detail = match e.as_db_error() {
        Some(d) => format!("{}: {}", d.code().code(), d.message()),
        None => {
            // The causes too: "error performing TLS handshake" alone does not say why.
            let mut text = e.to_string();
            let mut source = std::error::Error::source(&e);
            while let Some(cause) = source {
                let more = cause.to_string();
                if !text.contains(&more) {
                    text.push_str(": ");
                    text.push_str(&more);
                }
                source = cause.source();
            }
            text
        }
    };
    if is_unreachable(&e) {
        Error::StoreUnreachable(format!(
            "the key store {db} cannot be reached to {what} ({detail}); control-plane changes are \
             refused until it answers again"
        ))
    } else {
        Error::Store(format!("could not {what} in the key store {db}: {detail}"))
    }
}
