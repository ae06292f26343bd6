//! Per-chunk state shared by every data-plane operation: the key last resolved, the encryption
//! context last encoded, and the derived keys taken from their per-thread slots for the chunk's
//! duration (put back on drop). A single call is a chunk of one.

use std::sync::Arc;

use super::algorithm::check_symmetric_algorithm;
use super::keyring::{KeyEntry, Keyring, VersionEntry};
use super::plane::DataPlane;
use super::session::{DecryptKeys, EncryptSession};
use super::tally::{ChunkTally, KeyTally};
use super::thread_hmac::ThreadHmacWork;
use crate::access::request_facts::RequestFacts;
use crate::access::{Action, Caller};
use crate::ciphertext::{self, ParsedBlob, HEADER_LEN};
use crate::context::{self, EncryptionContext};
use crate::crypto::aes_gcm::TAG_LEN;
use crate::crypto::hmac::HmacWork;
use crate::crypto::random;
use crate::error::{Error, Result};
use crate::key::identifier::{key_id_form, KeyIdForm};
use crate::key::EncryptionAlgorithm;
use crate::locked_memory::LockedBytes;
use crate::messages;
use smallvec::SmallVec;
use zeroize::Zeroize;

/// Smallest scratch buffer a chunk allocates (a data key of the largest size fits).
const MIN_SCRATCH_BYTES: usize = 1024;
/// Random bytes a chunk draws from the generator at a time.
const RANDOM_POOL_BYTES: usize = 4096;
/// Identifier bytes a chunk keeps without an allocation: a key ARN (about 75), an alias name
/// of a few dozen characters. A single call is a chunk of one, so what the chunk would allocate
/// for its one item is most of what the call allocates besides its answer.
const INLINE_IDENTIFIER: usize = 96;
/// Associated data kept without an allocation: a header and an encoded context of 64 bytes.
const INLINE_AAD: usize = HEADER_LEN + 64;

