use serde::{Deserialize, Serialize};

/// Bumped when the file's shape changes; older kiln refuses newer locks.
pub const LOCK_VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Lock {
    pub version: u32,
    /// `sha256:` of the definition's lock inputs.
    pub checksum: String,
    /// The lock inputs themselves, so `--check` can say which one changed.
    pub inputs: toml::Table,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<ParentPin>,
    #[serde(default, rename = "suite")]
    pub suites: Vec<SuitePin>,
    #[serde(default, rename = "package")]
    pub packages: Vec<LockedPackage>,
}

/// The parent image this one is built on, pinned by its lock's digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ParentPin {
    /// As written in `[base].from`.
    pub path: String,
    pub name: String,
    /// `sha256:` of the parent's kiln.lock bytes.
    pub lock: String,
}

/// One suite the packages came from: mirror-independent facts only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct SuitePin {
    pub name: String,
    /// The signed Release's `Date`.
    pub date: String,
    /// `sha256:` of the InRelease file the indices were verified against.
    pub inrelease: String,
    /// `sha256:` of each verified Packages index, per component.
    pub indices: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct LockedPackage {
    pub name: String,
    pub version: String,
    pub architecture: String,
    pub suite: String,
    /// Path below the archive root, e.g. `pool/main/c/curl/curl_…_amd64.deb`.
    pub path: String,
    pub size: u64,
    pub sha256: String,
    /// essential, required, important, standard, variant, requested, kernel
    /// or dependency.
    pub reason: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub needed_by: Vec<String>,
}

impl Lock {
    pub fn package(&self, name: &str) -> Option<&LockedPackage> {
        self.packages
            .binary_search_by(|p| p.name.as_str().cmp(name))
            .ok()
            .map(|i| &self.packages[i])
    }

    /// Puts everything in canonical order, so equal content is equal bytes.
    pub fn normalize(&mut self) {
        self.packages.sort_by(|a, b| a.name.cmp(&b.name));
        for p in &mut self.packages {
            p.needed_by.sort();
            p.needed_by.dedup();
        }
    }
}
