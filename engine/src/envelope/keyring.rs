//! Keyrings: what wraps and unwraps a message's data key, recorded in the header as the
//! Encryption SDK's keyrings record them.
//!
//! * [`KmsKeyring`]: a keyplane key as a KMS key (provider id `aws-kms`, the key ARN as provider
//!   info, the EDK ciphertext the GenerateDataKey/Encrypt ciphertext blob, the message's
//!   encryption context passed to the key).
//! * [`RawAesKeyring`]: an AES-GCM wrapping key (provider id = namespace; provider info = key
//!   name ‖ tag length in bits (u32) ‖ IV length (u32) ‖ IV; ciphertext = wrapped key ‖ tag; the
//!   serialized encryption context as AAD).
//! * [`RawRsaKeyring`]: an RSA wrapping key with OAEP (SHA-1/256/384/512, MGF1 of the same) or
//!   PKCS#1 v1.5 (provider id = namespace, provider info = key name).
//!
//! Wrapping keys are in locked memory (AES: the expanded schedule; RSA: the PKCS#8 form, the
//! parsed key on aws-lc's heap as for every RSA key of the engine); unwrapped data keys go
//! straight into locked memory.

use super::header::{serialize_context, EncryptedDataKey};
use super::suite::{AlgorithmSuite, DATA_KEY_LEN, IV_LEN, TAG_LEN};
use crate::context::EncryptionContext;
use crate::crypto::aes_gcm::AesGcmKey;
use crate::crypto::rsa_wrap::RsaWrappingKey;
use crate::error::{Error, Result};
use crate::key::DataKeySpec;
use crate::locked_memory::{LockPolicy, LockedBytes};
use crate::{DecryptRequest, EncryptRequest, Engine, GenerateDataKeyRequest};

/// The provider id the SDK's KMS keyring writes.
pub const KMS_PROVIDER_ID: &str = "aws-kms";

/// Wraps and unwraps data keys. The first keyring of a message generates its data key.
pub trait Keyring: Send + Sync {
    /// Wraps the message's data key, appending its encrypted data key to `edks`; when `data_key`
    /// is `None` this keyring is the generator and makes the data key first.
    fn on_encrypt(
        &self,
        suite: AlgorithmSuite,
        context: &EncryptionContext,
        data_key: &mut Option<LockedBytes>,
        edks: &mut Vec<EncryptedDataKey>,
    ) -> Result<()>;

    /// Unwraps the first of `edks` that is this keyring's and decrypts; `Ok(None)` when none does.
    fn on_decrypt(
        &self,
        suite: AlgorithmSuite,
        context: &EncryptionContext,
        edks: &[EncryptedDataKey],
    ) -> Result<Option<LockedBytes>>;

    /// A short description for errors and logs (never key bytes).
    fn describe(&self) -> String;
}

fn new_data_key(policy: LockPolicy) -> Result<LockedBytes> {
    LockedBytes::random(DATA_KEY_LEN, policy)
}

// ---- KMS (keyplane keys) ---------------------------------------------------------------------

/// A keyplane symmetric key as the Encryption SDK's KMS keyring uses a KMS key.
pub struct KmsKeyring {
    engine: Engine,
    /// The key as configured (id, ARN or alias), and its ARN; `None`: discovery (decrypt only:
    /// any `aws-kms` data key this engine can decrypt).
    key: Option<(String, String)>,
    policy: LockPolicy,
}

impl KmsKeyring {
    /// A keyring for `key_id` (id, ARN, alias name or alias ARN) of `engine`.
    pub fn new(engine: &Engine, key_id: &str) -> Result<KmsKeyring> {
        let arn = engine.describe_key(key_id)?.arn;
        Ok(KmsKeyring {
            engine: engine.clone(),
            key: Some((key_id.to_string(), arn)),
            policy: LockPolicy::default(),
        })
    }

    /// A decrypt-only keyring that tries every `aws-kms` data key with `engine`.
    pub fn discovery(engine: &Engine) -> KmsKeyring {
        KmsKeyring {
            engine: engine.clone(),
            key: None,
            policy: LockPolicy::default(),
        }
    }
}

