//! Bitmap indexes over the current tuples of one store.
//!
//! What it owns: interning (type, relation and object names to dense `u32`), and for every
//! (object type, relation) a [`Table`] with a forward map (object → subjects, one id set per
//! subject kind) and a reverse map (subject → id set of objects). Sets are sized to what they
//! hold (`idset.rs`: one id inline, a sorted array, a roaring bitmap only when large), and maps
//! keyed by ids are vectors where the ids are dense, so a tuple costs tens of bytes, not hundreds. The reverse map of a
//! tupleset relation (`parent`) is what `x from parent` lookups walk from parents to children.
//! A [`View`] layers a request's contextual tuples over the stored ones without copying.
//! For recursive userset relations (groups in groups) it also keeps a [`Closure`] (`closure.rs`).
//!
//! **Invariant:** the index is a pure function of the tuple set: `Index::build(tuples)` equals
//! the index reached by inserting and removing the same tuples one by one (ids aside).
//! Must not import `eval`, `engine`, `store`, `api`, nor `sled`, `tokio`, `axum`, `serde_json`.

mod bulk;
mod closure;
mod ids;
mod idset;
mod interner;
mod read;

use crate::tuple::{Subject, SubjectText, Tuple, TupleCondition};
pub(crate) use bulk::Loader;
pub(crate) use closure::{Closure, Reach};
pub(crate) use ids::{Id, ObjectId, ObjectTypeId, RelationId};
pub(crate) use idset::{DenseBits, Ids, IdsCow, ObjectBitmap};
use idset::{IdMap, IdSet, Slot};
pub(crate) use interner::same_name;
use interner::Interner;
pub(crate) use read::{ReadPosition, ReadScope};
use roaring::RoaringBitmap;
use rustc_hash::FxHashMap;

/// What kind of subject a bitmap holds: plain objects (and the wildcard) of a type, or usersets
/// `type:id#relation` with one relation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct SubjectKind {
    /// The subject's type.
    pub(crate) subject_type: ObjectTypeId,
    /// [`RelationId::NONE`] for objects and wildcards, else the userset relation.
    pub(crate) relation: RelationId,
}

/// One subject: a kind plus an object id ([`ObjectId::WILDCARD`] for `type:*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct SubjectKey {
    /// The subject's kind.
    pub(crate) kind: SubjectKind,
    /// The subject's object id, or [`ObjectId::WILDCARD`].
    pub(crate) object: ObjectId,
}

/// The subjects of one object in a [`Table`]'s forward map.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
enum Subjects {
    /// None (the object holds no tuple here).
    #[default]
    None,
    /// One subject: its kind's index in [`Table::kinds`] and its object id.
    One { kind: u16, id: ObjectId },
    /// Several subjects (or one of a kind past `u16` indexes): [`Table::many`] at this index.
    Many(u32),
}

impl Slot for Subjects {
    fn is_empty_slot(&self) -> bool {
        matches!(self, Subjects::None)
    }
}

/// The objects naming the subjects of one kind in a [`Table`]'s reverse map.
#[derive(Debug, Clone, Default)]
struct Reverse {
    /// Subject object id → the objects naming it.
    objects: IdMap<IdSet>,
    /// The objects naming the kind's wildcard.
    wildcard: IdSet,
}

/// Objects or subjects whose lists [`RelationTuples::touch_forward`] and
/// [`RelationTuples::touch_reverse`] read ahead at once.
pub(crate) const TOUCH_WAVE: usize = 16;

/// The tuples of one (object type, relation).
///
/// Forward, per object, its subjects: almost every object has exactly one here (a document's
/// parent, its owner), held inline in one 8-byte slot of a vector indexed by object id; objects
/// with several keep a list of (kind, [`IdSet`]) in `many`. Reverse, per subject kind and subject,
/// the [`IdSet`] of objects naming it. Both are [`IdMap`]s: dense vectors where ids are dense.
///
/// Expiring tuples sit in side tables like conditions: `expiries` answers "when does tuple
/// (object, subject) expire" for forward walks, and `expiring` lists, per subject, the objects
/// whose tuple with it expires, so a reverse lookup subtracts the expired ones without visiting
/// every object. Both are empty (and cost one `is_empty` test) when no tuple here expires.
#[derive(Debug, Clone, Default)]
pub(crate) struct Table {
    /// Every subject kind met here, in first-met order (never shrinks; a table meets a few).
    kinds: Vec<SubjectKind>,
    forward: IdMap<Subjects>,
    /// Subject lists of the objects with several subjects; a free entry is empty and in `free`.
    many: Vec<Vec<(SubjectKind, IdSet)>>,
    free: Vec<u32>,
    /// Per kind, at its index in `kinds`.
    reverse: Vec<Reverse>,
    conditions: FxHashMap<(ObjectId, SubjectKey), TupleCondition>,
    expiries: FxHashMap<(ObjectId, SubjectKey), i64>,
    expiring: FxHashMap<SubjectKey, RoaringBitmap>,
}

/// The subjects of one object of a [`Table`], one [`Ids`] per kind.
#[derive(Debug, Clone, Default)]
pub(crate) enum Forward<'a> {
    /// No (more) subjects.
    #[default]
    None,
    /// One subject, until taken.
    One(SubjectKind, ObjectId),
    /// A list per kind.
    Many(std::slice::Iter<'a, (SubjectKind, IdSet)>),
}

