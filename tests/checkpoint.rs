//! Checkpoints: a store loaded from its checkpoint and the changelog after it holds exactly what
//! loading every tuple row gives, across random writes, deletes, rewrites, checkpoints and
//! restarts; a damaged checkpoint is ignored (the rows win), and a deleted store leaves none.

use std::path::Path;
use std::sync::Arc;

use proptest::prelude::*;
use writ::engine::{Clock, WriteRequest};
use writ::store::{CheckpointStore, SledStore, StoredTuple, TupleStore};
use writ::tuple::{Context, Tuple, TupleCondition};
use writ::{Engine, EngineConfig, Model};

use crate::support::fixture::check;
use crate::support::serve::{free_address, start, writ_serve};
use crate::support::TempDir;

const MODEL: &str = "model
  schema 1.1
type user
type group
  relations
    define member: [user, user:*, group#member, user with small]
type doc
  relations
    define viewer: [user, user:*, group#member, user with small]
    define editor: [user, group#member]
condition small(x: int) {
  x < 10
}
";

/// A clock at a fixed instant before every expiry the tests write.
fn clock() -> Clock {
    Arc::new(|| 1_000)
}

/// An engine on the sled store at `path` that checkpoints stores of any size.
fn open(path: &Path, checkpoint_min_tuples: usize) -> Engine {
    let config = EngineConfig { checkpoint_min_tuples, ..EngineConfig::default() };
    Engine::open_with_clock(Box::new(SledStore::open(path).unwrap()), config, clock()).unwrap()
}

/// Every tuple the engine's index holds (with condition and expiry), sorted.
fn held(engine: &Engine, store: &str) -> Vec<String> {
    let mut out: Vec<String> = engine
        .store(store)
        .unwrap()
        .read(&writ::engine::ReadFilter::default())
        .unwrap()
        .value
        .into_iter()
        .map(|s| format!("{} {:?} {:?}", s.tuple, s.tuple.condition, s.expires_at_ms))
        .collect();
    out.sort();
    out
}

/// Every tuple row of the store, as [`held`] prints them.
fn rows(path: &Path, store: &str) -> Vec<String> {
    let backend = SledStore::open(path).unwrap();
    let mut out: Vec<String> = backend
        .tuples(store)
        .unwrap()
        .into_iter()
        .map(|s| format!("{} {:?} {:?}", s.tuple, s.tuple.condition, s.expires_at_ms))
        .collect();
    out.sort();
    out
}

/// The universe of tuple identities: 3 objects × 2 relations × 5 subjects (nested groups too).
fn universe(i: usize) -> String {
    let objects = ["doc:0", "doc:1", "group:g"];
    let relations = ["viewer", "member"];
    let users = ["user:a", "user:b", "user:*", "group:g#member", "group:h#member"];
    let object = objects[i % 3];
    let relation = if object.starts_with("group") { "member" } else { relations[(i / 3) % 2] };
    let relation = if relation == "member" && object.starts_with("doc") { "editor" } else { relation };
    let user = users[(i / 6) % 5];
    let user = if relation == "editor" && user == "user:*" { "user:b" } else { user };
    format!("{object}#{relation}@{user}")
}

const UNIVERSE: usize = 30;

/// A universe tuple with a variant: bit 0 adds a condition (plain `user:` subjects of viewer and
/// member only, as the model allows), bit 1 an expiry.
fn variant(index: usize, v: u8) -> StoredTuple {
    let mut t = StoredTuple::new(universe(index).parse::<Tuple>().unwrap());
    let conditionable = t.tuple.relation != "editor"
        && t.tuple.subject.to_string().starts_with("user:")
        && !t.tuple.subject.to_string().ends_with('*');
    if v & 1 == 1 && conditionable {
        let mut context = Context::new();
        context.insert("x".into(), serde_json::json!(index % 12));
        t.tuple.condition = Some(TupleCondition { name: "small".into(), context });
    }
    if v & 2 == 2 {
        t.expires_at_ms = Some(10_000_000 + i64::try_from(index).unwrap());
    }
    t
}

#[derive(Debug, Clone)]
enum Op {
    /// Delete some held tuples (indices into the held list) and write some universe tuples
    /// (a held one is rewritten: deleted and written again with the new variant).
    Write { deletes: Vec<usize>, writes: Vec<(usize, u8)> },
    /// Write a checkpoint now.
    Checkpoint,
    /// Drop the engine and open it again from disk.
    Restart,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (prop::collection::vec(0..64usize, 0..3), prop::collection::vec((0..UNIVERSE, 0..4u8), 0..5))
            .prop_map(|(deletes, writes)| Op::Write { deletes, writes }),
        2 => Just(Op::Checkpoint),
        2 => Just(Op::Restart),
    ]
}

fn create(engine: &Engine) -> String {
    let store = engine.create_store("s").unwrap().id;
    engine.store(&store).unwrap().write_model(Model::parse_dsl(MODEL).unwrap()).unwrap();
    store
}

fn write(engine: &Engine, store: &str, deletes: Vec<Tuple>, writes: Vec<StoredTuple>) {
    engine.store(store).unwrap().write(WriteRequest { writes, deletes, ..WriteRequest::default() }).unwrap();
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn a_store_loaded_from_its_checkpoint_holds_what_its_rows_hold(ops in prop::collection::vec(op(), 1..20)) {
        let dir = TempDir::new("checkpoint-prop");
        let mut engine = open(dir.path(), 0);
        let store = create(&engine);
        for op in ops {
            match op {
                Op::Write { deletes, writes } => {
                    let current = engine.store(&store).unwrap().read(&writ::engine::ReadFilter::default()).unwrap().value;
                    let mut del: Vec<Tuple> = Vec::new();
                    if !current.is_empty() {
                        for d in deletes {
                            let t = &current[d % current.len()].tuple;
                            if !del.iter().any(|o| o.key() == t.key()) {
                                del.push(t.clone());
                            }
                        }
                    }
                    let mut add: Vec<StoredTuple> = Vec::new();
                    for (i, v) in writes {
                        let t = variant(i, v);
                        if add.iter().any(|o| o.tuple.key() == t.tuple.key()) {
                            continue;
                        }
                        // Rewriting a held tuple: delete it first, in its own write.
                        if let Some(held) = current.iter().find(|o| o.tuple.key() == t.tuple.key()) {
                            if !del.iter().any(|o| o.key() == t.tuple.key()) {
                                del.push(held.tuple.clone());
                            }
                        }
                        add.push(t);
                    }
                    if !del.is_empty() {
                        write(&engine, &store, del, vec![]);
                    }
                    if !add.is_empty() {
                        write(&engine, &store, vec![], add);
                    }
                }
                Op::Checkpoint => {
                    prop_assert!(engine.checkpoints().checkpoint(&engine.store(&store).unwrap()).unwrap());
                }
                Op::Restart => {
                    let before = held(&engine, &store);
                    drop(engine);
                    engine = open(dir.path(), 0);
                    prop_assert_eq!(held(&engine, &store), before);
                }
            }
        }
        let answers = |engine: &Engine| -> Vec<bool> {
            ["user:a", "user:b", "user:z"]
                .iter()
                .flat_map(|user| ["doc:0", "doc:1"].map(|doc| check(engine, &store, &format!("{doc}#viewer@{user}"))))
                .collect()
        };
        let before = (held(&engine, &store), answers(&engine));
        drop(engine);
        prop_assert_eq!(&before.0, &rows(dir.path(), &store), "the index at the end equals the rows");
        let engine = open(dir.path(), 0);
        prop_assert_eq!((held(&engine, &store), answers(&engine)), before);
    }
}

/// The tuples of the small fixed store the next tests use, and their expected check answers.
fn fixture(engine: &Engine) -> String {
    let store = create(engine);
    let writes = ["group:g#member@user:a", "group:h#member@group:g#member", "doc:1#viewer@group:h#member"]
        .map(|t| StoredTuple::new(t.parse::<Tuple>().unwrap()))
        .to_vec();
    write(engine, &store, vec![], writes);
    store
}

#[test]
fn a_nested_group_loaded_from_a_checkpoint_and_its_tail_still_answers() {
    let dir = TempDir::new("checkpoint-nested");
    let store = {
        let engine = open(dir.path(), 0);
        let store = fixture(&engine);
        assert!(engine.checkpoints().checkpoint(&engine.store(&store).unwrap()).unwrap());
        // After the checkpoint: cut the chain and add a member on the far side.
        let cut: Tuple = "group:h#member@group:g#member".parse().unwrap();
        let add = StoredTuple::new("group:h#member@user:b".parse::<Tuple>().unwrap());
        write(&engine, &store, vec![cut], vec![add]);
        store
    };
    let engine = open(dir.path(), 0);
    assert!(!check(&engine, &store, "doc:1#viewer@user:a"), "the cut after the checkpoint holds");
    assert!(check(&engine, &store, "doc:1#viewer@user:b"), "the write after the checkpoint holds");
    assert!(check(&engine, &store, "group:g#member@user:a"));
    drop(engine);
    let from_rows = rows(dir.path(), &store);
    let engine = open(dir.path(), 0);
    assert_eq!(held(&engine, &store), from_rows);
}

/// Regression: a checkpoint whose chunk went missing (a damaged database) must not be trusted;
/// start-up reads every tuple row instead.
#[test]
fn a_checkpoint_missing_a_chunk_is_ignored_and_the_rows_load() {
    let dir = TempDir::new("checkpoint-damaged");
    let store = {
        let engine = open(dir.path(), 0);
        let store = fixture(&engine);
        assert!(engine.checkpoints().checkpoint(&engine.store(&store).unwrap()).unwrap());
        write(&engine, &store, vec![], vec![StoredTuple::new("doc:2#viewer@user:c".parse::<Tuple>().unwrap())]);
        store
    };
    {
        // Remove the chunk rows (keyspace 0x07, after the header) behind the store's back.
        let db = raw_sled(dir.path());
        let mut removed = 0;
        for kv in db.scan_prefix([0x07]) {
            let (k, _) = kv.unwrap();
            if k.len() > 1 && k.ends_with(&0u32.to_be_bytes()) {
                db.remove(k).unwrap();
                removed += 1;
            }
        }
        assert_eq!(removed, 1, "one chunk was written");
        db.flush().unwrap();
    }
    let engine = open(dir.path(), usize::MAX);
    assert!(check(&engine, &store, "doc:1#viewer@user:a"));
    assert!(check(&engine, &store, "doc:2#viewer@user:c"));
    assert_eq!(engine.store(&store).unwrap().tuple_count().unwrap(), 4);
}

#[test]
fn start_up_checkpoints_a_large_store_and_a_deleted_store_leaves_no_checkpoint() {
    let dir = TempDir::new("checkpoint-policy");
    let store = {
        let engine = open(dir.path(), 3);
        let store = fixture(&engine);
        assert_eq!(engine.checkpoints().checkpoint_changed().unwrap(), 1, "3 tuples reach the minimum of 3");
        assert_eq!(engine.checkpoints().checkpoint_changed().unwrap(), 0, "nothing changed since");
        store
    };
    assert!(SledStore::open(dir.path()).unwrap().checkpoint_revision(&store).unwrap().is_some());
    {
        let engine = open(dir.path(), 4);
        assert_eq!(engine.checkpoints().checkpoint_changed().unwrap(), 0, "below the minimum");
        engine.delete_store(&store).unwrap();
    }
    let db = raw_sled(dir.path());
    assert_eq!(db.scan_prefix([0x07]).count(), 0, "the deleted store's checkpoint is gone");
}

fn raw_sled(path: &Path) -> sled::Db {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        match sled::Config::new().path(path).open() {
            Ok(db) => return db,
            Err(_) if std::time::Instant::now() < deadline => std::thread::sleep(std::time::Duration::from_millis(5)),
            Err(e) => panic!("cannot open {}: {e}", path.display()),
        }
    }
}

/// Sends one HTTP/1.1 request with `connection: close` and answers the status code.
fn http(address: std::net::SocketAddr, method: &str, path: &str, body: &str) -> std::io::Result<u16> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect_timeout(&address, std::time::Duration::from_secs(5))?;
    stream.set_read_timeout(Some(std::time::Duration::from_secs(30)))?;
    let request = format!(
        "{method} {path} HTTP/1.1\r\nhost: {address}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes())?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response)?;
    let text = String::from_utf8_lossy(&response);
    Ok(text.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0))
}

