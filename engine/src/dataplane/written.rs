//! What a batch into byte buffers records per item while it runs: a 4-byte count of the bytes
//! written, with the rare failures aside, turned into the `Result<usize>` per item the caller
//! gets once the batch is done.
//!
//! Why not write the `Result<usize>` at once: a helper's results are read by the calling thread,
//! across cores, and a `Result<usize>` is 32 bytes, two items a cache line. At 1,000 × 64 B
//! encrypts on two threads the helper's 16 KB of results (written over lines the caller read the
//! batch before, then read back by it) cost the batch 15% of its throughput: not reading them
//! at all ran 1.156× as fast, on one thread 1.00×. Four bytes an item are 16 items a line, and
//! the calling thread writes the `Result`s into its own cache.

use std::sync::{Mutex, PoisonError};

use super::tally::ItemOutcome;
use crate::error::{Error, Result};

/// The bytes an item wrote, or [`Written::FAILED`] (its error is in the batch's [`Failures`]),
/// or [`Written::NOT_RUN`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Written(u32);

impl Written {
    /// The item failed: its error is in the batch's [`Failures`], under its index.
    const FAILED: u32 = u32::MAX;
    /// The batch did not run the item. Only the batch itself refuses a `Written` (its items are
    /// checked inside the item, so that a refusal's error is recorded with its index): this is
    /// [`super::batch`]'s answer for every item when a job was not run ([`not_run`]).
    const NOT_RUN: u32 = u32::MAX - 1;

    /// Records `result`, an item's, with its error in `failures` under index `item`.
    pub(crate) fn record(result: Result<usize>, item: usize, failures: &Failures) -> Written {
        let count = result.and_then(|written| {
            u32::try_from(written)
                .ok()
                .filter(|&w| w < Self::NOT_RUN)
                .ok_or_else(|| Error::Internal(format!("an item wrote {written} bytes")))
        });
        match count {
            Ok(count) => Written(count),
            Err(e) => {
                failures.add(item, e);
                Written(Self::FAILED)
            }
        }
    }
}

impl ItemOutcome for Written {
    fn succeeded(&self) -> bool {
        self.0 < Self::NOT_RUN
    }

    fn refused(_: Error) -> Self {
        Written(Self::NOT_RUN)
    }
}

/// The error of every item of a batch one of whose jobs was not run (a scheduling bug in
/// [`super::batch`]).
pub(crate) fn not_run() -> Error {
    Error::Internal("a batch item was not run".into())
}

/// A batch's failed items: their index and error, in the order they failed.
#[derive(Default)]
pub(crate) struct Failures(Mutex<Vec<(usize, Error)>>);

impl Failures {
    fn add(&self, item: usize, error: Error) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push((item, error));
    }

    /// Each item's result, from what the batch recorded.
    pub(crate) fn results(self, written: &[Written]) -> Vec<Result<usize>> {
        let mut failures = self.0.into_inner().unwrap_or_else(PoisonError::into_inner);
        failures.sort_unstable_by_key(|&(item, _)| item);
        let mut failures = failures.into_iter().peekable();
        written
            .iter()
            .enumerate()
            .map(|(i, w)| match w.0 {
                Written::FAILED => {
                    // Skip the errors of items that failed and were then answered `NOT_RUN`.
                    while failures.next_if(|&(item, _)| item < i).is_some() {}
                    match failures.next_if(|&(item, _)| item == i) {
                        Some((_, e)) => Err(e),
                        None => Err(Error::Internal("a failed item's error was lost".into())),
                    }
                }
                Written::NOT_RUN => Err(not_run()),
                count => Ok(count as usize),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    #[test]
    fn counts_and_errors_come_back_in_item_order_whatever_order_items_failed_in() {
        let failures = Failures::default();
        // Threads fail items out of order: 5, then 4, then 3.
        let fifth = Written::record(Err(Error::NotFound("item 5".into())), 5, &failures);
        let fourth = Written::record(Err(Error::Disabled("item 4".into())), 4, &failures);
        let third = Written::record(Ok(usize::MAX), 3, &failures);
        let written = [
            Written::record(Ok(97), 0, &failures),
            Written::record(Ok(0), 1, &failures),
            Written::refused(Error::Internal("dropped".into())),
            third,
            fourth,
            fifth,
        ];
        let results = failures.results(&written);
        let kinds: Vec<std::result::Result<usize, ErrorKind>> = results
            .iter()
            .map(|r| r.as_ref().map(|&n| n).map_err(Error::kind))
            .collect();
        assert_eq!(
            kinds,
            [
                Ok(97),
                Ok(0),
                Err(ErrorKind::Internal),
                Err(ErrorKind::Internal),
                Err(ErrorKind::Disabled),
                Err(ErrorKind::NotFound),
            ]
        );
        assert_eq!(results[2].as_ref().unwrap_err(), &not_run());
        assert!(results[3].as_ref().unwrap_err().message().contains("wrote"));
        assert_eq!(results[5].as_ref().unwrap_err().message(), "item 5");
    }

    #[test]
    fn only_counts_are_successes_and_no_count_reaches_the_markers() {
        let failures = Failures::default();
        for (written, ok) in [
            (0, true),
            (u32::MAX as usize - 2, true),
            (u32::MAX as usize - 1, false),
            (u32::MAX as usize, false),
        ] {
            assert_eq!(
                Written::record(Ok(written), 0, &failures).succeeded(),
                ok,
                "{written}"
            );
        }
        assert!(!Written::refused(Error::Internal("x".into())).succeeded());
    }

    #[test]
    fn a_failure_without_its_error_is_an_internal_error_not_a_count() {
        let results = Failures::default().results(&[Written(Written::FAILED)]);
        assert_eq!(results[0].as_ref().unwrap_err().kind(), ErrorKind::Internal);
    }
}
