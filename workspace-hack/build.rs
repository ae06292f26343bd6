//! Empty: a crate needs a build script for cargo to build its `[build-dependencies]`, which is
//! how this crate asks for the features of the crates that build scripts and proc-macros use.
fn main() {}
