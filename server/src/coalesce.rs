//! Coalescing: concurrent small data-plane requests of one principal joined into one engine batch
//! call within a short window, with a bounded number of items.
//!
//! (Skeleton: the protocol helper fills this module. The settings below are fixed.)

use std::time::Duration;

/// Coalescing settings (`keyplane serve --coalesce-window-us N --coalesce-max-items N`).
#[derive(Clone, Debug)]
pub struct CoalesceConfig {
    /// Off: every request is its own engine call.
    pub enabled: bool,
    /// How long the first request of a batch waits for others.
    pub window: Duration,
    /// Most requests in one batch.
    pub max_items: usize,
}

impl Default for CoalesceConfig {
    fn default() -> Self {
        CoalesceConfig {
            enabled: true,
            window: Duration::from_micros(200),
            max_items: 64,
        }
    }
}
