//! keyplane: the model of a cloud key management service, in process.
//!
//! Keys with a lifecycle (enable, disable, scheduled deletion), aliases, tags and rotation, kept by
//! a [`store::KeyStore`]; and a batch-oriented data plane on AWS-LC, with no lock per item, whose
//! batches the calling thread shares with helper threads that stay awake between them: Encrypt,
//! Decrypt, ReEncrypt, GenerateDataKey(Pair), GenerateRandom with symmetric (AES-256-GCM) and
//! RSA-OAEP keys; Sign and Verify with RSA, ECDSA and Ed25519 keys; GenerateMac and VerifyMac with
//! HMAC keys; DeriveSharedSecret (ECDH).
//!
//! ```
//! use keyplane::{Engine, CreateKeyRequest, EncryptRequest, DecryptRequest};
//! let engine = Engine::in_memory()?;
//! let key = engine.create_key(CreateKeyRequest::default())?;
//! engine.create_alias("alias/app", &key.key_id)?;
//! let sealed = engine.encrypt(&EncryptRequest::new("alias/app", b"secret"))?;
//! let opened = engine.decrypt(&DecryptRequest::new(&sealed.ciphertext_blob))?;
//! assert_eq!(opened.plaintext.expose(), b"secret");
//! # Ok::<(), keyplane::Error>(())
//! ```
#![deny(unsafe_code)]
#![warn(missing_debug_implementations)]

pub mod access;
pub mod audit;
mod call;
pub mod ciphertext;
pub mod clock;
pub mod context;
pub mod control;
pub(crate) mod crypto;
pub mod custom_key_store;
pub mod dataplane;
mod engine;
pub mod envelope;
mod error;
pub mod fork;
mod job_homes;
pub mod key;
pub mod less_safe;
pub(crate) mod locked_memory;
pub mod messages;
pub mod operation;
pub mod policy;
pub mod recycled_buffers;
pub mod sealing;
mod secret;
pub mod store;
pub mod validation;

pub use access::{Caller, RateQuotas, RequestOrigin};
pub use clock::{Clock, ManualClock, SystemClock, Timestamp};
pub use context::EncryptionContext;
pub use control::{
    AliasListEntry, CreateGrantRequest, CreateGrantResponse, CreateKeyRequest,
    DeleteImportedKeyMaterialResponse, GetKeyLastUsageResponse, GetParametersForImportResponse,
    GrantListEntry, ImportKeyMaterialRequest, ImportKeyMaterialResponse, KeyLastUsage,
    KeyListEntry, KeyRotationStatus, Page, ReplicateKeyRequest, ReplicateKeyResponse,
    RotationListEntry, ScheduleKeyDeletionResponse, INTEGRATED_SERVICES,
};
pub use crypto::fips_mode;
/// Bytes of a MAC of `algorithm` (for sizing output buffers).
pub use crypto::hmac::mac_len;
/// The largest plaintext RSAES-OAEP takes for a key spec and algorithm (for sizing buffers).
pub use crypto::rsa_oaep::max_plaintext as rsa_oaep_max_plaintext;
pub use custom_key_store::{
    ConnectionErrorCode, ConnectionState, CreateCustomKeyStoreRequest, CustomKeyStoreType,
    CustomKeyStoresListEntry, UpdateCustomKeyStoreRequest, XksProxyCredential,
};
pub use dataplane::{
    batch_schedule, BatchOutputs, BatchSchedule, DecryptRequest, DecryptResponse, DecryptedInto,
    DeriveSharedSecretRequest, DeriveSharedSecretResponse, EncryptRequest, EncryptResponse,
    EncryptedInto, GenerateDataKeyPairRequest, GenerateDataKeyPairResponse, GenerateDataKeyRequest,
    GenerateDataKeyResponse, GenerateDataKeyWithoutPlaintextResponse, GenerateMacRequest,
    GenerateMacResponse, GeneratedDataKey, GetPublicKeyResponse, IntoError, ItemWork, Mac,
    ReEncryptRequest, ReEncryptResponse, SignRequest, SignResponse, VerifyMacRequest,
    VerifyMacResponse, VerifyRequest, VerifyResponse, WrittenItems,
};
pub use engine::{Engine, EngineBuilder, EngineConfig};
pub use error::{Error, ErrorKind, Result};
pub use key::{
    DataKeyPairSpec, DataKeySpec, EncryptionAlgorithm, ExpirationModel, GrantConstraints,
    GrantOperation, ImportState, ImportType, KeyAgreementAlgorithm, KeyManager, KeyMaterialState,
    KeyMetadata, KeySpec, KeyState, KeyUsage, MacAlgorithm, MessageType, MultiRegionConfiguration,
    MultiRegionKey, MultiRegionKeyType, Origin, RotationType, SigningAlgorithm, Tag,
    WrappingAlgorithm, WrappingKeySpec,
};
pub use locked_memory::{
    process_locked_kib, stats as locked_memory_stats, LockPolicy, LockedBytes, LockedMemoryStats,
    SecretAccess, MAX_DEDICATED_BYTES, REGION_BYTES,
};
pub use secret::SecretBytes;
