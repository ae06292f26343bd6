//! Fuzz target `ciphertext_parse`: `keyplane::ciphertext::parse` on arbitrary bytes.
//!
//! The parser must accept exactly the framings `docs/ciphertext-format.md` allows (length 82 to
//! 1 MiB + 82, format version 1, algorithm 1) and return fields that are exactly the bytes at their
//! documented offsets; everything else is `InvalidCiphertextException`. It never panics.

use keyplane::ciphertext::{
    self, ALGORITHM_AES_256_GCM_HKDF_SHA256, FORMAT_VERSION, HEADER_LEN, MAX_BLOB_LEN, OVERHEAD,
};

/// Runs one input.
pub fn run(data: &[u8]) {
    let framed = (OVERHEAD..=MAX_BLOB_LEN).contains(&data.len())
        && data[0] == FORMAT_VERSION
        && data[1] == ALGORITHM_AES_256_GCM_HKDF_SHA256;
    match ciphertext::parse(data) {
        Ok(parsed) => {
            assert!(framed, "parse accepted a blob the format does not allow");
            let n = data.len();
            assert_eq!(parsed.header, &data[..HEADER_LEN]);
            assert_eq!(parsed.key_id.as_bytes()[..], data[2..18]);
            assert_eq!(
                parsed.key_version,
                u32::from_be_bytes([data[18], data[19], data[20], data[21]])
            );
            assert_eq!(parsed.salt[..], data[22..54]);
            assert_eq!(parsed.nonce[..], data[54..66]);
            assert_eq!(parsed.body, &data[HEADER_LEN..n - 16]);
            assert_eq!(parsed.tag, &data[n - 16..]);
            assert_eq!(parsed.plaintext_len(), n - OVERHEAD);
            assert_eq!(ciphertext::blob_len(parsed.plaintext_len()), n);
            let id = ciphertext::key_id_of(data).expect("key_id_of agrees with parse");
            assert_eq!(id, parsed.key_id);
        }
        Err(error) => {
            assert!(!framed, "parse refused a well-framed blob: {error}");
            assert_eq!(error.code(), "InvalidCiphertextException");
            assert!(ciphertext::key_id_of(data).is_err());
        }
    }
}
