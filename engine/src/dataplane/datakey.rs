//! GenerateDataKey and GenerateDataKeyWithoutPlaintext: fresh random data keys returned
//! encrypted under a KMS key (and, for the first, in plaintext for immediate use).

use super::chunk::ChunkContext;
use super::plane::DataPlane;
use super::tally::KeyTally;
use crate::access::request_facts::RequestFacts;
use crate::access::{Action, Caller};
use crate::context::EncryptionContext;
use crate::error::{validation, Result};
use crate::key::DataKeySpec;
use crate::secret::SecretBytes;

/// Largest data key NumberOfBytes allows.
pub const MAX_DATA_KEY_BYTES: usize = 1024;

/// A GenerateDataKey (or ...WithoutPlaintext) request: exactly one of `key_spec` and
/// `number_of_bytes`.
#[derive(Debug, Clone, Copy)]
pub struct GenerateDataKeyRequest<'a> {
    pub key_id: &'a str,
    pub encryption_context: Option<&'a EncryptionContext>,
    pub key_spec: Option<DataKeySpec>,
    /// 1 to 1024.
    pub number_of_bytes: Option<usize>,
}

impl<'a> GenerateDataKeyRequest<'a> {
    /// A request for a data key of `spec` under `key_id`, without a context.
    pub fn new(key_id: &'a str, spec: DataKeySpec) -> Self {
        GenerateDataKeyRequest {
            key_id,
            encryption_context: None,
            key_spec: Some(spec),
            number_of_bytes: None,
        }
    }

    /// The same request with an encryption context.
    pub fn with_context(mut self, context: &'a EncryptionContext) -> Self {
        self.encryption_context = Some(context);
        self
    }

    fn data_key_len(&self) -> Result<usize> {
        match (self.key_spec, self.number_of_bytes) {
            (Some(spec), None) => Ok(spec.key_len()),
            (None, Some(n)) if (1..=MAX_DATA_KEY_BYTES).contains(&n) => Ok(n),
            (None, Some(n)) => Err(validation!(
                "NumberOfBytes must be 1 to {MAX_DATA_KEY_BYTES}, not {n}"
            )),
            (Some(_), Some(_)) => Err(validation!(
                "give either KeySpec or NumberOfBytes, not both"
            )),
            (None, None) => Err(validation!("give KeySpec or NumberOfBytes")),
        }
    }
}

/// GenerateDataKey's answer.
#[derive(Debug)]
pub struct GenerateDataKeyResponse {
    pub ciphertext_blob: Vec<u8>,
    pub plaintext: SecretBytes,
    /// ARN of the key that encrypted the data key.
    pub key_id: String,
    pub key_material_id: String,
}

/// GenerateDataKeyWithoutPlaintext's answer.
#[derive(Debug, Clone)]
pub struct GenerateDataKeyWithoutPlaintextResponse {
    pub ciphertext_blob: Vec<u8>,
    pub key_id: String,
    pub key_material_id: String,
}

/// One data key of a batch.
#[derive(Debug)]
pub struct GeneratedDataKey {
    pub plaintext: SecretBytes,
    pub ciphertext_blob: Vec<u8>,
}

impl DataPlane {
    /// Draws a data key into `plaintext` (already sized) and encrypts it.
    fn seal_new_data_key(
        ctx: &mut ChunkContext<'_>,
        action: Action,
        request: &GenerateDataKeyRequest<'_>,
        plaintext: &mut [u8],
    ) -> Result<Vec<u8>> {
        let key = ctx.resolve(request.key_id, action)?;
        ctx.authorize(key, action, || RequestFacts {
            context: request.encryption_context,
            identifier: Some(request.key_id),
            ..RequestFacts::default()
        })?;
        key.check_encrypt_decrypt(action)?;
        ctx.fill_random(plaintext)?;
        let mut blob = vec![0u8; ChunkContext::sealed_len_max(key, plaintext.len())];
        let len = ctx.seal_any(
            key,
            action,
            plaintext,
            request.encryption_context,
            &mut blob,
        )?;
        blob.truncate(len);
        Ok(blob)
    }

