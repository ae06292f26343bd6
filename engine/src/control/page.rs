//! Pagination (Limit + Marker) shared by every List call.

use crate::error::{validation, Error, Result};

/// One page of a list.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Pass as `marker` to get the next page; present only when `truncated`.
    pub next_marker: Option<String>,
    pub truncated: bool,
}

/// Checks a Limit against the call's range; `None` takes the default.
pub(crate) fn limit(limit: Option<u32>, default: u32, max: u32) -> Result<usize> {
    let limit = limit.unwrap_or(default);
    if !(1..=max).contains(&limit) {
        return Err(validation!("Limit must be 1 to {max}, not {limit}"));
    }
    Ok(limit as usize)
}

/// Pages through `items`, sorted ascending by their marker key, starting after `marker`.
/// `marker_is_valid` says whether a marker could have been handed out by this call.
pub(crate) fn paginate<T>(
    items: impl Iterator<Item = (String, T)>,
    marker: Option<&str>,
    limit: usize,
    marker_is_valid: impl Fn(&str) -> bool,
) -> Result<Page<T>> {
    if let Some(marker) = marker {
        if !marker_is_valid(marker) {
            return Err(Error::InvalidMarker(format!(
                "'{marker}' is not a marker this call returned"
            )));
        }
    }
    let mut page = Vec::new();
    let mut last_key = None;
    let mut truncated = false;
    for (key, item) in items.filter(|(key, _)| marker.is_none_or(|m| key.as_str() > m)) {
        if page.len() == limit {
            truncated = true;
            break;
        }
        last_key = Some(key);
        page.push(item);
    }
    Ok(Page {
        items: page,
        next_marker: if truncated { last_key } else { None },
        truncated,
    })
}
