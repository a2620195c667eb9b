//! JSON authorization model (the body of `POST /authorization-models`) → `Model::from_json`:
//! never panics; an accepted model converts back to JSON and DSL without panicking, and its JSON
//! is accepted again (what Writ writes out, Writ and OpenFGA read back).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(json) = serde_json::from_slice::<writ::model::JsonModel>(data) else { return };
    let _ = writ::Model::from_json_unchecked(&json);
    if let Ok(model) = writ::Model::from_json(&json) {
        let json = model.to_json();
        let _ = model.try_to_dsl();
        if let Err(errors) = writ::Model::from_json(&json) {
            panic!("an accepted model's own JSON is refused: {errors:?}");
        }
    }
});
