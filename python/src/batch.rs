//! Batch calls: N items in, a list of N results out, in order. An item that fails is an exception
//! object (the class `keyplane.exceptions` has for its error code) in its place; the other items
//! are unaffected. Every batch runs with the GIL released, on the engine's worker pool.

use keyplane::{
    BatchOutputs, EncryptionAlgorithm, GenerateDataKeyRequest, GenerateMacRequest, MessageType,
    ReEncryptRequest, SignRequest, VerifyMacRequest, VerifyRequest,
};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList, PyTuple};

use crate::batch_items::BatchItems;
use crate::convert::{context, inputs, parse, parse_opt, Input};
use crate::data::secret_value;
use crate::engine::Engine;
use crate::errors::{exception, validation, Result};

/// The list of per-item results: `ok(value)` for successes, an exception object for failures.
fn results<'py, T>(
    py: Python<'py>,
    operation: &str,
    items: Vec<keyplane::Result<T>>,
    mut ok: impl FnMut(T) -> PyResult<Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyList>> {
    let list = PyList::empty(py);
    for item in items {
        match item {
            Ok(value) => list.append(ok(value)?)?,
            Err(e) => list.append(exception(py, &e, operation)?)?,
        }
    }
    Ok(list)
}

/// The list of per-item results of a batch run into kept outputs: `ok(bytes)` for successes (the
/// one copy out of the engine's buffer), an exception object for failures.
fn kept_results<'py>(
    py: Python<'py>,
    operation: &str,
    out: &BatchOutputs,
    mut ok: impl FnMut(&[u8]) -> PyResult<Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyList>> {
    let items = out
        .iter()
        .map(|item| match item {
            Ok(bytes) => ok(bytes),
            Err(e) => exception(py, e, operation),
        })
        .collect::<PyResult<Vec<_>>>()?;
    PyList::new(py, items)
}

fn bytes_result(py: Python<'_>, bytes: impl AsRef<[u8]>) -> PyResult<Bound<'_, PyAny>> {
    Ok(PyBytes::new(py, bytes.as_ref()).into_any())
}

/// A verification outcome: True, False for a signature or MAC that does not verify, or the error.
fn verified<'py>(
    py: Python<'py>,
    operation: &str,
    items: Vec<keyplane::Result<()>>,
) -> PyResult<Bound<'py, PyList>> {
    let list = PyList::empty(py);
    for item in items {
        match item {
            Ok(()) => list.append(true)?,
            Err(keyplane::Error::InvalidSignature(_) | keyplane::Error::InvalidMac(_)) => {
                list.append(false)?
            }
            Err(e) => list.append(exception(py, &e, operation)?)?,
        }
    }
    Ok(list)
}

fn same_length(a: &[Input], b: &[Input], what: &str) -> Result<()> {
    if a.len() != b.len() {
        return Err(validation(format!(
            "{} messages but {} {what}",
            a.len(),
            b.len()
        )));
    }
    Ok(())
}

