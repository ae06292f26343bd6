//! Asymmetric and HMAC operations: Sign and Verify, GetPublicKey, GenerateMac and VerifyMac,
//! DeriveSharedSecret, and GenerateDataKeyPair(+WithoutPlaintext). (Encrypt and Decrypt with RSA
//! keys go through `kp_encrypt`/`kp_decrypt` with an RSAES_OAEP algorithm.)
//!
//! Outputs whose size is known before the call (a MAC) are checked before the engine runs; those
//! whose size depends on the key (a signature, a public key, an encrypted private key) are
//! checked when the engine answers, and a short buffer gets `KP_STATUS_BUFFER_TOO_SMALL` with
//! nothing written (in a `kp_out`, `len` says the size needed). `kp_signature_max_len`,
//! `kp_mac_len` and the `KP_MAX_*` constants size buffers ahead.

use std::ffi::c_char;

use kp::{
    DataKeyPairSpec, DeriveSharedSecretRequest, GenerateDataKeyPairRequest, GenerateMacRequest,
    KeyAgreementAlgorithm, KeySpec, KeyUsage, MacAlgorithm, MessageType, SignRequest,
    SigningAlgorithm, VerifyMacRequest, VerifyRequest,
};

use super::caller::from_caller;
use super::control::engine_arg;
use super::data::{batch, fill, item_arg, kp_out, outputs_arg, put, write_sizes, Memo};
use super::failure::{Failure, Outcome};
use super::ffi::{
    array_arg, bytes_arg, guard, guard_value, out_arg, out_bytes, str_arg, write_out,
};
use super::handles::{context_arg, handle_mut, kp_context, kp_engine, kp_secret_buffer};
use super::limits::KP_MAX_BATCH_ITEMS;
use super::overlap::{out_spans, refuse_batch_overlap, refuse_overlap, Span};
use super::record::{give_opt_record, kp_field, kp_record, Record};
use super::status::kp_status;

/// A signing algorithm, in Sign and Verify items (numbered in the service's order; 0 is not a
/// value: the algorithm is required).
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum kp_signing_algorithm {
    /// RSASSA-PSS with SHA-256 (RSA keys).
    RsassaPssSha_256 = 1,
    /// RSASSA-PSS with SHA-384 (RSA keys).
    RsassaPssSha_384 = 2,
    /// RSASSA-PSS with SHA-512 (RSA keys).
    RsassaPssSha_512 = 3,
    /// RSASSA-PKCS1-v1_5 with SHA-256 (RSA keys).
    RsassaPkcs1V1_5_Sha_256 = 4,
    /// RSASSA-PKCS1-v1_5 with SHA-384 (RSA keys).
    RsassaPkcs1V1_5_Sha_384 = 5,
    /// RSASSA-PKCS1-v1_5 with SHA-512 (RSA keys).
    RsassaPkcs1V1_5_Sha_512 = 6,
    /// ECDSA with SHA-256 (ECC_NIST_P256 and ECC_SECG_P256K1 keys); DER-encoded signatures.
    EcdsaSha_256 = 7,
    /// ECDSA with SHA-384 (ECC_NIST_P384 keys).
    EcdsaSha_384 = 8,
    /// ECDSA with SHA-512 (ECC_NIST_P521 keys).
    EcdsaSha_512 = 9,
    /// Ed25519 (ECC_NIST_EDWARDS25519 keys, RAW messages).
    Ed25519Sha_512 = 10,
    /// Ed25519ph (modelled; refused by this build).
    Ed25519PhSha_512 = 11,
    /// SM2 signatures (modelled; refused by this build).
    Sm2dsa = 12,
    /// ML-DSA (modelled; refused by this build).
    MlDsaShake_256 = 13,
}

/// Whether Sign and Verify get the message itself or its digest.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum kp_message_type {
    /// The message itself (up to 4096 bytes); the engine hashes it. The default (0).
    Raw = 0,
    /// The message's digest, as long as the algorithm's hash.
    Digest = 1,
    /// An ML-DSA external mu (modelled; refused by this build).
    ExternalMu = 2,
}

/// A MAC algorithm, in GenerateMac and VerifyMac items (0 is not a value: required).
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum kp_mac_algorithm {
    /// HMAC with SHA-224 (HMAC_224 keys): 28-byte MACs.
    HmacSha_224 = 1,
    /// HMAC with SHA-256 (HMAC_256 keys): 32-byte MACs.
    HmacSha_256 = 2,
    /// HMAC with SHA-384 (HMAC_384 keys): 48-byte MACs.
    HmacSha_384 = 3,
    /// HMAC with SHA-512 (HMAC_512 keys): 64-byte MACs.
    HmacSha_512 = 4,
}

/// A key agreement algorithm, for DeriveSharedSecret (0 is not a value: required).
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum kp_key_agreement_algorithm {
    /// Elliptic-curve Diffie-Hellman.
    Ecdh = 1,
}

/// The spec of a data key pair, in `kp_data_key_pair_item` (0 is not a value: required).
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum kp_data_key_pair_spec {
    /// RSA, 2048-bit modulus.
    Rsa_2048 = 1,
    /// RSA, 3072-bit modulus.
    Rsa_3072 = 2,
    /// RSA, 4096-bit modulus.
    Rsa_4096 = 3,
    /// NIST P-256.
    EccNistP256 = 4,
    /// NIST P-384.
    EccNistP384 = 5,
    /// NIST P-521.
    EccNistP521 = 6,
    /// secp256k1.
    EccSecgP256k1 = 7,
    /// SM2 (modelled; refused by this build).
    Sm2 = 8,
    /// Ed25519.
    EccNistEdwards25519 = 9,
}

/// A Sign request.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct kp_sign_item {
    /// An asymmetric SIGN_VERIFY key: key id, key ARN, alias name or alias ARN. Required.
    pub key_id: *const c_char,
    /// The message (RAW: 1 to 4096 bytes) or its digest (DIGEST).
    pub message: *const u8,
    /// Length of the message in bytes.
    pub message_len: usize,
    /// A `kp_message_type`; 0 for RAW.
    pub message_type: u32,
    /// A `kp_signing_algorithm` the key allows. Required.
    pub signing_algorithm: u32,
}

/// A Verify request.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct kp_verify_item {
    /// The key that signed. Required.
    pub key_id: *const c_char,
    /// The message or its digest, as it was signed.
    pub message: *const u8,
    /// Length of the message in bytes.
    pub message_len: usize,
    /// A `kp_message_type`; 0 for RAW.
    pub message_type: u32,
    /// The signature: `signature_len` bytes.
    pub signature: *const u8,
    /// Length of the signature in bytes.
    pub signature_len: usize,
    /// The `kp_signing_algorithm` it was made with. Required.
    pub signing_algorithm: u32,
}

/// A GenerateMac request.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct kp_mac_item {
    /// An HMAC key. Required.
    pub key_id: *const c_char,
    /// The message: 1 to 4096 bytes.
    pub message: *const u8,
    /// Length of the message in bytes.
    pub message_len: usize,
    /// The key's `kp_mac_algorithm`. Required.
    pub mac_algorithm: u32,
}

