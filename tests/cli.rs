//! The `writ` binary as a user runs it: `import` and `export` finding stores by id or name
//! (a rerun of `import --create-store` resumes), error messages that say each thing once, and
//! `serve` naming the data dir another process holds or the address in use.

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
