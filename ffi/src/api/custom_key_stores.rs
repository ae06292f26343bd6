//! Custom key stores through the C ABI: the six operations, CreateKey in a store, and
//! GenerateRandom from a store's HSM. The PKCS#11 tokens are configured with
//! `kp_config_add_pkcs11_token`; external key stores take their proxy's settings in a
//! `kp_xks_proxy_options` (`docs/custom-key-stores.md`, `docs/xks.md`).

use std::ffi::c_char;

use kp::{
    CreateCustomKeyStoreRequest, CustomKeyStoreType, SecretBytes, UpdateCustomKeyStoreRequest,
    XksProxyCredential,
};
use zeroize::Zeroize;

use super::caller::from_caller;
use super::control::kp_create_key_options;
use super::control::{create_key_request, engine_arg, limit_arg, metadata_record};
use super::failure::{Failure, Outcome};
use super::ffi::opt_struct_arg;
use super::ffi::{bytes_arg, guard, opt_str_arg, out_arg, out_bytes, str_arg};
use super::handles::kp_engine;
use super::record::{give_page, give_record, kp_field, kp_page, kp_record, page_of, Record};
use super::status::kp_status;

/// A secret (the token's user PIN, an XKS proxy's secret access key) of `len` bytes at `ptr`,
/// copied into locked memory; NULL with 0 is none.
///
/// # Safety
/// As [`bytes_arg`].
unsafe fn password_arg(ptr: *const u8, len: usize, what: &str) -> Outcome<Option<SecretBytes>> {
    if ptr.is_null() && len == 0 {
        return Ok(None);
    }
    let bytes = from_caller!(bytes_arg(ptr, len, what))?;
    Ok(Some(SecretBytes::from_vec(bytes.to_vec())))
}

/// The XKS proxy members of CreateCustomKeyStore and UpdateCustomKeyStore for an external key
/// store (`EXTERNAL_KEY_STORE`). Zero-initialise it (`kp_xks_proxy_options o = {0};`) and set what
/// you need: a NULL member is absent (at creation the service's rules say which are required; at
/// update, unchanged).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct kp_xks_proxy_options {
    /// `XksProxyUriEndpoint`: `https://` and the proxy's host name (keyplane also takes a
    /// `:port`), e.g. "https://xks.example.com:8443".
    pub uri_endpoint: *const c_char,
    /// `XksProxyUriPath`: `[/prefix]/kms/xks/v1`.
    pub uri_path: *const c_char,
    /// `XksProxyConnectivity`: "PUBLIC_ENDPOINT" (NULL: PUBLIC_ENDPOINT at creation);
    /// "VPC_ENDPOINT_SERVICE" fails with `KP_STATUS_UNSUPPORTED_OPERATION`.
    pub connectivity: *const c_char,
    /// `XksProxyVpcEndpointServiceName`: only with VPC_ENDPOINT_SERVICE connectivity (refused).
    pub vpc_endpoint_service_name: *const c_char,
    /// `XksProxyAuthenticationCredential.AccessKeyId` (20 to 30 characters of A-Z and 2-7); set
    /// together with `raw_secret_access_key`.
    pub access_key_id: *const c_char,
    /// `XksProxyAuthenticationCredential.RawSecretAccessKey`: `raw_secret_access_key_len` bytes
    /// (43 to 64 characters of a-z, A-Z, 0-9, `/`, `+` and `=`; no terminating NUL counted),
    /// copied into locked memory, sealed in the key store and never returned.
    pub raw_secret_access_key: *const u8,
    /// Bytes at `raw_secret_access_key`.
    pub raw_secret_access_key_len: usize,
}

/// The XKS proxy members, read from a caller's `kp_xks_proxy_options`.
#[derive(Default)]
struct XksMembers {
    uri_endpoint: Option<String>,
    uri_path: Option<String>,
    connectivity: Option<String>,
    vpc_endpoint_service_name: Option<String>,
    credential: Option<XksProxyCredential>,
}

