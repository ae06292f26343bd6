//! The control plane: key lifecycle, aliases, tags, rotation and deletion.
//!
//! Every call here is thread-safe on a shared `kp_engine` (the engine serialises control-plane
//! calls internally). String results come back as `kp_record`s and lists as `kp_page`s.

use std::ffi::c_char;

use kp::{CreateKeyRequest, KeyMetadata, Tag};

use super::caller::from_caller;
use super::failure::{Failure, Outcome};
use super::ffi::opt_struct_arg;
use super::ffi::{array_arg, guard, opt_str_arg, out_arg, str_arg};
use super::handles::{handle_ref, kp_engine};
use super::record::{
    give_opt_record, give_page, give_record, kp_field, kp_page, kp_record, page_of, Record,
};
use super::status::kp_status;

/// Most tags one call takes (the engine allows 50 per key).
const MAX_TAGS_PER_CALL: usize = 1024;

/// A tag: a key and a value, NUL-terminated UTF-8.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct kp_tag {
    /// The tag's key (1 to 128 characters, not starting with "aws:").
    pub key: *const c_char,
    /// The tag's value (0 to 256 characters).
    pub value: *const c_char,
}

/// Options of CreateKey. Every field may be NULL/0 for the service's default. Zero-initialise it
/// (`kp_create_key_options o = {0};`) and set what you need.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct kp_create_key_options {
    /// Description (up to 8192 characters), or NULL for none.
    pub description: *const c_char,
    /// Key usage as the service spells it ("ENCRYPT_DECRYPT", "SIGN_VERIFY",
    /// "GENERATE_VERIFY_MAC", "KEY_AGREEMENT"), or NULL for the key spec's default.
    pub key_usage: *const c_char,
    /// Key spec ("SYMMETRIC_DEFAULT", "RSA_2048", "HMAC_256", ...), or NULL for
    /// SYMMETRIC_DEFAULT. Specs this build does not support fail with
    /// `KP_STATUS_UNSUPPORTED_OPERATION`.
    pub key_spec: *const c_char,
    /// Origin ("AWS_KMS", "EXTERNAL", ...), or NULL for AWS_KMS.
    pub origin: *const c_char,
    /// `tag_count` tags, or NULL when `tag_count` is 0.
    pub tags: *const kp_tag,
    /// Number of tags.
    pub tag_count: usize,
    /// 1 for a multi-Region primary key (id `mrk-...`; replicate it with `kp_replicate_key`), 0 for
    /// a single-Region key.
    pub multi_region: u32,
    /// A key policy document (JSON, up to 32 KiB), or NULL for the default policy (the account's
    /// root principal may do everything). A policy that would not let the caller change it again
    /// is refused with `KP_STATUS_MALFORMED_POLICY_DOCUMENT` unless
    /// `bypass_policy_lockout_safety_check` is 1.
    pub policy: *const c_char,
    /// 1 to create the key even if its policy would lock the caller out of it, 0 (the default) to
    /// refuse.
    pub bypass_policy_lockout_safety_check: u32,
}

/// A service enumeration given by its spelling; NULL is `None`.
///
/// # Safety
/// As [`opt_str_arg`].
pub(crate) unsafe fn parse_opt<T: std::str::FromStr<Err = kp::Error>>(
    ptr: *const c_char,
    what: &str,
) -> Outcome<Option<T>> {
    match from_caller!(opt_str_arg(ptr, what))? {
        Some(s) => Ok(Some(s.parse::<T>()?)),
        None => Ok(None),
    }
}

/// Tags from a C array.
///
/// # Safety
/// `tags` is NULL or points to `count` tags with valid strings.
unsafe fn tags_arg(tags: *const kp_tag, count: usize) -> Outcome<Vec<Tag>> {
    let tags = from_caller!(array_arg(tags, count, MAX_TAGS_PER_CALL, "tags"))?;
    tags.iter()
        .map(|t| {
            let (key, value) = (
                from_caller!(str_arg(t.key, "tag key"))?,
                from_caller!(str_arg(t.value, "tag value"))?,
            );
            Ok(Tag {
                tag_key: key.to_owned(),
                tag_value: value.to_owned(),
            })
        })
        .collect()
}

