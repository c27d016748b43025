//! Resolving paths inside the image as the image would see them, so that
//! nothing we write from the host lands outside the root.
//!
//! Every directory component is looked at with `lstat`. A symlink is followed
//! the way the kernel would follow it inside a chroot: an absolute target
//! starts again at the root and `..` never climbs above it. So a hostile
//! `x -> /tmp` makes a later `x/evil` land in `<root>/tmp/evil`, never in the
//! host's `/tmp`. The final component is never followed: callers replace it.
//!
//! Only kiln writes into the root while this runs (no maintainer script runs
//! during extraction), so nothing can swap a checked directory for a symlink
//! between the check and the write.

use std::ffi::{OsStr, OsString};
use std::io::ErrorKind;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use crate::error::{RootfsError, bad_path};

/// How many symlinks one resolution may follow, as Linux's `MAXSYMLINKS`.
const MAX_LINKS: usize = 40;

/// Splits an archive entry name (`./usr/bin/x`, `usr/bin/x/`) into its
/// components. Refuses absolute names and `..`: dpkg writes neither, so an
/// entry carrying one is hostile or corrupt.
pub(crate) fn entry_components(name: &[u8]) -> Result<Vec<&OsStr>, &'static str> {
    if name.first() == Some(&b'/') {
        return Err("absolute path");
    }
    let mut out = Vec::new();
    for part in name.split(|&b| b == b'/') {
        match part {
            b"" | b"." => {}
            b".." => return Err("`..` component"),
            _ => out.push(OsStr::from_bytes(part)),
        }
    }
    Ok(out)
}

/// Splits an absolute image path such as `/etc/hostname` into components,
/// refusing `..`.
pub(crate) fn image_components(path: &str) -> Result<Vec<&OsStr>, RootfsError> {
    entry_components(path.trim_start_matches('/').as_bytes())
        .map_err(|why| bad_path(path, format!("not a plain image path: {why}")))
}

/// Resolves the directory `components` names inside `root` (following
/// symlinks inside the image) to a host path with no symlink left in it.
/// Missing directories are created (mode 0755) when `create` is set.
pub(crate) fn resolve_dir(
    root: &Path,
    components: &[&OsStr],
    create: bool,
) -> Result<PathBuf, RootfsError> {
    // The real (symlink-free) components below the root resolved so far.
    let mut real: Vec<OsString> = Vec::new();
    let mut todo: Vec<OsString> = components.iter().rev().map(|c| c.to_os_string()).collect();
    let mut links = 0;
    while let Some(part) = todo.pop() {
        if part == ".." {
            real.pop();
            continue;
        }
        if part.is_empty() || part == "." {
            continue;
        }
        let mut host = root.to_path_buf();
        host.extend(&real);
        host.push(&part);
        match fs_err::symlink_metadata(&host) {
            Ok(meta) if meta.file_type().is_symlink() => {
                links += 1;
                if links > MAX_LINKS {
                    return Err(bad_path(host, "too many levels of symbolic links"));
                }
                let target = fs_err::read_link(&host)?;
                if target.is_absolute() {
                    real.clear();
                }
                // Push the target's components so they are resolved next, in order.
                for c in target.components().rev() {
                    match c {
                        Component::Normal(n) => todo.push(n.to_os_string()),
                        Component::ParentDir => todo.push("..".into()),
                        Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
                    }
                }
            }
            Ok(meta) if meta.is_dir() => real.push(part),
            Ok(_) => return Err(bad_path(host, "not a directory")),
            Err(e) if e.kind() == ErrorKind::NotFound && create => {
                match std::fs::DirBuilder::new().mode(0o755).create(&host) {
                    Ok(()) => {}
                    // Another extraction thread made it first; it is a plain directory.
                    Err(e) if e.kind() == ErrorKind::AlreadyExists => {
                        if !fs_err::symlink_metadata(&host)?.is_dir() {
                            return Err(bad_path(host, "not a directory"));
                        }
                    }
                    Err(e) => {
                        return Err(RootfsError::Io(std::io::Error::new(
                            e.kind(),
                            format!("creating directory {}: {e}", host.display()),
                        )));
                    }
                }
                real.push(part);
            }
            Err(e) => return Err(e.into()),
        }
    }
    let mut host = root.to_path_buf();
    host.extend(&real);
    Ok(host)
}

