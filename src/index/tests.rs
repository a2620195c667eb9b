//! Index invariants: build equals replayed applies; overlays add without copying.

use super::*;

fn tuple(text: &str) -> Tuple {
    text.parse().unwrap()
}

fn sorted(index: &Index) -> Vec<String> {
    let mut all: Vec<String> = index.tuples().iter().map(ToString::to_string).collect();
    all.sort();
    all
}

#[test]
fn build_equals_replayed_inserts_and_removes() {
    let final_set = ["doc:1#viewer@user:anne", "doc:1#viewer@group:eng#member", "doc:2#viewer@user:*"];
    let built = Index::build(final_set.iter().map(|t| tuple(t)).collect::<Vec<_>>().iter());
    let mut replayed = Index::new();
    for text in ["doc:1#viewer@user:bob", "doc:1#viewer@user:anne", "doc:2#viewer@user:*"] {
        assert!(replayed.insert(&tuple(text)));
    }
    assert!(!replayed.insert(&tuple("doc:1#viewer@user:anne")));
    assert!(replayed.insert(&tuple("doc:1#viewer@group:eng#member")));
    assert!(replayed.remove(&tuple("doc:1#viewer@user:bob")));
    assert!(!replayed.remove(&tuple("doc:1#viewer@user:bob")));
    assert_eq!(sorted(&built), sorted(&replayed));
    assert_eq!(built.len(), 3);
    assert_eq!(replayed.len(), 3);
}

#[test]
fn reverse_and_forward_agree() {
    let index = Index::build([tuple("doc:1#viewer@user:anne"), tuple("doc:2#viewer@user:anne")].iter());
    let view = View::new(&index);
    let doc = view.type_id("doc").unwrap();
    let viewer = view.relation_id("viewer").unwrap();
    let user = view.type_id("user").unwrap();
    let anne = SubjectKey {
        kind: SubjectKind { subject_type: user, relation: RelationId::NONE },
        object: view.object_id(user, "anne").unwrap(),
    };
    let objects = view.relation_tuples(doc, viewer).reverse(anne);
    assert_eq!(objects.ids().len(), 2);
    for object in objects.iter() {
        assert!(view.forward_contains(doc, viewer, object, anne));
    }
}

#[test]
fn overlay_adds_contextual_tuples_without_touching_the_base() {
    let base = Index::build([tuple("doc:1#viewer@user:anne")].iter());
    let overlay = Overlay::new(&base, [tuple("doc:1#viewer@user:bob"), tuple("folder:x#owner@user:anne")].iter());
    let view = overlay.view(&base);
    let doc = view.type_id("doc").unwrap();
    let viewer = view.relation_id("viewer").unwrap();
    let user = view.type_id("user").unwrap();
    let bob = view.object_id(user, "bob").unwrap();
    let subjects: Vec<ObjectId> = view
        .forward(doc, viewer, view.object_id(doc, "1").unwrap())
        .flat_map(|(_, b)| b.iter().collect::<Vec<_>>())
        .collect();
    assert!(subjects.contains(&bob));
    assert_eq!(view.object_name(user, bob), Some("bob"));
    assert!(view.type_id("folder").is_some());
    assert_eq!(base.len(), 1);
    assert!(View::new(&base).type_id("folder").is_none());
}

#[test]
fn bulk_load_equals_one_by_one_inserts() {
    let texts = [
        "doc:1#viewer@user:anne",
        "doc:1#viewer@group:eng#member",
        "doc:1#viewer@user:anne",
        "doc:2#parent@folder:x",
        "doc:2#viewer@user:*",
        "folder:x#viewer@user:bob",
        "group:eng#member@group:core#member",
        "group:core#member@user:carl",
    ];
    let mut one_by_one = Index::new();
    let mut bulk = Index::new();
    let mut loader = Loader::new(&mut bulk);
    for (i, text) in texts.iter().enumerate() {
        let t = tuple(text);
        let expiry = (i == 4).then_some(99);
        let added = one_by_one.insert_expiring(&t, expiry);
        let user = t.subject.to_string();
        let subject = crate::tuple::split_subject(&user).unwrap();
        let loaded = loader.insert(&t.object.object_type, &t.object.id, &t.relation, subject, None, expiry);
        assert_eq!(added, loaded, "{text}");
    }
    loader.finish();
    let with_expiry = |index: &Index| {
        let mut all: Vec<String> = index.tuples_with_expiry().iter().map(|(t, at)| format!("{t} {at:?}")).collect();
        all.sort();
        all
    };
    assert_eq!(with_expiry(&bulk), with_expiry(&one_by_one));
    assert_eq!((bulk.len(), bulk.expiring_len()), (one_by_one.len(), one_by_one.expiring_len()));
    let eng = tuple("group:eng#member@user:carl");
    let view = View::new(&bulk);
    let group = view.type_id("group").unwrap();
    let member = view.relation_id("member").unwrap();
    let core = view.object_id(group, "core").unwrap();
    let reach = bulk.closures.get(&(group, member)).unwrap().reach(core).unwrap();
    assert!(reach.groups.contains_object(view.object_id(group, "eng").unwrap()));
    assert!(!bulk.contains(&eng));
}
