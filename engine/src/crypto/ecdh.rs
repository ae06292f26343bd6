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
        let private = PrivateKey::from_private_key_der(curve(spec)?, pkcs8.bytes())
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
        check_spki(self.spec, peer_spki_der)?;
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

/// `id-ecPublicKey` (1.2.840.10045.2.1), DER content octets.
const EC_PUBLIC_KEY_OID: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];

fn curve_oid(spec: KeySpec) -> Result<&'static [u8]> {
    match spec {
        KeySpec::EccNistP256 => Ok(&[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07]),
        KeySpec::EccNistP384 => Ok(&[0x2b, 0x81, 0x04, 0x00, 0x22]),
        KeySpec::EccNistP521 => Ok(&[0x2b, 0x81, 0x04, 0x00, 0x23]),
        other => Err(Error::Internal(format!("{other} has no named curve"))),
    }
}

/// Splits one DER TLV (definite lengths up to 2^16) off the front of `input`.
fn tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = match first {
        0..=0x7f => (usize::from(first), rest),
        0x81 => {
            let (&b, rest) = rest.split_first()?;
            (usize::from(b), rest)
        }
        0x82 => {
            let (bytes, rest) = (rest.get(..2)?, rest.get(2..)?);
            (usize::from(bytes[0]) << 8 | usize::from(bytes[1]), rest)
        }
        _ => return None,
    };
    Some((tag, rest.get(..len)?, rest.get(len..)?))
}

/// Accepts exactly one DER SubjectPublicKeyInfo of an EC key on `spec`'s named curve: no
/// trailing bytes, no explicit curve parameters (which could describe another curve).
fn check_spki(spec: KeySpec, der: &[u8]) -> Result<()> {
    let expected = curve_oid(spec)?;
    let well_formed = (|| {
        let (0x30, spki, []) = tlv(der)? else {
            return None;
        };
        let (0x30, algorithm, rest) = tlv(spki)? else {
            return None;
        };
        let (0x06, key_type, parameters) = tlv(algorithm)? else {
            return None;
        };
        let (0x06, named_curve, []) = tlv(parameters)? else {
            return None;
        };
        let (0x03, _point, []) = tlv(rest)? else {
            return None;
        };
        Some(key_type == EC_PUBLIC_KEY_OID && named_curve == expected)
    })();
    match well_formed {
        Some(true) => Ok(()),
        _ => Err(Error::Validation(format!(
            "the peer public key must be one DER SubjectPublicKeyInfo of an EC key on the {spec} \
             named curve"
        ))),
    }
}

impl std::fmt::Debug for AgreementKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AgreementKey {{ key_spec: {} }}", self.spec)
    }
}
