//! Symmetric data-plane throughput: the engine's batch calls against a plain aws-lc-rs loop.
//!
//! For each message size (64 B, 1 KiB, 16 KiB, 256 KiB, 1 MiB), one group compares, over the same batch of
//! messages:
//!
//! - `raw-aws-lc-rs/1-thread`: `LessSafeKey::seal_in_place_separate_tag` in a loop on the calling
//!   thread, AES-256-GCM, counter nonces, the canonical encryption context as AAD, one output
//!   `Vec` (ciphertext ‖ tag) per message: the floor any AES-GCM service pays;
//! - `engine/1-thread` and `engine/2-threads`: `Engine::encrypt_batch` with a two-pair
//!   encryption context on an engine built with `.worker_threads(1)` / `.worker_threads(2)`
//!   (key resolution, validation, derived keys, the 66-byte header, and the blob per message).
//!
//! Then GenerateDataKey batches (AES_256, 1000 per batch) and Decrypt batches of 64-byte
//! messages (with a raw `open_in_place` loop beside them). Every request vector, message and
//! ciphertext is built before timing, and every batch is checked once, untimed, to succeed, so
//! no benchmark can measure a batch of errors.
//!
//! Run: `cargo bench -p keyplane --bench symmetric` (about two minutes on two cores).

use std::cell::Cell;
use std::hint::black_box;
use std::time::Duration;

use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM};
use criterion::{criterion_group, criterion_main, BenchmarkGroup, Criterion, Throughput};
use keyplane::{
    CreateKeyRequest, DataKeySpec, DecryptRequest, EncryptRequest, EncryptionContext, Engine,
    GenerateDataKeyRequest,
};
use keyplane_testkit::messages;

/// Messages per batch for 64 B and 1 KiB messages.
const SMALL_BATCH: usize = 1000;
/// Messages per batch for 16 KiB messages.
const LARGE_BATCH: usize = 64;
/// Data keys per GenerateDataKey batch.
const DATA_KEY_BATCH: usize = 1000;
/// The engine's limit is raised to this for the large groups (the service's default is 4096).
const MAX_PLAINTEXT: usize = 1 << 20;
const ALIAS: &str = "alias/bench";

/// Message sizes with their batch sizes.
const SIZES: [(&str, usize, usize); 5] = [
    ("64B", 64, SMALL_BATCH),
    ("1KiB", 1024, SMALL_BATCH),
    ("16KiB", 16 * 1024, LARGE_BATCH),
    ("256KiB", 256 * 1024, 8),
    ("1MiB", 1 << 20, 2),
];

/// An engine with `threads` workers and one symmetric key behind [`ALIAS`].
fn engine(threads: usize) -> Engine {
    let engine = Engine::builder()
        .worker_threads(threads)
        .max_plaintext_bytes(MAX_PLAINTEXT)
        .build()
        .expect("engine starts (is RLIMIT_MEMLOCK large enough?)");
    let key = engine
        .create_key(CreateKeyRequest::default())
        .expect("create key");
    engine.create_alias(ALIAS, &key.key_id).expect("alias");
    assert_eq!(engine.worker_threads(), threads);
    engine
}

fn context() -> EncryptionContext {
    [("tenant", "acme-corp"), ("purpose", "benchmark")]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

/// The plain aws-lc-rs loop: one key, counter nonces, one `Vec` (ciphertext ‖ tag) per message.
struct RawSealer {
    key: LessSafeKey,
    aad: Vec<u8>,
    counter: Cell<u64>,
}

impl RawSealer {
    fn new(aad: Vec<u8>) -> Self {
        let mut raw = [0u8; 32];
        aws_lc_rs::rand::fill(&mut raw).expect("random key");
        RawSealer {
            key: LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &raw).expect("key")),
            aad,
            counter: Cell::new(0),
        }
    }

    fn next_nonce(&self) -> Nonce {
        let n = self.counter.get();
        self.counter.set(n + 1);
        let mut nonce = [0u8; 12];
        nonce[4..].copy_from_slice(&n.to_be_bytes());
        Nonce::assume_unique_for_key(nonce)
    }

    fn seal_batch(&self, messages: &[Vec<u8>]) -> Vec<Vec<u8>> {
        messages
            .iter()
            .map(|m| {
                let mut out = Vec::with_capacity(m.len() + AES_256_GCM.tag_len());
                out.extend_from_slice(m);
                let tag = self
                    .key
                    .seal_in_place_separate_tag(self.next_nonce(), Aad::from(&self.aad), &mut out)
                    .expect("seal");
                out.extend_from_slice(tag.as_ref());
                out
            })
            .collect()
    }
}

fn configure(group: &mut BenchmarkGroup<'_, criterion::measurement::WallTime>) {
    group
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
}

/// Checks, untimed, that every item of a batch succeeded.
fn all_ok<T>(results: &[keyplane::Result<T>], what: &str) {
    if let Some((i, Err(e))) = results.iter().enumerate().find(|(_, r)| r.is_err()) {
        panic!("{what}: item {i} failed: {e}");
    }
}

