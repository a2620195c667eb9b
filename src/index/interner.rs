//! String ↔ dense `u32` interning for type names, relation names and object ids.
//!
//! Invariant: ids are dense and stable: the n-th distinct string gets `offset + n` and keeps it
//! for the interner's life (nothing is ever un-interned).
//! Must not import anything outside `index`.

use rustc_hash::FxHashMap;
use std::sync::Arc;

/// Assigns dense ids to strings.
#[derive(Debug, Clone, Default)]
pub(crate) struct Interner {
    ids: FxHashMap<Arc<str>, u32>,
    names: Vec<Arc<str>>,
    offset: u32,
}

impl Interner {
    /// An interner whose first id is `offset` (used by request-local overlays over a base index).
    pub(crate) fn with_offset(offset: u32) -> Self {
        Interner { offset, ..Interner::default() }
    }

    /// The id of `name`, interning it if new.
    pub(crate) fn intern(&mut self, name: &str) -> u32 {
        if let Some(&id) = self.ids.get(name) {
            return id;
        }
        let id = self.offset + self.names.len() as u32;
        let shared: Arc<str> = Arc::from(name);
        self.names.push(shared.clone());
        self.ids.insert(shared, id);
        id
    }

    /// The id of `name` if interned.
    pub(crate) fn get(&self, name: &str) -> Option<u32> {
        self.ids.get(name).copied()
    }

    /// The string of an id this interner assigned.
    pub(crate) fn name(&self, id: u32) -> Option<&str> {
        let local = id.checked_sub(self.offset)?;
        self.names.get(local as usize).map(|s| &**s)
    }

    /// One past the largest id assigned.
    pub(crate) fn end(&self) -> u32 {
        self.offset + self.names.len() as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_dense_and_stable() {
        let mut interner = Interner::default();
        assert_eq!(interner.intern("a"), 0);
        assert_eq!(interner.intern("b"), 1);
        assert_eq!(interner.intern("a"), 0);
        assert_eq!(interner.name(1), Some("b"));
        assert_eq!(interner.get("c"), None);
    }

    #[test]
    fn offset_interner_starts_past_the_base() {
        let mut interner = Interner::with_offset(10);
        assert_eq!(interner.intern("x"), 10);
        assert_eq!(interner.name(10), Some("x"));
        assert_eq!(interner.name(3), None);
        assert_eq!(interner.end(), 11);
    }
}
