//! Prefetch hints: asking the CPU for cache lines before the code that needs them, so that the
//! lines arrive together instead of one miss after another. A hint reads and writes no data and
//! faults on no address, so any address may be given, even one no longer in use.

#![allow(unsafe_code)] // reason: the prefetch instructions, which have no memory effects.

use std::sync::atomic::{AtomicPtr, AtomicUsize, Ordering::Relaxed};

/// Memory to ask for: where it starts, how many bytes, and whether it will be written (then its
/// lines are asked for with intent to write, so that a first store or atomic finds the line this
/// core's alone instead of taking it from another core).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Lines {
    start: *const u8,
    len: usize,
    write: bool,
}

impl Lines {
    /// The lines of `value`, to be read.
    pub(crate) fn read<T: ?Sized>(value: &T) -> Lines {
        Lines {
            start: std::ptr::from_ref(value).cast(),
            len: std::mem::size_of_val(value),
            write: false,
        }
    }

    /// The lines of `value`, to be written.
    pub(crate) fn write<T: ?Sized>(value: &T) -> Lines {
        Lines {
            write: true,
            ..Lines::read(value)
        }
    }

    /// Asks for every line, at most `max_lines` of them.
    pub(crate) fn ask(self, max_lines: usize) {
        for offset in line_offsets(self.start as usize, self.len, max_lines) {
            let at = self
                .start
                .wrapping_sub(self.start as usize % LINE)
                .wrapping_add(offset);
            if self.write {
                for_write(at);
            } else {
                for_read(at);
            }
        }
    }
}

/// The cache line size asked for by (x86-64's, and most others').
const LINE: usize = 64;

/// The offsets, from the start of the line that holds byte `start`, of the first `max_lines`
/// lines that hold the `len` bytes from `start`.
fn line_offsets(start: usize, len: usize, max_lines: usize) -> impl Iterator<Item = usize> {
    let lines = if len == 0 {
        0
    } else {
        (start % LINE + len).div_ceil(LINE)
    };
    (0..lines.min(max_lines)).map(|line| line * LINE)
}

/// Room for a few [`Lines`] that one thread posts and another asks for: each field is its own
/// atomic, so a reader racing a writer gets a mixture, which is still only a hint.
#[derive(Debug)]
pub(crate) struct PostedLines<const N: usize> {
    starts: [AtomicPtr<u8>; N],
    /// Length in bytes, shifted left one, with the low bit for "to be written".
    lens: [AtomicUsize; N],
}

impl<const N: usize> Default for PostedLines<N> {
    fn default() -> Self {
        PostedLines {
            starts: std::array::from_fn(|_| AtomicPtr::new(std::ptr::null_mut())),
            lens: std::array::from_fn(|_| AtomicUsize::new(0)),
        }
    }
}

impl<const N: usize> PostedLines<N> {
    /// Posts `lines` (the first `N`), clearing the rest.
    pub(crate) fn post(&self, lines: &[Lines]) {
        for i in 0..N {
            let (start, len) = lines.get(i).map_or((std::ptr::null_mut(), 0), |l| {
                (l.start.cast_mut(), (l.len << 1) | usize::from(l.write))
            });
            self.starts[i].store(start, Relaxed);
            self.lens[i].store(len, Relaxed);
        }
    }

    /// Asks for the lines posted, at most `max_lines` of each range.
    pub(crate) fn ask(&self, max_lines: usize) {
        for i in 0..N {
            let start = self.starts[i].load(Relaxed);
            let len = self.lens[i].load(Relaxed);
            if !start.is_null() {
                Lines {
                    start: start.cast_const(),
                    len: len >> 1,
                    write: len & 1 == 1,
                }
                .ask(max_lines);
            }
        }
    }
}

#[inline]
fn for_read(at: *const u8) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        // SAFETY: a prefetch is a hint: it reads and writes no data and faults on no address.
        unsafe { _mm_prefetch::<_MM_HINT_T0>(at.cast::<i8>()) };
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = at;
}

/// PREFETCHW where the CPU has it, else a read prefetch.
#[inline]
fn for_write(at: *const u8) {
    #[cfg(target_arch = "x86_64")]
    if has_prefetchw() {
        // SAFETY: the CPU has PREFETCHW (`has_prefetchw`). A prefetch is a hint: it reads and
        // writes no data and faults on no address; it uses no stack and no flags.
        unsafe {
            std::arch::asm!(
                "prefetchw [{0}]",
                in(reg) at,
                options(nostack, preserves_flags, readonly)
            );
        }
        return;
    }
    for_read(at);
}

/// Whether the CPU has PREFETCHW (CPUID 8000_0001h, ECX bit 8: every AMD64 CPU, Intel's since
/// Broadwell), asked once. (`target_feature = "prfchw"` is unstable, and without it
/// `_MM_HINT_ET0` compiles to a read prefetch.)
#[cfg(target_arch = "x86_64")]
fn has_prefetchw() -> bool {
    static HAS: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *HAS.get_or_init(|| {
        let max_extended = std::arch::x86_64::__cpuid(0x8000_0000).eax;
        max_extended >= 0x8000_0001 && std::arch::x86_64::__cpuid(0x8000_0001).ecx & (1 << 8) != 0
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_line_that_holds_a_byte_of_the_range_is_asked_for() {
        let offsets = |start, len, max| line_offsets(start, len, max).collect::<Vec<_>>();
        assert_eq!(offsets(0, 64, 16), [0]);
        assert_eq!(offsets(64, 65, 16), [0, 64]);
        assert_eq!(
            offsets(60, 8, 16),
            [0, 64],
            "eight bytes across a line's end"
        );
        assert_eq!(offsets(127, 1, 16), [0]);
        assert_eq!(
            offsets(5, 0, 16),
            Vec::<usize>::new(),
            "nothing for no bytes"
        );
        assert_eq!(offsets(0, 64 * 40, 16).len(), 16, "at most the lines asked");
        // Asking is only a hint: any address, used or not, is fine.
        Lines::write(&[0u8; 200]).ask(usize::MAX);
        let posted = PostedLines::<2>::default();
        posted.post(&[
            Lines::read(&1u64),
            Lines::write(&[0u32; 40]),
            Lines::read(&2u8),
        ]);
        posted.ask(4);
        posted.post(&[]);
        posted.ask(4);
    }
}
