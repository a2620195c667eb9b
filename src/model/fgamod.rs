//! `fga.mod` manifests of modular models: `schema: '1.2'` and `contents: [files]`, read with the
//! line and column of every value, and checked with OpenFGA's rules and messages.
//!
//! What it owns: a reader for the small YAML subset a manifest uses (top-level `key: value`
//! pairs; a value is a scalar, a block sequence of scalars or a flow sequence `[a, b]`; comments),
//! and the manifest checks: `schema` present, a string, `1.2`; `contents` present, a list of
//! strings, each a relative `.fga` path (percent-decoded, `\` read as `/`, no `../`, not absolute).
//! Invariant: never panics; every problem is reported with a 0-based line/column span.
//! Must not import anything outside `model`.

use super::Span;
use serde::Serialize;

/// A 0-based `start`/`end` pair, as OpenFGA's manifest JSON writes lines and columns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
pub struct ModRange {
    /// First line or column.
    pub start: u32,
    /// Last line, or the column just past the end.
    pub end: u32,
}

/// A manifest value with where it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ModProperty<T> {
    /// The value.
    pub value: T,
    /// Lines it spans.
    pub line: ModRange,
    /// Columns it spans.
    pub column: ModRange,
}

/// A checked `fga.mod` manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ModManifest {
    /// The schema version (always `1.2`).
    pub schema: ModProperty<String>,
    /// The module files, relative to the manifest's folder, in order.
    pub contents: ModProperty<Vec<ModProperty<String>>>,
}

/// One problem in a manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModFileError {
    /// OpenFGA's message, e.g. `missing schema field`.
    pub message: String,
    /// Where (all zero when the problem has no place, like a missing field).
    pub span: Span,
}

/// `line:column: message`, 1-based as editors count.
impl std::fmt::Display for ModFileError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}: {}", self.span.line_start + 1, self.span.column_start + 1, self.message)
    }
}

impl std::error::Error for ModFileError {}

/// What a YAML value is.
#[derive(Debug, Clone, PartialEq)]
enum Node {
    /// A string (quoted, or plain and not a bool, number or null).
    Str(String),
    /// A plain scalar read as a bool, number or null; the text as written.
    Other(String),
    /// A sequence of nodes.
    Seq(Vec<Located>),
    /// A block mapping nested under a key.
    Map,
}

#[derive(Debug, Clone, PartialEq)]
struct Located {
    node: Node,
    span: Span,
}

fn span(line: usize, start: usize, end_line: usize, end: usize) -> Span {
    let n = |x: usize| u32::try_from(x).unwrap_or(u32::MAX);
    Span { line_start: n(line), line_end: n(end_line), column_start: n(start), column_end: n(end) }
}

fn error(message: impl Into<String>, span: Span) -> ModFileError {
    ModFileError { message: message.into(), span }
}

/// Column index (in chars) of the end of `text` with a trailing ` #comment` and spaces removed.
fn strip_comment(text: &str) -> &str {
    let mut quote: Option<char> = None;
    let mut prev_space = true;
    for (i, c) in text.char_indices() {
        match (quote, c) {
            (None, '\'' | '"') if prev_space || i == 0 => quote = Some(c),
            (Some(q), _) if q == c => quote = None,
            (None, '#') if prev_space => return text[..i].trim_end(),
            _ => {}
        }
        prev_space = c == ' ' || c == '\t';
    }
    text.trim_end()
}

/// Reads one scalar or flow sequence written at `line`, starting at char column `col`.
fn scalar(text: &str, line: usize, col: usize, errors: &mut Vec<ModFileError>) -> Located {
    let len = text.chars().count();
    let whole = span(line, col, line, col + len);
    if let Some(inner) = text.strip_prefix('[') {
        let Some(inner) = inner.strip_suffix(']') else {
            errors
                .push(error("Flow sequence in block collection must be sufficiently indented and end with a ]", whole));
            return Located { node: Node::Seq(Vec::new()), span: whole };
        };
        let mut items = Vec::new();
        let mut offset = col + 1;
        for part in inner.split(',') {
            let lead = part.chars().take_while(|c| c.is_whitespace()).count();
            let item = part.trim();
            if !item.is_empty() {
                items.push(scalar(item, line, offset + lead, errors));
            }
            offset += part.chars().count() + 1;
        }
        return Located { node: Node::Seq(items), span: whole };
    }
    let node = if let Some(q) = text.chars().next().filter(|c| *c == '\'' || *c == '"') {
        let body = text.strip_prefix(q).and_then(|t| t.strip_suffix(q));
        match body {
            Some(body) if q == '\'' => Node::Str(body.replace("''", "'")),
            Some(body) => Node::Str(unescape_double(body)),
            None => {
                errors.push(error("Missing closing quote", whole));
                Node::Str(text.to_string())
            }
        }
    } else if text.starts_with('{') {
        Node::Map
    } else if is_plain_non_string(text) {
        Node::Other(text.to_string())
    } else {
        Node::Str(text.to_string())
    };
    Located { node, span: whole }
}

