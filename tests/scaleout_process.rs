//! Two `writ serve` processes on one PostgreSQL database (issue 8): a write on A is visible on B
//! (eventually, and at once with `at_least_revision`); A killed with SIGKILL in the middle of a
//! stream of writes, then B and a restarted A agree with each other and hold every write A
//! acknowledged; B restarted catches up. It prints the follow lag (A acknowledges → B answers
//! with the write) and A's write throughput.
//!
//! Runs only when `WRIT_TEST_POSTGRES_URL` names a server (`.ci/postgres.sh` starts one and
//! prints it); without it `cargo test` lists it as ignored (see `skipped.rs`).

use crate::support::serve::{free_address, start, writ_serve};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const MODEL: &str = "model
  schema 1.1
type user
type document
  relations
    define viewer: [user]
";

/// One `writ serve` process over the shared datastore.
struct Node {
    address: SocketAddr,
    child: Child,
}

impl Node {
    fn start(url: &str, address: SocketAddr) -> Node {
        let mut command = writ_serve(address);
        command
            .args(["--datastore", url, "--revision-wait-ms", "5000"])
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        Node { address, child: start(command, address) }
    }

    /// SIGKILL: no shutdown, no flush, nothing.
    fn kill(mut self) -> SocketAddr {
        let _ = self.child.kill();
        self.child.wait().unwrap();
        self.address
    }

    fn try_call(&self, method: &str, path: &str, body: Option<&Value>) -> std::io::Result<(u16, Value)> {
        let mut stream = TcpStream::connect_timeout(&self.address, Duration::from_secs(5))?;
        stream.set_read_timeout(Some(Duration::from_secs(30)))?;
        let body = body.map(Value::to_string).unwrap_or_default();
        let request = format!(
            "{method} {path} HTTP/1.1\r\nhost: {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            self.address,
            body.len()
        );
        stream.write_all(request.as_bytes())?;
        let mut response = Vec::new();
        stream.read_to_end(&mut response)?;
        let text = String::from_utf8_lossy(&response);
        let (head, payload) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
        let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
        let value = serde_json::from_str(payload).unwrap_or(Value::String(payload.to_string()));
        Ok((status, value))
    }

    fn call(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        self.try_call(method, path, body.as_ref())
            .unwrap_or_else(|e| panic!("{method} {path} on {}: {e}", self.address))
    }

    fn write(&self, store: &str, object: &str) -> std::io::Result<u64> {
        let body = json!({"writes": {"tuple_keys": [{"user": "user:anne", "relation": "viewer", "object": object}]}});
        let (status, answer) = self.try_call("POST", &format!("/stores/{store}/write"), Some(&body))?;
        match (status, answer["revision"].as_u64()) {
            (200, Some(revision)) => Ok(revision),
            _ => Err(std::io::Error::other(format!("write answered {status} {answer}"))),
        }
    }

    /// Does user:anne view `object`, optionally at least at `revision`?
    fn allowed(&self, store: &str, object: &str, revision: Option<u64>) -> bool {
        let mut body = json!({"tuple_key": {"user": "user:anne", "relation": "viewer", "object": object}});
        if let Some(revision) = revision {
            body["at_least_revision"] = json!(revision);
        }
        let (status, answer) = self.call("POST", &format!("/stores/{store}/check"), Some(body));
        assert_eq!(status, 200, "{answer}");
        answer["allowed"].as_bool().unwrap()
    }

    /// The node's revision of a store (an audience check reports it), at least `revision`.
    fn revision(&self, store: &str, at_least: u64) -> u64 {
        let body = json!({"audience": ["user:anne"], "relation": "viewer", "objects": ["document:probe"],
            "at_least_revision": at_least});
        let (status, answer) = self.call("POST", &format!("/stores/{store}/writ/audience-check"), Some(body));
        assert_eq!(status, 200, "{answer}");
        answer["revision"].as_u64().unwrap()
    }

