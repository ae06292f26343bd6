//! The tamper-evident audit log: configuring it, generating its signing key, and verifying a log
//! (`docs/audit-format.md`).
//!
//! With an audit log, the engine records every request as one hash-chained JSON line and seals
//! the chain with ECDSA-signed digests; it fails closed (`KP_STATUS_AUDIT_UNAVAILABLE`) when the
//! log cannot be written. `kp_audit_verify` checks a log against the audit public key.

use std::ffi::c_char;
use std::path::Path;
use std::time::Duration;

use kp::audit::{AuditConfig, Durability, Verdict};
use kp::LockedBytes;

use super::caller::from_caller;
use super::control::engine_arg;
use super::failure::{Failure, Outcome};
use super::ffi::{bytes_arg, guard, out_arg, out_bytes, str_arg, write_out};
use super::handles::lock_policy_arg;
use super::handles::{handle_mut, into_raw, kp_config, kp_engine, kp_secret_buffer};
use super::overlap::{refuse_overlap, Span};
use super::record::{give_record, kp_field, kp_record, Record};
use super::status::{kp_status, status_of_audit};

/// When the engine answers a request whose audit record is being written.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum kp_audit_durability {
    /// After the record is on disk (`fdatasync` returned). The default.
    Synced = 0,
    /// As soon as the record is queued; records are still written and synced in groups, but a
    /// crash can lose the last ones.
    Queued = 1,
}

/// The audit log's durability for a `kp_audit_durability` value.
pub(crate) fn durability_arg(durability: u32) -> Outcome<Durability> {
    match durability {
        d if d == kp_audit_durability::Synced as u32 => Ok(Durability::Synced),
        d if d == kp_audit_durability::Queued as u32 => Ok(Durability::Queued),
        other => Err(Failure::new(
            kp_status::InvalidEnumValue,
            format!("{other} is not a kp_audit_durability"),
        )),
    }
}

/// The overall result of `kp_audit_verify` (record field `KP_FIELD_AUDIT_VERDICT`), most
/// reassuring first.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum kp_audit_verdict {
    /// Every record is chained and covered by a valid digest.
    Intact = 0,
    /// No tampering; some records after the last digest are not yet signed.
    UnsignedTail = 1,
    /// No tampering; the last line was cut short by a crash.
    Truncated = 2,
    /// Tampering was found: the AUDIT_PROBLEM_* fields say what and where.
    Tampered = 3,
}

fn audit_failure(error: kp::audit::AuditError) -> Failure {
    Failure::new(status_of_audit(&error), error.to_string())
}

fn audit_settings(
    config: &mut super::handles::ConfigInner,
) -> Outcome<&mut (AuditConfig, LockedBytes)> {
    config.audit.as_mut().ok_or_else(|| {
        Failure::new(
            kp_status::InvalidArgument,
            "this configuration has no audit log: call kp_config_set_audit first",
        )
    })
}

/// Makes engines built from this configuration record every request in a tamper-evident audit
/// log at `path` (created if missing, continued if present: an existing log must verify under the
/// same key), with digests signed by `signing_key_pkcs8` (`signing_key_len` bytes: an ECDSA P-256
/// private key, PKCS#8 DER, such as `kp_audit_generate_signing_key` makes). Defaults: synced
/// durability, a digest every 4096 records or every second. `path` NULL turns the audit log off
/// again. Errors in the path or key surface at `kp_engine_new` (`KP_STATUS_AUDIT_UNAVAILABLE`).
/// Two engines must not write the same log.
///
/// Ownership: the path and the key are copied (the configuration's copy of the key is zeroed when
/// it is freed or replaced); the caller keeps and zeroes its own. Thread safety: no other thread
/// may use `config` meanwhile.
///
/// # Safety
/// `config` is a live handle; `path` is NULL or NUL-terminated; `signing_key_pkcs8` has
/// `signing_key_len` readable bytes.
#[no_mangle]
pub unsafe extern "C" fn kp_config_set_audit(
    config: *mut kp_config,
    path: *const c_char,
    signing_key_pkcs8: *const u8,
    signing_key_len: usize,
) -> kp_status {
    guard(|| {
        let config = from_caller!(handle_mut(config, "config"))?;
        if path.is_null() {
            config.audit = None;
            return Ok(());
        }
        let (path, key) = (
            from_caller!(str_arg(path, "path"))?,
            from_caller!(bytes_arg(
                signing_key_pkcs8,
                signing_key_len,
                "signing_key_pkcs8"
            ))?,
        );
        if path.is_empty() || key.is_empty() {
            return Err(Failure::new(
                kp_status::InvalidLength,
                "the audit log needs a path and a signing key (neither may be empty)",
            ));
        }
        let key = LockedBytes::copy_from(key, config.config.lock_policy)?;
        config.audit = Some((AuditConfig::new(path), key));
        Ok(())
    })
}

