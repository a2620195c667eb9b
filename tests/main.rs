//! The one integration test binary: every suite below runs under `cargo test`.

mod model_language;
mod store_contract;
