//! Opaque handles: engine configuration, the engine, a manual clock, encryption contexts and
//! secret buffers. Each handle carries a magic number of its type, checked on every use and
//! overwritten when the handle is freed, so that a freed handle, or a handle of another type, is
//! refused with `KP_STATUS_INVALID_HANDLE` where the memory still shows it (best effort: using a
//! freed handle remains undefined behaviour in C).

use std::ffi::c_char;
use std::sync::Arc;
use std::time::Duration;

use kp::LockedBytes;
use kp::{EncryptionContext, Engine, EngineConfig, LockPolicy, ManualClock, Timestamp};

use super::caller::from_caller;
use super::failure::{Failure, Outcome};
use super::ffi::{guard, guard_value, out_arg, str_arg, write_out};
use super::limits::KP_MAX_SECRET_BUFFER;
use super::status::kp_status;
use super::store_open::{engine_on_store, with_region_stores, StoreSettings};

/// The value a freed handle's magic number is overwritten with.
const FREED_MAGIC: u64 = 0xdead_f7ee_dead_f7ee;

/// What a handle points to: a magic number at offset 0 (so that a check reads the same 8 bytes
/// whatever the handle's type), then the Rust value. The C types (`kp_engine`, ...) are
/// zero-sized markers that C only ever sees behind pointers to a `Tagged`.
#[repr(C)]
pub(crate) struct Tagged<T> {
    magic: u64,
    pub(crate) value: T,
}

impl<T> Tagged<T> {
    pub(crate) fn new<H: Handle<Inner = T>>(value: T) -> Self {
        Tagged {
            magic: H::MAGIC,
            value,
        }
    }
}

/// A C-visible opaque type and the Rust value behind it.
pub(crate) trait Handle: Sized {
    /// The Rust value a handle of this type holds.
    type Inner;
    /// The magic number of live handles of this type.
    const MAGIC: u64;
    /// The C type name, for messages.
    const NAME: &'static str;
}

macro_rules! handle {
    ($ty:ident, $inner:ty, $magic:expr) => {
        impl $crate::api::handles::Handle for $ty {
            type Inner = $inner;
            const MAGIC: u64 = $magic;
            const NAME: &'static str = stringify!($ty);
        }
    };
}
pub(crate) use handle;

fn check<H: Handle>(ptr: *const H, what: &str) -> Outcome<()> {
    if ptr.is_null() {
        return Err(Failure::null(what));
    }
    if !ptr.cast::<Tagged<H::Inner>>().is_aligned() {
        return Err(Failure::new(
            kp_status::InvalidHandle,
            format!("{what} is not a {} (misaligned pointer)", H::NAME),
        ));
    }
    // SAFETY: the caller passed this as a handle from this library: every handle of every type
    // starts with an initialised, aligned u64 magic number (Tagged is repr(C)). For a freed
    // handle this read is the documented best-effort check.
    let magic = unsafe { ptr.cast::<u64>().read_volatile() };
    if magic != H::MAGIC {
        let why = if magic == FREED_MAGIC {
            "it has been freed"
        } else {
            "freed, of another type, or not from this library"
        };
        return Err(Failure::new(
            kp_status::InvalidHandle,
            format!("{what} is not a live {} ({why})", H::NAME),
        ));
    }
    Ok(())
}

/// The engine behind a `kp_engine` handle, for Rust code that puts the C ABI beside the engine API
/// on one engine (the benchmark `benches/capi.rs`); `None` for NULL or a handle of another type.
///
/// # Safety
/// `engine` is NULL or a live handle this library returned, not freed during
/// `'a`.
pub unsafe fn engine_of<'a>(engine: *const kp_engine) -> Option<&'a kp::Engine> {
    from_caller!(handle_ref(engine, "engine"))
        .ok()
        .map(|handle| &**handle)
}

/// A shared reference to the value behind a checked handle.
///
/// # Safety
/// `ptr` is NULL or a pointer this library returned for an `H` that no other thread frees or
/// mutates during `'a`.
pub(crate) unsafe fn handle_ref<'a, H: Handle>(ptr: *const H, what: &str) -> Outcome<&'a H::Inner> {
    check(ptr, what)?;
    // SAFETY: checked above (a live Tagged<H::Inner>); the caller promises it stays live and
    // unmutated during 'a.
    Ok(unsafe { &(*ptr.cast::<Tagged<H::Inner>>()).value })
}

