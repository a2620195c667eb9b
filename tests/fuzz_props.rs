//! Bounded property-test twins of the cargo-fuzz targets in `tests/fuzz/` (run under `cargo test`):
//! random and mutated inputs to every parser and every API request body never panic, parse errors
//! say where the problem is, and no request body is answered with a 5xx. The inputs that crashed
//! a fuzz run are kept in `tests/fuzz/regressions/<target>/` and replayed here.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use proptest::prelude::*;
use std::sync::Arc;
use tower::ServiceExt;
use writ::engine::WriteRequest;
use writ::model::{parse_fga_mod, JsonModel};
use writ::store::{MemoryStore, StoredTuple};
use writ::{Engine, EngineConfig, Model, ObjectRef, Subject, Tuple};

const DSL_SEEDS: &[&str] = &[
    include_str!("../schema/drive.fga"),
    include_str!("../schema/github.fga"),
    include_str!("../schema/rbac.fga"),
    include_str!("../fixtures/model/valid/conditions.fga"),
    include_str!("../fixtures/model/invalid/loop.fga"),
];
const ZED_SEEDS: &[&str] =
    &[include_str!("../fixtures/spicedb/drive.zed"), include_str!("../fixtures/spicedb/bad_arrow.zed")];
const JSON_SEEDS: &[&str] =
    &[include_str!("../fixtures/model/valid/conditions.json"), include_str!("../fixtures/model/valid/rewrites.json")];
const MOD_SEEDS: &[&str] =
    &[include_str!("../fixtures/modular/fga.mod"), include_str!("../fixtures/modular-invalid/fga.mod")];
const TUPLE_SEEDS: &[&str] = &[
    "document:1#viewer@user:anne",
    "group:eng#member@group:all#member",
    "doc:1#viewer@user:*",
    "folder:a/b#parent@folder:a",
];
const RELATIONSHIP_SEEDS: &[&str] = &[
    "document:1#viewer@user:anne",
    "document:1#viewer@group:eng#member",
    r#"document:1#viewer@user:anne[only_eu:{"region":"eu","list":[1,[2]]}][expiration:2030-01-01T00:00:00Z]"#,
    "document:1#viewer@user:*[expiration:2030-01-01T00:00:00.5+02:00]",
];

/// One target of `tests/fuzz/fuzz_targets/`, as a function of the input text.
type Drive = fn(&str);

/// A seed with up to eight random edits (insert, delete or replace one char), or plain random text.
fn mutated(seeds: &'static [&'static str]) -> impl Strategy<Value = String> {
    let edit = (any::<prop::sample::Index>(), any::<char>(), 0..3u8);
    let from_seed = (prop::sample::select(seeds), prop::collection::vec(edit, 0..8)).prop_map(|(seed, edits)| {
        let mut chars: Vec<char> = seed.chars().collect();
        for (at, c, kind) in edits {
            let at = at.index(chars.len() + 1);
            match kind {
                0 => chars.insert(at, c),
                1 if at < chars.len() => {
                    chars.remove(at);
                }
                _ if at < chars.len() => chars[at] = c,
                _ => chars.push(c),
            }
        }
        chars.into_iter().collect()
    });
    prop_oneof![3 => from_seed, 1 => ".{0,200}", 1 => "[a-z:#@ \\[\\]{}()\n\t*.,_/-]{0,120}"]
}

fn line_count(text: &str) -> u32 {
    u32::try_from(text.split('\n').count()).unwrap()
}

/// Every syntax error of a model text names a line inside the text.
fn assert_syntax_errors_have_positions(text: &str, errors: &[writ::model::SchemaError]) {
    assert!(!errors.is_empty(), "a failed parse returns at least one error");
    for error in errors {
        assert!(!error.message.is_empty(), "empty message for {text:?}");
        if error.kind == writ::model::SchemaErrorKind::Syntax {
            let span = error.span.unwrap_or_else(|| panic!("syntax error without a position: {error:?} in {text:?}"));
            assert!(span.line_start < line_count(text), "{error:?} points past the end of {text:?}");
        }
    }
}

fn drive_dsl(text: &str) {
    match Model::parse_dsl(text) {
        Ok(model) => {
            if let Ok(printed) = model.try_to_dsl() {
                let _ = Model::parse_dsl(&printed);
            }
            let _ = model.to_json();
        }
        Err(errors) => assert_syntax_errors_have_positions(text, &errors),
    }
    let _ = Model::parse_dsl_unchecked(text);
}

