//! Envelope encryption through the engine, end to end, with timings.
//!
//! 1. Create a key and an alias.
//! 2. GenerateDataKey (AES_256) under the alias, with an encryption context.
//! 3. Encrypt a few MiB of application data locally with the plaintext data key (aws-lc-rs
//!    AES-256-GCM), keep only the *encrypted* data key next to the ciphertext, and zeroize the
//!    plaintext data key.
//! 4. Later: Decrypt the encrypted data key through the engine and decrypt the data.
//! 5. Rotate the key; the old envelope still opens, and new data keys use the new material.
//! 6. Throughput of encrypt_batch (64 B and 4 KiB) and generate_data_key_batch, on one worker
//!    thread and on all of them.
//!
//! Never prints key material or plaintext data keys, only their lengths. Exits non-zero on any
//! failure.
//!
//! Run: `cargo run --release -p keyplane --example envelope`

use std::process::ExitCode;
use std::time::{Duration, Instant};

use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use aws_lc_rs::digest::{digest, SHA256};
use keyplane::{
    CreateKeyRequest, DataKeySpec, DecryptRequest, EncryptRequest, EncryptionContext, Engine,
    GenerateDataKeyRequest, SecretBytes,
};

type Result<T, E = Box<dyn std::error::Error>> = std::result::Result<T, E>;

/// Application data size.
const DATA_BYTES: usize = 4 << 20;
/// How long each throughput measurement runs.
const RUN_FOR: Duration = Duration::from_millis(1000);
/// Requests per batch in the throughput runs.
const BATCH: usize = 1000;
const ALIAS: &str = "alias/envelope-demo";

/// What is stored: the data key only in encrypted form, beside the data it protects.
struct Envelope {
    encrypted_data_key: Vec<u8>,
    nonce: [u8; NONCE_LEN],
    /// AES-256-GCM ciphertext ‖ tag.
    ciphertext: Vec<u8>,
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => {
            println!("\nenvelope: all steps succeeded");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("\nenvelope: FAILED: {e}");
            ExitCode::FAILURE
        }
    }
}

fn ensure(condition: bool, what: &str) -> Result<()> {
    if condition {
        Ok(())
    } else {
        Err(what.into())
    }
}

fn context(object: &str) -> EncryptionContext {
    [("app", "envelope-demo"), ("object", object)]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1e3)
}

fn short(id: &str) -> &str {
    &id[..id.len().min(12)]
}

/// Encrypts `data` locally under a plaintext data key; the data key's bytes never leave this
/// function's borrow and aws-lc's own copy is dropped with `key` at its end.
fn seal_locally(data_key: &SecretBytes, aad: &[u8], data: &[u8]) -> Result<([u8; 12], Vec<u8>)> {
    let key = LessSafeKey::new(
        UnboundKey::new(&AES_256_GCM, data_key.expose()).map_err(|_| "bad data key length")?,
    );
    // A data key encrypts one object, so any nonce is unique for it; a random one costs nothing.
    let mut nonce = [0u8; NONCE_LEN];
    aws_lc_rs::rand::fill(&mut nonce).map_err(|_| "random nonce")?;
    let mut buf = Vec::with_capacity(data.len() + AES_256_GCM.tag_len());
    buf.extend_from_slice(data);
    key.seal_in_place_append_tag(
        Nonce::assume_unique_for_key(nonce),
        Aad::from(aad),
        &mut buf,
    )
    .map_err(|_| "local AES-GCM seal failed")?;
    Ok((nonce, buf))
}

/// Opens an envelope: Decrypt the data key through the engine, then the data locally.
fn open_envelope(
    engine: &Engine,
    envelope: &Envelope,
    ctx: &EncryptionContext,
) -> Result<(Vec<u8>, String, Duration, Duration)> {
    let t = Instant::now();
    let data_key = engine.decrypt(
        &DecryptRequest::new(&envelope.encrypted_data_key)
            .with_key_id(ALIAS)
            .with_context(ctx),
    )?;
    let key_time = t.elapsed();
    let t = Instant::now();
    let key = LessSafeKey::new(
        UnboundKey::new(&AES_256_GCM, data_key.plaintext.expose())
            .map_err(|_| "bad data key length")?,
    );
    let mut buf = envelope.ciphertext.clone();
    let len = key
        .open_in_place(
            Nonce::assume_unique_for_key(envelope.nonce),
            Aad::from(&envelope.encrypted_data_key),
            &mut buf,
        )
        .map_err(|_| "the data did not authenticate under the decrypted data key")?
        .len();
    buf.truncate(len);
    Ok((buf, data_key.key_material_id, key_time, t.elapsed()))
    // `data_key.plaintext` (SecretBytes) and `key` are dropped, and zeroed, here.
}