fn unescape_double(body: &str) -> String {
    let mut out = String::new();
    let mut chars = body.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some(other) => out.push(other),
            None => out.push('\\'),
        }
    }
    out
}

/// YAML 1.2 core schema: bools, nulls, ints and floats are not strings.
fn is_plain_non_string(text: &str) -> bool {
    let lower = text.to_ascii_lowercase();
    if matches!(lower.as_str(), "true" | "false" | "null" | "~" | "" | ".inf" | "-.inf" | "+.inf" | ".nan") {
        return true;
    }
    let digits = text.strip_prefix(['-', '+']).unwrap_or(text);
    if let Some(hex) = digits.strip_prefix("0x") {
        return !hex.is_empty() && hex.chars().all(|c| c.is_ascii_hexdigit());
    }
    if let Some(oct) = digits.strip_prefix("0o") {
        return !oct.is_empty() && oct.chars().all(|c| c.is_digit(8));
    }
    let mut seen_digit = false;
    let mut seen_dot = false;
    let mut chars = digits.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '0'..='9' => seen_digit = true,
            '.' if !seen_dot => seen_dot = true,
            'e' | 'E' if seen_digit => {
                chars.next_if(|c| *c == '-' || *c == '+');
                return chars.peek().is_some() && chars.all(|c| c.is_ascii_digit());
            }
            _ => return false,
        }
    }
    seen_digit
}

/// Top-level `key: value` pairs of the manifest, in order.
fn read_yaml(text: &str, errors: &mut Vec<ModFileError>) -> Vec<(String, Span, Located)> {
    let lines: Vec<&str> = text.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l)).collect();
    let mut pairs: Vec<(String, Span, Located)> = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let raw = lines.get(i).copied().unwrap_or_default();
        let content = strip_comment(raw);
        if content.trim().is_empty() || (i == 0 && content == "---") {
            i += 1;
            continue;
        }
        let indent = content.chars().take_while(|c| *c == ' ').count();
        let Some((key, rest)) = content.split_once(':').filter(|(_, r)| r.is_empty() || r.starts_with(' ')) else {
            let len = content.chars().count();
            errors.push(error("Implicit map keys need to be followed by map values", span(i, indent, i, len)));
            i += 1;
            continue;
        };
        if indent > 0 {
            errors.push(error("All mapping items must start at the same column", span(i, 0, i, indent)));
            i += 1;
            continue;
        }
        let key_len = key.chars().count();
        let key_span = span(i, 0, i, key_len);
        let key = key.trim().trim_matches(|c| c == '"' || c == '\'').to_string();
        let value_text = rest.trim_start();
        let value_col = key_len + 1 + (rest.chars().count() - value_text.chars().count());
        let value = if value_text.is_empty() {
            let (node, next) = block_value(&lines, i + 1, errors);
            i = next;
            node.unwrap_or(Located { node: Node::Other("null".into()), span: span(i, value_col, i, value_col) })
        } else {
            i += 1;
            scalar(value_text, i - 1, value_col, errors)
        };
        if pairs.iter().any(|(k, _, _)| *k == key) {
            errors.push(error("Map keys must be unique", key_span));
        }
        pairs.push((key, key_span, value));
    }
    pairs
}

