//! `check`: does a subject hold a relation on an object? One function per rewrite kind.
//!
//! Nested groups (`define member: [user, group#member]`) are answered from the index's group
//! closure where that is exact (`Evaluator::group_closure`); otherwise the walk descends only into
//! member groups the user reaches.
//!
//! Invariant: a path that revisits (object, relation) resolves to `false`; every dispatch to
//! another (object, relation) costs one unit of depth.
//! Must not import `engine`, `store`, `api`.

use super::compiled::{CompiledRelation, Node};
use super::lookup::list_objects;
use super::{EvalError, Evaluator, User};
use crate::index::{
    Closure, Ids, IdsCow, ObjectBitmap, ObjectId, ObjectTypeId, Reach, RelationId, RelationTuples, SubjectKey,
    SubjectKind, View,
};
use roaring::RoaringBitmap;
use rustc_hash::FxHashMap;

/// A sub-answer: a cycle on the current path is neither yes nor no until the top, where it is no
/// (OpenFGA: a cycle under `but not` must not turn into a grant).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Decision {
    Allowed,
    Denied,
    Cycle,
    /// Allowed only if a condition whose context is missing turns out true (SpiceDB's
    /// CONDITIONAL); arises only in partial checks.
    Conditional,
}

/// A check's three-valued answer (SpiceDB's permissionship).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permissionship {
    /// The subject holds the relation.
    Allowed,
    /// The subject holds it if conditions missing context parameters hold.
    Conditional,
    /// The subject does not hold it.
    Denied,
}

/// What the walk meets, as it meets it, for a [`Recorder`].
#[derive(Debug, Clone, Copy)]
pub(super) enum Label<'n> {
    /// Does the user hold `relation` on (object type, object)? Every dispatch opens one.
    Step { object_type: ObjectTypeId, object: ObjectId, relation: RelationId },
    /// One rewrite node of the definition of `relation` on (object type, object).
    Rewrite { object_type: ObjectTypeId, object: ObjectId, relation: RelationId, node: &'n Node },
    /// One tuple (object type, relation, object, subject) the walk looked at; a userset or
    /// tupleset tuple holds the dispatch through it.
    Tuple { object_type: ObjectTypeId, object: ObjectId, relation: RelationId, subject: SubjectKey },
    /// A recursive userset relation answered from the index's group closure (one bitmap test,
    /// no walk below it).
    Closure { object_type: ObjectTypeId, object: ObjectId, relation: RelationId },
}

