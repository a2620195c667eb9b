//! In-process check latency on the ~1M-tuple drive graph, one bench per scenario and answer.
//! IDs look like `check/deep_arrow_5/allow/n=1062000`.

#![allow(
    missing_docs,
    clippy::expect_used,
    clippy::panic,
    reason = "a bench binary fails loudly on bad setup; criterion macros generate undocumented items"
)]

mod support;

use criterion::{criterion_group, criterion_main, Criterion};
use std::hint::black_box;

fn check(c: &mut Criterion) {
    let workload = support::drive_workload();
    workload.verify();
    let store = workload.store();
    let mut group = c.benchmark_group("check");
    for query in &workload.checks {
        let answer = if query.expected { "allow" } else { "deny" };
        let id = format!("{}/{answer}/n={}", query.scenario, workload.tuple_count);
        group.bench_function(id, |b| b.iter(|| black_box(store.check(black_box(&query.request)))));
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(50).measurement_time(std::time::Duration::from_secs(3));
    targets = check
}
criterion_main!(benches);