/// A unique reference to the value behind a checked handle.
///
/// # Safety
/// As [`handle_ref`], and nothing else uses the handle during `'a`.
pub(crate) unsafe fn handle_mut<'a, H: Handle>(
    ptr: *mut H,
    what: &str,
) -> Outcome<&'a mut H::Inner> {
    check(ptr, what)?;
    // SAFETY: checked above; the caller promises exclusive use during 'a.
    Ok(unsafe { &mut (*ptr.cast::<Tagged<H::Inner>>()).value })
}

/// Moves a value to the heap behind a new handle.
pub(crate) fn into_raw<H: Handle>(value: H::Inner) -> *mut H {
    Box::into_raw(Box::new(Tagged::new::<H>(value))).cast()
}

/// Frees a handle made by [`into_raw`]: NULL is ignored; anything that is not a live `H` (or
/// that `may_free` refuses) is left alone and noted as the last error.
///
/// # Safety
/// `ptr` is NULL or came from [`into_raw`] for an `H`, and no other thread uses it meanwhile.
pub(crate) unsafe fn free_handle<H: Handle>(ptr: *mut H, may_free: impl FnOnce(&H::Inner) -> bool) {
    if ptr.is_null() {
        return;
    }
    let _ = guard(|| {
        if !may_free(from_caller!(handle_ref(ptr.cast_const(), H::NAME))?) {
            return Err(Failure::new(
                kp_status::InvalidHandle,
                format!("this {} is not the caller's to free", H::NAME),
            ));
        }
        let tagged = ptr.cast::<Tagged<H::Inner>>();
        // SAFETY: `ptr` came from Box::into_raw of a Tagged<H::Inner> (checked live above) and
        // nobody else uses it; the magic is overwritten first so that a later use of the freed
        // handle can be recognised.
        unsafe {
            std::ptr::addr_of_mut!((*tagged).magic).write_volatile(FREED_MAGIC);
            drop(Box::from_raw(tagged));
        }
        Ok(())
    });
}

// ---- kp_config ---------------------------------------------------------------------------------

/// Engine settings, filled in with `kp_config_set_*` and read by `kp_engine_new`. Not
/// thread-safe: use one from one thread at a time.
pub struct kp_config {
    _private: [u8; 0],
}
handle!(kp_config, ConfigInner, 0x6b70_636f_6e66_6967);

/// What a `kp_config` holds.
#[derive(Default)]
pub(crate) struct ConfigInner {
    pub(crate) config: EngineConfig,
    pub(crate) clock: Option<Arc<ManualClock>>,
    /// The audit log's settings and signing key (PKCS#8, zeroed when dropped), when set.
    pub(crate) audit: Option<(kp::audit::AuditConfig, LockedBytes)>,
    /// The durable store, its root key and its audit log (`kp_config_set_store`, ...).
    pub(crate) store: StoreSettings,
    /// The PKCS#11 tokens of HSM key stores (`kp_config_add_pkcs11_token`).
    pub(crate) pkcs11: keyplane_pkcs11::Pkcs11Config,
}

/// How the engine treats a failure to lock key memory (mlock).
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum kp_lock_policy {
    /// A failure to lock is an error (`KP_STATUS_MEMORY_LOCK`). The default.
    Require = 0,
    /// Use the memory unlocked and print one warning to stderr per region.
    Warn = 1,
}

/// The engine's lock policy for a `kp_lock_policy` value.
pub(crate) fn lock_policy_arg(policy: u32) -> Outcome<LockPolicy> {
    match policy {
        p if p == kp_lock_policy::Require as u32 => Ok(LockPolicy::Require),
        p if p == kp_lock_policy::Warn as u32 => Ok(LockPolicy::Warn),
        other => Err(Failure::new(
            kp_status::InvalidEnumValue,
            format!("{other} is not a kp_lock_policy"),
        )),
    }
}

/// Makes a configuration with the engine's defaults (region `us-east-1`, account
/// `111122223333`, one worker per core, lock policy Require, 4096-byte plaintexts, 100,000 keys,
/// system clock, in-memory key store, no background scheduler (every 1 s on a durable store), no
/// rate quotas, no audit log).
///
/// Ownership: on success `*out` is a new handle the caller frees with `kp_config_free`.
/// Thread safety: callable from any thread.
///
/// # Safety
/// `out` points to writable storage for a pointer.
#[no_mangle]
pub unsafe extern "C" fn kp_config_new(out: *mut *mut kp_config) -> kp_status {
    guard(|| {
        let out = out_arg(out, "out")?;
        let handle = into_raw::<kp_config>(ConfigInner::default());
        from_caller!(write_out(out, handle));
        Ok(())
    })
}

