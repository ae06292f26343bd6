//! `keyplane demo`: the main job, envelope encryption end to end on the durable store, with what
//! it did and how fast.
//!
//! 1. Open the store in the data directory (creating it, and its root key file, if missing).
//! 2. CreateKey and point `alias/keyplane-demo` at it; both durable before they return.
//! 3. GenerateDataKey under the alias with an encryption context; encrypt a few MiB locally with
//!    the plaintext data key (AES-256-GCM), keep only the encrypted data key, zeroize the other.
//! 4. Close everything and reopen the store, as after a restart; Decrypt the data key and the data.
//! 5. RotateKeyOnDemand: the old envelope still opens; new data keys use the new material.
//! 6. Data-plane throughput on the durable store; `verify` of the store.
//! 7. Schedule the demo key's deletion (7 days), unless --keep-key.
//!
//! Never prints key material or plaintext data keys, only their sizes.

use std::time::{Duration, Instant};

use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use aws_lc_rs::digest::{digest, SHA256};
use std::sync::Arc;

use keyplane::{
    CreateKeyRequest, DataKeySpec, DecryptRequest, EncryptRequest, EncryptionContext, Engine,
    Error, GenerateDataKeyRequest,
};

use crate::args::DemoArgs;
use crate::context::{CliEngine, Context};
use crate::outcome::Failure;
use keyplane_sqlite::SqliteKeyStore;

const ALIAS: &str = "alias/keyplane-demo";
const BATCH: usize = 1000;

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

fn short(id: &str) -> &str {
    &id[..id.len().min(12)]
}

fn internal(what: &str) -> Failure {
    Failure::from(Error::Internal(what.to_owned()))
}

fn ensure(ok: bool, what: &str) -> Result<(), Failure> {
    if ok {
        Ok(())
    } else {
        Err(internal(what))
    }
}

