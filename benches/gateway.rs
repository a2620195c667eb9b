//! What the MCP gateway adds to a `tools/list` answer (issue 27: ≤ 2 ms for 500 tools), in
//! process: parse the upstream's JSON-RPC result (500 tools with descriptions and small input
//! schemas), plan the argument-free checks with `ServerMapping::plan_list`, decide them as OBO
//! checks of the chain `[user:anne, agent:planner]` through `gateway::filter_list` (the router's
//! own list path, decision log on in its default `deny` mode), and serialize the filtered answer.
//! ID: `gateway/tools_list/n=500`. The filtered list is verified before anything is timed.
//!
//! The store is `schema/agents.fga`: even tools sit on `mcp_server:open` (anne and planner hold
//! `can_use`, so `can_call from server`), except every 50th, where planner is `blocked`; tools
//! `4k+1` name anne alone as `caller` (planner lacks it); tools `4k+3` sit on `mcp_server:closed`.

#![allow(
    missing_docs,
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::panic,
    reason = "a bench binary fails loudly on bad setup; criterion macros generate undocumented items"
)]

#[path = "support/cpu.rs"]
mod cpu;

/// The bench measures the engine as `writ serve` runs it: on mimalloc (see `src/main.rs`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use criterion::measurement::Measurement;
use criterion::Criterion;
use serde_json::{json, Value};
use std::hint::black_box;
use writ::engine::{DecisionLogConfig, DecisionLogMode, WriteRequest};
use writ::gateway::config::Format;
use writ::gateway::mapping::Primitive;
use writ::gateway::{filter_list, GatewayConfig};
use writ::store::{MemoryStore, StoredTuple};
use writ::tuple::Context;
use writ::{Engine, EngineConfig, Model, Tuple};

const TOOLS: usize = 500;
const CHAIN: [&str; 2] = ["user:anne", "agent:planner"];

fn tool_name(i: usize) -> String {
    format!("tool_{i:03}")
}

/// Whether the chain may call tool `i` (see the module doc).
fn expected_visible(i: usize) -> bool {
    i.is_multiple_of(2) && !i.is_multiple_of(50)
}

fn stored(object: &str, relation: &str, user: &str) -> StoredTuple {
    StoredTuple::new(Tuple::from_parts(object, relation, user).expect("bench tuples are well-formed"))
}

/// Half the tools callable by the chain through their server, the rest denied three ways.
fn tuples() -> Vec<StoredTuple> {
    let mut tuples = vec![stored("user:anne", "delegate", "agent:planner")];
    for principal in CHAIN {
        tuples.push(stored("mcp_server:open", "can_use", principal));
    }
    for i in 0..TOOLS {
        let object = format!("tool:{}", tool_name(i));
        match i % 4 {
            0 | 2 => tuples.push(stored(&object, "server", "mcp_server:open")),
            1 => tuples.push(stored(&object, "caller", "user:anne")),
            _ => tuples.push(stored(&object, "server", "mcp_server:closed")),
        }
        if i.is_multiple_of(50) {
            tuples.push(stored(&object, "blocked", "agent:planner"));
        }
    }
    tuples
}

/// The upstream's answer: each tool with a description and a two-property input schema.
fn upstream_answer() -> Vec<u8> {
    let tools: Vec<Value> = (0..TOOLS)
        .map(|i| {
            json!({
                "name": tool_name(i),
                "description": format!("Tool number {i}: searches the workspace for items matching a query \
                                        and returns up to `limit` of them, newest first."),
                "inputSchema": {
                    "type": "object",
                    "properties": {
                        "query": {"type": "string", "description": "What to look for."},
                        "limit": {"type": "integer", "minimum": 1, "maximum": 100, "default": 10}
                    },
                    "required": ["query"]
                }
            })
        })
        .collect();
    serde_json::to_vec(&json!({"jsonrpc": "2.0", "id": 7, "result": {"tools": tools}})).expect("answer serializes")
}