fn drive_zed(text: &str) {
    let _ = Model::looks_like_zed(text);
    match Model::parse_zed(text) {
        Ok(model) => {
            let _ = model.try_to_dsl();
        }
        Err(errors) => assert_syntax_errors_have_positions(text, &errors),
    }
}

fn drive_json_model(text: &str) {
    let Ok(json) = serde_json::from_str::<JsonModel>(text) else { return };
    let _ = Model::from_json_unchecked(&json);
    match Model::from_json(&json) {
        Ok(model) => {
            let _ = model.to_json();
            let _ = model.try_to_dsl();
        }
        Err(errors) => assert!(errors.iter().all(|e| !e.message.is_empty()), "{errors:?}"),
    }
}

fn drive_fga_mod(text: &str) {
    if let Err(errors) = parse_fga_mod(text) {
        for error in errors {
            assert!(error.span.line_start <= line_count(text), "{error:?} points past the end of {text:?}");
        }
    }
}

fn drive_tuple_key(text: &str) {
    match text.parse::<Tuple>() {
        Ok(tuple) => {
            let printed = tuple.to_string();
            let again: Tuple = printed.parse().unwrap_or_else(|e| panic!("`{printed}` does not reparse: {e}"));
            assert_eq!(again, tuple, "`{text}` → `{printed}` changed the tuple");
        }
        Err(error) => assert!(error.to_string().contains('`'), "the error quotes the bad part: {error}"),
    }
    let _ = text.parse::<ObjectRef>();
    let _ = text.parse::<Subject>();
    let _ = writ::tuple::split_object(text);
    let _ = writ::tuple::split_subject(text);
    let mut parts = text.splitn(3, '\n');
    if let (Some(object), Some(relation), Some(user)) = (parts.next(), parts.next(), parts.next()) {
        let _ = Tuple::from_parts(object, relation, user);
    }
}

fn drive_spicedb_relationship(text: &str) {
    for line in text.lines() {
        if let Err(message) = writ::cli::spicedb_validation::parse_relationship(line.trim()) {
            assert!(message.starts_with("relationship `"), "the error quotes the line: {message}");
        }
    }
}

/// The API model and tuples of the `api_body` fuzz target.
const API_MODEL: &str = "model
  schema 1.1
