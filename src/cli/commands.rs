//! The bodies of the subcommands other than `serve`: each takes its parsed arguments, drives the
//! tools beside it (`transfer`, `explain_render`, `testfile`, `spicedb_validation`) and reports.
//!
//! Invariant: output meant for a pipe (export lines, `--verbose` JSON, the check tree) goes to
//! standard output; progress and errors go to standard error.
//! Must not import `index`, `eval` or `store` (it opens an on-disk engine through `open_disk_engine`).

use super::testfile;
use super::{open_disk_engine, CheckArgs, ExportArgs, ImportArgs};
use std::io::Write;
use std::process::ExitCode;

pub(super) fn import(args: ImportArgs) -> anyhow::Result<()> {
    use anyhow::Context as _;
    let engine = open_disk_engine(&args.data_dir, args.batch.max(1))?;
    let store_id = match (&args.store, &args.create_store, &args.model) {
        (Some(id_or_name), _, _) => crate::cli::transfer::find_store(&engine, id_or_name)?.id,
        (None, Some(name), Some(model_file)) => {
            let text =
                std::fs::read_to_string(model_file).with_context(|| format!("cannot read {}", model_file.display()))?;
            let model = crate::Model::parse_dsl(&text).map_err(|errors| {
                let lines: Vec<String> = errors.iter().map(ToString::to_string).collect();
                anyhow::anyhow!("{} is not a valid model:\n{}", model_file.display(), lines.join("\n"))
            })?;
            match crate::cli::transfer::import_target(&engine, name, model)? {
                crate::cli::transfer::ImportTarget::Created { store, model_id } => {
                    eprintln!("created store {} `{name}` with model {model_id}", store.id);
                    store.id
                }
                crate::cli::transfer::ImportTarget::Existing(store) => {
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
    let options = crate::cli::transfer::ImportOptions { batch: args.batch, after_line: args.from_line };
    let result = crate::cli::transfer::import(&engine, &store_id, input, options, |p| {
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

pub(super) fn export(args: ExportArgs) -> anyhow::Result<()> {
    use anyhow::Context as _;
    let engine = open_disk_engine(&args.data_dir, 1)?;
    let store_id = crate::cli::transfer::find_store(&engine, &args.store)?.id;
    let count = match &args.output {
        Some(path) => {
            let file = std::fs::File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
            crate::cli::transfer::export(&engine, &store_id, std::io::BufWriter::new(file))?
        }
        None => crate::cli::transfer::export(&engine, &store_id, std::io::BufWriter::new(std::io::stdout().lock()))?,
    };
    eprintln!("exported {count} tuples from store {store_id}");
    Ok(())
}

/// `writ check`: true when allowed.
pub(super) fn check(args: CheckArgs) -> anyhow::Result<bool> {
    use crate::cli::explain_render::{ask_engine, ask_server, render_check, render_explanation, CheckQuestion};
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

/// `run` on each of `inputs` in order; at the first error, says it (after `label`) and fails.
fn run_each<I, T, E: std::fmt::Display>(
    inputs: &[I],
    label: &str,
    mut run: impl FnMut(&I) -> Result<T, E>,
) -> Result<Vec<T>, ExitCode> {
    inputs
        .iter()
        .map(|input| {
            run(input).map_err(|error| {
                eprintln!("{label}: {error}");
                ExitCode::FAILURE
            })
        })
        .collect()
}

pub(super) fn model_test(pattern: &str, verbose: bool, suppress_summary: bool) -> ExitCode {
    let paths = testfile::expand_test_paths(pattern);
    if paths.is_empty() {
        eprintln!("Error: no test files match {pattern}");
        return ExitCode::FAILURE;
    }
    let results = match run_each(&paths, "Error", |path| testfile::run_file(path)) {
        Ok(per_file) => per_file.into_iter().flatten().collect::<Vec<_>>(),
        Err(code) => return code,
    };
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

pub(super) fn validate(file: &std::path::Path) -> ExitCode {
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
    let is_zed = file.extension().is_some_and(|e| e == "zed") || crate::Model::looks_like_zed(&text);
    let parsed = if is_zed {
        crate::Model::parse_zed(&text).map(|model| (model, Vec::new()))
    } else {
        crate::Model::parse_dsl_with_warnings(&text)
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

pub(super) fn spicedb_assertions(path: &std::path::Path) -> ExitCode {
    use crate::cli::spicedb_validation as runner;
    let files = match runner::expand_paths(path) {
        Ok(files) => files,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::FAILURE;
        }
    };
    let reports = match run_each(&files, "error", |file| runner::run_file(file)) {
        Ok(reports) => reports,
        Err(code) => return code,
    };
    print!("{}", runner::report_text(&reports));
    if reports.iter().all(|r| r.failed() == 0 && r.unsupported() == 0 && r.load_error.is_none()) {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
