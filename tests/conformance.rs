//! The conformance suite: YAML cases shaped like OpenFGA's (`tests: - name, stages: - model, tuples,
//! checkAssertions, listObjectsAssertions, listUsersAssertions`) run through the `Engine` facade.
//!
//! Two sources: Writ's own cases in `fixtures/conformance/*.yaml`, run on every backend (memory,
//! sled, sled reopened after each stage's writes) and cross-checked SpiceDB-style (check agrees
//! with list objects and list users over every object the case names); and OpenFGA's suites in
//! `../shared/conformance/openfga/suites/*.yaml` when that directory exists (else listed as ignored,
//! see `skipped.rs`), run on memory only (for speed) and cross-checked the same way.
//!
//! The stages of one test share one store: each stage writes its model, then its tuples, and the
//! tuples of earlier stages stay. Conditions are evaluated (CEL); a cross-check that cannot be
//! compared (depth limit, missing condition context) is counted as *skipped*, never passed. Every failure is reported as
//! `file › test › stage N › kind #i: expected X, got Y` (stage and assertion numbers count from 1),
//! and the test fails once at the end. `CASE=substring` runs only the tests whose name contains it.
//!
//! To check a fixture's expectations against the real OpenFGA: `../shared/peers/openfga/to_fga_yaml.py
//! OUT fixtures/conformance/*.yaml`, then `../shared/peers/openfga/run_fga.sh OUT` (no fixture may be
//! named `errors.yaml`: that script treats an `errors/` directory as expected-error cases).

use crate::support::TempDir;
use serde::Deserialize;
use std::collections::BTreeSet;
use std::fmt::Debug;
use std::path::{Path, PathBuf};
use writ::engine::{CheckRequest, ListObjectsRequest, ListUsersRequest, ReadFilter, UserFilterSpec, WriteRequest};
use writ::store::{SledStore, StoredTuple};
use writ::tuple::{Context, Subject, Tuple, TupleCondition};
use writ::{Engine, EngineConfig, EngineError, EvalError, Model};

// ---------------------------------------------------------------------------------------------
// The file format.

#[derive(Debug, Deserialize)]
struct SuiteFile {
    #[serde(default)]
    tests: Vec<SuiteTest>,
}

