//! The tidy test: the layering rule of STYLE.md §1, checked over every `src/**/*.rs` file.
//!
//! Order: `tuple` → (`model`, `record`, `wire`) → `index` → `eval` → `engine` → (`api`, `gateway`) →
//! `config` → `cli`; a module may import only modules to its left. `cli` (the binary's glue) has a
//! narrower contract: `tuple`, `model`, `record`, `wire`, `engine`, `api`, `gateway` and `config`, never
//! `index` or `eval`, and of `store` only the backends it opens. `store` imports only `tuple` and `record` (the vocabulary it keeps), and only `engine`
//! imports `store`, with no exceptions: the types other layers name (`StoredTuple`, `ChangeRecord`,
//! `DecisionRecord`) live in `tuple` and `record`.
//! `model`, `index` and `eval` never use `sled`, `tokio`, `axum` or `serde_json`; only `cli` uses
//! `anyhow`.
//! The console (DESIGN §10) lives inside `api`, as `api::console` (`src/api/console/`), because
//! `api` alone touches HTTP: it is held to `api`'s rules, and only `api` reaches it.
//! The model-test runner (`api::model_test`), shared by the console and `writ model test`, lives in
//! `api` because OpenFGA's error codes do, but it touches no HTTP ([`HTTP_CRATES`]).
//! Every source file opens with a `//!` module doc.
//! The pure build (`--no-default-features`) depends on none of the server's crates
//! ([`SERVER_ONLY_CRATES`]), read from `cargo tree`.
//!
//! References are found by scanning code (comments dropped) for `crate::name` and
//! `crate::{name, ...}`; names re-exported at the crate root (`crate::Engine`) count as the
//! module that `lib.rs` re-exports them from.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The layered modules, left to right; equal ranks may not import each other.
const ORDER: &[(&str, usize)] = &[
    ("tuple", 0),
    ("model", 1),
    ("record", 1),
    ("wire", 1),
    ("index", 2),
    ("eval", 3),
    ("engine", 4),
    ("api", 5),
    ("gateway", 5),
    ("config", 6),
    ("cli", 7),
];

/// The `cli` module's contract. It is the binary's glue: it drives the `Engine` facade, the HTTP
/// API (`writ check --url`, `writ serve`), the gateway and the settings, and never reaches into
/// `index` or `eval`. Nothing imports `cli` (it is last in `ORDER`).
const CLI_IMPORTS: &[&str] = &["tuple", "model", "record", "wire", "engine", "api", "gateway", "config"];
/// Of `store`, `cli` names only the backends it opens and hands to `Engine::open`; it never reads
/// or writes tuples through them.
const CLI_STORE_BACKENDS: &[&str] = &["SledStore", "PostgresStore", "MemoryStore", "TupleStore"];

/// Crates only `cli`, the binary's glue, may use: library errors stay typed everywhere else.
const CLI_ONLY_CRATES: &[&str] = &["anyhow"];

/// The model-test runner: `cli::testfile` and the console both run files through it, so it sits in
/// `api` (which `cli` may import and which holds OpenFGA's error codes) but stays free of HTTP.
const MODEL_TEST_RUNNER: &str = "api/model_test.rs";
/// Crates that mean HTTP or an async runtime, which [`MODEL_TEST_RUNNER`] must not use.
const HTTP_CRATES: &[&str] = &["axum", "tokio", "hyper"];

/// Crates the pure core (`model`, `index`, `eval`) must not use.
const CORE_FORBIDDEN_CRATES: &[&str] = &["sled", "tokio", "axum", "serde_json"];
const CORE: &[&str] = &["model", "index", "eval"];

/// Crates only the `server` feature may bring in: an embedder of the pure engine gets no async
/// runtime, HTTP stack, TLS, database driver, on-disk store or command-line parser.
const SERVER_ONLY_CRATES: &[&str] = &[
    "tokio",
    "axum",
    "hyper",
    "sled",
    "tokio-postgres",
    "postgres",
    "postgres-protocol",
    "deadpool-postgres",
    "rustls",
    "tokio-rustls",
    "clap",
    "reqwest",
    "jsonwebtoken",
    "mimalloc",
    "maud",
];

/// One `crate::` reference: where, which top-level name, and the path as written.
#[derive(Debug)]
struct Reference {
    line: usize,
    target: String,
    text: String,
}

