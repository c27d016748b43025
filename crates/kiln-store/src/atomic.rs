//! The one way kiln replaces a file outside the content store (a lockfile,
//! a record, an output): written under a temporary name in the same
//! directory, renamed over the old one only when complete, so a reader or a
//! killed run never sees half of it. Content entering the store goes through
//! [`crate::Staged`], which also verifies it.

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use tempfile::NamedTempFile;

/// Replaces `path` with `bytes` (the directory is made if missing).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut file = AtomicFile::create(path)?;
    file.writer().write_all(bytes).map_err(|e| at(path, e))?;
    file.commit()
}

/// A file that appears at its destination only when committed; dropped
/// uncommitted, its temporary is removed.
pub struct AtomicFile {
    dest: PathBuf,
    file: BufWriter<NamedTempFile>,
}

impl AtomicFile {
    pub fn create(dest: &Path) -> std::io::Result<AtomicFile> {
        let dir = dest.parent().unwrap_or(Path::new("."));
        fs_err::create_dir_all(dir)?;
        // As File::create would: 0666 less the umask (tempfile's 0600
        // would hide a lockfile or an output from the rest of the team).
        let temp = tempfile::Builder::new()
            .prefix(crate::staged::TEMP_PREFIX)
            .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o666))
            .tempfile_in(dir)
            .map_err(|e| at(dir, e))?;
        Ok(AtomicFile {
            dest: dest.to_path_buf(),
            file: BufWriter::with_capacity(1 << 20, temp),
        })
    }

    pub fn writer(&mut self) -> &mut dyn Write {
        &mut self.file
    }

    pub fn commit(self) -> std::io::Result<()> {
        let temp = self
            .file
            .into_inner()
            .map_err(|e| at(&self.dest, e.into_error()))?;
        temp.persist(&self.dest)
            .map_err(|e| at(&self.dest, e.error))?;
        Ok(())
    }
}

/// The error with the path it happened at, as fs_err words it.
fn at(path: &Path, e: std::io::Error) -> std::io::Error {
    std::io::Error::new(e.kind(), format!("{e}: {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_write_replaces_whole_and_an_abandoned_one_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/kiln.lock");
        write_atomic(&path, b"one").unwrap();
        write_atomic(&path, b"two").unwrap();
        assert_eq!(fs_err::read(&path).unwrap(), b"two");
        // The mode File::create gives, not tempfile's private 0600.
        let plain = dir.path().join("plain");
        fs_err::File::create(&plain).unwrap();
        let mode = |p: &Path| fs_err::metadata(p).unwrap().permissions();
        assert_eq!(mode(&path), mode(&plain));
        let mut f = AtomicFile::create(&path).unwrap();
        f.writer().write_all(b"three").unwrap();
        drop(f);
        assert_eq!(fs_err::read(&path).unwrap(), b"two");
        let names: Vec<_> = fs_err::read_dir(dir.path().join("sub"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["kiln.lock"]);
        let e = write_atomic(Path::new("/proc/kiln/x"), b"x").unwrap_err();
        assert!(e.to_string().contains("/proc/kiln"), "{e}");
    }
}
