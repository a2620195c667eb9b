//! Seeded synthetic graphs for the benches, built from `schema/drive.fga`.
//!
//! A [`Workload`] is named for its graph shape and carries its queries *with expected answers*;
//! [`Workload::verify`] checks every answer once before anything is timed.

#![allow(dead_code, reason = "each bench binary uses a different part of this module")]

/// The bench measures the engine as `writ serve` runs it: on mimalloc (see `src/main.rs`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::sync::Arc;
use writ::engine::{CheckRequest, ListObjectsRequest, StoreHandle};
use writ::store::{MemoryStore, StoreRecord, StoredTuple, TupleStore, WriteBatch};
use writ::{Engine, EngineConfig, Model, Tuple};

/// Users in the graph.
pub const USERS: usize = 100_000;
/// Folder tree fan-out per level; the tree is 5 levels deep.
pub const FOLDER_FANOUT: usize = 8;
/// Folder tree depth.
pub const FOLDER_DEPTH: usize = 5;
/// Documents, each in a random deepest-level folder.
pub const DOCUMENTS: usize = 300_000;
/// Groups in each of the four nesting levels (level 0 is the top).
pub const GROUP_LEVELS: [usize; 4] = [16, 160, 1_600, 16_000];
/// Direct users per deepest-level group.
pub const USERS_PER_GROUP: usize = 25;
/// Depth of the second group hierarchy: a binary tree of `t{level}_{i}` groups, 8 nestings deep.
pub const TREE_DEPTH: usize = 8;
/// Root folders the `reader` group may view: about `3/8` of all documents.
pub const READER_ROOTS: usize = 3;

/// One timed question with its known answer.
pub struct CheckQuery {
    /// Scenario name, e.g. `deep_arrow`.
    pub scenario: &'static str,
    /// The request.
    pub request: CheckRequest,
    /// The known answer.
    pub expected: bool,
}

/// A built store and its queries.
pub struct Workload {
    /// The engine holding the store.
    pub engine: Arc<Engine>,
    /// The store id.
    pub store_id: String,
    /// Tuples written.
    pub tuple_count: usize,
    /// Check queries, allow and deny per scenario.
    pub checks: Vec<CheckQuery>,
    /// A list-objects query with its expected result size.
    pub lookup: (ListObjectsRequest, usize),
}

pub fn tuple(object: &str, relation: &str, user: &str) -> StoredTuple {
    StoredTuple::new(Tuple::from_parts(object, relation, user).expect("bench tuples are well-formed"))
}

/// The text of `schema/drive.fga`.
pub fn model_text() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/schema/drive.fga"))
        .expect("schema/drive.fga is present")
}

fn model() -> Model {
    Model::parse_dsl(&model_text()).expect("schema/drive.fga is valid")
}

/// Folder id at `level` (0 = roots) and position `i`.
fn folder(level: usize, i: usize) -> String {
    format!("folder:f{level}_{i}")
}

/// Every tuple of the drive graph (about 1M), deterministic for a seed.
pub fn drive_tuples(seed: u64) -> Vec<StoredTuple> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut tuples = Vec::with_capacity(1_100_000);
    // Nested groups: each group below the top is a member of one group a level up.
    for level in 1..GROUP_LEVELS.len() {
        for g in 0..GROUP_LEVELS[level] {
            let parent = g / (GROUP_LEVELS[level] / GROUP_LEVELS[level - 1]);
            tuples.push(tuple(
                &format!("group:g{}_{parent}", level - 1),
                "member",
                &format!("group:g{level}_{g}#member"),
            ));
        }
    }
    let leaf_level = GROUP_LEVELS.len() - 1;
    for g in 0..GROUP_LEVELS[leaf_level] {
        for _ in 0..USERS_PER_GROUP {
            let user = rng.gen_range(1..USERS);
            tuples.push(tuple(&format!("group:g{leaf_level}_{g}"), "member", &format!("user:u{user}")));
        }
    }
    // user:u0 is in exactly one leaf group, so its chain is 3 groups deep.
    tuples.push(tuple(&format!("group:g{leaf_level}_0"), "member", "user:u0"));
    // A binary tree of groups 8 nestings deep; its leaves hold users; user:deep8 is in leaf 0.
    for level in 1..=TREE_DEPTH {
        for g in 0..(1usize << level) {
            tuples.push(tuple(
                &format!("group:t{}_{}", level - 1, g / 2),
                "member",
                &format!("group:t{level}_{g}#member"),
            ));
        }
    }
    for g in 0..(1usize << TREE_DEPTH) {
        for _ in 0..USERS_PER_GROUP {
            let user = rng.gen_range(1..USERS);
            tuples.push(tuple(&format!("group:t{TREE_DEPTH}_{g}"), "member", &format!("user:u{user}")));
        }
    }
    tuples.push(tuple(&format!("group:t{TREE_DEPTH}_0"), "member", "user:deep8"));
    // user:outside8 is in a group of its own, outside the tree.
    tuples.push(tuple("group:lone", "member", "user:outside8"));
    // The reader group views a few root folders.
    for root in 0..READER_ROOTS {
        tuples.push(tuple(&folder(0, root), "viewer", "group:g0_0#member"));
    }
    // Folder tree 5 deep.
    let mut width = FOLDER_FANOUT;
    for level in 1..FOLDER_DEPTH {
        let next = width * FOLDER_FANOUT;
        for i in 0..next {
            tuples.push(tuple(&folder(level, i), "parent", &folder(level - 1, i / FOLDER_FANOUT)));
        }
        width = next;
    }
    for root in 0..FOLDER_FANOUT {
        tuples.push(tuple(&folder(0, root), "owner", &format!("user:u{}", rng.gen_range(1..USERS))));
    }
    // Documents: a parent folder at the deepest level, an owner, sometimes a direct editor.
    for d in 0..DOCUMENTS {
        let object = format!("document:d{d}");
        tuples.push(tuple(&object, "parent", &folder(FOLDER_DEPTH - 1, rng.gen_range(0..width))));
        tuples.push(tuple(&object, "owner", &format!("user:u{}", rng.gen_range(1..USERS))));
        if d % 3 == 0 {
            tuples.push(tuple(
                &object,
                "editor",
                &format!("group:g{leaf_level}_{}#member", rng.gen_range(0..GROUP_LEVELS[leaf_level])),
            ));
        }
    }
    // Named facts the queries rely on.
    tuples.push(tuple("document:d1", "viewer", "user:direct"));
    tuples.push(tuple("document:d2", "viewer", "group:g0_0#member"));
    tuples.push(tuple("document:d6", "viewer", "group:t0_0#member"));
    tuples.push(tuple("document:d3", "editor", "user:both"));
    tuples.push(tuple("document:d4", "editor", "user:blocked"));
    tuples.push(tuple("document:d4", "blocked", "user:blocked"));
    tuples.push(tuple(&folder(0, 0), "viewer", "user:rootviewer"));
    dedup(tuples)
}

