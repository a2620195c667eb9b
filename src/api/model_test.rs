//! OpenFGA model-test files (`.fga.yaml`) as text, and their runs: the file format (`model` |
//! `model_file`, `tuples` | `tuple_file` | `tuple_files`, `tests` with `check`, `list_objects`,
//! `list_users`, per-test `tuples`, `context`), running a file's tests against a given [`Model`]
//! and tuples on a fresh in-memory [`Engine`], and the results and summary `fga model test`
//! reports. `writ model test` (`cli::testfile`, which reads the files a test file names and
//! prints) and the console's Model page both run tests through here.
//!
//! Unknown fields anywhere OpenFGA's store-file schema forbids them are errors naming the field.
//! **Invariant:** every test runs on its own in-memory engine holding the given tuples plus the
//! test's own, and nothing here reads a file or touches any other engine or store; an assertion
//! passes only when the engine answered and the answer equals the expectation.
//! It lives in `api` only because OpenFGA's error codes (`api::codes`) do, which it reports as
//! `fga model test` does; it touches no HTTP (no `axum`, `tokio` or `hyper`, checked by
//! tests/tidy.rs) and must not import `store`, `index`, `eval` or `cli`.

use crate::engine::{
    Answer, CheckRequest, Engine, EngineConfig, EngineError, InputLimits, ListObjectsRequest, ListUsersRequest,
    StoreHandle, UserFilterSpec, WriteRequest,
};
use crate::model::Model;
use crate::tuple::{Context, StoredTuple, Tuple, TupleCondition};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// Why a test file's tests could not be run at all (a failing assertion is a result, not this).
#[derive(Debug, thiserror::Error)]
pub enum ModelTestError {
    /// The text is not YAML of a test file's shape.
    #[error("{0}")]
    Parse(String),
    /// The engine refused the model or a tuple, with OpenFGA's error number.
    #[error("rpc error: code = Code({code}) desc = {message}")]
    Setup {
        /// OpenFGA's error number.
        code: u32,
        /// What is wrong.
        message: String,
    },
}

impl From<EngineError> for ModelTestError {
    fn from(error: EngineError) -> ModelTestError {
        ModelTestError::Setup { code: error.openfga_code().0, message: error.to_string() }
    }
}

/// Reads a test file's YAML text.
pub fn parse(text: &str) -> Result<TestFile, ModelTestError> {
    serde_norway::from_str(text).map_err(|e| ModelTestError::Parse(e.to_string()))
}

/// Runs `tests` in order against `model`, each on a fresh in-memory engine holding `tuples` (the
/// file's shared tuples) plus the test's own; stops at the first test whose setup fails.
pub fn run(model: &Model, tuples: &[FileTuple], tests: &[TestCase]) -> Result<Vec<TestResult>, ModelTestError> {
    tests.iter().map(|test| run_test(model, &test_tuples(tuples, test), test, None)).collect()
}

/// The file's shared tuples followed by the test's own.
fn test_tuples(tuples: &[FileTuple], test: &TestCase) -> Vec<FileTuple> {
    let mut test_tuples = tuples.to_vec();
    test_tuples.extend(test.tuples.clone().unwrap_or_default());
    test_tuples
}

/// What one run may take, for a caller that runs files others send (the console); the CLI runs
/// the files its user chose, unbounded.
#[derive(Debug, Clone, Copy)]
pub struct RunBounds {
    /// Most tests in the file.
    pub max_tests: usize,
    /// Most assertions over all tests (a check counts once per user × object × relation).
    pub max_assertions: usize,
    /// Most tuples loaded over all tests (the shared tuples count once per test).
    pub max_tuples: usize,
    /// Longest the whole run may take; no assertion starts after it, and each evaluation is held
    /// to the time that was left when its test began.
    pub time: Duration,
}

