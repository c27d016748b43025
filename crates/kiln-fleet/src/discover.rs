//! Finding the definitions under a directory.

use std::path::{Path, PathBuf};

use crate::error::Error;

/// Lists `IGNORE_FILE` in the fleet's root: one path per line, relative to
/// the root, `#` comments; those directories are not searched.
pub const IGNORE_FILE: &str = ".kilnignore";

/// Directories that hold what kiln or cargo made, never definitions.
const SKIPPED: &[&str] = &["out", "target"];

/// Every directory under `root` holding a `kiln.toml`, sorted, so the graph
/// reads the same on every machine. Hidden directories, build outputs and
/// the paths of `.kilnignore` are skipped; symbolic links are not followed,
/// so a link back up the tree cannot make the walk endless.
pub(crate) fn definitions(root: &Path) -> Result<Vec<PathBuf>, Error> {
    let ignored = ignored(root)?;
    let mut found = Vec::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        if dir.join(kiln_spec::FILE_NAME).is_file() {
            found.push(dir.clone());
        }
        for entry in fs_err::read_dir(&dir)? {
            let entry = entry?;
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.starts_with('.') || SKIPPED.contains(&name.as_ref()) {
                continue;
            }
            let path = entry.path();
            if entry.file_type()?.is_dir() && !ignored.contains(&path) {
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
        Err(e) => return Err(e.into()),
    };
    Ok(text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| root.join(l.trim_end_matches('/')))
        .collect())
}