const CONFIG: &str = r#"
store: STORE
issuer: https://idp.test
jwks_file: /nonexistent/jwks.json
public_url: https://mcp.test
servers:
  workspace:
    upstream: http://127.0.0.1:9/mcp
    tools:
      "*": { relation: can_call, object: "tool:{tool}" }
"#;

struct Scenario {
    engine: Engine,
    config: GatewayConfig,
    answer: Vec<u8>,
    chain: Vec<String>,
    audit: Context,
}

/// `agents.fga`, the tuples above, the decision log in its default `deny` mode.
fn scenario() -> Scenario {
    let engine_config = EngineConfig {
        decision_log: DecisionLogConfig { mode: DecisionLogMode::Deny, ..DecisionLogConfig::default() },
        ..EngineConfig::default()
    };
    let engine = Engine::open(Box::new(MemoryStore::new()), engine_config).expect("open bench engine");
    let store = engine.create_store("gateway").expect("create store").id;
    let model = Model::parse_dsl(include_str!("../schema/agents.fga")).expect("agents.fga is valid");
    let handle = engine.store(&store).expect("the bench store exists");
    handle.write_model(model).expect("write model");
    for chunk in tuples().chunks(100) {
        handle.write(WriteRequest { writes: chunk.to_vec(), ..WriteRequest::default() }).expect("write");
    }
    drop(handle);
    let config =
        GatewayConfig::parse(&CONFIG.replace("STORE", &store), Format::Yaml, &|_| None).expect("config parses");
    let mut audit = Context::new();
    audit.insert("server".into(), json!("workspace"));
    audit.insert("method".into(), json!("tools/list"));
    audit.insert("session".into(), Value::Null);
    let chain = CHAIN.iter().map(ToString::to_string).collect();
    Scenario { engine, config, answer: upstream_answer(), chain, audit }
}

/// What the gateway does to one answer: parse, filter through the router's path, serialize.
fn filter_answer(scenario: &Scenario) -> Vec<u8> {
    let mut message: Value = serde_json::from_slice(&scenario.answer).expect("the answer is JSON");
    let mapping = &scenario.config.servers["workspace"].mapping;
    let Some(Value::Array(items)) = message.get_mut("result").and_then(|r| r.get_mut("tools")) else {
        panic!("the answer holds a tools list");
    };
    let decision_id = "01JBENCHDECISION0000000000";
    assert!(filter_list(
        &scenario.engine,
        &scenario.config,
        mapping,
        Primitive::Tool,
        items,
        &scenario.chain,
        &scenario.audit,
        decision_id,
    ));
    message.to_string().into_bytes()
}

fn tools_list<M: Measurement>(c: &mut Criterion<M>) {
    let scenario = scenario();
    let filtered: Value = serde_json::from_slice(&filter_answer(&scenario)).expect("filtered answer is JSON");
    let kept: Vec<&str> = filtered["result"]["tools"]
        .as_array()
        .expect("tools stay a list")
        .iter()
        .map(|tool| tool["name"].as_str().expect("named"))
        .collect();
    let expected: Vec<String> = (0..TOOLS).filter(|&i| expected_visible(i)).map(tool_name).collect();
    assert_eq!(kept, expected, "the filter kept the wrong tools");
    assert_eq!(filtered["result"]["tools"][0]["inputSchema"]["required"], json!(["query"]), "tools kept whole");
    let mut group = c.benchmark_group("gateway");
    group.bench_function(format!("tools_list/n={TOOLS}"), |b| b.iter(|| black_box(filter_answer(&scenario))));
    group.finish();
}

/// Wall time by default; the process's CPU time with `WRIT_BENCH_CPU=1` (see `support/cpu.rs`).
fn main() {
    fn run<M: Measurement + 'static>(criterion: Criterion<M>) {
        let mut criterion =
            criterion.sample_size(50).measurement_time(std::time::Duration::from_secs(5)).configure_from_args();
        tools_list(&mut criterion);
        criterion.final_summary();
    }
    if std::env::var_os("WRIT_BENCH_CPU").is_some() {
        run(Criterion::default().with_measurement(cpu::CpuTime));
    } else {
        run(Criterion::default());
    }
}