/// Why a bounded run did not give results.
#[derive(Debug, thiserror::Error)]
pub enum RunLimitError {
    /// The file asks for more than the bounds allow; nothing was run.
    #[error("the test file has {found} {what}, more than the limit of {limit}")]
    TooLarge {
        /// What was counted: `tests`, `assertions` or `tuples`.
        what: &'static str,
        /// How many the file has.
        found: usize,
        /// The bound.
        limit: usize,
    },
    /// The run passed its time bound; its partial results are dropped.
    #[error("the tests did not finish within {} ms", .0.as_millis())]
    Deadline(Duration),
    /// The file could not be run at all.
    #[error(transparent)]
    Run(#[from] ModelTestError),
}

impl RunBounds {
    /// `TooLarge` for the first bound the file's tests and tuples exceed.
    fn check(&self, tuples: &[FileTuple], tests: &[TestCase]) -> Result<(), RunLimitError> {
        let assertions: usize = tests.iter().map(assertion_count).fold(0, usize::saturating_add);
        let loaded = tests
            .iter()
            .map(|test| tuples.len().saturating_add(test.tuples.as_ref().map_or(0, Vec::len)))
            .fold(0, usize::saturating_add);
        for (what, found, limit) in [
            ("tests", tests.len(), self.max_tests),
            ("assertions", assertions, self.max_assertions),
            ("tuples", loaded, self.max_tuples),
        ] {
            if found > limit {
                return Err(RunLimitError::TooLarge { what, found, limit });
            }
        }
        Ok(())
    }
}

/// How many assertions a test makes: a check's users × objects × relations, one per relation of
/// a list case.
fn assertion_count(test: &TestCase) -> usize {
    let checks = test.check.iter().flatten().map(|case| {
        let users = usize::from(case.user.is_some()).saturating_add(case.users.as_ref().map_or(0, Vec::len));
        let objects = usize::from(case.object.is_some()).saturating_add(case.objects.as_ref().map_or(0, Vec::len));
        users.saturating_mul(objects).saturating_mul(case.assertions.len())
    });
    let lists = test.list_objects.iter().flatten().map(|case| case.assertions.len());
    let users = test.list_users.iter().flatten().map(|case| case.assertions.len());
    checks.chain(lists).chain(users).fold(0, usize::saturating_add)
}

/// [`run`] within `bounds`: refuses a file over them before running anything, and stops with
/// `Deadline` once the run passes its time.
pub fn run_bounded(
    model: &Model,
    tuples: &[FileTuple],
    tests: &[TestCase],
    bounds: &RunBounds,
) -> Result<Vec<TestResult>, RunLimitError> {
    bounds.check(tuples, tests)?;
    let deadline = Instant::now().checked_add(bounds.time);
    let mut results = Vec::with_capacity(tests.len());
    for test in tests {
        let result = run_test(model, &test_tuples(tuples, test), test, deadline)?;
        // A test cut short by the deadline is not a result.
        if deadline.is_some_and(|deadline| Instant::now() >= deadline) {
            return Err(RunLimitError::Deadline(bounds.time));
        }
        results.push(result);
    }
    Ok(results)
}

/// A tuple as written in test files.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FileTuple {
    /// `type:id`, `type:*` or `type:id#relation`.
    pub user: String,
    /// The relation.
    pub relation: String,
    /// `type:id`.
    pub object: String,
    /// Optional condition.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub condition: Option<FileCondition>,
}

/// A tuple's condition as written in test files.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FileCondition {
    /// Condition name.
    pub name: String,
    /// Stored parameters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<Context>,
}

/// A whole `.fga.yaml` file.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct TestFile {
    /// Optional name.
    pub name: Option<String>,
    /// Inline DSL model.
    pub model: Option<String>,
    /// Path to a model file (DSL; JSON when it ends in `.json`; a modular model's `fga.mod`).
    pub model_file: Option<String>,
    /// Inline tuples.
    pub tuples: Option<Vec<FileTuple>>,
    /// A tuple file (YAML, JSON or CSV).
    pub tuple_file: Option<String>,
    /// Several tuple files.
    pub tuple_files: Option<Vec<String>>,
    /// The tests.
    pub tests: Vec<TestCase>,
}

/// One named test.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct TestCase {
    /// Name.
    pub name: String,
    /// Description.
    pub description: Option<String>,
    /// Extra tuples for this test only.
    pub tuples: Option<Vec<FileTuple>>,
    /// Check assertions.
    pub check: Option<Vec<CheckCase>>,
    /// List-objects assertions.
    pub list_objects: Option<Vec<ListObjectsCase>>,
    /// List-users assertions.
    pub list_users: Option<Vec<ListUsersCase>>,
}

