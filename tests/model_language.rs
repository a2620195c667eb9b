//! The model front end against OpenFGA's language test data (DSL ↔ JSON transformer pairs, the
//! syntax/semantic/JSON validation case files, modular models and `fga.mod` manifests, object-id
//! rules, store files) and writ's golden fixtures in `fixtures/model/`.
//!
//! Every case runs under `catch_unwind`; a panic, a model that should parse but does not, or one
//! that should fail but parses, fails the test. Exact message/position matches are counted and
//! printed per file. Set `WRIT_BLESS=1` to rewrite the golden fixtures' expected outputs.

use serde::Deserialize;
use std::fs;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use writ::model::{
    combine_modules, parse_fga_mod, JsonModel, Model, ModularModel, ModuleFile, SchemaError, SchemaErrorKind,
};

fn language_dir() -> PathBuf {
    crate::skipped::shared_data("openfga/language")
}

#[derive(Debug, Deserialize)]
struct Range {
    start: u32,
    end: u32,
}

#[derive(Debug, Default, Deserialize)]
struct Meta {
    #[serde(rename = "errorType")]
    error_type: Option<String>,
}

#[derive(Debug, Deserialize)]
struct ExpectedError {
    msg: String,
    line: Option<Range>,
    column: Option<Range>,
    #[serde(default)]
    metadata: Option<Meta>,
}

#[derive(Debug, Deserialize)]
struct Case {
    name: String,
    dsl: Option<String>,
    json: Option<String>,
    #[serde(default)]
    skip: bool,
    #[serde(default)]
    expected_errors: Option<Vec<ExpectedError>>,
    valid: Option<bool>,
    error_message: Option<String>,
}

fn load_cases(path: &Path) -> Vec<Case> {
    let text = fs::read_to_string(path).unwrap();
    serde_norway::from_str(&text).unwrap()
}

/// Tallies for one case file.
#[derive(Default)]
struct Tally {
    passed: usize,
    failed: Vec<String>,
    skipped: usize,
    exact_cases: usize,
    error_cases: usize,
    exact_errors: usize,
    expected_errors: usize,
}

impl Tally {
    fn report(&self, file: &str) {
        println!(
            "{file}: {} passed, {} failed, {} skipped; exact errors {}/{} (cases fully exact {}/{})",
            self.passed,
            self.failed.len(),
            self.skipped,
            self.exact_errors,
            self.expected_errors,
            self.exact_cases,
            self.error_cases
        );
        for f in &self.failed {
            println!("  FAILED {f}");
        }
    }
}

fn error_matches(e: &ExpectedError, got: &SchemaError) -> bool {
    let msg_ok = e.msg.trim() == got.message;
    let span_ok = match (&e.line, &e.column, got.span) {
        (Some(l), Some(c), Some(s)) => {
            l.start == s.line_start && l.end == s.line_end && c.start == s.column_start && c.end == s.column_end
        }
        (None, None, _) => true,
        _ => false,
    };
    let type_ok = match (e.metadata.as_ref().and_then(|m| m.error_type.as_deref()), &got.kind) {
        (Some(t), SchemaErrorKind::Semantic(g)) => t == g,
        (Some(_), SchemaErrorKind::Syntax) => false,
        (None, _) => true,
    };
    msg_ok && span_ok && type_ok
}

fn describe(errors: &[SchemaError]) -> String {
    let parts: Vec<String> = errors
        .iter()
        .map(|e| match e.span {
            Some(s) => format!("{}:{}-{}:{} {}", s.line_start, s.column_start, s.line_end, s.column_end, e.message),
            None => e.message.clone(),
        })
        .collect();
    parts.join(" | ")
}

