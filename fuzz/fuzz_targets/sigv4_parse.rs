//! cargo-fuzz target `sigv4_parse`: see `fuzz/targets/sigv4_parse.rs` for what it checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| keyplane_fuzz::sigv4_parse::run(data));
