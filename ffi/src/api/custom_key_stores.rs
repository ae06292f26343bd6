//! Custom key stores through the C ABI: the six operations, CreateKey in a store, and
//! GenerateRandom from a store's HSM. The PKCS#11 tokens are configured with
//! `kp_config_add_pkcs11_token` (`docs/custom-key-stores.md`).

use std::ffi::c_char;

use kp::{CreateCustomKeyStoreRequest, SecretBytes, UpdateCustomKeyStoreRequest};
use zeroize::Zeroize;

use super::control::kp_create_key_options;
use super::control::{create_key_request, engine_arg, limit_arg, metadata_record};
use super::ffi::{bytes_arg, guard, opt_str_arg, out_arg, out_bytes, str_arg, Failure, Outcome};
use super::handles::kp_engine;
use super::record::{give_page, give_record, kp_field, kp_page, kp_record, Record};
use super::status::kp_status;

/// A password (the token's user PIN) of `len` bytes at `ptr`; NULL with 0 is none.
///
/// # Safety
/// As [`bytes_arg`].
unsafe fn password_arg(ptr: *const u8, len: usize) -> Outcome<Option<SecretBytes>> {
    if ptr.is_null() && len == 0 {
        return Ok(None);
    }
    // SAFETY: forwarded from the caller.
    let bytes = unsafe { bytes_arg(ptr, len, "password") }?;
    Ok(Some(SecretBytes::from_vec(bytes.to_vec())))
}

/// CreateCustomKeyStore of type AWS_CLOUDHSM: a store on the PKCS#11 token configured as
/// `cloud_hsm_cluster_id`, with the token's user PIN as its password (`password_len` bytes, copied
/// into locked memory and sealed in the key store; never returned). `*out` is a record with
/// CUSTOM_KEY_STORE_ID. The store starts DISCONNECTED.
///
/// Ownership: strings and the password are copied; on success `*out` is a new record the caller
/// frees with `kp_record_free`. Thread safety: thread-safe on a shared engine.
///
/// # Safety
/// `engine` is a live handle; the strings are NUL-terminated; `password` points to `password_len`
/// readable bytes; `out` points to writable storage for a pointer.
#[no_mangle]
pub unsafe extern "C" fn kp_create_custom_key_store(
    engine: *const kp_engine,
    name: *const c_char,
    cloud_hsm_cluster_id: *const c_char,
    trust_anchor_certificate: *const c_char,
    password: *const u8,
    password_len: usize,
    out: *mut *mut kp_record,
) -> kp_status {
    guard(|| {
        let out = out_arg(out, "out")?;
        // SAFETY: forwarded from the caller.
        let (engine, name, cluster, anchor, password) = unsafe {
            (
                engine_arg(engine)?,
                str_arg(name, "name")?,
                str_arg(cloud_hsm_cluster_id, "cloud_hsm_cluster_id")?,
                str_arg(trust_anchor_certificate, "trust_anchor_certificate")?,
                password_arg(password, password_len)?,
            )
        };
        let id = engine.create_custom_key_store(CreateCustomKeyStoreRequest {
            custom_key_store_name: name.to_owned(),
            cloud_hsm_cluster_id: Some(cluster.to_owned()),
            trust_anchor_certificate: Some(anchor.to_owned()),
            key_store_password: password,
            ..Default::default()
        })?;
        let record = Record::new().str(kp_field::CustomKeyStoreId, &id);
        // SAFETY: checked by out_arg.
        unsafe { give_record(out, record) };
        Ok(())
    })
}

/// Runs a call that takes a custom key store id and gives nothing back.
///
/// # Safety
/// `engine` is a live handle; `id` is NULL or NUL-terminated.
unsafe fn store_call(
    engine: *const kp_engine,
    id: *const c_char,
    call: impl FnOnce(&kp::Engine, &str) -> kp::Result<()>,
) -> kp_status {
    guard(|| {
        // SAFETY: forwarded from the caller.
        let (engine, id) = unsafe { (engine_arg(engine)?, str_arg(id, "custom_key_store_id")?) };
        call(engine, id)?;
        Ok(())
    })
}

