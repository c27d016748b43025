//! `Release` files: suite metadata and the digests of the indices they cover.
// Implemented by the archive-access work (see crates/kiln-archive).