/// `check:` entry: one user (or several) and one object (or several), relation → expected.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct CheckCase {
    /// The user.
    pub user: Option<String>,
    /// Several users.
    pub users: Option<Vec<String>>,
    /// The object.
    pub object: Option<String>,
    /// Several objects.
    pub objects: Option<Vec<String>>,
    /// Condition context.
    pub context: Option<Context>,
    /// relation → expected answer.
    pub assertions: BTreeMap<String, bool>,
}

/// `list_objects:` entry.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ListObjectsCase {
    /// The user.
    pub user: String,
    /// The object type.
    #[serde(rename = "type")]
    pub object_type: String,
    /// Condition context.
    #[serde(default)]
    pub context: Option<Context>,
    /// relation → expected objects.
    #[serde(default)]
    pub assertions: BTreeMap<String, Option<Vec<String>>>,
}

/// `list_users:` entry.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ListUsersCase {
    /// The object.
    pub object: String,
    /// The filters (one).
    #[serde(default)]
    pub user_filter: Vec<FileUserFilter>,
    /// Condition context.
    #[serde(default)]
    pub context: Option<Context>,
    /// relation → expected users.
    #[serde(default)]
    pub assertions: BTreeMap<String, ExpectedUsers>,
}

/// A user filter as written in test files.
#[derive(Debug, Clone, Deserialize, Serialize, Default)]
pub struct FileUserFilter {
    /// Type.
    #[serde(rename = "type")]
    pub type_name: String,
    /// Userset relation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relation: Option<String>,
}

/// `{users: [...]}`.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct ExpectedUsers {
    /// Expected users.
    pub users: Option<Vec<String>>,
}

/// Results of one test, in the shape `fga model test --verbose` prints.
#[derive(Debug, Clone)]
pub struct TestResult {
    /// Test name.
    pub name: String,
    /// Test description.
    pub description: String,
    /// One JSON object per check assertion.
    pub check_results: Vec<Value>,
    /// One JSON object per list-objects assertion.
    pub list_objects_results: Vec<Value>,
    /// One JSON object per list-users assertion.
    pub list_users_results: Vec<Value>,
    /// Whether each assertion passed (answered, and as expected), per kind in order, for counting.
    pub outcomes: [Vec<bool>; 3],
    /// Every assertion in the order run: checks, then list objects, then list users.
    pub assertions: Vec<Assertion>,
    /// The test's tuples, shown as every request's `contextual_tuples` in the verbose JSON; kept
    /// once here and joined to the requests only by [`TestResult::to_json`].
    pub contextual_tuples: Vec<Value>,
}

/// The three kinds of assertion, in the order a test runs them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AssertionKind {
    /// A `check:` assertion.
    Check,
    /// A `list_objects:` assertion.
    ListObjects,
    /// A `list_users:` assertion.
    ListUsers,
}

impl AssertionKind {
    /// The name `fga model test` prints for the kind.
    pub fn label(self) -> &'static str {
        match self {
            AssertionKind::Check => "Check",
            AssertionKind::ListObjects => "ListObjects",
            AssertionKind::ListUsers => "ListUsers",
        }
    }

    fn index(self) -> usize {
        match self {
            AssertionKind::Check => 0,
            AssertionKind::ListObjects => 1,
            AssertionKind::ListUsers => 2,
        }
    }
}

/// One assertion and how it came out, in the words of the summary text.
#[derive(Debug, Clone)]
pub struct Assertion {
    /// Which kind of assertion.
    pub kind: AssertionKind,
    /// The query as the summary shows it in the kind's parentheses (`user=…,relation=…,object=…`).
    pub query: String,
    /// Whether the engine answered, and as expected.
    pub passed: bool,
    /// The expected answer (`true`, `[doc:1 doc:2]`).
    pub expected: String,
    /// The engine's answer, or `N/A` when it failed with an error.
    pub got: String,
    /// The engine's error (`rpc error: code = …`), when it failed.
    pub error: Option<String>,
}

