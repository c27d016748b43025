//! Small file-system steps the stages share.

use std::collections::BTreeMap;
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

/// Temporary trees this process owns, each with the open file whose lock
/// says so: held until the tree is renamed into place or removed, and
/// released by the kernel when the process dies, however it dies.
static OWNED: std::sync::Mutex<BTreeMap<PathBuf, std::fs::File>> =
    std::sync::Mutex::new(BTreeMap::new());

/// The lock file beside a temporary tree (beside, not inside: the tree is
/// renamed into place whole).
fn owner_file(tree: &Path) -> PathBuf {
    let mut name = tree.as_os_str().to_os_string();
    name.push(".owner");
    PathBuf::from(name)
}

/// A new temporary tree's path in `dir`, named `prefix` and a random
/// suffix, with its owner lock taken before the tree exists. Random rather
/// than the process id: two containers sharing a store both run as pid 1.
pub(crate) fn owned_tmp(dir: &Path, prefix: &str) -> Result<PathBuf, Error> {
    fs_err::create_dir_all(dir).map_err(io(dir))?;
    let (file, lock) = tempfile::Builder::new()
        .prefix(prefix)
        .suffix(".owner")
        .tempfile_in(dir)
        .and_then(|t| t.keep().map_err(|e| e.error))
        .map_err(io(dir))?;
    file.lock().map_err(io(&lock))?;
    let tree = lock.with_extension("");
    OWNED
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(tree.clone(), file);
    Ok(tree)
}

/// Gives up a temporary tree once it is renamed into place or removed.
pub(crate) fn release_tmp(tree: &Path) {
    if let Some(file) = OWNED.lock().unwrap_or_else(|e| e.into_inner()).remove(tree) {
        let _ = std::fs::remove_file(owner_file(tree));
        drop(file);
    }
}

/// Leftovers of builds that were killed: `.tmp-` trees in `dir` whose
/// owner lock nobody holds (or that have none, as older kiln left them),
/// and owner files whose tree is gone.
pub(crate) fn sweep_dead(dir: &Path) -> Result<(), Error> {
    let Ok(entries) = fs_err::read_dir(dir) else {
        return Ok(());
    };
    for e in entries.flatten() {
        let path = e.path();
        let name = e.file_name().to_string_lossy().into_owned();
        if !name.starts_with(".tmp-") {
            continue;
        }
        let (tree, lock) = match name.strip_suffix(".owner") {
            Some(stem) => (dir.join(stem), path.clone()),
            None => (path.clone(), owner_file(&path)),
        };
        if OWNED
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains_key(&tree)
        {
            continue;
        }
        let held = match std::fs::File::open(&lock) {
            Ok(f) => matches!(f.try_lock(), Err(std::fs::TryLockError::WouldBlock)),
            Err(_) => false,
        };
        if !held {
            match std::fs::symlink_metadata(&tree) {
                Ok(m) if m.is_dir() => remove_tree(&tree)?,
                Ok(_) => std::fs::remove_file(&tree).map_err(io(&tree))?,
                Err(_) => {}
            }
            match std::fs::remove_file(&lock) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(io(&lock)(e));
                }
                _ => {}
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(dir: &Path) -> Vec<String> {
        let mut n: Vec<String> = fs_err::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        n.sort();
        n
    }

    #[test]
    fn a_tree_is_swept_only_once_its_owner_is_gone() {
        let bucket = tempfile::tempdir().unwrap();
        let b = bucket.path();
        // Another process's live build (pid 1 in its own container, say):
        // its owner file is locked through a descriptor this test holds.
        let theirs = b.join(".tmp-k-live");
        fs_err::create_dir(&theirs).unwrap();
        let held = fs_err::File::create(owner_file(&theirs)).unwrap();
        held.file().lock().unwrap();
        // Left by a killed build, and by a kiln that named trees by pid.
        let dead = b.join(".tmp-k-dead");
        fs_err::create_dir(&dead).unwrap();
        fs_err::File::create(owner_file(&dead)).unwrap();
        fs_err::create_dir(b.join(".tmp-k-0-1")).unwrap();
        fs_err::File::create(b.join(".tmp-gone.owner")).unwrap();
        // This process's own, and a finished entry.
        let ours = owned_tmp(b, ".tmp-k-").unwrap();
        fs_err::create_dir(&ours).unwrap();
        fs_err::create_dir(b.join("k")).unwrap();

        sweep_dead(b).unwrap();
        let mut want = vec![
            ".tmp-k-live".to_string(),
            ".tmp-k-live.owner".into(),
            "k".into(),
        ];
        let own = ours.file_name().unwrap().to_string_lossy().into_owned();
        want.extend([own.clone(), format!("{own}.owner")]);
        want.sort();
        assert_eq!(names(b), want);

        drop(held);
        remove_tree(&ours).unwrap();
        release_tmp(&ours);
        sweep_dead(b).unwrap();
        assert_eq!(names(b), ["k"]);
    }

    #[test]
    fn temporary_names_never_repeat() {
        let bucket = tempfile::tempdir().unwrap();
        let a = owned_tmp(bucket.path(), ".tmp-k-").unwrap();
        let b = owned_tmp(bucket.path(), ".tmp-k-").unwrap();
        assert_ne!(a, b);
        assert!(
            a.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with(".tmp-k-")
        );
        release_tmp(&a);
        release_tmp(&b);
        assert!(names(bucket.path()).is_empty());
    }
}