/// Receives the walk of one check as nested `enter`/`leave` pairs, so explain gets its tree from
/// the very walk `check` does. Every call in the walk sits behind `R::ACTIVE`, so with
/// [`NoRecorder`] (plain `check`) the compiler removes them and the walk is unchanged.
pub(super) trait Recorder {
    /// False for [`NoRecorder`]: nothing is recorded.
    const ACTIVE: bool;
    /// A node opens under the one opened last and not yet left.
    fn enter(&mut self, label: Label<'_>);
    /// The node opened last closes with its result.
    fn leave(&mut self, result: &Result<Decision, EvalError>);
}

/// The recorder of plain `check`: records nothing, costs nothing.
pub(super) struct NoRecorder;

impl Recorder for NoRecorder {
    const ACTIVE: bool = false;
    fn enter(&mut self, _label: Label<'_>) {}
    fn leave(&mut self, _result: &Result<Decision, EvalError>) {}
}

/// "Both hold": a denial or cycle on either side wins, then a conditional side.
fn both(first: Decision, second: Decision) -> Decision {
    use Decision::{Allowed, Conditional, Cycle, Denied};
    match (first, second) {
        (Denied, _) | (_, Denied) => Denied,
        (Cycle, _) | (_, Cycle) => Cycle,
        (Conditional, _) | (_, Conditional) => Conditional,
        (Allowed, Allowed) => Allowed,
    }
}

/// Answers whether `user` holds `relation` on (object_type, object); `object` is `None` for a
/// name the index never saw.
pub(crate) fn check(
    evaluator: &Evaluator<'_>,
    object_type: ObjectTypeId,
    object: Option<ObjectId>,
    relation: RelationId,
    user: User,
) -> Result<bool, EvalError> {
    let mut checker = Checker::new(evaluator, user, false, None, NoRecorder);
    let object = evaluator.walk_object(object_type, object);
    Ok(checker.check(object_type, object, relation, 0)? == Decision::Allowed)
}

/// Like [`check`], but a condition whose context parameters are missing makes its tuple
/// conditional instead of an error; conditional answers combine with three-valued logic
/// through union, intersection, exclusion and arrows (SpiceDB's semantics).
pub(crate) fn check_partial(
    evaluator: &Evaluator<'_>,
    object_type: ObjectTypeId,
    object: Option<ObjectId>,
    relation: RelationId,
    user: User,
) -> Result<Permissionship, EvalError> {
    let mut checker = Checker::new(evaluator, user, true, None, NoRecorder);
    let object = evaluator.walk_object(object_type, object);
    Ok(match checker.check(object_type, object, relation, 0)? {
        Decision::Allowed => Permissionship::Allowed,
        Decision::Conditional => Permissionship::Conditional,
        Decision::Denied | Decision::Cycle => Permissionship::Denied,
    })
}

/// Answers [`check`] for each of `objects` (one type) with one user, in order. One checker serves
/// them all, so the groups the user reaches (which depend on the user alone) are looked up once
/// per batch, and a sub-answer shared by many objects (their common parent folder) is computed
/// once: it is memoized when no cycle was met below it (so it does not depend on the path) and
/// reused only at the same or a shallower depth (so it had no more depth budget than the reuse).
pub(crate) fn check_many(
    evaluator: &Evaluator<'_>,
    object_type: ObjectTypeId,
    objects: &[ObjectId],
    relation: RelationId,
    user: User,
) -> Result<Vec<bool>, EvalError> {
    let mut checker = Checker::new(evaluator, user, false, Some(FxHashMap::default()), NoRecorder);
    objects
        .iter()
        .map(|&object| {
            checker.path = Path::default();
            Ok(checker.check(object_type, object, relation, 0)? == Decision::Allowed)
        })
        .collect()
}

/// Like [`check`] (or, when `partial`, [`check_partial`]), with every node of the walk reported
/// to `recorder` (explain's tree); the answer is theirs, or the error they would return.
pub(super) fn check_recorded<R: Recorder>(
    evaluator: &Evaluator<'_>,
    (object_type, object, relation): (ObjectTypeId, ObjectId, RelationId),
    user: User,
    partial: bool,
    recorder: R,
) -> (Result<Decision, EvalError>, R) {
    let mut checker = Checker::new(evaluator, user, partial, None, recorder);
    let result = checker.check(object_type, object, relation, 0);
    (result, checker.recorder)
}

struct Checker<'e, 'a, R: Recorder> {
    evaluator: &'e Evaluator<'a>,
    user: User,
    path: Path,
    reached: Vec<(SubjectKind, Option<RoaringBitmap>)>,
    /// The user's memberships through each recursive userset relation met (see [`Membership`]).
    memberships: Memberships<'a>,
    /// The tables the walk has read.
    tables: Tables<'a>,
    /// For batches: settled sub-answers with the depth they were computed at.
    memo: Option<FxHashMap<Step, (Decision, u32)>>,
    /// Cycles met so far; a sub-answer is path-independent iff this did not change under it.
    cycles: u64,
    /// Missing condition context yields [`Decision::Conditional`] rather than an error.
    partial: bool,
    /// Dispatches so far: the deadline is read every [`DEADLINE_EVERY`] of them (reading the
    /// clock costs more than a dispatch on some hosts).
    dispatches: u32,
    /// Where the walk is reported ([`NoRecorder`] outside explain).
    recorder: R,
}

impl<'e, 'a, R: Recorder> Checker<'e, 'a, R> {
    /// A checker at the start of a check: empty path, nothing reached, no cycle met yet.
    fn new(
        evaluator: &'e Evaluator<'a>,
        user: User,
        partial: bool,
        memo: Option<FxHashMap<Step, (Decision, u32)>>,
        recorder: R,
    ) -> Self {
        Checker {
            evaluator,
            user,
            path: Path::default(),
            reached: Vec::new(),
            memberships: Memberships::default(),
            tables: Tables::new(evaluator.view),
            memo,
            cycles: 0,
            partial,
            dispatches: 0,
            recorder,
        }
    }
}

/// What the user reaches through one recursive userset relation (groups in groups), looked up on
/// its first ask in a check: the relation's group closure, the groups the user's own tuples name
/// (itself, and its type's wildcard), and, from the second ask on, what each of those reaches. It
/// depends on the user and the view alone, so every grant to a group after the first is decided
/// without a lookup.
struct Membership<'a> {
    /// (object type, relation).
    relation: (ObjectTypeId, RelationId),
    /// [`Evaluator::group_closure`] of it; `None`: the walk decides.
    closure: Option<&'a Closure>,
    /// The groups the user, or its type's wildcard, is directly in (where the model admits that).
    direct: [Option<IdsCow<'a>>; 2],
    /// What each of those groups reaches upward, collected on the second ask: the first reads
    /// them lazily and stops at the first hit, since most checks ask once (is the user in this
    /// group?), while a walk that asks again (a grant to a group at each level of a folder chain)
    /// gains from having them at hand.
    reaches: Option<Vec<&'a Reach>>,
    /// Whether the relation was asked before.
    asked: bool,
    /// Whether the relation admits usersets of other kinds (`team#member`), which the closure
    /// does not cover.
    other_usersets: bool,
}

impl<'a> Membership<'a> {
    /// A relation with no group closure: the walk decides.
    fn none(relation: (ObjectTypeId, RelationId)) -> Self {
        Membership { relation, closure: None, direct: [None, None], reaches: None, asked: false, other_usersets: false }
    }

