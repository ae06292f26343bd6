#![allow(dead_code)] // Each test crate that includes this helper uses part of it.
//! How the engine's tests read a result: the service's exception name of an error, one source for
//! every test file (`#[path = "support/outcome.rs"] mod outcome;`).

/// The exception name of the error `result` must be (`NotFoundException`, ...); panics on `Ok`.
#[track_caller]
pub fn code<T>(result: keyplane::Result<T>) -> &'static str {
    match result {
        Ok(_) => panic!("expected an error, got Ok"),
        Err(e) => e.code(),
    }
}

/// `"ok"` or the error's exception name: compact expectations.
pub fn outcome<T>(result: keyplane::Result<T>) -> &'static str {
    match result {
        Ok(_) => "ok",
        Err(e) => e.code(),
    }
}
