//! The data plane: Encrypt, Decrypt, ReEncrypt, GenerateDataKey(+WithoutPlaintext) and
//! GenerateRandom, one at a time and in batches, with symmetric keys and (Encrypt, Decrypt,
//! ReEncrypt) RSA keys.
//!
//! Requests are plain C structs (`kp_*_item`) used by both forms. Outputs go into caller buffers
//! whose exact sizes `kp_ciphertext_len`, `kp_plaintext_len` and the `*_batch_sizes` calls give
//! for symmetric items (for RSA items the sizes calls give bounds, and the output is checked when
//! the engine answers). Encrypt and Decrypt batches lend the engine the caller's buffers
//! (`encrypt_batch_into`, `decrypt_batch_into`), which seals and opens in place: no copy and no
//! allocation per item, three vectors per call (requests, buffers, index). The other batches
//! allocate two vectors per call; the engine allocates each item's result, which is copied out
//! and dropped (plaintexts zeroed).

use std::cell::Cell;
use std::ffi::c_char;

use kp::ciphertext::{
    blob_len, max_blob_len, plaintext_len_of, MAX_ANY_BLOB_LEN, MAX_PLAINTEXT_LIMIT, OVERHEAD,
};
use kp::dataplane::{MAX_DATA_KEY_BYTES, MAX_RANDOM_BYTES};
use kp::{
    DataKeySpec, DecryptRequest, EncryptRequest, EncryptionAlgorithm, EncryptionContext,
    GenerateDataKeyRequest, IntoError, KeySpec, ReEncryptRequest,
};
use zeroize::Zeroize;

use super::caller::from_caller;
use super::control::engine_arg;
use super::failure::{Failure, Outcome};
use super::ffi::opt_struct_arg;
use super::ffi::{
    array_arg, bytes_arg, guard, opt_str_arg, out_arg, out_bytes, str_arg, write_out,
};
use super::handles::{
    context_arg, handle_mut, kp_context, kp_engine, kp_secret_buffer, new_secret_buffer,
};
use super::limits::{KP_MAX_BATCH_ITEMS, KP_MAX_RSA_CIPHERTEXT_LEN};
use super::overlap::{refuse_batch_overlap, refuse_overlap, OutputSlot, Span};
use super::record::{give_opt_record, kp_field, kp_record, Record};
use super::status::kp_status;

/// An encryption algorithm, in request items.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum kp_encryption_algorithm {
    /// Not given: Encrypt uses SYMMETRIC_DEFAULT; Decrypt takes the key's.
    Unspecified = 0,
    /// AES-256-GCM (the only one symmetric keys take).
    SymmetricDefault = 1,
    /// RSAES-OAEP with SHA-1 (RSA keys).
    RsaesOaepSha_1 = 2,
    /// RSAES-OAEP with SHA-256 (RSA keys).
    RsaesOaepSha_256 = 3,
    /// SM2 public key encryption (SM2 keys).
    Sm2pke = 4,
}

/// A data key spec, in `kp_data_key_item`.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum kp_data_key_spec {
    /// Not given: set `number_of_bytes` instead.
    Unspecified = 0,
    /// A 32-byte AES-256 key.
    Aes_256 = 1,
    /// A 16-byte AES-128 key.
    Aes_128 = 2,
}

/// An Encrypt request.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct kp_encrypt_item {
    /// Key id, key ARN, alias name or alias ARN (NUL-terminated). Required.
    pub key_id: *const c_char,
    /// The plaintext: `plaintext_len` bytes (1 to the engine's max_plaintext_bytes).
    pub plaintext: *const u8,
    /// Length of the plaintext in bytes.
    pub plaintext_len: usize,
    /// Encryption context, or NULL for none.
    pub context: *const kp_context,
    /// A `kp_encryption_algorithm`; 0 for SYMMETRIC_DEFAULT.
    pub encryption_algorithm: u32,
}

/// A Decrypt request.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct kp_decrypt_item {
    /// The ciphertext blob: `ciphertext_len` bytes.
    pub ciphertext: *const u8,
    /// Length of the blob in bytes.
    pub ciphertext_len: usize,
    /// NULL, or the key the blob must have been encrypted under (else `KP_STATUS_INCORRECT_KEY`).
    pub key_id: *const c_char,
    /// The encryption context it was encrypted with, or NULL for none.
    pub context: *const kp_context,
    /// A `kp_encryption_algorithm`; 0 when not given.
    pub encryption_algorithm: u32,
}

/// A ReEncrypt request: decrypt and encrypt again under another key or context, inside the
/// engine (the plaintext never reaches the caller).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct kp_re_encrypt_item {
    /// The ciphertext blob: `ciphertext_len` bytes.
    pub ciphertext: *const u8,
    /// Length of the blob in bytes.
    pub ciphertext_len: usize,
    /// NULL, or the key the blob must have been encrypted under.
    pub source_key_id: *const c_char,
    /// The context the blob was encrypted with, or NULL for none.
    pub source_context: *const kp_context,
    /// A `kp_encryption_algorithm` for decryption; 0 when not given.
    pub source_encryption_algorithm: u32,
    /// The key to encrypt under (NUL-terminated). Required.
    pub destination_key_id: *const c_char,
    /// The context to encrypt with, or NULL for none.
    pub destination_context: *const kp_context,
    /// A `kp_encryption_algorithm` for encryption; 0 for SYMMETRIC_DEFAULT.
    pub destination_encryption_algorithm: u32,
}

/// A GenerateDataKey (or ...WithoutPlaintext) request: exactly one of `key_spec` and
/// `number_of_bytes`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct kp_data_key_item {
    /// The key that encrypts the data key (NUL-terminated). Required.
    pub key_id: *const c_char,
    /// Encryption context, or NULL for none.
    pub context: *const kp_context,
    /// A `kp_data_key_spec`; 0 when `number_of_bytes` is given.
    pub key_spec: u32,
    /// Data key length, 1 to 1024 bytes; 0 when `key_spec` is given.
    pub number_of_bytes: u32,
}

/// One output of a batch call (and of the single calls whose output size is known only once the
/// engine answers: `kp_get_public_key`, `kp_generate_data_key_pair`). The caller sets `data` and
/// `capacity`; the call sets `status` for every item and, for items whose status is
/// `KP_STATUS_OK`, writes `len` bytes at `data`. For `KP_STATUS_BUFFER_TOO_SMALL`, `len` is set to
/// the size needed and nothing is written at `data`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct kp_out {
    /// Where the item's output goes: `capacity` writable bytes (NULL when `capacity` is 0).
    pub data: *mut u8,
    /// Bytes available at `data` (for GenerateRandom: the number of bytes wanted).
    pub capacity: usize,
    /// Set on success: bytes written at `data`; with `KP_STATUS_BUFFER_TOO_SMALL`: bytes needed.
    pub len: usize,
    /// Set for every item: a `kp_status`, `KP_STATUS_OK` (0) for success.
    pub status: u32,
}

/// A byte string a call reads: `len` bytes at `data` (NULL when `len` is 0).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct kp_bytes {
    /// The bytes: `len` readable bytes.
    pub data: *const u8,
    /// Their number.
    pub len: usize,
}

impl OutputSlot for kp_out {
    fn buffer(&self) -> (*const u8, usize) {
        (self.data, self.capacity)
    }
}

// ---- sizes -------------------------------------------------------------------------------------

// Every size here comes from the engine's one definition of the blob (`kp::ciphertext`): the
// keyplane blob (algorithm 1: keys keyplane or an HSM holds) is `blob_len` exactly; a key in an
// external key store writes a double-encrypted blob (algorithm 2) whose length depends on the XKS
// proxy's answer, at most `max_blob_len`; a blob's plaintext length is read from its framing.

/// The algorithm-1 blob length for a plaintext, if some engine could accept that plaintext.
pub(crate) fn ciphertext_len(plaintext_len: usize) -> Option<usize> {
    (1..=MAX_PLAINTEXT_LIMIT)
        .contains(&plaintext_len)
        .then(|| blob_len(plaintext_len))
}

/// The longest blob of any algorithm for a plaintext, if some engine could accept it.
pub(crate) fn ciphertext_max_len(plaintext_len: usize) -> Option<usize> {
    ciphertext_len(plaintext_len).map(|_| max_blob_len(plaintext_len))
}

/// The most plaintext a blob of `len` bytes can hold (exact for algorithm 1, a bound for
/// algorithm 2), if a blob of either algorithm can have that length.
pub(crate) fn plaintext_len(len: usize) -> Option<usize> {
    (OVERHEAD + 1..=MAX_ANY_BLOB_LEN)
        .contains(&len)
        .then(|| (len - OVERHEAD).min(MAX_PLAINTEXT_LIMIT))
}

/// The output room of a symmetric encryption of `plaintext_len` bytes under a key not known
/// yet: at least the algorithm-1 blob, up to the longest blob of any algorithm.
fn sealed_room(plaintext_len: usize) -> Room {
    match (
        ciphertext_len(plaintext_len),
        ciphertext_max_len(plaintext_len),
    ) {
        (Some(min), Some(max)) => Room::Range(min, max),
        _ => Room::Exact(0),
    }
}

/// The exact plaintext length of the blob at `ptr` (`len` bytes), from its framing; `None` when
/// the pointer or length is refused or the bytes are no keyplane blob.
///
/// # Safety
/// As [`bytes_arg`].
unsafe fn blob_plaintext_len(ptr: *const u8, len: usize) -> Option<usize> {
    let blob = from_caller!(bytes_arg(ptr, len, "ciphertext")).ok()?;
    plaintext_len_of(blob)
}

/// The RSA key spec whose ciphertexts (modulus-sized) are `len` bytes long.
fn rsa_spec_of_ciphertext(len: usize) -> Option<KeySpec> {
    match len {
        256 => Some(KeySpec::Rsa2048),
        384 => Some(KeySpec::Rsa3072),
        512 => Some(KeySpec::Rsa4096),
        _ => None,
    }
}

/// The largest plaintext an RSA-OAEP ciphertext of `len` bytes can hold under `algorithm` (the
/// engine's limits); 0 when no RSA ciphertext has that length.
fn rsa_plaintext_bound(len: usize, algorithm: EncryptionAlgorithm) -> usize {
    rsa_spec_of_ciphertext(len)
        .and_then(|spec| kp::rsa_oaep_max_plaintext(spec, algorithm).ok())
        .unwrap_or(0)
}

pub(crate) fn algorithm(value: u32, what: &str) -> Outcome<Option<EncryptionAlgorithm>> {
    Ok(Some(match value {
        0 => return Ok(None),
        1 => EncryptionAlgorithm::SymmetricDefault,
        2 => EncryptionAlgorithm::RsaesOaepSha1,
        3 => EncryptionAlgorithm::RsaesOaepSha256,
        4 => EncryptionAlgorithm::Sm2Pke,
        other => {
            return Err(Failure::new(
                kp_status::InvalidEnumValue,
                format!("{what} {other} is not a kp_encryption_algorithm"),
            ))
        }
    }))
}

