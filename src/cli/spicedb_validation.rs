//! SpiceDB validation files (`pkg/validationfile`): load the schema and relationships into a
//! fresh in-memory engine, then run the assertions with SpiceDB's three-valued answers.
//!
//! Format: `schema` (inline `.zed`) or `schemaFile` (beside the YAML file, never both);
//! `relationships`, one per line, `res:id#rel@subj:id[#rel][caveat[:{json}]][expiration:RFC3339]`
//! (blank and `//` lines ignored); `assertions` with `assertTrue` (HAS), `assertFalse` (NO) and
//! `assertCaveated` (CONDITIONAL), each `res:id#perm@subj:id[#rel] [with {json context}]`;
//! `validation` (`"res:id#perm": ["[subj] is <...>"]`) checked as positive membership only.
//! Every assertion is also explained three-valued (`Engine::explain_permissionship`), and the
//! report says whether the tree's root agrees and a conditional tree names the missing caveat
//! parameters.
//! Invariant: every assertion of a file ends up in its report as passed, failed (with what the
//! engine answered) or unsupported (with why), so counts are never silently short.
//! Uses only `engine`, `model` and `tuple`.

pub use crate::engine::Permissionship;
use crate::engine::{CheckRequest, Engine, ExplainNode, Explanation, Reason, WriteRequest};
use crate::model::Model;
use crate::tuple::StoredTuple;
use crate::tuple::{Context, Tuple, TupleCondition};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The YAML document.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ValidationFile {
    #[serde(default)]
    schema: Option<String>,
    #[serde(default)]
    schema_file: Option<String>,
    #[serde(default)]
    relationships: Option<String>,
    #[serde(default)]
    assertions: Option<Assertions>,
    #[serde(default)]
    validation: Option<BTreeMap<String, Option<Vec<String>>>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Assertions {
    #[serde(default)]
    assert_true: Option<Vec<String>>,
    #[serde(default)]
    assert_false: Option<Vec<String>>,
    #[serde(default)]
    assert_caveated: Option<Vec<String>>,
}

/// What one assertion expected and what the engine answered.
#[derive(Debug, Clone)]
pub struct AssertionOutcome {
    /// `assertTrue`, `assertFalse`, `assertCaveated` or `validation`.
    pub kind: &'static str,
    /// The assertion as written (for `validation`: `res#perm [subject]`).
    pub text: String,
    /// The expected answer.
    pub expected: Permissionship,
    /// The engine's answer, or its error; `None` when the file could not be loaded
    /// (the assertion is unsupported, see [`FileReport::load_error`]).
    pub got: Option<Result<Permissionship, String>>,
    /// What explaining the same check answered (`None` when the file could not be loaded).
    pub explained: Option<Result<ExplainOutcome, String>>,
}

/// What a three-valued explain of an assertion's check answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExplainOutcome {
    /// The tree root's result (`None` where the walk stopped at a limit).
    pub root: Option<Permissionship>,
    /// Every `missing_context` node names its condition and at least one missing parameter,
    /// and a conditional root has at least one such node below it.
    pub names_missing: bool,
}

impl AssertionOutcome {
    /// True when the engine gave the expected answer.
    pub fn passed(&self) -> bool {
        matches!(self.got, Some(Ok(got)) if got == self.expected)
    }

    /// True when explain's root holds the expected three-valued answer and, if conditional,
    /// names the missing caveat parameters.
    pub fn explain_agrees(&self) -> bool {
        matches!(&self.explained, Some(Ok(ExplainOutcome { root: Some(root), names_missing: true }))
            if *root == self.expected)
    }

    /// True when explain's root holds what the check answered (both errors count as agreeing).
    pub fn explain_matches_check(&self) -> bool {
        match (&self.got, &self.explained) {
            (Some(Ok(got)), Some(Ok(ExplainOutcome { root: Some(root), names_missing: true }))) => got == root,
            (Some(Err(_)), Some(Err(_))) | (None, None) => true,
            _ => false,
        }
    }

    /// The answer in SpiceDB's words: `HAS`, `NO`, `CONDITIONAL`, `error: ...` or `UNSUPPORTED`.
    pub fn got_text(&self) -> String {
        match &self.got {
            Some(Ok(answer)) => permissionship_name(*answer).to_string(),
            Some(Err(error)) => format!("error: {error}"),
            None => "UNSUPPORTED".to_string(),
        }
    }
}

