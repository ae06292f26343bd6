//! No code. Every crate of the workspace depends on this one, whose manifest asks for the
//! dependencies they share with the features the whole workspace turns on: so a command that
//! selects one crate (`cargo test -p keyplane`) builds those dependencies, and every crate above
//! them, as the whole workspace does, and CI builds each once. `scripts/unify-features` generates
//! the manifest and checks that it still does this.
#![no_std]
