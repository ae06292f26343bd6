//! Fuzz target `ffi_abi`: the C ABI's entry points with random handles, lengths and NULLs.
//!
//! The `kp_*` functions are called exactly as C calls them, from the library's own sources
//! (`ffi/src/api`, compiled in by `fuzz/src/lib.rs` as the C ABI benchmark does: the library is a
//! cdylib and staticlib without an rlib). Each input is a sequence of calls. Every handle argument
//! is NULL, the right live handle, a live handle of another type, a misaligned pointer, or memory
//! holding a wrong or freed magic number; every string is NULL, arbitrary bytes (invalid UTF-8
//! included) or a real identifier; every byte buffer is NULL (with a zero or non-zero length), a
//! real buffer with a length within it, or a real buffer with an absurd length (over
//! `KP_MAX_LENGTH`); every out-pointer is NULL, valid or misaligned. Those are the arguments a C
//! caller can pass without itself breaking the documented contract, so whatever they are the
//! library must answer with a status, never crash, never report a caught panic
//! (`KP_STATUS_PANIC`), and leave a message behind every failure.
//!
//! Not generated: dangling or freed handles, and lengths longer than the memory behind a pointer
//! (undefined behaviour in C; the handle check is documented as best effort).

#![allow(clippy::undocumented_unsafe_blocks)]

use std::ffi::{c_char, CStr};
use std::ptr;
use std::sync::OnceLock;

use crate::api::control::{kp_create_alias, kp_create_key, kp_delete_alias, kp_describe_key};
use crate::api::data::{
    kp_data_key_item, kp_decrypt, kp_decrypt_batch_sizes, kp_decrypt_item, kp_encrypt,
    kp_encrypt_batch, kp_encrypt_batch_sizes, kp_encrypt_item, kp_generate_data_key,
    kp_generate_random, kp_out, kp_re_encrypt, kp_re_encrypt_item,
};
use crate::api::ffi::{kp_last_error_length, kp_last_error_message};
use crate::api::handles::{
    kp_config, kp_config_new, kp_config_set_worker_threads, kp_context, kp_context_add,
    kp_context_free, kp_context_len, kp_context_new, kp_engine, kp_engine_new, kp_secret_buffer,
    kp_secret_buffer_data, kp_secret_buffer_free, kp_secret_buffer_len, kp_secret_buffer_new,
};
use crate::api::record::{
    kp_record, kp_record_bool, kp_record_free, kp_record_int, kp_record_string,
};
use crate::api::status::{kp_status, kp_status_exception_name, kp_status_name};
use crate::api::{kp_ciphertext_len, kp_ciphertext_max_len, kp_plaintext_len, KP_MAX_LENGTH};
use crate::common::Input;

/// The live handles and values every input starts from.
struct Fixture {
    engine: *mut kp_engine,
    config: *mut kp_config,
    context: *mut kp_context,
    key_id: Vec<u8>,
    alias: Vec<u8>,
    blob: Vec<u8>,
}

// SAFETY: the handles are thread-safe on a shared engine (contexts only read after set-up); the
// replay tests run each target on one thread at a time.
unsafe impl Send for Fixture {}
// SAFETY: as above.
unsafe impl Sync for Fixture {}

fn ok(status: kp_status, what: &str) {
    assert_eq!(status, kp_status::Ok, "fixture: {what}");
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| unsafe {
        let mut config = ptr::null_mut();
        ok(kp_config_new(&mut config), "config");
        ok(kp_config_set_worker_threads(config, 1), "threads");
        let mut engine = ptr::null_mut();
        ok(kp_engine_new(config, &mut engine), "engine");
        let mut record = ptr::null_mut();
        ok(kp_create_key(engine, ptr::null(), &mut record), "key");
        let key_id = CStr::from_ptr(kp_record_string(
            record,
            crate::api::record::kp_field::KeyId as u32,
        ))
        .to_bytes_with_nul()
        .to_vec();
        kp_record_free(record);
        let alias = b"alias/ffi-fuzz\0".to_vec();
        ok(
            kp_create_alias(engine, alias.as_ptr().cast(), key_id.as_ptr().cast()),
            "alias",
        );
        let mut context = ptr::null_mut();
        ok(kp_context_new(&mut context), "context");
        ok(
            kp_context_add(context, c"tenant".as_ptr(), c"42".as_ptr()),
            "context pair",
        );
        let plaintext = b"ffi fuzz plaintext";
        let item = kp_encrypt_item {
            key_id: key_id.as_ptr().cast(),
            plaintext: plaintext.as_ptr(),
            plaintext_len: plaintext.len(),
            context,
            encryption_algorithm: 0,
        };
        let mut blob = vec![0u8; kp_ciphertext_len(plaintext.len())];
        let mut len = 0usize;
        ok(
            kp_encrypt(
                engine,
                &item,
                blob.as_mut_ptr(),
                blob.len(),
                &mut len,
                ptr::null_mut(),
            ),
            "encrypt",
        );
        Fixture {
            engine,
            config,
            context,
            key_id,
            alias,
            blob,
        }
    })
}