/// The record of a key's metadata.
pub(crate) fn metadata_record(md: &KeyMetadata) -> Outcome<Record> {
    Record::new()
        .str(kp_field::KeyId, &md.key_id)
        .str(kp_field::Arn, &md.arn)
        .str(kp_field::AwsAccountId, &md.aws_account_id)
        .str(kp_field::Description, &md.description)
        .str(kp_field::KeyUsage, md.key_usage.as_str())
        .str(kp_field::KeyState, md.key_state.as_str())
        .str(kp_field::KeySpec, md.key_spec.as_str())
        .str(kp_field::Origin, md.origin.as_str())
        .str(kp_field::KeyManager, md.key_manager.as_str())
        .opt_str(
            kp_field::CurrentKeyMaterialId,
            md.current_key_material_id.as_deref(),
        )
        .opt_int(kp_field::ValidTo, md.valid_to.map(|t| t.0))
        .opt_str(
            kp_field::ExpirationModel,
            md.expiration_model.map(|e| e.as_str()),
        )
        .flag(kp_field::Enabled, md.enabled)
        .flag(kp_field::MultiRegion, md.multi_region)
        .flag(kp_field::KeyRotationEnabled, md.key_rotation_enabled)
        .int(kp_field::CreationDate, md.creation_date.0)
        .opt_int(kp_field::DeletionDate, md.deletion_date.map(|d| d.0))
        .opt_int(
            kp_field::PendingWindowInDays,
            md.pending_deletion_window_in_days.map(i64::from),
        )
        .list(kp_field::EncryptionAlgorithms, &md.encryption_algorithms)
        .list(kp_field::SigningAlgorithms, &md.signing_algorithms)
        .list(kp_field::MacAlgorithms, &md.mac_algorithms)
        .list(
            kp_field::KeyAgreementAlgorithms,
            &md.key_agreement_algorithms,
        )
        .opt_str(
            kp_field::CustomKeyStoreId,
            md.custom_key_store_id.as_deref(),
        )
        .opt_str(
            kp_field::CloudHsmClusterId,
            md.cloud_hsm_cluster_id.as_deref(),
        )
        .json(md)
}

/// The engine behind a handle.
///
/// # Safety
/// `engine` is NULL or a live handle for `'a`.
pub(crate) unsafe fn engine_arg<'a>(engine: *const kp_engine) -> Outcome<&'a kp::Engine> {
    from_caller!(handle_ref(engine, "engine")).map(|h: &super::handles::EngineHandle| &h.engine)
}

pub(crate) fn limit_arg(limit: u32) -> Option<u32> {
    (limit != 0).then_some(limit)
}

/// The CreateKey request that `options` (NULL: the defaults) describes.
///
/// # Safety
/// `options` is NULL or valid (strings NUL-terminated, `tags` holding `tag_count` tags).
pub(crate) unsafe fn create_key_request(
    options: *const kp_create_key_options,
) -> Outcome<CreateKeyRequest> {
    let mut request = CreateKeyRequest::default();
    // SAFETY: the caller promises NULL or a valid struct.
    if let Some(o) = unsafe { opt_struct_arg(options, "options") }? {
        request.description =
            from_caller!(opt_str_arg(o.description, "description"))?.map(str::to_owned);
        request.key_usage = from_caller!(parse_opt(o.key_usage, "key_usage"))?;
        request.key_spec = from_caller!(parse_opt(o.key_spec, "key_spec"))?;
        request.origin = from_caller!(parse_opt(o.origin, "origin"))?;
        request.tags = from_caller!(tags_arg(o.tags, o.tag_count))?;
        request.policy = from_caller!(opt_str_arg(o.policy, "policy"))?.map(str::to_owned);
        request.multi_region = match o.multi_region {
            0 => None,
            1 => Some(true),
            other => {
                return Err(Failure::new(
                    kp_status::InvalidArgument,
                    format!("multi_region is 0 or 1, not {other}"),
                ))
            }
        };
        request.bypass_policy_lockout_safety_check = match o.bypass_policy_lockout_safety_check {
            0 => false,
            1 => true,
            other => {
                return Err(Failure::new(
                    kp_status::InvalidArgument,
                    format!("bypass_policy_lockout_safety_check is 0 or 1, not {other}"),
                ))
            }
        };
    }
    Ok(request)
}

