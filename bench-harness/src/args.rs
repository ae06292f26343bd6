//! Command-line arguments: [`SweepArgs`] (everything about what is measured and how it is shown,
//! flattenable into another clap command) and [`BenchArgs`] (the stand-alone binary: the sweep,
//! plus where the keys live and the JSON switch that a host CLI usually has globally).

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, ValueEnum};
use keyplane::KeySpec;

pub use crate::units::{parse_count, parse_duration, parse_size};
pub use crate::workload::RsaPadding;
use crate::workload::Workload;

/// What to measure and how to show it. Flatten this into a host command
/// (`#[command(flatten)] sweep: SweepArgs`) and call [`crate::run_sweep`]. None of its options is
/// named `--json`, `--data-dir`, `--region`, `--account-id` or `--allow-unlocked-memory`, which
/// a host CLI typically has as global options.
#[derive(Debug, Clone, Args)]
pub struct SweepArgs {
    /// Workloads to run, comma-separated: encrypt, decrypt, re-encrypt, generate-data-key, sign,
    /// verify, generate-mac, verify-mac, envelope (GenerateDataKey + local AES-GCM of the payload,
    /// then Decrypt of the data key + local open, per item), or `all`; and `stream` (an
    /// Encryption SDK message of --stream-size bytes encrypted and decrypted in memory with
    /// --threads pool threads, beside a bare aws-lc-rs AES-256-GCM loop over the same bytes);
    /// and `many-keys` (an engine filled with keys up to each of --key-counts: CreateKey cost,
    /// DescribeKey and Encrypt lookup cost and memory per key at each size, beside a bare
    /// aws-lc-rs seal under as many keys); and `fleet` (nodes
    /// sharing the PostgreSQL store --store names: control plane against SQLite, propagation,
    /// data plane against memory, and with --fleet-keys a filled store's cold start); and
    /// `cold-decrypt` (Decrypt of blobs each under its own derived-key salt, against one salt)
    #[arg(short, long = "workload", value_name = "LIST", value_delimiter = ',',
          default_value = "encrypt", value_parser = parse_workload)]
    pub workloads: Vec<WorkloadChoice>,

    /// Engine worker threads (the engine's rayon pool), comma-separated list to sweep
    #[arg(short, long, value_name = "LIST", value_delimiter = ',', default_value = "1",
          value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub threads: Vec<u32>,

    /// Requests per batch call, comma-separated list to sweep
    #[arg(short, long, value_name = "LIST", value_delimiter = ',', default_value = "1000",
          value_parser = parse_count)]
    pub batch: Vec<usize>,

    /// The `many-keys` workload's sizes: keys in the engine at each measurement, comma-separated
    #[arg(long, value_name = "LIST", value_delimiter = ',', default_value = "1k,100k,1M",
          value_parser = parse_count)]
    pub key_counts: Vec<usize>,

    /// The `stream` workload's buffer size (e.g. 1GiB)
    #[arg(long, value_name = "SIZE", default_value = "1GiB", value_parser = parse_size)]
    pub stream_size: usize,

    /// The `stream` workload also encrypts and decrypts a file of --stream-size bytes in this
    /// directory (file to file, fsynced), beside the disk's measured write speed
    #[arg(long, value_name = "DIR")]
    pub stream_dir: Option<std::path::PathBuf>,

    /// Message sizes (plaintext for encrypt/decrypt/re-encrypt, payload for envelope, message for
    /// sign/verify/MAC; unused by generate-data-key), comma-separated, e.g. 64,1KiB,16KiB
    #[arg(short, long, value_name = "LIST", value_delimiter = ',', default_value = "64",
          value_parser = parse_size)]
    pub size: Vec<usize>,

    /// Key specs for sign and verify, comma-separated: ECC_NIST_P256 (p256), ECC_NIST_P384
    /// (p384), ECC_NIST_P521 (p521), ECC_SECG_P256K1 (secp256k1), ECC_NIST_EDWARDS25519
    /// (ed25519), RSA_2048 (rsa2048), RSA_3072, RSA_4096
    #[arg(long, value_name = "LIST", value_delimiter = ',', default_value = "ECC_NIST_P256",
          value_parser = parse_sign_spec)]
    pub sign_spec: Vec<KeySpec>,

    /// Key specs for generate-mac and verify-mac, comma-separated: HMAC_224, HMAC_256 (hmac256),
    /// HMAC_384, HMAC_512
    #[arg(long, value_name = "LIST", value_delimiter = ',', default_value = "HMAC_256",
          value_parser = parse_mac_spec)]
    pub mac_spec: Vec<KeySpec>,

    /// RSA signature padding for RSA sign/verify keys
    #[arg(long, value_enum, default_value_t = RsaPadding::Pss)]
    pub rsa_padding: RsaPadding,

    /// Application threads calling the engine at once (each issues batches back to back), a
    /// comma-separated list to sweep
    #[arg(long, value_name = "LIST", value_delimiter = ',', default_value = "1",
          value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub callers: Vec<u32>,

    /// Measured time per repeat of each point (e.g. 2s, 500ms)
    #[arg(short, long, value_name = "TIME", default_value = "2s", value_parser = parse_duration,
          conflicts_with = "ops")]
    pub duration: Duration,

    /// Operations per repeat of each point instead of a duration (rounded up to whole batches)
    #[arg(long, value_name = "N", value_parser = parse_count)]
    pub ops: Option<usize>,

    /// Warm-up before each point's repeats (not measured)
    #[arg(long, value_name = "TIME", default_value = "500ms", value_parser = parse_duration)]
    pub warmup: Duration,

    /// Repeats per point; the table shows their median and spread
    #[arg(short, long, value_name = "N", default_value_t = 3,
          value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub repeats: u32,

    /// Encrypt without an encryption context (by default every request carries a two-pair
    /// context, which is also the raw baseline's AAD)
    #[arg(long)]
    pub no_context: bool,

    /// Encrypt and decrypt into caller buffers (`encrypt_batch_into`, `decrypt_batch_into`: no
    /// allocation per item) instead of the allocating batch calls
    #[arg(long)]
    pub into: bool,

    /// Encrypt, decrypt and GenerateMac into one buffer the caller keeps from batch to batch
    /// (`encrypt_batch_to`, `decrypt_batch_to`, `generate_mac_batch_to` with a kept
    /// `BatchOutputs`) instead of the allocating batch calls; the raw baseline of encrypt and
    /// decrypt is then the allocation-free one, as for --into
    #[arg(long, conflicts_with = "into")]
    pub kept_outputs: bool,

    /// Skip the raw aws-lc-rs baselines (no ratios then)
    #[arg(long)]
    pub no_baseline: bool,

    /// Also run the encrypt points through other bindings: `c` (the C ABI's `kp_*` functions,
    /// called as C calls them) and/or `python` (the keyplane Python package, also the decrypt
    /// points; with --into or --kept-outputs its zero-copy `*_batch_into` calls), comma-separated
    #[arg(long, value_name = "LIST", value_delimiter = ',', value_enum)]
    pub compare: Vec<CompareWith>,

    /// The Python interpreter for `--compare python`
    #[arg(long, value_name = "PROGRAM", default_value = "python3")]
    pub python: String,

    /// After the sweep, print the thread count and batch size with the best throughput (within
    /// --latency-bound-ms, if given) for each workload and size
    #[arg(long)]
    pub recommend: bool,

    /// Latency bound for --recommend: the 99th percentile of per-batch-call latency, in
    /// milliseconds
    #[arg(long, value_name = "MS", requires = "recommend")]
    pub latency_bound_ms: Option<f64>,

    /// Write CSV (one row per point) to FILE, or to standard output without FILE (or with -)
    #[arg(long, value_name = "FILE", num_args = 0..=1)]
    pub csv: Option<Option<PathBuf>>,

    /// Write throughput-vs-threads and throughput-vs-batch-size charts (SVG and PNG) to DIR
    #[arg(long, value_name = "DIR")]
    pub plot: Option<PathBuf>,

    /// No progress bar and no table (results only through --json, --csv, --plot)
    #[arg(short, long)]
    pub quiet: bool,
}

