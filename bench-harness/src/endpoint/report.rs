//! The endpoint report: every run (a server, an operation, a connection count), ratios against a
//! baseline server, the targets for `keyplane serve`; as a table, JSON and charts.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::client::Target;
use super::{EndpointOptions, Measured, Operation};
use crate::plot::{write_chart, Chart, Series};
use crate::report::{human, human_size, ms, render, Machine, TargetCheck};
use crate::{BenchError, Destination};

/// All runs, possibly of several servers (`--append`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EndpointReport {
    pub harness: String,
    pub machine: Machine,
    /// The label the ratios compare with.
    pub baseline: Option<String>,
    pub runs: Vec<EndpointRun>,
    /// The targets for `keyplane serve` that these runs measure.
    pub targets: Vec<TargetCheck>,
    pub notes: Vec<String>,
}

/// One (server, operation, connections) point.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EndpointRun {
    pub label: String,
    pub endpoint: String,
    pub tls: bool,
    pub http2: bool,
    pub operation: Operation,
    /// Plaintext or message bytes (not for generate-data-key).
    pub size: Option<usize>,
    pub connections: u32,
    pub client_threads: usize,
    pub duration_ms: f64,
    pub warmup_ms: f64,
    /// Requests started and answered within the measured window.
    pub requests: u64,
    pub requests_per_sec: f64,
    pub latency: EndpointLatency,
    /// Failed requests in the warm-up and the window.
    pub error_count: u64,
    pub errors: BTreeMap<String, u64>,
    /// The first message seen for each error code.
    pub error_messages: BTreeMap<String, String>,
    pub reconnects: u64,
    /// CPU time of the load generator per measured request, microseconds (all its threads).
    pub client_cpu_us_per_request: Option<f64>,
    /// CPU time of the server's process per measured request, microseconds (with --server-pid):
    /// unlike requests/s, barely moved by what else runs on the machine.
    pub server_cpu_us_per_request: Option<f64>,
    /// Requests/s over the baseline's at the same operation, size and connections.
    pub vs_baseline: Option<f64>,
}

/// Per-request latency, milliseconds, successful requests of the window.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EndpointLatency {
    pub mean_ms: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub p99_9_ms: f64,
    pub max_ms: f64,
}

impl EndpointRun {
    #[allow(clippy::too_many_arguments)]
    pub(super) fn new(
        label: &str,
        url: &str,
        target: &Target,
        operation: Operation,
        options: &EndpointOptions,
        connections: u32,
        client_threads: usize,
        m: Measured,
    ) -> EndpointRun {
        let q = |p: f64| m.latency.value_at_quantile(p) as f64 / 1e6;
        let per_request = |cpu: std::time::Duration| {
            (m.requests > 0).then(|| cpu.as_secs_f64() * 1e6 / m.requests as f64)
        };
        EndpointRun {
            label: label.to_owned(),
            endpoint: url.to_owned(),
            tls: target.tls(),
            http2: target.http2(),
            operation,
            size: operation.uses_size().then_some(options.size),
            connections,
            client_threads,
            duration_ms: m.elapsed.as_secs_f64() * 1e3,
            warmup_ms: options.warmup.as_secs_f64() * 1e3,
            requests: m.requests,
            requests_per_sec: m.requests as f64 / m.elapsed.as_secs_f64().max(1e-9),
            latency: EndpointLatency {
                mean_ms: m.latency.mean() / 1e6,
                p50_ms: q(0.50),
                p90_ms: q(0.90),
                p99_ms: q(0.99),
                p99_9_ms: q(0.999),
                max_ms: m.latency.max() as f64 / 1e6,
            },
            error_count: m.errors.values().sum(),
            errors: m.errors,
            error_messages: m.error_messages,
            reconnects: m.reconnects,
            client_cpu_us_per_request: per_request(m.client_cpu),
            server_cpu_us_per_request: m.server_cpu.and_then(per_request),
            vs_baseline: None,
        }
    }

