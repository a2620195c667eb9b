//! Explain: the tree of one check, recorded from the very walk `check` does (a [`Recorder`] of
//! `check.rs`), with a result per node, a reason per denied leaf, the tuples that grant an allow
//! (`path`) and the tuples that might grant a deny (`would_allow` candidates, which the engine
//! verifies by re-checking).
//!
//! **Invariant:** the root's result is `check`'s answer for the same request: both come from one
//! walk, and recording never changes what the walk does. Nodes past `max_nodes` are not kept
//! (their parent says it was cut), but the walk under them still runs to the exact answer.
//! Where the index answers from its group closure the node is coarser ("member via nested group
//! closure") and its grant path is rebuilt from the forward tuples.
//! Must not import `engine`, `store`, `api`, nor `sled`, `tokio`, `axum`, `serde_json`.

use super::check::{check_recorded, Decision, Label, Recorder};
use super::compiled::Node;
use super::{EvalError, Evaluator, User};
use crate::index::{ObjectId, ObjectTypeId, RelationId, SubjectKey, SubjectKind, TupleGuard};
use crate::tuple::{ObjectRef, Subject, Tuple};

/// The result of one node of an explanation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeResult {
    /// The subject holds it here.
    Allowed,
    /// The subject does not hold it here.
    Denied,
    /// It holds only if a condition missing context holds.
    Conditional,
    /// The walk met this (object, relation) again on its own path.
    Cycle,
    /// The depth limit stopped the walk here.
    DepthExceeded,
    /// The request's deadline stopped the walk here.
    DeadlineExceeded,
}

impl NodeResult {
    /// The wire name: `allowed`, `denied`, `conditional`, `cycle`, `depth_exceeded`, `deadline_exceeded`.
    pub fn as_str(self) -> &'static str {
        match self {
            NodeResult::Allowed => "allowed",
            NodeResult::Denied => "denied",
            NodeResult::Conditional => "conditional",
            NodeResult::Cycle => "cycle",
            NodeResult::DepthExceeded => "depth_exceeded",
            NodeResult::DeadlineExceeded => "deadline_exceeded",
        }
    }
}

/// Why a leaf denied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    /// No tuple grants it here.
    NoTuple,
    /// The base grants, but the subtracted branch (named) holds.
    Excluded {
        /// The excluding branch, e.g. `blocked`.
        by: String,
    },
    /// The tuple's condition evaluated to false.
    ConditionFalse {
        /// The condition's name.
        condition: String,
        /// The parameters it read.
        parameters: Vec<String>,
    },
    /// The tuple's condition needs parameters neither the tuple nor the request holds.
    MissingContext {
        /// The condition's name.
        condition: String,
        /// The parameters it lacks.
        missing: Vec<String>,
    },
    /// The condition could not be evaluated (a value of the wrong type, a non-bool result).
    ConditionError {
        /// The condition's name.
        condition: String,
        /// What went wrong.
        message: String,
    },
    /// The tuple expired at this instant (milliseconds since the Unix epoch).
    Expired {
        /// The expiry instant.
        at_ms: i64,
    },
    /// A tuple exists but the model's type restrictions do not admit its subject (or condition).
    TypeNotAllowed,
    /// In an on-behalf-of chain, a hop does not hold the delegation relation on the hop before.
    DelegationMissing,
}

impl Reason {
    /// The wire name of the reason.
    pub fn as_str(&self) -> &'static str {
        match self {
            Reason::NoTuple => "no_tuple",
            Reason::Excluded { .. } => "excluded",
            Reason::ConditionFalse { .. } => "condition_false",
            Reason::MissingContext { .. } => "missing_context",
            Reason::ConditionError { .. } => "condition_error",
            Reason::Expired { .. } => "expired",
            Reason::TypeNotAllowed => "type_not_allowed",
            Reason::DelegationMissing => "delegation_missing",
        }
    }
}