/// SpiceDB's name of an answer: `HAS`, `NO`, `CONDITIONAL`.
pub fn permissionship_name(answer: Permissionship) -> &'static str {
    match answer {
        Permissionship::Allowed => "HAS",
        Permissionship::Denied => "NO",
        Permissionship::Conditional => "CONDITIONAL",
    }
}

/// The result of running one validation file.
#[derive(Debug, Clone)]
pub struct FileReport {
    /// The file.
    pub path: PathBuf,
    /// Why the schema or relationships could not be loaded, if so.
    pub load_error: Option<String>,
    /// Every assertion, in file order (`assertTrue`, `assertFalse`, `assertCaveated`, `validation`).
    pub outcomes: Vec<AssertionOutcome>,
}

impl FileReport {
    /// Assertions that passed.
    pub fn passed(&self) -> usize {
        self.outcomes.iter().filter(|o| o.passed()).count()
    }

    /// Assertions that ran and failed.
    pub fn failed(&self) -> usize {
        self.outcomes.iter().filter(|o| o.got.is_some() && !o.passed()).count()
    }

    /// Assertions not run because the file could not be loaded.
    pub fn unsupported(&self) -> usize {
        self.outcomes.iter().filter(|o| o.got.is_none()).count()
    }
}

/// A plain-text report: one line per file (`ok`/`FAIL`, counts), each failing or unsupported
/// assertion as `      kind: text -> got ANSWER` (the peer runner's format) and each whose explain
/// disagrees with its check, then a summary line `N passed, M failed, K unsupported` and one with
/// how many explains agree with the check and with the assertion.
pub fn report_text(reports: &[FileReport]) -> String {
    let mut out = String::new();
    let (mut passed, mut failed, mut unsupported) = (0, 0, 0);
    for report in reports {
        let name =
            report.path.file_name().map_or_else(|| report.path.display().to_string(), |n| n.to_string_lossy().into());
        let bad = report.failed() + report.unsupported() > 0 || report.load_error.is_some();
        out.push_str(&format!(
            "{} {name}: {} passed, {} failed, {} unsupported\n",
            if bad { "FAIL" } else { "ok  " },
            report.passed(),
            report.failed(),
            report.unsupported()
        ));
        if let Some(error) = &report.load_error {
            out.push_str(&format!("      LOAD: {error}\n"));
        }
        for outcome in report.outcomes.iter().filter(|o| !o.passed()) {
            out.push_str(&format!("      {}: {} -> got {}\n", outcome.kind, outcome.text, outcome.got_text()));
        }
        for outcome in report.outcomes.iter().filter(|o| !o.explain_matches_check()) {
            out.push_str(&format!(
                "      explain: {}: {} -> check {} but explain {:?}\n",
                outcome.kind,
                outcome.text,
                outcome.got_text(),
                outcome.explained
            ));
        }
        passed += report.passed();
        failed += report.failed();
        unsupported += report.unsupported();
    }
    out.push_str(&format!("{} files; {passed} passed, {failed} failed, {unsupported} unsupported\n", reports.len()));
    let outcomes = || reports.iter().flat_map(|report| report.outcomes.iter()).filter(|o| o.got.is_some());
    let ran = outcomes().count();
    out.push_str(&format!(
        "explain (three-valued): agrees with check on {}/{ran}, with the assertion on {}/{ran}\n",
        outcomes().filter(|o| o.explain_matches_check()).count(),
        outcomes().filter(|o| o.explain_agrees()).count(),
    ));
    out
}