impl Keyring for KmsKeyring {
    fn on_encrypt(
        &self,
        _suite: AlgorithmSuite,
        context: &EncryptionContext,
        data_key: &mut Option<LockedBytes>,
        edks: &mut Vec<EncryptedDataKey>,
    ) -> Result<()> {
        let Some((key_id, _)) = &self.key else {
            return Err(Error::Validation(
                "a discovery KMS keyring decrypts only; name a key to encrypt".into(),
            ));
        };
        let ctx = (!context.is_empty()).then_some(context);
        match data_key {
            None => {
                let mut request = GenerateDataKeyRequest::new(key_id, DataKeySpec::Aes256);
                request.encryption_context = ctx;
                let response = self.engine.generate_data_key(&request)?;
                *data_key = Some(LockedBytes::copy_from(
                    response.plaintext.expose(),
                    self.policy,
                )?);
                edks.push(EncryptedDataKey {
                    provider_id: KMS_PROVIDER_ID.into(),
                    provider_info: response.key_id.clone().into_bytes(),
                    ciphertext: response.ciphertext_blob.clone(),
                });
            }
            Some(key) => {
                let mut request = EncryptRequest::new(key_id, key.bytes());
                request.encryption_context = ctx;
                let response = self.engine.encrypt(&request)?;
                edks.push(EncryptedDataKey {
                    provider_id: KMS_PROVIDER_ID.into(),
                    provider_info: response.key_id.into_bytes(),
                    ciphertext: response.ciphertext_blob,
                });
            }
        }
        Ok(())
    }

    fn on_decrypt(
        &self,
        _suite: AlgorithmSuite,
        context: &EncryptionContext,
        edks: &[EncryptedDataKey],
    ) -> Result<Option<LockedBytes>> {
        let ctx = (!context.is_empty()).then_some(context);
        for edk in edks.iter().filter(|e| e.provider_id == KMS_PROVIDER_ID) {
            let Ok(arn) = std::str::from_utf8(&edk.provider_info) else {
                continue;
            };
            if let Some((_, ours)) = &self.key {
                if arn != ours {
                    continue;
                }
            }
            let mut request = DecryptRequest::new(&edk.ciphertext);
            request.key_id = Some(arn);
            request.encryption_context = ctx;
            if let Ok(response) = self.engine.decrypt(&request) {
                if response.plaintext.len() == DATA_KEY_LEN {
                    return Ok(Some(LockedBytes::copy_from(
                        response.plaintext.expose(),
                        self.policy,
                    )?));
                }
            }
        }
        Ok(None)
    }

    fn describe(&self) -> String {
        match &self.key {
            Some((_, arn)) => format!("KMS keyring for {arn}"),
            None => "KMS discovery keyring".into(),
        }
    }
}

impl std::fmt::Debug for KmsKeyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}

// ---- raw AES ---------------------------------------------------------------------------------

/// An AES-GCM wrapping key (128, 192 or 256 bits) named by a namespace and a key name, as the
/// SDK's raw AES keyring.
pub struct RawAesKeyring {
    namespace: String,
    name: String,
    key: AesGcmKey,
    policy: LockPolicy,
}

impl RawAesKeyring {
    /// A keyring for the wrapping key `key` (16, 24 or 32 bytes; the caller zeroes its copy).
    pub fn new(namespace: &str, name: &str, key: &[u8]) -> Result<RawAesKeyring> {
        check_names(namespace, name)?;
        if !matches!(key.len(), 16 | 24 | 32) {
            return Err(Error::Validation(format!(
                "a raw AES wrapping key is 16, 24 or 32 bytes, not {}",
                key.len()
            )));
        }
        let policy = LockPolicy::default();
        Ok(RawAesKeyring {
            namespace: namespace.into(),
            name: name.into(),
            key: AesGcmKey::new(key, policy)?,
            policy,
        })
    }