/// A VerifyMac request.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct kp_verify_mac_item {
    /// The HMAC key. Required.
    pub key_id: *const c_char,
    /// The message: 1 to 4096 bytes.
    pub message: *const u8,
    /// Length of the message in bytes.
    pub message_len: usize,
    /// The MAC to check: `mac_len` bytes.
    pub mac: *const u8,
    /// Length of the MAC in bytes.
    pub mac_len: usize,
    /// The key's `kp_mac_algorithm`. Required.
    pub mac_algorithm: u32,
}

/// A GenerateDataKeyPair (or ...WithoutPlaintext) request.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct kp_data_key_pair_item {
    /// The symmetric key that encrypts the private key. Required.
    pub key_id: *const c_char,
    /// Encryption context for the private key's ciphertext, or NULL for none.
    pub context: *const kp_context,
    /// A `kp_data_key_pair_spec`. Required.
    pub key_pair_spec: u32,
}

// ---- conversions -------------------------------------------------------------------------------

fn invalid_enum(what: &str, value: u32, enumeration: &str) -> Failure {
    Failure::new(
        kp_status::InvalidEnumValue,
        format!("{what} {value} is not a {enumeration}"),
    )
}

#[inline]
pub(crate) fn signing_algorithm(value: u32) -> Outcome<SigningAlgorithm> {
    use SigningAlgorithm as A;
    Ok(match value {
        1 => A::RsassaPssSha256,
        2 => A::RsassaPssSha384,
        3 => A::RsassaPssSha512,
        4 => A::RsassaPkcs1V15Sha256,
        5 => A::RsassaPkcs1V15Sha384,
        6 => A::RsassaPkcs1V15Sha512,
        7 => A::EcdsaSha256,
        8 => A::EcdsaSha384,
        9 => A::EcdsaSha512,
        10 => A::Ed25519Sha512,
        11 => A::Ed25519PhSha512,
        12 => A::Sm2Dsa,
        13 => A::MlDsaShake256,
        other => {
            return Err(invalid_enum(
                "signing_algorithm",
                other,
                "kp_signing_algorithm (it is required)",
            ))
        }
    })
}

#[inline]
fn message_type(value: u32) -> Outcome<MessageType> {
    Ok(match value {
        0 => MessageType::Raw,
        1 => MessageType::Digest,
        2 => MessageType::ExternalMu,
        other => return Err(invalid_enum("message_type", other, "kp_message_type")),
    })
}

#[inline]
fn mac_algorithm(value: u32) -> Outcome<MacAlgorithm> {
    Ok(match value {
        1 => MacAlgorithm::HmacSha224,
        2 => MacAlgorithm::HmacSha256,
        3 => MacAlgorithm::HmacSha384,
        4 => MacAlgorithm::HmacSha512,
        other => {
            return Err(invalid_enum(
                "mac_algorithm",
                other,
                "kp_mac_algorithm (it is required)",
            ))
        }
    })
}

fn key_agreement_algorithm(value: u32) -> Outcome<KeyAgreementAlgorithm> {
    match value {
        1 => Ok(KeyAgreementAlgorithm::Ecdh),
        other => Err(invalid_enum(
            "key_agreement_algorithm",
            other,
            "kp_key_agreement_algorithm (it is required)",
        )),
    }
}

fn key_pair_spec(value: u32) -> Outcome<DataKeyPairSpec> {
    use DataKeyPairSpec as S;
    Ok(match value {
        1 => S::Rsa2048,
        2 => S::Rsa3072,
        3 => S::Rsa4096,
        4 => S::EccNistP256,
        5 => S::EccNistP384,
        6 => S::EccNistP521,
        7 => S::EccSecgP256k1,
        8 => S::Sm2,
        9 => S::EccNistEdwards25519,
        other => {
            return Err(invalid_enum(
                "key_pair_spec",
                other,
                "kp_data_key_pair_spec (it is required)",
            ))
        }
    })
}

/// The MAC length of an algorithm (the engine's table).
fn mac_len_of(algorithm: MacAlgorithm) -> usize {
    kp::mac_len(algorithm)
}

/// # Safety
/// The item's pointers are valid as `kp_sign_item` documents, for `'a`.
#[inline(always)]
unsafe fn sign_request<'a>(item: &kp_sign_item, memo: &Memo<'a>) -> Outcome<SignRequest<'a>> {
    Ok(SignRequest {
        key_id: from_caller!(memo.key_id(item.key_id, "key_id"))?,
        message: from_caller!(bytes_arg(item.message, item.message_len, "message"))?,
        message_type: message_type(item.message_type)?,
        signing_algorithm: signing_algorithm(item.signing_algorithm)?,
    })
}

/// # Safety
/// As [`sign_request`].
#[inline(always)]
unsafe fn verify_request<'a>(item: &kp_verify_item, memo: &Memo<'a>) -> Outcome<VerifyRequest<'a>> {
    Ok(VerifyRequest {
        key_id: from_caller!(memo.key_id(item.key_id, "key_id"))?,
        message: from_caller!(bytes_arg(item.message, item.message_len, "message"))?,
        message_type: message_type(item.message_type)?,
        signature: from_caller!(bytes_arg(item.signature, item.signature_len, "signature"))?,
        signing_algorithm: signing_algorithm(item.signing_algorithm)?,
    })
}

/// A MAC item as the engine's request, with the MAC's exact length.
///
/// # Safety
/// As [`sign_request`].
#[inline(always)]
unsafe fn mac_request<'a>(
    item: &kp_mac_item,
    memo: &Memo<'a>,
) -> Outcome<(GenerateMacRequest<'a>, usize)> {
    let algorithm = mac_algorithm(item.mac_algorithm)?;
    let request = GenerateMacRequest {
        key_id: from_caller!(memo.key_id(item.key_id, "key_id"))?,
        message: from_caller!(bytes_arg(item.message, item.message_len, "message"))?,
        mac_algorithm: algorithm,
    };
    Ok((request, mac_len_of(algorithm)))
}

/// # Safety
/// As [`sign_request`].
#[inline(always)]
unsafe fn verify_mac_request<'a>(
    item: &kp_verify_mac_item,
    memo: &Memo<'a>,
) -> Outcome<VerifyMacRequest<'a>> {
    Ok(VerifyMacRequest {
        key_id: from_caller!(memo.key_id(item.key_id, "key_id"))?,
        message: from_caller!(bytes_arg(item.message, item.message_len, "message"))?,
        mac: from_caller!(bytes_arg(item.mac, item.mac_len, "mac"))?,
        mac_algorithm: mac_algorithm(item.mac_algorithm)?,
    })
}

fn check_info(info: *mut *mut kp_record) -> Outcome<()> {
    if !info.is_null() {
        out_arg(info, "info")?;
    }
    Ok(())
}

/// A single call's `kp_out`, checked (not NULL, aligned, its buffer not NULL when it has a
/// capacity, the capacity not absurd).
///
/// # Safety
/// `out` is NULL or points to a `kp_out` for exclusive use whose buffer is valid as `kp_out`
/// documents, for `'a`.
pub(crate) unsafe fn single_out<'a>(out: *mut kp_out, what: &str) -> Outcome<&'a mut kp_out> {
    let out = out_arg(out, what)?;
    // SAFETY: not NULL and aligned (out_arg checked it), and the caller promises a `kp_out` for
    // exclusive use.
    let out = unsafe { &mut *out.as_ptr() };
    // Nothing is written into the buffer here.
    from_caller!(out_bytes(out.data, out.capacity, out.capacity, what))?;
    Ok(out)
}

