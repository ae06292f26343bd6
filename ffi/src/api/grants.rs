//! Key policies, grants, managed keys and GetKeyLastUsage.
//!
//! Every call here is thread-safe on a shared `kp_engine` and runs as the handle's caller
//! (`kp_engine_for_caller`). Results come back as `kp_record`s and lists as `kp_page`s.

use std::ffi::c_char;

use kp::{CreateGrantRequest, GrantConstraints, GrantListEntry, GrantOperation};

use super::caller::from_caller;
use super::control::{engine_arg, metadata_call};
use super::data::item_arg;
use super::failure::{Failure, Outcome};
use super::ffi::{array_arg, guard, opt_str_arg, out_arg, str_arg};
use super::handles::{context_arg, kp_context, kp_engine};
use super::record::{give_page, give_record, kp_field, kp_page, kp_record, page_of, Record};
use super::status::kp_status;

/// Most operations one grant lists (the service has 17).
const MAX_GRANT_OPERATIONS: usize = 64;

fn limit_arg(limit: u32) -> Option<u32> {
    (limit != 0).then_some(limit)
}

fn bool_arg(value: u32, what: &str) -> Outcome<bool> {
    match value {
        0 => Ok(false),
        1 => Ok(true),
        other => Err(Failure::new(
            kp_status::InvalidArgument,
            format!("{what} is 0 or 1, not {other}"),
        )),
    }
}

// ---- key policies ------------------------------------------------------------------------------

/// PutKeyPolicy: replaces a key's policy with `policy` (a JSON policy document, up to 32 KiB).
/// `policy_name` is NULL or "default" (a key has one policy). The engine refuses, with
/// `KP_STATUS_MALFORMED_POLICY_DOCUMENT`, a malformed document or one that would not let the
/// caller change the policy again, unless `bypass_policy_lockout_safety_check` is 1. Keys of
/// integrated services (`kp_managed_key`) refuse with `KP_STATUS_ACCESS_DENIED`.
///
/// Ownership: strings are copied. Thread safety: thread-safe on a shared engine.
///
/// # Safety
/// `engine` is a live handle; `key_id` and `policy` are NUL-terminated; `policy_name` is NULL or
/// NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn kp_put_key_policy(
    engine: *const kp_engine,
    key_id: *const c_char,
    policy: *const c_char,
    policy_name: *const c_char,
    bypass_policy_lockout_safety_check: u32,
) -> kp_status {
    guard(|| {
        let (engine, key_id, policy, policy_name) = (
            from_caller!(engine_arg(engine))?,
            from_caller!(str_arg(key_id, "key_id"))?,
            from_caller!(str_arg(policy, "policy"))?,
            from_caller!(opt_str_arg(policy_name, "policy_name"))?,
        );
        let bypass = bool_arg(
            bypass_policy_lockout_safety_check,
            "bypass_policy_lockout_safety_check",
        )?;
        Ok(engine.put_key_policy(key_id, policy, policy_name, bypass)?)
    })
}

/// GetKeyPolicy: a key's policy document, as a record with POLICY_NAME and POLICY (the JSON, as
/// it was put). `policy_name` is NULL or "default".
///
/// Ownership: on success `*out` is a new record the caller frees with `kp_record_free`. Thread
/// safety: thread-safe on a shared engine.
///
/// # Safety
/// `engine` is a live handle; `key_id` is NUL-terminated; `policy_name` is NULL or
/// NUL-terminated; `out` points to writable storage for a pointer.
#[no_mangle]
pub unsafe extern "C" fn kp_get_key_policy(
    engine: *const kp_engine,
    key_id: *const c_char,
    policy_name: *const c_char,
    out: *mut *mut kp_record,
) -> kp_status {
    guard(|| {
        let (engine, key_id, policy_name) = (
            from_caller!(engine_arg(engine))?,
            from_caller!(str_arg(key_id, "key_id"))?,
            from_caller!(opt_str_arg(policy_name, "policy_name"))?,
        );
        let out = out_arg(out, "out")?;
        let policy = engine.get_key_policy(key_id, policy_name)?;
        let record = Record::new()
            .str(kp_field::PolicyName, policy_name.unwrap_or("default"))
            .str(kp_field::Policy, &policy);
        from_caller!(give_record(out, record));
        Ok(())
    })
}