    /// Every tuple of a store, read page by page at least at `revision`.
    fn tuples(&self, store: &str, revision: u64) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        let mut token = String::new();
        loop {
            let body = json!({"page_size": 100, "continuation_token": token, "at_least_revision": revision});
            let (status, answer) = self.call("POST", &format!("/stores/{store}/read"), Some(body));
            assert_eq!(status, 200, "{answer}");
            for tuple in answer["tuples"].as_array().unwrap() {
                let key = &tuple["key"];
                out.insert(format!("{}#{}@{}", key["object"], key["relation"], key["user"]));
            }
            token = answer["continuation_token"].as_str().unwrap_or_default().to_string();
            if token.is_empty() {
                return out;
            }
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

#[test]
#[cfg_attr(writ_no_postgres, ignore = "WRIT_TEST_POSTGRES_URL is not set (start a server with .ci/postgres.sh)")]
fn two_writ_serve_nodes_on_one_postgres_database() {
    // A database of its own: the server's default one may hold another build's schema (a newer
    // migration from a concurrent run made this test's nodes refuse to start).
    let database = crate::postgres_store::FreshDatabase::new(&crate::skipped::postgres_url());
    let url = database.url().to_string();
    let a = Node::start(&url, free_address());
    let b = Node::start(&url, free_address());

    let (status, store) = a.call("POST", "/stores", Some(json!({"name": "scaleout"})));
    assert_eq!(status, 201, "{store}");
    let store = store["id"].as_str().unwrap().to_string();
    let (status, answer) = a.call(
        "POST",
        &format!("/stores/{store}/authorization-models"),
        Some(serde_json::to_value(writ::Model::parse_dsl(MODEL).unwrap().to_json()).unwrap()),
    );
    assert_eq!(status, 201, "{answer}");

    // Write on A: at once on B with at_least_revision, and eventually without.
    let revision = a.write(&store, "document:first").unwrap();
    assert!(b.allowed(&store, "document:first", Some(revision)), "B answers at A's revision");
    let second = a.write(&store, "document:second").unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !b.allowed(&store, "document:second", None) {
        assert!(Instant::now() < deadline, "B never saw A's write");
    }
    assert!(b.revision(&store, 0) >= second);

    // Follow lag: A acknowledges → B's check (no revision asked) says allowed.
    let mut lags = Vec::new();
    let mut write_times = Vec::new();
    for i in 0..200 {
        let object = format!("document:lag{i}");
        let started = Instant::now();
        a.write(&store, &object).unwrap();
        let acknowledged = Instant::now();
        write_times.push(acknowledged - started);
        while !b.allowed(&store, &object, None) {
            assert!(acknowledged.elapsed() < Duration::from_secs(10), "B never saw `{object}`");
        }
        lags.push(acknowledged.elapsed());
    }
    lags.sort();
    write_times.sort();
    let total: Duration = write_times.iter().sum();
    eprintln!(
        "follow lag over {} writes (A acknowledges -> B's check allows): median {:?}, p99 {:?}, max {:?}",
        lags.len(),
        percentile(&lags, 0.5),
        percentile(&lags, 0.99),
        lags[lags.len() - 1]
    );
    eprintln!(
        "write latency on A (one tuple per write over HTTP): median {:?}, p99 {:?}; sequential throughput {:.0} writes/s",
        percentile(&write_times, 0.5),
        percentile(&write_times, 0.99),
        write_times.len() as f64 / total.as_secs_f64()
    );

    // Kill A in the middle of a stream of writes; B and a restarted A agree and hold every
    // write A acknowledged.
    let acknowledged: Vec<(String, u64)> = std::thread::scope(|scope| {
        let writer = scope.spawn(|| {
            let mut acknowledged = Vec::new();
            for i in 0.. {
                let object = format!("document:stream{i}");
                match a.write(&store, &object) {
                    Ok(revision) => acknowledged.push((object, revision)),
                    Err(_) => return acknowledged,
                }
            }
            acknowledged
        });
        std::thread::sleep(Duration::from_millis(1500));
        writer_kill(&a);
        writer.join().unwrap()
    });
    assert!(acknowledged.len() > 10, "the stream was under way: {} writes", acknowledged.len());
    let a_address = a.kill();
    let last_acknowledged = acknowledged.iter().map(|(_, r)| *r).max().unwrap();
    let a = Node::start(&url, a_address);
    // Whatever A committed but never acknowledged is there too; both reach the same revision.
    let b_revision = b.revision(&store, last_acknowledged);
    let a_revision = a.revision(&store, b_revision);
    let b_revision = b.revision(&store, a_revision);
    assert_eq!(a_revision, b_revision, "A and B reach the same revision");
    let on_a = a.tuples(&store, a_revision);
    let on_b = b.tuples(&store, a_revision);
    assert_eq!(on_a, on_b, "A and B hold the same tuples");
    for (object, _) in &acknowledged {
        assert!(on_b.contains(&format!("\"{object}\"#\"viewer\"@\"user:anne\"")), "acknowledged `{object}` is held");
    }

    // Restart B while A writes on: B catches up.
    let b_address = b.kill();
    for i in 0..20 {
        a.write(&store, &format!("document:while_b_down{i}")).unwrap();
    }
    let final_revision = a.write(&store, "document:last").unwrap();
    let b = Node::start(&url, b_address);
    assert!(b.allowed(&store, "document:last", Some(final_revision)));
    assert_eq!(b.tuples(&store, final_revision), a.tuples(&store, final_revision));
    let (status, answer) = a.call("DELETE", &format!("/stores/{store}"), None);
    assert!(status == 204 || status == 200, "{status} {answer}");
}

/// SIGKILLs a node's process while another thread keeps writing to it.
fn writer_kill(node: &Node) {
    let status = Command::new("kill").args(["-9", &node.child.id().to_string()]).status().unwrap();
    assert!(status.success(), "kill -9 {}", node.child.id());
}
