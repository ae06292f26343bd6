//! Per-thread slots for the data plane's caches (derived keys, cached access decisions): each
//! thread takes its slot's value, uses it exclusively and puts it back, with no lock.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

use crossbeam_utils::atomic::AtomicCell;
use crossbeam_utils::CachePadded;

fn slot_count() -> usize {
    static COUNT: OnceLock<usize> = OnceLock::new();
    *COUNT.get_or_init(|| {
        let cores = std::thread::available_parallelism().map_or(4, |n| n.get());
        (cores * 2).next_power_of_two().clamp(4, 256)
    })
}

/// This thread's slot number, assigned on first use.
fn thread_slot() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local!(static SLOT: usize = NEXT.fetch_add(1, Ordering::Relaxed));
    SLOT.with(|s| *s)
}

/// Per-thread slots, each on its own cache line, each holding at most one `T`. A thread takes
/// its slot's value, uses it exclusively, and puts it back: no lock, and no cache line shared
/// between cores in the common case. The slot array is allocated on first use, so keys the data
/// plane never touches cost nothing.
pub(crate) struct SlotCache<T> {
    slots: OnceLock<Box<[Slot<T>]>>,
}

/// One thread's slot: a value, or nothing, swapped atomically.
type Slot<T> = CachePadded<AtomicCell<Option<Box<T>>>>;

impl<T> Default for SlotCache<T> {
    fn default() -> Self {
        SlotCache {
            slots: OnceLock::new(),
        }
    }
}

impl<T> SlotCache<T> {
    fn slot(&self) -> &AtomicCell<Option<Box<T>>> {
        let slots = self.slots.get_or_init(|| {
            (0..slot_count())
                .map(|_| CachePadded::new(AtomicCell::new(None)))
                .collect()
        });
        &slots[thread_slot() & (slots.len() - 1)]
    }

    /// Takes this thread's cached value, if any.
    pub(crate) fn take(&self) -> Option<Box<T>> {
        self.slot().take()
    }

    /// Puts a value back into this thread's slot (dropping whatever another thread left there).
    pub(crate) fn put(&self, value: Box<T>) {
        drop(self.slot().swap(Some(value)));
    }
}
