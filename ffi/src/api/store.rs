//! Durable stores from C: where the store is (`kp_config_set_store`, `kp_config_from_env`), where
//! its root key comes from (a key file, an environment variable, a passphrase, or the service's
//! own callback), whether a missing store is created, and the audit log beside it. Naming and
//! opening a store is the crate `keyplane-store-address`'s, shared with the CLI and Python, so a
//! C service reads the same addresses and variables and writes the same audit log as `keyplane`.

use std::ffi::{c_char, c_int, c_void};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use keyplane_store_address::{AuditOptions, StoreAddress};
use zeroize::Zeroizing;

use super::audit::durability_arg;
use super::caller::from_caller;
use super::failure::{Failure, Outcome};
use super::ffi::{bytes_arg, guard, opt_str_arg, out_arg, str_arg, write_out};
use super::handles::{handle_mut, into_raw, kp_config, ConfigInner};
use super::status::kp_status;
use super::store_open::{open_failure, CCallback, RootKeySetting, StoreSettings};

/// Fills `key_out` with the store's 32-byte root key and returns 0; any other value means the key
/// is unavailable (`kp_engine_new` then fails with `KP_STATUS_STORE_ROOT_KEY_MISSING`). Called by
/// `kp_engine_new` (to create or open the store), from the thread that calls it; `user_data` is
/// what `kp_config_set_root_key_callback` was given. `key_out` is the library's own locked memory
/// (`key_len` is 32), zeroed when the library is done with the key; keep no copy of it.
pub type kp_root_key_callback =
    Option<unsafe extern "C" fn(user_data: *mut c_void, key_out: *mut u8, key_len: usize) -> c_int>;

/// Runs `set` on a checked configuration's store settings.
///
/// # Safety
/// `config` is NULL or a live `kp_config` nobody else uses meanwhile.
unsafe fn set_store(
    config: *mut kp_config,
    set: impl FnOnce(&mut StoreSettings) -> Outcome<()>,
) -> kp_status {
    guard(|| {
        let config: &mut ConfigInner = from_caller!(handle_mut(config, "config"))?;
        set(&mut config.store)
    })
}

/// Makes engines built from this configuration keep their keys in the store at `address`:
/// `sqlite:PATH` (a data directory, as the `keyplane` tool's `--data-dir`), `postgres://USER@HOST/DB`
/// (a fleet store many processes share; the root key file and rollback witness in
/// `$KEYPLANE_HOME`, else `./keyplane-data`) or `memory:` (in this process only). NULL goes back to the default, the in-memory store. `kp_engine_new` opens the
/// store, creating it if missing (with a new root key file `PATH/root.key`, mode 0600, unless
/// another root key source is set) unless `kp_config_set_open_only`. A malformed address is
/// refused here: `KP_STATUS_STORE_BAD_ADDRESS`, or `KP_STATUS_STORE_UNKNOWN_SCHEME` for a scheme
/// this library does not know.
///
/// Ownership: `address` is copied. Thread safety: no other thread may use `config` meanwhile.
///
/// # Safety
/// `config` is a live handle; `address` is NULL or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn kp_config_set_store(
    config: *mut kp_config,
    address: *const c_char,
) -> kp_status {
    from_caller!(set_store(config, |s: &mut StoreSettings| {
        s.address = match from_caller!(opt_str_arg(address, "address"))? {
            None => None,
            Some(text) => Some(StoreAddress::parse(text).map_err(open_failure)?),
        };
        Ok(())
    }))
}

/// Gives engines built from this configuration the store of another Region, for multi-Region
/// keys (`docs/multi-region.md`): `region_store` is `REGION=sqlite:PATH`, such as
/// `eu-west-1=sqlite:/srv/keyplane-eu`. `kp_replicate_key` creates replicas there, and changes to
/// a multi-Region key's shared properties are written there too. The store must exist; it is
/// opened with its own root key file (`PATH/root.key`) when the engine starts. Call once per
/// Region (a Region given again replaces its store). A malformed value is
/// `KP_STATUS_STORE_BAD_ADDRESS`.
///
/// Ownership: `region_store` is copied. Thread safety: no other thread may use `config` meanwhile.
///
/// # Safety
/// `config` is a live handle; `region_store` is a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn kp_config_add_region_store(
    config: *mut kp_config,
    region_store: *const c_char,
) -> kp_status {
    from_caller!(set_store(config, |s: &mut StoreSettings| {
        let text = from_caller!(str_arg(region_store, "region_store"))?;
        let peer = keyplane_store_address::RegionStoreAddress::parse(text).map_err(open_failure)?;
        s.region_stores.retain(|r| r.region != peer.region);
        s.region_stores.push(peer);
        Ok(())
    }))
}

