//! The console's templates (maud, checked when the crate compiles): one function per page and the
//! shared layout, each given finished rows and deciding nothing but how they look.
//!
//! Invariants: every control carries a visible label (the names DESIGN §10 fixes: **API key**,
//! **Sign in**, **Sign out**, **Store**, **Subject**, **Relation**, **Object**, **Add**,
//! **Delete**, **Test file**, **Run tests**); every form that changes anything carries the session's CSRF token; nothing is
//! loaded from another origin and there is no inline script or style (the CSP forbids both); a
//! change behind a confirmation is a form marked `data-confirm` (the one script, [`SCRIPT`], asks
//! in a `<dialog>`; without it the form still posts); the
//! nav links only pages that exist.
//! Must not import `store`, `index` or `eval`.

use maud::{html, Markup, DOCTYPE};

/// The console's stylesheet, served from the binary at `/console/console.css`.
pub(super) const STYLESHEET: &str = "\
body{font-family:system-ui,sans-serif;margin:0;color:#1b1b1b;background:#fafafa}\
header{display:flex;flex-wrap:wrap;gap:1rem;align-items:center;padding:.6rem 1rem;background:#243447;color:#fff}\
header a{color:#fff}header nav{display:flex;gap:1rem}\
main{padding:1rem;max-width:78rem}\
table{border-collapse:collapse;width:100%;margin:.5rem 0}\
th,td{border-bottom:1px solid #ddd;padding:.3rem .5rem;text-align:left;vertical-align:top;font-family:ui-monospace,monospace;font-size:.9rem}\
th,td label,td button{font-family:system-ui,sans-serif}\
table.ids{table-layout:fixed}td.id{overflow-wrap:anywhere}\
th.time{width:13.5rem}th.short{width:10rem}th.narrow{width:6.5rem}th.wide{width:19rem}\
header select{max-width:18rem;text-overflow:ellipsis}\
.decide{display:flex;flex-wrap:nowrap;gap:.6rem;align-items:end}.decide form.fields{margin:0;flex-wrap:nowrap}\
.actions{display:flex;gap:1rem;align-items:center;margin:1rem 0}\
form.inline{display:inline}form.fields{display:flex;flex-wrap:wrap;gap:.6rem;align-items:end;margin:.5rem 0}\
label{display:flex;flex-direction:column;font-size:.85rem}\
.notice{background:#fff3cd;padding:.5rem;border:1px solid #e0c36c}\
.error{background:#f8d7da;padding:.5rem;border:1px solid #d9939b}\
.allow,.allowed{color:#1d6b2f}.deny,.denied{color:#a3212f}\
.tree details{margin-left:1.2rem}.tree summary{font-family:ui-monospace,monospace;font-size:.9rem;cursor:pointer}\
.tree>details{margin-left:0}.reason{color:#5a3b00}\
header form{display:flex;gap:.4rem;align-items:end;white-space:nowrap}header button{white-space:nowrap}\
dialog{border:1px solid #888;border-radius:.3rem;padding:1rem;max-width:36rem}\
dialog menu{display:flex;gap:.6rem;justify-content:end;padding:0;margin:1rem 0 0}\
.graph-frame{overflow-x:auto}.graph rect{fill:#fff;stroke:#243447}\
.graph text{font-family:ui-monospace,monospace;font-size:12px}.graph .type-name{font-weight:bold}\
.edge{fill:none;stroke-width:1.4}.edge.direct{stroke:#44546a}.edge.userset{stroke:#1f5fae;stroke-dasharray:6 3}\
.edge.tupleset{stroke:#2c7a3f;stroke-dasharray:2 3}.graph marker path{fill:#44546a}\
.legend span{white-space:nowrap;margin-right:1rem}.legend svg.sample{vertical-align:middle}";

/// The console's one script (confirmation dialogs for forms marked `data-confirm`), served from
/// the binary at `/console/static/console.js`; hand-written rather than vendored htmx because a
/// confirmation is all the pages need, and every page works without it.
pub(super) const SCRIPT: &str = include_str!("console.js");

/// What every page's frame shows.
pub(super) struct Chrome {
    /// Every store the viewer may open: (id, name).
    pub(super) stores: Vec<(String, String)>,
    /// The store the page is about.
    pub(super) store: Option<String>,
    /// Who is signed in (the key's name or id); `None` when authentication is off.
    pub(super) signed_in_as: Option<String>,
    /// The session's CSRF token, for the sign-out form.
    pub(super) csrf: String,
}

