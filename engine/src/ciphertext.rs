//! The ciphertext blob: versioned, self-describing, header authenticated.
//!
//! Layout (byte offsets; every integer big-endian; see `docs/ciphertext-format.md`):
//!
//! | offset | len | field |
//! |-------:|----:|-------|
//! | 0      | 1   | format version, `0x01` |
//! | 1      | 1   | algorithm, `0x01` = AES-256-GCM under an HKDF-SHA256-derived key |
//! | 2      | 16  | key id (UUID bytes) |
//! | 18     | 4   | key version |
//! | 22     | 32  | salt (HKDF salt of the derived key) |
//! | 54     | 12  | nonce (a per-derived-key counter) |
//! | 66     | n   | ciphertext (as long as the plaintext) |
//! | 66 + n | 16  | GCM tag |
//!
//! The associated data is the 66-byte header followed by the canonical encryption context, so every
//! header byte and the context are authenticated; the parser checks every length before use.

use uuid::Uuid;

use crate::crypto::aes_gcm::{NONCE_LEN, TAG_LEN};
use crate::error::{Error, Result};

/// Current format version.
pub const FORMAT_VERSION: u8 = 1;
/// AES-256-GCM with a key derived by HKDF-SHA256 from the key version's material and the salt.
pub const ALGORITHM_AES_256_GCM_HKDF_SHA256: u8 = 1;
/// Double encryption for a key in an external key store (`docs/xks.md`): the same header, then
/// a one-byte length and the external key's wrapping of the per-call secret (what the XKS proxy
/// returned), then the body and tag. The key is HKDF-SHA256 of the key version's keyplane-held
/// material and the per-call secret; the associated data is everything before the body.
pub const ALGORITHM_XKS_DOUBLE_ENCRYPTION: u8 = 2;
/// Most bytes of an external key's wrapping of the per-call secret.
pub const MAX_WRAPPED_LEN: usize = 255;
/// Bytes of salt per blob.
pub const SALT_LEN: usize = 32;
/// Header bytes (format version through nonce).
pub const HEADER_LEN: usize = 1 + 1 + 16 + 4 + SALT_LEN + NONCE_LEN;
/// Bytes a blob adds to its plaintext.
pub const OVERHEAD: usize = HEADER_LEN + TAG_LEN;
/// Largest plaintext the format carries; an engine's configured limit is at most this.
pub const MAX_PLAINTEXT_LIMIT: usize = 1 << 20;
/// Largest blob the parser accepts.
pub const MAX_BLOB_LEN: usize = blob_len(MAX_PLAINTEXT_LIMIT);

/// The blob length for a plaintext of `plaintext_len` bytes under
/// [`ALGORITHM_AES_256_GCM_HKDF_SHA256`] (keys keyplane or an HSM holds).
pub const fn blob_len(plaintext_len: usize) -> usize {
    plaintext_len + OVERHEAD
}

/// The blob length for a plaintext of `plaintext_len` bytes under
/// [`ALGORITHM_XKS_DOUBLE_ENCRYPTION`] when the external key's wrapping is `wrapped_len` bytes
/// (known only once the XKS proxy answered; 1 to [`MAX_WRAPPED_LEN`]).
pub const fn double_encrypted_blob_len(plaintext_len: usize, wrapped_len: usize) -> usize {
    blob_len(plaintext_len) + 1 + wrapped_len
}

/// The longest blob of any algorithm for a plaintext of `plaintext_len` bytes: what a buffer
/// needs before the key (or the XKS proxy's answer) is known.
pub const fn max_blob_len(plaintext_len: usize) -> usize {
    double_encrypted_blob_len(plaintext_len, MAX_WRAPPED_LEN)
}

/// Largest blob of any algorithm [`parse_any`] accepts.
pub const MAX_ANY_BLOB_LEN: usize = max_blob_len(MAX_PLAINTEXT_LIMIT);

/// The exact plaintext length of a blob of either algorithm, read from its framing (not
/// authenticated: decryption checks the blob); `None` when it is no keyplane blob.
pub fn plaintext_len_of(blob: &[u8]) -> Option<usize> {
    parse_any(blob).ok().map(|p| p.plaintext_len())
}

/// A parsed, not yet authenticated, blob.
#[derive(Debug)]
pub struct ParsedBlob<'a> {
    pub key_id: Uuid,
    pub key_version: u32,
    pub salt: &'a [u8; SALT_LEN],
    pub nonce: &'a [u8; NONCE_LEN],
    /// The header bytes, authenticated as the start of the associated data.
    pub header: &'a [u8],
    pub body: &'a [u8],
    pub tag: &'a [u8],
    /// [`ALGORITHM_XKS_DOUBLE_ENCRYPTION`] only: the external key's wrapping of the per-call
    /// secret (then also part of `header`, which is authenticated).
    pub wrapped: Option<&'a [u8]>,
}