pub(crate) fn status_code(outcome: &Outcome<()>) -> u32 {
    match outcome {
        Ok(()) => kp_status::Ok as u32,
        Err(f) => f.status as u32,
    }
}

// ---- sizes -------------------------------------------------------------------------------------

/// The longest signature a key of `key_spec` (the service's spelling, "ECC_NIST_P256", ...)
/// makes with `signing_algorithm` (a `kp_signing_algorithm`): the modulus size for RSA (256, 384,
/// 512), the DER maximum for ECDSA (72 for P-256 and secp256k1, 104 for P-384, 139 for P-521;
/// actual signatures are often a byte or two shorter), 64 for Ed25519. A buffer this long always
/// holds the signature. Returns 0 when the key spec does not sign with that algorithm in this
/// build, or an argument is invalid.
///
/// Ownership: nothing is taken. Thread safety: callable from any thread.
///
/// # Safety
/// `key_spec` is a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn kp_signature_max_len(
    key_spec: *const c_char,
    signing_algorithm: u32,
) -> usize {
    guard_value(0, || {
        let spec: KeySpec = from_caller!(str_arg(key_spec, "key_spec"))?.parse()?;
        let algorithm = self::signing_algorithm(signing_algorithm)?;
        if !spec.is_supported()
            || !spec
                .signing_algorithms(KeyUsage::SignVerify)
                .contains(&algorithm)
        {
            return Ok(0);
        }
        Ok(match spec {
            KeySpec::Rsa2048 => 256,
            KeySpec::Rsa3072 => 384,
            KeySpec::Rsa4096 => 512,
            KeySpec::EccNistP256 | KeySpec::EccSecgP256k1 => 72,
            KeySpec::EccNistP384 => 104,
            KeySpec::EccNistP521 => 139,
            KeySpec::EccNistEdwards25519 => 64,
            _ => 0,
        })
    })
}

/// The length of a MAC made with `mac_algorithm` (a `kp_mac_algorithm`): 28, 32, 48 or 64 bytes,
/// the exact size GenerateMac writes; 0 for a value that is not a `kp_mac_algorithm`.
///
/// Ownership: nothing is taken. Thread safety: callable from any thread.
#[no_mangle]
pub extern "C" fn kp_mac_len(mac_algorithm: u32) -> usize {
    guard_value(0, || Ok(mac_len_of(self::mac_algorithm(mac_algorithm)?)))
}

/// The exact output sizes of `kp_generate_mac_batch` for `items`: `sizes[i]` (optional, `count`
/// entries) is item `i`'s MAC length (0 for an item whose `mac_algorithm` is not a
/// `kp_mac_algorithm`); `*total` (optional) is their sum.
///
/// Ownership: nothing is taken. Thread safety: callable from any thread.
///
/// # Safety
/// `items` points to `count` items; `sizes` is NULL or has room for `count` entries; `total` is
/// NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn kp_generate_mac_batch_sizes(
    items: *const kp_mac_item,
    count: usize,
    sizes: *mut usize,
    total: *mut usize,
) -> kp_status {
    guard(|| {
        let items = from_caller!(array_arg(items, count, KP_MAX_BATCH_ITEMS, "items"))?;
        from_caller!(write_sizes(
            items,
            items
                .iter()
                .map(|i| mac_algorithm(i.mac_algorithm).map_or(0, mac_len_of)),
            sizes,
            total,
        ))
    })
}

// ---- Sign and Verify ---------------------------------------------------------------------------

/// Sign: signs `request->message` (or its digest) with an asymmetric SIGN_VERIFY key into
/// `signature`, which `kp_signature_max_len(key spec, algorithm)` bytes always suffice for
/// (`KP_MAX_SIGNATURE_LEN` for any key); the length written goes to `*signature_len`. ECDSA
/// signatures are DER-encoded, as the service returns them; RSA and Ed25519 signatures are raw. A
/// buffer shorter than the signature gets `KP_STATUS_BUFFER_TOO_SMALL` (the message says the size)
/// with nothing written. `*info` (optional) receives a record with KEY_ID (the key's ARN) and
/// SIGNING_ALGORITHM.
///
/// Ownership: the request's memory is only read, during the call; when `info` is not NULL,
/// `*info` is a new record the caller frees with `kp_record_free`. Thread safety: thread-safe on a
/// shared engine.
///
/// # Safety
/// `engine` is a live handle; `request` points to a valid item; `signature` has `capacity`
/// writable bytes; `signature_len` is writable; `info` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn kp_sign(
    engine: *const kp_engine,
    request: *const kp_sign_item,
    signature: *mut u8,
    capacity: usize,
    signature_len: *mut usize,
    info: *mut *mut kp_record,
) -> kp_status {
    guard(|| {
        let engine = from_caller!(engine_arg(engine))?;
        let item = from_caller!(item_arg(request))?;
        refuse_overlap(&mut [
            Span::input(item.message, item.message_len, "request->message"),
            Span::output(signature, capacity, "signature"),
            Span::output_of(signature_len, "signature_len"),
            Span::output_of(info, "info"),
        ])?;
        let request = from_caller!(sign_request(&item, &Memo::new()))?;
        let out_len = out_arg(signature_len, "signature_len")?;
        let out = from_caller!(out_bytes(signature, capacity, capacity, "signature"))?;
        check_info(info)?;
        let response = engine.sign(&request)?;
        let written = put(out, &response.signature, "signature")?;
        from_caller!(write_out(out_len, written));
        from_caller!(give_opt_record(info, || {
            Record::new().str(kp_field::KeyId, &response.key_id).str(
                kp_field::SigningAlgorithm,
                response.signing_algorithm.as_str(),
            )
        }))
    })
}

/// Sign, in a batch: item `i` is signed into `outputs[i]` (`kp_signature_max_len` bytes always
/// suffice). Every `outputs[i].status` is set; `outputs[i].len` is the signature's length on
/// success, or the length needed when the status is `KP_STATUS_BUFFER_TOO_SMALL`. Returns as
/// `kp_encrypt_batch`.
///
/// Ownership and thread safety: as `kp_encrypt_batch`.
///
/// # Safety
/// `engine` is a live handle; `items` points to `count` valid items; `outputs` to `count`
/// `kp_out`s whose `data` have `capacity` writable bytes.
#[no_mangle]
pub unsafe extern "C" fn kp_sign_batch(
    engine: *const kp_engine,
    items: *const kp_sign_item,
    count: usize,
    outputs: *mut kp_out,
) -> kp_status {
    guard(|| {
        let engine = from_caller!(engine_arg(engine))?;
        let items = from_caller!(array_arg(items, count, KP_MAX_BATCH_ITEMS, "items"))?;
        from_caller!(refuse_batch_overlap(
            items,
            outputs,
            "outputs",
            |i: &kp_sign_item| [("message", i.message, i.message_len)],
            &[],
        ))?;
        let memo = Memo::new();
        batch(
            from_caller!(outputs_arg(outputs, count))?,
            |i, _| from_caller!(sign_request(&items[i], &memo)).map(|r| (r, 0)),
            |requests| engine.sign_batch(requests),
            |_, signature, out| from_caller!(fill(out, &signature)),
        )
    })
}