impl<'a> Iterator for Forward<'a> {
    type Item = (SubjectKind, Ids<'a>);

    fn next(&mut self) -> Option<(SubjectKind, Ids<'a>)> {
        match std::mem::take(self) {
            Forward::None => None,
            Forward::One(kind, id) => Some((kind, Ids::One(id))),
            Forward::Many(mut list) => {
                let (kind, set) = list.next()?;
                *self = Forward::Many(list);
                Some((*kind, set.ids()))
            }
        }
    }
}

/// Stores `list` in a free entry of `many` (or a new one) and returns its index.
fn store_list(many: &mut Vec<Vec<(SubjectKind, IdSet)>>, free: &mut Vec<u32>, list: Vec<(SubjectKind, IdSet)>) -> u32 {
    while let Some(index) = free.pop() {
        if let Some(entry) = many.get_mut(index as usize) {
            *entry = list;
            return index;
        }
    }
    many.push(list);
    (many.len() - 1) as u32
}

impl Table {
    fn kind_index(&self, kind: SubjectKind) -> Option<usize> {
        self.kinds.iter().position(|k| *k == kind)
    }

    fn kind_index_or_add(&mut self, kind: SubjectKind) -> usize {
        match self.kind_index(kind) {
            Some(index) => index,
            None => {
                self.kinds.push(kind);
                self.reverse.push(Reverse::default());
                self.kinds.len() - 1
            }
        }
    }

    /// The subjects of `object`, one set per kind.
    pub(crate) fn subjects(&self, object: ObjectId) -> Forward<'_> {
        match self.forward.get(object) {
            Some(&Subjects::One { kind, id }) => match self.kinds.get(kind as usize) {
                Some(&kind) => Forward::One(kind, id),
                None => Forward::None,
            },
            Some(&Subjects::Many(index)) => match self.many.get(index as usize) {
                Some(list) => Forward::Many(list.iter()),
                None => Forward::None,
            },
            Some(Subjects::None) | None => Forward::None,
        }
    }

    /// Something read from `object`'s forward entry (see [`RelationTuples::touch_forward`]).
    fn forward_word(&self, object: ObjectId) -> u32 {
        match self.forward.get(object) {
            Some(&Subjects::One { id, .. }) => id.raw(),
            Some(&Subjects::Many(index)) => index,
            Some(Subjects::None) | None => 0,
        }
    }

    /// Something read from the reverse entry of each of `subjects` (of `kind`) and then from the
    /// list it points to, a step at a time for all (see [`RelationTuples::touch_reverse`]).
    fn reverse_words(&self, kind: SubjectKind, subjects: &[ObjectId]) -> u32 {
        let Some(reverse) = self.kind_index(kind).and_then(|index| self.reverse.get(index)) else {
            return 0;
        };
        let mut lists = [Ids::EMPTY; TOUCH_WAVE];
        for (list, &subject) in lists.iter_mut().zip(subjects) {
            *list = reverse.objects.get(subject).map_or(Ids::EMPTY, IdSet::ids);
        }
        lists.iter().fold(0, |acc, ids| acc ^ ids.first().map_or(0, ObjectId::raw))
    }

    /// True if the tuple (object, subject) is here.
    fn holds(&self, object: ObjectId, subject: SubjectKey) -> bool {
        self.subjects(object).any(|(kind, ids)| kind == subject.kind && ids.contains(subject.object))
    }

