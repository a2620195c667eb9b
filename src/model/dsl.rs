//! OpenFGA DSL text (schema 1.1, plus module headers) → [`Model`] (unvalidated) and a
//! [`SourceMap`] of the spans the model itself does not keep.
//!
//! What it owns: the grammar of OpenFGA's modeling language, including its operator-mixing
//! rules (one operator kind per level, `but not` once, `[...]` only first), and the errors the
//! OpenFGA parser raises while reading (duplicate relations, conditions and parameters).
//! Invariant: never panics; on the first grammar error, parsing stops and that error is returned.
//! Must not import anything outside `model`.

use super::lexer::{syntax_error, Cursor};
use super::{
    ConditionDef, ConditionParam, Model, ParamType, RelationDef, Rewrite, SchemaError, Span, TypeDef, TypeRestriction,
};

/// Spans of one direct type restriction.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct RestrictionSpan {
    /// `group#member` / `user:*` / `user` (without the condition).
    pub(super) whole: Span,
    /// Just the type name.
    pub(super) type_name: Span,
    /// The condition name after `with`.
    pub(super) condition: Option<Span>,
}

/// Source positions the [`Model`] does not hold.
#[derive(Debug, Clone, Default)]
pub(super) struct SourceMap {
    /// Where the schema version is.
    pub(super) schema: Option<Span>,
    /// Restriction spans by `[type][relation][restriction]`.
    pub(super) restrictions: Vec<Vec<Vec<RestrictionSpan>>>,
    /// True when the text had a `module` header instead of `model`.
    pub(super) module: bool,
    /// The name after `module`, for modular files.
    pub(super) module_name: Option<String>,
    /// Indexes into `Model::types` of the `extend type` blocks.
    pub(super) extended: Vec<usize>,
}

impl SourceMap {
    /// The spans of restriction `k` of relation `j` of type `i`.
    pub(super) fn restriction(&self, i: usize, j: usize, k: usize) -> Option<&RestrictionSpan> {
        self.restrictions.get(i)?.get(j)?.get(k)
    }
}

type PResult<T> = Result<T, SchemaError>;

/// What ANTLR lists where an identifier may stand (keywords are identifiers too).
/// Deepest parenthesis nesting in one relation definition. Parsing, validation and evaluation
/// recurse once per level, so without a bound a hostile model overflows the stack.
pub(crate) const MAX_NESTING: usize = 64;

const IDENTIFIERS: &str = "IDENTIFIER, 'module', 'model', 'schema', 'extend', 'type', 'relation', EXTENDED_IDENTIFIER";

/// What the direct `[...]` part of one relation collected.
#[derive(Default)]
struct Direct {
    restrictions: Vec<TypeRestriction>,
    spans: Vec<RestrictionSpan>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Op {
    Or,
    And,
    ButNot,
}

struct Parser {
    cur: Cursor,
    model: Model,
    source: SourceMap,
    errors: Vec<SchemaError>,
    extended: Vec<String>,
    /// Open parentheses around the cursor.
    nesting: usize,
}

/// Parses DSL text; returns the model and the spans validation needs.
pub(super) fn parse(text: &str) -> Result<(Model, SourceMap), Vec<SchemaError>> {
    let mut p = Parser {
        cur: Cursor::new(text),
        model: Model { schema_version: String::new(), types: Vec::new(), conditions: Vec::new() },
        source: SourceMap::default(),
        errors: Vec::new(),
        extended: Vec::new(),
        nesting: 0,
    };
    if let Err(e) = p.run() {
        p.errors.push(e);
    }
    if p.errors.is_empty() {
        Ok((p.model, p.source))
    } else {
        Err(p.errors)
    }
}

impl Parser {
    fn run(&mut self) -> PResult<()> {
        self.cur.trivia();
        if self.cur.at_keyword("module") {
            self.module_header()?;
        } else {
            self.model_header()?;
        }
        loop {
            self.cur.trivia();
            if self.cur.at_eof() {
                return Ok(());
            }
            if self.cur.at_keyword("type") {
                self.type_def()?;
            } else if self.cur.at_keyword("condition") {
                self.condition()?;
            } else if self.cur.at_keyword("extend") {
                self.extend()?;
            } else {
                let (tok, span) = self.cur.token_span();
                return Err(syntax_error(format!("no viable alternative at input '\\n{tok}'"), span, tok));
            }
        }
    }

    fn require_ws(&mut self) -> PResult<()> {
        if self.cur.ws() == 0 {
            return Err(self.cur.expected("WHITESPACE"));
        }
        Ok(())
    }

