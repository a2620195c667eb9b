//! List objects and list users by bitmap algebra over whole sets.
//!
//! `list_objects(type, relation, user)` computes, for each (type, relation) reached, the bitmap
//! of objects on which the user holds it: direct = reverse bitmap; `or`/`and`/`but not` = union,
//! intersection, difference; `x from parent` = the children of every parent in `x`'s bitmap.
//! `list_users(object, relation, filter)` computes the subjects of the filter's type that hold it.
//! Recursive relations (nested groups, folder chains) are iterated to a fixed point, except that a
//! relation with an exact group closure (`Evaluator::group_closure`) expands through it instead. When a cycle
//! runs through the subtracted side of an exclusion (not monotone), the set is computed without
//! subtraction and each candidate is confirmed by `check`.
//!
//! Invariant: results equal what `check` answers object by object (and user by user).
//! Must not import `engine`, `store`, `api`.

use super::compiled::{CompiledRelation, Node};
use super::{check, EvalError, Evaluator, Limits, User};
use crate::index::{
    DenseBits, Ids, IdsCow, ObjectBitmap, ObjectId, ObjectTypeId, RelationId, RelationTuples, SubjectKey, SubjectKind,
    TOUCH_WAVE,
};
use rayon::prelude::*;
use roaring::{MultiOps, RoaringBitmap};
use rustc_hash::FxHashMap;

/// Fixed-point bookkeeping shared by both lookups, keyed by what each memoizes.
///
/// A key being computed sits on `stack`. Reading a key that is on the stack (a cycle) returns its
/// value from the previous round and marks how deep the cycle reached; the key that closes the
/// cycle is then re-evaluated, alone, until its value stops changing. A key whose value depended
/// on a key still lower on the stack is not memoized: it is recomputed in that key's next round.
struct FixedPoint<K, V> {
    done: FxHashMap<K, V>,
    partial: FxHashMap<K, V>,
    /// Keys being computed, each with whether a cycle reached it in its current round.
    stack: Vec<(K, bool)>,
    /// The lowest stack position a cycle reached in the current round of the current key.
    low: usize,
    cycle_under_subtraction: bool,
    subtract_depth: u32,
    relaxed: bool,
    rounds: u32,
}

/// Up to this many bitmaps are unioned one by one; more go through one multi-way union.
const FOLD_UNION_PARTS: usize = 32;

/// From this many candidates on, [`ObjectLister::naming_within`] probes them on rayon's threads.
const PARALLEL_PROBES: usize = 4096;
/// From this many subjects on, [`ObjectLister::objects_naming`] reads their lists on rayon's threads.
const PARALLEL_NAMING: usize = 4096;
/// From this many gathered ids on, [`bitmap_of`] sets bits instead of sorting.
const DENSE_GATHER: usize = 4096;
/// ... as long as their range spans at most this many words per id (one id in 64 per word:
/// zeroing and scanning a word costs about what sorting one id does).
const DENSE_GATHER_WORDS: usize = 1;
/// [`ObjectLister::objects_naming`] gathers into bits from this many subjects on ...
const DENSE_GATHER_SUBJECTS: usize = 256;
/// ... when the type's id range spans fewer than this many words per subject (zeroing and
/// scanning a few words costs less than one subject's reverse lookup).
const DENSE_GATHER_WORDS_PER_SUBJECT: usize = 4;
/// Probes at least this many turn the probed set into [`DenseBits`] first.
const DENSE_PROBES: u64 = 256;

/// Fixed-point rounds before a lookup falls back to confirming candidates with `check`.
const MAX_ROUNDS: u32 = 10_000;

/// What [`FixedPoint::enter`] found for a key.
enum Entered<V> {
    /// Its value (final, or the previous round's for a key in a cycle).
    Known(V),
    /// It must be computed; pass the frame to `settled` after each round and to `leave` at the end.
    Compute(Frame),
}

/// One key's computation in progress.
struct Frame {
    position: usize,
    outer_low: usize,
    low_seen: usize,
}

impl<K: std::hash::Hash + Eq + Clone, V: Clone + Default + PartialEq> FixedPoint<K, V> {
    fn new() -> Self {
        FixedPoint {
            done: FxHashMap::default(),
            partial: FxHashMap::default(),
            stack: Vec::new(),
            low: usize::MAX,
            cycle_under_subtraction: false,
            subtract_depth: 0,
            relaxed: false,
            rounds: 0,
        }
    }

    fn enter(&mut self, key: &K) -> Entered<V> {
        if let Some(value) = self.done.get(key) {
            return Entered::Known(value.clone());
        }
        if let Some(position) = self.stack.iter().position(|(k, _)| k == key) {
            self.stack[position].1 = true;
            self.low = self.low.min(position);
            if self.subtract_depth > 0 {
                self.cycle_under_subtraction = true;
            }
            return Entered::Known(self.partial.get(key).cloned().unwrap_or_default());
        }
        let frame = Frame { position: self.stack.len(), outer_low: self.low, low_seen: usize::MAX };
        self.stack.push((key.clone(), false));
        self.low = usize::MAX;
        Entered::Compute(frame)
    }

