//! cargo-fuzz target `xks_request`: see `fuzz/targets/xks_request.rs` for what it checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| keyplane_fuzz::xks_request::run(data));
