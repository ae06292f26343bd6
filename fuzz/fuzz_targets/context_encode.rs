//! cargo-fuzz target `context_encode`: see `fuzz/targets/context_encode.rs` for what it checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| keyplane_fuzz::context_encode::run(data));
