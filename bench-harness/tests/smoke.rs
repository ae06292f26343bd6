//! A quick end-to-end run of the harness library (a few seconds), so it cannot rot: the JSON,
//! CSV and chart outputs of a tiny sweep, checked point by point.

use std::path::Path;

use clap::Parser;
use keyplane_bench::BenchArgs;
use serde_json::Value;

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    args: BenchArgs,
}

fn parse(args: &[&str]) -> BenchArgs {
    Cli::try_parse_from(std::iter::once("keyplane-bench").chain(args.iter().copied()))
        .expect("the arguments parse")
        .args
}

fn number(v: &Value, field: &str) -> f64 {
    v[field]
        .as_f64()
        .unwrap_or_else(|| panic!("{field} is not a number in {v}"))
}

fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).expect("the JSON report was written");
    serde_json::from_str(&text).expect("the JSON report parses")
}

#[test]
fn encrypt_sweep_writes_json_csv_and_charts() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("report.json");
    let csv = dir.path().join("report.csv");
    let charts = dir.path().join("charts");
    let args = parse(&[
        "--workload",
        "encrypt",
        "--threads",
        "1,2",
        "--batch",
        "64",
        "--size",
        "64",
        "--duration",
        "40ms",
        "--warmup",
        "10ms",
        "--repeats",
        "2",
        "--recommend",
        "--latency-bound-ms",
        "1000",
        "--compare",
        "python",
        "--json",
        json.to_str().unwrap(),
        "--csv",
        csv.to_str().unwrap(),
        "--plot",
        charts.to_str().unwrap(),
        "--allow-unlocked-memory",
        "--quiet",
    ]);
    let report = keyplane_bench::run(&args).expect("the sweep runs");
    assert_eq!(report.points.len(), 2);
    let table = report.to_table();
    for column in [
        "ops/s",
        "p99 ms",
        "raw 1-thr",
        "vs raw",
        "cpu-eff",
        "vs 1 thr",
        "bare split",
    ] {
        assert!(table.contains(column), "{column} in\n{table}");
    }
    assert!(table.contains("Recommendations:"), "{table}");

    let v = read_json(&json);
    let points = v["points"].as_array().expect("points");
    assert_eq!(points.len(), 2, "one point per thread count");
    for threads in [1, 2] {
        let p = points
            .iter()
            .find(|p| p["threads"] == threads)
            .unwrap_or_else(|| panic!("no point for {threads} threads"));
        assert_eq!(p["workload"], "encrypt");
        assert_eq!(p["batch"], 64);
        assert_eq!(p["size"], 64);
        let ops = &p["ops_per_sec"];
        assert!(number(ops, "median") > 0.0);
        assert!(number(ops, "min") <= number(ops, "median"));
        assert!(number(ops, "median") <= number(ops, "max"));
        assert_eq!(
            ops["samples"].as_array().unwrap().len(),
            2,
            "one rate per repeat"
        );
        assert!(number(p, "raw_ops_per_sec") > 0.0);
        let vs_raw = number(p, "vs_raw");
        assert!(vs_raw > 0.0);
        assert!(number(p, "vs_raw_cpu") > 0.0);
        assert!(number(&p["ops_per_cpu_sec"], "median") > 0.0);
        let per_thread = number(p, "vs_raw_per_thread");
        assert!((per_thread - vs_raw / f64::from(threads)).abs() < 1e-9);
        let vs_1 = number(p, "vs_1_thread");
        if threads == 1 {
            assert_eq!(vs_1, 1.0);
            assert!(
                p["bare_split_vs_1_thread"].is_null(),
                "no split on one thread"
            );
        } else {
            // The raw loop's batch shared by the same two threads, beside the engine's.
            assert!(number(p, "bare_split_ops_per_sec") > 0.0);
            let split = number(p, "bare_split_vs_1_thread");
            let raw = number(p, "raw_ops_per_sec");
            assert!((split - number(p, "bare_split_ops_per_sec") / raw).abs() < 1e-9);
        }
        assert!(number(p, "bytes_per_sec") > 0.0);
        let lat = &p["batch_latency"];
        assert!(number(lat, "p50_ms") > 0.0);
        assert!(number(lat, "p99_ms") >= number(lat, "p50_ms"));
        assert!(lat["calls"].as_u64().unwrap() > 0);
    }
    let baselines = v["baselines"].as_array().expect("baselines");
    assert_eq!(
        baselines.len(),
        1,
        "one raw baseline for the one size and batch"
    );
    assert!(number(&baselines[0]["ops_per_sec"], "median") > 0.0);

    // --compare python: either a measured ratio, or a clear reason it was skipped.
    let compare = v["compare"].as_array().expect("compare");
    assert_eq!(compare.len(), 2, "one Python comparison per encrypt point");
    for c in compare {
        match c["status"].as_str().unwrap() {
            "ok" => assert!(number(c, "ratio") > 0.0),
            "skipped" | "failed" => assert!(c["message"].as_str().is_some_and(|m| !m.is_empty())),
            other => panic!("unexpected status {other}"),
        }
    }

    // --recommend with a generous bound finds a point.
    let recs = v["recommendations"].as_array().expect("recommendations");
    assert_eq!(recs.len(), 1);
    assert_eq!(recs[0]["found"], true);
    assert!(recs[0]["threads"].as_u64().is_some());
    assert_eq!(recs[0]["batch"], 64);
    // ... and says how the engine's scheduler runs that batch on that many threads.
    let threads = recs[0]["threads"].as_u64().unwrap() as usize;
    let scheduled = keyplane::batch_schedule(keyplane::ItemWork::Aead, 64, 64, threads).threads;
    assert_eq!(recs[0]["engine_threads"], scheduled);
    let message = recs[0]["message"].as_str().unwrap();
    assert!(message.contains("the engine "), "{message}");

    // CSV: a header and one row per point.
    let csv = std::fs::read_to_string(&csv).expect("the CSV was written");
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 3, "{csv}");
    assert!(lines[0].starts_with("workload,key_spec,algorithm,size,threads,batch"));
    assert!(lines[1].starts_with("encrypt,SYMMETRIC_DEFAULT,AES-256-GCM,64,"));

    // Charts: throughput vs threads and vs batch size, SVG and PNG, all non-empty.
    for stem in ["encrypt-vs-threads", "encrypt-vs-batch"] {
        let svg = std::fs::read_to_string(charts.join(format!("{stem}.svg"))).unwrap();
        assert!(
            svg.contains("<svg") && svg.contains("throughput"),
            "{stem}.svg"
        );
        let png = std::fs::read(charts.join(format!("{stem}.png"))).unwrap();
        assert!(png.len() > 5_000, "{stem}.png is {} bytes", png.len());
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "{stem}.png is a PNG");
    }
}