/// Frees a configuration. NULL is ignored. Engines made from it are unaffected.
///
/// Ownership: takes the handle; do not use it again. Thread safety: no other thread may use this
/// configuration meanwhile.
///
/// # Safety
/// `config` is NULL or a handle from `kp_config_new` not freed before.
#[no_mangle]
pub unsafe extern "C" fn kp_config_free(config: *mut kp_config) {
    from_caller!(free_handle(config, |_: &_| true))
}

/// Runs `set` on a checked configuration.
///
/// # Safety
/// `config` is NULL or a live `kp_config` nobody else uses meanwhile.
unsafe fn set(
    config: *mut kp_config,
    set: impl FnOnce(&mut ConfigInner) -> Outcome<()>,
) -> kp_status {
    guard(|| {
        let config = from_caller!(handle_mut(config, "config"))?;
        set(config)
    })
}

/// Configures a PKCS#11 token for HSM key stores (custom key stores of type AWS_CLOUDHSM):
/// `cloud_hsm_cluster_id` (the model's pattern, `cluster-` and 11 to 16 letters) names token
/// `token_label` of the PKCS#11 module at `module_path`; `kp_create_custom_key_store` names it.
///
/// Ownership: the strings are copied. Thread safety: no other thread may use `config` meanwhile.
///
/// # Safety
/// `config` is a live handle; the strings are NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn kp_config_add_pkcs11_token(
    config: *mut kp_config,
    cloud_hsm_cluster_id: *const c_char,
    module_path: *const c_char,
    token_label: *const c_char,
) -> kp_status {
    from_caller!(set(config, |c: &mut ConfigInner| {
        let cluster = from_caller!(str_arg(cloud_hsm_cluster_id, "cloud_hsm_cluster_id"))?;
        let module = from_caller!(str_arg(module_path, "module_path"))?;
        let label = from_caller!(str_arg(token_label, "token_label"))?;
        c.pkcs11 = std::mem::take(&mut c.pkcs11).with_token(cluster, module, label);
        Ok(())
    }))
}

/// Sets the region that key ARNs carry (checked by `kp_engine_new`).
///
/// Ownership: `region` is copied; the caller keeps it. Thread safety: no other thread may use
/// `config` meanwhile.
///
/// # Safety
/// `config` is a live handle; `region` is a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn kp_config_set_region(
    config: *mut kp_config,
    region: *const c_char,
) -> kp_status {
    from_caller!(set(config, |c: &mut ConfigInner| {
        c.config.region = from_caller!(str_arg(region, "region"))?.to_owned();
        Ok(())
    }))
}

/// Sets the 12-digit account id that key ARNs carry (checked by `kp_engine_new`).
///
/// Ownership: `account_id` is copied. Thread safety: no other thread may use `config` meanwhile.
///
/// # Safety
/// `config` is a live handle; `account_id` is a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn kp_config_set_account_id(
    config: *mut kp_config,
    account_id: *const c_char,
) -> kp_status {
    from_caller!(set(config, |c: &mut ConfigInner| {
        c.config.account_id = from_caller!(str_arg(account_id, "account_id"))?.to_owned();
        Ok(())
    }))
}

/// Sets the number of threads in the engine's batch worker pool; 0 means one per core.
///
/// Ownership: nothing is taken. Thread safety: no other thread may use `config` meanwhile.
///
/// # Safety
/// `config` is a live handle.
#[no_mangle]
pub unsafe extern "C" fn kp_config_set_worker_threads(
    config: *mut kp_config,
    threads: usize,
) -> kp_status {
    from_caller!(set(config, |c: &mut ConfigInner| {
        if threads > 4096 {
            return Err(Failure::new(
                kp_status::InvalidLength,
                format!("{threads} worker threads is absurd"),
            ));
        }
        c.config.worker_threads = threads;
        Ok(())
    }))
}

/// Sets the lock policy, a `kp_lock_policy` value.
///
/// Ownership: nothing is taken. Thread safety: no other thread may use `config` meanwhile.
///
/// # Safety
/// `config` is a live handle.
#[no_mangle]
pub unsafe extern "C" fn kp_config_set_lock_policy(
    config: *mut kp_config,
    policy: u32,
) -> kp_status {
    from_caller!(set(config, |c: &mut ConfigInner| {
        c.config.lock_policy = lock_policy_arg(policy)?;
        Ok(())
    }))
}

