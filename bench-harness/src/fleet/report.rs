//! The fleet workload's report: the table and the JSON (latency summaries are in
//! [`super::latency`], re-exported here).

use std::fmt::Write as _;

use super::control::ControlRow;
use super::data_plane::DataPlaneRow;
use super::propagation::{Mode, PropagationRow};
use super::scale::ScaleReport;
use super::FleetArgs;
use crate::report::{human, render, Machine};

pub use super::latency::{latencies, Latencies};

/// Everything one run measured.
#[derive(Debug, Clone, serde::Serialize)]
pub struct FleetReport {
    /// The database (password redacted).
    pub store: String,
    pub machine: Machine,
    pub control_ops_per_operation: usize,
    pub control: Vec<ControlRow>,
    pub propagation: Vec<PropagationRow>,
    pub data_plane: Vec<DataPlaneRow>,
    pub scale: Option<ScaleReport>,
}

impl FleetReport {
    pub fn new(
        store: String,
        args: &FleetArgs,
        control: Vec<ControlRow>,
        propagation: Vec<PropagationRow>,
        data_plane: Vec<DataPlaneRow>,
        scale: Option<ScaleReport>,
    ) -> Self {
        FleetReport {
            store,
            machine: Machine::this(),
            control_ops_per_operation: args.fleet_ops,
            control,
            propagation,
            data_plane,
            scale,
        }
    }

    /// The control-plane row for `store`, `operation`, `callers`.
    fn control_row(&self, store: &str, operation: &str, callers: u32) -> Option<&ControlRow> {
        self.control
            .iter()
            .find(|r| r.store == store && r.operation == operation && r.callers == callers)
    }

    /// The report as text tables.
    pub fn to_table(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "fleet: {}, {} build, store {}",
            self.machine.cpus_text(),
            if self.machine.optimized_build {
                "release"
            } else {
                "debug"
            },
            self.store
        );
        let _ = writeln!(
            out,
            "\ncontrol plane: calls per second ({} calls per caller; 2 callers = two nodes on two \
             store handles at once; conflicts = calls refused with ConflictException after the \
             engine's own retries, repeated by the caller)",
            self.control_ops_per_operation
        );
        let mut rows = Vec::new();
        for op in crate::dedup(self.control.iter().map(|r| r.operation.as_str())) {
            for callers in [1, 2] {
                let pg = self.control_row("postgres", op, callers);
                let sq = self.control_row("sqlite", op, callers);
                let cell = |r: Option<&ControlRow>| r.map_or("-".into(), |r| human(r.ops_per_sec));
                let p99 = |r: Option<&ControlRow>| {
                    r.map_or("-".into(), |r| format!("{:.2}", r.latency_ms.p99))
                };
                let repeats = |r: Option<&ControlRow>| {
                    r.map_or("-".into(), |r| r.conflicts_repeated.to_string())
                };
                let ratio = match (pg, sq) {
                    (Some(p), Some(s)) => format!("{:.2}", p.ops_per_sec / s.ops_per_sec),
                    _ => "-".into(),
                };
                rows.push(vec![
                    op.to_owned(),
                    callers.to_string(),
                    cell(pg),
                    p99(pg),
                    repeats(pg),
                    cell(sq),
                    p99(sq),
                    repeats(sq),
                    ratio,
                ]);
            }
        }
        out.push_str(&render(
            &[
                "operation",
                "callers",
                "PostgreSQL/s",
                "p99 ms",
                "conflicts",
                "SQLite/s",
                "p99 ms",
                "conflicts",
                "PG/SQLite",
            ],
            &rows,
            false,
        ));
        let _ = writeln!(
            out,
            "\npropagation: node A's change acknowledged -> node B's data plane shows it (ms)"
        );
        let rows: Vec<Vec<String>> = self
            .propagation
            .iter()
            .map(|p| {
                vec![
                    match p.mode {
                        Mode::Notify => "LISTEN/NOTIFY".to_owned(),
                        Mode::Poll => format!("poll {:.0} ms", p.poll_ms),
                    },
                    p.store_keys.to_string(),
                    p.changes.to_string(),
                    format!("{:.2}", p.latency_ms.p50),
                    format!("{:.2}", p.latency_ms.p90),
                    format!("{:.2}", p.latency_ms.p99),
                    format!("{:.2}", p.latency_ms.max),
                    format!("{:.2}", p.commit_ms.p50),
                ]
            })
            .collect();
        out.push_str(&render(
            &[
                "mode",
                "keys",
                "changes",
                "p50",
                "p90",
                "p99",
                "max",
                "A commit p50",
            ],
            &rows,
            false,
        ));
        let _ = writeln!(
            out,
            "\ndata plane: Encrypt calls per second, fleet node (PostgreSQL) vs in-memory engine"
        );
        let rows: Vec<Vec<String>> = self
            .data_plane
            .iter()
            .map(|d| {
                vec![
                    crate::report::human_size(d.size),
                    d.threads.to_string(),
                    human(d.memory_ops_per_sec),
                    human(d.fleet_ops_per_sec),
                    format!("{:.3}", d.ratio),
                ]
            })
            .collect();
        out.push_str(&render(
            &["size", "threads", "memory/s", "fleet node/s", "ratio"],
            &rows,
            false,
        ));
        if let Some(s) = &self.scale {
            out.push_str(&s.to_table());
        }
        out
    }
}