#[cfg(feature = "sqlite")]
#[test]
fn every_workload_runs_on_the_sqlite_store() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("report.json");
    let data = dir.path().join("data");
    let args = parse(&[
        "--workload",
        "all",
        "--sign-spec",
        "ed25519",
        "--batch",
        "70",
        "--size",
        "100",
        "--duration",
        "5ms",
        "--warmup",
        "0ms",
        "--repeats",
        "1",
        "--into",
        "--data-dir",
        data.to_str().unwrap(),
        "--json",
        json.to_str().unwrap(),
        "--allow-unlocked-memory",
        "--quiet",
    ]);
    keyplane_bench::run(&args).expect("the sweep runs");
    let v = read_json(&json);
    assert!(v["engine"]["store"]
        .as_str()
        .unwrap()
        .starts_with("sqlite:"));
    let points = v["points"].as_array().unwrap();
    let workloads: Vec<&str> = points
        .iter()
        .map(|p| p["workload"].as_str().unwrap())
        .collect();
    assert_eq!(
        workloads,
        [
            "encrypt",
            "decrypt",
            "re-encrypt",
            "generate-data-key",
            "sign",
            "verify",
            "generate-mac",
            "verify-mac",
            "envelope"
        ]
    );
    for p in points {
        assert!(number(&p["ops_per_sec"], "median") > 0.0, "{p}");
        assert!(number(p, "vs_raw") > 0.0, "{p}");
    }
    // A second run on the same data directory reuses the benchmark keys.
    let again = parse(&[
        "--workload",
        "encrypt,sign",
        "--sign-spec",
        "ed25519",
        "--batch",
        "4",
        "--duration",
        "5ms",
        "--warmup",
        "0ms",
        "--repeats",
        "1",
        "--no-baseline",
        "--data-dir",
        data.to_str().unwrap(),
        "--allow-unlocked-memory",
        "--quiet",
    ]);
    let report = keyplane_bench::run(&again).expect("the second run reuses the store");
    assert_eq!(report.points.len(), 2);
    assert!(report.points.iter().all(|p| p.vs_raw.is_none()));
}

