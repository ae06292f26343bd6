//! The staleness bound (fail closed): how long the data plane keeps serving from a view of the
//! key store that this node could not confirm with the store (issue 19).
//!
//! A node that shares its store with others learns of a key disabled or deleted elsewhere only
//! when it follows the store. While the store cannot be reached the node keeps serving the keys
//! it holds, but only until the last successful follow is older than the bound: from then on every
//! data-plane call that names a key is refused (KeyUnavailableException, naming the reason), and
//! it serves again as soon as a follow succeeds. Off (no bound) unless configured
//! ([`crate::EngineBuilder::max_staleness`]).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::error::Result;

pub(crate) struct Freshness {
    bound: Option<Duration>,
    /// The origin of `confirmed_us` (a monotonic clock: wall-clock steps do not move it).
    base: Instant,
    /// Microseconds after `base` at which this node last confirmed its view with the store.
    confirmed_us: AtomicU64,
}

impl Freshness {
    pub(crate) fn new(bound: Option<Duration>) -> Self {
        Freshness {
            bound,
            base: Instant::now(),
            confirmed_us: AtomicU64::new(0),
        }
    }

    fn now_us(&self) -> u64 {
        u64::try_from(self.base.elapsed().as_micros()).unwrap_or(u64::MAX)
    }

    /// The store answered a follow: the view is confirmed as of now.
    pub(crate) fn confirmed(&self) {
        self.confirmed_us
            .fetch_max(self.now_us(), Ordering::Release);
    }

    /// How long ago the view was last confirmed.
    pub(crate) fn age(&self) -> Duration {
        let confirmed = self.confirmed_us.load(Ordering::Acquire);
        Duration::from_micros(self.now_us().saturating_sub(confirmed))
    }

    /// Refuses a data-plane call on key `key_arn` when the view is older than the bound.
    #[inline]
    pub(crate) fn check(&self, key_arn: &str) -> Result<()> {
        let Some(bound) = self.bound else {
            return Ok(());
        };
        let age = self.age();
        if age <= bound {
            return Ok(());
        }
        Err(crate::messages::view_too_stale(
            key_arn,
            u64::try_from(age.as_millis()).unwrap_or(u64::MAX),
            u64::try_from(bound.as_millis()).unwrap_or(u64::MAX),
        ))
    }
}
