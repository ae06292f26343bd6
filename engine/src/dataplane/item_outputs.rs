//! Where a batch's items write their outputs, as the batch runner hands them out: split into one
//! part per job, then one buffer per item.
//!
//! Two layouts: a slice of the caller's own buffers (`&mut [B]`, the `_into` calls), and
//! [`Rooms`], the rooms of a kept [`super::BatchOutputs`] buffer. Rooms are back to back in one
//! buffer, so a job's part is one sub-slice, and each thread cuts its items' rooms itself from
//! the layout the calling thread recorded. The calling thread writes no per-item pointer for the
//! helpers to read: a vector of them, rewritten by the calling thread every batch, had its cache
//! lines taken back from the helper's core at every write (at 1,000 MACs on two threads that
//! vector's construction was 15% of the calling thread's time).
//!
//! A shared batch does not split them on the calling thread either: it hands the threads the
//! buffers cut into jobs ([`Outputs::into_jobs`]), and the thread that claims a job takes that
//! job's part itself ([`Outputs::job`]).

#![allow(unsafe_code)] // reason: each thread takes its job's part of the buffers (`Outputs::job`).

use std::marker::PhantomData;
use std::ops::Range;
use std::ptr::NonNull;

use smallvec::SmallVec;

/// A caller's output buffer, which a refused item zeroes (the C ABI documents that the buffer of
/// an item that fails after it was handed to the engine is zeroed).
pub(crate) trait ItemOutput {
    fn clear(&mut self);
}

impl ItemOutput for () {
    fn clear(&mut self) {}
}

impl ItemOutput for &mut [u8] {
    fn clear(&mut self) {
        self.fill(0);
    }
}

/// Where a batch's jobs end: item indices, ascending, the last the batch's length. Made only by
/// [`JobEnds::checked`], so that jobs cut at them never overlap and together cover the batch,
/// whatever made them.
#[derive(Clone, Copy, Debug)]
pub(crate) struct JobEnds<'e> {
    ends: &'e [usize],
    len: usize,
}

impl<'e> JobEnds<'e> {
    /// `ends` if they ascend to `len`: the last is `len` (no ends only for no items).
    pub(crate) fn checked(ends: &'e [usize], len: usize) -> Option<Self> {
        let ascending = ends.windows(2).all(|w| w[0] <= w[1]);
        let covering = ends.last().copied().unwrap_or(0) == len;
        (ascending && covering).then_some(JobEnds { ends, len })
    }

    /// Items in the batch the jobs cover.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// How many jobs.
    pub(crate) fn count(&self) -> usize {
        self.ends.len()
    }

    /// Job `job`'s items (empty past the last job).
    pub(crate) fn items(&self, job: usize) -> Range<usize> {
        let Some(&end) = self.ends.get(job) else {
            return 0..0;
        };
        let start = job.checked_sub(1).map_or(0, |before| self.ends[before]);
        start..end
    }
}

/// The output buffers of a batch's items, of type `B` each: cut into jobs with
/// [`Outputs::split_at`] or [`Outputs::into_jobs`], then handed out in item order by
/// [`Outputs::for_each`].
pub(crate) trait Outputs<B>: Send + Sized {
    /// The buffers cut into jobs, for the threads of a shared batch to take a job's part each.
    type Jobs<'e>: Sync
    where
        Self: 'e;

    /// Items that have a buffer.
    fn len(&self) -> usize;
    /// The buffers of the first `mid` items, and of the rest (`mid` at most [`Outputs::len`]).
    fn split_at(self, mid: usize) -> (Self, Self);
    /// Calls `each` with every item's buffer, in order.
    fn for_each(self, each: impl FnMut(&mut B));
    /// The buffers cut into jobs at `ends` (a job past the buffers has none).
    fn into_jobs<'e>(self, ends: JobEnds<'e>) -> Self::Jobs<'e>
    where
        Self: 'e;
    /// Job `job`'s buffers.
    ///
    /// # Safety
    /// No other part of job `job` taken from `jobs` is alive: each job is taken at most once
    /// (a shared batch's threads take the jobs they claim, and each job is claimed once).
    unsafe fn job<'e>(jobs: &Self::Jobs<'e>, job: usize) -> Self
    where
        Self: 'e;
}

