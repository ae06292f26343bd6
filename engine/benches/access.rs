//! What access control and audit cost a batch: batch Encrypt with the default key policy against a
//! policy whose Allow has a condition on the encryption context, each with and without an audit
//! log (synced group commit), in one run.
//!
//! - `default-policy`: the default key policy (the account root has `kms:*`); the decision is the
//!   same for every item, so the engine caches it.
//! - `conditional-policy`: Encrypt is allowed only with `StringEquals kms:EncryptionContext:tenant`;
//!   the decision depends on each request, so it is evaluated for every item (no caching).
//! - `+audit`: the engine records every request in a hash-chained audit log with
//!   `Durability::Synced`: a batch is one record, and the call returns after the record is
//!   `fdatasync`ed (group commit).
//! - `default-policy+audit-queued`: the same log with `Durability::Queued` (the call returns once
//!   its record is queued), to separate the cost of writing records from the cost of waiting for
//!   `fdatasync`.
//!
//! Batches: 1000 items of 64 bytes, and 64 items of 16 KiB (`max_plaintext_bytes(16384)`), each
//! with a two-pair encryption context, on two worker threads. Criterion measures each
//! configuration; then an interleaved pass (the configurations in turn, several rounds, the
//! median and the fastest of each) gives the overheads as ratios against `default-policy`,
//! printed as a table. With a synced log, a lone caller's batch waits for one `fdatasync`, so
//! that ratio follows the disk's sync latency.
//!
//! Run: `cargo bench -p keyplane --bench access` (under a minute of measurement on two cores).

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use keyplane::audit::{generate_signing_key, verify, AuditConfig, Durability, Verdict};
use keyplane::policy::KeyPolicy;
use keyplane::{CreateKeyRequest, EncryptRequest, EncryptionContext, Engine};
use keyplane_testkit::messages;

const ACCOUNT: &str = "111122223333";
const MAX_PLAINTEXT: usize = 16 * 1024;
const SIZES: [(&str, usize, usize); 2] = [("64B", 64, 1000), ("16KiB", 16 * 1024, 64)];
/// Rounds of the interleaved pass, and batches per configuration per round.
const ROUNDS: usize = 30;
const BATCHES_PER_ROUND: usize = 4;

fn conditional_policy() -> String {
    serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "Administer",
                "Effect": "Allow",
                "Principal": { "AWS": format!("arn:aws:iam::{ACCOUNT}:root") },
                "Action": ["kms:Create*", "kms:Describe*", "kms:Put*", "kms:Get*", "kms:List*"],
                "Resource": "*"
            },
            {
                "Sid": "Use for one tenant",
                "Effect": "Allow",
                "Principal": { "AWS": format!("arn:aws:iam::{ACCOUNT}:root") },
                "Action": ["kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey*"],
                "Resource": "*",
                "Condition": { "StringEquals": { "kms:EncryptionContext:tenant": "acme-corp" } }
            }
        ]
    })
    .to_string()
}

