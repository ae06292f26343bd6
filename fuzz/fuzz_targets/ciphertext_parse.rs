//! cargo-fuzz target `ciphertext_parse`: see `fuzz/targets/ciphertext_parse.rs` for what it checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| keyplane_fuzz::ciphertext_parse::run(data));
