//! The data plane's key lookup: the snapshot's persistent map (`imbl`'s `HashMap`, a hash array
//! mapped trie, as `src/dataplane/keyring.rs` uses it) against `std`'s `HashMap`, both with the
//! engine's key-id hasher, at 1 k, 100 k and 1 M keys; and the cost of one change to each (insert
//! into a clone: what publishing a control-plane change costs).
//!
//! - `lookup/<map>/<n>`: `get` of keys present, cycling through 4096 random ids (so that at 1 M
//!   keys most lookups miss the cache, as a real mix of keys would);
//! - `lookup-hot/<map>/<n>`: `get` of one key over and over (a batch under one key);
//! - `publish/<map>/<n>`: clone the map and insert one key (std: O(n); imbl: O(log n)).
//!
//! Run: `cargo bench -p keyplane --bench keyring` (release; a few minutes, most of it building the
//! 1 M maps).

use std::collections::HashMap;
use std::hash::BuildHasherDefault;
use std::hint::black_box;
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use keyplane::dataplane::KeyIdHasher;
use uuid::Uuid;

type Hasher = BuildHasherDefault<KeyIdHasher>;
type StdMap = HashMap<Uuid, Arc<u64>, Hasher>;
type ImblMap = imbl::GenericHashMap<Uuid, Arc<u64>, Hasher, imbl::shared_ptr::DefaultSharedPtr>;

const SIZES: [usize; 3] = [1_000, 100_000, 1_000_000];

fn bench(c: &mut Criterion) {
    for n in SIZES {
        let ids: Vec<Uuid> = (0..n).map(|_| Uuid::new_v4()).collect();
        let std_map: StdMap = ids.iter().map(|id| (*id, Arc::new(1))).collect();
        let imbl_map: ImblMap = ids.iter().map(|id| (*id, Arc::new(1))).collect();
        let probes: Vec<Uuid> = ids.iter().step_by((n / 4096).max(1)).copied().collect();

        let mut group = c.benchmark_group("lookup");
        group.bench_with_input(BenchmarkId::new("std", n), &probes, |b, probes| {
            let mut i = 0;
            b.iter(|| {
                i = (i + 1) % probes.len();
                black_box(std_map.get(&probes[i]))
            })
        });
        group.bench_with_input(BenchmarkId::new("imbl", n), &probes, |b, probes| {
            let mut i = 0;
            b.iter(|| {
                i = (i + 1) % probes.len();
                black_box(imbl_map.get(&probes[i]))
            })
        });
        group.finish();

        let mut group = c.benchmark_group("lookup-hot");
        let hot = ids[n / 2];
        group.bench_function(BenchmarkId::new("std", n), |b| {
            b.iter(|| black_box(std_map.get(black_box(&hot))))
        });
        group.bench_function(BenchmarkId::new("imbl", n), |b| {
            b.iter(|| black_box(imbl_map.get(black_box(&hot))))
        });
        group.finish();

        let mut group = c.benchmark_group("publish");
        group.sample_size(10);
        group.bench_function(BenchmarkId::new("std", n), |b| {
            b.iter(|| {
                let mut next = std_map.clone();
                next.insert(Uuid::new_v4(), Arc::new(2));
                black_box(next)
            })
        });
        group.bench_function(BenchmarkId::new("imbl", n), |b| {
            b.iter(|| {
                let mut next = imbl_map.clone();
                next.insert(Uuid::new_v4(), Arc::new(2));
                black_box(next)
            })
        });
        group.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
