//! The suites' one way to set up an engine and ask it: a store with a model and tuples, and a
//! check written as the tuple it asks about (`document:1#viewer@user:anne`).
//!
//! ```ignore
//! let fixture = Fixture::new(MODEL).tuples(["document:1#viewer@user:anne"]);
//! fixture.assert_allowed("document:1#viewer@user:anne");
//! fixture.assert_denied("document:1#viewer@user:bob");
//! ```
//!
//! Suites that manage their own engines (a clock, a backend, several stores) use the free
//! functions, which the fixture is built on; every engine call of a check is in [`try_check`].

use writ::engine::{CheckRequest, EngineError, WriteRequest};
use writ::store::StoredTuple;
use writ::{Engine, Model, Tuple};

/// An in-memory engine (or one of the caller's) with one store holding a model.
pub struct Fixture {
    /// The engine.
    pub engine: Engine,
    /// The store's id.
    pub store: String,
}

impl Fixture {
    /// An in-memory engine with one store holding `model` (OpenFGA DSL).
    pub fn new(model: &str) -> Self {
        Self::on(Engine::in_memory(), model)
    }

    /// `engine` with a new store holding `model`.
    pub fn on(engine: Engine, model: &str) -> Self {
        let store = store_with(&engine, model, &[]);
        Fixture { engine, store }
    }

    /// Writes `tuples` (`object#relation@user`) in one write.
    pub fn tuples(self, tuples: impl IntoIterator<Item = impl AsRef<str>>) -> Self {
        write_tuples(&self.engine, &self.store, tuples);
        self
    }

    /// The check of `tuple` (`document:1#viewer@user:anne`); an error fails the test.
    pub fn check(&self, tuple: &str) -> bool {
        check(&self.engine, &self.store, tuple)
    }

    /// The check of `tuple`, or the engine's error.
    pub fn try_check(&self, tuple: &str) -> Result<bool, EngineError> {
        try_check(&self.engine, &self.store, tuple)
    }

    /// Asserts that the check of `tuple` allows it.
    pub fn assert_allowed(&self, tuple: &str) {
        assert!(self.check(tuple), "expected `{tuple}` to be allowed");
    }

    /// Asserts that the check of `tuple` denies it.
    pub fn assert_denied(&self, tuple: &str) {
        assert!(!self.check(tuple), "expected `{tuple}` to be denied");
    }
}

/// A new store of `engine` holding `model` (OpenFGA DSL) and then `tuples`; returns its id.
pub fn store_with(engine: &Engine, model: &str, tuples: &[&str]) -> String {
    let store = engine.create_store("fixture").unwrap().id;
    engine.store(&store).unwrap().write_model(Model::parse_dsl(model).unwrap()).unwrap();
    write_tuples(engine, &store, tuples);
    store
}

/// Writes `tuples` (`object#relation@user`) to `store` in one write; nothing when there are none.
pub fn write_tuples(engine: &Engine, store: &str, tuples: impl IntoIterator<Item = impl AsRef<str>>) {
    let writes: Vec<StoredTuple> =
        tuples.into_iter().map(|t| StoredTuple::new(t.as_ref().parse::<Tuple>().unwrap())).collect();
    if !writes.is_empty() {
        engine.store(store).unwrap().write(WriteRequest { writes, ..WriteRequest::default() }).unwrap();
    }
}

/// The check request for `object#relation@user`, split as text (not validated), so a test can
/// also ask about malformed objects and users. The user may be a userset (`group:eng#member`).
pub fn check_request(tuple: &str) -> CheckRequest {
    let (object, rest) = tuple.split_once('#').unwrap_or_else(|| panic!("`{tuple}` is not object#relation@user"));
    let (relation, user) = rest.split_once('@').unwrap_or_else(|| panic!("`{tuple}` is not object#relation@user"));
    CheckRequest { object: object.into(), relation: relation.into(), user: user.into(), ..CheckRequest::default() }
}

/// The check of `tuple` in `store`; an error fails the test.
pub fn check(engine: &Engine, store: &str, tuple: &str) -> bool {
    try_check(engine, store, tuple).unwrap_or_else(|error| panic!("check of `{tuple}` failed: {error}"))
}

/// The check of `tuple` in `store`, or the engine's error.
pub fn try_check(engine: &Engine, store: &str, tuple: &str) -> Result<bool, EngineError> {
    engine.store(store)?.check(&check_request(tuple)).map(|answer| answer.value)
}
