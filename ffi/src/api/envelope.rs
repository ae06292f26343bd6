//! Envelope encryption in the AWS Encryption SDK's message format (`docs/envelope.md`), a thin
//! adapter over `keyplane::envelope`: keyrings (`kp_keyring`: a keyplane key as a KMS key, a raw
//! AES or a raw RSA wrapping key), streaming contexts (`kp_envelope`) that move bytes between the
//! caller's buffers, and one-shot calls.
//!
//! Streaming contract (`kp_envelope_update`, `kp_envelope_finish`): a call first hands over
//! output held from earlier calls, then (only once nothing is held) takes *all* of its input, and
//! hands over what that produced, as far as `output_capacity` allows. It reports the input bytes
//! taken (`*consumed`: 0 or `input_len`), the output bytes written (`*written`) and the output
//! bytes still held (`*pending`). It returns `KP_STATUS_OK` when all input was taken and nothing
//! is held, or `KP_STATUS_BUFFER_TOO_SMALL` when output is still held (`*pending` bytes: an
//! output buffer that long takes it all): that is progress, not a failure; call again with the
//! input not consumed (and, for finish, finish again). Any other status is a failure that ends
//! the context: every later call returns it, and nothing of the failing call is left in
//! `output` (what it wrote there is zeroed).
//!
//! Decryption (the engine's `PushDecryptor`: whole frames are opened where they lie in the input,
//! in parallel batches on the engine's pool) releases no plaintext of a frame before that frame
//! and the rest of its batch authenticated, and for the signed suites none before the whole
//! message (signature included) verified: frames are opened as they arrive and their plaintext
//! held (at most `max_buffered_plaintext`, 256 MiB, else `KP_STATUS_LIMIT_EXCEEDED`) until the
//! signature after the final frame verified. A non-framed body (read only) is opened once it is
//! all here. An unsigned message
//! that proves truncated or tampered at a later frame fails there; the caller discards what it
//! received (as with `keyplane decrypt-file`).

use std::ffi::c_char;
use std::io::Write;
use std::sync::{Arc, Mutex, MutexGuard};

use kp::envelope::{
    decrypt_message, encrypt_message, error_from_io, AlgorithmSuite, CommitmentPolicy, Encryptor,
    EnvelopeConfig, Keyring, KmsKeyring, PushDecryptor, RawAesKeyring, RawRsaKeyring, RsaPadding,
    SignedRelease,
};
use kp::{EncryptionContext, Engine};
use zeroize::{Zeroize, Zeroizing};

use super::caller::from_caller;
use super::control::engine_arg;
use super::failure::{Failure, Outcome};
use super::ffi::{
    array_arg, bytes_arg, guard, opt_str_arg, out_arg, out_bytes, str_arg, write_out, OutPtr,
};
use super::handles::{
    context_arg, free_handle, handle, handle_mut, handle_ref, into_raw, kp_context, kp_engine,
};
use super::overlap::{refuse_overlap, Span};
use super::status::kp_status;

/// Most keyrings one message takes (each adds an encrypted data key).
pub const KP_ENVELOPE_MAX_KEYRINGS: usize = 256;
/// Longest footer signature (DER ECDSA P-384) of the signed suites. A signed message's length
/// varies by a few bytes from message to message with its signature's.
pub const KP_ENVELOPE_MAX_SIGNATURE_LEN: usize = 104;

/// A keyring: wraps a message's data key (and unwraps it to decrypt). Made by
/// `kp_keyring_kms_new`, `kp_keyring_raw_aes_new` or `kp_keyring_raw_rsa_new`; freed with
/// `kp_keyring_free`. Immutable and thread-safe: one keyring may serve many messages on many
/// threads at once. A KMS keyring keeps its engine alive while it lives.
pub struct kp_keyring {
    _private: [u8; 0],
}
handle!(kp_keyring, Arc<dyn Keyring>, 0x6b70_6b65_7972_6e67);

/// A streaming envelope encryption or decryption (`kp_envelope_encrypt_new`,
/// `kp_envelope_decrypt_new`), fed with `kp_envelope_update` and ended with
/// `kp_envelope_finish`; freed with `kp_envelope_free`. Not thread-safe: one call at a time.
pub struct kp_envelope {
    _private: [u8; 0],
}
handle!(kp_envelope, EnvelopeStream, 0x6b70_656e_7665_6c70);

// ---- keyrings ----------------------------------------------------------------------------------

/// Hands a keyring to the caller through `out`.
///
/// # Safety
/// As [`write_out`].
unsafe fn give_keyring(out: OutPtr<*mut kp_keyring>, keyring: Arc<dyn Keyring>) {
    from_caller!(write_out(out, into_raw::<kp_keyring>(keyring)))
}

