//! SpiceDB as a second front end: SpiceDB's integration validation files through Writ's runner
//! (`../shared/conformance/spicedb/integration/`, when present), every schema of SpiceDB's parser
//! tests (no panic; every expected-error case rejected), and Writ's own fixtures in `fixtures/spicedb/`.

use std::path::{Path, PathBuf};
use writ::cli::spicedb_validation::{self, run_file, Permissionship};
use writ::Model;

fn shared(dir: &str) -> PathBuf {
    crate::skipped::shared_data(&format!("spicedb/{dir}"))
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/spicedb").join(name)
}

/// Share of SpiceDB's integration assertions that must pass (the target).
const TARGET_PERCENT: f64 = 97.0;

#[test]
#[cfg_attr(
    writ_no_shared = "spicedb/integration",
    ignore = "shared conformance/spicedb/integration not found beside the checkout"
)]
fn spicedb_integration_validation_files() {
    let dir = shared("integration");
    let files = spicedb_validation::expand_paths(&dir).unwrap();
    assert!(!files.is_empty(), "no validation files in {}", dir.display());
    let reports: Vec<_> = files.iter().map(|file| run_file(file).unwrap()).collect();
    let text = spicedb_validation::report_text(&reports);
    println!("{text}");
    let passed: usize = reports.iter().map(|r| r.passed()).sum();
    let total: usize = reports.iter().map(|r| r.outcomes.len()).sum();
    assert!(total > 300, "only {total} assertions found: the runner is reading too little\n{text}");
    let percent = 100.0 * passed as f64 / total as f64;
    println!("SpiceDB integration: {passed}/{total} assertions pass ({percent:.1}%)");
    assert!(percent >= TARGET_PERCENT, "{percent:.1}% < {TARGET_PERCENT}%:\n{text}");
    // Explain (issue 28): every assertion is explained three-valued too. Its root agrees with the
    // check everywhere, and so with the assertion wherever the check passes; a conditional tree
    // names the missing caveat parameters.
    let outcomes = || reports.iter().flat_map(|r| r.outcomes.iter());
    let ran = outcomes().filter(|o| o.got.is_some()).count();
    let matching = outcomes().filter(|o| o.got.is_some() && o.explain_matches_check()).count();
    let agreeing = outcomes().filter(|o| o.passed() && o.explain_agrees()).count();
    let conditional = outcomes().filter(|o| o.passed() && o.expected == Permissionship::Conditional).count();
    println!(
        "SpiceDB integration explain: agrees with check on {matching}/{ran}, with the passing assertions on \
         {agreeing}/{passed} ({conditional} conditional)"
    );
    assert_eq!(matching, ran, "explain disagrees with check:\n{text}");
    assert_eq!(agreeing, passed, "explain disagrees with a passing assertion:\n{text}");
    assert!(conditional > 10, "only {conditional} conditional assertions: too few to test explain's caveats");
}

