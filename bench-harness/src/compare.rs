//! `--compare`: the encrypt workload through the C ABI (libkeyplane.so, loaded at run time) and
//! through the Python package, beside the Rust API in the same run.
#![allow(unsafe_code)]

use std::ffi::{c_char, c_void, CStr, CString};
use std::path::{Path, PathBuf};
use std::process::Command;

use libloading::Library;

use crate::workload::{bench_context, BatchFn};
use crate::BenchError;

const KP_STATUS_OK: u32 = 0;
const KP_FIELD_KEY_ID: u32 = 1;

/// `kp_encrypt_item` (include/keyplane.h).
#[repr(C)]
struct KpEncryptItem {
    key_id: *const c_char,
    plaintext: *const u8,
    plaintext_len: usize,
    context: *const c_void,
    encryption_algorithm: u32,
}

/// `kp_out` (include/keyplane.h).
#[repr(C)]
struct KpOut {
    data: *mut u8,
    capacity: usize,
    len: usize,
    status: u32,
}

type Handle = *mut c_void;

/// The entry points of libkeyplane this harness calls.
struct Api {
    config_new: unsafe extern "C" fn(*mut Handle) -> u32,
    config_free: unsafe extern "C" fn(Handle),
    config_set_worker_threads: unsafe extern "C" fn(Handle, usize) -> u32,
    config_set_max_plaintext_bytes: unsafe extern "C" fn(Handle, usize) -> u32,
    config_set_lock_policy: unsafe extern "C" fn(Handle, u32) -> u32,
    engine_new: unsafe extern "C" fn(*const c_void, *mut Handle) -> u32,
    engine_free: unsafe extern "C" fn(Handle),
    create_key: unsafe extern "C" fn(*const c_void, *const c_void, *mut Handle) -> u32,
    record_string: unsafe extern "C" fn(*const c_void, u32) -> *const c_char,
    record_free: unsafe extern "C" fn(Handle),
    context_new: unsafe extern "C" fn(*mut Handle) -> u32,
    context_add: unsafe extern "C" fn(Handle, *const c_char, *const c_char) -> u32,
    context_free: unsafe extern "C" fn(Handle),
    encrypt_batch:
        unsafe extern "C" fn(*const c_void, *const KpEncryptItem, usize, *mut KpOut) -> u32,
    ciphertext_len: unsafe extern "C" fn(usize) -> usize,
    last_error_message: unsafe extern "C" fn(*mut c_char, usize, *mut usize) -> u32,
}

/// libkeyplane, loaded.
pub struct CLibrary {
    api: Api,
    pub path: PathBuf,
    // Keeps the code the function pointers point into mapped; dropped last.
    _lib: Library,
}

impl std::fmt::Debug for CLibrary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CLibrary")
            .field("path", &self.path)
            .finish()
    }
}

