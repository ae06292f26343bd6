//! PKCS#11 return values as the service's connection error codes and exceptions.

use cryptoki::error::{Error as CkError, RvError};
use keyplane::custom_key_store::{ConnectFailure, ConnectionErrorCode};
use keyplane::Error;

/// The connection error code of a failed C_Initialize, C_OpenSession or C_Login.
pub(crate) fn connect_failure(e: CkError) -> ConnectFailure {
    let code = match &e {
        CkError::Pkcs11(rv, _) => match rv {
            RvError::PinIncorrect | RvError::PinInvalid | RvError::PinLenRange => {
                ConnectionErrorCode::InvalidCredentials
            }
            RvError::PinLocked => ConnectionErrorCode::UserLockedOut,
            RvError::UserPinNotInitialized | RvError::UserTypeInvalid => {
                ConnectionErrorCode::UserNotFound
            }
            RvError::UserAnotherAlreadyLoggedIn => ConnectionErrorCode::UserLoggedIn,
            RvError::TokenNotPresent
            | RvError::TokenNotRecognized
            | RvError::SlotIdInvalid
            | RvError::DeviceRemoved
            | RvError::DeviceError => ConnectionErrorCode::NetworkErrors,
            _ => ConnectionErrorCode::InternalError,
        },
        CkError::LibraryLoading(_) => ConnectionErrorCode::ClusterNotFound,
        _ => ConnectionErrorCode::InternalError,
    };
    ConnectFailure::new(code, format!("PKCS#11: {e}"))
}

/// A failed call on a connected token, as an engine error: a token that went away makes the key
/// unavailable; anything else is the HSM's configuration failing us.
pub(crate) fn call_failure(what: &str, e: CkError) -> Error {
    match &e {
        CkError::Pkcs11(
            RvError::TokenNotPresent
            | RvError::DeviceRemoved
            | RvError::DeviceError
            | RvError::SessionHandleInvalid
            | RvError::SessionClosed
            | RvError::UserNotLoggedIn
            | RvError::CryptokiNotInitialized
            | RvError::KeyHandleInvalid
            | RvError::ObjectHandleInvalid,
            _,
        ) => Error::KeyUnavailable(format!("the HSM could not {what}: {e}")),
        _ => Error::CloudHsmClusterInvalidConfiguration(format!("the HSM could not {what}: {e}")),
    }
}

/// A process-wide table of this crate (the modules, the logins) that a thread of the parent held
/// when this process was made by `fork`: that thread does not exist here and the table may be
/// half changed, so this process cannot connect a PKCS#11 key store.
pub(crate) fn held_at_fork(table: &str, e: keyplane::fork::HeldAtFork) -> ConnectFailure {
    ConnectFailure::new(
        ConnectionErrorCode::InternalError,
        format!(
            "the PKCS#11 {table} may be half changed in this process, so it cannot be used here \
             ({e}); connect from a process started afresh, or forked while no PKCS#11 key store \
             was connecting"
        ),
    )
}
