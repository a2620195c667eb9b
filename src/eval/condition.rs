//! Condition evaluation: the model's CEL conditions, compiled once per model and evaluated
//! against a tuple's stored context merged with the request's context.
//!
//! Semantics follow OpenFGA: only declared parameters are bound, each converted from its JSON
//! value by its declared type (a value that does not convert is an error); on a key present in
//! both contexts the tuple's value wins; a declared parameter neither context holds is a
//! "missing context parameters" error, even when a short-circuit would not need it; a result that is not a bool is an error.
//! `ipaddress` values offer `in_cidr("10.0.0.0/8")`.
//!
//! Invariant: every condition of a model is parsed exactly once, in [`Conditions::compile`].
//! Must not import anything outside `eval`, `model`, `tuple` (JSON values come through
//! [`crate::tuple::ContextValue`]).

use crate::model::{ConditionDef, Model, ParamType, SchemaError, SchemaErrorKind};
use crate::tuple::{Context, ContextValue, TupleCondition};
use cel::extractors::This;
use cel::objects::{Opaque, Value};
use cel::{ExecutionError, FunctionContext, Program};
use rustc_hash::FxHashMap;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, OnceLock};

use super::EvalError;

/// The conditions of one model, compiled.
#[derive(Debug, Clone, Default)]
pub(crate) struct Conditions {
    by_name: FxHashMap<String, Arc<CompiledCondition>>,
}

/// One compiled condition.
#[derive(Debug)]
struct CompiledCondition {
    /// Declared parameters, in source order.
    parameters: Vec<(String, ParamType)>,
    /// The parsed program, or why the expression does not parse.
    program: Result<Program, String>,
}

impl Conditions {
    /// Compiles every condition of `model`. An expression that does not parse is kept as an
    /// error, reported when a tuple using it is evaluated.
    pub(crate) fn compile(model: &Model) -> Self {
        let by_name =
            model.conditions.iter().map(|c| (c.name.clone(), Arc::new(CompiledCondition::compile(c)))).collect();
        Conditions { by_name }
    }

    /// The declared parameters of the condition `name`, in source order (none if the model has no
    /// such condition).
    pub(crate) fn parameters(&self, name: &str) -> Vec<&str> {
        self.by_name.get(name).map(|c| c.parameters.iter().map(|(p, _)| p.as_str()).collect()).unwrap_or_default()
    }

    /// Whether `condition` holds with `request` as the request context; `tuple` describes the
    /// tuple for error messages.
    pub(crate) fn evaluate(
        &self,
        condition: &TupleCondition,
        request: &Context,
        tuple: impl FnOnce() -> String,
    ) -> Result<bool, EvalError> {
        let name = &condition.name;
        let error = |message: String| EvalError::Condition { name: name.clone(), message };
        // A tuple written under an older model may name a condition this model no longer has;
        // OpenFGA ignores such a tuple when reading, so it simply does not hold.
        let Some(bound) = self.bind(condition, request)? else { return Ok(false) };
        if !bound.missing.is_empty() {
            let missing = bound.missing.join(" ");
            return Err(error(format!("tuple '{}' is missing context parameters '[{missing}]'", tuple())));
        }
        match bound.program.execute(&bound.scope) {
            Ok(Value::Bool(b)) => Ok(b),
            Ok(other) => Err(error(format!("expected a bool result, got {}", other.type_of()))),
            Err(e) => Err(error(e.to_string())),
        }
    }

    /// Like [`Conditions::evaluate`], but partial, as SpiceDB evaluates caveats: missing
    /// parameters stay unbound, and `None` (conditional) is the answer when the expression
    /// needs one of them; an expression that settles without them (`a || b` with `a` true)
    /// gives its value.
    pub(crate) fn evaluate_partial(
        &self,
        condition: &TupleCondition,
        request: &Context,
    ) -> Result<Option<bool>, EvalError> {
        let name = &condition.name;
        let error = |message: String| EvalError::Condition { name: name.clone(), message };
        let Some(bound) = self.bind(condition, request)? else { return Ok(Some(false)) };
        match bound.program.execute(&bound.scope) {
            Ok(Value::Bool(b)) => Ok(Some(b)),
            Ok(other) => Err(error(format!("expected a bool result, got {}", other.type_of()))),
            Err(_) if !bound.missing.is_empty() => Ok(None),
            Err(e) => Err(error(e.to_string())),
        }
    }

