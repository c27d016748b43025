//! `kiln init`: a starter definition.

use std::path::{Path, PathBuf};

use crate::error::Error;

/// Writes a starter `kiln.toml` in `dir` (created if needed). `name`
/// defaults to the directory's name. Returns the written path.
pub fn init(dir: &Path, name: Option<&str>, force: bool) -> Result<PathBuf, Error> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| Error::Io { path, source }
    };
    fs_err::create_dir_all(dir).map_err(io(dir))?;
    let path = dir.join("kiln.toml");
    if path.exists() && !force {
        return Err(Error::Exists { path });
    }
    let derived = dir
        .canonicalize()
        .ok()
        .and_then(|d| d.file_name().map(|n| n.to_string_lossy().to_lowercase()))
        .map(|n| {
            n.chars()
                .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
                .collect::<String>()
        })
        .map(|n| n.trim_matches('-').to_string())
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| "image".into());
    let text = kiln_spec::template(name.unwrap_or(&derived));
    fs_err::write(&path, text).map_err(io(&path))?;
    Ok(path)
}
