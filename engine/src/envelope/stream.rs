//! Streaming encryption ([`Encryptor`], an `impl Write`) and decryption ([`Decryptor`], an
//! `impl Read`), and the one-shot calls built on them.
//!
//! Both work in batches of up to `window_frames` frames: a batch is sealed or opened in parallel
//! on the configured rayon pool and written or released in order; nothing more than one batch
//! (plus one caller write) is held, so memory is bounded and a slow sink slows the source
//! (back-pressure).
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
use super::frame::{self, RawFrame, FINAL_FRAME_MARKER};
use super::header::{
    read_exact, read_header, EncryptedDataKey, Header, HeaderLimits, PUBLIC_KEY_CONTEXT_KEY,
    RESERVED_CONTEXT_PREFIX,
};
use super::keyring::Keyring;
use super::signature::{self, Signer, Verifier};
use super::suite::{AlgorithmSuite, CommitmentPolicy, IV_LEN, TAG_LEN};
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
    /// pool.
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
    fn run<T: Send>(&self, f: impl FnOnce() -> T + Send) -> T {
        match &self.pool {
            Some(pool) => pool.install(f),
            None => f(),
        }
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
}

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
            return Err(errors::policy_forbids_encrypt(suite));
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
            pending: Zeroizing::new(Vec::with_capacity(
                config.window_bytes(frame_length).min(1 << 20),
            )),
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
        let sealed = &mut self.sealed;
        self.config
            .run(|| frame::seal_regular_frames(key, id, fl, seq, plaintext, sealed))?;
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
            self.pending.extend_from_slice(&buf[..take]);
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
        self.pending.extend_from_slice(buf);
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
    fn into_direct(mut self, capacity: usize) -> Self {
        if let Some(out) = self.out.as_mut() {
            let mut message = std::mem::take(out);
            message.reserve(capacity.saturating_sub(message.len()));
            self.direct_from = Some(message.len());
            self.sealed = message;
        }
        self
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

/// Reads a message and yields its plaintext (see the module's release rule).
pub struct Decryptor<R: Read> {
    src: R,
    header: Header,
    key: AesGcmKey,
    config: EnvelopeConfig,
    verifier: Option<Verifier>,
    hold: bool,
    next_sequence: u32,
    body_done: bool,
    finished: bool,
    failed: Option<Error>,
    out: Zeroizing<Vec<u8>>,
    out_pos: usize,
    held: Zeroizing<Vec<u8>>,
    batch: Vec<u8>,
    frames: Vec<RawFrame>,
}

impl<R: Read> Decryptor<R> {
    /// Reads and checks the header of the message in `src`, unwraps its data key with the first
    /// of `keyrings` that can, checks the key commitment and the header's authentication.
    pub fn new(mut src: R, keyrings: &Keyrings, config: &EnvelopeConfig) -> Result<Decryptor<R>> {
        let limits = HeaderLimits {
            max_encrypted_data_keys: config.max_encrypted_data_keys,
        };
        let (header, raw) = read_header(&mut src, limits)?;
        let suite = header.suite;
        if !config.commitment_policy.allows_decrypt(suite) {
            return Err(errors::policy_forbids_decrypt(suite));
        }
        let mut verifier = None;
        if suite.is_signed() {
            let Some(public) = header.encryption_context.get(PUBLIC_KEY_CONTEXT_KEY) else {
                return Err(errors::malformed(
                    "a signed message's encryption context has no aws-crypto-public-key",
                ));
            };
            let mut v = Verifier::new(public)?;
            v.update(&raw);
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
        let (key, commitment) =
            suite.derive(&data_key, &header.message_id, LockPolicy::default())?;
        drop(data_key);
        if let (Some(expected), Some(found)) = (commitment, header.commitment) {
            if !crate::crypto::hmac::constant_time_eq(&expected, &found) {
                return Err(errors::commitment_mismatch());
            }
        }
        let mut auth = vec![0u8; header.auth_len()];
        read_exact(&mut src, &mut auth)?;
        if let Some(v) = verifier.as_mut() {
            v.update(&auth);
        }
        let (iv, tag) = if suite.message_version() == 1 {
            let mut iv = [0u8; IV_LEN];
            iv.copy_from_slice(&auth[..IV_LEN]);
            (iv, &auth[IV_LEN..])
        } else {
            (frame::frame_iv(0), &auth[..])
        };
        key.open(&iv, &raw, &[], tag, &mut [])
            .map_err(|_| errors::header_auth_failed())?;
        if header.frame_length as u64 > config.max_buffered_plaintext {
            return Err(errors::over_limit(
                "the message's frame length (a frame is authenticated whole before release)",
                config.max_buffered_plaintext,
            ));
        }
        let hold = suite.is_signed() && config.signed_release == SignedRelease::AfterSignature;
        Ok(Decryptor {
            src,
            header,
            key,
            config: config.clone(),
            verifier,
            hold,
            next_sequence: 1,
            body_done: false,
            finished: false,
            failed: None,
            out: Zeroizing::new(Vec::new()),
            out_pos: 0,
            held: Zeroizing::new(Vec::new()),
            batch: Vec::new(),
            frames: Vec::new(),
        })
    }

    /// The message's header, checked and authenticated.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// Appends the next `n` bytes of the message to the batch. The buffer grows as bytes arrive,
    /// so a header that claims a huge frame costs memory only for bytes actually sent.
    fn read_bytes(&mut self, n: usize) -> Result<()> {
        let start = self.batch.len();
        let got = (&mut self.src)
            .take(n as u64)
            .read_to_end(&mut self.batch)
            .map_err(super::error_from_io)?;
        if got != n {
            return Err(errors::truncated());
        }
        if let Some(v) = self.verifier.as_mut() {
            v.update(&self.batch[start..]);
        }
        Ok(())
    }

    fn batch_u32(&self, at: usize) -> u32 {
        u32::from_be_bytes([
            self.batch[at],
            self.batch[at + 1],
            self.batch[at + 2],
            self.batch[at + 3],
        ])
    }

    /// Reads up to a window of frames and opens them into `self.out` (or `self.held`).
    fn fill(&mut self) -> Result<()> {
        self.batch.clear();
        self.frames.clear();
        let fl = self.header.frame_length as usize;
        let check_iv = self.header.suite.message_version() == 2;
        if !self.header.framed {
            self.read_non_framed()?;
        } else {
            let budget = self.config.window_bytes(fl);
            while self.frames.len() < self.config.window()
                && !self.body_done
                && (self.frames.is_empty() || self.batch.len() < budget)
            {
                let at = self.batch.len();
                self.read_bytes(4)?;
                let mut sequence = self.batch_u32(at);
                let final_frame = sequence == FINAL_FRAME_MARKER;
                if final_frame {
                    let at = self.batch.len();
                    self.read_bytes(4)?;
                    sequence = self.batch_u32(at);
                }
                if sequence != self.next_sequence {
                    return Err(errors::sequence(self.next_sequence, sequence));
                }
                let at = self.batch.len();
                self.read_bytes(IV_LEN)?;
                let mut iv = [0u8; IV_LEN];
                iv.copy_from_slice(&self.batch[at..at + IV_LEN]);
                if check_iv && iv != frame::frame_iv(sequence) {
                    return Err(errors::malformed(format!(
                        "frame {sequence} has an IV other than its sequence number"
                    )));
                }
                let len = if final_frame {
                    let at = self.batch.len();
                    self.read_bytes(4)?;
                    let len = self.batch_u32(at) as usize;
                    if len > fl {
                        return Err(errors::malformed(format!(
                            "the final frame's length {len} is over the frame length {fl}"
                        )));
                    }
                    len
                } else {
                    fl
                };
                let offset = self.batch.len();
                self.read_bytes(len + TAG_LEN)?;
                self.frames.push(RawFrame {
                    sequence,
                    final_frame,
                    iv,
                    offset,
                    len,
                    tag_offset: offset + len,
                });
                if final_frame {
                    self.body_done = true;
                } else {
                    self.next_sequence = sequence
                        .checked_add(1)
                        .ok_or_else(|| errors::malformed("more frames than the format allows"))?;
                }
            }
            let (key, id, frames, batch) = (
                &self.key,
                &self.header.message_id,
                &self.frames,
                &self.batch,
            );
            let mut plain = std::mem::take(&mut *self.out);
            let opened = self
                .config
                .run(|| frame::open_frames(key, id, frames, batch, &mut plain));
            *self.out = plain;
            self.out_pos = 0;
            opened?;
        }
        if self.hold {
            if self.held.len() as u64 + self.out.len() as u64 > self.config.max_buffered_plaintext {
                return Err(errors::over_limit(
                    "the plaintext of a signed message held until its signature verifies",
                    self.config.max_buffered_plaintext,
                ));
            }
            self.held.extend_from_slice(&self.out);
            self.out.zeroize();
            self.out.clear();
        }
        if self.body_done {
            self.read_footer()?;
            if self.hold {
                std::mem::swap(&mut self.out, &mut self.held);
                self.out_pos = 0;
            }
            self.finished = true;
        }
        Ok(())
    }

    fn read_non_framed(&mut self) -> Result<()> {
        self.read_bytes(IV_LEN + 8)?;
        let mut iv = [0u8; IV_LEN];
        iv.copy_from_slice(&self.batch[..IV_LEN]);
        let mut len_bytes = [0u8; 8];
        len_bytes.copy_from_slice(&self.batch[IV_LEN..IV_LEN + 8]);
        let len = u64::from_be_bytes(len_bytes);
        const MAX_NON_FRAMED: u64 = (1 << 36) - 32;
        if len > MAX_NON_FRAMED {
            return Err(errors::malformed(
                "the non-framed body is longer than 2^36 - 32 bytes",
            ));
        }
        if len > self.config.max_buffered_plaintext {
            return Err(errors::over_limit(
                "a non-framed body (decrypted whole)",
                self.config.max_buffered_plaintext,
            ));
        }
        let len = len as usize;
        let offset = self.batch.len();
        self.read_bytes(len + TAG_LEN)?;
        let aad = frame::body_aad(
            &self.header.message_id,
            frame::SINGLE_BLOCK_STRING,
            1,
            len as u64,
        );
        self.out.clear();
        self.out.resize(len, 0);
        self.out_pos = 0;
        let ct = &self.batch[offset..offset + len];
        let tag = &self.batch[offset + len..offset + len + TAG_LEN];
        if self.key.open(&iv, &aad, ct, tag, &mut self.out).is_err() {
            self.out.clear();
            return Err(errors::frame_auth_failed(1));
        }
        self.body_done = true;
        Ok(())
    }

    fn read_footer(&mut self) -> Result<()> {
        if let Some(verifier) = self.verifier.take() {
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
        self.out.zeroize();
        self.out.clear();
        self.held.zeroize();
        self.held.clear();
        self.failed = Some(e.clone());
        e
    }

    /// Reads the rest of the message into `out`; fails as a read would.
    pub fn read_all(&mut self, out: &mut Vec<u8>) -> Result<()> {
        // As `Read::read` releases it, batch by batch, appended without the zero-filled probe
        // buffers of `read_to_end`.
        loop {
            if let Some(e) = &self.failed {
                return Err(e.clone());
            }
            if self.out_pos < self.out.len() {
                out.extend_from_slice(&self.out[self.out_pos..]);
                self.out_pos = self.out.len();
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
            if self.out_pos < self.out.len() {
                let n = buf.len().min(self.out.len() - self.out_pos);
                buf[..n].copy_from_slice(&self.out[self.out_pos..self.out_pos + n]);
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
            self.header.suite, self.header.frame_length
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
    let frame_length = config.frame_length.max(1) as usize;
    let capacity = plaintext.len()
        + (plaintext.len() / frame_length + 1) * frame::regular_frame_size(0)
        + 4096;
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
    encryptor.write_plaintext(plaintext)?;
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
    let result = Decryptor::new(message, keyrings, config).and_then(|mut decryptor| {
        decryptor.read_all(plaintext)?;
        Ok(decryptor.header)
    });
    if result.is_err() {
        plaintext.zeroize();
        plaintext.clear();
    }
    result
}
