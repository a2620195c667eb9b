//! String ↔ dense `u32` interning for type names, relation names and object ids.
//!
//! What it owns: every interned string once, in one arena (`bytes`, with the end offset of each
//! string in `ends`), and a hash table of ids that compares by reading the arena. A store's
//! millions of object ids so cost their bytes plus about 16, instead of a heap string each and a
//! map holding a second pointer to it.
//!
//! Invariant: ids are dense and stable: the n-th distinct string gets `offset + n` and keeps it
//! for the interner's life (nothing is ever un-interned); the table holds exactly the local ids
//! `0..ends.len()`, each under the hash of its string.
//! Must not import anything outside `index`.

use hashbrown::HashTable;
use rustc_hash::FxBuildHasher;
use std::hash::BuildHasher;

/// Assigns dense ids to strings.
#[derive(Debug, Clone, Default)]
pub(crate) struct Interner {
    /// Every string, one after the other.
    bytes: String,
    /// Per local id, one past the end of its string in `bytes`.
    ends: Vec<usize>,
    /// Local ids, hashed by their string.
    table: HashTable<u32>,
    offset: u32,
}

fn hash(name: &str) -> u64 {
    FxBuildHasher.hash_one(name)
}

/// The string of local id `local` in an arena.
fn name_in<'s>(bytes: &'s str, ends: &[usize], local: u32) -> Option<&'s str> {
    let local = local as usize;
    let start = match local.checked_sub(1) {
        Some(before) => *ends.get(before)?,
        None => 0,
    };
    bytes.get(start..*ends.get(local)?)
}

impl Interner {
    /// An interner whose first id is `offset` (used by request-local overlays over a base index).
    pub(crate) fn with_offset(offset: u32) -> Self {
        Interner { offset, ..Interner::default() }
    }

    /// The id of `name`, interning it if new.
    pub(crate) fn intern(&mut self, name: &str) -> u32 {
        let hashed = hash(name);
        let Interner { bytes, ends, table, offset } = self;
        if let Some(&local) = table.find(hashed, |&local| name_in(bytes, ends, local) == Some(name)) {
            return *offset + local;
        }
        let local = ends.len() as u32;
        table.insert_unique(hashed, local, |&other| hash(name_in(bytes, ends, other).unwrap_or_default()));
        bytes.push_str(name);
        ends.push(bytes.len());
        *offset + local
    }

    /// The id of `name` if interned.
    pub(crate) fn get(&self, name: &str) -> Option<u32> {
        let local = self.table.find(hash(name), |&local| name_in(&self.bytes, &self.ends, local) == Some(name))?;
        Some(self.offset + local)
    }

    /// The string of an id this interner assigned.
    pub(crate) fn name(&self, id: u32) -> Option<&str> {
        name_in(&self.bytes, &self.ends, id.checked_sub(self.offset)?)
    }

    /// One past the largest id assigned.
    pub(crate) fn end(&self) -> u32 {
        self.offset + self.ends.len() as u32
    }

    /// Gives back spare capacity (after a bulk load).
    pub(crate) fn shrink_to_fit(&mut self) {
        let Interner { bytes, ends, table, .. } = self;
        bytes.shrink_to_fit();
        ends.shrink_to_fit();
        table.shrink_to_fit(|&local| hash(name_in(bytes, ends, local).unwrap_or_default()));
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

    #[test]
    fn many_names_survive_table_growth() {
        let mut interner = Interner::default();
        for i in 0..10_000u32 {
            assert_eq!(interner.intern(&format!("n{i}")), i);
        }
        interner.intern("");
        interner.shrink_to_fit();
        for i in 0..10_000u32 {
            assert_eq!(interner.get(&format!("n{i}")), Some(i));
            assert_eq!(interner.name(i), Some(format!("n{i}").as_str()));
        }
        assert_eq!(interner.get(""), Some(10_000));
        assert_eq!(interner.name(10_000), Some(""));
    }
}
