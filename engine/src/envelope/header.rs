//! The message header (format versions 1 and 2), its encryption context and encrypted data keys:
//! serialization, and a parser that reads from a stream and checks every field and length.

use std::io::Read;

use super::errors::{self, malformed};
use super::suite::{AlgorithmSuite, COMMITMENT_LEN, IV_LEN, TAG_LEN};
use crate::context::EncryptionContext;
use crate::error::{Error, Result};

/// Content type: a body of one block (read only).
pub const CONTENT_NON_FRAMED: u8 = 0x01;
/// Content type: a framed body.
pub const CONTENT_FRAMED: u8 = 0x02;
/// Largest frame length the format allows (2^31 - 1), as the SDK enforces it.
pub const MAX_FRAME_LENGTH: u32 = i32::MAX as u32;
/// Encryption context key that carries a signed message's public key.
pub const PUBLIC_KEY_CONTEXT_KEY: &str = "aws-crypto-public-key";
/// Context keys with this prefix are reserved to the format.
pub const RESERVED_CONTEXT_PREFIX: &str = "aws-crypto-";

/// One encrypted copy of the message's data key, as a keyring wrote it.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct EncryptedDataKey {
    /// Which keyring wrote it: `aws-kms`, or a raw keyring's namespace.
    pub provider_id: String,
    /// Keyring-specific: a KMS key ARN, a raw keyring's key name (and IV).
    pub provider_info: Vec<u8>,
    /// The wrapped data key.
    pub ciphertext: Vec<u8>,
}

/// A parsed (or to-be-written) message header.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Header {
    /// The algorithm suite; its format version is the header's.
    pub suite: AlgorithmSuite,
    /// 16 bytes (version 1) or 32 bytes (version 2) identifying the message.
    pub message_id: Vec<u8>,
    /// The encryption context, signed public key included.
    pub encryption_context: EncryptionContext,
    /// The wrapped data keys (at least one).
    pub encrypted_data_keys: Vec<EncryptedDataKey>,
    /// Framed body (`true`) or one block (`false`, read only).
    pub framed: bool,
    /// Frame length (0 for a non-framed body).
    pub frame_length: u32,
    /// Version 2: the commitment to the data key.
    pub commitment: Option<[u8; COMMITMENT_LEN]>,
}

fn put_u16_len(out: &mut Vec<u8>, len: usize, what: &str) -> Result<()> {
    let len = u16::try_from(len)
        .map_err(|_| Error::Validation(format!("{what} is longer than 65535 bytes")))?;
    out.extend_from_slice(&len.to_be_bytes());
    Ok(())
}

/// The encryption context as the format serializes it: nothing when empty, else a `u16` count
/// and `u16`-length-prefixed key and value bytes in ascending key order. Also the AAD of the raw
/// AES keyring.
pub fn serialize_context(context: &EncryptionContext) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    if context.is_empty() {
        return Ok(out);
    }
    put_u16_len(
        &mut out,
        context.len(),
        "the encryption context's pair count",
    )?;
    // BTreeMap<String, _> iterates in byte order of the UTF-8 keys, the order the format wants.
    for (key, value) in context {
        put_u16_len(&mut out, key.len(), "an encryption context key")?;
        out.extend_from_slice(key.as_bytes());
        put_u16_len(&mut out, value.len(), "an encryption context value")?;
        out.extend_from_slice(value.as_bytes());
    }
    if out.len() > u16::MAX as usize {
        return Err(Error::Validation(
            "the serialized encryption context is longer than 65535 bytes".into(),
        ));
    }
    Ok(out)
}

/// Parses a serialized encryption context (the exact bytes, nothing after).
pub fn parse_context(bytes: &[u8]) -> Result<EncryptionContext> {
    let mut context = EncryptionContext::new();
    if bytes.is_empty() {
        return Ok(context);
    }
    let mut cur = Cursor { bytes, at: 0 };
    let count = cur.u16()?;
    if count == 0 {
        return Err(malformed(
            "an encryption context of zero pairs must be empty",
        ));
    }
    for _ in 0..count {
        let key = cur.utf8_field("encryption context key")?;
        let value = cur.utf8_field("encryption context value")?;
        if context.insert(key, value).is_some() {
            return Err(malformed("the encryption context repeats a key"));
        }
    }
    if cur.at != bytes.len() {
        return Err(malformed(
            "the encryption context has bytes after its last pair",
        ));
    }
    Ok(context)
}

struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Cursor<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8]> {
        let end = self.at.checked_add(n).filter(|&e| e <= self.bytes.len());
        let Some(end) = end else {
            return Err(malformed(
                "the encryption context is shorter than its lengths say",
            ));
        };
        let out = &self.bytes[self.at..end];
        self.at = end;
        Ok(out)
    }
    fn u16(&mut self) -> Result<u16> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }
    fn utf8_field(&mut self, what: &str) -> Result<String> {
        let len = self.u16()? as usize;
        let b = self.take(len)?;
        String::from_utf8(b.to_vec()).map_err(|_| malformed(format!("an {what} is not UTF-8")))
    }
}