impl ParsedBlob<'_> {
    /// Plaintext length.
    pub fn plaintext_len(&self) -> usize {
        self.body.len()
    }
}

#[cold]
fn invalid(why: &str) -> Error {
    Error::InvalidCiphertext(format!("the ciphertext blob is not valid: {why}"))
}

/// Parses and bounds-checks an [`ALGORITHM_AES_256_GCM_HKDF_SHA256`] blob; authentication happens
/// at decryption.
///
/// Inlined into its callers (as are [`parse_any`] and the split): returned through memory, the
/// parsed fields were written and read back at once in pieces of other sizes, a store-forwarding
/// stall per copy on every Decrypt.
#[inline(always)]
pub fn parse(blob: &[u8]) -> Result<ParsedBlob<'_>> {
    if blob.len() < OVERHEAD {
        return Err(invalid(
            "it is shorter than the smallest keyplane ciphertext",
        ));
    }
    if blob.len() > MAX_BLOB_LEN {
        return Err(invalid("it is longer than the largest keyplane ciphertext"));
    }
    if blob[0] != FORMAT_VERSION {
        return Err(invalid("unknown format version"));
    }
    if blob[1] != ALGORITHM_AES_256_GCM_HKDF_SHA256 {
        return Err(invalid("unknown algorithm"));
    }
    split(blob, HEADER_LEN)
}

/// Parses a blob of either algorithm: [`parse`]'s, or [`ALGORITHM_XKS_DOUBLE_ENCRYPTION`]'s
/// (whose `header` then runs through the wrapped secret, and whose `wrapped` is set).
#[inline(always)]
pub fn parse_any(blob: &[u8]) -> Result<ParsedBlob<'_>> {
    if blob.len() < 2 || blob[1] != ALGORITHM_XKS_DOUBLE_ENCRYPTION {
        return parse(blob);
    }
    if blob[0] != FORMAT_VERSION {
        return Err(invalid("unknown format version"));
    }
    let wrapped_len = usize::from(*blob.get(HEADER_LEN).ok_or_else(|| invalid("too short"))?);
    let prefix = HEADER_LEN + 1 + wrapped_len;
    if wrapped_len == 0 || blob.len() < double_encrypted_blob_len(1, wrapped_len) {
        return Err(invalid(
            "it is shorter than the smallest external key store ciphertext",
        ));
    }
    if blob.len() > MAX_ANY_BLOB_LEN {
        return Err(invalid("it is longer than the largest keyplane ciphertext"));
    }
    let mut parsed = split(blob, prefix)?;
    parsed.wrapped = Some(&parsed.header[HEADER_LEN + 1..]);
    Ok(parsed)
}

/// The fields every algorithm has at the same offsets, with the authenticated header running to
/// `header_end` and the tag last. `blob` is already known to hold more than `header_end +
/// TAG_LEN` bytes.
#[inline(always)]
fn split(blob: &[u8], header_end: usize) -> Result<ParsedBlob<'_>> {
    let key_id = Uuid::from_slice(&blob[2..18]).map_err(|_| invalid("bad key id"))?;
    let key_version = u32::from_be_bytes(
        blob[18..22]
            .try_into()
            .map_err(|_| invalid("bad key version"))?,
    );
    let salt: &[u8; SALT_LEN] = blob[22..22 + SALT_LEN]
        .try_into()
        .map_err(|_| invalid("bad salt"))?;
    let nonce: &[u8; NONCE_LEN] = blob[22 + SALT_LEN..HEADER_LEN]
        .try_into()
        .map_err(|_| invalid("bad nonce"))?;
    let (header, rest) = blob.split_at(header_end);
    let (body, tag) = rest.split_at(rest.len() - TAG_LEN);
    Ok(ParsedBlob {
        key_id,
        key_version,
        salt,
        nonce,
        header,
        body,
        tag,
        wrapped: None,
    })
}

/// Writes a header into `out[..HEADER_LEN]`.
pub(crate) fn write_header(
    out: &mut [u8],
    key_id: &Uuid,
    key_version: u32,
    salt: &[u8; SALT_LEN],
    nonce: &[u8; NONCE_LEN],
) {
    out[0] = FORMAT_VERSION;
    out[1] = ALGORITHM_AES_256_GCM_HKDF_SHA256;
    out[2..18].copy_from_slice(key_id.as_bytes());
    out[18..22].copy_from_slice(&key_version.to_be_bytes());
    out[22..22 + SALT_LEN].copy_from_slice(salt);
    out[22 + SALT_LEN..HEADER_LEN].copy_from_slice(nonce);
}