/// The text with comments blanked out (line structure kept), so doc text never counts as code.
fn strip_comments(source: &str) -> Vec<String> {
    let mut lines = Vec::new();
    let mut in_block = false;
    for raw in source.lines() {
        let mut out = String::new();
        let mut rest = raw;
        loop {
            if in_block {
                match rest.find("*/") {
                    Some(end) => {
                        rest = &rest[end + 2..];
                        in_block = false;
                    }
                    None => break,
                }
            } else {
                let line_comment = rest.find("//");
                match rest.find("/*") {
                    Some(b) if line_comment.is_none_or(|l| b < l) => {
                        out.push_str(&rest[..b]);
                        rest = &rest[b + 2..];
                        in_block = true;
                    }
                    _ => {
                        out.push_str(&rest[..line_comment.unwrap_or(rest.len())]);
                        break;
                    }
                }
            }
        }
        lines.push(out);
    }
    lines
}

fn is_ident_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Every `crate::name` and `crate::{a::x, b}` reference; `use` groups may span lines.
fn crate_references(source: &str) -> Vec<Reference> {
    let lines = strip_comments(source);
    let text = lines.join("\n");
    let line_of = |offset: usize| text[..offset].matches('\n').count() + 1;
    let mut references = Vec::new();
    let mut search_from = 0;
    while let Some(found) = text[search_from..].find("crate::") {
        let start = search_from + found;
        search_from = start + "crate::".len();
        let preceded_by_ident = text[..start].chars().next_back().is_some_and(|c| is_ident_char(c) || c == ':');
        if preceded_by_ident {
            continue;
        }
        let rest = &text[search_from..];
        if let Some(group) = rest.strip_prefix('{') {
            let mut depth = 1;
            let mut end = group.len();
            for (i, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' => {
                        depth -= 1;
                        if depth == 0 {
                            end = i;
                            break;
                        }
                    }
                    _ => {}
                }
            }
            let inner = &group[..end];
            let mut depth = 0;
            let mut item_start = 0;
            let mut items = Vec::new();
            for (i, c) in inner.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        items.push((item_start, &inner[item_start..i]));
                        item_start = i + 1;
                    }
                    _ => {}
                }
            }
            items.push((item_start, &inner[item_start..]));
            for (offset, item) in items {
                let trimmed = item.trim();
                let name: String = trimmed.chars().take_while(|&c| is_ident_char(c)).collect();
                if name.is_empty() {
                    continue;
                }
                let leading = item.len() - item.trim_start().len();
                let line = line_of(search_from + 1 + offset + leading);
                let text = format!("crate::{}", trimmed.split_whitespace().collect::<Vec<_>>().join(" "));
                references.push(Reference { line, target: name, text });
            }
        } else {
            let path: String = rest.chars().take_while(|&c| is_ident_char(c) || c == ':').collect();
            let name: String = path.chars().take_while(|&c| is_ident_char(c)).collect();
            if !name.is_empty() {
                references.push(Reference { line: line_of(start), target: name, text: format!("crate::{path}") });
            }
        }
    }
    references
}

/// Lines that use one of `crates` (`sled::`, `use tokio`, ...), as (line, crate).
fn crate_uses(source: &str, crates: &[&str]) -> Vec<(usize, String)> {
    let mut uses = Vec::new();
    for (index, line) in strip_comments(source).iter().enumerate() {
        for name in crates {
            let mut from = 0;
            while let Some(found) = line[from..].find(name) {
                let start = from + found;
                from = start + name.len();
                let before_ok = !line[..start].chars().next_back().is_some_and(|c| is_ident_char(c) || c == ':');
                let after = &line[from..];
                let after_ok = after.starts_with("::")
                    || (line[..start].trim_end().ends_with("use") || line[..start].trim_end().ends_with("crate"))
                        && !after.starts_with(|c: char| is_ident_char(c));
                if before_ok && after_ok {
                    uses.push((index + 1, (*name).to_string()));
                }
            }
        }
    }
    uses
}

/// Root re-exports from `lib.rs`: `pub use engine::{Engine, EngineError};` maps `Engine` → `engine`.
fn root_reexports(lib_source: &str) -> BTreeMap<String, String> {
    let mut map = BTreeMap::new();
    for line in strip_comments(lib_source) {
        let Some(rest) = line.trim().strip_prefix("pub use ") else { continue };
        let Some((module, items)) = rest.trim_end_matches(';').split_once("::") else { continue };
        for item in items.trim_matches(|c| c == '{' || c == '}').split(',') {
            let name = item.split(" as ").last().unwrap_or(item).trim();
            if !name.is_empty() {
                map.insert(name.to_string(), module.trim().to_string());
            }
        }
    }
    map
}

/// The top-level module a source file belongs to (`model/parser.rs` → `model`), or `None` for the
/// crate root files (`lib.rs`, `main.rs`).
fn module_of(relative: &Path) -> Option<String> {
    let first = relative.components().next()?.as_os_str().to_string_lossy().into_owned();
    match first.strip_suffix(".rs") {
        Some("lib" | "main") => None,
        Some(name) => Some(name.to_string()),
        None => Some(first),
    }
}

