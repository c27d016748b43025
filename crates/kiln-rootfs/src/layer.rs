//! Applying an OCI layer that kiln wrote (see kiln-image) back onto a tree:
//! how a root filesystem comes back from the remote cache.
//!
//! The layer came from a registry, so it is treated as hostile even after
//! its digest matched: entry names with `..` or a leading `/` are refused,
//! and every parent of an entry must be a real directory inside the root —
//! a symlink on the way is refused, never followed (kiln's layers hold real
//! paths only, so an honest layer never needs one). Hard links must point
//! at a regular file already inside the root.
//!
//! The tree comes back as the build left it: owners, modes (setuid and
//! sticky bits), kept xattrs (file capabilities), symlinks, hard links,
//! device nodes, fifos and mtimes. Directory times are set last, and the
//! directories this layer only adds to keep the time they had, so writing
//! entries moves no time. Whatever a tar cannot carry (the root directory
//! itself, sub-second times, xattrs layers leave out) the caller sets
//! afterwards with [`set_metadata`].

use std::collections::{HashMap, HashSet};
use std::ffi::OsStr;
use std::io::{ErrorKind, Read};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::confine::entry_components;
use crate::error::RootfsError;
use crate::extract::{
    WriteError, io_at, make_node, make_symlink, replace, set_mtime, set_time, temp_name, write_file,
};

/// An OCI whiteout: the named entry of the lower layers is gone.
const WHITEOUT: &[u8] = b".wh.";
/// An OCI opaque whiteout: nothing of the directory in lower layers stays.
const OPAQUE: &[u8] = b".wh..wh..opq";

/// Applies the uncompressed layer tar read from `tar` to `root` (empty for a
/// base layer, a copy of the parent's tree for a child's). `source` names
/// the layer in errors.
pub fn apply_layer(root: &Path, tar: &mut dyn Read, source: &Path) -> Result<(), RootfsError> {
    let corrupt = |e: std::io::Error| RootfsError::BadPath {
        path: source.to_path_buf(),
        why: format!("not a readable layer: {e}"),
    };
    let mut archive = tar::Archive::new(tar);
    let mut applier = Applier {
        root,
        source,
        written: HashSet::new(),
        dir_times: Vec::new(),
        layer_dirs: HashSet::new(),
        touched: HashMap::new(),
    };
    for entry in archive.entries().map_err(corrupt)? {
        let mut entry = entry.map_err(corrupt)?;
        applier.entry(&mut entry).map_err(|e| match e {
            Failure::Io(e) => corrupt(e),
            Failure::Rootfs(e) => e,
        })?;
    }
    applier.finish()
}

/// What a layer cannot say about one entry, set by [`set_metadata`].
#[derive(Debug, Clone, Default)]
pub struct Metadata {
    /// Mode, uid, gid (the root directory's: no entry of a layer holds it).
    pub owner: Option<(u32, u32, u32)>,
    /// Seconds, nanoseconds.
    pub mtime: Option<(i64, u32)>,
    /// Extended attributes layers leave out (POSIX ACLs, say): set, or
    /// removed when `None`.
    pub xattrs: Vec<(Vec<u8>, Option<Vec<u8>>)>,
}

/// Sets `meta` on the image path `path` (`""` for the root directory)
/// inside `root`. The path is resolved as entries are: no symlink on the
/// way.
pub fn set_metadata(root: &Path, path: &[u8], meta: &Metadata) -> Result<(), RootfsError> {
    let components = entry_components(path).map_err(|why| RootfsError::BadPath {
        path: root.join(OsStr::from_bytes(path)),
        why: format!("not a plain image path: {why}"),
    })?;
    let host = match components.split_last() {
        Some((last, parents)) => real_dir(root, parents, root)?.join(last),
        None => root.to_path_buf(),
    };
    let link = fs_err::symlink_metadata(&host)?.file_type().is_symlink();
    for (name, value) in &meta.xattrs {
        let r = match value {
            Some(v) => {
                rustix::fs::lsetxattr(&host, name.as_slice(), v, rustix::fs::XattrFlags::empty())
            }
            None => match rustix::fs::lremovexattr(&host, name.as_slice()) {
                Err(rustix::io::Errno::NODATA) => Ok(()),
                r => r,
            },
        };
        r.map_err(|e| io_at(&host, "set an xattr of", e))?;
    }
    if let Some((mode, uid, gid)) = meta.owner {
        rustix::fs::chownat(
            rustix::fs::CWD,
            &host,
            Some(rustix::fs::Uid::from_raw(uid)),
            Some(rustix::fs::Gid::from_raw(gid)),
            rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
        )
        .map_err(|e| io_at(&host, "chown", e))?;
        if !link {
            fs_err::set_permissions(&host, std::fs::Permissions::from_mode(mode & 0o7777))?;
        }
    }
    let Some(mtime) = meta.mtime else {
        return Ok(());
    };
    set_time(
        &host,
        rustix::fs::Timespec {
            tv_sec: mtime.0,
            tv_nsec: mtime.1.into(),
        },
        link,
    )
}