impl Header {
    /// The header's bytes (without its authentication tag).
    pub fn serialize(&self) -> Result<Vec<u8>> {
        let version = self.suite.message_version();
        if self.message_id.len() != self.suite.message_id_len() {
            return Err(Error::Internal(
                "message id length does not fit the suite".into(),
            ));
        }
        let mut out = Vec::with_capacity(256);
        out.push(version);
        if version == 1 {
            out.push(0x80);
        }
        out.extend_from_slice(&self.suite.id().to_be_bytes());
        out.extend_from_slice(&self.message_id);
        let context = serialize_context(&self.encryption_context)?;
        put_u16_len(&mut out, context.len(), "the serialized encryption context")?;
        out.extend_from_slice(&context);
        let count = u16::try_from(self.encrypted_data_keys.len())
            .map_err(|_| Error::Validation("a message has at most 65535 data keys".into()))?;
        out.extend_from_slice(&count.to_be_bytes());
        for edk in &self.encrypted_data_keys {
            put_u16_len(&mut out, edk.provider_id.len(), "a key provider id")?;
            out.extend_from_slice(edk.provider_id.as_bytes());
            put_u16_len(&mut out, edk.provider_info.len(), "a key provider info")?;
            out.extend_from_slice(&edk.provider_info);
            put_u16_len(&mut out, edk.ciphertext.len(), "an encrypted data key")?;
            out.extend_from_slice(&edk.ciphertext);
        }
        out.push(if self.framed {
            CONTENT_FRAMED
        } else {
            CONTENT_NON_FRAMED
        });
        if version == 1 {
            out.extend_from_slice(&[0, 0, 0, 0]);
            out.push(IV_LEN as u8);
        }
        out.extend_from_slice(&self.frame_length.to_be_bytes());
        if version == 2 {
            let Some(commitment) = &self.commitment else {
                return Err(Error::Internal(
                    "a version 2 header needs a commitment".into(),
                ));
            };
            out.extend_from_slice(commitment);
        }
        Ok(out)
    }

    /// Length of the header authentication that follows the header: IV and tag in version 1, the
    /// tag alone in version 2.
    pub fn auth_len(&self) -> usize {
        if self.suite.message_version() == 1 {
            IV_LEN + TAG_LEN
        } else {
            TAG_LEN
        }
    }
}

/// Limits a reader applies while parsing a header from untrusted bytes.
#[derive(Debug, Clone, Copy)]
pub struct HeaderLimits {
    /// Most encrypted data keys accepted (the SDK's `max_encrypted_data_keys`); `None`: 65535.
    pub max_encrypted_data_keys: Option<u16>,
}

/// Reads exactly `buf.len()` bytes, mapping a short read to a truncation error.
pub(crate) fn read_exact(src: &mut dyn Read, buf: &mut [u8]) -> Result<()> {
    src.read_exact(buf).map_err(|e| {
        if e.kind() == std::io::ErrorKind::UnexpectedEof {
            errors::truncated()
        } else {
            super::error_from_io(e)
        }
    })
}

struct Recording<'a> {
    src: &'a mut dyn Read,
    raw: Vec<u8>,
}

