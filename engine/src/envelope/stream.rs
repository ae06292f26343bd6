//! Streaming encryption ([`Encryptor`], an `impl Write`) and decryption ([`Decryptor`], an
//! `impl Read`; [`PushDecryptor`], fed bytes as they come), and the one-shot calls built on them
//! (`encrypt_message(_into)` on the encryptor, `decrypt_message(_into)` on one push-decryptor pass
//! over the whole slice, which opens every frame where it lies into the caller's buffer).
//!
//! All work in batches of up to `window_frames` frames: a batch is sealed or opened in parallel
//! on the calling thread and the configured rayon pool (see [`super::parallel`]) and written or
//! released in order; nothing more than one batch (plus one caller write) is held, so memory is
//! bounded and a slow sink slows the source (back-pressure). The one-shot calls, whose input and
//! output are whole in memory anyway, take up to [`MAX_BATCH_BYTES`] of frames per batch.
//!
//! Release rule: the decryptor releases a frame's plaintext only after the whole batch it belongs
//! to authenticated (a failed batch is zeroed and never released). For the unsigned suites,
//! authenticated frames of a message that later proves truncated or tampered may already have
//! been read: the final read then fails, and the caller must discard what it read. For the
//! signed suites the default ([`SignedRelease::AfterSignature`]) holds all plaintext until the
//! signature verified (up to `max_buffered_plaintext`); [`SignedRelease::PerFrame`] releases
//! authenticated frames as the unsigned suites do, and reports a bad signature at the end.

use std::io::{Read, Write};
use std::sync::Arc;

use zeroize::{Zeroize, Zeroizing};

use super::cache::{DataKeyCache, Materials};
use super::errors;
use super::frame::{self, RawFrame};
use super::header::{
    read_exact, read_header, EncryptedDataKey, Header, HeaderLimits, PUBLIC_KEY_CONTEXT_KEY,
    RESERVED_CONTEXT_PREFIX,
};
use super::keyring::Keyring;
use super::signature::{self, Signer, Verifier};
use super::suite::{self, AlgorithmSuite, CommitmentPolicy, IV_LEN, TAG_LEN};
use crate::context::EncryptionContext;
use crate::crypto::aes_gcm::AesGcmKey;
use crate::error::{Error, Result};
use crate::locked_memory::{LockPolicy, LockedBytes};

/// When a signed message's plaintext is released by the [`Decryptor`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SignedRelease {
    /// Hold all plaintext until the signature verified (bounded by `max_buffered_plaintext`).
    #[default]
    AfterSignature,
    /// Release each authenticated batch of frames at once; a bad signature fails the last read.
    PerFrame,
}

/// Settings of envelope encryption and decryption.
#[derive(Debug, Clone)]
pub struct EnvelopeConfig {
    /// Suite to encrypt with (decryption takes the message's). Default: 0x0578, the SDK's.
    pub suite: AlgorithmSuite,
    /// Frame length in bytes (1 to 2^31 - 1). Default 4096, the SDK's.
    pub frame_length: u32,
    /// Commitment policy. Default: REQUIRE_ENCRYPT_REQUIRE_DECRYPT.
    pub commitment_policy: CommitmentPolicy,
    /// Most encrypted data keys a message may have, written or read; `None`: no limit beyond
    /// the format's 65535.
    pub max_encrypted_data_keys: Option<u16>,
    /// Frames sealed or opened in one parallel batch. Default 256.
    pub window_frames: usize,
    /// Release rule for the signed suites.
    pub signed_release: SignedRelease,
    /// Most plaintext the decryptor holds: a signed message under
    /// [`SignedRelease::AfterSignature`], or a non-framed body. Default 256 MiB.
    pub max_buffered_plaintext: u64,
    /// Pool the frames run on (`Engine::worker_pool` for the engine's); `None`: rayon's global
    /// pool. A pool of `n` threads runs a batch on `n` threads, the calling thread one of them:
    /// a one-thread pool runs every frame on the calling thread.
    pub pool: Option<Arc<rayon::ThreadPool>>,
    /// Data-key cache; `None`: every message gets a new data key from its keyrings.
    pub cache: Option<Arc<DataKeyCache>>,
}

impl Default for EnvelopeConfig {
    fn default() -> Self {
        EnvelopeConfig {
            suite: AlgorithmSuite::Aes256GcmHkdfSha512CommitKeyEcdsaP384,
            frame_length: 4096,
            commitment_policy: CommitmentPolicy::default(),
            max_encrypted_data_keys: None,
            window_frames: 256,
            signed_release: SignedRelease::default(),
            max_buffered_plaintext: 256 << 20,
            pool: None,
            cache: None,
        }
    }
}

impl EnvelopeConfig {
    fn pool(&self) -> Option<&rayon::ThreadPool> {
        self.pool.as_deref()
    }

    fn window(&self) -> usize {
        self.window_frames.max(1)
    }

    /// Bytes of frames in one batch: `window_frames` frames, but at most [`MAX_BATCH_BYTES`]
    /// (at least one frame).
    fn window_bytes(&self, frame_length: usize) -> usize {
        let frames = (MAX_BATCH_BYTES / frame_length.max(1)).clamp(1, self.window());
        frames * frame_length
    }

    /// Frames in one batch of the one-shot calls: as many as [`MAX_BATCH_BYTES`] holds (at
    /// least `window_frames`), since their whole input and output are in memory anyway; fewer,
    /// larger batches make fewer hand-offs between threads.
    fn direct_window(&self, frame_length: usize) -> usize {
        (MAX_BATCH_BYTES / frame_length.max(1)).max(self.window())
    }
}

/// Longest DER ECDSA P-384 signature in a signed message's footer.
const MAX_SIGNATURE_LEN: usize = 104;

/// Most bytes of frames sealed or opened in one batch, whatever the window and frame length.
pub const MAX_BATCH_BYTES: usize = 64 << 20;

/// The keyrings of a message: the first generates the data key, each wraps it.
pub type Keyrings = [Arc<dyn Keyring>];