enum Failure {
    /// Reading the archive itself failed.
    Io(std::io::Error),
    Rootfs(RootfsError),
}

impl From<RootfsError> for Failure {
    fn from(e: RootfsError) -> Failure {
        Failure::Rootfs(e)
    }
}

impl From<std::io::Error> for Failure {
    fn from(e: std::io::Error) -> Failure {
        Failure::Rootfs(RootfsError::Io(e))
    }
}

struct Applier<'a> {
    root: &'a Path,
    source: &'a Path,
    /// Host paths this layer wrote: an opaque whiteout keeps them.
    written: HashSet<PathBuf>,
    /// Directories of the layer and their mtimes, set once all is written.
    dir_times: Vec<(PathBuf, i64)>,
    layer_dirs: HashSet<PathBuf>,
    /// Directories the layer adds to or removes from without naming them,
    /// with the mtime they had before.
    touched: HashMap<PathBuf, (i64, i64)>,
}

impl Applier<'_> {
    fn entry<R: Read>(&mut self, entry: &mut tar::Entry<'_, R>) -> Result<(), Failure> {
        let name = entry.path_bytes().into_owned();
        let refuse = |why: &'static str| RootfsError::UnsafeEntry {
            deb: self.source.to_path_buf(),
            entry: String::from_utf8_lossy(&name).into_owned(),
            why,
        };
        let components = entry_components(&name).map_err(refuse)?;
        let Some((last, parents)) = components.split_last() else {
            return Ok(()); // `./`: the root's metadata is the caller's.
        };
        let parent = real_dir(self.root, parents, self.source)?;
        self.touch(&parent)?;
        let last = last.as_bytes();
        if last == OPAQUE {
            return Ok(self.opaque(&parent)?);
        }
        if let Some(gone) = last.strip_prefix(WHITEOUT) {
            if gone.is_empty() || gone == b"." || gone == b".." {
                return Err(refuse("a whiteout without a name").into());
            }
            return Ok(remove_any(&parent.join(OsStr::from_bytes(gone)))?);
        }
        let dest = parent.join(OsStr::from_bytes(last));
        let xattrs = xattrs(entry)?;
        let header = entry.header().clone();
        let mode = header.mode()? & 0o7777;
        let uid = header.uid()? as u32;
        let gid = header.gid()? as u32;
        let mtime = header.mtime()? as i64;
        let kind = header.entry_type();
        let owner = (
            Some(rustix::fs::Uid::from_raw(uid)),
            Some(rustix::fs::Gid::from_raw(gid)),
        );
        match kind {
            tar::EntryType::Directory => {
                match fs_err::symlink_metadata(&dest) {
                    Ok(m) if m.is_dir() => {}
                    Ok(_) => fs_err::remove_file(&dest)?,
                    Err(e) if e.kind() == ErrorKind::NotFound => {}
                    Err(e) => return Err(Failure::Rootfs(e.into())),
                }
                if !dest.is_dir() {
                    fs_err::create_dir(&dest)?;
                }
                rustix::fs::chown(&dest, owner.0, owner.1).map_err(|e| io_at(&dest, "chown", e))?;
                fs_err::set_permissions(&dest, std::fs::Permissions::from_mode(mode))?;
                for (k, v) in &xattrs {
                    rustix::fs::lsetxattr(&dest, k.as_slice(), v, rustix::fs::XattrFlags::empty())
                        .map_err(|e| io_at(&dest, "set an xattr of", e))?;
                }
                self.touched.remove(&dest);
                self.layer_dirs.insert(dest.clone());
                self.dir_times.push((dest.clone(), mtime));
            }
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                let tmp = temp_name(&dest);
                write_file(&tmp, entry, uid, gid, mode, &xattrs, mtime).map_err(|e| match e {
                    WriteError::Content(e) => Failure::Io(e),
                    WriteError::Rootfs(e) => Failure::Rootfs(e),
                })?;
                self.replace(&tmp, &dest)?;
            }
            tar::EntryType::Symlink => {
                let target = entry
                    .link_name_bytes()
                    .ok_or_else(|| refuse("symlink without a target"))?
                    .into_owned();
                let tmp = temp_name(&dest);
                make_symlink(&tmp, &target, uid, gid, mtime)?;
                self.replace(&tmp, &dest)?;
            }
            tar::EntryType::Link => {
                let target = entry
                    .link_name_bytes()
                    .ok_or_else(|| refuse("hard link without a target"))?
                    .into_owned();
                let target = entry_components(&target).map_err(refuse)?;
                let Some((t_last, t_parents)) = target.split_last() else {
                    return Err(refuse("hard link to the root directory").into());
                };
                let from = real_dir(self.root, t_parents, self.source)?.join(t_last);
                if !fs_err::symlink_metadata(&from)?.is_file() {
                    return Err(refuse("hard link to something not a regular file").into());
                }
                let tmp = temp_name(&dest);
                fs_err::hard_link(&from, &tmp)?;
                self.replace(&tmp, &dest)?;
            }
            tar::EntryType::Char | tar::EntryType::Block | tar::EntryType::Fifo => {
                // kiln's tars leave a fifo's device fields empty.
                let device = if kind == tar::EntryType::Fifo {
                    (0, 0)
                } else {
                    (
                        header.device_major()?.unwrap_or(0),
                        header.device_minor()?.unwrap_or(0),
                    )
                };
                let tmp = temp_name(&dest);
                make_node(&tmp, kind, device, (mode, uid, gid), mtime)?;
                self.replace(&tmp, &dest)?;
            }
            tar::EntryType::XGlobalHeader => return Ok(()),
            _ => return Err(refuse("an entry type kiln's layers do not hold").into()),
        }
        self.written.insert(dest);
        Ok(())
    }

    /// Remembers the time of a directory the layer writes into, the first
    /// time it does, unless the layer sets it itself.
    fn touch(&mut self, dir: &Path) -> Result<(), RootfsError> {
        if self.touched.contains_key(dir) || self.layer_dirs.contains(dir) {
            return Ok(());
        }
        let meta = fs_err::symlink_metadata(dir)?;
        self.touched
            .insert(dir.to_path_buf(), (meta.mtime(), meta.mtime_nsec()));
        Ok(())
    }

    fn opaque(&mut self, dir: &Path) -> Result<(), RootfsError> {
        for e in fs_err::read_dir(dir)? {
            let path = e?.path();
            if !self.written.contains(&path) {
                remove_any(&path)?;
            }
        }
        Ok(())
    }

    /// Renames `tmp` over `dest`; a directory in the way (a type change) is
    /// removed first, as OCI appliers do.
    fn replace(&self, tmp: &Path, dest: &Path) -> Result<(), RootfsError> {
        if fs_err::symlink_metadata(dest).is_ok_and(|m| m.is_dir()) {
            fs_err::remove_dir_all(dest)?;
        }
        replace(tmp, dest)
    }

    fn finish(mut self) -> Result<(), RootfsError> {
        // Deepest first: setting a time never moves its parent's.
        self.dir_times.sort_by(|a, b| b.0.cmp(&a.0));
        for (dir, mtime) in &self.dir_times {
            set_mtime(dir, *mtime, false)?;
        }
        for (dir, (secs, nsecs)) in &self.touched {
            let t = rustix::fs::Timespec {
                tv_sec: *secs,
                tv_nsec: *nsecs as _,
            };
            set_time(dir, t, false)?;
        }
        Ok(())
    }
}

