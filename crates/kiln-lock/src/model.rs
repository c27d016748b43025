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
    /// Third-party repositories (`[[repository]]`), by suite and key.
    #[serde(default, rename = "repository", skip_serializing_if = "Vec::is_empty")]
    pub repositories: Vec<RepositoryPin>,
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

/// A third-party repository the packages came from. Never its URL: that
/// lives in the definition, so the lock builds from any copy of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RepositoryPin {
    /// The repository's `name` in the definition; packages name it as origin.
    pub name: String,
    pub suite: String,
    /// Fingerprint of the primary key whose signature verified.
    pub key: String,
    pub date: String,
    pub inrelease: String,
    pub indices: Vec<String>,
}

/// Where packages come from unless they say otherwise.
pub const DEBIAN_ORIGIN: &str = "debian";
/// The origin of `[packages] local` files.
pub const LOCAL_ORIGIN: &str = "local";

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
    /// `local` (then `path` is the file as the definition names it), a
    /// repository's name, or absent for Debian's archive.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<String>,
}

impl LockedPackage {
    /// `debian`, `local` or the repository's name.
    pub fn origin(&self) -> &str {
        self.origin.as_deref().unwrap_or(DEBIAN_ORIGIN)
    }

    pub fn is_local(&self) -> bool {
        self.origin.as_deref() == Some(LOCAL_ORIGIN)
    }
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
