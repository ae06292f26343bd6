//! Sign, Verify and GetPublicKey.

use super::chunk::ChunkContext;
use super::keyring::KeyEntry;
use super::plane::DataPlane;
use super::primitive::KeyPrimitive;
use super::tally::KeyTally;
use crate::access::request_facts::RequestFacts;
use crate::access::{Action, Caller};
use crate::crypto::signature::SigningKey;
use crate::error::{Error, Result};
use crate::key::{
    EncryptionAlgorithm, KeyAgreementAlgorithm, KeySpec, KeyUsage, MessageType, SigningAlgorithm,
};
use crate::messages;

/// A Sign request.
#[derive(Clone, Copy)]
pub struct SignRequest<'a> {
    pub key_id: &'a str,
    /// The message (RAW, up to 4096 bytes) or its digest (DIGEST, the algorithm's hash length).
    pub message: &'a [u8],
    pub message_type: MessageType,
    pub signing_algorithm: SigningAlgorithm,
}

impl<'a> SignRequest<'a> {
    /// Signs a RAW message.
    pub fn new(key_id: &'a str, message: &'a [u8], signing_algorithm: SigningAlgorithm) -> Self {
        SignRequest {
            key_id,
            message,
            message_type: MessageType::Raw,
            signing_algorithm,
        }
    }
}

impl std::fmt::Debug for SignRequest<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignRequest")
            .field("key_id", &self.key_id)
            .field(
                "message",
                &format_args!("<{} bytes, redacted>", self.message.len()),
            )
            .field("message_type", &self.message_type)
            .field("signing_algorithm", &self.signing_algorithm)
            .finish()
    }
}

impl std::fmt::Debug for VerifyRequest<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifyRequest")
            .field("key_id", &self.key_id)
            .field(
                "message",
                &format_args!("<{} bytes, redacted>", self.message.len()),
            )
            .field("message_type", &self.message_type)
            .field("signature_len", &self.signature.len())
            .field("signing_algorithm", &self.signing_algorithm)
            .finish()
    }
}

/// Sign's answer.
#[derive(Debug, Clone)]
pub struct SignResponse {
    pub key_id: String,
    /// DER-encoded for ECDSA, as the service returns it; raw for RSA and Ed25519.
    pub signature: Vec<u8>,
    pub signing_algorithm: SigningAlgorithm,
}

/// A Verify request.
#[derive(Clone, Copy)]
pub struct VerifyRequest<'a> {
    pub key_id: &'a str,
    pub message: &'a [u8],
    pub message_type: MessageType,
    pub signature: &'a [u8],
    pub signing_algorithm: SigningAlgorithm,
}

/// Verify's answer; an invalid signature is `Error::InvalidSignature` instead.
#[derive(Debug, Clone)]
pub struct VerifyResponse {
    pub key_id: String,
    pub signature_valid: bool,
    pub signing_algorithm: SigningAlgorithm,
}

/// GetPublicKey's answer.
#[derive(Debug, Clone)]
pub struct GetPublicKeyResponse {
    pub key_id: String,
    /// DER SubjectPublicKeyInfo.
    pub public_key: Vec<u8>,
    pub key_spec: KeySpec,
    pub key_usage: KeyUsage,
    pub encryption_algorithms: Vec<EncryptionAlgorithm>,
    pub signing_algorithms: Vec<SigningAlgorithm>,
    pub key_agreement_algorithms: Vec<KeyAgreementAlgorithm>,
}

/// Resolves the key a Sign or Verify request names, authorizes the request on it and takes its
/// signing key (the steps both share, in the service's order).
fn authorized_signing_key<'k>(
    ctx: &mut ChunkContext<'k>,
    action: Action,
    key_id: &str,
    algorithm: SigningAlgorithm,
    message_type: MessageType,
) -> Result<(&'k SigningKey, &'k KeyEntry)> {
    let key = ctx.resolve(key_id, action)?;
    ctx.authorize(key, action, || RequestFacts {
        identifier: Some(key_id),
        signing_algorithm: Some(algorithm.as_str()),
        message_type: Some(message_type.as_str()),
        ..RequestFacts::default()
    })?;
    Ok((signing_key(key, action)?, key))
}

fn signing_key(key: &KeyEntry, operation: Action) -> Result<&SigningKey> {
    key.check_usage(KeyUsage::SignVerify, operation)?;
    match &key.current()?.primitive {
        KeyPrimitive::Signing(signing) => Ok(signing),
        _ => Err(Error::InvalidKeyUsage(format!(
            "{} is a {} key; it cannot sign",
            key.arn, key.spec
        ))),
    }
}

