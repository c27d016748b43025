//! Content on its way into the store: a temporary file next to its final
//! place, hashed as it is written, renamed into place only once verified.
//! Dropping a `Staged` removes the file, so failed or abandoned writes leave
//! nothing behind.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use tempfile::NamedTempFile;

use crate::digest::Hasher;
use crate::{Digest, Expected, StoreError};

pub struct Staged {
    file: NamedTempFile,
    hasher: Hasher,
}

/// The prefix of temporary files, so a sweep can tell them from entries.
pub(crate) const TEMP_PREFIX: &str = ".tmp-";

impl Staged {
    /// Starts a temporary file in `dir`, which must be on the same file
    /// system as the final place for the rename to be atomic.
    pub(crate) fn new_in(dir: &Path) -> Result<Staged, StoreError> {
        let file = tempfile::Builder::new()
            .prefix(TEMP_PREFIX)
            .tempfile_in(dir)
            .map_err(|e| with_path(e, "creating a temporary file in", dir))?;
        Ok(Staged {
            file,
            hasher: Hasher::default(),
        })
    }

    pub fn size(&self) -> u64 {
        self.hasher.size()
    }

    pub fn sha256(&self) -> Digest {
        self.hasher.digest()
    }

    /// The temporary file, for reading the content back before committing.
    pub fn path(&self) -> &Path {
        self.file.path()
    }

    /// Checks the content against `expected`; `what` (a URL or file name)
    /// names it in the error.
    pub fn verify(&self, expected: &Expected, what: &str) -> Result<Digest, StoreError> {
        check(expected, self.size(), self.sha256(), what)
    }

    /// Verifies, then renames into `dest` (replacing any previous file,
    /// which for content addressing holds the same bytes).
    pub(crate) fn commit(
        mut self,
        expected: &Expected,
        what: &str,
        dest: &Path,
    ) -> Result<Digest, StoreError> {
        let digest = self.verify(expected, what)?;
        self.file
            .flush()
            .and_then(|()| self.file.as_file().sync_data())
            .map_err(|e| with_path(e, "writing", self.file.path()))?;
        self.file
            .persist(dest)
            .map_err(|e| with_path(e.error, "renaming a temporary file to", dest))?;
        Ok(digest)
    }
}

impl Write for Staged {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self
            .file
            .write(buf)
            .map_err(|e| with_path(e, "writing", self.file.path()))?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

pub(crate) fn check(
    expected: &Expected,
    size: u64,
    digest: Digest,
    what: &str,
) -> Result<Digest, StoreError> {
    if let Some(want) = expected.size
        && want != size
    {
        return Err(StoreError::SizeMismatch {
            what: what.to_string(),
            expected: want,
            got: size,
        });
    }
    if let Some(want) = expected.sha256
        && want != digest
    {
        return Err(StoreError::DigestMismatch {
            what: what.to_string(),
            expected: want,
            got: digest,
        });
    }
    Ok(digest)
}

pub(crate) fn with_path(e: io::Error, doing: &str, path: &Path) -> io::Error {
    io::Error::new(e.kind(), format!("{doing} {}: {e}", path.display()))
}

/// Where a committed entry lives, and what it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub path: PathBuf,
    pub sha256: Digest,
    pub size: u64,
}
