//! Leopard-style group closure (Zanzibar §3.2.4) for recursive userset relations.
//!
//! What it owns: for every (type `T`, relation `R`) whose tuples include usersets of `T#R` itself
//! (`group:eng#member@group:backend#member`, groups in groups), and for every group `g` with such
//! an edge, the bitmap of all groups `g` reaches *upward* through one or more `T#R` edges, plus an
//! upper bound on how many edges the farthest of them is away (its `height`). The closure is not
//! reflexive: `g` is in its own set only when it sits on a cycle.
//!
//! Which edges count: only those for which [`edge_counts`] holds — edges that count for every
//! request, whatever its context and clock (tuples with neither a condition nor an expiry). A relation holding any
//! tuple outside that rule is answered the ordinary way (see `View::closure`).
//!
//! Maintenance, on every write and delete of a `T#R` edge `below → above` (a tuple
//! `above#R@below#R`):
//! - an edge that now counts adds `{above} ∪ reach(above)` to `below` and to every group below
//!   it (found by walking edges downward; a group that already had all of it stops the walk,
//!   since everything below it has it too);
//! - an edge that no longer counts (deleted, or rewritten with a condition) recomputes, by plain
//!   graph search upward, the set of `below` and of every group below it: only their sets can
//!   have used the edge (correctness over cleverness: cycles and split chains need no special case).
//!
//! **Invariant:** each group's set equals plain graph search over the counting edges, so the sets
//! are a pure function of the tuples; each `height` is at least the true distance to the farthest
//! reached group (exact after a recompute, an upper bound after additions).
//! Must not import `eval`, `engine`, `store`, `api`, nor `sled`, `tokio`, `axum`, `serde_json`.

use super::{ObjectBitmap, ObjectId, SubjectKey, SubjectKind, Table};
use roaring::RoaringBitmap;
use rustc_hash::FxHashMap;
use std::collections::VecDeque;

/// The groups one group reaches.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Reach {
    /// Every group reached through one or more counting edges.
    pub(crate) groups: RoaringBitmap,
    /// At least the number of edges on a shortest path to the farthest group in `groups`.
    pub(crate) height: u32,
}

/// The closure of one recursive userset relation.
#[derive(Debug, Clone, Default)]
pub(crate) struct Closure {
    /// Groups with at least one counting edge upward; every other group reaches nothing.
    reach: FxHashMap<ObjectId, Reach>,
}

/// Whether the tuple `object#R@subject` of `table` is a closure edge: it counts for every
/// request. The one place to extend (e.g. "and does not expire").
pub(super) fn edge_counts(table: &Table, object: ObjectId, subject: SubjectKey) -> bool {
    !table.conditions.contains_key(&(object, subject)) && !table.expiries.contains_key(&(object, subject))
}

/// True when every tuple of `table` counts for every request, so the closure (built from the
/// counting edges) and the table's other tuples answer without looking at conditions. Kept next
/// to [`edge_counts`]: extend both together.
pub(super) fn all_tuples_count(table: &Table) -> bool {
    table.conditions.is_empty() && table.expiries.is_empty()
}

impl Closure {
    /// What `group` reaches, `None` when it reaches nothing.
    pub(crate) fn reach(&self, group: ObjectId) -> Option<&Reach> {
        self.reach.get(&group)
    }

    /// Adds to `groups` every group that one of them reaches.
    pub(crate) fn expand(&self, groups: &mut RoaringBitmap) {
        let mut added = RoaringBitmap::new();
        for group in groups.objects() {
            if let Some(reach) = self.reach.get(&group) {
                added |= &reach.groups;
            }
        }
        *groups |= added;
    }

