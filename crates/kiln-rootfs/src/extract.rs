//! Unpacking a package's `data.tar` into the root from the host, without
//! running anything: for the bootstrap, the shell, libc and dpkg that then
//! configure the packages; for every package kiln unpacks itself (see
//! `unpack`), its files as `dpkg --unpack` would leave them.
//!
//! Like mmdebstrap's `tar --keep-directory-symlink`, a directory entry whose
//! path is already a symlink to a directory (merged /usr's `/bin`) keeps the
//! symlink. Every path is resolved by [`crate::confine`], so nothing lands
//! outside the root whatever the archive holds.

use fs_err::os::unix::fs::OpenOptionsExt;
use std::collections::{HashMap, HashSet};
use std::ffi::OsStr;
use std::io::{ErrorKind, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::confine::{entry_components, resolve_dir, resolve_parent};
use crate::deb::open_member;
use crate::error::RootfsError;

/// The suffix dpkg gives a conffile it has unpacked but not yet configured.
pub(crate) const DPKG_NEW: &str = ".dpkg-new";

/// Extracts the `data.tar` of every `.deb` in `debs` into `root`, several at
/// once, each with the image paths of its conffiles (written as
/// `PATH.dpkg-new`, as dpkg does until it configures the package). Callers
/// make sure no two of them ship the same file, so the order does not reach
/// the result.
pub(crate) fn extract_all(
    root: &Path,
    debs: &[(&Path, &HashSet<String>)],
) -> Result<(), RootfsError> {
    let mut order = debs.to_vec();
    order.sort_by_key(|(p, _)| std::cmp::Reverse(fs_err::metadata(p).map_or(0, |m| m.len())));
    kiln_deb::par::for_each(&order, |(deb, conffiles)| {
        extract_data(root, deb, conffiles)
    })
}

/// Extracts the `data.tar` of the `.deb` at `deb` into `root`; `conffiles`
/// (image paths such as `/etc/foo.conf`) go to `PATH.dpkg-new`.
pub(crate) fn extract_data(
    root: &Path,
    deb: &Path,
    conffiles: &HashSet<String>,
) -> Result<(), RootfsError> {
    let corrupt = |e: std::io::Error| RootfsError::BadDeb {
        path: deb.to_path_buf(),
        why: format!("data.tar: {e}"),
    };
    let mut archive = tar::Archive::new(open_member(deb, "data.tar")?);
    // Parent directories already resolved, keyed by the entry's parent path:
    // entries come grouped by directory, so this saves most lstat calls.
    let mut dirs: HashMap<Vec<u8>, PathBuf> = HashMap::new();
    for entry in archive.entries().map_err(corrupt)? {
        let mut entry = entry.map_err(corrupt)?;
        let name = entry.path_bytes().into_owned();
        let refuse = |why: &'static str| RootfsError::UnsafeEntry {
            deb: deb.to_path_buf(),
            entry: String::from_utf8_lossy(&name).into_owned(),
            why,
        };
        let components = entry_components(&name).map_err(refuse)?;
        let Some((last, parents)) = components.split_last() else {
            continue; // `./` itself: the root is ours, not the package's.
        };
        let parent_key = parents.join(OsStr::new("/")).into_encoded_bytes();
        let parent = match dirs.get(&parent_key) {
            Some(p) => p.clone(),
            None => {
                let p = resolve_dir(root, parents, true)?;
                dirs.insert(parent_key, p.clone());
                p
            }
        };
        let mut dest = parent.join(last);
        let header = entry.header();
        let mode = header.mode().map_err(corrupt)? & 0o7777;
        let uid = header.uid().map_err(corrupt)? as u32;
        let gid = header.gid().map_err(corrupt)? as u32;
        let mtime = header.mtime().map_err(corrupt)? as i64;
        let kind = header.entry_type();
        match kind {
            tar::EntryType::Directory => make_dir(&dest, mode, uid, gid, mtime)?,
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                if !conffiles.is_empty() && conffiles.contains(&image_path(&components)) {
                    let mut name = last.to_os_string();
                    name.push(DPKG_NEW);
                    dest = parent.join(name);
                }
                let tmp = temp_name(&dest);
                write_file(&tmp, &mut entry, uid, gid, mode, &[], mtime).map_err(|e| match e {
                    WriteError::Content(e) => corrupt(e),
                    WriteError::Rootfs(e) => e,
                })?;
                replace(&tmp, &dest)?;
            }
            tar::EntryType::Symlink => {
                let target = entry
                    .link_name_bytes()
                    .ok_or_else(|| refuse("symlink without a target"))?
                    .into_owned();
                let tmp = temp_name(&dest);
                make_symlink(&tmp, &target, uid, gid, mtime)?;
                replace(&tmp, &dest)?;
            }
            tar::EntryType::Link => {
                let target = entry
                    .link_name_bytes()
                    .ok_or_else(|| refuse("hard link without a target"))?
                    .into_owned();
                let target = entry_components(&target).map_err(refuse)?;
                let source = resolve_parent(root, &target, false)?
                    .ok_or_else(|| refuse("hard link to the root directory"))?;
                let tmp = temp_name(&dest);
                fs_err::hard_link(&source, &tmp)?;
                replace(&tmp, &dest)?;
            }
            tar::EntryType::Char | tar::EntryType::Block | tar::EntryType::Fifo => {
                let major = header.device_major().map_err(corrupt)?.unwrap_or(0);
                let minor = header.device_minor().map_err(corrupt)?.unwrap_or(0);
                let tmp = temp_name(&dest);
                make_node(&tmp, kind, (major, minor), (mode, uid, gid), mtime)?;
                replace(&tmp, &dest)?;
            }
            tar::EntryType::XGlobalHeader => {}
            // Nothing else is found in Debian packages; dpkg refuses them too.
            _ => return Err(refuse("unsupported entry type")),
        }
    }
    Ok(())
}