/// ListKeyPolicies: the names of a key's policies (always one page with one record, POLICY_NAME
/// "default").
///
/// Ownership: on success `*out` is a new page the caller frees with `kp_page_free`. Thread
/// safety: thread-safe on a shared engine.
///
/// # Safety
/// `engine` is a live handle; `key_id` is NUL-terminated; `out` points to writable storage for a
/// pointer.
#[no_mangle]
pub unsafe extern "C" fn kp_list_key_policies(
    engine: *const kp_engine,
    key_id: *const c_char,
    out: *mut *mut kp_page,
) -> kp_status {
    guard(|| {
        let (engine, key_id) = (
            from_caller!(engine_arg(engine))?,
            from_caller!(str_arg(key_id, "key_id"))?,
        );
        let out = out_arg(out, "out")?;
        let page = engine.list_key_policies(key_id)?;
        from_caller!(give_page(
            out,
            page_of(page, |name| {
                Ok(Record::new().str(kp_field::PolicyName, &name))
            })?
        ));
        Ok(())
    })
}

// ---- grants ------------------------------------------------------------------------------------

/// A CreateGrant request. Zero-initialise it and set what you need.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct kp_create_grant_request {
    /// The key (key id or key ARN). Required.
    pub key_id: *const c_char,
    /// The principal the grant lets use the key (a principal ARN). Required.
    pub grantee_principal: *const c_char,
    /// The principal that may retire the grant, or NULL for none.
    pub retiring_principal: *const c_char,
    /// `operation_count` operation names as the service spells them ("Encrypt", "Decrypt",
    /// "GenerateDataKey", "Sign", "RetireGrant", ...). At least one.
    pub operations: *const *const c_char,
    /// Number of operations.
    pub operation_count: usize,
    /// Constraint: the request's encryption context must equal this one; NULL for none.
    pub encryption_context_equals: *const kp_context,
    /// Constraint: the request's encryption context must contain this one; NULL for none (give at
    /// most one of the two).
    pub encryption_context_subset: *const kp_context,
    /// A name for the grant (1 to 256 characters), or NULL.
    pub name: *const c_char,
}

/// The record of a grant list entry.
fn grant_record(entry: GrantListEntry) -> Outcome<Record> {
    let operations = entry
        .operations
        .iter()
        .map(|o| o.as_str())
        .collect::<Vec<_>>()
        .join(",");
    Record::new()
        .str(kp_field::KeyId, &entry.key_id)
        .str(kp_field::GrantId, &entry.grant_id)
        .opt_str(kp_field::GrantName, entry.name.as_deref())
        .int(kp_field::CreationDate, entry.creation_date.0)
        .str(kp_field::GranteePrincipal, &entry.grantee_principal)
        .opt_str(
            kp_field::RetiringPrincipal,
            entry.retiring_principal.as_deref(),
        )
        .str(kp_field::IssuingAccount, &entry.issuing_account)
        .str(kp_field::Operations, &operations)
        .json(&entry)
}

/// CreateGrant: lets `request->grantee_principal` use the key for `request->operations`,
/// optionally only with a given encryption context. The grant takes effect at once. Returns a
/// record with GRANT_ID, GRANT_TOKEN (for `kp_retire_grant`) and JSON.
///
/// Ownership: the request's strings are only read. On success `*out` is a new record the caller
/// frees with `kp_record_free`. Thread safety: thread-safe on a shared engine.
///
/// # Safety
/// `engine` is a live handle; `request` points to a valid request (strings NUL-terminated,
/// `operations` holding `operation_count` strings, contexts NULL or live); `out` points to
/// writable storage for a pointer.
#[no_mangle]
pub unsafe extern "C" fn kp_create_grant(
    engine: *const kp_engine,
    request: *const kp_create_grant_request,
    out: *mut *mut kp_record,
) -> kp_status {
    guard(|| {
        let request = {
            let r = from_caller!(item_arg(request))?;
            let operations = from_caller!(array_arg(
                r.operations,
                r.operation_count,
                MAX_GRANT_OPERATIONS,
                "operations",
            ))?
            .iter()
            .map(|&op| Ok(from_caller!(str_arg(op, "operation"))?.parse::<GrantOperation>()?))
            .collect::<Outcome<Vec<_>>>()?;
            let equals = from_caller!(context_arg(
                r.encryption_context_equals,
                "encryption_context_equals"
            ))?;
            let subset = from_caller!(context_arg(
                r.encryption_context_subset,
                "encryption_context_subset"
            ))?;
            let constraints = (equals.is_some() || subset.is_some()).then(|| GrantConstraints {
                encryption_context_equals: equals.cloned(),
                encryption_context_subset: subset.cloned(),
            });
            CreateGrantRequest {
                key_id: from_caller!(str_arg(r.key_id, "key_id"))?.to_owned(),
                grantee_principal: from_caller!(str_arg(r.grantee_principal, "grantee_principal"))?
                    .to_owned(),
                retiring_principal: from_caller!(opt_str_arg(
                    r.retiring_principal,
                    "retiring_principal"
                ))?
                .map(str::to_owned),
                operations,
                constraints,
                name: from_caller!(opt_str_arg(r.name, "name"))?.map(str::to_owned),
            }
        };
        let engine = from_caller!(engine_arg(engine))?;
        let out = out_arg(out, "out")?;
        let response = engine.create_grant(request)?;
        let record = Record::new()
            .str(kp_field::GrantId, &response.grant_id)
            .str(kp_field::GrantToken, &response.grant_token)
            .json(&response)?;
        from_caller!(give_record(out, record));
        Ok(())
    })
}

