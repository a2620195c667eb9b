//! Paged reads of the stored tuples, straight from the index: `read`'s pages and the export.
//!
//! What it owns: the one order reads walk the tuples in, [`ReadPosition`] (interned ids, compared
//! field by field: object type, relation, object, subject type, subject relation, subject
//! object), and [`Index::read_page`], which answers the tuples of a [`ReadScope`] after a
//! position. Tables are visited in (type, relation) order, objects ascending through
//! [`super::IdMap::iter_from`] (or a subject's reverse set, ascending), subject kinds sorted,
//! subject ids ascending; each walk starts at the position, so a page costs what it returns plus
//! the expired tuples it steps over, never a rescan of what came before.
//!
//! **Invariant:** ids are never reused (`interner.rs`), so a tuple keeps its position for the
//! life of the index, and a page holds the tuples of the scope with the smallest positions past
//! the cursor. So paging while writes land skips and repeats nothing that is present
//! throughout; a tuple written or deleted meanwhile may or may not appear. Positions mean
//! nothing to another index (another load of the store interns in another order).
//! Must not import `eval`, `engine`, `store`, `api`, nor `sled`, `tokio`, `axum`, `serde_json`.

use super::{expired, Id, Ids, Index, ObjectId, ObjectTypeId, RelationId, SubjectKey, SubjectKind, Table, View};
use crate::tuple::{Tuple, TupleCondition};

/// Where a tuple sits in read order; compared field by field in declaration order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct ReadPosition {
    /// The object's type.
    pub(crate) object_type: ObjectTypeId,
    /// The relation.
    pub(crate) relation: RelationId,
    /// The object.
    pub(crate) object: ObjectId,
    /// The subject's type.
    pub(crate) subject_type: ObjectTypeId,
    /// The subject's relation ([`super::RelationId::NONE`] for objects and wildcards).
    pub(crate) subject_relation: RelationId,
    /// The subject's object ([`ObjectId::WILDCARD`] for `type:*`).
    pub(crate) subject_object: ObjectId,
}

impl ReadPosition {
    /// The position as six numbers (for a continuation token).
    pub(crate) fn to_array(self) -> [u32; 6] {
        [
            self.object_type.raw(),
            self.relation.raw(),
            self.object.raw(),
            self.subject_type.raw(),
            self.subject_relation.raw(),
            self.subject_object.raw(),
        ]
    }

    /// The position written by [`ReadPosition::to_array`].
    pub(crate) fn from_array(parts: [u32; 6]) -> Self {
        let [object_type, relation, object, subject_type, subject_relation, subject_object] = parts;
        ReadPosition {
            object_type: Id::from_raw(object_type),
            relation: Id::from_raw(relation),
            object: Id::from_raw(object),
            subject_type: Id::from_raw(subject_type),
            subject_relation: Id::from_raw(subject_relation),
            subject_object: Id::from_raw(subject_object),
        }
    }

    fn new(table: (ObjectTypeId, RelationId), object: ObjectId, subject: SubjectKey) -> Self {
        ReadPosition {
            object_type: table.0,
            relation: table.1,
            object,
            subject_type: subject.kind.subject_type,
            subject_relation: subject.kind.relation,
            subject_object: subject.object,
        }
    }

    fn subject(self) -> SubjectKey {
        SubjectKey {
            kind: SubjectKind { subject_type: self.subject_type, relation: self.subject_relation },
            object: self.subject_object,
        }
    }
}

/// Which tuples a read walks (OpenFGA's filter shapes, resolved to ids).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ReadScope {
    /// Every tuple.
    All,
    /// The tuples on objects of a type, with one relation or any.
    Type { object_type: ObjectTypeId, relation: Option<RelationId> },
    /// The tuples on one object, with one relation or any, naming one subject or any.
    Object { object_type: ObjectTypeId, object: ObjectId, relation: Option<RelationId>, subject: Option<SubjectKey> },
    /// The tuples naming one subject on objects of a type, with one relation or any.
    Subject { object_type: ObjectTypeId, relation: Option<RelationId>, subject: SubjectKey },
}

/// One tuple of a page: its position, its text, and its expiry (`None` = never).
#[derive(Debug, Clone)]
pub(crate) struct ReadRow {
    /// Where it sits in read order (the cursor after it).
    pub(crate) position: ReadPosition,
    /// The tuple, with its condition.
    pub(crate) tuple: Tuple,
    /// When it stops counting.
    pub(crate) expires_at_ms: Option<i64>,
}

/// Gathers one page: skips what is not past the cursor and what expired, stops when full.
struct Page<'i> {
    index: &'i Index,
    after: Option<ReadPosition>,
    now_ms: i64,
    limit: usize,
    rows: Vec<ReadRow>,
}

