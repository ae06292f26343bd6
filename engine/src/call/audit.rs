//! The engine's audit log with what is derived from it (the last use of each key), and the
//! identity a caller has in its records.

use std::path::PathBuf;
use std::sync::Mutex;

use crate::access::Caller;
use crate::audit::{AuditLog, LastUses, UserIdentity};
use crate::clock::Timestamp;

/// The audit log with what is derived from it.
pub(crate) struct Audit {
    pub(crate) log: AuditLog,
    /// When uses began to be tracked: the engine's start, or the first record of the audit
    /// directory.
    pub(crate) started: Timestamp,
    /// The audit directory, when the log is a segment of one: GetKeyLastUsage reads the other
    /// processes' segments too.
    pub(crate) dir: Option<PathBuf>,
    pub(crate) last_usage: Mutex<LastUses>,
}

impl Audit {
    /// With an audit directory, every log in it is read now (the uses of earlier and other
    /// processes); later calls read only what was appended since.
    pub(crate) fn new(
        log: AuditLog,
        started: Timestamp,
        dir: Option<PathBuf>,
    ) -> std::result::Result<Audit, crate::audit::AuditError> {
        let mut uses = LastUses::new();
        let mut started = started;
        if let Some(dir) = &dir {
            uses.refresh(dir)?;
            uses.set_own(log.path());
            if let Some(first) = uses.earliest_ms() {
                started = Timestamp(first.min(started.0));
            }
        }
        Ok(Audit {
            log,
            started,
            dir,
            last_usage: Mutex::new(uses),
        })
    }
}

pub(crate) fn identity(caller: &Caller) -> UserIdentity {
    let principal = caller.principal();
    let resource = principal.rsplit(':').next().unwrap_or_default();
    let (identity_type, principal_id) = if resource == "root" {
        ("Root", caller.account().to_owned())
    } else if let Some(user) = resource.strip_prefix("user/") {
        ("IAMUser", user.to_owned())
    } else if let Some(session) = resource.strip_prefix("assumed-role/") {
        ("AssumedRole", session.to_owned())
    } else {
        ("IAMRole", resource.trim_start_matches("role/").to_owned())
    };
    UserIdentity {
        identity_type: identity_type.into(),
        principal_id,
        arn: principal.to_owned(),
        account_id: caller.account().to_owned(),
        access_key_id: None,
    }
}