    /// One line for progress output.
    pub fn summary(&self) -> String {
        let mut s = format!(
            "{} req/s, p50 {} ms, p99 {} ms, p99.9 {} ms, max {} ms, CPU per request: client {} µs, \
             server {} µs",
            human(self.requests_per_sec),
            ms(self.latency.p50_ms),
            ms(self.latency.p99_ms),
            ms(self.latency.p99_9_ms),
            ms(self.latency.max_ms),
            cpu_us(self.client_cpu_us_per_request),
            cpu_us(self.server_cpu_us_per_request)
        );
        if self.error_count > 0 {
            let _ = write!(s, ", {} ERRORS ({})", self.error_count, self.error_list());
        }
        s
    }

    fn error_list(&self) -> String {
        self.errors
            .iter()
            .map(|(c, n)| format!("{c} x{n}"))
            .collect::<Vec<_>>()
            .join(", ")
    }

    fn what(&self) -> String {
        match self.size {
            Some(size) => format!("{} {}", self.operation, human_size(size)),
            None => self.operation.to_string(),
        }
    }
}

fn cpu_us(v: Option<f64>) -> String {
    v.map_or_else(|| "-".into(), |v| format!("{v:.0}"))
}

impl Default for EndpointReport {
    fn default() -> Self {
        EndpointReport::new()
    }
}

impl EndpointReport {
    pub fn new() -> EndpointReport {
        EndpointReport {
            harness: format!("keyplane-bench {}", env!("CARGO_PKG_VERSION")),
            machine: Machine::this(),
            baseline: None,
            runs: Vec::new(),
            targets: Vec::new(),
            notes: Vec::new(),
        }
    }

