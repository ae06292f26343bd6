//! Single data-plane calls: Encrypt, Decrypt, ReEncrypt, GenerateDataKey(WithoutPlaintext),
//! GenerateDataKeyPair(WithoutPlaintext), GenerateRandom, Sign, Verify, GetPublicKey, GenerateMac,
//! VerifyMac, DeriveSharedSecret. Each returns the service's response dictionary. Secrets
//! (`Plaintext`, `PrivateKeyPlaintext`, `SharedSecret`) are `bytes`, or `SecretBytes` with
//! `secret=True`. The GIL is released for inputs of at least [`LARGE_INPUT`] bytes and for
//! asymmetric work (key pair generation, signing, verification, key agreement).

use keyplane::{
    DecryptRequest, DeriveSharedSecretRequest, EncryptRequest, EncryptionAlgorithm,
    GenerateDataKeyPairRequest, GenerateDataKeyRequest, GenerateMacRequest, MessageType,
    ReEncryptRequest, SecretBytes, SignRequest, VerifyMacRequest, VerifyRequest,
};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict};

use crate::convert::{context, customer_master_key_spec, input, parse, parse_opt, Out};
use crate::engine::{Engine, LARGE_INPUT};
use crate::errors::{validation, Result};

/// A secret as `bytes` (copied; the engine's copy is zeroed) or as a `SecretBytes`.
pub(crate) fn secret_value(
    py: Python<'_>,
    secret: SecretBytes,
    as_object: bool,
) -> PyResult<Py<PyAny>> {
    if as_object {
        Ok(Py::new(py, crate::secret::SecretBytes::new(secret))?.into_any())
    } else {
        Ok(PyBytes::new(py, secret.expose()).into_any().unbind())
    }
}

fn message_type(value: Option<&str>) -> Result<MessageType> {
    Ok(parse_opt(value)?.unwrap_or(MessageType::Raw))
}

