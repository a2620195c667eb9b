//! Explain (DESIGN §9): why a check or an on-behalf-of chain allows or denies, over one snapshot.
//!
//! What it owns: turning the recorded walk of `eval::explain` into an answer: the tree, `path` (the
//! tuples that grant an allow, contextual ones marked) and `would_allow` (for a deny, tuples any
//! one of which, written alone, makes the same request allow: each candidate is verified by
//! checking again with it laid over the snapshot, so the list never promises what would not work).
//! **Invariant:** `allowed` is what `check` (or `obo_check`) answers for the same request at the
//! same revision; an explanation is computed afresh each time (never cached) and holds at most
//! `max_explain_nodes` nodes per check it explains.
//! Must not import `api` or `store`.

use super::agent::{AudienceCheckRequest, OboCheckRequest, DEFAULT_DELEGATION_RELATION};
use super::decide::Denial;
use super::write::validate_tuple;
use super::{
    as_input_error, as_validation, resolve_object_relation, resolve_subject, Answer, CheckRequest, EngineError,
    StoreHandle,
};
use crate::eval::{self, EvalError, Evaluator, ExplainInput, ExplainNode, NodeResult, Permissionship, Reason};
use crate::index::{Index, Overlay, View};
use crate::model::Model;
use crate::tuple::{split_object, split_subject, Context, Tuple};

/// Most tuples `would_allow` lists.
pub const MAX_WOULD_ALLOW: usize = 5;

/// Most candidates tried (each costs one check) before `would_allow` settles for what it found.
const MAX_CANDIDATES_TRIED: usize = 16;

/// One tuple of an allow's grant path.
#[derive(Debug, Clone, PartialEq)]
pub struct PathTuple {
    /// The tuple.
    pub tuple: Tuple,
    /// True when it came with the request (a contextual tuple), not from the store.
    pub contextual: bool,
}

/// The answer of an explain.
#[derive(Debug, Clone, PartialEq)]
pub struct Explanation {
    /// What `check` (or `obo_check`) answers.
    pub allowed: bool,
    /// The model it was evaluated with.
    pub model_id: String,
    /// The evaluation tree.
    pub tree: ExplainNode,
    /// For an allow: the tuples that grant it.
    pub path: Vec<PathTuple>,
    /// For a deny: tuples any one of which, written alone, makes it allow (shortest first, at
    /// most [`MAX_WOULD_ALLOW`]); empty where none was found.
    pub would_allow: Vec<Tuple>,
    /// True when some subtree was cut for the node bound.
    pub cut: bool,
    /// For an OBO deny: the first failing link or principal; for an audience deny: every member
    /// who does not hold the relation.
    pub denied_by: Option<Denial>,
}

impl Explanation {
    /// The three-valued answer the tree's root holds: SpiceDB's permissionship where the walk was
    /// three-valued ([`StoreHandle::explain_permissionship`]); a cycle at the root is a deny, as in
    /// `check`. `None` where the walk stopped at the depth limit or the deadline.
    pub fn permissionship(&self) -> Option<Permissionship> {
        match self.tree.result {
            NodeResult::Allowed => Some(Permissionship::Allowed),
            NodeResult::Conditional => Some(Permissionship::Conditional),
            NodeResult::Denied | NodeResult::Cycle => Some(Permissionship::Denied),
            NodeResult::DepthExceeded | NodeResult::DeadlineExceeded => None,
        }
    }
}

/// One store snapshot with the request's contextual tuples, able to lay one more tuple over it.
struct Snapshot<'d> {
    model_id: &'d str,
    model: &'d Model,
    compiled: &'d eval::CompiledModel,
    index: &'d Index,
    now: i64,
    contextual: &'d [Tuple],
    context: &'d Context,
}

impl Snapshot<'_> {
    /// Runs `f` over the snapshot, with `extra` laid over it as one more contextual tuple.
    fn with_view<T>(&self, extra: Option<&Tuple>, f: impl FnOnce(View<'_>) -> T) -> T {
        if self.contextual.is_empty() && extra.is_none() {
            return f(View::new(self.index).at(self.now));
        }
        let overlay = Overlay::new(self.index, self.contextual.iter().chain(extra));
        f(overlay.view(self.index).at(self.now))
    }
}

