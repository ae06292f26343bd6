//! Replays the committed corpus of the fuzz target `ffi_abi` (`fuzz/corpus/ffi_abi/` seeds and
//! `fuzz/regressions/ffi_abi/` crash reproducers) through the target's body on stable, so `cargo
//! test -p keyplane-ffi` keeps a crash once found fixed. The target calls the `kp_*` functions as
//! `crate::api::…` and the engine as `keyplane::…`, as it does in the fuzz crate
//! (`fuzz/src/lib.rs`). See docs/assurance.md.

// The engine, under the name the shared target files use (this crate's dependency is `kp`).
extern crate kp as keyplane;

use keyplane_ffi::api;

#[path = "../../fuzz/targets/common.rs"]
#[allow(dead_code)]
mod common;
// Written for the fuzz crate, which is outside the workspace's lints: its `unsafe fn` helpers call
// the C ABI without an inner `unsafe` block.
#[path = "../../fuzz/targets/ffi_abi.rs"]
#[allow(unsafe_op_in_unsafe_fn)]
mod ffi_abi;

use keyplane_testkit::fuzz::{assert_replays, corpus_files, fuzz_dir};

#[test]
fn the_ffi_abi_corpus_replays() {
    let seeds = corpus_files(&fuzz_dir().join("corpus").join("ffi_abi")).len();
    assert!(seeds >= 10, "the ffi_abi seed corpus has {seeds} seeds");
    assert_replays("ffi_abi", ffi_abi::run);
}
