//! Agent authorization over one snapshot: on-behalf-of (OBO) checks along a delegation chain,
//! audience checks, and the visibility filter for retrieved embeddings.
//!
//! What it owns: the meaning of a principal chain `[human, agent, sub-agent, ...]`. A chain is
//! allowed iff every hop `i ≥ 1` holds the delegation relation on hop `i − 1` and every principal
//! holds the relation on the object; a deny names the first failing link or principal, in chain
//! order (principal 0, link 1, principal 1, link 2, ...).
//! **Invariant:** one decision reads one (model, index, revision) snapshot: every sub-check of a
//! chain, an audience or a filter sees the same tuples, contextual tuples and condition context.
//! **Invariant:** the filter's two strategies (a check per id, or one bitmap per principal) give
//! identical answers; the size of the request only picks the faster one.
//! Must not import `api` or `store`.

use super::{resolve_object_relation, resolve_type, Answer, Denial, EngineError, StoreHandle};
use crate::eval::{self, Evaluator, User};
use crate::index::{DenseBits, ObjectBitmap, ObjectId, ObjectTypeId, RelationId, SubjectKind};
use crate::tuple::{split_object, Context, Tuple};
use rayon::prelude::*;
use roaring::RoaringBitmap;

/// The delegation relation used when a request names none.
pub const DEFAULT_DELEGATION_RELATION: &str = "delegate";

/// Up to this many candidate ids, the filter checks each id; past it, it intersects with one
/// list-objects bitmap per principal, restricted to the candidates. A check costs the same for
/// every id, while the bitmap costs a fixed list-objects per principal and then less per id, so
/// checks win for few ids and the bitmap for many; the threshold sits where `benches/agent.rs`
/// finds the two about equal (figures in benches/README.md). Both give the same answer, so the
/// threshold only ever changes the speed.
pub const FILTER_CHECK_THRESHOLD: usize = 1024;

/// Past this many checks, a batch (audience, filter by checks) is spread over rayon's threads.
const PARALLEL_CHECKS: usize = 64;

/// Past this many candidate ids, their names are resolved to object ids on rayon's threads.
const PARALLEL_IDS: usize = 1024;

read_request! {
    /// An on-behalf-of check: may the chain `principals` (human first) do `relation` on `object`?
    pub struct OboCheckRequest {
        /// The chain, human first: `["user:anne", "agent:planner"]`. Each is an object `type:id`.
        pub principals: Vec<String>,
        /// The relation every principal must hold.
        pub relation: String,
        /// The object, `tool:send_email`.
        pub object: String,
        /// The relation each hop must hold on the one before; [`DEFAULT_DELEGATION_RELATION`] when `None`.
        pub delegation_relation: Option<String>,
        /// The caller's audit record (tool name, task id, ...), kept for the decision log; never evaluated.
        pub audit: Context,
    }
}

/// The answer of an OBO check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OboDecision {
    /// Whether the whole chain is allowed.
    pub allowed: bool,
    /// For a deny, the first failing link or principal.
    pub denied_by: Option<Denial>,
}

read_request! {
    /// An audience check: for each object, does every audience member hold `relation`?
    pub struct AudienceCheckRequest {
        /// Who will see the answer: objects `type:id`.
        pub audience: Vec<String>,
        /// The relation each member must hold.
        pub relation: String,
        /// The objects, `document:1`, possibly of several types.
        pub objects: Vec<String>,
        /// The caller's audit record, kept for the decision log; never evaluated.
        pub audit: Context,
    }
}

/// The audience answer for one object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AudienceResult {
    /// The object, as asked.
    pub object: String,
    /// Whether every member holds the relation.
    pub allowed: bool,
    /// The members who do not, in audience order.
    pub denied_for: Vec<String>,
}

/// How the filter decides; [`FilterStrategy::Auto`] picks by size. The others exist so tests and
/// benches can compare both paths on the same data.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum FilterStrategy {
    /// Checks for at most [`FILTER_CHECK_THRESHOLD`] ids, the bitmap past that.
    #[default]
    Auto,
    /// One check per id and principal.
    Checks,
    /// One list-objects bitmap per principal, intersected, then one probe per id.
    Bitmap,
}