pub(crate) struct ChunkContext<'k> {
    plane: &'k DataPlane,
    keyring: &'k Keyring,
    caller: &'k Caller,
    last_identifier: SmallVec<[u8; INLINE_IDENTIFIER]>,
    /// Where the identifier last resolved lay (address, length). Every identifier a chunk
    /// resolves is a request's, borrowed for the whole batch (as every context is, see
    /// `last_context`), so the same place means the same text: a run of items naming one string
    /// compares no bytes.
    last_identifier_at: (usize, usize),
    /// The identifier table's row the last identifier was resolved under.
    last_form: Option<KeyIdForm>,
    last_key: Option<Result<&'k Arc<KeyEntry>>>,
    /// The key of a one-key batch, found in the chunk's snapshot at its first item.
    batch_key: Option<&'k Arc<KeyEntry>>,
    /// The key the last parsed blob named, found in the chunk's snapshot: a run of blobs under
    /// one key hashes its id once.
    last_by_id: Option<&'k Arc<KeyEntry>>,
    /// Address of the context last encoded (`0` for none yet); every context a chunk sees is
    /// borrowed for the whole batch, so equal addresses mean the same map.
    last_context: usize,
    context_encoding: Vec<u8>,
    /// The associated data: a header, then `context_encoding`.
    aad: SmallVec<[u8; INLINE_AAD]>,
    /// The length of the header `aad` holds before the encoding of `last_context` (`None`: `aad`
    /// must be rebuilt). `write_header` overwrites every byte of a header.
    aad_header_len: Option<usize>,
    /// The derived-key sessions and caches taken for the chunk, one per key version it used
    /// (inline for the first two).
    encrypt_sessions: SmallVec<[(&'k VersionEntry, Box<EncryptSession>); 2]>,
    decrypt_keys: SmallVec<[(&'k VersionEntry, Box<DecryptKeys>); 2]>,
    /// Locked memory for plaintext that must not leave the engine (ReEncrypt, data keys without
    /// plaintext), allocated once per chunk.
    scratch: Option<LockedBytes>,
    /// Random bytes drawn ahead in one generator call, consumed (and zeroed) front to back.
    random_pool: Option<LockedBytes>,
    random_used: usize,
    random_requests: usize,
    /// A working HMAC context in locked memory: the thread's, taken on the chunk's first MAC
    /// and given back cleared when the chunk ends.
    hmac_work: Option<Box<ThreadHmacWork>>,
    /// The last (key, action) allowed with a decision that cannot depend on the request, so a
    /// run of items on one key is authorised once.
    last_allowed: Option<(*const KeyEntry, Action)>,
    /// The process's fork generation, read once per chunk: cached sessions of another one are
    /// dropped.
    generation: u64,
    /// The keys the chunk's items used, for the batch's audit record.
    pub(crate) tally: ChunkTally<'k>,
    /// The audit record id of the request the chunk serves (with an audit log), sent to XKS
    /// proxies as `kmsRequestId`.
    request_id: Option<std::sync::Arc<str>>,
}

impl<'k> ChunkContext<'k> {
    pub(crate) fn new(
        plane: &'k DataPlane,
        keyring: &'k Keyring,
        caller: &'k Caller,
        tally: &'k KeyTally,
        request_id: Option<std::sync::Arc<str>>,
    ) -> Self {
        ChunkContext {
            plane,
            keyring,
            caller,
            last_identifier: SmallVec::new(),
            last_identifier_at: (0, 0),
            last_form: None,
            last_key: None,
            batch_key: None,
            last_by_id: None,
            last_context: 0,
            context_encoding: Vec::new(),
            aad: SmallVec::new(),
            aad_header_len: None,
            encrypt_sessions: SmallVec::new(),
            decrypt_keys: SmallVec::new(),
            scratch: None,
            random_pool: None,
            random_used: 0,
            random_requests: 0,
            hmac_work: None,
            last_allowed: None,
            generation: crate::fork::generation(),
            tally: ChunkTally::new(tally),
            request_id,
        }
    }

    /// The chunk's working HMAC context: the thread's ([`super::thread_hmac`]).
    pub(crate) fn hmac_work(&mut self) -> Result<&mut HmacWork> {
        let work = match &mut self.hmac_work {
            Some(work) => work,
            slot => {
                slot.insert((self.plane.hmac_works).take(self.generation, self.plane.lock_policy)?)
            }
        };
        Ok(&mut work.work)
    }

    /// Takes the chunk's locked scratch buffer, at least `len` bytes long (give it back with
    /// [`Self::return_scratch`]). Sized to what items need, so a small item never pays for a
    /// large engine limit; up to 8 KiB it comes from the pooled slots.
    pub(crate) fn take_scratch(&mut self, len: usize) -> Result<LockedBytes> {
        match self.scratch.take() {
            Some(scratch) if scratch.len() >= len => Ok(scratch),
            _ => LockedBytes::zeroed(len.max(MIN_SCRATCH_BYTES), self.plane.lock_policy),
        }
    }

    /// Zeroes the first `used` bytes of the scratch buffer (all that was written) and keeps it
    /// for the next item.
    pub(crate) fn return_scratch(&mut self, mut scratch: LockedBytes, used: usize) {
        let used = used.min(scratch.len());
        scratch.bytes_mut()[..used].zeroize();
        self.scratch = Some(scratch);
    }

    /// Fills `out` with random bytes. The first request of a chunk goes straight to the
    /// generator; later ones are served from a pool drawn [`RANDOM_POOL_BYTES`] at a time, so a
    /// batch of data keys costs one generator call per pool, not one per key.
    pub(crate) fn fill_random(&mut self, out: &mut [u8]) -> Result<()> {
        self.random_requests += 1;
        if self.random_requests == 1 || out.len() > RANDOM_POOL_BYTES {
            return random::fill(out);
        }
        let pool = match &mut self.random_pool {
            Some(pool) if RANDOM_POOL_BYTES - self.random_used >= out.len() => pool,
            slot => {
                let pool = match slot.take() {
                    Some(mut pool) => {
                        random::fill(pool.bytes_mut())?;
                        pool
                    }
                    None => LockedBytes::random(RANDOM_POOL_BYTES, self.plane.lock_policy)?,
                };
                self.random_used = 0;
                slot.insert(pool)
            }
        };
        let drawn = &mut pool.bytes_mut()[self.random_used..self.random_used + out.len()];
        out.copy_from_slice(drawn);
        drawn.zeroize();
        self.random_used += out.len();
        Ok(())
    }

    /// Checks that the chunk's caller may perform `action` on `key`. The request's facts are
    /// built only when the policy is asked: not for a run of items on one key whose decision
    /// cannot depend on them.
    pub(crate) fn authorize<'f>(
        &mut self,
        key: &KeyEntry,
        action: Action,
        facts: impl FnOnce() -> RequestFacts<'f>,
    ) -> Result<()> {
        if self.last_allowed == Some((key as *const KeyEntry, action)) {
            return Ok(());
        }
        key.access
            .check(self.caller, action, &key.arn, key.spec, key.usage, &facts())?;
        if key.access.is_cacheable(action) {
            self.last_allowed = Some((key as *const KeyEntry, action));
        }
        Ok(())
    }

    /// The largest plaintext this engine encrypts or decrypts.
    pub(crate) fn max_plaintext(&self) -> usize {
        self.plane.max_plaintext
    }

    /// Resolves the KeyId of `operation` (under its row of the identifier table), reusing the
    /// previous answer for a repeated identifier under the same row. The key found counts as
    /// used by the running item.
    pub(crate) fn resolve(
        &mut self,
        identifier: &str,
        operation: Action,
    ) -> Result<&'k Arc<KeyEntry>> {
        let form = key_id_form(operation);
        let at = (identifier.as_ptr() as usize, identifier.len());
        let found = match &self.last_key {
            Some(previous)
                if self.last_form == Some(form)
                    && (at == self.last_identifier_at
                        || self.last_identifier[..] == *identifier.as_bytes()) =>
            {
                debug_assert_eq!(self.last_identifier[..], *identifier.as_bytes());
                self.last_identifier_at = at;
                previous.clone()
            }
            _ => {
                self.last_identifier_at = at;
                let found = self
                    .keyring
                    .resolve(&self.plane.scope, identifier, operation);
                self.last_identifier.clear();
                self.last_identifier
                    .extend_from_slice(identifier.as_bytes());
                self.last_form = Some(form);
                self.last_key = Some(found.clone());
                found
            }
        };
        let key = found?;
        self.plane.freshness.check(&key.arn)?;
        self.tally.used(&key.id);
        Ok(key)
    }

    /// The key of a one-key batch, by the id the batch resolved (and authorised) its identifier
    /// to on this chunk's snapshot: found once per chunk, never resolved again. The key counts as
    /// used by the running item.
    pub(crate) fn batch_key(&mut self, id: &uuid::Uuid) -> Result<&'k Arc<KeyEntry>> {
        let key = match self.batch_key {
            Some(key) if key.id == *id => key,
            _ => {
                let key = self.keyring.keys.get(id).ok_or_else(|| {
                    Error::Internal("a one-key batch's key is not in its snapshot".into())
                })?;
                *self.batch_key.insert(key)
            }
        };
        self.tally.used(&key.id);
        Ok(key)
    }

    /// Finds the key a parsed blob names; an unknown key is a property of the blob. The key
    /// found counts as used by the running item.
    fn key_by_id(&mut self, id: &uuid::Uuid) -> Result<&'k Arc<KeyEntry>> {
        let key = match self.last_by_id {
            Some(key) if key.id == *id => key,
            _ => {
                let key = self
                    .keyring
                    .keys
                    .get(id)
                    .ok_or_else(crate::messages::ciphertext_key_unknown)?;
                *self.last_by_id.insert(key)
            }
        };
        self.plane.freshness.check(&key.arn)?;
        self.tally.used(&key.id);
        Ok(key)
    }

    /// Sets `self.aad` to `header ‖ canonical(context)`.
    fn build_aad(&mut self, header: &[u8], context: Option<&EncryptionContext>) -> Result<()> {
        self.build_aad_with(
            header.len(),
            |h| match (
                <&mut [u8; HEADER_LEN]>::try_from(&mut *h),
                header.try_into(),
            ) {
                (Ok(to), Ok(from)) => copy_header(to, from),
                _ => h.copy_from_slice(header),
            },
            context,
        )
    }

    /// Sets `self.aad` to a header of `header_len` bytes that `write_header` writes in place,
    /// then `canonical(context)`; the header is not staged elsewhere and copied in (a copy read
    /// back as soon as it is written stalls on its stores).
    fn build_aad_with(
        &mut self,
        header_len: usize,
        write_header: impl FnOnce(&mut [u8]),
        context: Option<&EncryptionContext>,
    ) -> Result<()> {
        let address = context.map_or(1, |c| c as *const EncryptionContext as usize);
        if address != self.last_context {
            self.aad_header_len = None;
            self.context_encoding.clear();
            if let Err(e) = context::encode_into(context, &mut self.context_encoding) {
                self.last_context = 0;
                return Err(e);
            }
            self.last_context = address;
        }
        // A run of items under one context rewrites only the header: the encoding after it
        // stays in place.
        if self.aad_header_len != Some(header_len) {
            self.aad.clear();
            self.aad.resize(header_len, 0);
            self.aad.extend_from_slice(&self.context_encoding);
            self.aad_header_len = Some(header_len);
        }
        write_header(&mut self.aad[..header_len]);
        Ok(())
    }

    /// Encrypts `plaintext` under the key's current version into `out`, which must be exactly
    /// `blob_len(plaintext.len())` bytes. The caller has checked the key's state and usage.
    pub(crate) fn seal(
        &mut self,
        key: &'k KeyEntry,
        plaintext: &[u8],
        context: Option<&EncryptionContext>,
        out: &mut [u8],
    ) -> Result<()> {
        if out.len() != ciphertext::blob_len(plaintext.len()) {
            return Err(Error::Internal(
                "ciphertext buffer has the wrong size".into(),
            ));
        }
        let version = key.current()?;
        let index = self.encrypt_session_index(key, version)?;
        let nonce = match self.encrypt_sessions[index].1.next_nonce() {
            Some(nonce) => nonce,
            None => {
                // The derived key reached its limit: a new salt, a new derived key.
                *self.encrypt_sessions[index].1 = self.new_session(key, version)?;
                self.encrypt_sessions[index]
                    .1
                    .next_nonce()
                    .ok_or_else(|| Error::Internal("fresh session has no nonce".into()))?
            }
        };
        let salt = self.encrypt_sessions[index].1.salt;
        // The header is written into the associated data, and copied into `out` last: encoding
        // the context (which can fail) comes first, so that a failed seal leaves `out` as it was
        // (the AEAD zeroes what it wrote if it fails).
        self.build_aad_with(
            HEADER_LEN,
            |header| ciphertext::write_header(header, &key.id, version.version, &salt, &nonce),
            context,
        )?;
        let (head, rest) = out.split_at_mut(HEADER_LEN);
        let (body, tag) = rest.split_at_mut(plaintext.len());
        let tag: &mut [u8; TAG_LEN] = tag
            .try_into()
            .map_err(|_| Error::Internal("tag buffer has the wrong size".into()))?;
        self.encrypt_sessions[index]
            .1
            .key
            .seal(&nonce, &self.aad, plaintext, body, tag)?;
        head.copy_from_slice(&self.aad[..HEADER_LEN]);
        Ok(())
    }

    /// The most bytes sealing `plaintext_len` bytes under `key`'s current version writes.
    pub(crate) fn sealed_len_max(key: &KeyEntry, plaintext_len: usize) -> usize {
        let external = key
            .current()
            .ok()
            .and_then(|v| v.double_encrypted())
            .is_some();
        if external {
            ciphertext::max_blob_len(plaintext_len)
        } else {
            ciphertext::blob_len(plaintext_len)
        }
    }

    /// Seals `plaintext` under `key`'s current version into the start of `out` (at least
    /// [`Self::sealed_len_max`] bytes): [`Self::seal`]'s blob, or, for a key in an external key
    /// store, the double encryption of [`super::xks`]. Returns the bytes written.
    pub(crate) fn seal_any(
        &mut self,
        key: &'k KeyEntry,
        action: Action,
        plaintext: &[u8],
        context: Option<&EncryptionContext>,
        out: &mut [u8],
    ) -> Result<usize> {
        let version = key.current()?;
        let Some(external) = version.double_encrypted() else {
            let len = ciphertext::blob_len(plaintext.len());
            let blob = out
                .get_mut(..len)
                .ok_or_else(|| Error::Internal("ciphertext buffer is too short".into()))?;
            self.seal(key, plaintext, context, blob)?;
            return Ok(len);
        };
        let policy = self.plane.lock_policy;
        let mut salt = [0u8; ciphertext::SALT_LEN];
        let mut nonce = [0u8; crate::crypto::aes_gcm::NONCE_LEN];
        // One derived key per call: a random nonce is never reused under it.
        random::fill(&mut salt)?;
        random::fill(&mut nonce)?;
        let mut secret = LockedBytes::zeroed(super::xks::SECRET_LEN, policy)?;
        random::fill(secret.bytes_mut())?;
        let mut header = [0u8; HEADER_LEN];
        ciphertext::write_header(&mut header, &key.id, version.version, &salt, &nonce);
        header[1] = ciphertext::ALGORITHM_XKS_DOUBLE_ENCRYPTION;
        self.build_aad(&[], context)?;
        let proxy_aad = super::xks::proxy_aad(&key.arn, &header, &self.aad);
        let metadata =
            super::xks::request_metadata(self.caller, &key.arn, action, self.request_id.as_deref());
        let wrapped = external.live(&key.arn)?.external_encrypt(
            &external.backing_key,
            secret.bytes(),
            &proxy_aad,
            &metadata,
        )?;
        if wrapped.is_empty() || wrapped.len() > ciphertext::MAX_WRAPPED_LEN {
            return Err(Error::Internal(
                "the external key store returned a wrapping of an impossible size".into(),
            ));
        }
        let prefix = HEADER_LEN + 1 + wrapped.len();
        let len = ciphertext::double_encrypted_blob_len(plaintext.len(), wrapped.len());
        let wrapped_len =
            u8::try_from(wrapped.len()).map_err(|_| Error::Internal("wrapping too long".into()))?;
        // Derived before anything is written, so that a failure leaves `out` as it was.
        let data_key = super::xks::derive(
            &version.material,
            secret.bytes(),
            external,
            &key.id,
            version.version,
            &salt,
            policy,
        )?;
        drop(secret);
        let blob = out
            .get_mut(..len)
            .ok_or_else(|| Error::Internal("ciphertext buffer is too short".into()))?;
        let (head, rest) = blob.split_at_mut(prefix);
        head[..HEADER_LEN].copy_from_slice(&header);
        head[HEADER_LEN] = wrapped_len;
        head[HEADER_LEN + 1..].copy_from_slice(&wrapped);
        self.build_aad(head, context)?;
        let (body, tag) = rest.split_at_mut(plaintext.len());
        let tag: &mut [u8; TAG_LEN] = tag
            .try_into()
            .map_err(|_| Error::Internal("tag buffer has the wrong size".into()))?;
        data_key.seal(&nonce, &self.aad, plaintext, body, tag)?;
        Ok(len)
    }

    fn new_session(&self, key: &KeyEntry, version: &VersionEntry) -> Result<EncryptSession> {
        EncryptSession::for_version(
            |salt| version.derive(&key.id, salt, self.plane.lock_policy, None),
            self.plane.messages_per_derived_key,
            self.generation,
        )
    }

    /// The index of this chunk's encrypt session for `version` if its salt is `salt`, taking the
    /// thread's cached session for the version first if the chunk holds none (it goes back to
    /// the cache with the chunk's others).
    fn encrypt_session_with_salt(
        &mut self,
        version: &'k VersionEntry,
        salt: &[u8; crate::ciphertext::SALT_LEN],
    ) -> Option<usize> {
        let index = match self
            .encrypt_sessions
            .iter()
            .position(|(v, _)| std::ptr::eq(*v, version))
        {
            Some(i) => i,
            None => {
                let session = version.encrypt_sessions.take()?;
                if !session.is_of(self.generation) {
                    return None;
                }
                self.encrypt_sessions.push((version, session));
                self.encrypt_sessions.len() - 1
            }
        };
        (self.encrypt_sessions[index].1.salt == *salt).then_some(index)
    }

    fn encrypt_session_index(
        &mut self,
        key: &KeyEntry,
        version: &'k VersionEntry,
    ) -> Result<usize> {
        if let Some(i) = self
            .encrypt_sessions
            .iter()
            .position(|(v, _)| std::ptr::eq(*v, version))
        {
            return Ok(i);
        }
        let session = match version.encrypt_sessions.take() {
            // A session inherited across fork is dropped (zeroed), never continued.
            Some(session) if session.is_of(self.generation) => session,
            _ => Box::new(self.new_session(key, version)?),
        };
        self.encrypt_sessions.push((version, session));
        Ok(self.encrypt_sessions.len() - 1)
    }

    /// Checks the algorithm a caller names, parses the blob and checks its length against this
    /// engine's plaintext limit: everything that must hold before a buffer is sized for it.
    #[inline(always)]
    pub(crate) fn parse<'b>(
        &self,
        blob: &'b [u8],
        algorithm: Option<EncryptionAlgorithm>,
    ) -> Result<ParsedBlob<'b>> {
        if let Some(algorithm) = algorithm {
            check_symmetric_algorithm(algorithm)?;
        }
        let parsed = ciphertext::parse_any(blob)?;
        if parsed.plaintext_len() > self.plane.max_plaintext {
            return Err(Error::InvalidCiphertext(format!(
                "the ciphertext is longer than this engine's limit of {} plaintext bytes",
                self.plane.max_plaintext
            )));
        }
        Ok(parsed)
    }

    /// Authenticates and decrypts a blob parsed by [`Self::parse`] into `out` (exactly its plaintext length). Checks the expected key, the key's state and usage.
    pub(crate) fn open(
        &mut self,
        parsed: &ParsedBlob<'_>,
        expected_key: Option<&str>,
        context: Option<&EncryptionContext>,
        action: Action,
        out: &mut [u8],
    ) -> Result<(&'k Arc<KeyEntry>, &'k Arc<VersionEntry>)> {
        let key = self.key_by_id(&parsed.key_id)?;
        if let Some(expected) = expected_key {
            let expected = self.resolve(expected, action)?;
            if expected.id != key.id {
                return Err(messages::incorrect_key());
            }
        }
        self.authorize(key, action, || RequestFacts {
            context,
            identifier: expected_key,
            encryption_algorithm: Some(EncryptionAlgorithm::SymmetricDefault.as_str()),
            ..RequestFacts::default()
        })?;
        key.check_encrypt_decrypt(action)?;
        let version = key.version(parsed.key_version).ok_or_else(|| {
            Error::InvalidCiphertext(format!(
                "the ciphertext names version {} of {}, which does not exist",
                parsed.key_version, key.arn
            ))
        })?;
        if out.len() != parsed.plaintext_len() {
            return Err(Error::Internal(
                "plaintext buffer has the wrong size".into(),
            ));
        }
        match (parsed.wrapped, version.double_encrypted()) {
            (None, None) => {}
            (Some(wrapped), Some(external)) => {
                self.open_external(
                    parsed, key, version, external, wrapped, context, action, out,
                )?;
                return Ok((key, version));
            }
            // A blob of the other construction than its key's: never tried under the wrong one.
            _ => {
                return Err(Error::InvalidCiphertext(
                    "the ciphertext's construction is not the one its key uses".into(),
                ))
            }
        }
        self.build_aad(parsed.header, context)?;
        let index = match self
            .decrypt_keys
            .iter()
            .position(|(v, _)| std::ptr::eq(*v, version.as_ref()))
        {
            Some(i) => i,
            None => {
                let cache = version.decrypt_keys.take().unwrap_or_default();
                self.decrypt_keys.push((version.as_ref(), cache));
                self.decrypt_keys.len() - 1
            }
        };
        // The derived key for the blob's salt: cached; else, for a blob of this thread's own
        // encrypt session, that session's key (the same derived key: what the engine encrypted
        // with a cached session must open even when deriving again would need a custom key
        // store's token that has gone away); else derived now, and cached.
        let derived = match self.decrypt_keys[index].1.find(parsed.salt) {
            Some(i) => self.decrypt_keys[index].1.key(i),
            None => match self.encrypt_session_with_salt(version, parsed.salt) {
                Some(session) => &self.encrypt_sessions[session].1.key,
                None => {
                    let policy = self.plane.lock_policy;
                    self.decrypt_keys[index]
                        .1
                        .get_or_derive(parsed.salt, |reuse| {
                            version.derive(&key.id, parsed.salt, policy, reuse)
                        })?
                }
            },
        };
        derived
            .open(parsed.nonce, &self.aad, parsed.body, parsed.tag, out)
            .map_err(|_| messages::ciphertext_not_authenticated())?;
        Ok((key, version))
    }
}

