//! `--endpoint URL`: a closed-loop load generator for `keyplane serve`, or any server of the
//! service's wire protocol (AWS JSON 1.1 with SigV4), such as moto's.
//!
//! For each operation it creates its key once (CreateKey: symmetric, or ECC_NIST_P256
//! SIGN_VERIFY for sign) and, for decrypt, ciphertexts to decrypt; then for each connection count
//! it opens that many keep-alive connections (TLS and HTTP handshakes included), runs a warm-up,
//! and measures: each connection sends its next request as soon as the previous answer is read.
//! Setup, connecting and warm-up are outside the measured window. Every request is signed anew
//! (with its own `amz-sdk-invocation-id`), and every answer's status is checked: errors are
//! counted by the service's error code and a run with any says so loudly.

mod client;
pub mod report;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use base64::Engine as _;
use bytes::Bytes;
use clap::{Args, ValueEnum};
use hdrhistogram::Histogram;

use crate::BenchError;
use client::{Connection, Outcome, Target};
pub use report::{EndpointReport, EndpointRun};

/// Options of an endpoint run. Flatten into a host command next to [`crate::SweepArgs`], whose
/// `--duration`, `--warmup`, `--size`, `--plot` and `--quiet` it uses too. The signing region is
/// the host's (`--region` of the CLI).
#[derive(Debug, Clone, Args)]
pub struct EndpointArgs {
    /// Measure a server of the service's wire protocol at URL (https://host:port or
    /// http://host:port) instead of the in-process engine
    #[arg(long, value_name = "URL")]
    pub endpoint: Option<String>,

    /// Keep-alive connections, each with one request in flight (closed loop); a comma-separated
    /// list to sweep
    #[arg(long, value_name = "LIST", value_delimiter = ',', default_value = "16",
          value_parser = clap::value_parser!(u32).range(1..=4096), requires = "endpoint")]
    pub connections: Vec<u32>,

    /// Operations to measure, comma-separated: encrypt (of --size bytes), decrypt (of ciphertexts
    /// made in setup), generate-data-key (AES_256), sign (ECDSA P-256 of a --size message)
    #[arg(
        long = "operation",
        value_name = "LIST",
        value_delimiter = ',',
        value_enum,
        default_value = "encrypt",
        requires = "endpoint"
    )]
    pub operations: Vec<Operation>,

    /// PEM certificates to trust for an https endpoint (the server's own certificate or its CA)
    #[arg(long, value_name = "PEM", requires = "endpoint")]
    pub ca_bundle: Option<PathBuf>,

    /// Speak HTTP/2 (ALPN h2 over TLS; prior knowledge over plain HTTP) instead of HTTP/1.1
    #[arg(long, requires = "endpoint")]
    pub http2: bool,

    /// The access key id to sign with [default: $AWS_ACCESS_KEY_ID]
    #[arg(long, value_name = "ID", requires = "endpoint")]
    pub access_key_id: Option<String>,

    /// The secret access key to sign with [default: $AWS_SECRET_ACCESS_KEY]
    #[arg(long, value_name = "SECRET", requires = "endpoint")]
    pub secret_access_key: Option<String>,

    /// Load-generator threads (tokio workers) [default: the machine's CPUs]
    #[arg(long, value_name = "N", requires = "endpoint",
          value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub client_threads: Option<u32>,

    /// A name for this run's results in tables, JSON and charts [default: the endpoint's host:port]
    #[arg(long, value_name = "NAME", requires = "endpoint")]
    pub label: Option<String>,

    /// Add this run's results to the endpoint report in FILE (created if absent) and show the
    /// whole of it: tables, charts and ratios across runs of different servers
    #[arg(long, value_name = "FILE", requires = "endpoint")]
    pub append: Option<PathBuf>,

    /// The server's process id: its CPU time per request is reported too (Linux, /proc)
    #[arg(long, value_name = "PID", requires = "endpoint")]
    pub server_pid: Option<u32>,

    /// The label whose runs the others are compared with (the ratio column: requests/s of a run
    /// over the baseline's at the same operation, size and connections)
    #[arg(long, value_name = "NAME", requires = "endpoint")]
    pub baseline: Option<String>,
}

/// A measured operation.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    ValueEnum,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum Operation {
    Encrypt,
    Decrypt,
    GenerateDataKey,
    Sign,
}