    /// Number of groups with a non-empty set.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.reach.len()
    }

    /// Approximate heap bytes held: the map's slots and every bitmap's serialized size (a close
    /// proxy for roaring's in-memory containers).
    #[cfg(test)]
    pub(crate) fn heap_bytes(&self) -> usize {
        let slot = std::mem::size_of::<(ObjectId, Reach)>() + 1;
        let slots = self.reach.capacity() * slot;
        slots + self.reach.values().map(|r| r.groups.serialized_size()).sum::<usize>()
    }

    /// Brings the closure up to date after the edge `below → above` of `table` (whose subject
    /// kind is `kind`, the table's own type and relation) was written, rewritten or deleted.
    pub(super) fn edge_changed(&mut self, table: &Table, kind: SubjectKind, below: ObjectId, above: ObjectId) {
        if below == ObjectId::WILDCARD || above == ObjectId::WILDCARD {
            return;
        }
        let subject = SubjectKey { kind, object: below };
        let present = table.holds(above, subject);
        if present && edge_counts(table, above, subject) {
            self.add_edge(table, kind, below, above);
        } else {
            self.recompute_below(table, kind, below);
        }
    }

    /// Adds the counting edge `below → above`.
    fn add_edge(&mut self, table: &Table, kind: SubjectKind, below: ObjectId, above: ObjectId) {
        let (mut addition, above_height) = match self.reach.get(&above) {
            Some(reach) => (reach.groups.clone(), reach.height),
            None => (RoaringBitmap::new(), 0),
        };
        addition.insert_object(above);
        let mut seen = RoaringBitmap::new();
        seen.insert_object(below);
        let mut queue = VecDeque::from([(below, 0u32)]);
        while let Some((group, distance)) = queue.pop_front() {
            let reach = self.reach.entry(group).or_default();
            if addition.is_subset(&reach.groups) {
                // Everything below `group` already reaches all `group` reaches.
                continue;
            }
            reach.groups |= &addition;
            reach.height = reach.height.max(distance.saturating_add(1).saturating_add(above_height));
            for member in down_edges(table, kind, group) {
                if seen.insert_object(member) {
                    queue.push_back((member, distance.saturating_add(1)));
                }
            }
        }
    }

    /// Recomputes by graph search the sets of `below` and of every group below it.
    fn recompute_below(&mut self, table: &Table, kind: SubjectKind, below: ObjectId) {
        let mut affected = RoaringBitmap::new();
        affected.insert_object(below);
        let mut queue = VecDeque::from([below]);
        while let Some(group) = queue.pop_front() {
            for member in down_edges(table, kind, group) {
                if affected.insert_object(member) {
                    queue.push_back(member);
                }
            }
        }
        for group in affected.objects() {
            let reach = search_up(table, kind, group);
            if reach.groups.is_empty() {
                self.reach.remove(&group);
            } else {
                self.reach.insert(group, reach);
            }
        }
    }

    /// Sets what `group` reaches (bulk build; `reach` must equal [`search_up`]'s answer).
    pub(super) fn set(&mut self, group: ObjectId, reach: Reach) {
        self.reach.insert(group, reach);
    }

    /// True if no group reaches anything.
    pub(super) fn is_empty(&self) -> bool {
        self.reach.is_empty()
    }
}

/// The groups `group` is a counting member of (its edges upward).
fn up_edges(table: &Table, kind: SubjectKind, group: ObjectId) -> impl Iterator<Item = ObjectId> + '_ {
    let subject = SubjectKey { kind, object: group };
    table.objects_of(subject).iter().filter(move |&above| edge_counts(table, above, subject))
}

/// The groups that are counting members of `group` (its edges downward).
fn down_edges(table: &Table, kind: SubjectKind, group: ObjectId) -> impl Iterator<Item = ObjectId> + '_ {
    table.subjects(group).filter(move |(k, _)| *k == kind).flat_map(|(_, members)| members.iter()).filter(
        move |&member| member != ObjectId::WILDCARD && edge_counts(table, group, SubjectKey { kind, object: member }),
    )
}

/// Breadth-first search upward from `group`: every group reached and the farthest distance.
pub(super) fn search_up(table: &Table, kind: SubjectKind, group: ObjectId) -> Reach {
    let mut reach = Reach::default();
    let mut queue = VecDeque::from([(group, 0u32)]);
    while let Some((current, distance)) = queue.pop_front() {
        for above in up_edges(table, kind, current) {
            if reach.groups.insert_object(above) {
                reach.height = reach.height.max(distance + 1);
                queue.push_back((above, distance + 1));
            }
        }
    }
    reach
}

#[cfg(test)]
mod tests;