/// The members of `*options`; `None` when `options` is NULL.
///
/// # Safety
/// `options` is NULL or points to a valid `kp_xks_proxy_options` whose strings are NULL or
/// NUL-terminated and whose secret points to `raw_secret_access_key_len` readable bytes.
unsafe fn xks_options_arg(options: *const kp_xks_proxy_options) -> Outcome<Option<XksMembers>> {
    // SAFETY: the caller promises NULL or a valid struct.
    let Some(o) = (unsafe { opt_struct_arg(options, "xks_proxy") })? else {
        return Ok(None);
    };
    let owned = |s: Option<&str>| s.map(str::to_owned);
    let (uri_endpoint, uri_path, connectivity, vpc, access_key_id, secret) = (
        owned(from_caller!(opt_str_arg(
            o.uri_endpoint,
            "xks_proxy->uri_endpoint"
        ))?),
        owned(from_caller!(opt_str_arg(
            o.uri_path,
            "xks_proxy->uri_path"
        ))?),
        owned(from_caller!(opt_str_arg(
            o.connectivity,
            "xks_proxy->connectivity"
        ))?),
        owned(from_caller!(opt_str_arg(
            o.vpc_endpoint_service_name,
            "xks_proxy->vpc_endpoint_service_name",
        ))?),
        from_caller!(opt_str_arg(o.access_key_id, "xks_proxy->access_key_id"))?,
        from_caller!(password_arg(
            o.raw_secret_access_key,
            o.raw_secret_access_key_len,
            "xks_proxy->raw_secret_access_key",
        ))?,
    );
    let credential =
        match (access_key_id, secret) {
            (None, None) => None,
            (Some(id), Some(secret)) => Some(XksProxyCredential {
                access_key_id: id.to_owned(),
                raw_secret_access_key: secret,
            }),
            _ => return Err(Failure::new(
                kp_status::InvalidArgument,
                "xks_proxy->access_key_id and xks_proxy->raw_secret_access_key are given together \
                 or not at all",
            )),
        };
    Ok(Some(XksMembers {
        uri_endpoint,
        uri_path,
        connectivity,
        vpc_endpoint_service_name: vpc,
        credential,
    }))
}

