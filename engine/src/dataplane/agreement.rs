//! DeriveSharedSecret (ECDH).

use super::plane::DataPlane;
use super::primitive::KeyPrimitive;
use crate::access::request_facts::RequestFacts;
use crate::access::{Action, Caller};
use crate::error::{Error, Result};
use crate::key::{KeyAgreementAlgorithm, KeyUsage, Origin};
use crate::secret::SecretBytes;

/// A DeriveSharedSecret request.
#[derive(Debug, Clone, Copy)]
pub struct DeriveSharedSecretRequest<'a> {
    pub key_id: &'a str,
    pub key_agreement_algorithm: KeyAgreementAlgorithm,
    /// The peer's public key, DER SubjectPublicKeyInfo, on the key's curve.
    pub public_key: &'a [u8],
}

/// DeriveSharedSecret's answer.
#[derive(Debug)]
pub struct DeriveSharedSecretResponse {
    pub key_id: String,
    /// The raw ECDH shared secret (the x coordinate), as the service returns it.
    pub shared_secret: SecretBytes,
    pub key_agreement_algorithm: KeyAgreementAlgorithm,
    pub key_origin: Origin,
}

impl DataPlane {
    pub(crate) fn derive_shared_secret(
        &self,
        caller: &Caller,
        request: &DeriveSharedSecretRequest<'_>,
    ) -> Result<DeriveSharedSecretResponse> {
        self.run_one(caller, |ctx| {
            let key = ctx.resolve(request.key_id, Action::DeriveSharedSecret)?;
            ctx.authorize(key, Action::DeriveSharedSecret, || RequestFacts {
                identifier: Some(request.key_id),
                key_agreement_algorithm: Some(request.key_agreement_algorithm.as_str()),
                ..RequestFacts::default()
            })?;
            key.check_usage(KeyUsage::KeyAgreement, Action::DeriveSharedSecret)?;
            let KeyPrimitive::Agreement(agreement) = &key.current()?.primitive else {
                return Err(Error::InvalidKeyUsage(format!(
                    "{} is not a key agreement key",
                    key.arn
                )));
            };
            Ok(DeriveSharedSecretResponse {
                key_id: key.arn.clone(),
                shared_secret: agreement.derive(request.public_key)?,
                key_agreement_algorithm: request.key_agreement_algorithm,
                key_origin: Origin::AwsKms,
            })
        })
    }
}