/// Where to look for libkeyplane.so, in order.
pub fn candidates(explicit: Option<&Path>) -> Vec<PathBuf> {
    if let Some(p) = explicit {
        return vec![p.to_path_buf()];
    }
    let mut out = Vec::new();
    if let Some(p) = std::env::var_os("KEYPLANE_LIB") {
        out.push(PathBuf::from(p));
    }
    if let Ok(exe) = std::env::current_exe() {
        if let Some(dir) = exe.parent() {
            out.push(dir.join("libkeyplane.so"));
            // Test and example binaries live one level down (target/<profile>/deps).
            if let Some(up) = dir.parent() {
                out.push(up.join("libkeyplane.so"));
            }
        }
    }
    let (same, other) = if cfg!(debug_assertions) {
        ("debug", "release")
    } else {
        ("release", "debug")
    };
    let mut targets = Vec::new();
    if let Some(t) = std::env::var_os("CARGO_TARGET_DIR") {
        targets.push(PathBuf::from(t));
    }
    targets.push(Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
    targets.push(PathBuf::from("target"));
    for t in &targets {
        out.push(t.join(same).join("libkeyplane.so"));
    }
    for t in &targets {
        out.push(t.join(other).join("libkeyplane.so"));
    }
    out
}

impl CLibrary {
    /// Loads the first candidate that exists, or says where it looked.
    pub fn find(explicit: Option<&Path>) -> Result<CLibrary, String> {
        let tried = candidates(explicit);
        let Some(path) = tried.iter().find(|p| p.is_file()) else {
            return Err(format!(
                "libkeyplane.so is not built (looked at {}); build it with `cargo build \
                 --release -p keyplane-ffi`, or give --libkeyplane FILE",
                tried
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        };
        Self::load(path)
    }

    fn load(path: &Path) -> Result<CLibrary, String> {
        // SAFETY: loading libkeyplane runs its (Rust and aws-lc) initialisers, which have no
        // preconditions; the symbols are looked up with the signatures of include/keyplane.h.
        unsafe {
            let lib = Library::new(path).map_err(|e| format!("loading {}: {e}", path.display()))?;
            macro_rules! sym {
                ($name:literal) => {
                    *lib.get(concat!($name, "\0").as_bytes())
                        .map_err(|e| format!("{} has no {}: {e}", path.display(), $name))?
                };
            }
            let api = Api {
                config_new: sym!("kp_config_new"),
                config_free: sym!("kp_config_free"),
                config_set_worker_threads: sym!("kp_config_set_worker_threads"),
                config_set_max_plaintext_bytes: sym!("kp_config_set_max_plaintext_bytes"),
                config_set_lock_policy: sym!("kp_config_set_lock_policy"),
                engine_new: sym!("kp_engine_new"),
                engine_free: sym!("kp_engine_free"),
                create_key: sym!("kp_create_key"),
                record_string: sym!("kp_record_string"),
                record_free: sym!("kp_record_free"),
                context_new: sym!("kp_context_new"),
                context_add: sym!("kp_context_add"),
                context_free: sym!("kp_context_free"),
                encrypt_batch: sym!("kp_encrypt_batch"),
                ciphertext_len: sym!("kp_ciphertext_len"),
                last_error_message: sym!("kp_last_error_message"),
            };
            Ok(CLibrary {
                api,
                path: path.to_path_buf(),
                _lib: lib,
            })
        }
    }

    fn last_error(&self) -> String {
        let mut buf = vec![0 as c_char; 1024];
        let mut len = 0usize;
        // SAFETY: `buf` has `buf.len()` writable bytes and `len` is writable.
        let status =
            unsafe { (self.api.last_error_message)(buf.as_mut_ptr(), buf.len(), &mut len) };
        if status != KP_STATUS_OK {
            return "(no message)".into();
        }
        // SAFETY: the library NUL-terminates what it wrote within `buf`.
        unsafe { CStr::from_ptr(buf.as_ptr()) }
            .to_string_lossy()
            .into_owned()
    }

    fn ok(&self, status: u32, what: &str) -> Result<(), String> {
        if status == KP_STATUS_OK {
            Ok(())
        } else {
            Err(format!("{what}: status {status}: {}", self.last_error()))
        }
    }

    /// An engine with `threads` workers, a symmetric key and the benchmark context.
    pub fn engine(
        &self,
        threads: usize,
        max_plaintext: usize,
        lock_warn: bool,
        with_context: bool,
    ) -> Result<CEngine<'_>, String> {
        let api = &self.api;
        let mut config: Handle = std::ptr::null_mut();
        let mut engine: Handle = std::ptr::null_mut();
        // SAFETY: every pointer passed is a live handle just returned by the library or a local
        // out-parameter; strings are NUL-terminated CStrings that outlive the calls.
        unsafe {
            self.ok((api.config_new)(&mut config), "kp_config_new")?;
            let configured = self
                .ok(
                    (api.config_set_worker_threads)(config, threads),
                    "kp_config_set_worker_threads",
                )
                .and_then(|()| {
                    self.ok(
                        (api.config_set_max_plaintext_bytes)(config, max_plaintext),
                        "kp_config_set_max_plaintext_bytes",
                    )
                })
                .and_then(|()| {
                    self.ok(
                        (api.config_set_lock_policy)(config, u32::from(lock_warn)),
                        "kp_config_set_lock_policy",
                    )
                })
                .and_then(|()| self.ok((api.engine_new)(config, &mut engine), "kp_engine_new"));
            (api.config_free)(config);
            configured?;
            let mut out = CEngine {
                lib: self,
                engine,
                context: std::ptr::null_mut(),
                key_id: CString::default(),
            };
            let mut record: Handle = std::ptr::null_mut();
            self.ok(
                (api.create_key)(engine, std::ptr::null(), &mut record),
                "kp_create_key",
            )?;
            let id = (api.record_string)(record, KP_FIELD_KEY_ID);
            if id.is_null() {
                (api.record_free)(record);
                return Err("kp_create_key returned no KEY_ID".into());
            }
            out.key_id = CStr::from_ptr(id).to_owned();
            (api.record_free)(record);
            if with_context {
                self.ok((api.context_new)(&mut out.context), "kp_context_new")?;
                for (k, v) in bench_context() {
                    let (k, v) = (
                        CString::new(k).expect("no NUL"),
                        CString::new(v).expect("no NUL"),
                    );
                    self.ok(
                        (api.context_add)(out.context, k.as_ptr(), v.as_ptr()),
                        "kp_context_add",
                    )?;
                }
            }
            Ok(out)
        }
    }
}

/// An engine behind the C ABI, with its key and context.
#[derive(Debug)]
pub struct CEngine<'l> {
    lib: &'l CLibrary,
    engine: Handle,
    context: Handle,
    key_id: CString,
}

// SAFETY: a kp_engine is documented thread-safe ("shared by any number of threads"), and a
// kp_context may be used by any number of calls at once while nobody adds to it (nobody does
// after construction).
unsafe impl Sync for CEngine<'_> {}
unsafe impl Send for CEngine<'_> {}

impl Drop for CEngine<'_> {
    fn drop(&mut self) {
        // SAFETY: both handles came from the library (or are NULL, which it ignores); no call is
        // in flight once the CEngine is dropped.
        unsafe {
            (self.lib.api.context_free)(self.context);
            (self.lib.api.engine_free)(self.engine);
        }
    }
}