    fn info_prefix(&self) -> Vec<u8> {
        let mut info = self.name.as_bytes().to_vec();
        info.extend_from_slice(&((TAG_LEN * 8) as u32).to_be_bytes());
        info.extend_from_slice(&(IV_LEN as u32).to_be_bytes());
        info
    }
}

fn check_names(namespace: &str, name: &str) -> Result<()> {
    if namespace.is_empty() || name.is_empty() {
        return Err(Error::Validation(
            "a raw keyring needs a non-empty key namespace and key name".into(),
        ));
    }
    if namespace.starts_with(KMS_PROVIDER_ID) {
        return Err(Error::Validation(
            "a raw keyring's namespace must not begin with \"aws-kms\" (reserved to KMS)".into(),
        ));
    }
    Ok(())
}

impl Keyring for RawAesKeyring {
    fn on_encrypt(
        &self,
        _suite: AlgorithmSuite,
        context: &EncryptionContext,
        data_key: &mut Option<LockedBytes>,
        edks: &mut Vec<EncryptedDataKey>,
    ) -> Result<()> {
        if data_key.is_none() {
            *data_key = Some(new_data_key(self.policy)?);
        }
        let Some(key) = data_key.as_ref() else {
            return Err(Error::Internal("no data key to wrap".into()));
        };
        let aad = serialize_context(context)?;
        let mut iv = [0u8; IV_LEN];
        crate::crypto::random::fill(&mut iv)?;
        let mut ciphertext = vec![0u8; key.len() + TAG_LEN];
        let (ct, tag) = ciphertext.split_at_mut(key.len());
        let tag: &mut [u8; TAG_LEN] = tag
            .try_into()
            .map_err(|_| Error::Internal("tag buffer".into()))?;
        self.key.seal(&iv, &aad, key.bytes(), ct, tag)?;
        let mut provider_info = self.info_prefix();
        provider_info.extend_from_slice(&iv);
        edks.push(EncryptedDataKey {
            provider_id: self.namespace.clone(),
            provider_info,
            ciphertext,
        });
        Ok(())
    }

    fn on_decrypt(
        &self,
        _suite: AlgorithmSuite,
        context: &EncryptionContext,
        edks: &[EncryptedDataKey],
    ) -> Result<Option<LockedBytes>> {
        let prefix = self.info_prefix();
        let aad = serialize_context(context)?;
        for edk in edks {
            if edk.provider_id != self.namespace
                || edk.provider_info.len() != prefix.len() + IV_LEN
                || !edk.provider_info.starts_with(&prefix)
                || edk.ciphertext.len() < TAG_LEN
            {
                continue;
            }
            let mut iv = [0u8; IV_LEN];
            iv.copy_from_slice(&edk.provider_info[prefix.len()..]);
            let (ct, tag) = edk.ciphertext.split_at(edk.ciphertext.len() - TAG_LEN);
            let mut out = LockedBytes::zeroed(ct.len(), self.policy)?;
            if self.key.open(&iv, &aad, ct, tag, out.bytes_mut()).is_ok() {
                return Ok(Some(out));
            }
        }
        Ok(None)
    }

    fn describe(&self) -> String {
        format!("raw AES keyring {}/{}", self.namespace, self.name)
    }
}

impl std::fmt::Debug for RawAesKeyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}

// ---- raw RSA ---------------------------------------------------------------------------------

pub use crate::crypto::rsa_wrap::RsaPadding;

/// An RSA wrapping key, as the SDK's raw RSA keyring: the public key wraps, the private key (if
/// given) unwraps.
pub struct RawRsaKeyring {
    namespace: String,
    name: String,
    padding: RsaPadding,
    key: RsaWrappingKey,
}

fn rsa_rejected(what: &str) -> Error {
    Error::Validation(format!("the raw RSA keyring's {what} could not be parsed"))
}

