//! Refusing overlapping buffers: a call whose output range overlaps one of its input ranges (or
//! another output) gets `KP_STATUS_OVERLAPPING_BUFFERS` before any slice is formed from the raw
//! pointers (an `&[u8]` and an `&mut [u8]` over the same bytes is undefined behaviour, and a
//! seal that writes its header before reading the plaintext would corrupt the output).
//!
//! Ranges are compared by address only; nothing is read but the `kp_out`s that say where a buffer
//! is. Empty ranges, NULL pointers and lengths over `KP_MAX_LENGTH` (which the argument checks
//! refuse with `KP_STATUS_INVALID_LENGTH`) take no room. The usual batch (outputs in ascending
//! order, all on one side of the inputs) is checked in one pass; anything else is sorted and swept.
//!
//! Each export adds one call: [`refuse_overlap`] with its arguments' [`Span`]s (a `kp_out`
//! argument gives two, [`out_spans`]), or [`refuse_batch_overlap`] for a batch.

use super::failure::{Failure, Outcome};
use super::limits::{KP_MAX_BATCH_ITEMS, KP_MAX_LENGTH};
use super::status::kp_status;

/// One range of memory a call reads (`output` false) or writes.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Span {
    start: usize,
    end: usize,
    output: bool,
    /// The batch item it belongs to, or `usize::MAX` for an argument of a single call.
    item: usize,
    what: &'static str,
}

impl Span {
    fn new(ptr: *const u8, len: usize, output: bool, item: usize, what: &'static str) -> Self {
        let start = ptr as usize;
        // An absurd length is left to the argument checks (KP_STATUS_INVALID_LENGTH).
        let end = if ptr.is_null() || len > KP_MAX_LENGTH {
            start
        } else {
            start.saturating_add(len)
        };
        Span {
            start,
            end,
            output,
            item,
            what,
        }
    }

    /// An input range of a single call.
    pub(crate) fn input(ptr: *const u8, len: usize, what: &'static str) -> Self {
        Span::new(ptr, len, false, usize::MAX, what)
    }

    /// An output range of a single call.
    pub(crate) fn output(ptr: *const u8, len: usize, what: &'static str) -> Self {
        Span::new(ptr, len, true, usize::MAX, what)
    }

    /// The output of a value of type `T` (a length, a handle) at `ptr`.
    pub(crate) fn output_of<T>(ptr: *const T, what: &'static str) -> Self {
        Span::output(ptr.cast(), std::mem::size_of::<T>(), what)
    }

    /// An input range of batch item `item`.
    pub(crate) fn item_input(ptr: *const u8, len: usize, item: usize, what: &'static str) -> Self {
        Span::new(ptr, len, false, item, what)
    }

    /// The buffer of batch item `item` in the output array `array` ("outputs", "ciphertexts").
    pub(crate) fn item_output(
        ptr: *const u8,
        len: usize,
        item: usize,
        array: &'static str,
    ) -> Self {
        Span::new(ptr, len, true, item, array)
    }

    /// An array of `count` `T`s read (`output` false) or written.
    pub(crate) fn array<T>(ptr: *const T, count: usize, output: bool, what: &'static str) -> Self {
        let len = count.saturating_mul(std::mem::size_of::<T>());
        Span::new(ptr.cast(), len, output, usize::MAX, what)
    }

    fn is_empty(&self) -> bool {
        self.start >= self.end
    }

    fn name(&self) -> String {
        match (self.item, self.output) {
            (usize::MAX, _) => self.what.to_owned(),
            (item, false) => format!("items[{item}].{}", self.what),
            (item, true) => format!("{}[{item}].data", self.what),
        }
    }
}

