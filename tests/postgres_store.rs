//! `PostgresStore` against a real PostgreSQL (the generic store contract runs in
//! `store_contract.rs`, against this file's [`FreshDatabase`]): writers in several
//! "processes" (separate store handles), concurrent start-up migrations, change notifications,
//! and calls from every kind of thread. Runs when `WRIT_TEST_POSTGRES_URL` names a server
//! (`.ci/postgres.sh` starts one); otherwise `cargo test` lists those tests as ignored (see `skipped.rs`).
//! Each test works in its own freshly created database, dropped afterwards.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::time::Duration;

use crate::skipped::postgres_url;
use crate::store_contract::{decision, record, st};
use writ::store::{
    DecisionFilter, DecisionLogStore, DecisionRecord, MemoryStore, PlannedAt, PostgresStore, StoreError, TupleStore,
    WriteBatch,
};

/// `url` with its database name replaced by `database`.
fn with_database(url: &str, database: &str) -> String {
    let (head, query) = match url.split_once('?') {
        Some((head, query)) => (head, format!("?{query}")),
        None => (url, String::new()),
    };
    let authority_start = head.find("://").map_or(0, |i| i + 3);
    let path_start = head[authority_start..].find('/').map_or(head.len(), |i| authority_start + i);
    format!("{}/{database}{query}", &head[..path_start])
}

fn admin(url: &str, sql: &str) {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls).await.unwrap();
        let driver = tokio::spawn(connection);
        client.batch_execute(sql).await.unwrap();
        drop(client);
        let _ = driver.await;
    });
}

/// A database created for one test and dropped (forcibly) when this goes out of scope.
pub(crate) struct FreshDatabase {
    server: String,
    name: String,
    url: String,
}

impl FreshDatabase {
    pub(crate) fn new(server: &str) -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        let name = format!("writ_test_{}_{}_{nanos}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed));
        admin(server, &format!("CREATE DATABASE {name}"));
        FreshDatabase { server: server.to_string(), url: with_database(server, &name), name }
    }

    pub(crate) fn open(&self) -> PostgresStore {
        PostgresStore::open(&self.url).unwrap()
    }

    /// The database's URL, for a `writ serve --datastore` process.
    pub(crate) fn url(&self) -> &str {
        &self.url
    }
}

impl Drop for FreshDatabase {
    fn drop(&mut self) {
        admin(&self.server, &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name));
    }
}

#[test]
fn postgres_url_rewriting_keeps_everything_but_the_database() {
    assert_eq!(with_database("postgres://u:p@h:1/db", "x"), "postgres://u:p@h:1/x");
    assert_eq!(with_database("postgres://u@h:1", "x"), "postgres://u@h:1/x");
    assert_eq!(with_database("postgresql://h/db?sslmode=disable", "x"), "postgresql://h/x?sslmode=disable");
}

#[test]
fn postgres_unreachable_or_bad_urls_are_clear_errors() {
    // No server needed: port 1 on loopback refuses connections.
    let Err(StoreError::Io(message)) = PostgresStore::open("postgres://writ:secret@127.0.0.1:1/writdb") else {
        panic!("opening an unreachable database must fail with an i/o error")
    };
    assert!(message.contains("127.0.0.1:1/writdb"), "{message}");
    assert!(!message.contains("secret"), "the password leaked: {message}");
    let Err(StoreError::Io(message)) = PostgresStore::open("postgres://h:notaport/db") else {
        panic!("a bad URL must fail with an i/o error")
    };
    assert!(message.contains("URL is invalid"), "{message}");
}

