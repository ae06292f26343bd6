//! What the operations' handlers share about members: refusing the model's members keyplane does
//! not support, and a list answer's page members.

use keyplane::Page;

use super::json::{Input, Out};
use super::reply::Fault;

/// Refuses members of the model that keyplane does not support, when a request gives them.
pub(crate) fn refuse_unsupported(input: &Input, members: &[&str]) -> Result<(), Fault> {
    match members.iter().find(|m| input.has(m)) {
        Some(member) => Err(keyplane::Error::UnsupportedOperation(format!(
            "{member} is not supported by keyplane ({})",
            input.operation()
        ))
        .into()),
        None => Ok(()),
    }
}

/// A list response: `key` holds the entries; `NextMarker` when truncated; `Truncated`.
pub(super) fn list_page<T>(key: &str, page: &Page<T>, entry: impl Fn(&mut Out, &T)) -> Out {
    let mut out = Out::new();
    out.objects(key, &page.items, entry)
        .opt("NextMarker", page.next_marker.as_deref())
        .bool("Truncated", page.truncated);
    out
}
