//! A model with its names resolved to index ids: what check and the lookups walk.
//!
//! Invariant: built only after every type and relation name of the model has been interned in
//! the index, so every id here is valid for that index and any overlay on it.
//! Must not import `engine`, `store`, `api`.

use super::condition::Conditions;
use crate::index::{same_name, Index, ObjectTypeId, RelationId, SubjectKind};
use crate::model::{Model, Rewrite};
use rustc_hash::{FxHashMap, FxHashSet};

/// Which subjects of one kind a direct relation admits.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Admits {
    /// Concrete objects (`user`, or usersets `group#member`).
    pub(crate) objects: bool,
    /// The wildcard (`user:*`).
    pub(crate) wildcard: bool,
}

/// The rewrite IR with ids instead of names.
#[derive(Debug, Clone)]
pub(crate) enum Node {
    /// Direct tuples.
    This,
    /// Another relation of the same object.
    Computed(RelationId),
    /// `computed from tupleset`.
    TupleToUserset {
        /// The tupleset relation.
        tupleset: RelationId,
        /// The relation evaluated on each parent.
        computed: RelationId,
    },
    /// `tupleset.all(computed)`: every parent grants (at least one parent).
    TupleToUsersetAll {
        /// The tupleset relation.
        tupleset: RelationId,
        /// The relation evaluated on each parent.
        computed: RelationId,
    },
    /// Any child holds.
    Union(Vec<Node>),
    /// Every child holds.
    Intersection(Vec<Node>),
    /// Base holds and subtract does not.
    Exclusion(Box<Node>, Box<Node>),
}

/// One type restriction exactly as written: which tuples it lets count.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Restriction {
    kind: SubjectKind,
    wildcard: bool,
    /// `Some(name)` for `user with name`.
    condition: Option<Box<str>>,
}

/// One relation of one type.
#[derive(Debug, Clone)]
pub(crate) struct CompiledRelation {
    /// How it is computed.
    pub(crate) rewrite: Node,
    /// Directly admitted subject kinds.
    pub(crate) direct: Vec<(SubjectKind, Admits)>,
    /// The type restrictions with their conditions, for [`CompiledRelation::admits_tuple`].
    restrictions: Vec<Restriction>,
    /// The relations whose tuples on the same object a check of this one reads: its own for
    /// `This`, those of the relations it computes from, and its tuplesets (at most
    /// [`SAME_OBJECT_MAX`]), so the check can read all their entries for the object at once.
    pub(crate) same_object: Vec<RelationId>,
    /// Rewrite `this` with an unconditioned restriction to its own userset (`group#member` on
    /// `group.member`): the only relations [`super::Evaluator::group_closure`] answers for, known
    /// here so a walk asks the index for nothing on the others.
    pub(crate) nests: bool,
}

/// Most relations in a [`CompiledRelation::same_object`] list.
const SAME_OBJECT_MAX: usize = 8;

impl CompiledRelation {
    /// What the relation admits of one subject kind.
    pub(crate) fn admits(&self, kind: SubjectKind) -> Admits {
        self.direct.iter().find(|(k, _)| *k == kind).map(|(_, a)| *a).unwrap_or_default()
    }

    /// Whether a stored tuple of this relation fits the model: some restriction names its subject
    /// kind, wildcard-ness and condition (or lack of one) exactly. OpenFGA ignores a tuple that no
    /// longer fits, e.g. one written without a condition before the model required `with cond`.
    pub(crate) fn admits_tuple(&self, kind: SubjectKind, wildcard: bool, condition: Option<&str>) -> bool {
        self.restrictions
            .iter()
            .any(|r| r.kind == kind && r.wildcard == wildcard && r.condition.as_deref() == condition)
    }

    /// True when some type restriction carries a condition (`user with cond`).
    pub(crate) fn has_conditional_restriction(&self) -> bool {
        self.restrictions.iter().any(|r| r.condition.is_some())
    }