#[test]
#[cfg_attr(writ_no_postgres, ignore = "WRIT_TEST_POSTGRES_URL is not set (start a server with .ci/postgres.sh)")]
fn postgres_writers_in_several_processes_get_distinct_consecutive_revisions() {
    let server = postgres_url();
    let database = FreshDatabase::new(&server);
    // Two handles stand for two Writ processes: separate pools, serialized only by PostgreSQL.
    let nodes = [Arc::new(database.open()), Arc::new(database.open())];
    nodes[0].create_store(&record("S")).unwrap();
    let threads: Vec<_> = (0..6)
        .map(|i| {
            let store = Arc::clone(&nodes[i % 2]);
            std::thread::spawn(move || {
                (0..10)
                    .map(|j| {
                        store
                            .write("S", &WriteBatch::new(&[], &[st(&format!("doc:{i}-{j}#viewer@user:u"))], 0))
                            .unwrap()
                    })
                    .collect::<Vec<u64>>()
            })
        })
        .collect();
    let mut revisions: Vec<u64> = threads.into_iter().flat_map(|t| t.join().unwrap()).collect();
    revisions.sort_unstable();
    assert_eq!(revisions, (1..=60).collect::<Vec<u64>>());
    for node in &nodes {
        assert_eq!(node.revision("S").unwrap(), 60);
        assert_eq!(node.tuples("S").unwrap().len(), 60);
        let changes = node.changes("S", None, None, 1000).unwrap();
        assert_eq!(changes.iter().map(|c| c.cursor.revision).collect::<Vec<_>>(), (1..=60).collect::<Vec<u64>>());
    }

    // Conditional writers racing on both nodes, each on its own tuples: every attempt lands at a
    // revision after the one it planned against and is never refused, since no other writer
    // touches its tuples.
    let threads: Vec<_> = (0..4)
        .map(|i| {
            let store = Arc::clone(&nodes[i % 2]);
            std::thread::spawn(move || {
                let mut refused = 0;
                for j in 0..5 {
                    let tuple = st(&format!("doc:c{i}-{j}#viewer@user:u"));
                    loop {
                        let planned = store.revision("S").unwrap();
                        let at = PlannedAt::revision(planned);
                        match store.write(
                            "S",
                            &WriteBatch::new(&[], std::slice::from_ref(&tuple), 1).by(Some("t")).planned_at(at),
                        ) {
                            Ok(revision) => {
                                assert!(revision > planned);
                                break;
                            }
                            Err(StoreError::RevisionMoved { current, .. }) => {
                                assert!(current > planned);
                                refused += 1;
                            }
                            Err(other) => panic!("{other}"),
                        }
                    }
                }
                refused
            })
        })
        .collect();
    let refused: u32 = threads.into_iter().map(|t| t.join().unwrap()).sum();
    assert_eq!(refused, 0, "writes of disjoint tuples are never refused");
    assert_eq!(nodes[1].revision("S").unwrap(), 80);
    let changes = nodes[1].changes("S", None, None, 1000).unwrap();
    assert_eq!(changes.len(), 80);
    assert_eq!(changes.iter().map(|c| c.cursor.revision).collect::<Vec<_>>(), (1..=80).collect::<Vec<u64>>());
    assert!(changes[60..].iter().all(|c| c.actor.as_deref() == Some("t")));
}

#[test]
#[cfg_attr(writ_no_postgres, ignore = "WRIT_TEST_POSTGRES_URL is not set (start a server with .ci/postgres.sh)")]
fn postgres_nodes_starting_at_once_migrate_exactly_once() {
    let server = postgres_url();
    let database = FreshDatabase::new(&server);
    let barrier = Arc::new(Barrier::new(4));
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let (barrier, url) = (Arc::clone(&barrier), database.url.clone());
            std::thread::spawn(move || {
                barrier.wait();
                PostgresStore::open(&url).map(|_| ())
            })
        })
        .collect();
    for thread in threads {
        assert_eq!(thread.join().unwrap(), Ok(()));
    }
    // Reopening applies nothing again and keeps the data.
    let store = database.open();
    store.create_store(&record("S")).unwrap();
    drop(store);
    assert_eq!(database.open().list_stores().unwrap(), vec![record("S")]);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let versions: Vec<i32> = runtime.block_on(async {
        let (client, connection) = tokio_postgres::connect(&database.url, tokio_postgres::NoTls).await.unwrap();
        tokio::spawn(connection);
        let rows = client.query("SELECT version FROM writ_schema_migrations ORDER BY version", &[]).await.unwrap();
        rows.iter().map(|row| row.get(0)).collect()
    });
    assert_eq!(versions, vec![1, 2, 3]);
}

#[test]
#[cfg_attr(writ_no_postgres, ignore = "WRIT_TEST_POSTGRES_URL is not set (start a server with .ci/postgres.sh)")]
fn postgres_store_answers_from_plain_threads_spawn_blocking_and_async_tasks() {
    let server = postgres_url();
    let database = FreshDatabase::new(&server);
    let store = Arc::new(database.open());
    store.create_store(&record("S")).unwrap();
    let plain = {
        let store = Arc::clone(&store);
        std::thread::spawn(move || store.write("S", &WriteBatch::new(&[], &[st("doc:1#viewer@user:a")], 1)))
            .join()
            .unwrap()
    };
    assert_eq!(plain, Ok(1));
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let (blocking, in_task) = runtime.block_on(async {
        let for_blocking = Arc::clone(&store);
        let blocking = tokio::task::spawn_blocking(move || {
            for_blocking.write("S", &WriteBatch::new(&[], &[st("doc:2#viewer@user:a")], 2))
        })
        .await
        .unwrap();
        // Even straight from an async worker (blocking it briefly), the call does not nest runtimes.
        let for_task = Arc::clone(&store);
        let in_task = tokio::spawn(async move { for_task.revision("S") }).await.unwrap();
        (blocking, in_task)
    });
    assert_eq!(blocking, Ok(2));
    assert_eq!(in_task, Ok(2));
    // A current-thread runtime, and dropping the last handle inside it, must not panic either.
    let single = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let tuples = single.block_on(async move {
        let tuples = store.tuples("S");
        drop(store);
        tuples
    });
    assert_eq!(tuples.unwrap(), vec![st("doc:1#viewer@user:a"), st("doc:2#viewer@user:a")]);
}