/// Runs one validation case: `run` parses the input and validates it.
fn validation_case(t: &mut Tally, case: &Case, run: impl FnOnce() -> Result<Model, Vec<SchemaError>>) {
    if case.skip {
        t.skipped += 1;
        return;
    }
    let expected = case.expected_errors.as_deref().unwrap_or_default();
    let Ok(result) = catch_unwind(AssertUnwindSafe(run)) else {
        t.failed.push(format!("{}: panicked", case.name));
        return;
    };
    match (&result, expected.is_empty()) {
        (Ok(_), true) => t.passed += 1,
        (Err(errs), true) => t.failed.push(format!("{}: unexpected errors: {}", case.name, describe(errs))),
        (Ok(_), false) => t.failed.push(format!("{}: parsed but {} errors expected", case.name, expected.len())),
        (Err(errs), false) => {
            t.passed += 1;
            t.error_cases += 1;
            t.expected_errors += expected.len();
            let exact = expected.iter().zip(errs).filter(|(e, g)| error_matches(e, g)).count();
            t.exact_errors += exact;
            if exact == expected.len() && errs.len() == expected.len() {
                t.exact_cases += 1;
            } else if std::env::var_os("WRIT_VERBOSE").is_some() {
                let want: Vec<String> = expected
                    .iter()
                    .map(|e| {
                        let (l, c) = (e.line.as_ref(), e.column.as_ref());
                        format!(
                            "{}:{}-{}:{} {}",
                            l.map_or(0, |l| l.start),
                            c.map_or(0, |c| c.start),
                            l.map_or(0, |l| l.end),
                            c.map_or(0, |c| c.end),
                            e.msg.trim()
                        )
                    })
                    .collect();
                println!("  inexact {}:\n    want {}\n    got  {}", case.name, want.join(" | "), describe(errs));
            }
        }
    }
}

fn run_dsl_cases(dir: &Path, file: &str) -> Tally {
    let mut t = Tally::default();
    for case in load_cases(&dir.join(file)) {
        let dsl = case.dsl.clone().unwrap_or_default();
        // The language data lists warnings (`writ validate` prints them) among its diagnostics.
        validation_case(&mut t, &case, || {
            let (model, warnings) = Model::parse_dsl_with_warnings(&dsl)?;
            if warnings.is_empty() {
                Ok(model)
            } else {
                Err(warnings)
            }
        });
    }
    t.report(file);
    t
}

fn parse_json_model(text: &str) -> Result<JsonModel, Vec<SchemaError>> {
    serde_json::from_str::<JsonModel>(text).map_err(|e| {
        vec![SchemaError { kind: SchemaErrorKind::Syntax, message: e.to_string(), span: None, symbol: None }]
    })
}

#[test]
#[cfg_attr(
    writ_no_shared = "openfga/language",
    ignore = "shared conformance/openfga/language not found beside the checkout"
)]
fn dsl_syntax_validation_cases() {
    let dir = language_dir();
    let t = run_dsl_cases(&dir, "dsl-syntax-validation-cases.yaml");
    assert!(t.failed.is_empty(), "{} syntax cases failed", t.failed.len());
}

#[test]
#[cfg_attr(
    writ_no_shared = "openfga/language",
    ignore = "shared conformance/openfga/language not found beside the checkout"
)]
fn dsl_semantic_validation_cases() {
    let dir = language_dir();
    let t = run_dsl_cases(&dir, "dsl-semantic-validation-cases.yaml");
    assert!(t.failed.is_empty(), "{} semantic cases failed", t.failed.len());
}

#[test]
#[cfg_attr(
    writ_no_shared = "openfga/language",
    ignore = "shared conformance/openfga/language not found beside the checkout"
)]
fn json_validation_cases() {
    let dir = language_dir();
    let file = "json-validation-cases.yaml";
    let mut t = Tally::default();
    for case in load_cases(&dir.join(file)) {
        let json = case.json.clone().unwrap_or_default();
        validation_case(&mut t, &case, || Ok(Model::from_json(&parse_json_model(&json)?)?));
    }
    t.report(file);
    assert!(t.failed.is_empty(), "{} JSON validation cases failed", t.failed.len());
}