read_request! {
    /// The visibility filter: which of `ids` (of `object_type`) may the principals see?
    pub struct FilterRequest {
        /// One subject, or an OBO chain (human first).
        pub principals: Vec<String>,
        /// The relation, `viewer`.
        pub relation: String,
        /// The type of every candidate, `document`.
        pub object_type: String,
        /// Candidate object ids (no type prefix), e.g. the source ids of retrieved embeddings.
        pub ids: Vec<String>,
        /// The chain's delegation relation; [`DEFAULT_DELEGATION_RELATION`] when `None`.
        pub delegation_relation: Option<String>,
        /// Which path to take.
        pub strategy: FilterStrategy,
        /// The caller's audit record, kept for the decision log; never evaluated.
        pub audit: Context,
    }
}

/// The filter's answer, borrowing the ids from its request (a retrieval batch is thousands of
/// ids; copying the visible ones would cost more than deciding them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilterAnswer<'r> {
    /// The visible ids, in input order (duplicates kept).
    pub allowed_ids: Vec<&'r str>,
    /// When a delegation link of the chain fails, that link (and no id is visible).
    pub denied_by: Option<Denial>,
}

/// One principal, resolved against the snapshot: usable as a subject and as a delegation object.
#[derive(Debug, Clone, Copy)]
pub(super) struct Principal<'r> {
    pub(super) text: &'r str,
    pub(super) type_id: ObjectTypeId,
    /// Its object id, `None` if the index never saw its name.
    pub(super) object: Option<ObjectId>,
    /// In a chain with a next hop, the delegation relation's id on this principal's type (the
    /// relation the next hop must hold on it); otherwise [`RelationId::NONE`].
    delegation: RelationId,
}

impl Principal<'_> {
    pub(super) fn key(&self) -> User {
        User { kind: SubjectKind { subject_type: self.type_id, relation: RelationId::NONE }, object: self.object }
    }
}

/// Resolves each `principals[i]` (an object `type:id` of a model type); errors name the field.
pub(super) fn resolve_principals<'r>(
    evaluator: &Evaluator<'_>,
    field: &str,
    principals: &'r [String],
) -> Result<Vec<Principal<'r>>, EngineError> {
    if principals.is_empty() {
        return Err(EngineError::Validation(format!("`{field}` must name at least one subject")));
    }
    // A chain or an audience names few types (`user`, `agent`): each is resolved once.
    let mut last_type: Option<(&str, ObjectTypeId)> = None;
    principals
        .iter()
        .enumerate()
        .map(|(i, text)| {
            let (type_name, id) = split_object(text).map_err(|_| {
                EngineError::Validation(format!("`{field}[{i}]` must be an object `type:id`, got `{text}`"))
            })?;
            let type_id = match last_type {
                Some((name, type_id)) if name == type_name => type_id,
                _ => resolve_type(evaluator, type_name)
                    .map_err(|e| EngineError::Validation(format!("invalid `{field}[{i}]`: {e}")))?,
            };
            last_type = Some((type_name, type_id));
            Ok(Principal { text, type_id, object: evaluator.object_id(type_id, id), delegation: RelationId::NONE })
        })
        .collect()
}

/// The (type, relation) of a request's object, as a validation error naming the field.
pub(super) fn resolve_target(
    evaluator: &Evaluator<'_>,
    field: &str,
    type_name: &str,
    relation: &str,
) -> Result<(ObjectTypeId, RelationId), EngineError> {
    resolve_object_relation(evaluator, type_name, relation)
        .map_err(|e| EngineError::Validation(format!("invalid `{field}`: {e}")))
}

/// A chain resolved against one snapshot, with its delegation relation.
pub(super) struct Chain<'r> {
    /// The hops; each but the last knows its delegation relation's id.
    pub(super) principals: Vec<Principal<'r>>,
    delegation_name: &'r str,
}

