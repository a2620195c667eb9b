//! The one rule for text that the gateway turns into a Writ object id: a token's `sub`, `client_id`
//! or actor, and a tool argument or tool name placed into a mapped object.
//!
//! Invariant: an id that passes [`id_problem`] makes `type:id` a valid object and `type:id` a
//! valid subject for every valid type, and cannot name a different object than the one written
//! (no `#`, `:`, whitespace or control character, no `..` path segment, bounded length).
//! Pure: imports nothing from the crate.

/// The longest id, in bytes, that the gateway hands to the engine. It matches the engine's default
/// `max_object_bytes`, so a mapped object is refused here, with the claim or argument named, before
/// the engine would refuse it with a less helpful message.
pub const MAX_ID_BYTES: usize = 256;

/// Why `id` cannot be a Writ object id, or `None` when it can.
pub fn id_problem(id: &str) -> Option<&'static str> {
    if id.is_empty() {
        return Some("is empty");
    }
    if id.len() > MAX_ID_BYTES {
        return Some("is longer than 256 bytes");
    }
    if id.starts_with('*') {
        // `type:*` is the wildcard subject; an id that starts with `*` could read as one.
        return Some("starts with `*`");
    }
    // `@` stays allowed, as in the engine's ids: identity providers use email addresses as `sub`.
    if let Some(c) = id.chars().find(|&c| matches!(c, '#' | ':')) {
        return Some(if c == '#' { "contains `#`" } else { "contains `:`" });
    }
    if id.chars().any(char::is_whitespace) {
        return Some("contains whitespace");
    }
    if id.chars().any(char::is_control) {
        return Some("contains a control character");
    }
    // An upstream may treat the id as a path; `..` would let `repo:a/../b` reach `b`.
    if id.split(['/', '\\']).any(|segment| segment == "..") {
        return Some("contains a `..` path segment");
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_plain_ids_and_paths() {
        for id in ["anne", "anne@example.com", "acme/widgets", "v1.2", "a_b-c|d+e", "ünïcode", "a..b", ".hidden"] {
            assert_eq!(id_problem(id), None, "{id}");
        }
    }

    #[test]
    fn names_each_problem() {
        let long = "x".repeat(MAX_ID_BYTES + 1);
        let cases = [
            ("", "is empty"),
            (long.as_str(), "is longer than 256 bytes"),
            ("*", "starts with `*`"),
            ("a#b", "contains `#`"),
            ("a:b", "contains `:`"),
            ("a b", "contains whitespace"),
            ("a\u{2003}b", "contains whitespace"),
            ("a\0b", "contains a control character"),
            ("../etc", "contains a `..` path segment"),
            ("a/..", "contains a `..` path segment"),
            ("a\\..\\b", "contains a `..` path segment"),
        ];
        for (id, problem) in cases {
            assert_eq!(id_problem(id), Some(problem), "{id:?}");
        }
        assert_eq!(id_problem(&"x".repeat(MAX_ID_BYTES)), None);
    }
}