    /// After a statement: optional spaces and a trailing comment, then a newline or the end.
    fn end_of_line(&mut self) -> PResult<()> {
        let start = self.cur.pos;
        let n = self.cur.ws();
        match self.cur.peek() {
            None | Some('\n' | '\r') => Ok(()),
            Some('#') if n > 0 => {
                self.cur.skip_line();
                Ok(())
            }
            _ if n > 0 => {
                let text = self.cur.slice(start.idx, self.cur.pos.idx);
                let msg = format!("mismatched input '{text}' expecting {{<EOF>, NEWLINE}}");
                Err(syntax_error(msg, self.cur.span_from(start), text))
            }
            _ => {
                let (tok, span) = self.cur.token_span();
                let alone = matches!(self.cur.peek_at(1), None | Some('\n' | '\r'));
                let kind = if alone { "extraneous" } else { "mismatched" };
                let msg = format!("{kind} input '{tok}' expecting {{<EOF>, NEWLINE}}");
                Err(syntax_error(msg, span, tok))
            }
        }
    }

    /// An identifier that must be present.
    fn name(&mut self, expecting: &str) -> PResult<(String, Span)> {
        let (name, span) = self.cur.ident();
        if name.is_empty() {
            return Err(self.cur.expected(expecting));
        }
        Ok((name, span))
    }

    fn model_header(&mut self) -> PResult<()> {
        if !self.cur.at_keyword("model") {
            let (tok, span) = self.cur.token_span();
            let expecting = "{WHITESPACE, '#', 'module', 'model', NEWLINE}";
            let msg = format!("extraneous input '{tok}' expecting {expecting}");
            return Err(syntax_error(msg, span, tok));
        }
        self.cur.eat("model");
        self.end_of_line()?;
        self.cur.trivia();
        if !self.cur.at_keyword("schema") {
            return Err(self.cur.expected("'schema'"));
        }
        self.cur.eat("schema");
        self.require_ws()?;
        self.schema_version()?;
        self.end_of_line()
    }

    fn schema_version(&mut self) -> PResult<()> {
        let start = self.cur.pos;
        while self.cur.peek().is_some_and(|c| !c.is_whitespace() && c != '#') {
            self.cur.bump();
        }
        let text = self.cur.slice(start.idx, self.cur.pos.idx);
        let span = self.cur.span_from(start);
        let valid = text.split_once('.').is_some_and(|(a, b)| {
            !a.is_empty() && !b.is_empty() && a.chars().chain(b.chars()).all(|c| c.is_ascii_digit())
        });
        if !valid {
            let msg = format!("mismatched input '{text}' expecting SCHEMA_VERSION");
            return Err(syntax_error(msg, span, text));
        }
        self.model.schema_version = text;
        self.source.schema = Some(span);
        Ok(())
    }

    fn module_header(&mut self) -> PResult<()> {
        self.cur.eat("module");
        if self.cur.ws() == 0 || matches!(self.cur.peek(), Some('\n' | '\r') | None) {
            return Err(self.missing_module_name());
        }
        let (name, _) = self.name("IDENTIFIER")?;
        self.source.module = true;
        self.source.module_name = Some(name);
        self.end_of_line()
    }

    /// `module` followed by newlines: ANTLR reports the newlines right after the keyword.
    fn missing_module_name(&mut self) -> SchemaError {
        let start = self.cur.pos;
        self.cur.ws_nl();
        let text = self.cur.slice(start.idx, self.cur.pos.idx);
        let newlines = text.matches('\n').count() as u32;
        let shown = "\\n".repeat(newlines as usize);
        let col = start.col.min(6);
        let span = Span { line_start: start.line, line_end: start.line, column_start: col, column_end: col + newlines };
        let msg = format!("mismatched input '{shown}' expecting WHITESPACE");
        syntax_error(msg, span, shown)
    }

    fn extend(&mut self) -> PResult<()> {
        self.cur.eat("extend");
        self.require_ws()?;
        if !self.cur.at_keyword("type") {
            return Err(self.cur.expected("'type'"));
        }
        let before = self.model.types.len();
        self.type_def()?;
        if let Some(t) = self.model.types.get(before) {
            let (name, span) = (t.name.clone(), t.span);
            if !self.source.module {
                let msg = "extend can only be used in a modular model".to_string();
                self.errors.push(syntax_error(msg, span, name.clone()));
            }
            if self.extended.contains(&name) {
                let msg = format!("'{name}' is already extended in file.");
                self.errors.push(syntax_error(msg, span, name.clone()));
            }
            self.extended.push(name);
            self.source.extended.push(before);
        }
        Ok(())
    }