/// ListGrants: one page of a key's grants, optionally only `grant_id` or only those of
/// `grantee_principal` (each NULL for all); `limit` 1 to 100 (0: 50); `marker` NULL for the first
/// page, else a previous page's `kp_page_next_marker`. Records have KEY_ID (the ARN), GRANT_ID,
/// CREATION_DATE, GRANTEE_PRINCIPAL, ISSUING_ACCOUNT, OPERATIONS, JSON (with the constraints),
/// and when set GRANT_NAME and RETIRING_PRINCIPAL.
///
/// Ownership: on success `*out` is a new page the caller frees with `kp_page_free`. Thread
/// safety: thread-safe on a shared engine.
///
/// # Safety
/// `engine` is a live handle; `key_id` is NUL-terminated; the other strings are NULL or
/// NUL-terminated; `out` points to writable storage for a pointer.
#[no_mangle]
pub unsafe extern "C" fn kp_list_grants(
    engine: *const kp_engine,
    key_id: *const c_char,
    grant_id: *const c_char,
    grantee_principal: *const c_char,
    limit: u32,
    marker: *const c_char,
    out: *mut *mut kp_page,
) -> kp_status {
    guard(|| {
        let (engine, key_id, grant_id, grantee, marker) = (
            from_caller!(engine_arg(engine))?,
            from_caller!(str_arg(key_id, "key_id"))?,
            from_caller!(opt_str_arg(grant_id, "grant_id"))?,
            from_caller!(opt_str_arg(grantee_principal, "grantee_principal"))?,
            from_caller!(opt_str_arg(marker, "marker"))?,
        );
        let out = out_arg(out, "out")?;
        let page = engine.list_grants(key_id, grant_id, grantee, limit_arg(limit), marker)?;
        from_caller!(give_page(out, page_of(page, grant_record)?));
        Ok(())
    })
}

/// ListRetirableGrants: one page of the grants, on any key, that `retiring_principal` may
/// retire; `limit` and `marker` as `kp_list_grants`; records as `kp_list_grants`.
///
/// Ownership and thread safety: as `kp_list_grants`.
///
/// # Safety
/// `engine` is a live handle; `retiring_principal` is NUL-terminated; `marker` is NULL or
/// NUL-terminated; `out` points to writable storage for a pointer.
#[no_mangle]
pub unsafe extern "C" fn kp_list_retirable_grants(
    engine: *const kp_engine,
    retiring_principal: *const c_char,
    limit: u32,
    marker: *const c_char,
    out: *mut *mut kp_page,
) -> kp_status {
    guard(|| {
        let (engine, principal, marker) = (
            from_caller!(engine_arg(engine))?,
            from_caller!(str_arg(retiring_principal, "retiring_principal"))?,
            from_caller!(opt_str_arg(marker, "marker"))?,
        );
        let out = out_arg(out, "out")?;
        let page = engine.list_retirable_grants(principal, limit_arg(limit), marker)?;
        from_caller!(give_page(out, page_of(page, grant_record)?));
        Ok(())
    })
}

/// RetireGrant: deletes a grant named by `grant_token`, or by `key_id` and `grant_id` (give
/// either; the others NULL). Its retiring principal, a grantee the grant allows to retire it, and
/// the issuing account may; others get `KP_STATUS_ACCESS_DENIED`. A token this engine did not
/// issue is `KP_STATUS_INVALID_GRANT_TOKEN`; a grant id the key does not have,
/// `KP_STATUS_INVALID_GRANT_ID`.
///
/// Ownership: nothing is taken. Thread safety: thread-safe on a shared engine.
///
/// # Safety
/// `engine` is a live handle; the strings are NULL or NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn kp_retire_grant(
    engine: *const kp_engine,
    grant_token: *const c_char,
    key_id: *const c_char,
    grant_id: *const c_char,
) -> kp_status {
    guard(|| {
        let (engine, token, key_id, grant_id) = (
            from_caller!(engine_arg(engine))?,
            from_caller!(opt_str_arg(grant_token, "grant_token"))?,
            from_caller!(opt_str_arg(key_id, "key_id"))?,
            from_caller!(opt_str_arg(grant_id, "grant_id"))?,
        );
        Ok(engine.retire_grant(token, key_id, grant_id)?)
    })
}