/// The stand-alone `keyplane-bench` program: a [`SweepArgs`], plus the store and JSON options a
/// host CLI would give globally.
#[derive(Debug, Clone, Args)]
pub struct BenchArgs {
    #[command(flatten)]
    pub sweep: SweepArgs,

    /// Write the report as JSON to FILE, or to standard output (instead of the table) without
    /// FILE (or with -)
    #[arg(long, value_name = "FILE", num_args = 0..=1)]
    pub json: Option<Option<PathBuf>>,

    /// Run against the durable SQLite store in DIR (created, with a root key file DIR/root.key,
    /// if it holds no store) instead of the in-memory store. The benchmark keys live under
    /// alias/keyplane-bench/* there and are reused by later runs.
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,

    /// Run even where key memory cannot be locked (mlock), with a warning
    #[arg(long)]
    pub allow_unlocked_memory: bool,

    /// With --endpoint: measure a server of the service's wire protocol instead of the engine
    #[cfg(feature = "endpoint")]
    #[command(flatten)]
    pub endpoint: crate::endpoint::EndpointArgs,

    /// The `fleet` workload's options
    #[cfg(feature = "postgres")]
    #[command(flatten)]
    pub fleet: crate::fleet::options::FleetArgs,

    /// With --endpoint: the region requests are signed for
    #[cfg(feature = "endpoint")]
    #[arg(long, value_name = "REGION", default_value = "us-east-1")]
    pub region: String,
}

