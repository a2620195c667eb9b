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
///
/// Every request body passes through here before its parse, and most of a body's bytes are
/// inside strings (ids, names): a string's end (or its next escape) is found with `memchr`'s
/// vectorised search rather than byte by byte.
fn json_depth_exceeds(bytes: &[u8], max: usize) -> bool {
    let mut depth = 0usize;
    let mut at = 0;
    while let Some(&byte) = bytes.get(at) {
        at += 1;
        match byte {
            b'"' => at = string_end(bytes, at),
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

/// Where the string whose contents start at `at` ends: just past its closing quote (an escaped
/// quote does not close it), or `bytes.len()` when it never closes.
fn string_end(bytes: &[u8], mut at: usize) -> usize {
    while let Some(found) = bytes.get(at..).and_then(|rest| memchr::memchr2(b'"', b'\\', rest)) {
        let stop = at + found;
        if bytes.get(stop) == Some(&b'"') {
            return stop + 1;
        }
        // A backslash escapes the byte after it, whatever it is.
        at = stop + 2;
    }
    bytes.len()
}

/// Words that start a new definition in DSL or `.zed` text: operator counts restart after them.
const DEFINITION_WORDS: [&str; 8] =
    ["define", "relation", "permission", "definition", "type", "model", "condition", "caveat"];

/// The deepest bracket nesting, and the most operators in one definition, of DSL or `.zed` text.
/// Comments and condition (caveat) bodies are skipped: CEL has limits of its own. Hyphens inside
/// names count as operators: an overestimate is safe.
fn model_text_complexity(text: &str) -> (usize, usize) {
    let bytes = text.as_bytes();
    let (mut depth, mut deepest, mut operators, mut most) = (0usize, 0usize, 0usize, 0usize);
    let (mut in_condition, mut braces) = (false, 0usize);
    let mut i = 0;
    while i < bytes.len() {
        let byte = bytes[i];
        let previous = if i == 0 { b'\n' } else { bytes[i - 1] };
        let next = bytes.get(i + 1).copied().unwrap_or(b' ');
        if (byte == b'#' && previous.is_ascii_whitespace()) || (byte == b'/' && next == b'/') {
            i = bytes[i..].iter().position(|&b| b == b'\n').map_or(bytes.len(), |end| i + end);
            continue;
        }
        if byte == b'/' && next == b'*' {
            i = text[i + 2..].find("*/").map_or(bytes.len(), |end| i + 2 + end + 2);
            continue;
        }
        if byte.is_ascii_alphanumeric() || byte == b'_' {
            let end = bytes[i..]
                .iter()
                .position(|b| !(b.is_ascii_alphanumeric() || *b == b'_'))
                .map_or(bytes.len(), |n| i + n);
            let word = &text[i..end];
            if DEFINITION_WORDS.contains(&word) {
                operators = 0;
                in_condition = word == "condition" || word == "caveat";
            } else if !in_condition && matches!(word, "or" | "and" | "but") {
                operators += 1;
            }
            i = end;
            most = most.max(operators);
            continue;
        }
        match byte {
            b'{' if in_condition => braces += 1,
            b'}' if in_condition => {
                braces = braces.saturating_sub(1);
                in_condition = braces > 0;
            }
            _ if in_condition && braces > 0 => {}
            b'(' | b'[' => depth += 1,
            b')' | b']' => depth = depth.saturating_sub(1),
            b'-' if next == b'>' => {}
            b'+' | b'-' | b'&' => operators += 1,
            _ => {}
        }
        deepest = deepest.max(depth);
        most = most.max(operators);
        i += 1;
    }
    (deepest, most)
}

/// `model_too_complex` when DSL or `.zed` text nests brackets deeper than `max_model_nesting`, or
/// one definition has more than twice that many operators: the parsers and the evaluator recurse
/// per level, and this keeps every model they accept well inside a thread's stack.
pub(super) fn check_model_text(text: &str, options: &ApiOptions) -> Result<(), ApiError> {
    let (depth, operators) = model_text_complexity(text);
    let max = options.max_model_nesting;
    if depth > max || operators > 2 * max {
        return Err(ApiError::BadRequest {
            code: "model_too_complex",
            message: format!(
                "model text nests {depth} levels deep with up to {operators} operators in one definition; \
                 the limits are {max} levels and {} operators",
                2 * max
            ),
        });
    }
    Ok(())
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
    fn depth_scan_skips_strings_to_their_real_end() {
        // An escaped backslash does not escape the quote after it: the string ends there.
        assert!(json_depth_exceeds(br#"{"a": "\\", "b": [[1]]}"#, 2));
        assert!(!json_depth_exceeds(br#"{"a": "\\\"[[[[", "b": 1}"#, 1));
        // An unclosed string, or one ending in a lone backslash, hides the rest.
        assert!(!json_depth_exceeds(br#"{"a": "[[[["#, 1));
        assert!(!json_depth_exceeds(b"{\"a\": \"\\", 1));
        assert!(json_depth_exceeds(br#"{"a": "x"}[[[[[]]]]]"#, 4));
        assert!(!json_depth_exceeds(br#"{"a": "x"}[[[[]]]]"#, 4));
    }

    #[test]
    fn model_text_complexity_counts_nesting_and_operators_per_definition() {
        let dsl = "model\n  schema 1.1\ntype user\ntype doc\n  relations\n    define a: [user]\n    \
            define b: (a or (a and a)) but not a # or or or ((((\n";
        assert_eq!(model_text_complexity(dsl), (2, 3));
        let zed = "definition doc {\n relation a: user\n permission p = (a + a) - a & a->b\n // + + + (\n}";
        assert_eq!(model_text_complexity(zed), (1, 3));
        let caveat = "caveat c(x int) { ((((x + x + x)))) > 1 }\ndefinition doc {\n permission p = a + a\n}";
        assert_eq!(model_text_complexity(caveat), (1, 1), "the parameter list nests, the body is skipped");
        let names = "model\n  schema 1.1\ntype doc\n  relations\n    define can-view: [user]\n    define x: can-view\n";
        assert_eq!(model_text_complexity(names), (1, 1));
        assert_eq!(model_text_complexity(&"(".repeat(100)).0, 100);
        assert_eq!(model_text_complexity(&format!("permission p = a{}", " + a".repeat(500))).1, 500);
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