fn check_context(context: &EncryptionContext) -> Result<()> {
    if context
        .keys()
        .any(|k| k.starts_with(RESERVED_CONTEXT_PREFIX))
    {
        return Err(errors::reserved_context_key());
    }
    Ok(())
}

/// Streams a message out: header at construction, frames as plaintext is written, the final
/// frame and footer at [`Encryptor::finish`]. Dropping it unfinished leaves a message every
/// reader rejects as truncated.
pub struct Encryptor<W: Write> {
    out: Option<W>,
    header: Header,
    key: AesGcmKey,
    config: EnvelopeConfig,
    frame_length: usize,
    pending: Zeroizing<Vec<u8>>,
    sealed: Vec<u8>,
    /// Direct mode (the one-shot calls): `sealed` is the message itself, frames are sealed
    /// straight into it, and this is how much of it the signer has seen. `None`: frames go
    /// through `sealed` to the sink.
    direct_from: Option<usize>,
    next_sequence: u32,
    signer: Option<Signer>,
    poisoned: bool,
    /// Plaintext bytes still allowed when a length was given.
    remaining: Option<u64>,
}

impl<W: Write> Encryptor<W> {
    /// Makes the data key with `keyrings`, writes the header to `out`, and returns the writer
    /// for the plaintext. A message of unknown length does not use the data-key cache.
    pub fn new(
        out: W,
        keyrings: &Keyrings,
        config: &EnvelopeConfig,
        context: &EncryptionContext,
    ) -> Result<Encryptor<W>> {
        Self::with_length(out, keyrings, config, context, None)
    }

    /// As [`Encryptor::new`], for a message of exactly `length` bytes when given (then the
    /// data-key cache may serve it, and writing more is refused).
    pub fn with_length(
        mut out: W,
        keyrings: &Keyrings,
        config: &EnvelopeConfig,
        context: &EncryptionContext,
        length: Option<u64>,
    ) -> Result<Encryptor<W>> {
        let suite = config.suite;
        if !config.commitment_policy.allows_encrypt(suite) {
            return Err(suite::policy_forbids_encrypt(suite));
        }
        if config.frame_length == 0 || config.frame_length > super::header::MAX_FRAME_LENGTH {
            return Err(errors::bad_frame_length(config.frame_length));
        }
        if keyrings.is_empty() {
            return Err(Error::Validation(
                "envelope encryption needs a keyring".into(),
            ));
        }
        check_context(context)?;
        let make = || -> Result<Materials> {
            let mut context = context.clone();
            let mut signing = None;
            if suite.is_signed() {
                let (key, public) = signature::generate_key()?;
                context.insert(PUBLIC_KEY_CONTEXT_KEY.into(), public.clone());
                signing = Some((key, public));
            }
            let mut data_key: Option<LockedBytes> = None;
            let mut edks: Vec<EncryptedDataKey> = Vec::new();
            for keyring in keyrings {
                keyring.on_encrypt(suite, &context, &mut data_key, &mut edks)?;
            }
            let Some(data_key) = data_key else {
                return Err(Error::Internal("no keyring made a data key".into()));
            };
            if let Some(max) = config.max_encrypted_data_keys {
                if edks.len() > max as usize {
                    return Err(errors::too_many_edks(edks.len(), max as usize));
                }
            }
            Ok(Materials {
                data_key,
                edks,
                signing,
            })
        };
        let materials = match &config.cache {
            Some(cache) => cache.encryption_materials(keyrings, suite, context, length, make)?,
            None => Arc::new(make()?),
        };
        let mut context = context.clone();
        let mut signer = None;
        if let Some((key, public)) = &materials.signing {
            context.insert(PUBLIC_KEY_CONTEXT_KEY.into(), public.clone());
            signer = Some(Signer::new(key.clone()));
        }
        let edks = materials.edks.clone();
        let data_key = &materials.data_key;
        let mut message_id = vec![0u8; suite.message_id_len()];
        crate::crypto::random::fill(&mut message_id)?;
        let (key, commitment) = suite.derive(data_key, &message_id, LockPolicy::default())?;
        drop(materials);
        let header = Header {
            suite,
            message_id,
            encryption_context: context,
            encrypted_data_keys: edks,
            framed: true,
            frame_length: config.frame_length,
            commitment,
        };
        let mut bytes = header.serialize()?;
        let mut tag = [0u8; TAG_LEN];
        key.seal(&frame::frame_iv(0), &bytes, &[], &mut [], &mut tag)?;
        if suite.message_version() == 1 {
            bytes.extend_from_slice(&frame::frame_iv(0));
        }
        bytes.extend_from_slice(&tag);
        if let Some(s) = signer.as_mut() {
            s.update(&bytes);
        }
        out.write_all(&bytes).map_err(errors::io)?;
        let frame_length = config.frame_length as usize;
        Ok(Encryptor {
            out: Some(out),
            header,
            key,
            config: config.clone(),
            frame_length,
            // Allocated on the first write, as large as it needs: zeroing it when dropped (byte by
            // byte) costs as much as its capacity, and the one-shot calls never fill it.
            pending: Zeroizing::new(Vec::new()),
            sealed: Vec::new(),
            direct_from: None,
            next_sequence: 1,
            signer,
            poisoned: false,
            remaining: length,
        })
    }

    /// The message's header (its encryption context includes a signed suite's public key).
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The sink (holding what was written so far: the header, then sealed frames).
    pub fn get_ref(&self) -> Option<&W> {
        self.out.as_ref()
    }

    fn window_bytes(&self) -> usize {
        self.config.window_bytes(self.frame_length)
    }

    fn emit_sealed(&mut self) -> Result<()> {
        if let Some(from) = self.direct_from {
            if let Some(s) = self.signer.as_mut() {
                s.update(&self.sealed[from..]);
            }
            self.direct_from = Some(self.sealed.len());
            return Ok(());
        }
        if let Some(s) = self.signer.as_mut() {
            s.update(&self.sealed);
        }
        let Some(out) = self.out.as_mut() else {
            return Err(Error::Internal("encryptor used after finish".into()));
        };
        out.write_all(&self.sealed).map_err(errors::io)?;
        self.sealed.clear();
        Ok(())
    }

