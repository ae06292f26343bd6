//! ReEncrypt: decrypt under one key and encrypt under another without the plaintext leaving the
//! engine: it is held only in the chunk's locked scratch memory (mlocked, `MADV_DONTDUMP`), which
//! is zeroed before the next item uses it.

use super::chunk::ChunkContext;
use super::plane::DataPlane;
use super::tally::KeyTally;
use crate::access::request_facts::RequestFacts;
use crate::access::{Action, Caller};
use crate::context::EncryptionContext;
use crate::error::Result;
use crate::key::{EncryptionAlgorithm, KeyUsage};

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
    /// Re-encrypts one item; returns the new blob and what decrypted and encrypted it.
    fn re_encrypt_item<'k>(
        ctx: &mut ChunkContext<'k>,
        request: &ReEncryptRequest<'_>,
    ) -> Result<(Vec<u8>, ReEncryptKeys<'k>)> {
        let destination = ctx.resolve(request.destination_key_id, Action::ReEncryptTo)?;
        ctx.authorize(destination, Action::ReEncryptTo, || RequestFacts {
            context: request.destination_encryption_context,
            identifier: Some(request.destination_key_id),
            encryption_algorithm: Some(request.destination_encryption_algorithm.as_str()),
            ..RequestFacts::default()
        })?;
        destination.check_usage(KeyUsage::EncryptDecrypt, Action::ReEncryptTo)?;
        // The plaintext lives only in the chunk's locked scratch, zeroed before it is reused.
        let opening = Self::prepare_decrypt(
            ctx,
            Action::ReEncryptFrom,
            request.ciphertext_blob,
            request.source_key_id,
            request.source_encryption_context,
            request.source_encryption_algorithm,
        )?;
        let buffer_len = opening.buffer_len();
        let mut scratch = ctx.take_scratch(buffer_len)?;
        let sealed = Self::decrypt_prepared_into(
            ctx,
            &opening,
            Action::ReEncryptFrom,
            request.source_key_id,
            request.source_encryption_context,
            &mut scratch.bytes_mut()[..buffer_len],
        )
        .and_then(|(len, source)| {
            let blob = Self::encrypt_under(
                ctx,
                destination,
                Action::ReEncryptTo,
                request.destination_encryption_algorithm,
                &scratch.bytes()[..len],
                request.destination_encryption_context,
            )?;
            Ok((blob, source))
        });
        ctx.return_scratch(scratch, buffer_len);
        let (blob, source) = sealed?;
        Ok((
            blob,
            ReEncryptKeys {
                source_arn: &source.key.arn,
                source_material_id: &source.version.material_id,
                source_algorithm: source.algorithm,
                destination_arn: &destination.arn,
                destination_material_id: &destination.current()?.material_id,
            },
        ))
    }

    pub(crate) fn re_encrypt(
        &self,
        caller: &Caller,
        request: &ReEncryptRequest<'_>,
    ) -> Result<ReEncryptResponse> {
        self.run_one(caller, |ctx| {
            let (ciphertext_blob, keys) = Self::re_encrypt_item(ctx, request)?;
            Ok(ReEncryptResponse {
                ciphertext_blob,
                source_key_id: keys.source_arn.to_owned(),
                key_id: keys.destination_arn.to_owned(),
                source_encryption_algorithm: keys.source_algorithm,
                destination_encryption_algorithm: request.destination_encryption_algorithm,
                source_key_material_id: keys.source_material_id.to_owned(),
                destination_key_material_id: keys.destination_material_id.to_owned(),
            })
        })
    }

    pub(crate) fn re_encrypt_batch(
        &self,
        caller: &Caller,
        tally: &KeyTally,
        requests: &[ReEncryptRequest<'_>],
        check: impl Fn(&ReEncryptRequest<'_>) -> Result<()> + Sync,
    ) -> Vec<Result<Vec<u8>>> {
        self.run_batch(caller, tally, requests, check, |ctx, request| {
            Self::re_encrypt_item(ctx, request).map(|(blob, _)| blob)
        })
    }
}

struct ReEncryptKeys<'k> {
    source_arn: &'k str,
    source_material_id: &'k str,
    source_algorithm: EncryptionAlgorithm,
    destination_arn: &'k str,
    destination_material_id: &'k str,
}