    /// The closure's answer for `object` with `budget` dispatches left, as
    /// [`Checker::closure_decision`] documents it.
    fn decide(&mut self, object: ObjectId, budget: u32) -> Option<Decision> {
        let closure = self.closure?;
        let direct = &self.direct;
        if direct.iter().flatten().any(|groups| groups.contains(object)) {
            return Some(Decision::Allowed);
        }
        // Plain loops rather than a flattening iterator: its state (two id-set iterators) would
        // be copied at each step.
        let mut too_deep = false;
        if !std::mem::replace(&mut self.asked, true) {
            for groups in direct.iter().flatten() {
                for group in groups.iter() {
                    if closure.reach(group).is_some_and(|reach| grants(reach, object, budget, &mut too_deep)) {
                        return Some(Decision::Allowed);
                    }
                }
            }
        } else {
            let reaches = self.reaches.get_or_insert_with(|| {
                direct.iter().flatten().flat_map(|groups| groups.iter()).filter_map(|g| closure.reach(g)).collect()
            });
            for reach in reaches.iter() {
                if grants(reach, object, budget, &mut too_deep) {
                    return Some(Decision::Allowed);
                }
            }
        }
        (!too_deep && !self.other_usersets).then_some(Decision::Denied)
    }
}

/// Whether `reach` grants `object` within `budget` nested dispatches; a reach that gets there
/// only deeper sets `too_deep` (then the walk decides, and reports the depth).
fn grants(reach: &Reach, object: ObjectId, budget: u32, too_deep: &mut bool) -> bool {
    if !reach.groups.contains_object(object) {
        return false;
    }
    // `height` bounds the nested dispatches the walk would need to get there.
    if reach.height <= budget {
        return true;
    }
    *too_deep = true;
    false
}

/// Memberships kept inline before they spill to the heap: a check rarely meets more than one or
/// two recursive userset relations, and then allocates nothing to keep them.
const INLINE_MEMBERSHIPS: usize = 2;

/// The [`Membership`]s of one check, one per relation.
#[derive(Default)]
struct Memberships<'a> {
    inline: [Option<Membership<'a>>; INLINE_MEMBERSHIPS],
    spill: Vec<Membership<'a>>,
}

impl<'a> Memberships<'a> {
    /// The membership kept for (object type, relation), if any.
    fn get_mut(&mut self, relation: (ObjectTypeId, RelationId)) -> Option<&mut Membership<'a>> {
        // Inline slots fill first, so the spill is searched only when both are taken.
        for membership in self.inline.iter_mut() {
            match membership {
                Some(membership) if membership.relation == relation => return Some(membership),
                Some(_) => {}
                None => return None,
            }
        }
        self.spill.iter_mut().find(|m| m.relation == relation)
    }

    /// Keeps `membership` (of a relation not kept yet), and gives it back where it is kept.
    fn insert(&mut self, membership: Membership<'a>) -> Option<&mut Membership<'a>> {
        match self.inline.iter_mut().find(|slot| slot.is_none()) {
            Some(slot) => Some(slot.insert(membership)),
            None => {
                self.spill.push(membership);
                self.spill.last_mut()
            }
        }
    }
}

/// Tables kept by [`Tables`]; a check reads a handful (a document's and a folder's `viewer` and
/// `parent`, a group's `member`), and past this many the rest are looked up each time.
const KEPT_TABLES: usize = 8;

/// The (object type, relation) tables a check reads, each looked up once: a walk reads the same
/// few at every level, and scanning a handful of keys costs less than hashing one.
struct Tables<'a> {
    view: View<'a>,
    /// The keys apart from the tables, so a look-up scans a few packed pairs.
    keys: [(ObjectTypeId, RelationId); KEPT_TABLES],
    kept: [Option<RelationTuples<'a>>; KEPT_TABLES],
    len: usize,
}

impl<'a> Tables<'a> {
    fn new(view: View<'a>) -> Self {
        Tables { view, keys: Default::default(), kept: [None; KEPT_TABLES], len: 0 }
    }

