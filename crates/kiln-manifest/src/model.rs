//! The recorded contents of a root filesystem.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

/// What a built root filesystem holds, recorded once at build time so that
/// diffs, the SBOM and provenance never need to unpack the image again.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Default)]
pub struct Manifest {
    /// Installed packages, sorted by name then architecture.
    pub packages: Vec<Package>,
    /// Every path in the tree, `/` included, sorted by path.
    pub files: Vec<FileEntry>,
    /// The `LicenseRef-…` ids that packages use, with the text each stands
    /// for: an SBOM must declare every such id, and the copyright files are
    /// not at hand once the rootfs is gone.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub extracted_licenses: BTreeMap<String, ExtractedLicense>,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct Package {
    pub name: String,
    pub version: String,
    pub architecture: String,
    /// The source package's name.
    pub source: String,
    pub source_version: String,
    /// Bytes: dpkg's `Installed-Size` is in KiB.
    pub installed_size: u64,
    /// SPDX ids (`GPL-2.0-or-later`, `GPL-2.0-only WITH Linux-syscall-note`)
    /// or `LicenseRef-…` ids, sorted; all of them apply (AND).
    pub licenses: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub homepage: Option<String>,
    /// Of the `.deb`: the rootfs does not know it, the caller fills it in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// Where the `.deb` came from when not Debian's archive: a
    /// `[[repository]]`'s name or `local`. Filled in by the caller too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<String>,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct FileEntry {
    /// Absolute inside the image, e.g. `/etc/hostname`. Bytes that are not
    /// UTF-8 appear as `\xNN`.
    pub path: String,
    pub kind: FileKind,
    /// Permission bits with setuid, setgid and sticky; no type bits.
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    /// Regular files: their length; symlinks: the target's length; other
    /// kinds 0, since a directory's size depends on the filesystem.
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
}

/// Hard links are not a kind of their own: each path is a `File` with its
/// content's digest.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[serde(rename_all = "lowercase")]
pub enum FileKind {
    File,
    Dir,
    Symlink,
    Char,
    Block,
    Fifo,
    Socket,
}

impl FileKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FileKind::File => "file",
            FileKind::Dir => "dir",
            FileKind::Symlink => "symlink",
            FileKind::Char => "char",
            FileKind::Block => "block",
            FileKind::Fifo => "fifo",
            FileKind::Socket => "socket",
        }
    }
}

impl fmt::Display for FileKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A licence with no SPDX id, as a copyright file gave it.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct ExtractedLicense {
    /// The name the copyright file uses, e.g. `other` or `BSD-like`.
    pub name: String,
    /// The licence paragraph's text, when the file has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
}

impl Manifest {
    /// The bytes of every regular file's content. A hard-linked file counts
    /// once per path, so this can exceed the space the tree takes on disk.
    pub fn total_file_bytes(&self) -> u64 {
        self.files
            .iter()
            .filter(|f| f.kind == FileKind::File)
            .map(|f| f.size)
            .sum()
    }

    /// The sum of the packages' `Installed-Size`, in bytes.
    pub fn total_installed_size(&self) -> u64 {
        self.packages.iter().map(|p| p.installed_size).sum()
    }
}
