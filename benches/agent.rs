//! Agent authorization over the ~1M-tuple drive graph (with `define delegate: [user]` added to
//! `user`): the visibility filter of candidate ids by both strategies, and an OBO check of a
//! 3-principal chain against the plain check of its human. IDs look like
//! `filter/bitmap/ids=10000/n=1062000` and `obo/nested_groups_3/chain=3/n=1062000`.
//! Every answer is verified before anything is timed.

#![allow(
    missing_docs,
    clippy::expect_used,
    clippy::panic,
    reason = "a bench binary fails loudly on bad setup; criterion macros generate undocumented items"
)]

#[path = "support/cpu.rs"]
mod cpu;
mod support;

use criterion::measurement::Measurement;
use criterion::Criterion;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::hint::black_box;
use writ::engine::{CheckRequest, FilterRequest, FilterStrategy, OboCheckRequest};
use writ::{Engine, EngineConfig, Model};

struct AgentWorkload {
    engine: Engine,
    store_id: String,
    tuple_count: usize,
}

/// The drive graph plus delegation chains: `u0 → a1 → a2` (all three in the leaf group `g3_0`,
/// so each reaches `document:d2` three groups deep) and `direct → direct2 → direct3` (each a
/// direct viewer of `document:d1`).
fn agent_workload() -> AgentWorkload {
    let mut tuples = support::drive_tuples(42);
    for (object, relation, user) in [
        ("group:g3_0", "member", "user:a1"),
        ("group:g3_0", "member", "user:a2"),
        ("user:u0", "delegate", "user:a1"),
        ("user:a1", "delegate", "user:a2"),
        ("document:d1", "viewer", "user:direct2"),
        ("document:d1", "viewer", "user:direct3"),
        ("user:direct", "delegate", "user:direct2"),
        ("user:direct2", "delegate", "user:direct3"),
    ] {
        tuples.push(support::tuple(object, relation, user));
    }
    let text =
        support::model_text().replacen("type user\n", "type user\n  relations\n    define delegate: [user]\n", 1);
    let model = Model::parse_dsl(&text).expect("the patched drive model is valid");
    let (backend, store_id) = support::filled_backend_with(&tuples, &model);
    let engine = Engine::open(Box::new(backend), EngineConfig::default()).expect("open bench engine");
    AgentWorkload { engine, store_id, tuple_count: tuples.len() }
}

/// Built once for both groups (building the graph takes longer than timing it).
fn workload() -> &'static AgentWorkload {
    static WORKLOAD: std::sync::OnceLock<AgentWorkload> = std::sync::OnceLock::new();
    WORKLOAD.get_or_init(agent_workload)
}

fn filter_request(ids: &[String], strategy: FilterStrategy) -> FilterRequest {
    FilterRequest {
        principals: vec!["user:u0".into()],
        relation: "viewer".into(),
        object_type: "document".into(),
        ids: ids.to_vec(),
        strategy,
        ..FilterRequest::default()
    }
}

/// `count` document ids drawn from all 300k (about 3/8 visible to `user:u0`), seeded.
fn candidate_ids(count: usize) -> Vec<String> {
    let mut rng = StdRng::seed_from_u64(count as u64);
    (0..count).map(|_| format!("d{}", rng.gen_range(0..support::DOCUMENTS))).collect()
}

fn filter<M: Measurement>(c: &mut Criterion<M>) {
    let workload = workload();
    let store = workload.engine.store(&workload.store_id).expect("the bench store exists");
    let mut group = c.benchmark_group("filter");
    for count in [16, 128, 1024, 10_000] {
        let ids = candidate_ids(count);
        let (checks_request, bitmap_request) =
            (filter_request(&ids, FilterStrategy::Checks), filter_request(&ids, FilterStrategy::Bitmap));
        let by_checks = store.filter(&checks_request).expect("filter").value;
        let by_bitmap = store.filter(&bitmap_request).expect("filter").value;
        assert_eq!(by_checks, by_bitmap, "the strategies disagree on {count} ids");
        let expected = ids
            .iter()
            .filter(|id| {
                let request = CheckRequest {
                    object: format!("document:{id}"),
                    relation: "viewer".into(),
                    user: "user:u0".into(),
                    ..CheckRequest::default()
                };
                store.check(&request).expect("check").value
            })
            .count();
        assert_eq!(by_checks.allowed_ids.len(), expected, "filter disagrees with check on {count} ids");
        assert!(expected > 0 && expected < count, "the candidates must mix visible and hidden ids");
        for (name, strategy) in [("checks", FilterStrategy::Checks), ("bitmap", FilterStrategy::Bitmap)] {
            let request = filter_request(&ids, strategy);
            group.bench_function(format!("{name}/ids={count}/n={}", workload.tuple_count), |b| {
                b.iter(|| black_box(store.filter(black_box(&request))))
            });
        }
    }
    group.finish();
}