    /// [`View::relation_tuples`] of (object type, relation).
    fn get(&mut self, object_type: ObjectTypeId, relation: RelationId) -> RelationTuples<'a> {
        let key = (object_type, relation);
        let len = self.len.min(KEPT_TABLES);
        if let Some(Some(tuples)) = self.keys[..len].iter().position(|k| *k == key).map(|at| self.kept[at]) {
            return tuples;
        }
        let tuples = self.view.relation_tuples(object_type, relation);
        if len < KEPT_TABLES {
            self.keys[len] = key;
            self.kept[len] = Some(tuples);
            self.len = len + 1;
        }
        tuples
    }
}

/// How many dispatches may pass between two readings of the deadline clock.
const DEADLINE_EVERY: u32 = 32;

/// One step of a check's path: (object type, object, relation).
type Step = (ObjectTypeId, ObjectId, RelationId);

/// Steps kept inline before the path spills to the heap; most checks stay well below it.
const INLINE_STEPS: usize = 16;

/// The (object, relation) steps on the current path. The first steps live inline, so an
/// ordinary check allocates nothing to detect cycles.
#[derive(Default)]
struct Path {
    inline: [Step; INLINE_STEPS],
    len: usize,
    spill: Vec<Step>,
}

impl Path {
    fn contains(&self, step: Step) -> bool {
        self.inline[..self.len.min(INLINE_STEPS)].contains(&step) || self.spill.contains(&step)
    }

    fn push(&mut self, step: Step) {
        match self.inline.get_mut(self.len) {
            Some(slot) => *slot = step,
            None => self.spill.push(step),
        }
        self.len += 1;
    }

    fn pop(&mut self) {
        if self.len > INLINE_STEPS {
            self.spill.pop();
        }
        self.len = self.len.saturating_sub(1);
    }
}

/// Folds results with "any allowed wins, else the first error, else a cycle, else denied".
#[derive(Default)]
struct AnyOf {
    error: Option<EvalError>,
    cycle: bool,
    conditional: bool,
}

impl AnyOf {
    /// Records one result; true when it settles the answer as allowed.
    fn allowed(&mut self, result: Result<Decision, EvalError>) -> bool {
        match result {
            Ok(Decision::Allowed) => true,
            Ok(Decision::Denied) => false,
            Ok(Decision::Cycle) => {
                self.cycle = true;
                false
            }
            Ok(Decision::Conditional) => {
                self.conditional = true;
                false
            }
            Err(error) => {
                self.error.get_or_insert(error);
                false
            }
        }
    }

    fn finish(self) -> Result<Decision, EvalError> {
        match (self.error, self.conditional, self.cycle) {
            (Some(error), _, _) => Err(error),
            (None, true, _) => Ok(Decision::Conditional),
            (None, false, true) => Ok(Decision::Cycle),
            (None, false, false) => Ok(Decision::Denied),
        }
    }
}

impl<'a, R: Recorder> Checker<'_, 'a, R> {
    /// Whether one tuple counts, given its condition: in a partial check a condition missing
    /// context is [`Decision::Conditional`].
    /// `hold`: every tuple of the relation is known to count ([`Evaluator::all_hold`]).
    // Always inline: left to LLVM, whether this lands in `tuple_then` depends on which codegen
    // unit `Evaluator::tuple_holds` lands in, and a call here costs a prepared check ~2%.
    #[inline(always)]
    fn tuple_decision(
        &self,
        object_type: ObjectTypeId,
        relation: RelationId,
        object: ObjectId,
        subject: SubjectKey,
        hold: bool,
    ) -> Result<Decision, EvalError> {
        if hold {
            return Ok(Decision::Allowed);
        }
        let evaluator = self.evaluator;
        let holds = if self.partial {
            evaluator.tuple_holds_partial(object_type, relation, object, subject)?
        } else {
            Some(evaluator.tuple_holds(object_type, relation, object, subject)?)
        };
        Ok(match holds {
            Some(true) => Decision::Allowed,
            Some(false) => Decision::Denied,
            None => Decision::Conditional,
        })
    }

