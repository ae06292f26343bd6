//! The data plane: Encrypt, Decrypt, ReEncrypt, GenerateDataKey(Pair), GenerateRandom, Sign,
//! Verify, GetPublicKey, GenerateMac, VerifyMac and DeriveSharedSecret, one call at a time or in
//! batches spread over a rayon pool.
//!
//! Every call reads the key snapshot ([`keyring::Keyring`]) through `arc_swap` (no lock, no shared
//! reference count), and uses derived keys from per-thread slots ([`session`]). Batches hand each
//! rayon job one [`chunk::ChunkContext`], so resolving a key, encoding a context and taking a
//! derived key happen once per run of items that share them, not once per item.

mod agreement;
pub(crate) mod chunk;
mod datakey;
mod datakeypair;
mod decrypt;
mod encrypt;
pub(crate) mod freshness;
pub(crate) mod keyring;
mod mac;
pub(crate) mod primitive;
mod random;
mod reencrypt;
pub(crate) mod session;
mod sign;
pub(crate) mod tally;
mod xks;

use arc_swap::ArcSwap;
use rayon::prelude::*;

pub use agreement::{DeriveSharedSecretRequest, DeriveSharedSecretResponse};
pub use datakey::{
    GenerateDataKeyRequest, GenerateDataKeyResponse, GenerateDataKeyWithoutPlaintextResponse,
    GeneratedDataKey, MAX_DATA_KEY_BYTES,
};
pub use datakeypair::{GenerateDataKeyPairRequest, GenerateDataKeyPairResponse};
pub use decrypt::{DecryptRequest, DecryptResponse};
pub use encrypt::{EncryptRequest, EncryptResponse};
/// The data plane's key-id hasher, for `benches/keyring.rs` to compare the snapshot's map with
/// `std`'s on the same hash; not part of the API.
#[doc(hidden)]
pub use keyring::KeyIdHasher;
pub use mac::{
    GenerateMacRequest, GenerateMacResponse, VerifyMacRequest, VerifyMacResponse, MAX_MAC_MESSAGE,
};
pub use random::MAX_RANDOM_BYTES;
pub use reencrypt::{ReEncryptRequest, ReEncryptResponse};
pub use session::MAX_MESSAGES_PER_DERIVED_KEY;
pub use sign::{GetPublicKeyResponse, SignRequest, SignResponse, VerifyRequest, VerifyResponse};

use self::chunk::ChunkContext;
use self::keyring::Keyring;
use self::tally::{ItemOutcome, KeyTally};
use crate::access::Caller;
use crate::error::{Error, Result};
use crate::key::ArnScope;
use crate::locked_memory::LockPolicy;

/// Batches shorter than this run on the calling thread.
const PARALLEL_MIN_ITEMS: usize = 64;
/// The fewest items a rayon job takes, so per-chunk work stays amortised.
const MIN_ITEMS_PER_JOB: usize = 32;
/// Most plaintext bytes Encrypt takes by default (the service's limit); see
/// [`crate::EngineConfig::max_plaintext_bytes`].
pub const DEFAULT_MAX_PLAINTEXT: usize = 4096;

pub(crate) struct DataPlane {
    pub(crate) keyring: ArcSwap<Keyring>,
    pub(crate) scope: ArnScope,
    pub(crate) lock_policy: LockPolicy,
    pub(crate) messages_per_derived_key: u64,
    pub(crate) max_plaintext: usize,
    /// The staleness bound on this node's view of the store.
    pub(crate) freshness: freshness::Freshness,
    pool: std::sync::Arc<rayon::ThreadPool>,
}