    /// Records one round's value of the key on top of the stack; true when no further round is
    /// needed (no cycle came back to it, or its value stopped changing).
    fn settled(&mut self, frame: &mut Frame, value: &V) -> bool {
        frame.low_seen = frame.low_seen.min(std::mem::replace(&mut self.low, usize::MAX));
        let (key, reached) = &mut self.stack[frame.position];
        let cyclic = std::mem::replace(reached, false);
        if !cyclic || self.cycle_under_subtraction || self.partial.get(key) == Some(value) {
            return true;
        }
        self.rounds += 1;
        if self.rounds > MAX_ROUNDS {
            // A monotone system over finite sets converges long before this; if it has not,
            // treat it as non-monotone: the caller confirms candidates with `check`.
            self.cycle_under_subtraction = true;
            return true;
        }
        self.partial.insert(key.clone(), value.clone());
        false
    }

    fn leave(&mut self, frame: Frame, value: V) {
        let Some((key, _)) = self.stack.pop() else { return };
        if frame.low_seen >= frame.position {
            self.partial.remove(&key);
            self.done.insert(key, value);
            self.low = frame.outer_low;
        } else {
            self.partial.insert(key, value);
            self.low = frame.outer_low.min(frame.low_seen);
        }
    }
}

/// A lookup that memoizes through a [`FixedPoint`] (both listers), for [`settle`].
trait Memoizing {
    type Key: std::hash::Hash + Eq + Clone;
    type Value: Clone + Default + PartialEq;
    fn state(&mut self) -> &mut FixedPoint<Self::Key, Self::Value>;
}

/// Computes the key of `frame` (just entered) by `round` until it settles (one round unless a
/// cycle came back to it), then leaves it; the deadline is read before every round.
fn settle<L: Memoizing>(
    lister: &mut L,
    limits: Limits,
    mut frame: Frame,
    mut round: impl FnMut(&mut L) -> Result<L::Value, EvalError>,
) -> Result<L::Value, EvalError> {
    let result = loop {
        limits.check_deadline()?;
        let result = round(lister)?;
        if lister.state().settled(&mut frame, &result) {
            break result;
        }
    };
    lister.state().leave(frame, result.clone());
    Ok(result)
}

/// The objects of `object_type` on which `user` holds `relation`.
pub(crate) fn list_objects(
    evaluator: &Evaluator<'_>,
    object_type: ObjectTypeId,
    relation: RelationId,
    user: User,
) -> Result<RoaringBitmap, EvalError> {
    let mut lister = ObjectLister { evaluator, user, state: FixedPoint::new(), named: FxHashMap::default() };
    let objects = lister.objects(object_type, relation)?;
    if !lister.state.cycle_under_subtraction {
        return Ok(objects);
    }
    let mut relaxed = ObjectLister { evaluator, user, state: FixedPoint::new(), named: FxHashMap::default() };
    relaxed.state.relaxed = true;
    let candidates = relaxed.objects(object_type, relation)?;
    let mut confirmed = RoaringBitmap::new();
    for object in candidates.objects() {
        if check(evaluator, object_type, Some(object), relation, user)? {
            confirmed.insert_object(object);
        }
    }
    Ok(confirmed)
}

/// `list_objects(object_type, relation, user) ∩ candidates`, without listing every object: the
/// relation's own rewrite (and the relations of the same object it computes from) is evaluated
/// only at the candidates, while what it reads from other objects (a parent folder's `viewer`, a
/// group's `member`) is listed whole, once. So `viewer from parent` over 10,000 documents probes
/// each candidate's parents instead of unioning the children of every visible folder.
///
/// Exact by construction: each step equals the whole set's step intersected with `candidates`
/// (union, intersection and difference act pointwise), and wherever that is not plain (a
/// relation met again on the same object, a group closure, every-parent arrows, conditioned
/// tuplesets, a cycle under subtraction) it takes the whole set and intersects.
pub(crate) fn list_objects_within(
    evaluator: &Evaluator<'_>,
    object_type: ObjectTypeId,
    relation: RelationId,
    user: User,
    candidates: &RoaringBitmap,
) -> Result<RoaringBitmap, EvalError> {
    let mut lister = ObjectLister { evaluator, user, state: FixedPoint::new(), named: FxHashMap::default() };
    let mut within = Vec::new();
    let objects = lister.objects_within(object_type, relation, candidates, &mut within)?;
    if !lister.state.cycle_under_subtraction {
        return Ok(objects);
    }
    Ok(list_objects(evaluator, object_type, relation, user)? & candidates)
}

struct ObjectLister<'e, 'a> {
    evaluator: &'e Evaluator<'a>,
    user: User,
    state: FixedPoint<(ObjectTypeId, RelationId), RoaringBitmap>,
    /// Per (object type, relation, subject kind): the subjects last asked about and the objects
    /// naming them. A fixed-point round asks again with a superset (a folder chain's visible
    /// folders grow each round), so only the new subjects are looked up.
    named: FxHashMap<(ObjectTypeId, RelationId, SubjectKind), (RoaringBitmap, RoaringBitmap)>,
}

impl Memoizing for ObjectLister<'_, '_> {
    type Key = (ObjectTypeId, RelationId);
    type Value = RoaringBitmap;
    fn state(&mut self) -> &mut FixedPoint<Self::Key, Self::Value> {
        &mut self.state
    }
}

