//! Refusing overlapping buffers: a call whose output range overlaps one of its input ranges (or
//! another output) gets `KP_STATUS_OVERLAPPING_BUFFERS` before any slice is formed from the raw
//! pointers (an `&[u8]` and an `&mut [u8]` over the same bytes is undefined behaviour, and a
//! seal that writes its header before reading the plaintext would corrupt the output).
//!
//! Ranges are compared by address only; nothing is read. Empty ranges and NULL pointers take no
//! room. The usual batch (outputs in ascending order, all on one side of the inputs) is checked in
//! one pass; anything else is sorted and swept.

use super::ffi::{Failure, Outcome};
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
        let end = if ptr.is_null() {
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

    /// An output range of batch item `item`.
    pub(crate) fn item_output(ptr: *const u8, len: usize, item: usize, what: &'static str) -> Self {
        Span::new(ptr, len, true, item, what)
    }

    fn is_empty(&self) -> bool {
        self.start >= self.end
    }

    fn name(&self) -> String {
        match (self.item, self.output) {
            (usize::MAX, _) => self.what.to_owned(),
            (item, false) => format!("items[{item}].{}", self.what),
            (item, true) => format!("outputs[{item}].{}", self.what),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn at(address: usize) -> *const u8 {
        address as *const u8
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
            let mut spans: Vec<Span> = case
                .iter()
                .enumerate()
                .map(|(i, &(a, n, out))| Span::new(at(a), n, out, i, "buffer"))
                .collect();
            let failure = refuse_overlap(&mut spans).expect_err(&format!("{case:?}"));
            assert_eq!(failure.status, kp_status::OverlappingBuffers);
            assert!(failure.message.contains("overlaps"), "{}", failure.message);
        }
    }

    #[test]
    fn separate_and_empty_ranges_pass() {
        let cases: [&[(usize, usize, bool)]; 5] = [
            &[(1000, 16, false), (1016, 99, true)],
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
            let mut spans: Vec<Span> = case
                .iter()
                .enumerate()
                .map(|(i, &(a, n, out))| Span::new(at(a), n, out, i, "buffer"))
                .collect();
            refuse_overlap(&mut spans).unwrap_or_else(|f| panic!("{case:?}: {}", f.message));
        }
    }
}