/// A keyring over the keyplane key `key_id` (key id, ARN, alias name or alias ARN) of `engine`,
/// as the Encryption SDK's KMS keyring uses a KMS key: the first keyring of a message generates
/// the data key with GenerateDataKey, later ones Encrypt it; to decrypt, only data keys wrapped
/// under this key's ARN are tried. `key_id` NULL makes a discovery keyring (decrypt only: any
/// `aws-kms` data key the engine can decrypt). Errors: `KP_STATUS_NOT_FOUND` for an unknown key.
///
/// Ownership: on success `*out` is a new keyring the caller frees with `kp_keyring_free`; it
/// keeps `engine` alive. Thread safety: thread-safe.
///
/// # Safety
/// `engine` is a live handle; `key_id` is NULL or NUL-terminated; `out` is writable.
#[no_mangle]
pub unsafe extern "C" fn kp_keyring_kms_new(
    engine: *const kp_engine,
    key_id: *const c_char,
    out: *mut *mut kp_keyring,
) -> kp_status {
    guard(|| {
        let engine = from_caller!(engine_arg(engine))?;
        let key_id = from_caller!(opt_str_arg(key_id, "key_id"))?;
        let out = out_arg(out, "out")?;
        let keyring: Arc<dyn Keyring> = match key_id {
            Some(id) => Arc::new(KmsKeyring::new(engine, id)?),
            None => Arc::new(KmsKeyring::discovery(engine)),
        };
        from_caller!(give_keyring(out, keyring));
        Ok(())
    })
}

/// A raw AES keyring: `namespace` (the provider id; not starting with `aws-kms`) and `name`
/// identify the wrapping key, `key` is its 16, 24 or 32 bytes (copied into locked memory; the
/// caller may wipe its copy at once). Interoperates with the SDKs' raw AES keyrings.
///
/// Ownership: on success `*out` is a new keyring the caller frees with `kp_keyring_free`.
/// Thread safety: thread-safe.
///
/// # Safety
/// The strings are NUL-terminated; `key` has `key_len` readable bytes; `out` is writable.
#[no_mangle]
pub unsafe extern "C" fn kp_keyring_raw_aes_new(
    namespace: *const c_char,
    name: *const c_char,
    key: *const u8,
    key_len: usize,
    out: *mut *mut kp_keyring,
) -> kp_status {
    guard(|| {
        let namespace = from_caller!(str_arg(namespace, "namespace"))?;
        let name = from_caller!(str_arg(name, "name"))?;
        let key = from_caller!(bytes_arg(key, key_len, "key"))?;
        let out = out_arg(out, "out")?;
        let keyring = Arc::new(RawAesKeyring::new(namespace, name, key)?);
        from_caller!(give_keyring(out, keyring));
        Ok(())
    })
}

/// A raw RSA keyring: `namespace` and `name` identify the key, `padding` is "RSA_PKCS1",
/// "RSA_OAEP_SHA1_MGF1", "RSA_OAEP_SHA256_MGF1", "RSA_OAEP_SHA384_MGF1" or
/// "RSA_OAEP_SHA512_MGF1", and `key` a private key (PKCS#8, DER or PEM "PRIVATE KEY": wraps and
/// unwraps) or a public key (SubjectPublicKeyInfo, DER or PEM "PUBLIC KEY": wraps only).
///
/// Ownership: on success `*out` is a new keyring the caller frees with `kp_keyring_free`.
/// Thread safety: thread-safe.
///
/// # Safety
/// The strings are NUL-terminated; `key` has `key_len` readable bytes; `out` is writable.
#[no_mangle]
pub unsafe extern "C" fn kp_keyring_raw_rsa_new(
    namespace: *const c_char,
    name: *const c_char,
    padding: *const c_char,
    key: *const u8,
    key_len: usize,
    out: *mut *mut kp_keyring,
) -> kp_status {
    guard(|| {
        let namespace = from_caller!(str_arg(namespace, "namespace"))?;
        let name = from_caller!(str_arg(name, "name"))?;
        let padding_name = from_caller!(str_arg(padding, "padding"))?;
        let key = from_caller!(bytes_arg(key, key_len, "key"))?;
        let out = out_arg(out, "out")?;
        let padding = RsaPadding::from_name(padding_name).ok_or_else(|| {
            Failure::new(
                kp_status::InvalidEnumValue,
                format!(
                    "padding {padding_name:?} is not RSA_PKCS1, RSA_OAEP_SHA1_MGF1, \
                         RSA_OAEP_SHA256_MGF1, RSA_OAEP_SHA384_MGF1 or RSA_OAEP_SHA512_MGF1"
                ),
            )
        })?;
        let is_public_pem = std::str::from_utf8(key).is_ok_and(|t| t.contains("PUBLIC KEY"));
        let keyring = if is_public_pem {
            RawRsaKeyring::with_public_key(namespace, name, padding, key)?
        } else {
            match RawRsaKeyring::with_private_key(namespace, name, padding, key) {
                Ok(k) => k,
                // A DER public key is not PKCS#8; the private key's error is the one to
                // report when it is neither.
                Err(e) => {
                    RawRsaKeyring::with_public_key(namespace, name, padding, key).map_err(|_| e)?
                }
            }
        };
        from_caller!(give_keyring(out, Arc::new(keyring)));
        Ok(())
    })
}

/// Frees a keyring. NULL is ignored. Messages and contexts made with it keep their own reference.
///
/// Ownership: takes the handle. Thread safety: no call using this handle may be in flight.
///
/// # Safety
/// `keyring` is NULL or a handle from a `kp_keyring_*_new` not freed before.
#[no_mangle]
pub unsafe extern "C" fn kp_keyring_free(keyring: *mut kp_keyring) {
    from_caller!(free_handle(keyring, |_: &_| true))
}

