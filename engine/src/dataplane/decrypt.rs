//! Decrypt.

use super::chunk::ChunkContext;
use super::encrypt::{copy_out, refuse_context_for_rsa};
use super::item_outputs::Outputs;
use super::keyring::{KeyEntry, VersionEntry};
use super::output::IntoError;
use super::plane::DataPlane;
use super::primitive::KeyPrimitive;
use super::tally::KeyTally;
use crate::access::request_facts::RequestFacts;
use crate::access::{Action, Caller};
use crate::ciphertext::ParsedBlob;
use crate::context::EncryptionContext;
use crate::crypto::rsa_oaep::RsaOaepKey;
use crate::error::{validation, Error, Result};
use crate::key::{EncryptionAlgorithm, KeyUsage};
use crate::secret::SecretBytes;
use zeroize::Zeroize;

/// A Decrypt request.
#[derive(Debug, Clone, Copy)]
pub struct DecryptRequest<'a> {
    pub ciphertext_blob: &'a [u8],
    /// When given, the ciphertext must have been encrypted under this key (IncorrectKey if not).
    /// Required for an RSA key, with `encryption_algorithm`.
    pub key_id: Option<&'a str>,
    /// Must equal the context the data was encrypted with.
    pub encryption_context: Option<&'a EncryptionContext>,
    pub encryption_algorithm: Option<EncryptionAlgorithm>,
}

impl<'a> DecryptRequest<'a> {
    /// A request with no key id, no context and the default algorithm.
    pub fn new(ciphertext_blob: &'a [u8]) -> Self {
        DecryptRequest {
            ciphertext_blob,
            key_id: None,
            encryption_context: None,
            encryption_algorithm: None,
        }
    }

    /// The same request with an encryption context.
    pub fn with_context(mut self, context: &'a EncryptionContext) -> Self {
        self.encryption_context = Some(context);
        self
    }

    /// The same request naming the key that must have encrypted it.
    pub fn with_key_id(mut self, key_id: &'a str) -> Self {
        self.key_id = Some(key_id);
        self
    }
}

/// Decrypt's answer.
#[derive(Debug)]
pub struct DecryptResponse {
    pub plaintext: SecretBytes,
    /// The ARN of the key that decrypted.
    pub key_id: String,
    pub encryption_algorithm: EncryptionAlgorithm,
    /// The key material (version) that decrypted.
    pub key_material_id: String,
}

/// What [`crate::Engine::decrypt_into`] wrote: the plaintext, at the start of the caller's
/// buffer, and the rest of Decrypt's answer.
#[derive(Debug, Clone)]
pub struct DecryptedInto {
    /// The plaintext's length: the bytes written at the start of the buffer.
    pub len: usize,
    /// The ARN of the key that decrypted.
    pub key_id: String,
    pub encryption_algorithm: EncryptionAlgorithm,
    /// The key material (version) that decrypted.
    pub key_material_id: String,
}

/// What decrypted an item.
pub(crate) struct Source<'k> {
    pub(crate) key: &'k KeyEntry,
    pub(crate) version: &'k VersionEntry,
    pub(crate) algorithm: EncryptionAlgorithm,
}

/// An item's plaintext and what decrypted it.
pub(crate) struct Decrypted<'k> {
    pub(crate) plaintext: SecretBytes,
    pub(crate) source: Source<'k>,
}

impl Decrypted<'_> {
    /// Decrypt's answer: the plaintext, and the key, algorithm and key material that decrypted it.
    fn into_response(self) -> DecryptResponse {
        DecryptResponse {
            plaintext: self.plaintext,
            key_id: self.source.key.arn.clone(),
            encryption_algorithm: self.source.algorithm,
            key_material_id: self.source.version.material_id.clone(),
        }
    }
}