/// A `--workload` value: one workload, or every one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkloadChoice {
    One(Workload),
    All,
    /// `stream`: envelope encryption of an in-memory buffer (`stream.rs`), measured apart from the
    /// batch sweep.
    Stream,
    /// `many-keys`: control-plane and lookup cost as the engine fills (`many_keys.rs`), measured
    /// apart from the batch sweep.
    ManyKeys,
    /// `cold-decrypt`: Decrypt of blobs each under its own derived-key salt against one salt
    /// (`cold_decrypt.rs`), measured apart from the batch sweep.
    ColdDecrypt,
    /// `fleet`: nodes sharing a PostgreSQL store against SQLite and memory (`fleet/`), measured
    /// apart from the batch sweep.
    Fleet,
}

/// Another binding to run the same encrypt workload through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CompareWith {
    /// The C ABI (keyplane-ffi, the code of libkeyplane, linked in)
    C,
    /// The Python package (`import keyplane`)
    Python,
}

impl SweepArgs {
    /// Where the encrypt and decrypt points put their results.
    pub fn outputs(&self) -> crate::workload::Outputs {
        use crate::workload::Outputs;
        match (self.into, self.kept_outputs) {
            (true, _) => Outputs::Into,
            (false, true) => Outputs::Kept,
            (false, false) => Outputs::Allocated,
        }
    }

    /// Whether `stream` was asked for.
    pub fn wants_stream(&self) -> bool {
        self.workloads.contains(&WorkloadChoice::Stream)
    }

    /// Whether `many-keys` was asked for.
    pub fn wants_many_keys(&self) -> bool {
        self.workloads.contains(&WorkloadChoice::ManyKeys)
    }

    /// Whether `cold-decrypt` was asked for.
    pub fn wants_cold_decrypt(&self) -> bool {
        self.workloads.contains(&WorkloadChoice::ColdDecrypt)
    }

    /// Whether `fleet` was asked for.
    pub fn wants_fleet(&self) -> bool {
        self.workloads.contains(&WorkloadChoice::Fleet)
    }

    /// Whether a batch workload was asked for (besides `stream`, `many-keys` and `fleet`).
    pub fn wants_sweep(&self) -> bool {
        self.workloads.iter().any(|w| {
            !matches!(
                w,
                WorkloadChoice::Stream
                    | WorkloadChoice::ManyKeys
                    | WorkloadChoice::ColdDecrypt
                    | WorkloadChoice::Fleet
            )
        })
    }

    /// The workloads, expanded and without duplicates, in the order given.
    pub fn workload_list(&self) -> Vec<Workload> {
        crate::dedup(self.workloads.iter().flat_map(|choice| match choice {
            WorkloadChoice::One(w) => std::slice::from_ref(w),
            WorkloadChoice::All => &Workload::ALL[..],
            WorkloadChoice::Stream
            | WorkloadChoice::ManyKeys
            | WorkloadChoice::ColdDecrypt
            | WorkloadChoice::Fleet => &[],
        }))
        .into_iter()
        .copied()
        .collect()
    }
}