/// Whether an item's algorithm field asks for the symmetric blob format (0 or SYMMETRIC_DEFAULT),
/// whose sizes are known before the call. Other algorithms (RSA-OAEP) write the key's modulus
/// size or less, known only once the engine has answered.
#[inline]
fn is_symmetric(value: u32) -> bool {
    value == 0 || value == kp_encryption_algorithm::SymmetricDefault as u32
}

/// How much of an output buffer a call may use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Room {
    /// Exactly this many bytes, known before the call: a shorter buffer is refused before the
    /// engine runs.
    Exact(usize),
    /// At least the first many bytes (a shorter buffer is refused before the engine runs), and
    /// up to the second: the output's exact size is known only after the engine ran (a blob
    /// whose key may be in an external key store).
    Range(usize, usize),
    /// Up to the whole buffer: the output's size is known only after the engine ran.
    Whole,
}

impl Room {
    /// The bytes of a `capacity`-byte buffer to lend; more than `capacity` (then refused as too
    /// small) when the buffer is shorter than the least the output takes.
    fn bytes(self, capacity: usize) -> usize {
        match self {
            Room::Exact(n) => n,
            Room::Range(min, _) if capacity < min => min,
            Room::Range(_, max) => capacity.min(max),
            Room::Whole => capacity,
        }
    }
}

/// What the items of one batch share, checked once: a batch usually names one key and one context
/// for many items, and an item whose `key_id` (or `context`) is the very pointer the previous
/// item's was reuses its checked value instead of measuring and validating the string (or reading
/// the handle) again. The caller promises that items do not change during the call, so the same
/// pointer holds the same string.
pub(crate) struct Memo<'a> {
    key_id: Cell<(*const c_char, &'a str)>,
    context: Cell<(*const kp_context, Option<&'a EncryptionContext>)>,
}

impl<'a> Memo<'a> {
    pub(crate) fn new() -> Self {
        Memo {
            key_id: Cell::new((std::ptr::null(), "")),
            context: Cell::new((std::ptr::null(), None)),
        }
    }

    /// A required key id, as [`str_arg`].
    ///
    /// # Safety
    /// As [`str_arg`], for `'a`.
    #[inline(always)]
    pub(crate) unsafe fn key_id(&self, ptr: *const c_char, what: &str) -> Outcome<&'a str> {
        let (last, value) = self.key_id.get();
        if !ptr.is_null() && ptr == last {
            return Ok(value);
        }
        let value = from_caller!(str_arg(ptr, what))?;
        self.key_id.set((ptr, value));
        Ok(value)
    }

    /// An optional key id (NULL is `None`).
    ///
    /// # Safety
    /// As [`str_arg`], for `'a`.
    #[inline]
    pub(crate) unsafe fn opt_key_id(
        &self,
        ptr: *const c_char,
        what: &str,
    ) -> Outcome<Option<&'a str>> {
        if ptr.is_null() {
            return Ok(None);
        }
        from_caller!(self.key_id(ptr, what)).map(Some)
    }

    /// An encryption context (NULL is none), as [`context_arg`].
    ///
    /// # Safety
    /// As [`context_arg`], for `'a`.
    #[inline(always)]
    pub(crate) unsafe fn context(
        &self,
        ptr: *const kp_context,
        what: &str,
    ) -> Outcome<Option<&'a EncryptionContext>> {
        if ptr.is_null() {
            return Ok(None);
        }
        let (last, value) = self.context.get();
        if ptr == last {
            return Ok(value);
        }
        let value = from_caller!(context_arg(ptr, what))?;
        self.context.set((ptr, value));
        Ok(value)
    }
}

/// An encrypt item as the engine's request.
///
/// # Safety
/// The item's pointers are valid as `kp_encrypt_item` documents, for `'a`.
#[inline(always)]
unsafe fn encrypt_request<'a>(
    item: &kp_encrypt_item,
    memo: &Memo<'a>,
) -> Outcome<EncryptRequest<'a>> {
    let (key_id, plaintext, context) = (
        from_caller!(memo.key_id(item.key_id, "key_id"))?,
        from_caller!(bytes_arg(item.plaintext, item.plaintext_len, "plaintext"))?,
        from_caller!(memo.context(item.context, "context"))?,
    );
    Ok(EncryptRequest {
        key_id,
        plaintext,
        encryption_context: context,
        encryption_algorithm: algorithm(item.encryption_algorithm, "encryption_algorithm")?
            .unwrap_or(EncryptionAlgorithm::SymmetricDefault),
    })
}

/// The room an encrypt item's output takes.
#[inline]
fn encrypt_room(item: &kp_encrypt_item) -> Room {
    if is_symmetric(item.encryption_algorithm) {
        sealed_room(item.plaintext_len)
    } else {
        Room::Whole
    }
}

/// # Safety
/// As [`encrypt_request`].
#[inline(always)]
unsafe fn decrypt_request<'a>(
    item: &kp_decrypt_item,
    memo: &Memo<'a>,
) -> Outcome<DecryptRequest<'a>> {
    let (blob, key_id, context) = (
        from_caller!(bytes_arg(
            item.ciphertext,
            item.ciphertext_len,
            "ciphertext"
        ))?,
        from_caller!(memo.opt_key_id(item.key_id, "key_id"))?,
        from_caller!(memo.context(item.context, "context"))?,
    );
    Ok(DecryptRequest {
        ciphertext_blob: blob,
        key_id,
        encryption_context: context,
        encryption_algorithm: algorithm(item.encryption_algorithm, "encryption_algorithm")?,
    })
}

/// The room a decrypt item's output takes: exactly the plaintext its blob's framing says.
#[inline]
fn decrypt_room(item: &kp_decrypt_item, request: &DecryptRequest<'_>) -> Room {
    if is_symmetric(item.encryption_algorithm) {
        Room::Exact(plaintext_len_of(request.ciphertext_blob).unwrap_or(0))
    } else {
        Room::Whole
    }
}

/// The room a re-encrypt item's output takes: the new blob of the plaintext the old one's
/// framing says, under a destination key of any kind.
fn re_encrypt_room(item: &kp_re_encrypt_item, request: &ReEncryptRequest<'_>) -> Room {
    if is_symmetric(item.source_encryption_algorithm)
        && is_symmetric(item.destination_encryption_algorithm)
    {
        plaintext_len_of(request.ciphertext_blob).map_or(Room::Exact(0), sealed_room)
    } else {
        Room::Whole
    }
}

/// # Safety
/// As [`encrypt_request`].
unsafe fn re_encrypt_request<'a>(item: &kp_re_encrypt_item) -> Outcome<ReEncryptRequest<'a>> {
    let (blob, source_key_id, source_context, destination_key_id, destination_context) = (
        from_caller!(bytes_arg(
            item.ciphertext,
            item.ciphertext_len,
            "ciphertext"
        ))?,
        from_caller!(opt_str_arg(item.source_key_id, "source_key_id"))?,
        from_caller!(context_arg(item.source_context, "source_context"))?,
        from_caller!(str_arg(item.destination_key_id, "destination_key_id"))?,
        from_caller!(context_arg(item.destination_context, "destination_context"))?,
    );
    let request = ReEncryptRequest {
        ciphertext_blob: blob,
        source_key_id,
        source_encryption_context: source_context,
        source_encryption_algorithm: algorithm(
            item.source_encryption_algorithm,
            "source_encryption_algorithm",
        )?,
        destination_key_id,
        destination_encryption_context: destination_context,
        destination_encryption_algorithm: algorithm(
            item.destination_encryption_algorithm,
            "destination_encryption_algorithm",
        )?
        .unwrap_or(EncryptionAlgorithm::SymmetricDefault),
    };
    Ok(request)
}

fn data_key_spec(value: u32) -> Outcome<Option<DataKeySpec>> {
    match value {
        0 => Ok(None),
        1 => Ok(Some(DataKeySpec::Aes256)),
        2 => Ok(Some(DataKeySpec::Aes128)),
        other => Err(Failure::new(
            kp_status::InvalidEnumValue,
            format!("key_spec {other} is not a kp_data_key_spec"),
        )),
    }
}

/// The data key length an item asks for; 0 when the request is invalid (the engine says why).
fn data_key_len(item: &kp_data_key_item) -> usize {
    match (data_key_spec(item.key_spec), item.number_of_bytes) {
        (Ok(Some(spec)), 0) => spec.key_len(),
        (Ok(None), n) if (1..=MAX_DATA_KEY_BYTES).contains(&(n as usize)) => n as usize,
        _ => 0,
    }
}

/// A data key item as the engine's request, with the data key's length and its blob's room.
///
/// # Safety
/// As [`encrypt_request`].
unsafe fn data_key_request<'a>(
    item: &kp_data_key_item,
    memo: &Memo<'a>,
) -> Outcome<(GenerateDataKeyRequest<'a>, usize, Room)> {
    let (key_id, context) = (
        from_caller!(memo.key_id(item.key_id, "key_id"))?,
        from_caller!(memo.context(item.context, "context"))?,
    );
    let request = GenerateDataKeyRequest {
        key_id,
        encryption_context: context,
        key_spec: data_key_spec(item.key_spec)?,
        number_of_bytes: (item.number_of_bytes != 0).then_some(item.number_of_bytes as usize),
    };
    let key_len = data_key_len(item);
    Ok((request, key_len, sealed_room(key_len)))
}

/// Reads a request struct.
///
/// # Safety
/// `ptr` is NULL or points to an initialised `T`.
pub(crate) unsafe fn item_arg<T: Copy>(ptr: *const T) -> Outcome<T> {
    // SAFETY: forwarded from the caller.
    unsafe { opt_struct_arg(ptr, "request") }?.ok_or_else(|| Failure::null("request"))
}

/// Copies `bytes` into the checked output slice, which must be exactly as long.
fn copy_out(out: &mut [u8], bytes: &[u8]) -> Outcome<()> {
    if out.len() != bytes.len() {
        return Err(Failure::new(
            kp_status::Internal,
            format!(
                "Internal: the engine returned {} bytes where {} were expected",
                bytes.len(),
                out.len()
            ),
        ));
    }
    out.copy_from_slice(bytes);
    Ok(())
}

/// The failure for an output of `needed` bytes that does not fit `capacity`.
fn too_small(what: &str, capacity: usize, needed: usize) -> Failure {
    Failure::new(
        kp_status::BufferTooSmall,
        format!("{what} has {capacity} bytes; the output needs {needed}"),
    )
}

/// Copies `bytes` to the start of the checked output slice `out` (from [`out_bytes`] with the
/// item's [`Room`]) and returns their length. Nothing is written when they do not fit.
pub(crate) fn put(out: &mut [u8], bytes: &[u8], what: &str) -> Outcome<usize> {
    let capacity = out.len();
    let dest = out
        .get_mut(..bytes.len())
        .ok_or_else(|| too_small(what, capacity, bytes.len()))?;
    dest.copy_from_slice(bytes);
    Ok(bytes.len())
}

