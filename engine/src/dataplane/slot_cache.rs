//! Per-thread slots for the data plane's caches (derived keys, cached access decisions): each
//! thread takes its slot's value, uses it exclusively and puts it back, with no lock.
//!
//! A key has three such caches (its access decisions; per version, its encrypt sessions and its
//! decrypt keys), and an engine may hold a million keys, so what a cache costs before a thread
//! uses it matters as much as what it costs on a hot key. A cache costs one pointer until the
//! data plane first uses it, then 256 bytes holding the first thread's slot (a cache-line pair,
//! so that two cores using a hot key never write the same line), and a slot for each other thread
//! that uses it. A key used by one thread on a 16-core machine holds three such tables (768
//! bytes), where one slot per possible thread held 32 slots per cache (12 KB a key).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

use crossbeam_utils::atomic::AtomicCell;
use crossbeam_utils::CachePadded;
use once_cell::race::OnceBox;

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

/// The slot this thread uses in every cache (threads beyond the slot count share).
fn slot_index() -> usize {
    thread_slot() & (slot_count() - 1)
}

/// Per-thread slots, each on cache lines of its own, each holding at most one `T`. A thread
/// takes its slot's value, uses it exclusively, and puts it back: no lock, and no cache line
/// written by two cores in the common case.
///
/// A cache costs one pointer until the data plane first uses it. The first thread to use it
/// allocates its table with that thread's slot inside (one allocation, one pointer from the key,
/// as near to a cold key as a slot in a plain array of slots would be); each other thread number
/// gets a slot of its own when it first uses the cache, through a table of pointers allocated
/// then (written once per thread number, then only read).
pub(crate) struct SlotCache<T> {
    table: OnceBox<Table<T>>,
}

/// A cache's table: the first user's slot, and the others' when they come. Its `CachePadded`
/// slot makes it 128-byte aligned, so the fields every thread reads share no line with the slot
/// one thread writes. (The alignment has a second effect, measured in docs/performance.md: glibc
/// serves it with `memalign`; the same table from plain `malloc` left DescribeKey at a million
/// keys 2–4× slower, the small allocations around it slowed by how they were carved.) In
/// declared order (`repr(C)`): the read fields on the first line pair, the slot on the second.
#[repr(C)]
struct Table<T> {
    /// The slot number of the thread that first used the cache: its slot is `own`.
    owner: usize,
    /// Every other slot number's slot, allocated as threads with those numbers first use the
    /// cache (the entry for `owner` stays empty).
    others: OnceLock<Box<[OnceBox<Slot<T>>]>>,
    own: Slot<T>,
}

/// One thread's slot: a value, or nothing, swapped atomically.
type Slot<T> = CachePadded<AtomicCell<Option<Box<T>>>>;

impl<T> Default for SlotCache<T> {
    fn default() -> Self {
        SlotCache {
            table: OnceBox::new(),
        }
    }
}

impl<T> SlotCache<T> {
    fn slot(&self) -> &AtomicCell<Option<Box<T>>> {
        let index = slot_index();
        let table = self.table.get_or_init(|| {
            Box::new(Table {
                owner: index,
                others: OnceLock::new(),
                own: CachePadded::new(AtomicCell::new(None)),
            })
        });
        if table.owner == index {
            return &table.own;
        }
        let others = table
            .others
            .get_or_init(|| (0..slot_count()).map(|_| OnceBox::new()).collect());
        others[index].get_or_init(|| Box::new(CachePadded::new(AtomicCell::new(None))))
    }

    /// Takes this thread's cached value, if any.
    pub(crate) fn take(&self) -> Option<Box<T>> {
        self.slot().take()
    }

    /// Puts a value back into this thread's slot (dropping whatever another thread left there).
    pub(crate) fn put(&self, value: Box<T>) {
        drop(self.slot().swap(Some(value)));
    }

    /// How many slots have been allocated: one per thread number that used the cache.
    #[cfg(test)]
    fn allocated_slots(&self) -> usize {
        self.table.get().map_or(0, |table| {
            1 + table.others.get().map_or(0, |others| {
                others.iter().filter(|s| s.get().is_some()).count()
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cache_no_thread_used_holds_no_slot_and_one_thread_holds_one() {
        let cache = SlotCache::<u64>::default();
        assert_eq!(cache.allocated_slots(), 0);
        assert!(cache.take().is_none());
        assert_eq!(cache.allocated_slots(), 1);
        cache.put(Box::new(7));
        assert_eq!(cache.take().as_deref(), Some(&7));
        assert!(
            cache.take().is_none(),
            "a taken value is gone until put back"
        );
        assert_eq!(cache.allocated_slots(), 1);
    }

    #[test]
    fn each_thread_number_gets_its_own_slot_and_value() {
        let cache = SlotCache::<usize>::default();
        let mine = slot_index();
        cache.put(Box::new(mine));
        let mut used = std::collections::BTreeSet::from([mine]);
        // Threads spawned one after another take new thread numbers (other tests' threads may
        // take some in between): a thread whose slot no thread used finds nothing, and one
        // whose slot another used finds that thread's value.
        for _ in 0..slot_count() + 2 {
            let (slot, found) = std::thread::scope(|s| {
                s.spawn(|| {
                    let found = cache.take();
                    cache.put(Box::new(slot_index()));
                    (slot_index(), found)
                })
                .join()
                .unwrap()
            });
            match found {
                None => assert!(used.insert(slot), "slot {slot}'s value was lost"),
                Some(value) => assert_eq!(*value, slot, "a thread took another slot's value"),
            }
            used.insert(slot);
            assert_eq!(cache.allocated_slots(), used.len());
        }
        assert!(
            used.len() > 1,
            "spawned threads all shared this thread's slot"
        );
    }

    #[test]
    fn dropping_the_cache_drops_every_thread_s_value() {
        use std::sync::atomic::AtomicUsize;
        static DROPPED: AtomicUsize = AtomicUsize::new(0);
        struct Counted;
        impl Drop for Counted {
            fn drop(&mut self) {
                DROPPED.fetch_add(1, Ordering::Relaxed);
            }
        }
        let cache = SlotCache::<Counted>::default();
        cache.put(Box::new(Counted));
        let mut slots = std::collections::BTreeSet::from([slot_index()]);
        // Values in other threads' slots too (a thread whose slot another used replaces and
        // drops that value: count only the slots that hold one at the end).
        for _ in 0..3 {
            std::thread::scope(|s| {
                s.spawn(|| {
                    slots.insert(slot_index());
                    cache.put(Box::new(Counted));
                });
            });
        }
        let replaced = DROPPED.load(Ordering::Relaxed);
        assert_eq!(replaced, 4 - slots.len());
        drop(cache);
        assert_eq!(
            DROPPED.load(Ordering::Relaxed),
            4,
            "a value outlived its cache"
        );
    }

    #[test]
    fn a_cache_is_one_pointer_until_used_and_its_slot_needs_no_lock() {
        assert_eq!(std::mem::size_of::<SlotCache<[u8; 512]>>(), 8);
        assert!(AtomicCell::<Option<Box<[u8; 512]>>>::is_lock_free());
        // The first user's slot sits on lines of its own within its table.
        assert_eq!(std::mem::align_of::<Table<[u8; 512]>>(), 128);
        assert_eq!(std::mem::size_of::<Table<[u8; 512]>>(), 256);
        assert_eq!(std::mem::offset_of!(Table<[u8; 512]>, own), 128);
    }
}
