//! Limits the HTTP layer checks before a body reaches a handler's logic: JSON nesting depth, page
//! size, and the count limits of batch routes. (Body size is axum's `DefaultBodyLimit`; the
//! engine checks identifiers, contextual tuples, models and the deadline itself.)
//!
//! Invariant: each violation is a 4xx whose `code` names the limit (`json_too_deep`,
//! `page_size_too_large`, `too_many_assertions`, ...) and whose message states the limit.
//! Must not import `store`, `index` or `eval`.

use super::{ApiError, ApiOptions};

/// How deep `bytes` nests arrays and objects, scanning without parsing: brackets inside strings
/// (and escaped quotes) do not count. Stops as soon as `max` is passed.
fn json_depth_exceeds(bytes: &[u8], max: usize) -> bool {
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for &byte in bytes {
        if in_string {
            match byte {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match byte {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > max {
                    return true;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    false
}

/// `json_too_deep` when a body nests arrays and objects more than `max_json_depth` levels.
pub(super) fn check_json_depth(bytes: &[u8], options: &ApiOptions) -> Result<(), ApiError> {
    if json_depth_exceeds(bytes, options.max_json_depth) {
        return Err(ApiError::BadRequest {
            code: "json_too_deep",
            message: format!("request body nests JSON more than {} levels deep", options.max_json_depth),
        });
    }
    Ok(())
}

/// A requested page size: `default` when absent or 0, `page_size_too_large` above the limit.
pub(super) fn page_size(requested: Option<u32>, default: usize, options: &ApiOptions) -> Result<usize, ApiError> {
    match requested {
        None | Some(0) => Ok(default.min(options.max_page_size)),
        Some(n) if n as usize <= options.max_page_size => Ok(n as usize),
        Some(n) => Err(ApiError::BadRequest {
            code: "page_size_too_large",
            message: format!("`page_size` {n} is more than the limit of {}", options.max_page_size),
        }),
    }
}

/// `batch_check_too_large` when a batch route is given more items than `max_batch_check`.
pub(super) fn batch_size(count: usize, what: &str, options: &ApiOptions) -> Result<(), ApiError> {
    if count > options.max_batch_check {
        return Err(ApiError::BadRequest {
            code: "batch_check_too_large",
            message: format!("{what} has {count} items, more than the limit of {}", options.max_batch_check),
        });
    }
    Ok(())
}

/// `too_many_assertions` when one model is given more assertions than `max_assertions`.
pub(super) fn assertions(count: usize, options: &ApiOptions) -> Result<(), ApiError> {
    if count > options.max_assertions {
        return Err(ApiError::BadRequest {
            code: "too_many_assertions",
            message: format!("{count} assertions, more than the limit of {}", options.max_assertions),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depth_counts_brackets_outside_strings_only() {
        assert!(!json_depth_exceeds(br#"{"a": [1, {"b": 2}]}"#, 3));
        assert!(json_depth_exceeds(br#"{"a": [1, {"b": [2]}]}"#, 3));
        assert!(!json_depth_exceeds(br#"{"a": "[[[[[[{{{{"}"#, 1));
        assert!(!json_depth_exceeds(br#"{"a": "\"[[[[\\"}"#, 1));
        assert!(json_depth_exceeds(&[b'['; 10_000], 64));
        assert!(!json_depth_exceeds(b"]]]]{}", 1));
    }

    #[test]
    fn page_sizes_default_and_refuse_above_the_limit() {
        let options = ApiOptions::default();
        assert_eq!(page_size(None, 50, &options).unwrap(), 50);
        assert_eq!(page_size(Some(0), 50, &options).unwrap(), 50);
        assert_eq!(page_size(Some(100), 50, &options).unwrap(), 100);
        assert!(matches!(
            page_size(Some(101), 50, &options),
            Err(ApiError::BadRequest { code: "page_size_too_large", .. })
        ));
    }
}