/// The key id a blob names, without decrypting it (or authenticating that claim).
pub fn key_id_of(blob: &[u8]) -> Result<Uuid> {
    parse_any(blob).map(|p| p.key_id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trips() {
        let id = Uuid::new_v4();
        let mut blob = vec![0u8; blob_len(3)];
        write_header(&mut blob, &id, 7, &[1; SALT_LEN], &[2; NONCE_LEN]);
        let p = parse(&blob).unwrap();
        assert_eq!((p.key_id, p.key_version), (id, 7));
        assert_eq!(p.salt, &[1; SALT_LEN]);
        assert_eq!(p.nonce, &[2; NONCE_LEN]);
        assert_eq!(p.plaintext_len(), 3);
        assert_eq!(p.header.len(), HEADER_LEN);
    }

    #[test]
    fn double_encrypted_blobs_parse_with_their_wrapping_authenticated() {
        let id = Uuid::new_v4();
        let wrapped = [9u8; 60];
        let mut blob = vec![0u8; HEADER_LEN + 1 + wrapped.len() + 5 + TAG_LEN];
        write_header(&mut blob, &id, 2, &[1; SALT_LEN], &[2; NONCE_LEN]);
        blob[1] = ALGORITHM_XKS_DOUBLE_ENCRYPTION;
        blob[HEADER_LEN] = wrapped.len() as u8;
        blob[HEADER_LEN + 1..HEADER_LEN + 61].copy_from_slice(&wrapped);
        let p = parse_any(&blob).unwrap();
        assert_eq!((p.key_id, p.key_version), (id, 2));
        assert_eq!(p.wrapped, Some(&wrapped[..]));
        assert_eq!(p.header, &blob[..HEADER_LEN + 61]);
        assert_eq!(p.plaintext_len(), 5);
        assert_eq!(key_id_of(&blob).unwrap(), id);
        // The plain parser does not take them, and a wrapping longer than the blob is refused.
        assert!(parse(&blob).is_err());
        blob[HEADER_LEN] = 255;
        assert!(parse_any(&blob).is_err());
        blob[HEADER_LEN] = 0;
        assert!(parse_any(&blob).is_err());
        for len in 0..HEADER_LEN + 2 {
            assert!(parse_any(&blob[..len]).is_err());
        }
    }

    /// The length functions are the parser's framing: a blob built to each length parses back to
    /// its plaintext length, for both algorithms, and `max_blob_len` bounds every wrapping.
    #[test]
    fn blob_lengths_match_the_framing_of_every_algorithm() {
        let id = Uuid::new_v4();
        for plaintext in [1, 17, 4096, MAX_PLAINTEXT_LIMIT] {
            let mut blob = vec![0u8; blob_len(plaintext)];
            write_header(&mut blob, &id, 1, &[1; SALT_LEN], &[2; NONCE_LEN]);
            assert_eq!(plaintext_len_of(&blob), Some(plaintext));
            for wrapped in [1, 60, MAX_WRAPPED_LEN] {
                let len = double_encrypted_blob_len(plaintext, wrapped);
                assert!(len > blob_len(plaintext) && len <= max_blob_len(plaintext));
                let mut blob = vec![0u8; len];
                write_header(&mut blob, &id, 1, &[1; SALT_LEN], &[2; NONCE_LEN]);
                blob[1] = ALGORITHM_XKS_DOUBLE_ENCRYPTION;
                blob[HEADER_LEN] = wrapped as u8;
                assert_eq!(
                    plaintext_len_of(&blob),
                    Some(plaintext),
                    "{plaintext} {wrapped}"
                );
            }
        }
        assert_eq!(max_blob_len(1), blob_len(1) + 1 + MAX_WRAPPED_LEN);
        let mut blob = vec![0u8; MAX_ANY_BLOB_LEN + 1];
        blob[0] = FORMAT_VERSION;
        blob[1] = ALGORITHM_XKS_DOUBLE_ENCRYPTION;
        blob[HEADER_LEN] = MAX_WRAPPED_LEN as u8;
        assert_eq!(plaintext_len_of(&blob), None);
        assert_eq!(
            plaintext_len_of(&blob[..MAX_ANY_BLOB_LEN]),
            Some(MAX_PLAINTEXT_LIMIT)
        );
        assert_eq!(plaintext_len_of(b"not a blob"), None);
    }

    #[test]
    fn every_short_length_is_rejected() {
        for len in 0..OVERHEAD {
            let mut blob = vec![0u8; len];
            if len > 1 {
                blob[0] = FORMAT_VERSION;
                blob[1] = ALGORITHM_AES_256_GCM_HKDF_SHA256;
            }
            assert_eq!(
                parse(&blob).unwrap_err().code(),
                "InvalidCiphertextException"
            );
        }
        assert!(parse(&vec![0u8; MAX_BLOB_LEN + 1]).is_err());
    }
}
