//! Bitmap indexes over the current tuples of one store.
//!
//! What it owns: interning (type, relation and object names to dense `u32`), and for every
//! (object type, relation) a [`Table`] with a forward map (object → subjects, one roaring bitmap
//! per subject kind) and a reverse map (subject → bitmap of objects). The reverse map of a
//! tupleset relation (`parent`) is what `x from parent` lookups walk from parents to children.
//! A [`View`] layers a request's contextual tuples over the stored ones without copying.
//! For recursive userset relations (groups in groups) it also keeps a [`Closure`] (`closure.rs`).
//!
//! **Invariant:** the index is a pure function of the tuple set: `Index::build(tuples)` equals
//! the index reached by inserting and removing the same tuples one by one (ids aside).
//! Must not import `eval`, `engine`, `store`, `api`, nor `sled`, `tokio`, `axum`, `serde_json`.

mod bulk;
mod closure;
mod interner;

use crate::tuple::{Subject, Tuple, TupleCondition};
pub(crate) use bulk::Loader;
pub(crate) use closure::Closure;
use interner::Interner;
use roaring::RoaringBitmap;
use rustc_hash::FxHashMap;
use std::borrow::Cow;

/// Interned id of a type name.
pub(crate) type TypeId = u32;
/// Interned id of a relation name (shared by all types).
pub(crate) type RelationId = u32;
/// Interned id of an object id within its type.
pub(crate) type ObjectId = u32;

/// The object id that stands for `type:*` in subject bitmaps.
pub(crate) const WILDCARD: ObjectId = u32::MAX;
/// The relation slot of a subject that is a plain object or a wildcard.
pub(crate) const NO_RELATION: RelationId = u32::MAX;

/// What kind of subject a bitmap holds: plain objects (and the wildcard) of a type, or usersets
/// `type:id#relation` with one relation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct SubjectKind {
    /// The subject's type.
    pub(crate) subject_type: TypeId,
    /// [`NO_RELATION`] for objects and wildcards, else the userset relation.
    pub(crate) relation: RelationId,
}

/// One subject: a kind plus an object id ([`WILDCARD`] for `type:*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct SubjectKey {
    /// The subject's kind.
    pub(crate) kind: SubjectKind,
    /// The subject's object id, or [`WILDCARD`].
    pub(crate) object: ObjectId,
}

/// The tuples of one (object type, relation).
///
/// Expiring tuples sit in side tables like conditions: `expiries` answers "when does tuple
/// (object, subject) expire" for forward walks, and `expiring` lists, per subject, the objects
/// whose tuple with it expires, so a reverse lookup subtracts the expired ones without visiting
/// every object. Both are empty (and cost one `is_empty` test) when no tuple here expires.
#[derive(Debug, Clone, Default)]
pub(crate) struct Table {
    forward: FxHashMap<ObjectId, Vec<(SubjectKind, RoaringBitmap)>>,
    reverse: FxHashMap<SubjectKey, RoaringBitmap>,
    conditions: FxHashMap<(ObjectId, SubjectKey), TupleCondition>,
    expiries: FxHashMap<(ObjectId, SubjectKey), i64>,
    expiring: FxHashMap<SubjectKey, RoaringBitmap>,
}

