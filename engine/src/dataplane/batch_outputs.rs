//! One buffer for all of a batch's outputs, which the caller keeps from call to call.
//!
//! The allocating batch calls (`Engine::encrypt_batch`, `decrypt_batch`) return one vector per
//! item. A batch of 1000 × 16 KiB results is 16 MB of allocations freed together, and glibc
//! hands the top of its heap back to the kernel when they are (its trim threshold is 128 KiB): the
//! next batch faults every page in again, and most of its time is spent in the kernel.
//! [`BatchOutputs`] lays every item's output out in one buffer and keeps it: the first call sizes
//! it, and later calls of the same shape allocate nothing per item and touch no new page.

use std::ops::Range;
use std::sync::LazyLock;

use zeroize::Zeroize;

use super::decrypt::DecryptRequest;
use super::encrypt::{output_size, EncryptRequest};
use super::item_outputs::Rooms;
use super::plane::DataPlane;
use super::written::WrittenItems;
use crate::access::Action;
use crate::ciphertext;
use crate::error::Error;

/// The results of one batch call (`Engine::encrypt_batch_to`, `Engine::decrypt_batch_to`), in one
/// buffer: item `i`'s bytes are a range of it. Keep it and pass it to the next call: its memory
/// is reused, so a batch allocates nothing per item and faults no page in. It may hold plaintext,
/// so it is zeroed when dropped and by [`BatchOutputs::clear`]; it has no `Clone` and its `Debug`
/// shows only counts.
#[derive(Default)]
pub struct BatchOutputs {
    /// Every item's room; initialised (zeroed when it grew) up to its length.
    buf: Vec<u8>,
    /// Each item's room in `buf`, as laid out for the last call.
    rooms: Vec<Range<usize>>,
    /// Each item's result: the bytes it wrote at the start of its room, or its error, as the
    /// batch's threads recorded them (no pass on the calling thread turns them into ranges or
    /// `Result`s).
    items: WrittenItems,
}

impl BatchOutputs {
    /// An empty set of outputs; the first call sizes its buffer.
    pub fn new() -> Self {
        Self::default()
    }

    /// Items of the last call.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether the last call had no items (or there was none).
    pub fn is_empty(&self) -> bool {
        self.items.len() == 0
    }

    /// Item `i`'s output, or its error; `None` past the last item.
    pub fn get(&self, i: usize) -> Option<std::result::Result<&[u8], &Error>> {
        self.items.get(i).map(|r| self.output(i, r))
    }

