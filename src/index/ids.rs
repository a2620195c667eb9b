//! The typed ids the index hands out: [`ObjectTypeId`], [`RelationId`] and [`ObjectId`] (an
//! object's id within its type), each interned densely from 0 by its own
//! [`Interner`](super::interner::Interner). An object id, a relation id and a type id are
//! different types, so one passed where another is meant does not compile.
//!
//! What it owns: the id newtypes and the one place their raw `u32` is read or made
//! ([`Id::raw`], [`Id::from_raw`]), used only where ids meet untyped storage (interner buckets,
//! roaring bitmaps, vectors indexed by id, a cursor's text, the library's public `u32` ids).
//! Sets and maps of object ids (`idset.rs`, and [`ObjectBitmap`](super::ObjectBitmap) over a
//! roaring bitmap) take and yield [`ObjectId`]s, so callers never convert.
//! Invariant: each newtype is `repr(transparent)` over `u32`, so it costs exactly what the bare
//! integer did; a sentinel ([`RelationId::NONE`], [`ObjectId::WILDCARD`]) is a named constant no
//! interner can hand out (ids are dense from 0, so `u32::MAX` would need four billion names
//! first), and a name the index never saw has no id (`None`), never a shared sentinel.
//! Must not import anything outside `index`.

/// An id stored as a raw `u32` where storage is untyped (interners, bitmaps, dense vectors).
pub(crate) trait Id: Copy {
    /// The id read back from its raw form.
    fn from_raw(raw: u32) -> Self;
    /// The id's raw form.
    fn raw(self) -> u32;
}

/// Declares a `repr(transparent)` id newtype over `u32` and its [`Id`] impl.
macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[repr(transparent)]
        #[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub(crate) struct $name(u32);

        impl Id for $name {
            #[inline(always)]
            fn from_raw(raw: u32) -> Self {
                $name(raw)
            }

            #[inline(always)]
            fn raw(self) -> u32 {
                self.0
            }
        }
    };
}

id_type!(
    /// Interned id of an object type name (`document`, `user`).
    ObjectTypeId
);

id_type!(
    /// Interned id of a relation name (shared by all types).
    RelationId
);

id_type!(
    /// Interned id of an object id within its type (`document:readme` is `readme` in `document`).
    ObjectId
);

impl ObjectId {
    /// The object of `type:*`, the wildcard subject. No interner hands out this id (ids are
    /// dense from 0), so it never equals a named object's id; a name the index never saw has no
    /// id at all (`None`), so two unknown names never meet here either.
    pub(crate) const WILDCARD: ObjectId = ObjectId(u32::MAX);
}

impl RelationId {
    /// The relation slot of a subject that is a plain object or a wildcard: no interned
    /// relation has this id, so it never equals one.
    pub(crate) const NONE: RelationId = RelationId(u32::MAX);
}
