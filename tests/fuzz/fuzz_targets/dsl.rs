//! OpenFGA DSL text → `Model::parse_dsl`: never panics; a model that parses prints back to DSL
//! that parses again.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(model) = writ::Model::parse_dsl(text) {
        if let Ok(printed) = model.try_to_dsl() {
            let _ = writ::Model::parse_dsl(&printed);
        }
        let _ = model.to_json();
    }
    let _ = writ::Model::parse_dsl_unchecked(text);
});