impl Page<'_> {
    fn full(&self) -> bool {
        self.rows.len() >= self.limit
    }

    /// Adds the tuple at `position` of `table` unless the cursor is at or past it or it expired.
    fn offer(&mut self, table: &Table, position: ReadPosition) {
        if self.after.is_some_and(|after| position <= after) {
            return;
        }
        let (object, subject) = (position.object, position.subject());
        let expires_at_ms =
            if table.expiries.is_empty() { None } else { table.expiries.get(&(object, subject)).copied() };
        if expires_at_ms.is_some_and(|at| expired(at, self.now_ms)) {
            return;
        }
        let condition: Option<&TupleCondition> =
            if table.conditions.is_empty() { None } else { table.conditions.get(&(object, subject)) };
        let view = View::new(self.index);
        // An id without a name would be an interning bug; such a tuple is left out, as
        // `Index::visit_tuples` does.
        if let Some(mut tuple) = view.tuple(position.object_type, object, position.relation, subject) {
            tuple.condition = condition.cloned();
            self.rows.push(ReadRow { position, tuple, expires_at_ms });
        }
    }

    /// Offers the tuples of `object` in `table` (naming `only` when given), in subject order,
    /// starting at the cursor when the cursor is on this object.
    fn object(&mut self, key: (ObjectTypeId, RelationId), table: &Table, object: ObjectId, only: Option<SubjectKey>) {
        if let Some(subject) = only {
            if table.holds(object, subject) {
                self.offer(table, ReadPosition::new(key, object, subject));
            }
            return;
        }
        let mut kinds: Vec<(SubjectKind, Ids<'_>)> = table.subjects(object).collect();
        kinds.sort_unstable_by_key(|(kind, _)| (kind.subject_type, kind.relation));
        let from =
            self.after.filter(|after| (after.object_type, after.relation, after.object) == (key.0, key.1, object));
        for (kind, ids) in kinds {
            let first = match from {
                Some(after) if (kind.subject_type, kind.relation) < (after.subject_type, after.subject_relation) => {
                    continue
                }
                Some(after) if (kind.subject_type, kind.relation) == (after.subject_type, after.subject_relation) => {
                    after.subject_object
                }
                _ => ObjectId::default(),
            };
            for id in ids.iter_from(first) {
                self.offer(table, ReadPosition::new(key, object, SubjectKey { kind, object: id }));
                if self.full() {
                    return;
                }
            }
        }
    }

    /// Offers the tuples of one table in the scope, from the cursor on.
    fn table(&mut self, key: (ObjectTypeId, RelationId), table: &Table, scope: ReadScope) {
        let first_object = self
            .after
            .filter(|after| (after.object_type, after.relation) == key)
            .map_or(ObjectId::default(), |after| after.object);
        match scope {
            ReadScope::All | ReadScope::Type { .. } => {
                for (object, _) in table.forward.iter_from(first_object) {
                    self.object(key, table, object, None);
                    if self.full() {
                        return;
                    }
                }
            }
            ReadScope::Object { object, subject, .. } => {
                if object >= first_object {
                    self.object(key, table, object, subject);
                }
            }
            ReadScope::Subject { subject, .. } => {
                for object in table.objects_of(subject).iter_from(first_object) {
                    self.offer(table, ReadPosition::new(key, object, subject));
                    if self.full() {
                        return;
                    }
                }
            }
        }
    }
}

impl Index {
    /// Up to `limit` tuples of `scope` past `after` (from the start when `None`), in read order
    /// (see the module doc); tuples expired at `now_ms` are left out.
    pub(crate) fn read_page(
        &self,
        scope: ReadScope,
        after: Option<ReadPosition>,
        now_ms: i64,
        limit: usize,
    ) -> Vec<ReadRow> {
        let (object_type, relation) = match scope {
            ReadScope::All => (None, None),
            ReadScope::Type { object_type, relation }
            | ReadScope::Object { object_type, relation, .. }
            | ReadScope::Subject { object_type, relation, .. } => (Some(object_type), relation),
        };
        // A store has a few dozen (type, relation) tables: sorting their keys per page is noise.
        let mut keys: Vec<(ObjectTypeId, RelationId)> = self
            .tables
            .keys()
            .copied()
            .filter(|&(t, r)| object_type.is_none_or(|want| t == want) && relation.is_none_or(|want| r == want))
            .filter(|&key| after.is_none_or(|after| key >= (after.object_type, after.relation)))
            .collect();
        keys.sort_unstable();
        let mut page = Page { index: self, after, now_ms, limit, rows: Vec::with_capacity(limit.min(1024)) };
        for key in keys {
            if page.full() {
                break;
            }
            if let Some(table) = self.tables.get(&key) {
                page.table(key, table, scope);
            }
        }
        page.rows
    }
}