fn run() -> Result<()> {
    let engine = Engine::builder().build()?;
    println!(
        "engine: {} worker threads, FIPS module: {}",
        engine.worker_threads(),
        engine.fips_mode()
    );

    // 1. A key and an alias.
    let key = engine.create_key(CreateKeyRequest {
        description: Some("envelope encryption demo".into()),
        ..CreateKeyRequest::default()
    })?;
    engine.create_alias(ALIAS, &key.key_id)?;
    println!("[1] created key {} and {ALIAS}", key.arn);

    // Application data: a few MiB, fingerprinted so the round trip can be checked.
    let mut data = vec![0u8; DATA_BYTES];
    aws_lc_rs::rand::fill(&mut data).map_err(|_| "random data")?;
    let fingerprint = digest(&SHA256, &data);
    let ctx = context("reports/2025-q1.bin");

    // 2. GenerateDataKey.
    let t = Instant::now();
    let generated = engine.generate_data_key(
        &GenerateDataKeyRequest::new(ALIAS, DataKeySpec::Aes256).with_context(&ctx),
    )?;
    let gdk_time = t.elapsed();
    ensure(generated.plaintext.len() == 32, "the data key is 32 bytes")?;
    println!(
        "[2] GenerateDataKey AES_256 in {}: plaintext data key {} bytes (not shown), encrypted \
         data key {} bytes, key material {}…",
        ms(gdk_time),
        generated.plaintext.len(),
        generated.ciphertext_blob.len(),
        short(&generated.key_material_id)
    );
    let original_material = generated.key_material_id.clone();

    // 3. Encrypt locally; keep the encrypted data key; zeroize the plaintext one.
    let t = Instant::now();
    let (nonce, ciphertext) =
        seal_locally(&generated.plaintext, &generated.ciphertext_blob, &data)?;
    let seal_time = t.elapsed();
    let envelope = Envelope {
        encrypted_data_key: generated.ciphertext_blob,
        nonce,
        ciphertext,
    };
    // Dropping SecretBytes zeroes its buffer; nothing else holds the plaintext data key.
    drop(generated.plaintext);
    ensure(
        envelope.ciphertext.len() == DATA_BYTES + AES_256_GCM.tag_len(),
        "ciphertext length",
    )?;
    println!(
        "[3] encrypted {} MiB locally with AES-256-GCM in {} ({:.2} GB/s, one cold pass into a new \
         buffer); plaintext data key zeroized and dropped; envelope = {} B encrypted data key + {} B nonce + {} B ciphertext",
        DATA_BYTES >> 20,
        ms(seal_time),
        DATA_BYTES as f64 / seal_time.as_secs_f64() / 1e9,
        envelope.encrypted_data_key.len(),
        envelope.nonce.len(),
        envelope.ciphertext.len()
    );

    // 4. Later: Decrypt the data key, then the data.
    let (opened, material, key_time, data_time) = open_envelope(&engine, &envelope, &ctx)?;
    ensure(
        digest(&SHA256, &opened).as_ref() == fingerprint.as_ref(),
        "decrypted data differs from the original",
    )?;
    ensure(
        material == original_material,
        "decrypted by the wrong key material",
    )?;
    println!(
        "[4] Decrypt of the data key in {}, local decrypt of {} MiB in {} ({:.2} GB/s); data \
         identical to the original (SHA-256 matches)",
        ms(key_time),
        DATA_BYTES >> 20,
        ms(data_time),
        DATA_BYTES as f64 / data_time.as_secs_f64() / 1e9
    );
    drop(opened);

    // The envelope is bound to its context and its bytes: both refusals are part of the demo.
    let wrong = engine.decrypt(
        &DecryptRequest::new(&envelope.encrypted_data_key).with_context(&context("other")),
    );
    ensure(
        wrong.is_err(),
        "the data key decrypted under the wrong encryption context",
    )?;
    let mut tampered = Envelope {
        encrypted_data_key: envelope.encrypted_data_key.clone(),
        nonce: envelope.nonce,
        ciphertext: envelope.ciphertext.clone(),
    };
    tampered.ciphertext[DATA_BYTES / 2] ^= 1;
    ensure(
        open_envelope(&engine, &tampered, &ctx).is_err(),
        "tampered data opened",
    )?;
    drop(tampered);
    println!(
        "    refused as expected: the data key under another encryption context ({}), and a \
         one-bit change to the data",
        wrong.err().map(|e| e.code()).unwrap_or("?")
    );

    // 5. Rotate: the old envelope still opens; new data keys use the new material.
    engine.rotate_key_on_demand(&key.key_id)?; // RotateKeyOnDemand takes a key id or ARN, not an alias
    let (opened, material, _, _) = open_envelope(&engine, &envelope, &ctx)?;
    ensure(
        digest(&SHA256, &opened).as_ref() == fingerprint.as_ref(),
        "after rotation, decrypted data differs from the original",
    )?;
    ensure(
        material == original_material,
        "after rotation, the old envelope was decrypted by other material",
    )?;
    let fresh = engine.generate_data_key(
        &GenerateDataKeyRequest::new(ALIAS, DataKeySpec::Aes256).with_context(&ctx),
    )?;
    let current = engine.describe_key(ALIAS)?.current_key_material_id;
    ensure(
        fresh.key_material_id != original_material
            && current.as_deref() == Some(fresh.key_material_id.as_str()),
        "after rotation, new data keys are not under the new material",
    )?;
    drop(fresh);
    println!(
        "[5] rotated the key: the old envelope still opens (material {}…), new data keys use \
         material {}…",
        short(&original_material),
        short(current.as_deref().unwrap_or("?"))
    );

    // 6. Throughput.
    throughput()?;
    Ok(())
}

