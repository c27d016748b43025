//! Small file-system steps the stages share.

use std::path::{Path, PathBuf};

use crate::error::Error;

pub(crate) fn io(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// [`kiln_store::write_atomic`], with this crate's error.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    kiln_store::write_atomic(path, bytes).map_err(io(path))
}

/// [`kiln_store::AtomicFile`], with this crate's error.
pub(crate) struct AtomicFile(kiln_store::AtomicFile, std::path::PathBuf);

impl AtomicFile {
    pub(crate) fn create(dest: &Path) -> Result<AtomicFile, Error> {
        let file = kiln_store::AtomicFile::create(dest).map_err(io(dest))?;
        Ok(AtomicFile(file, dest.to_path_buf()))
    }

    pub(crate) fn writer(&mut self) -> &mut dyn std::io::Write {
        self.0.writer()
    }

    pub(crate) fn commit(self) -> Result<(), Error> {
        self.0.commit().map_err(io(&self.1))
    }
}

/// Copies a whole root filesystem, keeping owners, modes, links, xattrs and
/// times, on every core (see `treecopy`).
pub(crate) fn copy_tree(from: &Path, to: &Path) -> Result<(), Error> {
    crate::treecopy::copy_tree(from, to).map_err(|source| Error::Io {
        path: to.to_path_buf(),
        source,
    })
}

/// Removes a tree that may hold read-only directories.
pub(crate) fn remove_tree(path: &Path) -> Result<(), Error> {
    match fs_err::remove_dir_all(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(Error::Io {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// [`kiln_deb::scratch::owned_tmp`], with this crate's error.
pub(crate) fn owned_tmp(dir: &Path, prefix: &str) -> Result<PathBuf, Error> {
    kiln_deb::scratch::owned_tmp(dir, prefix).map_err(scratch)
}

/// [`kiln_deb::scratch::release_tmp`].
pub(crate) fn release_tmp(tree: &Path) {
    kiln_deb::scratch::release_tmp(tree)
}

/// The `.tmp-` trees of killed builds in `dir` ([`kiln_deb::scratch::sweep_dead`]).
pub(crate) fn sweep_dead(dir: &Path) -> Result<(), Error> {
    kiln_deb::scratch::sweep_dead(dir, ".tmp-").map_err(scratch)
}

pub(crate) fn scratch(e: kiln_deb::scratch::Error) -> Error {
    Error::Io {
        path: e.path,
        source: e.source,
    }
}
