//! The one integration test binary: every suite below runs under `cargo test`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, reason = "a test fails loudly on a broken fixture")]

mod api;
mod closure;
mod conformance;
mod fuzz_props;
mod model_language;
mod regression;
mod server;
mod spicedb;
mod store_contract;
mod support;
mod tidy;
mod tls;
mod transfer;
