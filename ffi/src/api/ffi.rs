//! Conventions shared by every export: the panic boundary, the thread's last error, and checked
//! conversions of pointers, lengths and strings. (What a failure is: [`super::failure`].)

use std::cell::RefCell;
use std::ffi::{c_char, CStr};
use std::panic::{catch_unwind, AssertUnwindSafe};

use super::caller::from_caller;
use super::failure::{Failure, Outcome};
use super::limits::KP_MAX_LENGTH;
use super::overlap::{refuse_overlap, Span};
use super::status::kp_status;

thread_local! {
    static LAST_ERROR: RefCell<String> = const { RefCell::new(String::new()) };
}

/// Records `message` as this thread's last error.
pub(crate) fn set_last_error(message: String) {
    // A thread being torn down has no last error to keep; ignore that case.
    let _ = LAST_ERROR.try_with(|last| {
        if let Ok(mut last) = last.try_borrow_mut() {
            *last = message;
        }
    });
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    let what = payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(no message)");
    format!("Panic: keyplane caught a panic (a bug; please report it): {what}")
}

/// Runs an export's body: catches panics, records a failure as the thread's last error, and
/// returns the status.
pub(crate) fn guard(body: impl FnOnce() -> Outcome<()>) -> kp_status {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(())) => kp_status::Ok,
        Ok(Err(failure)) => {
            set_last_error(failure.message);
            failure.status
        }
        Err(payload) => {
            set_last_error(panic_message(payload.as_ref()));
            kp_status::Panic
        }
    }
}

/// Like [`guard`] for exports that return a value rather than a status (accessors): a failure
/// or a panic returns `fallback`.
pub(crate) fn guard_value<T>(fallback: T, body: impl FnOnce() -> Outcome<T>) -> T {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(value)) => value,
        Ok(Err(failure)) => {
            set_last_error(failure.message);
            fallback
        }
        Err(payload) => {
            set_last_error(panic_message(payload.as_ref()));
            fallback
        }
    }
}

/// A required NUL-terminated UTF-8 string.
///
/// # Safety
/// `ptr` is NULL or points to a NUL-terminated string that stays valid and unchanged for `'a`.
pub(crate) unsafe fn str_arg<'a>(ptr: *const c_char, what: &str) -> Outcome<&'a str> {
    if ptr.is_null() {
        return Err(Failure::null(what));
    }
    // SAFETY: not NULL, and the caller promises a NUL-terminated string valid for 'a.
    let bytes = unsafe { CStr::from_ptr(ptr) };
    bytes
        .to_str()
        .map_err(|_| Failure::new(kp_status::InvalidUtf8, format!("{what} is not valid UTF-8")))
}

/// An optional NUL-terminated UTF-8 string: NULL is `None`.
///
/// # Safety
/// As [`str_arg`].
pub(crate) unsafe fn opt_str_arg<'a>(ptr: *const c_char, what: &str) -> Outcome<Option<&'a str>> {
    if ptr.is_null() {
        return Ok(None);
    }
    from_caller!(str_arg(ptr, what)).map(Some)
}

/// Checks a length against [`KP_MAX_LENGTH`].
#[inline]
pub(crate) fn check_len(len: usize, what: &str) -> Outcome<()> {
    if len > KP_MAX_LENGTH {
        return Err(absurd_length(len, what));
    }
    Ok(())
}

// The failures of the checks that run for every batch item, out of line so that the checks
// themselves inline into the batch loops.

#[cold]
#[inline(never)]
fn absurd_length(len: usize, what: &str) -> Failure {
    Failure::new(
        kp_status::InvalidLength,
        format!("{what} length {len} is absurd (the most is {KP_MAX_LENGTH})"),
    )
}

#[cold]
#[inline(never)]
fn null(what: &str) -> Failure {
    Failure::null(what)
}

#[cold]
#[inline(never)]
fn buffer_too_small(what: &str, capacity: usize, needed: usize) -> Failure {
    Failure::new(
        kp_status::BufferTooSmall,
        format!("{what} has {capacity} bytes; the output needs {needed}"),
    )
}

/// An input byte string of `len` bytes at `ptr`; `ptr` may be NULL when `len` is 0.
///
/// # Safety
/// When `len > 0`, `ptr` points to `len` readable bytes that stay valid and unchanged for `'a`.
#[inline]
pub(crate) unsafe fn bytes_arg<'a>(ptr: *const u8, len: usize, what: &str) -> Outcome<&'a [u8]> {
    check_len(len, what)?;
    if len == 0 {
        return Ok(&[]);
    }
    if ptr.is_null() {
        return Err(null(what));
    }
    // SAFETY: not NULL, len <= 1 GiB (so within isize::MAX), and the caller promises `len`
    // readable bytes valid for 'a.
    Ok(unsafe { std::slice::from_raw_parts(ptr, len) })
}