/// Calls `each` with every buffer of `outputs`, in order, as [`Outputs::for_each`] does; a panic
/// out of `each` clears every buffer, those handed out before it included, before it goes on.
/// The call fails, so no buffer holds an item's result (possibly plaintext). The batch that runs
/// on the calling thread alone uses it; a shared batch clears its jobs' buffers itself.
pub(crate) fn for_each_cleared_on_panic<B: ItemOutput, P: Outputs<B>>(
    outputs: P,
    each: impl FnMut(&mut B),
) {
    let len = outputs.len();
    let all = [len];
    // Always one job (`[len]` ascends to `len`); had it not been, the buffers go uncut.
    let Some(one_job) = JobEnds::checked(&all, len) else {
        return outputs.for_each(each);
    };
    let jobs = outputs.into_jobs(one_job);
    let mut unfinished = ClearedUnlessFinished::<B, P> {
        jobs: &jobs,
        armed: true,
        buffers: PhantomData,
    };
    // SAFETY: job 0 is taken here once; `ClearedUnlessFinished` takes it again only while
    // unwinding out of this `for_each`, whose part (and every `&mut B` from it) is gone by then.
    unsafe { P::job(&jobs, 0) }.for_each(each);
    unfinished.armed = false;
}

/// Clears the buffers of a one-job batch's outputs when dropped armed: on a panic out of the job.
struct ClearedUnlessFinished<'j, 'e, B: ItemOutput, P: Outputs<B> + 'e> {
    jobs: &'j P::Jobs<'e>,
    armed: bool,
    buffers: PhantomData<fn(&mut B)>,
}

impl<'e, B: ItemOutput, P: Outputs<B> + 'e> Drop for ClearedUnlessFinished<'_, 'e, B, P> {
    fn drop(&mut self) {
        if self.armed {
            // SAFETY: the one part of job 0 taken before was consumed by the `for_each` this
            // panic left (`for_each_cleared_on_panic`), so no other part of it is alive.
            unsafe { P::job(self.jobs, 0) }.for_each(|out| out.clear());
        }
    }
}

/// A slice of buffers cut into jobs: each job's part is taken through the pointer, by the one
/// thread that claimed it.
pub(crate) struct SliceJobs<'a, 'e, B> {
    start: NonNull<B>,
    len: usize,
    ends: JobEnds<'e>,
    buffers: PhantomData<&'a mut [B]>,
}

// SAFETY: a `SliceJobs` hands out `&mut B` to disjoint items (`SliceJobs::job`'s contract and
// the checked ends), one thread each, as a `&mut [B]` split across threads would: `B: Send`
// suffices.
unsafe impl<B: Send> Sync for SliceJobs<'_, '_, B> {}

impl<'a, 'e, B> SliceJobs<'a, 'e, B> {
    /// `slice` cut into jobs at `ends`.
    pub(crate) fn new(slice: &'a mut [B], ends: JobEnds<'e>) -> Self {
        SliceJobs {
            len: slice.len(),
            start: NonNull::from(slice).cast(),
            ends,
            buffers: PhantomData,
        }
    }

    /// Job `job`'s part of the slice (empty past the last job).
    ///
    /// # Safety
    /// No other part of job `job` taken from `self` is alive: each job is taken at most once.
    pub(crate) unsafe fn job(&self, job: usize) -> &'a mut [B] {
        let items = self.ends.items(job);
        let end = items.end.min(self.len);
        let start = items.start.min(end);
        // SAFETY: `start..end` lies within the slice `new` took (clamped to its length), which
        // it borrows for `'a`. Jobs' items are disjoint (the ends ascend: `JobEnds`), and the
        // caller takes each job at most once, so no two `&mut` overlap.
        unsafe { std::slice::from_raw_parts_mut(self.start.as_ptr().add(start), end - start) }
    }
}

impl<'a, B: Send> Outputs<B> for &'a mut [B] {
    type Jobs<'e>
        = SliceJobs<'a, 'e, B>
    where
        Self: 'e;

    fn len(&self) -> usize {
        <[B]>::len(self)
    }

    fn split_at(self, mid: usize) -> (Self, Self) {
        self.split_at_mut(mid)
    }

