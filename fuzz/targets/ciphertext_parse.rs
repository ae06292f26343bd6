//! Fuzz target `ciphertext_parse`: `keyplane::ciphertext::parse` and `parse_any` on arbitrary
//! bytes.
//!
//! `parse` must accept exactly the framings `docs/ciphertext-format.md` allows for algorithm 1
//! (length 82 to 1 MiB + 82, format version 1) and return fields that are exactly the bytes at
//! their documented offsets; `parse_any` must also accept exactly the external key store framing
//! (algorithm 2: the same header, a wrapping length of 1 to 255, the wrapping, at least one body
//! byte, the tag) with `wrapped` and the longer authenticated header at their offsets, and agree
//! with `parse` on everything else. Everything refused is `InvalidCiphertextException`, and
//! `key_id_of` agrees with `parse_any`. Neither ever panics.

use keyplane::ciphertext::{
    self, ALGORITHM_AES_256_GCM_HKDF_SHA256, ALGORITHM_XKS_DOUBLE_ENCRYPTION, FORMAT_VERSION,
    HEADER_LEN, MAX_BLOB_LEN, MAX_WRAPPED_LEN, OVERHEAD,
};

/// Runs one input.
pub fn run(data: &[u8]) {
    run_parse(data);
    run_parse_any(data);
}

/// `parse_any` on the external key store framing; on anything else, `parse`'s answer.
fn run_parse_any(data: &[u8]) {
    let n = data.len();
    let any = ciphertext::parse_any(data);
    assert_eq!(
        ciphertext::key_id_of(data).ok(),
        any.as_ref().ok().map(|p| p.key_id),
        "key_id_of agrees with parse_any"
    );
    if n < 2 || data[1] != ALGORITHM_XKS_DOUBLE_ENCRYPTION {
        let plain = ciphertext::parse(data);
        assert_eq!(any.is_ok(), plain.is_ok(), "parse_any differs from parse");
        if let (Ok(a), Ok(p)) = (&any, &plain) {
            assert_eq!((a.header, a.body, a.tag), (p.header, p.body, p.tag));
            assert!(a.wrapped.is_none());
        }
        return;
    }
    let wrapped_len = data.get(HEADER_LEN).map_or(0, |&b| usize::from(b));
    let prefix = HEADER_LEN + 1 + wrapped_len;
    let framed = data[0] == FORMAT_VERSION
        && wrapped_len > 0
        && n > prefix + 16
        && n <= MAX_BLOB_LEN + 1 + MAX_WRAPPED_LEN;
    match any {
        Ok(parsed) => {
            assert!(
                framed,
                "parse_any accepted a blob the format does not allow"
            );
            assert_eq!(parsed.wrapped, Some(&data[HEADER_LEN + 1..prefix]));
            assert_fields(&parsed, data, prefix);
            assert!(
                ciphertext::parse(data).is_err(),
                "parse takes algorithm 1 only"
            );
        }
        Err(error) => {
            assert!(!framed, "parse_any refused a well-framed blob: {error}");
            assert_eq!(error.code(), "InvalidCiphertextException");
        }
    }
}

/// `parse`: algorithm 1 only.
fn run_parse(data: &[u8]) {
    let framed = (OVERHEAD..=MAX_BLOB_LEN).contains(&data.len())
        && data[0] == FORMAT_VERSION
        && data[1] == ALGORITHM_AES_256_GCM_HKDF_SHA256;
    match ciphertext::parse(data) {
        Ok(parsed) => {
            assert!(framed, "parse accepted a blob the format does not allow");
            let n = data.len();
            assert_fields(&parsed, data, HEADER_LEN);
            assert_eq!(parsed.plaintext_len(), n - OVERHEAD);
            assert_eq!(ciphertext::blob_len(parsed.plaintext_len()), n);
            assert!(parsed.wrapped.is_none());
        }
        Err(error) => {
            assert!(!framed, "parse refused a well-framed blob: {error}");
            assert_eq!(error.code(), "InvalidCiphertextException");
        }
    }
}

/// The parsed fields are the blob's bytes at their offsets: the header is `data[..prefix]`, the
/// body what follows it up to the 16-byte tag.
fn assert_fields(parsed: &ciphertext::ParsedBlob<'_>, data: &[u8], prefix: usize) {
    let n = data.len();
    assert_eq!(parsed.header, &data[..prefix]);
    assert_eq!(parsed.key_id.as_bytes()[..], data[2..18]);
    assert_eq!(
        parsed.key_version,
        u32::from_be_bytes([data[18], data[19], data[20], data[21]])
    );
    assert_eq!(parsed.salt[..], data[22..54]);
    assert_eq!(parsed.nonce[..], data[54..66]);
    assert_eq!(parsed.body, &data[prefix..n - 16]);
    assert_eq!(parsed.tag, &data[n - 16..]);
}