impl<'a> ObjectLister<'_, 'a> {
    /// The user's own object when the user is a userset of (object type, relation): it holds that
    /// relation on that object whatever the tuples say.
    fn own_userset(&self, object_type: ObjectTypeId, relation: RelationId) -> Option<ObjectId> {
        let user = self.user;
        (user.kind.relation != RelationId::NONE
            && (object_type, relation) == (user.kind.subject_type, user.kind.relation))
            .then_some(user.object)
            .flatten()
    }

    fn objects(&mut self, object_type: ObjectTypeId, relation: RelationId) -> Result<RoaringBitmap, EvalError> {
        self.evaluator.limits.check_deadline()?;
        let Some(definition) = self.evaluator.model.relation(object_type, relation) else {
            return Ok(RoaringBitmap::new());
        };
        let frame = match self.state.enter(&(object_type, relation)) {
            Entered::Known(found) => return Ok(found),
            Entered::Compute(frame) => frame,
        };
        // A recursive userset relation with a closure: the direct tuples but the `type#relation`
        // edges, then every group those reach (the least fixed point of "direct ∪ edges upward").
        let closure = self.evaluator.group_closure(object_type, relation, definition);
        settle(self, self.evaluator.limits, frame, |lister| {
            let mut result = match closure {
                Some(_) => lister.direct(object_type, relation, definition, false)?,
                None => lister.rewrite(object_type, relation, definition, &definition.rewrite)?,
            };
            if let Some(own) = lister.own_userset(object_type, relation) {
                result.insert_object(own);
            }
            if let Some(closure) = closure {
                closure.expand(&mut result);
            }
            Ok(result)
        })
    }

    /// [`ObjectLister::objects`] ∩ `candidates`, evaluating the rewrite at the candidates only
    /// (see [`list_objects_within`]); `within` holds the relations being so evaluated.
    fn objects_within(
        &mut self,
        object_type: ObjectTypeId,
        relation: RelationId,
        candidates: &RoaringBitmap,
        within: &mut Vec<RelationId>,
    ) -> Result<RoaringBitmap, EvalError> {
        self.evaluator.limits.check_deadline()?;
        let Some(definition) = self.evaluator.model.relation(object_type, relation) else {
            return Ok(RoaringBitmap::new());
        };
        let whole = within.contains(&relation)
            || self.state.done.contains_key(&(object_type, relation))
            || self.evaluator.group_closure(object_type, relation, definition).is_some();
        if whole {
            return Ok(self.objects(object_type, relation)? & candidates);
        }
        within.push(relation);
        let result = self.rewrite_within(object_type, relation, definition, &definition.rewrite, candidates, within);
        within.pop();
        let mut result = result?;
        if let Some(own) = self.own_userset(object_type, relation).filter(|&own| candidates.contains_object(own)) {
            result.insert_object(own);
        }
        Ok(result)
    }

    /// [`ObjectLister::rewrite`] ∩ `candidates`, node by node.
    fn rewrite_within(
        &mut self,
        object_type: ObjectTypeId,
        relation: RelationId,
        definition: &CompiledRelation,
        node: &Node,
        candidates: &RoaringBitmap,
        within: &mut Vec<RelationId>,
    ) -> Result<RoaringBitmap, EvalError> {
        match node {
            Node::This => Ok(self.direct(object_type, relation, definition, true)? & candidates),
            Node::Computed(computed) => self.objects_within(object_type, *computed, candidates, within),
            Node::TupleToUserset { tupleset, computed } => {
                let evaluator = self.evaluator;
                let mut result = RoaringBitmap::new();
                for kind in evaluator.model.parent_kinds(object_type, *tupleset, *computed) {
                    let parents = self.objects(kind.subject_type, *computed)?;
                    result |= self.naming_within(object_type, *tupleset, kind, &parents, candidates)?;
                }
                Ok(result)
            }
            Node::TupleToUsersetAll { tupleset, computed } => {
                Ok(self.tuple_to_userset_all(object_type, *tupleset, *computed)? & candidates)
            }
            Node::Union(children) => {
                let mut result = RoaringBitmap::new();
                for child in children {
                    result |= self.rewrite_within(object_type, relation, definition, child, candidates, within)?;
                }
                Ok(result)
            }
            Node::Intersection(children) => {
                let mut result: Option<RoaringBitmap> = None;
                for child in children {
                    let set = self.rewrite_within(object_type, relation, definition, child, candidates, within)?;
                    result = Some(match result {
                        Some(acc) => acc & set,
                        None => set,
                    });
                }
                Ok(result.unwrap_or_default())
            }
            Node::Exclusion(base, subtract) => {
                let base_set = self.rewrite_within(object_type, relation, definition, base, candidates, within)?;
                self.state.subtract_depth += 1;
                let subtract_set = self.rewrite_within(object_type, relation, definition, subtract, candidates, within);
                self.state.subtract_depth -= 1;
                Ok(base_set - subtract_set?)
            }
        }
    }

    /// [`ObjectLister::objects_naming`] ∩ `candidates`: with fewer candidates than subjects (and
    /// no conditions to evaluate), each candidate's own tuples are probed instead.
    fn naming_within(
        &mut self,
        object_type: ObjectTypeId,
        relation: RelationId,
        kind: SubjectKind,
        subjects: &RoaringBitmap,
        candidates: &RoaringBitmap,
    ) -> Result<RoaringBitmap, EvalError> {
        let evaluator = self.evaluator;
        let tuples = evaluator.view.relation_tuples(object_type, relation);
        if tuples.has_conditions() || candidates.len() > subjects.len().saturating_mul(2) {
            return Ok(self.naming_incremental(object_type, relation, kind, subjects)? & candidates);
        }
        // Without conditions, a present tuple counts unless it expired or no longer fits the model.
        let every_tuple_counts = !tuples.may_expire() && !evaluator.model.is_strict(object_type, relation);
        // Many probes of one set: as bits, each test is one read (when its range is not much
        // wider than the work at hand).
        let max_words = (subjects.len().max(candidates.len()) as usize).saturating_mul(4);
        let bits = if candidates.len() >= DENSE_PROBES { DenseBits::of(subjects, max_words) } else { None };
        let holds = |subject: ObjectId| match &bits {
            Some(bits) => bits.contains(subject),
            None => subjects.contains_object(subject),
        };
        // One candidate's probe: is some subject it names (of `kind`) in `subjects`?
        let names_one = |object: ObjectId| -> Result<bool, EvalError> {
            for (found, named) in tuples.forward(object) {
                if found != kind {
                    continue;
                }
                for subject in named.iter().filter(|&s| s != ObjectId::WILDCARD && holds(s)) {
                    let key = SubjectKey { kind, object: subject };
                    if every_tuple_counts || evaluator.tuple_holds(object_type, relation, object, key)? {
                        return Ok(true);
                    }
                }
            }
            Ok(false)
        };
        // Each probe is a few dependent memory reads (the candidate's tuples, then its subjects):
        // the candidates go in waves whose tuples are read ahead together (so those reads
        // overlap), and when there are many, split over rayon's threads.
        let probe = |objects: &[ObjectId]| -> Result<RoaringBitmap, EvalError> {
            let mut named = Vec::new();
            for wave in objects.chunks(TOUCH_WAVE) {
                tuples.touch_forward(wave);
                for &object in wave {
                    if names_one(object)? {
                        named.push(object);
                    }
                }
            }
            // Candidates come in ascending order, so the probe's hits do too.
            Ok(RoaringBitmap::from_sorted_objects(named).unwrap_or_default())
        };
        let objects: Vec<ObjectId> = candidates.objects().collect();
        if objects.len() < PARALLEL_PROBES {
            return probe(&objects);
        }
        let chunk = objects.len().div_ceil(rayon::current_num_threads()).max(PARALLEL_PROBES / 2);
        let parts = objects.par_chunks(chunk).map(probe).collect::<Result<Vec<_>, _>>()?;
        Ok(parts.into_iter().fold(RoaringBitmap::new(), |mut all, part| {
            all |= part;
            all
        }))
    }

    fn rewrite(
        &mut self,
        object_type: ObjectTypeId,
        relation: RelationId,
        definition: &CompiledRelation,
        node: &Node,
    ) -> Result<RoaringBitmap, EvalError> {
        match node {
            Node::This => self.direct(object_type, relation, definition, true),
            Node::Computed(computed) => self.objects(object_type, *computed),
            Node::TupleToUserset { tupleset, computed } => self.tuple_to_userset(object_type, *tupleset, *computed),
            Node::TupleToUsersetAll { tupleset, computed } => {
                self.tuple_to_userset_all(object_type, *tupleset, *computed)
            }
            Node::Union(children) => {
                let mut result = RoaringBitmap::new();
                for child in children {
                    result |= self.rewrite(object_type, relation, definition, child)?;
                }
                Ok(result)
            }
            Node::Intersection(children) => {
                let mut result: Option<RoaringBitmap> = None;
                for child in children {
                    let set = self.rewrite(object_type, relation, definition, child)?;
                    result = Some(match result {
                        Some(acc) => acc & set,
                        None => set,
                    });
                }
                Ok(result.unwrap_or_default())
            }
            Node::Exclusion(base, subtract) => {
                let base_set = self.rewrite(object_type, relation, definition, base)?;
                if self.state.relaxed {
                    return Ok(base_set);
                }
                self.state.subtract_depth += 1;
                let subtract_set = self.rewrite(object_type, relation, definition, subtract);
                self.state.subtract_depth -= 1;
                Ok(base_set - subtract_set?)
            }
        }
    }

    /// Objects whose direct tuples on (object type, relation) name `subject`, keeping only
    /// tuples whose condition holds.
    fn reverse(
        &self,
        tuples: RelationTuples<'a>,
        object_type: ObjectTypeId,
        relation: RelationId,
        subject: SubjectKey,
    ) -> Result<IdsCow<'a>, EvalError> {
        let mut objects = tuples.reverse(subject);
        if tuples.has_conditions() || self.evaluator.model.is_strict(object_type, relation) {
            let mut failing = RoaringBitmap::new();
            for object in objects.iter() {
                if !self.evaluator.tuple_holds(object_type, relation, object, subject)? {
                    failing.insert_object(object);
                }
            }
            if !failing.is_empty() {
                *objects.to_mut() -= failing;
            }
        }
        Ok(objects)
    }

    /// Objects whose direct tuples name the user; `with_own_edges: false` leaves out what the
    /// relation's own `type#relation` edges add (the caller expands through the closure instead).
    fn direct(
        &mut self,
        object_type: ObjectTypeId,
        relation: RelationId,
        definition: &CompiledRelation,
        with_own_edges: bool,
    ) -> Result<RoaringBitmap, EvalError> {
        let user = self.user;
        let tuples = self.evaluator.view.relation_tuples(object_type, relation);
        let mut result = RoaringBitmap::new();
        for &(kind, admits) in &definition.direct {
            if kind.relation == RelationId::NONE {
                if kind != user.kind {
                    continue;
                }
                if let Some(key) = user.key().filter(|key| admits.objects && key.object != ObjectId::WILDCARD) {
                    result |= &self.reverse(tuples, object_type, relation, key)?;
                }
                if admits.wildcard {
                    result |= &self.reverse(
                        tuples,
                        object_type,
                        relation,
                        SubjectKey { kind, object: ObjectId::WILDCARD },
                    )?;
                }
            } else if admits.objects {
                if let Some(key) = user.key().filter(|key| key.kind == kind) {
                    result |= &self.reverse(tuples, object_type, relation, key)?;
                }
                if !with_own_edges && (kind.subject_type, kind.relation) == (object_type, relation) {
                    continue;
                }
                let holders = self.objects(kind.subject_type, kind.relation)?;
                result |= self.naming_incremental(object_type, relation, kind, &holders)?;
            }
        }
        Ok(result)
    }

    /// [`ObjectLister::objects_naming`], reusing the previous answer for the same (object type,
    /// relation, kind) when `subjects` contains the subjects it was for: the objects naming a
    /// union of subjects are the union of the objects naming each part.
    fn naming_incremental(
        &mut self,
        object_type: ObjectTypeId,
        relation: RelationId,
        kind: SubjectKind,
        subjects: &RoaringBitmap,
    ) -> Result<RoaringBitmap, EvalError> {
        let key = (object_type, relation, kind);
        let result = match self.named.get(&key) {
            Some((asked, named)) if asked.is_subset(subjects) => {
                let fresh = subjects - asked;
                if fresh.is_empty() {
                    return Ok(named.clone());
                }
                named | self.objects_naming(object_type, relation, kind, &fresh)?
            }
            _ => self.objects_naming(object_type, relation, kind, subjects)?,
        };
        self.named.insert(key, (subjects.clone(), result.clone()));
        Ok(result)
    }

    /// Objects of (object_type, relation) whose tuples name `kind` subjects with ids in `subjects`.
    fn objects_naming(
        &self,
        object_type: ObjectTypeId,
        relation: RelationId,
        kind: SubjectKind,
        subjects: &RoaringBitmap,
    ) -> Result<RoaringBitmap, EvalError> {
        // Small sets go into one sorted array; large ones into one multi-way union (folding many
        // bitmaps in one by one re-copies their containers).
        let tuples = self.evaluator.view.relation_tuples(object_type, relation);
        // The subjects go in waves whose reverse lists are read ahead together, so those reads
        // overlap instead of each waiting on memory in turn; many go on rayon's threads.
        let subjects: Vec<ObjectId> = subjects.objects().filter(|&subject| subject != ObjectId::WILDCARD).collect();
        // Many subjects' short lists go straight into bits over the type's ids when that range
        // is small beside the lists read (no growing list to sort afterwards).
        let span = self.evaluator.view.object_count(object_type);
        let dense = subjects.len() >= DENSE_GATHER_SUBJECTS
            && span as usize / 64 < subjects.len().saturating_mul(DENSE_GATHER_WORDS_PER_SUBJECT);
        let gather = |subjects: &[ObjectId]| -> Result<(Gathered, Vec<IdsCow<'a>>), EvalError> {
            let mut few = Gathered { bits: if dense { DenseBits::zeroed(span) } else { None }, list: Vec::new() };
            let mut parts = Vec::new();
            for wave in subjects.chunks(TOUCH_WAVE) {
                tuples.touch_reverse(kind, wave);
                for &subject in wave {
                    let objects = self.reverse(tuples, object_type, relation, SubjectKey { kind, object: subject })?;
                    match objects.ids() {
                        Ids::Many(_) => parts.push(objects),
                        small => few.extend(small),
                    }
                }
            }
            Ok((few, parts))
        };
        let (few, parts) = if subjects.len() >= PARALLEL_NAMING {
            let chunk = subjects.len().div_ceil(rayon::current_num_threads()).max(PARALLEL_NAMING / 2);
            let pieces = subjects.par_chunks(chunk).map(gather).collect::<Result<Vec<_>, _>>()?;
            let empty = Gathered { bits: None, list: Vec::new() };
            pieces.into_iter().fold((empty, Vec::new()), |(few, mut parts), (more_few, more_parts)| {
                parts.extend(more_parts);
                (few.merge(more_few), parts)
            })
        } else {
            gather(&subjects)?
        };
        let mut result = few.into_bitmap();
        // The multi-way union builds dense containers first: worth it only for many parts.
        if parts.len() <= FOLD_UNION_PARTS {
            for part in &parts {
                result |= part;
            }
            return Ok(result);
        }
        let mut large: Vec<&RoaringBitmap> = vec![&result];
        for part in &parts {
            if let Ids::Many(bitmap) = part.ids() {
                large.push(bitmap);
            }
        }
        Ok(large.into_iter().union())
    }

    fn tuple_to_userset(
        &mut self,
        object_type: ObjectTypeId,
        tupleset: RelationId,
        computed: RelationId,
    ) -> Result<RoaringBitmap, EvalError> {
        let evaluator = self.evaluator;
        let mut result = RoaringBitmap::new();
        for kind in evaluator.model.parent_kinds(object_type, tupleset, computed) {
            let parents = self.objects(kind.subject_type, computed)?;
            result |= self.naming_incremental(object_type, tupleset, kind, &parents)?;
        }
        Ok(result)
    }

    /// Objects some of whose parents grant, kept when every parent does.
    fn tuple_to_userset_all(
        &mut self,
        object_type: ObjectTypeId,
        tupleset: RelationId,
        computed: RelationId,
    ) -> Result<RoaringBitmap, EvalError> {
        let evaluator = self.evaluator;
        let mut granting = Vec::new();
        for kind in evaluator.model.parent_kinds(object_type, tupleset, computed) {
            granting.push((kind, self.objects(kind.subject_type, computed)?));
        }
        let candidates = self.tuple_to_userset(object_type, tupleset, computed)?;
        let mut result = RoaringBitmap::new();
        for object in candidates.objects() {
            let mut every = true;
            for parent in evaluator.tupleset_parents(object_type, object, tupleset, computed) {
                let grants = evaluator.tuple_holds(object_type, tupleset, object, parent)?
                    && granting.iter().any(|(kind, set)| *kind == parent.kind && set.contains_object(parent.object));
                if !grants {
                    every = false;
                    break;
                }
            }
            if every {
                result.insert_object(object);
            }
        }
        Ok(result)
    }
}

