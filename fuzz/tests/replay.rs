//! Replays every committed corpus (`fuzz/corpus/<target>/`) through every target on the stable
//! toolchain, as ordinary tests, so that a crash once found and added to a corpus stays fixed.
//! `scripts/test-fuzz` runs this; the main workspace replays the same corpora (all targets but
//! the C ABI one) in `engine/tests/fuzz_replay.rs`.

use keyplane_testkit::fuzz::replay;

#[test]
fn every_corpus_replays() {
    let failures: Vec<String> = keyplane_fuzz::TARGETS
        .iter()
        .flat_map(|(target, run)| replay(target, *run))
        .collect();
    assert!(
        failures.is_empty(),
        "{} corpus inputs fail:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