impl Operation {
    /// The service's operation name (`X-Amz-Target: TrentService.<name>`).
    pub fn service_name(self) -> &'static str {
        match self {
            Operation::Encrypt => "Encrypt",
            Operation::Decrypt => "Decrypt",
            Operation::GenerateDataKey => "GenerateDataKey",
            Operation::Sign => "Sign",
        }
    }

    /// The member every successful answer carries.
    fn answer_member(self) -> &'static [u8] {
        match self {
            Operation::Encrypt | Operation::GenerateDataKey => b"\"CiphertextBlob\"",
            Operation::Decrypt => b"\"Plaintext\"",
            Operation::Sign => b"\"Signature\"",
        }
    }

    /// Whether `--size` applies.
    pub fn uses_size(self) -> bool {
        matches!(
            self,
            Operation::Encrypt | Operation::Decrypt | Operation::Sign
        )
    }
}

impl std::fmt::Display for Operation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = self
            .to_possible_value()
            .map(|v| v.get_name().to_owned())
            .unwrap_or_default();
        f.write_str(&name)
    }
}

/// What the host decides: where the report goes, the signing region, timing and sizes taken from
/// the sweep options.
#[derive(Debug, Clone)]
pub struct EndpointOptions {
    pub json: Option<crate::Destination>,
    pub region: String,
    pub duration: Duration,
    pub warmup: Duration,
    pub size: usize,
    pub plot: Option<PathBuf>,
    pub quiet: bool,
}

impl EndpointOptions {
    /// Timing, size, charts and quietness from a sweep's options (its first `--size`).
    pub fn from_sweep(
        sweep: &crate::SweepArgs,
        json: Option<crate::Destination>,
        region: &str,
    ) -> EndpointOptions {
        EndpointOptions {
            json,
            region: region.to_owned(),
            duration: sweep.duration,
            warmup: sweep.warmup,
            size: sweep.size.first().copied().unwrap_or(64),
            plot: sweep.plot.clone(),
            quiet: sweep.quiet,
        }
    }
}

