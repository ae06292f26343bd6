//! Replays the committed corpora of the fuzz targets `sigv4_parse`, `request_parse` and
//! `xks_request` (`fuzz/corpus/<target>/` seeds and `fuzz/regressions/<target>/` crash
//! reproducers) through the targets' bodies on stable, so `cargo test -p keyplane-server` keeps a
//! crash once found fixed.
//! See docs/assurance.md.

#[path = "../../fuzz/targets/common.rs"]
#[allow(dead_code)]
mod common;
#[path = "../../fuzz/targets/request_parse.rs"]
mod request_parse;
#[path = "../../fuzz/targets/sigv4_parse.rs"]
mod sigv4_parse;
#[path = "../../fuzz/targets/xks_request.rs"]
mod xks_request;

use keyplane_testkit::fuzz::{assert_replays, corpus_files, fuzz_dir};

/// Each corpus holds at least ten seeds, as it did when these targets were written.
fn assert_seeds(target: &str) {
    let seeds = corpus_files(&fuzz_dir().join("corpus").join(target)).len();
    assert!(
        seeds >= 10,
        "the {target} seed corpus has {seeds} seeds, not 10 or more"
    );
}

#[test]
fn the_sigv4_parse_corpus_replays() {
    assert_seeds("sigv4_parse");
    assert_replays("sigv4_parse", sigv4_parse::run);
}

#[test]
fn the_xks_request_corpus_replays() {
    assert_seeds("xks_request");
    assert_replays("xks_request", xks_request::run);
}

#[test]
fn the_request_parse_corpus_replays() {
    assert_seeds("request_parse");
    assert_replays("request_parse", request_parse::run);
}
