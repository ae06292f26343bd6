//! Envelope encryption in the AWS Encryption SDK's message format (`keyplane::envelope`): the
//! keyring classes (`KmsKeyring`, `RawAesKeyring`, `RawRsaKeyring`), one-shot
//! `encrypt_message` / `decrypt_message`, and the streaming `EnvelopeWriter` / `EnvelopeReader`
//! over Python file objects.
//!
//! Wrapping-key bytes are copied into the engine's locked memory when a keyring is made (the
//! Python object they came from is the caller's). Frame work runs with the GIL released; the
//! streams take it back only to call the Python file's `write` or `read`. A stream is used by one
//! thread at a time: a second thread calling it meanwhile gets a `ValidationException` (it would
//! otherwise wait for a lock while holding the GIL the first thread needs).

use std::sync::{Arc, Mutex, TryLockError};

use keyplane::envelope::{
    self, AlgorithmSuite, CommitmentPolicy, Decryptor, Encryptor, EnvelopeConfig, Keyring,
    RsaPadding, SignedRelease,
};
use keyplane::EncryptionContext;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict};
use zeroize::Zeroizing;

use crate::convert::{context, input};
use crate::engine::Engine;
use crate::errors::{validation, Failure, Result};

const ENCRYPT: &str = "EncryptMessage";
const DECRYPT: &str = "DecryptMessage";
/// A worker pool frames run on.
type Pool = Arc<rayon::ThreadPool>;
/// The keyrings of a call, in order.
type Rings = Vec<Arc<dyn Keyring>>;
/// Most bytes a stream read reserves before plaintext arrives.
const READ_RESERVE: u64 = 1 << 20;

/// A keyplane symmetric key used as the Encryption SDK uses a KMS key (`key_id`: id, ARN or
/// alias), or, without `key_id`, the discovery keyring that decrypts with any `aws-kms` data key
/// of the engine.
#[pyclass(module = "keyplane._keyplane", frozen)]
pub struct KmsKeyring {
    inner: Arc<dyn Keyring>,
    pool: Pool,
}

#[pymethods]
impl KmsKeyring {
    #[new]
    #[pyo3(signature = (engine, key_id = None))]
    fn py_new(engine: PyRef<'_, Engine>, key_id: Option<&str>) -> Result<Self> {
        let inner: Arc<dyn Keyring> = match key_id {
            Some(key) => Arc::new(envelope::KmsKeyring::new(&engine.inner, key)?),
            None => Arc::new(envelope::KmsKeyring::discovery(&engine.inner)),
        };
        Ok(KmsKeyring {
            inner,
            pool: engine.inner.worker_pool(),
        })
    }

    fn __repr__(&self) -> String {
        format!("KmsKeyring({})", self.inner.describe())
    }
}

/// An AES-128/192/256 wrapping key (the SDK's raw AES keyring); the key bytes are copied into
/// locked memory at once.
#[pyclass(module = "keyplane._keyplane", frozen)]
pub struct RawAesKeyring {
    inner: Arc<dyn Keyring>,
}

#[pymethods]
impl RawAesKeyring {
    #[new]
    fn py_new(namespace: &str, name: &str, key: &Bound<'_, PyAny>) -> Result<Self> {
        let key = input(key, "key")?;
        Ok(RawAesKeyring {
            inner: Arc::new(envelope::RawAesKeyring::new(namespace, name, &key)?),
        })
    }

    fn __repr__(&self) -> String {
        format!("RawAesKeyring({})", self.inner.describe())
    }
}

/// An RSA wrapping key (the SDK's raw RSA keyring): a private key (PKCS#8, PEM or DER) wraps and
/// unwraps, a public key (SubjectPublicKeyInfo, PEM or DER) only wraps. `padding`: `RSA_PKCS1`,
/// `RSA_OAEP_SHA1_MGF1`, `RSA_OAEP_SHA256_MGF1`, `RSA_OAEP_SHA384_MGF1`, `RSA_OAEP_SHA512_MGF1`.
#[pyclass(module = "keyplane._keyplane", frozen)]
pub struct RawRsaKeyring {
    inner: Arc<dyn Keyring>,
}

