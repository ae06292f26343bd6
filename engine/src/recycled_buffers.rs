//! Output buffers that the allocating calls hand out and take back when their holder drops them.
//!
//! A batch of large results freed together goes back to the kernel: glibc trims the top of its
//! heap once 128 KiB lie free there, and the next batch faults every page in again (1000 × 16 KiB
//! encrypted spent 43–52% of its time in the kernel, at 0.46 of sealing into buffers the caller
//! keeps). Rather than ask every user to tune their allocator, the engine keeps the buffers
//! itself: [`crate::dataplane::CiphertextBlob`] and [`crate::SecretBytes`] put their buffer back
//! here when dropped, and the next result of a like size takes it.
//!
//! - Only buffers of 1 KiB to 4 MiB are kept: below that the allocator's own caches serve, and
//!   every size kept is one of eight classes per doubling, so a buffer fits the next result that
//!   rounds to its class (at most 12.5% more room than asked).
//! - Each thread keeps up to [`STASH_MAX`] bytes of them for itself, so the items of a batch take
//!   without a lock another thread uses, and trades with the shared pool a quarter-megabyte at
//!   a time. The shared pool holds at most [`HELD_MAX`] bytes; past that a dropped buffer is
//!   freed.
//! - A buffer goes back to the thread that wrote it (its *home*, one of [`HOMES`] shelves), not
//!   to the thread that drops it. A batch's helper writes its items' outputs and the caller
//!   drops them all; kept by the caller, the helper's buffers would move from core to core on
//!   every batch (two threads encrypting 1 KiB items ran at 0.68 of glibc's heap that way).
//! - Nothing waits: a class another thread is using, or one whose lock a `fork` left taken in
//!   the child, is passed by, and the buffer is allocated or freed as if there were no pool.
//! - **No secret is ever kept.** A secret's buffer is zeroed over its whole capacity before the
//!   pool takes it, and zeroized (volatile writes) if the pool refuses it. So a kept buffer holds
//!   zeros or an earlier ciphertext, which is public.
//! - A kept buffer keeps its length, every byte up to it initialized, so [`take_to_overwrite`]
//!   hands one out without writing what it already holds; a caller of that overwrites every
//!   byte it exposes. [`take_zeroed`] zero-fills.

use std::cell::RefCell;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use zeroize::Zeroize;

/// The smallest buffer kept.
const MIN: usize = 1024;
/// The largest buffer kept.
const MAX: usize = 4 << 20;
/// Size classes per doubling of size.
const PER_DOUBLING: usize = 8;
/// log2 of the largest size below the first class: classes cover (512, `MAX`].
const FIRST_EXPONENT: u32 = 9;
/// Classes from `MIN` to `MAX`: 13 doublings (2^9, 2^22], eight classes each.
const CLASSES: usize = (22 - FIRST_EXPONENT as usize) * PER_DOUBLING;
/// Shelves of the shared pool: a thread's buffers go back to its shelf (threads past this many
/// share shelves).
pub const HOMES: usize = 16;
/// The most bytes of idle buffers the shared pool holds at once.
pub const HELD_MAX: usize = 64 << 20;
/// The most bytes of idle buffers one thread keeps for itself; past that it puts half of the
/// class it just grew on its shelf.
pub const STASH_MAX: usize = 1 << 20;
/// About how many bytes of one class a thread with none takes from its shelf at once.
const REFILL: usize = 256 << 10;

/// The home of a buffer: the shelf of the thread that took and wrote it.
pub(crate) type Home = u8;

/// One shelf: idle buffers by class.
type Shelf = [Mutex<Vec<Vec<u8>>>; CLASSES];

/// Idle buffers shared by every thread, on one shelf per home, and the bytes they hold.
pub(crate) struct Pool {
    shelves: [Shelf; HOMES],
    held: AtomicUsize,
    held_max: usize,
}

/// The buffers one thread keeps in front of its shelf, by class.
pub(crate) struct Stash {
    classes: [Vec<Vec<u8>>; CLASSES],
    bytes: usize,
    home: Home,
}

/// The pool every result of the allocating calls comes from and goes back to.
static POOL: Pool = Pool::new(HELD_MAX);

