//! Running data-plane items: one on the calling thread, or a batch as [`super::batch_plan`] plans
//! it: on the calling thread alone when it is small, else shared by the calling thread and
//! helpers ([`super::shared_batch`]).
//!
//! - Results come back in item order, whichever thread ran which job. A batch into byte buffers
//!   has its threads record 4 bytes an item, not a `Result` ([`super::written`]), because the
//!   calling thread reads the helpers' results across cores.

use super::batch_plan::plan;
use super::chunk::ChunkContext;
use super::item_cost::ItemCost;
use super::item_outputs::{for_each_cleared_on_panic, ItemOutput, JobEnds, Outputs};
use super::keyring::Keyring;
use super::plane::DataPlane;
use super::shared_batch::Scene;
use super::tally::{ItemOutcome, KeyTally};
use super::written::{Failures, Written, WrittenItems};
use crate::access::Caller;
use crate::error::{validation, Result};

impl DataPlane {
    /// Runs one item on the calling thread with a fresh chunk context.
    pub(crate) fn run_one<T>(
        &self,
        caller: &Caller,
        f: impl FnOnce(&mut ChunkContext<'_>) -> T,
    ) -> T {
        // A single call's record names its keys from the request; nothing to count.
        static NO_TALLY: KeyTally = KeyTally::none();
        let keyring = self.keyring.load();
        let request_id = crate::call::request_id::current_request_id();
        let mut ctx = ChunkContext::new(self, &keyring, caller, &NO_TALLY, request_id);
        f(&mut ctx)
    }

    /// Runs `f` over the `items` that pass `check` (the others fail with its error), in order,
    /// spread over the pool when the batch is worth it ([`super::batch_plan`]); the keys the
    /// items use are counted into `tally`.
    pub(crate) fn run_batch<I, O>(
        &self,
        caller: &Caller,
        tally: &KeyTally,
        items: &[I],
        check: impl Fn(&I) -> Result<()> + Sync,
        f: impl Fn(&mut ChunkContext<'_>, &I) -> O + Sync + Send,
    ) -> Vec<O>
    where
        I: Sync + ItemCost,
        O: Send + ItemOutcome,
    {
        // A vector of `()` never allocates.
        let mut nothing = vec![(); items.len()];
        self.run_batch_into(
            caller,
            tally,
            items,
            nothing.as_mut_slice(),
            check,
            |ctx, item, ()| f(ctx, item),
        )
    }

    /// Runs `f` over the `items` that pass `check` and their output buffers `outputs[i]`, in
    /// order, spread over the pool
    /// when the batch is worth it; the keys the items use are counted into `tally`. Items without an
    /// output buffer fail with a validation error.
    pub(crate) fn run_batch_into<I, B, O>(
        &self,
        caller: &Caller,
        tally: &KeyTally,
        items: &[I],
        outputs: impl Outputs<B>,
        check: impl Fn(&I) -> Result<()> + Sync,
        f: impl Fn(&mut ChunkContext<'_>, &I, &mut B) -> O + Sync + Send,
    ) -> Vec<O>
    where
        I: Sync + ItemCost,
        B: Send + ItemOutput,
        O: Send + ItemOutcome,
    {
        let keyring = self.keyring.load();
        self.run_batch_into_on(&keyring, caller, tally, items, outputs, check, f)
    }

    /// [`Self::run_batch_into`] into byte buffers (the caller's, or the rooms of a kept
    /// [`super::BatchOutputs`]), with `f` answering the bytes it wrote; the items beyond the last
    /// buffer fail, and so does an item that answers more bytes than its buffer holds (an engine
    /// bug; [`super::BatchOutputs`] relies on every count fitting its room).
    pub(crate) fn run_batch_into_buffers<'o, I>(
        &self,
        caller: &Caller,
        tally: &KeyTally,
        items: &[I],
        outputs: impl Outputs<&'o mut [u8]>,
        check: impl Fn(&I) -> Result<()> + Sync,
        f: impl Fn(&mut ChunkContext<'_>, &I, &mut [u8]) -> Result<usize> + Sync + Send,
    ) -> WrittenItems
    where
        I: Sync + ItemCost,
    {
        let keyring = self.keyring.load();
        self.run_batch_into_buffers_on(&keyring, caller, tally, items, outputs, check, f)
    }

    /// As [`Self::run_batch_into_buffers`], on the key snapshot `keyring`, which the caller
    /// loaded (and checked something against, once for the batch) before.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn run_batch_into_buffers_on<'o, I>(
        &self,
        keyring: &Keyring,
        caller: &Caller,
        tally: &KeyTally,
        items: &[I],
        outputs: impl Outputs<&'o mut [u8]>,
        check: impl Fn(&I) -> Result<()> + Sync,
        f: impl Fn(&mut ChunkContext<'_>, &I, &mut [u8]) -> Result<usize> + Sync + Send,
    ) -> WrittenItems
    where
        I: Sync + ItemCost,
    {
        // Each item's 4-byte count, not its `Result` ([`super::written`]); the check runs inside
        // the item so that a refusal's error is recorded under the item's index.
        let failures = Failures::default();
        let first = items.as_ptr() as usize;
        let index = |item: &I| (std::ptr::from_ref(item) as usize - first) / size_of::<I>().max(1);
        let written = self.run_batch_into_on(
            keyring,
            caller,
            tally,
            items,
            outputs,
            |_| Ok(()),
            |ctx, item, out| {
                let room = out.len();
                let result = check(item).and_then(|()| f(ctx, item, out));
                let result = result.and_then(|written| {
                    if written <= room {
                        Ok(written)
                    } else {
                        Err(crate::error::Error::Internal(format!(
                            "an item wrote {written} bytes into a buffer of {room}"
                        )))
                    }
                });
                let written = Written::record(result, index(item), &failures);
                if !written.succeeded() {
                    out.clear();
                }
                written
            },
        );
        let mut results = failures.finish(written);
        // The items beyond the last output buffer.
        while results.len() < items.len() {
            results.push_failed(validation!("item {} has no output buffer", results.len()));
        }
        results
    }

    /// As [`Self::run_batch_into`], on the key snapshot `keyring`, which the caller loaded (and
    /// checked something against, once for the batch) before.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn run_batch_into_on<I, B, O>(
        &self,
        keyring: &Keyring,
        caller: &Caller,
        tally: &KeyTally,
        items: &[I],
        outputs: impl Outputs<B>,
        check: impl Fn(&I) -> Result<()> + Sync,
        f: impl Fn(&mut ChunkContext<'_>, &I, &mut B) -> O + Sync + Send,
    ) -> Vec<O>
    where
        I: Sync + ItemCost,
        B: Send + ItemOutput,
        O: Send + ItemOutcome,
    {
        // Each item is checked where it runs, so the checks spread over the threads too; a
        // refused item's output buffer is zeroed, as a failed item's is.
        let f = |ctx: &mut ChunkContext<'_>, item: &I, out: &mut B| {
            let result = match check(item) {
                Ok(()) => f(ctx, item, out),
                Err(e) => {
                    out.clear();
                    O::refused(e)
                }
            };
            ctx.tally.item_done(result.succeeded());
            result
        };
        // Read on the calling thread: the pool's threads do not carry it.
        let request_id = crate::call::request_id::current_request_id();
        let n = items.len().min(outputs.len());
        let (items, outputs) = (&items[..n], outputs.split_at(n).0);
        let plan = plan(items.iter().map(ItemCost::cost_ns), self.threads());
        // A small batch in a stream of them wakes the helpers too: they stay awake for the rest.
        let wake = plan.threads > 1 && (self.helpers.streaming() || plan.wake);
        // In a child of `fork` no helper or rayon worker exists: waiting for one would never end.
        let shared =
            plan.threads > 1 && (wake || self.helpers.any_awake()) && !self.helpers.in_a_copy();
        // Cut at ends that ascend to `n` (the plan's, which always do), so that the threads'
        // parts of the buffers never overlap and every item is in a job.
        match JobEnds::checked(&plan.job_ends, n).filter(|_| shared) {
            Some(ends) => {
                let scene = Scene {
                    keyring,
                    caller,
                    tally,
                    request_id,
                };
                self.run_shared(&scene, items, outputs, &plan, ends, wake, &f)
            }
            None => {
                let mut ctx = ChunkContext::new(self, keyring, caller, tally, request_id);
                let mut results = Vec::with_capacity(n);
                let mut items = items.iter();
                for_each_cleared_on_panic(outputs, |out| {
                    if let Some(item) = items.next() {
                        results.push(f(&mut ctx, item, out));
                    }
                });
                results
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Mutex, PoisonError};

    fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
        m.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A data plane of two threads (the caller and one helper), and the account's root.
    fn two_thread_plane() -> (DataPlane, Caller) {
        let scope = crate::key::identifier::ArnScope::new("eu-west-1", "111122223333").unwrap();
        let plane = DataPlane::new(
            scope,
            crate::locked_memory::LockPolicy::Warn,
            1 << 20,
            4096,
            2,
            None,
        )
        .unwrap();
        (plane, Caller::account_root("111122223333").unwrap())
    }

    /// Runs `f` over `items` into the 4-byte `buffers` on a two-thread plane, items refused by
    /// `check` failing with its error.
    fn into_four_byte_buffers(
        items: &[&[u8]],
        buffers: &mut [[u8; 4]],
        check: impl Fn(&&[u8]) -> Result<()> + Sync,
        f: impl Fn(&[u8], &mut [u8]) -> Result<usize> + Sync + Send,
    ) -> WrittenItems {
        let (plane, caller) = two_thread_plane();
        let mut outputs: Vec<&mut [u8]> = buffers.iter_mut().map(|b| &mut b[..]).collect();
        plane.run_batch_into_buffers(
            &caller,
            &KeyTally::inactive(),
            items,
            outputs.as_mut_slice(),
            check,
            |_, item, out| f(item, out),
        )
    }

    /// A count longer than the buffer an item was handed is refused where the item ran, and
    /// the buffer is zeroed: kept outputs make each range from the count, so no count may reach
    /// past its room. Inline (8 items) and shared between threads (4,000 items, in jobs).
    #[test]
    fn an_item_that_answers_more_than_its_buffer_fails_with_its_buffer_zeroed() {
        for n in [8usize, 4000] {
            let messages: Vec<Vec<u8>> = (0..n).map(|i| vec![0u8; 200 + i % 7]).collect();
            let items: Vec<&[u8]> = messages.iter().map(Vec::as_slice).collect();
            let mut buffers = vec![[0u8; 4]; n];
            let results = into_four_byte_buffers(
                &items,
                &mut buffers,
                |_| Ok(()),
                |item, out| {
                    out.fill(7);
                    Ok(if item.len() % 7 == 3 { 5 } else { 4 })
                },
            )
            .into_results();
            assert_eq!(results.len(), n);
            for (i, (result, buffer)) in results.iter().zip(&buffers).enumerate() {
                if messages[i].len() % 7 == 3 {
                    assert!(
                        matches!(result, Err(crate::error::Error::Internal(_))),
                        "{n}: item {i}: {result:?}"
                    );
                    assert_eq!(buffer, &[0; 4], "{n}: item {i}'s buffer is zeroed");
                } else {
                    assert_eq!(result.as_ref().ok(), Some(&4), "{n}: item {i}");
                    assert_eq!(buffer, &[7; 4], "{n}: item {i}");
                }
            }
        }
    }

    /// The threads of a shared batch record counts and keep errors aside ([`super::super::written`]):
    /// each item still gets its own error, refused by the check or failed in its run, and its
    /// own count, in item order.
    #[test]
    fn each_item_of_a_shared_batch_gets_its_own_count_or_error() {
        let n = 4000;
        let messages: Vec<Vec<u8>> = (0..n).map(|i| vec![0u8; 200 + i]).collect();
        let items: Vec<&[u8]> = messages.iter().map(Vec::as_slice).collect();
        let index = |item: &[u8]| item.len() - 200;
        let mut buffers = vec![[9u8; 4]; n];
        let results = into_four_byte_buffers(
            &items,
            &mut buffers,
            |item| match index(item) % 5 {
                1 => Err(validation!("refused {}", index(item))),
                _ => Ok(()),
            },
            |item, out| {
                out.fill(7);
                match index(item) % 5 {
                    2 => Err(crate::error::Error::NotFound(format!(
                        "failed {}",
                        index(item)
                    ))),
                    _ => Ok(index(item) % 4),
                }
            },
        );
        assert_eq!(results.len(), n);
        // Read in place, as the public calls' callers do.
        for (i, (result, buffer)) in results.iter().zip(&buffers).enumerate() {
            match i % 5 {
                1 => {
                    let e = result.unwrap_err();
                    assert_eq!(e.message(), format!("refused {i}"));
                    assert_eq!(buffer, &[0; 4], "item {i}'s buffer is zeroed");
                }
                2 => {
                    let e = result.unwrap_err();
                    assert!(matches!(e, crate::error::Error::NotFound(_)), "{e:?}");
                    assert_eq!(e.message(), format!("failed {i}"));
                    assert_eq!(buffer, &[0; 4], "item {i}'s buffer is zeroed");
                }
                _ => assert_eq!(result.ok(), Some(i % 4), "item {i}"),
            }
        }
    }

    /// A shared batch handed job ends that do not cover its items (only an engine bug could
    /// make them: the plan's always do) runs nothing, refuses every item and clears every
    /// buffer: it may not report results it never wrote, nor leave bytes a caller would read.
    #[test]
    fn a_shared_batch_whose_jobs_miss_items_runs_nothing_and_clears_every_buffer() {
        let (plane, caller) = two_thread_plane();
        let keyring = plane.keyring.load();
        let tally = KeyTally::inactive();
        let scene = Scene {
            keyring: &keyring,
            caller: &caller,
            tally: &tally,
            request_id: None,
        };
        let items = [0u8; 8];
        let mut buffers = [[9u8; 4]; 8];
        let mut outputs: Vec<&mut [u8]> = buffers.iter_mut().map(|b| &mut b[..]).collect();
        let plan = plan(std::iter::repeat_n(20_000, 8), 2);
        assert_eq!(plan.threads, 2);
        let ends = [2, 5];
        let ran = AtomicUsize::new(0);
        let results: Vec<Result<usize>> = plane.run_shared(
            &scene,
            &items,
            outputs.as_mut_slice(),
            &plan,
            JobEnds::checked(&ends, 5).unwrap(),
            false,
            &|_, _, _| {
                ran.fetch_add(1, Ordering::SeqCst);
                Ok(4)
            },
        );
        assert_eq!(ran.load(Ordering::SeqCst), 0);
        assert_eq!(results.len(), 8);
        assert!(results
            .iter()
            .all(|r| matches!(r, Err(crate::error::Error::Internal(_)))));
        assert_eq!(buffers, [[0u8; 4]; 8]);
    }

    /// `n` messages of 200 to 206 bytes, but message `at`, of 199 (the one a test's item panics
    /// at).
    fn messages_with_one_of_199_bytes(n: usize, at: usize) -> Vec<Vec<u8>> {
        (0..n)
            .map(|i| vec![0u8; if i == at { 199 } else { 200 + i % 7 }])
            .collect()
    }

    /// A panic in a shared batch into byte buffers leaves every buffer zeroed, those the
    /// threads had written before it included: the call fails, so no item's bytes are its
    /// result. Retried until a batch ran on both threads.
    #[test]
    fn a_panic_in_a_shared_batch_clears_every_buffer() {
        let n = 4000;
        let at = n / 2;
        let messages = messages_with_one_of_199_bytes(n, at);
        let items: Vec<&[u8]> = messages.iter().map(Vec::as_slice).collect();
        let mut shared = false;
        for _ in 0..50 {
            let threads = Mutex::new(std::collections::HashSet::new());
            let mut buffers = vec![[0u8; 4]; n];
            let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                into_four_byte_buffers(
                    &items,
                    &mut buffers,
                    |_| Ok(()),
                    |item, out| {
                        lock(&threads).insert(std::thread::current().id());
                        out.fill(7);
                        assert!(item.len() != 199, "item {at} panics");
                        Ok(4)
                    },
                )
            }));
            assert!(outcome.is_err(), "the panic is raised again");
            assert!(
                buffers.iter().all(|b| b == &[0; 4]),
                "every buffer is zeroed"
            );
            if lock(&threads).len() > 1 {
                shared = true;
                break;
            }
        }
        assert!(shared, "no batch of 50 ran on both threads");
    }

    /// A panic in a batch small enough to run on the calling thread alone leaves every buffer
    /// zeroed too, those of the items before it included: the caller's own buffers and the rooms
    /// of one buffer (a kept batch's layout). It fails without the clear on the way out.
    #[test]
    fn a_panic_in_a_batch_on_the_calling_thread_clears_every_buffer() {
        let (plane, caller) = two_thread_plane();
        let n = 8;
        let at = 5;
        let messages = messages_with_one_of_199_bytes(n, at);
        let items: Vec<&[u8]> = messages.iter().map(Vec::as_slice).collect();
        let ranges: Vec<std::ops::Range<usize>> = (0..n).map(|i| 4 * i..4 * i + 4).collect();
        for rooms in [false, true] {
            let mut buffers = vec![[0u8; 4]; n];
            let mut one_buffer = vec![0u8; 4 * n];
            let threads = Mutex::new(std::collections::HashSet::new());
            let each = |_: &mut ChunkContext<'_>, item: &&[u8], out: &mut [u8]| {
                lock(&threads).insert(std::thread::current().id());
                out.fill(7);
                assert!(item.len() != 199, "item {at} panics");
                Ok(4)
            };
            let tally = KeyTally::inactive();
            let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                if rooms {
                    let outputs =
                        super::super::item_outputs::Rooms::laid_out(&mut one_buffer, &ranges);
                    plane.run_batch_into_buffers(&caller, &tally, &items, outputs, |_| Ok(()), each)
                } else {
                    let mut outputs: Vec<&mut [u8]> =
                        buffers.iter_mut().map(|b| &mut b[..]).collect();
                    plane.run_batch_into_buffers(
                        &caller,
                        &tally,
                        &items,
                        outputs.as_mut_slice(),
                        |_| Ok(()),
                        each,
                    )
                }
            }));
            assert!(
                outcome.is_err(),
                "the panic is raised again (rooms: {rooms})"
            );
            assert_eq!(
                lock(&threads).iter().copied().collect::<Vec<_>>(),
                vec![std::thread::current().id()],
                "the batch ran on the calling thread alone"
            );
            assert!(
                buffers.iter().all(|b| b == &[0; 4]),
                "every buffer is zeroed"
            );
            assert!(one_buffer.iter().all(|&b| b == 0), "every room is zeroed");
        }
    }

    /// A panic in one item of a shared batch drops every result the threads had written, so
    /// none (a secret in one included) is leaked undropped, and the pool runs the next batch:
    /// a panic in the helper's home (the last item) and in the calling thread's (a quarter in,
    /// when the helper is at work: a panic at the first item ends the batch before a helper
    /// can join it). Retried until a batch ran on both threads, which a loaded machine may
    /// delay.
    #[test]
    fn a_panic_in_a_shared_batch_drops_every_result_written() {
        let n = 4000;
        for at in [n - 1, n / 4] {
            a_panic_at_drops_every_result_written(n, at);
        }
    }

    fn a_panic_at_drops_every_result_written(n: usize, at: usize) {
        static MADE: AtomicUsize = AtomicUsize::new(0);
        static DROPPED: AtomicUsize = AtomicUsize::new(0);
        struct Counted;
        impl Drop for Counted {
            fn drop(&mut self) {
                DROPPED.fetch_add(1, Ordering::SeqCst);
            }
        }
        let (plane, caller) = two_thread_plane();
        let tally = KeyTally::inactive();
        let messages = messages_with_one_of_199_bytes(n, at);
        let items: Vec<&[u8]> = messages.iter().map(Vec::as_slice).collect();
        let mut shared = false;
        for _ in 0..50 {
            let threads = Mutex::new(std::collections::HashSet::new());
            let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                plane.run_batch(
                    &caller,
                    &tally,
                    &items,
                    |_| Ok(()),
                    |_, item| {
                        lock(&threads).insert(std::thread::current().id());
                        assert!(item.len() != 199, "item {at} panics");
                        MADE.fetch_add(1, Ordering::SeqCst);
                        Ok(Counted)
                    },
                )
            }));
            assert!(
                outcome.is_err(),
                "the panic is raised again on the calling thread"
            );
            let made = MADE.load(Ordering::SeqCst);
            assert!(made > 0);
            assert_eq!(
                DROPPED.load(Ordering::SeqCst),
                made,
                "every written result dropped"
            );
            let after = plane.run_batch(
                &caller,
                &tally,
                &items,
                |_| Ok(()),
                |_, item| Ok::<usize, crate::error::Error>(item.len()),
            );
            assert!(after
                .iter()
                .enumerate()
                .all(|(i, r)| r.as_ref().ok() == Some(&items[i].len())));
            if lock(&threads).len() > 1 {
                shared = true;
                break;
            }
        }
        assert!(shared, "no batch of 50 ran on both threads (panic at {at})");
    }
}
