//! Digest lines: signed statements of how far the chain has come.
//!
//! A digest line is exactly
//!
//! ```text
//! {"auditDigest":1,"seqFirst":A,"seqLast":B,"lastChain":"<hex>","previousDigest":"<hex>"|null,
//!  "digestTime":"<RFC 3339>","keyFingerprint":"<hex>","signature":"<hex>"}\n
//! ```
//!
//! (on one line). It covers records `A..=B`, the records since the previous digest; `lastChain` is
//! the chain value of record `B`; `previousDigest` is the hex SHA-256 of the previous digest line
//! (its bytes without the newline), `null` for the first digest of a log; `keyFingerprint` is the
//! hex SHA-256 of the signing key's DER SubjectPublicKeyInfo. The *signed bytes* are the line
//! without its trailing `,"signature":"…"` member and newline, i.e. the same object closed right
//! after `keyFingerprint`; `signature` is the hex of the ASN.1 DER ECDSA P-256 signature over
//! them with SHA-256 (AWS-LC's `ECDSA_P256_SHA256_ASN1`).

use serde::Deserialize;

use crate::crypto::digest::sha256;
use crate::crypto::signature::{self, P256Verifier, SigningKey};
use crate::key::{KeySpec, MessageType, SigningAlgorithm};
use crate::locked_memory::{LockPolicy, LockedBytes};

use super::chain::{parse_hex, parse_hex32, to_hex};
use super::AuditError;

/// The `auditDigest` format version this module writes and reads.
pub const DIGEST_VERSION: u32 = 1;
/// What every digest line starts with.
pub(crate) const DIGEST_PREFIX: &[u8] = b"{\"auditDigest\":";
const SIGNATURE_MEMBER: &[u8] = b",\"signature\":\"";
/// Longest hex signature accepted (a DER ECDSA P-256 signature is at most 72 bytes).
const MAX_SIGNATURE_HEX: usize = 2 * 80;

/// What a digest states.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Digest {
    /// First record covered (`seqFirst`).
    pub seq_first: u64,
    /// Last record covered (`seqLast`).
    pub seq_last: u64,
    /// The chain value of record `seq_last` (`lastChain`).
    pub last_chain: [u8; 32],
    /// SHA-256 of the previous digest line (`previousDigest`), `None` for a log's first digest.
    pub previous_digest: Option<[u8; 32]>,
    /// When the digest was made (`digestTime`), RFC 3339 UTC with milliseconds.
    pub digest_time: String,
    /// SHA-256 of the signing key's SubjectPublicKeyInfo DER (`keyFingerprint`).
    pub key_fingerprint: [u8; 32],
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct DigestWire {
    audit_digest: u32,
    seq_first: u64,
    seq_last: u64,
    last_chain: String,
    previous_digest: Option<String>,
    digest_time: String,
    key_fingerprint: String,
}

impl Digest {
    /// The signed bytes: the digest line without its signature member.
    pub fn signed_bytes(&self) -> String {
        let previous = match &self.previous_digest {
            Some(hash) => format!("\"{}\"", to_hex(hash)),
            None => "null".to_string(),
        };
        format!(
            "{{\"auditDigest\":{DIGEST_VERSION},\"seqFirst\":{},\"seqLast\":{},\"lastChain\":\"{}\",\
             \"previousDigest\":{previous},\"digestTime\":{},\"keyFingerprint\":\"{}\"}}",
            self.seq_first,
            self.seq_last,
            to_hex(&self.last_chain),
            serde_json::Value::String(self.digest_time.clone()),
            to_hex(&self.key_fingerprint),
        )
    }
}

/// A digest line taken apart.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct DigestLine {
    /// What it states.
    pub digest: Digest,
    /// The signed bytes as they stand in the line.
    pub signed: Vec<u8>,
    /// The signature.
    pub signature: Vec<u8>,
}