#[pymethods]
impl RawRsaKeyring {
    #[new]
    #[pyo3(signature = (namespace, name, padding, *, private_key = None, public_key = None))]
    fn py_new(
        namespace: &str,
        name: &str,
        padding: &str,
        private_key: Option<&Bound<'_, PyAny>>,
        public_key: Option<&Bound<'_, PyAny>>,
    ) -> Result<Self> {
        let padding = RsaPadding::from_name(padding).ok_or_else(|| {
            validation(format!(
                "unknown RSA padding '{padding}'; use RSA_PKCS1 or RSA_OAEP_SHA1_MGF1, \
                 RSA_OAEP_SHA256_MGF1, RSA_OAEP_SHA384_MGF1, RSA_OAEP_SHA512_MGF1"
            ))
        })?;
        let keyring = match (private_key, public_key) {
            (Some(private), None) => {
                let der = input(private, "private_key")?;
                envelope::RawRsaKeyring::with_private_key(namespace, name, padding, &der)?
            }
            (None, Some(public)) => {
                let der = input(public, "public_key")?;
                envelope::RawRsaKeyring::with_public_key(namespace, name, padding, &der)?
            }
            _ => {
                return Err(validation(
                    "give exactly one of private_key and public_key to RawRsaKeyring",
                ))
            }
        };
        Ok(RawRsaKeyring {
            inner: Arc::new(keyring),
        })
    }

    fn __repr__(&self) -> String {
        format!("RawRsaKeyring({})", self.inner.describe())
    }
}

/// The keyrings of a call and the pool frames run on (the first KMS keyring's engine's, else
/// rayon's global pool).
fn keyrings(obj: &Bound<'_, PyAny>) -> Result<(Rings, Option<Pool>)> {
    let mut out = Vec::new();
    let mut pool = None;
    for item in obj.try_iter()? {
        let item = item?;
        if let Ok(k) = item.cast::<KmsKeyring>() {
            let k = k.get();
            pool.get_or_insert_with(|| k.pool.clone());
            out.push(k.inner.clone());
        } else if let Ok(k) = item.cast::<RawAesKeyring>() {
            out.push(k.get().inner.clone());
        } else if let Ok(k) = item.cast::<RawRsaKeyring>() {
            out.push(k.get().inner.clone());
        } else {
            return Err(Failure::Python(pyo3::exceptions::PyTypeError::new_err(
                format!(
                    "keyrings must be KmsKeyring, RawAesKeyring or RawRsaKeyring objects, not {}",
                    item.get_type().name()?
                ),
            )));
        }
    }
    if out.is_empty() {
        return Err(validation("envelope encryption needs at least one keyring"));
    }
    Ok((out, pool))
}

fn policy(name: Option<&str>) -> Result<Option<CommitmentPolicy>> {
    name.map(|n| {
        CommitmentPolicy::from_name(n).ok_or_else(|| {
            validation(format!(
                "unknown commitment policy '{n}'; use REQUIRE_ENCRYPT_REQUIRE_DECRYPT, \
                 REQUIRE_ENCRYPT_ALLOW_DECRYPT or FORBID_ENCRYPT_ALLOW_DECRYPT"
            ))
        })
    })
    .transpose()
}

fn max_keys(value: Option<u32>) -> Result<Option<u16>> {
    value
        .map(|v| {
            u16::try_from(v).map_err(|_| {
                validation(format!(
                    "max_encrypted_data_keys must be at most 65535, not {v}"
                ))
            })
        })
        .transpose()
}

/// The settings of an encryption: a non-committing `algorithm` without a policy implies
/// FORBID_ENCRYPT_ALLOW_DECRYPT (as the CLI does).
fn encrypt_config(
    pool: Option<Pool>,
    algorithm: Option<&str>,
    frame_length: u32,
    commitment_policy: Option<&str>,
    max_encrypted_data_keys: Option<u32>,
) -> Result<EnvelopeConfig> {
    let mut config = EnvelopeConfig {
        pool,
        frame_length,
        max_encrypted_data_keys: max_keys(max_encrypted_data_keys)?,
        ..EnvelopeConfig::default()
    };
    if let Some(name) = algorithm {
        config.suite = AlgorithmSuite::from_name(name)
            .ok_or_else(|| validation(format!("unknown algorithm suite '{name}'")))?;
    }
    match policy(commitment_policy)? {
        Some(p) => config.commitment_policy = p,
        None if !config.suite.is_committing() => {
            config.commitment_policy = CommitmentPolicy::ForbidEncryptAllowDecrypt
        }
        None => {}
    }
    Ok(config)
}