/// One node of an explanation tree.
#[derive(Debug, Clone, PartialEq)]
pub struct ExplainNode {
    /// The object of a step or rewrite, `document:q3`.
    pub object: Option<String>,
    /// The relation of a step or rewrite, `viewer`.
    pub relation: Option<String>,
    /// The subject asked about (set on the root of each check).
    pub subject: Option<String>,
    /// The rewrite kind: `direct`, `computed`, `tuple_to_userset`, `tuple_to_userset_all`,
    /// `union`, `intersection`, `exclusion`, or `closure` (a nested-group bitmap test); above the
    /// walks, `obo_chain` (a chain's root), `delegation` (one hop: `subject` holds `relation` on
    /// `object`, the hop before) and `audience` (an audience's root, one child per member).
    pub rewrite: Option<&'static str>,
    /// For arrows, the tupleset relation (`parent`).
    pub tupleset: Option<String>,
    /// For computed usersets and arrows, the relation computed (`viewer`).
    pub computed: Option<String>,
    /// The tuple a tuple node looked at.
    pub tuple: Option<Tuple>,
    /// What this node decided.
    pub result: NodeResult,
    /// Why a leaf denied.
    pub reason: Option<Reason>,
    /// True when children were left out for the node bound (`--max-explain-nodes`).
    pub cut: bool,
    /// The sub-nodes, in the order the walk met them (it stops at the first grant of a union).
    pub children: Vec<ExplainNode>,
    /// For a direct node: the tuple that, written, would grant the subject here.
    pub(crate) candidate: Option<Tuple>,
    /// For a closure node that allowed: the tuples of the nested-group chain.
    pub(crate) grants: Vec<Tuple>,
}

impl ExplainNode {
    fn new(result: NodeResult) -> Self {
        ExplainNode {
            object: None,
            relation: None,
            subject: None,
            rewrite: None,
            tupleset: None,
            computed: None,
            tuple: None,
            result,
            reason: None,
            cut: false,
            children: Vec::new(),
            candidate: None,
            grants: Vec::new(),
        }
    }

    /// A node with a result and no walk below it (an OBO chain's own nodes).
    pub fn leaf(result: NodeResult) -> Self {
        ExplainNode::new(result)
    }

    /// Whether any node in this tree was cut.
    pub fn any_cut(&self) -> bool {
        self.cut || self.children.iter().any(ExplainNode::any_cut)
    }

    /// The tuples that grant an allowed node: for a union (and a step, a direct node, an arrow)
    /// the first child that allowed, for an intersection (an OBO chain, an audience) every child,
    /// for an exclusion its base.
    pub fn path(&self) -> Vec<Tuple> {
        let mut tuples = Vec::new();
        self.collect_path(&mut tuples);
        tuples
    }

    fn collect_path(&self, tuples: &mut Vec<Tuple>) {
        if self.result != NodeResult::Allowed {
            return;
        }
        if let Some(tuple) = &self.tuple {
            tuples.push(tuple.clone());
        }
        tuples.extend(self.grants.iter().cloned());
        match self.rewrite {
            // Every child grants a part: the sides of an `and`, the links and principals of an
            // OBO chain, the members of an audience.
            Some("intersection" | "obo_chain" | "audience") => {
                self.children.iter().for_each(|child| child.collect_path(tuples))
            }
            Some("exclusion") => {
                if let Some(base) = self.children.first() {
                    base.collect_path(tuples);
                }
            }
            _ => {
                if let Some(child) = self.children.iter().find(|c| c.result == NodeResult::Allowed) {
                    child.collect_path(tuples);
                }
            }
        }
    }

    /// Tuples that might grant a denied tree if written alone, shallowest first, without repeats:
    /// candidates only (the caller verifies each by checking with it).
    pub(crate) fn candidates(&self) -> Vec<Tuple> {
        let mut found: Vec<(usize, Tuple)> = Vec::new();
        self.collect_candidates(0, &mut found);
        found.sort_by_key(|(depth, _)| *depth);
        let mut tuples: Vec<Tuple> = Vec::new();
        for (_, tuple) in found {
            if !tuples.contains(&tuple) {
                tuples.push(tuple);
            }
        }
        tuples
    }

    fn collect_candidates(&self, depth: usize, found: &mut Vec<(usize, Tuple)>) {
        if self.result == NodeResult::Allowed {
            return;
        }
        if let Some(candidate) = &self.candidate {
            found.push((depth, candidate.clone()));
        }
        for child in &self.children {
            child.collect_candidates(depth + 1, found);
        }
    }
}

