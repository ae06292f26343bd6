//! Conversions between Python values and the engine's types: byte inputs, encryption contexts,
//! the service's enumerations, timestamps and response dictionaries.

use std::str::FromStr;

use keyplane::{EncryptionContext, Timestamp};
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::pybacked::PyBackedBytes;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyByteArray, PyBytes, PyDict, PyList, PyMemoryView};
use zeroize::Zeroizing;

use crate::errors::Result;

/// Byte input taken from Python: `bytes` read in place (the object is kept alive and is
/// immutable, so the engine may read it with the GIL released); `bytearray` and `memoryview`
/// copied once, because the stable ABI this module is built for (abi3, CPython 3.9+) has no buffer
/// protocol before 3.11 and a bytearray may change while the GIL is released. Copies are zeroed
/// when dropped.
pub(crate) enum Input {
    Shared(PyBackedBytes),
    Copied(Zeroizing<Vec<u8>>),
}

impl std::ops::Deref for Input {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Input::Shared(bytes) => bytes,
            Input::Copied(bytes) => bytes,
        }
    }
}

/// Reads a bytes-like argument.
pub(crate) fn input(obj: &Bound<'_, PyAny>, name: &str) -> PyResult<Input> {
    if let Ok(bytes) = obj.cast::<PyBytes>() {
        return Ok(Input::Shared(PyBackedBytes::from(bytes.clone())));
    }
    if let Ok(array) = obj.cast::<PyByteArray>() {
        return Ok(Input::Copied(Zeroizing::new(array.to_vec())));
    }
    if obj.is_instance_of::<PyMemoryView>() {
        let bytes = obj.call_method0("tobytes")?.cast_into::<PyBytes>()?;
        return Ok(Input::Shared(PyBackedBytes::from(bytes)));
    }
    Err(PyTypeError::new_err(format!(
        "{name} must be bytes, bytearray or memoryview, not {}",
        obj.get_type().name()?
    )))
}

/// Reads a sequence of bytes-like arguments.
pub(crate) fn inputs(seq: &Bound<'_, PyAny>, name: &str) -> PyResult<Vec<Input>> {
    if seq.is_instance_of::<PyBytes>() || seq.is_instance_of::<PyByteArray>() {
        return Err(PyTypeError::new_err(format!(
            "{name} must be a sequence of bytes-like objects, not a single bytes-like object"
        )));
    }
    seq.try_iter()?
        .map(|item| input(&item?, name))
        .collect::<PyResult<Vec<_>>>()
}

/// Reads an optional encryption context (a `dict[str, str]`).
pub(crate) fn context(obj: Option<&Bound<'_, PyAny>>) -> PyResult<Option<EncryptionContext>> {
    match obj {
        None => Ok(None),
        Some(obj) if obj.is_none() => Ok(None),
        Some(obj) => Ok(Some(obj.extract()?)),
    }
}

/// Reads optional per-item encryption contexts; their number must match the items'.
pub(crate) fn contexts(
    obj: Option<&Bound<'_, PyAny>>,
    items: usize,
) -> Result<Option<Vec<Option<EncryptionContext>>>> {
    let Some(obj) = obj.filter(|o| !o.is_none()) else {
        return Ok(None);
    };
    let list: Vec<Option<EncryptionContext>> = obj.extract()?;
    if list.len() != items {
        return Err(crate::errors::validation(format!(
            "encryption_contexts has {} entries for {items} items",
            list.len()
        )));
    }
    Ok(Some(list))
}

/// Parses one of the service's enumeration values (`SYMMETRIC_DEFAULT`, `RSA_2048`, ...); an
/// unknown spelling is a ValidationException, as in the service.
pub(crate) fn parse<T: FromStr<Err = keyplane::Error>>(value: &str) -> Result<T> {
    Ok(value.parse::<T>()?)
}

/// Parses an optional enumeration value.
pub(crate) fn parse_opt<T: FromStr<Err = keyplane::Error>>(
    value: Option<&str>,
) -> Result<Option<T>> {
    value.map(parse).transpose()
}

