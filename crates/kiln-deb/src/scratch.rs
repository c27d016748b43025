//! Temporary trees that a killed kiln leaves for the next kiln to remove. A
//! kiln stopped by SIGKILL runs no destructor, so a tree it was making (a
//! rootfs in the store, a disk in `out/`, a machine's overlay in the
//! temporary directory) would stay for good. Each tree has an owner file
//! beside it, locked by the process making the tree before the tree exists
//! and released by the kernel when that process ends, however it ends; a
//! later kiln removes the trees whose lock nobody holds. A lock rather than
//! a process id: two containers sharing a directory both run kiln as pid 1,
//! and neither sees the other's processes.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

/// An I/O error and the path it happened at.
#[derive(Debug, thiserror::Error)]
#[error("{}: {source}", path.display())]
pub struct Error {
    pub path: PathBuf,
    #[source]
    pub source: io::Error,
}

fn at(path: &Path) -> impl FnOnce(io::Error) -> Error + '_ {
    move |source| Error {
        path: path.to_path_buf(),
        source,
    }
}

/// Trees this process owns, each with the open file whose lock says so:
/// held until the tree is renamed into place or removed.
static OWNED: std::sync::Mutex<BTreeMap<PathBuf, std::fs::File>> =
    std::sync::Mutex::new(BTreeMap::new());

fn owned() -> std::sync::MutexGuard<'static, BTreeMap<PathBuf, std::fs::File>> {
    OWNED.lock().unwrap_or_else(|e| e.into_inner())
}

/// The lock file beside a tree (beside, not inside: the tree may be
/// renamed into place whole).
fn owner_file(tree: &Path) -> PathBuf {
    let mut name = tree.as_os_str().to_os_string();
    name.push(".owner");
    PathBuf::from(name)
}

/// A new tree's path in `dir`, named `prefix` and a random suffix, with its
/// owner lock taken before the tree exists; the caller makes the tree.
/// Random rather than the process id, for the containers' sake.
pub fn owned_tmp(dir: &Path, prefix: &str) -> Result<PathBuf, Error> {
    std::fs::create_dir_all(dir).map_err(at(dir))?;
    let (file, lock) = tempfile::Builder::new()
        .prefix(prefix)
        .suffix(".owner")
        .tempfile_in(dir)
        .and_then(|t| t.keep().map_err(|e| e.error))
        .map_err(at(dir))?;
    file.lock().map_err(at(&lock))?;
    let tree = lock.with_extension("");
    owned().insert(tree.clone(), file);
    Ok(tree)
}

/// Gives up a tree once it is renamed into place or removed.
pub fn release_tmp(tree: &Path) {
    if let Some(file) = owned().remove(tree) {
        let _ = std::fs::remove_file(owner_file(tree));
        drop(file);
    }
}

/// Removes what killed kilns left in `dir`: `prefix…` trees whose owner
/// lock nobody holds (or that have none, as older kilns left them in the
/// store), and owner files whose tree is gone. Only entries this user owns
/// are looked at; links are removed, never followed.
pub fn sweep_dead(dir: &Path, prefix: &str) -> Result<(), Error> {
    sweep(dir, prefix, true)
}

/// [`sweep_dead`], but a tree with no owner file stays: in a directory
/// others write to too, it may be someone else's.
fn sweep(dir: &Path, prefix: &str, unowned_too: bool) -> Result<(), Error> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(());
    };
    let uid = rustix::process::geteuid().as_raw();
    for e in entries.flatten() {
        let path = e.path();
        let name = e.file_name().to_string_lossy().into_owned();
        if !name.starts_with(prefix) {
            continue;
        }
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        if std::os::unix::fs::MetadataExt::uid(&meta) != uid {
            continue;
        }
        let (tree, lock) = match name.strip_suffix(".owner") {
            Some(stem) => (dir.join(stem), path.clone()),
            None => (path.clone(), owner_file(&path)),
        };
        if owned().contains_key(&tree) {
            continue;
        }
        let held = match std::fs::File::open(&lock) {
            Ok(f) => matches!(f.try_lock(), Err(std::fs::TryLockError::WouldBlock)),
            Err(_) => !unowned_too,
        };
        if held {
            continue;
        }
        match std::fs::symlink_metadata(&tree) {
            // remove_dir_all does not follow links inside the tree.
            Ok(m) if m.is_dir() => match std::fs::remove_dir_all(&tree) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(at(&tree)(e)),
                _ => {}
            },
            Ok(_) => std::fs::remove_file(&tree).map_err(at(&tree))?,
            Err(_) => {}
        }
        match std::fs::remove_file(&lock) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(at(&lock)(e)),
            _ => {}
        }
    }
    Ok(())
}

/// A scratch directory a command works in, removed when dropped and, if a
/// kill stops the command first, by the next kiln that makes one of the
/// same kind in the same place.
#[derive(Debug)]
pub struct Scratch {
    path: PathBuf,
    kept: bool,
}

