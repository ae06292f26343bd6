//! cargo-fuzz target `envelope_parse`: see `fuzz/targets/envelope_parse.rs` for what it checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| keyplane_fuzz::envelope_parse::run(data));