    /// Every item's output or error, in order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = std::result::Result<&[u8], &Error>> + '_ {
        self.items
            .iter()
            .enumerate()
            .map(|(i, r)| self.output(i, r))
    }

    /// Bytes of buffer held for the next call.
    pub fn capacity(&self) -> usize {
        self.buf.len()
    }

    /// Zeroes the buffer and forgets the results, keeping the memory for the next call.
    pub fn clear(&mut self) {
        self.buf.as_mut_slice().zeroize();
        self.rooms.clear();
        self.items = WrittenItems::default();
    }

    /// Zeroes the buffer, keeping the results (of a batch none of whose items succeeded).
    pub(crate) fn zero_bytes(&mut self) {
        self.buf.as_mut_slice().zeroize();
    }

    /// Item `i`'s bytes: the first `written` of its room. The batch runner refuses a count
    /// longer than the room the item was handed, so the fallback error only guards a layout
    /// changed under the results, which `&mut self` rules out.
    fn output<'a>(
        &'a self,
        i: usize,
        result: std::result::Result<usize, &'a Error>,
    ) -> std::result::Result<&'a [u8], &'a Error> {
        static OUTSIDE_ROOM: LazyLock<Error> =
            LazyLock::new(|| Error::Internal("a batch item's result lies outside its room".into()));
        let written = result?;
        self.rooms
            .get(i)
            .filter(|room| written <= room.len())
            .and_then(|room| self.buf.get(room.start..room.start + written))
            .ok_or(&*OUTSIDE_ROOM)
    }

    /// Lays out one room per item, of `sizes` bytes each, back to back, and hands out the rooms.
    /// The buffer only grows, into fresh zeroed memory (the old buffer is zeroed, never copied
    /// by a reallocation), so a buffer sized once is reused as it is. The layout is written only
    /// where it changed: the threads that ran the last batch read it, and a write would take its
    /// cache lines back from their cores.
    pub(crate) fn rooms(&mut self, sizes: impl IntoIterator<Item = usize>) -> Rooms<'_> {
        self.items = WrittenItems::default();
        let mut end = 0usize;
        let mut count = 0;
        for size in sizes {
            let start = end;
            end = start.saturating_add(size);
            match self.rooms.get_mut(count) {
                Some(room) if *room == (start..end) => {}
                Some(room) => *room = start..end,
                None => self.rooms.push(start..end),
            }
            count += 1;
        }
        self.rooms.truncate(count);
        if self.buf.len() < end {
            let mut grown = vec![0u8; end];
            std::mem::swap(&mut self.buf, &mut grown);
            grown.zeroize();
        }
        // Back to back from 0, and the buffer holds them all: no pass to check it again.
        Rooms::laid_out(&mut self.buf[..end], &self.rooms)
    }

    /// Records the call's results: item `i` wrote `results.get(i)` bytes at the start of its
    /// room (the batch runner checked each count against the room it handed out). They are
    /// kept as the threads recorded them: reading them item by item here pulled the helpers'
    /// half across cores while they waited; even on one thread, at 64 MACs of 64 B, the pass was
    /// 3.4% of the samples.
    pub(crate) fn finish(&mut self, results: WrittenItems) {
        self.items = results;
    }
}

impl DataPlane {
    /// The room each request's output needs, by the key it names (resolved once per run of
    /// requests naming the same key): exact for a symmetric key, the double encryption's bound
    /// for a key in an external key store, the largest modulus for an RSA key. A request that
    /// will be refused before it writes anything (a key that does not resolve, a plaintext over
    /// the limit) gets no room, so no caller can make the engine allocate what it refuses.
    pub(crate) fn encrypt_rooms(&self, requests: &[EncryptRequest<'_>]) -> Vec<usize> {
        let keyring = self.keyring.load();
        let mut last: Option<(&str, Option<_>)> = None;
        requests
            .iter()
            .map(|request| {
                let key = match &last {
                    Some((id, key)) if *id == request.key_id => key.clone(),
                    _ => {
                        let key = keyring
                            .resolve(&self.scope, request.key_id, Action::Encrypt)
                            .ok()
                            .cloned();
                        last = Some((request.key_id, key.clone()));
                        key
                    }
                };
                match key {
                    Some(key) if request.plaintext.len() <= self.max_plaintext => {
                        output_size(&key, request.plaintext.len())
                    }
                    _ => 0,
                }
            })
            .collect()
    }

    /// The room each GenerateMac request's MAC needs: its algorithm's length.
    pub(crate) fn mac_rooms<'r>(
        requests: &'r [super::mac::GenerateMacRequest<'_>],
    ) -> impl Iterator<Item = usize> + 'r {
        requests
            .iter()
            .map(|r| crate::crypto::hmac::mac_len(r.mac_algorithm))
    }

    /// The room each request's plaintext needs: its ciphertext's length bounds it for every
    /// kind of key; none for a ciphertext longer than any blob the engine accepts.
    pub(crate) fn decrypt_rooms(&self, requests: &[DecryptRequest<'_>]) -> Vec<usize> {
        let longest = ciphertext::max_blob_len(self.max_plaintext);
        requests
            .iter()
            .map(|r| {
                Some(r.ciphertext_blob.len())
                    .filter(|&n| n <= longest)
                    .unwrap_or(0)
            })
            .collect()
    }
}

impl Drop for BatchOutputs {
    fn drop(&mut self) {
        self.buf.zeroize();
    }
}

