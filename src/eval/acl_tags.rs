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
use crate::index::{RelationId, TypeId, NO_RELATION};
use rustc_hash::FxHashSet;

/// Whether tags of (object type, relation) are exact (see the module doc).
pub(crate) fn exact(model: &CompiledModel, object_type: TypeId, relation: RelationId) -> bool {
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
    object_type: TypeId,
    definition: &CompiledRelation,
    node: &Node,
    pending: &mut Vec<(TypeId, RelationId)>,
) -> bool {
    match node {
        Node::This => {
            let usersets =
                definition.direct.iter().filter(|(kind, admits)| kind.relation != NO_RELATION && admits.objects);
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
