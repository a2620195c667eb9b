//! Static checks of a parsed condition expression against its declared parameters, the part of
//! cel-go's type checker that OpenFGA relies on when it accepts a model: every free variable is a
//! declared parameter, operators get operands of types they accept, and the result is a bool.
//!
//! The `cel` crate only parses, so this walks its AST. Names bound by comprehension macros
//! (`x` in `list.all(x, x > 1)`, and the macro's accumulator) are in scope inside the
//! comprehension only, and are not free. Types are inferred only where they are certain (literals,
//! parameters, operators over those); anything else is `Unknown` and never refused, so a model
//! OpenFGA accepts is never refused here.

use crate::model::{ConditionDef, ParamType};
use cel::common::ast::{operators, EntryExpr, Expr, IdedEntryExpr, IdedExpr};
use cel::common::value::CelVal;

/// The static type of a sub-expression, as far as it is known.
#[derive(Debug, Clone, PartialEq)]
enum Ty {
    Bool,
    Int,
    Uint,
    Double,
    String,
    Bytes,
    Null,
    Duration,
    Timestamp,
    IpAddress,
    List(Box<Ty>),
    Map(Box<Ty>),
    /// cel-go's `dyn`: an `any` parameter, or an element of a collection of them.
    Dyn,
    /// Not inferred here; never refused.
    Unknown,
}

impl Ty {
    fn of(param: &ParamType) -> Ty {
        match param {
            ParamType::Bool => Ty::Bool,
            ParamType::String => Ty::String,
            ParamType::Int => Ty::Int,
            ParamType::Uint => Ty::Uint,
            ParamType::Double => Ty::Double,
            ParamType::Duration => Ty::Duration,
            ParamType::Timestamp => Ty::Timestamp,
            ParamType::IpAddress => Ty::IpAddress,
            ParamType::Any => Ty::Dyn,
            ParamType::List(element) => Ty::List(Box::new(Ty::of(element))),
            ParamType::Map(element) => Ty::Map(Box::new(Ty::of(element))),
        }
    }

    /// The name cel-go gives the type in its messages.
    fn name(&self) -> String {
        match self {
            Ty::Bool => "bool".into(),
            Ty::Int => "int".into(),
            Ty::Uint => "uint".into(),
            Ty::Double => "double".into(),
            Ty::String => "string".into(),
            Ty::Bytes => "bytes".into(),
            Ty::Null => "null_type".into(),
            Ty::Duration => "google.protobuf.Duration".into(),
            Ty::Timestamp => "google.protobuf.Timestamp".into(),
            Ty::IpAddress => "ipaddress".into(),
            Ty::List(element) => format!("list({})", element.name()),
            Ty::Map(element) => format!("map(string, {})", element.name()),
            Ty::Dyn => "dyn".into(),
            Ty::Unknown => "unknown".into(),
        }
    }

    /// Whether the type is certain and is not `bool` (`dyn` included: it may hold anything).
    fn surely_not_bool(&self) -> bool {
        !matches!(self, Ty::Bool | Ty::Unknown)
    }

    /// A coarse kind for operand checks: two operands of different kinds never meet in one
    /// overload of a comparison or arithmetic operator. Numbers are one kind, since cel-go
    /// compares `int` with `double`; `null`, `dyn` and unknown types have none.
    fn kind(&self) -> Option<&'static str> {
        match self {
            Ty::Int | Ty::Uint | Ty::Double => Some("number"),
            Ty::String => Some("string"),
            Ty::Bool => Some("bool"),
            Ty::Bytes => Some("bytes"),
            Ty::Duration => Some("duration"),
            Ty::Timestamp => Some("timestamp"),
            Ty::IpAddress => Some("ipaddress"),
            Ty::List(_) => Some("list"),
            Ty::Map(_) => Some("map"),
            Ty::Null | Ty::Dyn | Ty::Unknown => None,
        }
    }
}