    /// True when some restriction admits a subject kind only with a condition, so that an
    /// unconditioned tuple of that kind must be checked against [`CompiledRelation::admits_tuple`].
    fn needs_tuple_filter(&self) -> bool {
        self.restrictions.iter().any(|r| {
            r.condition.is_some()
                && !self
                    .restrictions
                    .iter()
                    .any(|p| p.kind == r.kind && p.wildcard == r.wildcard && p.condition.is_none())
        })
    }
}

/// A model compiled against one index's interner.
#[derive(Debug, Clone, Default)]
pub(crate) struct CompiledModel {
    relations: FxHashMap<(ObjectTypeId, RelationId), CompiledRelation>,
    types: FxHashMap<ObjectTypeId, Vec<RelationId>>,
    /// For every arrow `computed from tupleset` on a type: the subject kinds it follows (see
    /// [`CompiledModel::parent_kinds`]), resolved once so a walk does not look up the tupleset
    /// and each parent type per step.
    arrows: FxHashMap<(ObjectTypeId, RelationId, RelationId), Box<[SubjectKind]>>,
    /// Relations where an unconditioned tuple may not fit (see `CompiledRelation::needs_tuple_filter`).
    strict: FxHashSet<(ObjectTypeId, RelationId)>,
    /// The model's conditions, each parsed once.
    pub(crate) conditions: Conditions,
    /// The model's type names, each with its id and its relations' names and ids: what every
    /// request's names resolve through (see [`CompiledModel::type_named`]), so a check looks
    /// them up here once instead of in the index's interners and then in the model.
    names: Names<TypeNames>,
}

/// One type's id and its relations by name, in a [`CompiledModel`].
#[derive(Debug, Clone, Default)]
pub(crate) struct TypeNames {
    id: ObjectTypeId,
    relations: Names<RelationId>,
}

impl TypeNames {
    /// The type's id.
    pub(crate) fn id(&self) -> ObjectTypeId {
        self.id
    }

    /// The id of a relation the model defines on this type.
    pub(crate) fn relation(&self, name: &str) -> Option<RelationId> {
        self.relations.get(name).copied()
    }
}

/// A few names with a value each. Models have few types and each type few relations, so up to
/// [`Names::SCAN`] names are found by a scan that compares lengths first and then the bytes
/// inline ([`same_name`]: cheaper than hashing a name); past that, through a hash map.
#[derive(Debug, Clone)]
struct Names<T> {
    entries: Vec<(Box<str>, T)>,
    /// Position in `entries` by name, once there are more than [`Names::SCAN`].
    by_name: Option<FxHashMap<Box<str>, usize>>,
}

impl<T> Default for Names<T> {
    fn default() -> Self {
        Names { entries: Vec::new(), by_name: None }
    }
}

impl<T: Default> Names<T> {
    /// Most names found by a scan.
    const SCAN: usize = 8;

    /// The value of `name`.
    fn get(&self, name: &str) -> Option<&T> {
        let position = match &self.by_name {
            Some(by_name) => *by_name.get(name)?,
            None => self.entries.iter().position(|(known, _)| same_name(known, name))?,
        };
        self.entries.get(position).map(|(_, value)| value)
    }

    /// The value of `name`, added as `T::default()` when absent.
    fn entry(&mut self, name: &str) -> &mut T {
        let found = match &self.by_name {
            Some(by_name) => by_name.get(name).copied(),
            None => self.entries.iter().position(|(known, _)| **known == *name),
        };
        let position = found.unwrap_or_else(|| {
            self.entries.push((name.into(), T::default()));
            let position = self.entries.len() - 1;
            if let Some(by_name) = &mut self.by_name {
                by_name.insert(name.into(), position);
            } else if self.entries.len() > Self::SCAN {
                let by_name = self.entries.iter().enumerate().map(|(at, (known, _))| (known.clone(), at)).collect();
                self.by_name = Some(by_name);
            }
            position
        });
        // INVARIANT: `position` was found in, or just pushed onto, `entries`.
        &mut self.entries[position].1
    }
}