/// The image path (`/etc/foo`) of an entry's components, as dpkg writes
/// paths in its database.
pub(crate) fn image_path(components: &[&OsStr]) -> String {
    let mut path = String::new();
    for c in components {
        path.push('/');
        path.push_str(&c.to_string_lossy());
    }
    if path.is_empty() {
        path.push_str("/.");
    }
    path
}

/// Creates the directory `dest` unless it exists: as dpkg does, an existing
/// directory (or a symlink to one, like merged /usr's `/bin`) is left as it
/// is, whoever shipped it first.
pub(crate) fn make_dir(
    dest: &Path,
    mode: u32,
    uid: u32,
    gid: u32,
    mtime: i64,
) -> Result<(), RootfsError> {
    match fs_err::symlink_metadata(dest) {
        Ok(meta) if meta.file_type().is_symlink() || meta.is_dir() => return Ok(()),
        Ok(_) => fs_err::remove_file(dest)?,
        Err(e) if e.kind() == ErrorKind::NotFound => {}
        Err(e) => return Err(e.into()),
    }
    match std::fs::create_dir(dest) {
        Ok(()) => {}
        // Another thread made it first; what it set stands.
        Err(e) if e.kind() == ErrorKind::AlreadyExists => return Ok(()),
        Err(e) => return Err(io_at(dest, "mkdir", e)),
    }
    rustix::fs::chown(dest, Some(uid_of(uid)), Some(gid_of(gid)))
        .map_err(|e| io_at(dest, "chown", e))?;
    fs_err::set_permissions(dest, std::fs::Permissions::from_mode(mode))?;
    set_mtime(dest, mtime, false)
}

/// Makes the symlink `path` -> `target` owned by `uid`:`gid`, with `mtime`.
pub(crate) fn make_symlink(
    path: &Path,
    target: &[u8],
    uid: u32,
    gid: u32,
    mtime: i64,
) -> Result<(), RootfsError> {
    std::os::unix::fs::symlink(OsStr::from_bytes(target), path)
        .map_err(|e| io_at(path, "symlink", e))?;
    rustix::fs::chownat(
        rustix::fs::CWD,
        path,
        Some(uid_of(uid)),
        Some(gid_of(gid)),
        rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
    )
    .map_err(|e| io_at(path, "chown", e))?;
    set_mtime(path, mtime, true)
}

/// Makes the device node or fifo `path` (`kind` a tar entry type of
/// those), with its (mode, uid, gid) and `mtime`.
pub(crate) fn make_node(
    path: &Path,
    kind: tar::EntryType,
    (major, minor): (u32, u32),
    (mode, uid, gid): (u32, u32, u32),
    mtime: i64,
) -> Result<(), RootfsError> {
    let file_type = match kind {
        tar::EntryType::Char => rustix::fs::FileType::CharacterDevice,
        tar::EntryType::Block => rustix::fs::FileType::BlockDevice,
        _ => rustix::fs::FileType::Fifo,
    };
    rustix::fs::mknodat(
        rustix::fs::CWD,
        path,
        file_type,
        rustix::fs::Mode::from_raw_mode(0o600),
        rustix::fs::makedev(major, minor),
    )
    .map_err(|e| io_at(path, "mknod", e))?;
    rustix::fs::chown(path, Some(uid_of(uid)), Some(gid_of(gid)))
        .map_err(|e| io_at(path, "chown", e))?;
    fs_err::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
    set_mtime(path, mtime, false)
}