    /// Seals `plaintext` (whole frames, known not to be the last) and writes them.
    fn seal_regular(&mut self, plaintext: &[u8]) -> Result<()> {
        let frames = plaintext.len() / self.frame_length;
        let (key, id, fl, seq) = (
            &self.key,
            &self.header.message_id,
            self.frame_length,
            self.next_sequence,
        );
        frame::seal_regular_frames(
            self.config.pool(),
            key,
            id,
            fl,
            seq,
            plaintext,
            &mut self.sealed,
        )?;
        self.next_sequence = u32::try_from(seq as u64 + frames as u64)
            .map_err(|_| Error::LimitExceeded("a message has at most 4294967295 frames".into()))?;
        self.emit_sealed()
    }

    fn write_plaintext(&mut self, mut buf: &[u8]) -> Result<()> {
        if let Some(remaining) = self.remaining.as_mut() {
            *remaining = remaining.checked_sub(buf.len() as u64).ok_or_else(|| {
                Error::Validation("more plaintext was written than the message length given".into())
            })?;
        }
        let wb = self.window_bytes();
        if !self.pending.is_empty() || buf.len() <= wb {
            let take = (wb - self.pending.len()).min(buf.len());
            extend_zeroizing(&mut self.pending, &buf[..take]);
            buf = &buf[take..];
            if buf.is_empty() {
                return Ok(());
            }
            // The pending window is full and more follows: none of it is the final frame.
            // The buffer is reused for the next window (and zeroed, whole capacity, on drop).
            let mut pending = std::mem::take(&mut *self.pending);
            let sealed = self.seal_regular(&pending);
            pending.clear();
            *self.pending = pending;
            sealed?;
        }
        while buf.len() > wb {
            self.seal_regular(&buf[..wb])?;
            buf = &buf[wb..];
        }
        extend_zeroizing(&mut self.pending, buf);
        Ok(())
    }

    /// Seals what remains as the final frame, writes the footer (signed suites), flushes, and
    /// returns the sink.
    pub fn finish(mut self) -> Result<W> {
        self.seal_rest()?;
        let Some(mut out) = self.out.take() else {
            return Err(Error::Internal("encryptor used after finish".into()));
        };
        if let Some(footer) = self.footer()? {
            out.write_all(&footer).map_err(errors::io)?;
        }
        out.flush().map_err(errors::io)?;
        Ok(out)
    }

    /// Seals the pending plaintext: its whole frames, then the final frame.
    fn seal_rest(&mut self) -> Result<()> {
        if self.poisoned {
            return Err(Error::Validation(
                "the encryptor failed earlier; the message is incomplete".into(),
            ));
        }
        if self.remaining.is_some_and(|r| r > 0) {
            return Err(Error::Validation(
                "less plaintext was written than the message length given".into(),
            ));
        }
        let pending = std::mem::take(&mut *self.pending);
        let pending = Zeroizing::new(pending);
        // As the SDKs write it: every whole frame is a regular frame and the final frame holds
        // the rest, 0 to frame length - 1 bytes (the Python SDK rejects a full final frame).
        let regular = pending.len() / self.frame_length * self.frame_length;
        if regular > 0 {
            self.seal_regular(&pending[..regular])?;
        }
        frame::seal_final_frame(
            &self.key,
            &self.header.message_id,
            self.next_sequence,
            &pending[regular..],
            &mut self.sealed,
        )?;
        self.emit_sealed()
    }

    /// A signed suite's footer (signature length, signature); `None` for unsigned suites.
    fn footer(&mut self) -> Result<Option<Vec<u8>>> {
        let Some(signer) = self.signer.take() else {
            return Ok(None);
        };
        let signature = signer.finish()?;
        let mut footer = Vec::with_capacity(2 + signature.len());
        footer.extend_from_slice(&(signature.len() as u16).to_be_bytes());
        footer.extend_from_slice(&signature);
        Ok(Some(footer))
    }
}

impl Encryptor<Vec<u8>> {
    /// Direct mode for the one-shot calls: the sink's buffer (holding the header) becomes the
    /// buffer frames are sealed into, so no frame is copied after sealing.
    fn into_direct(mut self, after_header: usize) -> Self {
        if let Some(out) = self.out.as_mut() {
            let mut message = std::mem::take(out);
            message.reserve(after_header);
            self.direct_from = Some(message.len());
            self.sealed = message;
        }
        self
    }

    /// Seals the whole plaintext of a direct-mode message: its whole frames straight from
    /// `plaintext` in batches of [`EnvelopeConfig::direct_window`] frames, the rest (under one
    /// frame) kept for [`Encryptor::finish_direct`] to seal as the final frame.
    fn seal_whole(&mut self, plaintext: &[u8]) -> Result<()> {
        if self.remaining != Some(plaintext.len() as u64) || !self.pending.is_empty() {
            return Err(Error::Internal(
                "a one-shot message is sealed from its whole plaintext".into(),
            ));
        }
        self.remaining = Some(0);
        let regular = plaintext.len() / self.frame_length * self.frame_length;
        let (whole, rest) = plaintext.split_at(regular);
        let batch = self.config.direct_window(self.frame_length) * self.frame_length;
        for frames in whole.chunks(batch) {
            self.seal_regular(frames)?;
        }
        extend_zeroizing(&mut self.pending, rest);
        Ok(())
    }

    /// Finishes a direct-mode message and returns it.
    fn finish_direct(mut self) -> Result<Vec<u8>> {
        self.seal_rest()?;
        let mut message = std::mem::take(&mut self.sealed);
        if let Some(footer) = self.footer()? {
            message.extend_from_slice(&footer);
        }
        Ok(message)
    }
}

