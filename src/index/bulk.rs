//! Bulk loading: the start-up path that fills an [`Index`] from a store's tuples, read as borrowed
//! text in key order, without building a [`crate::tuple::Tuple`] per tuple.
//!
//! What it owns: [`Loader`], which remembers the last object type, object and relation it interned
//! (consecutive tuples in key order share them, so most tuples intern only their subject), and
//! defers group closures to one build per recursive relation at [`Loader::finish`] instead of
//! updating them edge by edge.
//!
//! **Invariant:** loading tuples and then finishing gives the same index as inserting them one by
//! one with [`Index::insert_expiring`] (ids aside): closures equal plain graph search over the
//! counting edges either way.
//! Must not import `eval`, `engine`, `store`, `api`, nor `sled`, `tokio`, `axum`, `serde_json`.

use super::closure::{search_up, Closure};
use super::{Index, ObjectId, ObjectTypeId, RelationId, SubjectKey, SubjectKind};
use crate::tuple::{SubjectText, TupleCondition};

/// Fills an index with many tuples; call [`Loader::finish`] when done.
#[derive(Debug)]
pub(crate) struct Loader<'i> {
    index: &'i mut Index,
    object_type: Option<(String, ObjectTypeId)>,
    object: Option<(String, ObjectId)>,
    relation: Option<(String, RelationId)>,
}

impl<'i> Loader<'i> {
    /// A loader adding to `index`.
    pub(crate) fn new(index: &'i mut Index) -> Self {
        Loader { index, object_type: None, object: None, relation: None }
    }

    /// Adds the tuple `object_type:object_id#relation@subject` with its condition and expiry
    /// (replacing those of a tuple already held); true if it was new.
    pub(crate) fn insert(
        &mut self,
        object_type: &str,
        object_id: &str,
        relation: &str,
        subject: SubjectText<'_>,
        condition: Option<&TupleCondition>,
        expires_at_ms: Option<i64>,
    ) -> bool {
        let type_id = match &self.object_type {
            Some((name, id)) if name == object_type => *id,
            _ => {
                let id = self.index.intern_type(object_type);
                self.object_type = Some((object_type.to_string(), id));
                self.object = None;
                id
            }
        };
        let object = match &self.object {
            Some((name, id)) if name == object_id => *id,
            _ => {
                let id = self.index.objects.entry(type_id).or_default().intern(object_id);
                self.object = Some((object_id.to_string(), id));
                id
            }
        };
        let relation_id = match &self.relation {
            Some((name, id)) if name == relation => *id,
            _ => {
                let id = self.index.relations.intern(relation);
                self.relation = Some((relation.to_string(), id));
                id
            }
        };
        let subject_type = self.index.intern_type(subject.subject_type);
        let subject_relation = match subject.relation {
            Some(r) => self.index.relations.intern(r),
            None => RelationId::NONE,
        };
        let subject_object = match subject.id {
            Some(id) => self.index.objects.entry(subject_type).or_default().intern(id),
            None => ObjectId::WILDCARD,
        };
        let key = SubjectKey { kind: SubjectKind { subject_type, relation: subject_relation }, object: subject_object };
        let table = self.index.tables.entry((type_id, relation_id)).or_default();
        let added = table.insert(object, key, condition.cloned());
        let had_expiry = table.set_expiry(object, key, expires_at_ms);
        match (had_expiry, expires_at_ms.is_some()) {
            (false, true) => self.index.expiring_len += 1,
            (true, false) => self.index.expiring_len -= 1,
            _ => {}
        }
        if added {
            self.index.len += 1;
        }
        added
    }

    /// Builds the group closure of every recursive userset relation from scratch, and gives
    /// back the spare capacity loading left.
    pub(crate) fn finish(self) {
        let index = self.index;
        index.shrink_to_fit();
        for (&(object_type, relation), table) in &index.tables {
            let kind = SubjectKind { subject_type: object_type, relation };
            let mut closure = Closure::default();
            for (subject, _) in table.named_subjects().filter(|(s, _)| s.kind == kind && s.object != ObjectId::WILDCARD)
            {
                let reach = search_up(table, kind, subject.object);
                if !reach.groups.is_empty() {
                    closure.set(subject.object, reach);
                }
            }
            if closure.is_empty() {
                index.closures.remove(&(object_type, relation));
            } else {
                index.closures.insert((object_type, relation), closure);
            }
        }
    }
}
