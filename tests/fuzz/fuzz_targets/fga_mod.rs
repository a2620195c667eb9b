//! `fga.mod` manifests → `model::parse_fga_mod`: never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let _ = writ::model::parse_fga_mod(text);
});