/// One measured operation: total items, total bytes and time spent inside the engine call.
struct Rate {
    items: u64,
    bytes: u64,
    elapsed: Duration,
}

impl Rate {
    fn ops(&self) -> f64 {
        self.items as f64 / self.elapsed.as_secs_f64()
    }
    fn mb(&self) -> f64 {
        self.bytes as f64 / self.elapsed.as_secs_f64() / 1e6
    }
}

/// Calls `batch` repeatedly for about [`RUN_FOR`]; only the calls are timed. `batch` returns how
/// many items failed, checked after the clock stops.
fn measure(
    items_per_batch: usize,
    bytes_per_item: usize,
    mut batch: impl FnMut() -> usize,
) -> Result<Rate> {
    let mut rate = Rate {
        items: 0,
        bytes: 0,
        elapsed: Duration::ZERO,
    };
    let wall = Instant::now();
    while wall.elapsed() < RUN_FOR {
        let t = Instant::now();
        let failed = batch();
        rate.elapsed += t.elapsed();
        ensure(failed == 0, "a throughput batch had failures")?;
        rate.items += items_per_batch as u64;
        rate.bytes += (items_per_batch * bytes_per_item) as u64;
    }
    Ok(rate)
}

fn engine_with(threads: usize) -> Result<Engine> {
    let engine = Engine::builder().worker_threads(threads).build()?;
    let key = engine.create_key(CreateKeyRequest::default())?;
    engine.create_alias(ALIAS, &key.key_id)?;
    Ok(engine)
}

fn throughput() -> Result<()> {
    let one = engine_with(1)?;
    let all = engine_with(0)?;
    println!(
        "[6] throughput, batches of {BATCH}, about {} s each, encryption context of 2 pairs \
         (MB = 10^6 bytes of plaintext or data keys)",
        RUN_FOR.as_secs_f64()
    );
    let ctx = context("throughput");
    for (label, len) in [
        ("encrypt_batch 64 B", 64usize),
        ("encrypt_batch 4 KiB", 4096),
    ] {
        let messages: Vec<Vec<u8>> = (0..BATCH)
            .map(|i| (0..len).map(|j| (i ^ j) as u8).collect())
            .collect();
        let requests: Vec<EncryptRequest<'_>> = messages
            .iter()
            .map(|m| EncryptRequest::new(ALIAS, m).with_context(&ctx))
            .collect();
        let rates = [&one, &all].map(|e| {
            measure(BATCH, len, || {
                e.encrypt_batch(&requests)
                    .iter()
                    .filter(|r| r.is_err())
                    .count()
            })
        });
        report(label, &one, &all, rates)?;
    }
    let requests: Vec<GenerateDataKeyRequest<'_>> = (0..BATCH)
        .map(|_| GenerateDataKeyRequest::new(ALIAS, DataKeySpec::Aes256).with_context(&ctx))
        .collect();
    let rates = [&one, &all].map(|e| {
        measure(BATCH, 32, || {
            e.generate_data_key_batch(&requests)
                .iter()
                .filter(|r| r.is_err())
                .count()
        })
    });
    report("generate_data_key_batch AES_256", &one, &all, rates)
}

fn report(label: &str, one: &Engine, all: &Engine, rates: [Result<Rate>; 2]) -> Result<()> {
    let [r1, rn] = rates;
    let (r1, rn) = (r1?, rn?);
    for (engine, r) in [(one, &r1), (all, &rn)] {
        println!(
            "    {label:<34} {} thread{}: {:>12.0} ops/s {:>9.1} MB/s",
            engine.worker_threads(),
            if engine.worker_threads() == 1 {
                " "
            } else {
                "s"
            },
            r.ops(),
            r.mb()
        );
    }
    println!(
        "    {label:<34} {} threads / 1 thread: {:.2}x",
        all.worker_threads(),
        rn.ops() / r1.ops()
    );
    Ok(())
}