#[test]
#[cfg_attr(
    writ_no_shared = "spicedb/schemadsl-parser",
    ignore = "shared conformance/spicedb/schemadsl-parser not found beside the checkout"
)]
fn spicedb_parser_schemas_never_panic_and_errors_are_rejected() {
    let dir = shared("schemadsl-parser");
    let mut schemas: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "zed"))
        .collect();
    schemas.sort();
    assert!(!schemas.is_empty());
    let (mut accepted, mut rejected, mut missed, mut grammar_gaps) = (0, 0, Vec::new(), Vec::new());
    for schema in &schemas {
        let text = std::fs::read_to_string(schema).unwrap();
        let expected = std::fs::read_to_string(schema.with_extension("zed.expected")).unwrap_or_default();
        // Grammar only: many parser cases reference undefined names on purpose.
        let result = std::panic::catch_unwind(|| Model::parse_zed(&text));
        let name = schema.file_name().unwrap().to_string_lossy().to_string();
        let result = result.unwrap_or_else(|_| panic!("{name}: the parser panicked"));
        let syntax_error = match &result {
            Ok(_) => false,
            Err(errors) => errors.iter().any(|e| e.kind == writ::model::SchemaErrorKind::Syntax),
        };
        if result.is_ok() {
            accepted += 1;
        } else {
            rejected += 1;
        }
        if expected.contains("NodeTypeError") && !syntax_error && result.is_ok() {
            missed.push(name.clone());
        }
        // A valid parser case may fail Writ's semantic checks (many name undefined types on
        // purpose) or use a construct Writ names as unsupported, but never break its grammar.
        if !expected.contains("NodeTypeError") {
            if let Err(errors) = &result {
                for error in errors.iter().filter(|e| e.kind == writ::model::SchemaErrorKind::Syntax) {
                    if !error.message.contains("not supported by Writ") {
                        grammar_gaps.push(format!("{name}: {}", error.message));
                    }
                }
            }
        }
    }
    println!("SpiceDB parser cases: {} schemas, {accepted} accepted, {rejected} rejected", schemas.len());
    assert!(missed.is_empty(), "expected-error schemas Writ accepted: {missed:?}");
    assert!(grammar_gaps.is_empty(), "valid schemas Writ cannot parse: {grammar_gaps:#?}");
}

#[test]
fn own_fixture_validation_file_passes() {
    let report = run_file(&fixture("drive.yaml")).unwrap();
    let text = spicedb_validation::report_text(std::slice::from_ref(&report));
    assert!(report.load_error.is_none(), "{text}");
    assert_eq!(report.outcomes.len(), 12, "{text}");
    assert_eq!(report.passed(), report.outcomes.len(), "{text}");
    assert!(report.outcomes.iter().any(|o| o.expected == Permissionship::Conditional));
    assert!(report.outcomes.iter().all(|o| o.explain_agrees()), "{text}");
}

#[test]
fn own_fixture_schema_compiles_to_the_model() {
    let model = Model::parse_zed(&std::fs::read_to_string(fixture("drive.zed")).unwrap()).unwrap();
    assert_eq!(model.types.len(), 4);
    assert_eq!(model.conditions[0].name, "on_network");
    let viewer = model.relation("folder", "viewer").unwrap();
    assert!(viewer.directly_related.iter().any(|r| r.expiration));
}

#[test]
fn arrow_over_a_permission_names_the_construct_and_position() {
    let errors = Model::parse_zed(&std::fs::read_to_string(fixture("bad_arrow.zed")).unwrap()).unwrap_err();
    let span = errors[0].span.unwrap();
    assert_eq!((span.line_start + 1, span.column_start + 1), (6, 21), "{errors:?}");
    assert!(errors[0].message.contains("`edit` is a permission"), "{}", errors[0].message);
}

async fn put_model(text: &str, content_type: &str) -> (axum::http::StatusCode, serde_json::Value) {
    use http_body_util::BodyExt;
    use tower::ServiceExt;
    let engine = std::sync::Arc::new(writ::Engine::in_memory());
    let store = engine.create_store("zed").unwrap().id;
    let request = axum::http::Request::builder()
        .method("PUT")
        .uri(format!("/stores/{store}/writ/model"))
        .header("content-type", content_type)
        .header("host", "writ.test")
        .body(axum::body::Body::from(text.to_string()))
        .unwrap();
    let response = writ::api::router(engine).oneshot(request).await.unwrap();
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&bytes).unwrap())
}

#[tokio::test]
async fn api_accepts_a_spicedb_schema() {
    let text = std::fs::read_to_string(fixture("drive.zed")).unwrap();
    let (status, body) = put_model(&text, "application/x-spicedb-schema").await;
    assert_eq!(status, axum::http::StatusCode::CREATED, "{body}");
    assert!(body["authorization_model_id"].is_string(), "{body}");
}

