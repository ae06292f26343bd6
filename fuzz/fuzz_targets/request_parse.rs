//! cargo-fuzz target `request_parse`: see `fuzz/targets/request_parse.rs` for what it checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| keyplane_fuzz::request_parse::run(data));