/// A ciphertext checked and ready to decrypt, before any buffer is sized for its plaintext.
pub(crate) enum Opening<'k, 'b> {
    /// An OAEP ciphertext under a named RSA key, authorised and checked.
    Rsa {
        key: &'k KeyEntry,
        rsa: &'k RsaOaepKey,
        algorithm: EncryptionAlgorithm,
        blob: &'b [u8],
    },
    /// A keyplane blob, parsed; its key is authorised and checked as it is opened.
    Symmetric(ParsedBlob<'b>),
}

impl Opening<'_, '_> {
    /// The buffer decrypting needs: the plaintext length, or the RSA modulus length.
    pub(crate) fn buffer_len(&self) -> usize {
        match self {
            Opening::Rsa { rsa, .. } => rsa.decrypt_buffer_len(),
            Opening::Symmetric(parsed) => parsed.plaintext_len(),
        }
    }
}

impl DataPlane {
    /// Checks a ciphertext before decrypting it: an OAEP ciphertext when `key_id` names an RSA
    /// key (which then needs the algorithm), otherwise a keyplane blob, which names its own key.
    pub(crate) fn prepare_decrypt<'k, 'b>(
        ctx: &mut ChunkContext<'k>,
        action: Action,
        blob: &'b [u8],
        key_id: Option<&str>,
        context: Option<&EncryptionContext>,
        algorithm: Option<EncryptionAlgorithm>,
    ) -> Result<Opening<'k, 'b>> {
        if let Some(key_id) = key_id {
            let key = ctx.resolve(key_id, action)?;
            let version = key.current().ok();
            if let Some(KeyPrimitive::RsaOaep(rsa)) = version.map(|v| &v.primitive) {
                let algorithm = algorithm.ok_or_else(|| {
                    validation!("EncryptionAlgorithm is required to decrypt under an RSA key")
                })?;
                ctx.authorize(key, action, || RequestFacts {
                    context,
                    identifier: Some(key_id),
                    encryption_algorithm: Some(algorithm.as_str()),
                    ..RequestFacts::default()
                })?;
                key.check_usage(KeyUsage::EncryptDecrypt, action)?;
                refuse_context_for_rsa(context)?;
                return Ok(Opening::Rsa {
                    key,
                    rsa,
                    algorithm,
                    blob,
                });
            }
            // A named key that cannot decrypt symmetric blobs says so before the blob is read.
            if key.usage != KeyUsage::EncryptDecrypt
                || key.spec != crate::key::KeySpec::SymmetricDefault
            {
                ctx.authorize(key, action, || RequestFacts {
                    context,
                    identifier: Some(key_id),
                    encryption_algorithm: algorithm.map(|a| a.as_str()),
                    ..RequestFacts::default()
                })?;
                key.check_encrypt_decrypt(action)?;
            }
        }
        Ok(Opening::Symmetric(ctx.parse(blob, algorithm)?))
    }

    /// Decrypts a prepared ciphertext into `out` (at least [`Opening::buffer_len`] bytes);
    /// returns the plaintext length and what decrypted it. The caller zeroes `out`.
    pub(crate) fn decrypt_prepared_into<'k>(
        ctx: &mut ChunkContext<'k>,
        opening: &Opening<'k, '_>,
        action: Action,
        key_id: Option<&str>,
        context: Option<&EncryptionContext>,
        out: &mut [u8],
    ) -> Result<(usize, Source<'k>)> {
        match opening {
            Opening::Rsa {
                key,
                rsa,
                algorithm,
                blob,
            } => {
                let len = rsa.decrypt_into(*algorithm, blob, out)?;
                let source = Source {
                    key,
                    version: key.current()?,
                    algorithm: *algorithm,
                };
                Ok((len, source))
            }
            Opening::Symmetric(parsed) => {
                let len = parsed.plaintext_len();
                let out = out
                    .get_mut(..len)
                    .ok_or_else(|| Error::Internal("plaintext buffer is too short".into()))?;
                let (key, version) = ctx.open(parsed, key_id, context, action, out)?;
                let source = Source {
                    key,
                    version,
                    algorithm: EncryptionAlgorithm::SymmetricDefault,
                };
                Ok((len, source))
            }
        }
    }