impl CompiledModel {
    /// Interns the model's names in `index` and compiles it.
    pub(crate) fn compile(model: &Model, index: &mut Index) -> Self {
        let mut compiled = CompiledModel { conditions: Conditions::compile(model), ..CompiledModel::default() };
        for type_def in &model.types {
            let type_id = index.intern_type(&type_def.name);
            let relation_ids = compiled.types.entry(type_id).or_default();
            let names = compiled.names.entry(&type_def.name);
            names.id = type_id;
            for relation in &type_def.relations {
                let relation_id = index.intern_relation(&relation.name);
                relation_ids.push(relation_id);
                *names.relations.entry(&relation.name) = relation_id;
            }
        }
        for type_def in &model.types {
            let type_id = index.intern_type(&type_def.name);
            for relation in &type_def.relations {
                let relation_id = index.intern_relation(&relation.name);
                let mut direct: Vec<(SubjectKind, Admits)> = Vec::new();
                let mut restrictions = Vec::new();
                for restriction in &relation.directly_related {
                    let kind = SubjectKind {
                        subject_type: index.intern_type(&restriction.type_name),
                        relation: restriction
                            .relation
                            .as_deref()
                            .map_or(RelationId::NONE, |r| index.intern_relation(r)),
                    };
                    restrictions.push(Restriction {
                        kind,
                        wildcard: restriction.wildcard,
                        condition: restriction.condition.as_deref().map(Box::from),
                    });
                    let position = match direct.iter().position(|(k, _)| *k == kind) {
                        Some(p) => p,
                        None => {
                            direct.push((kind, Admits::default()));
                            direct.len() - 1
                        }
                    };
                    if restriction.wildcard {
                        direct[position].1.wildcard = true;
                    } else {
                        direct[position].1.objects = true;
                    }
                }
                let rewrite = compile_rewrite(&relation.rewrite, index);
                let mut definition =
                    CompiledRelation { rewrite, direct, restrictions, same_object: Vec::new(), nests: false };
                let own = SubjectKind { subject_type: type_id, relation: relation_id };
                definition.nests =
                    matches!(definition.rewrite, Node::This) && definition.admits_tuple(own, false, None);
                if definition.needs_tuple_filter() {
                    compiled.strict.insert((type_id, relation_id));
                }
                compiled.relations.insert((type_id, relation_id), definition);
            }
        }
        let keys: Vec<(ObjectTypeId, RelationId)> = compiled.relations.keys().copied().collect();
        for (type_id, relation_id) in keys {
            let same_object = same_object_relations(&compiled.relations, type_id, relation_id);
            if let Some(definition) = compiled.relations.get_mut(&(type_id, relation_id)) {
                definition.same_object = same_object;
            }
        }
        let mut arrows = Vec::new();
        for (&(type_id, _), definition) in &compiled.relations {
            arrows_of(&definition.rewrite, &mut |tupleset, computed| arrows.push((type_id, tupleset, computed)));
        }
        for (type_id, tupleset, computed) in arrows {
            let kinds = compiled.follow_kinds(type_id, tupleset, computed).collect();
            compiled.arrows.insert((type_id, tupleset, computed), kinds);
        }
        compiled
    }

    /// The type the model defines under `name`, with its relations; the same ids the index's
    /// interners give these names.
    pub(crate) fn type_named(&self, name: &str) -> Option<&TypeNames> {
        self.names.get(name)
    }