impl Recording<'_> {
    fn bytes(&mut self, n: usize) -> Result<&[u8]> {
        let start = self.raw.len();
        self.raw.resize(start + n, 0);
        read_exact(self.src, &mut self.raw[start..])?;
        Ok(&self.raw[start..])
    }
    fn u8(&mut self) -> Result<u8> {
        Ok(self.bytes(1)?[0])
    }
    fn u16(&mut self) -> Result<u16> {
        let b = self.bytes(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }
    fn u32(&mut self) -> Result<u32> {
        let b = self.bytes(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn field(&mut self) -> Result<Vec<u8>> {
        let len = self.u16()? as usize;
        Ok(self.bytes(len)?.to_vec())
    }
}

/// Reads a header from `src`, checking it field by field; returns it and its exact bytes (the
/// associated data of the header authentication). The authentication itself is not read.
pub fn read_header(src: &mut dyn Read, limits: HeaderLimits) -> Result<(Header, Vec<u8>)> {
    let mut r = Recording {
        src,
        raw: Vec::with_capacity(512),
    };
    let version = r.u8()?;
    if version != 1 && version != 2 {
        return Err(malformed(format!(
            "message format version {version} is not 1 or 2 (is this an Encryption SDK message?)"
        )));
    }
    if version == 1 {
        let kind = r.u8()?;
        if kind != 0x80 {
            return Err(malformed(format!("message type 0x{kind:02x} is not 0x80")));
        }
    }
    let id = r.u16()?;
    let suite = AlgorithmSuite::from_id(id).ok_or_else(|| errors::unsupported_suite(id))?;
    if suite.message_version() != version {
        return Err(malformed(format!(
            "suite {suite} belongs to format version {}, not {version}",
            suite.message_version()
        )));
    }
    let message_id = r.bytes(suite.message_id_len())?.to_vec();
    let context_len = r.u16()? as usize;
    let context_bytes = r.bytes(context_len)?.to_vec();
    let encryption_context = parse_context(&context_bytes)?;
    let count = r.u16()? as usize;
    if count == 0 {
        return Err(malformed("the message has no encrypted data keys"));
    }
    if let Some(max) = limits.max_encrypted_data_keys {
        if count > max as usize {
            return Err(errors::too_many_edks(count, max as usize));
        }
    }
    let mut encrypted_data_keys = Vec::with_capacity(count);
    for _ in 0..count {
        let provider_id = String::from_utf8(r.field()?)
            .map_err(|_| malformed("a key provider id is not UTF-8"))?;
        let provider_info = r.field()?;
        let ciphertext = r.field()?;
        encrypted_data_keys.push(EncryptedDataKey {
            provider_id,
            provider_info,
            ciphertext,
        });
    }
    let framed = match r.u8()? {
        CONTENT_FRAMED => true,
        CONTENT_NON_FRAMED => false,
        other => {
            return Err(malformed(format!(
                "content type 0x{other:02x} is not 1 or 2"
            )))
        }
    };
    if version == 1 {
        if r.u32()? != 0 {
            return Err(malformed("the reserved field is not zero"));
        }
        let iv_len = r.u8()?;
        if iv_len as usize != IV_LEN {
            return Err(malformed(format!("IV length {iv_len} is not 12")));
        }
    }
    let frame_length = r.u32()?;
    if framed && (frame_length == 0 || frame_length > MAX_FRAME_LENGTH) {
        return Err(malformed(format!(
            "frame length {frame_length} is out of range"
        )));
    }
    if !framed && frame_length != 0 {
        return Err(malformed("a non-framed message has a frame length"));
    }
    let commitment = if version == 2 {
        let mut c = [0u8; COMMITMENT_LEN];
        c.copy_from_slice(r.bytes(COMMITMENT_LEN)?);
        Some(c)
    } else {
        None
    };
    let header = Header {
        suite,
        message_id,
        encryption_context,
        encrypted_data_keys,
        framed,
        frame_length,
        commitment,
    };
    Ok((header, r.raw))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(suite: AlgorithmSuite) -> Header {
        let mut ctx = EncryptionContext::new();
        ctx.insert("purpose".into(), "test".into());
        ctx.insert("a".into(), "b".into());
        Header {
            suite,
            message_id: vec![7; suite.message_id_len()],
            encryption_context: ctx,
            encrypted_data_keys: vec![EncryptedDataKey {
                provider_id: "ns".into(),
                provider_info: b"name".to_vec(),
                ciphertext: vec![1, 2, 3],
            }],
            framed: true,
            frame_length: 4096,
            commitment: suite.is_committing().then_some([9; 32]),
        }
    }

    #[test]
    fn round_trips_both_versions() {
        for suite in AlgorithmSuite::ALL {
            let h = sample(suite);
            let bytes = h.serialize().unwrap();
            let limits = HeaderLimits {
                max_encrypted_data_keys: None,
            };
            let (parsed, raw) = read_header(&mut bytes.as_slice(), limits).unwrap();
            assert_eq!(parsed, h);
            assert_eq!(raw, bytes);
        }
    }

    #[test]
    fn context_is_sorted_and_empty_is_nothing() {
        let h = sample(AlgorithmSuite::Aes256GcmHkdfSha512CommitKey);
        let c = serialize_context(&h.encryption_context).unwrap();
        assert_eq!(
            c,
            [
                0, 2, 0, 1, b'a', 0, 1, b'b', 0, 7, b'p', b'u', b'r', b'p', b'o', b's', b'e', 0, 4,
                b't', b'e', b's', b't'
            ]
        );
        assert!(serialize_context(&EncryptionContext::new())
            .unwrap()
            .is_empty());
        assert!(parse_context(&[0, 0]).is_err());
    }

    #[test]
    fn edk_limit_is_enforced_before_reading_keys() {
        let mut h = sample(AlgorithmSuite::Aes256GcmHkdfSha512CommitKey);
        h.encrypted_data_keys.push(h.encrypted_data_keys[0].clone());
        let bytes = h.serialize().unwrap();
        let limits = HeaderLimits {
            max_encrypted_data_keys: Some(1),
        };
        let err = read_header(&mut bytes.as_slice(), limits).unwrap_err();
        assert!(matches!(err, Error::LimitExceeded(_)), "{err}");
    }
}