/// Runs every (operation, connections) point against the endpoint, then writes the outputs
/// asked for (table unless quiet, JSON, charts; with `--append`, of the merged report). Fails
/// (after writing them) when any request failed.
pub fn run_endpoint(
    args: &EndpointArgs,
    options: &EndpointOptions,
) -> Result<EndpointReport, BenchError> {
    let url = args
        .endpoint
        .as_deref()
        .ok_or_else(|| BenchError::Usage("--endpoint URL is required".into()))?;
    let access_key_id = args
        .access_key_id
        .clone()
        .or_else(|| std::env::var("AWS_ACCESS_KEY_ID").ok())
        .filter(|s| !s.is_empty())
        .ok_or_else(|| {
            BenchError::Usage(
                "no credential to sign with: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY \
                 (or --access-key-id and --secret-access-key)"
                    .into(),
            )
        })?;
    let secret = args
        .secret_access_key
        .clone()
        .or_else(|| std::env::var("AWS_SECRET_ACCESS_KEY").ok())
        .filter(|s| !s.is_empty())
        .ok_or_else(|| {
            BenchError::Usage(
                "no secret to sign with: set AWS_SECRET_ACCESS_KEY (or --secret-access-key)".into(),
            )
        })?;
    if options.size > 4096 && args.operations.contains(&Operation::Encrypt) {
        return Err(BenchError::Usage(format!(
            "--size {}: Encrypt takes at most 4096 bytes of plaintext",
            options.size
        )));
    }
    let target = Target::new(
        url,
        args.ca_bundle.as_deref(),
        args.http2,
        &access_key_id,
        &secret,
        &options.region,
    )
    .map_err(BenchError::Usage)?;
    let label = args.label.clone().unwrap_or_else(|| {
        url.split("://")
            .nth(1)
            .unwrap_or(url)
            .trim_end_matches('/')
            .to_owned()
    });
    let threads = args.client_threads.map_or_else(
        || std::thread::available_parallelism().map_or(1, |n| n.get()),
        |n| n as usize,
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()
        .map_err(|e| BenchError::Setup(format!("starting the load generator's runtime: {e}")))?;

    let mut runs = Vec::new();
    let connections = crate::dedup(args.connections.clone());
    for operation in crate::dedup(args.operations.clone()) {
        let bodies = runtime
            .block_on(setup(&target, operation, options.size))
            .map_err(BenchError::Setup)?;
        for &n in &connections {
            if !options.quiet {
                eprintln!("keyplane-bench: {label}: {operation}, {n} connection(s)...");
            }
            let measured = runtime
                .block_on(measure(
                    &target,
                    operation,
                    &bodies,
                    n,
                    options,
                    args.server_pid,
                ))
                .map_err(BenchError::Run)?;
            let run = EndpointRun::new(
                &label, url, &target, operation, options, n, threads, measured,
            );
            if !options.quiet {
                eprintln!("  {}", run.summary());
            }
            runs.push(run);
        }
    }
    drop(runtime);

    let mut report = match &args.append {
        Some(path) if path.exists() => EndpointReport::read(path)?,
        _ => EndpointReport::new(),
    };
    let failed: u64 = runs.iter().map(|r| r.error_count).sum();
    report.runs.extend(runs);
    report.baseline = args.baseline.clone().or(report.baseline.take());
    report.finish();
    if let Some(path) = &args.append {
        report.write(&crate::Destination::File(path.clone()))?;
    }
    report.output(options)?;
    if failed > 0 {
        return Err(BenchError::Run(format!(
            "{failed} request(s) failed: see the errors by code above"
        )));
    }
    Ok(report)
}

/// The request bodies a connection cycles through.
struct Bodies(Vec<Bytes>);

/// Creates the key and, for decrypt, the ciphertexts; returns the bodies to send.
async fn setup(target: &Target, operation: Operation, size: usize) -> Result<Bodies, String> {
    let mut conn = target.connect().await?;
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    let (spec, usage) = match operation {
        Operation::Sign => ("ECC_NIST_P256", "SIGN_VERIFY"),
        _ => ("SYMMETRIC_DEFAULT", "ENCRYPT_DECRYPT"),
    };
    let created = call_ok(
        &mut conn,
        "CreateKey",
        serde_json::json!({
            "KeySpec": spec,
            "KeyUsage": usage,
            "Description": "keyplane-bench --endpoint",
        }),
    )
    .await?;
    let key_id = created["KeyMetadata"]["KeyId"]
        .as_str()
        .ok_or("CreateKey answered without KeyMetadata.KeyId")?
        .to_owned();
    let message: Vec<u8> = (0..size).map(|i| (i * 31 + 7) as u8).collect();
    let body = |v: serde_json::Value| Bytes::from(v.to_string());
    let bodies = match operation {
        Operation::Encrypt => vec![body(serde_json::json!({
            "KeyId": key_id, "Plaintext": b64(&message),
        }))],
        Operation::GenerateDataKey => vec![body(serde_json::json!({
            "KeyId": key_id, "KeySpec": "AES_256",
        }))],
        Operation::Sign => vec![body(serde_json::json!({
            "KeyId": key_id, "Message": b64(&message), "MessageType": "RAW",
            "SigningAlgorithm": "ECDSA_SHA_256",
        }))],
        Operation::Decrypt => {
            let mut out = Vec::new();
            for _ in 0..64 {
                let sealed = call_ok(
                    &mut conn,
                    "Encrypt",
                    serde_json::json!({ "KeyId": key_id, "Plaintext": b64(&message) }),
                )
                .await?;
                let blob = sealed["CiphertextBlob"]
                    .as_str()
                    .ok_or("Encrypt answered without CiphertextBlob")?;
                out.push(body(serde_json::json!({ "CiphertextBlob": blob })));
            }
            out
        }
    };
    Ok(Bodies(bodies))
}

async fn call_ok(
    conn: &mut Connection,
    operation: &str,
    body: serde_json::Value,
) -> Result<serde_json::Value, String> {
    match conn.call(operation, Bytes::from(body.to_string())).await {
        Outcome::Ok(answer) => serde_json::from_slice(&answer)
            .map_err(|e| format!("{operation} answered with a body that is not JSON: {e}")),
        Outcome::ServiceError { code, message } => {
            Err(format!("setup: {operation} failed: {code}: {message}"))
        }
        Outcome::Transport(e) => Err(format!("setup: {operation}: {e}")),
    }
}

/// What one point measured, merged over its connections.
#[derive(Debug)]
pub struct Measured {
    /// Requests started in the window and answered by its end.
    pub requests: u64,
    /// The window's length.
    pub elapsed: Duration,
    /// Latency in nanoseconds of every successful request started in the window.
    pub latency: Histogram<u64>,
    /// Failed requests (warm-up and window) by error code.
    pub errors: BTreeMap<String, u64>,
    /// One message per error code (the first seen).
    pub error_messages: BTreeMap<String, String>,
    /// Connections opened again after one failed.
    pub reconnects: u64,
    /// CPU time (user + system) of this process during the window.
    pub client_cpu: Duration,
    /// CPU time of the server's process during the window, when its pid was given.
    pub server_cpu: Option<Duration>,
}

/// CPU time (user + system) a process has used, from /proc/PID/stat (clock ticks).
fn process_cpu(pid: u32) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may hold spaces: count fields after the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    #[allow(unsafe_code)]
    // SAFETY: sysconf only reads a constant of the system.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    let hz = u64::try_from(hz).ok().filter(|&h| h > 0)?;
    Some(Duration::from_nanos(ticks * 1_000_000_000 / hz))
}