fn decrypt_config(
    pool: Option<Pool>,
    commitment_policy: Option<&str>,
    max_encrypted_data_keys: Option<u32>,
    max_buffered_plaintext: Option<u64>,
    signed_release: SignedRelease,
) -> Result<EnvelopeConfig> {
    let mut config = EnvelopeConfig {
        pool,
        max_encrypted_data_keys: max_keys(max_encrypted_data_keys)?,
        signed_release,
        ..EnvelopeConfig::default()
    };
    if let Some(p) = policy(commitment_policy)? {
        config.commitment_policy = p;
    }
    if let Some(max) = max_buffered_plaintext {
        config.max_buffered_plaintext = max;
    }
    Ok(config)
}

/// Refuses a message whose header lacks a pair of the context the caller requires.
fn check_required(found: &EncryptionContext, required: &Option<EncryptionContext>) -> Result<()> {
    for (key, value) in required.iter().flatten() {
        if found.get(key) != Some(value) {
            return Err(Failure::Engine(
                keyplane::Error::InvalidCiphertext(format!(
                    "the message's encryption context does not have {key}={value}; it was not \
                     encrypted with the context you require"
                )),
                DECRYPT,
            ));
        }
    }
    Ok(())
}

fn context_dict<'py>(py: Python<'py>, ctx: &EncryptionContext) -> PyResult<Bound<'py, PyDict>> {
    let dict = PyDict::new(py);
    for (k, v) in ctx {
        dict.set_item(k, v)?;
    }
    Ok(dict)
}

/// Encrypts `plaintext` into one message of the Encryption SDK's format.
#[pyfunction]
#[pyo3(signature = (plaintext, *, keyrings, encryption_context = None, frame_length = 4096, algorithm = None, commitment_policy = None, max_encrypted_data_keys = None))]
pub(crate) fn encrypt_message<'py>(
    py: Python<'py>,
    plaintext: &Bound<'py, PyAny>,
    keyrings: &Bound<'py, PyAny>,
    encryption_context: Option<&Bound<'py, PyAny>>,
    frame_length: u32,
    algorithm: Option<&str>,
    commitment_policy: Option<&str>,
    max_encrypted_data_keys: Option<u32>,
) -> Result<Bound<'py, PyBytes>> {
    let plaintext = input(plaintext, "plaintext")?;
    let (rings, pool) = self::keyrings(keyrings)?;
    let ctx = context(encryption_context)?.unwrap_or_default();
    let config = encrypt_config(
        pool,
        algorithm,
        frame_length,
        commitment_policy,
        max_encrypted_data_keys,
    )?;
    let message = py
        .detach(|| envelope::encrypt_message(&rings, &config, &ctx, &plaintext))
        .map_err(|e| Failure::Engine(e, ENCRYPT))?;
    Ok(PyBytes::new(py, &message))
}

/// Decrypts one whole message: `(plaintext, encryption_context)`. No plaintext is returned unless
/// all of it (and a signed message's signature) verified. `encryption_context`: pairs the
/// message's context must have.
#[pyfunction]
#[pyo3(signature = (message, *, keyrings, encryption_context = None, commitment_policy = None, max_encrypted_data_keys = None, max_buffered_plaintext = None))]
pub(crate) fn decrypt_message<'py>(
    py: Python<'py>,
    message: &Bound<'py, PyAny>,
    keyrings: &Bound<'py, PyAny>,
    encryption_context: Option<&Bound<'py, PyAny>>,
    commitment_policy: Option<&str>,
    max_encrypted_data_keys: Option<u32>,
    max_buffered_plaintext: Option<u64>,
) -> Result<(Bound<'py, PyBytes>, Bound<'py, PyDict>)> {
    let message = input(message, "message")?;
    let (rings, pool) = self::keyrings(keyrings)?;
    let required = context(encryption_context)?;
    let config = decrypt_config(
        pool,
        commitment_policy,
        max_encrypted_data_keys,
        max_buffered_plaintext,
        SignedRelease::AfterSignature,
    )?;
    let decrypted = py
        .detach(|| envelope::decrypt_message(&rings, &config, &message))
        .map_err(|e| Failure::Engine(e, DECRYPT))?;
    check_required(&decrypted.header.encryption_context, &required)?;
    Ok((
        PyBytes::new(py, &decrypted.plaintext),
        context_dict(py, &decrypted.header.encryption_context)?,
    ))
}