impl Table {
    /// Sets (or clears) the expiry of tuple (object, subject); true if it had one before.
    fn set_expiry(&mut self, object: ObjectId, subject: SubjectKey, expires_at_ms: Option<i64>) -> bool {
        let had = match expires_at_ms {
            Some(at) => self.expiries.insert((object, subject), at).is_some(),
            None => self.expiries.remove(&(object, subject)).is_some(),
        };
        match expires_at_ms {
            Some(_) => {
                self.expiring.entry(subject).or_default().insert(object);
            }
            None if had => {
                if let Some(objects) = self.expiring.get_mut(&subject) {
                    objects.remove(object);
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
        let kinds = self.forward.entry(object).or_default();
        let added = match kinds.iter_mut().find(|(kind, _)| *kind == subject.kind) {
            Some((_, bitmap)) => bitmap.insert(subject.object),
            None => {
                let mut bitmap = RoaringBitmap::new();
                bitmap.insert(subject.object);
                kinds.push((subject.kind, bitmap));
                true
            }
        };
        self.reverse.entry(subject).or_default().insert(object);
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

    fn remove(&mut self, object: ObjectId, subject: SubjectKey) -> bool {
        let Some(kinds) = self.forward.get_mut(&object) else { return false };
        let Some(position) = kinds.iter().position(|(kind, _)| *kind == subject.kind) else { return false };
        let removed = kinds[position].1.remove(subject.object);
        if kinds[position].1.is_empty() {
            kinds.swap_remove(position);
        }
        if kinds.is_empty() {
            self.forward.remove(&object);
        }
        if let Some(objects) = self.reverse.get_mut(&subject) {
            objects.remove(object);
            if objects.is_empty() {
                self.reverse.remove(&subject);
            }
        }
        self.conditions.remove(&(object, subject));
        removed
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
    types: Interner,
    relations: Interner,
    objects: FxHashMap<TypeId, Interner>,
    tables: FxHashMap<(TypeId, RelationId), Table>,
    /// Group closures of the stored tuples, per (type, relation) with `type#relation` edges.
    closures: FxHashMap<(TypeId, RelationId), Closure>,
    len: usize,
    expiring_len: usize,
}

/// The interned form of a tuple.
#[derive(Debug, Clone, Copy)]
struct TupleIds {
    object_type: TypeId,
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
    pub(crate) fn intern_type(&mut self, name: &str) -> TypeId {
        let id = self.types.intern(name);
        self.objects.entry(id).or_default();
        id
    }

    /// Interns a relation name.
    pub(crate) fn intern_relation(&mut self, name: &str) -> RelationId {
        self.relations.intern(name)
    }

    fn intern_type_over(&mut self, base: Option<&Index>, name: &str) -> TypeId {
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

    fn intern_object_over(&mut self, base: Option<&Index>, object_type: TypeId, name: &str) -> ObjectId {
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
                kind: SubjectKind { subject_type, relation: NO_RELATION },
                object: self.intern_object_over(base, subject_type, &o.id),
            },
            Subject::Wildcard(_) => {
                SubjectKey { kind: SubjectKind { subject_type, relation: NO_RELATION }, object: WILDCARD }
            }
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

    /// Gives back the interners' spare capacity (after a bulk load).
    fn shrink_to_fit(&mut self) {
        self.types.shrink_to_fit();
        self.relations.shrink_to_fit();
        for objects in self.objects.values_mut() {
            objects.shrink_to_fit();
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
                kind: SubjectKind { subject_type, relation: NO_RELATION },
                object: view.object_id(subject_type, &o.id)?,
            },
            Subject::Wildcard(_) => {
                SubjectKey { kind: SubjectKind { subject_type, relation: NO_RELATION }, object: WILDCARD }
            }
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

    /// Every tuple held with its expiry (`None` = never), in no particular order.
    pub(crate) fn tuples_with_expiry(&self) -> Vec<(Tuple, Option<i64>)> {
        let view = View::new(self);
        let mut out = Vec::with_capacity(self.len);
        for (&(object_type, relation), table) in &self.tables {
            for (&object, kinds) in &table.forward {
                for (kind, subjects) in kinds {
                    for subject in subjects {
                        let key = SubjectKey { kind: *kind, object: subject };
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
    /// The objects on which `subject` directly holds the relation.
    pub(crate) fn reverse(&self, subject: SubjectKey) -> Cow<'a, RoaringBitmap> {
        let base = self.base.and_then(|t| t.reverse.get(&subject));
        let overlay = self.overlay.and_then(|t| t.reverse.get(&subject));
        let mut objects = match (base, overlay) {
            (Some(b), None) => Cow::Borrowed(b),
            (None, Some(o)) => Cow::Borrowed(o),
            (Some(b), Some(o)) => Cow::Owned(b | o),
            (None, None) => Cow::Owned(RoaringBitmap::new()),
        };
        // Only stored tuples expire; a contextual tuple naming the same object keeps it.
        if let Some(table) = self.base.filter(|t| !t.expiring.is_empty()) {
            if let Some(candidates) = table.expiring.get(&subject) {
                let expired_objects: RoaringBitmap = candidates
                    .iter()
                    .filter(|&object| {
                        table.expiries.get(&(object, subject)).is_some_and(|&at| expired(at, self.now_ms))
                    })
                    .filter(|&object| {
                        !self.overlay.is_some_and(|o| o.reverse.get(&subject).is_some_and(|b| b.contains(object)))
                    })
                    .collect();
                if !expired_objects.is_empty() {
                    *objects.to_mut() -= expired_objects;
                }
            }
        }
        objects
    }

    /// The subjects of `object`, one bitmap per subject kind (as [`View::forward`], without
    /// looking the tables up again).
    pub(crate) fn forward(&self, object: ObjectId) -> impl Iterator<Item = (SubjectKind, &'a RoaringBitmap)> + 'a {
        let kinds = |table: Option<&'a Table>| table.and_then(|t| t.forward.get(&object)).unwrap_or(&EMPTY_KINDS);
        kinds(self.base).iter().chain(kinds(self.overlay).iter()).map(|(kind, bitmap)| (*kind, bitmap))
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

static EMPTY_KINDS: Vec<(SubjectKind, RoaringBitmap)> = Vec::new();

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
        object_type: TypeId,
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
        let in_overlay = || {
            overlay.is_some_and(|t| {
                t.forward.get(&object).is_some_and(|kinds| {
                    kinds.iter().any(|(kind, bitmap)| *kind == subject.kind && bitmap.contains(subject.object))
                })
            })
        };
        if base_expired && !in_overlay() {
            return TupleGuard::Expired;
        }
        let find = |table: Option<&'a Table>| table.and_then(|t| t.conditions.get(&(object, subject)));
        match find(overlay_guarded).or_else(|| find(base_guarded)) {
            Some(condition) => TupleGuard::Condition(condition),
            None => TupleGuard::Counts,
        }
    }

    /// The id of a type name.
    pub(crate) fn type_id(&self, name: &str) -> Option<TypeId> {
        self.base.types.get(name).or_else(|| self.overlay?.types.get(name))
    }

    /// The id of a relation name.
    pub(crate) fn relation_id(&self, name: &str) -> Option<RelationId> {
        self.base.relations.get(name).or_else(|| self.overlay?.relations.get(name))
    }

    /// The id of an object of a type.
    pub(crate) fn object_id(&self, object_type: TypeId, name: &str) -> Option<ObjectId> {
        let base = self.base.objects.get(&object_type).and_then(|o| o.get(name));
        base.or_else(|| self.overlay?.objects.get(&object_type)?.get(name))
    }

    /// The name of a type id.
    pub(crate) fn type_name(&self, id: TypeId) -> Option<&'a str> {
        self.base.types.name(id).or_else(|| self.overlay?.types.name(id))
    }

    /// The name of a relation id.
    pub(crate) fn relation_name(&self, id: RelationId) -> Option<&'a str> {
        self.base.relations.name(id).or_else(|| self.overlay?.relations.name(id))
    }

    /// The id string of an object.
    pub(crate) fn object_name(&self, object_type: TypeId, id: ObjectId) -> Option<&'a str> {
        let base = self.base.objects.get(&object_type).and_then(|o| o.name(id));
        base.or_else(|| self.overlay?.objects.get(&object_type)?.name(id))
    }

    fn tables(&self, object_type: TypeId, relation: RelationId) -> (Option<&'a Table>, Option<&'a Table>) {
        let key = (object_type, relation);
        (self.base.tables.get(&key), self.overlay.and_then(|o| o.tables.get(&key)))
    }

    /// The subjects of (object, relation), one bitmap per subject kind; a kind may repeat when
    /// both layers hold it.
    pub(crate) fn forward(
        &self,
        object_type: TypeId,
        relation: RelationId,
        object: ObjectId,
    ) -> impl Iterator<Item = (SubjectKind, &'a RoaringBitmap)> + 'a {
        let (base, overlay) = self.tables(object_type, relation);
        let kinds = |table: Option<&'a Table>| table.and_then(|t| t.forward.get(&object)).unwrap_or(&EMPTY_KINDS);
        kinds(base).iter().chain(kinds(overlay).iter()).map(|(kind, bitmap)| (*kind, bitmap))
    }

    /// True if the tuple (object, relation, subject) is present.
    pub(crate) fn forward_contains(
        &self,
        object_type: TypeId,
        relation: RelationId,
        object: ObjectId,
        subject: SubjectKey,
    ) -> bool {
        self.forward(object_type, relation, object)
            .any(|(kind, subjects)| kind == subject.kind && subjects.contains(subject.object))
    }

    /// The tuples of one (object type, relation) in both layers, for many lookups in a row.
    pub(crate) fn relation_tuples(&self, object_type: TypeId, relation: RelationId) -> RelationTuples<'a> {
        let (base, overlay) = self.tables(object_type, relation);
        RelationTuples { base, overlay, now_ms: self.now_ms }
    }

    /// The group closure of (object type, relation), only when it answers exactly for this view:
    /// the relation has `type#relation` edges, every stored tuple of it counts for every request
    /// (no conditions), and no contextual tuple touches it.
    pub(crate) fn closure(&self, object_type: TypeId, relation: RelationId) -> Option<&'a Closure> {
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
    pub(crate) fn has_conditions(&self, object_type: TypeId, relation: RelationId) -> bool {
        self.relation_tuples(object_type, relation).has_conditions()
    }

    /// The text form of an interned tuple.
    pub(crate) fn tuple(
        &self,
        object_type: TypeId,
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
        if key.object == WILDCARD {
            return Some(Subject::Wildcard(subject_type.to_string()));
        }
        let object = crate::tuple::ObjectRef::new(subject_type, self.object_name(key.kind.subject_type, key.object)?);
        if key.kind.relation == NO_RELATION {
            Some(Subject::Object(object))
        } else {
            Some(Subject::Userset { object, relation: self.relation_name(key.kind.relation)?.to_string() })
        }
    }
}

#[cfg(test)]
mod tests;
