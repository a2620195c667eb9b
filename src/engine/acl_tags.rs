//! ACL tags over one store (DESIGN §11): a paged snapshot of every object's tags for an
//! (object type, relation), the objects whose tags changed after a revision, and a principal's
//! memberships. What tags and memberships are, and when matching them is exact, is
//! `eval::acl_tags`'s; this file reads snapshots and the changelog for it.
//!
//! What it owns: the paging of the snapshot (by object id, within one load of the index) and of
//! the deltas (by changelog position), and the names on the wire.
//! - A snapshot page lists, in object-id order, the objects of the type with at least one tag.
//!   Its cursor carries the index load (epoch) and the revision of the first page: every page
//!   reflects that revision or a later one, and `revision` answers the first page's, so deltas
//!   after it cover whatever moved while the client paged.
//! - Deltas after revision `R` walk the changelog from `R`: a changed tuple retags its own object
//!   and, through arrows (`viewer from parent`), that object's descendants, found through the
//!   current tupleset tuples (`eval::acl_tags::affected`). So a delta's work is proportional to
//!   the tuples changed and the objects below them. A change to a userset's members
//!   (`group:eng#member@user:anne`) retags nothing: it changes memberships, which clients ask
//!   for at query time. A new authorization model changes tags without a revision: a client that
//!   sees a new model id snapshots again.
//!
//! **Invariant:** applying the deltas after `R` to a snapshot at `R` gives the snapshot at the
//! delta's revision (objects listed with no tags are removed). Deltas name at least every object
//! whose tags changed, each with its tags at the delta's revision (one may be named whose tags
//! ended as they were). Expired tuples count from the expiry sweep's delete on; tags never see
//! contextual tuples or condition context.
//! Must not import `api` or `store`.

use super::{find_model, resolve_object_relation, Answer, ChangeCursor, EngineError, StoreData, StoreHandle};
use crate::eval::acl_tags::{self, TagGraph, Tagger};
use crate::eval::{self, Evaluator, User};
use crate::index::{Id, ObjectBitmap, ObjectId, ObjectTypeId, RelationId, SubjectKey, SubjectKind, View};
use crate::tuple::{split_object, Context};
use rustc_hash::FxHashMap;

/// Changelog entries one delta page reads at most.
pub const ACL_TAG_CHANGES_PER_PAGE: usize = 1000;

/// Objects a snapshot page looks at per object it may return, at least: a page of objects mostly
/// without tags ends early (with a cursor) instead of scanning the whole type.
const SCAN_PER_OBJECT: usize = 64;

/// One object and its tags (`user:anne`, `user:*`, `group:eng#member`), in a stable order (by
/// type, relation, then object, as the index interned them; a client compares them as a set).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectTags {
    /// The object, `document:d1`.
    pub object: String,
    /// Its tags; empty in a delta when it lost its last one.
    pub tags: Vec<String>,
}

/// Where a tag snapshot resumes: the index load, the first page's revision, and the next object id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AclTagsCursor {
    epoch: u64,
    revision: u64,
    next: ObjectId,
}

impl AclTagsCursor {
    /// The cursor as text, for an opaque continuation token.
    pub fn to_text(&self) -> String {
        format!("{}.{}.{}", self.epoch, self.revision, self.next.raw())
    }

    /// Reads text written by [`AclTagsCursor::to_text`]; `None` when it is not such text.
    pub fn parse(text: &str) -> Option<AclTagsCursor> {
        let mut parts = text.split('.');
        let cursor = AclTagsCursor {
            epoch: parts.next()?.parse().ok()?,
            revision: parts.next()?.parse().ok()?,
            next: ObjectId::from_raw(parts.next()?.parse().ok()?),
        };
        parts.next().is_none().then_some(cursor)
    }
}

/// What to read tags of.
#[derive(Debug, Clone, Default)]
pub struct AclTagsRequest {
    /// The object type, `document`.
    pub object_type: String,
    /// The relation, `viewer`.
    pub relation: String,
    /// A model version; the latest when `None`.
    pub model_id: Option<String>,
}

/// One page of a tag snapshot.
#[derive(Debug, Clone)]
pub struct AclTagsPage {
    /// Whether `tags ∩ memberships ≠ ∅` is exactly `check` for this (object type, relation).
    pub exact: bool,
    /// The page's objects with at least one tag, in object-id order.
    pub objects: Vec<ObjectTags>,
    /// Where the next page starts; `None` on the last.
    pub next: Option<AclTagsCursor>,
    /// The revision of the snapshot's first page: ask for deltas after it.
    pub revision: u64,
}