impl<'r> Chain<'r> {
    pub(super) fn resolve(
        evaluator: &Evaluator<'_>,
        principals: &'r [String],
        delegation_relation: Option<&'r str>,
    ) -> Result<Chain<'r>, EngineError> {
        let mut principals = resolve_principals(evaluator, "principals", principals)?;
        let delegation_name = delegation_relation.unwrap_or(DEFAULT_DELEGATION_RELATION);
        for i in 1..principals.len() {
            let delegator = principals[i - 1];
            if i >= 2 && principals[i - 2].type_id == delegator.type_id {
                principals[i - 1].delegation = principals[i - 2].delegation;
                continue;
            }
            let type_name = evaluator.view.type_name(delegator.type_id).unwrap_or_default();
            principals[i - 1].delegation = resolve_object_relation(evaluator, type_name, delegation_name)
                .map_err(|e| {
                    EngineError::Validation(format!(
                        "invalid `delegation_relation`: {e} (`principals[{}]` `{}` delegates to `principals[{i}]`)",
                        i - 1,
                        delegator.text
                    ))
                })?
                .1;
        }
        Ok(Chain { principals, delegation_name })
    }

    /// Whether hop `i` holds the delegation relation on hop `i − 1`; a [`Denial`] if not.
    fn link(&self, evaluator: &Evaluator<'_>, i: usize) -> Result<Option<Denial>, EngineError> {
        let (delegator, delegate) = (self.principals[i - 1], self.principals[i]);
        if eval::check(evaluator, delegator.type_id, delegator.object, delegator.delegation, delegate.key())? {
            return Ok(None);
        }
        Ok(Some(Denial::delegation(delegate.text, self.delegation_name, delegator.text)))
    }

    /// The first delegation link that fails, if any.
    pub(super) fn first_broken_link(&self, evaluator: &Evaluator<'_>) -> Result<Option<Denial>, EngineError> {
        for i in 1..self.principals.len() {
            if let Some(denial) = self.link(evaluator, i)? {
                return Ok(Some(denial));
            }
        }
        Ok(None)
    }
}

/// The OBO check of `request` over one evaluator's snapshot: what [`StoreHandle::obo_check`]
/// answers, and what a what-if asks of a changed copy of the snapshot.
pub(super) fn decide_obo(evaluator: &Evaluator<'_>, request: &OboCheckRequest) -> Result<OboDecision, EngineError> {
    let (object_type, object_id) = split_object(&request.object).map_err(|_| {
        EngineError::Validation(format!("`object` must be an object `type:id`, got `{}`", request.object))
    })?;
    let chain = Chain::resolve(evaluator, &request.principals, request.delegation_relation.as_deref())?;
    let (type_id, relation) = resolve_target(evaluator, "relation", object_type, &request.relation)?;
    let object = evaluator.object_id(type_id, object_id);
    for (i, principal) in chain.principals.iter().enumerate() {
        if i >= 1 {
            if let Some(denial) = chain.link(evaluator, i)? {
                return Ok(OboDecision { allowed: false, denied_by: Some(denial) });
            }
        }
        if !eval::check(evaluator, type_id, object, relation, principal.key())? {
            let denial = Denial::principal(principal.text, &request.relation, &request.object);
            return Ok(OboDecision { allowed: false, denied_by: Some(denial) });
        }
    }
    Ok(OboDecision { allowed: true, denied_by: None })
}

