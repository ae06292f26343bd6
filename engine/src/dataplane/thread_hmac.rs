//! Each thread's working HMAC context, kept from one chunk to the next.
//!
//! A chunk's first MAC needs a working `HMAC_CTX` in locked memory ([`HmacWork`]). Made per
//! chunk, it came from the locked-slot pool every thread shares, and was often the slot another
//! core had just written: initialising it stalled on those cache lines at the start of every
//! helper's part of every batch of MACs. Kept per thread, it stays in its core's cache.

use super::slot_cache::SlotCache;
use crate::crypto::hmac::HmacWork;
use crate::error::Result;
use crate::locked_memory::LockPolicy;

/// A thread's working HMAC context and the fork generation it was made in.
pub(crate) struct ThreadHmacWork {
    pub(crate) work: HmacWork,
    generation: u64,
}

/// The working HMAC contexts of the data plane's threads, one per thread slot.
#[derive(Default)]
pub(crate) struct ThreadHmacWorks(SlotCache<ThreadHmacWork>);

impl ThreadHmacWorks {
    /// This thread's context if it has one made in `generation` (one inherited across `fork`
    /// is dropped, never used), or a new one.
    pub(crate) fn take(&self, generation: u64, policy: LockPolicy) -> Result<Box<ThreadHmacWork>> {
        match self.0.take() {
            Some(work) if work.generation == generation => Ok(work),
            _ => Ok(Box::new(ThreadHmacWork {
                work: HmacWork::new(policy)?,
                generation,
            })),
        }
    }

    /// Gives a context back for this thread's next chunk, cleared first: it waits holding
    /// nothing of the keys it used.
    pub(crate) fn give_back(&self, mut work: Box<ThreadHmacWork>) {
        work.work.clear();
        self.0.put(work);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::hmac::{HmacKey, MAX_MAC_LEN};
    use crate::key::MacAlgorithm;

    fn mac(work: &mut HmacWork) -> Vec<u8> {
        let key = HmacKey::new(MacAlgorithm::HmacSha256, b"Jefe", LockPolicy::Require).unwrap();
        let mut out = [0u8; MAX_MAC_LEN];
        let n = key
            .compute(work, b"what do ya want for nothing?", &mut out)
            .unwrap();
        out[..n].to_vec()
    }

    #[test]
    fn a_context_waits_blank_and_comes_back_to_its_thread_working() {
        let works = ThreadHmacWorks::default();
        let mut work = works.take(7, LockPolicy::Require).unwrap();
        let first = mac(&mut work.work);
        assert!(
            !work.work.is_blank(),
            "a MAC leaves keyed state in the context"
        );
        let at: *const ThreadHmacWork = &*work;
        works.give_back(work);
        let mut again = works.take(7, LockPolicy::Require).unwrap();
        assert!(
            std::ptr::eq(&*again, at),
            "the thread's own context came back"
        );
        assert!(
            again.work.is_blank(),
            "it waited with nothing of the key in it"
        );
        // RFC 4231 test case 2, computed again in the cleared context.
        assert_eq!(mac(&mut again.work), first);
        assert_eq!(
            first[..4],
            [0x5b, 0xdc, 0xc1, 0x46],
            "RFC 4231 case 2 begins 5bdcc146"
        );
        works.give_back(again);
        // After a fork (another generation) the inherited context is dropped, not handed out.
        let other = works.take(8, LockPolicy::Require).unwrap();
        assert!(!std::ptr::eq(&*other, at));
        assert_eq!(other.generation, 8);
    }
}
