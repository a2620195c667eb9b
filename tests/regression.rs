//! Regression tests, one per bug, named after the bug and driven through the `Engine` facade.
//!
//! Tests marked `#[ignore]` pin bugs that are known and not fixed yet; the reason names the bug.
//! Run them with `cargo test -- --ignored`; remove the `ignore` with the fix.

use crate::support::fixture::{check, store_with, write_tuples, Fixture};
use crate::support::TempDir;
use std::sync::mpsc;
use std::time::Duration;
use writ::engine::{CheckRequest, ListObjectsRequest, ListUsersRequest, UserFilterSpec, WriteRequest};
use writ::store::StoredTuple;
use writ::{Engine, Model, Tuple};

/// Writes a new model version, then `tuples`.
fn add_model(engine: &Engine, store: &str, model: &str, tuples: &[&str]) {
    engine.store(store).unwrap().write_model(Model::parse_dsl(model).unwrap()).unwrap();
    write_tuples(engine, store, tuples);
}

fn list_objects(engine: &Engine, store: &str, object_type: &str, relation: &str, user: &str) -> Vec<String> {
    let request = ListObjectsRequest {
        object_type: object_type.into(),
        relation: relation.into(),
        user: user.into(),
        ..ListObjectsRequest::default()
    };
    engine.store(store).unwrap().list_objects(&request).unwrap().value
}

fn list_users(engine: &Engine, store: &str, object: &str, relation: &str, user_type: &str) -> Vec<String> {
    let request = ListUsersRequest {
        object: object.into(),
        relation: relation.into(),
        user_filters: vec![UserFilterSpec { type_name: user_type.into(), relation: None }],
        ..ListUsersRequest::default()
    };
    engine.store(store).unwrap().list_users(&request).unwrap().value.iter().map(ToString::to_string).collect()
}

/// Runs `f` on another thread and fails if it does not finish in time (a hang is the bug).
fn within_seconds<T: Send + 'static>(seconds: u64, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (sender, receiver) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = sender.send(f());
    });
    receiver.recv_timeout(Duration::from_secs(seconds)).expect("the evaluation finished in time")
}

const RESTRICTED_VIEWER: &str = "model
  schema 1.1
