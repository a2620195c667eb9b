//! Unit tests of the `.zed` front end on small inline schemas.

use crate::model::{Model, Rewrite};

#[test]
fn parses_relations_permissions_and_precedence() {
    let model = Model::parse_zed(
        "/** a user */ definition user {}\n// groups\ndefinition group { relation member: user | group#member }\n\
         definition doc {\n relation viewer: user | user:* | group#member\n relation banned: user\n\
         permission view = viewer + banned - banned & viewer\n}",
    )
    .unwrap();
    let view = model.relation("doc", "view").unwrap();
    // `-` binds loosest, then `&`, then `+`.
    assert!(
        matches!(&view.rewrite, Rewrite::Exclusion { subtract, .. } if matches!(**subtract, Rewrite::Intersection(_)))
    );
    assert_eq!(model.relation("doc", "viewer").unwrap().directly_related.len(), 3);
}

#[test]
fn nil_folds_away() {
    let model = Model::parse_zed(
        "definition user {}\ndefinition doc { relation v: user\n permission a = v - nil\n permission b = v & nil\n permission c = nil + v }",
    )
    .unwrap();
    assert!(matches!(model.relation("doc", "a").unwrap().rewrite, Rewrite::Computed { .. }));
    let b = model.relation("doc", "b").unwrap();
    assert!(b.rewrite == Rewrite::This && b.directly_related.is_empty());
    assert!(matches!(model.relation("doc", "c").unwrap().rewrite, Rewrite::Computed { .. }));
}

#[test]
fn unknown_relation_is_an_error_with_position() {
    let errors = Model::parse_zed("definition user {}\ndefinition doc {\n  permission view = nope\n}").unwrap_err();
    let span = errors[0].span.unwrap();
    assert_eq!((span.line_start, span.column_start), (2, 20));
    assert!(errors[0].message.contains("nope"), "{}", errors[0].message);
}

#[test]
fn caveats_become_conditions() {
    let model = Model::parse_zed(
        "caveat c(a int, b list<string>, m map<any>) { a == 1 && {\"k\": 1}.k == 1 }\ndefinition user {}\n\
         definition doc { relation v: user with c | user }",
    )
    .unwrap();
    let condition = model.condition("c").unwrap();
    assert_eq!(condition.parameters.len(), 3);
    assert_eq!(condition.expression, "a == 1 && {\"k\": 1}.k == 1");
    assert_eq!(model.relation("doc", "v").unwrap().directly_related[0].condition.as_deref(), Some("c"));
}

#[test]
fn expiration_is_kept_on_the_restriction() {
    let model = Model::parse_zed(
        "use expiration\ncaveat c(a int) { a == 1 }\ndefinition user {}\n\
         definition doc { relation v: user with expiration | user with c and expiration }",
    )
    .unwrap();
    let related = &model.relation("doc", "v").unwrap().directly_related;
    assert!(related[0].expiration && related[1].expiration);
    assert_eq!(related[1].condition.as_deref(), Some("c"));
}

#[test]
fn arrow_over_permission_is_rejected() {
    let errors = Model::parse_zed(
        "definition user {}\ndefinition doc { relation p: doc\n permission q = p\n permission r = q->q }",
    )
    .unwrap_err();
    assert!(errors[0].message.contains("must be a relation"), "{}", errors[0].message);
}

#[test]
fn detects_zed_text() {
    assert!(Model::looks_like_zed("// c\ndefinition user {}"));
    assert!(!Model::looks_like_zed("model\n  schema 1.1\ntype user"));
}

#[test]
fn json_round_trip_keeps_spicedb_only_constructs() {
    let model = Model::parse_zed(
        "use expiration\ndefinition user {}\ndefinition team { relation member: user with expiration }\n\
         definition doc { relation team: team\n permission all = team.all(member) }",
    )
    .unwrap();
    let back = Model::from_json_unchecked(&model.to_json()).unwrap();
    assert_eq!(
        back.relation("doc", "all").unwrap().rewrite,
        Rewrite::TupleToUsersetAll { tupleset: "team".into(), computed: "member".into(), span: Default::default() }
    );
    assert!(back.relation("team", "member").unwrap().directly_related[0].expiration);
}
