//! The data plane: Encrypt, Decrypt, ReEncrypt, GenerateDataKey(Pair), GenerateRandom, Sign,
//! Verify, GetPublicKey, GenerateMac, VerifyMac and DeriveSharedSecret, one call at a time or in
//! batches spread over a rayon pool.
//!
//! Every call reads the key snapshot ([`keyring::Keyring`]) through `arc_swap` (no lock, no shared
//! reference count), and uses derived keys from per-thread slots ([`session`]). Batches hand each
//! rayon job one [`chunk::ChunkContext`], so resolving a key, encoding a context and taking a
//! derived key happen once per run of items that share them, not once per item.

mod agreement;
mod algorithm;
mod batch;
mod batch_board;
mod batch_outputs;
mod batch_plan;
pub(crate) mod chunk;
mod ciphertext_blob;
mod datakey;
mod datakeypair;
mod decrypt;
mod encrypt;
pub(crate) mod external_key;
pub(crate) mod freshness;
mod item_cost;
pub(crate) mod item_outputs;
pub(crate) mod keyring;
mod mac;
mod one_key;
pub(crate) mod output;
pub(crate) mod plane;
mod prefetch;
pub(crate) mod primitive;
mod random;
mod reencrypt;
mod result_slots;
pub(crate) mod session;
mod shared_batch;
mod sign;
pub(crate) mod slot_cache;
mod spin_pool;
pub(crate) mod tally;
mod thread_hmac;
mod written;
mod xks;

pub use agreement::{DeriveSharedSecretRequest, DeriveSharedSecretResponse};
pub use batch_outputs::BatchOutputs;
pub use batch_plan::{batch_schedule, BatchSchedule};
pub use ciphertext_blob::CiphertextBlob;
pub use datakey::{
    GenerateDataKeyRequest, GenerateDataKeyResponse, GenerateDataKeyWithoutPlaintextResponse,
    GeneratedDataKey, MAX_DATA_KEY_BYTES,
};
pub use datakeypair::{GenerateDataKeyPairRequest, GenerateDataKeyPairResponse};
pub use decrypt::{DecryptRequest, DecryptResponse, DecryptedInto};
pub use encrypt::{EncryptRequest, EncryptResponse, EncryptedInto};
pub use item_cost::ItemWork;
/// The data plane's key-id hasher, for `benches/keyring.rs` to compare the snapshot's map with
/// `std`'s on the same hash; not part of the API.
#[doc(hidden)]
pub use keyring::KeyIdHasher;
pub use mac::{
    GenerateMacRequest, GenerateMacResponse, Mac, VerifyMacRequest, VerifyMacResponse,
    MAX_MAC_MESSAGE,
};
pub use output::IntoError;
pub use random::MAX_RANDOM_BYTES;
pub use reencrypt::{ReEncryptRequest, ReEncryptResponse};
pub use session::MAX_MESSAGES_PER_DERIVED_KEY;
pub use sign::{GetPublicKeyResponse, SignRequest, SignResponse, VerifyRequest, VerifyResponse};
pub use written::WrittenItems;

/// Most plaintext bytes Encrypt takes by default (the service's limit); see
/// [`crate::EngineConfig::max_plaintext_bytes`].
pub const DEFAULT_MAX_PLAINTEXT: usize = 4096;
