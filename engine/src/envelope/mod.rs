//! Envelope encryption in the AWS Encryption SDK's message format: a data key from a keyring
//! (a keyplane key, or a raw AES or RSA wrapping key) encrypts a stream of any length in frames,
//! sealed and opened in parallel; the messages are the ones the Encryption SDKs and
//! `aws-encryption-cli` read and write. `docs/envelope.md` describes the format, suites,
//! keyrings, commitment policy, limits and the streaming release rule.
//!
//! * version 2 messages with the committing suites 0x0478 and 0x0578 (ECDSA P-384 signed), the
//!   default; version 1 messages (0x0078, 0x0178, 0x0378) read, and written only under the
//!   FORBID_ENCRYPT_ALLOW_DECRYPT policy;
//! * framed bodies written and read; non-framed bodies read.
//!
//! ```
//! use std::sync::Arc;
//! use keyplane::envelope::{self, EnvelopeConfig, Keyring, RawAesKeyring};
//! let keyring: Arc<dyn Keyring> = Arc::new(RawAesKeyring::new("ns", "key", &[7u8; 32])?);
//! let config = EnvelopeConfig::default();
//! let context = [("purpose".to_string(), "doc".to_string())].into_iter().collect();
//! let message = envelope::encrypt_message(&[keyring.clone()], &config, &context, b"hello")?;
//! let opened = envelope::decrypt_message(&[keyring], &config, &message)?;
//! assert_eq!(&opened.plaintext[..], b"hello");
//! # Ok::<(), keyplane::Error>(())
//! ```
//!
//! Streaming, with a keyplane key, on the engine's worker pool:
//!
//! ```
//! use std::sync::Arc;
//! use keyplane::envelope::{self, EnvelopeConfig, Keyring, KmsKeyring};
//! let engine = keyplane::Engine::in_memory()?;
//! let key = engine.create_key(keyplane::CreateKeyRequest::default())?;
//! let keyring: Arc<dyn Keyring> = Arc::new(KmsKeyring::new(&engine, &key.key_id)?);
//! let config = EnvelopeConfig { pool: Some(engine.worker_pool()), ..EnvelopeConfig::default() };
//! let context = [("dept".to_string(), "finance".to_string())].into();
//! let mut writer = envelope::Encryptor::new(Vec::new(), &[keyring.clone()], &config, &context)?;
//! std::io::Write::write_all(&mut writer, b"any amount of data")?;   // any number of writes
//! let message = writer.finish()?;
//! let mut reader = envelope::Decryptor::new(&message[..], &[keyring], &config)?;
//! let mut plaintext = Vec::new();
//! std::io::Read::read_to_end(&mut reader, &mut plaintext)?;          // impl Read
//! assert_eq!(plaintext, b"any amount of data");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod cache;
mod errors;
pub mod frame;
pub mod header;
pub mod keyring;
mod parallel;
mod signature;
pub mod stream;
pub mod suite;

pub use cache::{CacheLimits, CacheStats, DataKeyCache};
pub use header::{EncryptedDataKey, Header};
pub use keyring::{Keyring, KmsKeyring, RawAesKeyring, RawRsaKeyring, RsaPadding};
pub use stream::{
    decrypt_message, decrypt_message_into, encrypt_message, encrypt_message_into, DecryptedMessage,
    Decryptor, Encryptor, EnvelopeConfig, Keyrings, PushDecryptor, SignedRelease,
};
pub use suite::{AlgorithmSuite, CommitmentPolicy};

use crate::error::Error;

/// The engine error inside an I/O error from [`Encryptor`] or [`Decryptor`] (or, for a failure
/// of the underlying stream, a `ValidationException` naming it).
pub fn error_from_io(err: std::io::Error) -> Error {
    if err.get_ref().is_some_and(|inner| inner.is::<Error>()) {
        if let Some(inner) = err.into_inner() {
            if let Ok(e) = inner.downcast::<Error>() {
                return *e;
            }
        }
        return Error::Internal("lost an envelope error".into());
    }
    errors::io(err)
}