    /// `condition`'s program with a scope binding each declared parameter that the tuple's or the
    /// request's context holds, converted by its declared type; the tuple's stored value wins over
    /// the request's. `None` when the model has no such condition; an error when the expression
    /// did not parse or a value does not convert.
    fn bind(&self, condition: &TupleCondition, request: &Context) -> Result<Option<Bound<'_>>, EvalError> {
        let error = |message: String| EvalError::Condition { name: condition.name.clone(), message };
        let Some(compiled) = self.by_name.get(&condition.name) else { return Ok(None) };
        let program = compiled.program.as_ref().map_err(|e| error(e.clone()))?;
        let mut scope = base_context().new_inner_scope();
        let mut missing = Vec::new();
        for (param, param_type) in &compiled.parameters {
            match condition.context.get(param).or_else(|| request.get(param)) {
                Some(value) => {
                    let value = convert(value, param_type)
                        .map_err(|e| error(format!("failed to convert context parameter '{param}': {e}")))?;
                    scope.add_variable_from_value(param.as_str(), value);
                }
                None => missing.push(param.as_str()),
            }
        }
        Ok(Some(Bound { program, scope, missing }))
    }
}

/// A condition's program bound to the context of one evaluation.
struct Bound<'a> {
    program: &'a Program,
    scope: cel::Context<'static>,
    /// The declared parameters neither context holds, in declaration order.
    missing: Vec<&'a str>,
}

/// A schema error for each condition of `model` whose expression cannot be compiled or does not
/// type-check against its parameters (see [`check`]), so that a model is refused when written (as
/// OpenFGA compiles and type-checks every condition of a model it accepts) instead of failing each
/// check that meets the condition.
pub(crate) fn condition_errors(model: &Model) -> Vec<SchemaError> {
    model
        .conditions
        .iter()
        .filter_map(|def| {
            let problem = match CompiledCondition::compile(def).program {
                Ok(program) => check::check(def, program.expression())?,
                Err(problem) => problem,
            };
            Some(SchemaError {
                kind: SchemaErrorKind::Semantic("invalid-condition-expression".into()),
                message: format!("the expression of condition `{}` does not compile: {problem}", def.name),
                span: Some(def.span),
                symbol: Some(def.name.clone()),
            })
        })
        .collect()
}

impl CompiledCondition {
    fn compile(def: &ConditionDef) -> Self {
        let parameters = def.parameters.iter().map(|p| (p.name.clone(), p.type_name.clone())).collect();
        let program = match too_deep_for_cel(&def.expression) {
            Some(problem) => Err(problem),
            None => compile_guarded(&def.expression),
        };
        CompiledCondition { parameters, program }
    }
}

/// Stack for compiling one CEL expression: the `cel` crate's parser recurses with large frames per
/// level of nesting, so a default-sized (2 MiB) thread overflows on modestly nested text in a
/// debug build.
const CEL_COMPILE_STACK: usize = 256 << 20;

/// Compiles a CEL expression on a thread of its own with a large stack, so a deeply nested
/// expression cannot overflow the caller's stack, and a panic inside the `cel` crate (seen with
/// long `?:` chains) becomes an invalid expression instead of taking the process down. The stack
/// is reserved address space; only the pages the parser touches are used.
fn compile_guarded(expression: &str) -> Result<Program, String> {
    std::thread::scope(|scope| {
        let compiling = std::thread::Builder::new()
            .name("cel-compile".into())
            .stack_size(CEL_COMPILE_STACK)
            .spawn_scoped(scope, || Program::compile(expression).map_err(|e| format!("invalid expression: {e}")));
        match compiling {
            Ok(handle) => handle.join().unwrap_or_else(|_| Err("invalid expression: too complex to compile".into())),
            Err(e) => Err(format!("expression could not be compiled: {e}")),
        }
    })
}

/// Most brackets (`(`, `[`, `{`) open at once in a condition expression.
pub(crate) const MAX_CEL_NESTING: usize = 8;
/// Most arithmetic, comparison and `?` operators in a condition expression.
pub(crate) const MAX_CEL_OPERATORS: usize = 32;

