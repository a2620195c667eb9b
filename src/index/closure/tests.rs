//! The closure against plain graph search after random write and delete sequences (cycles,
//! self-loops, conditioned edges, deletes that split chains), and its memory on the bench graph.

use super::super::{Index, ObjectBitmap, SubjectKind, View};
use crate::tuple::{Context, Tuple, TupleCondition};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::{BTreeMap, BTreeSet};

const GROUPS: u32 = 8;

fn edge(above: u32, below: u32) -> Tuple {
    format!("group:g{above}#member@group:g{below}#member").parse().unwrap()
}

fn conditioned(mut tuple: Tuple) -> Tuple {
    tuple.condition = Some(TupleCondition { name: "c".into(), context: Context::default() });
    tuple
}

/// Every group's reach by breadth-first search over the unconditioned edges among `tuples`.
fn reference(tuples: &[Tuple]) -> BTreeMap<String, (BTreeSet<String>, u32)> {
    let mut up: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for tuple in tuples {
        if tuple.condition.is_some() || tuple.relation != "member" {
            continue;
        }
        if let crate::tuple::Subject::Userset { object, relation } = &tuple.subject {
            if object.object_type == "group" && relation == "member" {
                up.entry(object.id.clone()).or_default().push(tuple.object.id.clone());
            }
        }
    }
    let mut out = BTreeMap::new();
    for start in up.keys() {
        let mut reached = BTreeSet::new();
        let mut height = 0;
        let mut queue = std::collections::VecDeque::from([(start.clone(), 0u32)]);
        while let Some((group, distance)) = queue.pop_front() {
            for above in up.get(&group).into_iter().flatten() {
                if reached.insert(above.clone()) {
                    height = height.max(distance + 1);
                    queue.push_back((above.clone(), distance + 1));
                }
            }
        }
        if !reached.is_empty() {
            out.insert(start.clone(), (reached, height));
        }
    }
    out
}

/// The index's closure of `group#member`, by name, with heights.
fn closure_of(index: &Index) -> BTreeMap<String, (BTreeSet<String>, u32)> {
    let view = View::new(index);
    let Some(group) = view.type_id("group") else { return BTreeMap::new() };
    let Some(member) = view.relation_id("member") else { return BTreeMap::new() };
    let Some(closure) = index.closures.get(&(group, member)) else { return BTreeMap::new() };
    closure
        .reach
        .iter()
        .map(|(&id, reach)| {
            let names = reach.groups.objects().map(|g| view.object_name(group, g).unwrap().to_string()).collect();
            (view.object_name(group, id).unwrap().to_string(), (names, reach.height))
        })
        .collect()
}

fn assert_matches(index: &Index, step: usize) {
    let tuples = index.tuples();
    let expected = reference(&tuples);
    let actual = closure_of(index);
    let sets = |m: &BTreeMap<String, (BTreeSet<String>, u32)>| {
        m.iter().map(|(k, (s, _))| (k.clone(), s.clone())).collect::<BTreeMap<_, _>>()
    };
    assert_eq!(sets(&actual), sets(&expected), "closure sets differ from graph search at step {step}");
    for (group, (_, height)) in &expected {
        assert!(actual[group].1 >= *height, "height of {group} below the true distance at step {step}");
    }
    // The sets are a pure function of the tuples: a fresh build agrees.
    assert_eq!(sets(&closure_of(&Index::build(tuples.iter()))), sets(&expected), "build differs at step {step}");
}

#[test]
fn closure_equals_graph_search_after_random_writes_and_deletes() {
    for seed in 0..24u64 {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut index = Index::new();
        for step in 0..100 {
            let above = rng.gen_range(0..GROUPS);
            let below = rng.gen_range(0..GROUPS);
            match rng.gen_range(0..10) {
                0..=4 => {
                    index.insert(&edge(above, below));
                }
                5 => {
                    // Rewrites an edge (new or present) with a condition: it stops counting.
                    index.insert(&conditioned(edge(above, below)));
                }
                6..=8 => {
                    // Deletes a present edge when there is one, splitting chains and cycles.
                    let present: Vec<Tuple> = index
                        .tuples()
                        .into_iter()
                        .filter(|t| matches!(t.subject, crate::tuple::Subject::Userset { .. }))
                        .collect();
                    if !present.is_empty() {
                        let victim = present[rng.gen_range(0..present.len())].clone();
                        assert!(index.remove(&victim));
                    }
                }
                _ => {
                    index.insert(&format!("group:g{above}#member@user:u{below}").parse().unwrap());
                }
            }
            assert_matches(&index, step);
        }
    }
}

#[test]
fn deleting_the_middle_of_a_chain_splits_it() {
    let mut index = Index::new();
    for level in 0..5 {
        index.insert(&edge(level, level + 1));
    }
    assert_eq!(closure_of(&index)["g5"].0.len(), 5);
    assert_eq!(closure_of(&index)["g5"].1, 5);
    index.remove(&edge(2, 3));
    let closure = closure_of(&index);
    assert_eq!(closure["g5"].0, BTreeSet::from(["g3".to_string(), "g4".to_string()]));
    assert_eq!(closure["g5"].1, 2);
    assert_eq!(closure["g2"].0, BTreeSet::from(["g0".to_string(), "g1".to_string()]));
    assert!(!closure.contains_key("g0"));
}