/// Object ids gathered from many reverse lists by [`ObjectLister::objects_naming`]: as bits over
/// the type's ids when it chose so, else (and for an id outside them) as a list.
struct Gathered {
    bits: Option<DenseBits>,
    list: Vec<ObjectId>,
}

impl Gathered {
    fn extend(&mut self, ids: Ids<'_>) {
        match &mut self.bits {
            Some(bits) => self.list.extend(ids.iter().filter(|&id| !bits.insert(id))),
            None => self.list.extend(ids.iter()),
        }
    }

    /// Both gatherings in one (bits of one type's range, as every gather of a lookup has).
    fn merge(mut self, other: Gathered) -> Gathered {
        self.list.extend(other.list);
        match (&mut self.bits, other.bits) {
            (Some(bits), Some(more)) => {
                if !bits.union_with(&more) {
                    self.list.extend(more.to_bitmap().objects());
                }
            }
            (None, more) => self.bits = more,
            (Some(_), None) => {}
        }
        self
    }

    fn into_bitmap(self) -> RoaringBitmap {
        let mut bitmap = bitmap_of(self.list);
        if let Some(bits) = self.bits {
            bitmap |= bits.to_bitmap();
        }
        bitmap
    }
}

/// `ids` (in any order, repeats allowed) as a bitmap. Many ids within a range not much wider
/// than their count go through one bit per id of the range: setting the bits and building the
/// containers from the words costs far less than sorting (a folder tree's ~100k documents,
/// gathered from thousands of short reverse lists, sorted in about as long as the whole rest of
/// the list objects took). Fewer, or more spread out, are sorted.
fn bitmap_of(mut ids: Vec<ObjectId>) -> RoaringBitmap {
    if ids.len() >= DENSE_GATHER {
        if let Some(bits) = DenseBits::of_ids(&ids, ids.len().saturating_mul(DENSE_GATHER_WORDS)) {
            return bits.to_bitmap();
        }
    }
    ids.sort_unstable();
    ids.dedup();
    // Sorted and deduplicated, so `from_sorted_objects` takes every id.
    RoaringBitmap::from_sorted_objects(ids).unwrap_or_default()
}

