//! The audit record id of the data-plane request running on this thread (with an audit log): the
//! data plane sends it to an XKS proxy as `requestMetadata.kmsRequestId`, so that a proxy request
//! is traced to the record of the call that caused it.

use std::sync::Arc;

thread_local! {
    static REQUEST_ID: std::cell::RefCell<Option<Arc<str>>> = const { std::cell::RefCell::new(None) };
}

/// The audit record id of the data-plane request running on this thread, if it has one (read by
/// the data plane on the calling thread, before a batch fans out to the worker pool).
pub(crate) fn current_request_id() -> Option<Arc<str>> {
    REQUEST_ID.with(|r| r.borrow().clone())
}

/// Runs `work` with `id` as this thread's current request id, restoring the previous one.
pub(super) fn with_request_id<T>(id: Option<Arc<str>>, work: impl FnOnce() -> T) -> T {
    let previous = REQUEST_ID.with(|r| r.replace(id));
    let result = work();
    REQUEST_ID.with(|r| *r.borrow_mut() = previous);
    result
}
