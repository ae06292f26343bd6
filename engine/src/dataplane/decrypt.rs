//! Decrypt.

use super::chunk::ChunkContext;
use super::DataPlane;
use crate::context::EncryptionContext;
use crate::error::Result;
use crate::key::EncryptionAlgorithm;
use crate::secret::SecretBytes;

/// A Decrypt request.
#[derive(Debug, Clone, Copy)]
pub struct DecryptRequest<'a> {
    pub ciphertext_blob: &'a [u8],
    /// When given, the ciphertext must have been encrypted under this key (IncorrectKey if not).
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

impl DataPlane {
    pub(crate) fn decrypt(&self, request: &DecryptRequest<'_>) -> Result<DecryptResponse> {
        self.run_one(|ctx| {
            let parsed = ctx.parse(request.ciphertext_blob, request.encryption_algorithm)?;
            let mut plaintext = SecretBytes::zeroed(parsed.plaintext_len());
            let (key, version) = ctx.open(
                &parsed,
                request.key_id,
                request.encryption_context,
                plaintext.expose_mut(),
            )?;
            Ok(DecryptResponse {
                plaintext,
                key_id: key.arn.clone(),
                encryption_algorithm: EncryptionAlgorithm::SymmetricDefault,
                key_material_id: version.material_id.clone(),
            })
        })
    }

    pub(crate) fn decrypt_item(
        ctx: &mut ChunkContext<'_>,
        request: &DecryptRequest<'_>,
    ) -> Result<SecretBytes> {
        let parsed = ctx.parse(request.ciphertext_blob, request.encryption_algorithm)?;
        let mut plaintext = SecretBytes::zeroed(parsed.plaintext_len());
        ctx.open(
            &parsed,
            request.key_id,
            request.encryption_context,
            plaintext.expose_mut(),
        )?;
        Ok(plaintext)
    }

    pub(crate) fn decrypt_batch(
        &self,
        requests: &[DecryptRequest<'_>],
    ) -> Vec<Result<SecretBytes>> {
        self.run_batch(requests, Self::decrypt_item)
    }
}
