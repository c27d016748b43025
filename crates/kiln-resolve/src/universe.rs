//! Every package version the suites offer, indexed by name and by provided name.

use std::collections::HashMap;

use kiln_deb::{Package, Version};

/// One package version and the suite that offers it.
#[derive(Debug, Clone)]
pub struct Entry {
    pub package: Package,
    pub suite: String,
}

#[derive(Debug, Default)]
pub struct Universe {
    entries: Vec<Entry>,
    /// Indices into `entries`, newest version first; for equal versions the
    /// suite given first wins (the release before its updates).
    by_name: HashMap<String, Vec<usize>>,
    providers: HashMap<String, Vec<usize>>,
}

impl Universe {
    /// Builds the universe from suites in preference order, e.g.
    /// `[bookworm, bookworm-updates, bookworm-security]`.
    pub fn new(suites: Vec<(String, Vec<Package>)>) -> Universe {
        let mut u = Universe::default();
        for (suite, packages) in suites {
            for package in packages {
                let idx = u.entries.len();
                u.by_name.entry(package.name.clone()).or_default().push(idx);
                for p in &package.provides {
                    u.providers.entry(p.name.clone()).or_default().push(idx);
                }
                u.entries.push(Entry {
                    package,
                    suite: suite.clone(),
                });
            }
        }
        let entries = &u.entries;
        for list in u.by_name.values_mut() {
            // Stable sort keeps the suite order for equal versions.
            list.sort_by(|&a, &b| entries[b].package.version.cmp(&entries[a].package.version));
            list.dedup_by(|a, b| entries[*a].package.version == entries[*b].package.version);
        }
        u
    }

    pub fn entry(&self, idx: usize) -> &Entry {
        &self.entries[idx]
    }

    pub fn package(&self, idx: usize) -> &Package {
        &self.entries[idx].package
    }

    /// All versions of `name`, newest first.
    pub fn versions(&self, name: &str) -> &[usize] {
        self.by_name.get(name).map(Vec::as_slice).unwrap_or(&[])
    }

    pub fn find(&self, name: &str, version: &Version) -> Option<usize> {
        self.versions(name)
            .iter()
            .copied()
            .find(|&i| &self.entries[i].package.version == version)
    }

    /// Every version of every package that provides `name`.
    pub fn providers(&self, name: &str) -> &[usize] {
        self.providers.get(name).map(Vec::as_slice).unwrap_or(&[])
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.by_name.keys().map(String::as_str)
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}
