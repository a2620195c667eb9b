//! The one integration test binary: every suite below runs under `cargo test`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, reason = "a test fails loudly on a broken fixture")]

mod acl_tags;
mod agent;
mod agent_props;
mod alerts;
mod api;
mod approvals;
mod bad_input;
mod bench_workload;
mod checkpoint;
mod cli;
mod closure;
mod conformance;
mod console;
mod decisions;
mod expiry;
mod explain;
mod explain_props;
mod fuzz_props;
mod gateway;
mod hostile;
mod index_only;
mod isolation;
mod limits;
mod model_language;
mod openapi;
mod pathological;
mod postgres_store;
mod prepared;
mod read_paging;
mod readme;
mod regression;
mod scaleout;
mod scaleout_process;
mod server;
mod skipped;
mod spicedb;
mod store_contract;
mod store_handle;
mod support;
mod tidy;
mod tls;
mod transfer;
mod visibility;
mod wire_schema;