    /// The member groups in `members` that the user reaches (holds `kind`'s relation on), from
    /// one lookup per kind and check; `None` when that set cannot be computed here (conditions),
    /// so the caller walks every member instead.
    fn reached_members(&mut self, kind: SubjectKind, members: Ids<'_>) -> Option<RoaringBitmap> {
        let position = match self.reached.iter().position(|(k, _)| *k == kind) {
            Some(position) => position,
            None => {
                let evaluator = self.evaluator;
                let reached = if evaluator.view.has_conditions(kind.subject_type, kind.relation) {
                    None
                } else {
                    list_objects(evaluator, kind.subject_type, kind.relation, self.user).ok()
                };
                self.reached.push((kind, reached));
                self.reached.len() - 1
            }
        };
        self.reached[position].1.as_ref().map(|reached| members.intersect(reached))
    }

    fn check(
        &mut self,
        object_type: ObjectTypeId,
        object: ObjectId,
        relation: RelationId,
        depth: u32,
    ) -> Result<Decision, EvalError> {
        if !R::ACTIVE {
            return self.check_step(object_type, object, relation, depth);
        }
        self.recorder.enter(Label::Step { object_type, object, relation });
        let result = self.check_step(object_type, object, relation, depth);
        self.recorder.leave(&result);
        result
    }

    #[inline(always)]
    fn check_step(
        &mut self,
        object_type: ObjectTypeId,
        object: ObjectId,
        relation: RelationId,
        depth: u32,
    ) -> Result<Decision, EvalError> {
        if self.user.is_userset(object_type, object, relation) {
            return Ok(Decision::Allowed);
        }
        if self.path.contains((object_type, object, relation)) {
            self.cycles += 1;
            return Ok(Decision::Cycle);
        }
        let Some(definition) = self.evaluator.model.relation(object_type, relation) else {
            return Ok(Decision::Denied);
        };
        let step = (object_type, object, relation);
        if let Some(&(decision, computed_at)) = self.memo.as_ref().and_then(|memo| memo.get(&step)) {
            if depth <= computed_at {
                return Ok(decision);
            }
        }
        if depth == 0 && definition.same_object.len() > 1 {
            // Read the object's entry in each table the step will read, all at once, so the
            // lookups that follow find them in cache: their cache misses overlap instead of queueing.
            // Only for the object the check starts from: the objects above it (parents, groups)
            // are shared by many checks and mostly in cache, where reading ahead costs for nothing.
            // The first table is the one the step reads at once: it is not read ahead.
            for &relation in definition.same_object.iter().skip(1) {
                self.tables.get(object_type, relation).touch_forward(std::slice::from_ref(&object));
            }
        }
        let cycles = self.cycles;
        self.path.push(step);
        let result = self.rewrite(object_type, object, relation, definition, &definition.rewrite, depth);
        self.path.pop();
        if let (Some(memo), Ok(decision @ (Decision::Allowed | Decision::Denied))) = (&mut self.memo, &result) {
            if self.cycles == cycles {
                memo.insert(step, (*decision, depth));
            }
        }
        result
    }

    fn dispatch(
        &mut self,
        object_type: ObjectTypeId,
        object: ObjectId,
        relation: RelationId,
        depth: u32,
    ) -> Result<Decision, EvalError> {
        let limit = self.evaluator.limits.max_depth;
        if depth + 1 > limit {
            return self.unvisited(object_type, object, relation, EvalError::DepthExceeded { limit });
        }
        if self.dispatches.is_multiple_of(DEADLINE_EVERY) {
            if let Err(error) = self.evaluator.limits.check_deadline() {
                return self.unvisited(object_type, object, relation, error);
            }
        }
        self.dispatches = self.dispatches.wrapping_add(1);
        self.check(object_type, object, relation, depth + 1)
    }

    /// A dispatch that stops before its step: recorded as a step that ends in `error`.
    fn unvisited(
        &mut self,
        object_type: ObjectTypeId,
        object: ObjectId,
        relation: RelationId,
        error: EvalError,
    ) -> Result<Decision, EvalError> {
        let result = Err(error);
        if R::ACTIVE {
            self.recorder.enter(Label::Step { object_type, object, relation });
            self.recorder.leave(&result);
        }
        result
    }