/// Sets the largest plaintext Encrypt takes and Decrypt returns: 1024 to 1048576 bytes (checked by
/// `kp_engine_new`); the default is 4096, as the service.
///
/// Ownership: nothing is taken. Thread safety: no other thread may use `config` meanwhile.
///
/// # Safety
/// `config` is a live handle.
#[no_mangle]
pub unsafe extern "C" fn kp_config_set_max_plaintext_bytes(
    config: *mut kp_config,
    max: usize,
) -> kp_status {
    from_caller!(set(config, |c: &mut ConfigInner| {
        c.config.max_plaintext_bytes = max;
        Ok(())
    }))
}

/// Sets the key quota (CreateKey fails with `KP_STATUS_LIMIT_EXCEEDED` beyond it).
///
/// Ownership: nothing is taken. Thread safety: no other thread may use `config` meanwhile.
///
/// # Safety
/// `config` is a live handle.
#[no_mangle]
pub unsafe extern "C" fn kp_config_set_max_keys(config: *mut kp_config, max: usize) -> kp_status {
    from_caller!(set(config, |c: &mut ConfigInner| {
        c.config.max_keys = max;
        Ok(())
    }))
}

/// Sets how many messages one derived data-plane key encrypts before a new one is derived (at
/// most, and by default, 2^32; lower it only to test the mechanism; 0 is refused by
/// `kp_engine_new`).
///
/// Ownership: nothing is taken. Thread safety: no other thread may use `config` meanwhile.
///
/// # Safety
/// `config` is a live handle.
#[no_mangle]
pub unsafe extern "C" fn kp_config_set_messages_per_derived_key(
    config: *mut kp_config,
    limit: u64,
) -> kp_status {
    from_caller!(set(config, |c: &mut ConfigInner| {
        c.config.messages_per_derived_key = limit;
        Ok(())
    }))
}

/// Runs due deletions and rotations on a background thread every `interval_ms` milliseconds, and
/// (on a durable store) looks for other processes' changes as often: a rotation, disable or policy
/// change made by another process reaches this engine's data plane within the interval plus one
/// reload. 0: the default, which is 1000 ms on a durable store (`kp_config_set_store`) and no
/// background thread in memory (every control-plane call, or `kp_engine_run_due_tasks`, runs
/// due tasks).
///
/// Ownership: nothing is taken. Thread safety: no other thread may use `config` meanwhile.
///
/// # Safety
/// `config` is a live handle.
#[no_mangle]
pub unsafe extern "C" fn kp_config_set_scheduler_interval_ms(
    config: *mut kp_config,
    interval_ms: u64,
) -> kp_status {
    from_caller!(set(config, |c: &mut ConfigInner| {
        c.config.scheduler_interval = (interval_ms > 0).then(|| Duration::from_millis(interval_ms));
        Ok(())
    }))
}

/// The staleness bound, fail closed (docs/store.md, "Sharing a store"): once this engine could
/// not follow its store for longer than `bound_ms` milliseconds, its data-plane calls fail with
/// `KP_STATUS_KEY_UNAVAILABLE` until the store answers again (control-plane calls meanwhile fail
/// with the store's error). Needs a scheduler interval shorter than the bound (durable stores
/// follow every 1000 ms unless `kp_config_set_scheduler_interval_ms` says otherwise);
/// `kp_engine_new` fails with `KP_STATUS_VALIDATION` otherwise. 0: off (the default).
///
/// Ownership: nothing is taken. Thread safety: no other thread may use `config` meanwhile.
///
/// # Safety
/// `config` is a live handle.
#[no_mangle]
pub unsafe extern "C" fn kp_config_set_max_staleness_ms(
    config: *mut kp_config,
    bound_ms: u64,
) -> kp_status {
    from_caller!(set(config, |c: &mut ConfigInner| {
        c.config.max_staleness = (bound_ms > 0).then(|| Duration::from_millis(bound_ms));
        Ok(())
    }))
}