/// One check to explain, by name.
struct Question<'q> {
    object: &'q str,
    relation: &'q str,
    user: &'q str,
}

impl StoreHandle<'_> {
    /// Explains a check: its answer, the tree of its walk, the grant path or the tuples that would
    /// allow it. A check that `check` answers with an error (depth, deadline, a condition missing
    /// context) is explained as denied, the tree showing where and why.
    pub fn explain(&self, request: &CheckRequest) -> Result<Answer<Explanation>, EngineError> {
        self.explain_check(request, false)
    }

    /// Explains a check with SpiceDB's three-valued semantics, as [`StoreHandle::check_permissionship`]
    /// answers it: the tree's root is `allowed`, `conditional` or `denied`
    /// ([`Explanation::permissionship`]), and each tuple whose condition lacks context is a
    /// `conditional` node naming the condition and the missing parameters.
    pub fn explain_permissionship(&self, request: &CheckRequest) -> Result<Answer<Explanation>, EngineError> {
        self.explain_check(request, true)
    }

    fn explain_check(&self, request: &CheckRequest, partial: bool) -> Result<Answer<Explanation>, EngineError> {
        self.core.config.input.request(&request.object, &request.relation, &request.user)?;
        let question = Question { object: &request.object, relation: &request.relation, user: &request.user };
        self.explain_snapshot(request.model_id.as_deref(), &request.contextual_tuples, &request.context, |snapshot| {
            let (result, tree) = self.explain_question(snapshot, &question, partial)?;
            let allowed = matches!(result, Ok(true));
            let would_allow = if allowed {
                Vec::new()
            } else {
                self.would_allow(snapshot, std::slice::from_ref(&question), tree.candidates())?
            };
            Ok(self.explanation(snapshot, allowed, tree, would_allow, None))
        })
    }

    /// Explains an audience check of one object: one node per member, each the tree of that
    /// member's own check, and every member is explained (an audience denies when any member
    /// does; `denied_by` names them all). `would_allow` holds tuples any one of which, written
    /// alone, makes every member allow.
    pub fn explain_audience(&self, request: &AudienceCheckRequest) -> Result<Answer<Explanation>, EngineError> {
        let [object] = request.objects.as_slice() else {
            return Err(EngineError::Validation(format!(
                "an audience is explained for one object at a time; `objects` has {}",
                request.objects.len()
            )));
        };
        if request.audience.is_empty() {
            return Err(EngineError::Validation("`audience` must name at least one subject".into()));
        }
        self.core.config.input.principals(&request.audience)?;
        self.core.config.input.object(object)?;
        self.core.config.input.relation(&request.relation)?;
        self.explain_snapshot(request.model_id.as_deref(), &request.contextual_tuples, &request.context, |snapshot| {
            let mut root = ExplainNode::leaf(NodeResult::Allowed);
            root.object = Some(object.clone());
            root.relation = Some(request.relation.clone());
            root.subject = Some(request.audience.join(", "));
            root.rewrite = Some("audience");
            let (mut denied, mut denied_questions, mut candidates) = (Vec::new(), Vec::new(), Vec::new());
            for member in &request.audience {
                let question = Question { object, relation: &request.relation, user: member };
                let (result, tree) = self.explain_question(snapshot, &question, false)?;
                if !matches!(result, Ok(true)) {
                    denied.push(member.clone());
                    candidates.extend(tree.candidates());
                    denied_questions.push(question);
                }
                root.children.push(tree);
            }
            let allowed = denied.is_empty();
            root.result = if allowed { NodeResult::Allowed } else { NodeResult::Denied };
            let would_allow = self.would_allow(snapshot, &denied_questions, candidates)?;
            let denied_by = (!allowed).then(|| Denial::audience(denied, &request.relation, object));
            Ok(self.explanation(snapshot, allowed, root, would_allow, denied_by))
        })
    }

    /// Explains an on-behalf-of check: one node per delegation link and per principal, in chain
    /// order, stopping at the first that fails (as `obo_check` does). A link's node is a
    /// `delegation` node naming the hop before (`object`), the delegation relation and the hop
    /// (`subject`), over the tree of that check. For a failing link, `would_allow` is the
    /// delegation tuple; for a failing principal, what would grant it.
    pub fn explain_obo(&self, request: &OboCheckRequest) -> Result<Answer<Explanation>, EngineError> {
        self.core.config.input.principals(&request.principals)?;
        self.core.config.input.object(&request.object)?;
        self.core.config.input.relation(&request.relation)?;
        if request.principals.is_empty() {
            return Err(EngineError::Validation("`principals` must name at least one subject".into()));
        }
        let delegation = request.delegation_relation.as_deref().unwrap_or(DEFAULT_DELEGATION_RELATION);
        self.explain_snapshot(request.model_id.as_deref(), &request.contextual_tuples, &request.context, |snapshot| {
            let mut root = ExplainNode::leaf(NodeResult::Allowed);
            root.object = Some(request.object.clone());
            root.relation = Some(request.relation.clone());
            root.subject = Some(request.principals.join(" → "));
            root.rewrite = Some("obo_chain");
            let mut would_allow = Vec::new();
            let mut denied_by = None;
            for (i, principal) in request.principals.iter().enumerate() {
                if i >= 1 {
                    let delegator = &request.principals[i - 1];
                    let link = Question { object: delegator, relation: delegation, user: principal };
                    let (result, tree) = self.explain_question(snapshot, &link, false).map_err(|e| {
                        EngineError::Validation(format!(
                            "invalid `delegation_relation` for `principals[{}]` `{delegator}`: {e}",
                            i - 1
                        ))
                    })?;
                    let granted = matches!(result, Ok(true));
                    let mut hop = ExplainNode::leaf(if granted { NodeResult::Allowed } else { NodeResult::Denied });
                    hop.object = Some(delegator.clone());
                    hop.relation = Some(delegation.to_string());
                    hop.subject = Some(principal.clone());
                    hop.rewrite = Some("delegation");
                    hop.reason = (!granted).then_some(Reason::DelegationMissing);
                    hop.children.push(tree);
                    root.children.push(hop);
                    if !granted {
                        let delegation_tuple: Option<Tuple> = Tuple::from_parts(delegator, delegation, principal).ok();
                        would_allow = self.would_allow(
                            snapshot,
                            std::slice::from_ref(&link),
                            delegation_tuple.into_iter().collect(),
                        )?;
                        denied_by = Some(Denial::delegation(principal, delegation, delegator));
                        break;
                    }
                }
                let permission = Question { object: &request.object, relation: &request.relation, user: principal };
                let (result, tree) = self.explain_question(snapshot, &permission, false)?;
                let granted = matches!(result, Ok(true));
                let candidates = if granted { Vec::new() } else { tree.candidates() };
                root.children.push(tree);
                if !granted {
                    would_allow = self.would_allow(snapshot, std::slice::from_ref(&permission), candidates)?;
                    denied_by = Some(Denial::principal(principal, &request.relation, &request.object));
                    break;
                }
            }
            let allowed = denied_by.is_none();
            root.result = if allowed { NodeResult::Allowed } else { NodeResult::Denied };
            Ok(self.explanation(snapshot, allowed, root, would_allow, denied_by))
        })
    }

    /// Assembles the answer: the path of an allow, with contextual tuples marked.
    fn explanation(
        &self,
        snapshot: &Snapshot<'_>,
        allowed: bool,
        tree: ExplainNode,
        would_allow: Vec<Tuple>,
        denied_by: Option<Denial>,
    ) -> Explanation {
        let path = if allowed { tree.path() } else { Vec::new() };
        let path = path
            .into_iter()
            .map(|tuple| {
                let contextual = snapshot.contextual.iter().any(|c| c.identity() == tuple.identity());
                PathTuple { tuple, contextual }
            })
            .collect();
        Explanation {
            allowed,
            model_id: snapshot.model_id.to_string(),
            cut: tree.any_cut(),
            tree,
            path,
            would_allow,
            denied_by,
        }
    }

    /// Runs `f` over one consistent snapshot (as `with_snapshot`, with what explain needs besides
    /// a view: the model, the index and the instant, to re-check with one more tuple).
    fn explain_snapshot<T>(
        &self,
        model_id: Option<&str>,
        contextual_tuples: &[Tuple],
        context: &Context,
        f: impl FnOnce(&Snapshot<'_>) -> Result<T, EngineError>,
    ) -> Result<Answer<T>, EngineError> {
        self.pinned(model_id, contextual_tuples, |data, version, now| {
            f(&Snapshot {
                model_id: &version.id,
                model: &version.model,
                compiled: &version.compiled,
                index: &data.index,
                now,
                contextual: contextual_tuples,
                context,
            })
        })
    }

    /// Explains one check by name: `check`'s result (or error) and the tree; three-valued
    /// (SpiceDB's `check_partial`) when `partial`.
    fn explain_question(
        &self,
        snapshot: &Snapshot<'_>,
        question: &Question<'_>,
        partial: bool,
    ) -> Result<(Result<bool, EvalError>, ExplainNode), EngineError> {
        let (object_type, object_id) = split_object(question.object).map_err(as_input_error)?;
        let user = split_subject(question.user).map_err(as_input_error)?;
        let max_nodes = self.core.config.input.max_explain_nodes;
        snapshot.with_view(None, |view| {
            let evaluator =
                Evaluator { model: snapshot.compiled, view, limits: self.eval_limits(), context: snapshot.context };
            let (object_type_id, relation) =
                resolve_object_relation(&evaluator, object_type, question.relation).map_err(as_validation)?;
            let user_key = resolve_subject(&evaluator, user).map_err(as_validation)?;
            if user.relation == Some(question.relation)
                && (user.subject_type, user.id) == (object_type, Some(object_id))
            {
                // A userset holds its own relation: no tuple is involved.
                let mut tree = ExplainNode::leaf(NodeResult::Allowed);
                tree.object = Some(question.object.to_string());
                tree.relation = Some(question.relation.to_string());
                tree.subject = Some(question.user.to_string());
                return Ok((Ok(true), tree));
            }
            let object = evaluator.object_id(object_type_id, object_id);
            let input = ExplainInput { object_text: question.object, user_text: question.user, max_nodes, partial };
            Ok(eval::explain(&evaluator, object_type_id, object, relation, user_key, &input))
        })
    }

    /// The candidates that, laid over the snapshot alone, make every one of `questions` allow
    /// (empty when there are none): at most [`MAX_WOULD_ALLOW`], in the candidates' order without
    /// repeats, from at most [`MAX_CANDIDATES_TRIED`] tries.
    fn would_allow(
        &self,
        snapshot: &Snapshot<'_>,
        questions: &[Question<'_>],
        candidates: Vec<Tuple>,
    ) -> Result<Vec<Tuple>, EngineError> {
        let mut found = Vec::new();
        if questions.is_empty() {
            return Ok(found);
        }
        let mut tried: Vec<Tuple> = Vec::new();
        for candidate in candidates {
            if found.len() >= MAX_WOULD_ALLOW || tried.len() >= MAX_CANDIDATES_TRIED {
                break;
            }
            if tried.contains(&candidate) {
                continue;
            }
            tried.push(candidate.clone());
            if validate_tuple(snapshot.model, &candidate).is_err() {
                continue;
            }
            let allows = snapshot.with_view(Some(&candidate), |view| {
                let evaluator =
                    Evaluator { model: snapshot.compiled, view, limits: self.eval_limits(), context: snapshot.context };
                let mut all = Ok(true);
                for question in questions {
                    let (object_type, object_id) = split_object(question.object).map_err(as_input_error)?;
                    let user = split_subject(question.user).map_err(as_input_error)?;
                    let (object_type_id, relation) =
                        resolve_object_relation(&evaluator, object_type, question.relation)?;
                    let user_key = resolve_subject(&evaluator, user)?;
                    let object = evaluator.object_id(object_type_id, object_id);
                    all = eval::check(&evaluator, object_type_id, object, relation, user_key);
                    if !matches!(all, Ok(true)) {
                        break;
                    }
                }
                Ok::<_, EngineError>(all)
            })?;
            match allows {
                Ok(true) => found.push(candidate),
                Ok(false) | Err(EvalError::Condition { .. }) => {}
                // Out of depth or time: what was found so far is the answer.
                Err(EvalError::DepthExceeded { .. } | EvalError::DeadlineExceeded) => break,
            }
        }
        Ok(found)
    }
}
