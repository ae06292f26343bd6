//! Batch calls into a caller's `bytearray`: `encrypt_batch_into` and `decrypt_batch_into` write
//! every item's output straight into one `bytearray` the caller keeps from call to call, and
//! return a `memoryview` of it per item (or the exception object, as the other batch calls). No
//! `bytes` object is made and nothing is copied after the engine writes, so a kept buffer runs
//! large batches of large items at the Rust `*_batch_into` speed: no allocation and no fresh page
//! per call.
//!
//! The stable ABI this module is built for (abi3, CPython 3.9+) has no buffer protocol for our own
//! classes before 3.11, so the buffer is a `bytearray` (`PyByteArray_*` is in the limited API). It
//! is pinned for the call by a `memoryview` of it (an export: CPython refuses to resize or free a
//! bytearray with live exports), and the results are slices of that view. It grows when the batch
//! needs more room than it has, which is refused while views of it are alive. Each item's room:
//! for encrypt, the longest blob the plaintext can make (`ciphertext::max_blob_len`: room for a
//! key in an external key store; 512 bytes at least under an RSA algorithm); for decrypt, the
//! plaintext length the blob's framing gives (the blob's length under an RSA algorithm).

use keyplane::{ciphertext, EncryptionAlgorithm};
use pyo3::exceptions::{PyBufferError, PyTypeError};
use pyo3::prelude::*;
use pyo3::types::{PyByteArray, PyList, PyMemoryView, PySlice};

use crate::batch_items::BatchItems;
use crate::engine::Engine;
use crate::errors::{exception, Result};

/// Most bytes an RSA key's ciphertext or plaintext takes (RSA_4096's modulus).
const RSA_ROOM: usize = 512;

/// The caller's output buffer, pinned for the call.
struct Pinned<'py> {
    array: Bound<'py, PyByteArray>,
    /// A view of `array`: while it lives, CPython refuses to resize or free the array, so its
    /// memory stays where it is while the engine writes with the GIL released. The results are
    /// slices of it.
    view: Bound<'py, PyMemoryView>,
}

/// Takes `out` (a bytearray), grows it to at least `needed` bytes, and pins it.
fn pin<'py>(out: &Bound<'py, PyAny>, needed: usize) -> PyResult<Pinned<'py>> {
    let array = out.cast::<PyByteArray>().map_err(|_| {
        PyTypeError::new_err(format!(
            "out must be a bytearray, not {}",
            out.get_type()
                .name()
                .map(|n| n.to_string())
                .unwrap_or_default()
        ))
    })?;
    let len = array.len();
    if len < needed {
        if let Err(e) = array.resize(needed) {
            if !e.is_instance_of::<PyBufferError>(out.py()) {
                return Err(e);
            }
            let refused = PyBufferError::new_err(format!(
                "out is a bytearray of {len} bytes and this batch needs {needed}, but it cannot \
                 grow while memoryviews of it are alive (the results of an earlier call?): \
                 release them, or pass a bytearray of at least {needed} bytes"
            ));
            refused.set_cause(out.py(), Some(e));
            return Err(refused);
        }
    }
    let view = PyMemoryView::from(array.as_any())?;
    Ok(Pinned {
        array: array.clone(),
        view,
    })
}

/// Splits the first `rooms.sum()` bytes of the pinned array into one slice per room, hands them
/// to `f` with the GIL released, and returns what it answers.
fn with_rooms<T: Send>(
    engine: &Engine,
    py: Python<'_>,
    pinned: &Pinned<'_>,
    rooms: &[usize],
    f: impl FnOnce(&keyplane::Engine, &mut [&mut [u8]]) -> T + Send,
) -> T {
    let total: usize = rooms.iter().sum();
    assert!(total <= pinned.array.len(), "pin() grew the array");
    if total == 0 {
        let mut outputs: Vec<&mut [u8]> = rooms.iter().map(|_| <&mut [u8]>::default()).collect();
        return engine.run(py, true, |e| f(e, &mut outputs));
    }
    let data = pinned.array.data();
    // SAFETY: `data` points at the bytearray's `len()` bytes (PyByteArray_AsString; not null, as
    // the array is not empty), and `total` is at most that. The bytes stay valid for the whole call: `pinned.view` is a live export of
    // the array, so CPython refuses to resize (move) or free it, and `pinned.array` holds a strong
    // reference. No Rust reference to these bytes exists besides this slice, which ends with this
    // function. What remains is the bytearray's own Python users: another thread writing into
    // `out` while the GIL is released would race with the engine's writes (garbage results, as
    // for any `readinto`-style call that releases the GIL), which the API documents as the
    // caller's to avoid.
    #[allow(unsafe_code)]
    let buffer: &mut [u8] = unsafe { std::slice::from_raw_parts_mut(data, total) };
    let mut outputs = Vec::with_capacity(rooms.len());
    let mut rest = buffer;
    for &room in rooms {
        let (head, tail) = std::mem::take(&mut rest).split_at_mut(room);
        outputs.push(head);
        rest = tail;
    }
    engine.run(py, true, |e| f(e, &mut outputs))
}