#[test]
#[cfg_attr(
    writ_no_shared = "openfga/language",
    ignore = "shared conformance/openfga/language not found beside the checkout"
)]
fn json_syntax_transformer_cases() {
    let dir = language_dir();
    let file = "json-syntax-transformer-validation-cases.yaml";
    let mut t = Tally::default();
    for case in load_cases(&dir.join(file)) {
        let json = case.json.clone().unwrap_or_default();
        let run = || -> Result<String, String> {
            let parsed = parse_json_model(&json).map_err(|e| describe(&e))?;
            let model = Model::from_json_unchecked(&parsed).map_err(|e| describe(&e))?;
            model.try_to_dsl().map_err(|e| e.message)
        };
        let Ok(result) = catch_unwind(AssertUnwindSafe(run)) else {
            t.failed.push(format!("{}: panicked", case.name));
            continue;
        };
        let valid = case.valid.unwrap_or(case.error_message.is_none());
        match (result, valid) {
            (Ok(_), true) => t.passed += 1,
            (Err(msg), false) => {
                t.passed += 1;
                t.error_cases += 1;
                t.expected_errors += 1;
                if case.error_message.as_deref().map(str::trim) == Some(msg.as_str()) {
                    t.exact_errors += 1;
                    t.exact_cases += 1;
                }
            }
            (Ok(_), false) => t.failed.push(format!("{}: printed but should fail", case.name)),
            (Err(msg), true) => t.failed.push(format!("{}: {msg}", case.name)),
        }
    }
    t.report(file);
    assert!(t.failed.is_empty(), "{} JSON→DSL cases failed", t.failed.len());
}

/// One transformer directory: DSL → JSON, JSON → DSL, and DSL → Model → DSL.
fn transformer_pair(dir: &Path) -> Result<(), String> {
    let fga = fs::read_to_string(dir.join("authorization-model.fga")).map_err(|e| e.to_string())?;
    let json_text = fs::read_to_string(dir.join("authorization-model.json")).map_err(|e| e.to_string())?;
    let from_dsl = Model::parse_dsl_unchecked(&fga).map_err(|e| format!("DSL parse: {}", describe(&e)))?;
    let want: serde_json::Value = serde_json::from_str(&json_text).map_err(|e| e.to_string())?;
    let got = serde_json::to_value(from_dsl.to_json()).map_err(|e| e.to_string())?;
    if got != want {
        return Err(format!("DSL → JSON differs:\n{}", serde_json::to_string_pretty(&got).unwrap_or_default()));
    }
    let printed = from_dsl.try_to_dsl().map_err(|e| e.message)?;
    if printed != fga {
        return Err(format!("DSL → Model → DSL differs:\n{printed}"));
    }
    let json: JsonModel = serde_json::from_str(&json_text).map_err(|e| format!("JSON parse: {e}"))?;
    let from_json = Model::from_json_unchecked(&json).map_err(|e| format!("JSON model: {}", describe(&e)))?;
    let printed = from_json.try_to_dsl().map_err(|e| e.message)?;
    if printed != fga {
        return Err(format!("JSON → DSL differs:\n{printed}"));
    }
    Ok(())
}

#[test]
#[cfg_attr(
    writ_no_shared = "openfga/language",
    ignore = "shared conformance/openfga/language not found beside the checkout"
)]
fn transformer_pairs() {
    let dir = language_dir();
    let mut dirs: Vec<PathBuf> = fs::read_dir(dir.join("transformer")).unwrap().map(|e| e.unwrap().path()).collect();
    dirs.sort();
    let mut failed = Vec::new();
    for d in &dirs {
        match catch_unwind(|| transformer_pair(d)) {
            Ok(Ok(())) => {}
            Ok(Err(e)) => failed.push(format!("{}: {e}", d.display())),
            Err(_) => failed.push(format!("{}: panicked", d.display())),
        }
    }
    println!("transformer: {} passed, {} failed", dirs.len() - failed.len(), failed.len());
    for f in &failed {
        println!("  FAILED {f}");
    }
    assert!(failed.is_empty(), "{} transformer pairs failed", failed.len());
}

// ---- modular models --------------------------------------------------------------------------

#[derive(Debug, Deserialize)]
struct ModuleExpectedError {
    msg: String,
    file: Option<String>,
    line: Option<Range>,
    column: Option<Range>,
}

fn read_module_files(dir: &Path) -> Vec<ModuleFile> {
    let mut paths: Vec<PathBuf> = fs::read_dir(dir.join("module"))
        .map(|rd| rd.filter_map(|e| e.ok()).map(|e| e.path()).collect())
        .unwrap_or_default();
    paths.sort();
    paths
        .iter()
        .map(|p| ModuleFile {
            name: p.file_name().unwrap().to_string_lossy().into_owned(),
            contents: fs::read_to_string(p).unwrap(),
        })
        .collect()
}