/// Takes a digest line (without its newline) apart; `Err` says what is wrong with its shape.
pub(crate) fn parse_digest_line(line: &[u8]) -> Result<DigestLine, String> {
    if !line.starts_with(DIGEST_PREFIX) || !line.ends_with(b"\"}") {
        return Err("not a digest line".into());
    }
    let member_at = line
        .windows(SIGNATURE_MEMBER.len())
        .rposition(|w| w == SIGNATURE_MEMBER)
        .ok_or("digest line has no signature")?;
    // The member and the closing `"}` may overlap in a damaged line: check before slicing.
    let hex = line
        .get(member_at + SIGNATURE_MEMBER.len()..line.len() - 2)
        .ok_or("digest signature member is cut off")?;
    if hex.is_empty() || hex.len() > MAX_SIGNATURE_HEX {
        return Err("digest signature has the wrong length".into());
    }
    let signature = parse_hex(hex).ok_or("digest signature is not lowercase hex")?;
    let mut signed = line[..member_at].to_vec();
    signed.push(b'}');
    let wire: DigestWire =
        serde_json::from_slice(&signed).map_err(|e| format!("digest is malformed: {e}"))?;
    if wire.audit_digest != DIGEST_VERSION {
        return Err(format!("unknown digest version {}", wire.audit_digest));
    }
    let hash = |name: &str, hex: &str| {
        parse_hex32(hex.as_bytes()).ok_or_else(|| format!("digest {name} is not 64 hex digits"))
    };
    let digest = Digest {
        seq_first: wire.seq_first,
        seq_last: wire.seq_last,
        last_chain: hash("lastChain", &wire.last_chain)?,
        previous_digest: match &wire.previous_digest {
            Some(hex) => Some(hash("previousDigest", hex)?),
            None => None,
        },
        digest_time: wire.digest_time,
        key_fingerprint: hash("keyFingerprint", &wire.key_fingerprint)?,
    };
    if digest.seq_first == 0 || digest.seq_last < digest.seq_first {
        return Err(format!(
            "digest covers no records ({}..{})",
            digest.seq_first, digest.seq_last
        ));
    }
    Ok(DigestLine {
        digest,
        signed,
        signature,
    })
}

/// SHA-256 of a digest line (without its newline): the next digest's `previousDigest`.
pub(crate) fn digest_line_hash(line: &[u8]) -> [u8; 32] {
    sha256(line)
}

/// Hex SHA-256 of a DER SubjectPublicKeyInfo: how digests name the key that signed them.
pub fn key_fingerprint(public_key_spki_der: &[u8]) -> String {
    to_hex(&fingerprint_bytes(public_key_spki_der))
}

fn fingerprint_bytes(public_key_spki_der: &[u8]) -> [u8; 32] {
    digest_line_hash(public_key_spki_der)
}

/// A new ECDSA P-256 audit signing key, as PKCS#8 v1 DER in locked memory (zeroed when
/// dropped), made under `policy`.
pub fn generate_signing_key(policy: LockPolicy) -> Result<LockedBytes, AuditError> {
    signature::generate(KeySpec::EccNistP256, policy)
        .map_err(|e| AuditError::Key(format!("generating the audit signing key failed: {e}")))
}

/// Signs digests with the audit signing key.
///
/// The key is the engine's own signing key type: its PKCS#8 bytes are read from locked memory and
/// not kept; the parsed key lives on AWS-LC's heap (which zeroes it when freed), as every parsed
/// asymmetric key of the engine does.
pub struct DigestSigner {
    key: SigningKey,
    public_der: Vec<u8>,
    fingerprint: [u8; 32],
}

impl std::fmt::Debug for DigestSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DigestSigner {{ key: {} }}", to_hex(&self.fingerprint))
    }
}

impl DigestSigner {
    /// A signer for an ECDSA P-256 private key given as PKCS#8 DER in locked memory.
    pub fn from_pkcs8(pkcs8: &LockedBytes) -> Result<Self, AuditError> {
        let key = SigningKey::from_pkcs8(KeySpec::EccNistP256, pkcs8).map_err(|_| {
            AuditError::Key("the audit signing key is not an ECDSA P-256 PKCS#8 key".into())
        })?;
        let public_der = key.public_key_der().to_vec();
        let fingerprint = fingerprint_bytes(&public_der);
        Ok(DigestSigner {
            key,
            public_der,
            fingerprint,
        })
    }

    /// The public key as DER SubjectPublicKeyInfo: what [`verify`](super::verify()) takes.
    pub fn public_key_der(&self) -> &[u8] {
        &self.public_der
    }

    /// SHA-256 of [`public_key_der`](Self::public_key_der).
    pub fn fingerprint(&self) -> [u8; 32] {
        self.fingerprint
    }

    /// The complete digest line for `digest` (without a newline), signed. The line states
    /// `digest.key_fingerprint` as given, which should be [`fingerprint`](Self::fingerprint).
    pub fn sign_line(&self, digest: &Digest) -> Result<String, AuditError> {
        let mut line = digest.signed_bytes();
        let signature = self
            .key
            .sign(
                SigningAlgorithm::EcdsaSha256,
                MessageType::Raw,
                line.as_bytes(),
            )
            .map_err(|e| AuditError::Key(format!("signing a digest failed: {e}")))?;
        line.pop();
        line.push_str(",\"signature\":\"");
        line.push_str(&to_hex(signature.as_ref()));
        line.push_str("\"}");
        Ok(line)
    }
}

