//! cargo-fuzz target `data_keys`: see `fuzz/targets/data_keys.rs` for what it checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| keyplane_fuzz::data_keys::run(data));