/// Sets the modification (and access) time of `path`, or of the link
/// itself when `link`.
pub(crate) fn set_mtime(path: &Path, mtime: i64, link: bool) -> Result<(), RootfsError> {
    set_time(path, timestamp(mtime), link)
}

/// [`set_mtime`] to the nanosecond.
pub(crate) fn set_time(
    path: &Path,
    t: rustix::fs::Timespec,
    link: bool,
) -> Result<(), RootfsError> {
    let flags = if link {
        rustix::fs::AtFlags::SYMLINK_NOFOLLOW
    } else {
        rustix::fs::AtFlags::empty()
    };
    rustix::fs::utimensat(
        rustix::fs::CWD,
        path,
        &rustix::fs::Timestamps {
            last_access: t,
            last_modification: t,
        },
        flags,
    )
    .map_err(|e| io_at(path, "set mtime of", e))
}

/// Why [`write_file`] failed: the content could not be read (the caller
/// says whose), or the file could not be written.
pub(crate) enum WriteError {
    Content(std::io::Error),
    Rootfs(RootfsError),
}

/// Writes a new regular file at `tmp` (never through a link) with the
/// content `from` gives, then its owner (first: chown clears setuid bits
/// and capabilities), mode, extended attributes and mtime, as a package or
/// a layer says.
pub(crate) fn write_file(
    tmp: &Path,
    from: &mut dyn std::io::Read,
    uid: u32,
    gid: u32,
    mode: u32,
    xattrs: &[(Vec<u8>, Vec<u8>)],
    mtime: i64,
) -> Result<(), WriteError> {
    let rootfs = |e: RootfsError| WriteError::Rootfs(e);
    let mut file = fs_err::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
        .open(tmp)
        .map_err(|e| rootfs(e.into()))?;
    std::io::copy(from, &mut file).map_err(WriteError::Content)?;
    file.flush().map_err(|e| rootfs(e.into()))?;
    let file = file.into_parts().0;
    rustix::fs::fchown(&file, Some(uid_of(uid)), Some(gid_of(gid)))
        .map_err(|e| rootfs(io_at(tmp, "chown", e)))?;
    file.set_permissions(std::fs::Permissions::from_mode(mode))
        .map_err(|e| rootfs(io_at(tmp, "chmod", e)))?;
    for (k, v) in xattrs {
        rustix::fs::fsetxattr(&file, k.as_slice(), v, rustix::fs::XattrFlags::empty())
            .map_err(|e| rootfs(io_at(tmp, "set an xattr of", e)))?;
    }
    let t = timestamp(mtime);
    rustix::fs::futimens(
        &file,
        &rustix::fs::Timestamps {
            last_access: t,
            last_modification: t,
        },
    )
    .map_err(|e| rootfs(io_at(tmp, "set mtime of", e)))
}

/// A sibling name to write to before renaming into place, unique per thread,
/// so two threads writing the same path never see each other's half file.
pub(crate) fn temp_name(dest: &Path) -> PathBuf {
    let mut name = dest.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".kiln-{:?}", std::thread::current().id()).replace(['(', ')'], ""));
    dest.with_file_name(name)
}

/// Renames `tmp` over `dest`, as dpkg does. A directory in the way is an
/// error: replacing it would lose what other packages put there.
pub(crate) fn replace(tmp: &Path, dest: &Path) -> Result<(), RootfsError> {
    if let Err(e) = std::fs::rename(tmp, dest) {
        let _ = std::fs::remove_file(tmp);
        return Err(io_at(dest, "replace", e));
    }
    Ok(())
}

fn uid_of(uid: u32) -> rustix::fs::Uid {
    rustix::fs::Uid::from_raw(uid)
}

fn gid_of(gid: u32) -> rustix::fs::Gid {
    rustix::fs::Gid::from_raw(gid)
}

fn timestamp(secs: i64) -> rustix::fs::Timespec {
    rustix::fs::Timespec {
        tv_sec: secs,
        tv_nsec: 0,
    }
}

