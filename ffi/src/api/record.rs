//! Results with named fields (`kp_record`) and pages of them (`kp_page`): key metadata, list
//! entries, rotation status, and the details of single data-plane calls.

use std::ffi::{c_char, CString};

use super::caller::from_caller;
use super::failure::{Failure, Outcome};
use super::ffi::{guard_value, out_arg, write_out, OutPtr};
use super::handles::{free_handle, handle, handle_ref, into_raw, Tagged};
use super::status::kp_status;

/// Names of the fields a `kp_record` may have. Which fields a record has depends on the call that
/// made it (each call's documentation lists them). Numbers are never reused.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum kp_field {
    /// String: the key's id (a UUID) in key metadata and list entries; the key's ARN in the
    /// answers of data-plane calls, rotation status, deletion and rotation.
    KeyId = 1,
    /// String: the key's ARN.
    Arn = 2,
    /// String: the account id in the key's ARN.
    AwsAccountId = 3,
    /// String: the key's description.
    Description = 4,
    /// String: the key usage, as the service spells it ("ENCRYPT_DECRYPT", ...).
    KeyUsage = 5,
    /// String: the key state ("Enabled", "Disabled", "PendingDeletion", ...).
    KeyState = 6,
    /// String: the key spec ("SYMMETRIC_DEFAULT", ...).
    KeySpec = 7,
    /// String: the origin ("AWS_KMS", "EXTERNAL", ...).
    Origin = 8,
    /// String: the key manager ("CUSTOMER" or "AWS").
    KeyManager = 9,
    /// String: the current key material's id (64 hex characters), when the key has material.
    CurrentKeyMaterialId = 10,
    /// Bool: whether the key is enabled.
    Enabled = 11,
    /// Bool: whether the key is multi-Region.
    MultiRegion = 12,
    /// Bool: whether automatic rotation is on.
    KeyRotationEnabled = 13,
    /// Int: creation date, milliseconds since the Unix epoch.
    CreationDate = 14,
    /// Int: deletion date (ms since the epoch), when deletion is scheduled.
    DeletionDate = 15,
    /// Int: the deletion waiting period in days, when deletion is scheduled.
    PendingWindowInDays = 16,
    /// String: the encryption algorithms the key allows, comma-separated (may be empty).
    EncryptionAlgorithms = 17,
    /// String: the signing algorithms the key allows, comma-separated (may be empty).
    SigningAlgorithms = 18,
    /// String: the MAC algorithms the key allows, comma-separated (may be empty).
    MacAlgorithms = 19,
    /// String: the key agreement algorithms the key allows, comma-separated (may be empty).
    KeyAgreementAlgorithms = 20,
    /// String: the whole record as the service's JSON (field names as in its API), for records
    /// made by control-plane calls.
    Json = 21,

    /// Int: the automatic rotation period in days, when rotation is on.
    RotationPeriodInDays = 30,
    /// Int: the next automatic rotation date (ms since the epoch), when rotation is on.
    NextRotationDate = 31,
    /// String: a key material's id (64 hex characters).
    KeyMaterialId = 32,
    /// Int: when a rotation happened (ms since the epoch).
    RotationDate = 33,
    /// String: how a rotation happened ("AUTOMATIC" or "ON_DEMAND").
    RotationType = 34,
    /// String: imported material's expiration model (key metadata, rotation entries).
    ExpirationModel = 35,
    /// Integer: when imported material expires, epoch milliseconds (absent: it does not).
    ValidTo = 36,
    /// Integer: until when import parameters are valid, epoch milliseconds.
    ParametersValidTo = 37,
    /// String: an imported material's description (rotation entries).
    KeyMaterialDescription = 38,
    /// String: IMPORTED or PENDING_IMPORT (rotation entries of EXTERNAL keys).
    ImportState = 39,

    /// String: an alias name ("alias/...").
    AliasName = 40,
    /// String: an alias ARN.
    AliasArn = 41,
    /// String: the id of the key an alias points to.
    TargetKeyId = 42,
    /// Int: when an alias last changed (ms since the epoch).
    LastUpdatedDate = 43,

    /// String: a tag's key.
    TagKey = 50,
    /// String: a tag's value.
    TagValue = 51,

    /// String: the encryption algorithm that was used ("SYMMETRIC_DEFAULT", ...).
    EncryptionAlgorithm = 60,
    /// String: ReEncrypt: the ARN of the key that decrypted.
    SourceKeyId = 61,
    /// String: ReEncrypt: the id of the key material that decrypted.
    SourceKeyMaterialId = 62,
    /// String: ReEncrypt: the algorithm that decrypted.
    SourceEncryptionAlgorithm = 63,
    /// String: ReEncrypt: the algorithm that encrypted.
    DestinationEncryptionAlgorithm = 64,
    /// String: ReEncrypt: the id of the key material that encrypted.
    DestinationKeyMaterialId = 65,

    /// String: the signing algorithm that was used ("ECDSA_SHA_256", ...).
    SigningAlgorithm = 70,
    /// String: the MAC algorithm that was used ("HMAC_SHA_256", ...).
    MacAlgorithm = 71,
    /// String: the key agreement algorithm that was used ("ECDH").
    KeyAgreementAlgorithm = 72,
    /// String: the spec of a generated data key pair ("ECC_NIST_P256", ...).
    KeyPairSpec = 73,

    /// String: a key policy document (JSON).
    Policy = 80,
    /// String: a key policy's name (always "default").
    PolicyName = 81,

    /// String: a grant's id (64 hex characters).
    GrantId = 90,
    /// String: a grant token, for RetireGrant.
    GrantToken = 91,
    /// String: a grant's name, when it has one.
    GrantName = 92,
    /// String: the principal a grant lets use the key.
    GranteePrincipal = 93,
    /// String: the principal that may retire a grant, when there is one.
    RetiringPrincipal = 94,
    /// String: the account that issued a grant, as its root ARN.
    IssuingAccount = 95,
    /// String: the operations a grant allows, comma-separated ("Encrypt,Decrypt").
    Operations = 96,

    /// Int: GetKeyLastUsage: when the engine began recording uses (ms since the epoch); absent
    /// without an audit log.
    TrackingStartDate = 100,
    /// Int: GetKeyLastUsage: when the key was last used successfully (ms since the epoch); absent
    /// when it has not been used since tracking began.
    LastUsedDate = 101,
    /// String: GetKeyLastUsage: the operation of that last use ("Encrypt", ...).
    LastUsedOperation = 102,
    /// String: GetKeyLastUsage: the audit record's event id for that last use.
    CloudTrailEventId = 103,
    /// String: GetKeyLastUsage: the request id of that last use.
    KmsRequestId = 104,

    /// Int: audit verification: the overall result, a `kp_audit_verdict`.
    AuditVerdict = 110,
    /// Int: audit verification: records whose chain verified.
    AuditRecords = 111,
    /// Int: audit verification: digests whose signature and position verified.
    AuditDigests = 112,
    /// Int: audit verification: the last record whose chain verified; absent when none did.
    AuditLastSeq = 113,
    /// Int: audit verification: the last record covered by a valid digest; absent when none is.
    AuditSignedThrough = 114,
    /// Int: audit verification: verified records after the last valid digest.
    AuditUnsignedTail = 115,
    /// Int: audit verification: the line (from 1) of a last line cut short by a crash; absent when
    /// the last line is whole.
    AuditTruncatedLine = 116,
    /// Int: audit verification: the byte offset of that cut line.
    AuditTruncatedOffset = 117,
    /// Int: audit verification: how many bytes of that cut line there are.
    AuditTruncatedBytes = 118,
    /// String: audit verification: the kind of the first problem ("modified record", ...);
    /// absent when no tampering was found.
    AuditProblemKind = 119,
    /// Int: audit verification: the line (from 1) where the first problem shows.
    AuditProblemLine = 120,
    /// Int: audit verification: the record concerned by the first problem, when one is.
    AuditProblemSeq = 121,
    /// String: audit verification: the first problem, in words.
    AuditProblemDetail = 122,
    /// String: audit verification: the whole report in one line ("OK: 12 records verified, ...").
    AuditSummary = 123,
    /// String: the latest digest line the audit log made durable, to be kept elsewhere; absent
    /// until one is written.
    AuditDigestLine = 124,

    /// String: CURRENT, NON_CURRENT or PENDING_ROTATION (rotation entries of EXTERNAL keys).
    KeyMaterialState = 130,

    /// String: a custom key store's id (`cks-` and 17 hex digits).
    CustomKeyStoreId = 140,
    /// String: a custom key store's ConnectionState (CONNECTED, DISCONNECTED, FAILED, ...).
    ConnectionState = 141,
    /// String: a FAILED custom key store's ConnectionErrorCode (INVALID_CREDENTIALS, ...).
    ConnectionErrorCode = 142,
    /// String: the configured HSM (PKCS#11 token) of an AWS_CLOUDHSM custom key store or key.
    CloudHsmClusterId = 143,
}