fn rank(module: &str) -> Option<usize> {
    ORDER.iter().find(|(name, _)| *name == module).map(|(_, rank)| *rank)
}

/// Why `module` may not reference `reference`, or `None` when it may.
fn violation(module: &str, target: &str, text: &str) -> Option<String> {
    if target == module {
        return None;
    }
    if module == "cli" {
        if target == "store" {
            let backend = text.strip_prefix("crate::store::").unwrap_or_default();
            let named = backend.trim_start_matches('{').split(|c: char| !is_ident_char(c)).next().unwrap_or_default();
            return (!CLI_STORE_BACKENDS.contains(&named))
                .then(|| format!("of `store`, `cli` names only the backends it opens: {CLI_STORE_BACKENDS:?}"));
        }
        return (!CLI_IMPORTS.contains(&target)).then(|| format!("`cli` imports only {CLI_IMPORTS:?}"));
    }
    if target == "store" {
        return (module != "engine").then(|| "only `engine` imports `store`".into());
    }
    if module == "store" {
        return (!["tuple", "record"].contains(&target)).then(|| "`store` imports only `tuple` and `record`".into());
    }
    match (rank(module), rank(target)) {
        (Some(from), Some(to)) if to < from => None,
        (Some(_), Some(_)) => Some(format!(
            "a module may import only modules to its left in {}",
            ORDER.iter().map(|(name, _)| *name).collect::<Vec<_>>().join(" → ")
        )),
        (None, _) => Some(format!("module `{module}` is not in the layering order of tests/tidy.rs; add it there")),
        (_, None) => Some(format!("module `{target}` is not in the layering order of tests/tidy.rs; add it there")),
    }
}

fn rust_files(dir: &Path, files: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.filter_map(Result::ok) {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, files);
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
}

/// Every problem in one file, as `file:line: message` lines.
fn check_file(relative: &Path, source: &str, reexports: &BTreeMap<String, String>) -> Vec<String> {
    let shown = format!("src/{}", relative.display());
    let mut problems = Vec::new();
    let first_line = source.lines().find(|l| !l.trim().is_empty()).unwrap_or_default();
    if !first_line.trim_start().starts_with("//!") {
        problems.push(format!("{shown}:1: the file must open with a `//!` module doc"));
    }
    let Some(module) = module_of(relative) else { return problems };
    for reference in crate_references(source) {
        let target = reexports.get(&reference.target).cloned().unwrap_or_else(|| reference.target.clone());
        if let Some(why) = violation(&module, &target, &reference.text) {
            problems.push(format!("{shown}:{}: `{module}` imports `{}`: {why}", reference.line, reference.text));
        }
    }
    if module != "cli" {
        for (line, name) in crate_uses(source, CLI_ONLY_CRATES) {
            problems.push(format!("{shown}:{line}: `{module}` uses `{name}`: only `cli` may ({CLI_ONLY_CRATES:?})"));
        }
    }
    if relative == Path::new(MODEL_TEST_RUNNER) {
        for (line, name) in crate_uses(source, HTTP_CRATES) {
            problems.push(format!(
                "{shown}:{line}: the model-test runner uses `{name}`: it touches no HTTP ({HTTP_CRATES:?})"
            ));
        }
    }
    if CORE.contains(&module.as_str()) {
        for (line, name) in crate_uses(source, CORE_FORBIDDEN_CRATES) {
            problems.push(format!(
                "{shown}:{line}: `{module}` uses `{name}`: the core never uses {CORE_FORBIDDEN_CRATES:?}"
            ));
        }
    }
    problems
}

#[test]
fn source_files_follow_the_layering_rule() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let lib = std::fs::read_to_string(src.join("lib.rs")).expect("src/lib.rs is readable");
    let reexports = root_reexports(&lib);
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.sort();
    assert!(files.len() > 5, "expected the crate's sources under {}", src.display());
    let mut problems = Vec::new();
    let mut references = 0;
    for path in &files {
        let source = std::fs::read_to_string(path).expect("a source file is readable");
        let relative = path.strip_prefix(&src).expect("under src");
        references += crate_references(&source).len();
        problems.extend(check_file(relative, &source, &reexports));
    }
    // Guards the scanner itself: the crate's modules do refer to each other.
    assert!(references > 20, "found only {references} `crate::` references; is the scanner broken?");
    assert!(problems.is_empty(), "layering violations (STYLE.md §1):\n{}", problems.join("\n"));
}