/// The first `needed` bytes of a `kp_out`'s buffer; on `KP_STATUS_BUFFER_TOO_SMALL`, `out.len`
/// is set to `needed`.
///
/// # Safety
/// `out.data` points to `out.capacity` writable bytes valid for `'a` that nothing else uses
/// meanwhile (the caller's promise for `kp_out`s).
#[inline]
pub(crate) unsafe fn out_room<'a>(out: &mut kp_out, needed: usize) -> Outcome<&'a mut [u8]> {
    let room = from_caller!(out_bytes(out.data, out.capacity, needed, "output"));
    if let Err(f) = &room {
        if f.status == kp_status::BufferTooSmall {
            out.len = needed;
        }
    }
    room
}

/// Writes an output into its `kp_out`: `len` on success; on `KP_STATUS_BUFFER_TOO_SMALL` nothing
/// but `len` = the size needed.
///
/// # Safety
/// As [`out_room`].
pub(crate) unsafe fn fill(out: &mut kp_out, bytes: &[u8]) -> Outcome<()> {
    let dest = from_caller!(out_room(&mut *out, bytes.len()))?;
    dest.copy_from_slice(bytes);
    out.len = bytes.len();
    Ok(())
}

// ---- batches -----------------------------------------------------------------------------------

/// Counts failed items and keeps the message of the lowest-numbered one.
struct Tally {
    failed: usize,
    first: Option<(usize, String)>,
}

impl Tally {
    fn new() -> Self {
        Tally {
            failed: 0,
            first: None,
        }
    }

    fn fail(
        &mut self,
        status_slot: &mut u32,
        index: usize,
        status: kp_status,
        message: impl FnOnce() -> String,
    ) {
        *status_slot = status as u32;
        self.failed += 1;
        if self.first.as_ref().is_none_or(|(first, _)| index < *first) {
            self.first = Some((index, message()));
        }
    }

    fn finish(self, count: usize) -> Outcome<()> {
        match self.first {
            None => Ok(()),
            Some((index, first)) => Err(Failure::new(
                kp_status::BatchItemsFailed,
                format!(
                    "{} of {count} items failed; first: item {index}: {first}",
                    self.failed
                ),
            )),
        }
    }
}

/// What a batch writes per item: a `kp_out` (bytes, length and status), or a bare `uint32_t`
/// status (the Verify calls).
pub(crate) trait Slot {
    /// Where the item's status goes.
    fn status_mut(&mut self) -> &mut u32;
    /// Checks, before the engine runs, that the item's output has room for `needed` bytes (0:
    /// checked when the output is delivered).
    ///
    /// # Safety
    /// For a `kp_out`, its buffer is valid as [`out_room`] says.
    unsafe fn check_room(&mut self, needed: usize) -> Outcome<()>;
}

impl Slot for kp_out {
    fn status_mut(&mut self) -> &mut u32 {
        &mut self.status
    }
    unsafe fn check_room(&mut self, needed: usize) -> Outcome<()> {
        // Nothing is written into the buffer here.
        from_caller!(out_room(self, needed)).map(|_| ())
    }
}

impl Slot for u32 {
    fn status_mut(&mut self) -> &mut u32 {
        self
    }
    unsafe fn check_room(&mut self, _needed: usize) -> Outcome<()> {
        Ok(())
    }
}

/// A batch's outputs as the C caller passed them: `O`s (for `kp_out`s, with their buffers) that
/// the caller promised valid and unshared for the call. Only [`outputs_arg`] makes one, so that
/// holding one stands for that promise.
pub(crate) struct Outputs<'a, O>(&'a mut [O]);

/// The output array of a batch.
///
/// # Safety
/// `outputs` is NULL or points to `count` `O`s nothing else uses during `'a`; for `kp_out`s,
/// each one's buffer is valid as [`out_room`] says.
pub(crate) unsafe fn outputs_arg<'a, O>(outputs: *mut O, count: usize) -> Outcome<Outputs<'a, O>> {
    if count > KP_MAX_BATCH_ITEMS {
        return Err(Failure::new(
            kp_status::InvalidLength,
            format!("{count} items is absurd (the most is {KP_MAX_BATCH_ITEMS})"),
        ));
    }
    if count == 0 {
        return Ok(Outputs(&mut []));
    }
    let outputs = out_arg(outputs, "outputs")?;
    // SAFETY: not NULL, aligned, count is bounded above, and the caller promises `count` outputs
    // for exclusive use.
    Ok(Outputs(unsafe {
        std::slice::from_raw_parts_mut(outputs.as_ptr(), count)
    }))
}

/// Runs a batch: prepares every item (items the library refuses get their status and are not
/// sent), runs the engine once over the rest, and delivers each result to its output.
pub(crate) fn batch<O: Slot, R, T>(
    Outputs(outputs): Outputs<'_, O>,
    prepare: impl Fn(usize, &O) -> Outcome<(R, usize)>,
    run: impl FnOnce(&[R]) -> Vec<kp::Result<T>>,
    mut deliver: impl FnMut(usize, T, &mut O) -> Outcome<()>,
) -> Outcome<()> {
    let count = outputs.len();
    let mut tally = Tally::new();
    let mut requests = Vec::with_capacity(count);
    let mut index = Vec::with_capacity(count);
    for (i, out) in outputs.iter_mut().enumerate() {
        let checked = prepare(i, out).and_then(|(request, needed)| {
            // SAFETY: the output came in `Outputs`: the caller promised its buffer valid (as
            // `outputs_arg` asks). Nothing is written here.
            unsafe { out.check_room(needed) }?;
            Ok(request)
        });
        match checked {
            Ok(request) => {
                requests.push(request);
                index.push(i);
            }
            Err(f) => tally.fail(out.status_mut(), i, f.status, || f.message),
        }
    }
    let results = run(&requests);
    drop(requests);
    if results.len() != index.len() {
        return Err(Failure::new(
            kp_status::Internal,
            "Internal: the engine returned a different number of results",
        ));
    }
    for (result, &i) in results.into_iter().zip(&index) {
        let out = &mut outputs[i];
        match result
            .map_err(Failure::from)
            .and_then(|t| deliver(i, t, out))
        {
            Ok(()) => *out.status_mut() = kp_status::Ok as u32,
            Err(f) => tally.fail(out.status_mut(), i, f.status, || f.message),
        }
    }
    tally.finish(count)
}

/// Runs a batch whose engine call writes in place into the caller's buffers
/// (`encrypt_batch_into`, `decrypt_batch_into`): each item sent lends the engine the part of its
/// `kp_out` buffer its [`Room`] says. The buffer of an item that fails after it was sent is
/// zeroed (the engine may have written to it).
///
fn batch_into<R>(
    Outputs(outputs): Outputs<'_, kp_out>,
    prepare: impl Fn(usize) -> Outcome<R>,
    room: impl Fn(usize, &R) -> Room,
    run: impl FnOnce(&[R], &mut [&mut [u8]]) -> kp::WrittenItems,
) -> Outcome<()> {
    let count = outputs.len();
    let mut tally = Tally::new();
    let mut requests = Vec::with_capacity(count);
    let mut buffers: Vec<&mut [u8]> = Vec::with_capacity(count);
    let mut index = Vec::with_capacity(count);
    for (i, out) in outputs.iter_mut().enumerate() {
        let request = match prepare(i) {
            Ok(request) => request,
            Err(f) => {
                tally.fail(&mut out.status, i, f.status, || f.message);
                continue;
            }
        };
        // SAFETY: the kp_out came in `Outputs`: the caller promised its buffer valid (as
        // `outputs_arg` asks), for this call only; the slices do not outlive it.
        match unsafe { out_room(out, room(i, &request).bytes(out.capacity)) } {
            Ok(buffer) => {
                requests.push(request);
                buffers.push(buffer);
                index.push(i);
            }
            Err(f) => tally.fail(&mut out.status, i, f.status, || f.message),
        }
    }
    let results = run(&requests, &mut buffers);
    drop(requests);
    if results.len() != index.len() {
        buffers.iter_mut().for_each(|b| b.zeroize());
        return Err(Failure::new(
            kp_status::Internal,
            "Internal: the engine returned a different number of results",
        ));
    }
    // Read in place: the engine's 4-byte counts, with the failed items' errors aside.
    for ((result, &i), buffer) in results.iter().zip(&index).zip(buffers.iter_mut()) {
        let out = &mut outputs[i];
        let delivered = result.map_err(Failure::from).and_then(|n| {
            if n <= buffer.len() {
                Ok(n)
            } else {
                Err(Failure::new(
                    kp_status::Internal,
                    "Internal: the engine reported more bytes than its buffer holds",
                ))
            }
        });
        match delivered {
            Ok(n) => {
                out.len = n;
                out.status = kp_status::Ok as u32;
            }
            Err(f) => {
                buffer.zeroize();
                tally.fail(&mut out.status, i, f.status, || f.message);
            }
        }
    }
    tally.finish(count)
}

/// Writes per-item sizes of `items` (optional) and their sum (optional), refusing outputs that
/// overlap `items` or each other.
///
/// # Safety
/// `sizes` is NULL or has room for `items.len()` entries; `total` is NULL or writable.
pub(crate) unsafe fn write_sizes<I>(
    items: &[I],
    values: impl Iterator<Item = usize>,
    sizes: *mut usize,
    total: *mut usize,
) -> Outcome<()> {
    let count = items.len();
    refuse_overlap(&mut [
        Span::array(items.as_ptr(), count, false, "items"),
        Span::array(sizes, count, true, "sizes"),
        Span::output_of(total, "total"),
    ])?;
    let sizes = if sizes.is_null() || count == 0 {
        None
    } else {
        let sizes = out_arg(sizes, "sizes")?;
        // SAFETY: checked, and the caller promises room for `count` entries.
        Some(unsafe { std::slice::from_raw_parts_mut(sizes.as_ptr(), count) })
    };
    let total = if total.is_null() {
        None
    } else {
        Some(out_arg(total, "total")?)
    };
    let mut sum = 0usize;
    let mut sizes = sizes;
    for (i, v) in values.enumerate() {
        sum = sum.saturating_add(v);
        if let Some(s) = sizes.as_deref_mut() {
            s[i] = v;
        }
    }
    if let Some(total) = total {
        from_caller!(write_out(total, sum));
    }
    Ok(())
}

/// The output sizes of the `*_sizes` calls: what always suffices for a key of any kind (the
/// longest blob, for a key that may be in an external key store; the modulus bound for RSA),
/// and exact where the input says (a blob's plaintext, from its framing).
fn encrypt_size(item: &kp_encrypt_item) -> usize {
    if is_symmetric(item.encryption_algorithm) {
        ciphertext_max_len(item.plaintext_len).unwrap_or(0)
    } else {
        KP_MAX_RSA_CIPHERTEXT_LEN
    }
}

/// # Safety
/// `item.ciphertext` points to `item.ciphertext_len` readable bytes (when not 0).
unsafe fn decrypt_size(item: &kp_decrypt_item) -> usize {
    match algorithm(item.encryption_algorithm, "") {
        Ok(None | Some(EncryptionAlgorithm::SymmetricDefault)) => {
            from_caller!(blob_plaintext_len(item.ciphertext, item.ciphertext_len)).unwrap_or(0)
        }
        Ok(Some(a)) => rsa_plaintext_bound(item.ciphertext_len, a),
        Err(_) => 0,
    }
}