fn own_cpu() -> Duration {
    let (user, system) = crate::measure::process_cpu_time();
    user + system
}

fn new_histogram() -> Histogram<u64> {
    // 1 ns to 10 minutes with 3 significant digits.
    Histogram::new_with_bounds(1, 600_000_000_000, 3).expect("valid histogram bounds")
}

async fn measure(
    target: &Target,
    operation: Operation,
    bodies: &Bodies,
    connections: u32,
    options: &EndpointOptions,
    server_pid: Option<u32>,
) -> Result<Measured, String> {
    // Connect everything first: handshakes are not measured.
    let mut conns = Vec::with_capacity(connections as usize);
    for _ in 0..connections {
        conns.push(target.connect().await?);
    }
    let start = Instant::now() + Duration::from_millis(20);
    let window_start = start + options.warmup;
    let window_end = window_start + options.duration;
    let mut tasks = tokio::task::JoinSet::new();
    for (i, conn) in conns.into_iter().enumerate() {
        let bodies: Vec<Bytes> = bodies.0.clone();
        tasks.spawn(async move {
            let mut conn = conn;
            let mut m = Measured {
                requests: 0,
                elapsed: Duration::ZERO,
                latency: new_histogram(),
                errors: BTreeMap::new(),
                error_messages: BTreeMap::new(),
                reconnects: 0,
                client_cpu: Duration::ZERO,
                server_cpu: None,
            };
            tokio::time::sleep_until(start.into()).await;
            let mut next = i;
            loop {
                let t0 = Instant::now();
                if t0 >= window_end {
                    break;
                }
                let body = bodies[next % bodies.len()].clone();
                next += 1;
                let outcome = conn.call(operation.service_name(), body).await;
                let t1 = Instant::now();
                match outcome {
                    Outcome::Ok(answer) if contains(&answer, operation.answer_member()) => {
                        if t0 >= window_start {
                            let ns = u64::try_from((t1 - t0).as_nanos()).unwrap_or(u64::MAX);
                            m.latency.saturating_record(ns.max(1));
                            if t1 <= window_end {
                                m.requests += 1;
                            }
                        }
                    }
                    Outcome::Ok(_) => count_error(
                        &mut m,
                        "UnexpectedAnswer",
                        format!(
                            "HTTP 200 without {}",
                            String::from_utf8_lossy(operation.answer_member())
                        ),
                    ),
                    Outcome::ServiceError { code, message } => count_error(&mut m, &code, message),
                    Outcome::Transport(e) => {
                        let code = if e == "Timeout" {
                            "Timeout"
                        } else {
                            "Connection"
                        };
                        count_error(&mut m, code, e);
                    }
                }
            }
            m.reconnects = conn.reconnects;
            m
        });
    }
    // CPU time over the window, read by a task of its own at its start and end.
    let cpu = tokio::spawn(async move {
        tokio::time::sleep_until(window_start.into()).await;
        let (client, server) = (own_cpu(), server_pid.and_then(process_cpu));
        tokio::time::sleep_until(window_end.into()).await;
        let client = own_cpu().saturating_sub(client);
        let server = server
            .zip(server_pid.and_then(process_cpu))
            .map(|(a, b)| b.saturating_sub(a));
        (client, server)
    });
    let mut total = Measured {
        requests: 0,
        elapsed: options.duration,
        latency: new_histogram(),
        errors: BTreeMap::new(),
        error_messages: BTreeMap::new(),
        reconnects: 0,
        client_cpu: Duration::ZERO,
        server_cpu: None,
    };
    while let Some(done) = tasks.join_next().await {
        let m = done.map_err(|e| format!("a connection's task failed: {e}"))?;
        total.requests += m.requests;
        total.reconnects += m.reconnects;
        total
            .latency
            .add(&m.latency)
            .map_err(|e| format!("merging latencies: {e}"))?;
        for (code, n) in m.errors {
            *total.errors.entry(code).or_default() += n;
        }
        for (code, msg) in m.error_messages {
            total.error_messages.entry(code).or_insert(msg);
        }
    }
    (total.client_cpu, total.server_cpu) = cpu
        .await
        .map_err(|e| format!("the CPU time task failed: {e}"))?;
    Ok(total)
}

fn count_error(m: &mut Measured, code: &str, message: String) {
    *m.errors.entry(code.to_owned()).or_default() += 1;
    m.error_messages.entry(code.to_owned()).or_insert(message);
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}