/// One page of tag deltas, or the news that they cannot be given.
#[derive(Debug, Clone)]
pub enum AclTagChanges {
    /// The objects whose tags may have changed, with their tags now.
    Delta {
        /// As [`AclTagsPage::exact`].
        exact: bool,
        /// Each named once, with its tags at `revision` (possibly none).
        objects: Vec<ObjectTags>,
        /// Where the next page of the changelog starts; `None` when this page reached `revision`.
        next: Option<ChangeCursor>,
        /// The revision the tags reflect; on the last page, the one to ask deltas after next.
        revision: u64,
    },
    /// The changelog cannot give deltas after that revision (it is not this store's, or not kept):
    /// the client must take a new snapshot.
    Resnapshot {
        /// Why, for the message.
        reason: String,
    },
}

impl StoreHandle<'_> {
    /// One page of the tags of every object of a type for a relation (objects with none are
    /// left out); `after` is the previous page's cursor.
    pub fn acl_tags(
        &self,
        request: &AclTagsRequest,
        page_size: usize,
        after: Option<AclTagsCursor>,
    ) -> Result<AclTagsPage, EngineError> {
        self.core.config.input.type_name(&request.object_type)?;
        self.core.config.input.relation(&request.relation)?;
        self.with_tag_snapshot(request.model_id.as_deref(), |evaluator, data| {
            let (object_type, relation) = resolve_object_relation(evaluator, &request.object_type, &request.relation)?;
            let revision = match after {
                Some(cursor) if cursor.epoch != data.epoch => {
                    return Err(EngineError::InvalidContinuationToken(
                        "the continuation token is from an earlier load of the store's index: take a new snapshot"
                            .into(),
                    ))
                }
                Some(cursor) => cursor.revision,
                None => data.revision,
            };
            let end = evaluator.view.object_count(object_type);
            let scan_limit = page_size.saturating_mul(SCAN_PER_OBJECT).max(4096);
            let mut tagger = Tagger::new(evaluator);
            let mut names = TagNames::default();
            let mut objects = Vec::with_capacity(page_size.min(1024));
            // Ids of a type are dense from 0 up to `end`: the scan walks that range.
            let mut next = after.map_or(0, |cursor| cursor.next.raw());
            let mut scanned = 0;
            while next < end && objects.len() < page_size && scanned < scan_limit {
                let object = ObjectId::from_raw(next);
                let tags = tagger.tags(object_type, object, relation)?;
                if !tags.is_empty() {
                    objects.push(named(evaluator.view, &mut names, &request.object_type, object_type, object, &tags));
                }
                next += 1;
                scanned += 1;
            }
            let next =
                (next < end).then_some(AclTagsCursor { epoch: data.epoch, revision, next: ObjectId::from_raw(next) });
            let exact = acl_tags::exact(evaluator.model, object_type, relation);
            Ok(AclTagsPage { exact, objects, next, revision })
        })
    }

    /// The objects whose tags may have changed after `after` (a revision, or a previous page's
    /// cursor), with their tags now, from at most [`ACL_TAG_CHANGES_PER_PAGE`] changelog entries.
    pub fn acl_tag_changes(&self, request: &AclTagsRequest, after: ChangeCursor) -> Result<AclTagChanges, EngineError> {
        self.core.config.input.type_name(&request.object_type)?;
        self.core.config.input.relation(&request.relation)?;
        self.with_tag_snapshot(request.model_id.as_deref(), |evaluator, data| {
            let (object_type, relation) = resolve_object_relation(evaluator, &request.object_type, &request.relation)?;
            if after.revision > data.revision {
                return Ok(AclTagChanges::Resnapshot {
                    reason: format!(
                        "revision `{}` is past the store's revision `{}`: the changelog cannot give deltas after it",
                        after.revision, data.revision
                    ),
                });
            }
            let records = self.core.backend.changes(self.id(), Some(after), None, ACL_TAG_CHANGES_PER_PAGE)?;
            let page_full = records.len() >= ACL_TAG_CHANGES_PER_PAGE;
            let graph = TagGraph::new(evaluator.model, object_type, relation);
            let view = evaluator.view;
            let mut changed = Vec::new();
            let mut unknown: Vec<String> = Vec::new();
            let mut last = None;
            for record in records.iter().take_while(|record| record.cursor.revision <= data.revision) {
                last = Some(record.cursor);
                let tuple = &record.tuple.tuple;
                let (Some(type_id), Some(relation_id)) =
                    (view.type_id(&tuple.object.object_type), view.relation_id(&tuple.relation))
                else {
                    continue;
                };
                if !graph.reads_tuples_of(type_id, relation_id) {
                    continue;
                }
                match view.object_id(type_id, &tuple.object.id) {
                    Some(object) => changed.push((type_id, object, relation_id)),
                    // Not interned in this load of the index: no tuple names it now, so it has no
                    // tags and no descendants.
                    None if type_id == object_type => unknown.push(tuple.object.to_string()),
                    None => {}
                }
            }
            let mut tagger = Tagger::new(evaluator);
            let mut names = TagNames::default();
            let affected = acl_tags::affected(evaluator, &graph, &changed)?;
            let mut objects = Vec::with_capacity(affected.len() as usize + unknown.len());
            for object in affected.objects() {
                let tags = tagger.tags(object_type, object, relation)?;
                objects.push(named(view, &mut names, &request.object_type, object_type, object, &tags));
            }
            unknown.sort_unstable();
            unknown.dedup();
            objects.extend(unknown.into_iter().map(|object| ObjectTags { object, tags: Vec::new() }));
            let reached_snapshot = records.iter().any(|record| record.cursor.revision > data.revision);
            let next = if page_full && !reached_snapshot { last } else { None };
            let exact = acl_tags::exact(evaluator.model, object_type, relation);
            Ok(AclTagChanges::Delta { exact, objects, next, revision: data.revision })
        })
    }

    /// The memberships of a principal (an object `type:id`): itself, `type:*`, and every userset
    /// of an exact kind it is in, nested groups followed; sorted after the first two.
    pub fn memberships(&self, principal: &str, model_id: Option<&str>) -> Result<Answer<Vec<String>>, EngineError> {
        self.core.config.input.object(principal)?;
        let (type_name, id) = split_object(principal).map_err(|_| {
            EngineError::Validation(format!("`principal` must be an object `type:id`, got `{principal}`"))
        })?;
        self.with_tag_snapshot(model_id, |evaluator, data| {
            let type_id = super::resolve_type(evaluator, type_name)
                .map_err(|e| EngineError::Validation(format!("invalid `principal`: {e}")))?;
            let key = User {
                kind: SubjectKind { subject_type: type_id, relation: RelationId::NONE },
                object: evaluator.object_id(type_id, id),
            };
            let mut memberships = vec![principal.to_string(), format!("{type_name}:*")];
            let mut usersets = Vec::new();
            for kind in acl_tags::membership_kinds(evaluator.model) {
                let groups = eval::list_objects(evaluator, kind.subject_type, kind.relation, key)?;
                let ids: Vec<ObjectId> = groups.objects().collect();
                let (Some(group_type), Some(relation)) =
                    (evaluator.view.type_name(kind.subject_type), evaluator.view.relation_name(kind.relation))
                else {
                    continue;
                };
                for name in evaluator.view.object_names(kind.subject_type, &ids).into_iter().flatten() {
                    usersets.push(format!("{group_type}:{name}#{relation}"));
                }
            }
            usersets.sort_unstable();
            memberships.extend(usersets);
            Ok(Answer { value: memberships, revision: data.revision })
        })
    }

    /// Runs `f` over one snapshot of a store, with its stored tuples only (at the engine's clock)
    /// and an empty condition context, and the snapshot's data (its revision and load epoch).
    fn with_tag_snapshot<T>(
        &self,
        model_id: Option<&str>,
        f: impl FnOnce(&Evaluator<'_>, &StoreData) -> Result<T, EngineError>,
    ) -> Result<T, EngineError> {
        let state = self.state.live()?;
        let data = state.data.read();
        let version = find_model(&data, self.id(), model_id)?;
        let now = self.core.now_for(&data.index);
        let context = Context::new();
        let view = View::new(&data.index).at(now);
        let evaluator = Evaluator { model: &version.compiled, view, limits: self.eval_limits(), context: &context };
        f(&evaluator, &data)
    }
}

/// Tag names already written in one request: the objects below a folder share its tags.
type TagNames = FxHashMap<SubjectKey, String>;

/// An object and its tags as text, in the tags' order (type, relation, then object, by id).
fn named(
    view: View<'_>,
    names: &mut TagNames,
    type_name: &str,
    object_type: ObjectTypeId,
    object: ObjectId,
    tags: &[SubjectKey],
) -> ObjectTags {
    let id = view.object_name(object_type, object).unwrap_or_default();
    let mut texts = Vec::with_capacity(tags.len());
    for &tag in tags {
        if let Some(name) = names.get(&tag) {
            texts.push(name.clone());
        } else if let Some(name) = tag_name(view, tag) {
            names.insert(tag, name.clone());
            texts.push(name);
        }
    }
    ObjectTags { object: format!("{type_name}:{id}"), tags: texts }
}

/// `user:anne`, `user:*` or `group:eng#member`.
fn tag_name(view: View<'_>, tag: SubjectKey) -> Option<String> {
    if tag.object == ObjectId::WILDCARD {
        return Some(format!("{}:*", view.type_name(tag.kind.subject_type)?));
    }
    view.subject(tag).map(|subject| subject.to_string())
}
