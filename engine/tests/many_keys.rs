//! Many keys: control-plane changes do not grow with the number of keys the engine holds.
//!
//! No test here measures time. The scaling probe prints costs for a person to read and is
//! `#[ignore]`d (run it with `--ignored --nocapture`).

use std::time::Instant;

use keyplane::{CreateKeyRequest, Engine, EncryptRequest, LockPolicy};

fn engine(max_keys: usize) -> Engine {
    Engine::builder()
        .lock_policy(LockPolicy::Warn)
        .max_keys(max_keys)
        .build()
        .unwrap()
}

/// Prints CreateKey's cost per key as the engine fills up (a probe, not a test: it asserts
/// nothing about time).
#[test]
#[ignore = "a probe that prints costs; run with --ignored --nocapture"]
fn probe_create_key_cost_as_the_engine_fills() {
    let sizes: Vec<usize> = std::env::var("KEYPLANE_PROBE_SIZES")
        .unwrap_or_else(|_| "1000,4000,16000".into())
        .split(',')
        .map(|s| s.parse().unwrap())
        .collect();
    let engine = engine(*sizes.iter().max().unwrap() + 1000);
    let mut held = 0usize;
    let mut first = String::new();
    for size in sizes {
        while held < size {
            let m = engine.create_key(CreateKeyRequest::default()).unwrap();
            if first.is_empty() {
                first = m.key_id.clone();
            }
            held += 1;
        }
        let started = Instant::now();
        let probe = 200;
        for _ in 0..probe {
            engine.create_key(CreateKeyRequest::default()).unwrap();
        }
        held += probe;
        let create = started.elapsed().as_secs_f64() * 1e6 / probe as f64;
        let started = Instant::now();
        for _ in 0..2000 {
            engine.encrypt(&EncryptRequest::new(&first, &[7u8; 64])).unwrap();
        }
        let encrypt = started.elapsed().as_secs_f64() * 1e9 / 2000.0;
        eprintln!("{size:>8} keys: CreateKey {create:8.1} us/key, Encrypt {encrypt:8.0} ns/op");
    }
}
