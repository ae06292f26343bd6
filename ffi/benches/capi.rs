//! Per-call overhead of the C ABI against the same work through the Rust API, side by side in each
//! group so results read as ratios: Encrypt and Decrypt, single calls and batches of 256, at 64 B
//! and 16 KiB, and GenerateMac batches of 256 at 64 B, on one engine (one worker thread, so
//! batches run on the calling thread and the comparison is of the adapter, not of scheduling).
//!
//! Batch groups have two Rust baselines: `rust` (`encrypt_batch`, a new vector per item) and
//! `rust_into` (`encrypt_batch_into`, sealing in place into caller buffers, which is what the C
//! batch calls do); `c_abi / rust_into` is the adapter's overhead.
//!
//! The `extern "C"` functions are keyplane-ffi's own, called directly as C would call them.
//!
//!     cargo bench -p keyplane-ffi --bench capi
#![allow(dead_code, clippy::missing_safety_doc)]

use keyplane_ffi::api;

use std::ffi::CString;
use std::hint::black_box;
use std::ptr;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

use api::asymmetric::kp_mac_item;
use api::data::{kp_decrypt_item, kp_encrypt_item, kp_out};
use api::status::kp_status;

const BATCH: usize = 256;

struct Setup {
    handle: *mut api::handles::kp_engine,
    key: CString,
    hmac_key: CString,
}

fn setup() -> Setup {
    let mut config = ptr::null_mut();
    let mut handle = ptr::null_mut();
    let mut record = ptr::null_mut();
    // SAFETY: every pointer passed is a local out-parameter or a handle just returned.
    unsafe {
        assert_eq!(api::handles::kp_config_new(&mut config), kp_status::Ok);
        assert_eq!(
            api::handles::kp_config_set_max_plaintext_bytes(config, 16384),
            kp_status::Ok
        );
        assert_eq!(
            api::handles::kp_config_set_worker_threads(config, 1),
            kp_status::Ok
        );
        assert_eq!(
            api::handles::kp_engine_new(config, &mut handle),
            kp_status::Ok
        );
        api::handles::kp_config_free(config);
        assert_eq!(
            api::control::kp_create_key(handle, ptr::null(), &mut record),
            kp_status::Ok
        );
        let id = std::ffi::CStr::from_ptr(api::record::kp_record_string(
            record,
            api::record::kp_field::KeyId as u32,
        ))
        .to_owned();
        api::record::kp_record_free(record);
        let mut options: api::control::kp_create_key_options = std::mem::zeroed();
        options.key_spec = c"HMAC_256".as_ptr();
        assert_eq!(
            api::control::kp_create_key(handle, &options, &mut record),
            kp_status::Ok
        );
        let hmac_key = std::ffi::CStr::from_ptr(api::record::kp_record_string(
            record,
            api::record::kp_field::KeyId as u32,
        ))
        .to_owned();
        api::record::kp_record_free(record);
        Setup {
            handle,
            key: id,
            hmac_key,
        }
    }
}

fn engine(setup: &Setup) -> &kp::Engine {
    // SAFETY: the handle is live for the whole benchmark.
    unsafe { api::handles::engine_of(setup.handle.cast_const()) }.unwrap()
}