/// The frame around every signed-in page: nav, **Store** picker, sign-out, notices.
pub(super) fn layout(title: &str, chrome: &Chrome, content: Markup) -> Markup {
    document(
        title,
        true,
        html! {
            header {
                a href="/console/" { strong { "Writ console" } }
                @if let Some(store) = &chrome.store {
                    nav aria-label="Pages" {
                        a href={ "/console/stores/" (store) "/decisions" } { "Decisions" }
                        a href={ "/console/stores/" (store) "/explain" } { "Explain" }
                        a href={ "/console/stores/" (store) "/agents" } { "Agents" }
                        a href={ "/console/stores/" (store) "/approvals" } { "Approvals" }
                        a href={ "/console/stores/" (store) "/tuples" } { "Tuples" }
                        a href={ "/console/stores/" (store) "/model" } { "Model" }
                    }
                }
                form method="get" action="/console/" {
                    label { "Store"
                        select name="store" {
                            @for (id, name) in &chrome.stores {
                                option value=(id) selected[chrome.store.as_deref() == Some(id.as_str())] { (name) " (" (id) ")" }
                            }
                        }
                    }
                    button type="submit" { "Open" }
                }
                @match &chrome.signed_in_as {
                    Some(name) => {
                        span { "Signed in as " (name) }
                        form.inline method="post" action="/console/sign-out" {
                            input type="hidden" name="csrf" value=(chrome.csrf);
                            button type="submit" { "Sign out" }
                        }
                    }
                    None => {}
                }
            }
            main {
                @if chrome.signed_in_as.is_none() {
                    p.notice { "Authentication is off: anyone who can reach this address may read and change everything." }
                }
                h1 { (title) }
                (content)
            }
        },
    )
}

/// A page outside the signed-in frame (sign-in, refusals).
pub(super) fn bare(title: &str, content: Markup) -> Markup {
    document(
        title,
        false,
        html! {
            header { a href="/console/" { strong { "Writ console" } } }
            main { h1 { (title) } (content) }
        },
    )
}

/// The HTML document every console page is: its head (title, stylesheet and, on signed-in
/// pages, the script) around `body`'s content.
fn document(title: &str, script: bool, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                title { (title) " · Writ console" }
                link rel="stylesheet" href="/console/console.css";
                @if script { script src="/console/static/console.js" defer {} }
            }
            body { (body) }
        }
    }
}

/// The sign-in form, with the reason the last try failed.
pub(super) fn sign_in(error: Option<&str>) -> Markup {
    bare(
        "Sign in",
        html! {
            @if let Some(error) = error { p.error role="alert" { (error) } }
            form.fields method="post" action="/console/sign-in" {
                label { "API key" input type="password" name="key" autocomplete="off" required; }
                button type="submit" { "Sign in" }
            }
        },
    )
}

/// A refusal or failure, with the way back.
pub(super) fn problem(title: &str, message: &str) -> Markup {
    bare(
        title,
        html! {
            p.error role="alert" { (message) }
            p { a href="/console/" { "Back to the console" } }
        },
    )
}

/// The stores page: one line per store the viewer may open.
pub(super) fn stores(chrome: &Chrome) -> Markup {
    layout(
        "Stores",
        chrome,
        html! {
            @if chrome.stores.is_empty() {
                p { "There are no stores you may open." }
            } @else {
                table.ids {
                    thead { tr { th { "Name" } th { "Id" } th.wide { "Pages" } } }
                    tbody {
                        @for (id, name) in &chrome.stores {
                            tr {
                                td.id { (name) } td.id { (id) }
                                td {
                                    a href={ "/console/stores/" (id) "/decisions" } { "Decisions" } " · "
                                    a href={ "/console/stores/" (id) "/tuples" } { "Tuples" } " · "
                                    a href={ "/console/stores/" (id) "/model" } { "Model" }
                                }
                            }
                        }
                    }
                }
            }
        },
    )
}