/// The subjects a list-users request asks for: a type, and for usersets a relation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct UserFilter {
    /// The subject type.
    pub(crate) subject_type: ObjectTypeId,
    /// [`RelationId::NONE`] for objects and wildcards, else the userset relation.
    pub(crate) relation: RelationId,
}

/// Subjects of one filter type: explicit object ids, plus, when `wildcard` is set, every object
/// of the type except those in `excluded` (so `user:* but not user:eve` stays exact).
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct UserSet {
    /// Object ids of the filter type.
    pub(crate) ids: RoaringBitmap,
    /// True if `type:*` is among the results.
    pub(crate) wildcard: bool,
    /// With `wildcard`: the objects the wildcard does not cover.
    pub(crate) excluded: RoaringBitmap,
}

impl UserSet {
    fn union_with(&mut self, other: &UserSet) {
        self.excluded = match (self.wildcard, other.wildcard) {
            (true, true) => &self.excluded & &other.excluded,
            (true, false) => &self.excluded - &other.ids,
            (false, true) => &other.excluded - &self.ids,
            (false, false) => RoaringBitmap::new(),
        };
        self.ids |= &other.ids;
        self.wildcard |= other.wildcard;
    }

    fn intersect(&self, other: &UserSet) -> UserSet {
        let mut ids = &self.ids & &other.ids;
        if self.wildcard {
            ids |= &other.ids - &self.excluded;
        }
        if other.wildcard {
            ids |= &self.ids - &other.excluded;
        }
        let wildcard = self.wildcard && other.wildcard;
        let excluded = if wildcard { &self.excluded | &other.excluded } else { RoaringBitmap::new() };
        UserSet { ids, wildcard, excluded }
    }