impl CEngine<'_> {
    /// One `kp_encrypt_batch` of `messages` into buffers this closure owns.
    pub fn batch_fn<'a>(&'a self, messages: &'a [Vec<u8>]) -> BatchFn<'a> {
        let api = &self.lib.api;
        let items: Vec<KpEncryptItem> = messages
            .iter()
            .map(|m| KpEncryptItem {
                key_id: self.key_id.as_ptr(),
                plaintext: m.as_ptr(),
                plaintext_len: m.len(),
                context: self.context,
                encryption_algorithm: 0,
            })
            .collect();
        let lens: Vec<usize> = messages
            .iter()
            // SAFETY: a pure function of its argument.
            .map(|m| unsafe { (api.ciphertext_len)(m.len()) })
            .collect();
        let mut buffer = vec![0u8; lens.iter().sum()];
        let mut outs: Vec<KpOut> = Vec::with_capacity(lens.len());
        let mut at = buffer.as_mut_ptr();
        for &len in &lens {
            outs.push(KpOut {
                data: at,
                capacity: len,
                len: 0,
                status: 0,
            });
            // SAFETY: the offsets add up to at most buffer.len().
            at = unsafe { at.add(len) };
        }
        Box::new(move || {
            // `buffer` is moved into the closure so the output pointers stay valid.
            let _keep = &buffer;
            // SAFETY: `items` point into `messages` and this engine's key and context, alive for
            // 'a; `outs` point into `buffer`, owned by this closure, each with its capacity.
            let status = unsafe {
                (api.encrypt_batch)(self.engine, items.as_ptr(), items.len(), outs.as_mut_ptr())
            };
            if status != KP_STATUS_OK {
                let failed = outs.iter().position(|o| o.status != KP_STATUS_OK);
                return Err(format!(
                    "kp_encrypt_batch: status {status} (first failed item: {failed:?}): {}",
                    self.lib.last_error()
                ));
            }
            Ok(items.len() as u64)
        })
    }
}

/// The result of one Python run.
#[derive(Debug)]
pub enum PythonOutcome {
    /// `import keyplane` failed.
    NotInstalled(String),
    /// The package is there, but the run failed or its API is not one the script knows.
    Failed(String),
    /// Operations per second, one per repeat, and the call that was measured.
    Rates(Vec<f64>, String),
}

/// The script that runs the encrypt workload through the Python package.
pub const PYTHON_SCRIPT: &str = include_str!("../python/encrypt_bench.py");

/// Whether `python -c 'import keyplane'` works; the error line if not.
pub fn python_available(python: &str) -> Result<(), String> {
    match Command::new(python)
        .args(["-c", "import keyplane"])
        .output()
    {
        Ok(out) if out.status.success() => Ok(()),
        Ok(out) => {
            let err = String::from_utf8_lossy(&out.stderr);
            let last = err.lines().last().unwrap_or("import failed").trim();
            Err(format!(
                "the keyplane Python package is not installed ({python} -c 'import keyplane': \
                 {last})"
            ))
        }
        Err(e) => Err(format!("{python} could not be run: {e}")),
    }
}

/// Runs the encrypt workload through the Python package.
#[allow(clippy::too_many_arguments)]
pub fn python_run(
    python: &str,
    threads: u32,
    batch: usize,
    size: usize,
    seconds: f64,
    warmup: f64,
    repeats: u32,
    max_plaintext: usize,
    context: bool,
) -> Result<PythonOutcome, BenchError> {
    let out = Command::new(python)
        .arg("-c")
        .arg(PYTHON_SCRIPT)
        .args([
            threads.to_string(),
            batch.to_string(),
            size.to_string(),
            seconds.to_string(),
            warmup.to_string(),
            repeats.to_string(),
            max_plaintext.to_string(),
            u8::from(context).to_string(),
        ])
        .output()
        .map_err(|e| BenchError::Run(format!("{python} could not be run: {e}")))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .rev()
        .find(|l| l.trim_start().starts_with('{'));
    let Some(line) = line else {
        return Ok(PythonOutcome::Failed(format!(
            "the Python run printed no result (exit {}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    };
    let value: serde_json::Value = serde_json::from_str(line)
        .map_err(|e| BenchError::Run(format!("the Python run's output is not JSON: {e}")))?;
    let message = value["message"].as_str().unwrap_or("").to_owned();
    Ok(match value["status"].as_str() {
        Some("ok") => PythonOutcome::Rates(
            value["ops_per_sec"]
                .as_array()
                .map(|a| a.iter().filter_map(|v| v.as_f64()).collect())
                .unwrap_or_default(),
            value["api"].as_str().unwrap_or("?").to_owned(),
        ),
        Some("not-installed") => PythonOutcome::NotInstalled(message),
        _ => PythonOutcome::Failed(message),
    })
}