// ---- arguments ---------------------------------------------------------------------------------

/// The keyrings of an array of `count` handles.
///
/// # Safety
/// `keyrings` is NULL or points to `count` handle pointers, each NULL or a live keyring.
unsafe fn keyrings_arg(
    keyrings: *const *const kp_keyring,
    count: usize,
) -> Outcome<Vec<Arc<dyn Keyring>>> {
    let handles = from_caller!(array_arg(
        keyrings,
        count,
        KP_ENVELOPE_MAX_KEYRINGS,
        "keyrings"
    ))?;
    if handles.is_empty() {
        return Err(Failure::new(
            kp_status::Validation,
            "name at least one keyring (keyring_count is 0)",
        ));
    }
    handles
        .iter()
        .map(|&h| from_caller!(handle_ref(h, "keyrings[i]")).cloned())
        .collect()
}

/// The engine whose worker pool runs the frames; NULL: rayon's global pool.
///
/// # Safety
/// `engine` is NULL or a live handle for `'a`.
unsafe fn pool_engine<'a>(engine: *const kp_engine) -> Outcome<Option<&'a Engine>> {
    if engine.is_null() {
        return Ok(None);
    }
    from_caller!(engine_arg(engine)).map(Some)
}

fn encrypt_config(
    engine: Option<&Engine>,
    frame_length: u32,
    suite: u16,
) -> Outcome<EnvelopeConfig> {
    let mut config = EnvelopeConfig::default();
    if suite != 0 {
        config.suite = AlgorithmSuite::from_id(suite).ok_or_else(|| {
            Failure::new(
                kp_status::InvalidEnumValue,
                format!(
                    "algorithm suite 0x{suite:04X} is not 0x0578, 0x0478, 0x0378, 0x0178 or 0x0078"
                ),
            )
        })?;
    }
    // A non-committing suite asked for by id is written under FORBID_ENCRYPT_ALLOW_DECRYPT, as
    // `keyplane encrypt-file --suite` does.
    if !config.suite.is_committing() {
        config.commitment_policy = CommitmentPolicy::ForbidEncryptAllowDecrypt;
    }
    if frame_length != 0 {
        config.frame_length = frame_length;
    }
    if let Some(engine) = engine {
        config.pool = Some(engine.worker_pool());
    }
    Ok(config)
}

/// # Safety
/// `policy` is NULL or NUL-terminated.
unsafe fn decrypt_config(
    engine: Option<&Engine>,
    policy: *const c_char,
) -> Outcome<EnvelopeConfig> {
    let mut config = EnvelopeConfig::default();
    if let Some(name) = from_caller!(opt_str_arg(policy, "commitment_policy"))? {
        config.commitment_policy = CommitmentPolicy::from_name(name).ok_or_else(|| {
            Failure::new(
                kp_status::InvalidEnumValue,
                format!(
                    "commitment policy {name:?} is not REQUIRE_ENCRYPT_REQUIRE_DECRYPT, \
                     REQUIRE_ENCRYPT_ALLOW_DECRYPT or FORBID_ENCRYPT_ALLOW_DECRYPT"
                ),
            )
        })?;
    }
    config.signed_release = SignedRelease::AfterSignature;
    if let Some(engine) = engine {
        config.pool = Some(engine.worker_pool());
    }
    Ok(config)
}

fn empty_context() -> &'static EncryptionContext {
    static EMPTY: EncryptionContext = EncryptionContext::new();
    &EMPTY
}

// ---- streaming ---------------------------------------------------------------------------------

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Where an encryptor writes its message: taken out after every step.
#[derive(Clone, Default)]
struct Sink(Arc<Mutex<Vec<u8>>>);

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        lock(&self.0).extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A streaming decryption: the engine's push decryptor finds the frame boundaries in the bytes
/// given, opens whole frames in batches in parallel and applies the release rule.
struct Decrypting(PushDecryptor);

impl Decrypting {
    /// Takes `input` and decrypts every frame that is now whole into `out`.
    fn absorb(&mut self, input: &[u8], out: &mut Vec<u8>) -> Outcome<()> {
        Ok(self.0.update(input, out)?)
    }

    /// The end of the message: checks it is whole and hands over the rest.
    fn complete(&mut self, out: &mut Vec<u8>) -> Outcome<()> {
        Ok(self.0.finish(out)?)
    }
}

enum Mode {
    Encrypt {
        encryptor: Option<Box<Encryptor<Sink>>>,
        sink: Sink,
    },
    Decrypt(Box<Decrypting>),
}

/// A streaming context: the engine's encryptor or decryptor and the output not yet handed over.
pub(crate) struct EnvelopeStream {
    mode: Mode,
    pending: Zeroizing<Vec<u8>>,
    pending_pos: usize,
    /// Finish has run (only held output may remain).
    done: bool,
    failed: Option<(kp_status, String)>,
}

impl EnvelopeStream {
    fn new(mode: Mode) -> Self {
        EnvelopeStream {
            mode,
            pending: Zeroizing::new(Vec::new()),
            pending_pos: 0,
            done: false,
            failed: None,
        }
    }

