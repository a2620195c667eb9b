//! The scale workload of `benches/scale.rs`: a seeded graph over `schema/scale.fga` at about 1M or
//! 10M tuples (`WRIT_SCALE=1m|10m`, default `1m`), with its check queries *and their answers*.
//!
//! Shape (10M / 1M): 100k / 20k users, each in 10 / 5 groups of an 8-level group tree (so a
//! user sits 3 to 8 nestings below a top group); 10k / 2k delegation chains `user → agent →
//! agent`; 32 / 3 folder trees 5 deep with fan-out 8; 3.2M / 320k documents in the deepest
//! folders, each with an owner and sometimes an editor group, a viewer and a blocked user.
//!
//! Every answer is known by construction, never by asking the engine: each scenario plants
//! *probe* principals whose only tuples are the ones the scenario needs, so whether a probe holds
//! a relation follows from the tree arithmetic below. Random background tuples never name a probe.

#![allow(dead_code, reason = "the bench uses different parts of this module per mode")]

/// The bench measures the engine as `writ serve` runs it: on mimalloc (see `src/main.rs`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Servers on a free loopback port, the same file the integration tests use.
#[path = "../../tests/support/serve.rs"]
pub mod serve;

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use writ::engine::{CheckRequest, ListObjectsRequest, OboCheckRequest};

/// Levels of the group tree (level 0 is the top); a user in a level-7 group is 8 groups deep.
pub const GROUP_LEVELS: u32 = 8;
/// Groups at level 0; each level has `GROUP_FANOUT` times more.
pub const TOP_GROUPS: usize = 8;
/// Children per group.
pub const GROUP_FANOUT: usize = 3;
/// Folder tree depth (levels 0..5) and fan-out.
pub const FOLDER_DEPTH: u32 = 5;
/// Children per folder.
pub const FOLDER_FANOUT: usize = 8;

/// Sizes of one workload.
#[derive(Debug, Clone, Copy)]
pub struct Size {
    /// `1m` or `10m`.
    pub name: &'static str,
    /// Background users.
    pub users: usize,
    /// Group memberships per background user.
    pub memberships: usize,
    /// Background delegation chains `user → agent → agent`.
    pub chains: usize,
    /// Folder trees.
    pub folder_roots: usize,
    /// Documents.
    pub documents: usize,
    /// Probe principals per scenario.
    pub probes: usize,
}

/// About 1M tuples.
pub const SIZE_1M: Size = Size {
    name: "1m",
    users: 20_000,
    memberships: 5,
    chains: 2_000,
    folder_roots: 3,
    documents: 320_000,
    probes: 5_000,
};
/// About 10M tuples.
pub const SIZE_10M: Size = Size {
    name: "10m",
    users: 100_000,
    memberships: 10,
    chains: 10_000,
    folder_roots: 32,
    documents: 3_200_000,
    probes: 10_000,
};

/// The size named by `WRIT_SCALE` (`1m` when unset).
pub fn size_from_env() -> Size {
    match std::env::var("WRIT_SCALE").as_deref() {
        Ok("10m") | Ok("10M") => SIZE_10M,
        Ok("1m") | Ok("1M") | Err(_) => SIZE_1M,
        Ok(other) => panic!("WRIT_SCALE must be 1m or 10m, got `{other}`"),
    }
}

/// The text of `schema/scale.fga`.
pub fn model_text() -> String {
    std::fs::read_to_string(model_path()).expect("schema/scale.fga is present")
}

/// The path of `schema/scale.fga`.
pub fn model_path() -> &'static str {
    concat!(env!("CARGO_MANIFEST_DIR"), "/schema/scale.fga")
}

fn groups_at(level: u32) -> usize {
    TOP_GROUPS * GROUP_FANOUT.pow(level)
}

fn group(level: u32, i: usize) -> String {
    format!("group:g{level}_{i}")
}

/// The level-0 ancestor of group `i` at `level`.
fn top_ancestor(level: u32, i: usize) -> usize {
    i / GROUP_FANOUT.pow(level)
}

fn folders_at(size: &Size, level: u32) -> usize {
    size.folder_roots * FOLDER_FANOUT.pow(level)
}

fn folder(level: u32, i: usize) -> String {
    format!("folder:f{level}_{i}")
}