impl<W: Write> Write for Encryptor<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.poisoned {
            return Err(errors::to_io(Error::Validation(
                "the encryptor failed earlier; the message is incomplete".into(),
            )));
        }
        match self.write_plaintext(buf) {
            Ok(()) => Ok(buf.len()),
            Err(e) => {
                self.poisoned = true;
                Err(errors::to_io(e))
            }
        }
    }

    /// Flushes the sink. Plaintext still pending (less than a window, or the final frame) is
    /// written only by [`Encryptor::finish`].
    fn flush(&mut self) -> std::io::Result<()> {
        match self.out.as_mut() {
            Some(out) => out.flush(),
            None => Ok(()),
        }
    }
}

impl<W: Write> std::fmt::Debug for Encryptor<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Encryptor {{ suite: {}, frame_length: {} }}",
            self.header.suite, self.frame_length
        )
    }
}

/// A message whose header authenticated: its key, the signature verifier of a signed suite,
/// and the frames still to come.
struct Opened {
    header: Header,
    key: AesGcmKey,
    verifier: Option<Verifier>,
    /// Plaintext is held until the signature verified (signed suites under
    /// [`SignedRelease::AfterSignature`]).
    hold: bool,
    parser: frame::FrameParser,
}

/// Checks a parsed header against the configuration, unwraps its data key with the first of
/// `keyrings` that can, derives the message key and checks the key commitment. The header's
/// authentication is [`Opened::authenticate`]'s.
fn begin_message(
    header: Header,
    raw: &[u8],
    keyrings: &Keyrings,
    config: &EnvelopeConfig,
) -> Result<Opened> {
    let suite = header.suite;
    if !config.commitment_policy.allows_decrypt(suite) {
        return Err(suite::policy_forbids_decrypt(suite));
    }
    let mut verifier = None;
    if suite.is_signed() {
        let Some(public) = header.encryption_context.get(PUBLIC_KEY_CONTEXT_KEY) else {
            return Err(errors::malformed(
                "a signed message's encryption context has no aws-crypto-public-key",
            ));
        };
        let mut v = Verifier::new(public)?;
        v.update(raw);
        verifier = Some(v);
    }
    let unwrap = || -> Result<LockedBytes> {
        for keyring in keyrings {
            if let Some(k) = keyring.on_decrypt(
                suite,
                &header.encryption_context,
                &header.encrypted_data_keys,
            )? {
                return Ok(k);
            }
        }
        Err(errors::no_data_key(header.encrypted_data_keys.len()))
    };
    let data_key = match &config.cache {
        Some(cache) => cache.decryption_key(
            keyrings,
            suite,
            &header.encryption_context,
            &header.encrypted_data_keys,
            unwrap,
        )?,
        None => Arc::new(unwrap()?),
    };
    let (key, commitment) = suite.derive(&data_key, &header.message_id, LockPolicy::default())?;
    drop(data_key);
    if let (Some(expected), Some(found)) = (commitment, header.commitment) {
        if !crate::crypto::hmac::constant_time_eq(&expected, &found) {
            return Err(errors::commitment_mismatch());
        }
    }
    let hold = suite.is_signed() && config.signed_release == SignedRelease::AfterSignature;
    let parser = frame::FrameParser::new(header.frame_length, suite.message_version());
    Ok(Opened {
        header,
        key,
        verifier,
        hold,
        parser,
    })
}

impl Opened {
    /// Checks the header authentication `auth` (the bytes after the header `raw`).
    fn authenticate(&mut self, raw: &[u8], auth: &[u8], config: &EnvelopeConfig) -> Result<()> {
        if let Some(v) = self.verifier.as_mut() {
            v.update(auth);
        }
        let (iv, tag) = if self.header.suite.message_version() == 1 {
            let mut iv = [0u8; IV_LEN];
            iv.copy_from_slice(&auth[..IV_LEN]);
            (iv, &auth[IV_LEN..])
        } else {
            (frame::frame_iv(0), auth)
        };
        self.key
            .open(&iv, raw, &[], tag, &mut [])
            .map_err(|_| errors::header_auth_failed())?;
        if self.header.frame_length as u64 > config.max_buffered_plaintext {
            return Err(errors::over_limit(
                "the message's frame length (a frame is authenticated whole before release)",
                config.max_buffered_plaintext,
            ));
        }
        Ok(())
    }

    fn update_signature(&mut self, bytes: &[u8]) {
        if let Some(v) = self.verifier.as_mut() {
            v.update(bytes);
        }
    }
}

/// The non-framed body's length field (after its IV), checked.
fn non_framed_len(field: [u8; 8], config: &EnvelopeConfig) -> Result<usize> {
    let len = u64::from_be_bytes(field);
    const MAX_NON_FRAMED: u64 = (1 << 36) - 32;
    if len > MAX_NON_FRAMED {
        return Err(errors::malformed(
            "the non-framed body is longer than 2^36 - 32 bytes",
        ));
    }
    if len > config.max_buffered_plaintext {
        return Err(errors::over_limit(
            "a non-framed body (decrypted whole)",
            config.max_buffered_plaintext,
        ));
    }
    usize::try_from(len).map_err(|_| errors::over_limit("a non-framed body", usize::MAX as u64))
}

fn held_over_limit(config: &EnvelopeConfig) -> Error {
    errors::over_limit(
        "the plaintext of a signed message held until its signature verifies",
        config.max_buffered_plaintext,
    )
}

/// Makes `buffer` at least `len` bytes long. A buffer of secrets is never reallocated in
/// place: its bytes move to a new allocation and the old one is zeroed before it is freed.
fn grow_zeroizing(buffer: &mut Zeroizing<Vec<u8>>, len: usize) {
    if len <= buffer.len() {
        return;
    }
    reserve_zeroizing(buffer, len - buffer.len());
    buffer.resize(len, 0);
}

/// Makes room for `additional` more bytes in a buffer of secrets without a reallocation that
/// would leave a copy behind: the bytes move to a new allocation and the old one is zeroed.
fn reserve_zeroizing(buffer: &mut Zeroizing<Vec<u8>>, additional: usize) {
    let len = buffer.len().saturating_add(additional);
    if len > buffer.capacity() {
        let mut bigger = Vec::with_capacity(len.max(buffer.capacity().saturating_mul(2)));
        bigger.extend_from_slice(buffer);
        buffer.zeroize();
        **buffer = bigger;
    }
}

