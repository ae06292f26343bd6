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

use std::ops::Range;

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

/// The output buffers of a batch's items, of type `B` each: cut into jobs with
/// [`Outputs::split_at`], then handed out in item order by [`Outputs::for_each`].
pub(crate) trait Outputs<B>: Send + Sized {
    /// Items that have a buffer.
    fn len(&self) -> usize;
    /// The buffers of the first `mid` items, and of the rest (`mid` at most [`Outputs::len`]).
    fn split_at(self, mid: usize) -> (Self, Self);
    /// Calls `each` with every item's buffer, in order.
    fn for_each(self, each: impl FnMut(&mut B));
}

impl<B: Send> Outputs<B> for &mut [B] {
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

impl<'a> Outputs<&'a mut [u8]> for Rooms<'a> {
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