/// An input array of `count` items of `T` at `ptr`; `ptr` may be NULL when `count` is 0.
///
/// # Safety
/// When `count > 0`, `ptr` points to `count` initialised `T`s valid and unchanged for `'a`.
pub(crate) unsafe fn array_arg<'a, T>(
    ptr: *const T,
    count: usize,
    max: usize,
    what: &str,
) -> Outcome<&'a [T]> {
    if count > max {
        return Err(Failure::new(
            kp_status::InvalidLength,
            format!("{what}: {count} items is absurd (the most is {max})"),
        ));
    }
    if count == 0 {
        return Ok(&[]);
    }
    usable(ptr, what)?;
    // SAFETY: not NULL, aligned, count <= max keeps the size far below isize::MAX for the item
    // types used here, and the caller promises `count` initialised items valid for 'a.
    Ok(unsafe { std::slice::from_raw_parts(ptr, count) })
}

/// An output pointer (a `T*` out-parameter) that [`out_arg`] checked: not NULL, aligned.
pub(crate) struct OutPtr<T>(*mut T);

impl<T> Clone for OutPtr<T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for OutPtr<T> {}

impl<T> OutPtr<T> {
    /// The pointer, for the overlap checks.
    pub(crate) fn as_ptr(self) -> *mut T {
        self.0
    }
}

/// Checks a required output pointer (`T*` out-parameter) and returns it.
pub(crate) fn out_arg<T>(ptr: *mut T, what: &str) -> Outcome<OutPtr<T>> {
    usable(ptr, what)?;
    Ok(OutPtr(ptr))
}

/// Reads an optional struct argument (`const T*` that may be NULL): `None` for NULL.
///
/// # Safety
/// `ptr` is NULL or points to an initialised `T`.
pub(crate) unsafe fn opt_struct_arg<T: Copy>(ptr: *const T, what: &str) -> Outcome<Option<T>> {
    if ptr.is_null() {
        return Ok(None);
    }
    usable(ptr, what)?;
    // SAFETY: not NULL, aligned, and the caller promises an initialised T.
    Ok(Some(unsafe { ptr.read() }))
}

/// Refuses a NULL or misaligned pointer to a `T`, naming the argument `what`.
fn usable<T>(ptr: *const T, what: &str) -> Outcome<()> {
    if ptr.is_null() {
        return Err(Failure::null(what));
    }
    if !ptr.is_aligned() {
        return Err(Failure::new(
            kp_status::InvalidArgument,
            format!("{what} is misaligned"),
        ));
    }
    Ok(())
}

/// Checks an output byte buffer of `capacity` bytes at `ptr` that must take `needed` bytes, and
/// returns the first `needed` bytes of it.
///
/// # Safety
/// When `capacity > 0`, `ptr` points to `capacity` writable bytes valid for `'a` that nothing
/// else reads or writes meanwhile.
#[inline]
pub(crate) unsafe fn out_bytes<'a>(
    ptr: *mut u8,
    capacity: usize,
    needed: usize,
    what: &str,
) -> Outcome<&'a mut [u8]> {
    check_len(capacity, what)?;
    if capacity < needed {
        return Err(buffer_too_small(what, capacity, needed));
    }
    if needed == 0 {
        return Ok(&mut []);
    }
    if ptr.is_null() {
        return Err(null(what));
    }
    // SAFETY: not NULL, needed <= capacity <= 1 GiB, and the caller promises `capacity` writable
    // bytes valid for 'a with no other access meanwhile.
    Ok(unsafe { std::slice::from_raw_parts_mut(ptr, needed) })
}

/// Writes `value` through a checked out-pointer.
///
/// # Safety
/// `out` points to writable memory for a `T` that nobody else uses meanwhile.
pub(crate) unsafe fn write_out<T>(out: OutPtr<T>, value: T) {
    // SAFETY: not NULL and aligned (`out_arg` checked it), and writable by this function's
    // contract.
    unsafe { out.0.write(value) }
}