/// CreateKey: makes a key with `options` (NULL: a SYMMETRIC_DEFAULT encryption key with no
/// description or tags) and returns its metadata in `*out`: a record with the fields KEY_ID, ARN,
/// AWS_ACCOUNT_ID, DESCRIPTION, KEY_USAGE, KEY_STATE, KEY_SPEC, ORIGIN, KEY_MANAGER, ENABLED,
/// MULTI_REGION, KEY_ROTATION_ENABLED, CREATION_DATE, ENCRYPTION_ALGORITHMS, SIGNING_ALGORITHMS,
/// MAC_ALGORITHMS, KEY_AGREEMENT_ALGORITHMS, JSON, and when present CURRENT_KEY_MATERIAL_ID,
/// DELETION_DATE, PENDING_WINDOW_IN_DAYS.
///
/// Ownership: `options` and its strings are only read. On success `*out` is a new record the
/// caller frees with `kp_record_free`. Thread safety: thread-safe on a shared engine.
///
/// # Safety
/// `engine` is a live handle; `options` is NULL or valid (strings NUL-terminated, `tags` holding
/// `tag_count` tags); `out` points to writable storage for a pointer.
#[no_mangle]
pub unsafe extern "C" fn kp_create_key(
    engine: *const kp_engine,
    options: *const kp_create_key_options,
    out: *mut *mut kp_record,
) -> kp_status {
    guard(|| {
        let engine = from_caller!(engine_arg(engine))?;
        let out = out_arg(out, "out")?;
        let request = from_caller!(create_key_request(options))?;
        let metadata = engine.create_key(request)?;
        let record = metadata_record(&metadata)?;
        from_caller!(give_record(out, record));
        Ok(())
    })
}

/// DescribeKey: the metadata of the key named by `key_id` (key id, key ARN, alias name or alias
/// ARN), as a record with the fields listed at `kp_create_key`.
///
/// Ownership: on success `*out` is a new record the caller frees with `kp_record_free`. Thread
/// safety: thread-safe on a shared engine.
///
/// # Safety
/// `engine` is a live handle; `key_id` is a NUL-terminated string; `out` points to writable
/// storage for a pointer.
#[no_mangle]
pub unsafe extern "C" fn kp_describe_key(
    engine: *const kp_engine,
    key_id: *const c_char,
    out: *mut *mut kp_record,
) -> kp_status {
    from_caller!(metadata_call(
        engine,
        key_id,
        "key_id",
        out,
        kp::Engine::describe_key
    ))
}

/// Runs a control-plane call that takes one string (`what`: a key id, a service name) and
/// answers a key's metadata, which goes to the caller as a record through `out`.
///
/// # Safety
/// `engine` is a live handle; `arg` is NULL or NUL-terminated; `out` is NULL or writable.
pub(crate) unsafe fn metadata_call(
    engine: *const kp_engine,
    arg: *const c_char,
    what: &str,
    out: *mut *mut kp_record,
    call: impl FnOnce(&kp::Engine, &str) -> kp::Result<KeyMetadata>,
) -> kp_status {
    guard(|| {
        let (engine, arg) = (
            from_caller!(engine_arg(engine))?,
            from_caller!(str_arg(arg, what))?,
        );
        let out = out_arg(out, "out")?;
        let record = metadata_record(&call(engine, arg)?)?;
        from_caller!(give_record(out, record));
        Ok(())
    })
}

/// ListKeys: one page of keys in key id order; `limit` 1 to 1000 (0: 100); `marker` NULL for the
/// first page, else a previous page's `kp_page_next_marker`. Records have KEY_ID, ARN and JSON.
///
/// Ownership: on success `*out` is a new page the caller frees with `kp_page_free`. Thread
/// safety: thread-safe on a shared engine.
///
/// # Safety
/// `engine` is a live handle; `marker` is NULL or NUL-terminated; `out` points to writable
/// storage for a pointer.
#[no_mangle]
pub unsafe extern "C" fn kp_list_keys(
    engine: *const kp_engine,
    limit: u32,
    marker: *const c_char,
    out: *mut *mut kp_page,
) -> kp_status {
    guard(|| {
        let (engine, marker) = (
            from_caller!(engine_arg(engine))?,
            from_caller!(opt_str_arg(marker, "marker"))?,
        );
        let out = out_arg(out, "out")?;
        let page = engine.list_keys(limit_arg(limit), marker)?;
        from_caller!(give_page(
            out,
            page_of(page, |e| {
                Record::new()
                    .str(kp_field::KeyId, &e.key_id)
                    .str(kp_field::Arn, &e.key_arn)
                    .json(&e)
            })?
        ));
        Ok(())
    })
}

/// Runs a control-plane call that takes a key id and gives nothing back.
///
/// # Safety
/// `engine` is a live handle; `key_id` is NULL or NUL-terminated.
unsafe fn key_call(
    engine: *const kp_engine,
    key_id: *const c_char,
    call: impl FnOnce(&kp::Engine, &str) -> kp::Result<()>,
) -> kp_status {
    guard(|| {
        let (engine, key_id) = (
            from_caller!(engine_arg(engine))?,
            from_caller!(str_arg(key_id, "key_id"))?,
        );
        Ok(call(engine, key_id)?)
    })
}