#[pymethods]
impl Engine {
    /// Encrypts every plaintext under one key.
    #[pyo3(signature = (*, key_id, plaintexts, encryption_context = None, encryption_contexts = None, encryption_algorithm = None))]
    fn encrypt_batch<'py>(
        &self,
        py: Python<'py>,
        key_id: &str,
        plaintexts: &Bound<'py, PyAny>,
        encryption_context: Option<&Bound<'py, PyAny>>,
        encryption_contexts: Option<&Bound<'py, PyAny>>,
        encryption_algorithm: Option<&str>,
    ) -> Result<Bound<'py, PyList>> {
        let items = BatchItems::read(
            plaintexts,
            "plaintexts",
            encryption_context,
            encryption_contexts,
            encryption_algorithm,
        )?;
        let requests = items.encrypt_requests(key_id);
        // Into a buffer kept from call to call: nothing allocated per item, no page faulted in
        // once a batch of this shape has run; each ciphertext is copied once, into its `bytes`.
        let mut out = self.kept.ciphertexts.take();
        self.run(py, true, |e| e.encrypt_batch_to(&requests, &mut out));
        let list = kept_results(py, "Encrypt", &out, |b| Ok(PyBytes::new(py, b).into_any()));
        self.kept.ciphertexts.give(out);
        Ok(list?)
    }

    /// Decrypts every ciphertext.
    #[pyo3(signature = (*, ciphertext_blobs, encryption_context = None, encryption_contexts = None, key_id = None, encryption_algorithm = None, secret = false))]
    fn decrypt_batch<'py>(
        &self,
        py: Python<'py>,
        ciphertext_blobs: &Bound<'py, PyAny>,
        encryption_context: Option<&Bound<'py, PyAny>>,
        encryption_contexts: Option<&Bound<'py, PyAny>>,
        key_id: Option<&str>,
        encryption_algorithm: Option<&str>,
        secret: bool,
    ) -> Result<Bound<'py, PyList>> {
        let items = BatchItems::read(
            ciphertext_blobs,
            "ciphertext_blobs",
            encryption_context,
            encryption_contexts,
            encryption_algorithm,
        )?;
        let requests = items.decrypt_requests(key_id);
        // As encrypt_batch: into a kept buffer, each plaintext copied once into its `bytes` (or
        // SecretBytes). The buffer is zeroed after the copies (a memset of what the batch used,
        // small beside the decryption), so no plaintext waits in it for the next call.
        let mut out = self.kept.plaintexts.take();
        self.run(py, true, |e| e.decrypt_batch_to(&requests, &mut out));
        let list = kept_results(py, "Decrypt", &out, |p| {
            if secret {
                let p = keyplane::SecretBytes::from_vec(p.to_vec());
                Ok(secret_value(py, p, true)?.into_bound(py))
            } else {
                Ok(PyBytes::new(py, p).into_any())
            }
        });
        out.clear();
        self.kept.plaintexts.give(out);
        Ok(list?)
    }

    /// Re-encrypts every ciphertext under `destination_key_id`.
    #[pyo3(signature = (*, ciphertext_blobs, destination_key_id, source_encryption_context = None, destination_encryption_context = None, source_key_id = None))]
    fn re_encrypt_batch<'py>(
        &self,
        py: Python<'py>,
        ciphertext_blobs: &Bound<'py, PyAny>,
        destination_key_id: &str,
        source_encryption_context: Option<&Bound<'py, PyAny>>,
        destination_encryption_context: Option<&Bound<'py, PyAny>>,
        source_key_id: Option<&str>,
    ) -> Result<Bound<'py, PyList>> {
        let blobs = inputs(ciphertext_blobs, "ciphertext_blobs")?;
        let source = context(source_encryption_context)?;
        let destination = context(destination_encryption_context)?;
        let requests: Vec<ReEncryptRequest<'_>> = blobs
            .iter()
            .map(|b| ReEncryptRequest {
                ciphertext_blob: b,
                source_key_id,
                source_encryption_context: source.as_ref(),
                source_encryption_algorithm: None,
                destination_key_id,
                destination_encryption_context: destination.as_ref(),
                destination_encryption_algorithm: EncryptionAlgorithm::SymmetricDefault,
            })
            .collect();
        let out = self.run(py, true, |e| e.re_encrypt_batch(&requests));
        Ok(results(py, "ReEncrypt", out, |b| bytes_result(py, b))?)
    }

    /// `count` data keys under one key: `(plaintext SecretBytes, ciphertext bytes)` per item.
    #[pyo3(signature = (*, key_id, count, key_spec = None, number_of_bytes = None, encryption_context = None))]
    fn generate_data_key_batch<'py>(
        &self,
        py: Python<'py>,
        key_id: &str,
        count: usize,
        key_spec: Option<&str>,
        number_of_bytes: Option<usize>,
        encryption_context: Option<&Bound<'py, PyAny>>,
    ) -> Result<Bound<'py, PyList>> {
        let context = context(encryption_context)?;
        let request = GenerateDataKeyRequest {
            key_id,
            encryption_context: context.as_ref(),
            key_spec: parse_opt(key_spec)?,
            number_of_bytes,
        };
        let requests = vec![request; count];
        let out = self.run(py, true, |e| e.generate_data_key_batch(&requests));
        Ok(results(py, "GenerateDataKey", out, |k| {
            let plaintext = secret_value(py, k.plaintext, true)?.into_bound(py);
            let blob = PyBytes::new(py, &k.ciphertext_blob).into_any();
            Ok(PyTuple::new(py, [plaintext, blob])?.into_any())
        })?)
    }

    /// `count` encrypted data keys under one key.
    #[pyo3(signature = (*, key_id, count, key_spec = None, number_of_bytes = None, encryption_context = None))]
    fn generate_data_key_without_plaintext_batch<'py>(
        &self,
        py: Python<'py>,
        key_id: &str,
        count: usize,
        key_spec: Option<&str>,
        number_of_bytes: Option<usize>,
        encryption_context: Option<&Bound<'py, PyAny>>,
    ) -> Result<Bound<'py, PyList>> {
        let context = context(encryption_context)?;
        let request = GenerateDataKeyRequest {
            key_id,
            encryption_context: context.as_ref(),
            key_spec: parse_opt(key_spec)?,
            number_of_bytes,
        };
        let requests = vec![request; count];
        let out = self.run(py, true, |e| {
            e.generate_data_key_without_plaintext_batch(&requests)
        });
        Ok(results(py, "GenerateDataKeyWithoutPlaintext", out, |b| {
            bytes_result(py, b)
        })?)
    }

    /// Signs every message with one key.
    #[pyo3(signature = (*, key_id, messages, signing_algorithm, message_type = None))]
    fn sign_batch<'py>(
        &self,
        py: Python<'py>,
        key_id: &str,
        messages: &Bound<'py, PyAny>,
        signing_algorithm: &str,
        message_type: Option<&str>,
    ) -> Result<Bound<'py, PyList>> {
        let messages = inputs(messages, "messages")?;
        let algorithm = parse(signing_algorithm)?;
        let message_type = parse_opt(message_type)?.unwrap_or(MessageType::Raw);
        let requests: Vec<SignRequest<'_>> = messages
            .iter()
            .map(|m| SignRequest {
                key_id,
                message: m,
                message_type,
                signing_algorithm: algorithm,
            })
            .collect();
        let out = self.run(py, true, |e| e.sign_batch(&requests));
        Ok(results(py, "Sign", out, |b| bytes_result(py, b))?)
    }

    /// Verifies every (message, signature) pair: True, False, or the error.
    #[pyo3(signature = (*, key_id, messages, signatures, signing_algorithm, message_type = None))]
    fn verify_batch<'py>(
        &self,
        py: Python<'py>,
        key_id: &str,
        messages: &Bound<'py, PyAny>,
        signatures: &Bound<'py, PyAny>,
        signing_algorithm: &str,
        message_type: Option<&str>,
    ) -> Result<Bound<'py, PyList>> {
        let messages = inputs(messages, "messages")?;
        let signatures = inputs(signatures, "signatures")?;
        same_length(&messages, &signatures, "signatures")?;
        let algorithm = parse(signing_algorithm)?;
        let message_type = parse_opt(message_type)?.unwrap_or(MessageType::Raw);
        let requests: Vec<VerifyRequest<'_>> = messages
            .iter()
            .zip(&signatures)
            .map(|(m, s)| VerifyRequest {
                key_id,
                message: m,
                message_type,
                signature: s,
                signing_algorithm: algorithm,
            })
            .collect();
        let out = self.run(py, true, |e| e.verify_batch(&requests));
        Ok(verified(py, "Verify", out)?)
    }

    /// HMACs of every message with one key.
    #[pyo3(signature = (*, key_id, messages, mac_algorithm))]
    fn generate_mac_batch<'py>(
        &self,
        py: Python<'py>,
        key_id: &str,
        messages: &Bound<'py, PyAny>,
        mac_algorithm: &str,
    ) -> Result<Bound<'py, PyList>> {
        let messages = inputs(messages, "messages")?;
        let algorithm = parse(mac_algorithm)?;
        let requests: Vec<GenerateMacRequest<'_>> = messages
            .iter()
            .map(|m| GenerateMacRequest {
                key_id,
                message: m,
                mac_algorithm: algorithm,
            })
            .collect();
        let out = self.run(py, true, |e| e.generate_mac_batch(&requests));
        Ok(results(py, "GenerateMac", out, |b| bytes_result(py, b))?)
    }

    /// Verifies every (message, MAC) pair: True, False, or the error.
    #[pyo3(signature = (*, key_id, messages, macs, mac_algorithm))]
    fn verify_mac_batch<'py>(
        &self,
        py: Python<'py>,
        key_id: &str,
        messages: &Bound<'py, PyAny>,
        macs: &Bound<'py, PyAny>,
        mac_algorithm: &str,
    ) -> Result<Bound<'py, PyList>> {
        let messages = inputs(messages, "messages")?;
        let macs = inputs(macs, "macs")?;
        same_length(&messages, &macs, "MACs")?;
        let algorithm = parse(mac_algorithm)?;
        let requests: Vec<VerifyMacRequest<'_>> = messages
            .iter()
            .zip(&macs)
            .map(|(m, mac)| VerifyMacRequest {
                key_id,
                message: m,
                mac,
                mac_algorithm: algorithm,
            })
            .collect();
        let out = self.run(py, true, |e| e.verify_mac_batch(&requests));
        Ok(verified(py, "VerifyMac", out)?)
    }

    /// Random byte strings of the given sizes (1 to 1024 each).
    #[pyo3(signature = (*, sizes))]
    fn generate_random_batch<'py>(
        &self,
        py: Python<'py>,
        sizes: Vec<usize>,
    ) -> Result<Bound<'py, PyList>> {
        let out = self.run(py, true, |e| e.generate_random_batch(&sizes));
        Ok(results(py, "GenerateRandom", out, |b| bytes_result(py, b))?)
    }
}