/// The one-pass check, which answers only `true` for sure: item outputs in ascending order without
/// overlap, the other outputs (a few) apart from them and from each other, and every input on one
/// side of every output.
fn clearly_apart(spans: &[Span]) -> bool {
    let (mut inputs, mut outputs, mut items) = ((usize::MAX, 0), (usize::MAX, 0), (usize::MAX, 0));
    let mut previous_end = 0usize;
    for span in spans.iter().filter(|s| !s.is_empty()) {
        let hull = if !span.output {
            &mut inputs
        } else if span.item != usize::MAX {
            if span.start < previous_end {
                return false;
            }
            previous_end = span.end;
            items = (items.0.min(span.start), items.1.max(span.end));
            &mut outputs
        } else {
            &mut outputs
        };
        *hull = (hull.0.min(span.start), hull.1.max(span.end));
    }
    let apart = |a: (usize, usize), b: (usize, usize)| a.1 <= b.0 || b.1 <= a.0;
    let fixed_outputs = || {
        spans
            .iter()
            .filter(|s| s.output && s.item == usize::MAX && !s.is_empty())
    };
    let fixed_apart = fixed_outputs().enumerate().all(|(i, a)| {
        apart((a.start, a.end), items)
            && fixed_outputs()
                .skip(i + 1)
                .all(|b| apart((a.start, a.end), (b.start, b.end)))
    });
    fixed_apart && apart(inputs, outputs)
}

fn overlapping(a: &Span, b: &Span) -> Failure {
    Failure::new(
        kp_status::OverlappingBuffers,
        format!(
            "{} overlaps {}: an output may not share memory with an input or another output \
             (encrypt or decrypt into a separate buffer)",
            a.name(),
            b.name()
        ),
    )
}

/// Refuses `spans` if an output overlaps an input or another output. Reorders `spans`.
pub(crate) fn refuse_overlap(spans: &mut [Span]) -> Outcome<()> {
    if clearly_apart(spans) {
        return Ok(());
    }
    // Sorted by start, each range is checked against the furthest-reaching output (and, for an
    // output, input) before it: any overlapping pair is found at its later start.
    spans.sort_unstable_by_key(|s| s.start);
    let (mut last_input, mut last_output): (Option<Span>, Option<Span>) = (None, None);
    for span in spans.iter().filter(|s| !s.is_empty()) {
        if let Some(out) = last_output.filter(|o| o.end > span.start) {
            return Err(overlapping(span, &out));
        }
        if span.output {
            if let Some(input) = last_input.filter(|i| i.end > span.start) {
                return Err(overlapping(span, &input));
            }
        }
        let last = if span.output {
            &mut last_output
        } else {
            &mut last_input
        };
        if last.is_none_or(|l| l.end < span.end) {
            *last = Some(*span);
        }
    }
    Ok(())
}

/// The spans of an output argument such as a `kp_out`: the struct itself and the buffer it points
/// to (named `what` and `data`), both outputs. The struct is read by value when it is not NULL
/// and aligned (else both spans are empty, and the argument check that follows refuses it).
///
/// # Safety
/// `out` is NULL, misaligned, or points to a readable `O`.
pub(crate) unsafe fn out_spans<O: OutputSlot>(
    out: *const O,
    what: &'static str,
    data: &'static str,
) -> [Span; 2] {
    if out.is_null() || !out.is_aligned() {
        return [Span::output(std::ptr::null(), 0, what); 2];
    }
    // SAFETY: not NULL, aligned, and the caller promises a readable `O`; read by value.
    let (buffer, capacity) = unsafe { out.read() }.buffer();
    [
        Span::output_of(out, what),
        Span::output(buffer, capacity, data),
    ]
}

/// An output slot: a `kp_out` (its buffer; implemented beside it) or a batch item's status
/// (none).
pub(crate) trait OutputSlot: Copy {
    /// The bytes the slot's output goes to, if any.
    fn buffer(&self) -> (*const u8, usize);
}

impl OutputSlot for u32 {
    fn buffer(&self) -> (*const u8, usize) {
        (std::ptr::null(), 0)
    }
}