/// Verify: checks `request->signature` over the message (or digest). Returns `KP_STATUS_OK` for
/// a valid signature and `KP_STATUS_INVALID_SIGNATURE` for one that is not. `*info` (optional,
/// on success) receives a record with KEY_ID and SIGNING_ALGORITHM.
///
/// Ownership: as `kp_sign`. Thread safety: thread-safe on a shared engine.
///
/// # Safety
/// `engine` is a live handle; `request` points to a valid item; `info` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn kp_verify(
    engine: *const kp_engine,
    request: *const kp_verify_item,
    info: *mut *mut kp_record,
) -> kp_status {
    guard(|| {
        let engine = from_caller!(engine_arg(engine))?;
        let item = from_caller!(item_arg(request))?;
        refuse_overlap(&mut [
            Span::input(item.message, item.message_len, "request->message"),
            Span::input(item.signature, item.signature_len, "request->signature"),
            Span::output_of(info, "info"),
        ])?;
        let request = from_caller!(verify_request(&item, &Memo::new()))?;
        check_info(info)?;
        let response = engine.verify(&request)?;
        from_caller!(give_opt_record(info, || {
            Record::new().str(kp_field::KeyId, &response.key_id).str(
                kp_field::SigningAlgorithm,
                response.signing_algorithm.as_str(),
            )
        }))
    })
}

/// Verify, in a batch: `statuses[i]` (a `kp_status`) is set for every item: `KP_STATUS_OK` for a
/// valid signature, `KP_STATUS_INVALID_SIGNATURE` for one that is not, or why the item could not
/// be checked. Returns `KP_STATUS_OK` when every signature is valid, `KP_STATUS_BATCH_ITEMS_FAILED`
/// otherwise, or an argument status (nothing written) when the call itself is invalid.
///
/// Ownership: items are only read; `statuses` stays the caller's. Thread safety: thread-safe on a
/// shared engine.
///
/// # Safety
/// `engine` is a live handle; `items` points to `count` valid items; `statuses` has room for
/// `count` values.
#[no_mangle]
pub unsafe extern "C" fn kp_verify_batch(
    engine: *const kp_engine,
    items: *const kp_verify_item,
    count: usize,
    statuses: *mut u32,
) -> kp_status {
    let inputs = |i: &kp_verify_item| {
        [
            ("message", i.message, i.message_len),
            ("signature", i.signature, i.signature_len),
        ]
    };
    from_caller!(status_batch(
        engine,
        items,
        count,
        statuses,
        inputs,
        verify_request,
        kp::Engine::verify_batch,
    ))
}

/// A batch whose items each get a status and nothing else (Verify, VerifyMac): `inputs` names an
/// item's two inputs for the overlap check, `request` converts an item, `run` is the engine's
/// batch call.
///
/// # Safety
/// As the exports': `engine` is a live handle, `items` points to `count` items valid as their
/// type documents, and `statuses` has room for `count` values.
unsafe fn status_batch<'a, I, R>(
    engine: *const kp_engine,
    items: *const I,
    count: usize,
    statuses: *mut u32,
    inputs: impl Fn(&I) -> [(&'static str, *const u8, usize); 2],
    request: unsafe fn(&I, &Memo<'a>) -> Outcome<R>,
    run: impl FnOnce(&kp::Engine, &[R]) -> Vec<kp::Result<()>>,
) -> kp_status {
    guard(|| {
        let engine = from_caller!(engine_arg(engine))?;
        let items = from_caller!(array_arg(items, count, KP_MAX_BATCH_ITEMS, "items"))?;
        from_caller!(refuse_batch_overlap(
            items,
            statuses,
            "statuses",
            inputs,
            &[]
        ))?;
        let memo = Memo::new();
        batch(
            from_caller!(outputs_arg(statuses, count))?,
            // SAFETY: `request` is an item's conversion to the engine's request, whose `# Safety`
            // asks the item's pointers valid as its type documents: what this function's caller
            // promised of every item.
            |i, _| unsafe { request(&items[i], &memo) }.map(|r| (r, 0)),
            |requests| run(engine, requests),
            |_, (), _| Ok(()),
        )
    })
}

/// GetPublicKey: the public key of an asymmetric key, DER SubjectPublicKeyInfo, into
/// `public_key` (`KP_MAX_PUBLIC_KEY_LEN` bytes always suffice). Sets `public_key->status` to the
/// call's status and `public_key->len` to the key's length on success, or to the length needed
/// with `KP_STATUS_BUFFER_TOO_SMALL` (nothing else written). Symmetric and HMAC keys have none
/// (`KP_STATUS_UNSUPPORTED_OPERATION`). `*info` (optional) receives a record with KEY_ID, KEY_SPEC,
/// KEY_USAGE, ENCRYPTION_ALGORITHMS, SIGNING_ALGORITHMS and KEY_AGREEMENT_ALGORITHMS.
///
/// Ownership: `public_key->data` stays the caller's; `*info`, when asked for, is a new record.
/// Thread safety: thread-safe on a shared engine.
///
/// # Safety
/// `engine` is a live handle; `key_id` is NUL-terminated; `public_key` points to a `kp_out` whose
/// `data` has `capacity` writable bytes; `info` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn kp_get_public_key(
    engine: *const kp_engine,
    key_id: *const c_char,
    public_key: *mut kp_out,
    info: *mut *mut kp_record,
) -> kp_status {
    guard(|| {
        let engine = from_caller!(engine_arg(engine))?;
        let [out, data] = from_caller!(out_spans(public_key, "public_key", "public_key->data"));
        refuse_overlap(&mut [out, data, Span::output_of(info, "info")])?;
        let key_id = from_caller!(str_arg(key_id, "key_id"))?;
        let out = from_caller!(single_out(public_key, "public_key"))?;
        check_info(info)?;
        let outcome = engine
            .get_public_key(key_id)
            .map_err(Failure::from)
            .and_then(|response| {
                from_caller!(fill(&mut *out, &response.public_key))?;
                from_caller!(give_opt_record(info, || {
                    Record::new()
                        .str(kp_field::KeyId, &response.key_id)
                        .str(kp_field::KeySpec, response.key_spec.as_str())
                        .str(kp_field::KeyUsage, response.key_usage.as_str())
                        .list(
                            kp_field::EncryptionAlgorithms,
                            &response.encryption_algorithms,
                        )
                        .list(kp_field::SigningAlgorithms, &response.signing_algorithms)
                        .list(
                            kp_field::KeyAgreementAlgorithms,
                            &response.key_agreement_algorithms,
                        )
                }))
            });
        out.status = status_code(&outcome);
        outcome
    })
}

// ---- GenerateMac and VerifyMac -----------------------------------------------------------------

/// GenerateMac: the HMAC of `request->message` under an HMAC key, into `mac`, which must have
/// room for `kp_mac_len(request->mac_algorithm)` bytes (exactly that many are written, and their
/// number stored in `*mac_len`). `*info` (optional) receives a record with KEY_ID and
/// MAC_ALGORITHM.
///
/// Ownership: as `kp_sign`. Thread safety: thread-safe on a shared engine.
///
/// # Safety
/// `engine` is a live handle; `request` points to a valid item; `mac` has `capacity` writable
/// bytes; `mac_len` is writable; `info` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn kp_generate_mac(
    engine: *const kp_engine,
    request: *const kp_mac_item,
    mac: *mut u8,
    capacity: usize,
    mac_len: *mut usize,
    info: *mut *mut kp_record,
) -> kp_status {
    guard(|| {
        let engine = from_caller!(engine_arg(engine))?;
        let item = from_caller!(item_arg(request))?;
        refuse_overlap(&mut [
            Span::input(item.message, item.message_len, "request->message"),
            Span::output(mac, capacity, "mac"),
            Span::output_of(mac_len, "mac_len"),
            Span::output_of(info, "info"),
        ])?;
        let (request, needed) = from_caller!(mac_request(&item, &Memo::new()))?;
        let out_len = out_arg(mac_len, "mac_len")?;
        let out = from_caller!(out_bytes(mac, capacity, needed, "mac"))?;
        check_info(info)?;
        let response = engine.generate_mac(&request)?;
        let written = put(out, &response.mac, "mac")?;
        from_caller!(write_out(out_len, written));
        from_caller!(give_opt_record(info, || {
            Record::new()
                .str(kp_field::KeyId, &response.key_id)
                .str(kp_field::MacAlgorithm, response.mac_algorithm.as_str())
        }))
    })
}