/// Makes engines built from this configuration read time from `clock` instead of the system
/// clock (deletion and rotation dates follow it); NULL goes back to the system clock.
///
/// Ownership: the configuration (and each engine built from it) keeps its own reference to the
/// clock; the caller still frees `clock`. Thread safety: no other thread may use `config`
/// meanwhile.
///
/// # Safety
/// `config` is a live handle; `clock` is NULL or a live `kp_manual_clock`.
#[no_mangle]
pub unsafe extern "C" fn kp_config_set_manual_clock(
    config: *mut kp_config,
    clock: *const kp_manual_clock,
) -> kp_status {
    from_caller!(set(config, |c: &mut ConfigInner| {
        c.clock = if clock.is_null() {
            None
        } else {
            Some(Arc::clone(from_caller!(handle_ref(clock, "clock"))?))
        };
        Ok(())
    }))
}

// ---- kp_manual_clock ---------------------------------------------------------------------------

/// A clock that moves only when told to, for tests and simulations. Thread-safe.
pub struct kp_manual_clock {
    _private: [u8; 0],
}
handle!(kp_manual_clock, Arc<ManualClock>, 0x6b70_636c_6f63_6b00);

/// Makes a manual clock reading `start_ms` milliseconds since the Unix epoch.
///
/// Ownership: on success `*out` is a new handle the caller frees with `kp_manual_clock_free`
/// (engines using it keep their own reference). Thread safety: callable from any thread.
///
/// # Safety
/// `out` points to writable storage for a pointer.
#[no_mangle]
pub unsafe extern "C" fn kp_manual_clock_new(
    start_ms: i64,
    out: *mut *mut kp_manual_clock,
) -> kp_status {
    guard(|| {
        let out = out_arg(out, "out")?;
        let handle = into_raw::<kp_manual_clock>(Arc::new(ManualClock::new(Timestamp(start_ms))));
        from_caller!(write_out(out, handle));
        Ok(())
    })
}

/// Moves the clock forward by `ms` milliseconds.
///
/// Ownership: nothing is taken. Thread safety: thread-safe; any thread may move or read it.
///
/// # Safety
/// `clock` is a live handle.
#[no_mangle]
pub unsafe extern "C" fn kp_manual_clock_advance_ms(
    clock: *const kp_manual_clock,
    ms: u64,
) -> kp_status {
    guard(|| {
        let clock = from_caller!(handle_ref(clock, "clock"))?;
        clock.advance(Duration::from_millis(ms));
        Ok(())
    })
}

/// The clock's time in milliseconds since the Unix epoch; 0 for an invalid handle.
///
/// Ownership: nothing is taken. Thread safety: thread-safe.
///
/// # Safety
/// `clock` is a live handle.
#[no_mangle]
pub unsafe extern "C" fn kp_manual_clock_now_ms(clock: *const kp_manual_clock) -> i64 {
    guard_value(0, || {
        let clock = from_caller!(handle_ref(clock, "clock"))?;
        Ok(kp::Clock::now(clock.as_ref()).0)
    })
}

/// Frees the caller's reference to a manual clock. NULL is ignored. Engines using it keep
/// working with it.
///
/// Ownership: takes the handle. Thread safety: no other thread may use this handle meanwhile.
///
/// # Safety
/// `clock` is NULL or a handle from `kp_manual_clock_new` not freed before.
#[no_mangle]
pub unsafe extern "C" fn kp_manual_clock_free(clock: *mut kp_manual_clock) {
    from_caller!(free_handle(clock, |_: &_| true))
}

// ---- kp_engine ---------------------------------------------------------------------------------

/// A key management engine. Thread-safe: one handle may be shared by any number of threads for
/// every call, until `kp_engine_free`.
pub struct kp_engine {
    _private: [u8; 0],
}
handle!(kp_engine, EngineHandle, 0x6b70_656e_6769_6e65);

/// What a `kp_engine` handle holds: the engine and, while the audit log takes one writing process
/// at a time, its lock (shared by every handle of the engine, released with the last).
pub(crate) struct EngineHandle {
    // Field order is drop order: the engine (and its log) first, the lock last.
    pub(crate) engine: Engine,
    lock: Option<Arc<keyplane_store_address::audit::AuditLock>>,
}

impl EngineHandle {
    pub(crate) fn new(engine: Engine) -> Self {
        EngineHandle { engine, lock: None }
    }

    pub(crate) fn from_store_engine(engine: keyplane_store_address::StoreEngine) -> Self {
        let (engine, lock) = engine.into_parts();
        EngineHandle {
            engine,
            lock: lock.map(Arc::new),
        }
    }