/// `writ serve` as a user runs it: a store that start-up read row by row is checkpointed before
/// the server answers, and a write after that is in the checkpoint written when SIGTERM stops it.
#[test]
fn writ_serve_checkpoints_at_start_and_when_it_stops() {
    let dir = TempDir::new("checkpoint-serve");
    let store = fixture(&open(dir.path(), usize::MAX));
    let checkpoint = |path: &Path| {
        let backend = SledStore::open(path).unwrap();
        (backend.checkpoint_revision(&store).unwrap(), backend.revision(&store).unwrap())
    };
    assert_eq!(checkpoint(dir.path()), (None, 1), "one write, no checkpoint yet");
    let log_path = dir.path().with_extension("log");
    let log = std::fs::File::create(&log_path).unwrap();
    let address = free_address();
    let mut command = writ_serve(address);
    command.args(["--checkpoint-min-tuples", "1", "--data-dir"]).arg(dir.path()).env("RUST_LOG", "info").stdout(log);
    let mut child = start(command, address);
    let write = r#"{"writes":{"tuple_keys":[{"user":"user:d","relation":"viewer","object":"doc:9"}]}}"#;
    assert_eq!(http(address, "POST", &format!("/stores/{store}/write"), write).unwrap(), 200);
    let term = std::process::Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(term.success());
    assert!(child.wait().unwrap().success(), "writ serve stops cleanly on SIGTERM");
    assert_eq!(checkpoint(dir.path()), (Some(2), 2), "the stop wrote a checkpoint at the last write");
    let text = std::fs::read_to_string(&log_path).unwrap();
    let _ = std::fs::remove_file(&log_path);
    // The log without its colours: `loaded ... from=Rows`, then a checkpoint at start and at stop.
    let mut plain = String::new();
    let mut rest = text.as_str();
    while let Some(at) = rest.find('\u{1b}') {
        plain.push_str(&rest[..at]);
        rest = rest[at..].split_once('m').map_or("", |(_, after)| after);
    }
    plain.push_str(rest);
    assert!(plain.contains("from=Rows"), "start-up read the rows: {plain}");
    assert_eq!(plain.matches("checkpointed").count(), 2, "at start and at stop: {plain}");
    let engine = open(dir.path(), usize::MAX);
    assert!(check(&engine, &store, "doc:9#viewer@user:d"));
    assert!(check(&engine, &store, "doc:1#viewer@user:a"));
}