    /// The objects naming `subject`.
    pub(crate) fn objects_of(&self, subject: SubjectKey) -> Ids<'_> {
        let Some(reverse) = self.kind_index(subject.kind).and_then(|index| self.reverse.get(index)) else {
            return Ids::EMPTY;
        };
        let set = if subject.object == ObjectId::WILDCARD {
            Some(&reverse.wildcard)
        } else {
            reverse.objects.get(subject.object)
        };
        set.map_or(Ids::EMPTY, IdSet::ids)
    }

    /// Every subject some object here names, with the objects naming it, in no particular order.
    fn named_subjects(&self) -> impl Iterator<Item = (SubjectKey, Ids<'_>)> + '_ {
        self.kinds.iter().zip(&self.reverse).flat_map(|(&kind, reverse)| {
            let wildcard = (!reverse.wildcard.is_empty())
                .then(|| (SubjectKey { kind, object: ObjectId::WILDCARD }, reverse.wildcard.ids()));
            reverse.objects.iter().map(move |(object, set)| (SubjectKey { kind, object }, set.ids())).chain(wildcard)
        })
    }

    /// Every object with subjects here, with them, in no particular order.
    fn objects(&self) -> impl Iterator<Item = (ObjectId, Forward<'_>)> + '_ {
        self.forward.iter().map(|(object, _)| (object, self.subjects(object)))
    }

    /// Gives back spare capacity (after a bulk load).
    fn shrink_to_fit(&mut self) {
        self.forward.shrink_to_fit();
        self.many.shrink_to_fit();
        for list in &mut self.many {
            list.shrink_to_fit();
            for (_, set) in list.iter_mut() {
                set.shrink_to_fit();
            }
        }
        for reverse in &mut self.reverse {
            reverse.objects.shrink_to_fit();
            for set in reverse.objects.values_mut() {
                set.shrink_to_fit();
            }
            reverse.wildcard.shrink_to_fit();
        }
    }

    /// Sets (or clears) the expiry of tuple (object, subject); true if it had one before.
    fn set_expiry(&mut self, object: ObjectId, subject: SubjectKey, expires_at_ms: Option<i64>) -> bool {
        let had = match expires_at_ms {
            Some(at) => self.expiries.insert((object, subject), at).is_some(),
            None => self.expiries.remove(&(object, subject)).is_some(),
        };
        match expires_at_ms {
            Some(_) => {
                self.expiring.entry(subject).or_default().insert_object(object);
            }
            None if had => {
                if let Some(objects) = self.expiring.get_mut(&subject) {
                    objects.remove_object(object);
                    if objects.is_empty() {
                        self.expiring.remove(&subject);
                    }
                }
            }
            None => {}
        }
        had
    }

    fn insert(&mut self, object: ObjectId, subject: SubjectKey, condition: Option<TupleCondition>) -> bool {
        let index = self.kind_index_or_add(subject.kind);
        let added = self.insert_forward(object, index, subject);
        if let Some(reverse) = self.reverse.get_mut(index) {
            if subject.object == ObjectId::WILDCARD {
                reverse.wildcard.insert(object);
            } else {
                reverse.objects.update(subject.object, |objects| objects.insert(object));
            }
        }
        match condition {
            Some(condition) => {
                self.conditions.insert((object, subject), condition);
            }
            None => {
                self.conditions.remove(&(object, subject));
            }
        }
        added
    }

    /// Adds `subject` (whose kind is `kinds[index]`) to the forward entry of `object`.
    fn insert_forward(&mut self, object: ObjectId, index: usize, subject: SubjectKey) -> bool {
        let Table { kinds, forward, many, free, .. } = self;
        forward.update(object, |slot| match *slot {
            Subjects::None => {
                *slot = match u16::try_from(index) {
                    Ok(kind) => Subjects::One { kind, id: subject.object },
                    Err(_) => Subjects::Many(store_list(many, free, vec![(subject.kind, IdSet::One(subject.object))])),
                };
                true
            }
            Subjects::One { kind, id } => {
                if kind as usize == index && id == subject.object {
                    return false;
                }
                let held = kinds.get(kind as usize).copied().unwrap_or(subject.kind);
                let mut first = IdSet::One(id);
                let list = if held == subject.kind {
                    first.insert(subject.object);
                    vec![(held, first)]
                } else {
                    vec![(held, first), (subject.kind, IdSet::One(subject.object))]
                };
                *slot = Subjects::Many(store_list(many, free, list));
                true
            }
            Subjects::Many(at) => {
                let Some(list) = many.get_mut(at as usize) else { return false };
                match list.iter_mut().find(|(kind, _)| *kind == subject.kind) {
                    Some((_, set)) => set.insert(subject.object),
                    None => {
                        list.push((subject.kind, IdSet::One(subject.object)));
                        true
                    }
                }
            }
        })
    }

    fn remove(&mut self, object: ObjectId, subject: SubjectKey) -> bool {
        let Some(index) = self.kind_index(subject.kind) else { return false };
        if !self.remove_forward(object, subject) {
            return false;
        }
        if let Some(reverse) = self.reverse.get_mut(index) {
            if subject.object == ObjectId::WILDCARD {
                reverse.wildcard.remove(object);
            } else {
                reverse.objects.update(subject.object, |objects| objects.remove(object));
            }
        }
        self.conditions.remove(&(object, subject));
        true
    }

    /// Removes `subject` from the forward entry of `object`; an entry left with one subject
    /// goes back inline.
    fn remove_forward(&mut self, object: ObjectId, subject: SubjectKey) -> bool {
        let Table { kinds, forward, many, free, .. } = self;
        forward.update(object, |slot| match *slot {
            Subjects::None => false,
            Subjects::One { kind, id } => {
                let held = kinds.get(kind as usize) == Some(&subject.kind) && id == subject.object;
                if held {
                    *slot = Subjects::None;
                }
                held
            }
            Subjects::Many(at) => {
                let Some(list) = many.get_mut(at as usize) else { return false };
                let Some(position) = list.iter().position(|(kind, _)| *kind == subject.kind) else { return false };
                let Some((_, set)) = list.get_mut(position) else { return false };
                let removed = set.remove(subject.object);
                if set.is_empty() {
                    list.swap_remove(position);
                }
                let inline = match list.as_slice() {
                    [] => Some(Subjects::None),
                    [(kind, IdSet::One(id))] => kinds
                        .iter()
                        .position(|k| k == kind)
                        .and_then(|index| u16::try_from(index).ok())
                        .map(|kind| Subjects::One { kind, id: *id }),
                    _ => None,
                };
                if let Some(inline) = inline {
                    *list = Vec::new();
                    free.push(at);
                    *slot = inline;
                }
                removed
            }
        })
    }
}

/// What decides whether one tuple counts (see [`View::guard`]).
#[derive(Debug, Clone, Copy)]
pub(crate) enum TupleGuard<'a> {
    /// It counts.
    Counts,
    /// It expired at the view's instant: it does not count.
    Expired,
    /// It counts if this condition holds.
    Condition(&'a TupleCondition),
}

/// True when a tuple expiring at `expires_at_ms` no longer counts at `now_ms`: a tuple is
/// visible strictly before its expiry instant and invisible from that instant on.
pub(crate) fn expired(expires_at_ms: i64, now_ms: i64) -> bool {
    now_ms >= expires_at_ms
}

/// The in-memory index of a store's tuples.
#[derive(Debug, Clone, Default)]
pub(crate) struct Index {
    types: Interner<ObjectTypeId>,
    relations: Interner<RelationId>,
    objects: FxHashMap<ObjectTypeId, Interner<ObjectId>>,
    tables: FxHashMap<(ObjectTypeId, RelationId), Table>,
    /// Group closures of the stored tuples, per (type, relation) with `type#relation` edges.
    closures: FxHashMap<(ObjectTypeId, RelationId), Closure>,
    len: usize,
    expiring_len: usize,
}

/// The interned form of a tuple.
#[derive(Debug, Clone, Copy)]
struct TupleIds {
    object_type: ObjectTypeId,
    object: ObjectId,
    relation: RelationId,
    subject: SubjectKey,
}

impl Index {
    /// An empty index.
    #[cfg(test)]
    pub(crate) fn new() -> Self {
        Index::default()
    }

    /// Builds an index holding exactly `tuples`.
    #[cfg(test)]
    pub(crate) fn build<'t>(tuples: impl IntoIterator<Item = &'t Tuple>) -> Self {
        let mut index = Index::new();
        for tuple in tuples {
            index.insert(tuple);
        }
        index
    }

    /// An empty index whose ids continue after `base`'s, for contextual tuples laid over it.
    fn overlay_on(base: &Index) -> Self {
        Index {
            types: Interner::with_offset(base.types.end()),
            relations: Interner::with_offset(base.relations.end()),
            ..Index::default()
        }
    }

    /// Number of tuples held.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Interns a type name (so models' names resolve even before any tuple uses them).
    pub(crate) fn intern_type(&mut self, name: &str) -> ObjectTypeId {
        let id = self.types.intern(name);
        self.objects.entry(id).or_default();
        id
    }

    /// Interns a relation name.
    pub(crate) fn intern_relation(&mut self, name: &str) -> RelationId {
        self.relations.intern(name)
    }

    fn intern_type_over(&mut self, base: Option<&Index>, name: &str) -> ObjectTypeId {
        match base.and_then(|b| b.types.get(name)) {
            Some(id) => id,
            None => self.types.intern(name),
        }
    }

    fn intern_relation_over(&mut self, base: Option<&Index>, name: &str) -> RelationId {
        match base.and_then(|b| b.relations.get(name)) {
            Some(id) => id,
            None => self.relations.intern(name),
        }
    }

    fn intern_object_over(&mut self, base: Option<&Index>, object_type: ObjectTypeId, name: &str) -> ObjectId {
        let base_objects = base.and_then(|b| b.objects.get(&object_type));
        if let Some(id) = base_objects.and_then(|objects| objects.get(name)) {
            return id;
        }
        let offset = base_objects.map_or(0, Interner::end);
        self.objects.entry(object_type).or_insert_with(|| Interner::with_offset(offset)).intern(name)
    }

    fn intern_tuple(&mut self, base: Option<&Index>, tuple: &Tuple) -> TupleIds {
        let object_type = self.intern_type_over(base, &tuple.object.object_type);
        let object = self.intern_object_over(base, object_type, &tuple.object.id);
        let relation = self.intern_relation_over(base, &tuple.relation);
        let subject_type = self.intern_type_over(base, tuple.subject.subject_type());
        let subject = match &tuple.subject {
            Subject::Object(o) => SubjectKey {
                kind: SubjectKind { subject_type, relation: RelationId::NONE },
                object: self.intern_object_over(base, subject_type, &o.id),
            },
            Subject::Wildcard(_) => SubjectKey {
                kind: SubjectKind { subject_type, relation: RelationId::NONE },
                object: ObjectId::WILDCARD,
            },
            Subject::Userset { object: o, relation } => SubjectKey {
                kind: SubjectKind { subject_type, relation: self.intern_relation_over(base, relation) },
                object: self.intern_object_over(base, subject_type, &o.id),
            },
        };
        TupleIds { object_type, object, relation, subject }
    }

    /// Adds a tuple (replacing its condition if it was present); true if it was new.
    #[cfg(test)]
    pub(crate) fn insert(&mut self, tuple: &Tuple) -> bool {
        self.insert_over(None, tuple)
    }

    /// Adds a tuple that stops counting at `expires_at_ms` (`None` = never), replacing the
    /// condition and expiry of an existing one; true if it was new.
    pub(crate) fn insert_expiring(&mut self, tuple: &Tuple, expires_at_ms: Option<i64>) -> bool {
        let ids = self.intern_tuple(None, tuple);
        let table = self.tables.entry((ids.object_type, ids.relation)).or_default();
        let added = table.insert(ids.object, ids.subject, tuple.condition.clone());
        let had_expiry = table.set_expiry(ids.object, ids.subject, expires_at_ms);
        match (had_expiry, expires_at_ms.is_some()) {
            (false, true) => self.expiring_len += 1,
            (true, false) => self.expiring_len -= 1,
            _ => {}
        }
        if added {
            self.len += 1;
        }
        self.update_closure(ids);
        added
    }

    /// Gives back spare capacity in every table and interner (after a bulk load).
    fn shrink_to_fit(&mut self) {
        self.types.shrink_to_fit();
        self.relations.shrink_to_fit();
        for objects in self.objects.values_mut() {
            objects.shrink_to_fit();
        }
        for table in self.tables.values_mut() {
            table.shrink_to_fit();
        }
    }

    /// Number of tuples held that carry an expiry (expired or not).
    pub(crate) fn expiring_len(&self) -> usize {
        self.expiring_len
    }

    /// The expiry of a held tuple, `None` when it never expires or is not held.
    pub(crate) fn expiry(&self, tuple: &Tuple) -> Option<i64> {
        if self.expiring_len == 0 {
            return None;
        }
        let ids = self.lookup_tuple(tuple)?;
        self.tables.get(&(ids.object_type, ids.relation))?.expiries.get(&(ids.object, ids.subject)).copied()
    }

    /// Every held tuple that has expired at `now_ms` (for the sweep), in no particular order.
    pub(crate) fn expired_tuples(&self, now_ms: i64) -> Vec<(Tuple, i64)> {
        let view = View::new(self);
        let mut out = Vec::new();
        if self.expiring_len == 0 {
            return out;
        }
        for (&(object_type, relation), table) in &self.tables {
            for (&(object, subject), &at) in &table.expiries {
                if expired(at, now_ms) {
                    if let Some(mut tuple) = view.tuple(object_type, object, relation, subject) {
                        tuple.condition = table.conditions.get(&(object, subject)).cloned();
                        out.push((tuple, at));
                    }
                }
            }
        }
        out
    }

    fn insert_over(&mut self, base: Option<&Index>, tuple: &Tuple) -> bool {
        let ids = self.intern_tuple(base, tuple);
        let table = self.tables.entry((ids.object_type, ids.relation)).or_default();
        let added = table.insert(ids.object, ids.subject, tuple.condition.clone());
        if added {
            self.len += 1;
        }
        if base.is_none() {
            self.update_closure(ids);
        }
        added
    }

    /// Keeps the group closure of (object type, relation) current after a change to `ids`.
    fn update_closure(&mut self, ids: TupleIds) {
        let key = (ids.object_type, ids.relation);
        if ids.subject.kind != (SubjectKind { subject_type: ids.object_type, relation: ids.relation }) {
            return;
        }
        let Some(table) = self.tables.get(&key) else { return };
        let closure = self.closures.entry(key).or_default();
        closure.edge_changed(table, ids.subject.kind, ids.subject.object, ids.object);
        if closure.is_empty() {
            self.closures.remove(&key);
        }
    }

    /// Removes a tuple; true if it was present.
    pub(crate) fn remove(&mut self, tuple: &Tuple) -> bool {
        let Some(ids) = self.lookup_tuple(tuple) else { return false };
        let Some(table) = self.tables.get_mut(&(ids.object_type, ids.relation)) else { return false };
        if table.set_expiry(ids.object, ids.subject, None) {
            self.expiring_len -= 1;
        }
        let removed = table.remove(ids.object, ids.subject);
        if removed {
            self.len -= 1;
            self.update_closure(ids);
        }
        removed
    }

    /// True if the tuple (ignoring its condition) is present.
    pub(crate) fn contains(&self, tuple: &Tuple) -> bool {
        self.lookup_tuple(tuple)
            .is_some_and(|ids| View::new(self).forward_contains(ids.object_type, ids.relation, ids.object, ids.subject))
    }

    fn lookup_tuple(&self, tuple: &Tuple) -> Option<TupleIds> {
        let view = View::new(self);
        let object_type = view.type_id(&tuple.object.object_type)?;
        let subject_type = view.type_id(tuple.subject.subject_type())?;
        let subject = match &tuple.subject {
            Subject::Object(o) => SubjectKey {
                kind: SubjectKind { subject_type, relation: RelationId::NONE },
                object: view.object_id(subject_type, &o.id)?,
            },
            Subject::Wildcard(_) => SubjectKey {
                kind: SubjectKind { subject_type, relation: RelationId::NONE },
                object: ObjectId::WILDCARD,
            },
            Subject::Userset { object, relation } => SubjectKey {
                kind: SubjectKind { subject_type, relation: view.relation_id(relation)? },
                object: view.object_id(subject_type, &object.id)?,
            },
        };
        Some(TupleIds {
            object_type,
            object: view.object_id(object_type, &tuple.object.id)?,
            relation: view.relation_id(&tuple.relation)?,
            subject,
        })
    }

    /// Every tuple held, in no particular order (for tests and invariant checks).
    #[cfg(test)]
    pub(crate) fn tuples(&self) -> Vec<Tuple> {
        self.tuples_with_expiry().into_iter().map(|(tuple, _)| tuple).collect()
    }

    /// Calls `visit` with every tuple held, its names borrowed from the index: object type,
    /// object id, relation, subject, condition and expiry; grouped by (object type, relation) and
    /// then by object, in no particular order otherwise. Stops at the first error. Answers how
    /// many tuples it visited (equal to [`Index::len`] unless an id lost its name, a bug the
    /// caller can notice by comparing).
    pub(crate) fn visit_tuples<E>(
        &self,
        mut visit: impl FnMut(&str, &str, &str, SubjectText<'_>, Option<&TupleCondition>, Option<i64>) -> Result<(), E>,
    ) -> Result<usize, E> {
        let view = View::new(self);
        let mut visited = 0;
        for (&(object_type, relation), table) in &self.tables {
            let (Some(type_name), Some(relation_name)) = (view.type_name(object_type), view.relation_name(relation))
            else {
                continue;
            };
            for (object, subjects) in table.objects() {
                let Some(object_name) = view.object_name(object_type, object) else { continue };
                for (kind, ids) in subjects {
                    let Some(subject_type) = view.type_name(kind.subject_type) else { continue };
                    let subject_relation = match kind.relation {
                        RelationId::NONE => None,
                        r => match view.relation_name(r) {
                            Some(name) => Some(name),
                            None => continue,
                        },
                    };
                    for subject in ids {
                        let id = match subject {
                            ObjectId::WILDCARD => None,
                            id => match view.object_name(kind.subject_type, id) {
                                Some(name) => Some(name),
                                None => continue,
                            },
                        };
                        let key = SubjectKey { kind, object: subject };
                        let condition =
                            if table.conditions.is_empty() { None } else { table.conditions.get(&(object, key)) };
                        let expiry =
                            if table.expiries.is_empty() { None } else { table.expiries.get(&(object, key)).copied() };
                        let subject = SubjectText {
                            subject_type,
                            id,
                            relation: if id.is_none() { None } else { subject_relation },
                        };
                        visit(type_name, object_name, relation_name, subject, condition, expiry)?;
                        visited += 1;
                    }
                }
            }
        }
        Ok(visited)
    }

    /// Every tuple held with its expiry (`None` = never), in no particular order.
    #[cfg(test)]
    pub(crate) fn tuples_with_expiry(&self) -> Vec<(Tuple, Option<i64>)> {
        let view = View::new(self);
        let mut out = Vec::with_capacity(self.len);
        for (&(object_type, relation), table) in &self.tables {
            for (object, subjects) in table.objects() {
                for (kind, ids) in subjects {
                    for subject in ids {
                        let key = SubjectKey { kind, object: subject };
                        if let Some(mut tuple) = view.tuple(object_type, object, relation, key) {
                            tuple.condition = table.conditions.get(&(object, key)).cloned();
                            out.push((tuple, table.expiries.get(&(object, key)).copied()));
                        }
                    }
                }
            }
        }
        out
    }
}

/// A read-only view of a base index with an optional overlay of contextual tuples, at one
/// instant: stored tuples that expired at `now_ms` are not in it (see [`View::at`]).
#[derive(Debug, Clone, Copy)]
pub(crate) struct View<'a> {
    base: &'a Index,
    overlay: Option<&'a Index>,
    now_ms: i64,
}