    fn type_def(&mut self) -> PResult<()> {
        self.cur.eat("type");
        self.require_ws()?;
        let (name, span) = self.name("IDENTIFIER")?;
        self.end_of_line()?;
        self.model.types.push(TypeDef { name, relations: Vec::new(), span });
        self.source.restrictions.push(Vec::new());
        self.cur.trivia();
        if self.cur.at_keyword("define") {
            let (tok, span) = self.cur.token_span();
            return Err(syntax_error(format!("no viable alternative at input '\\n  {tok}'"), span, tok));
        }
        if !self.cur.at_keyword("relations") {
            return Ok(());
        }
        self.cur.eat("relations");
        self.end_of_line()?;
        self.relations()
    }

    fn relations(&mut self) -> PResult<()> {
        let mut count = 0;
        loop {
            self.cur.trivia();
            if !self.cur.at_keyword("define") {
                break;
            }
            self.relation()?;
            count += 1;
        }
        if count == 0 {
            let (tok, span) = self.cur.token_span();
            return Err(syntax_error(format!("no viable alternative at input '\\n    {tok}'"), span, tok));
        }
        Ok(())
    }

    fn relation(&mut self) -> PResult<()> {
        self.cur.eat("define");
        self.require_ws()?;
        let (name, span) = self.name("IDENTIFIER")?;
        self.cur.ws();
        if self.cur.eat(":") {
            self.cur.ws();
        } else {
            let (tok, tspan) = self.cur.token_span();
            let msg = format!("missing ':' at '{tok}'");
            self.errors.push(syntax_error(msg, tspan, tok));
        }
        let mut direct = Direct::default();
        let rewrite = self.relation_def(true, &mut direct)?;
        self.end_of_line()?;
        self.push_relation(RelationDef { name, rewrite, directly_related: direct.restrictions, span }, direct.spans);
        Ok(())
    }

    fn push_relation(&mut self, rel: RelationDef, spans: Vec<RestrictionSpan>) {
        let Some(t) = self.model.types.last_mut() else {
            return;
        };
        if t.relation(&rel.name).is_some() {
            let msg = format!("'{}' is already defined in '{}'", rel.name, t.name);
            self.errors.push(syntax_error(msg, rel.span, rel.name.clone()));
        }
        t.relations.push(rel);
        if let Some(s) = self.source.restrictions.last_mut() {
            s.push(spans);
        }
    }

    /// `first (op operand)*` with one operator kind; `[...]` allowed first only when `allow_direct`.
    fn relation_def(&mut self, allow_direct: bool, direct: &mut Direct) -> PResult<Rewrite> {
        let first = self.operand(allow_direct, direct)?;
        self.partials(first, direct)
    }

    fn operand(&mut self, allow_direct: bool, direct: &mut Direct) -> PResult<Rewrite> {
        match self.cur.peek() {
            Some('[') if allow_direct => {
                self.direct(direct)?;
                Ok(Rewrite::This)
            }
            Some('[') => {
                let (tok, span) = self.cur.token_span();
                let msg = format!("extraneous input '{tok}' expecting {{'(', {IDENTIFIERS}}}");
                self.errors.push(syntax_error(msg, span, tok));
                self.cur.bump();
                self.rewrite_ref()
            }
            Some('(') => self.parenthesized(allow_direct, direct),
            _ => self.rewrite_ref(),
        }
    }

    fn parenthesized(&mut self, allow_direct: bool, direct: &mut Direct) -> PResult<Rewrite> {
        if self.nesting >= MAX_NESTING {
            let (tok, span) = self.cur.token_span();
            let msg = format!("parentheses nested deeper than {MAX_NESTING} levels");
            return Err(syntax_error(msg, span, tok));
        }
        self.cur.eat("(");
        self.cur.ws();
        self.nesting += 1;
        let inner = self.relation_def(allow_direct, direct);
        self.nesting -= 1;
        let inner = inner?;
        self.cur.ws();
        if !self.cur.eat(")") {
            let (tok, span) = self.cur.token_span();
            let msg = format!("extraneous input '{tok}' expecting {{')', WHITESPACE}}");
            return Err(syntax_error(msg, span, tok));
        }
        Ok(inner)
    }