/// UpdateKeyDescription: replaces the key's description (up to 8192 characters).
///
/// Ownership: strings are copied. Thread safety: thread-safe on a shared engine.
///
/// # Safety
/// `engine` is a live handle; `key_id` and `description` are NUL-terminated strings.
#[no_mangle]
pub unsafe extern "C" fn kp_update_key_description(
    engine: *const kp_engine,
    key_id: *const c_char,
    description: *const c_char,
) -> kp_status {
    guard(|| {
        let (engine, key_id, description) = (
            from_caller!(engine_arg(engine))?,
            from_caller!(str_arg(key_id, "key_id"))?,
            from_caller!(str_arg(description, "description"))?,
        );
        Ok(engine.update_key_description(key_id, description)?)
    })
}

/// EnableKey: a Disabled key becomes Enabled (an Enabled one stays so).
///
/// Ownership: nothing is taken. Thread safety: thread-safe on a shared engine.
///
/// # Safety
/// `engine` is a live handle; `key_id` is a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn kp_enable_key(
    engine: *const kp_engine,
    key_id: *const c_char,
) -> kp_status {
    from_caller!(key_call(engine, key_id, |e: &kp::Engine, k: &str| e.enable_key(k)))
}

/// DisableKey: an Enabled key becomes Disabled; data-plane calls then fail with
/// `KP_STATUS_DISABLED`.
///
/// Ownership: nothing is taken. Thread safety: thread-safe on a shared engine.
///
/// # Safety
/// `engine` is a live handle; `key_id` is a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn kp_disable_key(
    engine: *const kp_engine,
    key_id: *const c_char,
) -> kp_status {
    from_caller!(key_call(engine, key_id, |e: &kp::Engine, k: &str| e.disable_key(k)))
}

/// ScheduleKeyDeletion: deletes the key after `pending_window_in_days` (7 to 30; 0: 30). Until
/// then the key is PendingDeletion and the deletion can be cancelled. `*out` (optional) receives
/// a record with KEY_ID (the ARN), DELETION_DATE, KEY_STATE, PENDING_WINDOW_IN_DAYS and JSON.
///
/// Ownership: when `out` is not NULL, `*out` is a new record the caller frees with
/// `kp_record_free`. Thread safety: thread-safe on a shared engine.
///
/// # Safety
/// `engine` is a live handle; `key_id` is a NUL-terminated string; `out` is NULL or points to
/// writable storage for a pointer.
#[no_mangle]
pub unsafe extern "C" fn kp_schedule_key_deletion(
    engine: *const kp_engine,
    key_id: *const c_char,
    pending_window_in_days: u32,
    out: *mut *mut kp_record,
) -> kp_status {
    guard(|| {
        let (engine, key_id) = (
            from_caller!(engine_arg(engine))?,
            from_caller!(str_arg(key_id, "key_id"))?,
        );
        if !out.is_null() {
            out_arg(out, "out")?;
        }
        let response = engine.schedule_key_deletion(key_id, limit_arg(pending_window_in_days))?;
        let record = Record::new()
            .str(kp_field::KeyId, &response.key_id)
            .opt_int(kp_field::DeletionDate, response.deletion_date.map(|d| d.0))
            .str(kp_field::KeyState, response.key_state.as_str())
            .int(
                kp_field::PendingWindowInDays,
                i64::from(response.pending_window_in_days),
            )
            .json(&response)?;
        from_caller!(give_opt_record(out, || record))
    })
}

/// CancelKeyDeletion: the key leaves PendingDeletion and becomes Disabled, as in the service.
/// `*out` (optional) receives a record with KEY_ID (the ARN).
///
/// Ownership: when `out` is not NULL, `*out` is a new record the caller frees. Thread safety:
/// thread-safe on a shared engine.
///
/// # Safety
/// `engine` is a live handle; `key_id` is a NUL-terminated string; `out` is NULL or points to
/// writable storage for a pointer.
#[no_mangle]
pub unsafe extern "C" fn kp_cancel_key_deletion(
    engine: *const kp_engine,
    key_id: *const c_char,
    out: *mut *mut kp_record,
) -> kp_status {
    guard(|| {
        let (engine, key_id) = (
            from_caller!(engine_arg(engine))?,
            from_caller!(str_arg(key_id, "key_id"))?,
        );
        if !out.is_null() {
            out_arg(out, "out")?;
        }
        let arn = engine.cancel_key_deletion(key_id)?;
        from_caller!(give_opt_record(out, || Record::new().str(kp_field::KeyId, &arn)))
    })
}

