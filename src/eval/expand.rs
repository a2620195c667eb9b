//! `expand`: one level of a relation's userset tree, in OpenFGA's shape.
//!
//! Invariant: leaves name subjects and usersets as text (`user:anne`, `group:eng#member`);
//! nothing below the first level is resolved, as in OpenFGA.
//! Must not import `engine`, `store`, `api`.

use super::compiled::{CompiledRelation, Node};
use super::{EvalError, Evaluator};
use crate::index::{ObjectId, ObjectTypeId, RelationId, SubjectKey};

/// A node of an expand tree; every node is named `type:id#relation`.
#[derive(Debug, Clone, PartialEq)]
pub enum ExpandNode {
    /// A leaf.
    Leaf {
        /// `type:id#relation`.
        name: String,
        /// Its content.
        leaf: ExpandLeaf,
    },
    /// Union of children.
    Union {
        /// `type:id#relation`.
        name: String,
        /// Children.
        nodes: Vec<ExpandNode>,
    },
    /// Intersection of children.
    Intersection {
        /// `type:id#relation`.
        name: String,
        /// Children.
        nodes: Vec<ExpandNode>,
    },
    /// Base minus subtract.
    Difference {
        /// `type:id#relation`.
        name: String,
        /// Who may hold the relation.
        base: Box<ExpandNode>,
        /// Who is excluded.
        subtract: Box<ExpandNode>,
    },
}

/// The content of an expand leaf.
#[derive(Debug, Clone, PartialEq)]
pub enum ExpandLeaf {
    /// Direct subjects.
    Users(Vec<String>),
    /// A computed userset, `document:1#editor`.
    Computed(String),
    /// A tuple to userset: the tupleset and the usersets it leads to.
    TupleToUserset {
        /// `document:1#parent`.
        tupleset: String,
        /// `folder:x#viewer`, one per parent.
        computed: Vec<String>,
    },
}

/// Expands (object_type, object, relation) one level; `object` is `None` for a name the index
/// never saw (its nodes are named from `object_text`).
pub(crate) fn expand(
    evaluator: &Evaluator<'_>,
    object_type: ObjectTypeId,
    object: Option<ObjectId>,
    object_text: &str,
    relation: RelationId,
) -> Result<Option<ExpandNode>, EvalError> {
    let Some(definition) = evaluator.model.relation(object_type, relation) else { return Ok(None) };
    let object = evaluator.walk_object(object_type, object);
    let expander = Expander { evaluator, object_type, object, object_text, relation, definition };
    expander.node(&definition.rewrite).map(Some)
}

struct Expander<'e, 'a> {
    evaluator: &'e Evaluator<'a>,
    object_type: ObjectTypeId,
    object: ObjectId,
    object_text: &'e str,
    relation: RelationId,
    definition: &'e CompiledRelation,
}

impl Expander<'_, '_> {
    fn userset_text(&self, relation: RelationId) -> String {
        let name = self.evaluator.view.relation_name(relation).unwrap_or_default();
        format!("{}#{}", self.object_text, name)
    }

    fn node(&self, node: &Node) -> Result<ExpandNode, EvalError> {
        let name = self.userset_text(self.relation);
        Ok(match node {
            Node::This => ExpandNode::Leaf { name, leaf: ExpandLeaf::Users(self.direct_users()?) },
            Node::Computed(computed) => {
                ExpandNode::Leaf { name, leaf: ExpandLeaf::Computed(self.userset_text(*computed)) }
            }
            // Expand shows an every-parent arrow by its parents, as it does an any-parent one.
            Node::TupleToUserset { tupleset, computed } | Node::TupleToUsersetAll { tupleset, computed } => {
                ExpandNode::Leaf {
                    name,
                    leaf: ExpandLeaf::TupleToUserset {
                        tupleset: self.userset_text(*tupleset),
                        computed: self.parents(*tupleset, *computed)?,
                    },
                }
            }
            Node::Union(children) => ExpandNode::Union { name, nodes: self.nodes(children)? },
            Node::Intersection(children) => ExpandNode::Intersection { name, nodes: self.nodes(children)? },
            Node::Exclusion(base, subtract) => ExpandNode::Difference {
                name,
                base: Box::new(self.node(base)?),
                subtract: Box::new(self.node(subtract)?),
            },
        })
    }

    fn nodes(&self, children: &[Node]) -> Result<Vec<ExpandNode>, EvalError> {
        children.iter().map(|child| self.node(child)).collect()
    }

    fn direct_users(&self) -> Result<Vec<String>, EvalError> {
        let view = self.evaluator.view;
        let mut users = Vec::new();
        for (kind, subjects) in view.forward(self.object_type, self.relation, self.object) {
            let admits = self.definition.admits(kind);
            for subject in subjects {
                let admitted = if subject == ObjectId::WILDCARD { admits.wildcard } else { admits.objects };
                let key = SubjectKey { kind, object: subject };
                if admitted && self.evaluator.tuple_holds(self.object_type, self.relation, self.object, key)? {
                    if let Some(text) = view.subject(key) {
                        users.push(text.to_string());
                    }
                }
            }
        }
        users.sort();
        Ok(users)
    }

    fn parents(&self, tupleset: RelationId, computed: RelationId) -> Result<Vec<String>, EvalError> {
        let evaluator = self.evaluator;
        let view = evaluator.view;
        let computed_name = view.relation_name(computed).unwrap_or_default();
        let mut usersets = Vec::new();
        for parent in evaluator.tupleset_parents(self.object_type, self.object, tupleset, computed) {
            if evaluator.tuple_holds(self.object_type, tupleset, self.object, parent)? {
                if let Some(text) = view.subject(parent) {
                    usersets.push(format!("{text}#{computed_name}"));
                }
            }
        }
        usersets.sort();
        Ok(usersets)
    }
}