/// Builds the tree of one walk; bounded by `max_nodes`.
struct TreeRecorder<'e, 'a> {
    evaluator: &'e Evaluator<'a>,
    user: User,
    /// The user as asked (its name may be unknown to the index).
    user_text: &'e str,
    /// The root object as asked (its name may be unknown to the index).
    root_text: &'e str,
    /// The walk's (type, id) of the root object when the index never saw its name (see
    /// [`Evaluator::walk_object`]): shown as `root_text`.
    unnamed_root: Option<(ObjectTypeId, ObjectId)>,
    stack: Vec<ExplainNode>,
    root_node: Option<ExplainNode>,
    nodes: usize,
    max_nodes: usize,
    /// How many nodes deep the walk is inside a cut subtree (0: recording).
    skipped: usize,
}

impl Recorder for TreeRecorder<'_, '_> {
    const ACTIVE: bool = true;

    fn enter(&mut self, label: Label<'_>) {
        if self.skipped > 0 || self.nodes >= self.max_nodes {
            if self.skipped == 0 {
                if let Some(parent) = self.stack.last_mut() {
                    parent.cut = true;
                }
            }
            self.skipped += 1;
            return;
        }
        self.nodes += 1;
        let node = self.label_node(label);
        self.stack.push(node);
    }

    fn leave(&mut self, result: &Result<Decision, EvalError>) {
        if self.skipped > 0 {
            self.skipped -= 1;
            return;
        }
        let Some(mut node) = self.stack.pop() else { return };
        self.finish(&mut node, result);
        match self.stack.last_mut() {
            Some(parent) => parent.children.push(node),
            None => self.root_node = Some(node),
        }
    }
}

/// Where a finished node's labels came from, kept until its result is known.
fn node_result(result: &Result<Decision, EvalError>) -> NodeResult {
    match result {
        Ok(Decision::Allowed) => NodeResult::Allowed,
        Ok(Decision::Denied) => NodeResult::Denied,
        Ok(Decision::Conditional) => NodeResult::Conditional,
        Ok(Decision::Cycle) => NodeResult::Cycle,
        Err(EvalError::DepthExceeded { .. }) => NodeResult::DepthExceeded,
        Err(EvalError::DeadlineExceeded) => NodeResult::DeadlineExceeded,
        // OpenFGA answers a missing parameter with an error; explain shows it as what SpiceDB
        // calls it: conditional on the missing context.
        Err(EvalError::Condition { message, .. }) if message.contains("missing context parameters") => {
            NodeResult::Conditional
        }
        Err(EvalError::Condition { .. }) => NodeResult::Denied,
    }
}

impl TreeRecorder<'_, '_> {
    fn object_text(&self, object_type: ObjectTypeId, object: ObjectId) -> String {
        let view = &self.evaluator.view;
        let type_name = view.type_name(object_type).unwrap_or("?");
        match view.object_name(object_type, object) {
            Some(name) => format!("{type_name}:{name}"),
            None if self.unnamed_root == Some((object_type, object)) => self.root_text.to_string(),
            None => format!("{type_name}:?"),
        }
    }

    fn relation_text(&self, relation: RelationId) -> String {
        self.evaluator.view.relation_name(relation).unwrap_or("?").to_string()
    }

    fn subject(&self, key: SubjectKey) -> Option<Subject> {
        match self.evaluator.view.subject(key) {
            Some(subject) => Some(subject),
            None if Some(key) == self.user.key() => self.user_text.parse().ok(),
            None => None,
        }
    }

    /// The tuple (object type, relation, object, subject) as text; `None` if a name is unknown.
    fn tuple(
        &self,
        object_type: ObjectTypeId,
        relation: RelationId,
        object: ObjectId,
        subject: SubjectKey,
    ) -> Option<Tuple> {
        let object_text = self.object_text(object_type, object);
        let (type_name, id) = object_text.split_once(':')?;
        Some(Tuple::new(ObjectRef::new(type_name, id), self.relation_text(relation), self.subject(subject)?))
    }