    /// The subject kinds `computed from tupleset` follows on `object_type`: the objects (or
    /// usersets, whose relation an arrow ignores, as SpiceDB's `->` does; OpenFGA models never
    /// admit usersets on a tupleset) the tupleset admits, of types that define `computed`.
    /// Only arrows of the model's own rewrites are asked about (every caller takes them from a
    /// [`Node`] of `object_type`), so each is one lookup of what `compile` resolved.
    pub(crate) fn parent_kinds(
        &self,
        object_type: ObjectTypeId,
        tupleset: RelationId,
        computed: RelationId,
    ) -> impl Iterator<Item = SubjectKind> + Clone + '_ {
        self.arrows.get(&(object_type, tupleset, computed)).map_or(&[][..], |kinds| &kinds[..]).iter().copied()
    }

    /// [`CompiledModel::parent_kinds`], worked out from the relations (at compile time).
    fn follow_kinds(
        &self,
        object_type: ObjectTypeId,
        tupleset: RelationId,
        computed: RelationId,
    ) -> impl Iterator<Item = SubjectKind> + '_ {
        self.relation(object_type, tupleset)
            .into_iter()
            .flat_map(|definition| definition.direct.iter())
            .filter(move |(kind, admits)| admits.objects && self.relation(kind.subject_type, computed).is_some())
            .map(|(kind, _)| *kind)
    }

    /// True when an unconditioned tuple of the relation may not fit the model.
    pub(crate) fn is_strict(&self, object_type: ObjectTypeId, relation: RelationId) -> bool {
        !self.strict.is_empty() && self.strict.contains(&(object_type, relation))
    }

    /// Every relation of every type, in no particular order.
    pub(crate) fn relations(&self) -> impl Iterator<Item = ((ObjectTypeId, RelationId), &CompiledRelation)> + '_ {
        self.relations.iter().map(|(key, definition)| (*key, definition))
    }

    /// A relation of a type, if the model defines it.
    pub(crate) fn relation(&self, object_type: ObjectTypeId, relation: RelationId) -> Option<&CompiledRelation> {
        self.relations.get(&(object_type, relation))
    }
}

/// See [`CompiledRelation::same_object`]: a walk of the rewrite through computed relations of
/// the same type, each visited once, in the order a check reads them (a computed relation's own
/// tables where it appears), so the first is the one a check of `relation` reads first.
fn same_object_relations(
    relations: &FxHashMap<(ObjectTypeId, RelationId), CompiledRelation>,
    object_type: ObjectTypeId,
    relation: RelationId,
) -> Vec<RelationId> {
    struct Walk<'r> {
        relations: &'r FxHashMap<(ObjectTypeId, RelationId), CompiledRelation>,
        object_type: ObjectTypeId,
        found: Vec<RelationId>,
        visited: Vec<RelationId>,
    }
    impl Walk<'_> {
        fn add(&mut self, relation: RelationId) {
            if !self.found.contains(&relation) {
                self.found.push(relation);
            }
        }

        fn relation(&mut self, relation: RelationId) {
            if self.visited.contains(&relation) {
                return;
            }
            self.visited.push(relation);
            if let Some(definition) = self.relations.get(&(self.object_type, relation)) {
                self.node(&definition.rewrite, relation);
            }
        }

        fn node(&mut self, node: &Node, own: RelationId) {
            match node {
                Node::This => self.add(own),
                Node::Computed(other) => self.relation(*other),
                Node::TupleToUserset { tupleset, .. } | Node::TupleToUsersetAll { tupleset, .. } => self.add(*tupleset),
                Node::Union(children) | Node::Intersection(children) => {
                    for child in children {
                        self.node(child, own);
                    }
                }
                Node::Exclusion(base, subtract) => {
                    self.node(base, own);
                    self.node(subtract, own);
                }
            }
        }
    }
    let mut walk = Walk { relations, object_type, found: Vec::new(), visited: Vec::new() };
    walk.relation(relation);
    let mut found = walk.found;
    found.truncate(SAME_OBJECT_MAX);
    found
}

/// Calls `found(tupleset, computed)` for every arrow (either kind) in `node`.
fn arrows_of(node: &Node, found: &mut impl FnMut(RelationId, RelationId)) {
    match node {
        Node::This | Node::Computed(_) => {}
        Node::TupleToUserset { tupleset, computed } | Node::TupleToUsersetAll { tupleset, computed } => {
            found(*tupleset, *computed);
        }
        Node::Union(children) | Node::Intersection(children) => {
            for child in children {
                arrows_of(child, found);
            }
        }
        Node::Exclusion(base, subtract) => {
            arrows_of(base, found);
            arrows_of(subtract, found);
        }
    }
}