/// Refuses a batch whose outputs overlap its inputs or each other: the `items` array and each
/// item's byte inputs (`inputs` names them: `("plaintext", ptr, len)`), the output array
/// (`outputs`, called `array`) and each slot's buffer, and `more` (other arguments of the call).
/// Run before any output slice is formed; `outputs` is only read, by value (NULL, misaligned or
/// too many: left to the batch's own checks to refuse).
///
/// # Safety
/// `outputs` is NULL, misaligned, or points to `items.len()` readable `O`s.
pub(crate) unsafe fn refuse_batch_overlap<I, O: OutputSlot, const N: usize>(
    items: &[I],
    outputs: *const O,
    array: &'static str,
    inputs: impl Fn(&I) -> [(&'static str, *const u8, usize); N],
    more: &[Span],
) -> Outcome<()> {
    let count = items.len();
    if count == 0 || count > KP_MAX_BATCH_ITEMS || outputs.is_null() || !outputs.is_aligned() {
        return Ok(());
    }
    let mut spans = Vec::with_capacity((N + 1) * count + 2 + more.len());
    spans.push(Span::array(items.as_ptr(), count, false, "items"));
    spans.push(Span::array(outputs, count, true, array));
    spans.extend_from_slice(more);
    for (i, item) in items.iter().enumerate() {
        for (what, ptr, len) in inputs(item) {
            spans.push(Span::item_input(ptr, len, i, what));
        }
        // SAFETY: the caller promises `count` readable slots; read by value, no reference kept.
        let (ptr, len) = unsafe { outputs.add(i).read() }.buffer();
        spans.push(Span::item_output(ptr, len, i, array));
    }
    refuse_overlap(&mut spans)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One span per (address, length, is output) triple.
    fn spans(case: &[(usize, usize, bool)]) -> Vec<Span> {
        case.iter()
            .enumerate()
            .map(|(i, &(a, n, out))| Span::new(a as *const u8, n, out, i, "buffer"))
            .collect()
    }

    #[test]
    fn overlapping_outputs_and_inputs_are_found_in_any_order() {
        // In place, partly overlapping, an output inside an input, two outputs sharing bytes.
        let cases: [&[(usize, usize, bool)]; 5] = [
            &[(1000, 16, false), (1000, 99, true)],
            &[(1000, 16, false), (1015, 99, true)],
            &[(1000, 500, false), (1100, 10, true)],
            &[(5000, 10, false), (1000, 100, true), (1050, 100, true)],
            &[
                (9000, 8, false),
                (3000, 10, true),
                (1000, 10, true),
                (2995, 6, true),
            ],
        ];
        for case in cases {
            let mut spans = spans(case);
            let failure = refuse_overlap(&mut spans).expect_err(&format!("{case:?}"));
            assert_eq!(failure.status, kp_status::OverlappingBuffers);
            assert!(failure.message.contains("overlaps"), "{}", failure.message);
        }
    }

    #[test]
    fn separate_and_empty_ranges_pass() {
        let cases: [&[(usize, usize, bool)]; 6] = [
            &[(1000, 16, false), (1016, 99, true)],
            // An absurd capacity is the length checks' to refuse, as InvalidLength.
            &[(1000, 16, false), (1000, usize::MAX, true)],
            &[(2000, 16, false), (1000, 1000, true)],
            // Inputs may share memory; empty and NULL ranges take none.
            &[
                (1000, 16, false),
                (1000, 16, false),
                (1016, 0, true),
                (0, 50, true),
            ],
            // Outputs out of order, interleaved with inputs.
            &[
                (3000, 10, true),
                (1000, 10, true),
                (2000, 10, false),
                (1010, 10, false),
            ],
            &[(usize::MAX - 4, 100, true), (1000, 10, false)],
        ];
        for case in cases {
            let mut spans = spans(case);
            refuse_overlap(&mut spans).unwrap_or_else(|f| panic!("{case:?}: {}", f.message));
        }
    }
}
