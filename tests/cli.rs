//! The `writ` binary as a user runs it: `import` and `export` finding stores by id or name
//! (a rerun of `import --create-store` resumes), error messages that say each thing once, and
//! `serve` naming the data dir another process holds or the address in use.

use crate::support::serve::{free_address, start, writ_serve};
use crate::support::TempDir;
use std::path::Path;
use std::process::{Command, Output, Stdio};

const MODEL: &str = "model\n  schema 1.1\ntype user\ntype doc\n  relations\n    define viewer: [user]\n";
const TUPLES: &str = "{\"user\":\"user:ann\",\"relation\":\"viewer\",\"object\":\"doc:1\"}\n\
                      {\"user\":\"user:bob\",\"relation\":\"viewer\",\"object\":\"doc:2\"}\n";

fn writ(args: &[&str], data_dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_writ"))
        .args(args)
        .arg("--data-dir")
        .arg(data_dir)
        .stdin(Stdio::null())
        .output()
        .expect("writ runs")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// A data dir, with the model and tuples files beside it.
struct Files {
    dir: TempDir,
    model: String,
    tuples: String,
}

fn files(tag: &str) -> Files {
    let dir = TempDir::new(tag);
    std::fs::create_dir_all(dir.path()).unwrap();
    let model = dir.path().with_extension("fga");
    let tuples = dir.path().with_extension("jsonl");
    std::fs::write(&model, MODEL).unwrap();
    std::fs::write(&tuples, TUPLES).unwrap();
    Files { model: model.display().to_string(), tuples: tuples.display().to_string(), dir }
}

impl Drop for Files {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.model);
        let _ = std::fs::remove_file(&self.tuples);
    }
}

fn import_create(f: &Files, name: &str) -> Output {
    writ(&["import", &f.tuples, "--create-store", name, "--model", &f.model], f.dir.path())
}

fn store_ids(data_dir: &Path) -> Vec<(String, String)> {
    let backend = writ::store::SledStore::open(data_dir).unwrap();
    let engine = writ::Engine::open(Box::new(backend), writ::EngineConfig::default()).unwrap();
    engine.list_stores().into_iter().map(|s| (s.id, s.name)).collect()
}

#[test]
fn import_create_store_run_twice_resumes_into_the_store_it_made() {
    let f = files("cli-resume");
    let first = import_create(&f, "demo");
    assert!(first.status.success(), "{}", stderr(&first));
    assert!(stderr(&first).contains("created store"), "{}", stderr(&first));
    let second = import_create(&f, "demo");
    assert!(second.status.success(), "{}", stderr(&second));
    let stores = store_ids(f.dir.path());
    assert_eq!(stores.len(), 1, "a rerun made no second store: {stores:?}");
    let id = &stores[0].0;
    assert!(stderr(&second).contains(&format!("store `demo` exists ({id}): resuming into it")), "{}", stderr(&second));
    // Exported by name: each tuple once.
    let export = writ(&["export", "--store", "demo"], f.dir.path());
    assert!(export.status.success(), "{}", stderr(&export));
    assert_eq!(String::from_utf8_lossy(&export.stdout).lines().count(), 2);
    assert!(stderr(&export).contains(&format!("exported 2 tuples from store {id}")), "{}", stderr(&export));
    // `--store` takes the name for an import too, and the id still works.
    for store in ["demo", id.as_str()] {
        let again = writ(&["import", &f.tuples, "--store", store], f.dir.path());
        assert!(again.status.success(), "{store}: {}", stderr(&again));
        assert!(stderr(&again).contains(&format!("into store {id}")), "{}", stderr(&again));
    }
}