/// The validation files a path names: the file itself, or a directory's `*.yaml` files, sorted.
pub fn expand_paths(path: &Path) -> Result<Vec<PathBuf>, String> {
    if !path.is_dir() {
        return Ok(vec![path.to_path_buf()]);
    }
    let entries = std::fs::read_dir(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
        .collect();
    files.sort();
    Ok(files)
}

/// Runs one validation file. An unreadable or malformed file is an `Err`; a schema or
/// relationship Writ cannot load is a report whose assertions are all unsupported.
pub fn run_file(path: &Path) -> Result<FileReport, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let file: ValidationFile =
        serde_norway::from_str(&text).map_err(|e| format!("{}: not a validation file: {e}", path.display()))?;
    let mut report = FileReport { path: path.to_path_buf(), load_error: None, outcomes: Vec::new() };
    let planned = planned_assertions(&file)?;
    let loaded = load_schema(&file, path).and_then(|schema| load(&schema, file.relationships.as_deref()));
    match loaded {
        Err(error) => {
            report.load_error = Some(error);
            report.outcomes = planned
                .into_iter()
                .map(|p| AssertionOutcome {
                    kind: p.kind,
                    text: p.text,
                    expected: p.expected,
                    got: None,
                    explained: None,
                })
                .collect();
        }
        Ok((engine, store)) => {
            let store = engine.store(&store);
            for p in planned {
                let got = Some(
                    store
                        .as_ref()
                        .map_err(|e| e.to_string())
                        .and_then(|store| store.check_permissionship(&p.request).map_err(|e| e.to_string()))
                        .map(|answer| answer.value),
                );
                let explained = Some(
                    store
                        .as_ref()
                        .map_err(|e| e.to_string())
                        .and_then(|store| store.explain_permissionship(&p.request).map_err(|e| e.to_string()))
                        .map(|answer| explain_outcome(&answer.value)),
                );
                report.outcomes.push(AssertionOutcome {
                    kind: p.kind,
                    text: p.text,
                    expected: p.expected,
                    got,
                    explained,
                });
            }
        }
    }
    Ok(report)
}

/// Reads an explanation's three-valued root and whether its `missing_context` nodes name what
/// they lack.
fn explain_outcome(explanation: &Explanation) -> ExplainOutcome {
    fn visit(node: &ExplainNode, named: &mut usize, unnamed: &mut usize) {
        if let Some(Reason::MissingContext { condition, missing }) = &node.reason {
            if condition.is_empty() || missing.is_empty() {
                *unnamed += 1;
            } else {
                *named += 1;
            }
        }
        node.children.iter().for_each(|child| visit(child, named, unnamed));
    }
    let (mut named, mut unnamed) = (0, 0);
    visit(&explanation.tree, &mut named, &mut unnamed);
    let root = explanation.permissionship();
    let conditional_named = root != Some(Permissionship::Conditional) || named > 0 || explanation.cut;
    ExplainOutcome { root, names_missing: unnamed == 0 && conditional_named }
}

/// A fresh engine loaded with a validation file's schema and relationships (no assertions run);
/// returns the engine, its store id and the relationships' tuples as loaded.
pub fn load_file(path: &Path) -> Result<(Engine, String, Vec<Tuple>), String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let file: ValidationFile =
        serde_norway::from_str(&text).map_err(|e| format!("{}: not a validation file: {e}", path.display()))?;
    let schema = load_schema(&file, path)?;
    let (engine, store) = load(&schema, file.relationships.as_deref())?;
    let stored = engine
        .store(&store)
        .and_then(|handle| handle.read(&crate::engine::ReadFilter::default()))
        .map_err(|e| e.to_string())?
        .value;
    Ok((engine, store, stored.into_iter().map(|s| s.tuple).collect()))
}

/// One assertion, parsed, before it runs.
struct Planned {
    kind: &'static str,
    text: String,
    expected: Permissionship,
    request: CheckRequest,
}

fn planned_assertions(file: &ValidationFile) -> Result<Vec<Planned>, String> {
    let mut planned = Vec::new();
    let assertions = file.assertions.as_ref();
    let groups = [
        ("assertTrue", Permissionship::Allowed, assertions.and_then(|a| a.assert_true.as_ref())),
        ("assertFalse", Permissionship::Denied, assertions.and_then(|a| a.assert_false.as_ref())),
        ("assertCaveated", Permissionship::Conditional, assertions.and_then(|a| a.assert_caveated.as_ref())),
    ];
    for (kind, expected, list) in groups {
        for text in list.into_iter().flatten() {
            let request = parse_assertion(text)?;
            planned.push(Planned { kind, text: text.clone(), expected, request });
        }
    }
    for (resource, expected_subjects) in file.validation.iter().flatten() {
        let (object, relation) =
            resource.split_once('#').ok_or_else(|| format!("validation key `{resource}` is not `type:id#relation`"))?;
        for entry in expected_subjects.iter().flatten() {
            let Some((subject, caveated)) = validation_subject(entry) else { continue };
            let expected = if caveated { Permissionship::Conditional } else { Permissionship::Allowed };
            let request = CheckRequest {
                object: object.to_string(),
                relation: relation.to_string(),
                user: strip_ellipsis(subject).to_string(),
                ..CheckRequest::default()
            };
            planned.push(Planned { kind: "validation", text: format!("{resource} {entry}"), expected, request });
        }
    }
    Ok(planned)
}