#[test]
fn a_cycle_reaches_itself_until_it_is_broken() {
    let mut index = Index::new();
    index.insert(&edge(0, 1));
    index.insert(&edge(1, 2));
    index.insert(&edge(2, 0));
    let all: BTreeSet<String> = ["g0", "g1", "g2"].iter().map(ToString::to_string).collect();
    for group in &all {
        assert_eq!(closure_of(&index)[group].0, all);
    }
    index.remove(&edge(1, 2));
    let closure = closure_of(&index);
    // Left: g1 → g0 → g2.
    assert_eq!(closure["g1"].0, BTreeSet::from(["g0".to_string(), "g2".to_string()]));
    assert_eq!(closure["g0"].0, BTreeSet::from(["g2".to_string()]));
    assert!(!closure.contains_key("g2"));
}

#[test]
fn a_conditioned_edge_is_left_out_and_the_view_falls_back() {
    let mut index = Index::new();
    index.insert(&edge(0, 1));
    index.insert(&conditioned(edge(1, 2)));
    assert!(!closure_of(&index).contains_key("g2"));
    let view = View::new(&index);
    let (group, member) = (view.type_id("group").unwrap(), view.relation_id("member").unwrap());
    assert!(view.closure(group, member).is_none(), "a relation with conditions is answered the ordinary way");
    index.insert(&edge(1, 2));
    assert_eq!(closure_of(&index)["g2"].0.len(), 2);
    assert!(View::new(&index).closure(group, member).is_some());
    let overlay = super::super::Overlay::new(&index, [&edge(3, 0)]);
    assert!(overlay.view(&index).closure(group, member).is_none(), "contextual tuples on the relation fall back");
}

/// Memory of the closure on the bench graph's groups (the only tuples it depends on): the
/// 4-level drive hierarchy (16 / 160 / 1,600 / 16,000 groups) plus an 8-deep binary tree.
/// Run with `cargo test --release closure_memory -- --ignored --nocapture`.
#[test]
#[ignore = "prints a measurement; not an assertion about speed"]
fn closure_memory_on_the_bench_groups() {
    let levels = [16usize, 160, 1_600, 16_000];
    let mut index = Index::new();
    for level in 1..levels.len() {
        for g in 0..levels[level] {
            let parent = g / (levels[level] / levels[level - 1]);
            let text = format!("group:g{}_{parent}#member@group:g{level}_{g}#member", level - 1);
            index.insert(&text.parse().unwrap());
        }
    }
    for level in 1..=8u32 {
        for g in 0..(1u32 << level) {
            let text = format!("group:t{}_{}#member@group:t{level}_{g}#member", level - 1, g / 2);
            index.insert(&text.parse().unwrap());
        }
    }
    let view = View::new(&index);
    let kind =
        SubjectKind { subject_type: view.type_id("group").unwrap(), relation: view.relation_id("member").unwrap() };
    let closure = &index.closures[&(kind.subject_type, kind.relation)];
    // Resident memory a second copy of the closure takes (Linux; 4 KiB pages).
    let resident = || {
        let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
        statm.split_whitespace().nth(1).and_then(|pages| pages.parse::<usize>().ok()).unwrap_or(0) * 4096
    };
    let before = resident();
    let copy = closure.clone();
    let copied = resident().saturating_sub(before);
    println!(
        "closure: {} groups with a set; a copy adds {copied} resident bytes ({:.1} per group); \
         serialized-size estimate {} bytes",
        copy.len(),
        copied as f64 / copy.len() as f64,
        closure.heap_bytes(),
    );
    assert_eq!(closure.len(), 160 + 1_600 + 16_000 + 510);
}

/// Loads `tuples` through the bulk loader, as the engine does at start-up.
fn loaded(tuples: &[Tuple]) -> Index {
    let mut index = Index::default();
    let mut loader = super::super::Loader::new(&mut index);
    for t in tuples {
        let user = t.subject.to_string();
        let subject = crate::tuple::split_subject(&user).unwrap();
        loader.insert(&t.object.object_type, &t.object.id, &t.relation, subject, t.condition.as_ref(), None);
    }
    loader.finish();
    index
}

#[test]
fn bulk_load_builds_the_closure_of_graph_search_with_exact_heights() {
    let mut rng = StdRng::seed_from_u64(11);
    for round in 0..50 {
        let mut tuples = Vec::new();
        for _ in 0..rng.gen_range(0..20) {
            let t = edge(rng.gen_range(0..GROUPS), rng.gen_range(0..GROUPS));
            tuples.push(if rng.gen_bool(0.2) { conditioned(t) } else { t });
        }
        tuples.push(format!("group:g{}#member@user:u1", rng.gen_range(0..GROUPS)).parse().unwrap());
        // Key order, as stores hand tuples back; a later duplicate replaces an earlier one.
        tuples.sort_by_key(ToString::to_string);
        let mut last: BTreeMap<String, Tuple> = BTreeMap::new();
        for t in &tuples {
            last.insert(t.to_string(), t.clone());
        }
        let distinct: Vec<Tuple> = last.into_values().collect();
        let index = loaded(&tuples);
        assert_eq!(closure_of(&index), reference(&distinct), "round {round}");
        assert_eq!(index.len(), distinct.len(), "round {round}");
    }
}
