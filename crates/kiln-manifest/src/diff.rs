//! What changed between two images, from their manifests alone.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::model::{FileEntry, FileKind, Manifest, Package};

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq, Default)]
pub struct Diff {
    pub packages_added: Vec<PkgRef>,
    pub packages_removed: Vec<PkgRef>,
    pub upgraded: Vec<PkgChange>,
    pub downgraded: Vec<PkgChange>,
    /// The same version from another origin (say, a vendor's rebuild).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub moved: Vec<PkgChange>,
    pub files_added: Vec<FileRef>,
    pub files_removed: Vec<FileRef>,
    pub files_changed: Vec<FileChange>,
    /// Bytes, B's packages' `Installed-Size` minus A's.
    pub installed_size_change: i64,
    /// Bytes of regular files, B minus A.
    pub file_bytes_change: i64,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct PkgRef {
    pub name: String,
    pub version: String,
    pub architecture: String,
    /// A `[[repository]]`'s name or `local`; absent for Debian's archive.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<String>,
}

/// A package present in both images at different versions. The
/// architecture is part of the key: `libc6:amd64` and `libc6:i386` change
/// separately.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct PkgChange {
    pub name: String,
    pub architecture: String,
    pub from: String,
    pub to: String,
    /// Origins (absent: Debian's archive), given when they differ.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origins: Option<(String, String)>,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct FileRef {
    pub path: String,
    pub kind: FileKind,
    pub size: u64,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct FileChange {
    pub path: String,
    /// Each difference in words: `content`, `mode 0644→0755`,
    /// `owner 0:0→33:33`, `type file→symlink`, `target a→b`.
    pub what: Vec<String>,
}

impl Diff {
    pub fn is_empty(&self) -> bool {
        let Diff {
            packages_added,
            packages_removed,
            upgraded,
            downgraded,
            moved,
            files_added,
            files_removed,
            files_changed,
            installed_size_change,
            file_bytes_change,
        } = self;
        packages_added.is_empty()
            && packages_removed.is_empty()
            && upgraded.is_empty()
            && downgraded.is_empty()
            && moved.is_empty()
            && files_added.is_empty()
            && files_removed.is_empty()
            && files_changed.is_empty()
            && *installed_size_change == 0
            && *file_bytes_change == 0
    }
}

/// What turns image `a` into image `b`. Every list is sorted: packages by
/// name and architecture, files by path.
pub fn diff(a: &Manifest, b: &Manifest) -> Diff {
    let mut d = Diff::default();

    let key = |p: &'_ Package| (p.name.clone(), p.architecture.clone());
    let old: BTreeMap<_, &Package> = a.packages.iter().map(|p| (key(p), p)).collect();
    let new: BTreeMap<_, &Package> = b.packages.iter().map(|p| (key(p), p)).collect();
    for (k, p) in &old {
        match new.get(k) {
            None => d.packages_removed.push(pkg_ref(p)),
            Some(q) if q.version != p.version || q.origin != p.origin => {
                let show = |o: &Option<String>| o.as_deref().unwrap_or("debian").to_owned();
                let change = PkgChange {
                    name: p.name.clone(),
                    architecture: p.architecture.clone(),
                    from: p.version.clone(),
                    to: q.version.clone(),
                    origins: (q.origin != p.origin).then(|| (show(&p.origin), show(&q.origin))),
                };
                match compare_versions(&p.version, &q.version) {
                    Ordering::Greater => d.downgraded.push(change),
                    Ordering::Equal if q.version == p.version => d.moved.push(change),
                    _ => d.upgraded.push(change),
                }
            }
            Some(_) => {}
        }
    }
    d.packages_added = new
        .iter()
        .filter(|(k, _)| !old.contains_key(k))
        .map(|(_, p)| pkg_ref(p))
        .collect();

    let old: BTreeMap<&str, &FileEntry> = a.files.iter().map(|f| (f.path.as_str(), f)).collect();
    let new: BTreeMap<&str, &FileEntry> = b.files.iter().map(|f| (f.path.as_str(), f)).collect();
    for (path, f) in &old {
        match new.get(path) {
            None => d.files_removed.push(file_ref(f)),
            Some(g) => {
                let what = changes(f, g);
                if !what.is_empty() {
                    d.files_changed.push(FileChange {
                        path: path.to_string(),
                        what,
                    });
                }
            }
        }
    }
    d.files_added = new
        .iter()
        .filter(|(path, _)| !old.contains_key(*path))
        .map(|(_, f)| file_ref(f))
        .collect();

    d.installed_size_change = signed(b.total_installed_size()) - signed(a.total_installed_size());
    d.file_bytes_change = signed(b.total_file_bytes()) - signed(a.total_file_bytes());
    d
}

/// Debian's ordering (`1:1.0` > `2.0`, `1.0~rc1` < `1.0`). A version dpkg
/// would not accept cannot be ordered by its rules; comparing the strings
/// at least gives the same answer every time.
fn compare_versions(a: &str, b: &str) -> Ordering {
    match (
        a.parse::<debversion::Version>(),
        b.parse::<debversion::Version>(),
    ) {
        (Ok(a), Ok(b)) => a.cmp(&b),
        _ => a.cmp(b),
    }
}

fn changes(a: &FileEntry, b: &FileEntry) -> Vec<String> {
    let mut what = Vec::new();
    if a.kind != b.kind {
        what.push(format!("type {}→{}", a.kind, b.kind));
    } else {
        if a.sha256 != b.sha256 || (a.kind == FileKind::File && a.size != b.size) {
            what.push("content".to_string());
        }
        if a.target != b.target {
            let show = |t: &Option<String>| t.clone().unwrap_or_default();
            what.push(format!("target {}→{}", show(&a.target), show(&b.target)));
        }
    }
    if a.mode != b.mode {
        what.push(format!("mode {:04o}→{:04o}", a.mode, b.mode));
    }
    if (a.uid, a.gid) != (b.uid, b.gid) {
        what.push(format!("owner {}:{}→{}:{}", a.uid, a.gid, b.uid, b.gid));
    }
    what
}

fn pkg_ref(p: &Package) -> PkgRef {
    PkgRef {
        name: p.name.clone(),
        version: p.version.clone(),
        architecture: p.architecture.clone(),
        origin: p.origin.clone(),
    }
}

fn file_ref(f: &FileEntry) -> FileRef {
    FileRef {
        path: f.path.clone(),
        kind: f.kind,
        size: f.size,
    }
}

fn signed(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// For people: one line per change, `+` added, `-` removed, `~` changed.
impl fmt::Display for Diff {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() {
            return writeln!(f, "no changes");
        }
        // Debian's packages say nothing of their origin; others name it.
        let from = |o: &Option<String>| o.as_ref().map(|o| format!(" [{o}]")).unwrap_or_default();
        for p in &self.packages_added {
            let origin = from(&p.origin);
            writeln!(f, "+ {}:{} {}{origin}", p.name, p.architecture, p.version)?;
        }
        for p in &self.packages_removed {
            let origin = from(&p.origin);
            writeln!(f, "- {}:{} {}{origin}", p.name, p.architecture, p.version)?;
        }
        for (verb, list) in [
            ("upgraded", &self.upgraded),
            ("downgraded", &self.downgraded),
            ("from another origin", &self.moved),
        ] {
            for p in list {
                let origins = p
                    .origins
                    .as_ref()
                    .map(|(a, b)| format!(" [{a} → {b}]"))
                    .unwrap_or_default();
                writeln!(
                    f,
                    "~ {}:{} {} → {} ({verb}){origins}",
                    p.name, p.architecture, p.from, p.to
                )?;
            }
        }
        for x in &self.files_added {
            writeln!(f, "+ {} ({}, {} bytes)", x.path, x.kind, x.size)?;
        }
        for x in &self.files_removed {
            writeln!(f, "- {} ({}, {} bytes)", x.path, x.kind, x.size)?;
        }
        for x in &self.files_changed {
            writeln!(f, "~ {}: {}", x.path, x.what.join(", "))?;
        }
        writeln!(
            f,
            "installed size {:+} bytes, file bytes {:+}",
            self.installed_size_change, self.file_bytes_change
        )
    }
}

#[cfg(test)]
mod tests;
