//! Replays the committed fuzz corpora on the stable toolchain, as ordinary tests: every seed in
//! `fuzz/corpus/<target>/` and every reproducer of a crash once found in
//! `fuzz/regressions/<target>/` runs through the same target body the fuzzer runs
//! (`fuzz/targets/<target>.rs`), so a fixed crash stays fixed. The targets of crates above the
//! engine are replayed by those crates' tests: `ffi_abi` by `ffi/tests/fuzz_replay.rs`;
//! `sigv4_parse`, `request_parse` and `xks_request` by `server/tests/fuzz_replay.rs`. See
//! docs/assurance.md.

use keyplane_testkit::fuzz::{assert_replays, corpus_files, fuzz_dir};

#[path = "../../fuzz/targets/audit_verify.rs"]
mod audit_verify;
#[path = "../../fuzz/targets/ciphertext_parse.rs"]
mod ciphertext_parse;
#[path = "../../fuzz/targets/common.rs"]
mod common;
#[path = "../../fuzz/targets/context_encode.rs"]
mod context_encode;
#[path = "../../fuzz/targets/data_keys.rs"]
mod data_keys;
#[path = "../../fuzz/targets/decrypt.rs"]
mod decrypt;
#[path = "../../fuzz/targets/envelope_parse.rs"]
mod envelope_parse;
#[path = "../../fuzz/targets/key_policy.rs"]
mod key_policy;
#[path = "../../fuzz/targets/store_records.rs"]
mod store_records;

#[test]
fn ciphertext_parse_corpus() {
    assert_replays("ciphertext_parse", ciphertext_parse::run);
}

#[test]
fn decrypt_corpus() {
    assert_replays("decrypt", decrypt::run);
}

#[test]
fn context_encode_corpus() {
    assert_replays("context_encode", context_encode::run);
}

#[test]
fn key_policy_corpus() {
    assert_replays("key_policy", key_policy::run);
}

#[test]
fn audit_verify_corpus() {
    assert_replays("audit_verify", audit_verify::run);
}

#[test]
fn data_keys_corpus() {
    assert_replays("data_keys", data_keys::run);
}

#[test]
fn store_records_corpus() {
    assert_replays("store_records", store_records::run);
}

/// Every target directory of the fuzz crate is replayed here, by the server's tests or by the C
/// ABI's.
#[test]
fn every_fuzz_target_has_a_replay() {
    let replayed = [
        "ciphertext_parse",
        "decrypt",
        "context_encode",
        "key_policy",
        "audit_verify",
        "data_keys",
        "store_records",
        "envelope_parse",
        // Replayed by ffi/tests/fuzz_replay.rs.
        "ffi_abi",
        // Need keyplane-server: replayed by server/tests/fuzz_replay.rs.
        "request_parse",
        "sigv4_parse",
        "xks_request",
    ];
    for target in corpus_files(&fuzz_dir().join("fuzz_targets")) {
        let name = target
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or_default();
        assert!(
            replayed.contains(&name),
            "fuzz target {name} is not replayed"
        );
        assert!(
            !corpus_files(&fuzz_dir().join("corpus").join(name)).is_empty(),
            "fuzz target {name} has no seed corpus"
        );
    }
}

#[test]
fn envelope_parse_corpus() {
    assert_replays("envelope_parse", envelope_parse::run);
}
