//! The Encryption SDK's algorithm suites this engine reads and writes: the one table, with each
//! suite's message format version, key derivation, commitment and signature.

use crate::crypto::aes_gcm::AesGcmKey;
use crate::crypto::hkdf::{self, HkdfHash};
use crate::error::{Error, Result};
use crate::locked_memory::{LockPolicy, LockedBytes};

use super::errors;

/// An algorithm suite (the `u16` in every message header). All use AES-256-GCM with a 12-byte IV
/// and a 16-byte tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AlgorithmSuite {
    /// 0x0078 `AES_256_GCM_IV12_TAG16_NO_KDF`: format version 1, the data key used directly.
    Aes256GcmNoKdf,
    /// 0x0178 `AES_256_GCM_IV12_TAG16_HKDF_SHA256`: format version 1, no commitment.
    Aes256GcmHkdfSha256,
    /// 0x0378 `AES_256_GCM_IV12_TAG16_HKDF_SHA384_ECDSA_P384`: format version 1, signed, no
    /// commitment.
    Aes256GcmHkdfSha384EcdsaP384,
    /// 0x0478 `AES_256_GCM_HKDF_SHA512_COMMIT_KEY`: format version 2, key commitment.
    Aes256GcmHkdfSha512CommitKey,
    /// 0x0578 `AES_256_GCM_HKDF_SHA512_COMMIT_KEY_ECDSA_P384`: format version 2, key commitment,
    /// signed. The Encryption SDK's default, and this engine's.
    Aes256GcmHkdfSha512CommitKeyEcdsaP384,
}

/// Data key length of every suite here (AES-256).
pub const DATA_KEY_LEN: usize = 32;
/// GCM IV length of every suite.
pub const IV_LEN: usize = 12;
/// GCM tag length of every suite.
pub const TAG_LEN: usize = 16;
/// Length of the commitment key (the header's algorithm suite data) in version 2.
pub const COMMITMENT_LEN: usize = 32;

impl AlgorithmSuite {
    /// Every suite, in id order.
    pub const ALL: [AlgorithmSuite; 5] = [
        AlgorithmSuite::Aes256GcmNoKdf,
        AlgorithmSuite::Aes256GcmHkdfSha256,
        AlgorithmSuite::Aes256GcmHkdfSha384EcdsaP384,
        AlgorithmSuite::Aes256GcmHkdfSha512CommitKey,
        AlgorithmSuite::Aes256GcmHkdfSha512CommitKeyEcdsaP384,
    ];

    /// The suite's id in the header.
    pub const fn id(self) -> u16 {
        match self {
            AlgorithmSuite::Aes256GcmNoKdf => 0x0078,
            AlgorithmSuite::Aes256GcmHkdfSha256 => 0x0178,
            AlgorithmSuite::Aes256GcmHkdfSha384EcdsaP384 => 0x0378,
            AlgorithmSuite::Aes256GcmHkdfSha512CommitKey => 0x0478,
            AlgorithmSuite::Aes256GcmHkdfSha512CommitKeyEcdsaP384 => 0x0578,
        }
    }

