//! Encrypt.

use super::algorithm::check_symmetric_algorithm;
use super::chunk::ChunkContext;
use super::ciphertext_blob::CiphertextBlob;
use super::item_outputs::Outputs;
use super::keyring::KeyEntry;
use super::output::IntoError;
use super::plane::DataPlane;
use super::primitive::KeyPrimitive;
use super::tally::KeyTally;
use crate::access::request_facts::RequestFacts;
use crate::access::{Action, Caller};
use crate::context::EncryptionContext;
use crate::error::{validation, Result};
use crate::key::{EncryptionAlgorithm, KeyUsage};

/// An Encrypt request.
#[derive(Clone, Copy)]
pub struct EncryptRequest<'a> {
    /// Key id, key ARN, alias name or alias ARN.
    pub key_id: &'a str,
    /// 1 to 4096 bytes (the engine's `max_plaintext_bytes`) for a symmetric key; within the
    /// OAEP limit for an RSA key.
    pub plaintext: &'a [u8],
    pub encryption_context: Option<&'a EncryptionContext>,
    pub encryption_algorithm: EncryptionAlgorithm,
}

impl<'a> EncryptRequest<'a> {
    /// A request with no encryption context and the default algorithm.
    pub fn new(key_id: &'a str, plaintext: &'a [u8]) -> Self {
        EncryptRequest {
            key_id,
            plaintext,
            encryption_context: None,
            encryption_algorithm: EncryptionAlgorithm::SymmetricDefault,
        }
    }

    /// The same request with an encryption context.
    pub fn with_context(mut self, context: &'a EncryptionContext) -> Self {
        self.encryption_context = Some(context);
        self
    }
}

impl std::fmt::Debug for EncryptRequest<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EncryptRequest")
            .field("key_id", &self.key_id)
            .field(
                "plaintext",
                &format_args!("<{} bytes, redacted>", self.plaintext.len()),
            )
            .field("encryption_context", &self.encryption_context)
            .field("encryption_algorithm", &self.encryption_algorithm)
            .finish()
    }
}

/// Encrypt's answer.
#[derive(Debug, Clone)]
pub struct EncryptResponse {
    pub ciphertext_blob: Vec<u8>,
    /// The ARN of the key that encrypted.
    pub key_id: String,
    pub encryption_algorithm: EncryptionAlgorithm,
}

/// What [`crate::Engine::encrypt_into`] wrote: the blob, at the start of the caller's buffer, and
/// the rest of Encrypt's answer.
#[derive(Debug, Clone)]
pub struct EncryptedInto {
    /// The blob's length: the bytes written at the start of the buffer.
    pub len: usize,
    /// The ARN of the key that encrypted.
    pub key_id: String,
    pub encryption_algorithm: EncryptionAlgorithm,
}