/// Arguments built for one call; they own what the pointers point into.
#[derive(Default)]
struct Arena {
    strings: Vec<Vec<u8>>,
    buffers: Vec<Vec<u8>>,
    /// 8-byte aligned blocks that pose as handles (boxed: they must not move).
    #[allow(clippy::vec_box)]
    fakes: Vec<Box<[u64; 8]>>,
}

const FREED_MAGIC: u64 = 0xdead_f7ee_dead_f7ee;

impl Arena {
    /// A handle argument for a parameter whose live handle is `live`.
    fn handle<T>(&mut self, input: &mut Input<'_>, live: *mut T) -> *mut T {
        let f = fixture();
        match input.byte() % 8 {
            0 => ptr::null_mut(),
            1 | 2 => live,
            3 => f.config.cast(),
            4 => f.context.cast(),
            5 => live.cast::<u8>().wrapping_add(1 + input.below(7)).cast(),
            6 => {
                let mut block = Box::new([0u64; 8]);
                block[0] = FREED_MAGIC;
                self.fake(block)
            }
            _ => {
                let mut block = Box::new([0u64; 8]);
                let mut magic = u64::from(input.u32()) << 32 | u64::from(input.u32());
                // Every live magic number starts with "kp"; a block posing as a live handle of
                // the right type would be a caller's contract violation, not an input.
                if magic >> 48 == 0x6b70 {
                    magic ^= 1 << 63;
                }
                block[0] = magic;
                self.fake(block)
            }
        }
    }

    fn fake<T>(&mut self, block: Box<[u64; 8]>) -> *mut T {
        self.fakes.push(block);
        let last = self
            .fakes
            .last_mut()
            .map_or(ptr::null_mut(), |b| b.as_mut_ptr());
        last.cast()
    }

    /// A string argument: NULL, arbitrary bytes (NUL-terminated), or one of `real`.
    fn string(&mut self, input: &mut Input<'_>, real: &[&[u8]]) -> *const c_char {
        match input.byte() % 4 {
            0 => ptr::null(),
            1 => {
                let mut bytes: Vec<u8> = input
                    .short_bytes()
                    .iter()
                    .copied()
                    .take_while(|&b| b != 0)
                    .collect();
                bytes.push(0);
                self.keep_string(bytes)
            }
            _ => {
                let chosen = real[input.below(real.len())].to_vec();
                self.keep_string(chosen)
            }
        }
    }

    fn keep_string(&mut self, bytes: Vec<u8>) -> *const c_char {
        self.strings.push(bytes);
        self.strings
            .last()
            .map_or(ptr::null(), |s| s.as_ptr().cast())
    }

    /// An input byte string and its length.
    fn bytes(&mut self, input: &mut Input<'_>, content: &[u8]) -> (*const u8, usize) {
        self.buffers.push(content.to_vec());
        let buffer = self.buffers.last().map_or(&[][..], |b| &b[..]);
        match input.byte() % 6 {
            0 => (ptr::null(), 0),
            1 => (ptr::null(), 1 + input.below(100)),
            2 => (buffer.as_ptr(), absurd(input)),
            3 => (buffer.as_ptr(), input.below(buffer.len() + 1)),
            _ => (buffer.as_ptr(), buffer.len()),
        }
    }

    /// An output buffer and its capacity.
    fn out(&mut self, input: &mut Input<'_>, size: usize) -> (*mut u8, usize) {
        self.buffers.push(vec![0u8; size]);
        let buffer = self
            .buffers
            .last_mut()
            .map_or(ptr::null_mut(), |b| b.as_mut_ptr());
        match input.byte() % 6 {
            0 => (ptr::null_mut(), 0),
            1 => (ptr::null_mut(), 1 + input.below(100)),
            2 => (buffer, absurd(input)),
            3 => (buffer, input.below(size + 1)),
            _ => (buffer, size),
        }
    }