/// The host path of the directory `components` names inside `root`, every
/// component a real directory: a layer never needs a symlink on the way.
fn real_dir(root: &Path, components: &[&OsStr], source: &Path) -> Result<PathBuf, RootfsError> {
    let mut host = root.to_path_buf();
    for c in components {
        host.push(c);
        match fs_err::symlink_metadata(&host) {
            Ok(m) if m.is_dir() => {}
            _ => {
                return Err(RootfsError::UnsafeEntry {
                    deb: source.to_path_buf(),
                    entry: host
                        .strip_prefix(root)
                        .unwrap_or(&host)
                        .display()
                        .to_string(),
                    why: "an entry's parent is not a directory of the tree",
                });
            }
        }
    }
    Ok(host)
}

/// An extended attribute: name, value.
type Xattr = (Vec<u8>, Vec<u8>);

/// The PAX `SCHILY.xattr.*` records of an entry.
fn xattrs<R: Read>(entry: &mut tar::Entry<'_, R>) -> Result<Vec<Xattr>, Failure> {
    let mut out = Vec::new();
    if let Some(exts) = entry.pax_extensions().map_err(Failure::Io)? {
        for ext in exts {
            let ext = ext.map_err(Failure::Io)?;
            if let Some(name) = ext.key_bytes().strip_prefix(b"SCHILY.xattr.") {
                out.push((name.to_vec(), ext.value_bytes().to_vec()));
            }
        }
    }
    Ok(out)
}