/// GenerateMac, in a batch: item `i`'s MAC goes into `outputs[i]`, whose `capacity` must be at
/// least `kp_mac_len(items[i].mac_algorithm)` (see `kp_generate_mac_batch_sizes`). Statuses and
/// return value as `kp_encrypt_batch`.
///
/// Ownership and thread safety: as `kp_encrypt_batch`.
///
/// # Safety
/// As `kp_sign_batch`.
#[no_mangle]
pub unsafe extern "C" fn kp_generate_mac_batch(
    engine: *const kp_engine,
    items: *const kp_mac_item,
    count: usize,
    outputs: *mut kp_out,
) -> kp_status {
    guard(|| {
        let engine = from_caller!(engine_arg(engine))?;
        let items = from_caller!(array_arg(items, count, KP_MAX_BATCH_ITEMS, "items"))?;
        from_caller!(refuse_batch_overlap(
            items,
            outputs,
            "outputs",
            |i: &kp_mac_item| [("message", i.message, i.message_len)],
            &[],
        ))?;
        let memo = Memo::new();
        batch(
            from_caller!(outputs_arg(outputs, count))?,
            |i, _| from_caller!(mac_request(&items[i], &memo)),
            |requests| engine.generate_mac_batch(requests),
            |_, mac, out| from_caller!(fill(out, &mac)),
        )
    })
}

/// VerifyMac: checks `request->mac` over the message in constant time. Returns `KP_STATUS_OK`
/// for a MAC that verifies and `KP_STATUS_INVALID_MAC` for one that does not. `*info` (optional,
/// on success) receives a record with KEY_ID and MAC_ALGORITHM.
///
/// Ownership: as `kp_sign`. Thread safety: thread-safe on a shared engine.
///
/// # Safety
/// `engine` is a live handle; `request` points to a valid item; `info` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn kp_verify_mac(
    engine: *const kp_engine,
    request: *const kp_verify_mac_item,
    info: *mut *mut kp_record,
) -> kp_status {
    guard(|| {
        let engine = from_caller!(engine_arg(engine))?;
        let item = from_caller!(item_arg(request))?;
        refuse_overlap(&mut [
            Span::input(item.message, item.message_len, "request->message"),
            Span::input(item.mac, item.mac_len, "request->mac"),
            Span::output_of(info, "info"),
        ])?;
        let request = from_caller!(verify_mac_request(&item, &Memo::new()))?;
        check_info(info)?;
        let response = engine.verify_mac(&request)?;
        from_caller!(give_opt_record(info, || {
            Record::new()
                .str(kp_field::KeyId, &response.key_id)
                .str(kp_field::MacAlgorithm, response.mac_algorithm.as_str())
        }))
    })
}

/// VerifyMac, in a batch: `statuses[i]` is set for every item (`KP_STATUS_OK`,
/// `KP_STATUS_INVALID_MAC`, or why the item could not be checked). Return value as
/// `kp_verify_batch`.
///
/// Ownership and thread safety: as `kp_verify_batch`.
///
/// # Safety
/// As `kp_verify_batch`.
#[no_mangle]
pub unsafe extern "C" fn kp_verify_mac_batch(
    engine: *const kp_engine,
    items: *const kp_verify_mac_item,
    count: usize,
    statuses: *mut u32,
) -> kp_status {
    let inputs = |i: &kp_verify_mac_item| {
        [
            ("message", i.message, i.message_len),
            ("mac", i.mac, i.mac_len),
        ]
    };
    from_caller!(status_batch(
        engine,
        items,
        count,
        statuses,
        inputs,
        verify_mac_request,
        kp::Engine::verify_mac_batch,
    ))
}

// ---- DeriveSharedSecret ------------------------------------------------------------------------

/// DeriveSharedSecret: ECDH between a KEY_AGREEMENT key and a peer's public key (DER
/// SubjectPublicKeyInfo on the key's curve, e.g. from `kp_get_public_key`). The raw shared secret
/// (the x coordinate: 32, 48 or 66 bytes) comes back in a new `kp_secret_buffer`
/// (`*shared_secret`, locked memory the library zeroes when freed). `*info` (optional) receives a
/// record with KEY_ID, KEY_AGREEMENT_ALGORITHM and ORIGIN.
///
/// Ownership: on success `*shared_secret` is a new secret buffer the caller frees with
/// `kp_secret_buffer_free`; `*info`, when asked for, a new record. The engine's copy is zeroed.
/// Thread safety: thread-safe on a shared engine.
///
/// # Safety
/// `engine` is a live handle; `key_id` is NUL-terminated; `public_key` has `public_key_len`
/// readable bytes; `shared_secret` is writable; `info` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn kp_derive_shared_secret(
    engine: *const kp_engine,
    key_id: *const c_char,
    key_agreement_algorithm: u32,
    public_key: *const u8,
    public_key_len: usize,
    shared_secret: *mut *mut kp_secret_buffer,
    info: *mut *mut kp_record,
) -> kp_status {
    guard(|| {
        let engine = from_caller!(engine_arg(engine))?;
        refuse_overlap(&mut [
            Span::input(public_key, public_key_len, "public_key"),
            Span::output_of(shared_secret, "shared_secret"),
            Span::output_of(info, "info"),
        ])?;
        let request = DeriveSharedSecretRequest {
            key_id: from_caller!(str_arg(key_id, "key_id"))?,
            key_agreement_algorithm: self::key_agreement_algorithm(key_agreement_algorithm)?,
            public_key: from_caller!(bytes_arg(public_key, public_key_len, "public_key"))?,
        };
        let secret_out = out_arg(shared_secret, "shared_secret")?;
        check_info(info)?;
        let response = engine.derive_shared_secret(&request)?;
        let secret = secret_buffer(engine, response.shared_secret.expose())?;
        from_caller!(write_out(secret_out, secret));
        from_caller!(give_opt_record(info, || {
            Record::new()
                .str(kp_field::KeyId, &response.key_id)
                .str(
                    kp_field::KeyAgreementAlgorithm,
                    response.key_agreement_algorithm.as_str(),
                )
                .str(kp_field::Origin, response.key_origin.as_str())
        }))
    })
}

