//! OpenFGA model-test files (`.fga.yaml`): read one, run it on an in-memory engine, and report
//! as OpenFGA's `fga model test` does (the same JSON results, summary text and exit status).
//!
//! What it owns: the file format (`model` | `model_file` (DSL, JSON or `fga.mod`), `tuples` |
//! `tuple_file` | `tuple_files`, `tests` with `check`, `list_objects`, `list_users`, per-test
//! `tuples`, `context`).
//! Unknown fields anywhere OpenFGA's store-file schema forbids them are errors naming the field.
//! **Invariant:** every test runs on a fresh store holding the file's tuples plus the test's own;
//! an assertion passes only when the engine answered and the answer equals the expectation.
//! Must not import `store`, `index` or `eval` (it drives the `Engine` facade only); of `api` it
//! uses only OpenFGA's error codes (`api::codes`), which it reports as `fga model test` does.

use crate::engine::{
    CheckRequest, Engine, EngineError, ListObjectsRequest, ListUsersRequest, UserFilterSpec, WriteRequest,
};
use crate::model::{combine_modules, parse_fga_mod, JsonModel, ModFileError, Model, ModularModel, ModuleFile};
use crate::tuple::StoredTuple;
use crate::tuple::{Context, Tuple, TupleCondition};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Why a test file could not be run at all.
#[derive(Debug, thiserror::Error)]
pub enum TestFileError {
    /// The file could not be read.
    #[error("test file {path} does not exist: {message}")]
    Read {
        /// The path.
        path: String,
        /// The I/O error.
        message: String,
    },
    /// The file is not valid YAML of the expected shape.
    #[error("failed to parse {path}: {message}")]
    Parse {
        /// The path.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// The model or tuples were rejected.
    #[error("error running tests for {path} due to rpc error: code = Code({code}) desc = {message}")]
    Setup {
        /// The path.
        path: String,
        /// OpenFGA's error number.
        code: u32,
        /// What is wrong.
        message: String,
    },
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
#[serde(deny_unknown_fields)]
pub struct TestFile {
    /// Optional name.
    #[serde(default)]
    pub name: Option<String>,
    /// Inline DSL model.
    #[serde(default)]
    pub model: Option<String>,
    /// Path to a model file (DSL; JSON when it ends in `.json`; a modular model's `fga.mod`).
    #[serde(default)]
    pub model_file: Option<String>,
    /// Inline tuples.
    #[serde(default)]
    pub tuples: Option<Vec<FileTuple>>,
    /// A tuple file (YAML, JSON or CSV).
    #[serde(default)]
    pub tuple_file: Option<String>,
    /// Several tuple files.
    #[serde(default)]
    pub tuple_files: Option<Vec<String>>,
    /// The tests.
    #[serde(default)]
    pub tests: Vec<TestCase>,
}

/// One named test.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct TestCase {
    /// Name.
    #[serde(default)]
    pub name: String,
    /// Description.
    #[serde(default)]
    pub description: Option<String>,
    /// Extra tuples for this test only.
    #[serde(default)]
    pub tuples: Option<Vec<FileTuple>>,
    /// Check assertions.
    #[serde(default)]
    pub check: Option<Vec<CheckCase>>,
    /// List-objects assertions.
    #[serde(default)]
    pub list_objects: Option<Vec<ListObjectsCase>>,
    /// List-users assertions.
    #[serde(default)]
    pub list_users: Option<Vec<ListUsersCase>>,
}

/// `check:` entry: one user (or several) and one object (or several), relation → expected.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct CheckCase {
    /// The user.
    #[serde(default)]
    pub user: Option<String>,
    /// Several users.
    #[serde(default)]
    pub users: Option<Vec<String>>,
    /// The object.
    #[serde(default)]
    pub object: Option<String>,
    /// Several objects.
    #[serde(default)]
    pub objects: Option<Vec<String>>,
    /// Condition context.
    #[serde(default)]
    pub context: Option<Context>,
    /// relation → expected answer.
    #[serde(default)]
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
#[serde(deny_unknown_fields)]
pub struct ExpectedUsers {
    /// Expected users.
    #[serde(default)]
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
    /// One line per failed assertion, as the summary text shows it.
    pub failure_lines: Vec<String>,
    /// The test's tuples, shown as every request's `contextual_tuples` in the verbose JSON; kept
    /// once here and joined to the requests only by [`TestResult::to_json`].
    pub contextual_tuples: Vec<Value>,
}

impl TestResult {
    /// True when every assertion passed.
    pub fn passed(&self) -> bool {
        self.outcomes.iter().flatten().all(|passed| *passed)
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

fn read_text(path: &Path) -> Result<String, TestFileError> {
    std::fs::read_to_string(path)
        .map_err(|e| TestFileError::Read { path: path.display().to_string(), message: e.to_string() })
}

/// Reads and parses a test file.
pub fn load(path: &Path) -> Result<TestFile, TestFileError> {
    let text = read_text(path)?;
    serde_norway::from_str(&text)
        .map_err(|e| TestFileError::Parse { path: path.display().to_string(), message: e.to_string() })
}

fn setup_error(path: &Path, error: &EngineError) -> TestFileError {
    TestFileError::Setup { path: path.display().to_string(), code: error.openfga_code().0, message: error.to_string() }
}

/// Reads a modular model from its `fga.mod` manifest: the manifest's `contents` files, relative
/// to its folder, combined in the order listed. Errors name the file and line:column.
pub fn load_fga_mod(path: &Path) -> Result<ModularModel, Vec<String>> {
    let text = read_text(path).map_err(|e| vec![e.to_string()])?;
    let shown = path.display();
    let manifest = parse_fga_mod(&text).map_err(|errors| {
        let at =
            |e: &ModFileError| format!("{shown}:{}:{}: {}", e.span.line_start + 1, e.span.column_start + 1, e.message);
        errors.iter().map(at).collect::<Vec<_>>()
    })?;
    let base = path.parent().unwrap_or(Path::new("."));
    let mut files = Vec::new();
    for item in &manifest.contents.value {
        let contents = read_text(&base.join(&item.value)).map_err(|e| vec![e.to_string()])?;
        files.push(ModuleFile { name: item.value.clone(), contents });
    }
    combine_modules(&files, &manifest.schema.value).map_err(|errors| errors.iter().map(|e| format!("{}", e)).collect())
}

fn load_model(file: &TestFile, path: &Path) -> Result<Model, TestFileError> {
    let base = path.parent().unwrap_or(Path::new("."));
    let manifest = file.model_file.as_ref().filter(|m| file.model.is_none() && m.ends_with("fga.mod"));
    if let Some(manifest) = manifest {
        let modular = load_fga_mod(&base.join(manifest))
            .map_err(|errors| TestFileError::Parse { path: path.display().to_string(), message: errors.join("\n") })?;
        return Ok(modular.model);
    }
    let (text, is_json) = match (&file.model, &file.model_file) {
        (Some(text), _) => (text.clone(), false),
        (None, Some(model_file)) => (read_text(&base.join(model_file))?, model_file.ends_with(".json")),
        (None, None) => {
            return Err(TestFileError::Parse {
                path: path.display().to_string(),
                message: "the file has neither `model` nor `model_file`".into(),
            })
        }
    };
    let parsed = if is_json {
        let json: JsonModel = serde_json::from_str(&text)
            .map_err(|e| TestFileError::Parse { path: path.display().to_string(), message: e.to_string() })?;
        Model::from_json(&json)
    } else {
        Model::parse_dsl(&text)
    };
    parsed.map_err(|errors| setup_error(path, &EngineError::Schema(errors.into_vec())))
}

fn load_tuple_file(path: &Path) -> Result<Vec<FileTuple>, TestFileError> {
    let text = read_text(path)?;
    let parse_error = |message: String| TestFileError::Parse { path: path.display().to_string(), message };
    let extension = path.extension().and_then(|e| e.to_str()).unwrap_or_default();
    match extension {
        "json" => serde_json::from_str(&text).map_err(|e| parse_error(e.to_string())),
        "csv" => parse_csv_tuples(&text).map_err(parse_error),
        _ => serde_norway::from_str(&text).map_err(|e| parse_error(e.to_string())),
    }
}

/// Reads OpenFGA's CSV tuple format (header `user_type,user_id,user_relation,relation,object_type,object_id[,condition_name,condition_context]`).
fn parse_csv_tuples(text: &str) -> Result<Vec<FileTuple>, String> {
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let header: Vec<&str> = lines.next().ok_or("empty CSV tuple file")?.split(',').map(str::trim).collect();
    let column = |name: &str| header.iter().position(|h| *h == name);
    let required = |name: &str| column(name).ok_or(format!("CSV header lacks `{name}`"));
    let (user_type, user_id, relation, object_type, object_id) = (
        required("user_type")?,
        required("user_id")?,
        required("relation")?,
        required("object_type")?,
        required("object_id")?,
    );
    let (user_relation, condition_name) = (column("user_relation"), column("condition_name"));
    let mut tuples = Vec::new();
    for line in lines {
        let fields: Vec<&str> = line.splitn(header.len(), ',').map(str::trim).collect();
        let field = |i: usize| fields.get(i).copied().unwrap_or_default();
        let mut user = format!("{}:{}", field(user_type), field(user_id));
        if let Some(r) = user_relation.map(field).filter(|r| !r.is_empty()) {
            user = format!("{user}#{r}");
        }
        let condition = condition_name.map(field).filter(|n| !n.is_empty()).map(|name| FileCondition {
            name: name.to_string(),
            context: column("condition_context")
                .map(field)
                .and_then(|c| serde_json::from_str(c.trim_matches('"').replace("\"\"", "\"").as_str()).ok()),
        });
        tuples.push(FileTuple {
            user,
            relation: field(relation).to_string(),
            object: format!("{}:{}", field(object_type), field(object_id)),
            condition,
        });
    }
    Ok(tuples)
}

fn file_tuples(file: &TestFile, path: &Path) -> Result<Vec<FileTuple>, TestFileError> {
    let base = path.parent().unwrap_or(Path::new("."));
    let mut tuples = file.tuples.clone().unwrap_or_default();
    for tuple_file in file.tuple_file.iter().chain(file.tuple_files.iter().flatten()) {
        tuples.extend(load_tuple_file(&base.join(tuple_file))?);
    }
    Ok(tuples)
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

/// Runs every test of a file.
pub fn run_file(path: &Path) -> Result<Vec<TestResult>, TestFileError> {
    let file = load(path)?;
    let model = load_model(&file, path)?;
    let shared = file_tuples(&file, path)?;
    let mut results = Vec::new();
    for test in &file.tests {
        let mut tuples = shared.clone();
        tuples.extend(test.tuples.clone().unwrap_or_default());
        results.push(run_test(&model, &tuples, test, path)?);
    }
    Ok(results)
}

fn prepare_store(model: &Model, tuples: &[FileTuple], path: &Path) -> Result<(Engine, String), TestFileError> {
    let engine = Engine::in_memory();
    let fail = |e: EngineError| setup_error(path, &e);
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

fn run_test(model: &Model, tuples: &[FileTuple], test: &TestCase, path: &Path) -> Result<TestResult, TestFileError> {
    let (engine, store_id) = prepare_store(model, tuples, path)?;
    let contextual: Vec<Value> = tuples.iter().map(|t| serde_json::to_value(t).unwrap_or(Value::Null)).collect();
    let mut result = TestResult {
        name: test.name.clone(),
        description: test.description.clone().unwrap_or_default(),
        check_results: Vec::new(),
        list_objects_results: Vec::new(),
        list_users_results: Vec::new(),
        outcomes: [Vec::new(), Vec::new(), Vec::new()],
        failure_lines: Vec::new(),
        contextual_tuples: contextual,
    };
    let runner = Runner { engine: &engine, store_id: &store_id };
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
    /// A request as the verbose JSON shows it, less its `contextual_tuples` (added by
    /// [`TestResult::to_json`], so a file of many tuples and checks holds its tuples once).
    fn request_base(&self, mut request: Value, context: &Option<Context>) -> Value {
        if let (Some(c), Some(map)) = (context, request.as_object_mut()) {
            map.insert("context".into(), Value::Object(c.clone()));
        }
        request
    }

    fn run_check(&self, case: &CheckCase, result: &mut TestResult) {
        let users: Vec<&String> = case.user.iter().chain(case.users.iter().flatten()).collect();
        let objects: Vec<&String> = case.object.iter().chain(case.objects.iter().flatten()).collect();
        for user in &users {
            for object in &objects {
                for (relation, expected) in &case.assertions {
                    let request = CheckRequest {
                        object: object.to_string(),
                        relation: relation.clone(),
                        user: user.to_string(),
                        context: case.context.clone().unwrap_or_default(),
                        ..CheckRequest::default()
                    };
                    let answer =
                        self.engine.store(self.store_id).and_then(|store| store.check(&request)).map(|a| a.value);
                    let outcome = outcome_of(&answer, expected);
                    let (got, error) = match &answer {
                        Ok(allowed) => (json!(allowed), Value::Null),
                        Err(e) => (Value::Null, error_json(e)),
                    };
                    let shown = json!({"user": user, "relation": relation, "object": object});
                    result.check_results.push(json!({
                        "request": self.request_base(shown, &case.context),
                        "expected": expected, "got": got, "error": error,
                        "test_result": outcome,
                    }));
                    if !outcome {
                        result.failure_lines.push(format!(
                            "ⅹ Check(user={user},relation={relation},object={object}{}): expected={expected}, got={}{}",
                            context_text(&case.context),
                            answer.as_ref().map(ToString::to_string).unwrap_or_else(|_| "N/A".into()),
                            answer.as_ref().err().map(|e| format!(", error={}", error_text(e))).unwrap_or_default(),
                        ));
                    }
                    result.outcomes[0].push(outcome);
                }
            }
        }
    }

    fn run_list_objects(&self, case: &ListObjectsCase, result: &mut TestResult) {
        for (relation, expected) in &case.assertions {
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
            let answer =
                self.engine.store(self.store_id).and_then(|store| store.list_objects(&request)).map(|a| a.value);
            let outcome = outcome_of(&answer, &expected);
            let (got, error) = match &answer {
                Ok(objects) => (json!(objects), Value::Null),
                Err(e) => (Value::Null, error_json(e)),
            };
            let shown = json!({"user": case.user, "relation": relation, "type": case.object_type});
            result.list_objects_results.push(json!({
                "request": self.request_base(shown, &case.context),
                "expected": expected, "got": got, "error": error,
                "test_result": outcome,
            }));
            if !outcome {
                result.failure_lines.push(format!(
                    "ⅹ ListObjects(user={},relation={relation},type={}{}): expected=[{}], got={}{}",
                    case.user,
                    case.object_type,
                    context_text(&case.context),
                    expected.join(" "),
                    answer.as_ref().map(|o| format!("[{}]", o.join(" "))).unwrap_or_else(|_| "N/A".into()),
                    answer.as_ref().err().map(|e| format!(", error={}", error_text(e))).unwrap_or_default(),
                ));
            }
            result.outcomes[1].push(outcome);
        }
    }

    fn run_list_users(&self, case: &ListUsersCase, result: &mut TestResult) {
        let filters: Vec<UserFilterSpec> = case
            .user_filter
            .iter()
            .map(|f| UserFilterSpec { type_name: f.type_name.clone(), relation: f.relation.clone() })
            .collect();
        for (relation, expected) in &case.assertions {
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
            let answer = self.engine.store(self.store_id).and_then(|store| store.list_users(&request)).map(|a| {
                let mut users: Vec<String> = a.value.iter().map(ToString::to_string).collect();
                users.sort();
                users
            });
            let outcome = outcome_of(&answer, &expected);
            let (got, error) = match &answer {
                Ok(users) => (json!({ "users": users }), Value::Null),
                Err(e) => (Value::Null, error_json(e)),
            };
            let (object_type, object_id) = case.object.split_once(':').unwrap_or((&case.object, ""));
            let shown = json!({
                "object": {"id": object_id, "type": object_type},
                "relation": relation,
                "user_filters": case.user_filter,
            });
            result.list_users_results.push(json!({
                "request": self.request_base(shown, &case.context),
                "expected": {"users": expected}, "got": got, "error": error,
                "test_result": outcome,
            }));
            if !outcome {
                let filter_text: Vec<String> = case
                    .user_filter
                    .iter()
                    .map(|f| match &f.relation {
                        Some(r) => format!("{}#{r}", f.type_name),
                        None => f.type_name.clone(),
                    })
                    .collect();
                result.failure_lines.push(format!(
                    "ⅹ ListUsers(object={},relation={relation},user_filter={}{}): expected=[{}], got={}{}",
                    case.object,
                    filter_text.join(","),
                    context_text(&case.context),
                    expected.join(" "),
                    answer.as_ref().map(|u| format!("[{}]", u.join(" "))).unwrap_or_else(|_| "N/A".into()),
                    answer.as_ref().err().map(|e| format!(", error={}", error_text(e))).unwrap_or_default(),
                ));
            }
            result.outcomes[2].push(outcome);
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
        for line in &result.failure_lines {
            text.push_str(line);
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

/// Expands `--tests` (a path, or a glob with `*` in its last component) to files, sorted.
pub fn expand_test_paths(pattern: &str) -> Vec<PathBuf> {
    let path = Path::new(pattern);
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
    if !name.contains('*') {
        return vec![path.to_path_buf()];
    }
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let (prefix, suffix) = name.split_once('*').unwrap_or((name, ""));
    let suffix = suffix.replace('*', "");
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| {
                    let n = p.file_name().and_then(|n| n.to_str()).unwrap_or_default();
                    n.starts_with(prefix) && n.ends_with(&suffix) && n.len() >= prefix.len() + suffix.len()
                })
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}