    /// The operator after whitespace at the cursor, if any (not consumed).
    fn peek_op(&self) -> Option<Op> {
        if self.cur.at_keyword("or") {
            Some(Op::Or)
        } else if self.cur.at_keyword("and") {
            Some(Op::And)
        } else if self.cur.at_keyword("but not") {
            Some(Op::ButNot)
        } else {
            None
        }
    }

    fn partials(&mut self, first: Rewrite, direct: &mut Direct) -> PResult<Rewrite> {
        let mut op: Option<Op> = None;
        let mut children = vec![first];
        loop {
            let save = self.cur.pos;
            let next = if self.cur.ws() > 0 { self.peek_op() } else { None };
            let Some(next) = next.filter(|n| op.is_none() || (op == Some(*n) && *n != Op::ButNot)) else {
                self.cur.pos = save;
                break;
            };
            self.cur.eat(match next {
                Op::Or => "or",
                Op::And => "and",
                Op::ButNot => "but not",
            });
            self.require_ws()?;
            children.push(self.operand(false, direct)?);
            op = Some(next);
        }
        Ok(build(op, children))
    }

    /// `relation` or `relation from tupleset`.
    fn rewrite_ref(&mut self) -> PResult<Rewrite> {
        let start = self.cur.pos;
        let (name, span) = self.cur.ident();
        if name.is_empty() || matches!(name.as_str(), "or" | "and" | "but") {
            self.cur.pos = start;
            return Err(self.cur.expected(&format!("{{'[', '(', {IDENTIFIERS}}}")));
        }
        let save = self.cur.pos;
        if self.cur.ws() > 0 && self.cur.at_keyword("from") {
            self.cur.eat("from");
            self.require_ws()?;
            let (tupleset, _) = self.name("IDENTIFIER")?;
            return Ok(Rewrite::TupleToUserset { tupleset, computed: name, span: self.cur.span_from(start) });
        }
        self.cur.pos = save;
        Ok(Rewrite::Computed { relation: name, span })
    }

    fn direct(&mut self, direct: &mut Direct) -> PResult<()> {
        self.cur.eat("[");
        loop {
            self.cur.ws_nl();
            self.restriction(direct)?;
            self.cur.ws_nl();
            if self.cur.eat(",") {
                continue;
            }
            if self.cur.eat("]") {
                return Ok(());
            }
            return Err(self.cur.expected("{',', WHITESPACE, ']'}"));
        }
    }

    fn restriction(&mut self, direct: &mut Direct) -> PResult<()> {
        let start = self.cur.pos;
        if self.cur.peek() == Some(']') {
            return Err(self.empty_restriction());
        }
        let (type_name, type_span) = self.name(&format!("{{{IDENTIFIERS}}}"))?;
        let mut r = TypeRestriction { type_name, relation: None, wildcard: false, condition: None, expiration: false };
        if self.cur.eat(":") {
            if !self.cur.eat("*") {
                return Err(self.cur.expected("'*'"));
            }
            r.wildcard = true;
        } else if self.cur.eat("#") {
            r.relation = Some(self.name("IDENTIFIER")?.0);
        }
        let whole = self.cur.span_from(start);
        let save = self.cur.pos;
        let mut condition = None;
        if self.cur.ws() > 0 && self.cur.at_keyword("with") {
            self.cur.eat("with");
            self.require_ws()?;
            let (c, cspan) = self.name("IDENTIFIER")?;
            r.condition = Some(c);
            condition = Some(cspan);
        } else {
            self.cur.pos = save;
        }
        direct.restrictions.push(r);
        direct.spans.push(RestrictionSpan { whole, type_name: type_span, condition });
        Ok(())
    }

    /// `[]` / `[ ]`: ANTLR drops the `]` and names what could have stood there.
    fn empty_restriction(&self) -> SchemaError {
        let (tok, span) = self.cur.token_span();
        let after_bracket = self.cur.prev() == Some('[');
        let ws = if after_bracket { "WHITESPACE, " } else { "" };
        let msg = format!("extraneous input '{tok}' expecting {{{ws}{IDENTIFIERS}, NEWLINE}}");
        syntax_error(msg, span, tok)
    }