/// The next home to give a thread.
static NEXT_HOME: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    static STASH: RefCell<Option<Stash>> = const { RefCell::new(None) };
}

/// Runs `with_stash` on this thread's stash with `value`, or `without` where there is no stash
/// to use (the thread's locals are being torn down, or the stash is in use further up this
/// thread's stack). Each gets `value` as an option only so that either can: it is always there.
fn on_this_thread<V, T>(
    value: V,
    with_stash: impl FnOnce(&mut Stash, Option<V>) -> T,
    without: impl FnOnce(Option<V>) -> T,
) -> T {
    let mut value = Some(value);
    let done = STASH.try_with(|stash| {
        let mut stash = stash.try_borrow_mut().ok()?;
        let stash = stash.get_or_insert_with(|| {
            // Truncation intended: homes are handed out round the shelves.
            #[allow(clippy::cast_possible_truncation)]
            let home = (NEXT_HOME.fetch_add(1, Ordering::Relaxed) % HOMES) as Home;
            Stash::new(home)
        });
        Some(with_stash(stash, value.take()))
    });
    match done {
        Ok(Some(answer)) => answer,
        _ => without(value.take()),
    }
}

/// Where `buffer`, written on this thread, goes back to: this thread's home if it is a size
/// kept (any home otherwise: it will be freed).
pub(crate) fn home_for(buffer: &Vec<u8>) -> Home {
    match class_kept(buffer.capacity()) {
        Some(_) => on_this_thread((), |stash, _| stash.home, |_| 0),
        None => 0,
    }
}

/// A buffer of `len` zero bytes, kept from an earlier result when there is one of that class.
// The four entry points stay out of line: inlined into the per-item code they moved how fat LTO
// laid out the sealing path that every batch call shares, and `encrypt_batch_into` at 64 B lost
// 3% (0.73 of the bare seal against 0.76); out of line it measured 0.79-0.81.
#[inline(never)]
pub(crate) fn take_zeroed(len: usize) -> Vec<u8> {
    on_this_thread(
        (),
        |stash, _| stash.take(&POOL, len, true),
        |_| POOL.take(0, len, true),
    )
}

/// A buffer of `len` bytes whose contents are not specified (zeros or an earlier, public
/// ciphertext), for a caller that writes every byte it will expose: an output sealed or opened
/// into it, then cut to the length written.
#[inline(never)]
pub(crate) fn take_to_overwrite(len: usize) -> Vec<u8> {
    on_this_thread(
        (),
        |stash, _| stash.take(&POOL, len, false),
        |_| POOL.take(0, len, false),
    )
}

/// Gives back a buffer that holds nothing secret, to `home`.
#[inline(never)]
pub(crate) fn give_back(home: Home, buffer: Vec<u8>) {
    on_this_thread(
        buffer,
        |stash, buffer| stash.give_back(&POOL, home, buffer, false),
        |buffer| POOL.give_back(home, buffer, false),
    )
}

/// Gives back a buffer that held a secret, to `home`: zeroed over its whole capacity first;
/// zeroized (volatile writes) if no one keeps it.
#[inline(never)]
pub(crate) fn give_back_secret(home: Home, buffer: Vec<u8>) {
    on_this_thread(
        buffer,
        |stash, buffer| stash.give_back(&POOL, home, buffer, true),
        |buffer| POOL.give_back(home, buffer, true),
    )
}

/// Bytes of idle buffers the shared pool holds now (not counting what threads keep).
pub fn held() -> usize {
    POOL.held.load(Ordering::Relaxed)
}

/// Frees the idle buffers the shared pool holds and those this thread keeps, for a process
/// that wants the memory back (after a burst of large batches, say); answers the bytes freed.
/// Other threads' own (at most [`STASH_MAX`] each) stay until they use them or exit; a class
/// another thread is using at that moment is passed by. Later results fill the pool again.
pub fn release() -> usize {
    on_this_thread((), |stash, _| stash.release(), |_| 0) + POOL.release()
}

