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
    table: Table,
    offset: u32,
}

/// Names resolved together by [`Interner::get_many`]: enough lookups in flight to overlap their
/// cache misses, few enough that their state stays in registers and L1.
const LOOKUP_WAVE: usize = 16;

fn hash(name: &str) -> u64 {
    // Fibonacci-mixed so the top bits (the bucket) and the middle bits (the tag) are both spread.
    FxBuildHasher.hash_one(name).wrapping_mul(0x9E37_79B9_7F4A_7C15)
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

/// Open addressing with linear probing, at most 7/8 full: per bucket a control byte (0 when
/// empty, else 0x80 and seven bits of the hash) and a local id. Its layout is known, unlike a
/// general hash map's, so a batch of lookups can take its steps side by side
/// ([`Interner::get_many`]).
#[derive(Debug, Clone, Default)]
struct Table {
    control: Vec<u8>,
    ids: Vec<u32>,
    len: usize,
}

impl Table {
    /// The first bucket and the control byte of a hash (the table is not empty).
    fn start(&self, hashed: u64) -> (usize, u8) {
        let bits = self.control.len().trailing_zeros();
        let bucket = (hashed >> (64 - bits)) as usize & (self.control.len() - 1);
        (bucket, 0x80 | ((hashed >> 20) as u8 & 0x7f))
    }

    /// The first bucket from `bucket` on that is empty or holds `tag`.
    fn next_match(&self, mut bucket: usize, tag: u8) -> Option<usize> {
        let mask = self.control.len() - 1;
        loop {
            match *self.control.get(bucket)? {
                0 => return None,
                found if found == tag => return Some(bucket),
                _ => bucket = (bucket + 1) & mask,
            }
        }
    }

    /// The id under `hashed` for which `is` holds.
    fn find(&self, hashed: u64, is: impl Fn(u32) -> bool) -> Option<u32> {
        if self.control.is_empty() {
            return None;
        }
        let mask = self.control.len() - 1;
        let (mut bucket, tag) = self.start(hashed);
        loop {
            bucket = self.next_match(bucket, tag)?;
            let id = self.ids[bucket];
            if is(id) {
                return Some(id);
            }
            bucket = (bucket + 1) & mask;
        }
    }

    /// Adds an id known to be absent; `rehash` gives the hash of any id already in the table.
    fn insert_unique(&mut self, hashed: u64, id: u32, rehash: impl Fn(u32) -> u64) {
        if (self.len + 1) * 8 > self.control.len() * 7 {
            self.resize((self.control.len() * 2).max(16), &rehash);
        }
        self.place(hashed, id);
        self.len += 1;
    }

    fn place(&mut self, hashed: u64, id: u32) {
        let mask = self.control.len() - 1;
        let (mut bucket, tag) = self.start(hashed);
        while self.control[bucket] != 0 {
            bucket = (bucket + 1) & mask;
        }
        self.control[bucket] = tag;
        self.ids[bucket] = id;
    }

    fn resize(&mut self, buckets: usize, rehash: impl Fn(u32) -> u64) {
        let old = std::mem::replace(self, Table { control: vec![0; buckets], ids: vec![0; buckets], len: self.len });
        for (&control, &id) in old.control.iter().zip(&old.ids) {
            if control != 0 {
                self.place(rehash(id), id);
            }
        }
    }

    /// The fewest buckets (a power of two, at least 16) that hold `len` ids at most 7/8 full.
    fn buckets_for(len: usize) -> usize {
        (len * 8).div_ceil(7).next_power_of_two().max(16)
    }
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
        if let Some(local) = table.find(hashed, |local| name_in(bytes, ends, local) == Some(name)) {
            return *offset + local;
        }
        let local = ends.len() as u32;
        table.insert_unique(hashed, local, |other| hash(name_in(bytes, ends, other).unwrap_or_default()));
        bytes.push_str(name);
        ends.push(bytes.len());
        *offset + local
    }

    /// The id of `name` if interned.
    pub(crate) fn get(&self, name: &str) -> Option<u32> {
        let local = self.table.find(hash(name), |local| name_in(&self.bytes, &self.ends, local) == Some(name))?;
        Some(self.offset + local)
    }

    /// [`Interner::get`] of every name, in order. The lookups go in waves whose steps (control
    /// byte and id, then string) are taken for the whole wave at once, so the memory reads
    /// of a wave overlap instead of each waiting for the one before.
    pub(crate) fn get_many<S: AsRef<str>>(&self, names: &[S]) -> Vec<Option<u32>> {
        let mut found = Vec::with_capacity(names.len());
        if self.table.control.is_empty() {
            found.resize(names.len(), None);
            return found;
        }
        for wave in names.chunks(LOOKUP_WAVE) {
            let mut starts = [(0usize, 0u8); LOOKUP_WAVE];
            for (start, name) in starts.iter_mut().zip(wave) {
                *start = self.table.start(hash(name.as_ref()));
            }
            let mut candidates = [None; LOOKUP_WAVE];
            for (candidate, &(bucket, tag)) in candidates.iter_mut().zip(&starts).take(wave.len()) {
                *candidate = self.table.next_match(bucket, tag).map(|b| self.table.ids[b]);
            }
            let mut spans = [None; LOOKUP_WAVE];
            for (span, candidate) in spans.iter_mut().zip(&candidates) {
                *span = candidate.and_then(|local| Some((local, name_in(&self.bytes, &self.ends, local)?)));
            }
            for (i, name) in wave.iter().enumerate() {
                let name = name.as_ref();
                let hit = match spans[i] {
                    Some((local, stored)) if stored == name => Some(self.offset + local),
                    // No bucket with the tag: absent. A tag shared with another name: look again.
                    None if candidates[i].is_none() => None,
                    _ => self.get(name),
                };
                found.push(hit);
            }
        }
        found
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
        let buckets = Table::buckets_for(table.len);
        if buckets < table.control.len() {
            table.resize(buckets, |local| hash(name_in(bytes, ends, local).unwrap_or_default()));
        }
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

    #[test]
    fn get_many_answers_as_get_does_for_known_and_unknown_names() {
        let mut interner = Interner::with_offset(7);
        assert_eq!(interner.get_many(&["a", "b"]), vec![None, None], "an empty interner knows no name");
        for i in 0..5_000u32 {
            interner.intern(&format!("d{i}"));
        }
        interner.intern("");
        // Known, unknown, repeated and empty names, in more than one wave and a partial last one.
        let names: Vec<String> = (0..1_000u32)
            .map(|i| if i % 3 == 0 { format!("x{i}") } else { format!("d{}", (i * 7919) % 5_000) })
            .chain(["".into(), "d1".into(), "d1".into()])
            .collect();
        let one_by_one: Vec<Option<u32>> = names.iter().map(|n| interner.get(n)).collect();
        assert_eq!(interner.get_many(&names), one_by_one);
        assert!(one_by_one.iter().any(Option::is_none) && one_by_one.iter().any(Option::is_some));
    }

    #[test]
    fn a_table_seven_eighths_full_finds_every_name_and_no_other() {
        // A table of 16 buckets holds at most 14 names, so probe runs are long and wrap around.
        let mut interner = Interner::default();
        let names: Vec<String> = (0..14).map(|i| format!("name-{i}")).collect();
        for (i, name) in names.iter().enumerate() {
            assert_eq!(interner.intern(name), i as u32);
        }
        assert_eq!(interner.table.control.len(), 16);
        let wanted: Vec<Option<u32>> = (0..14).map(Some).collect();
        assert_eq!(interner.get_many(&names), wanted);
        assert_eq!(interner.get("name-14"), None);
        assert_eq!(interner.get_many(&["name-14"]), vec![None]);
    }
}