    /// The suite's name as the Encryption SDK spells it.
    pub const fn name(self) -> &'static str {
        match self {
            AlgorithmSuite::Aes256GcmNoKdf => "AES_256_GCM_IV12_TAG16_NO_KDF",
            AlgorithmSuite::Aes256GcmHkdfSha256 => "AES_256_GCM_IV12_TAG16_HKDF_SHA256",
            AlgorithmSuite::Aes256GcmHkdfSha384EcdsaP384 => {
                "AES_256_GCM_IV12_TAG16_HKDF_SHA384_ECDSA_P384"
            }
            AlgorithmSuite::Aes256GcmHkdfSha512CommitKey => "AES_256_GCM_HKDF_SHA512_COMMIT_KEY",
            AlgorithmSuite::Aes256GcmHkdfSha512CommitKeyEcdsaP384 => {
                "AES_256_GCM_HKDF_SHA512_COMMIT_KEY_ECDSA_P384"
            }
        }
    }

    /// The suite with header id `id`, if this engine supports it.
    pub fn from_id(id: u16) -> Option<AlgorithmSuite> {
        Self::ALL.into_iter().find(|s| s.id() == id)
    }

    /// The suite named `name` (the SDK's spelling, or the id as `0x0478`).
    pub fn from_name(name: &str) -> Option<AlgorithmSuite> {
        Self::ALL.into_iter().find(|s| {
            s.name().eq_ignore_ascii_case(name)
                || format!("0x{:04x}", s.id()).eq_ignore_ascii_case(name)
        })
    }

    /// The message format version the suite belongs to (1 or 2).
    pub const fn message_version(self) -> u8 {
        if self.is_committing() {
            2
        } else {
            1
        }
    }

    /// Whether the suite commits to its data key (version 2).
    pub const fn is_committing(self) -> bool {
        matches!(
            self,
            AlgorithmSuite::Aes256GcmHkdfSha512CommitKey
                | AlgorithmSuite::Aes256GcmHkdfSha512CommitKeyEcdsaP384
        )
    }

    /// Whether the suite signs the message with ECDSA P-384 (a footer, and the public key in the
    /// encryption context).
    pub const fn is_signed(self) -> bool {
        matches!(
            self,
            AlgorithmSuite::Aes256GcmHkdfSha384EcdsaP384
                | AlgorithmSuite::Aes256GcmHkdfSha512CommitKeyEcdsaP384
        )
    }

    /// The message id length: 16 bytes in version 1, 32 in version 2.
    pub const fn message_id_len(self) -> usize {
        if self.is_committing() {
            32
        } else {
            16
        }
    }

    /// Derives the message's AES-256-GCM key from the data key (and, for the committing suites,
    /// the commitment key the header carries), as the format specifies: version 1 with
    /// HKDF(salt none, info = suite id ‖ message id), version 2 with HKDF-SHA512(salt = message
    /// id, info = suite id ‖ "DERIVEKEY"), and commitment HKDF-SHA512(salt = message id, info =
    /// "COMMITKEY").
    pub(crate) fn derive(
        self,
        data_key: &LockedBytes,
        message_id: &[u8],
        policy: LockPolicy,
    ) -> Result<(AesGcmKey, Option<[u8; COMMITMENT_LEN]>)> {
        if data_key.len() != DATA_KEY_LEN {
            return Err(errors::bad_data_key_length(data_key.len()));
        }
        let id = self.id().to_be_bytes();
        match self {
            AlgorithmSuite::Aes256GcmNoKdf => Ok((AesGcmKey::new(data_key.bytes(), policy)?, None)),
            AlgorithmSuite::Aes256GcmHkdfSha256 | AlgorithmSuite::Aes256GcmHkdfSha384EcdsaP384 => {
                let hash = if self == AlgorithmSuite::Aes256GcmHkdfSha256 {
                    HkdfHash::Sha256
                } else {
                    HkdfHash::Sha384
                };
                let mut info = id.to_vec();
                info.extend_from_slice(message_id);
                let key = hkdf::derive(hash, data_key.bytes(), &[], &info, DATA_KEY_LEN, policy)?;
                Ok((AesGcmKey::new(key.bytes(), policy)?, None))
            }
            AlgorithmSuite::Aes256GcmHkdfSha512CommitKey
            | AlgorithmSuite::Aes256GcmHkdfSha512CommitKeyEcdsaP384 => {
                let mut info = id.to_vec();
                info.extend_from_slice(b"DERIVEKEY");
                let key = hkdf::derive(
                    HkdfHash::Sha512,
                    data_key.bytes(),
                    message_id,
                    &info,
                    DATA_KEY_LEN,
                    policy,
                )?;
                let commit = hkdf::derive(
                    HkdfHash::Sha512,
                    data_key.bytes(),
                    message_id,
                    b"COMMITKEY",
                    COMMITMENT_LEN,
                    policy,
                )?;
                let mut commitment = [0u8; COMMITMENT_LEN];
                commitment.copy_from_slice(commit.bytes());
                Ok((AesGcmKey::new(key.bytes(), policy)?, Some(commitment)))
            }
        }
    }
}