/// Times `plain` and `chain` in alternating rounds of 256 calls each, 400 rounds, and prints
/// the median of the per-round ratios: on a shared, noisy machine the two halves of one round see
/// the same load, so their ratio is steadier than two criterion runs taken seconds apart.
fn print_interleaved_ratio(scenario: &str, plain: impl Fn() -> bool, chain: impl Fn() -> bool) {
    const ROUNDS: usize = 400;
    const CALLS: u32 = 256;
    let time = |f: &dyn Fn() -> bool| {
        let started = std::time::Instant::now();
        for _ in 0..CALLS {
            assert!(black_box(f()));
        }
        started.elapsed().as_secs_f64() / f64::from(CALLS)
    };
    let mut ratios = Vec::with_capacity(ROUNDS);
    let (mut plain_times, mut chain_times) = (Vec::with_capacity(ROUNDS), Vec::with_capacity(ROUNDS));
    for _ in 0..ROUNDS {
        let (p, c) = (time(&plain), time(&chain));
        ratios.push(c / p);
        plain_times.push(p);
        chain_times.push(c);
    }
    let median = |values: &mut Vec<f64>| {
        values.sort_by(f64::total_cmp);
        values[values.len() / 2]
    };
    println!(
        "obo/{scenario}: interleaved medians over {ROUNDS} rounds: plain check {:.0} ns, chain of 3 {:.0} ns, \
         ratio {:.2}x",
        median(&mut plain_times) * 1e9,
        median(&mut chain_times) * 1e9,
        median(&mut ratios)
    );
}

fn obo<M: Measurement>(c: &mut Criterion<M>) {
    let workload = workload();
    let store = workload.engine.store(&workload.store_id).expect("the bench store exists");
    let mut group = c.benchmark_group("obo");
    for (scenario, object, chain) in [
        ("nested_groups_3", "document:d2", ["user:u0", "user:a1", "user:a2"]),
        ("direct", "document:d1", ["user:direct", "user:direct2", "user:direct3"]),
    ] {
        let plain = CheckRequest {
            object: object.into(),
            relation: "viewer".into(),
            user: chain[0].into(),
            ..CheckRequest::default()
        };
        assert!(store.check(&plain).expect("check").value, "{scenario}: the plain check allows");
        let request = OboCheckRequest {
            principals: chain.iter().map(|p| p.to_string()).collect(),
            relation: "viewer".into(),
            object: object.into(),
            ..OboCheckRequest::default()
        };
        let answer = store.obo_check(&request).expect("obo check").value;
        assert!(answer.allowed, "{scenario}: the chain is allowed: {:?}", answer.denied_by);
        let mut broken = request.clone();
        broken.principals.swap(1, 2);
        assert!(!store.obo_check(&broken).expect("obo check").value.allowed, "{scenario}: a swapped chain denies");
        print_interleaved_ratio(scenario, || store.check(&plain).is_ok(), || store.obo_check(&request).is_ok());
        group.bench_function(format!("{scenario}/plain_check/n={}", workload.tuple_count), |b| {
            b.iter(|| black_box(store.check(black_box(&plain))))
        });
        group.bench_function(format!("{scenario}/chain=3/n={}", workload.tuple_count), |b| {
            b.iter(|| black_box(store.obo_check(black_box(&request))))
        });
    }
    group.finish();
}

/// Wall time by default; the process's CPU time with `WRIT_BENCH_CPU=1` (see `support/cpu.rs`).
fn main() {
    fn run<M: Measurement + 'static>(criterion: Criterion<M>) {
        let mut criterion =
            criterion.sample_size(20).measurement_time(std::time::Duration::from_secs(2)).configure_from_args();
        obo(&mut criterion);
        filter(&mut criterion);
        criterion.final_summary();
    }
    if std::env::var_os("WRIT_BENCH_CPU").is_some() {
        run(Criterion::default().with_measurement(cpu::CpuTime));
    } else {
        run(Criterion::default());
    }
}