/// The subject of a `validation` entry `[user:tom[caveat]] is <...>` and whether it is caveated;
/// `None` for wildcards and exclusion lists, which membership checks cannot express.
fn validation_subject(entry: &str) -> Option<(&str, bool)> {
    let inner = entry.trim().strip_prefix('[')?;
    let end = inner.find([']', '['])?;
    let subject = &inner[..end];
    if subject.ends_with(":*") || subject.contains(" - {") {
        return None;
    }
    Some((subject, inner[end..].starts_with('[')))
}

/// `res:id#perm@subj:id[#rel] [with {json}]` → a check request.
fn parse_assertion(text: &str) -> Result<CheckRequest, String> {
    let (relationship, context) = match text.split_once(" with ") {
        Some((relationship, json)) => (relationship, parse_context(json.trim())?),
        None => (text, Context::new()),
    };
    let (resource, subject) =
        relationship.trim().split_once('@').ok_or_else(|| format!("assertion `{text}` has no `@subject`"))?;
    let (object, relation) =
        resource.split_once('#').ok_or_else(|| format!("assertion `{text}` has no `#permission`"))?;
    Ok(CheckRequest {
        object: object.to_string(),
        relation: relation.to_string(),
        user: strip_ellipsis(subject).to_string(),
        context,
        ..CheckRequest::default()
    })
}

/// `user:tom#...` is SpiceDB's spelling of plain `user:tom`.
fn strip_ellipsis(subject: &str) -> &str {
    subject.strip_suffix("#...").unwrap_or(subject)
}

fn parse_context(json: &str) -> Result<Context, String> {
    match serde_json::from_str::<serde_json::Value>(json) {
        Ok(serde_json::Value::Object(map)) => Ok(map),
        Ok(_) => Err(format!("caveat context `{json}` is not a JSON object")),
        Err(e) => Err(format!("caveat context `{json}` is not JSON: {e}")),
    }
}

fn load_schema(file: &ValidationFile, path: &Path) -> Result<String, String> {
    match (&file.schema, &file.schema_file) {
        (Some(_), Some(_)) => Err("a validation file may give `schema` or `schemaFile`, not both".to_string()),
        (Some(schema), None) => Ok(schema.clone()),
        (None, Some(schema_file)) => {
            let dir = path.parent().unwrap_or_else(|| Path::new("."));
            if Path::new(schema_file).is_absolute() || schema_file.split('/').any(|part| part == "..") {
                return Err(format!("schemaFile `{schema_file}` must be a path inside the validation file's folder"));
            }
            std::fs::read_to_string(dir.join(schema_file))
                .map_err(|e| format!("cannot read schemaFile `{schema_file}`: {e}"))
        }
        (None, None) => Err("the validation file has no `schema`".to_string()),
    }
}

/// Longest object or subject reference SpiceDB accepts: a type (at most 128 bytes), `:`, an id (at
/// most 1024), `#` and a relation (at most 64).
const SPICEDB_MAX_REFERENCE_BYTES: usize = 128 + 1 + 1024 + 1 + 64;

/// A fresh engine with the schema and relationships loaded; returns it and the store id.
fn load(schema: &str, relationships: Option<&str>) -> Result<(Engine, String), String> {
    let model = Model::parse_zed(schema).map_err(|errors| {
        errors
            .iter()
            .map(|e| match e.span {
                Some(span) => format!("schema {}:{}: {}", span.line_start + 1, span.column_start + 1, e.message),
                None => format!("schema: {}", e.message),
            })
            .collect::<Vec<_>>()
            .join("; ")
    })?;
    // SpiceDB's own limits, not OpenFGA's: object ids up to 1024 characters (`extendedids.yaml`).
    let input = crate::engine::InputLimits {
        max_object_bytes: SPICEDB_MAX_REFERENCE_BYTES,
        max_user_bytes: SPICEDB_MAX_REFERENCE_BYTES,
        ..crate::engine::InputLimits::default()
    };
    let config = crate::EngineConfig { input, ..crate::EngineConfig::default() };
    let engine = Engine::in_memory_with(config);
    let store = engine.create_store("spicedb-validation").map_err(|e| e.to_string())?.id;
    let handle = engine.store(&store).map_err(|e| e.to_string())?;
    handle.write_model(model.clone()).map_err(|e| e.to_string())?;
    let now_ms =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0);
    // SpiceDB's loader refuses a relationship listed twice (even with another caveat).
    let mut seen = std::collections::HashSet::new();
    let mut writes: Vec<StoredTuple> = Vec::new();
    for line in relationships.unwrap_or_default().lines().map(str::trim) {
        if line.is_empty() || line.starts_with("//") {
            continue;
        }
        let stored = parse_relationship(line)?;
        if stored.expires_at_ms.is_some() && !admits_expiration(&model, &stored.tuple) {
            return Err(format!(
                "relationship `{line}` has an expiration, but relation `{}#{}` allows no `with expiration` subject of its kind",
                stored.tuple.object.object_type, stored.tuple.relation
            ));
        }
        if stored.expires_at_ms.is_some_and(|at| at <= now_ms) {
            continue; // already expired: SpiceDB never returns it
        }
        if !seen.insert(stored.tuple.to_string()) {
            return Err(format!("found repeated relationship `{line}`"));
        }
        writes.push(stored);
    }
    let batch = engine.config().max_tuples_per_write.max(1);
    for chunk in writes.chunks(batch) {
        let request = WriteRequest { writes: chunk.to_vec(), ignore_duplicates: true, ..WriteRequest::default() };
        handle.write(request).map_err(|e| format!("relationships: {e}"))?;
    }
    Ok((engine, store))
}