/// The class a buffer of `len` bytes rounds up to, and that class's size; `None` outside the
/// sizes kept.
fn class_of(len: usize) -> Option<(usize, usize)> {
    if !(MIN..=MAX).contains(&len) {
        return None;
    }
    let below = len - 1;
    let exponent = usize::BITS - 1 - below.leading_zeros(); // 2^exponent <= below < 2^(exponent+1)
    let shift = exponent - 3;
    let step = below >> shift; // 8..=15
    let index = (exponent - FIRST_EXPONENT) as usize * PER_DOUBLING + (step - PER_DOUBLING);
    Some((index, (step + 1) << shift))
}

/// The class a buffer of `capacity` bytes goes back to: `None` unless the capacity is a class
/// size.
fn class_kept(capacity: usize) -> Option<usize> {
    class_of(capacity).and_then(|(index, size)| (size == capacity).then_some(index))
}

/// A kept buffer made `len` long (zero-filled if `zero`). A kept buffer's bytes up to its
/// length are initialized and public; past it, only zeros are added.
fn reuse(mut buffer: Vec<u8>, len: usize, zero: bool) -> Vec<u8> {
    if buffer.len() >= len {
        buffer.truncate(len);
    } else {
        buffer.resize(len, 0);
    }
    if zero {
        buffer.fill(0);
    }
    buffer
}

/// A new zero-filled buffer of `len` bytes with the capacity of its class, so that it can
/// come back.
fn fresh(len: usize, size: usize) -> Vec<u8> {
    let mut buffer = Vec::with_capacity(size);
    buffer.resize(len, 0);
    buffer
}

/// A returned buffer's class, once it is ready to keep; `None` for a buffer no class keeps,
/// zeroized if it held a secret, to be freed. A public buffer is kept as it is: its bytes up to
/// its length are initialized, and nothing else is written, so the thread that drops another
/// thread's buffer does not pull its memory over. A secret one is zeroed over its whole
/// capacity (a plain fill: the buffer stays reachable, kept, so the writes cannot be dropped as
/// dead).
fn ready_to_keep(buffer: &mut Vec<u8>, secret: bool) -> Option<usize> {
    let Some(index) = class_kept(buffer.capacity()) else {
        if secret {
            buffer.zeroize();
        }
        return None;
    };
    if secret {
        buffer.resize(buffer.capacity(), 0);
        buffer.fill(0);
    }
    Some(index)
}

impl Pool {
    pub(crate) const fn new(held_max: usize) -> Self {
        Pool {
            shelves: [const { [const { Mutex::new(Vec::new()) }; CLASSES] }; HOMES],
            held: AtomicUsize::new(0),
            held_max,
        }
    }

    /// A buffer of `len` bytes: a kept one of `len`'s class from `home`'s shelf when there is
    /// one (zero-filled if `zero`, else as it was kept), or a new zero-filled one.
    pub(crate) fn take(&self, home: Home, len: usize, zero: bool) -> Vec<u8> {
        let Some((index, size)) = class_of(len) else {
            return vec![0u8; len];
        };
        let kept = self.shelves[usize::from(home) % HOMES][index]
            .try_lock()
            .ok()
            .and_then(|mut class| class.pop());
        match kept {
            Some(buffer) => {
                self.held.fetch_sub(buffer.capacity(), Ordering::Relaxed);
                reuse(buffer, len, zero)
            }
            None => fresh(len, size),
        }
    }

    /// Keeps a returned buffer on `home`'s shelf if its capacity is a class size and the pool
    /// has room; frees it otherwise. A buffer that held a `secret` is zeroed before it is kept
    /// and zeroized before it is freed. `None` is nothing to give.
    pub(crate) fn give_back(&self, home: Home, buffer: Option<Vec<u8>>, secret: bool) {
        let Some(mut buffer) = buffer else { return };
        if let Some(index) = ready_to_keep(&mut buffer, secret) {
            self.keep(home, index, std::iter::once(buffer), secret);
        }
    }

    /// Keeps `buffers` (ready to keep, all of class `index`) on `home`'s shelf while the pool
    /// has room and the class is free now; frees the rest, zeroized again (volatile writes) if
    /// they held a `secret`: their zeroing fill could otherwise be dropped on the way to `free`.
    fn keep(&self, home: Home, index: usize, buffers: impl Iterator<Item = Vec<u8>>, secret: bool) {
        let mut class = self.shelves[usize::from(home) % HOMES][index]
            .try_lock()
            .ok();
        for mut buffer in buffers {
            let capacity = buffer.capacity();
            let room = self.held.fetch_add(capacity, Ordering::Relaxed) + capacity <= self.held_max;
            match class.as_mut() {
                Some(class) if room => class.push(buffer),
                _ => {
                    self.held.fetch_sub(capacity, Ordering::Relaxed);
                    if secret {
                        buffer.zeroize();
                    }
                }
            }
        }
    }