    fn label_node(&self, label: Label<'_>) -> ExplainNode {
        let mut node = ExplainNode::new(NodeResult::Denied);
        match label {
            Label::Step { object_type, object, relation } => {
                node.object = Some(self.object_text(object_type, object));
                node.relation = Some(self.relation_text(relation));
            }
            Label::Rewrite { object_type, object, relation, node: rewrite } => {
                let (kind, tupleset, computed) = match rewrite {
                    Node::This => ("direct", None, None),
                    Node::Computed(computed) => ("computed", None, Some(*computed)),
                    Node::TupleToUserset { tupleset, computed } => {
                        ("tuple_to_userset", Some(*tupleset), Some(*computed))
                    }
                    Node::TupleToUsersetAll { tupleset, computed } => {
                        ("tuple_to_userset_all", Some(*tupleset), Some(*computed))
                    }
                    Node::Union(_) => ("union", None, None),
                    Node::Intersection(_) => ("intersection", None, None),
                    Node::Exclusion(..) => ("exclusion", None, None),
                };
                node.rewrite = Some(kind);
                node.tupleset = tupleset.map(|r| self.relation_text(r));
                node.computed = computed.map(|r| self.relation_text(r));
                if kind == "direct" {
                    node.candidate = self.direct_candidate(object_type, object, relation);
                }
            }
            Label::Tuple { object_type, object, relation, subject } => {
                node.tuple = self.tuple(object_type, relation, object, subject);
                // Kept for `finish` to find the reason of a tuple that does not count.
                node.object = Some(self.object_text(object_type, object));
                node.relation = Some(self.relation_text(relation));
            }
            Label::Closure { object_type, object, relation } => {
                node.rewrite = Some("closure");
                node.object = Some(self.object_text(object_type, object));
                node.relation = Some(self.relation_text(relation));
                node.candidate = self.direct_candidate(object_type, object, relation);
                node.grants = self.closure_chain(object_type, object, relation);
            }
        }
        node
    }

    /// `object#relation@user`, when the model admits that tuple without a condition.
    fn direct_candidate(&self, object_type: ObjectTypeId, object: ObjectId, relation: RelationId) -> Option<Tuple> {
        let definition = self.evaluator.model.relation(object_type, relation)?;
        let user = self.user;
        if !definition.admits_tuple(user.kind, user.is_wildcard(), None) {
            return None;
        }
        let subject = match user.key() {
            Some(key) => self.subject(key)?,
            // A user the index never saw: only its name says who it is.
            None => self.user_text.parse().ok()?,
        };
        let object_text = self.object_text(object_type, object);
        let (type_name, id) = object_text.split_once(':')?;
        Some(Tuple::new(ObjectRef::new(type_name, id), self.relation_text(relation), subject))
    }