#[test]
fn bad_arguments_are_usage_errors() {
    let args = parse(&["--workload", "sign", "--size", "8KiB", "--quiet"]);
    let err = keyplane_bench::run(&args).unwrap_err();
    assert_eq!(err.exit_code(), 2, "{err}");
    assert!(err.to_string().contains("4096"), "{err}");
    assert!(Cli::try_parse_from(["keyplane-bench", "--workload", "nope"]).is_err());
    assert!(Cli::try_parse_from(["keyplane-bench", "--size", "12 parsecs"]).is_err());
}

/// The CLI flattens `SweepArgs` into `keyplane bench` beside its global options (the same names as
/// cli/src/args.rs): no option may clash.
#[test]
fn sweep_args_flatten_into_a_cli_with_global_options() {
    use clap::{CommandFactory, Subcommand};

    #[derive(Parser)]
    struct HostCli {
        #[arg(long, global = true)]
        data_dir: Option<std::path::PathBuf>,
        #[arg(long, global = true)]
        json: bool,
        #[arg(long, global = true)]
        root_key_file: Option<std::path::PathBuf>,
        #[arg(long, global = true)]
        region: Option<String>,
        #[arg(long, global = true)]
        account_id: Option<String>,
        #[arg(long, global = true)]
        allow_unlocked_memory: bool,
        #[command(subcommand)]
        command: HostCommand,
    }
    #[derive(Subcommand)]
    enum HostCommand {
        Bench(keyplane_bench::SweepArgs),
    }

    HostCli::command().debug_assert();
    let cli = HostCli::try_parse_from([
        "keyplane",
        "--json",
        "bench",
        "--threads",
        "1,2",
        "--size",
        "1KiB",
        "--data-dir",
        "d",
    ])
    .expect("parses");
    assert!(cli.json);
    assert_eq!(cli.data_dir.as_deref(), Some(Path::new("d")));
    let HostCommand::Bench(sweep) = cli.command;
    assert_eq!(sweep.threads, [1, 2]);
    assert_eq!(sweep.size, [1024]);
}

/// `many-keys` at two small sizes: one row per size, the keys counted, every cost measured (not
/// zero), the ratios present, and the JSON report written. (Memory per key is process-wide and
/// shared with the other tests running beside this one, so it is not checked here.)
#[test]
fn many_keys_reports_each_size() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("many.json");
    let args = parse(&[
        "--workload",
        "many-keys",
        "--key-counts",
        "300,40",
        "--allow-unlocked-memory",
        "--quiet",
        "--json",
        json.to_str().unwrap(),
    ]);
    assert!(args.sweep.wants_many_keys());
    assert!(!args.sweep.wants_sweep());
    let report = keyplane_bench::run_many_keys(&args).unwrap();
    let keys: Vec<usize> = report.rows.iter().map(|r| r.keys).collect();
    assert_eq!(keys, [40, 300], "sizes run in ascending order");
    for row in &report.rows {
        assert!(row.create_us_per_key > 0.0 && row.describe_ns > 0.0 && row.encrypt_ns > 0.0);
        assert!(row.encrypt_one_key_ns > 0.0 && row.encrypt_newest_ns > 0.0);
        assert!(row.bare_seal_ns > 0.0 && row.bare_seal_one_key_ns > 0.0);
        assert_eq!(row.lookup_keys, row.keys.min(1024));
        assert_eq!(row.load_ms, None, "no durable store");
    }
    assert_eq!(report.rows[0].create_probe, 40);
    assert!(report.create_ratio.is_some() && report.encrypt_ratio.is_some());
    assert!(report.bare_seal_ratio.is_some());
    let written = read_json(&json);
    assert_eq!(written["rows"].as_array().unwrap().len(), 2);
    assert_eq!(number(&written["rows"][1], "keys"), 300.0);
}

