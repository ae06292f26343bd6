//! Replays the committed corpora of the fuzz targets `sigv4_parse` and `xks_request`
//! (`fuzz/corpus/<target>/` seeds and `fuzz/regressions/<target>/` crash reproducers) through the
//! targets' bodies on stable, so `cargo test -p keyplane-server` keeps a crash once found fixed.
//! See docs/assurance.md.

#[path = "../../fuzz/targets/common.rs"]
#[allow(dead_code)]
mod common;
#[path = "../../fuzz/targets/sigv4_parse.rs"]
mod sigv4_parse;
#[path = "../../fuzz/targets/xks_request.rs"]
mod xks_request;

#[test]
fn the_sigv4_parse_corpus_replays() {
    keyplane_testkit::fuzz::assert_replays("sigv4_parse", sigv4_parse::run);
}

#[test]
fn the_xks_request_corpus_replays() {
    keyplane_testkit::fuzz::assert_replays("xks_request", xks_request::run);
}
