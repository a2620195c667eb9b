//! Writ embedded in a Rust program: no server, no disk, no async runtime. It builds with the pure
//! engine (`cargo run --example embed --no-default-features`) and prints:
//! `anne views document:plan: true` then `anne views: ["document:memo", "document:plan"]`.

use writ::engine::{CheckRequest, ListObjectsRequest};
use writ::tuple::StoredTuple;
use writ::{Engine, EngineConfig, Model};

const MODEL: &str = "model
  schema 1.1
type user
type group
  relations
    define member: [user]
type document
  relations
    define owner: [user]
    define viewer: [user, group#member] or owner
";

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let engine = Engine::in_memory_index_only(EngineConfig::default());
    let store_id = engine.create_store("docs")?.id;
    let store = engine.store(&store_id)?;
    store.write_model(Model::parse_dsl(MODEL)?)?;
    let tuples =
        ["group:eng#member@user:anne", "document:plan#viewer@group:eng#member", "document:memo#owner@user:anne"];
    let writes = tuples.iter().map(|tuple| tuple.parse().map(StoredTuple::new)).collect::<Result<_, _>>()?;
    store.load(writes)?;
    let (anne, viewer) = (|| "user:anne".to_string(), || "viewer".to_string());
    let check = CheckRequest { object: "document:plan".into(), relation: viewer(), user: anne(), ..Default::default() };
    println!("anne views document:plan: {}", store.check(&check)?.value);
    let list =
        ListObjectsRequest { object_type: "document".into(), relation: viewer(), user: anne(), ..Default::default() };
    println!("anne views: {:?}", store.list_objects(&list)?.value);
    Ok(())
}