    fn for_each(self, mut each: impl FnMut(&mut B)) {
        for buffer in self {
            each(buffer);
        }
    }

    fn into_jobs<'e>(self, ends: JobEnds<'e>) -> SliceJobs<'a, 'e, B>
    where
        Self: 'e,
    {
        SliceJobs::new(self, ends)
    }

    unsafe fn job<'e>(jobs: &SliceJobs<'a, 'e, B>, job: usize) -> Self
    where
        Self: 'e,
    {
        // SAFETY: `Outputs::job`'s contract is `SliceJobs::job`'s.
        unsafe { jobs.job(job) }
    }
}

/// Rooms laid out back to back in one buffer: item `i`'s room is `ranges[i]`, in the buffer's
/// offsets, and `buf` starts at offset `base`.
pub(crate) struct Rooms<'a> {
    buf: &'a mut [u8],
    ranges: &'a [Range<usize>],
    base: usize,
}

impl<'a> Rooms<'a> {
    /// The rooms `ranges` of `buf`, laid out back to back from 0 and within `buf`, as
    /// [`super::BatchOutputs`] lays them out. That is checked in debug builds only: a check per
    /// batch was a pass over every room on the calling thread while the helpers waited. A
    /// layout that broke it could only hand out rooms shorter than, or elsewhere than, laid out,
    /// never memory outside `buf` nor one byte to two rooms: each is cut from what is left.
    pub(crate) fn laid_out(buf: &'a mut [u8], ranges: &'a [Range<usize>]) -> Self {
        debug_assert_eq!(rooms_that_fit(buf.len(), ranges), ranges.len());
        Rooms {
            buf,
            ranges,
            base: 0,
        }
    }
}

/// How many of `ranges`, from the first, lie back to back from 0 within a buffer of `len` bytes.
fn rooms_that_fit(len: usize, ranges: &[Range<usize>]) -> usize {
    let mut end = 0;
    ranges
        .iter()
        .take_while(|r| {
            let ok = r.start == end && r.start <= r.end && r.end <= len;
            end = r.end;
            ok
        })
        .count()
}

/// Rooms cut into jobs: job `k` holds the bytes from `cuts[k]` to `cuts[k + 1]` of the buffer,
/// cut where its first room starts. The cuts never go back, so no byte is in two jobs even were
/// the layout not back to back.
pub(crate) struct RoomJobs<'a, 'e> {
    start: NonNull<u8>,
    ranges: &'a [Range<usize>],
    base: usize,
    ends: JobEnds<'e>,
    /// One more than the jobs: the last is the buffer's length.
    cuts: SmallVec<[usize; 17]>,
    buffer: PhantomData<&'a mut [u8]>,
}

// SAFETY: a `RoomJobs` hands out `&mut [u8]` over disjoint byte ranges (the cuts ascend), one
// job to one thread (`Outputs::job`'s contract); bytes may be written from any thread.
unsafe impl Sync for RoomJobs<'_, '_> {}

