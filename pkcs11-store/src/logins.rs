//! Which PIN this process logged each token in with.
//!
//! A PKCS#11 token's login state belongs to the application (the process), not to a session: once
//! one connection has logged the crypto user in, every later `C_Login` on that token answers
//! `CKR_USER_ALREADY_LOGGED_IN`, whatever PIN it is given. Taken as success, that would let a key
//! store with a wrong password connect while another store of this process is connected to the
//! same token. So each successful login records a MAC of its PIN (HMAC-SHA256 under a key drawn
//! once per process, never the PIN itself), and a connection that finds the user already logged
//! in must present a PIN with the same MAC, compared in constant time. A token logged in by
//! something else in the process (no record) cannot be checked, and is refused.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use aws_lc_rs::hmac;
use keyplane::custom_key_store::{ConnectFailure, ConnectionErrorCode};
use keyplane::fork::ProcessLock;

/// A token as this process reaches it: the module and the slot it is in.
type TokenKey = (PathBuf, u64);

struct Logins {
    key: hmac::Key,
    pins: BTreeMap<TokenKey, hmac::Tag>,
}

/// This process's logins, made at the first use. A `ProcessLock`, as the module table is
/// (`module` in lib.rs): a copy made by `fork` inherits the records, which hold for the logins
/// its module kept, and is told at once if a thread of its parent held them at the fork.
fn with_logins<T>(
    f: impl FnOnce(&mut Logins) -> Result<T, ConnectFailure>,
) -> Result<T, ConnectFailure> {
    static LOGINS: ProcessLock<Option<Logins>> = ProcessLock::new(None);
    let mut logins = LOGINS
        .lock()
        .map_err(|e| crate::errors::held_at_fork("login records", e))?;
    let logins = match &mut *logins {
        Some(logins) => logins,
        empty @ None => {
            let rng = aws_lc_rs::rand::SystemRandom::new();
            let key = hmac::Key::generate(hmac::HMAC_SHA256, &rng).map_err(|_| {
                ConnectFailure::new(
                    ConnectionErrorCode::InternalError,
                    "no random key for checking token logins could be drawn",
                )
            })?;
            empty.insert(Logins {
                key,
                pins: BTreeMap::new(),
            })
        }
    };
    f(logins)
}

/// Records that this process logged the token in `slot` of `module` in with `pin`.
pub(crate) fn record(module: &Path, slot: u64, pin: &str) -> Result<(), ConnectFailure> {
    with_logins(|logins| {
        let tag = hmac::sign(&logins.key, pin.as_bytes());
        logins.pins.insert((module.to_path_buf(), slot), tag);
        Ok(())
    })
}

/// For a token already logged in: whether `pin` is the PIN this process logged it in with.
pub(crate) fn check(module: &Path, slot: u64, pin: &str) -> Result<(), ConnectFailure> {
    with_logins(
        |logins| match logins.pins.get(&(module.to_path_buf(), slot)) {
            Some(tag) => hmac::verify(&logins.key, pin.as_bytes(), tag.as_ref()).map_err(|_| {
                ConnectFailure::new(
                    ConnectionErrorCode::InvalidCredentials,
                    "the key store password is not the crypto user's PIN of this token",
                )
            }),
            None => Err(ConnectFailure::new(
                ConnectionErrorCode::InvalidCredentials,
                "the token's user is already logged in by something else in this process, so the \
                 key store password cannot be checked",
            )),
        },
    )
}
