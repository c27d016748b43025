//! The images under a directory and the `from` edges between them, for
//! `kiln plan`. A stand-in for the fleet graph: `plan` reads only
//! [`Node`]s, so it can be pointed at that graph once it exists.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::Error;

/// One image: its name, its directory relative to the root searched, and
/// its parent's name when the parent is under that root too.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Node {
    pub name: String,
    pub dir: PathBuf,
    pub from: Option<String>,
    /// Whether it builds a disk image, so `kiln test` can boot it.
    pub bootable: bool,
}

/// Every `kiln.toml` under `root` (not in `out/`, `target/` or hidden
/// directories), sorted by directory.
pub fn discover(root: &Path) -> Result<Vec<Node>, Error> {
    let dirs = definition_dirs(root)?;
    let mut by_dir: BTreeMap<PathBuf, (String, Option<PathBuf>)> = BTreeMap::new();
    let mut bootable = BTreeMap::new();
    for dir in &dirs {
        let def = kiln_spec::load(dir)?;
        let parent = def.parent().map(canonical);
        bootable.insert(
            canonical(dir),
            def.outputs.formats.iter().any(|f| f.is_disk()),
        );
        by_dir.insert(canonical(dir), (def.image.name.clone(), parent));
    }
    let root_abs = canonical(root);
    let mut names: BTreeMap<&str, &Path> = BTreeMap::new();
    for (dir, (name, _)) in &by_dir {
        if let Some(other) = names.insert(name, dir) {
            return Err(Error::DuplicateImage {
                name: name.clone(),
                dirs: vec![other.to_path_buf(), dir.clone()],
            });
        }
    }
    Ok(by_dir
        .iter()
        .map(|(dir, (name, parent))| Node {
            name: name.clone(),
            dir: dir.strip_prefix(&root_abs).unwrap_or(dir).to_path_buf(),
            from: parent
                .as_ref()
                .and_then(|p| by_dir.get(p))
                .map(|(n, _)| n.clone()),
            bootable: bootable.get(dir).copied().unwrap_or(false),
        })
        .collect())
}

/// The directories under `root` holding a `kiln.toml`, sorted.
pub(crate) fn definition_dirs(root: &Path) -> Result<Vec<PathBuf>, Error> {
    let mut dirs = Vec::new();
    walk(root, &mut dirs)?;
    dirs.sort();
    Ok(dirs)
}

fn walk(dir: &Path, found: &mut Vec<PathBuf>) -> Result<(), Error> {
    if dir.join(kiln_spec::FILE_NAME).is_file() {
        found.push(dir.to_path_buf());
    }
    let entries = fs_err::read_dir(dir).map_err(|e| Error::Io {
        path: dir.to_path_buf(),
        source: e,
    })?;
    for entry in entries {
        let entry = entry.map_err(|e| Error::Io {
            path: dir.to_path_buf(),
            source: e,
        })?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let skip = name.starts_with('.') || name == "out" || name == "target";
        // `file_type` does not follow symlinks: a link cannot loop the walk.
        if !skip && entry.file_type().is_ok_and(|t| t.is_dir()) {
            walk(&entry.path(), found)?;
        }
    }
    Ok(())
}

fn canonical(p: &Path) -> PathBuf {
    fs_err::canonicalize(p).unwrap_or_else(|_| p.to_path_buf())
}
