//! Who calls, and how often: callers (`kp_caller`), engine handles bound to a caller
//! (`kp_engine_for_caller`), and request-rate quotas on the configuration.
//!
//! An engine fresh from `kp_engine_new` acts as the account's root principal. A handle from
//! `kp_engine_for_caller` is another handle to the same engine (same keys, same worker pool, same
//! audit log) through which every call is authorised against key policies and grants, and
//! audited, as that caller.

use std::ffi::c_char;

use kp::{Caller, RateQuotas};

use super::caller::from_caller;
use super::failure::{Failure, Outcome};
use super::ffi::{guard, out_arg, str_arg, write_out};
use super::handles::{free_handle, handle, handle_mut, handle_ref, into_raw, kp_config, kp_engine};
use super::status::kp_status;

// ---- kp_caller ---------------------------------------------------------------------------------

/// A principal making requests: an IAM-style ARN and optional attributes (a principal tag, the
/// integrated service it calls through). Built with `kp_caller_new` and the `kp_caller_*`
/// setters, then bound to an engine with `kp_engine_for_caller`. Not thread-safe while being
/// built; read-only (shareable) once built.
pub struct kp_caller {
    _private: [u8; 0],
}
handle!(kp_caller, Caller, 0x6b70_6361_6c6c_6572);

/// Makes a caller for `principal_arn`: `arn:aws:iam::<account>:root`, `...:user/<name>`,
/// `...:role/<name>`, or `arn:aws:sts::<account>:assumed-role/<role>/<session>`. Anything else is
/// refused with `KP_STATUS_VALIDATION`.
///
/// Ownership: `principal_arn` is copied. On success `*out` is a new handle the caller frees with
/// `kp_caller_free`. Thread safety: callable from any thread.
///
/// # Safety
/// `principal_arn` is a NUL-terminated string; `out` points to writable storage for a pointer.
#[no_mangle]
pub unsafe extern "C" fn kp_caller_new(
    principal_arn: *const c_char,
    out: *mut *mut kp_caller,
) -> kp_status {
    guard(|| {
        let principal = from_caller!(str_arg(principal_arn, "principal_arn"))?;
        let out = out_arg(out, "out")?;
        let caller = Caller::new(principal)?;
        from_caller!(write_out(out, into_raw::<kp_caller>(caller)));
        Ok(())
    })
}

/// Runs `change` on a checked caller.
///
/// # Safety
/// `caller` is NULL or a live `kp_caller` nobody else uses meanwhile.
unsafe fn change(
    caller: *mut kp_caller,
    change: impl FnOnce(Caller) -> Outcome<Caller>,
) -> kp_status {
    guard(|| {
        let caller = from_caller!(handle_mut(caller, "caller"))?;
        *caller = change(caller.clone())?;
        Ok(())
    })
}

/// Adds the attribute `key` = `value` (a principal tag, a session name), replacing the value of
/// an existing `key`; key policy conditions can test it.
///
/// Ownership: both strings are copied. Thread safety: no other thread may use `caller` meanwhile.
///
/// # Safety
/// `caller` is a live handle; `key` and `value` are NUL-terminated strings.
#[no_mangle]
pub unsafe extern "C" fn kp_caller_add_attribute(
    caller: *mut kp_caller,
    key: *const c_char,
    value: *const c_char,
) -> kp_status {
    from_caller!(change(caller, |c: Caller| {
        let (key, value) = (
            from_caller!(str_arg(key, "key"))?,
            from_caller!(str_arg(value, "value"))?,
        );
        Ok(c.with_attribute(key, value))
    }))
}

/// Marks the caller as calling through an integrated service's endpoint
/// (`<service>.<region>.amazonaws.com`), which sets `kms:ViaService` for key policies: how
/// callers reach a managed key (`kp_managed_key`).
///
/// Ownership: `endpoint` is copied. Thread safety: no other thread may use `caller` meanwhile.
///
/// # Safety
/// `caller` is a live handle; `endpoint` is a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn kp_caller_set_via_service(
    caller: *mut kp_caller,
    endpoint: *const c_char,
) -> kp_status {
    from_caller!(change(caller, |c: Caller| Ok(
        c.via_service(from_caller!(str_arg(endpoint, "endpoint"))?)
    ),))
}

/// Frees a caller. NULL is ignored. Engine handles made with it are unaffected.
///
/// Ownership: takes the handle. Thread safety: no other thread may use it meanwhile.
///
/// # Safety
/// `caller` is NULL or a handle from `kp_caller_new` not freed before.
#[no_mangle]
pub unsafe extern "C" fn kp_caller_free(caller: *mut kp_caller) {
    from_caller!(free_handle(caller, |_: &_| true))
}

