//! The one mapping from engine errors to Python exceptions.
//!
//! `keyplane::Error` and `PyErr` are both foreign to this crate, so `From<keyplane::Error> for
//! PyErr` cannot be written here (the orphan rule); [`Failure`] carries either an engine error or
//! a Python error, `?` works on both, and `From<Failure> for PyErr` is the single place an engine
//! error becomes an exception: an instance of the `keyplane.exceptions` class named by
//! `Error::code()` (`NotFoundException`, `DisabledException`, ...), built by
//! `keyplane.exceptions._engine_error(code, message, operation)`. Batch calls report per-item errors as
//! exception objects made by the same function ([`exception`]).

use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;

/// What a native method fails with: an engine error with the operation that failed (empty when
/// the request was refused before it reached an operation; `keyplane.client` then names it), or a
/// Python error (a wrong argument type, say).
#[derive(Debug)]
pub(crate) enum Failure {
    Engine(keyplane::Error, &'static str),
    Python(PyErr),
}

impl From<keyplane::Error> for Failure {
    fn from(e: keyplane::Error) -> Self {
        Failure::Engine(e, "")
    }
}

impl From<PyErr> for Failure {
    fn from(e: PyErr) -> Self {
        Failure::Python(e)
    }
}

impl From<Failure> for PyErr {
    fn from(failure: Failure) -> PyErr {
        match failure {
            Failure::Python(e) => e,
            Failure::Engine(e, operation) => {
                Python::attach(|py| match exception(py, &e, operation) {
                    Ok(exc) => PyErr::from_value(exc),
                    Err(import_failed) => import_failed,
                })
            }
        }
    }
}

/// The result type of native methods.
pub(crate) type Result<T> = std::result::Result<T, Failure>;

/// The exception object for an engine error (raised by single calls, returned in batch results).
pub(crate) fn exception<'py>(
    py: Python<'py>,
    e: &keyplane::Error,
    operation: &str,
) -> PyResult<Bound<'py, PyAny>> {
    static FACTORY: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
    let factory = FACTORY.get_or_try_init(py, || -> PyResult<Py<PyAny>> {
        Ok(py
            .import("keyplane.exceptions")?
            .getattr("_engine_error")?
            .unbind())
    })?;
    factory.bind(py).call1((e.code(), e.message(), operation))
}

/// A `ValidationException` for a request the engine's API cannot express.
pub(crate) fn validation(message: impl Into<String>) -> Failure {
    Failure::Engine(keyplane::Error::Validation(message.into()), "")
}

/// The service exception name of every engine error kind (`keyplane::ErrorKind::ALL`, in order),
/// so the package's tests can check that each has its class in `keyplane.exceptions`.
#[pyfunction]
pub(crate) fn _error_codes() -> Vec<&'static str> {
    keyplane::ErrorKind::ALL
        .iter()
        .map(|kind| kind.code())
        .collect()
}
