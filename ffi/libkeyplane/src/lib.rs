//! libkeyplane.so and libkeyplane.a: the C ABI of keyplane, as C programs link it.
//!
//! Everything is in `keyplane-ffi` (`ffi/src`); linking it here is enough for the cdylib and the
//! staticlib to export its `kp_*` functions (scripts/test-c checks that they export nothing else).
//! The header is `include/keyplane.h`, generated from `ffi/src` by cbindgen.

pub use keyplane_ffi::api;
