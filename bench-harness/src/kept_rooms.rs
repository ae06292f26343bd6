//! The output buffers of `--into` points, kept from call to call with their lists of rooms, as a
//! caller that keeps its output buffers keeps the list of them it passes (and as a C caller keeps
//! its `kp_out` array: `compare.rs`).
//!
//! A closure that owns its buffer cannot keep a list borrowing it, so it had to rewrite the list,
//! 16 bytes an item, before every call. Those stores take every line of the list back to the
//! calling thread's core, and a helper sharing the batch then reads its half of the list from
//! there: 32 lines a batch of 256, in the middle of the work the two threads share. Measured on
//! the project's 2-core VM (docs/performance.md, "The bare split"), that rewrite cost a two-thread
//! batch of 256 × 64 B encrypts ~3% in spells of fast cross-core hand-offs and 10–15% in slow
//! ones, and one thread nothing. Here the buffers belong to the cell being measured, each is cut
//! into its rooms once, and a closure leases a list for its life.

use std::sync::Mutex;

/// Lists of rooms over buffers that outlive them, lent to one closure at a time.
#[derive(Debug)]
pub struct KeptRooms<'b> {
    lists: Mutex<Vec<Vec<&'b mut [u8]>>>,
}

impl<'b> KeptRooms<'b> {
    /// One list of `room`-byte rooms per buffer (a last, shorter room is dropped).
    pub fn new(buffers: &'b mut [Vec<u8>], room: usize) -> Self {
        let room = room.max(1);
        KeptRooms {
            lists: Mutex::new(
                buffers
                    .iter_mut()
                    .map(|b| b.chunks_exact_mut(room).collect())
                    .collect(),
            ),
        }
    }

    /// A list of at least `rooms` rooms that no other lease holds, or none.
    pub(crate) fn lease(&self, rooms: usize) -> Option<Lease<'_, 'b>> {
        let mut lists = self.lists.lock().ok()?;
        let at = lists.iter().position(|l| l.len() >= rooms)?;
        Some(Lease {
            pool: self,
            list: lists.swap_remove(at),
        })
    }
}

/// A list of rooms lent to one closure, given back when it is dropped.
#[derive(Debug)]
pub(crate) struct Lease<'p, 'b> {
    pool: &'p KeptRooms<'b>,
    pub list: Vec<&'b mut [u8]>,
}

impl Drop for Lease<'_, '_> {
    fn drop(&mut self) {
        if let Ok(mut lists) = self.pool.lists.lock() {
            lists.push(std::mem::take(&mut self.list));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_list_is_lent_to_one_holder_at_a_time_and_comes_back() {
        let mut buffers = vec![vec![0u8; 12], vec![0u8; 12]];
        let pool = KeptRooms::new(&mut buffers, 4);
        let mut a = pool.lease(3).expect("a list");
        let b = pool.lease(3).expect("the other list");
        assert!(pool.lease(1).is_none(), "both are lent");
        assert!(pool.lease(4).is_none(), "and none has four rooms");
        a.list[2].fill(7);
        let first = a.list[0].as_ptr();
        let list_at = a.list.as_ptr() as usize;
        drop(a);
        let again = pool.lease(3).expect("given back");
        assert_eq!(
            again.list[0].as_ptr(),
            first,
            "the same rooms, not new ones"
        );
        assert_eq!(
            again.list.as_ptr() as usize,
            list_at,
            "the same list: no call writes or allocates it again"
        );
        drop((again, b));
        assert_eq!(buffers[0], [0, 0, 0, 0, 0, 0, 0, 0, 7, 7, 7, 7]);
    }
}