/// The root of deepest-level folder `leaf`.
fn root_of_leaf(leaf: usize) -> usize {
    leaf / FOLDER_FANOUT.pow(FOLDER_DEPTH - 1)
}

/// The document on which every top group `t` is a viewer: `document:top{t}`.
fn top_document(t: usize) -> String {
    format!("document:top{t}")
}

/// What the generator remembers to build queries with answers known by construction.
#[derive(Debug, Default)]
pub struct Facts {
    /// Tuples generated.
    pub tuples: usize,
    /// Per document, its deepest-level folder.
    pub doc_leaf: Vec<u32>,
    /// Per folder root, its documents.
    pub docs_by_root: Vec<Vec<u32>>,
    /// `user:pd{i}` is a viewer of exactly `document:d{direct[i]}`.
    pub direct: Vec<u32>,
    /// `user:pn{i}` is a member of exactly `group:g7_{nested[i]}`.
    pub nested: Vec<u32>,
    /// `user:pf{i}` is a viewer of exactly root folder `folder:f0_{folders[i]}`.
    pub folders: Vec<u32>,
    /// `user:pi{i}` is an editor of `document:d{x}` and a viewer of `document:d{y}`.
    pub intersection: Vec<(u32, u32)>,
    /// `user:pe{i}` is a viewer of `document:d{x}`, and a viewer and blocked on `document:d{y}`.
    pub exclusion: Vec<(u32, u32)>,
    /// Chain `user:po{i} → agent:po{i}_1 → agent:po{i}_2`, all three members of `group:g7_{obo[i]}`.
    pub obo: Vec<u32>,
    /// `user:lister` is a viewer of `folder:f0_0` only: it sees exactly the documents of root 0.
    pub lister_documents: usize,
}

