//! libkeyplane: the C ABI of the keyplane engine.
//!
//! A thin adapter: every function checks its arguments, converts them to the engine's types, calls
//! the engine once and converts the answer back. Nothing here decides anything the engine does not.
//! The header `include/keyplane.h` is generated from these sources by cbindgen
//! (`ffi/cbindgen.toml`); `docs/c-api.md` describes the conventions.
//!
//! This crate is the C ABI as a Rust library (`keyplane_ffi`); `ffi/libkeyplane` links it into
//! libkeyplane.so and libkeyplane.a. The benchmark (`benches/capi.rs`), the `ffi_abi` fuzz target
//! and the harness's `--compare` call the very same `extern "C"` functions through [`api`].
#![deny(unsafe_op_in_unsafe_fn)]
#![deny(clippy::undocumented_unsafe_blocks)]
#![warn(missing_docs)]

pub mod api;
