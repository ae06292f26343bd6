//! Encrypt.

use super::chunk::ChunkContext;
use super::keyring::KeyEntry;
use super::primitive::KeyPrimitive;
use super::DataPlane;
use crate::access::authorize::RequestFacts;
use crate::access::{Action, Caller};
use crate::ciphertext;
use crate::context::EncryptionContext;
use crate::error::{validation, Error, Result};
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

pub(crate) fn check_symmetric_algorithm(algorithm: EncryptionAlgorithm) -> Result<()> {
    if algorithm != EncryptionAlgorithm::SymmetricDefault {
        return Err(Error::InvalidKeyUsage(format!(
            "encryption algorithm {algorithm} is not valid for a symmetric key; use SYMMETRIC_DEFAULT"
        )));
    }
    Ok(())
}

impl DataPlane {
    /// Encrypts `plaintext` under `key` with `algorithm`: a keyplane blob for a symmetric key
    /// (checked against the engine's plaintext limit), an OAEP ciphertext for an RSA key.
    pub(crate) fn encrypt_under<'k>(
        ctx: &mut ChunkContext<'k>,
        key: &'k KeyEntry,
        algorithm: EncryptionAlgorithm,
        plaintext: &[u8],
        context: Option<&EncryptionContext>,
    ) -> Result<Vec<u8>> {
        key.check_usage(KeyUsage::EncryptDecrypt)?;
        if let KeyPrimitive::RsaOaep(rsa) = &key.current()?.primitive {
            return rsa.encrypt(algorithm, plaintext);
        }
        key.check_encrypt_decrypt()?;
        check_symmetric_algorithm(algorithm)?;
        let max = ctx.max_plaintext();
        if plaintext.is_empty() || plaintext.len() > max {
            return Err(validation!(
                "plaintext must be 1 to {max} bytes, not {}",
                plaintext.len()
            ));
        }
        let mut blob = vec![0u8; ciphertext::blob_len(plaintext.len())];
        ctx.seal(key, plaintext, context, &mut blob)?;
        Ok(blob)
    }

    /// Validates and encrypts one request; returns the key with the ciphertext.
    pub(crate) fn encrypt_item<'k>(
        ctx: &mut ChunkContext<'k>,
        request: &EncryptRequest<'_>,
    ) -> Result<(Vec<u8>, &'k KeyEntry)> {
        let key = ctx.resolve(request.key_id)?;
        ctx.authorize(
            key,
            Action::Encrypt,
            &RequestFacts {
                context: request.encryption_context,
                identifier: Some(request.key_id),
                encryption_algorithm: Some(request.encryption_algorithm.as_str()),
                grant_operations: None,
            },
        )?;
        let blob = Self::encrypt_under(
            ctx,
            key,
            request.encryption_algorithm,
            request.plaintext,
            request.encryption_context,
        )?;
        Ok((blob, key))
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

    pub(crate) fn encrypt_batch(
        &self,
        caller: &Caller,
        requests: &[EncryptRequest<'_>],
    ) -> Vec<Result<Vec<u8>>> {
        self.run_batch(caller, requests, |ctx, request| {
            Self::encrypt_item(ctx, request).map(|(blob, _)| blob)
        })
    }
}
