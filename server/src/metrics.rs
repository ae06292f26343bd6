//! Counters and histograms for the admin listener's Prometheus endpoint.
//!
//! (Skeleton: the transport helper fills this module. The methods below are fixed; every layer
//! reports through them.)

use std::time::Duration;

/// The server's metrics. Cheap to update from any thread.
#[derive(Debug, Default)]
pub struct Metrics {}

impl Metrics {
    /// A request answered: its operation (None for an unknown target or a refused request), its
    /// error code (None on success), and how long it took.
    pub fn request(&self, operation: Option<&str>, error_code: Option<&str>, took: Duration) {
        let _ = (operation, error_code, took);
    }

    /// A coalesced engine batch call of `items` requests for `operation`.
    pub fn batch(&self, operation: &str, items: usize) {
        let _ = (operation, items);
    }

    /// A connection opened (`true`) or closed (`false`).
    pub fn connection(&self, opened: bool) {
        let _ = opened;
    }

    /// The Prometheus text exposition of everything.
    pub fn render(&self) -> String {
        String::new()
    }
}