/// Writes this thread's last error message, NUL-terminated, into `buf` (`capacity` bytes) and its
/// length without the NUL into `*out_len` (optional). The message is empty when no call on this
/// thread has failed. Each failing call replaces it; successful calls leave it alone.
///
/// Returns `KP_STATUS_BUFFER_TOO_SMALL` (writing nothing into `buf`, but the needed length less
/// one into `*out_len`) when `capacity` is not more than the message's length;
/// `kp_last_error_length() + 1` bytes always suffice.
///
/// Ownership: the caller owns `buf`. Thread safety: reads the calling thread's own message.
///
/// # Safety
/// `buf` points to `capacity` writable bytes; `out_len` is NULL or points to a writable `size_t`.
#[no_mangle]
pub unsafe extern "C" fn kp_last_error_message(
    buf: *mut c_char,
    capacity: usize,
    out_len: *mut usize,
) -> kp_status {
    // Not run through `guard`, so that a failure here does not replace the message it reports.
    let result = catch_unwind(AssertUnwindSafe(|| {
        if buf.is_null() {
            return kp_status::NullParameter;
        }
        if capacity > KP_MAX_LENGTH {
            return kp_status::InvalidLength;
        }
        if !out_len.is_null() && !out_len.is_aligned() {
            return kp_status::InvalidArgument;
        }
        let buf_span = Span::output(buf.cast(), capacity, "buf");
        if refuse_overlap(&mut [buf_span, Span::output_of(out_len, "out_len")]).is_err() {
            return kp_status::OverlappingBuffers;
        }
        LAST_ERROR.with(|last| {
            let last = last.borrow();
            let len = last.len();
            if !out_len.is_null() {
                // SAFETY: checked non-NULL and aligned; the caller promises it is writable.
                unsafe { out_len.write(len) };
            }
            if capacity <= len {
                return kp_status::BufferTooSmall;
            }
            // SAFETY: `buf` has `capacity > len` writable bytes (caller's promise); the source is
            // our own string, which cannot overlap the caller's buffer.
            unsafe {
                std::ptr::copy_nonoverlapping(last.as_ptr(), buf.cast::<u8>(), len);
                buf.add(len).write(0);
            }
            kp_status::Ok
        })
    }));
    result.unwrap_or(kp_status::Panic)
}

/// Length in bytes (without the terminating NUL) of this thread's last error message.
///
/// Ownership: nothing to free. Thread safety: reads the calling thread's own message.
#[no_mangle]
pub extern "C" fn kp_last_error_length() -> usize {
    catch_unwind(|| LAST_ERROR.with(|last| last.borrow().len())).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_becomes_a_status_and_a_message() {
        let status = guard(|| panic!("boom"));
        assert_eq!(status, kp_status::Panic);
        let mut buf = [0 as c_char; 256];
        let mut len = 0usize;
        // SAFETY: buf has 256 writable bytes; len is a local.
        let got = unsafe { kp_last_error_message(buf.as_mut_ptr(), buf.len(), &mut len) };
        assert_eq!(got, kp_status::Ok);
        // SAFETY: kp_last_error_message NUL-terminated it.
        let message = unsafe { CStr::from_ptr(buf.as_ptr()) }.to_str().unwrap();
        assert!(
            message.starts_with("Panic:") && message.ends_with("boom"),
            "{message}"
        );
        assert_eq!(len, message.len());
        assert_eq!(guard_value(7, || panic!("again")), 7);
    }

    #[test]
    fn short_buffers_get_the_length_and_nothing_else() {
        let _ = guard(|| Err(Failure::new(kp_status::Validation, "twelve chars")));
        assert_eq!(kp_last_error_length(), 12);
        let mut buf = [b'x' as c_char; 12];
        let mut len = 0usize;
        // SAFETY: buf has 12 writable bytes.
        let got = unsafe { kp_last_error_message(buf.as_mut_ptr(), buf.len(), &mut len) };
        assert_eq!((got, len), (kp_status::BufferTooSmall, 12));
        assert!(buf.iter().all(|&c| c == b'x' as c_char));
        // SAFETY: NULL buffer is refused before use.
        let got = unsafe { kp_last_error_message(std::ptr::null_mut(), 0, &mut len) };
        assert_eq!(got, kp_status::NullParameter);
    }

    #[test]
    fn lengths_and_pointers_are_checked() {
        // SAFETY: every call below is refused before memory is touched.
        unsafe {
            assert_eq!(
                bytes_arg(std::ptr::null(), 3, "x").unwrap_err().status,
                kp_status::NullParameter
            );
            assert_eq!(
                bytes_arg(std::ptr::null(), usize::MAX, "x")
                    .unwrap_err()
                    .status,
                kp_status::InvalidLength
            );
            assert!(bytes_arg(std::ptr::null(), 0, "x").unwrap().is_empty());
            assert_eq!(
                out_bytes(std::ptr::null_mut(), 10, 11, "x")
                    .unwrap_err()
                    .status,
                kp_status::BufferTooSmall
            );
            let bad = [0xffu8, 0];
            assert_eq!(
                str_arg(bad.as_ptr().cast(), "x").unwrap_err().status,
                kp_status::InvalidUtf8
            );
        }
    }
}