/// Generates the workload for `size` and `seed`, handing each tuple `(object, relation, user)` to
/// `emit` (nothing is retained but [`Facts`]).
pub fn generate(size: &Size, seed: u64, mut emit: impl FnMut(&str, &str, &str)) -> Facts {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut facts = Facts::default();
    let mut count = 0usize;
    let mut out = |object: &str, relation: &str, user: &str| {
        count += 1;
        emit(object, relation, user)
    };
    let deepest = GROUP_LEVELS - 1;
    // The group tree: each group below the top is a member of one group a level up.
    for level in 1..GROUP_LEVELS {
        for g in 0..groups_at(level) {
            out(&group(level - 1, g / GROUP_FANOUT), "member", &format!("{}#member", group(level, g)));
        }
    }
    let random_group = |rng: &mut StdRng| {
        let level = rng.gen_range(2..GROUP_LEVELS);
        (level, rng.gen_range(0..groups_at(level)))
    };
    // Background users, each in `memberships` distinct groups 3 to 8 deep.
    for u in 0..size.users {
        let mut chosen: Vec<(u32, usize)> = Vec::with_capacity(size.memberships);
        while chosen.len() < size.memberships {
            let g = random_group(&mut rng);
            if !chosen.contains(&g) {
                chosen.push(g);
            }
        }
        for (level, g) in chosen {
            out(&group(level, g), "member", &format!("user:u{u}"));
        }
    }
    // Background delegation chains; each agent is in one group.
    for c in 0..size.chains {
        out(&format!("user:u{}", rng.gen_range(0..size.users)), "delegate", &format!("agent:c{c}_1"));
        out(&format!("agent:c{c}_1"), "delegate", &format!("agent:c{c}_2"));
        for hop in 1..=2 {
            let (level, g) = random_group(&mut rng);
            out(&group(level, g), "member", &format!("agent:c{c}_{hop}"));
        }
    }
    // Folder trees; roots have an owner, any folder may have a group or user viewer.
    for level in 0..FOLDER_DEPTH {
        for f in 0..folders_at(size, level) {
            let name = folder(level, f);
            if level == 0 {
                out(&name, "owner", &format!("user:u{}", rng.gen_range(0..size.users)));
            } else {
                out(&name, "parent", &folder(level - 1, f / FOLDER_FANOUT));
            }
            if rng.gen_bool(0.1) {
                let (gl, g) = random_group(&mut rng);
                out(&name, "viewer", &format!("{}#member", group(gl, g)));
            }
            if rng.gen_bool(0.1) {
                out(&name, "viewer", &format!("user:u{}", rng.gen_range(0..size.users)));
            }
        }
    }
    // Documents in the deepest folders.
    let leaves = folders_at(size, FOLDER_DEPTH - 1);
    facts.docs_by_root = vec![Vec::new(); size.folder_roots];
    facts.doc_leaf.reserve(size.documents);
    for d in 0..size.documents {
        let name = format!("document:d{d}");
        let leaf = rng.gen_range(0..leaves);
        facts.doc_leaf.push(leaf as u32);
        facts.docs_by_root[root_of_leaf(leaf)].push(d as u32);
        out(&name, "parent", &folder(FOLDER_DEPTH - 1, leaf));
        out(&name, "owner", &format!("user:u{}", rng.gen_range(0..size.users)));
        if rng.gen_bool(0.3) {
            let (gl, g) = random_group(&mut rng);
            out(&name, "editor", &format!("{}#member", group(gl, g)));
        }
        if rng.gen_bool(0.3) {
            out(&name, "viewer", &format!("user:u{}", rng.gen_range(0..size.users)));
        }
        if rng.gen_bool(0.1) {
            out(&name, "blocked", &format!("user:u{}", rng.gen_range(0..size.users)));
        }
    }
    // Each top group views its own document.
    for t in 0..TOP_GROUPS {
        out(&top_document(t), "viewer", &format!("{}#member", group(0, t)));
    }
    // Probes.
    let doc = |rng: &mut StdRng| rng.gen_range(0..size.documents) as u32;
    let two_docs = |rng: &mut StdRng| loop {
        let (x, y) = (doc(rng), doc(rng));
        if x != y {
            return (x, y);
        }
    };
    for i in 0..size.probes {
        let d = doc(&mut rng);
        facts.direct.push(d);
        out(&format!("document:d{d}"), "viewer", &format!("user:pd{i}"));

        let g = rng.gen_range(0..groups_at(deepest));
        facts.nested.push(g as u32);
        out(&group(deepest, g), "member", &format!("user:pn{i}"));

        let root = rng.gen_range(0..size.folder_roots);
        facts.folders.push(root as u32);
        out(&folder(0, root), "viewer", &format!("user:pf{i}"));

        let (x, y) = two_docs(&mut rng);
        facts.intersection.push((x, y));
        out(&format!("document:d{x}"), "editor", &format!("user:pi{i}"));
        out(&format!("document:d{y}"), "viewer", &format!("user:pi{i}"));

        let (x, y) = two_docs(&mut rng);
        facts.exclusion.push((x, y));
        out(&format!("document:d{x}"), "viewer", &format!("user:pe{i}"));
        out(&format!("document:d{y}"), "viewer", &format!("user:pe{i}"));
        out(&format!("document:d{y}"), "blocked", &format!("user:pe{i}"));

        let g = rng.gen_range(0..groups_at(deepest));
        facts.obo.push(g as u32);
        out(&format!("user:po{i}"), "delegate", &format!("agent:po{i}_1"));
        out(&format!("agent:po{i}_1"), "delegate", &format!("agent:po{i}_2"));
        for member in [format!("user:po{i}"), format!("agent:po{i}_1"), format!("agent:po{i}_2")] {
            out(&group(deepest, g), "member", &member);
        }
    }
    out(&folder(0, 0), "viewer", "user:lister");
    facts.lister_documents = facts.docs_by_root[0].len();
    facts.tuples = count;
    facts
}

/// A check with its known answer.
#[derive(Debug, Clone)]
pub struct Query {
    /// The request.
    pub request: CheckRequest,
    /// The known answer.
    pub expected: bool,
}

/// An OBO check with its known answer.
#[derive(Debug, Clone)]
pub struct OboQuery {
    /// The request.
    pub request: OboCheckRequest,
    /// The known answer.
    pub expected: bool,
}

fn query(object: String, relation: &str, user: String, expected: bool) -> Query {
    Query { request: CheckRequest { object, relation: relation.into(), user, ..CheckRequest::default() }, expected }
}