/// The Python exception a file's `write` or `read` raised, kept for the caller.
type Stash = Arc<Mutex<Option<PyErr>>>;

fn stash(slot: &Stash, err: PyErr) -> std::io::Error {
    if let Ok(mut s) = slot.lock() {
        s.get_or_insert(err);
    }
    std::io::Error::other("the Python file object failed")
}

/// The error of a stream call: the Python file's own exception if it raised one, else the engine
/// error.
fn stream_failure(slot: &Stash, err: keyplane::Error, operation: &'static str) -> Failure {
    match slot.lock().ok().and_then(|mut s| s.take()) {
        Some(py_err) => Failure::Python(py_err),
        None => Failure::Engine(err, operation),
    }
}

/// `io::Write` over a Python file's `write` (the GIL is taken for each call).
struct PyWriter {
    file: Py<PyAny>,
    error: Stash,
}

impl std::io::Write for PyWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        Python::attach(|py| {
            let written = self
                .file
                .bind(py)
                .call_method1("write", (PyBytes::new(py, buf),))
                .and_then(|n| n.extract::<Option<usize>>());
            match written {
                Ok(Some(n)) => Ok(n.min(buf.len())),
                Ok(None) => Ok(buf.len()),
                Err(e) => Err(stash(&self.error, e)),
            }
        })
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Python::attach(|py| {
            let file = self.file.bind(py);
            if file.hasattr("flush").unwrap_or(false) {
                file.call_method0("flush")
                    .map_err(|e| stash(&self.error, e))?;
            }
            Ok(())
        })
    }
}

/// Bytes asked of a Python file per `read` call: the decryptor reads each frame's fields and
/// ciphertext with exact reads (four per frame), and each call into Python takes the GIL and makes
/// a `bytes`, so they are served from one buffer filled this many bytes at a time.
const READ_AHEAD: usize = 64 << 10;

/// `io::Read` over a Python file's `read` (the GIL is taken for each call).
struct PyReader {
    file: Py<PyAny>,
    error: Stash,
}

impl std::io::Read for PyReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        Python::attach(|py| {
            let chunk = self
                .file
                .bind(py)
                .call_method1("read", (buf.len(),))
                .and_then(|b| input(&b, "the file's read result"));
            match chunk {
                Ok(data) => {
                    if data.len() > buf.len() {
                        return Err(stash(
                            &self.error,
                            pyo3::exceptions::PyValueError::new_err(
                                "the file's read returned more bytes than asked for",
                            ),
                        ));
                    }
                    buf[..data.len()].copy_from_slice(&data);
                    Ok(data.len())
                }
                Err(e) => Err(stash(&self.error, e)),
            }
        })
    }
}

fn busy() -> Failure {
    validation("the envelope stream is in use by another thread")
}

fn closed() -> Failure {
    Failure::Python(pyo3::exceptions::PyValueError::new_err(
        "I/O operation on a closed envelope stream",
    ))
}

/// Writes a message to a binary file object as plaintext is written to it: the header when made,
/// frames as they fill, the final frame and footer at `close()` (or the end of a `with` block that
/// raised nothing). A writer left unclosed, or closed by a `with` block that raised, leaves a
/// message every reader refuses as truncated.
#[pyclass(module = "keyplane._keyplane", frozen)]
pub struct EnvelopeWriter {
    inner: Mutex<Option<Encryptor<PyWriter>>>,
    error: Stash,
}

