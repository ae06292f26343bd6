//! cargo-fuzz target `key_policy`: see `fuzz/targets/key_policy.rs` for what it checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| keyplane_fuzz::key_policy::run(data));