/// Runs an alias call.
///
/// # Safety
/// `engine` is a live handle; the strings are NULL or NUL-terminated.
unsafe fn alias_call(
    engine: *const kp_engine,
    alias_name: *const c_char,
    target_key_id: *const c_char,
    call: impl FnOnce(&kp::Engine, &str, Option<&str>) -> kp::Result<()>,
    needs_target: bool,
) -> kp_status {
    guard(|| {
        let (engine, alias) = (
            from_caller!(engine_arg(engine))?,
            from_caller!(str_arg(alias_name, "alias_name"))?,
        );
        let target = if needs_target {
            Some(from_caller!(str_arg(target_key_id, "target_key_id"))?)
        } else {
            None
        };
        Ok(call(engine, alias, target)?)
    })
}

/// CreateAlias: makes `alias_name` ("alias/..." or its alias ARN) point to a key.
///
/// Ownership: strings are copied. Thread safety: thread-safe on a shared engine.
///
/// # Safety
/// `engine` is a live handle; both strings are NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn kp_create_alias(
    engine: *const kp_engine,
    alias_name: *const c_char,
    target_key_id: *const c_char,
) -> kp_status {
    from_caller!(alias_call(
        engine,
        alias_name,
        target_key_id,
        |e: &kp::Engine, a: &str, t: Option<&str>| e.create_alias(a, t.unwrap_or_default()),
        true,
    ))
}

/// UpdateAlias: points an existing alias at another key of the same type and usage.
///
/// Ownership: strings are copied. Thread safety: thread-safe on a shared engine.
///
/// # Safety
/// `engine` is a live handle; both strings are NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn kp_update_alias(
    engine: *const kp_engine,
    alias_name: *const c_char,
    target_key_id: *const c_char,
) -> kp_status {
    from_caller!(alias_call(
        engine,
        alias_name,
        target_key_id,
        |e: &kp::Engine, a: &str, t: Option<&str>| e.update_alias(a, t.unwrap_or_default()),
        true,
    ))
}

/// DeleteAlias: deletes an alias; its key is unaffected.
///
/// Ownership: nothing is taken. Thread safety: thread-safe on a shared engine.
///
/// # Safety
/// `engine` is a live handle; `alias_name` is NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn kp_delete_alias(
    engine: *const kp_engine,
    alias_name: *const c_char,
) -> kp_status {
    from_caller!(alias_call(
        engine,
        alias_name,
        std::ptr::null(),
        |e: &kp::Engine, a: &str, _: Option<&str>| e.delete_alias(a),
        false,
    ))
}

/// ListAliases: one page of aliases by name, of every key (`key_id` NULL) or of one key; `limit`
/// 1 to 100 (0: 50); `marker` as for `kp_list_keys`. Records have ALIAS_NAME, ALIAS_ARN,
/// TARGET_KEY_ID, CREATION_DATE, LAST_UPDATED_DATE and JSON; the predefined `alias/aws/<service>`
/// alias of an integrated service whose managed key does not exist yet has no TARGET_KEY_ID,
/// CREATION_DATE or LAST_UPDATED_DATE (`kp_record_string` answers NULL, `kp_record_int` false).
///
/// Ownership: on success `*out` is a new page the caller frees with `kp_page_free`. Thread
/// safety: thread-safe on a shared engine.
///
/// # Safety
/// `engine` is a live handle; `key_id` and `marker` are NULL or NUL-terminated; `out` points to
/// writable storage for a pointer.
#[no_mangle]
pub unsafe extern "C" fn kp_list_aliases(
    engine: *const kp_engine,
    key_id: *const c_char,
    limit: u32,
    marker: *const c_char,
    out: *mut *mut kp_page,
) -> kp_status {
    guard(|| {
        let (engine, key_id, marker) = (
            from_caller!(engine_arg(engine))?,
            from_caller!(opt_str_arg(key_id, "key_id"))?,
            from_caller!(opt_str_arg(marker, "marker"))?,
        );
        let out = out_arg(out, "out")?;
        let page = engine.list_aliases(key_id, limit_arg(limit), marker)?;
        from_caller!(give_page(
            out,
            page_of(page, |a| {
                Record::new()
                    .str(kp_field::AliasName, &a.alias_name)
                    .str(kp_field::AliasArn, &a.alias_arn)
                    .opt_str(kp_field::TargetKeyId, a.target_key_id.as_deref())
                    .opt_int(kp_field::CreationDate, a.creation_date.map(|d| d.0))
                    .opt_int(kp_field::LastUpdatedDate, a.last_updated_date.map(|d| d.0))
                    .json(&a)
            })?
        ));
        Ok(())
    })
}