/// Contextual tuples interned over a base index; borrow it as a [`View`] with [`Overlay::view`].
#[derive(Debug, Clone)]
pub(crate) struct Overlay {
    index: Index,
}

impl Overlay {
    /// Interns `tuples` over `base` (new names get ids past the base's).
    pub(crate) fn new<'t>(base: &Index, tuples: impl IntoIterator<Item = &'t Tuple>) -> Self {
        let mut index = Index::overlay_on(base);
        for tuple in tuples {
            index.insert_over(Some(base), tuple);
        }
        Overlay { index }
    }

    /// The base index seen with these tuples laid over it.
    pub(crate) fn view<'a>(&'a self, base: &'a Index) -> View<'a> {
        View { base, overlay: Some(&self.index), now_ms: i64::MIN }
    }
}

/// The tuples of one (object type, relation) in both layers of a [`View`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct RelationTuples<'a> {
    base: Option<&'a Table>,
    overlay: Option<&'a Table>,
    now_ms: i64,
}

impl<'a> RelationTuples<'a> {
    /// Reads the stored forward entries of `objects` and drops what it read: the reads do not
    /// wait on each other, so they overlap, and the [`RelationTuples::forward`] walks that follow
    /// find their entries in cache instead of each waiting on memory in turn.
    pub(crate) fn touch_forward(&self, objects: &[ObjectId]) {
        if let Some(base) = self.base {
            std::hint::black_box(objects.iter().fold(0, |acc, &object| acc ^ base.forward_word(object)));
        }
    }

