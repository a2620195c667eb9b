//! ACL tags (DESIGN §11): for one (object type, relation), each object's *tags* (the subjects
//! and usersets that grant it, `user:anne`, `user:*`, `group:eng#member`) and, for one principal,
//! its *memberships* (itself, `type:*`, and every userset it is in), so that a vector store can
//! pre-filter by "tags ∩ memberships ≠ ∅" without an id list.
//!
//! What it owns: when that rule is exact ([`exact`]), how tags are walked ([`Tagger`]), which
//! objects a changed tuple can retag ([`affected`]), and which usersets count as memberships
//! ([`membership_kinds`]).
//!
//! - **Exact** for (type, relation) iff its rewrite is a union of direct grants (objects,
//!   wildcards, usersets), computed relations and `x from parent` arrows, with no condition on any
//!   type restriction, and the same holds for every relation that reaches: computed targets, the
//!   arrows' targets on each parent type, and the relations of the usersets it admits. `and`,
//!   `but not`, `.all` arrows or a conditional restriction anywhere there make it not exact.
//! - **Tags** of object `o`: the subjects of its counting (live, admitted) direct tuples, and the
//!   tags of what it computes from: its own other relations and, through each arrow, its parents'
//!   (recursively, so a document carries its folders' grants). A userset tag is not expanded into
//!   its members: that is what memberships are for.
//! - **Memberships** of principal `p`: `p`, `type(p):*`, and `G:g#m` for every userset kind
//!   `G#m` some exact restriction admits and every `g` with `check(p, m, G:g)` (a list-objects
//!   bitmap, so nested groups are followed transitively).
//!
//! **Invariant:** wherever [`exact`] holds, `tags(o) ∩ memberships(p) ≠ ∅ ⇔ check(p, relation, o)`
//! (property-tested in `tests/acl_tags.rs`), up to check's depth limit: a walk deeper than
//! `max_depth` fails here as it fails there. Where it does not hold, the tags are still walked
//! (every child of `and`, the base of `but not`, conditioned tuples included) but mean nothing.
//! A tuple changes the tags of its own object and, through arrows, of that object's descendants;
//! a change to a userset's members (`group:eng#member@user:anne`) changes no tags, only the
//! memberships of whoever it names.
//! Must not import `engine`, `store`, `api`, nor `sled`, `tokio`, `axum`, `serde_json`.

use super::compiled::{CompiledModel, CompiledRelation, Node};
use super::{EvalError, Evaluator};
use crate::index::{ObjectBitmap, ObjectId, ObjectTypeId, RelationId, SubjectKey, SubjectKind};
use roaring::RoaringBitmap;
use rustc_hash::{FxHashMap, FxHashSet};
use std::rc::Rc;

/// Whether tags of (object type, relation) are exact (see the module doc).
pub(crate) fn exact(model: &CompiledModel, object_type: ObjectTypeId, relation: RelationId) -> bool {
    let mut seen = FxHashSet::default();
    let mut pending = vec![(object_type, relation)];
    while let Some((type_id, relation_id)) = pending.pop() {
        if !seen.insert((type_id, relation_id)) {
            continue;
        }
        let Some(definition) = model.relation(type_id, relation_id) else { return false };
        if definition.has_conditional_restriction()
            || !node_exact(model, type_id, definition, &definition.rewrite, &mut pending)
        {
            return false;
        }
    }
    true
}

/// Whether one rewrite node is a union of exact parts; pushes the relations it depends on.
fn node_exact(
    model: &CompiledModel,
    object_type: ObjectTypeId,
    definition: &CompiledRelation,
    node: &Node,
    pending: &mut Vec<(ObjectTypeId, RelationId)>,
) -> bool {
    match node {
        Node::This => {
            let usersets =
                definition.direct.iter().filter(|(kind, admits)| kind.relation != RelationId::NONE && admits.objects);
            pending.extend(usersets.map(|(kind, _)| (kind.subject_type, kind.relation)));
            true
        }
        Node::Computed(computed) => {
            pending.push((object_type, *computed));
            true
        }
        Node::TupleToUserset { tupleset, computed } => {
            let Some(tupleset_definition) = model.relation(object_type, *tupleset) else { return false };
            if tupleset_definition.has_conditional_restriction() {
                return false;
            }
            pending.extend(model.parent_kinds(object_type, *tupleset, *computed).map(|k| (k.subject_type, *computed)));
            true
        }
        Node::Union(children) => {
            children.iter().all(|child| node_exact(model, object_type, definition, child, pending))
        }
        Node::TupleToUsersetAll { .. } | Node::Intersection(_) | Node::Exclusion(..) => false,
    }
}