/// Appends `bytes` to a buffer of secrets (see [`reserve_zeroizing`]), without zero-filling the
/// room first.
fn extend_zeroizing(buffer: &mut Zeroizing<Vec<u8>>, bytes: &[u8]) {
    reserve_zeroizing(buffer, bytes.len());
    buffer.extend_from_slice(bytes);
}

/// A reader over a slice that notes whether a read wanted more than was there.
struct Prefix<'a> {
    data: &'a [u8],
    ran_out: bool,
}

impl Read for Prefix<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if !buf.is_empty() && self.data.is_empty() {
            self.ran_out = true;
        }
        self.data.read(buf)
    }
}

/// Most bytes of the header the push decryptor buffers per step while the header is incomplete
/// (its length is unknown until it is all there).
const HEADER_STEP: usize = 64 << 10;

/// Decrypts a message pushed to it in pieces of any size (the C streaming context drives it),
/// and the one-shot [`decrypt_message_into`]: whole frames are opened where they lie in the bytes
/// given, in batches in parallel on the configured pool, straight into the output; only the
/// incomplete tail of a piece (at most one frame, header or footer) is kept for the next.
///
/// Release rule as the [`Decryptor`]'s: a batch of frames is appended to the output only after
/// all of it authenticated; a signed message under [`SignedRelease::AfterSignature`] is held
/// (up to `max_buffered_plaintext`) until its signature verified; a non-framed body comes out
/// whole once it is all here and authenticated. After a failure every call fails with the same
/// error; what was released before it must be discarded by the caller.
pub struct PushDecryptor {
    keyrings: Vec<Arc<dyn Keyring>>,
    config: EnvelopeConfig,
    opened: Option<Opened>,
    /// Bytes given and not yet taken: an incomplete header, frame or footer.
    pending: Vec<u8>,
    /// The one-shot path: held plaintext goes straight to the caller's buffer (which the caller
    /// clears on any failure); only its amount is counted here.
    direct: bool,
    held: Zeroizing<Vec<u8>>,
    held_bytes: u64,
    frames: Vec<RawFrame>,
    body_done: bool,
    finished: bool,
    failed: Option<Error>,
}

impl PushDecryptor {
    /// A decryptor for one message, unwrapping its data key with `keyrings` (tried in order)
    /// once its header is here.
    pub fn new(keyrings: &Keyrings, config: &EnvelopeConfig) -> PushDecryptor {
        PushDecryptor {
            keyrings: keyrings.to_vec(),
            config: config.clone(),
            opened: None,
            pending: Vec::new(),
            direct: false,
            held: Zeroizing::new(Vec::new()),
            held_bytes: 0,
            frames: Vec::new(),
            body_done: false,
            finished: false,
            failed: None,
        }
    }

    /// The message's header, once it has been read and authenticated.
    pub fn header(&self) -> Option<&Header> {
        self.opened.as_ref().map(|o| &o.header)
    }

    /// Whether the whole message (footer included) has been read and verified.
    pub fn is_finished(&self) -> bool {
        self.finished
    }

    /// Takes all of `input` and appends to `out` the plaintext it completes (see the release
    /// rule). Bytes after the end of the message fail as trailing bytes.
    pub fn update(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<()> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        self.update_inner(input, out).map_err(|e| self.fail(e))
    }

