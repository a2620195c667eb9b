//! The console over HTTP, driven as a browser would: a cookie jar, forms posted as
//! `application/x-www-form-urlencoded`, CSRF tokens scraped from the pages. Controls are found by
//! the labels DESIGN §10 fixes; changes are checked through the API and its `/changes`.

use crate::support::http::{call_as, exchange, Answer};
use axum::http::StatusCode;
use serde_json::json;
use std::sync::Arc;
use writ::api::Api;
use writ::api::{router_with_config, Auth, KeySet, RouterConfig};
use writ::engine::{AlertConfig, ApprovalCall, ApprovalDecision, DecisionLogConfig, DecisionLogMode, WriteRequest};
use writ::store::StoredTuple;
use writ::{Engine, EngineConfig, Model, Tuple};

const MODEL: &str = "model
  schema 1.1
type user
type document
  relations
    define owner: [user]
    define viewer: [user] or owner
";

const KEYS: &str = "
- {name: root, key: root-key-0123456789, role: admin}
- {name: alice-writer, key: writer-key-0123456789, role: writer}
- {name: bob-reader, key: reader-key-0123456789, role: reader}
- {name: carol-approver, key: approver-key-0123456789, role: approver}
";

/// An engine that records every decision, with one store holding `tuples`.
fn engine_with(tuples: &[&str]) -> (Arc<Engine>, String) {
    engine_with_model(MODEL, tuples)
}

/// [`engine_with`], with the store's model `model`.
fn engine_with_model(model: &str, tuples: &[&str]) -> (Arc<Engine>, String) {
    let config = EngineConfig {
        decision_log: DecisionLogConfig { mode: DecisionLogMode::All, ..DecisionLogConfig::default() },
        ..EngineConfig::default()
    };
    let engine = Engine::in_memory_with(config);
    let store = engine.create_store("console").unwrap().id;
    engine.store(&store).unwrap().write_model(Model::parse_dsl(model).unwrap()).unwrap();
    if !tuples.is_empty() {
        let writes = tuples.iter().map(|t| StoredTuple::new(t.parse::<Tuple>().unwrap())).collect();
        engine.store(&store).unwrap().write(WriteRequest { writes, ..WriteRequest::default() }).unwrap();
    }
    (Arc::new(engine), store)
}

fn console_app(engine: Arc<Engine>, auth: Auth) -> Api {
    router_with_config(engine, RouterConfig { auth, console: true, ..RouterConfig::default() })
}

fn preshared() -> Auth {
    Auth::Preshared(Arc::new(KeySet::parse_file(KEYS).unwrap()))
}

/// A browser: one router, one cookie.
struct Browser {
    app: Api,
    cookie: Option<String>,
}

const CSP: &str = "default-src 'self'";

impl Browser {
    fn new(app: &Api) -> Browser {
        Browser { app: app.clone(), cookie: None }
    }

    async fn send(&mut self, method: &str, uri: &str, form: &[(&str, &str)]) -> Answer {
        let body = form.iter().map(|(name, value)| format!("{name}={}", encode(value))).collect::<Vec<_>>().join("&");
        let cookie = self.cookie.clone().map(|cookie| format!("writ_console={cookie}"));
        let mut headers = vec![("content-type", "application/x-www-form-urlencoded")];
        if let Some(cookie) = &cookie {
            headers.push(("cookie", cookie.as_str()));
        }
        let answer = exchange(&self.app, method, uri, &headers, body).await;
        let policy = answer.headers.get("content-security-policy").and_then(|v| v.to_str().ok()).unwrap_or("");
        assert!(policy.starts_with(CSP), "{method} {uri}: CSP is `{policy}`");
        if let Some(set) = answer.headers.get("set-cookie").and_then(|v| v.to_str().ok()) {
            let value = set.split(';').next().unwrap().trim_start_matches("writ_console=");
            self.cookie = (!value.is_empty()).then(|| value.to_string());
        }
        answer
    }

    async fn get(&mut self, uri: &str) -> Answer {
        self.send("GET", uri, &[]).await
    }

    async fn post(&mut self, uri: &str, form: &[(&str, &str)]) -> Answer {
        self.send("POST", uri, form).await
    }

    async fn sign_in(&mut self, key: &str) -> Answer {
        self.post("/console/sign-in", &[("key", key)]).await
    }
}

fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| if b.is_ascii_alphanumeric() { char::from(b).to_string() } else { format!("%{b:02X}") })
        .collect()
}

fn location(answer: &Answer) -> &str {
    answer.headers.get("location").and_then(|v| v.to_str().ok()).unwrap_or("")
}

