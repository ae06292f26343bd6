//! cargo-fuzz target `ffi_abi`: see `fuzz/targets/ffi_abi.rs` for what it checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| keyplane_fuzz::ffi_abi::run(data));