fn bench(c: &mut Criterion) {
    let s = setup();
    let engine = engine(&s);
    let key = s.key.to_str().unwrap();
    for size in [64usize, 16384] {
        let label = if size == 64 { "64B" } else { "16KiB" };
        let plaintext = vec![0x42u8; size];
        let blob_len = api::kp_ciphertext_len(size);
        let c_item = kp_encrypt_item {
            key_id: s.key.as_ptr(),
            plaintext: plaintext.as_ptr(),
            plaintext_len: size,
            context: ptr::null(),
            encryption_algorithm: 0,
        };
        let sealed = engine
            .encrypt(&kp::EncryptRequest::new(key, &plaintext))
            .unwrap()
            .ciphertext_blob;

        let mut group = c.benchmark_group(format!("encrypt_single_{label}"));
        group.throughput(Throughput::Bytes(size as u64));
        group.bench_function("rust", |b| {
            b.iter(|| black_box(engine.encrypt(&kp::EncryptRequest::new(key, &plaintext))))
        });
        let mut out = vec![0u8; blob_len];
        group.bench_function("c_abi", |b| {
            b.iter(|| {
                let mut len = 0usize;
                // SAFETY: the item's pointers and `out` outlive the call.
                let status = unsafe {
                    api::data::kp_encrypt(
                        s.handle,
                        &c_item,
                        out.as_mut_ptr(),
                        out.len(),
                        &mut len,
                        ptr::null_mut(),
                    )
                };
                black_box((status, len))
            })
        });
        group.finish();

        let mut group = c.benchmark_group(format!("decrypt_single_{label}"));
        group.throughput(Throughput::Bytes(size as u64));
        group.bench_function("rust", |b| {
            b.iter(|| black_box(engine.decrypt(&kp::DecryptRequest::new(&sealed))))
        });
        let d_item = kp_decrypt_item {
            ciphertext: sealed.as_ptr(),
            ciphertext_len: sealed.len(),
            key_id: ptr::null(),
            context: ptr::null(),
            encryption_algorithm: 0,
        };
        let mut plain = vec![0u8; size];
        group.bench_function("c_abi", |b| {
            b.iter(|| {
                let mut len = 0usize;
                // SAFETY: as above.
                let status = unsafe {
                    api::data::kp_decrypt(
                        s.handle,
                        &d_item,
                        plain.as_mut_ptr(),
                        plain.len(),
                        &mut len,
                        ptr::null_mut(),
                    )
                };
                black_box((status, len))
            })
        });
        group.finish();

        // Batches of BATCH items.
        let requests: Vec<_> = (0..BATCH)
            .map(|_| kp::EncryptRequest::new(key, &plaintext))
            .collect();
        let c_items = vec![c_item; BATCH];
        let mut arena = vec![0u8; blob_len * BATCH];
        let mut outs: Vec<kp_out> = arena
            .chunks_mut(blob_len)
            .map(|chunk| kp_out {
                data: chunk.as_mut_ptr(),
                capacity: chunk.len(),
                len: 0,
                status: 0,
            })
            .collect();
        let mut group = c.benchmark_group(format!("encrypt_batch{BATCH}_{label}"));
        group.throughput(Throughput::Bytes((size * BATCH) as u64));
        group.bench_function(BenchmarkId::new("rust", BATCH), |b| {
            b.iter(|| black_box(engine.encrypt_batch(&requests)))
        });
        let mut rust_arena = vec![0u8; blob_len * BATCH];
        group.bench_function(BenchmarkId::new("rust_into", BATCH), |b| {
            b.iter(|| {
                let mut buffers: Vec<&mut [u8]> = rust_arena.chunks_mut(blob_len).collect();
                black_box(engine.encrypt_batch_into(&requests, &mut buffers))
            })
        });
        // SAFETY: items and outputs are valid for BATCH elements.
        let status = unsafe {
            api::data::kp_encrypt_batch(s.handle, c_items.as_ptr(), BATCH, outs.as_mut_ptr())
        };
        assert_eq!(status, kp_status::Ok);
        assert!(outs.iter().all(|o| o.status == 0 && o.len == blob_len));
        group.bench_function(BenchmarkId::new("c_abi", BATCH), |b| {
            b.iter(|| {
                // SAFETY: items and outputs are valid for BATCH elements.
                black_box(unsafe {
                    api::data::kp_encrypt_batch(
                        s.handle,
                        c_items.as_ptr(),
                        BATCH,
                        outs.as_mut_ptr(),
                    )
                })
            })
        });
        group.finish();

        let blobs = engine.encrypt_batch(&requests);
        let blobs: Vec<Vec<u8>> = blobs.into_iter().map(|b| b.unwrap().into_vec()).collect();
        let d_requests: Vec<_> = blobs.iter().map(|b| kp::DecryptRequest::new(b)).collect();
        let d_items: Vec<_> = blobs
            .iter()
            .map(|b| kp_decrypt_item {
                ciphertext: b.as_ptr(),
                ciphertext_len: b.len(),
                key_id: ptr::null(),
                context: ptr::null(),
                encryption_algorithm: 0,
            })
            .collect();
        let mut plain_arena = vec![0u8; size * BATCH];
        let mut plain_outs: Vec<kp_out> = plain_arena
            .chunks_mut(size)
            .map(|chunk| kp_out {
                data: chunk.as_mut_ptr(),
                capacity: chunk.len(),
                len: 0,
                status: 0,
            })
            .collect();
        let mut group = c.benchmark_group(format!("decrypt_batch{BATCH}_{label}"));
        group.throughput(Throughput::Bytes((size * BATCH) as u64));
        group.bench_function(BenchmarkId::new("rust", BATCH), |b| {
            b.iter(|| black_box(engine.decrypt_batch(&d_requests)))
        });
        let mut rust_plain = vec![0u8; size * BATCH];
        group.bench_function(BenchmarkId::new("rust_into", BATCH), |b| {
            b.iter(|| {
                let mut buffers: Vec<&mut [u8]> = rust_plain.chunks_mut(size).collect();
                black_box(engine.decrypt_batch_into(&d_requests, &mut buffers))
            })
        });
        // SAFETY: items and outputs are valid for BATCH elements.
        let status = unsafe {
            api::data::kp_decrypt_batch(s.handle, d_items.as_ptr(), BATCH, plain_outs.as_mut_ptr())
        };
        assert_eq!(status, kp_status::Ok);
        assert!(plain_outs.iter().all(|o| o.status == 0 && o.len == size));
        group.bench_function(BenchmarkId::new("c_abi", BATCH), |b| {
            b.iter(|| {
                // SAFETY: items and outputs are valid for BATCH elements.
                black_box(unsafe {
                    api::data::kp_decrypt_batch(
                        s.handle,
                        d_items.as_ptr(),
                        BATCH,
                        plain_outs.as_mut_ptr(),
                    )
                })
            })
        });
        group.finish();
        if size != 64 {
            continue;
        }

        // GenerateMac, a batch of BATCH 64-byte messages.
        let hmac = s.hmac_key.to_str().unwrap();
        let mac_requests: Vec<_> = (0..BATCH)
            .map(|_| kp::GenerateMacRequest {
                key_id: hmac,
                message: &plaintext,
                mac_algorithm: kp::MacAlgorithm::HmacSha256,
            })
            .collect();
        let mac_items = vec![
            kp_mac_item {
                key_id: s.hmac_key.as_ptr(),
                message: plaintext.as_ptr(),
                message_len: size,
                mac_algorithm: api::asymmetric::kp_mac_algorithm::HmacSha_256 as u32,
            };
            BATCH
        ];
        let mut mac_arena = vec![0u8; 32 * BATCH];
        let mut mac_outs: Vec<kp_out> = mac_arena
            .chunks_mut(32)
            .map(|chunk| kp_out {
                data: chunk.as_mut_ptr(),
                capacity: chunk.len(),
                len: 0,
                status: 0,
            })
            .collect();
        let mut group = c.benchmark_group(format!("generate_mac_batch{BATCH}_{label}"));
        group.throughput(Throughput::Elements(BATCH as u64));
        group.bench_function(BenchmarkId::new("rust", BATCH), |b| {
            b.iter(|| black_box(engine.generate_mac_batch(&mac_requests)))
        });
        // SAFETY: items and outputs are valid for BATCH elements.
        let status = unsafe {
            api::asymmetric::kp_generate_mac_batch(
                s.handle,
                mac_items.as_ptr(),
                BATCH,
                mac_outs.as_mut_ptr(),
            )
        };
        assert_eq!(status, kp_status::Ok);
        assert!(mac_outs.iter().all(|o| o.status == 0 && o.len == 32));
        group.bench_function(BenchmarkId::new("c_abi", BATCH), |b| {
            b.iter(|| {
                // SAFETY: items and outputs are valid for BATCH elements.
                black_box(unsafe {
                    api::asymmetric::kp_generate_mac_batch(
                        s.handle,
                        mac_items.as_ptr(),
                        BATCH,
                        mac_outs.as_mut_ptr(),
                    )
                })
            })
        });
        group.finish();
    }
    // SAFETY: nothing uses the handle after this.
    unsafe { api::handles::kp_engine_free(s.handle) };
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(20)
        .warm_up_time(std::time::Duration::from_millis(500))
        .measurement_time(std::time::Duration::from_secs(2));
    targets = bench
}
criterion_main!(benches);