/// Whether the relation admits the tuple's kind of subject (type, relation or wildcard, caveat)
/// `with expiration`, as SpiceDB requires of a relationship that carries one.
fn admits_expiration(model: &Model, tuple: &Tuple) -> bool {
    let Some(relation) = model.relation(&tuple.object.object_type, &tuple.relation) else { return false };
    let (subject_type, subject_relation, wildcard) = match &tuple.subject {
        crate::tuple::Subject::Object(object) => (object.object_type.as_str(), None, false),
        crate::tuple::Subject::Wildcard(subject_type) => (subject_type.as_str(), None, true),
        crate::tuple::Subject::Userset { object, relation } => {
            (object.object_type.as_str(), Some(relation.as_str()), false)
        }
    };
    let condition = tuple.condition.as_ref().map(|c| c.name.as_str());
    relation.directly_related.iter().any(|r| {
        r.expiration
            && r.type_name == subject_type
            && r.relation.as_deref() == subject_relation
            && r.wildcard == wildcard
            && r.condition.as_deref() == condition
    })
}

/// `res:id#rel@subj:id[#rel][caveat[:{json}]][expiration:RFC3339]` → a tuple to store.
/// Public for the fuzz targets in `tests/fuzz` and the property tests.
pub fn parse_relationship(line: &str) -> Result<StoredTuple, String> {
    let bad = |why: &str| format!("relationship `{line}`: {why}");
    let (core, rest) = match line.find('[') {
        Some(at) => (&line[..at], &line[at..]),
        None => (line, ""),
    };
    let (resource, subject) = core.trim().split_once('@').ok_or_else(|| bad("no `@subject`"))?;
    let mut tuple: Tuple =
        format!("{resource}@{}", strip_ellipsis(subject)).parse().map_err(|e| bad(&format!("{e}")))?;
    let mut expires_at_ms = None;
    for group in bracket_groups(rest).map_err(|why| bad(&why))? {
        if let Some(timestamp) = group.strip_prefix("expiration:") {
            expires_at_ms = Some(parse_rfc3339(timestamp.trim()).ok_or_else(|| bad("bad expiration time"))?);
            continue;
        }
        let (name, context) = match group.split_once(':') {
            Some((name, json)) => (name, parse_context(json.trim()).map_err(|why| bad(&why))?),
            None => (group, Context::new()),
        };
        tuple.condition = Some(TupleCondition { name: name.trim().to_string(), context });
    }
    Ok(StoredTuple { tuple, expires_at_ms })
}

/// The contents of each top-level `[...]` group (brackets inside JSON strings, lists and
/// objects are balanced).
fn bracket_groups(text: &str) -> Result<Vec<&str>, String> {
    let mut groups = Vec::new();
    let mut depth = 0usize;
    let mut start = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for (at, c) in text.char_indices() {
        if in_string {
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => in_string = true,
            '[' | '{' => {
                if depth == 0 {
                    if c == '{' {
                        return Err("unexpected `{` outside brackets".to_string());
                    }
                    start = at + 1;
                }
                depth += 1;
            }
            ']' | '}' => {
                depth = depth.checked_sub(1).ok_or("unbalanced brackets")?;
                if depth == 0 {
                    groups.push(&text[start..at]);
                }
            }
            c if depth == 0 && !c.is_whitespace() => return Err(format!("unexpected `{c}` after the relationship")),
            _ => {}
        }
    }
    if depth != 0 || in_string {
        return Err("unclosed bracket".to_string());
    }
    Ok(groups)
}

