//! Small file-system steps the stages share.

use std::path::Path;

use crate::error::Error;

pub(crate) fn io(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Writes `bytes` to `path` through a temporary file and a rename, so a
/// reader never sees half of it.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    let tmp = temp_beside(path)?;
    fs_err::write(&tmp, bytes).map_err(io(&tmp))?;
    fs_err::rename(&tmp, path).map_err(io(path))
}

/// The temporary name `dest` is written under before the rename, in its
/// directory (made if missing) so the rename stays on one file system.
fn temp_beside(dest: &Path) -> Result<std::path::PathBuf, Error> {
    let dir = dest.parent().unwrap_or(Path::new("."));
    fs_err::create_dir_all(dir).map_err(io(dir))?;
    Ok(dir.join(format!(".tmp-{}-{}", std::process::id(), file_name(dest))))
}

/// A file written under a temporary name and renamed into place by
/// [`AtomicFile::commit`]; dropped uncommitted, it is removed.
pub(crate) struct AtomicFile {
    tmp: std::path::PathBuf,
    dest: std::path::PathBuf,
    file: Option<std::io::BufWriter<fs_err::File>>,
    committed: bool,
}

impl AtomicFile {
    pub(crate) fn create(dest: &Path) -> Result<AtomicFile, Error> {
        let tmp = temp_beside(dest)?;
        let file = fs_err::File::create(&tmp).map_err(io(&tmp))?;
        Ok(AtomicFile {
            tmp,
            dest: dest.to_path_buf(),
            file: Some(std::io::BufWriter::with_capacity(1 << 20, file)),
            committed: false,
        })
    }

    pub(crate) fn writer(&mut self) -> &mut dyn std::io::Write {
        match &mut self.file {
            Some(f) => f,
            None => unreachable!("the file is only taken by commit, which consumes it"),
        }
    }

    pub(crate) fn commit(mut self) -> Result<(), Error> {
        if let Some(f) = self.file.take() {
            f.into_inner().map_err(|e| Error::Io {
                path: self.tmp.clone(),
                source: e.into_error(),
            })?;
        }
        fs_err::rename(&self.tmp, &self.dest).map_err(io(&self.dest))?;
        self.committed = true;
        Ok(())
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        if !self.committed {
            let _ = std::fs::remove_file(&self.tmp);
        }
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

/// Leftovers of builds that were killed: `.tmp-<key>-<pid>` directories
/// whose process is gone.
pub(crate) fn sweep_dead(dir: &Path) -> Result<(), Error> {
    let Ok(entries) = fs_err::read_dir(dir) else {
        return Ok(());
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(pid) = name
            .strip_prefix(".tmp-")
            .and_then(|r| r.rsplit('-').next())
        else {
            continue;
        };
        let alive = pid
            .parse::<u32>()
            .is_ok_and(|p| Path::new(&format!("/proc/{p}")).exists());
        if !alive {
            remove_tree(&e.path())?;
        }
    }
    Ok(())
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}