fn dedup(mut tuples: Vec<StoredTuple>) -> Vec<StoredTuple> {
    let mut seen = std::collections::HashSet::new();
    tuples.retain(|t| seen.insert(t.tuple.to_string()));
    tuples
}

/// Fills a memory backend with one store holding `tuples` and the drive model.
pub fn filled_backend(tuples: &[StoredTuple]) -> (MemoryStore, String) {
    filled_backend_with(tuples, &model())
}

/// Fills a memory backend with one store holding `tuples` and `model`.
pub fn filled_backend_with(tuples: &[StoredTuple], model: &Model) -> (MemoryStore, String) {
    let backend = MemoryStore::new();
    let store_id = "01JBENCHSTORE0000000000000".to_string();
    let record = StoreRecord { id: store_id.clone(), name: "bench".into(), created_at_ms: 0, updated_at_ms: 0 };
    backend.create_store(&record).expect("create bench store");
    let json = serde_json::to_string(&model.to_json()).expect("model serializes");
    backend.write_model(&store_id, "01JBENCHMODEL0000000000000", &json).expect("write model");
    for chunk in tuples.chunks(50_000) {
        backend.write(&store_id, &WriteBatch::new(&[], chunk, 0)).expect("write tuples");
    }
    (backend, store_id)
}

fn check(scenario: &'static str, object: &str, relation: &str, user: &str, expected: bool) -> CheckQuery {
    let request =
        CheckRequest { object: object.into(), relation: relation.into(), user: user.into(), ..CheckRequest::default() };
    CheckQuery { scenario, request, expected }
}

/// The same check with an unrelated contextual tuple on `group#member`, which makes the engine
/// walk nested groups instead of answering from the group closure (the path before it existed,
/// plus the cost of laying one contextual tuple over the index).
fn walked(scenario: &'static str, query: &CheckQuery) -> CheckQuery {
    let mut request = query.request.clone();
    request.contextual_tuples =
        vec![Tuple::from_parts("group:unrelated", "member", "user:nobody").expect("bench tuples are well-formed")];
    CheckQuery { scenario, request, expected: query.expected }
}

/// A leaf folder's document under root folder 0 (so `user:rootviewer` sees it 5 levels up).
fn document_under_root(tuples: &[StoredTuple], root: usize) -> String {
    let leaves_per_root = FOLDER_FANOUT.pow((FOLDER_DEPTH - 1) as u32);
    tuples
        .iter()
        .find(|t| {
            t.tuple.relation == "parent"
                && t.tuple.object.object_type == "document"
                && t.tuple
                    .subject
                    .to_string()
                    .strip_prefix(&format!("folder:f{}_", FOLDER_DEPTH - 1))
                    .and_then(|i| i.parse::<usize>().ok())
                    .is_some_and(|i| i / leaves_per_root == root)
        })
        .map(|t| t.tuple.object.to_string())
        .expect("some document sits under the root")
}