#[derive(Debug, Deserialize)]
struct SuiteTest {
    name: String,
    #[serde(default)]
    stages: Vec<Stage>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Stage {
    model: String,
    #[serde(default)]
    tuples: Option<Vec<YamlTuple>>,
    #[serde(default)]
    check_assertions: Option<Vec<CheckAssertion>>,
    #[serde(default)]
    list_objects_assertions: Option<Vec<ListObjectsAssertion>>,
    #[serde(default)]
    list_users_assertions: Option<Vec<ListUsersAssertion>>,
}

#[derive(Debug, Clone, Deserialize)]
struct YamlTuple {
    object: String,
    relation: String,
    user: String,
    #[serde(default)]
    condition: Option<YamlCondition>,
}

#[derive(Debug, Clone, Deserialize)]
struct YamlCondition {
    name: String,
    #[serde(default)]
    context: Option<Context>,
}

#[derive(Debug, Deserialize)]
struct TupleKey {
    object: String,
    relation: String,
    user: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct CheckAssertion {
    tuple: TupleKey,
    #[serde(default)]
    expectation: Option<bool>,
    #[serde(default)]
    error_code: Option<u32>,
    #[serde(default)]
    context: Option<Context>,
    #[serde(default)]
    contextual_tuples: Option<Vec<YamlTuple>>,
}

/// Contextual tuples and context may sit in the request or next to it (OpenFGA's data does the latter).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ListObjectsRequestYaml {
    user: String,
    #[serde(rename = "type")]
    object_type: String,
    relation: String,
    #[serde(default)]
    contextual_tuples: Option<Vec<YamlTuple>>,
    #[serde(default)]
    context: Option<Context>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ListObjectsAssertion {
    request: ListObjectsRequestYaml,
    #[serde(default)]
    expectation: Option<Vec<String>>,
    #[serde(default)]
    error_code: Option<u32>,
    #[serde(default)]
    contextual_tuples: Option<Vec<YamlTuple>>,
    #[serde(default)]
    context: Option<Context>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ListUsersRequestYaml {
    object: String,
    relation: String,
    #[serde(default)]
    filters: Vec<String>,
    #[serde(default)]
    contextual_tuples: Option<Vec<YamlTuple>>,
    #[serde(default)]
    context: Option<Context>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ListUsersAssertion {
    request: ListUsersRequestYaml,
    #[serde(default)]
    expectation: Option<Vec<String>>,
    #[serde(default)]
    error_code: Option<u32>,
    #[serde(default)]
    contextual_tuples: Option<Vec<YamlTuple>>,
    #[serde(default)]
    context: Option<Context>,
}

// ---------------------------------------------------------------------------------------------
// Backends.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Backend {
    Memory,
    Sled,
    SledReopened,
}

impl Backend {
    fn name(self) -> &'static str {
        match self {
            Backend::Memory => "memory",
            Backend::Sled => "sled",
            Backend::SledReopened => "sled-reopened",
        }
    }
}

/// One engine and store for one test; for `SledReopened`, `reopen` drops and reopens the engine.
struct Harness {
    engine: Option<Engine>,
    dir: Option<TempDir>,
    store_id: String,
}

fn open_sled(dir: &Path) -> Result<Engine, String> {
    let store = SledStore::open(dir).map_err(|e| format!("sled open failed: {e}"))?;
    Engine::open(Box::new(store), EngineConfig::default()).map_err(|e| format!("engine open failed: {e}"))
}

impl Harness {
    fn new(backend: Backend) -> Result<Harness, String> {
        let (engine, dir) = match backend {
            Backend::Memory => (Engine::in_memory(), None),
            Backend::Sled => {
                let store = SledStore::temporary().map_err(|e| format!("sled failed: {e}"))?;
                (Engine::open(Box::new(store), EngineConfig::default()).map_err(|e| e.to_string())?, None)
            }
            Backend::SledReopened => {
                let dir = TempDir::new("conformance");
                (open_sled(dir.path())?, Some(dir))
            }
        };
        let store_id = engine.create_store("conformance").map_err(|e| e.to_string())?.id;
        Ok(Harness { engine: Some(engine), dir, store_id })
    }

    fn engine(&self) -> &Engine {
        self.engine.as_ref().expect("the engine is open between stages")
    }

    /// Drops the engine and opens a new one over the same directory (sled-reopened only).
    fn reopen(&mut self) -> Result<(), String> {
        if let Some(dir) = &self.dir {
            drop(self.engine.take());
            self.engine = Some(open_sled(dir.path())?);
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// Counting and judging.

const KINDS: [&str; 5] = ["check", "list_objects", "list_users", "cross_check", "explain"];

#[derive(Debug, Default, Clone, Copy)]
struct Tally {
    total: [usize; 5],
    passed: [usize; 5],
    skipped: [usize; 5],
}

impl Tally {
    fn line(&self) -> String {
        (0..KINDS.len())
            .filter(|&i| self.total[i] > 0)
            .map(|i| format!("{} {}/{} passed, {} skipped", KINDS[i], self.passed[i], self.total[i], self.skipped[i]))
            .collect::<Vec<_>>()
            .join("; ")
    }
}

enum Outcome {
    Pass,
    Skip,
    Fail(String),
}

fn describe_error(error: &EngineError) -> String {
    let (number, name) = error.openfga_code();
    format!("error {number} ({name}: {error})")
}

/// Compares an answer with an expected value or an expected OpenFGA error number.
fn judge<T: PartialEq + Debug>(answer: Result<T, EngineError>, expected: &T, error_code: Option<u32>) -> Outcome {
    match (answer, error_code) {
        (Err(e), Some(code)) if e.openfga_code().0 == code => Outcome::Pass,
        (Err(e), Some(code)) => Outcome::Fail(format!("expected error {code}, got {}", describe_error(&e))),
        (Ok(value), Some(code)) => Outcome::Fail(format!("expected error {code}, got {value:?}")),
        (Ok(value), None) if value == *expected => Outcome::Pass,
        (Ok(value), None) => Outcome::Fail(format!("expected {expected:?}, got {value:?}")),
        (Err(e), None) => Outcome::Fail(format!("expected {expected:?}, got {}", describe_error(&e))),
    }
}

/// Where one test is, for failure lines.
struct Place<'a> {
    file: &'a str,
    backend: Backend,
    test: &'a str,
    stage: usize,
}

impl Place<'_> {
    fn at(&self, kind: &str, index: usize) -> String {
        format!("{} [{}] › {} › stage {} › {kind} #{index}", self.file, self.backend.name(), self.test, self.stage)
    }

    /// The place without the backend, as `KNOWN_FAILURES` names it.
    fn key(&self, kind: &str, index: usize) -> String {
        format!("{} › {} › stage {} › {kind} #{index}", self.file, self.test, self.stage)
    }
}

/// Assertions that fail because of engine bugs not fixed yet: (place, the bug). They are reported
/// and counted, but do not fail the run; one that starts passing fails it, so the entry is removed.
const KNOWN_FAILURES: &[(&str, &str)] = &[];

struct Run {
    tally: Tally,
    known: usize,
    failures: Vec<String>,
}

impl Run {
    fn new() -> Run {
        Run { tally: Tally::default(), known: 0, failures: Vec::new() }
    }

