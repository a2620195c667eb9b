//! `writ import` / `writ export` through the library: JSON Lines in, validated batches, resume,
//! a bad line stopping with its number, and an export that re-imports to the same store.

use std::io::Cursor;
use writ::cli::transfer::{export, import, ImportOptions, TransferError};
use writ::engine::{CheckRequest, ReadFilter};
use writ::{Engine, Model};

const MODEL: &str = "model
  schema 1.1
type user
type group
  relations
    define member: [user, group#member]
type document
  relations
    define viewer: [user, group#member, user with in_office]
condition in_office(ip: ipaddress) {
  ip.in_cidr(\"10.0.0.0/8\")
}
";

fn store(engine: &Engine) -> String {
    let id = engine.create_store("transfer").unwrap().id;
    engine.store(&id).unwrap().write_model(Model::parse_dsl(MODEL).unwrap()).unwrap();
    id
}

fn lines(count: usize) -> String {
    let mut text = String::new();
    for i in 0..count {
        text.push_str(&format!(
            "{{\"user\":\"user:u{i}\",\"relation\":\"viewer\",\"object\":\"document:d{}\"}}\n",
            i % 7
        ));
    }
    text
}

fn allowed(engine: &Engine, store: &str, object: &str, user: &str) -> bool {
    let request =
        CheckRequest { object: object.into(), relation: "viewer".into(), user: user.into(), ..CheckRequest::default() };
    engine.store(store).unwrap().check(&request).unwrap().value
}

#[test]
fn import_commits_every_batch_and_reports_progress() {
    let engine = Engine::in_memory();
    let store = store(&engine);
    let mut reports = Vec::new();
    let options = ImportOptions { batch: 10, after_line: 0 };
    let done = import(&engine, &store, Cursor::new(lines(35)), options, |p| reports.push(p)).unwrap();
    assert_eq!(done.tuples, 35);
    assert_eq!(done.line, 35);
    assert_eq!(reports.iter().map(|p| p.line).collect::<Vec<_>>(), [10, 20, 30, 35]);
    assert_eq!(reports.iter().map(|p| p.revision).collect::<Vec<_>>(), [1, 2, 3, 4], "one revision per batch");
    assert_eq!(engine.store(&store).unwrap().tuple_count().unwrap(), 35);
    assert!(allowed(&engine, &store, "document:d3", "user:u10"));
    assert!(!allowed(&engine, &store, "document:d4", "user:u10"));
}

#[test]
fn import_rerun_and_resume_end_in_the_same_store() {
    let engine = Engine::in_memory();
    let store = store(&engine);
    let options = ImportOptions { batch: 8, after_line: 0 };
    import(&engine, &store, Cursor::new(lines(20)), options, |_| {}).unwrap();
    // A rerun of the whole file ignores what is already there.
    import(&engine, &store, Cursor::new(lines(30)), options, |_| {}).unwrap();
    assert_eq!(engine.store(&store).unwrap().tuple_count().unwrap(), 30);
    // Resuming after line 30 reads only the rest.
    let resumed =
        import(&engine, &store, Cursor::new(lines(40)), ImportOptions { batch: 8, after_line: 30 }, |_| {}).unwrap();
    assert_eq!(resumed.tuples, 10);
    assert_eq!(resumed.line, 40);
    assert_eq!(engine.store(&store).unwrap().tuple_count().unwrap(), 40);
}

/// A file that repeats a tuple inside one batch once stopped the import with
/// `cannot_allow_duplicate_tuples_in_one_request`.
#[test]
fn import_of_a_tuple_repeated_within_one_batch_keeps_one() {
    let engine = Engine::in_memory();
    let store = store(&engine);
    let line = "{\"user\":\"user:anne\",\"relation\":\"viewer\",\"object\":\"document:1\"}\n";
    let done = import(&engine, &store, Cursor::new(line.repeat(3)), ImportOptions::default(), |_| {}).unwrap();
    assert_eq!(done.line, 3);
    assert_eq!(engine.store(&store).unwrap().tuple_count().unwrap(), 1);
}

#[test]
fn import_stops_at_a_bad_line_and_keeps_earlier_batches() {
    let engine = Engine::in_memory();
    let store = store(&engine);
    let mut text = lines(6);
    text.push_str("{\"user\":\"user:x\",\"relation\":\"viewer\"}\n");
    text.push_str(&lines(3));
    let error =
        import(&engine, &store, Cursor::new(text), ImportOptions { batch: 5, after_line: 0 }, |_| {}).unwrap_err();
    match &error {
        TransferError::BadLine { line, message } => {
            assert_eq!(*line, 7);
            assert!(message.contains("object"), "names the missing field: {message}");
        }
        other => panic!("expected a bad line, got {other}"),
    }
    assert_eq!(
        engine.store(&store).unwrap().tuple_count().unwrap(),
        5,
        "the first batch is committed, the partial one is not"
    );
}

#[test]
fn import_refuses_tuples_the_model_does_not_admit() {
    let engine = Engine::in_memory();
    let store = store(&engine);
    let text = "{\"user\":\"group:g\",\"relation\":\"viewer\",\"object\":\"document:1\"}\n";
    let error = import(&engine, &store, Cursor::new(text), ImportOptions::default(), |_| {}).unwrap_err();
    assert!(matches!(error, TransferError::Batch { line: 1, .. }), "{error}");
    assert_eq!(engine.store(&store).unwrap().tuple_count().unwrap(), 0);
}

#[test]
fn export_then_import_reproduces_the_store() {
    let engine = Engine::in_memory();
    let source = store(&engine);
    let text = concat!(
        "{\"user\":\"user:anne\",\"relation\":\"member\",\"object\":\"group:eng\"}\n",
        "{\"user\":\"group:eng#member\",\"relation\":\"viewer\",\"object\":\"document:plan\"}\n",
        "\n",
        "{\"user\":\"user:bob\",\"relation\":\"viewer\",\"object\":\"document:plan\",",
        "\"condition\":{\"name\":\"in_office\",\"context\":{\"ip\":\"10.1.2.3\"}}}\n",
    );
    import(&engine, &source, Cursor::new(text), ImportOptions::default(), |_| {}).unwrap();
    let mut exported = Vec::new();
    assert_eq!(export(&engine, &source, &mut exported).unwrap(), 3);

    let copy = store(&engine);
    import(&engine, &copy, Cursor::new(exported), ImportOptions::default(), |_| {}).unwrap();
    let read = |id: &str| engine.store(id).unwrap().read(&ReadFilter::default()).unwrap().value;
    assert_eq!(read(&source), read(&copy));
    assert!(allowed(&engine, &copy, "document:plan", "user:anne"));
    assert!(allowed(&engine, &copy, "document:plan", "user:bob"), "the condition came along with its context");
}

/// Each message of `error`'s chain, outermost first.
fn chain(error: &dyn std::error::Error) -> Vec<String> {
    let mut messages = vec![error.to_string()];
    let mut source = error.source();
    while let Some(inner) = source {
        messages.push(inner.to_string());
        source = inner.source();
    }
    messages
}

/// Regression: `writ export --store demo` printed ``store `demo` not found: store `demo` not found``,
/// because the error's message and its source's were the same text; no link may repeat the next.
#[test]
fn transfer_and_serve_errors_never_repeat_their_source() {
    let io = || std::io::Error::new(std::io::ErrorKind::AddrInUse, "address in use");
    let errors: Vec<Box<dyn std::error::Error>> = vec![
        Box::new(TransferError::Engine(writ::EngineError::StoreNotFound("demo".into()))),
        Box::new(TransferError::Io(io())),
        Box::new(TransferError::Batch { line: 3, source: writ::EngineError::StoreNotFound("demo".into()) }),
        Box::new(writ::api::serve::ServeError::Io(io())),
    ];
    for error in &errors {
        let messages = chain(error.as_ref());
        for pair in messages.windows(2) {
            assert!(!pair[0].contains(&pair[1]), "`{}` repeats its source `{}`", pair[0], pair[1]);
        }
        assert!(messages.iter().any(|m| m.contains("demo") || m.contains("address in use")), "{messages:?}");
    }
}