    fn subtract(&self, other: &UserSet) -> UserSet {
        if other.wildcard {
            // Only what the other side's wildcard leaves out can remain.
            let mut ids = &self.ids & &other.excluded;
            if self.wildcard {
                ids |= &other.excluded - &self.excluded;
            }
            return UserSet { ids, wildcard: false, excluded: RoaringBitmap::new() };
        }
        let ids = &self.ids - &other.ids;
        let excluded = if self.wildcard { &self.excluded | &other.ids } else { RoaringBitmap::new() };
        UserSet { ids, wildcard: self.wildcard, excluded }
    }
}

/// The subjects matching `filter` that hold `relation` on (object_type, object).
pub(crate) fn list_users(
    evaluator: &Evaluator<'_>,
    object_type: ObjectTypeId,
    named: Option<ObjectId>,
    relation: RelationId,
    filter: UserFilter,
) -> Result<UserSet, EvalError> {
    let object = evaluator.walk_object(object_type, named);
    let unnamed = named.is_none().then_some((object_type, object));
    let mut lister = UserLister { evaluator, filter, unnamed, state: FixedPoint::new(), calls: 0 };
    let users = lister.users(object_type, object, relation, 0)?;
    if !lister.state.cycle_under_subtraction {
        return Ok(users);
    }
    let mut relaxed = UserLister { evaluator, filter, unnamed, state: FixedPoint::new(), calls: 0 };
    relaxed.state.relaxed = true;
    let candidates = relaxed.users(object_type, object, relation, 0)?;
    let kind = SubjectKind { subject_type: filter.subject_type, relation: filter.relation };
    let mut confirmed = UserSet::default();
    for id in candidates.ids.objects() {
        if check(evaluator, object_type, named, relation, User { kind, object: Some(id) })? {
            confirmed.ids.insert_object(id);
        }
    }
    confirmed.wildcard = candidates.wildcard
        && check(evaluator, object_type, named, relation, User { kind, object: Some(ObjectId::WILDCARD) })?;
    Ok(confirmed)
}