impl DataPlane {
    fn sign_item<'k>(
        ctx: &mut ChunkContext<'k>,
        request: &SignRequest<'_>,
    ) -> Result<(Vec<u8>, &'k KeyEntry)> {
        let (signing, key) = authorized_signing_key(
            ctx,
            Action::Sign,
            request.key_id,
            request.signing_algorithm,
            request.message_type,
        )?;
        let signature = signing.sign(
            request.signing_algorithm,
            request.message_type,
            request.message,
        )?;
        Ok((signature, key))
    }

    fn verify_item<'k>(
        ctx: &mut ChunkContext<'k>,
        request: &VerifyRequest<'_>,
    ) -> Result<&'k KeyEntry> {
        let (signing, key) = authorized_signing_key(
            ctx,
            Action::Verify,
            request.key_id,
            request.signing_algorithm,
            request.message_type,
        )?;
        let valid = signing.verify(
            request.signing_algorithm,
            request.message_type,
            request.message,
            request.signature,
        )?;
        if !valid {
            return Err(messages::invalid_signature());
        }
        Ok(key)
    }

    pub(crate) fn sign(&self, caller: &Caller, request: &SignRequest<'_>) -> Result<SignResponse> {
        self.run_one(caller, |ctx| {
            let (signature, key) = Self::sign_item(ctx, request)?;
            Ok(SignResponse {
                key_id: key.arn.clone(),
                signature,
                signing_algorithm: request.signing_algorithm,
            })
        })
    }

    pub(crate) fn sign_batch(
        &self,
        caller: &Caller,
        tally: &KeyTally,
        requests: &[SignRequest<'_>],
        check: impl Fn(&SignRequest<'_>) -> Result<()> + Sync,
    ) -> Vec<Result<Vec<u8>>> {
        self.run_batch(caller, tally, requests, check, |ctx, request| {
            Self::sign_item(ctx, request).map(|(signature, _)| signature)
        })
    }

    pub(crate) fn verify(
        &self,
        caller: &Caller,
        request: &VerifyRequest<'_>,
    ) -> Result<VerifyResponse> {
        self.run_one(caller, |ctx| {
            let key = Self::verify_item(ctx, request)?;
            Ok(VerifyResponse {
                key_id: key.arn.clone(),
                signature_valid: true,
                signing_algorithm: request.signing_algorithm,
            })
        })
    }

    pub(crate) fn verify_batch(
        &self,
        caller: &Caller,
        tally: &KeyTally,
        requests: &[VerifyRequest<'_>],
        check: impl Fn(&VerifyRequest<'_>) -> Result<()> + Sync,
    ) -> Vec<Result<()>> {
        self.run_batch(caller, tally, requests, check, |ctx, request| {
            Self::verify_item(ctx, request).map(|_| ())
        })
    }

    pub(crate) fn get_public_key(
        &self,
        caller: &Caller,
        key_id: &str,
    ) -> Result<GetPublicKeyResponse> {
        self.run_one(caller, |ctx| {
            let key = ctx.resolve(key_id, Action::GetPublicKey)?;
            ctx.authorize(key, Action::GetPublicKey, || RequestFacts {
                identifier: Some(key_id),
                ..RequestFacts::default()
            })?;
            crate::key::state::check(crate::key::KeyOperation::Cryptographic, key.state, &key.arn)?;
            let public_key = key
                .current()?
                .primitive
                .public_key_der()
                .ok_or_else(|| {
                    Error::UnsupportedOperation(format!(
                        "{} is a {} key; only asymmetric keys have a public key",
                        key.arn, key.spec
                    ))
                })?
                .to_vec();
            Ok(GetPublicKeyResponse {
                key_id: key.arn.clone(),
                public_key,
                key_spec: key.spec,
                key_usage: key.usage,
                encryption_algorithms: key.spec.encryption_algorithms(key.usage),
                signing_algorithms: key.spec.signing_algorithms(key.usage),
                key_agreement_algorithms: key.spec.key_agreement_algorithms(key.usage),
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_of_requests_never_shows_the_message() {
        let message = b"wire 1000000 to acct 42";
        let sign = SignRequest::new("alias/k", message, SigningAlgorithm::EcdsaSha256);
        let verify = VerifyRequest {
            key_id: "alias/k",
            message,
            message_type: MessageType::Raw,
            signature: b"sig",
            signing_algorithm: SigningAlgorithm::EcdsaSha256,
        };
        for shown in [format!("{sign:?}"), format!("{verify:?}")] {
            assert!(
                !shown.contains("wire") && !shown.contains("119, 105"),
                "{shown}"
            );
            assert!(shown.contains("23 bytes, redacted"), "{shown}");
        }
    }
}
