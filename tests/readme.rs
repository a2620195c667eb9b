//! The README cannot drift from the binary (issue 33): its five-minute tour is run as written, and
//! its limits table is checked against `writ serve --help`.
//!
//! **The tour.** Every ```` ```sh ```` block between `## Five-minute tour` and the next `## `
//! heading is run, in order, by one `bash` (`set -Eeuo pipefail`) in a temporary directory that holds
//! links to the checkout's `schema/` and `fixtures/`, with the built `writ` first on `PATH`. Only
//! three things are changed on the way: `localhost:8080` becomes the test server's address; the
//! line `cargo install --path .` does nothing (the binary is already built); and the line
//! `writ serve` starts `writ serve --listen 127.0.0.1:<free port>` in the background on the
//! temporary directory's `./data` and waits for `/readyz`. `curl` gets a 30 s `--max-time`, so a
//! hung request fails instead of hanging the test.
//!
//! A `# → ` comment (on a line of its own, or at the end of the line that ends a command) shows what
//! the commands since the previous one print on standard output; lines right under it that start
//! with `#   ` continue it. When the shown text is JSON, the output is compared as JSON, where a
//! placeholder `<NAME>` (quoted or bare) stands for any value: the README uses them only for what
//! differs from run to run (store and model ids, request ids, times, latencies). Otherwise the
//! output is compared as text, line by line. Output that no `# → ` shows is a failure too, and so is
//! a `# → ` outside the tour (it would be checked by nobody). A failure names the README line.
//!
//! **The library example.** The "Writ as a library" section quotes `examples/embed.rs` from its
//! first `use` to the end, as it is (CI builds and runs the example itself).
//!
//! **The limits table.** Every `--max-*` flag and `--request-timeout-ms` of `writ serve --help` is
//! in the README's limits table with the same default, and the table has no other flag. The table
//! stays hand-written (its `bounds` and `code` columns say more than clap's help), so this test is
//! what keeps the two in step.

use crate::support::serve::free_address;
use serde_json::Value;
use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;

const README: &str = include_str!("../README.md");
const TOUR_HEADING: &str = "## Five-minute tour";
const ARROW: &str = "# → ";
const CONTINUATION: &str = "#   ";
const MARKER: &str = "@@writ-readme-tour@@";
const FAILED: &str = "@@writ-readme-tour-failed@@";

/// One command block of the README, with the README line of its first command.
struct Block {
    first_line: usize,
    lines: Vec<String>,
}

/// What the README shows a stretch of commands prints, and where it says so.
struct Expectation {
    block: usize,
    readme_line: usize,
    text: String,
}

/// The ```` ```sh ```` blocks of the README, each with whether it lies in the tour.
fn sh_blocks(readme: &str) -> Vec<(bool, Block)> {
    let mut blocks = Vec::new();
    let mut in_tour = false;
    let mut current: Option<Block> = None;
    for (index, line) in readme.lines().enumerate() {
        let number = index + 1;
        if let Some(block) = current.as_mut() {
            if line.trim_end() == "```" {
                blocks.push((in_tour, current.take().unwrap()));
            } else {
                block.lines.push(line.to_string());
            }
            continue;
        }
        if line.starts_with("## ") {
            in_tour = line.trim_end() == TOUR_HEADING;
        } else if line.trim_end() == "```sh" {
            current = Some(Block { first_line: number + 1, lines: Vec::new() });
        }
    }
    assert!(current.is_none(), "README.md: a ```sh block is never closed");
    blocks
}