struct UserLister<'e, 'a> {
    evaluator: &'e Evaluator<'a>,
    filter: UserFilter,
    /// The walk's (type, id) of the asked object when the index never saw its name: it is not
    /// a userset the filter can name (the engine adds that one by name).
    unnamed: Option<(ObjectTypeId, ObjectId)>,
    state: FixedPoint<(ObjectTypeId, ObjectId, RelationId), UserSet>,
    /// Calls to `users` so far (the deadline is read every 32nd).
    calls: u32,
}

impl Memoizing for UserLister<'_, '_> {
    type Key = (ObjectTypeId, ObjectId, RelationId);
    type Value = UserSet;
    fn state(&mut self) -> &mut FixedPoint<Self::Key, Self::Value> {
        &mut self.state
    }
}

impl UserLister<'_, '_> {
    fn users(
        &mut self,
        object_type: ObjectTypeId,
        object: ObjectId,
        relation: RelationId,
        depth: u32,
    ) -> Result<UserSet, EvalError> {
        let limit = self.evaluator.limits.max_depth;
        if depth > limit {
            return Err(EvalError::DepthExceeded { limit });
        }
        // The clock is read every 32 calls: on some hosts reading it costs more than a call.
        if self.calls.is_multiple_of(32) {
            self.evaluator.limits.check_deadline()?;
        }
        self.calls = self.calls.wrapping_add(1);
        let Some(definition) = self.evaluator.model.relation(object_type, relation) else {
            return Ok(UserSet::default());
        };
        let frame = match self.state.enter(&(object_type, object, relation)) {
            Entered::Known(found) => return Ok(found),
            Entered::Compute(frame) => frame,
        };
        settle(self, self.evaluator.limits, frame, |lister| {
            let mut result = lister.rewrite(object_type, object, relation, definition, &definition.rewrite, depth)?;
            let filter = lister.filter;
            if filter.relation != RelationId::NONE
                && lister.unnamed != Some((object_type, object))
                && (object_type, relation) == (filter.subject_type, filter.relation)
            {
                result.ids.insert_object(object);
            }
            Ok(result)
        })
    }

