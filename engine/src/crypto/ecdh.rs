//! ECDH key agreement on the NIST curves, on aws-lc-rs. The private key's PKCS#8 form is in
//! locked memory; the parsed key is on aws-lc's heap (see `crypto::signature`).

use aws_lc_rs::agreement::{self, PrivateKey, UnparsedPublicKey};
use aws_lc_rs::encoding::{AsDer, Pkcs8V1Der};

use crate::error::{Error, Result};
use crate::key::KeySpec;
use crate::locked_memory::{LockPolicy, LockedBytes};
use crate::secret::SecretBytes;

fn curve(spec: KeySpec) -> Result<&'static agreement::Algorithm> {
    match spec {
        KeySpec::EccNistP256 => Ok(&agreement::ECDH_P256),
        KeySpec::EccNistP384 => Ok(&agreement::ECDH_P384),
        KeySpec::EccNistP521 => Ok(&agreement::ECDH_P521),
        other => Err(Error::Internal(format!(
            "{other} is not a key agreement key spec"
        ))),
    }
}

/// A new ECDH private key as PKCS#8 DER in locked memory.
pub fn generate(spec: KeySpec, policy: LockPolicy) -> Result<LockedBytes> {
    let failed = || Error::Internal(format!("{spec} key generation failed in aws-lc"));
    let key = PrivateKey::generate(curve(spec)?).map_err(|_| failed())?;
    let der: Pkcs8V1Der<'static> = key.as_der().map_err(|_| failed())?;
    LockedBytes::copy_from(der.as_ref(), policy)
}

/// An ECDH private key.
pub struct AgreementKey {
    spec: KeySpec,
    private: PrivateKey,
    public_der: Vec<u8>,
}

impl AgreementKey {
    /// Parses a PKCS#8 EC private key.
    pub fn from_pkcs8(spec: KeySpec, pkcs8: &LockedBytes) -> Result<Self> {
        let rejected = || Error::Internal(format!("stored {spec} private key could not be parsed"));
        let private = PrivateKey::from_private_key_der(curve(spec)?, pkcs8.expose())
            .map_err(|_| rejected())?;
        let public_der = private
            .compute_public_key()
            .map_err(|_| rejected())?
            .as_der()
            .map_err(|_| rejected())?
            .as_ref()
            .to_vec();
        Ok(AgreementKey {
            spec,
            private,
            public_der,
        })
    }

    /// The public key as DER SubjectPublicKeyInfo.
    pub fn public_key_der(&self) -> &[u8] {
        &self.public_der
    }

    /// The raw ECDH shared secret with a peer given as DER SubjectPublicKeyInfo. The peer key must
    /// be a valid point on this key's curve.
    pub fn derive(&self, peer_spki_der: &[u8]) -> Result<SecretBytes> {
        let curve = curve(self.spec)?;
        if peer_spki_der.first() != Some(&0x30) {
            return Err(Error::Validation(
                "the peer public key must be DER SubjectPublicKeyInfo".into(),
            ));
        }
        let peer = UnparsedPublicKey::new(curve, peer_spki_der);
        agreement::agree(&self.private, peer, (), |secret| {
            Ok(SecretBytes::from_vec(secret.to_vec()))
        })
        .map_err(|()| {
            Error::Validation(format!(
                "the peer public key is not a valid {} public key (DER SubjectPublicKeyInfo of a \
                 point on the same curve)",
                self.spec
            ))
        })
    }
}

impl std::fmt::Debug for AgreementKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AgreementKey {{ key_spec: {} }}", self.spec)
    }
}