impl StoreHandle<'_> {
    /// Answers an on-behalf-of check; a chain of one is a plain check.
    pub fn obo_check(&self, request: &OboCheckRequest) -> Result<Answer<OboDecision>, EngineError> {
        self.core.config.input.principals(&request.principals)?;
        self.core.config.input.object(&request.object)?;
        self.core.config.input.relation(&request.relation)?;
        self.with_snapshot(request.model_id.as_deref(), &request.contextual_tuples, |compiled, view| {
            let evaluator = Evaluator { model: compiled, view, limits: self.eval_limits(), context: &request.context };
            decide_obo(&evaluator, request)
        })
    }

    /// Answers an audience check: per object, allowed iff every member holds the relation.
    pub fn audience_check(&self, request: &AudienceCheckRequest) -> Result<Answer<Vec<AudienceResult>>, EngineError> {
        if request.objects.is_empty() {
            return Err(EngineError::Validation("`objects` must name at least one object".into()));
        }
        self.core.config.input.principals(&request.audience)?;
        self.core.config.input.relation(&request.relation)?;
        request.objects.iter().try_for_each(|object| self.core.config.input.object(object))?;
        self.with_snapshot(request.model_id.as_deref(), &request.contextual_tuples, |compiled, view| {
            let evaluator = Evaluator { model: compiled, view, limits: self.eval_limits(), context: &request.context };
            let audience = resolve_principals(&evaluator, "audience", &request.audience)?;
            let mut targets = Vec::with_capacity(request.objects.len());
            for (i, object) in request.objects.iter().enumerate() {
                let field = format!("objects[{i}]");
                let (type_name, id) = split_object(object).map_err(|_| {
                    EngineError::Validation(format!("`{field}` must be an object `type:id`, got `{object}`"))
                })?;
                let (type_id, relation) = resolve_target(&evaluator, &field, type_name, &request.relation)?;
                targets.push((object.as_str(), type_id, evaluator.object_id(type_id, id), relation));
            }
            let answer =
                |&(object, type_id, object_id, relation): &(&str, ObjectTypeId, Option<ObjectId>, RelationId)| {
                    let mut denied_for = Vec::new();
                    for member in &audience {
                        if !eval::check(&evaluator, type_id, object_id, relation, member.key())? {
                            denied_for.push(member.text.to_string());
                        }
                    }
                    Ok(AudienceResult { object: object.to_string(), allowed: denied_for.is_empty(), denied_for })
                };
            if targets.len() * audience.len() > PARALLEL_CHECKS {
                targets.par_iter().map(answer).collect()
            } else {
                targets.iter().map(answer).collect()
            }
        })
    }

    /// The visibility filter: the ids the principals (one subject or an OBO chain) may see, in
    /// input order. Ids no tuple names are not visible.
    pub fn filter<'r>(&self, request: &'r FilterRequest) -> Result<Answer<FilterAnswer<'r>>, EngineError> {
        self.core.config.input.principals(&request.principals)?;
        self.core.config.input.relation(&request.relation)?;
        self.core.config.input.type_name(&request.object_type)?;
        // Only an id that may be too long is joined into `type:id` for the check's message.
        let limit = self.core.config.input.max_object_bytes;
        for id in request.ids.iter().filter(|id| request.object_type.len() + 1 + id.len() > limit) {
            self.core.config.input.object(&[request.object_type.as_str(), ":", id].concat())?;
        }
        self.with_snapshot(request.model_id.as_deref(), &request.contextual_tuples, |compiled, view| {
            let evaluator = Evaluator { model: compiled, view, limits: self.eval_limits(), context: &request.context };
            let chain = Chain::resolve(&evaluator, &request.principals, request.delegation_relation.as_deref())?;
            let (type_id, relation) = resolve_target(&evaluator, "relation", &request.object_type, &request.relation)?;
            if let Some(denial) = chain.first_broken_link(&evaluator)? {
                return Ok(FilterAnswer { allowed_ids: Vec::new(), denied_by: Some(denial) });
            }
            let use_checks = match request.strategy {
                FilterStrategy::Auto => request.ids.len() <= FILTER_CHECK_THRESHOLD,
                FilterStrategy::Checks => true,
                FilterStrategy::Bitmap => false,
            };
            let visible = if use_checks {
                visible_by_checks(&evaluator, &chain.principals, type_id, relation, &request.ids)?
            } else {
                visible_by_bitmap(&evaluator, &chain.principals, type_id, relation, &request.ids)?
            };
            let allowed_ids = request.ids.iter().zip(visible).filter(|(_, v)| *v).map(|(id, _)| id.as_str()).collect();
            Ok(FilterAnswer { allowed_ids, denied_by: None })
        })
    }
}