    fn held(&self) -> usize {
        self.pending.len() - self.pending_pos
    }

    /// Moves held output into `out[at..]`; returns the new end.
    fn drain(&mut self, out: &mut [u8], at: usize) -> usize {
        let n = self.held().min(out.len() - at);
        out[at..at + n].copy_from_slice(&self.pending[self.pending_pos..self.pending_pos + n]);
        self.pending_pos += n;
        if self.held() == 0 {
            self.pending.zeroize();
            self.pending.clear();
            self.pending_pos = 0;
        }
        at + n
    }

    /// Feeds `input` (update) or ends the message (`None`: finish).
    fn absorb(&mut self, input: Option<&[u8]>) -> Outcome<()> {
        let pending = &mut *self.pending;
        match &mut self.mode {
            Mode::Encrypt { encryptor, sink } => {
                match input {
                    Some(bytes) => {
                        let encryptor = encryptor.as_mut().ok_or_else(|| {
                            Failure::new(kp_status::Internal, "the encryptor is gone")
                        })?;
                        encryptor.write_all(bytes).map_err(error_from_io)?;
                    }
                    None => {
                        if let Some(encryptor) = encryptor.take() {
                            (*encryptor).finish()?;
                        }
                    }
                }
                let mut written = lock(&sink.0);
                pending.extend_from_slice(&written);
                written.clear();
                Ok(())
            }
            Mode::Decrypt(decrypting) => match input {
                Some(bytes) => decrypting.absorb(bytes, pending),
                None => decrypting.complete(pending),
            },
        }
    }

    /// One update (`input` Some) or finish (None) step; see the module's contract.
    ///
    /// # Safety
    /// As [`write_out`], for each of `outs`.
    unsafe fn step(&mut self, input: Option<&[u8]>, out: &mut [u8], outs: StepOuts) -> Outcome<()> {
        if let Some((status, message)) = &self.failed {
            return Err(Failure::new(
                *status,
                format!("the envelope context failed before: {message}"),
            ));
        }
        if self.done && input.is_some_and(|i| !i.is_empty()) {
            return Err(Failure::new(
                kp_status::Validation,
                "the envelope context is finished: it takes no more input",
            ));
        }
        let mut end = self.drain(out, 0);
        let mut took = 0;
        let mut outcome = Ok(());
        if self.held() == 0 {
            if let Some(bytes) = input {
                took = bytes.len();
            }
            if !self.done {
                outcome = self.absorb(input);
                if input.is_none() {
                    self.done = true;
                }
            }
            if outcome.is_ok() {
                end = self.drain(out, end);
            }
        }
        if let Err(failure) = outcome {
            out[..end].zeroize();
            self.pending.zeroize();
            self.pending.clear();
            self.pending_pos = 0;
            // The out-parameters stay as the export zeroed them.
            self.failed = Some((failure.status, failure.message.clone()));
            return Err(failure);
        }
        let held = self.held();
        if let Some(consumed) = outs.consumed {
            from_caller!(write_out(consumed, took));
        }
        from_caller!(write_out(outs.written, end));
        from_caller!(write_out(outs.pending, held));
        if held > 0 {
            return Err(Failure::new(
                kp_status::BufferTooSmall,
                format!(
                    "{held} bytes of output are held: call again (an output buffer of {held} bytes \
                     takes them all)"
                ),
            ));
        }
        Ok(())
    }
}

/// Starts streaming encryption of one message: `keyrings` (`keyring_count`, at least one; the
/// first generates the data key, each adds an encrypted copy), the encryption context `context`
/// (NULL: empty; keys starting with "aws-crypto-" are reserved), `frame_length` (0: 4096; at most
/// 2^31 - 1) and `suite` (0: 0x0578, signed and committing; 0x0478 committing; the
/// non-committing 0x0378, 0x0178 and 0x0078 are written under FORBID_ENCRYPT_ALLOW_DECRYPT).
/// `engine` (optional) lends its worker pool for sealing frames in parallel. The header (with
/// the wrapped data keys) is made now and comes out of the first `kp_envelope_update` or
/// `kp_envelope_finish`. A context freed before finish leaves a message every reader refuses
/// as truncated.
///
/// Ownership: on success `*out` is a new context the caller frees with `kp_envelope_free`; it
/// holds its own references to the keyrings. Thread safety: the new context is used by one
/// thread at a time.
///
/// # Safety
/// `engine` is NULL or a live handle; `keyrings` points to `keyring_count` live keyring
/// handles; `context` is NULL or a live handle; `out` is writable.
#[no_mangle]
pub unsafe extern "C" fn kp_envelope_encrypt_new(
    engine: *const kp_engine,
    keyrings: *const *const kp_keyring,
    keyring_count: usize,
    context: *const kp_context,
    frame_length: u32,
    suite: u16,
    out: *mut *mut kp_envelope,
) -> kp_status {
    guard(|| {
        let engine = from_caller!(pool_engine(engine))?;
        let keyrings = from_caller!(keyrings_arg(keyrings, keyring_count))?;
        let context = from_caller!(context_arg(context, "context"))?.unwrap_or(empty_context());
        let out = out_arg(out, "out")?;
        let config = encrypt_config(engine, frame_length, suite)?;
        let sink = Sink::default();
        let encryptor = Encryptor::new(sink.clone(), &keyrings, &config, context)?;
        let stream = EnvelopeStream::new(Mode::Encrypt {
            encryptor: Some(Box::new(encryptor)),
            sink,
        });
        from_caller!(write_out(out, into_raw::<kp_envelope>(stream)));
        Ok(())
    })
}

