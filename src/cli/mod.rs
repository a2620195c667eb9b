//! The `writ` command line: the tools behind its subcommands.
//!
//! `testfile` runs OpenFGA model-test files (`writ model test`), `spicedb_validation` runs SpiceDB
//! validation files (`writ validate --assertions`), `transfer` streams JSON Lines tuples in and out
//! (`writ import`/`export`), and `explain_render` asks a check or an explanation for `writ check`
//! and draws it as a tree.

pub mod explain_render;
pub mod spicedb_validation;
pub mod testfile;
pub mod transfer;