    /// Like [`RelationTuples::touch_forward`], for the reverse lists of up to [`TOUCH_WAVE`]
    /// subjects of one kind (those past it are not read ahead).
    pub(crate) fn touch_reverse(&self, kind: SubjectKind, subjects: &[ObjectId]) {
        if let Some(base) = self.base {
            std::hint::black_box(base.reverse_words(kind, subjects));
        }
    }

    /// The objects on which `subject` directly holds the relation.
    pub(crate) fn reverse(&self, subject: SubjectKey) -> IdsCow<'a> {
        let named = |table: Option<&'a Table>| table.map(|t| t.objects_of(subject)).filter(|ids| !ids.is_empty());
        let mut objects = match (named(self.base), named(self.overlay)) {
            (Some(b), None) => IdsCow::from(b),
            (None, Some(o)) => IdsCow::from(o),
            (Some(b), Some(o)) => {
                let mut union = b.to_bitmap().into_owned();
                union |= o;
                IdsCow::owned(union)
            }
            (None, None) => IdsCow::from(Ids::EMPTY),
        };
        // Only stored tuples expire; a contextual tuple naming the same object keeps it.
        if let Some(table) = self.base.filter(|t| !t.expiring.is_empty()) {
            if let Some(candidates) = table.expiring.get(&subject) {
                let expired_objects: RoaringBitmap = candidates
                    .objects()
                    .filter(|&object| {
                        table.expiries.get(&(object, subject)).is_some_and(|&at| expired(at, self.now_ms))
                    })
                    .filter(|&object| !self.overlay.is_some_and(|o| o.objects_of(subject).contains(object)))
                    .collect();
                if !expired_objects.is_empty() {
                    *objects.to_mut() -= expired_objects;
                }
            }
        }
        objects
    }

    /// The subjects of `object`, one set per subject kind (as [`View::forward`], without
    /// looking the tables up again).
    pub(crate) fn forward(&self, object: ObjectId) -> impl Iterator<Item = (SubjectKind, Ids<'a>)> + 'a {
        let subjects = |table: Option<&'a Table>| table.map(|t| t.subjects(object)).unwrap_or_default();
        subjects(self.base).chain(subjects(self.overlay))
    }

    /// True when every tuple here counts as it is, for any context and clock: no stored tuple
    /// carries a condition or an expiry and no contextual one a condition (what [`View::guard`]
    /// would answer [`TupleGuard::Counts`] for, without looking each tuple up).
    pub(crate) fn all_count(&self) -> bool {
        self.base.is_none_or(|t| t.conditions.is_empty() && t.expiries.is_empty())
            && self.overlay.is_none_or(|t| t.conditions.is_empty())
    }

    /// True if some stored tuple here has an expiry (so a present tuple may not count).
    pub(crate) fn may_expire(&self) -> bool {
        self.base.is_some_and(|t| !t.expiries.is_empty())
    }

    /// True if any of these tuples carries a condition.
    pub(crate) fn has_conditions(&self) -> bool {
        self.base.is_some_and(|t| !t.conditions.is_empty()) || self.overlay.is_some_and(|t| !t.conditions.is_empty())
    }
}