#[pymethods]
impl EnvelopeWriter {
    #[new]
    #[pyo3(signature = (dest, *, keyrings, encryption_context = None, frame_length = 4096, algorithm = None, commitment_policy = None, max_encrypted_data_keys = None))]
    fn py_new(
        py: Python<'_>,
        dest: Py<PyAny>,
        keyrings: &Bound<'_, PyAny>,
        encryption_context: Option<&Bound<'_, PyAny>>,
        frame_length: u32,
        algorithm: Option<&str>,
        commitment_policy: Option<&str>,
        max_encrypted_data_keys: Option<u32>,
    ) -> Result<Self> {
        let (rings, pool) = self::keyrings(keyrings)?;
        let ctx = context(encryption_context)?.unwrap_or_default();
        let config = encrypt_config(
            pool,
            algorithm,
            frame_length,
            commitment_policy,
            max_encrypted_data_keys,
        )?;
        let error = Stash::default();
        let sink = PyWriter {
            file: dest,
            error: error.clone(),
        };
        let encryptor = py
            .detach(|| Encryptor::new(sink, &rings, &config, &ctx))
            .map_err(|e| stream_failure(&error, e, ENCRYPT))?;
        Ok(EnvelopeWriter {
            inner: Mutex::new(Some(encryptor)),
            error,
        })
    }

    /// Encrypts `data` (sealed frames go to the file as windows fill); returns `len(data)`.
    fn write(&self, py: Python<'_>, data: &Bound<'_, PyAny>) -> Result<usize> {
        let data = input(data, "data")?;
        let mut guard = match self.inner.try_lock() {
            Ok(g) => g,
            Err(TryLockError::WouldBlock) => return Err(busy()),
            Err(TryLockError::Poisoned(p)) => p.into_inner(),
        };
        let encryptor = guard.as_mut().ok_or_else(closed)?;
        py.detach(|| std::io::Write::write_all(encryptor, &data))
            .map_err(|e| stream_failure(&self.error, envelope::error_from_io(e), ENCRYPT))?;
        Ok(data.len())
    }

    /// Finishes the message (final frame, footer) and flushes the file; the file is not closed.
    /// Closing again does nothing.
    fn close(&self, py: Python<'_>) -> Result<()> {
        let mut guard = match self.inner.try_lock() {
            Ok(g) => g,
            Err(TryLockError::WouldBlock) => return Err(busy()),
            Err(TryLockError::Poisoned(p)) => p.into_inner(),
        };
        let Some(encryptor) = guard.take() else {
            return Ok(());
        };
        py.detach(|| encryptor.finish())
            .map_err(|e| stream_failure(&self.error, e, ENCRYPT))?;
        Ok(())
    }

    /// Drops the message unfinished (what it wrote so far is refused by every reader).
    fn abort(&self) {
        let mut guard = match self.inner.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        guard.take();
    }

    #[getter]
    fn closed(&self) -> bool {
        match self.inner.try_lock() {
            Ok(g) => g.is_none(),
            Err(TryLockError::WouldBlock) => false,
            Err(TryLockError::Poisoned(p)) => p.into_inner().is_none(),
        }
    }

    fn writable(&self) -> bool {
        true
    }

    fn readable(&self) -> bool {
        false
    }

    /// Flushes the file (pending plaintext is sealed only by `close`).
    fn flush(&self) {}

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    /// Finishes the message when the block raised nothing, else aborts it.
    fn __exit__(
        &self,
        py: Python<'_>,
        exc_type: Option<&Bound<'_, PyAny>>,
        _exc_value: Option<&Bound<'_, PyAny>>,
        _traceback: Option<&Bound<'_, PyAny>>,
    ) -> Result<bool> {
        if exc_type.is_some_and(|t| !t.is_none()) {
            self.abort();
        } else {
            self.close(py)?;
        }
        Ok(false)
    }
}

/// Reads a message from a binary file object and yields its plaintext; the header is read and
/// checked (data key, commitment, header authentication) when it is made. Release rule: only
/// authenticated frames are returned; a signed message's plaintext is held until its signature
/// verified unless `signed_release="per_frame"`. A message that turns out truncated or tampered
/// further on fails the read that reaches that point.
#[pyclass(module = "keyplane._keyplane", frozen)]
pub struct EnvelopeReader {
    inner: Mutex<Option<Decryptor<std::io::BufReader<PyReader>>>>,
    error: Stash,
    context: EncryptionContext,
    algorithm: &'static str,
}