/// A new secret buffer holding a copy of `bytes`.
fn secret_buffer(engine: &kp::Engine, bytes: &[u8]) -> Outcome<*mut kp_secret_buffer> {
    let secret = super::handles::new_secret_buffer(engine, bytes.len().max(1))?;
    // SAFETY: a live handle just made; nobody else has it.
    match unsafe { handle_mut(secret, "secret") } {
        Ok(buffer) if buffer.len() == bytes.len() => {
            buffer
                .expose_mut(kp::SecretAccess::granted())
                .copy_from_slice(bytes);
            Ok(secret)
        }
        _ => {
            // SAFETY: the handle was made above and is not used again.
            unsafe { super::handles::kp_secret_buffer_free(secret) };
            Err(Failure::new(
                kp_status::Internal,
                "Internal: an empty secret came back from the engine",
            ))
        }
    }
}

// ---- GenerateDataKeyPair -----------------------------------------------------------------------

/// # Safety
/// The item's pointers are valid as `kp_data_key_pair_item` documents, for `'a`.
unsafe fn key_pair_request<'a>(
    item: &kp_data_key_pair_item,
) -> Outcome<GenerateDataKeyPairRequest<'a>> {
    Ok(GenerateDataKeyPairRequest {
        key_id: from_caller!(str_arg(item.key_id, "key_id"))?,
        encryption_context: from_caller!(context_arg(item.context, "context"))?,
        key_pair_spec: key_pair_spec(item.key_pair_spec)?,
    })
}

/// Checks that a data key pair's outputs fit their `kp_out`s; if not, sets each `len` to the size
/// needed.
fn check_pair_room(
    response: &kp::GenerateDataKeyPairResponse,
    private_key_ciphertext: &mut kp_out,
    public_key: &mut kp_out,
) -> Outcome<()> {
    let blob = &response.private_key_ciphertext_blob;
    let public = &response.public_key;
    if private_key_ciphertext.capacity < blob.len() || public_key.capacity < public.len() {
        private_key_ciphertext.len = blob.len();
        public_key.len = public.len();
        return Err(Failure::new(
            kp_status::BufferTooSmall,
            format!(
                "private_key_ciphertext has {} bytes and public_key {}; the outputs need {} and {} \
                 (KP_MAX_PRIVATE_KEY_CIPHERTEXT_LEN and KP_MAX_PUBLIC_KEY_LEN always suffice)",
                private_key_ciphertext.capacity,
                public_key.capacity,
                blob.len(),
                public.len()
            ),
        ));
    }
    Ok(())
}

/// Delivers a data key pair's public key and encrypted private key: both or neither.
///
/// # Safety
/// As [`fill`], for both.
unsafe fn deliver_pair(
    response: &kp::GenerateDataKeyPairResponse,
    private_key_ciphertext: &mut kp_out,
    public_key: &mut kp_out,
) -> Outcome<()> {
    check_pair_room(response, private_key_ciphertext, public_key)?;
    from_caller!(fill(
        private_key_ciphertext,
        &response.private_key_ciphertext_blob,
    ))?;
    from_caller!(fill(public_key, &response.public_key))
}

fn pair_record(response: &kp::GenerateDataKeyPairResponse) -> Record {
    Record::new()
        .str(kp_field::KeyId, &response.key_id)
        .str(kp_field::KeyPairSpec, response.key_pair_spec.as_str())
        .str(kp_field::KeyMaterialId, &response.key_material_id)
}

/// GenerateDataKeyPair: a new asymmetric key pair of `request->key_pair_spec`. The private key
/// (PKCS#8 DER) comes back in plaintext in a new `kp_secret_buffer` (`*private_key_plaintext`)
/// and encrypted under the symmetric key `request->key_id` (a keyplane ciphertext blob that
/// `kp_decrypt` opens) in `private_key_ciphertext`; the public key (DER SubjectPublicKeyInfo) in
/// `public_key`. Buffers of `KP_MAX_PRIVATE_KEY_CIPHERTEXT_LEN` and `KP_MAX_PUBLIC_KEY_LEN` bytes
/// always suffice; a shorter one that the output does not fit gets `KP_STATUS_BUFFER_TOO_SMALL`
/// with nothing written but each `len` set to the size needed (sizes vary by a few bytes from
/// RSA key to RSA key). Each `kp_out`'s `status` is set to the call's status. `*info` (optional)
/// receives a record with KEY_ID, KEY_PAIR_SPEC and KEY_MATERIAL_ID.
///
/// Ownership: on success `*private_key_plaintext` is a new secret buffer the caller frees with
/// `kp_secret_buffer_free` (which zeroes it); the `kp_out` buffers stay the caller's; `*info`,
/// when asked for, is a new record. Thread safety: thread-safe on a shared engine.
///
/// # Safety
/// `engine` is a live handle; `request` points to a valid item; `private_key_plaintext` is
/// writable; `private_key_ciphertext` and `public_key` point to distinct `kp_out`s whose `data`
/// have `capacity` writable bytes; `info` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn kp_generate_data_key_pair(
    engine: *const kp_engine,
    request: *const kp_data_key_pair_item,
    private_key_plaintext: *mut *mut kp_secret_buffer,
    private_key_ciphertext: *mut kp_out,
    public_key: *mut kp_out,
    info: *mut *mut kp_record,
) -> kp_status {
    guard(|| {
        let engine = from_caller!(engine_arg(engine))?;
        let plaintext = Span::output_of(private_key_plaintext, "private_key_plaintext");
        from_caller!(refuse_pair_overlap(
            private_key_ciphertext,
            public_key,
            info,
            plaintext
        ))?;
        let request = from_caller!(key_pair_request(&from_caller!(item_arg(request))?))?;
        let plaintext_out = out_arg(private_key_plaintext, "private_key_plaintext")?;
        let (blob_out, public_out) = from_caller!(pair_outs(private_key_ciphertext, public_key))?;
        check_info(info)?;
        let outcome = engine
            .generate_data_key_pair(&request)
            .map_err(Failure::from)
            .and_then(|response| {
                let plaintext = response.private_key_plaintext.as_ref().ok_or_else(|| {
                    Failure::new(
                        kp_status::Internal,
                        "Internal: GenerateDataKeyPair returned no private key",
                    )
                })?;
                check_pair_room(&response, blob_out, public_out)?;
                let secret = secret_buffer(engine, plaintext.expose())?;
                if let Err(f) =
                    from_caller!(deliver_pair(&response, &mut *blob_out, &mut *public_out))
                {
                    // SAFETY: the handle was made above and is not used again.
                    unsafe { super::handles::kp_secret_buffer_free(secret) };
                    return Err(f);
                }
                from_caller!(write_out(plaintext_out, secret));
                from_caller!(give_opt_record(info, || pair_record(&response)))
            });
        let status = status_code(&outcome);
        blob_out.status = status;
        public_out.status = status;
        outcome
    })
}

