//! The `writ` binary: parses the command line and hands off to the library. Thin by design:
//! `anyhow` lives only here.

use clap::{Parser, Subcommand};
use std::io::Write;
use std::process::ExitCode;
use writ::testfile;

/// mimalloc instead of the system allocator: on the 1M-tuple drive graph a list-objects of 110k
/// results took 135 ms with glibc's malloc and 19 ms with mimalloc (one run each, loaded 2-core
/// machine, `cargo bench --bench lookup`): the index leaves glibc's heap with long free lists, and
/// lookups allocate many small bitmaps and strings.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
    Serve(Box<writ::config::Args>),
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

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Model { command: ModelCommand::Test { tests, verbose, suppress_summary } } => {
            model_test(&tests, verbose, suppress_summary)
        }
        Command::Validate { file, assertions: true } => spicedb_assertions(&file),
        Command::Validate { file, assertions: false } => validate(&file),
        Command::Import(args) => report(import(args)),
        Command::Export(args) => report(export(args)),
        Command::Check(args) => match check(args) {
            Ok(true) => ExitCode::SUCCESS,
            Ok(false) => ExitCode::from(1),
            Err(error) => {
                eprintln!("error: {error:#}");
                ExitCode::from(2)
            }
        },
        Command::Serve(args) => match serve(*args) {
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

fn open_disk_engine(data_dir: &std::path::Path, max_tuples_per_write: usize) -> anyhow::Result<writ::Engine> {
    // The error names the data dir, and says when another process holds it.
    let backend = writ::store::SledStore::open(data_dir)?;
    let config = writ::EngineConfig { max_tuples_per_write, ..writ::EngineConfig::default() };
    Ok(writ::Engine::open(Box::new(backend), config)?)
}

fn import(args: ImportArgs) -> anyhow::Result<()> {
    use anyhow::Context as _;
    let engine = open_disk_engine(&args.data_dir, args.batch.max(1))?;
    let store_id = match (&args.store, &args.create_store, &args.model) {
        (Some(id_or_name), _, _) => writ::transfer::find_store(&engine, id_or_name)?.id,
        (None, Some(name), Some(model_file)) => {
            let text =
                std::fs::read_to_string(model_file).with_context(|| format!("cannot read {}", model_file.display()))?;
            let model = writ::Model::parse_dsl(&text).map_err(|errors| {
                let lines: Vec<String> = errors.iter().map(ToString::to_string).collect();
                anyhow::anyhow!("{} is not a valid model:\n{}", model_file.display(), lines.join("\n"))
            })?;
            match writ::transfer::import_target(&engine, name, model)? {
                writ::transfer::ImportTarget::Created { store, model_id } => {
                    eprintln!("created store {} `{name}` with model {model_id}", store.id);
                    store.id
                }
                writ::transfer::ImportTarget::Existing(store) => {
                    eprintln!(
                        "store `{name}` exists ({}): resuming into it (its model kept, duplicates ignored)",
                        store.id
                    );
                    store.id
                }
            }
        }
        _ => anyhow::bail!("give --store ID or NAME, or --create-store NAME with --model FILE"),
    };
    let (input, total): (Box<dyn std::io::BufRead + Send>, u64) = if args.file.as_os_str() == "-" {
        (Box::new(std::io::BufReader::with_capacity(1 << 20, std::io::stdin())), 0)
    } else {
        let file = std::fs::File::open(&args.file).with_context(|| format!("cannot open {}", args.file.display()))?;
        let total = file.metadata().map(|m| m.len()).unwrap_or(0);
        (Box::new(std::io::BufReader::with_capacity(1 << 20, file)), total)
    };
    let bar = if total > 0 { indicatif::ProgressBar::new(total) } else { indicatif::ProgressBar::new_spinner() };
    bar.set_style(
        indicatif::ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {bytes}/{total_bytes} {msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let started = std::time::Instant::now();
    let options = writ::transfer::ImportOptions { batch: args.batch, after_line: args.from_line };
    let result = writ::transfer::import(&engine, &store_id, input, options, |p| {
        bar.set_position(p.bytes);
        bar.set_message(format!("{} tuples, line {}, revision {}", p.tuples, p.line, p.revision));
    });
    bar.finish_and_clear();
    let done = result.with_context(|| {
        format!("import into store {store_id} stopped; committed batches stay (rerun, or resume with --from-line)")
    })?;
    // Every batch is durable; a checkpoint lets the next start skip reading a row per tuple.
    engine.checkpoints().checkpoint_changed().context("the import is committed, but its checkpoint was not written")?;
    let seconds = started.elapsed().as_secs_f64();
    eprintln!(
        "imported {} tuples into store {store_id} through line {} in {seconds:.1} s ({:.0} tuples/s), revision {}",
        done.tuples,
        done.line,
        done.tuples as f64 / seconds.max(1e-9),
        done.revision
    );
    Ok(())
}

fn export(args: ExportArgs) -> anyhow::Result<()> {
    use anyhow::Context as _;
    let engine = open_disk_engine(&args.data_dir, 1)?;
    let store_id = writ::transfer::find_store(&engine, &args.store)?.id;
    let count = match &args.output {
        Some(path) => {
            let file = std::fs::File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
            writ::transfer::export(&engine, &store_id, std::io::BufWriter::new(file))?
        }
        None => writ::transfer::export(&engine, &store_id, std::io::BufWriter::new(std::io::stdout().lock()))?,
    };
    eprintln!("exported {count} tuples from store {store_id}");
    Ok(())
}

/// `writ check`: true when allowed.
fn check(args: CheckArgs) -> anyhow::Result<bool> {
    use writ::explain_render::{ask_engine, ask_server, render_check, render_explanation, CheckQuestion};
    let context = match &args.context {
        Some(text) => {
            serde_json::from_str(text).map_err(|e| anyhow::anyhow!("`--context` is not a JSON object: {e}"))?
        }
        None => serde_json::Map::new(),
    };
    let question =
        CheckQuestion { user: args.user, relation: args.relation, object: args.object, context, explain: args.explain };
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let answer = match (&args.url, &args.data_dir) {
        (Some(url), _) => runtime.block_on(ask_server(url, &args.store, args.api_key.as_deref(), &question))?,
        (None, Some(dir)) => {
            let engine = std::sync::Arc::new(open_disk_engine(dir, 1)?);
            runtime.block_on(ask_engine(engine, &args.store, &question))?
        }
        (None, None) => anyhow::bail!("give `--data-dir` (a store on disk) or `--url` (a running server)"),
    };
    let text = if question.explain { render_explanation(&answer) } else { render_check(&answer) };
    print!("{text}");
    Ok(answer["allowed"] == serde_json::Value::Bool(true))
}

fn serve(args: writ::config::Args) -> anyhow::Result<()> {
    args.log_format.install();
    let config = writ::config::Config::from_args(args)?;
    match &config.auth {
        writ::api::Auth::None => {
            tracing::warn!("--auth none: no authentication is enforced; every caller may do everything")
        }
        writ::api::Auth::Preshared(keys) => tracing::info!(keys = keys.len(), "--auth preshared"),
    }
    let backend: Box<dyn writ::store::TupleStore> = match (&config.datastore, &config.data_dir) {
        (Some(url), _) => Box::new(writ::store::PostgresStore::open(url.expose())?),
        (None, Some(dir)) => Box::new(writ::store::SledStore::open(dir)?),
        (None, None) => Box::new(writ::store::MemoryStore::new()),
    };
    let engine = std::sync::Arc::new(writ::Engine::open(backend, config.engine)?);
    if let Some(store_id) = &config.authzen_store {
        if engine.get_store(store_id).is_err() {
            tracing::warn!(store = %store_id, "--authzen-store names no existing store; root AuthZEN routes answer 404");
        }
    }
    if let Some(interval) = config.expiry_sweep_interval {
        writ::engine::spawn_expiry_sweeper(&engine, interval)?;
    }
    let app = writ::api::router_with_config(engine.clone(), config.router_config());
    let tls = config.tls.as_ref().map(writ::api::serve::tls_config).transpose()?;
    let gateway_config = match &config.gateway {
        Some(path) => Some(writ::gateway::read_config(path, &|name| std::env::var(name).ok())?),
        None => None,
    };
    let gateway_engine = engine.clone();
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async move {
        let app = match gateway_config {
            Some(gateway_config) => {
                let options = writ::gateway::GatewayOptions { max_body_bytes: config.api.max_body_bytes };
                let servers = gateway_config.servers.len();
                let gateway = writ::gateway::Gateway::start(gateway_config, gateway_engine, options).await?;
                tracing::info!(servers, "gateway mounted at /mcp/{{server}}");
                gateway.mount(app)
            }
            None => app,
        };
        let listener = std::net::TcpListener::bind(config.listen)
            .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", config.listen))?;
        tracing::info!(address = %config.listen, data_dir = ?config.data_dir, postgres = config.datastore.is_some(), tls = tls.is_some(), "listening");
        writ::api::serve::serve(listener, app, tls, shutdown_signal()).await?;
        Ok::<_, anyhow::Error>(())
    })?;
    // Requests are done: pack large changed stores so the next start reads a few big rows.
    let started = std::time::Instant::now();
    match engine.checkpoints().checkpoint_changed() {
        Ok(0) => {}
        Ok(n) => tracing::info!(stores = n, seconds = started.elapsed().as_secs_f64(), "checkpointed"),
        Err(error) => tracing::warn!(%error, "checkpoint not written"),
    }
    tracing::info!("stopped");
    Ok(())
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
    if file.file_name().is_some_and(|n| n == "fga.mod") {
        return validate_fga_mod(file);
    }
    let text = match std::fs::read_to_string(file) {
        Ok(text) => text,
        Err(error) => {
            eprintln!("error: cannot read {}: {error}", file.display());
            return ExitCode::FAILURE;
        }
    };
    let is_zed = file.extension().is_some_and(|e| e == "zed") || writ::Model::looks_like_zed(&text);
    let parsed = if is_zed {
        writ::Model::parse_zed(&text).map(|model| (model, Vec::new()))
    } else {
        writ::Model::parse_dsl_with_warnings(&text)
    };
    match parsed {
        Ok((model, warnings)) => {
            for warning in &warnings {
                let at =
                    warning.span.map(|s| format!(":{}:{}", s.line_start + 1, s.column_start + 1)).unwrap_or_default();
                eprintln!("{}{at}: warning: {}", file.display(), warning.message);
            }
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

fn validate_fga_mod(file: &std::path::Path) -> ExitCode {
    match testfile::load_fga_mod(file) {
        Ok(modular) => {
            let model = &modular.model;
            let modules = modular.modules().len();
            println!(
                "{}: valid ({modules} modules, {} types, {} conditions)",
                file.display(),
                model.types.len(),
                model.conditions.len()
            );
            ExitCode::SUCCESS
        }
        Err(errors) => {
            for error in &errors {
                eprintln!("{error}");
            }
            ExitCode::FAILURE
        }
    }
}

fn spicedb_assertions(path: &std::path::Path) -> ExitCode {
    use writ::spicedb_validation as runner;
    let files = match runner::expand_paths(path) {
        Ok(files) => files,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::FAILURE;
        }
    };
    let mut reports = Vec::new();
    for file in &files {
        match runner::run_file(file) {
            Ok(report) => reports.push(report),
            Err(error) => {
                eprintln!("error: {error}");
                return ExitCode::FAILURE;
            }
        }
    }
    print!("{}", runner::report_text(&reports));
    if reports.iter().all(|r| r.failed() == 0 && r.unsupported() == 0 && r.load_error.is_none()) {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