/// # Safety
/// As [`decrypt_size`].
unsafe fn re_encrypt_size(item: &kp_re_encrypt_item) -> usize {
    let source = algorithm(item.source_encryption_algorithm, "");
    let destination = algorithm(item.destination_encryption_algorithm, "");
    match (source, destination) {
        (
            _,
            Ok(Some(EncryptionAlgorithm::RsaesOaepSha1 | EncryptionAlgorithm::RsaesOaepSha256)),
        ) => KP_MAX_RSA_CIPHERTEXT_LEN,
        (Ok(None | Some(EncryptionAlgorithm::SymmetricDefault)), Ok(_)) => {
            from_caller!(blob_plaintext_len(item.ciphertext, item.ciphertext_len))
                .and_then(ciphertext_max_len)
                .unwrap_or(0)
        }
        (Ok(Some(a)), Ok(_)) => {
            ciphertext_max_len(rsa_plaintext_bound(item.ciphertext_len, a)).unwrap_or(0)
        }
        _ => 0,
    }
}

// ---- Encrypt -----------------------------------------------------------------------------------

/// Encrypt: encrypts `request->plaintext` under `request->key_id` into `ciphertext`, which must
/// have room for `kp_ciphertext_len(request->plaintext_len)` bytes: exactly that many are written
/// for a key keyplane or an HSM key store holds. A key in an external key store writes a longer
/// blob (double encryption; up to `kp_ciphertext_max_len(request->plaintext_len)` bytes, which
/// always suffice), checked once the engine answers (`KP_STATUS_BUFFER_TOO_SMALL`, nothing
/// written). The number written is stored in `*ciphertext_len`. With an RSA key and an RSAES_OAEP
/// algorithm the ciphertext is the key's modulus size (256, 384 or 512 bytes;
/// `KP_MAX_RSA_CIPHERTEXT_LEN` always suffices), checked once the engine answers
/// (`KP_STATUS_BUFFER_TOO_SMALL`, nothing written). `*info` (optional) receives a record with
/// KEY_ID (the ARN of the key that encrypted) and ENCRYPTION_ALGORITHM.
///
/// Ownership: the request's memory is only read, during the call. Outputs are written only on
/// success; when `info` is not NULL, `*info` is a new record the caller frees with
/// `kp_record_free`. Thread safety: thread-safe on a shared engine.
///
/// # Safety
/// `engine` is a live handle; `request` points to a valid item; `ciphertext` has `capacity`
/// writable bytes; `ciphertext_len` is writable; `info` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn kp_encrypt(
    engine: *const kp_engine,
    request: *const kp_encrypt_item,
    ciphertext: *mut u8,
    capacity: usize,
    ciphertext_len: *mut usize,
    info: *mut *mut kp_record,
) -> kp_status {
    guard(|| {
        let engine = from_caller!(engine_arg(engine))?;
        let item = from_caller!(item_arg(request))?;
        refuse_overlap(&mut [
            Span::input(item.plaintext, item.plaintext_len, "request->plaintext"),
            Span::output(ciphertext, capacity, "ciphertext"),
            Span::output_of(ciphertext_len, "ciphertext_len"),
            Span::output_of(info, "info"),
        ])?;
        let (request, room) = (
            from_caller!(encrypt_request(&item, &Memo::new()))?,
            encrypt_room(&item),
        );
        let out_len = out_arg(ciphertext_len, "ciphertext_len")?;
        let out = from_caller!(out_bytes(
            ciphertext,
            capacity,
            room.bytes(capacity),
            "ciphertext"
        ))?;
        check_info(info)?;
        let sealed = engine
            .encrypt_into(&request, out)
            .map_err(|e| into_failure(e, "ciphertext", capacity))?;
        from_caller!(write_out(out_len, sealed.len));
        from_caller!(give_opt_record(info, || {
            Record::new().str(kp_field::KeyId, &sealed.key_id).str(
                kp_field::EncryptionAlgorithm,
                sealed.encryption_algorithm.as_str(),
            )
        }))
    })
}

fn check_info(info: *mut *mut kp_record) -> Outcome<()> {
    if !info.is_null() {
        out_arg(info, "info")?;
    }
    Ok(())
}

/// The failure of a single call that wrote into the caller's `capacity`-byte buffer `what`: a
/// buffer too short for the output is `KP_STATUS_BUFFER_TOO_SMALL` (nothing was written).
fn into_failure(error: IntoError, what: &str, capacity: usize) -> Failure {
    match error {
        IntoError::OutputTooSmall { needed } => too_small(what, capacity, needed),
        IntoError::Failed(error) => error.into(),
    }
}

/// Encrypt, in a batch: item `i` of `items` is encrypted into `outputs[i]`, whose `capacity` must
/// be at least `kp_ciphertext_len(items[i].plaintext_len)` for a symmetric item (checked before
/// the engine runs: `KP_STATUS_BUFFER_TOO_SMALL`, with `len` set to the size needed), and
/// `kp_ciphertext_max_len(items[i].plaintext_len)` for a key in an external key store (the engine
/// refuses a shorter buffer with `KP_STATUS_VALIDATION` before it asks the proxy), or the key's
/// modulus size for an RSAES_OAEP item (256, 384 or 512 bytes; a shorter buffer is refused by the
/// engine with `KP_STATUS_VALIDATION`); see `kp_encrypt_batch_sizes`. Every `outputs[i].status` is
/// set; on success `outputs[i].len` too. Items fail on their own.
///
/// The engine seals in place, straight into the caller's buffers (no copy, no allocation per
/// item): the buffer of an item that fails after it was handed to the engine may have been
/// written, and is zeroed.
///
/// Returns `KP_STATUS_OK` when every item succeeded, `KP_STATUS_BATCH_ITEMS_FAILED` when some
/// failed, or an argument status (nothing written) when the call itself is invalid. `count` 0
/// does nothing. Large batches run on the engine's worker pool.
///
/// Ownership: items are only read, during the call; outputs stay the caller's. Thread safety:
/// thread-safe on a shared engine; `outputs` must not be shared with another call in flight.
///
/// # Safety
/// `engine` is a live handle; `items` points to `count` valid items; `outputs` to `count`
/// `kp_out`s whose `data` have `capacity` writable bytes.
#[no_mangle]
pub unsafe extern "C" fn kp_encrypt_batch(
    engine: *const kp_engine,
    items: *const kp_encrypt_item,
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
            |i: &kp_encrypt_item| [("plaintext", i.plaintext, i.plaintext_len)],
            &[],
        ))?;
        let memo = Memo::new();
        batch_into(
            from_caller!(outputs_arg(outputs, count))?,
            |i| from_caller!(encrypt_request(&items[i], &memo)),
            |i, _| encrypt_room(&items[i]),
            |requests, buffers| engine.encrypt_batch_into(requests, buffers),
        )
    })
}

/// Encrypt, in a batch of plaintexts under one key: item `i` (the plaintext `items[i]`) is
/// encrypted under `key_id` with `context` (NULL for none) and SYMMETRIC_DEFAULT into
/// `outputs[i]`, sized as for `kp_encrypt_batch`: at least `kp_ciphertext_len(items[i].len)`
/// (checked before the engine runs: `KP_STATUS_BUFFER_TOO_SMALL`, with `len` set to the size
/// needed), and `kp_ciphertext_max_len(items[i].len)` for a key in an external key store (the
/// engine refuses a shorter buffer with `KP_STATUS_VALIDATION` before it asks the proxy). Every
/// `outputs[i].status` is set; on success `outputs[i].len` too.
///
/// The key is resolved and the caller authorised once for the whole batch, not per item: a key
/// that does not exist, is disabled, is no symmetric encryption key or that the caller may not use
/// with `context` fails every item with that status. Otherwise items fail on their own (an empty
/// or too long plaintext, a short buffer). The engine seals in place, as `kp_encrypt_batch` does:
/// the buffer of an item that fails after it was handed to the engine is zeroed.
///
/// Returns `KP_STATUS_OK` when every item succeeded, `KP_STATUS_BATCH_ITEMS_FAILED` when some
/// failed, or an argument status (nothing written) when the call itself is invalid. `count` 0
/// does nothing. Large batches run on the engine's worker pool.
///
/// Ownership: `key_id`, `context` and the items are only read, during the call; outputs stay the
/// caller's. Thread safety: thread-safe on a shared engine; `outputs` must not be shared with
/// another call in flight.
///
/// # Safety
/// `engine` is a live handle; `key_id` a NUL-terminated string; `context` NULL or a live
/// context; `items` points to `count` `kp_bytes` whose `data` have `len` readable bytes;
/// `outputs` to `count` `kp_out`s whose `data` have `capacity` writable bytes.
#[no_mangle]
pub unsafe extern "C" fn kp_encrypt_batch_one_key(
    engine: *const kp_engine,
    key_id: *const c_char,
    context: *const kp_context,
    items: *const kp_bytes,
    count: usize,
    outputs: *mut kp_out,
) -> kp_status {
    guard(|| {
        let engine = from_caller!(engine_arg(engine))?;
        let key_id = from_caller!(str_arg(key_id, "key_id"))?;
        let context = from_caller!(context_arg(context, "context"))?;
        let items = from_caller!(array_arg(items, count, KP_MAX_BATCH_ITEMS, "items"))?;
        from_caller!(refuse_batch_overlap(
            items,
            outputs,
            "outputs",
            |i: &kp_bytes| [("data", i.data, i.len)],
            &[Span::input(key_id.as_ptr(), key_id.len(), "key_id")],
        ))?;
        batch_into(
            from_caller!(outputs_arg(outputs, count))?,
            |i| from_caller!(bytes_arg(items[i].data, items[i].len, "plaintext")),
            |i, _| sealed_room(items[i].len),
            |plaintexts, buffers| {
                engine.encrypt_batch_one_key(key_id, context, plaintexts, buffers)
            },
        )
    })
}

/// Output sizes of `kp_encrypt_batch` for `items` that always suffice, whatever kind of key each
/// item names: `sizes[i]` (optional, `count` entries) is `kp_ciphertext_max_len` of item `i`'s
/// plaintext length (a bound: a key keyplane or an HSM key store holds writes
/// `kp_ciphertext_len`, `KP_CIPHERTEXT_MAX_WRAPPING_OVERHEAD` less; an external key store's
/// blob's length depends on its proxy's answer), 0 for an item whose plaintext length no engine
/// accepts, and `KP_MAX_RSA_CIPHERTEXT_LEN` for an RSAES_OAEP item (a bound: the ciphertext is
/// the key's modulus size); `*total` (optional) is their sum. Each output's `len` says what was
/// written.
///
/// Ownership: nothing is taken. Thread safety: callable from any thread.
///
/// # Safety
/// `items` points to `count` items; `sizes` is NULL or has room for `count` entries; `total` is
/// NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn kp_encrypt_batch_sizes(
    items: *const kp_encrypt_item,
    count: usize,
    sizes: *mut usize,
    total: *mut usize,
) -> kp_status {
    guard(|| {
        let items = from_caller!(array_arg(items, count, KP_MAX_BATCH_ITEMS, "items"))?;
        from_caller!(write_sizes(
            items,
            items.iter().map(encrypt_size),
            sizes,
            total
        ))
    })
}