    /// Another handle to the same engine (for another caller), keeping the lock alive.
    pub(crate) fn with_engine(&self, engine: Engine) -> Self {
        EngineHandle {
            engine,
            lock: self.lock.clone(),
        }
    }
}

impl std::ops::Deref for EngineHandle {
    type Target = Engine;
    fn deref(&self) -> &Engine {
        &self.engine
    }
}

/// Starts an engine with `config`'s settings (NULL: the defaults). Its keys live in the store
/// `kp_config_set_store` (or `kp_config_from_env`) names, opened now and created if missing unless
/// `kp_config_set_open_only`; without a store (or with `memory:`) they live in this process's
/// memory only and are gone when the engine is freed. A store that cannot be opened fails with a
/// status of the store block (`KP_STATUS_STORE_WRONG_ROOT_KEY`, `KP_STATUS_STORE_MISSING`,
/// `KP_STATUS_STORE_READ_ONLY`, `KP_STATUS_STORE_NEWER_SCHEMA`, `KP_STATUS_STORE_DAMAGED`, ...)
/// and `kp_last_error_message` saying what was tried. Fails with `KP_STATUS_VALIDATION` for settings the engine refuses (bad region or account, a
/// plaintext limit out of range, ...), and with `KP_STATUS_AUDIT_UNAVAILABLE` when an audit log
/// is configured that cannot be opened (a missing directory, an unusable signing key, a log on
/// disk that does not verify). The new handle calls as the account's root principal
/// (`kp_engine_for_caller` makes handles for other principals).
///
/// Ownership: `config` is only read; the caller still frees it. On success `*out` is a new handle
/// the caller frees with `kp_engine_free`. Thread safety: callable from any thread; `config` must
/// not be modified meanwhile.
///
/// # Safety
/// `config` is NULL or a live handle; `out` points to writable storage for a pointer.
#[no_mangle]
pub unsafe extern "C" fn kp_engine_new(
    config: *const kp_config,
    out: *mut *mut kp_engine,
) -> kp_status {
    guard(|| {
        let out = out_arg(out, "out")?;
        let mut builder = Engine::builder();
        let mut durable = None;
        if !config.is_null() {
            let config = from_caller!(handle_ref(config, "config"))?;
            builder = builder.config(config.config.clone());
            if let Some(clock) = &config.clock {
                builder = builder.clock(Arc::clone(clock) as Arc<dyn kp::Clock>);
            }
            if let Some((audit, signing_key)) = &config.audit {
                // Each engine built from this configuration gets a locked copy of the key.
                let key = signing_key.expose(kp::SecretAccess::granted());
                let copy = LockedBytes::copy_from(key, config.config.lock_policy)?;
                builder = builder.audit(audit.clone(), copy);
            }
            if !config.pkcs11.clusters.is_empty() {
                builder = builder.custom_key_store_backend(
                    kp::CustomKeyStoreType::AwsCloudhsm,
                    Arc::new(keyplane_pkcs11::Pkcs11Backend::new(config.pkcs11.clone())),
                );
            }
            // External key stores (created with the CLI or the endpoint) reconnect here too; their
            // proxies' CA bundle is KEYPLANE_XKS_CA_BUNDLE, else the platform's.
            let mut xks = keyplane_xks::XksBackendConfig::new(&config.config.region);
            if let Some(bundle) = std::env::var_os("KEYPLANE_XKS_CA_BUNDLE") {
                xks.trust = keyplane_xks::TrustAnchors::CaBundle(bundle.into());
            }
            builder = builder.custom_key_store_backend(
                kp::CustomKeyStoreType::ExternalKeyStore,
                Arc::new(keyplane_xks::XksBackend::new(xks)),
            );
            builder = with_region_stores(&config.store, builder, config.config.lock_policy)?;
            // A durable store (SQLite, PostgreSQL) opens through the store address; `memory:`
            // and no address start the engine in memory.
            if let Some(address) = config.store.address.as_ref().filter(|a| a.is_durable()) {
                durable = Some((config, address));
            }
        }
        let engine = match durable {
            Some((config, address)) => EngineHandle::from_store_engine(engine_on_store(
                &config.store,
                address,
                builder,
                config.config.lock_policy,
                config.config.scheduler_interval,
                config.audit.is_some(),
            )?),
            None => EngineHandle::new(builder.build()?),
        };
        let handle = into_raw::<kp_engine>(engine);
        from_caller!(write_out(out, handle));
        Ok(())
    })
}