    /// One tuple the walk looks at, recorded as a leaf.
    fn tuple_leaf(
        &mut self,
        object_type: ObjectTypeId,
        relation: RelationId,
        object: ObjectId,
        subject: SubjectKey,
        hold: bool,
    ) -> Result<Decision, EvalError> {
        if !R::ACTIVE {
            return self.tuple_decision(object_type, relation, object, subject, hold);
        }
        self.recorder.enter(Label::Tuple { object_type, object, relation, subject });
        let decision = self.tuple_decision(object_type, relation, object, subject, hold);
        self.recorder.leave(&decision);
        decision
    }

    /// A userset or tupleset tuple and, when it counts, the dispatch to `next` relation of its
    /// subject: "both hold". The tuple is recorded with the dispatch under it.
    fn tuple_then(
        &mut self,
        (object_type, relation, object): (ObjectTypeId, RelationId, ObjectId),
        subject: SubjectKey,
        hold: bool,
        next: RelationId,
        depth: u32,
    ) -> Result<Decision, EvalError> {
        if R::ACTIVE {
            self.recorder.enter(Label::Tuple { object_type, object, relation, subject });
        }
        let result = match self.tuple_decision(object_type, relation, object, subject, hold) {
            Ok(tuple @ (Decision::Allowed | Decision::Conditional)) => self
                .dispatch(subject.kind.subject_type, subject.object, next, depth)
                .map(|decision| both(tuple, decision)),
            other => other,
        };
        if R::ACTIVE {
            self.recorder.leave(&result);
        }
        result
    }

    fn rewrite(
        &mut self,
        object_type: ObjectTypeId,
        object: ObjectId,
        relation: RelationId,
        definition: &CompiledRelation,
        node: &Node,
        depth: u32,
    ) -> Result<Decision, EvalError> {
        if !R::ACTIVE {
            return self.rewrite_node(object_type, object, relation, definition, node, depth);
        }
        self.recorder.enter(Label::Rewrite { object_type, object, relation, node });
        let result = self.rewrite_node(object_type, object, relation, definition, node, depth);
        self.recorder.leave(&result);
        result
    }

    #[inline(always)]
    fn rewrite_node(
        &mut self,
        object_type: ObjectTypeId,
        object: ObjectId,
        relation: RelationId,
        definition: &CompiledRelation,
        node: &Node,
        depth: u32,
    ) -> Result<Decision, EvalError> {
        match node {
            Node::This => self.check_direct(object_type, object, relation, definition, depth),
            Node::Computed(computed) => self.dispatch(object_type, object, *computed, depth),
            Node::TupleToUserset { tupleset, computed } => {
                self.check_tuple_to_userset(object_type, object, *tupleset, *computed, depth)
            }
            Node::TupleToUsersetAll { tupleset, computed } => {
                self.check_tuple_to_userset_all(object_type, object, *tupleset, *computed, depth)
            }
            Node::Union(children) => self.check_union(object_type, object, relation, definition, children, depth),
            Node::Intersection(children) => {
                self.check_intersection(object_type, object, relation, definition, children, depth)
            }
            Node::Exclusion(base, subtract) => {
                self.check_exclusion(object_type, object, relation, definition, base, subtract, depth)
            }
        }
    }