/// Takes the root key from the key file `path` (base64 of 32 bytes, mode 0600; created with a new
/// key when the store is created). The default, without any root-key setter: the file named by
/// `KEYPLANE_ROOT_KEY_FILE`, else the key in `KEYPLANE_ROOT_KEY`, else `root.key` in the data
/// directory, as the `keyplane` tool.
///
/// Ownership: `path` is copied. Thread safety: no other thread may use `config` meanwhile.
///
/// # Safety
/// `config` is a live handle; `path` is a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn kp_config_set_root_key_file(
    config: *mut kp_config,
    path: *const c_char,
) -> kp_status {
    from_caller!(set_store(config, |s: &mut StoreSettings| {
        let path = non_empty(from_caller!(str_arg(path, "path"))?, "path")?;
        s.root_key = Some(RootKeySetting::KeyFile(path.into()));
        Ok(())
    }))
}

/// Takes the root key from the environment variable `name` (base64 of 32 bytes), read when
/// `kp_engine_new` opens the store.
///
/// Ownership: `name` is copied. Thread safety: no other thread may use `config` meanwhile.
///
/// # Safety
/// `config` is a live handle; `name` is a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn kp_config_set_root_key_env(
    config: *mut kp_config,
    name: *const c_char,
) -> kp_status {
    from_caller!(set_store(config, |s: &mut StoreSettings| {
        let name = non_empty(from_caller!(str_arg(name, "name"))?, "name")?;
        s.root_key = Some(RootKeySetting::EnvVar(name.to_owned()));
        Ok(())
    }))
}

/// Derives the root key from a passphrase (`len` bytes) with argon2id (64 MiB, 3 passes; a
/// quarter of a second per open). The store keeps the salt and cost, never the passphrase.
///
/// Ownership: the passphrase is copied (the configuration's copy is zeroed when it is freed or
/// replaced); the caller keeps and zeroes its own. Thread safety: no other thread may use
/// `config` meanwhile.
///
/// # Safety
/// `config` is a live handle; `passphrase` has `len` readable bytes.
#[no_mangle]
pub unsafe extern "C" fn kp_config_set_root_key_passphrase(
    config: *mut kp_config,
    passphrase: *const u8,
    len: usize,
) -> kp_status {
    from_caller!(set_store(config, |s: &mut StoreSettings| {
        let bytes = from_caller!(bytes_arg(passphrase, len, "passphrase"))?;
        if bytes.is_empty() {
            return Err(Failure::new(
                kp_status::InvalidLength,
                "the passphrase is empty",
            ));
        }
        s.root_key = Some(RootKeySetting::Passphrase(Zeroizing::new(bytes.to_vec())));
        Ok(())
    }))
}

/// Asks `callback` for the root key (32 bytes) whenever the store is created or opened: for a
/// service that keeps its root key in its own secret manager or HSM. `callback` NULL is refused.
///
/// Ownership: `user_data` stays the caller's; it must stay valid, and `callback` callable, until
/// every engine built from this configuration is freed. Thread safety: no other thread may use
/// `config` meanwhile; `callback` may be called from any thread that calls `kp_engine_new`.
///
/// # Safety
/// `config` is a live handle; `callback` follows `kp_root_key_callback`'s contract.
#[no_mangle]
pub unsafe extern "C" fn kp_config_set_root_key_callback(
    config: *mut kp_config,
    callback: kp_root_key_callback,
    user_data: *mut c_void,
) -> kp_status {
    guard(|| {
        let config: &mut ConfigInner = from_caller!(handle_mut(config, "config"))?;
        let callback = callback.ok_or_else(|| Failure::null("callback"))?;
        // SAFETY: this export's caller promised what `CCallback::new` asks (its `# Safety`).
        let callback = unsafe { CCallback::new(callback, user_data) };
        config.store.root_key = Some(RootKeySetting::Callback(Arc::new(callback)));
        Ok(())
    })
}

/// `open_only` true: `kp_engine_new` fails with `KP_STATUS_STORE_MISSING` rather than create a
/// store that does not exist (and creates nothing). Default false.
///
/// Ownership: nothing is taken. Thread safety: no other thread may use `config` meanwhile.
///
/// # Safety
/// `config` is a live handle.
#[no_mangle]
pub unsafe extern "C" fn kp_config_set_open_only(
    config: *mut kp_config,
    open_only: bool,
) -> kp_status {
    from_caller!(set_store(config, |s: &mut StoreSettings| {
        s.open_only = open_only;
        Ok(())
    }))
}

