//! The console's **Agents** page (DESIGN §4, §10): who may act for whom, what each agent may call,
//! and **Revoke** of a delegation with a preview of what it would break.
//!
//! Delegations are the tuples of the delegation relation (`delegate`, as obo-check assumes when a
//! request names none: `user:anne#delegate@agent:planner` lets planner act for anne), read a page
//! per type that defines it, with their condition and expiry. The agent × tool matrix asks a plain
//! check of `can_call` on the model's `tool` type (schema/agents.fga's convention) for the agents
//! of those delegations and the first tools the store holds: the gateway's mapping is not known to
//! the HTTP router (a gateway may run apart from it), while the model is the same everywhere.
//! **Revoke** first shows a preview: the agent's recent allowed decisions (from the decision log)
//! that would deny if the tuple were deleted, each evaluated again over a copy of the snapshot with
//! the tuple removed ([`StoreHandle::obo_checks_without`](crate::engine::StoreHandle)); only the
//! confirmed POST (the Tuples page's delete, coming back here) deletes it, as an ordinary write
//! with the key's name as actor.
//!
//! Invariants: reads are bounded (a page of delegations per type, at most [`MATRIX_SIDE`] agents
//! and tools, [`PREVIEW_DECISIONS`] decisions); the preview writes nothing.
//! Must not import `store`, `index` or `eval`.

use super::view::{self, Chrome};
use super::{
    blocking, can_write, chrome, encode, non_empty, parse_tuple, tuple_row, ConsoleState, Refusal, StoreVisit,
    PAGE_SIZE,
};
use crate::api::dto::ReadTupleKeyDto;
use crate::api::time::format_rfc3339;
use crate::api::tuples;
use crate::engine::{CheckRequest, DecisionFilter, OboCheckRequest, DEFAULT_DELEGATION_RELATION};
use crate::tuple::Tuple;
use axum::extract::Query;
use axum::response::{IntoResponse, Response};
use maud::{html, Markup};
use serde::Deserialize;
use std::collections::{BTreeSet, HashMap};

/// Most agents and most tools in the matrix (it asks one check per cell).
const MATRIX_SIDE: usize = 12;

/// Most recent allowed decisions of the agent the revoke preview evaluates again.
pub(super) const PREVIEW_DECISIONS: usize = 200;

/// The type and relation of the matrix's tools.
const TOOL_TYPE: &str = "tool";
const TOOL_RELATION: &str = "can_call";

/// The agent × tool matrix: the tools, and per agent one answer per tool.
struct Matrix {
    tools: Vec<String>,
    rows: Vec<(String, Vec<bool>)>,
}

/// Everything the Agents page shows.
struct AgentsPage {
    store: String,
    /// The delegation tuples: `object` is acted for, `subject` is the agent.
    delegations: Vec<view::TupleRow>,
    /// Types whose delegations fill more than one page (the Tuples page pages on).
    more: Vec<String>,
    /// `None` when the model has no `tool` type with `can_call`.
    matrix: Option<Matrix>,
    can_write: bool,
}

/// The types of the latest model that define the delegation relation, and whether it has the
/// matrix's tool relation.
async fn delegating_types(console: &ConsoleState, store_id: &str) -> Result<(Vec<String>, bool), Refusal> {
    let (engine, id) = (console.app.engine.clone(), store_id.to_string());
    let model = blocking(move || Ok(engine.store(&id)?.model(None)?)).await?;
    let defines = |type_name: &str, relation: &str| {
        model.model.types.iter().any(|t| t.name == type_name && t.relations.iter().any(|r| r.name == relation))
    };
    let types = model
        .model
        .types
        .iter()
        .filter(|t| t.relations.iter().any(|r| r.name == DEFAULT_DELEGATION_RELATION))
        .map(|t| t.name.clone())
        .collect();
    Ok((types, defines(TOOL_TYPE, TOOL_RELATION)))
}