    fn check_direct(
        &mut self,
        object_type: ObjectTypeId,
        object: ObjectId,
        relation: RelationId,
        definition: &CompiledRelation,
        depth: u32,
    ) -> Result<Decision, EvalError> {
        let evaluator = self.evaluator;
        // Only a relation that nests (groups in groups) can have a closure: the others skip the
        // closure's bookkeeping altogether.
        let closed = definition.nests.then(|| self.closure_decision(object_type, object, relation, definition, depth));
        if let Some(decision) = closed.flatten() {
            if R::ACTIVE {
                self.recorder.enter(Label::Closure { object_type, object, relation });
                self.recorder.leave(&Ok(decision));
            }
            return Ok(decision);
        }
        let user = self.user;
        let mut outcome = AnyOf::default();
        let tuples = self.tables.get(object_type, relation);
        let hold = evaluator.all_hold(&tuples, object_type, relation);
        // Direct grants first, then the usersets (a second pass over the same entry, rather than
        // a list of them built per step).
        let mut usersets = false;
        for (kind, subjects) in tuples.forward(object) {
            let admits = definition.admits(kind);
            if kind.relation == RelationId::NONE {
                if kind != user.kind {
                    continue;
                }
                for candidate in [user.object, Some(ObjectId::WILDCARD)] {
                    // A user the index never saw has no id: only the wildcard can name it.
                    let Some(candidate) = candidate else { continue };
                    let admitted = if candidate == ObjectId::WILDCARD { admits.wildcard } else { admits.objects };
                    if admitted && subjects.contains(candidate) {
                        let key = SubjectKey { kind, object: candidate };
                        if outcome.allowed(self.tuple_leaf(object_type, relation, object, key, hold)) {
                            return Ok(Decision::Allowed);
                        }
                    } else if R::ACTIVE && subjects.contains(candidate) {
                        // A tuple the type restrictions do not admit: explain names it.
                        let subject = SubjectKey { kind, object: candidate };
                        self.recorder.enter(Label::Tuple { object_type, object, relation, subject });
                        self.recorder.leave(&Ok(Decision::Denied));
                    }
                }
            } else if admits.objects {
                if let Some(key) = user.key().filter(|key| kind == key.kind && subjects.contains(key.object)) {
                    if outcome.allowed(self.tuple_leaf(object_type, relation, object, key, hold)) {
                        return Ok(Decision::Allowed);
                    }
                }
                usersets = true;
            }
        }
        if !usersets {
            return outcome.finish();
        }
        let userset_entries = tuples.forward(object).filter(|(kind, _)| kind.relation != RelationId::NONE);
        for (kind, subjects) in userset_entries {
            if !definition.admits(kind).objects {
                continue;
            }
            // Recursive membership (groups in groups): rather than walk every nested group, walk
            // only the member groups the user reaches (computed once per check by bitmap lookup);
            // walking them, not answering from the set, keeps OpenFGA's depth accounting.
            let recursive = (kind.subject_type, kind.relation) == (object_type, relation);
            let members = match recursive.then(|| self.reached_members(kind, subjects)).flatten() {
                Some(reached) => IdsCow::owned(reached),
                None => IdsCow::from(subjects),
            };
            for subject in members.iter() {
                let key = SubjectKey { kind, object: subject };
                let tuple = (object_type, relation, object);
                if outcome.allowed(self.tuple_then(tuple, key, hold, kind.relation, depth)) {
                    return Ok(Decision::Allowed);
                }
            }
        }
        outcome.finish()
    }

    /// Answers a recursive userset relation (groups in groups) from its closure: the user holds it
    /// on `object` when a group the user is directly in is `object` or reaches it. `None` when the
    /// walk must decide: the path may be too deep for the depth limit (the walk reports that), or
    /// no group reaches `object` but other userset kinds (`team#member`) might.
    ///
    /// What it reads is the user's [`Membership`] in the relation, looked up once per check.
    fn closure_decision(
        &mut self,
        object_type: ObjectTypeId,
        object: ObjectId,
        relation: RelationId,
        definition: &CompiledRelation,
        depth: u32,
    ) -> Option<Decision> {
        let budget = self.evaluator.limits.max_depth.saturating_sub(depth);
        let key = (object_type, relation);
        if let Some(membership) = self.memberships.get_mut(key) {
            return membership.decide(object, budget);
        }
        let membership = self.membership(object_type, relation, definition);
        self.memberships.insert(membership)?.decide(object, budget)
    }

