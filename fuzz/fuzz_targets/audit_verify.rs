//! cargo-fuzz target `audit_verify`: see `fuzz/targets/audit_verify.rs` for what it checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| keyplane_fuzz::audit_verify::run(data));
