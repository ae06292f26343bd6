//! The ciphertext data integrity value (spec Appendix C) and the AES-GCM associated data a proxy
//! builds from `additionalAuthenticatedData` and `ciphertextMetadata` (spec section "Encrypt",
//! response member `ciphertextMetadata`).

use aws_lc_rs::digest;

/// SHA-256 over `aad || ciphertextMetadata || iv || ciphertext || tag` (absent members are empty),
/// as Appendix C defines the CDIV. Lengths are deliberately not included: the value guards against
/// bit flips, not against an attacker.
pub fn cdiv_sha256(
    aad: &[u8],
    ciphertext_metadata: &[u8],
    iv: &[u8],
    ciphertext: &[u8],
    tag: &[u8],
) -> [u8; 32] {
    let mut ctx = digest::Context::new(&digest::SHA256);
    for part in [aad, ciphertext_metadata, iv, ciphertext, tag] {
        ctx.update(part);
    }
    let mut out = [0u8; 32];
    out.copy_from_slice(ctx.finish().as_ref());
    out
}

/// The associated data the proxy gives AES-GCM: the 2-byte big-endian length of `aad`, `aad`, the
/// 1-byte length of `ciphertext_metadata`, `ciphertext_metadata`. With both lengths in it, moving
/// bytes between the two members (metadata passed back as AAD) changes the input and the tag fails.
/// `None` when a member is longer than its length field holds.
pub fn gcm_associated_data(aad: &[u8], ciphertext_metadata: &[u8]) -> Option<Vec<u8>> {
    let aad_len = u16::try_from(aad.len()).ok()?;
    let metadata_len = u8::try_from(ciphertext_metadata.len()).ok()?;
    let mut out = Vec::with_capacity(3 + aad.len() + ciphertext_metadata.len());
    out.extend_from_slice(&aad_len.to_be_bytes());
    out.extend_from_slice(aad);
    out.push(metadata_len);
    out.extend_from_slice(ciphertext_metadata);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::STANDARD;
    use base64::Engine as _;

    /// The worked example of Appendix C: its bytes and its published hash.
    #[test]
    fn the_appendix_c_example_hashes_to_the_published_value() {
        let b = |s: &str| STANDARD.decode(s).unwrap();
        let value = cdiv_sha256(
            b"project=nile,department=marketing",
            &b("a2V5X3ZlcnNpb249MQ=="),
            &b("HMrlRw85cAJUd5Ax"),
            &b("ghxkK1txeDNn3q8Y"),
            &b("vBxN2ncH1oEkR8WVXpmyYQ=="),
        );
        assert_eq!(
            STANDARD.encode(value),
            "qHA/ImC9h5HsLRXqCyPmWgYx7tzyoTplzILbP0fPXsc="
        );
    }

    #[test]
    fn associated_data_keeps_the_two_members_apart() {
        let a = gcm_associated_data(b"", b"meta").unwrap();
        let b = gcm_associated_data(b"meta", b"").unwrap();
        assert_ne!(a, b);
        assert_eq!(a, b"\x00\x00\x04meta");
        assert_eq!(b, b"\x00\x04meta\x00");
        assert!(gcm_associated_data(&[0; 70_000], b"").is_none());
        assert!(gcm_associated_data(b"", &[0; 256]).is_none());
    }
}