/// Starts streaming decryption of one message with `keyrings` (tried in order on the message's
/// encrypted data keys; none succeeding is `KP_STATUS_INCORRECT_KEY`) under
/// `commitment_policy` (NULL: "REQUIRE_ENCRYPT_REQUIRE_DECRYPT"; "REQUIRE_ENCRYPT_ALLOW_DECRYPT"
/// or "FORBID_ENCRYPT_ALLOW_DECRYPT" also read the non-committing suites). `engine` (optional)
/// lends its worker pool. Frames are released as each batch of them authenticates; a signed
/// message's plaintext is held (up to 256 MiB) until its signature, after the final frame,
/// verified; a non-framed body comes out once it is all here and authenticated.
/// Failures: `KP_STATUS_INVALID_CIPHERTEXT` (malformed, tampered, truncated, trailing bytes),
/// `KP_STATUS_INVALID_SIGNATURE`, `KP_STATUS_INCORRECT_KEY`, `KP_STATUS_LIMIT_EXCEEDED`.
///
/// Ownership: on success `*out` is a new context the caller frees with `kp_envelope_free`.
/// Thread safety: the new context is used by one thread at a time.
///
/// # Safety
/// `engine` is NULL or a live handle; `keyrings` points to `keyring_count` live keyring
/// handles; `commitment_policy` is NULL or NUL-terminated; `out` is writable.
#[no_mangle]
pub unsafe extern "C" fn kp_envelope_decrypt_new(
    engine: *const kp_engine,
    keyrings: *const *const kp_keyring,
    keyring_count: usize,
    commitment_policy: *const c_char,
    out: *mut *mut kp_envelope,
) -> kp_status {
    guard(|| {
        let engine = from_caller!(pool_engine(engine))?;
        let keyrings = from_caller!(keyrings_arg(keyrings, keyring_count))?;
        let config = from_caller!(decrypt_config(engine, commitment_policy))?;
        let out = out_arg(out, "out")?;
        let stream = EnvelopeStream::new(Mode::Decrypt(Box::new(Decrypting(PushDecryptor::new(
            &keyrings, &config,
        )))));
        from_caller!(write_out(out, into_raw::<kp_envelope>(stream)));
        Ok(())
    })
}

/// A step's out-parameters, checked: the input taken (an update's), the output written and the
/// output still held.
struct StepOuts {
    consumed: Option<OutPtr<usize>>,
    written: OutPtr<usize>,
    pending: OutPtr<usize>,
}

/// The checked out-parameters of a step, zeroed.
///
/// # Safety
/// Each pointer is NULL or writable.
unsafe fn step_outs(
    consumed: *mut usize,
    written: *mut usize,
    pending: *mut usize,
) -> Outcome<StepOuts> {
    let consumed = if consumed.is_null() {
        None
    } else {
        Some(out_arg(consumed, "consumed")?)
    };
    let outs = StepOuts {
        consumed,
        written: out_arg(written, "written")?,
        pending: out_arg(pending, "pending")?,
    };
    if let Some(consumed) = outs.consumed {
        from_caller!(write_out(consumed, 0));
    }
    from_caller!(write_out(outs.written, 0));
    from_caller!(write_out(outs.pending, 0));
    Ok(outs)
}

/// Feeds `input` (`input_len` bytes; NULL when 0) to a streaming context and hands over output
/// into `output` (`output_capacity` bytes; NULL when 0): ciphertext for an encryption,
/// authenticated plaintext for a decryption. `*consumed` is the input taken (0 or `input_len`:
/// none while output is held), `*written` the output written, `*pending` the output still held.
/// Returns `KP_STATUS_OK` when all input was taken and no output is held, or
/// `KP_STATUS_BUFFER_TOO_SMALL` (progress, not a failure) when output is held: call again with
/// the rest of the input (`input + *consumed`) until `KP_STATUS_OK`. Any other status ends the
/// context (later calls return it again); output written by the failing call is zeroed.
///
/// Ownership: the buffers stay the caller's. Thread safety: one call on a context at a time.
///
/// # Safety
/// `ctx` is a live context; `input` has `input_len` readable bytes; `output` has
/// `output_capacity` writable bytes that overlap nothing else of the call; the three
/// out-pointers are writable.
#[no_mangle]
pub unsafe extern "C" fn kp_envelope_update(
    ctx: *mut kp_envelope,
    input: *const u8,
    input_len: usize,
    consumed: *mut usize,
    output: *mut u8,
    output_capacity: usize,
    written: *mut usize,
    pending: *mut usize,
) -> kp_status {
    guard(|| {
        refuse_overlap(&mut [
            Span::input(input, input_len, "input"),
            Span::output(output, output_capacity, "output"),
            Span::output_of(consumed, "consumed"),
            Span::output_of(written, "written"),
            Span::output_of(pending, "pending"),
        ])?;
        if consumed.is_null() {
            return Err(Failure::null("consumed"));
        }
        let outs = from_caller!(step_outs(consumed, written, pending))?;
        let stream = from_caller!(handle_mut(ctx, "ctx"))?;
        let input = from_caller!(bytes_arg(input, input_len, "input"))?;
        let out = from_caller!(out_bytes(
            output,
            output_capacity,
            output_capacity,
            "output"
        ))?;
        from_caller!(stream.step(Some(input), out, outs))
    })
}