impl Index {
    /// The interned key of a subject, `None` when one of its names was never interned (then no
    /// tuple names it).
    pub(crate) fn subject_key(&self, subject: &crate::tuple::Subject) -> Option<SubjectKey> {
        use crate::tuple::Subject;
        let view = View::new(self);
        let subject_type = view.type_id(subject.subject_type())?;
        Some(match subject {
            Subject::Object(object) => SubjectKey {
                kind: SubjectKind { subject_type, relation: super::RelationId::NONE },
                object: view.object_id(subject_type, &object.id)?,
            },
            Subject::Wildcard(_) => SubjectKey {
                kind: SubjectKind { subject_type, relation: super::RelationId::NONE },
                object: ObjectId::WILDCARD,
            },
            Subject::Userset { object, relation } => SubjectKey {
                kind: SubjectKind { subject_type, relation: view.relation_id(relation)? },
                object: view.object_id(subject_type, &object.id)?,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tuple(text: &str) -> Tuple {
        text.parse().expect("test tuples parse")
    }

    fn index_of(texts: &[&str]) -> Index {
        let mut index = Index::default();
        for text in texts {
            index.insert_expiring(&tuple(text), None);
        }
        index
    }

    /// Every page of `size` of `scope`, joined.
    fn paged(index: &Index, scope: ReadScope, size: usize) -> Vec<String> {
        let (mut out, mut after) = (Vec::new(), None);
        loop {
            let rows = index.read_page(scope, after, i64::MIN, size);
            assert!(rows.len() <= size);
            out.extend(rows.iter().map(|row| row.tuple.to_string()));
            match rows.last() {
                Some(last) if rows.len() == size => after = Some(last.position),
                _ => return out,
            }
        }
    }

    const TUPLES: [&str; 9] = [
        "doc:1#viewer@user:anne",
        "doc:1#viewer@user:*",
        "doc:1#viewer@group:eng#member",
        "doc:1#owner@user:bob",
        "doc:2#viewer@user:anne",
        "doc:3#parent@folder:x",
        "folder:x#viewer@user:anne",
        "group:eng#member@user:bob",
        "group:eng#member@group:ops#member",
    ];

    #[test]
    fn every_page_size_reads_each_tuple_of_each_scope_once() {
        let index = index_of(&TUPLES);
        let view = View::new(&index);
        let doc = view.type_id("doc").expect("doc is interned");
        let viewer = view.relation_id("viewer").expect("viewer is interned");
        let anne = index.subject_key(&"user:anne".parse().expect("subject")).expect("anne is interned");
        let one = view.object_id(doc, "1").expect("doc:1 is interned");
        let scopes = [
            (ReadScope::All, TUPLES.to_vec()),
            (ReadScope::Type { object_type: doc, relation: None }, TUPLES[..6].to_vec()),
            (
                ReadScope::Type { object_type: doc, relation: Some(viewer) },
                vec![TUPLES[0], TUPLES[1], TUPLES[2], TUPLES[4]],
            ),
            (ReadScope::Object { object_type: doc, object: one, relation: None, subject: None }, TUPLES[..4].to_vec()),
            (ReadScope::Object { object_type: doc, object: one, relation: None, subject: Some(anne) }, vec![TUPLES[0]]),
            (ReadScope::Subject { object_type: doc, relation: None, subject: anne }, vec![TUPLES[0], TUPLES[4]]),
        ];
        for (scope, want) in scopes {
            let mut want: Vec<String> = want.iter().map(|t| tuple(t).to_string()).collect();
            want.sort();
            let whole = paged(&index, scope, 100);
            for size in 1..=want.len() + 1 {
                let got = paged(&index, scope, size);
                assert_eq!(got, whole, "{scope:?} in pages of {size}: the same order as one page");
                let mut sorted = got.clone();
                sorted.sort();
                assert_eq!(sorted, want, "{scope:?} in pages of {size}");
            }
        }
    }

    #[test]
    fn a_cursor_resumes_past_tuples_deleted_and_written_since() {
        let mut index = index_of(&TUPLES);
        let first = index.read_page(ReadScope::All, None, i64::MIN, 4);
        let last = first.last().expect("a first page").position;
        // Delete the tuple the cursor points at and one after it; write new ones.
        index.remove(&first[3].tuple);
        let later = index.read_page(ReadScope::All, Some(last), i64::MIN, 100);
        let deleted = later.first().expect("more after the first page").tuple.clone();
        index.remove(&deleted);
        index.insert_expiring(&tuple("doc:9#viewer@user:zed"), None);
        let rest = index.read_page(ReadScope::All, Some(last), i64::MIN, 100);
        let mut seen: Vec<String> = first.iter().chain(&rest).map(|row| row.tuple.to_string()).collect();
        seen.sort();
        for text in TUPLES.iter().map(|t| tuple(t)).filter(|t| *t != first[3].tuple && *t != deleted) {
            assert_eq!(seen.iter().filter(|s| **s == text.to_string()).count(), 1, "{text} read once");
        }
    }

    #[test]
    fn expired_tuples_are_left_out_and_carry_their_expiry_otherwise() {
        let mut index = Index::default();
        index.insert_expiring(&tuple("doc:1#viewer@user:anne"), Some(1_000));
        index.insert_expiring(&tuple("doc:1#viewer@user:bob"), Some(5_000));
        let rows = index.read_page(ReadScope::All, None, 2_000, 10);
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].tuple, tuple("doc:1#viewer@user:bob"));
        assert_eq!(rows[0].expires_at_ms, Some(5_000));
    }
}
