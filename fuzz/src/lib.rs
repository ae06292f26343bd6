//! The fuzz targets' bodies, compiled once for every cargo-fuzz binary and for the replay test.
//!
//! Each target is a module of `targets/` with a `run(&[u8])` function; the binaries in
//! `fuzz_targets/` hand it libFuzzer's input. The main workspace's tests compile the same files
//! and replay every committed corpus on the stable toolchain: `engine/tests/fuzz_replay.rs` (the
//! engine's targets), `server/tests/fuzz_replay.rs` (`sigv4_parse`, `request_parse`,
//! `xks_request`) and `ffi/tests/fuzz_replay.rs` (`ffi_abi`).

// The C ABI (keyplane-ffi, the code of libkeyplane): the `ffi_abi` target calls its functions as C
// calls them.
use keyplane_ffi::api;

#[path = "../targets/audit_verify.rs"]
pub mod audit_verify;
#[path = "../targets/ciphertext_parse.rs"]
pub mod ciphertext_parse;
#[path = "../targets/common.rs"]
pub mod common;
#[path = "../targets/context_encode.rs"]
pub mod context_encode;
#[path = "../targets/data_keys.rs"]
pub mod data_keys;
#[path = "../targets/decrypt.rs"]
pub mod decrypt;
#[path = "../targets/envelope_parse.rs"]
pub mod envelope_parse;
#[path = "../targets/ffi_abi.rs"]
pub mod ffi_abi;
#[path = "../targets/key_policy.rs"]
pub mod key_policy;
#[path = "../targets/sigv4_parse.rs"]
pub mod sigv4_parse;
#[path = "../targets/request_parse.rs"]
pub mod request_parse;
#[path = "../targets/store_records.rs"]
pub mod store_records;
#[path = "../targets/xks_request.rs"]
pub mod xks_request;

/// A target's body: runs one input, panicking when a property fails.
pub type Run = fn(&[u8]);

/// Every target, by name (the name of its binary and of its corpus directory).
pub const TARGETS: &[(&str, Run)] = &[
    ("ciphertext_parse", ciphertext_parse::run),
    ("decrypt", decrypt::run),
    ("context_encode", context_encode::run),
    ("key_policy", key_policy::run),
    ("audit_verify", audit_verify::run),
    ("data_keys", data_keys::run),
    ("ffi_abi", ffi_abi::run),
    ("store_records", store_records::run),
    ("sigv4_parse", sigv4_parse::run),
    ("request_parse", request_parse::run),
    ("envelope_parse", envelope_parse::run),
    ("xks_request", xks_request::run),
];