impl<'k> ChunkContext<'k> {
    /// Opens a double-encrypted blob: the proxy unwraps the per-call secret (with the same
    /// associated data as at encryption), then the data key opens the body.
    #[allow(clippy::too_many_arguments)]
    fn open_external(
        &mut self,
        parsed: &ParsedBlob<'_>,
        key: &KeyEntry,
        version: &VersionEntry,
        external: &super::external_key::ExternalKey,
        wrapped: &[u8],
        context: Option<&EncryptionContext>,
        action: Action,
        out: &mut [u8],
    ) -> Result<()> {
        let policy = self.plane.lock_policy;
        self.build_aad(&[], context)?;
        let header = parsed.header.get(..HEADER_LEN).ok_or_else(|| {
            Error::InvalidCiphertext("the ciphertext blob is not valid: too short".into())
        })?;
        let proxy_aad = super::xks::proxy_aad(&key.arn, header, &self.aad);
        let metadata =
            super::xks::request_metadata(self.caller, &key.arn, action, self.request_id.as_deref());
        let secret = external.live(&key.arn)?.external_decrypt(
            &external.backing_key,
            wrapped,
            &proxy_aad,
            &metadata,
        )?;
        if secret.len() != super::xks::SECRET_LEN {
            return Err(Error::InvalidCiphertext(
                "the external key store returned a secret of the wrong size: the ciphertext was \
                 altered, or the proxy answered for another ciphertext"
                    .into(),
            ));
        }
        let data_key = super::xks::derive(
            &version.material,
            secret.expose(),
            external,
            &key.id,
            version.version,
            parsed.salt,
            policy,
        )?;
        drop(secret);
        self.build_aad(parsed.header, context)?;
        data_key
            .open(parsed.nonce, &self.aad, parsed.body, parsed.tag, out)
            .map_err(|_| messages::ciphertext_not_authenticated())
    }
}

impl Drop for ChunkContext<'_> {
    fn drop(&mut self) {
        for (version, session) in self.encrypt_sessions.drain(..) {
            version.encrypt_sessions.put(session);
        }
        for (version, keys) in self.decrypt_keys.drain(..) {
            version.decrypt_keys.put(keys);
        }
        if let Some(work) = self.hmac_work.take() {
            self.plane.hmac_works.give_back(work);
        }
    }
}

/// Copies a blob's usual header at its constant length, in moves rather than a call to `memcpy`
/// (which the copy of a header of any length would make, the optimiser merging the two). Never
/// inlined, so that it stays a copy of constant length.
#[inline(never)]
fn copy_header(to: &mut [u8; HEADER_LEN], from: &[u8; HEADER_LEN]) {
    *to = *from;
}