impl std::fmt::Debug for BatchOutputs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BatchOutputs")
            .field("items", &self.items.len())
            .field("failed", &self.items.errors().count())
            .field("capacity", &self.buf.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataplane::item_outputs::Outputs;

    #[test]
    fn rooms_are_laid_out_back_to_back_and_reused() {
        let mut out = BatchOutputs::new();
        let mut lens = Vec::new();
        out.rooms([3, 0, 5]).for_each(|r| {
            lens.push(r.len());
            r.fill(7);
        });
        assert_eq!(lens, [3, 0, 5]);
        out.finish(WrittenItems::from_results(vec![
            Ok(2),
            Err(Error::Internal("x".into())),
            Ok(5),
        ]));
        assert_eq!(out.len(), 3);
        assert_eq!(out.get(0).unwrap().unwrap(), &[7, 7]);
        assert!(out.get(1).unwrap().is_err());
        assert_eq!(out.get(2).unwrap().unwrap(), &[7; 5]);
        assert!(out.get(3).is_none());
        let before = out.buf.as_ptr();
        let rooms = out.rooms([4, 4]);
        assert_eq!(rooms.len(), 2);
        rooms.for_each(|r| r[0] = 9);
        out.finish(WrittenItems::from_results(vec![Ok(4), Ok(1)]));
        assert_eq!(out.buf.as_ptr(), before, "a buffer large enough is reused");
        assert_eq!(
            out.get(1).unwrap().unwrap(),
            &[9],
            "the second room moved to 4..8"
        );
        assert_eq!(out.capacity(), 8);
        let _ = out.rooms([100]);
        assert_eq!(out.capacity(), 100);
        assert!(
            out.is_empty(),
            "results are forgotten until the call finishes"
        );
    }

    #[test]
    fn a_result_longer_than_its_room_is_an_error_not_a_read_past_it() {
        let mut out = BatchOutputs::new();
        let _ = out.rooms([2, 2]);
        out.finish(WrittenItems::from_results(vec![Ok(3), Ok(2)]));
        assert!(out.get(0).unwrap().is_err());
        assert_eq!(out.get(1).unwrap().unwrap().len(), 2);
    }

    /// A dry run's items answer DryRunOperationException, and the buffer the caller keeps holds
    /// none of what they computed (`security_regression.rs`, the dry-run batch attack).
    #[test]
    fn a_dry_run_leaves_no_plaintext_in_the_kept_buffer() {
        let engine = crate::Engine::builder().worker_threads(2).build().unwrap();
        let key = engine
            .create_key(crate::CreateKeyRequest::default())
            .unwrap()
            .key_id;
        let secret = [0x5Au8; 48];
        let blob = engine
            .encrypt(&EncryptRequest::new(&key, &secret))
            .unwrap()
            .ciphertext_blob;
        for n in [3usize, 300] {
            let requests = vec![DecryptRequest::new(&blob); n];
            let mut out = BatchOutputs::new();
            engine.decrypt_batch_to(&requests, &mut out);
            assert!(
                out.buf.windows(16).any(|w| w == &secret[..16]),
                "the real call"
            );
            engine.dry_run().decrypt_batch_to(&requests, &mut out);
            assert!(out
                .iter()
                .all(|r| r.is_err_and(|e| e.code() == "DryRunOperationException")));
            assert!(
                out.buf.iter().all(|&b| b == 0),
                "{n} items: plaintext left behind"
            );
        }
    }

    #[test]
    fn clear_zeroes_and_debug_shows_counts_only() {
        let mut out = BatchOutputs::new();
        out.rooms([4]).for_each(|r| r.copy_from_slice(b"sekr"));
        out.finish(WrittenItems::from_results(vec![Ok(4)]));
        assert!(!format!("{out:?}").contains("sekr"));
        out.clear();
        assert!(out.buf.iter().all(|&b| b == 0));
        assert!(out.is_empty());
    }
}