/// TagResource: adds `count` tags to a key, or overwrites the values of tags it has (at most 50
/// per key).
///
/// Ownership: strings are copied. Thread safety: thread-safe on a shared engine.
///
/// # Safety
/// `engine` is a live handle; `key_id` is NUL-terminated; `tags` points to `count` tags with
/// NUL-terminated strings (NULL when `count` is 0).
#[no_mangle]
pub unsafe extern "C" fn kp_tag_resource(
    engine: *const kp_engine,
    key_id: *const c_char,
    tags: *const kp_tag,
    count: usize,
) -> kp_status {
    guard(|| {
        let (engine, key_id, tags) = (
            from_caller!(engine_arg(engine))?,
            from_caller!(str_arg(key_id, "key_id"))?,
            from_caller!(tags_arg(tags, count))?,
        );
        Ok(engine.tag_resource(key_id, tags)?)
    })
}

/// UntagResource: removes the tags with the `count` given keys; keys the key does not carry are
/// ignored.
///
/// Ownership: nothing is taken. Thread safety: thread-safe on a shared engine.
///
/// # Safety
/// `engine` is a live handle; `key_id` is NUL-terminated; `tag_keys` points to `count`
/// NUL-terminated strings (NULL when `count` is 0).
#[no_mangle]
pub unsafe extern "C" fn kp_untag_resource(
    engine: *const kp_engine,
    key_id: *const c_char,
    tag_keys: *const *const c_char,
    count: usize,
) -> kp_status {
    guard(|| {
        let (engine, key_id, keys) = (
            from_caller!(engine_arg(engine))?,
            from_caller!(str_arg(key_id, "key_id"))?,
            from_caller!(array_arg(tag_keys, count, MAX_TAGS_PER_CALL, "tag_keys"))?,
        );
        let keys = keys
            .iter()
            .map(|&k| from_caller!(str_arg(k, "tag key")))
            .collect::<Outcome<Vec<&str>>>()?;
        Ok(engine.untag_resource(key_id, &keys)?)
    })
}

/// ListResourceTags: one page of a key's tags in key order; `limit` 1 to 50 (0: 50); `marker` as
/// for `kp_list_keys`. Records have TAG_KEY, TAG_VALUE and JSON.
///
/// Ownership: on success `*out` is a new page the caller frees with `kp_page_free`. Thread
/// safety: thread-safe on a shared engine.
///
/// # Safety
/// `engine` is a live handle; `key_id` is NUL-terminated; `marker` is NULL or NUL-terminated;
/// `out` points to writable storage for a pointer.
#[no_mangle]
pub unsafe extern "C" fn kp_list_resource_tags(
    engine: *const kp_engine,
    key_id: *const c_char,
    limit: u32,
    marker: *const c_char,
    out: *mut *mut kp_page,
) -> kp_status {
    guard(|| {
        let (engine, key_id, marker) = (
            from_caller!(engine_arg(engine))?,
            from_caller!(str_arg(key_id, "key_id"))?,
            from_caller!(opt_str_arg(marker, "marker"))?,
        );
        let out = out_arg(out, "out")?;
        let page = engine.list_resource_tags(key_id, limit_arg(limit), marker)?;
        from_caller!(give_page(
            out,
            page_of(page, |t| {
                Record::new()
                    .str(kp_field::TagKey, &t.tag_key)
                    .str(kp_field::TagValue, &t.tag_value)
                    .json(&t)
            })?
        ));
        Ok(())
    })
}

/// EnableKeyRotation: rotates the key automatically every `rotation_period_in_days` (90 to 2560;
/// 0: 365). Symmetric keys with engine-made material only.
///
/// Ownership: nothing is taken. Thread safety: thread-safe on a shared engine.
///
/// # Safety
/// `engine` is a live handle; `key_id` is NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn kp_enable_key_rotation(
    engine: *const kp_engine,
    key_id: *const c_char,
    rotation_period_in_days: u32,
) -> kp_status {
    from_caller!(key_call(engine, key_id, |e: &kp::Engine, k: &str| {
        e.enable_key_rotation(k, limit_arg(rotation_period_in_days))
    }))
}

/// DisableKeyRotation: turns automatic rotation off.
///
/// Ownership: nothing is taken. Thread safety: thread-safe on a shared engine.
///
/// # Safety
/// `engine` is a live handle; `key_id` is NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn kp_disable_key_rotation(
    engine: *const kp_engine,
    key_id: *const c_char,
) -> kp_status {
    from_caller!(key_call(engine, key_id, |e: &kp::Engine, k: &str| e
        .disable_key_rotation(k)))
}