#[derive(Debug)]
enum Value {
    Str(CString),
    Int(i64),
    Bool(bool),
}

/// A result with named fields (see `kp_field`), read with `kp_record_string`, `kp_record_int`
/// and `kp_record_bool`. Immutable: any number of threads may read one at once.
pub struct kp_record {
    _private: [u8; 0],
}
handle!(kp_record, Record, 0x6b70_7265_636f_7264);

/// What a `kp_record` holds.
#[derive(Debug)]
pub(crate) struct Record {
    /// Whether the caller frees it (false for a page's items, which the page owns).
    owned: bool,
    fields: Vec<(kp_field, Value)>,
}

fn cstring(s: &str) -> CString {
    CString::new(s).unwrap_or_else(|_| {
        CString::new(s.replace('\0', "\u{fffd}")).unwrap_or_else(|_| CString::default())
    })
}

impl Record {
    pub(crate) fn new() -> Self {
        Record {
            owned: true,
            fields: Vec::new(),
        }
    }
    pub(crate) fn str(mut self, field: kp_field, value: &str) -> Self {
        self.fields.push((field, Value::Str(cstring(value))));
        self
    }
    pub(crate) fn opt_str(self, field: kp_field, value: Option<&str>) -> Self {
        match value {
            Some(v) => self.str(field, v),
            None => self,
        }
    }
    /// A list field: the items' names, comma-separated.
    pub(crate) fn list<T: std::fmt::Display>(self, field: kp_field, items: &[T]) -> Self {
        let joined = items
            .iter()
            .map(|i| i.to_string())
            .collect::<Vec<_>>()
            .join(",");
        self.str(field, &joined)
    }

