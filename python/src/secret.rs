//! `SecretBytes`: plaintext data keys, private keys and shared secrets for Python code that wants
//! them zeroed. The bytes live in Rust memory (the engine's `SecretBytes`); `close()` (or leaving
//! a `with` block) zeroes them in place, and collection zeroes and frees them. `bytes(secret)` makes
//! an ordinary Python copy, which Python does not zero: use it only where a library needs `bytes`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyByteArray, PyBytes};
use zeroize::Zeroize;

/// Secrets zeroed so far, by `close()` or by collection (tests observe the collection path).
static ZEROED: AtomicU64 = AtomicU64::new(0);

/// Secret bytes held in Rust memory and zeroed when closed or collected.
#[pyclass(module = "keyplane._keyplane", frozen)]
pub struct SecretBytes {
    state: Mutex<State>,
}

struct State {
    bytes: keyplane::SecretBytes,
    closed: bool,
}

impl SecretBytes {
    pub(crate) fn new(bytes: keyplane::SecretBytes) -> Self {
        SecretBytes {
            state: Mutex::new(State {
                bytes,
                closed: false,
            }),
        }
    }

    fn with<T>(&self, f: impl FnOnce(&[u8]) -> PyResult<T>) -> PyResult<T> {
        let state = self
            .state
            .lock()
            .map_err(|_| PyRuntimeError::new_err("SecretBytes lock poisoned"))?;
        if state.closed {
            return Err(PyValueError::new_err(
                "the secret is closed (its bytes were zeroed)",
            ));
        }
        f(state.bytes.expose())
    }
}

impl Drop for SecretBytes {
    fn drop(&mut self) {
        if let Ok(state) = self.state.get_mut() {
            state.bytes.expose_mut().zeroize();
        }
        // The engine's SecretBytes zeroes its buffer again as it is freed.
        ZEROED.fetch_add(1, Ordering::Relaxed);
    }
}

#[pymethods]
impl SecretBytes {
    /// A copy of `data` held as a secret (for tests and for secrets made in Python).
    #[new]
    fn py_new(data: &Bound<'_, PyAny>) -> PyResult<Self> {
        let data = crate::convert::input(data, "data")?;
        Ok(SecretBytes::new(keyplane::SecretBytes::from_vec(
            data.to_vec(),
        )))
    }

    /// Zeroes the bytes now; later reads raise ValueError. Closing twice is allowed.
    fn close(&self) -> PyResult<()> {
        let mut state = self
            .state
            .lock()
            .map_err(|_| PyRuntimeError::new_err("SecretBytes lock poisoned"))?;
        if !state.closed {
            state.bytes.expose_mut().zeroize();
            state.closed = true;
        }
        Ok(())
    }

    /// Whether `close()` has zeroed the bytes.
    #[getter]
    fn closed(&self) -> bool {
        self.state.lock().map(|s| s.closed).unwrap_or(true)
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    #[pyo3(signature = (*_exc_info))]
    fn __exit__(&self, _exc_info: &Bound<'_, pyo3::types::PyTuple>) -> PyResult<bool> {
        self.close()?;
        Ok(false)
    }

    fn __len__(&self) -> PyResult<usize> {
        self.with(|b| Ok(b.len()))
    }

    /// A `bytes` copy (not zeroed by Python).
    fn __bytes__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        self.with(|b| Ok(PyBytes::new(py, b)))
    }

    /// A `bytearray` copy, which the caller can zero (`buf[:] = bytes(len(buf))`).
    fn to_bytearray<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyByteArray>> {
        self.with(|b| Ok(PyByteArray::new(py, b)))
    }

    fn __repr__(&self) -> String {
        match self.state.lock() {
            Ok(s) if !s.closed => format!("SecretBytes({} bytes, redacted)", s.bytes.len()),
            _ => "SecretBytes(closed)".to_owned(),
        }
    }

    /// The address of the bytes in memory (tests read it to see them zeroed).
    fn _address(&self) -> PyResult<usize> {
        let state = self
            .state
            .lock()
            .map_err(|_| PyRuntimeError::new_err("SecretBytes lock poisoned"))?;
        Ok(state.bytes.expose().as_ptr() as usize)
    }
}

/// How many SecretBytes have been zeroed on collection since the module loaded.
#[pyfunction]
pub(crate) fn _secrets_zeroed() -> u64 {
    ZEROED.load(Ordering::Relaxed)
}