impl DataPlane {
    pub(crate) fn new(
        scope: ArnScope,
        lock_policy: LockPolicy,
        messages_per_derived_key: u64,
        max_plaintext: usize,
        threads: usize,
        max_staleness: Option<std::time::Duration>,
    ) -> Result<Self> {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(|i| format!("keyplane-{i}"))
            .build()
            .map_err(|e| Error::Internal(format!("could not start the worker pool: {e}")))?;
        Ok(DataPlane {
            keyring: ArcSwap::from_pointee(Keyring::default()),
            scope,
            lock_policy,
            messages_per_derived_key,
            max_plaintext,
            freshness: freshness::Freshness::new(max_staleness),
            pool: std::sync::Arc::new(pool),
        })
    }

    /// The worker pool, shared with the envelope streams that run on it.
    pub(crate) fn pool(&self) -> std::sync::Arc<rayon::ThreadPool> {
        self.pool.clone()
    }

    pub(crate) fn threads(&self) -> usize {
        self.pool.current_num_threads()
    }

    /// Runs one item on the calling thread with a fresh chunk context.
    pub(crate) fn run_one<T>(
        &self,
        caller: &Caller,
        f: impl FnOnce(&mut ChunkContext<'_>) -> T,
    ) -> T {
        // A single call's record names its keys from the request; nothing to count.
        static NO_TALLY: KeyTally = KeyTally::inactive();
        let keyring = self.keyring.load();
        let request_id = crate::call::current_request_id();
        let mut ctx = ChunkContext::new(self, &keyring, caller, &NO_TALLY, request_id);
        f(&mut ctx)
    }

    /// Runs `f` over `items`, in order, on the pool when the batch is large enough; the keys the
    /// items use are counted into `tally`.
    pub(crate) fn run_batch<I, O>(
        &self,
        caller: &Caller,
        tally: &KeyTally,
        items: &[I],
        f: impl Fn(&mut ChunkContext<'_>, &I) -> O + Sync + Send,
    ) -> Vec<O>
    where
        I: Sync,
        O: Send + ItemOutcome,
    {
        // A vector of `()` never allocates.
        let mut nothing = vec![(); items.len()];
        self.run_batch_into(caller, tally, items, &mut nothing, |ctx, item, ()| {
            f(ctx, item)
        })
    }

    /// Runs `f` over `items` and their output buffers `outputs[i]`, in order, on the pool when the
    /// batch is large enough; the keys the items use are counted into `tally`. Items without an
    /// output buffer fail with a validation error.
    pub(crate) fn run_batch_into<I, B, O>(
        &self,
        caller: &Caller,
        tally: &KeyTally,
        items: &[I],
        outputs: &mut [B],
        f: impl Fn(&mut ChunkContext<'_>, &I, &mut B) -> O + Sync + Send,
    ) -> Vec<O>
    where
        I: Sync,
        B: Send,
        O: Send + ItemOutcome,
    {
        let f = |ctx: &mut ChunkContext<'_>, item: &I, out: &mut B| {
            let result = f(ctx, item, out);
            ctx.tally.item_done(result.succeeded());
            result
        };
        let keyring = self.keyring.load();
        let keyring: &Keyring = &keyring;
        // Read on the calling thread: the pool's threads do not carry it.
        let request_id = crate::call::current_request_id();
        let n = items.len().min(outputs.len());
        let (items, outputs) = (&items[..n], &mut outputs[..n]);
        if n < PARALLEL_MIN_ITEMS || self.threads() == 1 {
            let mut ctx = ChunkContext::new(self, keyring, caller, tally, request_id);
            return items
                .iter()
                .zip(outputs.iter_mut())
                .map(|(item, out)| f(&mut ctx, item, out))
                .collect();
        }
        let min_len = (n / (self.threads() * 4)).max(MIN_ITEMS_PER_JOB);
        let mut results = Vec::with_capacity(n);
        self.pool.install(|| {
            items
                .par_iter()
                .zip(outputs.par_iter_mut())
                .with_min_len(min_len)
                .map_init(
                    || ChunkContext::new(self, keyring, caller, tally, request_id.clone()),
                    |ctx, (item, out)| f(ctx, item, out),
                )
                .collect_into_vec(&mut results)
        });
        results
    }
}
