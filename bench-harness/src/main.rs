//! `keyplane-bench`: the throughput harness as a program. See `keyplane-bench --help` and
//! docs/performance.md.

use std::process::ExitCode;

use clap::Parser;

/// Throughput harness for keyplane: sweeps workloads over engine threads, batch sizes and message
/// sizes, with a plain aws-lc-rs loop on one thread measured in the same run for every point.
#[derive(Debug, Parser)]
#[command(
    name = "keyplane-bench",
    version,
    after_help = "Examples:\n  \
      keyplane-bench --workload encrypt --threads 1,2 --batch 1,100,1000 --size 64,1KiB,16KiB\n  \
      keyplane-bench -w sign,verify --sign-spec p256,ed25519,rsa2048 --batch 64,1000\n  \
      keyplane-bench -w all --duration 500ms --json report.json --csv report.csv --plot charts\n  \
      keyplane-bench --threads 1,2 --batch 10,100,1000 --recommend --latency-bound-ms 1\n  \
      keyplane-bench --compare c,python --size 16KiB --batch 256\n  \
      keyplane-bench -w many-keys --key-counts 1k,100k,1M --allow-unlocked-memory\n  \
      keyplane-bench -w cold-decrypt --size 64,4KiB --batch 1000 --threads 1,2\n  \
      keyplane-bench -w fleet --store postgres://postgres@127.0.0.1:5432/fleet --fleet-keys 1M\n  \
      keyplane-bench --endpoint https://127.0.0.1:4443 --ca-bundle cert.pem --connections 1,8,64 \
      --operation encrypt,decrypt --duration 5s\n\n\
      Build with --release: a debug build's numbers mean little."
)]
struct Cli {
    #[command(flatten)]
    args: keyplane_bench::BenchArgs,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if cli.args.sweep.wants_stream() {
        if let Err(e) = keyplane_bench::stream::run(&cli.args.sweep) {
            eprintln!("keyplane-bench: {e}");
            return ExitCode::from(e.exit_code() as u8);
        }
    }
    if cli.args.sweep.wants_many_keys() {
        if let Err(e) = keyplane_bench::run_many_keys(&cli.args) {
            eprintln!("keyplane-bench: {e}");
            return ExitCode::from(e.exit_code() as u8);
        }
    }
    if cli.args.sweep.wants_cold_decrypt() {
        if let Err(e) = keyplane_bench::run_cold_decrypt(&cli.args) {
            eprintln!("keyplane-bench: {e}");
            return ExitCode::from(e.exit_code() as u8);
        }
    }
    if cli.args.sweep.wants_fleet() {
        if let Err(e) = keyplane_bench::run_fleet(&cli.args) {
            eprintln!("keyplane-bench: {e}");
            return ExitCode::from(e.exit_code() as u8);
        }
    }
    if !cli.args.sweep.wants_sweep() {
        return ExitCode::SUCCESS;
    }
    #[cfg(feature = "endpoint")]
    let result = if cli.args.endpoint.endpoint.is_some() {
        keyplane_bench::run_endpoint(&cli.args).map(|_| ())
    } else {
        keyplane_bench::run(&cli.args).map(|_| ())
    };
    #[cfg(not(feature = "endpoint"))]
    let result = keyplane_bench::run(&cli.args).map(|_| ());
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("keyplane-bench: {e}");
            ExitCode::from(e.exit_code() as u8)
        }
    }
}