impl std::fmt::Display for AlgorithmSuite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Which suites a client may write and read, as the Encryption SDK's commitment policy says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CommitmentPolicy {
    /// Encrypt with non-committing (version 1) suites only; decrypt any. For messages that
    /// older readers must open.
    ForbidEncryptAllowDecrypt,
    /// Encrypt with committing suites; decrypt any.
    RequireEncryptAllowDecrypt,
    /// Encrypt and decrypt committing suites only. The default.
    #[default]
    RequireEncryptRequireDecrypt,
}

impl CommitmentPolicy {
    /// The policy named as the SDK spells it (`REQUIRE_ENCRYPT_REQUIRE_DECRYPT`, ...).
    pub fn from_name(name: &str) -> Option<CommitmentPolicy> {
        Some(match name.to_ascii_uppercase().as_str() {
            "FORBID_ENCRYPT_ALLOW_DECRYPT" => CommitmentPolicy::ForbidEncryptAllowDecrypt,
            "REQUIRE_ENCRYPT_ALLOW_DECRYPT" => CommitmentPolicy::RequireEncryptAllowDecrypt,
            "REQUIRE_ENCRYPT_REQUIRE_DECRYPT" => CommitmentPolicy::RequireEncryptRequireDecrypt,
            _ => return None,
        })
    }

    /// Whether a message in `suite` may be written under this policy.
    pub fn allows_encrypt(self, suite: AlgorithmSuite) -> bool {
        match self {
            CommitmentPolicy::ForbidEncryptAllowDecrypt => !suite.is_committing(),
            _ => suite.is_committing(),
        }
    }

    /// Whether a message in `suite` may be read under this policy.
    pub fn allows_decrypt(self, suite: AlgorithmSuite) -> bool {
        match self {
            CommitmentPolicy::RequireEncryptRequireDecrypt => suite.is_committing(),
            _ => true,
        }
    }
}

/// The commitment policy refuses to read a message in `suite`.
pub(crate) fn policy_forbids_decrypt(suite: AlgorithmSuite) -> Error {
    Error::InvalidCiphertext(format!(
        "the commitment policy REQUIRE_ENCRYPT_REQUIRE_DECRYPT forbids decrypting a message in the \
         non-committing suite {suite}; use REQUIRE_ENCRYPT_ALLOW_DECRYPT to read it"
    ))
}

/// The commitment policy refuses to write a message in `suite`.
pub(crate) fn policy_forbids_encrypt(suite: AlgorithmSuite) -> Error {
    let allowed = if suite.is_committing() {
        "FORBID_ENCRYPT_ALLOW_DECRYPT allows only the non-committing suites"
    } else {
        "REQUIRE_ENCRYPT_* allows only the committing suites 0x0478 and 0x0578"
    };
    Error::Validation(format!(
        "the commitment policy does not allow encrypting with {suite}: {allowed}"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_names_round_trip() {
        for s in AlgorithmSuite::ALL {
            assert_eq!(AlgorithmSuite::from_id(s.id()), Some(s));
            assert_eq!(AlgorithmSuite::from_name(s.name()), Some(s));
        }
        assert_eq!(
            AlgorithmSuite::from_id(0x0578).unwrap().message_version(),
            2
        );
        assert_eq!(AlgorithmSuite::from_id(0x0214), None);
    }

    #[test]
    fn policy_table() {
        use AlgorithmSuite::*;
        use CommitmentPolicy::*;
        assert!(!RequireEncryptRequireDecrypt.allows_decrypt(Aes256GcmHkdfSha256));
        assert!(RequireEncryptAllowDecrypt.allows_decrypt(Aes256GcmHkdfSha256));
        assert!(!ForbidEncryptAllowDecrypt.allows_encrypt(Aes256GcmHkdfSha512CommitKey));
        assert!(RequireEncryptAllowDecrypt.allows_encrypt(Aes256GcmHkdfSha512CommitKey));
    }
}