fn compile_rewrite(rewrite: &Rewrite, index: &mut Index) -> Node {
    match rewrite {
        Rewrite::This => Node::This,
        Rewrite::Computed { relation, .. } => Node::Computed(index.intern_relation(relation)),
        Rewrite::TupleToUserset { tupleset, computed, .. } => Node::TupleToUserset {
            tupleset: index.intern_relation(tupleset),
            computed: index.intern_relation(computed),
        },
        Rewrite::TupleToUsersetAll { tupleset, computed, .. } => Node::TupleToUsersetAll {
            tupleset: index.intern_relation(tupleset),
            computed: index.intern_relation(computed),
        },
        Rewrite::Union(children) => Node::Union(children.iter().map(|c| compile_rewrite(c, index)).collect()),
        Rewrite::Intersection(children) => {
            Node::Intersection(children.iter().map(|c| compile_rewrite(c, index)).collect())
        }
        Rewrite::Exclusion { base, subtract } => {
            Node::Exclusion(Box::new(compile_rewrite(base, index)), Box::new(compile_rewrite(subtract, index)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The relations of `relation` on `object_type`'s `same_object` list, and the expected ones,
    /// as sorted ids.
    fn same_object(
        model: &str,
        object_type: &str,
        relation: &str,
        expected: &[&str],
    ) -> (Vec<RelationId>, Vec<RelationId>) {
        let model = Model::parse_dsl(model).expect("model parses");
        let mut index = Index::default();
        let compiled = CompiledModel::compile(&model, &mut index);
        let (object_type, relation) = (index.intern_type(object_type), index.intern_relation(relation));
        let mut found = compiled.relation(object_type, relation).expect("defined").same_object.clone();
        let mut expected: Vec<RelationId> = expected.iter().map(|name| index.intern_relation(name)).collect();
        found.sort_unstable();
        expected.sort_unstable();
        (found, expected)
    }

    #[test]
    fn same_object_lists_own_computed_and_tupleset_relations_once() {
        let scale = include_str!("../../schema/scale.fga");
        for (relation, expected) in [
            ("viewer", &["viewer", "editor", "owner", "parent"][..]),
            ("can_view", &["viewer", "editor", "owner", "parent", "blocked"]),
            ("owner", &["owner"]),
        ] {
            let (found, expected) = same_object(scale, "document", relation, expected);
            assert_eq!(found, expected, "document#{relation}");
        }
        // The first is the one a check reads first.
        let model = Model::parse_dsl(scale).expect("model parses");
        let mut index = Index::default();
        let compiled = CompiledModel::compile(&model, &mut index);
        let document = index.intern_type("document");
        for (relation, first) in [("viewer", "viewer"), ("can_view", "viewer"), ("owner", "owner")] {
            let found = &compiled.relation(document, index.intern_relation(relation)).expect("defined").same_object;
            assert_eq!(found.first(), Some(&index.intern_relation(first)), "document#{relation}");
        }
        // Relations computed from each other are each listed (and walked) once.
        let pair = "model\n  schema 1.1\ntype user\ntype pair\n  relations\n    define a: [user] or b\n    define b: [user] or a";
        let (found, expected) = same_object(pair, "pair", "a", &["a", "b"]);
        assert_eq!(found, expected);
    }

    /// Only a relation of rewrite `this` that admits its own userset without a condition nests.
    #[test]
    fn nests_only_where_this_admits_its_own_userset_unconditioned() {
        let model = "model\n  schema 1.1\ntype user\ntype team\n  relations\n    define member: [user]\ntype group\n  relations\n    define member: [user, group#member]\n    define owner: [user, group#owner with yes]\n    define admin: [user, group#admin] or owner\n    define lead: [user, team#member]\ncondition yes(flag: bool) {\n  flag\n}\n";
        let model = Model::parse_dsl(model).expect("model parses");
        let mut index = Index::default();
        let compiled = CompiledModel::compile(&model, &mut index);
        let group = index.intern_type("group");
        for (relation, nests) in [("member", true), ("owner", false), ("admin", false), ("lead", false)] {
            let relation = index.intern_relation(relation);
            assert_eq!(compiled.relation(group, relation).expect("defined").nests, nests, "group#{relation:?}");
        }
    }
}
