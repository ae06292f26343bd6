//! Counters and histograms for the admin listener's Prometheus endpoint.
//!
//! Every update is a handful of relaxed atomic additions: no lock on any path. Labelled series
//! live in a fixed table of slots claimed once per label value (`OnceLock`), so a stream of
//! requests with made-up label values cannot grow memory: past [`SLOTS`] distinct values they are
//! counted under `other`.

use std::fmt::{self, Write as _};
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};
use std::sync::OnceLock;
use std::time::Duration;

/// Most distinct label values kept per metric family (operations × codes is well under this).
pub const SLOTS: usize = 512;

/// Upper bounds of the latency histogram's buckets, in microseconds (100 µs to 10 s).
const LATENCY_BOUNDS_US: [u64; 16] = [
    100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000,
    1_000_000, 2_500_000, 5_000_000, 10_000_000,
];
/// Upper bounds of the coalesced batch size histogram's buckets.
const BATCH_BOUNDS: [u64; 11] = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024];

/// Why the server closed a connection on its own.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Closed {
    /// A request's headers (HTTP/1.1) did not arrive within the header timeout.
    HeaderTimeout,
    /// No request and no bytes within the idle timeout.
    IdleTimeout,
    /// A request body did not arrive within the body timeout.
    BodyTimeout,
}

/// One operation's totals since start ([`Metrics::operation_totals`]).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct OperationTotals {
    pub operation: String,
    pub requests: u64,
    pub errors: u64,
    pub latency_sum_us: u64,
}

/// The server's metrics. Cheap to update from any thread.
#[derive(Debug, Default)]
pub struct Metrics {
    requests: Labeled<AtomicU64>,
    latency: Labeled<Histogram<16>>,
    batches: Labeled<Histogram<11>>,
    open_connections: AtomicI64,
    connections: AtomicU64,
    tls_handshake_failures: AtomicU64,
    header_timeouts: AtomicU64,
    idle_timeouts: AtomicU64,
    body_timeouts: AtomicU64,
}

impl Metrics {
    /// A request answered: its operation (None for an unknown target or a refused request), its
    /// error code (None on success), and how long it took.
    pub fn request(&self, operation: Option<&str>, error_code: Option<&str>, took: Duration) {
        let operation = operation.unwrap_or("none");
        let code = error_code.unwrap_or("OK");
        self.requests.get(&[operation, code]).fetch_add(1, Relaxed);
        let micros = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        self.latency
            .get(&[operation])
            .observe(micros, &LATENCY_BOUNDS_US);
    }

    /// A coalesced engine batch call of `items` requests for `operation`.
    pub fn batch(&self, operation: &str, items: usize) {
        let items = u64::try_from(items).unwrap_or(u64::MAX);
        self.batches.get(&[operation]).observe(items, &BATCH_BOUNDS);
    }

    /// A connection opened (`true`) or closed (`false`).
    pub fn connection(&self, opened: bool) {
        if opened {
            self.connections.fetch_add(1, Relaxed);
            self.open_connections.fetch_add(1, Relaxed);
        } else {
            self.open_connections.fetch_sub(1, Relaxed);
        }
    }

    /// A TLS handshake failed or timed out.
    pub fn tls_handshake_failure(&self) {
        self.tls_handshake_failures.fetch_add(1, Relaxed);
    }

    /// The server closed a connection on its own, for `why`.
    pub fn closed(&self, why: Closed) {
        let counter = match why {
            Closed::HeaderTimeout => &self.header_timeouts,
            Closed::IdleTimeout => &self.idle_timeouts,
            Closed::BodyTimeout => &self.body_timeouts,
        };
        counter.fetch_add(1, Relaxed);
    }

    /// Connections open now.
    pub fn open_connections(&self) -> i64 {
        self.open_connections.load(Relaxed)
    }

    /// Per operation: requests answered (all codes) and the sum of their latencies in
    /// microseconds, counted since start; for the console's throughput charts, which take the
    /// differences between two snapshots.
    pub fn operation_totals(&self) -> Vec<OperationTotals> {
        let mut out: Vec<OperationTotals> = Vec::new();
        for (labels, h) in self.latency.iter() {
            out.push(OperationTotals {
                operation: labels[0].to_string(),
                requests: h.count.load(Relaxed),
                latency_sum_us: h.sum.load(Relaxed),
                errors: 0,
            });
        }
        for (labels, count) in self.requests.iter() {
            if labels[1] == "OK" {
                continue;
            }
            if let Some(t) = out.iter_mut().find(|t| t.operation == labels[0]) {
                t.errors += count.load(Relaxed);
            }
        }
        out.sort_by(|a, b| a.operation.cmp(&b.operation));
        out
    }

