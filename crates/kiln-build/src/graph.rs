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

/// Lists `IGNORE_FILE` in the fleet's root: one path per line, relative to
/// the root, `#` comments; those directories are not searched.
pub const IGNORE_FILE: &str = ".kilnignore";

/// Directories that hold what kiln or cargo made, never definitions.
const SKIPPED: &[&str] = &["out", "target"];

/// Every directory under `root` holding a `kiln.toml`, sorted, so the graph
/// reads the same on every machine: the one walk that `kiln graph`,
/// `rebuild`, `plan` and `gc` share. Hidden directories, build outputs and
/// the paths of `.kilnignore` are skipped; symbolic links are not followed,
/// so a link back up the tree cannot make the walk endless.
pub fn definition_dirs(root: &Path) -> Result<Vec<PathBuf>, Error> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| Error::Io { path, source }
    };
    let ignored = ignored(root)?;
    let mut found = Vec::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        if dir.join(kiln_spec::FILE_NAME).is_file() {
            found.push(dir.clone());
        }
        for entry in fs_err::read_dir(&dir).map_err(io(&dir))? {
            let entry = entry.map_err(io(&dir))?;
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.starts_with('.') || SKIPPED.contains(&name.as_ref()) {
                continue;
            }
            let path = entry.path();
            if entry.file_type().map_err(io(&path))?.is_dir() && !ignored.contains(&path) {
                pending.push(path);
            }
        }
    }
    found.sort();
    Ok(found)
}

fn ignored(root: &Path) -> Result<Vec<PathBuf>, Error> {
    let path = root.join(IGNORE_FILE);
    let text = match fs_err::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => return Err(Error::Io { path, source }),
    };
    Ok(text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| root.join(l.trim_end_matches('/')))
        .collect())
}

fn canonical(p: &Path) -> PathBuf {
    fs_err::canonicalize(p).unwrap_or_else(|_| p.to_path_buf())
}