/// Checks digest signatures against one public key.
#[derive(Debug)]
pub(crate) struct DigestVerifier {
    key: P256Verifier,
    fingerprint: [u8; 32],
}

impl DigestVerifier {
    /// A verifier for an ECDSA P-256 public key given as DER SubjectPublicKeyInfo.
    pub fn new(public_key_spki_der: &[u8]) -> Result<Self, AuditError> {
        let key = P256Verifier::new(public_key_spki_der).map_err(|e| {
            AuditError::Key(format!(
                "the audit public key is not an ECDSA P-256 SubjectPublicKeyInfo: {e}"
            ))
        })?;
        Ok(DigestVerifier {
            key,
            fingerprint: fingerprint_bytes(public_key_spki_der),
        })
    }

    /// SHA-256 of the public key's DER.
    pub fn fingerprint(&self) -> [u8; 32] {
        self.fingerprint
    }

    /// Whether `line`'s signature is valid under this key.
    pub fn signature_valid(&self, line: &DigestLine) -> bool {
        self.key.verify(&line.signed, &line.signature)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(signer: &DigestSigner) -> Digest {
        Digest {
            seq_first: 1,
            seq_last: 10,
            last_chain: [7; 32],
            previous_digest: None,
            digest_time: "2024-05-01T12:00:00.000Z".into(),
            key_fingerprint: signer.fingerprint(),
        }
    }

    #[test]
    fn sign_parse_verify_round_trip() {
        let key = generate_signing_key(crate::LockPolicy::default()).unwrap();
        let signer = DigestSigner::from_pkcs8(&key).unwrap();
        let verifier = DigestVerifier::new(signer.public_key_der()).unwrap();
        assert_eq!(verifier.fingerprint(), signer.fingerprint());
        let mut digest = sample(&signer);
        let line = signer.sign_line(&digest).unwrap();
        assert!(line.starts_with("{\"auditDigest\":1,\"seqFirst\":1,\"seqLast\":10,"));
        let parsed = parse_digest_line(line.as_bytes()).unwrap();
        assert_eq!(parsed.digest, digest);
        assert_eq!(parsed.signed, digest.signed_bytes().into_bytes());
        assert!(verifier.signature_valid(&parsed));

        digest.previous_digest = Some(digest_line_hash(line.as_bytes()));
        let second = signer.sign_line(&digest).unwrap();
        let parsed = parse_digest_line(second.as_bytes()).unwrap();
        assert_eq!(parsed.digest.previous_digest, digest.previous_digest);
        assert!(verifier.signature_valid(&parsed));
    }

    #[test]
    fn altered_digest_or_other_key_fails() {
        let key = generate_signing_key(crate::LockPolicy::default()).unwrap();
        let signer = DigestSigner::from_pkcs8(&key).unwrap();
        let verifier = DigestVerifier::new(signer.public_key_der()).unwrap();
        let line = signer.sign_line(&sample(&signer)).unwrap();
        let altered = line.replace("\"seqLast\":10", "\"seqLast\":11");
        assert!(!verifier.signature_valid(&parse_digest_line(altered.as_bytes()).unwrap()));

        let other =
            DigestSigner::from_pkcs8(&generate_signing_key(crate::LockPolicy::default()).unwrap())
                .unwrap();
        let forged = other.sign_line(&sample(&signer)).unwrap();
        assert!(!verifier.signature_valid(&parse_digest_line(forged.as_bytes()).unwrap()));
    }

    #[test]
    fn malformed_digest_lines_are_refused() {
        assert!(parse_digest_line(b"{\"auditDigest\":1}").is_err());
        assert!(parse_digest_line(b"{\"auditDigest\":1,\"signature\":\"zz\"}").is_err());
        let key = generate_signing_key(crate::LockPolicy::default()).unwrap();
        let signer = DigestSigner::from_pkcs8(&key).unwrap();
        let line = signer.sign_line(&sample(&signer)).unwrap();
        let extra = line.replacen("{\"auditDigest\":1,", "{\"auditDigest\":1,\"x\":1,", 1);
        assert!(parse_digest_line(extra.as_bytes()).is_err());
        let empty = line.replace("\"seqFirst\":1", "\"seqFirst\":11");
        assert!(parse_digest_line(empty.as_bytes()).is_err());
    }

    #[test]
    fn bad_keys_are_refused() {
        assert!(matches!(
            DigestSigner::from_pkcs8(
                &LockedBytes::copy_from(b"not a key", LockPolicy::default()).unwrap()
            ),
            Err(AuditError::Key(_))
        ));
        assert!(matches!(
            DigestVerifier::new(b"not a key"),
            Err(AuditError::Key(_))
        ));
    }
}