// ---- Decrypt -----------------------------------------------------------------------------------

/// Decrypt: decrypts `request->ciphertext` into `plaintext`, which must have room for
/// `kp_blob_plaintext_len(request->ciphertext, request->ciphertext_len)` bytes (exactly that many
/// are written, and their number stored in `*plaintext_len`; `kp_plaintext_len(ciphertext_len)`,
/// the same for a blob of a key keyplane or an HSM key store holds, always suffices). An RSA ciphertext needs `request->key_id` and an
/// RSAES_OAEP `request->encryption_algorithm`; its plaintext is at most the ciphertext's length
/// (`*plaintext_len` says how long; a shorter buffer gets `KP_STATUS_BUFFER_TOO_SMALL` with
/// nothing written). For plaintext the library locks and zeroes, point
/// `plaintext` into a `kp_secret_buffer`. `*info` (optional) receives a record with KEY_ID (the
/// ARN of the key that decrypted), KEY_MATERIAL_ID and ENCRYPTION_ALGORITHM.
///
/// Ownership: as `kp_encrypt`, except that a keyplane blob is opened in place, straight into
/// `plaintext` (the plaintext exists nowhere else; an RSA plaintext's working copy is zeroed
/// before return): when opening fails (an altered blob, another context), the bytes it was lent
/// are zeroed. Thread safety: thread-safe on a shared engine.
///
/// # Safety
/// As `kp_encrypt`.
#[no_mangle]
pub unsafe extern "C" fn kp_decrypt(
    engine: *const kp_engine,
    request: *const kp_decrypt_item,
    plaintext: *mut u8,
    capacity: usize,
    plaintext_len: *mut usize,
    info: *mut *mut kp_record,
) -> kp_status {
    guard(|| {
        let engine = from_caller!(engine_arg(engine))?;
        let item = from_caller!(item_arg(request))?;
        refuse_overlap(&mut [
            Span::input(item.ciphertext, item.ciphertext_len, "request->ciphertext"),
            Span::output(plaintext, capacity, "plaintext"),
            Span::output_of(plaintext_len, "plaintext_len"),
            Span::output_of(info, "info"),
        ])?;
        let request = from_caller!(decrypt_request(&item, &Memo::new()))?;
        let room = decrypt_room(&item, &request);
        let out_len = out_arg(plaintext_len, "plaintext_len")?;
        let out = from_caller!(out_bytes(
            plaintext,
            capacity,
            room.bytes(capacity),
            "plaintext"
        ))?;
        check_info(info)?;
        let opened = engine
            .decrypt_into(&request, out)
            .map_err(|e| into_failure(e, "plaintext", capacity))?;
        from_caller!(write_out(out_len, opened.len));
        from_caller!(give_opt_record(info, || {
            Record::new()
                .str(kp_field::KeyId, &opened.key_id)
                .str(kp_field::KeyMaterialId, &opened.key_material_id)
                .str(
                    kp_field::EncryptionAlgorithm,
                    opened.encryption_algorithm.as_str(),
                )
        }))
    })
}

/// Decrypt, in a batch: as `kp_encrypt_batch`, with `outputs[i].capacity` at least the
/// plaintext length the blob's framing says for a symmetric item (`kp_blob_plaintext_len`;
/// `kp_plaintext_len(items[i].ciphertext_len)` always suffices), or the plaintext's length for
/// an RSAES_OAEP item (`kp_decrypt_batch_sizes` gives a bound). The engine opens symmetric blobs
/// in place, straight into the caller's buffers (the plaintext exists nowhere else); the buffer of
/// an item that fails after it was handed to the engine is zeroed. Point the outputs into a
/// `kp_secret_buffer` for plaintext the library locks and zeroes.
///
/// Ownership and thread safety: as `kp_encrypt_batch`.
///
/// # Safety
/// As `kp_encrypt_batch`.
#[no_mangle]
pub unsafe extern "C" fn kp_decrypt_batch(
    engine: *const kp_engine,
    items: *const kp_decrypt_item,
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
            |i: &kp_decrypt_item| [("ciphertext", i.ciphertext, i.ciphertext_len)],
            &[],
        ))?;
        let memo = Memo::new();
        batch_into(
            from_caller!(outputs_arg(outputs, count))?,
            |i| from_caller!(decrypt_request(&items[i], &memo)),
            |i, request| decrypt_room(&items[i], request),
            |requests, buffers| engine.decrypt_batch_into(requests, buffers),
        )
    })
}

/// The exact output sizes of `kp_decrypt_batch` for `items`, laid out as `kp_encrypt_batch_sizes`:
/// for a symmetric item the plaintext length read from its blob's framing, for a blob of any key
/// kind (as `kp_blob_plaintext_len`; 0 for bytes that are no keyplane blob); for an RSAES_OAEP
/// item, the most plaintext a ciphertext of its length holds under its algorithm, a bound.
///
/// Ownership: nothing is taken. Thread safety: callable from any thread.
///
/// # Safety
/// As `kp_encrypt_batch_sizes`.
#[no_mangle]
pub unsafe extern "C" fn kp_decrypt_batch_sizes(
    items: *const kp_decrypt_item,
    count: usize,
    sizes: *mut usize,
    total: *mut usize,
) -> kp_status {
    guard(|| {
        let items = from_caller!(array_arg(items, count, KP_MAX_BATCH_ITEMS, "items"))?;
        from_caller!(write_sizes(
            items,
            items.iter().map(|i| from_caller!(decrypt_size(i))),
            sizes,
            total
        ))
    })
}

// ---- ReEncrypt ---------------------------------------------------------------------------------

/// ReEncrypt: decrypts `request->ciphertext` and encrypts the plaintext again under
/// `request->destination_key_id` (and context) inside the engine, into `ciphertext`, which must
/// have room for `kp_ciphertext_len` of the blob's plaintext (`kp_blob_plaintext_len`): the new
/// blob's length when the destination key is one keyplane or an HSM key store holds, so the old
/// blob's length then suffices; for a destination key in an external key store,
/// `kp_ciphertext_max_len` of it always suffices. When either side is an RSA key, or the
/// destination is in an external key store, the output's length is known once the engine
/// answers, and a short buffer gets `KP_STATUS_BUFFER_TOO_SMALL` with nothing written. `*info`
/// (optional) receives a record with KEY_ID (destination key ARN), SOURCE_KEY_ID,
/// SOURCE_KEY_MATERIAL_ID, DESTINATION_KEY_MATERIAL_ID, SOURCE_ENCRYPTION_ALGORITHM and
/// DESTINATION_ENCRYPTION_ALGORITHM.
///
/// Ownership: as `kp_encrypt`. Thread safety: thread-safe on a shared engine.
///
/// # Safety
/// As `kp_encrypt`.
#[no_mangle]
pub unsafe extern "C" fn kp_re_encrypt(
    engine: *const kp_engine,
    request: *const kp_re_encrypt_item,
    ciphertext: *mut u8,
    capacity: usize,
    ciphertext_len: *mut usize,
    info: *mut *mut kp_record,
) -> kp_status {
    guard(|| {
        let engine = from_caller!(engine_arg(engine))?;
        let item = from_caller!(item_arg(request))?;
        refuse_overlap(&mut [
            Span::input(item.ciphertext, item.ciphertext_len, "request->ciphertext"),
            Span::output(ciphertext, capacity, "ciphertext"),
            Span::output_of(ciphertext_len, "ciphertext_len"),
            Span::output_of(info, "info"),
        ])?;
        let request = from_caller!(re_encrypt_request(&item))?;
        let room = re_encrypt_room(&item, &request);
        let out_len = out_arg(ciphertext_len, "ciphertext_len")?;
        let out = from_caller!(out_bytes(
            ciphertext,
            capacity,
            room.bytes(capacity),
            "ciphertext"
        ))?;
        check_info(info)?;
        let response = engine.re_encrypt(&request)?;
        let written = put(out, &response.ciphertext_blob, "ciphertext")?;
        from_caller!(write_out(out_len, written));
        from_caller!(give_opt_record(info, || {
            Record::new()
                .str(kp_field::KeyId, &response.key_id)
                .str(kp_field::SourceKeyId, &response.source_key_id)
                .str(
                    kp_field::SourceKeyMaterialId,
                    &response.source_key_material_id,
                )
                .str(
                    kp_field::DestinationKeyMaterialId,
                    &response.destination_key_material_id,
                )
                .str(
                    kp_field::SourceEncryptionAlgorithm,
                    response.source_encryption_algorithm.as_str(),
                )
                .str(
                    kp_field::DestinationEncryptionAlgorithm,
                    response.destination_encryption_algorithm.as_str(),
                )
        }))
    })
}

/// ReEncrypt, in a batch: as `kp_encrypt_batch`, with `outputs[i].capacity` at least
/// `items[i].ciphertext_len` when both sides are symmetric (see `kp_re_encrypt_batch_sizes`); when
/// an RSA key is involved the output is checked once the engine answers (a short buffer gets
/// `KP_STATUS_BUFFER_TOO_SMALL` with `len` set to the size needed).
///
/// Ownership and thread safety: as `kp_encrypt_batch`.
///
/// # Safety
/// As `kp_encrypt_batch`.
#[no_mangle]
pub unsafe extern "C" fn kp_re_encrypt_batch(
    engine: *const kp_engine,
    items: *const kp_re_encrypt_item,
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
            |i: &kp_re_encrypt_item| [("ciphertext", i.ciphertext, i.ciphertext_len)],
            &[],
        ))?;
        batch(
            from_caller!(outputs_arg(outputs, count))?,
            |i, _| {
                from_caller!(re_encrypt_request(&items[i])).map(|request| {
                    let room = re_encrypt_room(&items[i], &request).bytes(0);
                    (request, room)
                })
            },
            |requests| engine.re_encrypt_batch(requests),
            |_, blob, out| from_caller!(fill(out, &blob)),
        )
    })
}

/// Output sizes of `kp_re_encrypt_batch` for `items` that always suffice, as
/// `kp_encrypt_batch_sizes`: `kp_ciphertext_max_len` of the plaintext the blob's framing says,
/// whatever kind the destination key is (bounds also for items with an RSAES_OAEP algorithm on
/// either side).
///
/// Ownership: nothing is taken. Thread safety: callable from any thread.
///
/// # Safety
/// As `kp_encrypt_batch_sizes`.
#[no_mangle]
pub unsafe extern "C" fn kp_re_encrypt_batch_sizes(
    items: *const kp_re_encrypt_item,
    count: usize,
    sizes: *mut usize,
    total: *mut usize,
) -> kp_status {
    guard(|| {
        let items = from_caller!(array_arg(items, count, KP_MAX_BATCH_ITEMS, "items"))?;
        from_caller!(write_sizes(
            items,
            items.iter().map(|i| from_caller!(re_encrypt_size(i))),
            sizes,
            total,
        ))
    })
}