/// Ends the message and hands over the rest of the output into `output`: an encryption's last
/// frames and footer, a decryption's last plaintext (all of a signed message's, once its
/// signature verified) after the end of the message was checked (truncation, trailing bytes).
/// `*written` is the output written, `*pending` what is still held. Returns `KP_STATUS_OK` when
/// the message is complete and all output handed over, or `KP_STATUS_BUFFER_TOO_SMALL` when
/// `*pending` bytes are still held: call finish again (with a buffer of at least that size to
/// take them all). Output held from updates comes first. Any other status ends the context;
/// output written by the failing call is zeroed.
///
/// Ownership: the buffer stays the caller's. Thread safety: one call on a context at a time.
///
/// # Safety
/// `ctx` is a live context; `output` has `output_capacity` writable bytes; the out-pointers are
/// writable and overlap nothing else of the call.
#[no_mangle]
pub unsafe extern "C" fn kp_envelope_finish(
    ctx: *mut kp_envelope,
    output: *mut u8,
    output_capacity: usize,
    written: *mut usize,
    pending: *mut usize,
) -> kp_status {
    guard(|| {
        refuse_overlap(&mut [
            Span::output(output, output_capacity, "output"),
            Span::output_of(written, "written"),
            Span::output_of(pending, "pending"),
        ])?;
        let outs = from_caller!(step_outs(std::ptr::null_mut(), written, pending))?;
        let stream = from_caller!(handle_mut(ctx, "ctx"))?;
        let out = from_caller!(out_bytes(
            output,
            output_capacity,
            output_capacity,
            "output"
        ))?;
        from_caller!(stream.step(None, out, outs))
    })
}

/// The message's encryption context: for an encryption, the context given (with
/// "aws-crypto-public-key" for the signed suites); for a decryption, the context the message
/// carries (check it is the one you expect), once its header has been read (before that
/// `KP_STATUS_VALIDATION`).
///
/// Ownership: on success `*out` is a new context the caller frees with `kp_context_free`.
/// Thread safety: one call on a streaming context at a time.
///
/// # Safety
/// `ctx` is a live context; `out` is writable.
#[no_mangle]
pub unsafe extern "C" fn kp_envelope_message_context(
    ctx: *const kp_envelope,
    out: *mut *mut kp_context,
) -> kp_status {
    guard(|| {
        let stream = from_caller!(handle_ref(ctx, "ctx"))?;
        let out = out_arg(out, "out")?;
        let context = match &stream.mode {
            Mode::Encrypt {
                encryptor: Some(e), ..
            } => Some(e.header().encryption_context.clone()),
            Mode::Encrypt { .. } => None,
            Mode::Decrypt(d) => d.0.header().map(|h| h.encryption_context.clone()),
        };
        let context = context.ok_or_else(|| {
            Failure::new(
                kp_status::Validation,
                "the message's header has not been read yet (or the encryption finished)",
            )
        })?;
        from_caller!(write_out(out, into_raw::<kp_context>(context)));
        Ok(())
    })
}

/// Frees a streaming context (held output is zeroed). NULL is ignored. An encryption freed
/// before `kp_envelope_finish` succeeded leaves an unfinished message every reader refuses.
///
/// Ownership: takes the handle. Thread safety: no call using it may be in flight.
///
/// # Safety
/// `ctx` is NULL or a handle from `kp_envelope_encrypt_new` or `kp_envelope_decrypt_new` not
/// freed before.
#[no_mangle]
pub unsafe extern "C" fn kp_envelope_free(ctx: *mut kp_envelope) {
    from_caller!(free_handle(ctx, |_: &_| true))
}

// ---- one-shot ----------------------------------------------------------------------------------

