//! Fragments: partial definitions that images share by `include`.

use serde::Serialize;

use crate::model::DefPath;

/// One `include = [...]` entry of a definition, after its sections were
/// validated and merged into the definition that includes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Fragment {
    /// As written in the including definition, and resolved against it.
    pub path: DefPath,
    /// `sha256:<hex>` of the fragment's bytes: a lock input, so editing the
    /// fragment makes exactly the images that include it stale.
    pub digest: String,
}

/// The sections a fragment may hold: what an image adds, never what it is
/// (`[image]`, `[base]`, `[disk]`, `[outputs]` stay in the definition).
pub const FRAGMENT_SECTIONS: &[&str] = &[
    "packages", "files", "users", "run", "services", "runtime", "check",
];
