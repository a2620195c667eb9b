//! Tuple keys (`object#relation@user`) and their parts: never panic, and a parsed tuple prints
//! back to text that parses to the same tuple.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(tuple) = text.parse::<writ::Tuple>() {
        let printed = tuple.to_string();
        let again: writ::Tuple = printed.parse().unwrap_or_else(|e| panic!("`{printed}` does not reparse: {e}"));
        assert_eq!(again, tuple, "`{text}` → `{printed}` changed the tuple");
    }
    let _ = text.parse::<writ::ObjectRef>();
    let _ = text.parse::<writ::Subject>();
    let _ = writ::tuple::split_object(text);
    let _ = writ::tuple::split_subject(text);
    // The three parts as the API receives them, split at the first two NUL-free separators.
    let mut parts = text.splitn(3, '\n');
    if let (Some(object), Some(relation), Some(user)) = (parts.next(), parts.next(), parts.next()) {
        let _ = writ::Tuple::from_parts(object, relation, user);
    }
});
