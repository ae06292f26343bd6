//! Importing key material (BYOK): `kp_get_parameters_for_import`, `kp_import_key_material` and
//! `kp_delete_imported_key_material`, thin adapters over the engine's calls of the same names.
//! Enumerations are given by the service's spelling (`"RSAES_OAEP_SHA_256"`, `"RSA_2048"`,
//! `"KEY_MATERIAL_DOES_NOT_EXPIRE"`, `"NEW_KEY_MATERIAL"`).

use std::ffi::c_char;

use kp::{ExpirationModel, ImportKeyMaterialRequest, ImportType, Timestamp};

use super::asymmetric::{single_out, status_code};
use super::caller::from_caller;
use super::control::{engine_arg, parse_opt};
use super::data::{fill, kp_out};
use super::ffi::{bytes_arg, guard, opt_str_arg, out_arg, str_arg};
use super::handles::kp_engine;
use super::overlap::{out_spans, refuse_overlap, Span};
use super::record::{give_opt_record, kp_field, kp_record, Record};
use super::status::kp_status;

/// The longest import token: a buffer this long always suffices (the service's limit).
pub const KP_MAX_IMPORT_TOKEN_LEN: usize = 6144;

/// GetParametersForImport: a fresh RSA wrapping key pair of `wrapping_key_spec` ("RSA_2048",
/// "RSA_3072", "RSA_4096") for `wrapping_algorithm` ("RSAES_OAEP_SHA_1", "RSAES_OAEP_SHA_256",
/// "RSA_AES_KEY_WRAP_SHA_1", "RSA_AES_KEY_WRAP_SHA_256"; "RSAES_PKCS1_V1_5" and "SM2PKE" are
/// refused with `KP_STATUS_UNSUPPORTED_OPERATION`) for key `key_id` (origin EXTERNAL). Writes the
/// public key (DER SubjectPublicKeyInfo; `KP_MAX_PUBLIC_KEY_LEN` bytes always suffice) into
/// `public_key` and the import token (`KP_MAX_IMPORT_TOKEN_LEN` bytes always suffice) into
/// `import_token`, both valid for 24 hours, and sets each one's `status` and `len`. A buffer too
/// small gets `KP_STATUS_BUFFER_TOO_SMALL` with `len` the size needed, and the call returns that
/// status: call again (with new parameters). `*info` (optional) receives a record with KEY_ID
/// (the ARN), PARAMETERS_VALID_TO (epoch milliseconds) and JSON (without the token or key).
///
/// Ownership: the buffers stay the caller's; `*info`, when asked for, is a new record. Thread
/// safety: thread-safe on a shared engine.
///
/// # Safety
/// `engine` is a live handle; the strings are NUL-terminated; `public_key` and `import_token`
/// point to `kp_out`s whose `data` have `capacity` writable bytes; `info` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn kp_get_parameters_for_import(
    engine: *const kp_engine,
    key_id: *const c_char,
    wrapping_algorithm: *const c_char,
    wrapping_key_spec: *const c_char,
    public_key: *mut kp_out,
    import_token: *mut kp_out,
    info: *mut *mut kp_record,
) -> kp_status {
    guard(|| {
        let engine = from_caller!(engine_arg(engine))?;
        let [pk, pk_data] = from_caller!(out_spans(public_key, "public_key", "public_key->data"));
        let [tok, tok_data] = from_caller!(out_spans(
            import_token,
            "import_token",
            "import_token->data"
        ));
        refuse_overlap(&mut [pk, pk_data, tok, tok_data, Span::output_of(info, "info")])?;
        let key_id = from_caller!(str_arg(key_id, "key_id"))?;
        let algorithm = from_caller!(str_arg(wrapping_algorithm, "wrapping_algorithm"))?.parse()?;
        let spec = from_caller!(str_arg(wrapping_key_spec, "wrapping_key_spec"))?.parse()?;
        let pk = from_caller!(single_out(public_key, "public_key"))?;
        let tok = from_caller!(single_out(import_token, "import_token"))?;
        if !info.is_null() {
            out_arg(info, "info")?;
        }
        let outcome = engine
            .get_parameters_for_import(key_id, algorithm, spec)
            .map_err(Into::into)
            .and_then(|r| {
                let first = from_caller!(fill(&mut *pk, &r.public_key));
                pk.status = status_code(&first);
                let second = from_caller!(fill(&mut *tok, &r.import_token));
                tok.status = status_code(&second);
                first?;
                second?;
                let json = serde_json::json!({
                    "KeyId": r.key_id,
                    "ParametersValidTo": r.parameters_valid_to.as_epoch_seconds(),
                });
                let record = Record::new()
                    .str(kp_field::KeyId, &r.key_id)
                    .int(kp_field::ParametersValidTo, r.parameters_valid_to.0)
                    .json(&json)?;
                from_caller!(give_opt_record(info, || record))
            });
        if let Err(failure) = &outcome {
            if pk.status == kp_status::Ok as u32 && pk.len == 0 {
                pk.status = failure.status as u32;
            }
            if tok.status == kp_status::Ok as u32 && tok.len == 0 {
                tok.status = failure.status as u32;
            }
        }
        outcome
    })
}