/// Identifiers cel-go's standard environment declares: type names (`type(x) == int`).
const DECLARED_IDENTS: &[&str] =
    &["bool", "int", "uint", "double", "string", "bytes", "list", "map", "null_type", "type", "dyn"];

/// Why the parsed `expression` of `def` would not pass OpenFGA's condition compiler, if it
/// would not: an undeclared variable, operands of mismatched types, or a non-bool result.
pub(super) fn check(def: &ConditionDef, expression: &IdedExpr) -> Option<String> {
    let mut checker = Checker { def, bound: Vec::new(), problem: None };
    let ty = checker.ty(expression);
    if let Some(problem) = checker.problem {
        return Some(problem);
    }
    ty.surely_not_bool().then(|| format!("expected a bool condition expression output, but got '{}'", ty.name()))
}

struct Checker<'a> {
    def: &'a ConditionDef,
    /// Names bound by the enclosing comprehensions, innermost last.
    bound: Vec<String>,
    /// The first problem found.
    problem: Option<String>,
}

impl Checker<'_> {
    fn refuse(&mut self, problem: String) {
        self.problem.get_or_insert(problem);
    }

    fn ty(&mut self, e: &IdedExpr) -> Ty {
        match &e.expr {
            Expr::Literal(value) => literal(value),
            Expr::Ident(name) => self.ident(name),
            Expr::Select(select) => {
                let operand = self.ty(&select.operand);
                match operand {
                    _ if select.test => Ty::Bool,
                    Ty::Map(element) => *element,
                    Ty::Dyn => Ty::Dyn,
                    _ => Ty::Unknown,
                }
            }
            Expr::Call(call) => {
                let target = call.target.as_deref().map(|t| self.ty(t));
                let args: Vec<Ty> = call.args.iter().map(|a| self.ty(a)).collect();
                self.call(&call.func_name, target, &args)
            }
            Expr::List(list) => {
                let elements: Vec<Ty> = list.elements.iter().map(|x| self.ty(x)).collect();
                Ty::List(Box::new(common(&elements)))
            }
            Expr::Map(map) => {
                self.entries(&map.entries);
                Ty::Map(Box::new(Ty::Unknown))
            }
            Expr::Struct(object) => {
                self.entries(&object.entries);
                Ty::Unknown
            }
            Expr::Comprehension(c) => {
                self.ty(&c.iter_range);
                let init = self.ty(&c.accu_init);
                let depth = self.bound.len();
                self.bound.push(c.iter_var.clone());
                self.bound.extend(c.iter_var2.iter().cloned());
                self.bound.push(c.accu_var.clone());
                self.ty(&c.loop_cond);
                self.ty(&c.loop_step);
                let result = match &c.result.expr {
                    // `all`, `exists`, `map`, `filter`: the result is the accumulator, typed by
                    // its initial value (a bool, or a list).
                    Expr::Ident(name) if *name == c.accu_var => match init {
                        Ty::Bool => Ty::Bool,
                        Ty::List(_) => Ty::List(Box::new(Ty::Unknown)),
                        _ => Ty::Unknown,
                    },
                    _ => self.ty(&c.result),
                };
                self.bound.truncate(depth);
                result
            }
            Expr::Unspecified => Ty::Unknown,
        }
    }

    /// Checks the keys and values of a map literal, or the field values of a message literal;
    /// neither gives the literal a type known here.
    fn entries(&mut self, entries: &[IdedEntryExpr]) {
        for entry in entries {
            match &entry.expr {
                EntryExpr::MapEntry(entry) => {
                    self.ty(&entry.key);
                    self.ty(&entry.value);
                }
                EntryExpr::StructField(field) => {
                    self.ty(&field.value);
                }
            }
        }
    }

    fn ident(&mut self, name: &str) -> Ty {
        if self.bound.iter().any(|b| b == name) {
            return Ty::Unknown;
        }
        if let Some(param) = self.def.parameters.iter().find(|p| p.name == name) {
            return Ty::of(&param.type_name);
        }
        if !DECLARED_IDENTS.contains(&name) {
            self.refuse(format!("undeclared reference to '{name}' (not a parameter of the condition)"));
        }
        Ty::Unknown
    }

    fn call(&mut self, function: &str, target: Option<Ty>, args: &[Ty]) -> Ty {
        match function {
            operators::LOGICAL_AND | operators::LOGICAL_OR | operators::LOGICAL_NOT => {
                for arg in args {
                    if arg.surely_not_bool() && *arg != Ty::Dyn {
                        self.refuse(format!(
                            "found no matching overload for '{function}' applied to an operand of type '{}'",
                            arg.name()
                        ));
                    }
                }
                Ty::Bool
            }
            operators::CONDITIONAL => match args {
                [condition, then, otherwise] => {
                    if condition.surely_not_bool() && *condition != Ty::Dyn {
                        self.refuse(format!("the condition of '?:' has type '{}', not bool", condition.name()));
                    }
                    if then == otherwise {
                        then.clone()
                    } else {
                        Ty::Unknown
                    }
                }
                _ => Ty::Unknown,
            },
            operators::EQUALS
            | operators::NOT_EQUALS
            | operators::LESS
            | operators::LESS_EQUALS
            | operators::GREATER
            | operators::GREATER_EQUALS => {
                self.same_kind(function, args);
                Ty::Bool
            }
            operators::ADD | operators::SUBSTRACT | operators::MULTIPLY | operators::DIVIDE | operators::MODULO => {
                match args {
                    [left, right] if left == right && left.kind().is_some_and(|k| k == "number" || k == "string") => {
                        left.clone()
                    }
                    [left, right] => {
                        // Durations and timestamps add to each other; only plain values are checked.
                        let plain = |t: &Ty| matches!(t.kind(), Some("number" | "string" | "bool" | "bytes"));
                        if plain(left) && plain(right) {
                            self.same_kind(function, args);
                        }
                        Ty::Unknown
                    }
                    _ => Ty::Unknown,
                }
            }
            operators::NEGATE => match args {
                [operand] if operand.kind() == Some("number") => operand.clone(),
                _ => Ty::Unknown,
            },
            operators::INDEX => match args {
                [Ty::List(element), _] | [Ty::Map(element), _] => (**element).clone(),
                [Ty::Dyn, _] => Ty::Dyn,
                _ => Ty::Unknown,
            },
            operators::IN | operators::NOT_STRICTLY_FALSE => Ty::Bool,
            "contains" | "startsWith" | "endsWith" | "matches" | "in_cidr" if target.is_some() => Ty::Bool,
            "size" => Ty::Int,
            _ => Ty::Unknown,
        }
    }

    /// Refuses a binary operator whose two operands are of certain, different kinds.
    fn same_kind(&mut self, function: &str, args: &[Ty]) {
        if let [left, right] = args {
            if let (Some(l), Some(r)) = (left.kind(), right.kind()) {
                if l != r {
                    self.refuse(format!(
                        "found no matching overload for '{function}' applied to '({}, {})'",
                        left.name(),
                        right.name()
                    ));
                }
            }
        }
    }
}

fn literal(value: &CelVal) -> Ty {
    match value {
        CelVal::Boolean(_) => Ty::Bool,
        CelVal::Int(_) => Ty::Int,
        CelVal::UInt(_) => Ty::Uint,
        CelVal::Double(_) => Ty::Double,
        CelVal::String(_) => Ty::String,
        CelVal::Bytes(_) => Ty::Bytes,
        CelVal::Null => Ty::Null,
        _ => Ty::Unknown,
    }
}

/// The type every element has, if they share one.
fn common(elements: &[Ty]) -> Ty {
    match elements.split_first() {
        Some((first, rest)) if rest.iter().all(|t| t == first) => first.clone(),
        _ => Ty::Unknown,
    }
}