    /// The Prometheus text exposition (format 0.0.4) of everything.
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(4096);
        let _ = self.write(&mut out);
        out
    }

    fn write(&self, out: &mut String) -> fmt::Result {
        family(
            out,
            "keyplane_requests_total",
            "counter",
            "Requests answered, by operation and error code (OK: success).",
        )?;
        for (labels, count) in self.requests.iter() {
            sample(
                out,
                "keyplane_requests_total",
                &[("operation", labels[0]), ("code", labels[1])],
                count.load(Relaxed),
            )?;
        }
        family(
            out,
            "keyplane_request_duration_seconds",
            "histogram",
            "Time from a request's body read to its answer, by operation.",
        )?;
        for (labels, h) in self.latency.iter() {
            h.write(
                out,
                "keyplane_request_duration_seconds",
                ("operation", labels[0]),
                &LATENCY_BOUNDS_US,
                1_000_000,
            )?;
        }
        family(
            out,
            "keyplane_coalesced_batch_items",
            "histogram",
            "Requests per coalesced engine batch call, by operation.",
        )?;
        for (labels, h) in self.batches.iter() {
            h.write(
                out,
                "keyplane_coalesced_batch_items",
                ("operation", labels[0]),
                &BATCH_BOUNDS,
                1,
            )?;
        }
        family(
            out,
            "keyplane_open_connections",
            "gauge",
            "Client connections open now.",
        )?;
        writeln!(
            out,
            "keyplane_open_connections {}",
            self.open_connections.load(Relaxed)
        )?;
        let counters = [
            (
                "keyplane_connections_total",
                "Client connections accepted.",
                &self.connections,
            ),
            (
                "keyplane_tls_handshake_failures_total",
                "TLS handshakes that failed or timed out.",
                &self.tls_handshake_failures,
            ),
            (
                "keyplane_header_timeouts_total",
                "Connections closed because a request's headers came too slowly.",
                &self.header_timeouts,
            ),
            (
                "keyplane_idle_timeouts_total",
                "Idle connections closed.",
                &self.idle_timeouts,
            ),
            (
                "keyplane_body_timeouts_total",
                "Requests refused because their body came too slowly.",
                &self.body_timeouts,
            ),
        ];
        for (name, help, value) in counters {
            family(out, name, "counter", help)?;
            writeln!(out, "{name} {}", value.load(Relaxed))?;
        }
        Ok(())
    }
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) -> fmt::Result {
    writeln!(out, "# HELP {name} {help}")?;
    writeln!(out, "# TYPE {name} {kind}")
}

fn sample(
    out: &mut String,
    name: &str,
    labels: &[(&str, &str)],
    value: impl fmt::Display,
) -> fmt::Result {
    out.push_str(name);
    out.push('{');
    for (i, (label, text)) in labels.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write!(out, "{label}=\"")?;
        for c in text.chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '"' => out.push_str("\\\""),
                '\n' => out.push_str("\\n"),
                c => out.push(c),
            }
        }
        out.push('"');
    }
    writeln!(out, "}} {value}")
}

/// A histogram: per-bucket counts (not cumulative; summed when rendered), count and sum.
#[derive(Debug)]
struct Histogram<const N: usize> {
    buckets: [AtomicU64; N],
    count: AtomicU64,
    sum: AtomicU64,
}

impl<const N: usize> Default for Histogram<N> {
    fn default() -> Self {
        Histogram {
            buckets: std::array::from_fn(|_| AtomicU64::new(0)),
            count: AtomicU64::new(0),
            sum: AtomicU64::new(0),
        }
    }
}

impl<const N: usize> Histogram<N> {
    fn observe(&self, value: u64, bounds: &[u64; N]) {
        if let Some(i) = bounds.iter().position(|&b| value <= b) {
            self.buckets[i].fetch_add(1, Relaxed);
        }
        self.sum.fetch_add(value, Relaxed);
        self.count.fetch_add(1, Relaxed);
    }

    /// Writes `_bucket` (cumulative, with `+Inf`), `_sum` and `_count`; the stored unit is
    /// `1/per_unit` of the exposed one (microseconds: 1_000_000 per second).
    fn write(
        &self,
        out: &mut String,
        name: &str,
        label: (&str, &str),
        bounds: &[u64; N],
        per_unit: u64,
    ) -> fmt::Result {
        // Read the count first: the buckets, read after, are never behind it by more than the
        // observations in progress, and `+Inf` is made equal to the count.
        let count = self.count.load(Relaxed);
        let mut cumulative = 0u64;
        let bucket = format!("{name}_bucket");
        for (bound, n) in bounds.iter().zip(&self.buckets) {
            cumulative = cumulative.saturating_add(n.load(Relaxed)).min(count);
            let le = decimal(*bound, per_unit);
            sample(out, &bucket, &[label, ("le", &le)], cumulative)?;
        }
        sample(out, &bucket, &[label, ("le", "+Inf")], count)?;
        sample(
            out,
            &format!("{name}_sum"),
            &[label],
            self.sum.load(Relaxed) as f64 / per_unit as f64,
        )?;
        sample(out, &format!("{name}_count"), &[label], count)
    }
}

/// `value / per_unit` written exactly (`per_unit` a power of ten): 25_000 µs is `0.025`.
fn decimal(value: u64, per_unit: u64) -> String {
    let (whole, frac) = (value / per_unit, value % per_unit);
    if frac == 0 {
        return whole.to_string();
    }
    let digits = per_unit.ilog10() as usize;
    let frac = format!("{frac:0digits$}");
    format!("{whole}.{}", frac.trim_end_matches('0'))
}