    /// A report written before (`--append`).
    pub fn read(path: &Path) -> Result<EndpointReport, BenchError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| BenchError::Output(format!("reading {}: {e}", path.display())))?;
        serde_json::from_str(&text).map_err(|e| {
            BenchError::Output(format!(
                "{} is not an endpoint report of this harness: {e}",
                path.display()
            ))
        })
    }

    /// Ratios, targets and notes from the runs.
    pub fn finish(&mut self) {
        let runs = self.runs.clone();
        for run in &mut self.runs {
            if self.baseline.as_ref() == Some(&run.label) {
                run.vs_baseline = None;
                continue;
            }
            run.vs_baseline = self.baseline.as_ref().and_then(|b| {
                runs.iter()
                    .rev()
                    .find(|o| {
                        &o.label == b
                            && (o.operation, o.size, o.connections)
                                == (run.operation, run.size, run.connections)
                    })
                    .filter(|o| o.requests_per_sec > 0.0)
                    .map(|o| run.requests_per_sec / o.requests_per_sec)
            });
        }
        self.targets = Vec::new();
        // Each server's latest run of the targets' point.
        let mut checked: Vec<&str> = Vec::new();
        for run in self.runs.iter().rev() {
            if self.baseline.as_ref() == Some(&run.label)
                || run.operation != Operation::Encrypt
                || run.size != Some(64)
                || run.connections != 64
                || checked.contains(&run.label.as_str())
            {
                continue;
            }
            checked.push(&run.label);
            let point = format!("{}: encrypt 64 B, 64 connections", run.label);
            let mut check = |target: &str, metric: &str, measured: f64, required: f64, met| {
                self.targets.push(TargetCheck {
                    target: target.into(),
                    point: point.clone(),
                    metric: metric.into(),
                    measured,
                    measured_cpu: None,
                    required,
                    met,
                });
            };
            let rate = run.requests_per_sec;
            check(
                "serve Encrypt 64 B at 64 connections: >= 20,000 req/s",
                "requests_per_sec",
                rate,
                20_000.0,
                rate >= 20_000.0,
            );
            let p99 = run.latency.p99_ms;
            check(
                "serve Encrypt 64 B at 64 connections: p99 < 5 ms",
                "p99_ms",
                p99,
                5.0,
                p99 < 5.0,
            );
            if let Some(ratio) = run.vs_baseline {
                check(
                    "serve Encrypt 64 B at 64 connections: >= 50x moto",
                    "vs_baseline",
                    ratio,
                    50.0,
                    ratio >= 50.0,
                );
            }
        }
        self.notes = Vec::new();
        let failed: Vec<String> = self
            .runs
            .iter()
            .filter(|r| r.error_count > 0)
            .map(|r| {
                let first = r
                    .error_messages
                    .iter()
                    .next()
                    .map(|(c, m)| format!("; first {c}: {m}"))
                    .unwrap_or_default();
                format!(
                    "{} {} at {} connections: {}{first}",
                    r.label,
                    r.what(),
                    r.connections,
                    r.error_list()
                )
            })
            .collect();
        if !failed.is_empty() {
            self.notes.push(format!(
                "ERRORS: {} run(s) had failed requests, so their numbers do not measure the \
                 operation: {}",
                failed.len(),
                failed.join(" | ")
            ));
        }
        let mut closing: Vec<&str> = self
            .runs
            .iter()
            .filter(|r| r.reconnects * 2 > r.requests && r.requests > 0)
            .map(|r| r.label.as_str())
            .collect();
        closing.dedup();
        if !closing.is_empty() {
            self.notes.push(format!(
                "{} closed the connection after (nearly) every answer: each request paid a new \
                 TCP{} handshake, inside its latency, as an SDK client's would",
                closing.join(", "),
                if self
                    .runs
                    .iter()
                    .any(|r| r.tls && closing.contains(&r.label.as_str()))
                {
                    " and TLS"
                } else {
                    ""
                }
            ));
        }
        if cfg!(debug_assertions) {
            self.notes.push(
                "this is a debug build of the load generator: the numbers are not meaningful; \
                 build with --release"
                    .into(),
            );
        }
        self.notes.push(
            "the load generator shares the machine with the servers it measures: its signing, \
             TLS and JSON take CPU from them"
                .into(),
        );
    }

    /// The human-readable table.
    pub fn to_table(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "keyplane-bench --endpoint: {}; closed loop, one request in flight per \
             connection, latency per request{}",
            self.machine.cpus_text(),
            self.machine.debug_build_warning()
        );
        out.push('\n');
        let ratio_header = self
            .baseline
            .as_ref()
            .map(|b| format!("vs {b}"))
            .unwrap_or_else(|| "vs -".into());
        let header = [
            "server",
            "operation",
            "conns",
            "proto",
            "req/s",
            "p50 ms",
            "p90 ms",
            "p99 ms",
            "p99.9 ms",
            "max ms",
            "errors",
            "client µs/req",
            "server µs/req",
            ratio_header.as_str(),
        ];
        let rows: Vec<Vec<String>> = self
            .runs
            .iter()
            .map(|r| {
                vec![
                    r.label.clone(),
                    r.what(),
                    r.connections.to_string(),
                    format!(
                        "{}{}",
                        if r.http2 { "h2" } else { "h1" },
                        if r.tls { "+tls" } else { "" }
                    ),
                    human(r.requests_per_sec),
                    ms(r.latency.p50_ms),
                    ms(r.latency.p90_ms),
                    ms(r.latency.p99_ms),
                    ms(r.latency.p99_9_ms),
                    ms(r.latency.max_ms),
                    if r.error_count == 0 {
                        "0".into()
                    } else {
                        format!("{} !!", r.error_count)
                    },
                    cpu_us(r.client_cpu_us_per_request),
                    cpu_us(r.server_cpu_us_per_request),
                    r.vs_baseline
                        .map_or_else(|| "-".into(), |v| format!("{v:.1}x")),
                ]
            })
            .collect();
        out.push_str(&render(&header, &rows, false));
        if !self.targets.is_empty() {
            out.push_str("\ntargets:\n");
            for t in &self.targets {
                let _ = writeln!(
                    out,
                    "  [{}] {} ({}): {} {}",
                    if t.met { "met" } else { "NOT MET" },
                    t.target,
                    t.point,
                    t.metric,
                    if t.metric == "requests_per_sec" {
                        human(t.measured)
                    } else {
                        format!("{:.2}", t.measured)
                    }
                );
            }
        }
        for note in &self.notes {
            let _ = writeln!(out, "\nnote: {note}");
        }
        out
    }

    pub(super) fn write(&self, dest: &Destination) -> Result<(), BenchError> {
        let text = serde_json::to_string_pretty(self)
            .map_err(|e| BenchError::Output(format!("serialising the report: {e}")))?;
        crate::write_to(dest, &(text + "\n"))
    }

    /// Table (unless quiet; on standard error when the JSON goes to standard output), JSON,
    /// charts.
    pub(super) fn output(&self, options: &EndpointOptions) -> Result<(), BenchError> {
        if let Some(dir) = &options.plot {
            let files = self.write_charts(dir)?;
            if !options.quiet {
                eprintln!(
                    "keyplane-bench: wrote {} chart files to {}",
                    files.len(),
                    dir.display()
                );
            }
        }
        if !options.quiet {
            if options.json == Some(Destination::Stdout) {
                eprint!("{}", self.to_table());
            } else {
                print!("{}", self.to_table());
            }
        }
        if let Some(dest) = &options.json {
            self.write(dest)?;
        }
        Ok(())
    }

    /// For each operation measured at more than one connection count: requests/s and p99
    /// latency against connections, one line per server.
    pub fn write_charts(&self, dir: &Path) -> Result<Vec<std::path::PathBuf>, BenchError> {
        std::fs::create_dir_all(dir)
            .map_err(|e| BenchError::Output(format!("creating {}: {e}", dir.display())))?;
        let groups = crate::dedup(self.runs.iter().map(|r| (r.operation, r.size)));
        let mut written = Vec::new();
        for (operation, size) in groups {
            let runs: Vec<&EndpointRun> = self
                .runs
                .iter()
                .filter(|r| (r.operation, r.size) == (operation, size))
                .collect();
            let labels = crate::dedup(runs.iter().map(|r| r.label.as_str()));
            let series: Vec<Series> = labels
                .iter()
                .map(|label| {
                    let mut pts: Vec<&&EndpointRun> =
                        runs.iter().filter(|r| r.label == *label).collect();
                    pts.sort_by_key(|r| r.connections);
                    pts.dedup_by_key(|r| r.connections);
                    Series {
                        label: (*label).to_owned(),
                        points: pts
                            .iter()
                            .map(|r| {
                                (
                                    f64::from(r.connections),
                                    r.requests_per_sec,
                                    Some(r.latency.p99_ms),
                                )
                            })
                            .collect(),
                        raw: Vec::new(),
                    }
                })
                .collect();
            if series.iter().all(|s| s.points.len() < 2) {
                continue;
            }
            let name = match size {
                Some(s) => format!("{operation} {}", human_size(s)),
                None => operation.to_string(),
            };
            let chart = Chart {
                title: format!("{name}: requests/s and p99 latency vs connections"),
                x_label: "connections (one request in flight each)",
                x_log: true,
                series,
                raw_label: "closed loop over keep-alive connections; each request SigV4-signed; \
                            dashed on the right: the 5 ms p99 target",
                left_caption: "requests per second (log scale)",
                right_caption: "p99 latency per request, ms",
                right_reference: Some(5.0),
            };
            let file = match size {
                Some(s) => format!("endpoint-{operation}-{s}B-vs-connections"),
                None => format!("endpoint-{operation}-vs-connections"),
            };
            written.extend(write_chart(&chart, dir, &file)?);
        }
        Ok(written)
    }
}