#[test]
#[cfg_attr(writ_no_postgres, ignore = "WRIT_TEST_POSTGRES_URL is not set (start a server with .ci/postgres.sh)")]
fn postgres_changes_on_one_node_wake_another() {
    let server = postgres_url();
    let database = FreshDatabase::new(&server);
    let (a, b) = (Arc::new(database.open()), database.open());
    assert!(a.is_shared());
    a.create_store(&record("S")).unwrap();
    // Take in whatever was announced so far (the create), then nothing more comes.
    a.wait_for_change(Duration::from_millis(500));
    assert!(!a.wait_for_change(Duration::from_millis(200)), "no change happened");
    let waiter = {
        let a = Arc::clone(&a);
        std::thread::spawn(move || a.wait_for_change(Duration::from_secs(10)))
    };
    std::thread::sleep(Duration::from_millis(100));
    b.write("S", &WriteBatch::new(&[], &[st("doc:1#viewer@user:a")], 1)).unwrap();
    assert!(waiter.join().unwrap(), "a write on node B must wake node A");
    // A change that lands while nobody waits is reported by the next wait, at once.
    b.write_model("S", "M", "{}").unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let started = std::time::Instant::now();
    assert!(a.wait_for_change(Duration::from_secs(10)));
    assert!(started.elapsed() < Duration::from_secs(1));
}

#[test]
#[cfg_attr(writ_no_postgres, ignore = "WRIT_TEST_POSTGRES_URL is not set (start a server with .ci/postgres.sh)")]
fn postgres_decision_log_matches_memory() {
    let server = postgres_url();
    let database = FreshDatabase::new(&server);
    let pg = database.open();
    let memory = MemoryStore::new();
    let decision = |i: i64, store: &str| decision(i, 1000 + i / 2, store);
    for s in [&pg as &dyn TupleStore, &memory] {
        s.create_store(&record("S")).unwrap();
        s.decision_log()
            .unwrap()
            .append_decisions((0..20).map(|i| decision(i, "S")).chain([decision(99, "nope")]).collect())
            .unwrap();
    }
    let records = |s: &dyn TupleStore, f: &DecisionFilter| -> Vec<DecisionRecord> {
        s.decision_log().unwrap().decisions("S", f).unwrap().into_iter().map(|(_, r)| r).collect()
    };
    let filters = [
        DecisionFilter { limit: 100, ..DecisionFilter::default() },
        DecisionFilter { limit: 3, ..DecisionFilter::default() },
        DecisionFilter { principal: Some("agent:bot".into()), limit: 100, ..DecisionFilter::default() },
        DecisionFilter { object: Some("doc:1".into()), allowed: Some(false), limit: 100, ..DecisionFilter::default() },
        DecisionFilter { since_ms: Some(1003), until_ms: Some(1007), limit: 100, ..DecisionFilter::default() },
        DecisionFilter { agent: Some("agent:bot".into()), limit: 100, ..DecisionFilter::default() },
        DecisionFilter { agent: Some("user:anne".into()), limit: 100, ..DecisionFilter::default() },
        DecisionFilter { tool: Some("send".into()), limit: 100, ..DecisionFilter::default() },
        DecisionFilter {
            agent: Some("agent:bot".into()),
            tool: Some("send".into()),
            limit: 2,
            ..DecisionFilter::default()
        },
    ];
    // The agent and tool filters select what the shared records say they should (see
    // `store_contract::decision`): chains through `agent:bot` are every third, `send` every fourth.
    assert_eq!(records(&memory, &filters[5]).len(), 7);
    assert!(records(&memory, &filters[6]).is_empty());
    assert_eq!(records(&memory, &filters[7]).len(), 5);
    assert_eq!(records(&memory, &filters[8]).len(), 2);
    for filter in &filters {
        assert_eq!(records(&pg, filter), records(&memory, filter), "{filter:?}");
    }
    // Paging by cursor reassembles the whole log.
    let mut paged = Vec::new();
    let mut before = None;
    loop {
        let page = pg.decisions("S", &DecisionFilter { before, limit: 6, ..DecisionFilter::default() }).unwrap();
        let Some(last) = page.last() else { break };
        before = Some(last.0);
        paged.extend(page.into_iter().map(|(_, r)| r));
    }
    assert_eq!(paged, records(&memory, &filters[0]));
    // Paging under the agent filter: every page whole (SQL filters), the cursor exact.
    let mut paged = Vec::new();
    let mut before = None;
    loop {
        let page = pg.decisions("S", &DecisionFilter { before, limit: 2, ..filters[5].clone() }).unwrap();
        let Some(last) = page.last() else { break };
        assert!(page.len() == 2 || paged.len() + page.len() == 7, "a short page in the middle");
        before = Some(last.0);
        paged.extend(page.into_iter().map(|(_, r)| r));
    }
    assert_eq!(paged, records(&memory, &filters[5]));
    assert_eq!(pg.trim_decisions("S", 12, 1002), memory.trim_decisions("S", 12, 1002));
    assert_eq!(records(&pg, &filters[0]), records(&memory, &filters[0]));
    assert_eq!(pg.decisions("nope", &filters[0]), Err(StoreError::StoreNotFound("nope".into())));
}