#[pymethods]
impl EnvelopeReader {
    #[new]
    #[pyo3(signature = (src, *, keyrings, encryption_context = None, commitment_policy = None, max_encrypted_data_keys = None, max_buffered_plaintext = None, signed_release = "after_signature"))]
    fn py_new(
        py: Python<'_>,
        src: Py<PyAny>,
        keyrings: &Bound<'_, PyAny>,
        encryption_context: Option<&Bound<'_, PyAny>>,
        commitment_policy: Option<&str>,
        max_encrypted_data_keys: Option<u32>,
        max_buffered_plaintext: Option<u64>,
        signed_release: &str,
    ) -> Result<Self> {
        let release = match signed_release {
            "after_signature" => SignedRelease::AfterSignature,
            "per_frame" => SignedRelease::PerFrame,
            other => {
                return Err(validation(format!(
                    "signed_release must be 'after_signature' or 'per_frame', not '{other}'"
                )))
            }
        };
        let (rings, pool) = self::keyrings(keyrings)?;
        let required = context(encryption_context)?;
        let config = decrypt_config(
            pool,
            commitment_policy,
            max_encrypted_data_keys,
            max_buffered_plaintext,
            release,
        )?;
        let error = Stash::default();
        let source = std::io::BufReader::with_capacity(
            READ_AHEAD,
            PyReader {
                file: src,
                error: error.clone(),
            },
        );
        let decryptor = py
            .detach(|| Decryptor::new(source, &rings, &config))
            .map_err(|e| stream_failure(&error, e, DECRYPT))?;
        let header = decryptor.header();
        check_required(&header.encryption_context, &required)?;
        Ok(EnvelopeReader {
            context: header.encryption_context.clone(),
            algorithm: header.suite.name(),
            inner: Mutex::new(Some(decryptor)),
            error,
        })
    }

    /// Up to `size` bytes of plaintext (fewer only at the end of the message); all the rest when
    /// `size` is negative. `b""` at the end.
    #[pyo3(signature = (size = -1), text_signature = "(self, /, size=-1)")]
    fn read<'py>(&self, py: Python<'py>, size: isize) -> Result<Bound<'py, PyBytes>> {
        let mut guard = match self.inner.try_lock() {
            Ok(g) => g,
            Err(TryLockError::WouldBlock) => return Err(busy()),
            Err(TryLockError::Poisoned(p)) => p.into_inner(),
        };
        let decryptor = guard.as_mut().ok_or_else(closed)?;
        let mut out = Zeroizing::new(Vec::new());
        let read = py.detach(|| -> std::io::Result<()> {
            if size < 0 {
                std::io::Read::read_to_end(decryptor, &mut out)?;
                return Ok(());
            }
            // Grown as plaintext arrives: a huge `size` costs nothing until the bytes exist.
            let want = size as u64;
            out.reserve(want.min(READ_RESERVE) as usize);
            std::io::Read::read_to_end(&mut std::io::Read::take(decryptor, want), &mut out)?;
            Ok(())
        });
        read.map_err(|e| stream_failure(&self.error, envelope::error_from_io(e), DECRYPT))?;
        Ok(PyBytes::new(py, &out))
    }

    /// Stops reading; the plaintext not yet read is zeroed.
    fn close(&self) {
        let mut guard = match self.inner.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        guard.take();
    }

    /// The message's encryption context (the signed suites' public key included).
    #[getter]
    fn encryption_context<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        context_dict(py, &self.context)
    }

    /// The message's algorithm suite (`AES_256_GCM_HKDF_SHA512_COMMIT_KEY_ECDSA_P384`, ...).
    #[getter]
    fn algorithm(&self) -> &'static str {
        self.algorithm
    }

    #[getter]
    fn closed(&self) -> bool {
        match self.inner.try_lock() {
            Ok(g) => g.is_none(),
            Err(TryLockError::WouldBlock) => false,
            Err(TryLockError::Poisoned(p)) => p.into_inner().is_none(),
        }
    }

    fn readable(&self) -> bool {
        true
    }

    fn writable(&self) -> bool {
        false
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    fn __exit__(
        &self,
        _exc_type: Option<&Bound<'_, PyAny>>,
        _exc_value: Option<&Bound<'_, PyAny>>,
        _traceback: Option<&Bound<'_, PyAny>>,
    ) -> bool {
        self.close();
        false
    }
}
