//! `--compare`: the encrypt workload through the C ABI and through the Python package, beside the
//! Rust API in the same run.
//!
//! The C ABI is keyplane-ffi's own `kp_*` functions (the code of libkeyplane.so), linked in and
//! called exactly as a C program calls them: handles, NUL-terminated strings, item arrays and
//! caller buffers, every argument checked by the library. What this does not include is the
//! indirect call into a shared object, a few nanoseconds per batch.
#![allow(unsafe_code)]

use std::ffi::{c_char, CStr, CString};
use std::process::Command;

use keyplane_ffi::api::data::{kp_encrypt_batch, kp_encrypt_item, kp_out};
use keyplane_ffi::api::ffi::kp_last_error_message;
use keyplane_ffi::api::handles::{
    kp_config, kp_config_free, kp_config_new, kp_config_set_lock_policy,
    kp_config_set_max_plaintext_bytes, kp_config_set_worker_threads, kp_context, kp_context_add,
    kp_context_free, kp_context_new, kp_engine, kp_engine_free, kp_engine_new,
};
use keyplane_ffi::api::record::{kp_field, kp_record, kp_record_free, kp_record_string};
use keyplane_ffi::api::status::kp_status;
use keyplane_ffi::api::{control::kp_create_key, kp_ciphertext_len};

use crate::workload::{bench_context, BatchFn, Workload};
use crate::BenchError;

/// The library's last error message on this thread.
fn last_error() -> String {
    let mut buf = vec![0 as c_char; 1024];
    let mut len = 0usize;
    // SAFETY: `buf` has `buf.len()` writable bytes and `len` is writable.
    let status = unsafe { kp_last_error_message(buf.as_mut_ptr(), buf.len(), &mut len) };
    if status != kp_status::Ok {
        return "(no message)".into();
    }
    // SAFETY: the library NUL-terminates what it wrote within `buf`.
    unsafe { CStr::from_ptr(buf.as_ptr()) }
        .to_string_lossy()
        .into_owned()
}

fn ok(status: kp_status, what: &str) -> Result<(), String> {
    if status == kp_status::Ok {
        Ok(())
    } else {
        Err(format!("{what}: status {status:?}: {}", last_error()))
    }
}

/// An engine behind the C ABI, with its key and context.
#[derive(Debug)]
pub struct CEngine {
    engine: *mut kp_engine,
    context: *mut kp_context,
    key_id: CString,
}

// SAFETY: a kp_engine is documented thread-safe ("shared by any number of threads"), and a
// kp_context may be used by any number of calls at once while nobody adds to it (nobody does
// after construction).
unsafe impl Sync for CEngine {}
// SAFETY: as above; the handles are not tied to the thread that made them.
unsafe impl Send for CEngine {}

impl Drop for CEngine {
    fn drop(&mut self) {
        // SAFETY: both handles came from the library (or are NULL, which it ignores); no call is
        // in flight once the CEngine is dropped.
        unsafe {
            kp_context_free(self.context);
            kp_engine_free(self.engine);
        }
    }
}

impl CEngine {
    /// An engine with `threads` workers, a symmetric key and (optionally) the benchmark context.
    pub fn new(
        threads: usize,
        max_plaintext: usize,
        lock_warn: bool,
        with_context: bool,
    ) -> Result<CEngine, String> {
        let mut config: *mut kp_config = std::ptr::null_mut();
        let mut out = CEngine {
            engine: std::ptr::null_mut(),
            context: std::ptr::null_mut(),
            key_id: CString::default(),
        };
        // SAFETY: every pointer passed is a live handle just returned by the library or a local
        // out-parameter; strings are NUL-terminated CStrings that outlive the calls.
        unsafe {
            ok(kp_config_new(&mut config), "kp_config_new")?;
            let configured = ok(
                kp_config_set_worker_threads(config, threads),
                "kp_config_set_worker_threads",
            )
            .and_then(|()| {
                ok(
                    kp_config_set_max_plaintext_bytes(config, max_plaintext),
                    "kp_config_set_max_plaintext_bytes",
                )
            })
            .and_then(|()| {
                ok(
                    kp_config_set_lock_policy(config, u32::from(lock_warn)),
                    "kp_config_set_lock_policy",
                )
            })
            .and_then(|()| ok(kp_engine_new(config, &mut out.engine), "kp_engine_new"));
            kp_config_free(config);
            configured?;
            let mut record: *mut kp_record = std::ptr::null_mut();
            ok(
                kp_create_key(out.engine, std::ptr::null(), &mut record),
                "kp_create_key",
            )?;
            let id = kp_record_string(record, kp_field::KeyId as u32);
            if id.is_null() {
                kp_record_free(record);
                return Err("kp_create_key returned no KEY_ID".into());
            }
            out.key_id = CStr::from_ptr(id).to_owned();
            kp_record_free(record);
            if with_context {
                ok(kp_context_new(&mut out.context), "kp_context_new")?;
                for (k, v) in bench_context() {
                    let (k, v) = (
                        CString::new(k).expect("no NUL"),
                        CString::new(v).expect("no NUL"),
                    );
                    ok(
                        kp_context_add(out.context, k.as_ptr(), v.as_ptr()),
                        "kp_context_add",
                    )?;
                }
            }
        }
        Ok(out)
    }
}

impl CEngine {
    /// One `kp_encrypt_batch` of `messages` into buffers this closure owns.
    pub fn batch_fn<'a>(&'a self, messages: &'a [Vec<u8>]) -> BatchFn<'a> {
        let items: Vec<kp_encrypt_item> = messages
            .iter()
            .map(|m| kp_encrypt_item {
                key_id: self.key_id.as_ptr(),
                plaintext: m.as_ptr(),
                plaintext_len: m.len(),
                context: self.context,
                encryption_algorithm: 0,
            })
            .collect();
        let lens: Vec<usize> = messages
            .iter()
            .map(|m| kp_ciphertext_len(m.len()))
            .collect();
        let mut buffer = vec![0u8; lens.iter().sum()];
        let mut outs: Vec<kp_out> = Vec::with_capacity(lens.len());
        let mut at = buffer.as_mut_ptr();
        for &len in &lens {
            outs.push(kp_out {
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
                kp_encrypt_batch(self.engine, items.as_ptr(), items.len(), outs.as_mut_ptr())
            };
            if status != kp_status::Ok {
                let failed = outs.iter().position(|o| o.status != kp_status::Ok as u32);
                return Err(format!(
                    "kp_encrypt_batch: status {status:?} (first failed item: {failed:?}): {}",
                    last_error()
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
    /// Operations per second, one per repeat, the call that was measured, and the share of the
    /// Python process's CPU time spent in the kernel while it was measured (page faults show
    /// there), when the script reports it.
    Rates(Vec<f64>, String, Option<f64>),
}

/// The script that runs the encrypt or decrypt workload through the Python package.
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

/// Runs the encrypt or decrypt workload through the Python package: its zero-copy call into a
/// kept `bytearray` when `into`, else its allocating one.
#[allow(clippy::too_many_arguments)]
pub fn python_run(
    python: &str,
    workload: Workload,
    into: bool,
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
            workload.to_string(),
            if into { "into" } else { "alloc" }.to_string(),
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
            value["system_cpu_share"].as_f64(),
        ),
        Some("not-installed") => PythonOutcome::NotInstalled(message),
        _ => PythonOutcome::Failed(message),
    })
}
