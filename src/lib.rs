//! Writ: a Zanzibar-style relationship-based authorization engine.
//!
//! Crate map, in dependency order (a module may import only those above it):
//! `tuple` (vocabulary) → `model` (schema text → checked model) → `index` (roaring bitmaps over the
//! current tuples) → `eval` (check, expand, list objects, list users) → `engine` (the one facade;
//! the only user of `store`) → `api` (HTTP, and OpenFGA's error codes). `gateway` (the MCP
//! enforcement point: tokens, tool mapping) sits beside `api` and uses `engine`. `record` holds the
//! changelog and decision-log records beside `tuple`; `store` (durable truth) imports only `tuple`
//! and `record`. `config` turns flags into the settings `cli` hands to `Engine` and `api`; `cli` is
//! the command line (subcommands, model-test and validation files, import/export, `writ check`);
//! `main.rs` just calls `cli::run`.
//!
//! Features: `server` (the default) adds `api`, `gateway`, `config`, `cli`, the sled and
//! PostgreSQL stores and the binary; `sled` and `postgres` add just that store. Without them
//! (`default-features = false`) the crate is the pure engine for embedding: `model`, `index`,
//! `eval`, `tuple`, `record`, `wire`, and [`Engine`] over the in-memory store
//! (`examples/embed.rs`).

#[cfg(feature = "server")]
pub mod api;
#[cfg(feature = "server")]
pub mod cli;
#[cfg(feature = "server")]
pub mod config;
pub mod engine;
pub(crate) mod eval;
#[cfg(feature = "server")]
pub mod gateway;
pub(crate) mod index;
pub mod model;
pub mod record;
pub mod store;
pub mod tuple;
pub mod wire;

pub use engine::{Engine, EngineConfig, EngineError};
pub use eval::{EvalError, Limits, Permissionship};
pub use model::Model;
pub use tuple::{ObjectRef, Subject, Tuple};
