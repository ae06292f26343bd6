//! ReEncrypt: decrypt under one key and encrypt under another without the plaintext leaving the
//! engine (it passes through locked memory only).

use super::chunk::ChunkContext;
use super::encrypt::check_symmetric_algorithm;
use super::DataPlane;
use crate::ciphertext;
use crate::context::EncryptionContext;
use crate::error::Result;
use crate::key::EncryptionAlgorithm;
use std::sync::Arc;

use super::keyring::{KeyEntry, VersionEntry};
use crate::ciphertext::ParsedBlob;

/// A ReEncrypt request.
#[derive(Debug, Clone, Copy)]
pub struct ReEncryptRequest<'a> {
    pub ciphertext_blob: &'a [u8],
    pub source_key_id: Option<&'a str>,
    pub source_encryption_context: Option<&'a EncryptionContext>,
    pub source_encryption_algorithm: Option<EncryptionAlgorithm>,
    pub destination_key_id: &'a str,
    pub destination_encryption_context: Option<&'a EncryptionContext>,
    pub destination_encryption_algorithm: EncryptionAlgorithm,
}

impl<'a> ReEncryptRequest<'a> {
    /// Re-encrypts `ciphertext_blob` (no contexts) under `destination_key_id`.
    pub fn new(ciphertext_blob: &'a [u8], destination_key_id: &'a str) -> Self {
        ReEncryptRequest {
            ciphertext_blob,
            source_key_id: None,
            source_encryption_context: None,
            source_encryption_algorithm: None,
            destination_key_id,
            destination_encryption_context: None,
            destination_encryption_algorithm: EncryptionAlgorithm::SymmetricDefault,
        }
    }
}

/// ReEncrypt's answer.
#[derive(Debug, Clone)]
pub struct ReEncryptResponse {
    pub ciphertext_blob: Vec<u8>,
    /// ARN of the key that decrypted.
    pub source_key_id: String,
    /// ARN of the key that encrypted.
    pub key_id: String,
    pub source_encryption_algorithm: EncryptionAlgorithm,
    pub destination_encryption_algorithm: EncryptionAlgorithm,
    pub source_key_material_id: String,
    pub destination_key_material_id: String,
}

impl DataPlane {
    /// Re-encrypts one item; returns the new blob and the source and destination key entries.
    fn re_encrypt_item<'k>(
        &self,
        ctx: &mut ChunkContext<'k>,
        request: &ReEncryptRequest<'_>,
    ) -> Result<(Vec<u8>, ReEncryptKeys<'k>)> {
        check_symmetric_algorithm(request.destination_encryption_algorithm)?;
        let destination = ctx.resolve(request.destination_key_id)?;
        destination.check_encrypt_decrypt()?;
        let parsed = ctx.parse(request.ciphertext_blob, request.source_encryption_algorithm)?;
        let len = parsed.plaintext_len();
        let mut scratch = ctx.take_scratch(len)?;
        let sealed = Self::open_and_seal(
            ctx,
            &parsed,
            request,
            destination,
            &mut scratch.expose_mut()[..len],
        );
        ctx.return_scratch(scratch, len);
        let (blob, source, source_version) = sealed?;
        Ok((
            blob,
            ReEncryptKeys {
                source_arn: &source.arn,
                source_material_id: &source_version.material_id,
                destination_arn: &destination.arn,
                destination_material_id: &destination.current()?.material_id,
            },
        ))
    }

    /// Decrypts into `plaintext` (locked scratch) and encrypts it under `destination`.
    fn open_and_seal<'k>(
        ctx: &mut ChunkContext<'k>,
        parsed: &ParsedBlob<'_>,
        request: &ReEncryptRequest<'_>,
        destination: &'k KeyEntry,
        plaintext: &mut [u8],
    ) -> Result<(Vec<u8>, &'k Arc<KeyEntry>, &'k Arc<VersionEntry>)> {
        let (source, source_version) = ctx.open(
            parsed,
            request.source_key_id,
            request.source_encryption_context,
            plaintext,
        )?;
        let mut blob = vec![0u8; ciphertext::blob_len(plaintext.len())];
        ctx.seal(
            destination,
            plaintext,
            request.destination_encryption_context,
            &mut blob,
        )?;
        Ok((blob, source, source_version))
    }

    pub(crate) fn re_encrypt(&self, request: &ReEncryptRequest<'_>) -> Result<ReEncryptResponse> {
        self.run_one(|ctx| {
            let (ciphertext_blob, keys) = self.re_encrypt_item(ctx, request)?;
            Ok(ReEncryptResponse {
                ciphertext_blob,
                source_key_id: keys.source_arn.to_owned(),
                key_id: keys.destination_arn.to_owned(),
                source_encryption_algorithm: EncryptionAlgorithm::SymmetricDefault,
                destination_encryption_algorithm: EncryptionAlgorithm::SymmetricDefault,
                source_key_material_id: keys.source_material_id.to_owned(),
                destination_key_material_id: keys.destination_material_id.to_owned(),
            })
        })
    }

    pub(crate) fn re_encrypt_batch(
        &self,
        requests: &[ReEncryptRequest<'_>],
    ) -> Vec<Result<Vec<u8>>> {
        self.run_batch(requests, |ctx, request| {
            self.re_encrypt_item(ctx, request).map(|(blob, _)| blob)
        })
    }
}

struct ReEncryptKeys<'k> {
    source_arn: &'k str,
    source_material_id: &'k str,
    destination_arn: &'k str,
    destination_material_id: &'k str,
}