/// The block value after a `key:` line: a `- item` sequence or an indented mapping. Returns the
/// value (if any) and the index of the first line after it.
fn block_value(lines: &[&str], from: usize, errors: &mut Vec<ModFileError>) -> (Option<Located>, usize) {
    let mut items = Vec::new();
    let mut start: Option<(usize, usize)> = None;
    let mut end = (from, 0);
    let mut is_map = false;
    let mut i = from;
    while let Some(raw) = lines.get(i) {
        let content = strip_comment(raw);
        if content.trim().is_empty() {
            i += 1;
            continue;
        }
        let indent = content.chars().take_while(|c| *c == ' ').count();
        let body = content.trim_start();
        let is_item = body == "-" || body.starts_with("- ");
        if indent == 0 && !is_item {
            break;
        }
        if is_item {
            start.get_or_insert((i, indent));
            let text = body.strip_prefix('-').unwrap_or_default().trim_start();
            let col = indent + 1 + (body.chars().count() - 1 - text.chars().count());
            items.push(if text.is_empty() {
                Located { node: Node::Other("null".into()), span: span(i, col, i, col) }
            } else {
                scalar(text, i, col, errors)
            });
        } else {
            start.get_or_insert((i, indent));
            is_map = true;
        }
        i += 1;
        end = if i < lines.len() { (i, 0) } else { (i - 1, raw.chars().count()) };
    }
    let Some((line, col)) = start else {
        return (None, i);
    };
    let whole = span(line, col, end.0, end.1);
    if is_map && items.is_empty() {
        return (Some(Located { node: Node::Map, span: whole }), i);
    }
    if is_map {
        errors.push(error("A block sequence may not be used as an implicit map key", whole));
    }
    (Some(Located { node: Node::Seq(items), span: whole }), i)
}

fn ranges(span: Span) -> (ModRange, ModRange) {
    (
        ModRange { start: span.line_start, end: span.line_end },
        ModRange { start: span.column_start, end: span.column_end },
    )
}

fn property<T>(value: T, span: Span) -> ModProperty<T> {
    let (line, column) = ranges(span);
    ModProperty { value, line, column }
}

fn describe(node: &Node) -> String {
    match node {
        Node::Str(s) | Node::Other(s) => s.clone(),
        Node::Seq(items) => items.iter().map(|i| describe(&i.node)).collect::<Vec<_>>().join(","),
        Node::Map => "[object Object]".into(),
    }
}

/// Decodes `%XX` escapes (and `+` as a space), as Go's `url.QueryUnescape` does.
fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'%' => {
                let hex = bytes.get(i + 1..i + 3)?;
                let hex = std::str::from_utf8(hex).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            _ => {
                out.push(b);
                i += 1;
            }
        }
    }
    Some(String::from_utf8_lossy(&out).into_owned())
}

/// Reads and checks an `fga.mod` manifest; every problem found is returned.
pub fn parse_fga_mod(text: &str) -> Result<ModManifest, Vec<ModFileError>> {
    let mut errors = Vec::new();
    let pairs = read_yaml(text, &mut errors);
    let get = |key: &str| pairs.iter().find(|(k, _, _)| k == key).map(|(_, _, v)| v);
    let mut schema = None;
    match get("schema") {
        None => errors.push(error("missing schema field", Span::default())),
        Some(Located { node: Node::Str(s), span }) if s == "1.2" => schema = Some(property(s.clone(), *span)),
        Some(Located { node: Node::Str(_), span }) => {
            errors.push(error("unsupported schema version, fga.mod only supported in version `1.2`", *span));
        }
        Some(other) => {
            let msg = format!("unexpected schema type, expected string got value {}", describe(&other.node));
            errors.push(error(msg, other.span));
        }
    }
    let mut contents = None;
    match get("contents") {
        None => errors.push(error("missing contents field", Span::default())),
        Some(Located { node: Node::Seq(items), span }) => {
            let files = items.iter().filter_map(|item| content_item(item, &mut errors)).collect();
            contents = Some(property(files, *span));
        }
        Some(other) => {
            let msg = format!("unexpected contents type, expected list of strings got value {}", describe(&other.node));
            errors.push(error(msg, other.span));
        }
    }
    match (schema, contents) {
        (Some(schema), Some(contents)) if errors.is_empty() => Ok(ModManifest { schema, contents }),
        _ => Err(errors),
    }
}

fn content_item(item: &Located, errors: &mut Vec<ModFileError>) -> Option<ModProperty<String>> {
    let Node::Str(raw) = &item.node else {
        let msg = format!("unexpected contents item type, expected string got value {}", describe(&item.node));
        errors.push(error(msg, item.span));
        return None;
    };
    let Some(decoded) = percent_decode(raw) else {
        errors.push(error(format!("failed to decode path: {raw}"), item.span));
        return None;
    };
    let path = decoded.replace('\\', "/");
    if path.contains("../") || path.starts_with('/') {
        errors.push(error(format!("invalid contents item {raw}"), item.span));
        return None;
    }
    if !path.ends_with(".fga") {
        errors.push(error(format!("contents items should use fga file extension, got {raw}"), item.span));
        return None;
    }
    Some(property(path, item.span))
}