/// The check scenarios: `(name, queries)`, `count` queries each, alternately allowed and denied.
pub fn check_scenarios(size: &Size, facts: &Facts, count: usize, seed: u64) -> Vec<(&'static str, Vec<Query>)> {
    let mut rng = StdRng::seed_from_u64(seed);
    let deepest = GROUP_LEVELS - 1;
    let probe = |rng: &mut StdRng| rng.gen_range(0..size.probes);
    let other_doc = |rng: &mut StdRng, not: u32| loop {
        let d = rng.gen_range(0..size.documents) as u32;
        if d != not {
            return d;
        }
    };
    let other_top = |rng: &mut StdRng, not: usize| loop {
        let t = rng.gen_range(0..TOP_GROUPS);
        if t != not {
            return t;
        }
    };
    let mut direct = Vec::with_capacity(count);
    let mut nested = Vec::with_capacity(count);
    let mut folders = Vec::with_capacity(count);
    let mut intersection = Vec::with_capacity(count);
    let mut exclusion = Vec::with_capacity(count);
    for q in 0..count {
        let allow = q % 2 == 0;
        let i = probe(&mut rng);
        let d = facts.direct[i];
        let d = if allow { d } else { other_doc(&mut rng, d) };
        direct.push(query(format!("document:d{d}"), "viewer", format!("user:pd{i}"), allow));

        let i = probe(&mut rng);
        let top = top_ancestor(deepest, facts.nested[i] as usize);
        let t = if allow { top } else { other_top(&mut rng, top) };
        nested.push(query(top_document(t), "viewer", format!("user:pn{i}"), allow));

        let i = probe(&mut rng);
        let root = facts.folders[i] as usize;
        let pick_root = if allow {
            root
        } else {
            loop {
                let r = rng.gen_range(0..size.folder_roots);
                if r != root {
                    break r;
                }
            }
        };
        let d = *facts.docs_by_root[pick_root].choose(&mut rng).expect("every root has documents");
        folders.push(query(format!("document:d{d}"), "viewer", format!("user:pf{i}"), allow));

        let i = probe(&mut rng);
        let (x, y) = facts.intersection[i];
        intersection.push(query(
            format!("document:d{}", if allow { x } else { y }),
            "can_share",
            format!("user:pi{i}"),
            allow,
        ));

        let i = probe(&mut rng);
        let (x, y) = facts.exclusion[i];
        exclusion.push(query(
            format!("document:d{}", if allow { x } else { y }),
            "can_view",
            format!("user:pe{i}"),
            allow,
        ));
    }
    vec![
        ("direct", direct),
        ("nested_groups_8", nested),
        ("folders_5", folders),
        ("intersection", intersection),
        ("exclusion", exclusion),
    ]
}

/// OBO checks of 3-principal chains (`user → agent → agent`, two delegation links): allowed on
/// the chain's top document; denied half by a wrong document (the human lacks it), half by the
/// chain with its agents swapped (the first link fails).
pub fn obo_queries(size: &Size, facts: &Facts, count: usize, seed: u64) -> Vec<OboQuery> {
    let mut rng = StdRng::seed_from_u64(seed);
    let deepest = GROUP_LEVELS - 1;
    (0..count)
        .map(|q| {
            let i = rng.gen_range(0..size.probes);
            let top = top_ancestor(deepest, facts.obo[i] as usize);
            let mut principals = vec![format!("user:po{i}"), format!("agent:po{i}_1"), format!("agent:po{i}_2")];
            let (object, expected) = match q % 4 {
                0 | 2 => (top_document(top), true),
                1 => (top_document((top + 1 + rng.gen_range(0..TOP_GROUPS - 1)) % TOP_GROUPS), false),
                _ => {
                    principals.swap(1, 2);
                    (top_document(top), false)
                }
            };
            let request =
                OboCheckRequest { principals, relation: "viewer".into(), object, ..OboCheckRequest::default() };
            OboQuery { request, expected }
        })
        .collect()
}

/// `user:lister`'s documents: about 100k at 10M tuples, about 107k at 1M.
pub fn lister_request() -> ListObjectsRequest {
    ListObjectsRequest {
        object_type: "document".into(),
        relation: "viewer".into(),
        user: "user:lister".into(),
        ..ListObjectsRequest::default()
    }
}

/// Resident and peak memory of this process in bytes, from `/proc/self/status` (0 where absent).
pub fn memory() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map_or(0, |kb| kb * 1024)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// Sorted latencies' percentile `q` (0..=1).
pub fn percentile(sorted: &[std::time::Duration], q: f64) -> std::time::Duration {
    let i = ((sorted.len() as f64 * q) as usize).min(sorted.len().saturating_sub(1));
    sorted.get(i).copied().unwrap_or_default()
}
