//! What is asked of the resolver, and what it answers.

use std::collections::{BTreeMap, BTreeSet};

use kiln_deb::{Priority, Version};

use crate::universe::Universe;

/// mmdebstrap's variants: which packages a base system starts from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Variant {
    /// `Essential: yes` packages.
    Essential,
    /// Essential plus apt.
    Apt,
    /// Essential, `Priority: required`, and apt (`minbase` is the same).
    Required,
    /// Required plus `Priority: important`.
    Important,
    /// Important plus `Priority: standard`.
    Standard,
}

impl Variant {
    /// The seed set of this variant in `universe`, named by the newest
    /// version of each package (the candidate, as apt's patterns see it).
    pub fn seeds(self, universe: &Universe) -> Vec<Seed> {
        let lowest = match self {
            Variant::Essential | Variant::Apt => None,
            Variant::Required => Some(Priority::Required),
            Variant::Important => Some(Priority::Important),
            Variant::Standard => Some(Priority::Standard),
        };
        let mut seeds: Vec<Seed> = Vec::new();
        let mut names: Vec<&str> = universe.names().collect();
        names.sort_unstable();
        for name in names {
            let Some(&newest) = universe.versions(name).first() else {
                continue;
            };
            let p = universe.package(newest);
            let reason = if p.essential {
                Reason::Essential
            } else if lowest.is_some_and(|l| p.priority <= l) {
                Reason::Priority(p.priority)
            } else {
                continue;
            };
            seeds.push(Seed {
                name: name.to_string(),
                pin: None,
                reason,
            });
        }
        if self != Variant::Essential && !seeds.iter().any(|s| s.name == "apt") {
            seeds.push(Seed {
                name: "apt".into(),
                pin: None,
                reason: Reason::Variant,
            });
        }
        seeds
    }
}

/// A package the image starts from or asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seed {
    pub name: String,
    /// `name=version` in the definition.
    pub pin: Option<Version>,
    pub reason: Reason,
}

/// Why a package is in the image.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Reason {
    /// `Essential: yes`.
    Essential,
    /// Its priority is within the variant's.
    Priority(Priority),
    /// The variant names it (apt).
    Variant,
    /// `[packages].install`.
    Requested,
    /// `[disk].kernel`.
    Kernel,
    /// What a disk needs beside its kernel: `[disk].bootloader` and `[disk].init`.
    Disk,
    /// Only needed by other packages.
    Dependency,
}

#[derive(Debug, Clone, Default)]
pub struct Request {
    pub seeds: Vec<Seed>,
    /// Follow Recommends too (never required: an unsatisfiable Recommends is skipped).
    pub recommends: bool,
    /// Packages already installed by a parent image: fixed, never changed.
    pub installed: BTreeMap<String, Version>,
    /// Versions to keep when the archive still has them (the current lock).
    pub prefer: BTreeMap<String, Version>,
}

/// One package of the answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    pub name: String,
    pub version: Version,
    pub architecture: String,
    pub suite: String,
    pub filename: String,
    pub size: u64,
    pub sha256: String,
    pub reason: Reason,
    /// Packages whose dependencies this one satisfies.
    pub needed_by: BTreeSet<String>,
}

/// The packages to install on top of `Request::installed`, sorted by name.
#[derive(Debug, Clone, Default)]
pub struct Resolution {
    pub packages: Vec<Resolved>,
}