/// The tour as one bash script with a marker printed after each expectation, the expectations, and
/// the README line of each line of the script.
fn tour_script(blocks: &[&Block], address: &str) -> (String, Vec<Expectation>, Vec<usize>) {
    let mut script = String::new();
    let mut expectations: Vec<Expectation> = Vec::new();
    let mut readme_lines = Vec::new();
    let mut continuing = false;
    for (block_index, block) in blocks.iter().enumerate() {
        for (offset, line) in block.lines.iter().enumerate() {
            let readme_line = block.first_line + offset;
            if continuing {
                if let Some(more) = line.strip_prefix(CONTINUATION) {
                    let last = expectations.last_mut().unwrap();
                    last.text.push('\n');
                    last.text.push_str(more);
                    continue;
                }
                continuing = false;
            }
            let (command, shown) = match line.find(ARROW) {
                Some(at) => (&line[..at], Some(&line[at + ARROW.len()..])),
                None => (line.as_str(), None),
            };
            let command = match command.trim() {
                "cargo install --path ." => ":".to_string(),
                "writ serve" => "writ_readme_serve".to_string(),
                other if other.starts_with("writ serve") => {
                    panic!("README.md:{readme_line}: the tour may start only a plain `writ serve`, not `{other}`")
                }
                _ => command.replace("localhost:8080", address),
            };
            writeln!(script, "{command}").unwrap();
            readme_lines.push(readme_line);
            if let Some(shown) = shown {
                writeln!(script, "printf '\\n%s\\n' '{MARKER} {}'", expectations.len()).unwrap();
                readme_lines.push(readme_line);
                expectations.push(Expectation { block: block_index + 1, readme_line, text: shown.to_string() });
                continuing = true;
            }
        }
        continuing = false;
    }
    (script, expectations, readme_lines)
}

/// The bash that runs before the tour: strict mode, `writ` on `PATH`, and the two stand-ins.
fn preamble(writ_dir: &Path, port: u16) -> String {
    format!(
        r#"set -Eeuo pipefail
export PATH="{writ_dir}:$PATH"
export RUST_LOG=warn
WRIT_README_SERVER=""
trap 'if [ "${{#FUNCNAME[@]}}" -gt 0 ]; then at=${{BASH_LINENO[-1]}}; else at=$LINENO; fi; echo "{FAILED} $at $BASH_COMMAND" >&2' ERR
trap 'if [ -n "$WRIT_README_SERVER" ]; then kill "$WRIT_README_SERVER" 2>/dev/null || true; wait "$WRIT_README_SERVER" 2>/dev/null || true; fi' EXIT
curl() {{ command curl --max-time 30 "$@"; }}
writ_readme_serve() {{
  writ serve --listen 127.0.0.1:{port} >serve.log 2>&1 &
  WRIT_README_SERVER=$!
  for _ in $(seq 1200); do
    if command curl -s -o /dev/null --max-time 2 -w '%{{http_code}}' 127.0.0.1:{port}/readyz | grep -q 200; then return 0; fi
    if ! kill -0 "$WRIT_README_SERVER" 2>/dev/null; then echo "writ serve exited at start:" >&2; cat serve.log >&2; return 1; fi
    sleep 0.05
  done
  echo "writ serve never became ready on 127.0.0.1:{port}" >&2
  return 1
}}
"#,
        writ_dir = writ_dir.display()
    )
}

/// Is `text` a placeholder such as `<STORE>`?
fn is_placeholder(text: &str) -> bool {
    text.len() > 2
        && text.starts_with('<')
        && text.ends_with('>')
        && text[1..text.len() - 1].chars().all(|c| c.is_ascii_uppercase() || c == '_')
}

/// The shown JSON with each bare `<NAME>` quoted, so it parses; `None` when it is not JSON.
fn parse_shown_json(shown: &str) -> Option<Value> {
    let mut quoted = String::new();
    let mut in_string = false;
    let mut escaped = false;
    let mut chars = shown.chars().peekable();
    while let Some(c) = chars.next() {
        if in_string {
            quoted.push(c);
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => in_string = false,
                _ => {}
            }
        } else if c == '"' {
            in_string = true;
            quoted.push(c);
        } else if c == '<' {
            let mut name = String::from("<");
            for next in chars.by_ref() {
                name.push(next);
                if next == '>' {
                    break;
                }
            }
            write!(quoted, "\"{name}\"").unwrap();
        } else {
            quoted.push(c);
        }
    }
    let value: Value = serde_json::from_str(&quoted).ok()?;
    (value.is_object() || value.is_array()).then_some(value)
}

/// Where `actual` differs from `shown` (placeholders match anything), as a JSON path and both values.
fn json_difference(shown: &Value, actual: &Value, path: &str) -> Option<String> {
    match (shown, actual) {
        (Value::String(text), _) if is_placeholder(text) => None,
        (Value::Object(want), Value::Object(got)) => {
            for key in want.keys().chain(got.keys()) {
                match (want.get(key), got.get(key)) {
                    (Some(w), Some(g)) => {
                        if let Some(difference) = json_difference(w, g, &format!("{path}.{key}")) {
                            return Some(difference);
                        }
                    }
                    (Some(_), None) => return Some(format!("{path}.{key} is shown but missing")),
                    (None, Some(g)) => return Some(format!("{path}.{key} = {g} is not shown")),
                    (None, None) => {}
                }
            }
            None
        }
        (Value::Array(want), Value::Array(got)) if want.len() == got.len() => {
            want.iter().zip(got).enumerate().find_map(|(i, (w, g))| json_difference(w, g, &format!("{path}[{i}]")))
        }
        _ if shown == actual => None,
        _ => Some(format!("{path}: shown {shown}, got {actual}")),
    }
}