/// Resolves a path inside the image to a host path: its parent directory is
/// resolved (and created when `create`) with [`resolve_dir`], its last
/// component is kept as it is (not followed). `None` for the root itself.
pub(crate) fn resolve_parent(
    root: &Path,
    components: &[&OsStr],
    create: bool,
) -> Result<Option<PathBuf>, RootfsError> {
    let Some((last, parents)) = components.split_last() else {
        return Ok(None);
    };
    Ok(Some(resolve_dir(root, parents, create)?.join(last)))
}

/// [`resolve_parent`] for an absolute image path such as `/etc/hostname`.
pub(crate) fn host_path(
    root: &Path,
    image_path: &str,
    create: bool,
) -> Result<PathBuf, RootfsError> {
    let components = image_components(image_path)?;
    resolve_parent(root, &components, create)?
        .ok_or_else(|| bad_path(image_path, "is the root directory itself"))
}

/// The host directory of `image_dir` (`var/lib/dpkg/info`), resolved inside
/// `root` as [`resolve_dir`] does and created when missing.
pub(crate) fn image_dir(root: &Path, image_dir: &str) -> Result<PathBuf, RootfsError> {
    resolve_dir(root, &image_components(image_dir)?, true)
}

/// `name` when it is one plain file name: no `/`, not `.` or `..`, not
/// empty, no NUL. `what` says whose name it is in the error.
pub(crate) fn plain_name<'a>(name: &'a str, what: &str) -> Result<&'a str, RootfsError> {
    if name.is_empty() || name == "." || name == ".." || name.contains(['/', '\0']) {
        return Err(bad_path(name, format!("{what} is not a plain file name")));
    }
    Ok(name)
}

/// Replaces `dir/name` with a new file holding `bytes`: written under a
/// fresh temporary name, then renamed over it, so whatever was there (a
/// symlink a package planted included) is replaced, never followed.
pub(crate) fn replace_file(
    dir: &Path,
    name: &str,
    bytes: &[u8],
    mode: u32,
) -> Result<PathBuf, RootfsError> {
    use fs_err::os::unix::fs::OpenOptionsExt;
    use std::io::Write;
    let dest = dir.join(plain_name(name, "a dpkg database file")?);
    let tmp = dir.join(format!(".{name}.kiln-new"));
    match fs_err::remove_file(&tmp) {
        Err(e) if e.kind() != ErrorKind::NotFound => return Err(e.into()),
        _ => {}
    }
    let mut f = fs_err::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&tmp)?;
    f.write_all(bytes)?;
    f.set_permissions(std::fs::Permissions::from_mode(mode))?;
    drop(f);
    fs_err::rename(&tmp, &dest)?;
    Ok(dest)
}

/// Appends `bytes` to `dir/name`, creating it. A symlink there is refused
/// (`O_NOFOLLOW`): it would send the write wherever it points on the host.
pub(crate) fn append_file(dir: &Path, name: &str, bytes: &[u8]) -> Result<(), RootfsError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let path = dir.join(plain_name(name, "a dpkg database file")?);
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o644)
        .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
        .open(&path)
        .map_err(|e| match e.raw_os_error() {
            Some(code) if code == rustix::io::Errno::LOOP.raw_os_error() => {
                bad_path(&path, "is a symbolic link; refusing to write through it")
            }
            _ => crate::extract::io_at(&path, "append to", e),
        })?;
    f.write_all(bytes)
        .map_err(|e| crate::extract::io_at(&path, "append to", e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn refuses_absolute_and_dotdot_entries() {
        assert!(entry_components(b"/etc/passwd").is_err());
        assert!(entry_components(b"./a/../../b").is_err());
        assert_eq!(
            entry_components(b"./usr//bin/").unwrap(),
            vec![OsStr::new("usr"), OsStr::new("bin")]
        );
    }

    #[test]
    fn symlinks_resolve_inside_the_root() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs_err::create_dir_all(root.join("usr/bin")).unwrap();
        symlink("usr/bin", root.join("bin")).unwrap();
        symlink("/tmp", root.join("abs")).unwrap();
        symlink("../../../../..", root.join("up")).unwrap();
        fn c(s: &str) -> Vec<&OsStr> {
            entry_components(s.as_bytes()).unwrap()
        }
        assert_eq!(
            resolve_dir(root, &c("bin"), false).unwrap(),
            root.join("usr/bin")
        );
        assert_eq!(
            resolve_dir(root, &c("abs/x"), true).unwrap(),
            root.join("tmp/x")
        );
        assert_eq!(
            resolve_dir(root, &c("up/etc"), true).unwrap(),
            root.join("etc")
        );
        symlink("loop", root.join("loop")).unwrap();
        assert!(resolve_dir(root, &c("loop/x"), true).is_err());
    }
}