pub(super) async fn agents_page(StoreVisit { console, store_id, visit }: StoreVisit) -> Result<Response, Refusal> {
    let (types, has_tools) = delegating_types(&console, &store_id).await?;
    let mut filters = Vec::new();
    for type_name in &types {
        filters.push(tuples::read_filter(Some(ReadTupleKeyDto {
            user: None,
            relation: Some(DEFAULT_DELEGATION_RELATION.to_string()),
            object: Some(format!("{type_name}:")),
        }))?);
    }
    let tool_filter = tuples::read_filter(Some(ReadTupleKeyDto {
        user: None,
        relation: None,
        object: Some(format!("{TOOL_TYPE}:")),
    }))?;
    let (engine, id) = (console.app.engine.clone(), store_id.clone());
    let (delegations, more, matrix) = blocking(move || {
        let store = engine.store(&id)?;
        let (mut delegations, mut more) = (Vec::new(), Vec::new());
        for (filter, type_name) in filters.iter().zip(&types) {
            let page = store.read_page(filter, None, PAGE_SIZE)?;
            if page.next.is_some() {
                more.push(type_name.clone());
            }
            delegations.extend(page.tuples);
        }
        let matrix = if has_tools {
            let agents: BTreeSet<String> = delegations
                .iter()
                .map(|stored| stored.tuple.subject.to_string())
                .filter(|subject| !subject.contains('#'))
                .take(MATRIX_SIDE)
                .collect();
            let tool_page = store.read_page(&tool_filter, None, PAGE_SIZE)?;
            let tools: BTreeSet<String> =
                tool_page.tuples.iter().map(|stored| stored.tuple.object.to_string()).take(MATRIX_SIDE).collect();
            let mut rows = Vec::new();
            for agent in &agents {
                let mut answers = Vec::new();
                for tool in &tools {
                    let request = CheckRequest {
                        user: agent.clone(),
                        relation: TOOL_RELATION.to_string(),
                        object: tool.clone(),
                        ..CheckRequest::default()
                    };
                    answers.push(store.check(&request)?.value);
                }
                rows.push((agent.clone(), answers));
            }
            Some(Matrix { tools: tools.into_iter().collect(), rows })
        } else {
            None
        };
        Ok((delegations, more, matrix))
    })
    .await?;
    let delegations = delegations.iter().map(tuple_row).collect();
    let page =
        AgentsPage { store: encode(&store_id), delegations, more, matrix, can_write: can_write(&visit, &store_id) };
    Ok(render(&chrome(&console, &visit, Some(&store_id)), &page).into_response())
}

#[derive(Deserialize)]
pub(super) struct PreviewQuery {
    tuple: Option<String>,
}

/// One recorded decision that the revoke would turn to deny.
struct FlipRow {
    time: String,
    principals: String,
    relation: String,
    object: String,
}

/// The recorded question of a decision, as one key: equal questions are evaluated once.
type QuestionKey = (Vec<String>, String, String, Option<String>, Option<String>);

/// The agent's recent allowed decisions that are allowed now and would deny without `tuple`.
fn flips(console: &ConsoleState, store_id: &str, tuple: &Tuple) -> Result<Vec<FlipRow>, crate::api::ApiError> {
    let engine = &console.app.engine;
    let store = engine.store(store_id)?;
    let filter = DecisionFilter {
        principal: Some(tuple.subject.to_string()),
        allowed: Some(true),
        limit: PREVIEW_DECISIONS,
        ..DecisionFilter::default()
    };
    // An audience or a filter over a list is not one chain's question.
    let records: Vec<_> = engine
        .decision_log()
        .list(&store, &filter)?
        .into_iter()
        .map(|(_, record)| record)
        .filter(|record| !record.audience && !record.object.ends_with(':'))
        .collect();
    let mut questions: HashMap<QuestionKey, usize> = HashMap::new();
    let mut requests = Vec::new();
    for record in &records {
        let key = question_key(record);
        questions.entry(key).or_insert_with(|| {
            requests.push(OboCheckRequest {
                principals: record.principals.clone(),
                relation: record.relation.clone(),
                object: record.object.clone(),
                delegation_relation: record.delegation_relation.clone(),
                model_id: (!record.model_id.is_empty()).then(|| record.model_id.to_string()),
                ..OboCheckRequest::default()
            });
            requests.len() - 1
        });
    }
    let mut now = Vec::with_capacity(requests.len());
    for request in &requests {
        now.push(store.obo_check(request)?.value.allowed);
    }
    let without = store.obo_checks_without(tuple, &requests)?.value;
    Ok(records
        .into_iter()
        .filter(|record| {
            let at = questions.get(&question_key(record)).copied().unwrap_or(usize::MAX);
            now.get(at).copied().unwrap_or(false) && !without.get(at).copied().unwrap_or(true)
        })
        .map(|record| FlipRow {
            time: format_rfc3339(record.time_ms),
            principals: record.principals.join(" → "),
            relation: record.relation,
            object: record.object,
        })
        .collect())
}

fn question_key(record: &crate::engine::DecisionRecord) -> QuestionKey {
    (
        record.principals.clone(),
        record.relation.clone(),
        record.object.clone(),
        record.delegation_relation.clone(),
        (!record.model_id.is_empty()).then(|| record.model_id.to_string()),
    )
}

