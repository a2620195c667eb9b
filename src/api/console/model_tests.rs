//! The Model page's **Run tests** form: runs a pasted OpenFGA model-test file (`.fga.yaml`)
//! through [`crate::api::model_test`] against the store's *current* model and the file's own
//! inline tuples, and shows a summary and one row per assertion.
//!
//! Invariant: a run writes nothing anywhere: the tests run on throwaway in-memory engines, so a
//! reader may run them (the POST still carries the session's CSRF token, as every console form
//! does). The file's own `model`/`model_file` is ignored and its `tuple_file(s)` are not read (the
//! console reads no files); the page says so. A file that does not parse, or a model or tuple
//! the engine refuses, comes back as its message on the page, never as a server failure.
//! Whoever may read a store may run tests, so a run is bounded ([`BOUNDS`], [`MAX_FILE_BYTES`]):
//! a file over a bound is refused before it runs, and a run past its time is stopped; either
//! comes back as a 400 page naming its code (`model_test_too_large`, `model_test_too_slow`).
//! Must not import `store`, `index` or `eval`.

use super::{blocking, check_csrf, chrome, model_view, view, Refusal, StoreVisit};
use crate::api::model_test::{self, ModelTestError, RunBounds, RunLimitError, TestResult};
use crate::engine::EngineError;
use axum::extract::Form;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use std::time::Duration;

/// The largest test file the console runs (YAML text, bytes).
const MAX_FILE_BYTES: usize = 256 * 1024;

/// What one run from the console may take: far beyond a hand-written test file, far below what
/// would hold a blocking thread for long.
const BOUNDS: RunBounds =
    RunBounds { max_tests: 200, max_assertions: 5_000, max_tuples: 50_000, time: Duration::from_secs(10) };

#[derive(Deserialize)]
pub(super) struct TestFileForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    file: String,
}

/// Runs the pasted test file against the store's current model and shows the Model page with
/// the results below the form (400 when the file could not be run at all).
pub(super) async fn run_tests(
    StoreVisit { console, store_id, visit }: StoreVisit,
    Form(form): Form<TestFileForm>,
) -> Result<Response, Refusal> {
    check_csrf(&visit, &form.csrf)?;
    let (run, file) = if form.file.len() > MAX_FILE_BYTES {
        let message = format!(
            "model_test_too_large: the test file is {} bytes, more than the limit of {MAX_FILE_BYTES}",
            form.file.len()
        );
        // Not echoed back into the form: the page would carry the whole oversized file.
        (view::TestRun { notes: Vec::new(), outcome: Err(message) }, String::new())
    } else {
        (run_stored(&console, store_id.clone(), form.file.clone()).await?, form.file)
    };
    let status = if run.outcome.is_ok() { StatusCode::OK } else { StatusCode::BAD_REQUEST };
    let page = model_view(&console, &visit, &store_id, file, Some(run)).await?;
    Ok((status, view::model(&chrome(&console, &visit, Some(&store_id)), &page)).into_response())
}

/// Runs `text` against the current model of store `id`, off the executor.
async fn run_stored(console: &super::ConsoleState, id: String, text: String) -> Result<view::TestRun, Refusal> {
    let engine = console.app.engine.clone();
    blocking(move || {
        let model = match engine.store(&id)?.model(None) {
            Ok(info) => info,
            Err(EngineError::NoModel(_)) => {
                let message = "this store has no model yet: save one, then run tests against it".to_string();
                return Ok(view::TestRun { notes: Vec::new(), outcome: Err(message) });
            }
            Err(error) => return Err(error.into()),
        };
        Ok(run_file(&text, &model.model, &model.id))
    })
    .await
    .map_err(Refusal::from)
}

/// Parses and runs `text` against `model` (whose id is `model_id`), saying what it left out.
fn run_file(text: &str, model: &crate::model::Model, model_id: &str) -> view::TestRun {
    let file = match model_test::parse(text) {
        Ok(file) => file,
        Err(error) => return view::TestRun { notes: Vec::new(), outcome: Err(failure(error)) },
    };
    let mut notes = vec![format!(
        "The tests ran against the store's current model {model_id} and the file's own tuples (not \
         the store's), in memory: nothing was written to the store."
    )];
    if file.model.is_some() || file.model_file.is_some() {
        notes.push("The file's own model (`model` or `model_file`) was ignored.".into());
    }
    let tuple_files: Vec<&str> =
        file.tuple_file.iter().chain(file.tuple_files.iter().flatten()).map(String::as_str).collect();
    if !tuple_files.is_empty() {
        notes.push(format!(
            "The tuple files ({}) were not read: the console reads no files, so only the file's inline `tuples` were used.",
            tuple_files.join(", ")
        ));
    }
    let tuples = file.tuples.clone().unwrap_or_default();
    let outcome = match model_test::run_bounded(model, &tuples, &file.tests, &BOUNDS) {
        Ok(results) => Ok(report(&results)),
        Err(RunLimitError::Run(error)) => Err(failure(error)),
        Err(limit @ RunLimitError::TooLarge { .. }) => Err(format!("model_test_too_large: {limit}")),
        Err(limit @ RunLimitError::Deadline(_)) => Err(format!("model_test_too_slow: {limit}")),
    };
    view::TestRun { notes, outcome }
}

fn failure(error: ModelTestError) -> String {
    match error {
        ModelTestError::Parse(message) => format!("the test file is not valid: {message}"),
        setup @ ModelTestError::Setup { .. } => format!("the tests could not be set up: {setup}"),
    }
}

/// The summary counts and one row per assertion, in the order run.
fn report(results: &[TestResult]) -> view::TestReport {
    let counts = model_test::summary_counts(results);
    let rows: Vec<view::TestRow> = results
        .iter()
        .flat_map(|result| {
            result.assertions.iter().map(|assertion| view::TestRow {
                test: result.name.clone(),
                assertion: format!("{}({})", assertion.kind.label(), assertion.query),
                passed: assertion.passed,
                expected: assertion.expected.clone(),
                actual: match &assertion.error {
                    Some(error) => format!("{} ({error})", assertion.got),
                    None => assertion.got.clone(),
                },
            })
        })
        .collect();
    let assertions_passed = rows.iter().filter(|row| row.passed).count();
    view::TestReport {
        tests_passed: counts[0].0,
        tests: counts[0].1,
        assertions_passed,
        assertions_failed: rows.len() - assertions_passed,
        rows,
    }
}