/// Frees an engine handle. When it is the engine's last handle (handles from
/// `kp_engine_for_caller` share the engine), the engine stops: its audit log, if any, writes a
/// final digest and closes, and its keys (in memory) are zeroed and released. NULL is ignored.
///
/// Ownership: takes the handle. Thread safety: every other thread must be done with this handle
/// (no call in flight, none after).
///
/// # Safety
/// `engine` is NULL or a handle from `kp_engine_new` not freed before.
#[no_mangle]
pub unsafe extern "C" fn kp_engine_free(engine: *mut kp_engine) {
    from_caller!(free_handle(engine, |_: &_| true))
}

/// Threads in the engine's batch worker pool; 0 for an invalid handle.
///
/// Ownership: nothing is taken. Thread safety: thread-safe.
///
/// # Safety
/// `engine` is a live handle.
#[no_mangle]
pub unsafe extern "C" fn kp_engine_worker_threads(engine: *const kp_engine) -> usize {
    guard_value(0, || {
        Ok(from_caller!(handle_ref(engine, "engine"))?.worker_threads())
    })
}

/// The engine's largest plaintext in bytes; 0 for an invalid handle.
///
/// Ownership: nothing is taken. Thread safety: thread-safe.
///
/// # Safety
/// `engine` is a live handle.
#[no_mangle]
pub unsafe extern "C" fn kp_engine_max_plaintext_bytes(engine: *const kp_engine) -> usize {
    guard_value(0, || {
        Ok(from_caller!(handle_ref(engine, "engine"))?
            .config()
            .max_plaintext_bytes)
    })
}

/// Runs every deletion and automatic rotation that is due now (every control-plane call does this
/// first; so does the background scheduler when configured).
///
/// Ownership: nothing is taken. Thread safety: thread-safe.
///
/// # Safety
/// `engine` is a live handle.
#[no_mangle]
pub unsafe extern "C" fn kp_engine_run_due_tasks(engine: *const kp_engine) -> kp_status {
    guard(|| {
        let engine = from_caller!(handle_ref(engine, "engine"))?;
        Ok(engine.run_due_tasks()?)
    })
}

// ---- kp_context --------------------------------------------------------------------------------

/// An encryption context: string pairs bound to a ciphertext. Build it once, then pass it to any
/// number of calls, from any number of threads, as long as nobody adds to it meanwhile.
pub struct kp_context {
    _private: [u8; 0],
}
handle!(kp_context, EncryptionContext, 0x6b70_6374_7874_0000);

/// Makes an empty encryption context (which encrypts alike to none).
///
/// Ownership: on success `*out` is a new handle the caller frees with `kp_context_free`.
/// Thread safety: callable from any thread.
///
/// # Safety
/// `out` points to writable storage for a pointer.
#[no_mangle]
pub unsafe extern "C" fn kp_context_new(out: *mut *mut kp_context) -> kp_status {
    guard(|| {
        let out = out_arg(out, "out")?;
        let handle = into_raw::<kp_context>(EncryptionContext::new());
        from_caller!(write_out(out, handle));
        Ok(())
    })
}

/// Adds the pair `key` = `value`, replacing the value of an existing `key`. Sizes are checked by
/// the engine when the context is used (at most 8192 bytes encoded).
///
/// Ownership: both strings are copied. Thread safety: no other thread may use `context`
/// meanwhile.
///
/// # Safety
/// `context` is a live handle; `key` and `value` are NUL-terminated strings.
#[no_mangle]
pub unsafe extern "C" fn kp_context_add(
    context: *mut kp_context,
    key: *const c_char,
    value: *const c_char,
) -> kp_status {
    guard(|| {
        let context = from_caller!(handle_mut(context, "context"))?;
        let (key, value) = (
            from_caller!(str_arg(key, "key"))?,
            from_caller!(str_arg(value, "value"))?,
        );
        context.insert(key.to_owned(), value.to_owned());
        Ok(())
    })
}

/// Number of pairs in the context; 0 for an invalid handle.
///
/// Ownership: nothing is taken. Thread safety: safe while nobody adds to it.
///
/// # Safety
/// `context` is a live handle.
#[no_mangle]
pub unsafe extern "C" fn kp_context_len(context: *const kp_context) -> usize {
    guard_value(
        0,
        || Ok(from_caller!(handle_ref(context, "context"))?.len()),
    )
}