/// `cold-decrypt`: one row per point with both rates measured, the JSON written; and the blobs it
/// calls cold really are: every one under a salt of its own, unlike the warm ones.
#[test]
fn cold_decrypt_measures_blobs_each_under_its_own_salt() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("cold.json");
    let args = parse(&[
        "--workload",
        "cold-decrypt",
        "--size",
        "64",
        "--batch",
        "100,1000",
        "--duration",
        "30ms",
        "--warmup",
        "10ms",
        "--repeats",
        "1",
        "--allow-unlocked-memory",
        "--quiet",
        "--json",
        json.to_str().unwrap(),
    ]);
    assert!(args.sweep.wants_cold_decrypt());
    assert!(!args.sweep.wants_sweep());
    let report = keyplane_bench::run_cold_decrypt(&args).unwrap();
    let batches: Vec<usize> = report.rows.iter().map(|r| r.batch).collect();
    assert_eq!(batches, [100, 1000]);
    for row in &report.rows {
        assert!(row.cold_ops_per_sec > 0.0 && row.warm_ops_per_sec > 0.0);
        assert_eq!((row.size, row.threads), (64, 1));
    }
    assert_eq!(read_json(&json)["rows"].as_array().unwrap().len(), 2);

    let store = std::sync::Arc::new(keyplane::store::MemoryKeyStore::new(
        keyplane::LockPolicy::Warn,
    ));
    let build = |per_key: u64| {
        keyplane::Engine::builder()
            .store(store.clone())
            .lock_policy(keyplane::LockPolicy::Warn)
            .worker_threads(1)
            .messages_per_derived_key(per_key)
            .build()
            .unwrap()
    };
    let (cold_engine, warm_engine) = (build(1), build(1 << 32));
    let key = warm_engine.create_key(Default::default()).unwrap().key_id;
    let salts = |blobs: Vec<Vec<u8>>| -> std::collections::HashSet<[u8; 32]> {
        blobs
            .iter()
            .map(|b| *keyplane::ciphertext::parse(b).unwrap().salt)
            .collect()
    };
    let cold = keyplane_bench::cold_decrypt::blobs(&cold_engine, &key, 64).unwrap();
    assert_eq!(salts(cold).len(), keyplane_bench::cold_decrypt::BLOBS);
    let warm = keyplane_bench::cold_decrypt::blobs(&warm_engine, &key, 64).unwrap();
    assert_eq!(salts(warm).len(), 1);
}

/// `--kept-outputs`: encrypt and decrypt through one buffer kept from batch to batch, measured
/// against the allocation-free raw baseline, and recorded in the report.
#[test]
fn kept_outputs_run_encrypt_and_decrypt() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("report.json");
    let args = parse(&[
        "--workload",
        "encrypt,decrypt",
        "--batch",
        "50",
        "--size",
        "1KiB",
        "--duration",
        "5ms",
        "--warmup",
        "0ms",
        "--repeats",
        "1",
        "--kept-outputs",
        "--json",
        json.to_str().unwrap(),
        "--allow-unlocked-memory",
        "--quiet",
    ]);
    keyplane_bench::run(&args).expect("the sweep runs");
    let v = read_json(&json);
    assert_eq!(
        v["settings"]["kept_outputs"],
        serde_json::json!(true),
        "{v}"
    );
    let points = v["points"].as_array().unwrap();
    assert_eq!(points.len(), 2);
    for p in points {
        assert!(number(&p["ops_per_sec"], "median") > 0.0, "{p}");
        assert!(number(p, "vs_raw") > 0.0, "{p}");
    }
    let refused = Cli::try_parse_from(["keyplane-bench", "--into", "--kept-outputs"]);
    assert!(refused.is_err(), "--into and --kept-outputs are exclusive");
}