fn context(object: &str) -> EncryptionContext {
    [("app", "keyplane-demo"), ("object", object)]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

/// What is kept: the data key only encrypted, beside the data it protects.
struct Envelope {
    encrypted_data_key: Vec<u8>,
    nonce: [u8; NONCE_LEN],
    ciphertext: Vec<u8>,
}

fn seal_locally(
    data_key: &[u8],
    aad: &[u8],
    data: &[u8],
) -> Result<([u8; NONCE_LEN], Vec<u8>), Failure> {
    let key = LessSafeKey::new(
        UnboundKey::new(&AES_256_GCM, data_key).map_err(|_| internal("bad data key length"))?,
    );
    let mut nonce = [0u8; NONCE_LEN];
    aws_lc_rs::rand::fill(&mut nonce).map_err(|_| internal("random nonce"))?;
    let mut buf = Vec::with_capacity(data.len() + AES_256_GCM.tag_len());
    buf.extend_from_slice(data);
    key.seal_in_place_append_tag(
        Nonce::assume_unique_for_key(nonce),
        Aad::from(aad),
        &mut buf,
    )
    .map_err(|_| internal("local AES-GCM seal failed"))?;
    Ok((nonce, buf))
}

/// Decrypts the data key through the engine, then the data locally.
fn open_envelope(
    engine: &Engine,
    envelope: &Envelope,
    ctx: &EncryptionContext,
) -> Result<(Vec<u8>, String, Duration), Failure> {
    let t = Instant::now();
    let data_key = engine.decrypt(
        &DecryptRequest::new(&envelope.encrypted_data_key)
            .with_key_id(ALIAS)
            .with_context(ctx),
    )?;
    let key_time = t.elapsed();
    let key = LessSafeKey::new(
        UnboundKey::new(&AES_256_GCM, data_key.plaintext.expose())
            .map_err(|_| internal("bad data key length"))?,
    );
    let mut buf = envelope.ciphertext.clone();
    let len = key
        .open_in_place(
            Nonce::assume_unique_for_key(envelope.nonce),
            Aad::from(&envelope.encrypted_data_key),
            &mut buf,
        )
        .map_err(|_| internal("the data did not authenticate under the decrypted data key"))?
        .len();
    buf.truncate(len);
    Ok((buf, data_key.key_material_id, key_time))
}

pub fn run(ctx: &Context, args: DemoArgs) -> Result<(), Failure> {
    let data_bytes = args.data_mib.clamp(1, 1024) << 20;
    let run_for = Duration::from_secs_f64(args.seconds.clamp(0.05, 60.0));
    let ctx_pairs = context("reports/q1.bin");

    let (store, engine) = open_or_create_store(ctx)?;
    let key_id = make_key_and_alias(&engine)?;
    let sealed = seal_data(&engine, data_bytes, &ctx_pairs)?;
    drop(engine);
    drop(store);
    let (store, engine) = reopen_and_decrypt(ctx, &sealed, &ctx_pairs)?;
    rotate(&engine, &key_id, &sealed, &ctx_pairs)?;
    measure_throughput(&engine, run_for, &ctx_pairs)?;
    verify_store(&store)?;
    tidy_up(ctx, engine, &key_id, args.keep_key)?;
    println!("\ndemo: all steps succeeded");
    Ok(())
}

/// The envelope step 3 made, with what step 4 checks it against.
struct Sealed {
    envelope: Envelope,
    fingerprint: aws_lc_rs::digest::Digest,
    material: String,
    data_bytes: usize,
}

/// 1. The store (created, with its root key, if missing) and an engine on it.
fn open_or_create_store(ctx: &Context) -> Result<(Arc<SqliteKeyStore>, CliEngine), Failure> {
    let dir = ctx.data_dir().display().to_string();
    let t = Instant::now();
    let store = match ctx.open_store() {
        Ok(store) => store,
        Err(f)
            if f.exit == crate::outcome::NOT_FOUND
                && !ctx.data_dir().join(keyplane_sqlite::DB_FILE).exists() =>
        {
            let provider = ctx.current_provider()?;
            let store =
                SqliteKeyStore::init(ctx.data_dir(), provider.clone(), ctx.store_options())?;
            println!(
                "[1] created a store in {dir}; root key: {}",
                provider.describe()
            );
            Arc::new(store)
        }
        Err(f) => return Err(f),
    };
    let engine = ctx.engine_on(store.clone())?;
    println!(
        "[1] opened {} in {} ({} keys; {} worker threads; FIPS module: {})",
        keyplane::store::KeyStore::describe(store.as_ref()),
        ms(t.elapsed()),
        engine.list_keys(Some(1000), None)?.items.len(),
        engine.worker_threads(),
        engine.fips_mode()
    );
    Ok((store, engine))
}

/// 2. A key and the alias, durable before each call returns; the key's id.
fn make_key_and_alias(engine: &Engine) -> Result<String, Failure> {
    let t = Instant::now();
    let key = engine.create_key(CreateKeyRequest {
        description: Some("keyplane demo: envelope encryption".into()),
        ..CreateKeyRequest::default()
    })?;
    let create_time = t.elapsed();
    let t = Instant::now();
    match engine.create_alias(ALIAS, &key.key_id) {
        Err(e) if e.code() == "AlreadyExistsException" => {
            engine.update_alias(ALIAS, &key.key_id)?
        }
        other => other?,
    }
    println!(
        "[2] CreateKey {} in {} and {ALIAS} in {} (each committed with fsync before returning)",
        key.key_id,
        ms(create_time),
        ms(t.elapsed())
    );

    Ok(key.key_id)
}

/// 3. GenerateDataKey, local encryption, plaintext data key dropped.
fn seal_data(
    engine: &Engine,
    data_bytes: usize,
    ctx_pairs: &EncryptionContext,
) -> Result<Sealed, Failure> {
    let mut data = vec![0u8; data_bytes];
    aws_lc_rs::rand::fill(&mut data).map_err(|_| internal("random data"))?;
    let fingerprint = digest(&SHA256, &data);
    let t = Instant::now();
    let generated = engine.generate_data_key(
        &GenerateDataKeyRequest::new(ALIAS, DataKeySpec::Aes256).with_context(ctx_pairs),
    )?;
    let gdk_time = t.elapsed();
    let original_material = generated.key_material_id.clone();
    let t = Instant::now();
    let (nonce, ciphertext) = seal_locally(
        generated.plaintext.expose(),
        &generated.ciphertext_blob,
        &data,
    )?;
    let seal_time = t.elapsed();
    let envelope = Envelope {
        encrypted_data_key: generated.ciphertext_blob,
        nonce,
        ciphertext,
    };
    drop(generated.plaintext); // zeroed on drop
    println!(
        "[3] GenerateDataKey AES_256 in {}; encrypted {} MiB locally in {} ({:.2} GB/s); kept the \
         {}-byte encrypted data key, zeroized the plaintext one",
        ms(gdk_time),
        data_bytes >> 20,
        ms(seal_time),
        data_bytes as f64 / seal_time.as_secs_f64() / 1e9,
        envelope.encrypted_data_key.len()
    );

    Ok(Sealed {
        envelope,
        fingerprint,
        material: original_material,
        data_bytes,
    })
}

/// 4. A restart: the store reopened from disk, the envelope opened (and refused under another
///    encryption context).
fn reopen_and_decrypt(
    ctx: &Context,
    sealed: &Sealed,
    ctx_pairs: &EncryptionContext,
) -> Result<(Arc<SqliteKeyStore>, CliEngine), Failure> {
    let t = Instant::now();
    let store = ctx.open_store()?;
    let engine = ctx.engine_on(store.clone())?;
    let reopen_time = t.elapsed();
    let t = Instant::now();
    let (opened, material, key_time) = open_envelope(&engine, &sealed.envelope, ctx_pairs)?;
    let open_time = t.elapsed();
    ensure(
        digest(&SHA256, &opened).as_ref() == sealed.fingerprint.as_ref(),
        "the decrypted data differs from the original",
    )?;
    ensure(
        material == sealed.material,
        "decrypted by the wrong key material",
    )?;
    drop(opened);
    let wrong = engine.decrypt(
        &DecryptRequest::new(&sealed.envelope.encrypted_data_key).with_context(&context("other")),
    );
    ensure(
        wrong.is_err(),
        "the data key opened under another encryption context",
    )?;
    println!(
        "[4] reopened the store from disk in {}; Decrypt of the data key in {}, the {} MiB in {}: \
         identical (SHA-256); under another encryption context: {}",
        ms(reopen_time),
        ms(key_time),
        sealed.data_bytes >> 20,
        ms(open_time - key_time),
        wrong.err().map(|e| e.code()).unwrap_or("?")
    );

    Ok((store, engine))
}

/// 5. Rotation: the old envelope still opens; new data keys use the new material.
fn rotate(
    engine: &Engine,
    key_id: &str,
    sealed: &Sealed,
    ctx_pairs: &EncryptionContext,
) -> Result<(), Failure> {
    let t = Instant::now();
    // RotateKeyOnDemand takes a key id or key ARN, not an alias, as in the service.
    engine.rotate_key_on_demand(key_id)?;
    let rotate_time = t.elapsed();
    let (_, still, _) = open_envelope(engine, &sealed.envelope, ctx_pairs)?;
    ensure(
        still == sealed.material,
        "after rotation, the old envelope used other material",
    )?;
    let fresh = engine.generate_data_key(
        &GenerateDataKeyRequest::new(ALIAS, DataKeySpec::Aes256).with_context(ctx_pairs),
    )?;
    ensure(
        fresh.key_material_id != sealed.material,
        "after rotation, new data keys still use the old material",
    )?;
    println!(
        "[5] RotateKeyOnDemand in {}: the old envelope still opens (material {}…), new data keys \
         use material {}…",
        ms(rotate_time),
        short(&sealed.material),
        short(&fresh.key_material_id)
    );
    drop(fresh);

    Ok(())
}

/// 6. Data-plane throughput on the durable store.
fn measure_throughput(
    engine: &Engine,
    run_for: Duration,
    ctx_pairs: &EncryptionContext,
) -> Result<(), Failure> {
    println!(
        "[6] data-plane throughput on the durable store ({} threads, batches of {BATCH}, {:.1} s each):",
        engine.worker_threads(),
        run_for.as_secs_f64()
    );
    for len in [64usize, 4096] {
        let messages: Vec<Vec<u8>> = (0..BATCH).map(|i| vec![i as u8; len]).collect();
        let requests: Vec<EncryptRequest<'_>> = messages
            .iter()
            .map(|m| EncryptRequest::new(ALIAS, m).with_context(ctx_pairs))
            .collect();
        let (ops, mbs) = measure(run_for, len, || {
            engine
                .encrypt_batch(&requests)
                .iter()
                .filter(|r| r.is_err())
                .count()
        })?;
        println!("    encrypt_batch {len:>5} B: {ops:>12.0} ops/s {mbs:>9.1} MB/s");
    }
    let requests: Vec<GenerateDataKeyRequest<'_>> = (0..BATCH)
        .map(|_| GenerateDataKeyRequest::new(ALIAS, DataKeySpec::Aes256).with_context(ctx_pairs))
        .collect();
    let (ops, _) = measure(run_for, 32, || {
        engine
            .generate_data_key_batch(&requests)
            .iter()
            .filter(|r| r.is_err())
            .count()
    })?;
    println!("    generate_data_key_batch AES_256: {ops:>8.0} ops/s");
    Ok(())
}

/// 6. `verify` of the whole store.
fn verify_store(store: &SqliteKeyStore) -> Result<(), Failure> {
    let t = Instant::now();
    let report = store.verify(false)?;
    ensure(report.is_pristine(), "store verify found damage")?;
    println!(
        "    store verify in {}: {} keys, {} versions, {} copies checked, all good",
        ms(t.elapsed()),
        report.keys,
        report.versions,
        report.copies_checked
    );

    Ok(())
}

/// 7. The demo key scheduled for deletion (unless kept) and the audit log verified.
fn tidy_up(ctx: &Context, engine: CliEngine, key_id: &str, keep_key: bool) -> Result<(), Failure> {
    if keep_key {
        println!("[7] kept {key_id} ({ALIAS})");
    } else {
        engine.schedule_key_deletion(key_id, Some(7))?;
        println!(
            "[7] scheduled the demo key for deletion in 7 days (--keep-key keeps it); the store is \
             in {}",
            ctx.data_dir().display()
        );
    }
    if let Some(log) = engine.audit_log().map(std::path::Path::to_path_buf) {
        drop(engine);
        let paths = ctx.audit_paths();
        let public_key = std::fs::read(&paths.public_key).map_err(|e| internal(&e.to_string()))?;
        let audit = keyplane::audit::verify_directory(&log, &public_key)
            .map_err(|e| internal(&format!("audit verify: {e}")))?;
        ensure(
            audit.verdict() != keyplane::audit::Verdict::Tampered,
            "the audit log does not verify",
        )?;
        println!(
            "    every request above is in the audit directory {}: {} records, {} signed digests, \
             verified (`keyplane audit verify`)",
            log.display(),
            audit.requests(),
            audit.segments.iter().map(|s| s.report.digests).sum::<u64>()
        );
    }
    Ok(())
}

/// Runs `batch` for about `run_for`, timing only the calls; returns items/s and MB/s.
fn measure(
    run_for: Duration,
    bytes: usize,
    mut batch: impl FnMut() -> usize,
) -> Result<(f64, f64), Failure> {
    let (mut items, mut spent) = (0u64, Duration::ZERO);
    let wall = Instant::now();
    while wall.elapsed() < run_for {
        let t = Instant::now();
        let failed = batch();
        spent += t.elapsed();
        ensure(failed == 0, "a throughput batch had failures")?;
        items += BATCH as u64;
    }
    let secs = spent.as_secs_f64().max(1e-9);
    Ok((
        items as f64 / secs,
        items as f64 * bytes as f64 / secs / 1e6,
    ))
}