/// One `transformer-module/` case: the module files combine to `authorization-model.json` and
/// print as `combined.fga` / `combined-sourceinfo.fga`, or fail with exactly `expected_errors.json`;
/// the JSON alone reads back with the modules of `expected_modules.json` and prints the same DSL.
fn module_case(dir: &Path) -> Result<(), String> {
    let files = read_module_files(dir);
    let read = |name: &str| fs::read_to_string(dir.join(name)).ok();
    if let Some(errors_text) = read("expected_errors.json") {
        let expected: Vec<ModuleExpectedError> = serde_json::from_str(&errors_text).map_err(|e| e.to_string())?;
        let errors = match combine_modules(&files, "1.2") {
            Ok(_) => return Err(format!("combined but {} errors expected", expected.len())),
            Err(errors) => errors,
        };
        let got: Vec<String> = errors
            .iter()
            .map(|e| {
                let s = e.error.span.unwrap_or_default();
                format!(
                    "{} {}:{}-{}:{} {}",
                    e.file.as_deref().unwrap_or("-"),
                    s.line_start,
                    s.column_start,
                    s.line_end,
                    s.column_end,
                    e.error.message
                )
            })
            .collect();
        let want: Vec<String> = expected
            .iter()
            .map(|e| {
                let (l, c) = (e.line.as_ref(), e.column.as_ref());
                format!(
                    "{} {}:{}-{}:{} {}",
                    e.file.as_deref().unwrap_or("-"),
                    l.map_or(0, |l| l.start),
                    c.map_or(0, |c| c.start),
                    l.map_or(0, |l| l.end),
                    c.map_or(0, |c| c.end),
                    e.msg.trim()
                )
            })
            .collect();
        if got != want {
            return Err(format!(
                "errors differ:\n    want {}\n    got  {}",
                want.join("\n         "),
                got.join("\n         ")
            ));
        }
        return Ok(());
    }
    let json_text = read("authorization-model.json").ok_or("no authorization-model.json")?;
    let want_json: serde_json::Value = serde_json::from_str(&json_text).map_err(|e| e.to_string())?;
    let from_json: JsonModel = serde_json::from_str(&json_text).map_err(|e| e.to_string())?;
    let from_json =
        ModularModel::from_json_unchecked(&from_json).map_err(|e| format!("JSON model: {}", describe(&e)))?;
    let mut combined = vec![("JSON", from_json)];
    if !files.is_empty() {
        let model = combine_modules(&files, "1.2")
            .map_err(|errors| errors.iter().map(|e| format!("{e}")).collect::<Vec<_>>().join(" | "))?;
        let got = serde_json::to_value(model.to_json()).map_err(|e| e.to_string())?;
        if got != want_json {
            return Err(format!("modules → JSON differs:\n{}", serde_json::to_string_pretty(&got).unwrap_or_default()));
        }
        combined.push(("modules", model));
    }
    for (from, model) in &combined {
        if let Some(want) = read("expected_modules.json") {
            let want: Vec<String> = serde_json::from_str(&want).map_err(|e| e.to_string())?;
            if model.modules() != want {
                return Err(format!("{from}: modules {:?}, want {want:?}", model.modules()));
            }
        }
        for (name, annotate) in [("combined.fga", false), ("combined-sourceinfo.fga", true)] {
            let Some(want) = read(name) else { continue };
            let got = model.to_dsl(annotate).map_err(|e| e.message)?;
            if got.trim_end() != want.trim_end() {
                return Err(format!("{from} → {name} differs:\n{got}"));
            }
        }
    }
    Ok(())
}

