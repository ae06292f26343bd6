//! GenerateDataKeyPair and GenerateDataKeyPairWithoutPlaintext: a fresh asymmetric key pair whose
//! private key is returned encrypted under a symmetric KMS key (and, for the first, in plaintext).

use super::plane::DataPlane;
use crate::access::request_facts::RequestFacts;
use crate::access::{Action, Caller};
use crate::context::EncryptionContext;
use crate::crypto::signature::{self, SigningKey};
use crate::error::{Error, Result};
use crate::key::{DataKeyPairSpec, EncryptionAlgorithm};
use crate::secret::SecretBytes;

/// A GenerateDataKeyPair request.
#[derive(Debug, Clone, Copy)]
pub struct GenerateDataKeyPairRequest<'a> {
    /// The symmetric key that encrypts the private key.
    pub key_id: &'a str,
    pub encryption_context: Option<&'a EncryptionContext>,
    pub key_pair_spec: DataKeyPairSpec,
}

/// GenerateDataKeyPair's answer.
#[derive(Debug)]
pub struct GenerateDataKeyPairResponse {
    /// The private key (PKCS#8 DER) encrypted under `key_id`.
    pub private_key_ciphertext_blob: Vec<u8>,
    /// The private key, PKCS#8 DER; absent for ...WithoutPlaintext.
    pub private_key_plaintext: Option<SecretBytes>,
    /// DER SubjectPublicKeyInfo.
    pub public_key: Vec<u8>,
    pub key_id: String,
    pub key_pair_spec: DataKeyPairSpec,
    pub key_material_id: String,
}

impl DataPlane {
    pub(crate) fn generate_data_key_pair(
        &self,
        caller: &Caller,
        request: &GenerateDataKeyPairRequest<'_>,
        with_plaintext: bool,
    ) -> Result<GenerateDataKeyPairResponse> {
        let spec = request.key_pair_spec.key_spec();
        if !spec.is_supported() {
            return Err(Error::UnsupportedOperation(format!(
                "data key pair spec {} is not yet supported by this keyplane build",
                request.key_pair_spec
            )));
        }
        self.run_one(caller, |ctx| {
            let action = if with_plaintext {
                Action::GenerateDataKeyPair
            } else {
                Action::GenerateDataKeyPairWithoutPlaintext
            };
            let key = ctx.resolve(request.key_id, action)?;
            ctx.authorize(key, action, || RequestFacts {
                context: request.encryption_context,
                identifier: Some(request.key_id),
                data_key_pair_spec: Some(request.key_pair_spec.as_str()),
                ..RequestFacts::default()
            })?;
            key.check_encrypt_decrypt(action)?;
            let private = signature::generate(spec, self.lock_policy)?;
            let public_key = SigningKey::from_pkcs8(spec, &private)?
                .public_key_der()
                .to_vec();
            let private_key_ciphertext_blob = Self::encrypt_under(
                ctx,
                key,
                action,
                EncryptionAlgorithm::SymmetricDefault,
                private.bytes(),
                request.encryption_context,
            )?;
            Ok(GenerateDataKeyPairResponse {
                private_key_ciphertext_blob,
                private_key_plaintext: with_plaintext
                    .then(|| SecretBytes::from_vec(private.bytes().to_vec())),
                public_key,
                key_id: key.arn.clone(),
                key_pair_spec: request.key_pair_spec,
                key_material_id: key.current()?.material_id.clone(),
            })
        })
    }
}
