//! SpiceDB schema text (`.zed`) → `Model::parse_zed`: never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let _ = writ::Model::looks_like_zed(text);
    if let Ok(model) = writ::Model::parse_zed(text) {
        let _ = model.try_to_dsl();
    }
});