#[test]
#[cfg_attr(
    writ_no_shared = "openfga/language",
    ignore = "shared conformance/openfga/language not found beside the checkout"
)]
fn transformer_module_cases() {
    let dir = language_dir();
    let mut dirs: Vec<PathBuf> =
        fs::read_dir(dir.join("transformer-module")).unwrap().map(|e| e.unwrap().path()).collect();
    dirs.sort();
    let mut failed = Vec::new();
    for d in &dirs {
        match catch_unwind(|| module_case(d)) {
            Ok(Ok(())) => println!("  transformer-module/{}: ok", d.file_name().unwrap().to_string_lossy()),
            Ok(Err(e)) => failed.push(format!("{}: {e}", d.display())),
            Err(_) => failed.push(format!("{}: panicked", d.display())),
        }
    }
    println!("transformer-module: {} passed, {} failed", dirs.len() - failed.len(), failed.len());
    for f in &failed {
        println!("  FAILED {f}");
    }
    assert!(!dirs.is_empty(), "transformer-module/ holds no cases");
    assert!(failed.is_empty(), "{} modular model cases failed", failed.len());
}

#[derive(Debug, Deserialize)]
struct ModCase {
    name: String,
    #[serde(rename = "modFile")]
    mod_file: String,
    json: Option<String>,
    #[serde(default)]
    expected_errors: Vec<ModuleExpectedError>,
}

fn fga_mod_case(case: &ModCase) -> Result<(), String> {
    match (parse_fga_mod(&case.mod_file), case.json.as_deref()) {
        (Ok(manifest), Some(json)) => {
            let want: serde_json::Value = serde_json::from_str(json).map_err(|e| e.to_string())?;
            let got = serde_json::to_value(&manifest).map_err(|e| e.to_string())?;
            if got != want {
                return Err(format!("JSON differs: {got}"));
            }
            Ok(())
        }
        (Ok(_), None) => Err(format!("parsed but {} errors expected", case.expected_errors.len())),
        (Err(errors), _) => {
            let got: Vec<String> = errors
                .iter()
                .map(|e| {
                    let s = e.span;
                    format!("{}:{}-{}:{} {}", s.line_start, s.column_start, s.line_end, s.column_end, e.message)
                })
                .collect();
            let want: Vec<String> = case
                .expected_errors
                .iter()
                .map(|e| {
                    let (l, c) = (e.line.as_ref(), e.column.as_ref());
                    format!(
                        "{}:{}-{}:{} {}",
                        l.map_or(0, |l| l.start),
                        c.map_or(0, |c| c.start),
                        l.map_or(0, |l| l.end),
                        c.map_or(0, |c| c.end),
                        e.msg.trim()
                    )
                })
                .collect();
            if got == want {
                Ok(())
            } else {
                Err(format!("errors differ:\n    want {}\n    got  {}", want.join(" | "), got.join(" | ")))
            }
        }
    }
}

#[test]
#[cfg_attr(
    writ_no_shared = "openfga/language",
    ignore = "shared conformance/openfga/language not found beside the checkout"
)]
fn fga_mod_transformer_cases() {
    let dir = language_dir();
    let file = "fga-mod-transformer-cases.yaml";
    let cases: Vec<ModCase> = serde_norway::from_str(&fs::read_to_string(dir.join(file)).unwrap()).unwrap();
    let mut t = Tally::default();
    for case in &cases {
        match catch_unwind(|| fga_mod_case(case)) {
            Ok(Ok(())) => t.passed += 1,
            Ok(Err(e)) => t.failed.push(format!("{}: {e}", case.name)),
            Err(_) => t.failed.push(format!("{}: panicked", case.name)),
        }
    }
    t.report(file);
    assert!(!cases.is_empty(), "{file} holds no cases");
    assert!(t.failed.is_empty(), "{} fga.mod cases failed", t.failed.len());
}

#[test]
fn fga_mod_never_panics_on_truncated_input() {
    let text = "schema: '1.2' # c\ncontents:\n  - core.fga\n  - \"a%2fb.fga\"\n  - [x, 'y']\nother: {a: b}\n";
    let chars: Vec<char> = text.chars().collect();
    for n in 0..chars.len() {
        let prefix: String = chars[..n].iter().collect();
        assert!(catch_unwind(|| parse_fga_mod(&prefix)).is_ok(), "panicked on prefix {n}: {prefix:?}");
    }
}