/// Refuses a data key pair call whose outputs overlap: the two `kp_out`s and their buffers,
/// `info`, and `plaintext` (the private key's out-pointer, or an empty span).
///
/// # Safety
/// Each `kp_out` is NULL, misaligned or readable.
unsafe fn refuse_pair_overlap(
    private_key_ciphertext: *const kp_out,
    public_key: *const kp_out,
    info: *mut *mut kp_record,
    plaintext: Span,
) -> Outcome<()> {
    if std::ptr::eq(private_key_ciphertext, public_key) {
        return Ok(()); // pair_outs refuses it (KP_STATUS_INVALID_ARGUMENT, as documented)
    }
    let blob = "private_key_ciphertext";
    let [blob, blob_data] = from_caller!(out_spans(
        private_key_ciphertext,
        blob,
        "private_key_ciphertext->data"
    ));
    let [public, public_data] =
        from_caller!(out_spans(public_key, "public_key", "public_key->data"));
    let info = Span::output_of(info, "info");
    refuse_overlap(&mut [blob, blob_data, public, public_data, info, plaintext])
}

/// The two `kp_out`s of a data key pair call, checked and distinct.
///
/// # Safety
/// As [`single_out`], for both.
unsafe fn pair_outs<'a>(
    private_key_ciphertext: *mut kp_out,
    public_key: *mut kp_out,
) -> Outcome<(&'a mut kp_out, &'a mut kp_out)> {
    if std::ptr::eq(private_key_ciphertext, public_key) {
        return Err(Failure::new(
            kp_status::InvalidArgument,
            "private_key_ciphertext and public_key are the same kp_out",
        ));
    }
    // SAFETY: each `kp_out` is as `single_out` asks (the caller's promise), and the two are
    // distinct (checked above), so the two unique references it makes do not alias.
    unsafe {
        Ok((
            single_out(private_key_ciphertext, "private_key_ciphertext")?,
            single_out(public_key, "public_key")?,
        ))
    }
}