    /// An out-pointer: NULL, valid, or misaligned (into an aligned block).
    fn out_ptr<T>(&mut self, input: &mut Input<'_>, valid: *mut T) -> *mut T {
        match input.byte() % 5 {
            0 => ptr::null_mut(),
            1 => {
                let block: *mut u8 = self.fake(Box::new([0u64; 8]));
                block.wrapping_add(1 + input.below(7)).cast()
            }
            _ => valid,
        }
    }
}

/// A length over `KP_MAX_LENGTH`, which the library must refuse before touching memory.
fn absurd(input: &mut Input<'_>) -> usize {
    match input.byte() % 3 {
        0 => usize::MAX,
        1 => KP_MAX_LENGTH + 1,
        _ => KP_MAX_LENGTH + 1 + usize::from(input.u16()),
    }
}

/// What every call must satisfy: a known status, never a caught panic, and a message after a
/// failure.
fn check(status: kp_status, call: &str) {
    assert_ne!(status, kp_status::Panic, "{call} reported a caught panic");
    let name = unsafe { CStr::from_ptr(kp_status_name(status as u32)) };
    assert_ne!(
        name.to_bytes(),
        b"KP_STATUS_UNKNOWN",
        "{call}: unknown status"
    );
    if status != kp_status::Ok {
        assert!(
            kp_last_error_length() > 0,
            "{call} failed ({status:?}) without a message"
        );
    }
}

fn algorithm(input: &mut Input<'_>) -> u32 {
    match input.byte() % 8 {
        0 => input.u32(),
        1 => 2,
        2 => 4,
        3 => 1,
        _ => 0,
    }
}

/// Frees a record an out-pointer received, if the call succeeded.
unsafe fn free_record(status: kp_status, out: *mut *mut kp_record, valid: *mut *mut kp_record) {
    if status == kp_status::Ok && out == valid && !(*valid).is_null() {
        kp_record_free(*valid);
        *valid = ptr::null_mut();
    }
}