    /// Moves about [`REFILL`] bytes of class `index` (buffers of `size`) from `home`'s shelf
    /// into `into`; answers the bytes moved.
    fn refill(&self, home: Home, index: usize, size: usize, into: &mut Vec<Vec<u8>>) -> usize {
        let Ok(mut class) = self.shelves[usize::from(home) % HOMES][index].try_lock() else {
            return 0;
        };
        let count = (REFILL / size).max(1).min(class.len());
        let from = class.len() - count;
        into.extend(class.drain(from..));
        let bytes = count * size;
        self.held.fetch_sub(bytes, Ordering::Relaxed);
        bytes
    }

    /// Frees every idle buffer on every shelf whose class is free now; answers the bytes freed.
    fn release(&self) -> usize {
        let mut freed = 0;
        for class in self.shelves.iter().flatten() {
            if let Ok(mut class) = class.try_lock() {
                let bytes: usize = class.iter().map(Vec::capacity).sum();
                class.clear();
                class.shrink_to_fit();
                self.held.fetch_sub(bytes, Ordering::Relaxed);
                freed += bytes;
            }
        }
        freed
    }

    #[cfg(test)]
    fn held(&self) -> usize {
        self.held.load(Ordering::Relaxed)
    }
}

impl Stash {
    pub(crate) const fn new(home: Home) -> Self {
        Stash {
            classes: [const { Vec::new() }; CLASSES],
            bytes: 0,
            home,
        }
    }

    /// As [`Pool::take`], from this thread's buffers first, then a refill from its shelf.
    pub(crate) fn take(&mut self, pool: &Pool, len: usize, zero: bool) -> Vec<u8> {
        let Some((index, size)) = class_of(len) else {
            return vec![0u8; len];
        };
        let class = &mut self.classes[index];
        if class.is_empty() {
            self.bytes += pool.refill(self.home, index, size, class);
        }
        match class.pop() {
            Some(buffer) => {
                self.bytes -= buffer.capacity();
                reuse(buffer, len, zero)
            }
            None => fresh(len, size),
        }
    }

    /// As [`Pool::give_back`]: a buffer of this thread's home is kept here, and past
    /// [`STASH_MAX`] half its class goes on to the shelf; another home's goes to its shelf.
    pub(crate) fn give_back(
        &mut self,
        pool: &Pool,
        home: Home,
        buffer: Option<Vec<u8>>,
        secret: bool,
    ) {
        if home != self.home {
            return pool.give_back(home, buffer, secret);
        }
        let Some(mut buffer) = buffer else { return };
        let Some(index) = ready_to_keep(&mut buffer, secret) else {
            return;
        };
        self.bytes += buffer.capacity();
        let class = &mut self.classes[index];
        class.push(buffer);
        if self.bytes > STASH_MAX {
            let spill = class.len().div_ceil(2);
            let from = class.len() - spill;
            self.bytes -= class[from..].iter().map(Vec::capacity).sum::<usize>();
            // Zeroed, if secret, when they came into the stash, which kept them reachable.
            pool.keep(self.home, index, class.drain(from..), false);
        }
    }

    /// Frees every buffer this thread keeps; answers the bytes freed.
    fn release(&mut self) -> usize {
        for class in &mut self.classes {
            *class = Vec::new();
        }
        std::mem::take(&mut self.bytes)
    }