// ---- GenerateDataKey ---------------------------------------------------------------------------

/// GenerateDataKey: a new data key, returned in plaintext in a new `kp_secret_buffer`
/// (`*plaintext`, locked memory the library zeroes when it is freed) and encrypted into
/// `ciphertext`, which must have room for `kp_ciphertext_len(key length)` bytes (the key length
/// is 32 for AES_256, 16 for AES_128, or `number_of_bytes`; what a key keyplane or an HSM key
/// store holds writes), or `kp_ciphertext_max_len(key length)` for a key in an external key
/// store (checked once the engine answers; `*ciphertext_len` says what was written). `*info` (optional) receives a record
/// with KEY_ID (the ARN) and KEY_MATERIAL_ID.
///
/// Ownership: on success `*plaintext` is a new secret buffer the caller frees with
/// `kp_secret_buffer_free`; `*info`, when asked for, a new record. Thread safety: thread-safe on
/// a shared engine.
///
/// # Safety
/// `engine` is a live handle; `request` points to a valid item; `plaintext` is writable;
/// `ciphertext` has `capacity` writable bytes; `ciphertext_len` is writable; `info` is NULL or
/// writable.
#[no_mangle]
pub unsafe extern "C" fn kp_generate_data_key(
    engine: *const kp_engine,
    request: *const kp_data_key_item,
    plaintext: *mut *mut kp_secret_buffer,
    ciphertext: *mut u8,
    capacity: usize,
    ciphertext_len: *mut usize,
    info: *mut *mut kp_record,
) -> kp_status {
    guard(|| {
        let engine = from_caller!(engine_arg(engine))?;
        refuse_overlap(&mut [
            Span::output_of(plaintext, "plaintext"),
            Span::output(ciphertext, capacity, "ciphertext"),
            Span::output_of(ciphertext_len, "ciphertext_len"),
            Span::output_of(info, "info"),
        ])?;
        let (request, _, room) = from_caller!(data_key_request(
            &from_caller!(item_arg(request))?,
            &Memo::new()
        ))?;
        let plaintext_out = out_arg(plaintext, "plaintext")?;
        let out_len = out_arg(ciphertext_len, "ciphertext_len")?;
        let out = from_caller!(out_bytes(
            ciphertext,
            capacity,
            room.bytes(capacity),
            "ciphertext"
        ))?;
        check_info(info)?;
        let response = engine.generate_data_key(&request)?;
        let secret = new_secret_buffer(engine, response.plaintext.len())?;
        // SAFETY: a live handle just made; nobody else has it.
        let fill_secret = unsafe { handle_mut(secret, "secret") }.map(|s| {
            s.expose_mut(kp::SecretAccess::granted())
                .copy_from_slice(response.plaintext.expose())
        });
        let written =
            match fill_secret.and_then(|()| put(out, &response.ciphertext_blob, "ciphertext")) {
                Ok(written) => written,
                Err(f) => {
                    // SAFETY: the handle was made above and is not used again.
                    unsafe { super::handles::kp_secret_buffer_free(secret) };
                    return Err(f);
                }
            };
        from_caller!(write_out(plaintext_out, secret));
        from_caller!(write_out(out_len, written));
        from_caller!(give_opt_record(info, || {
            Record::new()
                .str(kp_field::KeyId, &response.key_id)
                .str(kp_field::KeyMaterialId, &response.key_material_id)
        }))
    })
}

/// GenerateDataKeyWithoutPlaintext: a new data key, encrypted only, into `ciphertext` (room as
/// `kp_generate_data_key`'s). `*info` (optional) receives a record with KEY_ID and
/// KEY_MATERIAL_ID.
///
/// Ownership: as `kp_encrypt`. Thread safety: thread-safe on a shared engine.
///
/// # Safety
/// As `kp_encrypt`.
#[no_mangle]
pub unsafe extern "C" fn kp_generate_data_key_without_plaintext(
    engine: *const kp_engine,
    request: *const kp_data_key_item,
    ciphertext: *mut u8,
    capacity: usize,
    ciphertext_len: *mut usize,
    info: *mut *mut kp_record,
) -> kp_status {
    guard(|| {
        let engine = from_caller!(engine_arg(engine))?;
        refuse_overlap(&mut [
            Span::output(ciphertext, capacity, "ciphertext"),
            Span::output_of(ciphertext_len, "ciphertext_len"),
            Span::output_of(info, "info"),
        ])?;
        let (request, _, room) = from_caller!(data_key_request(
            &from_caller!(item_arg(request))?,
            &Memo::new()
        ))?;
        let out_len = out_arg(ciphertext_len, "ciphertext_len")?;
        let out = from_caller!(out_bytes(
            ciphertext,
            capacity,
            room.bytes(capacity),
            "ciphertext"
        ))?;
        check_info(info)?;
        let response = engine.generate_data_key_without_plaintext(&request)?;
        let written = put(out, &response.ciphertext_blob, "ciphertext")?;
        from_caller!(write_out(out_len, written));
        from_caller!(give_opt_record(info, || {
            Record::new()
                .str(kp_field::KeyId, &response.key_id)
                .str(kp_field::KeyMaterialId, &response.key_material_id)
        }))
    })
}

/// GenerateDataKey, in a batch. Item `i`'s data key is written into `plaintexts` (a secret buffer
/// of at least the total from `kp_generate_data_key_batch_sizes`) at offset
/// `sum(key_len[j] for j < i)`, where `key_len` are the sizes that call gives (0 for an invalid
/// item); its encrypted copy goes into `ciphertexts[i]` as in `kp_encrypt_batch`, whose statuses
/// are the items' statuses. A failed item's bytes in `plaintexts` are left untouched.
///
/// Ownership: `plaintexts` stays the caller's (zeroed when they free it). Thread safety:
/// thread-safe on a shared engine; `plaintexts` and `ciphertexts` must not be used by another
/// call in flight.
///
/// # Safety
/// `engine` and `plaintexts` are live handles; `items` points to `count` valid items;
/// `ciphertexts` as `kp_encrypt_batch`'s outputs.
#[no_mangle]
pub unsafe extern "C" fn kp_generate_data_key_batch(
    engine: *const kp_engine,
    items: *const kp_data_key_item,
    count: usize,
    plaintexts: *mut kp_secret_buffer,
    ciphertexts: *mut kp_out,
) -> kp_status {
    guard(|| {
        let engine = from_caller!(engine_arg(engine))?;
        let arena = from_caller!(handle_mut(plaintexts, "plaintexts"))?;
        let items = from_caller!(array_arg(items, count, KP_MAX_BATCH_ITEMS, "items"))?;
        let keys = Span::output(
            arena.expose(kp::SecretAccess::granted()).as_ptr(),
            arena.len(),
            "plaintexts",
        );
        from_caller!(refuse_batch_overlap(
            items,
            ciphertexts,
            "ciphertexts",
            |_: &_| [],
            &[keys]
        ))?;
        let mut offsets = Vec::with_capacity(count);
        let mut total = 0usize;
        for item in items {
            offsets.push(total);
            total += data_key_len(item);
        }
        if total > arena.len() {
            return Err(Failure::new(
                kp_status::BufferTooSmall,
                format!(
                    "plaintexts has {} bytes; the data keys need {total}",
                    arena.len()
                ),
            ));
        }
        let arena = arena.expose_mut(kp::SecretAccess::granted());
        let memo = Memo::new();
        batch(
            from_caller!(outputs_arg(ciphertexts, count))?,
            |i, _| {
                from_caller!(data_key_request(&items[i], &memo))
                    .map(|(r, _, room)| (r, room.bytes(0)))
            },
            |requests| engine.generate_data_key_batch(requests),
            |i, key, out| {
                let start = offsets[i];
                let len = key.plaintext.len();
                let slot = arena.get_mut(start..start + len).ok_or_else(|| {
                    Failure::new(kp_status::Internal, "Internal: data key length mismatch")
                })?;
                from_caller!(fill(out, &key.ciphertext_blob))?;
                slot.copy_from_slice(key.plaintext.expose());
                Ok(())
            },
        )
    })
}

/// GenerateDataKeyWithoutPlaintext, in a batch: as `kp_encrypt_batch`, with `outputs[i].capacity`
/// at least the ciphertext size from `kp_generate_data_key_batch_sizes`.
///
/// Ownership and thread safety: as `kp_encrypt_batch`.
///
/// # Safety
/// As `kp_encrypt_batch`.
#[no_mangle]
pub unsafe extern "C" fn kp_generate_data_key_without_plaintext_batch(
    engine: *const kp_engine,
    items: *const kp_data_key_item,
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
            |_: &_| [],
            &[]
        ))?;
        let memo = Memo::new();
        batch(
            from_caller!(outputs_arg(outputs, count))?,
            |i, _| {
                from_caller!(data_key_request(&items[i], &memo))
                    .map(|(r, _, room)| (r, room.bytes(0)))
            },
            |requests| engine.generate_data_key_without_plaintext_batch(requests),
            |_, blob, out| from_caller!(fill(out, &blob)),
        )
    })
}

/// The sizes of a data key batch: `key_lens[i]` (optional) is item `i`'s data key length (exact)
/// and `ciphertext_lens[i]` (optional) room that always suffices for its blob,
/// `kp_ciphertext_max_len` of the key length (both 0 for an invalid item);
/// `*total_key_bytes` (optional) is the secret buffer size `kp_generate_data_key_batch` needs and
/// `*total_ciphertext_bytes` (optional) the sum of blob lengths.
///
/// Ownership: nothing is taken. Thread safety: callable from any thread.
///
/// # Safety
/// `items` points to `count` items; each output is NULL or has room for its values.
#[no_mangle]
pub unsafe extern "C" fn kp_generate_data_key_batch_sizes(
    items: *const kp_data_key_item,
    count: usize,
    key_lens: *mut usize,
    ciphertext_lens: *mut usize,
    total_key_bytes: *mut usize,
    total_ciphertext_bytes: *mut usize,
) -> kp_status {
    guard(|| {
        let items = from_caller!(array_arg(items, count, KP_MAX_BATCH_ITEMS, "items"))?;
        let keys = || items.iter().map(data_key_len);
        refuse_overlap(&mut [
            Span::array(items.as_ptr(), count, false, "items"),
            Span::array(key_lens, count, true, "key_lens"),
            Span::array(ciphertext_lens, count, true, "ciphertext_lens"),
            Span::output_of(total_key_bytes, "total_key_bytes"),
            Span::output_of(total_ciphertext_bytes, "total_ciphertext_bytes"),
        ])?;
        from_caller!(write_sizes(items, keys(), key_lens, total_key_bytes))?;
        from_caller!(write_sizes(
            items,
            keys().map(|k| ciphertext_max_len(k).unwrap_or(0)),
            ciphertext_lens,
            total_ciphertext_bytes,
        ))
    })
}

// ---- GenerateRandom ----------------------------------------------------------------------------