impl<'a> Outputs<&'a mut [u8]> for Rooms<'a> {
    type Jobs<'e>
        = RoomJobs<'a, 'e>
    where
        Self: 'e;

    fn len(&self) -> usize {
        self.ranges.len()
    }

    fn split_at(self, mid: usize) -> (Self, Self) {
        let mid = mid.min(self.ranges.len());
        let (left, right) = self.ranges.split_at(mid);
        let cut = right
            .first()
            .map_or(self.buf.len(), |r| r.start - self.base)
            .min(self.buf.len());
        let (head, tail) = self.buf.split_at_mut(cut);
        (
            Rooms {
                buf: head,
                ranges: left,
                base: self.base,
            },
            Rooms {
                buf: tail,
                ranges: right,
                base: self.base + cut,
            },
        )
    }

    fn for_each(self, mut each: impl FnMut(&mut &'a mut [u8])) {
        let mut rest = self.buf;
        for range in self.ranges {
            let len = range.len().min(rest.len());
            let (mut room, tail) = std::mem::take(&mut rest).split_at_mut(len);
            each(&mut room);
            rest = tail;
        }
    }

    fn into_jobs<'e>(self, ends: JobEnds<'e>) -> RoomJobs<'a, 'e>
    where
        Self: 'e,
    {
        let len = self.buf.len();
        let mut cuts = SmallVec::with_capacity(ends.count() + 1);
        let mut cut = 0;
        for job in 0..ends.count() {
            let first = ends.items(job).start;
            let at = self
                .ranges
                .get(first)
                .map_or(len, |r| r.start.saturating_sub(self.base));
            cut = at.clamp(cut, len);
            cuts.push(cut);
        }
        cuts.push(len);
        RoomJobs {
            start: NonNull::from(self.buf).cast(),
            ranges: self.ranges,
            base: self.base,
            ends,
            cuts,
            buffer: PhantomData,
        }
    }

    unsafe fn job<'e>(jobs: &RoomJobs<'a, 'e>, job: usize) -> Self
    where
        Self: 'e,
    {
        let (Some(&from), Some(&to)) = (jobs.cuts.get(job), jobs.cuts.get(job + 1)) else {
            return Rooms::laid_out(&mut [], &[]);
        };
        let items = jobs.ends.items(job);
        let ranges = jobs
            .ranges
            .get(items.start.min(jobs.ranges.len())..items.end.min(jobs.ranges.len()))
            .unwrap_or_default();
        // SAFETY: `from..to` lies within the buffer `into_jobs` took, which it borrows for `'a`
        // (every cut is clamped to its length, and they ascend). Jobs' byte ranges are
        // disjoint, and the caller takes each job at most once, so no two `&mut` overlap.
        let buf =
            unsafe { std::slice::from_raw_parts_mut(jobs.start.as_ptr().add(from), to - from) };
        Rooms {
            buf,
            ranges,
            base: jobs.base + from,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect<'a>(rooms: Rooms<'a>) -> Vec<usize> {
        let mut lens = Vec::new();
        rooms.for_each(|room| lens.push(room.len()));
        lens
    }

    #[test]
    fn rooms_split_anywhere_and_hand_out_each_items_room() {
        let mut buf = vec![0u8; 12];
        let ranges = [0..3, 3..3, 3..8, 8..12];
        for mid in 0..=4 {
            let (left, right) = Rooms::laid_out(&mut buf, &ranges).split_at(mid);
            assert_eq!((left.len(), right.len()), (mid, 4 - mid));
            let mut both = collect(left);
            both.extend(collect(right));
            assert_eq!(both, vec![3, 0, 5, 4], "split at {mid}");
        }
        // Each item writes its own room, wherever the split.
        let (left, right) = Rooms::laid_out(&mut buf, &ranges).split_at(2);
        let (mut i, mut j) = (0u8, 10u8);
        left.for_each(|room| {
            i += 1;
            room.fill(i);
        });
        right.for_each(|room| {
            j += 1;
            room.fill(j);
        });
        assert_eq!(buf, [1, 1, 1, 11, 11, 11, 11, 11, 12, 12, 12, 12]);
    }

    #[test]
    fn job_ends_are_taken_only_if_they_ascend_to_the_batch_length() {
        let ends = JobEnds::checked(&[3, 3, 7, 10], 10).unwrap();
        assert_eq!(ends.count(), 4);
        let jobs: Vec<_> = (0..5).map(|k| ends.items(k)).collect();
        assert_eq!(jobs, vec![0..3, 3..3, 3..7, 7..10, 0..0]);
        assert!(JobEnds::checked(&[3, 2, 10], 10).is_none(), "descending");
        assert!(JobEnds::checked(&[3, 11], 10).is_none(), "past the batch");
        assert!(
            JobEnds::checked(&[3, 7], 10).is_none(),
            "short of the batch"
        );
        assert!(JobEnds::checked(&[], 3).is_none(), "items in no job");
        assert!(JobEnds::checked(&[], 0).is_some());
        assert_eq!(JobEnds::checked(&[0, 4], 4).map(|e| e.len()), Some(4));
    }

    /// Each job's part of a slice of buffers is its own items' buffers, whichever order the
    /// jobs are taken in.
    #[test]
    fn a_slice_cut_into_jobs_hands_each_job_its_own_buffers() {
        let mut buffers: Vec<u8> = vec![0; 10];
        let ends = [3, 3, 7, 10];
        let jobs = Outputs::<u8>::into_jobs(&mut buffers[..], JobEnds::checked(&ends, 10).unwrap());
        for k in [2, 0, 3, 1, 4] {
            // SAFETY: each job is taken once.
            let part: &mut [u8] = unsafe { <&mut [u8] as Outputs<u8>>::job(&jobs, k) };
            assert_eq!(part.len(), [3, 0, 4, 3, 0][k]);
            part.fill(k as u8 + 1);
        }
        assert_eq!(buffers, [1, 1, 1, 3, 3, 3, 3, 4, 4, 4]);
    }

    /// Rooms cut into jobs hand each job the rooms `split_at` would; and were a layout not
    /// back to back (which only a debug build refuses), no byte would be in two jobs.
    #[test]
    fn rooms_cut_into_jobs_hand_out_each_byte_once() {
        let mut buf = vec![0u8; 12];
        let ranges = [0..3, 3..3, 3..8, 8..12];
        let ends = [1, 3, 4];
        let jobs =
            Rooms::laid_out(&mut buf, &ranges).into_jobs(JobEnds::checked(&ends, 4).unwrap());
        let mut lens = Vec::new();
        for k in [1, 0, 2] {
            // SAFETY: each job is taken once.
            let part = unsafe { Rooms::job(&jobs, k) };
            part.for_each(|room| {
                lens.push((k, room.len()));
                room.fill(k as u8 + 1);
            });
        }
        lens.sort_unstable();
        assert_eq!(lens, vec![(0, 3), (1, 0), (1, 5), (2, 4)]);
        assert_eq!(buf, [1, 1, 1, 2, 2, 2, 2, 2, 3, 3, 3, 3]);
        // A layout that goes back (made directly: `laid_out` refuses it in debug builds).
        let mut buf = vec![0u8; 10];
        let ranges = [0..4, 6..10, 2..6, 8..9];
        let ends = [1, 2, 3, 4];
        let rooms = Rooms {
            buf: &mut buf,
            ranges: &ranges,
            base: 0,
        };
        let jobs = rooms.into_jobs(JobEnds::checked(&ends, 4).unwrap());
        let mut taken = [0u8; 10];
        let mut parts = Vec::new();
        for k in 0..4 {
            // SAFETY: each job is taken once.
            parts.push(unsafe { Rooms::job(&jobs, k) });
        }
        for part in parts {
            part.for_each(|room| room.iter_mut().for_each(|b| *b += 1));
        }
        taken.copy_from_slice(&buf);
        assert!(
            taken.iter().all(|&b| b <= 1),
            "a byte in two jobs: {taken:?}"
        );
    }

    #[test]
    fn only_rooms_back_to_back_from_zero_within_the_buffer_fit() {
        assert_eq!(rooms_that_fit(6, &[0..2, 2..6]), 2);
        assert_eq!(rooms_that_fit(6, &[0..2, 2..6, 6..9]), 2, "past the end");
        assert_eq!(rooms_that_fit(6, &[0..2, 3..4]), 1, "a gap");
        assert_eq!(rooms_that_fit(6, &[0..2, 1..4]), 1, "an overlap");
        assert_eq!(rooms_that_fit(6, &[1..2, 2..3]), 0, "not from zero");
        #[allow(clippy::reversed_empty_ranges)]
        let backwards = [0..2, 4..3];
        assert_eq!(rooms_that_fit(6, &backwards), 1, "backwards");
        assert_eq!(rooms_that_fit(6, &[]), 0);
    }

    /// A layout that does not fit, were one ever made: a debug build refuses it; a release
    /// build (which does not check) hands out only bytes of the buffer, each to one room.
    #[test]
    #[cfg_attr(debug_assertions, should_panic = "assertion `left == right` failed")]
    fn a_layout_that_does_not_fit_hands_out_no_byte_outside_or_twice() {
        let mut buf = vec![0u8; 6];
        let mut lens = Vec::new();
        Rooms::laid_out(&mut buf, &[0..4, 1..5, 5..9]).for_each(|room| {
            lens.push(room.len());
            room.iter_mut().for_each(|b| *b += 1);
        });
        assert_eq!(lens, [4, 2, 0]);
        assert_eq!(buf, [1; 6]);
    }
}
