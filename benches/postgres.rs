//! Write throughput of `PostgresStore`: sequential `write` calls of 1 and of 100 new tuples each
//! (`postgres/write/tuples_per_write=N`, throughput in tuples/s), every one a committed,
//! acknowledged transaction with its changelog rows and revision bump.
//!
//! Needs `WRIT_TEST_POSTGRES_URL` (start a server with `.ci/postgres.sh`); without it the bench
//! says so and measures nothing. It works in a freshly created database, dropped at the end.
//! Run: `WRIT_TEST_POSTGRES_URL=$(bash .ci/postgres.sh) cargo bench --bench postgres`

#![allow(
    missing_docs,
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::panic,
    reason = "a bench binary fails loudly on bad setup; criterion macros generate undocumented items"
)]

/// The bench measures the engine as `writ serve` runs it: on mimalloc (see `src/main.rs`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use writ::store::{PostgresStore, StoreRecord, StoredTuple, TupleStore, WriteBatch};
use writ::Tuple;

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

/// `url` with its database name replaced by `database` (plain `postgres://.../db` URLs).
fn with_database(url: &str, database: &str) -> String {
    let (head, query) = url.split_once('?').map_or((url, String::new()), |(h, q)| (h, format!("?{q}")));
    let authority_start = head.find("://").map_or(0, |i| i + 3);
    let path_start = head[authority_start..].find('/').map_or(head.len(), |i| authority_start + i);
    format!("{}/{database}{query}", &head[..path_start])
}

fn bench_writes(c: &mut Criterion) {
    let Ok(server) = std::env::var("WRIT_TEST_POSTGRES_URL") else {
        eprintln!(
            "PostgreSQL absent (WRIT_TEST_POSTGRES_URL unset; start one with .ci/postgres.sh): skipped postgres/write"
        );
        return;
    };
    let name = format!("writ_bench_{}", std::process::id());
    // Two calls: PostgreSQL runs neither statement inside a (multi-statement) transaction.
    admin(&server, &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
    admin(&server, &format!("CREATE DATABASE {name}"));
    {
        let store = PostgresStore::open(&with_database(&server, &name)).unwrap();
        let record = StoreRecord { id: "BENCH".into(), name: "bench".into(), created_at_ms: 0, updated_at_ms: 0 };
        store.create_store(&record).unwrap();
        let mut next = 0u64;
        let mut group = c.benchmark_group("postgres/write");
        for batch in [1usize, 100] {
            group.throughput(Throughput::Elements(batch as u64));
            group.bench_function(format!("tuples_per_write={batch}"), |b| {
                b.iter(|| {
                    let tuples: Vec<StoredTuple> = (0..batch)
                        .map(|_| {
                            next += 1;
                            StoredTuple::new(format!("doc:{next}#viewer@user:u{}", next % 97).parse::<Tuple>().unwrap())
                        })
                        .collect();
                    store.write("BENCH", &WriteBatch::new(&[], &tuples, 0)).unwrap()
                })
            });
        }
        group.finish();
        // Sanity: every measured write landed, one revision each.
        assert_eq!(store.tuples("BENCH").unwrap().len() as u64, next);
    }
    admin(&server, &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).measurement_time(std::time::Duration::from_secs(5));
    targets = bench_writes
}
criterion_main!(benches);