    /// The tuples by which a closure test allowed: the user's own tuple on a group, then the
    /// nested-group tuples from that group up to `object`, found breadth-first upward over the
    /// reverse tuples from the groups the user is directly in (the closure keeps no paths; going
    /// up from the user visits a few groups where going down from `object` would visit its whole
    /// subtree). Empty when no chain is found (then the node is coarse).
    fn closure_chain(&self, object_type: ObjectTypeId, object: ObjectId, relation: RelationId) -> Vec<Tuple> {
        let view = &self.evaluator.view;
        let tuples = view.relation_tuples(object_type, relation);
        let own = SubjectKind { subject_type: object_type, relation };
        let user = self.user;
        // Each group reached, with the group below it (`None` for the user's own groups) and
        // the user's key that holds the first one.
        let mut below: rustc_hash::FxHashMap<ObjectId, Option<ObjectId>> = rustc_hash::FxHashMap::default();
        let mut frontier = Vec::new();
        let mut holder = None;
        for candidate in [user.object, Some(ObjectId::WILDCARD)].into_iter().flatten() {
            let key = SubjectKey { kind: user.kind, object: candidate };
            for group in tuples.reverse(key).iter() {
                if below.insert(group, None).is_none() {
                    frontier.push((group, key));
                }
            }
        }
        let limit = self.evaluator.limits.max_depth as usize + 1;
        let mut found = None;
        'climb: for _ in 0..limit {
            let mut next = Vec::new();
            for &(group, key) in &frontier {
                if group == object {
                    found = Some(group);
                    holder = Some(key);
                    break 'climb;
                }
                for parent in tuples.reverse(SubjectKey { kind: own, object: group }).iter() {
                    if let std::collections::hash_map::Entry::Vacant(entry) = below.entry(parent) {
                        entry.insert(Some(group));
                        next.push((parent, key));
                    }
                }
            }
            if next.is_empty() {
                break;
            }
            frontier = next;
        }
        let (Some(top), Some(holder)) = (found, holder) else { return Vec::new() };
        // Walk down from `object` to the user's group, then give the chain bottom-up.
        let mut steps = Vec::new();
        let mut group = top;
        while let Some(&Some(member)) = below.get(&group) {
            match self.tuple(object_type, relation, group, SubjectKey { kind: own, object: member }) {
                Some(tuple) => steps.push(tuple),
                None => return Vec::new(),
            }
            group = member;
        }
        let Some(first) = self.tuple(object_type, relation, group, holder) else { return Vec::new() };
        steps.push(first);
        steps.reverse();
        steps
    }

    /// Sets a finished node's result and, for a leaf that denied, its reason.
    fn finish(&self, node: &mut ExplainNode, result: &Result<Decision, EvalError>) {
        node.result = node_result(result);
        if let Err(EvalError::Condition { name, message }) = result {
            if node.tuple.is_none() && node.children.is_empty() {
                node.reason = Some(Reason::ConditionError { condition: name.clone(), message: message.clone() });
            }
        }
        if node.result == NodeResult::Allowed {
            return;
        }
        if node.tuple.is_some() {
            // A userset or tupleset tuple that is conditional may be so by its own condition.
            if node.children.is_empty() || matches!(result, Ok(Decision::Conditional)) {
                node.reason = self.tuple_reason(node, result);
            }
            return;
        }
        match node.rewrite {
            Some("direct" | "closure") if node.children.is_empty() && node.result == NodeResult::Denied => {
                node.reason = Some(Reason::NoTuple);
            }
            Some("exclusion") if node.result == NodeResult::Denied => {
                let base_grants = node
                    .children
                    .first()
                    .is_some_and(|base| matches!(base.result, NodeResult::Allowed | NodeResult::Conditional));
                if let Some(subtract) = node.children.get(1).filter(|s| base_grants && s.result == NodeResult::Allowed)
                {
                    let by = subtract
                        .computed
                        .clone()
                        .or_else(|| subtract.rewrite.map(str::to_string))
                        .unwrap_or_else(|| "subtract".to_string());
                    node.reason = Some(Reason::Excluded { by });
                }
            }
            _ => {}
        }
    }

    /// Why a tuple the walk looked at did not count: expired, not admitted, or its condition.
    fn tuple_reason(&self, node: &ExplainNode, result: &Result<Decision, EvalError>) -> Option<Reason> {
        let tuple = node.tuple.as_ref()?;
        let evaluator = self.evaluator;
        let view = &evaluator.view;
        let object_type = view.type_id(&tuple.object.object_type)?;
        let relation = view.relation_id(&tuple.relation)?;
        let object = view.object_id(object_type, &tuple.object.id)?;
        let subject = self.subject_key(&tuple.subject)?;
        let condition = match view.guard(object_type, relation, object, subject) {
            TupleGuard::Expired => {
                return Some(Reason::Expired { at_ms: view.expiry_of(object_type, relation, object, subject)? })
            }
            TupleGuard::Counts => None,
            TupleGuard::Condition(condition) => Some(condition),
        };
        let definition = evaluator.model.relation(object_type, relation)?;
        if !definition.admits_tuple(
            subject.kind,
            subject.object == ObjectId::WILDCARD,
            condition.map(|c| c.name.as_str()),
        ) && (condition.is_some() || evaluator.model.is_strict(object_type, relation) || {
            let admits = definition.admits(subject.kind);
            !(if subject.object == ObjectId::WILDCARD { admits.wildcard } else { admits.objects })
        }) {
            return Some(Reason::TypeNotAllowed);
        }
        let condition = condition?;
        let parameters: Vec<String> =
            evaluator.model.conditions.parameters(&condition.name).into_iter().map(str::to_string).collect();
        let missing_context = || {
            let missing = parameters
                .iter()
                .filter(|p| !condition.context.contains_key(p.as_str()) && !evaluator.context.contains_key(p.as_str()))
                .cloned()
                .collect();
            Reason::MissingContext { condition: condition.name.clone(), missing }
        };
        match result {
            Err(EvalError::Condition { message, .. }) if message.contains("missing context parameters") => {
                Some(missing_context())
            }
            Err(EvalError::Condition { message, .. }) => {
                Some(Reason::ConditionError { condition: condition.name.clone(), message: message.clone() })
            }
            // A three-valued walk: conditional here when this tuple's own condition lacks context
            // (asked again), rather than something below a userset or tupleset tuple.
            Ok(Decision::Conditional) => {
                matches!(evaluator.tuple_holds_partial(object_type, relation, object, subject), Ok(None))
                    .then(missing_context)
            }
            _ => Some(Reason::ConditionFalse { condition: condition.name.clone(), parameters: parameters.clone() }),
        }
    }

    fn subject_key(&self, subject: &Subject) -> Option<SubjectKey> {
        let view = &self.evaluator.view;
        let (type_name, object, relation) = match subject {
            Subject::Object(object) => (object.object_type.as_str(), Some(object.id.as_str()), None),
            Subject::Wildcard(type_name) => (type_name.as_str(), None, None),
            Subject::Userset { object, relation } => {
                (object.object_type.as_str(), Some(object.id.as_str()), Some(relation.as_str()))
            }
        };
        let subject_type = view.type_id(type_name)?;
        let relation = match relation {
            Some(relation) => view.relation_id(relation)?,
            None => RelationId::NONE,
        };
        let object = match object {
            Some(id) => view.object_id(subject_type, id)?,
            None => ObjectId::WILDCARD,
        };
        Some(SubjectKey { kind: SubjectKind { subject_type, relation }, object })
    }
}

