//! Key material and derived keys live in locked memory: the process's `VmLck` and the allocator's
//! own count grow as keys are created and used. Needs Linux (`/proc/self/status`) and the right
//! to lock memory (CI runs as root); it fails, rather than passes, where either is missing.
//!
//! One test only: the allocator and `VmLck` are process-wide, so a second test running in parallel
//! in this binary would blur the measurements.

use keyplane::{locked_memory_stats as stats, process_locked_kib};
use keyplane::{CreateKeyRequest, DecryptRequest, EncryptRequest, Engine, LockPolicy};

/// Bytes the allocator maps and locks at a time.
const REGION_KIB: u64 = 64;

fn vmlck_kib() -> u64 {
    process_locked_kib().expect(
        "VmLck is not readable from /proc/self/status: this test needs Linux with /proc mounted",
    )
}

/// Creates `count` keys and encrypts and decrypts once with each; returns the blobs (keeping
/// nothing else alive but the engine, which holds the keys and their derived keys).
fn create_and_use(engine: &Engine, count: usize) -> Vec<Vec<u8>> {
    (0..count)
        .map(|i| {
            let key = engine
                .create_key(CreateKeyRequest::default())
                .unwrap_or_else(|e| panic!("create key {i}: {e} (can this process mlock?)"));
            let plaintext = format!("message for key {i}");
            let blob = engine
                .encrypt(&EncryptRequest::new(&key.key_id, plaintext.as_bytes()))
                .unwrap()
                .ciphertext_blob;
            let opened = engine.decrypt(&DecryptRequest::new(&blob)).unwrap();
            assert_eq!(opened.plaintext.expose(), plaintext.as_bytes());
            blob
        })
        .collect()
}

#[test]
fn locked_memory_grows_with_keys_in_use() {
    let start_kib = vmlck_kib();
    let start_stats = stats();

    let engine = Engine::builder()
        .lock_policy(LockPolicy::Require)
        .build()
        .unwrap();
    let after_build_kib = vmlck_kib();
    let after_build = stats();

    let first = create_and_use(&engine, 150);
    let mid_kib = vmlck_kib();
    let mid = stats();

    let second = create_and_use(&engine, 150);
    let end_kib = vmlck_kib();
    let end = stats();

    eprintln!(
        "VmLck kB: start {start_kib}, built {after_build_kib}, 150 keys {mid_kib}, 300 keys \
         {end_kib}; allocator locked bytes: {} / {} / {} / {}",
        start_stats.locked_bytes, after_build.locked_bytes, mid.locked_bytes, end.locked_bytes
    );

    // Every region could be locked: nothing fell back to unlocked memory.
    assert_eq!(
        end.unlocked_bytes, start_stats.unlocked_bytes,
        "key memory was left unlocked"
    );

    // Each 150 keys (material, its store copy, an encryption and a decryption key schedule each)
    // need several more 64 KiB regions: VmLck grows at each step, by whole regions.
    for (label, before, after) in [
        ("first 150 keys", after_build_kib, mid_kib),
        ("next 150 keys", mid_kib, end_kib),
    ] {
        assert!(
            after >= before + 2 * REGION_KIB,
            "{label}: VmLck went from {before} kB to {after} kB; expected at least {} kB more",
            2 * REGION_KIB
        );
    }
    // The allocator's count grows in step, by whole regions.
    for (label, before, after) in [
        ("first 150 keys", after_build.locked_bytes, mid.locked_bytes),
        ("next 150 keys", mid.locked_bytes, end.locked_bytes),
    ] {
        assert!(
            after >= before + 2 * REGION_KIB as usize * 1024,
            "{label}: locked_bytes went from {before} to {after}"
        );
        assert_eq!(
            (after - before) % (REGION_KIB as usize * 1024),
            0,
            "{label}"
        );
    }
    // Nothing else in this process locks memory, so the kernel's count and the allocator's agree.
    let vmlck_growth = (end_kib - start_kib) as usize * 1024;
    let stats_growth = end.locked_bytes - start_stats.locked_bytes;
    assert_eq!(
        vmlck_growth, stats_growth,
        "VmLck grew by {vmlck_growth} bytes, the allocator's count by {stats_growth}"
    );
    // Every key's material (the engine's copy and the store's) sits in a locked slot.
    assert!(
        end.slots_in_use >= start_stats.slots_in_use + 2 * 300,
        "slots in use went from {} to {}",
        start_stats.slots_in_use,
        end.slots_in_use
    );

    // The keys still work from locked memory.
    for blob in first.iter().chain(&second).step_by(37) {
        engine.decrypt(&DecryptRequest::new(blob)).unwrap();
    }
}
