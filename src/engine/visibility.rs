//! Visibility (DESIGN §11): how many objects of a type the principals may see, out of how many,
//! and how a retriever should search them: by id list, by ACL tags, or by post-filtering.
//!
//! What it owns: the count and the choice of strategy. The count is the size of the intersection
//! of every principal's list-objects bitmap (the second principal on lists only within the
//! first's, and so on), so it respects conditions, expiry and contextual context exactly as
//! list-objects does; no object name is read unless the ids are returned.
//! **Invariant:** `visible` equals the number of objects of the type that `filter` would let
//! through for the same principals at the same revision; the strategy is `ids` iff
//! `visible ≤ max_ids`, else `acl_tags` iff the tags of (object type, relation) are exact
//! (`eval::acl_tags::exact`), else `post_filter`. `total` counts every object of the type the
//! index has ever interned (ids are never given back), so it may count deleted objects.
//! Must not import `api` or `store`.

use super::agent::{resolve_target, Chain};
use super::{Answer, Denial, EngineError, StoreHandle};
use crate::eval::{self, acl_tags, Evaluator};
use crate::index::{ObjectBitmap, ObjectId};
use crate::tuple::Context;
use roaring::RoaringBitmap;

/// How a retriever should search the visible objects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VisibilityStrategy {
    /// Few enough to pass as an id list: the answer carries them.
    Ids,
    /// Filter on the objects' ACL tags against the principals' memberships (exact here).
    AclTags,
    /// Search unfiltered, then ask `filter`: neither an id list nor tags will do.
    PostFilter,
}

impl VisibilityStrategy {
    /// The wire name: `ids`, `acl_tags` or `post_filter`.
    pub fn as_str(self) -> &'static str {
        match self {
            VisibilityStrategy::Ids => "ids",
            VisibilityStrategy::AclTags => "acl_tags",
            VisibilityStrategy::PostFilter => "post_filter",
        }
    }
}

/// A visibility question: how many objects of `object_type` may the principals see?
#[derive(Debug, Clone, Default)]
pub struct VisibilityRequest {
    /// One subject, or an OBO chain (human first); every principal must see an object.
    pub principals: Vec<String>,
    /// The relation, `viewer`.
    pub relation: String,
    /// The type, `document`.
    pub object_type: String,
    /// Up to this many visible objects, the answer lists their ids.
    pub max_ids: usize,
    /// The chain's delegation relation; `delegate` when `None`.
    pub delegation_relation: Option<String>,
    /// Condition context.
    pub context: Context,
    /// A model version; the latest when `None`.
    pub model_id: Option<String>,
}

/// The answer to a [`VisibilityRequest`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Visibility {
    /// How many objects of the type every principal may see.
    pub visible: u64,
    /// How many objects of the type the index knows.
    pub total: u64,
    /// How to search them.
    pub strategy: VisibilityStrategy,
    /// The visible ids (without the type prefix), sorted, when `visible ≤ max_ids`.
    pub ids: Option<Vec<String>>,
    /// When a delegation link of the chain fails, that link (and nothing is visible).
    pub denied_by: Option<Denial>,
}

impl StoreHandle<'_> {
    /// Counts the objects of a type the principals may see and picks a search strategy.
    pub fn visibility(&self, request: &VisibilityRequest) -> Result<Answer<Visibility>, EngineError> {
        self.core.config.input.principals(&request.principals)?;
        self.core.config.input.relation(&request.relation)?;
        self.core.config.input.type_name(&request.object_type)?;
        self.with_snapshot(request.model_id.as_deref(), &[], |compiled, view| {
            let evaluator = Evaluator { model: compiled, view, limits: self.eval_limits(), context: &request.context };
            visibility(&evaluator, request)
        })
    }
}

fn visibility(evaluator: &Evaluator<'_>, request: &VisibilityRequest) -> Result<Visibility, EngineError> {
    let chain = Chain::resolve(evaluator, &request.principals, request.delegation_relation.as_deref())?;
    let (type_id, relation) = resolve_target(evaluator, "relation", &request.object_type, &request.relation)?;
    let total = u64::from(evaluator.view.object_count(type_id));
    if let Some(denial) = chain.first_broken_link(evaluator)? {
        let strategy = VisibilityStrategy::Ids;
        return Ok(Visibility { visible: 0, total, strategy, ids: Some(Vec::new()), denied_by: Some(denial) });
    }
    let mut visible: Option<RoaringBitmap> = None;
    for principal in &chain.principals {
        let objects = match &visible {
            None => eval::list_objects(evaluator, type_id, relation, principal.key())?,
            Some(seen) if seen.is_empty() => break,
            Some(seen) => eval::list_objects_within(evaluator, type_id, relation, principal.key(), seen)?,
        };
        visible = Some(objects);
    }
    let visible = visible.unwrap_or_default();
    let count = visible.len();
    if count <= request.max_ids as u64 {
        let object_ids: Vec<ObjectId> = visible.objects().collect();
        let mut ids: Vec<String> =
            evaluator.view.object_names(type_id, &object_ids).into_iter().flatten().map(str::to_string).collect();
        ids.sort_unstable();
        return Ok(Visibility {
            visible: count,
            total,
            strategy: VisibilityStrategy::Ids,
            ids: Some(ids),
            denied_by: None,
        });
    }
    let strategy = if acl_tags::exact(evaluator.model, type_id, relation) {
        VisibilityStrategy::AclTags
    } else {
        VisibilityStrategy::PostFilter
    };
    Ok(Visibility { visible: count, total, strategy, ids: None, denied_by: None })
}