    fn rewrite(
        &mut self,
        object_type: ObjectTypeId,
        object: ObjectId,
        relation: RelationId,
        definition: &CompiledRelation,
        node: &Node,
        depth: u32,
    ) -> Result<UserSet, EvalError> {
        match node {
            Node::This => self.direct(object_type, object, relation, definition, depth),
            Node::Computed(computed) => self.users(object_type, object, *computed, depth + 1),
            Node::TupleToUserset { tupleset, computed } => {
                self.tuple_to_userset(object_type, object, *tupleset, *computed, depth)
            }
            Node::TupleToUsersetAll { tupleset, computed } => {
                self.tuple_to_userset_all(object_type, object, *tupleset, *computed, depth)
            }
            Node::Union(children) => {
                let mut result = UserSet::default();
                for child in children {
                    result.union_with(&self.rewrite(object_type, object, relation, definition, child, depth)?);
                }
                Ok(result)
            }
            Node::Intersection(children) => {
                let mut result: Option<UserSet> = None;
                for child in children {
                    let set = self.rewrite(object_type, object, relation, definition, child, depth)?;
                    result = Some(match result {
                        Some(acc) => acc.intersect(&set),
                        None => set,
                    });
                }
                Ok(result.unwrap_or_default())
            }
            Node::Exclusion(base, subtract) => {
                let base_set = self.rewrite(object_type, object, relation, definition, base, depth)?;
                if self.state.relaxed {
                    return Ok(base_set);
                }
                self.state.subtract_depth += 1;
                let subtract_set = self.rewrite(object_type, object, relation, definition, subtract, depth);
                self.state.subtract_depth -= 1;
                Ok(base_set.subtract(&subtract_set?))
            }
        }
    }

    fn direct(
        &mut self,
        object_type: ObjectTypeId,
        object: ObjectId,
        relation: RelationId,
        definition: &CompiledRelation,
        depth: u32,
    ) -> Result<UserSet, EvalError> {
        let evaluator = self.evaluator;
        let filter = self.filter;
        let mut result = UserSet::default();
        let mut usersets = Vec::new();
        for (kind, subjects) in evaluator.view.forward(object_type, relation, object) {
            let admits = definition.admits(kind);
            if !admits.objects && !admits.wildcard {
                continue;
            }
            let matches_filter = kind.subject_type == filter.subject_type && kind.relation == filter.relation;
            for subject in subjects {
                let is_wildcard = subject == ObjectId::WILDCARD;
                if (is_wildcard && !admits.wildcard) || (!is_wildcard && !admits.objects) {
                    continue;
                }
                let key = SubjectKey { kind, object: subject };
                if !evaluator.tuple_holds(object_type, relation, object, key)? {
                    continue;
                }
                if matches_filter {
                    if is_wildcard {
                        result.wildcard = true;
                    } else {
                        result.ids.insert_object(subject);
                    }
                }
                if kind.relation != RelationId::NONE {
                    usersets.push(key);
                }
            }
        }
        for key in usersets {
            result.union_with(&self.users(key.kind.subject_type, key.object, key.kind.relation, depth + 1)?);
        }
        Ok(result)
    }

    fn tuple_to_userset(
        &mut self,
        object_type: ObjectTypeId,
        object: ObjectId,
        tupleset: RelationId,
        computed: RelationId,
        depth: u32,
    ) -> Result<UserSet, EvalError> {
        let evaluator = self.evaluator;
        let mut result = UserSet::default();
        for parent in evaluator.tupleset_parents(object_type, object, tupleset, computed) {
            if !evaluator.tuple_holds(object_type, tupleset, object, parent)? {
                continue;
            }
            result.union_with(&self.users(parent.kind.subject_type, parent.object, computed, depth + 1)?);
        }
        Ok(result)
    }
    /// Users every parent grants (none without a parent).
    fn tuple_to_userset_all(
        &mut self,
        object_type: ObjectTypeId,
        object: ObjectId,
        tupleset: RelationId,
        computed: RelationId,
        depth: u32,
    ) -> Result<UserSet, EvalError> {
        let evaluator = self.evaluator;
        let mut result: Option<UserSet> = None;
        for parent in evaluator.tupleset_parents(object_type, object, tupleset, computed) {
            // A parent tuple whose condition fails is a parent that grants no one.
            let set = if evaluator.tuple_holds(object_type, tupleset, object, parent)? {
                self.users(parent.kind.subject_type, parent.object, computed, depth + 1)?
            } else {
                UserSet::default()
            };
            result = Some(match result {
                Some(acc) => acc.intersect(&set),
                None => set,
            });
        }
        Ok(result.unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::Id;
    use rand::{rngs::StdRng, Rng, SeedableRng};

    /// Gathered ids become the same bitmap whether they go through bits (many, dense) or a sort
    /// (few, or spread wider than a word per id), repeats included.
    #[test]
    fn bitmap_of_gathered_ids_equals_the_sorted_set() {
        let mut rng = StdRng::seed_from_u64(31);
        for (count, range) in [(10, 1_000), (DENSE_GATHER, 100_000), (100_000, 320_000), (20_000, 50_000_000)] {
            let ids: Vec<ObjectId> = (0..count).map(|_| ObjectId::from_raw(rng.gen_range(0..range))).collect();
            let expected: RoaringBitmap = ids.iter().copied().collect();
            assert_eq!(bitmap_of(ids), expected, "{count} ids below {range}");
        }
    }
}