/// The userset kinds `G#m` whose members are memberships: those admitted by a direct
/// restriction of the model whose relation `m` on `G` is [`exact`]. Sorted, so answers are stable.
pub(crate) fn membership_kinds(model: &CompiledModel) -> Vec<SubjectKind> {
    let mut kinds: Vec<SubjectKind> = model
        .relations()
        .flat_map(|(_, definition)| definition.direct.iter())
        .filter(|(kind, admits)| kind.relation != RelationId::NONE && admits.objects)
        .map(|(kind, _)| *kind)
        .collect();
    kinds.sort_unstable_by_key(|kind| (kind.subject_type, kind.relation));
    kinds.dedup();
    kinds.retain(|kind| exact(model, kind.subject_type, kind.relation));
    kinds
}

/// One step of a tag walk: (object type, object, relation).
type Step = (ObjectTypeId, ObjectId, RelationId);

/// Walks tags over one view, remembering the tags of every step below the top settled without
/// meeting a cycle (a folder shared by many documents is walked once per request).
pub(crate) struct Tagger<'e, 'a> {
    evaluator: &'e Evaluator<'a>,
    memo: FxHashMap<Step, Rc<[SubjectKey]>>,
    path: Vec<Step>,
    /// Cycles cut so far: a step's tags are path-independent iff this did not change under it.
    cuts: u64,
}

impl<'e, 'a> Tagger<'e, 'a> {
    /// A tagger over the evaluator's view and model.
    pub(crate) fn new(evaluator: &'e Evaluator<'a>) -> Self {
        Tagger { evaluator, memo: FxHashMap::default(), path: Vec::new(), cuts: 0 }
    }

    /// The tags of `relation` on (object type, object), sorted and without repeats.
    pub(crate) fn tags(
        &mut self,
        object_type: ObjectTypeId,
        object: ObjectId,
        relation: RelationId,
    ) -> Result<Vec<SubjectKey>, EvalError> {
        self.path.clear();
        let mut tags = Vec::new();
        self.step((object_type, object, relation), &mut tags)?;
        sort_keys(&mut tags);
        Ok(tags)
    }

    fn step(&mut self, step: Step, out: &mut Vec<SubjectKey>) -> Result<(), EvalError> {
        if let Some(tags) = self.memo.get(&step) {
            out.extend_from_slice(tags);
            return Ok(());
        }
        if self.path.contains(&step) {
            // A cycle adds nothing to a union: what it would add is already being collected.
            self.cuts += 1;
            return Ok(());
        }
        let limit = self.evaluator.limits.max_depth;
        if self.path.len() as u32 >= limit {
            return Err(EvalError::DepthExceeded { limit });
        }
        self.evaluator.limits.check_deadline()?;
        let (object_type, _, relation) = step;
        let Some(definition) = self.evaluator.model.relation(object_type, relation) else { return Ok(()) };
        let (cuts, start) = (self.cuts, out.len());
        self.path.push(step);
        let walked = self.node(step, definition, &definition.rewrite, out);
        self.path.pop();
        walked?;
        // Only steps below the top are shared (a folder by its documents); the top step's tags
        // are the answer, and keeping them would copy every object's tags once more.
        if self.cuts == cuts && !self.path.is_empty() {
            let mut tags = out[start..].to_vec();
            sort_keys(&mut tags);
            self.memo.insert(step, tags.into());
        }
        Ok(())
    }

    fn node(
        &mut self,
        step: Step,
        definition: &CompiledRelation,
        node: &Node,
        out: &mut Vec<SubjectKey>,
    ) -> Result<(), EvalError> {
        let (object_type, object, _) = step;
        match node {
            Node::This => self.direct(step, definition, out),
            Node::Computed(computed) => self.step((object_type, object, *computed), out),
            Node::TupleToUserset { tupleset, computed } | Node::TupleToUsersetAll { tupleset, computed } => {
                let evaluator = self.evaluator;
                let parents: Vec<SubjectKey> =
                    evaluator.tupleset_parents(object_type, object, *tupleset, *computed).collect();
                for parent in parents {
                    if evaluator.tuple_holds_partial(object_type, *tupleset, object, parent)? != Some(false) {
                        self.step((parent.kind.subject_type, parent.object, *computed), out)?;
                    }
                }
                Ok(())
            }
            Node::Union(children) | Node::Intersection(children) => {
                children.iter().try_for_each(|child| self.node(step, definition, child, out))
            }
            Node::Exclusion(base, _) => self.node(step, definition, base, out),
        }
    }