/// ConnectCustomKeyStore. Succeeds whether or not the connection does, as the service's: the
/// outcome is the store's CONNECTION_STATE (and CONNECTION_ERROR_CODE) in
/// `kp_describe_custom_key_stores`.
///
/// Thread safety: thread-safe on a shared engine.
///
/// # Safety
/// `engine` is a live handle; `custom_key_store_id` is NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn kp_connect_custom_key_store(
    engine: *const kp_engine,
    custom_key_store_id: *const c_char,
) -> kp_status {
    // SAFETY: forwarded from the caller.
    unsafe {
        store_call(engine, custom_key_store_id, |e, id| {
            e.connect_custom_key_store(id)
        })
    }
}

/// DisconnectCustomKeyStore: its keys are unavailable until it connects again.
///
/// Thread safety: thread-safe on a shared engine.
///
/// # Safety
/// `engine` is a live handle; `custom_key_store_id` is NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn kp_disconnect_custom_key_store(
    engine: *const kp_engine,
    custom_key_store_id: *const c_char,
) -> kp_status {
    // SAFETY: forwarded from the caller.
    unsafe {
        store_call(engine, custom_key_store_id, |e, id| {
            e.disconnect_custom_key_store(id)
        })
    }
}

/// DeleteCustomKeyStore: a DISCONNECTED store with no keys left.
///
/// Thread safety: thread-safe on a shared engine.
///
/// # Safety
/// `engine` is a live handle; `custom_key_store_id` is NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn kp_delete_custom_key_store(
    engine: *const kp_engine,
    custom_key_store_id: *const c_char,
) -> kp_status {
    // SAFETY: forwarded from the caller.
    unsafe {
        store_call(engine, custom_key_store_id, |e, id| {
            e.delete_custom_key_store(id)
        })
    }
}

/// UpdateCustomKeyStore: a new name (NULL: unchanged), password (NULL and 0: unchanged) or
/// configured token (NULL: unchanged); all but the name only while DISCONNECTED.
///
/// Ownership: everything is copied. Thread safety: thread-safe on a shared engine.
///
/// # Safety
/// `engine` is a live handle; the strings are NULL or NUL-terminated; `password` is NULL with
/// `password_len` 0, or points to `password_len` readable bytes.
#[no_mangle]
pub unsafe extern "C" fn kp_update_custom_key_store(
    engine: *const kp_engine,
    custom_key_store_id: *const c_char,
    new_name: *const c_char,
    password: *const u8,
    password_len: usize,
    cloud_hsm_cluster_id: *const c_char,
) -> kp_status {
    guard(|| {
        // SAFETY: forwarded from the caller.
        let (engine, id, name, password, cluster) = unsafe {
            (
                engine_arg(engine)?,
                str_arg(custom_key_store_id, "custom_key_store_id")?,
                opt_str_arg(new_name, "new_name")?,
                password_arg(password, password_len)?,
                opt_str_arg(cloud_hsm_cluster_id, "cloud_hsm_cluster_id")?,
            )
        };
        engine.update_custom_key_store(UpdateCustomKeyStoreRequest {
            custom_key_store_id: id.to_owned(),
            new_custom_key_store_name: name.map(str::to_owned),
            key_store_password: password,
            cloud_hsm_cluster_id: cluster.map(str::to_owned),
            ..Default::default()
        })?;
        Ok(())
    })
}