    fn record(&mut self, kind: usize, place: &Place<'_>, index: usize, outcome: Outcome) {
        let kind_name = KINDS[kind];
        let key = place.key(kind_name, index);
        let known = KNOWN_FAILURES.iter().find(|(k, _)| *k == key).map(|(_, bug)| *bug);
        self.tally.total[kind] += 1;
        match (outcome, known) {
            (Outcome::Pass, None) => self.tally.passed[kind] += 1,
            (Outcome::Pass, Some(_)) => {
                self.tally.passed[kind] += 1;
                self.failures
                    .push(format!("{}: passes now; remove it from KNOWN_FAILURES", place.at(kind_name, index)));
            }
            (Outcome::Skip, _) => self.tally.skipped[kind] += 1,
            (Outcome::Fail(message), Some(bug)) => {
                self.known += 1;
                println!("KNOWN {}: {message} (bug: {bug})", place.at(kind_name, index));
            }
            (Outcome::Fail(message), None) => self.failures.push(format!("{}: {message}", place.at(kind_name, index))),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Conversions.

fn to_tuple(yaml: &YamlTuple) -> Result<Tuple, String> {
    let mut tuple = Tuple::from_parts(&yaml.object, &yaml.relation, &yaml.user).map_err(|e| e.to_string())?;
    tuple.condition = yaml
        .condition
        .as_ref()
        .map(|c| TupleCondition { name: c.name.clone(), context: c.context.clone().unwrap_or_default() });
    Ok(tuple)
}

/// Contextual tuples that do not even parse are invalid contextual tuples (OpenFGA's 2027).
fn contextual(tuples: [&Option<Vec<YamlTuple>>; 2]) -> Result<Vec<Tuple>, EngineError> {
    tuples
        .into_iter()
        .flatten()
        .flatten()
        .map(|t| {
            to_tuple(t).map_err(|reason| EngineError::InvalidContextualTuple {
                tuple: format!("{}#{}@{}", t.object, t.relation, t.user),
                reason,
            })
        })
        .collect()
}

fn context(contexts: [&Option<Context>; 2]) -> Context {
    contexts.into_iter().flatten().flat_map(|c| c.clone()).collect()
}

fn user_filter(text: &str) -> UserFilterSpec {
    match text.split_once('#') {
        Some((type_name, relation)) => {
            UserFilterSpec { type_name: type_name.to_string(), relation: Some(relation.to_string()) }
        }
        None => UserFilterSpec { type_name: text.to_string(), relation: None },
    }
}

fn set(items: impl IntoIterator<Item = String>) -> BTreeSet<String> {
    items.into_iter().collect()
}

fn check(
    harness: &Harness,
    object: &str,
    relation: &str,
    user: &str,
    extra: &[Tuple],
    ctx: &Context,
) -> Result<bool, EngineError> {
    let request = CheckRequest {
        object: object.to_string(),
        relation: relation.to_string(),
        user: user.to_string(),
        contextual_tuples: extra.to_vec(),
        context: ctx.clone(),
        model_id: None,
    };
    harness.engine().store(&harness.store_id).and_then(|store| store.check(&request)).map(|a| a.value)
}

fn list_objects(
    harness: &Harness,
    object_type: &str,
    relation: &str,
    user: &str,
    extra: &[Tuple],
    ctx: &Context,
) -> Result<BTreeSet<String>, EngineError> {
    let request = ListObjectsRequest {
        object_type: object_type.to_string(),
        relation: relation.to_string(),
        user: user.to_string(),
        contextual_tuples: extra.to_vec(),
        context: ctx.clone(),
        model_id: None,
    };
    harness.engine().store(&harness.store_id).and_then(|store| store.list_objects(&request)).map(|a| set(a.value))
}

fn list_users(
    harness: &Harness,
    object: &str,
    relation: &str,
    filters: &[String],
    extra: &[Tuple],
    ctx: &Context,
) -> Result<BTreeSet<String>, EngineError> {
    let request = ListUsersRequest {
        object: object.to_string(),
        relation: relation.to_string(),
        user_filters: filters.iter().map(|f| user_filter(f)).collect(),
        contextual_tuples: extra.to_vec(),
        context: ctx.clone(),
        model_id: None,
    };
    harness
        .engine()
        .store(&harness.store_id)
        .and_then(|store| store.list_users(&request))
        .map(|a| set(a.value.iter().map(Subject::to_string)))
}

// ---------------------------------------------------------------------------------------------
// Running.

struct Options {
    backends: &'static [Backend],
    cross_check: bool,
}

fn case_filter() -> Option<String> {
    std::env::var("CASE").ok().filter(|c| !c.is_empty())
}

/// Runs one file on every backend; prints one count line per backend.
fn run_file(path: &Path, options: &Options, run: &mut Run) {
    let file_name = path.file_name().map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into_owned());
    let parsed: Result<SuiteFile, String> = std::fs::read_to_string(path)
        .map_err(|e| e.to_string())
        .and_then(|text| serde_norway::from_str(&text).map_err(|e| e.to_string()));
    let suite = match parsed {
        Ok(suite) => suite,
        Err(message) => {
            run.failures.push(format!("{file_name}: cannot be read: {message}"));
            return;
        }
    };
    let filter = case_filter();
    for &backend in options.backends {
        let before = run.tally;
        for test in suite.tests.iter().filter(|t| filter.as_deref().is_none_or(|f| t.name.contains(f))) {
            run_test(&file_name, backend, test, options.cross_check, run);
        }
        let mut this_file = Tally::default();
        for i in 0..KINDS.len() {
            this_file.total[i] = run.tally.total[i] - before.total[i];
            this_file.passed[i] = run.tally.passed[i] - before.passed[i];
            this_file.skipped[i] = run.tally.skipped[i] - before.skipped[i];
        }
        if this_file.total.iter().sum::<usize>() > 0 {
            println!("{file_name} [{}]: {}", backend.name(), this_file.line());
        }
    }
}

fn run_test(file: &str, backend: Backend, test: &SuiteTest, cross_check: bool, run: &mut Run) {
    let mut harness = match Harness::new(backend) {
        Ok(harness) => harness,
        Err(message) => {
            run.failures.push(format!("{file} [{}] › {}: setup failed: {message}", backend.name(), test.name));
            return;
        }
    };
    let mut written: Vec<YamlTuple> = Vec::new();
    for (stage_index, stage) in test.stages.iter().enumerate() {
        let place = Place { file, backend, test: &test.name, stage: stage_index + 1 };
        if let Err(message) = prepare_stage(&mut harness, stage) {
            let where_ = format!("{file} [{}] › {} › stage {}", backend.name(), test.name, place.stage);
            run.failures.push(format!("{where_}: expected the model and tuples to be accepted, got {message}"));
            return;
        }
        written.extend(stage.tuples.iter().flatten().cloned());
        run_assertions(&harness, stage, &place, run);
        if cross_check {
            run_cross_checks(&harness, stage, &written, &place, run);
        }
    }
}

/// Writes the stage's model, then its tuples; reopens sled when the backend asks for it.
fn prepare_stage(harness: &mut Harness, stage: &Stage) -> Result<(), String> {
    let model = Model::parse_dsl(&stage.model).map_err(|errors| {
        format!("model rejected: {}", errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))
    })?;
    let store = harness.engine().store(&harness.store_id).map_err(|e| format!("store missing: {e}"))?;
    store.write_model(model).map_err(|e| format!("model rejected: {e}"))?;
    let tuples: Vec<Tuple> = stage.tuples.iter().flatten().map(to_tuple).collect::<Result<_, _>>()?;
    for chunk in tuples.chunks(100) {
        let request =
            WriteRequest { writes: chunk.iter().cloned().map(StoredTuple::new).collect(), ..WriteRequest::default() };
        store.write(request).map_err(|e| format!("tuples rejected: {e}"))?;
    }
    drop(store);
    harness.reopen()
}

fn run_assertions(harness: &Harness, stage: &Stage, place: &Place<'_>, run: &mut Run) {
    for (i, assertion) in stage.check_assertions.iter().flatten().enumerate() {
        let key = &assertion.tuple;
        let ctx = context([&assertion.context, &None]);
        let answer = contextual([&assertion.contextual_tuples, &None])
            .and_then(|extra| check(harness, &key.object, &key.relation, &key.user, &extra, &ctx));
        let expected = assertion.expectation.unwrap_or(false);
        run.record(0, place, i + 1, judge(answer, &expected, assertion.error_code));
    }
    for (i, assertion) in stage.list_objects_assertions.iter().flatten().enumerate() {
        let request = &assertion.request;
        let ctx = context([&request.context, &assertion.context]);
        let answer = contextual([&request.contextual_tuples, &assertion.contextual_tuples]).and_then(|extra| {
            list_objects(harness, &request.object_type, &request.relation, &request.user, &extra, &ctx)
        });
        let expected = set(assertion.expectation.clone().unwrap_or_default());
        run.record(1, place, i + 1, judge(answer, &expected, assertion.error_code));
    }
    for (i, assertion) in stage.list_users_assertions.iter().flatten().enumerate() {
        let request = &assertion.request;
        let ctx = context([&request.context, &assertion.context]);
        let answer = contextual([&request.contextual_tuples, &assertion.contextual_tuples])
            .and_then(|extra| list_users(harness, &request.object, &request.relation, &request.filters, &extra, &ctx));
        let expected = set(assertion.expectation.clone().unwrap_or_default());
        run.record(2, place, i + 1, judge(answer, &expected, assertion.error_code));
    }
}

/// Every object of `object_type` the stage or the test's tuples mention, as object or as user.
fn objects_of_type(object_type: &str, stage: &Stage, written: &[YamlTuple], extra: &[Tuple]) -> BTreeSet<String> {
    let prefix = format!("{object_type}:");
    let mut names: Vec<String> = Vec::new();
    for tuple in
        written.iter().chain(stage.check_assertions.iter().flatten().flat_map(|a| a.contextual_tuples.iter().flatten()))
    {
        names.push(tuple.object.clone());
        names.push(tuple.user.split('#').next().unwrap_or_default().to_string());
    }
    for tuple in extra {
        names.push(tuple.object.to_string());
    }
    for assertion in stage.check_assertions.iter().flatten() {
        names.push(assertion.tuple.object.clone());
        names.push(assertion.tuple.user.split('#').next().unwrap_or_default().to_string());
    }
    for assertion in stage.list_objects_assertions.iter().flatten() {
        names.extend(assertion.expectation.iter().flatten().cloned());
    }
    for assertion in stage.list_users_assertions.iter().flatten() {
        names.push(assertion.request.object.clone());
    }
    names.into_iter().filter(|n| n.starts_with(&prefix) && !n.ends_with(":*")).collect()
}

/// SpiceDB-style consistency: for each check assertion's (user, relation), check agrees with list
/// objects on every object of the type, and with list users (filtered to the user's type).
fn run_cross_checks(harness: &Harness, stage: &Stage, written: &[YamlTuple], place: &Place<'_>, run: &mut Run) {
    for (i, assertion) in stage.check_assertions.iter().flatten().enumerate() {
        if assertion.error_code.is_some() {
            continue;
        }
        let outcome = cross_check(harness, stage, written, assertion);
        run.record(3, place, i + 1, outcome);
        run.record(4, place, i + 1, explain_agrees(harness, assertion));
    }
}

/// Explain against check (issue 28): the same answer; an allow's path tuples exist (read back)
/// or were contextual; a deny's first `would_allow` tuple, written, makes the check allow (and
/// is deleted again).
fn explain_agrees(harness: &Harness, assertion: &CheckAssertion) -> Outcome {
    let key = &assertion.tuple;
    let Ok(extra) = contextual([&assertion.contextual_tuples, &None]) else { return Outcome::Skip };
    let ctx = context([&assertion.context, &None]);
    let allowed = match check(harness, &key.object, &key.relation, &key.user, &extra, &ctx) {
        Ok(allowed) => allowed,
        Err(_) => return Outcome::Skip,
    };
    let request = CheckRequest {
        object: key.object.clone(),
        relation: key.relation.clone(),
        user: key.user.clone(),
        contextual_tuples: extra.clone(),
        context: ctx.clone(),
        model_id: None,
    };
    let engine = harness.engine();
    let explanation = match engine.store(&harness.store_id).and_then(|store| store.explain(&request)) {
        Ok(answer) => answer.value,
        Err(e) => return Outcome::Fail(format!("explain failed: {}", describe_error(&e))),
    };
    if explanation.allowed != allowed {
        return Outcome::Fail(format!("explain says allowed = {}, check says {allowed}", explanation.allowed));
    }
    for entry in &explanation.path {
        let contextual = extra.iter().any(|t| t.identity() == entry.tuple.identity());
        if entry.contextual != contextual {
            return Outcome::Fail(format!("path tuple `{}` is marked contextual = {}", entry.tuple, entry.contextual));
        }
        if !contextual && !stored(harness, &entry.tuple) {
            return Outcome::Fail(format!("path tuple `{}` is not stored", entry.tuple));
        }
    }
    if allowed && explanation.path.is_empty() && !explanation.cut && !key.user.contains('#') {
        return Outcome::Fail("an allow with an empty path".into());
    }
    let Some(first) = explanation.would_allow.first() else { return Outcome::Pass };
    let write = WriteRequest { writes: vec![StoredTuple::new(first.clone())], ..WriteRequest::default() };
    if let Err(e) = engine.store(&harness.store_id).and_then(|store| store.write(write)) {
        return Outcome::Fail(format!("would_allow `{first}` cannot be written: {e}"));
    }
    let after = check(harness, &key.object, &key.relation, &key.user, &extra, &ctx);
    let delete = WriteRequest { deletes: vec![first.clone()], ..WriteRequest::default() };
    if let Err(e) = engine.store(&harness.store_id).and_then(|store| store.write(delete)) {
        return Outcome::Fail(format!("would_allow `{first}` cannot be deleted again: {e}"));
    }
    match after {
        Ok(true) => Outcome::Pass,
        other => Outcome::Fail(format!("writing would_allow `{first}` gives check = {other:?}")),
    }
}

/// Whether the store holds `tuple` (read back by its object, relation and user).
fn stored(harness: &Harness, tuple: &Tuple) -> bool {
    let filter = ReadFilter {
        object_type: Some(tuple.object.object_type.clone()),
        object_id: Some(tuple.object.id.clone()),
        relation: Some(tuple.relation.clone()),
        user: Some(tuple.subject.to_string()),
    };
    harness
        .engine()
        .store(&harness.store_id)
        .and_then(|store| store.read(&filter))
        .is_ok_and(|answer| answer.value.iter().any(|t| t.tuple.identity() == tuple.identity()))
}

/// Errors a cross-check tolerates: conditions, and depth (a lookup may go deeper than the one check).
fn tolerated(error: &EngineError) -> bool {
    matches!(error, EngineError::Eval(EvalError::DepthExceeded { .. } | EvalError::Condition { .. }))
}

fn cross_check(harness: &Harness, stage: &Stage, written: &[YamlTuple], assertion: &CheckAssertion) -> Outcome {
    let key = &assertion.tuple;
    let Ok(extra) = contextual([&assertion.contextual_tuples, &None]) else { return Outcome::Skip };
    let ctx = context([&assertion.context, &None]);
    let object_type = key.object.split(':').next().unwrap_or_default();
    let listed = match list_objects(harness, object_type, &key.relation, &key.user, &extra, &ctx) {
        Ok(listed) => listed,
        Err(e) if tolerated(&e) => return Outcome::Skip,
        Err(e) => return Outcome::Fail(format!("list objects of `{}`: {}", key.user, describe_error(&e))),
    };
    let user_type = key.user.split(':').next().unwrap_or_default();
    let filter = match key.user.split_once('#') {
        Some((_, relation)) => format!("{user_type}#{relation}"),
        None => user_type.to_string(),
    };
    let mut problems = Vec::new();
    let mut skipped = false;
    let universe: BTreeSet<String> =
        objects_of_type(object_type, stage, written, &extra).into_iter().chain(listed.iter().cloned()).collect();
    for object in &universe {
        let allowed = match check(harness, object, &key.relation, &key.user, &extra, &ctx) {
            Ok(allowed) => allowed,
            Err(e) if tolerated(&e) => {
                skipped = true;
                continue;
            }
            Err(e) => {
                problems.push(format!("check {object}#{}@{}: {}", key.relation, key.user, describe_error(&e)));
                continue;
            }
        };
        // `check(o#r, r, o)` holds by definition, but list objects only finds objects that tuples name.
        let unknown_self = key.user == format!("{object}#{}", key.relation)
            && !written.iter().chain(extra_written(&extra).iter()).any(|t| t.object == *object);
        if allowed != listed.contains(object) && !unknown_self {
            problems.push(format!(
                "check {object}#{}@{} = {allowed}, but list objects {} it",
                key.relation,
                key.user,
                if listed.contains(object) { "contains" } else { "lacks" }
            ));
        }
        // A listed wildcard stands for every user of its type, but list users may return the
        // wildcard without the users an exclusion removes from it, so only `allowed` can rely on it.
        let wildcard = format!("{user_type}:*");
        match list_users(harness, object, &key.relation, std::slice::from_ref(&filter), &extra, &ctx) {
            Ok(users)
                if users.contains(&key.user) && !allowed
                    || allowed && !users.contains(&key.user) && !(filter == user_type && users.contains(&wildcard)) =>
            {
                problems.push(format!(
                    "check {object}#{}@{} = {allowed}, but list users [{filter}] = {users:?}",
                    key.relation, key.user
                ))
            }
            Ok(_) => {}
            Err(e) if tolerated(&e) => skipped = true,
            Err(e) => problems.push(format!("list users of {object}#{}: {}", key.relation, describe_error(&e))),
        }
    }
    if !problems.is_empty() {
        Outcome::Fail(format!("expected check, list objects and list users to agree: {}", problems.join("; ")))
    } else if skipped {
        Outcome::Skip
    } else {
        Outcome::Pass
    }
}

fn extra_written(extra: &[Tuple]) -> Vec<YamlTuple> {
    extra
        .iter()
        .map(|t| YamlTuple {
            object: t.object.to_string(),
            relation: t.relation.clone(),
            user: t.subject.to_string(),
            condition: None,
        })
        .collect()
}

fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|entries| entries.filter_map(Result::ok).map(|e| e.path()).collect())
        .unwrap_or_default();
    files.retain(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"));
    files.sort();
    files
}

fn finish(run: &Run, what: &str) {
    println!("{what} total: {}; {} known failure(s)", run.tally.line(), run.known);
    assert!(run.tally.passed.iter().sum::<usize>() > 0, "{what}: no assertion ran, so nothing was tested");
    if !run.failures.is_empty() {
        for failure in &run.failures {
            println!("FAIL {failure}");
        }
        panic!("{} conformance assertion(s) failed in {what}; see the FAIL lines above", run.failures.len());
    }
}

#[test]
fn writ_fixtures_on_every_backend() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/conformance");
    let files = yaml_files(&dir);
    assert!(!files.is_empty(), "no fixtures in {}", dir.display());
    let options = Options { backends: &[Backend::Memory, Backend::Sled, Backend::SledReopened], cross_check: true };
    let mut run = Run::new();
    for file in &files {
        run_file(file, &options, &mut run);
    }
    finish(&run, "writ fixtures");
}

#[test]
#[cfg_attr(
    writ_no_shared = "openfga/suites",
    ignore = "shared conformance/openfga/suites not found beside the checkout"
)]
fn openfga_suites_on_memory() {
    let dir = crate::skipped::shared_data("openfga/suites");
    let options = Options { backends: &[Backend::Memory], cross_check: true };
    let mut run = Run::new();
    for file in yaml_files(&dir) {
        run_file(&file, &options, &mut run);
    }
    finish(&run, "OpenFGA suites");
}