/// `2023-12-01T00:00:00Z` (or with an offset, fractional seconds) → ms since the Unix epoch.
fn parse_rfc3339(text: &str) -> Option<i64> {
    // At most four digits per field (RFC 3339's widest, the year), so the arithmetic below cannot overflow.
    let number = |s: &str| -> Option<i64> {
        (s.len() <= 4 && s.bytes().all(|b| b.is_ascii_digit())).then(|| s.parse().ok()).flatten()
    };
    let (date, time) = text.split_once(['T', 't'])?;
    let mut date_parts = date.splitn(3, '-');
    let (year, month, day) = (number(date_parts.next()?)?, number(date_parts.next()?)?, number(date_parts.next()?)?);
    let (clock, offset_minutes) = if let Some(clock) = time.strip_suffix(['Z', 'z']) {
        (clock, 0)
    } else {
        let at = time.rfind(['+', '-'])?;
        let (hours, minutes) = time[at + 1..].split_once(':')?;
        let sign = if time[at..].starts_with('-') { -1 } else { 1 };
        (&time[..at], sign * (number(hours)? * 60 + number(minutes)?))
    };
    let (clock, fraction) = clock.split_once('.').unwrap_or((clock, ""));
    let mut clock_parts = clock.splitn(3, ':');
    let (hour, minute, second) =
        (number(clock_parts.next()?)?, number(clock_parts.next()?)?, number(clock_parts.next()?)?);
    let millis = if fraction.is_empty() { 0 } else { number(format!("{fraction:0<3}").get(..3)?)? };
    // Days from civil (Howard Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let year_of_era = y - era * 400;
    let shifted_month = (month + 9) % 12;
    let day_of_year = (153 * shifted_month + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    let days = era * 146_097 + day_of_era - 719_468;
    Some(((days * 24 + hour) * 60 + minute - offset_minutes) * 60_000 + second * 1000 + millis)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_relationships_with_caveats_and_expiration() {
        let stored =
            parse_relationship(r#"doc:1#viewer@user:tom[c:{"a":[1,2],"s":"x]"}][expiration:1970-01-02T00:00:00Z]"#)
                .unwrap();
        assert_eq!(stored.tuple.to_string(), "doc:1#viewer@user:tom");
        assert_eq!(stored.tuple.condition.unwrap().context["s"], "x]");
        assert_eq!(stored.expires_at_ms, Some(86_400_000));
        assert!(parse_relationship("doc:1#viewer@user:tom#...").unwrap().tuple.condition.is_none());
        assert!(parse_relationship("doc:1#viewer@user:tom junk").is_err());
    }

    #[test]
    fn reads_assertions_with_context() {
        let request = parse_assertion(r#"doc:1#view@user:tom with {"a": 1}"#).unwrap();
        assert_eq!((request.object.as_str(), request.user.as_str()), ("doc:1", "user:tom"));
        assert_eq!(request.context["a"], 1);
    }

    #[test]
    fn expiration_needs_the_trait() {
        let model = Model::parse_zed(
            "use expiration\ndefinition user {}\ndefinition doc { relation a: user with expiration\n relation b: user }",
        )
        .unwrap();
        assert!(admits_expiration(&model, &"doc:1#a@user:x".parse().unwrap()));
        assert!(!admits_expiration(&model, &"doc:1#b@user:x".parse().unwrap()));
        let error = load(
            "use expiration\ndefinition user {}\ndefinition doc { relation b: user }",
            Some("doc:1#b@user:x[expiration:2999-01-01T00:00:00Z]"),
        )
        .err()
        .unwrap();
        assert!(error.contains("with expiration"), "{error}");
    }

    #[test]
    fn reads_validation_subjects() {
        assert_eq!(validation_subject("[user:tom] is <doc:1#viewer>"), Some(("user:tom", false)));
        assert_eq!(validation_subject("[user:tom[c]] is <doc:1#viewer>"), Some(("user:tom", true)));
        assert_eq!(validation_subject("[user:*] is <doc:1#viewer>"), None);
    }

    #[test]
    fn parses_rfc3339_times() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_rfc3339("2000-03-01T01:00:00.5+01:00"), Some(951_868_800_500));
    }
}
