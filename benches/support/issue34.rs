//! Issue 34's seeded workload, the one generator of `benches/library.rs` (in process) and of the
//! check `tests/bench_workload.rs` makes that `benches/http_workload.py` (the HTTP benches' copy
//! in Python) draws the same graph and checks: 10,000 users; 1,000 groups in three levels
//! (100 / 300 / 600); a folder tree 5 deep with branching 4; 100,000 documents; ≈11.4k `viewer`
//! grants; checks `document:dN#viewer@user:uM`, even ones drawn among members of something
//! granted on the document's chain (allowed by construction), odd ones uniform.
//!
//! Invariant: the draws happen in one fixed order from one seeded generator; changing the order
//! (or the generator) changes the workload, and [`digest`] with it, so the Python copy must
//! change too (the test fails until it does). Must not import Writ: the test builds it alone.

#![allow(dead_code, reason = "the bench and the test each use a different part of this module")]

/// The model: `viewer` through folders, `member` through nested groups.
pub const MODEL: &str = "model
  schema 1.1
type user
type group
  relations
    define member: [user, group#member]
type folder
  relations
    define parent: [folder]
    define viewer: [user, group#member] or viewer from parent
type document
  relations
    define parent: [folder]
    define viewer: [user, group#member] or viewer from parent
";

/// Users in the graph.
pub const USERS: usize = 10_000;
/// Groups per level, top level first.
pub const LEVELS: [usize; 3] = [100, 300, 600];
/// The folder tree's depth below its root.
pub const DEPTH: u32 = 5;
/// Subfolders per folder.
pub const FANOUT: usize = 4;
/// Documents, each in one leaf folder.
pub const DOCUMENTS: usize = 100_000;

/// A small linear congruential generator, so the workload is the same on every run.
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: usize) -> usize {
        self.0 = self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        ((self.0 >> 33) % n as u64) as usize
    }
}

/// A grant: a user or a group's members.
#[derive(Clone, Copy)]
enum Grantee {
    User(usize),
    Group(usize),
}

/// The workload: tuples as `tuple` made them, and (document, user) check pairs in draw order.
pub struct Workload<T> {
    /// Every tuple, in the order drawn.
    pub tuples: Vec<T>,
    /// (document, user) pairs.
    pub checks: Vec<(usize, usize)>,
}

/// Draws the workload with `checks` check pairs; `tuple(object, relation, subject)` makes each
/// tuple (the bench a `StoredTuple`, the test a line of text). The first n checks of a longer
/// draw are the n checks of a shorter one.
pub fn workload<T>(checks: usize, mut tuple: impl FnMut(String, &'static str, String) -> T) -> Workload<T> {
    let mut rng = Lcg(0x5eed_0034);
    let mut tuples = Vec::new();
    // Groups: each below the top level in one or two groups of the level above.
    let starts = [0, LEVELS[0], LEVELS[0] + LEVELS[1]];
    let groups = LEVELS.iter().sum::<usize>();
    let mut children: Vec<Vec<usize>> = vec![Vec::new(); groups];
    for level in 1..LEVELS.len() {
        for group in starts[level]..starts[level] + LEVELS[level] {
            let first = starts[level - 1] + rng.below(LEVELS[level - 1]);
            let mut parents = vec![first];
            if rng.below(2) == 1 {
                let second = starts[level - 1] + rng.below(LEVELS[level - 1]);
                if second != first {
                    parents.push(second);
                }
            }
            for parent in parents {
                children[parent].push(group);
                tuples.push(tuple(format!("group:g{parent}"), "member", format!("group:g{group}#member")));
            }
        }
    }
    // Users: each directly in one to three groups.
    let mut members: Vec<Vec<usize>> = vec![Vec::new(); groups];
    for user in 0..USERS {
        let mut chosen = Vec::new();
        for _ in 0..1 + rng.below(3) {
            let group = rng.below(groups);
            if !chosen.contains(&group) {
                chosen.push(group);
                members[group].push(user);
                tuples.push(tuple(format!("group:g{group}"), "member", format!("user:u{user}")));
            }
        }
    }
    // Folders: a tree 5 deep, branching 4, numbered breadth-first (folder 0 is the root).
    let folders: usize = (0..=DEPTH).map(|d| FANOUT.pow(d)).sum();
    let first_leaf = folders - FANOUT.pow(DEPTH);
    for folder in 1..folders {
        tuples.push(tuple(format!("folder:f{folder}"), "parent", format!("folder:f{}", (folder - 1) / FANOUT)));
    }
    let grant = |rng: &mut Lcg| {
        if rng.below(10) < 8 {
            Grantee::Group(rng.below(groups))
        } else {
            Grantee::User(rng.below(USERS))
        }
    };
    let subject = |grantee: Grantee| match grantee {
        Grantee::User(user) => format!("user:u{user}"),
        Grantee::Group(group) => format!("group:g{group}#member"),
    };
    let mut folder_grants: Vec<Vec<Grantee>> = vec![Vec::new(); folders];
    for (folder, grants) in folder_grants.iter_mut().enumerate() {
        for _ in 0..rng.below(3) {
            let grantee = grant(&mut rng);
            let text = subject(grantee);
            if !grants.iter().any(|&g| subject(g) == text) {
                grants.push(grantee);
                tuples.push(tuple(format!("folder:f{folder}"), "viewer", text));
            }
        }
    }
    let mut document_folder = Vec::with_capacity(DOCUMENTS);
    let mut document_grant = Vec::with_capacity(DOCUMENTS);
    for document in 0..DOCUMENTS {
        let folder = first_leaf + rng.below(FANOUT.pow(DEPTH));
        document_folder.push(folder);
        tuples.push(tuple(format!("document:d{document}"), "parent", format!("folder:f{folder}")));
        let granted = (rng.below(10) == 0).then(|| grant(&mut rng));
        if let Some(grantee) = granted {
            tuples.push(tuple(format!("document:d{document}"), "viewer", subject(grantee)));
        }
        document_grant.push(granted);
    }
    // Checks: even ones a member of something granted on the document's chain, odd ones uniform.
    let wanted = checks;
    let mut checks = Vec::with_capacity(wanted);
    while checks.len() < wanted {
        let document = rng.below(DOCUMENTS);
        if checks.len() % 2 == 1 {
            checks.push((document, rng.below(USERS)));
            continue;
        }
        let mut chain: Vec<Grantee> = document_grant[document].into_iter().collect();
        let mut folder = Some(document_folder[document]);
        while let Some(f) = folder {
            chain.extend(&folder_grants[f]);
            folder = (f > 0).then(|| (f - 1) / FANOUT);
        }
        if chain.is_empty() {
            continue;
        }
        let user = match chain[rng.below(chain.len())] {
            Grantee::User(user) => Some(user),
            Grantee::Group(group) => {
                // A member of the group or of a group below it.
                let mut below = vec![group];
                let mut at = 0;
                while at < below.len() {
                    below.extend(&children[below[at]]);
                    at += 1;
                }
                let with_members: Vec<usize> = below.into_iter().filter(|&g| !members[g].is_empty()).collect();
                (!with_members.is_empty()).then(|| {
                    let group = with_members[rng.below(with_members.len())];
                    members[group][rng.below(members[group].len())]
                })
            }
        };
        if let Some(user) = user {
            checks.push((document, user));
        }
    }
    Workload { tuples, checks }
}

/// The workload's fingerprint, as `benches/http_workload.py --digest N` prints it:
/// `tuples=T checks=N fnv1a64=H`, H the 64-bit FNV-1a of every tuple as `object#relation@subject\n`
/// in draw order, then every check as `dD uU\n`.
pub fn digest(checks: usize) -> String {
    let workload = workload(checks, |object, relation, subject| format!("{object}#{relation}@{subject}\n"));
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut feed = |text: &str| {
        for byte in text.bytes() {
            hash = (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
        }
    };
    for line in &workload.tuples {
        feed(line);
    }
    for (document, user) in &workload.checks {
        feed(&format!("d{document} u{user}\n"));
    }
    format!("tuples={} checks={} fnv1a64={hash:016x}", workload.tuples.len(), workload.checks.len())
}
