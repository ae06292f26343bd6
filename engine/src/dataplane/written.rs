//! What a batch into byte buffers records per item while it runs: a 4-byte count of the bytes
//! written, with the rare failures aside; the caller gets them as they are ([`WrittenItems`]),
//! read in place.
//!
//! Why not a `Result<usize>` per item: a helper's results are read by the calling thread, across
//! cores, and a `Result<usize>` is 32 bytes, two items a cache line. At 1,000 × 64 B encrypts on
//! two threads the helper's 16 KB of results (written over lines the caller read the batch
//! before, then read back by it) cost the batch 15% of its throughput: not reading them at all
//! ran 1.156× as fast, on one thread 1.00×. Four bytes an item are 16 items a line; turning them
//! into `Result`s afterwards was still a pass of 32-byte writes on the calling thread while the
//! helpers waited (docs/performance.md, "The targets again after `98e8083`"), so no call makes
//! one unless its caller asks ([`WrittenItems::into_results`]).

use std::sync::{LazyLock, Mutex, PoisonError};

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

    /// The batch's results: `written`, each item's record, with the errors of the items it
    /// marks failed. A batch without failures costs no pass over its items.
    pub(crate) fn finish(self, written: Vec<Written>) -> WrittenItems {
        let mut failures = self.0.into_inner().unwrap_or_else(PoisonError::into_inner);
        if !failures.is_empty() {
            // Stable: an item's first error is kept. Errors of items answered `NOT_RUN` after
            // they failed are dropped, so one error remains per item marked failed.
            failures.sort_by_key(|&(item, _)| item);
            failures.dedup_by_key(|&mut (item, _)| item);
            failures.retain(|&(item, _)| written.get(item) == Some(&Written(Written::FAILED)));
        }
        WrittenItems { written, failures }
    }
}

/// What a batch into byte buffers wrote (`Engine::encrypt_batch_into`, `decrypt_batch_into`,
/// `encrypt_batch_one_key`): per item, the bytes written at the start of its buffer, or its
/// error. Kept as the batch's threads recorded them, 4 bytes an item with the failed items' errors
/// aside, and read in place ([`WrittenItems::get`], [`WrittenItems::iter`]): the calling thread
/// makes no pass that turns them into a 32-byte `Result` per item while the helpers wait (at
/// 256 × 64 B encrypts on two threads that pass was 1–3.5% of its time). [`WrittenItems::into_results`]
/// makes that vector for a caller that wants one.
#[derive(Default)]
pub struct WrittenItems {
    written: Vec<Written>,
    /// One error per item `written` marks failed, by ascending index.
    failures: Vec<(usize, Error)>,
}

/// Each item's result in order, as a list of `Ok(bytes)` and `Err(error)`.
impl std::fmt::Debug for WrittenItems {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

/// A failed item whose error was not recorded (an engine bug; never a count).
static LOST: LazyLock<Error> =
    LazyLock::new(|| Error::Internal("a failed item's error was lost".into()));
static NOT_RUN: LazyLock<Error> = LazyLock::new(not_run);

impl WrittenItems {
    /// Every one of `n` items failed with `error`.
    pub(crate) fn every_failed(n: usize, error: &Error) -> Self {
        WrittenItems {
            written: vec![Written(Written::FAILED); n],
            failures: (0..n).map(|i| (i, error.clone())).collect(),
        }
    }

    /// Items in the batch.
    pub fn len(&self) -> usize {
        self.written.len()
    }

    /// Whether the batch had no items.
    pub fn is_empty(&self) -> bool {
        self.written.is_empty()
    }

    /// Whether no item succeeded (a batch failed whole: refused, a dry run, a record that could
    /// not be written, or no items). O(1) when the first item succeeded, the common case.
    pub(crate) fn none_succeeded(&self) -> bool {
        self.failures.len() == self.len() || !self.written.iter().any(|w| w.succeeded())
    }

    /// Item `i`'s bytes written, or its error; `None` past the last item.
    pub fn get(&self, i: usize) -> Option<std::result::Result<usize, &Error>> {
        Some(self.read(i, *self.written.get(i)?))
    }

    /// Every item's bytes written or error, in order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = std::result::Result<usize, &Error>> + '_ {
        self.written
            .iter()
            .enumerate()
            .map(|(i, &written)| self.read(i, written))
    }

    /// Item `i`'s result, recorded as `written`.
    fn read(&self, i: usize, written: Written) -> std::result::Result<usize, &Error> {
        match written.0 {
            Written::FAILED => Err(self
                .failures
                .binary_search_by_key(&i, |&(item, _)| item)
                .map_or(&*LOST, |k| &self.failures[k].1)),
            Written::NOT_RUN => Err(&*NOT_RUN),
            count => Ok(count as usize),
        }
    }

    /// Every failed item's error, in item order.
    pub fn errors(&self) -> impl Iterator<Item = &Error> {
        self.iter().filter_map(|r| r.err())
    }

