//! The `writ` command line: clap's definitions of the subcommands and their dispatch, and the
//! tools behind them. `testfile` runs OpenFGA model-test files (`writ model test`),
//! `spicedb_validation` runs SpiceDB validation files (`writ validate --assertions`), `transfer`
//! streams JSON Lines tuples in and out (`writ import`/`export`), `explain_render` asks a check or
//! an explanation for `writ check` and draws it as a tree, `commands` holds the bodies of those
//! subcommands and `serve` starts the server.
//!
//! Invariant: a subcommand's exit code is its whole answer to a script (0 success; `check`: 1
//! denied, 2 error); every error is printed once, with its chain, on standard error.
//! Must not import `index` or `eval` (it drives the `Engine` facade); of `store` it names only the
//! backends it opens and hands to `Engine::open`. `anyhow` is used here and in no other module
//! (tests/tidy.rs checks): this is the binary's glue, not a library surface.

mod commands;
pub mod explain_render;
mod serve;
pub mod spicedb_validation;
pub mod testfile;
pub mod transfer;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "writ", version, about = "Relationship-based authorization engine (OpenFGA-compatible)")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Work with authorization models.
    Model {
        #[command(subcommand)]
        command: ModelCommand,
    },
    /// Serve the OpenFGA-compatible HTTP API.
    Serve(Box<crate::config::Args>),
    /// Load tuples from JSON Lines into a store on disk (the server must be stopped).
    Import(ImportArgs),
    /// Write a store's tuples as JSON Lines.
    Export(ExportArgs),
    /// Check one tuple against a data dir or a running server; with `--explain`, print why as a
    /// tree (✓/✗ per node, the reasons). Exits 0 when allowed, 1 when denied, 2 on an error.
    Check(CheckArgs),
    /// Check a model file (OpenFGA DSL, or SpiceDB schema by `.zed` extension or content) and
    /// print its diagnostics with line:column; with `--assertions`, run SpiceDB validation files.
    Validate {
        /// The model file (OpenFGA DSL, a modular model's `fga.mod`, or `.zed`); with `--assertions`,
        /// a SpiceDB validation YAML file or a folder of them.
        file: std::path::PathBuf,
        /// Run SpiceDB validation files (schema, relationships, assertions) instead.
        #[arg(long)]
        assertions: bool,
    },
}

#[derive(clap::Args)]
struct ImportArgs {
    /// JSON Lines file of tuple keys (`{"user","relation","object","condition"?,"expires_at"?}`); `-` reads stdin.
    file: std::path::PathBuf,
    /// Directory of the on-disk (sled) store.
    #[arg(long, env = "WRIT_DATA_DIR", default_value = "./data")]
    data_dir: std::path::PathBuf,
    /// The store to load into: its id, or its name when one store has it.
    #[arg(long, required_unless_present = "create_store")]
    store: Option<String>,
    /// Create a store with this name (requires `--model`) and load into it; when one store has
    /// this name already (an earlier run made it), resume into that store instead.
    #[arg(long, requires = "model", conflicts_with = "store")]
    create_store: Option<String>,
    /// Model file (OpenFGA DSL) for `--create-store`.
    #[arg(long)]
    model: Option<std::path::PathBuf>,
    /// Tuples per durable write transaction.
    #[arg(long, default_value_t = 1000)]
    batch: usize,
    /// Resume: skip lines up to and including this one (the last line an earlier run reported).
    #[arg(long, default_value_t = 0)]
    from_line: usize,
}

#[derive(clap::Args)]
struct ExportArgs {
    /// Directory of the on-disk (sled) store.
    #[arg(long, env = "WRIT_DATA_DIR", default_value = "./data")]
    data_dir: std::path::PathBuf,
    /// The store to export: its id, or its name when one store has it.
    #[arg(long)]
    store: String,
    /// Output file; standard output when absent.
    #[arg(long)]
    output: Option<std::path::PathBuf>,
}

#[derive(clap::Args)]
struct CheckArgs {
    /// The subject: `user:anne`, `group:eng#member`.
    user: String,
    /// The relation.
    relation: String,
    /// The object: `document:q3`.
    object: String,
    /// Print the evaluation tree, the granting tuples or the tuples that would allow it.
    #[arg(long)]
    explain: bool,
    /// The store: its id, or (with `--data-dir`) its name when one store has it.
    #[arg(long)]
    store: String,
    /// Directory of the on-disk (sled) store (the server must be stopped).
    #[arg(long, env = "WRIT_DATA_DIR", conflicts_with = "url")]
    data_dir: Option<std::path::PathBuf>,
    /// A running server instead, e.g. `http://127.0.0.1:8080`.
    #[arg(long)]
    url: Option<String>,
    /// The server's API key (`--url`).
    #[arg(long, env = "WRIT_API_KEY")]
    api_key: Option<String>,
    /// Condition context, a JSON object.
    #[arg(long)]
    context: Option<String>,
}

#[derive(Subcommand)]
enum ModelCommand {
    /// Run OpenFGA model-test files (`.fga.yaml`), as `fga model test` does.
    Test {
        /// Path or glob of YAML test files.
        #[arg(long)]
        tests: String,
        /// Print verbose JSON output.
        #[arg(long)]
        verbose: bool,
        /// Suppress the plain text summary output.
        #[arg(long = "suppress-summary")]
        suppress_summary: bool,
    },
}

/// Parses the command line, runs the subcommand and returns its exit code.
pub fn run() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Model { command: ModelCommand::Test { tests, verbose, suppress_summary } } => {
            commands::model_test(&tests, verbose, suppress_summary)
        }
        Command::Validate { file, assertions: true } => commands::spicedb_assertions(&file),
        Command::Validate { file, assertions: false } => commands::validate(&file),
        Command::Import(args) => report(commands::import(args)),
        Command::Export(args) => report(commands::export(args)),
        Command::Check(args) => match commands::check(args) {
            Ok(true) => ExitCode::SUCCESS,
            Ok(false) => ExitCode::from(1),
            Err(error) => {
                eprintln!("error: {error:#}");
                ExitCode::from(2)
            }
        },
        Command::Serve(args) => match serve::serve(*args) {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => {
                eprintln!("error: {error:#}");
                ExitCode::FAILURE
            }
        },
    }
}

fn report(result: anyhow::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn open_disk_engine(data_dir: &std::path::Path, max_tuples_per_write: usize) -> anyhow::Result<crate::Engine> {
    // The error names the data dir, and says when another process holds it.
    let backend = crate::store::SledStore::open(data_dir)?;
    let config = crate::EngineConfig { max_tuples_per_write, ..crate::EngineConfig::default() };
    Ok(crate::Engine::open(Box::new(backend), config)?)
}
