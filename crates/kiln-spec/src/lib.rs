//! kiln-spec: the definition model.
//!
//! Reads `kiln.toml`, validates every section and fills in every default, so
//! later stages take a [`Definition`] and never look at TOML. Errors name the
//! file, line, column and field, and carry a hint (see [`SpecError`]).
//!
//! ```no_run
//! let def = kiln_spec::load(std::path::Path::new("examples/web"))?;
//! let checksum = def.lock_inputs().checksum();
//! # Ok::<(), kiln_spec::SpecError>(())
//! ```

mod dom;
mod error;
mod fragment;
mod lock_inputs;
mod model;
mod names;
mod repository;
mod suggest;
mod template;
mod validate;

use std::path::{Path, PathBuf};

pub use error::{Diagnostic, ErrorKind, Location, SpecError};
pub use fragment::{FRAGMENT_SECTIONS, Fragment};
pub use lock_inputs::{FragmentPin, LockBase, LockInputs, LockRepository};
pub use model::*;
pub use repository::{LocalDeb, Repository};
pub use suggest::closest;
pub use template::template;

/// The definition's file name inside an image directory.
pub const FILE_NAME: &str = "kiln.toml";

/// Reads and validates `<dir>/kiln.toml`.
pub fn load(dir: &Path) -> Result<Definition, SpecError> {
    let path = dir.join(FILE_NAME);
    let text = match fs_err::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !path.exists() => {
            return Err(SpecError::NotFound {
                dir: dir.to_path_buf(),
            });
        }
        Err(e) => return Err(SpecError::Io(e)),
    };
    parse(&text, &path)
}

/// Validates `text` as the definition at `path`: relative paths in it are
/// resolved against `path`'s directory, and checked there as [`load`] does.
pub fn parse(text: &str, path: &Path) -> Result<Definition, SpecError> {
    let dir = path.parent().unwrap_or(Path::new(""));
    let ctx = dom::Ctx {
        file: path,
        dir,
        source: text,
    };
    let document = toml::de::DeTable::parse(text).map_err(|e| ctx.syntax(&e))?;
    let root = dom::Table::root(&ctx, document.get_ref());
    validate::definition(&ctx, &root)
}

/// Loads the definition in `dir` and every `base.from` ancestor, root first:
/// the order the chain is built in. The last element is `dir`'s own.
pub fn load_chain(dir: &Path) -> Result<Vec<Definition>, SpecError> {
    let mut chain = Vec::new();
    let mut seen: Vec<PathBuf> = Vec::new();
    let mut next = Some(dir.to_path_buf());
    while let Some(dir) = next {
        let definition = load(&dir)?;
        let canonical = fs_err::canonicalize(&dir)?;
        if let Some(start) = seen.iter().position(|s| *s == canonical) {
            let mut loop_ = seen[start..].to_vec();
            loop_.push(canonical);
            return Err(SpecError::Cycle {
                chain: loop_.iter().map(|d| d.join(FILE_NAME)).collect(),
            });
        }
        seen.push(canonical);
        next = definition.parent().map(Path::to_path_buf);
        chain.push(definition);
    }
    chain.reverse();
    Ok(chain)
}