type user
type group
  relations
    define member: [user, group#member]
type folder
  relations
    define parent: [folder]
    define viewer: [user, group#member] or viewer from parent
type document
  relations
    define parent: [folder]
    define owner: [user]
    define blocked: [user]
    define viewer: [user, user:*, group#member, user with in_region] or owner or viewer from parent
    define can_view: viewer but not blocked
    define can_share: owner and viewer
condition in_region(region: string, allowed: list<string>) {
  region in allowed
}
";
const API_TUPLES: &[&str] = &[
    "group:eng#member@user:anne",
    "group:all#member@group:eng#member",
    "folder:root#viewer@group:all#member",
    "folder:sub#parent@folder:root",
    "document:readme#parent@folder:sub",
    "document:readme#owner@user:bob",
    "document:readme#blocked@user:carl",
    "document:public#viewer@user:*",
];
/// The methods the `api_body` target tries on each route of the router's table.
const API_METHODS: &[&str] = &["POST", "PUT", "GET", "DELETE", "PATCH"];
const API_BODY_SEEDS: &[&str] = &[
    r#"{"tuple_key":{"user":"user:anne","relation":"can_view","object":"document:readme"},"contextual_tuples":{"tuple_keys":[{"user":"user:dan","relation":"member","object":"group:eng"}]},"context":{"region":"eu"}}"#,
    r#"{"writes":{"tuple_keys":[{"user":"user:anne","relation":"viewer","object":"document:1","condition":{"name":"in_region","context":{"allowed":["eu"]}}}]},"deletes":{"tuple_keys":[{"user":"user:bob","relation":"owner","object":"document:readme"}]}}"#,
    r#"{"checks":[{"tuple_key":{"user":"user:anne","relation":"viewer","object":"document:readme"},"correlation_id":"1"}]}"#,
    r#"{"type":"document","relation":"viewer","user":"user:anne","page_size":5}"#,
    r#"{"object":{"type":"document","id":"readme"},"relation":"viewer","user_filters":[{"type":"group","relation":"member"}]}"#,
    r#"{"subject":{"type":"user","id":"anne"},"action":{"name":"viewer"},"resource":{"type":"document","id":"readme"}}"#,
    r#"{"schema_version":"1.1","type_definitions":[{"type":"user"}]}"#,
    r#"{"name":"store"}"#,
    "model\n  schema 1.1\ntype user\n",
];

/// Sends `body` with method `method` to route `route` of the router's table (a fresh engine's
/// router), as the `api_body` fuzz target does; panics on a 5xx or a 4xx without a JSON error.
fn drive_api_body(runtime: &tokio::runtime::Runtime, route: usize, method: usize, body: &[u8]) {
    let engine = Engine::open(Box::new(MemoryStore::new()), EngineConfig::default()).unwrap();
    let store = engine.create_store("props").unwrap().id;
    let model_id = engine.store(&store).unwrap().write_model(Model::parse_dsl(API_MODEL).unwrap()).unwrap();
    let writes = API_TUPLES.iter().map(|t| StoredTuple::new(t.parse().unwrap())).collect();
    engine.store(&store).unwrap().write(WriteRequest { writes, ..WriteRequest::default() }).unwrap();
    let app = writ::api::router(Arc::new(engine));
    let paths = writ::api::route_paths();
    let method = API_METHODS[method % API_METHODS.len()];
    let uri = paths[route % paths.len()].replace("{store_id}", &store).replace("{model_id}", &model_id);
    let request = Request::builder()
        .method(method)
        .uri(&uri)
        .header("content-type", "application/json")
        .body(Body::from(body.to_vec()))
        .unwrap();
    runtime.block_on(async {
        let response = app.oneshot(request).await.unwrap();
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap();
        assert!(
            status < StatusCode::INTERNAL_SERVER_ERROR,
            "{method} {uri} answered {status}: {}",
            String::from_utf8_lossy(&bytes)
        );
        if status.is_client_error() {
            let error: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
            assert!(error["code"].is_string() && error["message"].is_string(), "{method} {uri}: {status} {error}");
        }
    });
}

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig { cases, failure_persistence: None, ..ProptestConfig::default() }
}

proptest! {
    #![proptest_config(config(300))]

    #[test]
    fn dsl_parser_never_panics_and_places_syntax_errors(text in mutated(DSL_SEEDS)) {
        drive_dsl(&text);
    }

    #[test]
    fn zed_parser_never_panics_and_places_syntax_errors(text in mutated(ZED_SEEDS)) {
        drive_zed(&text);
    }

    #[test]
    fn json_model_reader_never_panics(text in mutated(JSON_SEEDS)) {
        drive_json_model(&text);
    }

    #[test]
    fn fga_mod_reader_never_panics_and_places_errors(text in mutated(MOD_SEEDS)) {
        drive_fga_mod(&text);
    }

    #[test]
    fn tuple_keys_never_panic_and_round_trip(text in mutated(TUPLE_SEEDS)) {
        drive_tuple_key(&text);
    }

    #[test]
    fn spicedb_relationship_lines_never_panic(text in mutated(RELATIONSHIP_SEEDS)) {
        drive_spicedb_relationship(&text);
    }
}

proptest! {
    #![proptest_config(config(120))]

    #[test]
    fn api_request_bodies_never_get_a_5xx(
        route in 0..writ::api::route_paths().len(),
        method in 0..API_METHODS.len(),
        body in mutated(API_BODY_SEEDS),
    ) {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        drive_api_body(&runtime, route, method, body.as_bytes());
    }
}

/// Replays every input kept in `tests/fuzz/regressions/<target>/` through its target.
#[test]
fn fuzz_regression_inputs_stay_fixed() {
    let base = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz/regressions");
    let drives: &[(&str, Drive)] = &[
        ("dsl", drive_dsl),
        ("zed", drive_zed),
        ("json_model", drive_json_model),
        ("fga_mod", drive_fga_mod),
        ("tuple_key", drive_tuple_key),
        ("spicedb_relationship", drive_spicedb_relationship),
    ];
    let mut replayed = 0;
    for (target, drive) in drives {
        for input in inputs(&base.join(target)) {
            drive(&String::from_utf8_lossy(&input));
            replayed += 1;
        }
    }
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    for input in inputs(&base.join("api_body")) {
        if let [route, method, body @ ..] = input.as_slice() {
            drive_api_body(&runtime, usize::from(*route), usize::from(*method), body);
            replayed += 1;
        }
    }
    assert!(replayed > 0, "no regression inputs found under {}", base.display());
}

fn inputs(folder: &std::path::Path) -> Vec<Vec<u8>> {
    let Ok(entries) = std::fs::read_dir(folder) else { return Vec::new() };
    let mut paths: Vec<_> = entries.map(|e| e.unwrap().path()).collect();
    paths.sort();
    paths.iter().map(|p| std::fs::read(p).unwrap()).collect()
}