/// Encrypts `plaintext` into one message in `output` (settings as `kp_envelope_encrypt_new`)
/// and sets `*output_len` to its length. When `output_capacity` is too small, returns
/// `KP_STATUS_BUFFER_TOO_SMALL`, writes nothing, and sets `*output_len` to a size that always
/// suffices for the same call (the message made plus, for the signed suites,
/// `KP_ENVELOPE_MAX_SIGNATURE_LEN`, as each message's signature varies in length).
///
/// Ownership: the buffers stay the caller's. Thread safety: thread-safe.
///
/// # Safety
/// As `kp_envelope_encrypt_new`; `plaintext` has `plaintext_len` readable bytes; `output` has
/// `output_capacity` writable bytes overlapping no input; `output_len` is writable.
#[no_mangle]
pub unsafe extern "C" fn kp_envelope_encrypt(
    engine: *const kp_engine,
    keyrings: *const *const kp_keyring,
    keyring_count: usize,
    context: *const kp_context,
    frame_length: u32,
    suite: u16,
    plaintext: *const u8,
    plaintext_len: usize,
    output: *mut u8,
    output_capacity: usize,
    output_len: *mut usize,
) -> kp_status {
    guard(|| {
        refuse_overlap(&mut [
            Span::input(plaintext, plaintext_len, "plaintext"),
            Span::output(output, output_capacity, "output"),
            Span::output_of(output_len, "output_len"),
        ])?;
        let output_len = out_arg(output_len, "output_len")?;
        from_caller!(write_out(output_len, 0));
        let engine = from_caller!(pool_engine(engine))?;
        let keyrings = from_caller!(keyrings_arg(keyrings, keyring_count))?;
        let context = from_caller!(context_arg(context, "context"))?.unwrap_or(empty_context());
        let plaintext = from_caller!(bytes_arg(plaintext, plaintext_len, "plaintext"))?;
        let config = encrypt_config(engine, frame_length, suite)?;
        let message = encrypt_message(&keyrings, &config, context, plaintext)?;
        if message.len() > output_capacity {
            let slack = if config.suite.is_signed() {
                KP_ENVELOPE_MAX_SIGNATURE_LEN
            } else {
                0
            };
            from_caller!(write_out(output_len, message.len() + slack));
            return Err(Failure::new(
                kp_status::BufferTooSmall,
                format!(
                    "output has {output_capacity} bytes; the message needs {} (a buffer of \
                         {} always suffices)",
                    message.len(),
                    message.len() + slack
                ),
            ));
        }
        let out = from_caller!(out_bytes(output, output_capacity, message.len(), "output"))?;
        out.copy_from_slice(&message);
        from_caller!(write_out(output_len, message.len()));
        Ok(())
    })
}