/// Number of documents under the first `roots` root folders.
fn documents_under_roots(tuples: &[StoredTuple], roots: usize) -> usize {
    let leaves_per_root = FOLDER_FANOUT.pow((FOLDER_DEPTH - 1) as u32);
    let prefix = format!("folder:f{}_", FOLDER_DEPTH - 1);
    tuples
        .iter()
        .filter(|t| t.tuple.relation == "parent" && t.tuple.object.object_type == "document")
        .filter_map(|t| t.tuple.subject.to_string().strip_prefix(&prefix).and_then(|i| i.parse::<usize>().ok()))
        .filter(|i| i / leaves_per_root < roots)
        .count()
}

/// The engine settings of a bench: the defaults, plus a request deadline when
/// `WRIT_BENCH_REQUEST_TIMEOUT_MS` is set (to measure what checking the deadline costs).
fn bench_config() -> EngineConfig {
    let timeout = std::env::var("WRIT_BENCH_REQUEST_TIMEOUT_MS").ok().and_then(|ms| ms.parse().ok());
    let mut config = EngineConfig::default();
    config.input.request_timeout = timeout.map(std::time::Duration::from_millis);
    config
}

/// The drive workload at about 1M tuples.
pub fn drive_workload() -> Workload {
    let tuples = drive_tuples(42);
    let tuple_count = tuples.len();
    let under_root = document_under_root(&tuples, 0);
    let outside_reader_roots = document_under_root(&tuples, FOLDER_FANOUT - 1);
    let reader_documents = documents_under_roots(&tuples, READER_ROOTS);
    let (backend, store_id) = filled_backend(&tuples);
    let engine = Engine::open(Box::new(backend), bench_config()).expect("open bench engine");
    let nested = [
        check("nested_groups_3", "document:d2", "viewer", "user:u0", true),
        check("nested_groups_3", "document:d2", "viewer", "user:nobody", false),
        check("nested_groups_8", "document:d6", "viewer", "user:deep8", true),
        check("nested_groups_8", "document:d6", "viewer", "user:outside8", false),
    ];
    let walks: Vec<CheckQuery> = nested
        .iter()
        .map(|q| {
            walked(if q.scenario == "nested_groups_3" { "nested_groups_3_walk" } else { "nested_groups_8_walk" }, q)
        })
        .collect();
    let mut checks = vec![
        check("direct", "document:d1", "viewer", "user:direct", true),
        check("direct", "document:d5", "viewer", "user:direct", false),
        check("group_member_3", "group:g0_0", "member", "user:u0", true),
        check("group_member_3", "group:g0_1", "member", "user:u0", false),
        check("group_member_8", "group:t0_0", "member", "user:deep8", true),
        check("group_member_8", "group:t1_1", "member", "user:deep8", false),
        check("deep_arrow_5", &under_root, "viewer", "user:rootviewer", true),
        check("deep_arrow_5", &outside_reader_roots, "viewer", "user:rootviewer", false),
        check("intersection", "document:d3", "can_share", "user:both", true),
        check("intersection", "document:d5", "can_share", "user:direct", false),
        check("exclusion", "document:d1", "can_view", "user:direct", true),
        check("exclusion", "document:d4", "can_view", "user:blocked", false),
    ];
    checks.extend(nested);
    checks.extend(walks);
    let lookup = ListObjectsRequest {
        object_type: "document".into(),
        relation: "viewer".into(),
        user: "user:u0".into(),
        ..ListObjectsRequest::default()
    };
    // u0 reaches g0_0 through its 3-deep group chain, and so the reader roots' documents.
    let expected_lookup = reader_documents;
    Workload { engine: Arc::new(engine), store_id, tuple_count, checks, lookup: (lookup, expected_lookup) }
}

impl Workload {
    /// The handle on the workload's store (resolve it once, outside the timed loop).
    pub fn store(&self) -> StoreHandle<'_> {
        self.engine.store(&self.store_id).expect("the bench store exists")
    }

    /// Checks every query's answer once; panics on a wrong answer so nothing wrong gets timed.
    pub fn verify(&self) {
        let store = self.store();
        for query in &self.checks {
            let answer = store.check(&query.request).expect("bench check answers").value;
            assert_eq!(answer, query.expected, "{} {:?}", query.scenario, query.request);
        }
        let objects = store.list_objects(&self.lookup.0).expect("bench lookup answers").value;
        assert!(objects.len() >= self.lookup.1, "list_objects covers the reader roots' documents");
        // Cross-check the whole answer against check, document by document.
        let listed: std::collections::HashSet<&String> = objects.iter().collect();
        for d in 0..DOCUMENTS {
            let object = format!("document:d{d}");
            let request = CheckRequest {
                object: object.clone(),
                user: self.lookup.0.user.clone(),
                relation: self.lookup.0.relation.clone(),
                ..CheckRequest::default()
            };
            let allowed = store.check(&request).expect("bench check answers").value;
            assert_eq!(allowed, listed.contains(&object), "list_objects and check disagree on {object}");
        }
    }
}
