//! Asymmetric keys: Sign, Verify, GetPublicKey, GenerateDataKeyPair(WithoutPlaintext),
//! DeriveSharedSecret.

use keyplane::{
    DeriveSharedSecretRequest, Engine, GenerateDataKeyPairRequest, MessageType, SignRequest,
    VerifyRequest,
};

use super::dataplane::capacity_for;
use super::json::{Input, Out};
use super::keys::customer_master_key_spec;
use super::members::refuse_unsupported;
use super::reply::Fault;

fn message_type(input: &Input) -> Result<MessageType, Fault> {
    Ok(input.enum_value("MessageType")?.unwrap_or(MessageType::Raw))
}

pub(super) fn sign(engine: &Engine, input: &Input) -> Result<Out, Fault> {
    let request = SignRequest {
        key_id: input.req("KeyId"),
        message: input.req_blob("Message"),
        message_type: message_type(input)?,
        signing_algorithm: input.required_enum("SigningAlgorithm")?,
    };
    let r = engine.sign(&request)?;
    let mut out = Out::with_capacity(capacity_for(r.signature.len()));
    out.str("KeyId", &r.key_id)
        .blob("Signature", &r.signature)
        .str("SigningAlgorithm", r.signing_algorithm.as_str());
    Ok(out)
}

pub(super) fn verify(engine: &Engine, input: &Input) -> Result<Out, Fault> {
    let request = VerifyRequest {
        key_id: input.req("KeyId"),
        message: input.req_blob("Message"),
        message_type: message_type(input)?,
        signature: input.req_blob("Signature"),
        signing_algorithm: input.required_enum("SigningAlgorithm")?,
    };
    let r = engine.verify(&request)?;
    let mut out = Out::new();
    out.str("KeyId", &r.key_id)
        .bool("SignatureValid", r.signature_valid)
        .str("SigningAlgorithm", r.signing_algorithm.as_str());
    Ok(out)
}

pub(super) fn get_public_key(engine: &Engine, input: &Input) -> Result<Out, Fault> {
    let r = engine.get_public_key(input.req("KeyId"))?;
    let mut out = Out::with_capacity(capacity_for(r.public_key.len()));
    out.str("KeyId", &r.key_id)
        .blob("PublicKey", &r.public_key)
        .opt(
            "CustomerMasterKeySpec",
            customer_master_key_spec(r.key_spec),
        )
        .str("KeySpec", r.key_spec.as_str())
        .str("KeyUsage", r.key_usage.as_str())
        .names("EncryptionAlgorithms", &r.encryption_algorithms)
        .names("SigningAlgorithms", &r.signing_algorithms)
        .names("KeyAgreementAlgorithms", &r.key_agreement_algorithms);
    Ok(out)
}

fn data_key_pair(engine: &Engine, input: &Input, with_plaintext: bool) -> Result<Out, Fault> {
    refuse_unsupported(input, &["Recipient"])?;
    let context = input.context("EncryptionContext");
    let request = GenerateDataKeyPairRequest {
        key_id: input.req("KeyId"),
        encryption_context: context.as_ref(),
        key_pair_spec: input.required_enum("KeyPairSpec")?,
    };
    let r = if with_plaintext {
        engine.generate_data_key_pair(&request)?
    } else {
        engine.generate_data_key_pair_without_plaintext(&request)?
    };
    let private = r.private_key_plaintext.as_ref().filter(|_| with_plaintext);
    let mut out = Out::with_capacity(capacity_for(
        r.private_key_ciphertext_blob.len()
            + r.public_key.len()
            + private.map_or(0, |p| p.expose().len()),
    ));
    out.blob("PrivateKeyCiphertextBlob", &r.private_key_ciphertext_blob);
    if let Some(p) = private {
        out.blob("PrivateKeyPlaintext", p.expose());
    }
    out.blob("PublicKey", &r.public_key)
        .str("KeyId", &r.key_id)
        .str("KeyPairSpec", r.key_pair_spec.as_str())
        .str("KeyMaterialId", &r.key_material_id);
    Ok(out)
}

pub(super) fn generate_data_key_pair(engine: &Engine, input: &Input) -> Result<Out, Fault> {
    data_key_pair(engine, input, true)
}

pub(super) fn generate_data_key_pair_without_plaintext(
    engine: &Engine,
    input: &Input,
) -> Result<Out, Fault> {
    data_key_pair(engine, input, false)
}

pub(super) fn derive_shared_secret(engine: &Engine, input: &Input) -> Result<Out, Fault> {
    refuse_unsupported(input, &["Recipient"])?;
    let request = DeriveSharedSecretRequest {
        key_id: input.req("KeyId"),
        key_agreement_algorithm: input.required_enum("KeyAgreementAlgorithm")?,
        public_key: input.req_blob("PublicKey"),
    };
    let r = engine.derive_shared_secret(&request)?;
    let mut out = Out::with_capacity(capacity_for(r.shared_secret.expose().len()));
    out.str("KeyId", &r.key_id)
        .blob("SharedSecret", r.shared_secret.expose())
        .str("KeyAgreementAlgorithm", r.key_agreement_algorithm.as_str())
        .str("KeyOrigin", r.key_origin.as_str());
    Ok(out)
}
