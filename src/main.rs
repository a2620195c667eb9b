//! The `writ` binary: parses the command line and hands off to the library. Thin by design:
//! `anyhow` lives only here.

use clap::{Parser, Subcommand};
use std::io::Write;
use std::process::ExitCode;
use writ::testfile;

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
    Serve(writ::config::Args),
    /// Check a model file (OpenFGA DSL) and print its diagnostics with line:column.
    Validate {
        /// The model file.
        file: std::path::PathBuf,
    },
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

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Model { command: ModelCommand::Test { tests, verbose, suppress_summary } } => {
            model_test(&tests, verbose, suppress_summary)
        }
        Command::Validate { file } => validate(&file),
        Command::Serve(args) => match serve(args) {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => {
                eprintln!("error: {error:#}");
                ExitCode::FAILURE
            }
        },
    }
}

fn serve(args: writ::config::Args) -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let config = writ::config::Config::from_args(args)?;
    if config.auth == writ::config::AuthMode::None {
        tracing::warn!("--auth none: no authentication is enforced; every caller may do everything");
    }
    let backend: Box<dyn writ::store::TupleStore> = match &config.data_dir {
        Some(dir) => Box::new(writ::store::SledStore::open(dir)?),
        None => Box::new(writ::store::MemoryStore::new()),
    };
    let engine = std::sync::Arc::new(writ::Engine::open(backend, config.engine)?);
    if let Some(interval) = config.expiry_sweep_interval {
        writ::engine::spawn_expiry_sweeper(&engine, interval)?;
    }
    let app = writ::api::router_with(engine, config.api);
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(config.listen).await?;
        tracing::info!(address = %config.listen, data_dir = ?config.data_dir, "listening");
        axum::serve(listener, app).with_graceful_shutdown(shutdown_signal()).await?;
        tracing::info!("stopped");
        Ok(())
    })
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {},
        () = terminate => {},
    }
    tracing::info!("shutting down");
}

fn model_test(pattern: &str, verbose: bool, suppress_summary: bool) -> ExitCode {
    let paths = testfile::expand_test_paths(pattern);
    if paths.is_empty() {
        eprintln!("Error: no test files match {pattern}");
        return ExitCode::FAILURE;
    }
    let mut results = Vec::new();
    for path in &paths {
        match testfile::run_file(path) {
            Ok(file_results) => results.extend(file_results),
            Err(error) => {
                eprintln!("Error: {error}");
                return ExitCode::FAILURE;
            }
        }
    }
    if verbose {
        let json: Vec<serde_json::Value> = results.iter().map(|r| r.to_json()).collect();
        let mut stdout = std::io::stdout().lock();
        let _ = writeln!(stdout, "{}", serde_json::Value::Array(json));
    }
    if !suppress_summary {
        eprint!("{}", testfile::summary_text(&results));
    }
    if results.iter().all(|r| r.passed()) {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn validate(file: &std::path::Path) -> ExitCode {
    let text = match std::fs::read_to_string(file) {
        Ok(text) => text,
        Err(error) => {
            eprintln!("error: cannot read {}: {error}", file.display());
            return ExitCode::FAILURE;
        }
    };
    match writ::Model::parse_dsl(&text) {
        Ok(model) => {
            println!("{}: valid ({} types, {} conditions)", file.display(), model.types.len(), model.conditions.len());
            ExitCode::SUCCESS
        }
        Err(errors) => {
            for error in &errors {
                match error.span {
                    Some(span) => eprintln!(
                        "{}:{}:{}: {}",
                        file.display(),
                        span.line_start + 1,
                        span.column_start + 1,
                        error.message
                    ),
                    None => eprintln!("{}: {}", file.display(), error.message),
                }
            }
            ExitCode::FAILURE
        }
    }
}
