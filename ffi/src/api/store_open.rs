//! A configuration's store settings and how `kp_engine_new` opens an engine on them: the root
//! key's source (a key file, an environment variable, a passphrase or the service's callback),
//! open-only, the audit log, the stores of other Regions. The exports that fill them in are in
//! [`super::store`]; the engine handle that results is in [`super::handles`].

use std::ffi::{c_int, c_void};
use std::path::PathBuf;
use std::sync::Arc;

use keyplane_sqlite::root_key::{CallbackProvider, RootKey, RootKeyProvider};
use keyplane_store_address::{
    open, AuditOptions, OpenError, OpenOptions, RootKeySource, StoreAddress, StoreEngine,
};
use kp::EngineBuilder;
use kp::LockedBytes;
use zeroize::Zeroizing;

use super::failure::{Failure, Outcome};
use super::status::status_of_open;

/// Where a configuration's root key comes from (`None` in [`StoreSettings`]: as the CLI, from
/// the environment or the data directory's key file).
pub(crate) enum RootKeySetting {
    KeyFile(PathBuf),
    EnvVar(String),
    Passphrase(Zeroizing<Vec<u8>>),
    Callback(Arc<CCallback>),
}

impl RootKeySetting {
    /// The source for one open (a passphrase is copied into a buffer zeroed when dropped; a
    /// callback's key goes to memory locked under `policy`).
    fn source(&self, policy: kp::LockPolicy) -> RootKeySource {
        match self {
            RootKeySetting::KeyFile(p) => RootKeySource::KeyFile(p.clone()),
            RootKeySetting::EnvVar(v) => RootKeySource::EnvVar(v.clone()),
            RootKeySetting::Passphrase(p) => RootKeySource::Passphrase(Zeroizing::new(p.to_vec())),
            RootKeySetting::Callback(c) => {
                let c = Arc::clone(c);
                let provider: Arc<dyn RootKeyProvider> = Arc::new(CallbackProvider::new(
                    "the root key callback (kp_root_key_callback)",
                    move || c.root_key(policy),
                ));
                RootKeySource::Provider(provider)
            }
        }
    }
}

/// A configuration's store settings.
#[derive(Default)]
pub(crate) struct StoreSettings {
    /// `None` or `memory:`: the in-memory store.
    pub(crate) address: Option<StoreAddress>,
    pub(crate) root_key: Option<RootKeySetting>,
    pub(crate) open_only: bool,
    /// `None`: the CLI's defaults (on, the data directory's log, synced).
    pub(crate) audit: Option<AuditOptions>,
    /// The stores of other Regions (`kp_config_add_region_store`), one per Region.
    pub(crate) region_stores: Vec<keyplane_store_address::RegionStoreAddress>,
}

/// `builder` given the stores of the other Regions that `settings` names, each opened (it must
/// exist) with its own root key file.
pub(crate) fn with_region_stores(
    settings: &StoreSettings,
    builder: EngineBuilder,
    lock_policy: kp::LockPolicy,
) -> Outcome<EngineBuilder> {
    let options = keyplane_sqlite::StoreOptions {
        lock_policy,
        ..Default::default()
    };
    keyplane_store_address::with_region_stores(builder, &settings.region_stores, &options)
        .map_err(open_failure)
}

pub(crate) fn open_failure(error: OpenError) -> Failure {
    Failure::new(status_of_open(&error), error.message())
}

/// Starts an engine with `builder`'s settings on the store `config` names: created if missing
/// (unless open only), audited as configured. `explicit_audit`: `kp_config_set_audit` was given
/// (its log and key replace the store's own audit log).
pub(crate) fn engine_on_store(
    settings: &StoreSettings,
    address: &StoreAddress,
    builder: EngineBuilder,
    lock_policy: kp::LockPolicy,
    scheduler_interval: Option<std::time::Duration>,
    explicit_audit: bool,
) -> Outcome<StoreEngine> {
    let audit = if explicit_audit {
        AuditOptions::off()
    } else {
        settings.audit.clone().unwrap_or_default()
    };
    let options = OpenOptions {
        root_key: settings.root_key.as_ref().map(|r| r.source(lock_policy)),
        open_only: settings.open_only,
        store: keyplane_sqlite::StoreOptions {
            lock_policy,
            ..Default::default()
        },
        audit,
        // `kp_config_set_scheduler_interval_ms`, else the store's default (1 s).
        scheduler_interval,
        ..OpenOptions::default()
    };
    let opened = open(address, options).map_err(open_failure)?;
    opened.engine(builder).map_err(open_failure)
}

/// The C callback and its user data, shared with the store for as long as it is open.
pub(crate) struct CCallback {
    callback: unsafe extern "C" fn(*mut c_void, *mut u8, usize) -> c_int,
    user_data: *mut c_void,
}

// SAFETY: made only by `CCallback::new`, whose caller promises that the callback may be called
// from any thread with `user_data`; the pointer is only passed back to it.
unsafe impl Send for CCallback {}
// SAFETY: as above; the callback is never called concurrently by the library for one open, and
// the documentation requires it to be thread-safe across engines.
unsafe impl Sync for CCallback {}

impl CCallback {
    /// # Safety
    /// `callback` and `user_data` are as `kp_config_set_root_key_callback`'s caller promises:
    /// the callback follows `kp_root_key_callback`'s contract (callable from any thread that
    /// starts an engine, writing at most `key_len` bytes), and `user_data` stays valid while
    /// engines use the configuration's store.
    pub(crate) unsafe fn new(
        callback: unsafe extern "C" fn(*mut c_void, *mut u8, usize) -> c_int,
        user_data: *mut c_void,
    ) -> Self {
        CCallback {
            callback,
            user_data,
        }
    }

    fn root_key(&self, policy: kp::LockPolicy) -> kp::Result<RootKey> {
        let mut key = LockedBytes::zeroed(RootKey::LEN, policy)?;
        // SAFETY: `key` is RootKey::LEN writable bytes for the duration of the call; the caller
        // of `CCallback::new` promised a callback that writes at most `key_len` bytes and a
        // `user_data` valid while engines use the configuration's store.
        let rc = unsafe {
            (self.callback)(
                self.user_data,
                key.expose_mut(kp::SecretAccess::granted()).as_mut_ptr(),
                RootKey::LEN,
            )
        };
        if rc != 0 {
            return Err(kp::Error::AccessDenied(format!(
                "the root key callback (kp_root_key_callback) returned {rc}: is not set or \
                 unavailable"
            )));
        }
        RootKey::from_locked(key)
    }
}