/// A timestamp as a timezone-aware `datetime` in UTC.
pub(crate) fn datetime<'py>(py: Python<'py>, ts: Timestamp) -> PyResult<Bound<'py, PyAny>> {
    static FROM_TIMESTAMP: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
    static UTC: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
    let from_timestamp = FROM_TIMESTAMP.get_or_try_init(py, || -> PyResult<Py<PyAny>> {
        Ok(py
            .import("datetime")?
            .getattr("datetime")?
            .getattr("fromtimestamp")?
            .unbind())
    })?;
    let utc = UTC.get_or_try_init(py, || -> PyResult<Py<PyAny>> {
        Ok(py
            .import("datetime")?
            .getattr("timezone")?
            .getattr("utc")?
            .unbind())
    })?;
    from_timestamp
        .bind(py)
        .call1((ts.0 as f64 / 1000.0, utc.bind(py)))
}

/// A timestamp from a `datetime` (a naive one is taken as UTC, as botocore does) or from epoch
/// seconds (an int or float).
pub(crate) fn timestamp(obj: &Bound<'_, PyAny>) -> PyResult<Timestamp> {
    let seconds: f64 = if obj.hasattr("timestamp")? && obj.hasattr("tzinfo")? {
        let aware = if obj.getattr("tzinfo")?.is_none() {
            let utc = obj
                .py()
                .import("datetime")?
                .getattr("timezone")?
                .getattr("utc")?;
            let kwargs = pyo3::types::PyDict::new(obj.py());
            kwargs.set_item("tzinfo", utc)?;
            obj.call_method("replace", (), Some(&kwargs))?
        } else {
            obj.clone()
        };
        aware.call_method0("timestamp")?.extract()?
    } else {
        obj.extract().map_err(|_| {
            PyTypeError::new_err(format!(
                "a time must be a datetime or epoch seconds, not {}",
                obj.get_type()
                    .name()
                    .map(|n| n.to_string())
                    .unwrap_or_default()
            ))
        })?
    };
    if !seconds.is_finite() {
        return Err(PyTypeError::new_err("a time must be finite"));
    }
    Ok(Timestamp((seconds * 1000.0).round() as i64))
}

/// Builds a response dictionary.
pub(crate) struct Out<'py>(pub(crate) Bound<'py, PyDict>);

impl<'py> Out<'py> {
    pub(crate) fn new(py: Python<'py>) -> Self {
        Out(PyDict::new(py))
    }

    fn py(&self) -> Python<'py> {
        self.0.py()
    }

    /// Sets `key` to a string, integer or boolean.
    pub(crate) fn set<V: IntoPyObject<'py>>(self, key: &str, value: V) -> PyResult<Self> {
        self.0.set_item(key, value)?;
        Ok(self)
    }

    /// Sets `key` when the value is present.
    pub(crate) fn opt<V: IntoPyObject<'py>>(self, key: &str, value: Option<V>) -> PyResult<Self> {
        match value {
            Some(v) => self.set(key, v),
            None => Ok(self),
        }
    }

    /// Sets `key` to `bytes`.
    pub(crate) fn bytes(self, key: &str, value: &[u8]) -> PyResult<Self> {
        let b = PyBytes::new(self.py(), value);
        self.set(key, b)
    }

    /// Sets `key` to a UTC `datetime`.
    pub(crate) fn date(self, key: &str, value: Timestamp) -> PyResult<Self> {
        let d = datetime(self.py(), value)?;
        self.set(key, d)
    }

    /// Sets `key` to a UTC `datetime` when present.
    pub(crate) fn date_opt(self, key: &str, value: Option<Timestamp>) -> PyResult<Self> {
        match value {
            Some(v) => self.date(key, v),
            None => Ok(self),
        }
    }

    /// Sets `key` to a list of the service's spellings, when the list is not empty (as the
    /// service omits empty algorithm lists).
    pub(crate) fn names<T: std::fmt::Display>(self, key: &str, values: &[T]) -> PyResult<Self> {
        if values.is_empty() {
            return Ok(self);
        }
        let list = PyList::new(self.py(), values.iter().map(|v| v.to_string()))?;
        self.set(key, list)
    }

    pub(crate) fn done(self) -> Bound<'py, PyDict> {
        self.0
    }
}

/// The deprecated `CustomerMasterKeySpec` value of a key spec: the service sets it only for specs
/// that its enumeration has (not, for example, ECC_NIST_EDWARDS25519 or ML_DSA_*).
pub(crate) fn customer_master_key_spec(spec: keyplane::KeySpec) -> Option<&'static str> {
    use keyplane::KeySpec::*;
    match spec {
        EccNistEdwards25519 | MlDsa44 | MlDsa65 | MlDsa87 => None,
        other => Some(other.as_str()),
    }
}
