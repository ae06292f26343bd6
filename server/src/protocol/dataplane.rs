//! Symmetric data plane: Encrypt, Decrypt, ReEncrypt, GenerateDataKey,
//! GenerateDataKeyWithoutPlaintext, GenerateRandom. The request builders are shared with
//! [`crate::coalesce`], which runs the same requests as batches.

use keyplane::{
    DecryptRequest, DecryptResponse, EncryptRequest, EncryptionAlgorithm, EncryptionContext,
    Engine, GenerateDataKeyRequest, GenerateDataKeyResponse, ReEncryptRequest,
};

use super::json::{Input, Out};
use super::members::refuse_unsupported;
use super::reply::Fault;

/// Room for a response holding `secret` bytes as base64 plus its other members, so that writing
/// it never reallocates.
pub(crate) fn capacity_for(secret: usize) -> usize {
    secret.div_ceil(3) * 4 + 1024
}

pub(crate) fn encrypt_request<'a>(
    input: &'a Input,
    context: Option<&'a EncryptionContext>,
) -> Result<EncryptRequest<'a>, Fault> {
    Ok(EncryptRequest {
        key_id: input.req("KeyId"),
        plaintext: input.req_blob("Plaintext"),
        encryption_context: context,
        encryption_algorithm: input
            .enum_value("EncryptionAlgorithm")?
            .unwrap_or(EncryptionAlgorithm::SymmetricDefault),
    })
}

/// Encrypt's answer.
pub(crate) fn encrypted(blob: &[u8], key_arn: &str, algorithm: EncryptionAlgorithm) -> Out {
    let mut out = Out::with_capacity(capacity_for(blob.len()));
    out.blob("CiphertextBlob", blob)
        .str("KeyId", key_arn)
        .str("EncryptionAlgorithm", algorithm.as_str());
    out
}

pub(super) fn encrypt(engine: &Engine, input: &Input) -> Result<Out, Fault> {
    let context = input.context("EncryptionContext");
    let request = encrypt_request(input, context.as_ref())?;
    let r = engine.encrypt(&request)?;
    Ok(encrypted(
        &r.ciphertext_blob,
        &r.key_id,
        r.encryption_algorithm,
    ))
}

pub(crate) fn decrypt_request<'a>(
    input: &'a Input,
    context: Option<&'a EncryptionContext>,
) -> Result<DecryptRequest<'a>, Fault> {
    refuse_unsupported(input, &["Recipient"])?;
    Ok(DecryptRequest {
        ciphertext_blob: input.req_blob("CiphertextBlob"),
        key_id: input.str("KeyId"),
        encryption_context: context,
        encryption_algorithm: input.enum_value("EncryptionAlgorithm")?,
    })
}

pub(super) fn decrypt(engine: &Engine, input: &Input) -> Result<Out, Fault> {
    let context = input.context("EncryptionContext");
    let request = decrypt_request(input, context.as_ref())?;
    Ok(decrypted(&engine.decrypt(&request)?))
}

/// Decrypt's answer.
pub(crate) fn decrypted(r: &DecryptResponse) -> Out {
    let mut out = Out::with_capacity(capacity_for(r.plaintext.expose().len()));
    out.str("KeyId", &r.key_id)
        .blob("Plaintext", r.plaintext.expose())
        .str("EncryptionAlgorithm", r.encryption_algorithm.as_str())
        .str("KeyMaterialId", &r.key_material_id);
    out
}

pub(super) fn re_encrypt(engine: &Engine, input: &Input) -> Result<Out, Fault> {
    let source_context = input.context("SourceEncryptionContext");
    let destination_context = input.context("DestinationEncryptionContext");
    let request = ReEncryptRequest {
        ciphertext_blob: input.req_blob("CiphertextBlob"),
        source_key_id: input.str("SourceKeyId"),
        source_encryption_context: source_context.as_ref(),
        source_encryption_algorithm: input.enum_value("SourceEncryptionAlgorithm")?,
        destination_key_id: input.req("DestinationKeyId"),
        destination_encryption_context: destination_context.as_ref(),
        destination_encryption_algorithm: input
            .enum_value("DestinationEncryptionAlgorithm")?
            .unwrap_or(EncryptionAlgorithm::SymmetricDefault),
    };
    let r = engine.re_encrypt(&request)?;
    let mut out = Out::with_capacity(capacity_for(r.ciphertext_blob.len()));
    out.blob("CiphertextBlob", &r.ciphertext_blob)
        .str("SourceKeyId", &r.source_key_id)
        .str("KeyId", &r.key_id)
        .str(
            "SourceEncryptionAlgorithm",
            r.source_encryption_algorithm.as_str(),
        )
        .str(
            "DestinationEncryptionAlgorithm",
            r.destination_encryption_algorithm.as_str(),
        )
        .str("SourceKeyMaterialId", &r.source_key_material_id)
        .str("DestinationKeyMaterialId", &r.destination_key_material_id);
    Ok(out)
}

pub(crate) fn data_key_request<'a>(
    input: &'a Input,
    context: Option<&'a EncryptionContext>,
) -> Result<GenerateDataKeyRequest<'a>, Fault> {
    refuse_unsupported(input, &["Recipient"])?;
    Ok(GenerateDataKeyRequest {
        key_id: input.req("KeyId"),
        encryption_context: context,
        key_spec: input.enum_value("KeySpec")?,
        number_of_bytes: input.usize("NumberOfBytes")?,
    })
}

pub(super) fn generate_data_key(engine: &Engine, input: &Input) -> Result<Out, Fault> {
    let context = input.context("EncryptionContext");
    let request = data_key_request(input, context.as_ref())?;
    Ok(data_key(&engine.generate_data_key(&request)?))
}

/// GenerateDataKey's answer.
pub(crate) fn data_key(r: &GenerateDataKeyResponse) -> Out {
    let mut out = Out::with_capacity(capacity_for(
        r.ciphertext_blob.len() + r.plaintext.expose().len(),
    ));
    out.blob("CiphertextBlob", &r.ciphertext_blob)
        .blob("Plaintext", r.plaintext.expose())
        .str("KeyId", &r.key_id)
        .str("KeyMaterialId", &r.key_material_id);
    out
}

pub(super) fn generate_data_key_without_plaintext(
    engine: &Engine,
    input: &Input,
) -> Result<Out, Fault> {
    let context = input.context("EncryptionContext");
    let request = data_key_request(input, context.as_ref())?;
    let r = engine.generate_data_key_without_plaintext(&request)?;
    let mut out = Out::with_capacity(capacity_for(r.ciphertext_blob.len()));
    out.blob("CiphertextBlob", &r.ciphertext_blob)
        .str("KeyId", &r.key_id)
        .str("KeyMaterialId", &r.key_material_id);
    Ok(out)
}

pub(super) fn generate_random(engine: &Engine, input: &Input) -> Result<Out, Fault> {
    refuse_unsupported(input, &["Recipient"])?;
    let Some(n) = input.usize("NumberOfBytes")? else {
        // The model leaves it optional; the engine needs a count.
        return Err(
            keyplane::Error::Validation("GenerateRandom needs NumberOfBytes".into()).into(),
        );
    };
    let bytes = zeroize::Zeroizing::new(match input.str("CustomKeyStoreId") {
        Some(store) => engine.generate_random_from_custom_key_store(store, n)?,
        None => engine.generate_random(n)?,
    });
    let mut out = Out::with_capacity(capacity_for(bytes.len()));
    out.blob("Plaintext", &bytes);
    Ok(out)
}