/// Why `expression` is too deep to hand to the `cel` crate, if it is. Its parser and evaluator
/// recurse with large frames, and a stack overflow aborts the process (no guard catches it), so
/// [`MAX_CEL_NESTING`] and [`MAX_CEL_OPERATORS`] keep every accepted expression well inside a
/// 2 MiB (tokio worker) stack, even in a debug build. Text inside string literals does not count;
/// `&&`, `||` and unary operators do not deepen the tree.
fn too_deep_for_cel(expression: &str) -> Option<String> {
    let (mut depth, mut deepest, mut operators) = (0usize, 0usize, 0usize);
    let mut quote: Option<char> = None;
    let mut chars = expression.chars().peekable();
    let mut previous_significant = ' ';
    while let Some(c) = chars.next() {
        if let Some(q) = quote {
            match c {
                '\\' => {
                    chars.next();
                }
                _ if c == q => quote = None,
                _ => {}
            }
            continue;
        }
        match c {
            '"' | '\'' => quote = Some(c),
            '(' | '[' | '{' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            ')' | ']' | '}' => depth = depth.saturating_sub(1),
            '+' | '*' | '/' | '%' | '<' | '>' | '?' => operators += 1,
            // A `-` after an operand is binary; after an operator or bracket it is unary.
            '-' if previous_significant.is_alphanumeric()
                || matches!(previous_significant, ')' | ']' | '_' | '"' | '\'') =>
            {
                operators += 1
            }
            '=' | '!' if chars.peek() == Some(&'=') => {
                chars.next();
                operators += 1;
            }
            _ => {}
        }
        if !c.is_whitespace() {
            previous_significant = c;
        }
    }
    if deepest > MAX_CEL_NESTING {
        Some(format!("expression nests brackets {deepest} deep; at most {MAX_CEL_NESTING} are allowed"))
    } else if operators > MAX_CEL_OPERATORS {
        Some(format!("expression has {operators} operators; at most {MAX_CEL_OPERATORS} are allowed"))
    } else {
        None
    }
}

/// The CEL context every evaluation scopes its parameters under: the standard functions plus
/// OpenFGA's `ipaddress` methods. Built once per process.
fn base_context() -> &'static cel::Context<'static> {
    static BASE: OnceLock<cel::Context<'static>> = OnceLock::new();
    BASE.get_or_init(|| {
        let mut context = cel::Context::default();
        context.add_function("in_cidr", in_cidr);
        context
    })
}

/// An `ipaddress` parameter value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct IpAddress(IpAddr);

impl Opaque for IpAddress {
    fn runtime_type_name(&self) -> &str {
        "ipaddress"
    }
}

/// `ip.in_cidr("10.0.0.0/8")`: whether the address is within the network.
fn in_cidr(ftx: &FunctionContext, This(this): This<Value>, cidr: Arc<String>) -> Result<bool, ExecutionError> {
    let address = match &this {
        Value::Opaque(o) => o.downcast_ref::<IpAddress>().map(|a| a.0),
        _ => None,
    }
    .ok_or_else(|| ftx.error("in_cidr expects an ipaddress receiver"))?;
    let (network, prefix) = parse_cidr(&cidr).ok_or_else(|| ftx.error(format!("invalid CIDR '{cidr}'")))?;
    Ok(cidr_contains(network, prefix, address))
}

fn parse_cidr(cidr: &str) -> Option<(IpAddr, u32)> {
    let (network, prefix) = cidr.split_once('/')?;
    let network: IpAddr = network.parse().ok()?;
    let prefix: u32 = prefix.parse().ok()?;
    let bits = if network.is_ipv4() { 32 } else { 128 };
    (prefix <= bits).then_some((network, prefix))
}

fn cidr_contains(network: IpAddr, prefix: u32, address: IpAddr) -> bool {
    let masked = |bits: u128, width: u32| if prefix == 0 { 0 } else { bits >> (width - prefix) };
    match (network, address) {
        (IpAddr::V4(n), IpAddr::V4(a)) => masked(u32::from(n).into(), 32) == masked(u32::from(a).into(), 32),
        (IpAddr::V6(n), IpAddr::V6(a)) => masked(u128::from(n), 128) == masked(u128::from(a), 128),
        _ => false,
    }
}