/// RevokeGrant: deletes a grant of a key (a key administrator's action).
/// `KP_STATUS_INVALID_GRANT_ID` when the key has no such grant.
///
/// Ownership: nothing is taken. Thread safety: thread-safe on a shared engine.
///
/// # Safety
/// `engine` is a live handle; `key_id` and `grant_id` are NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn kp_revoke_grant(
    engine: *const kp_engine,
    key_id: *const c_char,
    grant_id: *const c_char,
) -> kp_status {
    guard(|| {
        let (engine, key_id, grant_id) = (
            from_caller!(engine_arg(engine))?,
            from_caller!(str_arg(key_id, "key_id"))?,
            from_caller!(str_arg(grant_id, "grant_id"))?,
        );
        Ok(engine.revoke_grant(key_id, grant_id)?)
    })
}

// ---- managed keys and last usage ---------------------------------------------------------------

/// The managed key of an integrated service (`service`: 1 to 64 characters of a-z, 0-9 and
/// '-'), created on first use under `alias/aws/<service>`: KEY_MANAGER "AWS", not changeable by
/// customers, usable by the account's principals through the service (a `kp_caller` with
/// `kp_caller_set_via_service("<service>.<region>.amazonaws.com")`). Returns its metadata, a
/// record with the fields listed at `kp_create_key`.
///
/// Ownership: on success `*out` is a new record the caller frees with `kp_record_free`. Thread
/// safety: thread-safe on a shared engine.
///
/// # Safety
/// `engine` is a live handle; `service` is NUL-terminated; `out` points to writable storage for a
/// pointer.
#[no_mangle]
pub unsafe extern "C" fn kp_managed_key(
    engine: *const kp_engine,
    service: *const c_char,
    out: *mut *mut kp_record,
) -> kp_status {
    from_caller!(metadata_call(
        engine,
        service,
        "service",
        out,
        kp::Engine::managed_key
    ))
}

/// GetKeyLastUsage: the last successful cryptographic use of a key, from the engine's audit
/// records. A record with KEY_ID (the ARN), CREATION_DATE (the key's), JSON, and when the engine
/// has an audit log TRACKING_START_DATE, and when the key has been used since
/// LAST_USED_DATE, LAST_USED_OPERATION, CLOUD_TRAIL_EVENT_ID and KMS_REQUEST_ID.
///
/// Ownership: on success `*out` is a new record the caller frees with `kp_record_free`. Thread
/// safety: thread-safe on a shared engine.
///
/// # Safety
/// `engine` is a live handle; `key_id` is NUL-terminated; `out` points to writable storage for a
/// pointer.
#[no_mangle]
pub unsafe extern "C" fn kp_get_key_last_usage(
    engine: *const kp_engine,
    key_id: *const c_char,
    out: *mut *mut kp_record,
) -> kp_status {
    guard(|| {
        let (engine, key_id) = (
            from_caller!(engine_arg(engine))?,
            from_caller!(str_arg(key_id, "key_id"))?,
        );
        let out = out_arg(out, "out")?;
        let usage = engine.get_key_last_usage(key_id)?;
        let last = usage.key_last_usage.as_ref();
        let record = Record::new()
            .str(kp_field::KeyId, &usage.key_id)
            .int(kp_field::CreationDate, usage.key_creation_date.0)
            .opt_int(
                kp_field::TrackingStartDate,
                usage.tracking_start_date.map(|d| d.0),
            )
            .opt_int(kp_field::LastUsedDate, last.map(|l| l.timestamp.0))
            .opt_str(
                kp_field::LastUsedOperation,
                last.map(|l| l.operation.as_str()),
            )
            .opt_str(
                kp_field::CloudTrailEventId,
                last.map(|l| l.cloud_trail_event_id.as_str()),
            )
            .opt_str(
                kp_field::KmsRequestId,
                last.map(|l| l.kms_request_id.as_str()),
            )
            .json(&usage)?;
        from_caller!(give_record(out, record));
        Ok(())
    })
}