#[pymethods]
impl Engine {
    /// Encrypt.
    #[pyo3(signature = (*, key_id, plaintext, encryption_context = None, encryption_algorithm = None))]
    fn encrypt<'py>(
        &self,
        py: Python<'py>,
        key_id: &str,
        plaintext: &Bound<'py, PyAny>,
        encryption_context: Option<&Bound<'py, PyAny>>,
        encryption_algorithm: Option<&str>,
    ) -> Result<Bound<'py, PyDict>> {
        let plaintext = input(plaintext, "plaintext")?;
        let context = context(encryption_context)?;
        let request = EncryptRequest {
            key_id,
            plaintext: &plaintext,
            encryption_context: context.as_ref(),
            encryption_algorithm: parse_opt(encryption_algorithm)?
                .unwrap_or(EncryptionAlgorithm::SymmetricDefault),
        };
        let r = self.call(py, "Encrypt", plaintext.len() >= LARGE_INPUT, |e| {
            e.encrypt(&request)
        })?;
        Ok(Out::new(py)
            .bytes("CiphertextBlob", &r.ciphertext_blob)?
            .set("KeyId", &r.key_id)?
            .set("EncryptionAlgorithm", r.encryption_algorithm.as_str())?
            .done())
    }

    /// Decrypt.
    #[pyo3(signature = (*, ciphertext_blob, encryption_context = None, key_id = None, encryption_algorithm = None, secret = false))]
    fn decrypt<'py>(
        &self,
        py: Python<'py>,
        ciphertext_blob: &Bound<'py, PyAny>,
        encryption_context: Option<&Bound<'py, PyAny>>,
        key_id: Option<&str>,
        encryption_algorithm: Option<&str>,
        secret: bool,
    ) -> Result<Bound<'py, PyDict>> {
        let blob = input(ciphertext_blob, "ciphertext_blob")?;
        let context = context(encryption_context)?;
        let request = DecryptRequest {
            ciphertext_blob: &blob,
            key_id,
            encryption_context: context.as_ref(),
            encryption_algorithm: parse_opt(encryption_algorithm)?,
        };
        let r = self.call(py, "Decrypt", blob.len() >= LARGE_INPUT, |e| {
            e.decrypt(&request)
        })?;
        Ok(Out::new(py)
            .set("KeyId", &r.key_id)?
            .set("Plaintext", secret_value(py, r.plaintext, secret)?)?
            .set("EncryptionAlgorithm", r.encryption_algorithm.as_str())?
            .set("KeyMaterialId", &r.key_material_id)?
            .done())
    }

    /// ReEncrypt.
    #[pyo3(signature = (*, ciphertext_blob, destination_key_id, source_encryption_context = None, source_key_id = None, destination_encryption_context = None, source_encryption_algorithm = None, destination_encryption_algorithm = None))]
    fn re_encrypt<'py>(
        &self,
        py: Python<'py>,
        ciphertext_blob: &Bound<'py, PyAny>,
        destination_key_id: &str,
        source_encryption_context: Option<&Bound<'py, PyAny>>,
        source_key_id: Option<&str>,
        destination_encryption_context: Option<&Bound<'py, PyAny>>,
        source_encryption_algorithm: Option<&str>,
        destination_encryption_algorithm: Option<&str>,
    ) -> Result<Bound<'py, PyDict>> {
        let blob = input(ciphertext_blob, "ciphertext_blob")?;
        let source_context = context(source_encryption_context)?;
        let destination_context = context(destination_encryption_context)?;
        let request = ReEncryptRequest {
            ciphertext_blob: &blob,
            source_key_id,
            source_encryption_context: source_context.as_ref(),
            source_encryption_algorithm: parse_opt(source_encryption_algorithm)?,
            destination_key_id,
            destination_encryption_context: destination_context.as_ref(),
            destination_encryption_algorithm: parse_opt(destination_encryption_algorithm)?
                .unwrap_or(EncryptionAlgorithm::SymmetricDefault),
        };
        let r = self.call(py, "ReEncrypt", blob.len() >= LARGE_INPUT, |e| {
            e.re_encrypt(&request)
        })?;
        Ok(Out::new(py)
            .bytes("CiphertextBlob", &r.ciphertext_blob)?
            .set("SourceKeyId", &r.source_key_id)?
            .set("KeyId", &r.key_id)?
            .set(
                "SourceEncryptionAlgorithm",
                r.source_encryption_algorithm.as_str(),
            )?
            .set(
                "DestinationEncryptionAlgorithm",
                r.destination_encryption_algorithm.as_str(),
            )?
            .set("SourceKeyMaterialId", &r.source_key_material_id)?
            .set("DestinationKeyMaterialId", &r.destination_key_material_id)?
            .done())
    }

    /// GenerateDataKey.
    #[pyo3(signature = (*, key_id, encryption_context = None, number_of_bytes = None, key_spec = None, secret = false))]
    fn generate_data_key<'py>(
        &self,
        py: Python<'py>,
        key_id: &str,
        encryption_context: Option<&Bound<'py, PyAny>>,
        number_of_bytes: Option<usize>,
        key_spec: Option<&str>,
        secret: bool,
    ) -> Result<Bound<'py, PyDict>> {
        let context = context(encryption_context)?;
        let request = GenerateDataKeyRequest {
            key_id,
            encryption_context: context.as_ref(),
            key_spec: parse_opt(key_spec)?,
            number_of_bytes,
        };
        let r = self.call(py, "GenerateDataKey", false, |e| {
            e.generate_data_key(&request)
        })?;
        Ok(Out::new(py)
            .bytes("CiphertextBlob", &r.ciphertext_blob)?
            .set("Plaintext", secret_value(py, r.plaintext, secret)?)?
            .set("KeyId", &r.key_id)?
            .set("KeyMaterialId", &r.key_material_id)?
            .done())
    }

    /// GenerateDataKeyWithoutPlaintext.
    #[pyo3(signature = (*, key_id, encryption_context = None, key_spec = None, number_of_bytes = None))]
    fn generate_data_key_without_plaintext<'py>(
        &self,
        py: Python<'py>,
        key_id: &str,
        encryption_context: Option<&Bound<'py, PyAny>>,
        key_spec: Option<&str>,
        number_of_bytes: Option<usize>,
    ) -> Result<Bound<'py, PyDict>> {
        let context = context(encryption_context)?;
        let request = GenerateDataKeyRequest {
            key_id,
            encryption_context: context.as_ref(),
            key_spec: parse_opt(key_spec)?,
            number_of_bytes,
        };
        let r = self.call(py, "GenerateDataKeyWithoutPlaintext", false, |e| {
            e.generate_data_key_without_plaintext(&request)
        })?;
        Ok(Out::new(py)
            .bytes("CiphertextBlob", &r.ciphertext_blob)?
            .set("KeyId", &r.key_id)?
            .set("KeyMaterialId", &r.key_material_id)?
            .done())
    }

    /// GenerateDataKeyPair.
    #[pyo3(signature = (*, key_id, key_pair_spec, encryption_context = None, secret = false))]
    fn generate_data_key_pair<'py>(
        &self,
        py: Python<'py>,
        key_id: &str,
        key_pair_spec: &str,
        encryption_context: Option<&Bound<'py, PyAny>>,
        secret: bool,
    ) -> Result<Bound<'py, PyDict>> {
        self.data_key_pair(py, key_id, key_pair_spec, encryption_context, Some(secret))
    }

    /// GenerateDataKeyPairWithoutPlaintext.
    #[pyo3(signature = (*, key_id, key_pair_spec, encryption_context = None))]
    fn generate_data_key_pair_without_plaintext<'py>(
        &self,
        py: Python<'py>,
        key_id: &str,
        key_pair_spec: &str,
        encryption_context: Option<&Bound<'py, PyAny>>,
    ) -> Result<Bound<'py, PyDict>> {
        self.data_key_pair(py, key_id, key_pair_spec, encryption_context, None)
    }

    /// GenerateRandom.
    #[pyo3(signature = (*, number_of_bytes = None, custom_key_store_id = None))]
    fn generate_random<'py>(
        &self,
        py: Python<'py>,
        number_of_bytes: Option<usize>,
        custom_key_store_id: Option<&str>,
    ) -> Result<Bound<'py, PyDict>> {
        let n = number_of_bytes.ok_or_else(|| validation("GenerateRandom needs NumberOfBytes"))?;
        let bytes = self.call(py, "GenerateRandom", false, |e| match custom_key_store_id {
            Some(store) => e.generate_random_from_custom_key_store(store, n),
            None => e.generate_random(n),
        })?;
        Ok(Out::new(py).bytes("Plaintext", &bytes)?.done())
    }

    /// Sign.
    #[pyo3(signature = (*, key_id, message, signing_algorithm, message_type = None))]
    fn sign<'py>(
        &self,
        py: Python<'py>,
        key_id: &str,
        message: &Bound<'py, PyAny>,
        signing_algorithm: &str,
        message_type: Option<&str>,
    ) -> Result<Bound<'py, PyDict>> {
        let message = input(message, "message")?;
        let request = SignRequest {
            key_id,
            message: &message,
            message_type: self::message_type(message_type)?,
            signing_algorithm: parse(signing_algorithm)?,
        };
        let r = self.call(py, "Sign", true, |e| e.sign(&request))?;
        Ok(Out::new(py)
            .set("KeyId", &r.key_id)?
            .bytes("Signature", &r.signature)?
            .set("SigningAlgorithm", r.signing_algorithm.as_str())?
            .done())
    }

    /// Verify: an invalid signature raises KMSInvalidSignatureException, as in the service.
    #[pyo3(signature = (*, key_id, message, signature, signing_algorithm, message_type = None))]
    fn verify<'py>(
        &self,
        py: Python<'py>,
        key_id: &str,
        message: &Bound<'py, PyAny>,
        signature: &Bound<'py, PyAny>,
        signing_algorithm: &str,
        message_type: Option<&str>,
    ) -> Result<Bound<'py, PyDict>> {
        let message = input(message, "message")?;
        let signature = input(signature, "signature")?;
        let request = VerifyRequest {
            key_id,
            message: &message,
            message_type: self::message_type(message_type)?,
            signature: &signature,
            signing_algorithm: parse(signing_algorithm)?,
        };
        let r = self.call(py, "Verify", true, |e| e.verify(&request))?;
        Ok(Out::new(py)
            .set("KeyId", &r.key_id)?
            .set("SignatureValid", r.signature_valid)?
            .set("SigningAlgorithm", r.signing_algorithm.as_str())?
            .done())
    }

    /// GetPublicKey.
    #[pyo3(signature = (*, key_id))]
    fn get_public_key<'py>(&self, py: Python<'py>, key_id: &str) -> Result<Bound<'py, PyDict>> {
        let r = self.call(py, "GetPublicKey", false, |e| e.get_public_key(key_id))?;
        Ok(Out::new(py)
            .set("KeyId", &r.key_id)?
            .bytes("PublicKey", &r.public_key)?
            .opt(
                "CustomerMasterKeySpec",
                customer_master_key_spec(r.key_spec),
            )?
            .set("KeySpec", r.key_spec.as_str())?
            .set("KeyUsage", r.key_usage.as_str())?
            .names("EncryptionAlgorithms", &r.encryption_algorithms)?
            .names("SigningAlgorithms", &r.signing_algorithms)?
            .names("KeyAgreementAlgorithms", &r.key_agreement_algorithms)?
            .done())
    }

    /// GenerateMac.
    #[pyo3(signature = (*, key_id, message, mac_algorithm))]
    fn generate_mac<'py>(
        &self,
        py: Python<'py>,
        key_id: &str,
        message: &Bound<'py, PyAny>,
        mac_algorithm: &str,
    ) -> Result<Bound<'py, PyDict>> {
        let message = input(message, "message")?;
        let request = GenerateMacRequest {
            key_id,
            message: &message,
            mac_algorithm: parse(mac_algorithm)?,
        };
        let r = self.call(py, "GenerateMac", message.len() >= LARGE_INPUT, |e| {
            e.generate_mac(&request)
        })?;
        Ok(Out::new(py)
            .bytes("Mac", &r.mac)?
            .set("MacAlgorithm", r.mac_algorithm.as_str())?
            .set("KeyId", &r.key_id)?
            .done())
    }

    /// VerifyMac: a MAC that does not verify raises KMSInvalidMacException, as in the service.
    #[pyo3(signature = (*, key_id, message, mac, mac_algorithm))]
    fn verify_mac<'py>(
        &self,
        py: Python<'py>,
        key_id: &str,
        message: &Bound<'py, PyAny>,
        mac: &Bound<'py, PyAny>,
        mac_algorithm: &str,
    ) -> Result<Bound<'py, PyDict>> {
        let message = input(message, "message")?;
        let mac = input(mac, "mac")?;
        let request = VerifyMacRequest {
            key_id,
            message: &message,
            mac: &mac,
            mac_algorithm: parse(mac_algorithm)?,
        };
        let r = self.call(py, "VerifyMac", message.len() >= LARGE_INPUT, |e| {
            e.verify_mac(&request)
        })?;
        Ok(Out::new(py)
            .set("KeyId", &r.key_id)?
            .set("MacValid", r.mac_valid)?
            .set("MacAlgorithm", r.mac_algorithm.as_str())?
            .done())
    }

    /// DeriveSharedSecret.
    #[pyo3(signature = (*, key_id, key_agreement_algorithm, public_key, secret = false))]
    fn derive_shared_secret<'py>(
        &self,
        py: Python<'py>,
        key_id: &str,
        key_agreement_algorithm: &str,
        public_key: &Bound<'py, PyAny>,
        secret: bool,
    ) -> Result<Bound<'py, PyDict>> {
        let public_key = input(public_key, "public_key")?;
        let request = DeriveSharedSecretRequest {
            key_id,
            key_agreement_algorithm: parse(key_agreement_algorithm)?,
            public_key: &public_key,
        };
        let r = self.call(py, "DeriveSharedSecret", true, |e| {
            e.derive_shared_secret(&request)
        })?;
        Ok(Out::new(py)
            .set("KeyId", &r.key_id)?
            .set("SharedSecret", secret_value(py, r.shared_secret, secret)?)?
            .set("KeyAgreementAlgorithm", r.key_agreement_algorithm.as_str())?
            .set("KeyOrigin", r.key_origin.as_str())?
            .done())
    }
}