/// DescribeCustomKeyStores: one page of stores in id order (one store when `custom_key_store_id`
/// or `name` is given, not both); `limit` 1 to 1000 (0: 100); `marker` NULL for the first page.
/// Records have CUSTOM_KEY_STORE_ID, CONNECTION_STATE, CONNECTION_ERROR_CODE (FAILED only),
/// CLOUD_HSM_CLUSTER_ID and JSON (the service's CustomKeyStoresListEntry; never the password).
///
/// Ownership: on success `*out` is a new page the caller frees with `kp_page_free`. Thread
/// safety: thread-safe on a shared engine.
///
/// # Safety
/// `engine` is a live handle; the strings are NULL or NUL-terminated; `out` points to writable
/// storage for a pointer.
#[no_mangle]
pub unsafe extern "C" fn kp_describe_custom_key_stores(
    engine: *const kp_engine,
    custom_key_store_id: *const c_char,
    name: *const c_char,
    limit: u32,
    marker: *const c_char,
    out: *mut *mut kp_page,
) -> kp_status {
    guard(|| {
        let out = out_arg(out, "out")?;
        // SAFETY: forwarded from the caller.
        let (engine, id, name, marker) = unsafe {
            (
                engine_arg(engine)?,
                opt_str_arg(custom_key_store_id, "custom_key_store_id")?,
                opt_str_arg(name, "name")?,
                opt_str_arg(marker, "marker")?,
            )
        };
        let page = engine.describe_custom_key_stores(id, name, limit_arg(limit), marker)?;
        // SAFETY: checked by out_arg.
        unsafe {
            give_page(out, page, |s| {
                Record::new()
                    .str(kp_field::CustomKeyStoreId, &s.custom_key_store_id)
                    .str(kp_field::ConnectionState, s.connection_state.as_str())
                    .opt_str(
                        kp_field::ConnectionErrorCode,
                        s.connection_error_code.map(|c| c.as_str()),
                    )
                    .opt_str(
                        kp_field::CloudHsmClusterId,
                        s.cloud_hsm_cluster_id.as_deref(),
                    )
                    .json(&s)
            })
        }
    })
}

/// CreateKey in a custom key store: as `kp_create_key`, with `options->origin` "AWS_CLOUDHSM"
/// and the key in store `custom_key_store_id` (which must be CONNECTED). The record also has
/// CUSTOM_KEY_STORE_ID and CLOUD_HSM_CLUSTER_ID.
///
/// Ownership: as `kp_create_key`. Thread safety: thread-safe on a shared engine.
///
/// # Safety
/// As `kp_create_key`; `custom_key_store_id` is NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn kp_create_key_in_custom_key_store(
    engine: *const kp_engine,
    options: *const kp_create_key_options,
    custom_key_store_id: *const c_char,
    out: *mut *mut kp_record,
) -> kp_status {
    guard(|| {
        let out = out_arg(out, "out")?;
        // SAFETY: forwarded from the caller.
        let (engine, mut request, id) = unsafe {
            (
                engine_arg(engine)?,
                create_key_request(options)?,
                str_arg(custom_key_store_id, "custom_key_store_id")?,
            )
        };
        request.custom_key_store_id = Some(id.to_owned());
        let record = metadata_record(&engine.create_key(request)?)?;
        // SAFETY: checked by out_arg.
        unsafe { give_record(out, record) };
        Ok(())
    })
}

/// GenerateRandom from a custom key store's HSM: `number_of_bytes` (1 to 1024) into `out`
/// (`capacity` at least that). The store must be CONNECTED.
///
/// Ownership: `out` stays the caller's. Thread safety: thread-safe on a shared engine.
///
/// # Safety
/// `engine` is a live handle; `custom_key_store_id` is NUL-terminated; `out` points to
/// `capacity` writable bytes.
#[no_mangle]
pub unsafe extern "C" fn kp_generate_random_from_custom_key_store(
    engine: *const kp_engine,
    custom_key_store_id: *const c_char,
    number_of_bytes: usize,
    out: *mut u8,
    capacity: usize,
) -> kp_status {
    guard(|| {
        // SAFETY: forwarded from the caller.
        let (engine, id) = unsafe {
            (
                engine_arg(engine)?,
                str_arg(custom_key_store_id, "custom_key_store_id")?,
            )
        };
        let needed = if number_of_bytes <= kp::dataplane::MAX_RANDOM_BYTES {
            number_of_bytes
        } else {
            0
        };
        // SAFETY: forwarded from the caller.
        let out = unsafe { out_bytes(out, capacity, needed, "out") }?;
        let mut bytes = engine.generate_random_from_custom_key_store(id, number_of_bytes)?;
        let copied = if bytes.len() == out.len() {
            out.copy_from_slice(&bytes);
            Ok(())
        } else {
            Err(Failure::new(
                kp_status::Internal,
                "the store drew the wrong number of bytes",
            ))
        };
        bytes.zeroize();
        copied
    })
}