/// The CSRF token in the page's forms.
fn csrf(page: &str) -> String {
    let start =
        page.find(r#"name="csrf" value=""#).expect("the page has a CSRF field") + r#"name="csrf" value=""#.len();
    page[start..].split('"').next().unwrap().to_string()
}

/// The visible label texts and button names of a page, e.g. `<label>Subject<input`.
fn has_label(page: &str, label: &str) -> bool {
    page.contains(&format!("<label>{label}<"))
}

fn has_button(page: &str, name: &str) -> bool {
    page.contains(&format!(">{name}</button>"))
}

async fn read_tuples(app: &Api, store: &str, object: &str) -> Vec<String> {
    let body = json!({"tuple_key": {"object": object}});
    let (status, body) =
        call_as(app, Some("root-key-0123456789"), "POST", &format!("/stores/{store}/read"), Some(body)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["tuples"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| format!("{}#{}@{}", t["key"]["object"], t["key"]["relation"], t["key"]["user"]).replace('"', ""))
        .collect()
}

#[tokio::test]
async fn sign_in_refuses_a_bad_key_and_a_good_key_sets_a_strict_http_only_cookie() {
    let (engine, _) = engine_with(&[]);
    let app = console_app(engine, preshared());
    let mut browser = Browser::new(&app);
    let first = browser.get("/console/").await;
    assert_eq!((first.status, location(&first)), (StatusCode::SEE_OTHER, "/console/sign-in"));
    let form = browser.get("/console/sign-in").await;
    assert_eq!(form.status, StatusCode::OK);
    assert!(has_label(&form.text, "API key") && has_button(&form.text, "Sign in"), "{}", form.text);
    assert!(!form.text.contains("<script"), "read-only pages need no script");

    let refused = browser.sign_in("not-a-key").await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
    assert!(refused.text.contains("That API key is not valid."), "{}", refused.text);
    assert!(refused.headers.get("set-cookie").is_none() && browser.cookie.is_none());

    let accepted = browser.sign_in("writer-key-0123456789").await;
    assert_eq!((accepted.status, location(&accepted)), (StatusCode::SEE_OTHER, "/console/"));
    let cookie = accepted.headers.get("set-cookie").unwrap().to_str().unwrap();
    for part in ["HttpOnly", "SameSite=Strict", "Path=/console", "Max-Age="] {
        assert!(cookie.contains(part), "cookie `{cookie}` lacks {part}");
    }
    assert!(!cookie.contains("writer-key-0123456789"), "the cookie must not carry the key");
    let home = browser.get("/console/").await;
    assert_eq!(home.status, StatusCode::OK, "{}", home.text);
    assert!(home.text.contains("Signed in as alice-writer") && has_label(&home.text, "Store"), "{}", home.text);
    assert!(!home.text.contains("Authentication is off"));

    let token = csrf(&home.text);
    let ended = browser.post("/console/sign-out", &[("csrf", &token)]).await;
    assert_eq!((ended.status, location(&ended)), (StatusCode::SEE_OTHER, "/console/sign-in"));
    assert!(browser.cookie.is_none(), "sign-out clears the cookie");
    let css = browser.get("/console/console.css").await;
    assert_eq!(css.status, StatusCode::OK);
    assert!(css.headers["content-type"].to_str().unwrap().starts_with("text/css"));
}

#[tokio::test]
async fn a_signed_out_session_is_dead_even_if_its_cookie_is_replayed() {
    let (engine, _) = engine_with(&[]);
    let app = console_app(engine, preshared());
    let mut browser = Browser::new(&app);
    browser.sign_in("reader-key-0123456789").await;
    let stolen = browser.cookie.clone();
    let token = csrf(&browser.get("/console/").await.text);
    browser.post("/console/sign-out", &[("csrf", &token)]).await;
    browser.cookie = stolen;
    let replay = browser.get("/console/").await;
    assert_eq!((replay.status, location(&replay)), (StatusCode::SEE_OTHER, "/console/sign-in"));
}

#[tokio::test]
async fn a_writer_adds_and_deletes_a_tuple_through_the_forms_as_itself() {
    let (engine, store) = engine_with(&["document:1#owner@user:carol"]);
    let app = console_app(engine, preshared());
    let mut browser = Browser::new(&app);
    browser.sign_in("writer-key-0123456789").await;
    let picked = browser.get(&format!("/console/?store={store}")).await;
    let tuples_url = format!("/console/stores/{store}/tuples");
    assert_eq!((picked.status, location(&picked)), (StatusCode::SEE_OTHER, tuples_url.as_str()));
    let page = browser.get(&tuples_url).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text);
    for label in ["Subject", "Relation", "Object", "Store"] {
        assert!(has_label(&page.text, label), "no field labelled {label}");
    }
    assert!(has_button(&page.text, "Add") && has_button(&page.text, "Delete") && has_button(&page.text, "Sign out"));
    for (name, href) in [("Decisions", "decisions"), ("Tuples", "tuples"), ("Model", "model")] {
        assert!(
            page.text.contains(&format!(r#"href="/console/stores/{store}/{href}">{name}</a>"#)),
            "nav lacks {name}"
        );
    }
    assert!(
        page.text.contains(r#"<td class="id">document:1</td><td>owner</td><td class="id">user:carol</td>"#),
        "{}",
        page.text
    );

    let token = csrf(&page.text);
    let form = [("csrf", token.as_str()), ("subject", "user:anne"), ("relation", "viewer"), ("object", "document:7")];
    let added = browser.post(&format!("{tuples_url}/add"), &form).await;
    assert_eq!((added.status, location(&added)), (StatusCode::SEE_OTHER, tuples_url.as_str()), "{}", added.text);
    assert_eq!(read_tuples(&app, &store, "document:7").await, ["document:7#viewer@user:anne"]);
    let page = browser.get(&tuples_url).await;
    assert!(
        page.text.contains(r#"<td class="id">document:7</td><td>viewer</td><td class="id">user:anne</td>"#),
        "{}",
        page.text
    );

    let bad = [("csrf", token.as_str()), ("subject", "user:anne"), ("relation", "editor"), ("object", "document:7")];
    let refused = browser.post(&format!("{tuples_url}/add"), &bad).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{}", refused.text);
    assert!(refused.text.contains("editor"), "the page says what is wrong: {}", refused.text);

    let delete = [("csrf", token.as_str()), ("tuple", "document:7#viewer@user:anne")];
    let deleted = browser.post(&format!("{tuples_url}/delete"), &delete).await;
    assert_eq!(deleted.status, StatusCode::SEE_OTHER, "{}", deleted.text);
    assert!(read_tuples(&app, &store, "document:7").await.is_empty());

    let (status, body) =
        call_as(&app, Some("root-key-0123456789"), "GET", &format!("/stores/{store}/changes"), None).await;
    assert_eq!(status, StatusCode::OK);
    let mine: Vec<(&str, &str)> = body["changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|change| change["tuple_key"]["object"] == "document:7")
        .map(|change| (change["operation"].as_str().unwrap(), change["actor"].as_str().unwrap()))
        .collect();
    assert_eq!(mine, [("TUPLE_OPERATION_WRITE", "alice-writer"), ("TUPLE_OPERATION_DELETE", "alice-writer")]);
    let feed = browser.get(&tuples_url).await;
    assert!(
        feed.text.contains(
            r#"<td>delete</td><td class="id">document:7#viewer@user:anne</td><td class="id">alice-writer</td>"#
        ),
        "{}",
        feed.text
    );
}

#[tokio::test]
async fn forged_posts_without_the_sessions_csrf_token_are_refused() {
    let (engine, store) = engine_with(&[]);
    let app = console_app(engine, preshared());
    let add = format!("/console/stores/{store}/tuples/add");
    let tuple = [("subject", "user:mallory"), ("relation", "owner"), ("object", "document:1")];
    let mut browser = Browser::new(&app);
    let anonymous = browser.post(&add, &tuple).await;
    assert_eq!((anonymous.status, location(&anonymous)), (StatusCode::SEE_OTHER, "/console/sign-in"));
    browser.sign_in("writer-key-0123456789").await;
    let without = browser.post(&add, &tuple).await;
    assert_eq!(without.status, StatusCode::FORBIDDEN, "{}", without.text);
    let mut wrong = vec![("csrf", "0".repeat(64))];
    wrong.extend(tuple.iter().map(|(name, value)| (*name, value.to_string())));
    let wrong: Vec<(&str, &str)> = wrong.iter().map(|(name, value)| (*name, value.as_str())).collect();
    let forged = browser.post(&add, &wrong).await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN, "{}", forged.text);
    let mut other = Browser::new(&app);
    other.sign_in("root-key-0123456789").await;
    let others_token = csrf(&other.get("/console/").await.text);
    let mut borrowed = vec![("csrf", others_token.as_str())];
    borrowed.extend(tuple);
    let crossed = browser.post(&add, &borrowed).await;
    assert_eq!(crossed.status, StatusCode::FORBIDDEN, "a token is good only for its own session");
    let mine = csrf(&browser.get("/console/").await.text);
    let mut good = vec![("csrf", mine.as_str())];
    good.extend(tuple);
    let cookie = format!("writ_console={}", browser.cookie.clone().unwrap());
    let body = good.iter().map(|(name, value)| format!("{name}={}", encode(value))).collect::<Vec<_>>().join("&");
    let headers = [
        ("content-type", "application/x-www-form-urlencoded"),
        ("cookie", cookie.as_str()),
        ("sec-fetch-site", "cross-site"),
    ];
    let cross_site = exchange(&app, "POST", &add, &headers, body).await;
    assert_eq!(cross_site.status, StatusCode::FORBIDDEN, "another site's page cannot post, token or not");
    let signed_out = browser.post("/console/sign-out", &[]).await;
    assert_eq!(signed_out.status, StatusCode::FORBIDDEN);
    assert!(read_tuples(&app, &store, "document:1").await.is_empty());
}

#[tokio::test]
async fn a_reader_sees_no_change_controls_and_the_server_refuses_its_changes() {
    let (engine, store) = engine_with(&["document:1#owner@user:carol"]);
    let app = console_app(engine, preshared());
    let mut browser = Browser::new(&app);
    browser.sign_in("reader-key-0123456789").await;
    let tuples_url = format!("/console/stores/{store}/tuples");
    let page = browser.get(&tuples_url).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.text.contains(r#"<td class="id">user:carol</td>"#));
    assert!(!has_button(&page.text, "Add") && !has_button(&page.text, "Delete"), "{}", page.text);
    assert!(!page.text.contains("/tuples/add") && !page.text.contains("/tuples/delete"));
    let token = csrf(&page.text);
    let add = [("csrf", token.as_str()), ("subject", "user:bob"), ("relation", "owner"), ("object", "document:2")];
    let refused = browser.post(&format!("{tuples_url}/add"), &add).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.text);
    let delete = [("csrf", token.as_str()), ("tuple", "document:1#owner@user:carol")];
    let refused = browser.post(&format!("{tuples_url}/delete"), &delete).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert!(read_tuples(&app, &store, "document:2").await.is_empty());
    assert_eq!(read_tuples(&app, &store, "document:1").await, ["document:1#owner@user:carol"]);
}

#[tokio::test]
async fn a_store_limited_key_sees_only_its_stores() {
    let (engine, store) = engine_with(&[]);
    let other = engine.create_store("elsewhere").unwrap().id;
    let keys = format!("- {{name: limited, key: limited-key-0123456789, role: writer, stores: [{store}]}}");
    let app = console_app(engine, Auth::Preshared(Arc::new(KeySet::parse_file(&keys).unwrap())));
    let mut browser = Browser::new(&app);
    browser.sign_in("limited-key-0123456789").await;
    let home = browser.get("/console/").await;
    assert!(home.text.contains(&store) && !home.text.contains(&other), "{}", home.text);
    let elsewhere = browser.get(&format!("/console/stores/{other}/tuples")).await;
    assert_eq!(elsewhere.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn the_tuples_page_of_a_large_store_shows_one_page_and_pages_on_by_cursor() {
    let (engine, store) = engine_with(&[]);
    for batch in 0..20 {
        let writes = (0..1000)
            .map(|i| StoredTuple::new(format!("document:{batch}-{i}#viewer@user:u{i}").parse::<Tuple>().unwrap()))
            .collect();
        engine.store(&store).unwrap().write(WriteRequest { writes, ..WriteRequest::default() }).unwrap();
    }
    let app = console_app(engine, preshared());
    let mut browser = Browser::new(&app);
    browser.sign_in("writer-key-0123456789").await;
    let tuples_url = format!("/console/stores/{store}/tuples");
    let first = browser.get(&tuples_url).await;
    assert_eq!(first.status, StatusCode::OK);
    let rows = |page: &str| page.matches(r#"name="tuple""#).count();
    assert_eq!(rows(&first.text), 50, "one page of 50 of the 20,000 tuples");
    let next = first.text.split(r#"<a rel="next" href=""#).nth(1).expect("a Next page link");
    let next = next.split('"').next().unwrap().replace("&amp;", "&");
    let second = browser.get(&next).await;
    assert_eq!((second.status, rows(&second.text)), (StatusCode::OK, 50));
    let first_row =
        |page: &str| page.split(r#"name="tuple" value=""#).nth(1).unwrap().split('"').next().unwrap().to_string();
    assert_ne!(first_row(&first.text), first_row(&second.text), "the second page starts after the first");
    let filtered = browser.get(&format!("{tuples_url}?object=document:3-7")).await;
    assert_eq!(rows(&filtered.text), 1, "browsing by object");
    let by_subject = browser.get(&format!("{tuples_url}?object=document:&subject=user:u5&relation=viewer")).await;
    assert_eq!(rows(&by_subject.text), 20, "browsing by subject and relation");
}

#[tokio::test]
async fn the_decisions_page_lists_newest_first_and_filters() {
    let (engine, store) = engine_with(&["document:1#viewer@user:anne"]);
    let app = console_app(engine.clone(), preshared());
    for user in ["user:anne", "user:bob"] {
        let body = json!({"tuple_key": {"user": user, "relation": "viewer", "object": "document:1"}});
        let (status, _) =
            call_as(&app, Some("reader-key-0123456789"), "POST", &format!("/stores/{store}/check"), Some(body)).await;
        assert_eq!(status, StatusCode::OK);
    }
    let mut browser = Browser::new(&app);
    browser.sign_in("reader-key-0123456789").await;
    let url = format!("/console/stores/{store}/decisions");
    let page = browser.get(&url).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text);
    let bob = page.text.find(r#"<td class="id">user:bob</td>"#).expect("bob's decision");
    let anne = page.text.find(r#"<td class="id">user:anne</td>"#).expect("anne's decision");
    assert!(bob < anne, "newest first");
    for label in ["Principal", "Object", "Decision", "Since", "Until"] {
        assert!(has_label(&page.text, label), "no filter labelled {label}");
    }
    let denies = browser.get(&format!("{url}?decision=deny")).await;
    assert!(
        denies.text.contains(r#"<td class="id">user:bob</td>"#)
            && !denies.text.contains(r#"<td class="id">user:anne</td>"#)
    );
    let anne_only = browser.get(&format!("{url}?principal=user:anne")).await;
    assert!(anne_only.text.contains(r#"<td class="allow">allow</td>"#) && !anne_only.text.contains("user:bob</td>"));
    let before = browser.get(&format!("{url}?until=2000-01-01T00:00:00Z")).await;
    assert!(before.text.contains("No recorded decisions match."), "{}", before.text);
    let since = browser.get(&format!("{url}?since=2000-01-01T00:00:00Z&decision=allow")).await;
    assert!(
        since.text.contains(r#"<td class="id">user:anne</td>"#)
            && !since.text.contains(r#"<td class="id">user:bob</td>"#)
    );
    assert_eq!(browser.get(&format!("{url}?since=yesterday")).await.status, StatusCode::BAD_REQUEST);
    let bad = browser.get(&format!("{url}?decision=maybe")).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);

    for _ in 0..58 {
        let body = json!({"tuple_key": {"user": "user:carol", "relation": "viewer", "object": "document:2"}});
        call_as(&app, Some("reader-key-0123456789"), "POST", &format!("/stores/{store}/check"), Some(body)).await;
    }
    let rows =
        |page: &str| page.matches(r#"<td class="allow">"#).count() + page.matches(r#"<td class="deny">"#).count();
    let newest = browser.get(&url).await;
    assert_eq!(rows(&newest.text), 50, "one page of the 60 decisions");
    assert!(!newest.text.contains(r#"<td class="id">user:anne</td>"#), "anne's is the oldest");
    let older = newest.text.split(r#"<a rel="next" href=""#).nth(1).expect("an Older decisions link");
    let older = browser.get(&older.split('"').next().unwrap().replace("&amp;", "&")).await;
    assert_eq!(rows(&older.text), 10);
    assert!(older.text.contains(r#"<td class="id">user:anne</td>"#) && !older.text.contains(r#"rel="next""#));
}

/// The Decisions page filters by **Agent** (a principal after the chain's first) and **Tool**
/// (`audit.tool`), shows each row's tool, and keeps both filters in the older page's link.
#[tokio::test]
async fn the_decisions_page_filters_by_agent_and_tool_across_pages() {
    let (engine, store) = engine_with(&[]);
    // 55 calls of send_email by agent:mailer for anne, then 5 of read_inbox by agent:planner for
    // bob, and one audience naming agent:mailer second (which names no agent).
    let calls = (0..55)
        .map(|_| (vec!["user:anne", "agent:mailer"], false, "send_email"))
        .chain((0..5).map(|_| (vec!["user:bob", "agent:planner"], false, "read_inbox")))
        .chain([(vec!["user:carol", "agent:mailer"], true, "send_email")]);
    for (i, (principals, audience, tool)) in calls.enumerate() {
        engine.decision_log().record(writ::engine::DecisionRecord {
            time_ms: 1_800_000_000_000 + i as i64,
            store_id: store.clone().into(),
            model_id: "".into(),
            principals: principals.iter().map(|p| p.to_string()).collect(),
            delegation_relation: None,
            audience,
            relation: "can_call".into(),
            object: "document:1".into(),
            allowed: true,
            denied_by: None,
            revision: 1,
            latency_us: 3,
            request_id: format!("r{i}").into(),
            audit: Some(serde_json::from_value(json!({"server": "mail", "tool": tool})).unwrap()),
        });
    }
    let app = console_app(engine, preshared());
    let mut browser = Browser::new(&app);
    browser.sign_in("reader-key-0123456789").await;
    let url = format!("/console/stores/{store}/decisions");
    let page = browser.get(&url).await;
    for label in ["Agent", "Tool"] {
        assert!(has_label(&page.text, label), "no filter labelled {label}");
    }
    assert!(
        page.text.contains("<th class=\"short\">Tool</th>") && page.text.contains(r#"<td class="id">read_inbox</td>"#)
    );
    let rows = |page: &str| page.matches(r#"<td class="allow">"#).count();
    let planner = browser.get(&format!("{url}?agent=agent:planner")).await;
    assert_eq!(rows(&planner.text), 5, "{}", planner.text);
    assert!(planner.text.contains(r#"value="agent:planner""#), "the field keeps its value");
    assert!(!planner.text.contains(r#"<td class="id">send_email</td>"#));
    let inbox = browser.get(&format!("{url}?tool=read_inbox")).await;
    assert_eq!(rows(&inbox.text), 5);
    assert!(inbox.text.contains(r#"value="read_inbox""#) && !inbox.text.contains("user:anne → agent:mailer"));
    // 55 chain decisions by agent:mailer call send_email (the audience is not one): 50, then 5,
    // the older page reached by a link that keeps both filters.
    let mailer = browser.get(&format!("{url}?agent=agent:mailer&tool=send_email")).await;
    assert_eq!(rows(&mailer.text), 50);
    assert!(!mailer.text.contains("user:carol"), "an audience names no agent");
    let older = mailer.text.split(r#"<a rel="next" href=""#).nth(1).expect("an Older decisions link");
    let older = older.split('"').next().unwrap().replace("&amp;", "&");
    assert!(older.contains("agent=agent%3Amailer") && older.contains("tool=send_email"), "{older}");
    let older = browser.get(&older).await;
    assert_eq!(rows(&older.text), 5);
    assert!(!older.text.contains("user:bob") && !older.text.contains("user:carol"));
    // Bad filter values are the API's 400s.
    assert_eq!(browser.get(&format!("{url}?agent=mailer")).await.status, StatusCode::BAD_REQUEST);
    assert_eq!(browser.get(&format!("{url}?tool=a%0Ab")).await.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn without_authentication_the_console_says_so_and_still_demands_csrf_tokens() {
    let (engine, store) = engine_with(&[]);
    let app = console_app(engine, Auth::None);
    let mut browser = Browser::new(&app);
    let tuples_url = format!("/console/stores/{store}/tuples");
    let page = browser.get(&tuples_url).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.text.contains("Authentication is off") && !has_button(&page.text, "Sign out"));
    assert!(browser.cookie.is_some(), "an anonymous session carries the CSRF token");
    let add = format!("{tuples_url}/add");
    let tuple = [("subject", "user:anne"), ("relation", "owner"), ("object", "document:1")];
    assert_eq!(browser.post(&add, &tuple).await.status, StatusCode::FORBIDDEN);
    let token = csrf(&page.text);
    let mut form = vec![("csrf", token.as_str())];
    form.extend(tuple);
    assert_eq!(browser.post(&add, &form).await.status, StatusCode::SEE_OTHER);
    let (status, body) = call_as(&app, None, "GET", &format!("/stores/{store}/changes"), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["changes"][0]["tuple_key"]["user"], "user:anne");
}

#[tokio::test]
async fn the_console_is_served_only_when_asked_for() {
    let (engine, _) = engine_with(&[]);
    let app = router_with_config(engine, RouterConfig::default());
    let answer = exchange(&app, "GET", "/console/", &[], "").await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn an_admin_saves_a_model_and_a_bad_one_comes_back_with_line_and_column() {
    let (engine, store) = engine_with(&[]);
    let app = console_app(engine.clone(), preshared());
    let url = format!("/console/stores/{store}/model");
    let models = |engine: &Engine| engine.store(&store).unwrap().models().unwrap().len();

    let mut writer = Browser::new(&app);
    writer.sign_in("writer-key-0123456789").await;
    let page = writer.get(&url).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.text.contains("define viewer: [user] or owner"), "the model's text: {}", page.text);
    assert!(!has_button(&page.text, "Save") && !has_label(&page.text, "Model text"));
    let token = csrf(&page.text);
    let refused = writer.post(&url, &[("csrf", &token), ("text", MODEL)]).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "models need an admin key");

    let mut admin = Browser::new(&app);
    admin.sign_in("root-key-0123456789").await;
    let page = admin.get(&url).await;
    assert!(has_label(&page.text, "Model text") && has_button(&page.text, "Save"), "{}", page.text);
    let token = csrf(&page.text);
    let broken = "model\n  schema 1.1\ntype user\ntype folder\n  relations\n    define viewer: [user] or editor\n";
    let refused = admin.post(&url, &[("csrf", &token), ("text", broken)]).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert!(refused.text.contains("<li>6:"), "a line:column diagnostic on line 6: {}", refused.text);
    assert!(refused.text.contains("define viewer: [user] or editor"), "the draft is kept");
    assert_eq!(models(&engine), 1, "nothing saved");

    let better = format!("{MODEL}type folder\n  relations\n    define viewer: [user]\n");
    let saved = admin.post(&url, &[("csrf", &token), ("text", &better)]).await;
    assert_eq!((saved.status, location(&saved)), (StatusCode::SEE_OTHER, url.as_str()), "{}", saved.text);
    assert_eq!(models(&engine), 2);
    assert!(admin.get(&url).await.text.contains("type folder"));
    let forged = admin.post(&url, &[("text", MODEL)]).await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    assert_eq!(models(&engine), 2);
}

/// A console (preshared keys) over a fresh store holding `tuples`, and a browser signed in with `key`.
async fn signed_in(tuples: &[&str], key: &str) -> (Api, String, Browser) {
    let (engine, store) = engine_with(tuples);
    let app = console_app(engine, preshared());
    let mut browser = Browser::new(&app);
    browser.sign_in(key).await;
    (app, store, browser)
}

fn explain_url(store: &str, query: &str) -> String {
    format!("/console/stores/{store}/explain?{query}")
}

#[tokio::test]
async fn the_explain_page_checks_records_and_explains_a_deny_with_its_reason() {
    let (app, store, mut browser) = signed_in(&["document:1#owner@user:carol"], "reader-key-0123456789").await;
    let empty = browser.get(&explain_url(&store, "")).await;
    assert_eq!(empty.status, StatusCode::OK, "{}", empty.text);
    for label in ["Subject", "Relation", "Object", "Agent chain"] {
        assert!(has_label(&empty.text, label), "no field labelled {label}");
    }
    assert!(has_button(&empty.text, "Check") && has_button(&empty.text, "Explain"));
    assert!(empty.text.contains(&format!(r#"href="/console/stores/{store}/explain">Explain</a>"#)), "nav");

    let checked =
        browser.get(&explain_url(&store, "subject=user%3Aanne&relation=viewer&object=document%3A1&run=check")).await;
    assert_eq!(checked.status, StatusCode::OK, "{}", checked.text);
    assert!(checked.text.contains("Denied"), "{}", checked.text);
    let decisions = browser.get(&format!("/console/stores/{store}/decisions")).await;
    assert!(
        decisions.text.contains(r#"<td class="id">user:anne</td><td>viewer</td><td class="id">document:1</td>"#),
        "{}",
        decisions.text
    );
    assert!(has_button(&decisions.text, "Explain"), "each row has an Explain button: {}", decisions.text);
    assert!(decisions.text.contains(r#"name="subject" value="user:anne""#), "pre-filled: {}", decisions.text);

    let explained =
        browser.get(&explain_url(&store, "subject=user%3Aanne&relation=viewer&object=document%3A1&run=explain")).await;
    assert_eq!(explained.status, StatusCode::OK, "{}", explained.text);
    assert!(explained.text.contains("<details open>"), "the tree is collapsible nodes: {}", explained.text);
    assert!(
        explained.text.contains("no_tuple: no tuple grants it here"),
        "the failing node's reason: {}",
        explained.text
    );
    assert!(
        explained.text.contains(r#"<td class="id">document:1</td><td>viewer</td><td class="id">user:anne</td>"#),
        "would_allow listed"
    );
    assert!(!has_button(&explained.text, "Grant") && !explained.text.contains("/tuples/add"), "a reader gets no Grant");

    let token = csrf(&explained.text);
    let grant = [("csrf", token.as_str()), ("subject", "user:anne"), ("relation", "viewer"), ("object", "document:1")];
    let refused = browser.post(&format!("/console/stores/{store}/tuples/add"), &grant).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert_eq!(read_tuples(&app, &store, "document:1").await, ["document:1#owner@user:carol"]);
    let bad =
        browser.get(&explain_url(&store, "subject=user%3Aanne&relation=viewer&object=document%3A1&run=nope")).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.text.contains("`run`"), "{}", bad.text);
}

#[tokio::test]
async fn grant_and_revoke_on_the_explain_page_write_as_the_key_and_come_back() {
    let (app, store, mut browser) = signed_in(&[], "writer-key-0123456789").await;
    let question = "subject=user%3Aanne&relation=viewer&object=document%3A2&run=explain";
    let denied = browser.get(&explain_url(&store, question)).await;
    assert!(has_button(&denied.text, "Grant"), "{}", denied.text);
    assert!(denied.text.contains(r#"data-confirm="Grant document:2#viewer@user:anne?"#), "{}", denied.text);
    let token = csrf(&denied.text);
    let back = explain_url(&store, question);
    let grant = [
        ("csrf", token.as_str()),
        ("back", back.as_str()),
        ("subject", "user:anne"),
        ("relation", "viewer"),
        ("object", "document:2"),
    ];
    let granted = browser.post(&format!("/console/stores/{store}/tuples/add"), &grant).await;
    assert_eq!((granted.status, location(&granted)), (StatusCode::SEE_OTHER, back.as_str()), "{}", granted.text);
    assert_eq!(read_tuples(&app, &store, "document:2").await, ["document:2#viewer@user:anne"]);

    let allowed = browser.get(&back).await;
    assert!(allowed.text.contains("Allowed") && has_button(&allowed.text, "Revoke"), "{}", allowed.text);
    let revoke = [("csrf", token.as_str()), ("back", back.as_str()), ("tuple", "document:2#viewer@user:anne")];
    let revoked = browser.post(&format!("/console/stores/{store}/tuples/delete"), &revoke).await;
    assert_eq!((revoked.status, location(&revoked)), (StatusCode::SEE_OTHER, back.as_str()));
    assert!(read_tuples(&app, &store, "document:2").await.is_empty());

    let elsewhere = [
        ("csrf", token.as_str()),
        ("back", "//evil.example/x"),
        ("subject", "user:anne"),
        ("relation", "viewer"),
        ("object", "document:3"),
    ];
    let kept_home = browser.post(&format!("/console/stores/{store}/tuples/add"), &elsewhere).await;
    assert_eq!(location(&kept_home), format!("/console/stores/{store}/tuples"), "never an open redirect");
}

#[tokio::test]
async fn the_one_script_is_served_from_the_console_itself_and_confirms_marked_forms() {
    let (_, store, mut browser) = signed_in(&[], "writer-key-0123456789").await;
    let page = browser.get(&explain_url(&store, "")).await;
    assert!(page.text.contains(r#"<script src="/console/static/console.js" defer></script>"#), "{}", page.text);
    assert!(!page.text.contains("<script>"), "no inline script");
    let script = browser.get("/console/static/console.js").await;
    assert_eq!(script.status, StatusCode::OK);
    let kind = script.headers.get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("");
    assert!(kind.starts_with("text/javascript"), "{kind}");
    for needed in ["data-confirm", "showModal", "\"Confirm\"", "\"Cancel\""] {
        assert!(script.text.contains(needed), "the script lacks {needed}");
    }
}

const AGENTS: &str = include_str!("../schema/agents.fga");

/// Runs an OBO check through the API (recording it) and answers whether it allowed.
async fn obo_check(app: &Api, store: &str, principals: &[&str], relation: &str, object: &str) -> bool {
    let body = json!({"principals": principals, "relation": relation, "object": object});
    let path = format!("/stores/{store}/writ/obo-check");
    let (status, body) = call_as(app, Some("root-key-0123456789"), "POST", &path, Some(body)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["allowed"].as_bool().unwrap()
}

#[tokio::test]
async fn the_agents_page_lists_delegations_and_the_tool_matrix_and_a_reader_cannot_revoke() {
    let tuples = ["user:anne#delegate@agent:planner", "tool:search#caller@agent:planner", "tool:mail#caller@user:anne"];
    let (engine, store) = engine_with_model(AGENTS, &tuples);
    let app = console_app(engine, preshared());
    let mut browser = Browser::new(&app);
    browser.sign_in("reader-key-0123456789").await;
    let page = browser.get(&format!("/console/stores/{store}/agents")).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text);
    assert!(page.text.contains(&format!(r#"href="/console/stores/{store}/agents">Agents</a>"#)), "nav");
    assert!(
        page.text.contains(r#"<td class="id">user:anne</td><td class="id">agent:planner</td><td></td><td>never</td>"#),
        "{}",
        page.text
    );
    assert!(page.text.contains("<th>tool:mail</th><th>tool:search</th>"), "{}", page.text);
    assert!(
        page.text.contains(r#"<td>agent:planner</td><td class="deny">deny</td><td class="allow">allow</td>"#),
        "{}",
        page.text
    );
    assert!(!has_button(&page.text, "Revoke"), "a reader gets no Revoke: {}", page.text);
    let preview = browser
        .get(&format!("/console/stores/{store}/agents/revoke?tuple=user%3Aanne%23delegate%40agent%3Aplanner"))
        .await;
    assert_eq!(preview.status, StatusCode::FORBIDDEN);
    let token = csrf(&page.text);
    let revoke = [("csrf", token.as_str()), ("tuple", "user:anne#delegate@agent:planner")];
    let refused = browser.post(&format!("/console/stores/{store}/tuples/delete"), &revoke).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert_eq!(read_tuples(&app, &store, "user:anne").await, ["user:anne#delegate@agent:planner"]);
}

#[tokio::test]
async fn revoking_a_delegation_previews_exactly_the_decisions_that_flip_then_deletes_it() {
    let tuples = [
        "user:anne#delegate@agent:planner",
        "user:bob#delegate@agent:planner",
        "document:1#viewer@user:anne",
        "document:1#viewer@agent:planner",
        "document:2#viewer@user:bob",
        "document:2#viewer@user:anne",
        "document:2#viewer@agent:planner",
    ];
    let (engine, store) = engine_with_model(AGENTS, &tuples);
    let app = console_app(engine, preshared());
    assert!(obo_check(&app, &store, &["user:anne", "agent:planner"], "viewer", "document:1").await);
    assert!(obo_check(&app, &store, &["user:bob", "agent:planner"], "viewer", "document:2").await);
    assert!(!obo_check(&app, &store, &["user:bob", "agent:planner"], "viewer", "document:1").await);
    assert!(obo_check(&app, &store, &["agent:planner"], "viewer", "document:2").await);
    assert!(obo_check(&app, &store, &["user:anne", "agent:planner"], "viewer", "document:2").await);

    let mut browser = Browser::new(&app);
    browser.sign_in("writer-key-0123456789").await;
    let page = browser.get(&format!("/console/stores/{store}/agents")).await;
    assert!(has_button(&page.text, "Revoke"), "{}", page.text);
    let preview_url = format!("/console/stores/{store}/agents/revoke?tuple=user%3Aanne%23delegate%40agent%3Aplanner");
    let preview = browser.get(&preview_url).await;
    assert_eq!(preview.status, StatusCode::OK, "{}", preview.text);
    let flipped: Vec<&str> = preview
        .text
        .match_indices(r#"<td class="id">user:anne → agent:planner</td><td>viewer</td><td class="id">"#)
        .map(|(at, found)| &preview.text[at + found.len()..at + found.len() + 10])
        .collect();
    assert_eq!(flipped, ["document:2", "document:1"], "anne's two chains flip, newest first: {}", preview.text);
    assert!(!preview.text.contains("user:bob →"), "bob's delegation stays: {}", preview.text);
    assert!(!preview.text.contains(r#"<td class="id">agent:planner</td>"#), "planner alone needs no delegation");
    assert!(preview.text.contains(r#"data-confirm="Revoke user:anne#delegate@agent:planner? 2 recent"#));
    assert_eq!(
        read_tuples(&app, &store, "user:anne").await,
        ["user:anne#delegate@agent:planner"],
        "a preview writes nothing"
    );

    let token = csrf(&preview.text);
    let agents = format!("/console/stores/{store}/agents");
    let forged = browser
        .post(
            &format!("/console/stores/{store}/tuples/delete"),
            &[("back", &agents), ("tuple", "user:anne#delegate@agent:planner")],
        )
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    assert!(preview.text.contains(&format!(r#"name="back" value="{agents}""#)), "the form comes back here");
    let revoke = [("csrf", token.as_str()), ("back", agents.as_str()), ("tuple", "user:anne#delegate@agent:planner")];
    let revoked = browser.post(&format!("/console/stores/{store}/tuples/delete"), &revoke).await;
    assert_eq!(
        (revoked.status, location(&revoked)),
        (StatusCode::SEE_OTHER, format!("/console/stores/{store}/agents").as_str())
    );
    assert!(read_tuples(&app, &store, "user:anne").await.is_empty());
    assert!(!obo_check(&app, &store, &["user:anne", "agent:planner"], "viewer", "document:1").await);
    assert!(obo_check(&app, &store, &["user:bob", "agent:planner"], "viewer", "document:2").await);
}

fn approval_call(object: &str) -> ApprovalCall {
    ApprovalCall {
        principals: vec!["user:anne".into(), "agent:planner".into()],
        relation: "viewer".into(),
        object: object.into(),
        server: Some("github".into()),
        tool: Some("delete_repo".into()),
        arguments_sha256: "ab".repeat(32),
    }
}

#[tokio::test]
async fn approvals_are_listed_to_readers_and_approved_or_denied_only_by_approvers() {
    let (engine, store) = engine_with(&[]);
    let handle = engine.store(&store).unwrap();
    let first = engine.approvals().request(&handle, &approval_call("document:1")).unwrap();
    let second = engine.approvals().request(&handle, &approval_call("document:2")).unwrap();
    drop(handle);
    let app = console_app(engine.clone(), preshared());
    let page_url = format!("/console/stores/{store}/approvals");
    for key in ["reader-key-0123456789", "writer-key-0123456789"] {
        let mut browser = Browser::new(&app);
        browser.sign_in(key).await;
        let page = browser.get(&page_url).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.text);
        assert!(
            page.text.contains(
                r#"<td class="id">user:anne → agent:planner</td><td>viewer</td><td class="id">document:1</td><td class="id">github/delete_repo</td>"#
            ),
            "{}",
            page.text
        );
        assert!(!has_button(&page.text, "Approve") && !has_button(&page.text, "Deny"), "{key} gets no controls");
        let token = csrf(&page.text);
        let refused =
            browser.post(&format!("{page_url}/{}", first.id), &[("csrf", &token), ("decision", "approve")]).await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN, "{key} may not approve");
    }

    let mut browser = Browser::new(&app);
    browser.sign_in("approver-key-0123456789").await;
    let page = browser.get(&page_url).await;
    assert!(page.text.contains(&format!(r#"href="/console/stores/{store}/approvals">Approvals</a>"#)), "nav");
    assert!(has_button(&page.text, "Approve") && has_button(&page.text, "Deny"), "{}", page.text);
    assert!(has_label(&page.text, "TTL") && has_label(&page.text, "Uses"), "{}", page.text);
    assert!(page.text.contains("Recent alerts"), "a separate spot for alerts");
    let forged = browser.post(&format!("{page_url}/{}", first.id), &[("decision", "approve")]).await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    let token = csrf(&page.text);
    let form = [("csrf", token.as_str()), ("decision", "approve"), ("ttl", "30m"), ("uses", "2")];
    let approved = browser.post(&format!("{page_url}/{}", first.id), &form).await;
    assert_eq!((approved.status, location(&approved)), (StatusCode::SEE_OTHER, page_url.as_str()), "{}", approved.text);
    let bad_ttl = [("csrf", token.as_str()), ("decision", "approve"), ("ttl", "soon")];
    let refused = browser.post(&format!("{page_url}/{}", second.id), &bad_ttl).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert!(refused.text.contains("`ttl`"), "{}", refused.text);
    // The terms are read by the API's one `grant()`: a bad `uses` is its 400 too.
    let bad_uses = [("csrf", token.as_str()), ("decision", "approve"), ("ttl", ""), ("uses", "two")];
    let refused = browser.post(&format!("{page_url}/{}", second.id), &bad_uses).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert!(refused.text.contains("`uses` value `two` is not a whole number"), "{}", refused.text);
    let denied = browser.post(&format!("{page_url}/{}", second.id), &[("csrf", &token), ("decision", "deny")]).await;
    assert_eq!(denied.status, StatusCode::SEE_OTHER, "{}", denied.text);

    let handle = engine.store(&store).unwrap();
    let first = engine.approvals().get(&handle, &first.id).unwrap();
    assert_eq!(
        (first.decision, first.uses_left, first.decided_by.as_deref()),
        (ApprovalDecision::Approved, 2, Some("carol-approver"))
    );
    assert_eq!(first.expires_ms.unwrap() - first.decided_ms.unwrap(), 30 * 60 * 1000);
    let second = engine.approvals().get(&handle, &second.id).unwrap();
    assert_eq!((second.decision, second.decided_by.as_deref()), (ApprovalDecision::Denied, Some("carol-approver")));
    let after = browser.get(&page_url).await;
    assert!(after.text.contains("No approvals are waiting."), "{}", after.text);
}

#[tokio::test]
async fn the_model_page_draws_types_as_boxes_with_their_relations_and_edges_between_them() {
    let (engine, store) = engine_with_model(AGENTS, &[]);
    let app = console_app(engine, preshared());
    let mut browser = Browser::new(&app);
    browser.sign_in("reader-key-0123456789").await;
    let page = browser.get(&format!("/console/stores/{store}/model")).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text);
    assert!(page.text.contains(r#"<svg xmlns="http://www.w3.org/2000/svg" class="graph" role="img""#), "{}", page.text);
    let boxes = page.text.matches(r#"<g class="type">"#).count();
    assert_eq!(boxes, 9, "one box per type of schema/agents.fga");
    assert!(
        page.text.contains(r#"class="type-name">tool</text>"#)
            && page.text.contains(r#"class="relation">can_call</text>"#)
    );
    for (edge, kind) in
        [("user → document", "direct"), ("team → document", "userset"), ("folder → document", "tupleset")]
    {
        assert!(page.text.contains(&format!("<title>{edge} ({kind})</title>")), "no {kind} edge {edge}");
    }
    assert!(!page.text.contains("style="), "no inline style under the CSP");
}

#[tokio::test]
async fn the_approvals_page_says_how_to_turn_alerts_on_and_lists_them_once_they_run() {
    let tuples =
        ["user:anne#delegate@agent:planner", "tool:search#caller@user:anne", "tool:search#caller@agent:planner"];
    let (engine, store) = engine_with_model(AGENTS, &tuples);
    let app = console_app(engine.clone(), preshared());
    let page_url = format!("/console/stores/{store}/approvals");
    let mut browser = Browser::new(&app);
    browser.sign_in("reader-key-0123456789").await;
    let off = browser.get(&page_url).await;
    assert_eq!(off.status, StatusCode::OK, "{}", off.text);
    assert!(
        off.text.contains("Alerts are not configured") && off.text.contains("writ serve --alerts FILE"),
        "{}",
        off.text
    );

    engine.alerts().start(AlertConfig { first_tool_call: true, ..AlertConfig::default() }).unwrap();
    let none = browser.get(&page_url).await;
    assert!(none.text.contains("No alerts for this store."), "{}", none.text);
    let body = json!({"principals": ["user:anne", "agent:planner"], "relation": "can_call", "object": "tool:search",
        "audit": {"tool": "search"}});
    let path = format!("/stores/{store}/writ/obo-check");
    let (status, answer) = call_as(&app, Some("root-key-0123456789"), "POST", &path, Some(body)).await;
    assert_eq!((status, answer["allowed"].as_bool()), (StatusCode::OK, Some(true)), "{answer}");
    let on = browser.get(&page_url).await;
    let row = r#"<td>first_tool_call</td><td class="id">agent:planner</td><td class="id">search</td>"#;
    assert!(on.text.contains(row), "{}", on.text);
    assert!(!on.text.contains("Alerts are not configured"), "{}", on.text);
}

/// A model-test file for [`MODEL`]; its own `model` names no `viewer`, so a run that used it
/// instead of the store's would fail.
const TEST_FILE: &str = "name: viewers
model: |
  model
    schema 1.1
  type user
  type document
    relations
      define owner: [user]
tuples:
  - user: user:anne
    relation: owner
    object: document:1
  - user: user:bob
    relation: viewer
    object: document:2
tests:
  - name: owners view
    check:
      - user: user:anne
        object: document:1
        assertions:
          viewer: true
      - user: user:bob
        object: document:2
        assertions:
          viewer: true
          owner: false
    list_objects:
      - user: user:bob
        type: document
        assertions:
          viewer: [document:2]
";

async fn run_tests(browser: &mut Browser, store: &str, file: &str) -> Answer {
    let url = format!("/console/stores/{store}/model");
    let page = browser.get(&url).await;
    assert!(has_label(&page.text, "Test file") && has_button(&page.text, "Run tests"), "{}", page.text);
    let token = csrf(&page.text);
    browser.post(&format!("{url}/test"), &[("csrf", &token), ("file", file)]).await
}

#[tokio::test]
async fn a_reader_runs_a_passing_test_file_against_the_current_model_and_nothing_is_written() {
    let (app, store, mut reader) = signed_in(&["document:1#owner@user:carol"], "reader-key-0123456789").await;
    let (_, before) =
        call_as(&app, Some("root-key-0123456789"), "GET", &format!("/stores/{store}/changes"), None).await;
    let run = run_tests(&mut reader, &store, TEST_FILE).await;
    assert_eq!(run.status, StatusCode::OK, "{}", run.text);
    assert!(run.text.contains("Tests 1/1 passing"), "the summary: {}", run.text);
    assert!(run.text.contains(">4 passed<") && run.text.contains(">0 failed<"), "{}", run.text);
    assert_eq!(run.text.matches(r#"<td class="allowed">passed</td>"#).count(), 4, "one row per assertion");
    assert!(run.text.contains("Check(user=user:bob,relation=owner,object=document:2)"));
    assert!(run.text.contains("own model (`model` or `model_file`) was ignored"), "{}", run.text);
    assert!(run.text.contains("name: viewers"), "the file stays in the form");
    assert!(read_tuples(&app, &store, "document:2").await.is_empty(), "the file's tuples stay in memory");
    assert_eq!(read_tuples(&app, &store, "document:1").await, ["document:1#owner@user:carol"]);
    let (_, after) = call_as(&app, Some("root-key-0123456789"), "GET", &format!("/stores/{store}/changes"), None).await;
    assert_eq!(before["changes"], after["changes"], "no change recorded");
    let forged = reader.post(&format!("/console/stores/{store}/model/test"), &[("file", TEST_FILE)]).await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN, "the form carries the CSRF token like every other");
}

#[tokio::test]
async fn a_failing_assertion_shows_expected_and_actual() {
    let (_, store, mut reader) = signed_in(&[], "reader-key-0123456789").await;
    let failing = TEST_FILE.replace("viewer: [document:2]", "viewer: [document:1, document:2]");
    let failing = failing.replace("          owner: false", "          owner: true");
    let run = run_tests(&mut reader, &store, &failing).await;
    assert_eq!(run.status, StatusCode::OK, "{}", run.text);
    assert!(run.text.contains("Tests 0/1 passing") && run.text.contains(">2 failed<"), "{}", run.text);
    let owner_row = r#"<td class="denied">failed</td><td class="id">true</td><td class="id">false</td>"#;
    assert!(run.text.contains(owner_row), "expected true, got false: {}", run.text);
    let list_row =
        r#"<td class="denied">failed</td><td class="id">[document:1 document:2]</td><td class="id">[document:2]</td>"#;
    assert!(run.text.contains(list_row), "expected vs actual objects: {}", run.text);
}

/// Model-test runs from the Model page were unbounded for any reader (review of issue 30): an
/// oversized file or one with too many tests is refused with a 400 naming the limit, and runs
/// nothing; a file within the bounds still runs.
#[tokio::test]
async fn model_test_runs_over_the_consoles_bounds_are_refused_with_their_code() {
    let (_, store, mut reader) = signed_in(&[], "reader-key-0123456789").await;
    let huge = format!("# {}\n{TEST_FILE}", "x".repeat(300 * 1024));
    let run = run_tests(&mut reader, &store, &huge).await;
    assert_eq!(run.status, StatusCode::BAD_REQUEST);
    assert!(
        run.text.contains("model_test_too_large: the test file is 307"),
        "{}",
        &run.text[..2000.min(run.text.len())]
    );
    assert!(!run.text.contains(&"x".repeat(1000)), "the oversized file is not echoed back");
    let (head, test) = TEST_FILE.split_once("tests:\n").unwrap();
    let many = format!("{head}tests:\n{}", test.repeat(201));
    let run = run_tests(&mut reader, &store, &many).await;
    assert_eq!(run.status, StatusCode::BAD_REQUEST);
    assert!(
        run.text.contains("model_test_too_large: the test file has 201 tests, more than the limit of 200"),
        "{}",
        run.text
    );
    assert!(!run.text.contains("passing"), "nothing ran");
    let fine = run_tests(&mut reader, &store, &format!("{head}tests:\n{}", test.repeat(3))).await;
    assert_eq!(fine.status, StatusCode::OK, "{}", fine.text);
    assert!(fine.text.contains("Tests 3/3 passing"), "{}", fine.text);
}

#[tokio::test]
async fn a_bad_test_file_or_tuple_comes_back_as_its_message_not_a_server_failure() {
    let (app, store, mut reader) = signed_in(&[], "reader-key-0123456789").await;
    let run = run_tests(&mut reader, &store, "tests: [\n").await;
    assert_eq!(run.status, StatusCode::BAD_REQUEST, "{}", run.text);
    assert!(run.text.contains("role=\"alert\"") && run.text.contains("the test file is not valid"), "{}", run.text);
    assert!(run.text.contains("line 2 column 1"), "the YAML error's place: {}", run.text);
    let unknown = run_tests(&mut reader, &store, "tests:\n  - name: x\n    chekc: []\n").await;
    assert_eq!(unknown.status, StatusCode::BAD_REQUEST);
    assert!(unknown.text.contains("chekc"), "names the unknown field: {}", unknown.text);
    let bad_tuple =
        TEST_FILE.replace("relation: viewer\n    object: document:2", "relation: editor\n    object: document:2");
    let run = run_tests(&mut reader, &store, &bad_tuple).await;
    assert_eq!(run.status, StatusCode::BAD_REQUEST, "{}", run.text);
    assert!(run.text.contains("could not be set up") && run.text.contains("editor"), "{}", run.text);
    assert!(read_tuples(&app, &store, "document:2").await.is_empty());
}
