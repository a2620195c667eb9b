//! In-process explain latency (issue 28) on the ~1M-tuple drive graph of `support/`: a 5-deep
//! folder check (`deep_arrow_5`) and an 8-deep nested-group check (`nested_groups_8`, answered
//! from the group closure; `nested_groups_8_walk`, walked group by group), each allowed and
//! denied, with the plain check of the same query beside it. IDs look like
//! `explain/deep_arrow_5/deny/n=1062000` and `explain/check/deep_arrow_5/deny/n=1062000`.
//! Every explanation's answer is checked against the query's known one before timing.

#![allow(
    missing_docs,
    clippy::expect_used,
    clippy::panic,
    reason = "a bench binary fails loudly on bad setup; criterion macros generate undocumented items"
)]

mod support;

use criterion::{criterion_group, criterion_main, Criterion};
use std::hint::black_box;
use writ::engine::ExplainNode;

/// The scenarios timed: the two shapes, and the nested groups walked.
const SCENARIOS: [&str; 3] = ["deep_arrow_5", "nested_groups_8", "nested_groups_8_walk"];

fn node_count(node: &ExplainNode) -> usize {
    1 + node.children.iter().map(node_count).sum::<usize>()
}

fn explain(c: &mut Criterion) {
    let workload = support::drive_workload();
    let engine = &workload.engine;
    let store = engine.store(&workload.store_id).expect("the workload's store");
    let mut group = c.benchmark_group("explain");
    for query in workload.checks.iter().filter(|q| SCENARIOS.contains(&q.scenario)) {
        let explanation = store.explain(&query.request).expect("explain answers").value;
        assert_eq!(explanation.allowed, query.expected, "{} {:?}", query.scenario, query.request);
        println!(
            "{} {}: {} nodes, path {}, would_allow {:?}",
            query.scenario,
            if query.expected { "allow" } else { "deny" },
            node_count(&explanation.tree),
            explanation.path.len(),
            explanation.would_allow.iter().map(ToString::to_string).collect::<Vec<_>>()
        );
        let answer = if query.expected { "allow" } else { "deny" };
        let suffix = format!("{}/{answer}/n={}", query.scenario, workload.tuple_count);
        group.bench_function(&suffix, |b| {
            b.iter(|| black_box(store.explain(black_box(&query.request)).expect("explain")))
        });
        group.bench_function(format!("check/{suffix}"), |b| {
            b.iter(|| black_box(store.check(black_box(&query.request)).expect("check")))
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(50).measurement_time(std::time::Duration::from_secs(3));
    targets = explain
}
criterion_main!(benches);
