//! The `fleet` workload's command-line options.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use crate::units::{parse_count, parse_duration};

/// The `fleet` workload's options.
#[derive(Debug, Clone, Args)]
pub struct FleetArgs {
    /// `fleet`: the PostgreSQL database the fleet nodes share (postgres://user@host:port/db). It
    /// must hold no keyplane store: the run creates one
    #[arg(long = "store", value_name = "ADDRESS")]
    pub store: Option<String>,

    /// `fleet`: the directory of the SQLite store the control plane is compared with (created
    /// there; default: a temporary directory)
    #[arg(long, value_name = "DIR")]
    pub compare_sqlite: Option<PathBuf>,

    /// `fleet`: control-plane calls timed per operation, store and caller
    #[arg(long, value_name = "N", default_value = "200", value_parser = parse_count)]
    pub fleet_ops: usize,

    /// `fleet`: changes whose propagation is timed per mode and store size
    #[arg(long, value_name = "N", default_value = "500", value_parser = parse_count)]
    pub fleet_changes: usize,

    /// `fleet`: how often the polling-only follower asks the store for changes
    #[arg(long, value_name = "TIME", default_value = "100ms", value_parser = parse_duration)]
    pub fleet_poll: Duration,

    /// `fleet`: measured time per data-plane point and repeat
    #[arg(long, value_name = "TIME", default_value = "1s", value_parser = parse_duration)]
    pub fleet_data_duration: Duration,

    /// `fleet`: fill the store to this many keys with the bulk path (e.g. 1M), then time a
    /// node's cold start and propagation among them; 0 (the default) skips this part
    #[arg(long, value_name = "N", default_value = "0", value_parser = parse_count_or_zero)]
    pub fleet_keys: usize,

    /// `fleet`: keys per bulk-load transaction
    #[arg(long, value_name = "N", default_value = "10k", value_parser = parse_count)]
    pub fleet_batch: usize,

    /// (internal) the cold-start child: opens --store with this root key file, builds a node,
    /// prints one JSON line
    #[arg(long, value_name = "FILE", hide = true)]
    pub fleet_cold_start: Option<PathBuf>,
}

fn parse_count_or_zero(s: &str) -> Result<usize, String> {
    if s.trim() == "0" {
        return Ok(0);
    }
    parse_count(s)
}
