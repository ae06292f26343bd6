//! cargo-fuzz target `decrypt`: see `fuzz/targets/decrypt.rs` for what it checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| keyplane_fuzz::decrypt::run(data));