/// GetKeyRotationStatus: a record with KEY_ID (the ARN), KEY_ROTATION_ENABLED, JSON, and while
/// rotation is on ROTATION_PERIOD_IN_DAYS and NEXT_ROTATION_DATE.
///
/// Ownership: on success `*out` is a new record the caller frees with `kp_record_free`. Thread
/// safety: thread-safe on a shared engine.
///
/// # Safety
/// `engine` is a live handle; `key_id` is NUL-terminated; `out` points to writable storage for a
/// pointer.
#[no_mangle]
pub unsafe extern "C" fn kp_get_key_rotation_status(
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
        let status = engine.get_key_rotation_status(key_id)?;
        let record = Record::new()
            .str(kp_field::KeyId, &status.key_id)
            .flag(kp_field::KeyRotationEnabled, status.key_rotation_enabled)
            .opt_int(
                kp_field::RotationPeriodInDays,
                status.rotation_period_in_days.map(i64::from),
            )
            .opt_int(
                kp_field::NextRotationDate,
                status.next_rotation_date.map(|d| d.0),
            )
            .json(&status)?;
        from_caller!(give_record(out, record));
        Ok(())
    })
}

/// RotateKeyOnDemand: adds new key material now (at most 25 times per key); older material keeps
/// decrypting. `*out` (optional) receives a record with KEY_ID (the ARN).
///
/// Ownership: when `out` is not NULL, `*out` is a new record the caller frees. Thread safety:
/// thread-safe on a shared engine.
///
/// # Safety
/// `engine` is a live handle; `key_id` is NUL-terminated; `out` is NULL or points to writable
/// storage for a pointer.
#[no_mangle]
pub unsafe extern "C" fn kp_rotate_key_on_demand(
    engine: *const kp_engine,
    key_id: *const c_char,
    out: *mut *mut kp_record,
) -> kp_status {
    guard(|| {
        let (engine, key_id) = (
            from_caller!(engine_arg(engine))?,
            from_caller!(str_arg(key_id, "key_id"))?,
        );
        if !out.is_null() {
            out_arg(out, "out")?;
        }
        let arn = engine.rotate_key_on_demand(key_id)?;
        from_caller!(give_opt_record(out, || Record::new().str(kp_field::KeyId, &arn)))
    })
}

/// ListKeyRotations: one page of a key's rotations, oldest first; `limit` 1 to 1000 (0: 100);
/// `marker` as for `kp_list_keys`. Records have KEY_ID (the ARN), KEY_MATERIAL_ID,
/// ROTATION_DATE, ROTATION_TYPE and JSON.
///
/// Ownership: on success `*out` is a new page the caller frees with `kp_page_free`. Thread
/// safety: thread-safe on a shared engine.
///
/// # Safety
/// `engine` is a live handle; `key_id` is NUL-terminated; `marker` is NULL or NUL-terminated;
/// `out` points to writable storage for a pointer.
#[no_mangle]
pub unsafe extern "C" fn kp_list_key_rotations(
    engine: *const kp_engine,
    key_id: *const c_char,
    limit: u32,
    marker: *const c_char,
    out: *mut *mut kp_page,
) -> kp_status {
    guard(|| {
        let (engine, key_id, marker) = (
            from_caller!(engine_arg(engine))?,
            from_caller!(str_arg(key_id, "key_id"))?,
            from_caller!(opt_str_arg(marker, "marker"))?,
        );
        let out = out_arg(out, "out")?;
        let page = engine.list_key_rotations(key_id, limit_arg(limit), marker)?;
        from_caller!(give_page(
            out,
            page_of(page, |r| {
                Record::new()
                    .str(kp_field::KeyId, &r.key_id)
                    .str(kp_field::KeyMaterialId, &r.key_material_id)
                    .opt_int(kp_field::RotationDate, r.rotation_date.map(|d| d.0))
                    .opt_str(kp_field::RotationType, r.rotation_type.map(|t| t.as_str()))
                    .opt_str(
                        kp_field::KeyMaterialState,
                        r.key_material_state.map(|s| s.as_str()),
                    )
                    .opt_str(kp_field::ImportState, r.import_state.map(|s| s.as_str()))
                    .opt_str(
                        kp_field::KeyMaterialDescription,
                        r.key_material_description.as_deref(),
                    )
                    .opt_str(
                        kp_field::ExpirationModel,
                        r.expiration_model.map(|e| e.as_str()),
                    )
                    .opt_int(kp_field::ValidTo, r.valid_to.map(|t| t.0))
                    .json(&r)
            })?
        ));
        Ok(())
    })
}