#[tokio::test]
async fn api_reports_spicedb_schema_diagnostics_with_position() {
    let text = std::fs::read_to_string(fixture("bad_arrow.zed")).unwrap();
    let (status, body) = put_model(&text, "application/x-spicedb-schema").await;
    assert_eq!(status, axum::http::StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["code"], "validation_error", "{body}");
    let diagnostic = &body["diagnostics"][0];
    assert_eq!((diagnostic["line"].as_u64(), diagnostic["column"].as_u64()), (Some(6), Some(21)), "{body}");
}

/// A `.zed` model that SpiceDB accepts but OpenFGA's rules would not (an arrow over a userset
/// relation, an all-`nil` permission, an every-parent arrow) must load again after a restart.
#[test]
fn zed_model_survives_sled_reopen() {
    use writ::engine::{CheckRequest, WriteRequest};
    use writ::store::{SledStore, StoredTuple};
    let dir = crate::support::TempDir::new("zed-reopen");
    let schema = "definition user {}\ndefinition team { relation member: user }\n\
        definition doc { relation team: team#member | team\n permission view = team->member\n\
        permission every = team.all(member)\n permission none = nil }";
    let open = || {
        let store = SledStore::open(dir.path()).unwrap();
        writ::Engine::open(Box::new(store), writ::EngineConfig::default()).unwrap()
    };
    let store_id = {
        let engine = open();
        let store_id = engine.create_store("zed").unwrap().id;
        engine.store(&store_id).unwrap().write_model(Model::parse_zed(schema).unwrap()).unwrap();
        let writes = ["team:a#member@user:anne", "doc:1#team@team:a#member"]
            .iter()
            .map(|t| StoredTuple::new(t.parse().unwrap()))
            .collect();
        engine.store(&store_id).unwrap().write(WriteRequest { writes, ..WriteRequest::default() }).unwrap();
        store_id
    };
    let engine = open();
    for relation in ["view", "every"] {
        let request = CheckRequest {
            object: "doc:1".into(),
            relation: relation.into(),
            user: "user:anne".into(),
            ..CheckRequest::default()
        };
        assert!(engine.store(&store_id).unwrap().check(&request).unwrap().value, "{relation} after reopen");
    }
}

/// Whether list users names `user` (an object subject) for `object#relation`; `None` when the
/// answer has a wildcard of the user's type (its exclusions are not spelled out) or the
/// request is refused.
fn listed_users(engine: &writ::Engine, store: &str, object: &str, relation: &str, user: &str) -> Option<bool> {
    use writ::engine::{ListUsersRequest, UserFilterSpec};
    if user.contains('#') {
        return None;
    }
    let user_type = user.split_once(':')?.0;
    let request = ListUsersRequest {
        object: object.to_string(),
        relation: relation.to_string(),
        user_filters: vec![UserFilterSpec { type_name: user_type.to_string(), relation: None }],
        ..ListUsersRequest::default()
    };
    let users: Vec<String> = engine
        .store(store)
        .and_then(|store| store.list_users(&request))
        .ok()?
        .value
        .iter()
        .map(ToString::to_string)
        .collect();
    if users.iter().any(|u| u.ends_with(":*")) {
        return None;
    }
    Some(users.iter().any(|u| u == user))
}