unsafe fn call(input: &mut Input<'_>, arena: &mut Arena) {
    let f = fixture();
    let reals: [&[u8]; 4] = [
        &f.key_id,
        &f.alias,
        b"alias/missing\0",
        b"arn:aws:kms:us-east-1:111122223333:alias/ffi-fuzz\0",
    ];
    let mut info: *mut kp_record = ptr::null_mut();
    match input.byte() % 12 {
        0 => {
            let engine = arena.handle(input, f.engine);
            let (plaintext, plaintext_len) = {
                let content = input.short_bytes().to_vec();
                arena.bytes(input, &content)
            };
            let item = kp_encrypt_item {
                key_id: arena.string(input, &reals),
                plaintext,
                plaintext_len,
                context: arena.handle(input, f.context),
                encryption_algorithm: algorithm(input),
            };
            let (out, capacity) = arena.out(input, 400);
            let mut len = 0usize;
            let len_ptr = arena.out_ptr(input, &mut len);
            let info_ptr = arena.out_ptr(input, &mut info);
            let status = kp_encrypt(engine, &item, out, capacity, len_ptr, info_ptr);
            check(status, "kp_encrypt");
            if status == kp_status::Ok && ptr::eq(len_ptr, &len) {
                assert_eq!(len, kp_ciphertext_len(item.plaintext_len));
            }
            free_record(status, info_ptr, &mut info);
        }
        1 => {
            let engine = arena.handle(input, f.engine);
            let mut content = f.blob.clone();
            if input.flag() {
                let at = input.below(content.len());
                content[at] ^= input.byte();
            }
            if input.byte() % 4 == 0 {
                content = input.short_bytes().to_vec();
            }
            let (ciphertext, ciphertext_len) = arena.bytes(input, &content);
            let item = kp_decrypt_item {
                ciphertext,
                ciphertext_len,
                key_id: if input.flag() {
                    ptr::null()
                } else {
                    arena.string(input, &reals)
                },
                context: arena.handle(input, f.context),
                encryption_algorithm: algorithm(input),
            };
            let (out, capacity) = arena.out(input, 300);
            let mut len = 0usize;
            let len_ptr = arena.out_ptr(input, &mut len);
            let info_ptr = arena.out_ptr(input, &mut info);
            let status = kp_decrypt(engine, &item, out, capacity, len_ptr, info_ptr);
            check(status, "kp_decrypt");
            if status == kp_status::Ok {
                assert_eq!(content, f.blob, "kp_decrypt accepted a forged blob");
            }
            if status == kp_status::Ok && ptr::eq(len_ptr, &len) && !out.is_null() {
                assert_eq!(std::slice::from_raw_parts(out, len), b"ffi fuzz plaintext");
            }
            free_record(status, info_ptr, &mut info);
        }
        2 => {
            let engine = arena.handle(input, f.engine);
            let content = if input.flag() {
                f.blob.clone()
            } else {
                input.short_bytes().to_vec()
            };
            let (ciphertext, ciphertext_len) = arena.bytes(input, &content);
            let item = kp_re_encrypt_item {
                ciphertext,
                ciphertext_len,
                source_key_id: arena.string(input, &reals),
                source_context: arena.handle(input, f.context),
                source_encryption_algorithm: algorithm(input),
                destination_key_id: arena.string(input, &reals),
                destination_context: arena.handle(input, f.context),
                destination_encryption_algorithm: algorithm(input),
            };
            let (out, capacity) = arena.out(input, 600);
            let mut len = 0usize;
            let len_ptr = arena.out_ptr(input, &mut len);
            let info_ptr = arena.out_ptr(input, &mut info);
            let status = kp_re_encrypt(engine, &item, out, capacity, len_ptr, info_ptr);
            check(status, "kp_re_encrypt");
            free_record(status, info_ptr, &mut info);
        }
        3 => {
            let engine = arena.handle(input, f.engine);
            let item = kp_data_key_item {
                key_id: arena.string(input, &reals),
                context: arena.handle(input, f.context),
                key_spec: algorithm(input),
                number_of_bytes: match input.byte() % 4 {
                    0 => input.u32(),
                    1 => 0,
                    _ => u32::from(input.u16()) % 1100,
                },
            };
            let mut secret: *mut kp_secret_buffer = ptr::null_mut();
            let secret_ptr = arena.out_ptr(input, &mut secret);
            let (out, capacity) = arena.out(input, 1200);
            let mut len = 0usize;
            let len_ptr = arena.out_ptr(input, &mut len);
            let info_ptr = arena.out_ptr(input, &mut info);
            let status =
                kp_generate_data_key(engine, &item, secret_ptr, out, capacity, len_ptr, info_ptr);
            check(status, "kp_generate_data_key");
            if status == kp_status::Ok && ptr::eq(secret_ptr, &secret) {
                if ptr::eq(len_ptr, &len) {
                    assert_eq!(kp_secret_buffer_len(secret) + 82, len);
                }
                kp_secret_buffer_free(secret);
            }
            free_record(status, info_ptr, &mut info);
        }
        4 => {
            let engine = arena.handle(input, f.engine);
            let n = match input.byte() % 4 {
                0 => usize::MAX,
                _ => usize::from(input.u16()) % 1100,
            };
            let (out, capacity) = arena.out(input, 1100);
            let status = kp_generate_random(engine, n, out, capacity);
            check(status, "kp_generate_random");
        }
        5 => {
            let mut context: *mut kp_context = ptr::null_mut();
            check(kp_context_new(&mut context), "kp_context_new");
            let mut target = arena.handle(input, context);
            if target == f.context {
                // The fixture's context stays as it is, so that inputs replay alike.
                target = context;
            }
            let status = kp_context_add(
                target,
                arena.string(input, &reals),
                arena.string(input, &reals),
            );
            check(status, "kp_context_add");
            let _ = kp_context_len(arena.handle(input, context));
            kp_context_free(context);
            // Freeing a handle of another type, or NULL, is refused and leaves it alone.
            if input.flag() {
                kp_context_free(f.config.cast());
                kp_context_free(ptr::null_mut());
            }
        }
        6 => {
            let engine = arena.handle(input, f.engine);
            let key = arena.string(input, &reals);
            let mut record: *mut kp_record = ptr::null_mut();
            let out = arena.out_ptr(input, &mut record);
            let status = kp_describe_key(engine, key, out);
            check(status, "kp_describe_key");
            if status == kp_status::Ok && ptr::eq(out, &record) {
                for _ in 0..4 {
                    let field = u32::from(input.byte()) % 40;
                    let target = arena.handle(input, record);
                    let _ = kp_record_string(target, field);
                    let mut int = 0i64;
                    let _ = kp_record_int(target, field, arena.out_ptr(input, &mut int));
                    let mut flag = false;
                    let _ = kp_record_bool(target, field, arena.out_ptr(input, &mut flag));
                }
                kp_record_free(record);
            }
        }
        7 => {
            let engine = arena.handle(input, f.engine);
            let name = arena.string(input, &[b"alias/ffi-temp\0", b"alias/aws/x\0", b"x\0"]);
            let status = kp_create_alias(engine, name, arena.string(input, &reals));
            check(status, "kp_create_alias");
            let status = kp_delete_alias(engine, name);
            check(status, "kp_delete_alias");
        }
        8 => {
            let count = input.below(4);
            let mut items = Vec::new();
            for _ in 0..count {
                let content = input.short_bytes().to_vec();
                let (plaintext, plaintext_len) = arena.bytes(input, &content);
                items.push(kp_encrypt_item {
                    key_id: arena.string(input, &reals),
                    plaintext,
                    plaintext_len,
                    context: ptr::null(),
                    encryption_algorithm: algorithm(input),
                });
            }
            let items_ptr = if input.byte() % 5 == 0 {
                ptr::null()
            } else {
                items.as_ptr()
            };
            let mut sizes = [0usize; 4];
            let mut total = 0usize;
            let status = kp_encrypt_batch_sizes(
                items_ptr,
                count,
                arena.out_ptr(input, sizes.as_mut_ptr()),
                arena.out_ptr(input, &mut total),
            );
            check(status, "kp_encrypt_batch_sizes");
            let mut outputs: Vec<kp_out> = (0..count)
                .map(|_| {
                    let (data, capacity) = arena.out(input, 200);
                    kp_out {
                        data,
                        capacity,
                        len: 0,
                        status: 0,
                    }
                })
                .collect();
            let engine = arena.handle(input, f.engine);
            let status = kp_encrypt_batch(engine, items_ptr, count, outputs.as_mut_ptr());
            check(status, "kp_encrypt_batch");
            for output in &outputs {
                assert_ne!(output.status, kp_status::Panic as u32);
            }
            let decrypt_items = [kp_decrypt_item {
                ciphertext: f.blob.as_ptr(),
                ciphertext_len: if input.flag() {
                    f.blob.len()
                } else {
                    absurd(input)
                },
                key_id: ptr::null(),
                context: ptr::null(),
                encryption_algorithm: algorithm(input),
            }];
            let status = kp_decrypt_batch_sizes(
                decrypt_items.as_ptr(),
                1,
                arena.out_ptr(input, sizes.as_mut_ptr()),
                ptr::null_mut(),
            );
            check(status, "kp_decrypt_batch_sizes");
        }
        9 => {
            let engine = arena.handle(input, f.engine);
            let len = match input.byte() % 3 {
                0 => absurd(input),
                _ => usize::from(input.u16()) % 5000,
            };
            let mut buffer: *mut kp_secret_buffer = ptr::null_mut();
            let out = arena.out_ptr(input, &mut buffer);
            let status = kp_secret_buffer_new(engine, len, out);
            check(status, "kp_secret_buffer_new");
            if status == kp_status::Ok && ptr::eq(out, &buffer) {
                assert_eq!(kp_secret_buffer_len(buffer), len);
                let data = kp_secret_buffer_data(buffer);
                assert!(!data.is_null());
                std::slice::from_raw_parts_mut(data, len).fill(0x5A);
                kp_secret_buffer_free(buffer);
            }
        }
        10 => {
            // Pure functions: any value.
            let value = u32::from_be_bytes(input.bytes(4).try_into().unwrap_or([0; 4]));
            let _ = CStr::from_ptr(kp_status_name(value));
            let name = kp_status_exception_name(value);
            if !name.is_null() {
                let _ = CStr::from_ptr(name);
            }
            let n = usize::try_from(input.u32()).unwrap_or(usize::MAX);
            let c = kp_ciphertext_len(n);
            assert!(c == 0 || c == n + 82);
            let m = kp_ciphertext_max_len(n);
            assert!((m == 0) == (c == 0) && (m == 0 || m == c + 256));
            let p = kp_plaintext_len(n);
            // Exact for a keyplane blob; capped at the largest plaintext for longer (external
            // key store) blobs, whose exact plaintext `kp_blob_plaintext_len` reads.
            assert!(p == 0 || (p + 82 <= n && p <= 1 << 20));
        }
        _ => {
            let (buf, capacity) = arena.out(input, 512);
            let mut len = 0usize;
            let status =
                kp_last_error_message(buf.cast(), capacity, arena.out_ptr(input, &mut len));
            assert_ne!(status, kp_status::Panic);
        }
    }
}

/// Runs one input.
pub fn run(data: &[u8]) {
    let mut input = Input::new(data);
    let mut calls = 0;
    while !input.is_empty() && calls < 16 {
        let mut arena = Arena::default();
        unsafe { call(&mut input, &mut arena) };
        calls += 1;
    }
}