/// Sets when requests are answered relative to their audit record, a `kp_audit_durability`
/// (after `kp_config_set_audit`).
///
/// Ownership: nothing is taken. Thread safety: no other thread may use `config` meanwhile.
///
/// # Safety
/// `config` is a live handle.
#[no_mangle]
pub unsafe extern "C" fn kp_config_set_audit_durability(
    config: *mut kp_config,
    durability: u32,
) -> kp_status {
    guard(|| {
        let config = from_caller!(handle_mut(config, "config"))?;
        let durability = durability_arg(durability)?;
        audit_settings(config)?.0.durability = durability;
        Ok(())
    })
}

/// Sets how often the audit log writes a signed digest (after `kp_config_set_audit`): after
/// `every_records` records since the last digest (0: never by count) and when records have waited
/// `every_ms` milliseconds (0: never by time). A digest is always written when the engine stops.
///
/// Ownership: nothing is taken. Thread safety: no other thread may use `config` meanwhile.
///
/// # Safety
/// `config` is a live handle.
#[no_mangle]
pub unsafe extern "C" fn kp_config_set_audit_digest_interval(
    config: *mut kp_config,
    every_records: u64,
    every_ms: u64,
) -> kp_status {
    guard(|| {
        let config = from_caller!(handle_mut(config, "config"))?;
        let settings = &mut audit_settings(config)?.0;
        settings.digest_every_records = every_records;
        settings.digest_every = Duration::from_millis(every_ms);
        Ok(())
    })
}

/// Generates a new audit signing key (ECDSA P-256, PKCS#8 DER) into a new secret buffer
/// allocated under `lock_policy` (a `kp_lock_policy`). Keep it, or its public key, to verify the
/// log later: `kp_engine_audit_public_key` gives the public key.
///
/// Ownership: on success `*out` is a new secret buffer the caller frees with
/// `kp_secret_buffer_free` (which zeroes it); the library's own copies are zeroed. Thread safety:
/// callable from any thread.
///
/// # Safety
/// `out` points to writable storage for a pointer.
#[no_mangle]
pub unsafe extern "C" fn kp_audit_generate_signing_key(
    lock_policy: u32,
    out: *mut *mut kp_secret_buffer,
) -> kp_status {
    guard(|| {
        let policy = lock_policy_arg(lock_policy)?;
        let out = out_arg(out, "out")?;
        let bytes = kp::audit::generate_signing_key(policy).map_err(audit_failure)?;
        from_caller!(write_out(out, into_raw::<kp_secret_buffer>(bytes)));
        Ok(())
    })
}

/// The engine's audit log, or the failure for an engine without one.
fn audit_log(engine: &kp::Engine) -> Outcome<&kp::audit::AuditLog> {
    engine.audit_log().ok_or_else(|| {
        Failure::new(
            kp_status::InvalidArgument,
            "this engine has no audit log (kp_config_set_audit)",
        )
    })
}

/// The audit public key (DER SubjectPublicKeyInfo, 91 bytes for P-256) of the engine's audit log,
/// into `out` (`capacity` bytes); its length goes to `*out_len`. What `kp_audit_verify` takes.
/// `KP_STATUS_INVALID_ARGUMENT` for an engine without an audit log.
///
/// Ownership: `out` stays the caller's. Thread safety: thread-safe on a shared engine.
///
/// # Safety
/// `engine` is a live handle; `out` has `capacity` writable bytes; `out_len` is writable.
#[no_mangle]
pub unsafe extern "C" fn kp_engine_audit_public_key(
    engine: *const kp_engine,
    out: *mut u8,
    capacity: usize,
    out_len: *mut usize,
) -> kp_status {
    guard(|| {
        let engine = from_caller!(engine_arg(engine))?;
        refuse_overlap(&mut [
            Span::output(out, capacity, "out"),
            Span::output_of(out_len, "out_len"),
        ])?;
        let out_len = out_arg(out_len, "out_len")?;
        let der = audit_log(engine)?.public_key_der();
        let dest = from_caller!(out_bytes(out, capacity, der.len(), "out"))?;
        dest.copy_from_slice(&der);
        from_caller!(write_out(out_len, der.len()));
        Ok(())
    })
}

/// Waits until every audit record queued so far is on disk.
///
/// Ownership: nothing is taken. Thread safety: thread-safe on a shared engine.
///
/// # Safety
/// `engine` is a live handle.
#[no_mangle]
pub unsafe extern "C" fn kp_engine_audit_flush(engine: *const kp_engine) -> kp_status {
    guard(|| {
        let engine = from_caller!(engine_arg(engine))?;
        audit_log(engine)?.flush().map_err(audit_failure)
    })
}

/// Writes a signed digest now, covering every record so far, and waits until it is on disk.
///
/// Ownership: nothing is taken. Thread safety: thread-safe on a shared engine.
///
/// # Safety
/// `engine` is a live handle.
#[no_mangle]
pub unsafe extern "C" fn kp_engine_audit_write_digest(engine: *const kp_engine) -> kp_status {
    guard(|| {
        let engine = from_caller!(engine_arg(engine))?;
        audit_log(engine)?.write_digest().map_err(audit_failure)
    })
}

