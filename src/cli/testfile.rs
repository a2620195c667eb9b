//! `writ model test`'s files: reads a `.fga.yaml` test file and everything it names (its
//! `model_file` (DSL, JSON or a modular model's `fga.mod`), `tuple_file` and `tuple_files` (YAML,
//! JSON or CSV), all relative to the test file's folder) and expands `--tests` globs; the format,
//! the runs and the summary live in [`crate::api::model_test`], which the console shares.
//!
//! **Invariant:** what `writ model test` prints is what OpenFGA's `fga model test` prints: the same
//! JSON results, summary text and exit status; errors name the file they are about.
//! Must not import `store`, `index` or `eval` (it drives the `Engine` facade only, through
//! `api::model_test`); of the rest of `api` it uses only OpenFGA's error codes (`api::codes`).

pub use crate::api::model_test::{summary_counts, summary_text, FileCondition, FileTuple, TestFile, TestResult};

use crate::api::model_test::{self, ModelTestError};
use crate::engine::EngineError;
use crate::model::{combine_modules, parse_fga_mod, JsonModel, ModFileError, Model, ModularModel, ModuleFile};
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

fn read_text(path: &Path) -> Result<String, TestFileError> {
    std::fs::read_to_string(path)
        .map_err(|e| TestFileError::Read { path: path.display().to_string(), message: e.to_string() })
}

/// Names the file a runner's error is about.
fn at(path: &Path, error: ModelTestError) -> TestFileError {
    let path = path.display().to_string();
    match error {
        ModelTestError::Parse(message) => TestFileError::Parse { path, message },
        ModelTestError::Setup { code, message } => TestFileError::Setup { path, code, message },
    }
}

/// Reads and parses a test file.
pub fn load(path: &Path) -> Result<TestFile, TestFileError> {
    let text = read_text(path)?;
    model_test::parse(&text).map_err(|e| at(path, e))
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

/// Runs every test of a file.
pub fn run_file(path: &Path) -> Result<Vec<TestResult>, TestFileError> {
    let file = load(path)?;
    let model = load_model(&file, path)?;
    let shared = file_tuples(&file, path)?;
    model_test::run(&model, &shared, &file.tests).map_err(|e| at(path, e))
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