/// A JSON context value as a CEL value of the declared type.
fn convert(value: &ContextValue, param_type: &ParamType) -> Result<Value, String> {
    let mismatch = || format!("expected a {param_type} value, got {value}");
    match param_type {
        ParamType::Any => Ok(convert_any(value)),
        ParamType::Bool => value.as_bool().map(Value::Bool).ok_or_else(mismatch),
        ParamType::String => value.as_str().map(|s| Value::String(Arc::new(s.to_string()))).ok_or_else(mismatch),
        ParamType::Int => {
            let n = number(value).ok_or_else(mismatch)?;
            match n {
                Number::Int(i) => Ok(Value::Int(i)),
                Number::Uint(_) => Err(format!("value {value} overflows int")),
                Number::Float(f) if f.fract() == 0.0 && f >= i64::MIN as f64 && f < i64::MAX as f64 => {
                    Ok(Value::Int(f as i64))
                }
                Number::Float(_) => Err(format!("expected an integer value, got {value}")),
            }
        }
        ParamType::Uint => {
            let n = number(value).ok_or_else(mismatch)?;
            match n {
                Number::Int(i) => u64::try_from(i)
                    .map(Value::UInt)
                    .map_err(|_| format!("expected an unsigned integer value, got {value}")),
                Number::Uint(u) => Ok(Value::UInt(u)),
                Number::Float(f) if f.fract() == 0.0 && f >= 0.0 && f < u64::MAX as f64 => Ok(Value::UInt(f as u64)),
                Number::Float(_) => Err(format!("expected an unsigned integer value, got {value}")),
            }
        }
        ParamType::Double => match number(value).ok_or_else(mismatch)? {
            Number::Int(i) => Ok(Value::Float(i as f64)),
            Number::Uint(u) => Ok(Value::Float(u as f64)),
            Number::Float(f) => Ok(Value::Float(f)),
        },
        ParamType::Duration => {
            let text = value.as_str().ok_or_else(mismatch)?;
            cel::functions::duration(Arc::new(text.to_string())).map_err(|e| format!("invalid duration '{text}': {e}"))
        }
        ParamType::Timestamp => {
            let text = value.as_str().ok_or_else(mismatch)?;
            cel::functions::timestamp(Arc::new(text.to_string()))
                .map_err(|e| format!("invalid timestamp '{text}': {e}"))
        }
        ParamType::IpAddress => {
            let text = value.as_str().ok_or_else(mismatch)?;
            let address: IpAddr = text.parse().map_err(|_| format!("invalid ipaddress '{text}'"))?;
            Ok(Value::Opaque(Arc::new(IpAddress(address))))
        }
        ParamType::List(element) => {
            let items = value.as_array().ok_or_else(mismatch)?;
            let items = items.iter().map(|v| convert(v, element)).collect::<Result<Vec<_>, _>>()?;
            Ok(Value::List(Arc::new(items)))
        }
        ParamType::Map(element) => {
            let entries = value.as_object().ok_or_else(mismatch)?;
            let mut map = HashMap::with_capacity(entries.len());
            for (k, v) in entries {
                map.insert(k.clone(), convert(v, element)?);
            }
            Ok(Value::from(map))
        }
    }
}

enum Number {
    Int(i64),
    Uint(u64),
    Float(f64),
}

/// A JSON number, or a string holding one (OpenFGA accepts both for numeric parameters).
fn number(value: &ContextValue) -> Option<Number> {
    match value {
        ContextValue::Number(n) => n
            .as_i64()
            .map(Number::Int)
            .or_else(|| n.as_u64().map(Number::Uint))
            .or_else(|| n.as_f64().map(Number::Float)),
        ContextValue::String(s) => s
            .parse::<i64>()
            .map(Number::Int)
            .or_else(|_| s.parse::<u64>().map(Number::Uint))
            .ok()
            .or_else(|| parse_float(s).map(Number::Float)),
        _ => None,
    }
}

/// A float from text; a finite-looking literal out of the double range (`1e309`) is not one.
fn parse_float(text: &str) -> Option<f64> {
    let f: f64 = text.parse().ok()?;
    let literal_infinity = text.to_ascii_lowercase().contains("inf");
    (f.is_finite() || literal_infinity).then_some(f)
}

/// An `any` parameter: JSON as CEL, numbers as doubles (as OpenFGA's protobuf `Struct` holds them).
fn convert_any(value: &ContextValue) -> Value {
    match value {
        ContextValue::Null => Value::Null,
        ContextValue::Bool(b) => Value::Bool(*b),
        ContextValue::Number(n) => Value::Float(n.as_f64().unwrap_or(f64::NAN)),
        ContextValue::String(s) => Value::String(Arc::new(s.clone())),
        ContextValue::Array(items) => Value::List(Arc::new(items.iter().map(convert_any).collect())),
        ContextValue::Object(entries) => {
            Value::from(entries.iter().map(|(k, v)| (k.clone(), convert_any(v))).collect::<HashMap<_, _>>())
        }
    }
}

mod check;

#[cfg(test)]
mod tests;
