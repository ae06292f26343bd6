//! libkeyplane: the C ABI of the keyplane engine.
//!
//! A thin adapter: every function checks its arguments, converts them to the engine's types, calls
//! the engine once and converts the answer back. Nothing here decides anything the engine does not.
//! The header `include/keyplane.h` is generated from these sources by cbindgen
//! (`ffi/cbindgen.toml`); `docs/c-api.md` describes the conventions.
//!
//! The sources live in [`api`] so that the benchmark (`benches/capi.rs`) can compile the very same
//! `extern "C"` functions into itself and call them beside the Rust API.
#![deny(unsafe_op_in_unsafe_fn)]
#![deny(clippy::undocumented_unsafe_blocks)]
#![warn(missing_docs)]

pub mod api;