/// One tuple row of the Tuples page.
pub(super) struct TupleRow {
    pub(super) object: String,
    pub(super) relation: String,
    pub(super) subject: String,
    /// The condition's name, if the tuple has one.
    pub(super) condition: Option<String>,
    /// RFC 3339, if the tuple expires.
    pub(super) expires_at: Option<String>,
    /// `object#relation@subject`, what the row's **Delete** sends.
    pub(super) key: String,
}

/// One change-feed row of the Tuples page.
pub(super) struct ChangeRow {
    pub(super) revision: u64,
    pub(super) time: String,
    pub(super) operation: &'static str,
    pub(super) tuple: String,
    pub(super) actor: String,
}

/// Everything the Tuples page shows.
pub(super) struct TuplesPage {
    pub(super) store: String,
    /// The browse filters as given: object, relation, subject.
    pub(super) filter: [String; 3],
    pub(super) rows: Vec<TupleRow>,
    /// The query string of the next page, when there is one.
    pub(super) next_page: Option<String>,
    pub(super) changes: Vec<ChangeRow>,
    /// The query string of the next changes, when a full page was shown.
    pub(super) next_changes: Option<String>,
    /// Whether the viewer may add and delete tuples here.
    pub(super) can_write: bool,
    /// Rows per page.
    pub(super) page_size: usize,
}

