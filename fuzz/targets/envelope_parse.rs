//! Fuzz target `envelope_parse`: `keyplane::envelope::Decryptor` (the Encryption SDK message
//! parser: header, header authentication, frames, footer) on arbitrary bytes, with a fixed raw
//! AES keyring (namespace `fuzz`, key name `key`, 32 bytes of 0x2a) under
//! REQUIRE_ENCRYPT_ALLOW_DECRYPT, so that every suite and both body kinds are reachable.
//!
//! It never panics; every refusal is a typed error (`InvalidCiphertextException`,
//! `KMSInvalidSignatureException`, `IncorrectKeyException` or `LimitExceededException`); a message
//! it accepts has a header whose serialization is exactly the input's first bytes, and the
//! plaintext it yields decrypts again identically after a re-encryption.

use std::sync::Arc;

use keyplane::envelope::{self, CommitmentPolicy, EnvelopeConfig, Keyring, RawAesKeyring};
use keyplane::ErrorKind;

/// The keyring the seeds were made with.
pub fn keyring() -> Arc<dyn Keyring> {
    Arc::new(RawAesKeyring::new("fuzz", "key", &[0x2a; 32]).expect("raw AES keyring"))
}

/// Runs one input.
pub fn run(data: &[u8]) {
    let config = EnvelopeConfig {
        commitment_policy: CommitmentPolicy::RequireEncryptAllowDecrypt,
        max_buffered_plaintext: 1 << 20,
        max_encrypted_data_keys: Some(16),
        window_frames: 4,
        ..EnvelopeConfig::default()
    };
    let keyrings = [keyring()];
    match envelope::decrypt_message(&keyrings, &config, data) {
        Ok(message) => {
            let header = message
                .header
                .serialize()
                .expect("an accepted header serializes");
            assert_eq!(
                &data[..header.len()],
                &header[..],
                "header bytes differ from the input"
            );
            let again = EnvelopeConfig {
                suite: envelope::AlgorithmSuite::Aes256GcmHkdfSha512CommitKey,
                ..config.clone()
            };
            let mut context = message.header.encryption_context.clone();
            context.retain(|k, _| !k.starts_with("aws-crypto-"));
            let sealed = envelope::encrypt_message(&keyrings, &again, &context, &message.plaintext)
                .expect("re-encrypt");
            let opened = envelope::decrypt_message(&keyrings, &again, &sealed).expect("reopen");
            assert_eq!(&opened.plaintext[..], &message.plaintext[..]);
        }
        Err(error) => {
            assert!(
                matches!(
                    error.kind(),
                    ErrorKind::InvalidCiphertext
                        | ErrorKind::InvalidSignature
                        | ErrorKind::IncorrectKey
                        | ErrorKind::LimitExceeded
                ),
                "untyped refusal: {error}"
            );
            crate::common::check_error(&error);
        }
    }
}