    /// Ends the message: what was given must be all of it (else it is truncated); appends the
    /// rest of the plaintext to `out`.
    pub fn finish(&mut self, out: &mut Vec<u8>) -> Result<()> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        let pending = std::mem::take(&mut self.pending);
        let result = self.advance(&pending, true, out);
        self.pending = pending;
        result.map(drop).map_err(|e| self.fail(e))
    }

    fn fail(&mut self, e: Error) -> Error {
        self.held.zeroize();
        self.held.clear();
        self.pending.clear();
        self.failed = Some(e.clone());
        e
    }

    fn update_inner(&mut self, mut input: &[u8], out: &mut Vec<u8>) -> Result<()> {
        // An incomplete unit from before: complete it with just the bytes it needs (so a large
        // piece is not copied), then take the rest where it lies.
        while !self.pending.is_empty() && !input.is_empty() {
            let want = match self.need(&self.pending)? {
                Some(n) => n.saturating_sub(self.pending.len()).max(1),
                None => HEADER_STEP,
            };
            let take = want.min(input.len());
            self.pending.extend_from_slice(&input[..take]);
            input = &input[take..];
            let pending = std::mem::take(&mut self.pending);
            let used = self.advance(&pending, false, out);
            self.pending = pending;
            self.pending.drain(..used?);
        }
        if self.pending.is_empty() && !input.is_empty() {
            let used = self.advance(input, false, out)?;
            self.pending.extend_from_slice(&input[used..]);
        }
        Ok(())
    }

    /// Bytes (in all) the unit at the start of `bytes` needs; `None` while unknown (a header).
    fn need(&self, bytes: &[u8]) -> Result<Option<usize>> {
        let Some(opened) = &self.opened else {
            return Ok(None);
        };
        if self.body_done {
            return Ok(Some(match &opened.verifier {
                Some(_) if bytes.len() < 2 => 2,
                Some(_) => 2 + u16::from_be_bytes([bytes[0], bytes[1]]) as usize,
                None => 0,
            }));
        }
        if !opened.header.framed {
            let head = IV_LEN + 8;
            return Ok(Some(match bytes.get(IV_LEN..head) {
                Some(field) => {
                    let mut len = [0u8; 8];
                    len.copy_from_slice(field);
                    head.saturating_add(non_framed_len(len, &self.config)?)
                        .saturating_add(TAG_LEN)
                }
                None => head,
            }));
        }
        Ok(Some(match opened.parser.head(bytes)? {
            frame::HeadScan::Need(n) => n,
            frame::HeadScan::Head(h) => h.frame_size(),
        }))
    }

    /// Takes what it can of `input` (all of it, or else fails, when `end`): the header, whole
    /// frames in batches, the footer; returns the bytes taken.
    fn advance(&mut self, input: &[u8], end: bool, out: &mut Vec<u8>) -> Result<usize> {
        let mut pos = 0;
        if self.opened.is_none() {
            let limits = HeaderLimits {
                max_encrypted_data_keys: self.config.max_encrypted_data_keys,
            };
            let mut prefix = Prefix {
                data: input,
                ran_out: false,
            };
            let (header, raw) = match read_header(&mut prefix, limits) {
                Ok(parsed) => parsed,
                Err(_) if prefix.ran_out && !end => return Ok(0),
                Err(e) => return Err(e),
            };
            let auth_at = raw.len();
            let auth_end = auth_at + header.auth_len();
            if !end && input.len() < auth_end {
                return Ok(0);
            }
            let mut opened = begin_message(header, &raw, &self.keyrings, &self.config)?;
            let auth = input.get(auth_at..auth_end).ok_or_else(errors::truncated)?;
            opened.authenticate(&raw, auth, &self.config)?;
            self.opened = Some(opened);
            pos = auth_end;
        }
        let Some(opened) = self.opened.as_mut() else {
            return Err(Error::Internal("no header after reading it".into()));
        };
        let config = &self.config;
        let held_apart = opened.hold && !self.direct;
        if !self.body_done && !opened.header.framed {
            let rest = &input[pos..];
            let head = IV_LEN + 8;
            let Some(fields) = rest.get(..head) else {
                return if end {
                    Err(errors::truncated())
                } else {
                    Ok(pos)
                };
            };
            let mut iv = [0u8; IV_LEN];
            iv.copy_from_slice(&fields[..IV_LEN]);
            let mut len = [0u8; 8];
            len.copy_from_slice(&fields[IV_LEN..]);
            let len = non_framed_len(len, config)?;
            let Some(body) = rest.get(..head + len + TAG_LEN) else {
                return if end {
                    Err(errors::truncated())
                } else {
                    Ok(pos)
                };
            };
            opened.update_signature(body);
            let (ct, tag) = body[head..].split_at(len);
            let dest: &mut Vec<u8> = if held_apart {
                reserve_zeroizing(&mut self.held, len);
                &mut self.held
            } else {
                &mut *out
            };
            frame::open_single_block_into(
                &opened.key,
                &opened.header.message_id,
                &iv,
                ct,
                tag,
                dest,
            )?;
            pos += body.len();
            self.body_done = true;
        }
        let frame_length = opened.header.frame_length as usize;
        let (window, budget) = if self.direct {
            let frames = config.direct_window(frame_length);
            (frames, frames.saturating_mul(frame_length))
        } else {
            (config.window(), config.window_bytes(frame_length))
        };
        while !self.body_done {
            self.frames.clear();
            let start = pos;
            let mut content = 0;
            while self.frames.len() < window && (self.frames.is_empty() || content < budget) {
                match opened.parser.take(&input[pos..], pos)? {
                    Some((f, size)) => {
                        self.frames.push(f);
                        pos += size;
                        content += f.len;
                        if f.final_frame {
                            break;
                        }
                    }
                    None if end => return Err(errors::truncated()),
                    None => break,
                }
            }
            if self.frames.is_empty() {
                return Ok(pos);
            }
            let plain: u64 = self.frames.iter().map(|f| f.len as u64).sum();
            if opened.hold && self.held_bytes + plain > config.max_buffered_plaintext {
                return Err(held_over_limit(config));
            }
            opened.update_signature(&input[start..pos]);
            let dest: &mut Vec<u8> = if held_apart {
                reserve_zeroizing(&mut self.held, plain as usize);
                &mut self.held
            } else {
                &mut *out
            };
            let (key, id, frames) = (&opened.key, &opened.header.message_id, &self.frames);
            frame::open_frames_into(config.pool(), key, id, frames, input, dest)?;
            if opened.hold {
                self.held_bytes += plain;
            }
            self.body_done = opened.parser.done();
        }
        if !self.finished {
            if opened.verifier.is_some() {
                let rest = &input[pos..];
                let Some(len) = rest.get(..2) else {
                    return if end {
                        Err(errors::truncated())
                    } else {
                        Ok(pos)
                    };
                };
                let len = u16::from_be_bytes([len[0], len[1]]) as usize;
                let Some(signature) = rest.get(2..2 + len) else {
                    return if end {
                        Err(errors::truncated())
                    } else {
                        Ok(pos)
                    };
                };
                if let Some(verifier) = opened.verifier.take() {
                    verifier.verify(signature)?;
                }
                pos += 2 + len;
            }
            self.finished = true;
            if pos < input.len() {
                // Known now: refused before the held plaintext is released.
                return Err(errors::trailing_bytes());
            }
            if opened.hold && !self.direct {
                out.extend_from_slice(&self.held);
                self.held.zeroize();
                self.held.clear();
            }
        }
        if pos < input.len() {
            return Err(errors::trailing_bytes());
        }
        Ok(pos)
    }
}

impl std::fmt::Debug for PushDecryptor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.header() {
            Some(h) => write!(
                f,
                "PushDecryptor {{ suite: {}, frame_length: {} }}",
                h.suite, h.frame_length
            ),
            None => f.write_str("PushDecryptor { header not yet read }"),
        }
    }
}

/// Reads a message and yields its plaintext (see the module's release rule). Fields are read
/// with exact fixed-size reads; a batch's ciphertexts are read back to back into one reused
/// window and opened there in place, in parallel, so the plaintext is what the reads return.
pub struct Decryptor<R: Read> {
    src: R,
    opened: Opened,
    config: EnvelopeConfig,
    body_done: bool,
    finished: bool,
    failed: Option<Error>,
    /// Ciphertexts read, then plaintexts opened in place; `window[out_pos..win_len]` is the
    /// plaintext not yet read. Grown as bytes arrive, then reused (no zero-fill per batch).
    window: Zeroizing<Vec<u8>>,
    win_len: usize,
    out_pos: usize,
    held: Zeroizing<Vec<u8>>,
    frames: Vec<frame::WindowFrame>,
}

