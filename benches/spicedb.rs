//! Writ on the workload of SpiceDB's `bench_spicedb.py` (`../shared/peers/spicedb`), measured the
//! way that script measures SpiceDB, so `benches/peers.sh` can print the two side by side.
//!
//! Reads `$WRIT_PEER_WORKLOAD/relationships.txt` and `queries.txt` (made by
//! `benches/peers/spicedb_workload.py` from the peer's own generator) and, when present,
//! `answers.txt` (SpiceDB's answers to the first queries), which every Writ answer must match.
//! The schema is the peer's `DEMO_SCHEMA` in OpenFGA's language. Measures, for `WRIT_PEER_SECONDS`
//! (default 5) each: serial single checks (per second, p50, p99), the same from every core,
//! positive direct-viewer checks, and bulk checks of 10 and 100 items (items per second), and
//! prints one `key value` line each. Without `WRIT_PEER_WORKLOAD` it says so and exits.

#![allow(missing_docs, clippy::expect_used, clippy::panic, reason = "a bench binary fails loudly on bad setup")]

/// The bench measures the engine as `writ serve` runs it: on mimalloc (see `src/main.rs`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::hint::black_box;
use std::time::{Duration, Instant};
use writ::engine::{CheckRequest, WriteRequest};
use writ::store::StoredTuple;
use writ::{Engine, Model, Tuple};

const MODEL: &str = "model
  schema 1.1
type user
type group
  relations
    define member: [user, group#member]
type folder
  relations
    define parent: [folder]
    define viewer: [user, group#member]
    define view: viewer or view from parent
type document
  relations
    define parent: [folder]
    define viewer: [user, group#member]
    define view: viewer or view from parent
";

fn request(line: &str) -> CheckRequest {
    let mut parts = line.split_whitespace();
    let (Some(object), Some(relation), Some(user)) = (parts.next(), parts.next(), parts.next()) else {
        panic!("bad query line `{line}`");
    };
    CheckRequest { object: object.into(), relation: relation.into(), user: user.into(), ..CheckRequest::default() }
}

/// Calls `f(i)` for about `seconds` (at least once): (calls, elapsed, sorted latencies).
fn run_for(seconds: f64, mut f: impl FnMut(usize)) -> (usize, Duration, Vec<Duration>) {
    let mut latencies = Vec::new();
    let started = Instant::now();
    let end = Duration::from_secs_f64(seconds);
    let mut i = 0;
    while i == 0 || started.elapsed() < end {
        let t = Instant::now();
        f(i);
        latencies.push(t.elapsed());
        i += 1;
    }
    latencies.sort_unstable();
    (i, started.elapsed(), latencies)
}

fn pct_us(sorted: &[Duration], q: f64) -> f64 {
    let i = ((sorted.len() as f64 * q) as usize).min(sorted.len() - 1);
    sorted[i].as_secs_f64() * 1e6
}

fn main() {
    let Ok(dir) = std::env::var("WRIT_PEER_WORKLOAD") else {
        println!("spicedb bench skipped: set WRIT_PEER_WORKLOAD (benches/peers.sh does)");
        return;
    };
    let seconds: f64 = std::env::var("WRIT_PEER_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(5.0);
    let read = |name: &str| {
        std::fs::read_to_string(format!("{dir}/{name}")).unwrap_or_else(|e| panic!("cannot read {dir}/{name}: {e}"))
    };
    let rels: Vec<StoredTuple> = read("relationships.txt")
        .lines()
        .map(|l| StoredTuple::new(l.parse::<Tuple>().expect("relationship")))
        .collect();
    let queries: Vec<CheckRequest> = read("queries.txt").lines().map(request).collect();

    let engine = Engine::in_memory();
    let store = engine.create_store("spicedb-bench").expect("create store").id;
    let store = engine.store(&store).expect("the bench store exists");
    store.write_model(Model::parse_dsl(MODEL).expect("model")).expect("write model");
    let started = Instant::now();
    for chunk in rels.chunks(1000) {
        store.write(WriteRequest { writes: chunk.to_vec(), ..WriteRequest::default() }).expect("write");
    }
    let write_s = started.elapsed().as_secs_f64();
    println!("relationships {}", rels.len());
    println!("write_rels_per_s {:.0}", rels.len() as f64 / write_s);

    if let Ok(answers) = std::fs::read_to_string(format!("{dir}/answers.txt")) {
        let mut compared = 0;
        for (line, query) in answers.lines().zip(&queries) {
            let expected = line.trim() == "true";
            let got = store.check(query).expect("check").value;
            assert_eq!(got, expected, "Writ and SpiceDB disagree on {query:?}");
            compared += 1;
        }
        println!("answers_matching_spicedb {compared}");
    }
    let positive = queries.iter().filter(|q| store.check(q).expect("check").value).count();
    println!("positive_rate_random {:.3}", positive as f64 / queries.len() as f64);

    let check = |q: &CheckRequest| black_box(store.check(q).expect("check").value);
    let (n, elapsed, lat) = run_for(seconds, |i| {
        check(&queries[i % queries.len()]);
    });
    println!("check_serial_per_s {:.0}", n as f64 / elapsed.as_secs_f64());
    println!("check_p50_us {:.2}", pct_us(&lat, 0.5));
    println!("check_p99_us {:.2}", pct_us(&lat, 0.99));

    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let started = Instant::now();
    let total: usize = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|k| {
                let check = &check;
                let queries = &queries;
                scope.spawn(move || {
                    let (mut i, mut count) = (k * 997, 0);
                    while started.elapsed().as_secs_f64() < seconds {
                        check(&queries[i % queries.len()]);
                        i += 1;
                        count += 1;
                    }
                    count
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("thread")).sum()
    });
    println!("check_threads{threads}_per_s {:.0}", total as f64 / started.elapsed().as_secs_f64());

    let positives: Vec<CheckRequest> = rels
        .iter()
        .map(|t| &t.tuple)
        .filter(|t| {
            t.object.object_type == "document" && t.relation == "viewer" && t.subject.to_string().starts_with("user:")
        })
        .take(5000)
        .map(|t| CheckRequest {
            object: t.object.to_string(),
            relation: "view".into(),
            user: t.subject.to_string(),
            ..CheckRequest::default()
        })
        .collect();
    let (n, elapsed, _) = run_for(seconds / 2.0, |i| {
        assert!(check(&positives[i % positives.len()]));
    });
    println!("check_positive_direct_per_s {:.0}", n as f64 / elapsed.as_secs_f64());

    // A bulk check is its items checked in turn on one snapshot, as `POST .../batch-check` does.
    for batch in [10usize, 100] {
        let batches: Vec<&[CheckRequest]> = queries.chunks(batch).collect();
        let (n, elapsed, _) = run_for(seconds, |i| {
            for q in batches[i % batches.len()] {
                check(q);
            }
        });
        println!("bulk{batch}_items_per_s {:.0}", (n * batch) as f64 / elapsed.as_secs_f64());
    }
}
