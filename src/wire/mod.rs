//! Wire formats shared by the HTTP API and the command line: RFC 3339 timestamps (`time`).
//!
//! Invariant: what one side writes, the other reads back unchanged.
//! Must not import anything in the crate but `tuple`: `api` and `cli` both build on it.

pub mod time;