/// A new handle to the same engine as `engine` (same keys, worker pool, rate quotas and audit
/// log) through which every call is made as `caller`: authorised against key policies and grants
/// (`KP_STATUS_ACCESS_DENIED` when they do not allow it) and audited as that principal.
///
/// Ownership: `caller` is copied (the caller may free it at once). On success `*out` is a new
/// engine handle the caller frees with `kp_engine_free`; the engine itself stops when its last
/// handle is freed. Thread safety: thread-safe; the new handle is as thread-safe as any
/// `kp_engine`.
///
/// # Safety
/// `engine` and `caller` are live handles; `out` points to writable storage for a pointer.
#[no_mangle]
pub unsafe extern "C" fn kp_engine_for_caller(
    engine: *const kp_engine,
    caller: *const kp_caller,
    out: *mut *mut kp_engine,
) -> kp_status {
    guard(|| {
        let (engine, caller) = (
            from_caller!(handle_ref(engine, "engine"))?,
            from_caller!(handle_ref(caller, "caller"))?,
        );
        let out = out_arg(out, "out")?;
        let handle = into_raw::<kp_engine>(engine.with_engine(engine.for_caller(caller.clone())));
        from_caller!(write_out(out, handle));
        Ok(())
    })
}

/// Shorthand for `kp_caller_new(principal_arn)` and `kp_engine_for_caller`: a new handle to the
/// same engine that calls as `principal_arn` (no attributes).
///
/// Ownership and thread safety: as `kp_engine_for_caller`.
///
/// # Safety
/// `engine` is a live handle; `principal_arn` is a NUL-terminated string; `out` points to
/// writable storage for a pointer.
#[no_mangle]
pub unsafe extern "C" fn kp_engine_for_principal(
    engine: *const kp_engine,
    principal_arn: *const c_char,
    out: *mut *mut kp_engine,
) -> kp_status {
    guard(|| {
        let (engine, principal) = (
            from_caller!(handle_ref(engine, "engine"))?,
            from_caller!(str_arg(principal_arn, "principal_arn"))?,
        );
        let out = out_arg(out, "out")?;
        let handle =
            into_raw::<kp_engine>(engine.with_engine(engine.for_caller(Caller::new(principal)?)));
        from_caller!(write_out(out, handle));
        Ok(())
    })
}

// ---- rate quotas -------------------------------------------------------------------------------

/// Families of operations that share a request-rate quota.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum kp_quota_family {
    /// Encrypt, Decrypt, ReEncrypt, GenerateDataKey(+WithoutPlaintext), GenerateRandom,
    /// GenerateMac, VerifyMac.
    SymmetricCrypto = 0,
    /// Sign, Verify, GetPublicKey, DeriveSharedSecret.
    AsymmetricCrypto = 1,
    /// GenerateDataKeyPair(+WithoutPlaintext).
    DataKeyPair = 2,
    /// Every control-plane operation.
    ControlPlane = 3,
}

/// Sets the request-rate quota of one `kp_quota_family`: at most `per_second` requests per
/// second (with one second of burst; a batch of N items counts N); 0 removes the quota (the
/// default: no quotas). Requests over it fail with `KP_STATUS_THROTTLING` (a batch over it fails
/// every item).
///
/// Ownership: nothing is taken. Thread safety: no other thread may use `config` meanwhile.
///
/// # Safety
/// `config` is a live handle.
#[no_mangle]
pub unsafe extern "C" fn kp_config_set_rate_quota(
    config: *mut kp_config,
    family: u32,
    per_second: u32,
) -> kp_status {
    guard(|| {
        let config = from_caller!(handle_mut(config, "config"))?;
        let quotas = &mut config.config.rate_quotas;
        let slot = match family {
            0 => &mut quotas.symmetric_crypto,
            1 => &mut quotas.asymmetric_crypto,
            2 => &mut quotas.data_key_pair,
            3 => &mut quotas.control_plane,
            other => {
                return Err(Failure::new(
                    kp_status::InvalidEnumValue,
                    format!("{other} is not a kp_quota_family"),
                ))
            }
        };
        *slot = (per_second > 0).then_some(per_second);
        Ok(())
    })
}

/// Sets every family's quota to the service's default per-account rates (10,000 symmetric
/// operations per second, 500 asymmetric, 500 data key pairs, 100 control-plane requests).
///
/// Ownership: nothing is taken. Thread safety: no other thread may use `config` meanwhile.
///
/// # Safety
/// `config` is a live handle.
#[no_mangle]
pub unsafe extern "C" fn kp_config_set_service_rate_quotas(config: *mut kp_config) -> kp_status {
    guard(|| {
        from_caller!(handle_mut(config, "config"))?
            .config
            .rate_quotas = RateQuotas::service_defaults();
        Ok(())
    })
}