/// Decrypts one whole message into `output` (settings as `kp_envelope_decrypt_new`) and sets
/// `*output_len` to the plaintext's length; nothing is written unless the whole message (its
/// signature included) verified. A plaintext is never longer than its message. When
/// `output_capacity` is too small, returns `KP_STATUS_BUFFER_TOO_SMALL`, writes nothing, and
/// sets `*output_len` to the plaintext's length. `*context` (optional) receives the message's
/// encryption context: check it is the one you expect.
///
/// Ownership: the buffers stay the caller's; `*context`, when asked for, is a new context the
/// caller frees with `kp_context_free`. Thread safety: thread-safe.
///
/// # Safety
/// As `kp_envelope_decrypt_new`; `message` has `message_len` readable bytes; `output` has
/// `output_capacity` writable bytes overlapping no input; `output_len` is writable; `context`
/// is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn kp_envelope_decrypt(
    engine: *const kp_engine,
    keyrings: *const *const kp_keyring,
    keyring_count: usize,
    commitment_policy: *const c_char,
    message: *const u8,
    message_len: usize,
    output: *mut u8,
    output_capacity: usize,
    output_len: *mut usize,
    context: *mut *mut kp_context,
) -> kp_status {
    guard(|| {
        refuse_overlap(&mut [
            Span::input(message, message_len, "message"),
            Span::output(output, output_capacity, "output"),
            Span::output_of(output_len, "output_len"),
            Span::output_of(context, "context"),
        ])?;
        let output_len = out_arg(output_len, "output_len")?;
        from_caller!(write_out(output_len, 0));
        let context = if context.is_null() {
            None
        } else {
            Some(out_arg(context, "context")?)
        };
        let engine = from_caller!(pool_engine(engine))?;
        let keyrings = from_caller!(keyrings_arg(keyrings, keyring_count))?;
        let config = from_caller!(decrypt_config(engine, commitment_policy))?;
        let message = from_caller!(bytes_arg(message, message_len, "message"))?;
        let opened = decrypt_message(&keyrings, &config, message)?;
        let plaintext = &opened.plaintext;
        if plaintext.len() > output_capacity {
            from_caller!(write_out(output_len, plaintext.len()));
            return Err(Failure::new(
                kp_status::BufferTooSmall,
                format!(
                    "output has {output_capacity} bytes; the plaintext needs {}",
                    plaintext.len()
                ),
            ));
        }
        let out = from_caller!(out_bytes(
            output,
            output_capacity,
            plaintext.len(),
            "output"
        ))?;
        out.copy_from_slice(plaintext);
        from_caller!(write_out(output_len, plaintext.len()));
        if let Some(context) = context {
            let handle = into_raw::<kp_context>(opened.header.encryption_context.clone());
            from_caller!(write_out(context, handle));
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn aes_keyring() -> *mut kp_keyring {
        let mut ring = std::ptr::null_mut();
        // SAFETY: NUL-terminated literals, a 32-byte key, a writable out-pointer.
        let status = unsafe {
            kp_keyring_raw_aes_new(
                c"ns".as_ptr(),
                c"k".as_ptr(),
                [9u8; 32].as_ptr(),
                32,
                &mut ring,
            )
        };
        assert_eq!(status, kp_status::Ok);
        ring
    }

    /// Streams `input` through `ctx` in chunks from `sizes` with an output buffer of `cap`.
    fn stream(
        ctx: *mut kp_envelope,
        input: &[u8],
        sizes: &mut impl FnMut() -> usize,
        cap: usize,
    ) -> (kp_status, Vec<u8>) {
        let mut out = Vec::new();
        let mut buf = vec![0u8; cap];
        let (mut off, mut took, mut written, mut pending) = (0, 0, 0, 0);
        while off < input.len() {
            let len = sizes().min(input.len() - off);
            // SAFETY: live context, buffers of their lengths, writable out-pointers.
            let status = unsafe {
                kp_envelope_update(
                    ctx,
                    input[off..].as_ptr(),
                    len,
                    &mut took,
                    buf.as_mut_ptr(),
                    cap,
                    &mut written,
                    &mut pending,
                )
            };
            if status != kp_status::Ok && status != kp_status::BufferTooSmall {
                assert_eq!((written, pending), (0, 0));
                return (status, out);
            }
            out.extend_from_slice(&buf[..written]);
            off += took;
        }
        loop {
            // SAFETY: as above.
            let status = unsafe {
                kp_envelope_finish(ctx, buf.as_mut_ptr(), cap, &mut written, &mut pending)
            };
            if status != kp_status::Ok && status != kp_status::BufferTooSmall {
                assert_eq!((written, pending), (0, 0));
                return (status, out);
            }
            out.extend_from_slice(&buf[..written]);
            if status == kp_status::Ok {
                return (status, out);
            }
        }
    }

    /// An attacker's message (every byte flipped, in turn, under varying chunkings) streamed
    /// to a C caller: never a panic or success, and what came out is whole authenticated frames
    /// of the real plaintext, nothing else.
    #[test]
    fn envelope_c_stream_releases_only_authenticated_frames_of_mutated_messages() {
        let ring = aes_keyring();
        let rings = [ring.cast_const()];
        let plaintext: Vec<u8> = (0..100u32).map(|i| (i * 7) as u8).collect();
        let mut message = vec![0u8; 4096];
        let mut len = 0;
        for suite in [0x0478u16, 0x0578] {
            // SAFETY: a live keyring array, buffers of their lengths, a writable length.
            let status = unsafe {
                kp_envelope_encrypt(
                    std::ptr::null(),
                    rings.as_ptr(),
                    1,
                    std::ptr::null(),
                    16,
                    suite,
                    plaintext.as_ptr(),
                    plaintext.len(),
                    message.as_mut_ptr(),
                    message.len(),
                    &mut len,
                )
            };
            assert_eq!(status, kp_status::Ok);
            // The first frame: sequence number 1 and its IV (eleven zero bytes and 1).
            let first: [u8; 16] = [0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
            let body = (0..len - 16)
                .find(|&i| message[i..i + 16] == first)
                .expect("the first frame");
            let mut seed = 0x2545_f491_u64;
            let mut sizes = move || {
                seed = seed
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                1 + (seed >> 59) as usize
            };
            for at in (0..len).step_by(if suite == 0x0478 { 1 } else { 5 }) {
                let mut bad = message[..len].to_vec();
                bad[at] ^= 0x20;
                let mut ctx = std::ptr::null_mut();
                // SAFETY: as above.
                let status = unsafe {
                    kp_envelope_decrypt_new(
                        std::ptr::null(),
                        rings.as_ptr(),
                        1,
                        std::ptr::null(),
                        &mut ctx,
                    )
                };
                assert_eq!(status, kp_status::Ok);
                let (status, out) = stream(ctx, &bad, &mut sizes, 1 + at % 7);
                // SAFETY: made above, freed once.
                unsafe { kp_envelope_free(ctx) };
                assert!(
                    matches!(
                        status,
                        kp_status::InvalidCiphertext
                            | kp_status::IncorrectKey
                            | kp_status::InvalidSignature
                    ),
                    "byte {at} of a 0x{suite:04x} message: {status:?}"
                );
                // Frames wholly before the changed byte may have come out (the caller's buffer
                // may have taken part of the last of them), nothing of later ones.
                let whole_frames_before = at.saturating_sub(body) / (4 + 12 + 16 + 16);
                assert!(
                    at >= body || out.is_empty(),
                    "byte {at}: plaintext under a changed header"
                );
                assert!(
                    out.len() <= 16 * whole_frames_before,
                    "byte {at}: plaintext of a frame that did not authenticate"
                );
                assert_eq!(
                    out[..],
                    plaintext[..out.len()],
                    "byte {at}: wrong plaintext came out"
                );
                if suite == 0x0578 {
                    assert!(
                        out.is_empty(),
                        "byte {at}: plaintext of a signed message that failed"
                    );
                }
            }
            // The intact message, in the same chunkings, comes out whole.
            let mut ctx = std::ptr::null_mut();
            // SAFETY: as above.
            unsafe {
                kp_envelope_decrypt_new(
                    std::ptr::null(),
                    rings.as_ptr(),
                    1,
                    std::ptr::null(),
                    &mut ctx,
                )
            };
            let (status, out) = stream(ctx, &message[..len], &mut sizes, 3);
            // SAFETY: made above, freed once.
            unsafe { kp_envelope_free(ctx) };
            assert_eq!(status, kp_status::Ok);
            assert_eq!(out, plaintext);
        }
        // SAFETY: made above, freed once.
        unsafe { kp_keyring_free(ring) };
    }
}
