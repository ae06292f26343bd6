//! cargo-fuzz target `store_records`: see `fuzz/targets/store_records.rs` for what it checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| keyplane_fuzz::store_records::run(data));