/// The audit log of engines on a durable store. By default (without this call) every request is
/// recorded in `<data dir>/audit/audit.log` with synced durability, a digest at least every
/// second, and digests signed by the store's own audit signing key (kept wrapped under the root
/// key; its public key exported to `<data dir>/audit/audit-signing-key.der`), as the `keyplane`
/// tool does, so `keyplane audit verify` checks it. `path` NULL keeps that log; otherwise the
/// log goes to `path`. `durability` is a `kp_audit_durability`; `digest_interval_ms` 0 keeps the
/// default interval. One process at a time writes a data directory's log: a second gets
/// `KP_STATUS_AUDIT_UNAVAILABLE` from `kp_engine_new` (see docs/c-api.md).
///
/// Ownership: `path` is copied. Thread safety: no other thread may use `config` meanwhile.
///
/// # Safety
/// `config` is a live handle; `path` is NULL or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn kp_config_set_store_audit(
    config: *mut kp_config,
    path: *const c_char,
    durability: u32,
    digest_interval_ms: u64,
) -> kp_status {
    from_caller!(set_store(config, |s: &mut StoreSettings| {
        let log = from_caller!(opt_str_arg(path, "path"))?;
        let durability = durability_arg(durability)?;
        s.audit = Some(AuditOptions {
            log: log
                .map(|l| non_empty(l, "path"))
                .transpose()?
                .map(PathBuf::from),
            durability,
            digest_every: (digest_interval_ms > 0)
                .then(|| Duration::from_millis(digest_interval_ms)),
            ..AuditOptions::default()
        });
        Ok(())
    }))
}

/// Turns the durable store's audit log off: requests are not recorded.
///
/// Ownership: nothing is taken. Thread safety: no other thread may use `config` meanwhile.
///
/// # Safety
/// `config` is a live handle.
#[no_mangle]
pub unsafe extern "C" fn kp_config_disable_audit(config: *mut kp_config) -> kp_status {
    from_caller!(set_store(config, |s: &mut StoreSettings| {
        s.audit = Some(AuditOptions::off());
        Ok(())
    }))
}

/// Makes a configuration from the environment, as the `keyplane` tool reads it: the store at
/// `KEYPLANE_STORE` (an address), else the data directory `KEYPLANE_HOME`, else
/// `./keyplane-data` (created if missing); the root key from `KEYPLANE_ROOT_KEY_FILE`, else
/// `KEYPLANE_ROOT_KEY`, else `root.key` in the data directory; `KEYPLANE_REGION` and
/// `KEYPLANE_ACCOUNT_ID` if set. Other settings are `kp_config_new`'s defaults; later setters
/// override any of these.
///
/// Ownership: on success `*out` is a new handle the caller frees with `kp_config_free`.
/// Thread safety: callable from any thread (it reads the environment).
///
/// # Safety
/// `out` points to writable storage for a pointer.
#[no_mangle]
pub unsafe extern "C" fn kp_config_from_env(out: *mut *mut kp_config) -> kp_status {
    guard(|| {
        let out = out_arg(out, "out")?;
        let mut inner = ConfigInner::default();
        inner.store.address = Some(StoreAddress::from_env().map_err(open_failure)?);
        if let Some(region) = env_string("KEYPLANE_REGION")? {
            inner.config.region = region;
        }
        if let Some(account) = env_string("KEYPLANE_ACCOUNT_ID")? {
            inner.config.account_id = account;
        }
        let handle = into_raw::<kp_config>(inner);
        from_caller!(write_out(out, handle));
        Ok(())
    })
}

fn env_string(name: &str) -> Outcome<Option<String>> {
    match std::env::var(name) {
        Ok(v) if !v.is_empty() => Ok(Some(v)),
        Ok(_) | Err(std::env::VarError::NotPresent) => Ok(None),
        Err(std::env::VarError::NotUnicode(_)) => Err(Failure::new(
            kp_status::InvalidUtf8,
            format!("{name} is not valid UTF-8"),
        )),
    }
}

fn non_empty<'a>(text: &'a str, what: &str) -> Outcome<&'a str> {
    if text.is_empty() {
        return Err(Failure::new(
            kp_status::InvalidLength,
            format!("{what} is empty"),
        ));
    }
    Ok(text)
}