fn context(tenant: &str) -> EncryptionContext {
    [("tenant", tenant), ("purpose", "benchmark")]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

/// One engine configuration with its key.
struct Setup {
    name: &'static str,
    engine: Engine,
    key: String,
    audit_path: Option<std::path::PathBuf>,
    public_key: Option<Vec<u8>>,
}

fn setup(
    name: &'static str,
    conditional: bool,
    audit: Option<(&std::path::Path, Durability)>,
) -> Setup {
    let mut builder = Engine::builder()
        .worker_threads(2)
        .max_plaintext_bytes(MAX_PLAINTEXT);
    let mut public_key = None;
    if let Some((dir, durability)) = audit {
        let signing_key =
            generate_signing_key(keyplane::LockPolicy::default()).expect("audit signing key");
        let mut config = AuditConfig::new(dir.join(format!("{name}.log")));
        config.durability = durability;
        public_key = Some(
            keyplane::audit::DigestSigner::from_pkcs8(&signing_key)
                .expect("signing key")
                .public_key_der()
                .to_vec(),
        );
        builder = builder.audit(config, signing_key);
    }
    let engine = builder
        .build()
        .expect("engine starts (is RLIMIT_MEMLOCK large enough?)");
    let key = engine
        .create_key(CreateKeyRequest {
            policy: conditional.then(conditional_policy),
            ..Default::default()
        })
        .expect("create key")
        .key_id;
    Setup {
        name,
        engine,
        key,
        audit_path: audit.map(|(dir, _)| dir.join(format!("{name}.log"))),
        public_key,
    }
}

fn encrypt_batch(setup: &Setup, requests: &[EncryptRequest<'_>]) {
    let results = setup.engine.encrypt_batch(black_box(requests));
    black_box(results);
}

fn median(mut samples: Vec<f64>) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

fn access(c: &mut Criterion) {
    // The conditional policy really is evaluated per request, and really decides.
    let parsed = KeyPolicy::parse(&conditional_policy()).expect("the policy parses");
    assert!(!parsed.is_unconditional_for("kms:Encrypt"));
    let default = KeyPolicy::parse(&keyplane::policy::default_policy(ACCOUNT)).unwrap();
    assert!(default.is_unconditional_for("kms:Encrypt"));

    let dir = tempfile::tempdir().expect("a directory for the audit logs");
    let synced = Some((dir.path(), Durability::Synced));
    let setups = [
        setup("default-policy", false, None),
        setup("conditional-policy", true, None),
        setup("default-policy+audit", false, synced),
        setup("conditional-policy+audit", true, synced),
        setup(
            "default-policy+audit-queued",
            false,
            Some((dir.path(), Durability::Queued)),
        ),
    ];
    let acme = context("acme-corp");
    let other = context("globex");
    let denied = setups[1]
        .engine
        .encrypt(&EncryptRequest::new(&setups[1].key, b"x").with_context(&other))
        .expect_err("another tenant is refused");
    assert_eq!(denied.code(), "AccessDeniedException");

    let mut table = Vec::new();
    for (label, len, batch) in SIZES {
        let msgs = messages(batch, len);
        let requests: Vec<Vec<EncryptRequest<'_>>> = setups
            .iter()
            .map(|s| {
                msgs.iter()
                    .map(|m| EncryptRequest::new(&s.key, m).with_context(&acme))
                    .collect()
            })
            .collect();
        for (s, requests) in setups.iter().zip(&requests) {
            let results = s.engine.encrypt_batch(requests);
            if let Some((i, Err(e))) = results.iter().enumerate().find(|(_, r)| r.is_err()) {
                panic!("{}: item {i} failed: {e}", s.name);
            }
        }

        let mut group = c.benchmark_group(format!("access/encrypt-batch/{label}"));
        group
            .sample_size(10)
            .warm_up_time(Duration::from_millis(500))
            .measurement_time(Duration::from_secs(2))
            .throughput(Throughput::Bytes((len * batch) as u64));
        for (s, requests) in setups.iter().zip(&requests) {
            group.bench_function(s.name, |b| b.iter(|| encrypt_batch(s, requests)));
        }
        group.finish();

        // Interleaved: each configuration in turn, so that drift hits all of them alike.
        let mut samples = vec![Vec::new(); setups.len()];
        for _ in 0..ROUNDS {
            for (i, (s, requests)) in setups.iter().zip(&requests).enumerate() {
                let start = Instant::now();
                for _ in 0..BATCHES_PER_ROUND {
                    encrypt_batch(s, requests);
                }
                samples[i].push(start.elapsed().as_secs_f64() / BATCHES_PER_ROUND as f64);
            }
        }
        let minima: Vec<f64> = samples
            .iter()
            .map(|s| s.iter().copied().fold(f64::INFINITY, f64::min))
            .collect();
        let medians: Vec<f64> = samples.into_iter().map(median).collect();

        table.push((label, batch, medians, minima));
    }

    println!();
    println!("Overheads (interleaved pass, median time per batch; ratio to default-policy):");
    for (label, batch, medians, minima) in &table {
        println!("{label} batches of {batch} items:  median (ratio, per item)  |  fastest (ratio)");
        let (base, base_min) = (medians[0], minima[0]);
        for ((s, m), min) in setups.iter().zip(medians).zip(minima) {
            println!(
                "  {:<30}{:>9.1} us  x{:<7.3}{:>+9.1} ns/item  |{:>9.1} us  x{:.3}",
                s.name,
                m * 1e6,
                m / base,
                (m - base) / *batch as f64 * 1e9,
                min * 1e6,
                min / base_min
            );
        }
    }

    // Each audited batch is one record, and the logs verify.
    for s in &setups {
        if let (Some(path), Some(public)) = (&s.audit_path, &s.public_key) {
            s.engine
                .audit_log()
                .expect("audited")
                .write_digest()
                .expect("digest");
            let report = verify(path, public).expect("the log reads");
            assert_eq!(report.verdict(), Verdict::Intact, "{report}");
            println!("{}: {report}", s.name);
        }
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().without_plots();
    targets = access
}
criterion_main!(benches);