impl Engine {
    /// GenerateDataKeyPair (`with_plaintext` is `Some(secret)`) or its WithoutPlaintext form.
    fn data_key_pair<'py>(
        &self,
        py: Python<'py>,
        key_id: &str,
        key_pair_spec: &str,
        encryption_context: Option<&Bound<'py, PyAny>>,
        with_plaintext: Option<bool>,
    ) -> Result<Bound<'py, PyDict>> {
        let context = context(encryption_context)?;
        let request = GenerateDataKeyPairRequest {
            key_id,
            encryption_context: context.as_ref(),
            key_pair_spec: parse(key_pair_spec)?,
        };
        let operation = match with_plaintext {
            Some(_) => "GenerateDataKeyPair",
            None => "GenerateDataKeyPairWithoutPlaintext",
        };
        let r = self.call(py, operation, true, |e| match with_plaintext {
            Some(_) => e.generate_data_key_pair(&request),
            None => e.generate_data_key_pair_without_plaintext(&request),
        })?;
        let private = match (r.private_key_plaintext, with_plaintext) {
            (Some(p), Some(secret)) => Some(secret_value(py, p, secret)?),
            _ => None,
        };
        Ok(Out::new(py)
            .bytes("PrivateKeyCiphertextBlob", &r.private_key_ciphertext_blob)?
            .opt("PrivateKeyPlaintext", private)?
            .bytes("PublicKey", &r.public_key)?
            .set("KeyId", &r.key_id)?
            .set("KeyPairSpec", r.key_pair_spec.as_str())?
            .set("KeyMaterialId", &r.key_material_id)?
            .done())
    }
}