impl<'a> View<'a> {
    /// A view of `base` alone that sees every held tuple, expired or not (for writes and
    /// maintenance; reads use [`View::at`]).
    pub(crate) fn new(base: &'a Index) -> Self {
        View { base, overlay: None, now_ms: i64::MIN }
    }

    /// This view at instant `now_ms` (milliseconds since the Unix epoch): stored tuples whose
    /// expiry is at or before it no longer count.
    pub(crate) fn at(self, now_ms: i64) -> Self {
        View { now_ms, ..self }
    }

    /// What decides whether the tuple (object, relation, subject) counts, from one lookup of
    /// its (type, relation) tables: nothing, its passed expiry, or its condition. A contextual
    /// tuple with the same key as an expired stored one still counts.
    pub(crate) fn guard(
        &self,
        object_type: ObjectTypeId,
        relation: RelationId,
        object: ObjectId,
        subject: SubjectKey,
    ) -> TupleGuard<'a> {
        let (base, overlay) = self.tables(object_type, relation);
        let base_guarded = base.filter(|t| !t.conditions.is_empty() || !t.expiries.is_empty());
        let overlay_guarded = overlay.filter(|t| !t.conditions.is_empty());
        if base_guarded.is_none() && overlay_guarded.is_none() {
            return TupleGuard::Counts;
        }
        let base_expired = base_guarded
            .filter(|t| !t.expiries.is_empty())
            .and_then(|t| t.expiries.get(&(object, subject)))
            .is_some_and(|&at| expired(at, self.now_ms));
        let in_overlay = || overlay.is_some_and(|t| t.holds(object, subject));
        if base_expired && !in_overlay() {
            return TupleGuard::Expired;
        }
        let find = |table: Option<&'a Table>| table.and_then(|t| t.conditions.get(&(object, subject)));
        match find(overlay_guarded).or_else(|| find(base_guarded)) {
            Some(condition) => TupleGuard::Condition(condition),
            None => TupleGuard::Counts,
        }
    }

    /// When the stored tuple (object, relation, subject) expires, if it carries an expiry (explain
    /// names the instant of an expired tuple).
    pub(crate) fn expiry_of(
        &self,
        object_type: ObjectTypeId,
        relation: RelationId,
        object: ObjectId,
        subject: SubjectKey,
    ) -> Option<i64> {
        let (base, _) = self.tables(object_type, relation);
        base.and_then(|t| t.expiries.get(&(object, subject))).copied()
    }

    /// The id of a type name.
    pub(crate) fn type_id(&self, name: &str) -> Option<ObjectTypeId> {
        self.base.types.get(name).or_else(|| self.overlay?.types.get(name))
    }

    /// The id of a relation name.
    pub(crate) fn relation_id(&self, name: &str) -> Option<RelationId> {
        self.base.relations.get(name).or_else(|| self.overlay?.relations.get(name))
    }

    /// The id of an object of a type.
    pub(crate) fn object_id(&self, object_type: ObjectTypeId, name: &str) -> Option<ObjectId> {
        let base = self.base.objects.get(&object_type).and_then(|o| o.get(name));
        base.or_else(|| self.overlay?.objects.get(&object_type)?.get(name))
    }

    /// [`View::object_id`] of every name, in order, with the base index's lookups batched
    /// (see [`Interner::get_many`]).
    pub(crate) fn object_ids<S: AsRef<str>>(&self, object_type: ObjectTypeId, names: &[S]) -> Vec<Option<ObjectId>> {
        let mut ids = match self.base.objects.get(&object_type) {
            Some(objects) => objects.get_many(names),
            None => vec![None; names.len()],
        };
        if let Some(overlay) = self.overlay.and_then(|o| o.objects.get(&object_type)) {
            for (id, name) in ids.iter_mut().zip(names).filter(|(id, _)| id.is_none()) {
                *id = overlay.get(name.as_ref());
            }
        }
        ids
    }

    /// How many objects of a type the index has interned (every object any tuple ever named,
    /// as object or subject; ids are never given back): one past the largest object id.
    pub(crate) fn object_count(&self, object_type: ObjectTypeId) -> u32 {
        let end = |index: &Index| index.objects.get(&object_type).map_or(0, Interner::end);
        // An overlay's ids continue after the base's, so its end, when it has one, is the larger.
        end(self.base).max(self.overlay.map_or(0, end))
    }

    /// An id of `object_type` that no interned object has (one past them all), for an object
    /// whose name the index never saw; it is not [`ObjectId::WILDCARD`] either (that would take
    /// four billion names first).
    pub(crate) fn unseen_object(&self, object_type: ObjectTypeId) -> ObjectId {
        ObjectId::from_raw(self.object_count(object_type))
    }

    /// The name of a type id.
    pub(crate) fn type_name(&self, id: ObjectTypeId) -> Option<&'a str> {
        self.base.types.name(id).or_else(|| self.overlay?.types.name(id))
    }

    /// The name of a relation id.
    pub(crate) fn relation_name(&self, id: RelationId) -> Option<&'a str> {
        self.base.relations.name(id).or_else(|| self.overlay?.relations.name(id))
    }

    /// [`View::object_name`] of every id, in order, with the base index's reads batched (see
    /// [`Interner::names_many`]).
    pub(crate) fn object_names(&self, object_type: ObjectTypeId, ids: &[ObjectId]) -> Vec<Option<&'a str>> {
        let mut names = match self.base.objects.get(&object_type) {
            Some(objects) => objects.names_many(ids),
            None => vec![None; ids.len()],
        };
        if let Some(overlay) = self.overlay.and_then(|o| o.objects.get(&object_type)) {
            for (name, &id) in names.iter_mut().zip(ids).filter(|(name, _)| name.is_none()) {
                *name = overlay.name(id);
            }
        }
        names
    }

    /// The id string of an object.
    pub(crate) fn object_name(&self, object_type: ObjectTypeId, id: ObjectId) -> Option<&'a str> {
        let base = self.base.objects.get(&object_type).and_then(|o| o.name(id));
        base.or_else(|| self.overlay?.objects.get(&object_type)?.name(id))
    }

    fn tables(&self, object_type: ObjectTypeId, relation: RelationId) -> (Option<&'a Table>, Option<&'a Table>) {
        let key = (object_type, relation);
        (self.base.tables.get(&key), self.overlay.and_then(|o| o.tables.get(&key)))
    }

    /// The subjects of (object, relation), one set per subject kind; a kind may repeat when
    /// both layers hold it.
    pub(crate) fn forward(
        &self,
        object_type: ObjectTypeId,
        relation: RelationId,
        object: ObjectId,
    ) -> impl Iterator<Item = (SubjectKind, Ids<'a>)> + 'a {
        self.relation_tuples(object_type, relation).forward(object)
    }

    /// True if the tuple (object, relation, subject) is present.
    pub(crate) fn forward_contains(
        &self,
        object_type: ObjectTypeId,
        relation: RelationId,
        object: ObjectId,
        subject: SubjectKey,
    ) -> bool {
        self.forward(object_type, relation, object)
            .any(|(kind, subjects)| kind == subject.kind && subjects.contains(subject.object))
    }

    /// The tuples of one (object type, relation) in both layers, for many lookups in a row.
    pub(crate) fn relation_tuples(&self, object_type: ObjectTypeId, relation: RelationId) -> RelationTuples<'a> {
        let (base, overlay) = self.tables(object_type, relation);
        RelationTuples { base, overlay, now_ms: self.now_ms }
    }

    /// The group closure of (object type, relation), only when it answers exactly for this view:
    /// the relation has `type#relation` edges, every stored tuple of it counts for every request
    /// (no conditions), and no contextual tuple touches it.
    pub(crate) fn closure(&self, object_type: ObjectTypeId, relation: RelationId) -> Option<&'a Closure> {
        let key = (object_type, relation);
        if self.overlay.is_some_and(|o| o.tables.contains_key(&key)) {
            return None;
        }
        let table = self.base.tables.get(&key)?;
        if !closure::all_tuples_count(table) {
            return None;
        }
        self.base.closures.get(&key)
    }

    /// True if any tuple of (object type, relation) carries a condition.
    pub(crate) fn has_conditions(&self, object_type: ObjectTypeId, relation: RelationId) -> bool {
        self.relation_tuples(object_type, relation).has_conditions()
    }

    /// The text form of an interned tuple.
    pub(crate) fn tuple(
        &self,
        object_type: ObjectTypeId,
        object: ObjectId,
        relation: RelationId,
        subject: SubjectKey,
    ) -> Option<Tuple> {
        let object_ref =
            crate::tuple::ObjectRef::new(self.type_name(object_type)?, self.object_name(object_type, object)?);
        Some(Tuple::new(object_ref, self.relation_name(relation)?, self.subject(subject)?))
    }

    /// The text form of an interned subject.
    pub(crate) fn subject(&self, key: SubjectKey) -> Option<Subject> {
        let subject_type = self.type_name(key.kind.subject_type)?;
        if key.object == ObjectId::WILDCARD {
            return Some(Subject::Wildcard(subject_type.to_string()));
        }
        let object = crate::tuple::ObjectRef::new(subject_type, self.object_name(key.kind.subject_type, key.object)?);
        if key.kind.relation == RelationId::NONE {
            Some(Subject::Object(object))
        } else {
            Some(Subject::Userset { object, relation: self.relation_name(key.kind.relation)?.to_string() })
        }
    }
}

#[cfg(test)]
mod tests;