impl Assertion {
    /// The line the summary text shows for this assertion when it failed.
    pub fn failure_line(&self) -> String {
        let error = self.error.as_ref().map(|e| format!(", error={e}")).unwrap_or_default();
        format!("ⅹ {}({}): expected={}, got={}{error}", self.kind.label(), self.query, self.expected, self.got)
    }
}

impl TestResult {
    /// True when every assertion passed.
    pub fn passed(&self) -> bool {
        self.outcomes.iter().flatten().all(|passed| *passed)
    }

    fn record(&mut self, assertion: Assertion) {
        self.outcomes[assertion.kind.index()].push(assertion.passed);
        self.assertions.push(assertion);
    }

    /// The verbose JSON rows of one kind of assertion.
    fn rows(&mut self, kind: AssertionKind) -> &mut Vec<Value> {
        match kind {
            AssertionKind::Check => &mut self.check_results,
            AssertionKind::ListObjects => &mut self.list_objects_results,
            AssertionKind::ListUsers => &mut self.list_users_results,
        }
    }

    /// The verbose JSON object of this test.
    pub fn to_json(&self) -> Value {
        let with_tuples = |results: &[Value]| -> Vec<Value> {
            results
                .iter()
                .map(|result| {
                    let mut result = result.clone();
                    if let Some(request) = result.get_mut("request").and_then(Value::as_object_mut) {
                        request.insert("contextual_tuples".into(), Value::Array(self.contextual_tuples.clone()));
                    }
                    result
                })
                .collect()
        };
        json!({
            "name": self.name,
            "description": self.description,
            "check_results": with_tuples(&self.check_results),
            "list_objects_results": with_tuples(&self.list_objects_results),
            "list_users_results": with_tuples(&self.list_users_results),
        })
    }
}

fn to_tuple(file_tuple: &FileTuple) -> Result<Tuple, EngineError> {
    let mut tuple = Tuple::from_parts(&file_tuple.object, &file_tuple.relation, &file_tuple.user)
        .map_err(|e| EngineError::Validation(e.to_string()))?;
    // Model-test files follow the language validators' stricter id rule, as `fga model test` does.
    if !crate::tuple::valid_object_id(&tuple.object.id) {
        return Err(EngineError::Validation(format!(
            "object `{}` has an invalid id: ids are letters, digits and `_|*@.+/-`",
            file_tuple.object
        )));
    }
    tuple.condition = file_tuple
        .condition
        .as_ref()
        .map(|c| TupleCondition { name: c.name.clone(), context: c.context.clone().unwrap_or_default() });
    Ok(tuple)
}

/// A fresh engine holding `model` and `tuples`; with a deadline, each evaluation is held to the
/// time left now.
fn prepare_store(
    model: &Model,
    tuples: &[FileTuple],
    deadline: Option<Instant>,
) -> Result<(Engine, String), ModelTestError> {
    let request_timeout = deadline.map(|deadline| deadline.saturating_duration_since(Instant::now()));
    let input = InputLimits { request_timeout, ..InputLimits::default() };
    let engine = Engine::in_memory_with(EngineConfig { input, ..EngineConfig::default() });
    let fail = ModelTestError::from;
    let store = engine.create_store("model-test").map_err(fail)?;
    let handle = engine.store(&store.id).map_err(fail)?;
    handle.write_model(model.clone()).map_err(fail)?;
    let parsed: Vec<Tuple> = tuples.iter().map(to_tuple).collect::<Result<_, _>>().map_err(fail)?;
    for chunk in parsed.chunks(engine.config().max_tuples_per_write.max(1)) {
        let request = WriteRequest {
            writes: chunk.iter().cloned().map(StoredTuple::new).collect(),
            ignore_duplicates: true,
            ..WriteRequest::default()
        };
        handle.write(request).map_err(fail)?;
    }
    Ok((engine, store.id))
}