/// The revoke preview: what the delegation's deletion would turn to deny, and the confirming form.
pub(super) async fn revoke_preview(
    StoreVisit { console, store_id, visit }: StoreVisit,
    Query(query): Query<PreviewQuery>,
) -> Result<Response, Refusal> {
    let text = non_empty(&query.tuple)
        .ok_or_else(|| Refusal::bad_request("`tuple` must name the delegation to revoke".to_string()))?
        .to_string();
    let tuple = parse_tuple(&text)?;
    let (state, id, removed) = (console.clone(), store_id.clone(), tuple.clone());
    let flipped = blocking(move || flips(&state, &id, &removed)).await?;
    let chrome = chrome(&console, &visit, Some(&store_id));
    Ok(render_preview(&chrome, &encode(&store_id), &text, &tuple, &flipped).into_response())
}

fn render(chrome: &Chrome, page: &AgentsPage) -> Markup {
    let base = format!("/console/stores/{}", page.store);
    view::layout(
        "Agents",
        chrome,
        html! {
            h2 { "Who may act for whom" }
            p { "Each row is a " code { (DEFAULT_DELEGATION_RELATION) } " tuple: the agent may act for the one it names." }
            @if page.delegations.is_empty() {
                p { "No delegations." }
            } @else {
                table.ids {
                    thead { tr {
                        th { "Acts for" } th { "Agent" } th.short { "Condition" } th.time { "Expires" }
                        @if page.can_write { th.narrow { "Actions" } }
                    } }
                    tbody {
                        @for row in &page.delegations {
                            tr {
                                td.id { (row.object) } td.id { (row.subject) }
                                td { (row.condition.as_deref().unwrap_or("")) }
                                td { (row.expires_at.as_deref().unwrap_or("never")) }
                                @if page.can_write {
                                    td {
                                        form.inline method="get" action={ (base) "/agents/revoke" } {
                                            input type="hidden" name="tuple" value=(row.key);
                                            button type="submit" aria-label={ "Revoke " (row.key) } { "Revoke" }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            @for type_name in &page.more {
                p { a href={ (base) "/tuples?object=" (type_name) "%3A&relation=" (DEFAULT_DELEGATION_RELATION) } {
                    "More delegations of " (type_name) " on the Tuples page"
                } }
            }
            h2 { "Agent × tool" }
            @match &page.matrix {
                None => p { "The model has no " code { (TOOL_TYPE) } " type with " code { (TOOL_RELATION) } ", so there is no matrix." },
                Some(matrix) if matrix.tools.is_empty() || matrix.rows.is_empty() => p { "No agents or no tools to show." },
                Some(Matrix { tools, rows }) => {
                    p { "Whether each agent, on its own, holds " code { (TOOL_RELATION) } " on each tool (a chain also needs the person it acts for)." }
                    table {
                        thead { tr { th { "Agent" } @for tool in tools { th { (tool) } } } }
                        tbody {
                            @for (agent, answers) in rows {
                                tr {
                                    td { (agent) }
                                    @for allowed in answers {
                                        @if *allowed { td.allow { "allow" } } @else { td.deny { "deny" } }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        },
    )
}

fn render_preview(chrome: &Chrome, store: &str, key: &str, tuple: &Tuple, flipped: &[FlipRow]) -> Markup {
    view::layout(
        "Revoke delegation",
        chrome,
        html! {
            p { "Revoking " code { (key) } " deletes the tuple: " (tuple.subject) " may no longer act for " (tuple.object) "." }
            h2 { "Recent decisions that would turn to deny" }
            p { "Of the agent's last " (PREVIEW_DECISIONS) " allowed decisions, each evaluated again without the tuple." }
            @if flipped.is_empty() {
                p role="status" { "None of its recent allowed decisions would change." }
            } @else {
                table.ids {
                    thead { tr { th.time { "Time" } th { "Principals" } th.short { "Relation" } th { "Object" } } }
                    tbody {
                        @for row in flipped {
                            tr { td { (row.time) } td.id { (row.principals) } td { (row.relation) } td.id { (row.object) } }
                        }
                    }
                }
            }
            div.actions {
                form.inline method="post" action={ "/console/stores/" (store) "/tuples/delete" }
                    data-confirm={ "Revoke " (key) "? " (flipped.len()) " recent decisions would turn to deny." } {
                    input type="hidden" name="csrf" value=(chrome.csrf);
                    input type="hidden" name="back" value={ "/console/stores/" (store) "/agents" };
                    input type="hidden" name="tuple" value=(key);
                    button type="submit" { "Revoke" }
                }
                a href={ "/console/stores/" (store) "/agents" } { "Cancel" }
            }
        },
    )
}