/// ImportKeyMaterial: opens `import_token` (from `kp_get_parameters_for_import` for this key),
/// unwraps `encrypted_key_material` with its wrapping key and imports it. `valid_to` is when the
/// material expires, in epoch milliseconds, or 0 for none; `expiration_model` ("KEY_MATERIAL_EXPIRES",
/// the default, needs `valid_to`; "KEY_MATERIAL_DOES_NOT_EXPIRE" must have 0), `import_type`
/// ("NEW_KEY_MATERIAL" or "EXISTING_KEY_MATERIAL"), `key_material_description` and
/// `key_material_id` may be NULL. Errors: `KP_STATUS_INVALID_IMPORT_TOKEN` (another key's,
/// altered), `KP_STATUS_EXPIRED_IMPORT_TOKEN`, `KP_STATUS_INVALID_CIPHERTEXT` (wrongly wrapped),
/// `KP_STATUS_INCORRECT_KEY_MATERIAL` (not the key's material, or not fitting its spec). `*out`
/// (optional) receives a record with KEY_ID (the ARN), KEY_MATERIAL_ID and JSON.
///
/// Ownership: nothing is taken; `*out`, when asked for, is a new record the caller frees. Thread
/// safety: thread-safe on a shared engine.
///
/// # Safety
/// `engine` is a live handle; `key_id` is NUL-terminated; the byte pointers have their lengths
/// readable; the optional strings are NULL or NUL-terminated; `out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn kp_import_key_material(
    engine: *const kp_engine,
    key_id: *const c_char,
    import_token: *const u8,
    import_token_len: usize,
    encrypted_key_material: *const u8,
    encrypted_key_material_len: usize,
    valid_to: i64,
    expiration_model: *const c_char,
    import_type: *const c_char,
    key_material_description: *const c_char,
    key_material_id: *const c_char,
    out: *mut *mut kp_record,
) -> kp_status {
    guard(|| {
        let engine = from_caller!(engine_arg(engine))?;
        let key_id = from_caller!(str_arg(key_id, "key_id"))?;
        let token = from_caller!(bytes_arg(import_token, import_token_len, "import_token"))?;
        let material = from_caller!(bytes_arg(
            encrypted_key_material,
            encrypted_key_material_len,
            "encrypted_key_material",
        ))?;
        let expiration_model: Option<ExpirationModel> =
            from_caller!(parse_opt(expiration_model, "expiration_model"))?;
        let import_type: Option<ImportType> = from_caller!(parse_opt(import_type, "import_type"))?;
        let description = from_caller!(opt_str_arg(
            key_material_description,
            "key_material_description"
        ))?;
        let material_id = from_caller!(opt_str_arg(key_material_id, "key_material_id"))?;
        if !out.is_null() {
            out_arg(out, "out")?;
        }
        let response = engine.import_key_material(&ImportKeyMaterialRequest {
            key_id,
            import_token: token,
            encrypted_key_material: material,
            valid_to: (valid_to != 0).then_some(Timestamp(valid_to)),
            expiration_model,
            import_type,
            key_material_description: description,
            key_material_id: material_id,
        })?;
        let record = Record::new()
            .str(kp_field::KeyId, &response.key_id)
            .str(kp_field::KeyMaterialId, &response.key_material_id)
            .json(&response)?;
        from_caller!(give_opt_record(out, || record))
    })
}

/// DeleteImportedKeyMaterial: deletes the imported material `key_material_id` (NULL: the current
/// material) of key `key_id`; the key is PendingImport until the same material is imported again
/// (a key pending deletion stays so). `*out` (optional) receives a record with KEY_ID (the ARN),
/// KEY_MATERIAL_ID and JSON.
///
/// Ownership: `*out`, when asked for, is a new record the caller frees. Thread safety:
/// thread-safe on a shared engine.
///
/// # Safety
/// `engine` is a live handle; `key_id` is NUL-terminated; `key_material_id` is NULL or
/// NUL-terminated; `out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn kp_delete_imported_key_material(
    engine: *const kp_engine,
    key_id: *const c_char,
    key_material_id: *const c_char,
    out: *mut *mut kp_record,
) -> kp_status {
    guard(|| {
        let engine = from_caller!(engine_arg(engine))?;
        let key_id = from_caller!(str_arg(key_id, "key_id"))?;
        let material_id = from_caller!(opt_str_arg(key_material_id, "key_material_id"))?;
        if !out.is_null() {
            out_arg(out, "out")?;
        }
        let response = engine.delete_imported_key_material(key_id, material_id)?;
        let record = Record::new()
            .str(kp_field::KeyId, &response.key_id)
            .str(kp_field::KeyMaterialId, &response.key_material_id)
            .json(&response)?;
        from_caller!(give_opt_record(out, || record))
    })
}