    #[cfg(test)]
    fn bytes(&self) -> usize {
        self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_size_kept_rounds_up_to_a_class_no_more_than_an_eighth_larger() {
        let mut last_index = None;
        for len in MIN..=MAX {
            let (index, size) = class_of(len).unwrap();
            assert!(index < CLASSES, "{len}");
            assert!(size >= len && size - len <= len / 8, "{len} -> {size}");
            assert_eq!(
                class_of(size),
                Some((index, size)),
                "a class size is its own class"
            );
            if let Some(last) = last_index {
                assert!(index == last || index == last + 1, "{len}");
            }
            last_index = Some(index);
        }
        assert_eq!(last_index, Some(CLASSES - 1));
        assert_eq!(class_of(MIN), Some((7, 1024)));
        assert_eq!(class_of(MIN - 1), None);
        assert_eq!(class_of(MAX + 1), None);
        assert_eq!(class_of(16 * 1024 + 90), Some((5 * 8, 18 * 1024)));
    }

    #[test]
    fn a_kept_buffer_is_reused_as_it_was_kept_or_zero_filled_when_asked() {
        let pool = Pool::new(1 << 20);
        let mut first = pool.take(3, 5000, false);
        assert_eq!((first.len(), first.capacity()), (5000, 5120));
        assert!(first.iter().all(|&b| b == 0), "a new buffer is zero-filled");
        first.fill(0xa5);
        let address = first.as_ptr();
        pool.give_back(3, Some(first), false);
        assert_eq!(pool.held(), 5120);
        let elsewhere = pool.take(4, 5000, false);
        assert_ne!(elsewhere.as_ptr(), address, "another home's shelf");
        let second = pool.take(3, 5120, false);
        assert_eq!(second.as_ptr(), address, "the same buffer, not a new one");
        assert_eq!(pool.held(), 0);
        assert!(
            second[..5000].iter().all(|&b| b == 0xa5),
            "a public ciphertext, kept"
        );
        assert!(
            second[5000..].iter().all(|&b| b == 0),
            "the tail it did not use, zeroed"
        );
        pool.give_back(3, Some(second), false);
        let third = pool.take(3, 4800, true);
        assert_eq!((third.as_ptr(), third.len()), (address, 4800));
        assert!(third.iter().all(|&b| b == 0));
        let fourth = pool.take(3, 4800, false);
        assert_ne!(fourth.as_ptr(), address, "the shelf is empty again");
    }

    #[test]
    fn a_secret_buffer_is_kept_only_once_every_byte_of_its_capacity_is_zero() {
        let pool = Pool::new(1 << 20);
        let mut secret = pool.take(0, 3000, true);
        let capacity = secret.capacity();
        secret.resize(capacity, 0x5c);
        secret.fill(0x5c);
        secret.truncate(100); // the secret's bytes past its length are still in the buffer
        let address = secret.as_ptr();
        pool.give_back(0, Some(secret), true);
        let reused = pool.take(0, capacity, false);
        assert_eq!(reused.as_ptr(), address);
        assert!(
            reused.iter().all(|&b| b == 0),
            "no byte of the secret is kept"
        );
    }

    #[test]
    fn the_pool_holds_no_more_than_its_limit_and_only_class_sized_buffers() {
        let pool = Pool::new(3 * 2048);
        let buffers: Vec<Vec<u8>> = (0..5).map(|_| pool.take(0, 2000, false)).collect();
        assert!(buffers.iter().all(|b| b.capacity() == 2048));
        for buffer in buffers {
            pool.give_back(0, Some(buffer), false);
        }
        assert_eq!(pool.held(), 3 * 2048, "two of five freed, not kept");
        pool.give_back(0, Some(Vec::with_capacity(5001)), false); // not a class size
        pool.give_back(0, Some(vec![0u8; 64]), false); // below the classes
        pool.give_back(0, Some(vec![7u8; 64]), true); // zeroized and freed
        assert_eq!(pool.held(), 3 * 2048);
        assert_eq!(pool.take(0, 64, false).capacity(), 64);
        assert_eq!(pool.take(0, MAX + 1, false).len(), MAX + 1);
    }

    #[test]
    fn a_class_in_use_is_passed_by_without_waiting() {
        let pool = Pool::new(1 << 20);
        pool.give_back(0, Some(pool.take(0, 3000, false)), false);
        let guard = pool.shelves[0][class_of(3000).unwrap().0].lock().unwrap();
        let fresh = pool.take(0, 3000, false); // would deadlock if it waited
        assert_eq!(fresh.len(), 3000);
        pool.give_back(0, Some(fresh), false); // freed: the class is taken
        assert_eq!(pool.held(), 3072);
        drop(guard);
    }

    #[test]
    fn a_thread_takes_back_what_it_gave_without_the_shared_pool() {
        let pool = Pool::new(1 << 20);
        let mut stash = Stash::new(5);
        let buffer = stash.take(&pool, 9000, false);
        let address = buffer.as_ptr();
        stash.give_back(&pool, 5, Some(buffer), false);
        assert_eq!((stash.bytes(), pool.held()), (9216, 0));
        let again = stash.take(&pool, 9000, true);
        assert_eq!(again.as_ptr(), address);
        assert_eq!(stash.bytes(), 0);
    }

    #[test]
    fn a_buffer_goes_back_to_the_thread_that_wrote_it_not_to_the_one_that_drops_it() {
        let pool = Pool::new(1 << 20);
        let (mut caller, mut helper) = (Stash::new(1), Stash::new(2));
        let written = helper.take(&pool, 9000, false);
        let address = written.as_ptr();
        caller.give_back(&pool, 2, Some(written), false);
        assert_eq!(
            (caller.bytes(), pool.held()),
            (0, 9216),
            "on the helper's shelf"
        );
        let callers = caller.take(&pool, 9000, false);
        assert_ne!(callers.as_ptr(), address);
        let helpers = helper.take(&pool, 9000, false);
        assert_eq!(helpers.as_ptr(), address);
    }

    #[test]
    fn a_thread_keeps_at_most_its_share_and_trades_the_rest_in_bulk() {
        let pool = Pool::new(HELD_MAX);
        let mut stash = Stash::new(0);
        let buffers: Vec<Vec<u8>> = (0..200).map(|_| stash.take(&pool, 16_474, false)).collect();
        for buffer in buffers {
            stash.give_back(&pool, 0, Some(buffer), true);
            assert!(stash.bytes() <= STASH_MAX, "{}", stash.bytes());
        }
        assert_eq!(
            stash.bytes() + pool.held(),
            200 * 18 * 1024,
            "none freed, none lost"
        );
        let mut other = Stash::new(0); // another thread on the same shelf
        let held = pool.held();
        let first = other.take(&pool, 16_474, false);
        assert!(
            first.iter().all(|&b| b == 0),
            "given back as secrets: zeroed"
        );
        let moved = (REFILL / (18 * 1024)) * 18 * 1024;
        assert_eq!(
            pool.held(),
            held - moved,
            "one refill of about {REFILL} bytes"
        );
        assert_eq!(other.bytes(), moved - 18 * 1024);
    }

    #[test]
    fn this_threads_stash_serves_the_process_functions() {
        let buffer = take_to_overwrite(70_000);
        let address = buffer.as_ptr();
        give_back(home_for(&buffer), buffer);
        // Another test on this thread could not run between: the stash is this thread's own.
        let again = take_zeroed(69_000);
        assert_eq!(again.as_ptr(), address);
    }

    #[test]
    fn release_frees_every_kept_buffer_and_the_pool_fills_again() {
        let pool = Pool::new(1 << 20);
        let mut stash = Stash::new(2);
        for len in [2000, 9000, 70_000] {
            pool.give_back(2, Some(pool.take(2, len, false)), false);
            pool.give_back(9, Some(pool.take(9, len, false)), true);
            let buffer = stash.take(&pool, len, false);
            stash.give_back(&pool, 2, Some(buffer), false);
        }
        // The stash refilled from shelf 2 what was given back there, and kept it.
        let set = 2048 + 9216 + 73_728;
        assert_eq!((pool.held(), stash.bytes()), (set, set));
        assert_eq!(stash.release(), set);
        assert_eq!(pool.release(), set);
        assert_eq!((pool.held(), stash.bytes(), pool.release()), (0, 0, 0));
        pool.give_back(2, Some(pool.take(2, 9000, false)), false);
        assert_eq!(pool.held(), 9216);
    }

    #[test]
    fn the_process_release_frees_this_threads_buffers() {
        let buffer = take_to_overwrite(300_000);
        let capacity = buffer.capacity();
        give_back(home_for(&buffer), buffer);
        assert!(release() >= capacity, "this thread's stash, at least");
        let again = take_to_overwrite(300_000);
        assert_eq!(again.len(), 300_000);
    }
}