/// Merges each step with the one rewrite node under it (a step always holds exactly its
/// relation's rewrite), so the tree reads `document:q3 viewer (union)` rather than two levels.
fn merge_steps(mut node: ExplainNode) -> ExplainNode {
    node.children = std::mem::take(&mut node.children).into_iter().map(merge_steps).collect();
    let is_step = node.rewrite.is_none() && node.tuple.is_none() && node.object.is_some();
    if is_step && node.children.len() == 1 && node.children[0].tuple.is_none() && node.children[0].rewrite.is_some() {
        if let Some(child) = node.children.pop() {
            node.rewrite = child.rewrite;
            node.tupleset = child.tupleset;
            node.computed = child.computed;
            node.reason = child.reason.or(node.reason);
            node.cut |= child.cut;
            node.candidate = child.candidate;
            node.grants = child.grants;
            node.children = child.children;
        }
    }
    node
}

/// What [`explain`] needs besides the evaluator and ids: names as asked, for ids the index has
/// never seen, and the node bound.
pub(crate) struct ExplainInput<'r> {
    /// The root object as asked, `document:q3`.
    pub(crate) object_text: &'r str,
    /// The subject as asked, `user:anne`.
    pub(crate) user_text: &'r str,
    /// Most nodes kept in the tree.
    pub(crate) max_nodes: usize,
    /// Walk as [`super::check_partial`] does (SpiceDB's three values: a condition missing context
    /// makes its tuple conditional) rather than as `check` (where that is an error).
    pub(crate) partial: bool,
}

/// Walks `check` (or `check_partial`, see [`ExplainInput::partial`]) for (object, relation,
/// user) recording every node: the tree, whose root holds the three-valued answer, and `check`'s
/// answer (`Ok(true)`/`Ok(false)`, or its error).
pub(crate) fn explain(
    evaluator: &Evaluator<'_>,
    object_type: ObjectTypeId,
    object: Option<ObjectId>,
    relation: RelationId,
    user: User,
    input: &ExplainInput<'_>,
) -> (Result<bool, EvalError>, ExplainNode) {
    let walked = evaluator.walk_object(object_type, object);
    let recorder = TreeRecorder {
        evaluator,
        user,
        user_text: input.user_text,
        root_text: input.object_text,
        unnamed_root: object.is_none().then_some((object_type, walked)),
        stack: Vec::new(),
        root_node: None,
        nodes: 0,
        max_nodes: input.max_nodes.max(1),
        skipped: 0,
    };
    let (result, recorder) = check_recorded(evaluator, (object_type, walked, relation), user, input.partial, recorder);
    let mut tree = match recorder.root_node {
        Some(root) => merge_steps(root),
        None => ExplainNode::new(node_result(&result)),
    };
    tree.subject = Some(input.user_text.to_string());
    (result.map(|decision| decision == Decision::Allowed), tree)
}
