//! The durable store's cost: CreateKey and RotateKeyOnDemand rates on the SQLite store (every
//! change fsynced before it returns), and data-plane encrypt throughput on an engine over the
//! durable store beside one over the in-memory store, in the same run (the data plane never
//! touches the store, so the two should match).
//!
//! Run: `cargo bench -p keyplane-sqlite --bench store`. The store goes in a temporary directory
//! under `$KEYPLANE_BENCH_DIR` (default: the system's temporary directory); put it on the disk
//! you want measured.

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use keyplane::store::KeyStore;
use keyplane::{CreateKeyRequest, EncryptRequest, Engine, LockPolicy};
use keyplane_sqlite::root_key::KeyFileProvider;
use keyplane_sqlite::{SqliteKeyStore, StoreOptions};

const BATCH: usize = 1000;

fn bench_dir() -> tempfile::TempDir {
    match std::env::var_os("KEYPLANE_BENCH_DIR") {
        Some(dir) => tempfile::tempdir_in(dir).expect("KEYPLANE_BENCH_DIR must be a directory"),
        None => tempfile::tempdir().unwrap(),
    }
}

fn durable_engine(dir: &std::path::Path, threads: usize) -> Engine {
    let provider = Arc::new(KeyFileProvider::new(
        dir.join("root.key"),
        LockPolicy::Require,
    ));
    let store = SqliteKeyStore::init(dir, provider, StoreOptions::default()).unwrap();
    Engine::builder()
        .worker_threads(threads)
        .max_keys(1_000_000)
        .store(Arc::new(store))
        .build()
        .unwrap()
}

fn control_plane(c: &mut Criterion) {
    let dir = bench_dir();
    let engine = durable_engine(dir.path(), 1);
    let mut group = c.benchmark_group("durable store control plane");
    group.throughput(Throughput::Elements(1));
    group.sample_size(20);
    group.measurement_time(Duration::from_secs(5));
    group.bench_function("CreateKey", |b| {
        b.iter(|| engine.create_key(CreateKeyRequest::default()).unwrap())
    });
    // Each key rotates on demand at most 25 times: keys are made (untimed) as the run needs them.
    let mut pool: Vec<(String, u32)> = Vec::new();
    group.bench_function("RotateKeyOnDemand", |b| {
        b.iter_custom(|iters| {
            let mut spent = Duration::ZERO;
            for _ in 0..iters {
                if pool.last().is_none_or(|(_, left)| *left == 0) {
                    let key = engine
                        .create_key(CreateKeyRequest::default())
                        .unwrap()
                        .key_id;
                    pool.push((key, 25));
                }
                let (key, left) = pool.last_mut().unwrap();
                let t = Instant::now();
                engine.rotate_key_on_demand(key).unwrap();
                spent += t.elapsed();
                *left -= 1;
            }
            spent
        })
    });
    group.finish();
}

/// What bounds how fast another process's change arrives: `generation()`, which every
/// control-plane call and scheduler tick asks, and a full reload, which follows a change.
fn change_detection(c: &mut Criterion) {
    let dir = bench_dir();
    let engine = durable_engine(dir.path(), 1);
    for _ in 0..1000 {
        engine.create_key(CreateKeyRequest::default()).unwrap();
    }
    let provider = Arc::new(KeyFileProvider::new(
        dir.path().join("root.key"),
        LockPolicy::Require,
    ));
    let store = SqliteKeyStore::open(dir.path(), provider, StoreOptions::default()).unwrap();
    let mut group = c.benchmark_group("durable store change detection");
    group.sample_size(20);
    group.bench_function("generation()", |b| b.iter(|| store.generation().unwrap()));
    group.bench_function("load() of 1000 keys", |b| b.iter(|| store.load().unwrap()));
    group.finish();
}

fn data_plane(c: &mut Criterion) {
    let dir = bench_dir();
    let threads = 1;
    let durable = durable_engine(dir.path(), threads);
    let in_memory = Engine::builder().worker_threads(threads).build().unwrap();
    let mut group = c.benchmark_group("encrypt_batch 64 B, durable vs in-memory store");
    group.throughput(Throughput::Elements(BATCH as u64));
    group.measurement_time(Duration::from_secs(3));
    for (label, engine) in [("in-memory", &in_memory), ("durable", &durable)] {
        let key = engine
            .create_key(CreateKeyRequest::default())
            .unwrap()
            .key_id;
        let messages: Vec<Vec<u8>> = (0..BATCH).map(|i| vec![i as u8; 64]).collect();
        let requests: Vec<EncryptRequest<'_>> = messages
            .iter()
            .map(|m| EncryptRequest::new(&key, m))
            .collect();
        group.bench_with_input(
            BenchmarkId::new(label, threads),
            &requests,
            |b, requests| {
                b.iter(|| {
                    let out = engine.encrypt_batch(requests);
                    assert!(out.iter().all(|r| r.is_ok()));
                    out
                })
            },
        );
    }
    group.finish();
}

criterion_group!(benches, control_plane, change_detection, data_plane);
criterion_main!(benches);