type user
type document
  relations
    define restricted: [user, document#viewer]
    define viewer: [user] but not restricted
";

/// A cycle through `but not` (`restricted` contains `viewer`, `viewer` excludes `restricted`) used
/// to grant access and to hang list objects. The cycle has no answer, so it must never grant.
#[test]
fn cycle_under_exclusion_is_denied_not_granted() {
    let (objects, anne_on_2, anne_on_3, users) = within_seconds(10, || {
        let engine = Engine::in_memory();
        let store = store_with(
            &engine,
            RESTRICTED_VIEWER,
            &[
                "document:1#restricted@document:1#viewer",
                "document:2#restricted@document:2#viewer",
                "document:2#viewer@user:anne",
                "document:3#viewer@user:anne",
            ],
        );
        assert!(!check(&engine, &store, "document:1#viewer@user:anne"));
        (
            list_objects(&engine, &store, "document", "viewer", "user:anne"),
            check(&engine, &store, "document:2#viewer@user:anne"),
            check(&engine, &store, "document:3#viewer@user:anne"),
            list_users(&engine, &store, "document:2", "viewer", "user"),
        )
    });
    assert!(!anne_on_2, "a cycle through `but not` granted access");
    assert!(anne_on_3, "a plain direct tuple must still grant");
    assert_eq!(objects, ["document:3"]);
    assert_eq!(users, Vec::<String>::new());
}

/// OpenFGA `consolidated_1_1_tests.yaml › exclusion_under_wildcard_in_intersection`: check denies
/// the banned user, but list users returns them.
#[test]
fn list_users_keeps_exclusion_of_wildcard_under_intersection() {
    let model = "model
  schema 1.1
type user
type document
  relations
    define banned: [user]
    define org_member: [user:*, user]
    define active: [user]
    define viewer: (org_member but not banned) and active
";
    let fixture = Fixture::new(model).tuples([
        "document:1#org_member@user:*",
        "document:1#banned@user:eve",
        "document:1#active@user:alice",
        "document:1#active@user:eve",
    ]);
    fixture.assert_denied("document:1#viewer@user:eve");
    assert_eq!(list_users(&fixture.engine, &fixture.store, "document:1", "viewer", "user"), ["user:alice"]);
}

/// OpenFGA `consolidated_1_1_tests.yaml › list_objects_expands_wildcard_tuple`, stage 3, reduced:
/// `u` is excluded from a wildcard that is itself excluded, so `u` holds the relation.
#[test]
fn list_users_keeps_user_excluded_from_excluded_wildcard() {
    let engine = Engine::in_memory();
    let model = "model
  schema 1.1
type user
type folder
  relations
    define reader: [user]
    define blocked: [user, user:*]
    define unblocked: [user]
    define nblocked: blocked but not unblocked
    define can_read: reader but not nblocked
";
    let store = store_with(
        &engine,
        model,
        &[
            "folder:1#reader@user:harriette",
            "folder:1#reader@user:zed",
            "folder:1#blocked@user:*",
            "folder:1#unblocked@user:harriette",
        ],
    );
    assert!(check(&engine, &store, "folder:1#can_read@user:harriette"));
    assert!(!check(&engine, &store, "folder:1#can_read@user:zed"));
    assert_eq!(list_users(&engine, &store, "folder:1", "can_read", "user"), ["user:harriette"]);
}

/// OpenFGA `abac_tests.yaml › wildcard_with_condition`: after the model changes `user:*` to
/// `user:* with ts_less_than`, an earlier unconditioned `user:*` tuple no longer fits the model
/// and OpenFGA ignores it when reading.
#[test]
fn stale_tuple_without_required_condition_is_ignored() {
    let engine = Engine::in_memory();
    let before = "model
  schema 1.1
type user
type group
  relations
    define member: [user, user:*]
";
    let after = "model
  schema 1.1
type user
type group
  relations
    define member: [user with ts_less_than, user:* with ts_less_than]
condition ts_less_than(ts: timestamp) {
  ts < timestamp(\"2023-10-11T10:00:00.000Z\")
}
";
    let store = store_with(&engine, before, &["group:1#member@user:*", "group:2#member@user:anne"]);
    add_model(&engine, &store, after, &[]);
    assert!(!check(&engine, &store, "group:2#member@user:anne"), "stale `user:anne` tuple counted");
    assert!(!check(&engine, &store, "group:1#member@user:anne"), "stale `user:*` tuple counted");
    assert_eq!(list_objects(&engine, &store, "group", "member", "user:anne"), Vec::<String>::new());
}

/// Two usersets on objects no tuple names (`group:a`, `group:b`) once shared the index's id for
/// unknown objects, so `group:b#member` was taken to be `member` of `group:a`.
#[test]
fn unknown_userset_is_not_member_of_another_unknown_object() {
    let model = "model
  schema 1.1
type user
type group
  relations
    define member: [user, group#member]";
    let fixture = Fixture::new(model);
    fixture.assert_denied("group:a#member@group:b#member");
    fixture.assert_allowed("group:a#member@group:a#member");
}

/// The OpenFGA-sized user limit (512 bytes) once refused SpiceDB's 1024-character ids in
/// validation files (`extendedids.yaml`), so their assertions came out unsupported.
#[test]
fn spicedb_validation_files_take_1024_character_ids() {
    let id = "x".repeat(1024);
    let file = format!(
        "schema: |-\n  definition user {{}}\n  definition document {{\n    relation viewer: user\n  }}\n\
         relationships: |-\n  document:d#viewer@user:{id}\n\
         assertions:\n  assertTrue:\n    - \"document:d#viewer@user:{id}\"\n  assertFalse:\n    - \"document:d#viewer@user:y\"\n"
    );
    let dir = TempDir::created("long-ids");
    let path = dir.path().join("long-ids.yaml");
    std::fs::write(&path, file).unwrap();
    let report = writ::cli::spicedb_validation::run_file(&path).unwrap();
    assert_eq!(report.load_error, None);
    assert_eq!((report.passed(), report.failed(), report.unsupported()), (2, 0, 0));
}

/// Found by the `dsl` fuzz target: thousands of nested parentheses in a relation definition
/// overflowed the parser's stack and killed the process (`PUT /writ/model` could take a server
/// down). Deep nesting is now a syntax error with a position.
#[test]
fn deeply_nested_dsl_parentheses_are_an_error_not_a_stack_overflow() {
    let depth = 20_000;
    let text = format!(
        "model\n  schema 1.1\ntype user\ntype doc\n  relations\n    define a: {}[user]{}\n",
        "(".repeat(depth),
        ")".repeat(depth)
    );
    // Run on a 2 MiB thread, the size of a tokio worker's stack.
    let errors = std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(move || Model::parse_dsl(&text).unwrap_err())
        .unwrap()
        .join()
        .unwrap();
    assert!(errors[0].message.contains("nested deeper than 64"), "{errors:?}");
    assert_eq!(errors[0].span.unwrap().line_start, 5);
    let nested_64 = format!(
        "model\n  schema 1.1\ntype user\ntype doc\n  relations\n    define a: {}[user]{}\n",
        "(".repeat(64),
        ")".repeat(64)
    );
    Model::parse_dsl(&nested_64).unwrap();
}

/// Found by the `zed` fuzz target: long `+`, `&` and `-` chains and deep parentheses in a SpiceDB
/// permission built a parse tree thousands of levels deep, and compiling or dropping it overflowed
/// the stack. `+` and `&` chains of any length now parse; depth past 64 is a syntax error.
#[test]
fn long_zed_operator_chains_and_deep_parentheses_do_not_overflow_the_stack() {
    let schema = |expression: String| {
        format!(
            "definition user {{}}\ndefinition doc {{\n  relation v: user | doc\n  permission p = {expression}\n}}\n"
        )
    };
    let on_small_stack = |text: String| {
        std::thread::Builder::new().stack_size(2 << 20).spawn(move || Model::parse_zed(&text)).unwrap().join().unwrap()
    };
    let terms = vec!["v"; 20_000];
    let union = on_small_stack(schema(terms.join(" + "))).unwrap();
    let rewrite = &union.relation("doc", "p").unwrap().rewrite;
    assert!(matches!(rewrite, writ::model::Rewrite::Union(parts) if parts.len() == 20_000), "{rewrite:?}");
    on_small_stack(schema(terms.join(" & "))).unwrap();
    for deep in [terms.join(" - "), format!("{}v{}", "(".repeat(20_000), ")".repeat(20_000)), "v->v".repeat(5_000)] {
        let errors = on_small_stack(schema(deep)).unwrap_err();
        assert!(errors[0].message.contains("nested deeper than 64"), "{errors:?}");
        assert_eq!(errors[0].span.unwrap().line_start, 3);
    }
}

/// Found while probing what the fuzz targets do not reach (CEL is compiled when a model is
/// stored): a condition with about 20 nested parentheses, or 100 chained `+`, overflowed the
/// stack inside the `cel` crate and aborted the server. Such expressions now never reach `cel`;
/// a check that needs one is a condition error, as with any expression that does not parse.
#[test]
fn deep_or_long_cel_conditions_are_an_error_not_a_stack_overflow() {
    let model = |expression: &str| {
        format!("model\n  schema 1.1\ntype user\ntype doc\n  relations\n    define viewer: [user with c]\ncondition c(x: int) {{\n  {expression}\n}}\n")
    };
    let check_on_small_stack = |expression: String| {
        let text = model(&expression);
        std::thread::Builder::new()
            .stack_size(2 << 20)
            .spawn(move || {
                let engine = Engine::in_memory();
                let store = engine.create_store("cel").unwrap().id;
                // The engine's condition limits may refuse the model outright: also an error.
                engine
                    .store(&store)
                    .unwrap()
                    .write_model(Model::parse_dsl(&text).unwrap())
                    .map_err(|e| e.to_string())?;
                let mut tuple: Tuple = "doc:1#viewer@user:anne".parse().unwrap();
                tuple.condition = Some(writ::tuple::TupleCondition { name: "c".into(), context: Default::default() });
                let writes = vec![StoredTuple::new(tuple)];
                engine.store(&store).unwrap().write(WriteRequest { writes, ..WriteRequest::default() }).unwrap();
                let mut context = writ::tuple::Context::new();
                context.insert("x".into(), serde_json::json!(1));
                let request = CheckRequest {
                    object: "doc:1".into(),
                    relation: "viewer".into(),
                    user: "user:anne".into(),
                    context,
                    ..CheckRequest::default()
                };
                engine
                    .store(&store)
                    .and_then(|store| store.check(&request))
                    .map(|answer| answer.value)
                    .map_err(|e| e.to_string())
            })
            .unwrap()
            .join()
            .unwrap()
    };
    let nested = |depth: usize| format!("{}x{} == 1", "(".repeat(depth), ")".repeat(depth));
    let chained = |terms: usize| format!("{} == {terms}", vec!["x"; terms].join(" + "));
    assert_eq!(check_on_small_stack(nested(8)), Ok(true));
    assert_eq!(check_on_small_stack(chained(32)), Ok(true));
    let too_deep = check_on_small_stack(nested(200)).unwrap_err();
    assert!(too_deep.contains("200") && too_deep.contains("deep"), "{too_deep}");
    let too_long = check_on_small_stack(chained(2000)).unwrap_err();
    assert!(too_long.contains("2000 operators") || too_long.contains("byte expression"), "{too_long}");
}

/// Found by the `spicedb_relationship` proptest twin: a non-ASCII fraction of a second in an
/// `[expiration:...]` panicked on a byte slice inside a character, and a year of 18 digits
/// overflowed the date arithmetic. Both are now a "bad expiration time" error.
#[test]
fn odd_expiration_times_in_relationship_lines_are_errors_not_panics() {
    use writ::cli::spicedb_validation::parse_relationship;
    for line in [
        "doc:1#viewer@user:anne[expiration:2030-01-01T00:00:00.1é5Z]",
        "doc:1#viewer@user:anne[expiration:999999999999999999-01-01T00:00:00Z]",
        "doc:1#viewer@user:anne[expiration:2030-01-01T99999999999999:00:00+99999999999:00]",
    ] {
        let error = parse_relationship(line).unwrap_err();
        assert!(error.contains("bad expiration time"), "{line}: {error}");
    }
    let fine = parse_relationship("doc:1#viewer@user:anne[expiration:2030-01-01T00:00:00.5Z]").unwrap();
    assert_eq!(fine.expires_at_ms, Some(1_893_456_000_500));
}

/// `writ model test` copied every file tuple into every check's result as it ran, so a file of
/// 4,616 tuples and 10,000 checks (OpenFGA's bench file) grew past 20 GB. The tuples are now
/// held once per test and joined to each request only when the verbose JSON is printed.
#[test]
fn model_test_held_a_copy_of_every_tuple_per_check() {
    let dir = TempDir::created("regression-model-test");
    let path = dir.path().join("many.fga.yaml");
    let mut text = String::from("model: |\n  model\n    schema 1.1\n  type user\n  type doc\n    relations\n      define viewer: [user]\ntuples:\n");
    for i in 0..200 {
        text.push_str(&format!("  - user: user:u{i}\n    relation: viewer\n    object: doc:d{i}\n"));
    }
    text.push_str("tests:\n  - name: checks\n    check:\n");
    for i in 0..50 {
        text.push_str(&format!(
            "      - user: user:u{i}\n        object: doc:d{i}\n        assertions:\n          viewer: true\n"
        ));
    }
    std::fs::write(&path, text).unwrap();
    let results = writ::cli::testfile::run_file(&path).unwrap();
    let result = &results[0];
    assert!(result.passed());
    assert_eq!(result.check_results.len(), 50);
    assert_eq!(result.contextual_tuples.len(), 200);
    assert!(result.check_results.iter().all(|r| r["request"].get("contextual_tuples").is_none()));
    // The printed JSON still shows every request with the file's tuples, as `fga model test` does.
    let json = result.to_json();
    let printed = json["check_results"].as_array().unwrap();
    assert_eq!(printed.len(), 50);
    for entry in printed {
        assert_eq!(entry["request"]["contextual_tuples"].as_array().unwrap().len(), 200);
        assert_eq!(entry["request"]["contextual_tuples"][0]["object"], "doc:d0");
    }
}

/// OpenFGA's language validators flag a rewrite naming the same operand twice, but its server
/// and `fga model test` accept such a model and answer on it; Writ refused the whole model.
#[test]
fn regression_a_rewrite_with_the_same_operand_twice_was_refused() {
    let model = "model
  schema 1.1
type user
type folder
  relations
    define viewer: [user]
type document
  relations
    define parent: [folder]
    define owner: [user]
    define either: owner or owner
    define both: owner and owner
    define never: viewer from parent but not viewer from parent
    define not_owner: [user] but not owner
";
    let (_, warnings) = Model::parse_dsl_with_warnings(model).unwrap();
    let messages: Vec<&str> = warnings.iter().map(|w| w.message.as_str()).collect();
    assert_eq!(
        messages,
        [
            "the partial relation definition `owner` is a duplicate in the relation `either`.",
            "the partial relation definition `owner` is a duplicate in the relation `both`.",
            "the partial relation definition `viewer from parent` is a duplicate in the relation `never`.",
        ]
    );
    // The JSON form of the same model is accepted too.
    let json = Model::parse_dsl(model).unwrap().to_json();
    assert!(Model::from_json(&json).is_ok());
    let fixture = Fixture::new(model).tuples([
        "folder:f#viewer@user:anne",
        "document:d#parent@folder:f",
        "document:d#owner@user:bob",
    ]);
    fixture.assert_allowed("document:d#either@user:bob");
    fixture.assert_denied("document:d#either@user:anne");
    fixture.assert_allowed("document:d#both@user:bob");
    fixture.assert_denied("document:d#never@user:anne");
    let (engine, store) = (&fixture.engine, &fixture.store);
    assert!(list_objects(engine, store, "document", "never", "user:anne").is_empty());
    assert_eq!(list_objects(engine, store, "document", "either", "user:bob"), ["document:d"]);
    assert_eq!(list_users(engine, store, "document:d", "both", "user"), ["user:bob"]);
    assert!(list_users(engine, store, "document:d", "never", "user").is_empty());
}

const SELF_USERSETS: &str = "model\n  schema 1.1\ntype user\ntype document\n  relations\n    \
    define viewer: [user, user:*, document#viewer]\n    define reader: viewer\n";

/// Names the index had never seen all resolved to one shared id (`UNKNOWN`), so two different
/// unknown names were "equal" unless every walk remembered to test for it. Unknown names now have
/// no id: a never-seen object is not a never-seen userset's object, a contextual tuple on one
/// unknown object grants nothing on another, and one unknown user is not another.
#[test]
fn two_never_seen_names_are_not_the_same_subject_or_object() {
    let engine = Engine::in_memory();
    let store = store_with(&engine, SELF_USERSETS, &["document:known#viewer@user:anne"]);
    // A userset holds its own relation (settled by name for unknown ones), never another's.
    assert!(check(&engine, &store, "document:x#viewer@document:x#viewer"));
    assert!(!check(&engine, &store, "document:x#viewer@document:y#viewer"));
    assert!(!check(&engine, &store, "document:x#reader@document:y#viewer"));
    assert!(!check(&engine, &store, "document:known#viewer@document:y#viewer"));
    assert!(!check(&engine, &store, "document:x#viewer@document:known#viewer"));
    // Unknown users: no tuple names either, so neither is granted, and neither stands for the other.
    assert!(!check(&engine, &store, "document:known#viewer@user:ghost"));
    assert!(!check(&engine, &store, "document:x#viewer@user:ghost"));
    let handle = engine.store(&store).unwrap();
    let with_context = |object: &str, user: &str, contextual: &str| {
        let request = CheckRequest {
            object: object.into(),
            relation: "viewer".into(),
            user: user.into(),
            contextual_tuples: vec![contextual.parse::<Tuple>().unwrap()],
            ..CheckRequest::default()
        };
        handle.check(&request).unwrap().value
    };
    assert!(with_context("document:new1", "user:ghost1", "document:new1#viewer@user:ghost1"));
    assert!(!with_context("document:new2", "user:ghost1", "document:new1#viewer@user:ghost1"));
    assert!(!with_context("document:new1", "user:ghost2", "document:new1#viewer@user:ghost1"));
    assert!(!with_context("document:new2", "user:ghost2", "document:new1#viewer@user:ghost1"));
    assert!(!with_context("document:new2", "document:new3#viewer", "document:new1#viewer@document:new3#viewer"));
    // The wildcard still grants a user no tuple names.
    assert!(with_context("document:x", "user:ghost", "document:x#viewer@user:*"));
    // List users on an unknown object names its own userset, not another unknown one.
    let request = ListUsersRequest {
        object: "document:x".into(),
        relation: "reader".into(),
        user_filters: vec![UserFilterSpec { type_name: "document".into(), relation: Some("viewer".into()) }],
        ..ListUsersRequest::default()
    };
    let users: Vec<String> = handle.list_users(&request).unwrap().value.iter().map(ToString::to_string).collect();
    assert_eq!(users, Vec::<String>::new(), "reader on an unknown object is nobody's userset");
    let request = ListUsersRequest { relation: "viewer".into(), ..request };
    let users: Vec<String> = handle.list_users(&request).unwrap().value.iter().map(ToString::to_string).collect();
    assert_eq!(users, ["document:x#viewer"]);
    // Prepared handles of two unknown names: the same name holds, another does not.
    let prepared = handle.prepare("document", "viewer", "document#viewer").unwrap();
    let x = handle.object("document:x").unwrap();
    let (x_viewers, y_viewers) =
        (handle.subject("document:x#viewer").unwrap(), handle.subject("document:y#viewer").unwrap());
    assert!(!x.is_known() && !y_viewers.is_known() && x.id().is_none());
    assert!(prepared.check(&handle, &x, &x_viewers).unwrap());
    assert!(!prepared.check(&handle, &x, &y_viewers).unwrap());
}
