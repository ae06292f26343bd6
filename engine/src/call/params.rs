//! `requestParameters` of each kind of request: names, algorithms, contexts and sizes; never
//! plaintext, keys or secret outputs.

use serde_json::{json, Value};

use crate::dataplane::{
    DecryptRequest, EncryptRequest, GenerateDataKeyPairRequest, GenerateDataKeyRequest,
    ReEncryptRequest,
};
use crate::key::{MacAlgorithm, MessageType, SigningAlgorithm};

pub(crate) fn key(key_id: &str) -> Value {
    json!({ "keyId": key_id })
}

pub(crate) fn key_opt(key_id: Option<&str>) -> Value {
    key_id.map_or(Value::Null, key)
}

pub(crate) fn batch(key_id: Option<&str>, items: usize) -> Value {
    json!({ "keyId": key_id, "itemCount": items })
}

pub(crate) fn encrypt(r: &EncryptRequest<'_>) -> Value {
    json!({
        "keyId": r.key_id,
        "encryptionAlgorithm": r.encryption_algorithm.as_str(),
        "encryptionContext": r.encryption_context,
        "plaintextLength": r.plaintext.len(),
    })
}

pub(crate) fn decrypt(r: &DecryptRequest<'_>) -> Value {
    json!({
        "keyId": r.key_id,
        "encryptionAlgorithm": r.encryption_algorithm.map(|a| a.as_str()),
        "encryptionContext": r.encryption_context,
        "ciphertextLength": r.ciphertext_blob.len(),
    })
}

pub(crate) fn re_encrypt(r: &ReEncryptRequest<'_>) -> Value {
    json!({
        "sourceKeyId": r.source_key_id,
        "destinationKeyId": r.destination_key_id,
        "sourceEncryptionContext": r.source_encryption_context,
        "destinationEncryptionContext": r.destination_encryption_context,
        "destinationEncryptionAlgorithm": r.destination_encryption_algorithm.as_str(),
    })
}

pub(crate) fn data_key(r: &GenerateDataKeyRequest<'_>) -> Value {
    json!({
        "keyId": r.key_id,
        "keySpec": r.key_spec.map(|s| s.as_str()),
        "numberOfBytes": r.number_of_bytes,
        "encryptionContext": r.encryption_context,
    })
}

pub(crate) fn data_key_pair(r: &GenerateDataKeyPairRequest<'_>) -> Value {
    json!({
        "keyId": r.key_id,
        "keyPairSpec": r.key_pair_spec.as_str(),
        "encryptionContext": r.encryption_context,
    })
}

pub(crate) fn sign(
    key_id: &str,
    algorithm: SigningAlgorithm,
    message_type: MessageType,
    message_len: usize,
) -> Value {
    json!({
        "keyId": key_id,
        "signingAlgorithm": algorithm.as_str(),
        "messageType": message_type.as_str(),
        "messageLength": message_len,
    })
}

pub(crate) fn mac(key_id: &str, algorithm: MacAlgorithm, message_len: usize) -> Value {
    json!({
        "keyId": key_id,
        "macAlgorithm": algorithm.as_str(),
        "messageLength": message_len,
    })
}