/// The Tuples page: browse (paged), **Add**, **Delete** per row, and the change feed.
pub(super) fn tuples(chrome: &Chrome, page: &TuplesPage) -> Markup {
    let base = format!("/console/stores/{}/tuples", page.store);
    let [object, relation, subject] = &page.filter;
    layout(
        "Tuples",
        chrome,
        html! {
            form.fields method="get" action=(base) aria-label="Browse" {
                label { "Filter by object" input name="object" value=(object) placeholder="document:1 or document:"; }
                label { "Filter by relation" input name="relation" value=(relation); }
                label { "Filter by subject" input name="subject" value=(subject) placeholder="user:anne"; }
                button type="submit" { "Browse" }
            }
            @if page.can_write {
                h2 { "Add a tuple" }
                form.fields method="post" action={ (base) "/add" } aria-label="Add a tuple" {
                    input type="hidden" name="csrf" value=(chrome.csrf);
                    label { "Subject" input name="subject" required placeholder="user:anne"; }
                    label { "Relation" input name="relation" required placeholder="viewer"; }
                    label { "Object" input name="object" required placeholder="document:1"; }
                    button type="submit" { "Add" }
                }
            }
            h2 { "Tuples" }
            @if page.rows.is_empty() {
                p { "No tuples match." }
            } @else {
                table.ids {
                    thead { tr {
                        th { "Object" } th.short { "Relation" } th { "Subject" } th.short { "Condition" } th.time { "Expires" }
                        @if page.can_write { th.narrow { span { "Actions" } } }
                    } }
                    tbody {
                        @for row in &page.rows {
                            tr {
                                td.id { (row.object) } td { (row.relation) } td.id { (row.subject) }
                                td { (row.condition.as_deref().unwrap_or("")) }
                                td { (row.expires_at.as_deref().unwrap_or("")) }
                                @if page.can_write {
                                    td {
                                        form.inline method="post" action={ (base) "/delete" }
                                            data-confirm={ "Delete " (row.key) "?" } {
                                            input type="hidden" name="csrf" value=(chrome.csrf);
                                            input type="hidden" name="tuple" value=(row.key);
                                            button type="submit" aria-label={ "Delete " (row.key) } { "Delete" }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            p { "Up to " (page.page_size) " tuples a page." }
            @if let Some(query) = &page.next_page {
                p { a rel="next" href={ (base) "?" (query) } { "Next page" } }
            }
            h2 { "Change feed" }
            p { "Oldest first; each change names the key that made it." }
            @if page.changes.is_empty() {
                p { "No changes." }
            } @else {
                table.ids {
                    thead { tr { th.narrow { "Revision" } th.time { "Time" } th.narrow { "Operation" } th { "Tuple" } th.short { "Actor" } } }
                    tbody {
                        @for change in &page.changes {
                            tr {
                                td { (change.revision) } td { (change.time) } td { (change.operation) }
                                td.id { (change.tuple) } td.id { (change.actor) }
                            }
                        }
                    }
                }
            }
            @if let Some(query) = &page.next_changes {
                p { a href={ (base) "?" (query) } { "Later changes" } }
            }
        },
    )
}

/// What a Decisions row's **Explain** button fills into the Explain form.
pub(super) struct ExplainFields {
    pub(super) subject: String,
    /// The agents after the subject, comma-separated.
    pub(super) chain: String,
    /// The recorded delegation relation, or empty.
    pub(super) delegation: String,
}

/// One row of the Decisions page.
pub(super) struct DecisionRow {
    pub(super) time: String,
    /// The Explain form's fields; `None` for a decision it cannot ask (an audience, a filter).
    pub(super) explain: Option<ExplainFields>,
    pub(super) principals: String,
    /// The tool the record's `audit.tool` names, or empty.
    pub(super) tool: String,
    pub(super) relation: String,
    pub(super) object: String,
    pub(super) allowed: bool,
}

/// Everything the Decisions page shows.
pub(super) struct DecisionsPage {
    pub(super) store: String,
    /// The filters as given: principal, agent, tool, object, decision (`allow`, `deny` or empty),
    /// since, until.
    pub(super) filter: [String; 7],
    pub(super) rows: Vec<DecisionRow>,
    /// The query string of the older page, when there is one.
    pub(super) older: Option<String>,
}

/// The Decisions page: the decision log, newest first, filtered and paged by cursor.
pub(super) fn decisions(chrome: &Chrome, page: &DecisionsPage) -> Markup {
    let base = format!("/console/stores/{}/decisions", page.store);
    let [principal, agent, tool, object, decision, since, until] = &page.filter;
    layout(
        "Decisions",
        chrome,
        html! {
            form.fields method="get" action=(base) aria-label="Filter decisions" {
                label { "Principal" input name="principal" value=(principal) placeholder="user:anne"; }
                label { "Agent" input name="agent" value=(agent) placeholder="agent:planner"; }
                label { "Tool" input name="tool" value=(tool) placeholder="send_email"; }
                label { "Object" input name="object" value=(object) placeholder="document:1"; }
                label { "Decision"
                    select name="decision" {
                        option value="" selected[decision.is_empty()] { "Allow and deny" }
                        option value="allow" selected[decision == "allow"] { "Allow" }
                        option value="deny" selected[decision == "deny"] { "Deny" }
                    }
                }
                label { "Since" input name="since" value=(since) placeholder="2026-01-31T09:00:00Z"; }
                label { "Until" input name="until" value=(until) placeholder="2026-01-31T18:00:00Z"; }
                button type="submit" { "Filter" }
            }
            @if page.rows.is_empty() {
                p { "No recorded decisions match." }
            } @else {
                table.ids {
                    thead { tr {
                        th.time { "Time" } th { "Principals" } th.short { "Relation" } th { "Object" } th.short { "Tool" }
                        th.narrow { "Decision" }
                        th.narrow { span { "Why" } }
                    } }
                    tbody {
                        @for row in &page.rows {
                            tr {
                                td { (row.time) } td.id { (row.principals) } td { (row.relation) } td.id { (row.object) }
                                td.id { (row.tool) }
                                @if row.allowed { td.allow { "allow" } } @else { td.deny { "deny" } }
                                td {
                                    @if let Some(fields) = &row.explain {
                                        form.inline method="get" action={ "/console/stores/" (page.store) "/explain" } {
                                            input type="hidden" name="subject" value=(fields.subject);
                                            input type="hidden" name="relation" value=(row.relation);
                                            input type="hidden" name="object" value=(row.object);
                                            input type="hidden" name="chain" value=(fields.chain);
                                            @if !fields.delegation.is_empty() {
                                                input type="hidden" name="delegation" value=(fields.delegation);
                                            }
                                            button type="submit" name="run" value="explain"
                                                aria-label={ "Explain the decision of " (row.time) } { "Explain" }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            @if let Some(query) = &page.older {
                p { a rel="next" href={ (base) "?" (query) } { "Older decisions" } }
            }
        },
    )
}

/// The store's latest model, as the Model page shows it.
pub(super) struct CurrentModel {
    pub(super) id: String,
    /// Its DSL text.
    pub(super) text: String,
    /// Its types and relations drawn as SVG.
    pub(super) graph: Markup,
}

/// Everything the Model page shows.
pub(super) struct ModelPage {
    pub(super) store: String,
    /// `None` before the store has a model.
    pub(super) current: Option<CurrentModel>,
    /// What the **Save** form holds: the current text, or a refused draft.
    pub(super) draft: String,
    /// Why the draft was refused, one `line:column: message` each.
    pub(super) diagnostics: Vec<String>,
    /// Whether the viewer may write models here (an admin).
    pub(super) can_save: bool,
    /// What the **Test file** form holds.
    pub(super) test_file: String,
    /// The run of that file, once **Run tests** was pressed.
    pub(super) test_run: Option<TestRun>,
}

/// A run of a pasted model-test file against the store's current model.
pub(super) struct TestRun {
    /// What the run used and left out of the file, one sentence each.
    pub(super) notes: Vec<String>,
    /// The results, or why the file could not be run.
    pub(super) outcome: Result<TestReport, String>,
}

/// The results of a run: counts, and one row per assertion.
pub(super) struct TestReport {
    pub(super) tests_passed: usize,
    pub(super) tests: usize,
    pub(super) assertions_passed: usize,
    pub(super) assertions_failed: usize,
    pub(super) rows: Vec<TestRow>,
}

/// One assertion of a run.
pub(super) struct TestRow {
    /// The test's name.
    pub(super) test: String,
    /// `Check(user=…,relation=…,object=…)` and the like.
    pub(super) assertion: String,
    pub(super) passed: bool,
    pub(super) expected: String,
    /// The engine's answer, with its error when it failed.
    pub(super) actual: String,
}

/// The **Test file** form and, after a run, its summary and rows.
fn test_section(chrome: &Chrome, page: &ModelPage) -> Markup {
    html! {
        h2 { "Run model tests" }
        p { "Paste an OpenFGA model-test file (" code { ".fga.yaml" } "). Its tests run against this store's current model "
            "and the file's own tuples, in memory: nothing is written to the store." }
        form method="post" action={ "/console/stores/" (page.store) "/model/test" } {
            input type="hidden" name="csrf" value=(chrome.csrf);
            label { "Test file" textarea name="file" rows="14" cols="80" spellcheck="false" required { (page.test_file) } }
            button type="submit" { "Run tests" }
        }
        @if let Some(run) = &page.test_run {
            section aria-label="Test results" {
                h3 { "Test results" }
                @for note in &run.notes { p.notice { (note) } }
                @match &run.outcome {
                    Err(message) => div.error role="alert" { p { "The test file could not be run:" } pre { (message) } },
                    Ok(report) => {
                        p.test-summary role="status" {
                            "Tests " (report.tests_passed) "/" (report.tests) " passing · "
                            span.allowed { (report.assertions_passed) " passed" } " · "
                            span.denied { (report.assertions_failed) " failed" }
                        }
                        table.ids {
                            thead { tr { th.short { "Test" } th { "Assertion" } th.narrow { "Outcome" } th.short { "Expected" } th.short { "Actual" } } }
                            tbody {
                                @for row in &report.rows {
                                    tr {
                                        td.id { (row.test) }
                                        td.id { (row.assertion) }
                                        @if row.passed { td.allowed { "passed" } td {} td {} }
                                        @else { td.denied { "failed" } td.id { (row.expected) } td.id { (row.actual) } }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The Model page: the latest model's text and graph, the **Test file** form that runs a
/// model-test file against it, and, for admins, a form that saves a new model.
pub(super) fn model(chrome: &Chrome, page: &ModelPage) -> Markup {
    layout(
        "Model",
        chrome,
        html! {
            @match &page.current {
                Some(current) => {
                    p { "Latest model: " code { (current.id) } }
                    pre { code { (current.text) } }
                    h2 { "Graph" }
                    div.graph-frame { (current.graph) }
                }
                None => p { "This store has no model yet." },
            }
            @if page.current.is_some() || page.test_run.is_some() { (test_section(chrome, page)) }
            @if page.can_save {
                h2 { "Save a new model" }
                @if !page.diagnostics.is_empty() {
                    div.error role="alert" {
                        p { "The model was not saved:" }
                        ul { @for line in &page.diagnostics { li { (line) } } }
                    }
                }
                form method="post" action={ "/console/stores/" (page.store) "/model" } {
                    input type="hidden" name="csrf" value=(chrome.csrf);
                    label { "Model text" textarea name="text" rows="24" cols="80" spellcheck="false" required { (page.draft) } }
                    button type="submit" { "Save" }
                }
            }
        },
    )
}
