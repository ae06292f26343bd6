//! Encrypt.

use super::chunk::ChunkContext;
use super::DataPlane;
use crate::ciphertext;
use crate::context::EncryptionContext;
use crate::error::{validation, Error, Result};
use crate::key::EncryptionAlgorithm;

/// An Encrypt request.
#[derive(Clone, Copy)]
pub struct EncryptRequest<'a> {
    /// Key id, key ARN, alias name or alias ARN.
    pub key_id: &'a str,
    /// 1 to 4096 bytes.
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

pub(crate) fn check_symmetric_algorithm(algorithm: EncryptionAlgorithm) -> Result<()> {
    if algorithm != EncryptionAlgorithm::SymmetricDefault {
        return Err(Error::InvalidKeyUsage(format!(
            "encryption algorithm {algorithm} is not valid for a symmetric key; use SYMMETRIC_DEFAULT"
        )));
    }
    Ok(())
}

impl DataPlane {
    /// Validates and encrypts one request into a new blob; returns the key's ARN with it.
    pub(crate) fn encrypt_item<'k>(
        ctx: &mut ChunkContext<'k>,
        request: &EncryptRequest<'_>,
    ) -> Result<(Vec<u8>, &'k str)> {
        let max = ctx.max_plaintext();
        if request.plaintext.is_empty() || request.plaintext.len() > max {
            return Err(validation!(
                "plaintext must be 1 to {max} bytes, not {}",
                request.plaintext.len()
            ));
        }
        let key = ctx.resolve(request.key_id)?;
        key.check_encrypt_decrypt()?;
        check_symmetric_algorithm(request.encryption_algorithm)?;
        let mut blob = vec![0u8; ciphertext::blob_len(request.plaintext.len())];
        ctx.seal(
            key,
            request.plaintext,
            request.encryption_context,
            &mut blob,
        )?;
        Ok((blob, &key.arn))
    }

    pub(crate) fn encrypt(&self, request: &EncryptRequest<'_>) -> Result<EncryptResponse> {
        self.run_one(|ctx| {
            let (ciphertext_blob, arn) = Self::encrypt_item(ctx, request)?;
            Ok(EncryptResponse {
                ciphertext_blob,
                key_id: arn.to_owned(),
                encryption_algorithm: EncryptionAlgorithm::SymmetricDefault,
            })
        })
    }

    pub(crate) fn encrypt_batch(&self, requests: &[EncryptRequest<'_>]) -> Vec<Result<Vec<u8>>> {
        self.run_batch(requests, |ctx, request| {
            Self::encrypt_item(ctx, request).map(|(blob, _)| blob)
        })
    }
}