fn run_test(
    model: &Model,
    tuples: &[FileTuple],
    test: &TestCase,
    deadline: Option<Instant>,
) -> Result<TestResult, ModelTestError> {
    let (engine, store_id) = prepare_store(model, tuples, deadline)?;
    let contextual: Vec<Value> = tuples.iter().map(|t| serde_json::to_value(t).unwrap_or(Value::Null)).collect();
    let mut result = TestResult {
        name: test.name.clone(),
        description: test.description.clone().unwrap_or_default(),
        check_results: Vec::new(),
        list_objects_results: Vec::new(),
        list_users_results: Vec::new(),
        outcomes: [Vec::new(), Vec::new(), Vec::new()],
        assertions: Vec::new(),
        contextual_tuples: contextual,
    };
    let runner = Runner { engine: &engine, store_id: &store_id, deadline };
    for case in test.check.iter().flatten() {
        runner.run_check(case, &mut result);
    }
    for case in test.list_objects.iter().flatten() {
        runner.run_list_objects(case, &mut result);
    }
    for case in test.list_users.iter().flatten() {
        runner.run_list_users(case, &mut result);
    }
    Ok(result)
}

struct Runner<'a> {
    engine: &'a Engine,
    store_id: &'a str,
    /// When set, no assertion starts after it (the caller drops the cut-short result).
    deadline: Option<Instant>,
}

/// One assertion as run, for [`Runner::report`]: what was asked and how it was answered.
struct Asked<'c, T> {
    kind: AssertionKind,
    /// The request as the verbose JSON shows it, less its context.
    shown: Value,
    /// The assertion's condition context.
    context: &'c Option<Context>,
    /// The request as the summary shows it (see [`Assertion::query`]), less its context.
    query: String,
    expected: T,
    answer: Result<T, EngineError>,
}

fn outcome_of<T: PartialEq>(answer: &Result<T, EngineError>, expected: &T) -> bool {
    matches!(answer, Ok(got) if got == expected)
}

fn error_json(error: &EngineError) -> Value {
    let (code, name) = error.openfga_code();
    json!({ "code": code, "name": name, "message": error.to_string() })
}

fn error_text(error: &EngineError) -> String {
    format!("rpc error: code = Code({}) desc = {}", error.openfga_code().0, error)
}

/// A list as the summary shows it: `[doc:1 doc:2]`.
fn list_text(items: &[String]) -> String {
    format!("[{}]", items.join(" "))
}

fn context_text(context: &Option<Context>) -> String {
    match context {
        Some(c) if !c.is_empty() => {
            let parts: Vec<String> = c.iter().map(|(k, v)| format!("{k}:{v}")).collect();
            format!(", context:&map[{}]", parts.join(" "))
        }
        _ => String::new(),
    }
}