/// Per id: visible iff known and every principal holds the relation on it. Each principal checks
/// only the ids still visible, in chunks (one per thread) that share the principal's group lookups.
fn visible_by_checks(
    evaluator: &Evaluator<'_>,
    principals: &[Principal<'_>],
    type_id: ObjectTypeId,
    relation: RelationId,
    ids: &[String],
) -> Result<Vec<bool>, EngineError> {
    let objects = object_ids(evaluator, type_id, ids);
    // Positions (in `ids`) of the known ids still visible to every principal so far.
    let mut candidates: Vec<usize> = (0..ids.len()).filter(|&i| objects[i].is_some()).collect();
    for principal in principals {
        let batch: Vec<ObjectId> = candidates.iter().filter_map(|&i| objects[i]).collect();
        let answers = if batch.len() > PARALLEL_CHECKS {
            let chunk = batch.len().div_ceil(rayon::current_num_threads()).max(PARALLEL_CHECKS);
            batch
                .par_chunks(chunk)
                .map(|chunk| eval::check_many(evaluator, type_id, chunk, relation, principal.key()))
                .collect::<Result<Vec<_>, _>>()?
                .concat()
        } else {
            eval::check_many(evaluator, type_id, &batch, relation, principal.key())?
        };
        let mut answers = answers.into_iter();
        candidates.retain(|_| answers.next().unwrap_or(false));
    }
    let mut visible = vec![false; ids.len()];
    for i in candidates {
        visible[i] = true;
    }
    Ok(visible)
}

/// The intersection of every principal's list-objects bitmap, restricted to the candidates (so
/// only the candidates' own tuples are read, not every visible object's), probed once per id.
fn visible_by_bitmap(
    evaluator: &Evaluator<'_>,
    principals: &[Principal<'_>],
    type_id: ObjectTypeId,
    relation: RelationId,
    ids: &[String],
) -> Result<Vec<bool>, EngineError> {
    let objects = object_ids(evaluator, type_id, ids);
    let known: Vec<ObjectId> = objects.iter().flatten().copied().collect();
    // Ids of one type are dense: as bits, the candidates come out sorted without a sort, and
    // each visibility test at the end is one read.
    let max_words = known.len().saturating_mul(4).max(1024);
    let mut visible = match DenseBits::of_ids(&known, max_words) {
        Some(bits) => bits.to_bitmap(),
        None => {
            // Sorted first: a bitmap built from ids in input order inserts each into the middle.
            let mut known = known;
            known.sort_unstable();
            known.dedup();
            RoaringBitmap::from_sorted_objects(known).unwrap_or_default()
        }
    };
    for principal in principals {
        if visible.is_empty() {
            break;
        }
        visible = eval::list_objects_within(evaluator, type_id, relation, principal.key(), &visible)?;
    }
    Ok(match DenseBits::of(&visible, max_words) {
        Some(bits) => objects.iter().map(|object| object.is_some_and(|object| bits.contains(object))).collect(),
        None => objects.iter().map(|object| object.is_some_and(|object| visible.contains_object(object))).collect(),
    })
}

/// Each id's object id (`None` if no tuple names it), resolved on rayon's threads when there are many.
fn object_ids(evaluator: &Evaluator<'_>, type_id: ObjectTypeId, ids: &[String]) -> Vec<Option<ObjectId>> {
    if ids.len() > PARALLEL_IDS {
        let chunk = ids.len().div_ceil(rayon::current_num_threads()).max(PARALLEL_IDS);
        ids.par_chunks(chunk).map(|part| evaluator.view.object_ids(type_id, part)).collect::<Vec<_>>().concat()
    } else {
        evaluator.view.object_ids(type_id, ids)
    }
}
