//! Asymmetric and HMAC data-plane throughput: the engine's batch calls against plain aws-lc-rs
//! loops, in one run.
//!
//! For each of ECDSA P-256 (ECDSA_SHA_256), Ed25519 (ED25519_SHA_512) and RSA-2048
//! (RSASSA_PSS_SHA_256), one group times a batch of Sign and one a batch of Verify:
//!
//! - `raw-aws-lc-rs/1-thread`: the aws-lc-rs key pair's `sign` (or a parsed public key's
//!   `verify_sig`) in a loop on the calling thread, one output `Vec` per message: the floor any
//!   signing service pays;
//! - `engine/1-thread` and `engine/2-threads`: `Engine::sign_batch` / `Engine::verify_batch` on
//!   an engine built with `.worker_threads(1)` / `.worker_threads(2)` (key resolution, usage,
//!   algorithm and length checks, per-item results).
//!
//! Then GenerateMac batches (HMAC_256, 1000 messages of 64 bytes) against an
//! `aws_lc_rs::hmac::sign` loop. Every key, request vector and message is built before timing,
//! and every batch is checked once, untimed, to succeed (and its first result to verify), so no
//! benchmark can measure a batch of errors.
//!
//! Run: `cargo bench -p keyplane --bench asymmetric` (about a minute and a half on two cores,
//! after the build). Criterion's estimates land in `target/criterion/<group>/<function>/`.

use std::hint::black_box;
use std::time::Duration;

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{self as sig, KeyPair, ParsedPublicKey, UnparsedPublicKey};
use criterion::{
    criterion_group, criterion_main, BenchmarkGroup, Criterion, SamplingMode, Throughput,
};
use keyplane::key::{MacAlgorithm, MessageType, SigningAlgorithm};
use keyplane::{
    CreateKeyRequest, Engine, GenerateMacRequest, KeySpec, KeyUsage, SignRequest, VerifyRequest,
};
use keyplane_testkit::messages;

/// Messages per Sign or Verify batch for ECDSA and Ed25519, and per GenerateMac batch.
const BATCH: usize = 1000;
/// Messages per RSA Sign batch (a 2048-bit private-key operation is ~50x an ECDSA signature; 64
/// is the smallest batch the engine spreads over its pool).
const RSA_SIGN_BATCH: usize = 64;
/// Bytes per message.
const MESSAGE_LEN: usize = 64;

const ECDSA_ALIAS: &str = "alias/bench-p256";
const ED25519_ALIAS: &str = "alias/bench-ed25519";
const RSA_ALIAS: &str = "alias/bench-rsa2048";
const HMAC_ALIAS: &str = "alias/bench-hmac256";

/// An engine with `threads` workers and one key of each kind behind the aliases above.
fn engine(threads: usize) -> Engine {
    let engine = Engine::builder()
        .worker_threads(threads)
        .build()
        .expect("engine starts (is RLIMIT_MEMLOCK large enough?)");
    for (alias, spec, usage) in [
        (ECDSA_ALIAS, KeySpec::EccNistP256, KeyUsage::SignVerify),
        (
            ED25519_ALIAS,
            KeySpec::EccNistEdwards25519,
            KeyUsage::SignVerify,
        ),
        (RSA_ALIAS, KeySpec::Rsa2048, KeyUsage::SignVerify),
        (HMAC_ALIAS, KeySpec::Hmac256, KeyUsage::GenerateVerifyMac),
    ] {
        let key = engine
            .create_key(CreateKeyRequest {
                key_spec: Some(spec),
                key_usage: Some(usage),
                ..Default::default()
            })
            .expect("create key");
        engine.create_alias(alias, &key.key_id).expect("alias");
    }
    assert_eq!(engine.worker_threads(), threads);
    engine
}

fn configure(group: &mut BenchmarkGroup<'_, criterion::measurement::WallTime>) {
    group
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
}

/// Checks, untimed, that every item of a batch succeeded.
fn all_ok<T>(results: &[keyplane::Result<T>], what: &str) {
    if let Some((i, Err(e))) = results.iter().enumerate().find(|(_, r)| r.is_err()) {
        panic!("{what}: item {i} failed: {e}");
    }
}

fn thread_label(threads: usize) -> String {
    format!(
        "engine/{threads}-thread{}",
        if threads > 1 { "s" } else { "" }
    )
}