/// Series of one family keyed by label values, in a fixed table of slots.
struct Labeled<V> {
    slots: Box<[Slot<V>]>,
    overflow: Slot<V>,
}

struct Slot<V> {
    key: OnceLock<Box<[Box<str>]>>,
    value: V,
}

impl<V: Default> Default for Slot<V> {
    fn default() -> Self {
        Slot {
            key: OnceLock::new(),
            value: V::default(),
        }
    }
}

impl<V: Default> Default for Labeled<V> {
    fn default() -> Self {
        Labeled {
            slots: (0..SLOTS).map(|_| Slot::default()).collect(),
            overflow: Slot::default(),
        }
    }
}

impl<V> fmt::Debug for Labeled<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let used = self.slots.iter().filter(|s| s.key.get().is_some()).count();
        f.debug_struct("Labeled").field("series", &used).finish()
    }
}

impl<V: Default> Labeled<V> {
    /// The series for `labels`, claiming a free slot the first time (open addressing).
    fn get(&self, labels: &[&str]) -> &V {
        let matches = |key: &[Box<str>]| {
            key.len() == labels.len() && key.iter().zip(labels).all(|(a, b)| &**a == *b)
        };
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        labels.hash(&mut hasher);
        let start = hasher.finish() as usize % SLOTS;
        for i in 0..SLOTS {
            let slot = &self.slots[(start + i) % SLOTS];
            let key = slot
                .key
                .get_or_init(|| labels.iter().map(|l| Box::from(*l)).collect());
            if matches(key) {
                return &slot.value;
            }
        }
        let _ = self
            .overflow
            .key
            .get_or_init(|| labels.iter().map(|_| Box::from("other")).collect());
        &self.overflow.value
    }

    /// Every series in use, with its label values.
    fn iter(&self) -> impl Iterator<Item = (Vec<&str>, &V)> {
        self.slots
            .iter()
            .chain(std::iter::once(&self.overflow))
            .filter_map(|s| Some((s.key.get()?.iter().map(|l| &**l).collect(), &s.value)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_by_operation_and_code_and_fills_histograms() {
        let m = Metrics::default();
        m.request(Some("Encrypt"), None, Duration::from_micros(300));
        m.request(Some("Encrypt"), None, Duration::from_millis(20));
        m.request(
            Some("Decrypt"),
            Some("InvalidCiphertextException"),
            Duration::from_secs(60),
        );
        m.batch("Encrypt", 3);
        m.connection(true);
        m.connection(true);
        m.connection(false);
        let text = m.render();
        assert!(
            text.contains("keyplane_requests_total{operation=\"Encrypt\",code=\"OK\"} 2\n"),
            "{text}"
        );
        assert!(text.contains("keyplane_requests_total{operation=\"Decrypt\",code=\"InvalidCiphertextException\"} 1\n"));
        assert!(
            text.contains(
                "keyplane_request_duration_seconds_bucket{operation=\"Encrypt\",le=\"0.0005\"} 1\n"
            ),
            "{text}"
        );
        assert!(text.contains(
            "keyplane_request_duration_seconds_bucket{operation=\"Encrypt\",le=\"0.025\"} 2\n"
        ));
        // Beyond the last bound: only in +Inf.
        assert!(text.contains(
            "keyplane_request_duration_seconds_bucket{operation=\"Decrypt\",le=\"10\"} 0\n"
        ));
        assert!(text.contains(
            "keyplane_request_duration_seconds_bucket{operation=\"Decrypt\",le=\"+Inf\"} 1\n"
        ));
        assert!(text
            .contains("keyplane_coalesced_batch_items_bucket{operation=\"Encrypt\",le=\"4\"} 1\n"));
        assert!(text
            .contains("keyplane_coalesced_batch_items_bucket{operation=\"Encrypt\",le=\"2\"} 0\n"));
        assert!(text.contains("keyplane_open_connections 1\n"));
        assert!(text.contains("keyplane_connections_total 2\n"));
    }

    #[test]
    fn label_values_beyond_the_table_are_counted_as_other_and_escaped() {
        let m = Metrics::default();
        for i in 0..SLOTS + 10 {
            m.request(Some(&format!("Op{i}")), None, Duration::ZERO);
        }
        let text = m.render();
        assert!(
            text.contains("keyplane_requests_total{operation=\"other\",code=\"other\"} 10\n"),
            "{text}"
        );
        let total: u64 = text
            .lines()
            .filter(|l| l.starts_with("keyplane_requests_total{"))
            .map(|l| l.rsplit(' ').next().unwrap().parse::<u64>().unwrap())
            .sum();
        assert_eq!(total, (SLOTS + 10) as u64);
        let m = Metrics::default();
        m.request(Some("a\"b\\c\nd"), None, Duration::ZERO);
        assert!(m
            .render()
            .contains(r#"{operation="a\"b\\c\nd",code="OK"} 1"#));
    }
}