    /// The subjects of the object's direct tuples that the restrictions admit and that count.
    fn direct(
        &mut self,
        step: Step,
        definition: &CompiledRelation,
        out: &mut Vec<SubjectKey>,
    ) -> Result<(), EvalError> {
        let (object_type, object, relation) = step;
        let evaluator = self.evaluator;
        for (kind, subjects) in evaluator.view.forward(object_type, relation, object) {
            let admits = definition.admits(kind);
            for subject in subjects.iter() {
                let admitted = if subject == ObjectId::WILDCARD { admits.wildcard } else { admits.objects };
                let key = SubjectKey { kind, object: subject };
                if admitted && evaluator.tuple_holds_partial(object_type, relation, object, key)? != Some(false) {
                    out.push(key);
                }
            }
        }
        Ok(())
    }
}

/// Sorts subject keys by (type, relation, object) and drops repeats.
fn sort_keys(keys: &mut Vec<SubjectKey>) {
    keys.sort_unstable_by_key(|key| (key.kind.subject_type, key.kind.relation, key.object));
    keys.dedup();
}

/// How a tag walk of one target (object type, relation) reads tuples, for [`affected`]: which
/// steps read which tuples, and which steps read a step.
pub(crate) struct TagGraph {
    target: (ObjectTypeId, RelationId),
    /// Per (type, relation) the walk reaches: the relations of the same object whose tuples it
    /// reads (its own for direct grants, the tupleset for an arrow).
    reads: FxHashMap<(ObjectTypeId, RelationId), Vec<RelationId>>,
    /// Per (type, relation): the steps on the same object that compute from it.
    computed_by: FxHashMap<(ObjectTypeId, RelationId), Vec<RelationId>>,
    /// Per (parent type, relation): the arrows that read it.
    arrows_to: FxHashMap<(ObjectTypeId, RelationId), Vec<Arrow>>,
}

/// An arrow `child_relation: computed from tupleset` on `child_type`, through parents of `kind`.
#[derive(Debug, Clone, Copy)]
struct Arrow {
    child_type: ObjectTypeId,
    tupleset: RelationId,
    child_relation: RelationId,
    kind: SubjectKind,
}

impl TagGraph {
    /// The graph of the walk of (object type, relation) under `model`.
    pub(crate) fn new(model: &CompiledModel, object_type: ObjectTypeId, relation: RelationId) -> Self {
        let mut graph = TagGraph {
            target: (object_type, relation),
            reads: FxHashMap::default(),
            computed_by: FxHashMap::default(),
            arrows_to: FxHashMap::default(),
        };
        let mut pending = vec![(object_type, relation)];
        while let Some(key) = pending.pop() {
            if graph.reads.contains_key(&key) {
                continue;
            }
            let mut reads = Vec::new();
            if let Some(definition) = model.relation(key.0, key.1) {
                graph.add(model, key, &definition.rewrite, &mut reads, &mut pending);
            }
            graph.reads.insert(key, reads);
        }
        graph
    }

    fn add(
        &mut self,
        model: &CompiledModel,
        key: (ObjectTypeId, RelationId),
        node: &Node,
        reads: &mut Vec<RelationId>,
        pending: &mut Vec<(ObjectTypeId, RelationId)>,
    ) {
        let (object_type, relation) = key;
        match node {
            Node::This => reads.push(relation),
            Node::Computed(computed) => {
                self.computed_by.entry((object_type, *computed)).or_default().push(relation);
                pending.push((object_type, *computed));
            }
            Node::TupleToUserset { tupleset, computed } | Node::TupleToUsersetAll { tupleset, computed } => {
                reads.push(*tupleset);
                for kind in model.parent_kinds(object_type, *tupleset, *computed) {
                    let arrow = Arrow { child_type: object_type, tupleset: *tupleset, child_relation: relation, kind };
                    self.arrows_to.entry((kind.subject_type, *computed)).or_default().push(arrow);
                    pending.push((kind.subject_type, *computed));
                }
            }
            Node::Union(children) | Node::Intersection(children) => {
                for child in children {
                    self.add(model, key, child, reads, pending);
                }
            }
            Node::Exclusion(base, _) => self.add(model, key, base, reads, pending),
        }
    }