#[test]
fn modular_fixture_runs_through_model_test() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/modular");
    let results = writ::cli::testfile::run_file(&dir.join("store.fga.yaml")).unwrap();
    assert!(!results.is_empty());
    assert!(results.iter().all(|r| r.passed()), "{:?}", results.iter().map(|r| r.to_json()).collect::<Vec<_>>());
    let modular = writ::cli::testfile::load_fga_mod(&dir.join("fga.mod")).unwrap();
    assert_eq!(modular.modules(), ["core", "docs"]);
    let dsl = modular.to_dsl(true).unwrap();
    assert!(
        dsl.contains("define can_create_folder: admin # extended by: module: docs, file: docs/folders.fga"),
        "{dsl}"
    );
    let reparsed = Model::parse_dsl(&modular.to_dsl(false).unwrap()).unwrap();
    assert_eq!(reparsed.types.len(), modular.model.types.len());
}

#[test]
fn modular_fixture_errors_name_their_files() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/modular-invalid");
    let errors = writ::cli::testfile::load_fga_mod(&dir.join("fga.mod")).unwrap_err();
    assert_eq!(
        errors,
        [
            "extra.fga:3:6: duplicate type definition user",
            "extra.fga:5:13: extended type folder does not exist",
            "extra.fga:11:12: relation viewer already exists on type document",
            "extra.fga:12:21: `team` is not a valid type.",
        ]
    );
}

// ---- object ids -------------------------------------------------------------------------------

#[derive(Debug, Deserialize)]
struct ObjectIdCase {
    name: String,
    object_id: String,
    valid: bool,
}

#[test]
#[cfg_attr(
    writ_no_shared = "openfga/language",
    ignore = "shared conformance/openfga/language not found beside the checkout"
)]
fn object_id_validation_cases() {
    let dir = language_dir();
    let file = "object-id-validation-cases.yaml";
    let cases: Vec<ObjectIdCase> = serde_norway::from_str(&fs::read_to_string(dir.join(file)).unwrap()).unwrap();
    let mut t = Tally::default();
    let scratch = crate::support::TempDir::created("object-ids");
    for (i, case) in cases.iter().enumerate() {
        let direct = writ::tuple::valid_object_id(&case.object_id);
        // A model-test file holding a tuple with that id loads only when the id is valid.
        let path = scratch.path().join(format!("case{i}.fga.yaml"));
        let file = serde_json::json!({
            "model": "model\n  schema 1.1\ntype user\ntype document\n  relations\n    define viewer: [user]\n",
            "tuples": [{"user": "user:anne", "relation": "viewer", "object": format!("document:{}", case.object_id)}],
            "tests": [{"name": "t", "check": [{"user": "user:anne", "object": "document:x", "assertions": {"viewer": false}}]}],
        });
        fs::write(&path, file.to_string()).unwrap();
        let parsed = writ::cli::testfile::run_file(&path).is_ok();
        if direct == case.valid && parsed == case.valid {
            t.passed += 1;
        } else {
            t.failed.push(format!(
                "{}: {:?} valid={direct} parses={parsed}, want {}",
                case.name, case.object_id, case.valid
            ));
        }
    }
    t.report(file);
    assert!(!cases.is_empty(), "{file} holds no cases");
    assert!(t.failed.is_empty(), "{} object-id cases failed", t.failed.len());
}

// ---- store files ------------------------------------------------------------------------------

