//! The encryption context: a string-to-string map bound to a ciphertext as associated data.
//!
//! Canonical encoding (documented in `docs/ciphertext-format.md`): a big-endian `u16` pair count,
//! then for each pair in ascending byte order of keys a `u16` key length, the key's UTF-8 bytes, a
//! `u16` value length and the value's UTF-8 bytes. An absent context and an empty one encode alike
//! (`00 00`), as in the service. Lengths make the encoding injective: no two different maps encode
//! to the same bytes.

use std::collections::BTreeMap;

use crate::error::{validation, Result};

/// An encryption context. `BTreeMap` keeps keys in the canonical (byte) order.
pub type EncryptionContext = BTreeMap<String, String>;

/// The most bytes a context may take, encoded.
pub const MAX_ENCODED_CONTEXT: usize = 8192;

/// Appends the canonical encoding of `context` to `out`.
pub fn encode_into(context: Option<&EncryptionContext>, out: &mut Vec<u8>) -> Result<()> {
    let start = out.len();
    let Some(context) = context else {
        out.extend_from_slice(&[0, 0]);
        return Ok(());
    };
    let count = u16::try_from(context.len())
        .map_err(|_| validation!("an encryption context has at most 65535 pairs"))?;
    out.extend_from_slice(&count.to_be_bytes());
    for (key, value) in context {
        for part in [key, value] {
            let len = u16::try_from(part.len()).map_err(|_| {
                validation!("an encryption context key or value is at most 65535 bytes")
            })?;
            out.extend_from_slice(&len.to_be_bytes());
            out.extend_from_slice(part.as_bytes());
        }
        if out.len() - start > MAX_ENCODED_CONTEXT {
            out.truncate(start);
            return Err(validation!(
                "the encryption context is larger than {MAX_ENCODED_CONTEXT} bytes encoded"
            ));
        }
    }
    Ok(())
}

/// The canonical encoding of `context`.
pub fn encode(context: Option<&EncryptionContext>) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    encode_into(context, &mut out)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(pairs: &[(&str, &str)]) -> EncryptionContext {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn encoding_is_canonical_and_exact() {
        let a = encode(Some(&ctx(&[("b", "2"), ("a", "1")]))).unwrap();
        assert_eq!(
            a,
            [0, 2, 0, 1, b'a', 0, 1, b'1', 0, 1, b'b', 0, 1, b'2'].to_vec()
        );
        assert_eq!(encode(None).unwrap(), encode(Some(&ctx(&[]))).unwrap());
    }

    #[test]
    fn lengths_prevent_ambiguity() {
        let a = encode(Some(&ctx(&[("ab", "c")]))).unwrap();
        let b = encode(Some(&ctx(&[("a", "bc")]))).unwrap();
        assert_ne!(a, b);
    }

    #[test]
    fn oversized_context_is_refused() {
        let big = ctx(&[("k", &"v".repeat(MAX_ENCODED_CONTEXT))]);
        assert_eq!(
            encode(Some(&big)).unwrap_err().code(),
            "ValidationException"
        );
    }
}