/// CreateCustomKeyStore. With `xks_proxy` NULL, a store of type AWS_CLOUDHSM: on the PKCS#11
/// token configured as `cloud_hsm_cluster_id`, with the token's user PIN as its password
/// (`password_len` bytes, copied into locked memory and sealed in the key store; never returned).
/// With `xks_proxy` set, an EXTERNAL_KEY_STORE behind that XKS proxy; `cloud_hsm_cluster_id`,
/// `trust_anchor_certificate` and `password` are then NULL (and `password_len` 0). A member the
/// store's type requires but that is missing, or one of the other type, fails with
/// `KP_STATUS_VALIDATION` in the service's words. `*out` is a record with CUSTOM_KEY_STORE_ID.
/// The store starts DISCONNECTED.
///
/// Ownership: strings and secrets are copied; on success `*out` is a new record the caller
/// frees with `kp_record_free`. Thread safety: thread-safe on a shared engine.
///
/// # Safety
/// `engine` is a live handle; `name` is NUL-terminated, the other strings NULL or
/// NUL-terminated; `password` is NULL with `password_len` 0, or points to `password_len` readable
/// bytes; `xks_proxy` is NULL or points to a valid `kp_xks_proxy_options`; `out` points to
/// writable storage for a pointer.
#[no_mangle]
pub unsafe extern "C" fn kp_create_custom_key_store(
    engine: *const kp_engine,
    name: *const c_char,
    cloud_hsm_cluster_id: *const c_char,
    trust_anchor_certificate: *const c_char,
    password: *const u8,
    password_len: usize,
    xks_proxy: *const kp_xks_proxy_options,
    out: *mut *mut kp_record,
) -> kp_status {
    guard(|| {
        let out = out_arg(out, "out")?;
        let (engine, name, cluster, anchor, password, xks) = (
            from_caller!(engine_arg(engine))?,
            from_caller!(str_arg(name, "name"))?,
            from_caller!(opt_str_arg(cloud_hsm_cluster_id, "cloud_hsm_cluster_id"))?,
            from_caller!(opt_str_arg(
                trust_anchor_certificate,
                "trust_anchor_certificate"
            ))?,
            from_caller!(password_arg(password, password_len, "password"))?,
            from_caller!(xks_options_arg(xks_proxy))?,
        );
        let kind = if xks.is_some() {
            CustomKeyStoreType::ExternalKeyStore
        } else {
            CustomKeyStoreType::AwsCloudhsm
        };
        let xks = xks.unwrap_or_default();
        let id = engine.create_custom_key_store(CreateCustomKeyStoreRequest {
            custom_key_store_name: name.to_owned(),
            custom_key_store_type: Some(kind),
            cloud_hsm_cluster_id: cluster.map(str::to_owned),
            trust_anchor_certificate: anchor.map(str::to_owned),
            key_store_password: password,
            xks_proxy_uri_endpoint: xks.uri_endpoint,
            xks_proxy_uri_path: xks.uri_path,
            xks_proxy_connectivity: xks.connectivity,
            xks_proxy_vpc_endpoint_service_name: xks.vpc_endpoint_service_name,
            xks_proxy_authentication_credential: xks.credential,
        })?;
        let record = Record::new().str(kp_field::CustomKeyStoreId, &id);
        from_caller!(give_record(out, record));
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
        let (engine, id) = (
            from_caller!(engine_arg(engine))?,
            from_caller!(str_arg(id, "custom_key_store_id"))?,
        );
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
    from_caller!(store_call(
        engine,
        custom_key_store_id,
        |e: &kp::Engine, id: &str| { e.connect_custom_key_store(id) }
    ))
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
    from_caller!(store_call(
        engine,
        custom_key_store_id,
        |e: &kp::Engine, id: &str| { e.disconnect_custom_key_store(id) }
    ))
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
    from_caller!(store_call(
        engine,
        custom_key_store_id,
        |e: &kp::Engine, id: &str| { e.delete_custom_key_store(id) }
    ))
}

/// UpdateCustomKeyStore: a new name (NULL: unchanged), password (NULL and 0: unchanged),
/// configured token (NULL: unchanged) or, for an external key store, XKS proxy members
/// (`xks_proxy` NULL, or each of its members NULL: unchanged; a new credential is both its
/// members); all but the name only while DISCONNECTED.
///
/// Ownership: everything is copied. Thread safety: thread-safe on a shared engine.
///
/// # Safety
/// `engine` is a live handle; the strings are NULL or NUL-terminated; `password` is NULL with
/// `password_len` 0, or points to `password_len` readable bytes; `xks_proxy` is NULL or points
/// to a valid `kp_xks_proxy_options`.
#[no_mangle]
pub unsafe extern "C" fn kp_update_custom_key_store(
    engine: *const kp_engine,
    custom_key_store_id: *const c_char,
    new_name: *const c_char,
    password: *const u8,
    password_len: usize,
    cloud_hsm_cluster_id: *const c_char,
    xks_proxy: *const kp_xks_proxy_options,
) -> kp_status {
    guard(|| {
        let (engine, id, name, password, cluster, xks) = (
            from_caller!(engine_arg(engine))?,
            from_caller!(str_arg(custom_key_store_id, "custom_key_store_id"))?,
            from_caller!(opt_str_arg(new_name, "new_name"))?,
            from_caller!(password_arg(password, password_len, "password"))?,
            from_caller!(opt_str_arg(cloud_hsm_cluster_id, "cloud_hsm_cluster_id"))?,
            from_caller!(xks_options_arg(xks_proxy))?,
        );
        let xks = xks.unwrap_or_default();
        engine.update_custom_key_store(UpdateCustomKeyStoreRequest {
            custom_key_store_id: id.to_owned(),
            new_custom_key_store_name: name.map(str::to_owned),
            key_store_password: password,
            cloud_hsm_cluster_id: cluster.map(str::to_owned),
            xks_proxy_uri_endpoint: xks.uri_endpoint,
            xks_proxy_uri_path: xks.uri_path,
            xks_proxy_connectivity: xks.connectivity,
            xks_proxy_vpc_endpoint_service_name: xks.vpc_endpoint_service_name,
            xks_proxy_authentication_credential: xks.credential,
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
        let (engine, id, name, marker) = (
            from_caller!(engine_arg(engine))?,
            from_caller!(opt_str_arg(custom_key_store_id, "custom_key_store_id"))?,
            from_caller!(opt_str_arg(name, "name"))?,
            from_caller!(opt_str_arg(marker, "marker"))?,
        );
        let page = engine.describe_custom_key_stores(id, name, limit_arg(limit), marker)?;
        from_caller!(give_page(
            out,
            page_of(page, |s| {
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
            })?
        ));
        Ok(())
    })
}

/// CreateKey in a custom key store: as `kp_create_key`, with the key in store
/// `custom_key_store_id` (which must be CONNECTED): `options->origin` "AWS_CLOUDHSM" and
/// `xks_key_id` NULL for an HSM key store; "EXTERNAL_KEY_STORE" and the external key's id in the
/// proxy (`XksKeyId`, checked with the proxy) for an external key store. The record also has
/// CUSTOM_KEY_STORE_ID and CLOUD_HSM_CLUSTER_ID (HSM key stores); its JSON has
/// XksKeyConfiguration (external key stores).
///
/// Ownership: as `kp_create_key`. Thread safety: thread-safe on a shared engine.
///
/// # Safety
/// As `kp_create_key`; `custom_key_store_id` is NUL-terminated; `xks_key_id` is NULL or
/// NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn kp_create_key_in_custom_key_store(
    engine: *const kp_engine,
    options: *const kp_create_key_options,
    custom_key_store_id: *const c_char,
    xks_key_id: *const c_char,
    out: *mut *mut kp_record,
) -> kp_status {
    guard(|| {
        let out = out_arg(out, "out")?;
        let (engine, mut request, id, xks_key_id) = (
            from_caller!(engine_arg(engine))?,
            from_caller!(create_key_request(options))?,
            from_caller!(str_arg(custom_key_store_id, "custom_key_store_id"))?,
            from_caller!(opt_str_arg(xks_key_id, "xks_key_id"))?,
        );
        request.custom_key_store_id = Some(id.to_owned());
        request.xks_key_id = xks_key_id.map(str::to_owned);
        let record = metadata_record(&engine.create_key(request)?)?;
        from_caller!(give_record(out, record));
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
        let (engine, id) = (
            from_caller!(engine_arg(engine))?,
            from_caller!(str_arg(custom_key_store_id, "custom_key_store_id"))?,
        );
        let needed = if number_of_bytes <= kp::dataplane::MAX_RANDOM_BYTES {
            number_of_bytes
        } else {
            0
        };
        let out = from_caller!(out_bytes(out, capacity, needed, "out"))?;
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

#[cfg(test)]
mod tests {
    use std::ffi::CString;
    use std::ptr::{null, null_mut};

    use super::*;
    use crate::api::handles::{into_raw, kp_engine_free};

    const SECRET: &[u8] = b"FYtE5EFA5FT0mCc3DrGUe2sti527BitkQ0Zr9MO9fvE";

    /// The XKS members are checked as every C argument is, before the engine sees them: a NULL
    /// secret with a length, a length past the ABI's limit, a credential by halves, a misaligned
    /// struct, bad UTF-8; and nothing is created by a refused call.
    #[test]
    fn xks_proxy_options_are_checked_before_anything_is_created() {
        let engine = into_raw::<kp_engine>(crate::api::handles::EngineHandle::new(
            kp::Engine::in_memory().unwrap(),
        ));
        let name = CString::new("c-xks").unwrap();
        let endpoint = CString::new("https://proxy.example").unwrap();
        let path = CString::new("/kms/xks/v1").unwrap();
        let id = CString::new("AKIAI2SFODNN7EXAMPLE").unwrap();
        let bad_utf8 = [0xffu8, 0xfe, 0];
        let good = kp_xks_proxy_options {
            uri_endpoint: endpoint.as_ptr(),
            uri_path: path.as_ptr(),
            connectivity: null(),
            vpc_endpoint_service_name: null(),
            access_key_id: id.as_ptr(),
            raw_secret_access_key: SECRET.as_ptr(),
            raw_secret_access_key_len: SECRET.len(),
        };
        let create = |options: *const kp_xks_proxy_options| {
            let mut out: *mut kp_record = null_mut();
            // SAFETY: a live engine, NUL-terminated strings, and the options under test.
            let status = unsafe {
                kp_create_custom_key_store(
                    engine,
                    name.as_ptr(),
                    null(),
                    null(),
                    null(),
                    0,
                    options,
                    &mut out,
                )
            };
            assert!(out.is_null(), "{status:?} wrote a record");
            status
        };
        let cases: [(kp_xks_proxy_options, kp_status); 5] = [
            (
                kp_xks_proxy_options {
                    raw_secret_access_key: null(),
                    ..good
                },
                kp_status::NullParameter,
            ),
            (
                kp_xks_proxy_options {
                    raw_secret_access_key_len: crate::api::KP_MAX_LENGTH + 1,
                    ..good
                },
                kp_status::InvalidLength,
            ),
            (
                kp_xks_proxy_options {
                    raw_secret_access_key: null(),
                    raw_secret_access_key_len: 0,
                    ..good
                },
                kp_status::InvalidArgument,
            ),
            (
                kp_xks_proxy_options {
                    access_key_id: null(),
                    ..good
                },
                kp_status::InvalidArgument,
            ),
            (
                kp_xks_proxy_options {
                    uri_path: bad_utf8.as_ptr().cast(),
                    ..good
                },
                kp_status::InvalidUtf8,
            ),
        ];
        for (options, expected) in cases {
            assert_eq!(create(&options), expected, "{options:?}");
        }
        // A misaligned struct: refused without being read.
        let mut bytes = vec![0u8; std::mem::size_of::<kp_xks_proxy_options>() + 1];
        let misaligned = bytes[1..].as_mut_ptr().cast::<kp_xks_proxy_options>();
        assert_eq!(create(misaligned), kp_status::InvalidArgument);
        // HSM members beside XKS ones: the engine's ValidationException.
        let mut out: *mut kp_record = null_mut();
        let cluster = CString::new("cluster-abcdefghijk").unwrap();
        // SAFETY: as above.
        let status = unsafe {
            kp_create_custom_key_store(
                engine,
                name.as_ptr(),
                cluster.as_ptr(),
                null(),
                null(),
                0,
                &good,
                &mut out,
            )
        };
        assert_eq!(status, kp_status::Validation);
        // Well-formed options pass every check; this engine has no XKS backend, so the engine
        // then answers UnsupportedOperation.
        assert_eq!(create(&good), kp_status::UnsupportedOperation);
        // SAFETY: made above, freed once.
        unsafe { kp_engine_free(engine) };
    }
}