fn encrypt_groups(c: &mut Criterion) {
    let engines = [(1, engine(1)), (2, engine(2))];
    let ctx = context();
    let aad = keyplane::context::encode(Some(&ctx)).expect("context encodes");
    for (label, len, batch) in SIZES {
        let msgs = messages(batch, len);
        let requests: Vec<EncryptRequest<'_>> = msgs
            .iter()
            .map(|m| EncryptRequest::new(ALIAS, m).with_context(&ctx))
            .collect();
        let raw = RawSealer::new(aad.clone());
        assert_eq!(raw.seal_batch(&msgs).len(), batch);
        for (_, engine) in &engines {
            let blobs = engine.encrypt_batch(&requests);
            all_ok(&blobs, "encrypt_batch");
            // Spot-check the first blob round-trips, so the engine is doing the real work.
            let first = blobs[0].as_ref().expect("checked above");
            let opened = engine
                .decrypt(&DecryptRequest::new(first).with_context(&ctx))
                .expect("round trip");
            assert_eq!(opened.plaintext.expose(), msgs[0].as_slice());
        }

        let mut group = c.benchmark_group(format!("encrypt/{label}"));
        configure(&mut group);
        group.throughput(Throughput::Bytes((len * batch) as u64));
        group.bench_function("raw-aws-lc-rs/1-thread", |b| {
            b.iter(|| raw.seal_batch(black_box(&msgs)))
        });
        for (threads, engine) in &engines {
            let id = format!(
                "engine/{threads}-thread{}",
                if *threads > 1 { "s" } else { "" }
            );
            group.bench_function(id, |b| {
                b.iter(|| engine.encrypt_batch(black_box(&requests)))
            });
        }
        group.finish();
    }
}

fn generate_data_key_group(c: &mut Criterion) {
    let engines = [(1, engine(1)), (2, engine(2))];
    let ctx = context();
    let requests: Vec<GenerateDataKeyRequest<'_>> = (0..DATA_KEY_BATCH)
        .map(|_| GenerateDataKeyRequest::new(ALIAS, DataKeySpec::Aes256).with_context(&ctx))
        .collect();
    for (_, engine) in &engines {
        let keys = engine.generate_data_key_batch(&requests);
        all_ok(&keys, "generate_data_key_batch");
        let first = keys[0].as_ref().expect("checked above");
        assert_eq!(first.plaintext.len(), 32);
        let opened = engine
            .decrypt(&DecryptRequest::new(&first.ciphertext_blob).with_context(&ctx))
            .expect("the data key decrypts");
        assert_eq!(opened.plaintext.expose(), first.plaintext.expose());
    }

    let mut group = c.benchmark_group("generate_data_key/AES_256");
    configure(&mut group);
    group.throughput(Throughput::Elements(DATA_KEY_BATCH as u64));
    for (threads, engine) in &engines {
        let id = format!(
            "engine/{threads}-thread{}",
            if *threads > 1 { "s" } else { "" }
        );
        group.bench_function(id, |b| {
            b.iter(|| engine.generate_data_key_batch(black_box(&requests)))
        });
    }
    group.finish();
}

fn decrypt_group(c: &mut Criterion) {
    let engines = [(1, engine(1)), (2, engine(2))];
    let ctx = context();
    let len = 64;
    let msgs = messages(SMALL_BATCH, len);

    // Raw: open_in_place over ciphertexts sealed by the raw sealer (copied per message, since
    // opening is in place; the engine likewise allocates one plaintext buffer per message).
    let aad = keyplane::context::encode(Some(&ctx)).expect("context encodes");
    let raw = RawSealer::new(aad);
    let first_nonce = raw.counter.get();
    let sealed = raw.seal_batch(&msgs);
    let raw_open = |sealed: &[Vec<u8>]| -> Vec<Vec<u8>> {
        sealed
            .iter()
            .enumerate()
            .map(|(i, ct)| {
                let mut nonce = [0u8; 12];
                nonce[4..].copy_from_slice(&(first_nonce + i as u64).to_be_bytes());
                let mut buf = ct.clone();
                let n = raw
                    .key
                    .open_in_place(
                        Nonce::assume_unique_for_key(nonce),
                        Aad::from(&raw.aad),
                        &mut buf,
                    )
                    .expect("open")
                    .len();
                buf.truncate(n);
                buf
            })
            .collect()
    };
    assert_eq!(raw_open(&sealed)[7], msgs[7]);

    let blobs: Vec<Vec<Vec<u8>>> = engines
        .iter()
        .map(|(_, engine)| {
            let requests: Vec<EncryptRequest<'_>> = msgs
                .iter()
                .map(|m| EncryptRequest::new(ALIAS, m).with_context(&ctx))
                .collect();
            engine
                .encrypt_batch(&requests)
                .into_iter()
                .map(|r| r.expect("encrypt").into_vec())
                .collect()
        })
        .collect();
    let requests: Vec<Vec<DecryptRequest<'_>>> = blobs
        .iter()
        .map(|blobs| {
            blobs
                .iter()
                .map(|b| DecryptRequest::new(b).with_context(&ctx))
                .collect()
        })
        .collect();
    for ((_, engine), requests) in engines.iter().zip(&requests) {
        let opened = engine.decrypt_batch(requests);
        all_ok(&opened, "decrypt_batch");
        for (plaintext, msg) in opened.iter().zip(&msgs) {
            assert_eq!(plaintext.as_ref().expect("ok").expose(), msg.as_slice());
        }
    }

    let mut group = c.benchmark_group("decrypt/64B");
    configure(&mut group);
    group.throughput(Throughput::Bytes((len * SMALL_BATCH) as u64));
    group.bench_function("raw-aws-lc-rs/1-thread", |b| {
        b.iter(|| raw_open(black_box(&sealed)))
    });
    for ((threads, engine), requests) in engines.iter().zip(&requests) {
        let id = format!(
            "engine/{threads}-thread{}",
            if *threads > 1 { "s" } else { "" }
        );
        group.bench_function(id, |b| b.iter(|| engine.decrypt_batch(black_box(requests))));
    }
    group.finish();
}

criterion_group!(
    benches,
    encrypt_groups,
    generate_data_key_group,
    decrypt_group
);
criterion_main!(benches);
