//! Running data-plane items: one on the calling thread, or a batch spread over the worker pool in
//! chunks, each with one [`ChunkContext`].

use rayon::prelude::*;

use super::chunk::ChunkContext;
use super::keyring::Keyring;
use super::plane::DataPlane;
use super::tally::{ItemOutcome, KeyTally};
use crate::access::Caller;

/// Batches shorter than this run on the calling thread.
const PARALLEL_MIN_ITEMS: usize = 64;
/// The fewest items a rayon job takes, so per-chunk work stays amortised.
const MIN_ITEMS_PER_JOB: usize = 32;

impl DataPlane {
    /// Runs one item on the calling thread with a fresh chunk context.
    pub(crate) fn run_one<T>(
        &self,
        caller: &Caller,
        f: impl FnOnce(&mut ChunkContext<'_>) -> T,
    ) -> T {
        // A single call's record names its keys from the request; nothing to count.
        static NO_TALLY: KeyTally = KeyTally::inactive();
        let keyring = self.keyring.load();
        let request_id = crate::call::request_id::current_request_id();
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
        let request_id = crate::call::request_id::current_request_id();
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