    /// Fails item `len()`, one more, with `error` (an item the batch had no buffer for).
    pub(crate) fn push_failed(&mut self, error: Error) {
        self.failures.push((self.written.len(), error));
        self.written.push(Written(Written::FAILED));
    }

    /// Fails every item that succeeded with `error()` (a dry run's answer).
    pub(crate) fn fail_successes(self, error: impl Fn() -> Error) -> Self {
        let results = self.into_results();
        let mut failed = WrittenItems::default();
        for result in results {
            failed.push_failed(result.err().unwrap_or_else(&error));
        }
        failed
    }

    /// The items of `results`, recorded as a batch's threads record them (for tests of readers).
    #[cfg(test)]
    pub(crate) fn from_results(results: Vec<Result<usize>>) -> Self {
        let failures = Failures::default();
        let written = results
            .into_iter()
            .enumerate()
            .map(|(i, r)| Written::record(r, i, &failures))
            .collect();
        failures.finish(written)
    }

    /// Each item's result, one `Result` per item (the public calls into caller buffers answer
    /// these).
    pub fn into_results(self) -> Vec<Result<usize>> {
        let mut failures = self.failures.into_iter().peekable();
        self.written
            .iter()
            .enumerate()
            .map(|(i, w)| match w.0 {
                Written::FAILED => match failures.next_if(|&(item, _)| item == i) {
                    Some((_, e)) => Err(e),
                    None => Err(LOST.clone()),
                },
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
        let items = failures.finish(written.to_vec());
        let read: Vec<std::result::Result<usize, ErrorKind>> = (0..items.len())
            .map(|i| items.get(i).unwrap().map_err(Error::kind))
            .collect();
        assert!(items.get(written.len()).is_none());
        assert_eq!(
            items.errors().map(Error::kind).collect::<Vec<_>>(),
            [
                ErrorKind::Internal,
                ErrorKind::Internal,
                ErrorKind::Disabled,
                ErrorKind::NotFound
            ]
        );
        let results = items.into_results();
        let kinds: Vec<std::result::Result<usize, ErrorKind>> = results
            .iter()
            .map(|r| r.as_ref().map(|&n| n).map_err(Error::kind))
            .collect();
        assert_eq!(kinds, read, "read in place or as results, the same answers");
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
    fn an_item_keeps_its_first_error_and_a_refused_one_loses_the_error_it_had() {
        let failures = Failures::default();
        // Item 1 failed twice (its first error stands); item 0 failed, then its job was
        // answered not run: its recorded error must not surface as item 1's or anyone's.
        let _ = Written::record(Err(Error::Disabled("item 1, first".into())), 1, &failures);
        let _ = Written::record(Err(Error::NotFound("item 0".into())), 0, &failures);
        let second = Written::record(Err(Error::NotFound("item 1, second".into())), 1, &failures);
        let items = failures.finish(vec![Written::refused(not_run()), second, Written(3)]);
        assert!(!items.none_succeeded());
        let refused = Failures::default().finish(vec![Written::refused(not_run()); 2]);
        assert!(refused.none_succeeded(), "a batch whose jobs were not run");
        assert_eq!(items.get(0).unwrap().unwrap_err(), &not_run());
        assert_eq!(
            items.get(1).unwrap().unwrap_err().message(),
            "item 1, first"
        );
        assert_eq!(items.get(2).unwrap(), Ok(3));
        assert_eq!(items.errors().count(), 2);
    }

    #[test]
    fn a_dry_run_fails_the_successes_and_keeps_the_failures() {
        let failures = Failures::default();
        let failed = Written::record(Err(Error::Disabled("off".into())), 1, &failures);
        let mut items = failures.finish(vec![Written(5), failed]);
        items.push_failed(Error::Validation("no buffer".into()));
        assert!(!items.none_succeeded(), "item 0 wrote 5 bytes");
        let items = items.fail_successes(crate::messages::dry_run_succeeded);
        let kinds: Vec<ErrorKind> = items.errors().map(Error::kind).collect();
        assert_eq!(
            kinds,
            [
                ErrorKind::DryRunOperation,
                ErrorKind::Disabled,
                ErrorKind::Validation
            ]
        );
        assert!(items.none_succeeded());
        let every = WrittenItems::every_failed(3, &Error::Throttling("slow down".into()));
        assert!(every.none_succeeded());
        assert_eq!(every.len(), 3);
        assert!(every
            .into_results()
            .iter()
            .all(|r| r.as_ref().unwrap_err().kind() == ErrorKind::Throttling));
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
        let items = Failures::default().finish(vec![Written(Written::FAILED)]);
        assert_eq!(
            items.get(0).unwrap().unwrap_err().kind(),
            ErrorKind::Internal
        );
        let results = items.into_results();
        assert_eq!(results[0].as_ref().unwrap_err().kind(), ErrorKind::Internal);
    }
}