/// GenerateDataKeyPairWithoutPlaintext: as `kp_generate_data_key_pair`, without the plaintext
/// private key.
///
/// Ownership and thread safety: as `kp_generate_data_key_pair`.
///
/// # Safety
/// As `kp_generate_data_key_pair`, without `private_key_plaintext`.
#[no_mangle]
pub unsafe extern "C" fn kp_generate_data_key_pair_without_plaintext(
    engine: *const kp_engine,
    request: *const kp_data_key_pair_item,
    private_key_ciphertext: *mut kp_out,
    public_key: *mut kp_out,
    info: *mut *mut kp_record,
) -> kp_status {
    guard(|| {
        let engine = from_caller!(engine_arg(engine))?;
        let none = Span::output(std::ptr::null(), 0, "");
        from_caller!(refuse_pair_overlap(
            private_key_ciphertext,
            public_key,
            info,
            none
        ))?;
        let request = from_caller!(key_pair_request(&from_caller!(item_arg(request))?))?;
        let (blob_out, public_out) = from_caller!(pair_outs(private_key_ciphertext, public_key))?;
        check_info(info)?;
        let outcome = engine
            .generate_data_key_pair_without_plaintext(&request)
            .map_err(Failure::from)
            .and_then(|response| {
                from_caller!(deliver_pair(&response, &mut *blob_out, &mut *public_out))?;
                from_caller!(give_opt_record(info, || pair_record(&response)))
            });
        let status = status_code(&outcome);
        blob_out.status = status;
        public_out.status = status;
        outcome
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enumerations_cover_the_engine() {
        for (i, a) in SigningAlgorithm::ALL.iter().enumerate() {
            assert_eq!(signing_algorithm(i as u32 + 1).unwrap(), *a);
        }
        assert!(signing_algorithm(0).is_err());
        assert!(signing_algorithm(SigningAlgorithm::ALL.len() as u32 + 1).is_err());
        for (i, a) in MacAlgorithm::ALL.iter().enumerate() {
            assert_eq!(mac_algorithm(i as u32 + 1).unwrap(), *a);
        }
        for (i, a) in MessageType::ALL.iter().enumerate() {
            assert_eq!(message_type(i as u32).unwrap(), *a);
        }
        for (i, a) in KeyAgreementAlgorithm::ALL.iter().enumerate() {
            assert_eq!(key_agreement_algorithm(i as u32 + 1).unwrap(), *a);
        }
        for (i, s) in DataKeyPairSpec::ALL.iter().enumerate() {
            assert_eq!(key_pair_spec(i as u32 + 1).unwrap(), *s);
        }
        assert_eq!(
            kp_mac_len(kp_mac_algorithm::HmacSha_224 as u32),
            28,
            "HMAC-SHA-224"
        );
        assert_eq!(kp_mac_len(kp_mac_algorithm::HmacSha_512 as u32), 64);
        assert_eq!(kp_mac_len(0), 0);
    }

    /// Every Sign, Verify, MAC, GetPublicKey, DeriveSharedSecret and data key pair call, single
    /// and batch, refuses an output over one of its inputs (in place and partly) or over another
    /// output, before anything is written (issue 15, finding 6).
    #[test]
    fn asymmetric_calls_refuse_overlapping_buffers() {
        use crate::api::handles::{into_raw, kp_engine_free};
        use crate::api::test_support::{Arena, Refusals};
        use std::ptr::{null, null_mut};
        let inner = kp::Engine::in_memory().unwrap();
        let key = |usage, spec| {
            let request = kp::CreateKeyRequest {
                key_usage: Some(usage),
                key_spec: Some(spec),
                ..Default::default()
            };
            let key_id = inner.create_key(request).unwrap().key_id;
            std::ffi::CString::new(key_id).unwrap()
        };
        let signer = key(KeyUsage::SignVerify, KeySpec::EccNistP256);
        let hmac = key(KeyUsage::GenerateVerifyMac, KeySpec::Hmac256);
        let agree = key(KeyUsage::KeyAgreement, KeySpec::EccNistP256);
        let symmetric = key(KeyUsage::EncryptDecrypt, KeySpec::SymmetricDefault);
        let engine = into_raw::<kp_engine>(crate::api::handles::EngineHandle::new(inner));
        let arena = Arena::new();
        let at = |offset: usize| arena.at(offset);
        let out = |offset: usize, capacity: usize| arena.out(offset, capacity);
        let sign = kp_sign_item {
            key_id: signer.as_ptr(),
            message: at(0),
            message_len: 32,
            message_type: 0,
            signing_algorithm: kp_signing_algorithm::EcdsaSha_256 as u32,
        };
        let verify = kp_verify_item {
            key_id: signer.as_ptr(),
            message: at(0),
            message_len: 32,
            message_type: 0,
            signature: at(64),
            signature_len: 72,
            signing_algorithm: kp_signing_algorithm::EcdsaSha_256 as u32,
        };
        let mac = kp_mac_item {
            key_id: hmac.as_ptr(),
            message: at(0),
            message_len: 32,
            mac_algorithm: kp_mac_algorithm::HmacSha_256 as u32,
        };
        let verify_mac = kp_verify_mac_item {
            key_id: hmac.as_ptr(),
            message: at(0),
            message_len: 32,
            mac: at(64),
            mac_len: 32,
            mac_algorithm: kp_mac_algorithm::HmacSha_256 as u32,
        };
        let pair = kp_data_key_pair_item {
            key_id: symmetric.as_ptr(),
            context: null(),
            key_pair_spec: kp_data_key_pair_spec::EccNistP256 as u32,
        };
        let mut len = 0usize;
        let mut plaintext = null_mut();
        let mut refused = Refusals::default();
        // SAFETY: (every call below) a live handle; every pointer lies in the arena or a local, with
        // the length given.
        unsafe {
            // Sign: in place, then the signature starting inside the message.
            let status = kp_sign(engine, &sign, at(0), 256, &mut len, null_mut());
            refused.check(
                "kp_sign in place",
                status,
                &["request->message", "signature"],
            );
            let status = kp_sign(engine, &sign, at(31), 256, &mut len, null_mut());
            refused.check("kp_sign partly", status, &["request->message", "signature"]);
            let items = [
                sign,
                kp_sign_item {
                    message: at(300),
                    ..sign
                },
            ];
            let mut outputs = [out(600, 80), out(290, 80)];
            let status = kp_sign_batch(engine, items.as_ptr(), 2, outputs.as_mut_ptr());
            refused.check(
                "kp_sign_batch",
                status,
                &["outputs[1].data", "items[1].message"],
            );
            // Verify: `info` written over the signature; statuses over a message.
            let info = at(72).cast::<*mut kp_record>();
            let status = kp_verify(engine, &verify, info);
            refused.check("kp_verify", status, &["info", "request->signature"]);
            let statuses = at(8).cast::<u32>();
            let status = kp_verify_batch(engine, &verify, 1, statuses);
            refused.check("kp_verify_batch", status, &["statuses", "items[0].message"]);
            // GenerateMac and VerifyMac.
            let status = kp_generate_mac(engine, &mac, at(0), 32, &mut len, null_mut());
            refused.check(
                "kp_generate_mac in place",
                status,
                &["request->message", "mac"],
            );
            let status = kp_generate_mac(engine, &mac, at(16), 32, &mut len, null_mut());
            refused.check(
                "kp_generate_mac partly",
                status,
                &["request->message", "mac"],
            );
            let mut outputs = [out(600, 32), out(640, 32)];
            let items = [
                mac,
                kp_mac_item {
                    message: at(660),
                    ..mac
                },
            ];
            let status = kp_generate_mac_batch(engine, items.as_ptr(), 2, outputs.as_mut_ptr());
            refused.check(
                "kp_generate_mac_batch",
                status,
                &["outputs[1].data", "items[1].message"],
            );
            let status = kp_verify_mac(engine, &verify_mac, at(64).cast());
            refused.check("kp_verify_mac", status, &["info", "request->mac"]);
            let status = kp_verify_mac_batch(engine, &verify_mac, 1, at(88).cast());
            refused.check("kp_verify_mac_batch", status, &["statuses", "items[0].mac"]);
            let mut sizes = [0usize; 2];
            let status = kp_generate_mac_batch_sizes(
                items.as_ptr(),
                2,
                items.as_ptr().cast_mut().cast(),
                sizes.as_mut_ptr(),
            );
            refused.check("kp_generate_mac_batch_sizes", status, &["sizes", "items"]);
            // GetPublicKey: the kp_out's buffer is the kp_out itself.
            let mut public = out(0, 0);
            public.data = std::ptr::addr_of_mut!(public).cast();
            public.capacity = 64;
            let status = kp_get_public_key(engine, signer.as_ptr(), &mut public, null_mut());
            refused.check(
                "kp_get_public_key",
                status,
                &["public_key->data", "public_key"],
            );
            // DeriveSharedSecret: the secret's handle written into the peer's public key.
            let secret = at(40).cast::<*mut kp_secret_buffer>();
            let status =
                kp_derive_shared_secret(engine, agree.as_ptr(), 1, at(0), 91, secret, null_mut());
            refused.check(
                "kp_derive_shared_secret",
                status,
                &["shared_secret", "public_key"],
            );
            // Data key pairs: the two outputs' buffers share bytes; one kp_out given twice.
            let (mut blob, mut public) = (out(0, 400), out(399, 200));
            let status = kp_generate_data_key_pair(
                engine,
                &pair,
                &mut plaintext,
                &mut blob,
                &mut public,
                null_mut(),
            );
            refused.check(
                "kp_generate_data_key_pair",
                status,
                &["private_key_ciphertext->data", "public_key->data"],
            );
            // Without plaintext: `info` written into the public key's buffer. (One kp_out given
            // for both stays KP_STATUS_INVALID_ARGUMENT, as documented.)
            let mut blob = out(600, 100);
            let info = at(400).cast();
            let status = kp_generate_data_key_pair_without_plaintext(
                engine,
                &pair,
                &mut blob,
                &mut public,
                info,
            );
            refused.check(
                "kp_generate_data_key_pair_without_plaintext",
                status,
                &["info", "public_key->data"],
            );
            let status = kp_generate_data_key_pair_without_plaintext(
                engine,
                &pair,
                &mut blob,
                &mut blob,
                null_mut(),
            );
            assert_eq!(status, kp_status::InvalidArgument);
            kp_engine_free(engine);
        }
        refused.finish();
        assert!(plaintext.is_null());
        arena.assert_unchanged();
    }

    #[test]
    fn size_bounds_hold_for_every_supported_spec() {
        let engine = kp::Engine::in_memory().unwrap();
        let symmetric = engine.create_key(kp::CreateKeyRequest::default()).unwrap();
        for spec in DataKeyPairSpec::ALL {
            if !spec.key_spec().is_supported() {
                continue;
            }
            let pair = engine
                .generate_data_key_pair_without_plaintext(&GenerateDataKeyPairRequest {
                    key_id: &symmetric.key_id,
                    encryption_context: None,
                    key_pair_spec: *spec,
                })
                .unwrap();
            assert!(pair.public_key.len() <= super::super::limits::KP_MAX_PUBLIC_KEY_LEN);
            assert!(
                pair.private_key_ciphertext_blob.len()
                    <= super::super::limits::KP_MAX_PRIVATE_KEY_CIPHERTEXT_LEN
            );
        }
        for spec in KeySpec::ALL {
            for algorithm in spec.signing_algorithms(KeyUsage::SignVerify) {
                let name = std::ffi::CString::new(spec.as_str()).unwrap();
                let value = SigningAlgorithm::ALL
                    .iter()
                    .position(|a| *a == algorithm)
                    .unwrap() as u32
                    + 1;
                // SAFETY: a NUL-terminated string.
                let max = unsafe { kp_signature_max_len(name.as_ptr(), value) };
                assert!(max <= super::super::limits::KP_MAX_SIGNATURE_LEN);
                assert_eq!(max == 0, !spec.is_supported(), "{spec} {algorithm}");
            }
        }
    }
}
