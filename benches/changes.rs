//! The change feed by object type (issue 29): `GET /stores/{id}/changes?type=X` on the sled store,
//! timed at the store (`SledStore::changes`), where the type filter is served.
//!
//! The workload is 1,000,000 changelog entries in 1,000 writes of 1,000 tuples, where every 100th
//! entry is of the rare type `folder` (1%) and the rest are `doc`. Each case reads one page of
//! 100 `folder` entries (ids like `changes/by_type/rare_1pct/first/n=1000000`): from the start of
//! the feed, and resumed after the half-way `folder` entry, each checked against the entries it
//! must return (known by construction) before timing. An unfiltered page from the start is timed
//! beside them as the floor. The data dir sits under the system temp dir and is removed at exit.

#![allow(
    missing_docs,
    clippy::expect_used,
    clippy::panic,
    reason = "a bench binary fails loudly on bad setup; criterion macros generate undocumented items"
)]

use criterion::{criterion_group, criterion_main, Criterion};
use std::hint::black_box;
use std::path::PathBuf;
use writ::store::{ChangeCursor, SledStore, StoreRecord, StoredTuple, TupleStore, WriteBatch};

const STORE: &str = "01JCHANGESSTORE00000000000";
const WRITES: u64 = 1_000;
const PER_WRITE: u64 = 1_000;
/// One entry in `RARE_EVERY` is of the rare type.
const RARE_EVERY: u64 = 100;
const PAGE: usize = 100;

/// The cursor of the `n`-th changelog entry (0-based) of the workload.
fn cursor_of(n: u64) -> ChangeCursor {
    ChangeCursor { revision: n / PER_WRITE + 1, seq: u32::try_from(n % PER_WRITE).expect("seq fits") }
}

/// Removes the data dir when the bench ends.
struct DataDir(PathBuf);

impl Drop for DataDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn build() -> (DataDir, SledStore) {
    let dir = DataDir(std::env::temp_dir().join(format!("writ-bench-changes-{}", std::process::id())));
    let store = SledStore::open(&dir.0).expect("open the sled store");
    store
        .create_store(&StoreRecord { id: STORE.into(), name: "changes".into(), created_at_ms: 0, updated_at_ms: 0 })
        .expect("create the store");
    let started = std::time::Instant::now();
    for write in 0..WRITES {
        let tuples: Vec<StoredTuple> = (write * PER_WRITE..(write + 1) * PER_WRITE)
            .map(|n| {
                let ty = if n.is_multiple_of(RARE_EVERY) { "folder" } else { "doc" };
                StoredTuple::new(format!("{ty}:{n}#viewer@user:u{}", n % 997).parse().expect("a tuple"))
            })
            .collect();
        store.write(STORE, &WriteBatch::new(&[], &tuples, 1)).expect("write");
    }
    println!("wrote {} changes in {:.1?}", WRITES * PER_WRITE, started.elapsed());
    (dir, store)
}

fn by_type(c: &mut Criterion) {
    let (_dir, store) = build();
    let total = WRITES * PER_WRITE;
    let mut group = c.benchmark_group("changes/by_type/rare_1pct");
    let halfway = total / 2;
    for (name, after, first_rare) in [("first", None, 0), ("resumed", Some(cursor_of(halfway)), halfway + RARE_EVERY)] {
        let page = store.changes(STORE, after, Some("folder"), PAGE).expect("read a page");
        let expected: Vec<ChangeCursor> = (0..PAGE as u64).map(|i| cursor_of(first_rare + i * RARE_EVERY)).collect();
        assert_eq!(page.iter().map(|c| c.cursor).collect::<Vec<_>>(), expected, "page {name}");
        assert!(page.iter().all(|c| c.tuple.tuple.object.object_type == "folder"), "page {name}: only folders");
        group.bench_function(format!("{name}/n={total}"), |b| {
            b.iter(|| black_box(store.changes(STORE, black_box(after), Some("folder"), PAGE).expect("read a page")))
        });
    }
    group.finish();
    let unfiltered = store.changes(STORE, None, None, PAGE).expect("read a page");
    assert_eq!(unfiltered.last().map(|c| c.cursor), Some(cursor_of(PAGE as u64 - 1)));
    c.bench_function(&format!("changes/unfiltered/first/n={total}"), |b| {
        b.iter(|| black_box(store.changes(STORE, None, None, PAGE).expect("read a page")))
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).measurement_time(std::time::Duration::from_secs(5));
    targets = by_type
}
criterion_main!(benches);