    pub(crate) fn int(mut self, field: kp_field, value: i64) -> Self {
        self.fields.push((field, Value::Int(value)));
        self
    }
    pub(crate) fn opt_int(self, field: kp_field, value: Option<i64>) -> Self {
        match value {
            Some(v) => self.int(field, v),
            None => self,
        }
    }
    pub(crate) fn flag(mut self, field: kp_field, value: bool) -> Self {
        self.fields.push((field, Value::Bool(value)));
        self
    }
    pub(crate) fn json(self, value: &impl serde::Serialize) -> Outcome<Self> {
        let json = serde_json::to_string(value).map_err(|e| {
            Failure::new(
                kp_status::Internal,
                format!("Internal: could not serialise a result: {e}"),
            )
        })?;
        Ok(self.str(kp_field::Json, &json))
    }
    fn get(&self, field: u32) -> Option<&Value> {
        self.fields
            .iter()
            .find(|(f, _)| *f as u32 == field)
            .map(|(_, v)| v)
    }
}

/// Hands a record to the caller through `out`.
///
/// # Safety
/// As [`write_out`].
pub(crate) unsafe fn give_record(out: OutPtr<*mut kp_record>, record: Record) {
    from_caller!(write_out(out, into_raw::<kp_record>(record)))
}

/// Hands a record to the caller through an optional `out` (NULL: the record is dropped).
///
/// # Safety
/// `out` is NULL or points to writable storage for a pointer.
pub(crate) unsafe fn give_opt_record(
    out: *mut *mut kp_record,
    record: impl FnOnce() -> Record,
) -> Outcome<()> {
    if out.is_null() {
        return Ok(());
    }
    let out = out_arg(out, "out")?;
    from_caller!(give_record(out, record()));
    Ok(())
}

/// The string field `field` (a `kp_field`) of a record, NUL-terminated; NULL when the record has
/// no such string field or the handle is invalid.
///
/// Ownership: the string belongs to the record and lives as long as it. Thread safety:
/// thread-safe.
///
/// # Safety
/// `record` is a live handle.
#[no_mangle]
pub unsafe extern "C" fn kp_record_string(record: *const kp_record, field: u32) -> *const c_char {
    guard_value(std::ptr::null(), || {
        let record = from_caller!(handle_ref(record, "record"))?;
        Ok(match record.get(field) {
            Some(Value::Str(s)) => s.as_ptr(),
            _ => std::ptr::null(),
        })
    })
}

/// Reads the integer field `field` (a `kp_field`: dates in milliseconds since the Unix epoch,
/// periods in days) into `*out`. Returns false, writing nothing, when the record has no such
/// integer field (for example, no deletion date because none is scheduled) or an argument is
/// invalid.
///
/// Ownership: nothing is taken. Thread safety: thread-safe.
///
/// # Safety
/// `record` is a live handle; `out` points to a writable `int64_t`.
#[no_mangle]
pub unsafe extern "C" fn kp_record_int(
    record: *const kp_record,
    field: u32,
    out: *mut i64,
) -> bool {
    guard_value(false, || {
        let record = from_caller!(handle_ref(record, "record"))?;
        let out = out_arg(out, "out")?;
        match record.get(field) {
            Some(Value::Int(v)) => {
                from_caller!(write_out(out, *v));
                Ok(true)
            }
            _ => Ok(false),
        }
    })
}