/// Frees a context. NULL is ignored.
///
/// Ownership: takes the handle. Thread safety: no call using it may be in flight.
///
/// # Safety
/// `context` is NULL or a handle from `kp_context_new` not freed before.
#[no_mangle]
pub unsafe extern "C" fn kp_context_free(context: *mut kp_context) {
    from_caller!(free_handle(context, |_: &_| true))
}

/// An encryption context argument: NULL is none.
///
/// # Safety
/// `ptr` is NULL or a live `kp_context` nobody modifies during `'a`.
pub(crate) unsafe fn context_arg<'a>(
    ptr: *const kp_context,
    what: &str,
) -> Outcome<Option<&'a EncryptionContext>> {
    if ptr.is_null() {
        return Ok(None);
    }
    Ok(Some(from_caller!(handle_ref(ptr, what))?))
}

// ---- kp_secret_buffer --------------------------------------------------------------------------

/// Memory for secrets (plaintext data keys, decrypted plaintexts): allocated by the library in
/// the engine's locked, non-dumpable memory, and zeroed when freed. Not thread-safe for
/// concurrent writes.
pub struct kp_secret_buffer {
    _private: [u8; 0],
}
handle!(kp_secret_buffer, LockedBytes, 0x6b70_7365_6372_6574);

/// Allocates a secret buffer of `len` zero bytes (1 to `KP_MAX_SECRET_BUFFER`) in locked memory,
/// following `engine`'s lock policy (`KP_STATUS_MEMORY_LOCK` when the memory cannot be locked
/// under Require).
///
/// Ownership: on success `*out` is a new handle the caller frees with `kp_secret_buffer_free`,
/// which zeroes the bytes. Thread safety: callable from any thread.
///
/// # Safety
/// `engine` is a live handle; `out` points to writable storage for a pointer.
#[no_mangle]
pub unsafe extern "C" fn kp_secret_buffer_new(
    engine: *const kp_engine,
    len: usize,
    out: *mut *mut kp_secret_buffer,
) -> kp_status {
    guard(|| {
        let engine = from_caller!(handle_ref(engine, "engine"))?;
        let out = out_arg(out, "out")?;
        if len == 0 || len > KP_MAX_SECRET_BUFFER {
            return Err(Failure::new(
                kp_status::InvalidLength,
                format!("a secret buffer is 1 to {KP_MAX_SECRET_BUFFER} bytes, not {len}"),
            ));
        }
        let handle = new_secret_buffer(engine, len)?;
        from_caller!(write_out(out, handle));
        Ok(())
    })
}

pub(crate) fn new_secret_buffer(engine: &Engine, len: usize) -> Outcome<*mut kp_secret_buffer> {
    let bytes = LockedBytes::zeroed(len, engine.config().lock_policy)?;
    Ok(into_raw::<kp_secret_buffer>(bytes))
}

/// The buffer's bytes (`kp_secret_buffer_len` of them), readable and writable until the buffer
/// is freed; NULL for an invalid handle.
///
/// Ownership: the memory belongs to the buffer. Thread safety: the caller coordinates access to
/// the bytes; the call itself is thread-safe.
///
/// # Safety
/// `buffer` is a live handle.
#[no_mangle]
pub unsafe extern "C" fn kp_secret_buffer_data(buffer: *mut kp_secret_buffer) -> *mut u8 {
    guard_value(std::ptr::null_mut(), || {
        let buffer = from_caller!(handle_mut(buffer, "buffer"))?;
        Ok(buffer.expose_mut(kp::SecretAccess::granted()).as_mut_ptr())
    })
}

/// The buffer's length in bytes; 0 for an invalid handle.
///
/// Ownership: nothing is taken. Thread safety: thread-safe.
///
/// # Safety
/// `buffer` is a live handle.
#[no_mangle]
pub unsafe extern "C" fn kp_secret_buffer_len(buffer: *const kp_secret_buffer) -> usize {
    guard_value(0, || Ok(from_caller!(handle_ref(buffer, "buffer"))?.len()))
}

/// Zeroes and frees a secret buffer. NULL is ignored.
///
/// Ownership: takes the handle; pointers from `kp_secret_buffer_data` become invalid. Thread
/// safety: nothing else may use the buffer meanwhile.
///
/// # Safety
/// `buffer` is NULL or a handle this library returned, not freed before.
#[no_mangle]
pub unsafe extern "C" fn kp_secret_buffer_free(buffer: *mut kp_secret_buffer) {
    from_caller!(free_handle(buffer, |_: &_| true))
}