/// The latest digest line the audit log made durable since it was opened, to be kept elsewhere
/// (a copy elsewhere shows a log cut after that digest): a record with AUDIT_DIGEST_LINE, absent
/// until a digest has been written.
///
/// Ownership: on success `*out` is a new record the caller frees with `kp_record_free`. Thread
/// safety: thread-safe on a shared engine.
///
/// # Safety
/// `engine` is a live handle; `out` points to writable storage for a pointer.
#[no_mangle]
pub unsafe extern "C" fn kp_engine_audit_last_digest(
    engine: *const kp_engine,
    out: *mut *mut kp_record,
) -> kp_status {
    guard(|| {
        let engine = from_caller!(engine_arg(engine))?;
        let out = out_arg(out, "out")?;
        let line = audit_log(engine)?.last_digest();
        let record = Record::new().opt_str(kp_field::AuditDigestLine, line.as_deref());
        from_caller!(give_record(out, record));
        Ok(())
    })
}

/// Verifies the audit log at `path` against the audit public key (`public_key`, DER
/// SubjectPublicKeyInfo, `public_key_len` bytes) and describes what it found in a record:
/// AUDIT_VERDICT (a `kp_audit_verdict`), AUDIT_RECORDS, AUDIT_DIGESTS, AUDIT_UNSIGNED_TAIL,
/// AUDIT_SUMMARY, and when they apply AUDIT_LAST_SEQ, AUDIT_SIGNED_THROUGH,
/// AUDIT_TRUNCATED_LINE/OFFSET/BYTES and AUDIT_PROBLEM_KIND/LINE/SEQ/DETAIL (the first problem).
/// A tampered log is a successful call whose verdict says so; the call fails only for a file it
/// cannot read (`KP_STATUS_AUDIT_UNAVAILABLE`) or a public key it cannot use
/// (`KP_STATUS_AUDIT_KEY`). Needs no engine.
///
/// Ownership: on success `*out` is a new record the caller frees with `kp_record_free`. Thread
/// safety: callable from any thread (verifying a log that an engine is writing sees a prefix).
///
/// # Safety
/// `path` is a NUL-terminated string; `public_key` has `public_key_len` readable bytes; `out`
/// points to writable storage for a pointer.
#[no_mangle]
pub unsafe extern "C" fn kp_audit_verify(
    path: *const c_char,
    public_key: *const u8,
    public_key_len: usize,
    out: *mut *mut kp_record,
) -> kp_status {
    guard(|| {
        refuse_overlap(&mut [
            Span::input(public_key, public_key_len, "public_key"),
            Span::output_of(out, "out"),
        ])?;
        let (path, public_key) = (
            from_caller!(str_arg(path, "path"))?,
            from_caller!(bytes_arg(public_key, public_key_len, "public_key"))?,
        );
        let out = out_arg(out, "out")?;
        let report = kp::audit::verify(Path::new(path), public_key).map_err(audit_failure)?;
        let verdict = match report.verdict() {
            Verdict::Intact => kp_audit_verdict::Intact,
            Verdict::UnsignedTail => kp_audit_verdict::UnsignedTail,
            Verdict::Truncated => kp_audit_verdict::Truncated,
            Verdict::Tampered => kp_audit_verdict::Tampered,
        };
        let int = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        let problem = report.problem.as_ref();
        let record = Record::new()
            .int(kp_field::AuditVerdict, verdict as i64)
            .int(kp_field::AuditRecords, int(report.records))
            .int(kp_field::AuditDigests, int(report.digests))
            .opt_int(kp_field::AuditLastSeq, report.last_seq.map(int))
            .opt_int(kp_field::AuditSignedThrough, report.signed_through.map(int))
            .int(kp_field::AuditUnsignedTail, int(report.unsigned_tail))
            .opt_int(
                kp_field::AuditTruncatedLine,
                report.truncated.map(|t| int(t.line)),
            )
            .opt_int(
                kp_field::AuditTruncatedOffset,
                report.truncated.map(|t| int(t.offset)),
            )
            .opt_int(
                kp_field::AuditTruncatedBytes,
                report.truncated.map(|t| int(t.bytes)),
            )
            .opt_str(kp_field::AuditProblemKind, problem.map(|p| p.kind.as_str()))
            .opt_int(kp_field::AuditProblemLine, problem.map(|p| int(p.line)))
            .opt_int(
                kp_field::AuditProblemSeq,
                problem.and_then(|p| p.seq).map(int),
            )
            .opt_str(
                kp_field::AuditProblemDetail,
                problem.map(|p| p.detail.as_str()),
            )
            .str(kp_field::AuditSummary, &report.to_string());
        from_caller!(give_record(out, record));
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audit_errors_have_their_codes() {
        use kp::audit::AuditError as A;
        assert_eq!(
            audit_failure(A::Key("k".into())).status,
            kp_status::AuditKey
        );
        for e in [
            A::Io("i".into()),
            A::Closed,
            A::Tampered("t".into()),
            A::Serialize("s".into()),
            A::Config("c".into()),
        ] {
            assert_eq!(audit_failure(e).status, kp_status::AuditUnavailable);
        }
    }
}