fn parse_workload(s: &str) -> Result<WorkloadChoice, String> {
    if s.eq_ignore_ascii_case("all") {
        return Ok(WorkloadChoice::All);
    }
    if s.eq_ignore_ascii_case("stream") {
        return Ok(WorkloadChoice::Stream);
    }
    if s.trim().to_ascii_lowercase().replace('_', "-") == "many-keys" {
        return Ok(WorkloadChoice::ManyKeys);
    }
    if s.trim().to_ascii_lowercase().replace('_', "-") == "cold-decrypt" {
        return Ok(WorkloadChoice::ColdDecrypt);
    }
    if s.trim().eq_ignore_ascii_case("fleet") {
        return Ok(WorkloadChoice::Fleet);
    }
    Workload::parse(s).map(WorkloadChoice::One)
}

fn parse_spec(s: &str) -> Result<KeySpec, String> {
    let t = s.trim();
    let short = t.to_ascii_lowercase().replace(['-', '_'], "");
    let spec = match short.as_str() {
        "p256" | "eccnistp256" => KeySpec::EccNistP256,
        "p384" | "eccnistp384" => KeySpec::EccNistP384,
        "p521" | "eccnistp521" => KeySpec::EccNistP521,
        "secp256k1" | "p256k1" | "eccsecgp256k1" => KeySpec::EccSecgP256k1,
        "ed25519" | "eccnistedwards25519" => KeySpec::EccNistEdwards25519,
        "rsa2048" => KeySpec::Rsa2048,
        "rsa3072" => KeySpec::Rsa3072,
        "rsa4096" => KeySpec::Rsa4096,
        "hmac224" => KeySpec::Hmac224,
        "hmac256" => KeySpec::Hmac256,
        "hmac384" => KeySpec::Hmac384,
        "hmac512" => KeySpec::Hmac512,
        _ => t.to_ascii_uppercase().parse().map_err(|e| format!("{e}"))?,
    };
    Ok(spec)
}

fn parse_sign_spec(s: &str) -> Result<KeySpec, String> {
    let spec = parse_spec(s)?;
    if crate::workload::signing_algorithm(spec, RsaPadding::Pss).is_none() {
        return Err(format!(
            "{spec} is not a signing key spec this harness runs (ECC_NIST_P256, ECC_NIST_P384, \
             ECC_NIST_P521, ECC_SECG_P256K1, ECC_NIST_EDWARDS25519, RSA_2048, RSA_3072, RSA_4096)"
        ));
    }
    Ok(spec)
}

fn parse_mac_spec(s: &str) -> Result<KeySpec, String> {
    let spec = parse_spec(s)?;
    if crate::workload::mac_algorithm(spec).is_none() {
        return Err(format!(
            "{spec} is not an HMAC key spec (HMAC_224, HMAC_256, HMAC_384, HMAC_512)"
        ));
    }
    Ok(spec)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_specs() {
        assert_eq!(parse_count("10k").unwrap(), 10_000);
        assert!(parse_count("0").is_err());
        assert_eq!(
            parse_sign_spec("ed25519").unwrap(),
            KeySpec::EccNistEdwards25519
        );
        assert_eq!(parse_sign_spec("RSA_2048").unwrap(), KeySpec::Rsa2048);
        assert!(parse_sign_spec("HMAC_256").is_err());
        assert_eq!(parse_mac_spec("hmac-512").unwrap(), KeySpec::Hmac512);
    }

    #[derive(clap::Parser)]
    struct Sweep {
        #[command(flatten)]
        sweep: SweepArgs,
    }

    fn workloads(list: &str) -> Vec<Workload> {
        use clap::Parser as _;
        Sweep::try_parse_from(["keyplane-bench", "-w", list])
            .unwrap()
            .sweep
            .workload_list()
    }

    #[test]
    fn workloads_expand_once_each_in_the_order_given() {
        assert_eq!(
            workloads("verify,encrypt,verify"),
            [Workload::Verify, Workload::Encrypt]
        );
        let mut all_after_mac = vec![Workload::GenerateMac];
        all_after_mac.extend(
            Workload::ALL
                .iter()
                .filter(|w| **w != Workload::GenerateMac),
        );
        assert_eq!(workloads("generate-mac,all,encrypt,stream"), all_after_mac);
        assert!(workloads("stream,many-keys").is_empty());
    }
}