    /// Whether a tuple of (type, relation) can change some tag of the target.
    pub(crate) fn reads_tuples_of(&self, object_type: ObjectTypeId, relation: RelationId) -> bool {
        self.reads.iter().any(|(&(t, _), reads)| t == object_type && reads.contains(&relation))
    }
}

/// The objects of the graph's target type whose tags a change to tuples of
/// (type, object, relation) (one entry per changed tuple) can have changed, walking up from each
/// changed object to whatever reads it: relations computing from it, and children whose arrows
/// lead to it (through the view's current tupleset tuples).
pub(crate) fn affected(
    evaluator: &Evaluator<'_>,
    graph: &TagGraph,
    changed: &[(ObjectTypeId, ObjectId, RelationId)],
) -> Result<RoaringBitmap, EvalError> {
    let mut found = RoaringBitmap::new();
    let mut seen: FxHashSet<Step> = FxHashSet::default();
    let mut pending: Vec<Step> = Vec::new();
    for &(object_type, object, relation) in changed {
        for (&(t, reader), reads) in &graph.reads {
            if t == object_type && reads.contains(&relation) {
                pending.push((object_type, object, reader));
            }
        }
    }
    let mut visited = 0u32;
    while let Some(step) = pending.pop() {
        if !seen.insert(step) {
            continue;
        }
        visited = visited.wrapping_add(1);
        if visited.is_multiple_of(1024) {
            evaluator.limits.check_deadline()?;
        }
        let (object_type, object, relation) = step;
        if (object_type, relation) == graph.target {
            found.insert_object(object);
        }
        if let Some(computing) = graph.computed_by.get(&(object_type, relation)) {
            pending.extend(computing.iter().map(|&r| (object_type, object, r)));
        }
        for arrow in graph.arrows_to.get(&(object_type, relation)).into_iter().flatten() {
            if arrow.kind.subject_type != object_type {
                continue;
            }
            let parent = SubjectKey { kind: arrow.kind, object };
            let children = evaluator.view.relation_tuples(arrow.child_type, arrow.tupleset).reverse(parent);
            pending.extend(children.iter().map(|child| (arrow.child_type, child, arrow.child_relation)));
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::Index;
    use crate::model::Model;

    fn exact_in(model: &str, object_type: &str, relation: &str) -> bool {
        let model = Model::parse_dsl(model).expect("model parses");
        let mut index = Index::default();
        let compiled = CompiledModel::compile(&model, &mut index);
        exact(&compiled, index.intern_type(object_type), index.intern_relation(relation))
    }

    const HEADER: &str =
        "model\n  schema 1.1\ntype user\ntype group\n  relations\n    define member: [user, group#member]\n";

    #[test]
    fn unions_of_grants_computed_and_parents_are_exact() {
        let model = format!(
            "{HEADER}type folder\n  relations\n    define parent: [folder]\n    define viewer: [user, user:*, group#member] or viewer from parent\ntype doc\n  relations\n    define parent: [folder]\n    define owner: [user]\n    define viewer: [user] or owner or viewer from parent\n"
        );
        assert!(exact_in(&model, "doc", "viewer"));
        assert!(exact_in(&model, "folder", "viewer"));
        assert!(exact_in(&model, "group", "member"));
    }

    #[test]
    fn intersection_exclusion_and_conditions_anywhere_reachable_are_not_exact() {
        let cases = [
            "type doc\n  relations\n    define a: [user]\n    define b: [user]\n    define viewer: a and b\n",
            "type doc\n  relations\n    define a: [user]\n    define b: [user]\n    define viewer: a but not b\n",
            "type doc\n  relations\n    define a: [user]\n    define b: [user]\n    define c: a but not b\n    define viewer: [user] or c\n",
            "type doc\n  relations\n    define viewer: [user with open]\ncondition open(x: bool) {\n  x\n}\n",
            "type team\n  relations\n    define member: [user] but not banned\n    define banned: [user]\ntype doc\n  relations\n    define viewer: [team#member]\n",
            "type folder\n  relations\n    define viewer: [user with open]\ntype doc\n  relations\n    define parent: [folder]\n    define viewer: viewer from parent\ncondition open(x: bool) {\n  x\n}\n",
        ];
        for case in cases {
            assert!(!exact_in(&format!("{HEADER}{case}"), "doc", "viewer"), "{case}");
        }
    }
}