    /// Decrypts `blob` into a new [`SecretBytes`] (see [`Self::prepare_decrypt`]).
    pub(crate) fn decrypt_any<'k>(
        ctx: &mut ChunkContext<'k>,
        action: Action,
        blob: &[u8],
        key_id: Option<&str>,
        context: Option<&EncryptionContext>,
        algorithm: Option<EncryptionAlgorithm>,
    ) -> Result<Decrypted<'k>> {
        let opening = Self::prepare_decrypt(ctx, action, blob, key_id, context, algorithm)?;
        Self::decrypt_prepared(ctx, &opening, action, key_id, context)
    }

    /// Decrypts a prepared ciphertext into a new [`SecretBytes`] of the plaintext's length,
    /// through a zeroizing buffer of [`Opening::buffer_len`] bytes (an RSA plaintext is shorter
    /// than the modulus it is decrypted into).
    fn decrypt_prepared<'k>(
        ctx: &mut ChunkContext<'k>,
        opening: &Opening<'k, '_>,
        action: Action,
        key_id: Option<&str>,
        context: Option<&EncryptionContext>,
    ) -> Result<Decrypted<'k>> {
        // Opening writes every byte up to the length it answers, and a shorter answer is copied
        // into a buffer of its own length: nothing the pooled buffer held before is exposed.
        let mut plaintext = SecretBytes::to_overwrite(opening.buffer_len());
        let (len, source) = Self::decrypt_prepared_into(
            ctx,
            opening,
            action,
            key_id,
            context,
            plaintext.expose_mut(),
        )?;
        if len != plaintext.len() {
            let mut exact = SecretBytes::to_overwrite(len);
            exact
                .expose_mut()
                .copy_from_slice(&plaintext.expose()[..len]);
            plaintext = exact;
        }
        Ok(Decrypted { plaintext, source })
    }

    fn decrypt_request<'k>(
        ctx: &mut ChunkContext<'k>,
        request: &DecryptRequest<'_>,
    ) -> Result<Decrypted<'k>> {
        Self::decrypt_any(
            ctx,
            Action::Decrypt,
            request.ciphertext_blob,
            request.key_id,
            request.encryption_context,
            request.encryption_algorithm,
        )
    }

    pub(crate) fn decrypt(
        &self,
        caller: &Caller,
        request: &DecryptRequest<'_>,
    ) -> Result<DecryptResponse> {
        self.run_one(caller, |ctx| {
            Self::decrypt_request(ctx, request).map(Decrypted::into_response)
        })
    }

    /// Decrypts one request into the caller's buffer `out` (at least the plaintext's length): a
    /// keyplane blob is opened in place, its plaintext length read from its framing before any
    /// work; an RSA ciphertext is decrypted aside (its buffer is the modulus long, its plaintext
    /// shorter) and copied in if it fits. When opening fails, the bytes it was lent are zeroed.
    pub(crate) fn decrypt_into(
        &self,
        caller: &Caller,
        request: &DecryptRequest<'_>,
        out: &mut [u8],
    ) -> Result<DecryptedInto, IntoError> {
        let (action, key_id, context) =
            (Action::Decrypt, request.key_id, request.encryption_context);
        self.run_one(caller, |ctx| {
            let opening = Self::prepare_decrypt(
                ctx,
                action,
                request.ciphertext_blob,
                key_id,
                context,
                request.encryption_algorithm,
            )?;
            let (len, source) = match &opening {
                Opening::Symmetric(parsed) => {
                    let needed = parsed.plaintext_len();
                    let dest = out
                        .get_mut(..needed)
                        .ok_or(IntoError::OutputTooSmall { needed })?;
                    Self::decrypt_prepared_into(ctx, &opening, action, key_id, context, dest)
                        .inspect_err(|_| dest.zeroize())?
                }
                Opening::Rsa { .. } => {
                    let done = Self::decrypt_prepared(ctx, &opening, action, key_id, context)?;
                    let plaintext = done.plaintext.expose();
                    let needed = plaintext.len();
                    let dest = out
                        .get_mut(..needed)
                        .ok_or(IntoError::OutputTooSmall { needed })?;
                    dest.copy_from_slice(plaintext);
                    (needed, done.source)
                }
            };
            Ok(DecryptedInto {
                len,
                key_id: source.key.arn.clone(),
                encryption_algorithm: source.algorithm,
                key_material_id: source.version.material_id.clone(),
            })
        })
    }

    /// Decrypts every request into its caller-provided buffer (at least the plaintext length:
    /// the blob length minus `ciphertext::OVERHEAD`); returns the bytes written per item. The
    /// caller owns, and should zero, the plaintext it receives.
    pub(crate) fn decrypt_batch_into<'o>(
        &self,
        caller: &Caller,
        tally: &KeyTally,
        requests: &[DecryptRequest<'_>],
        outputs: impl Outputs<&'o mut [u8]>,
        check: impl Fn(&DecryptRequest<'_>) -> Result<()> + Sync,
    ) -> super::WrittenItems {
        self.run_batch_into_buffers(caller, tally, requests, outputs, check, |ctx, r, out| {
            Self::decrypt_item_into(ctx, r, out)
        })
    }

    /// Decrypts a symmetric blob straight into `out`; other ciphertexts through a zeroizing
    /// buffer.
    fn decrypt_item_into(
        ctx: &mut ChunkContext<'_>,
        request: &DecryptRequest<'_>,
        out: &mut [u8],
    ) -> Result<usize> {
        let is_rsa = match request.key_id {
            Some(key_id) => matches!(
                ctx.resolve(key_id, Action::Decrypt)?
                    .current()
                    .map(|v| &v.primitive),
                Ok(KeyPrimitive::RsaOaep(_))
            ),
            None => false,
        };
        if !is_rsa {
            let parsed = ctx.parse(request.ciphertext_blob, request.encryption_algorithm)?;
            let len = parsed.plaintext_len();
            let Some(dest) = out.get_mut(..len) else {
                return Err(validation!(
                    "the output buffer holds {} bytes; this plaintext needs {len}",
                    out.len()
                ));
            };
            ctx.open(
                &parsed,
                request.key_id,
                request.encryption_context,
                Action::Decrypt,
                dest,
            )?;
            return Ok(len);
        }
        let done = Self::decrypt_request(ctx, request)?;
        copy_out(done.plaintext.expose(), out)
    }

    /// Decrypts every request with the single call's whole answer per item (key ARN, algorithm
    /// and key material id besides the plaintext), for a front end that coalesces single calls.
    pub(crate) fn decrypt_batch_responses(
        &self,
        caller: &Caller,
        tally: &KeyTally,
        requests: &[DecryptRequest<'_>],
        check: impl Fn(&DecryptRequest<'_>) -> Result<()> + Sync,
    ) -> Vec<Result<DecryptResponse>> {
        self.run_batch(caller, tally, requests, check, |ctx, request| {
            Self::decrypt_request(ctx, request).map(Decrypted::into_response)
        })
    }

    pub(crate) fn decrypt_batch(
        &self,
        caller: &Caller,
        tally: &KeyTally,
        requests: &[DecryptRequest<'_>],
        check: impl Fn(&DecryptRequest<'_>) -> Result<()> + Sync,
    ) -> Vec<Result<SecretBytes>> {
        self.run_batch(caller, tally, requests, check, |ctx, request| {
            Self::decrypt_request(ctx, request).map(|done| done.plaintext)
        })
    }
}