/// The DER inside a PEM block labelled `label`, or `input` itself when it is not PEM.
pub fn pem_or_der(input: &[u8], label: &str) -> Result<Vec<u8>> {
    use base64::Engine as _;
    let Ok(text) = std::str::from_utf8(input) else {
        return Ok(input.to_vec());
    };
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let Some(start) = text.find(&begin) else {
        if text.contains("-----BEGIN") {
            return Err(Error::Validation(format!(
                "expected a PEM block \"{label}\""
            )));
        }
        return Ok(input.to_vec());
    };
    let body = &text[start + begin.len()..];
    let Some(stop) = body.find(&end) else {
        return Err(Error::Validation(format!(
            "the PEM block \"{label}\" has no end line"
        )));
    };
    let b64: String = body[..stop]
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    base64::engine::general_purpose::STANDARD
        .decode(b64)
        .map_err(|_| Error::Validation(format!("the PEM block \"{label}\" is not base64")))
}

impl RawRsaKeyring {
    /// A keyring that wraps and unwraps with a private key (PKCS#8, DER or PEM `PRIVATE KEY`).
    pub fn with_private_key(
        namespace: &str,
        name: &str,
        padding: RsaPadding,
        pkcs8: &[u8],
    ) -> Result<RawRsaKeyring> {
        check_names(namespace, name)?;
        let mut der = zeroize::Zeroizing::new(pem_or_der(pkcs8, "PRIVATE KEY")?);
        let locked = LockedBytes::copy_from(&der, LockPolicy::default())?;
        zeroize::Zeroize::zeroize(&mut *der);
        let key =
            RsaWrappingKey::from_pkcs8(locked).map_err(|_| rsa_rejected("private key (PKCS#8)"))?;
        Ok(RawRsaKeyring {
            namespace: namespace.into(),
            name: name.into(),
            padding,
            key,
        })
    }

    /// A keyring that only wraps, with a public key (SubjectPublicKeyInfo, DER or PEM
    /// `PUBLIC KEY`).
    pub fn with_public_key(
        namespace: &str,
        name: &str,
        padding: RsaPadding,
        spki: &[u8],
    ) -> Result<RawRsaKeyring> {
        check_names(namespace, name)?;
        let der = pem_or_der(spki, "PUBLIC KEY")?;
        let key = RsaWrappingKey::from_public_der(&der).map_err(|_| rsa_rejected("public key"))?;
        Ok(RawRsaKeyring {
            namespace: namespace.into(),
            name: name.into(),
            padding,
            key,
        })
    }
}

impl Keyring for RawRsaKeyring {
    fn on_encrypt(
        &self,
        _suite: AlgorithmSuite,
        _context: &EncryptionContext,
        data_key: &mut Option<LockedBytes>,
        edks: &mut Vec<EncryptedDataKey>,
    ) -> Result<()> {
        if data_key.is_none() {
            *data_key = Some(new_data_key(LockPolicy::default())?);
        }
        let Some(key) = data_key.as_ref() else {
            return Err(Error::Internal("no data key to wrap".into()));
        };
        let ciphertext = self.key.wrap(self.padding, key)?;
        edks.push(EncryptedDataKey {
            provider_id: self.namespace.clone(),
            provider_info: self.name.clone().into_bytes(),
            ciphertext,
        });
        Ok(())
    }

    fn on_decrypt(
        &self,
        _suite: AlgorithmSuite,
        _context: &EncryptionContext,
        edks: &[EncryptedDataKey],
    ) -> Result<Option<LockedBytes>> {
        if !self.key.can_unwrap() {
            return Ok(None);
        }
        for edk in edks {
            if edk.provider_id != self.namespace || edk.provider_info != self.name.as_bytes() {
                continue;
            }
            if let Some(data_key) = self
                .key
                .unwrap(self.padding, &edk.ciphertext, DATA_KEY_LEN)?
            {
                return Ok(Some(data_key));
            }
        }
        Ok(None)
    }

    fn describe(&self) -> String {
        format!(
            "raw RSA keyring {}/{} ({})",
            self.namespace,
            self.name,
            self.padding.name()
        )
    }
}

impl std::fmt::Debug for RawRsaKeyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}