impl DataPlane {
    /// Encrypts `plaintext` under `key` with `algorithm` into `out`: a keyplane blob for a
    /// symmetric key (sealed in place; `out` must hold `blob_len(plaintext.len())` bytes), an OAEP
    /// ciphertext for an RSA key (copied in). Returns the bytes written.
    pub(crate) fn encrypt_under_into<'k>(
        ctx: &mut ChunkContext<'k>,
        key: &'k KeyEntry,
        action: Action,
        algorithm: EncryptionAlgorithm,
        plaintext: &[u8],
        context: Option<&EncryptionContext>,
        out: &mut [u8],
    ) -> Result<usize> {
        key.check_usage(KeyUsage::EncryptDecrypt, action)?;
        if let KeyPrimitive::RsaOaep(rsa) = &key.current()?.primitive {
            refuse_context_for_rsa(context)?;
            return copy_out(&rsa.encrypt(algorithm, plaintext)?, out);
        }
        key.check_symmetric()?;
        check_symmetric_algorithm(algorithm)?;
        let max = ctx.max_plaintext();
        if plaintext.is_empty() || plaintext.len() > max {
            return Err(validation!(
                "plaintext must be 1 to {max} bytes, not {}",
                plaintext.len()
            ));
        }
        let len = ChunkContext::sealed_len_max(key, plaintext.len());
        if out.len() < len {
            return Err(validation!(
                "the output buffer holds {} bytes; this ciphertext needs {len}",
                out.len()
            ));
        }
        ctx.seal_any(key, action, plaintext, context, out)
    }

    /// As [`Self::encrypt_under_into`], into a new vector.
    pub(crate) fn encrypt_under<'k>(
        ctx: &mut ChunkContext<'k>,
        key: &'k KeyEntry,
        action: Action,
        algorithm: EncryptionAlgorithm,
        plaintext: &[u8],
        context: Option<&EncryptionContext>,
    ) -> Result<Vec<u8>> {
        let mut out = vec![0u8; output_size(key, plaintext.len())];
        let len =
            Self::encrypt_under_into(ctx, key, action, algorithm, plaintext, context, &mut out)?;
        out.truncate(len);
        Ok(out)
    }

    /// Resolves and authorises one request's key, then encrypts into `out`.
    fn encrypt_item_into<'k>(
        ctx: &mut ChunkContext<'k>,
        request: &EncryptRequest<'_>,
        out: &mut [u8],
    ) -> Result<(usize, &'k KeyEntry)> {
        let key = ctx.resolve(request.key_id, Action::Encrypt)?;
        ctx.authorize(key, Action::Encrypt, || RequestFacts {
            context: request.encryption_context,
            identifier: Some(request.key_id),
            encryption_algorithm: Some(request.encryption_algorithm.as_str()),
            ..RequestFacts::default()
        })?;
        let len = Self::encrypt_under_into(
            ctx,
            key,
            Action::Encrypt,
            request.encryption_algorithm,
            request.plaintext,
            request.encryption_context,
            out,
        )?;
        Ok((len, key))
    }

    /// Validates and encrypts one request into a new vector; returns the key with it.
    pub(crate) fn encrypt_item<'k>(
        ctx: &mut ChunkContext<'k>,
        request: &EncryptRequest<'_>,
    ) -> Result<(Vec<u8>, &'k KeyEntry)> {
        let size = output_size(
            ctx.resolve(request.key_id, Action::Encrypt)?,
            request.plaintext.len(),
        );
        let mut out = crate::recycled_buffers::take_to_overwrite(size);
        let (len, key) = Self::encrypt_item_into(ctx, request, &mut out)?;
        out.truncate(len);
        Ok((out, key))
    }

    pub(crate) fn encrypt(
        &self,
        caller: &Caller,
        request: &EncryptRequest<'_>,
    ) -> Result<EncryptResponse> {
        self.run_one(caller, |ctx| {
            let (ciphertext_blob, key) = Self::encrypt_item(ctx, request)?;
            Ok(EncryptResponse {
                ciphertext_blob,
                key_id: key.arn.clone(),
                encryption_algorithm: request.encryption_algorithm,
            })
        })
    }

    /// Encrypts one request into the caller's buffer `out`: sealed in place when `out` has room
    /// for any output under the key (always, for a buffer of `blob_len(plaintext.len())` and a key
    /// keyplane or an HSM key store holds); otherwise made aside and copied in if it fits (an
    /// RSA key's modulus-sized ciphertext; the blob of a key in an external key store, whose
    /// length is known once its proxy has answered). Nothing is written on failure.
    pub(crate) fn encrypt_into(
        &self,
        caller: &Caller,
        request: &EncryptRequest<'_>,
        out: &mut [u8],
    ) -> Result<EncryptedInto, IntoError> {
        self.run_one(caller, |ctx| {
            let room = output_size(
                ctx.resolve(request.key_id, Action::Encrypt)?,
                request.plaintext.len(),
            );
            let (len, key) = if out.len() >= room {
                Self::encrypt_item_into(ctx, request, out)?
            } else {
                let (blob, key) = Self::encrypt_item(ctx, request)?;
                let needed = blob.len();
                let dest = out
                    .get_mut(..needed)
                    .ok_or(IntoError::OutputTooSmall { needed })?;
                dest.copy_from_slice(&blob);
                (needed, key)
            };
            Ok(EncryptedInto {
                len,
                key_id: key.arn.clone(),
                encryption_algorithm: request.encryption_algorithm,
            })
        })
    }

    /// Encrypts every request into its caller-provided buffer (at least
    /// `ciphertext::blob_len(plaintext.len())` bytes for a symmetric key, the modulus size for an
    /// RSA key); returns the bytes written per item.
    pub(crate) fn encrypt_batch_into<'o>(
        &self,
        caller: &Caller,
        tally: &KeyTally,
        requests: &[EncryptRequest<'_>],
        outputs: impl Outputs<&'o mut [u8]>,
        check: impl Fn(&EncryptRequest<'_>) -> Result<()> + Sync,
    ) -> super::WrittenItems {
        self.run_batch_into_buffers(caller, tally, requests, outputs, check, |ctx, r, out| {
            Self::encrypt_item_into(ctx, r, out).map(|(len, _)| len)
        })
    }

    pub(crate) fn encrypt_batch(
        &self,
        caller: &Caller,
        tally: &KeyTally,
        requests: &[EncryptRequest<'_>],
        check: impl Fn(&EncryptRequest<'_>) -> Result<()> + Sync,
    ) -> Vec<Result<CiphertextBlob>> {
        self.run_batch(caller, tally, requests, check, |ctx, request| {
            Self::encrypt_item(ctx, request).map(|(blob, _)| CiphertextBlob::new(blob))
        })
    }
}

/// The largest RSA-OAEP ciphertext (RSA-4096).
const RSA_MAX_CIPHERTEXT: usize = 512;

/// The buffer an encryption under `key` needs.
pub(super) fn output_size(key: &KeyEntry, plaintext_len: usize) -> usize {
    match key.current().map(|v| &v.primitive) {
        Ok(KeyPrimitive::RsaOaep(_)) => RSA_MAX_CIPHERTEXT,
        _ => ChunkContext::sealed_len_max(key, plaintext_len),
    }
}

/// An encryption context cannot be bound to an RSA-OAEP ciphertext; refusing one is safer than
/// letting a caller believe it was bound.
pub(crate) fn refuse_context_for_rsa(context: Option<&EncryptionContext>) -> Result<()> {
    if context.is_some_and(|c| !c.is_empty()) {
        return Err(validation!(
            "an encryption context is supported only with symmetric keys, not RSA keys"
        ));
    }
    Ok(())
}

/// Copies `bytes` into a caller buffer, or says how large it must be.
pub(crate) fn copy_out(bytes: &[u8], out: &mut [u8]) -> Result<usize> {
    let Some(dest) = out.get_mut(..bytes.len()) else {
        return Err(validation!(
            "the output buffer holds {} bytes; this result needs {}",
            out.len(),
            bytes.len()
        ));
    };
    dest.copy_from_slice(bytes);
    Ok(bytes.len())
}