/// Most bytes read into the window at once: it grows only as ciphertext arrives, so a header
/// that claims huge frames costs memory only for bytes actually sent.
const READ_STEP: usize = 1 << 20;

impl<R: Read> Decryptor<R> {
    /// Reads and checks the header of the message in `src`, unwraps its data key with the first
    /// of `keyrings` that can, checks the key commitment and the header's authentication.
    ///
    /// Each frame is read with four exact reads (its sequence number, IV, ciphertext and tag),
    /// so give a source whose reads are system calls or calls into another runtime (a file, a
    /// socket, a Python file object) a buffer first: [`std::io::BufReader`].
    pub fn new(mut src: R, keyrings: &Keyrings, config: &EnvelopeConfig) -> Result<Decryptor<R>> {
        let limits = HeaderLimits {
            max_encrypted_data_keys: config.max_encrypted_data_keys,
        };
        let (header, raw) = read_header(&mut src, limits)?;
        let mut opened = begin_message(header, &raw, keyrings, config)?;
        let mut auth = [0u8; IV_LEN + TAG_LEN];
        let auth = &mut auth[..opened.header.auth_len()];
        read_exact(&mut src, auth)?;
        opened.authenticate(&raw, auth, config)?;
        Ok(Decryptor {
            src,
            opened,
            config: config.clone(),
            body_done: false,
            finished: false,
            failed: None,
            window: Zeroizing::new(Vec::new()),
            win_len: 0,
            out_pos: 0,
            held: Zeroizing::new(Vec::new()),
            frames: Vec::new(),
        })
    }

    /// The message's header, checked and authenticated.
    pub fn header(&self) -> &Header {
        &self.opened.header
    }

    /// Reads exactly `buf.len()` bytes of the message, into the signature too.
    fn read_field(&mut self, buf: &mut [u8]) -> Result<()> {
        read_exact(&mut self.src, buf)?;
        self.opened.update_signature(buf);
        Ok(())
    }

    /// Reads `n` bytes of ciphertext onto the end of the window.
    fn read_ciphertext(&mut self, n: usize) -> Result<()> {
        let mut left = n;
        while left > 0 {
            let step = left.min(READ_STEP);
            let end = self.win_len + step;
            grow_zeroizing(&mut self.window, end);
            read_exact(&mut self.src, &mut self.window[self.win_len..end])?;
            self.opened
                .update_signature(&self.window[self.win_len..end]);
            self.win_len = end;
            left -= step;
        }
        Ok(())
    }

    /// Reads up to a window of frames and opens them in place.
    fn fill(&mut self) -> Result<()> {
        self.frames.clear();
        self.win_len = 0;
        self.out_pos = 0;
        if !self.opened.header.framed {
            self.read_non_framed()?;
        } else {
            let budget = self
                .config
                .window_bytes(self.opened.header.frame_length as usize);
            while self.frames.len() < self.config.window()
                && !self.body_done
                && (self.frames.is_empty() || self.win_len < budget)
            {
                let mut fields = [0u8; 4 + 4 + IV_LEN + 4];
                let mut have = 0;
                let head = loop {
                    match self.opened.parser.head(&fields[..have])? {
                        frame::HeadScan::Need(n) => {
                            let (_, to) = fields.split_at_mut(have);
                            self.read_field(&mut to[..n - have])?;
                            have = n;
                        }
                        frame::HeadScan::Head(head) => break head,
                    }
                };
                self.opened.parser.accept(&head)?;
                self.read_ciphertext(head.len)?;
                let mut tag = [0u8; TAG_LEN];
                self.read_field(&mut tag)?;
                self.frames.push(frame::WindowFrame {
                    sequence: head.sequence,
                    final_frame: head.final_frame,
                    iv: head.iv,
                    len: head.len,
                    tag,
                });
                self.body_done = head.final_frame;
            }
            let (key, id, frames) = (
                &self.opened.key,
                &self.opened.header.message_id,
                &self.frames,
            );
            let window = &mut self.window[..self.win_len];
            let opened = frame::open_frames_in_place(self.config.pool(), key, id, frames, window);
            if opened.is_err() {
                self.win_len = 0;
            }
            opened?;
        }
        if self.opened.hold {
            if self.held.len() as u64 + self.win_len as u64 > self.config.max_buffered_plaintext {
                return Err(held_over_limit(&self.config));
            }
            extend_zeroizing(&mut self.held, &self.window[..self.win_len]);
            self.window[..self.win_len].zeroize();
            self.win_len = 0;
        }
        if self.body_done {
            self.read_footer()?;
            if self.opened.hold {
                std::mem::swap(&mut self.window, &mut self.held);
                self.win_len = self.window.len();
                self.out_pos = 0;
                self.held.zeroize();
                self.held.clear();
            }
            self.finished = true;
        }
        Ok(())
    }

    fn read_non_framed(&mut self) -> Result<()> {
        let mut fields = [0u8; IV_LEN + 8];
        self.read_field(&mut fields)?;
        let mut iv = [0u8; IV_LEN];
        iv.copy_from_slice(&fields[..IV_LEN]);
        let mut len = [0u8; 8];
        len.copy_from_slice(&fields[IV_LEN..]);
        let len = non_framed_len(len, &self.config)?;
        self.read_ciphertext(len)?;
        let mut tag = [0u8; TAG_LEN];
        self.read_field(&mut tag)?;
        let aad = frame::BodyAad::new(
            &self.opened.header.message_id,
            frame::SINGLE_BLOCK_STRING,
            1,
            len as u64,
        );
        let window = &mut self.window[..self.win_len];
        if self
            .opened
            .key
            .open_in_place(&iv, aad.as_bytes(), window, &tag)
            .is_err()
        {
            self.win_len = 0;
            return Err(errors::frame_auth_failed(1));
        }
        self.body_done = true;
        Ok(())
    }