#[test]
#[cfg_attr(
    writ_no_shared = "openfga/language",
    ignore = "shared conformance/openfga/language not found beside the checkout"
)]
fn store_files() {
    let dir = language_dir();
    let mut dirs: Vec<PathBuf> = fs::read_dir(dir.join("stores")).unwrap().map(|e| e.unwrap().path()).collect();
    dirs.sort();
    let mut failed = Vec::new();
    for d in &dirs {
        let path = d.join("store.fga.yaml");
        let expected = fs::read_to_string(d.join("expected_errors.json")).ok();
        let result = catch_unwind(|| writ::cli::testfile::run_file(&path));
        let outcome = match (result, expected) {
            (Err(_), _) => Err("panicked".to_string()),
            (Ok(Ok(results)), None) if !results.is_empty() && results.iter().all(|r| r.passed()) => Ok(()),
            (Ok(Ok(_)), None) => Err("loaded, but not every test passed".to_string()),
            (Ok(Err(e)), None) => Err(format!("should load: {e}")),
            (Ok(Ok(_)), Some(_)) => Err("loaded but should fail".to_string()),
            (Ok(Err(e)), Some(expected)) => {
                let expected: serde_json::Value = serde_json::from_str(&expected).unwrap();
                let fields: Vec<String> = expected
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter_map(|e| e.pointer("/params/additionalProperty").and_then(|v| v.as_str()))
                    .map(str::to_string)
                    .collect();
                let message = e.to_string();
                let named = if fields.is_empty() {
                    message.contains("model")
                } else {
                    fields.iter().any(|f| message.contains(f.as_str()))
                };
                if named {
                    Ok(())
                } else {
                    Err(format!("failed without naming {fields:?}: {message}"))
                }
            }
        };
        match outcome {
            Ok(()) => println!("  stores/{}: ok", d.file_name().unwrap().to_string_lossy()),
            Err(e) => failed.push(format!("{}: {e}", d.display())),
        }
    }
    println!("stores: {} passed, {} failed", dirs.len() - failed.len(), failed.len());
    for f in &failed {
        println!("  FAILED {f}");
    }
    assert!(!dirs.is_empty(), "stores/ holds no cases");
    assert!(failed.is_empty(), "{} store files failed", failed.len());
}

// ---- golden fixtures --------------------------------------------------------------------------

fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/model")
}

fn check_golden(path: &Path, got: &str) {
    if std::env::var_os("WRIT_BLESS").is_some() {
        fs::write(path, got).unwrap();
        return;
    }
    let want = fs::read_to_string(path).unwrap_or_default();
    assert_eq!(got, want, "golden output {} differs", path.display());
}

fn fixture_inputs(sub: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(fixtures_dir().join(sub))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "fga"))
        .collect();
    files.sort();
    files
}

#[test]
fn golden_valid_models() {
    for fga in fixture_inputs("valid") {
        let text = fs::read_to_string(&fga).unwrap();
        let model = Model::parse_dsl(&text).unwrap_or_else(|e| panic!("{}: {}", fga.display(), describe(&e)));
        let json = serde_json::to_string_pretty(&model.to_json()).unwrap() + "\n";
        check_golden(&fga.with_extension("json"), &json);
        check_golden(&fga.with_extension("printed.fga.txt"), &model.to_dsl());
        let back = Model::from_json(&serde_json::from_str(&json).unwrap()).unwrap();
        assert_eq!(back.to_dsl(), model.to_dsl(), "{}: JSON round trip changed the model", fga.display());
        let reparsed = Model::parse_dsl(&model.to_dsl()).unwrap();
        assert_eq!(reparsed.to_json(), model.to_json(), "{}: DSL round trip changed the model", fga.display());
    }
}

#[test]
fn golden_invalid_models() {
    for fga in fixture_inputs("invalid") {
        let text = fs::read_to_string(&fga).unwrap();
        let errors = Model::parse_dsl(&text).err().unwrap_or_else(|| panic!("{} should not parse", fga.display()));
        let lines: Vec<String> = errors
            .iter()
            .map(|e| {
                let kind = match &e.kind {
                    SchemaErrorKind::Syntax => "syntax".to_string(),
                    SchemaErrorKind::Semantic(t) => t.clone(),
                };
                let s = e.span.unwrap_or_default();
                format!("{}:{}-{}:{} {kind}: {}\n", s.line_start, s.column_start, s.line_end, s.column_end, e.message)
            })
            .collect();
        check_golden(&fga.with_extension("errors.txt"), &lines.concat());
    }
}

#[test]
fn never_panics_on_truncated_input() {
    let text = "model\n  schema 1.1\ntype user\ntype doc\n  relations\n    define viewer: [user, doc#viewer with c] or (editor and owner from parent) but not x\ncondition c(a: list<int>) {\n  a[0] < 1\n}\n";
    let chars: Vec<char> = text.chars().collect();
    for n in 0..chars.len() {
        let prefix: String = chars[..n].iter().collect();
        let result = catch_unwind(|| Model::parse_dsl(&prefix));
        assert!(result.is_ok(), "panicked on prefix {n}: {prefix:?}");
    }
}