/// Why `output` does not match what the README shows, if it does not.
fn mismatch(shown: &str, output: &str) -> Option<String> {
    match parse_shown_json(shown) {
        Some(want) => match serde_json::from_str::<Value>(output) {
            Ok(got) => {
                json_difference(&want, &got, "$").map(|difference| format!("{difference}\n    output: {output}"))
            }
            Err(_) => Some(format!("shows JSON, but the output is not JSON:\n{output}")),
        },
        None => {
            let want: Vec<&str> = shown.lines().map(str::trim_end).collect();
            let got: Vec<&str> = output.lines().map(str::trim_end).collect();
            (want != got).then(|| format!("shows\n{shown}\n    output\n{output}"))
        }
    }
}

#[test]
fn readme_tour_answers_as_written() {
    let blocks = sh_blocks(README);
    for (in_tour, block) in &blocks {
        if !in_tour {
            for (offset, line) in block.lines.iter().enumerate() {
                assert!(
                    !line.contains(ARROW),
                    "README.md:{}: a `# → ` outside the five-minute tour is checked by nobody; move it into the tour",
                    block.first_line + offset
                );
            }
        }
    }
    let tour: Vec<&Block> = blocks.iter().filter(|(in_tour, _)| *in_tour).map(|(_, block)| block).collect();
    assert!(tour.len() >= 5, "README.md: the five-minute tour has only {} command blocks", tour.len());

    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let writ = Path::new(env!("CARGO_BIN_EXE_writ"));
    let work = crate::support::TempDir::new("readme-tour");
    std::fs::create_dir_all(work.path()).unwrap();
    for shared in ["schema", "fixtures"] {
        std::os::unix::fs::symlink(manifest.join(shared), work.path().join(shared)).unwrap();
    }
    let port = free_address().port();
    let (script, expectations, readme_lines) = tour_script(&tour, &format!("127.0.0.1:{port}"));
    assert!(!expectations.is_empty(), "README.md: the tour shows no output to check");
    let preamble = preamble(writ.parent().unwrap(), port);
    let output = Command::new("bash")
        .arg("-c")
        .arg(format!("{preamble}{script}"))
        .current_dir(work.path())
        .output()
        .expect("bash runs (the tour needs bash, curl and GNU date)");
    let stdout = String::from_utf8_lossy(&output.stdout);
    // The ERR trap names the script line that failed: say which README line that is.
    let stderr: String = String::from_utf8_lossy(&output.stderr)
        .lines()
        .map(|line| match line.strip_prefix(FAILED).and_then(|rest| rest.trim().split_once(' ')) {
            Some((at, command)) => {
                let readme_line = at
                    .parse::<usize>()
                    .ok()
                    .and_then(|at| at.checked_sub(preamble.lines().count() + 1))
                    .and_then(|index| readme_lines.get(index));
                match readme_line {
                    Some(readme_line) => format!("README.md:{readme_line}: `{command}` failed\n"),
                    None => format!("`{command}` failed (line {at} of the tour's preamble)\n"),
                }
            }
            None => format!("{line}\n"),
        })
        .collect();

    // Split standard output at the markers: segment i is what the commands before expectation i printed.
    let mut segments: Vec<String> = vec![String::new()];
    for line in stdout.lines() {
        if line.starts_with(MARKER) {
            segments.push(String::new());
        } else {
            let last = segments.last_mut().unwrap();
            last.push_str(line);
            last.push('\n');
        }
    }
    let reached = segments.len() - 1;
    let mut failures = Vec::new();
    for (expectation, segment) in expectations.iter().zip(&segments).take(reached) {
        if let Some(why) = mismatch(&expectation.text, segment.trim()) {
            failures.push(format!("tour block {}, README.md:{}: {why}", expectation.block, expectation.readme_line));
        }
    }
    if !output.status.success() {
        let after = match reached.checked_sub(1) {
            Some(last) => format!(
                "after the output shown in tour block {}, README.md:{}",
                expectations[last].block, expectations[last].readme_line
            ),
            None => "before its first shown output".to_string(),
        };
        failures.push(format!(
            "the tour stopped with {} {after}; its standard output since:\n{}\nits standard error:\n{stderr}",
            output.status, segments[reached]
        ));
    } else if reached != expectations.len() {
        failures.push(format!("only {reached} of {} shown outputs were reached", expectations.len()));
    } else if !segments[reached].trim().is_empty() {
        failures
            .push(format!("the tour's last commands print output the README does not show:\n{}", segments[reached]));
    }
    assert!(failures.is_empty(), "the README's tour does not answer as written:\n\n{}", failures.join("\n\n"));
}