/// Reads the boolean field `field` (a `kp_field`) into `*out`. Returns false, writing nothing,
/// when the record has no such boolean field or an argument is invalid.
///
/// Ownership: nothing is taken. Thread safety: thread-safe.
///
/// # Safety
/// `record` is a live handle; `out` points to a writable `bool`.
#[no_mangle]
pub unsafe extern "C" fn kp_record_bool(
    record: *const kp_record,
    field: u32,
    out: *mut bool,
) -> bool {
    guard_value(false, || {
        let record = from_caller!(handle_ref(record, "record"))?;
        let out = out_arg(out, "out")?;
        match record.get(field) {
            Some(Value::Bool(v)) => {
                from_caller!(write_out(out, *v));
                Ok(true)
            }
            _ => Ok(false),
        }
    })
}

/// Frees a record the caller received. NULL is ignored, and so is a record that belongs to a
/// page (from `kp_page_item`; freed with its page).
///
/// Ownership: takes the handle. Thread safety: nothing else may use it meanwhile.
///
/// # Safety
/// `record` is NULL or a handle this library returned, not freed before.
#[no_mangle]
pub unsafe extern "C" fn kp_record_free(record: *mut kp_record) {
    from_caller!(free_handle(record, |r: &Record| r.owned))
}

/// One page of a List call: records in order, and a marker for the next page. Immutable: any
/// number of threads may read one at once.
pub struct kp_page {
    _private: [u8; 0],
}
handle!(kp_page, Page, 0x6b70_7061_6765_0000);

/// What a `kp_page` holds.
pub(crate) struct Page {
    items: Vec<Tagged<Record>>,
    next_marker: Option<CString>,
    truncated: bool,
}

/// A page of a List call's answer, each item as the record `record` makes of it, for
/// [`give_page`].
pub(crate) fn page_of<T>(
    page: kp::Page<T>,
    record: impl Fn(T) -> Outcome<Record>,
) -> Outcome<Page> {
    let items = page
        .items
        .into_iter()
        .map(|item| {
            record(item).map(|mut r| {
                r.owned = false;
                Tagged::new::<kp_record>(r)
            })
        })
        .collect::<Outcome<Vec<_>>>()?;
    Ok(Page {
        items,
        next_marker: page.next_marker.as_deref().map(cstring),
        truncated: page.truncated,
    })
}

/// Hands a page to the caller through `out`.
///
/// # Safety
/// As [`write_out`].
pub(crate) unsafe fn give_page(out: OutPtr<*mut kp_page>, page: Page) {
    from_caller!(write_out(out, into_raw::<kp_page>(page)));
}

/// Number of records on the page; 0 for an invalid handle.
///
/// Ownership: nothing is taken. Thread safety: thread-safe.
///
/// # Safety
/// `page` is a live handle.
#[no_mangle]
pub unsafe extern "C" fn kp_page_len(page: *const kp_page) -> usize {
    guard_value(0, || {
        Ok(from_caller!(handle_ref(page, "page"))?.items.len())
    })
}

/// Record `index` of the page; NULL when `index` is out of range or the handle is invalid.
///
/// Ownership: the record belongs to the page (do not free it; it lives as long as the page).
/// Thread safety: thread-safe.
///
/// # Safety
/// `page` is a live handle.
#[no_mangle]
pub unsafe extern "C" fn kp_page_item(page: *const kp_page, index: usize) -> *const kp_record {
    guard_value(std::ptr::null(), || {
        let page = from_caller!(handle_ref(page, "page"))?;
        Ok(page.items.get(index).map_or(std::ptr::null(), |r| {
            (r as *const Tagged<Record>).cast::<kp_record>()
        }))
    })
}

/// Whether more records follow this page (pass `kp_page_next_marker` to get them).
///
/// Ownership: nothing is taken. Thread safety: thread-safe.
///
/// # Safety
/// `page` is a live handle.
#[no_mangle]
pub unsafe extern "C" fn kp_page_truncated(page: *const kp_page) -> bool {
    guard_value(false, || {
        Ok(from_caller!(handle_ref(page, "page"))?.truncated)
    })
}

/// The marker to pass to the same List call for the next page; NULL on the last page.
///
/// Ownership: the string belongs to the page. Thread safety: thread-safe.
///
/// # Safety
/// `page` is a live handle.
#[no_mangle]
pub unsafe extern "C" fn kp_page_next_marker(page: *const kp_page) -> *const c_char {
    guard_value(std::ptr::null(), || {
        let page = from_caller!(handle_ref(page, "page"))?;
        Ok(page
            .next_marker
            .as_ref()
            .map_or(std::ptr::null(), |m| m.as_ptr()))
    })
}

/// Frees a page and its records. NULL is ignored.
///
/// Ownership: takes the handle. Thread safety: nothing else may use it or its records meanwhile.
///
/// # Safety
/// `page` is NULL or a handle this library returned, not freed before.
#[no_mangle]
pub unsafe extern "C" fn kp_page_free(page: *mut kp_page) {
    from_caller!(free_handle(page, |_: &_| true))
}