/// An I/O error that names its path, for calls fs-err does not wrap.
pub(crate) fn io_at(path: &Path, what: &str, e: impl Into<std::io::Error>) -> RootfsError {
    let e: std::io::Error = e.into();
    RootfsError::Io(std::io::Error::new(
        e.kind(),
        format!("{what} {}: {e}", path.display()),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testdeb::{Entry, craft_deb};

    const CONTROL: &str = "Package: evil\nVersion: 1\nArchitecture: all\n";

    fn s(x: &str) -> String {
        x.to_string()
    }

    /// A directory holding `root` and a sibling `outside`, so a write that
    /// escapes the root shows up where the test can see it.
    fn layout() -> (tempfile::TempDir, PathBuf, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        let outside = dir.path().join("outside");
        fs_err::create_dir_all(&root).unwrap();
        fs_err::create_dir_all(&outside).unwrap();
        (dir, root, outside)
    }

    fn entries(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = fs_err::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn dotdot_entries_are_refused_and_nothing_escapes() {
        let (dir, root, outside) = layout();
        let deb = craft_deb(
            dir.path(),
            "evil",
            CONTROL,
            vec![Entry::File(s("./../outside/evil"), s("x"))],
        );
        let err = extract_data(&root, &deb, &HashSet::new()).unwrap_err();
        assert!(
            matches!(
                err,
                RootfsError::UnsafeEntry {
                    why: "`..` component",
                    ..
                }
            ),
            "{err}"
        );
        assert!(entries(&outside).is_empty());
    }

    #[test]
    fn absolute_entries_are_refused() {
        let (dir, root, outside) = layout();
        let abs = outside.join("abs").display().to_string();
        let deb = craft_deb(dir.path(), "evil", CONTROL, vec![Entry::File(abs, s("x"))]);
        let err = extract_data(&root, &deb, &HashSet::new()).unwrap_err();
        assert!(
            matches!(
                err,
                RootfsError::UnsafeEntry {
                    why: "absolute path",
                    ..
                }
            ),
            "{err}"
        );
        assert!(entries(&outside).is_empty());
    }

    #[test]
    fn a_symlink_to_outside_is_followed_inside_the_root() {
        let (dir, root, outside) = layout();
        let evil = format!("kiln-evil-{}", std::process::id());
        let deb = craft_deb(
            dir.path(),
            "evil",
            CONTROL,
            vec![
                // Absolute: the host's /tmp and the test's sibling directory.
                Entry::Symlink(s("./x"), s("/tmp")),
                Entry::File(format!("./x/{evil}"), s("x")),
                Entry::Symlink(s("./y"), outside.display().to_string()),
                Entry::File(s("./y/evil"), s("y")),
                // Relative, climbing further than the root goes.
                Entry::Symlink(s("./z"), s("../../../../../../outside")),
                Entry::File(s("./z/evil"), s("z")),
            ],
        );
        extract_data(&root, &deb, &HashSet::new()).unwrap();
        assert!(
            !Path::new("/tmp").join(&evil).exists(),
            "wrote to the host's /tmp"
        );
        assert!(entries(&outside).is_empty(), "wrote outside the root");
        assert_eq!(
            fs_err::read_to_string(root.join("tmp").join(&evil)).unwrap(),
            "x"
        );
        let inside = root.join(outside.strip_prefix("/").unwrap()).join("evil");
        assert_eq!(fs_err::read_to_string(inside).unwrap(), "y");
        assert_eq!(
            fs_err::read_to_string(root.join("outside/evil")).unwrap(),
            "z"
        );
        // The links themselves are kept as the package wrote them.
        assert_eq!(
            fs_err::read_link(root.join("x")).unwrap(),
            Path::new("/tmp")
        );
    }

    #[test]
    fn merged_usr_links_survive_a_package_that_ships_bin_as_a_directory() {
        let (dir, root, _) = layout();
        fs_err::create_dir_all(root.join("usr/bin")).unwrap();
        std::os::unix::fs::symlink("usr/bin", root.join("bin")).unwrap();
        let deb = craft_deb(
            dir.path(),
            "shell",
            CONTROL,
            vec![
                Entry::Dir(s("./")),
                Entry::Dir(s("./bin/")),
                Entry::File(s("./bin/sh"), s("#!")),
            ],
        );
        extract_data(&root, &deb, &HashSet::new()).unwrap();
        assert!(
            fs_err::symlink_metadata(root.join("bin"))
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert_eq!(
            fs_err::read_to_string(root.join("usr/bin/sh")).unwrap(),
            "#!"
        );
    }

    #[test]
    fn reads_the_control_file() {
        let (dir, _, _) = layout();
        let control = "Package: tool\nVersion: 1:2.0-1\nArchitecture: amd64\nEssential: yes\nPre-Depends: libc6 (>= 2.36)\nDepends: a | b, c\nProvides: tool-api\n";
        let deb = craft_deb(dir.path(), "tool", control, vec![]);
        let c = crate::deb::read_control(&deb, "").unwrap();
        assert_eq!(
            (c.package.as_str(), c.version.as_str(), c.essential),
            ("tool", "1:2.0-1", true)
        );
        assert_eq!(c.depends.len(), 2);
        assert_eq!(c.provides, vec!["tool-api".to_string()]);
    }
}