impl Scratch {
    /// A new directory named `PREFIX…` in the system's temporary directory.
    pub fn new(prefix: &str) -> Result<Scratch, Error> {
        Scratch::new_in(&std::env::temp_dir(), prefix)
    }

    /// A new directory named `PREFIX…` in `parent`, after removing the
    /// `PREFIX…` directories there that killed kilns left.
    pub fn new_in(parent: &Path, prefix: &str) -> Result<Scratch, Error> {
        // What cannot be swept now (a file another user made read-only)
        // is left for the next time; this command has its own to make.
        let _ = sweep(parent, prefix, false);
        let path = owned_tmp(parent, prefix)?;
        if let Err(e) = std::fs::create_dir(&path) {
            release_tmp(&path);
            return Err(at(&path)(e));
        }
        Ok(Scratch { path, kept: false })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Gives the directory up once it has been renamed into place as an
    /// output: nothing removes it after this.
    pub fn keep(mut self) {
        self.kept = true;
        release_tmp(&self.path);
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if !self.kept {
            let _ = std::fs::remove_dir_all(&self.path);
            release_tmp(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(dir: &Path) -> Vec<String> {
        let mut n: Vec<String> = std::fs::read_dir(dir)
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
        // Another process's live tree (pid 1 in its own container, say): its
        // owner file is locked through a descriptor this test holds, which
        // flock treats as another owner.
        let theirs = b.join(".tmp-k-live");
        std::fs::create_dir(&theirs).unwrap();
        let held = std::fs::File::create(owner_file(&theirs)).unwrap();
        held.lock().unwrap();
        // Left by a killed kiln, and by a kiln that named trees by pid.
        let dead = b.join(".tmp-k-dead");
        std::fs::create_dir(&dead).unwrap();
        std::fs::File::create(owner_file(&dead)).unwrap();
        std::fs::create_dir(b.join(".tmp-k-0-1")).unwrap();
        std::fs::File::create(b.join(".tmp-gone.owner")).unwrap();
        // A link named like a tree: removed, its target kept.
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("keep"), b"x").unwrap();
        std::os::unix::fs::symlink(outside.path(), b.join(".tmp-k-link")).unwrap();
        // This process's own, another kind, and a finished entry.
        let ours = owned_tmp(b, ".tmp-k-").unwrap();
        std::fs::create_dir(&ours).unwrap();
        std::fs::create_dir(b.join(".kiln-disk-x")).unwrap();
        std::fs::create_dir(b.join("k")).unwrap();

        sweep_dead(b, ".tmp-").unwrap();
        let mut want = vec![
            ".kiln-disk-x".to_string(),
            ".tmp-k-live".into(),
            ".tmp-k-live.owner".into(),
            "k".into(),
        ];
        let own = ours.file_name().unwrap().to_string_lossy().into_owned();
        want.extend([own.clone(), format!("{own}.owner")]);
        want.sort();
        assert_eq!(names(b), want);
        assert!(outside.path().join("keep").exists(), "followed a link");

        drop(held);
        std::fs::remove_dir_all(&ours).unwrap();
        release_tmp(&ours);
        sweep_dead(b, ".tmp-").unwrap();
        assert_eq!(names(b), [".kiln-disk-x", "k"]);
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

    #[test]
    fn a_scratch_directory_goes_when_dropped_stays_when_kept_and_sweeps_the_dead() {
        let parent = tempfile::tempdir().unwrap();
        let p = parent.path();
        // What a kiln killed while working leaves: the directory and its
        // owner file, locked by nobody now.
        let left = p.join("kiln-testKILLED");
        std::fs::create_dir(&left).unwrap();
        std::fs::write(left.join("overlay.qcow2"), b"grown").unwrap();
        std::fs::File::create(owner_file(&left)).unwrap();

        // Someone else's, with no owner file: a directory, and a file whose
        // name shares the prefix.
        let unowned = p.join("kiln-test-theirs");
        std::fs::create_dir(&unowned).unwrap();
        let file = p.join("kiln-test-archive");
        std::fs::write(&file, b"being written").unwrap();

        let scratch = Scratch::new_in(p, "kiln-test").unwrap();
        assert!(!left.exists(), "a killed kiln's directory stays");
        assert!(unowned.is_dir() && file.is_file(), "{:?}", names(p));
        std::fs::remove_dir(&unowned).unwrap();
        std::fs::remove_file(&file).unwrap();
        assert!(scratch.path().is_dir());
        let dir = scratch.path().to_path_buf();
        drop(scratch);
        assert!(names(p).is_empty(), "left after drop: {:?}", names(p));

        let kept = Scratch::new_in(p, "kiln-test").unwrap();
        let out = p.join("out");
        std::fs::rename(kept.path(), &out).unwrap();
        kept.keep();
        assert_eq!(names(p), ["out"], "a kept directory leaves no owner file");
        assert_ne!(dir, out);
    }
}
