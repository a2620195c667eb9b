//! Check throughput while a writer writes (issue #6: "while one writer writes 1,000 tuples/s,
//! check throughput stays ≥ 80% of read-only"), in process on the ~1M-tuple drive graph.
//!
//! Two reader threads run the drive workload's check queries (every answer verified first) in a
//! loop for `WRIT_CONTENTION_SECONDS` (default 3) seconds per phase. Phases alternate, three of
//! each: read-only, then read while one writer thread writes one new tuple every millisecond
//! (paced against the clock, so it makes up for a late write). Each phase prints its checks/s;
//! the closing line gives the medians and their ratio, and the writes/s the writer reached.
//! Run: `cargo bench --bench contention`.

#![allow(missing_docs, clippy::expect_used, clippy::panic, reason = "a bench binary fails loudly on bad setup")]

mod support;

use std::hint::black_box;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use writ::engine::WriteRequest;
use writ::store::StoredTuple;
use writ::Tuple;

const READERS: usize = 2;
const WRITES_PER_SECOND: u64 = 1_000;
const PHASES: usize = 3;

/// Checks per second over `seconds` with `READERS` threads; with `writer`, one more thread writes
/// at `WRITES_PER_SECOND`. Returns (checks/s, writes/s).
fn phase(workload: &support::Workload, seconds: f64, writer: bool, next_document: &AtomicU64) -> (f64, f64) {
    let stop = AtomicBool::new(false);
    let checks = AtomicU64::new(0);
    let writes = AtomicU64::new(0);
    let store = &workload.store();
    let started = Instant::now();
    std::thread::scope(|scope| {
        for reader in 0..READERS {
            let (stop, checks) = (&stop, &checks);
            scope.spawn(move || {
                let mut done = 0u64;
                let queries = &workload.checks;
                let mut i = reader;
                while !stop.load(Ordering::Relaxed) {
                    for _ in 0..64 {
                        let query = &queries[i % queries.len()];
                        black_box(store.check(&query.request).expect("check"));
                        i += 1;
                    }
                    done += 64;
                }
                checks.fetch_add(done, Ordering::Relaxed);
            });
        }
        if writer {
            let (stop, writes) = (&stop, &writes);
            scope.spawn(move || {
                let interval = Duration::from_nanos(1_000_000_000 / WRITES_PER_SECOND);
                let mut due = Instant::now();
                while !stop.load(Ordering::Relaxed) {
                    let n = next_document.fetch_add(1, Ordering::Relaxed);
                    let tuple = Tuple::from_parts(&format!("document:w{n}"), "viewer", "user:writer")
                        .expect("well-formed tuple");
                    let request = WriteRequest { writes: vec![StoredTuple::new(tuple)], ..WriteRequest::default() };
                    store.write(request).expect("write");
                    writes.fetch_add(1, Ordering::Relaxed);
                    due += interval;
                    if let Some(wait) = due.checked_duration_since(Instant::now()) {
                        std::thread::sleep(wait);
                    }
                }
            });
        }
        std::thread::sleep(Duration::from_secs_f64(seconds));
        stop.store(true, Ordering::Relaxed);
    });
    let elapsed = started.elapsed().as_secs_f64();
    (checks.load(Ordering::Relaxed) as f64 / elapsed, writes.load(Ordering::Relaxed) as f64 / elapsed)
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` passes nothing: run only when benching.
    if !std::env::args().any(|arg| arg == "--bench") {
        return;
    }
    let seconds: f64 = std::env::var("WRIT_CONTENTION_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(3.0);
    let workload = support::drive_workload();
    workload.verify();
    let next_document = AtomicU64::new(0);
    let (mut read_only, mut with_writer, mut write_rates) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..PHASES {
        let (alone, _) = phase(&workload, seconds, false, &next_document);
        let (shared, writes) = phase(&workload, seconds, true, &next_document);
        println!(
            "contention round {round}: read-only {alone:.0} checks/s; with a writer {shared:.0} checks/s \
             ({writes:.0} writes/s)"
        );
        read_only.push(alone);
        with_writer.push(shared);
        write_rates.push(writes);
    }
    let (alone, shared) = (median(read_only), median(with_writer));
    println!(
        "contention/n={}: {READERS} readers, median read-only {alone:.0} checks/s, with one writer at \
         {:.0} writes/s {shared:.0} checks/s: {:.1}% of read-only",
        workload.tuple_count,
        median(write_rates),
        100.0 * shared / alone
    );
}
