//! Unit tests of condition evaluation: parameter types, context merging, errors.

use super::*;
use crate::model::ConditionParam;

/// A condition's name, parameters and expression.
type Def<'a> = (&'a str, &'a [(&'a str, ParamType)], &'a str);

fn model(conditions: &[Def<'_>]) -> Conditions {
    let conditions = conditions
        .iter()
        .map(|(name, params, expression)| ConditionDef {
            name: name.to_string(),
            parameters: params
                .iter()
                .map(|(n, t)| ConditionParam { name: n.to_string(), type_name: t.clone() })
                .collect(),
            expression: expression.to_string(),
            span: Default::default(),
        })
        .collect();
    Conditions::compile(&Model { schema_version: "1.1".into(), types: vec![], conditions })
}

fn context(text: &str) -> Context {
    match text.parse::<ContextValue>() {
        Ok(ContextValue::Object(map)) => map,
        other => unreachable!("test context must be a JSON object: {other:?}"),
    }
}

fn tuple_condition(name: &str, stored: &str) -> TupleCondition {
    TupleCondition { name: name.to_string(), context: context(stored) }
}

/// Evaluates a one-parameter condition with `value` in the request context.
fn eval_one(param_type: ParamType, expression: &str, value: &str) -> Result<bool, EvalError> {
    let conditions = model(&[("c", &[("p", param_type)], expression)]);
    let request = context(&format!(r#"{{"p": {value}}}"#));
    conditions.evaluate(&tuple_condition("c", "{}"), &request, || "document:1#viewer@user:anne".into())
}

fn is_error(result: Result<bool, EvalError>) -> bool {
    matches!(result, Err(EvalError::Condition { .. }))
}

#[test]
fn bool_and_string() {
    assert_eq!(eval_one(ParamType::Bool, "p", "true"), Ok(true));
    assert!(is_error(eval_one(ParamType::Bool, "p", "\"true\"")));
    assert_eq!(eval_one(ParamType::String, r#"p == "hello""#, r#""hello""#), Ok(true));
    assert_eq!(eval_one(ParamType::String, r#"p.startsWith("he")"#, r#""xhello""#), Ok(false));
    assert!(is_error(eval_one(ParamType::String, r#"p == "1""#, "1")));
}

#[test]
fn int_rejects_fractions() {
    assert_eq!(eval_one(ParamType::Int, "p < 100", "10"), Ok(true));
    assert_eq!(eval_one(ParamType::Int, "p < 100", "101"), Ok(false));
    assert_eq!(eval_one(ParamType::Int, "p == -3", "-3.0"), Ok(true));
    assert!(is_error(eval_one(ParamType::Int, "p < 100", "1.5")));
    assert!(is_error(eval_one(ParamType::Int, "p < 100", "true")));
}

#[test]
fn uint_and_double() {
    assert_eq!(eval_one(ParamType::Uint, "p < 100u", "7"), Ok(true));
    assert!(is_error(eval_one(ParamType::Uint, "p < 100u", "-1")));
    assert_eq!(eval_one(ParamType::Double, "p > 0.0", "0.5"), Ok(true));
    assert_eq!(eval_one(ParamType::Double, "p > 0.0", "2"), Ok(true));
    assert_eq!(eval_one(ParamType::Double, "p > 0.0", "-2"), Ok(false));
    assert_eq!(eval_one(ParamType::Double, "p > 0.0", r#""1.5""#), Ok(true));
    assert!(is_error(eval_one(ParamType::Double, "p > 0.0", r#""1.8e+309""#)));
    assert!(is_error(eval_one(ParamType::Double, "p > 0.0", r#""-1.8e+309""#)));
}

#[test]
fn duration_and_timestamp() {
    assert_eq!(eval_one(ParamType::Duration, r#"p > duration("5m")"#, r#""10m""#), Ok(true));
    assert_eq!(eval_one(ParamType::Duration, r#"p > duration("1h")"#, r#""1h30m""#), Ok(true));
    assert!(is_error(eval_one(ParamType::Duration, r#"p > duration("5m")"#, r#""soon""#)));
    let before = r#"p < timestamp("2023-10-11T10:00:00.000Z")"#;
    assert_eq!(eval_one(ParamType::Timestamp, before, r#""2023-10-11T09:00:00Z""#), Ok(true));
    assert_eq!(eval_one(ParamType::Timestamp, before, r#""2023-10-11T11:00:00+00:00""#), Ok(false));
    assert!(is_error(eval_one(ParamType::Timestamp, before, r#""yesterday""#)));
    let window = r#"p + duration("1h") > timestamp("2023-10-11T10:30:00Z")"#;
    assert_eq!(eval_one(ParamType::Timestamp, window, r#""2023-10-11T10:00:00Z""#), Ok(true));
}

#[test]
fn ipaddress_in_cidr() {
    let conditions =
        model(&[("ip", &[("user_ip", ParamType::IpAddress), ("cidr", ParamType::String)], "user_ip.in_cidr(cidr)")]);
    let run = |ip: &str, cidr: &str| {
        let request = context(&format!(r#"{{"user_ip": "{ip}", "cidr": "{cidr}"}}"#));
        conditions.evaluate(&tuple_condition("ip", "{}"), &request, String::new)
    };
    assert_eq!(run("192.168.0.1", "192.168.0.0/24"), Ok(true));
    assert_eq!(run("192.168.1.1", "192.168.0.0/24"), Ok(false));
    assert_eq!(run("10.1.2.3", "0.0.0.0/0"), Ok(true));
    assert_eq!(run("2001:db8::1", "2001:db8::/32"), Ok(true));
    assert_eq!(run("2001:db9::1", "2001:db8::/32"), Ok(false));
    assert_eq!(run("10.0.0.1", "2001:db8::/32"), Ok(false));
    assert!(is_error(run("not-an-ip", "10.0.0.0/8")));
    assert!(is_error(run("10.0.0.1", "10.0.0.0/33")));
}

#[test]
fn lists_maps_and_any() {
    let list = ParamType::List(Box::new(ParamType::String));
    assert_eq!(eval_one(list.clone(), r#""b" in p"#, r#"["a", "b"]"#), Ok(true));
    assert!(is_error(eval_one(list, r#""b" in p"#, r#"["a", 1]"#)));
    let map = ParamType::Map(Box::new(ParamType::Int));
    assert_eq!(eval_one(map.clone(), r#"p["a"] == 1"#, r#"{"a": 1}"#), Ok(true));
    assert!(is_error(eval_one(map, r#"p["a"] == 1"#, r#"{"a": 1.5}"#)));
    assert_eq!(eval_one(ParamType::Any, r#"p.k == "v""#, r#"{"k": "v"}"#), Ok(true));
    assert_eq!(eval_one(ParamType::Any, "p == 2.0", "2"), Ok(true));
}

#[test]
fn tuple_context_wins_over_request_context() {
    let conditions = model(&[("c", &[("x", ParamType::Int)], "x < 100")]);
    let stored = tuple_condition("c", r#"{"x": 10}"#);
    assert_eq!(conditions.evaluate(&stored, &context(r#"{"x": 500}"#), String::new), Ok(true));
    let stored = tuple_condition("c", r#"{"x": 500}"#);
    assert_eq!(conditions.evaluate(&stored, &context(r#"{"x": 10}"#), String::new), Ok(false));
}

#[test]
fn undeclared_keys_are_not_bound() {
    let conditions = model(&[("c", &[("x", ParamType::Int)], "x < 100 && y")]);
    let result = conditions.evaluate(&tuple_condition("c", "{}"), &context(r#"{"x": 1, "y": true}"#), String::new);
    assert!(is_error(result));
    // A value of the wrong type for an undeclared key is ignored.
    let conditions = model(&[("c", &[("x", ParamType::Int)], "x < 100")]);
    let result = conditions.evaluate(&tuple_condition("c", "{}"), &context(r#"{"x": 1, "y": "z"}"#), String::new);
    assert_eq!(result, Ok(true));
}

#[test]
fn missing_parameter_names_the_tuple_and_parameters() {
    let conditions = model(&[("c", &[("x", ParamType::Int), ("y", ParamType::Int)], "x < 100 && y < 50")]);
    let result =
        conditions.evaluate(&tuple_condition("c", "{}"), &Context::new(), || "document:1#viewer@user:anne".to_string());
    assert_eq!(
        result.map_err(|e| e.to_string()),
        Err("failed to evaluate relationship condition 'c': tuple 'document:1#viewer@user:anne' is missing \
             context parameters '[x y]'"
            .to_string())
    );
    // As in OpenFGA, every declared parameter must be bound, even one a short-circuit skips.
    let conditions = model(&[("c", &[("x", ParamType::Int), ("y", ParamType::Int)], "x < 100 || y < 50")]);
    let result = conditions.evaluate(&tuple_condition("c", "{}"), &context(r#"{"x": 1}"#), || "d:1#v@u:a".into());
    assert_eq!(
        result.map_err(|e| e.to_string()),
        Err("failed to evaluate relationship condition 'c': tuple 'd:1#v@u:a' is missing context parameters '[y]'"
            .to_string())
    );
}

#[test]
fn non_bool_result_is_an_error() {
    let result = eval_one(ParamType::Int, "p + 1", "1");
    assert!(matches!(&result, Err(EvalError::Condition { message, .. }) if message.contains("bool")), "{result:?}");
}

#[test]
fn bad_expression_is_an_error() {
    let conditions = model(&[("bad", &[("x", ParamType::Int)], "x <")]);
    assert!(is_error(conditions.evaluate(&tuple_condition("bad", "{}"), &context(r#"{"x": 1}"#), String::new)));
}

/// Regression: `abac_tests › prior_conditions_ignored`: a tuple whose condition the current model
/// no longer defines is ignored (does not hold), as OpenFGA does, rather than an error.
#[test]
fn tuple_with_condition_missing_from_model_does_not_hold() {
    let conditions = model(&[("bad", &[("x", ParamType::Int)], "x <")]);
    let result = conditions.evaluate(&tuple_condition("nope", "{}"), &Context::new(), String::new);
    assert!(matches!(result, Ok(false)), "{result:?}");
}

/// The write-time problem with one condition `c` over `params`, if any.
fn write_time_problem(params: &[(&str, ParamType)], expression: &str) -> Option<String> {
    let def = ConditionDef {
        name: "c".into(),
        parameters: params.iter().map(|(n, t)| ConditionParam { name: n.to_string(), type_name: t.clone() }).collect(),
        expression: expression.into(),
        span: Default::default(),
    };
    let model = Model { schema_version: "1.1".into(), types: vec![], conditions: vec![def] };
    condition_errors(&model).into_iter().next().map(|e| e.message)
}

/// Regression: a condition using a variable it does not declare was accepted at write time
/// (OpenFGA's checker refuses it); macro-bound names are not free variables.
#[test]
fn condition_with_undeclared_variable_is_refused_at_write_time() {
    let list = || ParamType::List(Box::new(ParamType::Int));
    let problem = write_time_problem(&[("x", ParamType::Int)], "x < limit");
    assert!(problem.as_deref().is_some_and(|p| p.contains("`c`") && p.contains("'limit'")), "{problem:?}");
    let problem = write_time_problem(&[("xs", list())], "xs.all(x, x > y)");
    assert!(problem.as_deref().is_some_and(|p| p.contains("'y'")), "{problem:?}");
    // A macro's variable is bound inside its comprehension only.
    let problem = write_time_problem(&[("xs", list())], "xs.all(x, x > 1) && x > 1");
    assert!(problem.as_deref().is_some_and(|p| p.contains("'x'")), "{problem:?}");
    for accepted in [
        "xs.all(x, x > 1)",
        "xs.exists(x, x == 2) || xs.exists_one(y, y == 3)",
        "xs.map(x, x * 2).filter(y, y > 2).size() > 0",
        "xs.all(x, xs.exists(y, y == x))",
        "type(xs) == list",
        "size(xs) > 0",
    ] {
        assert_eq!(write_time_problem(&[("xs", list())], accepted), None, "{accepted}");
    }
}

/// Regression: a condition whose result is surely not a bool, or whose operators get operands of
/// mismatched types, was accepted at write time (OpenFGA refuses both).
#[test]
fn condition_with_non_bool_result_or_mismatched_operands_is_refused_at_write_time() {
    let map_any = || ParamType::Map(Box::new(ParamType::Any));
    for (params, expression, expected) in [
        (vec![("x", ParamType::Int)], "x + 1", "'int'"),
        (vec![("x", ParamType::Int)], "\"text\"", "'string'"),
        (vec![("x", ParamType::Int)], "x", "'int'"),
        (vec![("x", ParamType::Any)], "x", "'dyn'"),
        (vec![("x", ParamType::Int)], "x > 1 ? 1 : 2", "'int'"),
        (vec![("x", ParamType::Int)], "[x]", "'list(int)'"),
        (vec![("x", ParamType::Int)], "x == \"1\"", "'(int, string)'"),
        (vec![("x", ParamType::String)], "x && true", "'string'"),
        (vec![("t", ParamType::Timestamp), ("d", ParamType::Duration)], "t < d", "'_<_'"),
    ] {
        let problem = write_time_problem(&params, expression);
        assert!(problem.as_deref().is_some_and(|p| p.contains(expected)), "{expression}: {problem:?}");
    }
    for (params, expression) in [
        (vec![("x", ParamType::Bool)], "x"),
        (vec![("m", map_any())], "m.a == 1 && has(m.b)"),
        (vec![("m", ParamType::Map(Box::new(ParamType::Bool)))], "m.a"),
        (vec![("x", ParamType::Int), ("y", ParamType::Double)], "x < y"),
        (vec![("x", ParamType::Any)], "x == 1 || x == \"a\""),
        (vec![("t", ParamType::Timestamp), ("d", ParamType::Duration)], "t + d > t"),
        (vec![("s", ParamType::String)], "s.startsWith(\"a\") || s == null"),
        (vec![("ip", ParamType::IpAddress)], "ip.in_cidr(\"10.0.0.0/8\")"),
    ] {
        assert_eq!(write_time_problem(&params, expression), None, "{expression}");
    }
}