/// `--flag (default)` pairs of the README's limits table, by flag.
fn readme_limits() -> Vec<(String, String)> {
    let table = README
        .split("\n### Limits\n")
        .nth(1)
        .expect("README.md has a `### Limits` section")
        .split("\n#")
        .next()
        .unwrap();
    let mut limits = Vec::new();
    for row in table.lines().filter(|line| line.starts_with("| `--")) {
        let first_cell = row.split(" | ").next().unwrap().trim_start_matches("| ");
        for entry in first_cell.split(" / ") {
            let (flag, default) =
                entry.split_once(" (").unwrap_or_else(|| panic!("limits row without a default: {row}"));
            let default = default.trim_end_matches(')').split(';').next().unwrap();
            limits.push((flag.trim_matches('`').to_string(), default.to_string()));
        }
    }
    limits
}

/// A default as the README writes it (`4 MiB`, `256 KiB`, `1000`) in the help's plain number.
fn plain_number(default: &str) -> String {
    let unit = |text: &str, suffix: &str, factor: u64| {
        text.strip_suffix(suffix).and_then(|n| n.trim().parse::<u64>().ok()).map(|n| (n * factor).to_string())
    };
    unit(default, "MiB", 1 << 20).or_else(|| unit(default, "KiB", 1 << 10)).unwrap_or_else(|| default.to_string())
}

/// `--flag` → default of every limit flag `writ serve --help` lists.
fn help_limits() -> Vec<(String, String)> {
    let help = Command::new(env!("CARGO_BIN_EXE_writ")).args(["serve", "--help"]).output().unwrap();
    assert!(help.status.success(), "writ serve --help fails");
    let text = String::from_utf8(help.stdout).unwrap();
    let mut limits = Vec::new();
    let mut flag: Option<String> = None;
    for line in text.lines() {
        let trimmed = line.trim_start();
        if let Some(rest) = trimmed.strip_prefix("--") {
            let name = format!("--{}", rest.split_whitespace().next().unwrap());
            flag = (name.starts_with("--max-") || name == "--request-timeout-ms").then_some(name);
        }
        if let (Some(name), Some(at)) = (&flag, line.find("[default: ")) {
            let default = line[at + "[default: ".len()..].split(']').next().unwrap();
            limits.push((name.clone(), default.to_string()));
            flag = None;
        }
    }
    limits
}

#[test]
fn readme_limits_table_lists_every_limit_flag_of_serve_help() {
    let mut table: Vec<(String, String)> =
        readme_limits().into_iter().map(|(flag, default)| (flag, plain_number(&default))).collect();
    let mut help = help_limits();
    assert!(help.len() >= 20, "found only {} limit flags in `writ serve --help`: {help:?}", help.len());
    table.sort();
    help.sort();
    let missing: Vec<_> = help.iter().filter(|entry| !table.contains(entry)).collect();
    let extra: Vec<_> = table.iter().filter(|entry| !help.contains(entry)).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "README.md's limits table and `writ serve --help` disagree.\n  in --help, not in the table (flag, default): \
         {missing:?}\n  in the table, not in --help: {extra:?}"
    );
}

#[test]
fn readme_library_section_quotes_the_embed_example() {
    let example = include_str!("../examples/embed.rs");
    let code = &example[example.find("use writ").expect("the example imports writ")..];
    let section = &README[README.find("## Writ as a library").expect("the README has a library section")..];
    let quoted = format!("```rust\n{code}```");
    assert!(section.contains(&quoted), "README's \"Writ as a library\" no longer quotes examples/embed.rs:\n{code}");
}