#[test]
fn a_name_several_stores_have_is_refused_with_their_ids() {
    let f = files("cli-ambiguous");
    let ids: Vec<String> = {
        let backend = writ::store::SledStore::open(f.dir.path()).unwrap();
        let engine = writ::Engine::open(Box::new(backend), writ::EngineConfig::default()).unwrap();
        (0..2).map(|_| engine.create_store("demo").unwrap().id).collect()
    };
    let runs = [
        import_create(&f, "demo"),
        writ(&["import", &f.tuples, "--store", "demo"], f.dir.path()),
        writ(&["export", "--store", "demo"], f.dir.path()),
    ];
    for run in &runs {
        assert!(!run.status.success());
        let message = stderr(run);
        assert!(message.contains("store name `demo` is ambiguous"), "{message}");
        assert!(ids.iter().all(|id| message.contains(id)), "names both ids {ids:?}: {message}");
    }
    assert_eq!(store_ids(f.dir.path()).len(), 2, "no third store");
}

/// Regression: `writ export --store demo` printed ``store `demo` not found: store `demo` not found``.
#[test]
fn export_of_an_unknown_store_says_so_once() {
    let f = files("cli-unknown");
    let output = writ(&["export", "--store", "nope"], f.dir.path());
    assert!(!output.status.success());
    assert_eq!(stderr(&output), "error: no store has the id or name `nope`\n");
}

/// `writ serve` on `data_dir` listening on a free loopback port, once it is ready.
fn serve(data_dir: &Path) -> (std::process::Child, std::net::SocketAddr) {
    let address = free_address();
    let mut command = writ_serve(address);
    command.arg("--data-dir").arg(data_dir).stdout(Stdio::null()).stderr(Stdio::null());
    (start(command, address), address)
}

/// Regression: a second `writ serve` on one data dir printed sled's `could not acquire lock ...
/// WouldBlock`; it, and `writ import`, now say that another process holds the dir, naming it.
#[test]
fn a_second_process_on_a_held_data_dir_names_the_dir() {
    let f = files("cli-held");
    let (mut first, _) = serve(f.dir.path());
    let free = free_address().to_string();
    let runs = [
        writ(&["serve", "--listen", &free], f.dir.path()),
        writ(&["import", &f.tuples, "--store", "demo"], f.dir.path()),
    ];
    first.kill().unwrap();
    first.wait().unwrap();
    for run in &runs {
        assert!(!run.status.success());
        let message = stderr(run);
        let held = format!("data dir `{}` is held by another process", f.dir.path().display());
        assert!(message.contains(&held), "{message}");
        assert!(!message.contains("WouldBlock"), "{message}");
        assert_eq!(message.lines().count(), 1, "one line: {message}");
    }
}

/// `writ serve` on an address already in use names the address.
#[test]
fn serve_on_an_address_in_use_names_it() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = taken.local_addr().unwrap().to_string();
    let output = Command::new(env!("CARGO_BIN_EXE_writ"))
        .args(["serve", "--memory", "--listen", &address])
        .stdout(Stdio::null())
        .output()
        .expect("writ runs");
    assert!(!output.status.success());
    assert!(stderr(&output).contains(&format!("cannot listen on {address}: ")), "{}", stderr(&output));
}

/// What `writ serve --memory` logs (on a pipe) before it fails on `address`, taken by the test.
fn log_before_failing(extra: &[&str], env: Option<(&str, &str)>) -> String {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = taken.local_addr().unwrap().to_string();
    let mut command = Command::new(env!("CARGO_BIN_EXE_writ"));
    command.args(["serve", "--memory", "--listen", &address]).args(extra).env_remove("WRIT_LOG_FORMAT");
    if let Some((key, value)) = env {
        command.env(key, value);
    }
    let output = command.env("RUST_LOG", "info").output().expect("writ runs");
    assert!(!output.status.success(), "the address was taken");
    String::from_utf8(output.stdout).unwrap()
}

/// Regression: logs written to a file or pipe carried ANSI colour codes.
#[test]
fn logs_on_a_pipe_have_no_colours() {
    let log = log_before_failing(&[], None);
    assert!(log.contains("--auth none"), "the start-up warning is logged: {log}");
    assert!(!log.contains('\u{1b}'), "no escape codes: {log:?}");
}