/// One result per item: a memoryview of the bytes item `i` wrote at the start of its room, or its
/// exception object.
fn views<'py>(
    py: Python<'py>,
    operation: &str,
    pinned: &Pinned<'py>,
    rooms: &[usize],
    written: keyplane::WrittenItems,
) -> PyResult<Bound<'py, PyList>> {
    let mut start = 0usize;
    let mut items = Vec::with_capacity(written.len());
    for (room, result) in rooms.iter().zip(written.iter()) {
        items.push(match result {
            Ok(n) => {
                let n = n.min(*room);
                let slice = PySlice::new(py, start as isize, (start + n) as isize, 1);
                pinned.view.get_item(slice)?
            }
            Err(e) => exception(py, e, operation)?,
        });
        start += room;
    }
    PyList::new(py, items)
}

/// Runs a batch into `out`: pins it (grown to the rooms' total), lends `f` one room per item
/// with the GIL released, and answers one result per item as [`views`] makes them.
fn run_into<'py>(
    engine: &Engine,
    py: Python<'py>,
    out: &Bound<'py, PyAny>,
    operation: &str,
    rooms: &[usize],
    f: impl FnOnce(&keyplane::Engine, &mut [&mut [u8]]) -> keyplane::WrittenItems + Send,
) -> PyResult<Bound<'py, PyList>> {
    let pinned = pin(out, rooms.iter().sum())?;
    let written = with_rooms(engine, py, &pinned, rooms, f);
    views(py, operation, &pinned, rooms, written)
}

#[pymethods]
impl Engine {
    /// Encrypts every plaintext under one key into `out` (a bytearray, grown when too small):
    /// one memoryview of `out` per item, or the exception object.
    #[pyo3(signature = (*, key_id, plaintexts, out, encryption_context = None, encryption_contexts = None, encryption_algorithm = None))]
    fn encrypt_batch_into<'py>(
        &self,
        py: Python<'py>,
        key_id: &str,
        plaintexts: &Bound<'py, PyAny>,
        out: &Bound<'py, PyAny>,
        encryption_context: Option<&Bound<'py, PyAny>>,
        encryption_contexts: Option<&Bound<'py, PyAny>>,
        encryption_algorithm: Option<&str>,
    ) -> Result<Bound<'py, PyList>> {
        let items = BatchItems::read(
            plaintexts,
            "plaintexts",
            encryption_context,
            encryption_contexts,
            encryption_algorithm,
        )?;
        let requests = items.encrypt_requests(key_id);
        // A plaintext the engine refuses for its length (empty, or over the engine's limit) gets
        // no room: no caller can make this grow `out` for what is refused.
        let max = self.inner.config().max_plaintext_bytes;
        let floor = match items.encryption_algorithm() {
            EncryptionAlgorithm::SymmetricDefault => 0,
            _ => RSA_ROOM,
        };
        let rooms: Vec<usize> = items
            .inputs
            .iter()
            .map(|p| match p.len() {
                0 => 0,
                n if n <= max => ciphertext::max_blob_len(n).max(floor),
                _ => 0,
            })
            .collect();
        Ok(run_into(self, py, out, "Encrypt", &rooms, |e, outputs| {
            e.encrypt_batch_into(&requests, outputs)
        })?)
    }

    /// Decrypts every ciphertext into `out` (a bytearray, grown when too small): one memoryview
    /// of `out` per item, or the exception object. The plaintexts are the caller's to zero.
    #[pyo3(signature = (*, ciphertext_blobs, out, encryption_context = None, encryption_contexts = None, key_id = None, encryption_algorithm = None))]
    fn decrypt_batch_into<'py>(
        &self,
        py: Python<'py>,
        ciphertext_blobs: &Bound<'py, PyAny>,
        out: &Bound<'py, PyAny>,
        encryption_context: Option<&Bound<'py, PyAny>>,
        encryption_contexts: Option<&Bound<'py, PyAny>>,
        key_id: Option<&str>,
        encryption_algorithm: Option<&str>,
    ) -> Result<Bound<'py, PyList>> {
        let items = BatchItems::read(
            ciphertext_blobs,
            "ciphertext_blobs",
            encryption_context,
            encryption_contexts,
            encryption_algorithm,
        )?;
        let requests = items.decrypt_requests(key_id);
        // A symmetric blob's plaintext length is in its framing (what the engine checks the room
        // against; a blob that does not parse fails before anything is written, so it gets no
        // room); an RSA plaintext is shorter than its ciphertext. A blob longer than the engine
        // accepts gets no room.
        let longest = ciphertext::max_blob_len(self.inner.config().max_plaintext_bytes);
        let rsa = matches!(items.algorithm, Some(a) if a != EncryptionAlgorithm::SymmetricDefault);
        let rooms: Vec<usize> = items
            .inputs
            .iter()
            .map(|b| match b.len() {
                n if n > longest => 0,
                n if rsa => n.min(RSA_ROOM),
                _ => ciphertext::plaintext_len_of(b).unwrap_or(0),
            })
            .collect();
        Ok(run_into(self, py, out, "Decrypt", &rooms, |e, outputs| {
            e.decrypt_batch_into(&requests, outputs)
        })?)
    }
}