/// Options of ReplicateKey for the new replica key. Zero-initialise it and set what you need;
/// NULL options are all defaults.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct kp_replicate_key_options {
    /// The replica's description, or NULL for none.
    pub description: *const c_char,
    /// The replica's key policy (JSON), or NULL for the default policy.
    pub policy: *const c_char,
    /// `tag_count` tags of the replica, or NULL when `tag_count` is 0.
    pub tags: *const kp_tag,
    /// Number of tags.
    pub tag_count: usize,
    /// 1 to create the replica even if its policy would lock the caller out of it.
    pub bypass_policy_lockout_safety_check: u32,
}

/// ReplicateKey: a replica of the multi-Region primary key `key_id` (key id or key ARN) in
/// `replica_region`, whose store the engine was given (`kp_config_add_region_store`). `*out`
/// (optional) receives a record with KEY_ID, ARN (in the replica's Region), KEY_STATE and JSON
/// (the service's ReplicateKey response: ReplicaKeyMetadata, ReplicaPolicy, ReplicaTags).
/// A single-Region key or a replica is `KP_STATUS_UNSUPPORTED_OPERATION`; a Region that already
/// has the key `KP_STATUS_ALREADY_EXISTS`.
///
/// Ownership: strings are copied; when `out` is not NULL, `*out` is a new record the caller frees
/// with `kp_record_free`. Thread safety: thread-safe on a shared engine.
///
/// # Safety
/// `engine` is a live handle; `key_id` and `replica_region` are NUL-terminated strings;
/// `options` is NULL or points to options whose strings and tags are valid; `out` is NULL or
/// points to writable storage for a pointer.
#[no_mangle]
pub unsafe extern "C" fn kp_replicate_key(
    engine: *const kp_engine,
    key_id: *const c_char,
    replica_region: *const c_char,
    options: *const kp_replicate_key_options,
    out: *mut *mut kp_record,
) -> kp_status {
    guard(|| {
        let (engine, key_id, region) = (
            from_caller!(engine_arg(engine))?,
            from_caller!(str_arg(key_id, "key_id"))?,
            from_caller!(str_arg(replica_region, "replica_region"))?,
        );
        if !out.is_null() {
            out_arg(out, "out")?;
        }
        let mut request = kp::ReplicateKeyRequest {
            key_id: key_id.to_owned(),
            replica_region: region.to_owned(),
            ..Default::default()
        };
        // SAFETY: the caller promises NULL or a valid struct.
        if let Some(o) = unsafe { opt_struct_arg(options, "options") }? {
            request.description =
                from_caller!(opt_str_arg(o.description, "description"))?.map(str::to_owned);
            request.policy = from_caller!(opt_str_arg(o.policy, "policy"))?.map(str::to_owned);
            request.tags = from_caller!(tags_arg(o.tags, o.tag_count))?;
            request.bypass_policy_lockout_safety_check = o.bypass_policy_lockout_safety_check != 0;
        }
        let response = engine.replicate_key(request)?;
        let md = &response.replica_key_metadata;
        let record = Record::new()
            .str(kp_field::KeyId, &md.key_id)
            .str(kp_field::Arn, &md.arn)
            .str(kp_field::KeyState, md.key_state.as_str())
            .json(&response)?;
        from_caller!(give_opt_record(out, || record))
    })
}

/// UpdatePrimaryRegion: the replica of the multi-Region key `key_id` (the primary key, in this
/// engine's Region) in `primary_region` becomes the primary key, and this one a replica. A Region
/// without a replica is `KP_STATUS_NOT_FOUND`; a replica or a single-Region key
/// `KP_STATUS_UNSUPPORTED_OPERATION`.
///
/// Ownership: strings are copied. Thread safety: thread-safe on a shared engine.
///
/// # Safety
/// `engine` is a live handle; `key_id` and `primary_region` are NUL-terminated strings.
#[no_mangle]
pub unsafe extern "C" fn kp_update_primary_region(
    engine: *const kp_engine,
    key_id: *const c_char,
    primary_region: *const c_char,
) -> kp_status {
    guard(|| {
        let (engine, key_id, region) = (
            from_caller!(engine_arg(engine))?,
            from_caller!(str_arg(key_id, "key_id"))?,
            from_caller!(str_arg(primary_region, "primary_region"))?,
        );
        Ok(engine.update_primary_region(key_id, region)?)
    })
}