/// SpiceDB-style consistency over SpiceDB's integration files without caveats: for every object
/// the relationships name, each relation of its type and each subject they name, `check` agrees
/// with `list_objects` and `list_users` (this exercises arrows over usersets and `.all()` in the lookups too).
#[test]
#[cfg_attr(
    writ_no_shared = "spicedb/integration",
    ignore = "shared conformance/spicedb/integration not found beside the checkout"
)]
fn spicedb_integration_check_agrees_with_list_objects() {
    use writ::engine::{CheckRequest, ListObjectsRequest};
    let dir = shared("integration");
    let (mut compared, mut files_run, mut users_compared) = (0usize, 0usize, 0usize);
    let mut disagreements = Vec::new();
    for path in spicedb_validation::expand_paths(&dir).unwrap() {
        let Ok((engine, store, tuples)) = spicedb_validation::load_file(&path) else { continue };
        if tuples.iter().any(|t| t.condition.is_some()) {
            continue; // caveats need context: list objects would ask for it
        }
        files_run += 1;
        let model = engine.store(&store).unwrap().model(None).unwrap().model;
        let mut objects = std::collections::BTreeSet::new();
        let mut subjects = std::collections::BTreeSet::new();
        for tuple in &tuples {
            objects.insert(tuple.object.to_string());
            let subject = tuple.subject.to_string();
            if !subject.ends_with(":*") {
                subjects.insert(subject);
            }
        }
        for object in &objects {
            let object_type = object.split_once(':').unwrap().0;
            for relation in &model.type_def(object_type).unwrap().relations {
                for user in &subjects {
                    let check = CheckRequest {
                        object: object.clone(),
                        relation: relation.name.clone(),
                        user: user.clone(),
                        ..CheckRequest::default()
                    };
                    let list = ListObjectsRequest {
                        object_type: object_type.to_string(),
                        relation: relation.name.clone(),
                        user: user.clone(),
                        ..ListObjectsRequest::default()
                    };
                    let (Ok(allowed), Ok(listed)) = (
                        engine.store(&store).and_then(|store| store.check(&check)),
                        engine.store(&store).and_then(|store| store.list_objects(&list)),
                    ) else {
                        continue; // e.g. a subject type the relation never admits
                    };
                    compared += 1;
                    if let Some(listed_users) = listed_users(&engine, &store, object, &relation.name, user) {
                        users_compared += 1;
                        if listed_users != allowed.value {
                            disagreements.push(format!(
                                "{object}#{}@{user}: check {} but list users {listed_users}",
                                relation.name, allowed.value
                            ));
                        }
                    }
                    if allowed.value != listed.value.contains(object) {
                        disagreements.push(format!(
                            "{}: {object}#{}@{user}: check {} but list objects {}",
                            path.file_name().unwrap().to_string_lossy(),
                            relation.name,
                            allowed.value,
                            !allowed.value
                        ));
                    }
                }
            }
        }
    }
    println!("check vs list objects: {compared}, vs list users: {users_compared} comparisons over {files_run} files");
    assert!(compared > 1000 && users_compared > 1000, "only {compared} and {users_compared} comparisons ran");
    assert!(disagreements.is_empty(), "{} disagreements:\n{}", disagreements.len(), disagreements.join("\n"));
}

/// SpiceDB's loader fixtures: those SpiceDB rejects (`invalid_*`, missing or non-local
/// `schemaFile`, a repeated relationship, both `schema` and `schemaFile`) fail to load in Writ
/// too; the others load. Relationship-only files (`just_rels`, `legacy`) have no schema to run.
#[test]
#[cfg_attr(
    writ_no_shared = "spicedb/validationfile",
    ignore = "shared conformance/spicedb/validationfile not found beside the checkout"
)]
fn spicedb_loader_fixtures_load_or_fail_as_spicedb_does() {
    let dir = shared("validationfile");
    let mut wrong = Vec::new();
    let files = spicedb_validation::expand_paths(&dir).unwrap();
    assert!(!files.is_empty());
    for path in files {
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if name == "just_rels.yaml" || name == "legacy.yaml" {
            continue;
        }
        let must_fail =
            ["invalid", "loader_using_invalid", "loader_using_missing", "loader_using_non-local", "repeated"]
                .iter()
                .any(|prefix| name.starts_with(prefix))
                || name == "schema_and_schemafile.yaml";
        let loaded = spicedb_validation::load_file(&path);
        if loaded.is_ok() == must_fail {
            wrong.push(format!("{name}: {}", loaded.err().unwrap_or_else(|| "loaded".into())));
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
}
