//! SpiceDB validation-file relationship lines
//! (`res:id#rel@subj:id[#rel][caveat[:{json}]][expiration:RFC3339]`): never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    for line in text.lines() {
        let _ = writ::cli::spicedb_validation::parse_relationship(line.trim());
    }
});