/// One signing scheme: the engine's alias and algorithm, and a raw aws-lc-rs key of the same kind.
struct Scheme {
    name: &'static str,
    alias: &'static str,
    algorithm: SigningAlgorithm,
    sign_batch: usize,
    raw: RawSigner,
}

enum RawSigner {
    Ecdsa(sig::EcdsaKeyPair),
    Ed25519(sig::Ed25519KeyPair),
    Rsa(sig::RsaKeyPair),
}

impl RawSigner {
    fn sign_all(&self, rng: &SystemRandom, msgs: &[Vec<u8>]) -> Vec<Vec<u8>> {
        msgs.iter()
            .map(|m| match self {
                RawSigner::Ecdsa(pair) => pair.sign(rng, m).expect("sign").as_ref().to_vec(),
                RawSigner::Ed25519(pair) => pair.sign(m).as_ref().to_vec(),
                RawSigner::Rsa(pair) => {
                    let mut out = vec![0u8; pair.public_modulus_len()];
                    pair.sign(&sig::RSA_PSS_SHA256, rng, m, &mut out)
                        .expect("sign");
                    out
                }
            })
            .collect()
    }

    /// The public key, parsed once (as the engine caches its verifier).
    fn verifier(&self) -> ParsedPublicKey {
        let (alg, der): (&'static dyn sig::VerificationAlgorithm, Vec<u8>) = match self {
            RawSigner::Ecdsa(pair) => (
                &sig::ECDSA_P256_SHA256_ASN1,
                pair.public_key().as_der().expect("der").as_ref().to_vec(),
            ),
            RawSigner::Ed25519(pair) => (
                &sig::ED25519,
                pair.public_key().as_der().expect("der").as_ref().to_vec(),
            ),
            RawSigner::Rsa(pair) => (
                &sig::RSA_PSS_2048_8192_SHA256,
                pair.public_key().as_der().expect("der").as_ref().to_vec(),
            ),
        };
        UnparsedPublicKey::new(alg, der).parse().expect("parse")
    }
}

fn schemes() -> Vec<Scheme> {
    vec![
        Scheme {
            name: "ECDSA_P256",
            alias: ECDSA_ALIAS,
            algorithm: SigningAlgorithm::EcdsaSha256,
            sign_batch: BATCH,
            raw: RawSigner::Ecdsa(
                sig::EcdsaKeyPair::generate(&sig::ECDSA_P256_SHA256_ASN1_SIGNING).expect("key"),
            ),
        },
        Scheme {
            name: "Ed25519",
            alias: ED25519_ALIAS,
            algorithm: SigningAlgorithm::Ed25519Sha512,
            sign_batch: BATCH,
            raw: RawSigner::Ed25519(sig::Ed25519KeyPair::generate().expect("key")),
        },
        Scheme {
            name: "RSA_2048_PSS_SHA256",
            alias: RSA_ALIAS,
            algorithm: SigningAlgorithm::RsassaPssSha256,
            sign_batch: RSA_SIGN_BATCH,
            raw: RawSigner::Rsa(
                sig::RsaKeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).expect("key"),
            ),
        },
    ]
}

