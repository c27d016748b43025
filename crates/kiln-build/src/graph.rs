//! The one walk over a directory's definitions, shared by `kiln graph`,
//! `rebuild`, `plan` and `gc`. The graph itself (nodes, `from` and
//! `include` edges, waves) is kiln-fleet's `Graph`.

use std::path::{Path, PathBuf};

use crate::Error;

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
