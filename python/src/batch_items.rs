//! The items of an encrypt or a decrypt batch, read from the arguments that the allocating call
//! and the `_into` call share (`encrypt_batch` and `encrypt_batch_into`, `decrypt_batch` and
//! `decrypt_batch_into`), and the engine requests they make.

use keyplane::{DecryptRequest, EncryptRequest, EncryptionAlgorithm, EncryptionContext};
use pyo3::prelude::*;

use crate::convert::{context, contexts, inputs, parse_opt, Input};
use crate::errors::Result;

/// A batch's byte inputs (plaintexts or ciphertext blobs), their encryption contexts and the
/// algorithm the caller named.
pub(crate) struct BatchItems {
    pub(crate) inputs: Vec<Input>,
    /// `encryption_context`: every item's context, unless `each` is given.
    shared: Option<EncryptionContext>,
    /// `encryption_contexts`: one context per item.
    each: Option<Vec<Option<EncryptionContext>>>,
    pub(crate) algorithm: Option<EncryptionAlgorithm>,
}

impl BatchItems {
    /// Reads the sequence `inputs` (the argument called `name`), the contexts and the algorithm.
    pub(crate) fn read(
        inputs: &Bound<'_, PyAny>,
        name: &str,
        encryption_context: Option<&Bound<'_, PyAny>>,
        encryption_contexts: Option<&Bound<'_, PyAny>>,
        encryption_algorithm: Option<&str>,
    ) -> Result<Self> {
        let inputs = self::inputs(inputs, name)?;
        let shared = context(encryption_context)?;
        let each = contexts(encryption_contexts, inputs.len())?;
        let algorithm = parse_opt(encryption_algorithm)?;
        Ok(BatchItems {
            inputs,
            shared,
            each,
            algorithm,
        })
    }

    /// The context of item `i`.
    fn context_of(&self, i: usize) -> Option<&EncryptionContext> {
        match &self.each {
            Some(each) => each[i].as_ref(),
            None => self.shared.as_ref(),
        }
    }

    /// The algorithm the plaintexts are encrypted with: the one named, else SYMMETRIC_DEFAULT.
    pub(crate) fn encryption_algorithm(&self) -> EncryptionAlgorithm {
        self.algorithm
            .unwrap_or(EncryptionAlgorithm::SymmetricDefault)
    }

    /// One Encrypt request per input (a plaintext), under `key_id`.
    pub(crate) fn encrypt_requests<'a>(&'a self, key_id: &'a str) -> Vec<EncryptRequest<'a>> {
        let algorithm = self.encryption_algorithm();
        self.inputs
            .iter()
            .enumerate()
            .map(|(i, plaintext)| EncryptRequest {
                key_id,
                plaintext,
                encryption_context: self.context_of(i),
                encryption_algorithm: algorithm,
            })
            .collect()
    }

    /// One Decrypt request per input (a ciphertext blob), naming `key_id` when given.
    pub(crate) fn decrypt_requests<'a>(
        &'a self,
        key_id: Option<&'a str>,
    ) -> Vec<DecryptRequest<'a>> {
        self.inputs
            .iter()
            .enumerate()
            .map(|(i, ciphertext_blob)| DecryptRequest {
                ciphertext_blob,
                key_id,
                encryption_context: self.context_of(i),
                encryption_algorithm: self.algorithm,
            })
            .collect()
    }
}