fn sign_and_verify_groups(c: &mut Criterion) {
    let engines = [(1, engine(1)), (2, engine(2))];
    let rng = SystemRandom::new();
    for scheme in schemes() {
        // ---- Sign ----
        let msgs = messages(scheme.sign_batch, MESSAGE_LEN);
        let requests: Vec<SignRequest<'_>> = msgs
            .iter()
            .map(|m| SignRequest::new(scheme.alias, m, scheme.algorithm))
            .collect();
        assert_eq!(scheme.raw.sign_all(&rng, &msgs).len(), msgs.len());
        for (_, engine) in &engines {
            let signed = engine.sign_batch(&requests);
            all_ok(&signed, "sign_batch");
            engine
                .verify(&VerifyRequest {
                    key_id: scheme.alias,
                    message: &msgs[0],
                    message_type: MessageType::Raw,
                    signature: signed[0].as_ref().expect("checked"),
                    signing_algorithm: scheme.algorithm,
                })
                .expect("the first signature verifies");
        }
        let mut group = c.benchmark_group(format!("sign/{}", scheme.name));
        configure(&mut group);
        group.throughput(Throughput::Elements(msgs.len() as u64));
        group.bench_function("raw-aws-lc-rs/1-thread", |b| {
            b.iter(|| scheme.raw.sign_all(&rng, black_box(&msgs)))
        });
        for (threads, engine) in &engines {
            group.bench_function(thread_label(*threads), |b| {
                b.iter(|| engine.sign_batch(black_box(&requests)))
            });
        }
        group.finish();

        // ---- Verify ----
        let msgs = messages(BATCH, MESSAGE_LEN);
        let raw_signatures = scheme.raw.sign_all(&rng, &msgs);
        let verifier = scheme.raw.verifier();
        let raw_verify = |sigs: &[Vec<u8>]| -> usize {
            msgs.iter()
                .zip(sigs)
                .filter(|(m, s)| verifier.verify_sig(m, s).is_ok())
                .count()
        };
        assert_eq!(raw_verify(&raw_signatures), BATCH);
        // Each engine verifies signatures made by its own key (signed untimed, in one batch).
        let engine_signatures: Vec<Vec<Vec<u8>>> = engines
            .iter()
            .map(|(_, engine)| {
                let requests: Vec<SignRequest<'_>> = msgs
                    .iter()
                    .map(|m| SignRequest::new(scheme.alias, m, scheme.algorithm))
                    .collect();
                engine
                    .sign_batch(&requests)
                    .into_iter()
                    .map(|r| r.expect("sign"))
                    .collect()
            })
            .collect();
        let verify_requests: Vec<Vec<VerifyRequest<'_>>> = engine_signatures
            .iter()
            .map(|sigs| {
                msgs.iter()
                    .zip(sigs)
                    .map(|(m, s)| VerifyRequest {
                        key_id: scheme.alias,
                        message: m,
                        message_type: MessageType::Raw,
                        signature: s,
                        signing_algorithm: scheme.algorithm,
                    })
                    .collect()
            })
            .collect();
        for ((_, engine), requests) in engines.iter().zip(&verify_requests) {
            all_ok(&engine.verify_batch(requests), "verify_batch");
        }
        let mut group = c.benchmark_group(format!("verify/{}", scheme.name));
        configure(&mut group);
        group.throughput(Throughput::Elements(BATCH as u64));
        group.bench_function("raw-aws-lc-rs/1-thread", |b| {
            b.iter(|| raw_verify(black_box(&raw_signatures)))
        });
        for ((threads, engine), requests) in engines.iter().zip(&verify_requests) {
            group.bench_function(thread_label(*threads), |b| {
                b.iter(|| engine.verify_batch(black_box(requests)))
            });
        }
        group.finish();
    }
}

fn generate_mac_group(c: &mut Criterion) {
    let engines = [(1, engine(1)), (2, engine(2))];
    let msgs = messages(BATCH, MESSAGE_LEN);
    let requests: Vec<GenerateMacRequest<'_>> = msgs
        .iter()
        .map(|m| GenerateMacRequest {
            key_id: HMAC_ALIAS,
            message: m,
            mac_algorithm: MacAlgorithm::HmacSha256,
        })
        .collect();
    for (_, engine) in &engines {
        let macs = engine.generate_mac_batch(&requests);
        all_ok(&macs, "generate_mac_batch");
        assert_eq!(macs[0].as_ref().expect("checked").len(), 32);
    }
    let raw_key =
        aws_lc_rs::hmac::Key::generate(aws_lc_rs::hmac::HMAC_SHA256, &SystemRandom::new())
            .expect("hmac key");
    let raw_mac = |msgs: &[Vec<u8>]| -> Vec<Vec<u8>> {
        msgs.iter()
            .map(|m| aws_lc_rs::hmac::sign(&raw_key, m).as_ref().to_vec())
            .collect()
    };
    assert_eq!(raw_mac(&msgs)[0].len(), 32);

    let mut group = c.benchmark_group("generate_mac/HMAC_256/64B");
    configure(&mut group);
    group.throughput(Throughput::Elements(BATCH as u64));
    group.bench_function("raw-aws-lc-rs/1-thread", |b| {
        b.iter(|| raw_mac(black_box(&msgs)))
    });
    for (threads, engine) in &engines {
        group.bench_function(thread_label(*threads), |b| {
            b.iter(|| engine.generate_mac_batch(black_box(&requests)))
        });
    }
    group.finish();
}

criterion_group!(benches, sign_and_verify_groups, generate_mac_group);
criterion_main!(benches);
