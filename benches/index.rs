//! Index build: opening an engine over a store of ~1M tuples rebuilds the in-memory index.
//! Throughput is reported in tuples per second.

#![allow(
    missing_docs,
    clippy::expect_used,
    clippy::panic,
    reason = "a bench binary fails loudly on bad setup; criterion macros generate undocumented items"
)]

mod support;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use writ::{Engine, EngineConfig};

fn build(c: &mut Criterion) {
    let tuples = support::drive_tuples(42);
    let mut group = c.benchmark_group("index");
    group.throughput(Throughput::Elements(tuples.len() as u64));
    group.bench_function(format!("build_from_store/n={}", tuples.len()), |b| {
        b.iter_with_setup(
            || support::filled_backend(&tuples).0,
            |backend| Engine::open(Box::new(backend), EngineConfig::default()).expect("open engine"),
        )
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(10).measurement_time(std::time::Duration::from_secs(20));
    targets = build
}
criterion_main!(benches);