    fn read_footer(&mut self) -> Result<()> {
        if let Some(verifier) = self.opened.verifier.take() {
            let mut len = [0u8; 2];
            read_exact(&mut self.src, &mut len)?;
            let mut signature = vec![0u8; u16::from_be_bytes(len) as usize];
            read_exact(&mut self.src, &mut signature)?;
            verifier.verify(&signature)?;
        }
        let mut probe = [0u8; 1];
        loop {
            match self.src.read(&mut probe) {
                Ok(0) => return Ok(()),
                Ok(_) => return Err(errors::trailing_bytes()),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(super::error_from_io(e)),
            }
        }
    }

    fn fail(&mut self, e: Error) -> Error {
        self.window.zeroize();
        self.window.clear();
        self.win_len = 0;
        self.out_pos = 0;
        self.held.zeroize();
        self.held.clear();
        self.failed = Some(e.clone());
        e
    }

    /// Reads the rest of the message into `out`; fails as a read would.
    pub fn read_all(&mut self, out: &mut Vec<u8>) -> Result<()> {
        loop {
            if let Some(e) = &self.failed {
                return Err(e.clone());
            }
            if self.out_pos < self.win_len {
                out.extend_from_slice(&self.window[self.out_pos..self.win_len]);
                self.out_pos = self.win_len;
            }
            if self.finished {
                return Ok(());
            }
            if let Err(e) = self.fill() {
                return Err(self.fail(e));
            }
        }
    }
}

impl<R: Read> Read for Decryptor<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        loop {
            if let Some(e) = &self.failed {
                return Err(errors::to_io(e.clone()));
            }
            if self.out_pos < self.win_len {
                let n = buf.len().min(self.win_len - self.out_pos);
                buf[..n].copy_from_slice(&self.window[self.out_pos..self.out_pos + n]);
                self.out_pos += n;
                return Ok(n);
            }
            if self.finished || buf.is_empty() {
                return Ok(0);
            }
            if let Err(e) = self.fill() {
                let e = self.fail(e);
                return Err(errors::to_io(e));
            }
        }
    }
}

impl<R: Read> std::fmt::Debug for Decryptor<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Decryptor {{ suite: {}, frame_length: {} }}",
            self.opened.header.suite, self.opened.header.frame_length
        )
    }
}

/// Encrypts `plaintext` into one message.
pub fn encrypt_message(
    keyrings: &Keyrings,
    config: &EnvelopeConfig,
    context: &EncryptionContext,
    plaintext: &[u8],
) -> Result<Vec<u8>> {
    let mut message = Vec::new();
    encrypt_message_into(keyrings, config, context, plaintext, &mut message)?;
    Ok(message)
}

/// As [`encrypt_message`], into `message` (cleared first): a caller that encrypts message after
/// message into one buffer reuses its memory instead of faulting in fresh pages each time.
/// Frames are sealed straight into it. On an error `message` is left empty.
pub fn encrypt_message_into(
    keyrings: &Keyrings,
    config: &EnvelopeConfig,
    context: &EncryptionContext,
    plaintext: &[u8],
    message: &mut Vec<u8>,
) -> Result<()> {
    // The body's exact size and the longest footer, reserved after the header (whatever its
    // size): the message is never reallocated, so no frame is copied after sealing.
    let frame_length = config.frame_length.max(1) as usize;
    let body = plaintext.len()
        + (plaintext.len() / frame_length) * frame::regular_frame_size(0)
        + (4 + 4 + IV_LEN + 4 + TAG_LEN);
    let capacity = body + 2 + MAX_SIGNATURE_LEN;
    let mut buffer = std::mem::take(message);
    buffer.clear();
    let encryptor = Encryptor::with_length(
        buffer,
        keyrings,
        config,
        context,
        Some(plaintext.len() as u64),
    )?;
    let mut encryptor = encryptor.into_direct(capacity);
    encryptor.seal_whole(plaintext)?;
    *message = encryptor.finish_direct()?;
    Ok(())
}

/// A decrypted message: its plaintext (zeroed when dropped) and header.
pub struct DecryptedMessage {
    /// The plaintext.
    pub plaintext: Zeroizing<Vec<u8>>,
    /// The header: suite, encryption context (check it is what you expect), data keys.
    pub header: Header,
}

impl std::fmt::Debug for DecryptedMessage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "DecryptedMessage {{ {} bytes, suite: {} }}",
            self.plaintext.len(),
            self.header.suite
        )
    }
}

/// Decrypts one whole message; no plaintext is returned unless all of it (and a signed
/// message's signature) verified.
pub fn decrypt_message(
    keyrings: &Keyrings,
    config: &EnvelopeConfig,
    message: &[u8],
) -> Result<DecryptedMessage> {
    let mut plaintext = Zeroizing::new(Vec::with_capacity(message.len()));
    let header = decrypt_message_into(keyrings, config, message, &mut plaintext)?;
    Ok(DecryptedMessage { plaintext, header })
}

/// As [`decrypt_message`], into `plaintext` (cleared first; the caller zeroizes it when done):
/// a caller that decrypts message after message into one buffer reuses its memory instead of
/// faulting in fresh pages each time. Returns the header. On an error `plaintext` is zeroed and
/// left empty: nothing is released unless all of the message (and a signed message's signature)
/// verified.
pub fn decrypt_message_into(
    keyrings: &Keyrings,
    config: &EnvelopeConfig,
    message: &[u8],
    plaintext: &mut Vec<u8>,
) -> Result<Header> {
    plaintext.clear();
    // The slice path: frames are opened where they lie in `message`, straight into
    // `plaintext` (which never holds more than the message's length).
    plaintext.reserve(message.len());
    let mut decryptor = PushDecryptor::new(keyrings, config);
    decryptor.direct = true;
    let result =
        decryptor
            .advance(message, true, plaintext)
            .and_then(|_| match decryptor.opened.take() {
                Some(opened) if decryptor.finished => Ok(opened.header),
                _ => Err(Error::Internal("the message did not end".into())),
            });
    if result.is_err() {
        plaintext.zeroize();
        plaintext.clear();
    }
    result
}