impl Runner<'_> {
    /// True once the run's deadline has passed.
    fn expired(&self) -> bool {
        self.deadline.is_some_and(|deadline| Instant::now() >= deadline)
    }

    /// A request as the verbose JSON shows it, less its `contextual_tuples` (added by
    /// [`TestResult::to_json`], so a file of many tuples and checks holds its tuples once).
    fn request_base(&self, mut request: Value, context: &Option<Context>) -> Value {
        if let (Some(c), Some(map)) = (context, request.as_object_mut()) {
            map.insert("context".into(), Value::Object(c.clone()));
        }
        request
    }

    /// Asks the test's store, keeping the answer and dropping its revision.
    fn answer<T>(
        &self,
        ask: impl FnOnce(&StoreHandle<'_>) -> Result<Answer<T>, EngineError>,
    ) -> Result<T, EngineError> {
        self.engine.store(self.store_id).and_then(|store| ask(&store)).map(|answer| answer.value)
    }

    /// Records one assertion twice, as the verbose JSON row of its kind and as an [`Assertion`]
    /// for the summary. An answer (and the expected one) shows as `json` in the row and as `text`
    /// in the summary; an error as OpenFGA's error object and `rpc error` line.
    fn report<T: PartialEq>(
        &self,
        result: &mut TestResult,
        asked: Asked<'_, T>,
        json: impl Fn(&T) -> Value,
        text: impl Fn(&T) -> String,
    ) {
        let Asked { kind, shown, context, query, expected, answer } = asked;
        let outcome = outcome_of(&answer, &expected);
        let (got, error) = match &answer {
            Ok(value) => (json(value), Value::Null),
            Err(e) => (Value::Null, error_json(e)),
        };
        let row = json!({
            "request": self.request_base(shown, context),
            "expected": json(&expected), "got": got, "error": error,
            "test_result": outcome,
        });
        result.rows(kind).push(row);
        result.record(Assertion {
            kind,
            query: format!("{query}{}", context_text(context)),
            passed: outcome,
            expected: text(&expected),
            got: answer.as_ref().map(&text).unwrap_or_else(|_| "N/A".into()),
            error: answer.as_ref().err().map(error_text),
        });
    }

    fn run_check(&self, case: &CheckCase, result: &mut TestResult) {
        let users: Vec<&String> = case.user.iter().chain(case.users.iter().flatten()).collect();
        let objects: Vec<&String> = case.object.iter().chain(case.objects.iter().flatten()).collect();
        for user in &users {
            for object in &objects {
                for (relation, expected) in &case.assertions {
                    if self.expired() {
                        return;
                    }
                    let request = CheckRequest {
                        object: object.to_string(),
                        relation: relation.clone(),
                        user: user.to_string(),
                        context: case.context.clone().unwrap_or_default(),
                        ..CheckRequest::default()
                    };
                    let asked = Asked {
                        kind: AssertionKind::Check,
                        shown: json!({"user": user, "relation": relation, "object": object}),
                        context: &case.context,
                        query: format!("user={user},relation={relation},object={object}"),
                        expected: *expected,
                        answer: self.answer(|store| store.check(&request)),
                    };
                    self.report(result, asked, |allowed| json!(allowed), ToString::to_string);
                }
            }
        }
    }

    fn run_list_objects(&self, case: &ListObjectsCase, result: &mut TestResult) {
        for (relation, expected) in &case.assertions {
            if self.expired() {
                return;
            }
            let mut expected = expected.clone().unwrap_or_default();
            expected.sort();
            expected.dedup();
            let request = ListObjectsRequest {
                object_type: case.object_type.clone(),
                relation: relation.clone(),
                user: case.user.clone(),
                context: case.context.clone().unwrap_or_default(),
                ..ListObjectsRequest::default()
            };
            let asked = Asked {
                kind: AssertionKind::ListObjects,
                shown: json!({"user": case.user, "relation": relation, "type": case.object_type}),
                context: &case.context,
                query: format!("user={},relation={relation},type={}", case.user, case.object_type),
                expected,
                answer: self.answer(|store| store.list_objects(&request)),
            };
            self.report(result, asked, |objects| json!(objects), |objects| list_text(objects));
        }
    }

    fn run_list_users(&self, case: &ListUsersCase, result: &mut TestResult) {
        let filters: Vec<UserFilterSpec> = case
            .user_filter
            .iter()
            .map(|f| UserFilterSpec { type_name: f.type_name.clone(), relation: f.relation.clone() })
            .collect();
        for (relation, expected) in &case.assertions {
            if self.expired() {
                return;
            }
            let mut expected = expected.users.clone().unwrap_or_default();
            expected.sort();
            expected.dedup();
            let request = ListUsersRequest {
                object: case.object.clone(),
                relation: relation.clone(),
                user_filters: filters.clone(),
                context: case.context.clone().unwrap_or_default(),
                ..ListUsersRequest::default()
            };
            let answer = self.answer(|store| store.list_users(&request)).map(|subjects| {
                let mut users: Vec<String> = subjects.iter().map(ToString::to_string).collect();
                users.sort();
                users
            });
            let (object_type, object_id) = case.object.split_once(':').unwrap_or((&case.object, ""));
            let shown = json!({
                "object": {"id": object_id, "type": object_type},
                "relation": relation,
                "user_filters": case.user_filter,
            });
            let filter_text: Vec<String> = case
                .user_filter
                .iter()
                .map(|f| match &f.relation {
                    Some(r) => format!("{}#{r}", f.type_name),
                    None => f.type_name.clone(),
                })
                .collect();
            let asked = Asked {
                kind: AssertionKind::ListUsers,
                shown,
                context: &case.context,
                query: format!("object={},relation={relation},user_filter={}", case.object, filter_text.join(",")),
                expected,
                answer,
            };
            self.report(result, asked, |users| json!({ "users": users }), |users| list_text(users));
        }
    }
}