    /// Looks up the user's [`Membership`] in (object type, relation): the relation's group
    /// closure (`None` when there is none: the walk decides), the groups the user and its type's
    /// wildcard are directly in, and whether the relation admits usersets of other kinds.
    fn membership(
        &self,
        object_type: ObjectTypeId,
        relation: RelationId,
        definition: &CompiledRelation,
    ) -> Membership<'a> {
        let key = (object_type, relation);
        let evaluator = self.evaluator;
        let Some(closure) = evaluator.group_closure(object_type, relation, definition) else {
            return Membership::none(key);
        };
        let user = self.user;
        let tuples = evaluator.view.relation_tuples(object_type, relation);
        let wildcard = SubjectKey { kind: user.kind, object: ObjectId::WILDCARD };
        let own = user
            .key()
            .filter(|key| definition.admits_tuple(key.kind, key.object == ObjectId::WILDCARD, None))
            .map(|key| tuples.reverse(key));
        let public = (user.kind.relation == RelationId::NONE
            && !user.is_wildcard()
            && definition.admits_tuple(user.kind, true, None))
        .then(|| tuples.reverse(wildcard));
        let own_kind = SubjectKind { subject_type: object_type, relation };
        let other_usersets = definition
            .direct
            .iter()
            .any(|(kind, admits)| kind.relation != RelationId::NONE && *kind != own_kind && admits.objects);
        Membership {
            relation: key,
            closure: Some(closure),
            direct: [own, public],
            reaches: None,
            asked: false,
            other_usersets,
        }
    }

    fn check_tuple_to_userset(
        &mut self,
        object_type: ObjectTypeId,
        object: ObjectId,
        tupleset: RelationId,
        computed: RelationId,
        depth: u32,
    ) -> Result<Decision, EvalError> {
        let evaluator = self.evaluator;
        let mut outcome = AnyOf::default();
        let tuples = self.tables.get(object_type, tupleset);
        let hold = evaluator.all_hold(&tuples, object_type, tupleset);
        let kinds = evaluator.model.parent_kinds(object_type, tupleset, computed);
        // [`Evaluator::tupleset_parents`], as loops: its iterator is a few hundred bytes, moved
        // (copied) at every step of the walk.
        for (kind, parents) in tuples.forward(object) {
            if !kinds.clone().any(|k| k == kind) {
                continue;
            }
            for parent in parents.iter().filter(|&parent| parent != ObjectId::WILDCARD) {
                let parent = SubjectKey { kind, object: parent };
                if outcome.allowed(self.tuple_then((object_type, tupleset, object), parent, hold, computed, depth)) {
                    return Ok(Decision::Allowed);
                }
            }
        }
        outcome.finish()
    }

    /// Every parent must grant, and there must be one: "both" over the parents' answers.
    fn check_tuple_to_userset_all(
        &mut self,
        object_type: ObjectTypeId,
        object: ObjectId,
        tupleset: RelationId,
        computed: RelationId,
        depth: u32,
    ) -> Result<Decision, EvalError> {
        let evaluator = self.evaluator;
        let mut combined: Option<Decision> = None;
        for parent in evaluator.tupleset_parents(object_type, object, tupleset, computed) {
            // As in SpiceDB, a parent tuple whose condition fails is a parent that does not grant.
            let decision = self.tuple_then((object_type, tupleset, object), parent, false, computed, depth)?;
            if decision == Decision::Denied {
                return Ok(Decision::Denied);
            }
            combined = Some(combined.map_or(decision, |so_far| both(so_far, decision)));
        }
        Ok(combined.unwrap_or(Decision::Denied))
    }

    fn check_union(
        &mut self,
        object_type: ObjectTypeId,
        object: ObjectId,
        relation: RelationId,
        definition: &CompiledRelation,
        children: &[Node],
        depth: u32,
    ) -> Result<Decision, EvalError> {
        let mut outcome = AnyOf::default();
        for child in children {
            if outcome.allowed(self.rewrite(object_type, object, relation, definition, child, depth)) {
                return Ok(Decision::Allowed);
            }
        }
        outcome.finish()
    }

    fn check_intersection(
        &mut self,
        object_type: ObjectTypeId,
        object: ObjectId,
        relation: RelationId,
        definition: &CompiledRelation,
        children: &[Node],
        depth: u32,
    ) -> Result<Decision, EvalError> {
        let mut error = None;
        let mut combined = Decision::Allowed;
        for child in children {
            match self.rewrite(object_type, object, relation, definition, child, depth) {
                Ok(Decision::Denied) => return Ok(Decision::Denied),
                Ok(decision) => combined = both(combined, decision),
                Err(e) => {
                    error.get_or_insert(e);
                }
            }
        }
        match error {
            Some(e) => Err(e),
            None => Ok(combined),
        }
    }

    #[expect(clippy::too_many_arguments, reason = "one borrowed context plus the node's own parts")]
    fn check_exclusion(
        &mut self,
        object_type: ObjectTypeId,
        object: ObjectId,
        relation: RelationId,
        definition: &CompiledRelation,
        base: &Node,
        subtract: &Node,
        depth: u32,
    ) -> Result<Decision, EvalError> {
        let base_result = self.rewrite(object_type, object, relation, definition, base, depth);
        if let Ok(Decision::Denied) = base_result {
            return Ok(Decision::Denied);
        }
        match self.rewrite(object_type, object, relation, definition, subtract, depth) {
            Ok(Decision::Allowed) => Ok(Decision::Denied),
            Ok(Decision::Denied) => base_result,
            Ok(Decision::Cycle) => base_result.map(|_| Decision::Cycle),
            // Maybe excluded: whatever the base grants becomes conditional.
            Ok(Decision::Conditional) => base_result.map(|base| both(base, Decision::Conditional)),
            Err(e) => base_result.and(Err(e)),
        }
    }
}