    fn condition(&mut self) -> PResult<()> {
        self.cur.eat("condition");
        self.require_ws()?;
        let (name, span) = self.name("IDENTIFIER")?;
        self.cur.ws();
        if !self.cur.eat("(") {
            return Err(self.cur.expected("'('"));
        }
        let parameters = self.condition_params(&name)?;
        self.cur.ws_nl();
        if !self.cur.eat("{") {
            return Err(self.cur.expected("'{'"));
        }
        let expression = self.condition_expression()?;
        if self.model.condition(&name).is_some() {
            let msg = format!("condition '{name}' is already defined in the model");
            self.errors.push(syntax_error(msg, span, name.clone()));
        }
        self.model.conditions.push(ConditionDef { name, parameters, expression, span });
        self.end_of_line()
    }

    fn condition_params(&mut self, cond: &str) -> PResult<Vec<ConditionParam>> {
        let mut params: Vec<ConditionParam> = Vec::new();
        loop {
            self.cur.ws_nl();
            let start = self.cur.pos;
            let (name, span) = self.name("{WHITESPACE, IDENTIFIER, NEWLINE}")?;
            if base_param_type(&name).is_some() || name == "list" || name == "map" {
                self.cur.pos = start;
                return Err(self.cur.expected("{WHITESPACE, IDENTIFIER, NEWLINE}"));
            }
            self.cur.ws();
            if !self.cur.eat(":") {
                return Err(self.cur.expected("':'"));
            }
            self.cur.ws();
            let type_name = self.param_type()?;
            if params.iter().any(|p| p.name == name) {
                let msg = format!("parameter '{name}' is already defined in the condition '{cond}'");
                self.errors.push(syntax_error(msg, span, name.clone()));
            }
            params.push(ConditionParam { name, type_name });
            self.cur.ws_nl();
            if self.cur.eat(",") {
                continue;
            }
            if self.cur.eat(")") {
                return Ok(params);
            }
            return Err(self.cur.expected("{',', ')'}"));
        }
    }

    fn param_type(&mut self) -> PResult<ParamType> {
        let start = self.cur.pos;
        let (word, _) = self.cur.ident();
        if let Some(t) = base_param_type(&word) {
            return Ok(t);
        }
        if word != "list" && word != "map" {
            self.cur.pos = start;
            return Err(self.cur.expected("CONDITION_PARAM_TYPE"));
        }
        if !self.cur.eat("<") {
            return Err(self.cur.expected("'<'"));
        }
        let inner_start = self.cur.pos;
        let (inner, _) = self.cur.ident();
        let Some(inner) = base_param_type(&inner) else {
            self.cur.pos = inner_start;
            return Err(self.cur.expected("CONDITION_PARAM_TYPE"));
        };
        if !self.cur.eat(">") {
            return Err(self.cur.expected("'>'"));
        }
        Ok(if word == "list" { ParamType::List(Box::new(inner)) } else { ParamType::Map(Box::new(inner)) })
    }

    /// The CEL text up to the first `}` outside a string literal, trimmed.
    fn condition_expression(&mut self) -> PResult<String> {
        let start = self.cur.pos.idx;
        let mut quote: Option<char> = None;
        loop {
            let Some(c) = self.cur.peek() else {
                return Err(self.cur.expected("'}'"));
            };
            match (quote, c) {
                (None, '}') => break,
                (None, '"' | '\'') => quote = Some(c),
                (Some(_), '\\') => {
                    self.cur.bump();
                }
                (Some(q), _) if q == c => quote = None,
                _ => {}
            }
            self.cur.bump();
        }
        let text = self.cur.slice(start, self.cur.pos.idx);
        self.cur.eat("}");
        Ok(text.trim().to_string())
    }
}

fn build(op: Option<Op>, mut children: Vec<Rewrite>) -> Rewrite {
    match op {
        Some(Op::Or) => Rewrite::Union(children),
        Some(Op::And) => Rewrite::Intersection(children),
        Some(Op::ButNot) if children.len() == 2 => {
            let subtract = children.pop().unwrap_or(Rewrite::This);
            let base = children.pop().unwrap_or(Rewrite::This);
            Rewrite::Exclusion { base: Box::new(base), subtract: Box::new(subtract) }
        }
        _ => children.pop().unwrap_or(Rewrite::This),
    }
}

/// The non-generic parameter types by their DSL name.
pub(super) fn base_param_type(word: &str) -> Option<ParamType> {
    Some(match word {
        "bool" => ParamType::Bool,
        "string" => ParamType::String,
        "int" => ParamType::Int,
        "uint" => ParamType::Uint,
        "double" => ParamType::Double,
        "duration" => ParamType::Duration,
        "timestamp" => ParamType::Timestamp,
        "ipaddress" => ParamType::IpAddress,
        _ => return None,
    })
}