    fn generate_data_key_item(
        ctx: &mut ChunkContext<'_>,
        request: &GenerateDataKeyRequest<'_>,
    ) -> Result<GeneratedDataKey> {
        let mut plaintext = SecretBytes::zeroed(request.data_key_len()?);
        let ciphertext_blob = Self::seal_new_data_key(
            ctx,
            Action::GenerateDataKey,
            request,
            plaintext.expose_mut(),
        )?;
        Ok(GeneratedDataKey {
            plaintext,
            ciphertext_blob,
        })
    }

    fn generate_data_key_without_plaintext_item(
        ctx: &mut ChunkContext<'_>,
        request: &GenerateDataKeyRequest<'_>,
    ) -> Result<Vec<u8>> {
        let len = request.data_key_len()?;
        let mut scratch = ctx.take_scratch(len)?;
        let sealed = Self::seal_new_data_key(
            ctx,
            Action::GenerateDataKeyWithoutPlaintext,
            request,
            &mut scratch.bytes_mut()[..len],
        );
        ctx.return_scratch(scratch, len);
        sealed
    }

    /// The ARN and current material id of the key a request names, for single-call responses.
    fn key_names(
        ctx: &mut ChunkContext<'_>,
        request: &GenerateDataKeyRequest<'_>,
    ) -> Result<(String, String)> {
        let key = ctx.resolve(request.key_id, Action::GenerateDataKey)?;
        Ok((key.arn.clone(), key.current()?.material_id.clone()))
    }

    pub(crate) fn generate_data_key(
        &self,
        caller: &Caller,
        request: &GenerateDataKeyRequest<'_>,
    ) -> Result<GenerateDataKeyResponse> {
        self.run_one(caller, |ctx| {
            let generated = Self::generate_data_key_item(ctx, request)?;
            let (key_id, key_material_id) = Self::key_names(ctx, request)?;
            Ok(GenerateDataKeyResponse {
                ciphertext_blob: generated.ciphertext_blob,
                plaintext: generated.plaintext,
                key_id,
                key_material_id,
            })
        })
    }

    pub(crate) fn generate_data_key_without_plaintext(
        &self,
        caller: &Caller,
        request: &GenerateDataKeyRequest<'_>,
    ) -> Result<GenerateDataKeyWithoutPlaintextResponse> {
        self.run_one(caller, |ctx| {
            let ciphertext_blob = Self::generate_data_key_without_plaintext_item(ctx, request)?;
            let (key_id, key_material_id) = Self::key_names(ctx, request)?;
            Ok(GenerateDataKeyWithoutPlaintextResponse {
                ciphertext_blob,
                key_id,
                key_material_id,
            })
        })
    }

    pub(crate) fn generate_data_key_batch(
        &self,
        caller: &Caller,
        tally: &KeyTally,
        requests: &[GenerateDataKeyRequest<'_>],
        check: impl Fn(&GenerateDataKeyRequest<'_>) -> Result<()> + Sync,
    ) -> Vec<Result<GeneratedDataKey>> {
        self.run_batch(caller, tally, requests, check, Self::generate_data_key_item)
    }

    /// Many data keys with the single call's whole answer per item (key ARN and key material id
    /// besides the data key), for a front end that coalesces single calls.
    pub(crate) fn generate_data_key_batch_responses(
        &self,
        caller: &Caller,
        tally: &KeyTally,
        requests: &[GenerateDataKeyRequest<'_>],
        check: impl Fn(&GenerateDataKeyRequest<'_>) -> Result<()> + Sync,
    ) -> Vec<Result<GenerateDataKeyResponse>> {
        self.run_batch(caller, tally, requests, check, |ctx, request| {
            let generated = Self::generate_data_key_item(ctx, request)?;
            let (key_id, key_material_id) = Self::key_names(ctx, request)?;
            Ok(GenerateDataKeyResponse {
                ciphertext_blob: generated.ciphertext_blob,
                plaintext: generated.plaintext,
                key_id,
                key_material_id,
            })
        })
    }

    pub(crate) fn generate_data_key_without_plaintext_batch(
        &self,
        caller: &Caller,
        tally: &KeyTally,
        requests: &[GenerateDataKeyRequest<'_>],
        check: impl Fn(&GenerateDataKeyRequest<'_>) -> Result<()> + Sync,
    ) -> Vec<Result<Vec<u8>>> {
        self.run_batch(
            caller,
            tally,
            requests,
            check,
            Self::generate_data_key_without_plaintext_item,
        )
    }
}
