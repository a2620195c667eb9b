//! List objects over the ~1M-tuple drive graph: a user 3 groups deep who sees 3 of 8 folder
//! trees, about 110k documents through folders 5 deep.

#![allow(
    missing_docs,
    clippy::expect_used,
    clippy::panic,
    reason = "a bench binary fails loudly on bad setup; criterion macros generate undocumented items"
)]

mod support;

use criterion::{criterion_group, criterion_main, Criterion};
use std::hint::black_box;

fn list_objects(c: &mut Criterion) {
    let workload = support::drive_workload();
    workload.verify();
    let (request, expected) = &workload.lookup;
    let store = workload.store();
    let mut group = c.benchmark_group("list_objects");
    group.bench_function(format!("folders_via_nested_groups/results={expected}/n={}", workload.tuple_count), |b| {
        b.iter(|| black_box(store.list_objects(black_box(request))))
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).measurement_time(std::time::Duration::from_secs(5));
    targets = list_objects
}
criterion_main!(benches);