/// Passing and total counts: tests, then checks, list objects and list users.
pub fn summary_counts(results: &[TestResult]) -> [(usize, usize); 4] {
    let mut counts = [(0, 0); 4];
    for result in results {
        counts[0].0 += usize::from(result.passed());
        counts[0].1 += 1;
        for (kind, outcomes) in result.outcomes.iter().enumerate() {
            counts[kind + 1].0 += outcomes.iter().filter(|passed| **passed).count();
            counts[kind + 1].1 += outcomes.len();
        }
    }
    counts
}

/// The human report `fga model test` prints: failing tests, then the summary.
pub fn summary_text(results: &[TestResult]) -> String {
    let labels = ["Checks", "ListObjects", "ListUsers"];
    let mut text = String::new();
    let mut any_failed = false;
    for result in results.iter().filter(|r| !r.passed()) {
        any_failed = true;
        let parts: Vec<String> = result
            .outcomes
            .iter()
            .zip(labels)
            .filter(|(outcomes, _)| !outcomes.is_empty())
            .map(|(outcomes, label)| {
                let passed = outcomes.iter().filter(|passed| **passed).count();
                format!("{label} ({passed}/{} passing)", outcomes.len())
            })
            .collect();
        text.push_str(&format!("(FAILING) {}: {}\n", result.name, parts.join(" | ")));
        for assertion in result.assertions.iter().filter(|a| !a.passed) {
            text.push_str(&assertion.failure_line());
            text.push('\n');
        }
    }
    if any_failed {
        text.push_str("---\n");
    }
    let counts = summary_counts(results);
    text.push_str("# Test Summary #\n");
    text.push_str(&format!("Tests {}/{} passing\n", counts[0].0, counts[0].1));
    for (label, (passed, total)) in labels.iter().zip(&counts[1..]) {
        if *total > 0 {
            text.push_str(&format!("{label} {passed}/{total} passing\n"));
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    const MODEL: &str = "model\n  schema 1.1\ntype user\ntype document\n  relations\n    define viewer: [user]\n";

    fn file(tests: usize, users: usize) -> TestFile {
        let users: Vec<String> = (0..users).map(|i| format!("user:u{i}")).collect();
        let test = format!(
            "  - name: t\n    check:\n      - users: [{}]\n        object: document:1\n        assertions:\n          viewer: false\n",
            users.join(", ")
        );
        let tuples = "tuples:\n  - {user: user:a, relation: viewer, object: document:1}\n";
        parse(&format!("{tuples}tests:\n{}", test.repeat(tests))).unwrap()
    }

    fn bounds(time: Duration) -> RunBounds {
        RunBounds { max_tests: 3, max_assertions: 10, max_tuples: 3, time }
    }

    fn run_with(file: &TestFile, bounds: &RunBounds) -> Result<Vec<TestResult>, RunLimitError> {
        let model = Model::parse_dsl(MODEL).unwrap();
        run_bounded(&model, file.tuples.as_deref().unwrap_or_default(), &file.tests, bounds)
    }

    /// A console run was unbounded for whoever may read a store (review of issue 30): a file
    /// over a bound is refused before it runs, naming what it counted.
    #[test]
    fn a_bounded_run_refuses_files_over_its_bounds() {
        let roomy = bounds(Duration::from_secs(60));
        assert_eq!(run_with(&file(3, 3), &roomy).unwrap().len(), 3);
        for (file, what, found) in [(file(4, 1), "tests", 4), (file(2, 6), "assertions", 12)] {
            match run_with(&file, &roomy) {
                Err(RunLimitError::TooLarge { what: counted, found: count, .. }) => {
                    assert_eq!((counted, count), (what, found))
                }
                other => panic!("{what}: {other:?}"),
            }
        }
        let tuples = RunBounds { max_tuples: 2, ..roomy };
        assert!(matches!(
            run_with(&file(3, 1), &tuples),
            Err(RunLimitError::TooLarge { what: "tuples", found: 3, .. })
        ));
    }

    /// ... and a run past its time stops with `Deadline`, never with results cut short.
    #[test]
    fn a_bounded_run_stops_at_its_deadline() {
        assert!(matches!(run_with(&file(3, 3), &bounds(Duration::ZERO)), Err(RunLimitError::Deadline(_))));
    }
}