/// GenerateRandom: `number_of_bytes` (1 to 1024) random bytes into `out`, which must have room
/// for them.
///
/// Ownership: `out` stays the caller's; the engine's copy is zeroed. Thread safety: thread-safe on
/// a shared engine.
///
/// # Safety
/// `engine` is a live handle; `out` has `capacity` writable bytes.
#[no_mangle]
pub unsafe extern "C" fn kp_generate_random(
    engine: *const kp_engine,
    number_of_bytes: usize,
    out: *mut u8,
    capacity: usize,
) -> kp_status {
    guard(|| {
        let engine = from_caller!(engine_arg(engine))?;
        let needed = if number_of_bytes <= MAX_RANDOM_BYTES {
            number_of_bytes
        } else {
            0
        };
        let out = from_caller!(out_bytes(out, capacity, needed, "out"))?;
        let mut bytes = engine.generate_random(number_of_bytes)?;
        let copied = copy_out(out, &bytes);
        bytes.zeroize();
        copied
    })
}

/// GenerateRandom, in a batch: each `outputs[i]` is filled with `outputs[i].capacity` random
/// bytes (1 to 1024 each; the whole batch comes from one generator call). Statuses and return
/// value as `kp_encrypt_batch`.
///
/// Ownership: outputs stay the caller's. Thread safety: thread-safe on a shared engine.
///
/// # Safety
/// `engine` is a live handle; `outputs` points to `count` `kp_out`s whose `data` have `capacity`
/// writable bytes.
#[no_mangle]
pub unsafe extern "C" fn kp_generate_random_batch(
    engine: *const kp_engine,
    outputs: *mut kp_out,
    count: usize,
) -> kp_status {
    guard(|| {
        let engine = from_caller!(engine_arg(engine))?;
        from_caller!(refuse_batch_overlap(
            &vec![(); count],
            outputs,
            "outputs",
            |_: &_| [],
            &[]
        ))?;
        batch(
            from_caller!(outputs_arg(outputs, count))?,
            |_, out| Ok((out.capacity, out.capacity.min(MAX_RANDOM_BYTES))),
            |sizes| engine.generate_random_batch(sizes),
            |_, mut bytes, out| {
                let filled = from_caller!(fill(out, &bytes));
                bytes.zeroize();
                filled
            },
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::ffi::kp_last_error_message;
    use crate::api::handles::{into_raw, kp_engine_free};

    fn last_error() -> String {
        let mut buf = [0 as c_char; 512];
        // SAFETY: a writable buffer of its length; the length out-pointer is optional.
        let status =
            unsafe { kp_last_error_message(buf.as_mut_ptr(), buf.len(), std::ptr::null_mut()) };
        assert_eq!(status, kp_status::Ok);
        // SAFETY: NUL-terminated by the call.
        unsafe { std::ffi::CStr::from_ptr(buf.as_ptr()) }
            .to_string_lossy()
            .into_owned()
    }

    /// Encrypting in place (plaintext == ciphertext), single and batch, and decrypting in place,
    /// are refused before anything is read or written; separate buffers still work.
    #[test]
    fn overlapping_buffers_are_refused_before_anything_is_written() {
        let inner = kp::Engine::in_memory().unwrap();
        let key = inner.create_key(kp::CreateKeyRequest::default()).unwrap();
        let engine = into_raw::<kp_engine>(crate::api::handles::EngineHandle::new(inner));
        let key_id = std::ffi::CString::new(key.key_id).unwrap();
        let plaintext = *b"sixteen bytes!!!";
        let mut buffer = vec![0u8; blob_len(plaintext.len())];
        buffer[..plaintext.len()].copy_from_slice(&plaintext);
        let item = kp_encrypt_item {
            key_id: key_id.as_ptr(),
            plaintext: buffer.as_ptr(),
            plaintext_len: plaintext.len(),
            context: std::ptr::null(),
            encryption_algorithm: 0,
        };
        let mut len = 0usize;
        // SAFETY: live handle; every pointer is valid for its length.
        let status = unsafe {
            kp_encrypt(
                engine,
                &item,
                buffer.as_mut_ptr(),
                buffer.len(),
                &mut len,
                std::ptr::null_mut(),
            )
        };
        assert_eq!(status, kp_status::OverlappingBuffers);
        assert!(
            last_error().contains("request->plaintext") && last_error().contains("ciphertext"),
            "{}",
            last_error()
        );
        assert_eq!(
            &buffer[..plaintext.len()],
            &plaintext,
            "nothing was written"
        );
        assert!(buffer[plaintext.len()..].iter().all(|&b| b == 0));

        // A batch whose second item seals over its own plaintext.
        let mut separate = vec![0u8; blob_len(plaintext.len())];
        let items = [
            kp_encrypt_item {
                plaintext: plaintext.as_ptr(),
                ..item
            },
            item,
        ];
        let mut outputs = [
            kp_out {
                data: separate.as_mut_ptr(),
                capacity: separate.len(),
                len: 0,
                status: u32::MAX,
            },
            kp_out {
                data: buffer.as_mut_ptr(),
                capacity: buffer.len(),
                len: 0,
                status: u32::MAX,
            },
        ];
        // SAFETY: as above, for two items.
        let status = unsafe { kp_encrypt_batch(engine, items.as_ptr(), 2, outputs.as_mut_ptr()) };
        assert_eq!(status, kp_status::OverlappingBuffers);
        assert!(last_error().contains("outputs[1].data"), "{}", last_error());
        assert!(outputs.iter().all(|o| o.status == u32::MAX), "no item ran");

        // Separate buffers work; then decrypting the blob onto itself is refused too.
        // SAFETY: as above.
        let status = unsafe { kp_encrypt_batch(engine, items.as_ptr(), 1, outputs.as_mut_ptr()) };
        assert_eq!(status, kp_status::Ok);
        let decrypt = kp_decrypt_item {
            ciphertext: separate.as_ptr(),
            ciphertext_len: separate.len(),
            key_id: std::ptr::null(),
            context: std::ptr::null(),
            encryption_algorithm: 0,
        };
        // SAFETY: as above.
        let status = unsafe {
            kp_decrypt(
                engine,
                &decrypt,
                separate.as_mut_ptr().wrapping_add(10),
                plaintext.len(),
                &mut len,
                std::ptr::null_mut(),
            )
        };
        assert_eq!(status, kp_status::OverlappingBuffers);
        let mut opened = [0u8; 16];
        // SAFETY: as above.
        let status = unsafe {
            kp_decrypt(
                engine,
                &decrypt,
                opened.as_mut_ptr(),
                opened.len(),
                &mut len,
                std::ptr::null_mut(),
            )
        };
        assert_eq!(status, kp_status::Ok);
        assert_eq!(opened, plaintext);
        // SAFETY: the handle is live and freed once.
        unsafe { kp_engine_free(engine) };
    }

    /// `kp_encrypt` and `kp_decrypt` write in place (issue 14) and keep their documented answers:
    /// a buffer too short is `KP_STATUS_BUFFER_TOO_SMALL` with nothing written, before the engine
    /// runs for a symmetric key and once it answered for an RSA key; a failed opening leaves no
    /// plaintext.
    #[test]
    fn single_encrypt_and_decrypt_write_in_place_and_refuse_short_buffers() {
        let inner = kp::Engine::in_memory().unwrap();
        let create = |spec| kp::CreateKeyRequest {
            key_spec: Some(spec),
            key_usage: Some(kp::KeyUsage::EncryptDecrypt),
            ..Default::default()
        };
        let aes = inner.create_key(create(KeySpec::SymmetricDefault)).unwrap();
        let rsa = inner.create_key(create(KeySpec::Rsa2048)).unwrap();
        let engine = into_raw::<kp_engine>(crate::api::handles::EngineHandle::new(inner));
        let plaintext = *b"sixteen bytes!!!";
        let encrypt = |key_id: &std::ffi::CStr, algorithm: u32, out: &mut [u8], len: &mut usize| {
            let item = kp_encrypt_item {
                key_id: key_id.as_ptr(),
                plaintext: plaintext.as_ptr(),
                plaintext_len: plaintext.len(),
                context: std::ptr::null(),
                encryption_algorithm: algorithm,
            };
            // SAFETY: live handle; every pointer is valid for its length.
            unsafe {
                kp_encrypt(
                    engine,
                    &item,
                    out.as_mut_ptr(),
                    out.len(),
                    len,
                    std::ptr::null_mut(),
                )
            }
        };
        let decrypt = |blob: &[u8], key_id: *const c_char, algorithm: u32, out: &mut [u8]| {
            let item = kp_decrypt_item {
                ciphertext: blob.as_ptr(),
                ciphertext_len: blob.len(),
                key_id,
                context: std::ptr::null(),
                encryption_algorithm: algorithm,
            };
            let mut len = usize::MAX;
            // SAFETY: as above.
            let status = unsafe {
                kp_decrypt(
                    engine,
                    &item,
                    out.as_mut_ptr(),
                    out.len(),
                    &mut len,
                    std::ptr::null_mut(),
                )
            };
            (status, len)
        };
        for (key, algorithm, blob_len) in [
            (&aes.key_id, 0, blob_len(plaintext.len())),
            (
                &rsa.key_id,
                kp_encryption_algorithm::RsaesOaepSha_256 as u32,
                256,
            ),
        ] {
            let key_id = std::ffi::CString::new(key.as_str()).unwrap();
            let named = if algorithm == 0 {
                std::ptr::null()
            } else {
                key_id.as_ptr()
            };
            // One byte short: nothing written, the length untouched.
            let mut short = vec![0xAAu8; blob_len - 1];
            let mut len = usize::MAX;
            let status = encrypt(&key_id, algorithm, &mut short, &mut len);
            assert_eq!(
                (status, len),
                (kp_status::BufferTooSmall, usize::MAX),
                "{key}"
            );
            assert!(short.iter().all(|&b| b == 0xAA), "{key}: nothing written");

            let mut blob = vec![0u8; blob_len + 9];
            assert_eq!(
                encrypt(&key_id, algorithm, &mut blob, &mut len),
                kp_status::Ok
            );
            assert_eq!(len, blob_len);
            assert!(blob[blob_len..].iter().all(|&b| b == 0), "{key}");
            blob.truncate(len);
            let mut opened = [0xAAu8; 16];
            let (status, len) = decrypt(&blob, named, algorithm, &mut opened);
            assert_eq!(
                (status, len, opened),
                (kp_status::Ok, 16, plaintext),
                "{key}"
            );
            let mut short = [0xAAu8; 15];
            let (status, len) = decrypt(&blob, named, algorithm, &mut short);
            assert_eq!(
                (status, len),
                (kp_status::BufferTooSmall, usize::MAX),
                "{key}"
            );
            assert_eq!(short, [0xAAu8; 15], "{key}: nothing written");
            // An altered blob: refused, no plaintext left.
            let last = blob.len() - 1;
            blob[last] ^= 1;
            let mut opened = [0xAAu8; 16];
            let (status, _) = decrypt(&blob, named, algorithm, &mut opened);
            assert_eq!(status, kp_status::InvalidCiphertext, "{key}");
            assert!(opened.iter().all(|&b| b == 0 || b == 0xAA), "{key}");
        }
        // SAFETY: the handle is live and freed once.
        unsafe { kp_engine_free(engine) };
    }

    /// `kp_encrypt_batch_one_key`: what it writes opens with `kp_decrypt`; items fail on their
    /// own for their plaintext or buffer, and all of them for the key; overlapping buffers (the
    /// key id's included) are refused before anything is written.
    #[test]
    fn one_key_batches_seal_under_their_key_or_refuse_every_item() {
        let inner = kp::Engine::in_memory().unwrap();
        let key = inner.create_key(kp::CreateKeyRequest::default()).unwrap();
        let engine = into_raw::<kp_engine>(crate::api::handles::EngineHandle::new(inner.clone()));
        let key_id = std::ffi::CString::new(key.key_id.as_str()).unwrap();
        let plaintexts: [&[u8]; 4] = [b"first!", b"second", b"", b"fourth"];
        let items = plaintexts.map(|p| kp_bytes {
            data: p.as_ptr(),
            len: p.len(),
        });
        let mut buffers = vec![[0u8; blob_len(6)]; 4];
        let run = |key_id: *const c_char, buffers: &mut [[u8; blob_len(6)]], short: usize| {
            let mut outputs: Vec<kp_out> = buffers
                .iter_mut()
                .map(|b| kp_out {
                    data: b.as_mut_ptr(),
                    capacity: b.len() - short,
                    len: 0,
                    status: u32::MAX,
                })
                .collect();
            // SAFETY: live handle; every pointer is valid for its length.
            let status = unsafe {
                kp_encrypt_batch_one_key(
                    engine,
                    key_id,
                    std::ptr::null(),
                    items.as_ptr(),
                    items.len(),
                    outputs.as_mut_ptr(),
                )
            };
            (status, outputs)
        };
        let (status, outputs) = run(key_id.as_ptr(), &mut buffers, 0);
        assert_eq!(status, kp_status::BatchItemsFailed);
        let statuses: Vec<u32> = outputs.iter().map(|o| o.status).collect();
        let (ok, invalid) = (kp_status::Ok as u32, kp_status::Validation as u32);
        assert_eq!(statuses, [ok, ok, invalid, ok]);
        for i in [0, 1, 3] {
            assert_eq!(outputs[i].len, blob_len(6));
            let item = kp_decrypt_item {
                ciphertext: buffers[i].as_ptr(),
                ciphertext_len: buffers[i].len(),
                key_id: key_id.as_ptr(),
                context: std::ptr::null(),
                encryption_algorithm: 0,
            };
            let (mut opened, mut len) = ([0u8; 6], 0usize);
            // SAFETY: as above.
            let status = unsafe {
                kp_decrypt(
                    engine,
                    &item,
                    opened.as_mut_ptr(),
                    6,
                    &mut len,
                    std::ptr::null_mut(),
                )
            };
            assert_eq!((status, &opened[..len]), (kp_status::Ok, plaintexts[i]));
        }
        // One byte short: too small, the size needed in `len`.
        let (_, outputs) = run(key_id.as_ptr(), &mut buffers, 1);
        assert_eq!(outputs[0].status, kp_status::BufferTooSmall as u32);
        assert_eq!(outputs[0].len, blob_len(6));
        // A disabled key fails every item; no key id is an argument error.
        inner.disable_key(&key.key_id).unwrap();
        let (status, outputs) = run(key_id.as_ptr(), &mut buffers, 0);
        assert_eq!(status, kp_status::BatchItemsFailed);
        let disabled = kp_status::Disabled as u32;
        assert!(outputs[..2]
            .iter()
            .chain(&outputs[3..])
            .all(|o| o.status == disabled));
        let (status, outputs) = run(std::ptr::null(), &mut buffers, 0);
        assert_eq!(status, kp_status::NullParameter);
        assert!(outputs.iter().all(|o| o.status == u32::MAX), "no item ran");
        // An output over an item's plaintext, or over the key id.
        let mut over_key = key_id.clone().into_bytes_with_nul();
        over_key.resize(blob_len(6), 0);
        let over_key_ptr = over_key.as_ptr().cast::<c_char>();
        let mut outputs = [kp_out {
            data: over_key.as_mut_ptr(),
            capacity: blob_len(6),
            len: 0,
            status: u32::MAX,
        }];
        // SAFETY: as above; the output is the key id's own buffer, which the call must refuse.
        let status = unsafe {
            kp_encrypt_batch_one_key(
                engine,
                over_key_ptr,
                std::ptr::null(),
                items.as_ptr(),
                1,
                outputs.as_mut_ptr(),
            )
        };
        assert_eq!(status, kp_status::OverlappingBuffers);
        assert!(last_error().contains("key_id"), "{}", last_error());
        let mut over_item = vec![0u8; blob_len(6)];
        over_item[..6].copy_from_slice(b"first!");
        let item = [kp_bytes {
            data: over_item.as_ptr(),
            len: 6,
        }];
        outputs[0].data = over_item.as_mut_ptr();
        // SAFETY: as above.
        let status = unsafe {
            kp_encrypt_batch_one_key(
                engine,
                key_id.as_ptr(),
                std::ptr::null(),
                item.as_ptr(),
                1,
                outputs.as_mut_ptr(),
            )
        };
        assert_eq!(status, kp_status::OverlappingBuffers);
        assert_eq!(&over_item[..6], b"first!", "nothing written");
        // SAFETY: the handle is live and freed once.
        unsafe { kp_engine_free(engine) };
    }

    /// GenerateDataKey (single, without plaintext, batch), GenerateRandom's batch, the `*_sizes`
    /// calls, the audit public key and verifier and `kp_last_error_message` refuse outputs over
    /// their inputs or each other, in place and partly, before anything is written (issue 15,
    /// finding 6). `kp_generate_random` has one buffer: nothing to overlap.
    #[test]
    fn data_key_random_sizes_and_audit_calls_refuse_overlapping_buffers() {
        use crate::api::audit::{kp_audit_verify, kp_engine_audit_public_key};
        use crate::api::handles::{
            kp_secret_buffer_data, kp_secret_buffer_free, kp_secret_buffer_new,
        };
        use crate::api::test_support::{Arena, Refusals};
        use std::ptr::{null, null_mut};
        let inner = kp::Engine::in_memory().unwrap();
        let key = inner.create_key(kp::CreateKeyRequest::default()).unwrap();
        let engine = into_raw::<kp_engine>(crate::api::handles::EngineHandle::new(inner));
        let key_id = std::ffi::CString::new(key.key_id).unwrap();
        let arena = Arena::new();
        let at = |offset: usize| arena.at(offset);
        let out = |offset: usize, capacity: usize| arena.out(offset, capacity);
        let item = kp_data_key_item {
            key_id: key_id.as_ptr(),
            context: null(),
            key_spec: kp_data_key_spec::Aes_256 as u32,
            number_of_bytes: 0,
        };
        let blob = blob_len(32);
        let mut secret = null_mut();
        let mut refused = Refusals::default();
        // SAFETY: (every call below) a live handle; every pointer lies in the arena or a local, with
        // the length given.
        unsafe {
            // GenerateDataKey: the length, then the secret's handle, written into the ciphertext.
            let (plaintext, length) = (at(0).cast(), at(8).cast());
            let status =
                kp_generate_data_key(engine, &item, &mut secret, at(0), blob, length, null_mut());
            refused.check(
                "kp_generate_data_key",
                status,
                &["ciphertext_len", "ciphertext"],
            );
            let mut len = 0usize;
            let status =
                kp_generate_data_key(engine, &item, plaintext, at(0), blob, &mut len, null_mut());
            refused.check(
                "kp_generate_data_key plaintext",
                status,
                &["plaintext", "ciphertext"],
            );
            let status = kp_generate_data_key_without_plaintext(
                engine,
                &item,
                at(0),
                blob,
                &mut len,
                at(16).cast(),
            );
            refused.check(
                "kp_generate_data_key_without_plaintext",
                status,
                &["info", "ciphertext"],
            );
            // The batch: a ciphertext written into the secret buffer that receives the keys.
            let mut keys = null_mut();
            assert_eq!(kp_secret_buffer_new(engine, 64, &mut keys), kp_status::Ok);
            let mut ciphertexts = [out(600, blob), out(0, blob)];
            ciphertexts[1].data = kp_secret_buffer_data(keys).add(32);
            let items = [item, item];
            let status = kp_generate_data_key_batch(
                engine,
                items.as_ptr(),
                2,
                keys,
                ciphertexts.as_mut_ptr(),
            );
            refused.check(
                "kp_generate_data_key_batch",
                status,
                &["ciphertexts[1].data", "plaintexts"],
            );
            kp_secret_buffer_free(keys);
            // GenerateRandom: two outputs sharing a byte; an output over the output array.
            let mut outputs = [out(0, 100), out(99, 100)];
            let status = kp_generate_random_batch(engine, outputs.as_mut_ptr(), 2);
            refused.check(
                "kp_generate_random_batch",
                status,
                &["outputs[1].data", "outputs[0].data"],
            );
            let mut outputs = [out(0, 16), out(0, 16)];
            outputs[1].data = outputs.as_mut_ptr().cast();
            let status = kp_generate_random_batch(engine, outputs.as_mut_ptr(), 2);
            refused.check(
                "kp_generate_random_batch onto outputs",
                status,
                &["outputs[1].data", "outputs"],
            );
            // Sizes: in place over the items; two size arrays sharing an entry.
            let encrypt = [kp_encrypt_item {
                key_id: key_id.as_ptr(),
                plaintext: at(0),
                plaintext_len: 16,
                context: null(),
                encryption_algorithm: 0,
            }];
            let sizes = encrypt.as_ptr().cast_mut().cast();
            let status = kp_encrypt_batch_sizes(encrypt.as_ptr(), 1, sizes, null_mut());
            refused.check("kp_encrypt_batch_sizes", status, &["sizes", "items"]);
            let mut lens = [0usize; 3];
            let (key_lens, blob_lens) = (lens.as_mut_ptr(), lens.as_mut_ptr().add(1));
            let status = kp_generate_data_key_batch_sizes(
                items.as_ptr(),
                2,
                key_lens,
                blob_lens,
                null_mut(),
                null_mut(),
            );
            refused.check(
                "kp_generate_data_key_batch_sizes",
                status,
                &["key_lens", "ciphertext_lens"],
            );
            // The audit public key's length written into the key; the verifier's record into the
            // public key it reads.
            let status = kp_engine_audit_public_key(engine, at(0), 100, at(16).cast());
            refused.check("kp_engine_audit_public_key", status, &["out_len", "out"]);
            let path = c"/nonexistent/audit.log";
            let status = kp_audit_verify(path.as_ptr(), at(0), 91, at(8).cast());
            refused.check("kp_audit_verify", status, &["out", "public_key"]);
            // The last error's length written into the message buffer (no message of its own).
            let status = kp_last_error_message(at(0).cast(), 64, at(8).cast());
            refused.check("kp_last_error_message", status, &[]);
            kp_engine_free(engine);
        }
        refused.finish();
        assert!(secret.is_null());
        arena.assert_unchanged();
    }
}