fn remove_any(path: &Path) -> Result<(), RootfsError> {
    match fs_err::symlink_metadata(path) {
        Ok(m) if m.is_dir() => Ok(fs_err::remove_dir_all(path)?),
        Ok(_) => Ok(fs_err::remove_file(path)?),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use std::os::unix::fs::{FileTypeExt, symlink};

    /// Everything of a tree a later stage reads: per path, type, mode,
    /// owner, mtime, content, link target, device, xattrs and hard-link
    /// group (by the first path of the group).
    fn describe(root: &Path) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        let mut inodes: HashMap<u64, String> = HashMap::new();
        let mut todo = vec![PathBuf::new()];
        while let Some(rel) = todo.pop() {
            let mut names: Vec<_> = std::fs::read_dir(root.join(&rel))
                .unwrap()
                .map(|e| e.unwrap().file_name())
                .collect();
            names.sort();
            for name in names {
                let rel = rel.join(name);
                let path = root.join(&rel);
                let m = std::fs::symlink_metadata(&path).unwrap();
                let ft = m.file_type();
                let what = if ft.is_dir() {
                    todo.push(rel.clone());
                    "dir".to_string()
                } else if ft.is_symlink() {
                    format!("-> {}", std::fs::read_link(&path).unwrap().display())
                } else if ft.is_file() {
                    let key = rel.display().to_string();
                    let first = inodes.entry(m.ino()).or_insert(key).clone();
                    format!(
                        "file {:?} link-group {first}",
                        std::fs::read(&path).unwrap()
                    )
                } else if ft.is_char_device() || ft.is_block_device() {
                    format!("dev {}", m.rdev())
                } else {
                    "fifo".to_string()
                };
                let mut xattrs: Vec<String> = xattr_list(&path);
                xattrs.sort();
                let mode = if ft.is_symlink() {
                    0
                } else {
                    m.mode() & 0o7777
                };
                out.insert(
                    rel.display().to_string(),
                    format!(
                        "{what} mode {mode:o} {}:{} mtime {} xattrs {xattrs:?}",
                        m.uid(),
                        m.gid(),
                        m.mtime()
                    ),
                );
            }
        }
        out
    }

    fn xattr_list(path: &Path) -> Vec<String> {
        let mut buf = vec![0u8; 4096];
        let n = rustix::fs::llistxattr(path, &mut buf).unwrap_or(0);
        buf[..n]
            .split(|&b| b == 0)
            .filter(|n| !n.is_empty())
            .map(|name| {
                let mut v = vec![0u8; 256];
                let len = rustix::fs::lgetxattr(path, name, &mut v).unwrap_or(0);
                format!("{}={:?}", String::from_utf8_lossy(name), &v[..len])
            })
            .collect()
    }

    fn set_time(path: &Path, secs: i64) {
        let t = rustix::fs::Timespec {
            tv_sec: secs,
            tv_nsec: 0,
        };
        rustix::fs::utimensat(
            rustix::fs::CWD,
            path,
            &rustix::fs::Timestamps {
                last_access: t,
                last_modification: t,
            },
            rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
        )
        .unwrap();
    }

    /// A small tree with every kind of entry a root filesystem has.
    fn sample(root: &Path) {
        let w = |p: &str, body: &str, mode: u32| {
            let path = root.join(p);
            std::fs::write(&path, body).unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        };
        for d in ["usr", "usr/bin", "etc", "tmp", "dev"] {
            std::fs::create_dir(root.join(d)).unwrap();
        }
        std::fs::set_permissions(root.join("tmp"), std::fs::Permissions::from_mode(0o1777))
            .unwrap();
        w("usr/bin/su", "setuid\n", 0o4755);
        w("usr/bin/ping", "caps\n", 0o755);
        rustix::fs::lsetxattr(
            root.join("usr/bin/ping"),
            "user.kiln-test",
            b"value",
            rustix::fs::XattrFlags::empty(),
        )
        .unwrap();
        w("etc/shadow", "secret\n", 0o640);
        rustix::fs::chown(
            root.join("etc/shadow"),
            Some(rustix::fs::Uid::from_raw(0)),
            Some(rustix::fs::Gid::from_raw(42)),
        )
        .unwrap();
        std::fs::hard_link(root.join("usr/bin/su"), root.join("usr/bin/su2")).unwrap();
        symlink("usr/bin", root.join("bin")).unwrap();
        symlink("/etc/shadow", root.join("etc/abs")).unwrap();
        rustix::fs::mknodat(
            rustix::fs::CWD,
            root.join("dev/null"),
            rustix::fs::FileType::CharacterDevice,
            rustix::fs::Mode::from_raw_mode(0o666),
            rustix::fs::makedev(1, 3),
        )
        .unwrap();
        std::fs::set_permissions(
            root.join("dev/null"),
            std::fs::Permissions::from_mode(0o666),
        )
        .unwrap();
        rustix::fs::mknodat(
            rustix::fs::CWD,
            root.join("dev/fifo"),
            rustix::fs::FileType::Fifo,
            rustix::fs::Mode::from_raw_mode(0o600),
            0,
        )
        .unwrap();
        for (i, p) in [
            "usr/bin/su",
            "usr/bin/ping",
            "etc/shadow",
            "bin",
            "etc/abs",
            "dev/null",
            "dev/fifo",
        ]
        .iter()
        .enumerate()
        {
            set_time(&root.join(p), 1_600_000_000 + i as i64);
        }
        for (i, d) in ["usr/bin", "usr", "etc", "tmp", "dev"].iter().enumerate() {
            set_time(&root.join(d), 1_500_000_000 + i as i64);
        }
    }

    fn tar_of(root: &Path) -> Vec<u8> {
        let mut out = Vec::new();
        kiln_image::write_tar(root, &mut out, &kiln_image::TarOptions::new(1_700_000_000)).unwrap();
        out
    }

    #[test]
    fn root_a_layer_comes_back_as_the_tree_it_was_made_from() {
        let from = tempfile::tempdir().unwrap();
        sample(from.path());
        let to = tempfile::tempdir().unwrap();
        let tar = tar_of(from.path());
        apply_layer(to.path(), &mut tar.as_slice(), Path::new("layer")).unwrap();
        assert_eq!(describe(to.path()), describe(from.path()));
        // And its own tar is the same bytes.
        assert_eq!(tar_of(to.path()), tar);
    }

    fn hostile(entries: &[(&str, tar::EntryType, &str)]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (name, kind, link) in entries {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(*kind);
            h.set_mode(0o644);
            h.set_size(if *kind == tar::EntryType::Regular {
                4
            } else {
                0
            });
            if !link.is_empty() {
                h.set_link_name(link).unwrap();
            }
            let body: &[u8] = if *kind == tar::EntryType::Regular {
                b"evil"
            } else {
                b""
            };
            // Set by hand: the builder refuses `..` itself.
            let bytes = name.as_bytes();
            h.as_old_mut().name[..bytes.len()].copy_from_slice(bytes);
            h.set_cksum();
            b.append(&h, body).unwrap();
        }
        b.into_inner().unwrap()
    }

    #[test]
    fn root_nothing_in_a_layer_writes_outside_the_tree() {
        let outside = tempfile::tempdir().unwrap();
        let target = outside.path().display().to_string();
        let cases: Vec<Vec<(&str, tar::EntryType, &str)>> = vec![
            vec![("../escape", tar::EntryType::Regular, "")],
            vec![("/abs", tar::EntryType::Regular, "")],
            // A symlink the layer plants, then an entry through it.
            vec![
                ("out", tar::EntryType::Symlink, &target),
                ("out/evil", tar::EntryType::Regular, ""),
            ],
            vec![("link", tar::EntryType::Link, "../../etc/passwd")],
            vec![
                ("out", tar::EntryType::Symlink, &target),
                ("out/.wh.x", tar::EntryType::Regular, ""),
            ],
        ];
        std::fs::write(outside.path().join("x"), "keep").unwrap();
        for entries in cases {
            let root = tempfile::tempdir().unwrap();
            let tar = hostile(&entries);
            let r = apply_layer(root.path(), &mut tar.as_slice(), Path::new("layer"));
            assert!(r.is_err(), "{entries:?} was applied");
            assert!(!outside.path().join("evil").exists());
            assert!(outside.path().join("x").exists());
        }
    }
}