#[test]
fn log_format_json_writes_one_object_a_line() {
    for (flags, env) in [(&["--log-format", "json"][..], None), (&[][..], Some(("WRIT_LOG_FORMAT", "json")))] {
        let log = log_before_failing(flags, env);
        let lines: Vec<serde_json::Value> =
            log.lines().map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"))).collect();
        let warning = lines.iter().find(|l| l["level"] == "WARN").unwrap_or_else(|| panic!("a warning: {log}"));
        assert!(warning["fields"]["message"].as_str().unwrap().contains("--auth none"), "{warning}");
        assert!(warning["timestamp"].is_string(), "{warning}");
    }
    let output = Command::new(env!("CARGO_BIN_EXE_writ"))
        .args(["serve", "--memory", "--log-format", "xml"])
        .output()
        .expect("writ runs");
    assert!(!output.status.success());
    let message = stderr(&output);
    assert!(message.contains("'xml'") && message.contains("--log-format"), "{message}");
}

/// `writ check --explain` draws the tree against a data dir (store by name) and a running server
/// (store by id), and the exit code says allowed (0) or denied (1).
#[test]
fn check_explain_prints_the_tree_from_a_data_dir_and_a_server() {
    let f = files("cli-explain");
    assert!(import_create(&f, "docs").status.success());
    let allowed = writ(&["check", "user:ann", "viewer", "doc:1", "--store", "docs", "--explain"], f.dir.path());
    let text = String::from_utf8_lossy(&allowed.stdout).into_owned();
    assert_eq!(allowed.status.code(), Some(0), "{text}{}", stderr(&allowed));
    assert!(text.starts_with("✓ allowed at revision "), "{text}");
    assert!(text.contains("✓ doc:1#viewer@user:ann"), "{text}");
    assert!(text.contains("granted by:\n  doc:1#viewer@user:ann\n"), "{text}");
    let denied = writ(&["check", "user:bob", "viewer", "doc:1", "--store", "docs", "--explain"], f.dir.path());
    let text = String::from_utf8_lossy(&denied.stdout).into_owned();
    assert_eq!(denied.status.code(), Some(1), "{text}{}", stderr(&denied));
    assert!(text.contains("✗ doc:1#viewer@user:bob"), "{text}");
    assert!(text.contains(": no tuple"), "{text}");
    assert!(text.contains("would allow (any one, written):\n  doc:1#viewer@user:bob\n"), "{text}");
    let plain = writ(&["check", "user:bob", "viewer", "doc:2", "--store", "docs"], f.dir.path());
    assert_eq!((plain.status.code(), String::from_utf8_lossy(&plain.stdout).as_ref()), (Some(0), "✓ allowed\n"));
    let unknown = writ(&["check", "user:bob", "viewer", "doc:2", "--store", "nope"], f.dir.path());
    assert_eq!(unknown.status.code(), Some(2));
    assert!(stderr(&unknown).contains("no store has the id or name `nope`"), "{}", stderr(&unknown));

    let store_id = store_ids(f.dir.path()).remove(0).0;
    let (mut child, address) = serve(f.dir.path());
    let remote = Command::new(env!("CARGO_BIN_EXE_writ"))
        .args(["check", "user:bob", "viewer", "doc:1", "--explain", "--store", &store_id])
        .args(["--url", &format!("http://{address}")])
        .env_remove("WRIT_DATA_DIR")
        .output()
        .expect("writ runs");
    let _ = child.kill();
    let _ = child.wait();
    let text = String::from_utf8_lossy(&remote.stdout).into_owned();
    assert_eq!(remote.status.code(), Some(1), "{text}{}", stderr(&remote));
    assert!(text.contains("would allow (any one, written):\n  doc:1#viewer@user:bob\n"), "{text}");
}