#[test]
fn tidy_catches_each_kind_of_violation() {
    let reexports = root_reexports("pub use engine::{Engine, EngineError};\npub use tuple::Tuple;");
    let source = "//! Doc.\n\
        use crate::tuple::Tuple; // crate::engine in a comment is fine\n\
        use crate::{\n    index::View,\n    eval::Evaluator,\n};\n\
        fn f() -> crate::Engine { todo!() }\n\
        use crate::store::MemoryStore;\n\
        fn g(v: serde_json::Value) {}\n";
    let problems = check_file(Path::new("model/compile.rs"), source, &reexports);
    let expected = [
        "src/model/compile.rs:4: `model` imports `crate::index::View`",
        "src/model/compile.rs:5: `model` imports `crate::eval::Evaluator`",
        "src/model/compile.rs:7: `model` imports `crate::Engine`",
        "src/model/compile.rs:8: `model` imports `crate::store::MemoryStore`: only `engine` imports `store`",
        "src/model/compile.rs:9: `model` uses `serde_json`",
    ];
    assert_eq!(problems.len(), expected.len(), "{problems:#?}");
    for (problem, prefix) in problems.iter().zip(expected) {
        assert!(problem.starts_with(prefix), "{problem} should start with {prefix}");
    }
    let testfile =
        "//! Doc.\nuse crate::store::StoredTuple;\nuse crate::tuple::StoredTuple;\nuse crate::eval::EvalError;\n";
    let problems = check_file(Path::new("cli/testfile.rs"), testfile, &reexports);
    assert_eq!(problems.len(), 2, "{problems:#?}");
    assert!(
        problems[0].starts_with("src/cli/testfile.rs:2: `cli` imports `crate::store::StoredTuple`"),
        "{problems:#?}"
    );
    assert!(problems[1].starts_with("src/cli/testfile.rs:4: `cli` imports `crate::eval::EvalError`"), "{problems:#?}");
    let serve = "//! Doc.\nuse crate::store::SledStore;\nfn f() -> Box<dyn crate::store::TupleStore> { todo!() }\n\
        use crate::api::router;\nuse crate::index::Index;\n";
    let problems = check_file(Path::new("cli/serve.rs"), serve, &reexports);
    let problems_elsewhere =
        check_file(Path::new("engine/read.rs"), "//! Doc.\nfn f() -> anyhow::Result<()> { Ok(()) }\n", &reexports);
    assert_eq!(problems_elsewhere.len(), 1, "{problems_elsewhere:#?}");
    assert!(
        problems_elsewhere[0].starts_with("src/engine/read.rs:2: `engine` uses `anyhow`"),
        "{problems_elsewhere:#?}"
    );
    assert_eq!(problems.len(), 1, "{problems:#?}");
    assert!(problems[0].starts_with("src/cli/serve.rs:5: `cli` imports `crate::index::Index`"), "{problems:#?}");
    let store = "//! Doc.\nuse crate::record::ChangeRecord;\nuse crate::tuple::Tuple;\nuse crate::model::Model;\n";
    let problems = check_file(Path::new("store/codec.rs"), store, &reexports);
    assert_eq!(problems.len(), 1, "{problems:#?}");
    assert!(problems[0].starts_with("src/store/codec.rs:4: `store` imports `crate::model::Model`"), "{problems:#?}");
    let runner = "//! Doc.\nuse crate::engine::Engine;\nuse axum::Json;\nuse crate::cli::testfile;\n";
    let problems = check_file(Path::new(MODEL_TEST_RUNNER), runner, &reexports);
    assert_eq!(problems.len(), 2, "{problems:#?}");
    assert!(problems[0].starts_with("src/api/model_test.rs:4: `api` imports `crate::cli::testfile`"), "{problems:#?}");
    assert!(problems[1].starts_with("src/api/model_test.rs:3: the model-test runner uses `axum`"), "{problems:#?}");
    let undocumented = check_file(Path::new("store/codec.rs"), "use crate::tuple::Tuple;\n", &reexports);
    assert_eq!(undocumented, ["src/store/codec.rs:1: the file must open with a `//!` module doc"]);
}

#[test]
fn the_pure_build_depends_on_no_server_crate() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml");
    let output = std::process::Command::new(cargo)
        .args(["tree", "--offline", "--no-default-features", "-e", "normal", "--prefix", "none", "--manifest-path"])
        .arg(&manifest)
        .output()
        .expect("cargo runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "cargo tree failed: {stderr}");
    let tree = String::from_utf8_lossy(&output.stdout);
    let crates: std::collections::BTreeSet<&str> =
        tree.lines().filter_map(|line| line.split_whitespace().next()).collect();
    // Guards the parse: the engine's own dependencies are listed.
    assert!(crates.contains("writ") && crates.contains("roaring"), "unexpected `cargo tree` output:\n{tree}");
    let found: Vec<&str> = SERVER_ONLY_CRATES.iter().copied().filter(|name| crates.contains(name)).collect();
    assert!(found.is_empty(), "the pure build depends on {found:?}; make them optional under `server`");
}
